// files.js — Node only: model files by path or file:// URL. The node: modules are imported when a
// function runs, and io.js runs these only in Node: a browser never loads them.
import { ModelError } from './errors.js';

async function pathOf(url) {
  const { fileURLToPath } = await import('node:url');
  return String(url).startsWith('file:') ? fileURLToPath(url) : String(url);
}

/** The bytes of a file; not_found when there is none, io_error otherwise, naming the path. */
export async function readFile(url) {
  const { readFile: read } = await import('node:fs/promises');
  const path = await pathOf(url);
  try {
    return new Uint8Array(await read(path));
  } catch (e) {
    throw new ModelError(e.code === 'ENOENT' ? 'not_found' : 'io_error', `cannot read '${path}': ${e.message}`);
  }
}

/** Must replace the file whole or not at all: written to a temporary name, flushed, then renamed. */
export async function writeFile(url, bytes) {
  const { writeFile: write, rename, rm } = await import('node:fs/promises');
  const path = await pathOf(url);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await write(tmp, bytes, { flush: true });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new ModelError('io_error', `cannot write '${path}': ${e.message}`);
  }
}
