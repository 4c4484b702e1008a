// The core and the importer (runtime.js): ready() loads only the core (web/dist/, .mkp files
// only); the importer (web/dist-importer/) is fetched on the first PyTorch / safetensors file,
// once, and the imported model stays there; a core model exported to .pt / .safetensors is
// copied to the importer as it is held (tests/js/reader.test.mjs: the third module, the reader). Synchronous
// calls that need it throw not_ready, naming the fix, until it is loaded. At the module level,
// the core builds, saves, loads and runs .mkp models exactly as the importer module does, and
// refuses every other format, and exports to one, with needs_importer — the module staying usable.
// Its own process (node --test runs each file apart): nothing else has loaded the importer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ready, load, save, fileInfo, nn, Model, ModelError } from '../../web/src/node.js';
import { loadedModules, runtime } from '../../web/src/runtime.js';
import { recordWasmAsked } from './wasm_asked.mjs';

const file = (name) => new URL(`../torch/files/${name}`, import.meta.url);
const ptPath = file('tutorial_state.pt');
const pt = readFileSync(ptPath);
const tutorial = 'fc1=Linear(3,5)';
const safetensors = readFileSync(file('mlp.safetensors'));
const mlp = '0=Linear(8,16),1=ReLU,2=Linear(16,4)';

// Every .wasm the platform is asked for (the importer's lives in web/dist-importer/).
const asked = recordWasmAsked();
const importerAsks = () => asked.filter((u) => u.includes('/dist-importer/')).length;

function notReady(fn, what) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ModelError, what);
    assert.equal(e.code, 'not_ready', what);
    assert.match(e.message, /await ready\(\{ importer: true \}\)/, what);
    assert.match(e.message, /load\(\)/, what);
    return true;
  });
}

test('the default import loads the core only: .mkp files work, the importer stays unloaded', async () => {
  await ready();
  assert.deepEqual(loadedModules(), ['core']);
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-lean-'));
  try {
    const model = nn.sequential(nn.linear(3, 5), nn.relu(), { seed: 1 });
    await save(model, join(dir, 'm.mkp'));
    const back = await load(join(dir, 'm.mkp'));
    assert.deepEqual(back.forward([[1, 2, 3]]).data, model.forward([[1, 2, 3]]).data);
    assert.equal(fileInfo(model.toBytes()).format, 'modelkeep');
    assert.equal(Model.fromBytes(model.toBytes()).architecture, model.architecture);
    for (const m of [model, back]) m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(loadedModules(), ['core']);
  assert.equal(importerAsks(), 0);
});

test('synchronous calls that need the importer throw not_ready with the fix, and load nothing', () => {
  const model = nn.sequential(nn.linear(3, 5).named('fc1'), { seed: 2 });
  notReady(() => fileInfo(pt), 'fileInfo');
  notReady(() => fileInfo(safetensors), 'fileInfo (safetensors)');
  notReady(() => Model.fromBytes(pt, { architecture: tutorial }), 'Model.fromBytes');
  notReady(() => model.loadStateDict(pt), 'loadStateDict');
  notReady(() => model.toBytes({ format: 'pt' }), 'toBytes pt');
  notReady(() => model.toBytes({ format: 'safetensors' }), 'toBytes safetensors');
  assert.equal(model.forward([[1, 2, 3]]).shape.join(), '1,5', 'the model lives on');
  model.dispose();
  assert.deepEqual(loadedModules(), ['core']);
});

test('load() of .pt and .safetensors fetches the importer once, and predicts as the importer does', async () => {
  const [a, b, c] = await Promise.all([
    load(ptPath, { architecture: tutorial }),
    load(pt, { architecture: tutorial }),
    load(safetensors, { architecture: mlp }),
  ]);
  assert.deepEqual(loadedModules(), ['core', 'importer']);
  assert.equal(importerAsks(), 1, asked.join());
  assert.equal(a.source.format, 'torch-zip');
  assert.equal(a.source.architectureFrom, 'architecture option');
  assert.equal(c.source.format, 'safetensors');
  // The same outputs as the model imported and run inside the importer module itself.
  const importer = runtime('importer');
  for (const [model, bytes, spec, shape] of [
    [a, pt, tutorial, [2, 3]],
    [c, safetensors, mlp, [2, 8]],
  ]) {
    const x = Float32Array.from({ length: shape[0] * shape[1] }, (_, i) => Math.sin(i));
    const h = new importer.ModelHandle();
    assert.equal(h.load(bytes, spec, false, '', '').ok, true);
    const direct = h.forward(x, shape);
    h.delete();
    assert.deepEqual(model.forward(x, shape).data, direct.data);
  }
  assert.deepEqual(b.forward([[1, 2, 3]]).data, a.forward([[1, 2, 3]]).data);
  // Later files use the loaded importer: no second fetch.
  (await load(ptPath, { architecture: tutorial })).dispose();
  assert.equal(importerAsks(), 1);
  for (const m of [a, b, c]) m.dispose();
});

test('once the importer is loaded, the synchronous calls work through it', async () => {
  await ready({ importer: true }); // already loaded: resolves at once
  assert.equal(importerAsks(), 1);
  assert.equal(fileInfo(pt).format, 'torch-zip');
  const model = Model.fromBytes(pt, { architecture: tutorial });
  const other = nn.sequential(nn.linear(3, 5).named('fc1'), { seed: 5 });
  other.loadStateDict(pt);
  assert.deepEqual(other.forward([[1, 2, 3]]).data, model.forward([[1, 2, 3]]).data);
  // Exports: a model of the core goes to the importer as .mkp bytes; an imported one is there.
  for (const source of [other, model]) {
    for (const format of ['pt', 'safetensors']) {
      const bytes = source.toBytes({ format });
      assert.equal(fileInfo(bytes).format, format === 'pt' ? 'torch-zip' : 'safetensors');
      const again = Model.fromBytes(bytes, { architecture: tutorial });
      assert.deepEqual(again.forward([[1, 2, 3]]).data, source.forward([[1, 2, 3]]).data, format);
      again.dispose();
    }
  }
  // An imported model saves as .mkp, which the core reads.
  const mkp = Model.fromBytes(model.toBytes({ dtype: 'f32' }));
  assert.deepEqual(mkp.forward([[1, 2, 3]]).data, model.forward([[1, 2, 3]]).data);
  for (const m of [model, other, mkp]) m.dispose();
});

// ---- the two modules side by side, below the JS layer ----------------------------------------

// A model handle of `module` holding `spec`.
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

test('core: the same .mkp bytes and outputs as the importer module, every dtype', async () => {
  await ready({ importer: true });
  const [lean, full] = [runtime('core'), runtime('importer')];
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
    // A state dict loads into a SPEC, as in the importer module.
    const sd = new lean.ModelHandle();
    const loaded = sd.load(a.toBytes('f32', {}, true, 0).bytes, spec, false, '', '');
    assert.equal(loaded.ok, true, loaded.message);
    assert.equal(loaded.architectureFrom, 'architecture option');
    for (const h of [a, b, back, again, sd]) h.delete();
  }
});

test('core: other formats and exports are needs_importer, and the module lives on', async () => {
  await ready({ importer: true });
  const [lean, full] = [runtime('core'), runtime('importer')];
  const h = new lean.ModelHandle();
  const r = h.load(pt, tutorial, false, '', '');
  assert.equal(r.ok, false);
  assert.equal(r.code, 'needs_importer');
  assert.match(r.message, /importer/);
  assert.equal(lean.fileInfo(pt, false).code, 'needs_importer');
  assert.equal(lean.readTensors(pt).code, 'needs_importer');
  const m = fromSpec(lean, 'Linear(3,2)', 1);
  assert.equal(m.exportBytes('pt', 'f32', {}).code, 'needs_importer');
  assert.equal(m.exportBytes('safetensors', 'f32', {}).code, 'needs_importer');
  // The importer module reads the same file.
  const f = new full.ModelHandle();
  assert.equal(f.load(pt, tutorial, false, '', '').ok, true);
  // A state dict without an architecture: the same needs_architecture advice in both.
  const sd = m.toBytes('f32', {}, true, 0).bytes;
  const a = new lean.ModelHandle().load(sd, '', false, '', '');
  const b = new full.ModelHandle().load(sd, '', false, '', '');
  assert.equal(a.code, 'needs_architecture');
  assert.equal(a.message, b.message);
  assert.equal(run(m, [1, 2, 3], [1, 3]).shape.join(), '1,2');
  for (const x of [h, m, f]) x.delete();
});
