// The core tracker against a real footfall server: what a browser sends is stored and queryable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFootfall, launchBrowser, newPage, trackerReady, hide, pageId, q, ROOT, FROM_SOURCE } from './lib/harness.mjs';

let srv, browser;
before(async () => {
  srv = await startFootfall();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

const MODULE_FILES = ['footfall.js', 'footfall.vitals.js', 'footfall.errors.js', 'footfall.interactions.js', 'footfall.forms.js', 'footfall.search.js', 'footfall.experiments.js'];

test('the server serves the tracker files it embeds, identical to tracker/dist', async () => {
  for (const name of MODULE_FILES) {
    const res = await fetch(`${srv.base}/js/${name}`);
    assert.equal(res.status, 200, name);
    assert.match(res.headers.get('content-type'), /javascript/);
    const body = Buffer.from(await res.arrayBuffer());
    if (!FROM_SOURCE)
      assert.ok(body.equals(readFileSync(join(ROOT, 'tracker', 'dist', name))), `${name}: the binary embeds a stale build (rebuild the server)`);
  }
});

test('pageview: url parts, title, screen, viewport, language, timezone, dimensions, page_id', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/index.html?utm_source=newsletter&utm_campaign=winter`);
  await trackerReady(page);
  const id = await pageId(page);
  assert.match(id, /^[0-9a-z]{12}$/);
  const [pv] = await srv.rows(
    `SELECT event_type, name, page_id, hostname, path, page_title, screen_width, screen_height, viewport_width, viewport_height,
            language, timezone, custom_dimensions, utm_source, utm_campaign, referrer, session_id, visitor_id
       FROM events WHERE page_id = ${q(id)} AND event_type = 'pageview'`
  );
  assert.equal(pv.hostname, '127.0.0.1');
  assert.equal(pv.path, '/site/index.html');
  assert.equal(pv.page_title, 'Footfall test: home');
  assert.equal(pv.utm_source, 'newsletter');
  assert.equal(pv.utm_campaign, 'winter');
  assert.deepEqual([pv.screen_width, pv.screen_height, pv.viewport_width, pv.viewport_height], [1920, 1080, 1280, 720]);
  assert.equal(pv.language, 'de-DE');
  assert.equal(pv.timezone, 'Europe/Berlin');
  assert.deepEqual(JSON.parse(pv.custom_dimensions), { cd_user_type: 'premium', cd_plan: 'team' });
  assert.equal(pv.referrer, undefined);
  assert.ok(pv.session_id && pv.visitor_id);

  // The human pageviews view has it (a desktop Chrome user agent, not a bot).
  const view = await srv.rows(`SELECT page_id, path FROM pageviews WHERE page_id = ${q(id)}`);
  assert.deepEqual(view, [{ page_id: id, path: '/site/index.html' }]);

  // The call queued before the tracker loaded: a custom event on the same page.
  const [early] = await srv.rows(`SELECT event_type, props, page_id, path FROM events WHERE name = 'Early Call'`);
  assert.deepEqual(early, { event_type: 'event', props: '{"queued":true}', page_id: id, path: '/site/index.html' });
  await page.context().close();
});

test('custom event with props and revenue, file download and outbound link', async () => {
  const page = await newPage(browser);
  await page.route('https://partner.example/**', (r) => r.fulfill({ contentType: 'text/html', body: '<p>partner</p>' }));
  await page.goto(`${srv.base}/site/index.html`);
  await trackerReady(page);
  const id = await pageId(page);
  await page.click('#buy');
  await page.click('#download');
  await page.goto(`${srv.base}/site/index.html?again=1`);
  await trackerReady(page);
  const id2 = await pageId(page);
  await page.click('#outbound'); // navigates away: the keepalive request must still arrive
  await page.waitForURL('https://partner.example/**');

  const [buy] = await srv.rows(
    `SELECT name, event_metadata, revenue_amount, revenue_currency, page_id FROM custom_events WHERE name = 'Purchase' AND page_id = ${q(id)}`
  );
  assert.deepEqual(JSON.parse(buy.event_metadata), { plan: 'pro', seats: 3 });
  assert.equal(Number(buy.revenue_amount), 49.9);
  assert.equal(buy.revenue_currency, 'EUR');

  const [dl] = await srv.rows(`SELECT event_metadata, page_id FROM custom_events WHERE name = 'File Download'`);
  assert.deepEqual(JSON.parse(dl.event_metadata), { url: `${srv.base}/site/files/report.pdf` });
  assert.equal(dl.page_id, id);

  const [out] = await srv.rows(`SELECT event_metadata, page_id, path FROM custom_events WHERE name = 'Outbound Link: Click'`);
  assert.deepEqual(JSON.parse(out.event_metadata), { url: 'https://partner.example/landing?ref=footfall' });
  assert.equal(out.page_id, id2);
  assert.equal(out.path, '/site/index.html');
  await page.context().close();
});

test('SPA navigation: pushState, back and hash routes are pageviews with their own page_id, in the visitor path', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/spa.html`);
  await trackerReady(page);
  const first = await pageId(page);
  // Each pageview is its own request, so two quick navigations may reach the server in either
  // order: wait for each before the next, so event_id order is navigation order.
  const spaRows = (n) =>
    srv.rows(
      `SELECT path, query_string, page_title, page_id, session_id FROM events
        WHERE event_type = 'pageview' AND (path LIKE '/site/spa%') ORDER BY event_id`,
      (r) => r.length >= n
    );
  await spaRows(1);
  await page.click('#same'); // replaceState to the same URL: not a page
  await page.click('#to-products');
  await spaRows(2);
  await page.click('#to-pricing');
  await spaRows(3);
  await page.goBack();
  const rows = await spaRows(4);
  assert.deepEqual(rows.map((r) => r.path), ['/site/spa.html', '/site/spa/products', '/site/spa/pricing', '/site/spa/products']);
  assert.deepEqual(rows.map((r) => r.page_title), ['SPA: start', 'SPA: products', 'SPA: pricing', 'SPA: pricing']);
  assert.equal(rows[0].page_id, first);
  assert.equal(new Set(rows.map((r) => r.page_id)).size, 4, 'a page_id per pageview');
  assert.equal(new Set(rows.map((r) => r.session_id)).size, 1, 'one session');

  // Leaving a page by SPA navigation closes it: engagement for the first page.
  const [eng] = await srv.rows(`SELECT time_on_page_ms, active_time_ms, path FROM events WHERE event_type = 'engagement' AND page_id = ${q(first)}`);
  assert.equal(eng.path, '/site/spa.html');
  assert.ok(eng.time_on_page_ms >= 0);

  // The visitor's path through the SPA, in order.
  const path = await srv.rows(
    `SELECT path_sequence, page_id, path, next_path, exit_type FROM user_paths WHERE session_id = ${q(rows[0].session_id)} ORDER BY path_sequence`,
    (r) => r.length >= 4
  );
  assert.deepEqual(path.map((r) => [r.path_sequence, r.path, r.next_path]), [
    [1, '/site/spa.html', '/site/spa/products'],
    [2, '/site/spa/products', '/site/spa/pricing'],
    [3, '/site/spa/pricing', '/site/spa/products'],
    [4, '/site/spa/products', undefined],
  ]);
  assert.deepEqual(path.map((r) => r.page_id), rows.map((r) => r.page_id));
  assert.equal(path[3].exit_type, 'exit');

  const hashPage = await newPage(browser);
  await hashPage.goto(`${srv.base}/site/hash.html`);
  await trackerReady(hashPage);
  const hashRows = (n) =>
    srv.rows(
      `SELECT path, page_id FROM events WHERE event_type = 'pageview' AND path LIKE '/site/hash.html%'
        ORDER BY event_id`,
      (r) => r.length >= n
    );
  await hashRows(1);
  await hashPage.click('#to-about');
  await hashRows(2);
  await hashPage.click('#to-team');
  const hashed = await hashRows(3);
  // The route is part of the path, so hash-routed apps get one row per screen in reports.
  assert.deepEqual(hashed.map((r) => r.path), ['/site/hash.html', '/site/hash.html#/about', '/site/hash.html#/team']);
  assert.equal(new Set(hashed.map((r) => r.page_id)).size, 3);
  await page.context().close();
  await hashPage.context().close();
});

test('engagement: active time, scroll depth and clicks, sent when the page is hidden, cumulative', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/index.html?engagement=1`);
  await trackerReady(page);
  const id = await pageId(page);
  await page.mouse.move(200, 200);
  await page.mouse.wheel(0, 1500);
  await page.waitForFunction(() => scrollY >= 1400);
  await page.mouse.click(640, 300);
  await page.mouse.click(640, 320);
  await page.waitForTimeout(400);
  await hide(page);
  const [first] = await srv.rows(
    `SELECT time_on_page_ms, active_time_ms, idle_time_ms, scroll_percentage, click_count FROM events
      WHERE event_type = 'engagement' AND page_id = ${q(id)}`
  );
  assert.equal(first.click_count, 2);
  assert.ok(first.scroll_percentage >= 65 && first.scroll_percentage < 100, `scroll ${first.scroll_percentage}`);
  assert.ok(first.active_time_ms >= 300 && first.active_time_ms <= first.time_on_page_ms, JSON.stringify(first));
  assert.equal(first.idle_time_ms, first.time_on_page_ms - first.active_time_ms);

  // Back to the tab, to the bottom, then the tab closes: a second, larger engagement for the page.
  await page.keyboard.press('End');
  await page.waitForFunction(() => scrollY + innerHeight >= document.documentElement.scrollHeight - 1);
  await page.close({ runBeforeUnload: true });
  const rows = await srv.rows(
    `SELECT scroll_percentage, time_on_page_ms FROM events WHERE event_type = 'engagement' AND page_id = ${q(id)} ORDER BY time_on_page_ms`,
    (r) => r.length >= 2
  );
  assert.equal(rows.at(-1).scroll_percentage, 100);
  assert.ok(rows.at(-1).time_on_page_ms >= first.time_on_page_ms);

  // The pageviews view takes the page's maximum.
  const [pv] = await srv.rows(
    `SELECT scroll_percentage, click_count, time_on_page_ms, active_time_ms FROM pageviews WHERE page_id = ${q(id)}`
  );
  assert.equal(pv.scroll_percentage, 100);
  assert.equal(pv.click_count, 2);
  assert.equal(pv.time_on_page_ms, rows.at(-1).time_on_page_ms);
  assert.ok(pv.active_time_ms >= first.active_time_ms);
});

test('sessions: one visit across pages is one session with its pageviews', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/index.html?session=1`);
  await trackerReady(page);
  await page.click('#internal');
  await page.waitForURL('**/site/spa.html');
  await trackerReady(page);
  const id = await pageId(page);
  const [pv] = await srv.rows(`SELECT session_id, referrer FROM events WHERE page_id = ${q(id)} AND event_type = 'pageview'`);
  assert.equal(pv.referrer, `${srv.base}/site/index.html?session=1`);
  const sessions = await srv.rows(
    `SELECT pageviews, entry_page, exit_page, is_bounce, utm_source FROM sessions WHERE session_id = ${q(pv.session_id)}`
  );
  assert.deepEqual(sessions, [{ pageviews: 2, entry_page: '/site/index.html', exit_page: '/site/spa.html', is_bounce: false }]);
  await page.context().close();
});
