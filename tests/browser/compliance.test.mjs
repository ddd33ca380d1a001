// End-to-end test of the compliance pages of the web client in headless Chromium: the
// e-discovery search (hits with the matched words marked, hostile text shown as text, the
// whole archived conversation, exports as EML, CSV and JSON lines), ethical walls (create,
// change mode, disable) and the violations they catch (live), disclaimers, retention and
// legal holds — for compliance officers — and the audit log for auditors. People without
// those roles see none of it. The real server, Debian's Chromium, one browser context per
// person.
//
//   cd tests/browser && npm install && node --test compliance.test.mjs
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
import { readFileSync } from 'node:fs';
import {
  assertNoMarkup, eventually, launchChromium, loginAt, makeCheck, newContextAt, PageClient, restAt,
  saveScreenshot as screenshot, signInAt, useSwitchboard, WAIT, waitIn,
} from './harness.mjs';

const PASSWORD = 'demo';
const ALICE = 'alice@example.com'; // engineering
const BOB = 'bob@example.com'; // engineering
const CAROL = 'carol@example.com'; // engineering
const DAVE = 'dave@example.com'; // engineering
const PEGGY = 'peggy@example.com'; // finance
const TRENT = 'trent@example.com'; // compliance officer (legal)
const SYBIL = 'sybil@example.com'; // auditor (finance)
const HOSTILE = '<img src=x onerror=alert(1)>';

// A word nobody else writes, so that the search finds only this test's messages.
const KEYWORD = 'zanzibar';
const PLAIN = `Meet me at the ${KEYWORD} ferry at noon`;
const HOSTILE_MSG = `${KEYWORD} ${HOSTILE}`;
const OTHER = `Carol saw the ${KEYWORD} ferry too`; // carol <-> dave: not alice's
const WALL = 'Research / Finance';

let sb = null; // the server (SWITCHBOARD_URL, or one started here): see harness.mjs
let base = '';
// Shared helpers (harness.mjs), bound to this file's server.
const rest = (method, p, opts) => restAt(base, method, p, opts);
const login = (address) => loginAt(base, address, PASSWORD);
const signIn = (c, address) => signInAt(base, c, address, PASSWORD);
let browser = null;
const clients = [];
let trent = null;
let aliceConv = 0; // alice <-> bob, with the keyword
let otherConv = 0; // carol <-> dave, with the keyword

// ------------------------------------------------------------------ REST helpers (Node side)

async function direct(from, to) {
  const r = await rest('POST', '/api/v1/conversations', { token: await login(from), body: { kind: 'direct', members: [to] } });
  assert.equal(r.status, 201, `${from} starts a chat with ${to}: ${r.status} ${r.text}`);
  return r.json.id;
}

async function say(from, conv, body) {
  const r = await rest('POST', `/api/v1/conversations/${conv}/messages`, { token: await login(from), body: { body } });
  assert.equal(r.status, 201, `${from} writes in ${conv}: ${r.status} ${r.text}`);
  return r.json;
}

async function getJson(p, who = TRENT) {
  const r = await rest('GET', p, { token: await login(who) });
  assert.equal(r.status, 200, `GET ${p} as ${who}: ${r.status} ${r.text}`);
  return r.json;
}

// ------------------------------------------------------------------ browser clients

async function newClient(name, viewport = { width: 1360, height: 900 }) {
  const context = await newContextAt(browser, base, { viewport, acceptDownloads: true });
  const c = new PageClient(name, context, await context.newPage());
  clients.push(c);
  return c;
}

async function closeClient(c) {
  await c.context.close();
  clients.splice(clients.indexOf(c), 1);
}

/** Clicks `selector` and returns the file it downloads: {name, text}. */
async function download(page, selector) {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: WAIT }), page.click(selector)]);
  const failure = await dl.failure();
  assert.equal(failure, null, `download from ${selector} failed: ${failure}`);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), text: readFileSync(file, 'utf8') };
}

/** The body of one RFC 5322 message as text, its Content-Transfer-Encoding undone. */
function emlBody(text) {
  const cut = text.search(/\r?\n\r?\n/);
  const head = cut < 0 ? text : text.slice(0, cut);
  const body = cut < 0 ? '' : text.slice(cut).replace(/^\r?\n\r?\n/, '');
  const cte = (/^Content-Transfer-Encoding:\s*(\S+)/im.exec(head) || [])[1]?.toLowerCase() || '7bit';
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    const raw = body.replace(/=\r?\n/g, '');
    const bytes = [];
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(raw.slice(i + 1, i + 3))) { bytes.push(parseInt(raw.slice(i + 1, i + 3), 16)); i += 2; } else bytes.push(...Buffer.from(raw[i], 'utf8'));
    }
    return Buffer.from(bytes).toString('utf8');
  }
  return body;
}

const visible = (page, sel) => page.locator(sel).isVisible();

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

check('a. alice and bob chat (with a hostile message); carol and dave too', async () => {
  aliceConv = await direct(ALICE, BOB);
  await say(ALICE, aliceConv, PLAIN);
  await say(BOB, aliceConv, HOSTILE_MSG);
  await say(BOB, aliceConv, 'See you there');
  otherConv = await direct(CAROL, DAVE);
  await say(CAROL, otherConv, OTHER);

  // The archive has them (the search index may follow the store by a moment).
  const q = `/api/v1/archive/search?q=${KEYWORD}&participant=${encodeURIComponent(ALICE)}`;
  const r = await eventually('both of alice\'s hits in the archive search', async () => {
    const s = await getJson(q);
    return Array.isArray(s.hits) && s.hits.length >= 2 ? s : false;
  });
  for (const h of r.hits) assert.equal(h.conversation, aliceConv, `participant=alice finds only alice's conversation: ${JSON.stringify(h)}`);
  // Only compliance officers search.
  for (const who of [ALICE, SYBIL]) {
    const denied = await rest('GET', q, { token: await login(who) });
    assert.equal(denied.status, 403, `${who} may not search the archive: ${denied.status} ${denied.text}`);
  }
});

check('b. trent searches, sees the hits marked and the hostile text as text, opens and exports the conversation', async () => {
  trent = await newClient('trent');
  await signIn(trent, TRENT);
  const p = trent.page;
  await p.locator('[data-testid=compliance-tab]').waitFor({ state: 'visible' });
  await p.click('[data-testid=compliance-tab]');
  await p.locator('[data-testid=compliance-view]').waitFor({ state: 'visible' });
  await p.locator('[data-testid=cmp-search-section]').waitFor({ state: 'visible' });
  assert.equal(await visible(p, '[data-testid=chat]'), false, 'the page replaces the chat pane');
  // The group filter lists the directory's groups.
  await waitIn(p, () => [...document.querySelectorAll('[data-testid=cmp-group] option')].some((o) => o.value === 'engineering'));

  await p.fill('[data-testid=cmp-q]', KEYWORD);
  await p.fill('[data-testid=cmp-participant]', ALICE);
  await p.click('[data-testid=cmp-search]');
  await waitIn(p, () => document.querySelectorAll('[data-testid=cmp-hit]').length >= 2);
  const hits = await p.$$eval('[data-testid=cmp-hit]', (ns) => ns.map((n) => ({
    conversation: Number(n.getAttribute('data-conversation')),
    snippet: n.querySelector('[data-testid=cmp-hit-snippet]').textContent,
    marks: [...n.querySelectorAll('mark')].map((m) => m.textContent),
    actor: n.querySelector('[data-testid=cmp-hit-actor]').getAttribute('data-address'),
    text: n.textContent,
  })));
  for (const h of hits) {
    assert.equal(h.conversation, aliceConv, `only alice's conversation: ${JSON.stringify(h)}`);
    assert.ok(h.marks.length >= 1, `the keyword is marked: ${JSON.stringify(h)}`);
    for (const m of h.marks) assert.match(m.toLowerCase(), new RegExp(KEYWORD), `marked text is the keyword: ${JSON.stringify(h)}`);
  }
  assert.ok(hits.some((h) => h.actor === ALICE && h.snippet.includes('ferry')), `alice's message is a hit: ${JSON.stringify(hits)}`);
  const hostileHit = hits.find((h) => h.actor === BOB);
  assert.ok(hostileHit, `bob's message is a hit: ${JSON.stringify(hits)}`);
  assert.ok(hostileHit.snippet.includes(HOSTILE), `the hostile text is shown as text: ${JSON.stringify(hostileHit.snippet)}`);
  assert.ok(!hits.some((h) => h.text.includes(OTHER)), 'carol\'s message is not a hit for participant alice');
  await p.waitForTimeout(300); // give any injected handler time to fire
  await assertNoMarkup(trent);
  await screenshot(trent, 'b-search');

  // The whole conversation, oldest first.
  await p.locator(`[data-testid=cmp-hit][data-conversation="${aliceConv}"]`).first().click();
  const conv = p.locator('[data-testid=cmp-conversation]');
  await conv.waitFor({ state: 'visible' });
  await waitIn(p, () => document.querySelectorAll('[data-testid=cmp-record][data-kind=message]').length >= 3);
  const bodies = await p.$$eval('[data-testid=cmp-record][data-kind=message] [data-testid=cmp-record-body]', (ns) => ns.map((n) => n.textContent));
  assert.deepEqual(bodies.slice(-3), [PLAIN, HOSTILE_MSG, 'See you there'], 'the messages, oldest first, as text');
  const people = await p.$$eval('[data-testid=cmp-conv-participant]', (ns) => ns.map((n) => n.getAttribute('data-address')));
  assert.deepEqual([...people].sort(), [ALICE, BOB], 'the participants');
  await assertNoMarkup(trent);

  // Export the conversation: EML, then CSV.
  const eml = await download(p, '[data-testid=cmp-conv-export-eml]');
  assert.match(eml.name, /\.(eml|mbox)$/, `an EML file name: ${eml.name}`);
  assert.match(eml.text, /^From:/m, `EML has From:\n${eml.text.slice(0, 2000)}`);
  assert.match(eml.text, /^Subject:/m, `EML has Subject:\n${eml.text.slice(0, 2000)}`);
  assert.match(eml.text, /^Date:/m, `EML has Date:\n${eml.text.slice(0, 2000)}`);
  const emlText = emlBody(eml.text);
  assert.ok(emlText.includes(PLAIN), `EML has the message text:\n${eml.text.slice(0, 3000)}`);
  assert.ok(emlText.includes(HOSTILE_MSG), `EML has bob's message as it was written:\n${emlText.slice(0, 3000)}`);
  assert.ok(!emlText.includes(OTHER), 'the conversation export has only that conversation');
  const csv = await download(p, '[data-testid=cmp-conv-export-csv]');
  assert.match(csv.name, /\.csv$/, `a CSV file name: ${csv.name}`);
  assert.ok(csv.text.includes(PLAIN), `CSV has the message text:\n${csv.text.slice(0, 2000)}`);
  assert.ok(csv.text.split(/\r?\n/).filter(Boolean).length >= 4, `CSV has a header and a row per record:\n${csv.text.slice(0, 2000)}`);
  assert.equal(await visible(p, '[data-testid=cmp-conv-error]'), false, 'no export error');

  // Export the search as JSON lines: alice's conversation, whole, and not carol's.
  const jsonl = await download(p, '[data-testid=cmp-export-jsonl]');
  assert.match(jsonl.name, /\.jsonl?$/, `a JSON lines file name: ${jsonl.name}`);
  const lines = jsonl.text.split('\n').filter((l) => l.trim());
  assert.ok(lines.length >= 3, `a line per record:\n${jsonl.text.slice(0, 2000)}`);
  for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `every line is JSON: ${l}`);
  assert.ok(jsonl.text.includes('See you there'), 'the export covers the whole conversation with a hit');
  assert.ok(!jsonl.text.includes(OTHER), 'the export respects the participant filter');
  assert.equal(await visible(p, '[data-testid=cmp-search-error]'), false, 'no export error');
  await screenshot(trent, 'b-conversation');

  // The filters are sent: a group and a kind that exclude alice's chat find nothing.
  await p.fill('[data-testid=cmp-participant]', '');
  await p.selectOption('[data-testid=cmp-kind]', 'group');
  await p.click('[data-testid=cmp-search]');
  await p.locator('[data-testid=cmp-no-hits]').waitFor({ state: 'visible' });
  await p.selectOption('[data-testid=cmp-kind]', 'direct');
  await p.click('[data-testid=cmp-search]');
  await waitIn(p, (other) => [...document.querySelectorAll('[data-testid=cmp-hit]')].some((n) => Number(n.getAttribute('data-conversation')) === other), otherConv);
  // A date range that ends yesterday finds nothing.
  const y = new Date(Date.now() - 86400e3);
  const ymd = `${y.getFullYear()}-${String(y.getMonth() + 1).padStart(2, '0')}-${String(y.getDate()).padStart(2, '0')}`;
  await p.fill('[data-testid=cmp-to]', ymd);
  await p.click('[data-testid=cmp-search]');
  await p.locator('[data-testid=cmp-no-hits]').waitFor({ state: 'visible' });
  await p.click('[data-testid=cmp-clear]');
  assert.equal(await p.locator('[data-testid=cmp-hit]').count(), 0);
});

check('c. trent builds a wall engineering ↔ finance; alice is blocked; the violation shows up live', async () => {
  const p = trent.page;
  await p.click('[data-testid=cmp-tab-walls]');
  await p.locator('[data-testid=cmp-walls-section]').waitFor({ state: 'visible' });
  await waitIn(p, () => [...document.querySelectorAll('[data-testid=wall-group-a] option')].some((o) => o.value === 'finance'));
  await p.fill('[data-testid=wall-name]', WALL);
  await p.selectOption('[data-testid=wall-group-a]', 'engineering');
  await p.selectOption('[data-testid=wall-group-b]', 'finance');
  await p.selectOption('[data-testid=wall-mode]', 'block');
  await p.click('[data-testid=wall-create]');
  const row = p.locator(`[data-testid=wall-row][data-name="${WALL}"]`);
  await row.waitFor({ state: 'visible' });
  assert.equal(await row.getAttribute('data-mode'), 'block');
  assert.equal(await row.getAttribute('data-state'), 'enabled');
  assert.match(await row.locator('[data-testid=wall-row-groups]').textContent(), /Engineering.*Finance/);
  assert.equal(await visible(p, '[data-testid=wall-form-error]'), false);
  const walls = (await getJson('/api/v1/walls')).walls;
  const wall = walls.find((w) => w.name === WALL);
  assert.ok(wall, `the wall exists: ${JSON.stringify(walls)}`);
  assert.deepEqual([wall.group_a, wall.group_b, wall.mode, wall.enabled], ['engineering', 'finance', 'block', true]);
  await screenshot(trent, 'c-walls');

  // Trent watches the violations; alice tries to start a chat with peggy (finance).
  await p.click('[data-testid=cmp-tab-violations]');
  await p.locator('[data-testid=cmp-violations-section]').waitFor({ state: 'visible' });
  await p.locator('[data-testid=violation-list][data-loaded]').waitFor({ state: 'attached' });
  const blocked = await rest('POST', '/api/v1/conversations', { token: await login(ALICE), body: { kind: 'direct', members: [PEGGY] } });
  assert.equal(blocked.status, 403, `the wall blocks alice -> peggy: ${blocked.status} ${blocked.text}`);
  assert.equal(blocked.json?.error?.code, 'blocked', blocked.text);
  assert.match(blocked.json.error.message, /Peggy Parker.*have been prohibited/, blocked.text);
  const vsel = `[data-testid=violation-row][data-actor="${ALICE}"][data-other="${PEGGY}"][data-action=blocked]`;
  try {
    await p.locator(vsel).first().waitFor({ state: 'visible' });
  } catch (e) {
    const listed = await rest('GET', '/api/v1/compliance/violations', { token: await login(TRENT) });
    throw new Error(`the violation did not appear live in trent's list (GET /api/v1/compliance/violations: ${listed.status} ${listed.text}): ${e.message}`);
  }
  assert.match(await p.locator(vsel).first().locator('[data-testid=violation-wall]').textContent(), new RegExp(WALL.replace(/[/]/g, '\\/')));
  const vs = (await getJson('/api/v1/compliance/violations')).violations;
  assert.ok(vs.some((v) => v.actor === ALICE && v.other === PEGGY && v.action === 'blocked' && v.wall === wall.id), `listed by the API: ${JSON.stringify(vs)}`);
  await screenshot(trent, 'c-violation');

  // Monitor mode: the chat goes ahead, the violation is flagged; the badge tells trent.
  await p.click('[data-testid=cmp-tab-walls]');
  await row.locator('[data-testid=wall-row-mode]').selectOption('monitor');
  await waitIn(p, (name) => document.querySelector(`[data-testid=wall-row][data-name="${name}"]`)?.getAttribute('data-mode') === 'monitor', WALL);
  assert.equal((await getJson('/api/v1/walls')).walls.find((w) => w.id === wall.id).mode, 'monitor');
  const flagged = await rest('POST', '/api/v1/conversations', { token: await login(ALICE), body: { kind: 'direct', members: [PEGGY] } });
  assert.equal(flagged.status, 201, `monitor mode lets alice -> peggy through: ${flagged.status} ${flagged.text}`);
  const badge = p.locator('[data-testid=violation-badge]');
  await badge.waitFor({ state: 'visible' });
  assert.match((await badge.textContent()).trim(), /^[1-9]\d*$/, 'the badge counts the new violation');
  await p.click('[data-testid=cmp-tab-violations]');
  await p.locator(`[data-testid=violation-row][data-actor="${ALICE}"][data-action=flagged]`).first().waitFor({ state: 'visible' });
  await badge.waitFor({ state: 'hidden' });

  // Disable it (walls are never deleted).
  await p.click('[data-testid=cmp-tab-walls]');
  await row.locator('[data-testid=wall-toggle]').click();
  await waitIn(p, (name) => document.querySelector(`[data-testid=wall-row][data-name="${name}"]`)?.getAttribute('data-state') === 'disabled', WALL);
  assert.equal((await getJson('/api/v1/walls')).walls.find((w) => w.id === wall.id).enabled, false);
  assert.equal(await row.locator('[data-testid=wall-toggle]').textContent(), 'Enable');
});

check('d. sybil (auditor) reads the audit log; alice sees neither page', async () => {
  const sybil = await newClient('sybil');
  await signIn(sybil, SYBIL);
  const p = sybil.page;
  await p.locator('[data-testid=audit-tab]').waitFor({ state: 'visible' });
  assert.equal(await visible(p, '[data-testid=compliance-tab]'), false, 'no compliance page for an auditor');
  await p.click('[data-testid=audit-tab]');
  await p.locator('[data-testid=audit-view]').waitFor({ state: 'visible' });
  await waitIn(p, () => document.querySelectorAll('[data-testid=audit-row]').length > 0);
  const rows = async () => p.$$eval('[data-testid=audit-row]', (ns) => ns.map((n) => ({
    id: Number(n.getAttribute('data-id')),
    action: n.getAttribute('data-action'),
    actor: n.querySelector('[data-testid=audit-actor]')?.getAttribute('data-address') || '',
    target: n.querySelector('[data-testid=audit-target]').textContent,
    after: n.querySelector('[data-testid=audit-after]').textContent,
    time: n.querySelector('time')?.textContent || '',
  })));
  const list = await rows();
  const create = list.find((r) => r.action === 'wall.create');
  assert.ok(create, `wall.create is in the log: ${JSON.stringify(list.map((r) => r.action))}`);
  assert.equal(create.actor, TRENT, 'trent created the wall');
  assert.ok(create.after.includes(WALL), `"after" shows the wall as JSON: ${create.after}`);
  assert.doesNotThrow(() => JSON.parse(create.after), `"after" is JSON: ${create.after}`);
  assert.ok(create.time, 'a time');
  assert.ok(list.some((r) => r.action === 'wall.update'), 'the mode change and the disabling are in the log');
  assert.ok(list.some((r) => /^archive\.search/.test(r.action) && r.actor === TRENT), `the searches are in the log: ${JSON.stringify(list.map((r) => r.action))}`);
  assert.ok(list.some((r) => /^archive\.export/.test(r.action) && r.actor === TRENT), `the exports are in the log: ${JSON.stringify(list.map((r) => r.action))}`);
  // Newest first.
  const ids = list.map((r) => r.id);
  assert.deepEqual(ids, [...ids].sort((x, y) => y - x), 'newest first');
  await screenshot(sybil, 'd-audit');
  // The compliance page stays closed even by address.
  await p.evaluate(() => { location.hash = '#/compliance'; });
  await p.waitForTimeout(300);
  assert.equal(await visible(p, '[data-testid=compliance-view]'), false);

  const alice = await newClient('alice');
  await signIn(alice, ALICE);
  const a = alice.page;
  assert.equal(await visible(a, '[data-testid=compliance-tab]'), false, 'no compliance page for alice');
  assert.equal(await visible(a, '[data-testid=audit-tab]'), false, 'no audit log for alice');
  for (const h of ['#/compliance', '#/audit']) {
    await a.evaluate((x) => { location.hash = x; }, h);
    await a.waitForTimeout(300);
    assert.equal(await visible(a, '[data-testid=compliance-view]'), false, `${h}: no compliance page`);
    assert.equal(await visible(a, '[data-testid=audit-view]'), false, `${h}: no audit log`);
    assert.equal(await visible(a, '[data-testid=chat]'), true, 'the chat pane stays');
  }
  const denied = await rest('GET', '/api/v1/audit', { token: await login(ALICE) });
  assert.equal(denied.status, 403, `alice may not read the audit log: ${denied.status} ${denied.text}`);
  await closeClient(alice);
  await closeClient(sybil);
});

check('e. trent manages disclaimers, retention and legal holds', async () => {
  const p = trent.page;

  // A disclaimer in two languages, for 1:1 chats.
  await p.click('[data-testid=cmp-tab-disclaimers]');
  await p.locator('[data-testid=cmp-disclaimers-section]').waitFor({ state: 'visible' });
  await p.click('[data-testid=dsc-new]');
  await p.locator('[data-testid=dsc-form]').waitFor({ state: 'visible' });
  await p.fill('[data-testid=dsc-name]', 'Recorded');
  await p.uncheck('[data-testid=dsc-kind-group]');
  await p.uncheck('[data-testid=dsc-kind-queue]');
  await p.check('[data-testid=dsc-kind-direct]');
  await p.selectOption('[data-testid=dsc-audience]', 'all');
  await p.selectOption('[data-testid=dsc-frequency]', 'conversation');
  await p.locator('[data-testid=dsc-text]').first().fill('This chat between {participants} is recorded.');
  await p.click('[data-testid=dsc-text-add]');
  await p.locator('[data-testid=dsc-lang]').nth(1).fill('de');
  await p.locator('[data-testid=dsc-text]').nth(1).fill('Dieser Chat zwischen {participants} wird aufgezeichnet.');
  await waitIn(p, () => [...document.querySelectorAll('[data-testid=dsc-fallback] option')].map((o) => o.value).join() === 'en,de');
  await p.selectOption('[data-testid=dsc-fallback]', 'en');
  await p.check('[data-testid=dsc-enabled]');
  await p.click('[data-testid=dsc-save]');
  await p.locator('[data-testid=dsc-form]').waitFor({ state: 'hidden' });
  const drow = p.locator('[data-testid=dsc-row][data-name="Recorded"]');
  await drow.waitFor({ state: 'visible' });
  let d = (await getJson('/api/v1/disclaimers')).disclaimers.find((x) => x.name === 'Recorded');
  assert.ok(d, 'the disclaimer exists');
  assert.deepEqual(d.kinds, ['direct']);
  assert.equal(d.audience, 'all');
  assert.equal(d.frequency, 'conversation');
  assert.deepEqual(d.texts, { en: 'This chat between {participants} is recorded.', de: 'Dieser Chat zwischen {participants} wird aufgezeichnet.' });
  assert.equal(d.fallback, 'en');
  assert.equal(d.enabled, true);

  // It is shown when a 1:1 chat starts, as a system message.
  const conv = await direct(BOB, CAROL);
  await say(BOB, conv, 'Hello Carol');
  const shown = await eventually('the disclaimer in the new chat', async () => {
    const h = await getJson(`/api/v1/conversations/${conv}/messages`, BOB);
    const evs = h.events || h.messages || h.items || [];
    return evs.find((e) => e.kind === 'message' && !e.sender && /is recorded/.test(e.body)) || false;
  });
  assert.doesNotMatch(shown.body, /\{participants\}/, `the placeholder is filled in: ${shown.body}`);
  assert.match(shown.body, /Bob|Carol|bob@|carol@/, `the participants are named: ${shown.body}`);

  // Edit it, then disable it.
  await drow.locator('[data-testid=dsc-edit]').click();
  await p.locator('[data-testid=dsc-form]').waitFor({ state: 'visible' });
  assert.equal(await p.inputValue('[data-testid=dsc-name]'), 'Recorded');
  assert.equal(await p.locator('[data-testid=dsc-text-row]').count(), 2);
  await p.check('[data-testid=dsc-kind-group]');
  await p.click('[data-testid=dsc-save]');
  await p.locator('[data-testid=dsc-form]').waitFor({ state: 'hidden' });
  d = await eventually('the edit saved', async () => {
    const x = (await getJson('/api/v1/disclaimers')).disclaimers.find((y) => y.id === d.id);
    return x && x.kinds.includes('group') ? x : false;
  });
  assert.deepEqual([...d.kinds].sort(), ['direct', 'group']);
  assert.equal(Object.keys(d.texts).length, 2, 'the texts are kept');
  await drow.locator('[data-testid=dsc-toggle]').click();
  await waitIn(p, () => document.querySelector('[data-testid=dsc-row][data-name="Recorded"]')?.getAttribute('data-state') === 'disabled');
  assert.equal((await getJson('/api/v1/disclaimers')).disclaimers.find((y) => y.id === d.id).enabled, false);
  await screenshot(trent, 'e-disclaimers');

  // Retention: global 400 days, engineering 30 days.
  await p.click('[data-testid=cmp-tab-retention]');
  await p.locator('[data-testid=cmp-retention-section]').waitFor({ state: 'visible' });
  await p.locator('[data-testid=retention-rows][data-loaded]').waitFor({ state: 'attached' });
  while (await p.locator('[data-testid=retention-row]').count()) await p.locator('[data-testid=retention-remove]').first().click();
  await p.click('[data-testid=retention-add]');
  await p.locator('[data-testid=retention-scope]').first().selectOption('');
  await p.locator('[data-testid=retention-days]').first().fill('400');
  await p.click('[data-testid=retention-add]');
  await p.locator('[data-testid=retention-scope]').nth(1).selectOption('engineering');
  await p.locator('[data-testid=retention-days]').nth(1).fill('30');
  await p.click('[data-testid=retention-save]');
  await p.locator('[data-testid=retention-saved]').waitFor({ state: 'visible' });
  assert.equal(await visible(p, '[data-testid=retention-error]'), false);
  const ret = (await getJson('/api/v1/retention')).policies;
  const key = (x) => `${x.group ?? ''}:${x.days}`;
  assert.deepEqual(ret.map(key).sort(), [':400', 'engineering:30'].sort(), JSON.stringify(ret));

  // A legal hold on alice (a hostile reason is shown as text), then released.
  await p.fill('[data-testid=hold-custodian]', ALICE);
  await p.fill('[data-testid=hold-reason]', HOSTILE);
  await p.click('[data-testid=hold-create]');
  const hrow = p.locator(`[data-testid=hold-row][data-custodian="${ALICE}"][data-state=active]`);
  await hrow.waitFor({ state: 'visible' });
  assert.equal(await hrow.locator('[data-testid=hold-reason-cell]').textContent(), HOSTILE);
  const holds = (await getJson('/api/v1/holds')).holds;
  const hold = holds.find((h) => h.custodian === ALICE && !h.released_at);
  assert.ok(hold, JSON.stringify(holds));
  assert.equal(hold.reason, HOSTILE);
  await hrow.locator('[data-testid=hold-release]').click();
  await p.locator(`[data-testid=hold-row][data-id="${hold.id}"][data-state=released]`).waitFor({ state: 'visible' });
  assert.ok((await getJson('/api/v1/holds')).holds.find((h) => h.id === hold.id).released_at, 'released');
  await p.waitForTimeout(300);
  await assertNoMarkup(trent);
  await screenshot(trent, 'e-retention');
});
