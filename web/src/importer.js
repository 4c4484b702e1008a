// importer.js — the importer module's loader and the URL of its .wasm, in a file of their own:
// runtime.js imports it with import() on first use, so that a bundler puts both in a chunk the
// page fetches only then (and emits the .wasm through the same `new URL(..., import.meta.url)`).
export { default as factory } from '../dist-importer/modelkeep_wasm.mjs';
export const wasm = new URL('../dist-importer/modelkeep_wasm.wasm', import.meta.url);
