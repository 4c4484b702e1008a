#!/usr/bin/env node
// browser_bench.mjs — IndexedDB save/load time in headless Chromium, side by side: modelkeep,
// TensorFlow.js 4.22 (cpu backend) and a raw IndexedDB put/get of the same bytes as one ArrayBuffer
// (what a user's plain code does: the practical limit), for the MNIST MLP and a ~100 MB MLP; the peak memory of a modelkeep IndexedDB load
// (wasm memory and the page's resident memory, against the stored bytes); plus what each
// library makes a page download (gzip -9). A benchmark, not a test: it is not part of `npm test`.
//
// Run:  node tests/bench/browser_bench.mjs [--quick | --memory]
//   --quick   2 timed runs and only the MNIST model (a fast check that everything works)
//   --memory  only the peak memory of a load, for both models
// Prints a Markdown report on stdout, progress on stderr, and writes build/bench/browser.json.
// Needs: web/dist (built here with scripts/build-wasm.sh when missing), Chromium at
// /usr/bin/chromium (or CHROMIUM_PATH), and the devDependency @tensorflow/tfjs. The download
// sizes also read @tensorflow/tfjs-backend-wasm and onnxruntime-web; a missing one is reported.
// Timings on a shared or busy machine are noisy: the load average is printed with the results.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import {
  startServer,
  chromiumPath,
  chromiumArgs,
  tempDir,
  removeDir,
  watchErrors,
  browserMissing,
  ensureWasmBuilt,
  fileSizes,
} from '../browser/harness.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const quick = process.argv.includes('--quick');
const memoryOnly = process.argv.includes('--memory');
const runs = quick ? 2 : 5;
const outFile = join(root, memoryOnly ? 'build/bench/browser-memory.json' : 'build/bench/browser.json');

const allModels = [
  { key: 'mnist', label: 'MNIST MLP 784→512→512→10', sizes: [784, 512, 512, 10] },
  { key: 'big', label: 'MLP 1024→4096→4096→1024', sizes: [1024, 4096, 4096, 1024] },
];
const models = quick ? allModels.slice(0, 1) : allModels;
const memoryModels = quick ? allModels.slice(0, 1) : allModels;

/** The peers (the order rotates from round to round). `info: true` rows are for context only. */
const peers = [
  { key: 'modelkeep', label: 'modelkeep' },
  // The chunking decision, measured (issue 15): the same store with one value per model.
  { key: 'modelkeepOne', label: 'modelkeep, one value per model (chunkBytes 1 GiB)', info: true },
  { key: 'raw', label: 'raw IndexedDB (strict)' },
  { key: 'rawRelaxed', label: 'raw IndexedDB (relaxed)', info: true },
  { key: 'tfjs', label: 'TensorFlow.js 4.22 (cpu)' },
];

const log = (line) => process.stderr.write(`${line}\n`);

// ---- statistics and formatting -----------------------------------------------------------------

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: values };
}

const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const cell = (s) => `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : 'n/a');
const mb = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1)} MB`;
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const mbps = (bytes, msec) => `${(bytes / 1e6 / (msec / 1000)).toFixed(0)} MB/s`;

// ---- part 2: what a page downloads -------------------------------------------------------------

function downloadSizes() {
  const tf = 'node_modules/@tensorflow';
  const ort = 'node_modules/onnxruntime-web/dist';
  const srcFiles = readdirSync(join(root, 'web/src'))
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((f) => `web/src/${f}`);
  const version = (pkg) => {
    try {
      return JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  const bundles = [
    {
      key: 'modelkeep',
      label: 'modelkeep (web/src + wasm)',
      files: [...srcFiles, 'web/dist/modelkeep_wasm.mjs', 'web/dist/modelkeep_wasm.wasm'],
    },
    {
      key: 'tfjs-wasm',
      label: `TensorFlow.js ${version('@tensorflow/tfjs') ?? '(missing)'} union + wasm backend`,
      files: [
        `${tf}/tfjs/dist/tf.min.js`,
        `${tf}/tfjs-backend-wasm/dist/tf-backend-wasm.min.js`,
        `${tf}/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm`,
      ],
    },
    {
      key: 'tfjs-cpu',
      label: `TensorFlow.js ${version('@tensorflow/tfjs') ?? '(missing)'} union, cpu only`,
      files: [`${tf}/tfjs/dist/tf.min.js`],
    },
    {
      key: 'tfjs-min',
      label: 'TensorFlow.js core + layers + cpu backend only',
      info: true,
      files: [
        `${tf}/tfjs-core/dist/tf-core.min.js`,
        `${tf}/tfjs-layers/dist/tf-layers.min.js`,
        `${tf}/tfjs-backend-cpu/dist/tf-backend-cpu.min.js`,
      ],
    },
    {
      key: 'ort-wasm',
      label: `onnxruntime-web ${version('onnxruntime-web') ?? '(missing)'} wasm-only`,
      files: [`${ort}/ort.wasm.min.js`, `${ort}/ort-wasm-simd-threaded.mjs`, `${ort}/ort-wasm-simd-threaded.wasm`],
    },
    {
      key: 'ort-wasm-bundle',
      label: `onnxruntime-web ${version('onnxruntime-web') ?? '(missing)'} wasm-only, ESM bundle`,
      info: true,
      files: [`${ort}/ort.wasm.bundle.min.mjs`, `${ort}/ort-wasm-simd-threaded.wasm`],
    },
  ];
  for (const b of bundles) {
    b.files = fileSizes(b.files);
    b.missing = b.files.filter((f) => f.missing).map((f) => f.path);
    if (b.missing.length === 0) {
      b.bytes = b.files.reduce((s, f) => s + f.bytes, 0);
      b.gzip = b.files.reduce((s, f) => s + f.gzip, 0);
    }
  }
  return bundles;
}

// ---- the page ----------------------------------------------------------------------------------

// Served at /__bench__/page.html by the harness server; everything else comes from the repo root.
const pageHtml = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>modelkeep browser bench</title><link rel="icon" href="data:,"></head>
<body>
<script src="/node_modules/@tensorflow/tfjs/dist/tf.min.js"></script>
<script type="module">
  import * as mk from '/web/src/index.js';
  import { openStore } from '/web/src/store.js';
  import { backends } from '/web/src/io.js';
  await mk.ready();
  // The store with one value per model, under a scheme of its own (the modelkeepOne peer).
  backends['idbone://'] = () => openStore({ chunkBytes: 2 ** 30 });

  const S = {};  // state of the current model: mk model, input, reference output, file bytes
  let store = null;  // store.js opened directly, for the breakdown (shares io.js's connection)
  const now = () => performance.now();
  const collect = () => globalThis.gc?.();

  function maxDiff(a, b) {
    if (a.length !== b.length) return Infinity;
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    const wa = new Uint32Array(a.buffer, a.byteOffset, a.length >> 2);
    const wb = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
    for (let i = 0; i < wa.length; i++) if (wa[i] !== wb[i]) return false;
    for (let i = wa.length * 4; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  function request(req) {
    return new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  function completion(tx) {
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
    });
  }

  window.bench = {
    async deleteDatabase(name) {
      let blocked = false;
      const req = indexedDB.deleteDatabase(name);
      req.onblocked = () => { blocked = true; };
      await request(req);
      return { blocked };
    },

    /** Builds the modelkeep model for one architecture and keeps its file bytes. */
    setup(sizes) {
      this.teardown();
      const spec = sizes.slice(1).map((n, i) => 'Linear(' + sizes[i] + ',' + n + ')').join(',ReLU,');
      S.sizes = sizes;
      S.model = mk.Model.fromSpec(spec, { seed: 1 });
      S.batch = 4;
      S.x = Float32Array.from({ length: S.batch * sizes[0] }, (_, i) => Math.sin(i * 0.37) * 0.5);
      S.y = S.model.forward(S.x, [S.batch, sizes[0]]).data;
      S.bytes = S.model.toBytes({ dtype: 'f32' });
      return { params: S.model.paramCount, fileBytes: S.bytes.length, spec };
    },

    /** Saves the current model as f32 (for the memory part, which loads it in a fresh page). */
    async saveOnly(name) {
      await mk.save(S.model, 'indexeddb://' + name, { dtype: 'f32' });
      return S.bytes.length;
    },

    async remove(name) {
      await mk.removeModel('indexeddb://' + name);
    },

    teardown() {
      S.model?.dispose();
      S.tf?.dispose();
      for (const k of Object.keys(S)) delete S[k];
      collect();
    },

    // ---- modelkeep ----
    async modelkeepRun(name, { load: withLoad = true, parts: withParts = false, scheme = 'indexeddb://' } = {}) {
      const url = scheme + name;
      collect();
      let t = now();
      await mk.save(S.model, url, { dtype: 'f32' });
      const save = now() - t;
      if (!withLoad) return { save, diff: 0 };
      collect();
      t = now();
      const loaded = await mk.load(url);
      const load = now() - t;
      const diff = maxDiff(loaded.forward(S.x, [S.batch, S.sizes[0]]).data, S.y);
      loaded.dispose();
      collect();
      if (!withParts) return { save, load, diff };
      // Where the time goes: the same steps one at a time (same name, same bytes).
      const parts = {};
      t = now();
      let bytes = S.model.toBytes({ dtype: 'f32' });
      parts.toBytes = now() - t;
      t = now();
      let copy = bytes.slice(); // reference: what one fresh copy of the file costs in this page
      parts.jsCopy = now() - t;
      copy = null;
      t = now();
      mk.fileInfo(bytes);
      parts.fileInfo = now() - t;
      t = now();
      await navigator.storage.estimate();
      parts.estimate = now() - t;
      store ??= await openStore();
      t = now();
      await store.put(name, bytes, {});
      parts.storePut = now() - t;
      bytes = null;
      collect();
      t = now();
      const back = await store.get(name);
      parts.storeGet = now() - t;
      t = now();
      const model = mk.Model.fromBytes(back);
      parts.fromBytes = now() - t;
      model.dispose();
      collect();
      return { save, load, diff, parts };
    },

    // ---- raw IndexedDB: the simplest code a user would write — the real bytes as one ArrayBuffer,
    // one put in one transaction; one get, viewed as it comes (no chunks, no copies, not zeros) ----
    async rawOpen() {
      const req = indexedDB.open('bench-raw', 2);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (db.objectStoreNames.contains('chunks')) db.deleteObjectStore('chunks');
        if (!db.objectStoreNames.contains('values')) db.createObjectStore('values');
      };
      S.db = await request(req);
      // The ArrayBuffer a user holds: the file's bytes (made once, outside the timings).
      const b = S.bytes;
      S.rawBuffer = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer;
    },

    rawClose() {
      S.db?.close();
      delete S.db;
      delete S.rawBuffer;
    },

    async rawRun(name, durability, { load: withLoad = true } = {}) {
      collect();
      let t = now();
      const wtx = S.db.transaction('values', 'readwrite', { durability });
      const written = completion(wtx);
      wtx.objectStore('values').put(S.rawBuffer, name);
      await written;
      const save = now() - t;
      if (!withLoad) return { save, diff: 0 };
      collect();
      t = now();
      const rtx = S.db.transaction('values', 'readonly');
      const out = new Uint8Array(await request(rtx.objectStore('values').get(name)));
      const load = now() - t;
      const diff = sameBytes(out, S.bytes) ? 0 : Infinity;
      collect();
      return { save, load, diff };
    },

    // ---- TensorFlow.js: the same architecture, with the modelkeep weights copied in ----
    async tfSetup() {
      await tf.setBackend('cpu');
      await tf.ready();
      const { sizes } = S;
      const model = tf.sequential();
      for (let i = 1; i < sizes.length; i++) {
        model.add(tf.layers.dense({
          units: sizes[i], activation: i === sizes.length - 1 ? 'linear' : 'relu',
          kernelInitializer: 'zeros', ...(i === 1 ? { inputShape: [sizes[0]] } : {}),
        }));
      }
      // PyTorch's Linear weight is [out, in]; a Dense kernel is [in, out].
      const entries = Object.values(S.model.stateDict());
      const weights = [];
      for (let l = 0; l < entries.length; l += 2) {
        const [out, inp] = entries[l].shape;
        const w = entries[l].data;
        const kernel = new Float32Array(inp * out);
        for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) kernel[i * out + o] = w[o * inp + i];
        weights.push(tf.tensor2d(kernel, [inp, out]), tf.tensor1d(entries[l + 1].data));
      }
      model.setWeights(weights);
      weights.forEach((w) => w.dispose());
      S.tf = model;
      S.tfY = this.tfPredict(model);
      collect();
      return { backend: tf.getBackend(), version: tf.version.tfjs, diffVsModelkeep: maxDiff(S.tfY, S.y) };
    },

    tfPredict(model) {
      return tf.tidy(() => model.predict(tf.tensor2d(S.x, [S.batch, S.sizes[0]])).dataSync());
    },

    async tfRun(name, { load: withLoad = true } = {}) {
      const url = 'indexeddb://' + name;
      collect();
      let t = now();
      const saved = await S.tf.save(url);
      const save = now() - t;
      const info = saved.modelArtifactsInfo;
      const storedBytes = info.weightDataBytes + info.modelTopologyBytes;
      if (!withLoad) return { save, diff: 0, storedBytes };
      collect();
      t = now();
      const loaded = await tf.loadLayersModel(url);
      const load = now() - t;
      const diff = maxDiff(this.tfPredict(loaded), S.tfY);
      loaded.dispose();
      collect();
      return { save, load, diff, storedBytes };
    },

    tfDispose() {
      S.tf?.dispose();
      delete S.tf;
      delete S.tfY;
      collect();
      return tf.memory().numTensors;
    },
  };
  window.benchReady = true;
</script>
</body>
</html>
`;

// A page with nothing but modelkeep, opened fresh for each measured load: its WebAssembly memory
// starts at its initial size, and since a wasm memory never shrinks, its size after the load is
// the peak the load needed.
const memoryPageHtml = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>modelkeep load memory</title><link rel="icon" href="data:,"></head>
<body>
<script type="module">
  import * as mk from '/web/src/index.js';
  import { runtime } from '/web/src/runtime.js';
  await mk.ready();

  const wasmBytes = () => runtime().HEAPU8.buffer.byteLength;
  window.memoryBench = {
    async load(url) {
      globalThis.gc?.();
      const before = wasmBytes();
      const t = performance.now();
      const model = await mk.load(url);
      const ms = performance.now() - t;
      const after = wasmBytes();
      const params = model.paramCount;
      model.dispose();
      return { before, after, ms, params };
    },
  };
  window.memoryReady = true;
</script>
</body>
</html>
`;

// ---- part 1: IndexedDB save and load -----------------------------------------------------------
//
// The peers take turns: each of the `runs` rounds gives every peer one slot (the order rotates
// from round to round), so that a change in the machine's load during the run hits all peers
// alike instead of whichever case happened to run then. Each slot starts from no database at
// all (every benchmark database is deleted, the connections closed), does an untimed warm-up
// save (so the timed save replaces a stored model, as a re-save in an app does; in round 1 the
// warm-up also loads, to warm that path up once), then the timed save + load. Checks (the loaded
// model predicts exactly what the saved one did; raw bytes compare equal) run outside the timed
// parts, after every load.

const databases = ['modelkeep', 'bench-raw', 'tensorflowjs'];

async function clearDatabases(page) {
  for (const name of databases) {
    const { blocked } = await page.evaluate((n) => window.bench.deleteDatabase(n), name);
    if (blocked) log(`  note: deleting database ${name} was blocked for a while by an open connection`);
  }
}

/** One slot: clean databases, warm-up save + load, timed save + load. */
async function runSlot(page, model, peer, round, failures) {
  const name = `bench-${model.key}`;
  const durability = peer.key === 'rawRelaxed' ? 'relaxed' : 'strict';
  const raw = peer.key === 'raw' || peer.key === 'rawRelaxed';
  await clearDatabases(page);
  if (raw) await page.evaluate(() => window.bench.rawOpen());
  const once = (opts) => {
    if (peer.key === 'modelkeep') return page.evaluate(([n, o]) => window.bench.modelkeepRun(n, o), [name, opts]);
    if (peer.key === 'modelkeepOne') {
      const o = { ...opts, parts: false, scheme: 'idbone://' };
      return page.evaluate(([n, o]) => window.bench.modelkeepRun(n, o), [name, o]);
    }
    if (peer.key === 'tfjs') return page.evaluate(([n, o]) => window.bench.tfRun(n, o), [name, opts]);
    return page.evaluate(([n, d, o]) => window.bench.rawRun(n, d, o), [name, durability, opts]);
  };
  const warm = await once({ load: round === 1, parts: false });
  const timed = await once({ load: true, parts: true });
  for (const [what, r] of [
    ['warm-up', warm],
    ['timed', timed],
  ]) {
    if (r.diff !== 0) {
      failures.push(`${model.key}/${peer.key} round ${round} ${what}: loaded model differs (max diff ${r.diff})`);
    }
  }
  if (raw) await page.evaluate(() => window.bench.rawClose());
  const warmLoad = warm.load === undefined ? '' : ` / ${ms(warm.load)}`;
  log(
    `  [${model.key}] round ${round}/${runs} ${peer.label}: save ${ms(timed.save)} ms, load ${ms(timed.load)} ms` +
      ` (warm-up ${ms(warm.save)}${warmLoad})`,
  );
  return timed;
}

async function runModel(page, model, failures) {
  log(`${model.label}: building the model`);
  const setup = await page.evaluate((sizes) => window.bench.setup(sizes), model.sizes);
  log(`  ${setup.params} parameters, modelkeep file ${mb(setup.fileBytes)}`);
  const tf = await page.evaluate(() => window.bench.tfSetup());
  log(
    `  TF.js ${tf.version} on ${tf.backend} with the same weights: max |TF.js − modelkeep| = ` +
      `${tf.diffVsModelkeep.toExponential(2)}`,
  );
  if (!(tf.diffVsModelkeep <= 1e-4)) {
    failures.push(`${model.key}: TF.js and modelkeep predictions differ by ${tf.diffVsModelkeep}`);
  }
  const rows = Object.fromEntries(peers.map((p) => [p.key, []]));
  for (let round = 1; round <= runs; round++) {
    log(`${model.label}: round ${round}/${runs} (each peer: warm-up + 1 timed save/load)`);
    for (let j = 0; j < peers.length; j++) {
      const peer = peers[(j + round - 1) % peers.length];
      rows[peer.key].push(await runSlot(page, model, peer, round, failures));
    }
  }
  await clearDatabases(page);
  const left = await page.evaluate(() => window.bench.tfDispose());
  if (left) log(`  note: ${left} TF.js tensors still allocated after dispose`);
  await page.evaluate(() => window.bench.teardown());

  const entry = { key: model.key, label: model.label, ...setup, peers: [] };
  for (const peer of peers) {
    const r = rows[peer.key];
    const result = {
      peer: peer.key,
      label: peer.label,
      info: !!peer.info,
      save: stats(r.map((x) => x.save)),
      load: stats(r.map((x) => x.load)),
    };
    if (peer.key === 'tfjs') {
      Object.assign(result, {
        storedBytes: r[0].storedBytes,
        backend: tf.backend,
        version: tf.version,
        maxDiffVsModelkeep: tf.diffVsModelkeep,
      });
    }
    if (peer.key === 'modelkeep') {
      result.parts = {};
      for (const k of Object.keys(r[0].parts)) result.parts[k] = stats(r.map((x) => x.parts[k]));
    }
    entry.peers.push(result);
  }
  return entry;
}

// ---- part 3: peak memory of an IndexedDB load -----------------------------------------------------
//
// The model is saved from the bench page, then loaded in a fresh page. Two figures, each against
// the stored bytes: the growth of the fresh page's wasm memory (exact: it only grows), and the
// growth of its renderer's peak resident memory (Linux VmHWM, reset just before the load: JS
// arrays, IndexedDB values and wasm memory together; n/a where /proc cannot be read or reset).

const procStatus = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');
const procKb = (status, field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;

/** The renderer processes of the Chromium whose profile is `profile` (Linux /proc). */
function rendererPids(profile) {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  // One string: Chromium's child processes rewrite their argv into argv[0].
  const cmdline = (pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      return '';
    }
  };
  const parent = (pid) => {
    try {
      return /^PPid:\s+(\d+)/m.exec(procStatus(pid))?.[1];
    } catch {
      return undefined;
    }
  };
  const browser = all.find(
    (pid) => cmdline(pid).includes(`--user-data-dir=${profile} `) && !cmdline(pid).includes(' --type='),
  );
  if (!browser) return [];
  const descends = (pid) => {
    for (let p = pid, i = 0; p && p !== '1' && i < 10; p = parent(p), i++) if (p === browser) return true;
    return false;
  };
  return all.filter((pid) => cmdline(pid).includes(' --type=renderer ') && descends(pid));
}

/** Resets the peak resident memory of `pids` and returns their resident memory now (bytes). */
function resetPeaks(pids) {
  const rss = {};
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
      rss[pid] = procKb(procStatus(pid), 'VmRSS');
    } catch {
      // not ours to reset: this process is left out
    }
  }
  return rss;
}

async function measureMemory(context, benchPage, server, profile) {
  const out = [];
  for (const model of memoryModels) {
    const name = `memory-${model.key}`;
    const setup = await benchPage.evaluate((sizes) => window.bench.setup(sizes), model.sizes);
    const stored = await benchPage.evaluate((n) => window.bench.saveOnly(n), name);
    await benchPage.evaluate(() => window.bench.teardown());
    const page = await context.newPage();
    await page.goto(`${server.url}/__bench__/memory.html`);
    await page.waitForFunction(() => window.memoryReady === true, null, { timeout: 60_000 });
    const rss = resetPeaks(rendererPids(profile));
    const r = await page.evaluate((n) => window.memoryBench.load(`indexeddb://${n}`), name);
    let rssGrowth = null;
    for (const [pid, before] of Object.entries(rss)) {
      try {
        const growth = procKb(procStatus(pid), 'VmHWM') - before;
        if (Number.isFinite(growth)) rssGrowth = Math.max(rssGrowth ?? 0, growth);
      } catch {
        // the process ended meanwhile
      }
    }
    await page.close();
    await benchPage.evaluate((n) => window.bench.remove(n), name);
    if (r.params !== setup.params) throw new Error(`${model.key}: the loaded model has ${r.params} parameters`);
    const entry = {
      key: model.key,
      label: model.label,
      storedBytes: stored,
      wasmBefore: r.before,
      wasmAfter: r.after,
      wasmGrowth: r.after - r.before,
      rssPeakGrowth: rssGrowth,
      loadMs: r.ms,
    };
    log(
      `  [memory] ${model.label}: stored ${mb(stored)}, wasm memory ${mb(r.before)} → ${mb(r.after)} ` +
        `(${(entry.wasmGrowth / stored).toFixed(2)}× the stored bytes), renderer peak RSS +` +
        `${rssGrowth === null ? 'n/a' : mb(rssGrowth)}, load ${ms(r.ms)} ms`,
    );
    out.push(entry);
  }
  return out;
}

async function measureStorage() {
  const server = await startServer({ root });
  server.route('/__bench__/page.html', pageHtml, 'text/html; charset=utf-8');
  server.route('/__bench__/memory.html', memoryPageHtml, 'text/html; charset=utf-8');
  const profile = await tempDir('modelkeep-bench-');
  let context;
  const failures = [];
  const out = { models: [] };
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: [...chromiumArgs, '--js-flags=--expose-gc'],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const errors = watchErrors(page);
    await page.goto(`${server.url}/__bench__/page.html`);
    await page.waitForFunction(() => window.benchReady === true && typeof window.tf === 'object', null, {
      timeout: 60_000,
    });
    out.browser = await page.evaluate(() => navigator.userAgent);
    out.gcExposed = await page.evaluate(() => typeof globalThis.gc === 'function');
    if (!memoryOnly) for (const model of models) out.models.push(await runModel(page, model, failures));
    await clearDatabases(page);
    out.memory = await measureMemory(context, page, server, profile);
    out.pageErrors = errors;
  } finally {
    await context?.close();
    await server.close();
    await removeDir(profile);
  }
  out.failures = failures;
  return out;
}

// ---- report ------------------------------------------------------------------------------------

function memoryReport(storage, p) {
  p("## Peak memory of an IndexedDB load (`load('indexeddb://…')` in a fresh page, f32 model)");
  p();
  p('| model | stored | wasm memory before → after | wasm growth ÷ stored | renderer peak RSS growth ÷ stored |');
  p('|---|---|---|---|---|');
  for (const m of storage.memory) {
    const rss =
      m.rssPeakGrowth === null
        ? 'n/a'
        : `${(m.rssPeakGrowth / m.storedBytes).toFixed(2)}× ` + `(${mb(m.rssPeakGrowth)})`;
    p(
      `| ${m.label} | ${mb(m.storedBytes)} | ${mb(m.wasmBefore)} → ${mb(m.wasmAfter)} | ` +
        `**${(m.wasmGrowth / m.storedBytes).toFixed(2)}×** | ${rss} |`,
    );
  }
  p();
}

function report(storage, sizes) {
  const lines = [];
  const p = (s = '') => lines.push(s);
  if (memoryOnly) {
    memoryReport(storage, p);
    return lines.join('\n');
  }
  p(
    `## IndexedDB save / load in headless Chromium (ms: median (min–max) of ${runs} timed runs, ` +
      'each after a warm-up)',
  );
  p();
  p(
    `${storage.browser}; ${storage.machine.cpus} CPUs, load average ${storage.machine.loadBefore} before and ` +
      `${storage.machine.loadAfter} after the run (other work on the machine shows up as noise).`,
  );
  p();
  p('| model | file | peer | save | load | save rate | load rate |');
  p('|---|---|---|---|---|---|---|');
  for (const m of storage.models) {
    for (const r of m.peers) {
      const size = r.storedBytes ?? m.fileBytes;
      p(
        `| ${m.label} | ${mb(m.fileBytes)} | ${r.label}${r.info ? ' ¹' : ''} | ${cell(r.save)} | ${cell(r.load)} | ` +
          `${mbps(size, r.save.median)} | ${mbps(size, r.load.median)} |`,
      );
    }
  }
  p();
  p(
    "¹ for context only: the same raw put with `durability: 'relaxed'`, which is what TF.js gets: it asks " +
      "for no durability, and Chromium's default is relaxed since version 121; and modelkeep's store " +
      'keeping each model as one value instead of 8 MiB chunks (the chunking decision).',
  );
  p();
  p('| model | save modelkeep/raw | load modelkeep/raw | save TF.js/modelkeep | load TF.js/modelkeep |');
  p('|---|---|---|---|---|');
  for (const m of storage.models) {
    const get = (k) => m.peers.find((r) => r.peer === k);
    const [k, raw, tfr] = [get('modelkeep'), get('raw'), get('tfjs')];
    p(
      `| ${m.label} | ${ratio(k.save.median, raw.save.median)} | ${ratio(k.load.median, raw.load.median)} | ` +
        `${ratio(tfr.save.median, k.save.median)} | ${ratio(tfr.load.median, k.load.median)} |`,
    );
  }
  p();
  p(
    "Where modelkeep's time goes (each step alone, ms, median): save = toBytes + fileInfo + store.put " +
      '(which includes storage.estimate), load = store.get + Model.fromBytes. The last column is a reference: ' +
      'one plain `Uint8Array.slice()` of the file in the same page.',
  );
  p();
  p(
    '| model | toBytes | fileInfo | storage.estimate | store.put | store.get | Model.fromBytes | ' +
      'JS copy of the file |',
  );
  p('|---|---|---|---|---|---|---|---|');
  for (const m of storage.models) {
    const parts = m.peers.find((r) => r.peer === 'modelkeep').parts;
    p(
      `| ${m.label} | ${['toBytes', 'fileInfo', 'estimate', 'storePut', 'storeGet', 'fromBytes', 'jsCopy']
        .map((k) => ms(parts[k].median))
        .join(' | ')} |`,
    );
  }
  p();
  memoryReport(storage, p);
  p('## What a page downloads (each file gzipped alone, level 9)');
  p();
  p('| library | files | bytes | gzip -9 |');
  p('|---|---|---|---|');
  for (const b of sizes) {
    const files = b.files.map((f) => `\`${f.path.replace(/^node_modules\//, '')}\` (${kb(f.gzip ?? 0)})`).join(' + ');
    if (b.missing.length) p(`| ${b.label} | not installed: ${b.missing.join(', ')} | – | – |`);
    else p(`| ${b.label}${b.info ? ' ²' : ''} | ${files} | ${kb(b.bytes)} | **${kb(b.gzip)}** |`);
  }
  p();
  p(
    '² for context only: the smallest TF.js set that can build and load a layers model; ' +
      "ORT's ESM bundle with the wasm glue inlined.",
  );
  if (storage.failures.length || storage.pageErrors.length) {
    p();
    p('## Problems');
    for (const f of [...storage.failures, ...storage.pageErrors]) p(`- ${f}`);
  }
  return lines.join('\n');
}

// ---- main --------------------------------------------------------------------------------------

if (browserMissing()) {
  log(browserMissing());
  process.exit(1);
}
if (!ensureWasmBuilt(log)) process.exit(1);
if (!existsSync(join(root, 'node_modules/@tensorflow/tfjs/dist/tf.min.js'))) {
  log('@tensorflow/tfjs is not installed: npm install --save-dev @tensorflow/tfjs@4.22.0');
  process.exit(1);
}

const started = Date.now();
const sizes = downloadSizes();
for (const b of sizes) if (b.missing.length) log(`${b.label}: not installed (${b.missing.join(', ')})`);
const loadBefore = loadavg()[0].toFixed(2);
const storage = await measureStorage();
storage.machine = { cpus: cpus().length, loadBefore, loadAfter: loadavg()[0].toFixed(2) };
const text = report(storage, sizes);
process.stdout.write(`${text}\n`);

await mkdir(join(root, 'build/bench'), { recursive: true });
await writeFile(
  outFile,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      quick,
      runs,
      node: process.version,
      ...storage,
      downloads: sizes,
    },
    null,
    2,
  )}\n`,
);
log(`wrote ${relative(root, outFile)} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (storage.failures.length) process.exitCode = 1;
