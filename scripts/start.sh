#!/usr/bin/env bash
# `npm start`: installs what is missing and builds the native CLI. (The browser
# demo arrives with the WebAssembly package; until then this prints how to use
# the CLI.)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset native >/dev/null
cmake --build --preset native --target modelkeep_cli
cli=build/native/modelkeep
echo
echo "Built $cli. Try:"
echo "  $cli init 'fc1=Linear(3,5)' tutorial.mkp"
echo "  $cli inspect tutorial.mkp"
echo "  $cli predict tutorial.mkp --input '[[1,2,3]]'"
echo "  $cli --help"
