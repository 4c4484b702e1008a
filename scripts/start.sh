#!/usr/bin/env bash
# `npm start`: (after setup.sh has installed what is missing) builds the native CLI and the
# WebAssembly package, then serves the repository for the browser demo (web/demo/) until
# interrupted; the server prints the demo's URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/clean-stale-builds.sh
cmake --preset native >/dev/null
cmake --build --preset native --target modelkeep_cli
bash scripts/build-wasm.sh
cli=build/native/modelkeep
echo
echo "Built $cli. Try:"
echo "  $cli init 'fc1=Linear(3,5)' tutorial.mkp"
echo "  $cli inspect tutorial.mkp"
echo "  $cli predict tutorial.mkp --input '[[1,2,3]]'"
echo "  $cli --help"
echo
exec node scripts/serve.mjs
