// load() and loadBytes() over HTTP, against a local node:http server that answers like a dev
// server: the model files it has, and its index.html (status 200) for every path it lacks.
// Run: node --test tests/js/
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';

import { ready, nn, ModelError, load, loadBytes } from '../../web/src/node.js';

await ready(); // the WebAssembly module, before the synchronous API

const page = '<!doctype html>\n<html><head><title>app</title></head><body><div id="app"></div></body></html>\n';
const model = nn.sequential(nn.linear(3, 5), { seed: 7 });
const bytes = model.toBytes();
let server;
let base;

before(async () => {
  server = createServer((request, response) => {
    const send = (status, type, body) => {
      response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      response.end(body);
    };
    if (request.url === '/models/tutorial.mkp') return send(200, 'application/octet-stream', bytes);
    if (request.url === '/gone.mkp') return send(404, 'text/plain', 'no such file');
    // No content-type to go by: the bytes say it (whitespace, any case).
    if (request.url === '/untyped.mkp') return send(200, 'application/octet-stream', `\r\n  <HTML lang="en"><body>`);
    if (request.url === '/untyped-doctype.pt') return send(200, 'application/octet-stream', `\uFEFF<!DOCTYPE html>`);
    return send(200, 'text/html; charset=utf-8', page); // the dev server's fallback
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  model.dispose();
  server.close();
});

async function rejectsWith(promise, code, ...patterns) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ModelError, `expected a ModelError, got ${err}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `${err.message} does not name ${p}`);
      else assert.match(err.message, p);
    }
    return true;
  });
}

test('a model file over HTTP loads', async () => {
  const again = await load(`${base}/models/tutorial.mkp`);
  assert.deepEqual(again.forward([[1, 2, 3]]).data, model.forward([[1, 2, 3]]).data);
  again.dispose();
});

test('an HTML page instead of a model file (text/html) is not_found, naming the URL', async () => {
  const url = `${base}/models/missing.mkp`;
  await rejectsWith(load(url), 'not_found', /HTML page/, /not a model file/, url);
  await rejectsWith(loadBytes(url), 'not_found', /HTML page/, /content-type is text\/html/);
  await rejectsWith(load(url, { architecture: 'fc1=Linear(3,5)' }), 'not_found', /HTML page/);
});

test('HTML bytes under another content-type are recognised too', async () => {
  for (const path of ['/untyped.mkp', '/untyped-doctype.pt']) {
    await rejectsWith(load(`${base}${path}`), 'not_found', /HTML page/, `${base}${path}`);
  }
});

test('HTTP 404 stays not_found, with the status', async () => {
  await rejectsWith(load(`${base}/gone.mkp`), 'not_found', /HTTP 404/);
});
