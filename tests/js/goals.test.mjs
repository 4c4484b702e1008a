// tests/bench/goals.mjs, the verdict `npm run bench` ends with: each of issue 15's goals judged
// from the figures a run wrote — met, not met (with what explains it), or no figures when a step
// wrote none. Given figures of its own here, chosen on both sides of each threshold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../bench/goals.mjs', import.meta.url));

/** goals.mjs over `files` ({ name: object }) → { goal text: 'met' | 'not met' | '—' }. */
function verdicts(files) {
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-goals-'));
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, `${name}.json`), JSON.stringify(data));
    const out = execFileSync(process.execPath, [script, '--dir', dir], { encoding: 'utf8' });
    const rows = {};
    for (const line of out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| goal'))) {
      const [name, verdict] = line.split(' | ');
      rows[name.slice(2)] = verdict.replaceAll('*', '');
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = (mk, peers, extra = {}) => ({ modelkeep: mk, ...peers, ...extra });
const forward = {
  environments: [
    {
      key: 'chromium',
      models: [
        {
          key: 'mnist',
          cells: [
            { batch: 1, results: results({ median: 0.08 }, { 'ort-wasm': { median: 0.1 } }) },
            { batch: 64, results: results({ median: 2, gflops: 40 }, { 'tfjs-wasm': { median: 2.5 } }) },
          ],
        },
        {
          key: 'big',
          cells: [
            {
              batch: 1,
              results: results(
                { median: 3.5 },
                { 'ort-wasm': { median: 3.9 }, 'tfjs-wasm': { median: 4.2 } },
                { 'modelkeep-f16': { median: 2.0 }, 'modelkeep-int8': { median: 1.4 } },
              ),
            },
            { batch: 32, results: results({ median: 50, gflops: 31 }, { 'ort-wasm': { median: 60 } }) },
          ],
        },
      ],
    },
  ],
};
const limits = {
  gemm: [
    { key: 'mnist', batch: 64, flops: 1e8, refMs: 3, mkMs: 3.2 },
    { key: 'big', batch: 32, flops: 1e9, refMs: 50, mkMs: 50 },
  ],
  stream: { floorMs: 3.6, mkMs: 3.7 },
};
const peer = (name, save, load) => ({ peer: name, save: { median: save }, load: { median: load } });
const browser = {
  models: [
    { key: 'mnist', peers: [peer('modelkeep', 11, 6.5), peer('raw', 10, 6), peer('tfjs', 15, 13)] },
    { key: 'big', peers: [peer('modelkeep', 500, 300), peer('raw', 577, 174), peer('tfjs', 394, 583)] },
  ],
  memory: [{ key: 'big', storedBytes: 100, wasmGrowth: 90, rssPeakGrowth: 200 }],
};

test('goals: each judged on its threshold, from the figures given', () => {
  const v = verdicts({ forward, limits, browser });
  assert.equal(v['batch ≥ 32: ≥ 30 GFLOP/s and ≥ 1.15× the best peer'], 'met'); // 40 and 31 GF/s; 1.25×, 1.2×
  assert.equal(v['batch ≥ 32: ≥ 85 % of the reference sgemm (same page)'], 'met'); // 94 %, 100 %
  assert.equal(v['batch 1: MNIST ≤ 0.85× the best peer’s time'], 'met'); // 0.8×
  assert.equal(v['batch 1: 100 MB f32 within 5 % of the streaming limit, ≤ the best peer'], 'met');
  // f16 1.95× but int8 2.79× ORT's 3.9 ms: one short is not met.
  assert.equal(v['batch 1, 100 MB: f16 ≥ 1.6× and int8 ≥ 3× faster than the best peer’s f32'], 'not met');
  // MNIST save 1.1× / load 1.08× pass, but the big load 1.72× does not.
  assert.equal(v['IndexedDB: save ≤ 1.15× and load ≤ 1.10× a raw put / get of the same bytes'], 'not met');
  assert.equal(v['IndexedDB: both faster than TensorFlow.js’s indexeddb://'], 'not met'); // big save 0.79
  assert.equal(v['IndexedDB load: peak memory ≤ 1.1× the stored bytes beyond the model (100 MB f32)'], 'met'); // 1.0×
  // No app.json or startup.json here: said so, not taken from elsewhere.
  assert.equal(v['first prediction ≤ 10 ms over the empty page (a bundled app, nothing cached)'], '—');
  assert.equal(v['first prediction ≤ 30 ms, the unbundled import-map page (cold)'], '—');
});

test('goals: the other side of each threshold', () => {
  const slow = structuredClone(forward);
  slow.environments[0].models[0].cells[1].results.modelkeep.gflops = 29; // under 30 GF/s
  slow.environments[0].models[0].cells[0].results.modelkeep.median = 0.09; // 0.9× ORT
  slow.environments[0].models[1].cells[0].results['modelkeep-int8'].median = 1.2; // 3.25×
  const memory = structuredClone(browser);
  memory.memory[0].rssPeakGrowth = 220; // 1.2× beyond the model
  const v = verdicts({ forward: slow, limits: { ...limits, stream: { floorMs: 3.0, mkMs: 3.7 } }, browser: memory });
  assert.equal(v['batch ≥ 32: ≥ 30 GFLOP/s and ≥ 1.15× the best peer'], 'not met');
  assert.equal(v['batch 1: MNIST ≤ 0.85× the best peer’s time'], 'not met');
  assert.equal(v['batch 1: 100 MB f32 within 5 % of the streaming limit, ≤ the best peer'], 'not met');
  assert.equal(v['batch 1, 100 MB: f16 ≥ 1.6× and int8 ≥ 3× faster than the best peer’s f32'], 'met');
  assert.equal(v['IndexedDB load: peak memory ≤ 1.1× the stored bytes beyond the model (100 MB f32)'], 'not met');
});
