// Pages written for the old Queue Manager call the legacy status endpoints with jQuery's
// $.ajax from their own origin. They must keep working, unchanged.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { JQUERY, launchChromium, startPageServer, startSwitchboard } from './harness.mjs';

let sb;
let pages;
let browser;

before(async () => {
  sb = await startSwitchboard();
  pages = await startPageServer({
    '/': { type: 'text/html; charset=utf-8', body: '<!doctype html><title>Help</title><script src="/jquery.js"></script><p id="s">?</p>' },
    '/jquery.js': { type: 'text/javascript', body: JQUERY },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await pages?.close();
  await sb?.stop();
});

/** Run $.ajax in the page (origin localhost) against the server (origin 127.0.0.1). */
async function ajax(page, query) {
  return page.evaluate(
    ({ url }) => new Promise((resolve) => {
      window.jQuery.ajax({ url, dataType: 'text', cache: false })
        .done((data, _s, xhr) => resolve({ ok: true, data, type: xhr.getResponseHeader('content-type') }))
        .fail((xhr, status) => resolve({ ok: false, status, code: xhr.status }));
    }),
    { url: `${sb.base}/ITFramework/webclient?${query}` },
  );
}

test('jQuery $.ajax from another origin reads the legacy status and expert count', { timeout: 60000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${pages.origin}/`);
  assert.notEqual(new URL(pages.origin).host, new URL(sb.base).host, 'really another origin');

  let r = await ajax(page, 'getSTStatus=Demo%20Support');
  assert.deepEqual([r.ok, r.data], [true, 'STATUS_AWAY'], JSON.stringify(r));
  assert.match(r.type, /^text\/plain/);
  r = await ajax(page, 'getQueueExpertsReady=support%40example.com');
  assert.deepEqual([r.ok, r.data], [true, '0']);
  r = await ajax(page, 'getSTStatus=no-such-queue');
  assert.equal(r.data, 'na');

  // An expert of Demo Support signs in (the web client, in the same browser).
  const expert = await browser.newPage();
  await expert.goto(`${sb.base}/`);
  await expert.fill('[data-testid=login-address]', 'judy@example.com');
  await expert.fill('[data-testid=login-password]', 'demo');
  await expert.click('[data-testid=login-submit]');
  let status = '';
  for (let i = 0; i < 100 && status !== 'STATUS_ACTIVE'; i++) {
    status = (await ajax(page, 'getSTStatus=SUPPORT')).data;
    if (status !== 'STATUS_ACTIVE') await page.waitForTimeout(100);
  }
  assert.equal(status, 'STATUS_ACTIVE', 'the expert is ready');
  assert.equal((await ajax(page, 'getQueueExpertsReady=Demo+Support')).data, '1');
  await expert.close();
  await page.close();
});

test('Switchboard.onPresence on a page of another origin follows an expert', { timeout: 60000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${pages.origin}/`);
  await page.addScriptTag({ url: `${sb.base}/sdk/switchboard.js` });
  // One element per user; the callback writes what it hears (as text).
  await page.evaluate(() => {
    for (const user of ['mallory@example.com', 'bob@example.com']) {
      const p = document.createElement('p');
      p.id = user.split('@')[0];
      document.body.appendChild(p);
      window.Switchboard.onPresence(user, (info) => { p.textContent = `${info.state} ${info.sametime || ''}`.trim(); });
    }
  });
  await page.waitForFunction(() => document.getElementById('mallory').textContent === 'offline STATUS_OFFLINE', null, { timeout: 15000 });
  // Bob is not an expert: his presence is not public.
  await page.waitForFunction(() => document.getElementById('bob').textContent === 'unknown', null, { timeout: 15000 });

  const expert = await browser.newPage();
  await expert.goto(`${sb.base}/`);
  await expert.fill('[data-testid=login-address]', 'mallory@example.com');
  await expert.fill('[data-testid=login-password]', 'demo');
  await expert.click('[data-testid=login-submit]');
  await page.waitForFunction(() => document.getElementById('mallory').textContent === 'available STATUS_ACTIVE', null, { timeout: 15000 });
  await expert.close();
  await page.waitForFunction(() => document.getElementById('mallory').textContent === 'offline STATUS_OFFLINE', null, { timeout: 15000 });
  await page.close();
});
