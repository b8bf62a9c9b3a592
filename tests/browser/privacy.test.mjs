// Privacy against a real server: form tracking never stores what a visitor typed (not in the WAL,
// not in Parquet, not in any query result), the opt-out flag and DNT/GPC send nothing, and the
// tracker leaves no cookie or stored identifier.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFootfall, launchBrowser, newPage, trackerReady, hide, pageId, q, filesContaining, sleep } from './lib/harness.mjs';

let srv, browser;
before(async () => {
  srv = await startFootfall();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

const SECRET = 'Zebra-Quartz-7781';

test('forms: start, validation error, submit and an abandoned form; typed values stored nowhere', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/forms.html`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.h.length >= 1);
  const id = await pageId(page);
  await page.fill('[name=full_name]', SECRET);
  await page.fill('[name=email]', `${SECRET}-at-example`); // not an email: Chrome quotes it in validationMessage
  await page.click('#submit'); // invalid: validation errors, no submit
  await page.fill('[name=email]', `${SECRET.toLowerCase()}@example.org`);
  await page.fill('[name=password]', `${SECRET}-pw`);
  await page.check('[name=terms]');
  await page.click('#submit');
  await page.waitForSelector('#thanks', { state: 'visible' });
  await page.fill('[name=nl_email]', `${SECRET}@news.example`);
  await page.fill('[name=nl_note]', `note ${SECRET}`);
  await hide(page);

  const rows = await srv.rows(
    `SELECT form_event, form_id, form_name, fields_total, fields_interacted, fields_completed, time_to_first_field_ms,
            time_to_submit_ms, field_interactions, error_messages
       FROM events WHERE event_type = 'form' AND page_id = ${q(id)} ORDER BY event_id`,
    (r) => r.length >= 5
  );
  assert.deepEqual(rows.map((r) => [r.form_event, r.form_id]), [
    ['start', 'signup'],
    ['error', 'signup'],
    ['submit', 'signup'],
    ['start', 'newsletter'],
    ['abandon', 'newsletter'],
  ]);
  const [start, error, submit, , abandon] = rows;
  assert.equal(start.form_name, 'signup-form');
  assert.ok(start.time_to_first_field_ms >= 0);
  assert.deepEqual(error.error_messages, ['email: typeMismatch', 'password: valueMissing', 'terms: valueMissing']);
  assert.equal(submit.fields_total, 5);
  assert.equal(submit.fields_completed, 4);
  assert.equal(submit.fields_interacted, 4);
  assert.ok(submit.time_to_submit_ms > 0);
  const fields = JSON.parse(submit.field_interactions);
  assert.deepEqual(fields.map((f) => f.field_name).sort(), ['email', 'full_name', 'password', 'terms']);
  assert.equal(fields.find((f) => f.field_name == 'email').changes_count, 2);
  assert.ok(fields.every((f) => Number.isInteger(f.time_spent_ms) && f.time_spent_ms >= 0));
  assert.equal(abandon.fields_total, 2);
  assert.equal(abandon.fields_completed, 2);
  assert.equal(abandon.time_to_submit_ms, undefined);

  const view = await srv.rows(
    `SELECT form_id, form_name, status, fields_total, fields_completed, error_messages, validation_errors
       FROM form_interactions WHERE page_id = ${q(id)} ORDER BY form_id DESC`,
    (r) => r.length >= 2
  );
  assert.deepEqual(view, [
    {
      form_id: 'signup', form_name: 'signup-form', status: 'submitted', fields_total: 5, fields_completed: 4,
      error_messages: ['email: typeMismatch', 'password: valueMissing', 'terms: valueMissing'], validation_errors: 1,
    },
    { form_id: 'newsletter', status: 'abandoned', fields_total: 2, fields_completed: 2, validation_errors: 0 },
  ]);

  // Nothing the visitor typed is anywhere: not in query results, not in the WAL or Parquet files.
  const all = JSON.stringify(await srv.sql(`SELECT * FROM events`));
  assert.ok(all.includes('newsletter'), 'the query sees the form events');
  for (const needle of [SECRET, SECRET.toLowerCase(), 'hidden-token-value'])
    assert.ok(!all.includes(needle), `"${needle}" in SQL results`);
  await srv.flush();
  for (const needle of [SECRET, SECRET.toLowerCase(), 'hidden-token-value'])
    assert.deepEqual(filesContaining(srv.dataDir, needle), [], `"${needle}" stored on disk`);
  await page.context().close();
});

test('opt-out: localStorage.footfall_ignore = "true" sends nothing; the same browser without it is tracked', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/files/hero.svg`); // a page of the origin without the tracker
  await page.evaluate(() => localStorage.setItem('footfall_ignore', 'true'));
  await page.goto(`${srv.base}/site/index.html?optout=1`);
  await trackerReady(page);
  await page.click('#buy');
  await hide(page);
  // Leave the page while still opted out (leaving sends the page's last events), then opt back in.
  await page.goto(`${srv.base}/site/files/hero.svg`);
  await page.evaluate(() => localStorage.removeItem('footfall_ignore'));
  await page.goto(`${srv.base}/site/index.html?optout=2`);
  await trackerReady(page);
  await srv.rows(`SELECT 1 FROM events WHERE query_string LIKE '%optout=2%'`);
  const leaked = await srv.sql(`SELECT event_type, name, query_string FROM events WHERE query_string LIKE '%optout=1%'`);
  assert.deepEqual(leaked, []);

  // window.footfall_ignore = true, set by the site at run time, stops tracking at once.
  await page.evaluate(() => (window.footfall_ignore = true));
  await page.click('#buy');
  await hide(page);
  await page.evaluate(() => (window.footfall_ignore = false));
  await page.evaluate(() => footfall('event', 'After Opt-in'));
  await srv.rows(`SELECT 1 FROM events WHERE name = 'After Opt-in'`);
  assert.deepEqual(await srv.sql(`SELECT name FROM events WHERE name = 'Purchase' AND query_string LIKE '%optout=2%'`), []);
  await page.context().close();
});

test('Do-Not-Track and Global Privacy Control: nothing with data-respect-dnt', async () => {
  for (const signal of ['doNotTrack', 'globalPrivacyControl']) {
    const page = await newPage(browser);
    await page.addInitScript((signal) => {
      Object.defineProperty(Navigator.prototype, signal, { get: () => (signal == 'doNotTrack' ? '1' : true), configurable: true });
    }, signal);
    await page.goto(`${srv.base}/site/dnt.html?signal=${signal}`);
    await trackerReady(page);
    await page.click('#evt');
    await hide(page);
    // The same browser on a page without data-respect-dnt is tracked: the silence above is the switch.
    await page.goto(`${srv.base}/site/index.html?signal=${signal}`);
    await trackerReady(page);
    await srv.rows(`SELECT 1 FROM events WHERE path = '/site/index.html' AND query_string LIKE ${q(`%signal=${signal}%`)}`);
    assert.deepEqual(await srv.sql(`SELECT event_type FROM events WHERE path = '/site/dnt.html' AND query_string LIKE ${q(`%signal=${signal}%`)}`), []);
    await page.context().close();
  }
});

test('no cookies and no stored identifiers after a tracked visit with every module', async () => {
  const page = await newPage(browser);
  await page.goto(`${srv.base}/site/all.html?q=shoes`);
  await trackerReady(page);
  await page.waitForFunction(() => footfall.m.h.length == 2);
  const id = await pageId(page);
  await page.click('#evt');
  await hide(page);
  await srv.rows(`SELECT 1 FROM events WHERE page_id = ${q(id)} AND event_type = 'search'`);
  await sleep(100);
  assert.deepEqual(await page.context().cookies(), []);
  assert.deepEqual(await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]), [0, 0, '']);
  await page.context().close();
});
