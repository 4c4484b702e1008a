#!/usr/bin/env node
// wasm-size.mjs — where a .wasm's bytes go: the size of each section, the code by origin
// (modelkeep, the C ABI bindings, xtensor, libc++, Embind, libc, other) and the largest functions, named from the
// symbol map that `emcc --emit-symbol-map` writes (index:name per line). Run after every wasm
// build (wasm/CMakeLists.txt) so that a regression shows where it is. Reads the binary itself:
// no tool beyond Node (c++filt, when installed, demangles the names).
// Usage: node scripts/wasm-size.mjs file.wasm [file.symbols] [--top N]
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 15;
const [wasmPath, symbolsPath] = args;
if (!wasmPath) {
  console.error('usage: node scripts/wasm-size.mjs file.wasm [file.symbols] [--top N]');
  process.exit(2);
}
const bytes = readFileSync(wasmPath);
let at = 8; // magic + version

function leb() {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return result;
  }
}
const skipName = () => {
  const n = leb();
  const s = bytes.toString('utf8', at, at + n);
  at += n;
  return s;
};
const skipLimits = () => {
  const flags = bytes[at++];
  leb();
  if (flags & 1) leb();
};

const NAMES = [
  'custom',
  'type',
  'import',
  'function',
  'table',
  'memory',
  'global',
  'export',
  'start',
  'element',
  'code',
  'data',
  'datacount',
];
const sections = [];
let importedFunctions = 0;
const bodies = []; // [index, size]
while (at < bytes.length) {
  const id = bytes[at++];
  const size = leb();
  const start = at;
  let name = NAMES[id] ?? `#${id}`;
  if (id === 0) name = `custom ${skipName()}`;
  if (id === 2) {
    for (let n = leb(); n > 0; n--) {
      skipName();
      skipName();
      const kind = bytes[at++];
      if (kind === 0) {
        leb();
        importedFunctions++;
      } else if (kind === 1) {
        at++;
        skipLimits();
      } else if (kind === 2) skipLimits();
      else at += 2;
    }
  }
  if (id === 10) {
    const n = leb();
    for (let i = 0; i < n; i++) {
      const bodyAt = at;
      const len = leb();
      at += len;
      bodies.push([importedFunctions + i, at - bodyAt]);
    }
  }
  sections.push({ name, size });
  at = start + size;
}

const names = new Map();
if (symbolsPath && existsSync(symbolsPath)) {
  const lines = readFileSync(symbolsPath, 'utf8').split('\n').filter(Boolean);
  // The map escapes characters a wasm name may not hold as \\XX (hex): '\\28' is '('.
  let plain = lines.map((l) =>
    l.slice(l.indexOf(':') + 1).replace(/\\([0-9a-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))),
  );
  const filt = spawnSync('c++filt', [], { input: plain.join('\n'), encoding: 'utf8', maxBuffer: 1 << 26 });
  if (filt.status === 0) plain = filt.stdout.split('\n');
  lines.forEach((l, i) => names.set(Number(l.slice(0, l.indexOf(':'))), plain[i]));
}

const kib = (n) => `${(n / 1024).toFixed(1).padStart(6)} KiB`;
console.log(`size breakdown of ${wasmPath}: ${kib(bytes.length)}`);
for (const s of sections) console.log(`  section ${s.name.padEnd(24)} ${kib(s.size)}`);
if (names.size) {
  // By the function's own qualified name (before its parameter list, which names the types of
  // its arguments: a modelkeep function taking a Tensor is not xtensor's).
  const origin = (full = '') => {
    const n = full.replace(/\(.*$/s, '') || full;
    if (/emscripten::|embind|_embind_|EmscriptenBindingInitializer/.test(n)) return 'Embind';
    if (/^mk_|^\(anonymous namespace\)::(Json|Args|Js|ModelHandle)|^ModelHandle/.test(n)) return 'bindings';
    if (/\bxt::|\bxtl::/.test(n)) return 'xtensor';
    if (/modelkeep::|ModelHandle|^\(anonymous namespace\)::|JsSource|JsSink/.test(n)) return 'modelkeep';
    if (/\bstd::|__cxxabiv1|^operator (new|delete)|__cxa_/.test(n)) return 'libc++';
    if (/^[a-z_][a-z0-9_]*$/.test(n)) return 'libc / runtime';
    return 'other';
  };
  const byOrigin = new Map();
  for (const [i, size] of bodies) {
    const o = origin(names.get(i));
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + size);
  }
  console.log('  code by origin:');
  for (const [o, size] of [...byOrigin].sort((a, b) => b[1] - a[1])) console.log(`    ${o.padEnd(26)} ${kib(size)}`);
}
console.log(`  the ${top} largest of ${bodies.length} functions:`);
for (const [i, size] of [...bodies].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  const name = (names.get(i) ?? `function ${i}`)
    .replaceAll('std::__2::', 'std::')
    .replaceAll('std::basic_string<char, std::char_traits<char>, std::allocator<char> >', 'std::string');
  console.log(`    ${String(size).padStart(7)} B  ${name.length > 110 ? `${name.slice(0, 107)}...` : name}`);
}
