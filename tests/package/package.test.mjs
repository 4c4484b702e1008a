// The package as a user gets it: `npm pack`, installed from the tarball into a
// scratch app, then used from Node, from a plain <script type="module"> page
// (with an import map), and from a Vite build — the last two in headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { browserMissing, launch, startServer, watchErrors } from '../browser/harness.mjs';
import { nn } from '../../web/src/index.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
let dir;
let tarball;

// What the scratch apps compute; the test computes the same in Node to compare.
const appCode = `
import { nn, save, load, listModels } from 'modelkeep';
const model = nn.sequential(nn.linear(3, 5), { seed: 42 });
await save(model, 'indexeddb://scratch', { dtype: 'f32' });
const again = await load('indexeddb://scratch');
const y = again.forward([[1, 2, 3]]);
const list = await listModels();
document.body.dataset.result = JSON.stringify({ data: Array.from(y.data), listed: Object.keys(list) });
`;

function expected() {
  const m = nn.sequential(nn.linear(3, 5), { seed: 42 });
  const data = Array.from(m.forward([[1, 2, 3]]).data);
  m.dispose();
  return data;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'modelkeep-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repo }).toString();
  tarball = join(dir, JSON.parse(out)[0].filename);
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund', '--offline'], { cwd: app, stdio: 'ignore' });
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the tarball holds the sources, the wasm build and the types, and nothing else', () => {
  const files = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: repo }).toString())[0].files.map(
    (f) => f.path,
  );
  for (const f of [
    'package.json',
    'web/src/index.js',
    'web/src/store.js',
    'web/dist/modelkeep_wasm.wasm',
    'web/dist/modelkeep_wasm.mjs',
    'web/index.d.ts',
    'README.md',
  ])
    assert.ok(files.includes(f), f);
  assert.ok(
    !files.some((f) => f.startsWith('core/') || f.startsWith('tests/') || f.startsWith('build/')),
    files.join(),
  );
});

test('Node imports the installed package by name', () => {
  const app = join(dir, 'app');
  writeFileSync(
    join(app, 'node.mjs'),
    `
    import { nn } from 'modelkeep';
    const m = nn.sequential(nn.linear(3, 5), { seed: 42 });
    console.log(JSON.stringify(Array.from(m.forward([[1, 2, 3]]).data)));
  `,
  );
  const out = JSON.parse(execFileSync(process.execPath, ['node.mjs'], { cwd: app }).toString());
  assert.deepEqual(out, expected());
});

async function runPage(root, path) {
  const server = await startServer({ root });
  const browser = await launch();
  try {
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.url}${path}`);
    await page.waitForFunction(() => document.body?.dataset.result, null, { timeout: 30_000 });
    const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
    assert.deepEqual(errors, []);
    return result;
  } finally {
    await browser.close();
    await server.close();
  }
}

test('a plain <script type="module"> page with an import map', { skip: browserMissing() ?? false }, async () => {
  const app = join(dir, 'app');
  writeFileSync(
    join(app, 'plain.html'),
    `<!doctype html><meta charset="utf-8"><title>plain</title><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "modelkeep": "./node_modules/modelkeep/web/src/index.js" } }</script>
<script type="module">${appCode}</script>`,
  );
  const result = await runPage(app, '/plain.html');
  assert.deepEqual(result.data, expected());
  assert.deepEqual(result.listed, ['indexeddb://scratch']);
});

test('a Vite production build', { skip: browserMissing() ?? false, timeout: 120_000 }, async () => {
  const app = join(dir, 'app');
  const src = join(app, 'vite');
  mkdirSync(src, { recursive: true });
  writeFileSync(
    join(src, 'index.html'),
    `<!doctype html><meta charset="utf-8"><title>vite</title><link rel="icon" href="data:,">
<script type="module" src="./main.js"></script>`,
  );
  writeFileSync(join(src, 'main.js'), appCode);
  const vite = join(repo, 'node_modules', '.bin', 'vite');
  execFileSync(vite, ['build', src, '--outDir', join(src, 'dist'), '--logLevel', 'error'], { cwd: app });
  assert.ok(existsSync(join(src, 'dist', 'index.html')));
  const result = await runPage(join(src, 'dist'), '/index.html');
  assert.deepEqual(result.data, expected());
});
