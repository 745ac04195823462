/**
 * `npm run web`: serves the browser demo on http://127.0.0.1:8080/web/ (builds dist/web/moefusion.js first when it is
 * missing or older than src/). Only web/, dist/web/, samples/ and weights/ are served, at their paths in the
 * repository, so the page's relative URLs work as they do from any static server run in the repository's root.
 * Options: --port N (default 8080, or $PORT; 0 picks a free one), --host H (default 127.0.0.1).
 * test/browser.test.ts starts the same server on a free port, with its test bundle as an extra folder.
 */
import { createServer, type Server } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildWeb, webBundleStale } from './build-web.ts';

const root = resolve(import.meta.dirname, '..');

/** URL prefix → folder served under it. */
export const DEFAULT_MOUNTS: Record<string, string> = {
  '/web/': join(root, 'web'),
  '/dist/web/': join(root, 'dist/web'),
  '/samples/': join(root, 'samples'),
  '/weights/': join(root, 'weights'),
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

export interface WebServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Starts the static server; `mounts` adds or replaces folders (URL prefix ending in '/' → folder). */
export async function startWebServer(opts: { port?: number; host?: string; mounts?: Record<string, string>; quiet?: boolean } = {}): Promise<WebServer> {
  const mounts = { ...DEFAULT_MOUNTS, ...opts.mounts };
  const host = opts.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const send = (status: number, text: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(400, 'bad request');
    }
    if (path === '/' || path === '/web') {
      res.writeHead(302, { location: '/web/' });
      return res.end();
    }
    const prefix = Object.keys(mounts)
      .filter((p) => path.startsWith(p))
      .sort((a, b) => b.length - a.length)[0];
    if (!prefix) return send(404, 'not found');
    const dir = mounts[prefix];
    let file = normalize(join(dir, path.slice(prefix.length)));
    if (file !== dir && !file.startsWith(dir + sep)) return send(403, 'forbidden');
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const { size } = statSync(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-cache' });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    } catch {
      send(404, 'not found');
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 8080, host, () => ok());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/web/`;
  return {
    server,
    url,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const port = Number(opt('--port') ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`moefusion: --port must be an integer from 0 to 65535, got ${opt('--port') ?? process.env.PORT}`);
    process.exit(2);
  }
  if (webBundleStale()) {
    const t0 = Date.now();
    await buildWeb();
    console.log(`built dist/web/moefusion.js in ${Date.now() - t0} ms`);
  }
  try {
    const { url } = await startWebServer({ port, host: opt('--host') });
    console.log(`moefusion web demo: ${url}  (Ctrl+C stops it; the page needs a browser with WebGPU)`);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    console.error(`moefusion: cannot listen on port ${port}: ${err.code === 'EADDRINUSE' ? 'in use; try --port 0 or another port' : err.message}`);
    process.exit(1);
  }
}
