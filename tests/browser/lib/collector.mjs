// A stand-in for the footfall server that records exactly what the tracker puts on the wire:
// serves tracker/dist under /js/ and the test site under /site/, and keeps every POST /api/event
// body (with its headers). The wire tests use it to check the payloads byte for byte; the other
// tests run against the real server.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize, extname } from 'node:path';
import { ROOT, SITE_DIR, poll } from './harness.mjs';

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'application/javascript', '.svg': 'image/svg+xml', '.pdf': 'application/pdf' };

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
    let file;
    if (url.pathname.startsWith('/js/')) file = join(ROOT, 'tracker', 'dist', normalize(url.pathname.slice(4)));
    else if (url.pathname.startsWith('/site/')) file = join(SITE_DIR, normalize(url.pathname.slice(6)));
    try {
      if (!file || file.includes('..')) throw new Error('not found');
      const bytes = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
      res.end(bytes);
    } catch {
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
    stop: () => new Promise((r) => server.close(r)),
  };
}
