// The package as a user gets it: `npm pack`, installed from the tarball into a scratch app, then
// used from Node and, in headless Chromium (one browser for every app), from each way a page gets
// it: a plain <script type="module"> page with an import map; the dev server and the production
// build of Vite 5, 6, 7 and 8 with their default configs; webpack 5; Rollup with
// @rollup/plugin-node-resolve; esbuild. Every app runs the same program (build a model, save it to
// indexeddb://, load it, predict, list) and must give the values Node computes, with no console
// error in the page and, for builds, no node: import in the output nor a warning naming node:.
// The bundlers are the repository's devDependencies (npm aliases where versions collide), run by
// their paths under node_modules: no network at test time. Run: node --test tests/package/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { browserMissing, launch, startServer, watchErrors } from '../browser/harness.mjs';
import { nn, ready } from '../../web/src/node.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const modules = join(repo, 'node_modules');
const skipBrowser = browserMissing() ?? false;
let dir;
let app; // the scratch app: package.json, node_modules/modelkeep from the tarball, one folder per bundler
let rootApp; // another, whose own root holds the page (Vite serves node_modules/ at /node_modules/, not /@fs/)
let browser;

/**
 * What every app runs, without top-level await (Vite 5 and 6 builds refuse it by default). `wasm`:
 * the ready() options for bundlers that do not copy the .wasm (the app copies modelkeep.wasm and
 * importer.wasm). Without them, it first loads the model from .mkp bytes before anything else:
 * the reader module alone (its .wasm, which the bundler must have emitted). Last, it loads the
 * same model from .pt bytes: the importer module, fetched then (its chunk and its .wasm, which
 * the bundler must have emitted too).
 */
const appCode = (readyOptions = '') => `import { ready, nn, save, load, listModels } from 'modelkeep';

const pt = new Uint8Array([${ptBytes().join(',')}]);
const mkp = new Uint8Array([${mkpBytes().join(',')}]);

async function main() {
  const lean = ${readyOptions ? 'null' : 'Array.from((await load(mkp)).forward([[1, 2, 3]]).data)'};
  await ready(${readyOptions});
  const model = nn.sequential(nn.linear(3, 5), { seed: 42 });
  await save(model, 'indexeddb://scratch', { dtype: 'f32' });
  const again = await load('indexeddb://scratch');
  const y = again.forward([[1, 2, 3]]);
  const list = await listModels();
  const fromPt = (await load(pt, { architecture: '0=Linear(3,5)' })).forward([[1, 2, 3]]);
  document.body.dataset.result = JSON.stringify({
    lean,
    data: Array.from(y.data),
    listed: Object.keys(list),
    fromPt: Array.from(fromPt.data),
  });
}
main().catch((e) => {
  document.body.dataset.result = JSON.stringify({ error: String(e) });
  throw e;
});
`;
const copiedWasm =
  "{ wasm: new URL('./modelkeep.wasm', import.meta.url), importerWasm: new URL('./importer.wasm', import.meta.url) }";

const html = (script) =>
  `<!doctype html><meta charset="utf-8"><title>app</title><link rel="icon" href="data:,">\n${script}\n`;

/** The app's model (seed 42) as a PyTorch file, written in Node. */
let ptData;
function ptBytes() {
  if (!ptData) {
    const m = nn.sequential(nn.linear(3, 5), { seed: 42 });
    ptData = Array.from(m.toBytes({ format: 'pt' }));
    m.dispose();
  }
  return ptData;
}

/** The same model as a .mkp file. */
let mkpData;
function mkpBytes() {
  if (!mkpData) {
    const m = nn.sequential(nn.linear(3, 5), { seed: 42 });
    mkpData = Array.from(m.toBytes());
    m.dispose();
  }
  return mkpData;
}

let expectedData;
function expected() {
  if (!expectedData) {
    const m = nn.sequential(nn.linear(3, 5), { seed: 42 });
    expectedData = Array.from(m.forward([[1, 2, 3]]).data);
    m.dispose();
  }
  return expectedData;
}

/** A bundler's version, from its package.json under the repository's node_modules. */
const versionOf = (name) => JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8')).version;

before(async () => {
  await ready({ importer: true });
  dir = mkdtempSync(join(tmpdir(), 'modelkeep-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repo }).toString();
  const tarball = join(dir, JSON.parse(out)[0].filename);
  app = join(dir, 'app');
  rootApp = join(dir, 'root-app');
  for (const folder of [app, rootApp]) {
    mkdirSync(folder);
    writeFileSync(join(folder, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    execFileSync('npm', ['install', tarball, '--no-audit', '--no-fund', '--offline'], { cwd: folder, stdio: 'ignore' });
  }
  writeFileSync(join(rootApp, 'index.html'), html('<script type="module" src="./main.js"></script>'));
  writeFileSync(join(rootApp, 'main.js'), appCode());
  if (!skipBrowser) browser = await launch();
});

after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the tarball holds the sources, the wasm build and the types, and nothing else', () => {
  const files = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: repo }).toString())[0].files.map(
    (f) => f.path,
  );
  for (const f of [
    'package.json',
    'web/src/index.js',
    'web/src/node.js',
    'web/src/api.js',
    'web/src/store.js',
    'web/dist-reader/modelkeep_wasm.wasm',
    'web/dist-reader/modelkeep_wasm.mjs',
    'web/dist/modelkeep_wasm.wasm',
    'web/dist/modelkeep_wasm.mjs',
    'web/src/core.js',
    'web/dist-importer/modelkeep_wasm.wasm',
    'web/dist-importer/modelkeep_wasm.mjs',
    'web/src/importer.js',
    'web/index.d.ts',
    'README.md',
  ])
    assert.ok(files.includes(f), f);
  assert.ok(
    !files.some((f) => f.startsWith('core/') || f.startsWith('tests/') || f.startsWith('build/')),
    files.join(),
  );
});

test('Node imports the installed package by name (the "node" entry)', () => {
  writeFileSync(
    join(app, 'node.mjs'),
    `
    import { ready, nn } from 'modelkeep';
    await ready();
    const m = nn.sequential(nn.linear(3, 5), { seed: 42 });
    console.log(JSON.stringify(Array.from(m.forward([[1, 2, 3]]).data)));
  `,
  );
  const out = JSON.parse(execFileSync(process.execPath, ['node.mjs'], { cwd: app }).toString());
  assert.deepEqual(out, expected());
});

/** Opens `url` in the shared browser, waits for the app's result; asserts no error in the page. */
async function runPage(url) {
  const page = await browser.context.newPage();
  try {
    const errors = watchErrors(page);
    await page.goto(url);
    await page.waitForFunction(() => document.body?.dataset.result, null, { timeout: 30_000 });
    const result = JSON.parse(await page.evaluate(() => document.body.dataset.result));
    assert.equal(result.error, undefined, result.error);
    assert.deepEqual(errors, []);
    return result;
  } finally {
    await page.close();
  }
}

/** Serves `root` (a build's output) and runs the app there. */
async function runBuilt(root, path = '/index.html') {
  const server = await startServer({ root });
  try {
    return await runPage(`${server.url}${path}`);
  } finally {
    await server.close();
  }
}

function checkResult(result, { lean = true } = {}) {
  if (lean) assert.deepEqual(result.lean, expected(), 'the .mkp through the reader module');
  assert.deepEqual(result.data, expected());
  assert.deepEqual(result.fromPt, expected(), 'the .pt through the importer module');
  assert.deepEqual(result.listed, ['indexeddb://scratch']);
}

/** A build's output: no node: import in any emitted .js, and the bundler said nothing about node:. */
function checkBuild(outDir, log) {
  assert.doesNotMatch(log, /node:/, `the build's output mentions node:\n${log}`);
  const js = readdirSync(outDir, { recursive: true }).filter((f) => String(f).endsWith('.js'));
  assert.ok(js.length > 0, `no .js in ${outDir}`);
  for (const f of js) {
    const code = readFileSync(join(outDir, f), 'utf8');
    assert.doesNotMatch(code, /(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']node:/, `${f} imports a node: module`);
  }
}

/** Runs a bundler (a script under node_modules; esbuild's is an executable) in `cwd`; stdout + stderr. */
function runTool(script, args, cwd) {
  const path = isAbsolute(script) ? script : join(modules, script);
  const [file, first] = script.startsWith('esbuild/') ? [path, []] : [process.execPath, [path]];
  const r = spawnSync(file, [...first, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  const log = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `${script} ${args.join(' ')} failed:\n${log}`);
  return log;
}

/** A folder of the app holding index.html and main.js (the app's program). */
function appFolder(name, { readyOptions = '', entry = 'main.js', page = true } = {}) {
  const folder = join(app, name);
  mkdirSync(join(folder, entry, '..'), { recursive: true });
  if (page) writeFileSync(join(folder, 'index.html'), html('<script type="module" src="./main.js"></script>'));
  writeFileSync(join(folder, entry), appCode(readyOptions));
  return folder;
}

const vites = [
  ['Vite 5', 'vite5'],
  ['Vite 6', 'vite6'],
  ['Vite 7', 'vite7'],
  ['Vite 8', 'vite'],
];

for (const [label, pkg] of vites) {
  test(`${label} (${versionOf(pkg)}): a production build with the default config`, { skip: skipBrowser }, async () => {
    const folder = appFolder(`build-${pkg}`);
    const log = runTool(`${pkg}/bin/vite.js`, ['build'], folder);
    const outDir = join(folder, 'dist');
    assert.ok(existsSync(join(outDir, 'index.html')), log);
    checkBuild(outDir, log);
    assert.equal(
      readdirSync(join(outDir, 'assets')).filter((f) => f.endsWith('.wasm')).length,
      3,
      "Vite copied the three .wasm (the reader's, the core's and the importer's: new URL(..., import.meta.url))",
    );
    checkResult(await runBuilt(outDir));
  });

  test(`${label} (${versionOf(pkg)}): the dev server with the default config`, { skip: skipBrowser }, async () => {
    // The page in a folder of the app (the package served from /@fs/…), and at an app's root.
    for (const [folder, project] of [
      [appFolder(`dev-${pkg}`), app],
      [rootApp, rootApp],
    ]) {
      // One Vite's pre-bundled dependencies must not serve another's run.
      rmSync(join(project, 'node_modules', '.vite'), { recursive: true, force: true });
      const { url, output, stop } = await startVite(pkg, folder);
      try {
        checkResult(await runPage(url));
        assert.doesNotMatch(output(), /node:|error/i, output());
      } finally {
        await stop();
      }
    }
  });
}

/** Starts `vite` (the package `pkg` of node_modules) in `folder` on a free port: { url, output, stop }. */
async function startVite(pkg, folder) {
  const server = spawn(process.execPath, [join(modules, pkg, 'bin/vite.js'), '--host', '127.0.0.1', '--port', '0'], {
    cwd: folder,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  const exited = new Promise((resolve) => server.on('exit', resolve));
  let output = '';
  try {
    const url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL from ${pkg}:\n${output}`)), 30_000);
      const seen = (chunk) => {
        output += chunk;
        const m = output.match(/Local:\s+(http:\/\/127\.0\.0\.1:\d+\/)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      server.stdout.on('data', seen);
      server.stderr.on('data', seen);
      exited.then((code) => reject(new Error(`${pkg} exited (${code}):\n${output}`)));
    });
    return {
      url,
      output: () => output,
      stop: async () => {
        server.kill();
        await exited;
      },
    };
  } catch (e) {
    server.kill();
    throw e;
  }
}

test(`webpack ${versionOf('webpack')}: a production build with the default config`, { skip: skipBrowser }, async () => {
  const folder = appFolder('webpack', { entry: 'src/index.js', page: false });
  // webpack's defaults (./src/index.js → ./dist/main.js) through its Node API: webpack-cli is not needed.
  writeFileSync(
    join(folder, 'build.mjs'),
    `import webpack from ${JSON.stringify(join(modules, 'webpack/lib/index.js'))};
webpack({ mode: 'production' }, (err, stats) => {
  if (err) throw err;
  console.log(stats.toString({ colors: false }));
  if (stats.hasErrors()) process.exit(1);
});
`,
  );
  const log = runTool(join(folder, 'build.mjs'), [], folder);
  const outDir = join(folder, 'dist');
  writeFileSync(join(outDir, 'index.html'), html('<script src="./main.js"></script>'));
  checkBuild(outDir, log);
  assert.ok(
    readdirSync(outDir).filter((f) => f.endsWith('.wasm')).length === 3,
    "webpack emitted the three .wasm (the reader's, the core's and the importer's)",
  );
  checkResult(await runBuilt(outDir));
});

/**
 * Copies the package's two .wasm (the modelkeep/modelkeep.wasm and modelkeep/importer.wasm
 * exports) next to a bundle, as README says.
 */
function copyWasm(outDir) {
  const installed = join(app, 'node_modules', 'modelkeep');
  const exported = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).exports;
  assert.equal(exported['./modelkeep.wasm'], './web/dist/modelkeep_wasm.wasm');
  assert.equal(exported['./importer.wasm'], './web/dist-importer/modelkeep_wasm.wasm');
  copyFileSync(join(installed, exported['./modelkeep.wasm']), join(outDir, 'modelkeep.wasm'));
  copyFileSync(join(installed, exported['./importer.wasm']), join(outDir, 'importer.wasm'));
}

test(
  `Rollup ${versionOf('rollup')} with @rollup/plugin-node-resolve ${versionOf('@rollup/plugin-node-resolve')}: ready({ wasm }) and the copied .wasm`,
  { skip: skipBrowser },
  async () => {
    const folder = appFolder('rollup', { readyOptions: copiedWasm });
    writeFileSync(
      join(folder, 'rollup.config.mjs'),
      `import { nodeResolve } from ${JSON.stringify(join(modules, '@rollup/plugin-node-resolve/dist/es/index.js'))};
export default { input: 'main.js', output: { dir: 'dist', format: 'es' }, plugins: [nodeResolve()] };
`,
    );
    const log = runTool('rollup/dist/bin/rollup', ['-c'], folder);
    const outDir = join(folder, 'dist');
    copyFileSync(join(folder, 'index.html'), join(outDir, 'index.html'));
    copyWasm(outDir);
    checkBuild(outDir, log);
    assert.doesNotMatch(log, /\(!\)/, `Rollup warned:\n${log}`);
    checkResult(await runBuilt(outDir), { lean: false });
  },
);

test(`esbuild ${versionOf('esbuild')}: ready({ wasm }) and the copied .wasm`, { skip: skipBrowser }, async () => {
  const folder = appFolder('esbuild', { readyOptions: copiedWasm });
  const log = runTool('esbuild/bin/esbuild', ['main.js', '--bundle', '--format=esm', '--outdir=dist'], folder);
  const outDir = join(folder, 'dist');
  copyFileSync(join(folder, 'index.html'), join(outDir, 'index.html'));
  copyWasm(outDir);
  checkBuild(outDir, log.replace(/dist\/main\.js\s+[\d.]+kb/, ''));
  assert.doesNotMatch(log, /warning/i, log);
  checkResult(await runBuilt(outDir), { lean: false });
});

test('a plain <script type="module"> page with an import map', { skip: skipBrowser }, async () => {
  writeFileSync(
    join(app, 'plain.html'),
    html(
      `<script type="importmap">{ "imports": { "modelkeep": "./node_modules/modelkeep/web/src/index.js" } }</script>
<script type="module">${appCode()}</script>`,
    ),
  );
  checkResult(await runBuilt(app, '/plain.html'));
});

test('every bundler the tests use is a devDependency, run from node_modules (no download at test time)', () => {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  const dev = pkg.devDependencies;
  for (const [name, range] of [
    ['vite5', /^npm:vite@\^5\./],
    ['vite6', /^npm:vite@\^6\./],
    ['vite7', /^npm:vite@\^7\./],
    ['vite', /^\^8\./],
    ['webpack', /^\^5\./],
    ['rollup', /^\^4\./],
    ['@rollup/plugin-node-resolve', /./],
    ['esbuild', /./],
  ]) {
    assert.match(dev[name] ?? '', range, name);
    assert.ok(existsSync(join(modules, name, 'package.json')), `${name} is not installed: npm install`);
  }
  for (const [pkgName, major] of [
    ['vite5', 5],
    ['vite6', 6],
    ['vite7', 7],
    ['vite', 8],
  ])
    assert.equal(Number(versionOf(pkgName).split('.')[0]), major, pkgName);
});

// ---- the README's quick starts, as pasted --------------------------------------------------

/** The first ```js block after a README heading. */
function readmeBlock(heading) {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README.md has no "${heading}"`);
  const code = readme.slice(at).match(/```js\n([\s\S]*?)```/);
  assert.ok(code, `a \`\`\`js block under "${heading}"`);
  assert.match(code[1], /from 'modelkeep'/);
  return code[1];
}

test("the README's Node quick start, run twice: the second run loads what the first saved", () => {
  const folder = join(app, 'quickstart-node');
  mkdirSync(folder);
  writeFileSync(join(folder, 'quickstart.mjs'), readmeBlock('## Quick start (Node)'));
  const run = () => execFileSync(process.execPath, ['quickstart.mjs'], { cwd: folder, encoding: 'utf8' }).split('\n');
  const first = run();
  assert.equal(first[0], 'created ./quickstart.mkp');
  assert.ok(existsSync(join(folder, 'quickstart.mkp')));
  const second = run();
  assert.equal(second[0], 'loaded ./quickstart.mkp');
  assert.match(first.slice(1).join('\n'), /^Float32Array\(2\) \[/);
  assert.equal(second.slice(1).join('\n'), first.slice(1).join('\n'), 'the same output');
  assert.deepEqual(readdirSync(folder).sort(), ['quickstart.mjs', 'quickstart.mkp']);
});

/** The first ```js block of docs/TRAINING.md (its quick start). */
function trainingBlock() {
  const code = readFileSync(join(repo, 'docs', 'TRAINING.md'), 'utf8').match(/```js\n([\s\S]*?)```/);
  assert.ok(code, 'a ```js block in docs/TRAINING.md');
  assert.match(code[1], /from 'modelkeep'/);
  return code[1];
}

test(
  "docs/TRAINING.md's quick start across a reload continues exactly as one run would",
  { skip: skipBrowser },
  async () => {
    // As pasted, but the loss printed in full (to compare runs, not 4 decimals).
    const block = trainingBlock().replace('toFixed(4)', 'toPrecision(17)');
    assert.notEqual(block, trainingBlock(), 'the block prints the loss with toFixed(4)');
    const page = (name, code) =>
      writeFileSync(
        join(app, name),
        html(
          `<script type="importmap">{ "imports": { "modelkeep": "/node_modules/modelkeep/web/src/index.js" } }</script>
<script type="module">
${code}</script>`,
        ),
      );
    page('training.html', block);
    // The same run in one go: 20 epochs, stored elsewhere.
    const whole = block.replace('epochs: 10', 'epochs: 20').replaceAll('indexeddb://xor', 'indexeddb://xor-whole');
    assert.notEqual(whole, block);
    page('training-whole.html', whole);
    const server = await startServer({ root: app });
    const tab = await browser.context.newPage();
    try {
      const errors = watchErrors(tab);
      const logs = [];
      tab.on('console', (msg) => msg.type() === 'log' && logs.push(msg.text()));
      const visit = async (open) => {
        logs.length = 0;
        await open();
        const deadline = Date.now() + 60_000;
        while (logs.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        return logs[0];
      };
      const first = await visit(() => tab.goto(`${server.url}/training.html`));
      assert.match(first, /^epoch 10: loss [\d.e-]+, accuracy [\d.]+$/);
      const second = await visit(() => tab.reload());
      assert.match(second, /^epoch 20: loss /);
      const whole20 = await visit(() => tab.goto(`${server.url}/training-whole.html`));
      assert.equal(second, whole20, 'ten epochs, a reload, ten more = twenty in one run');
      const loss = (line) => Number(line.match(/loss ([^,]+)/)[1]);
      assert.ok(loss(second) < loss(first), `the loss falls: ${first} → ${second}`);
      assert.deepEqual(errors, []);
    } finally {
      await tab.close();
      await server.close();
    }
  },
);

test(
  "the README's web page quick start, reloaded once: created, then loaded from IndexedDB",
  { skip: skipBrowser },
  async () => {
    writeFileSync(
      join(app, 'quickstart.html'),
      html(
        `<script type="importmap">{ "imports": { "modelkeep": "/node_modules/modelkeep/web/src/index.js" } }</script>
<script type="module">
${readmeBlock('## Quick start (web page)')}</script>`,
      ),
    );
    const server = await startServer({ root: app });
    const page = await browser.context.newPage();
    try {
      const errors = watchErrors(page);
      const logs = [];
      page.on('console', (msg) => {
        if (msg.type() !== 'log') return;
        const [first] = msg.args();
        logs.push(
          first.evaluate((v) => (v instanceof Float32Array ? Array.from(v) : String(v))).catch(() => msg.text()),
        );
      });
      // A visit's two logs: what happened, then the output (as an array).
      const visit = async (open) => {
        logs.length = 0;
        await open();
        const deadline = Date.now() + 30_000;
        while (logs.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        return Promise.all(logs);
      };
      const first = await visit(() => page.goto(`${server.url}/quickstart.html`));
      assert.equal(first[0], 'created and saved: reload the page');
      assert.equal(first[1].length, 2);
      const second = await visit(() => page.reload());
      assert.equal(second[0], 'loaded from IndexedDB');
      assert.deepEqual(second[1], first[1], 'the same output after the reload');
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
      await server.close();
    }
  },
);
