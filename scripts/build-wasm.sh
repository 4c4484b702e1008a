#!/usr/bin/env bash
# Builds the WebAssembly module of the npm package into web/dist/ (emcmake + the
# `wasm` preset) and prints its size. With --threads: the optional pthreads
# build into web/dist-threads/ instead (the `wasm-threads` preset; for pages
# served cross-origin isolated, docs/API.md "Threads"). With --lean: the module
# without the PyTorch / safetensors importer into web/dist-lean/ (the
# `wasm-lean` preset; .mkp files only).
set -euo pipefail
exec 1>&2  # progress goes to stderr, so that `npm pack --json` stays parseable
cd "$(dirname "$0")/.."
preset=wasm
case "${1:-}" in
  "") ;;
  --threads) preset=wasm-threads ;;
  --lean) preset=wasm-lean ;;
  *) echo "usage: scripts/build-wasm.sh [--threads | --lean]"; exit 2 ;;
esac
bash scripts/clean-stale-builds.sh
export NODE_PATH=/usr/share/nodejs  # Debian's emscripten finds acorn there
emcmake cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
