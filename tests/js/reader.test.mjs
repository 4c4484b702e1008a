// The reader module (web/dist-reader/, runtime.js): a load() with nothing else loaded fetches only
// the reader, which loads .mkp models and runs them — every dtype, bit for bit as the core does;
// the synchronous calls it does not have throw not_ready naming ready(); once the core is loaded
// the model moves there as it is held (mk_model_take → mk_give_*), losslessly: toBytes() gives
// back the very file it was read from. The move's receiving side refuses malformed tensors with
// a typed error and stays usable. Its own process (node --test runs each file apart): nothing
// else has loaded a module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { execFileSync } from 'node:child_process';

import { load, ready, ModelError } from '../../web/src/node.js';
import { loadedModules, runtime } from '../../web/src/runtime.js';
import { recordWasmAsked } from './wasm_asked.mjs';

const nodeEntry = new URL('../../web/src/node.js', import.meta.url).href;

// Every .wasm the platform is asked for.
const asked = recordWasmAsked();

// Models with every kind of tensor a move carries: packed float32 weights, compact weights of
// each dtype, biases, LayerNorm's and BatchNorm1d's parameters and running stats, a float in the
// SPEC (LeakyReLU's slope); one layer's weights include f16 subnormals (held apart, compact.hpp).
const spec =
  'fc1=Linear(6,16),LeakyReLU(0.2),LayerNorm(16),fc2=Linear(16,8),BatchNorm1d(8),Dropout(0.25),out=Linear(8,3)';
const dtypes = ['f32', 'f16', 'bf16', 'int8'];
const x = Float32Array.from({ length: 4 * 6 }, (_, i) => Math.sin(i * 0.7) * 2);

/** The files (and a state dict's), written by the core in a Node process of their own. */
function files() {
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-reader-'));
  try {
    const code = `const mk = await import(${JSON.stringify(nodeEntry)});
      const { writeFileSync } = await import('node:fs');
      await mk.ready();
      const m = mk.Model.fromSpec(${JSON.stringify(spec)}, { seed: 3 });
      // Tiny weights in fc2: f16 subnormals, 1 in 20 (under 1 in 16, so held apart in the side
      // table); and running stats that are not the defaults.
      const sd = m.stateDict();
      sd['fc2.weight'].data.forEach((v, i, a) => (a[i] = i % 20 ? v : ((i % 7) + 1) * 1e-6));
      sd['4.running_mean'].data.forEach((_, i, a) => (a[i] = i / 10));
      sd['4.running_var'].data.forEach((_, i, a) => (a[i] = 1 + i / 5));
      m.loadStateDict(sd);
      for (const dtype of ${JSON.stringify(dtypes)})
        writeFileSync(${JSON.stringify(dir)} + '/' + dtype, m.toBytes({ dtype, metadata: { note: dtype } }));
      writeFileSync(${JSON.stringify(dir)} + '/sd', mk.nn.sequential(mk.nn.linear(3, 2)).toBytes({ stateDictOnly: true }));`;
    execFileSync(process.execPath, ['--input-type=module', '-e', code]);
    const out = {};
    for (const name of [...dtypes, 'sd']) out[name] = new Uint8Array(readFileSync(join(dir, name)));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bytes = files();
const fromReader = {};
const outputs = {};

test('load() with nothing else loaded fetches the reader only, and runs every dtype', async () => {
  for (const dtype of dtypes) fromReader[dtype] = await load(bytes[dtype]);
  assert.deepEqual(loadedModules(), ['reader']);
  assert.deepEqual(asked.length, 1, asked.join());
  assert.match(asked[0], /\/dist-reader\/modelkeep_wasm\.wasm$/);
  for (const dtype of dtypes) {
    const m = fromReader[dtype];
    assert.equal(m.weightDtype, dtype);
    assert.equal(m.source.format, 'modelkeep');
    outputs[dtype] = m.forward(x, [4, 6]).data;
    assert.equal(outputs[dtype].length, 12);
  }
});

test('the calls the reader does not have throw not_ready naming ready(), and change nothing', () => {
  const m = fromReader.f32;
  const before = m.forward(x, [4, 6]).data;
  for (const [what, fn] of [
    ['toBytes', () => m.toBytes()],
    ['stateDict', () => m.stateDict()],
    ['setWeightDtype', () => m.setWeightDtype('f16')],
    ['loadStateDict', () => m.loadStateDict({})],
  ]) {
    assert.throws(fn, (e) => {
      assert.ok(e instanceof ModelError, what);
      assert.equal(e.code, 'not_ready', what);
      assert.match(e.message, /await ready\(\) first/, what);
      return true;
    });
  }
  assert.deepEqual(m.forward(x, [4, 6]).data, before);
});

test("a state dict read by load() gets the core's needs_architecture advice", async () => {
  await assert.rejects(load(bytes.sd), (e) => {
    assert.equal(e.code, 'needs_architecture');
    assert.match(e.message, /Linear\(3,2\)/); // the SPEC its tensors suggest: the core's advice
    return true;
  });
});

test('after ready(), a reader model moves to the core as it is held: toBytes() is the same file', async () => {
  await ready();
  const core = runtime('core');
  for (const dtype of dtypes) {
    const m = fromReader[dtype];
    // The reader ran the file bit for bit as the core does.
    const h = new core.ModelHandle();
    assert.equal(h.load(bytes[dtype], '', false, '', '').ok, true);
    assert.deepEqual(outputs[dtype], h.forward(x, [4, 6]).data, dtype);
    assert.equal(m.memoryBytes, h.memoryBytes(), dtype);
    assert.equal(m.architecture, h.architecture(), dtype);
    h.delete();
    const y = m.forward(x, [4, 6]).data;
    assert.deepEqual(m.toBytes({ metadata: { note: dtype } }), bytes[dtype], dtype);
    assert.equal(m.weightDtype, dtype);
    assert.deepEqual(m.forward(x, [4, 6]).data, y, dtype);
  }
  // Now a plain load() reads into the core, where everything works at once.
  const again = await load(bytes.int8);
  assert.deepEqual(again.toBytes({ metadata: { note: 'int8' } }), bytes.int8);
  assert.equal(again.setWeightDtype('f32').unchanged.length, 0);
  again.dispose();
});

test('save() of a reader model loads the core itself; an export to .pt copies it to the importer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-reader-'));
  try {
    const path = join(dir, 'm.mkp');
    writeFileSync(path, bytes.f16);
    const code = `const mk = await import(${JSON.stringify(nodeEntry)});
      const m = await mk.load(${JSON.stringify(path)});
      await mk.save(m, ${JSON.stringify(join(dir, 'copy.mkp'))}, { metadata: { note: 'f16' } });
      const pt = await mk.save(m, ${JSON.stringify(join(dir, 'copy.pt'))});
      console.log(JSON.stringify(pt.format));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    assert.equal(JSON.parse(out.trim()), 'pt');
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, 'copy.mkp'))), bytes.f16);
    // The .pt holds the f16 weights as the model does (its own dtype, by default).
    const back = await load(join(dir, 'copy.pt'), { architecture: fromReader.f16.architecture });
    assert.deepEqual(back.forward(x, [4, 6]).data, outputs.f16);
    back.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('give: malformed tensors are typed errors, nothing half-built, the module usable', () => {
  const core = runtime('core');
  const h = new core.ModelHandle();
  const f32 = (n) => ({ dtype: 'f32', data: new Uint8Array(n * 4) });
  const cases = [
    ['not a SPEC', { architecture: 'Linear(3', tensors: [] }, 'invalid_spec'],
    ['too few', { architecture: 'Linear(3,2)', tensors: [f32(6)] }, 'invalid_argument'],
    ['too many', { architecture: 'Linear(3,2)', tensors: [f32(6), f32(2), f32(2)] }, 'invalid_argument'],
    ['wrong size', { architecture: 'Linear(3,2)', tensors: [f32(5), f32(2)] }, 'shape_mismatch'],
    [
      'unknown dtype',
      { architecture: 'Linear(3,2)', tensors: [{ dtype: 'f8', data: new Uint8Array(6) }] },
      'invalid_argument',
    ],
    [
      'a compact bias',
      { architecture: 'Linear(3,2)', tensors: [f32(6), { dtype: 'f16', data: new Uint8Array(4) }] },
      'invalid_argument',
    ],
    // int8: two row scales, then 2 × 3 values; a negative scale cannot be held.
    [
      'a bad int8 scale',
      {
        architecture: 'Linear(3,2)',
        tensors: [
          {
            dtype: 'int8',
            data: Uint8Array.from([...new Uint8Array(new Float32Array([-1, 1]).buffer), 1, 2, 3, 4, 5, 6]),
          },
          f32(2),
        ],
      },
      'invalid_input',
    ],
  ];
  for (const [what, given, code] of cases) {
    const r = h.give(given);
    assert.equal(r.ok, false, what);
    assert.equal(r.code, code, `${what}: ${r.message}`);
  }
  // The handle still holds no model of those; a good move works after them all.
  const m = new core.ModelHandle();
  assert.equal(m.init('Linear(3,2)', 9).ok, true);
  assert.equal(h.give(m.take()).ok, true);
  const y = Float32Array.from([1, 2, 3]);
  assert.deepEqual(h.forward(y, [1, 3]).data, m.forward(y, [1, 3]).data);
  h.delete();
  m.delete();
});
