// node.js — the package's entry in Node (package.json "exports" condition "node"): files by path
// or file:// URL (files.js), and the .wasm read from disk, where Emscripten's web loader cannot
// fetch it (TOOLCHAIN notes). Then everything api.js exports, as index.js does for browsers.
import { readFile as readBytes } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFile, writeFile } from './files.js';
import { bytesOptions, usePlatform } from './runtime.js';
import { ModelError } from './errors.js';

usePlatform({
  name: 'node',
  readFile,
  writeFile,
  /** A URL (file:, or fetched), a path, bytes or a Response → the module's wasmBinary. */
  async moduleOptions(wasm) {
    const given = await bytesOptions(wasm);
    if (given) return given;
    if (!(wasm instanceof URL) && typeof wasm !== 'string') {
      throw new ModelError('invalid_argument', `wasm must be a URL, a path, bytes or a Response, got ${String(wasm)}`);
    }
    const url = wasm instanceof URL || /^[a-z][a-z0-9+.-]+:/i.test(wasm) ? new URL(wasm) : pathToFileURL(resolve(wasm));
    if (url.protocol === 'file:') return { wasmBinary: await readBytes(url) };
    const response = await fetch(url);
    if (!response.ok) throw new ModelError('network_error', `fetching ${url.href} gave HTTP ${response.status}`);
    return bytesOptions(response);
  },
});

export * from './api.js';
