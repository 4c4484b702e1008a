#!/usr/bin/env node
// goals.mjs — issue 15's goals, each judged from this run's figures: met or not, with the
// figures that say so and, where not, what the same run measured that explains it. The last
// step of `npm run bench` (tests/bench/bench.sh); reads what the earlier steps wrote into
// build/bench/ (forward.json, limits.json, browser.json, app.json, startup.json) and runs
// scripts/check-size.mjs --json for the download. A figure a step did not write this run is
// reported as missing, never taken from an older run (bench.sh passes the run's start time).
// Run:  node tests/bench/goals.mjs [--since EPOCH_SECONDS] [--dir DIR]   (DIR: default build/bench;
//       tests/js/goals.test.mjs gives it figures of its own)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const option = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const since = Number(option('--since') ?? 0);
const dir = option('--dir') ?? join(root, 'build/bench');

/** build/bench/<name>.json if this run wrote it, else null. */
function read(name) {
  const file = join(dir, `${name}.json`);
  if (!existsSync(file) || statSync(file).mtimeMs / 1000 < since - 1) return null;
  return JSON.parse(readFileSync(file, 'utf8'));
}

const rows = [];
/** One goal: `met` true/false (null: no figures), `figures` and `why` (when not met) as text. */
const goal = (name, met, figures, why = '') =>
  rows.push({ name, met, text: met === null ? `no figures from this run (${figures})` : figures, why: met ? '' : why });
const f = (v, d = 2) => (v === undefined || v === null || Number.isNaN(v) ? '?' : v.toFixed(d));
const PEERS = ['tfjs-cpu', 'tfjs-wasm', 'ort-wasm'];

// ---- the forward pass, Chromium, one thread ------------------------------------------------------
const forward = read('forward');
const chromium = forward?.environments.find((e) => e.key === 'chromium');
const cell = (model, batch) =>
  chromium?.models.find((m) => m.key === model)?.cells.find((c) => c.batch === batch)?.results ?? null;
/** The best peer's float32 median at that cell: { peer, ms }. */
const best = (results) =>
  PEERS.filter((p) => results[p]).reduce(
    (b, p) => (results[p].median < b.ms ? { peer: p, ms: results[p].median } : b),
    { peer: null, ms: Infinity },
  );
const limits = read('limits');

{
  const cells = [
    ['mnist', 64],
    ['big', 32],
  ].map(([m, b]) => ({ m, b, r: cell(m, b) }));
  if (cells.some((c) => !c.r)) goal('batch ≥ 32: ≥ 30 GFLOP/s and ≥ 1.15× the best peer', null, 'forward.json');
  else {
    const parts = cells.map(({ m, b, r }) => {
      const top = best(r);
      return { m, b, gf: r.modelkeep.gflops, ratio: top.ms / r.modelkeep.median, peer: top.peer };
    });
    const gfMet = parts.every((p) => p.gf >= 30);
    const ratioMet = parts.every((p) => p.ratio >= 1.15);
    const ref = limits?.gemm.map((g) => `${g.key} b${g.batch} ${f(g.flops / g.refMs / 1e6, 1)}`).join(', ');
    goal(
      'batch ≥ 32: ≥ 30 GFLOP/s and ≥ 1.15× the best peer',
      gfMet && ratioMet,
      parts.map((p) => `${p.m} b${p.b}: ${f(p.gf, 1)} GFLOP/s, ${f(p.ratio)}× ${p.peer}`).join('; '),
      `${gfMet ? '' : 'the reference SIMD128 sgemm itself reaches ' + (ref ?? '?') + ' GFLOP/s in this run (no FMA in SIMD128); '}` +
        `${ratioMet ? '' : 'the peers run GEMMs of the same kind, within a few % of it'}`,
    );
  }
  if (!limits) goal('batch ≥ 32: ≥ 85 % of the reference sgemm (same page)', null, 'limits.json');
  else {
    const shares = limits.gemm.map((g) => ({ key: g.key, share: g.refMs / g.mkMs }));
    goal(
      'batch ≥ 32: ≥ 85 % of the reference sgemm (same page)',
      shares.every((s) => s.share >= 0.85),
      shares.map((s) => `${s.key} ${f(s.share * 100, 0)} %`).join(', '),
      'below the register-blocked reference on this shape',
    );
  }
}
{
  const r = cell('mnist', 1);
  if (!r) goal('batch 1: MNIST ≤ 0.85× the best peer’s time', null, 'forward.json');
  else {
    const top = best(r);
    const ratio = r.modelkeep.median / top.ms;
    goal(
      'batch 1: MNIST ≤ 0.85× the best peer’s time',
      ratio <= 0.85,
      `${f(r.modelkeep.median, 4)} ms, ${f(ratio)}× ${top.peer}’s ${f(top.ms, 4)} ms`,
      `this run's samples: modelkeep ${f(r.modelkeep.min, 4)}–${f(r.modelkeep.max, 4)} ms, ${top.peer} ` +
        `${f(r[top.peer].min, 4)}–${f(r[top.peer].max, 4)} ms`,
    );
  }
}
{
  const r = cell('big', 1);
  if (!r || !limits)
    goal('batch 1: 100 MB f32 within 5 % of the streaming limit, ≤ the best peer', null, 'forward.json, limits.json');
  else {
    const top = best(r);
    const s = limits.stream;
    const within = s.mkMs <= s.floorMs * 1.05;
    const vsPeer = r.modelkeep.median <= top.ms;
    goal(
      'batch 1: 100 MB f32 within 5 % of the streaming limit, ≤ the best peer',
      within && vsPeer,
      `${f(s.mkMs)} ms against the limit's ${f(s.floorMs)} ms (limits page); ${f(r.modelkeep.median)} ms against ` +
        `${top.peer}'s ${f(top.ms)} ms (forward page)`,
      `${within ? '' : 'slower than one streaming read of the weights; '}${vsPeer ? '' : `${top.peer} was faster in this run`}`,
    );
  }
}
{
  const r = cell('big', 1);
  if (!r || !r['modelkeep-f16'] || !r['modelkeep-int8'])
    goal('batch 1, 100 MB: f16 ≥ 1.6× and int8 ≥ 3× faster than the best peer’s f32', null, 'forward.json');
  else {
    const top = best(r);
    const f16 = top.ms / r['modelkeep-f16'].median;
    const int8 = top.ms / r['modelkeep-int8'].median;
    goal(
      'batch 1, 100 MB: f16 ≥ 1.6× and int8 ≥ 3× faster than the best peer’s f32',
      f16 >= 1.6 && int8 >= 3,
      `f16 ${f(f16)}×, int8 ${f(int8)}× ${top.peer}'s f32 (modelkeep's own f32: f16 ${f(r.modelkeep.median / r['modelkeep-f16'].median)}×, ` +
        `int8 ${f(r.modelkeep.median / r['modelkeep-int8'].median)}×)`,
      'decoding costs instructions: SIMD128 has no half-float conversion (f16 is decoder-bound, docs/KERNELS.md ' +
        'counts the operations per 16 weights) and int8 needs its input quantised and its sums widened',
    );
  }
}

// ---- IndexedDB -------------------------------------------------------------------------------------
const browser = read('browser');
if (!browser) {
  goal('IndexedDB: save ≤ 1.15× and load ≤ 1.10× a raw put / get of the same bytes', null, 'browser.json');
  goal('IndexedDB: both faster than TensorFlow.js’s indexeddb://', null, 'browser.json');
  goal('IndexedDB load: peak memory ≤ 1.1× the stored bytes beyond the model (100 MB f32)', null, 'browser.json');
} else {
  const parts = browser.models.map((m) => {
    const by = Object.fromEntries(m.peers.map((p) => [p.peer, p]));
    const mk = by.modelkeep;
    return {
      key: m.key,
      save: mk.save.median / by.raw.save.median,
      load: mk.load.median / by.raw.load.median,
      tfSave: by.tfjs ? by.tfjs.save.median / mk.save.median : NaN,
      tfLoad: by.tfjs ? by.tfjs.load.median / mk.load.median : NaN,
      fromBytes: mk.parts?.fromBytes?.median,
      toBytes: mk.parts?.toBytes?.median,
    };
  });
  goal(
    'IndexedDB: save ≤ 1.15× and load ≤ 1.10× a raw put / get of the same bytes',
    parts.every((p) => p.save <= 1.15 && p.load <= 1.1),
    parts.map((p) => `${p.key}: save ${f(p.save)}×, load ${f(p.load)}×`).join('; '),
    'one more pass over the file than a raw put/get: the CRC-32 and the weights packed for the kernels on a ' +
      `load (Model.fromBytes: ${parts.map((p) => `${p.key} ${f(p.fromBytes, 1)} ms`).join(', ')}), unpacking on a save (toBytes: ` +
      `${parts.map((p) => `${p.key} ${f(p.toBytes, 1)} ms`).join(', ')})`,
  );
  goal(
    'IndexedDB: both faster than TensorFlow.js’s indexeddb://',
    parts.every((p) => p.tfSave > 1 && p.tfLoad > 1),
    parts.map((p) => `${p.key}: TF.js ÷ modelkeep save ${f(p.tfSave)}, load ${f(p.tfLoad)}`).join('; '),
    'TF.js writes with relaxed durability (Chromium’s default since 121); modelkeep asks for strict, as the raw peer does',
  );
  const big = browser.memory?.find((m) => m.key === 'big');
  if (!big)
    goal(
      'IndexedDB load: peak memory ≤ 1.1× the stored bytes beyond the model (100 MB f32)',
      null,
      'browser.json --memory',
    );
  else {
    // The model itself: its float32 tensors, about the stored bytes of an f32 file.
    const beyond = (big.rssPeakGrowth - big.storedBytes) / big.storedBytes;
    goal(
      'IndexedDB load: peak memory ≤ 1.1× the stored bytes beyond the model (100 MB f32)',
      beyond <= 1.1,
      `renderer peak resident memory grows ${f(big.rssPeakGrowth / big.storedBytes)}× the stored bytes, ` +
        `${f(beyond)}× beyond the model; wasm memory ${f(big.wasmGrowth / big.storedBytes)}× (the model included)`,
      'the chunks IndexedDB hands over are held once (never joined) until wasm has read them, beside the browser’s own buffers',
    );
  }
}

// ---- download and start-up ---------------------------------------------------------------------
{
  let size = null;
  try {
    size = JSON.parse(
      execFileSync(process.execPath, [join(root, 'scripts/check-size.mjs'), '--json'], { encoding: 'utf8' }),
    );
  } catch (e) {
    if (e.stdout) size = JSON.parse(e.stdout); // over budget: exit 1, the figures still printed
  }
  if (!size)
    goal(
      'download ≤ 60 KB (60,000 bytes) for a page that loads .mkp models and predicts; the rest on first use',
      null,
      'scripts/check-size.mjs --json',
    );
  else {
    goal(
      'download ≤ 60 KB (60,000 bytes) for a page that loads .mkp models and predicts; the rest on first use',
      size.lean.gz <= 60000,
      `${size.lean.gz} bytes gzipped (the reader); on first use: ` +
        Object.entries(size.later)
          .map(([name, l]) => `${name} +${l.gz}`)
          .join(', '),
      'the reader module and the package’s JavaScript together',
    );
  }
}
{
  const app = read('app');
  if (!app) goal('first prediction ≤ 10 ms over the empty page (a bundled app, nothing cached)', null, 'app.json');
  else {
    const median = (v) => {
      const s = [...v].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    };
    const empty = median(app.first.empty);
    const over = Object.fromEntries(
      Object.entries(app.first)
        .filter(([k]) => k !== 'empty')
        .map(([k, v]) => [k, median(v) - empty]),
    );
    const ours = ['modelkeepMkp', 'modelkeep'].filter((k) => over[k] !== undefined);
    const mine = Math.min(...ours.map((k) => over[k]));
    const less = Object.keys(over).filter((k) => !ours.includes(k) && over[k] < mine);
    goal(
      'first prediction ≤ 10 ms over the empty page (a bundled app, nothing cached)',
      ours.some((k) => over[k] <= 10),
      Object.entries(over)
        .map(([k, v]) => `${k} +${f(v, 1)} ms`)
        .join(', '),
      'fetching, compiling and instantiating the module after the page’s script has run (dependent fetches) ' +
        `takes tens of milliseconds on this VM; ${less.length ? `${less.join(', ')} added less than modelkeep in this run` : 'modelkeep adds the least of the libraries measured'}`,
    );
  }
  const startup = read('startup');
  if (!startup) goal('first prediction ≤ 30 ms, the unbundled import-map page (cold)', null, 'startup.json');
  else {
    const cold = startup.results.filter((r) => r.cache === 'cold');
    const med = (r) => {
      const s = r.runs.map((x) => x.total).sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    };
    goal(
      'first prediction ≤ 30 ms, the unbundled import-map page (cold)',
      cold.some((r) => med(r) <= 30),
      cold.map((r) => `${r.model}: ${f(med(r), 1)} ms`).join(', '),
      'the chain of dependent fetches of an unbundled page (index.js → its modules → the loader → the .wasm)',
    );
  }
}

const p = (line = '') => process.stdout.write(`${line}\n`);
p("## Issue 15's goals, judged from this run (tests/bench/goals.mjs)");
p();
p('| goal | | this run | why not |');
p('|---|---|---|---|');
for (const r of rows)
  p(`| ${r.name} | ${r.met === null ? '—' : r.met ? '**met**' : '**not met**'} | ${r.text} | ${r.why} |`);
p();
p(`${rows.filter((r) => r.met).length} of ${rows.length} met; reproduce with \`npm run bench\`.`);
