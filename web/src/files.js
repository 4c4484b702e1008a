// files.js — Node only: model files by path or file:// URL. Imported by node.js (the Node entry)
// alone, so that no node: module ever reaches a browser bundle.
import { readFile as read, rename, rm, writeFile as write } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ModelError } from './errors.js';

/** The file system calls writeFile makes, as an object so that a test can make one fail. */
export const fs = { read, write, rename, rm };

function pathOf(url) {
  return String(url).startsWith('file:') ? fileURLToPath(url) : String(url);
}

/** The bytes of a file; not_found when there is none, io_error otherwise, naming the path. */
export async function readFile(url) {
  const path = pathOf(url);
  try {
    return new Uint8Array(await fs.read(path));
  } catch (e) {
    throw new ModelError(e.code === 'ENOENT' ? 'not_found' : 'io_error', `cannot read '${path}': ${e.message}`);
  }
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Must replace the file whole or not at all, and only with bytes known good: written to a
 * temporary name beside it (flushed), read back and compared with `bytes`, given to `check` (which
 * throws when the bytes do not parse), and only then renamed over it. On any failure the temporary
 * file is removed and an existing file is left as it was.
 */
export async function writeFile(url, bytes, check = () => {}) {
  const path = pathOf(url);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const notWritten = `'${path}' was not written (an existing file is left as it was)`;
  try {
    await fs.write(tmp, bytes, { flush: true });
    const back = new Uint8Array(await fs.read(tmp));
    if (!sameBytes(back, bytes)) {
      throw new ModelError('io_error', `the file does not read back as written: ${notWritten}`);
    }
    check(back);
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    if (e instanceof ModelError) {
      if (!e.message.includes(notWritten)) e.message += `; ${notWritten}`;
      throw e;
    }
    throw new ModelError('io_error', `cannot write '${path}': ${e.message}; ${notWritten}`);
  }
}
