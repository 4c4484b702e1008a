// PyTorch and safetensors files through the package (the wasm build): every
// fixture of tests/torch (written by real torch, tests/torch/make_torch_fixtures.py)
// loads as its case says or is refused with its code; exports from the page go
// back into real PyTorch (tests/torch/check_export.py: torch.load with
// weights_only=True, a hand parse of the safetensors, the same outputs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ready, nn, Model, ModelError, save, load, fileInfo } from '../../web/src/node.js';
import { runtime } from '../../web/src/runtime.js';

await ready({ importer: true }); // both WebAssembly modules, before the synchronous API (.pt files)

const DIR = new URL('../torch/', import.meta.url).pathname;
const MARKER = '/tmp/modelkeep_pwned_marker';

// The records of one case file that these tests need (format: the generator's docstring).
function readCase(name) {
  const c = { name, globals: [], tensors: [] };
  const lines = readFileSync(join(DIR, `${name}.txt`), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line || line.startsWith('#')) continue;
    const [key, ...rest] = line.split(' ');
    if (['file', 'format', 'load', 'error', 'spec'].includes(key)) c[key] = rest.join(' ');
    if (key === 'global') c.globals.push(rest.join(' '));
    if (key === 'tensor' || key === 'input' || key === 'output' || key === 'naive_output') {
      const [tname, dtype, rank, ...dims] = key === 'tensor' ? rest : [key, null, ...rest];
      const shape = dims.slice(0, Number(rank)).map(Number);
      const n = shape.reduce((a, b) => a * b, 1);
      const values = [];
      while (values.length < n) values.push(...lines[++i].trim().split(/\s+/).map(hexFloat));
      const t = { name: tname, dtype, shape, data: Float32Array.from(values) };
      if (key === 'tensor') c.tensors.push(t);
      else c[key] = t;
    }
  }
  return c;
}

// C99 hex float ("-0x1.8p-3") → number.
function hexFloat(s) {
  const m = /^(-?)0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)$/i.exec(s);
  if (!m) {
    if (/^-?(inf|nan)/i.test(s))
      return s.startsWith('-') ? -Infinity : s.toLowerCase().includes('nan') ? NaN : Infinity;
    throw new Error(`not a hex float: ${s}`);
  }
  const frac = m[3] ?? '';
  const mant = parseInt(m[2] + frac, 16) / 16 ** frac.length;
  return (m[1] ? -1 : 1) * mant * 2 ** Number(m[4]);
}

const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.txt'))
  .map((f) => readCase(f.slice(0, -4)));

function bytesOf(c) {
  return readFileSync(join(DIR, 'files', c.file));
}

function close(got, want, tol, what) {
  assert.deepEqual(got.shape, want.shape, what);
  let scale = 1;
  for (const v of want.data) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.data.length; i++) {
    assert.ok(Math.abs(got.data[i] - want.data[i]) <= tol * scale, `${what}[${i}]: ${got.data[i]} vs ${want.data[i]}`);
  }
}

test('the fixtures are there and nothing has run yet', () => {
  assert.ok(cases.length >= 40, `only ${cases.length} cases: run /usr/bin/python3 tests/torch/make_torch_fixtures.py`);
  assert.ok(!existsSync(MARKER), `${MARKER} exists`);
});

test('every hostile or broken file is refused with its code, and nothing runs', async () => {
  const refused = cases.filter((c) => c.load === 'refuse');
  assert.ok(refused.length >= 25);
  for (const c of refused) {
    for (const options of [{}, { assumeSequential: true }]) {
      await assert.rejects(load(bytesOf(c), options), (e) => {
        assert.ok(e instanceof ModelError, `${c.name}: ${e}`);
        assert.equal(e.code, c.error, `${c.name}: ${e.message}`);
        return true;
      });
    }
  }
  assert.ok(!existsSync(MARKER), `${MARKER} appeared`);
});

test("valid files give torch's tensors, say what they hold, and run as their case says", async () => {
  for (const c of cases.filter((x) => x.load !== 'refuse')) {
    const bytes = bytesOf(c);
    const info = fileInfo(bytes, { checkData: true });
    assert.equal(info.format, c.format.replace('_', '-'), c.name);
    assert.deepEqual(
      info.tensors.map((t) => t.name),
      c.tensors.map((t) => t.name),
      c.name,
    );
    if (c.format !== 'safetensors') assert.deepEqual(info.globals, c.globals, c.name);

    // the state dict, bit for bit as float32
    const entries = readRaw(bytes);
    assert.deepEqual(
      entries.map((e) => e.name),
      c.tensors.map((t) => t.name),
      c.name,
    );
    entries.forEach((e, i) => assert.deepEqual(e.data, c.tensors[i].data, `${c.name} ${e.name}`));

    if (c.load === 'auto') {
      const m = await load(bytes);
      assert.equal(m.source.architectureFrom, 'module tree');
      assert.equal(m.architecture, c.spec);
      close(m.forward(c.input.data, c.input.shape), c.output, 1e-6, c.name);
      m.dispose();
      continue;
    }
    await assert.rejects(load(bytes), (e) => e.code === 'needs_architecture', c.name);
    if (c.load === 'assume_sequential' || c.load === 'needs_arch') {
      const m = await load(bytes, { assumeSequential: true });
      assert.equal(m.source.architectureFrom, 'assume_sequential');
      close(m.forward(c.input.data, c.input.shape), c.load === 'needs_arch' ? c.naive_output : c.output, 1e-6, c.name);
      m.dispose();
    }
    if (c.spec && c.load !== 'assume_sequential') {
      const m = await load(bytes, { architecture: c.spec });
      assert.equal(m.source.format, info.format);
      if (c.output) close(m.forward(c.input.data, c.input.shape), c.output, 1e-6, c.name);
      m.dispose();
    }
  }
});

// The tensors of any readable file, as the wasm side reads them (loadStateDict's source).
function readRaw(bytes) {
  const r = runtime('importer').readTensors(new Uint8Array(bytes));
  if (!r.ok) throw new ModelError(r.code, r.message);
  return r.stateDict;
}

test('a model built in the page goes back to PyTorch as .pt and .safetensors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-export-'));
  const spec = 'a=Linear(6,8),b=BatchNorm1d(8),c=GELU(tanh),d.e=LayerNorm(8),f=Linear(8,3,bias=false),g=Softmax';
  const model = Model.fromSpec(spec, { seed: 9 });
  const input = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i) * 2);
  for (const dtype of ['f32', 'f16', 'bf16']) {
    const files = ['pt', 'safetensors'].map((format) => {
      const path = join(dir, `m_${dtype}.${format}`);
      writeFileSync(path, model.toBytes({ format, dtype }));
      return path;
    });
    // What the exported weights compute, by modelkeep (re-imported from the export).
    const back = Model.fromBytes(readFileSync(files[0]), { architecture: spec });
    const y = back.forward(input, [2, 6]);
    const again = Model.fromBytes(readFileSync(files[1]), { architecture: spec });
    assert.deepEqual(again.forward(input, [2, 6]).data, y.data, 'the .pt and .safetensors exports agree');
    back.dispose();
    again.dispose();
    const casePath = join(dir, `case_${dtype}.json`);
    writeFileSync(
      casePath,
      JSON.stringify({
        spec,
        files,
        dtype,
        input: { shape: [2, 6], values: [...input] },
        output: { shape: y.shape, values: [...y.data] },
      }),
    );
    const p = spawnSync('/usr/bin/python3', [join(DIR, 'check_export.py'), casePath], { encoding: 'utf8' });
    assert.equal(p.status, 0, `check_export.py ${dtype}:\n${p.stdout}\n${p.stderr}`);
  }
  model.dispose();
});

test('save() picks the export format from the name; fileInfo says what a file is', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-save-'));
  const model = nn.sequential(nn.linear(3, 5).named('fc1'), { seed: 2 });
  await save(model, join(dir, 'tiny.safetensors'));
  await save(model, join(dir, 'tiny.pt'), { dtype: 'bf16' });
  await save(model, join(dir, 'tiny.mkp'));
  assert.equal(fileInfo(readFileSync(join(dir, 'tiny.safetensors'))).format, 'safetensors');
  const pt = fileInfo(readFileSync(join(dir, 'tiny.pt')));
  assert.equal(pt.format, 'torch-zip');
  assert.deepEqual(
    pt.tensors.map((t) => [t.name, t.dtype]),
    [
      ['fc1.weight', 'bfloat16'],
      ['fc1.bias', 'float32'],
    ],
  );
  assert.equal(fileInfo(readFileSync(join(dir, 'tiny.mkp'))).format, 'modelkeep');
  await assert.rejects(
    save(readFileSync(join(dir, 'tiny.pt')), join(dir, 'copy.mkp')),
    (e) => e.code === 'invalid_argument' && /load\(\) it/.test(e.message),
  );
  assert.throws(
    () => model.toBytes({ format: 'pt', dtype: 'int8' }),
    (e) => e.code === 'invalid_argument',
  );
  assert.throws(
    () => model.toBytes({ format: 'onnx' }),
    (e) => e.code === 'invalid_argument',
  );
  // a .pt state dict loads into a model of the same architecture
  const other = nn.sequential(nn.linear(3, 5).named('fc1'), { seed: 3 });
  other.loadStateDict(readFileSync(join(dir, 'tiny.safetensors')));
  assert.deepEqual(other.forward([[1, 2, 3]]).data, model.forward([[1, 2, 3]]).data);
  await assert.rejects(
    load(join(dir, 'tiny.pt'), { architecture: 'fc1=Linear(3,5)', assumeSequential: true }),
    (e) => e.code === 'invalid_argument',
  );
  model.dispose();
  other.dispose();
});

test('a prefix maps a DataParallel state dict onto an architecture, and the error names it', async () => {
  const model = nn.sequential({ fc1: nn.linear(3, 4) }, nn.relu(), { fc2: nn.linear(4, 2) }, { seed: 3 });
  const st = model.toBytes({ format: 'safetensors' });
  // The same tensors under "module." (as DataParallel saves them): rewrite the header's names.
  const n = Number(new DataView(st.buffer, st.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + n)));
  const renamed = {};
  for (const [k, v] of Object.entries(header)) renamed[k === '__metadata__' ? k : `module.${k}`] = v;
  let text = JSON.stringify(renamed);
  while ((8 + text.length) % 8) text += ' ';
  const head = new TextEncoder().encode(text);
  const file = new Uint8Array(8 + head.length + st.length - 8 - n);
  new DataView(file.buffer).setBigUint64(0, BigInt(head.length), true);
  file.set(head, 8);
  file.set(st.subarray(8 + n), 8 + head.length);
  const architecture = model.architecture;
  assert.throws(
    () => Model.fromBytes(file, { architecture }),
    (e) => e.code === 'missing_key' && /prefix 'module\.'/.test(e.message),
  );
  const back = Model.fromBytes(file, { architecture, prefix: 'module.' });
  assert.deepEqual(back.forward([[1, 2, 3]]).data, model.forward([[1, 2, 3]]).data);
  assert.throws(
    () => Model.fromBytes(file, { prefix: 'module.' }),
    (e) => e.code === 'invalid_argument',
  );
  back.dispose();
  model.dispose();
});

test('a checkpoint entry chosen by name, listed by fileInfo', () => {
  // checkpoint.pt's entries that hold a model (the fixture: a dict with a model state dict).
  const bytes = readFileSync(join(DIR, 'files', 'checkpoint.pt'));
  const info = fileInfo(bytes);
  assert.ok(info.entries.length >= 1, JSON.stringify(info.entries));
  const chosen = info.entries[0];
  const c = readCase('checkpoint');
  const m = Model.fromBytes(bytes, { architecture: c.spec, entry: chosen });
  assert.match(m.source.holds, new RegExp(`checkpoint\\['${chosen}'\\]`));
  assert.throws(
    () => Model.fromBytes(bytes, { architecture: c.spec, entry: 'ema' }),
    (e) => e.code === 'missing_key' && e.message.includes(chosen),
  );
  m.dispose();
});
