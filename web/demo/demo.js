// demo.js — PyTorch's "save and load a model" tutorial in the browser, and a library of the
// models this site has stored. Plain DOM, no framework: each handler below is what its step's
// code block shows, plus the few lines that put the result on the page.
import * as mk from '../src/index.js';

const {
  nn,
  save,
  load,
  loadBytes,
  listModels,
  modelInfo,
  copyModel,
  moveModel,
  removeModel,
  onModelsChange,
  fileInfo,
  requestPersistence,
  storageEstimate,
  ModelError,
} = mk;

const tutorialUrl = 'indexeddb://tutorial';
const savedKey = 'modelkeep-demo:saved'; // sessionStorage: the weights as they were saved
const maxShown = 8; // rows and columns shown per tensor
const prefix = 'indexeddb://';

const $ = (id) => document.getElementById(id);

/** The model in memory: { model, source } or null (e.g. right after a reload). */
let current = null;

// ---- small helpers -------------------------------------------------------------------------

/** Creates an element: el('td', { className: 'x', dataset: { value: '1' } }, 'text', child). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('aria-') || key === 'scope') node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const fmtValue = (v) => (Object.is(v, -0) ? 0 : v).toFixed(6);
/**
 * A duration to 2–3 significant digits ("0.42 ms", "12.3 ms", "250 ms"). Browsers round
 * performance.now() (to 0.1 ms unless the page is cross-origin isolated), so a measured 0 is
 * "< 0.1 ms", never "0.000 ms".
 */
function fmtMs(ms) {
  if (!(ms > 0)) return '< 0.1 ms';
  if (ms < 0.01) return '< 0.01 ms';
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${Number(ms.toPrecision(ms < 1 ? 2 : 3))} ms`;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

const nameOf = (url) => url.slice(prefix.length);
/** "0=Linear(4,8),1=ReLU" → "0=Linear(4,8), 1=ReLU": wraps between layers, not inside them. */
const fmtArch = (spec) => spec.replace(/,(?![^(]*\))/g, ', ');

/** Shows an error in the role="alert" region: "code: message" for a ModelError. */
function showError(err) {
  const alert = $('alert');
  alert.replaceChildren();
  $('alertBox').hidden = !err;
  if (!err) return;
  const code = err instanceof ModelError ? err.code : (err?.name ?? 'Error');
  alert.append(el('strong', {}, code), `: ${err?.message ?? String(err)}`);
}

/** Runs one user action: clears the last error, shows the new one if any. */
async function run(action) {
  showError(null);
  try {
    await action();
  } catch (err) {
    showError(err);
  }
}

/** Wires a button to an action. */
function onClick(id, action) {
  $(id).addEventListener('click', () => run(action));
}

/** An onProgress callback that drives a <progress> element. */
const progressTo =
  (bar) =>
  ({ loaded, total }) => {
    bar.value = total ? loaded / total : 1;
  };

// ---- tensors as tables ---------------------------------------------------------------------

/** Rows × columns of a tensor: matrices by their first dimension, vectors as one column. */
function grid(shape, length) {
  if (shape.length >= 2) return { rows: shape[0], cols: shape[0] ? length / shape[0] : 0 };
  return { rows: length, cols: 1 };
}

/** The documented bound |x − x'| of a stored value (docs/FORMAT.md §10), with float32 slack. */
function bound(dtype, x, rowMax) {
  const a = Math.abs(x);
  const slack = 2 ** -23 * a;
  if (dtype === 'f16') return (a >= 2 ** -14 ? 2 ** -11 * a : 2 ** -25) + slack;
  if (dtype === 'bf16') return 2 ** -8 * a + slack;
  if (dtype === 'int8') return rowMax / 254 + slack;
  return 0;
}

const boundText = {
  f16: "|x − x'| ≤ 2⁻¹¹·|x|",
  bf16: "|x − x'| ≤ 2⁻⁸·|x|",
  int8: "|x − x'| ≤ max|row| / 254",
};

/**
 * Compares a loaded tensor with the saved copy. Matrices were stored in `dtype`; vectors
 * (biases) always as f32, so they must be identical.
 * @returns {{ marks: string[], identical: number, within: number, count: number, maxDiff: number }}
 */
function compareTensor(saved, loaded, dtype) {
  const { rows, cols } = grid(saved.shape, saved.data.length);
  const lossy = saved.shape.length >= 2 ? dtype : 'f32';
  const marks = [];
  let identical = 0;
  let within = 0;
  let maxDiff = 0;
  for (let r = 0; r < rows; r++) {
    let rowMax = 0;
    for (let c = 0; c < cols; c++) rowMax = Math.max(rowMax, Math.abs(saved.data[r * cols + c]));
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const diff = Math.abs(loaded.data[i] - saved.data[i]);
      maxDiff = Math.max(maxDiff, diff);
      if (diff === 0) identical++;
      else if (diff <= bound(lossy, saved.data[i], rowMax)) within++;
      marks.push(diff === 0 ? 'identical' : diff <= bound(lossy, saved.data[i], rowMax) ? 'within' : 'beyond');
    }
  }
  return { marks, identical, within, count: saved.data.length, maxDiff };
}

const markText = { identical: '✓', within: '≈', beyond: '✗' };
const markLabel = { identical: 'identical', within: 'within the bound', beyond: 'differs' };

/** A <table> of one tensor (at most maxShown × maxShown values; the rest is counted). */
function tensorTable(name, tensor, { caption = name, marks, colLabel = 'in' } = {}) {
  const { shape, data } = tensor;
  const { rows, cols } = grid(shape, data.length);
  const shownCols = Math.min(cols, maxShown);
  const head = el('tr', {}, el('th', { scope: 'col' }, el('span', { className: 'sr-only' }, 'row')));
  for (let c = 0; c < shownCols; c++)
    head.append(el('th', { scope: 'col' }, cols === 1 ? 'value' : `${colLabel} ${c}`));
  const body = el('tbody');
  for (let r = 0; r < Math.min(rows, maxShown); r++) {
    const row = el('tr', {}, el('th', { scope: 'row' }, shape.length ? `${r}` : '—'));
    for (let c = 0; c < shownCols; c++) {
      const i = r * cols + c;
      const cell = el('td', { dataset: { value: String(data[i]), index: String(i) } }, fmtValue(data[i]));
      if (marks) {
        cell.dataset.match = marks[i];
        cell.append(
          ' ',
          el(
            'span',
            { className: `mark ${marks[i]}`, title: markLabel[marks[i]], 'aria-label': markLabel[marks[i]] },
            markText[marks[i]],
          ),
        );
      }
      row.append(cell);
    }
    body.append(row);
  }
  const hidden = data.length - Math.min(rows, maxShown) * shownCols;
  return el(
    'div',
    { className: 'table-wrap' },
    el(
      'table',
      { dataset: { tensor: name } },
      el('caption', {}, `${caption} `, el('span', { className: 'shape' }, `(${shape.join('×') || 'scalar'})`)),
      el('thead', {}, head),
      body,
    ),
    hidden > 0 ? el('p', { className: 'note' }, `… and ${hidden} more values`) : null,
  );
}

/** Plain arrays (JSON-safe) of a model's state dict. */
function plainStateDict(model) {
  const out = {};
  for (const [name, t] of Object.entries(model.stateDict())) out[name] = { shape: [...t.shape], data: [...t.data] };
  return out;
}

// ---- the model in memory -------------------------------------------------------------------

function setCurrent(model, source) {
  if (current && current.model !== model) current.model.dispose();
  current = model ? { model, source } : null;
  showCurrent();
}

function showCurrent() {
  const weights = $('weights');
  weights.replaceChildren();
  $('save').disabled = !current;
  $('predict').disabled = !current;
  if (!current) {
    const reloaded = performance.getEntriesByType('navigation')[0]?.type === 'reload';
    $('current').textContent = reloaded
      ? 'Nothing in memory: the page was reloaded, so the model created here is gone. Load it back in step 4.'
      : 'No model in memory yet.';
    return;
  }
  const { model, source } = current;
  $('current').textContent = `In memory: ${source} — ${fmtArch(model.architecture)}, ${model.paramCount} parameters.`;
  for (const [name, t] of Object.entries(model.stateDict())) weights.append(tensorTable(name, t));
}

// ---- the tutorial --------------------------------------------------------------------------

function createModel() {
  const model = nn.sequential({ fc1: nn.linear(3, 5) });
  setCurrent(model, 'the model created in step 1');
}

function saveCode() {
  return `import { save } from 'modelkeep';

const info = await save(model, '${tutorialUrl}', {
  dtype: '${$('dtype').value}',
  onProgress: ({ loaded, total }) => { bar.value = loaded / total; },
});
info.bytes;  // the size of the saved file`;
}

async function saveModel() {
  const { model } = current;
  const dtype = $('dtype').value;
  const bar = $('saveProgress');
  bar.value = 0;
  // The weights as they are now, kept in sessionStorage: they outlive the reload of step 3.
  const copy = { url: tutorialUrl, dtype, tensors: plainStateDict(model) };
  const start = performance.now();
  const info = await save(model, tutorialUrl, {
    dtype,
    onProgress: progressTo(bar),
  });
  const ms = performance.now() - start;
  Object.assign(copy, { bytes: info.bytes, ms, dateSaved: info.dateSaved });
  sessionStorage.setItem(savedKey, JSON.stringify(copy));
  showSaved(copy);
  await refreshLibrary();
}

function readSaved() {
  try {
    return JSON.parse(sessionStorage.getItem(savedKey) ?? 'null');
  } catch {
    return null;
  }
}

function showSaved(copy) {
  const saved = $('saved');
  if (!copy) {
    saved.textContent = '';
    return;
  }
  saved.replaceChildren(
    'Saved ',
    el('code', {}, copy.url),
    ' as ',
    el('strong', {}, copy.dtype),
    ': ',
    el('strong', { dataset: { testid: 'saved-bytes' } }, `${copy.bytes} bytes`),
    ` in ${fmtMs(copy.ms)}`,
    ` (${new Date(copy.dateSaved).toLocaleTimeString()}).`,
  );
}

function showReloaded() {
  const reloaded = performance.getEntriesByType('navigation')[0]?.type === 'reload';
  const copy = readSaved();
  if (!reloaded) return;
  $('reloaded').textContent = copy
    ? `Reloaded at ${new Date().toLocaleTimeString()}. The model is no longer in memory (see step 1); ` +
      `its saved weights are in IndexedDB. Load them back in step 4.`
    : `Reloaded at ${new Date().toLocaleTimeString()}. Nothing was saved in this tab yet.`;
}

async function loadModel() {
  const bar = $('loadProgress');
  bar.value = 0;
  const start = performance.now();
  const model = await load(tutorialUrl, { onProgress: progressTo(bar) });
  const ms = performance.now() - start;
  setCurrent(model, tutorialUrl);
  const info = await modelInfo(tutorialUrl);
  $('loaded').replaceChildren(
    'Loaded ',
    el('code', {}, tutorialUrl),
    ` (${info.bytes} bytes, ${info.dtype}) `,
    `in ${fmtMs(ms)}, checksums verified; its weights are held as ${model.weightDtype} in memory ` +
      `(${fmtBytes(model.memoryBytes)}${model.weightDtype === 'f32' ? '' : ', decoded inside the kernels'}).`,
  );
  showComparison(model, info.dtype, readSaved());
}

/** The saved copy next to the loaded values, a mark per value, and a one-line summary. */
function showComparison(model, dtype, copy) {
  const out = $('comparison');
  out.replaceChildren();
  const loaded = model.stateDict();
  const summary = $('compare');
  summary.className = 'summary';
  if (!copy || copy.url !== tutorialUrl) {
    summary.textContent =
      'No copy of the saved weights in this tab (sessionStorage ends when the browser ' +
      'closes), so there is nothing to compare with: these are the weights read from IndexedDB.';
    for (const [name, t] of Object.entries(loaded)) out.append(tensorTable(name, t, { caption: `${name}, loaded` }));
    return;
  }
  const names = Object.keys(copy.tensors);
  const sameShape =
    names.length === Object.keys(loaded).length &&
    names.every((n) => loaded[n] && loaded[n].shape.join() === copy.tensors[n].shape.join());
  if (!sameShape) {
    summary.textContent =
      'The stored model does not have the architecture of the copy kept when saving ' +
      '(another tab saved over it?): nothing to compare.';
    return;
  }
  const groups = {
    weights: { count: 0, identical: 0, within: 0, maxDiff: 0 },
    biases: { count: 0, identical: 0, within: 0, maxDiff: 0 },
  };
  for (const name of names) {
    const saved = copy.tensors[name];
    const result = compareTensor(saved, loaded[name], dtype);
    const group = groups[saved.shape.length >= 2 ? 'weights' : 'biases'];
    group.count += result.count;
    group.identical += result.identical;
    group.within += result.within;
    group.maxDiff = Math.max(group.maxDiff, result.maxDiff);
    out.append(
      el(
        'div',
        { className: 'side-by-side' },
        tensorTable(name, saved, { caption: `${name}, saved` }),
        tensorTable(name, loaded[name], { caption: `${name}, loaded`, marks: result.marks }),
      ),
    );
  }
  out.append(
    el('p', { className: 'note legend' }, "✓ identical · ≈ different, within the dtype's bound · ✗ beyond it"),
  );
  const { weights, biases } = groups;
  const ok = weights.identical + weights.within === weights.count && biases.identical === biases.count;
  const parts = [];
  if (dtype === 'f32' || weights.identical === weights.count) {
    parts.push(`${weights.identical}/${weights.count} weights identical`);
  } else {
    parts.push(
      `${weights.identical + weights.within}/${weights.count} weights within the ${dtype} bound ` +
        `(max difference ${weights.maxDiff.toExponential(2)}; ${dtype} keeps ${boundText[dtype]})`,
    );
  }
  if (biases.count)
    parts.push(`${biases.identical}/${biases.count} biases identical${dtype === 'f32' ? '' : ' (biases stay f32)'}`);
  summary.textContent = `${ok ? '✓' : '✗'} ${parts.join(' · ')}`;
  summary.classList.add(ok ? 'good' : 'bad');
  summary.dataset.ok = String(ok);
}

function predictCode() {
  return `const y = model.forward(${$('input').value.trim() || '[[1, 2, 3]]'});
y.shape;  // [rows, 5]
y.data;   // Float32Array: x·Wᵀ + b`;
}

/** The nested arrays typed in an input field. */
function parseInput(text, example) {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelError('invalid_input', `the input is not JSON (${err.message}); try ${example}`);
  }
}

/** Runs a model on an input and shows y: step 5, and the panel of an imported model. */
function showPrediction(model, source, input, note, output) {
  const start = performance.now();
  const y = model.forward(input);
  const ms = performance.now() - start;
  note.textContent = `Output of ${source}: shape [${y.shape.join(', ')}], computed in ${fmtMs(ms)}.`;
  // One row reads best as a column (and fits a phone); a batch as rows × outputs.
  const table =
    y.shape.length === 2 && y.shape[0] === 1
      ? tensorTable('y', { shape: [y.shape[1]], data: y.data }, { caption: 'y[0]' })
      : tensorTable('y', y, { caption: 'y', colLabel: 'out' });
  output.replaceChildren(table);
}

function predict() {
  showPrediction(
    current.model,
    current.source,
    parseInput($('input').value, '[[1, 2, 3]]'),
    $('predicted'),
    $('output'),
  );
}

// ---- the library ---------------------------------------------------------------------------

let listToken = 0;

/** Re-reads the list of stored models (the latest call wins) and the storage estimate. */
async function refreshLibrary() {
  const token = ++listToken;
  const models = await listModels();
  if (token !== listToken) return;
  const entries = Object.entries(models).sort(([a], [b]) => a.localeCompare(b));
  $('models').replaceChildren(...entries.map(([url, info]) => modelCard(url, info, models)));
  $('empty').hidden = entries.length > 0;
  await refreshStorage();
}

function modelCard(url, info, models) {
  const name = nameOf(url);
  const field = (term, ...value) => [el('dt', {}, term), el('dd', {}, ...value)];
  const meta = Object.entries(info.metadata ?? {});
  const button = (label, action) =>
    el(
      'button',
      {
        type: 'button',
        'aria-label': `${label} ${name}`,
        dataset: { action: label.toLowerCase() },
        onclick: () => run(action),
      },
      label,
    );
  // Save the stored model again with other weights, under the same name: the size changes.
  const dtypeSelect = el(
    'select',
    { 'aria-label': `Weights of ${name}`, dataset: { field: 'resave-dtype' } },
    ...['f32', 'f16', 'bf16', 'int8'].map((d) => el('option', { value: d, selected: d === info.dtype }, d)),
  );
  return el(
    'li',
    { className: 'card', dataset: { testid: 'model-row', name } },
    el('h3', {}, name),
    el(
      'dl',
      {},
      ...field('Saved', new Date(info.dateSaved).toLocaleString()),
      ...field('Size', el('span', { dataset: { field: 'bytes', value: String(info.bytes) } }, fmtBytes(info.bytes))),
      ...field('Weights', el('span', { dataset: { field: 'dtype' } }, info.dtype)),
      ...field('Parameters', el('span', { dataset: { field: 'params' } }, String(info.params))),
      ...field('Architecture', el('code', {}, fmtArch(info.architecture))),
      ...field('Metadata', meta.length ? meta.map(([k, v]) => `${k}: ${v}`).join(' · ') : '—'),
    ),
    el(
      'div',
      { className: 'actions' },
      el('label', {}, 'Weights ', dtypeSelect),
      button('Re-save', () => resaveStored(url, dtypeSelect.value)),
      button('Load', () => useStored(url)),
      button('Rename', () => renameStored(url, models)),
      button('Duplicate', () => duplicateStored(url, models)),
      button('Delete', () => deleteStored(url)),
      button('Download', () => downloadStored(url)),
    ),
    el(
      'div',
      { className: 'actions exports' },
      el('span', { className: 'note label' }, 'For PyTorch (state dict):'),
      button('Download .safetensors', () => exportStored(url, 'safetensors')),
      button('Download .pt', () => exportStored(url, 'pt')),
    ),
  );
}

async function resaveStored(url, dtype) {
  const model = await load(url);
  try {
    const { metadata } = await modelInfo(url);
    await save(model, url, { dtype, metadata });
  } finally {
    model.dispose();
  }
  await refreshLibrary();
}

async function useStored(url) {
  setCurrent(await load(url), url);
  $('current').scrollIntoView?.({ block: 'nearest' });
}

async function renameStored(url, models) {
  const to = prompt(`Rename "${nameOf(url)}" to:`, nameOf(url))?.trim();
  if (!to || to === nameOf(url)) return;
  if (models[prefix + to] && !confirm(`"${to}" exists. Replace it?`)) return;
  await moveModel(url, prefix + to);
  await refreshLibrary();
}

async function duplicateStored(url, models) {
  let to = `${nameOf(url)} copy`;
  for (let i = 2; models[prefix + to]; i++) to = `${nameOf(url)} copy ${i}`;
  await copyModel(url, prefix + to);
  await refreshLibrary();
}

async function deleteStored(url) {
  if (!confirm(`Delete "${nameOf(url)}" from this browser? This cannot be undone.`)) return;
  await removeModel(url);
  await refreshLibrary();
}

async function downloadStored(url) {
  // The stored bytes as they are (checksums included), handed to the browser as name.mkp.
  await save(await loadBytes(url), `downloads://${nameOf(url)}`);
}

async function exportStored(url, format) {
  // The stored model's state dict with PyTorch's key names, as name.safetensors or name.pt
  // (a torch zip: torch.load(path, weights_only=True) reads it, no pickle code involved).
  const model = await load(url);
  try {
    await save(model, `downloads://${nameOf(url)}.${format}`);
  } finally {
    model.dispose();
  }
}

/** The stored name of an uploaded file: its name without the extension. */
const storedName = (fileName) => fileName.replace(/\.(mkp|pt|pth|safetensors)$/i, '') || 'upload';

/**
 * An uploaded or dropped file. What it is comes from its bytes, not its name: a .mkp is checked
 * and stored as it is; a PyTorch or safetensors file is described first, then imported.
 */
async function upload(file) {
  const report = $('uploadReport');
  disposeImported();
  report.replaceChildren();
  try {
    const bytes = await loadBytes(file);
    const info = fileInfo(bytes); // reads the header (and, for a pickle, every opcode); no weights
    if (info.format === 'modelkeep') await uploadMkp(file, bytes);
    else await importFile(file, bytes, info);
  } catch (err) {
    report.append(refusal(file.name, err));
    throw err;
  }
}

/** An error box for a file that was not stored: the code, the message, and what it means. */
function refusal(fileName, err) {
  const code = err instanceof ModelError ? err.code : (err?.name ?? 'Error');
  return el(
    'div',
    { className: 'report error', dataset: { testid: 'upload-error', code } },
    el('h3', {}, `Not stored: “${fileName}”`),
    errorLine(err),
    el('p', {}, `${refusalHints[code] ?? ''}Nothing was stored.`),
  );
}

const refusalHints = {
  disallowed_global:
    'The pickle names a function or class that is not on the allow list (tensors, ' +
    'containers and built-in nn.Module records). It was refused while reading; nothing in it ran. ',
  legacy_module: "Save the model's state_dict() instead, and upload that with its architecture. ",
  unknown_format: 'Upload a .mkp, a .pt/.pth written by torch.save, or a .safetensors file. ',
};

/** "code: message", the code in bold. */
function errorLine(err) {
  const code = err instanceof ModelError ? err.code : (err?.name ?? 'Error');
  return el('p', { className: 'error-line' }, el('strong', {}, code), `: ${err?.message ?? String(err)}`);
}

async function uploadMkp(file, bytes) {
  const report = $('uploadReport');
  const model = await load(bytes); // verifies both checksums before anything is stored
  try {
    const info = fileInfo(bytes);
    const name = storedName(file.name);
    await save(bytes, prefix + name);
    const tensors = Object.entries(model.stateDict()).map(([key, t]) =>
      el('li', {}, el('code', {}, key), ` (${t.shape.join('×') || 'scalar'})`),
    );
    report.append(
      el(
        'div',
        { className: 'report' },
        el('h3', {}, `Uploaded “${name}”`),
        el(
          'p',
          {},
          `${info.bytes} bytes, ${info.kind}, version ${info.version}, weights ${info.dtype}, ` +
            `${info.params} parameters. Stored as `,
          el('code', {}, prefix + name),
          '.',
        ),
        el('p', {}, 'Architecture: ', el('code', { dataset: { testid: 'upload-arch' } }, fmtArch(info.architecture))),
        el('p', {}, 'Tensors:'),
        el('ul', {}, ...tensors),
      ),
    );
  } finally {
    model.dispose();
  }
  await refreshLibrary();
}

// ---- PyTorch and safetensors files -----------------------------------------------------------

/** The model imported last (shown in the library's report until the next upload), or null. */
let imported = null;

function disposeImported() {
  imported?.dispose();
  imported = null;
}

const formatText = {
  'torch-zip': 'a torch.save zip file (PyTorch 1.6 and later)',
  'torch-legacy': 'a torch.save file in the legacy format (before PyTorch 1.6)',
  safetensors: 'a safetensors file: a JSON header, then the raw tensors; no code',
};

const fromText = {
  file: 'the file, which stores its layers',
  'module tree': 'the module tree in the file: built-in modules only (such as nn.Sequential), so what runs is known',
  'architecture option': 'the SPEC entered above',
  assume_sequential: "your choice: the module's children, run in order",
};

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The index of the parenthesis closing the one at `open`. */
function closing(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return text.length;
}

/** Splits at the commas outside parentheses. */
function splitTop(text) {
  const parts = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      parts.push(text.slice(from, i).trim());
      from = i + 1;
    }
  }
  parts.push(text.slice(from).trim());
  return parts.filter(Boolean);
}

/** "Net(fc1: Linear(in_features=3, …), body: Sequential(0: ReLU))" → one child a line, like print(model). */
function fmtTree(text, depth = 0) {
  const open = text.indexOf('(');
  if (open < 0) return text;
  const close = closing(text, open);
  const inner = text.slice(open + 1, close);
  if (!/^[\w.]+: /.test(inner)) return text; // a module's arguments, not its children
  const pad = '  '.repeat(depth + 1);
  const children = splitTop(inner).map((part) => {
    const at = part.indexOf(': ');
    return `${pad}(${part.slice(0, at)}): ${fmtTree(part.slice(at + 2), depth + 1)}`;
  });
  return `${text.slice(0, open)}(\n${children.join('\n')}\n${'  '.repeat(depth)})${text.slice(close + 1)}`;
}

/** What fileInfo() found, before any weight is decoded. */
function foundFacts(info) {
  const field = (term, ...value) => [el('dt', {}, term), el('dd', {}, ...value)];
  const meta = Object.entries(info.metadata ?? {});
  const globals = info.globals ?? [];
  return el(
    'dl',
    { className: 'facts', dataset: { testid: 'import-found' } },
    ...field(
      'Format',
      el('code', { dataset: { field: 'format' } }, info.format),
      formatText[info.format] ? ` — ${formatText[info.format]}` : '',
    ),
    ...field('Holds', el('span', { dataset: { field: 'holds' } }, info.holds)),
    ...field('Size', fmtBytes(info.bytes)),
    ...field(
      'Architecture',
      info.architecture
        ? el('code', { dataset: { field: 'architecture' } }, fmtArch(info.architecture))
        : el(
            'span',
            { dataset: { field: 'architecture', missing: 'true' } },
            `none in the file: ${info.architectureNote}`,
          ),
    ),
    ...(info.moduleTree
      ? field(
          'Module tree',
          el('pre', { className: 'tree', dataset: { testid: 'import-tree' } }, fmtTree(info.moduleTree)),
        )
      : []),
    ...field(
      'Pickle names',
      globals.length
        ? el(
            'span',
            {},
            el(
              'span',
              { className: 'chips', dataset: { testid: 'import-globals' } },
              ...globals.map((g) => el('code', { className: 'chip' }, g)),
            ),
            el(
              'span',
              { className: 'note block' },
              'All on the allow list: they were read as names, nothing was imported or called.',
            ),
          )
        : el(
            'span',
            { className: 'note' },
            info.format === 'safetensors' ? 'none: safetensors is not a pickle' : 'none',
          ),
    ),
    ...(meta.length ? field('Metadata', meta.map(([k, v]) => `${k}: ${v}`).join(' · ')) : []),
  );
}

/** The tensor table of fileInfo(): name, dtype, shape (the first rows; the rest counted). */
function tensorList(tensors) {
  const shown = 16;
  const rows = tensors
    .slice(0, shown)
    .map((t) =>
      el(
        'tr',
        {},
        el('th', { scope: 'row' }, t.name),
        el('td', {}, t.dtype),
        el('td', {}, t.shape.join('×') || 'scalar'),
      ),
    );
  return el(
    'div',
    { className: 'table-wrap' },
    el(
      'table',
      { className: 'list', dataset: { testid: 'import-tensors' } },
      el('caption', {}, `Tensors `, el('span', { className: 'shape' }, `(${tensors.length})`)),
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col' }, 'name'),
          el('th', { scope: 'col' }, 'dtype'),
          el('th', { scope: 'col' }, 'shape'),
        ),
      ),
      el('tbody', {}, ...rows),
    ),
    tensors.length > shown ? el('p', { className: 'note' }, `… and ${tensors.length - shown} more tensors`) : null,
  );
}

let formCount = 0;

/**
 * A PyTorch or safetensors file: shows what it holds, then loads it when the file says what
 * runs, or asks for an architecture when it does not.
 */
async function importFile(file, bytes, info) {
  const state = { file, bytes, info, name: storedName(file.name), next: el('div', { className: 'import-next' }) };
  $('uploadReport').replaceChildren(
    el(
      'div',
      { className: 'report import', dataset: { testid: 'import' } },
      el('h3', {}, 'What ', el('code', {}, file.name), ' holds'),
      el('div', { className: 'found' }, foundFacts(info), tensorList(info.tensors)),
      state.next,
    ),
  );
  let model;
  try {
    model = await load(bytes);
  } catch (err) {
    if (!(err instanceof ModelError) || err.code !== 'needs_architecture') throw err;
    state.next.replaceChildren(architectureForm(state, err));
    return;
  }
  await finishImport(state, model, {});
}

/** The form that names what runs: a SPEC, or (for a pickled module) its children in order. */
function architectureForm(state, err) {
  const { info } = state;
  const isModule = info.holds.startsWith('module ');
  const suggestion = /e\.g\. "([^"]+)"/.exec(err.message)?.[1] ?? '';
  const id = `importSpec${++formCount}`;
  const spec = el('input', {
    id,
    className: 'x-input',
    value: suggestion,
    spellcheck: false,
    autocomplete: 'off',
    placeholder: 'e.g. fc1=Linear(3,5),ReLU,fc2=Linear(5,2)',
    dataset: { testid: 'import-spec' },
  });
  const errors = el('div', { dataset: { testid: 'import-form-error' }, 'aria-live': 'polite' });
  let assume = null;
  let assumeBlock = null;
  if (isModule) {
    assume = el('input', { type: 'checkbox', id: `${id}-assume`, dataset: { testid: 'import-assume' } });
    assume.addEventListener('change', () => {
      spec.disabled = assume.checked;
    });
    assumeBlock = el(
      'div',
      { className: 'assume' },
      el(
        'label',
        { htmlFor: assume.id },
        assume,
        el('span', {}, 'Assume its ', el('code', {}, 'forward()'), ' runs these children in order'),
      ),
      el(
        'p',
        { className: 'warning' },
        'Opt-in, because forward() is Python code that is not in the file: ' +
          'it may reorder or skip children, or call functions such as F.relu between them.',
      ),
    );
  }
  const button = el('button', { type: 'submit', dataset: { testid: 'import-load' } }, 'Load');
  const specHint = el(
    'p',
    { className: 'note' },
    suggestion
      ? 'Suggested from the tensor names and shapes. If forward() runs activations between the layers, ' +
          'add them where they run (e.g. 0=Linear(8,16),ReLU,2=Linear(16,4)).'
      : 'The layers in the order forward() runs them, named like the tensors' +
          (isModule ? ' (see the module tree above).' : '.'),
  );
  const form = el(
    'form',
    { className: 'arch-form', dataset: { testid: 'import-form' } },
    el('h4', {}, 'Which layers run?'),
    el('p', {}, `${capitalize(info.architectureNote)}: say what runs, and the weights are loaded into it.`),
    assumeBlock,
    el(
      'div',
      { className: 'controls' },
      el('label', { htmlFor: id }, isModule ? 'Or give the layers (SPEC)' : 'Architecture (SPEC)'),
      spec,
    ),
    specHint,
    el('div', { className: 'controls' }, button),
    errors,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    button.disabled = true;
    run(async () => {
      errors.replaceChildren();
      try {
        const options = assume?.checked ? { assumeSequential: true } : { architecture: spec.value.trim() };
        if (!options.assumeSequential && !options.architecture) {
          throw new ModelError(
            'invalid_argument',
            isModule
              ? 'enter an architecture (SPEC), or tick “Assume its forward() runs these children in order”'
              : 'enter an architecture (SPEC)',
          );
        }
        await finishImport(state, await load(state.bytes, options), options);
      } catch (e) {
        errors.replaceChildren(
          el(
            'div',
            { className: 'report error' },
            errorLine(e),
            el(
              'p',
              {},
              assume?.checked ? 'Nothing was stored.' : 'Nothing was stored. Change the SPEC and load again.',
            ),
          ),
        );
        throw e;
      } finally {
        button.disabled = false;
      }
    });
  });
  return form;
}

/** The width of the first layer's input (for a first input to try), or null. */
function inputWidth(model) {
  for (const { spec } of model.layers) {
    const m = /=(?:Linear|LayerNorm|BatchNorm1d)\((\d+)/.exec(spec);
    if (m) return Number(m[1]);
  }
  return null;
}

/** Stores the imported model, shows it, and runs a first prediction. */
async function finishImport(state, model, options) {
  const { file, name, next } = state;
  const url = prefix + name;
  try {
    await save(model, url, { metadata: { source: file.name } });
  } catch (err) {
    model.dispose();
    throw err;
  }
  disposeImported();
  imported = model;
  state.bytes = null;
  const source = model.source;
  const width = inputWidth(model);
  const firstInput = width
    ? `[[${Array.from({ length: width }, (_, i) => (width <= 16 ? i + 1 : 1)).join(', ')}]]`
    : '[[1, 2, 3]]';
  const input = el('input', {
    id: 'importInput',
    className: 'x-input',
    value: firstInput,
    spellcheck: false,
    autocomplete: 'off',
    dataset: { testid: 'import-input' },
  });
  const predicted = el('p', { className: 'note', dataset: { testid: 'import-predicted' } });
  const output = el('div', { className: 'tensors', dataset: { testid: 'import-output' } });
  const label = `${file.name} (${url})`;
  const go = () => {
    if (imported !== model)
      throw new ModelError('disposed', 'another file was uploaded since: load this one from the library');
    showPrediction(model, label, parseInput(input.value, firstInput), predicted, output);
  };
  const predictButton = el(
    'button',
    { type: 'button', dataset: { testid: 'import-predict' }, onclick: () => run(go) },
    'Predict',
  );
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') run(go);
  });
  const optionText = options.assumeSequential
    ? ', { assumeSequential: true }'
    : options.architecture
      ? `, { architecture: '${options.architecture}' }`
      : '';
  const field = (term, ...value) => [el('dt', {}, term), el('dd', {}, ...value)];
  next.replaceChildren(
    el(
      'div',
      { className: 'import-result', dataset: { testid: 'import-result' } },
      el('p', { className: 'summary good' }, '✓ Loaded and stored as ', el('code', {}, url), '.'),
      el(
        'div',
        { className: 'pair' },
        el(
          'div',
          {},
          el(
            'dl',
            { className: 'facts' },
            ...field('Architecture', el('code', { dataset: { testid: 'import-arch' } }, fmtArch(model.architecture))),
            ...field('Parameters', el('span', { dataset: { testid: 'import-params' } }, String(model.paramCount))),
            ...field(
              'Architecture from',
              el(
                'span',
                { dataset: { testid: 'import-from', value: source.architectureFrom } },
                fromText[source.architectureFrom] ?? source.architectureFrom,
              ),
            ),
          ),
          el(
            'p',
            {},
            width ? `Predict: a JSON array of rows of ${width} numbers.` : 'Predict: a JSON array of input rows.',
          ),
          el('div', { className: 'controls' }, el('label', { htmlFor: input.id }, 'Input x'), input, predictButton),
        ),
        el(
          'pre',
          { className: 'code' },
          el(
            'code',
            {},
            `import { load, save } from 'modelkeep';

const model = await load(file${optionText});
model.source;
// { format: '${source.format}',
//   holds: ${JSON.stringify(source.holds)},
//   architectureFrom: '${source.architectureFrom}' }
await save(model, '${url}');
model.forward(x);  // y`,
          ),
        ),
      ),
      el('div', { className: 'out', 'aria-live': 'polite' }, predicted, output),
    ),
  );
  // A first prediction on the suggested input; if the guess of the input's width is wrong, the
  // user types one (no alert for an input nobody typed).
  try {
    if (width) go();
  } catch {
    predicted.textContent = 'Type an input the model takes, then press Predict.';
  }
  await refreshLibrary();
}

async function refreshStorage() {
  const estimate = await storageEstimate();
  $('storage').textContent = estimate
    ? `Storage: ${fmtBytes(estimate.usage)} used of ${fmtBytes(estimate.quota)} available to this site.`
    : 'Storage: this browser does not report how much is used.';
}

async function keepData() {
  const granted = await requestPersistence();
  const result = $('persistResult');
  result.dataset.granted = String(granted);
  result.textContent = granted
    ? 'Granted: the browser will not clear these models to free space.'
    : 'Not granted: the browser may still clear them under storage pressure (browsers decide, e.g. by ' +
      'how often you visit; bookmarking or installing the site helps). Try again later.';
}

// ---- start ---------------------------------------------------------------------------------

function start() {
  onClick('create', createModel);
  onClick('save', saveModel);
  onClick('reload', () => location.reload());
  onClick('load', loadModel);
  onClick('predict', predict);
  onClick('persist', keepData);
  $('dismiss').addEventListener('click', () => showError(null));
  $('dtype').addEventListener('change', () => {
    $('code2').textContent = saveCode();
  });
  $('input').addEventListener('input', () => {
    $('code5').textContent = predictCode();
  });
  $('input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && current) run(predict);
  });
  $('upload').addEventListener('change', (event) => {
    const file = event.target.files?.[0];
    if (file)
      run(() => upload(file)).finally(() => {
        event.target.value = '';
      });
  });
  // A model file (.mkp, .pt, .pth, .safetensors) dropped anywhere on the page is uploaded like
  // one picked with the button.
  addEventListener('dragover', (event) => {
    event.preventDefault();
    document.body.classList.add('dragging');
  });
  addEventListener('dragleave', (event) => {
    if (!event.relatedTarget) document.body.classList.remove('dragging');
  });
  addEventListener('drop', (event) => {
    event.preventDefault();
    document.body.classList.remove('dragging');
    const file = event.dataTransfer?.files?.[0];
    if (file && !$('upload').disabled) run(() => upload(file));
  });
  addEventListener('unhandledrejection', (event) => showError(event.reason));

  const copy = readSaved();
  if (copy) $('dtype').value = copy.dtype;
  $('code2').textContent = saveCode();
  $('code5').textContent = predictCode();
  showCurrent();
  showSaved(copy);
  showReloaded();
  for (const id of ['create', 'reload', 'load', 'persist', 'upload']) $(id).disabled = false;
  $('status').textContent = 'Ready: the WebAssembly module is loaded.';
  document.body.dataset.ready = 'true';

  run(async () => {
    // This tab's changes and other tabs': refresh, without clearing an error being shown.
    await onModelsChange(() => refreshLibrary().catch(showError));
    await refreshLibrary();
  });
}

start();
