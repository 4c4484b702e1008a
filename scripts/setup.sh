#!/usr/bin/env bash
# Installs what modelkeep needs to build and test, and nothing else.
# Idempotent and quick when everything is present. On Debian as root it uses
# apt-get; anywhere else it prints the exact command to run and stops.
# Used by `npm start` and `npm test`; safe to run by hand.
set -euo pipefail

# Debian packages: the native build (C++17, CMake, xtensor), tests (GoogleTest),
# benchmarks (Google Benchmark), the fuzzers (clang with libFuzzer), the
# WebAssembly build (emscripten), the browser tests (chromium), and the PyTorch
# interop tests: real torch checks our exports (python3-torch) and zlib is the
# reference compressor the inflate tests decode (zlib1g-dev, tests only); the
# C++ formatting check (clang-format).
packages=(cmake make g++ libxtensor-dev xtl-dev googletest libgtest-dev libbenchmark-dev clang libclang-rt-14-dev
          emscripten chromium python3-torch zlib1g-dev clang-format)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
else
  echo "modelkeep setup: this is not a Debian-like system; install the equivalents of:" >&2
  echo "  ${packages[*]}" >&2
  echo "(CMake >= 3.20, a C++17 compiler, xtensor 0.24 + xtl, GoogleTest, Google Benchmark, clang with libFuzzer," >&2
  echo " Emscripten 3.1, Chromium; then npm ci)" >&2
  exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "modelkeep setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when they are missing or a first try fails.
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
      apt-get update -q
      apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
  else
    echo "modelkeep setup: missing Debian packages: ${missing[*]}" >&2
    echo "run:  sudo apt-get update && sudo $cmd" >&2
    exit 1
  fi
fi

# npm packages (devDependencies: test and benchmark tools, and the Closure Compiler
# that minifies the WebAssembly loader, wasm/CMakeLists.txt), as the lockfile
# pins them; skipped when node_modules is already up to date. `npm install`
# rather than `npm ci`: ci refuses a lockfile that lacks an optional,
# platform-only package the registry does not serve (vite's Windows helper).
cd "$(dirname "$0")/.."
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "modelkeep setup: npm install"
  npm install --no-audit --no-fund
fi

# A copied checkout carries the original's build/ folders, which CMake refuses to configure from
# here: remove those (said on stderr) so that the builds that follow start afresh.
bash scripts/clean-stale-builds.sh
