// runtime.js — the WebAssembly module, created once and cached. Must: load
// exactly once per realm; find the .wasm next to this package (browsers, Web
// Workers, bundlers that understand `new URL(..., import.meta.url)`), or read it
// from disk in Node, where Emscripten's own loader cannot (see TOOLCHAIN notes).
import createModelkeep from '../dist/modelkeep_wasm.mjs';

const wasmUrl = new URL('../dist/modelkeep_wasm.wasm', import.meta.url);

let modulePromise = null;

/** True in Node.js (and not in a browser or worker). */
export const isNode = typeof process !== 'undefined' && !!process.versions?.node &&
  typeof window === 'undefined' && typeof importScripts === 'undefined';

/**
 * Loads (once) and returns the Emscripten module.
 * @param {{ wasmBinary?: ArrayBuffer | Uint8Array, locateFile?: (file: string) => string }} [options]
 *   only the first call's options are used.
 */
export function loadModule(options = {}) {
  modulePromise ??= (async () => {
    const opts = { ...options };
    if (!opts.wasmBinary && !opts.locateFile) {
      if (isNode) {
        const { readFile } = await import('node:fs/promises');
        opts.wasmBinary = await readFile(wasmUrl);
      } else {
        opts.locateFile = () => wasmUrl.href;
      }
    }
    return createModelkeep(opts);
  })();
  return modulePromise;
}

let wasm = null;

/** The loaded module; the package entry awaits loadModule() before anything else runs. */
export function runtime() {
  if (!wasm) throw new Error('modelkeep: the WebAssembly module is not loaded yet');
  return wasm;
}

export async function ready(options) {
  wasm ??= await loadModule(options);
  return wasm;
}
