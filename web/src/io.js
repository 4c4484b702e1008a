// io.js — save and load through storage URLs, in the spirit of TensorFlow.js:
//   indexeddb://name   the page's IndexedDB (store.js): one transaction per save; any scheme of
//                      the `backends` table below names a store that keeps storage.js's contract
//   downloads://name   the browser downloads name.mkp (save only; name.safetensors or
//                      name.pt download the state dict in that format)
//   https://… or a relative URL   fetched, streamed with byte-level progress (load only)
//   a path or file:// URL         Node only
// and, for load, File/Blob, ArrayBuffer and Uint8Array. The bytes are the same everywhere.
// A Trainer (train.js) saves as its model, or with { training: true } as a checkpoint (the model
// plus its TRAINING section), which load(…, { training: true }) resumes as a Trainer.
import { ModelError, check } from './errors.js';
import { Model, encode, fromChunks, toUint8Array, withImporter } from './model.js';
import { currentPlatform, isNode, loadedModule, module, needsImporter, ready, requested, runtime } from './runtime.js';
import { openStore } from './store.js';

/** The key of a Trainer's checkpoint saver (train.js), which save() hands a training save to. */
const checkpointOf = Symbol.for('modelkeep.checkpoint');

/**
 * chunks → Promise of a Trainer resumed from them: set by train.js (useTrainer) when it is loaded,
 * so that a page that never trains does not carry it.
 */
let resumeTrainer = null;
export function useTrainer(resume) {
  resumeTrainer = resume;
}

/** URL scheme → async opener of its store (the contract in storage.js). A new backend is one line. */
export const backends = { 'indexeddb://': openStore };
const DOWNLOADS = 'downloads://';

/** scheme → Promise<Store>: each backend opened once, on first use (and again after a failure). */
const stores = new Map();
function openBackend(scheme) {
  if (!stores.has(scheme)) {
    stores.set(
      scheme,
      backends[scheme]().catch((e) => {
        stores.delete(scheme);
        throw inNode(scheme, e);
      }),
    );
  }
  return stores.get(scheme);
}

/** Must tell a Node user without IndexedDB the two ways that work there: a file, or a shim. */
function inNode(scheme, e) {
  if (!isNode() || scheme !== 'indexeddb://' || e?.code !== 'storage_unavailable' || globalThis.indexedDB) return e;
  const err = new ModelError(
    'storage_unavailable',
    `${scheme} needs IndexedDB, which Node does not have: in Node, save to a file path instead ` +
      `(save(model, './model.mkp'), then load('./model.mkp')), or install an in-memory IndexedDB ` +
      `first: npm install fake-indexeddb, then import 'fake-indexeddb/auto' before modelkeep`,
  );
  err.cause = e;
  return err;
}

/** The backend scheme a storage URL starts with, or undefined. */
function schemeOf(url) {
  return typeof url === 'string' ? Object.keys(backends).find((scheme) => url.startsWith(scheme)) : undefined;
}

/** { store, name } for a storage URL (a backend's scheme, then the name); invalid_argument otherwise. */
async function locate(url, what = 'url') {
  const scheme = schemeOf(url);
  if (!scheme || url.length === scheme.length) {
    const forms = Object.keys(backends)
      .map((s) => `'${s}name'`)
      .join(' or ');
    throw new ModelError('invalid_argument', `${what} must look like ${forms}, got ${String(url)}`);
  }
  return { store: await openBackend(scheme), name: url.slice(scheme.length) };
}

/** The info record kept beside the bytes (what listModels() shows), from the wasm side's info. */
function describe(i) {
  return {
    kind: i.kind,
    version: i.version,
    dtype: i.dtype,
    params: i.params,
    architecture: i.architecture,
    layers: i.layers.map((l) => l.spec),
    metadata: i.metadata,
    ...(i.training ? { training: true } : {}),
  };
}

function publicInfo(info) {
  const { name, chunks, ...rest } = info; // storage details stay inside
  return rest;
}

/**
 * Saves a model (or bytes of a .mkp file).
 * @param {Model | Uint8Array} model
 * @param {string} url indexeddb://name, downloads://name, or (Node) a path / file:// URL
 * @param {{ dtype?: string, metadata?: Record<string,string>, onProgress?: (p: {loaded:number,total:number}) => void, training?: boolean }} [options]
 *   training: save a Trainer as its checkpoint (the model plus its TRAINING section), or, to a
 *   name ending .pt/.pth, as a PyTorch general checkpoint (train.js)
 *   dtype: how weights are stored, by default as the model holds them (model.weightDtype)
 * @returns {Promise<object>} the saved info: a .mkp's ModelInfo ({ kind, version, dtype, params,
 *   architecture, layers, metadata, bytes, dateSaved }); a state dict exported as .pt / .safetensors
 *   gives the same fields less `version` (no .mkp was written) plus `format` (index.d.ts ExportInfo)
 */
export async function save(model, url, { dtype, metadata = {}, onProgress, training = false } = {}) {
  await ready();
  const scheme = schemeOf(url);
  const format = !scheme && (typeof url === 'string' || url instanceof URL) ? exportFormat(url) : 'mkp';
  // A Trainer (train.js): its checkpoint with { training: true } (saved there: storing), else its model.
  const checkpoint = model?.[checkpointOf];
  if (training && !checkpoint) throw new ModelError('invalid_argument', '{ training: true } saves a Trainer');
  if (training) return model[checkpointOf](url, scheme, format, arguments[2]);
  if (checkpoint) model = model.model;
  if (format !== 'mkp') {
    if (!(model instanceof Model)) {
      throw new ModelError('invalid_argument', `saving as .${format} needs a Model, not bytes`);
    }
    const bytes = await withImporter(() => model.toBytes({ format, dtype, metadata }));
    const stored = dtype ?? (model.weightDtype === 'int8' ? 'f32' : model.weightDtype);
    const info = {
      format,
      kind: 'state_dict',
      dtype: stored,
      params: model.paramCount,
      architecture: model.architecture,
      layers: model.layers.map((l) => l.spec),
      metadata: { ...metadata },
    };
    return write(bytes, url, info, onProgress);
  }
  // A model's info comes with its bytes; bytes from elsewhere are read (and checked) once.
  // Into a store, a model is written by wasm straight into the chunks the store keeps.
  const chunkBytes = model instanceof Model && scheme ? (await openBackend(scheme)).chunkBytes : 0;
  const {
    bytes,
    chunks,
    info: raw,
  } = model instanceof Model
    ? encode(model, { dtype, metadata, chunkBytes })
    : { bytes: toUint8Array(model), info: runtime().fileInfo(toUint8Array(model), false) };
  if (raw.code === 'needs_importer') {
    throw new ModelError(
      'invalid_argument',
      `save() stores modelkeep bytes; these are not a .mkp file: load() it into a Model first`,
    );
  }
  check(raw);
  if (raw.format !== 'modelkeep') {
    throw new ModelError(
      'invalid_argument',
      `save() stores modelkeep bytes; these are a ${raw.format} file: load() it into a Model first`,
    );
  }
  const info = describe(raw);
  return write(chunks ?? bytes, url, info, onProgress);
}

/** What train.js saves a checkpoint with: a backend's store (its chunkBytes), describe(), write(). */
export const storing = { openBackend, describe, write };

// .safetensors / .pt / .pth at the end of a downloads:// name or a path choose that format.
function exportFormat(url) {
  const lower = String(url).toLowerCase();
  if (lower.endsWith('.safetensors')) return 'safetensors';
  if (lower.endsWith('.pt') || lower.endsWith('.pth')) return 'pt';
  return 'mkp';
}

/** bytes: a Uint8Array, or (into a store only) the file's chunks in order. */
async function write(bytes, url, info, onProgress) {
  if (schemeOf(url)) {
    const { store, name } = await locate(url);
    return publicInfo(await store.put(name, bytes, info, { onProgress }));
  }
  if (typeof url === 'string' && url.startsWith(DOWNLOADS)) {
    if (typeof document === 'undefined') throw new ModelError('invalid_argument', 'downloads:// needs a browser page');
    const name = url.slice(DOWNLOADS.length) || 'model';
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    a.download = info.format || name.endsWith('.mkp') ? name : `${name}.mkp`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    onProgress?.({ loaded: bytes.length, total: bytes.length });
    return { ...info, bytes: bytes.length, dateSaved: new Date().toISOString() };
  }
  if (isNode() && (typeof url === 'string' || url instanceof URL)) {
    // Read back before it replaces anything: the same bytes, and a file modelkeep can read.
    // (A .pt or .safetensors export is read back by the importer, loaded for the export.)
    const reader = info.format ? (loadedModule('importer') ?? runtime()) : runtime();
    await currentPlatform().writeFile(url, bytes, (back) => check(reader.fileInfo(back, true)));
    onProgress?.({ loaded: bytes.length, total: bytes.length });
    return { ...info, bytes: bytes.length, dateSaved: new Date().toISOString() };
  }
  const forms = [...Object.keys(backends), DOWNLOADS].map((s) => `${s}name`).join(' or ');
  throw new ModelError('invalid_argument', `cannot save to ${String(url)}: use ${forms}`);
}

async function readStream(body, total, onProgress) {
  const reader = body.getReader();
  const parts = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onProgress?.({ loaded, total: total ?? loaded });
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The bytes behind any source load() accepts (no WebAssembly module is needed for them). */
export async function loadBytes(source, { onProgress } = {}) {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
    return toUint8Array(source);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return readStream(source.stream(), source.size, onProgress);
  }
  const text = source instanceof URL ? source.href : source;
  if (typeof text !== 'string') throw new ModelError('invalid_argument', `cannot load from ${String(source)}`);
  if (schemeOf(text)) {
    const { store, name } = await locate(text);
    return store.get(name, { onProgress });
  }
  if (isNode() && (text.startsWith('file:') || !/^[a-z][a-z0-9+.-]*:/i.test(text))) {
    const bytes = await currentPlatform().readFile(text);
    onProgress?.({ loaded: bytes.length, total: bytes.length });
    return bytes;
  }
  let response;
  try {
    response = await fetch(text);
  } catch (e) {
    throw new ModelError('network_error', `cannot fetch ${text}: ${e.message}`);
  }
  if (!response.ok) {
    throw new ModelError(
      response.status === 404 ? 'not_found' : 'network_error',
      `fetching ${text} gave HTTP ${response.status}`,
    );
  }
  const type = response.headers.get('content-type') ?? '';
  if (/^\s*text\/html\b/i.test(type)) {
    await response.body?.cancel().catch(() => {});
    throw htmlInstead(text, `its content-type is ${type}`);
  }
  const length = Number(response.headers.get('content-length')) || undefined;
  const bytes = response.body
    ? await readStream(response.body, length, onProgress)
    : new Uint8Array(await response.arrayBuffer());
  if (looksLikeHtml(bytes)) throw htmlInstead(text, 'it starts with <!doctype html> or <html>');
  return bytes;
}

/**
 * An HTML page where a model file was expected: most often a server (a dev server, a single-page
 * app's host) answering a path it does not have with its index.html and status 200. So: not_found.
 */
function htmlInstead(url, why) {
  return new ModelError(
    'not_found',
    `fetching ${url} returned an HTML page, not a model file (${why}): the URL most likely names no ` +
      `file on the server, which answered with a page instead (often index.html); check the path ` +
      `and that the file is served`,
  );
}

/** True when the bytes begin, after a BOM and whitespace, with <!doctype html or <html (any case). */
function looksLikeHtml(bytes) {
  const head = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false }).decode(bytes.subarray(0, 64));
  return /^\s*<(!doctype\s+html|html)[\s>]/i.test(head);
}

/**
 * Loads a model from indexeddb://name, a URL, a File/Blob, bytes, or (Node) a path. The bytes
 * may be a .mkp, a PyTorch .pt (zip or legacy) or a safetensors file; `architecture` (a SPEC)
 * or `assumeSequential` say what runs when the file does not (see Model.fromBytes);
 * `weightDtype` holds the weights in that dtype once loaded (see Model#setWeightDtype).
 * With nothing else loaded, a plain .mkp is read by the reader module alone (runtime.js); a load
 * that fails loads the core before it rejects.
 * @returns {Promise<Model>}
 */
export async function load(source, options = {}) {
  try {
    return await read(source, options);
  } catch (e) {
    // What a page does when there is nothing to load yet — build a model (nn.sequential, which is
    // synchronous) — needs the core: it is loaded before the failure is reported, as every other
    // async call loads it (a core that cannot load leaves the load's own error to report).
    await ready().catch(() => {});
    throw e;
  }
}

async function read(source, givenOptions) {
  const {
    onProgress,
    architecture,
    assumeSequential,
    prefix,
    entry,
    weightDtype,
    training = false,
  } = givenOptions ?? {};
  const text = source instanceof URL ? source.href : source;
  // A stored model goes to wasm as its chunks, read in place: no joined copy of the file in JS.
  let chunks;
  if (schemeOf(text)) {
    const { store, name } = await locate(text);
    chunks = await store.getChunks(name, { onProgress });
  } else {
    chunks = [await loadBytes(source, { onProgress })];
  }
  // A training checkpoint: a Trainer (train.js registers how; the importer module is loaded there).
  if (training) {
    if (!resumeTrainer) throw new ModelError('not_ready', "{ training: true } needs modelkeep's Trainer: import it");
    // All the options as given (train.js checks them): a .pt general checkpoint takes the trainer's too.
    return resumeTrainer(chunks, givenOptions);
  }
  const options = { architecture, assumeSequential, prefix, entry, weightDtype };
  // A model file read as it is, with no other module asked for yet: the reader module, which a page
  // that loads and predicts needs alone (runtime.js); its models move to the core for the rest.
  const plain =
    architecture === undefined &&
    !assumeSequential &&
    prefix === undefined &&
    entry === undefined &&
    weightDtype === undefined;
  if (plain && !requested('core')) {
    const reader = await module('reader');
    try {
      return await withImporter(() => fromChunks(chunks, options, reader));
    } catch (e) {
      // A state dict: the core says which architecture its tensors suggest.
      if (e?.code !== 'needs_architecture') throw e;
    }
  }
  await ready();
  // A file other than .mkp: the importer module, fetched once on first use (runtime.js).
  return withImporter(() => fromChunks(chunks, options));
}

/** { 'indexeddb://name': { dateSaved, bytes, dtype, params, layers, metadata, ... } }, without reading weights. */
export async function listModels() {
  await ready();
  const out = {};
  for (const scheme of Object.keys(backends)) {
    const all = await (await openBackend(scheme)).list();
    for (const [name, info] of Object.entries(all)) out[scheme + name] = publicInfo(info);
  }
  return out;
}

/** The info of one stored model, without reading its weights. */
export async function modelInfo(url) {
  await ready();
  const { store, name } = await locate(url);
  return publicInfo(await store.info(name));
}

export async function removeModel(url) {
  await ready();
  const { store, name } = await locate(url);
  await store.remove(name);
}

/** Source and destination in one store: a copy or move is one atomic step of that store. */
async function locatePair(from, to) {
  const source = await locate(from, 'source');
  const destination = await locate(to, 'destination');
  if (source.store !== destination.store) {
    throw new ModelError('invalid_argument', `${String(from)} and ${String(to)} are in different storages`);
  }
  return [source.store, source.name, destination.name];
}

/** Copies a stored model (replacing the destination atomically). */
export async function copyModel(from, to) {
  await ready();
  const [store, source, destination] = await locatePair(from, to);
  await store.copy(source, destination);
}

/** Renames a stored model: copy then delete, in one transaction. */
export async function moveModel(from, to) {
  await ready();
  const [store, source, destination] = await locatePair(from, to);
  await store.move(source, destination);
}

/**
 * Calls back whenever stored models change, in this tab or another, with the names (within their
 * store) that changed; returns an unsubscribe function.
 */
export async function onModelsChange(callback) {
  await ready();
  const all = await Promise.all(Object.keys(backends).map(openBackend));
  const unsubscribes = all.map((store) => store.onChange(callback));
  return () => unsubscribes.forEach((unsubscribe) => unsubscribe());
}

/**
 * What a file holds, without decoding the weights. For .mkp bytes: the fields listModels()
 * shows plus the tensor table (format 'modelkeep'); with `checkData`, the data checksum is
 * verified too (checksum_mismatch). For PyTorch and safetensors files: { format, holds,
 * architecture (null unless the file defines one), architectureNote, moduleTree, globals,
 * tensors: [{ name, dtype, shape }], metadata, bytes }; with `checkData`, every tensor is read.
 * Those need the importer module: not_ready until ready({ importer: true }) (or a load() of such
 * a file) has loaded it.
 */
export function fileInfo(bytes, { checkData = false } = {}) {
  const u8 = toUint8Array(bytes);
  let i = runtime().fileInfo(u8, checkData);
  if (i.code === 'needs_importer') {
    const m = loadedModule('importer');
    if (!m) throw needsImporter('fileInfo() of a file that is not .mkp (PyTorch, safetensors)');
    i = m.fileInfo(u8, checkData);
  }
  check(i);
  if (i.format !== 'modelkeep') {
    const { ok, elements, layers, dataChecked, ...rest } = i;
    return { ...rest, layers: layers.map((l) => l.spec), bytes: u8.length };
  }
  const tensors = i.tensors.map(({ name, dtype, shape, bytes: stored }) => ({ name, dtype, shape, bytes: stored }));
  return { ...describe(i), format: 'modelkeep', bytes: u8.length, tensors };
}
