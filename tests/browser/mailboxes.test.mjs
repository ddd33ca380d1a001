// End-to-end test of the "Mailboxes" section of the administrator's Alerts page in headless
// Chromium, against a real Dovecot (scripts/dovecot-test.sh): the server is configured with
// two [[alerts.mailbox]] entries, "ops" (a working IMAP mailbox) and "broken" (a closed
// port). The page shows each mailbox's state (idle or polling; error with the mail server's
// error), last check and counts, and the mail taken — an allowed mail that became an alert
// (linked to #/alerts/<id>) and a refused one whose hostile subject is shown as text — and
// it refreshes by itself while shown, and stops when left. Without mailboxes it says how to
// add one. People who are not administrators have neither the page nor the API.
//
//   cd tests/browser && npm install && node --test mailboxes.test.mjs
//
// Environment: as the other browser tests —
//   SWITCHBOARD_BIN  server binary (default <repo>/target/debug/switchboard)
//   CHROMIUM         browser binary (default /usr/bin/chromium)
//   SCREENSHOT_DIR   if set, screenshots are written there
//   SERVER_START_TIMEOUT_MS  how long to wait for "listening http://…" (default 30000)
//   WEB_DIR          serve index.html, app.js and app.css from this folder instead of the
//                    copies compiled into the server (no rebuild needed)
// Needs Debian's dovecot-core and dovecot-imapd; without them the tests are skipped.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  launchChromium, loginAt, makeCheck, newContextAt, PageClient, restAt, saveScreenshot, signInAt,
  startSwitchboard, waitIn,
} from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DOVECOT = path.resolve(HERE, '../../scripts/dovecot-test.sh');
const LIVE_WAIT = 30000; // mail taken by the server and shown by the page's refresh
const ADMIN = 'admin@example.com';
const ALICE = 'alice@example.com';
const HOSTILE = '<img src=x onerror=alert(1)>';
const GOOD_SUBJECT = 'Disk full on db1';
// Intake keys: id:<sender> <Message-ID> (docs/alerts-mail.md).
const GOOD_KEY = 'id:nagios@monitor.example.com m1@monitor.example.com';
const BAD_KEY = 'id:mallory@evil.example m2@evil.example';

let dir = ''; // Dovecot's folder and the configuration file
let dovecotUp = false;
let skipReason = '';
let sb = null; // the server with the two mailboxes
let bare = null; // a server without mailboxes
let browser = null;
const clients = [];

// ------------------------------------------------------------------ Dovecot

function dovecot(...args) {
  const r = spawnSync('bash', [DOVECOT, ...args], { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, out: r.stdout || '', err: r.stderr || '' };
}

function mail({ from, id, subject, body }) {
  return [`From: ${from}`, 'To: alerts@example.com', `Subject: ${subject}`, `Message-ID: <${id}>`,
    'Date: Thu, 26 Nov 2026 10:00:00 +0000', 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n');
}

function deliver(name, text) {
  const file = path.join(dir, `${name}.eml`);
  writeFileSync(file, text);
  const r = dovecot('deliver', dir, 'alerts', file);
  assert.equal(r.status, 0, `dovecot-test.sh deliver: ${r.out}${r.err}`);
}

// ------------------------------------------------------------------ browser clients

/** A PageClient of the server at `base` that also counts its page's requests for the mailboxes. */
class Client extends PageClient {
  constructor(name, base, context, page) {
    super(name, context, page);
    this.base = base;
    this.mailboxRequests = 0;
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/api/v1/alerts/mailboxes') this.mailboxRequests += 1; });
  }
}

async function newClient(name, base) {
  const context = await newContextAt(browser, base, { viewport: { width: 1360, height: 900 } });
  const c = new Client(name, base, context, await context.newPage());
  clients.push(c);
  return c;
}

const screenshot = (c, name) => saveScreenshot(c, `mailboxes-${name}`);

/** Sets location.hash and resolves once the page's own hashchange handling has run. */
function goHash(p, hash) {
  return p.evaluate((h) => new Promise((resolve) => {
    if (location.hash === h) { resolve(); return; }
    addEventListener('hashchange', () => setTimeout(resolve, 0), { once: true });
    location.hash = h;
  }), hash);
}

/** The admin opens the Alerts page's Mailboxes section. */
async function openMailboxes(p) {
  if (!(await p.locator('[data-testid=alerts-view]').isVisible())) await p.click('[data-testid=alerts-tab]');
  await p.click('[data-testid=al-tab-mailboxes]');
  await p.locator('[data-testid=mailboxes-panel][data-loaded=true]').waitFor({ state: 'visible' });
  assert.equal(await p.getAttribute('[data-testid=al-tab-mailboxes]', 'aria-selected'), 'true');
}

const row = (name) => `[data-testid=mailbox-row][data-name="${name}"]`;
const mailRow = (key) => `[data-testid=mail-row][data-key="${key}"]`;

/** Runs a test body (skipped without Dovecot); on failure prints what the pages and the servers said. */
const check = makeCheck({
  clients,
  tail: () => [sb, bare].filter(Boolean).map((s) => s.tail()).join('\n'),
  screenshot,
  csp: true,
  skip: () => skipReason,
});

// ------------------------------------------------------------------ lifecycle

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sb-mailboxes-'));
  const started = dovecot('start', dir);
  if (started.status === 2) { skipReason = `Dovecot is not installed: ${started.err.trim()}`; return; }
  assert.equal(started.status, 0, `dovecot-test.sh start: ${started.out}${started.err}`);
  dovecotUp = true;
  const port = Number(/IMAP_PORT=(\d+)/.exec(started.out)?.[1]);
  assert.ok(port > 0, `an IMAP port in ${JSON.stringify(started.out)}`);
  const config = path.join(dir, 'switchboard.toml');
  const common = ['protocol = "imap"', 'host = "127.0.0.1"', 'tls = "none"', 'user = "alerts"', 'password = "secret"',
    'allowed_senders = ["@monitor.example.com"]', `audience = { users = ["${ALICE}"] }`];
  writeFileSync(config, [
    '[[alerts.mailbox]]', 'name = "ops"', `port = ${port}`, ...common, '',
    '[[alerts.mailbox]]', 'name = "broken"', 'port = 1', ...common, '',
  ].join('\n'));
  sb = await startSwitchboard({ SWITCHBOARD_CONFIG: config });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => {});
  await sb?.stop().catch(() => {});
  await bare?.stop().catch(() => {});
  if (dovecotUp) {
    const r = dovecot('stop', dir);
    if (r.status !== 0) console.error(`# dovecot-test.sh stop: ${r.out}${r.err}`);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ tests

let admin = null;

check('a. the administrator sees each mailbox: "ops" listening, "broken" in error with its error', async () => {
  admin = await newClient('admin', sb.base);
  const p = admin.page;
  await signInAt(sb.base, admin, ADMIN);
  await openMailboxes(p);
  assert.equal(await p.evaluate(() => location.hash), '#/alerts');
  assert.equal(await p.locator('[data-testid=mailboxes-empty]').isVisible(), false, 'no empty state with mailboxes');

  // Both mailboxes, "ops" listening (IDLE, or polling) and "broken" in error.
  await p.locator(`${row('ops')}:is([data-state=idle], [data-state=polling])`).waitFor({ state: 'visible', timeout: LIVE_WAIT });
  await p.locator(`${row('broken')}[data-state=error]`).waitFor({ state: 'visible', timeout: LIVE_WAIT });
  assert.deepEqual(await p.$$eval('[data-testid=mailbox-row]', (ns) => ns.map((n) => n.getAttribute('data-name'))), ['broken', 'ops']);

  const ops = p.locator(row('ops'));
  assert.equal(await ops.locator('[data-testid=mailbox-name]').textContent(), 'ops');
  assert.match(await ops.locator('[data-testid=mailbox-state]').textContent(), /^(Listening \(IDLE\)|Polling)$/);
  assert.match(await ops.locator('[data-testid=mailbox-endpoint]').textContent(), /^IMAP · 127\.0\.0\.1:\d+$/);
  assert.equal(await ops.locator('[data-testid=mailbox-error]').count(), 0, 'no error on "ops"');

  const broken = p.locator(row('broken'));
  assert.equal(await broken.locator('[data-testid=mailbox-state]').textContent(), 'Error');
  assert.equal(await broken.locator('[data-testid=mailbox-endpoint]').textContent(), 'IMAP · 127.0.0.1:1');
  // The error as the server has it (it may change between two retries: compare with a fresh copy).
  const api = await restAt(sb.base, 'GET', '/api/v1/alerts/mailboxes', { token: await loginAt(sb.base, ADMIN) });
  assert.equal(api.status, 200, api.text);
  const apiBroken = api.json.mailboxes.find((m) => m.name === 'broken');
  assert.equal(apiBroken.state, 'error');
  assert.ok(apiBroken.last_error, 'the server reports why "broken" fails');
  await waitIn(p, ([sel, text]) => document.querySelector(`${sel} [data-testid=mailbox-error-text]`)?.textContent === text,
    [row('broken'), apiBroken.last_error], LIVE_WAIT);
  assert.equal(await broken.locator('[data-testid=mailbox-error]').isVisible(), true);
  // The error is a clear visual: a red pill and a red edge.
  const pill = await broken.locator('[data-testid=mailbox-state]').evaluate((n) => getComputedStyle(n).backgroundColor);
  assert.equal(pill, 'rgb(198, 47, 47)', 'the error pill is red');
  const okPill = await ops.locator('[data-testid=mailbox-state]').evaluate((n) => getComputedStyle(n).backgroundColor);
  assert.notEqual(okPill, pill, 'a working mailbox is not red');

  // No mail yet.
  assert.equal(await p.locator('[data-testid=mail-row]').count(), 0);
  assert.match(await p.locator('[data-testid=mail-list]').textContent(), /No mail taken yet/);
  for (const kind of ['alerts', 'refused', 'duplicates']) {
    assert.equal(await ops.locator(`[data-testid=mailbox-count][data-kind=${kind}]`).getAttribute('data-count'), '0', kind);
  }
  await screenshot(admin, 'a-states');
});

check('b. mail arrives: the page follows by itself; an alert (linked) and a refusal shown as text', async () => {
  const p = admin.page;
  const before = admin.mailboxRequests;
  deliver('good', mail({ from: 'Nagios <nagios@monitor.example.com>', id: 'm1@monitor.example.com', subject: GOOD_SUBJECT, body: '/var is 98% full.' }));
  deliver('bad', mail({ from: 'Mallory <mallory@evil.example>', id: 'm2@evil.example', subject: HOSTILE, body: `<script>alert(2)</script> ${HOSTILE}` }));

  // No reload, no click: the section's own refresh shows them.
  await p.locator(mailRow(GOOD_KEY)).waitFor({ state: 'visible', timeout: LIVE_WAIT });
  await p.locator(mailRow(BAD_KEY)).waitFor({ state: 'visible', timeout: LIVE_WAIT });
  assert.ok(admin.mailboxRequests > before, 'the page asked again');
  assert.equal(await p.locator('[data-testid=mail-row]').count(), 2);

  // As the server has them.
  const api = await restAt(sb.base, 'GET', '/api/v1/alerts/mailboxes', { token: await loginAt(sb.base, ADMIN) });
  const mails = Object.fromEntries(api.json.mails.map((m) => [m.key, m]));
  assert.equal(mails[GOOD_KEY].outcome, 'alert');
  assert.equal(mails[BAD_KEY].outcome, 'refused');
  const alertId = mails[GOOD_KEY].alert;
  assert.ok(Number.isInteger(alertId), `the alert of the allowed mail (${JSON.stringify(mails[GOOD_KEY])})`);

  const good = p.locator(mailRow(GOOD_KEY));
  assert.equal(await good.getAttribute('data-outcome'), 'alert');
  assert.equal(await good.locator('[data-testid=mail-mailbox]').textContent(), 'ops');
  assert.equal(await good.locator('[data-testid=mail-sender]').textContent(), mails[GOOD_KEY].sender);
  assert.match(mails[GOOD_KEY].sender, /nagios@monitor\.example\.com/);
  assert.equal(await good.locator('[data-testid=mail-subject]').textContent(), GOOD_SUBJECT);
  assert.equal(await good.locator('[data-testid=mail-outcome]').textContent(), 'Alert');
  assert.notEqual((await good.locator('[data-testid=mail-at]').textContent()).trim(), '');
  const link = good.locator('[data-testid=mail-alert-link]');
  assert.equal(await link.getAttribute('href'), `#/alerts/${alertId}`);
  assert.equal(await link.textContent(), `#${alertId}`);

  const bad = p.locator(mailRow(BAD_KEY));
  assert.equal(await bad.getAttribute('data-outcome'), 'refused');
  assert.equal(await bad.locator('[data-testid=mail-outcome]').textContent(), 'Refused');
  assert.equal(await bad.locator('[data-testid=mail-subject]').textContent(), HOSTILE, 'the subject as literal text');
  assert.equal(await bad.locator('[data-testid=mail-sender]').textContent(), mails[BAD_KEY].sender);
  assert.match(mails[BAD_KEY].sender, /mallory@evil\.example/);
  assert.ok(mails[BAD_KEY].detail, 'the server says why');
  assert.equal(await bad.locator('[data-testid=mail-detail]').textContent(), mails[BAD_KEY].detail);
  assert.equal(await bad.locator('[data-testid=mail-alert-link]').count(), 0, 'a refused mail has no alert');
  // Nothing of it became markup.
  assert.equal(await p.locator('[data-testid=mail-list] img').count(), 0, 'no <img> in the table');
  assert.equal(await p.locator('[data-testid=mailboxes-panel] img, [data-testid=mailboxes-panel] script').count(), 0);
  assert.equal(await p.evaluate(() => document.querySelectorAll('img').length), 0, 'no <img> anywhere');
  // Newest first, as the server sends them.
  assert.deepEqual(await p.$$eval('[data-testid=mail-row]', (ns) => ns.map((n) => n.getAttribute('data-key'))), api.json.mails.map((m) => m.key));

  // The counts follow.
  const ops = p.locator(row('ops'));
  await waitIn(p, (sel) => document.querySelector(`${sel} [data-testid=mailbox-count][data-kind=alerts]`)?.getAttribute('data-count') === '1'
    && document.querySelector(`${sel} [data-testid=mailbox-count][data-kind=refused]`)?.getAttribute('data-count') === '1', row('ops'), LIVE_WAIT);
  assert.equal(await ops.locator('[data-testid=mailbox-count][data-kind=duplicates]').getAttribute('data-count'), '0');
  assert.notEqual((await ops.locator('[data-testid=mailbox-last-check] time').textContent()).trim(), '', 'a last check time');
  await screenshot(admin, 'b-mail');

  // The link opens the alert's deliveries.
  await link.click();
  await p.locator(`[data-testid=al-detail][data-id="${alertId}"]`).waitFor({ state: 'visible' });
  assert.equal(await p.evaluate(() => location.hash), `#/alerts/${alertId}`);
  assert.equal(await p.locator('[data-testid=al-d-title]').textContent(), GOOD_SUBJECT);
  assert.equal(await p.locator('[data-testid=mailboxes-panel]').isVisible(), false);
  await p.locator(`[data-testid=al-delivery][data-user="${ALICE}"]`).waitFor({ state: 'visible' });
  // The detail has its own refresh; the mailboxes' is off.
  await waitIn(p, () => !window.__switchboard.mailboxPolling());
});

check('c. the refresh runs only while the section is shown', async () => {
  const p = admin.page;
  await goHash(p, '#/alerts');
  await openMailboxes(p);
  await waitIn(p, () => window.__switchboard.mailboxPolling());
  // Another section: off.
  await p.click('[data-testid=al-tab-history]');
  await p.locator('[data-testid=al-history]').waitFor({ state: 'visible' });
  await waitIn(p, () => !window.__switchboard.mailboxPolling());
  // Back: on, and the rows are there again.
  await openMailboxes(p);
  await waitIn(p, () => window.__switchboard.mailboxPolling());
  await p.locator(mailRow(GOOD_KEY)).waitFor({ state: 'visible' });
  // Leaving the Alerts page: off.
  await goHash(p, '#/');
  await p.locator('[data-testid=alerts-view]').waitFor({ state: 'hidden' });
  await waitIn(p, () => !window.__switchboard.mailboxPolling());
  // The filter asks for one mailbox only.
  await goHash(p, '#/alerts');
  await openMailboxes(p);
  await p.selectOption('[data-testid=mail-filter]', 'broken');
  await waitIn(p, () => document.querySelectorAll('[data-testid=mail-row]').length === 0
    && /No mail from this mailbox yet/.test(document.querySelector('[data-testid=mail-list]').textContent));
  await p.selectOption('[data-testid=mail-filter]', '');
  await waitIn(p, () => document.querySelectorAll('[data-testid=mail-row]').length === 2);
});

check('d. alice is no administrator: no Alerts page, no mailboxes, and the API refuses her', async () => {
  const alice = await newClient('alice', sb.base);
  const ap = alice.page;
  await signInAt(sb.base, alice, ALICE);
  assert.equal(await ap.locator('[data-testid=alerts-tab]').isVisible(), false, 'no Alerts button');
  await goHash(ap, '#/alerts');
  assert.equal(await ap.locator('[data-testid=alerts-view]').isVisible(), false, 'no Alerts page by address either');
  assert.equal(await ap.locator('[data-testid=mailboxes-panel]').isVisible(), false);
  assert.equal(alice.mailboxRequests, 0, 'her page never asks for the mailboxes');
  const r = await restAt(sb.base, 'GET', '/api/v1/alerts/mailboxes', { token: await loginAt(sb.base, ALICE) });
  assert.equal(r.status, 403, r.text);
  assert.equal(JSON.stringify(r.json || {}).includes('evil.example'), false, 'nothing of the mails in the refusal');
});

check('e. without mailboxes, the section says how to add one', async () => {
  bare = await startSwitchboard();
  const c = await newClient('admin-bare', bare.base);
  const p = c.page;
  await signInAt(bare.base, c, ADMIN);
  await openMailboxes(p);
  const empty = p.locator('[data-testid=mailboxes-empty]');
  await empty.waitFor({ state: 'visible' });
  assert.equal((await empty.textContent()).replace(/\s+/g, ' ').trim(),
    'No mailboxes are configured. Add [[alerts.mailbox]] to the configuration — see docs/alerts-mail.md.');
  assert.equal(await p.locator('[data-testid=mailbox-row]').count(), 0);
  assert.match(await p.locator('[data-testid=mail-list]').textContent(), /No mail taken yet/);
  await screenshot(c, 'e-empty');
});
