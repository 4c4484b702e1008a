// scripts.test.mjs — the build scripts' guard against a copied checkout: a build/<preset>/ folder
// whose CMakeCache.txt names other sources is removed (and said so), one configured here is kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const script = join(repo, 'scripts/clean-stale-builds.sh');

/** A build folder as CMake leaves it: a CMakeCache.txt recording `source`, and some output. */
function fakeBuild(root, preset, source) {
  const dir = join(root, 'build', preset);
  mkdirSync(join(dir, 'CMakeFiles'), { recursive: true });
  const cache = source === null ? '' : `CMAKE_HOME_DIRECTORY:INTERNAL=${source}\n`;
  writeFileSync(join(dir, 'CMakeCache.txt'), `# This is the CMakeCache file.\nCMAKE_BUILD_TYPE:STRING=\n${cache}`);
  writeFileSync(join(dir, 'CMakeFiles', 'out.o'), 'x');
  return dir;
}

test('a build folder configured for other sources is removed, with a note on stderr; ours are kept', () => {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'modelkeep-copy-')));
  const original = realpathSync(mkdtempSync(join(tmpdir(), 'modelkeep-original-')));
  try {
    const stale = fakeBuild(root, 'native', original); // cp -r of a checkout that still exists
    const gone = fakeBuild(root, 'wasm', '/no/such/checkout'); // ... or was moved away
    const ours = fakeBuild(root, 'asan', root);
    const unfinished = fakeBuild(root, 'fuzz', null); // no source recorded: CMake's business
    const r = spawnSync('bash', [script, root], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(stale), false, 'build/native (another checkout) removed');
    assert.equal(existsSync(gone), false, 'build/wasm (sources gone) removed');
    assert.equal(existsSync(join(ours, 'CMakeFiles', 'out.o')), true, 'build/asan (configured here) kept');
    assert.equal(existsSync(unfinished), true);
    assert.match(r.stderr, new RegExp(`build/native was configured for the sources in ${original}, not ${root}`));
    assert.match(r.stderr, /build\/wasm was configured for the sources in \/no\/such\/checkout/);
    assert.doesNotMatch(r.stderr, /asan|fuzz/);
    // Run again: nothing left to remove, nothing said.
    const again = spawnSync('bash', [script, root], { encoding: 'utf8' });
    assert.equal(again.status, 0);
    assert.equal(again.stderr, '');
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(original, { recursive: true, force: true });
  }
});

test('a checkout without build/ is fine', () => {
  const root = mkdtempSync(join(tmpdir(), 'modelkeep-fresh-'));
  try {
    const r = spawnSync('bash', [script, root], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('setup.sh, start.sh and build-wasm.sh run the check before CMake configures', () => {
  for (const name of ['setup.sh', 'start.sh', 'build-wasm.sh']) {
    const text = readFileSync(join(repo, 'scripts', name), 'utf8');
    const at = text.indexOf('bash scripts/clean-stale-builds.sh');
    assert.ok(at >= 0, `${name} runs clean-stale-builds.sh`);
    const configure = text.search(/cmake --preset/);
    assert.ok(configure < 0 || at < configure, `${name}: the check comes before cmake --preset`);
  }
});
