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

const PAGE_ID = /^[0-9a-z]{12}$/;

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
  assert.equal(pv.referrer, '', 'no referrer: none was given');
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

test('opt-out: localStorage.footfall_ignore = "true" sends nothing', async () => {
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
  assert.equal(pv2.referrer, '', 'an SPA pageview has no referrer');
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

test('vitals: paint, LCP, TTFB, load timings, CLS, INP and resources at page hide', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/vitals.html`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.h.length > 0);
  await page.waitForLoadState('load');
  await page.waitForTimeout(600); // the page shifts its layout at 300 ms
  await page.click('#work'); // a 120 ms interaction
  await page.waitForTimeout(200);
  const id = await page.evaluate(() => footfall.m.id);
  await hide(page);
  const [v] = await srv.waitFor((e) => e.type == 'vitals' && e.page_id == id);
  for (const k of ['first_paint_ms', 'first_contentful_paint_ms', 'largest_contentful_paint_ms', 'time_to_first_byte_ms', 'dom_content_loaded_ms', 'page_load_ms'])
    assert.ok(Number.isInteger(v[k]) && v[k] >= 0, `${k} = ${v[k]}`);
  assert.ok(v.largest_contentful_paint_ms >= v.first_contentful_paint_ms);
  assert.ok(v.cumulative_layout_shift > 0, `CLS ${v.cumulative_layout_shift}`);
  assert.ok(v.interaction_to_next_paint_ms >= 100, `INP ${v.interaction_to_next_paint_ms}`);
  assert.ok(v.first_input_delay_ms >= 0);
  assert.ok(v.resource_count >= 3, `resources ${v.resource_count}`); // tracker, module, image
  assert.ok(v.transfer_size_bytes > 0);
  await page.context().close();
});

test('errors: source location, stack, rejection, failed fetch and XHR, dedupe and the per-page cap', async () => {
  const page = await newPage(browser);
  await page.route('**/site/api/prices*', (r) => r.fulfill({ status: 503, body: 'down' }));
  await page.route('**/site/api/report', (r) => r.fulfill({ status: 500, body: 'boom' }));
  await page.goto(`${srv.base}/site/errors.html`);
  await trackerReady(page);
  await page.waitForFunction(() => fetch.toString().includes('network'));
  for (const b of ['#throw', '#throw-again', '#reject', '#fetch-503', '#fetch-down', '#xhr-500']) await page.click(b);
  const app = `${srv.base}/site/files/app.js`;
  const errs = await srv.waitFor((e) => e.type == 'error', { count: 5, timeout: 8000 });
  const js = errs.filter((e) => e.error_type == 'javascript');
  assert.equal(js.length, 1, 'the same error twice is reported once');
  assert.match(js[0].error_message, /Cannot read properties of undefined \(reading 'items'\)/);
  assert.equal(js[0].source_file, app);
  assert.equal(js[0].line_number, 4);
  assert.ok(js[0].column_number > 0);
  assert.match(js[0].error_stack, /brokenCheckout/);
  const rej = errs.find((e) => e.error_type == 'unhandledrejection');
  assert.equal(rej.error_message, 'payment provider unavailable');
  assert.equal(rej.source_file, app);
  assert.equal(rej.line_number, 7);
  await srv.waitFor((e) => e.type == 'error' && e.error_type == 'network', { count: 3 });
  const nets = srv.events().filter((e) => e.type == 'error' && e.error_type == 'network');
  const byMsg = Object.fromEntries(nets.map((e) => [e.error_message, e]));
  const m503 = `GET ${srv.base}/site/api/prices?currency=EUR \u2192 503`;
  assert.ok(byMsg[m503], `have ${Object.keys(byMsg)}`);
  assert.equal(byMsg[m503].source_file, app);
  assert.equal(byMsg[m503].line_number, 10);
  assert.ok(byMsg['GET http://127.0.0.1:9/unreachable \u2192 network error']);
  assert.equal(byMsg[`POST ${srv.base}/site/api/report \u2192 500`]?.line_number, 18);
  await page.click('#flood');
  await page.waitForTimeout(300);
  await hide(page);
  await page.waitForTimeout(300);
  const id = await page.evaluate(() => footfall.m.id);
  const onPage = srv.events().filter((e) => e.type == 'error' && e.page_id == id);
  assert.equal(onPage.length, 10, 'at most 10 errors per page');
  await page.context().close();
});

test('interactions: selectors, text (never from fields), position, rage clicks and copies into engagement', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/interactions.html`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.c.rage_clicks === 0);
  const id = await page.evaluate(() => footfall.m.id);
  await page.click('#cta');
  await page.click('[data-testid=add-to-cart]');
  await page.click('.card:nth-of-type(2) .price');
  await page.click('.nav-link.is-active');
  await page.click('#secret');
  await page.click('#editor');
  for (let i = 0; i < 3; i++) await page.click('#broken', { delay: 10 });
  await page.evaluate(() => {
    const r = document.createRange();
    r.selectNodeContents(document.getElementById('quote'));
    getSelection().removeAllRanges();
    getSelection().addRange(r);
    document.execCommand('copy');
  });
  await hide(page);
  const [eng] = await srv.waitFor((e) => e.type == 'engagement' && e.page_id == id);
  assert.equal(eng.rage_clicks, 1);
  assert.equal(eng.copy_events, 1);
  assert.equal(eng.click_count, 9);
  const ix = srv.events().filter((e) => e.type == 'interaction' && e.page_id == id);
  const clicks = ix.filter((e) => e.interaction_type == 'click');
  assert.equal(clicks.length, 9);
  const cta = clicks[0];
  assert.equal(cta.element_selector, '#cta');
  assert.equal(cta.element_text, 'Start free trial');
  const box = await page.locator('#cta').boundingBox();
  assert.ok(Math.abs(cta.element_position.x - (box.x + box.width / 2)) <= 1, JSON.stringify(cta.element_position));
  assert.equal(clicks[1].element_selector, 'body > main > button[data-testid="add-to-cart"]');
  assert.equal(clicks[1].element_text, 'Add to cart');
  assert.equal(clicks[2].element_selector, 'body > main > div.cards:nth-of-type(1) > div.card:nth-of-type(2) > span.price');
  assert.equal(clicks[2].element_text, '€ 99');
  assert.equal(clicks[3].element_selector, 'header.site-header > nav.main-nav > ul > li:nth-of-type(2) > a.nav-link');
  assert.equal(clicks[4].element_selector, '#secret');
  assert.equal(clicks[4].element_text, undefined, 'no text from an input');
  assert.equal(clicks[5].element_selector, '#editor');
  assert.equal(clicks[5].element_text, undefined, 'no text from contenteditable');
  const rage = ix.filter((e) => e.interaction_type == 'rage_click');
  assert.equal(rage.length, 1);
  assert.equal(rage[0].element_selector, '#broken');
  const copy = ix.find((e) => e.interaction_type == 'copy');
  assert.equal(copy.element_selector, '#quote');
  assert.equal(copy.element_text, undefined);
  // Interactions travel in batches: one request carried the clicks, the page's end sent the rest.
  assert.ok(srv.requests.some((r) => r.events.filter((e) => e.type == 'interaction' && e.page_id == id).length >= 5));
  const body = srv.requests.map((r) => r.body).join('\n');
  assert.ok(!body.includes('Copy this sentence'), 'copied text never sent');
  assert.ok(!body.includes('initial-value') && !body.includes('private note'), 'field contents never sent');
  await page.context().close();
});

test('forms: start, field timings, validation error, submit, abandon; no value leaves the page', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/forms.html`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.h.length >= 1);
  const id = await page.evaluate(() => footfall.m.id);
  const SECRET = 'Zebra-Quartz-7781';
  await page.fill('[name=full_name]', SECRET);
  await page.fill('[name=email]', 'not-an-email');
  await page.click('#submit'); // invalid email, password missing: validation errors, no submit
  const [err] = await srv.waitFor((e) => e.type == 'form' && e.form_event == 'error');
  assert.equal(err.form_id, 'signup');
  assert.equal(err.form_name, 'signup-form');
  assert.ok(err.error_messages.length >= 1);
  // Named validity flags, never validationMessage (Chrome quotes the value: "'x' is missing an '@'").
  assert.deepEqual(err.error_messages, ['email: typeMismatch', 'password: valueMissing', 'terms: valueMissing']);
  await page.fill('[name=email]', `${SECRET.toLowerCase()}@example.org`);
  await page.fill('[name=password]', `${SECRET}-pw`);
  await page.check('[name=terms]');
  await page.click('#submit');
  const [sub] = await srv.waitFor((e) => e.type == 'form' && e.form_event == 'submit');
  const [start] = srv.events().filter((e) => e.type == 'form' && e.form_event == 'start' && e.form_id == 'signup');
  assert.equal(start.page_id, id);
  assert.ok(start.time_to_first_field_ms >= 0);
  assert.equal(start.fields_total, 5);
  assert.equal(sub.fields_total, 5, 'name, email, password, terms, plan (hidden input and button excluded)');
  assert.equal(sub.fields_completed, 4, 'the plan select is left on its empty option');
  assert.equal(sub.fields_interacted, 4);
  assert.ok(sub.time_to_submit_ms > 0);
  const fields = Object.fromEntries(sub.field_interactions.map((f) => [f.field_name, f]));
  assert.deepEqual(Object.keys(fields).sort(), ['email', 'full_name', 'password', 'terms']);
  assert.equal(fields.email.changes_count, 2);
  assert.ok(fields.full_name.time_spent_ms >= 0);
  // The second form: started, never submitted, then the page is hidden.
  await page.fill('[name=nl_email]', `${SECRET}@news.example`);
  await hide(page);
  const [ab] = await srv.waitFor((e) => e.type == 'form' && e.form_event == 'abandon');
  assert.equal(ab.form_id, 'newsletter');
  assert.equal(ab.fields_total, 2);
  assert.equal(ab.fields_completed, 1);
  const wire = srv.requests.map((r) => r.body).join('\n');
  assert.ok(!wire.includes(SECRET) && !wire.includes(SECRET.toLowerCase()), 'a typed value was sent');
  assert.ok(!wire.includes('hidden-token-value'));
  await page.context().close();
});

test('search: query, results count, location, result click, refinement', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/search.html?q=running+shoes`);
  await trackerReady(page);
  const id = await page.evaluate(() => footfall.m.id);
  const [s1] = await srv.waitFor((e) => e.type == 'search' && e.page_id == id);
  assert.equal(s1.search_query, 'running shoes');
  assert.equal(s1.results_count, 3);
  assert.equal(s1.search_location, 'header');
  await page.fill('input[name=q]', 'red running shoes');
  await page.press('input[name=q]', 'Enter');
  await page.waitForURL(/q=red/);
  await trackerReady(page);
  const [s2] = await srv.waitFor((e) => e.type == 'search' && e.search_query == 'red running shoes');
  assert.equal(s2.results_count, 4);
  assert.notEqual(s2.page_id, id);
  await page.click('#results li:nth-child(2) a');
  const [click] = await srv.waitFor((e) => e.type == 'search_click');
  assert.equal(click.search_query, 'red running shoes');
  assert.equal(click.clicked_position, 2);
  assert.equal(click.clicked_url, `${srv.base}/site/index.html?result=2`);
  assert.equal(click.page_id, s2.page_id);
  await page.context().close();
});

test('experiments: exposure queued before load, later custom events carry the variant', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/experiment.html`);
  await trackerReady(page);
  const id = await page.evaluate(() => footfall.m.id);
  const [x] = await srv.waitFor((e) => e.type == 'experiment' && e.page_id == id);
  assert.equal(x.experiment_id, 'hero-copy');
  assert.equal(x.variant_id, 'B');
  await page.click('#signup');
  const [ev] = await srv.waitFor((e) => e.name == 'Signup');
  assert.equal(ev.experiment_id, 'hero-copy');
  assert.equal(ev.variant_id, 'B');
  assert.deepEqual(ev.props, { source: 'hero' });
  await page.click('#second');
  const [x2] = await srv.waitFor((e) => e.type == 'experiment' && e.experiment_id == 'pricing-table');
  assert.equal(x2.variant_id, 'control');
  await page.context().close();
});

test('Do-Not-Track and GPC respected with data-respect-dnt, ignored without it', async () => {
  for (const signal of ['doNotTrack', 'globalPrivacyControl']) {
    const page = await newPage(browser);
    await page.addInitScript((signal) => {
      Object.defineProperty(Navigator.prototype, signal, { get: () => (signal == 'doNotTrack' ? '1' : true), configurable: true });
    }, signal);
    const before = srv.requests.length;
    await page.goto(`${srv.base}/site/dnt.html?signal=${signal}`);
    await trackerReady(page);
    await page.click('#evt');
    await hide(page);
    // Same browser, a page without data-respect-dnt: tracked (so the silence above is the switch).
    await page.goto(`${srv.base}/site/index.html?signal=${signal}`);
    await srv.waitFor((e) => e.type == 'pageview' && e.u.endsWith(`/site/index.html?signal=${signal}`));
    assert.equal(srv.requests.slice(before).flatMap((r) => r.events).filter((e) => e.u.includes('/dnt.html')).length, 0);
    await page.context().close();
  }
});

test('all six modules load from data-modules next to the core', async () => {
  const page = await newPage(browser);
  const loaded = [];
  page.on('response', (r) => r.url().includes('/js/') && loaded.push([r.url().split('/js/')[1], r.status()]));
  await page.goto(`${srv.base}/site/all.html?q=x`);
  await trackerReady(page);
  await srv.waitFor((e) => e.type == 'search' && e.search_query == 'x');
  await page.waitForFunction(() => footfall.m.h.length == 2 && footfall.m.c.rage_clicks === 0);
  assert.deepEqual(
    loaded.sort(),
    ['footfall.errors.js', 'footfall.experiments.js', 'footfall.forms.js', 'footfall.interactions.js', 'footfall.js', 'footfall.search.js', 'footfall.vitals.js'].map((f) => [f, 200])
  );
  await page.context().close();
});
