#!/usr/bin/env node
// check-size.mjs — what a page downloads from this package (web/src/*.js, the
// Emscripten loader and the .wasm), gzip -9, against a budget; exits 1 over it.
// Run by `npm test` after the wasm build. The budget is a regression guard:
// today's 144.8 KiB (129.5 before the compact-weight kernels and the streaming
// .mkp reader and writer) plus about 1 KiB of headroom; the goal is 60 KB, and why it is
// not met is in docs/PERFORMANCE.md ("Download size").
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 146 * 1024;
const root = fileURLToPath(new URL('../', import.meta.url));
const files = [
  ...readdirSync(join(root, 'web/src')).filter((f) => f.endsWith('.js')).map((f) => join('web/src', f)),
  'web/dist/modelkeep_wasm.mjs',
  'web/dist/modelkeep_wasm.wasm',
];
let raw = 0;
let gz = 0;
for (const f of files) {
  const bytes = readFileSync(join(root, f));
  const z = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gz += z;
  console.log(`size: ${f.padEnd(32)} ${String(bytes.length).padStart(8)} bytes, ${String(z).padStart(7)} gzipped`);
}
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`size: a page downloads ${kib(gz)} gzipped (${kib(raw)} raw); budget ${kib(BUDGET)}`);
if (gz > BUDGET) {
  console.error(`size: over budget by ${kib(gz - BUDGET)}`);
  process.exit(1);
}
