// The entries and the module registry (web/src/index.js for browsers, web/src/node.js for Node,
// web/src/runtime.js): nothing loads the WebAssembly module at import time (no top-level await);
// the synchronous API throws not_ready until ready() resolves; ready() is memoised and a failed
// load is tried again; async functions load it themselves; no node: module is reachable from the
// browser entry; and a file written in Node replaces the old one only once it reads back as
// written. Each scenario that needs a fresh module registry runs in its own Node process.
// Run: node --test tests/js/
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ready, nn, save, load, ModelError } from '../../web/src/node.js';
import { fs, writeFile } from '../../web/src/files.js';
import { runtime } from '../../web/src/runtime.js';

const nodeEntry = new URL('../../web/src/node.js', import.meta.url).href;
const runtimeEntry = new URL('../../web/src/runtime.js', import.meta.url).href;
const wasmPath = fileURLToPath(new URL('../../web/dist/modelkeep_wasm.wasm', import.meta.url));

/** Runs `body` (an ES module's code, with the Node entry's exports as `mk`) in a fresh Node; its JSON output. */
function fresh(body) {
  const code = `const mk = await import(${JSON.stringify(nodeEntry)});\n${body}`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.trim().split('\n').pop());
}

const attempt = `
  const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return [e.name, e.code, e.message]; } };
  const attemptAsync = async (p) => { try { await p; return 'ok'; } catch (e) { return [e.name, e.code, e.message]; } };`;

test('before ready(): the synchronous API throws not_ready, naming await ready(); after it, it works', () => {
  const r = fresh(`${attempt}
    const before = {
      sequential: attempt(() => mk.nn.sequential(mk.nn.linear(3, 5))),
      fromSpec: attempt(() => mk.Model.fromSpec('Linear(3,5)')),
      fromBytes: attempt(() => mk.Model.fromBytes(new Uint8Array(8))),
      fileInfo: attempt(() => mk.fileInfo(new Uint8Array(8))),
      builder: attempt(() => mk.nn.linear(3, 5)), // a description only: no wasm needed
    };
    const p1 = mk.ready();
    const p2 = mk.ready();
    const value = await p1;
    await p2;
    const y = mk.nn.sequential(mk.nn.linear(3, 5), { seed: 42 }).forward([[1, 2, 3]]);
    console.log(JSON.stringify({ before, value: value === undefined, shape: y.shape }));`);
  for (const what of ['sequential', 'fromSpec', 'fromBytes', 'fileInfo']) {
    const [name, code, message] = r.before[what];
    assert.equal(name, 'ModelError', what);
    assert.equal(code, 'not_ready', what);
    assert.match(message, /await ready\(\) first/, what);
  }
  assert.equal(r.before.builder, 'ok');
  assert.equal(r.value, true);
  assert.deepEqual(r.shape, [1, 5]);
});

test('load() alone fetches only the reader: forward works, the rest says await ready(), then works', async () => {
  await ready(); // in this process, to write the file
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-entry-'));
  try {
    const path = join(dir, 'm.mkp');
    const model = nn.sequential(nn.linear(3, 5), { seed: 42 });
    const bytes = model.toBytes();
    writeFileSync(path, bytes);
    const expected = Array.from(model.forward([[1, 2, 3]]).data);
    model.dispose();
    const r = fresh(`${attempt}
      const { loadedModules } = await import(${JSON.stringify(runtimeEntry)});
      const m = await mk.load(${JSON.stringify(path)});
      const y = Array.from(m.forward([[1, 2, 3]]).data);
      const modules = loadedModules();
      const arch = m.architecture;
      const before = {
        sequential: attempt(() => mk.nn.sequential(mk.nn.linear(3, 5))),
        toBytes: attempt(() => m.toBytes()),
        stateDict: attempt(() => m.stateDict()),
        setWeightDtype: attempt(() => m.setWeightDtype('f16')),
      };
      await mk.ready();
      const again = mk.nn.sequential(mk.nn.linear(3, 5), { seed: 42 });
      const z = Array.from(again.forward([[1, 2, 3]]).data);
      const bytes = Array.from(m.toBytes());
      console.log(JSON.stringify({ y, z, modules, after: loadedModules(), arch, before, bytes,
        y2: Array.from(m.forward([[1, 2, 3]]).data) }));`);
    assert.deepEqual(r.modules, ['reader']);
    assert.deepEqual(r.y, expected);
    assert.equal(r.arch, '0=Linear(3,5)');
    for (const [what, [name, code, message]] of Object.entries(r.before)) {
      assert.equal(name, 'ModelError', what);
      assert.equal(code, 'not_ready', what);
      assert.match(message, /await ready\(\) first/, what);
    }
    assert.deepEqual(r.after, ['reader', 'core']);
    assert.deepEqual(r.z, expected);
    // The model moved to the core as it was held: the same file, the same output.
    assert.deepEqual(r.bytes, Array.from(bytes));
    assert.deepEqual(r.y2, expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a load() that fails loads the core before it rejects: the load-or-build fallback works', () => {
  const r = fresh(`${attempt}
    const { loadedModules } = await import(${JSON.stringify(runtimeEntry)});
    const missing = await attemptAsync(mk.load('/nonexistent/m.mkp'));
    const build = attempt(() => mk.nn.sequential(mk.nn.linear(3, 5)));
    console.log(JSON.stringify({ missing, build, modules: loadedModules() }));`);
  assert.equal(r.missing[1], 'not_found');
  assert.equal(r.build, 'ok');
  assert.deepEqual(r.modules, ['core']);
});

test('a failed load is forgotten: ready() tries again; ready({ wasm }) takes a path, a URL or the bytes', () => {
  const r = fresh(`${attempt}
    const missing = await attemptAsync(mk.ready({ wasm: '/nonexistent/modelkeep.wasm' }));
    const garbage = await attemptAsync(mk.ready({ wasm: new Uint8Array([0, 97, 115, 109, 9, 9, 9, 9]) }));
    const wrongType = await attemptAsync(mk.ready({ wasm: 42 }));
    const stillNot = attempt(() => mk.nn.sequential(mk.nn.linear(3, 5)));
    await mk.ready();
    const works = attempt(() => mk.nn.sequential(mk.nn.linear(3, 5)));
    console.log(JSON.stringify({ missing, garbage, wrongType, stillNot, works }));`);
  assert.equal(r.missing[1], 'network_error');
  assert.match(r.missing[2], /\/nonexistent\/modelkeep\.wasm/);
  assert.match(r.missing[2], /ready\(\{ wasm: URL \}\)/);
  assert.equal(r.garbage[1], 'network_error');
  assert.equal(r.wrongType[1], 'invalid_argument');
  assert.equal(r.stillNot[1], 'not_ready');
  assert.equal(r.works, 'ok');

  for (const wasm of [
    JSON.stringify(wasmPath),
    `new URL(${JSON.stringify(new URL('../../web/dist/modelkeep_wasm.wasm', import.meta.url).href)})`,
    `(await import('node:fs')).readFileSync(${JSON.stringify(wasmPath)})`,
    `new Response((await import('node:fs')).readFileSync(${JSON.stringify(wasmPath)}))`,
  ]) {
    const given = fresh(`
      await mk.ready({ wasm: ${wasm} });
      console.log(JSON.stringify(mk.nn.sequential(mk.nn.linear(3, 5), { seed: 1 }).forward([[1, 2, 3]]).shape));`);
    assert.deepEqual(given, [1, 5], wasm);
  }
});

/** The relative imports (static and dynamic) and the bare ones of a source file. */
function importsOf(source) {
  const specifiers = [
    ...source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]);
  return [...new Set(specifiers)];
}

test('no node: module is reachable from the browser entry (web/src/index.js); node.js reaches them', () => {
  const reach = (entry) => {
    const seen = new Set();
    const bare = new Set();
    const visit = (url) => {
      if (seen.has(url.href)) return;
      seen.add(url.href);
      for (const spec of importsOf(readFileSync(url, 'utf8'))) {
        if (spec.startsWith('.')) visit(new URL(spec, url));
        else bare.add(spec);
      }
    };
    visit(new URL(`../../web/src/${entry}`, import.meta.url));
    return { files: [...seen].map((href) => href.split('/').pop()), bare: [...bare] };
  };
  const browser = reach('index.js');
  for (const f of ['index.js', 'api.js', 'runtime.js', 'model.js', 'io.js', 'store.js', 'modelkeep_wasm.mjs'])
    assert.ok(browser.files.includes(f), `${f} not reached from index.js: ${browser.files.join()}`);
  assert.ok(!browser.files.includes('files.js') && !browser.files.includes('node.js'), browser.files.join());
  assert.deepEqual(browser.bare, [], 'the browser entry imports nothing but its own files');
  // Every web/src file but the Node entry and files.js is free of node: (and of process).
  for (const f of readdirSync(new URL('../../web/src/', import.meta.url))) {
    if (f === 'node.js' || f === 'files.js') continue;
    const source = readFileSync(new URL(`../../web/src/${f}`, import.meta.url), 'utf8');
    assert.doesNotMatch(source, /['"]node:/, f);
  }
  const node = reach('node.js');
  assert.ok(node.files.includes('files.js'));
  assert.ok(node.bare.includes('node:fs/promises'), node.bare.join());
  // package.json: Node gets node.js, everything else index.js, and bundlers keep both entries' registration.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.deepEqual(Object.keys(pkg.exports['.']), ['types', 'node', 'default']);
  assert.equal(pkg.exports['.'].node, './web/src/node.js');
  assert.equal(pkg.exports['.'].default, './web/src/index.js');
  assert.deepEqual(pkg.sideEffects, ['./web/src/index.js', './web/src/node.js']);
});

test('the runtime loads nothing at import time: no top-level await in web/src', () => {
  for (const f of readdirSync(new URL('../../web/src/', import.meta.url))) {
    const source = readFileSync(new URL(`../../web/src/${f}`, import.meta.url), 'utf8');
    // A top-level statement starting with await, or an await in a top-level declaration.
    assert.doesNotMatch(source, /^(?:await\b|(?:export\s+)?(?:const|let|var)\s[^\n]*=\s*await\b)/m, f);
  }
});

// ---- files written in Node: read back before they replace anything --------------------------

/** Runs f with fs[name] replaced by `fake`, restoring it after. */
async function withFake(name, fake, f) {
  const original = fs[name];
  fs[name] = fake;
  try {
    return await f();
  } finally {
    fs[name] = original;
  }
}

async function scenario(f) {
  await ready();
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-write-'));
  const path = join(dir, 'model.mkp');
  const old = nn.sequential(nn.linear(3, 5), { seed: 1 });
  const next = nn.sequential(nn.linear(3, 5), { seed: 2 });
  const oldBytes = old.toBytes();
  writeFileSync(path, oldBytes);
  try {
    await f({ dir, path, next, oldBytes });
    // Whatever failed, the old file is intact and no temporary file is left beside it.
    assert.deepEqual(new Uint8Array(readFileSync(path)), oldBytes);
    assert.deepEqual(readdirSync(dir), ['model.mkp']);
    const back = await load(path);
    assert.deepEqual(back.forward([[1, 2, 3]]).data, old.forward([[1, 2, 3]]).data);
    back.dispose();
  } finally {
    old.dispose();
    next.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

const notWritten = /'.*model\.mkp' was not written \(an existing file is left as it was\)/;

test('save() to a path: a corrupted write, a failed read-back, a failed rename leave the old file', () =>
  scenario(async ({ path, next }) => {
    const realWrite = fs.write;
    const realRead = fs.read;
    const flipped = (tmp, bytes, options) => {
      const copy = Uint8Array.from(bytes);
      copy[copy.length >> 1] ^= 0x40;
      return realWrite(tmp, copy, options);
    };
    await withFake('write', flipped, () =>
      assert.rejects(save(next, path), (e) => {
        assert.ok(e instanceof ModelError);
        assert.equal(e.code, 'io_error');
        assert.match(e.message, /does not read back as written/);
        assert.match(e.message, notWritten);
        return true;
      }),
    );
    const short = async (p) => (await realRead(p)).subarray(0, 10);
    await withFake('read', short, () =>
      assert.rejects(save(next, path), (e) => e.code === 'io_error' && /does not read back/.test(e.message)),
    );
    const failing = async () => {
      throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    };
    await withFake('read', failing, () =>
      assert.rejects(save(next, path), (e) => e.code === 'io_error' && notWritten.test(e.message)),
    );
    const noRename = async () => {
      throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
    };
    await withFake('rename', noRename, () =>
      assert.rejects(save(next, path), (e) => e.code === 'io_error' && /EXDEV/.test(e.message)),
    );
    const full = async () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    await withFake('write', full, () =>
      assert.rejects(save(next, path), (e) => e.code === 'io_error' && /ENOSPC/.test(e.message)),
    );
  }));

test('writeFile: bytes the reader refuses are not renamed over the old file; the reader’s code is kept', () =>
  scenario(async ({ path }) => {
    const refuse = () => {
      throw new ModelError('checksum_mismatch', 'data CRC-32 differs');
    };
    await assert.rejects(writeFile(path, new Uint8Array([1, 2, 3]), refuse), (e) => {
      assert.equal(e.code, 'checksum_mismatch');
      assert.match(e.message, notWritten);
      return true;
    });
  }));

test('save() of .mkp, .pt and .safetensors reads each back with its reader; a new file is written whole', async () => {
  await ready({ importer: true });
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-write-'));
  const model = nn.sequential(nn.linear(3, 5), { seed: 3 });
  try {
    for (const name of ['m.mkp', 'm.pt', 'm.safetensors']) {
      // A .mkp is read back by the core module, an export by the importer that wrote it.
      const module = runtime(name.endsWith('.mkp') ? 'core' : 'importer');
      const realInfo = module.fileInfo;
      const checked = [];
      const parsed = [];
      const realRead = fs.read;
      module.fileInfo = (bytes, checkData) => {
        const info = realInfo.call(module, bytes, checkData);
        parsed.push({ format: info.format, checkData, ok: info.ok !== false });
        return info;
      };
      try {
        await withFake(
          'read',
          async (p) => {
            checked.push(p);
            return realRead(p);
          },
          () => save(model, join(dir, name)),
        );
      } finally {
        module.fileInfo = realInfo;
      }
      assert.equal(checked.length, 1, name);
      const format = { 'm.mkp': 'modelkeep', 'm.pt': 'torch-zip', 'm.safetensors': 'safetensors' }[name];
      assert.deepEqual(parsed, [{ format, checkData: true, ok: true }], name);
      assert.match(checked[0], new RegExp(`${name.replace('.', '\\.')}\\.tmp-`), 'the temporary file is read back');
      assert.ok(existsSync(join(dir, name)));
    }
    assert.deepEqual(readdirSync(dir).sort(), ['m.mkp', 'm.pt', 'm.safetensors']);
    // And no file at all when the directory does not exist.
    await assert.rejects(save(model, join(dir, 'none', 'm.mkp')), (e) => e.code === 'io_error');
  } finally {
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
