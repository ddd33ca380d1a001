// End-to-end test of the Switchboard web client: the real server, Debian's Chromium,
// two (or more) signed-in browser contexts talking to each other.
//
//   cd tests/browser && npm install && node --test
//
// Environment:
//   SWITCHBOARD_BIN  server binary (default <repo>/target/debug/switchboard)
//   SWITCHBOARD_URL  use an already running server (started with --demo) instead of starting one
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   if set, screenshots of the signed-in UI are written there
//   SERVER_START_TIMEOUT_MS  how long to wait for "listening http://…" (default 30000)
//   WEB_DIR          serve index.html, app.js and app.css from this folder instead of the copies
//                    compiled into the server (client development without a rebuild)

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchChromium, loginAt, makeCheck, newContextAt, PageClient, restAt, saveScreenshot, signInAt, useSwitchboard, WAIT,
  waitForMessage, waitIn,
} from './harness.mjs';

const PASSWORD = 'demo';
const ADMIN = 'admin@example.com';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CAROL = 'carol@example.com';

let sb = null; // the server (SWITCHBOARD_URL, or one started here): see harness.mjs
let base = '';
let browser = null;
const clients = []; // every Client created, for diagnostics
let alice = null;
let bob = null;
let convId = null; // Alice <-> Bob direct conversation

// ------------------------------------------------------------------ browser clients

async function newClient(name, viewport = { width: 1280, height: 800 }) {
  const context = await newContextAt(browser, base, { viewport });
  const c = new PageClient(name, context, await context.newPage());
  clients.push(c);
  return c;
}

/** Signs in through the form; waits for the signed-in view (not for the WebSocket). */
const signIn = (c, address) => signInAt(base, c, address, PASSWORD, { waitForSocket: false });

async function ensureAliceBob() {
  if (!alice) { alice = await newClient('alice'); await signIn(alice, ALICE); }
  if (!bob) { bob = await newClient('bob'); await signIn(bob, BOB); }
}

/** Alice opens (or creates) the direct chat with Bob; Bob opens it too. */
async function ensureDirectChat() {
  await ensureAliceBob();
  if (convId === null) {
    await alice.page.click('[data-testid=tab-contacts]');
    await alice.page.locator(`[data-testid=contact][data-address="${BOB}"]`).first().click();
    convId = await waitForChatOpen(alice.page);
  }
  for (const c of [alice, bob]) {
    if ((await c.page.getAttribute('[data-testid=chat]', 'data-id')) !== convId) {
      await c.page.click('[data-testid=tab-chats]');
      await c.page.click(`[data-testid=conversation][data-id="${convId}"]`);
      await waitForChatOpen(c.page, convId);
    }
  }
}

async function waitForChatOpen(page, id) {
  await page.locator('[data-testid=composer]').waitFor({ state: 'visible' });
  const h = await page.waitForFunction((want) => {
    const v = document.querySelector('[data-testid=chat]').getAttribute('data-id');
    return v && (!want || v === want) ? v : null;
  }, id || null, { timeout: WAIT, polling: 50 });
  return h.jsonValue();
}

function presenceSelector(addr, state) {
  return `[data-testid=contact][data-address="${addr}"] [data-testid=presence][data-state="${state}"]`;
}

async function waitForPresence(page, addr, state) {
  await page.waitForSelector(presenceSelector(addr, state), { state: 'attached', timeout: WAIT });
}

/** [{id, body}] of the stored messages shown, in display order. */
function shownMessages(page) {
  return page.$$eval('[data-testid=message][data-id]', (els) => els.map((e) => ({
    id: e.getAttribute('data-id'),
    body: e.querySelector('[data-testid=message-body]').textContent,
  })));
}

async function send(page, text) {
  await page.fill('[data-testid=composer]', text);
  await page.click('[data-testid=send]');
}

const screenshot = (c, name) => saveScreenshot(c, name, { fullPage: false });

/** Runs a test body; on failure prints what the pages and the server said. */
const check = makeCheck({ clients, tail: () => sb?.tail() });

// ------------------------------------------------------------------ lifecycle

before(async () => {
  sb = await useSwitchboard();
  base = sb.base;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => {});
  await sb?.stop();
});

// ------------------------------------------------------------------ tests

check('a. presence: Alice sees Bob sign in, go dnd, then away with a note', async () => {
  alice = await newClient('alice');
  await signIn(alice, ALICE);
  const a = alice.page;
  await a.click('[data-testid=tab-contacts]');
  // Bob has no session yet.
  await waitForPresence(a, BOB, 'offline');
  if (await a.locator(`[data-testid=contact][data-address="${ALICE}"]`).count() > 0) {
    await waitForPresence(a, ALICE, 'available'); // her own entry
  }

  bob = await newClient('bob');
  await signIn(bob, BOB);
  await waitForPresence(a, BOB, 'available');

  await bob.page.selectOption('[data-testid=presence-select]', 'dnd');
  await waitForPresence(a, BOB, 'dnd');

  const note = 'Out for lunch, back at 2';
  await bob.page.fill('[data-testid=presence-note]', note);
  await bob.page.selectOption('[data-testid=presence-select]', 'away');
  await waitForPresence(a, BOB, 'away');
  await waitIn(a, ([addr, n]) => [...document.querySelectorAll(`[data-testid=contact][data-address="${addr}"]`)]
    .some((row) => row.textContent.includes(n)), [BOB, note]);

  // Back to available for the rest of the run.
  await bob.page.fill('[data-testid=presence-note]', '');
  await bob.page.selectOption('[data-testid=presence-select]', 'available');
  await waitForPresence(a, BOB, 'available');
  await waitIn(a, ([addr, n]) => ![...document.querySelectorAll(`[data-testid=contact][data-address="${addr}"]`)]
    .some((row) => row.textContent.includes(n)), [BOB, note]);
});

check('b. chat: Alice and Bob exchange messages, with unread badge, typing and the same order', async () => {
  await ensureAliceBob();
  const a = alice.page;
  const b = bob.page;
  await b.click('[data-testid=tab-chats]');

  await a.click('[data-testid=tab-contacts]');
  await a.locator(`[data-testid=contact][data-address="${BOB}"]`).first().click();
  convId = await waitForChatOpen(a);

  await send(a, 'hello bob');
  await waitForMessage(a, 'hello bob');
  assert.equal(await a.locator('[data-testid=message][data-pending]').count(), 0, 'acknowledged, nothing pending');

  // Bob: the conversation shows up with one unread message before he opens it.
  const badge = `[data-testid=conversation][data-id="${convId}"] [data-testid=unread]`;
  await waitIn(b, (sel) => document.querySelector(sel)?.textContent.trim() === '1', badge);
  await waitIn(b, () => document.title.startsWith('(1)'));
  assert.match(await b.textContent(`[data-testid=conversation][data-id="${convId}"]`), /hello bob/);

  await b.click(`[data-testid=conversation][data-id="${convId}"]`);
  await waitForChatOpen(b, convId);
  await waitForMessage(b, 'hello bob');
  await b.locator(badge).waitFor({ state: 'detached' });
  await waitIn(b, () => !document.title.startsWith('('));

  // Typing indicator, then the reply.
  await b.fill('[data-testid=composer]', 'hi alice');
  await waitIn(a, () => /bob/i.test(document.querySelector('[data-testid=typing]').textContent)
    && /typing/i.test(document.querySelector('[data-testid=typing]').textContent));
  await b.click('[data-testid=send]');
  await waitForMessage(b, 'hi alice');
  await waitForMessage(a, 'hi alice');
  await waitIn(a, () => document.querySelector('[data-testid=typing]').textContent.trim() === '');

  const fromA = await shownMessages(a);
  const fromB = await shownMessages(b);
  assert.deepEqual(fromA.map((m) => m.body), ['hello bob', 'hi alice']);
  assert.deepEqual(fromA, fromB, 'both see the same messages, same ids, same order');

  await screenshot(alice, 'chat-desktop');
  await a.setViewportSize({ width: 390, height: 844 });
  await screenshot(alice, 'chat-phone');
  await a.click('[data-testid=back]');
  await a.locator('[data-testid=tab-chats]').waitFor({ state: 'visible' });
  await screenshot(alice, 'list-phone');
  await a.setViewportSize({ width: 1280, height: 800 });
  await a.click('[data-testid=tab-chats]');
  await a.click(`[data-testid=conversation][data-id="${convId}"]`);
  await waitForChatOpen(a, convId);
});

check('c. hostile text is shown as text, never run', async () => {
  await ensureDirectChat();
  const a = alice.page;
  const b = bob.page;
  const payloads = [
    '<img src=x onerror=alert(1)>',
    '<img src=x onerror="window.__xss=1">',
    '<script>window.__xss=2</script><b>bold?</b>',
    'javascript:window.__xss=3 <a href="javascript:window.__xss=4">x</a>',
  ];
  for (const p of payloads) await send(a, p);
  for (const p of payloads) {
    await waitForMessage(b, p);
    await waitForMessage(a, p);
  }
  // A hostile presence note.
  const note = '<img src=x onerror="window.__xss=5">';
  await b.fill('[data-testid=presence-note]', note);
  await b.press('[data-testid=presence-note]', 'Enter');
  await a.click('[data-testid=tab-contacts]');
  await waitIn(a, ([addr, n]) => [...document.querySelectorAll(`[data-testid=contact][data-address="${addr}"] [data-testid=presence-text]`)]
    .some((e) => e.textContent === n), [BOB, note]);

  for (const c of [alice, bob]) {
    const r = await c.page.evaluate(() => ({
      imgs: document.querySelectorAll('img').length,
      imgsInMessages: document.querySelectorAll('[data-testid=messages] img').length,
      scripts: document.querySelectorAll('[data-testid=messages] script, [data-testid=messages] b').length,
      jsLinks: [...document.querySelectorAll('a[href]')].filter((x) => !/^https?:/i.test(x.href)).length,
      xss: typeof window.__xss,
    }));
    assert.equal(r.imgsInMessages, 0, `${c.name}: no <img> in the messages area`);
    assert.equal(r.imgs, 0, `${c.name}: no <img> anywhere`);
    assert.equal(r.scripts, 0, `${c.name}: no markup from messages`);
    assert.equal(r.jsLinks, 0, `${c.name}: no javascript: links`);
    assert.equal(r.xss, 'undefined', `${c.name}: window.__xss stays undefined`);
    assert.deepEqual(c.dialogs, [], `${c.name}: no dialog fired`);
  }
  const bodies = (await shownMessages(b)).map((m) => m.body);
  assert.deepEqual(bodies.slice(-payloads.length), payloads, 'exact literal text, in order');
  await b.fill('[data-testid=presence-note]', '');
  await b.press('[data-testid=presence-note]', 'Enter');
});

check('d. a wrong password shows the server\'s error message', async () => {
  const c = await newClient('carol-wrong');
  const { page } = c;
  await page.goto(`${base}/`);
  await page.fill('[data-testid=login-address]', CAROL);
  await page.fill('[data-testid=login-password]', 'not-the-password');
  await page.click('[data-testid=login-submit]');
  const err = page.locator('[data-testid=login-error]');
  await err.waitFor({ state: 'visible' });
  const shown = (await err.textContent()).trim();
  assert.ok(shown.length > 0, 'an error text is shown');
  assert.ok(!/undefined|\[object/i.test(shown), `a readable message, got ${JSON.stringify(shown)}`);
  assert.equal(await page.locator('[data-testid=signout]').isVisible(), false, 'not signed in');
  assert.ok(!(await c.context.cookies()).some((k) => k.name === 'sb_session'), 'no session cookie');

  // It is the server's own message.
  const r = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ address: CAROL, password: 'not-the-password' }),
  });
  const body = await r.json();
  assert.ok(r.status >= 400 && body.error && body.error.code, `error shape: ${JSON.stringify(body)}`);
  if (body.error.code !== 'rate_limited') assert.equal(shown, body.error.message);

  // The right password still works from the same form.
  await page.fill('[data-testid=login-password]', PASSWORD);
  await page.click('[data-testid=login-submit]');
  await page.locator('[data-testid=signout]').waitFor({ state: 'visible' });
  await c.context.close();
  clients.splice(clients.indexOf(c), 1);
});

check('e. after a reload the history is there, and what Bob sent meanwhile appears', async () => {
  await ensureDirectChat();
  const before = await shownMessages(alice.page);
  assert.ok(before.length >= 2, 'there is a history to keep');

  await alice.page.reload();
  await alice.page.locator('[data-testid=signout]').waitFor({ state: 'visible' });
  assert.equal(await alice.page.locator('[data-testid=login-address]').isVisible(), false, 'no sign-in form');
  await waitForChatOpen(alice.page, convId); // the open chat is in the URL
  for (const m of before) await waitForMessage(alice.page, m.body);
  assert.deepEqual(await shownMessages(alice.page), before);

  // Alice closes the page; Bob writes; Alice comes back.
  await alice.page.close();
  const later = `are you still there? ${Date.now()}`;
  await send(bob.page, later);
  await waitForMessage(bob.page, later);

  const a = await alice.newPage();
  await a.goto(`${base}/`);
  await a.locator('[data-testid=signout]').waitFor({ state: 'visible' });
  const row = `[data-testid=conversation][data-id="${convId}"]`;
  await waitIn(a, (sel) => document.querySelector(`${sel} [data-testid=unread]`)?.textContent.trim() === '1', row);
  assert.match(await a.textContent(row), /are you still there\?/);
  await a.click(row);
  await waitForChatOpen(a, convId);
  await waitForMessage(a, later);
  const now = await shownMessages(a);
  assert.deepEqual(now.slice(0, before.length), before, 'older history unchanged');
  assert.equal(now[now.length - 1].body, later);
  assert.deepEqual(now, await shownMessages(bob.page), 'same as Bob sees');
  await a.locator(`${row} [data-testid=unread]`).waitFor({ state: 'detached' });
});

check('f. a dropped connection resumes: nothing lost, nothing twice, un-acked sends go out once', async () => {
  await ensureDirectChat();
  const a = alice.page;
  const b = bob.page;
  await b.evaluate(() => window.__switchboard.disconnect());
  await waitIn(b, () => !window.__switchboard.connected());

  const fromAlice = `sent while Bob was offline ${Date.now()}`;
  await send(a, fromAlice);
  await waitForMessage(a, fromAlice);
  const fromBob = `queued by Bob while offline ${Date.now()}`;
  await send(b, fromBob);
  await b.locator('[data-testid=message][data-pending]').waitFor({ state: 'attached' });

  await b.evaluate(() => window.__switchboard.reconnect());
  await waitIn(b, () => window.__switchboard.connected());
  assert.match(await b.evaluate(() => window.__switchboard.wsUrl()), /[?&]resume_from=\d+/);
  await waitForMessage(b, fromAlice);
  await waitForMessage(b, fromBob);
  await waitForMessage(a, fromBob);
  await b.locator('[data-testid=message][data-pending]').waitFor({ state: 'detached' });

  for (const c of [alice, bob]) {
    const msgs = await shownMessages(c.page);
    const ids = msgs.map((m) => m.id);
    assert.equal(new Set(ids).size, ids.length, `${c.name}: no message shown twice`);
    assert.equal(msgs.filter((m) => m.body === fromAlice).length, 1, `${c.name}: Alice's message once`);
    assert.equal(msgs.filter((m) => m.body === fromBob).length, 1, `${c.name}: Bob's message once`);
  }
  assert.deepEqual(await shownMessages(a), await shownMessages(b), 'same order on both sides');
});

check('g. idle after inactivity is shown to others, and cleared on activity', async () => {
  await ensureAliceBob();
  const a = alice.page;
  await a.click('[data-testid=tab-contacts]');
  await waitForPresence(a, BOB, 'available');
  const idleSel = (v) => `[data-testid=contact][data-address="${BOB}"] [data-testid=presence][data-idle="${v}"]`;
  await bob.page.evaluate(() => window.__switchboard.setIdleAfter(0));
  await a.waitForSelector(idleSel('true'), { state: 'attached', timeout: WAIT });
  await bob.page.evaluate(() => window.__switchboard.setIdleAfter(5 * 60 * 1000));
  await bob.page.mouse.move(10, 10);
  await bob.page.mouse.move(40, 40);
  await a.waitForSelector(idleSel('false'), { state: 'attached', timeout: WAIT });
});

check('h. signing out ends the session and shows the sign-in form', async () => {
  const c = await newClient('carol');
  await signIn(c, CAROL);
  await c.page.click('[data-testid=signout]');
  await c.page.locator('[data-testid=login-address]').waitFor({ state: 'visible' });
  await c.page.reload();
  await c.page.locator('[data-testid=login-address]').waitFor({ state: 'visible' });
  assert.equal(await c.page.locator('[data-testid=signout]').isVisible(), false);
  await c.context.close();
  clients.splice(clients.indexOf(c), 1);
});

/** The composer's height and whether its text (or placeholder) fits, in `page`. */
function composerBox(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid=composer]');
    return { height: c.getBoundingClientRect().height, fits: c.scrollHeight <= c.clientHeight + 1 };
  });
}

check('i. the composer has its normal height at once: on a direct link, after a reload, after sending', async () => {
  await ensureDirectChat();
  const link = `${base}/#/c/${convId}`;
  // A direct link to the conversation, in a new page.
  const p = await alice.newPage();
  await p.goto(link);
  await waitForChatOpen(p, convId);
  const linked = await composerBox(p);
  assert.ok(linked.height >= 30 && linked.fits, `direct link: the composer is ${linked.height}px high, fits: ${linked.fits}`);
  // After a reload.
  await p.reload();
  await waitForChatOpen(p, convId);
  const reloaded = await composerBox(p);
  assert.ok(reloaded.height >= 30 && reloaded.fits, `after a reload: the composer is ${reloaded.height}px high, fits: ${reloaded.fits}`);
  // It grows with several lines, and is back to the same height once the message is sent.
  await p.fill('[data-testid=composer]', 'one\ntwo\nthree');
  const grown = await composerBox(p);
  assert.ok(grown.height > reloaded.height && grown.fits, `three lines: ${grown.height}px`);
  await p.click('[data-testid=send]');
  await waitForMessage(p, 'one\ntwo\nthree');
  assert.deepEqual(await composerBox(p), reloaded, 'back to one line after sending');
  // The same height as a composer that was typed in and emptied.
  await p.fill('[data-testid=composer]', 'x');
  await p.fill('[data-testid=composer]', '');
  assert.deepEqual(await composerBox(p), reloaded);
});

check('j. a display name starting with U+202E (RIGHT-TO-LEFT OVERRIDE) does not reorder the text around it', async () => {
  await ensureAliceBob();
  const RLO = '\u202E';
  const name = `${RLO}Eve Reversed`;
  const addr = `rlo${Date.now()}@example.com`;
  const admin = await loginAt(base, ADMIN, PASSWORD);
  const made = await restAt(base, 'POST', '/api/v1/admin/users', { token: admin, body: { address: addr, display_name: name, password: PASSWORD } });
  assert.equal(made.status, 201, `create the user: ${made.text}`);
  const token = await loginAt(base, addr, PASSWORD);
  const conv = await restAt(base, 'POST', '/api/v1/conversations', { token, body: { kind: 'group', members: [ALICE, BOB] } });
  assert.ok(conv.status === 200 || conv.status === 201, `create the group: ${conv.status} ${conv.text}`);
  const id = String((conv.json.conversation || conv.json).id);
  const sent = await restAt(base, 'POST', `/api/v1/conversations/${id}/messages`, { token, body: { body: 'hello everyone' } });
  assert.ok(sent.status === 200 || sent.status === 201, `send: ${sent.status} ${sent.text}`);

  const a = alice.page;
  await a.click('[data-testid=tab-chats]');
  const row = `[data-testid=conversation][data-id="${id}"]`;
  await waitIn(a, (sel) => /hello everyone/.test(document.querySelector(`${sel} .row-preview`)?.textContent || ''), row);
  await a.click(row);
  await waitForChatOpen(a, id);
  await waitForMessage(a, 'hello everyone');
  await waitIn(a, (n) => [...document.querySelectorAll('[data-testid=event][data-kind=created] .sys-text')].some((e) => e.textContent.startsWith(n)), name);

  // In the page: is `node` (or an ancestor up to `stop`) bidi-isolated, and where is it drawn?
  const layout = await a.evaluate(([sel, n]) => {
    const isolated = (e) => e && (e.tagName === 'BDI' || getComputedStyle(e).unicodeBidi === 'isolate');
    const box = (node) => { const r = document.createRange(); r.selectNodeContents(node); return r.getBoundingClientRect(); };
    /** The pieces of `line`: [{text, isolated, left, right}], in DOM order. */
    const pieces = (line) => [...line.childNodes].map((c) => ({
      text: c.textContent, isolated: c.nodeType === 1 && isolated(c), left: box(c).left, right: box(c).right,
    }));
    const created = [...document.querySelectorAll('[data-testid=event][data-kind=created] .sys-text')].find((e) => e.textContent.startsWith(n));
    const sender = [...document.querySelectorAll('[data-testid=message]')].find((m) => m.querySelector('[data-testid=message-body]').textContent === 'hello everyone');
    const senderName = sender.querySelector('.msg-sender');
    return {
      created: pieces(created),
      preview: pieces(document.querySelector(`${sel} .row-preview`)),
      rowTitle: pieces(document.querySelector(`${sel} .row-title`)),
      chatTitle: pieces(document.querySelector('[data-testid=chat-title]')),
      sender: { text: senderName.textContent, isolated: isolated(senderName), right: box(senderName).right, timeLeft: box(sender.querySelector('.msg-time')).left },
    };
  }, [row, name]);

  // "‮Eve Reversed created the conversation": the name isolated, the words after it still after it.
  assert.deepEqual(layout.created.map((x) => [x.text, x.isolated]), [[name, true], [' created the conversation', false]]);
  assert.ok(layout.created[1].left >= layout.created[0].right - 1, `the words are drawn after the name: ${JSON.stringify(layout.created)}`);
  // The preview "‮Eve: hello everyone" in the list: the name and the message isolated, in order.
  assert.deepEqual(layout.preview.map((x) => [x.text, x.isolated]), [[`${RLO}Eve`, true], [': ', false], ['hello everyone', true]]);
  for (let i = 1; i < layout.preview.length; i++) {
    assert.ok(layout.preview[i].left >= layout.preview[i - 1].right - 1, `preview piece ${i} is drawn after piece ${i - 1}: ${JSON.stringify(layout.preview)}`);
  }
  // The group's title names both, each isolated, Bob after Eve.
  for (const t of [layout.rowTitle, layout.chatTitle]) {
    const names = t.filter((x) => x.isolated).map((x) => x.text);
    assert.equal(names.length, 2, `two names in the title: ${JSON.stringify(t)}`);
    assert.ok(names.includes(`${RLO}Eve`) && names.includes('Bob'));
    for (let i = 1; i < t.length; i++) assert.ok(t[i].left >= t[i - 1].right - 1, `title pieces in order: ${JSON.stringify(t)}`);
  }
  // The message's sender: isolated, its time drawn after it.
  assert.equal(layout.sender.text, name);
  assert.equal(layout.sender.isolated, true, 'the sender name is isolated');
  assert.ok(layout.sender.timeLeft >= layout.sender.right - 1, `the time is drawn after the sender: ${JSON.stringify(layout.sender)}`);
  await screenshot(alice, 'bidi-name');
});
