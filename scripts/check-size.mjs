#!/usr/bin/env node
// check-size.mjs — what a user's page downloads: a tiny app that imports { load } from
// 'modelkeep', loads an .mkp from IndexedDB and predicts (model.forward), built by Vite as a user
// would build it. Figures, each every file gzip -9: the lean page (the HTML's entry chunk, the
// chunks it imports statically and the .wasm they name: the reader module), against the budget,
// issue 15's 60 KB (60,000 bytes; exits 1 over it); then what the page would fetch on top, on
// first use, each printed: the core module (ready(), nn, save, ...) and the importer (the first
// load('net.pt') or Trainer) — the chunks imported only dynamically and the .wasm they name. Run
// by `npm test` after the wasm build; offline (docs/PERFORMANCE.md, "Download size").
// With --json: the same figures as one JSON object on stdout (tests/bench/goals.mjs reads it).
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

const BUDGET = 60000;
const root = fileURLToPath(new URL('../', import.meta.url));
const main = `import { load } from 'modelkeep';
const model = await load('indexeddb://model');
document.body.textContent = String(model.forward([[1, 2, 3]]).data);
`;

const app = mkdtempSync(join(tmpdir(), 'modelkeep-size-'));
const link = join(app, 'node_modules', 'modelkeep');
let groups;
try {
  // The package as installed: 'modelkeep' resolves through package.json's "exports".
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(root, link, 'dir');
  writeFileSync(join(app, 'index.html'), '<!doctype html>\n<script type="module" src="./main.js"></script>\n');
  writeFileSync(join(app, 'main.js'), main);
  const outDir = join(app, 'dist');
  await build({ root: app, configFile: false, envDir: false, logLevel: 'warn', build: { outDir } });
  const sizeOf = (f) => {
    const bytes = readFileSync(join(outDir, f));
    return { name: f, raw: bytes.length, gz: gzipSync(bytes, { level: 9 }).length };
  };
  const all = readdirSync(outDir, { recursive: true }).map(String);
  // The page's entry: the script the HTML loads; then what it imports statically, transitively.
  const entry = readFileSync(join(outDir, 'index.html'), 'utf8').match(/<script[^>]*src="\/?([^"]+\.js)"/)[1];
  // What `entry` imports statically, transitively, and the .wasm those chunks name, less `skip`;
  // the chunks they import only through import() (loaded on demand) go to `later`.
  const closure = (entry, skip, later) => {
    const files = new Set();
    const visit = (f) => {
      if (files.has(f) || skip.has(f)) return;
      files.add(f);
      const code = readFileSync(join(outDir, f), 'utf8');
      // import{...}from"./x.js" and import"./x.js" — never import("./x.js"), which loads on demand.
      for (const [, spec] of code.matchAll(/\bimport\s*(?:[\w*{$][^;()]*?from\s*)?["']([^"']+\.js)["']/g))
        visit(join(dirname(f), spec));
      for (const [, spec] of code.matchAll(/\bimport\(\s*["'`]([^"'`]+\.js)["'`]\s*\)/g))
        later.add(join(dirname(f), spec));
      for (const [name] of code.matchAll(/[\w.-]+\.wasm/g)) {
        const wasm = all.find((a) => a.endsWith(`/${name}`) || a === name);
        if (wasm && !skip.has(wasm)) files.add(wasm);
      }
    };
    visit(entry);
    return files;
  };
  const dynamic = new Set();
  const lean = closure(entry, new Set(), dynamic);
  // Each module fetched on first use: its chunk (core.js's, importer.js's, as Vite names them).
  groups = { lean: [...lean].sort().map(sizeOf), later: [] };
  for (const chunk of [...dynamic].sort()) {
    const files = closure(chunk, lean, new Set());
    const name = chunk.replace(/^.*\//, '').replace(/-[\w-]{8}\.js$/, '');
    groups.later.push({ name, files: [...files].sort().map(sizeOf) });
  }
} finally {
  rmSync(link); // the link itself, first: the clean-up below must never reach the repository
  rmSync(app, { recursive: true, force: true });
}

const json = process.argv.includes('--json');
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const sum = (files) => files.reduce((a, f) => a + f.gz, 0);
if (json) {
  const later = Object.fromEntries(groups.later.map(({ name, files }) => [name, { gz: sum(files), files }]));
  console.log(JSON.stringify({ budget: BUDGET, lean: { gz: sum(groups.lean), files: groups.lean }, later }));
  process.exit(sum(groups.lean) > BUDGET ? 1 : 0);
}
const total = (files, what) => {
  let raw = 0;
  let gz = 0;
  for (const f of files) {
    raw += f.raw;
    gz += f.gz;
    console.log(`size: ${f.name.padEnd(44)} ${String(f.raw).padStart(8)} bytes, ${String(f.gz).padStart(7)} gzipped`);
  }
  console.log(`size: ${what}: ${kib(gz)} gzipped (${kib(raw)} raw)`);
  return gz;
};
const lean = total(groups.lean, 'a page that imports { load }, loads an .mkp and predicts downloads');
const uses = { core: 'ready(), nn, save, toBytes, ...', importer: "the first load('net.pt') or Trainer" };
for (const { name, files } of groups.later)
  total(files, `the ${name} module, on top, on first use (${uses[name] ?? 'on demand'})`);
console.log(`size: budget of the page ${kib(BUDGET)} (issue 15's 60 KB: 60,000 bytes)`);
if (lean > BUDGET) {
  console.error(`size: over budget by ${kib(lean - BUDGET)}`);
  process.exit(1);
}
