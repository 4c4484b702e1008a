// server.test.mjs — the static server the browser tests rely on (and `npm start` serves the demo
// with): MIME types, / and folders, helpful 404s, no way out of the repository root, extra routes.
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
    ['/web/demo/index.html', /^text\/html; charset=utf-8$/],
    ['/web/demo/demo.js', /^text\/javascript; charset=utf-8$/],
    ['/web/demo/demo.css', /^text\/css; charset=utf-8$/],
    ['/scripts/serve.mjs', /^text\/javascript; charset=utf-8$/],
    ['/package.json', /^application\/json; charset=utf-8$/],
    ['/docs/demo.png', /^image\/png$/],
    // Markdown is text: the demo's "API reference" link shows docs/API.md instead of downloading it.
    ['/docs/API.md', /^text\/markdown; charset=utf-8$/],
    ['/README.md', /^text\/markdown; charset=utf-8$/],
  ];
  for (const [path, type] of cases) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.match(r.type, type, path);
  }
  const wasm = await get('/web/dist/modelkeep_wasm.wasm');
  assert.deepEqual([...wasm.body.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]);
});

test('/ leads to the demo, a folder to its index.html, and an unknown path to a page that says where the demo is', async () => {
  const root = await get('/');
  assert.equal(root.status, 302);
  assert.equal(root.headers.location, '/web/demo/');
  const demo = await get(root.headers.location);
  assert.equal(demo.status, 200);
  assert.match(demo.type, /^text\/html/);
  assert.match(demo.body.toString(), /<title>modelkeep demo/);

  // A folder without its slash: redirected, so that the page's relative links (demo.js) resolve.
  const folder = await get('/web/demo');
  assert.equal(folder.status, 301);
  assert.equal(folder.headers.location, '/web/demo/');
  // Never to another host: '/%2F/web/demo' is the folder web/demo here, but '///web/demo/' in a
  // Location header would name the host "web".
  const doubled = await get('/%2F/web/demo');
  assert.equal(doubled.status, 301);
  assert.equal(doubled.headers.location, '/web/demo/');

  const missing = await get('/no/such/page.html');
  assert.equal(missing.status, 404);
  assert.match(missing.type, /^text\/html; charset=utf-8$/);
  assert.match(missing.body.toString(), /Nothing is served at <code>\/no\/such\/page\.html<\/code>/);
  assert.match(missing.body.toString(), /<a href="\/web\/demo\/">/);
  // The path asked for is shown as text: no markup of the request's making reaches the page.
  const hostile = await get('/%3Cscript%3Ealert(1)%3C/script%3E%22%27&');
  assert.equal(hostile.status, 404);
  assert.ok(!hostile.body.toString().includes('<script>'), 'the path is escaped');
  assert.match(hostile.body.toString(), /&lt;script&gt;alert\(1\)&lt;\/script&gt;&quot;&#39;&amp;/);
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
