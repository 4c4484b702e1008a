// serve.mjs — a tiny static HTTP server for `npm start` (the demo) and the browser tests:
// serves the repository root on 127.0.0.1 with correct MIME types, refuses paths outside the
// root, and lets tests add routes that serve arbitrary bytes.
//   node scripts/serve.mjs [--port N] [--threads]   prints the demo's URL (default port 8080, or a
//   free one); --threads serves the pthreads build (web/dist-threads/, `npm run build:threads`)
//   in place of web/dist/ and web/dist-reader/, cross-origin isolated (the headers SharedArrayBuffer needs)
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const defaultRoot = fileURLToPath(new URL('../', import.meta.url));

const mimeTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.mkp': 'application/octet-stream',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  // Markdown as text, so that a link to docs/API.md shows the file instead of downloading it.
  '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** Text for HTML: the five characters that could open markup, as entities. */
const escapeHtml = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** The page of a 404: what was asked for (escaped), and where the demo is. */
function notFoundPage(pathname) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1>Not found</h1>
<p>Nothing is served at <code>${escapeHtml(pathname)}</code>.</p>
<p>The modelkeep demo is at <a href="/web/demo/">/web/demo/</a>; the API reference at
<a href="/docs/API.md">/docs/API.md</a>.</p></body></html>
`;
}

/** The MIME type served for a file name. */
export function mimeType(path) {
  return mimeTypes[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Starts the server.
 * @param {{ root?: string, host?: string, port?: number, cacheControl?: string, threads?: boolean }} [options]
 *   port 0 = any free port; cacheControl: the Cache-Control header of every response
 *   (default no-store; the startup benchmark lets the browser cache the files); threads: serve
 *   web/dist-threads/ as web/dist/ and web/dist-reader/ with Cross-Origin-Opener-Policy and -Embedder-Policy set, so
 *   that pages are cross-origin isolated and load the pthreads build
 * @returns {Promise<{ url: string, port: number, route: (path: string, body: Uint8Array|string,
 *   type?: string) => void, unroute: (path: string) => void, close: () => Promise<void> }>}
 */
export async function startServer({
  root = defaultRoot,
  host = '127.0.0.1',
  port = 0,
  cacheControl = 'no-store',
  threads = false,
} = {}) {
  const rootDir = resolve(root);
  const routes = new Map();
  const isolation = threads
    ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' }
    : {};

  const server = createServer(async (req, res) => {
    const send = (status, body, headers = {}) => {
      res.writeHead(status, { 'cache-control': cacheControl, ...isolation, ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const text = { 'content-type': 'text/plain; charset=utf-8' };
    const notFound = (path) => send(404, notFoundPage(path), { 'content-type': 'text/html; charset=utf-8' });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(405, 'method not allowed', { allow: 'GET, HEAD', ...text });
      return;
    }
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
    } catch {
      send(400, 'bad request', text);
      return;
    }
    if (pathname === '/') {
      // The repository root has no page of its own: the demo is what `npm start` is for.
      send(302, 'the demo is at /web/demo/', { location: '/web/demo/', ...text });
      return;
    }
    const extra = routes.get(pathname);
    if (extra) {
      send(200, extra.body, { 'content-type': extra.type, 'content-length': String(extra.body.length) });
      return;
    }
    if (pathname.includes('\0')) {
      send(400, 'bad request', text);
      return;
    }
    if (threads) pathname = pathname.replace(/^\/web\/dist(?:-reader)?\//, '/web/dist-threads/');
    const file = resolve(rootDir, `.${pathname}`);
    if (file !== rootDir && !file.startsWith(rootDir + sep)) {
      send(403, 'forbidden', text);
      return;
    }
    try {
      let path = file;
      let info = await stat(path);
      if (info.isDirectory()) {
        // a folder's index.html; never a listing
        path = resolve(file, 'index.html');
        info = await stat(path);
        if (info.isFile() && !pathname.endsWith('/')) {
          // /web/demo → /web/demo/, so that the page's relative links resolve inside the folder
          const to = `/${encodeURI(pathname).replace(/^\/+/, '')}/`; // one leading slash: never //host
          send(301, `moved to ${to}`, { location: to, ...text });
          return;
        }
      }
      if (!info.isFile()) {
        notFound(pathname);
        return;
      }
      const body = await readFile(path);
      send(200, body, { 'content-type': mimeType(path), 'content-length': String(body.length) });
    } catch {
      notFound(pathname);
    }
  });

  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, ok);
  });
  const actual = server.address().port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    route(path, body, type = 'application/octet-stream') {
      routes.set(path, { body: typeof body === 'string' ? Buffer.from(body) : Buffer.from(body), type });
    },
    unroute(path) {
      routes.delete(path);
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}

// `node scripts/serve.mjs`: serve the repository for the demo until interrupted.
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const i = process.argv.indexOf('--port');
  const wanted = i > 0 ? Number(process.argv[i + 1]) : Number(process.env.PORT ?? 8080);
  const threads = process.argv.includes('--threads');
  let server;
  try {
    server = await startServer({ port: wanted, threads });
  } catch (e) {
    if (e.code !== 'EADDRINUSE') throw e;
    server = await startServer({ port: 0, threads }); // the usual port is taken: any free one
  }
  console.log(
    `modelkeep demo: ${server.url}/web/demo/${threads ? ' (the pthreads build, cross-origin isolated)' : ''}`,
  );
  console.log('(Ctrl+C to stop)');
}
