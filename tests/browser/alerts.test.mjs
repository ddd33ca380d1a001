// End-to-end test of alerts in the web client in headless Chromium: an administrator composes
// alerts in the "Alerts" page (audience by group and by people, priority, acknowledgement,
// escalation) and watches the deliveries live; recipients get cards by priority (an urgent
// one red and persistent with "Acknowledge", a low one quiet and gone by itself, a reminder
// marked as such), held alerts reach people when they sign in, replying "ack" in the alerts
// conversation acknowledges; the history lists the alerts with counts per state; people who
// are not administrators have no Alerts page. The real server, Debian's Chromium, one
// browser context per person.
//
//   cd tests/browser && npm install && node --test alerts.test.mjs
//
// Environment: as the other browser tests —
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
  assertNoMarkup as assertNoMarkupIn, launchChromium, loginAt, makeCheck, newContextAt, PageClient, restAt,
  saveScreenshot as screenshot, signInAt, useSwitchboard, waitIn,
} from './harness.mjs';

const PASSWORD = 'demo';
const ADMIN = 'admin@example.com';
const ALICE = 'alice@example.com'; // engineering
const BOB = 'bob@example.com'; // engineering
const ENGINEERING = [ALICE, BOB, 'carol@example.com', 'dave@example.com', 'erin@example.com'];
const HOSTILE = '<img src=x onerror=alert(1)>';

const URGENT_TITLE = 'Primary database down';
const URGENT_BODY = `db1 stopped answering ${HOSTILE} <script>alert(2)</script> & failover pending`;
const LOW_TITLE = 'Coffee machine fixed';
const HIGH_TITLE = 'TLS certificate expires tomorrow';

let sb = null; // the server (SWITCHBOARD_URL, or one started here): see harness.mjs
let base = '';
// Shared helpers (harness.mjs), bound to this file's server.
const rest = (method, p, opts) => restAt(base, method, p, opts);
const login = (address) => loginAt(base, address, PASSWORD);
const signIn = (c, address) => signInAt(base, c, address, PASSWORD);
let browser = null;
const clients = [];
let admin = null;
let alice = null;
let bob = null;
const sent = {}; // name -> alert id

// ------------------------------------------------------------------ REST helpers (Node side)

async function getJson(p, who = ADMIN) {
  const r = await rest('GET', p, { token: await login(who) });
  assert.equal(r.status, 200, `GET ${p} as ${who}: ${r.status} ${r.text}`);
  return r.json;
}

const stateOf = (alert, who) => (alert.deliveries.find((d) => d.user === who) || {}).state;

// ------------------------------------------------------------------ browser clients

async function newClient(name, viewport = { width: 1360, height: 900 }) {
  const context = await newContextAt(browser, base, { viewport });
  const c = new PageClient(name, context, await context.newPage());
  clients.push(c);
  return c;
}

/** No <img>, no <script> in the body, no dialog in `c`'s page. */
const assertNoMarkup = (c) => assertNoMarkupIn(c, { scripts: true });

const card = (id) => `[data-testid=alert-card][data-id="${id}"]`;
const delivery = (who) => `[data-testid=al-delivery][data-user="${who}"]`;

/** The admin opens the compose form (from wherever in the Alerts page). */
async function openCompose(p) {
  if (!(await p.locator('[data-testid=alerts-view]').isVisible())) await p.click('[data-testid=alerts-tab]');
  await p.click('[data-testid=al-tab-compose]');
  await p.locator('[data-testid=al-compose]').waitFor({ state: 'visible' });
}

/** Submits the form; resolves with the new alert's id (the page moves to its deliveries). */
async function submitAlert(p) {
  const before = await p.evaluate(() => location.hash);
  await p.click('[data-testid=al-send]');
  await waitIn(p, (h) => /^#\/alerts\/\d+$/.test(location.hash) && location.hash !== h, before);
  assert.equal(await p.locator('[data-testid=al-error]').isVisible(), false, 'no error sending');
  const id = Number((await p.evaluate(() => location.hash)).split('/').pop());
  await p.locator(`[data-testid=al-detail][data-id="${id}"]`).waitFor({ state: 'visible' });
  return id;
}

/** Runs a test body; on failure prints what the pages and the server said. */
const check = makeCheck({ clients, tail: () => sb?.tail(), screenshot, csp: true });

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

check('a. an urgent alert to engineering: alice acknowledges, bob gets it held when he signs in', async () => {
  admin = await newClient('admin');
  await signIn(admin, ADMIN);
  alice = await newClient('alice');
  await signIn(alice, ALICE);
  const p = admin.page;

  await p.locator('[data-testid=alerts-tab]').waitFor({ state: 'visible' });
  await p.click('[data-testid=alerts-tab]');
  await p.locator('[data-testid=alerts-view]').waitFor({ state: 'visible' });
  await p.locator('[data-testid=al-compose]').waitFor({ state: 'visible' });
  assert.equal(await p.locator('[data-testid=chat]').isVisible(), false, 'the page replaces the chat pane');
  assert.equal(await p.evaluate(() => location.hash), '#/alerts');
  // Groups and queues come from the directory.
  await p.locator('[data-testid=al-group][value=engineering]').waitFor({ state: 'visible' });
  await p.locator('[data-testid=al-queue][value=support]').waitFor({ state: 'visible' });

  await p.fill('[data-testid=al-title]', URGENT_TITLE);
  await p.fill('[data-testid=al-body]', URGENT_BODY);
  await p.selectOption('[data-testid=al-priority]', 'urgent');
  await p.check('[data-testid=al-group][value=engineering]');
  await p.check('[data-testid=al-ack]');
  sent.urgent = await submitAlert(p);

  const a = await getJson(`/api/v1/alerts/${sent.urgent}`);
  assert.equal(a.title, URGENT_TITLE);
  assert.equal(a.body, URGENT_BODY);
  assert.equal(a.priority, 'urgent');
  assert.equal(a.ack_required, true);
  assert.deepEqual(a.audience.groups, ['engineering']);
  assert.equal(a.offline, 'hold');
  assert.equal(a.ttl_s, 3600);
  assert.deepEqual(a.deliveries.map((d) => d.user).sort(), [...ENGINEERING].sort());

  // Alice: a red, persistent card with the title and the hostile body as text.
  const ap = alice.page;
  const c = ap.locator(card(sent.urgent));
  await c.waitFor({ state: 'visible' });
  assert.equal(await c.getAttribute('data-priority'), 'urgent');
  assert.equal(await c.getAttribute('data-state'), 'open');
  assert.equal(await c.getAttribute('data-reminder'), 'false');
  assert.equal(await c.locator('[data-testid=alert-title]').textContent(), URGENT_TITLE);
  assert.equal(await c.locator('[data-testid=alert-body]').textContent(), URGENT_BODY);
  assert.equal(await c.locator('[data-testid=alert-priority]').textContent(), 'Urgent');
  assert.ok(await c.evaluate((n) => n.classList.contains('pulse')), 'an open urgent alert pulses');
  assert.equal(await c.locator('[data-testid=alert-dismiss]').isVisible(), false, 'an urgent alert waiting for acknowledgement cannot be dismissed');
  const red = await c.evaluate((n) => getComputedStyle(n).borderLeftColor);
  assert.equal(red, 'rgb(198, 47, 47)', 'urgent cards are red');
  assert.match(await ap.title(), /^\(!\) /, 'the tab title flags an urgent alert');
  // The alerts conversation is marked in the sidebar.
  const row = ap.locator('[data-testid=conversation][data-alerts=true]');
  await row.waitFor({ state: 'visible' });
  await waitIn(ap, () => document.querySelector('[data-testid=conversation][data-alerts=true]')?.getAttribute('data-open-alerts') === '1');
  assert.equal(await row.locator('.row-title').textContent(), 'Alerts');
  assert.equal(Number(await c.getAttribute('data-conversation')), Number(await row.getAttribute('data-id')));
  await ap.waitForTimeout(300);
  await assertNoMarkup(alice);
  await screenshot(alice, 'a-urgent-card');

  await c.locator('[data-testid=alert-ack]').click();
  await ap.locator(`${card(sent.urgent)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  assert.equal(await c.locator('[data-testid=alert-status]').textContent(), 'Acknowledged');
  assert.equal(await c.locator('[data-testid=alert-ack]').isVisible(), false);
  assert.equal(await c.evaluate((n) => n.classList.contains('pulse')), false, 'no pulse once acknowledged');
  await waitIn(ap, () => document.querySelector('[data-testid=conversation][data-alerts=true]')?.getAttribute('data-open-alerts') === '0');
  assert.doesNotMatch(await ap.title(), /\(!\)/);

  // The admin's live table: alice acknowledged, bob (not signed in) pending.
  await p.locator(`${delivery(ALICE)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  await p.locator(`${delivery(BOB)}[data-state=pending]`).waitFor({ state: 'visible' });
  assert.notEqual((await p.locator(delivery(ALICE)).locator('[data-testid=al-acked-at]').textContent()).trim(), '—');
  assert.equal(await p.locator('[data-testid=al-delivery]').count(), ENGINEERING.length);
  await waitIn(p, () => {
    const n = (s) => document.querySelector(`[data-testid=al-d-count][data-state=${s}]`)?.getAttribute('data-count');
    return n('total') === '5' && n('acknowledged') === '1' && n('pending') === '4';
  });
  assert.equal(await p.locator('[data-testid=al-d-title]').textContent(), URGENT_TITLE);
  assert.equal(await p.locator('[data-testid=al-d-body]').textContent(), URGENT_BODY);
  assert.equal(stateOf(await getJson(`/api/v1/alerts/${sent.urgent}`), ALICE), 'acknowledged');
  await assertNoMarkup(admin);
  await screenshot(admin, 'a-live-table');

  // Bob signs in: the held alert reaches him, and the admin sees it delivered.
  bob = await newClient('bob');
  await signIn(bob, BOB);
  const bc = bob.page.locator(card(sent.urgent));
  await bc.waitFor({ state: 'visible' });
  assert.equal(await bc.getAttribute('data-priority'), 'urgent');
  assert.equal(await bc.getAttribute('data-state'), 'open');
  assert.equal(await bc.locator('[data-testid=alert-body]').textContent(), URGENT_BODY);
  await p.locator(`${delivery(BOB)}[data-state=delivered]`).waitFor({ state: 'visible' });
  assert.notEqual((await p.locator(delivery(BOB)).locator('[data-testid=al-delivered-at]').textContent()).trim(), '—');
  // Clicking the card opens the alerts conversation (the message shown as text); reading it
  // marks the delivery read.
  await bc.locator('[data-testid=alert-title]').click();
  const conv = await bc.getAttribute('data-conversation');
  await bob.page.locator(`[data-testid=chat][data-id="${conv}"]`).waitFor({ state: 'visible' });
  assert.equal(await bob.page.locator('[data-testid=chat-title]').textContent(), 'Alerts');
  await waitIn(bob.page, (t) => [...document.querySelectorAll('[data-testid=message-body]')].some((n) => n.textContent.includes(t)), URGENT_BODY);
  await p.locator(`${delivery(BOB)}[data-state=read]`).waitFor({ state: 'visible' });
  assert.equal(await bc.getAttribute('data-state'), 'open', 'reading is not acknowledging');
  await assertNoMarkup(bob);
  await screenshot(bob, 'a-held');
});

check('b. a low-priority alert is unobtrusive, needs no acknowledgement and goes by itself', async () => {
  const p = admin.page;
  await openCompose(p);
  // A fresh form after sending: nothing carried over.
  assert.equal(await p.inputValue('[data-testid=al-title]'), '');
  assert.equal(await p.isChecked('[data-testid=al-group][value=engineering]'), false);
  assert.equal(await p.isChecked('[data-testid=al-ack]'), false);
  assert.equal(await p.inputValue('[data-testid=al-priority]'), 'normal');
  // Directory suggestions for the people field.
  await p.fill('[data-testid=al-users]', 'alic');
  await p.locator(`#al-users-options option[value="${ALICE}"]`).waitFor({ state: 'attached' });
  await p.fill('[data-testid=al-users]', `${ALICE}, `);
  await p.fill('[data-testid=al-title]', LOW_TITLE);
  await p.selectOption('[data-testid=al-priority]', 'low');
  await alice.page.mouse.move(5, 880); // not over the cards: hovering keeps a card
  sent.low = await submitAlert(p);
  const a = await getJson(`/api/v1/alerts/${sent.low}`);
  assert.equal(a.priority, 'low');
  assert.equal(a.ack_required, false);
  assert.deepEqual(a.audience.users, [ALICE]);

  const ap = alice.page;
  const c = ap.locator(card(sent.low));
  await c.waitFor({ state: 'visible' });
  assert.equal(await c.getAttribute('data-priority'), 'low');
  assert.equal(await c.getAttribute('data-state'), 'info');
  assert.equal(await c.locator('[data-testid=alert-title]').textContent(), LOW_TITLE);
  assert.equal(await c.locator('[data-testid=alert-ack]').isVisible(), false, 'nothing to acknowledge');
  assert.equal(await c.locator('[data-testid=alert-dismiss]').isVisible(), true);
  assert.equal(await c.evaluate((n) => n.classList.contains('pulse')), false);
  assert.equal(await c.getAttribute('role'), 'status');
  const style = await c.evaluate((n) => getComputedStyle(n).borderLeftColor);
  assert.notEqual(style, 'rgb(198, 47, 47)', 'not red');
  assert.doesNotMatch(await ap.title(), /\(!\)/);
  await screenshot(alice, 'b-low-card');
  await p.locator(`${delivery(ALICE)}[data-state=delivered]`).waitFor({ state: 'visible' });
  assert.equal(await p.locator('[data-testid=al-delivery]').count(), 1);
  // It goes by itself.
  await c.waitFor({ state: 'detached', timeout: 20000 });
  // And it is in the alerts conversation.
  const row = ap.locator('[data-testid=conversation][data-alerts=true]');
  await waitIn(ap, (t) => document.querySelector('[data-testid=conversation][data-alerts=true] .row-preview')?.textContent.includes(t), LOW_TITLE);
  assert.equal(await row.getAttribute('data-open-alerts'), '0');
});

check('c. a high alert with a reminder is acknowledged by replying "ack"', async () => {
  const p = admin.page;
  await openCompose(p);
  await p.fill('[data-testid=al-title]', HIGH_TITLE);
  await p.fill('[data-testid=al-body]', 'Renew it in the vault.');
  await p.selectOption('[data-testid=al-priority]', 'high');
  await p.fill('[data-testid=al-users]', ALICE);
  await p.check('[data-testid=al-esc-on]');
  assert.equal(await p.isChecked('[data-testid=al-ack]'), true, 'escalation asks for an acknowledgement');
  await p.fill('[data-testid=al-esc-after]', '2');
  await p.selectOption('[data-testid=al-esc-unit]', 'seconds');
  sent.high = await submitAlert(p);
  const a = await getJson(`/api/v1/alerts/${sent.high}`);
  assert.equal(a.priority, 'high');
  assert.equal(a.ack_required, true);
  assert.equal(a.escalation.after_seconds, 2);
  assert.equal(a.escalation.audience ?? null, null, 'no second audience: a reminder');

  const ap = alice.page;
  const c = ap.locator(card(sent.high));
  await c.waitFor({ state: 'visible' });
  assert.equal(await c.getAttribute('data-priority'), 'high');
  assert.equal(await c.getAttribute('data-state'), 'open');
  // Not acknowledged within 2 s: a reminder, shown as such.
  await ap.locator(`${card(sent.high)}[data-reminder=true]`).waitFor({ state: 'visible' });
  assert.equal(await c.locator('[data-testid=alert-reminder]').isVisible(), true);
  await waitIn(p, () => /escalated/.test(document.querySelector('[data-testid=al-d-facts]')?.textContent || ''));
  await screenshot(alice, 'c-reminder');

  // The card opens the alerts conversation; "ack" there acknowledges.
  await c.locator('[data-testid=alert-title]').click();
  const conv = await c.getAttribute('data-conversation');
  await ap.locator(`[data-testid=chat][data-id="${conv}"]`).waitFor({ state: 'visible' });
  await waitIn(ap, () => [...document.querySelectorAll('[data-testid=message-body]')].some((n) => n.textContent.startsWith('[REMINDER]')));
  await ap.fill('[data-testid=composer]', 'ack');
  await ap.press('[data-testid=composer]', 'Enter');
  await ap.locator(`${card(sent.high)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  assert.equal(await c.locator('[data-testid=alert-status]').textContent(), 'Acknowledged');
  await waitIn(ap, (t) => [...document.querySelectorAll('[data-testid=message-body]')].some((n) => n.textContent.includes(t)), `Alert ${sent.high} acknowledged`);
  await p.locator(`${delivery(ALICE)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  assert.equal(stateOf(await getJson(`/api/v1/alerts/${sent.high}`), ALICE), 'acknowledged');
  await assertNoMarkup(alice);
});

check('d. the history lists the alerts with their counts; a row opens the deliveries', async () => {
  const p = admin.page;
  await p.click('[data-testid=al-tab-history]');
  await p.locator('[data-testid=al-history]').waitFor({ state: 'visible' });
  assert.equal(await p.evaluate(() => location.hash), '#/alerts');
  await waitIn(p, (n) => document.querySelectorAll('[data-testid=al-row]').length >= n, Object.keys(sent).length);
  const rows = await p.$$eval('[data-testid=al-row]', (ns) => ns.map((n) => ({
    id: Number(n.getAttribute('data-id')),
    title: n.querySelector('[data-testid=al-row-title]').textContent,
    priority: n.getAttribute('data-priority'),
    counts: Object.fromEntries([...n.querySelectorAll('[data-testid=al-row-count]')].map((x) => [x.getAttribute('data-state'), Number(x.getAttribute('data-count'))])),
  })));
  assert.deepEqual(rows.map((r) => r.id), [sent.high, sent.low, sent.urgent], 'newest first');
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  assert.equal(byId[sent.urgent].title, URGENT_TITLE);
  assert.equal(byId[sent.urgent].priority, 'urgent');
  assert.equal(byId[sent.low].title, LOW_TITLE);
  assert.equal(byId[sent.high].title, HIGH_TITLE);
  // The counts are the server's.
  const api = (await getJson('/api/v1/alerts?limit=50')).alerts;
  for (const x of api) {
    const shown = byId[x.id];
    assert.ok(shown, `alert ${x.id} listed`);
    for (const [state, n] of Object.entries(x.deliveries)) assert.equal(shown.counts[state], n, `alert ${x.id}: ${state}`);
    assert.equal(shown.counts.total, Object.values(x.deliveries).reduce((s, n) => s + n, 0), `alert ${x.id}: total`);
  }
  assert.equal(byId[sent.urgent].counts.total, 5);
  assert.equal(byId[sent.urgent].counts.acknowledged, 1);
  assert.equal(byId[sent.urgent].counts.read, 1);
  assert.equal(byId[sent.urgent].counts.pending, 3);
  assert.equal(byId[sent.low].counts.total, 1);
  assert.equal(byId[sent.low].counts.acknowledged, 0);
  assert.equal(byId[sent.high].counts.acknowledged, 1);
  await screenshot(admin, 'd-history');

  // A row opens its deliveries, live.
  await p.click(`[data-testid=al-row][data-id="${sent.urgent}"]`);
  await p.locator(`[data-testid=al-detail][data-id="${sent.urgent}"]`).waitFor({ state: 'visible' });
  assert.equal(await p.evaluate(() => location.hash), `#/alerts/${sent.urgent}`);
  await p.locator(`${delivery(ALICE)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  await p.locator(`${delivery(BOB)}[data-state=read]`).waitFor({ state: 'visible' });
  // Bob acknowledges from his card; the open table follows without a reload.
  await bob.page.locator(card(sent.urgent)).locator('[data-testid=alert-ack]').click();
  await bob.page.locator(`${card(sent.urgent)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  await p.locator(`${delivery(BOB)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  // Back to the history (and the "New alert" button to the form).
  await p.click('[data-testid=al-d-history]');
  await p.locator('[data-testid=al-history]').waitFor({ state: 'visible' });
  await waitIn(p, (id) => document.querySelector(`[data-testid=al-row][data-id="${id}"] [data-testid=al-row-count][data-state=acknowledged]`)?.getAttribute('data-count') === '2', sent.urgent);
  await assertNoMarkup(admin);
});

check('e. alice is no administrator: no Alerts page, and the API refuses her', async () => {
  const ap = alice.page;
  assert.equal(await ap.locator('[data-testid=alerts-tab]').isVisible(), false, 'no Alerts button');
  await ap.evaluate(() => { location.hash = '#/alerts'; });
  await ap.waitForTimeout(400);
  assert.equal(await ap.locator('[data-testid=alerts-view]').isVisible(), false, 'no Alerts page by address either');
  assert.equal(await ap.locator('[data-testid=chat]').isVisible(), true);
  await ap.evaluate((id) => { location.hash = `#/alerts/${id}`; }, sent.urgent);
  await ap.waitForTimeout(400);
  assert.equal(await ap.locator('[data-testid=alerts-view]').isVisible(), false);
  const token = await login(ALICE);
  const post = await rest('POST', '/api/v1/alerts', { token, body: { title: 'x', audience: { everyone: true } } });
  assert.equal(post.status, 403, post.text);
  const list = await rest('GET', '/api/v1/alerts', { token });
  assert.equal(list.status, 403, list.text);
  // The administrator still has it.
  assert.equal(await admin.page.locator('[data-testid=alerts-tab]').isVisible(), true);
});

check('f. an urgent card never covers the chat header: its buttons stay clickable, on a phone and a desktop', async () => {
  const DAVE = 'dave@example.com';
  const dave = await newClient('dave', { width: 390, height: 844 });
  await signIn(dave, DAVE);
  const dp = dave.page;
  // A group chat, so that the header has Invite and Leave (and, on a phone, Back).
  const conv = await rest('POST', '/api/v1/conversations', { token: await login(DAVE), body: { kind: 'group', members: [ALICE], title: 'Header test' } });
  assert.ok(conv.status === 200 || conv.status === 201, `create the group: ${conv.status} ${conv.text}`);
  const convId = String((conv.json.conversation || conv.json).id);
  await dp.evaluate((id) => { location.hash = `#/c/${id}`; }, convId);
  await dp.locator(`[data-testid=chat][data-id="${convId}"]`).waitFor({ state: 'visible' });

  const r = await rest('POST', '/api/v1/alerts', {
    token: await login(ADMIN),
    body: { title: 'Header check: core switch down', body: 'Acknowledge when you are on it.', priority: 'urgent', ack_required: true, audience: { users: [DAVE] } },
  });
  assert.ok(r.status === 200 || r.status === 201, `send the alert: ${r.status} ${r.text}`);
  const id = r.json.id ?? r.json.alert?.id;
  const c = dp.locator(card(id));
  await c.waitFor({ state: 'visible' });
  assert.equal(await c.getAttribute('data-priority'), 'urgent');

  for (const size of [{ width: 390, height: 844 }, { width: 1280, height: 800 }]) {
    await dp.setViewportSize(size);
    await dp.waitForTimeout(100);
    const controls = size.width < 721 ? ['back', 'invite', 'leave'] : ['invite', 'leave'];
    // Nothing of the cards overlaps the header; at the centre of each button is the button.
    const seen = await dp.evaluate((testids) => {
      const header = document.querySelector('.chat-header').getBoundingClientRect();
      const overlaps = [...document.querySelectorAll('[data-testid=alert-card]')].map((n) => n.getBoundingClientRect())
        .filter((b) => b.bottom > header.top && b.top < header.bottom && b.right > header.left && b.left < header.right).length;
      const hit = testids.map((t) => {
        const e = document.querySelector(`[data-testid=${t}]`);
        const b = e.getBoundingClientRect();
        const at = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
        return [t, !!at && (at === e || e.contains(at))];
      });
      return { overlaps, hit };
    }, controls);
    assert.equal(seen.overlaps, 0, `${size.width}px: no card over the chat header`);
    assert.deepEqual(seen.hit, controls.map((t) => [t, true]), `${size.width}px: each header button is on top at its centre`);
    await screenshot(dave, `f-header-${size.width}`);
    // And a real click on Invite opens its dialog.
    await dp.click('[data-testid=invite]', { timeout: 3000 });
    await dp.locator('#modal').waitFor({ state: 'visible' });
    await dp.click('#modal-cancel');
    await dp.locator('#modal').waitFor({ state: 'hidden' });
    assert.equal(await c.isVisible(), true, 'the card is still shown');
  }
  // Back, on a phone, goes back to the list with the card still there.
  await dp.setViewportSize({ width: 390, height: 844 });
  await dp.click('[data-testid=back]', { timeout: 3000 });
  await dp.locator('[data-testid=tab-chats]').waitFor({ state: 'visible' });
  assert.equal(await c.isVisible(), true);
  await c.locator('[data-testid=alert-ack]').click();
  await dp.locator(`${card(id)}[data-state=acknowledged]`).waitFor({ state: 'visible' });
  await assertNoMarkup(dave);
});
