// abi.js — the JavaScript side of wasm/bindings.cpp's C ABI (its conventions are at the top of
// that file): wrap(module) gives the rest of the package the calls it makes on a module —
// ModelHandle (init, load, forward, toBytes, exportBytes, stateDict, loadStateDict, ...),
// `abi` (what train.js's TrainerHandle needs of the module: wasm/train_bindings.cpp's calls),
// fileInfo, readTensors, threadCount — each answering a plain object, { ok: true, ... } or
// { ok: false, code, message }, that errors.js's check() turns into a ModelError. The three
// modules have the same ABI and are wrapped alike, but the reader has only the calls that load
// and run a model (ModelHandle#lean: true) and mk_model_take, which moves one to another module.
// Must: read the heap views afresh after every call into wasm (memory growth replaces them);
// copy every result out of wasm memory before the next call; free what it allocates.
import { ModelError } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The calls on an instantiated module `raw` (an Emscripten module of wasm/bindings.cpp). */
export function wrap(raw) {
  // The file the current call reads (mkRead), as chunks with their start offsets, and the
  // file the current call writes (mkSink, mkWrite): set around the call, one at a time.
  let source = null;
  let sink = null;
  let sinkChunk = 0;
  // What the current call copies out (mkTake): the bytes of each tensor or file, in order.
  let taken = [];

  raw.mkRead = (dst, offset, n) => {
    const { chunks, starts } = source;
    let i = starts.length - 1;
    while (starts[i] > offset) i--;
    for (; n > 0; i++) {
      const begin = offset - starts[i];
      const take = Math.min(n, chunks[i].length - begin);
      raw.HEAPU8.set(chunks[i].subarray(begin, begin + take), dst);
      dst += take;
      offset += take;
      n -= take;
    }
  };
  raw.mkSink = (total, chunk) => {
    sinkChunk = chunk > 0 ? chunk : Math.max(total, 1);
    sink = [];
    for (let at = 0; at < total || sink.length === 0; at += sinkChunk)
      sink.push(new Uint8Array(Math.min(sinkChunk, total - at)));
  };
  raw.mkWrite = (src, offset, n) => {
    while (n > 0) {
      const i = Math.floor(offset / sinkChunk);
      const within = offset - i * sinkChunk;
      const take = Math.min(n, sinkChunk - within);
      sink[i].set(raw.HEAPU8.subarray(src, src + take), within);
      src += take;
      offset += take;
      n -= take;
    }
  };

  raw.mkTake = (at, n) => taken.push(raw.HEAPU8.slice(at, at + n));
  /** fn(), and the byte arrays it copied out (mkTake). */
  const taking = (fn) => {
    taken = [];
    try {
      return [fn(), taken];
    } finally {
      taken = [];
    }
  };

  /** The JSON answer at address p (NUL-terminated). */
  const answer = (p) => {
    const heap = raw.HEAPU8;
    p >>>= 0;
    return JSON.parse(decoder.decode(heap.slice(p, heap.indexOf(0, p))));
  };
  const lastAnswer = () => answer(raw._mk_answer());
  const dimsAt = (raw._mk_dims() >>> 0) / 8;
  /** Writes a JS shape into mk_dims() → the rank to pass (9, which the core refuses, if it is none). */
  const putShape = (shape) => {
    if (!Array.isArray(shape) || shape.length > 8) return 9;
    const dims = raw.HEAPF64;
    shape.forEach((d, i) => (dims[dimsAt + i] = typeof d === 'number' ? d : NaN));
    return shape.length;
  };

  /** fn(address of an args block of `strings` and, when given, `metadata`), the block freed after. */
  const withArgs = (strings, metadata, fn) => {
    const parts = strings.map((s) => encoder.encode(String(s)));
    const meta = metadata ? Object.entries(metadata).flatMap(([k, v]) => [encoder.encode(k), encoder.encode(v)]) : [];
    let size = metadata ? 4 : 0;
    for (const p of [...parts, ...meta]) size += 4 + p.length;
    const at = raw._mk_alloc(size) >>> 0;
    if (!at) return { ok: false, code: 'out_of_memory', message: `arguments of ${size} bytes do not fit in memory` };
    try {
      const heap = raw.HEAPU8;
      let o = at;
      const u32 = (v) => {
        for (let k = 0; k < 4; k++) heap[o++] = (v >>> (8 * k)) & 255;
      };
      const put = (p) => {
        u32(p.length);
        heap.set(p, o);
        o += p.length;
      };
      parts.forEach(put);
      if (metadata) {
        u32(meta.length / 2);
        meta.forEach(put);
      }
      return fn(at);
    } finally {
      raw._mk_free(at);
    }
  };

  /** fn(size) with `file` (a Uint8Array, or the Uint8Arrays of its chunks) as the current source. */
  const withSource = (file, fn) => {
    const chunks = Array.isArray(file) ? file : [file];
    const starts = [];
    let size = 0;
    for (const c of chunks) {
      starts.push(size);
      size += c.length;
    }
    source = { chunks, starts };
    try {
      return fn(size);
    } finally {
      source = null;
    }
  };

  /** The tensors of a { stateDict: [{ name, shape }] } answer, with the values it copied out. */
  const withValues = ([r, values]) => {
    if (r.ok) r.stateDict.forEach((e, i) => (e.data = new Float32Array(values[i].buffer)));
    return r;
  };

  // The reader (MODELKEEP_READER) has no mk_model_init: it loads .mkp models and runs them only.
  const lean = typeof raw._mk_model_init !== 'function';

  class ModelHandle {
    #p;
    /** True in the reader module: load, forward, describe and take only (model.js moves the rest). */
    get lean() {
      return lean;
    }
    constructor() {
      this.#p = raw._mk_model_new();
      if (!this.#p) throw new ModelError('out_of_memory', 'no memory left for a model');
    }
    init(spec, seed) {
      return withArgs([spec], null, (a) => answer(raw._mk_model_init(this.#p, a, seed)));
    }
    load(file, architecture, assumeSequential, prefix, entry) {
      return withSource(file, (size) =>
        withArgs([architecture, prefix, entry], null, (a) =>
          answer(raw._mk_model_load(this.#p, size, a, assumeSequential ? 1 : 0)),
        ),
      );
    }
    exportBytes(format, dtype, metadata) {
      // The reader has no mk_model_export: it answers as the core does, needing the importer.
      if (lean) return { ok: false, code: 'needs_importer', message: `exporting to ${format} needs the importer` };
      const [r, [bytes]] = taking(() =>
        withArgs([format, dtype], metadata, (a) => answer(raw._mk_model_export(this.#p, a))),
      );
      if (r.ok) r.bytes = bytes;
      return r;
    }
    forward(data, shape) {
      const rank = putShape(shape);
      const input = raw._mk_forward_input(this.#p, rank, data.length) >>> 0;
      if (!input) return lastAnswer();
      raw.HEAPF32.set(data, input / 4);
      const output = raw._mk_forward_run(this.#p);
      if (!output) return lastAnswer();
      const dims = raw.HEAPF64;
      const out = Array.from(dims.subarray(dimsAt + 1, dimsAt + 1 + dims[dimsAt]));
      const at = (output >>> 0) / 4;
      return { ok: true, shape: out, data: raw.HEAPF32.slice(at, at + out.reduce((a, b) => a * b, 1)) };
    }
    toBytes(dtype, metadata, stateDict, chunkBytes) {
      const r = withArgs([dtype], metadata, (a) =>
        answer(raw._mk_model_to_bytes(this.#p, a, stateDict ? 1 : 0, chunkBytes)),
      );
      if (r.ok) {
        if (chunkBytes > 0) r.chunks = sink;
        else r.bytes = sink[0];
      }
      sink = null;
      return r;
    }
    stateDict() {
      return withValues(taking(() => answer(raw._mk_state_dict(this.#p)))).stateDict;
    }
    loadStateDict(entries, strict) {
      if (!Array.isArray(entries))
        return { ok: false, code: 'invalid_input', message: 'a state dict must be an array of entries' };
      const begun = answer(raw._mk_sd_begin(entries.length));
      if (!begun.ok) return begun;
      for (const { name, shape, data } of entries) {
        const named = typeof name === 'string';
        const rank = named ? putShape(shape) : 9;
        const at = withArgs([named ? name : ''], null, (a) => raw._mk_sd_add(a, rank, data?.length ?? NaN)) >>> 0;
        if (!at) return lastAnswer();
        raw.HEAPF32.set(data, at / 4);
      }
      return answer(raw._mk_sd_load(this.#p, strict ? 1 : 0));
    }
    /** → { ok, architecture, tensors: [{ dtype, shape, data: Uint8Array }] }: the model as it is held. */
    take() {
      const [r, values] = taking(() => answer(raw._mk_model_take(this.#p)));
      if (r.ok) r.tensors.forEach((t, i) => (t.data = values[i]));
      return r;
    }
    /** The model another module's take() gave → ok (this handle now holds it), or the failure. */
    give({ architecture, tensors }) {
      const begun = withArgs([architecture], null, (a) => answer(raw._mk_give_begin(a)));
      if (!begun.ok) return begun;
      for (const { dtype, data } of tensors) {
        const at = withArgs([dtype], null, (a) => raw._mk_give_add(a, data.length)) >>> 0;
        if (!at) return lastAnswer();
        raw.HEAPU8.set(data, at);
      }
      return answer(raw._mk_give_end(this.#p));
    }
    setWeightDtype(dtype) {
      return withArgs([dtype], null, (a) => answer(raw._mk_set_weight_dtype(this.#p, a)));
    }
    #describe() {
      return answer(raw._mk_model_describe(this.#p));
    }
    architecture() {
      return this.#describe().architecture;
    }
    layers() {
      return this.#describe().layers;
    }
    paramCount() {
      return this.#describe().paramCount;
    }
    weightDtype() {
      return this.#describe().weightDtype;
    }
    memoryBytes() {
      return this.#describe().memoryBytes;
    }
    /** @internal the address, for TrainerHandle (same module only) */
    get address() {
      return this.#p;
    }
    delete() {
      raw._mk_model_delete(this.#p);
      this.#p = 0;
    }
  }

  return {
    ModelHandle,
    /** What train.js builds its TrainerHandle from (the importer's training calls). */
    abi: {
      raw,
      withArgs,
      withSource,
      answer,
      lastAnswer,
      putShape,
      dimsAt,
      /** The file the last call wrote (mkSink / mkWrite), handed over once. */
      takeSink: () => {
        const s = sink;
        sink = null;
        return s;
      },
    },
    /** Any readable file → its info object (checkData: every value read and checked too). */
    fileInfo: (file, checkData) => withSource(file, (size) => answer(raw._mk_file_info(size, checkData ? 1 : 0))),
    /** Any readable file → { ok, format, stateDict: [{ name, shape, data }] }. */
    readTensors: (file) => withValues(taking(() => withSource(file, (size) => answer(raw._mk_read_tensors(size))))),
    threadCount: () => raw._mk_thread_count(),
    /** The module's memory, as bytes (its byteLength is what the module holds). */
    get HEAPU8() {
      return raw.HEAPU8;
    },
  };
}
