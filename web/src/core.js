// core.js — the core module's loader and the URL of its .wasm, in a file of their own: runtime.js
// imports it with import() when ready() (or a call that needs the core) first runs, so that a
// bundler puts both in a chunk that a page which only loads and predicts (the reader) never fetches.
export { default as factory } from '../dist/modelkeep_wasm.mjs';
export const wasm = new URL('../dist/modelkeep_wasm.wasm', import.meta.url);
