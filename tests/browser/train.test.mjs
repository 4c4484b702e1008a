// train.test.mjs — the training playground (web/demo/train.html) end to end in headless Chromium:
// spirals trained in the Worker while the page keeps drawing frames and answering clicks, Stop,
// Save to IndexedDB, a real page reload on the same profile, Resume — the epoch counter and the
// curves continue where they stopped, the earlier points unchanged — and the CSV path (a
// classification and a regression learnt from generated files; files over the bounds refused
// readably). Screenshots at desktop and phone widths: build/screenshots/train-*.png.
// Run: node --test tests/browser/train.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer, launch, watchErrors, assertNoErrors, browserMissing, ensureWasmBuilt } from './harness.mjs';

const skip = browserMissing() ?? false;
const shotsDir = fileURLToPath(new URL('../../build/screenshots/', import.meta.url));
const sizes = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

let server;
let browser;
before(async () => {
  if (skip) return;
  assert.ok(ensureWasmBuilt(), 'the WebAssembly build failed');
  server = await startServer();
  await mkdir(shotsDir, { recursive: true });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const byId = (id) => `[data-testid="${id}"]`;
const text = (page, id) => page.locator(byId(id)).innerText();
const number = async (page, id) => Number(await text(page, id));
/** A curve's per-epoch values, as the page drew them (the canvas's data-values). */
const curve = async (page, id) => JSON.parse((await page.locator(byId(id)).getAttribute('data-values')) ?? '[]');
const points = async (page, id) => Number((await page.locator(byId(id)).getAttribute('data-points')) ?? 0);
const training = (page) => page.evaluate(() => document.body.dataset.training === 'true');

async function openPlayground(page) {
  await page.setViewportSize(sizes.desktop);
  await page.goto(`${server.url}/web/demo/train.html`);
  await waitReady(page);
}

const waitReady = (page) =>
  page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30_000 });

/** Waits until the page has drawn at least `n` epochs, or the alert shows an error. */
async function waitEpochs(page, n, timeout = 30_000) {
  await page.waitForFunction(
    (want) =>
      Number(document.querySelector('[data-testid="loss-curve"]').dataset.points) >= want ||
      !document.getElementById('alertBox').hidden,
    n,
    { timeout },
  );
  assert.equal(await page.locator('#alertBox').isHidden(), true, `error: ${await text(page, 'alert')}`);
}

async function waitIdle(page, timeout = 30_000) {
  await page.waitForFunction(() => document.body.dataset.training === 'false', null, { timeout });
}

/** Full-page screenshots at both widths: build/screenshots/<name>-desktop.png, -phone.png. */
async function shot(page, name) {
  for (const [label, size] of Object.entries(sizes)) {
    await page.setViewportSize(size);
    await page.waitForTimeout(100); // the canvases redraw on resize
    await page.screenshot({ path: join(shotsDir, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(sizes.desktop);
}

test(
  'spirals: train in the worker, page responsive, stop, save, reload, resume continues the curves',
  { skip },
  async () => {
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await openPlayground(page);
    assert.equal(await points(page, 'loss-curve'), 0);

    // Nothing saved yet, and a bad field: each a readable message in the page, nothing started.
    await page.locator(byId('resume')).click();
    await page.locator('#alertBox').waitFor({ state: 'visible' });
    assert.match(await text(page, 'alert'), /^not_found: nothing saved yet/);
    await page.locator(byId('hidden')).fill('16, x');
    await page.locator(byId('train')).click();
    await page.waitForFunction(() => /hidden layers/.test(document.querySelector('[data-testid="alert"]').textContent));
    assert.match(await text(page, 'alert'), /^invalid_argument: hidden layers: at most 6 whole numbers/);
    assert.equal(await training(page), false);
    await page.locator(byId('hidden')).fill('16, 16');

    await page.locator(byId('dataset')).selectOption('spirals');
    await page.locator(byId('pace')).selectOption('full'); // one fit of many epochs, stopped in the worker
    await page.locator(byId('epochs')).fill('10000'); // far more than the test waits for: Stop ends it
    await page.locator(byId('train')).click();
    await waitEpochs(page, 3);
    assert.equal(await training(page), true, 'still training');

    // Responsive while the worker trains: frames keep coming, a click is handled at once.
    const frames0 = await number(page, 'frames');
    await page.waitForTimeout(1000);
    const frames1 = await number(page, 'frames');
    assert.ok(frames1 - frames0 >= 20, `only ${frames1 - frames0} frames drawn in 1 s of training`);
    // the decision boundary is redrawn while fit runs: the worker answers predict between batches
    const boundaries = Number(await page.locator(byId('plot')).getAttribute('data-boundaries'));
    assert.ok(boundaries >= 2, `${boundaries} boundaries drawn in the first second of training`);
    await page.locator(byId('show-points')).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="plot"]').dataset.pointsShown === '0', null, {
      timeout: 1000,
    });
    await page.locator(byId('show-points')).click();
    assert.equal(await training(page), true, 'the clicks were handled while fit was still running');
    assert.equal(await page.locator(byId('plot')).getAttribute('data-points-shown'), '400');

    await waitEpochs(page, 8);
    await page.locator(byId('stop')).click();
    await waitIdle(page);
    assert.match(await text(page, 'status'), /^Stopped at epoch \d+/);
    const epochs = await number(page, 'epoch');
    const losses = await curve(page, 'loss-curve');
    const accuracies = await curve(page, 'accuracy-curve');
    assert.ok(epochs >= 8 && epochs < 10_000, `stopped at epoch ${epochs}: Stop ended the fit of 10,000`);
    assert.equal(losses.length, epochs, 'one loss point per completed epoch');
    assert.equal(accuracies.length, epochs);
    assert.ok(
      losses.every((v) => Number.isFinite(v) && v > 0),
      `losses ${losses}`,
    );
    assert.ok(losses.at(-1) < losses[0], `the loss went down: ${losses[0]} → ${losses.at(-1)}`);
    assert.ok(
      accuracies.every((v) => v >= 0 && v <= 1),
      `accuracies ${accuracies}`,
    );
    assert.match(await text(page, 'accuracy'), /^\d+(\.\d)?%$/);
    assert.match(await text(page, 'val-accuracy'), /^\d+(\.\d)?%$/);
    assert.ok(Number(await page.locator(byId('plot')).getAttribute('data-boundaries')) >= 1, 'a boundary was drawn');
    const steps = await number(page, 'steps');
    assert.ok(steps >= epochs * 10, `${steps} steps for ${epochs} epochs of 10 batches`);
    await shot(page, 'train-stopped');

    await page.locator(byId('save')).click();
    await page.waitForFunction(
      () =>
        document.querySelector('[data-testid="saved"]').textContent !== '' ||
        !document.getElementById('alertBox').hidden,
    );
    assert.equal(await page.locator('#alertBox').isHidden(), true, `save failed: ${await text(page, 'alert')}`);
    assert.match(await text(page, 'saved'), new RegExp(`at epoch ${epochs} \\(${steps} steps\\)`));

    // A real reload: nothing survives in the page; the checkpoint does, in IndexedDB.
    await page.reload();
    await waitReady(page);
    assert.equal(await points(page, 'loss-curve'), 0);
    assert.equal(await number(page, 'epoch'), 0);
    assert.match(await text(page, 'status'), new RegExp(`checkpoint saved at epoch ${epochs}`));

    await page.locator(byId('resume')).click();
    await page.waitForFunction(
      () =>
        /^Resumed/.test(document.querySelector('[data-testid="status"]').textContent) ||
        !document.getElementById('alertBox').hidden,
    );
    assert.equal(await page.locator('#alertBox').isHidden(), true, `resume failed: ${await text(page, 'alert')}`);
    assert.equal(await number(page, 'epoch'), epochs, 'the epoch counter continues');
    assert.equal(await number(page, 'steps'), steps, "the step count (Adam's) continues");
    assert.deepEqual(await curve(page, 'loss-curve'), losses, 'the curves are redrawn from the checkpoint');
    assert.deepEqual(await curve(page, 'accuracy-curve'), accuracies);

    assert.equal(await page.locator(byId('pace')).inputValue(), 'full', 'the settings come back with the checkpoint');
    await page.locator(byId('pace')).selectOption('frame'); // a fit of one epoch per frame
    await page.locator(byId('epochs')).fill('3');
    await page.locator(byId('train')).click();
    await waitEpochs(page, epochs + 3);
    await waitIdle(page);
    assert.match(await text(page, 'status'), new RegExp(`^Trained to epoch ${epochs + 3}\\b`));
    assert.equal(await number(page, 'epoch'), epochs + 3);
    assert.ok((await number(page, 'steps')) > steps);
    const after = await curve(page, 'loss-curve');
    assert.equal(after.length, epochs + 3, 'the curve goes on from its last point');
    assert.deepEqual(after.slice(0, epochs), losses, 'the earlier points are unchanged');
    assert.ok(after.slice(epochs).every((v) => Number.isFinite(v) && v > 0));
    // Adam continued with its moments: no restart jump in the loss after resuming
    assert.ok(after[epochs] < losses[0], `resumed at ${after[epochs]}, above the first epoch's ${losses[0]}`);
    await shot(page, 'train-resumed');
    assertNoErrors(errors);
    await page.close();
  },
);

/** A CSV of 300 rows: target = 2a - b + 0.5c + noise (seeded), with a header line. */
function regressionCsv() {
  let s = 12345;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const lines = ['a,b,c,target'];
  for (let i = 0; i < 300; i++) {
    const [a, b, c] = [rand() * 4 - 2, rand() * 10, rand() - 0.5];
    lines.push([a, b, c, 2 * a - b + 0.5 * c + (rand() - 0.5) * 0.2].map((v) => v.toFixed(4)).join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** Waits until the CSV training has drawn `epochs` epochs and ended, or the alert shows an error. */
async function waitCsv(page, epochs) {
  await page.waitForFunction(
    (n) =>
      (Number(document.querySelector('[data-testid="csv-curve"]').dataset.points) === n &&
        !document.querySelector('[data-testid="csv-train"]').disabled) ||
      !document.getElementById('alertBox').hidden,
    epochs,
    { timeout: 30_000 },
  );
  assert.equal(await page.locator('#alertBox').isHidden(), true, `CSV training failed: ${await text(page, 'alert')}`);
}

test(
  'bring your data: a CSV classification and a CSV regression train; bounds refused readably',
  { skip },
  async () => {
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    // the demo links here, and the playground back
    await page.setViewportSize(sizes.desktop);
    await page.goto(`${server.url}/web/demo/index.html`);
    await page.locator(byId('to-train')).click();
    await waitReady(page);
    assert.match(page.url(), /\/web\/demo\/train\.html$/);
    assert.equal(await page.locator(byId('to-demo')).getAttribute('href'), 'index.html');
    const upload = (name, body) =>
      page.locator(byId('csv-file')).setInputFiles({ name, mimeType: 'text/csv', buffer: Buffer.from(body) });

    // too many bytes: refused before the file is read
    await upload('huge.csv', Buffer.alloc(5 * 1024 * 1024 + 1, '1,2\n'));
    await page.locator('#alertBox').waitFor({ state: 'visible' });
    assert.match(
      await text(page, 'alert'),
      /^invalid_argument: “huge\.csv” is 5\.0 MB; files up to 5 MB are accepted$/,
    );
    await page.locator(byId('dismiss')).click();
    // too many rows: refused before any parse of the values, with the limit named
    await upload('big.csv', '1,2\n'.repeat(100_001));
    await page.locator('#alertBox').waitFor({ state: 'visible' });
    assert.match(await text(page, 'alert'), /has 100,001 rows of data; the limit is 100,000/);
    // a cell that is not a number: the line and the column named
    await upload('bad.csv', `x,y\n${'1,2\n'.repeat(12)}3,oops\n`);
    await page.waitForFunction(() =>
      /line 14, column 2/.test(document.querySelector('[data-testid="alert"]').textContent),
    );

    // a few whole numbers as the target: classes
    // a few whole numbers as the target: classes (here, which third of [-1.5, 1.5] the first column is in)
    const rows = Array.from({ length: 90 }, (_, i) => {
      const a = ((i * 37) % 90) / 30 - 1.5;
      return `${a.toFixed(3)},${((i * 7) % 10) / 10},${a < -0.5 ? 0 : a < 0.5 ? 1 : 2}`;
    });
    await upload('classes.csv', rows.join('\n'));
    await page.locator(byId('csv-task')).waitFor({ state: 'visible' });
    assert.equal(await page.locator('#alertBox').isHidden(), true);
    assert.match(await text(page, 'csv-summary'), /90 rows, 3 columns, no header line/);
    assert.equal(await page.locator(byId('csv-task')).getAttribute('data-task'), 'classification');
    assert.match(await text(page, 'csv-task'), /3 classes \(0, 1, 2\)/);
    await page.locator(byId('csv-epochs')).fill('30');
    await page.locator(byId('csv-train')).click();
    await waitCsv(page, 30);
    const classLosses = await curve(page, 'csv-curve');
    assert.ok(classLosses.at(-1) < classLosses[0], `the loss went down: ${classLosses[0]} → ${classLosses.at(-1)}`);
    const shown = /validation accuracy (\d+(?:\.\d)?)%\.$/.exec(await text(page, 'csv-result'));
    assert.ok(shown, await text(page, 'csv-result'));
    assert.ok(Number(shown[1]) >= 60, `validation accuracy ${shown[1]}% on three separable classes`);

    await upload('linear.csv', regressionCsv());
    await page.waitForFunction(() =>
      /linear\.csv/.test(document.querySelector('[data-testid="csv-summary"]').textContent),
    );
    assert.match(await text(page, 'csv-summary'), /300 rows, 4 columns, a header line/);
    assert.equal(await page.locator(byId('csv-target')).inputValue(), '3', 'the last column is the target');
    assert.equal(await page.locator(byId('csv-task')).getAttribute('data-task'), 'regression');
    await page.locator(byId('csv-epochs')).fill('15');
    await page.locator(byId('csv-train')).click();
    await waitCsv(page, 15);
    const losses = await curve(page, 'csv-curve');
    assert.equal(losses.length, 15);
    assert.ok(losses.at(-1) < losses[0], `the loss went down: ${losses[0]} → ${losses.at(-1)}`);
    // standardised target: 1 is what predicting the mean scores; a linear target is learnt far below it
    assert.ok(losses.at(-1) < 0.2, `final training MSE ${losses.at(-1)}`);
    assert.match(await text(page, 'csv-result'), /^Epoch 15: training loss \d\.\d{4}, validation loss \d\.\d{4}\.$/);
    await shot(page, 'train-csv');
    assertNoErrors(errors);
    await page.close();
  },
);
