// Shared pieces for browser tests: the real server (the built binary, port 0, a fresh data
// folder, --demo), Debian's Chromium, browser contexts that take the web client from WEB_DIR,
// the page client and `check` wrapper of the test files, and a page server on another origin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.SWITCHBOARD_BIN || path.resolve(HERE, '../../target/debug/switchboard');
const START_TIMEOUT = Number(process.env.SERVER_START_TIMEOUT_MS || 30000);
/** Serve the web client and the SDK from this folder instead of the copies compiled into the server. */
export const WEB_DIR = process.env.WEB_DIR || '';
/** If set, screenshots are written there. */
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || '';
/** Every wait for a condition in a page (and the pages' default timeout). */
export const WAIT = 15000;

/** Start `switchboard serve --demo` on 127.0.0.1:0; resolves with { base, stop, tail }. */
export async function startSwitchboard(env = {}) {
  if (!existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (build it, or set SWITCHBOARD_BIN)`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'switchboard-browser-'));
  const child = spawn(BIN, ['serve', '--data-dir', dataDir, '--http', '127.0.0.1:0', '--demo'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  const log = [];
  createInterface({ input: child.stderr }).on('line', (l) => { log.push(l); if (log.length > 300) log.shift(); });
  const tail = () => (log.length ? `--- server stderr ---\n${log.slice(-60).join('\n')}` : '');
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within ${START_TIMEOUT} ms\n${tail()}`)), START_TIMEOUT);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`server exited before it was ready (code ${code}, signal ${sig})\n${tail()}`));
    });
    createInterface({ input: child.stdout }).on('line', (l) => {
      const m = /^listening (http:\/\/\S+)\s*$/.exec(l.trim());
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/$/, '')); }
    });
  });
  let stopping = false;
  child.on('exit', (code, sig) => {
    if (!stopping) console.error(`# the server exited during the tests (code ${code}, signal ${sig})\n${tail()}`);
  });
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      const [code, sig] = await exited;
      clearTimeout(t);
      if (code !== 0) console.error(`# server did not exit cleanly after SIGTERM: code ${code}, signal ${sig}`);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { base, stop, tail };
}

/**
 * The server named by SWITCHBOARD_URL (started with --demo, fresh), else one started here as
 * by startSwitchboard(); resolves with { base, stop, tail } either way.
 */
export async function useSwitchboard() {
  const url = process.env.SWITCHBOARD_URL;
  if (url) return { base: url.replace(/\/$/, ''), stop: async () => {}, tail: () => '' };
  return startSwitchboard();
}

/** Debian's Chromium (or CHROMIUM) with the flags this closed network needs. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
      // Pages and scripts fulfilled by a route (WEB_DIR) have no address space; let them reach 127.0.0.1.
      ...(WEB_DIR ? ['--disable-features=LocalNetworkAccessChecks'] : [])],
  });
}

// The server's paths that WEB_DIR replaces: path -> [file in WEB_DIR, content type].
const WEB_FILES = {
  '/': ['index.html', 'text/html'],
  '/assets/app.js': ['app.js', 'text/javascript'],
  '/assets/app.css': ['app.css', 'text/css'],
  '/sdk/switchboard.js': ['sdk/switchboard.js', 'text/javascript'],
  '/sdk/switchboard.css': ['sdk/switchboard.css', 'text/css'],
};

/**
 * A new context of `browser` (`options` as for browser.newContext). With WEB_DIR set, the web
 * client and the SDK of the server at `base` come from WEB_DIR, with the server's headers.
 */
export async function newContextAt(browser, base, options = {}) {
  const context = await browser.newContext(options);
  if (WEB_DIR) {
    await context.route((u) => u.origin === base && Object.hasOwn(WEB_FILES, u.pathname), async (route) => {
      const [file, type] = WEB_FILES[new URL(route.request().url()).pathname];
      const resp = await route.fetch(); // keep the server's headers (CSP, CORS, …)
      await route.fulfill({ response: resp, body: readFileSync(path.join(WEB_DIR, file)), contentType: `${type}; charset=utf-8` });
    });
  }
  return context;
}

/**
 * A browser context and its page, with what the page said: dialogs (dismissed), uncaught
 * errors, console errors and warnings, Content-Security-Policy violations.
 */
export class PageClient {
  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.dialogs = [];
    this.pageErrors = [];
    this.console = [];
    this.csp = [];
    this.attach(page);
  }

  /** Makes `page` the client's page and listens to it. */
  attach(page) {
    this.page = page;
    page.setDefaultTimeout(WAIT);
    page.on('dialog', (d) => {
      this.dialogs.push(`${d.type()}: ${d.message()}`);
      d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => this.pageErrors.push(String(e && e.stack ? e.stack : e)));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') this.console.push(`${m.type()}: ${m.text()}`);
      if (/Content Security Policy/i.test(m.text())) this.csp.push(m.text());
    });
  }

  /** A new page in the same context, made the client's page. */
  async newPage() {
    this.attach(await this.context.newPage());
    return this.page;
  }
}

/** A screenshot of `c.page` as SCREENSHOT_DIR/<name>.png (nothing without SCREENSHOT_DIR). */
export async function saveScreenshot(c, name, { fullPage = true } = {}) {
  if (!SCREENSHOT_DIR) return;
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await c.page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage });
}

/**
 * The `check(name, fn)` of a test file: a test that runs `fn`, then finds no page errors and no
 * dialogs (and with `csp`, no CSP violations) in `clients`; on failure it prints what the pages
 * and the server (`tail()`) said and takes a screenshot of each page (with `screenshot`). When
 * `skip()` gives a reason, the test is skipped.
 */
export function makeCheck({ clients, tail = () => '', screenshot = null, csp = false, skip = () => '' }) {
  return (name, fn) => test(name, { timeout: 120000 }, async (t) => {
    const why = skip();
    if (why) { t.skip(why); return; }
    try {
      await fn();
      for (const c of clients) {
        assert.deepEqual(c.pageErrors, [], `JavaScript errors in ${c.name}'s page`);
        assert.deepEqual(c.dialogs, [], `unexpected dialogs in ${c.name}'s page`);
        if (csp) assert.deepEqual(c.csp, [], `Content-Security-Policy violations in ${c.name}'s page`);
      }
    } catch (e) {
      for (const c of clients) {
        if (c.pageErrors.length) console.error(`# ${c.name} page errors:\n${c.pageErrors.join('\n')}`);
        if (c.console.length) console.error(`# ${c.name} console:\n${c.console.slice(-20).join('\n')}`);
        if (screenshot) await screenshot(c, `failed-${c.name}`).catch(() => {});
      }
      const logs = tail();
      if (logs) console.error(logs);
      throw e;
    }
  });
}

/** Serve `pages` ({ '/path': { type, body } }) on localhost:0 — another origin than 127.0.0.1. */
export async function startPageServer(pages) {
  const server = createServer((req, res) => {
    const page = pages[new URL(req.url, 'http://x').pathname];
    if (!page) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': page.type });
    res.end(page.body);
  });
  server.listen(0, 'localhost');
  await once(server, 'listening');
  return { origin: `http://localhost:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

export const JQUERY = readFileSync(path.join(HERE, 'node_modules/jquery/dist/jquery.min.js'), 'utf8');

// ------------------------------------------------------------------ shared test helpers

/**
 * Nothing hostile became markup in `c.page`: no <img> anywhere (with `scripts`, no <script> in
 * the body; with `xss`, no window.__xss set by an injected script), and no dialog fired.
 */
export async function assertNoMarkup(c, { scripts = false, xss = false } = {}) {
  const r = await c.page.evaluate(() => ({
    imgs: document.querySelectorAll('img').length,
    scripts: document.querySelectorAll('body script').length,
    xss: typeof window.__xss,
  }));
  assert.equal(r.imgs, 0, `${c.name}: no <img> anywhere`);
  if (scripts) assert.equal(r.scripts, 0, `${c.name}: no <script> in the body`);
  if (xss) assert.equal(r.xss, 'undefined', `${c.name}: no injected script ran`);
  assert.deepEqual(c.dialogs, [], `${c.name}: no dialog fired`);
}

/** Wait in the page until `fn(arg)` is truthy (polling every 50 ms). */
export function waitIn(page, fn, arg, timeout = WAIT) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 });
}

/** `eventually(what, fn, timeout = WAIT)`: calls the async check `fn` in Node every `every` ms until it returns a truthy value (that value). */
export function pollingEvery(every) {
  return async (what, fn, timeout = WAIT) => {
    const end = Date.now() + timeout;
    let last;
    for (;;) {
      last = await fn();
      if (last) return last;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
      await new Promise((r) => setTimeout(r, every));
    }
  };
}

/** Polls an async check in Node (every 150 ms) until it returns a truthy value. */
export const eventually = pollingEvery(150);

/** Waits until an acknowledged message (one with data-id) in the web client has exactly `text` as its body. */
export async function waitForMessage(page, text) {
  await waitIn(page, (t) => [...document.querySelectorAll('[data-testid=message][data-id] [data-testid=message-body]')]
    .some((e) => e.textContent === t), text);
}

/** A JSON request to the server at `base`: { status, json, text }. */
export async function restAt(base, method, p, { token, body } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${base}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  return { status: r.status, json, text };
}

const sessionTokens = new Map(); // `${base} ${address}` → bearer token

/** Sign in over the API (demo password) once per server and address; the bearer token. */
export async function loginAt(base, address, password = 'demo') {
  const key = `${base} ${address}`;
  if (sessionTokens.has(key)) return sessionTokens.get(key);
  const r = await restAt(base, 'POST', '/api/v1/auth/login', { body: { address, password } });
  if (r.status !== 200) throw new Error(`sign-in of ${address}: ${r.status} ${r.text}`);
  sessionTokens.set(key, r.json.token);
  return r.json.token;
}

/**
 * Sign in through the web client's form in `c.page`, and wait for its WebSocket (unless
 * `waitForSocket` is false: then only for the signed-in view).
 */
export async function signInAt(base, c, address, password = 'demo', { waitForSocket = true } = {}) {
  const { page } = c;
  await page.goto(`${base}/`);
  await page.locator('[data-testid=login-address]').waitFor({ state: 'visible' });
  await page.fill('[data-testid=login-address]', address);
  await page.fill('[data-testid=login-password]', password);
  await page.click('[data-testid=login-submit]');
  await page.locator('[data-testid=signout]').waitFor({ state: 'visible' });
  if (waitForSocket) await waitIn(page, () => window.__switchboard.connected());
}
