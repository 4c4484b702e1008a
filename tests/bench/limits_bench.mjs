#!/usr/bin/env node
// limits_bench.mjs — what this machine allows, measured in the same headless Chromium page as
// modelkeep, rounds interleaved (each round runs every measurement, in a rotating order, so that
// a slow phase of the VM hits all alike), medians reported:
//   - a plain register-blocked SIMD128 sgemm (tests/bench/ref_kernels.c: 4×8 tile, no FMA, B
//     packed beforehand) on each layer of the two benchmark MLPs, against model.forward at the
//     same batch: GFLOP/s, and modelkeep as a share of the reference;
//   - a streaming read of 100 MiB (SIMD128 sum), the floor of a batch-1 forward that must read
//     every weight once, against model.forward at batch 1 of the 100 MB MLP.
// A benchmark, not a test (not part of `npm test`). Part of `npm run bench`.
// Run:  node tests/bench/limits_bench.mjs [--rounds N]
// Needs emcc (the reference is compiled into build/bench/ref_kernels.wasm), web/dist, Chromium.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer, launch, openPage, browserMissing, ensureWasmBuilt } from '../browser/harness.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const log = (line) => process.stderr.write(`${line}\n`);
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const rounds = arg('--rounds', 7);

const mlps = [
  { key: 'mnist', label: 'MLP 784→512→512→10', sizes: [784, 512, 512, 10], batch: 64 },
  { key: 'big', label: 'MLP 1024→4096→4096→1024 (100 MB)', sizes: [1024, 4096, 4096, 1024], batch: 32 },
];

function buildReference() {
  const src = join(root, 'tests/bench/ref_kernels.c');
  const out = join(root, 'build/bench/ref_kernels.wasm');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return readFileSync(out);
  mkdirSync(join(root, 'build/bench'), { recursive: true });
  log('compiling tests/bench/ref_kernels.c');
  execFileSync(
    'emcc',
    [
      '-O3',
      '-msimd128',
      '--no-entry',
      '-sSTANDALONE_WASM',
      '-sEXPORTED_FUNCTIONS=_sgemm_4x8,_stream_sum',
      '-sINITIAL_MEMORY=16777216',
      '-sALLOW_MEMORY_GROWTH=1',
      '-sMAXIMUM_MEMORY=2147483648',
      src,
      '-o',
      out,
    ],
    { stdio: 'inherit', env: { ...process.env, NODE_PATH: '/usr/share/nodejs' } },
  );
  return readFileSync(out);
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const missing = browserMissing();
  if (missing) throw new Error(missing);
  ensureWasmBuilt(log);
  const reference = buildReference();
  const server = await startServer();
  server.route('/bench/ref_kernels.wasm', reference);
  const browser = await launch();
  const before = loadavg()[0];
  try {
    const { page } = await openPage(browser.context, server.url);
    await page.evaluate(
      async ({ mlps }) => {
        const { nn } = window.mk;
        const bytes = await (await fetch('/bench/ref_kernels.wasm')).arrayBuffer();
        const { instance } = await WebAssembly.instantiate(bytes, {});
        const ref = instance.exports;
        // The reference's buffers, placed past its own data and stack (the first 16 MiB).
        let top = 16 << 20;
        const alloc = (floats) => {
          const at = top;
          top += floats * 4;
          const need = top - ref.memory.buffer.byteLength;
          if (need > 0) ref.memory.grow(Math.ceil(need / 65536));
          return at;
        };
        const fill = (at, n) => {
          const f = new Float32Array(ref.memory.buffer, at, n);
          for (let i = 0; i < n; i++) f[i] = Math.sin(i) * 0.01;
        };
        const S = (window.S = { ref, layers: {}, models: {}, inputs: {}, stream: null });
        for (const m of mlps) {
          const layers = [];
          for (let l = 0; l + 1 < m.sizes.length; l++) {
            const K = m.sizes[l];
            const N = Math.ceil(m.sizes[l + 1] / 8) * 8; // the reference needs whole 8-column panels
            const A = alloc(m.batch * K);
            const B = alloc(K * N);
            const C = alloc(m.batch * N);
            fill(A, m.batch * K);
            fill(B, K * N);
            layers.push({ A, B, C, M: m.batch, N, K, flops: 2 * m.batch * m.sizes[l + 1] * K });
          }
          S.layers[m.key] = layers;
          const parts = [];
          for (let l = 0; l + 1 < m.sizes.length; l++) {
            parts.push(nn.linear(m.sizes[l], m.sizes[l + 1]));
            if (l + 2 < m.sizes.length) parts.push(nn.relu());
          }
          S.models[m.key] = nn.sequential(...parts, { seed: 1 });
          S.inputs[m.key] = Float32Array.from({ length: m.batch * m.sizes[0] }, (_, i) => Math.cos(i));
          S.inputs[`${m.key}1`] = S.inputs[m.key].subarray(0, m.sizes[0]);
        }
        const streamFloats = (100 << 20) / 4;
        S.stream = { at: alloc(streamFloats), n: streamFloats };
        fill(S.stream.at, streamFloats);
      },
      { mlps },
    );
    // One round: every measurement once, in a rotating order.
    const names = [...mlps.flatMap((m) => [`ref:${m.key}`, `mk:${m.key}`]), 'stream', 'mk1:big'];
    const times = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      const order = names.map((_, i) => names[(i + r) % names.length]);
      const got = await page.evaluate(
        ({ order, mlps }) => {
          const { S } = window;
          const out = {};
          const shape = (m, batch) => [batch, m.sizes[0]];
          for (const name of order) {
            const [kind, key] = name.split(':');
            const m = mlps.find((x) => x.key === key);
            const t = performance.now();
            if (kind === 'ref') for (const l of S.layers[key]) S.ref.sgemm_4x8(l.A, l.B, l.C, l.M, l.N, l.K);
            else if (kind === 'mk') S.models[key].forward(S.inputs[key], shape(m, m.batch));
            else if (kind === 'mk1') S.models[key].forward(S.inputs[`${key}1`], shape(m, 1));
            else S.ref.stream_sum(S.stream.at, S.stream.n);
            out[name] = performance.now() - t;
          }
          return out;
        },
        { order, mlps },
      );
      for (const [n, t] of Object.entries(got)) if (r > 0) times[n].push(t); // round 0 warms up
      log(`round ${r + 1}/${rounds}`);
    }
    const after = loadavg()[0];
    const ua = await page.evaluate(() => navigator.userAgent);
    const p = (line) => process.stdout.write(`${line}\n`);
    p("## The machine's limits beside modelkeep (headless Chromium, one thread)\n");
    p(
      `${ua}; ${cpus().length} CPUs; load average ${before.toFixed(2)} before, ${after.toFixed(2)} after; ` +
        `medians of ${rounds - 1} interleaved rounds after one warm-up.\n`,
    );
    p('| workload | reference | modelkeep | modelkeep ÷ reference (speed) |');
    p('|---|---:|---:|---:|');
    for (const m of mlps) {
      const flops = m.sizes.slice(1).reduce((s, n, l) => s + 2 * m.batch * n * m.sizes[l], 0);
      const ref = median(times[`ref:${m.key}`]);
      const mk = median(times[`mk:${m.key}`]);
      p(
        `| ${m.label}, batch ${m.batch} | ${ref.toFixed(2)} ms (${(flops / ref / 1e6).toFixed(1)} GFLOP/s, ` +
          `SIMD128 4×8 sgemm) | ${mk.toFixed(2)} ms (${(flops / mk / 1e6).toFixed(1)} GFLOP/s) | ` +
          `${(ref / mk).toFixed(2)} |`,
      );
    }
    const big = mlps[1];
    const weightBytes = big.sizes.slice(1).reduce((s, n, l) => s + 4 * n * big.sizes[l], 0);
    const stream = median(times.stream);
    const gbs = (100 * 2 ** 20) / stream / 1e6;
    const floor = weightBytes / gbs / 1e6;
    const mk1 = median(times['mk1:big']);
    // For tests/bench/goals.mjs: the medians of this run.
    const json = {
      date: new Date().toISOString(),
      rounds,
      userAgent: ua,
      loadavg: [before, after],
      gemm: mlps.map((m) => {
        const flops = m.sizes.slice(1).reduce((s, n, l) => s + 2 * m.batch * n * m.sizes[l], 0);
        return {
          key: m.key,
          batch: m.batch,
          flops,
          refMs: median(times[`ref:${m.key}`]),
          mkMs: median(times[`mk:${m.key}`]),
        };
      }),
      stream: { key: big.key, weightBytes, streamMs: stream, gbs, floorMs: floor, mkMs: mk1 },
    };
    writeFileSync(join(root, 'build/bench/limits.json'), JSON.stringify(json, null, 1));
    p(
      `| ${big.label}, batch 1 (${(weightBytes / 1e6).toFixed(1)} MB of f32 weights) | ` +
        `${floor.toFixed(2)} ms (reading them at the streaming rate: 100 MiB in ${stream.toFixed(2)} ms, ` +
        `${gbs.toFixed(1)} GB/s) | ${mk1.toFixed(2)} ms | ${(floor / mk1).toFixed(2)} |`,
    );
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((e) => {
  log(e?.stack ?? String(e));
  process.exit(1);
});
