// End-to-end test of the click-to-chat widget (/sdk/switchboard.js) against the queue settings
// an admin configures through the REST API: the pre-chat form, business hours, and offline
// messages. The widget is embedded in pages of ANOTHER origin (http://localhost:<p2>/ while
// Switchboard listens on http://127.0.0.1:<p1>/); the real server, Debian's Chromium.
//
//   cd tests/browser && npm install && node --test widget.test.mjs
//
// Environment: as queues.test.mjs —
//   SWITCHBOARD_BIN  server binary (default <repo>/target/debug/switchboard)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   if set, screenshots are written there
//   WEB_DIR          serve sdk/switchboard.{js,css} from this folder instead of the copies
//                    compiled into the server (no rebuild needed)

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNoMarkup as assertNoMarkupIn, launchChromium, loginAt, makeCheck, newContextAt, PageClient,
  pollingEvery, restAt, saveScreenshot, signInAt, startPageServer, startSwitchboard, waitIn,
} from './harness.mjs';

const PASSWORD = 'demo';
const ADMIN = 'admin@example.com';
const JUDY = 'judy@example.com';
const MALLORY = 'mallory@example.com';
const GRACE = 'grace@example.com';
const HOSTILE = '<img src=x onerror=alert(1)>';

let sb = null;
let base = '';
// Shared helpers (harness.mjs), bound to this file's server.
const rest = (method, p, opts) => restAt(base, method, p, opts);
const login = (address) => loginAt(base, address, PASSWORD);
let pages = null; // the other origin's page server
const PAGES = {};
let browser = null;
const clients = [];

// ------------------------------------------------------------------ host pages

function hostPage(queue, label, at = base) {
  return {
    type: 'text/html; charset=utf-8',
    body: `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ACME ${queue}</title></head>
<body>
<h1>ACME intranet</h1>
<div id="help"></div>
<script src="${at}/sdk/switchboard.js"></script>
<script>window.__sbButton = Switchboard.button(document.getElementById('help'), {queue: ${JSON.stringify(queue)}, label: ${JSON.stringify(label)}})</script>
</body></html>`,
  };
}

// ------------------------------------------------------------------ REST helpers (Node side)

/** Creates or replaces queue `id` as admin@example.com; returns the saved definition. */
async function putQueue(id, body) {
  const token = await login(ADMIN);
  const r = await rest('PUT', `/api/v1/queues/${id}`, { token, body });
  assert.ok(r.status === 200 || r.status === 201, `PUT /api/v1/queues/${id} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
  return r.json;
}

// ------------------------------------------------------------------ browser clients

/** A PageClient that also counts the guest chats its page asks for. */
class Client extends PageClient {
  constructor(name, context, page) {
    super(name, context, page);
    this.guestPosts = 0; // POST /api/v1/queues/{id}/guest sent by the page
    page.on('request', (r) => {
      if (r.method() === 'POST' && /\/api\/v1\/queues\/[^/]+\/guest$/.test(new URL(r.url()).pathname)) this.guestPosts++;
    });
  }
}

async function newClient(name) {
  const context = await newContextAt(browser, base, { viewport: { width: 1100, height: 800 } });
  const c = new Client(name, context, await context.newPage());
  clients.push(c);
  return c;
}

/**
 * A visitor's browser on the host page `p` of the other origin, with the widget button shown
 * (`init`: a script run in every page of it before the page's own).
 */
async function openSeeker(name, p, { init = null } = {}) {
  const c = await newClient(name);
  if (init) await c.context.addInitScript(init);
  await c.page.goto(`${pages.origin}${p}`);
  await c.page.locator('[data-testid=sbw-button]').waitFor({ state: 'visible' });
  assert.notEqual(await c.page.evaluate(() => location.origin), new URL(base).origin, 'the host page is on another origin');
  return c;
}

/**
 * An expert signed in through a plain WebSocket (a page of the other origin holds it, so no
 * console code is involved); every frame is kept in window.__frames.
 */
async function expertSocket(address, at = base) {
  const token = await loginAt(at, address, PASSWORD);
  const c = await newClient(`${address} (socket)`);
  await c.page.goto(`${pages.origin}/blank`);
  const url = `${at.replace(/^http/, 'ws')}/api/v1/ws?token=${encodeURIComponent(token)}&presence=none`;
  await c.page.evaluate((u) => new Promise((resolve, reject) => {
    window.__frames = [];
    const ws = new WebSocket(u);
    window.__ws = ws;
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(m.data); } catch (_) { return; }
      window.__frames.push(f);
      if (f.type === 'ready') resolve();
    };
    ws.onclose = (e) => reject(new Error(`socket closed: ${e.code} ${e.reason}`));
  }), url);
  c.token = token;
  return c;
}

/** Polls an async check in Node (every 100 ms) until it returns a truthy value. */
const eventually = pollingEvery(100);

async function waitError(page, re) {
  await waitIn(page, (src) => {
    const e = document.querySelector('[data-testid=sbw-error]');
    return e && !e.hidden && new RegExp(src, 'i').test(e.textContent);
  }, re.source);
}

async function waitStatus(page, re) {
  await waitIn(page, (src) => new RegExp(src, 'i').test(document.querySelector('[data-testid=sbw-status]')?.textContent || ''), re.source);
}

/** Names may hold addresses: the file name keeps word characters, the rest becomes dashes. */
const screenshot = (c, name) => saveScreenshot(c, name.replace(/\W+/g, '-'), { fullPage: false });

/** No <img>, no injected script run, no dialog in `c`'s page. */
const assertNoMarkup = (c) => assertNoMarkupIn(c, { xss: true });

/** Runs a test body; on failure prints what the pages and the server said. */
const check = makeCheck({ clients, tail: () => sb?.tail(), screenshot });

// ------------------------------------------------------------------ lifecycle

before(async () => {
  sb = await startSwitchboard();
  base = sb.base;
  PAGES['/blank'] = { type: 'text/html; charset=utf-8', body: '<!doctype html><title>blank</title>' };
  PAGES['/form'] = hostPage('wform', 'Ask about your plan');
  PAGES['/hours'] = hostPage('whours', 'Chat with HR');
  PAGES['/offline'] = hostPage('woff', 'Chat with facilities');
  PAGES['/bidi'] = hostPage('wbidi', 'Chat with the desk');
  pages = await startPageServer(PAGES);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => {});
  if (pages) await pages.close();
  await sb?.stop();
});

// ------------------------------------------------------------------ tests

check('a. pre-chat form: the queue\'s fields are shown, required ones enforced, answers reach the expert', async () => {
  const form = [
    { name: 'plan', label: `Plan ${HOSTILE}`, kind: 'select', required: true, options: ['Basic', HOSTILE] },
    { name: 'contact', label: 'Your e-mail', kind: 'email', required: false },
    { name: 'details', label: 'Details', kind: 'textarea', required: false },
  ];
  const queue = {
    display_name: 'Widget Form', method: 'broadcast', offer_timeout_s: 60, welcome: 'Welcome to plan support',
    members: [{ address: JUDY, priority: 0, skills: [] }],
    form, wrap_up_s: 30, wrap_up_tags: ['resolved'],
  };
  const saved = await putQueue('wform', queue);
  assert.deepEqual(saved.form.map((f) => f.name), ['plan', 'contact', 'details'], `saved form: ${JSON.stringify(saved.form)}`);
  const judy = await expertSocket(JUDY);

  const pub = await rest('GET', '/api/v1/queues/wform/widget');
  assert.equal(pub.status, 200, pub.text);
  assert.equal(pub.json.id, 'wform');
  assert.equal(pub.json.form.length, 3);
  assert.equal(pub.json.open_now, true);

  const seeker = await openSeeker('form seeker', '/form');
  const s = seeker.page;
  await waitIn(s, () => document.querySelector('[data-testid=sbw-button]').getAttribute('data-state') === 'open');
  await s.click('[data-testid=sbw-button]');
  const plan = s.locator('[data-testid=sbw-field][data-name=plan]');
  await plan.waitFor({ state: 'visible' });

  // The fields, as text: labels with a required mark, the select's options, an email input.
  assert.equal(await s.locator('[data-testid=sbw-field-label][data-name=plan]').textContent(), `Plan ${HOSTILE} *`);
  assert.equal(await s.locator('[data-testid=sbw-field-label][data-name=contact]').textContent(), 'Your e-mail');
  assert.equal(await plan.evaluate((e) => e.tagName), 'SELECT');
  assert.equal(await plan.evaluate((e) => e.required), true);
  assert.deepEqual(await plan.evaluate((e) => [...e.options].filter((o) => o.value).map((o) => o.textContent)), ['Basic', HOSTILE]);
  const contact = s.locator('[data-testid=sbw-field][data-name=contact]');
  assert.equal(await contact.getAttribute('type'), 'email');
  assert.equal(await contact.evaluate((e) => e.required), false);
  assert.equal(await s.locator('[data-testid=sbw-field][data-name=details]').evaluate((e) => e.tagName), 'TEXTAREA');
  assert.equal(await s.textContent('[data-testid=sbw-intro]'), 'Welcome to plan support');
  await assertNoMarkup(seeker);

  // Without the required select the widget refuses, and sends nothing.
  await s.fill('[data-testid=sbw-name]', 'Bob <b>Visitor</b>');
  await s.fill('[data-testid=sbw-question]', 'Can I upgrade?');
  await s.click('[data-testid=sbw-start]');
  await waitError(s, /Plan/);
  assert.equal(await plan.evaluate((e) => e.matches(':invalid')), true);
  assert.equal(await s.locator('[data-testid=sbw-form]').isVisible(), true);
  assert.equal(seeker.guestPosts, 0, 'no chat request without the required field');

  // A malformed e-mail is refused by the browser too.
  await plan.selectOption(HOSTILE);
  await contact.fill('bob at example');
  await s.click('[data-testid=sbw-start]');
  await waitError(s, /e-mail/);
  assert.equal(seeker.guestPosts, 0, 'no chat request with a malformed e-mail');
  await contact.fill('bob@example.org');

  // Meanwhile the admin adds a required field: the server answers 400, the widget says so,
  // keeps what was typed, and shows the new field.
  await putQueue('wform', { ...queue, form: [...form, { name: 'ticket', label: 'Ticket number', kind: 'text', required: true }] });
  await s.click('[data-testid=sbw-start]');
  await waitError(s, /ticket/);
  assert.equal(seeker.guestPosts, 1);
  await s.locator('[data-testid=sbw-field][data-name=ticket]').waitFor({ state: 'visible' });
  assert.equal(await s.getAttribute('[data-testid=sbw-field][data-name=ticket]', 'aria-invalid'), 'true', 'the field the message names is marked');
  assert.equal(await s.inputValue('[data-testid=sbw-name]'), 'Bob <b>Visitor</b>');
  assert.equal(await s.inputValue('[data-testid=sbw-question]'), 'Can I upgrade?');
  assert.equal(await plan.inputValue(), HOSTILE);
  assert.equal(await contact.inputValue(), 'bob@example.org');
  assert.equal(await s.locator('[data-testid=sbw-form]').isVisible(), true);
  await screenshot(seeker, 'widget-form-error');

  await s.fill('[data-testid=sbw-field][data-name=ticket]', 'T-42');
  await s.click('[data-testid=sbw-start]');
  await s.locator('[data-testid=sbw-status]').waitFor({ state: 'visible' });
  assert.equal(seeker.guestPosts, 2);
  const want = { plan: HOSTILE, contact: 'bob@example.org', ticket: 'T-42' };

  // Judy's offer carries the answers.
  const offer = await waitIn(judy.page, () => window.__frames.find((f) => f.type === 'queue_offer' && f.queue === 'wform'))
    .then((h) => h.jsonValue());
  assert.deepEqual(offer.answers, want, `offer frame: ${JSON.stringify(offer)}`);
  assert.equal(offer.question, 'Can I upgrade?');
  const chat = offer.chat;
  assert.equal(await s.evaluate(() => window.__sbButton.chat.chat), chat);

  // She accepts; the chat view has them too.
  const acc = await rest('POST', `/api/v1/queue-chats/${chat}/accept`, { token: judy.token });
  assert.equal(acc.status, 200, `accept: ${acc.text}`);
  await waitStatus(s, /^Connected to Judy Jones$/);
  const view = await rest('GET', `/api/v1/queue-chats/${chat}`, { token: judy.token });
  assert.equal(view.status, 200, view.text);
  assert.deepEqual(view.json.answers, want, `chat view: ${view.text}`);

  // She ends it; with wrap_up_s the chat goes to wrap-up, which for the visitor is the end.
  const end = await rest('POST', `/api/v1/queue-chats/${chat}/end`, { token: judy.token });
  assert.ok(end.status === 200 || end.status === 204, `end: ${end.status} ${end.text}`);
  await waitIn(judy.page, (id) => window.__frames.some((f) => f.type === 'queue_chat' && f.chat === id && f.state === 'wrap_up'), chat);
  await waitStatus(s, /ended/);
  await s.locator('[data-testid=sbw-survey]').waitFor({ state: 'visible' });
  assert.equal(await s.locator('[data-testid=sbw-composer]').isVisible(), false, 'no composer after the end');
  await assertNoMarkup(seeker);
});

check('b. business hours: closed now, the button is disabled and shows the closed message', async () => {
  const now = new Date();
  const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const other = days[(now.getUTCDay() + 3) % 7]; // never today, whatever the hour
  const today = now.toISOString().slice(0, 10);
  const closedMessage = `We are closed today ${HOSTILE}`;
  const saved = await putQueue('whours', {
    display_name: 'Widget Hours', members: [{ address: JUDY, priority: 0, skills: [] }],
    closed_message: closedMessage,
    hours: { tz: 'UTC', weekly: [{ day: other, open: '09:00', close: '17:00' }], holidays: [today] },
  });
  assert.deepEqual(saved.hours.holidays, [today], `saved: ${JSON.stringify(saved)}`);
  const def = await rest('GET', '/api/v1/queues/whours', { token: await login(ADMIN) });
  assert.equal(def.status, 200, def.text);
  assert.equal(def.json.open_now, false, `GET /api/v1/queues/whours: ${def.text}`);

  const st = await rest('GET', '/api/v1/queues/whours/status');
  assert.equal(st.json.state, 'closed', st.text);
  const pub = await rest('GET', '/api/v1/queues/whours/widget');
  assert.equal(pub.status, 200, pub.text);
  assert.equal(pub.json.state, 'closed');
  assert.equal(pub.json.open_now, false);
  assert.equal(pub.json.closed_message, closedMessage);
  const g = await rest('POST', '/api/v1/queues/whours/guest', { body: { name: 'Early Bird', email: '', question: 'Open?' } });
  assert.equal(g.status, 403, `guest request while closed: ${g.text}`);
  assert.equal(g.json.error.message, closedMessage);

  const seeker = await openSeeker('hours seeker', '/hours');
  const s = seeker.page;
  await waitIn(s, () => {
    const b = document.querySelector('[data-testid=sbw-button]');
    return b.disabled && b.getAttribute('data-state') === 'closed';
  });
  const btn = s.locator('[data-testid=sbw-button]');
  assert.equal(await btn.getAttribute('title'), closedMessage);
  assert.equal(await s.textContent('[data-testid=sbw-closed-message]'), closedMessage);
  assert.equal(await s.locator('[data-testid=sbw-closed-message]').isVisible(), true);
  await btn.click({ force: true });
  assert.equal(await s.locator('[data-testid=sbw-panel]').count(), 0, 'a disabled button opens nothing');
  await assertNoMarkup(seeker);
  await screenshot(seeker, 'widget-hours-closed');

  // Open around the clock again: the button follows on its next poll.
  await putQueue('whours', { display_name: 'Widget Hours', members: [{ address: JUDY, priority: 0, skills: [] }], closed_message: closedMessage, hours: null });
  await s.evaluate(() => Switchboard.refresh());
  await waitIn(s, () => !document.querySelector('[data-testid=sbw-button]').disabled);
  assert.equal(await s.locator('[data-testid=sbw-closed-message]').isVisible(), false);
});

check('c. no expert signed in: the chat is taken as an offline message; what the visitor writes is kept', async () => {
  const offlineMessage = `Nobody is here right now ${HOSTILE}. Leave us a message.`;
  await putQueue('woff', {
    display_name: 'Widget Facilities', members: [{ address: MALLORY, priority: 0, skills: [] }],
    no_expert_action: 'offline_message', offline_message: offlineMessage,
  });
  const seeker = await openSeeker('offline seeker', '/offline');
  const s = seeker.page;
  await waitIn(s, () => ['open', 'busy'].includes(document.querySelector('[data-testid=sbw-button]').getAttribute('data-state')));
  assert.equal(await s.locator('[data-testid=sbw-button]').isDisabled(), false);
  await s.click('[data-testid=sbw-button]');
  await s.locator('[data-testid=sbw-name]').waitFor({ state: 'visible' });
  await s.fill('[data-testid=sbw-name]', 'Olga <i>Offline</i>');
  await s.fill('[data-testid=sbw-question]', 'The coffee machine leaks');
  await s.click('[data-testid=sbw-start]');

  // The offline message, a composer, no place in line.
  await waitIn(s, () => document.querySelector('.sbw-chat')?.getAttribute('data-state') === 'offline');
  const chat = await s.evaluate(() => window.__sbButton.chat);
  assert.equal(chat.state, 'offline');
  assert.equal(chat.message, offlineMessage);
  assert.equal(await s.textContent('[data-testid=sbw-offline]'), offlineMessage);
  assert.equal(await s.locator('[data-testid=sbw-offline]').isVisible(), true);
  assert.equal(await s.locator('[data-testid=sbw-position]').isVisible(), false, 'no position');
  assert.equal(await s.locator('[data-testid=sbw-wait]').isVisible(), false, 'no wait estimate');
  assert.equal(await s.locator('[data-testid=sbw-composer]').isVisible(), true, 'the visitor can write');

  const text = `Please call me back at 1234 ${HOSTILE}`;
  await s.fill('[data-testid=sbw-composer]', text);
  await s.click('[data-testid=sbw-send]');
  await waitIn(s, (t) => [...document.querySelectorAll('[data-testid=sbw-message][data-id] [data-testid=sbw-message-body]')]
    .some((e) => e.textContent === t), text);
  assert.equal(await s.locator('[data-testid=sbw-survey]').isVisible(), false, 'no survey');
  await assertNoMarkup(seeker);
  await screenshot(seeker, 'widget-offline');

  // The admin sees it among the queue's offline messages.
  const admin = await login(ADMIN);
  const entry = await eventually('the offline message listed', async () => {
    const r = await rest('GET', '/api/v1/queues/woff/offline', { token: admin });
    assert.equal(r.status, 200, `GET /api/v1/queues/woff/offline: ${r.text}`);
    return r.json.messages.find((m) => m.chat === chat.chat);
  });
  assert.equal(entry.question, 'The coffee machine leaks');
  assert.equal(entry.seeker_name, 'Olga <i>Offline</i>');
  assert.equal(entry.conversation, chat.conversation);
  assert.equal(entry.taken_by, null);

  // Mallory takes it: the visitor's message is in the conversation's history, and her answer
  // reaches the visitor's widget.
  const mallory = await login(MALLORY);
  const take = await rest('POST', `/api/v1/queue-chats/${chat.chat}/take`, { token: mallory });
  assert.equal(take.status, 200, `take: ${take.text}`);
  assert.equal(take.json.conversation, chat.conversation);
  const hist = await rest('GET', `/api/v1/conversations/${chat.conversation}/messages`, { token: mallory });
  assert.equal(hist.status, 200, hist.text);
  assert.ok(hist.json.events.some((e) => e.kind === 'message' && e.body === text), `history: ${hist.text}`);
  const again = await rest('GET', '/api/v1/queues/woff/offline', { token: admin });
  assert.equal(again.json.messages.find((m) => m.chat === chat.chat).taken_by, MALLORY);

  const reply = 'Facilities here: we will fix it today.';
  const sent = await rest('POST', `/api/v1/conversations/${chat.conversation}/messages`, { token: mallory, body: { body: reply } });
  assert.ok(sent.status === 200 || sent.status === 201, `reply: ${sent.status} ${sent.text}`);
  await waitIn(s, (t) => [...document.querySelectorAll('[data-testid=sbw-message] [data-testid=sbw-message-body]')]
    .some((e) => e.textContent === t), reply);
  assert.equal(await s.locator('[data-testid=sbw-survey]').isVisible(), false, 'still no survey');
  await assertNoMarkup(seeker);
});

check('d. the visitor sees the expert\'s name, never their address; names from people are bidi-isolated', async () => {
  const RLO = '\u202E';
  const title = `${RLO}Bidi Desk`;
  await putQueue('wbidi', {
    display_name: title, method: 'broadcast', offer_timeout_s: 60,
    members: [{ address: GRACE, priority: 0, skills: [] }],
  });
  const grace = await expertSocket(GRACE);
  const seeker = await openSeeker('bidi seeker', '/bidi');
  const s = seeker.page;
  await waitIn(s, () => document.querySelector('[data-testid=sbw-button]').getAttribute('data-state') === 'open');
  await s.click('[data-testid=sbw-button]');
  await s.locator('[data-testid=sbw-name]').waitFor({ state: 'visible' });
  await s.fill('[data-testid=sbw-name]', `${RLO}Vera Visitor`);
  await s.fill('[data-testid=sbw-question]', 'Who am I talking to?');
  await s.click('[data-testid=sbw-start]');
  const offer = await waitIn(grace.page, () => window.__frames.find((f) => f.type === 'queue_offer' && f.queue === 'wbidi'))
    .then((h) => h.jsonValue());
  const acc = await rest('POST', `/api/v1/queue-chats/${offer.chat}/accept`, { token: grace.token });
  assert.equal(acc.status, 200, `accept: ${acc.text}`);
  // The server gives the visitor the expert's display name (expert_name) beside the address,
  // which the widget keeps to itself: the widget names Grace, in an isolated piece.
  await waitStatus(s, /^Connected to Grace Garcia$/);
  assert.equal(await s.locator('[data-testid=sbw-status] bdi').textContent(), 'Grace Garcia');
  const reply = 'Hello, this is the desk.';
  const conv = await s.evaluate(() => window.__sbButton.chat.conversation);
  const sent = await rest('POST', `/api/v1/conversations/${conv}/messages`, { token: grace.token, body: { body: reply } });
  assert.ok(sent.status === 200 || sent.status === 201, `reply: ${sent.status} ${sent.text}`);
  await waitIn(s, (t) => [...document.querySelectorAll('[data-testid=sbw-message] [data-testid=sbw-message-body]')]
    .some((e) => e.textContent === t), reply);
  const seen = await s.evaluate(() => {
    const panel = document.querySelector('[data-testid=sbw-panel]');
    const iso = (e) => getComputedStyle(e).unicodeBidi;
    const t = panel.querySelector('.sbw-title');
    const sender = [...panel.querySelectorAll('[data-testid=sbw-message]')].pop().querySelector('.sbw-sender');
    return { text: panel.textContent, title: t.textContent, titleBidi: iso(t), sender: sender.textContent, senderBidi: iso(sender) };
  });
  assert.doesNotMatch(seen.text, /grace@example\.com/, 'the expert\'s address is not shown to the visitor');
  assert.equal(seen.sender, 'Grace Garcia');
  assert.equal(seen.senderBidi, 'isolate');
  assert.equal(seen.title, title);
  assert.equal(seen.titleBidi, 'isolate', 'the queue\'s name (from an administrator) is isolated');
  await assertNoMarkup(seeker);
  await screenshot(seeker, 'widget-bidi');
});

/**
 * Runs `fn({at, grace})` against a server of its own whose seekers have a grace period of 1 s
 * (limits.seeker_grace_secs, the least), with the queue `wgone` whose one expert, Grace, is
 * signed in (`grace`: her socket's client) and is offered its chats but takes none: they wait.
 * Its pages (clients named in `names`) are closed before the server stops.
 */
async function withShortGrace(names, fn) {
  const sb2 = await startSwitchboard({ SWITCHBOARD_LIMITS__SEEKER_GRACE_SECS: '1' });
  const mine = (c) => names.includes(c.name) || c.name === `${GRACE} (socket)`;
  try {
    const at = sb2.base;
    const admin = await loginAt(at, ADMIN, PASSWORD);
    const put = await restAt(at, 'PUT', '/api/v1/queues/wgone', {
      token: admin,
      body: { display_name: 'Widget Away', method: 'broadcast', offer_timeout_s: 300, members: [{ address: GRACE, priority: 0, skills: [] }] },
    });
    assert.ok(put.status === 200 || put.status === 201, `PUT /api/v1/queues/wgone: ${put.status} ${put.text}`);
    const grace = await expertSocket(GRACE, at);
    await fn({ at, grace });
  } catch (e) {
    console.error(sb2.tail());
    throw e;
  } finally {
    // This server's pages go before it does (their sockets would retry against nothing).
    for (const c of clients.filter(mine)) await c.context.close().catch(() => {});
    await sb2.stop();
  }
}

check('e. the visitor was away longer than the grace period: the chat left the line; the widget says so, stops reconnecting and offers a new chat', async () => {
  await withShortGrace(['away seeker'], async ({ at, grace }) => {
    PAGES['/away'] = hostPage('wgone', 'Chat with the desk', at);
    // The page's sockets are kept in window.__sockets, so that the test can cut them: the
    // browser's offline mode refuses new connections but leaves an open socket alone.
    const seeker = await openSeeker('away seeker', '/away', {
      init: () => {
        const Native = window.WebSocket;
        window.__sockets = [];
        window.WebSocket = class extends Native {
          constructor(...args) { super(...args); window.__sockets.push(this); }
        };
      },
    });
    const s = seeker.page;
    const sockets = [];
    s.on('websocket', (ws) => sockets.push(ws.url()));
    await waitIn(s, () => ['open', 'busy'].includes(document.querySelector('[data-testid=sbw-button]').getAttribute('data-state')));
    await s.click('[data-testid=sbw-button]');
    await s.locator('[data-testid=sbw-name]').waitFor({ state: 'visible' });
    await s.fill('[data-testid=sbw-name]', 'Walter Away');
    await s.fill('[data-testid=sbw-email]', 'walter@example.org');
    await s.fill('[data-testid=sbw-question]', 'Is anyone there?');
    await s.click('[data-testid=sbw-start]');
    await waitStatus(s, /Waiting for an expert/);
    await waitIn(s, () => /next in line/i.test(document.querySelector('[data-testid=sbw-position]')?.textContent || ''));
    const offer = await waitIn(grace.page, () => window.__frames.find((f) => f.type === 'queue_offer' && f.queue === 'wgone'))
      .then((h) => h.jsonValue());
    const chat = offer.chat;
    assert.equal(await s.evaluate(() => window.__sbButton.chat.chat), chat);
    const before = sockets.length;
    assert.ok(before >= 1, 'the widget opened its socket');

    // The visitor's network goes away for longer than the grace period: the chat leaves the
    // line (Grace's offer is withdrawn) and the guest is retired.
    await seeker.context.setOffline(true);
    await s.evaluate(() => { for (const ws of window.__sockets) ws.close(); });
    await waitIn(grace.page, (id) => window.__frames.some((f) => f.type === 'queue_offer_gone' && f.chat === id), chat);
    await s.waitForTimeout(500);
    await seeker.context.setOffline(false);

    // Back: the widget learns that the chat is over instead of retrying for ever.
    await waitIn(s, () => ['abandoned', 'ended'].includes(document.querySelector('.sbw-chat')?.getAttribute('data-state')));
    await waitStatus(s, /left the line/i);
    const newChat = s.locator('[data-testid=sbw-new-chat]');
    await newChat.waitFor({ state: 'visible' });
    assert.equal(await s.locator('[data-testid=sbw-composer]').isVisible(), false, 'no composer once the chat is over');
    assert.equal(await s.locator('[data-testid=sbw-end]').isVisible(), false, 'no "End chat" either');
    assert.equal(await s.locator('[data-testid=sbw-survey]').isVisible(), false, 'no survey: nobody answered');
    assert.equal(await s.textContent('[data-testid=sbw-typing]'), '', 'no "Reconnecting…"');
    assert.doesNotMatch(await s.textContent('[data-testid=sbw-panel]'), /connection|reconnecting/i);
    // And it stays that way: no more sockets are opened.
    const settled = sockets.length;
    await s.waitForTimeout(3000);
    assert.equal(sockets.length, settled, `no socket opened after the end (${sockets.slice(settled).join(', ')})`);
    assert.match(await s.textContent('[data-testid=sbw-status]'), /left the line/i);
    // The button no longer says a chat is in progress.
    assert.doesNotMatch(await s.textContent('[data-testid=sbw-button]'), /in progress/i);
    await assertNoMarkup(seeker);
    await s.setViewportSize({ width: 390, height: 844 });
    await screenshot(seeker, 'widget-away-ended');

    // A new chat: the form again (what the visitor typed about themselves kept), a new guest.
    const posts = seeker.guestPosts;
    await newChat.click();
    await s.locator('[data-testid=sbw-question]').waitFor({ state: 'visible' });
    assert.equal(await s.inputValue('[data-testid=sbw-name]'), 'Walter Away');
    assert.equal(await s.inputValue('[data-testid=sbw-email]'), 'walter@example.org');
    assert.equal(await s.inputValue('[data-testid=sbw-question]'), '', 'a new question');
    assert.equal(await s.locator('[data-testid=sbw-message]').count(), 0, 'the old chat\'s messages are gone');
    await s.fill('[data-testid=sbw-question]', 'Back again');
    await s.click('[data-testid=sbw-start]');
    await waitStatus(s, /Waiting for an expert/);
    assert.equal(seeker.guestPosts, posts + 1, 'a new guest chat was asked for');
    const again = await waitIn(grace.page, (id) => window.__frames.find((f) => f.type === 'queue_offer' && f.queue === 'wgone' && f.chat !== id), chat)
      .then((h) => h.jsonValue());
    assert.equal(await s.evaluate(() => window.__sbButton.chat.chat), again.chat);
    await waitIn(s, () => /in progress/i.test(document.querySelector('[data-testid=sbw-button]').textContent));
    await s.fill('[data-testid=sbw-composer]', 'still here');
    await s.click('[data-testid=sbw-send]');
    await waitIn(s, () => [...document.querySelectorAll('[data-testid=sbw-message][data-id]')].some((m) => m.textContent.includes('still here')));
    await screenshot(seeker, 'widget-away-new-chat');
  });
});

check('f. the web client: a signed-in seeker away longer than the grace period sees the chat ended, not waiting for ever', async () => {
  await withShortGrace(['away employee'], async ({ at, grace }) => {
    const context = await newContextAt(browser, at, { viewport: { width: 1100, height: 800 } });
    const bob = new Client('away employee', context, await context.newPage());
    clients.push(bob);
    const b = bob.page;
    await signInAt(at, bob, 'bob@example.com', PASSWORD);
    await b.click('[data-testid=get-help]');
    await b.locator('[data-testid=help-queue] option[value="wgone"]').waitFor({ state: 'attached' });
    await b.selectOption('[data-testid=help-queue]', 'wgone');
    await b.fill('[data-testid=help-question]', 'Where is the projector?');
    await b.click('[data-testid=help-submit]');
    const status = b.locator('[data-testid=queue-chat-status]');
    await waitIn(b, () => /Waiting for an expert/.test(document.querySelector('[data-testid=queue-chat-status]')?.textContent || ''));
    const offer = await waitIn(grace.page, () => window.__frames.find((f) => f.type === 'queue_offer' && f.queue === 'wgone'))
      .then((h) => h.jsonValue());
    assert.equal(await b.getAttribute('[data-testid=queue-bar]', 'data-chat'), String(offer.chat));
    await b.locator('[data-testid=end-queue-chat]').waitFor({ state: 'visible' });

    // Bob's connection drops for longer than the grace period: his chat leaves the line
    // (no frame can tell him: he has no socket).
    await b.evaluate(() => window.__switchboard.disconnect());
    await waitIn(grace.page, (id) => window.__frames.some((f) => f.type === 'queue_offer_gone' && f.chat === id), offer.chat);
    await b.evaluate(() => window.__switchboard.reconnect());
    await waitIn(b, () => window.__switchboard.connected());

    // Back: the chat shows as over, with no "End" button and no place in line.
    await waitIn(b, () => document.querySelector('[data-testid=queue-chat-status]')?.getAttribute('data-state') === 'ended');
    assert.match(await status.textContent(), /left the line while you were away/);
    assert.doesNotMatch(await status.textContent(), /Waiting/);
    assert.equal(await b.locator('[data-testid=end-queue-chat]').isVisible(), false, 'nothing to end');
    await screenshot(bob, 'web-away-ended');
  });
});
