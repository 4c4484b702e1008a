#!/usr/bin/env bash
# Removes each build/<preset>/ folder that was configured for another source folder. CMake
# records where the sources were (CMakeCache.txt, CMAKE_HOME_DIRECTORY) and refuses to configure
# the build folder from anywhere else — so a copied checkout (cp -r, a moved folder) that
# carries the original's build/ would fail `npm start` / `npm test`. Such a folder holds nothing
# that the next configure does not make again; each one removed is named on stderr.
# Run by setup.sh, start.sh and build-wasm.sh before they configure. Usage: [root] (default: the
# repository this script is in).
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd -P)
for cache in "$root"/build/*/CMakeCache.txt; do
  [ -f "$cache" ] || continue
  recorded=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache" | head -n 1)
  [ -n "$recorded" ] || continue # not a cache CMake finished writing: leave it to CMake
  # The recorded folder as its real path (symlinks resolved); empty when it no longer exists.
  real=$(cd "$recorded" 2>/dev/null && pwd -P) || real=
  if [ "$real" != "$root" ]; then
    dir=$(dirname "$cache")
    echo "modelkeep: ${dir#"$root"/} was configured for the sources in $recorded, not $root" \
      "(a copied checkout?): removing it, the next configure starts afresh" >&2
    rm -rf -- "$dir"
  fi
done
