#!/usr/bin/env bash
# Builds the WebAssembly module of the npm package into web/dist/ (emcmake + the
# `wasm` preset) and prints its size.
set -euo pipefail
exec 1>&2  # progress goes to stderr, so that `npm pack --json` stays parseable
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs  # Debian's emscripten finds acorn there
emcmake cmake --preset wasm >/dev/null
cmake --build --preset wasm
