#!/usr/bin/env bash
# bench.sh — every benchmark, then one summary (`npm run bench`; not part of `npm test`):
#   1. setup (scripts/setup.sh) and the WebAssembly builds (scripts/build-wasm.sh, and --threads)
#   2. the native Google Benchmark suite (tests/bench/bench_core.cpp)   → build/bench/native.json
#   3. IndexedDB save/load in Chromium (tests/bench/browser_bench.mjs)  → build/bench/browser.json
#   4. PyTorch state dict import (tests/bench/import_bench.mjs)         → build/bench/import.json
#   5. forward pass vs TF.js and ORT (tests/bench/forward_bench.mjs: Node, Chromium, and Chromium
#      cross-origin isolated with the pthreads build)                   → build/bench/forward.json
#   6. import → first prediction in Chromium (tests/bench/startup_bench.mjs) → build/bench/startup.json
#   7. the machine's limits beside modelkeep in one page: a reference SIMD128 sgemm and a
#      streaming read (tests/bench/limits_bench.mjs, tests/bench/ref_kernels.c)
#   8. a bundled app's download and navigation → first prediction, cold, for modelkeep, TF.js
#      (cpu, wasm) and ORT beside an empty page (tests/bench/app_bench.mjs) → build/bench/app.json
#   9. issue 15's goals, each judged met or not from the figures above, with why not
#      (tests/bench/goals.mjs)                                           → build/bench/goals.md
# then collects every JSON written by this run into build/bench/results.json and the Markdown
# reports into build/bench/results.md.
#
# Usage: bash tests/bench/bench.sh [--quick]    (npm run bench [-- --quick])
#   --quick  passed to browser_bench and forward_bench (2 timed runs, small models only) and
#            startup_bench (3 pages per cell), and a short --benchmark_min_time for the native
#            suite; import_bench runs as usual.
# A failing step (a benchmark's own check, e.g. a peer's output mismatch) does not stop the
# later ones; the script exits non-zero at the end if any step failed. Setup or build failures
# stop it at once.
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=()
native_args=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick); native_args=(--benchmark_min_time=0.05) ;;
    *) echo "usage: bash tests/bench/bench.sh [--quick]" >&2; exit 2 ;;
  esac
done

out=build/bench
mkdir -p "$out"
started=$(date +%s)
load_before=$(cut -d' ' -f1 /proc/loadavg)
steps_file=$(mktemp)
trap 'rm -f "$steps_file"' EXIT

step() { printf '\n=== %s ===\n' "$*" >&2; }

# run NAME MARKDOWN-OUT COMMAND...: runs a benchmark step, its stdout (a Markdown report)
# shown and kept in MARKDOWN-OUT, and records the outcome for the summary.
run() {
  local name=$1 md=$2
  shift 2
  step "$name: $*"
  local t0 status=0
  t0=$(date +%s)
  "$@" | tee "$md" || status=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - t0 ))" "$*" >>"$steps_file"
  if [ "$status" -ne 0 ]; then echo "bench: step '$name' failed (exit $status)" >&2; fi
}

step "setup"
bash scripts/setup.sh
step "WebAssembly build"
bash scripts/build-wasm.sh
bash scripts/build-wasm.sh --threads
step "native build"
cmake --preset native >/dev/null
cmake --build --preset native --target modelkeep_bench

run native "$out/native.txt" build/native/modelkeep_bench "${native_args[@]}" \
  --benchmark_out="$out/native.json" --benchmark_out_format=json
run browser "$out/browser.md" node tests/bench/browser_bench.mjs "${quick[@]}"
run import "$out/import.md" node tests/bench/import_bench.mjs
run forward "$out/forward.md" node tests/bench/forward_bench.mjs "${quick[@]}"
run startup "$out/startup.md" node tests/bench/startup_bench.mjs "${quick[@]}"
run limits "$out/limits.md" node tests/bench/limits_bench.mjs
run app "$out/app.md" node tests/bench/app_bench.mjs
run goals "$out/goals.md" node tests/bench/goals.mjs --since "$started"

step "summary → $out/results.json, $out/results.md"
BENCH_STARTED=$started BENCH_LOAD_BEFORE=$load_before BENCH_STEPS=$steps_file BENCH_QUICK=${#quick[@]} \
node --input-type=module - <<'EOF'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

const dir = 'build/bench';
const started = Number(process.env.BENCH_STARTED);
const steps = readFileSync(process.env.BENCH_STEPS, 'utf8').trim().split('\n').filter(Boolean).map((line) => {
  const [name, status, seconds, command] = line.split('\t');
  return { name, command, status: Number(status), seconds: Number(seconds) };
});
const sources = { native: 'native.json', browser: 'browser.json', import: 'import.json', forward: 'forward.json',
  startup: 'startup.json', limits: 'limits.json', app: 'app.json' };
const markdown = { native: 'native.txt', browser: 'browser.md', import: 'import.md', forward: 'forward.md',
  startup: 'startup.md', limits: 'limits.md', app: 'app.md', goals: 'goals.md' };

// Only what this run wrote, and only from steps that succeeded: an older file (an earlier run),
// or one left by a step that failed, is reported as missing.
const ok = (key) => steps.some((s) => s.name === key && s.status === 0);
const fresh = (file) => existsSync(file) && statSync(file).mtimeMs / 1000 >= started - 1;
const results = {
  date: new Date().toISOString(),
  quick: process.env.BENCH_QUICK !== '0',
  node: process.version,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model?.trim() ?? 'unknown',
    loadBefore: process.env.BENCH_LOAD_BEFORE, loadAfter: loadavg()[0].toFixed(2) },
  steps,
};
for (const [key, name] of Object.entries(sources)) {
  const file = `${dir}/${name}`;
  results[key] = ok(key) && fresh(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}
writeFileSync(`${dir}/results.json`, `${JSON.stringify(results, null, 2)}\n`);

const lines = [];
const p = (s = '') => lines.push(s);
const m = results.machine;
p('# modelkeep benchmarks');
p();
p(`${results.date}${results.quick ? ' (--quick)' : ''}; Node ${results.node}; ${m.cpus} CPUs (${m.cpuModel}); ` +
  `load average ${m.loadBefore} at the start, ${m.loadAfter} at the end.`);
p();
p('| step | command | status | time |');
p('|---|---|---|---:|');
for (const s of steps) p(`| ${s.name} | \`${s.command}\` | ${s.status === 0 ? 'ok' : `**failed (${s.status})**`} | ${s.seconds} s |`);

// The native suite as a table (Google Benchmark's JSON).
p();
p('## Native (Google Benchmark, tests/bench/bench_core.cpp)');
p();
if (results.native) {
  const ctx = results.native.context ?? {};
  p(`${ctx.host_name ? `${ctx.host_name}: ` : ''}${ctx.num_cpus ?? '?'} CPUs at ${ctx.mhz_per_cpu ?? '?'} MHz, ` +
    `library build ${ctx.library_build_type ?? '?'}.`);
  p();
  p('| benchmark | time | iterations | rate | label |');
  p('|---|---:|---:|---:|---|');
  for (const b of results.native.benchmarks ?? []) {
    if (b.run_type === 'aggregate') continue;
    const rate = b['GFLOP/s'] !== undefined ? `${b['GFLOP/s'].toFixed(2)} GFLOP/s`
      : b.bytes_per_second !== undefined ? `${(b.bytes_per_second / 1e6).toFixed(0)} MB/s` : '';
    p(`| ${b.name} | ${b.real_time.toFixed(3)} ${b.time_unit} | ${b.iterations} | ${rate} | ${b.label ?? ''} |`);
  }
} else {
  p(`(no native.json from this run: the step ${ok('native') ? 'wrote none' : 'failed'})`);
}
const include = (key, title) => {
  p();
  if (title) {
    p(title);
    p();
  }
  const file = `${dir}/${markdown[key]}`;
  if (!results[key] || !fresh(file)) {
    p(`(no ${sources[key]} from this run: the step ${ok(key) ? 'wrote none' : 'failed'})`);
    return;
  }
  p(readFileSync(file, 'utf8').trim());
};
// The goals first: the verdict of this run, then the figures behind it.
p();
if (ok('goals') && fresh(`${dir}/goals.md`)) p(readFileSync(`${dir}/goals.md`, 'utf8').trim());
else p(`(no goals.md from this run: the step ${ok('goals') ? 'wrote none' : 'failed'})`);
include('browser');
include('import', '## Import of a PyTorch state dict (tests/bench/import_bench.mjs)');
include('forward');
include('startup');
include('limits');
include('app');
writeFileSync(`${dir}/results.md`, `${lines.join('\n')}\n`);
console.error(`wrote ${dir}/results.json and ${dir}/results.md`);
EOF

failed=$(awk -F'\t' '$2 != 0 { print $1 }' "$steps_file" | tr '\n' ' ')
if [ -n "$failed" ]; then
  echo "bench: failed steps: $failed" >&2
  exit 1
fi
echo "bench: done in $(( $(date +%s) - started )) s" >&2
