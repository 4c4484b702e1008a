#!/usr/bin/env bash
# Everything `npm test` runs, in order: the formatting check; the native build and its GoogleTest
# suite; the WebAssembly builds (the reader, the core and the importer module, then pthreads), the package's tests in Node and in
# headless Chromium, and the packed tarball in a scratch app (each bundler of the matrix, the
# README's quick starts); the native suite again under ASan + UBSan; a short libFuzzer run of
# each fuzz target. Stops at the first failure; prints the totals at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s ===\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Each runner's output is kept so that the totals of every stage can be summed at the end.
run_ctest() { ctest "$@" | tee -a "$log"; }
run_node() { node --test --test-reporter=tap "$@" | tee -a "$log"; }

step "formatting (clang-format, prettier)"
bash scripts/format.sh --check

step "native build + tests"
cmake --preset native >/dev/null
cmake --build --preset native
run_ctest --preset native

step "WebAssembly build"
bash scripts/build-wasm.sh            # the reader (web/dist-reader/), the core (web/dist/), the importer (web/dist-importer/)
node scripts/check-size.mjs
bash scripts/build-wasm.sh --threads  # the optional pthreads build: tests/browser/threads.test.mjs

step "package tests in Node, and the TypeScript declarations"
run_node tests/js/
# TypeScript 7 and 5 by their own paths: both packages provide a `tsc` bin, and which of them
# npm links as node_modules/.bin/tsc depends on the order it happens to link them in.
node_modules/typescript/bin/tsc -p tests/types
node_modules/typescript5/bin/tsc -p tests/types

step "package tests in headless Chromium"
run_node --test-concurrency=1 tests/browser/

step "the packed package: Node, a plain page, Vite 5-8 (dev and build), webpack, Rollup, esbuild, the README quick starts"
run_node tests/package/

step "ASan + UBSan build + tests"
cmake --preset asan >/dev/null
cmake --build --preset asan
run_ctest --preset asan

step "fuzz smoke run (${MODELKEEP_FUZZ_SECONDS:-20} s per target)"
cmake --preset fuzz -DMODELKEEP_FUZZ_SECONDS="${MODELKEEP_FUZZ_SECONDS:-20}" >/dev/null
cmake --build --preset fuzz
run_ctest --preset fuzz

ctest_total=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
node_total=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
printf '\nmodelkeep: %s passed, 0 failed\n' "$((ctest_total + node_total))"
