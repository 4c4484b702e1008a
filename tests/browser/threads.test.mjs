// threads.test.mjs — the optional pthreads build (web/dist-threads/, `npm run build:threads`)
// in a cross-origin-isolated page: it loads, uses the cores it says it uses, and predicts
// exactly what the single-threaded build predicts in Node, for float32 and compact weights,
// at batch 1 (GEMV split by output columns) and batch 9 (GEMM split by panels), also after an
// IndexedDB round trip; and trains (its one module holds the trainer) to the same weights.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { Model, Trainer, ready } from '../../web/src/node.js';
import { startServer, browserMissing, ensureWasmBuilt, launch, openPage, assertNoErrors } from './harness.mjs';

await ready();
const skip = browserMissing() ?? false;

// Large enough that every layer is split over the threads (parallel.hpp: ≥ 64K multiply-adds).
const spec = 'a=Linear(300,257),b=ReLU,c=Linear(257,130),d=GELU,e=Linear(130,10)';
const seed = 7;
const batches = [1, 9];
const input = (batch) => Float32Array.from({ length: batch * 300 }, (_, i) => Math.sin(i * 0.37) * 2);

let server;
before(async () => {
  if (skip) return;
  assert.ok(ensureWasmBuilt(undefined, { threads: true }), 'scripts/build-wasm.sh --threads failed');
  server = await startServer({ threads: true });
});
after(async () => {
  await server?.close();
});

test(
  'the pthreads build predicts bit for bit what the single-threaded build does',
  { skip, timeout: 120_000 },
  async () => {
    // Node, single-threaded (web/dist): the expected outputs.
    const expected = {};
    for (const dtype of ['f32', 'f16', 'int8']) {
      const m = Model.fromSpec(spec, { seed });
      if (dtype !== 'f32') m.setWeightDtype(dtype);
      for (const batch of batches)
        expected[`${dtype}/${batch}`] = Array.from(m.forward(input(batch), [batch, 300]).data);
      m.dispose();
    }

    const browser = await launch();
    try {
      const { page, errors } = await openPage(browser.context, server.url);
      const got = await page.evaluate(
        async ({ spec, seed, batches }) => {
          const { runtime } = await import('/web/src/runtime.js');
          const { Model, save, load } = window.mk;
          const input = (batch) => Float32Array.from({ length: batch * 300 }, (_, i) => Math.sin(i * 0.37) * 2);
          const out = {};
          for (const dtype of ['f32', 'f16', 'int8']) {
            let m = Model.fromSpec(spec, { seed });
            if (dtype !== 'f32') m.setWeightDtype(dtype);
            await save(m, `indexeddb://threads-${dtype}`);
            m.dispose();
            m = await load(`indexeddb://threads-${dtype}`);
            for (const batch of batches)
              out[`${dtype}/${batch}`] = Array.from(m.forward(input(batch), [batch, 300]).data);
            m.dispose();
          }
          return {
            isolated: globalThis.crossOriginIsolated,
            cores: navigator.hardwareConcurrency,
            threads: runtime().threadCount(),
            out,
          };
        },
        { spec, seed, batches },
      );
      assert.equal(got.isolated, true);
      assert.equal(got.threads, Math.min(got.cores, 4));
      for (const key of Object.keys(expected)) {
        const a = new Uint32Array(Float32Array.from(expected[key]).buffer);
        const b = new Uint32Array(Float32Array.from(got.out[key]).buffer);
        assert.deepEqual(b, a, `${key}: the threaded build's output differs`);
      }
      // Emscripten's one warning when the page's thread first waits for the workers.
      assertNoErrors(errors, [/Blocking on the main thread/]);
    } finally {
      await browser.close();
    }
  },
);

test(
  'the pthreads build trains to the weights the single-threaded build trains to, bit for bit',
  { skip, timeout: 120_000 },
  async () => {
    // Adam on a model every layer of which is split over the threads, 4 steps of batch 9,
    // a checkpoint in between (toBytes / Trainer.fromBytes), then 2 more steps.
    const run = async ({ Model, Trainer }) => {
      const x = Float32Array.from({ length: 9 * 300 }, (_, i) => Math.sin(i * 0.37) * 2);
      const y = Float32Array.from({ length: 9 }, (_, i) => i % 10);
      const model = Model.fromSpec('a=Linear(300,257),b=ReLU,c=Linear(257,130),d=GELU,e=Linear(130,10)', { seed: 7 });
      let trainer = await Trainer.create(model, { optimizer: 'adam(lr=0.01)', loss: 'cross_entropy', seed: 3 });
      const losses = [];
      for (let i = 0; i < 4; i++)
        losses.push(trainer.trainBatch({ data: x, shape: [9, 300] }, { data: y, shape: [9] }));
      const bytes = trainer.toBytes();
      trainer.dispose();
      model.dispose();
      trainer = await Trainer.fromBytes(bytes);
      for (let i = 0; i < 2; i++)
        losses.push(trainer.trainBatch({ data: x, shape: [9, 300] }, { data: y, shape: [9] }));
      const weights = Object.entries(trainer.model.stateDict()).map(([k, t]) => [k, Array.from(t.data)]);
      trainer.dispose();
      return { losses, weights };
    };
    const expected = await run({ Model, Trainer });

    const browser = await launch();
    try {
      const { page, errors } = await openPage(browser.context, server.url);
      const got = await page.evaluate(async (source) => {
        const { runtime } = await import('/web/src/runtime.js');
        // eslint-disable-next-line no-new-func
        const run = new Function(`return ${source}`)();
        return { threads: runtime().threadCount(), ...(await run(window.mk)) };
      }, run.toString());
      assert.ok(got.threads > 1 || (await page.evaluate(() => navigator.hardwareConcurrency)) === 1);
      assert.deepEqual(got.losses, expected.losses, 'the losses of the six steps');
      assert.equal(got.weights.length, expected.weights.length);
      for (const [i, [name, values]] of expected.weights.entries()) {
        assert.equal(got.weights[i][0], name);
        const a = new Uint32Array(Float32Array.from(values).buffer);
        const b = new Uint32Array(Float32Array.from(got.weights[i][1]).buffer);
        assert.deepEqual(b, a, `${name}: the threaded build trained to other weights`);
      }
      assertNoErrors(errors, [/Blocking on the main thread/]);
    } finally {
      await browser.close();
    }
  },
);
