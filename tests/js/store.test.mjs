// Tests for web/src/store.js (and the plumbing it takes from storage.js) against fake-indexeddb:
// a fresh IDBFactory per test.
// Run: node --test tests/js/

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IDBDatabase, IDBFactory, IDBKeyRange, IDBObjectStore, IDBTransaction } from 'fake-indexeddb';
import { ModelError } from '../../web/src/errors.js';
import { requestPersistence, storageEstimate } from '../../web/src/storage.js';
import { openStore } from '../../web/src/store.js';

const MiB = 1024 * 1024;

// ---- helpers -----------------------------------------------------------------------------------

/** A store on a fresh in-memory IndexedDB, closed when the test ends. */
async function fresh(t, options = {}) {
  const factory = options.indexedDB ?? new IDBFactory();
  const store = await openStore({ IDBKeyRange, ...options, indexedDB: factory });
  t.after(() => store.close());
  return { store, factory };
}

/** Deterministic, position-dependent bytes (a shifted or truncated copy never compares equal). */
function bytesOf(length, seed = 1) {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Must reject with a ModelError carrying `code`; returns it for further checks. */
async function rejectsWith(promise, code) {
  let caught;
  await assert.rejects(promise, (err) => {
    caught = err;
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
  return caught;
}

/** Replaces object[key] for the rest of the test. */
function patch(t, object, key, make) {
  const original = object[key];
  object[key] = make(original);
  t.after(() => {
    object[key] = original;
  });
}

/** Sets globalThis.navigator for the rest of the test (Node 20 has none). */
function stubNavigator(t, value) {
  const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', { value, configurable: true, writable: true });
  t.after(() => {
    if (had) Object.defineProperty(globalThis, 'navigator', had);
    else delete globalThis.navigator;
  });
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** Runs `body(tx)` on a separate raw connection to the store's database, then closes it. */
async function raw(factory, mode, body) {
  const db = await request(factory.open('modelkeep', 1));
  try {
    const tx = db.transaction(['info', 'chunks'], mode);
    const result = await body(tx);
    await new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onabort = () => reject(tx.error);
    });
    return result;
  } finally {
    db.close();
  }
}

/** Every chunk key in the database, e.g. [['a', 0], ['a', 1]]. */
const chunkKeys = (factory) => raw(factory, 'readonly', (tx) => request(tx.objectStore('chunks').getAllKeys()));

/** Records every transaction and object store opened on any fake-indexeddb connection. */
function spyTransactions(t) {
  const calls = [];
  const stores = [];
  patch(
    t,
    IDBDatabase.prototype,
    'transaction',
    (original) =>
      function (names, mode, options) {
        const tx = original.call(this, names, mode, options);
        const call = { names: [names].flat(), mode: mode ?? 'readonly', options, completed: false };
        tx.addEventListener('complete', () => {
          call.completed = true;
        });
        calls.push(call);
        return tx;
      },
  );
  patch(
    t,
    IDBTransaction.prototype,
    'objectStore',
    (original) =>
      function (name) {
        stores.push(name);
        return original.call(this, name);
      },
  );
  return { calls, stores };
}

/** Resolves with the next change event a store reports (or rejects after 2 s). */
function nextChange(store) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no change event within 2 s')), 2000);
    const unsubscribe = store.onChange((event) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(event);
    });
  });
}

// ---- round trips -------------------------------------------------------------------------------

test('put/get round trip: empty, small, many chunks, exact multiple, a few MB', async (t) => {
  const cases = [
    { length: 0, chunkBytes: 1000, chunks: 0 },
    { length: 10, chunkBytes: undefined, chunks: 1 },
    { length: 5500, chunkBytes: 1000, chunks: 6 },
    { length: 3000, chunkBytes: 1000, chunks: 3 },
    { length: 3 * MiB + 17, chunkBytes: MiB, chunks: 4 },
    { length: 9 * MiB, chunkBytes: undefined, chunks: 2 }, // the default is 8 MiB
  ];
  for (const [i, { length, chunkBytes, chunks }] of cases.entries()) {
    const { store, factory } = await fresh(t, chunkBytes ? { chunkBytes } : {});
    const bytes = bytesOf(length, i + 1);
    await store.put('m', bytes, { format: 'mkp' });
    const back = await store.get('m');
    assert.ok(back instanceof Uint8Array);
    assert.equal(back.byteOffset, 0);
    assert.equal(back.buffer.byteLength, length, 'one contiguous buffer of exactly the bytes');
    assert.deepEqual(back, bytes, `length ${length}`);
    const info = await store.info('m');
    assert.equal(info.name, 'm');
    assert.equal(info.bytes, length);
    assert.equal(info.chunks, chunks);
    assert.equal(info.format, 'mkp');
    assert.equal(new Date(info.dateSaved).toISOString(), info.dateSaved);
    // Chunks are plain ArrayBuffers (not Blobs, not views of some larger buffer).
    const values = await raw(factory, 'readonly', (tx) => request(tx.objectStore('chunks').getAll()));
    assert.equal(values.length, chunks);
    for (const value of values) assert.ok(value instanceof ArrayBuffer);
    assert.equal(
      values.reduce((sum, value) => sum + value.byteLength, 0),
      length,
    );
  }
});

test('getChunks returns the stored chunks as they are, in order, without joining them', async (t) => {
  const { store } = await fresh(t, { chunkBytes: 1000 });
  const bytes = bytesOf(2500, 3);
  await store.put('m', bytes);
  const seen = [];
  const chunks = await store.getChunks('m', { onProgress: (p) => seen.push(p.loaded) });
  assert.deepEqual(
    chunks.map((c) => c.length),
    [1000, 1000, 500],
  );
  for (const c of chunks) {
    assert.ok(c instanceof Uint8Array);
    assert.equal(c.byteOffset, 0);
    assert.equal(c.buffer.byteLength, c.length, 'each chunk is a view of its own stored buffer, not of a joined copy');
  }
  assert.notEqual(chunks[0].buffer, chunks[1].buffer);
  assert.deepEqual(
    chunks.flatMap((c) => [...c]),
    [...bytes],
  );
  assert.deepEqual(seen, [1000, 2000, 2500]);
  await store.put('empty', new Uint8Array(0));
  assert.deepEqual(await store.getChunks('empty'), []);
  assert.deepEqual(await store.get('empty'), new Uint8Array(0));
  await rejectsWith(store.getChunks('ghost'), 'not_found');
  await rejectsWith(store.getChunks(''), 'invalid_argument');
});

test('put stores only the bytes a subarray view covers', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  const big = bytesOf(10_000);
  const view = big.subarray(1234, 3734); // 2500 bytes of a 10000-byte buffer
  await store.put('v', view);
  assert.deepEqual(await store.get('v'), view);
  const sizes = await raw(factory, 'readonly', async (tx) =>
    (await request(tx.objectStore('chunks').getAll())).map((value) => value.byteLength),
  );
  assert.deepEqual(sizes, [1000, 1000, 500]);
});

test('put given chunks stores one chunk each: whole buffers as they are, views copied', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  assert.equal(store.chunkBytes, 1000);
  const a = bytesOf(700, 1),
    b = bytesOf(1200, 2);
  const big = bytesOf(5000, 3);
  const view = big.subarray(100, 400); // 300 bytes of a 5000-byte buffer: only those are stored
  const seen = [];
  await store.put('c', [a, b, view], { format: 'mkp' }, { onProgress: (p) => seen.push(p.loaded) });
  assert.deepEqual(seen, [700, 1900, 2200]);
  const info = await store.info('c');
  assert.equal(info.bytes, 2200);
  assert.equal(info.chunks, 3);
  const sizes = await raw(factory, 'readonly', async (tx) =>
    (await request(tx.objectStore('chunks').getAll())).map((value) => value.byteLength),
  );
  assert.deepEqual(sizes, [700, 1200, 300]);
  assert.deepEqual(await store.get('c'), Uint8Array.from([...a, ...b, ...view]));
  assert.deepEqual(
    (await store.getChunks('c')).map((c) => c.length),
    [700, 1200, 300],
  );
  await rejectsWith(store.put('d', [a, 'nope']), 'invalid_argument');
  await rejectsWith(store.put('d', [a, new Uint16Array(2)]), 'invalid_argument');
  await rejectsWith(store.info('d'), 'not_found');
});

test('onProgress is called once per chunk for put and get', async (t) => {
  const { store } = await fresh(t, { chunkBytes: 1000 });
  const seen = { put: [], get: [] };
  await store.put('p', bytesOf(2500), {}, { onProgress: (p) => seen.put.push(p) });
  await store.get('p', { onProgress: (p) => seen.get.push(p) });
  const expected = [
    { loaded: 1000, total: 2500 },
    { loaded: 2000, total: 2500 },
    { loaded: 2500, total: 2500 },
  ];
  assert.deepEqual(seen.put, expected);
  assert.deepEqual(seen.get, expected);
  await rejectsWith(store.get('p', { onProgress: 5 }), 'invalid_argument');
});

test('the store writes info = caller info + name, bytes, chunks, dateSaved', async (t) => {
  const { store } = await fresh(t, { chunkBytes: 4 });
  const before = Date.now();
  const caller = { name: 'ignored', bytes: -1, arch: 'mlp', meta: { a: [1] } };
  const saved = await store.put('x', bytesOf(9), caller);
  const info = await store.info('x');
  assert.deepEqual(saved, info, 'put resolves to the record it wrote');
  assert.equal(caller.name, 'ignored', "the caller's object is not modified");
  assert.deepEqual(
    { ...info, dateSaved: undefined },
    { name: 'x', bytes: 9, chunks: 3, arch: 'mlp', meta: { a: [1] }, dateSaved: undefined },
  );
  assert.ok(Date.parse(info.dateSaved) >= before - 1000);
  await rejectsWith(store.put('x', bytesOf(1), { f() {} }), 'invalid_argument');
  assert.deepEqual(await store.get('x'), bytesOf(9), 'a rejected info leaves the model intact');
});

// ---- the transaction contract ------------------------------------------------------------------

test('each write is ONE strict readwrite transaction over both stores, done on complete', async (t) => {
  const { store } = await fresh(t, { chunkBytes: 100 });
  const { calls } = spyTransactions(t);
  const writes = {
    put: () => store.put('a', bytesOf(450)),
    copy: () => store.copy('a', 'b'),
    move: () => store.move('b', 'c'),
    remove: () => store.remove('c'),
  };
  for (const [op, run] of Object.entries(writes)) {
    calls.length = 0;
    await run();
    const readwrite = calls.filter((call) => call.mode === 'readwrite');
    assert.equal(readwrite.length, 1, `${op}: one readwrite transaction`);
    assert.deepEqual([...readwrite[0].names].sort(), ['chunks', 'info'], op);
    assert.equal(readwrite[0].options?.durability, 'strict', op);
    assert.ok(readwrite[0].completed, `${op} resolved only after 'complete'`);
  }
});

test('info and list never open the chunks store', async (t) => {
  const { store } = await fresh(t, { chunkBytes: 10 });
  await store.put('a', bytesOf(100), { kind: 'model' });
  await store.put('b', bytesOf(5));
  const { calls, stores } = spyTransactions(t);
  assert.equal((await store.info('a')).kind, 'model');
  const all = await store.list();
  assert.deepEqual(Object.keys(all).sort(), ['a', 'b']);
  assert.equal(all.a.bytes, 100);
  assert.equal(all.b.chunks, 1);
  assert.ok(calls.length >= 2);
  for (const call of calls) assert.deepEqual(call.names, ['info']);
  assert.ok(stores.length >= 2 && stores.every((name) => name === 'info'), stores.join());
  await store.get('a'); // control: the spy does see a chunks read
  assert.ok(stores.includes('chunks'));
});

test('list returns {} when empty and keeps odd names as own keys', async (t) => {
  const { store } = await fresh(t);
  assert.deepEqual(await store.list(), {});
  await store.put('__proto__', bytesOf(3));
  const all = await store.list();
  assert.ok(Object.hasOwn(all, '__proto__'));
  assert.equal(all.__proto__.bytes, 3);
});

test('put replaces a name, leaving no chunk of the old version', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('m', bytesOf(5500, 1), { version: 1 });
  await store.put('other', bytesOf(1500, 9));
  await store.put('m', bytesOf(1200, 2), { note: 'v2' });
  assert.deepEqual(await store.get('m'), bytesOf(1200, 2));
  const info = await store.info('m');
  assert.equal(info.version, undefined, 'the old info is replaced, not merged');
  assert.equal(info.note, 'v2');
  assert.deepEqual(await chunkKeys(factory), [
    ['m', 0],
    ['m', 1],
    ['other', 0],
    ['other', 1],
  ]);
});

test('copy duplicates, replaces an existing target, and is a no-op onto itself', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('src', bytesOf(2500, 1), { tag: 's' });
  await store.put('dst', bytesOf(4500, 2));
  await store.copy('src', 'dst');
  assert.deepEqual(await store.get('dst'), bytesOf(2500, 1));
  assert.deepEqual(await store.get('src'), bytesOf(2500, 1));
  const [src, dst] = [await store.info('src'), await store.info('dst')];
  assert.deepEqual({ ...dst, name: 'src' }, src);
  await store.copy('src', 'fresh');
  assert.deepEqual(await store.get('fresh'), bytesOf(2500, 1));
  await store.copy('src', 'src');
  assert.deepEqual(await store.get('src'), bytesOf(2500, 1));
  const keys = await chunkKeys(factory);
  assert.equal(keys.length, 9, JSON.stringify(keys)); // 3 each for dst, fresh, src
});

test('move renames: source gone, target has the bytes; onto itself is a no-op', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('a', bytesOf(3500, 1), { tag: 'a' });
  await store.put('b', bytesOf(6000, 2));
  await store.move('a', 'b');
  assert.deepEqual(await store.get('b'), bytesOf(3500, 1));
  assert.equal((await store.info('b')).tag, 'a');
  await rejectsWith(store.info('a'), 'not_found');
  assert.deepEqual(Object.keys(await store.list()), ['b']);
  assert.deepEqual(await chunkKeys(factory), [
    ['b', 0],
    ['b', 1],
    ['b', 2],
    ['b', 3],
  ]);
  await store.move('b', 'b');
  assert.deepEqual(await store.get('b'), bytesOf(3500, 1));
  await store.move('b', 'c');
  assert.deepEqual(await store.get('c'), bytesOf(3500, 1));
  assert.deepEqual(await chunkKeys(factory), [
    ['c', 0],
    ['c', 1],
    ['c', 2],
    ['c', 3],
  ]);
});

test('remove deletes the info and every chunk of that name only', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 100 });
  await store.put('a', bytesOf(250));
  await store.put('ab', bytesOf(150));
  await store.remove('a');
  await rejectsWith(store.get('a'), 'not_found');
  assert.deepEqual(Object.keys(await store.list()), ['ab']);
  assert.deepEqual(await chunkKeys(factory), [
    ['ab', 0],
    ['ab', 1],
  ]);
});

test('get/info/copy/move/remove of a missing name reject with not_found naming it', async (t) => {
  const { store } = await fresh(t);
  await store.put('here', bytesOf(4));
  const ops = {
    get: () => store.get('ghost'),
    info: () => store.info('ghost'),
    copy: () => store.copy('ghost', 'here'),
    move: () => store.move('ghost', 'here'),
    'move onto itself': () => store.move('ghost', 'ghost'),
    'copy onto itself': () => store.copy('ghost', 'ghost'),
    remove: () => store.remove('ghost'),
  };
  for (const [op, run] of Object.entries(ops)) {
    const err = await rejectsWith(run(), 'not_found');
    assert.match(err.message, /"ghost"/, op);
  }
  assert.deepEqual(await store.get('here'), bytesOf(4), 'a failed copy/move leaves the target');
});

test('names must be non-empty strings of at most 1024 characters', async (t) => {
  const { store } = await fresh(t);
  const ok = 'n'.repeat(1024);
  await store.put(ok, bytesOf(2));
  assert.deepEqual(await store.get(ok), bytesOf(2));
  for (const bad of ['', 'n'.repeat(1025), 42, null, undefined, {}]) {
    const ops = [
      () => store.put(bad, bytesOf(1)),
      () => store.get(bad),
      () => store.info(bad),
      () => store.copy(bad, 'x'),
      () => store.copy(ok, bad),
      () => store.move(bad, 'x'),
      () => store.move(ok, bad),
      () => store.remove(bad),
    ];
    for (const run of ops) await rejectsWith(run(), 'invalid_argument');
  }
  await rejectsWith(store.put('x', [1, 2, 3]), 'invalid_argument');
  await rejectsWith(store.put('x', new Uint16Array(2)), 'invalid_argument');
  await rejectsWith(store.put('x', bytesOf(1), null), 'invalid_argument');
  await rejectsWith(store.put('x', bytesOf(1), [1]), 'invalid_argument');
  await rejectsWith(openStore({ indexedDB: new IDBFactory(), IDBKeyRange, chunkBytes: 0 }), 'invalid_argument');
  assert.deepEqual(Object.keys(await store.list()), [ok]);
});

// ---- failures leave the previous version intact ------------------------------------------------

/** Makes the write of chunk number `which` (1-based) of every put fail with `fail(...)`. */
function failChunkPut(t, which, fail) {
  patch(
    t,
    IDBObjectStore.prototype,
    'put',
    (original) =>
      function (...args) {
        const [, key] = args;
        if (this.name === 'chunks' && key[1] === which - 1) return fail(this, original, args);
        return original.apply(this, args);
      },
  );
}

async function assertIntact(store, factory, name, bytes, keys) {
  assert.deepEqual(await store.get(name), bytes);
  assert.equal((await store.info(name)).bytes, bytes.length);
  assert.deepEqual(await chunkKeys(factory), keys);
}

test('a put whose 3rd chunk write throws leaves the previous version, no stray chunks', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('m', bytesOf(2500, 1), { v: 1 });
  const keys = await chunkKeys(factory);
  failChunkPut(t, 3, () => {
    throw new DOMException('disk on fire', 'UnknownError');
  });
  const err = await rejectsWith(store.put('m', bytesOf(5500, 2), { v: 2 }), 'io_error');
  assert.equal(err.cause.name, 'UnknownError');
  await assertIntact(store, factory, 'm', bytesOf(2500, 1), keys);
  assert.equal((await store.info('m')).v, 1);
  await rejectsWith(store.put('new', bytesOf(5500, 3)), 'io_error'); // a new name: nothing
  await rejectsWith(store.info('new'), 'not_found');
  assert.deepEqual(await chunkKeys(factory), keys);
});

test('a put whose transaction aborts midway leaves the previous version intact', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('m', bytesOf(2500, 1));
  const keys = await chunkKeys(factory);
  failChunkPut(t, 3, (objectStore, original, args) => {
    const req = original.apply(objectStore, args);
    objectStore.transaction.abort();
    return req;
  });
  await rejectsWith(store.put('m', bytesOf(5500, 2)), 'io_error');
  await assertIntact(store, factory, 'm', bytesOf(2500, 1), keys);
});

test('an onProgress that throws aborts the put', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('m', bytesOf(1500, 1));
  const keys = await chunkKeys(factory);
  const boom = new Error('listener failed');
  await assert.rejects(
    store.put(
      'm',
      bytesOf(4000, 2),
      {},
      {
        onProgress: ({ loaded }) => {
          if (loaded === 2000) throw boom;
        },
      },
    ),
    (err) => err === boom,
    'the error the callback threw, unchanged',
  );
  await assertIntact(store, factory, 'm', bytesOf(1500, 1), keys);
});

// ---- quota -------------------------------------------------------------------------------------

test('quota pre-check: put and copy fail fast with needed/available, writing nothing', async (t) => {
  let room = 100 * MiB;
  stubNavigator(t, { storage: { estimate: async () => ({ usage: 1000, quota: 1000 + room }) } });
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('small', bytesOf(2500, 1));
  const keys = await chunkKeys(factory);
  room = 5000;
  const { calls } = spyTransactions(t);
  const err = await rejectsWith(store.put('big', bytesOf(10_000)), 'quota_exceeded');
  assert.equal(err.details.available, 5000);
  assert.ok(err.details.needed >= 10_000, JSON.stringify(err.details));
  assert.equal(calls.filter((call) => call.mode === 'readwrite').length, 0, 'failed fast');
  const copyErr = await rejectsWith(store.copy('small', 'twin'), 'quota_exceeded');
  assert.equal(copyErr.details.available, 5000);
  assert.ok(copyErr.details.needed >= 2500);
  await rejectsWith(store.info('big'), 'not_found');
  await rejectsWith(store.info('twin'), 'not_found');
  assert.deepEqual(await chunkKeys(factory), keys);
  room = 100 * MiB;
  await store.put('big', bytesOf(10_000));
  assert.deepEqual(await store.get('big'), bytesOf(10_000));
});

test('a QuotaExceededError from the transaction becomes quota_exceeded, nothing half-written', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('m', bytesOf(2500, 1));
  const keys = await chunkKeys(factory);
  failChunkPut(t, 2, () => {
    throw new DOMException('quota', 'QuotaExceededError');
  });
  const err = await rejectsWith(store.put('m', bytesOf(4000, 2)), 'quota_exceeded');
  assert.equal(err.cause.name, 'QuotaExceededError');
  assert.ok(err.details.needed >= 4000);
  assert.equal(err.details.available, undefined, 'unknown without navigator.storage');
  await assertIntact(store, factory, 'm', bytesOf(2500, 1), keys);
});

test('a move or copy that fails midway leaves both source and target intact', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('a', bytesOf(2500, 1), { tag: 'a' });
  await store.put('b', bytesOf(1500, 2), { tag: 'b' });
  const keys = await chunkKeys(factory);
  failChunkPut(t, 2, () => {
    throw new DOMException('quota', 'QuotaExceededError');
  });
  const moveErr = await rejectsWith(store.move('a', 'b'), 'quota_exceeded');
  assert.equal(moveErr.details.needed, 2500);
  await rejectsWith(store.copy('a', 'b'), 'quota_exceeded');
  await rejectsWith(store.move('a', 'c'), 'quota_exceeded');
  assert.deepEqual(await store.get('a'), bytesOf(2500, 1));
  assert.deepEqual(await store.get('b'), bytesOf(1500, 2));
  assert.equal((await store.info('b')).tag, 'b');
  assert.deepEqual(Object.keys(await store.list()).sort(), ['a', 'b']);
  assert.deepEqual(await chunkKeys(factory), keys);
});

test('a QuotaExceededError reports what was needed, not the estimate that promised room', async (t) => {
  stubNavigator(t, { storage: { estimate: async () => ({ usage: 10, quota: 50 * MiB }) } });
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  await store.put('m', bytesOf(1000, 1));
  failChunkPut(t, 1, () => {
    throw new DOMException('quota', 'QuotaExceededError');
  });
  const err = await rejectsWith(store.put('m', bytesOf(3000, 2)), 'quota_exceeded');
  assert.equal(err.details.available, undefined);
  assert.ok(err.details.needed >= 3000);
  assert.match(err.message, /refused/);
  await assertIntact(store, factory, 'm', bytesOf(1000, 1), [['m', 0]]);
});

// ---- several tabs ------------------------------------------------------------------------------

test('onChange fires locally and in another store instance via BroadcastChannel', async (t) => {
  const factory = new IDBFactory();
  const { store: a } = await fresh(t, { indexedDB: factory });
  const { store: b } = await fresh(t, { indexedDB: factory });
  const local = [];
  const unsubscribe = a.onChange((event) => local.push(event));

  let remote = nextChange(b);
  await a.put('m', bytesOf(10));
  assert.deepEqual(await remote, { type: 'change', names: ['m'] });
  assert.deepEqual(local, [{ type: 'change', names: ['m'] }]);

  remote = nextChange(b);
  await a.move('m', 'n');
  assert.deepEqual(await remote, { type: 'change', names: ['m', 'n'] });
  assert.deepEqual(await b.get('n'), bytesOf(10), 'the other instance sees the data');

  remote = nextChange(a);
  await b.copy('n', 'o');
  assert.deepEqual(await remote, { type: 'change', names: ['o'] });

  unsubscribe();
  remote = nextChange(b);
  await a.remove('o');
  assert.deepEqual(await remote, { type: 'change', names: ['o'] });
  assert.equal(local.length, 3, 'no events after unsubscribe');
});

test('no change event for failed writes or no-op moves', async (t) => {
  const { store } = await fresh(t);
  await store.put('m', bytesOf(3));
  const events = [];
  store.onChange((event) => events.push(event));
  await rejectsWith(store.remove('ghost'), 'not_found');
  await store.move('m', 'm');
  assert.deepEqual(events, []);
});

test('one connection per factory, shared by every store on it', async (t) => {
  const factory = new IDBFactory();
  let opens = 0;
  patch(
    t,
    factory,
    'open',
    (original) =>
      function (...args) {
        opens++;
        return original.apply(this, args);
      },
  );
  const { store: a } = await fresh(t, { indexedDB: factory });
  const { store: b } = await fresh(t, { indexedDB: factory });
  await a.put('m', bytesOf(5));
  await b.get('m');
  await a.list();
  assert.equal(opens, 1);
});

test(
  'versionchange: the store closes its connection, so another tab can delete or upgrade',
  { timeout: 5000 },
  async (t) => {
    const factory = new IDBFactory();
    const opened = []; // closed after the test, so that a failure cannot leave the delete pending
    patch(
      t,
      factory,
      'open',
      (original) =>
        function (...args) {
          const req = original.apply(this, args);
          req.addEventListener('success', () => opened.push(req.result));
          return req;
        },
    );
    t.after(() => opened.forEach((db) => db.close()));
    const { store } = await fresh(t, { indexedDB: factory });
    await store.put('m', bytesOf(5));
    const deletion = factory.deleteDatabase('modelkeep');
    await new Promise((resolve, reject) => {
      deletion.onsuccess = resolve;
      deletion.onblocked = () => reject(new Error('the delete was blocked by our connection'));
    });
    assert.deepEqual(await store.list(), {}, 'the next call reopens a fresh database');
    await store.put('m', bytesOf(6));
    assert.deepEqual(await store.get('m'), bytesOf(6));
  },
);

test('an open stuck behind another tab rejects with storage_blocked, then recovers', { timeout: 5000 }, async (t) => {
  const factory = new IDBFactory();
  const other = await request(factory.open('modelkeep', 1)); // never closes on versionchange
  t.after(() => other.close());
  const deletion = factory.deleteDatabase('modelkeep'); // blocked by `other`
  const started = Date.now();
  await rejectsWith(openStore({ indexedDB: factory, IDBKeyRange, blockedTimeoutMs: 100 }), 'storage_blocked');
  assert.ok(Date.now() - started < 2000);
  other.close();
  await request(deletion);
  const { store } = await fresh(t, { indexedDB: factory });
  await store.put('m', bytesOf(3));
  assert.deepEqual(await store.get('m'), bytesOf(3));
});

test('writes hold the Web Lock modelkeep:write where navigator.locks exists', async (t) => {
  const held = [];
  let inside = false;
  stubNavigator(t, {
    locks: {
      async request(name, callback) {
        held.push(name);
        inside = true;
        try {
          return await callback();
        } finally {
          inside = false;
        }
      },
    },
  });
  const { store } = await fresh(t);
  let wroteInside;
  patch(
    t,
    IDBDatabase.prototype,
    'transaction',
    (original) =>
      function (names, mode, options) {
        if (mode === 'readwrite') wroteInside = inside;
        return original.call(this, names, mode, options);
      },
  );
  await store.put('a', bytesOf(3));
  assert.equal(wroteInside, true);
  await store.copy('a', 'b');
  await store.move('b', 'c');
  await store.remove('c');
  assert.deepEqual(held, Array(4).fill('modelkeep:write'));
  await store.get('a');
  await store.info('a');
  await store.list();
  assert.equal(held.length, 4, 'reads take no lock');
});

// ---- unavailable storage and damaged records ---------------------------------------------------

test('storage_unavailable when IndexedDB is missing, throws, or errors', async () => {
  await rejectsWith(openStore({ indexedDB: null, IDBKeyRange }), 'storage_unavailable');
  if (!globalThis.indexedDB) await rejectsWith(openStore(), 'storage_unavailable');
  const throwing = {
    open() {
      throw new DOMException('no', 'InvalidStateError');
    },
  };
  const err = await rejectsWith(openStore({ indexedDB: throwing, IDBKeyRange }), 'storage_unavailable');
  assert.equal(err.cause.name, 'InvalidStateError');
  const newer = new IDBFactory(); // a newer modelkeep already upgraded the database to version 2
  (await request(newer.open('modelkeep', 2))).close();
  const versionErr = await rejectsWith(openStore({ indexedDB: newer, IDBKeyRange }), 'storage_unavailable');
  assert.equal(versionErr.cause.name, 'VersionError');
  await rejectsWith(openStore({ indexedDB: new IDBFactory(), IDBKeyRange: null }), 'storage_unavailable');
});

test('a closed store rejects further calls and stops reporting changes', async (t) => {
  const { store } = await fresh(t);
  const events = [];
  store.onChange((event) => events.push(event));
  store.close();
  await rejectsWith(store.list(), 'storage_unavailable');
  await rejectsWith(store.put('m', bytesOf(1)), 'storage_unavailable');
  assert.deepEqual(events, []);
});

test('get reports corrupt_record when chunks do not match the info record', async (t) => {
  const { store, factory } = await fresh(t, { chunkBytes: 1000 });
  const damage = {
    'a middle chunk is missing': (chunks) => chunks.delete(['m', 1]),
    'the last chunk is missing': (chunks) => chunks.delete(['m', 2]),
    'a chunk is short': (chunks) => chunks.put(new ArrayBuffer(10), ['m', 1]),
    'an extra chunk': (chunks) => chunks.put(new ArrayBuffer(10), ['m', 3]),
    'a chunk is not an ArrayBuffer': (chunks) => chunks.put('text', ['m', 0]),
    'a gap hidden by an extra chunk of the same size': (chunks) => {
      chunks.delete(['m', 1]);
      chunks.put(new ArrayBuffer(1000), ['m', 3]);
    },
  };
  for (const [what, harm] of Object.entries(damage)) {
    await store.put('m', bytesOf(2500));
    await raw(factory, 'readwrite', (tx) => harm(tx.objectStore('chunks')));
    const err = await rejectsWith(store.get('m'), 'corrupt_record');
    assert.match(err.message, /"m"/, what);
  }
  await store.put('m', bytesOf(2500));
  await raw(factory, 'readwrite', (tx) => tx.objectStore('info').put({ name: 'm', bytes: 'x' }));
  await rejectsWith(store.get('m'), 'corrupt_record');
  await store.put('m', bytesOf(2500)); // a put repairs it, strays included
  assert.deepEqual(await store.get('m'), bytesOf(2500));
});

// ---- navigator.storage -------------------------------------------------------------------------

test('requestPersistence and storageEstimate without navigator.storage', async (t) => {
  stubNavigator(t, undefined);
  assert.equal(await requestPersistence(), false);
  assert.equal(await storageEstimate(), null);
  globalThis.navigator = {};
  assert.equal(await requestPersistence(), false);
  assert.equal(await storageEstimate(), null);
});

test('requestPersistence and storageEstimate with navigator.storage', async (t) => {
  let granted = true;
  const storage = {
    persisted: async () => false,
    persist: async () => granted,
    estimate: async () => ({ usage: 12, quota: 34, usageDetails: {} }),
  };
  stubNavigator(t, { storage });
  assert.equal(await requestPersistence(), true);
  granted = false;
  assert.equal(await requestPersistence(), false);
  assert.deepEqual(await storageEstimate(), { usage: 12, quota: 34 });
  storage.estimate = async () => ({});
  assert.equal(await storageEstimate(), null, 'an estimate without numbers is no estimate');
  storage.persist = async () => {
    throw new Error('denied');
  };
  storage.estimate = async () => {
    throw new Error('nope');
  };
  assert.equal(await requestPersistence(), false);
  assert.equal(await storageEstimate(), null);
});
