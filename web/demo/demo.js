// demo.js — PyTorch's "save and load a model" tutorial in the browser, and a library of the
// models this site has stored. Plain DOM, no framework: each handler below is what its step's
// code block shows, plus the few lines that put the result on the page.
import * as mk from '../src/index.js';
import { $, el, visible } from './dom.js';

await mk.ready(); // the WebAssembly module, before the synchronous API (nn, forward, ...)

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

/** The model in memory: { model, source } or null (e.g. right after a reload). */
let current = null;

// ---- small helpers -------------------------------------------------------------------------

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

// ---- asking before a stored model is replaced or removed --------------------------------------

let asking = Promise.resolve();
let questions = 0;

/** A paragraph of a question: a string, or an array of strings and nodes. */
const para = (parts) => el('p', {}, ...[parts].flat());

/**
 * Asks in the page's <dialog>, one question at a time. Resolves to the value of the button
 * pressed, or 'cancel' (its Cancel button, or Esc); with `input` ({ label, value }), to
 * { choice, value } with the text typed.
 * Must: every action that would replace or remove a stored model asks here first, and changes
 * nothing on 'cancel'.
 * @param {{ title: string, message?: Array<string | Array<string | Node>>,
 *   choices: Array<{ value: string, label: string, danger?: boolean }>,
 *   input?: { label: string, value: string } | null }} question
 */
function ask({ title, message = [], choices, input = null }) {
  const question = asking.then(
    () =>
      new Promise((resolve) => {
        const dialog = $('ask');
        const field = $('askInput');
        $('askTitle').textContent = visible(title);
        $('askMessage').replaceChildren(...message.map(para));
        $('askField').hidden = !input;
        field.required = Boolean(input);
        if (input) {
          $('askLabel').textContent = input.label;
          field.value = input.value;
        }
        const cancel = el(
          'button',
          { type: 'submit', value: 'cancel', formNoValidate: true, dataset: { testid: 'ask-cancel' } },
          'Cancel',
        );
        $('askButtons').replaceChildren(
          ...choices.map(({ value, label, danger }) =>
            el(
              'button',
              { type: 'submit', value, className: danger ? 'danger' : '', dataset: { testid: `ask-${value}` } },
              label,
            ),
          ),
          cancel,
        );
        dialog.returnValue = '';
        dialog.dataset.question = String(++questions);
        dialog.addEventListener(
          'close',
          () => {
            const choice = dialog.returnValue || 'cancel';
            resolve(input ? { choice, value: field.value.trim() } : choice);
          },
          { once: true },
        );
        dialog.showModal();
        if (input) field.select();
        else cancel.focus(); // Enter on an unread question changes nothing
      }),
  );
  asking = question.catch(() => {});
  return question;
}

/** The first of name-2, name-3, ... that no stored model has. */
function freeName(name, models) {
  for (let i = 2; ; i++) if (!models[`${prefix}${name}-${i}`]) return `${name}-${i}`;
}

/** "fc1=Linear(3,5), f32 weights, saved 12/5/2026, 10:02:03": what a stored model is, in a line. */
const describeStored = (info) =>
  `${fmtArch(info.architecture ?? 'no architecture')}, ${info.dtype} weights, saved ` +
  new Date(info.dateSaved).toLocaleString();

/**
 * Asks whether to replace the stored model `name`, keep both (the new one under a free name), or
 * cancel. Resolves to { name, replaced: true }, { name: free, kept: name }, or null (cancelled).
 */
async function askReplace(name, models, { title, message }) {
  const free = freeName(name, models);
  const choice = await ask({
    title,
    message: [
      ...message,
      ['Stored now as “', el('strong', {}, name), `”: ${describeStored(models[prefix + name])}.`],
      [
        'Replace writes over it: this cannot be undone. Keep both stores the new one as “',
        el('strong', {}, free),
        '”.',
      ],
    ],
    choices: [
      { value: 'replace', label: 'Replace', danger: true },
      { value: 'keep', label: `Keep both (as “${free}”)` },
    ],
  });
  if (choice === 'replace') return { name, replaced: true };
  if (choice === 'keep') return { name: free, kept: name };
  return null;
}

/**
 * Where to write a model meant to be stored as `name`: { name } when the name is free, else what
 * the user chose (askReplace). `action` says what would write, e.g. 'Uploading “model.pt”'.
 */
async function placeFor(name, action) {
  const models = await listModels();
  if (!models[prefix + name]) return { name, replaced: false };
  return askReplace(name, models, {
    title: `“${name}” is taken`,
    message: [`${action} would write over the model stored as “${name}”.`],
  });
}

/** " (“model” exists: kept)" / " (replacing the model stored before)": what a placement did. */
const placedText = (place) =>
  place.kept
    ? ` (“${place.kept}” was already taken: both kept)`
    : place.replaced
      ? ' (the model stored under that name before was replaced, as you chose)'
      : '';

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
  $('current').textContent = visible(
    `In memory: ${source} — ${fmtArch(model.architecture)}, ${model.paramCount} parameters.`,
  );
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
  const place = await placeFor(nameOf(tutorialUrl), `Saving the model in memory (${dtype})`);
  if (!place) {
    $('saved').textContent = `Not saved: you cancelled, so “${nameOf(tutorialUrl)}” is unchanged.`;
    return;
  }
  const url = prefix + place.name;
  // The weights as they are now, kept in sessionStorage: they outlive the reload of step 3.
  const copy = { url, dtype, tensors: plainStateDict(model), placed: placedText(place) };
  const start = performance.now();
  const info = await save(model, url, {
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
    ` (${new Date(copy.dateSaved).toLocaleTimeString()})${copy.placed ?? ''}.`,
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
  // Where step 2 saved in this tab (tutorial, or tutorial-2 if the user kept both), else tutorial.
  const url = readSaved()?.url ?? tutorialUrl;
  const start = performance.now();
  const model = await load(url, { onProgress: progressTo(bar) });
  const ms = performance.now() - start;
  setCurrent(model, url);
  const info = await modelInfo(url);
  $('loaded').replaceChildren(
    'Loaded ',
    el('code', {}, url),
    ` (${info.bytes} bytes, ${info.dtype}) `,
    `in ${fmtMs(ms)}, checksums verified; its weights are held as ${model.weightDtype} in memory ` +
      `(${fmtBytes(model.memoryBytes)}${model.weightDtype === 'f32' ? '' : ', decoded inside the kernels'}).`,
  );
  showComparison(model, url, info.dtype, readSaved());
}

/** The saved copy next to the loaded values, a mark per value, and a one-line summary. */
function showComparison(model, url, dtype, copy) {
  const out = $('comparison');
  out.replaceChildren();
  const loaded = model.stateDict();
  const summary = $('compare');
  summary.className = 'summary';
  if (!copy || copy.url !== url) {
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
  note.textContent = visible(`Output of ${source}: shape [${y.shape.join(', ')}], computed in ${fmtMs(ms)}.`);
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
  $('models').replaceChildren(...entries.map(([url, info]) => modelCard(url, info)));
  $('empty').hidden = entries.length > 0;
  await refreshStorage();
}

function modelCard(url, info) {
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
      ...field('Architecture', el('code', { dataset: { field: 'architecture' } }, fmtArch(info.architecture))),
      ...field('Metadata', meta.length ? meta.map(([k, v]) => `${k}: ${v}`).join(' · ') : '—'),
    ),
    el(
      'div',
      { className: 'actions' },
      el('label', {}, 'Weights ', dtypeSelect),
      button('Re-save', () => resaveStored(url, dtypeSelect.value)),
      button('Load', () => useStored(url)),
      button('Rename', () => renameStored(url)),
      button('Duplicate', () => duplicateStored(url)),
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

/** A line above the library's cards: what the last action did (or did not do). */
function libraryNote(...parts) {
  $('libraryNote').replaceChildren(el('span', {}, ...parts));
}

/** Saves the stored model again with `dtype` weights: over itself, or beside it, as the user chooses. */
async function resaveStored(url, dtype) {
  const name = nameOf(url);
  const models = await listModels();
  const info = models[url];
  if (!info) throw new ModelError('not_found', `“${name}” is no longer stored (another tab?)`);
  const place = await askReplace(name, models, {
    title: `Re-save “${name}” with ${dtype} weights?`,
    message: [
      `Its weights are stored as ${info.dtype}.` +
        // Only f32 holds every value of the others exactly.
        (dtype !== 'f32' && dtype !== info.dtype
          ? ` ${dtype} keeps fewer digits: once replaced, the ${info.dtype} values are gone.`
          : ''),
    ],
  });
  if (!place) {
    libraryNote(`Not re-saved: you cancelled, so “${name}” is unchanged.`);
    return;
  }
  const model = await load(url);
  try {
    await save(model, prefix + place.name, { dtype, metadata: info.metadata });
  } finally {
    model.dispose();
  }
  libraryNote(`Saved “${name}” with ${dtype} weights as “${place.name}”${placedText(place)}.`);
  await refreshLibrary();
}

async function useStored(url) {
  setCurrent(await load(url), url);
  $('current').scrollIntoView?.({ block: 'nearest' });
}

/**
 * Rename and Duplicate: asks for the new name, then — when a model is stored under it — whether to
 * replace that one, keep both, or cancel. `write` is moveModel or copyModel.
 */
async function storeAs(url, { verb, done, suggestion, write }) {
  const from = nameOf(url);
  const answer = await ask({
    title: `${verb} “${from}”`,
    choices: [{ value: 'go', label: verb }],
    input: { label: 'New name', value: suggestion },
  });
  if (answer.choice !== 'go' || !answer.value || answer.value === from) {
    libraryNote(`Nothing changed: “${from}” is as it was.`);
    return;
  }
  const place = await placeFor(answer.value, `${verb === 'Rename' ? 'Renaming' : 'Duplicating'} “${from}”`);
  if (!place) {
    libraryNote(`Nothing changed: you cancelled, so “${from}” and “${answer.value}” are as they were.`);
    return;
  }
  await write(url, prefix + place.name);
  libraryNote(`${done} “${from}” as “${place.name}”${placedText(place)}.`);
  await refreshLibrary();
}

function renameStored(url) {
  return storeAs(url, { verb: 'Rename', done: 'Renamed', suggestion: nameOf(url), write: moveModel });
}

async function duplicateStored(url) {
  const models = await listModels();
  let suggestion = `${nameOf(url)} copy`;
  for (let i = 2; models[prefix + suggestion]; i++) suggestion = `${nameOf(url)} copy ${i}`;
  return storeAs(url, { verb: 'Duplicate', done: 'Duplicated', suggestion, write: copyModel });
}

async function deleteStored(url) {
  const name = nameOf(url);
  const info = (await listModels())[url];
  const choice = await ask({
    title: `Delete “${name}”?`,
    message: [
      ...(info ? [`${describeStored(info)}.`] : []),
      'It is removed from this browser: this cannot be undone. Download it first to keep a copy.',
    ],
    choices: [{ value: 'delete', label: 'Delete', danger: true }],
  });
  if (choice !== 'delete') {
    libraryNote(`Not deleted: “${name}” is kept.`);
    return;
  }
  await removeModel(url);
  libraryNote(`Deleted “${name}”.`);
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
    const info = await describe(bytes);
    if (info.format === 'modelkeep') await uploadMkp(file, bytes);
    else await importFile(file, bytes, info);
  } catch (err) {
    report.append(refusal(file.name, err));
    throw err;
  }
}

/**
 * fileInfo(bytes): reads the header (and, for a pickle, every opcode); no weights. A PyTorch or
 * safetensors file needs the importer module, which the page fetches here, on the first such file
 * (fileInfo is synchronous: not_ready until then).
 */
async function describe(bytes) {
  try {
    return fileInfo(bytes);
  } catch (err) {
    if (err?.code !== 'not_ready') throw err;
    await mk.ready({ importer: true });
    return fileInfo(bytes);
  }
}

/** The note for an upload the user cancelled rather than replace a stored model. */
function notStored(fileName, name) {
  return el(
    'div',
    { className: 'report', dataset: { testid: 'not-stored' } },
    el('h3', {}, `Not stored: “${fileName}”`),
    el('p', {}, `You cancelled, so the model stored as “${name}” is unchanged.`),
  );
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
    const place = await placeFor(storedName(file.name), `Uploading “${file.name}”`);
    if (!place) {
      report.append(notStored(file.name, storedName(file.name)));
      return;
    }
    const { name } = place;
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
          el('code', { dataset: { testid: 'upload-url' } }, prefix + name),
          `${placedText(place)}.`,
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
  // Never pre-filled: a SPEC in the box would read as the file's own, and load without a second look.
  const spec = el('input', {
    id,
    className: 'x-input',
    value: '',
    spellcheck: false,
    autocomplete: 'off',
    placeholder: 'e.g. fc1=Linear(3,5),ReLU,fc2=Linear(5,2)',
    dataset: { testid: 'import-spec' },
  });
  const keyPrefix = el('input', {
    id: `${id}-prefix`,
    className: 'x-input prefix-input',
    value: '',
    spellcheck: false,
    autocomplete: 'off',
    placeholder: 'none (e.g. module.)',
    dataset: { testid: 'import-prefix' },
  });
  const errors = el('div', { dataset: { testid: 'import-form-error' }, 'aria-live': 'polite' });
  let assume = null;
  let assumeBlock = null;
  if (isModule) {
    assume = el('input', { type: 'checkbox', id: `${id}-assume`, dataset: { testid: 'import-assume' } });
    assume.addEventListener('change', () => {
      spec.disabled = assume.checked;
      keyPrefix.disabled = assume.checked;
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
  const button = el('button', { type: 'submit', dataset: { testid: 'import-load' } }, 'Load with this architecture');
  const useSuggestion = el(
    'button',
    {
      type: 'button',
      className: 'secondary',
      dataset: { testid: 'import-use-suggestion' },
      onclick: () => {
        if (assume?.checked) assume.click();
        spec.value = suggestion;
        spec.focus();
      },
    },
    'Use this guess',
  );
  const guess = suggestion
    ? el(
        'div',
        { className: 'guess', dataset: { testid: 'import-guess' } },
        el(
          'p',
          {},
          el('strong', {}, 'A guess'),
          ' from the tensor names and shapes: ',
          el('code', { dataset: { testid: 'import-suggestion' } }, fmtArch(suggestion)),
          ' ',
          useSuggestion,
        ),
        el(
          'p',
          { className: 'warning' },
          'It cannot know what the file does not hold: the activations (ReLU, GELU, Tanh, …) that forward() ' +
            'runs between the Linear layers, or after the last one, leave no tensors. Add them where they run ' +
            '(e.g. 0=Linear(8,16),ReLU,2=Linear(16,4)), or the outputs will be wrong.',
        ),
      )
    : null;
  const specHint = el(
    'p',
    { className: 'note' },
    'The layers in the order forward() runs them, named like the tensors' +
      (isModule ? ' (see the module tree above).' : '.'),
  );
  const form = el(
    'form',
    { className: 'arch-form', dataset: { testid: 'import-form' } },
    el('h4', {}, 'Which layers run?'),
    el('p', {}, `${capitalize(info.architectureNote)}: say what runs, and the weights are loaded into it.`),
    assumeBlock,
    guess,
    el(
      'div',
      { className: 'controls' },
      el('label', { htmlFor: id }, isModule ? 'Or give the layers (SPEC)' : 'Architecture (SPEC)'),
      spec,
    ),
    specHint,
    el(
      'div',
      { className: 'controls' },
      el('label', { htmlFor: keyPrefix.id }, 'Key prefix'),
      keyPrefix,
      el('span', { className: 'note' }, "taken off the file's keys: module. (DataParallel), model. (Lightning)"),
    ),
    el('div', { className: 'controls' }, button),
    errors,
  );
  const submit = () => {
    button.disabled = true;
    run(async () => {
      errors.replaceChildren();
      const architecture = spec.value.trim();
      const options = assume?.checked
        ? { assumeSequential: true }
        : { architecture, ...(keyPrefix.value.trim() ? { prefix: keyPrefix.value.trim() } : {}) };
      try {
        if (!options.assumeSequential && !options.architecture) {
          throw new ModelError(
            'invalid_argument',
            isModule
              ? 'enter an architecture (SPEC), or tick “Assume its forward() runs these children in order”'
              : suggestion
                ? 'enter an architecture (SPEC), or take the guess above (“Use this guess”) once checked'
                : 'enter an architecture (SPEC)',
          );
        }
        const model = await load(state.bytes, options);
        const fromSuggestion = architecture === suggestion && splitTop(suggestion).length > 1;
        await finishImport(state, model, { ...options, fromSuggestion });
      } catch (e) {
        errors.replaceChildren(
          el(
            'div',
            { className: 'report error' },
            errorLine(e),
            keyErrors.has(e?.code) && options.architecture
              ? keyComparison(e, options, info.tensors, (fix) => {
                  keyPrefix.value = fix;
                  submit();
                })
              : null,
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
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  return form;
}

const maxProbeWeights = 16 * 1024 * 1024;

/** The codes of a strict load whose keys or shapes do not match the architecture's. */
const keyErrors = new Set(['missing_key', 'unexpected_key', 'shape_mismatch']);

/**
 * A failed strict load, side by side: the keys (and shapes) the architecture expects, and the
 * file's, a row per key, with the likely fix. `retry(prefix)` loads again with that key prefix.
 * Every name is the file's: text nodes only.
 */
function keyComparison(err, options, fileTensors, retry) {
  let expected = [];
  let expectedNote = null;
  // Bounded before paid: the keys come from a model built from the SPEC, weights and all, so a
  // SPEC of more than maxProbeWeights Linear weights is not built just to list them.
  const weights = [...options.architecture.matchAll(/Linear\((\d+),\s*(\d+)/g)].reduce((n, m) => n + m[1] * m[2], 0);
  try {
    if (weights > maxProbeWeights)
      throw new Error(`the SPEC has ${weights} Linear weights; over ${maxProbeWeights}, they are not listed`);
    const probe = mk.Model.fromSpec(options.architecture);
    try {
      expected = Object.entries(probe.stateDict()).map(([name, t]) => ({ name, shape: [...t.shape] }));
    } finally {
      probe.dispose();
    }
  } catch (e) {
    expectedNote = `(could not be listed: ${e?.message ?? e})`;
  }
  const suggested = /\{ prefix: '([^']*)' \}/.exec(err.message)?.[1] ?? null;
  // A row per key: the model's key beside the file's key it was loaded from (with the prefix
  // given), or would be with the prefix the message suggests.
  const given = options.prefix ?? '';
  const file = new Map(fileTensors.map((t) => [t.name, t]));
  const used = new Set();
  const rows = [];
  for (const want of expected) {
    const candidates = [[given + want.name, 'match']];
    if (suggested !== null) candidates.push([suggested + want.name, 'prefixed']);
    const [key, how] = candidates.find(([k]) => file.has(k) && !used.has(k)) ?? [null, 'missing'];
    if (key !== null) used.add(key);
    const have = key === null ? null : file.get(key);
    const status = have && have.shape.join() !== want.shape.join() ? 'shape' : how;
    rows.push({ want, have, status });
  }
  const unmatched = expectedNote ? 'unknown' : 'unexpected'; // not listed: nothing to say of the file's keys
  for (const t of fileTensors) if (!used.has(t.name)) rows.push({ want: null, have: t, status: unmatched });
  const statusText = {
    match: '✓ matches',
    prefixed: `✓ with the prefix “${suggested}”`,
    shape: '✗ other shape',
    missing: '✗ not in the file',
    unexpected: '✗ not in the model',
    unknown: '',
  };
  const shape = (s) => s.join('×') || 'scalar';
  const shown = 200;
  const body = rows
    .slice(0, shown)
    .map(({ want, have, status }) =>
      el(
        'tr',
        { dataset: { status } },
        el('td', {}, want ? el('code', {}, want.name) : '—'),
        el('td', {}, want ? shape(want.shape) : ''),
        el('td', {}, have ? el('code', {}, have.name) : '—'),
        el('td', {}, have ? shape(have.shape) : ''),
        el(
          'td',
          { className: `key-status ${status === 'match' || status === 'prefixed' ? 'good' : 'bad'}` },
          statusText[status],
        ),
      ),
    );
  const fix =
    suggested !== null && options.prefix !== suggested
      ? el(
          'p',
          { dataset: { testid: 'key-fix' } },
          el('strong', {}, 'Likely fix: '),
          `the file's keys carry the prefix “${suggested}” (DataParallel, Lightning, torch.compile…): load with that prefix. `,
          el(
            'button',
            { type: 'button', dataset: { testid: 'key-fix-prefix' }, onclick: () => retry(suggested) },
            `Load with prefix “${suggested}”`,
          ),
        )
      : el(
          'p',
          { dataset: { testid: 'key-fix' } },
          el('strong', {}, 'Likely fix: '),
          // The core's own fix when it found one (a SPEC named as the file is, a prefix to drop).
          /Likely fix: (.*)$/s.exec(err.message)?.[1] ??
            (err.code === 'shape_mismatch'
              ? "make each layer's sizes those of the file's tensors: Linear(in, out) has a weight of out×in."
              : "name the layers in the SPEC as the file's keys are named (fc1=Linear(3,5) for fc1.weight, " +
                'fc1.bias), in the order they run.'),
        );
  return el(
    'div',
    { className: 'key-compare', dataset: { testid: 'key-compare' } },
    fix,
    el(
      'div',
      { className: 'table-wrap' },
      el(
        'table',
        { className: 'list keys', dataset: { testid: 'key-table' } },
        el('caption', {}, 'The architecture’s keys beside the file’s'),
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            el('th', { scope: 'col' }, 'the model expects'),
            el('th', { scope: 'col' }, 'shape'),
            el('th', { scope: 'col' }, 'the file has'),
            el('th', { scope: 'col' }, 'shape'),
            el('th', { scope: 'col' }, ''),
          ),
        ),
        el('tbody', {}, ...body),
      ),
    ),
    expectedNote ? el('p', { className: 'note' }, `The model's keys ${expectedNote}.`) : null,
    rows.length > shown ? el('p', { className: 'note' }, `… and ${rows.length - shown} more keys`) : null,
  );
}

/** The width of the first layer's input (for a first input to try), or null. */
function inputWidth(model) {
  for (const { spec } of model.layers) {
    const m = /=(?:Linear|LayerNorm|BatchNorm1d)\((\d+)/.exec(spec);
    if (m) return Number(m[1]);
  }
  return null;
}

/**
 * The headline of an import. Certain only when the file itself says what runs; an architecture
 * the user gave (typed, or the suggestion taken) or assumed is theirs to vouch for, and the page
 * says so rather than "✓".
 */
function resultSummary(from, url, place, options) {
  const stored = ['stored as ', el('code', { dataset: { testid: 'import-url' } }, url), placedText(place)];
  if (from === 'file' || from === 'module tree')
    return el(
      'p',
      { className: 'summary good', dataset: { testid: 'import-summary', certain: 'true' } },
      '✓ Loaded and ',
      ...stored,
      '.',
    );
  const what =
    from === 'assume_sequential'
      ? 'on your assumption that forward() runs the children in order'
      : 'with the architecture you confirmed';
  return el(
    'div',
    { className: 'summary unsure', dataset: { testid: 'import-summary', certain: 'false' } },
    el('p', {}, `Loaded ${what}, and `, ...stored, '.'),
    el(
      'p',
      { className: 'warning' },
      'Its outputs are only right if this matches the network that was trained — the activations ' +
        'between the Linear layers included: the file holds weights, not what runs between them.' +
        (options.fromSuggestion
          ? ' This is the suggested architecture, unchanged: it runs no activation between its layers.'
          : ''),
    ),
  );
}

/** Stores the imported model, shows it, and runs a first prediction. */
async function finishImport(state, model, options) {
  const { file, next } = state;
  let place;
  try {
    place = await placeFor(state.name, `Storing “${file.name}”`);
    if (place) await save(model, prefix + place.name, { metadata: { source: file.name } });
  } catch (err) {
    model.dispose();
    throw err;
  }
  if (!place) {
    // Nothing stored; the file and any form stay, to load again (and be asked again).
    model.dispose();
    state.cancelled ??= el('div');
    state.cancelled.replaceChildren(notStored(file.name, state.name));
    next.append(state.cancelled);
    return;
  }
  const url = prefix + place.name;
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
      ? `, { architecture: '${options.architecture}'${options.prefix ? `, prefix: '${options.prefix}'` : ''} }`
      : '';
  const field = (term, ...value) => [el('dt', {}, term), el('dd', {}, ...value)];
  next.replaceChildren(
    el(
      'div',
      { className: 'import-result', dataset: { testid: 'import-result' } },
      resultSummary(source.architectureFrom, url, place, options),
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
