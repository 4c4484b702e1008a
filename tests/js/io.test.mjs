// Tests for web/src/io.js: storage URLs dispatched through the `backends` table, in Node, on
// fake-indexeddb's global IndexedDB plus a second backend (a Map) added to the table as a user
// of storage.js's store contract would. Run: node --test tests/js/
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ready,
  nn,
  ModelError,
  save,
  load,
  loadBytes,
  listModels,
  modelInfo,
  copyModel,
  moveModel,
  removeModel,
  onModelsChange,
} from '../../web/src/node.js';
import { backends } from '../../web/src/io.js';
import {
  checkName,
  checkProgress,
  checkPut,
  joinChunks,
  notFound,
  openSync,
  storeClosed,
} from '../../web/src/storage.js';

await ready(); // the WebAssembly module, before the synchronous API

/** A second backend in a few lines: the store contract kept in a Map (atomic by construction). */
async function openMemoryStore() {
  const records = new Map(); // name → { info, chunks }
  const sync = openSync({ lock: 'modelkeep-test:memory', channel: 'modelkeep-test-memory' });
  const found = (name, what) => {
    checkName(name, what);
    if (sync.closed) throw storeClosed();
    const record = records.get(name);
    if (!record) throw notFound(name);
    return record;
  };
  const getChunks = async (name, { onProgress } = {}) => {
    checkProgress(onProgress);
    const { info, chunks } = found(name);
    onProgress?.({ loaded: info.bytes, total: info.bytes });
    return chunks;
  };
  const relocate = async (from, to, keepSource) => {
    const record = found(from, 'from');
    checkName(to, 'to');
    if (from === to) return;
    await sync.write(keepSource ? [to] : [from, to], () => {
      records.set(to, { ...record, info: { ...record.info, name: to } });
      if (!keepSource) records.delete(from);
    });
  };
  return {
    chunkBytes: 64,
    async put(name, bytes, info = {}, { onProgress } = {}) {
      checkName(name);
      const chunks = (checkPut(bytes, info) ?? [bytes]).map((chunk) => chunk.slice());
      checkProgress(onProgress);
      const total = chunks.reduce((n, chunk) => n + chunk.length, 0);
      const record = { ...info, name, bytes: total, chunks: chunks.length, dateSaved: new Date().toISOString() };
      onProgress?.({ loaded: total, total });
      await sync.write([name], () => records.set(name, { info: record, chunks }));
      return { ...record };
    },
    get: async (name, options) => joinChunks(await getChunks(name, options)),
    getChunks,
    info: async (name) => ({ ...found(name).info }),
    list: async () => Object.fromEntries([...records].map(([name, { info }]) => [name, { ...info }])),
    copy: (from, to) => relocate(from, to, true),
    move: (from, to) => relocate(from, to, false),
    async remove(name) {
      found(name);
      await sync.write([name], () => records.delete(name));
    },
    onChange: sync.onChange,
    close: () => sync.close(),
  };
}
backends['memory://'] = openMemoryStore;

async function rejectsWith(promise, code, pattern) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${err}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

const input = [[1, 2, 3]];

for (const scheme of ['indexeddb://', 'memory://']) {
  test(`${scheme}: save, load, info, copy, move, remove and change events go to its store`, async () => {
    const model = nn.sequential(nn.linear(3, 5), nn.relu(), { seed: 3 });
    const expected = Array.from(model.forward(input).data);
    const heard = [];
    const unsubscribe = await onModelsChange((event) => heard.push(event.names));

    const info = await save(model, `${scheme}a`, { metadata: { note: 'io' } });
    assert.equal(info.params, model.paramCount);
    assert.deepEqual(info.metadata, { note: 'io' });
    assert.equal(info.name, undefined, 'storage details stay inside');
    assert.deepEqual(Array.from((await load(`${scheme}a`)).forward(input).data), expected);
    assert.deepEqual(await loadBytes(`${scheme}a`), model.toBytes({ metadata: { note: 'io' } }));
    assert.deepEqual(await modelInfo(`${scheme}a`), info);

    await copyModel(`${scheme}a`, `${scheme}b`);
    await moveModel(`${scheme}b`, `${scheme}c`);
    const listed = Object.keys(await listModels())
      .filter((url) => url.startsWith(scheme))
      .sort();
    assert.deepEqual(listed, [`${scheme}a`, `${scheme}c`]);
    await removeModel(`${scheme}a`);
    await removeModel(`${scheme}c`);
    await rejectsWith(modelInfo(`${scheme}a`), 'not_found', /"a"/);
    unsubscribe();
    assert.deepEqual(heard, [['a'], ['b'], ['b', 'c'], ['a'], ['c']]);
    model.dispose();
  });
}

test('listModels keys every stored model by its backend scheme', async () => {
  const model = nn.sequential(nn.linear(2, 2), { seed: 1 });
  await save(model, 'indexeddb://same');
  await save(model, 'memory://same');
  assert.deepEqual(Object.keys(await listModels()).sort(), ['indexeddb://same', 'memory://same']);
  await removeModel('indexeddb://same');
  await removeModel('memory://same');
  model.dispose();
});

test('a storage URL must name a backend of the table and a model in it', async () => {
  const forms = /must look like 'indexeddb:\/\/name' or 'memory:\/\/name'/;
  await rejectsWith(modelInfo('indexeddb://'), 'invalid_argument', forms);
  await rejectsWith(removeModel('https://example.invalid/a.mkp'), 'invalid_argument', forms);
  await rejectsWith(copyModel('indexeddb://a', 42), 'invalid_argument', /^destination must look like/);
  await rejectsWith(moveModel('nowhere', 'memory://b'), 'invalid_argument', /^source must look like/);
});

test('copyModel and moveModel stay within one store', async () => {
  const model = nn.sequential(nn.linear(2, 2), { seed: 1 });
  await save(model, 'memory://m');
  await rejectsWith(copyModel('memory://m', 'indexeddb://m'), 'invalid_argument', /different storages/);
  await rejectsWith(moveModel('memory://m', 'indexeddb://m'), 'invalid_argument', /different storages/);
  assert.deepEqual(Object.keys(await listModels()), ['memory://m']);
  await removeModel('memory://m');
  model.dispose();
});
