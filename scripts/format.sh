#!/usr/bin/env bash
# Formats the C++ (clang-format, .clang-format) and the JavaScript / TypeScript
# (prettier, .prettierrc.json, .prettierignore) of the repository. With --check
# (as `npm test` runs it) it changes nothing and fails, naming the files, when
# anything is not formatted; run `npm run format` to fix them.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=fix
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: scripts/format.sh [--check]"; exit 2 ;;
esac
mapfile -t cpp < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp')
if [ "$mode" = check ]; then
  status=0
  for f in "${cpp[@]}"; do
    if ! clang-format "$f" | cmp -s - "$f"; then
      echo "[warn] $f" >&2
      status=1
    fi
  done
  node_modules/.bin/prettier --check --log-level warn . || status=1
  if [ "$status" != 0 ]; then
    echo "format: the files above are not formatted; run: npm run format" >&2
    exit 1
  fi
  echo "format: C++ and JavaScript formatted"
else
  clang-format -i "${cpp[@]}"
  node_modules/.bin/prettier --write --log-level warn .
fi
