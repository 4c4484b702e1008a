// model.js — Model (a Sequential living in wasm memory, owned by exactly one JS
// object) and the `nn` builders that describe layers the way PyTorch names them.
import { ModelError, check } from './errors.js';
import { loadedModule, module, needsImporter, runtime } from './runtime.js';

// Safety net for models that are never disposed; dispose() is still the rule.
const registry =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry((handle) => handle.delete()) : null;

const DTYPES = ['f32', 'f16', 'bf16', 'int8'];

/**
 * encode(model, { dtype, metadata, stateDictOnly, chunkBytes }) → { bytes, info }: toBytes plus
 * the file's info (fileInfo's fields), set by Model's static block below. With chunkBytes > 0,
 * { chunks, info }: the file as Uint8Arrays of chunkBytes each (the last one shorter), written
 * there by wasm directly, for a store that keeps such chunks (no copy of the file on the way).
 */
export let encode;

/**
 * fromChunks(chunks, { architecture, assumeSequential, weightDtype }, module = the core) → Model:
 * Model.fromBytes over a file given as its chunks (Uint8Arrays, in order, as the IndexedDB store
 * keeps it), which wasm reads in place: JavaScript never joins them into a second copy of the
 * file. io.js's load() passes the reader module when nothing else is loaded. Set by Model's
 * static block.
 */
export let fromChunks;

/**
 * moveTo(model, module) → the model's handle in that module (train.js: the trainer lives in the
 * importer). The model moves as it is held (mk_model_take, then mk_give_*: compact weights as
 * their stored bytes, lossless); the Model object keeps working, its handle now the new module's
 * (the old one is freed). Set by Model's static block.
 */
export let moveTo;

// A Model's handle may live in any of the three modules (runtime.js). One that load() read into
// the reader (which loads and runs models only) moves to the core — or the importer, when only
// that is loaded — for anything else (#full): synchronously, so not_ready until ready() has
// loaded one. Files other than .mkp (PyTorch, safetensors) and exports to them are the importer
// module's: the reader and the core answer them needs_importer. A model imported there stays
// there; a model exported to .pt / .safetensors is copied to the importer for the export. A
// synchronous call throws not_ready until the importer is loaded; withImporter() loads it and
// calls again.
const wantsImporter = Symbol('wantsImporter');

/** The importer module, or not_ready (naming `what` and the fix) when it is not loaded yet. */
function importer(what) {
  const m = loadedModule('importer');
  if (m) return m;
  const e = needsImporter(what);
  e[wantsImporter] = true;
  throw e;
}

/** r, unless the core refused it for the importer: then `other(importer module)`. */
function orImporter(r, what, other) {
  return !r.ok && r.code === 'needs_importer' ? other(importer(what)) : r;
}

/** fn(), and when it needs the importer module: the importer loaded (once), then fn() again. */
export async function withImporter(fn) {
  try {
    return fn();
  } catch (e) {
    if (!e?.[wantsImporter]) throw e;
  }
  await module('importer');
  return fn();
}

/** A layer description: its SPEC text and an optional child name. */
export class Layer {
  constructor(spec, name) {
    this.spec = spec;
    this.name = name;
  }
  /** The same layer under another child name (as in nn.Sequential(OrderedDict(...))). */
  named(name) {
    return new Layer(this.spec, name);
  }
  toString() {
    return this.name === undefined ? this.spec : `${this.name}=${this.spec}`;
  }
}

function num(v, what) {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ModelError('invalid_argument', `${what} must be a finite number, got ${String(v)}`);
  }
  return String(v);
}

function int(v, what) {
  if (!Number.isInteger(v)) throw new ModelError('invalid_argument', `${what} must be an integer, got ${String(v)}`);
  return String(v);
}

// Must give every bad builder argument the one code, invalid_argument, when the builder is called:
// checked here rather than left to the SPEC parser (invalid_spec for '-5') or the core's checks.
const maxFeatures = 2 ** 28; // the core's max_tensor_elements
const maxRank = 8; // the core's max_rank: dims are in [-8, 7]

/** A feature count: an integer in [1, 2^28]. */
function count(v, what) {
  int(v, what);
  if (v < 1 || v > maxFeatures) throw new ModelError('invalid_argument', `${what} must be in [1, 2^28], got ${v}`);
  return String(v);
}

function range(v, what, low, high) {
  num(v, what);
  if (v < low || v > high) throw new ModelError('invalid_argument', `${what} must be in [${low}, ${high}], got ${v}`);
  return String(v);
}

function positive(v, what) {
  num(v, what);
  if (!(v > 0)) throw new ModelError('invalid_argument', `${what} must be > 0, got ${v}`);
  return String(v);
}

/** A dimension index: an integer in [-8, 7]. */
function dimension(v, what) {
  int(v, what);
  return range(v, what, -maxRank, maxRank - 1);
}

function lastDim(dim) {
  if (dim !== -1) {
    throw new ModelError('invalid_argument', `dim must be -1 (only the last dim is supported), got ${String(dim)}`);
  }
  return [];
}

function call(kind, args = []) {
  return new Layer(args.length ? `${kind}(${args.join(',')})` : kind);
}

function flag(name, value, fallback) {
  return value === undefined || value === fallback ? [] : [`${name}=${value ? 'true' : 'false'}`];
}

function checkMetadata(metadata) {
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (typeof v !== 'string') throw new ModelError('invalid_argument', `metadata '${k}' must be a string`);
  }
}

function randomSeed() {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return (words[0] & 0x1fffff) * 2 ** 32 + words[1]; // < 2^53
}

/** Layer builders, named and parameterised like torch.nn. */
export const nn = {
  linear: (inFeatures, outFeatures, { bias = true } = {}) =>
    call('Linear', [count(inFeatures, 'inFeatures'), count(outFeatures, 'outFeatures'), ...flag('bias', bias, true)]),
  relu: () => call('ReLU'),
  leakyRelu: (negativeSlope = 0.01) => call('LeakyReLU', [num(negativeSlope, 'negativeSlope')]),
  sigmoid: () => call('Sigmoid'),
  tanh: () => call('Tanh'),
  gelu: ({ approximate = 'none' } = {}) => {
    if (approximate !== 'none' && approximate !== 'tanh') {
      throw new ModelError('invalid_argument', `approximate must be 'none' or 'tanh', got ${String(approximate)}`);
    }
    return call('GELU', approximate === 'none' ? [] : [approximate]);
  },
  silu: () => call('SiLU'),
  softmax: (dim = -1) => call('Softmax', lastDim(dim)),
  logSoftmax: (dim = -1) => call('LogSoftmax', lastDim(dim)),
  identity: () => call('Identity'),
  dropout: (p = 0.5) => call('Dropout', [range(p, 'p', 0, 1)]),
  flatten: (startDim = 1, endDim = -1) =>
    call('Flatten', [dimension(startDim, 'startDim'), dimension(endDim, 'endDim')]),
  layerNorm: (n, { eps, elementwiseAffine, bias } = {}) =>
    call('LayerNorm', [
      count(n, 'normalizedShape'),
      ...(eps === undefined ? [] : [`eps=${positive(eps, 'eps')}`]),
      ...flag('elementwise_affine', elementwiseAffine, true),
      ...flag('bias', bias, true),
    ]),
  batchNorm1d: (n, { eps, affine, trackRunningStats } = {}) =>
    call('BatchNorm1d', [
      count(n, 'numFeatures'),
      ...(eps === undefined ? [] : [`eps=${positive(eps, 'eps')}`]),
      ...flag('affine', affine, true),
      ...flag('track_running_stats', trackRunningStats, true),
    ]),

  /**
   * nn.sequential(nn.linear(3, 5), nn.relu(), ...) or nn.sequential({ fc1: nn.linear(3, 5) }),
   * optionally followed by { seed }. Children are named "0", "1", ... unless named.
   */
  sequential(...args) {
    let options = {};
    const last = args[args.length - 1];
    if (
      last &&
      !(last instanceof Layer) &&
      typeof last === 'object' &&
      !Object.values(last).some((v) => v instanceof Layer)
    ) {
      options = args.pop();
    }
    const layers = [];
    for (const a of args) {
      if (a instanceof Layer) layers.push(a);
      else if (a && typeof a === 'object') for (const [name, l] of Object.entries(a)) layers.push(l.named(name));
      else
        throw new ModelError('invalid_argument', `nn.sequential takes layers (nn.linear(...), ...), got ${String(a)}`);
    }
    if (layers.length === 0) throw new ModelError('invalid_argument', 'nn.sequential needs at least one layer');
    return Model.fromSpec(layers.map((l) => l.toString()).join(','), options);
  },
  /**
   * A model that is this one layer, as a bare torch module is: its tensors named without a
   * prefix ('weight', 'bias'; SPEC "=Linear(3,5)"), e.g. torch.save(nn.Linear(16, 1))'s.
   */
  root(layer, options = {}) {
    if (!(layer instanceof Layer)) {
      throw new ModelError('invalid_argument', `nn.root takes one layer (nn.linear(...), ...), got ${String(layer)}`);
    }
    return Model.fromSpec(`=${layer.spec}`, options);
  },
};

/** Flattens nested arrays into a Float32Array, checking they are rectangular. */
export function fromNested(input) {
  const shape = [];
  for (let v = input; Array.isArray(v); v = v[0]) shape.push(v.length);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let at = 0;
  const walk = (v, depth) => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new ModelError('invalid_input', `input holds a ${typeof v}, not a number`);
      data[at++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new ModelError(
        'invalid_input',
        `input is not rectangular: expected ${shape[depth]} items at depth ${depth}`,
      );
    }
    for (const x of v) walk(x, depth + 1);
  };
  walk(input, 0);
  return { data, shape };
}

/** A model in wasm memory. Create with nn.sequential, Model.fromSpec, or load(). */
export class Model {
  #handle;
  #source = null;

  /** @internal use nn.sequential / Model.fromSpec / load */
  constructor(handle) {
    this.#handle = handle;
    registry?.register(this, handle, this);
  }

  /** A new model from a SPEC string ("fc1=Linear(3,5),ReLU"), with PyTorch's initialisation. */
  static fromSpec(spec, { seed = randomSeed() } = {}) {
    if (typeof spec !== 'string') throw new ModelError('invalid_argument', 'a SPEC must be a string');
    const handle = new (runtime().ModelHandle)();
    const r = handle.init(spec, seed);
    if (!r.ok) {
      handle.delete();
      check(r);
    }
    return new Model(handle);
  }

  /**
   * A model from the bytes of any readable file: a .mkp model, a PyTorch torch.save file
   * (zip or legacy: state dict, checkpoint or pickled module — never executed) or a
   * safetensors file. The format comes from the bytes. Files that hold weights but not what
   * runs need `architecture` (a SPEC) or, for a pickled custom module, `assumeSequential`;
   * `prefix` ('module.', 'model.': with an architecture) loads only the keys under it, prefix off;
   * `entry` names a checkpoint's entry holding the model ('state_dict', 'ema'; fileInfo lists them).
   */
  static fromBytes(bytes, options = {}) {
    return fromChunks([toUint8Array(bytes)], options);
  }

  /**
   * Where a loaded model came from: { format: 'modelkeep'|'torch-zip'|'torch-legacy'|'safetensors',
   * holds: 'model'|'state dict'|"checkpoint['model_state_dict']"|'module __main__.Model'|...,
   * architectureFrom: 'file'|'module tree'|'architecture option'|'assume_sequential' }; null for
   * models built in this page.
   */
  get source() {
    return this.#source;
  }

  #live() {
    if (!this.#handle) throw new ModelError('disposed', 'this model was disposed');
    return this.#handle;
  }

  /**
   * Runs the model in inference mode.
   * @param {number[][] | Float32Array | ArrayLike<number>} input nested arrays, or flat values with `shape`
   * @param {number[]} [shape]
   * @returns {{ shape: number[], data: Float32Array }}
   */
  forward(input, shape) {
    let data;
    if (Array.isArray(input) && shape === undefined) ({ data, shape } = fromNested(input));
    else {
      if (!Array.isArray(shape))
        throw new ModelError('invalid_input', 'flat input needs a shape, e.g. forward(data, [1, 3])');
      data = input instanceof Float32Array ? input : Float32Array.from(input);
    }
    const r = check(this.#live().forward(data, shape));
    return { shape: r.shape, data: r.data };
  }

  /**
   * The handle, in a module that does more than load and run models: a model the reader holds
   * moves to the core (or the importer, when only that is loaded) first. `what` names the call
   * for the not_ready that says to load one.
   */
  #full(what) {
    const handle = this.#live();
    if (!handle.lean) return handle;
    const m = loadedModule('core') ?? loadedModule('importer');
    if (!m) {
      throw new ModelError(
        'not_ready',
        `${what} needs modelkeep's core module: this model was read by load() into the reader, which ` +
          `loads and runs models only; await ready() first (the model then moves to the core)`,
      );
    }
    return moveTo(this, m);
  }

  /** { [key]: { shape, data } } in PyTorch's order ("0.weight", "0.bias", ...); copies. */
  stateDict() {
    const out = {};
    for (const e of this.#full('stateDict()').stateDict()) out[e.name] = { shape: e.shape, data: e.data };
    return out;
  }

  /**
   * Copies tensors into the model. Any shape mismatch throws (shape_mismatch); with strict
   * (the default), so do missing and unexpected keys. Nothing changes when it throws.
   * @param {Record<string, {shape: number[], data: ArrayLike<number>}> | Map | Uint8Array} stateDict
   *   or the bytes of any readable file (.mkp, PyTorch .pt, safetensors)
   * @returns {{ missingKeys: string[], unexpectedKeys: string[] }}
   */
  loadStateDict(stateDict, { strict = true } = {}) {
    let entries;
    if (stateDict instanceof Uint8Array || stateDict instanceof ArrayBuffer) {
      const u8 = toUint8Array(stateDict);
      const r = orImporter(runtime().readTensors(u8), 'loadStateDict() of a PyTorch or safetensors file', (m) =>
        m.readTensors(u8),
      );
      entries = check(r).stateDict;
    } else {
      const pairs = stateDict instanceof Map ? [...stateDict] : Object.entries(stateDict ?? {});
      entries = pairs.map(([name, t]) => ({
        name,
        shape: t?.shape,
        data: t?.data instanceof Float32Array ? t.data : Float32Array.from(t?.data ?? []),
      }));
    }
    const r = check(this.#full('loadStateDict()').loadStateDict(entries, strict));
    return { missingKeys: r.missingKeys, unexpectedKeys: r.unexpectedKeys };
  }

  /**
   * The model as bytes: modelkeep's single file (the default), or its state dict as
   * 'safetensors' or 'pt' (a torch zip that torch.load(path, weights_only=True) loads, with
   * PyTorch's key names; f32, f16 or bf16).
   * @param {{ format?: 'mkp'|'safetensors'|'pt', dtype?: 'f32'|'f16'|'bf16'|'int8', metadata?: Record<string,string>, stateDictOnly?: boolean }} [options]
   */
  toBytes({ format = 'mkp', ...options } = {}) {
    if (format === 'mkp') return encode(this, options).bytes;
    if (format !== 'safetensors' && format !== 'pt') {
      throw new ModelError('invalid_argument', `format must be 'mkp', 'safetensors' or 'pt', got ${String(format)}`);
    }
    const { dtype = this.weightDtype === 'int8' ? 'f32' : this.weightDtype, metadata = {} } = options;
    checkMetadata(metadata);
    const own = this.#live();
    const r = orImporter(
      own.exportBytes(format, String(dtype), metadata ?? {}),
      `toBytes({ format: '${format}' })`,
      (m) => {
        // A copy of this model, as it is held, in the importer's memory for the export.
        const handle = new m.ModelHandle();
        try {
          check(handle.give(check(own.take())));
          return handle.exportBytes(format, String(dtype), metadata ?? {});
        } finally {
          handle.delete();
        }
      },
    );
    return check(r).bytes;
  }

  static {
    fromChunks = (
      chunks,
      { architecture, assumeSequential = false, prefix, entry, weightDtype } = {},
      m = runtime(),
    ) => {
      if (architecture !== undefined && (typeof architecture !== 'string' || architecture === '')) {
        throw new ModelError('invalid_argument', 'architecture must be a non-empty SPEC string');
      }
      if (architecture !== undefined && assumeSequential) {
        throw new ModelError('invalid_argument', 'give either architecture or assumeSequential, not both');
      }
      if (entry !== undefined && (typeof entry !== 'string' || entry === '')) {
        throw new ModelError('invalid_argument', 'entry must be the non-empty name of a checkpoint entry');
      }
      if (prefix !== undefined && (typeof prefix !== 'string' || architecture === undefined)) {
        throw new ModelError('invalid_argument', 'prefix must be a string, given with an architecture');
      }
      if (!Array.isArray(chunks) || !chunks.every((c) => c instanceof Uint8Array)) {
        throw new ModelError('invalid_argument', 'a file in chunks must be an array of Uint8Arrays');
      }
      const args = [architecture ?? '', Boolean(assumeSequential), prefix ?? '', entry ?? ''];
      let handle = new m.ModelHandle();
      let r = handle.load(chunks, ...args);
      if (!r.ok && r.code === 'needs_importer') {
        // Imported in the importer module, where the model then stays: its handle has every
        // method the core's has, and a move to the core (.mkp bytes) would cost a second copy
        // of the weights and an encode + decode (measured: docs/PERFORMANCE.md).
        handle.delete();
        handle = new (importer('reading a PyTorch or safetensors file (load, Model.fromBytes)').ModelHandle)();
        r = handle.load(chunks, ...args);
      }
      if (!r.ok) {
        handle.delete();
        check(r);
      }
      const model = new Model(handle);
      model.#source = { format: r.format, holds: r.holds, architectureFrom: r.architectureFrom };
      if (weightDtype !== undefined) {
        try {
          model.setWeightDtype(weightDtype);
        } catch (e) {
          model.dispose();
          throw e;
        }
      }
      return model;
    };

    moveTo = (model, m) => {
      const handle = model.#live();
      if (handle instanceof m.ModelHandle) return handle;
      const taken = check(handle.take());
      const moved = new m.ModelHandle();
      const r = moved.give(taken);
      if (!r.ok) {
        moved.delete();
        check(r);
      }
      registry?.unregister(model);
      handle.delete();
      model.#handle = moved;
      registry?.register(model, moved, model);
      return moved;
    };

    // The bytes and the file's info in one call (io.js's save needs both).
    encode = (model, { dtype = model.weightDtype, metadata = {}, stateDictOnly = false, chunkBytes = 0 } = {}) => {
      if (!DTYPES.includes(dtype)) {
        throw new ModelError('invalid_argument', `dtype must be one of ${DTYPES.join(', ')}, got ${String(dtype)}`);
      }
      checkMetadata(metadata);
      const { bytes, chunks, ...info } = check(
        model.#full('toBytes()').toBytes(dtype, metadata ?? {}, stateDictOnly, chunkBytes),
      );
      return chunks ? { chunks, info } : { bytes, info };
    };
  }

  /** The canonical SPEC: "0=Linear(3,5),1=ReLU". */
  get architecture() {
    return this.#live().architecture();
  }

  /** [{ name, kind, spec }] */
  get layers() {
    return this.#live().layers();
  }

  /**
   * The dtype the Linear weights are held in: 'f32', or 'f16' | 'bf16' | 'int8' when compact
   * (half or a quarter of the memory; faster at batch 1 on large models, no gain on small ones:
   * the figures are in docs/PERFORMANCE.md). A .mkp saved with compact weights loads compact.
   * @returns {'f32'|'f16'|'bf16'|'int8'}
   */
  get weightDtype() {
    return this.#live().weightDtype();
  }

  /**
   * Holds every Linear weight in `dtype` from now on: 'f16', 'bf16' or 'int8' (one scale per
   * output row) keep it compact and the kernels decode it in registers, never expanding it;
   * 'f32' expands it back (to the rounded values). A weight the dtype cannot hold (NaN or
   * infinity; beyond ±65504 for f16) stays as it was and its layer is listed in `unchanged`.
   * @param {'f32'|'f16'|'bf16'|'int8'} dtype
   * @returns {{ unchanged: string[] }}
   */
  setWeightDtype(dtype) {
    if (!DTYPES.includes(dtype)) {
      throw new ModelError('invalid_argument', `dtype must be one of ${DTYPES.join(', ')}, got ${String(dtype)}`);
    }
    return { unchanged: check(this.#full('setWeightDtype()').setWeightDtype(dtype)).unchanged };
  }

  /** Bytes the model's tensors hold in memory (compact weights count what they hold). */
  get memoryBytes() {
    return this.#live().memoryBytes();
  }

  /** sum(p.numel() for p in model.parameters()) */
  get paramCount() {
    return this.#live().paramCount();
  }

  get disposed() {
    return !this.#handle;
  }

  /** Frees the model's wasm memory now. Safe to call twice. */
  dispose() {
    if (!this.#handle) return;
    registry?.unregister(this);
    this.#handle.delete();
    this.#handle = null;
  }
}

if (typeof Symbol.dispose === 'symbol') Model.prototype[Symbol.dispose] = Model.prototype.dispose;

/** Uint8Array view of bytes given as Uint8Array, ArrayBuffer or another typed array. */
export function toUint8Array(bytes) {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new ModelError('invalid_argument', 'expected a Uint8Array or an ArrayBuffer');
}
