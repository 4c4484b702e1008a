// modelkeep — build or import a model, save it to IndexedDB, reload it, predict. The entry for
// browsers, Web Workers and bundlers (package.json "exports" condition "default"; Node gets
// node.js): no node: module is reachable from here. The .wasm is fetched on the first await
// ready() (or the first async call), from next to the package — bundlers that understand
// `new URL(..., import.meta.url)` copy it — or from where ready({ wasm }) says.
import { bytesOptions, usePlatform } from './runtime.js';
import { ModelError } from './errors.js';

usePlatform({
  name: 'browser',
  /** A URL or string → Emscripten fetches it (streaming compile); bytes or a Response → wasmBinary. */
  async moduleOptions(wasm) {
    const given = await bytesOptions(wasm);
    if (given) return given;
    if (!(wasm instanceof URL) && typeof wasm !== 'string') {
      throw new ModelError(
        'invalid_argument',
        `wasm must be a URL, a string, bytes or a Response, got ${String(wasm)}`,
      );
    }
    const href = String(wasm);
    // The .wasm from there; anything else (the pthreads build's worker script) next to the loader.
    return { locateFile: (path, prefix) => (path.endsWith('.wasm') ? href : prefix + path) };
  },
});

export * from './api.js';
