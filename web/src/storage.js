// storage.js — what every storage backend shares: the store contract, argument checks, the
// error constructors, DOMException → ModelError, the quota check, and the cross-tab plumbing
// (one Web Lock around writes, change events here and over a BroadcastChannel). A backend is
// one file implementing the contract (store.js: IndexedDB); io.js maps URL schemes to backends.
// Guarantees and the IndexedDB layout: docs/STORAGE.md.

import { ModelError } from './errors.js';

const maxNameLength = 1024;
/** Headroom asked of navigator.storage.estimate() beyond the bytes themselves. */
const quotaMargin = 1024 * 1024;

/**
 * The store contract: what io.js calls on every backend.
 * @typedef {{ name: string, bytes: number, chunks: number, dateSaved: string,
 *   [key: string]: unknown }} StoredInfo  the caller's info plus the store's four fields
 * @typedef {{ loaded: number, total: number }} Progress
 * @typedef {{ onProgress?: (progress: Progress) => void }} ProgressOptions
 * @typedef {{ type: 'change', names: string[] }} ChangeEvent
 * @typedef {object} Store
 * @property {number} chunkBytes  Must be the size `put` cuts a single Uint8Array into (save() has
 *   wasm write the file straight into chunks of this size).
 * @property {(name: string, bytes: Uint8Array | Uint8Array[], info?: object, options?: ProgressOptions)
 *   => Promise<StoredInfo>} put  Must replace `name` atomically (a failed put leaves the old
 *   version whole) and resolve, once durable, to the info record it wrote. Must store an array
 *   one chunk per element, a whole ArrayBuffer as it is. Must check the quota first.
 * @property {(name: string, options?: ProgressOptions) => Promise<Uint8Array>} get  Must give back
 *   exactly the bytes put, contiguous (joinChunks).
 * @property {(name: string, options?: ProgressOptions) => Promise<Uint8Array[]>} getChunks  Must give
 *   the same bytes as stored, one Uint8Array per chunk in order, with no joined copy (an empty
 *   model has none); corrupt_record when they disagree with the info record.
 * @property {(name: string) => Promise<StoredInfo>} info  Must not read the bytes.
 * @property {() => Promise<Record<string, StoredInfo>>} list  Must not read the bytes.
 * @property {(from: string, to: string) => Promise<void>} copy  Must replace `to` atomically.
 * @property {(from: string, to: string) => Promise<void>} move  Must copy then delete `from` as
 *   one atomic step. Onto itself, copy and move must do nothing but still report a missing name.
 * @property {(name: string) => Promise<void>} remove
 * @property {(callback: (event: ChangeEvent) => void) => () => void} onChange  Must report every
 *   successful write, in this tab and others (openSync), and no failed one.
 * @property {() => void} close  Must make every later call reject with storage_unavailable.
 *
 * Every method must check its arguments (checkName, checkProgress), throw only ModelErrors
 * (not_found, corrupt_record, ...: the constructors below; toModelError for a DOMException), and
 * pass an onProgress callback's own error through unchanged.
 */

// ---- errors ------------------------------------------------------------------------------------

export function notFound(name) {
  return new ModelError('not_found', `no model named ${JSON.stringify(name)} in the store`);
}

export function corrupt(name, what) {
  return new ModelError('corrupt_record', `stored model ${JSON.stringify(name)}: ${what}`);
}

export function storeClosed() {
  return new ModelError('storage_unavailable', 'this store was closed; reopen it');
}

function quotaExceeded(needed, available) {
  const details = {};
  if (needed !== undefined) details.needed = needed;
  if (available !== undefined) details.available = available;
  const room = available === undefined ? '' : `, only ${available} are available`;
  return new ModelError(
    'quota_exceeded',
    `not enough storage to save the model: ${needed ?? 'more'} bytes needed${room}`,
    details,
  );
}

/**
 * Must turn every platform failure (a DOMException) into a ModelError with a stable code; `what`
 * names the storage ('IndexedDB'). Anything else (a ModelError, an onProgress callback's own
 * error) passes through unchanged. `available` is what estimate() promised.
 */
export function toModelError(err, what, { needed, available } = {}) {
  if (!(err instanceof DOMException)) return err;
  let mapped;
  if (err.name === 'QuotaExceededError') {
    // The browser refused the write although estimate() promised room (a nearly full disk):
    // the estimate is no measure of what is available then, so it is not reported as such.
    mapped = new ModelError(
      'quota_exceeded',
      `not enough storage to save the model: the browser refused to store ${needed ?? 'the'} bytes` +
        (available === undefined ? '' : ` (its estimate() had promised ${available})`),
      needed === undefined ? {} : { needed },
    );
  } else if (err.name === 'DataCloneError') {
    mapped = new ModelError('invalid_argument', `info cannot be stored: ${err.message}`);
  } else {
    mapped = new ModelError('io_error', `${what} failed: ${err.name}: ${err.message}`);
  }
  mapped.cause = err;
  return mapped;
}

// ---- arguments ---------------------------------------------------------------------------------

export function checkName(name, what = 'name') {
  if (typeof name !== 'string' || name.length === 0 || name.length > maxNameLength) {
    throw new ModelError(
      'invalid_argument',
      `${what} must be a non-empty string of at most ${maxNameLength} characters`,
    );
  }
}

export function checkProgress(onProgress) {
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new ModelError('invalid_argument', 'onProgress must be a function');
  }
}

/** put's bytes and info: returns the chunks as given (a copy of the array), or null for one Uint8Array. */
export function checkPut(bytes, info) {
  const isBytes = (b) => Object.prototype.toString.call(b) === '[object Uint8Array]';
  const given = Array.isArray(bytes) ? [...bytes] : null;
  if (given ? !given.every(isBytes) : !isBytes(bytes)) {
    throw new ModelError('invalid_argument', 'bytes must be a Uint8Array or an array of Uint8Arrays');
  }
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    throw new ModelError('invalid_argument', 'info must be a plain object');
  }
  return given;
}

/** One contiguous Uint8Array of the chunks, in order; a single chunk as it is (no copy). */
export function joinChunks(chunks) {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

// ---- navigator.storage -------------------------------------------------------------------------

/**
 * Asks the browser not to evict this origin's storage.
 * @returns {Promise<boolean>} true when storage is (now) persistent; false when refused or absent
 */
export async function requestPersistence() {
  const storage = globalThis.navigator?.storage;
  if (typeof storage?.persist !== 'function') return false;
  try {
    if (typeof storage.persisted === 'function' && (await storage.persisted())) return true;
    return (await storage.persist()) === true;
  } catch {
    return false;
  }
}

/**
 * @returns {Promise<{ usage: number, quota: number } | null>} null where the browser cannot tell
 */
export async function storageEstimate() {
  const storage = globalThis.navigator?.storage;
  if (typeof storage?.estimate !== 'function') return null;
  try {
    const { usage, quota } = await storage.estimate();
    return Number.isFinite(usage) && Number.isFinite(quota) ? { usage, quota } : null;
  } catch {
    return null;
  }
}

/**
 * Must fail fast, before writing anything, when the estimate says `bytes` will not fit.
 * @returns {Promise<{ needed: number, available?: number }>} for toModelError
 */
export async function checkQuota(bytes) {
  const needed = bytes + quotaMargin;
  const estimate = await storageEstimate();
  if (!estimate) return { needed };
  const available = Math.max(0, estimate.quota - estimate.usage);
  if (available < needed) throw quotaExceeded(needed, available);
  return { needed, available };
}

// ---- several tabs ------------------------------------------------------------------------------

/**
 * The cross-tab side of one store: writes under the Web Lock `lock` (where navigator.locks
 * exists), change events to this store's listeners and, on BroadcastChannel `channel`, to
 * every other tab's stores of the same backend.
 */
export function openSync({ lock, channel: channelName }) {
  let closed = false;
  const listeners = new Set();
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(channelName) : null;
  channel?.unref?.(); // Node: must not keep the process alive
  if (channel) {
    channel.onmessage = (event) => {
      const { type, names } = event.data ?? {};
      if (type === 'change' && Array.isArray(names)) emit(names);
    };
  }

  function emit(names) {
    for (const callback of [...listeners]) {
      try {
        callback({ type: 'change', names: [...names] });
      } catch (err) {
        (globalThis.reportError ?? console.error)(err); // one bad listener must not stop the rest
      }
    }
  }

  return {
    get closed() {
      return closed;
    },

    /** Must hold the write lock while `body` runs, then tell every tab which names changed. */
    async write(names, body) {
      if (closed) throw storeClosed();
      const locks = globalThis.navigator?.locks;
      if (typeof locks?.request === 'function') await locks.request(lock, body);
      else await body();
      emit(names);
      if (!closed) channel?.postMessage({ type: 'change', names });
    },

    onChange(callback) {
      if (typeof callback !== 'function') {
        throw new ModelError('invalid_argument', 'onChange needs a function');
      }
      const entry = (event) => callback(event); // the same callback twice: two subscriptions
      listeners.add(entry);
      return () => listeners.delete(entry);
    },

    close() {
      closed = true;
      listeners.clear();
      channel?.close();
    },
  };
}
