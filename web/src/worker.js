// worker.js — training in a Web Worker, so that a page stays responsive whatever a batch costs:
//
//   // trainer.worker.js (a module worker: new Worker(url, { type: 'module' }))
//   import { serveTrainer } from 'modelkeep';
//   serveTrainer();
//
//   // the page
//   import { connectTrainer } from 'modelkeep';
//   const trainer = connectTrainer(new Worker(new URL('./trainer.worker.js', import.meta.url), { type: 'module' }));
//   await trainer.create({ spec: 'Linear(4,16),ReLU,Linear(16,3)', optimizer: 'adam(lr=0.01)', loss: 'cross_entropy' });
//   const history = await trainer.fit(x, y, { epochs: 10, onEpochEnd: (logs) => draw(logs), signal });
//   await trainer.save('indexeddb://run', { training: true });
//
// One trainer per worker. Messages, page → worker: { id, method, args } (and { id, abort: true }
// for a fit under way); worker → page: { id, event, data } (a fit's onBatchEnd / onEpochEnd), then
// { id, result } or { id, error: { code, message } }, which rejects with a ModelError of that code.
// Typed arrays in { data, shape } tensors are transferred, not copied: the page's x and y are
// detached by fit/evaluate/predict (pass copies to keep them). Works with a browser Worker (scope:
// self) and Node's worker_threads (scope: parentPort; the page side: the Worker).
// Must: answer every request exactly once; keep serving after any error; stop a fit between
// batches when the page aborts it; reject (code 'disposed') every call to a worker that failed.
import { ModelError, check } from './errors.js';
import { load, save } from './io.js';
import { Model } from './model.js';
import { ready } from './runtime.js';
import { Trainer } from './train.js';

/** on(message data) for a browser Worker / MessagePort (EventTarget) or a Node worker_threads Worker. */
function listen(target, on) {
  if (typeof target.addEventListener === 'function') target.addEventListener('message', (e) => on(e.data));
  else target.on('message', on);
}

/** The ArrayBuffers of the typed arrays in { data } tensors (and tensors nested in arrays) of `v`. */
function transferables(v, out = []) {
  if (ArrayBuffer.isView(v)) {
    if (!out.includes(v.buffer)) out.push(v.buffer);
  } else if (Array.isArray(v)) {
    if (v.length && typeof v[0] === 'object') for (const x of v) transferables(x, out);
  } else if (v && typeof v === 'object') {
    for (const x of Object.values(v)) if (x && typeof x === 'object') transferables(x, out);
  }
  return out;
}

/**
 * Serves one trainer to the page that created this worker. `scope`: the worker's global (self), or
 * in Node the worker_threads parentPort.
 */
export function serveTrainer(scope = globalThis) {
  let trainer = null;
  let owned = null; // the model create() made for the trainer, disposed with it
  const running = new Map(); // id → AbortController of a fit under way

  const live = () => {
    if (!trainer) throw new ModelError('invalid_argument', 'no trainer yet: call create() or load() first');
    return trainer;
  };
  const release = () => {
    trainer?.dispose();
    owned?.dispose();
    trainer = owned = null;
  };
  const replace = (next, model = null) => {
    release();
    trainer = next;
    owned = model;
    return trainer.state();
  };

  const methods = {
    /** { spec | bytes | url, modelSeed?, ...Trainer.create options } → the trainer's state. */
    async create({ spec, bytes, url, modelSeed, ...options } = {}) {
      await ready();
      const given = [spec, bytes, url].filter((v) => v !== undefined).length;
      if (given !== 1) throw new ModelError('invalid_argument', 'create() takes one of spec, bytes or url');
      const model =
        spec !== undefined
          ? Model.fromSpec(spec, modelSeed === undefined ? {} : { seed: modelSeed })
          : await load(bytes ?? url);
      try {
        return replace(await Trainer.create(model, options), model);
      } catch (e) {
        model.dispose();
        throw e;
      }
    },
    /** A checkpoint (url or bytes; a .pt with its options: architecture, loss, ...) → the resumed trainer's state. */
    async load(source, options = {}) {
      return replace(await load(source, { ...options, training: true }));
    },
    async fit(id, x, y, options = {}) {
      const t = live();
      const controller = new AbortController();
      running.set(id, controller);
      const { onBatchEnd, onEpochEnd, ...rest } = options;
      try {
        return await t.fit(x, y, {
          ...rest,
          signal: controller.signal,
          onBatchEnd: onBatchEnd ? (logs) => post({ id, event: 'batch', data: logs }) : undefined,
          onEpochEnd: onEpochEnd ? (logs) => post({ id, event: 'epoch', data: logs }) : undefined,
        });
      } finally {
        running.delete(id);
      }
    },
    evaluate: (x, y) => live().evaluate(x, y),
    /** Inference with the model being trained → { shape, data } */
    predict: (x, shape) => live().model.forward(x, shape),
    stateDict: () => live().model.stateDict(),
    save: (url, options) => save(live(), url, options),
    toBytes: (options) => live().toBytes(options),
    state: () => live().state(),
    setMetadata(metadata) {
      live().metadata = metadata;
      return live().state().metadata;
    },
    setLr(lr) {
      live().lr = lr;
      return live().lr;
    },
    dispose: release,
  };

  const post = (message) => scope.postMessage(message, transferables(message));

  listen(scope, async (message) => {
    const { id, method, args = [], abort } = message ?? {};
    if (abort) {
      running.get(id)?.abort();
      return;
    }
    try {
      if (!Object.hasOwn(methods, method)) throw new ModelError('invalid_argument', `no trainer method '${method}'`);
      const result = await (method === 'fit' ? methods.fit(id, ...args) : methods[method](...args));
      post({ id, result });
    } catch (e) {
      post({ id, error: { code: e?.code ?? 'invalid_argument', message: String(e?.message ?? e) } });
    }
  });
}

/**
 * The page's side: a trainer served by `worker` (serveTrainer) → an object with async methods
 * create, load, fit (onBatchEnd / onEpochEnd called here; signal forwarded), evaluate, predict,
 * stateDict, save, toBytes, state, setMetadata, setLr, dispose. Each rejects with a ModelError.
 */
export function connectTrainer(worker) {
  let next = 1;
  const calls = new Map(); // id → { resolve, reject, events }
  // A worker that fails (its script does not load, or throws outside a call) answers nothing
  // more: every call under way and every later one rejects.
  let failed = null;
  const onError = (e) => {
    failed = new ModelError('disposed', `the trainer's worker failed: ${e?.message ?? e}`);
    for (const call of calls.values()) call.reject(failed);
    calls.clear();
  };
  if (typeof worker.addEventListener === 'function') worker.addEventListener('error', onError);
  else worker.on?.('error', onError);

  listen(worker, (message) => {
    const call = calls.get(message?.id);
    if (!call) return;
    if (message.event) {
      call.events?.[message.event]?.(message.data);
      return;
    }
    calls.delete(message.id);
    try {
      // The worker's ModelError, rethrown here with its code (check() throws it).
      call.resolve(message.error ? check({ ok: false, ...message.error }) : message.result);
    } catch (e) {
      call.reject(e);
    }
  });

  const request = (method, args, events = null) => {
    const id = next++;
    if (failed) return [id, Promise.reject(failed)];
    const promise = new Promise((resolve, reject) => calls.set(id, { resolve, reject, events }));
    worker.postMessage({ id, method, args }, transferables(args));
    return [id, promise];
  };
  const call =
    (method) =>
    (...args) =>
      request(method, args)[1];

  return {
    create: call('create'),
    load: call('load'),
    /** fit(x, y, { epochs, ..., onBatchEnd, onEpochEnd, signal }) → the history */
    fit(x, y, { onBatchEnd, onEpochEnd, signal, ...options } = {}) {
      const flags = { ...options, onBatchEnd: Boolean(onBatchEnd), onEpochEnd: Boolean(onEpochEnd) };
      const [id, promise] = request('fit', [x, y, flags], { batch: onBatchEnd, epoch: onEpochEnd });
      if (signal) {
        const abort = () => worker.postMessage({ id, abort: true });
        if (signal.aborted) abort();
        else signal.addEventListener('abort', abort, { once: true });
        promise.finally(() => signal.removeEventListener('abort', abort)).catch(() => {});
      }
      return promise;
    },
    evaluate: call('evaluate'),
    predict: call('predict'),
    stateDict: call('stateDict'),
    save: call('save'),
    toBytes: call('toBytes'),
    state: call('state'),
    setMetadata: call('setMetadata'),
    setLr: call('setLr'),
    dispose: call('dispose'),
  };
}
