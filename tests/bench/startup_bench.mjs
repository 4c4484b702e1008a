#!/usr/bin/env node
// startup_bench.mjs — "import → first prediction" in headless Chromium for the PyTorch tutorial
// model, Linear(3,5): how long a fresh page takes from the start of `import('modelkeep')` to the
// first forward() result. A benchmark, not a test: it is not part of `npm test`.
//
// Run:  node tests/bench/startup_bench.mjs [--quick]
//   --quick  3 pages per cell instead of 12 (checks that everything works)
// Prints a Markdown report on stdout, progress on stderr, and writes build/bench/startup.json.
//
// Each sample is a fresh page that measures, with performance.now() (0.1 ms resolution: the page
// is not cross-origin isolated), three steps:
//   import   `await import('/web/src/index.js')` then `await mk.ready()`: the package's modules,
//            the core's .wasm fetched, compiled and instantiated (for load(): no ready(), the
//            package's modules only);
//   build    the model: nn.sequential({ fc1: nn.linear(3, 5) }, { seed: 1 }) as in the README,
//            or load() of the same model saved as a .mkp file, fetched from the server (with
//            nothing else loaded, load() fetches, compiles and instantiates the reader module);
//   predict  the first model.forward([[1, 2, 3]]).
// Two cache states:
//   cold     a new browser profile for every page: nothing cached, every file comes from the
//            server (127.0.0.1, so no network latency: a real page adds its download time);
//   warm     one profile, primed by one visit, then a new page per sample: the files come from
//            the HTTP cache (the server sends Cache-Control: max-age) and Chromium may reuse
//            its cached compilation of the scripts and the .wasm.
// Every page's prediction must equal, bit for bit, the one Node computes with the same seed.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import {
  startServer,
  chromiumPath,
  chromiumArgs,
  tempDir,
  removeDir,
  watchErrors,
  ensureWasmBuilt,
} from '../browser/harness.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const outFile = join(root, 'build/bench/startup.json');
const args = process.argv.slice(2);
if (args.some((a) => a !== '--quick')) {
  process.stderr.write('usage: node tests/bench/startup_bench.mjs [--quick]\n');
  process.exit(2);
}
const quick = args.includes('--quick');
const pages = quick ? 3 : 12;
const log = (line) => process.stderr.write(`${line}\n`);

if (!ensureWasmBuilt(log)) process.exit(1);

// The reference: the same model in Node, and its .mkp file for the `load` variant.
const mk = await import('../../web/src/node.js');
await mk.ready();
const reference = mk.nn.sequential({ fc1: mk.nn.linear(3, 5) }, { seed: 1 });
const expected = Array.from(reference.forward([[1, 2, 3]]).data);
const mkpBytes = reference.toBytes();
reference.dispose();

const builds = {
  sequential: {
    label: 'nn.sequential({ fc1: nn.linear(3, 5) })',
    code: 'mk.nn.sequential({ fc1: mk.nn.linear(3, 5) }, { seed: 1 })',
  },
  mkp: {
    label: `load() of its .mkp (${mkpBytes.length} bytes, fetched; the reader module)`,
    code: "await mk.load('/__bench__/tutorial.mkp')",
    ready: false,
  },
};

const page = (build) => `<!doctype html>
<meta charset="utf-8"><link rel="icon" href="data:,"><title>modelkeep startup</title>
<script type="module">
  const t0 = performance.now();
  const mk = await import('/web/src/index.js');
  ${builds[build].ready === false ? '' : 'await mk.ready();'}
  const t1 = performance.now();
  const model = ${builds[build].code};
  const t2 = performance.now();
  const y = model.forward([[1, 2, 3]]);
  const t3 = performance.now();
  window.result = { import: t1 - t0, build: t2 - t1, predict: t3 - t2, total: t3 - t0,
                    shape: y.shape, data: Array.from(y.data) };
</script>`;

const server = await startServer({ root, cacheControl: 'max-age=3600' });
for (const build of Object.keys(builds)) {
  server.route(`/__bench__/startup-${build}.html`, page(build), 'text/html; charset=utf-8');
}
server.route('/__bench__/tutorial.mkp', mkpBytes);

const launch = (profile) =>
  chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
  });

/** Opens the page in a new tab of `context` and returns its timings (checked). */
async function sample(context, build) {
  const tab = await context.newPage();
  const errors = watchErrors(tab);
  try {
    await tab.goto(`${server.url}/__bench__/startup-${build}.html`);
    await tab.waitForFunction(() => window.result !== undefined, null, { timeout: 30_000 });
    const r = await tab.evaluate(() => window.result);
    if (errors.length) throw new Error(`errors in the page: ${errors.join('; ')}`);
    if (JSON.stringify(r.shape) !== '[1,5]' || r.data.some((v, i) => v !== expected[i])) {
      throw new Error(`the page predicted ${JSON.stringify(r.data)}, Node ${JSON.stringify(expected)}`);
    }
    return { import: r.import, build: r.build, predict: r.predict, total: r.total };
  } finally {
    await tab.close();
  }
}

async function cold(build) {
  const runs = [];
  for (let i = 0; i < pages; i++) {
    const profile = await tempDir('modelkeep-startup-');
    const context = await launch(profile);
    try {
      runs.push(await sample(context, build));
    } finally {
      await context.close();
      await removeDir(profile);
    }
  }
  return runs;
}

async function warm(build) {
  const profile = await tempDir('modelkeep-startup-');
  const context = await launch(profile);
  try {
    await sample(context, build); // primes the HTTP cache
    const runs = [];
    for (let i = 0; i < pages; i++) runs.push(await sample(context, build));
    return runs;
  } finally {
    await context.close();
    await removeDir(profile);
  }
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

const steps = ['import', 'build', 'predict', 'total'];
const results = [];
try {
  for (const cache of ['cold', 'warm']) {
    for (const build of Object.keys(builds)) {
      log(`startup: ${cache} cache, ${build}: ${pages} fresh pages ...`);
      const runs = await (cache === 'cold' ? cold(build) : warm(build));
      results.push({
        cache,
        model: build,
        pages: runs.length,
        runs,
        ...Object.fromEntries(steps.map((s) => [s, stats(runs.map((r) => r[s]))])),
      });
    }
  }
} finally {
  await server.close();
}

const ms = (v) => (v >= 10 ? v.toFixed(1) : v.toFixed(2));
const cell = (s) => `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;
const load = loadavg()[0].toFixed(2);
const lines = [
  `## Import → first prediction, tutorial Linear(3,5), headless Chromium${quick ? ' (--quick)' : ''}`,
  '',
  `ms, median (min–max) over ${pages} fresh pages per row; load average ${load}. import = the package's modules ` +
    'and the .wasm fetched, compiled and instantiated; build = the model made; predict = the first ' +
    'forward([[1, 2, 3]]). cold = a new browser profile per page (nothing cached; served from 127.0.0.1), ' +
    'warm = the HTTP cache primed by one visit.',
  '',
  '| cache | model from | import | build | first predict | total |',
  '|---|---|---:|---:|---:|---:|',
  ...results.map((r) => `| ${r.cache} | ${builds[r.model].label} | ${steps.map((s) => cell(r[s])).join(' | ')} |`),
];
console.log(lines.join('\n'));

await mkdir(join(root, 'build/bench'), { recursive: true });
await writeFile(
  outFile,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      quick,
      pages,
      node: process.version,
      chromium: chromiumPath,
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model?.trim() ?? 'unknown', loadAfter: load },
      wasmBytes: readFileSync(join(root, 'web/dist/modelkeep_wasm.wasm')).length,
      results,
    },
    null,
    2,
  )}\n`,
);
log(`wrote ${outFile}`);
