// The package in Node: building, predicting, state dicts, bytes in every dtype,
// errors as ModelError codes, disposal, and files shared with the native CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ready, nn, Model, ModelError, save, load, fileInfo } from '../../web/src/node.js';
import { fromChunks, encode } from '../../web/src/model.js';
import { runtime } from '../../web/src/runtime.js';

await ready({ importer: true }); // both WebAssembly modules, before the synchronous API (.pt files)

const CLI = new URL('../../build/native/modelkeep', import.meta.url).pathname;

function throwsCode(fn, code) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ModelError, `expected a ModelError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

async function rejectsCode(promise, code) {
  await assert.rejects(promise, (e) => e instanceof ModelError && e.code === code);
}

test('the tutorial: nn.sequential(nn.linear(3, 5)) predicts a (1, 5) output', () => {
  const model = nn.sequential(nn.linear(3, 5), { seed: 1 });
  const y = model.forward([[1, 2, 3]]);
  assert.deepEqual(y.shape, [1, 5]);
  assert.ok(y.data instanceof Float32Array);
  // y = x·Wᵀ + b, computed here from the state dict
  const { '0.weight': w, '0.bias': b } = model.stateDict();
  assert.deepEqual(w.shape, [5, 3]);
  for (let j = 0; j < 5; j++) {
    const expected = b.data[j] + w.data[3 * j] * 1 + w.data[3 * j + 1] * 2 + w.data[3 * j + 2] * 3;
    assert.ok(Math.abs(y.data[j] - expected) < 1e-6, `${y.data[j]} vs ${expected}`);
  }
  // also flat input with a shape
  assert.deepEqual(model.forward(new Float32Array([1, 2, 3]), [1, 3]).data, y.data);
  model.dispose();
});

test('seeds: the same seed gives the same weights, no seed gives fresh ones', () => {
  const a = nn.sequential(nn.linear(4, 4), { seed: 7 });
  const b = nn.sequential(nn.linear(4, 4), { seed: 7 });
  const c = nn.sequential(nn.linear(4, 4));
  const d = nn.sequential(nn.linear(4, 4));
  assert.deepEqual(a.stateDict()['0.weight'].data, b.stateDict()['0.weight'].data);
  assert.notDeepEqual(c.stateDict()['0.weight'].data, d.stateDict()['0.weight'].data);
  for (const m of [a, b, c, d]) m.dispose();
});

test('named children and every builder give PyTorch keys', () => {
  const m = nn.sequential(
    { fc1: nn.linear(3, 4), act: nn.gelu({ approximate: 'tanh' }), bn: nn.batchNorm1d(4) },
    nn.dropout(0.1),
    nn.layerNorm(4, { eps: 1e-6 }),
    nn.leakyRelu(0.2),
    nn.linear(4, 2, { bias: false }),
    nn.logSoftmax(),
    { seed: 3 },
  );
  assert.equal(
    m.architecture,
    'fc1=Linear(3,4),act=GELU(tanh),bn=BatchNorm1d(4),3=Dropout(0.1),4=LayerNorm(4,eps=1e-06),' +
      '5=LeakyReLU(0.2),6=Linear(4,2,bias=false),7=LogSoftmax',
  );
  assert.deepEqual(Object.keys(m.stateDict()), [
    'fc1.weight',
    'fc1.bias',
    'bn.weight',
    'bn.bias',
    'bn.running_mean',
    'bn.running_var',
    'bn.num_batches_tracked',
    '4.weight',
    '4.bias',
    '6.weight',
  ]);
  assert.equal(m.paramCount, 12 + 4 + 8 + 8 + 8);
  const y = m.forward([
    [1, 2, 3],
    [0, -1, 2],
  ]);
  assert.deepEqual(y.shape, [2, 2]);
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(Math.exp(y.data[2 * i]) + Math.exp(y.data[2 * i + 1]) - 1) < 1e-5);
  m.dispose();
});

test('errors come back as ModelError codes, and the module survives them', () => {
  throwsCode(() => Model.fromSpec('Conv2d(3,5)'), 'unknown_layer');
  throwsCode(() => Model.fromSpec('Linear(3'), 'invalid_spec');
  throwsCode(() => Model.fromSpec('Linear(1000000,1000000)'), 'size_overflow');
  throwsCode(() => nn.linear(3.5, 2), 'invalid_argument');
  const m = nn.sequential(nn.linear(3, 5), { seed: 1 });
  throwsCode(() => m.forward([[1, 2]]), 'shape_mismatch');
  throwsCode(
    () =>
      m.forward([
        [1, 2, 3],
        [1, 2],
      ]),
    'invalid_input',
  );
  throwsCode(() => m.forward(new Float32Array(3), [1, 4]), 'shape_mismatch');
  // Counts read as counts ("3 values", not "3.000000 values").
  assert.throws(() => m.forward(new Float32Array(3), [1, 4]), /input has 3 values but shape \(1, 4\) holds 4$/);
  throwsCode(() => m.forward([1, 2, 3], 'x'), 'invalid_input');
  throwsCode(() => m.toBytes({ dtype: 'f64' }), 'invalid_argument');
  throwsCode(() => Model.fromBytes(new Uint8Array([1, 2, 3])), 'unknown_format');
  assert.deepEqual(m.forward([[1, 2, 3]]).shape, [1, 5]); // still alive
  m.dispose();
});

test('every bad builder argument is invalid_argument, thrown by the builder, naming the argument', () => {
  const cases = [
    [() => nn.linear(3, -5), /outFeatures must be in \[1, 2\^28\], got -5/],
    [() => nn.linear(0, 5), /inFeatures must be in \[1, 2\^28\], got 0/],
    [() => nn.linear(3.5, 2), /inFeatures must be an integer/],
    [() => nn.linear(2 ** 29, 2), /inFeatures must be in/],
    [() => nn.linear('3', 2), /inFeatures must be an integer/],
    [() => nn.layerNorm(0), /normalizedShape/],
    [() => nn.layerNorm(4, { eps: -1 }), /eps must be > 0/],
    [() => nn.batchNorm1d(-1), /numFeatures/],
    [() => nn.batchNorm1d(4, { eps: 0 }), /eps must be > 0/],
    [() => nn.dropout(1.5), /p must be in \[0, 1\]/],
    [() => nn.dropout(NaN), /p must be a finite number/],
    [() => nn.leakyRelu(Infinity), /negativeSlope must be a finite number/],
    [() => nn.flatten(0, 9), /endDim must be in \[-8, 7\]/],
    [() => nn.flatten(-9), /startDim/],
    [() => nn.flatten(5000), /startDim/],
    [() => nn.softmax(0), /dim must be -1/],
    [() => nn.logSoftmax(1), /dim must be -1/],
    [() => nn.gelu({ approximate: 'fast' }), /approximate must be 'none' or 'tanh'/],
  ];
  for (const [build, message] of cases) {
    throwsCode(build, 'invalid_argument');
    assert.throws(build, message);
  }
  // The edges are allowed, and give the same layers as before.
  assert.equal(nn.flatten(-8, 7).spec, 'Flatten(-8,7)');
  assert.equal(nn.dropout(0).spec, 'Dropout(0)');
  assert.equal(nn.softmax().spec, 'Softmax');
  assert.equal(nn.gelu({ approximate: 'tanh' }).spec, 'GELU(tanh)');
  const m = nn.sequential(nn.linear(1, 1), nn.softmax(-1), nn.logSoftmax(), { seed: 1 });
  assert.equal(m.architecture, '0=Linear(1,1),1=Softmax,2=LogSoftmax');
  m.dispose();
});

test('loadStateDict: strict and loose, reports, shape mismatches, atomic', () => {
  const a = nn.sequential({ fc1: nn.linear(3, 5) }, { seed: 1 });
  const b = nn.sequential({ fc1: nn.linear(3, 5) }, { seed: 2 });
  assert.deepEqual(b.loadStateDict(a.stateDict()), { missingKeys: [], unexpectedKeys: [] });
  assert.deepEqual(b.forward([[1, 2, 3]]).data, a.forward([[1, 2, 3]]).data);

  const partial = { 'fc1.weight': a.stateDict()['fc1.weight'], extra: { shape: [1], data: [0] } };
  throwsCode(() => b.loadStateDict(partial), 'missing_key');
  assert.deepEqual(b.loadStateDict(partial, { strict: false }), {
    missingKeys: ['fc1.bias'],
    unexpectedKeys: ['extra'],
  });

  const before = b.stateDict();
  throwsCode(
    () => b.loadStateDict({ 'fc1.weight': { shape: [3, 5], data: new Float32Array(15) } }, { strict: false }),
    'shape_mismatch',
  );
  assert.deepEqual(b.stateDict(), before);

  // a .mkp state dict file works as the source too
  const c = nn.sequential({ fc1: nn.linear(3, 5) }, { seed: 9 });
  c.loadStateDict(a.toBytes({ stateDictOnly: true }));
  assert.deepEqual(c.stateDict(), a.stateDict());
  for (const m of [a, b, c]) m.dispose();
});

test('toBytes → fromBytes in every dtype, within the documented bounds', () => {
  const m = nn.sequential(nn.linear(16, 8), nn.relu(), nn.linear(8, 4), { seed: 5 });
  const ref = m.stateDict();
  const x = [[...Array(16).keys()].map((i) => i / 10)];
  for (const dtype of ['f32', 'f16', 'bf16', 'int8']) {
    const bytes = m.toBytes({ dtype, metadata: { note: 'v1' } });
    const info = fileInfo(bytes);
    assert.equal(info.dtype, dtype);
    assert.deepEqual(info.metadata, { note: 'v1' });
    const back = Model.fromBytes(bytes);
    const sd = back.stateDict();
    for (const [key, t] of Object.entries(ref)) {
      const cols = t.shape.length >= 2 ? t.shape[1] : t.data.length;
      for (let i = 0; i < t.data.length; i++) {
        const v = t.data[i];
        const rowMax = Math.max(
          ...t.data.slice(Math.floor(i / cols) * cols, Math.floor(i / cols) * cols + cols).map(Math.abs),
        );
        const bound =
          t.shape.length < 2 || dtype === 'f32'
            ? 0
            : dtype === 'f16'
              ? Math.abs(v) * 2 ** -11 + 2 ** -25
              : dtype === 'bf16'
                ? Math.abs(v) * 2 ** -8
                : (rowMax / 254) * 1.0001;
        assert.ok(Math.abs(sd[key].data[i] - v) <= bound, `${dtype} ${key}[${i}]`);
      }
    }
    if (dtype === 'f32') assert.deepEqual(back.forward(x).data, m.forward(x).data);
    back.dispose();
  }
  const f32 = m.toBytes().length;
  assert.ok(m.toBytes({ dtype: 'int8' }).length < f32 / 2);
  m.dispose();
});

test('corrupted, truncated and foreign bytes are refused with their codes', () => {
  const m = nn.sequential(nn.linear(3, 5), { seed: 1 });
  const bytes = m.toBytes();
  const flipped = bytes.slice();
  flipped[bytes.length - 3] ^= 0x10;
  throwsCode(() => Model.fromBytes(flipped), 'checksum_mismatch');
  throwsCode(() => Model.fromBytes(bytes.slice(0, 100)), 'truncated');
  throwsCode(() => Model.fromBytes(new TextEncoder().encode('{"not":"a model"}')), 'unknown_format');
  // a state dict says what it lacks, and loads once told
  throwsCode(() => Model.fromBytes(m.toBytes({ stateDictOnly: true })), 'needs_architecture');
  const told = Model.fromBytes(m.toBytes({ stateDictOnly: true }), { architecture: m.architecture });
  assert.deepEqual(told.forward([[1, 2, 3]]).data, m.forward([[1, 2, 3]]).data);
  told.dispose();
  // fileInfo lists without the data check unless asked
  assert.deepEqual(
    fileInfo(flipped).tensors.map((t) => [t.name, t.dtype, t.shape, t.bytes]),
    [
      ['0.weight', 'f32', [5, 3], 60],
      ['0.bias', 'f32', [5], 20],
    ],
  );
  throwsCode(() => fileInfo(flipped, { checkData: true }), 'checksum_mismatch');
  assert.equal(fileInfo(m.toBytes({ stateDictOnly: true }), { checkData: true }).kind, 'state_dict');
  m.dispose();
});

test('dispose frees once, and a disposed model says so', () => {
  const m = nn.sequential(nn.linear(3, 5));
  assert.equal(m.disposed, false);
  m.dispose();
  m.dispose();
  assert.equal(m.disposed, true);
  throwsCode(() => m.forward([[1, 2, 3]]), 'disposed');
  if (typeof Symbol.dispose === 'symbol') {
    const n = nn.sequential(nn.linear(3, 5));
    n[Symbol.dispose]();
    assert.equal(n.disposed, true);
  }
});

test('10,000 models created and disposed keep wasm memory flat', () => {
  const memory = () => runtime().HEAPU8.buffer.byteLength;
  const spec = 'Linear(64,64),ReLU,Linear(64,64)'; // ~33 KB of weights each: a leak would grow the heap by 300+ MB
  for (let i = 0; i < 200; i++) Model.fromSpec(spec, { seed: i }).dispose();
  const before = memory();
  for (let i = 0; i < 10_000; i++) {
    const m = Model.fromSpec(spec, { seed: i });
    if (i % 1000 === 0) m.forward(new Float32Array(64), [1, 64]);
    m.dispose();
  }
  assert.equal(memory(), before);
});

test(
  'files are interchangeable with the native CLI (bit-identical f32 predictions)',
  { skip: !existsSync(CLI) && 'native CLI not built' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelkeep-'));
    const cliFile = join(dir, 'cli.mkp');
    execFileSync(CLI, ['init', 'Linear(4,8),GELU,Linear(8,3)', cliFile, '--seed', '11']);
    const input = [
      [0.5, -1, 2, 0.25],
      [1, 1, 1, 1],
    ];
    const cliOut = JSON.parse(execFileSync(CLI, ['predict', cliFile, '--input', JSON.stringify(input)]).toString());
    const fromCli = await load(cliFile);
    const ours = fromCli.forward(input);
    assert.deepEqual(ours.shape, cliOut.shape);
    assert.deepEqual(ours.data, Float32Array.from(cliOut.data));
    // the same SPEC and seed build the same weights in wasm as natively
    const built = Model.fromSpec('Linear(4,8),GELU,Linear(8,3)', { seed: 11 });
    assert.deepEqual(Buffer.from(built.toBytes()), readFileSync(cliFile));
    // and Node's file is read by the CLI
    const nodeFile = join(dir, 'node.mkp');
    await save(built, nodeFile, { dtype: 'f16', metadata: { from: 'node' } });
    const inspected = JSON.parse(execFileSync(CLI, ['inspect', nodeFile, '--json']).toString());
    assert.equal(inspected.integrity.ok, true);
    assert.equal(inspected.metadata.from, 'node');
    assert.equal(inspected.tensors[0].dtype, 'f16');
    for (const m of [fromCli, built]) m.dispose();
  },
);

test('load from a missing path says not_found', async () => {
  await rejectsCode(load('/nonexistent/dir/model.mkp'), 'not_found');
});

test('work too big for wasm memory is out_of_memory, and the module lives on', () => {
  const huge = 'Linear(16384,16384),Linear(16384,16384),Linear(16384,16384),Linear(16384,16384)'; // 4 GiB
  throwsCode(() => Model.fromSpec(huge), 'out_of_memory');
  const wide = Model.fromSpec('Linear(1,16384)', { seed: 1 });
  throwsCode(() => wide.forward(new Float32Array(60_000), [60_000, 1]), 'out_of_memory'); // a 3.9 GB output
  assert.deepEqual(wide.forward([[1]]).shape, [1, 16384]);
  wide.dispose();
  const m = nn.sequential(nn.linear(3, 5), { seed: 1 });
  assert.deepEqual(m.forward([[1, 2, 3]]).shape, [1, 5]);
  m.dispose();
});

test('a file given as chunks loads like its bytes, wherever the chunk boundaries fall', () => {
  const model = nn.sequential(nn.linear(7, 9), nn.gelu(), nn.linear(9, 3), { seed: 5 });
  const input = [[1, -2, 3, 0.5, 0.25, -1, 2]];
  for (const dtype of ['f32', 'f16', 'int8']) {
    const bytes = model.toBytes({ dtype });
    const expected = Model.fromBytes(bytes);
    const y = expected.forward(input).data;
    expected.dispose();
    // Empty chunks, 1-byte chunks, a boundary inside the header and inside every tensor.
    const cuts = [
      [0, 0, 1, 2, 19, 20, 21, 64, 65, 200, bytes.length],
      [0, bytes.length, bytes.length],
      [0, ...Array.from({ length: bytes.length - 1 }, (_, i) => i + 1), bytes.length],
    ];
    for (const cut of cuts) {
      const chunks = cut.slice(1).map((end, i) => bytes.slice(cut[i], end));
      const loaded = fromChunks(chunks);
      assert.deepEqual(loaded.toBytes({ dtype }), bytes, `${dtype}, ${chunks.length} chunks`);
      assert.deepEqual(loaded.forward(input).data, y);
      loaded.dispose();
    }
    const corrupted = bytes.slice();
    corrupted[corrupted.length - 1] ^= 1;
    throwsCode(() => fromChunks([corrupted.slice(0, 50), corrupted.slice(50)]), 'checksum_mismatch');
  }
  throwsCode(() => fromChunks([model.toBytes(), [1, 2]]), 'invalid_argument');
  throwsCode(() => fromChunks(model.toBytes()), 'invalid_argument');
});

test('encode with chunkBytes: wasm writes the file straight into chunks of that size', () => {
  const m = nn.sequential(nn.linear(40, 30), nn.relu(), nn.linear(30, 7), { seed: 8 });
  for (const dtype of ['f32', 'f16', 'int8']) {
    const whole = m.toBytes({ dtype, metadata: { k: 'v' } });
    const { chunks, info } = encode(m, { dtype, metadata: { k: 'v' }, chunkBytes: 1000 });
    assert.equal(info.dtype, dtype);
    assert.deepEqual(
      chunks.map((c) => c.length),
      [...Array(Math.ceil(whole.length / 1000)).keys()].map((i) => Math.min(1000, whole.length - i * 1000)),
    );
    for (const c of chunks) assert.equal(c.buffer.byteLength, c.length, 'each chunk its own buffer');
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(whole), dtype);
    // one chunk bigger than the file
    const one = encode(m, { dtype, metadata: { k: 'v' }, chunkBytes: 1 << 20 }).chunks;
    assert.equal(one.length, 1);
    assert.deepEqual(Buffer.from(one[0]), Buffer.from(whole));
  }
  m.dispose();
});

test('forward keeps its wasm tensors between calls without mixing up calls, shapes or weights', () => {
  // wasm keeps the input, every layer's output and the result from one call
  // to the next (a call on the same shape allocates nothing there). Results
  // are copies: later calls must not change them; a shape change, a failed
  // call, new weights and a new weight dtype must all be seen.
  const spec = 'Linear(8,16),ReLU,Linear(16,4),Tanh';
  const m = Model.fromSpec(spec, { seed: 3 });
  const fresh = () => Model.fromSpec(spec, { seed: 3 });
  const x1 = Float32Array.from({ length: 8 }, (_, i) => i / 4 - 1);
  const x5 = Float32Array.from({ length: 40 }, (_, i) => Math.sin(i));
  const y1 = m.forward(x1, [1, 8]);
  const kept = Float32Array.from(y1.data);
  const y5 = m.forward(x5, [5, 8]);
  assert.deepEqual(y1.data, kept);
  assert.deepEqual(m.forward(x1, [1, 8]).data, kept);
  const other = fresh();
  assert.deepEqual(y5.data, other.forward(x5, [5, 8]).data);
  throwsCode(() => m.forward(new Float32Array(7), [1, 7]), 'shape_mismatch');
  assert.deepEqual(m.forward(x1, [1, 8]).data, kept);
  m.setWeightDtype('int8');
  other.setWeightDtype('int8');
  assert.deepEqual(m.forward(x5, [5, 8]).data, other.forward(x5, [5, 8]).data);
  const zeroed = Object.fromEntries(
    Object.entries(m.stateDict()).map(([k, t]) => [k, { shape: t.shape, data: new Float32Array(t.data.length) }]),
  );
  m.loadStateDict(zeroed);
  assert.deepEqual(m.forward(x1, [1, 8]).data, new Float32Array(4));
  m.dispose();
  other.dispose();
});

test('nn.root: a model that is one layer, its keys without a prefix, saved and loaded back', () => {
  const m = nn.root(nn.linear(3, 2), { seed: 1 });
  assert.equal(m.architecture, '=Linear(3,2)');
  assert.deepEqual(Object.keys(m.stateDict()), ['weight', 'bias']);
  const back = Model.fromBytes(m.toBytes());
  assert.equal(back.architecture, '=Linear(3,2)');
  assert.deepEqual(back.forward([[1, 2, 3]]).data, m.forward([[1, 2, 3]]).data);
  // Beside other layers the root is refused: it is the model's only layer.
  throwsCode(() => Model.fromSpec('=Linear(3,2),ReLU'), 'bad_name');
  throwsCode(() => nn.root('Linear(3,2)'), 'invalid_argument');
  m.dispose();
  back.dispose();
});
