// harness.mjs — shared helpers for the real-browser tests: the static server, headless Debian
// Chromium launched through playwright-core with a per-scenario profile, pages that import the
// package (window.mk), and collection of uncaught errors and console errors.
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export { startServer } from '../../scripts/serve.mjs';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why the browser tests cannot run here, or null when they can. */
export function browserMissing() {
  return existsSync(chromiumPath) ? null : `no Chromium at ${chromiumPath} (apt-get install -y chromium)`;
}

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Builds web/dist-reader, web/dist and web/dist-importer (scripts/build-wasm.sh, progress on stderr) when a .wasm or its loader is
 * missing — for benchmarks and tests run on their own, outside npm run bench / npm test; with
 * threads, web/dist-threads (scripts/build-wasm.sh --threads). False if the build failed.
 */
export function ensureWasmBuilt(log = (line) => process.stderr.write(`${line}\n`), { threads = false } = {}) {
  const dirs = threads ? ['web/dist-threads'] : ['web/dist-reader', 'web/dist', 'web/dist-importer'];
  const files = ['modelkeep_wasm.wasm', 'modelkeep_wasm.mjs', ...(threads ? ['modelkeep_wasm.worker.js'] : [])];
  if (dirs.every((dir) => files.every((f) => existsSync(join(root, dir, f))))) return true;
  log(`${dirs.join(' or ')} is missing: building with scripts/build-wasm.sh${threads ? ' --threads' : ''}`);
  const args = ['scripts/build-wasm.sh', ...(threads ? ['--threads'] : [])];
  return spawnSync('bash', args, { cwd: root, stdio: ['ignore', 2, 2] }).status === 0;
}

/** Each file (a path from the repository root): { path, bytes, gzip (level 9) }, or { path, missing }. */
export function fileSizes(paths) {
  return paths.map((path) => {
    const full = join(root, path);
    if (!existsSync(full)) return { path, missing: true };
    const data = readFileSync(full);
    return { path, bytes: data.length, gzip: gzipSync(data, { level: 9 }).length };
  });
}

/** A fresh, empty directory for a browser profile. */
export function tempDir(prefix = 'modelkeep-browser-') {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir) {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Launches headless Chromium on `userDataDir` (pass the same dir again to relaunch on the same
 * profile, i.e. a browser restart). Without one, a fresh temp profile is made, and removed by close().
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, userDataDir: string,
 *   close: () => Promise<void> }>}
 */
export async function launch(userDataDir) {
  const dir = userDataDir ?? (await tempDir());
  let context;
  try {
    context = await chromium.launchPersistentContext(dir, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      acceptDownloads: true,
    });
  } catch (err) {
    if (!userDataDir) await removeDir(dir);
    throw err;
  }
  return {
    context,
    userDataDir: dir,
    async close() {
      try {
        await context.close();
      } finally {
        if (!userDataDir) await removeDir(dir);
      }
    },
  };
}

/**
 * Collects what went wrong in a page (and its workers): uncaught exceptions, console errors,
 * crashes. `expected` patterns mark errors a test provokes on purpose.
 */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console.error: ${msg.text()}`);
  });
  page.on('crash', () => errors.push('page crashed'));
  page.on('worker', (worker) => {
    worker.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`worker console.error: ${msg.text()}`);
    });
  });
  return errors;
}

/** Opens the test page (tests/browser/page.html) and waits until window.mk is ready. */
export async function openPage(context, baseUrl, { page } = {}) {
  const p = page ?? (await context.newPage());
  const errors = watchErrors(p);
  await p.goto(`${baseUrl}/tests/browser/page.html`);
  await waitReady(p);
  return { page: p, errors };
}

/** Waits for the package to be imported after a goto/reload. */
export async function waitReady(page) {
  await page.waitForFunction(() => window.mkReady === true, null, { timeout: 30_000 });
}

/** Asserts that no error was collected other than those matching `allowed` (RegExps). */
export function assertNoErrors(errors, allowed = []) {
  const unexpected = errors.filter((e) => !allowed.some((re) => re.test(e)));
  assert.deepEqual(unexpected, [], `unexpected errors in the page:\n${unexpected.join('\n')}`);
}
