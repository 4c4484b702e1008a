#!/usr/bin/env node
// app_bench.mjs — what a user's bundled app costs: for modelkeep, TensorFlow.js (cpu and wasm
// backends) and ONNX Runtime Web, a tiny app built by Vite as a user would build it, that puts
// the tutorial model (Linear(3, 5), the same weights everywhere) together and prints its first
// prediction; and the same app without any library (the empty page). For each app:
//   download  what the page fetched, each response gzip -9 (the server sends files as they are);
//   first     navigation start → the first output, in a fresh browser profile (nothing cached),
//             and that minus the empty page's: what the library adds to a cold page.
// Rounds are interleaved (each round visits every app once, in a rotating order) and medians
// reported, so that a slow phase of the VM hits every app alike. A benchmark, not a test: part
// of `npm run bench`, not of `npm test`.
// Run:  node tests/bench/app_bench.mjs [--rounds N]      (default 9; the first round warms up)
// modelkeep and TF.js build the model in code from the weights; ORT cannot, so its app fetches a
// 0.5 KB ONNX file of the same weights (tests/bench/make_onnx.py), which its time includes. A
// second modelkeep app does what ORT's does: it load()s a .mkp file of the same weights, which
// needs only the reader module (the page of scripts/check-size.mjs).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

import { startServer, launch, browserMissing, ensureWasmBuilt, tempDir, removeDir } from '../browser/harness.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const log = (line) => process.stderr.write(`${line}\n`);
const i = process.argv.indexOf('--rounds');
const rounds = i > 0 ? Number(process.argv[i + 1]) : 9;

// The tutorial model's weights (any fixed values: every app gets the same ones).
const weight = Array.from({ length: 15 }, (_, k) => Math.round(Math.sin(k + 1) * 1000) / 1000);
const bias = Array.from({ length: 5 }, (_, k) => Math.round(Math.cos(k + 1) * 1000) / 1000);
const x = [1, 2, 3];
const done = `document.body.dataset.out = JSON.stringify(Array.from(y)); window.__first = performance.now();`;

const apps = {
  empty: { label: 'the same page without a library', main: `const y = [${x}];\n${done}\n` },
  modelkeep: {
    label: 'modelkeep',
    main: `import { ready, Model } from 'modelkeep';
await ready();
const model = Model.fromSpec('fc1=Linear(3,5)');
model.loadStateDict({
  'fc1.weight': { shape: [5, 3], data: new Float32Array([${weight}]) },
  'fc1.bias': { shape: [5], data: new Float32Array([${bias}]) },
});
const y = model.forward(new Float32Array([${x}]), [1, 3]).data;
${done}
`,
  },
  modelkeepMkp: {
    label: 'modelkeep, load() of a .mkp (the reader module)',
    main: `import { load } from 'modelkeep';
const model = await load('/tutorial.mkp');
const y = model.forward(new Float32Array([${x}]), [1, 3]).data;
${done}
`,
  },
  tfjsCpu: {
    label: 'TensorFlow.js 4.22 (cpu)',
    main: `import * as tf from '@tensorflow/tfjs';
await tf.setBackend('cpu');
const model = tf.sequential({ layers: [tf.layers.dense({ units: 5, inputShape: [3] })] });
model.setWeights([tf.tensor2d([${weight}], [5, 3]).transpose(), tf.tensor1d([${bias}])]);
const y = await model.predict(tf.tensor2d([${x}], [1, 3])).data();
${done}
`,
  },
  tfjsWasm: {
    label: 'TensorFlow.js 4.22 (wasm)',
    main: `import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
setWasmPaths('/');
await tf.setBackend('wasm');
const model = tf.sequential({ layers: [tf.layers.dense({ units: 5, inputShape: [3] })] });
model.setWeights([tf.tensor2d([${weight}], [5, 3]).transpose(), tf.tensor1d([${bias}])]);
const y = await model.predict(tf.tensor2d([${x}], [1, 3])).data();
${done}
`,
    publicFiles: ['node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'],
  },
  ort: {
    label: 'ONNX Runtime Web 1.30 (wasm)',
    main: `import * as ort from 'onnxruntime-web/wasm';
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = '/';
const session = await ort.InferenceSession.create('/tutorial.onnx', { executionProviders: ['wasm'] });
const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([${x}]), [1, 3]) });
const y = out.y.data;
${done}
`,
    publicFiles: [
      'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm',
      'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs',
    ],
  },
};

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The ONNX file of the tutorial weights (torch.onnx.export through make_onnx.py). */
function tutorialOnnx(dir) {
  const weights = join(dir, 'tutorial.f32');
  writeFileSync(weights, Buffer.from(new Float32Array([...weight, ...bias]).buffer));
  const out = join(dir, 'tutorial.onnx');
  const p = spawnSync(
    '/usr/bin/python3',
    [join(root, 'tests/bench/make_onnx.py'), '--sizes', '3,5', '--weights', weights, '--out', out],
    { stdio: 'inherit' },
  );
  if (p.status !== 0) throw new Error('make_onnx.py failed (is python3-torch installed?)');
  return readFileSync(out);
}

/** The .mkp file of the tutorial weights, written by the package in Node. */
async function tutorialMkp() {
  const mk = await import('../../web/src/node.js');
  await mk.ready();
  const model = mk.Model.fromSpec('fc1=Linear(3,5)');
  model.loadStateDict({
    'fc1.weight': { shape: [5, 3], data: new Float32Array(weight) },
    'fc1.bias': { shape: [5], data: new Float32Array(bias) },
  });
  const bytes = model.toBytes();
  model.dispose();
  return bytes;
}

async function buildApps(dir, onnx, mkp) {
  const built = {};
  for (const [key, app] of Object.entries(apps)) {
    const src = join(dir, key);
    mkdirSync(join(src, 'public'), { recursive: true });
    writeFileSync(
      join(src, 'index.html'),
      '<!doctype html>\n<title>app</title>\n<script type="module" src="./main.js"></script>\n',
    );
    writeFileSync(join(src, 'main.js'), app.main);
    for (const f of app.publicFiles ?? []) cpSync(join(root, f), join(src, 'public', f.split('/').pop()));
    if (key === 'ort') writeFileSync(join(src, 'public', 'tutorial.onnx'), onnx);
    if (key === 'modelkeepMkp') writeFileSync(join(src, 'public', 'tutorial.mkp'), mkp);
    const outDir = join(src, 'dist');
    await build({
      root: src,
      configFile: false,
      envDir: false,
      logLevel: 'warn',
      // 'modelkeep' as the package's browser entry ("exports" default); the peers from the repository.
      resolve: { alias: { modelkeep: join(root, 'web/src/index.js') } },
      build: { outDir, target: 'esnext' },
    });
    built[key] = outDir;
  }
  return built;
}

async function main() {
  const missing = browserMissing();
  if (missing) throw new Error(missing);
  ensureWasmBuilt(log);
  const dir = join(root, 'build/bench/apps'); // inside the repository: the peers resolve from its node_modules
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const onnx = tutorialOnnx(dir);
  log('building the apps with Vite');
  const built = await buildApps(dir, onnx, await tutorialMkp());
  // One server per app, each serving its dist/ as the site root.
  const servers = {};
  for (const [key, outDir] of Object.entries(built)) servers[key] = await startServer({ root: outDir });
  const keys = Object.keys(apps);
  const first = Object.fromEntries(keys.map((k) => [k, []]));
  const download = {};
  const outputs = {};
  const before = loadavg()[0];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const key of keys.map((_, j) => keys[(j + r) % keys.length])) {
        const profile = await tempDir('modelkeep-app-');
        const browser = await launch(profile);
        try {
          const page = await browser.context.newPage();
          const fetched = [];
          page.on('response', async (res) => {
            try {
              fetched.push(gzipSync(await res.body(), { level: 9 }).length);
            } catch {
              /* a redirect or an aborted response has no body */
            }
          });
          await page.goto(`${servers[key].url}/index.html`);
          await page.waitForFunction(() => window.__first !== undefined, null, { timeout: 60_000 });
          const t = await page.evaluate(() => window.__first);
          outputs[key] = await page.evaluate(() => document.body.dataset.out);
          if (r > 0) first[key].push(t);
          await page.waitForLoadState('networkidle');
          download[key] = fetched.reduce((a, b) => a + b, 0);
        } finally {
          await browser.close();
          await removeDir(profile);
        }
      }
      log(`round ${r + 1}/${rounds}`);
    }
  } finally {
    for (const s of Object.values(servers)) await s.close();
  }
  const after = loadavg()[0];
  // Every library must print what the empty page's arithmetic says, to float32 precision.
  const want = [0, 1, 2, 3, 4].map((o) => bias[o] + x.reduce((s, xi, k) => s + xi * weight[o * 3 + k], 0));
  for (const key of keys.filter((k) => k !== 'empty')) {
    const got = JSON.parse(outputs[key]);
    if (got.some((v, k) => Math.abs(v - want[k]) > 1e-5)) throw new Error(`${key} predicted ${got}, not ${want}`);
  }
  const p = (line) => process.stdout.write(`${line}\n`);
  p('## A bundled app: download and navigation → first prediction (headless Chromium, nothing cached)\n');
  p(
    `${cpus().length} CPUs; load average ${before.toFixed(2)} before, ${after.toFixed(2)} after; medians of ` +
      `${rounds - 1} interleaved rounds after one warm-up; Vite builds, each response gzip -9.\n`,
  );
  p('| app | downloads (gzip -9) | navigation → first output | over the empty page |');
  p('|---|---:|---:|---:|');
  const empty = median(first.empty);
  for (const key of keys) {
    const m = median(first[key]);
    p(
      `| ${apps[key].label} | ${(download[key] / 1024).toFixed(1)} KiB | ${m.toFixed(1)} ms | ` +
        `${key === 'empty' ? '—' : `+${(m - empty).toFixed(1)} ms`} |`,
    );
  }
  writeFileSync(
    join(root, 'build/bench/app.json'),
    JSON.stringify({ rounds, first, download, before, after }, null, 1),
  );
}

main().catch((e) => {
  log(e?.stack ?? String(e));
  process.exit(1);
});
