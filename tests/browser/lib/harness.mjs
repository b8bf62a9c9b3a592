// Shared helpers for the browser tests: a real `footfall serve` per test file, headless Debian
// Chromium through playwright-core, SQL read-back with polling, and a page-hiding helper.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { startFront } from './collector.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SITE_DIR = join(ROOT, 'tests', 'browser', 'site');
export const DOMAIN = 'footfall.test';

/** The footfall binary: $FOOTFALL_BIN, else $CARGO_TARGET_DIR/debug/footfall. */
export function footfallBin() {
  if (process.env.FOOTFALL_BIN) return process.env.FOOTFALL_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(process.env.HOME || '/root', '.cache', 'footfall', 'target');
  return join(target, 'debug', 'footfall');
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value (returned) or `timeout` ms pass (then throws with the
 * last value or error, so a failing assertion says what was there). An error with `fatal` set ends
 * the wait at once.
 */
export async function poll(fn, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    if (Date.now() > end) {
      const detail = last instanceof Error ? last.stack || last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${detail}`);
    }
    await sleep(interval);
  }
}

/** True when the tracker is served from tracker/dist by a node front, not by the server. */
export const FROM_SOURCE = !!process.env.FOOTFALL_TRACKER_FROM_SOURCE;

/**
 * Starts `footfall serve` on a free port with a temporary data dir, serving `tests/browser/site`
 * under /site/ (and the tracker, embedded in the binary, under /js/). Creates the project `site1`
 * for DOMAIN. Returns helpers; call `stop()` at the end.
 *
 * FOOTFALL_TRACKER_FROM_SOURCE=1 puts a node front before the server that serves /js/ from
 * tracker/dist and /site/ itself: a tracker change is tested without rebuilding the server.
 */
export async function startFootfall({ project = 'site1', domain = DOMAIN } = {}) {
  const bin = footfallBin();
  if (!existsSync(bin)) throw new Error(`footfall binary not found at ${bin}: build it or set FOOTFALL_BIN`);
  const root = mkdtempSync(join(tmpdir(), 'footfall-browser-'));
  const dataDir = join(root, 'data');
  const token = randomBytes(16).toString('hex');
  let log = '';
  let port, child;
  for (let attempt = 0; attempt < 4; attempt++) {
    port = await freePort();
    child = spawn(
      bin,
      ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, ...(FROM_SOURCE ? [] : ['--site-dir', SITE_DIR])],
      {
        env: { ...process.env, FOOTFALL_ADMIN_TOKEN: token, RUST_LOG: process.env.RUST_LOG || 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }
    );
    child.stdout.on('data', (b) => (log += b));
    child.stderr.on('data', (b) => (log += b));
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    const ready = poll(
      async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
      { timeout: 30000, interval: 50, what: 'footfall /healthz' }
    );
    const first = await Promise.race([ready.then(() => 'ready'), exited.then((c) => `exited ${c}`)]);
    if (first == 'ready') break;
    if (!/address|in use/i.test(log) || attempt == 3) {
      rmSync(root, { recursive: true, force: true });
      throw new Error(`footfall serve ${first}:\n${log}`);
    }
  }
  const front = FROM_SOURCE ? await startFront(`http://127.0.0.1:${port}`) : null;
  const base = front ? front.base : `http://127.0.0.1:${port}`;
  const auth = { Authorization: `Bearer ${token}` };

  const api = async (method, path, body) => {
    const res = await fetch(base + path, {
      method,
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw Object.assign(new Error(`${method} ${path} → ${res.status}: ${text}`), { status: res.status });
    return text ? JSON.parse(text) : null;
  };

  await api('POST', '/api/v1/projects', { id: project, domain });

  const server = {
    base,
    token,
    dataDir,
    root,
    log: () => log,
    api,
    /** Rows of a SQL query (JSON format). */
    // A 400 (unknown column or view, bad SQL) will not change by waiting: `fatal` stops polling.
    sql: (sql) =>
      api('POST', '/api/v1/sql', { sql, format: 'json' }).catch((e) => {
        if (e.status == 400) e.fatal = true;
        throw e;
      }),
    flush: () => api('POST', '/api/v1/admin/flush'),
    /** Polls a SQL query until `ok(rows)` holds; returns the rows. */
    async rows(sql, ok = (r) => r.length > 0, timeout = 10000) {
      let rows;
      await poll(async () => ok((rows = await server.sql(sql))) && rows, { timeout, what: `rows of: ${sql}` }).catch((e) => {
        throw new Error(`${e.message}\nrows: ${JSON.stringify(rows)}`);
      });
      return rows;
    },
    async stop() {
      await front?.stop();
      if (child.exitCode == null) {
        child.kill('SIGTERM');
        let timer;
        await Promise.race([
          new Promise((r) => child.once('exit', r)),
          new Promise((r) => (timer = setTimeout(r, 15000))),
        ]);
        clearTimeout(timer); // a pending timer would keep the test process alive
        if (child.exitCode == null && child.signalCode == null) child.kill('SIGKILL');
      }
      if (!process.env.FOOTFALL_TEST_KEEP) rmSync(root, { recursive: true, force: true });
    },
  };
  return server;
}

/** Every file under `dir` (recursively) whose bytes contain `needle`. */
export function filesContaining(dir, needle) {
  const hits = [];
  const want = Buffer.from(needle);
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (readFileSync(p).includes(want)) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

// A desktop Chrome user agent: HeadlessChrome is (rightly) classified as a bot by the server. The
// build number differs per context: the server's visitor hash covers the user agent, so each
// context is its own visitor and session (all contexts share the address 127.0.0.1).
let contexts = 0;
const userAgent = () =>
  `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.${process.pid % 1000}.${++contexts} Safari/537.36`;

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A fresh browser context (no shared storage) with fixed screen, viewport, locale and timezone. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({
    userAgent: userAgent(),
    viewport: { width: 1280, height: 720 },
    screen: { width: 1920, height: 1080 },
    locale: 'de-DE',
    timezoneId: 'Europe/Berlin',
    ...options,
  });
  const page = await context.newPage();
  page.on('pageerror', () => {}); // test pages throw on purpose
  return page;
}

/** Waits until the tracker has loaded (window.footfall.m exists) and, optionally, a module's hook. */
export async function trackerReady(page) {
  await page.waitForFunction(() => window.footfall && window.footfall.m && window.footfall.m.id);
}

/**
 * Makes the page hidden as a tab switch would (visibilityState "hidden" + visibilitychange), then
 * visible again unless `stay` is set. The tracker sends its page-end events then (sendBeacon).
 */
export async function hide(page, { stay = false } = {}) {
  await page.evaluate((stay) => {
    const set = (hidden) => {
      Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
      Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    };
    set(true);
    if (!stay) {
      set(false);
      // Back to the browser's own getters, so that a real hide (closing the page) is seen as one.
      delete document.visibilityState;
      delete document.hidden;
    }
  }, stay);
}

/** SQL string literal. */
export const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** The current page_id of the tracker on `page`. */
export const pageId = (page) => page.evaluate(() => window.footfall.m.id);
