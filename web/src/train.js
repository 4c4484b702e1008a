// train.js — training a Model in the page (or a Web Worker: worker.js), PyTorch's loop
// (core/trainer.hpp) behind a small API:
//   const trainer = await Trainer.create(model, { optimizer: 'adam(lr=0.01)', loss: 'cross_entropy' });
//   const history = await trainer.fit(x, y, { epochs: 5, onEpochEnd });   // or the step calls
//   await save(trainer, 'indexeddb://run', { training: true });            // io.js
//   const again = await load('indexeddb://run', { training: true });       // a Trainer, resumed
//   await save(trainer, 'run.pt', { training: true });                      // PyTorch's general checkpoint
//   const more = await load('run.pt', { training: true, architecture, loss: 'cross_entropy', optimizer: 'adam' });
// The trainer lives in the importer module (runtime.js): Trainer.create loads it (once) and, for a
// model of the core module, moves the model there (as .mkp bytes, lossless; the same Model object
// keeps working, its handle now the importer's). A fit copies its data set into wasm once, then
// makes one call per batch, yielding to the event loop (a macrotask) at least every ~16 ms of work.
// Must: check a Model, a shape or an option before any wasm call is made with it; never call the
// wasm trainer after its model was disposed (it refers to the model's memory); leave the trainer
// usable after any error or an abort.
import { ModelError, check } from './errors.js';
import { load, storing, useTrainer } from './io.js';
import { Model, fromChunks, fromNested, moveTo, withImporter } from './model.js';
import { module } from './runtime.js';

// Safety net for trainers that are never disposed; dispose() is still the rule.
const registry =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((handle) => handle.delete()) : null;

/** The key io.js's save() looks for: a Trainer's checkpoint saver. */
export const checkpointOf = Symbol.for('modelkeep.checkpoint');

const OPTIONS = ['optimizer', 'loss', 'scheduler', 'schedulerPerBatch', 'maxGradNorm', 'seed', 'batchSize', 'shuffle'];

function bad(message) {
  return new ModelError('invalid_hyperparameter', message);
}

/** camelCase → PyTorch's snake_case keyword names (weightDecay → weight_decay; T_max stays). */
const snake = (k) =>
  k
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/^t_max$/, 'T_max');

/** One keyword value as the option text the core parses (trainer.hpp: "options as text"). */
function valueText(key, v) {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw bad(`option ${key} must be a finite number, got ${String(v)}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string' && /^[A-Za-z_]+$/.test(v)) return v;
  if (Array.isArray(v) || ArrayBuffer.isView(v)) {
    const items = Array.from(v, (x) => valueText(key, x));
    return key === 'betas' ? `(${items.join(', ')})` : `[${items.join(', ')}]`;
  }
  throw bad(`option ${key} must be a number, a boolean, a name or a list of numbers, got ${String(v)}`);
}

/**
 * An optimizer, loss or scheduler given as text ('adam(lr=0.01)') or as an object
 * ({ type: 'adam', lr: 0.01, betas: [0.9, 0.99] }) → its text.
 */
export function optionText(what, v) {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof v.type === 'string') {
    const { type, ...rest } = v;
    if (!/^[A-Za-z_]+$/.test(type)) throw bad(`${what} type must be a name such as 'adam', got '${type}'`);
    const args = Object.entries(rest)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw bad(`${what} option '${k}' is not a keyword name`);
        return `${snake(k)}=${valueText(k, x)}`;
      });
    return args.length ? `${type}(${args.join(', ')})` : type;
  }
  throw bad(`${what} must be a string such as 'adam(lr=0.01)' or an object { type: 'adam', lr: 0.01 }`);
}

/**
 * Trainer.create's options, checked and with their defaults, in the form abi.js passes on.
 * (A PyTorch checkpoint's optimizer is the file's: there, `optimizer` may be left out, '' then.)
 */
function trainerOptions(options, fromTorch = false) {
  if (options === null || typeof options !== 'object') throw bad('the trainer options must be an object');
  const unknown = Object.keys(options).filter((k) => !OPTIONS.includes(k));
  if (unknown.length) throw bad(`unknown trainer option ${unknown.join(', ')} (known: ${OPTIONS.join(', ')})`);
  const {
    optimizer = fromTorch ? '' : 'adam',
    loss = 'mse',
    scheduler,
    schedulerPerBatch = false,
    maxGradNorm = 0,
    seed = randomSeed(),
    batchSize = 32,
    shuffle = true,
  } = options;
  for (const [k, v] of Object.entries({ schedulerPerBatch, shuffle }))
    if (typeof v !== 'boolean') throw bad(`${k} must be a boolean, got ${String(v)}`);
  for (const [k, v] of Object.entries({ maxGradNorm, seed, batchSize }))
    if (typeof v !== 'number') throw bad(`${k} must be a number, got ${String(v)}`);
  return {
    optimizer: optimizer === '' ? '' : optionText('optimizer', optimizer),
    loss: optionText('loss', loss),
    scheduler: scheduler === undefined || scheduler === null ? '' : optionText('scheduler', scheduler),
    schedulerPerBatch,
    maxGradNorm,
    seed,
    batchSize,
    shuffle,
  };
}

function randomSeed() {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (words[0] & 0x1fffff) * 2 ** 32 + words[1]; // < 2^53
}

/**
 * A tensor argument → { data: Float32Array, shape }: nested arrays; { data, shape }; or flat
 * values (a typed array or an array of numbers) with `shape` — Model.forward's conventions.
 */
export function tensorOf(value, shape, what) {
  if (Array.isArray(value) && shape === undefined) return fromNested(value);
  if (value && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value) && 'data' in value) {
    return tensorOf(value.data, value.shape, what);
  }
  if (!Array.isArray(shape)) {
    throw new ModelError('invalid_input', `flat ${what} needs a shape, e.g. { data, shape: [N, 3] }`);
  }
  if (!(Array.isArray(value) || ArrayBuffer.isView(value))) {
    throw new ModelError('invalid_input', `${what} must be nested arrays, { data, shape } or flat values with a shape`);
  }
  return { data: value instanceof Float32Array ? value : Float32Array.from(value), shape };
}

/** The first `n` samples (from: 0) or the rest (from: n) of a tensor whose first dim is the samples. */
function samples(t, begin, end) {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return { data: t.data.subarray(begin * per, end * per), shape: [end - begin, ...t.shape.slice(1)] };
}

/**
 * A macrotask, so that a page can repaint and handle input (a resolved promise is not enough): a
 * MessageChannel message, queued behind the messages already posted — a Worker's abort from the
 * page among them. Not scheduler.yield(): its continuation runs ahead of those (measured in
 * Chromium: a worker's fit never saw the abort, a page painted a quarter of its frames); not
 * setTimeout(0), clamped to 4 ms once nested.
 */
function nextTask() {
  if (typeof MessageChannel !== 'function') return new Promise((resolve) => setTimeout(resolve, 0));
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      port2.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * The TrainerHandle class of a module wrapped by abi.js (`m.abi`): the JavaScript side of
 * wasm/train_bindings.cpp, abi.js's conventions (read the heap views afresh after every call;
 * copy results out before the next; free what it allocates). Each method answers { ok: true, ... }
 * or { ok: false, code, message }; fitBatch answers an array of numbers, no object per batch.
 * Built once per module, here rather than in abi.js: a page that never trains does not carry it.
 */
const trainerClasses = new WeakMap();
function trainerClass(m) {
  let TrainerHandle = trainerClasses.get(m);
  if (TrainerHandle) return TrainerHandle;
  const { raw, withArgs, withSource, answer, lastAnswer, putShape, dimsAt, takeSink } = m.abi;
  /** Writes `values` into wasm at the address `stage()` hands out (null: its failure). */
  const staged = (at, values) => {
    at >>>= 0;
    if (!at) return lastAnswer();
    raw.HEAPF32.set(values, at / 4);
    return null;
  };
  /** The numbers a per-batch training call left in mk_dims(), or its failure. */
  const numbers = (ran, n) => (ran ? Array.from(raw.HEAPF64.subarray(dimsAt, dimsAt + n)) : lastAnswer());

  /**
   * A trainer (wasm/train_bindings.cpp; the importer module only) of a ModelHandle's model, which
   * must outlive it. Each method answers { ok: true, ... } or { ok: false, code, message }.
   */
  TrainerHandle = class {
    #p;
    constructor(p) {
      this.#p = p;
    }
    /** ModelHandle address + options → { ok, handle } */
    static create(
      modelAddress,
      { optimizer, loss, scheduler, schedulerPerBatch, maxGradNorm, seed, batchSize, shuffle },
    ) {
      const dims = raw.HEAPF64;
      [schedulerPerBatch ? 1 : 0, maxGradNorm, seed, batchSize, shuffle ? 1 : 0].forEach(
        (v, i) => (dims[dimsAt + i] = v),
      );
      const p = withArgs([optimizer, loss, scheduler], null, (a) => raw._mk_trainer_create(modelAddress, a)) >>> 0;
      return p ? { ok: true, handle: new TrainerHandle(p) } : lastAnswer();
    }
    /** A checkpoint's bytes into the ModelHandle at modelAddress → { ok, training, ...info }. */
    static load(modelAddress, file) {
      return withSource(file, (size) => answer(raw._mk_trainer_load(modelAddress, size)));
    }
    /**
     * A trainer continuing a PyTorch general checkpoint (its bytes) on the ModelHandle at
     * modelAddress, which holds its model_state_dict → { ok, handle }. Options as create's; an
     * optimizer '' is the file's (only the kind of one given is used).
     */
    static loadTorch(
      modelAddress,
      file,
      { optimizer, loss, scheduler, schedulerPerBatch, maxGradNorm, seed, batchSize, shuffle },
    ) {
      return withSource(file, (size) => {
        const dims = raw.HEAPF64;
        [schedulerPerBatch ? 1 : 0, maxGradNorm, seed, batchSize, shuffle ? 1 : 0].forEach(
          (v, i) => (dims[dimsAt + i] = v),
        );
        const p =
          withArgs([optimizer, loss, scheduler], null, (a) => raw._mk_trainer_load_torch(modelAddress, size, a)) >>> 0;
        return p ? { ok: true, handle: new TrainerHandle(p) } : lastAnswer();
      });
    }
    /** The trainer of the state the last load() read → { ok, handle }. */
    static resume(modelAddress) {
      const p = raw._mk_trainer_resume(modelAddress) >>> 0;
      return p ? { ok: true, handle: new TrainerHandle(p) } : lastAnswer();
    }
    #x(data, shape) {
      return staged(raw._mk_trainer_x(this.#p, putShape(shape), data.length), data);
    }
    #target(data, shape) {
      return staged(raw._mk_trainer_target(this.#p, putShape(shape), data.length), data);
    }
    zeroGrad() {
      raw._mk_trainer_zero_grad(this.#p);
    }
    forward(data, shape) {
      const failed = this.#x(data, shape);
      if (failed) return failed;
      const output = raw._mk_trainer_forward(this.#p) >>> 0;
      if (!output) return lastAnswer();
      const dims = raw.HEAPF64;
      const out = Array.from(dims.subarray(dimsAt + 1, dimsAt + 1 + dims[dimsAt]));
      return { ok: true, shape: out, data: raw.HEAPF32.slice(output / 4, output / 4 + out.reduce((a, b) => a * b, 1)) };
    }
    loss(data, shape) {
      const failed = this.#target(data, shape);
      if (failed) return failed;
      const r = numbers(raw._mk_trainer_loss(this.#p), 1);
      return Array.isArray(r) ? { ok: true, loss: r[0] } : r;
    }
    backward() {
      return answer(raw._mk_trainer_backward(this.#p));
    }
    step() {
      return answer(raw._mk_trainer_step(this.#p));
    }
    endEpoch() {
      raw._mk_trainer_end_epoch(this.#p);
    }
    /** → { ok, loss } */
    trainBatch(x, xShape, target, targetShape) {
      const failed = this.#x(x, xShape) ?? this.#target(target, targetShape);
      if (failed) return failed;
      const r = numbers(raw._mk_trainer_train_batch(this.#p), 1);
      return Array.isArray(r) ? { ok: true, loss: r[0] } : r;
    }
    /** → { ok, samples, batches } */
    setData(x, xShape, target, targetShape) {
      const failed = this.#x(x, xShape) ?? this.#target(target, targetShape);
      return failed ?? answer(raw._mk_trainer_set_data(this.#p));
    }
    /** → [loss, epoch, batch, batches, epochDone] or { ok: false, ... } (no object per batch). */
    fitBatch() {
      return numbers(raw._mk_trainer_fit_batch(this.#p), 5);
    }
    /** → { ok, loss, accuracy, samples } */
    evaluate(x, xShape, target, targetShape) {
      const failed = this.#x(x, xShape) ?? this.#target(target, targetShape);
      if (failed) return failed;
      const r = numbers(raw._mk_trainer_evaluate(this.#p), 3);
      return Array.isArray(r) ? { ok: true, loss: r[0], accuracy: r[1], samples: r[2] } : r;
    }
    /** counters: also epoch, batch, steps (a copy of the whole training state in wasm). */
    state(counters) {
      return answer(raw._mk_trainer_state(this.#p, counters ? 1 : 0));
    }
    setLr(lr) {
      return answer(raw._mk_trainer_set_lr(this.#p, lr));
    }
    setTraining(training) {
      raw._mk_trainer_set_training(this.#p, training ? 1 : 0);
    }
    setMetadata(metadata) {
      return withArgs([], metadata, (a) => answer(raw._mk_trainer_set_metadata(this.#p, a)));
    }
    /** → { ok, bytes | chunks, ...info }: the checkpoint (.mkp with its TRAINING section). */
    toBytes(metadata, chunkBytes) {
      const r = withArgs([], metadata, (a) => answer(raw._mk_trainer_to_bytes(this.#p, a, chunkBytes)));
      const sink = takeSink();
      if (r.ok) {
        if (chunkBytes > 0) r.chunks = sink;
        else r.bytes = sink[0];
      }
      return r;
    }
    /** → { ok, bytes, loss }: the PyTorch general checkpoint; loss: its 'loss' as text ('': the default). */
    toTorch(loss) {
      const r = withArgs([loss], null, (a) => answer(raw._mk_trainer_to_torch(this.#p, a)));
      const sink = takeSink();
      if (r.ok) r.bytes = sink[0];
      return r;
    }
    delete() {
      raw._mk_trainer_delete(this.#p);
      this.#p = 0;
    }
  };

  trainerClasses.set(m, TrainerHandle);
  return TrainerHandle;
}

/**
 * The module that trains: the importer, loaded once; or the core itself when it has the trainer
 * (the pthreads build, which includes the importer, docs/API.md "Threads").
 */
async function trainingModule() {
  const core = await module('core');
  return typeof core.abi.raw._mk_trainer_create === 'function' ? core : module('importer');
}

/** A Model being trained. Create with Trainer.create(model, options) or load(url, { training: true }). */
export class Trainer {
  #handle;
  #model;
  #ownsModel;
  #busy = false;

  /** @internal use Trainer.create or load(url, { training: true }) */
  constructor(handle, model, ownsModel) {
    this.#handle = handle;
    this.#model = model;
    this.#ownsModel = ownsModel;
    registry?.register(this, handle, this);
  }

  /**
   * A trainer for `model` (float32 weights: needs_f32 otherwise). Loads the importer module once;
   * a model of the core module moves there (the same Model object keeps working).
   * @param {Model} model
   * @param {object} [options] optimizer ('adam'), loss ('mse'), scheduler (none), schedulerPerBatch
   *   (false), maxGradNorm (0: none), seed (random), batchSize (32), shuffle (true)
   */
  static async create(model, options = {}) {
    if (!(model instanceof Model)) throw new ModelError('invalid_argument', 'Trainer.create takes a Model');
    if (model.disposed) throw new ModelError('disposed', 'this model was disposed');
    const args = trainerOptions(options);
    const m = await trainingModule();
    if (model.disposed) throw new ModelError('disposed', 'this model was disposed');
    if (model.weightDtype !== 'f32') {
      // Checked before the move: a compact model stays where it is.
      throw new ModelError(
        'needs_f32',
        `the model holds ${model.weightDtype} weights, which are for inference: call ` +
          `model.setWeightDtype('f32') before training it`,
      );
    }
    const handle = moveTo(model, m);
    const r = check(trainerClass(m).create(handle.address, args));
    return new Trainer(r.handle, model, false);
  }

  /**
   * A trainer resumed from a checkpoint's bytes (a .mkp with a TRAINING section; as Uint8Arrays
   * in order). The model is new, owned by the trainer (disposed with it). wrong_kind when the
   * file holds a plain model.
   */
  static async fromChunks(chunks) {
    const m = await trainingModule();
    const handle = new m.ModelHandle();
    try {
      const r = check(trainerClass(m).load(handle.address, chunks));
      if (!r.training) {
        throw new ModelError(
          'wrong_kind',
          'this file holds a model without training state (no TRAINING section): load it with ' +
            'load(url) and start training with Trainer.create(model, options), or save a trainer with ' +
            'save(trainer, url, { training: true }) to resume it later',
        );
      }
      const t = check(trainerClass(m).resume(handle.address));
      return new Trainer(t.handle, new Model(handle), true);
    } catch (e) {
      handle.delete();
      throw e;
    }
  }

  /**
   * A trainer continuing a PyTorch general checkpoint ({ epoch, model_state_dict,
   * optimizer_state_dict, loss }, as chunks). The model (owned by the trainer) is `architecture`
   * holding model_state_dict (or what the file defines, or assumeSequential: load()'s rules); the
   * optimizer is the file's, its options and state (`optimizer` names its kind: Adam and AdamW
   * store the same keys); `loss` is required (the file has no loss function); the other options
   * are Trainer.create's. The epoch is the file's; steps count from 0.
   */
  static async fromTorchChunks(chunks, options) {
    const { architecture, assumeSequential, prefix, entry, weightDtype, ...rest } = options;
    if (rest.loss === undefined) {
      throw new ModelError(
        'invalid_argument',
        'a PyTorch checkpoint holds no loss function: give the `loss` option, e.g. load(url, { training: true, ' +
          "architecture, loss: 'cross_entropy' })",
      );
    }
    for (const [k, v] of Object.entries({ prefix, entry, weightDtype })) {
      if (v !== undefined) {
        throw new ModelError(
          'invalid_argument',
          `load(…, { training: true }) of a PyTorch checkpoint takes no ${k}: the model is its model_state_dict, ` +
            'trained in float32',
        );
      }
    }
    const args = trainerOptions(rest, true);
    const m = await trainingModule();
    const model = await withImporter(() => fromChunks(chunks, { architecture, assumeSequential }));
    try {
      const handle = moveTo(model, m);
      const t = check(trainerClass(m).loadTorch(handle.address, chunks, args));
      return new Trainer(t.handle, model, true);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /**
   * A trainer resumed from a checkpoint saved by save(trainer, url, { training: true }): the same
   * sources as load() (indexeddb://name, a URL, a File, bytes, a path in Node). The same as
   * load(source, { training: true, ...options }); options apply to a PyTorch general checkpoint
   * only (fromTorchChunks: architecture, loss, optimizer, ...), a .mkp resumes as saved.
   */
  static load(source, { onProgress, ...options } = {}) {
    return load(source, { onProgress, ...options, training: true });
  }

  /** A trainer resumed from a checkpoint's bytes (see fromChunks). */
  static fromBytes(bytes) {
    const u8 =
      bytes instanceof Uint8Array
        ? bytes
        : ArrayBuffer.isView(bytes)
          ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
          : bytes instanceof ArrayBuffer
            ? new Uint8Array(bytes)
            : null;
    if (!u8) return Promise.reject(new ModelError('invalid_argument', 'expected a Uint8Array or an ArrayBuffer'));
    return Trainer.fromChunks([u8]);
  }

  /**
   * The handle, for a call that may run now. While fit() runs (its callbacks may call back), only
   * the calls that do not train may (`training` false: state, lr, metadata, evaluate, toBytes).
   */
  #live(training = true) {
    if (!this.#handle) throw new ModelError('disposed', 'this trainer was disposed');
    if (this.#model.disposed) {
      throw new ModelError('disposed', 'the model of this trainer was disposed: dispose the trainer first');
    }
    if (training && this.#busy) {
      throw new ModelError('invalid_argument', 'this trainer is running fit(): wait for it (or abort it) first');
    }
    return this.#handle;
  }

  /** The Model being trained (its weights are the trained ones after every step). */
  get model() {
    return this.#model;
  }

  /**
   * Everything the trainer reports: { epoch, batch, steps, lr, training, lastLoss, samples,
   * batchesPerEpoch, optimizer, loss, scheduler, schedulerPerBatch, maxGradNorm, seed, batchSize,
   * shuffle, metadata } (the option texts canonical: they parse to the same options).
   */
  state() {
    const { ok, ...s } = check(this.#live(false).state(true));
    return s;
  }

  /** state() without the counters, which cost a copy of the optimizer state in wasm. */
  #options() {
    return check(this.#live(false).state(false));
  }

  /** optimizer.zero_grad() */
  zeroGrad() {
    this.#live().zeroGrad();
  }

  /** The recorded forward (train or eval mode, per `training`) → { shape, data }. */
  forward(input, shape) {
    const handle = this.#live();
    const x = tensorOf(input, shape, 'input');
    const r = check(handle.forward(x.data, x.shape));
    return { shape: r.shape, data: r.data };
  }

  /** The loss of the last forward against `target` (class indices or values) → a number. */
  loss(target, shape) {
    const handle = this.#live();
    const t = tensorOf(target, shape, 'target');
    return check(handle.loss(t.data, t.shape)).loss;
  }

  /** loss.backward(): adds the gradients of the last loss (until zeroGrad). */
  backward() {
    check(this.#live().backward());
  }

  /** Clip (maxGradNorm), optimizer.step(), a per-batch schedule step. */
  step() {
    check(this.#live().step());
  }

  /** The end of an epoch for a hand-written loop: a per-epoch schedule step, epoch + 1. */
  endEpoch() {
    this.#live().endEpoch();
  }

  /**
   * zeroGrad, forward, loss, backward, step on one batch → its loss. x and target as forward's
   * input: nested arrays or { data, shape }, or flat values with { xShape, targetShape }.
   */
  trainBatch(x, target, { xShape, targetShape } = {}) {
    const handle = this.#live();
    const a = tensorOf(x, xShape, 'input');
    const b = tensorOf(target, targetShape, 'target');
    return check(handle.trainBatch(a.data, a.shape, b.data, b.shape)).loss;
  }

  /** model.train() */
  train() {
    this.#live().setTraining(true);
  }

  /** model.eval() */
  eval() {
    this.#live().setTraining(false);
  }

  get training() {
    return this.#options().training;
  }

  /** The optimizer's learning rate now (a schedule changes it). */
  get lr() {
    return this.#options().lr;
  }

  set lr(lr) {
    if (typeof lr !== 'number') throw bad(`lr must be a number, got ${String(lr)}`);
    check(this.#live(false).setLr(lr));
  }

  /** Epochs completed. */
  get epoch() {
    return this.state().epoch;
  }

  /** Optimizer steps in all. */
  get steps() {
    return this.state().steps;
  }

  /** The user's strings, saved in the checkpoint: { loss: '0.25', ... }. */
  get metadata() {
    return this.#options().metadata;
  }

  set metadata(metadata) {
    if (metadata === null || typeof metadata !== 'object') {
      throw new ModelError('invalid_argument', 'metadata must be an object of strings');
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new ModelError('invalid_argument', `metadata '${k}' must be a string`);
    }
    check(this.#live(false).setMetadata(metadata));
  }

  /**
   * Loss and accuracy over x, y in eval mode, in batches of batchSize (no state changes): { loss,
   * accuracy } — accuracy null for the regression losses.
   */
  evaluate(x, y, { xShape, yShape } = {}) {
    const handle = this.#live(false);
    const a = tensorOf(x, xShape, 'x');
    const b = tensorOf(y, yShape, 'y');
    return this.#evaluate(handle, a, b);
  }

  #evaluate(handle, a, b) {
    const r = check(handle.evaluate(a.data, a.shape, b.data, b.shape));
    return { loss: r.loss, accuracy: Number.isNaN(r.accuracy) ? null : r.accuracy };
  }

  /**
   * Trains `epochs` more epochs on x, y (copied into wasm once), one wasm call per batch. Resolves
   * to { epoch: [...], history: { loss, accuracy?, valLoss?, valAccuracy? }, stopped }.
   * An aborted `signal` stops between batches: it resolves with stopped: true, and the trainer
   * continues from there (an interrupted epoch is finished by the next fit, and counts as one of
   * its epochs). batchSize and shuffle are the trainer's (Trainer.create): given here, they must
   * be the same.
   */
  async fit(x, y, options = {}) {
    const handle = this.#live();
    const {
      epochs = 1,
      batchSize,
      shuffle,
      validationSplit = 0,
      validationData,
      metrics = [],
      onBatchEnd,
      onEpochEnd,
      signal,
      yieldEvery = 16,
    } = options;
    if (!Number.isInteger(epochs) || epochs < 0) {
      throw new ModelError('invalid_argument', `epochs must be an integer >= 0, got ${String(epochs)}`);
    }
    if (!(typeof validationSplit === 'number' && validationSplit >= 0 && validationSplit < 1)) {
      throw new ModelError('invalid_argument', `validationSplit must be in [0, 1), got ${String(validationSplit)}`);
    }
    if (!(typeof yieldEvery === 'number' && yieldEvery >= 0)) {
      throw new ModelError(
        'invalid_argument',
        `yieldEvery must be a number of milliseconds >= 0, got ${String(yieldEvery)}`,
      );
    }
    if (!Array.isArray(metrics) || metrics.some((m) => m !== 'accuracy' && m !== 'acc')) {
      throw new ModelError('invalid_argument', "metrics may hold 'accuracy' only");
    }
    const before = this.state();
    if (batchSize !== undefined && batchSize !== before.batchSize) {
      throw new ModelError(
        'invalid_argument',
        `this trainer's batchSize is ${before.batchSize} (set by Trainer.create, and saved with it), not ${batchSize}`,
      );
    }
    if (shuffle !== undefined && shuffle !== before.shuffle) {
      throw new ModelError('invalid_argument', `this trainer's shuffle is ${before.shuffle} (set by Trainer.create)`);
    }
    let train = [tensorOf(x, undefined, 'x'), tensorOf(y, undefined, 'y')];
    const n = train[0].shape[0] ?? 0;
    if (train[1].shape[0] !== n) {
      throw new ModelError('shape_mismatch', `x has ${n} samples but y has ${train[1].shape[0]}`);
    }
    let validation = null;
    if (validationData !== undefined) {
      if (!Array.isArray(validationData) || validationData.length !== 2) {
        throw new ModelError('invalid_argument', 'validationData must be [x, y]');
      }
      validation = [
        tensorOf(validationData[0], undefined, 'validation x'),
        tensorOf(validationData[1], undefined, 'validation y'),
      ];
    } else if (validationSplit > 0) {
      // The last samples, before any shuffling, as Keras takes them.
      const cut = n - Math.floor(n * validationSplit);
      validation = train.map((t) => samples(t, cut, n));
      train = train.map((t) => samples(t, 0, cut));
    }
    const accuracy = metrics.length > 0;
    const history = { loss: [] };
    if (accuracy) history.accuracy = [];
    if (validation) {
      history.valLoss = [];
      if (accuracy) history.valAccuracy = [];
    }
    const result = { epoch: [], history, stopped: false };
    check(handle.setData(train[0].data, train[0].shape, train[1].data, train[1].shape));
    handle.setTraining(true);
    const target = before.epoch + epochs;
    let epoch = before.epoch;
    let sum = 0; // this fit's losses of the current epoch, each weighted by its batch's samples
    let counted = 0;
    let last = now();
    this.#busy = true;
    try {
      while (epoch < target) {
        this.#busy = false; // a callback may have disposed the trainer or its model
        this.#live();
        this.#busy = true;
        if (signal?.aborted) {
          result.stopped = true;
          break;
        }
        const r = handle.fitBatch();
        if (!Array.isArray(r)) check(r);
        const [loss, batchEpoch, batch, batches, epochDone] = r;
        const size = batch === batches - 1 ? train[0].shape[0] - batch * before.batchSize : before.batchSize;
        sum += loss * size;
        counted += size;
        if (onBatchEnd) await onBatchEnd({ epoch: batchEpoch, batch, batches, loss });
        if (epochDone) {
          epoch = batchEpoch + 1;
          const logs = { epoch: batchEpoch, loss: sum / counted };
          sum = counted = 0;
          if (accuracy) logs.accuracy = this.#evaluate(handle, ...train).accuracy;
          if (validation) {
            const v = this.#evaluate(handle, ...validation);
            logs.valLoss = v.loss;
            if (accuracy) logs.valAccuracy = v.accuracy;
          }
          result.epoch.push(batchEpoch);
          for (const k of Object.keys(history)) history[k].push(logs[k]);
          if (onEpochEnd) await onEpochEnd(logs);
        }
        if (now() - last >= yieldEvery) {
          await nextTask();
          last = now();
        }
      }
    } finally {
      this.#busy = false;
    }
    return result;
  }

  /**
   * The checkpoint as bytes: a .mkp file (the model in float32, which any modelkeep reader loads as
   * a plain model) with its TRAINING section (optimizer state, schedule, counters, generators,
   * metadata): load(bytes, { training: true }) continues bit-identically.
   */
  toBytes({ metadata = {}, format = 'mkp' } = {}) {
    return this.#encode({ metadata, format }).bytes;
  }

  /**
   * @internal io.js's save(trainer, url, { training: true, ...options }): the checkpoint written to
   * `url` (io.js's `storing`; scheme: its store's, if any; format: 'mkp' or the name's) → its info.
   * A .mkp goes into a store in the store's chunks.
   */
  async [checkpointOf](url, scheme, format, { dtype, metadata = {}, onProgress } = {}) {
    const chunkBytes = format === 'mkp' && scheme ? (await storing.openBackend(scheme)).chunkBytes : 0;
    const { bytes, chunks, info } = this.#encode({ metadata, chunkBytes, format, dtype });
    return storing.write(chunks ?? bytes, url, format === 'mkp' ? storing.describe(info) : info, onProgress);
  }

  /**
   * The checkpoint → { bytes | chunks, info }. format 'pt': a PyTorch general checkpoint, whose 'loss'
   * is metadata.loss when given (the only metadata it has room for), else the last step's loss
   * (PyTorch's tutorial saves that), else the trainer's metadata 'loss' (a loaded checkpoint's),
   * else none.
   */
  #encode({ metadata = {}, chunkBytes = 0, format = 'mkp', dtype }) {
    if (format !== 'mkp' && format !== 'pt') {
      throw new ModelError(
        'invalid_argument',
        `a training checkpoint is a .mkp file or a PyTorch general checkpoint (.pt/.pth), not .${format}`,
      );
    }
    if (dtype !== undefined && dtype !== 'f32') {
      throw new ModelError('invalid_argument', `a training checkpoint holds float32 weights, not ${String(dtype)}`);
    }
    for (const [k, v] of Object.entries(metadata ?? {})) {
      if (typeof v !== 'string') throw new ModelError('invalid_argument', `metadata '${k}' must be a string`);
    }
    if (format === 'pt') {
      const extra = Object.keys(metadata ?? {}).filter((k) => k !== 'loss');
      if (extra.length) {
        throw new ModelError(
          'invalid_argument',
          `a PyTorch checkpoint keeps no metadata but its 'loss': ${extra.join(', ')} has no place there`,
        );
      }
      const handle = this.#live(false);
      const { bytes, loss } = check(handle.toTorch(metadata?.loss ?? ''));
      const info = {
        format: 'pt',
        kind: 'training_checkpoint',
        dtype: 'f32',
        params: this.#model.paramCount,
        architecture: this.#model.architecture,
        layers: this.#model.layers.map((l) => l.spec),
        metadata: loss === null ? {} : { loss }, // what the file holds: its 'loss' only
        training: true,
      };
      return { bytes, info };
    }
    const { ok, bytes, chunks, ...info } = check(this.#live(false).toBytes(metadata ?? {}, chunkBytes));
    return chunks ? { chunks, info } : { bytes, info };
  }

  get disposed() {
    return !this.#handle;
  }

  /**
   * Frees the trainer's wasm memory now (its gradients, optimizer state, data set). A model given
   * to Trainer.create stays the caller's; one that load(url, { training: true }) made is disposed
   * with the trainer. Safe to call twice.
   */
  dispose() {
    if (!this.#handle) return;
    registry?.unregister(this);
    this.#handle.delete();
    this.#handle = null;
    if (this.#ownsModel) this.#model.dispose();
  }
}

if (typeof Symbol.dispose === 'symbol') Trainer.prototype[Symbol.dispose] = Trainer.prototype.dispose;

/** .mkp bytes (their magic, "\x89MKP"), from the first chunk. */
const isMkp = (chunks) => {
  const c = chunks[0];
  return c?.length >= 4 && c[0] === 0x89 && c[1] === 0x4d && c[2] === 0x4b && c[3] === 0x50;
};

useTrainer((chunks, { onProgress, training, ...options }) => {
  if (!isMkp(chunks)) return Trainer.fromTorchChunks(chunks, options);
  if (Object.values(options).some((o) => o !== undefined)) {
    throw new ModelError(
      'invalid_argument',
      'load(…, { training: true }) reads a .mkp checkpoint as saved: no other option (the options are ' +
        "for a PyTorch checkpoint's architecture, loss, optimizer, ...)",
    );
  }
  return Trainer.fromChunks(chunks);
});
