// Node servers for the browser tests:
// - startCollector: a stand-in for the footfall server that records exactly what the tracker puts
//   on the wire: serves tracker/dist under /js/ and the test site under /site/, and keeps every
//   POST /api/event body (with its headers). The wire tests check the payloads with it.
// - startFront: a pass-through in front of a real server that serves the tracker from tracker/dist
//   (FOOTFALL_TRACKER_FROM_SOURCE=1: test a tracker change without rebuilding the server).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, extname } from 'node:path';
import { ROOT, SITE_DIR, poll } from './harness.mjs';

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'application/javascript', '.svg': 'image/svg+xml', '.pdf': 'application/pdf' };

/** Serves /js/* from tracker/dist and /site/* from the test site; false if `path` is neither. */
export async function serveStatic(path, res) {
  let file;
  if (path.startsWith('/js/')) file = join(ROOT, 'tracker', 'dist', normalize(path.slice(4)));
  else if (path.startsWith('/site/')) file = join(SITE_DIR, normalize(path.slice(6)));
  if (!file || file.includes('..')) return false;
  try {
    const bytes = await readFile(file);
    res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
    res.end(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * A front for a footfall server that serves the tracker from tracker/dist (not the copy embedded
 * in the binary) and the test site, and passes every other request through to `target`.
 */
export async function startFront(target) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method == 'GET' && (await serveStatic(url.pathname, res))) return;
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.connection;
    try {
      const up = await fetch(target + req.url, {
        method: req.method,
        headers,
        body: ['GET', 'HEAD'].includes(req.method) ? undefined : Buffer.concat(chunks),
      });
      const out = {};
      up.headers.forEach((v, k) => k != 'content-encoding' && k != 'content-length' && k != 'transfer-encoding' && (out[k] = v));
      res.writeHead(up.status, out);
      res.end(Buffer.from(await up.arrayBuffer()));
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => (server.close(r), server.closeAllConnections())) };
}

export async function startCollector() {
  const requests = []; // {headers, body, events}
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method == 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': 'POST' });
      return res.end();
    }
    if (req.method == 'POST' && url.pathname == '/api/event') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const body = Buffer.concat(chunks).toString();
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = null;
      }
      requests.push({ headers: req.headers, body, events: [].concat(parsed ?? []) });
      res.writeHead(202, { 'access-control-allow-origin': '*' });
      return res.end('ok');
    }
    if (!(await serveStatic(url.pathname, res))) {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    requests,
    /** Every event received so far, in arrival order. */
    events: () => requests.flatMap((r) => r.events),
    /** Waits for events matching `pred` (at least `count`), returns them. */
    async waitFor(pred, { count = 1, timeout = 10000, what = 'events' } = {}) {
      let found = [];
      await poll(() => (found = requests.flatMap((r) => r.events).filter(pred)).length >= count, { timeout, what }).catch((e) => {
        throw new Error(`${e.message}\nreceived: ${JSON.stringify(requests.flatMap((r) => r.events), null, 1)}`);
      });
      return found;
    },
    stop: () => new Promise((r) => (server.close(r), server.closeAllConnections())),
  };
}
