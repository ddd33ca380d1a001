// End-to-end test of expert queues ("click to chat") in headless Chromium: the click-to-chat
// widget (/sdk/switchboard.js) embedded in a page of ANOTHER origin, and the expert console
// of the web client. The real server, Debian's Chromium, one browser context per person.
//
//   cd tests/browser && npm install && node --test queues.test.mjs
//
// The host page is served by a tiny Node HTTP server at http://localhost:<p2>/ while
// Switchboard listens on http://127.0.0.1:<p1>/: different origins, as on a real website.
//
// Environment: as chat.test.mjs —
//   SWITCHBOARD_BIN  server binary (default <repo>/target/debug/switchboard)
//   SWITCHBOARD_URL  use an already running server (started with --demo, fresh) instead of starting one
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   if set, screenshots are written there
//   SERVER_START_TIMEOUT_MS  how long to wait for "listening http://…" (default 30000)
//   WEB_DIR          serve index.html, app.js, app.css and sdk/switchboard.{js,css} from this
//                    folder instead of the copies compiled into the server (no rebuild needed)

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import {
  assertNoMarkup as assertNoMarkupIn, launchChromium, loginAt, makeCheck, newContextAt, PageClient,
  pollingEvery, restAt, saveScreenshot, signInAt, useSwitchboard, waitForMessage, waitIn,
} from './harness.mjs';

const PASSWORD = 'demo';
const ADMIN = 'admin@example.com';
const JUDY = 'judy@example.com';
const MALLORY = 'mallory@example.com';
const FRANK = 'frank@example.com';
const ALICE = 'alice@example.com';
const HOSTILE = '<img src=x onerror=alert(1)>';

let sb = null; // the server (SWITCHBOARD_URL, or one started here): see harness.mjs
let base = '';
// Shared helpers (harness.mjs), bound to this file's server.
const rest = (method, p, opts) => restAt(base, method, p, opts);
const login = (address) => loginAt(base, address, PASSWORD);
const signIn = (c, address) => signInAt(base, c, address, PASSWORD);
let hostServer = null; // the other origin's web server
let hostUrl = '';
let browser = null;
const clients = [];
let seeker = null; // the website visitor's browser
let judy = null;
let mallory = null;
let frank = null;
let chatC = null; // the chat of test c, transferred in test d

// ------------------------------------------------------------------ the other origin

/** The host page: a plain intranet page that embeds the widget from Switchboard's origin. */
function hostPage() {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ACME intranet</title></head>
<body>
<h1>ACME intranet</h1>
<p>Problems with your laptop? Ask IT.</p>
<div id="help"></div>
<script src="${base}/sdk/switchboard.js"></script>
<script>window.__sbButton = Switchboard.button(document.getElementById('help'), {queue: 'support', label: 'Chat with IT'})</script>
</body></html>`;
}

async function startHostServer() {
  hostServer = createServer((req, res) => {
    if (req.url === '/' || req.url.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(hostPage());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  hostServer.listen(0, '127.0.0.1');
  await once(hostServer, 'listening');
  // "localhost" here, "127.0.0.1" for Switchboard: the origins really differ.
  hostUrl = `http://localhost:${hostServer.address().port}/`;
}

// ------------------------------------------------------------------ REST helpers (Node side)

/** Replaces Demo Support, keeping its members (and welcome text), with `changes` applied. */
async function putSupport(changes) {
  const token = await login(ADMIN);
  const cur = await rest('GET', '/api/v1/queues/support', { token });
  assert.equal(cur.status, 200, `GET /api/v1/queues/support: ${cur.text}`);
  const members = cur.json.members.map((m) => ({ address: m.address, priority: m.priority, skills: m.skills || [] }));
  const body = {
    display_name: 'Demo Support',
    method: cur.json.method,
    offer_timeout_s: cur.json.offer_timeout_s,
    welcome: cur.json.welcome || '',
    members,
    ...changes,
  };
  const r = await rest('PUT', '/api/v1/queues/support', { token, body });
  assert.ok(r.status === 200 || r.status === 201, `PUT /api/v1/queues/support: ${r.status} ${r.text}`);
  return r.json;
}

// ------------------------------------------------------------------ browser clients

async function newClient(name, viewport = { width: 1280, height: 800 }) {
  const context = await newContextAt(browser, base, { viewport, acceptDownloads: true });
  const c = new PageClient(name, context, await context.newPage());
  clients.push(c);
  return c;
}

/** Polls an async check in Node (every 100 ms) until it returns a truthy value. */
const eventually = pollingEvery(100);

/** A legacy Queue Manager call made by the host page itself (cross-origin fetch). */
function legacy(page, query) {
  return page.evaluate(async ([b, q]) => {
    const r = await fetch(`${b}/ITFramework/webclient?${q}`);
    return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
  }, [base, query]);
}

async function openSeekerPage() {
  if (!seeker) seeker = await newClient('seeker', { width: 1100, height: 800 });
  await seeker.page.goto(hostUrl);
  await seeker.page.locator('[data-testid=sbw-button]').waitFor({ state: 'visible' });
  const origin = await seeker.page.evaluate(() => location.origin);
  assert.notEqual(origin, new URL(base).origin, 'the host page is on another origin than Switchboard');
}

async function refreshWidget() {
  await seeker.page.evaluate(() => Switchboard.refresh());
}

/** The seeker fills the pre-chat form; returns nothing (the chat id comes from the offer). */
async function seekerStartsChat(name, question, email = '') {
  const p = seeker.page;
  await p.click('[data-testid=sbw-button]');
  await p.locator('[data-testid=sbw-name]').waitFor({ state: 'visible' });
  await p.fill('[data-testid=sbw-name]', name);
  await p.fill('[data-testid=sbw-email]', email);
  await p.fill('[data-testid=sbw-question]', question);
  await p.click('[data-testid=sbw-start]');
  await p.locator('[data-testid=sbw-status]').waitFor({ state: 'visible' });
}

async function waitForOffer(c) {
  const offer = c.page.locator('[data-testid=offer]').first();
  await offer.waitFor({ state: 'visible' });
  return Number(await offer.getAttribute('data-chat'));
}

async function waitSeekerStatus(re) {
  await waitIn(seeker.page, (src) => new RegExp(src).test(document.querySelector('[data-testid=sbw-status]')?.textContent || ''), re.source);
}

async function waitForWidgetMessage(text, acked = true) {
  await waitIn(seeker.page, ([t, a]) => [...document.querySelectorAll(`[data-testid=sbw-message]${a ? '[data-id]' : ''} [data-testid=sbw-message-body]`)]
    .some((e) => e.textContent === t), [text, acked]);
}

const screenshot = (c, name) => saveScreenshot(c, name, { fullPage: false });

/** No <img>, no injected script run, no dialog in `c`'s page. */
const assertNoMarkup = (c) => assertNoMarkupIn(c, { xss: true });

/** Runs a test body; on failure prints what the pages and the server said. */
const check = makeCheck({ clients, tail: () => sb?.tail(), screenshot });

// ------------------------------------------------------------------ lifecycle

before(async () => {
  sb = await useSwitchboard();
  base = sb.base;
  await startHostServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => {});
  if (hostServer) { hostServer.closeAllConnections?.(); hostServer.close(); }
  await sb?.stop();
});

// ------------------------------------------------------------------ tests

check('a. cross-origin status: busy with no expert, open once Judy signs in', async () => {
  await openSeekerPage();
  const p = seeker.page;

  // No support expert is signed in yet.
  const st = await legacy(p, 'getSTStatus=Demo%20Support');
  assert.equal(st.status, 200);
  assert.equal(st.body, 'STATUS_AWAY', 'open, but nobody ready');
  assert.match(st.type || '', /^text\/plain/);
  assert.equal((await legacy(p, 'getQueueExpertsReady=support')).body, '0');
  assert.equal((await legacy(p, 'getSTStatus=no-such-queue')).body, 'na');
  assert.equal(await p.evaluate(() => Switchboard.expertsReady('support')), 0);
  assert.equal(await p.evaluate(() => Switchboard.expertsReady('no-such-queue')), null);
  const status = await p.evaluate(() => Switchboard.queueStatus('support'));
  assert.equal(status.state, 'busy');
  assert.equal(status.experts_ready, 0);
  // Queue experts' presence is public by default (public_presence = experts); others' is not.
  const pres = await p.evaluate(() => new Promise((r) => Switchboard.onPresence('judy@example.com', r)));
  assert.deepEqual([pres.state, pres.sametime], ['offline', 'STATUS_OFFLINE']);
  const other = await p.evaluate(() => new Promise((r) => Switchboard.onPresence('alice@example.com', r)));
  assert.equal(other.state, 'unknown');

  // The widget shows it, and still lets the visitor wait.
  const btn = p.locator('[data-testid=sbw-button]');
  await waitIn(p, () => document.querySelector('[data-testid=sbw-button]').getAttribute('data-state') === 'busy');
  assert.match(await btn.textContent(), /Chat with IT/);
  assert.match(await btn.textContent(), /busy/i);
  assert.equal(await btn.isDisabled(), false, 'busy is still open: the button works');

  // Judy signs in to the web client (available by default).
  judy = await newClient('judy');
  await signIn(judy, JUDY);
  await eventually('getSTStatus = STATUS_ACTIVE', async () => (await legacy(p, 'getSTStatus=Demo%20Support')).body === 'STATUS_ACTIVE');
  assert.equal((await legacy(p, 'getQueueExpertsReady=support')).body, '1');
  assert.equal((await legacy(p, 'getQueueExpertsReady=Demo%20Support')).body, '1', 'by display name too');
  assert.equal(await p.evaluate(() => Switchboard.expertsReady('support')), 1);

  await refreshWidget();
  await waitIn(p, () => document.querySelector('[data-testid=sbw-button]').getAttribute('data-state') === 'open');
  assert.doesNotMatch(await btn.textContent(), /busy/i);

  // Judy's console lists her queue as open.
  await judy.page.click('[data-testid=queues-tab]');
  await judy.page.locator('[data-testid=queue][data-queue=support][data-state=open]').waitFor({ state: 'visible' });
  assert.equal(await judy.page.isChecked('[data-testid=queue-ready]'), true, 'available = ready');
  // The availability toggle is her presence: off = busy = not ready; back on = ready.
  await judy.page.uncheck('[data-testid=queue-ready]');
  assert.equal(await judy.page.inputValue('[data-testid=presence-select]'), 'busy');
  await eventually('no expert ready', async () => (await legacy(p, 'getQueueExpertsReady=support')).body === '0');
  await judy.page.check('[data-testid=queue-ready]');
  assert.equal(await judy.page.inputValue('[data-testid=presence-select]'), 'available');
  await eventually('Judy ready again', async () => (await legacy(p, 'getQueueExpertsReady=support')).body === '1');
  await screenshot(seeker, 'widget-button');
});

check('b. a visitor chats with Judy through the widget: offer, accept, messages, typing, end, survey', async () => {
  if (!judy) { judy = await newClient('judy'); await signIn(judy, JUDY); }
  await openSeekerPage();
  const s = seeker.page;
  const j = judy.page;
  const question = `My VPN fails ${HOSTILE}`;
  const name = 'Bob <b>Visitor</b>';
  await seekerStartsChat(name, question, 'bob.visitor@example.org');

  // Waiting: place in line.
  await waitIn(s, () => /in line|next/i.test(document.querySelector('[data-testid=sbw-position]')?.textContent || ''));

  // Judy: the offer, with the seeker's name and question as plain text, and a countdown.
  const chat = await waitForOffer(judy);
  assert.ok(chat > 0, 'the offer names its chat');
  const offer = j.locator(`[data-testid=offer][data-chat="${chat}"]`);
  assert.match(await offer.textContent(), /Demo Support/);
  assert.ok((await offer.textContent()).includes(name), 'seeker name shown literally');
  assert.equal(await offer.locator('[data-testid=offer-question]').textContent(), question);
  const c1 = await offer.locator('[data-testid=offer-countdown]').textContent();
  assert.match(c1, /^\d+ s$/);
  await waitIn(j, ([id, first]) => {
    const e = document.querySelector(`[data-testid=offer][data-chat="${id}"] [data-testid=offer-countdown]`);
    return e && e.textContent !== first;
  }, [chat, c1], 5000); // it counts down
  await assertNoMarkup(judy);
  // Her Queues tab tells the truth from where she stands: she is ready and has an offer open
  // (the public state is "busy": no expert could take one more chat right now).
  await j.click('[data-testid=queues-tab]');
  const row = j.locator('[data-testid=queue][data-queue=support]');
  await waitIn(j, () => /offer open/i.test(document.querySelector('[data-testid=queue][data-queue=support]')?.textContent || ''));
  assert.doesNotMatch(await row.textContent(), /no expert ready/i, 'not "no expert ready" while she is ready');
  assert.equal(await j.isChecked('[data-testid=queue-ready]'), true);
  await screenshot(judy, 'expert-offer');

  await offer.locator('[data-testid=offer-accept]').click();
  // The visitor is told the expert's name (isolated: a name may be written right to left),
  // never the expert's e-mail address.
  await waitSeekerStatus(/^Connected to Judy Jones$/);
  assert.equal(await s.locator('[data-testid=sbw-status] bdi').textContent(), 'Judy Jones');
  await offer.waitFor({ state: 'detached' });

  // Judy's chat opens by itself: a queue conversation with a status bar.
  await waitIn(j, () => document.querySelector('[data-testid=chat]').getAttribute('data-kind') === 'queue');
  await j.locator('[data-testid=queue-chat-status]').waitFor({ state: 'visible' });
  await j.locator('[data-testid=end-queue-chat]').waitFor({ state: 'visible' });
  await j.locator('[data-testid=transfer-target]').waitFor({ state: 'visible' });

  // Seeker types: Judy sees it; then the hostile message arrives as text.
  await s.fill('[data-testid=sbw-composer]', 'hel');
  await s.locator('[data-testid=sbw-composer]').pressSequentially('lo');
  await waitIn(j, () => /typing/i.test(document.querySelector('[data-testid=typing]').textContent));
  await s.fill('[data-testid=sbw-composer]', HOSTILE);
  await s.click('[data-testid=sbw-send]');
  await waitForWidgetMessage(HOSTILE);
  await waitForMessage(j, HOSTILE);
  await waitIn(j, () => document.querySelector('[data-testid=typing]').textContent.trim() === '');

  // Judy types and answers.
  await j.fill('[data-testid=composer]', 'Let me ');
  await j.locator('[data-testid=composer]').pressSequentially('check');
  await waitIn(s, () => /typing/i.test(document.querySelector('[data-testid=sbw-typing]').textContent));
  const answer = 'Have you tried switching it off and on again?';
  await j.fill('[data-testid=composer]', answer);
  await j.click('[data-testid=send]');
  await waitForMessage(j, answer);
  await waitForWidgetMessage(answer);
  await waitIn(s, () => document.querySelector('[data-testid=sbw-typing]').textContent.trim() === '');
  const widgetBodies = await s.$$eval('[data-testid=sbw-message] [data-testid=sbw-message-body]', (els) => els.map((e) => e.textContent));
  assert.deepEqual(widgetBodies, [HOSTILE, answer]);
  const senders = await s.$$eval('[data-testid=sbw-message] .sbw-sender', (els) => els.map((e) => e.textContent));
  assert.deepEqual(senders, ['You', 'Judy Jones']);
  assert.doesNotMatch(await s.locator('[data-testid=sbw-panel]').textContent(), /judy@example\.com/, 'the visitor never sees the expert\'s address');
  for (const c of [judy, seeker]) await assertNoMarkup(c);
  await screenshot(seeker, 'widget-chat');
  await screenshot(judy, 'expert-chat');

  // Transcript.
  const [download] = await Promise.all([s.waitForEvent('download'), s.click('[data-testid=sbw-transcript]')]);
  const transcript = readFileSync(await download.path(), 'utf8');
  assert.ok(transcript.includes(HOSTILE) && transcript.includes(answer), `transcript has both messages:\n${transcript}`);
  assert.match(download.suggestedFilename(), /\.txt$/);

  // Judy ends it: the seeker sees it closed and gets the survey.
  await j.click('[data-testid=end-queue-chat]');
  await waitSeekerStatus(/ended/i);
  await s.locator('[data-testid=sbw-survey]').waitFor({ state: 'visible' });
  assert.equal(await s.locator('[data-testid=sbw-composer]').isVisible(), false, 'no composer after the end');
  await waitIn(j, () => /ended/i.test(document.querySelector('[data-testid=queue-chat-status]').textContent));
  await s.click('[data-testid=sbw-star][data-value="4"]');
  await s.fill('[data-testid=sbw-survey-comment]', 'Quick, thanks');
  await s.click('[data-testid=sbw-survey-submit]');
  await s.locator('[data-testid=sbw-survey-thanks]').waitFor({ state: 'visible' });
  const survey = await s.evaluate(() => window.__sbSurvey);
  assert.equal(survey.rating, 4);
  assert.equal(survey.comment, 'Quick, thanks');
  assert.equal(survey.chat, chat);
  for (const c of [judy, seeker]) await assertNoMarkup(c);
});

check('c. serial routing: Judy lets the offer time out, it goes to Mallory, who accepts', async () => {
  const saved = await putSupport({ method: 'serial', offer_timeout_s: 2 });
  assert.equal(saved.method, 'serial');
  assert.equal(saved.offer_timeout_s, 2);
  const prio = Object.fromEntries(saved.members.map((m) => [m.address, m.priority]));
  assert.ok(prio[JUDY] < prio[MALLORY], `Judy before Mallory: ${JSON.stringify(prio)}`);

  if (!judy) { judy = await newClient('judy'); await signIn(judy, JUDY); }
  mallory = await newClient('mallory');
  await signIn(mallory, MALLORY);
  await eventually('two experts ready', async () => (await legacy(judy.page, 'getQueueExpertsReady=support')).body === '2');

  await openSeekerPage();
  await seekerStartsChat('Carla Visitor', 'The printer on floor 3 is on fire');
  const chat = await waitForOffer(judy); // priority 0 first
  chatC = chat;
  assert.equal(await mallory.page.locator('[data-testid=offer]').count(), 0, 'serial: Mallory is not offered it yet');
  // Judy does nothing: after 2 s the offer leaves her console, marked as timed out.
  await judy.page.locator(`[data-testid=offer][data-chat="${chat}"]`).waitFor({ state: 'detached', timeout: 8000 });
  await judy.page.locator(`[data-testid=offer-gone][data-chat="${chat}"][data-reason=timed_out]`).waitFor({ state: 'attached', timeout: 2000 });
  // Mallory gets it and accepts.
  const m = mallory.page.locator(`[data-testid=offer][data-chat="${chat}"]`);
  await m.waitFor({ state: 'visible' });
  await m.locator('[data-testid=offer-accept]').click();
  await waitSeekerStatus(/^Connected to Mallory Moore$/);
  await waitIn(mallory.page, () => document.querySelector('[data-testid=chat]').getAttribute('data-kind') === 'queue');
  await seeker.page.fill('[data-testid=sbw-composer]', 'hello mallory');
  await seeker.page.click('[data-testid=sbw-send]');
  await waitForMessage(mallory.page, 'hello mallory');
  await mallory.page.fill('[data-testid=composer]', 'Mallory here, looking into it');
  await mallory.page.click('[data-testid=send]');
  await waitForWidgetMessage('Mallory here, looking into it');
});

check('d. transfer: Mallory hands the chat to Demo Sales, Frank accepts', async () => {
  assert.ok(chatC && mallory, 'needs the chat of test c');
  frank = await newClient('frank');
  await signIn(frank, FRANK);
  const mp = mallory.page;
  await mp.locator('[data-testid=transfer-target]').waitFor({ state: 'visible' });
  await mp.fill('[data-testid=transfer-target]', 'sales');
  await mp.click('[data-testid=transfer-submit]');

  const f = frank.page.locator(`[data-testid=offer][data-chat="${chatC}"]`);
  await f.waitFor({ state: 'visible' });
  assert.match(await f.textContent(), /printer on floor 3/);
  await f.locator('[data-testid=offer-accept]').click();
  await waitSeekerStatus(/^Connected to Frank Fischer$/);

  // Frank sees the history and can answer; Mallory is out of it.
  await waitIn(frank.page, () => document.querySelector('[data-testid=chat]').getAttribute('data-kind') === 'queue');
  await waitForMessage(frank.page, 'hello mallory');
  await frank.page.fill('[data-testid=composer]', 'Frank here, from sales');
  await frank.page.click('[data-testid=send]');
  await waitForWidgetMessage('Frank here, from sales');
  await waitIn(seeker.page, () => [...document.querySelectorAll('[data-testid=sbw-notice]')].some((n) => /now chatting with Frank Fischer/.test(n.textContent)));
  assert.doesNotMatch(await seeker.page.locator('[data-testid=sbw-panel]').textContent(), /@example\.com/, 'no expert address after the transfer either');
  // Each expert's words under their own name, in the page and in the transcript.
  const senders = await seeker.page.$$eval('[data-testid=sbw-message] .sbw-sender', (els) => els.map((e) => e.textContent));
  assert.deepEqual(senders, ['You', 'Mallory Moore', 'Frank Fischer']);
  const [download] = await Promise.all([seeker.page.waitForEvent('download'), seeker.page.click('[data-testid=sbw-transcript]')]);
  const transcript = readFileSync(await download.path(), 'utf8');
  assert.match(transcript, /\] Mallory Moore: Mallory here, looking into it$/m, transcript);
  assert.match(transcript, /\] Frank Fischer: Frank here, from sales$/m, transcript);
  assert.doesNotMatch(transcript, /@example\.com/, 'no expert address in the transcript');
  assert.equal(await mp.locator(`[data-testid=conversation]`).count(), 0, 'Mallory left the chat');

  // After a reload Frank's console still knows the chat: status, question, End chat.
  await frank.page.reload();
  await waitIn(frank.page, () => document.querySelector('[data-testid=chat]').getAttribute('data-kind') === 'queue');
  await frank.page.locator('[data-testid=end-queue-chat]').waitFor({ state: 'visible' });
  assert.match(await frank.page.textContent('[data-testid=queue-chat-question]'), /printer on floor 3/);
  await frank.page.click('[data-testid=end-queue-chat]');
  await waitSeekerStatus(/ended/i);
});

check('e. closing the queue disables the widget button', async () => {
  await openSeekerPage(); // a fresh page: no chat in progress
  const p = seeker.page;
  await refreshWidget();
  assert.equal(await p.locator('[data-testid=sbw-button]').isDisabled(), false);
  await putSupport({ closed: true });
  assert.equal((await legacy(p, 'getSTStatus=support')).body, 'STATUS_DND');
  await refreshWidget();
  await waitIn(p, () => {
    const b = document.querySelector('[data-testid=sbw-button]');
    return b.disabled && b.getAttribute('data-state') === 'closed' && /closed/i.test(b.textContent);
  });
  await screenshot(seeker, 'widget-closed');
});

check('f. a signed-in employee asks Demo Sales from the web client ("Get help")', async () => {
  if (!frank) { frank = await newClient('frank'); await signIn(frank, FRANK); }
  const alice = await newClient('alice');
  await signIn(alice, ALICE);
  const a = alice.page;
  assert.equal(await a.locator('[data-testid=queues-tab]').isVisible(), false, 'not an expert: no Queues tab');
  await a.click('[data-testid=get-help]');
  await a.locator('[data-testid=help-queue] option[value=sales]').waitFor({ state: 'attached' });
  await a.selectOption('[data-testid=help-queue]', 'sales');
  await a.fill('[data-testid=help-question]', 'Price list for 2027?');
  await a.click('[data-testid=help-submit]');
  await waitIn(a, () => document.querySelector('[data-testid=chat]').getAttribute('data-kind') === 'queue');
  await waitIn(a, () => /Waiting|Connected/.test(document.querySelector('[data-testid=queue-chat-status]').textContent));

  const chat = await waitForOffer(frank);
  await frank.page.locator(`[data-testid=offer][data-chat="${chat}"] [data-testid=offer-accept]`).click();
  // Alice is told the expert's display name (isolated), not the address.
  await waitIn(a, () => document.querySelector('[data-testid=queue-chat-status]').textContent === 'Connected to Frank Fischer');
  assert.equal(await a.locator('[data-testid=queue-chat-status] bdi').textContent(), 'Frank Fischer');
  await a.fill('[data-testid=composer]', 'thanks frank');
  await a.click('[data-testid=send]');
  await waitForMessage(frank.page, 'thanks frank');
  await a.click('[data-testid=end-queue-chat]');
  await waitIn(frank.page, () => /ended/i.test(document.querySelector('[data-testid=queue-chat-status]').textContent));
});
