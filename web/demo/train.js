// train.js — the training playground: seeded 2-D data, a small MLP trained in a Web Worker
// (train-worker.js, through the package's connectTrainer), live loss/accuracy curves and the
// decision boundary, stop, save to IndexedDB, resume after a reload; and a CSV path (your data,
// classification or regression). Plain DOM and canvas, no framework, no chart library.
// Must: the page never trains — every fit, evaluate and predict runs in a worker; the page
// generates data, draws and forwards what the user asks.
import { connectTrainer, ModelError } from '../src/index.js';
import { $, el } from './dom.js';

/** The settings' controls (data and network), by id. */
const settingIds = [
  'dataset',
  'samples',
  'noise',
  'seed',
  'hidden',
  'activation',
  'optimizer',
  'lr',
  'batchSize',
  'epochs',
  'pace',
];

const checkpointUrl = 'indexeddb://playground';
const savedKey = 'modelkeep-train:saved'; // localStorage: what the last Save wrote (a hint only)
const validationSplit = 0.2;
const gridSize = 64; // the decision boundary: 64×64 points, one predict call per redraw
const extent = 1.6; // the plot shows [-extent, extent]²
const maxHidden = 6;
const maxUnits = 256;
const csvMaxBytes = 5 * 1024 * 1024;
const csvMaxRows = 100_000;
const csvMaxColumns = 100;
const csvMaxClasses = 10;
const colours = ['#d56e0c', '#1a62c8'];
const tints = [
  [252, 210, 164],
  [170, 199, 246],
];

const maxEpochs = 20_000; // the curves a checkpoint keeps: about 40 bytes an epoch (historyText)
const maxHistoryBytes = 1_000_000; // under the format's 1 MiB per metadata value

// ---- small helpers -------------------------------------------------------------------------

/** Shows an error in the role="alert" region: "code: message" for a ModelError. */
function showError(err) {
  const alert = $('alert');
  alert.replaceChildren();
  $('alertBox').hidden = !err;
  if (!err) return;
  const code = err instanceof ModelError || err?.code ? err.code : (err?.name ?? 'Error');
  alert.append(el('strong', {}, String(code)), `: ${err?.message ?? String(err)}`);
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

const onClick = (id, action) => $(id).addEventListener('click', () => run(action));
const fmtLoss = (v) => (Number.isFinite(v) ? v.toFixed(4) : '–');
/** A recorded value: 5 significant digits, as the checkpoint keeps it (NaN when missing). */
const round = (v) => (Number.isFinite(v) ? Number(v.toPrecision(5)) : NaN);
const fmtPct = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '–');
const isAbort = (err) => err?.name === 'AbortError' || err?.code === 'aborted';

/** A readable error for bad input in the page's own fields. */
const inputError = (message) => new ModelError('invalid_argument', message);

/** mulberry32: a small seeded generator, [0, 1). */
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box–Muller) from a uniform generator. */
const gaussian = (rand) => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

// ---- the data --------------------------------------------------------------------------------

/**
 * n points of two classes in about [-1.2, 1.2]², shuffled (so that the last fifth, the
 * validation split, holds both classes): { x: Float32Array (n, 2), y: Float32Array (n) }.
 * The same (kind, n, noise, seed) always gives the same points.
 */
function generate({ kind, n, noise, seed }) {
  const rand = random(seed);
  const x = new Float32Array(n * 2);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % 2;
    let a;
    let b;
    if (kind === 'spirals') {
      const r = (1.3 * (Math.floor(i / 2) + 1)) / Math.ceil(n / 2); // (0, 1.3]
      const t = (1.75 * r * 2 * Math.PI) / 1.3 + label * Math.PI;
      a = r * Math.sin(t);
      b = r * Math.cos(t);
    } else if (kind === 'moons') {
      const t = rand() * Math.PI;
      a = label ? 1 - Math.cos(t) : Math.cos(t);
      b = label ? 0.5 - Math.sin(t) : Math.sin(t);
      a = (a - 0.5) * 0.8;
      b = (b - 0.25) * 0.8;
    } else if (kind === 'xor') {
      // four quadrants, kept a little apart from the axes
      const sa = rand() < 0.5 ? -1 : 1;
      const sb = label ? -sa : sa;
      a = sa * (0.1 + rand() * 0.9);
      b = sb * (0.1 + rand() * 0.9);
    } else {
      const t = rand() * 2 * Math.PI;
      const r = label ? 0.75 + rand() * 0.3 : rand() * 0.45;
      a = r * Math.cos(t);
      b = r * Math.sin(t);
    }
    x[2 * i] = a + noise * gaussian(rand);
    x[2 * i + 1] = b + noise * gaussian(rand);
    y[i] = label;
  }
  shuffleRows(x, y, 2, 1, rand);
  return { x, y, n, classes: 2 };
}

/** Fisher–Yates over rows of x (width xw) and y (width yw), in place. */
function shuffleRows(x, y, xw, yw, rand) {
  const n = y.length / yw;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    for (let k = 0; k < xw; k++) [x[i * xw + k], x[j * xw + k]] = [x[j * xw + k], x[i * xw + k]];
    for (let k = 0; k < yw; k++) [y[i * yw + k], y[j * yw + k]] = [y[j * yw + k], y[i * yw + k]];
  }
}

/** Rows from the validation split on: fit's validationSplit takes the last ones, as Keras does. */
const trainRows = (n) => n - Math.floor(n * validationSplit);

// ---- the settings ----------------------------------------------------------------------------

function numberField(id, what, { min, max, integer = false }) {
  const v = Number($(id).value);
  if ($(id).value.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw inputError(
      `${what} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, got "${$(id).value}"`,
    );
  }
  return v;
}

function hiddenLayers() {
  const text = $('hidden').value.trim();
  if (text === '') return [];
  const units = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  if (units.length > maxHidden || units.some((u) => !Number.isInteger(u) || u < 1 || u > maxUnits)) {
    throw inputError(
      `hidden layers: at most ${maxHidden} whole numbers of 1–${maxUnits} units, comma-separated (e.g. "16, 16"), got "${text}"`,
    );
  }
  return units;
}

/** Everything the user set, checked. */
function readConfig() {
  return {
    data: {
      kind: $('dataset').value,
      n: numberField('samples', 'the number of points', { min: 40, max: 2000, integer: true }),
      noise: numberField('noise', 'the noise', { min: 0, max: 0.5 }),
      seed: numberField('seed', 'the seed', { min: 0, max: 4294967295, integer: true }),
    },
    net: { hidden: hiddenLayers(), activation: $('activation').value },
    optimizer: $('optimizer').value,
    lr: numberField('lr', 'the learning rate', { min: 1e-5, max: 1 }),
    batchSize: numberField('batchSize', 'the batch size', { min: 1, max: 1024, integer: true }),
    epochs: numberField('epochs', 'the epochs per run', { min: 1, max: 10000, integer: true }),
    pace: $('pace').value,
  };
}

function readConfigOrNull() {
  try {
    return readConfig();
  } catch {
    return null;
  }
}

/** The settings a trainer is made with (the batch size is saved with it): a change in any means a new training. */
const trainerKey = (c) => JSON.stringify([c.data, c.net, c.optimizer, c.lr, c.batchSize]);

function applyConfig(c) {
  $('dataset').value = c.data.kind;
  $('samples').value = c.data.n;
  $('noise').value = c.data.noise;
  $('seed').value = c.data.seed;
  $('hidden').value = c.net.hidden.join(', ');
  $('activation').value = c.net.activation;
  $('optimizer').value = c.optimizer;
  $('lr').value = c.lr;
  $('batchSize').value = c.batchSize;
  $('epochs').value = c.epochs;
  if (c.pace) $('pace').value = c.pace;
}

/** "Linear(2,16),ReLU,Linear(16,16),ReLU,Linear(16,2)" (docs/SPEC.md). */
function specOf(inputs, hidden, activation, outputs) {
  const layers = [];
  let last = inputs;
  for (const units of hidden) {
    layers.push(`Linear(${last},${units})`, activation);
    last = units;
  }
  layers.push(`Linear(${last},${outputs})`);
  return layers.join(',');
}

const optimizerText = (c) => (c.optimizer === 'sgd' ? `sgd(lr=${c.lr}, momentum=0.9)` : `adam(lr=${c.lr})`);

/** The code block: the model as nn.sequential, and the trainer's options. */
function showCode() {
  let c;
  try {
    c = readConfig();
  } catch {
    return; // the error shows on Train
  }
  const act = c.net.activation === 'ReLU' ? 'nn.relu()' : 'nn.tanh()';
  const layers = [];
  let last = 2;
  for (const units of c.net.hidden) {
    layers.push(`nn.linear(${last}, ${units}), ${act},`);
    last = units;
  }
  layers.push(`nn.linear(${last}, 2)`);
  $('code').textContent =
    `const model = nn.sequential(\n  ${layers.join('\n  ')},\n  { seed: ${c.data.seed} });\n` +
    `const trainer = await Trainer.create(model, {\n  optimizer: '${optimizerText(c)}',\n` +
    `  loss: 'cross_entropy', batchSize: ${c.batchSize}, shuffle: true, seed: ${c.data.seed} });\n` +
    `await trainer.fit(x, y, { epochs: ${c.epochs},\n` +
    `  validationSplit: ${validationSplit}, metrics: ['accuracy'] });`;
}

// ---- drawing ---------------------------------------------------------------------------------

/** Sizes a canvas's backing store to its CSS size × devicePixelRatio; a 2-D context in CSS pixels. */
function context(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth));
  const h = Math.max(1, Math.round(canvas.clientHeight));
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, w, h };
}

const gridCanvas = document.createElement('canvas');
gridCanvas.width = gridSize;
gridCanvas.height = gridSize;

/** The grid's points, row by row from the top: (gridSize², 2), plot coordinates. */
function gridPoints() {
  const data = new Float32Array(gridSize * gridSize * 2);
  for (let r = 0; r < gridSize; r++) {
    for (let c = 0; c < gridSize; c++) {
      const i = r * gridSize + c;
      data[2 * i] = -extent + ((c + 0.5) / gridSize) * 2 * extent;
      data[2 * i + 1] = extent - ((r + 0.5) / gridSize) * 2 * extent;
    }
  }
  return data;
}
const grid = gridPoints();

/** Logits (gridSize², 2) → a pale colour per cell, by the probability of class 1. */
function paintGrid(logits) {
  const image = new ImageData(gridSize, gridSize);
  for (let i = 0; i < gridSize * gridSize; i++) {
    const p = 1 / (1 + Math.exp(logits[2 * i] - logits[2 * i + 1])); // softmax, two classes
    for (let k = 0; k < 3; k++) image.data[4 * i + k] = tints[0][k] + (tints[1][k] - tints[0][k]) * p;
    image.data[4 * i + 3] = 255;
  }
  gridCanvas.getContext('2d').putImageData(image, 0, 0);
}

function drawPlot() {
  const canvas = $('plot');
  const { ctx, w, h } = context(canvas);
  ctx.clearRect(0, 0, w, h);
  if (play.boundary) {
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(gridCanvas, 0, 0, w, h);
  } else {
    ctx.fillStyle = '#f5f6f8';
    ctx.fillRect(0, 0, w, h);
  }
  ctx.strokeStyle = 'rgb(0 0 0 / 12%)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(w / 2, 0);
  ctx.lineTo(w / 2, h);
  ctx.moveTo(0, h / 2);
  ctx.lineTo(w, h / 2);
  ctx.stroke();
  const data = play.data;
  const shown = $('showPoints').checked && data;
  canvas.dataset.pointsShown = shown ? String(data.n) : '0';
  if (!shown) return;
  const nTrain = trainRows(data.n);
  const radius = Math.max(2.5, Math.min(4.5, w / 110));
  for (let i = 0; i < data.n; i++) {
    const px = ((data.x[2 * i] + extent) / (2 * extent)) * w;
    const py = ((extent - data.x[2 * i + 1]) / (2 * extent)) * h;
    ctx.beginPath();
    ctx.arc(px, py, radius, 0, 2 * Math.PI);
    const colour = colours[data.y[i]];
    if (i < nTrain) {
      ctx.fillStyle = colour;
      ctx.fill();
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1;
    } else {
      ctx.fillStyle = '#fff';
      ctx.fill();
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
    }
    ctx.stroke();
  }
}

/**
 * A line chart of per-epoch values: series [{ values, colour, dashed }], the x axis the epochs
 * (1-based), the y axis from 0 to `top` (or the largest value). The values also go into the
 * canvas's data-values (JSON, the first series) and data-points (its count) for tests and tools.
 */
function drawCurve(canvas, series, { top, format, empty = 'No epochs yet: press Train.', record = true }) {
  const { ctx, w, h } = context(canvas);
  const first = series[0].values;
  canvas.dataset.points = String(first.length);
  // (not while training: thousands of values each frame would cost the page its frames)
  if (record) canvas.dataset.values = JSON.stringify(first.map((v) => (Number.isFinite(v) ? v : null)));
  ctx.clearRect(0, 0, w, h);
  ctx.font = '12px system-ui, sans-serif';
  const left = 48;
  const right = 12;
  const topPad = 10;
  const bottom = 24;
  const pw = w - left - right;
  const ph = h - topPad - bottom;
  let largest = 1e-6;
  for (const s of series) for (const v of s.values) if (v > largest) largest = v;
  const yMax = top ?? largest * 1.08;
  const count = Math.max(...series.map((s) => s.values.length));
  const xMax = Math.max(count, 2);
  const xAt = (i) => left + (count <= 1 ? 0 : (i / (xMax - 1)) * pw);
  const yAt = (v) => topPad + ph - (Math.min(Math.max(v, 0), yMax) / yMax) * ph;
  // grid lines and labels
  ctx.strokeStyle = '#e3e5e9';
  ctx.fillStyle = '#4a4f57';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let k = 0; k <= (count === 0 ? -1 : 4); k++) {
    const v = (yMax * k) / 4;
    const y = yAt(v);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + pw, y);
    ctx.stroke();
    ctx.fillText(format(v), left - 6, y);
  }
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillText('epoch 1', left, topPad + ph + 6);
  if (count > 1) {
    ctx.textAlign = 'right';
    ctx.fillText(String(count), left + pw, topPad + ph + 6);
  }
  if (count === 0) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(empty, left + pw / 2, topPad + ph / 2);
    return;
  }
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.fillStyle = s.colour;
    ctx.lineWidth = 2;
    ctx.setLineDash(s.dashed ? [6, 4] : []);
    ctx.beginPath();
    let started = false;
    // at most about one point per pixel column, and always the last one
    const step = Math.max(1, Math.floor(s.values.length / pw));
    const last = s.values.length - 1;
    for (let i = 0; i <= last; i = i === last ? last + 1 : Math.min(i + step, last)) {
      const v = s.values[i];
      if (Number.isFinite(v)) {
        if (started) ctx.lineTo(xAt(i), yAt(v));
        else ctx.moveTo(xAt(i), yAt(v));
        started = true;
      }
    }
    ctx.stroke();
    ctx.setLineDash([]);
    if (s.values.length === 1 && Number.isFinite(s.values[0])) {
      ctx.beginPath();
      ctx.arc(xAt(0), yAt(s.values[0]), 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

const trainColour = '#0b57d0';
const valColour = '#c2410c';

function drawCurves({ record = true } = {}) {
  const hist = play.history;
  const pick = (key) => hist.map((p) => p[key] ?? NaN);
  drawCurve(
    $('lossCurve'),
    [
      { values: pick('loss'), colour: trainColour },
      { values: pick('valLoss'), colour: valColour, dashed: true },
    ],
    { format: (v) => v.toFixed(2), record },
  );
  drawCurve(
    $('accCurve'),
    [
      { values: pick('accuracy'), colour: trainColour },
      { values: pick('valAccuracy'), colour: valColour, dashed: true },
    ],
    { top: 1, format: (v) => `${Math.round(v * 100)}%`, record },
  );
}

// ---- the playground ----------------------------------------------------------------------------

const play = {
  remote: null,
  key: null, // trainerKey of the trainer in the worker, or null: none yet
  config: null,
  data: null,
  history: [], // per completed epoch: { epoch, loss, accuracy, valLoss, valAccuracy }
  epoch: 0,
  steps: 0,
  batch: 0, // batches done of the current epoch (after a stop)
  controller: null, // while fit runs
  working: false, // while a save, a resume or a start over runs
  boundary: false, // a boundary has been painted
  predicting: false,
  boundaryWanted: false,
  lastBoundary: 0,
};

let workerFailed;

/** A worker and its remote trainer; a failed worker (script error) rejects every call made through `call`. */
function startWorker() {
  const worker = new Worker(new URL('./train-worker.js', import.meta.url), { type: 'module' });
  const failed = new Promise((_, reject) => {
    worker.addEventListener('error', (event) => {
      event.preventDefault?.();
      reject(new Error(`the training worker failed: ${event.message || 'its script could not load'}`));
    });
  });
  failed.catch(() => {}); // reported through the calls that race it
  return { worker, remote: connectTrainer(worker), failed };
}

/** A call to the worker that fails readably if the worker itself has failed. */
const call = (promise) => Promise.race([promise, workerFailed]);

function setCounters() {
  const last = play.history[play.history.length - 1] ?? {};
  $('epoch').textContent = String(play.epoch);
  $('steps').textContent = String(play.steps);
  $('loss').textContent = fmtLoss(last.loss);
  $('accuracy').textContent = fmtPct(last.accuracy);
  $('valLoss').textContent = fmtLoss(last.valLoss);
  $('valAccuracy').textContent = fmtPct(last.valAccuracy);
}

function setButtons() {
  const training = play.controller !== null;
  const busy = training || play.working;
  const ready = document.body.dataset.ready === 'true';
  $('train').disabled = !ready || busy;
  $('stop').disabled = !training;
  $('save').disabled = !ready || busy || play.key === null;
  $('resume').disabled = !ready || busy;
  $('reset').disabled = !ready || busy || play.key === null;
  for (const id of settingIds) {
    $(id).disabled = busy;
  }
  document.body.dataset.training = String(training);
  document.body.dataset.busy = String(busy);
}

/** Runs a Save, Resume or Start over with the buttons and the settings waiting for it. */
async function working(action) {
  play.working = true;
  setButtons();
  try {
    await action();
  } finally {
    play.working = false;
    setButtons();
  }
}

/** Shows the data of the settings (a new training starts only on Train). */
function previewData() {
  try {
    const c = readConfig();
    play.data = generate(c.data);
    if (play.key !== null && trainerKey(c) === play.key) {
      // back to the settings of the trainer in the worker: its boundary again
      $('progressNote').textContent = '';
      redrawBoundary({ force: true }).catch(showError);
      return;
    }
    if (play.key !== null) {
      $('progressNote').textContent = 'The settings changed: Train starts a new network (the curves start over).';
    }
    play.boundary = false;
    drawPlot();
  } catch {
    // the error shows on Train
  }
}

let boundaryTimer = null;

/**
 * Asks the worker for the grid's predictions and repaints: at most one call in flight, at most
 * one every 150 ms (the latest wish wins), whatever the epoch rate.
 */
async function redrawBoundary({ force = false } = {}) {
  if (play.key === null) return;
  if (play.predicting) {
    play.boundaryWanted = true;
    return;
  }
  const wait = 150 - (performance.now() - play.lastBoundary);
  if (!force && wait > 0) {
    boundaryTimer ??= setTimeout(() => {
      boundaryTimer = null;
      redrawBoundary().catch(showError);
    }, wait);
    return;
  }
  play.predicting = true;
  play.boundaryWanted = false;
  const key = play.key;
  try {
    // a copy: the remote trainer transfers the typed arrays it is given (they are detached here)
    const out = await call(play.remote.predict(grid.slice(), [gridSize * gridSize, 2]));
    play.lastBoundary = performance.now();
    const c = readConfigOrNull();
    if (play.key !== key || !c || trainerKey(c) !== key) return; // another network (or settings) since
    paintGrid(out.data);
    play.boundary = true;
    $('plot').dataset.boundaries = String(Number($('plot').dataset.boundaries ?? 0) + 1);
    drawPlot();
  } finally {
    play.predicting = false;
  }
  if (play.boundaryWanted) redrawBoundary().catch(showError);
}

let drawPending = false;
/** Counters and curves redrawn once per frame however fast the epochs come. */
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    setCounters();
    drawCurves({ record: false });
  });
}

async function newTrainer(c) {
  if (play.key !== null) await call(play.remote.dispose());
  play.key = null;
  const spec = specOf(2, c.net.hidden, c.net.activation, 2);
  await call(
    play.remote.create({
      spec,
      optimizer: optimizerText(c),
      loss: 'cross_entropy',
      modelSeed: c.data.seed, // the initial weights
      seed: c.data.seed, // the shuffling
      batchSize: c.batchSize,
      shuffle: true,
    }),
  );
  play.key = trainerKey(c);
  play.config = c;
  play.data = generate(c.data);
  play.history = [];
  play.epoch = 0;
  play.steps = 0;
  play.batch = 0;
  play.boundary = false;
  setCounters();
  drawCurves();
  drawPlot();
}

async function syncState() {
  const state = await call(play.remote.state());
  if (Number.isInteger(state?.epoch)) play.epoch = state.epoch;
  if (Number.isInteger(state?.steps)) play.steps = state.steps;
  play.batch = Number.isInteger(state?.batch) ? state.batch : 0;
  setCounters();
  return state;
}

async function train() {
  const c = readConfig();
  const fresh = play.key === null || trainerKey(c) !== play.key;
  if (!fresh && play.epoch >= maxEpochs) {
    throw new ModelError(
      'limit_exceeded',
      `this run has ${play.epoch} epochs, the most the playground keeps the curves of: Start over for a new run`,
    );
  }
  const controller = new AbortController();
  play.controller = controller; // busy from here: the buttons and the settings wait
  setButtons();
  $('saved').textContent = '';
  if (fresh) {
    $('status').textContent = 'Creating the network in the worker…';
    try {
      await newTrainer(c);
    } catch (err) {
      play.controller = null;
      setButtons();
      throw err;
    }
  }
  play.config = { ...play.config, epochs: c.epochs, pace: c.pace };
  const epochs = Math.min(c.epochs, maxEpochs - play.epoch);
  const { x, y, n } = play.data;
  const start = play.epoch;
  // Steps counted from the epochs (no per-batch message: at hundreds of epochs a second they
  // would keep this thread busy for nothing): each epoch is `batches` steps, the first one less
  // the batches a stop left done.
  const batches = Math.ceil(trainRows(n) / c.batchSize);
  const steps0 = play.steps - play.batch;
  $('status').textContent = `Training in the worker: epochs ${start + 1} to ${start + epochs}…`;
  const options = {
    validationSplit,
    metrics: ['accuracy'],
    signal: controller.signal,
    onEpochEnd({ loss, accuracy, valLoss, valAccuracy }) {
      play.epoch += 1;
      play.steps = steps0 + (play.epoch - start) * batches;
      play.history.push({
        epoch: play.epoch,
        loss: round(loss),
        accuracy: round(accuracy),
        valLoss: round(valLoss),
        valAccuracy: round(valAccuracy),
      });
      scheduleDraw();
      redrawBoundary().catch(showError);
    },
  };
  // copies: the remote trainer transfers the typed arrays it is given (they are detached here)
  const fit = (k) =>
    call(
      play.remote.fit({ data: x.slice(), shape: [n, 2] }, { data: y.slice(), shape: [n] }, { ...options, epochs: k }),
    );
  let result;
  // busy until the counters, the curves and the status say how the run ended
  try {
    try {
      if (c.pace === 'full') {
        result = await fit(epochs);
      } else {
        // one epoch per frame, to watch it learn: a fit of one epoch, then the next frame
        result = { stopped: false };
        for (let i = 0; i < epochs && !result?.stopped && !controller.signal.aborted; i++) {
          result = await fit(1);
          await new Promise((resolve) => requestAnimationFrame(resolve));
        }
      }
    } catch (err) {
      // fit resolves with stopped: true when the signal stopped it (or rejects with an AbortError)
      if (!(controller.signal.aborted && isAbort(err))) throw err;
      result = { stopped: true };
    }
    $('progressNote').textContent = '';
    const state = await syncState();
    // the curves hold completed epochs only (a stopped epoch is finished by the next Train)
    if (Number.isInteger(state?.epoch) && play.history.length > state.epoch) play.history.length = state.epoch;
    drawCurves();
    const partial = state?.batch ? ` (and ${state.batch} batch${state.batch === 1 ? '' : 'es'} of the next)` : '';
    $('status').textContent =
      result?.stopped || controller.signal.aborted
        ? `Stopped at epoch ${play.epoch}${partial}. Train goes on from here; Save keeps it.`
        : `Trained to epoch ${play.epoch}. Train again to go on, or Save.`;
  } finally {
    play.controller = null;
    setButtons();
  }
  await redrawBoundary({ force: true });
}

function stop() {
  play.controller?.abort();
  $('status').textContent = 'Stopping after the current batch…';
}

async function saveCheckpoint() {
  const c = play.config;
  const history = historyText(play.history);
  if (history.length > maxHistoryBytes) {
    throw new ModelError(
      'limit_exceeded',
      `the curves of ${play.history.length} epochs take ${history.length} bytes, more than a checkpoint's metadata value holds (1 MiB): Start over for a new run`,
    );
  }
  await call(
    play.remote.setMetadata({
      playground: JSON.stringify({
        pace: c.pace,
        data: c.data,
        net: c.net,
        optimizer: c.optimizer,
        lr: c.lr,
        batchSize: c.batchSize,
        epochs: c.epochs,
      }),
      history,
    }),
  );
  await call(play.remote.save(checkpointUrl, { training: true }));
  const note = { epoch: play.epoch, steps: play.steps, when: Date.now() };
  try {
    localStorage.setItem(savedKey, JSON.stringify(note));
  } catch {
    // private mode: the hint is only a convenience
  }
  $('saved').textContent =
    `Saved to IndexedDB as “playground” at epoch ${play.epoch} (${play.steps} steps): the weights, ` +
    `the optimizer's state and the ${play.history.length} points of the curves. Reload the page, then Resume.`;
  $('status').textContent = `Saved at epoch ${play.epoch}.`;
}

const series = ['loss', 'accuracy', 'valLoss', 'valAccuracy'];

/**
 * The curves as a checkpoint's metadata keeps them: one array per series, 5 significant digits
 * (as recorded), null for a missing value — about 40 bytes an epoch.
 */
function historyText(history) {
  const columns = { epochs: history.length };
  for (const k of series) columns[k] = history.map((p) => (Number.isFinite(p[k]) ? p[k] : null));
  return JSON.stringify(columns);
}

/** historyText's JSON → the curves, or null if it is not that. */
function historyFrom(columns) {
  const n = columns?.epochs;
  if (!Number.isInteger(n) || n < 0 || series.some((k) => !Array.isArray(columns[k]) || columns[k].length !== n)) {
    return null;
  }
  return Array.from({ length: n }, (_, i) => {
    const p = { epoch: i + 1 };
    for (const k of series) p[k] = typeof columns[k][i] === 'number' ? columns[k][i] : NaN;
    return p;
  });
}

/** Parses a checkpoint's metadata written by saveCheckpoint; a readable error otherwise. */
function parseSaved(metadata) {
  let c;
  let history;
  try {
    c = JSON.parse(metadata?.playground);
    history = historyFrom(JSON.parse(metadata?.history));
  } catch {
    c = null;
  }
  if (!c?.data || !Array.isArray(c?.net?.hidden) || !history) {
    throw new ModelError(
      'invalid_argument',
      `'${checkpointUrl}' is not a checkpoint of this playground (no settings or curves in its metadata)`,
    );
  }
  return { c, history };
}

async function resume() {
  if (play.key !== null) await call(play.remote.dispose());
  play.key = null;
  try {
    await call(play.remote.load(checkpointUrl));
  } catch (err) {
    if (err?.code !== 'not_found') throw err;
    throw new ModelError('not_found', `nothing saved yet under '${checkpointUrl}': Train, then Save, then Resume`);
  }
  const state = await call(play.remote.state());
  const { c, history } = parseSaved(state?.metadata);
  applyConfig(c);
  play.config = readConfig();
  play.key = trainerKey(play.config);
  play.data = generate(c.data);
  play.history = history;
  play.epoch = Number.isInteger(state?.epoch) ? state.epoch : history.length;
  play.steps = Number.isInteger(state?.steps) ? state.steps : 0;
  play.batch = Number.isInteger(state?.batch) ? state.batch : 0;
  play.boundary = false;
  setCounters();
  drawCurves();
  showCode();
  setButtons();
  await redrawBoundary({ force: true });
  $('status').textContent =
    `Resumed at epoch ${play.epoch} (${play.steps} optimizer steps): Train continues from here.`;
}

async function startOver() {
  if (play.key !== null) await call(play.remote.dispose());
  play.key = null;
  play.history = [];
  play.epoch = 0;
  play.steps = 0;
  play.batch = 0;
  play.boundary = false;
  previewData();
  setCounters();
  drawCurves();
  setButtons();
  $('status').textContent = 'Ready: press Train for a new network.';
}

// ---- bring your data: CSV --------------------------------------------------------------------

const csv = {
  worker: null,
  remote: null,
  failed: null,
  table: null, // parseCsv's { header, columns, n }
  controller: null,
  history: [],
  task: null,
};

const parseCell = (cell) => {
  const t = cell
    .trim()
    .replace(/^"(.*)"$/, '$1')
    .trim();
  return t === '' ? NaN : Number(t);
};

/**
 * A CSV of numbers → { header: string[] | null, columns: Float64Array[], n }. A first line
 * with a cell that is not a number is the header. Bounded: at most csvMaxRows rows and
 * csvMaxColumns columns, counted before anything is parsed; every other cell must be a number.
 */
function parseCsv(text) {
  const lines = text.split(/\r\n|\n|\r/);
  const numbered = []; // [line number, text] of the lines that are not blank
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    numbered.push([i + 1, lines[i]]);
    if (numbered.length > csvMaxRows + 1) {
      throw inputError(
        `the file has more than ${csvMaxRows.toLocaleString('en')} rows; the limit is ${csvMaxRows.toLocaleString('en')}`,
      );
    }
  }
  if (numbered.length === 0) throw inputError('the file is empty');
  const first = numbered[0][1];
  const sep = first.includes('\t') ? '\t' : first.includes(';') && !first.includes(',') ? ';' : ',';
  const firstCells = first.split(sep);
  const header = firstCells.some((cell) => !Number.isFinite(parseCell(cell)))
    ? firstCells.map((h) => h.trim().replace(/^"(.*)"$/, '$1'))
    : null;
  const dataLines = header ? numbered.slice(1) : numbered;
  const n = dataLines.length;
  if (n > csvMaxRows) {
    throw inputError(
      `the file has ${n.toLocaleString('en')} rows of data; the limit is ${csvMaxRows.toLocaleString('en')}`,
    );
  }
  const width = firstCells.length;
  if (width < 2) {
    throw inputError(`the file has one column; it needs at least two (the inputs and a target), separated by "${sep}"`);
  }
  if (width > csvMaxColumns) throw inputError(`the file has ${width} columns; the limit is ${csvMaxColumns}`);
  if (n < 10) throw inputError(`the file has ${n} rows of data; at least 10 are needed`);
  const columns = Array.from({ length: width }, () => new Float64Array(n));
  dataLines.forEach(([line, textLine], row) => {
    const cells = textLine.split(sep);
    if (cells.length !== width) throw inputError(`line ${line} has ${cells.length} values, the first line ${width}`);
    for (let k = 0; k < width; k++) {
      const v = parseCell(cells[k]);
      if (!Number.isFinite(v)) {
        throw inputError(`line ${line}, column ${k + 1}: “${cells[k].trim().slice(0, 40)}” is not a number`);
      }
      columns[k][row] = v;
    }
  });
  return { header, columns, n };
}

/** The task a target column asks for: classes if it holds a few whole numbers, else regression. */
function taskOf(values) {
  const distinct = new Set();
  for (const v of values) {
    if (!Number.isInteger(v)) return { kind: 'regression' };
    distinct.add(v);
    if (distinct.size > csvMaxClasses) return { kind: 'regression' };
  }
  if (distinct.size < 2) throw inputError('the target column holds one value only: nothing to learn');
  return { kind: 'classification', classes: [...distinct].sort((a, b) => a - b) };
}

const columnName = (t, k) => (t.header ? `${t.header[k]} (column ${k + 1})` : `column ${k + 1}`);

async function openCsv(file) {
  csv.table = null;
  $('csvSetup').hidden = true;
  if (!file) return;
  if (file.size > csvMaxBytes) {
    throw inputError(`“${file.name}” is ${(file.size / 1048576).toFixed(1)} MB; files up to 5 MB are accepted`);
  }
  const table = parseCsv(await file.text());
  csv.table = table;
  const target = $('csvTarget');
  target.replaceChildren(...table.columns.map((_, k) => el('option', { value: String(k) }, columnName(table, k))));
  target.value = String(table.columns.length - 1);
  $('csvSummary').textContent =
    `“${file.name}”: ${table.n.toLocaleString('en')} rows, ${table.columns.length} columns${table.header ? ', a header line' : ', no header line'}.`;
  const head = el(
    'tr',
    {},
    ...table.columns.map((_, k) => el('th', { scope: 'col' }, table.header ? table.header[k] : `column ${k + 1}`)),
  );
  const body = [];
  for (let r = 0; r < Math.min(5, table.n); r++) {
    body.push(el('tr', {}, ...table.columns.map((col) => el('td', {}, String(Number(col[r].toPrecision(6)))))));
  }
  $('csvPreview').replaceChildren(el('caption', {}, 'The first rows'), el('thead', {}, head), el('tbody', {}, ...body));
  $('csvSetup').hidden = false;
  csv.history = [];
  drawCsvCurve();
  $('csvResult').textContent = '';
  showTask();
}

function showTask() {
  const t = csv.table;
  const k = Number($('csvTarget').value);
  try {
    csv.task = taskOf(t.columns[k]);
  } catch (err) {
    csv.task = null;
    $('csvTask').textContent = err.message;
    $('csvTask').dataset.task = 'none';
    return;
  }
  $('csvTask').dataset.task = csv.task.kind;
  $('csvTask').textContent =
    csv.task.kind === 'classification'
      ? `Classification: ${columnName(t, k)} holds ${csv.task.classes.length} classes (${csv.task.classes.join(', ')}); cross-entropy loss, accuracy shown.`
      : `Regression: ${columnName(t, k)} is a number to predict; mean squared error of the standardised target (1 = no better than its mean).`;
  $('csvCurveTitle').firstChild.textContent =
    csv.task.kind === 'classification' ? 'Loss (cross-entropy) per epoch ' : 'Loss (mean squared error) per epoch ';
}

/** Standardised inputs (n, f) and targets (class indices (n), or standardised values (n, 1)), rows shuffled. */
function csvTensors(t, targetColumn, task) {
  const inputs = t.columns.filter((_, k) => k !== targetColumn);
  const f = inputs.length;
  const n = t.n;
  const x = new Float32Array(n * f);
  inputs.forEach((col, k) => {
    let mean = 0;
    for (const v of col) mean += v / n;
    let variance = 0;
    for (const v of col) variance += (v - mean) ** 2 / n;
    const sd = Math.sqrt(variance) || 1;
    for (let r = 0; r < n; r++) x[r * f + k] = (col[r] - mean) / sd;
  });
  const target = t.columns[targetColumn];
  const y = new Float32Array(n);
  if (task.kind === 'classification') {
    const index = new Map(task.classes.map((c, i) => [c, i]));
    for (let r = 0; r < n; r++) y[r] = index.get(target[r]);
  } else {
    let mean = 0;
    for (const v of target) mean += v / n;
    let variance = 0;
    for (const v of target) variance += (v - mean) ** 2 / n;
    const sd = Math.sqrt(variance) || 1;
    for (let r = 0; r < n; r++) y[r] = (target[r] - mean) / sd;
  }
  shuffleRows(x, y, f, 1, random(1));
  return { x, y, n, f };
}

function drawCsvCurve() {
  drawCurve(
    $('csvCurve'),
    [
      { values: csv.history.map((p) => p.loss), colour: trainColour },
      { values: csv.history.map((p) => p.valLoss ?? NaN), colour: valColour, dashed: true },
    ],
    { format: (v) => v.toFixed(2), empty: 'No epochs yet: press Train on this file.' },
  );
}

async function trainCsv() {
  const t = csv.table;
  if (!t) throw inputError('choose a CSV file first');
  if (!csv.task) throw inputError($('csvTask').textContent);
  const epochs = numberField('csvEpochs', 'the epochs', { min: 1, max: 10000, integer: true });
  const targetColumn = Number($('csvTarget').value);
  const task = csv.task;
  const { x, y, n, f } = csvTensors(t, targetColumn, task);
  if (!csv.remote) {
    const started = startWorker();
    Object.assign(csv, started);
  } else {
    await Promise.race([csv.remote.dispose(), csv.failed]);
  }
  const classification = task.kind === 'classification';
  const outputs = classification ? task.classes.length : 1;
  await Promise.race([
    csv.remote.create({
      spec: specOf(f, [32], 'ReLU', outputs),
      optimizer: 'adam(lr=0.01)',
      loss: classification ? 'cross_entropy' : 'mse',
      modelSeed: 1,
      seed: 1,
      batchSize: 32,
      shuffle: true,
    }),
    csv.failed,
  ]);
  csv.history = [];
  drawCsvCurve();
  const controller = new AbortController();
  csv.controller = controller;
  $('csvTrain').disabled = true;
  $('csvStop').disabled = false;
  $('csvFile').disabled = true;
  $('csvResult').textContent = 'Training in a worker…';
  const show = () => {
    const last = csv.history[csv.history.length - 1];
    if (!last) return;
    $('csvResult').textContent =
      `Epoch ${csv.history.length}: training loss ${fmtLoss(last.loss)}, validation loss ${fmtLoss(last.valLoss)}` +
      (classification ? `, validation accuracy ${fmtPct(last.valAccuracy)}.` : '.');
  };
  try {
    await Promise.race([
      csv.remote.fit(
        { data: x, shape: [n, f] },
        classification ? { data: y, shape: [n] } : { data: y, shape: [n, 1] },
        {
          epochs,
          validationSplit,
          metrics: classification ? ['accuracy'] : [],
          signal: controller.signal,
          onEpochEnd({ loss, accuracy, valLoss, valAccuracy }) {
            csv.history.push({ loss, accuracy, valLoss, valAccuracy });
            if (!csv.drawPending) {
              csv.drawPending = true;
              requestAnimationFrame(() => {
                csv.drawPending = false;
                drawCsvCurve();
                show();
              });
            }
          },
        },
      ),
      csv.failed,
    ]);
  } catch (err) {
    if (!(controller.signal.aborted && isAbort(err))) throw err;
  } finally {
    csv.controller = null;
    $('csvTrain').disabled = false;
    $('csvStop').disabled = true;
    $('csvFile').disabled = false;
  }
  drawCsvCurve();
  show();
  if (controller.signal.aborted) $('csvResult').append(' Stopped.');
}

// ---- wiring --------------------------------------------------------------------------------------

function countFrames() {
  let frames = 0;
  const tick = () => {
    frames += 1;
    $('frames').textContent = String(frames);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function start() {
  $('dismiss').addEventListener('click', () => showError(null));
  addEventListener('unhandledrejection', (event) => showError(event.reason));
  onClick('train', train);
  onClick('stop', stop);
  onClick('save', () => working(saveCheckpoint));
  onClick('resume', () => working(resume));
  onClick('reset', () => working(startOver));
  $('reload').addEventListener('click', () => location.reload());
  for (const id of settingIds) {
    $(id).addEventListener('input', () => {
      showCode();
      previewData();
    });
  }
  $('showPoints').addEventListener('change', drawPlot);
  $('csvFile').addEventListener('change', (event) => run(() => openCsv(event.target.files[0])));
  $('csvTarget').addEventListener('change', () => run(async () => showTask()));
  onClick('csvTrain', trainCsv);
  $('csvStop').addEventListener('click', () => csv.controller?.abort());
  new ResizeObserver(() => {
    drawPlot();
    drawCurves();
    if (csv.table) drawCsvCurve();
  }).observe(document.querySelector('main'));

  const started = startWorker();
  play.remote = started.remote;
  workerFailed = started.failed;

  showCode();
  previewData();
  drawCurves();
  countFrames();
  let hint = null;
  try {
    hint = JSON.parse(localStorage.getItem(savedKey) ?? 'null');
  } catch {
    hint = null;
  }
  document.body.dataset.ready = 'true';
  $('csvFile').disabled = false;
  setButtons();
  $('status').textContent = hint
    ? `Ready. A checkpoint saved at epoch ${hint.epoch} on ${new Date(hint.when).toLocaleString()} is in IndexedDB: Resume continues it, or Train starts anew.`
    : 'Ready: pick the data and the network, then press Train.';
}

start();
