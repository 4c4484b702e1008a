// modelkeep — build or import a model, save it to IndexedDB, reload it, predict. The entry for
// browsers, Web Workers and bundlers (package.json "exports" condition "default"; Node gets
// node.js): no node: module is reachable from here. The reader's .wasm is fetched by a load()
// when nothing else is loaded, the core's on the first await ready() (or the first async call
// that needs it), the importer's on the first PyTorch / safetensors file or trainer (runtime.js),
// each from next to the package — bundlers that understand
// `new URL(..., import.meta.url)` copy it — or from where ready({ wasm }) says.
import { bytesOptions, usePlatform } from './runtime.js';
import { ModelError } from './errors.js';

// Vite 5-7's dev server runs the package pre-bundled into node_modules/.vite/deps/ without the
// .wasm, so '../dist/x.wasm' names node_modules/.vite/dist/x.wasm, which does not exist (Vite
// issue 8427; Vite 8 and every production build rewrite the URL themselves): the package's own.
// The same for the reader's and the importer's, '../dist-reader/x.wasm', '../dist-importer/x.wasm'.
const viteDeps = /\/node_modules\/\.vite\/(dist(?:-reader|-importer)?)\/([^/]+\.wasm)$/;

usePlatform({
  name: 'browser',
  /** A URL or string → Emscripten fetches it (streaming compile); bytes or a Response → wasmBinary. */
  async moduleOptions(wasm, isDefault) {
    const given = await bytesOptions(wasm);
    if (given) return given;
    if (!(wasm instanceof URL) && typeof wasm !== 'string') {
      throw new ModelError(
        'invalid_argument',
        `wasm must be a URL, a string, bytes or a Response, got ${String(wasm)}`,
      );
    }
    const href = isDefault ? String(wasm).replace(viteDeps, '/node_modules/modelkeep/web/$1/$2') : String(wasm);
    // The .wasm from there; anything else (the pthreads build's worker script) next to the loader.
    return { locateFile: (path, prefix) => (path.endsWith('.wasm') ? href : prefix + path) };
  },
});

export * from './api.js';
