// demo.test.mjs — the demo page (web/demo/) end to end in headless Chromium: the tutorial across a
// real page reload and a browser restart on the same profile, the model library (list, rename,
// duplicate, delete, download, upload, another tab), PyTorch interop (importing .pt/.safetensors
// files, exporting stored models), readable errors, and screenshots of every
// step at desktop and phone widths in build/screenshots/. Run: node --test tests/browser/demo.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer, launch, watchErrors, assertNoErrors, browserMissing, tempDir, removeDir } from './harness.mjs';

const skip = browserMissing() ?? false;
const shotsDir = fileURLToPath(new URL('../../build/screenshots/', import.meta.url));
const sizes = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

let server;
before(async () => {
  server = await startServer();
  await mkdir(shotsDir, { recursive: true });
});
after(async () => {
  await server?.close();
});

/** A fresh profile for one scenario, removed afterwards. */
async function withProfile(fn) {
  const dir = await tempDir('modelkeep-demo-');
  try {
    return await fn(dir);
  } finally {
    await removeDir(dir);
  }
}

const waitDemo = (page) =>
  page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 30_000 });

/** The demo in the browser's first tab (or a new one), at desktop size, with its errors collected. */
async function openDemo(context, { newTab = false } = {}) {
  const page = (!newTab && context.pages()[0]) || (await context.newPage());
  const errors = watchErrors(page);
  await page.setViewportSize(sizes.desktop);
  await page.goto(`${server.url}/web/demo/index.html`);
  await waitDemo(page);
  return { page, errors };
}

/** Full-page screenshots at both widths: build/screenshots/<name>-desktop.png, -phone.png. */
async function shot(page, name) {
  for (const [label, size] of Object.entries(sizes)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(shotsDir, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(sizes.desktop);
}

const byId = (id) => `[data-testid="${id}"]`;
const text = (page, id) => page.locator(byId(id)).innerText();

/** The exact values behind a tensor table (data-value), in row-major order. */
function values(page, root, tensor, cells = 'td') {
  return page.$$eval(`${byId(root)} table[data-tensor="${tensor}"] ${cells}`, (tds) =>
    tds.map((td) => Number(td.dataset.value)),
  );
}

async function click(page, id) {
  await page.locator(byId(id)).click();
}

/**
 * Answers the page's own dialog (a <dialog>, not window.confirm): waits for it, checks its title,
 * optionally types in its field, presses the button `choice` ('cancel', 'replace', 'keep', ...),
 * and waits for it to close. Returns the dialog's text.
 */
async function answer(page, choice, { title, input } = {}) {
  // One <dialog> asks every question: each opening has its own data-question number.
  await page.locator(`${byId('ask')}[open]`).waitFor();
  const question = await page.locator(byId('ask')).getAttribute('data-question');
  const shown = await page.locator(byId('ask')).innerText();
  if (title) assert.match(await text(page, 'ask-title'), title);
  if (input !== undefined) await page.locator(byId('ask-input')).fill(input);
  await page.locator(byId(`ask-${choice}`)).click();
  await page.waitForFunction((n) => {
    const dialog = document.querySelector('[data-testid="ask"]');
    return !dialog.open || dialog.dataset.question !== n;
  }, question);
  return shown;
}

/** y = W·x + b in doubles, from the weights the page showed before saving. */
function expected(weight, bias, x) {
  return bias.map((b, i) => b + weight[i * 3] * x[0] + weight[i * 3 + 1] * x[1] + weight[i * 3 + 2] * x[2]);
}

async function predict(page, input) {
  await page.locator(byId('input')).fill(JSON.stringify(input));
  await click(page, 'predict');
  await page.waitForFunction(() => document.querySelector('[data-testid="output"] td') !== null);
  return values(page, 'output', 'y');
}

/**
 * A duration as the page shows it: "< 0.1 ms" (below what the browser's clock resolves), or a
 * positive number to at most 3 significant digits — never "0.000 ms".
 */
function assertDuration(shown, what) {
  const m = / in (< 0\.01|< 0\.1|\d[\d.]*) ms/.exec(shown);
  assert.ok(m, `${what}: no duration in "${shown}"`);
  if (m[1].startsWith('<')) return;
  const value = Number(m[1]);
  const significant = m[1].replace('.', '').replace(/^0+/, '');
  assert.ok(value > 0, `${what}: "${m[1]} ms" is not a positive duration`);
  assert.ok(significant.length <= 3 || (Number.isInteger(value) && value >= 100), `${what}: "${m[1]} ms"`);
}

function assertClose(actual, want, tolerance, what) {
  assert.equal(actual.length, want.length, `${what}: length`);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - want[i]) <= tolerance, `${what}[${i}]: ${v} vs ${want[i]} (tolerance ${tolerance})`),
  );
}

test(
  'the tutorial: create, save, reload, load, predict — and again after a browser restart',
  { skip, timeout: 60_000 },
  () =>
    withProfile(async (dir) => {
      const x = [1, 2, 3];
      let weight;
      let bias;

      let browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        assert.match(await text(page, 'status'), /Ready/);
        assert.match(await text(page, 'current'), /No model in memory yet/);
        await shot(page, '0-start');

        // 1. Create: a 5×3 weight and 5 biases, shown to 6 decimals.
        await click(page, 'create');
        weight = await values(page, 'weights', 'fc1.weight');
        bias = await values(page, 'weights', 'fc1.bias');
        assert.equal(weight.length, 15);
        assert.equal(bias.length, 5);
        const bound = 1 / Math.sqrt(3); // PyTorch's init: uniform in ±1/√in_features
        for (const v of [...weight, ...bias]) assert.ok(Math.abs(v) <= bound, `${v} outside ±1/√3`);
        const shown = await page
          .locator(`${byId('weights')} td`)
          .first()
          .innerText();
        assert.match(shown, /^-?\d\.\d{6}$/);
        await shot(page, '1-create');

        // 2. Save as f32: the tutorial model is 148 bytes.
        await page.locator(byId('dtype')).selectOption('f32');
        await click(page, 'save');
        await page.locator(byId('saved-bytes')).waitFor();
        assert.equal(await text(page, 'saved-bytes'), '148 bytes');
        assert.match(await text(page, 'saved'), /indexeddb:\/\/tutorial as f32: 148 bytes in .+ ms/);
        assertDuration(await text(page, 'saved'), 'save');
        assert.equal(await page.locator('progress#saveProgress').evaluate((p) => p.value), 1);
        await shot(page, '2-save');

        // 3. A real reload: the model is gone from memory.
        await Promise.all([page.waitForEvent('load'), click(page, 'reload')]);
        await waitDemo(page);
        assert.match(await text(page, 'current'), /page was reloaded, so the model created here is gone/);
        assert.equal(await page.locator(`${byId('weights')} table`).count(), 0);
        assert.match(await text(page, 'reloaded'), /no longer in memory/);
        assert.match(await text(page, 'saved'), /148 bytes/); // the saved copy outlived the reload
        await shot(page, '3-reload');

        // 4. Load: every value identical to the one shown before saving.
        await click(page, 'load');
        await page.locator(`${byId('compare')}[data-ok]`).waitFor();
        assert.equal(await page.locator(byId('compare')).getAttribute('data-ok'), 'true');
        assert.match(await text(page, 'compare'), /15\/15 weights identical · 5\/5 biases identical/);
        assert.deepEqual(await values(page, 'comparison', 'fc1.weight', 'td[data-match]'), weight);
        assert.deepEqual(await values(page, 'comparison', 'fc1.bias', 'td[data-match]'), bias);
        assert.deepEqual(await values(page, 'comparison', 'fc1.weight', 'td:not([data-match])'), weight);
        assert.equal(await page.locator(`${byId('comparison')} td[data-match="identical"]`).count(), 20);
        assert.match(
          await text(page, 'loaded'),
          /checksums verified; its weights are held as f32 in memory \(80 bytes\)/,
        );
        await shot(page, '4-load');

        // 5. Predict: the page's output equals W·x + b computed here.
        assertClose(await predict(page, [x]), expected(weight, bias, x), 1e-5, 'y');
        const x2 = [
          [0.5, -1, 2],
          [3, 0, -4],
        ];
        const y2 = await predict(page, x2);
        assertClose(y2, [...expected(weight, bias, x2[0]), ...expected(weight, bias, x2[1])], 1e-5, 'y2');
        assert.match(await text(page, 'predicted'), /shape \[2, 5\], computed in .+ ms/);
        assertDuration(await text(page, 'predicted'), 'predict');
        assertClose(await predict(page, [x]), expected(weight, bias, x), 1e-5, 'y');
        await shot(page, '5-predict');

        // A wrong input is a readable error in the page, and the next action clears it.
        await page.locator(byId('input')).fill('[[1, 2]]');
        await click(page, 'predict');
        await page.locator(`${byId('alert')}:has-text("shape_mismatch")`).waitFor();
        await shot(page, '5-predict-error');
        await page.locator(byId('input')).fill('[[1, 2, 3]');
        await click(page, 'predict');
        await page.locator(`${byId('alert')}:has-text("invalid_input")`).waitFor();
        await predict(page, [x]);
        assert.equal(await text(page, 'alert'), '');
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }

      // A browser restart on the same profile: sessionStorage is gone, IndexedDB is not.
      browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        assert.match(await text(page, 'current'), /No model in memory yet/);
        await click(page, 'load');
        await page
          .locator(`${byId('comparison')} table`)
          .first()
          .waitFor();
        assert.match(await text(page, 'compare'), /No copy of the saved weights/);
        assert.deepEqual(await values(page, 'comparison', 'fc1.weight'), weight);
        assert.deepEqual(await values(page, 'comparison', 'fc1.bias'), bias);
        assertClose(await predict(page, [x]), expected(weight, bias, x), 1e-5, 'y after restart');
        await shot(page, '6-after-restart');

        // The same model as f16: loaded weights within f16's bound, biases still exact.
        await page.locator(byId('dtype')).selectOption('f16');
        await click(page, 'save');
        // "tutorial" is stored: the page asks before writing over it.
        assert.match(await answer(page, 'replace', { title: /“tutorial” is taken/ }), /Keep both \(as “tutorial-2”\)/);
        await page.locator(`${byId('saved')}:has-text("as f16")`).waitFor();
        assert.match(await text(page, 'saved'), /replaced, as you chose/);
        const f16Bytes = Number((await text(page, 'saved-bytes')).split(' ')[0]);
        assert.ok(f16Bytes < 148, `f16 file (${f16Bytes} bytes) smaller than f32`);
        await click(page, 'load');
        await page.locator(`${byId('compare')}:has-text("f16 bound")`).waitFor();
        assert.equal(await page.locator(byId('compare')).getAttribute('data-ok'), 'true');
        assert.match(await text(page, 'compare'), /15\/15 weights within the f16 bound \(max difference [\d.e+-]+;/);
        const w16 = await values(page, 'comparison', 'fc1.weight', 'td[data-match]');
        w16.forEach((v, i) =>
          assert.ok(
            Math.abs(v - weight[i]) <= 2 ** -11 * Math.abs(weight[i]) + 1e-7,
            `f16 weight ${i}: ${v} vs ${weight[i]}`,
          ),
        );
        assert.deepEqual(await values(page, 'comparison', 'fc1.bias', 'td[data-match]'), bias);
        await shot(page, '7-load-f16');

        // bf16 and int8: every weight within its documented bound, as the page's marks say.
        const bounds = { bf16: (w) => 2 ** -8 * Math.abs(w), int8: (w, row) => Math.max(...row.map(Math.abs)) / 254 };
        for (const dtype of ['bf16', 'int8']) {
          // What is saved is the model in memory: the one just loaded back from the previous dtype.
          const before = await values(page, 'weights', 'fc1.weight');
          await page.locator(byId('dtype')).selectOption(dtype);
          await click(page, 'save');
          await answer(page, 'replace');
          await page.locator(`${byId('saved')}:has-text("as ${dtype}")`).waitFor();
          await click(page, 'load');
          await page.locator(`${byId('compare')}:has-text("${dtype} bound")`).waitFor();
          assert.equal(await page.locator(byId('compare')).getAttribute('data-ok'), 'true', dtype);
          const got = await values(page, 'comparison', 'fc1.weight', 'td[data-match]');
          got.forEach((v, i) => {
            const row = before.slice(i - (i % 3), i - (i % 3) + 3);
            assert.ok(
              Math.abs(v - before[i]) <= bounds[dtype](before[i], row) * (1 + 1e-6) + 1e-9,
              `${dtype} weight ${i}: ${v} vs ${before[i]}`,
            );
          });
          assert.equal(await page.locator(`${byId('comparison')} td[data-match="beyond"]`).count(), 0);
        }
        await shot(page, '7-load-int8');
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

/** The library card of one stored model. */
const card = (page, name) => page.locator(`[data-testid="model-row"][data-name="${name}"]`);

async function names(page) {
  return page.$$eval('[data-testid="model-row"]', (rows) => rows.map((r) => r.dataset.name));
}

async function waitNames(page, want) {
  await page.waitForFunction(
    (w) =>
      JSON.stringify([...document.querySelectorAll('[data-testid="model-row"]')].map((r) => r.dataset.name)) ===
      JSON.stringify(w),
    want,
    { timeout: 10_000 },
  );
}

test(
  'the library: list, duplicate, rename, delete, download, upload, another tab, storage',
  { skip, timeout: 60_000 },
  () =>
    withProfile(async (dir) => {
      const browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        await page.locator(byId('empty')).waitFor(); // the first listing follows 'ready'
        await page.locator(`${byId('storage')}:has-text("used of")`).waitFor();
        assert.match(await text(page, 'storage'), /^Storage: .+ used of .+ available to this site\.$/);

        await click(page, 'create');
        await click(page, 'save');
        await waitNames(page, ['tutorial']);
        const tutorial = card(page, 'tutorial');
        assert.equal(await tutorial.locator('[data-field="bytes"]').getAttribute('data-value'), '148');
        assert.equal(await tutorial.locator('[data-field="dtype"]').innerText(), 'f32');
        assert.equal(await tutorial.locator('[data-field="params"]').innerText(), '20');
        assert.match(await tutorial.innerText(), /fc1=Linear\(3,5\)/);
        assert.match(await tutorial.innerText(), /Metadata\s+—/);
        assert.equal(await page.locator(byId('empty')).isVisible(), false);

        // Duplicate and rename (the page's dialog asks for the name), delete (it asks: cancelled,
        // then confirmed).
        await tutorial.getByRole('button', { name: 'Duplicate tutorial', exact: true }).click();
        await page.locator(byId('ask')).waitFor();
        assert.equal(await page.locator(byId('ask-input')).inputValue(), 'tutorial copy');
        await answer(page, 'go', { title: /^Duplicate “tutorial”$/ });
        await waitNames(page, ['tutorial', 'tutorial copy']);
        await card(page, 'tutorial copy').getByRole('button', { name: 'Rename tutorial copy', exact: true }).click();
        await answer(page, 'go', { title: /^Rename “tutorial copy”$/, input: 'renamed' });
        await waitNames(page, ['renamed', 'tutorial']);
        assert.match(await text(page, 'library-note'), /Renamed “tutorial copy” as “renamed”\./);
        await card(page, 'renamed').getByRole('button', { name: 'Delete renamed', exact: true }).click();
        await answer(page, 'cancel', { title: /^Delete “renamed”\?$/ });
        await page.waitForTimeout(200);
        assert.deepEqual(await names(page), ['renamed', 'tutorial']);
        assert.match(await text(page, 'library-note'), /Not deleted: “renamed” is kept/);
        await card(page, 'renamed').getByRole('button', { name: 'Delete renamed', exact: true }).click();
        await answer(page, 'delete');
        await waitNames(page, ['tutorial']);

        // Download: the stored bytes as tutorial.mkp, starting with the magic \x89MKP.
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          tutorial.getByRole('button', { name: 'Download tutorial', exact: true }).click(),
        ]);
        assert.equal(download.suggestedFilename(), 'tutorial.mkp');
        const bytes = await readFile(await download.path());
        assert.equal(bytes.length, 148);
        assert.deepEqual([...bytes.subarray(0, 4)], [0x89, 0x4d, 0x4b, 0x50]);

        // Upload: the file is checked, described and stored under its file name.
        await page
          .locator(byId('upload'))
          .setInputFiles({ name: 'uploaded.mkp', mimeType: 'application/octet-stream', buffer: bytes });
        await waitNames(page, ['tutorial', 'uploaded']);
        assert.equal(await text(page, 'upload-arch'), 'fc1=Linear(3,5)');
        assert.match(await text(page, 'upload-report'), /fc1\.weight \(5×3\)[\s\S]*fc1\.bias \(5\)/);
        assert.equal(await text(page, 'alert'), '');
        await shot(page, '8-library');

        // Bring your own model: re-save the upload with int8 weights; its size shrinks, it still loads.
        const uploaded = card(page, 'uploaded');
        const sizeOf = () => uploaded.locator('[data-field="bytes"]').getAttribute('data-value');
        assert.equal(await sizeOf(), String(bytes.length));
        await uploaded.getByLabel('Weights of uploaded').selectOption('int8');
        await uploaded.getByRole('button', { name: 'Re-save uploaded', exact: true }).click();
        assert.match(
          await answer(page, 'replace', { title: /^Re-save “uploaded” with int8 weights\?$/ }),
          /int8 keeps fewer digits: once replaced, the f32 values are gone/,
        );
        await page.waitForFunction(
          () =>
            document.querySelector('[data-testid="model-row"][data-name="uploaded"] [data-field="dtype"]')
              ?.textContent === 'int8',
        );
        assert.ok(Number(await sizeOf()) < bytes.length, `int8 ${await sizeOf()} < f32 ${bytes.length}`);
        await uploaded.getByRole('button', { name: 'Load uploaded', exact: true }).click();
        await page.waitForFunction(() => document.getElementById('current')?.textContent.includes('uploaded'));
        assert.equal(await text(page, 'alert'), '');

        // A corrupted upload: one flipped byte in the weights is a readable checksum_mismatch.
        const corrupt = Buffer.from(bytes);
        corrupt[corrupt.length - 30] ^= 0x01;
        await page
          .locator(byId('upload'))
          .setInputFiles({ name: 'corrupt.mkp', mimeType: 'application/octet-stream', buffer: corrupt });
        await page.locator(`${byId('alert')}:has-text("checksum_mismatch")`).waitFor();
        assert.match(await text(page, 'alert'), /^checksum_mismatch: \S.*/);
        assert.deepEqual(await names(page), ['tutorial', 'uploaded']);
        await shot(page, '9-upload-error');
        await page.getByRole('button', { name: 'Dismiss', exact: true }).click();
        assert.equal(await page.getByRole('alert').isVisible(), false);

        // Another tab deletes a model: this tab's list follows (onModelsChange).
        const other = await openDemo(browser.context, { newTab: true });
        await waitNames(other.page, ['tutorial', 'uploaded']);
        await card(other.page, 'uploaded').getByRole('button', { name: 'Delete uploaded', exact: true }).click();
        await answer(other.page, 'delete');
        await waitNames(page, ['tutorial']);
        assertNoErrors(other.errors);
        await other.page.close();

        // Load from the library makes it the current model; predict works on it.
        await page.bringToFront();
        await card(page, 'tutorial').getByRole('button', { name: 'Load tutorial', exact: true }).click();
        await page.locator(`${byId('current')}:has-text("indexeddb://tutorial")`).waitFor();
        assert.equal((await values(page, 'weights', 'fc1.weight')).length, 15);

        // Keep my data: the answer is shown, whatever the browser decides.
        await click(page, 'persist');
        await page.locator(`${byId('persist-result')}[data-granted]`).waitFor();
        assert.match(await text(page, 'persist-result'), /^(Granted|Not granted)/);

        // Accessibility basics: headings in order, named buttons, labelled controls.
        const a11y = await page.evaluate(() => {
          const levels = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((h) => Number(h.tagName[1]));
          const skips = levels.filter((l, i) => i > 0 && l > levels[i - 1] + 1);
          const unnamed = [...document.querySelectorAll('button')].filter(
            (b) => !(b.getAttribute('aria-label') || b.textContent).trim(),
          ).length;
          const unlabelled = [...document.querySelectorAll('input, select')]
            .filter((c) => !c.labels?.length && !c.getAttribute('aria-label'))
            .map((c) => c.id);
          const alertRole = document.querySelector('[data-testid="alert"]').closest('[role]')?.getAttribute('role');
          return { first: levels[0], skips, unnamed, unlabelled, alertRole };
        });
        assert.deepEqual(a11y, { first: 1, skips: [], unnamed: 0, unlabelled: [], alertRole: 'alert' });
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

test('the page says so when the package cannot load', { skip, timeout: 30_000 }, async () => {
  const browser = await launch();
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    const errors = watchErrors(page);
    await page.route('**/web/dist/modelkeep_wasm.mjs', (route) => route.fulfill({ status: 404, body: 'gone' }));
    await page.goto(`${server.url}/web/demo/index.html`);
    await page.locator(`${byId('alert')}:has-text("could not start")`).waitFor();
    assert.equal(await page.locator(byId('create')).isDisabled(), true);
    // The core's loader is import()ed by ready(): its failure is the page's top-level await's.
    assertNoErrors(errors, [/404/, /Failed to load/, /cannot load modelkeep's WebAssembly module/]);
  } finally {
    await browser.close();
  }
});

// ---- PyTorch interop: import .pt / .safetensors files, export stored models -------------------

const torchDir = fileURLToPath(new URL('../torch/', import.meta.url));

/** A C99 hex float ("-0x1.4c3142p-4") as the exact double it names. */
function hexFloat(token) {
  const m = /^(-?)0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)$/i.exec(token);
  assert.ok(m, `not a hex float: ${token}`);
  const frac = m[3] ?? '';
  const mantissa = parseInt(m[2], 16) + (frac ? parseInt(frac, 16) / 16 ** frac.length : 0);
  return (m[1] ? -1 : 1) * mantissa * 2 ** Number(m[4]);
}

/** tests/torch/<name>.txt: { spec, globals, tensors: { name: { shape, data } }, input, output, ... }. */
async function torchCase(name) {
  const out = { tensors: {}, globals: [] };
  let values = null;
  for (const line of (await readFile(join(torchDir, `${name}.txt`), 'utf8')).split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [key, ...rest] = line.trim().split(/\s+/);
    if (/^-?0x/i.test(key)) {
      values.push(...[key, ...rest].map(hexFloat));
    } else if (key === 'tensor') {
      const [tensor, , , ...shape] = rest;
      values = [];
      out.tensors[tensor] = { shape: shape.map(Number), data: values };
    } else if (key === 'input' || key === 'output') {
      values = [];
      out[key] = { shape: rest.slice(1).map(Number), data: values };
    } else if (key === 'global') {
      values = null;
      out.globals.push(rest.join(' '));
    } else {
      values = null;
      out[key] = rest.join(' ');
    }
  }
  return out;
}

/** A flat 2-D { shape, data } as rows (nested arrays). */
const rows = ({ shape, data }) =>
  Array.from({ length: shape[0] }, (_, r) => data.slice(r * shape[1], (r + 1) * shape[1]));

/** y = W·x + b for one row, in doubles. */
const linear = ({ shape: [out, inp], data: w }, { data: b }, x) =>
  Array.from({ length: out }, (_, i) => b[i] + x.reduce((s, v, j) => s + w[i * inp + j] * v, 0));

/** Chooses a file in the library's upload input, as a user would. */
async function uploadFile(page, file, as = file) {
  const buffer = typeof file === 'string' ? await readFile(join(torchDir, 'files', file)) : file;
  await page.locator(byId('upload')).setInputFiles({ name: as, mimeType: 'application/octet-stream', buffer });
}

/** The model imported last: fills the panel's input, predicts, returns y's values. */
async function importPredict(page, input) {
  await page.locator(byId('import-output')).evaluate((out) => out.replaceChildren());
  await page.locator(byId('import-input')).fill(JSON.stringify(input));
  await click(page, 'import-predict');
  await page
    .locator(`${byId('import-output')} td`)
    .first()
    .waitFor();
  return values(page, 'import-output', 'y');
}

const field = (page, name) => page.locator(`${byId('import-found')} [data-field="${name}"]`);

/** Heading levels that skip one, and inputs, selects or buttons without a name. */
function a11yProblems(page) {
  return page.evaluate(() => {
    const levels = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((h) => Number(h.tagName[1]));
    return {
      skips: levels.filter((l, i) => i > 0 && l > levels[i - 1] + 1),
      unnamed: [...document.querySelectorAll('button')].filter(
        (b) => !(b.getAttribute('aria-label') || b.textContent).trim(),
      ).length,
      unlabelled: [...document.querySelectorAll('input, select')]
        .filter((c) => !c.labels?.length && !c.getAttribute('aria-label'))
        .map((c) => c.dataset.testid ?? c.id),
    };
  });
}

test(
  'PyTorch files: an nn.Sequential loads directly, a custom module and a state dict once told what runs, a hostile pickle is refused',
  { skip, timeout: 90_000 },
  () =>
    withProfile(async (dir) => {
      const browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        await page.locator(byId('empty')).waitFor();
        assert.equal(
          await page.locator(byId('upload')).getAttribute('accept'),
          '.mkp,.pt,.pth,.safetensors,application/octet-stream',
        );

        // mlp_full.pt, dropped on the page: torch.save of an nn.Sequential. The file says what runs,
        // so it is described, loaded, stored and run at once.
        const mlp = await torchCase('mlp_full');
        await page.evaluate(async (url) => {
          const bytes = await (await fetch(url)).arrayBuffer();
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], 'mlp_full.pt'));
          document.body.dispatchEvent(
            new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }),
          );
        }, '/tests/torch/files/mlp_full.pt');
        await page.locator(byId('import-result')).waitFor();
        assert.equal(await field(page, 'format').innerText(), 'torch-zip');
        assert.equal(await field(page, 'holds').innerText(), 'module torch.nn.modules.container.Sequential');
        assert.equal(await field(page, 'architecture').innerText(), '0=Linear(8,16), 1=ReLU, 2=Linear(16,4)');
        assert.match(
          await text(page, 'import-tree'),
          /^Sequential\(\n {2}\(0\): Linear\(in_features=8, out_features=16\)\n {2}\(1\): ReLU\n/,
        );
        // The names the pickle refers to, as PyTorch's own reader lists them.
        assert.ok(mlp.globals.includes('torch.nn.modules.container.Sequential'));
        assert.deepEqual(await page.locator(`${byId('import-globals')} code`).allInnerTexts(), mlp.globals);
        assert.deepEqual(
          await page.$$eval(`${byId('import-tensors')} tbody tr`, (trs) =>
            trs.map((tr) => tr.innerText.split('\t').join(' ')),
          ),
          ['0.weight float32 16×8', '0.bias float32 16', '2.weight float32 4×16', '2.bias float32 4'],
        );
        assert.equal(await page.locator(byId('import-form')).count(), 0);
        assert.equal(await text(page, 'import-arch'), '0=Linear(8,16), 1=ReLU, 2=Linear(16,4)');
        assert.equal(await text(page, 'import-params'), '212');
        assert.equal(await page.locator(byId('import-from')).getAttribute('data-value'), 'module tree');
        // The first prediction is shown straight away, on [[1, …, 8]].
        await page
          .locator(`${byId('import-output')} td`)
          .first()
          .waitFor();
        const t = mlp.tensors;
        const mlpForward = (x) =>
          linear(
            t['2.weight'],
            t['2.bias'],
            linear(t['0.weight'], t['0.bias'], x).map((v) => Math.max(v, 0)),
          );
        assertClose(
          await values(page, 'import-output', 'y'),
          mlpForward([1, 2, 3, 4, 5, 6, 7, 8]),
          1e-5,
          'mlp y([1..8])',
        );
        // The fixture's input gives PyTorch's output.
        assertClose(await importPredict(page, rows(mlp.input)), mlp.output.data, 1e-5, 'mlp_full y');
        assert.match(await text(page, 'import-predicted'), /shape \[3, 4\]/);
        await waitNames(page, ['mlp_full']);
        assert.match(await card(page, 'mlp_full').innerText(), /source: mlp_full\.pt/);
        assert.equal(await card(page, 'mlp_full').locator('[data-field="params"]').innerText(), '212');
        await shot(page, '10-import-sequential');

        // tutorial_full.pt: torch.save of the tutorial's own Model class. Its forward() is not in the
        // file, so the page asks; nothing is stored until the user says what runs.
        const tutorial = await torchCase('tutorial_full');
        await uploadFile(page, 'tutorial_full.pt');
        await page.locator(byId('import-form')).waitFor();
        assert.equal(await field(page, 'holds').innerText(), 'module __main__.Model');
        assert.equal(await field(page, 'architecture').getAttribute('data-missing'), 'true');
        assert.match(await field(page, 'architecture').innerText(), /forward\(\) is not in the file/);
        assert.match(
          await text(page, 'import-tree'),
          /^__main__\.Model\(\n {2}\(fc1\): Linear\(in_features=3, out_features=5\)\n\)$/,
        );
        const assume = page.locator(byId('import-assume'));
        assert.equal(await assume.isChecked(), false); // opt-in
        assert.match(
          await page.locator(`${byId('import-form')} .warning`).innerText(),
          /Opt-in, because forward\(\) is Python code/,
        );
        assert.equal(await page.getByLabel('Assume its forward() runs these children in order').count(), 1);
        assert.deepEqual(await a11yProblems(page), { skips: [], unnamed: 0, unlabelled: [] });
        await shot(page, '11-import-asks');
        // Load with neither a SPEC nor the box ticked: a readable error, nothing stored.
        await click(page, 'import-load');
        await page.locator(`${byId('alert')}:has-text("invalid_argument")`).waitFor();
        assert.match(await text(page, 'import-form-error'), /invalid_argument: enter an architecture/);
        assert.deepEqual(await names(page), ['mlp_full']);
        await assume.check();
        assert.equal(await page.locator(byId('import-spec')).isDisabled(), true);
        await click(page, 'import-load');
        await page.locator(byId('import-result')).waitFor();
        assert.equal(await text(page, 'alert'), '');
        assert.equal(await page.locator(byId('import-from')).getAttribute('data-value'), 'assume_sequential');
        assert.equal(await text(page, 'import-arch'), 'fc1=Linear(3,5)');
        assert.equal(await text(page, 'import-params'), '20');
        assert.deepEqual(await a11yProblems(page), { skips: [], unnamed: 0, unlabelled: [] });
        assertClose(await importPredict(page, rows(tutorial.input)), tutorial.output.data, 1e-5, 'tutorial_full y');
        await waitNames(page, ['mlp_full', 'tutorial_full']);
        await shot(page, '12-import-assumed');

        // tutorial_state.pt: a state dict. A SPEC is suggested from the tensors — as a guess, beside an
        // empty field; a wrong one is a readable shape_mismatch; the right one loads.
        const state = await torchCase('tutorial_state');
        await uploadFile(page, 'tutorial_state.pt');
        await page.locator(byId('import-form')).waitFor();
        assert.equal(await field(page, 'holds').innerText(), 'state dict');
        assert.equal(await page.locator(byId('import-assume')).count(), 0); // only for pickled modules
        assert.equal(await page.locator(byId('import-tree')).count(), 0);
        assert.equal(await page.locator(byId('import-spec')).inputValue(), '');
        assert.equal(await text(page, 'import-suggestion'), 'fc1=Linear(3,5)');
        await page.locator(byId('import-spec')).fill('fc1=Linear(3,6)');
        await click(page, 'import-load');
        await page.locator(`${byId('alert')}:has-text("shape_mismatch")`).waitFor();
        assert.match(await text(page, 'import-form-error'), /shape_mismatch: size mismatch for fc1\.weight/);
        assert.deepEqual(await names(page), ['mlp_full', 'tutorial_full']);
        await page.locator(byId('import-spec')).fill(state.spec);
        await page.locator(byId('import-spec')).press('Enter'); // a form: Enter loads too
        await page.locator(byId('import-result')).waitFor();
        assert.equal(await text(page, 'alert'), '');
        assert.equal(await page.locator(byId('import-from')).getAttribute('data-value'), 'architecture option');
        assert.equal(await page.locator(byId('import-summary')).getAttribute('data-certain'), 'false');
        assertClose(await importPredict(page, rows(state.input)), state.output.data, 1e-5, 'tutorial_state y');
        await waitNames(page, ['mlp_full', 'tutorial_full', 'tutorial_state']);

        // mlp.safetensors: no pickle at all; the suggested SPEC lacks the ReLU, the user adds it.
        const st = await torchCase('mlp_safetensors');
        await uploadFile(page, 'mlp.safetensors');
        await page.locator(byId('import-form')).waitFor();
        assert.equal(await field(page, 'format').innerText(), 'safetensors');
        assert.equal(await page.locator(byId('import-globals')).count(), 0);
        assert.equal(await page.locator(byId('import-spec')).inputValue(), '');
        assert.equal(await text(page, 'import-suggestion'), '0=Linear(8,16), 2=Linear(16,4)');
        await page.locator(byId('import-spec')).fill(st.spec);
        await click(page, 'import-load');
        await page.locator(byId('import-result')).waitFor();
        assertClose(await importPredict(page, rows(st.input)), st.output.data, 1e-5, 'mlp.safetensors y');
        await waitNames(page, ['mlp', 'mlp_full', 'tutorial_full', 'tutorial_state']);

        // mal_posix_system.pt: a pickle that would run os.system. Refused by name while reading,
        // shown as an error with its code, and nothing is stored.
        await uploadFile(page, 'mal_posix_system.pt');
        await page.locator(`${byId('alert')}:has-text("disallowed_global")`).waitFor();
        assert.match(await text(page, 'alert'), /^disallowed_global: .*posix\.system is not allowed/);
        const refused = page.locator(byId('upload-error'));
        assert.equal(await refused.getAttribute('data-code'), 'disallowed_global');
        assert.match(
          await refused.innerText(),
          /Not stored: “mal_posix_system\.pt”[\s\S]*disallowed_global: [\s\S]*Nothing was stored\./,
        );
        assert.equal(await refused.evaluate((e) => getComputedStyle(e).borderTopColor), 'rgb(179, 38, 30)');
        assert.equal(await page.locator(byId('import')).count(), 0);
        await page.waitForTimeout(300);
        assert.deepEqual(await names(page), ['mlp', 'mlp_full', 'tutorial_full', 'tutorial_state']);
        await shot(page, '13-import-refused');

        // The stored imports are ordinary library models: load one into the tutorial's step 5.
        await card(page, 'tutorial_full').getByRole('button', { name: 'Load tutorial_full', exact: true }).click();
        await page.locator(`${byId('current')}:has-text("indexeddb://tutorial_full")`).waitFor();
        assertClose(await predict(page, rows(tutorial.input)), tutorial.output.data, 1e-5, 'step 5 y');
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

test(
  'the library exports a stored model for PyTorch: .safetensors and .pt downloads, and the .pt reads back',
  { skip, timeout: 60_000 },
  () =>
    withProfile(async (dir) => {
      const browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        await click(page, 'create');
        const weight = await values(page, 'weights', 'fc1.weight');
        const bias = await values(page, 'weights', 'fc1.bias');
        await page.locator(byId('dtype')).selectOption('f32');
        await click(page, 'save');
        await waitNames(page, ['tutorial']);
        assert.match(await text(page, 'library'), /torch\.load\(path, weights_only=True\)/);
        const tutorial = card(page, 'tutorial');

        // .safetensors: an 8-byte little-endian header length, a JSON header, the raw f32 weights.
        const [stDownload] = await Promise.all([
          page.waitForEvent('download'),
          tutorial.getByRole('button', { name: 'Download .safetensors tutorial', exact: true }).click(),
        ]);
        assert.equal(stDownload.suggestedFilename(), 'tutorial.safetensors');
        const st = await readFile(await stDownload.path());
        const headerLength = Number(st.readBigUInt64LE(0));
        assert.ok(headerLength > 0 && 8 + headerLength <= st.length, `header length ${headerLength}`);
        const header = JSON.parse(st.subarray(8, 8 + headerLength).toString('utf8'));
        assert.deepEqual(
          Object.keys(header)
            .filter((k) => k !== '__metadata__')
            .sort(),
          ['fc1.bias', 'fc1.weight'],
        );
        assert.deepEqual([header['fc1.weight'].dtype, header['fc1.weight'].shape], ['F32', [5, 3]]);
        assert.deepEqual([header['fc1.bias'].dtype, header['fc1.bias'].shape], ['F32', [5]]);
        const end = Math.max(
          ...Object.values(header)
            .filter((v) => v.data_offsets)
            .map((v) => v.data_offsets[1]),
        );
        assert.equal(8 + headerLength + end, st.length);
        const tensor = (name) => {
          const [from, to] = header[name].data_offsets;
          const raw = st.subarray(8 + headerLength + from, 8 + headerLength + to);
          return [...new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length))];
        };
        assert.deepEqual(tensor('fc1.weight'), weight);
        assert.deepEqual(tensor('fc1.bias'), bias);

        // .pt: a torch zip (starts "PK") holding the pickled state dict.
        const [ptDownload] = await Promise.all([
          page.waitForEvent('download'),
          tutorial.getByRole('button', { name: 'Download .pt tutorial', exact: true }).click(),
        ]);
        assert.equal(ptDownload.suggestedFilename(), 'tutorial.pt');
        const pt = await readFile(await ptDownload.path());
        assert.equal(pt.subarray(0, 2).toString('latin1'), 'PK');
        assert.ok(pt.includes('data.pkl'), 'the zip holds data.pkl');
        assert.equal(await text(page, 'alert'), '');

        // The downloaded .pt is a state dict: uploaded back, it needs (and gets) its architecture,
        // and predicts what the tutorial model does.
        await uploadFile(page, pt, 'from-pytorch.pt');
        await page.locator(byId('import-form')).waitFor();
        assert.equal(await field(page, 'holds').innerText(), 'state dict');
        assert.equal(await page.locator(byId('import-spec')).inputValue(), '');
        await click(page, 'import-use-suggestion');
        assert.equal(await page.locator(byId('import-spec')).inputValue(), 'fc1=Linear(3,5)');
        await click(page, 'import-load');
        await page.locator(byId('import-result')).waitFor();
        const x = [0.5, -1, 2];
        assertClose(await importPredict(page, [x]), expected(weight, bias, x), 1e-5, 'y of the re-imported .pt');
        await waitNames(page, ['from-pytorch', 'tutorial']);
        await shot(page, '14-export');
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

// ---- the demo never loses a model; nothing looks certain that is not; file text stays text -------

/** Waits until the element's text matches `re` (what the page writes once a dialog has closed). */
async function waitText(page, id, re) {
  await page.waitForFunction(
    ([selector, source, flags]) => new RegExp(source, flags).test(document.querySelector(selector)?.innerText ?? ''),
    [byId(id), re.source, re.flags],
    { timeout: 10_000 },
  );
}

/** .mkp bytes of a model built in the page from a SPEC, with a fixed seed. */
async function mkpBytes(page, spec, seed) {
  const bytes = await page.evaluate(
    async ([s, n]) => {
      const mk = await import('/web/src/index.js');
      if (mk.ready) await mk.ready();
      const model = mk.Model.fromSpec(s, { seed: n });
      try {
        return Array.from(model.toBytes());
      } finally {
        model.dispose();
      }
    },
    [spec, seed],
  );
  return Buffer.from(bytes);
}

/** The bytes stored as indexeddb://name (hex), read by the package in the page; null if none. */
function storedHex(page, name) {
  return page.evaluate(async (n) => {
    const mk = await import('/web/src/index.js');
    if (!(await mk.listModels())[`indexeddb://${n}`]) return null;
    const bytes = await mk.loadBytes(`indexeddb://${n}`);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }, name);
}

/** A safetensors file of f32 tensors ({ name: { shape, data } }) and string metadata. */
function safetensors(tensors, metadata = undefined) {
  const header = metadata ? { __metadata__: metadata } : {};
  const parts = [];
  let offset = 0;
  for (const [name, { shape, data }] of Object.entries(tensors)) {
    const raw = Buffer.from(new Float32Array(data).buffer);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + raw.length] };
    parts.push(raw);
    offset += raw.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...parts]);
}

async function uploadAs(page, buffer, name) {
  await page.locator(byId('upload')).setInputFiles({ name, mimeType: 'application/octet-stream', buffer });
}

test(
  'the library never loses a model: same-name uploads and imports, rename and duplicate onto a taken name, delete — each asks, and Cancel changes nothing',
  { skip, timeout: 90_000 },
  () =>
    withProfile(async (dir) => {
      const browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        await page.locator(byId('empty')).waitFor();
        const first = await mkpBytes(page, 'fc1=Linear(3,5)', 1);
        const second = await mkpBytes(page, 'fc1=Linear(2,4),ReLU', 2);
        assert.notDeepEqual(first, second);
        const hex = (b) => b.toString('hex');
        const arch = (name) => card(page, name).locator('[data-field="architecture"]').innerText();

        // Two different files, both "model.mkp": the second asks before it writes over the first.
        await uploadAs(page, first, 'model.mkp');
        await waitNames(page, ['model']);
        await uploadAs(page, second, 'model.mkp');
        await page.locator(`${byId('ask')}[open]`).waitFor();
        await shot(page, '17-ask-replace');
        assert.equal(await page.locator(byId('ask-input')).isVisible(), false, 'no name field when none is asked for');
        const question = await answer(page, 'cancel', { title: /^“model” is taken$/ });
        assert.match(question, /Uploading “model\.mkp” would write over the model stored as “model”/);
        assert.match(question, /Stored now as “model”: fc1=Linear\(3,5\), f32 weights, saved /);
        assert.match(question, /Keep both \(as “model-2”\)/);
        await page.locator(byId('not-stored')).waitFor();
        assert.match(await text(page, 'not-stored'), /You cancelled, so the model stored as “model” is unchanged/);
        assert.equal(await storedHex(page, 'model'), hex(first), 'the first upload is intact');
        assert.deepEqual(await names(page), ['model']);
        assert.equal(await text(page, 'alert'), '');

        // Keep both: the second is stored as model-2, and the page says so.
        await uploadAs(page, second, 'model.mkp');
        await answer(page, 'keep');
        await waitNames(page, ['model', 'model-2']);
        assert.equal(await text(page, 'upload-url'), 'indexeddb://model-2');
        assert.match(await text(page, 'upload-report'), /“model” was already taken: both kept/);
        assert.equal(await storedHex(page, 'model'), hex(first));
        assert.equal(await storedHex(page, 'model-2'), hex(second));

        // Replace: only when chosen.
        await uploadAs(page, second, 'model.mkp');
        await answer(page, 'replace');
        await page.waitForFunction(() =>
          document
            .querySelector('[data-testid="model-row"][data-name="model"] [data-field="architecture"]')
            ?.textContent.includes('ReLU'),
        );
        assert.equal(await storedHex(page, 'model'), hex(second));
        assert.match(await text(page, 'upload-report'), /replaced, as you chose/);

        // A PyTorch import onto a taken name asks too; Cancel keeps the form, to load again.
        await uploadFile(page, 'tutorial_state.pt', 'model.pt');
        await page.locator(byId('import-form')).waitFor();
        await click(page, 'import-use-suggestion');
        await click(page, 'import-load');
        await answer(page, 'cancel', { title: /^“model” is taken$/ });
        await page.locator(byId('not-stored')).waitFor();
        assert.equal(await storedHex(page, 'model'), hex(second), 'Cancel left "model" as it was');
        assert.deepEqual(await names(page), ['model', 'model-2']);
        await click(page, 'import-load');
        assert.match(await answer(page, 'keep'), /Keep both \(as “model-3”\)/);
        await page.locator(byId('import-result')).waitFor();
        assert.equal(await text(page, 'import-url'), 'indexeddb://model-3');
        await waitNames(page, ['model', 'model-2', 'model-3']);
        const imported = await storedHex(page, 'model-3');

        // Rename onto a taken name: asked; Cancel leaves both as they were.
        const rename = (name) => card(page, name).getByRole('button', { name: `Rename ${name}`, exact: true });
        const duplicate = (name) => card(page, name).getByRole('button', { name: `Duplicate ${name}`, exact: true });
        await rename('model-3').click();
        await answer(page, 'go', { title: /^Rename “model-3”$/, input: 'model' });
        assert.match(await answer(page, 'cancel', { title: /^“model” is taken$/ }), /Renaming “model-3” would write/);
        await waitText(page, 'library-note', /Nothing changed: you cancelled/);
        assert.deepEqual(await names(page), ['model', 'model-2', 'model-3']);
        assert.equal(await storedHex(page, 'model'), hex(second));
        assert.equal(await storedHex(page, 'model-3'), imported);
        // Cancel at the first question (the name) changes nothing either.
        await rename('model-3').click();
        await answer(page, 'cancel', { input: 'elsewhere' });
        await waitText(page, 'library-note', /Nothing changed: “model-3” is as it was/);
        assert.deepEqual(await names(page), ['model', 'model-2', 'model-3']);

        // Duplicate onto a taken name: asked; Cancel, then Keep both.
        await duplicate('model-3').click();
        await answer(page, 'go', { input: 'model' });
        assert.match(await answer(page, 'cancel'), /Duplicating “model-3” would write/);
        assert.deepEqual(await names(page), ['model', 'model-2', 'model-3']);
        assert.equal(await storedHex(page, 'model'), hex(second));
        await duplicate('model-3').click();
        await answer(page, 'go', { input: 'model' });
        assert.match(await answer(page, 'keep'), /Keep both \(as “model-4”\)/);
        await waitNames(page, ['model', 'model-2', 'model-3', 'model-4']);
        assert.equal(await storedHex(page, 'model-4'), imported);
        assert.equal(await storedHex(page, 'model'), hex(second));
        assert.match(await text(page, 'library-note'), /Duplicated “model-3” as “model-4” \(“model” was already taken/);

        // Rename with Replace: model-2 now holds model-4's bytes, and model-4 is gone.
        await rename('model-4').click();
        await answer(page, 'go', { input: 'model-2' });
        await answer(page, 'replace');
        await waitNames(page, ['model', 'model-2', 'model-3']);
        assert.equal(await storedHex(page, 'model-2'), imported);
        assert.equal(await arch('model-2'), 'fc1=Linear(3,5)');

        // Delete: Esc and Cancel keep it; only Delete removes it.
        const remove = () => card(page, 'model-2').getByRole('button', { name: 'Delete model-2', exact: true }).click();
        await remove();
        await page.locator(byId('ask')).waitFor();
        await page.keyboard.press('Escape');
        await page.locator(byId('ask')).waitFor({ state: 'hidden' });
        await remove();
        assert.match(await answer(page, 'cancel', { title: /^Delete “model-2”\?$/ }), /this cannot be undone/);
        await page.waitForTimeout(200);
        assert.deepEqual(await names(page), ['model', 'model-2', 'model-3']);
        assert.equal(await storedHex(page, 'model-2'), imported);
        await remove();
        await answer(page, 'delete');
        await waitNames(page, ['model', 'model-3']);

        // The tutorial's Save asks too: Keep both stores tutorial-2, and step 4 loads that one.
        await click(page, 'create');
        await click(page, 'save');
        await waitNames(page, ['model', 'model-3', 'tutorial']);
        const saved = await storedHex(page, 'tutorial');
        await click(page, 'create');
        await click(page, 'save');
        await answer(page, 'cancel');
        await waitText(page, 'saved', /Not saved: you cancelled, so “tutorial” is unchanged/);
        assert.equal(await storedHex(page, 'tutorial'), saved);
        await click(page, 'save');
        await answer(page, 'keep');
        await waitNames(page, ['model', 'model-3', 'tutorial', 'tutorial-2']);
        assert.match(await text(page, 'saved'), /indexeddb:\/\/tutorial-2 as f32/);
        assert.equal(await storedHex(page, 'tutorial'), saved);
        await click(page, 'load');
        await page.locator(`${byId('compare')}[data-ok]`).waitFor();
        assert.match(await text(page, 'loaded'), /indexeddb:\/\/tutorial-2/);
        assert.equal(await page.locator(byId('compare')).getAttribute('data-ok'), 'true');

        // The questions are the page's own: window.confirm/prompt were never used.
        assert.deepEqual(await a11yProblems(page), { skips: [], unnamed: 0, unlabelled: [] });
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

test(
  'a suggested architecture is a guess: not pre-filled, says what it cannot know, and a load with it does not claim to be right',
  { skip, timeout: 60_000 },
  () =>
    withProfile(async (dir) => {
      const browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        await page.locator(byId('empty')).waitFor();
        const st = await torchCase('mlp_safetensors');

        await uploadFile(page, 'mlp.safetensors');
        await page.locator(byId('import-form')).waitFor();
        assert.equal(await page.locator(byId('import-spec')).inputValue(), '');
        const guess = await text(page, 'import-guess');
        assert.match(guess, /A guess from the tensor names and shapes/);
        assert.match(guess, /cannot know[\s\S]*activations \(ReLU, GELU, Tanh, …\)[\s\S]*between the Linear layers/);
        assert.equal(await page.locator(byId('import-load')).innerText(), 'Load with this architecture');
        // Load with the field empty: nothing is taken for granted.
        await click(page, 'import-load');
        await page.locator(`${byId('alert')}:has-text("invalid_argument")`).waitFor();
        assert.match(await text(page, 'import-form-error'), /take the guess above/);
        assert.deepEqual(await names(page), []);

        // The guess, taken as it is: loaded and stored, but not "✓", and the page says why.
        await click(page, 'import-use-suggestion');
        assert.equal(await page.locator(byId('import-spec')).inputValue(), '0=Linear(8,16),2=Linear(16,4)');
        await click(page, 'import-load');
        await page.locator(byId('import-result')).waitFor();
        const summary = page.locator(byId('import-summary'));
        assert.equal(await summary.getAttribute('data-certain'), 'false');
        const said = await summary.innerText();
        assert.doesNotMatch(said, /✓/);
        assert.match(said, /Loaded with the architecture you confirmed, and stored as indexeddb:\/\/mlp\./);
        assert.match(said, /outputs are only right if this matches the network that was trained/);
        assert.match(said, /the suggested architecture, unchanged: it runs no activation between its layers/);
        // ... and rightly so: without the ReLU the outputs are not PyTorch's.
        const wrong = await importPredict(page, rows(st.input));
        assert.ok(
          wrong.some((v, i) => Math.abs(v - st.output.data[i]) > 1e-3),
          'the guess (no ReLU) gives other outputs than the trained network',
        );

        // The SPEC with the ReLU (the user's edit): PyTorch's outputs. Still the user's word, so no "✓".
        await uploadFile(page, 'mlp.safetensors');
        await page.locator(byId('import-spec')).fill(st.spec);
        await click(page, 'import-load');
        await answer(page, 'keep');
        await page.locator(byId('import-result')).waitFor();
        assert.equal(await summary.getAttribute('data-certain'), 'false');
        assert.doesNotMatch(await summary.innerText(), /suggested architecture, unchanged/);
        assertClose(await importPredict(page, rows(st.input)), st.output.data, 1e-5, 'mlp with the ReLU');

        // A file that says what runs (an nn.Sequential) is certain.
        await uploadFile(page, 'mlp_full.pt');
        await page.locator(byId('import-result')).waitFor();
        assert.equal(await summary.getAttribute('data-certain'), 'true');
        assert.match(await summary.innerText(), /^✓ Loaded and stored as indexeddb:\/\/mlp_full\.$/);
        await shot(page, '15-import-guess');
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

/** The rows of the key table: [model key, shape, file key, shape, status]. */
function keyRows(page) {
  return page.$$eval(`${byId('key-table')} tbody tr`, (trs) =>
    trs.map((tr) => [...[...tr.cells].slice(0, 4).map((td) => td.textContent), tr.dataset.status]),
  );
}

test(
  "a strict load that fails shows the architecture's keys beside the file's, and the likely fix",
  { skip, timeout: 60_000 },
  () =>
    withProfile(async (dir) => {
      const browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        await page.locator(byId('empty')).waitFor();
        // A state dict saved from a DataParallel model: every key starts with "module.".
        const weight = Array.from({ length: 15 }, (_, i) => (i - 7) / 10);
        const bias = [0.5, -0.25, 0, 1, -1];
        const file = safetensors({
          'module.fc1.weight': { shape: [5, 3], data: weight },
          'module.fc1.bias': { shape: [5], data: bias },
        });
        await uploadAs(page, file, 'parallel.safetensors');
        await page.locator(byId('import-form')).waitFor();
        await page.locator(byId('import-spec')).fill('fc1=Linear(3,5)');
        await click(page, 'import-load');
        await page.locator(`${byId('alert')}:has-text("missing_key")`).waitFor();
        await page.locator(byId('key-table')).waitFor();
        assert.deepEqual(await keyRows(page), [
          ['fc1.weight', '5×3', 'module.fc1.weight', '5×3', 'prefixed'],
          ['fc1.bias', '5', 'module.fc1.bias', '5', 'prefixed'],
        ]);
        assert.match(await text(page, 'key-fix'), /Likely fix: the file's keys carry the prefix “module\.”/);
        assert.deepEqual(await names(page), []);
        await shot(page, '16-import-keys');
        // The fix, one click: loaded with { prefix: 'module.' }, and it computes W·x + b.
        await click(page, 'key-fix-prefix');
        await page.locator(byId('import-result')).waitFor();
        assert.equal(await page.locator(byId('import-prefix')).count(), 0);
        assert.match(await page.locator(`${byId('import-result')} pre`).innerText(), /prefix: 'module\.'/);
        const x = [1, -2, 0.5];
        assertClose(
          await importPredict(page, [x]),
          linear({ shape: [5, 3], data: weight }, { data: bias }, x),
          1e-6,
          'y',
        );
        await waitNames(page, ['parallel']);

        // Other layer names than the file's: missing and unexpected keys, row by row.
        const state = 'tutorial_state.pt';
        await uploadFile(page, state);
        await page.locator(byId('import-spec')).fill('a=Linear(3,5)');
        await click(page, 'import-load');
        await page.locator(`${byId('alert')}:has-text("missing_key")`).waitFor();
        assert.deepEqual(await keyRows(page), [
          ['a.weight', '5×3', '—', '', 'missing'],
          ['a.bias', '5', '—', '', 'missing'],
          ['—', '', 'fc1.weight', '5×3', 'unexpected'],
          ['—', '', 'fc1.bias', '5', 'unexpected'],
        ]);
        // The core's fix: the same layers under the file's names, a SPEC to paste.
        assert.match(await text(page, 'key-fix'), /Likely fix: .*name the layers as the file does: fc1=Linear\(3,5\)/);
        // A layer too many: its keys are missing from the file.
        await page.locator(byId('import-spec')).fill('fc1=Linear(3,5),ReLU,fc2=Linear(5,2)');
        await click(page, 'import-load');
        await page.locator(`${byId('import-form-error')} ${byId('key-table')}`).waitFor();
        assert.deepEqual(await keyRows(page), [
          ['fc1.weight', '5×3', 'fc1.weight', '5×3', 'match'],
          ['fc1.bias', '5', 'fc1.bias', '5', 'match'],
          ['fc2.weight', '2×5', '—', '', 'missing'],
          ['fc2.bias', '2', '—', '', 'missing'],
        ]);
        // Wrong sizes: shape_mismatch, the two shapes side by side.
        await page.locator(byId('import-spec')).fill('fc1=Linear(3,6)');
        await click(page, 'import-load');
        await page.locator(`${byId('alert')}:has-text("shape_mismatch")`).waitFor();
        assert.deepEqual(await keyRows(page), [
          ['fc1.weight', '6×3', 'fc1.weight', '5×3', 'shape'],
          ['fc1.bias', '6', 'fc1.bias', '5', 'shape'],
        ]);
        assert.match(await text(page, 'key-fix'), /Linear\(in, out\) has a weight of out×in/);
        // A SPEC too big to build just to list its keys: the file's keys alone, and why.
        await page.locator(byId('import-spec')).fill('fc1=Linear(5000,5000)');
        await click(page, 'import-load');
        await page.locator(`${byId('key-compare')}:has-text("25000000 Linear weights")`).waitFor();
        assert.deepEqual(await keyRows(page), [
          ['—', '', 'fc1.weight', '5×3', 'unknown'],
          ['—', '', 'fc1.bias', '5', 'unknown'],
        ]);
        assert.deepEqual(await names(page), ['parallel']);
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

test(
  'names and text from files and stored models are shown as text: no element made, no script run',
  { skip, timeout: 60_000 },
  () =>
    withProfile(async (dir) => {
      const browser = await launch(dir);
      try {
        const { page, errors } = await openDemo(browser.context);
        await page.locator(byId('empty')).waitFor();
        const payload = (n) => `<img src=x onerror="window.__pwned=${n}">`;
        // A stored model whose name holds markup, a control character and a right-to-left override,
        // and whose metadata holds markup.
        const name = `${payload(1)}\u0007bell\u202e`;
        await page.evaluate(
          async ([n, key, value]) => {
            const mk = await import('/web/src/index.js');
            if (mk.ready) await mk.ready();
            const model = mk.Model.fromSpec('fc1=Linear(3,5)', { seed: 3 });
            await mk.save(model, `indexeddb://${n}`, { metadata: { [key]: value } });
            model.dispose();
          },
          [name, '<b>key</b>', `${payload(2)}\t<script>window.__pwned=22</script>`],
        );
        await page.locator('[data-testid="model-row"]').waitFor();
        const row = page.locator('[data-testid="model-row"]');
        assert.equal(await row.getAttribute('data-name'), name);
        assert.equal(await row.locator('h3').textContent(), `${payload(1)}\\u0007bell\\u202e`);
        assert.match(await row.innerText(), /<b>key<\/b>: <img src=x onerror="window\.__pwned=2">/);
        // The dialogs show the name as text too.
        await row.getByRole('button', { name: /^Delete / }).click();
        await page.locator(byId('ask')).waitFor();
        assert.equal(await text(page, 'ask-title'), `Delete “${payload(1)}\\u0007bell\\u202e”?`);
        await answer(page, 'cancel');

        // A file whose name, tensor names and metadata hold markup; the load error quotes them.
        const file = safetensors(
          {
            [`${payload(4)}.weight`]: { shape: [5, 3], data: new Array(15).fill(0.5) },
            [`${payload(4)}.bias`]: { shape: [5], data: new Array(5).fill(0) },
          },
          { '<script>': `${payload(5)}\u0007` },
        );
        await uploadAs(page, file, `${payload(3)}.safetensors`);
        await page.locator(byId('import-form')).waitFor();
        assert.match(
          await page
            .locator(`${byId('import')} h3`)
            .first()
            .textContent(),
          /^What <img src=x onerror=/,
        );
        assert.deepEqual(await page.locator(`${byId('import-tensors')} tbody th`).allTextContents(), [
          `${payload(4)}.weight`,
          `${payload(4)}.bias`,
        ]);
        assert.match(await text(page, 'import-found'), /<script>: <img src=x onerror="window\.__pwned=5">\\u0007/);
        await page.locator(byId('import-spec')).fill('fc1=Linear(3,5)');
        await click(page, 'import-load');
        await page.locator(byId('key-table')).waitFor();
        assert.match(await text(page, 'alert'), /^unexpected_key|^missing_key/);
        assert.match(await text(page, 'alert'), /<img src=x onerror=/);
        assert.ok((await keyRows(page)).some((r) => r[2] === `${payload(4)}.weight`));
        // A file refused outright: its name in the refusal is text as well.
        await uploadAs(page, Buffer.from('not a model'), `${payload(6)}.pt`);
        await page.locator(byId('upload-error')).waitFor();
        assert.match(await text(page, 'upload-error'), /Not stored: “<img src=x onerror="window\.__pwned=6">\.pt”/);

        await page.waitForTimeout(300); // an onerror would have fired by now
        const made = await page.evaluate(() => ({
          pwned: window.__pwned ?? null,
          images: document.querySelectorAll('img').length,
          scripts: [...document.querySelectorAll('script')].filter((s) => s.textContent.includes('pwned')).length,
          bold: document.querySelectorAll('main b').length,
        }));
        assert.deepEqual(made, { pwned: null, images: 0, scripts: 0, bold: 0 });
        assertNoErrors(errors);
      } finally {
        await browser.close();
      }
    }),
);

test('demo.js never writes markup from strings', async () => {
  const source = await readFile(new URL('../../web/demo/demo.js', import.meta.url), 'utf8');
  assert.doesNotMatch(source, /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|createContextualFragment/);
});
