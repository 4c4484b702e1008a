#!/usr/bin/env node
// import_bench.mjs — how fast a ~100 MB PyTorch state dict comes into a page, and how much
// memory that takes. A benchmark, not a test (not part of `npm test`).
//
// Run:  node tests/bench/import_bench.mjs
// Makes build/bench/big_state.pt with real torch.save (/usr/bin/python3, Debian's
// python3-torch) for nn.Sequential(Linear(1024,4096), ReLU, Linear(4096,4096), ReLU,
// Linear(4096,1024)) — 100.7 MB of float32 — and a safetensors copy, then times
// load(bytes, { architecture }) (bytes already in memory: the import alone) in Node and in
// headless Chromium, each run in a fresh wasm instance (a new page; in Node a new process) so
// that the WebAssembly memory after the import is the import's peak (wasm memory only
// grows; both modules' memories: the import runs in the importer module, and the model then
// moves to the core as .mkp bytes, docs/ARCHITECTURE.md "Two modules"). Prints a Markdown
// table; writes build/bench/import.json.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { startServer, chromiumPath, chromiumArgs } from '../browser/harness.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = join(root, 'build/bench');
const runs = 3;
const arch = '0=Linear(1024,4096),1=ReLU,2=Linear(4096,4096),3=ReLU,4=Linear(4096,1024)';
const weightBytes = 4 * (1024 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1024 + 1024);
const log = (line) => process.stderr.write(`${line}\n`);

async function makeFiles() {
  await mkdir(dir, { recursive: true });
  const pt = join(dir, 'big_state.pt');
  if (!existsSync(pt)) {
    log('writing build/bench/big_state.pt with torch.save ...');
    const p = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `
import torch, torch.nn as nn
torch.manual_seed(0)
m = nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1024))
torch.save(m.state_dict(), ${JSON.stringify(pt)})
`,
      ],
      { stdio: 'inherit' },
    );
    if (p.status !== 0) throw new Error('torch.save failed (is python3-torch installed?)');
  }
  const st = join(dir, 'big.safetensors');
  if (!existsSync(st)) {
    const { load } = await import('../../web/src/node.js');
    const m = await load(readFileSync(pt), { architecture: arch });
    await writeFile(st, m.toBytes({ format: 'safetensors' }));
    m.dispose();
  }
  return [
    { key: 'pt', label: 'torch .pt (torch.save, zip)', path: pt },
    { key: 'st', label: 'safetensors', path: st },
  ];
}

// One import in a fresh Node process: { ms, heapBefore, heapAfter }.
function nodeRun(path) {
  const script = `
    import { readFileSync } from 'node:fs';
    const { load, ready } = await import(${JSON.stringify(join(root, 'web/src/node.js'))});
    await ready({ importer: true }); // both modules loaded first: the time is the import's alone
    const { runtime } = await import(${JSON.stringify(join(root, 'web/src/runtime.js'))});
    const heap = () => runtime().HEAPU8.buffer.byteLength + runtime('importer').HEAPU8.buffer.byteLength;
    const bytes = readFileSync(${JSON.stringify(path)});
    const heapBefore = heap();
    const t0 = performance.now();
    const m = await load(bytes, { architecture: ${JSON.stringify(arch)} });
    const ms = performance.now() - t0;
    const heapAfter = heap();
    m.dispose();
    const t1 = performance.now();
    (await load(bytes, { architecture: ${JSON.stringify(arch)} })).dispose();
    const warmMs = performance.now() - t1;
    const t2 = performance.now();
    new Uint8Array(new WebAssembly.Memory({ initial: Math.ceil(${weightBytes} / 65536) }).buffer).fill(1);
    const touchMs = performance.now() - t2;
    console.log(JSON.stringify({ ms, warmMs, touchMs, heapBefore, heapAfter }));`;
  const p = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (p.status !== 0) throw new Error(p.stderr);
  return JSON.parse(p.stdout.trim().split('\n').pop());
}

async function browserRun(context, base, file) {
  const page = await context.newPage();
  await page.goto(`${base}/tests/browser/page.html`);
  await page.waitForFunction(() => window.mkReady === true, null, { timeout: 60_000 });
  const url = `/${file.path.slice(root.length)}`;
  const r = await page.evaluate(
    async ({ url, arch, weightBytes }) => {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const { runtime } = await import('/web/src/runtime.js');
      await window.mk.ready({ importer: true }); // both modules loaded first: the time is the import's alone
      const heap = () => runtime().HEAPU8.buffer.byteLength + runtime('importer').HEAPU8.buffer.byteLength;
      const heapBefore = heap();
      const t0 = performance.now();
      const m = await window.mk.load(bytes, { architecture: arch });
      const ms = performance.now() - t0;
      const heapAfter = heap();
      m.dispose();
      const t1 = performance.now();
      (await window.mk.load(bytes, { architecture: arch })).dispose();
      const warmMs = performance.now() - t1;
      const t2 = performance.now();
      new Uint8Array(new WebAssembly.Memory({ initial: Math.ceil(weightBytes / 65536) }).buffer).fill(1);
      const touchMs = performance.now() - t2;
      return { ms, warmMs, touchMs, heapBefore, heapAfter };
    },
    { url, arch, weightBytes },
  );
  await page.close();
  return r;
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

function summarise(label, where, file, results) {
  const times = results.map((r) => r.ms).sort((a, b) => a - b);
  const bytes = statSync(file.path).size;
  const peak = Math.max(...results.map((r) => r.heapAfter));
  const warm = median(results.map((r) => r.warmMs));
  return {
    where,
    file: file.label,
    bytes,
    runs: times,
    medianMs: median(times),
    warmMs: warm,
    touchMs: median(results.map((r) => r.touchMs)),
    mbPerS: bytes / 1e6 / (median(times) / 1000),
    warmMbPerS: bytes / 1e6 / (warm / 1000),
    peakWasmBytes: peak,
    peakOverWeights: peak / weightBytes,
  };
}

const files = await makeFiles();
const rows = [];
for (const f of files) {
  log(`node: ${f.label}`);
  rows.push(
    summarise(
      f.label,
      'Node (wasm)',
      f,
      Array.from({ length: runs }, () => nodeRun(f.path)),
    ),
  );
}
const server = await startServer();
const context = await chromium.launchPersistentContext('', {
  executablePath: chromiumPath,
  headless: true,
  args: chromiumArgs,
});
try {
  for (const f of files) {
    log(`chromium: ${f.label}`);
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await browserRun(context, server.url, f));
    rows.push(summarise(f.label, 'Chromium (wasm)', f, results));
  }
} finally {
  await context.close();
  await server.close();
}

const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
console.log(
  `Import of a ${mb(weightBytes)} float32 state dict into a runnable model (load(bytes, { architecture })), ${runs} runs each:\n`,
);
console.log(
  '| where | file | first import, fresh instance: median (min–max) | MB/s | fresh memory first touch (limit) | import again, same instance | MB/s | peak wasm memory | ÷ weights |',
);
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.where} | ${r.file} | ${r.medianMs.toFixed(0)} ms (${r.runs[0].toFixed(0)}–${r.runs[r.runs.length - 1].toFixed(0)}) | ${r.mbPerS.toFixed(0)} | ${r.touchMs.toFixed(0)} ms | ${r.warmMs.toFixed(0)} ms | ${r.warmMbPerS.toFixed(0)} | ${mb(r.peakWasmBytes)} | ${r.peakOverWeights.toFixed(2)}× |`,
  );
}
console.log('\n"fresh memory first touch": filling a new WebAssembly.Memory of the weights\' size once, in the same');
console.log('environment — what any import into fresh memory pays for page faults on this machine.');
console.log('The page also holds the file bytes it passed in (1× the weights) until it drops them.');
await writeFile(join(dir, 'import.json'), JSON.stringify({ weightBytes, rows }, null, 2));
