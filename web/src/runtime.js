// runtime.js — the WebAssembly modules, each loaded once, on demand: a small registry keyed by
// name ('core' today: .mkp read/write, forward, the importer). Knows no platform: the entry a
// user imports (index.js for browsers and bundlers, node.js for Node, chosen by package.json's
// "exports" conditions) registers one with usePlatform(), which says how a .wasm's bytes are
// found. No top-level await, no node: import here (bundlers must be able to build it for any
// target). Must: load each module at most once per realm while it succeeds; forget a failed
// load, so that the next call tries again; never call into a module before it is ready (the
// synchronous API throws not_ready instead).
import createModelkeep from '../dist/modelkeep_wasm.mjs';
import { ModelError } from './errors.js';

/**
 * name → { factory: () => Promise<Emscripten factory>, wasm: URL of its .wasm }. A module
 * fetched on first use is one more line here, its factory a dynamic import().
 */
const builds = {
  core: { factory: async () => createModelkeep, wasm: new URL('../dist/modelkeep_wasm.wasm', import.meta.url) },
};

/** name → the loaded module, once ready. */
const loaded = new Map();
/** name → the Promise of a load under way (or done); removed when it fails. */
const loading = new Map();

/**
 * The platform the entry registered: { name: 'browser'|'node', moduleOptions(wasm, isDefault) →
 * Promise of the options (wasmBinary or locateFile) that make Emscripten instantiate the .wasm
 * `wasm` (a URL, a string, bytes or a Response; isDefault: the package's own, not one the user
 * gave), readFile?(url), writeFile?(url, bytes, check) }.
 */
let platform = null;

/** Called once by the entry module (index.js, node.js). */
export function usePlatform(p) {
  platform = p;
}

/** The registered platform; a browser without file access when no entry registered one. */
export function currentPlatform() {
  return platform;
}

/** True when the Node entry (node.js) is in use. */
export function isNode() {
  return platform?.name === 'node';
}

/**
 * Loads the module `name` once and resolves to it; later calls get the same Promise. A load that
 * fails is forgotten (the next call tries again). `wasm` (URL, string, bytes or Response) says
 * where its .wasm is, instead of next to this package; it counts only for the call that loads.
 */
export function module(name = 'core', { wasm } = {}) {
  const build = builds[name];
  if (!build) return Promise.reject(new ModelError('invalid_argument', `no WebAssembly module named '${name}'`));
  let promise = loading.get(name);
  if (!promise) {
    promise = instantiate(build, wasm ?? build.wasm).then(
      (m) => {
        loaded.set(name, m);
        return m;
      },
      (e) => {
        loading.delete(name);
        throw e;
      },
    );
    loading.set(name, promise);
  }
  return promise;
}

async function instantiate(build, wasm) {
  if (!platform) {
    throw new ModelError('not_ready', "modelkeep has no platform: import 'modelkeep', not one of its files");
  }
  const factory = await build.factory();
  try {
    return await factory(await platform.moduleOptions(wasm, wasm === build.wasm));
  } catch (e) {
    if (e instanceof ModelError) throw e;
    const where = wasm instanceof URL || typeof wasm === 'string' ? ` from ${String(wasm)}` : '';
    const err = new ModelError(
      'network_error',
      `cannot load modelkeep's WebAssembly module${where}: ${e?.message ?? e} (a bundler that does not ` +
        `copy the .wasm: copy modelkeep/modelkeep.wasm next to your bundle and call ready({ wasm: URL }))`,
    );
    err.cause = e;
    throw err;
  }
}

/**
 * Resolves once the core module is loaded (and instantiated), the way tf.ready() does; memoised.
 * Every async function awaits it; call it before the synchronous API (nn.sequential, forward, ...).
 * @param {{ wasm?: URL | string | ArrayBuffer | ArrayBufferView | Response }} [options]
 */
export async function ready(options) {
  await module('core', options);
}

/** The loaded module `name`, synchronously; not_ready when ready() has not resolved yet. */
export function runtime(name = 'core') {
  const m = loaded.get(name);
  if (m) return m;
  const which = name === 'core' ? '' : ` '${name}'`;
  throw new ModelError(
    'not_ready',
    `modelkeep's WebAssembly module${which} is not loaded yet: await ready() first ` +
      `(import { ready } from 'modelkeep'; await ready();), or use an async function such as load() first`,
  );
}

/** Options for a module whose .wasm is given as bytes or a Response (every platform). */
export async function bytesOptions(wasm) {
  if (wasm instanceof ArrayBuffer) return { wasmBinary: new Uint8Array(wasm) };
  if (ArrayBuffer.isView(wasm)) return { wasmBinary: new Uint8Array(wasm.buffer, wasm.byteOffset, wasm.byteLength) };
  if (typeof Response !== 'undefined' && wasm instanceof Response) {
    if (!wasm.ok) throw new ModelError('network_error', `the .wasm Response has HTTP status ${wasm.status}`);
    return { wasmBinary: new Uint8Array(await wasm.arrayBuffer()) };
  }
  return null;
}
