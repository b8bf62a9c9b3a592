// What the tracker puts on the wire, checked against a recording stand-in server (no footfall
// binary needed): field names and types of protocol §1–2, batching, privacy guarantees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCollector } from './lib/collector.mjs';
import { launchBrowser, newPage, trackerReady, hide, DOMAIN } from './lib/harness.mjs';

let srv, browser;
before(async () => {
  srv = await startCollector();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

const PAGE_ID = /^[0-9a-f]{16}$/;

test('pageview payload: every field of the spec, text/plain, no cookies', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/index.html?utm_source=news#top`);
  await trackerReady(page);
  const [pv] = await srv.waitFor((e) => e.type == 'pageview' && e.u?.includes('/site/index.html'));
  assert.equal(pv.d, DOMAIN);
  assert.equal(pv.u, `${srv.base}/site/index.html?utm_source=news`, 'hash left out without data-hash');
  assert.match(pv.page_id, PAGE_ID);
  assert.equal(pv.title, 'Footfall test: home');
  assert.equal(pv.screen_width, 1920);
  assert.equal(pv.screen_height, 1080);
  assert.equal(pv.viewport_width, 1280);
  assert.equal(pv.viewport_height, 720);
  assert.equal(pv.language, 'de-DE');
  assert.equal(pv.timezone, 'Europe/Berlin');
  assert.deepEqual(pv.dimensions, { cd_user_type: 'premium', cd_plan: 'team' }, 'data-dimensions + queued dimensions');
  assert.equal('referrer' in pv, false, 'no referrer: none was given');
  const req = srv.requests.find((r) => r.events.includes(pv));
  assert.match(req.headers['content-type'], /^text\/plain/);
  assert.equal(req.headers.cookie, undefined);
  assert.ok(req.body.startsWith('['), 'always a JSON array');

  // The call queued before the tracker loaded goes out after the pageview, on the same page.
  const [early] = await srv.waitFor((e) => e.name == 'Early Call');
  assert.equal(early.type, 'event');
  assert.equal(early.page_id, pv.page_id);
  assert.deepEqual(early.props, { queued: true });
  assert.ok(srv.events().indexOf(early) > srv.events().indexOf(pv));

  assert.deepEqual(await page.context().cookies(), []);
  const stored = await page.evaluate(() => [Object.keys(localStorage), Object.keys(sessionStorage)]);
  assert.deepEqual(stored, [[], []]);
  await page.context().close();
});

test('engagement is cumulative per page and sent by beacon when hidden', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/index.html`);
  await trackerReady(page);
  const id = await page.evaluate(() => footfall.m.id);
  await page.mouse.move(100, 100);
  await page.mouse.wheel(0, 1200);
  await page.waitForFunction(() => scrollY > 1000);
  await page.mouse.click(600, 300);
  await page.waitForTimeout(300);
  await hide(page);
  const [first] = await srv.waitFor((e) => e.type == 'engagement' && e.page_id == id);
  assert.equal(first.click_count, 1);
  assert.ok(first.scroll_percentage >= 55 && first.scroll_percentage < 100, `scroll ${first.scroll_percentage}`);
  assert.ok(first.active_time_ms > 0 && first.active_time_ms <= first.time_on_page_ms);
  assert.equal(first.idle_time_ms, first.time_on_page_ms - first.active_time_ms);
  await page.keyboard.press('End');
  await page.waitForFunction(() => scrollY + innerHeight >= document.documentElement.scrollHeight - 1);
  await page.mouse.move(120, 120);
  await hide(page);
  const all = await srv.waitFor((e) => e.type == 'engagement' && e.page_id == id, { count: 2 });
  const second = all[1];
  assert.equal(second.scroll_percentage, 100);
  assert.ok(second.time_on_page_ms >= first.time_on_page_ms);
  assert.ok(second.active_time_ms >= first.active_time_ms);
  await page.context().close();
});

test('no cookies, storage or form values; opt-out sends nothing', async () => {
  const page = await newPage(browser);
  await page.addInitScript(() => localStorage.setItem('footfall_ignore', 'true'));
  const before = srv.requests.length;
  await page.goto(`${srv.base}/site/index.html`);
  await trackerReady(page);
  await page.click('#buy');
  await hide(page);
  await page.waitForTimeout(500);
  assert.equal(srv.requests.length, before, 'nothing sent while localStorage.footfall_ignore is "true"');
  await page.context().close();
});

test('SPA: pushState and hash routing make pageviews with new page_ids; engagement and vitals close each page', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/spa.html`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.h.length > 0); // vitals module loaded
  const first = await page.evaluate(() => footfall.m.id);
  await page.click('#same'); // replaceState to the same URL: not a new page
  await page.click('#to-products');
  const [pv2] = await srv.waitFor((e) => e.type == 'pageview' && e.u.endsWith('/site/spa/products'));
  assert.notEqual(pv2.page_id, first);
  assert.match(pv2.page_id, PAGE_ID);
  assert.equal(pv2.title, 'SPA: products');
  assert.equal('referrer' in pv2, false);
  const [eng] = await srv.waitFor((e) => e.type == 'engagement' && e.page_id == first);
  assert.ok(eng.u.endsWith('/site/spa.html'), 'engagement carries the page it measured');
  const [vit] = await srv.waitFor((e) => e.type == 'vitals' && e.page_id == first);
  assert.ok(vit.time_to_first_byte_ms >= 0);
  await page.click('#to-pricing');
  await srv.waitFor((e) => e.type == 'pageview' && e.u.endsWith('/site/spa/pricing?plan=pro'));
  await page.goBack();
  const back = await srv.waitFor((e) => e.type == 'pageview' && e.u.endsWith('/site/spa/products'), { count: 2 });
  assert.notEqual(back[1].page_id, pv2.page_id);
  const pvs = srv.events().filter((e) => e.type == 'pageview' && e.u.includes('/site/spa'));
  assert.equal(pvs.length, 4, 'replaceState to the same URL made no pageview');
  // The SPA page's vitals: soft-navigation metrics only.
  await hide(page);
  const [soft] = await srv.waitFor((e) => e.type == 'vitals' && e.page_id == back[1].page_id);
  assert.equal(soft.largest_contentful_paint_ms, undefined);
  assert.equal(typeof soft.cumulative_layout_shift, 'number');

  const hashPage = await newPage(browser);
  await hashPage.goto(`${srv.base}/site/hash.html`);
  await trackerReady(hashPage);
  await hashPage.click('#to-about');
  await hashPage.click('#to-team');
  const hashViews = await srv.waitFor((e) => e.type == 'pageview' && e.u.includes('/site/hash.html#/'), { count: 2 });
  assert.deepEqual(hashViews.map((e) => e.u.split('#')[1]), ['/about', '/team']);
  await page.context().close();
  await hashPage.context().close();
});

test('outbound link, file download and a custom event with props and revenue', async () => {
  const page = await newPage(browser);
  await page.route('https://partner.example/**', (r) => r.fulfill({ contentType: 'text/html', body: '<p>partner</p>' }));
  await page.goto(`${srv.base}/site/index.html`);
  await trackerReady(page);
  const id = await page.evaluate(() => footfall.m.id);
  await page.click('#buy');
  const [buy] = await srv.waitFor((e) => e.name == 'Purchase');
  assert.deepEqual(buy.props, { plan: 'pro', seats: 3 });
  assert.deepEqual(buy.revenue, { amount: '49.90', currency: 'EUR' });
  assert.equal(buy.page_id, id);
  await page.click('#download');
  const [dl] = await srv.waitFor((e) => e.name == 'File Download');
  assert.deepEqual(dl.props, { url: `${srv.base}/site/files/report.pdf` });
  await page.goto(`${srv.base}/site/index.html`);
  await trackerReady(page);
  await page.click('#outbound');
  const [out] = await srv.waitFor((e) => e.name == 'Outbound Link: Click');
  assert.deepEqual(out.props, { url: 'https://partner.example/landing?ref=footfall' });
  assert.equal(out.type, 'event');
  await page.context().close();
});
