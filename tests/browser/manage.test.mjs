// End-to-end test of the queue administration pages of the web client in headless Chromium:
// "Manage queues" (list, create, edit, open/close, managers) and the live "Queue dashboard",
// for administrators (every queue) and the managers of a queue (their queues only). The real
// server, Debian's Chromium, one browser context per person.
//
//   cd tests/browser && npm install && node --test manage.test.mjs
//
// Environment: as chat.test.mjs and queues.test.mjs —
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
  assertNoMarkup, launchChromium, loginAt, makeCheck, newContextAt, PageClient, pollingEvery, restAt,
  saveScreenshot as screenshot, signInAt, useSwitchboard, WAIT, waitIn,
} from './harness.mjs';

const PASSWORD = 'demo';
const ADMIN = 'admin@example.com';
const ALICE = 'alice@example.com';
const OLIVIA = 'olivia@example.com'; // expert, manager of Demo Support
const HEIDI = 'heidi@example.com'; // expert, manager of Demo Sales
const JUDY = 'judy@example.com'; // expert of Demo Support
const CAROL = 'carol@example.com';
const HOSTILE = '<img src=x onerror=alert(1)>';

let sb = null; // the server (SWITCHBOARD_URL, or one started here): see harness.mjs
let base = '';
// Shared helpers (harness.mjs), bound to this file's server.
const rest = (method, p, opts) => restAt(base, method, p, opts);
const login = (address) => loginAt(base, address, PASSWORD);
const signIn = (c, address) => signInAt(base, c, address, PASSWORD);
let browser = null;
const clients = [];
let admin = null; // the administrator's client (tests b–e)
let heidi = null; // Heidi's client (tests f–g)

// ------------------------------------------------------------------ REST helpers (Node side)

/** A legacy Queue Manager status call, made from the test (not the page). */
async function stStatus(queueName) {
  const r = await fetch(`${base}/ITFramework/webclient?getSTStatus=${encodeURIComponent(queueName)}`);
  return (await r.text()).trim();
}

async function stats(id) {
  const r = await rest('GET', `/api/v1/queues/${id}/stats`, { token: await login(ADMIN) });
  assert.equal(r.status, 200, `stats of ${id}: ${r.text}`);
  return r.json;
}

// ------------------------------------------------------------------ browser clients

async function newClient(name, viewport = { width: 1280, height: 860 }) {
  const context = await newContextAt(browser, base, { viewport });
  const c = new PageClient(name, context, await context.newPage());
  clients.push(c);
  return c;
}

/** Polls an async check in Node (every 100 ms) until it returns a truthy value. */
const eventually = pollingEvery(100);

const row = (id) => `[data-testid=queue-row][data-id="${id}"]`;
const card = (id) => `[data-testid=dash-queue][data-id="${id}"]`;

/** Waits until the tile `testid` of queue `id`'s dashboard card shows a number `op` (eq|ge) `value`. */
async function waitTile(page, id, testid, op, value, timeout = WAIT) {
  try {
    await waitIn(page, ([sel, t, o, v]) => {
      const e = document.querySelector(`${sel} [data-testid=${t}]`);
      if (!e || !/\d/.test(e.textContent)) return false;
      const n = Number(e.textContent.replace(/[^0-9.-]/g, ''));
      return o === 'eq' ? n === v : n >= v;
    }, [card(id), testid, op, value], timeout);
  } catch (e) {
    const shown = await page.locator(`${card(id)} [data-testid=${testid}]`).textContent().catch(() => '(none)');
    throw new Error(`${id} ${testid}: wanted ${op} ${value}, shows ${JSON.stringify(shown)}: ${e.message}`);
  }
}

async function tileText(page, id, testid) {
  return (await page.locator(`${card(id)} [data-testid=${testid}]`).textContent()).trim();
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

check('a. users without a queue role see neither "Manage queues" nor the dashboard', async () => {
  const alice = await newClient('alice');
  await signIn(alice, ALICE);
  const p = alice.page;
  assert.equal(await p.locator('[data-testid=manage-queues]').isVisible(), false, 'no "Manage queues" for alice');
  assert.equal(await p.locator('[data-testid=dashboard]').isVisible(), false, 'no dashboard for alice');
  // Typing the address does not open the pages either.
  await p.evaluate(() => { location.hash = '#/manage'; });
  await p.waitForTimeout(300);
  assert.equal(await p.locator('[data-testid=manage-view]').isVisible(), false);
  await p.evaluate(() => { location.hash = '#/dashboard'; });
  await p.waitForTimeout(300);
  assert.equal(await p.locator('[data-testid=dash-view]').isVisible(), false);
  assert.equal(await p.locator('[data-testid=chat]').isVisible(), true, 'the chat pane stays');
  await screenshot(alice, 'a-alice');
  await alice.context.close();
  clients.splice(clients.indexOf(alice), 1);
});

check('b. an administrator creates, closes and edits a queue, and names its manager', async () => {
  admin = await newClient('admin');
  await signIn(admin, ADMIN);
  const p = admin.page;
  await p.click('[data-testid=manage-queues]');
  await p.locator('[data-testid=manage-view]').waitFor({ state: 'visible' });
  await p.locator(row('support')).waitFor({ state: 'visible' });
  await p.locator(row('sales')).waitFor({ state: 'visible' });
  assert.equal(await p.locator('[data-testid=chat]').isVisible(), false, 'the page replaces the chat pane');
  assert.equal(await p.locator('[data-testid=mq-note]').isVisible(), false, 'no manager\'s note for an administrator');
  // Each queue's managers, by name, each name isolated (a name may be written right to left).
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Olivia Olsen', row('support'));
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Heidi Hill', row('sales'));
  const tag = await p.locator(`${row('support')} [data-testid=queue-manager]`).evaluate((e) => [e.tagName, e.getAttribute('data-address')]);
  assert.deepEqual(tag, ['BDI', OLIVIA]);
  assert.equal(await p.locator(`${row('support')} [data-testid=queue-edit]`).count(), 1, 'an administrator edits every queue');

  // Create "IT Help".
  await p.click('[data-testid=queue-new]');
  await p.locator('[data-testid=qf-id]').waitFor({ state: 'visible' });
  await p.fill('[data-testid=qf-id]', 'it-help');
  await p.fill('[data-testid=qf-name]', 'IT Help');
  await p.selectOption('[data-testid=qf-method]', 'round_robin');
  await p.fill('[data-testid=qf-capacity]', '2');
  assert.equal(await p.locator('[data-testid=qf-enabled]').isChecked(), true, 'a new queue is enabled');
  assert.equal(await p.locator('[data-testid=qf-closed]').isChecked(), false, 'a new queue is open');
  // Directory search suggests Carol.
  await p.fill('[data-testid=qf-member-add]', 'carol');
  await waitIn(p, () => [...document.querySelectorAll('#qf-member-options option')].some((o) => o.value === 'carol@example.com'));
  await p.fill('[data-testid=qf-member-add]', CAROL);
  await p.click('[data-testid=qf-member-add-submit]');
  await p.locator(`[data-testid=qf-member][data-address="${CAROL}"]`).waitFor({ state: 'visible' });
  // Add and remove someone else: the remove button works.
  await p.fill('[data-testid=qf-member-add]', 'dave@example.com');
  await p.press('[data-testid=qf-member-add]', 'Enter');
  const dave = p.locator('[data-testid=qf-member][data-address="dave@example.com"]');
  await dave.waitFor({ state: 'visible' });
  await dave.locator('[data-testid=qf-member-remove]').click();
  await dave.waitFor({ state: 'detached' });
  // Managers: none yet; the directory suggests Heidi; Olivia added and removed again.
  assert.equal(await p.locator('[data-testid=qf-manager]').count(), 0, 'a new queue has no managers');
  assert.equal(await p.locator('[data-testid=qf-manager-add]').isVisible(), true, 'an administrator names managers');
  await p.fill('[data-testid=qf-manager-add]', 'heid');
  await waitIn(p, (a) => [...document.querySelectorAll('#qf-manager-options option')].some((o) => o.value === a), HEIDI);
  await p.fill('[data-testid=qf-manager-add]', `Heidi Hill <${HEIDI}>`);
  await p.click('[data-testid=qf-manager-add-submit]');
  const heidiRow = p.locator(`[data-testid=qf-manager][data-address="${HEIDI}"]`);
  await heidiRow.waitFor({ state: 'visible' });
  assert.equal(await heidiRow.locator('[data-testid=qf-manager-name]').textContent(), 'Heidi Hill');
  await p.fill('[data-testid=qf-manager-add]', OLIVIA);
  await p.press('[data-testid=qf-manager-add]', 'Enter');
  const oliviaRow = p.locator(`[data-testid=qf-manager][data-address="${OLIVIA}"]`);
  await oliviaRow.waitFor({ state: 'visible' });
  await oliviaRow.locator('[data-testid=qf-manager-remove]').click();
  await oliviaRow.waitFor({ state: 'detached' });
  await p.click('[data-testid=qf-save]');
  await p.locator(row('it-help')).waitFor({ state: 'visible' });
  assert.match(await p.locator(row('it-help')).textContent(), /IT Help/);
  assert.equal(await p.locator('[data-testid=qf-error]').isVisible(), false);
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Heidi Hill', row('it-help'));

  const q = await rest('GET', '/api/v1/queues/it-help', { token: await login(ADMIN) });
  assert.equal(q.status, 200, q.text);
  assert.equal(q.json.display_name, 'IT Help');
  assert.equal(q.json.method, 'round_robin');
  assert.equal(q.json.capacity, 2);
  assert.equal(q.json.closed, false);
  assert.equal(q.json.enabled, true);
  assert.deepEqual(q.json.members.map((m) => m.address), [CAROL]);
  assert.deepEqual(q.json.managers, [HEIDI], 'the manager named in the form');

  // Open, nobody ready (Carol is not signed in): away.
  assert.equal(await stStatus('IT Help'), 'STATUS_AWAY');

  // Close it with the quick action: do not disturb.
  const toggle = p.locator(`${row('it-help')} [data-testid=queue-toggle-closed]`);
  assert.equal((await toggle.textContent()).trim(), 'Close');
  await toggle.click();
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-toggle-closed]`)?.textContent.trim() === 'Open', row('it-help'));
  await eventually('STATUS_DND for a closed queue', async () => (await stStatus('IT Help')) === 'STATUS_DND');
  const closed = await rest('GET', '/api/v1/queues/it-help', { token: await login(ADMIN) });
  assert.equal(closed.json.closed, true);
  assert.deepEqual(closed.json.members.map((m) => m.address), [CAROL], 'the quick action keeps the members');
  assert.deepEqual(closed.json.managers, [HEIDI], 'the quick action keeps the managers');
  assert.equal(closed.json.method, 'round_robin', 'the quick action keeps the method');
  assert.equal(closed.json.capacity, 2, 'the quick action keeps the capacity');

  // An invalid edit shows the server's own message.
  await p.click(`${row('it-help')} [data-testid=queue-edit]`);
  await p.locator('[data-testid=qf-save]').waitFor({ state: 'visible' });
  await waitIn(p, () => document.querySelector('[data-testid=qf-id]')?.value === 'it-help');
  assert.equal(await p.locator('[data-testid=qf-closed]').isChecked(), true, 'the form shows the queue closed');
  assert.equal(await p.inputValue('[data-testid=qf-method]'), 'round_robin');
  await p.locator(`[data-testid=qf-member][data-address="${CAROL}"]`).waitFor({ state: 'visible' });
  await p.locator(`[data-testid=qf-manager][data-address="${HEIDI}"]`).waitFor({ state: 'visible' });
  await p.fill('[data-testid=qf-capacity]', '0');
  await p.click('[data-testid=qf-save]');
  const err = p.locator('[data-testid=qf-error]');
  await err.waitFor({ state: 'visible' });
  const expected = await rest('PUT', '/api/v1/queues/it-help', {
    token: await login(ADMIN), body: { display_name: 'IT Help', method: 'round_robin', capacity: 0, closed: true, members: [{ address: CAROL }] },
  });
  assert.equal(expected.status, 400, expected.text);
  assert.equal((await err.textContent()).trim(), expected.json.error.message);
  const still = await rest('GET', '/api/v1/queues/it-help', { token: await login(ADMIN) });
  assert.equal(still.json.capacity, 2, 'the invalid edit changed nothing');
  await screenshot(admin, 'b-manage');

  // A valid edit after the error: reopen it from the form.
  await p.fill('[data-testid=qf-capacity]', '3');
  await p.uncheck('[data-testid=qf-closed]');
  await p.click('[data-testid=qf-save]');
  await p.locator('[data-testid=qf-save]').waitFor({ state: 'hidden' });
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-toggle-closed]`)?.textContent.trim() === 'Close', row('it-help'));
  const reopened = await rest('GET', '/api/v1/queues/it-help', { token: await login(ADMIN) });
  assert.equal(reopened.json.capacity, 3);
  assert.equal(reopened.json.closed, false);
  assert.deepEqual(reopened.json.managers, [HEIDI], 'saving the form again keeps the managers');
  assert.equal(await stStatus('IT Help'), 'STATUS_AWAY');

  // Disable and enable again: a disabled queue does not exist for the public APIs.
  const en = p.locator(`${row('it-help')} [data-testid=queue-toggle-enabled]`);
  assert.equal((await en.textContent()).trim(), 'Disable');
  await en.click();
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-toggle-enabled]`)?.textContent.trim() === 'Enable', row('it-help'));
  await eventually('"na" for a disabled queue', async () => (await stStatus('IT Help')) === 'na');
  await p.click(`${row('it-help')} [data-testid=queue-toggle-enabled]`);
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-toggle-enabled]`)?.textContent.trim() === 'Disable', row('it-help'));
  await eventually('STATUS_AWAY once enabled again', async () => (await stStatus('IT Help')) === 'STATUS_AWAY');
});

check('c. the dashboard follows a support chat live', async () => {
  const p = admin.page;
  await p.click('[data-testid=dashboard]');
  await p.locator('[data-testid=dash-view]').waitFor({ state: 'visible' });
  await p.locator(card('support')).waitFor({ state: 'visible' });
  await waitTile(p, 'support', 'dash-ready', 'eq', 0);
  await waitTile(p, 'support', 'dash-experts-total', 'eq', 4);
  const judy = await newClient('judy');
  await signIn(judy, JUDY);
  await waitTile(p, 'support', 'dash-ready', 'eq', 1);
  await waitTile(p, 'support', 'dash-signed-in', 'ge', 1);
  assert.equal(await tileText(p, 'support', 'dash-waiting'), '0');

  const before0 = (await stats('support')).interval;
  const alice = await login(ALICE);
  const judyToken = await login(JUDY);
  const ask = await rest('POST', '/api/v1/queues/support/chats', { token: alice, body: { question: 'VPN fails' } });
  assert.equal(ask.status, 201, ask.text);
  const chat = ask.json.chat;
  await eventually('judy accepts the offer', async () => {
    const r = await rest('POST', `/api/v1/queue-chats/${chat}/accept`, { token: judyToken });
    if (r.status === 409) return false;
    assert.equal(r.status, 200, r.text);
    return true;
  });

  // Within a refresh or two (every 2 s).
  await waitTile(p, 'support', 'dash-accepted', 'ge', Math.max(1, before0.accepted + 1), 7000);
  await waitTile(p, 'support', 'dash-offered', 'ge', Math.max(1, before0.offered + 1), 7000);
  await waitTile(p, 'support', 'dash-active-chats', 'ge', 1, 7000);
  const avg = await tileText(p, 'support', 'dash-avg-wait');
  assert.match(avg, /^(\d+s|\d+m \d\ds|\d+h \d\dm)$/, `average wait formatted: ${avg}`);
  const sl = await tileText(p, 'support', 'dash-service-level');
  assert.match(sl, /^(\d+(\.\d)?%|—)$/, `service level as a percentage: ${sl}`);
  assert.equal(await tileText(p, 'support', 'dash-survey'), '—', 'no survey answered yet');
  await screenshot(admin, 'c-dashboard');

  // One queue only.
  await p.selectOption('[data-testid=dash-select]', 'support');
  await waitIn(p, () => document.querySelectorAll('[data-testid=dash-queue]').length === 1);
  await p.locator(card('support')).waitFor({ state: 'visible' });
  await p.selectOption('[data-testid=dash-interval]', 'hour');
  await waitTile(p, 'support', 'dash-accepted', 'ge', 1);
  await p.selectOption('[data-testid=dash-select]', '');
  await waitIn(p, () => document.querySelectorAll('[data-testid=dash-queue]').length >= 3);

  // Polling: every 2 s while shown; none while the tab is hidden or another page is shown.
  let polls = 0;
  const count = (req) => { if (/\/api\/v1\/queues\/[^/]+\/stats/.test(req.url())) polls += 1; };
  p.on('request', count);
  await p.waitForTimeout(4500);
  assert.ok(polls >= 2 * 3, `the dashboard polls every 2 s (${polls} stats requests for 3 queues in 4.5 s)`);
  const setVisibility = (state) => p.evaluate((v) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => v });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => v === 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
  await setVisibility('hidden');
  await p.waitForTimeout(300); // a request in flight may still finish
  polls = 0;
  await p.waitForTimeout(4500);
  assert.equal(polls, 0, 'no stats requests while the tab is hidden');
  await setVisibility('visible');
  await eventually('polling again once visible', async () => polls > 0, 5000);
  await p.evaluate(() => { delete document.visibilityState; delete document.hidden; });
  await p.click('[data-testid=manage-queues]');
  await p.locator('[data-testid=manage-view]').waitFor({ state: 'visible' });
  await p.waitForTimeout(300);
  polls = 0;
  await p.waitForTimeout(4500);
  p.off('request', count);
  assert.equal(polls, 0, 'no stats requests while the dashboard is not shown');

  await rest('POST', `/api/v1/queue-chats/${chat}/end`, { token: judyToken });
  await judy.context.close();
  clients.splice(clients.indexOf(judy), 1);
});

check('d. hostile queue names and descriptions are shown as text', async () => {
  const put = await rest('PUT', '/api/v1/queues/xss', {
    token: await login(ADMIN),
    body: { display_name: HOSTILE, description: HOSTILE, welcome: HOSTILE, closed_message: HOSTILE, members: [{ address: JUDY }] },
  });
  assert.ok(put.status === 200 || put.status === 201, `PUT /api/v1/queues/xss: ${put.status} ${put.text}`);
  const p = admin.page;

  await p.click('[data-testid=manage-queues]');
  await p.locator('[data-testid=manage-view]').waitFor({ state: 'visible' });
  // The list reloads when the page is opened; make sure it has the new queue.
  await p.click('[data-testid=dashboard]');
  await p.locator(card('xss')).waitFor({ state: 'visible' });
  assert.equal((await p.locator(`${card('xss')} [data-testid=dash-name]`).textContent()), HOSTILE);
  await assertNoMarkup(admin);

  await p.click('[data-testid=manage-queues]');
  await p.locator(row('xss')).waitFor({ state: 'visible' });
  const texts = await p.locator(row('xss')).evaluate((r) => [r.querySelector('.mq-display').textContent, r.querySelector('.mq-desc').textContent]);
  assert.deepEqual(texts, [HOSTILE, HOSTILE]);
  await p.click(`${row('xss')} [data-testid=queue-edit]`);
  await p.locator('[data-testid=qf-save]').waitFor({ state: 'visible' });
  await waitIn(p, () => document.querySelector('[data-testid=qf-id]')?.value === 'xss');
  assert.equal(await p.inputValue('[data-testid=qf-name]'), HOSTILE);
  assert.equal(await p.inputValue('[data-testid=qf-description]'), HOSTILE);
  assert.equal(await p.inputValue('[data-testid=qf-welcome]'), HOSTILE);
  assert.match(await p.locator('#qf-title').textContent(), /<img src=x onerror=alert\(1\)>/);
  await p.click('[data-testid=qf-cancel]');
  await p.waitForTimeout(500); // give any injected handler time to fire
  await assertNoMarkup(admin);
  await screenshot(admin, 'd-hostile');
});

/**
 * At 1280x800 and 390x844 the queue list of `c`'s page fits: no sideways scrolling of the
 * page or the table, every action button inside the table; a screenshot of each as
 * `<name>-<width>`.
 */
async function listFits(c, name) {
  const p = c.page;
  for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    await p.setViewportSize(size);
    await p.waitForTimeout(100);
    const m = await p.evaluate(() => {
      const wrap = document.querySelector('#manage-view .mq-table-wrap');
      const w = wrap.getBoundingClientRect();
      const out = [...wrap.querySelectorAll('[data-testid=queue-row] button, [data-testid=queue-row] [data-testid=queue-manager]')]
        .map((b) => [b.closest('[data-testid=queue-row]').getAttribute('data-id'), b.textContent, b.getBoundingClientRect()])
        .filter(([, , r]) => r.left < w.left - 0.5 || r.right > w.right + 0.5 || r.right > window.innerWidth)
        .map(([q, t, r]) => `${q}/${t} at ${Math.round(r.left)}..${Math.round(r.right)}`);
      return {
        rows: wrap.querySelectorAll('[data-testid=queue-row]').length,
        pageScroll: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        tableScroll: wrap.scrollWidth - wrap.clientWidth,
        out,
      };
    });
    assert.ok(m.rows >= 3, `the list has the queues (${m.rows})`);
    assert.equal(m.pageScroll, 0, `${size.width}px: the page does not scroll sideways`);
    assert.equal(m.tableScroll, 0, `${size.width}px: the table does not scroll sideways`);
    assert.deepEqual(m.out, [], `${size.width}px: every action button and manager's name is inside the table`);
    await screenshot(c, `${name}-${size.width}`, { fullPage: false });
  }
  await p.setViewportSize({ width: 1280, height: 860 });
}

check('e. the queue list fits the page, buttons and all, at 1280x800 and on a phone (390x844)', async () => {
  const p = admin.page;
  await p.click('[data-testid=manage-queues]');
  await p.locator('[data-testid=manage-view]').waitFor({ state: 'visible' });
  await p.locator(row('support')).waitFor({ state: 'visible' });
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Olivia Olsen', row('support'));
  await listFits(admin, 'e-manage-admin');
});

check('f. Heidi manages Demo Sales and IT Help, not Demo Support: she changes hers only', async () => {
  // A disabled queue of Olivia's: listed to its managers and administrators only.
  const off = await rest('PUT', '/api/v1/queues/old-desk', {
    token: await login(ADMIN), body: { display_name: 'Old Desk', enabled: false, managers: [OLIVIA], members: [] },
  });
  assert.ok(off.status === 200 || off.status === 201, `PUT /api/v1/queues/old-desk: ${off.status} ${off.text}`);

  heidi = await newClient('heidi');
  await signIn(heidi, HEIDI);
  const p = heidi.page;
  // The page is hers (she manages some queue), though not every queue on it.
  await p.locator('[data-testid=manage-queues]').waitFor({ state: 'visible' });
  await p.locator('[data-testid=dashboard]').waitFor({ state: 'visible' });
  await p.click('[data-testid=manage-queues]');
  await p.locator('[data-testid=manage-view]').waitFor({ state: 'visible' });
  for (const id of ['sales', 'support', 'it-help']) await p.locator(row(id)).waitFor({ state: 'visible' });
  assert.equal(await p.locator(row('old-desk')).count(), 0, 'a disabled queue she does not manage is not listed');
  assert.equal(await p.locator('[data-testid=queue-new]').isVisible(), false, 'only administrators create queues');
  assert.equal(await p.locator('[data-testid=mq-note]').isVisible(), true, 'the page says what she may change');

  // Demo Sales and IT Help: hers, with every action.
  for (const id of ['sales', 'it-help']) {
    assert.equal(await p.getAttribute(row(id), 'data-managed'), 'yes', id);
    for (const b of ['queue-edit', 'queue-toggle-closed', 'queue-toggle-enabled']) {
      assert.equal(await p.locator(`${row(id)} [data-testid=${b}]`).count(), 1, `${id}: ${b}`);
    }
  }
  // Demo Support (enabled, Olivia's): shown, but no Edit, Close or Disable.
  assert.equal(await p.getAttribute(row('support'), 'data-managed'), 'no');
  assert.equal(await p.locator(`${row('support')} button`).count(), 0, 'no action on a queue she does not manage');
  assert.equal((await p.locator(`${row('support')} [data-testid=queue-view-only]`).textContent()).trim(), 'View only');
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Olivia Olsen', row('support'));
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Heidi Hill', row('sales'));
  assert.doesNotMatch(await p.locator('[data-testid=queue-list-admin]').textContent(), /olivia@example\.com|heidi@example\.com/, 'names, not addresses');

  // She edits Demo Sales: the managers are shown, but she cannot change them, and the form
  // does not send them (the server keeps the list).
  await p.click(`${row('sales')} [data-testid=queue-edit]`);
  await waitIn(p, () => document.querySelector('[data-testid=qf-id]')?.value === 'sales');
  const mine = p.locator(`[data-testid=qf-manager][data-address="${HEIDI}"]`);
  await mine.waitFor({ state: 'visible' });
  assert.equal(await mine.locator('[data-testid=qf-manager-name]').textContent(), 'Heidi Hill');
  assert.equal(await p.locator('[data-testid=qf-manager-remove]').count(), 0, 'no Remove beside a manager');
  assert.equal(await p.locator('[data-testid=qf-manager-add]').isVisible(), false, 'no box to add a manager');
  assert.match(await p.locator('[data-testid=qf-managers-note]').textContent(), /Only administrators/);
  await p.locator('[data-testid=qf-managers-box]').scrollIntoViewIfNeeded();
  await screenshot(heidi, 'f-heidi-editor');
  const welcome = 'Sales here: how can we help?';
  await p.fill('[data-testid=qf-welcome]', welcome);
  const [put] = await Promise.all([
    p.waitForRequest((r) => r.method() === 'PUT' && /\/api\/v1\/queues\/sales$/.test(r.url())),
    p.click('[data-testid=qf-save]'),
  ]);
  assert.equal(Object.hasOwn(put.postDataJSON(), 'managers'), false, 'a manager\'s save leaves the managers out');
  await p.locator('[data-testid=qf-save]').waitFor({ state: 'hidden' });
  assert.equal(await p.locator('[data-testid=mq-error]').isVisible(), false);
  const sales = await rest('GET', '/api/v1/queues/sales', { token: await login(ADMIN) });
  assert.equal(sales.json.welcome, welcome);
  assert.deepEqual(sales.json.managers, [HEIDI], 'her save kept the managers');

  // The dashboard: her queues only (no refused statistics of Demo Support).
  await p.click('[data-testid=dashboard]');
  await p.locator(card('sales')).waitFor({ state: 'visible' });
  await p.locator(card('it-help')).waitFor({ state: 'visible' });
  await p.waitForTimeout(2500); // a refresh or so
  const cards = await p.$$eval('[data-testid=dash-queue]', (cs) => cs.map((c) => c.getAttribute('data-id')).sort());
  assert.deepEqual(cards, ['it-help', 'sales']);
  const options = await p.$$eval('[data-testid=dash-select] option', (os) => os.map((o) => o.value).filter(Boolean).sort());
  assert.deepEqual(options, ['it-help', 'sales']);
  assert.equal(await p.locator('[data-testid=dash-error]').isVisible(), false, 'no refused statistics');

  // Opened by its address after a reload, once the queue list is known.
  await p.evaluate(() => { location.hash = '#/manage'; });
  await p.reload();
  await p.locator('[data-testid=manage-view]').waitFor({ state: 'visible' });
  await p.locator(row('sales')).waitFor({ state: 'visible' });
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Olivia Olsen', row('support'));
  await listFits(heidi, 'f-manage-heidi');
  await assertNoMarkup(heidi);
});

check('g. the administrator hands IT Help to Carol: a manager without the queue manager role gets that queue only', async () => {
  const p = admin.page;
  await p.click('[data-testid=dashboard]');
  await p.click('[data-testid=manage-queues]'); // reloads the list
  await p.locator(row('it-help')).waitFor({ state: 'visible' });
  await p.click(`${row('it-help')} [data-testid=queue-edit]`);
  await waitIn(p, () => document.querySelector('[data-testid=qf-id]')?.value === 'it-help');
  const h = p.locator(`[data-testid=qf-manager][data-address="${HEIDI}"]`);
  await h.waitFor({ state: 'visible' });
  await h.locator('[data-testid=qf-manager-remove]').click();
  await h.waitFor({ state: 'detached' });
  await p.fill('[data-testid=qf-manager-add]', CAROL);
  await p.click('[data-testid=qf-manager-add-submit]');
  await p.locator(`[data-testid=qf-manager][data-address="${CAROL}"]`).waitFor({ state: 'visible' });
  await p.click('[data-testid=qf-save]');
  await p.locator('[data-testid=qf-save]').waitFor({ state: 'hidden' });
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=queue-managers]`)?.textContent === 'Carol Clark', row('it-help'));
  const q = await rest('GET', '/api/v1/queues/it-help', { token: await login(ADMIN) });
  assert.deepEqual(q.json.managers, [CAROL]);

  // Carol (no queue role at all) now has the page, with IT Help hers and nothing else.
  const carol = await newClient('carol');
  await signIn(carol, CAROL);
  const c = carol.page;
  await c.locator('[data-testid=manage-queues]').waitFor({ state: 'visible' });
  await c.click('[data-testid=manage-queues]');
  await c.locator(row('it-help')).waitFor({ state: 'visible' });
  assert.equal(await c.getAttribute(row('it-help'), 'data-managed'), 'yes');
  assert.equal(await c.getAttribute(row('sales'), 'data-managed'), 'no');
  assert.equal(await c.locator(`${row('sales')} button`).count(), 0);
  assert.equal(await c.locator('[data-testid=queue-new]').isVisible(), false);

  // Heidi no longer changes IT Help.
  const hp = heidi.page;
  await hp.click('[data-testid=dashboard]');
  await hp.click('[data-testid=manage-queues]');
  await waitIn(hp, (sel) => document.querySelector(sel)?.getAttribute('data-managed') === 'no', row('it-help'));
  assert.equal(await hp.locator(`${row('it-help')} button`).count(), 0);
  assert.equal(await hp.getAttribute(row('sales'), 'data-managed'), 'yes');
  await carol.context.close();
  clients.splice(clients.indexOf(carol), 1);
});
