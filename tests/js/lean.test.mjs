// The lean WebAssembly module (web/dist-lean/, `scripts/build-wasm.sh --lean`:
// the core without the PyTorch / safetensors importer): it builds, saves, loads
// and runs .mkp models exactly as the full module does, and refuses every other
// format, and exports to one, with needs_importer — the module staying usable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { ready } from '../../web/src/node.js';
import { runtime } from '../../web/src/runtime.js';

await ready();

const leanUrl = new URL('../../web/dist-lean/', import.meta.url);
const { default: createLean } = await import(new URL('modelkeep_wasm.mjs', leanUrl));
const lean = await createLean({ wasmBinary: readFileSync(new URL('modelkeep_wasm.wasm', leanUrl)) });
const full = runtime();

// A model handle of `module` holding `spec`, or a failure's code.
function fromSpec(module, spec, seed) {
  const h = new module.ModelHandle();
  assert.equal(h.init(spec, seed).ok, true);
  return h;
}

function run(handle, data, shape) {
  const r = handle.forward(Float32Array.from(data), shape);
  assert.equal(r.ok, true, r.message);
  return r;
}

test('lean: the same .mkp bytes and outputs as the full module, every dtype', () => {
  const spec = 'fc1=Linear(4,16),ReLU,LayerNorm(16),fc2=Linear(16,3),Softmax';
  const x = [0.5, -1, 2, 0.25, 1, 1, -3, 0];
  for (const dtype of ['f32', 'f16', 'bf16', 'int8']) {
    const a = fromSpec(lean, spec, 7);
    const b = fromSpec(full, spec, 7);
    const bytesA = a.toBytes(dtype, {}, false, 0);
    const bytesB = b.toBytes(dtype, {}, false, 0);
    assert.deepEqual(bytesA.bytes, bytesB.bytes, dtype);
    const back = new lean.ModelHandle();
    const info = back.load(bytesB.bytes, '', false, '', '');
    assert.equal(info.ok, true, info.message);
    assert.equal(info.architectureFrom, 'file');
    const again = new full.ModelHandle();
    assert.equal(again.load(bytesB.bytes, '', false, '', '').ok, true);
    assert.deepEqual(run(back, x, [2, 4]).data, run(again, x, [2, 4]).data, dtype);
    // A state dict loads into a SPEC, as in the full module.
    const sd = new lean.ModelHandle();
    const loaded = sd.load(a.toBytes('f32', {}, true, 0).bytes, spec, false, '', '');
    assert.equal(loaded.ok, true, loaded.message);
    assert.equal(loaded.architectureFrom, 'architecture option');
    for (const h of [a, b, back, again, sd]) h.delete();
  }
});

test('lean: other formats and exports are needs_importer, and the module lives on', () => {
  const pt = readFileSync(new URL('../torch/files/tutorial_state.pt', import.meta.url));
  const h = new lean.ModelHandle();
  const r = h.load(pt, 'fc1=Linear(3,5)', false, '', '');
  assert.equal(r.ok, false);
  assert.equal(r.code, 'needs_importer');
  assert.match(r.message, /importer/);
  assert.equal(lean.fileInfo(pt, false).code, 'needs_importer');
  assert.equal(lean.readTensors(pt).code, 'needs_importer');
  const m = fromSpec(lean, 'Linear(3,2)', 1);
  assert.equal(m.exportBytes('pt', 'f32', {}).code, 'needs_importer');
  assert.equal(m.exportBytes('safetensors', 'f32', {}).code, 'needs_importer');
  // The full module reads the same file.
  const f = new full.ModelHandle();
  assert.equal(f.load(pt, 'fc1=Linear(3,5)', false, '', '').ok, true);
  // A state dict without an architecture: the same needs_architecture advice in both.
  const sd = m.toBytes('f32', {}, true, 0).bytes;
  const a = new lean.ModelHandle().load(sd, '', false, '', '');
  const b = new full.ModelHandle().load(sd, '', false, '', '');
  assert.equal(a.code, 'needs_architecture');
  assert.equal(a.message, b.message);
  assert.equal(run(m, [1, 2, 3], [1, 3]).shape.join(), '1,2');
  for (const x of [h, m, f]) x.delete();
});
