#!/usr/bin/env bash
# Everything `npm test` runs, in order: the native build and its GoogleTest
# suite, the same suite under ASan + UBSan, then a short libFuzzer run of each
# fuzz target. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s ===\n' "$*"; }

step "native build + tests"
cmake --preset native >/dev/null
cmake --build --preset native
ctest --preset native

step "ASan + UBSan build + tests"
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan

step "fuzz smoke run (${MODELKEEP_FUZZ_SECONDS:-20} s per target)"
cmake --preset fuzz -DMODELKEEP_FUZZ_SECONDS="${MODELKEEP_FUZZ_SECONDS:-20}" >/dev/null
cmake --build --preset fuzz
ctest --preset fuzz
