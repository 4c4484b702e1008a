#!/usr/bin/env bash
# Builds the WebAssembly modules of the npm package (emcmake + a preset each) and prints their
# sizes and a size breakdown (scripts/wasm-size.mjs): the reader into web/dist-reader/ (the
# `wasm-reader` preset: loads .mkp models and runs them; what a load() alone fetches), the core
# into web/dist/ (the `wasm` preset: .mkp files only; what ready() loads) and the module with the
# PyTorch / safetensors importer and the trainer into web/dist-importer/ (the `wasm-importer`
# preset; fetched on first use).
# With --threads: the optional pthreads build into web/dist-threads/ instead (the `wasm-threads`
# preset, importer included; for pages served cross-origin isolated, docs/API.md "Threads").
# With --reader, --core or --importer: that one module only.
set -euo pipefail
exec 1>&2  # progress goes to stderr, so that `npm pack --json` stays parseable
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") presets="wasm-reader wasm wasm-importer" ;;
  --reader) presets=wasm-reader ;;
  --core) presets=wasm ;;
  --importer) presets=wasm-importer ;;
  --threads) presets=wasm-threads ;;
  *) echo "usage: scripts/build-wasm.sh [--reader | --core | --importer | --threads]"; exit 2 ;;
esac
bash scripts/clean-stale-builds.sh
export NODE_PATH=/usr/share/nodejs  # Debian's emscripten finds acorn there
for preset in $presets; do
  echo "== $preset"
  emcmake cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
done
