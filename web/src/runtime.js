// runtime.js — the WebAssembly modules, each loaded once, on demand: a small registry keyed by
// name. 'reader' (web/dist-reader/): the leanest module, which loads .mkp models and runs them and
// nothing else — what a load() fetches when no other module is loaded; 'core' (web/dist/, through
// core.js): .mkp read/write, nn, state dicts, compact weights, which ready() loads; 'importer'
// (web/dist-importer/, through importer.js): the same plus the PyTorch / safetensors importer and
// exporter and the trainer, fetched on first use only (model.js routes the calls that need it and
// moves models between modules; docs/ARCHITECTURE.md "Three modules"). Knows no platform: the
// entry a user imports (index.js for browsers and bundlers, node.js for Node, chosen by
// package.json's "exports" conditions) registers one with usePlatform(), which says how a .wasm's
// bytes are found. No top-level await, no node: import here (bundlers must be able to build it for
// any target). Must: load each module at most once per realm while it succeeds; forget a failed
// load, so that the next call tries again; never call into a module before it is ready (the
// synchronous API throws not_ready instead).
import createReader from '../dist-reader/modelkeep_wasm.mjs';
import { wrap } from './abi.js';
import { ModelError } from './errors.js';

/**
 * name → () => Promise of { factory: Emscripten factory, wasm: URL of its .wasm }. A module
 * fetched on first use is a dynamic import() of a file that holds both (core.js, importer.js): its
 * .wasm's URL must stay out of the page's own chunk, so that a bundler emits it apart. Only the
 * reader's is in the page's chunk: a page that loads and predicts fetches nothing else.
 */
const builds = {
  reader: async () => ({ factory: createReader, wasm: new URL('../dist-reader/modelkeep_wasm.wasm', import.meta.url) }),
  core: () => import('./core.js'),
  importer: () => import('./importer.js'),
};

/** name → where its .wasm is, as ready({ importerWasm }) said, for a module loaded later. */
const locations = new Map();

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
    promise = instantiate(build, wasm ?? locations.get(name)).then(
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

async function instantiate(build, given) {
  if (!platform) {
    throw new ModelError('not_ready', "modelkeep has no platform: import 'modelkeep', not one of its files");
  }
  let wasm = given;
  try {
    const { factory, wasm: own } = await build();
    wasm ??= own;
    return wrap(await factory(await platform.moduleOptions(wasm, wasm === own)));
  } catch (e) {
    if (e instanceof ModelError) throw e;
    const where = wasm instanceof URL || typeof wasm === 'string' ? ` from ${String(wasm)}` : '';
    const err = new ModelError(
      'network_error',
      `cannot load modelkeep's WebAssembly module${where}: ${e?.message ?? e} (a bundler that does not ` +
        `copy the .wasm: copy modelkeep/modelkeep.wasm next to your bundle and call ready({ wasm: URL }); ` +
        `for the importer, modelkeep/importer.wasm and ready({ importerWasm: URL }))`,
    );
    err.cause = e;
    throw err;
  }
}

/**
 * Resolves once the core module is loaded (and instantiated), the way tf.ready() does; memoised.
 * Every async function but load() and loadBytes() awaits it; call it before the synchronous API
 * (nn.sequential, Model.fromBytes, toBytes, ...). load() alone fetches only the reader module
 * when nothing else is loaded (a page that loads and predicts needs no more); the models it reads
 * there move to the core, when it is loaded, for what the reader does not do.
 * `wasm`: where the core's .wasm is. `importerWasm`: where the importer's .wasm is, remembered
 * for its first load. (The reader's is always next to the package: a page whose bundler does not
 * copy it calls ready({ wasm }) first, and its load() then reads into the core.) `importer: true`:
 * load the importer now too, so that the synchronous functions that need it (fileInfo,
 * Model.fromBytes, loadStateDict and toBytes on .pt or .safetensors) work; the async ones (load,
 * save) fetch it themselves on first use.
 * @param {{ wasm?: WasmSource, importerWasm?: WasmSource, importer?: boolean }} [options]
 *   WasmSource: URL | string | ArrayBuffer | ArrayBufferView | Response
 */
export async function ready({ wasm, importerWasm, importer = false } = {}) {
  if (importerWasm !== undefined && !loading.has('importer')) locations.set('importer', importerWasm);
  await Promise.all([module('core', { wasm }), importer ? module('importer') : null]);
}

/** The loaded module `name`, synchronously; not_ready when ready() has not resolved yet. */
export function runtime(name = 'core') {
  const m = loaded.get(name);
  if (m) return m;
  if (name === 'importer') throw needsImporter("runtime('importer')");
  throw new ModelError(
    'not_ready',
    `modelkeep's WebAssembly module is not loaded yet: await ready() first ` +
      `(import { ready } from 'modelkeep'; await ready();), or use an async function such as load() first`,
  );
}

/** The module `name` if it is loaded, else undefined (loads nothing). */
export function loadedModule(name) {
  return loaded.get(name);
}

/** True once the module `name` is loaded or being loaded. */
export function requested(name) {
  return loading.has(name);
}

/** The names of the modules loaded so far, in load order ('reader', 'core', 'importer' as used). */
export function loadedModules() {
  return [...loaded.keys()];
}

/**
 * not_ready for a synchronous call that needs the importer module before it is loaded: `what`
 * names the call ('fileInfo() of a PyTorch file'), the message names the fix.
 */
export function needsImporter(what) {
  return new ModelError(
    'not_ready',
    `${what} needs modelkeep's importer (PyTorch / safetensors), a WebAssembly module of its own that is ` +
      `not loaded yet: await ready({ importer: true }) first, or use the async load() / save(), which ` +
      `fetch it on first use`,
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
