// store.js — the IndexedDB backend: model bytes in the page's IndexedDB, one small info record per
// name kept apart from the bytes (stored as ArrayBuffer chunks) so that listing is cheap. It keeps
// the store contract of storage.js, whose plumbing it uses (write lock, change events, quota,
// errors). Knows nothing about wasm or .mkp: the bytes carry their own CRC-32s, checked on load.
// Layout and guarantees: docs/STORAGE.md.

import { ModelError } from './errors.js';
import {
  checkName,
  checkProgress,
  checkPut,
  checkQuota,
  corrupt,
  joinChunks,
  notFound,
  openSync,
  storeClosed,
  toModelError,
} from './storage.js';

const dbName = 'modelkeep';
const dbVersion = 1;
const channelName = 'modelkeep';
const writeLock = 'modelkeep:write';
const defaultChunkBytes = 8 * 1024 * 1024;
const defaultBlockedTimeoutMs = 10_000;

// ---- promisified IndexedDB ---------------------------------------------------------------------

/** Must resolve with the request's result on `success` and reject with its error on `error`. */
function promisify(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Must resolve only on `complete`; must reject on `error` or `abort`, with the cause if known. */
function done(tx) {
  const finished = new Promise((resolve, reject) => {
    const fail = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
    tx.oncomplete = () => resolve();
    tx.onerror = fail;
    tx.onabort = fail;
  });
  finished.catch(() => {}); // awaited later; must not count as unhandled meanwhile
  return finished;
}

// ---- one connection per factory ----------------------------------------------------------------

/** @type {WeakMap<IDBFactory, { promise: Promise<IDBDatabase>, db?: IDBDatabase }>} */
const connections = new WeakMap();

/** Opens the database, creating both stores in ONE upgrade. Must never wait forever. */
function openDatabase(factory, timeoutMs) {
  return new Promise((resolve, reject) => {
    let request;
    try {
      request = factory.open(dbName, dbVersion);
    } catch (err) {
      reject(unavailable(err));
      return;
    }
    let blocked = false;
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      const why = blocked
        ? 'is blocked by a connection in another tab'
        : `did not finish within ${Number(timeoutMs.toPrecision(3))} ms (another tab may be upgrading or deleting it)`;
      reject(
        new ModelError(
          'storage_blocked',
          `opening IndexedDB database "${dbName}" ${why}; close other tabs of this site and retry`,
        ),
      );
    }, timeoutMs);
    request.onblocked = () => {
      blocked = true;
    };
    request.onupgradeneeded = (event) => {
      // Must create the whole schema here, in this one upgrade.
      const db = request.result;
      if (event.oldVersion < 1) {
        db.createObjectStore('info', { keyPath: 'name' });
        db.createObjectStore('chunks'); // out-of-line keys [name, index]; values are ArrayBuffers
      }
    };
    request.onsuccess = () => {
      if (settled) {
        request.result.close(); // gave up already: must not leak a connection that blocks others
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(request.result);
    };
    request.onerror = (event) => {
      event.preventDefault?.();
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(unavailable(request.error));
    };
  });
}

/** Must return the factory's one cached connection, opening it if there is none. */
function connect(factory, timeoutMs) {
  const cached = connections.get(factory);
  if (cached) return cached.promise;
  const entry = {};
  const forget = () => {
    if (connections.get(factory) === entry) connections.delete(factory);
  };
  entry.promise = openDatabase(factory, timeoutMs).then(
    (db) => {
      entry.db = db;
      // Must let another tab upgrade or delete the database: close now, reopen on the next call.
      db.onversionchange = () => {
        db.close();
        forget();
      };
      db.onclose = forget; // closed by the browser (e.g. storage cleared)
      return db;
    },
    (err) => {
      forget();
      throw err;
    },
  );
  connections.set(factory, entry);
  return entry.promise;
}

/** Closes and forgets the factory's cached connection; the next call reopens it. */
function disconnect(factory) {
  const cached = connections.get(factory);
  connections.delete(factory);
  cached?.promise.then(
    (db) => db.close(),
    () => {},
  );
}

// ---- errors and key ranges ---------------------------------------------------------------------

function unavailable(cause) {
  const why = cause ? `: ${cause.name}: ${cause.message}` : '';
  const err = new ModelError(
    'storage_unavailable',
    `IndexedDB cannot be opened${why} (private browsing or disabled site storage?)`,
  );
  if (cause) err.cause = cause;
  return err;
}

const rangeOf = (IDBKeyRange, name) => IDBKeyRange.bound([name, 0], [name, Infinity]);

// ---- the store ---------------------------------------------------------------------------------

/**
 * Opens (or reuses) the connection to the `modelkeep` database.
 * @param {object} [options]
 * @param {IDBFactory} [options.indexedDB]      default globalThis.indexedDB
 * @param {typeof IDBKeyRange} [options.IDBKeyRange]  default globalThis.IDBKeyRange (pass the
 *   factory's own with an in-memory IndexedDB such as fake-indexeddb)
 * @param {number} [options.chunkBytes]         bytes per stored chunk, default 8 MiB
 * @param {number} [options.blockedTimeoutMs]   give up opening after this long, default 10 s
 * @returns {Promise<import('./storage.js').Store>}
 */
export async function openStore(options = {}) {
  const {
    indexedDB: factory = globalThis.indexedDB,
    IDBKeyRange = globalThis.IDBKeyRange,
    chunkBytes = defaultChunkBytes,
    blockedTimeoutMs = defaultBlockedTimeoutMs,
  } = options;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw new ModelError('invalid_argument', 'chunkBytes must be a positive integer');
  }
  if (!(blockedTimeoutMs >= 0)) {
    throw new ModelError('invalid_argument', 'blockedTimeoutMs must be a number >= 0');
  }
  if (!factory || typeof factory.open !== 'function') {
    throw new ModelError(
      'storage_unavailable',
      'IndexedDB is not available here (private browsing, site storage disabled, or no browser)',
    );
  }
  if (typeof IDBKeyRange?.bound !== 'function') {
    throw new ModelError(
      'storage_unavailable',
      'IDBKeyRange is not available: pass the one that belongs to options.indexedDB',
    );
  }
  await connect(factory, blockedTimeoutMs);
  const sync = openSync({ lock: writeLock, channel: channelName });

  /** Must run `body` in ONE transaction and settle only once that transaction has finished. */
  async function transact(storeNames, mode, body, quota = {}) {
    if (sync.closed) throw storeClosed();
    for (let attempt = 0; ; attempt++) {
      const db = await connect(factory, blockedTimeoutMs);
      let tx;
      try {
        tx =
          mode === 'readwrite'
            ? db.transaction(storeNames, mode, { durability: 'strict' })
            : db.transaction(storeNames, mode);
      } catch (err) {
        // The cached connection was closed under us (versionchange, close()): reopen once.
        if (err?.name === 'InvalidStateError' && attempt === 0) {
          if (connections.get(factory)?.db === db) disconnect(factory);
          continue;
        }
        throw toModelError(err, 'IndexedDB');
      }
      const finished = done(tx);
      let result;
      try {
        result = await body(tx);
      } catch (err) {
        try {
          tx.abort();
        } catch {
          /* already finished */
        }
        await finished.catch(() => {});
        // A failed request reports AbortError for the rest; tx.error holds the real cause.
        const cause = err instanceof ModelError || !tx.error ? err : tx.error;
        throw toModelError(cause, 'IndexedDB', quota);
      }
      try {
        await finished;
      } catch (err) {
        throw toModelError(err, 'IndexedDB', quota);
      }
      return result;
    }
  }

  /** Reads a name's info record; must never open the `chunks` store. */
  async function readInfo(name) {
    const record = await transact(['info'], 'readonly', (tx) => promisify(tx.objectStore('info').get(name)));
    if (!record) throw notFound(name);
    return record;
  }

  /** Copies `from` onto `to` (replacing it) and, for a move, deletes `from`: ONE transaction. */
  async function relocate(from, to, keepSource) {
    checkName(from, 'from');
    checkName(to, 'to');
    if (from === to) {
      await readInfo(from); // must still report a missing name; otherwise nothing to do
      return;
    }
    await sync.write(keepSource ? [to] : [from, to], async () => {
      // A move frees what it writes, so only a copy must find room first.
      const { bytes } = await readInfo(from);
      const quota = keepSource ? await checkQuota(bytes) : { needed: bytes };
      await transact(
        ['info', 'chunks'],
        'readwrite',
        async (tx) => {
          const infos = tx.objectStore('info');
          const chunks = tx.objectStore('chunks');
          const record = await promisify(infos.get(from));
          if (!record) throw notFound(from);
          chunks.delete(rangeOf(IDBKeyRange, to));
          const cursorRequest = chunks.openCursor(rangeOf(IDBKeyRange, from));
          for (let cursor = await promisify(cursorRequest); cursor; cursor = await promisify(cursorRequest)) {
            chunks.put(cursor.value, [to, cursor.key[1]]);
            cursor.continue();
          }
          infos.put({ ...record, name: to });
          if (!keepSource) {
            chunks.delete(rangeOf(IDBKeyRange, from));
            infos.delete(from);
          }
        },
        quota,
      );
    });
  }

  /** The stored chunks of `name`, in order, as Uint8Array views (checked against its info record). */
  async function getChunks(name, { onProgress } = {}) {
    checkName(name);
    checkProgress(onProgress);
    return transact(['info', 'chunks'], 'readonly', async (tx) => {
      const record = await promisify(tx.objectStore('info').get(name));
      if (!record) throw notFound(name);
      const { bytes: total, chunks: count } = record;
      const counts = [total, count];
      if (!counts.every((n) => Number.isSafeInteger(n) && n >= 0)) {
        throw corrupt(name, 'the info record has no valid byte or chunk count');
      }
      // Every chunk asked for at once (IndexedDB answers in order, without a round trip to this
      // code between two of them, as a cursor would need), and the chunks under the name counted:
      // a gap, a stray past the count and a short chunk are all corrupt_record.
      const chunks = tx.objectStore('chunks');
      const stored = promisify(chunks.count(rangeOf(IDBKeyRange, name)));
      const out = [];
      let loaded = 0;
      const parts = [];
      for (let index = 0; index < count; index++) {
        parts.push(
          promisify(chunks.get([name, index])).then((chunk) => {
            if (chunk === undefined) throw corrupt(name, `chunk ${index} of ${count} is missing`);
            if (!(chunk instanceof ArrayBuffer)) throw corrupt(name, `chunk ${index} is not bytes`);
            if (loaded + chunk.byteLength > total) {
              throw corrupt(name, `the chunks hold more than the ${total} bytes recorded`);
            }
            out[index] = new Uint8Array(chunk); // a view: the chunk as IndexedDB gave it, not a copy
            loaded += chunk.byteLength;
            onProgress?.({ loaded, total });
          }),
        );
      }
      await Promise.all(parts);
      const found = await stored;
      if (found !== count) {
        throw corrupt(name, `found ${found} chunks / ${loaded} bytes, the info record says ${count} / ${total}`);
      }
      if (loaded !== total) {
        throw corrupt(name, `found ${count} chunks / ${loaded} bytes, the info record says ${count} / ${total}`);
      }
      return out;
    });
  }

  return {
    chunkBytes,

    async put(name, bytes, info = {}, { onProgress } = {}) {
      checkName(name);
      // Given as chunks, each is stored as one chunk: as it is when it is a whole ArrayBuffer.
      const given = checkPut(bytes, info);
      checkProgress(onProgress);
      const fields = { ...info }; // as it is now, whatever the caller does to it meanwhile
      const total = given ? given.reduce((n, c) => n + c.byteLength, 0) : bytes.byteLength;
      const count = given ? given.length : Math.ceil(total / chunkBytes);
      let record;
      await sync.write([name], async () => {
        const quota = await checkQuota(total);
        await transact(
          ['info', 'chunks'],
          'readwrite',
          async (tx) => {
            const chunks = tx.objectStore('chunks');
            // Must drop every old chunk (strays past the old count too) in this same transaction.
            chunks.delete(rangeOf(IDBKeyRange, name));
            for (let index = 0, loaded = 0; index < count; index++) {
              // A fresh ArrayBuffer of just this chunk: putting a view would clone its whole buffer.
              const part = given ? given[index] : bytes.subarray(loaded, Math.min(loaded + chunkBytes, total));
              const whole = part.byteOffset === 0 && part.byteLength === part.buffer.byteLength && given;
              await promisify(chunks.put(whole ? part.buffer : part.slice().buffer, [name, index]));
              loaded += part.byteLength;
              onProgress?.({ loaded, total });
            }
            const dateSaved = new Date().toISOString();
            record = { ...fields, name, bytes: total, chunks: count, dateSaved };
            await promisify(tx.objectStore('info').put(record));
          },
          quota,
        );
      });
      return { ...record };
    },

    async get(name, options = {}) {
      return joinChunks(await getChunks(name, options));
    },

    getChunks,

    async info(name) {
      checkName(name);
      return readInfo(name);
    },

    async list() {
      const records = await transact(['info'], 'readonly', (tx) => promisify(tx.objectStore('info').getAll()));
      return Object.fromEntries(records.map((record) => [record.name, record]));
    },

    copy: (from, to) => relocate(from, to, true),

    move: (from, to) => relocate(from, to, false),

    async remove(name) {
      checkName(name);
      await sync.write([name], () =>
        transact(['info', 'chunks'], 'readwrite', async (tx) => {
          const infos = tx.objectStore('info');
          if (!(await promisify(infos.get(name)))) throw notFound(name);
          tx.objectStore('chunks').delete(rangeOf(IDBKeyRange, name));
          infos.delete(name);
        }),
      );
    },

    onChange: sync.onChange,

    close() {
      if (sync.closed) return;
      sync.close();
      disconnect(factory);
    },
  };
}
