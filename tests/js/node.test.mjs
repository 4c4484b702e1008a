// The package in plain Node, with no IndexedDB installed (no fake-indexeddb here): indexeddb://
// fails with storage_unavailable, and the message names what works in Node instead — which
// this test then does. Run: node --test tests/js/
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { nn, ModelError, save, load, listModels, modelInfo } from '../../web/src/index.js';

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
