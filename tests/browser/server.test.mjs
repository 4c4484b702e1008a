// server.test.mjs — the static server the browser tests rely on: MIME types, no way out of the
// repository root, extra routes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';

import { startServer } from '../../scripts/serve.mjs';
import { ensureWasmBuilt } from './harness.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.close();
});

/** A raw GET: the path is sent as written (no client-side normalisation of '..'). */
function get(path, port = server.port) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          type: res.headers['content-type'],
          headers: res.headers,
          body: Buffer.concat(parts),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

test('serves on 127.0.0.1 with the right MIME types', async () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const cases = [
    ['/web/src/index.js', /^text\/javascript/],
    ['/web/dist/modelkeep_wasm.mjs', /^text\/javascript/],
    ['/web/dist/modelkeep_wasm.wasm', /^application\/wasm$/],
    ['/tests/browser/page.html', /^text\/html/],
  ];
  for (const [path, type] of cases) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.match(r.type, type, path);
  }
  const wasm = await get('/web/dist/modelkeep_wasm.wasm');
  assert.deepEqual([...wasm.body.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]);
});

test('never serves anything outside the repository root', async () => {
  for (const path of [
    '/../../../../etc/passwd',
    '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '/web/..%2f..%2f..%2fetc/passwd',
    '/..%5c..%5cetc/passwd',
    '/web/%00',
    '/%zz',
  ]) {
    const r = await get(path);
    assert.ok([400, 403, 404].includes(r.status), `${path} gave ${r.status}`);
    assert.ok(!r.body.toString().includes('root:'), path);
  }
  assert.equal((await get('/web')).status, 404, 'directories are not listed');
  assert.equal((await get('/no/such/file.js')).status, 404);
});

test('routes serve arbitrary bytes, .mkp as application/octet-stream', async () => {
  const bytes = new Uint8Array([0, 1, 2, 255, 254]);
  server.route('/fixtures/x.mkp', bytes);
  try {
    const r = await get('/fixtures/x.mkp');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/octet-stream');
    assert.deepEqual([...r.body], [...bytes]);
  } finally {
    server.unroute('/fixtures/x.mkp');
  }
  assert.equal((await get('/fixtures/x.mkp')).status, 404);
});

test('threads: web/dist-threads/ served as web/dist/, every response cross-origin isolated', async () => {
  assert.ok(ensureWasmBuilt(undefined, { threads: true }), 'scripts/build-wasm.sh --threads failed');
  const isolated = await startServer({ threads: true });
  try {
    for (const path of [
      '/web/dist/modelkeep_wasm.mjs',
      '/web/dist/modelkeep_wasm.worker.js',
      '/web/src/index.js',
      '/nothing',
    ]) {
      const r = await get(path, isolated.port);
      assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', path);
      assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', path);
    }
    const threaded = await get('/web/dist/modelkeep_wasm.wasm', isolated.port);
    assert.deepEqual(
      threaded.body,
      readFileSync(new URL('../../web/dist-threads/modelkeep_wasm.wasm', import.meta.url)),
    );
    assert.equal((await get('/web/dist/modelkeep_wasm.worker.js', isolated.port)).status, 200);
  } finally {
    await isolated.close();
  }
  // The default server: the single-threaded build, no isolation headers.
  const plain = await get('/web/dist/modelkeep_wasm.wasm');
  assert.deepEqual(plain.body, readFileSync(new URL('../../web/dist/modelkeep_wasm.wasm', import.meta.url)));
  assert.equal(plain.headers['cross-origin-opener-policy'], undefined);
});
