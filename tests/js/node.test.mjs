// The package in plain Node, with no IndexedDB installed (no fake-indexeddb here): indexeddb://
// fails with storage_unavailable, and the message names what works in Node instead — which
// this test then does. Run: node --test tests/js/
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { ready, nn, ModelError, save, load, listModels, modelInfo } from '../../web/src/node.js';

await ready(); // the WebAssembly module, before the synchronous API

async function rejectsUnavailable(promise) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${err}`);
    assert.equal(err.code, 'storage_unavailable', err.message);
    assert.match(err.message, /indexeddb:\/\/ needs IndexedDB, which Node does not have/);
    assert.match(err.message, /save\(model, '\.\/model\.mkp'\)/);
    assert.match(err.message, /import 'fake-indexeddb\/auto'/);
    return true;
  });
}

test('indexeddb:// in Node without IndexedDB: storage_unavailable suggests a file path or fake-indexeddb', async () => {
  assert.equal(globalThis.indexedDB, undefined, 'this test needs a Node without an IndexedDB shim');
  const model = nn.sequential(nn.linear(3, 5), { seed: 1 });
  await rejectsUnavailable(save(model, 'indexeddb://x'));
  await rejectsUnavailable(load('indexeddb://x'));
  await rejectsUnavailable(modelInfo('indexeddb://x'));
  await rejectsUnavailable(listModels());

  // What the message suggests works.
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-node-'));
  try {
    const path = join(dir, 'model.mkp');
    await save(model, path);
    const again = await load(path);
    assert.deepEqual(again.forward([[1, 2, 3]]).data, model.forward([[1, 2, 3]]).data);
    again.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    model.dispose();
  }
});

// The fields of index.d.ts's ModelInfo and ExportInfo, which save() declares it resolves to.
const modelInfoKeys = [
  'architecture',
  'bytes',
  'dateSaved',
  'dtype',
  'kind',
  'layers',
  'metadata',
  'params',
  'version',
];
const exportInfoKeys = [
  'architecture',
  'bytes',
  'dateSaved',
  'dtype',
  'format',
  'kind',
  'layers',
  'metadata',
  'params',
];

test('save() to a path resolves to the declared type: ModelInfo for .mkp, ExportInfo for .pt / .safetensors', async () => {
  const model = nn.sequential({ fc1: nn.linear(3, 5) }, nn.relu(), { seed: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-node-'));
  try {
    const mkp = await save(model, join(dir, 'm.mkp'), { metadata: { note: 'n' } });
    assert.deepEqual(Object.keys(mkp).sort(), modelInfoKeys);
    assert.equal(mkp.kind, 'model');
    assert.deepEqual(mkp.layers, ['fc1=Linear(3,5)', '1=ReLU']);
    for (const [name, format] of [
      ['m.pt', 'pt'],
      ['m.pth', 'pt'],
      ['m.safetensors', 'safetensors'],
    ]) {
      const info = await save(model, join(dir, name), { metadata: { note: 'n' } });
      assert.deepEqual(Object.keys(info).sort(), exportInfoKeys, name);
      assert.equal(info.format, format);
      assert.equal(info.kind, 'state_dict');
      assert.equal(info.dtype, 'f32');
      assert.equal(info.params, model.paramCount);
      assert.equal(info.architecture, 'fc1=Linear(3,5),1=ReLU');
      assert.deepEqual(info.layers, ['fc1=Linear(3,5)', '1=ReLU']);
      assert.deepEqual(info.metadata, { note: 'n' });
      assert.equal(info.bytes, readFileSync(join(dir, name)).length);
      assert.ok(!Number.isNaN(Date.parse(info.dateSaved)));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    model.dispose();
  }
});
