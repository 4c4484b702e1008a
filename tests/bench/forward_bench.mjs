#!/usr/bin/env node
// forward_bench.mjs — inference (forward pass) time side by side, in Node and in headless
// Chromium, single-threaded: modelkeep (the wasm package), TensorFlow.js 4.22 with its cpu and
// its wasm backend, and onnxruntime-web's wasm backend; every peer gets the same float32 weights
// and the same inputs. Plus what each library makes a page download (gzip -9 of the files the
// page actually requested). A benchmark, not a test: it is not part of `npm test`.
//
// Run:  node tests/bench/forward_bench.mjs [--quick] [--env=node|chromium] [--model=…]
//   --quick   2 timed samples per cell and only the small models (checks that everything works)
//   --env=…   only one environment (default: both)
//   --model=… only one model: tutorial, mnist or big
// Prints a Markdown report on stdout, progress on stderr, and writes build/bench/forward.json.
//
// Models: the PyTorch tutorial's Linear(3,5) at batch 1; the MNIST MLP 784→512→512→10 at batch
// 1 and 64; the ~100 MB MLP 1024→4096→4096→1024 at batch 1 and 32 (ReLU between layers). The
// weights (PyTorch's Linear layout, weight (out, in) then bias, each uniform in ±1/√in as
// PyTorch initialises them) and the inputs (uniform in ±1) come from a seeded xorshift32, are
// written once to build/bench/forward_<model>.f32 / .x.f32, and every peer reads those bytes:
// modelkeep through loadStateDict, TF.js as tf.tensor2d kernels [in, out] (the transpose, as a
// Dense layer holds them), ONNX Runtime from build/bench/forward_<model>.onnx, which
// tests/bench/make_onnx.py writes from the same bytes with torch.onnx.export (Gemm nodes whose
// initializers are those bytes verbatim).
//
// Before any timing, each peer's output for every batch is compared with modelkeep's (and
// modelkeep's first row with a float64 JavaScript reference): a difference above
// 1e-4 · max(1, max|output|) aborts the run. Timing: each peer warms up (≥ 2 calls and ≥ 1 s:
// tiny calls take thousands of runs before the JIT settles), then every round gives each peer
// one slot (the order rotates from round to round so that a change in the machine's load hits
// all peers alike); a slot is one sample = the mean time of back-to-back calls repeated until
// ≥ 150 ms have passed (a single call for slow cells; this also keeps tiny calls well above the
// 0.1 ms resolution of performance.now() in a page that is not cross-origin isolated). The
// table shows the median (min–max) of the samples.
// A call is what a user pays for one prediction: input array in, output values back in a JS
// Float32Array (modelkeep: model.forward(x, shape).data; TF.js: tensor2d, fused matMul + bias +
// ReLU per layer, await data(); ORT: new ort.Tensor, session.run, await getData()).
//
// Single thread everywhere: modelkeep's wasm has no threads; TF.js's WASM_HAS_MULTITHREAD_SUPPORT
// flag is set to false (the page is not cross-origin isolated either, so no SharedArrayBuffer);
// ort.env.wasm.numThreads = 1.
// Timings on a shared or busy machine are noisy: the load average is printed with the results.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import {
  startServer,
  chromiumPath,
  chromiumArgs,
  watchErrors,
  browserMissing,
  ensureWasmBuilt,
  fileSizes,
} from '../browser/harness.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const benchDir = join(root, 'build/bench');
const outFile = join(benchDir, 'forward.json');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const envArg = args.find((a) => a.startsWith('--env='))?.slice('--env='.length);
const modelArg = args.find((a) => a.startsWith('--model='))?.slice('--model='.length);
if (
  args.includes('--help') ||
  (envArg && !['node', 'chromium', 'chromium-threads'].includes(envArg)) ||
  (modelArg && !['tutorial', 'mnist', 'big'].includes(modelArg)) ||
  args.some((a) => a !== '--quick' && !a.startsWith('--env=') && !a.startsWith('--model='))
) {
  process.stderr.write(
    'usage: node tests/bench/forward_bench.mjs [--quick] [--env=node|chromium|chromium-threads] ' +
      '[--model=tutorial|mnist|big]\n',
  );
  process.exit(args.includes('--help') ? 0 : 2);
}

const timing = quick
  ? { rounds: 2, sampleMs: 20, warmupMs: 100, warmupCalls: 2 }
  : { rounds: 7, sampleMs: 150, warmupMs: 1000, warmupCalls: 2 };
const tolerance = 1e-4; // relative to max(1, max |modelkeep output|)

const allModels = [
  { key: 'tutorial', label: 'Linear(3,5) (tutorial)', sizes: [3, 5], batches: [1], seed: 0x5eed0001 },
  { key: 'mnist', label: 'MLP 784→512→512→10', sizes: [784, 512, 512, 10], batches: [1, 64], seed: 0x5eed0002 },
  { key: 'big', label: 'MLP 1024→4096→4096→1024', sizes: [1024, 4096, 4096, 1024], batches: [1, 32], seed: 0x5eed0003 },
];
const models = modelArg ? allModels.filter((m) => m.key === modelArg) : quick ? allModels.slice(0, 2) : allModels;

const peers = [
  { key: 'modelkeep', label: 'modelkeep' },
  { key: 'tfjs-cpu', label: 'TF.js cpu' },
  { key: 'tfjs-wasm', label: 'TF.js wasm' },
  { key: 'ort-wasm', label: 'ORT web wasm' },
];
// modelkeep with its Linear weights held compact (Model#setWeightDtype), timed in the same rounds;
// checked against modelkeep's float32 output with the looser compactTolerance.
const compactPeers = ['f16', 'bf16', 'int8'].map((dtype) => ({
  key: `modelkeep-${dtype}`,
  label: `modelkeep ${dtype}`,
}));
const timed = [...peers, ...compactPeers];
const compactTolerance = 3e-2; // relative to max(1, max |modelkeep output|): int8 weights, 3 layers

const log = (line) => process.stderr.write(`${line}\n`);
// TF.js greets Node users on console.log when its cpu backend starts; stdout is the report.
console.log = (...a) => console.error(...a);

// ---- weights and inputs (generated here, once, deterministically) -----------------------------

/** Marsaglia's xorshift32: a tiny, seeded, reproducible generator of 32-bit words. */
function xorshift32(seed) {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** Fills `out` with floats uniform in [-bound, bound) (24 random bits each). */
function fillUniform(out, next, bound) {
  for (let i = 0; i < out.length; i++) out[i] = ((next() >>> 8) * (2 / 16777216) - 1) * bound;
  return out;
}

const paramCount = (sizes) => sizes.slice(1).reduce((s, o, i) => s + o * sizes[i] + o, 0);
const flopsPerRow = (sizes) => sizes.slice(1).reduce((s, o, i) => s + 2 * o * sizes[i], 0);

/** PyTorch layout, layer by layer: weight (out, in) row-major, then bias (out). */
function makeWeights(model) {
  const next = xorshift32(model.seed);
  const weights = new Float32Array(paramCount(model.sizes));
  let at = 0;
  for (let l = 1; l < model.sizes.length; l++) {
    const [inF, out] = [model.sizes[l - 1], model.sizes[l]];
    const bound = 1 / Math.sqrt(inF);
    fillUniform(weights.subarray(at, at + out * inF + out), next, bound);
    at += out * inF + out;
  }
  const x = fillUniform(new Float32Array(Math.max(...model.batches) * model.sizes[0]), next, 1);
  return { weights, x };
}

const bytesOf = (f32) => Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength);
const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** Writes build/bench/forward_<key>.{f32,x.f32,onnx} unless a stamp says they hold these bytes. */
async function prepareFiles(model) {
  const base = join(benchDir, `forward_${model.key}`);
  const files = { weights: `${base}.f32`, x: `${base}.x.f32`, onnx: `${base}.onnx`, stamp: `${base}.stamp.json` };
  const { weights, x } = makeWeights(model);
  const stamp = { sizes: model.sizes, seed: model.seed, sha256: sha256(bytesOf(weights), bytesOf(x)) };
  let old = null;
  try {
    old = JSON.parse(readFileSync(files.stamp, 'utf8'));
  } catch {
    /* none yet */
  }
  const fresh =
    old &&
    JSON.stringify(old) === JSON.stringify(stamp) &&
    [files.weights, files.x, files.onnx].every((f) => existsSync(f)) &&
    statSync(files.weights).size === weights.byteLength &&
    statSync(files.x).size === x.byteLength;
  if (!fresh) {
    log(`${model.label}: writing the weights and build/bench/forward_${model.key}.onnx (torch.onnx.export)`);
    await writeFile(files.weights, bytesOf(weights));
    await writeFile(files.x, bytesOf(x));
    const p = spawnSync(
      '/usr/bin/python3',
      [
        join(root, 'tests/bench/make_onnx.py'),
        '--sizes',
        model.sizes.join(','),
        '--weights',
        files.weights,
        '--out',
        files.onnx,
      ],
      { stdio: ['ignore', 2, 2] },
    );
    if (p.status !== 0) throw new Error(`make_onnx.py failed for ${model.key} (is python3-torch installed?)`);
    await writeFile(files.stamp, `${JSON.stringify(stamp)}\n`);
  }
  const rel = (f) => relative(root, f);
  return { weights: rel(files.weights), x: rel(files.x), onnx: rel(files.onnx), weightBytes: weights.byteLength };
}

// ---- the kit: peers, checks and timed loops (the same source runs in Node and in the page) ----
//
// makeKit is self-contained: the page gets its source text (Function.prototype.toString), so
// both environments run exactly the same code; only the libraries and readBytes differ.

function makeKit({ mk, tf, ort, readBytes, now, gc, threadCount }) {
  const S = { peers: {}, sizes: null, x: null, weights: null };

  const asF32 = (u8) =>
    u8.byteOffset % 4 === 0
      ? new Float32Array(u8.buffer, u8.byteOffset, u8.byteLength / 4)
      : new Float32Array(u8.slice().buffer);

  function layersOf(sizes, weights) {
    const layers = [];
    let at = 0;
    for (let l = 1; l < sizes.length; l++) {
      const inF = sizes[l - 1];
      const out = sizes[l];
      const w = weights.subarray(at, at + out * inF);
      at += out * inF;
      const b = weights.subarray(at, at + out);
      at += out;
      layers.push({ inF, out, w, b });
    }
    if (at !== weights.length) throw new Error(`weights hold ${weights.length} floats, the sizes need ${at}`);
    return layers;
  }

  const factories = {
    async modelkeep(layers, _files, dtype = 'f32') {
      const spec = [];
      const stateDict = {};
      layers.forEach((l, i) => {
        spec.push(`${2 * i}=Linear(${l.inF},${l.out})`);
        if (i < layers.length - 1) spec.push(`${2 * i + 1}=ReLU`);
        stateDict[`${2 * i}.weight`] = { shape: [l.out, l.inF], data: l.w };
        stateDict[`${2 * i}.bias`] = { shape: [l.out], data: l.b };
      });
      const model = mk.Model.fromSpec(spec.join(','), { seed: 1 });
      model.loadStateDict(stateDict);
      if (dtype !== 'f32') model.setWeightDtype(dtype);
      const inF = layers[0].inF;
      return {
        info: { architecture: model.architecture, weightDtype: model.weightDtype, memoryBytes: model.memoryBytes },
        sync: true,
        run: (x, batch) => model.forward(x, [batch, inF]).data,
        dispose: () => model.dispose(),
      };
    },

    tfjs(backend) {
      return async (layers) => {
        await tf.setBackend(backend);
        // A Dense kernel is [in, out]: the transpose of PyTorch's (out, in) weight.
        const params = layers.map((l) => {
          const kernel = new Float32Array(l.inF * l.out);
          for (let o = 0; o < l.out; o++) for (let i = 0; i < l.inF; i++) kernel[i * l.out + o] = l.w[o * l.inF + i];
          return { kernel: tf.tensor2d(kernel, [l.inF, l.out]), bias: tf.tensor1d(l.b.slice()) };
        });
        const inF = layers[0].inF;
        const last = params.length - 1;
        return {
          info: {
            backend: tf.getBackend(),
            version: tf.version_core,
            simd: backend === 'wasm' ? await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') : undefined,
          },
          activate: () => (tf.getBackend() === backend ? undefined : tf.setBackend(backend)),
          async run(x, batch) {
            const y = tf.tidy(() => {
              let h = tf.tensor2d(x, [batch, inF]);
              params.forEach((p, i) => {
                h = tf.fused.matMul({ a: h, b: p.kernel, bias: p.bias, activation: i < last ? 'relu' : 'linear' });
              });
              return h;
            });
            const data = await y.data();
            y.dispose();
            return data;
          },
          async dispose() {
            await tf.setBackend(backend);
            for (const p of params) {
              p.kernel.dispose();
              p.bias.dispose();
            }
          },
        };
      };
    },

    async ort(layers, { onnx }) {
      const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'] });
      const inF = layers[0].inF;
      const [input] = session.inputNames;
      const [output] = session.outputNames;
      return {
        info: { version: ort.env.versions?.web, numThreads: ort.env.wasm.numThreads, input, output },
        async run(x, batch) {
          const results = await session.run({ [input]: new ort.Tensor('float32', x, [batch, inF]) });
          return results[output].getData();
        },
        dispose: () => session.release(),
      };
    },
  };
  const make = {
    modelkeep: factories.modelkeep,
    'tfjs-cpu': factories.tfjs('cpu'),
    'tfjs-wasm': factories.tfjs('wasm'),
    'ort-wasm': factories.ort,
  };
  for (const dtype of ['f16', 'bf16', 'int8'])
    make[`modelkeep-${dtype}`] = (layers, files) => factories.modelkeep(layers, files, dtype);

  const call = (p, x, batch) => p.run(x, batch); // awaited by the callers (some peers are async)
  const input = (batch) => S.x.subarray(0, batch * S.sizes[0]);

  /** Row 0 of the model's output in float64, straight from the weights. */
  function reference64(x) {
    let h = Array.from(x.subarray(0, S.sizes[0]));
    const layers = layersOf(S.sizes, S.weights);
    layers.forEach((l, n) => {
      const y = new Array(l.out);
      for (let o = 0; o < l.out; o++) {
        let s = l.b[o];
        const row = o * l.inF;
        for (let i = 0; i < l.inF; i++) s += l.w[row + i] * h[i];
        y[o] = n < layers.length - 1 ? Math.max(0, s) : s;
      }
      h = y;
    });
    return h;
  }

  return {
    /** Flags and backends (one thread each, or `threads` for every peer); returns the library versions. */
    async init(threads = 1) {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 1);
      if (threads > 1) tf.wasm.setThreadsCount(threads);
      await tf.setBackend('wasm');
      await tf.setBackend('cpu');
      ort.env.wasm.numThreads = threads;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = 'error';
      return {
        tfjs: tf.version_core,
        ort: ort.env.versions?.web ?? null,
        tfjsWasmSimd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
        crossOriginIsolated: globalThis.crossOriginIsolated ?? null,
        threads,
        modelkeepThreads: threadCount(),
      };
    },

    /** Reads the model's files and builds every peer; returns the setup times (ms). */
    async prepare({ sizes, files, peerKeys }) {
      await this.teardown();
      S.sizes = sizes;
      S.weights = asF32(await readBytes(files.weights));
      S.x = asF32(await readBytes(files.x));
      const onnx = await readBytes(files.onnx);
      const layers = layersOf(sizes, S.weights);
      const setup = {};
      const info = {};
      for (const key of peerKeys) {
        const t = now();
        S.peers[key] = await make[key](layers, { onnx });
        setup[key] = now() - t;
        info[key] = S.peers[key].info;
      }
      return { setup, info };
    },

    /** Every peer's output against modelkeep's (and modelkeep's row 0 against float64). */
    async check(batch, tol, compactTol) {
      const x = input(batch);
      const ref = await call(S.peers.modelkeep, x, batch);
      let scale = 1;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      const compare = (y, count) => {
        if (!y || y.length < count) return { maxAbsDiff: null, length: y?.length ?? null };
        let d = 0;
        for (let i = 0; i < count; i++) {
          const e = Math.abs(y[i] - ref[i]);
          d = e > d || Number.isNaN(e) ? e : d;
        }
        return { maxAbsDiff: d };
      };
      const out = [];
      const r64 = compare(reference64(x), S.sizes[S.sizes.length - 1]);
      out.push({
        peer: 'float64 reference (row 0)',
        ...r64,
        ok: r64.maxAbsDiff !== null && r64.maxAbsDiff <= tol * scale,
      });
      for (const [key, p] of Object.entries(S.peers)) {
        if (key === 'modelkeep') continue;
        await p.activate?.();
        const y = await call(p, x, batch);
        const r = y.length === ref.length ? compare(y, ref.length) : { maxAbsDiff: null, length: y.length };
        const t = key.startsWith('modelkeep-') ? compactTol : tol;
        out.push({ peer: key, ...r, tolerance: t * scale, ok: r.maxAbsDiff !== null && r.maxAbsDiff <= t * scale });
      }
      return { scale, outputs: ref.length, results: out };
    },

    /**
     * Warm-up: calls until both `minCalls` and `minMs` are reached. The per-call estimate comes
     * from the second half of the warm-up (tiny calls get several times faster as the JIT settles).
     */
    async warmup(key, batch, minMs, minCalls) {
      const p = S.peers[key];
      await p.activate?.();
      const x = input(batch);
      const t0 = now();
      let first = 0;
      let calls = 0;
      let mid = null;
      let t = t0;
      while (calls < minCalls || t - t0 < minMs) {
        await call(p, x, batch);
        calls++;
        t = now();
        if (calls === 1) first = t - t0;
        if (mid === null && calls >= 2 && t - t0 >= minMs / 2) mid = { t, calls };
      }
      const perCall = mid && calls > mid.calls ? (t - mid.t) / (calls - mid.calls) : (t - t0 - first) / (calls - 1);
      return { calls, ms: t - t0, firstMs: first, perCallMs: Math.max(perCall, 1e-4) };
    },

    /**
     * One sample: back-to-back calls, `chunk` at a time, until at least `minMs` have passed
     * (an untimed call first when asked); returns the mean time per call and the call count.
     */
    async sample(key, batch, chunk, minMs, warm) {
      const p = S.peers[key];
      await p.activate?.();
      const x = input(batch);
      if (warm) await call(p, x, batch);
      let y;
      let calls = 0;
      const t0 = now();
      let t = t0;
      do {
        if (p.sync) for (let i = 0; i < chunk; i++) y = p.run(x, batch);
        else for (let i = 0; i < chunk; i++) y = await p.run(x, batch);
        calls += chunk;
        t = now();
      } while (t - t0 < minMs);
      if (!(y instanceof Float32Array)) throw new Error(`${key} returned ${Object.prototype.toString.call(y)}`);
      return { ms: (t - t0) / calls, calls };
    },

    async teardown() {
      for (const p of Object.values(S.peers)) await p.dispose();
      S.peers = {};
      S.x = S.weights = S.sizes = null;
      gc?.();
      return { tfTensors: tf.memory().numTensors };
    },
  };
}

// ---- environments: Node (the kit called directly) and Chromium (the kit in a page) -------------

async function nodeEnvironment() {
  const mk = await import('../../web/src/node.js');
  await mk.ready();
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  const tfWasm = await import('@tensorflow/tfjs-backend-wasm');
  tfWasm.setWasmPaths(join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/'));
  const ort = await import('onnxruntime-web');
  const { runtime } = await import('../../web/src/runtime.js');
  const kit = makeKit({
    mk,
    tf,
    ort,
    readBytes: async (path) => new Uint8Array(await readFile(join(root, path))),
    now: () => performance.now(),
    gc: globalThis.gc,
    threadCount: () => runtime().threadCount(),
  });
  const versions = await kit.init();
  return {
    key: 'node',
    name: `Node ${process.version}`,
    versions,
    call: (method, ...a) => kit[method](...a),
    close: async () => {},
  };
}

const pageHtml = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>modelkeep forward bench</title><link rel="icon" href="data:,"></head>
<body>
<script type="module">
${makeKit.toString()}

const loadScript = (src) => new Promise((resolve, reject) => {
  const s = document.createElement('script');
  s.src = src;
  s.onload = resolve;
  s.onerror = () => reject(new Error('could not load ' + src));
  document.head.append(s);
});

try {
  const mk = await import('/web/src/index.js');
  await mk.ready();
  const { runtime } = await import('/web/src/runtime.js');
  // TF.js, the minimal set: the core and the two backends (no layers, no converter).
  await loadScript('/node_modules/@tensorflow/tfjs-core/dist/tf-core.min.js');
  await loadScript('/node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js');
  await loadScript('/node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js');
  window.tf.wasm.setWasmPaths('/node_modules/@tensorflow/tfjs-backend-wasm/dist/');
  // ONNX Runtime Web, the wasm-only ES module build.
  const ort = await import('/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
  window.kit = makeKit({
    mk, tf: window.tf, ort,
    readBytes: async (path) => {
      const res = await fetch('/' + path);
      if (!res.ok) throw new Error('GET /' + path + ': ' + res.status);
      return new Uint8Array(await res.arrayBuffer());
    },
    now: () => performance.now(),
    gc: globalThis.gc,
    threadCount: () => runtime().threadCount(),
  });
  // The threads environment: every peer gets the threads modelkeep's pthreads build uses.
  window.kitVersions = await window.kit.init(globalThis.crossOriginIsolated ? runtime().threadCount() : 1);
  window.kitReady = true;
} catch (e) {
  window.kitError = String(e && e.stack || e);
}
</script>
</body>
</html>
`;

// threads: the page cross-origin isolated, modelkeep's pthreads build (web/dist-threads/)
// served as web/dist/, and TF.js wasm and ORT given as many threads as it uses.
async function chromiumEnvironment({ threads = false } = {}) {
  const server = await startServer({ root, threads });
  server.route('/__bench__/forward.html', pageHtml, 'text/html; charset=utf-8');
  let context;
  try {
    context = await chromium.launchPersistentContext('', {
      executablePath: chromiumPath,
      headless: true,
      args: [...chromiumArgs, '--js-flags=--expose-gc'],
    });
  } catch (e) {
    await server.close();
    throw e;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const errors = watchErrors(page);
  const close = async () => {
    await context.close();
    await server.close();
  };
  try {
    await page.goto(`${server.url}/__bench__/forward.html`);
    await page.waitForFunction(() => window.kitReady === true || typeof window.kitError === 'string', null, {
      timeout: 120_000,
    });
    const failed = await page.evaluate(() => window.kitError ?? null);
    if (failed) throw new Error(`the bench page did not start: ${failed}`);
  } catch (e) {
    await close();
    throw e;
  }
  const base = server.url;
  const versions = await page.evaluate(() => window.kitVersions);
  if (threads && !(versions.crossOriginIsolated && versions.modelkeepThreads > 1)) {
    await close();
    throw new Error(
      `the threads page is not running threads (cross-origin isolated: ${versions.crossOriginIsolated}, ` +
        `modelkeep threads: ${versions.modelkeepThreads})`,
    );
  }
  return {
    key: threads ? 'chromium-threads' : 'chromium',
    name: `Chromium ${(await page.evaluate(() => navigator.userAgent)).match(/Chrome\/(\S+)/)?.[1] ?? '?'} (headless${
      threads ? `, cross-origin isolated, ${versions.threads} threads for every peer` : ''
    })`,
    userAgent: await page.evaluate(() => navigator.userAgent),
    versions,
    call: (method, ...a) => page.evaluate(([m, x]) => window.kit[m](...x), [method, a]),
    requests: () => requests.filter((u) => u.startsWith(base)).map((u) => new URL(u).pathname),
    errors,
    close,
  };
}

// ---- statistics and formatting -----------------------------------------------------------------

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: values };
}

const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));
const cell = (s) => `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;
const gflops = (v) => (v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(2));
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

// ---- one environment: every model, check then time ---------------------------------------------

class Mismatch extends Error {}

async function runEnvironment(env, prepared) {
  const out = { key: env.key, name: env.name, versions: env.versions, models: [] };
  for (const model of models) {
    const files = prepared.get(model.key);
    log(`[${env.key}] ${model.label}: setting up ${timed.length} peers`);
    const ready = await env.call('prepare', { sizes: model.sizes, files, peerKeys: timed.map((p) => p.key) });
    const entry = {
      key: model.key,
      label: model.label,
      sizes: model.sizes,
      params: paramCount(model.sizes),
      setupMs: ready.setup,
      peerInfo: ready.info,
      checks: [],
      cells: [],
    };
    for (const batch of model.batches) {
      const c = await env.call('check', batch, tolerance, compactTolerance);
      const bad = c.results.filter((r) => !r.ok);
      const worst = c.results.map((r) => `${r.peer} ${r.maxAbsDiff === null ? 'n/a' : r.maxAbsDiff.toExponential(2)}`);
      log(
        `  check batch ${batch}: max |peer − modelkeep| ${worst.join(', ')} (tolerance ${(tolerance * c.scale).toExponential(2)})`,
      );
      entry.checks.push({ batch, ...c });
      if (bad.length) {
        throw new Mismatch(
          `${env.name}, ${model.label}, batch ${batch}: output differs from modelkeep's beyond ` +
            `the tolerance (× max(1, max|out|) = ${c.scale.toExponential(3)}):\n` +
            bad
              .map(
                (r) =>
                  `  ${r.peer}: ${
                    r.maxAbsDiff === null
                      ? `wrong output length ${r.length} (want ${c.outputs})`
                      : `max abs diff ${r.maxAbsDiff} > ${r.tolerance ?? tolerance * c.scale}`
                  }`,
              )
              .join('\n'),
        );
      }
    }
    for (const batch of model.batches) {
      const flop = flopsPerRow(model.sizes) * batch;
      const plan = {};
      for (const p of timed) {
        const w = await env.call('warmup', p.key, batch, timing.warmupMs, timing.warmupCalls);
        // Calls between two looks at the clock: about a quarter of a sample's worth.
        const chunk = Math.max(1, Math.min(1e5, Math.floor(timing.sampleMs / w.perCallMs / 4)));
        // An untimed call at the start of each slot re-warms the peer after the others ran,
        // when that is cheap (slow calls warm their own caches, or have none that fit).
        plan[p.key] = { warmup: w, chunk, warmEachSlot: w.perCallMs < 100 };
        log(
          `  [${model.key} b${batch}] ${p.label}: warm-up ${w.calls} calls in ${ms(w.ms)} ms (first ` +
            `${ms(w.firstMs)} ms, at the end ~${ms(w.perCallMs)} ms per call)`,
        );
      }
      const samples = Object.fromEntries(timed.map((p) => [p.key, []]));
      for (let round = 0; round < timing.rounds; round++) {
        for (let j = 0; j < timed.length; j++) {
          const p = timed[(j + round) % timed.length];
          samples[p.key].push(
            await env.call('sample', p.key, batch, plan[p.key].chunk, timing.sampleMs, plan[p.key].warmEachSlot),
          );
        }
        log(
          `  [${model.key} b${batch}] round ${round + 1}/${timing.rounds}: ` +
            timed.map((p) => `${p.label} ${ms(samples[p.key][round].ms)}`).join(', ') +
            ' ms',
        );
      }
      const results = {};
      for (const p of timed) {
        const s = stats(samples[p.key].map((x) => x.ms));
        results[p.key] = {
          ...s,
          callsPerSample: samples[p.key].map((x) => x.calls),
          warmup: plan[p.key].warmup,
          gflops: flop / (s.median * 1e6),
        };
      }
      const mk = results.modelkeep.median;
      for (const p of peers) results[p.key].modelkeepSpeedup = results[p.key].median / mk;
      for (const p of compactPeers) {
        // > 1: the compact model is faster than that peer's float32
        results[p.key].speedupOverOrt = results['ort-wasm'].median / results[p.key].median;
        results[p.key].speedupOverTfjsWasm = results['tfjs-wasm'].median / results[p.key].median;
        results[p.key].speedupOverF32 = mk / results[p.key].median;
      }
      entry.cells.push({ batch, flop, results });
    }
    const left = await env.call('teardown');
    if (left.tfTensors) log(`  note: ${left.tfTensors} TF.js tensors still allocated after dispose`);
    out.models.push(entry);
  }
  return out;
}

// ---- what a page downloads ---------------------------------------------------------------------

/** Groups the page's requests by library; modelkeep's also as the package lists it. */
function downloadSizes(requested) {
  const unique = [...new Set(requested.map((p) => p.replace(/^\//, '')))];
  const under = (prefix) => unique.filter((p) => p.startsWith(prefix)).sort();
  const tf = 'node_modules/@tensorflow/';
  const core = under(`${tf}tfjs-core/`);
  const groups = [
    { key: 'modelkeep', label: 'modelkeep (requested by the page)', files: under('web/') },
    {
      key: 'modelkeep-listed',
      label: 'modelkeep (web/src/*.js + web/dist .mjs + .wasm, as listed)',
      info: true,
      files: [
        ...readdirSync(join(root, 'web/src'))
          .filter((f) => f.endsWith('.js'))
          .sort()
          .map((f) => `web/src/${f}`),
        'web/dist/modelkeep_wasm.mjs',
        'web/dist/modelkeep_wasm.wasm',
      ],
    },
    {
      key: 'tfjs-cpu',
      label: 'TF.js minimal: tfjs-core + backend-cpu',
      files: [...core, ...under(`${tf}tfjs-backend-cpu/`)],
    },
    {
      key: 'tfjs-wasm',
      label: 'TF.js minimal: tfjs-core + backend-wasm + its .wasm',
      files: [...core, ...under(`${tf}tfjs-backend-wasm/`)],
    },
    {
      key: 'ort-wasm',
      label: 'onnxruntime-web wasm (requested by the page)',
      files: under('node_modules/onnxruntime-web/'),
    },
  ];
  const known = new Set(groups.flatMap((g) => g.files));
  const other = unique.filter((p) => !known.has(p) && !p.startsWith('build/bench/') && !p.startsWith('__bench__/'));
  for (const g of groups) {
    g.files = fileSizes(g.files);
    g.bytes = g.files.reduce((s, f) => s + (f.bytes ?? 0), 0);
    g.gzip = g.files.reduce((s, f) => s + (f.gzip ?? 0), 0);
  }
  return { groups, other };
}

// ---- report ------------------------------------------------------------------------------------

function report(result) {
  const lines = [];
  const p = (s = '') => lines.push(s);
  const m = result.machine;
  p(`## Forward pass, single thread${quick ? ' (--quick)' : ''}`);
  p();
  p(
    `${m.cpus} CPUs (${m.cpuModel}), load average ${m.loadBefore} before and ${m.loadAfter} after the run ` +
      '(other work on the machine shows up as noise).',
  );
  p(
    `Each cell: ms per call, median (min–max) of ${timing.rounds} samples after a ≥ ${timing.warmupMs / 1000} s ` +
      `warm-up; a sample is the mean time of back-to-back calls repeated until ≥ ${timing.sampleMs} ms have passed ` +
      '(one call for slow cells; the order of the peers rotates from round to round). GFLOP/s = 2·Σ in·out·batch / median time. "modelkeep ÷ X" = X\'s time / ' +
      "modelkeep's time (> 1: modelkeep is faster). Every peer's output was checked against modelkeep's " +
      `(≤ ${tolerance} × max(1, max|out|)) before timing.`,
  );
  for (const env of result.environments) {
    p();
    const v = env.versions;
    p(`### ${env.name}`);
    p();
    p(
      `TF.js ${v.tfjs} (wasm SIMD: ${v.tfjsWasmSimd}), onnxruntime-web ${v.ort}` +
        (env.userAgent ? `; ${env.userAgent}; crossOriginIsolated: ${v.crossOriginIsolated}` : '') +
        '.',
    );
    p();
    p(
      `| model | batch | ${peers.map((x) => `${x.label} ms`).join(' | ')} | ` +
        `${peers.map((x) => `${x.label} GFLOP/s`).join(' | ')} | ` +
        `${peers
          .slice(1)
          .map((x) => `modelkeep ÷ ${x.label}`)
          .join(' | ')} |`,
    );
    p(
      `|---|---:|${peers.map(() => '---:').join('|')}|${peers.map(() => '---:').join('|')}|` +
        `${peers
          .slice(1)
          .map(() => '---:')
          .join('|')}|`,
    );
    for (const model of env.models) {
      for (const c of model.cells) {
        const r = c.results;
        p(
          `| ${model.label} | ${c.batch} | ${peers.map((x) => cell(r[x.key])).join(' | ')} | ` +
            `${peers.map((x) => gflops(r[x.key].gflops)).join(' | ')} | ` +
            `${peers
              .slice(1)
              .map((x) => `${r[x.key].modelkeepSpeedup.toFixed(2)}×`)
              .join(' | ')} |`,
        );
      }
    }
    p();
    p(
      'modelkeep with compact weights (Model#setWeightDtype: f16 / bf16 / int8 + row scale, decoded in ' +
        'registers, never expanded), timed in the same rounds; "÷ X" = X\'s float32 time / this time:',
    );
    p();
    p(
      '| model | batch | weights in memory | ' +
        compactPeers.map((x) => `${x.label} ms`).join(' | ') +
        ' | ' +
        compactPeers.map((x) => `${x.label.replace('modelkeep ', '')} ÷ ORT`).join(' | ') +
        ' | ' +
        compactPeers.map((x) => `${x.label.replace('modelkeep ', '')} ÷ TF.js wasm`).join(' | ') +
        ' | ' +
        compactPeers.map((x) => `${x.label.replace('modelkeep ', '')} ÷ modelkeep f32`).join(' | ') +
        ' |',
    );
    p(
      `|---|---:|---|${compactPeers.map(() => '---:').join('|')}|${compactPeers.map(() => '---:').join('|')}|` +
        `${compactPeers.map(() => '---:').join('|')}|${compactPeers.map(() => '---:').join('|')}|`,
    );
    for (const model of env.models) {
      const mem = [...peers.slice(0, 1), ...compactPeers]
        .map((x) => `${((model.peerInfo[x.key]?.memoryBytes ?? 0) / 1e6).toFixed(2)} MB`)
        .join(' / ');
      for (const c of model.cells) {
        const r = c.results;
        p(
          `| ${model.label} | ${c.batch} | ${mem} | ${compactPeers.map((x) => cell(r[x.key])).join(' | ')} | ` +
            `${compactPeers.map((x) => `${r[x.key].speedupOverOrt.toFixed(2)}×`).join(' | ')} | ` +
            `${compactPeers.map((x) => `${r[x.key].speedupOverTfjsWasm.toFixed(2)}×`).join(' | ')} | ` +
            `${compactPeers.map((x) => `${r[x.key].speedupOverF32.toFixed(2)}×`).join(' | ')} |`,
        );
      }
    }
    p();
    p(
      `(weights in memory: f32 / f16 / bf16 / int8. Compact outputs were checked against modelkeep's float32 ` +
        `within ${compactTolerance} × max(1, max|out|); the largest differences are in the next table.)`,
    );
    p();
    p("Largest |peer − modelkeep| per cell (float64 = modelkeep's first row against a float64 JS reference):");
    p();
    const checkPeers = env.models[0]?.checks[0]?.results.map((r) => r.peer) ?? [];
    p(`| model | batch | max \\|out\\| | ${checkPeers.map((x) => x.replace(' reference (row 0)', '')).join(' | ')} |`);
    p(`|---|---:|---:|${checkPeers.map(() => '---:').join('|')}|`);
    for (const model of env.models) {
      for (const c of model.checks) {
        p(
          `| ${model.label} | ${c.batch} | ${c.scale.toPrecision(3)} | ` +
            `${c.results.map((r) => (r.maxAbsDiff === null ? 'n/a' : r.maxAbsDiff.toExponential(1))).join(' | ')} |`,
        );
      }
    }
    if (env.pageErrors?.length) {
      p();
      p('Page errors:');
      for (const e of env.pageErrors) p(`- ${e}`);
    }
  }
  if (result.downloads) {
    p();
    p('### What a page downloads (the files the bench page requested, each gzipped alone, level 9)');
    p();
    p('| library | files | bytes | gzip -9 |');
    p('|---|---|---:|---:|');
    for (const g of result.downloads.groups) {
      const files = g.files
        .map((f) =>
          f.missing ? `\`${f.path}\` (missing)` : `\`${f.path.replace(/^node_modules\//, '')}\` (${kb(f.gzip)})`,
        )
        .join(' + ');
      p(`| ${g.label} | ${files} | ${kb(g.bytes)} | **${kb(g.gzip)}** |`);
    }
    if (result.downloads.other.length) {
      p();
      p(`Other files the page requested: ${result.downloads.other.map((f) => `\`${f}\``).join(', ')}.`);
    }
  }
  return lines.join('\n');
}

// ---- main --------------------------------------------------------------------------------------

const wanted = envArg ? [envArg] : ['node', 'chromium', 'chromium-threads'];
if (wanted.some((w) => w.startsWith('chromium')) && browserMissing()) {
  log(browserMissing());
  process.exit(1);
}
if (!ensureWasmBuilt(log) || (wanted.includes('chromium-threads') && !ensureWasmBuilt(log, { threads: true })))
  process.exit(1);
for (const pkg of [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  'onnxruntime-web',
]) {
  if (!existsSync(join(root, 'node_modules', pkg, 'package.json'))) {
    log(`${pkg} is not installed: run npm install (it is a devDependency)`);
    process.exit(1);
  }
}

const started = Date.now();
await mkdir(benchDir, { recursive: true });
const prepared = new Map();
for (const model of models) prepared.set(model.key, await prepareFiles(model));

const result = {
  date: new Date().toISOString(),
  quick,
  timing,
  tolerance,
  node: process.version,
  models: models.map(({ key, label, sizes, batches, seed }) => ({
    key,
    label,
    sizes,
    batches,
    seed,
    params: paramCount(sizes),
    weightBytes: prepared.get(key).weightBytes,
    files: prepared.get(key),
  })),
  environments: [],
};
const loadBefore = loadavg()[0].toFixed(2);
let exitCode = 0;
let mismatch = false;
try {
  for (const which of wanted) {
    log(`== ${which} ==`);
    const env =
      which === 'node' ? await nodeEnvironment() : await chromiumEnvironment({ threads: which === 'chromium-threads' });
    try {
      const entry = await runEnvironment(env, prepared);
      if (env.userAgent) {
        entry.userAgent = env.userAgent;
        entry.pageErrors = env.errors;
        if (env.key === 'chromium') result.downloads = downloadSizes(env.requests()); // the default build
        entry.requested = [...new Set(env.requests())];
      }
      result.environments.push(entry);
    } finally {
      await env.close();
    }
  }
} catch (e) {
  exitCode = 1;
  if (e instanceof Mismatch) {
    log(`\nforward_bench: ABORTED — a peer's output does not match modelkeep's:\n${e.message}`);
    mismatch = true;
  } else {
    // Anything else (a page that does not start, a peer that throws): report what was measured.
    log(`\nforward_bench: FAILED — ${e?.stack ?? e}`);
    result.error = String(e?.message ?? e);
  }
}
result.machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model?.trim() ?? 'unknown',
  loadBefore,
  loadAfter: loadavg()[0].toFixed(2),
};
if (!mismatch) {
  let text = report(result);
  if (result.error) text += `\n\n**The run stopped early:** ${result.error.split('\n')[0]}`;
  process.stdout.write(`${text}\n`);
  await writeFile(outFile, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${relative(root, outFile)} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
// Exit explicitly: TF.js's wasm module (Emscripten, in Node) keeps handlers that would turn a
// later error into its own exit code.
process.exit(exitCode);
