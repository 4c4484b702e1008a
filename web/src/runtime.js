// runtime.js — the WebAssembly module, created once. Must: load
// exactly once per realm; find the .wasm next to this package (browsers, Web
// Workers, bundlers that understand `new URL(..., import.meta.url)`), or read it
// from disk in Node, where Emscripten's own loader cannot (see TOOLCHAIN notes).
import createModelkeep from '../dist/modelkeep_wasm.mjs';

const wasmUrl = new URL('../dist/modelkeep_wasm.wasm', import.meta.url);

/** True in Node.js (and not in a browser or worker). */
export const isNode =
  typeof process !== 'undefined' &&
  !!process.versions?.node &&
  typeof window === 'undefined' &&
  typeof importScripts === 'undefined';

async function loadModule() {
  if (isNode) {
    const { readFile } = await import('node:fs/promises');
    return createModelkeep({ wasmBinary: await readFile(wasmUrl) });
  }
  // The .wasm from wasmUrl (which bundlers rewrite); anything else (the
  // pthreads build's worker script) next to the loader, as Emscripten would.
  return createModelkeep({ locateFile: (path, prefix) => (path.endsWith('.wasm') ? wasmUrl.href : prefix + path) });
}

// Top-level await: every module that needs wasm imports this one, so the module
// is ready before any of them runs, whichever of them a bundler keeps.
const wasm = await loadModule();

/** The loaded Emscripten module. */
export function runtime() {
  return wasm;
}
