// hostile.test.mjs — the attack shapes of tests/js/hostile_files.mjs in headless Chromium: each
// file, served over HTTP and given as bytes, is refused by fileInfo() and load() with its
// ModelError code, quickly and without growing the page's wasm heap past the file + 64 MiB, and
// the page's module still builds, runs and imports afterwards (tests/js/hostile.test.mjs: Node).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { ready, Model } from '../../web/src/node.js';
import * as files from '../js/hostile_files.mjs';
import { startServer, launch, openPage, assertNoErrors, browserMissing } from './harness.mjs';

const skip = browserMissing() ?? false;

const shapes = {
  dag: { make: () => files.moduleDag(64), code: 'limit_exceeded', message: 'module tree has more than' },
  strideZero: { make: () => files.strideZero([2 ** 17, 2 ** 17]), code: 'size_overflow', message: '(131072, 131072)' },
  strideZeroCapped: {
    make: () => files.strideZero([2 ** 14, 2 ** 14]),
    code: 'limit_exceeded',
    message: 'would hold 268435456 values',
  },
  zipBomb: { make: () => files.zipBomb(128), code: 'limit_exceeded', message: 'inflates to 134217728 bytes' },
  lyingZipBomb: { make: () => files.lyingZipBomb(128), code: 'corrupt_zip', message: 'expected 16 bytes', lists: true },
  sharedStorage: { make: () => files.sharedStorage(4096, 1 << 16), code: 'limit_exceeded', message: 'would hold' },
  noneFlood: { make: () => files.noneFlood(4 << 20), code: 'limit_exceeded', message: '(NONE)' },
  legacy: { make: () => files.legacyHugeStorage(1n << 40n, 16), code: 'truncated', message: 'declares 1099511627776' },
};

const spec = 'a=Linear(4,8),b=GELU,c=Linear(8,3)';
const input = Array.from({ length: 8 }, (_, i) => Math.cos(i) * 3);

let server;
before(async () => {
  if (skip) return;
  await ready();
  server = await startServer();
  for (const [name, shape] of Object.entries(shapes)) server.route(`/hostile/${name}.pt`, shape.make());
  server.route('/hostile/valid.pt', files.namedStateDict({ 'w.weight': [2, 2], 'w.bias': [2] }));
});
after(async () => {
  await server?.close();
});

test('the attack shapes are refused in the page, which stays alive', { skip, timeout: 120_000 }, async () => {
  // What the model computes in Node (the same seed gives the same weights in every build).
  const m = Model.fromSpec(spec, { seed: 5 });
  const expected = Array.from(m.forward(Float32Array.from(input), [2, 4]).data);
  m.dispose();

  const browser = await launch();
  try {
    const { page, errors } = await openPage(browser.context, server.url);
    const results = await page.evaluate(
      async ({ names, spec, input }) => {
        const { runtime } = await import('/web/src/runtime.js');
        const { Model, fileInfo, load, ready } = window.mk;
        await ready({ importer: true }); // PyTorch files: the importer module reads them (fileInfo is synchronous)
        const heap = () => runtime().HEAPU8.buffer.byteLength + runtime('importer').HEAPU8.buffer.byteLength;
        const alive = async () => {
          const model = Model.fromSpec(spec, { seed: 5 });
          const y = Array.from(model.forward(Float32Array.from(input), [2, 4]).data);
          model.dispose();
          const back = await load('/hostile/valid.pt', { architecture: 'w=Linear(2,2)' });
          const z = Array.from(back.forward([[1, 2]]).data);
          back.dispose();
          return { y, z };
        };
        const out = {};
        for (const name of names) {
          const url = `/hostile/${name}.pt`;
          const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
          const before = heap();
          const calls = {};
          for (const [call, run] of [
            ['fileInfo', async () => fileInfo(bytes)],
            ['fileInfo checkData', async () => fileInfo(bytes, { checkData: true })],
            ['load bytes', () => load(bytes, { architecture: 'w=Linear(2,2)' })],
            ['load url', () => load(url, { architecture: 'w=Linear(2,2)' })],
            ['load', () => load(bytes)],
          ]) {
            const start = performance.now();
            const r = await window.th.attempt(run());
            calls[call] = { ...r, value: undefined, ms: performance.now() - start };
          }
          out[name] = { size: bytes.length, grown: heap() - before, calls, alive: await alive() };
        }
        return out;
      },
      { names: Object.keys(shapes), spec, input },
    );

    for (const [name, shape] of Object.entries(shapes)) {
      const r = results[name];
      for (const [call, c] of Object.entries(r.calls)) {
        const what = `${name}: ${call}`;
        if (shape.lists && call === 'fileInfo') {
          assert.equal(c.ok, true, `${what}: lists the structure without reading the data`);
          continue;
        }
        assert.equal(c.ok, false, `${what}: accepted`);
        assert.equal(c.isModelError, true, `${what}: ${c.name} ${c.message}`);
        assert.equal(c.code, shape.code, `${what}: ${c.message}`);
        assert.ok(c.message.includes(shape.message), `${what}: ${c.message}`);
        // Chromium's processes share the cores with the test runner: 2 s here, Node's test holds 1 s.
        assert.ok(c.ms <= 2000, `${what}: took ${c.ms.toFixed(0)} ms`);
      }
      assert.ok(r.grown <= r.size + 64 * 2 ** 20, `${name}: the heap grew by ${(r.grown / 2 ** 20).toFixed(1)} MiB`);
      assert.deepEqual(r.alive.y, expected, `${name}: the page's model computes something else afterwards`);
      assert.deepEqual(r.alive.z, [2, 2], `${name}: a valid .pt no longer imports afterwards`);
    }
    assertNoErrors(errors);
  } finally {
    await browser.close();
  }
});
