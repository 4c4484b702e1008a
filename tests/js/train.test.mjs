// Training from JavaScript (web/src/train.js, worker.js; wasm/train_bindings.cpp): the step calls
// and fit train the same weights; fit reports progress, stops on an abort between batches and
// continues bit-identically; a checkpoint saved and loaded continues bit-identically; a model of
// the core moves to the importer and keeps working; each failure is its typed ModelError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ready, nn, Model, ModelError, Trainer, save, load, connectTrainer } from '../../web/src/node.js';
import { loadedModule, loadedModules } from '../../web/src/runtime.js';

await ready();
const dir = mkdtempSync(join(tmpdir(), 'modelkeep-train-'));

/** A repeatable classification set: n samples of 4 features, 3 classes. */
function dataset(n, seed) {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const x = new Float32Array(n * 4).map(() => rnd() * 2 - 1);
  const y = new Float32Array(n).map((_, i) => (x[i * 4] + x[i * 4 + 1] > 0 ? 1 : x[i * 4 + 2] > 0.3 ? 2 : 0));
  return { x: { data: x, shape: [n, 4] }, y: { data: y, shape: [n] } };
}

const net = () => nn.sequential(nn.linear(4, 8), nn.relu(), nn.linear(8, 3), { seed: 7 });

/** The model's weights as one byte string, to compare bit for bit. */
function weights(model) {
  const parts = Object.values(model.stateDict()).map((t) =>
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  );
  return Buffer.concat(parts);
}

/** Samples [begin, end) of a { data, shape } tensor. */
function rows(t, begin, end) {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return { data: t.data.slice(begin * per, end * per), shape: [end - begin, ...t.shape.slice(1)] };
}

const options = {
  optimizer: 'sgd(lr=0.1, momentum=0.9)',
  loss: 'cross_entropy',
  batchSize: 4,
  shuffle: false,
  seed: 3,
};

test('the step calls, trainBatch and fit train the same weights on the same batches', async () => {
  const { x, y } = dataset(10, 1);
  const [a, b, c] = [net(), net(), net()];
  const [ta, tb, tc] = await Promise.all([a, b, c].map((m) => Trainer.create(m, options)));
  const stepLosses = [];
  const batchLosses = [];
  for (let begin = 0; begin < 10; begin += 4) {
    const end = Math.min(begin + 4, 10);
    ta.zeroGrad();
    const out = ta.forward(rows(x, begin, end));
    assert.deepEqual(out.shape, [end - begin, 3]);
    stepLosses.push(ta.loss(rows(y, begin, end)));
    ta.backward();
    ta.step();
    batchLosses.push(tb.trainBatch(rows(x, begin, end), rows(y, begin, end)));
  }
  ta.endEpoch();
  tb.endEpoch();
  const fitLosses = [];
  const history = await tc.fit(x, y, { epochs: 1, onBatchEnd: ({ loss }) => fitLosses.push(loss) });
  assert.deepEqual(batchLosses, stepLosses);
  assert.deepEqual(fitLosses, stepLosses);
  assert.ok(weights(a).equals(weights(b)));
  assert.ok(weights(a).equals(weights(c)));
  assert.ok(!weights(a).equals(weights(net())), 'training changed the weights');
  for (const t of [ta, tb, tc]) {
    assert.equal(t.epoch, 1);
    assert.equal(t.steps, 3);
  }
  assert.deepEqual(history.epoch, [0]);
  assert.equal(history.stopped, false);
  // The epoch's loss: the batches' losses weighted by their samples.
  const mean = (stepLosses[0] * 4 + stepLosses[1] * 4 + stepLosses[2] * 2) / 10;
  assert.ok(Math.abs(history.history.loss[0] - mean) < 1e-6);
  for (const t of [ta, tb, tc]) t.dispose();
  for (const m of [a, b, c]) m.dispose();
});

test('a model of the core moves to the importer for training; the same Model object keeps working', async () => {
  const model = net();
  const before = model.forward([[1, 2, 3, 4]]).data;
  const trainer = await Trainer.create(model, options);
  assert.ok(loadedModules().includes('importer'));
  assert.equal(trainer.model, model);
  assert.deepEqual(model.forward([[1, 2, 3, 4]]).data, before, 'the move is lossless');
  trainer.trainBatch([[1, 2, 3, 4]], [2]);
  assert.notDeepEqual(model.forward([[1, 2, 3, 4]]).data, before, 'the model holds the trained weights');
  // A model already in the importer is used where it is.
  const again = await Trainer.create(model, options);
  assert.equal(again.model, model);
  again.dispose();
  trainer.dispose();
  assert.equal(model.disposed, false, 'a model given to create stays the caller’s');
  model.dispose();
});

test('a model imported from a .pt (already in the importer) trains where it is', async () => {
  const pt = readFileSync(new URL('../torch/files/tutorial_state.pt', import.meta.url));
  const model = await load(pt, { architecture: 'fc1=Linear(3,5)' });
  const before = weights(model);
  const trainer = await Trainer.create(model, { optimizer: 'sgd(lr=0.5)', loss: 'mse', seed: 1 });
  const loss = trainer.trainBatch([[1, 2, 3]], [[0, 0, 0, 0, 0]]);
  assert.ok(Number.isFinite(loss) && loss > 0);
  assert.ok(!weights(model).equals(before));
  assert.equal(model.source.format, 'torch-zip');
  trainer.dispose();
  model.dispose();
});

test('fit reports progress per batch and per epoch, with validation and accuracy', async () => {
  const { x, y } = dataset(20, 2);
  const model = net();
  const trainer = await Trainer.create(model, {
    ...options,
    optimizer: { type: 'adam', lr: 0.01, betas: [0.9, 0.99] },
  });
  assert.match(trainer.state().optimizer, /^adam\(lr=0\.01/i);
  const batches = [];
  const epochs = [];
  const history = await trainer.fit(x, y, {
    epochs: 3,
    validationSplit: 0.2,
    metrics: ['accuracy'],
    onBatchEnd: (b) => batches.push(b),
    onEpochEnd: (e) => epochs.push(e),
  });
  // 16 training samples in batches of 4: 4 batches per epoch.
  assert.equal(batches.length, 12);
  assert.deepEqual(
    batches.map((b) => [b.epoch, b.batch, b.batches]),
    [0, 1, 2].flatMap((e) => [0, 1, 2, 3].map((i) => [e, i, 4])),
  );
  assert.deepEqual(history.epoch, [0, 1, 2]);
  assert.deepEqual(Object.keys(history.history).sort(), ['accuracy', 'loss', 'valAccuracy', 'valLoss']);
  for (const [k, values] of Object.entries(history.history)) {
    assert.equal(values.length, 3, k);
    for (const v of values) assert.ok(Number.isFinite(v) && v >= 0, `${k}: ${v}`);
  }
  assert.deepEqual(
    epochs.map((e) => e.loss),
    history.history.loss,
  );
  // valLoss is evaluate() on the last 20% of the samples.
  const v = trainer.evaluate(rows(x, 16, 20), rows(y, 16, 20));
  assert.equal(v.loss, history.history.valLoss[2]);
  assert.equal(v.accuracy, history.history.valAccuracy[2]);
  // A regression loss has no accuracy.
  const reg = await Trainer.create(nn.sequential(nn.linear(4, 1), { seed: 1 }), { loss: 'mse', seed: 1 });
  assert.equal(reg.evaluate(x, { data: new Float32Array(20), shape: [20, 1] }).accuracy, null);
  reg.model.dispose();
  reg.dispose();
  trainer.dispose();
  model.dispose();
});

test('an abort stops fit between batches; the next fit continues bit-identically', async () => {
  const { x, y } = dataset(22, 3);
  const shuffled = {
    ...options,
    shuffle: true,
    optimizer: 'adam(lr=0.01)',
    scheduler: 'step_lr(step_size=1, gamma=0.5)',
  };
  const whole = net();
  const t1 = await Trainer.create(whole, shuffled);
  await t1.fit(x, y, { epochs: 2 });

  const parts = net();
  const t2 = await Trainer.create(parts, shuffled);
  const controller = new AbortController();
  let seen = 0;
  const first = await t2.fit(x, y, {
    epochs: 2,
    signal: controller.signal,
    onBatchEnd: () => {
      if (++seen === 3) controller.abort();
    },
  });
  assert.equal(first.stopped, true);
  assert.equal(t2.steps, 3, 'stopped after the batch that aborted');
  assert.equal(t2.epoch, 0);
  assert.deepEqual(first.epoch, []);
  // An aborted signal stops before any batch.
  assert.equal((await t2.fit(x, y, { signal: controller.signal })).stopped, true);
  assert.equal(t2.steps, 3);
  // The interrupted epoch is finished first and counts as one of the epochs.
  const rest = await t2.fit(x, y, { epochs: 2 });
  assert.deepEqual(rest.epoch, [0, 1]);
  assert.equal(t2.epoch, 2);
  assert.equal(t2.steps, t1.steps);
  assert.equal(t2.lr, t1.lr);
  assert.ok(weights(parts).equals(weights(whole)));
  for (const t of [t1, t2]) t.dispose();
  for (const m of [whole, parts]) m.dispose();
});

test('save(trainer, path, { training: true }) → load → continue: bit-identical to a run that never stopped', async () => {
  const { x, y } = dataset(18, 4);
  const run = { ...options, shuffle: true, optimizer: 'adamw(lr=0.02, amsgrad=true)', maxGradNorm: 1 };
  const whole = net();
  const t1 = await Trainer.create(whole, run);
  await t1.fit(x, y, { epochs: 3 });

  const first = net();
  const t2 = await Trainer.create(first, run);
  const controller = new AbortController();
  let seen = 0;
  await t2.fit(x, y, { epochs: 3, signal: controller.signal, onBatchEnd: () => ++seen === 7 && controller.abort() });
  t2.metadata = { note: 'mid-epoch', loss: '0.5' };
  const path = join(dir, 'run.mkp');
  const info = await save(t2, path, { training: true });
  assert.equal(info.training, true);
  assert.equal(info.kind, 'model');
  // The checkpoint is a model file too: load() without training gives the model.
  const plain = await load(path);
  assert.ok(weights(plain).equals(weights(first)));
  plain.dispose();

  const t3 = await load(path, { training: true });
  assert.ok(t3 instanceof Trainer);
  assert.deepEqual(t3.metadata, { note: 'mid-epoch', loss: '0.5' });
  const s2 = t2.state();
  const s3 = t3.state();
  for (const k of ['epoch', 'batch', 'steps', 'lr', 'optimizer', 'loss', 'seed', 'batchSize', 'shuffle', 'maxGradNorm'])
    assert.deepEqual(s3[k], s2[k], k);
  // Aborted in its second epoch: finishing it and one more makes the 3 of the whole run.
  assert.equal(s3.epoch, 1);
  await t3.fit(x, y, { epochs: 2 });
  assert.equal(t3.epoch, 3);
  assert.ok(weights(t3.model).equals(weights(whole)));

  // toBytes → Trainer.fromBytes, the same.
  const t4 = await Trainer.fromBytes(t2.toBytes());
  await t4.fit(x, y, { epochs: 2 });
  assert.ok(weights(t4.model).equals(weights(whole)));
  // A trainer that load() made owns its model.
  const owned = t4.model;
  t4.dispose();
  assert.equal(owned.disposed, true);
  for (const t of [t1, t2, t3]) t.dispose();
  for (const m of [whole, first]) m.dispose();
});

test('save(trainer, url) without training saves the model; a .safetensors checkpoint is refused', async () => {
  const model = net();
  const trainer = await Trainer.create(model, options);
  trainer.trainBatch([[1, 2, 3, 4]], [1]);
  const path = join(dir, 'model.mkp');
  const info = await save(trainer, path);
  assert.equal(info.training, undefined);
  const back = await load(path);
  assert.ok(weights(back).equals(weights(model)));
  await assert.rejects(load(path, { training: true }), (e) => {
    assert.equal(e.code, 'wrong_kind');
    assert.match(e.message, /Trainer\.create/);
    return true;
  });
  await assert.rejects(save(trainer, join(dir, 'x.safetensors'), { training: true }), (e) => {
    assert.equal(e.code, 'invalid_argument');
    assert.match(e.message, /\.pt\/\.pth/);
    return true;
  });
  await assert.rejects(save(model, join(dir, 'y.mkp'), { training: true }), { code: 'invalid_argument' });
  assert.ok(!existsSync(join(dir, 'x.safetensors')) && !existsSync(join(dir, 'y.mkp')));
  back.dispose();
  trainer.dispose();
  model.dispose();
});

const adam = {
  optimizer: 'adam(lr=0.01, weight_decay=0.01)',
  loss: 'cross_entropy',
  batchSize: 4,
  shuffle: false,
  seed: 3,
};

test('save(trainer, path.pt, { training: true }) → load(path, { training: true, architecture, loss }) continues bit-identically', async () => {
  const { x, y } = dataset(12, 5);
  const model = net();
  const t1 = await Trainer.create(model, adam);
  for (let b = 0; b < 12; b += 4) t1.trainBatch(rows(x, b, b + 4), rows(y, b, b + 4));
  t1.endEpoch();
  t1.trainBatch(rows(x, 0, 4), rows(y, 0, 4));
  const path = join(dir, 'run.pt');
  const info = await save(t1, path, { training: true });
  assert.equal(info.format, 'pt');
  assert.equal(info.training, true);
  assert.equal(info.architecture, model.architecture);
  assert.equal(readFileSync(path).subarray(0, 2).toString('latin1'), 'PK', 'a torch zip file');
  const architecture = model.architecture;

  // Adam and AdamW keep the same keys: the core asks to name it.
  await assert.rejects(load(path, { training: true, architecture, loss: 'cross_entropy' }), (e) => {
    assert.equal(e.code, 'invalid_argument');
    assert.match(e.message, /adamw/);
    return true;
  });
  const s1 = t1.state();
  assert.deepEqual(Object.keys(info.metadata), ['loss'], "the info's metadata is what the file holds");
  assert.equal(Number(info.metadata.loss), s1.lastLoss, "the last step's loss");
  const continued = [
    await load(path, { training: true, architecture, loss: 'cross_entropy', optimizer: 'adam', batchSize: 4 }),
    await Trainer.load(path, { architecture, loss: 'cross_entropy', optimizer: { type: 'adam' } }),
    await Trainer.load(t1.toBytes({ format: 'pt' }), { architecture, loss: 'cross_entropy', optimizer: 'adam' }),
  ];
  const next = [rows(x, 4, 8), rows(y, 4, 8)];
  const loss1 = t1.trainBatch(...next);
  for (const [i, t] of continued.entries()) {
    assert.ok(t instanceof Trainer, `${i}`);
    const s = t.state();
    assert.equal(s.epoch, 1, `${i}: the file's epoch`);
    assert.equal(s.optimizer, s1.optimizer, `${i}: the file's optimizer options`);
    assert.equal(s.loss, s1.loss);
    assert.equal(Number(s.metadata.loss), s1.lastLoss, `${i}: the last step's loss is the file's 'loss'`);
    // The same weights and optimizer state: the next step is bit-identical.
    assert.equal(t.trainBatch(...next), loss1, `${i}: loss`);
    assert.ok(weights(t.model).equals(weights(model)), `${i}: weights after one more step`);
    t.dispose();
  }
  // The 'loss' entry may be given (metadata.loss, a number); other metadata has no place in a .pt.
  const given = await Trainer.load(t1.toBytes({ format: 'pt', metadata: { loss: '0.25' } }), {
    architecture,
    loss: 'cross_entropy',
    optimizer: 'adam',
  });
  assert.equal(given.metadata.loss, '0.25');
  given.dispose();
  assert.throws(() => t1.toBytes({ format: 'pt', metadata: { loss: 'low' } }), { code: 'invalid_argument' });
  await assert.rejects(save(t1, join(dir, 'meta.pt'), { training: true, metadata: { note: 'x' } }), (e) => {
    assert.equal(e.code, 'invalid_argument');
    assert.match(e.message, /note/);
    return true;
  });
  assert.ok(!existsSync(join(dir, 'meta.pt')));
  t1.dispose();
  model.dispose();
});

test('load(x.pt, { training: true }): loss required, a model file is wrong_kind, the architecture needed', async () => {
  const model = net();
  const t = await Trainer.create(model, adam);
  t.trainBatch([[1, 2, 3, 4]], [1]);
  const ckpt = t.toBytes({ format: 'pt' });
  const architecture = model.architecture;
  await assert.rejects(Trainer.load(ckpt, { architecture, optimizer: 'adam' }), (e) => {
    assert.equal(e.code, 'invalid_argument');
    assert.match(e.message, /`loss`/);
    return true;
  });
  await assert.rejects(Trainer.load(ckpt, { loss: 'mse', optimizer: 'adam' }), { code: 'needs_architecture' });
  await assert.rejects(
    Trainer.load(ckpt, { architecture: 'Linear(4,5),ReLU,Linear(5,3)', loss: 'mse', optimizer: 'adam' }),
    {
      code: 'shape_mismatch',
    },
  );
  await assert.rejects(Trainer.load(ckpt, { architecture, loss: 'mse', optimizer: 'sgd(lr=0.1)' }), (e) => {
    assert.equal(e.code, 'invalid_argument');
    return true;
  });
  await assert.rejects(Trainer.load(ckpt, { architecture, loss: 'mse', optimizer: 'adam', entry: 'x' }), (e) => {
    assert.equal(e.code, 'invalid_argument');
    assert.match(e.message, /entry/);
    return true;
  });
  // A .pt holding the model only (save(model, 'm.pt')): no optimizer state to continue.
  const path = join(dir, 'weights.pt');
  await save(model, path);
  await assert.rejects(load(path, { training: true, architecture, loss: 'mse' }), (e) => {
    assert.equal(e.code, 'wrong_kind');
    assert.match(e.message, /Trainer\.create/);
    return true;
  });
  t.dispose();
  model.dispose();
});

/** A double as Python's float.hex() reads it: '0x1.8000000000000p-1' (float.fromhex). */
function hex(v) {
  if (v === 0) return Object.is(v, -0) ? '-0x0p+0' : '0x0p+0';
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const sign = hi >>> 31 ? '-' : '';
  const exponent = ((hi >>> 20) & 0x7ff) - 1023; // float32 values are normal doubles
  const mantissa = (hi & 0xfffff).toString(16).padStart(5, '0') + lo.toString(16).padStart(8, '0');
  return `${sign}0x1.${mantissa}p${exponent >= 0 ? '+' : ''}${exponent}`;
}

const torchPython = '/usr/bin/python3';
const hasTorch =
  existsSync(torchPython) && spawnSync(torchPython, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

test(
  "a .pt saved from JavaScript resumes in real PyTorch: its next step is modelkeep's, bit for bit",
  { skip: hasTorch ? false : `needs ${torchPython} with torch (python3-torch) for tests/torch/check_checkpoint.py` },
  async () => {
    const { x } = dataset(8, 6);
    const model = net();
    const t = await Trainer.create(model, { optimizer: 'adam(lr=0.01, weight_decay=0.01)', loss: 'mse', seed: 1 });
    const target = { data: new Float32Array(8 * 3).map((_, i) => Math.sin(i)), shape: [8, 3] };
    t.trainBatch(x, target);
    t.trainBatch(x, target);
    t.endEpoch();
    const file = join(dir, 'to-torch.pt');
    await save(t, file, { training: true });
    const { epoch, lastLoss } = t.state();
    // One more step with gradients exactly 0 (the MSE loss against the model's own output), which
    // check_checkpoint.py then gives PyTorch's optimizer: Adam's moments and weight decay still move it.
    t.zeroGrad();
    t.loss(t.forward(x));
    t.backward();
    t.step();
    const after = Object.values(model.stateDict());
    const cases = {
      cases: [
        {
          file,
          spec: model.architecture,
          optimizer: 'adam',
          epoch,
          loss: hex(lastLoss),
          grads: after.map((p) => Array.from(p.data, () => '0x0p+0')),
          next: after.map((p) => Array.from(p.data, hex)),
        },
      ],
    };
    const json = join(dir, 'to-torch.json');
    writeFileSync(json, JSON.stringify(cases));
    const script = new URL('../torch/check_checkpoint.py', import.meta.url).pathname;
    const r = spawnSync(torchPython, [script, json], { encoding: 'utf8' });
    assert.equal(r.status, 0, `check_checkpoint.py:\n${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /FAIL/);
    t.dispose();
    model.dispose();
  },
);

test('a damaged checkpoint is a typed error, never a crash: every truncation, every byte flipped', async () => {
  const model = net();
  const trainer = await Trainer.create(model, {
    ...options,
    optimizer: 'adam(lr=0.01, amsgrad=true)',
    scheduler: 'step_lr(step_size=2)',
  });
  const { x, y } = dataset(10, 8);
  await trainer.fit(x, y, { epochs: 1 });
  trainer.metadata = { note: 'hostile' };
  const good = trainer.toBytes();
  for (let n = 0; n < good.length; n++) {
    await assert.rejects(Trainer.fromBytes(good.subarray(0, n)), (e) => e instanceof ModelError, `truncated to ${n}`);
  }
  let refused = 0;
  for (let i = 0; i < good.length; i++) {
    const bad = good.slice();
    bad[i] ^= 0x5a;
    try {
      (await Trainer.fromBytes(bad)).dispose();
    } catch (e) {
      assert.ok(e instanceof ModelError, `byte ${i}: ${e}`);
      refused++;
    }
  }
  // Every byte is under a CRC, a magic or a check (checkpoint.hpp): none loads.
  assert.equal(refused, good.length);
  // The module lives on: the good bytes still resume.
  const back = await Trainer.fromBytes(good);
  assert.deepEqual(back.state().steps, trainer.state().steps);
  back.dispose();
  trainer.dispose();
  model.dispose();
});

test('save(trainer, indexeddb://…, { training: true }) stores the checkpoint in chunks; load resumes it', async () => {
  await import('fake-indexeddb/auto');
  const model = net();
  const trainer = await Trainer.create(model, { ...options, seed: 9 });
  trainer.trainBatch([[1, 2, 3, 4]], [1]);
  const info = await save(trainer, 'indexeddb://run', { training: true, metadata: { file: 'meta' } });
  assert.equal(info.training, true);
  assert.deepEqual(info.metadata, { file: 'meta' });
  const back = await load('indexeddb://run', { training: true });
  assert.ok(weights(back.model).equals(weights(model)));
  assert.equal(back.steps, 1);
  assert.ok(Buffer.from(back.toBytes()).equals(Buffer.from(trainer.toBytes())));
  back.dispose();
  trainer.dispose();
  model.dispose();
});

test('errors: needs_f32, invalid_hyperparameter, target_out_of_range, disposed; the trainer stays usable', async () => {
  const compact = net();
  compact.setWeightDtype('f16');
  await assert.rejects(Trainer.create(compact, options), { code: 'needs_f32' });
  compact.dispose();

  const model = net();
  for (const bad of [
    { optimizer: 'adam(lr=-1)' },
    { optimizer: 'nosuch' },
    { optimizer: { type: 'sgd' } }, // sgd's lr is required
    { loss: 'cross_entropy(label_smoothing=2)' },
    { scheduler: 'step_lr' }, // step_size is required
    { batchSize: 0 },
    { batchSize: 1.5 },
    { maxGradNorm: -1 },
    { shuffle: 'yes' },
    { learningRate: 0.1 }, // not an option
    { optimizer: { type: 'adam', 'lr=5, eps': 1 } }, // not a keyword
    { optimizer: { type: 'adam', lr: Infinity } },
    { optimizer: { type: 'adam', lr: '0.1' } }, // a string that is no name
  ]) {
    await assert.rejects(Trainer.create(model, { ...options, ...bad }), (e) => {
      assert.ok(e instanceof ModelError, JSON.stringify(bad));
      assert.equal(e.code, 'invalid_hyperparameter', JSON.stringify(bad));
      return true;
    });
  }
  const trainer = await Trainer.create(model, options);
  assert.throws(() => trainer.trainBatch([[1, 2, 3, 4]], [7]), { code: 'target_out_of_range' });
  assert.throws(() => trainer.trainBatch([[1, 2, 3]], [1]), { code: 'shape_mismatch' });
  assert.throws(() => trainer.forward(new Float32Array(4)), { code: 'invalid_input' });
  // The bindings check a shape against the values before anything is allocated.
  assert.throws(() => trainer.forward(new Float32Array(4), [2, 4]), { code: 'shape_mismatch' });
  assert.throws(() => trainer.forward(new Float32Array(4), [2 ** 27, 2 ** 27]), { code: 'size_overflow' });
  assert.throws(() => trainer.forward(new Float32Array(4), [1, 1, 1, 1, 1, 1, 1, 1, 4]), { code: 'invalid_input' });
  assert.throws(() => trainer.trainBatch([[1, 2, 3, 4]], [1, 2]), { code: 'shape_mismatch' });
  // PyTorch's order: a loss needs a forward, backward a loss.
  const fresh = await Trainer.create(model, options);
  assert.throws(() => fresh.loss([1]), { code: 'invalid_argument' });
  fresh.forward([[1, 2, 3, 4]]);
  assert.throws(() => fresh.backward(), { code: 'invalid_argument' });
  fresh.dispose();
  await assert.rejects(trainer.fit([[1, 2, 3, 4]], [1], { yieldEvery: -1 }), { code: 'invalid_argument' });
  await assert.rejects(trainer.fit([[1, 2, 3, 4]], [1], { batchSize: 5 }), { code: 'invalid_argument' });
  await assert.rejects(trainer.fit([[1, 2, 3, 4]], [1, 2]), { code: 'shape_mismatch' });
  assert.throws(() => (trainer.lr = -1), { code: 'invalid_hyperparameter' });
  assert.throws(() => (trainer.metadata = { n: 1 }), { code: 'invalid_argument' });
  // Still usable after each failure.
  assert.ok(Number.isFinite(trainer.trainBatch([[1, 2, 3, 4]], [2])));
  trainer.lr = 0.05;
  assert.equal(trainer.lr, 0.05);
  trainer.eval();
  assert.equal(trainer.training, false);
  trainer.train();
  assert.equal(trainer.training, true);
  model.dispose();
  assert.throws(() => trainer.step(), { code: 'disposed' });
  trainer.dispose();
  assert.throws(() => trainer.state(), { code: 'disposed' });
  trainer.dispose(); // twice is fine
});

test('a warm batch makes no allocation in wasm (operator new counted), nor grows the heap', async () => {
  const { x, y } = dataset(68, 5); // 8 batches of 8 and a short one of 4 per epoch
  const model = nn.sequential(nn.linear(4, 64), nn.relu(), nn.dropout(0.1), nn.linear(64, 3), { seed: 2 });
  const trainer = await Trainer.create(model, { ...options, optimizer: 'adam', shuffle: true, batchSize: 8 });
  const m = loadedModule('importer');
  const news = () => m.abi.raw._mk_new_count();
  await trainer.fit(x, y, { epochs: 1 }); // warms every batch shape
  // Counted at each batch's end: from one batch to the next (across epochs too) nothing.
  const counts = [];
  const heap = m.HEAPU8.length;
  await trainer.fit(x, y, { epochs: 20, onBatchEnd: () => counts.push(news()) });
  assert.equal(counts.length, 20 * 9);
  assert.deepEqual(new Set(counts.slice(1).map((c, i) => c - counts[i])), new Set([0]));
  assert.equal(m.HEAPU8.length, heap);
  let before;
  // The step calls on a shape seen before allocate nothing either.
  const xb = rows(x, 0, 8);
  const yb = rows(y, 0, 8);
  const steps = () => {
    trainer.zeroGrad();
    trainer.forward(xb);
    trainer.loss(yb);
    trainer.backward();
    trainer.step();
  };
  trainer.trainBatch(xb, yb);
  steps(); // the first forward sizes its output
  before = news();
  for (let i = 0; i < 50; i++) trainer.trainBatch(xb, yb);
  for (let i = 0; i < 10; i++) steps();
  assert.equal(news() - before, 0);
  // The counter counts: a new shape allocates.
  trainer.trainBatch(rows(x, 0, 3), rows(y, 0, 3));
  assert.ok(news() > before);
  trainer.dispose();
  model.dispose();
});

test('fit yields to the event loop (a macrotask) while it runs', async () => {
  const { x, y } = dataset(64, 6);
  const model = net();
  const trainer = await Trainer.create(model, { ...options, batchSize: 1 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  await trainer.fit(x, y, { epochs: 10, yieldEvery: 0 });
  clearInterval(timer);
  assert.ok(ticks > 0, 'a timer ran during fit');
  trainer.dispose();
  model.dispose();
});

/** A hex float as make_training_golden.py writes it ('-0x1.2d9d48p-3', float.hex()). */
function hexFloat(text) {
  const m = /^([+-]?)0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)$/i.exec(text);
  if (!m) throw new Error(`not a hex float: ${text}`);
  const digits = m[3] ?? '';
  const v = parseInt(m[2] + digits, 16) * 2 ** (Number(m[4]) - 4 * digits.length);
  return m[1] === '-' ? -v : v;
}

/** The cases of a make_training_golden.py file: [{ name, opts: Map, tensors: Map(label → { shape, data }) }]. */
function goldenCases(text) {
  const cases = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const [word, ...rest] = lines[i].trim().split(/\s+/);
    if (word === 'case') cases.push({ name: rest[0], opts: new Map(), tensors: new Map() });
    else if (word === 'opt') cases.at(-1).opts.set(rest[0], rest[1]);
    else if (word === 'tensor') {
      const shape = rest.slice(2, 2 + Number(rest[1])).map(Number);
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      let at = 0;
      while (at < data.length) for (const v of lines[++i].trim().split(/\s+/)) data[at++] = hexFloat(v);
      cases.at(-1).tensors.set(rest[0], { shape, data });
    }
  }
  return cases;
}

/** Fails naming the first value of `ours` farther than rel × the largest |value| of `torch`. */
function assertClose(what, ours, torch, rel) {
  const scale = Math.max(...Array.from(torch, Math.abs));
  for (let i = 0; i < torch.length; i++) {
    assert.ok(Math.abs(ours[i] - torch[i]) <= rel * scale, `${what}[${i}]: ours ${ours[i]}, torch ${torch[i]}`);
  }
}

test("golden: the wasm trainer follows PyTorch's loop (tests/golden/trainer/mlp.txt)", async (t) => {
  const file = new URL('../golden/trainer/mlp.txt', import.meta.url);
  if (!existsSync(file)) {
    t.skip('tests/golden/trainer/mlp.txt is not in this tree yet (written by make_trainer_golden.py)');
    return;
  }
  const cases = goldenCases(readFileSync(file, 'utf8'));
  assert.ok(cases.length >= 3);
  // As tests/test_trainer.cpp: not bit-exact (the gradients' sums run in another order than
  // PyTorch's, and each step feeds the next), within 1e-5 of each tensor's largest magnitude.
  const tolerance = 1e-5;
  for (const c of cases) {
    const opt = (k) => c.opts.get(k);
    const num = (k) => hexFloat(opt(k));
    const model = nn.sequential(nn.linear(4, 8), nn.tanh(), nn.linear(8, 3), { seed: 1 });
    const keys = ['0.weight', '0.bias', '2.weight', '2.bias'];
    model.loadStateDict(Object.fromEntries(keys.map((k, i) => [k, c.tensors.get(`param${i}`)])));
    const optimizer = { type: opt('optimizer'), lr: num('lr') };
    for (const k of ['momentum', 'weight_decay']) if (c.opts.has(k)) optimizer[k] = num(k);
    if (c.opts.has('nesterov')) optimizer.nesterov = opt('nesterov') === 'true';
    const trainer = await Trainer.create(model, {
      optimizer,
      loss: opt('loss'),
      scheduler: c.opts.has('step_size') ? { type: 'step_lr', step_size: num('step_size'), gamma: num('gamma') } : null,
      maxGradNorm: num('max_grad_norm'),
      batchSize: num('batch_size'),
      shuffle: false,
      seed: 0,
    });
    const losses = [];
    await trainer.fit(c.tensors.get('x'), c.tensors.get('target'), {
      epochs: num('epochs'),
      onBatchEnd: ({ loss }) => losses.push(loss),
    });
    assertClose(`${c.name} loss`, losses, c.tensors.get('loss').data, tolerance);
    const sd = model.stateDict();
    keys.forEach((k, i) => assertClose(`${c.name} ${k}`, sd[k].data, c.tensors.get(`final${i}`).data, tolerance));
    trainer.dispose();
    model.dispose();
  }
});

test('a Web Worker driver: serveTrainer / connectTrainer over worker_threads', async () => {
  const entry = new URL('../../web/src/node.js', import.meta.url).href;
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     import(${JSON.stringify(entry)}).then((m) => m.serveTrainer(parentPort));`,
    { eval: true },
  );
  try {
    const remote = connectTrainer(worker);
    const state = await remote.create({ spec: 'Linear(4,8),ReLU,Linear(8,3)', modelSeed: 7, ...options });
    assert.equal(state.epoch, 0);
    assert.equal(state.batchSize, 4);
    const { x, y } = dataset(12, 7);
    const epochs = [];
    const history = await remote.fit(rows(x, 0, 12), rows(y, 0, 12), { epochs: 2, onEpochEnd: (e) => epochs.push(e) });
    assert.deepEqual(history.epoch, [0, 1]);
    assert.deepEqual(
      epochs.map((e) => e.epoch),
      [0, 1],
    );
    // The same run in this thread gives the same weights.
    const local = net();
    const t = await Trainer.create(local, options);
    await t.fit(x, y, { epochs: 2 });
    const sd = await remote.stateDict();
    assert.ok(Buffer.concat(Object.values(sd).map((e) => Buffer.from(e.data.buffer))).equals(weights(local)));
    const out = await remote.predict([[1, 2, 3, 4]]);
    assert.deepEqual(out.data, local.forward([[1, 2, 3, 4]]).data);
    // An abort from the page stops the worker's fit between batches: the worker sees the message
    // when it yields (here after every batch; by default after ~16 ms of batches).
    const controller = new AbortController();
    let batches = 0;
    const stopped = await remote.fit(rows(x, 0, 12), rows(y, 0, 12), {
      epochs: 1000,
      yieldEvery: 0,
      signal: controller.signal,
      onBatchEnd: () => ++batches === 2 && controller.abort(),
    });
    assert.equal(stopped.stopped, true);
    assert.ok((await remote.state()).epoch < 1000);
    assert.deepEqual(await remote.setMetadata({ run: 'w' }), { run: 'w' });
    const path = join(dir, 'worker.mkp');
    await remote.save(path, { training: true });
    const resumed = await Trainer.load(path);
    assert.deepEqual(resumed.metadata, { run: 'w' });
    assert.equal(resumed.steps, (await remote.state()).steps);
    // A PyTorch general checkpoint both ways, its options passed on to the worker.
    const before = await remote.state();
    const flat = (d) => Buffer.concat(Object.values(d).map((e) => Buffer.from(e.data.buffer)));
    const weightsBefore = flat(await remote.stateDict());
    const pt = join(dir, 'worker.pt');
    assert.equal((await remote.save(pt, { training: true })).format, 'pt');
    const fromPt = await remote.load(pt, { architecture: 'Linear(4,8),ReLU,Linear(8,3)', loss: 'cross_entropy' });
    assert.equal(fromPt.optimizer, before.optimizer, 'SGD: told by its keys, no optimizer option needed');
    assert.equal(fromPt.epoch, before.epoch);
    assert.ok(flat(await remote.stateDict()).equals(weightsBefore));
    await assert.rejects(remote.create({ spec: 'Linear(4,3)', optimizer: 'adam(lr=-1)' }), {
      name: 'ModelError',
      code: 'invalid_hyperparameter',
    });
    await remote.dispose();
    await assert.rejects(remote.state(), { code: 'invalid_argument' });
    resumed.dispose();
    t.dispose();
    local.dispose();
  } finally {
    await worker.terminate();
  }
});

test('a trainer worker that fails rejects every call (disposed), none hangs', async () => {
  const worker = new Worker('throw new Error("no trainer here")', { eval: true });
  const remote = connectTrainer(worker);
  const pending = remote.state();
  await assert.rejects(
    pending,
    (e) => e instanceof ModelError && e.code === 'disposed' && /no trainer here/.test(e.message),
  );
  await assert.rejects(remote.create({ spec: 'Linear(4,3)' }), { code: 'disposed' });
  await worker.terminate();
});
