#!/usr/bin/env node
// check-size.mjs — what a user's page downloads: a tiny app that imports { load, save } from
// 'modelkeep' and predicts (model.forward), built by Vite as a user would build it, then every
// emitted .js and .wasm gzip -9, against a budget; exits 1 over it. Run by `npm test` after the
// wasm build; offline. The budget is a regression guard: today's 140.0 KiB for that app (the
// .wasm 124.3, the minified JS bundle of package + loader + Vite's runtime 15.7; no node: stubs
// since the browser entry reaches no node: module) plus about 2 KiB of headroom. The importer
// in the page's module grew by 4.4 KiB with numpy arrays, torch 2.x's layouts, archives of torch
// files and the integrity check without views, and the key errors' side-by-side listing and
// likely fix added 1.4 KiB; the next step moves the importer out of the page
// (a module fetched on first use), toward the goal of 60 KB, and why it is not met yet is in
// docs/PERFORMANCE.md ("Download size").
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

const BUDGET = 142 * 1024;
const root = fileURLToPath(new URL('../', import.meta.url));
const main = `import { load, save } from 'modelkeep';
const model = await load('indexeddb://model');
document.body.textContent = String(model.forward([[1, 2, 3]]).data);
await save(model, 'indexeddb://copy');
`;

const app = mkdtempSync(join(tmpdir(), 'modelkeep-size-'));
const link = join(app, 'node_modules', 'modelkeep');
let files;
try {
  // The package as installed: 'modelkeep' resolves through package.json's "exports".
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(root, link, 'dir');
  writeFileSync(join(app, 'index.html'), '<!doctype html>\n<script type="module" src="./main.js"></script>\n');
  writeFileSync(join(app, 'main.js'), main);
  const outDir = join(app, 'dist');
  await build({ root: app, configFile: false, envDir: false, logLevel: 'warn', build: { outDir } });
  files = readdirSync(outDir, { recursive: true })
    .filter((f) => f.endsWith('.js') || f.endsWith('.wasm'))
    .sort()
    .map((f) => {
      const bytes = readFileSync(join(outDir, f));
      return { name: f, raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
    });
} finally {
  rmSync(link); // the link itself, first: the clean-up below must never reach the repository
  rmSync(app, { recursive: true, force: true });
}

let raw = 0;
let gz = 0;
for (const f of files) {
  raw += f.raw;
  gz += f.gz;
  console.log(`size: ${f.name.padEnd(44)} ${String(f.raw).padStart(8)} bytes, ${String(f.gz).padStart(7)} gzipped`);
}
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(
  `size: a page that imports { load, save } downloads ${kib(gz)} gzipped (${kib(raw)} raw); ` + `budget ${kib(BUDGET)}`,
);
if (gz > BUDGET) {
  console.error(`size: over budget by ${kib(gz - BUDGET)}`);
  process.exit(1);
}
