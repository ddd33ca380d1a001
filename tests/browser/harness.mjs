// Shared pieces for browser tests: the real server (the built binary, port 0, a fresh data
// folder, --demo), Debian's Chromium, and a page server on another origin.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.SWITCHBOARD_BIN || path.resolve(HERE, '../../target/debug/switchboard');
const START_TIMEOUT = Number(process.env.SERVER_START_TIMEOUT_MS || 30000);

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

/** Debian's Chromium with the flags this closed network needs. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
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

/** Wait in the page until `fn(arg)` is truthy (polling every 50 ms). */
export function waitIn(page, fn, arg, timeout = 15000) {
  return page.waitForFunction(fn, arg, { timeout, polling: 50 });
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

/** Sign in through the web client's form in `c.page`, and wait for its WebSocket. */
export async function signInAt(base, c, address, password = 'demo') {
  const { page } = c;
  await page.goto(`${base}/`);
  await page.locator('[data-testid=login-address]').waitFor({ state: 'visible' });
  await page.fill('[data-testid=login-address]', address);
  await page.fill('[data-testid=login-password]', password);
  await page.click('[data-testid=login-submit]');
  await page.locator('[data-testid=signout]').waitFor({ state: 'visible' });
  await waitIn(page, () => window.__switchboard.connected());
}
