// The tracker's modules (vitals, errors, interactions, search, experiments) against a real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFootfall, launchBrowser, newPage, trackerReady, hide, pageId, q } from './lib/harness.mjs';

let srv, browser;
before(async () => {
  srv = await startFootfall();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

test('vitals: LCP, FCP, TTFB, load timings, CLS, INP and resources for a page with text and an image', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/vitals.html`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.h.length > 0); // the module hooked in
  await page.waitForLoadState('load');
  await page.waitForTimeout(600); // the page shifts its layout at 300 ms
  await page.click('#work'); // a 120 ms interaction
  await page.waitForTimeout(200);
  const id = await pageId(page);
  await hide(page);
  const [v] = await srv.rows(
    `SELECT dom_content_loaded_ms, page_load_ms, first_paint_ms, first_contentful_paint_ms, largest_contentful_paint_ms,
            first_input_delay_ms, cumulative_layout_shift, time_to_first_byte_ms, interaction_to_next_paint_ms,
            resource_count, transfer_size_bytes, path
       FROM events WHERE event_type = 'vitals' AND page_id = ${q(id)}`
  );
  for (const k of ['first_paint_ms', 'first_contentful_paint_ms', 'largest_contentful_paint_ms', 'time_to_first_byte_ms', 'dom_content_loaded_ms', 'page_load_ms'])
    assert.ok(Number.isInteger(v[k]) && v[k] >= 0, `${k} = ${v[k]}`);
  assert.ok(v.largest_contentful_paint_ms >= v.first_contentful_paint_ms);
  assert.ok(v.page_load_ms >= v.dom_content_loaded_ms);
  assert.ok(v.cumulative_layout_shift > 0 && v.cumulative_layout_shift < 1, `CLS ${v.cumulative_layout_shift}`);
  assert.ok(v.interaction_to_next_paint_ms >= 100, `INP ${v.interaction_to_next_paint_ms}`);
  assert.ok(v.first_input_delay_ms >= 0);
  assert.ok(v.resource_count >= 3, `resources ${v.resource_count}`);
  assert.ok(v.transfer_size_bytes > 0);
  assert.equal(v.path, '/site/vitals.html');
  // The pageviews view carries the page's vitals.
  const [pv] = await srv.rows(
    `SELECT largest_contentful_paint_ms, time_to_first_byte_ms, CAST(cumulative_layout_shift AS DOUBLE) AS cls FROM pageviews WHERE page_id = ${q(id)}`
  );
  assert.equal(pv.largest_contentful_paint_ms, v.largest_contentful_paint_ms);
  assert.equal(pv.time_to_first_byte_ms, v.time_to_first_byte_ms);
  assert.ok(Math.abs(pv.cls - v.cumulative_layout_shift) < 1e-4);
  await page.context().close();
});

test('errors: JS error with source location, unhandled rejection, failed fetch and XHR, grouped', async () => {
  const page = await newPage(browser);
  await page.route('**/site/api/prices*', (r) => r.fulfill({ status: 503, body: 'down' }));
  await page.route('**/site/api/report', (r) => r.fulfill({ status: 500, body: 'boom' }));
  await page.goto(`${srv.base}/site/errors.html`);
  await trackerReady(page);
  await page.waitForFunction(() => fetch.toString().includes('network'));
  const id = await pageId(page);
  for (const b of ['#throw', '#throw-again', '#reject', '#fetch-503', '#fetch-down', '#xhr-500']) await page.click(b);
  await page.waitForTimeout(300);
  await hide(page);
  const app = `${srv.base}/site/files/app.js`;
  const rows = await srv.rows(
    `SELECT error_type, error_message, error_stack, source_file, line_number, column_number, error_fingerprint
       FROM events WHERE event_type = 'error' AND page_id = ${q(id)} ORDER BY error_type, error_message`,
    (r) => r.length >= 5
  );
  assert.equal(rows.length, 5, JSON.stringify(rows.map((r) => r.error_message)));
  const js = rows.find((r) => r.error_type == 'javascript');
  assert.match(js.error_message, /reading 'items'/);
  assert.equal(js.source_file, app);
  assert.equal(js.line_number, 4);
  assert.ok(js.column_number > 0);
  assert.match(js.error_stack, /brokenCheckout/);
  assert.match(js.error_fingerprint, /^[0-9a-f]{16}$/);
  const rej = rows.find((r) => r.error_type == 'unhandledrejection');
  assert.equal(rej.error_message, 'payment provider unavailable');
  assert.equal(rej.line_number, 7);
  const net = Object.fromEntries(rows.filter((r) => r.error_type == 'network').map((r) => [r.error_message, r]));
  const m503 = `GET ${srv.base}/site/api/prices?currency=EUR \u2192 503`;
  assert.equal(net[m503]?.source_file, app, Object.keys(net).join(' | '));
  assert.equal(net[m503].line_number, 10);
  assert.ok(net['GET http://127.0.0.1:9/unreachable \u2192 network error']);
  assert.equal(net[`POST ${srv.base}/site/api/report \u2192 500`]?.line_number, 18);

  // error_occurrences has one row per report; errors one per fingerprint.
  const occ = await srv.rows(`SELECT error_fingerprint FROM error_occurrences WHERE page_id = ${q(id)}`, (r) => r.length >= 5);
  assert.equal(occ.length, 5);
  const [group] = await srv.rows(
    `SELECT error_type, error_message, source_file, line_number, occurrence_count, sessions_affected FROM errors WHERE id = ${q(js.error_fingerprint)}`
  );
  assert.deepEqual(group, {
    error_type: 'javascript', error_message: js.error_message, source_file: app, line_number: 4, occurrence_count: 1, sessions_affected: 1,
  });
  // The same error on a second page view is a second occurrence of the same group.
  await page.goto(`${srv.base}/site/errors.html?again=1`);
  await trackerReady(page);
  await page.waitForFunction(() => fetch.toString().includes('network'));
  await page.click('#throw');
  await hide(page);
  await srv.rows(`SELECT occurrence_count FROM errors WHERE id = ${q(js.error_fingerprint)}`, (r) => r[0]?.occurrence_count == 2);
  await page.context().close();
});

test('interactions: clicks with selector, text and position; rage click; copy; counted into engagement', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/interactions.html`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.c.rage_clicks === 0);
  const id = await pageId(page);
  await page.click('#cta');
  await page.click('[data-testid=add-to-cart]');
  await page.click('#secret');
  for (let i = 0; i < 3; i++) await page.click('#broken', { delay: 10 });
  await page.evaluate(() => {
    const r = document.createRange();
    r.selectNodeContents(document.getElementById('quote'));
    getSelection().removeAllRanges();
    getSelection().addRange(r);
    document.execCommand('copy');
  });
  await hide(page);
  const rows = await srv.rows(
    `SELECT interaction_type, element_selector, element_text, element_position, props FROM events
      WHERE event_type = 'interaction' AND page_id = ${q(id)} ORDER BY event_id`,
    (r) => r.length >= 8
  );
  const clicks = rows.filter((r) => r.interaction_type == 'click');
  assert.equal(clicks.length, 6);
  assert.equal(clicks[0].element_selector, '#cta');
  assert.equal(clicks[0].element_text, 'Start free trial');
  const pos = JSON.parse(clicks[0].element_position);
  const box = await page.locator('#cta').boundingBox();
  assert.ok(Math.abs(pos.x - (box.x + box.width / 2)) <= 1 && Math.abs(pos.y - (box.y + box.height / 2)) <= 1, clicks[0].element_position);
  assert.equal(clicks[1].element_selector, 'body > main > button[data-testid="add-to-cart"]');
  assert.equal(clicks[1].element_text, 'Add to cart');
  assert.equal(clicks[2].element_selector, '#secret');
  assert.equal(clicks[2].element_text, undefined, 'no text from an input');
  const rage = rows.filter((r) => r.interaction_type == 'rage_click');
  assert.equal(rage.length, 1);
  assert.equal(rage[0].element_selector, '#broken');
  const copy = rows.filter((r) => r.interaction_type == 'copy');
  assert.equal(copy.length, 1);
  assert.equal(copy[0].element_selector, '#quote');
  assert.equal(copy[0].element_text, undefined, 'copied text is never sent');

  const [eng] = await srv.rows(`SELECT click_count, rage_clicks, copy_events FROM events WHERE event_type = 'engagement' AND page_id = ${q(id)}`);
  assert.deepEqual(eng, { click_count: 6, rage_clicks: 1, copy_events: 1 });

  const view = await srv.rows(
    `SELECT interaction_type, element_selector, metadata FROM interactions WHERE page_id = ${q(id)} AND interaction_type = 'rage_click'`
  );
  assert.deepEqual(view, [{ interaction_type: 'rage_click', element_selector: '#broken', metadata: '{"clicks":3}' }]);
  const [pv] = await srv.rows(`SELECT click_count, rage_clicks, copy_events FROM pageviews WHERE page_id = ${q(id)}`);
  assert.deepEqual(pv, { click_count: 6, rage_clicks: 1, copy_events: 1 });
  await page.context().close();
});

test('site search: query, results, location, a result click and a refinement', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/search.html?q=Running+Shoes`);
  await trackerReady(page);
  const id1 = await pageId(page);
  await srv.rows(`SELECT 1 FROM events WHERE event_type = 'search' AND page_id = ${q(id1)}`);
  await page.fill('input[name=q]', 'red running shoes');
  await page.press('input[name=q]', 'Enter');
  await page.waitForURL(/q=red/);
  await trackerReady(page);
  const id2 = await pageId(page);
  await srv.rows(`SELECT 1 FROM events WHERE event_type = 'search' AND page_id = ${q(id2)}`);
  await page.click('#results li:nth-child(2) a');
  await page.waitForURL(/result=2/);
  const rows = await srv.rows(
    `SELECT event_type, search_query, normalized_query, results_count, search_location, clicked_position, clicked_url, page_id
       FROM events WHERE event_type IN ('search', 'search_click') ORDER BY event_id`,
    (r) => r.length >= 3
  );
  assert.deepEqual(rows[0], {
    event_type: 'search', search_query: 'Running Shoes', normalized_query: 'running shoes', results_count: 3, search_location: 'header', page_id: id1,
  });
  assert.deepEqual(rows[1], {
    event_type: 'search', search_query: 'red running shoes', normalized_query: 'red running shoes', results_count: 4, search_location: 'header', page_id: id2,
  });
  assert.equal(rows[2].event_type, 'search_click');
  assert.equal(rows[2].search_query, 'red running shoes');
  assert.equal(rows[2].clicked_position, 2);
  assert.equal(rows[2].clicked_url, `${srv.base}/site/index.html?result=2`);
  assert.equal(rows[2].page_id, id2);

  const view = await srv.rows(
    `SELECT query, normalized_query, results_count, search_location, clicked_result, clicked_position, clicked_url, refined_search
       FROM site_searches ORDER BY "timestamp"`,
    (r) => r.length >= 2 && r[1].clicked_result
  );
  assert.deepEqual(view, [
    { query: 'Running Shoes', normalized_query: 'running shoes', results_count: 3, search_location: 'header', clicked_result: false, refined_search: true },
    {
      query: 'red running shoes', normalized_query: 'red running shoes', results_count: 4, search_location: 'header',
      clicked_result: true, clicked_position: 2, clicked_url: `${srv.base}/site/index.html?result=2`, refined_search: false,
    },
  ]);
  await page.context().close();
});

test('experiments: an exposure queued before load, and the variant on the conversion event', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/experiment.html`);
  await trackerReady(page);
  const id = await pageId(page);
  await page.click('#signup');
  const [x] = await srv.rows(`SELECT experiment_id, variant_id, path FROM events WHERE event_type = 'experiment' AND page_id = ${q(id)}`);
  assert.deepEqual(x, { experiment_id: 'hero-copy', variant_id: 'B', path: '/site/experiment.html' });
  const [ev] = await srv.rows(`SELECT name, props, experiment_id, variant_id FROM events WHERE name = 'Signup' AND page_id = ${q(id)}`);
  assert.deepEqual(ev, { name: 'Signup', props: '{"source":"hero"}', experiment_id: 'hero-copy', variant_id: 'B' });
  const view = await srv.rows(`SELECT experiment_id, variant_id, exposures FROM experiment_assignments WHERE experiment_id = 'hero-copy'`);
  assert.deepEqual(view, [{ experiment_id: 'hero-copy', variant_id: 'B', exposures: 1 }]);
  const [pv] = await srv.rows(`SELECT experiment_ids, variant_ids FROM pageviews WHERE page_id = ${q(id)}`);
  assert.deepEqual([pv.experiment_ids, pv.variant_ids], [['hero-copy'], ['B']]);
  await page.context().close();
});
