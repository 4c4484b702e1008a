// Compact weights in the wasm build: Model#setWeightDtype / weightDtype / memoryBytes, the
// SIMD128 kernels against a float32 model of the same decoded weights, every finite f16 value
// through the in-register decoder, files that stay compact, and the native CLI computing the
// very same outputs (the integer and float sums run in one order in both builds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ready, Model, ModelError } from '../../web/src/node.js';

await ready(); // the WebAssembly module, before the synchronous API

const CLI = new URL('../../build/native/modelkeep', import.meta.url).pathname;
const SPEC = '0=Linear(37,23),1=ReLU,2=Linear(23,9)';

function input(rows, cols, seed) {
  const x = new Float32Array(rows * cols);
  let s = seed;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = (s / 2 ** 32) * 4 - 2;
  }
  return x;
}

/** A float32 model holding exactly the decoded weights of `m`. */
function expansion(m) {
  const e = Model.fromSpec(m.architecture, { seed: 1 });
  e.loadStateDict(m.stateDict());
  return e;
}

test("every dtype: compact in memory, the float32 kernels' results on the decoded weights", () => {
  for (const dtype of ['f16', 'bf16', 'int8']) {
    const m = Model.fromSpec(SPEC, { seed: 3 });
    const f32Bytes = m.memoryBytes;
    assert.equal(m.weightDtype, 'f32');
    assert.deepEqual(m.setWeightDtype(dtype), { unchanged: [] });
    assert.equal(m.weightDtype, dtype);
    assert.ok(m.memoryBytes < f32Bytes * (dtype === 'int8' ? 0.4 : 0.6), `${dtype}: ${m.memoryBytes} of ${f32Bytes}`);
    const e = expansion(m);
    for (const batch of [1, 3, 5]) {
      const x = input(batch, 37, 7 + batch);
      const got = m.forward(x, [batch, 37]).data;
      const want = e.forward(x, [batch, 37]).data;
      if (dtype === 'int8' && batch < 4) {
        // int16-quantised input rows: close to float32, not equal
        let scale = 1;
        for (const v of want) scale = Math.max(scale, Math.abs(v));
        for (let i = 0; i < want.length; i++)
          assert.ok(Math.abs(got[i] - want[i]) <= 2e-3 * scale, `${dtype} b${batch} [${i}]`);
      } else if (batch < 4) {
        // The f16/bf16 GEMV sums each weight row in order; the float32 one reads pre-packed
        // panels (core/packed.hpp) and sums in another order: equal up to float rounding.
        let scale = 1;
        for (const v of want) scale = Math.max(scale, Math.abs(v));
        for (let i = 0; i < want.length; i++)
          assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * scale, `${dtype} b${batch} [${i}]`);
      } else {
        assert.deepEqual(got, want, `${dtype} b${batch}`); // bit for bit: the same panels, the same GEMM
      }
    }
    m.setWeightDtype('f32');
    assert.equal(m.weightDtype, 'f32');
    assert.equal(m.memoryBytes, f32Bytes);
    assert.deepEqual(m.stateDict(), e.stateDict());
    m.dispose();
    e.dispose();
  }
});

function f16ToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 31;
  const mant = h & 1023;
  return sign * (exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15));
}

test('the SIMD128 f16 decoder gives every finite f16 value exactly, at batch 1 and in the GEMM', () => {
  const halves = [];
  for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00) halves.push(h);
  const rows = halves.length / 8; // 7936 rows of 8
  const m = Model.fromSpec(`0=Linear(8,${rows},bias=False)`, { seed: 1 });
  m.loadStateDict({ '0.weight': { shape: [rows, 8], data: Float32Array.from(halves, f16ToNumber) } });
  assert.deepEqual(m.setWeightDtype('f16'), { unchanged: [] });
  for (const batch of [1, 4]) {
    for (let col = 0; col < 8; col++) {
      const x = new Float32Array(batch * 8);
      for (let r = 0; r < batch; r++) x[r * 8 + col] = 1;
      const y = m.forward(x, [batch, 8]).data;
      for (let r = 0; r < batch; r++) {
        for (let j = 0; j < rows; j++) {
          const want = f16ToNumber(halves[j * 8 + col]);
          if (y[r * rows + j] !== want)
            assert.fail(
              `b${batch} col ${col} row ${j}: ${y[r * rows + j]} ≠ ${want} (0x${halves[j * 8 + col].toString(16)})`,
            );
        }
      }
    }
  }
  m.dispose();
});

test('a compact model saves in its own dtype and loads back compact, the same outputs', () => {
  for (const dtype of ['f16', 'bf16', 'int8']) {
    const m = Model.fromSpec(SPEC, { seed: 4 });
    m.setWeightDtype(dtype);
    const bytes = m.toBytes(); // the weights as held
    assert.equal(Model.fromBytes(bytes).weightDtype, dtype);
    const back = Model.fromBytes(bytes);
    const x = input(2, 37, 9);
    assert.deepEqual(back.forward(x, [2, 37]).data, m.forward(x, [2, 37]).data);
    assert.deepEqual(back.toBytes(), bytes);
    // and a float32 file can be loaded compact
    const f32 = Model.fromSpec(SPEC, { seed: 4 }).toBytes();
    const loaded = Model.fromBytes(f32, { weightDtype: dtype });
    assert.equal(loaded.weightDtype, dtype);
    assert.deepEqual(loaded.forward(x, [2, 37]).data, m.forward(x, [2, 37]).data);
    for (const x of [m, back, loaded]) x.dispose();
  }
});

test('what a dtype cannot hold stays float32, and a wrong dtype is invalid_argument', () => {
  const m = Model.fromSpec(SPEC, { seed: 5 });
  const sd = m.stateDict();
  sd['2.weight'].data[4] = 1e6; // beyond f16
  m.loadStateDict(sd);
  assert.deepEqual(m.setWeightDtype('f16'), { unchanged: ['2'] });
  assert.equal(m.stateDict()['2.weight'].data[4], 1e6);
  assert.throws(
    () => m.setWeightDtype('f64'),
    (e) => e instanceof ModelError && e.code === 'invalid_argument',
  );
  assert.throws(
    () => Model.fromBytes(m.toBytes({ dtype: 'f32' }), { weightDtype: 'fp8' }),
    (e) => e instanceof ModelError && e.code === 'invalid_argument',
  );
  m.dispose();
});

test(
  'the native CLI computes the same compact outputs bit for bit',
  { skip: !existsSync(CLI) && 'native CLI not built' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelkeep-compact-'));
    for (const dtype of ['f16', 'int8']) {
      const m = Model.fromSpec(SPEC, { seed: 6 });
      m.setWeightDtype(dtype);
      const file = join(dir, `${dtype}.mkp`);
      writeFileSync(file, m.toBytes());
      for (const batch of [1, 5]) {
        const x = input(batch, 37, 11);
        const rows = [];
        for (let r = 0; r < batch; r++) rows.push(Array.from(x.subarray(r * 37, r * 37 + 37)));
        const cli = JSON.parse(execFileSync(CLI, ['predict', file, '--input', JSON.stringify(rows)]).toString());
        assert.deepEqual(m.forward(x, [batch, 37]).data, Float32Array.from(cli.data), `${dtype} b${batch}`);
      }
      m.dispose();
    }
  },
);
