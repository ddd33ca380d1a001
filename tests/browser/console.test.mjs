// End-to-end test of the expert console of the web client in headless Chromium: the waiting
// list of a manual queue (pick a chat), pre-chat answers, canned responses, inviting a
// colleague into a chat, wrap-up tags after the end, offline messages taken from the list,
// and the queue administration form for hours, form fields, canned responses and wrap-up.
// The real server, Debian's Chromium, one browser context per person.
//
//   cd tests/browser && npm install && node --test console.test.mjs
//
// Environment: as chat.test.mjs, queues.test.mjs and manage.test.mjs —
//   SWITCHBOARD_BIN  server binary (default <repo>/target/debug/switchboard)
//   SWITCHBOARD_URL  use an already running server (started with --demo, fresh) instead of starting one
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   if set, screenshots are written there
//   SERVER_START_TIMEOUT_MS  how long to wait for "listening http://…" (default 30000)
//   WEB_DIR          serve index.html, app.js and app.css from this folder instead of the
//                    copies compiled into the server (no rebuild needed)

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNoMarkup, eventually, launchChromium, loginAt, makeCheck, newContextAt, PageClient, restAt,
  saveScreenshot as screenshot, signInAt, useSwitchboard, waitForMessage, waitIn,
} from './harness.mjs';

const PASSWORD = 'demo';
const ADMIN = 'admin@example.com';
const ALICE = 'alice@example.com'; // seeker (not an expert)
const BOB = 'bob@example.com'; // seeker (not an expert)
const JUDY = 'judy@example.com'; // expert of Triage Desk (test queue) and Demo Support
const MALLORY = 'mallory@example.com'; // expert of Triage Desk and Demo Support
const NIAJ = 'niaj@example.com'; // the only expert of After Hours (test queue)
const GRACE = 'grace@example.com';
const HOSTILE = '<img src=x onerror=alert(1)>';

const TRIAGE = {
  display_name: 'Triage Desk',
  method: 'manual',
  members: [{ address: JUDY, priority: 0 }, { address: MALLORY, priority: 1 }],
  form: [
    { name: 'email', label: 'Your e-mail', kind: 'email', required: true },
    { name: 'os', label: 'Operating system', kind: 'select', required: false, options: ['linux', 'mac', 'windows'] },
  ],
  canned: [
    { title: 'Greeting', text: 'Hello! How can I help?' },
    { title: 'Goodbye', text: 'Glad I could help. Bye!' },
  ],
  wrap_up_tags: ['resolved', 'escalated'],
  wrap_up_s: 60,
};
const OFFLINE_TEXT = 'Nobody is here right now. Leave your message and we will answer it.';
const AFTER_HOURS = {
  display_name: 'After Hours',
  method: 'longest_idle',
  members: [{ address: NIAJ, priority: 0 }],
  no_expert_action: 'offline_message',
  offline_message: OFFLINE_TEXT,
};

let sb = null; // the server (SWITCHBOARD_URL, or one started here): see harness.mjs
let base = '';
// Shared helpers (harness.mjs), bound to this file's server.
const rest = (method, p, opts) => restAt(base, method, p, opts);
const login = (address) => loginAt(base, address, PASSWORD);
const signIn = (c, address) => signInAt(base, c, address, PASSWORD);
let browser = null;
const clients = [];
let judy = null;
let alice = null;
let mallory = null;
let triageChat = 0; // the chat of tests a–d
let triageConv = 0;

// ------------------------------------------------------------------ REST helpers (Node side)

async function putQueue(id, body) {
  const r = await rest('PUT', `/api/v1/queues/${id}`, { token: await login(ADMIN), body });
  assert.ok(r.status === 200 || r.status === 201, `PUT /api/v1/queues/${id}: ${r.status} ${r.text}`);
  return r.json;
}

async function getQueue(id) {
  const r = await rest('GET', `/api/v1/queues/${id}`, { token: await login(ADMIN) });
  assert.equal(r.status, 200, `GET /api/v1/queues/${id}: ${r.text}`);
  return r.json;
}

// ------------------------------------------------------------------ browser clients

async function newClient(name, viewport = { width: 1280, height: 900 }) {
  const context = await newContextAt(browser, base, { viewport });
  const c = new PageClient(name, context, await context.newPage());
  clients.push(c);
  return c;
}

async function send(page, text) {
  await page.fill('[data-testid=composer]', text);
  await page.click('[data-testid=send]');
  await waitForMessage(page, text);
}

async function waitQueueChatOpen(page) {
  await waitIn(page, () => document.querySelector('[data-testid=chat]').getAttribute('data-kind') === 'queue');
  return Number(await page.getAttribute('[data-testid=chat]', 'data-id'));
}

async function statusText(page) {
  return (await page.textContent('[data-testid=queue-chat-status]')).trim();
}

/** The "Get help" dialog of the web client: queue, form answers, question. */
async function askForHelp(page, queue, question, answers = {}) {
  await page.click('[data-testid=get-help]');
  await page.locator(`[data-testid=help-queue] option[value="${queue}"]`).waitFor({ state: 'attached' });
  await page.selectOption('[data-testid=help-queue]', queue);
  for (const [name, value] of Object.entries(answers)) {
    const field = page.locator(`[data-testid=help-field][data-name="${name}"]`);
    await field.waitFor({ state: 'visible' });
    if ((await field.evaluate((e) => e.tagName)) === 'SELECT') await field.selectOption(value);
    else await field.fill(value);
  }
  await page.fill('[data-testid=help-question]', question);
  await page.click('[data-testid=help-submit]');
}

async function openQueuesTab(page) {
  await page.click('[data-testid=queues-tab]');
  await page.locator('[data-testid=queue-panel]').waitFor({ state: 'visible' });
}

/** Runs a test body; on failure prints what the pages and the server said. */
const check = makeCheck({ clients, tail: () => sb?.tail(), screenshot, csp: true });

// ------------------------------------------------------------------ lifecycle

before(async () => {
  sb = await useSwitchboard();
  base = sb.base;
  browser = await launchChromium();
  await putQueue('triage', TRIAGE);
  await putQueue('afterhours', AFTER_HOURS);
});

after(async () => {
  await browser?.close().catch(() => {});
  await sb?.stop();
});

// ------------------------------------------------------------------ tests

check('a. manual queue: the chat shows in the waiting list with its answers; Judy picks it and they chat', async () => {
  // The server keeps the new settings.
  const q = await getQueue('triage');
  assert.equal(q.method, 'manual');
  assert.deepEqual(q.wrap_up_tags, TRIAGE.wrap_up_tags);
  assert.equal(q.wrap_up_s, 60);
  assert.deepEqual(q.canned, TRIAGE.canned);
  assert.deepEqual(q.form.map((f) => [f.name, f.label, f.kind, !!f.required]),
    TRIAGE.form.map((f) => [f.name, f.label, f.kind, f.required]));

  // Judy signs in first (a queue with nobody signed in refuses new chats).
  judy = await newClient('judy');
  await signIn(judy, JUDY);
  await openQueuesTab(judy.page);
  await judy.page.locator('[data-testid=waiting-list][data-queue=triage]').waitFor({ state: 'visible' });

  // The server checks the answers against the form (and queues nothing when it refuses).
  const bob = await login(BOB);
  const bad = await rest('POST', '/api/v1/queues/triage/chats', { token: bob, body: { question: 'x', answers: { email: 'not-an-address' } } });
  assert.equal(bad.status, 400, `malformed e-mail refused: ${bad.text}`);
  assert.match(bad.json.error.message, /e-?mail/i, 'the message names the field');
  const missing = await rest('POST', '/api/v1/queues/triage/chats', { token: bob, body: { question: 'x', answers: {} } });
  assert.equal(missing.status, 400, `missing required field refused: ${missing.text}`);

  // Alice asks Triage Desk from the web client; the dialog shows the queue's form.
  alice = await newClient('alice');
  await signIn(alice, ALICE);
  const a = alice.page;
  await a.click('[data-testid=get-help]');
  await a.locator('[data-testid=help-queue] option[value=triage]').waitFor({ state: 'attached' });
  await a.selectOption('[data-testid=help-queue]', 'triage');
  await a.locator('[data-testid=help-field][data-name=email]').waitFor({ state: 'visible' });
  assert.match(await a.textContent('[data-testid=help-fields]'), /Your e-mail/);
  // A required field left empty is caught before anything is sent.
  await a.fill('[data-testid=help-question]', 'anything');
  await a.click('[data-testid=help-submit]');
  await waitIn(a, () => /Your e-mail/.test(document.getElementById('help-error').textContent));
  await a.click('#help-cancel');

  const question = `My laptop will not boot ${HOSTILE}`;
  await askForHelp(a, 'triage', question, { email: 'alice.home@example.org', os: 'linux' });
  await waitQueueChatOpen(a);
  await waitIn(a, () => /Waiting/.test(document.querySelector('[data-testid=queue-chat-status]').textContent));
  triageChat = Number(await a.getAttribute('[data-testid=queue-bar]', 'data-chat'));
  assert.ok(triageChat > 0, 'the seeker knows the chat');

  // Manual routing: no offer, the chat is in Judy's waiting list with its answers.
  const j = judy.page;
  const item = j.locator(`[data-testid=waiting-list][data-queue=triage] [data-testid=waiting][data-chat="${triageChat}"]`);
  await item.waitFor({ state: 'visible' });
  assert.equal(await j.locator('[data-testid=offer]').count(), 0, 'manual queue: nobody is offered the chat');
  assert.equal(await item.locator('[data-testid=waiting-question]').textContent(), question);
  assert.match(await item.locator('[data-testid=waiting-seeker]').textContent(), /Alice/);
  assert.match(await item.locator('[data-testid=waiting-waited]').textContent(), /^waiting (\d+s|\d+m \d\ds)$/);
  assert.equal(await item.locator('[data-testid=answer][data-name=email] [data-testid=answer-value]').textContent(), 'alice.home@example.org');
  assert.equal(await item.locator('[data-testid=answer][data-name=os] [data-testid=answer-value]').textContent(), 'linux');
  assert.match(await item.locator('[data-testid=answer][data-name=email]').textContent(), /Your e-mail/, 'the field label is shown');
  const listed = await rest('GET', '/api/v1/queues/triage/waiting', { token: await login(JUDY) });
  assert.equal(listed.status, 200, listed.text);
  const w = listed.json.waiting.find((x) => x.chat === triageChat);
  assert.ok(w, `GET waiting lists the chat: ${listed.text}`);
  assert.deepEqual(w.answers, { email: 'alice.home@example.org', os: 'linux' });
  await assertNoMarkup(judy);
  await screenshot(judy, 'a-waiting-list');

  // Judy picks it: her chat opens, Alice is connected.
  await item.locator('[data-testid=waiting-pick]').click();
  triageConv = await waitQueueChatOpen(j);
  await waitIn(a, () => document.querySelector('[data-testid=queue-chat-status]').textContent === 'Connected to Judy Jones');
  assert.equal(Number(await a.getAttribute('[data-testid=chat]', 'data-id')), triageConv, 'the same conversation');
  await j.locator('[data-testid=end-queue-chat]').waitFor({ state: 'visible' });
  assert.match(await j.textContent('[data-testid=queue-chat-question]'), /will not boot/);
  await j.locator('[data-testid=queue-chat-answers] [data-testid=answer][data-name=email]').waitFor({ state: 'visible' });
  assert.equal(await j.textContent('[data-testid=queue-chat-answers] [data-testid=answer][data-name=os] [data-testid=answer-value]'), 'linux');

  await send(j, 'Hi Alice, Judy here.');
  await waitForMessage(a, 'Hi Alice, Judy here.');
  await send(a, 'Thanks Judy!');
  await waitForMessage(j, 'Thanks Judy!');
  // Picked: gone from the waiting list.
  const after = await rest('GET', '/api/v1/queues/triage/waiting', { token: await login(JUDY) });
  assert.ok(!after.json.waiting.some((x) => x.chat === triageChat), 'no longer waiting');
  for (const c of [judy, alice]) await assertNoMarkup(c);
});

check('b. a canned response goes into the composer, and is sent only when Judy sends it', async () => {
  assert.ok(triageConv, 'needs the chat of test a');
  const j = judy.page;
  const sel = j.locator('[data-testid=canned-select]');
  await sel.waitFor({ state: 'visible' });
  const labels = await sel.locator('option').allTextContents();
  assert.ok(labels.includes('Greeting') && labels.includes('Goodbye'), `the queue's canned responses: ${labels}`);
  await sel.selectOption({ label: 'Greeting' });
  await waitIn(j, () => document.querySelector('[data-testid=composer]').value === 'Hello! How can I help?');
  assert.equal(await sel.inputValue(), '', 'the picker resets');
  // Not sent by itself.
  await waitIn(j, () => document.activeElement === document.querySelector('[data-testid=composer]'));
  const sent = await j.$$eval('[data-testid=message] [data-testid=message-body]', (els) => els.map((e) => e.textContent));
  assert.ok(!sent.includes('Hello! How can I help?'), 'nothing sent yet');
  await j.click('[data-testid=send]');
  await waitForMessage(j, 'Hello! How can I help?');
  await waitForMessage(alice.page, 'Hello! How can I help?');
  // Inserted after what is there already.
  await j.fill('[data-testid=composer]', 'So:');
  await sel.selectOption({ label: 'Goodbye' });
  await waitIn(j, () => document.querySelector('[data-testid=composer]').value === 'So: Glad I could help. Bye!');
  await j.fill('[data-testid=composer]', '');
  assert.equal(await alice.page.locator('[data-testid=canned-select]').isVisible(), false, 'the seeker has no canned responses');
});

check('c. Judy invites Mallory into the chat; Mallory writes in it and Alice sees it', async () => {
  assert.ok(triageConv, 'needs the chat of test a');
  mallory = await newClient('mallory');
  await signIn(mallory, MALLORY);
  const j = judy.page;
  await j.locator('[data-testid=invite-expert-target]').waitFor({ state: 'visible' });
  assert.equal(await alice.page.locator('[data-testid=invite-expert-target]').isVisible(), false, 'the seeker cannot invite');

  // Someone who does not exist: the server's refusal is shown.
  await j.fill('[data-testid=invite-expert-target]', 'no-such-person@example.com');
  await j.click('[data-testid=invite-expert-submit]');
  const err = j.locator('[data-testid=invite-expert-error]');
  await err.waitFor({ state: 'visible' });
  assert.ok((await err.textContent()).trim().length > 0, 'an error message');

  await j.fill('[data-testid=invite-expert-target]', MALLORY);
  await j.click('[data-testid=invite-expert-submit]');
  await err.waitFor({ state: 'hidden' });
  await waitIn(j, () => document.querySelector('[data-testid=invite-expert-target]').value === '');

  // Mallory has the conversation, with its history, and writes in it.
  const m = mallory.page;
  const row = m.locator(`[data-testid=conversation][data-id="${triageConv}"]`);
  await row.waitFor({ state: 'visible' });
  await row.click();
  await waitIn(m, (id) => document.querySelector('[data-testid=chat]').getAttribute('data-id') === String(id), triageConv);
  await waitForMessage(m, 'Thanks Judy!');
  await send(m, 'Mallory here: hold the power button for 10 seconds.');
  await waitForMessage(alice.page, 'Mallory here: hold the power button for 10 seconds.');
  await waitForMessage(j, 'Mallory here: hold the power button for 10 seconds.');
  const conv = await rest('GET', `/api/v1/conversations/${triageConv}`, { token: await login(ALICE) });
  assert.equal(conv.status, 200, conv.text);
  const members = (conv.json.conversation || conv.json).members.map((x) => (typeof x === 'string' ? x : x.address));
  assert.ok(members.includes(MALLORY) && members.includes(JUDY) && members.includes(ALICE), `members: ${members}`);
  await screenshot(judy, 'c-conference');
});

check('d. Judy ends the chat: wrap-up panel with the queue\'s tags, submitted, the chat closes', async () => {
  assert.ok(triageChat, 'needs the chat of test a');
  const j = judy.page;
  const judyToken = await login(JUDY);
  const adminToken = await login(ADMIN);
  await j.click('[data-testid=end-queue-chat]');
  const panel = j.locator('[data-testid=wrapup-panel]');
  await panel.waitFor({ state: 'visible' });
  await waitIn(alice.page, () => /ended/i.test(document.querySelector('[data-testid=queue-chat-status]').textContent));

  // In wrap-up (wrap_up_s = 60): the server says so, and the panel counts down.
  const view = await rest('GET', `/api/v1/queue-chats/${triageChat}`, { token: judyToken });
  assert.equal(view.status, 200, view.text);
  assert.equal(view.json.state, 'wrap_up', `state after the end: ${view.text}`);
  assert.equal(typeof view.json.wrap_up_until, 'number', 'wrap_up_until in ms');
  await waitIn(j, () => /\d/.test(document.querySelector('[data-testid=wrapup-countdown]').textContent));
  const secs = Number(await j.getAttribute('[data-testid=wrapup-countdown]', 'data-seconds'));
  assert.ok(secs > 0 && secs <= 60, `countdown in seconds: ${secs}`);
  assert.match(await statusText(j), /ended/i);
  const tags = await j.$$eval('[data-testid=wrapup-tag]', (els) => els.map((e) => e.getAttribute('data-tag')));
  assert.deepEqual(tags, ['resolved', 'escalated']);
  assert.equal(await alice.page.locator('[data-testid=wrapup-panel]').isVisible(), false, 'the seeker has no wrap-up');
  await screenshot(judy, 'd-wrap-up');

  // Tags must be the queue's (the server says no to others).
  const bogus = await rest('POST', `/api/v1/queue-chats/${triageChat}/wrapup`, { token: judyToken, body: { tags: ['bogus'], note: '' } });
  assert.equal(bogus.status, 400, `unknown tag refused: ${bogus.text}`);

  await j.check('[data-testid=wrapup-tag][data-tag=resolved]');
  await j.fill('[data-testid=wrapup-note]', 'Power cycle fixed it');
  await j.click('[data-testid=wrapup-submit]');
  await j.locator('[data-testid=wrapup-done]').waitFor({ state: 'visible' });
  await panel.waitFor({ state: 'hidden' });
  assert.equal(await j.locator('[data-testid=wrapup-error]').isVisible(), false);

  // Closed: no longer in wrap-up, and the statistics count it as handled.
  await eventually('the chat closed', async () => {
    const r = await rest('GET', `/api/v1/queue-chats/${triageChat}`, { token: judyToken });
    return r.status === 404 || (r.status === 200 && r.json.state === 'closed');
  });
  const stats = await eventually('no active chat in Triage Desk', async () => {
    const r = await rest('GET', '/api/v1/queues/triage/stats', { token: adminToken });
    assert.equal(r.status, 200, r.text);
    return r.json.realtime.active_chats === 0 ? r.json : null;
  });
  assert.ok(stats.interval.accepted >= 1, `accepted counted: ${JSON.stringify(stats.interval)}`);
  assert.equal(stats.realtime.seekers_waiting, 0);
  // Reloading does not bring the panel back.
  await j.reload();
  await waitIn(j, () => window.__switchboard.connected());
  await waitQueueChatOpen(j);
  await waitIn(j, () => /ended/i.test(document.querySelector('[data-testid=queue-chat-status]').textContent));
  assert.equal(await panel.isVisible(), false, 'no wrap-up panel after a reload');
});

check('e. an offline message: Niaj takes it from the list and answers it', async () => {
  // Nobody of After Hours is signed in: Bob's chat is taken as an offline message.
  const bob = await newClient('bob');
  await signIn(bob, BOB);
  const b = bob.page;
  await askForHelp(b, 'afterhours', 'Please reset my VPN token');
  await waitQueueChatOpen(b);
  await waitIn(b, (t) => document.querySelector('[data-testid=queue-chat-status]').textContent === t, OFFLINE_TEXT);
  assert.equal(await b.getAttribute('[data-testid=queue-bar]', 'data-state'), 'offline');
  const chat = Number(await b.getAttribute('[data-testid=queue-bar]', 'data-chat'));
  await send(b, 'My user id is bob42.');

  const adminToken = await login(ADMIN);
  const before0 = await rest('GET', '/api/v1/queues/afterhours/offline', { token: adminToken });
  assert.equal(before0.status, 200, before0.text);
  const m0 = before0.json.messages.find((x) => x.chat === chat);
  assert.ok(m0, `listed as an offline message: ${before0.text}`);
  assert.equal(m0.taken_by, null);
  assert.equal(m0.question, 'Please reset my VPN token');

  // Niaj signs in later and takes it from the list.
  const niaj = await newClient('niaj');
  await signIn(niaj, NIAJ);
  const n = niaj.page;
  await openQueuesTab(n);
  const item = n.locator(`[data-testid=offline-list][data-queue=afterhours] [data-testid=offline-message][data-chat="${chat}"]`);
  await item.waitFor({ state: 'visible' });
  assert.equal(await item.locator('[data-testid=offline-question]').textContent(), 'Please reset my VPN token');
  assert.match(await item.locator('[data-testid=offline-seeker]').textContent(), /Bob/);
  await screenshot(niaj, 'e-offline-list');
  await item.locator('[data-testid=offline-take]').click();
  const conv = await waitQueueChatOpen(n);
  assert.equal(conv, m0.conversation, 'the seeker\'s conversation');
  await waitForMessage(n, 'My user id is bob42.');
  assert.match(await statusText(n), /Offline message|chat with/);
  await send(n, 'Done: your token is reset.');
  await waitForMessage(b, 'Done: your token is reset.');

  const after0 = await rest('GET', '/api/v1/queues/afterhours/offline', { token: adminToken });
  const m1 = after0.json.messages.find((x) => x.chat === chat);
  assert.equal(m1.taken_by, NIAJ);
  assert.equal(typeof m1.taken_at, 'number');
  // The list shows it as taken.
  await openQueuesTab(n);
  await n.locator(`[data-testid=offline-message][data-chat="${chat}"][data-taken=me]`).waitFor({ state: 'visible' });
  assert.equal(await n.locator(`[data-testid=offline-message][data-chat="${chat}"] [data-testid=offline-take]`).isVisible(), false);
});

check('f. the admin page saves hours, form fields, canned responses, tags and rollover; they round-trip', async () => {
  await putQueue('roundtrip', {
    display_name: 'Round Trip',
    members: [{ address: GRACE }],
    canned: [{ title: 'Hello', text: 'Hello there' }],
  });
  const admin = await newClient('admin');
  await signIn(admin, ADMIN);
  const p = admin.page;
  await p.click('[data-testid=manage-queues]');
  const row = '[data-testid=queue-row][data-id="roundtrip"]';
  await p.locator(row).waitFor({ state: 'visible' });
  await p.click(`${row} [data-testid=queue-edit]`);
  await waitIn(p, () => document.querySelector('[data-testid=qf-id]')?.value === 'roundtrip');
  // What the server has is in the form.
  await p.locator('[data-testid=qf-canned]').first().waitFor({ state: 'visible' });
  assert.equal(await p.inputValue('[data-testid=qf-canned-title]'), 'Hello');
  assert.equal(await p.inputValue('[data-testid=qf-canned-text]'), 'Hello there');
  assert.equal(await p.isChecked('[data-testid=qf-hours-on]'), false, 'open around the clock');

  // Rollover.
  await p.selectOption('[data-testid=qf-overflow-action]', 'queue');
  await p.locator('[data-testid=qf-overflow-queue]').waitFor({ state: 'visible' });
  await p.selectOption('[data-testid=qf-overflow-queue]', 'sales');
  await p.selectOption('[data-testid=qf-no-expert-action]', 'offline_message');
  assert.equal(await p.locator('[data-testid=qf-no-expert-queue]').isVisible(), false);
  await p.fill('[data-testid=qf-offline-message]', `Leave a message ${HOSTILE}`);
  // Business hours: Monday 9–17, Saturday 10–midnight, two holidays.
  await p.check('[data-testid=qf-hours-on]');
  await p.fill('[data-testid=qf-hours-tz]', 'Europe/Berlin');
  await p.click('[data-testid=qf-span-add]');
  await p.click('[data-testid=qf-span-add]');
  const spans = p.locator('[data-testid=qf-span]');
  assert.equal(await spans.count(), 2);
  await spans.nth(1).locator('[data-testid=qf-span-day]').selectOption('sat');
  await spans.nth(1).locator('[data-testid=qf-span-open]').fill('10:00');
  await spans.nth(1).locator('[data-testid=qf-span-close]').fill('24:00');
  await p.fill('[data-testid=qf-holidays]', '2026-12-25\n2026-12-26');
  // Pre-chat form: a required e-mail and a choice.
  await p.click('[data-testid=qf-field-add]');
  await p.click('[data-testid=qf-field-add]');
  const fields = p.locator('[data-testid=qf-field]');
  await fields.nth(0).locator('[data-testid=qf-field-name]').fill('email');
  await fields.nth(0).locator('[data-testid=qf-field-label]').fill('Your e-mail');
  await fields.nth(0).locator('[data-testid=qf-field-kind]').selectOption('email');
  await fields.nth(0).locator('[data-testid=qf-field-required]').check();
  await fields.nth(1).locator('[data-testid=qf-field-name]').fill('topic');
  await fields.nth(1).locator('[data-testid=qf-field-label]').fill('Topic');
  assert.equal(await fields.nth(1).locator('[data-testid=qf-field-options]').isVisible(), false, 'choices only for a choice field');
  await fields.nth(1).locator('[data-testid=qf-field-kind]').selectOption('select');
  await fields.nth(1).locator('[data-testid=qf-field-options]').fill('vpn, printer');
  // A second canned response; wrap-up.
  await p.click('[data-testid=qf-canned-add]');
  const canned = p.locator('[data-testid=qf-canned]');
  await canned.nth(1).locator('[data-testid=qf-canned-title]').fill('Bye');
  await canned.nth(1).locator('[data-testid=qf-canned-text]').fill('Bye for now!');
  await p.fill('[data-testid=qf-wrapup-tags]', 'resolved, escalated');
  await p.fill('[data-testid=qf-wrapup-s]', '45');
  await screenshot(admin, 'f-queue-form');
  await p.click('[data-testid=qf-save]');
  await p.locator('[data-testid=qf-save]').waitFor({ state: 'hidden' });
  assert.equal(await p.locator('[data-testid=qf-error]').isVisible(), false);

  const want = {
    overflow_action: 'queue',
    overflow_queue: 'sales',
    no_expert_action: 'offline_message',
    offline_message: `Leave a message ${HOSTILE}`,
    hours: {
      tz: 'Europe/Berlin',
      weekly: [{ day: 'mon', open: '09:00', close: '17:00' }, { day: 'sat', open: '10:00', close: '24:00' }],
      holidays: ['2026-12-25', '2026-12-26'],
    },
    canned: [{ title: 'Hello', text: 'Hello there' }, { title: 'Bye', text: 'Bye for now!' }],
    wrap_up_tags: ['resolved', 'escalated'],
    wrap_up_s: 45,
  };
  const got = await getQueue('roundtrip');
  for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, `${k} round-trips`);
  assert.deepEqual(got.form.map((f) => ({ name: f.name, label: f.label, kind: f.kind, required: !!f.required })), [
    { name: 'email', label: 'Your e-mail', kind: 'email', required: true },
    { name: 'topic', label: 'Topic', kind: 'select', required: false },
  ]);
  assert.deepEqual(got.form[1].options, ['vpn', 'printer']);
  assert.deepEqual(got.members.map((m) => m.address), [GRACE], 'the experts are kept');
  assert.equal(got.display_name, 'Round Trip');

  // Opened again, the form shows what was saved.
  await p.click(`${row} [data-testid=queue-edit]`);
  await waitIn(p, () => document.querySelector('[data-testid=qf-id]')?.value === 'roundtrip');
  await p.locator('[data-testid=qf-span]').nth(1).waitFor({ state: 'visible' });
  assert.equal(await p.isChecked('[data-testid=qf-hours-on]'), true);
  assert.equal(await p.inputValue('[data-testid=qf-hours-tz]'), 'Europe/Berlin');
  assert.equal(await p.locator('[data-testid=qf-span]').count(), 2);
  assert.equal(await p.locator('[data-testid=qf-span]').nth(1).locator('[data-testid=qf-span-day]').inputValue(), 'sat');
  assert.equal(await p.locator('[data-testid=qf-span]').nth(1).locator('[data-testid=qf-span-close]').inputValue(), '24:00');
  assert.equal(await p.locator('[data-testid=qf-field]').count(), 2);
  assert.equal(await p.locator('[data-testid=qf-field]').nth(1).locator('[data-testid=qf-field-options]').inputValue(), 'vpn, printer');
  assert.equal(await p.locator('[data-testid=qf-canned]').count(), 2);
  assert.equal(await p.inputValue('[data-testid=qf-wrapup-tags]'), 'resolved, escalated');
  assert.equal(await p.inputValue('[data-testid=qf-wrapup-s]'), '45');
  assert.equal(await p.inputValue('[data-testid=qf-overflow-action]'), 'queue');
  assert.equal(await p.inputValue('[data-testid=qf-overflow-queue]'), 'sales');
  assert.equal(await p.inputValue('[data-testid=qf-offline-message]'), `Leave a message ${HOSTILE}`);
  // Removing a span and switching the hours off: open around the clock again.
  await p.uncheck('[data-testid=qf-hours-on]');
  await p.locator('[data-testid=qf-field]').nth(0).locator('[data-testid=qf-field-remove]').click();
  await p.click('[data-testid=qf-save]');
  await p.locator('[data-testid=qf-save]').waitFor({ state: 'hidden' });
  const got2 = await getQueue('roundtrip');
  assert.equal(got2.hours, null);
  assert.deepEqual(got2.form.map((f) => f.name), ['topic']);
  assert.deepEqual(got2.canned, want.canned, 'unchanged settings stay');

  // The quick "Close" action keeps every new setting.
  await p.click(`${row} [data-testid=queue-toggle-closed]`);
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-toggle-closed]`)?.textContent.trim() === 'Open', row);
  const got3 = await getQueue('roundtrip');
  assert.equal(got3.closed, true);
  for (const k of ['overflow_action', 'overflow_queue', 'no_expert_action', 'offline_message', 'canned', 'wrap_up_tags', 'wrap_up_s']) {
    assert.deepEqual(got3[k], got2[k], `${k} kept by the quick action`);
  }
  assert.deepEqual(got3.form, got2.form);

  // An invalid setting shows the server's own message.
  await p.click(`${row} [data-testid=queue-edit]`);
  await waitIn(p, () => document.querySelector('[data-testid=qf-id]')?.value === 'roundtrip');
  await p.locator('[data-testid=qf-field]').first().waitFor({ state: 'visible' });
  await p.locator('[data-testid=qf-field]').nth(0).locator('[data-testid=qf-field-name]').fill('Not A Slug!');
  await p.click('[data-testid=qf-save]');
  const err = p.locator('[data-testid=qf-error]');
  await err.waitFor({ state: 'visible' });
  assert.ok((await err.textContent()).trim().length > 0);
  assert.deepEqual((await getQueue('roundtrip')).form.map((f) => f.name), ['topic'], 'nothing saved');
  await p.click('[data-testid=qf-cancel]');
  await assertNoMarkup(admin);
});

check('g. an offer shows the pre-chat answers; when the seeker ends, the expert still tags the chat', async () => {
  await putQueue('formdesk', {
    display_name: 'Form Desk',
    method: 'broadcast',
    members: [{ address: GRACE }],
    form: [{ name: 'asset', label: 'Asset tag', kind: 'text', required: true }],
    wrap_up_tags: ['hardware', 'software'],
    wrap_up_s: 0,
  });
  const grace = await newClient('grace');
  // The race of this step, made certain: the offer comes before the queue list and the queue's
  // definition (the labels of its form), which answer late. The offer must still show the
  // answer under its label, "Asset tag", not under the raw field name.
  let lateDefs = 0;
  const queueDefs = (u) => /^\/api\/v1\/queues(\/formdesk)?$/.test(u.pathname);
  await grace.context.route(queueDefs, async (route) => {
    if (route.request().method() === 'GET') { lateDefs++; await new Promise((res) => setTimeout(res, 700)); }
    await route.fallback();
  });
  await signIn(grace, GRACE);
  const g = grace.page;
  const bobToken = await login(BOB);
  const r = await rest('POST', '/api/v1/queues/formdesk/chats', { token: bobToken, body: { question: 'Screen flickers', answers: { asset: `A-1234 ${HOSTILE}` } } });
  assert.equal(r.status, 201, r.text);
  const chat = r.json.chat;
  const offer = g.locator(`[data-testid=offer][data-chat="${chat}"]`);
  await offer.waitFor({ state: 'visible' });
  assert.equal(await offer.locator('[data-testid=answer][data-name=asset] [data-testid=answer-value]').textContent(), `A-1234 ${HOSTILE}`);
  assert.match(await offer.locator('[data-testid=answer][data-name=asset]').textContent(), /Asset tag/);
  assert.ok(lateDefs > 0, 'the queue definitions were asked for (late)');
  await assertNoMarkup(grace);
  await grace.context.unroute(queueDefs);
  await offer.locator('[data-testid=offer-accept]').click();
  await waitQueueChatOpen(g);
  await g.locator('[data-testid=queue-chat-answers] [data-testid=answer][data-name=asset]').waitFor({ state: 'visible' });

  // Bob ends it (no wrap-up time): closed at once, and Grace is asked for the tags.
  const end = await rest('POST', `/api/v1/queue-chats/${chat}/end`, { token: bobToken });
  assert.ok(end.status === 204 || end.status === 200, `end: ${end.status} ${end.text}`);
  await waitIn(g, () => /ended/i.test(document.querySelector('[data-testid=queue-chat-status]').textContent));
  await g.locator('[data-testid=wrapup-panel]').waitFor({ state: 'visible' });
  assert.equal(await g.getAttribute('[data-testid=wrapup-panel]', 'data-state'), 'closed');
  await g.check('[data-testid=wrapup-tag][data-tag=hardware]');
  await g.click('[data-testid=wrapup-submit]');
  await g.locator('[data-testid=wrapup-done]').waitFor({ state: 'visible' });
  assert.equal(await g.locator('[data-testid=wrapup-panel]').isVisible(), false);
});
