/*! Switchboard click-to-chat SDK.
 *
 * Embed on any page (any origin):
 *
 *   <div id="help"></div>
 *   <script src="https://chat.example.com/sdk/switchboard.js"></script>
 *   <script>Switchboard.button(document.getElementById('help'), {queue: 'support', label: 'Chat with IT'})</script>
 *
 * The server's address is taken from this script's own src. Plain ES2020, no dependencies.
 *
 *   Switchboard.queueStatus(id)  -> Promise<{id, state: 'open'|'busy'|'closed', experts_ready, seekers_waiting, estimated_wait_s}>
 *   Switchboard.expertsReady(id) -> Promise<number|null>   (null: no such queue)
 *   Switchboard.onPresence(user, cb) -> unsubscribe function. cb({user, state, idle, sametime})
 *       at once and on every change (polled every 5 s, one request for all users). Whose
 *       presence is public is the server's public_presence setting (default: queue experts);
 *       anyone else is {state: 'unknown'}.
 *   Switchboard.button(element, {queue, label}) -> widget handle; a click-to-chat button that
 *       shows the queue's state (polled every 10 s), is disabled while the queue is closed
 *       (by an admin or outside business hours; the queue's closed message is its title), and
 *       opens a chat panel: the pre-chat form (name, the queue's own form fields, question),
 *       place in line, chat, transcript, survey. When nobody can answer and the queue takes
 *       offline messages, the visitor can leave messages in the conversation instead.
 *       A guest's rights end with its chat: once the chat is over (closed, or it left the line
 *       because the visitor was away longer than the server's grace period, or nobody could
 *       take it) the server closes the socket ("session ended") and refuses new ones. The
 *       widget then says the chat has ended, stops reconnecting, and offers a new chat (a new
 *       guest). handle.chat.state is then the chat's last state, or 'ended' when the server
 *       could not say which (e.g. it ended while the visitor was offline).
 *   Switchboard.refresh() -> Promise: poll every button's queue now.
 *
 * Security: every string from the server or a user is put into the page with textContent
 * only; no HTML is ever parsed.
 */
(function () {
  'use strict';
  if (window.Switchboard && window.Switchboard.__sbw) return; // loaded twice

  // Loaded with async/defer or by a loader, currentScript may be missing: look for our tag.
  const script = document.currentScript
    || [...document.querySelectorAll('script[src]')].reverse().find((x) => /\/sdk\/switchboard(\.min)?\.js([?#].*)?$/.test(x.src));
  const src = (script && script.src) || '';
  let BASE = '';
  try {
    BASE = src.replace(/[?#].*$/, '').replace(/\/sdk\/switchboard(\.min)?\.js$/, '');
    if (!/^https?:\/\//i.test(BASE)) BASE = new URL(src).origin;
  } catch (_) {
    BASE = location.origin;
  }
  const API = BASE + '/api/v1';
  const POLL_MS = 10000;
  const TYPING_REPEAT_MS = 3000;
  const TYPING_STOP_MS = 4000;
  const TYPING_SHOW_MS = 7000;
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  /** Socket refusals in a row, with the server answering meanwhile, that mean "this chat has ended". */
  const REFUSALS_MEAN_ENDED = 3;
  /** Chat states after which a guest's rights are gone. */
  const FINAL_STATES = ['closed', 'abandoned', 'overflowed', 'wrap_up'];
  let SAME_ORIGIN = false;
  try { SAME_ORIGIN = new URL(BASE).origin === location.origin; } catch (_) { /* not a URL */ }

  // ------------------------------------------------------------ helpers
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'text') n.textContent = String(v);
        else if (k === 'class') n.className = v;
        else n.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return n;
  }

  function setText(node, t) {
    const s = t == null ? '' : String(t);
    if (node.textContent !== s) node.textContent = s;
  }

  // Text from people (the expert's name, the queue's title) shares lines with the widget's
  // words: a line is an array of literal strings and U(text) pieces, each U piece drawn as a
  // <bdi>, so that a name starting with U+202E RIGHT-TO-LEFT OVERRIDE, or written right to
  // left, cannot reorder the words around it.
  const U = (t) => ({ u: t == null ? '' : String(t) });
  function lineNodes(parts) {
    return (Array.isArray(parts) ? parts : [parts == null ? '' : String(parts)])
      .filter((x) => (typeof x === 'string' ? x : x.u) !== '')
      .map((x) => (typeof x === 'string' ? document.createTextNode(x) : el('bdi', { class: 'sbw-u', text: x.u })));
  }
  function setLine(node, parts) {
    const nodes = lineNodes(parts);
    const text = nodes.map((n) => n.textContent).join('');
    if (node.textContent === text && node.querySelectorAll('bdi').length === nodes.filter((n) => n.nodeType === 1).length) return;
    node.replaceChildren(...nodes);
  }

  function show(node, on) { node.hidden = !on; }

  function randomId() {
    const b = new Uint8Array(9);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return 'sbw-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function fmtWait(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '';
    if (s < 60) return 'less than a minute';
    const m = Math.round(s / 60);
    return m === 1 ? 'about 1 minute' : `about ${m} minutes`;
  }

  function fmtClock(ms) {
    try { return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); } catch (_) { return ''; }
  }

  async function httpError(res) {
    let msg = `Request failed (HTTP ${res.status}).`;
    let code = `http_${res.status}`;
    try {
      const j = await res.json();
      if (j && j.error) {
        if (typeof j.error.message === 'string' && j.error.message) msg = j.error.message;
        if (typeof j.error.code === 'string') code = j.error.code;
      }
    } catch (_) { /* not JSON */ }
    const e = new Error(msg);
    e.status = res.status;
    e.code = code;
    return e;
  }

  // ------------------------------------------------------------ public read APIs
  async function queueStatus(id) {
    const res = await fetch(`${API}/queues/${encodeURIComponent(String(id))}/status`, {
      mode: 'cors', credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' },
    });
    if (!res.ok) throw await httpError(res);
    return res.json();
  }

  async function expertsReady(id) {
    const res = await fetch(`${BASE}/ITFramework/webclient?getQueueExpertsReady=${encodeURIComponent(String(id))}`, {
      mode: 'cors', credentials: 'omit', cache: 'no-store',
    });
    if (!res.ok) throw await httpError(res);
    const t = (await res.text()).trim();
    if (t === 'na' || !/^\d+$/.test(t)) return null;
    return Number(t);
  }

  /** The queue's public widget settings: {id, display_name, welcome, state, open_now, closed_message, form}. */
  async function queueWidget(id) {
    const res = await fetch(`${API}/queues/${encodeURIComponent(String(id))}/widget`, {
      mode: 'cors', credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' },
    });
    if (!res.ok) throw await httpError(res);
    return res.json();
  }

  /** The pre-chat form fields of a widget answer, checked and normalised (unknown kinds: text). */
  function formFields(info) {
    const list = info && Array.isArray(info.form) ? info.form : [];
    const out = [];
    for (const f of list) {
      if (!f || typeof f.name !== 'string' || !f.name) continue;
      if (out.some((x) => x.name === f.name)) continue;
      const kind = ['text', 'email', 'textarea', 'select'].includes(f.kind) ? f.kind : 'text';
      const options = kind === 'select' && Array.isArray(f.options) ? f.options.filter((o) => typeof o === 'string') : [];
      out.push({ name: f.name, label: typeof f.label === 'string' && f.label ? f.label : f.name, kind, required: f.required === true, options });
    }
    return out;
  }

  // ------------------------------------------------------------ presence
  // One poll for every subscribed user (in batches of 50) every PRESENCE_EVERY ms; callbacks
  // hear the first answer and every change after it. Who is visible is the server's choice
  // (its public_presence setting); anyone else reads as {state: 'unknown'}.
  const PRESENCE_EVERY = 5000;
  const presenceSubs = new Map(); // address -> {callbacks: Set, last: string|null}
  let presenceTimer = null;

  async function pollPresence() {
    const users = [...presenceSubs.keys()];
    for (let i = 0; i < users.length; i += 50) {
      const batch = users.slice(i, i + 50);
      let answer;
      try {
        const res = await fetch(`${API}/presence?users=${encodeURIComponent(batch.join(','))}`, {
          mode: 'cors', credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' },
        });
        if (!res.ok) continue; // rate limited or refused: try again next round
        answer = (await res.json()).presence || {};
      } catch (_) { continue; } // offline: next round
      for (const user of batch) {
        const sub = presenceSubs.get(user);
        if (!sub) continue;
        const p = answer[user];
        const info = p && typeof p === 'object'
          ? { user, state: String(p.state), idle: p.idle === true, sametime: String(p.sametime || '') }
          : { user, state: 'unknown' };
        const key = JSON.stringify(info);
        if (key === sub.last) continue;
        sub.last = key;
        for (const cb of [...sub.callbacks]) {
          try { cb(info); } catch (e) { setTimeout(() => { throw e; }, 0); }
        }
      }
    }
  }

  function presenceLoop() {
    if (!presenceSubs.size) { presenceTimer = null; return; }
    pollPresence().finally(() => {
      presenceTimer = presenceSubs.size ? setTimeout(presenceLoop, PRESENCE_EVERY) : null;
    });
  }

  /** Follow a user's presence: cb({user, state, idle, sametime}) now and on each change. */
  function onPresence(user, callback) {
    const address = String(user || '').trim().toLowerCase();
    if (!address || typeof callback !== 'function') return function unsubscribe() {};
    let sub = presenceSubs.get(address);
    if (!sub) { sub = { callbacks: new Set(), last: null }; presenceSubs.set(address, sub); }
    const cb = (info) => callback(info);
    sub.callbacks.add(cb);
    if (sub.last !== null) { const known = JSON.parse(sub.last); setTimeout(() => cb(known), 0); }
    if (presenceTimer === null) presenceTimer = setTimeout(presenceLoop, 0);
    return function unsubscribe() {
      sub.callbacks.delete(cb);
      if (!sub.callbacks.size) presenceSubs.delete(address);
    };
  }

  // ------------------------------------------------------------ stylesheet
  let cssAdded = false;
  function addStylesheet() {
    if (cssAdded) return;
    cssAdded = true;
    const href = `${BASE}/sdk/switchboard.css`;
    for (const l of document.querySelectorAll('link[rel=stylesheet]')) if (l.href === href) return;
    const link = el('link', { rel: 'stylesheet', href, 'data-sbw': '' });
    (document.head || document.documentElement).appendChild(link);
  }

  // ------------------------------------------------------------ widgets
  const widgets = [];

  const STATE_TEXT = {
    open: '',
    busy: 'all experts busy \u2014 you can still wait',
    closed: 'closed',
    unknown: '',
    missing: 'unavailable',
  };

  function button(element, opts) {
    if (!element || typeof element.appendChild !== 'function') throw new TypeError('Switchboard.button: an element is required');
    const o = opts || {};
    if (!o.queue) throw new TypeError('Switchboard.button: {queue} is required');
    addStylesheet();
    const w = new Widget(element, { queue: String(o.queue), label: String(o.label || 'Chat with us') });
    widgets.push(w);
    return w.handle();
  }

  function refresh() {
    return Promise.all(widgets.map((w) => w.poll()));
  }

  function Widget(host, opts) {
    this.queue = opts.queue;
    this.label = opts.label;
    this.state = 'unknown';
    this.status = null;
    this.chat = null; // QueueChat
    this.token = null;
    this.guest = null; // User
    this.ws = null;
    this.wsReady = false;
    this.ended = false;
    this.failures = 0;
    this.refused = 0; // socket opens refused in a row while the server answered (see askServer)
    this.lastEvent = 0;
    this.messages = []; // {key, id, client_id, sender, mine, body, ts, node}
    this.typingSent = false;
    this.typingAt = 0;
    this.typingStopTimer = null;
    this.typingShowTimer = null;
    this.reconnectTimer = null;
    this.panel = null;
    this.hadExpert = false;
    this.info = null; // the queue's /widget answer
    this.fields = []; // rendered pre-chat form fields {name, label, kind, required, options, input}
    this.fieldsKey = '';
    this.offline = false; // the chat was taken as an offline message

    // The button: the element itself when it is a <button>, else a <button> inside it.
    if (host.tagName === 'BUTTON') {
      this.btn = host;
      this.btn.replaceChildren();
    } else {
      this.btn = el('button', { type: 'button' });
      host.appendChild(this.btn);
    }
    this.btn.classList.add('sbw-button');
    this.btn.setAttribute('data-testid', 'sbw-button');
    this.btnLabel = el('span', { class: 'sbw-button-label', text: this.label });
    this.btnState = el('span', { class: 'sbw-button-state', 'data-testid': 'sbw-button-state' });
    this.btnNote = el('span', { class: 'sbw-button-note', 'data-testid': 'sbw-closed-message' });
    this.btnNote.hidden = true;
    this.btn.append(this.btnLabel, this.btnState, this.btnNote);
    this.btn.addEventListener('click', () => this.toggle());
    this.paintButton();
    this.poll();
    this.pollTimer = setInterval(() => this.poll(), POLL_MS);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return;
      this.poll();
      this.reconnectNow();
    });
    // Back online: try at once rather than at the end of a long back-off.
    window.addEventListener('online', () => this.reconnectNow());
  }

  Widget.prototype.handle = function () {
    const w = this;
    return Object.freeze({
      refresh: () => w.poll(),
      open: () => w.open(),
      close: () => w.hidePanel(),
      get state() { return w.state; },
      get chat() { return w.chat ? Object.assign({}, w.chat) : null; },
    });
  };

  Widget.prototype.poll = async function () {
    const [st, info] = await Promise.allSettled([queueStatus(this.queue), queueWidget(this.queue)]);
    if (info.status === 'fulfilled' && info.value && typeof info.value === 'object') this.info = info.value;
    if (st.status === 'fulfilled') {
      const s = st.value;
      this.status = s;
      this.state = ['open', 'busy', 'closed'].includes(s && s.state) ? s.state : 'unknown';
    } else if (info.status === 'fulfilled' && ['open', 'busy', 'closed'].includes(this.info && this.info.state)) {
      this.state = this.info.state;
    } else {
      const e = st.reason;
      this.state = e && e.status === 404 ? 'missing' : (this.state === 'unknown' ? 'unknown' : this.state);
    }
    this.paintButton();
  };

  /** The queue's closed message (from /widget), or ''. */
  Widget.prototype.closedMessage = function () {
    const m = this.info && typeof this.info.closed_message === 'string' ? this.info.closed_message.trim() : '';
    return m;
  };

  Widget.prototype.inChat = function () { return !!this.chat && !this.ended; };

  Widget.prototype.paintButton = function () {
    const b = this.btn;
    b.setAttribute('data-state', this.state);
    const closed = this.state === 'closed' || this.state === 'missing';
    // A chat in progress stays reachable even when the queue closes meanwhile.
    b.disabled = closed && !this.inChat();
    let t = STATE_TEXT[this.state] || '';
    if (this.inChat()) t = 'chat in progress';
    setText(this.btnState, t);
    show(this.btnState, !!t);
    const note = closed && !this.inChat() && this.state === 'closed' ? this.closedMessage() : '';
    setText(this.btnNote, note);
    show(this.btnNote, !!note);
    if (note) b.title = note;
    else b.title = t ? `${this.label} (${t})` : this.label;
    b.setAttribute('aria-label', note ? `${this.label} (${t}): ${note}` : b.title);
  };

  Widget.prototype.toggle = function () {
    if (this.panel && !this.panel.root.hidden) this.hidePanel();
    else this.open();
  };

  Widget.prototype.open = function () {
    if (this.btn.disabled) return;
    if (!this.panel) this.buildPanel();
    this.panel.root.hidden = false;
    this.btn.setAttribute('aria-expanded', 'true');
    if (!this.chat) this.loadForm();
    else if (!this.ended) this.panel.composer.focus();
  };

  /** Fetches the queue's widget settings, then shows the pre-chat form with its fields. */
  Widget.prototype.loadForm = async function (focus = true) {
    const p = this.panel;
    const first = !this.formShown;
    if (first) { p.form.hidden = true; p.loading.hidden = false; }
    try {
      this.info = await queueWidget(this.queue);
    } catch (_) {
      // Show the form with what we know: the server checks the answers anyway.
    }
    p.loading.hidden = true;
    if (this.chat) return; // started meanwhile
    this.renderForm();
    p.form.hidden = false;
    this.formShown = true;
    if (first && focus && !p.root.hidden) p.name.focus();
  };

  /** (Re)builds the queue's own fields, keeping what the visitor typed into fields that stay. */
  Widget.prototype.renderForm = function () {
    const p = this.panel;
    const info = this.info || {};
    const welcome = typeof info.welcome === 'string' ? info.welcome.trim() : '';
    setText(p.intro, welcome);
    show(p.intro, !!welcome);
    if (typeof info.display_name === 'string' && info.display_name && !this.chat) setText(p.title, info.display_name);
    const closed = info.state === 'closed' || info.open_now === false;
    const cm = closed ? (this.closedMessage() || 'This chat is closed right now.') : '';
    setText(p.closedNote, cm);
    show(p.closedNote, !!cm);
    const fields = formFields(info);
    const key = JSON.stringify(fields);
    if (key === this.fieldsKey) return;
    const old = new Map(this.fields.map((f) => [f.name, f]));
    const rows = [];
    this.fields = fields.map((f, i) => {
      const fid = `${p.id}-f${i}`;
      let input;
      const attrs = { id: fid, class: 'sbw-input', name: `sbw-${f.name}`, 'data-testid': 'sbw-field', 'data-name': f.name, required: f.required, 'aria-required': f.required ? 'true' : null };
      if (f.kind === 'textarea') {
        input = el('textarea', Object.assign(attrs, { rows: '2', maxlength: '500' }));
      } else if (f.kind === 'select') {
        input = el('select', attrs, el('option', { value: '', text: f.required ? 'Please choose\u2026' : '\u2014' }),
          ...f.options.map((o) => el('option', { value: o, text: o })));
      } else {
        input = el('input', Object.assign(attrs, { type: f.kind === 'email' ? 'email' : 'text', maxlength: '500', autocomplete: f.kind === 'email' ? 'email' : 'off' }));
      }
      const prev = old.get(f.name);
      if (prev && prev.kind === f.kind && prev.input.value) {
        if (f.kind !== 'select' || f.options.includes(prev.input.value)) input.value = prev.input.value;
      }
      input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
      const label = el('label', { for: fid, 'data-testid': 'sbw-field-label', 'data-name': f.name }, f.label,
        f.required ? el('span', { class: 'sbw-req', 'aria-hidden': 'true', text: ' *' }) : null);
      rows.push(label, input);
      return Object.assign({}, f, { input });
    });
    p.fields.replaceChildren(...rows);
    show(p.fields, rows.length > 0);
    this.fieldsKey = key;
  };

  Widget.prototype.hidePanel = function () {
    if (!this.panel) return;
    this.panel.root.hidden = true;
    this.btn.setAttribute('aria-expanded', 'false');
    this.paintButton();
  };

  // ------------------------------------------------------------ panel
  Widget.prototype.buildPanel = function () {
    const p = {};
    const id = randomId();
    p.title = el('div', { class: 'sbw-title', id: `${id}-t`, text: this.label });
    p.closeBtn = el('button', { type: 'button', class: 'sbw-x', 'aria-label': 'Minimize chat', title: 'Minimize', text: '\u2013' });
    p.closeBtn.addEventListener('click', () => this.hidePanel());

    // Pre-chat form.
    p.name = el('input', { type: 'text', class: 'sbw-input', 'data-testid': 'sbw-name', id: `${id}-n`, maxlength: '100', autocomplete: 'name', required: true });
    p.email = el('input', { type: 'email', class: 'sbw-input', 'data-testid': 'sbw-email', id: `${id}-e`, maxlength: '200', autocomplete: 'email' });
    p.question = el('textarea', { class: 'sbw-input', 'data-testid': 'sbw-question', id: `${id}-q`, rows: '3', maxlength: '2000', required: true });
    p.formError = el('p', { class: 'sbw-error', 'data-testid': 'sbw-error', role: 'alert' });
    p.formError.hidden = true;
    p.id = id;
    p.intro = el('p', { class: 'sbw-intro', 'data-testid': 'sbw-intro' });
    p.intro.hidden = true;
    p.closedNote = el('p', { class: 'sbw-closed', 'data-testid': 'sbw-form-closed' });
    p.closedNote.hidden = true;
    p.fields = el('div', { class: 'sbw-fields', 'data-testid': 'sbw-fields' });
    p.fields.hidden = true;
    p.loading = el('p', { class: 'sbw-loading', 'data-testid': 'sbw-loading', text: 'Loading\u2026' });
    p.loading.hidden = true;
    p.start = el('button', { type: 'submit', class: 'sbw-primary', 'data-testid': 'sbw-start', text: 'Start chat' });
    // novalidate: the submit handler checks the fields itself (checkValidity on each, which
    // honours their required/type attributes) so it can say what is missing in the panel too.
    p.form = el('form', { class: 'sbw-form', novalidate: true, 'data-testid': 'sbw-form' },
      p.intro, p.closedNote,
      el('label', { for: `${id}-n`, text: 'Your name' }), p.name,
      el('label', { for: `${id}-e`, text: 'Email (optional)' }), p.email,
      p.fields,
      el('label', { for: `${id}-q`, text: 'How can we help?' }), p.question,
      p.formError, p.start);
    p.form.addEventListener('submit', (e) => { e.preventDefault(); this.startChat(); });

    // Chat.
    p.status = el('div', { class: 'sbw-status', 'data-testid': 'sbw-status', role: 'status' });
    p.welcome = el('div', { class: 'sbw-welcome', 'data-testid': 'sbw-welcome' });
    p.position = el('div', { class: 'sbw-position', 'data-testid': 'sbw-position' });
    p.wait = el('div', { class: 'sbw-wait', 'data-testid': 'sbw-wait' });
    p.line = el('div', { class: 'sbw-line' }, p.welcome, p.position, p.wait);
    p.offline = el('div', { class: 'sbw-offline', 'data-testid': 'sbw-offline' });
    p.offline.hidden = true;
    p.messages = el('div', { class: 'sbw-messages', 'data-testid': 'sbw-messages', 'aria-live': 'polite' });
    p.typing = el('div', { class: 'sbw-typing', 'data-testid': 'sbw-typing', 'aria-live': 'polite' });
    p.composer = el('textarea', { class: 'sbw-input sbw-composer', 'data-testid': 'sbw-composer', rows: '2', placeholder: 'Write a message', 'aria-label': 'Message' });
    p.send = el('button', { type: 'submit', class: 'sbw-primary', 'data-testid': 'sbw-send', text: 'Send' });
    p.composerForm = el('form', { class: 'sbw-compose' }, p.composer, p.send);
    p.composerForm.addEventListener('submit', (e) => { e.preventDefault(); this.sendFromComposer(); });
    p.composer.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.sendFromComposer(); }
    });
    p.composer.addEventListener('input', () => this.onComposerInput());
    p.end = el('button', { type: 'button', class: 'sbw-secondary', 'data-testid': 'sbw-end', text: 'End chat' });
    p.end.addEventListener('click', () => this.endChat());
    p.transcript = el('button', { type: 'button', class: 'sbw-secondary', 'data-testid': 'sbw-transcript', text: 'Download transcript' });
    p.transcript.addEventListener('click', () => this.downloadTranscript());
    p.actions = el('div', { class: 'sbw-actions' }, p.end, p.transcript);

    // Once the chat is over: the way to a new one (a new guest: the old one's rights are gone).
    p.endedNote = el('p', { class: 'sbw-ended-note', 'data-testid': 'sbw-ended-note', text: 'Need more help? Start a new chat.' });
    p.newChat = el('button', { type: 'button', class: 'sbw-primary', 'data-testid': 'sbw-new-chat', text: 'Start a new chat' });
    p.newChat.addEventListener('click', () => this.startOver());
    p.ended = el('div', { class: 'sbw-ended', 'data-testid': 'sbw-ended' }, p.endedNote, p.newChat);
    p.ended.hidden = true;

    // Survey.
    p.stars = [];
    const starRow = el('div', { class: 'sbw-stars', role: 'radiogroup', 'aria-label': 'Rating' });
    for (let i = 1; i <= 5; i++) {
      const s = el('button', { type: 'button', class: 'sbw-star', 'data-testid': 'sbw-star', 'data-value': String(i), role: 'radio', 'aria-checked': 'false', 'aria-label': `${i} star${i > 1 ? 's' : ''}`, text: '\u2605' });
      s.addEventListener('click', () => this.rate(i));
      p.stars.push(s);
      starRow.appendChild(s);
    }
    p.surveyComment = el('textarea', { class: 'sbw-input', 'data-testid': 'sbw-survey-comment', rows: '2', maxlength: '2000', placeholder: 'Anything to add? (optional)', 'aria-label': 'Comment' });
    p.surveySubmit = el('button', { type: 'submit', class: 'sbw-primary', 'data-testid': 'sbw-survey-submit', text: 'Send feedback' });
    p.surveyForm = el('form', { class: 'sbw-survey-form' },
      el('p', { class: 'sbw-survey-q', text: 'How was your chat?' }), starRow, p.surveyComment, p.surveySubmit);
    p.surveyForm.addEventListener('submit', (e) => { e.preventDefault(); this.submitSurvey(); });
    p.thanks = el('p', { class: 'sbw-thanks', 'data-testid': 'sbw-survey-thanks', text: 'Thanks for your feedback!' });
    p.thanks.hidden = true;
    p.survey = el('div', { class: 'sbw-survey', 'data-testid': 'sbw-survey' }, p.surveyForm, p.thanks);
    p.survey.hidden = true;

    p.chatView = el('div', { class: 'sbw-chat' }, p.status, p.line, p.offline, p.messages, p.typing, p.composerForm, p.ended, p.actions, p.survey);
    p.chatView.hidden = true;

    p.root = el('div', { class: 'sbw-root sbw-panel', role: 'dialog', 'aria-labelledby': `${id}-t`, 'data-testid': 'sbw-panel' },
      el('div', { class: 'sbw-head' }, p.title, p.closeBtn),
      el('div', { class: 'sbw-body' }, p.loading, p.form, p.chatView));
    p.root.hidden = true;
    this.panel = p;
    (document.body || document.documentElement).appendChild(p.root);
  };

  Widget.prototype.startChat = async function () {
    const p = this.panel;
    const name = p.name.value.trim();
    const email = p.email.value.trim();
    const question = p.question.value.trim();
    const fail = (m) => {
      setText(p.formError, m);
      p.formError.hidden = false;
      try { p.formError.scrollIntoView({ block: 'nearest' }); } catch (_) { /* old browsers */ }
    };
    if (!name) { fail('Please enter your name.'); p.name.focus(); return; }
    if (!question) { fail('Please tell us what you need help with.'); p.question.focus(); return; }
    if (email && !/^[^\s@]+@[^\s@]+$/.test(email)) { fail('That email address does not look right.'); p.email.focus(); return; }
    const answers = {};
    for (const f of this.fields) {
      const input = f.input;
      const v = f.kind === 'select' ? input.value : input.value.trim();
      if (f.kind !== 'select' && v === '' && input.value !== '') input.value = ''; // blanks are no answer
      if (!input.checkValidity()) {
        input.setAttribute('aria-invalid', 'true');
        fail(input.validity.valueMissing ? `Please fill in \u201c${f.label}\u201d.` : `\u201c${f.label}\u201d: ${input.validationMessage || 'please check this field.'}`);
        input.reportValidity();
        input.focus();
        return;
      }
      if (v !== '') answers[f.name] = v;
    }
    p.formError.hidden = true;
    p.start.disabled = true;
    setText(p.start, 'Starting\u2026');
    try {
      let res;
      try {
        res = await fetch(`${API}/queues/${encodeURIComponent(this.queue)}/guest`, {
          method: 'POST', mode: 'cors', credentials: 'omit', cache: 'no-store',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ name, email, question, answers }),
        });
      } catch (_) {
        throw new Error('Cannot reach the chat service. Please try again.');
      }
      if (!res.ok) {
        const e = await httpError(res);
        if (e.status === 400) {
          // The answers were refused (the form may have changed meanwhile): show the fields
          // as they are now, keep what was typed, and mark the field the message names.
          try { this.info = await queueWidget(this.queue); this.renderForm(); } catch (_) { /* keep the form */ }
          const named = [...this.fields].sort((a, b) => b.label.length - a.label.length).find((f) => e.message.startsWith(f.label) || new RegExp(`\\b${f.name}\\b`).test(e.message));
          if (named) named.input.setAttribute('aria-invalid', 'true');
        } else if (e.status === 403) {
          this.poll(); // closed meanwhile: the button follows
        }
        // The queue exists but the chat could not be placed (e.g. nobody signed in).
        if (e.status === 404 && this.state !== 'missing' && e.message !== 'queue not found') {
          e.message = 'Sorry, no expert is available right now. Please try again later.';
          this.poll();
        }
        throw e;
      }
      const r = await res.json();
      if (!r || typeof r.token !== 'string' || !r.chat) throw new Error('Unexpected answer from the chat service.');
      this.token = r.token;
      this.guest = r.guest || null;
      this.question = question;
      this.guestName = name;
      this.ended = false;
      p.form.hidden = true;
      p.chatView.hidden = false;
      this.applyChat(r.chat);
      this.connect();
      p.composer.focus();
    } catch (e) {
      fail(e.message || 'Could not start the chat.');
    } finally {
      p.start.disabled = false;
      setText(p.start, 'Start chat');
      this.paintButton();
    }
  };

  // ------------------------------------------------------------ WebSocket
  Widget.prototype.wsUrl = function () {
    let u = `${BASE.replace(/^http/i, 'ws')}/api/v1/ws?token=${encodeURIComponent(this.token)}&presence=none`;
    if (this.lastEvent > 0) u += `&resume_from=${this.lastEvent}`;
    return u;
  };

  Widget.prototype.connect = function () {
    if (!this.token || this.ended) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    let ws;
    try { ws = new WebSocket(this.wsUrl()); } catch (_) { this.scheduleReconnect(); return; }
    this.ws = ws;
    this.wsReady = false;
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (m) => {
      if (ws !== this.ws) return;
      let f;
      try { f = JSON.parse(m.data); } catch (_) { return; }
      if (f && typeof f === 'object') this.onFrame(f);
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.wsReady = false;
      this.paintComposer();
      if (this.ended) return;
      if (e && e.code === 1000 && e.reason === 'session ended') {
        // The server ended this guest's session: its chat is over (the chat's last state,
        // when it was sent, came just before and finished the chat already).
        this.chatOver();
        return;
      }
      this.failures++;
      // Never opened: the network is down, or the server refused the socket (a page is not
      // told which: a 403 for a guest whose chat is over looks like any failure). Ask.
      if (!opened) this.checkRefused();
      else this.scheduleReconnect();
    };
    ws.onerror = () => { /* a close event follows */ };
  };

  Widget.prototype.scheduleReconnect = function (delay) {
    if (this.reconnectTimer || this.ended || !this.token) return;
    if (delay === undefined && this.failures > 12) {
      setText(this.panel.status, 'The connection to the chat service was lost.');
      setText(this.panel.typing, '');
      return;
    }
    const d = delay !== undefined ? delay : (BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)] || BACKOFF_MS[0]);
    setText(this.panel.typing, 'Reconnecting\u2026');
    this.reconnectTimer = setTimeout(() => { this.reconnectTimer = null; this.connect(); }, d);
  };

  /** Connect now if the chat is open and no socket is (about to be) open: back online, tab shown. */
  Widget.prototype.reconnectNow = function () {
    if (!this.chat || !this.token || this.ended || this.ws || this.checking || this.finishing) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.failures = 0;
    this.connect();
  };

  /**
   * What the server says about this chat now, without a socket:
   *   {verdict: 'final', chat}  the chat is over, and this is its last state;
   *   {verdict: 'open', chat}   the chat goes on (the socket failed for another reason);
   *   {verdict: 'gone'}         the chat is over (its last state is not known);
   *   {verdict: 'answers'}      the server answers, but could not tell about the chat;
   *   {verdict: 'unreachable'}  no answer: the network or the server is down.
   * The chat itself is asked for (GET /queue-chats/{id}, with the guest's token) only from a
   * page of the server's own origin: that call is not open to other origins, which learn
   * only whether the server answers (the queue's public status).
   */
  Widget.prototype.askServer = async function () {
    const id = this.chat && this.chat.chat;
    if (SAME_ORIGIN && id && this.token) {
      try {
        const res = await fetch(`${API}/queue-chats/${encodeURIComponent(String(id))}`, {
          credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json', Authorization: `Bearer ${this.token}` },
        });
        if (res.ok) {
          const c = await res.json().catch(() => null);
          if (c && c.chat === id && typeof c.state === 'string') {
            return { verdict: FINAL_STATES.includes(c.state) ? 'final' : 'open', chat: c };
          }
        } else if (res.status === 401 || res.status === 403) {
          return { verdict: 'gone' }; // the guest's session is over
        } else if (res.status === 404 && !this.offline) {
          return { verdict: 'gone' }; // only open chats are found (an offline message never is)
        }
        return { verdict: 'answers' };
      } catch (_) {
        return { verdict: 'unreachable' };
      }
    }
    try {
      await queueStatus(this.queue);
      return { verdict: 'answers' };
    } catch (e) {
      return { verdict: e && typeof e.status === 'number' ? 'answers' : 'unreachable' };
    }
  };

  /** A socket closed before it opened: the network, or the end of this chat? */
  Widget.prototype.checkRefused = async function () {
    if (this.checking) return;
    this.checking = true;
    const token = this.token;
    let a;
    try { a = await this.askServer(); } finally { this.checking = false; }
    if (this.ended || token !== this.token) return; // over, or a new chat, meanwhile
    if (a.verdict === 'final') { this.applyChat(a.chat); return; }
    if (a.verdict === 'gone') { this.chatOver(); return; }
    if (a.verdict === 'open') {
      this.refused = 0;
      this.applyChat(a.chat);
      this.scheduleReconnect();
      return;
    }
    if (a.verdict === 'unreachable') {
      this.refused = 0;
      this.scheduleReconnect();
      return;
    }
    // The server answers, yet refused the socket: a few times in a row (not a restart's
    // moment, not one overloaded instant) means this guest may not connect any more.
    this.refused++;
    if (this.refused >= REFUSALS_MEAN_ENDED) { this.chatOver(); return; }
    this.scheduleReconnect(500 * this.refused);
  };

  /**
   * The server says this guest's chat is over (closed its session, refuses its socket or
   * its messages): ask for its last state if this page may, then end it here.
   */
  Widget.prototype.chatOver = async function () {
    if (this.ended || this.finishing) return;
    this.finishing = true;
    const token = this.token;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    let a = { verdict: 'gone' };
    try { if (SAME_ORIGIN) a = await this.askServer(); } finally { this.finishing = false; }
    if (this.ended || token !== this.token) return;
    if (a.verdict === 'final') { this.applyChat(a.chat); return; }
    this.chat.state = 'ended';
    this.finish('ended');
  };

  Widget.prototype.sendFrame = function (obj) {
    if (!this.ws || !this.wsReady || this.ws.readyState !== WebSocket.OPEN) return false;
    try { this.ws.send(JSON.stringify(obj)); return true; } catch (_) { return false; }
  };

  Widget.prototype.onFrame = function (f) {
    switch (f.type) {
      case 'ready':
        this.wsReady = true;
        this.failures = 0;
        this.refused = 0;
        if (f.user && f.user.address) this.guest = f.user;
        if (!this.lastEvent && typeof f.last_event === 'number') this.lastEvent = f.last_event;
        setText(this.panel.typing, '');
        // Resend what was never acknowledged (same client_id: the server makes it idempotent).
        for (const m of this.messages) if (m.pending) this.sendFrame({ type: 'send', conversation: this.chat.conversation, body: m.body, client_id: m.client_id });
        this.paintComposer();
        break;
      case 'queue_chat':
        if (this.chat && f.chat === this.chat.chat) this.applyChat(f);
        break;
      case 'event':
        if (f.event) this.onEvent(f.event, false);
        break;
      case 'ack':
        if (f.event) this.onEvent(f.event, true, f.client_id);
        break;
      case 'typing':
        this.onTyping(f);
        break;
      case 'error':
        this.onError(f);
        break;
      case 'closing':
        setText(this.panel.typing, 'Reconnecting\u2026');
        break;
      default:
        break;
    }
  };

  Widget.prototype.isMe = function (addr) {
    return !!(this.guest && addr && String(addr).toLowerCase() === String(this.guest.address || '').toLowerCase());
  };

  /**
   * The expert as the visitor may see them: their display name when the server gives one
   * (`expert_name`), else a neutral word. Never their address (`expert`): a website visitor
   * is not told an employee's e-mail address.
   */
  Widget.prototype.expertName = function (fallback) {
    const n = this.chat && typeof this.chat.expert_name === 'string' ? this.chat.expert_name.trim() : '';
    return n ? U(n) : fallback;
  };

  Widget.prototype.applyChat = function (c) {
    const p = this.panel;
    const prev = this.chat;
    this.chat = Object.assign({}, prev || {}, c);
    delete this.chat.type;
    const st = this.chat.state;
    if (st === 'waiting' || st === 'assigned' || st === 'offline') this.lastOpenState = st;
    if (this.chat.queue_name) setText(p.title, String(this.chat.queue_name));
    p.chatView.setAttribute('data-state', String(st || ''));
    if (st !== 'offline') show(p.offline, false);
    if (st === 'offline') {
      // Taken as an offline message: nobody answers now, but what the visitor writes in the
      // conversation is kept for the queue's experts. No place in line, no survey.
      this.offline = true;
      setText(p.status, 'Leave us a message');
      const msg = typeof this.chat.message === 'string' && this.chat.message
        ? this.chat.message
        : 'Nobody can answer right now. Leave a message and we will get back to you.';
      setText(p.offline, msg);
      show(p.offline, true);
      show(p.line, false);
      setText(p.position, '');
      setText(p.wait, '');
    } else if (st === 'waiting') {
      setText(p.status, 'Waiting for an expert\u2026');
      setText(p.welcome, typeof this.chat.message === 'string' ? this.chat.message : '');
      show(p.welcome, !!this.chat.message);
      const pos = this.chat.position;
      setText(p.position, typeof pos === 'number' ? (pos === 1 ? 'You are next in line.' : `You are number ${pos} in line.`) : '');
      const wt = fmtWait(this.chat.estimated_wait_s);
      setText(p.wait, wt ? `Estimated wait: ${wt}` : '');
      p.position.setAttribute('data-position', typeof pos === 'number' ? String(pos) : '');
      p.wait.setAttribute('data-seconds', typeof this.chat.estimated_wait_s === 'number' ? String(this.chat.estimated_wait_s) : '');
      show(p.line, true);
      if (prev && prev.state === 'assigned') this.notice('You are being transferred. Please wait\u2026');
    } else if (st === 'assigned') {
      const who = this.expertName('an expert');
      setLine(p.status, ['Connected to ', who]);
      show(p.line, false);
      if (this.hadExpert && (!prev || prev.state !== 'assigned' || prev.expert !== this.chat.expert)) {
        this.notice(['You are now chatting with ', who, '.']);
      }
      this.hadExpert = true;
    } else if (st === 'closed' || st === 'abandoned' || st === 'overflowed' || st === 'wrap_up') {
      // wrap_up: the expert is wrapping up; for the visitor the chat is over.
      this.finish(st);
    }
    this.paintComposer();
    this.paintButton();
  };

  /**
   * The chat is over: `st` is its last state (closed, abandoned, overflowed, wrap_up), or
   * 'ended' when the server did not say which (then the last state known here tells).
   */
  Widget.prototype.finish = function (st) {
    const p = this.panel;
    if (this.ended) return;
    this.ended = true;
    const msg = typeof this.chat.message === 'string' && this.chat.message ? this.chat.message : '';
    const was = this.lastOpenState || '';
    if (st === 'overflowed') setText(p.status, msg || 'Sorry, no expert could take your chat. Please try again later.');
    else if (st === 'abandoned') setText(p.status, 'You left the line.');
    else if (st === 'ended' && was === 'waiting') setText(p.status, 'This chat has ended: it left the line while you were away.');
    else if (st === 'ended' && was === 'offline') setText(p.status, 'This conversation has ended.');
    else setText(p.status, 'The chat has ended.');
    // What was never sent will not be now.
    for (const m of this.messages) {
      if (!m.pending) continue;
      m.pending = false;
      m.node.removeAttribute('data-pending');
      m.node.classList.add('sbw-failed');
      m.node.appendChild(el('div', { class: 'sbw-error', text: 'Not sent: the chat has ended.' }));
    }
    show(p.line, false);
    if (this.offline) show(p.offline, true); // keep telling what happens to the messages
    setText(p.typing, '');
    p.chatView.setAttribute('data-state', st);
    this.stopTyping();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.ws) { const w = this.ws; this.ws = null; try { w.close(1000, 'chat ended'); } catch (_) { /* ignore */ } }
    this.wsReady = false;
    this.failures = 0;
    this.refused = 0;
    // A survey only for a chat that reached an expert: not for an offline message (nobody
    // chatted), nor for a chat that left the line or overflowed before anyone answered.
    if (!this.offline && this.hadExpert) p.survey.hidden = false;
    p.ended.hidden = false;
    this.paintComposer();
    this.paintButton();
  };

  /** After the end: back to the pre-chat form for a new chat (a new guest), what the visitor said about themselves kept. */
  Widget.prototype.startOver = function () {
    const p = this.panel;
    if (!p || !this.ended) return;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.typingStopTimer);
    clearTimeout(this.typingShowTimer);
    this.reconnectTimer = null;
    if (this.ws) { const w = this.ws; this.ws = null; try { w.close(1000, 'new chat'); } catch (_) { /* ignore */ } }
    Object.assign(this, {
      chat: null, token: null, guest: null, wsReady: false, ended: false, failures: 0, refused: 0, lastEvent: 0,
      messages: [], typingSent: false, hadExpert: false, offline: false, lastOpenState: '', rating: 0, question: '',
    });
    p.messages.replaceChildren();
    setText(p.status, '');
    setText(p.typing, '');
    setText(p.position, '');
    setText(p.wait, '');
    setText(p.welcome, '');
    p.chatView.removeAttribute('data-state');
    p.chatView.hidden = true;
    show(p.offline, false);
    p.ended.hidden = true;
    p.survey.hidden = true;
    p.surveyForm.hidden = false;
    p.thanks.hidden = true;
    p.surveyComment.value = '';
    this.rate(0);
    p.end.disabled = false;
    p.question.value = '';
    p.formError.hidden = true;
    setText(p.title, (this.info && typeof this.info.display_name === 'string' && this.info.display_name) || this.label);
    this.paintComposer();
    this.paintButton();
    p.form.hidden = false;
    this.loadForm(false).then(() => { if (!this.chat && !p.root.hidden) p.question.focus(); });
    p.question.focus();
  };

  Widget.prototype.paintComposer = function () {
    const p = this.panel;
    if (!p) return;
    const open = !!this.chat && !this.ended;
    p.composerForm.hidden = !open;
    // An offline message has no chat to end: the visitor just leaves messages.
    p.end.hidden = !open || (this.offline && this.chat.state === 'offline');
    p.send.disabled = !open;
    p.transcript.disabled = this.messages.length === 0;
  };

  Widget.prototype.onEvent = function (ev, isAck, clientId) {
    if (!ev || typeof ev.id !== 'number') return;
    if (ev.id > this.lastEvent) this.lastEvent = ev.id;
    if (!this.chat || ev.conversation !== this.chat.conversation) return;
    if (ev.kind !== 'message') return;
    if (this.messages.some((m) => m.id === ev.id)) return;
    const cid = clientId || ev.client_id;
    const mine = this.isMe(ev.sender) || (isAck && !!cid);
    let m = cid && mine ? this.messages.find((x) => x.pending && x.client_id === cid) : null;
    if (m) {
      m.pending = false;
      m.id = ev.id;
      m.ts = ev.ts || m.ts;
      m.node.setAttribute('data-id', String(ev.id));
      m.node.removeAttribute('data-pending');
    } else {
      m = { id: ev.id, client_id: cid || null, sender: String(ev.sender || ''), mine, body: String(ev.body || ''), ts: ev.ts || Date.now(), pending: false };
      this.addMessageNode(m);
    }
    if (!mine && ev.sender) this.clearTyping();
    this.paintComposer();
  };

  /**
   * Is `addr` the expert the chat is assigned to now? Only their messages and typing carry
   * the expert's name: after a transfer, or from a colleague invited into the chat, another
   * expert's words are not put in this one's name.
   */
  Widget.prototype.isAssignedExpert = function (addr) {
    const cur = this.chat && typeof this.chat.expert === 'string' ? this.chat.expert.toLowerCase() : '';
    return !!cur && String(addr || '').toLowerCase() === cur;
  };

  Widget.prototype.senderLabel = function (m) {
    if (m.mine) return 'You';
    if (!m.sender) return '';
    if (m.label) return m.label; // named when it arrived (the transcript keeps that name)
    const who = this.isAssignedExpert(m.sender) ? this.expertName('Expert') : 'Expert';
    return typeof who === 'string' ? who : who.u;
  };

  Widget.prototype.addMessageNode = function (m) {
    const p = this.panel;
    const system = !m.mine && !m.sender;
    const body = el('div', { class: 'sbw-message-body', 'data-testid': 'sbw-message-body', text: m.body });
    if (!m.mine && m.sender && !m.label) m.label = this.senderLabel(m);
    const meta = el('div', { class: 'sbw-meta' },
      el('span', { class: 'sbw-sender', text: this.senderLabel(m) }), el('span', { class: 'sbw-time', text: fmtClock(m.ts) }));
    const node = el('div', {
      class: `sbw-message ${system ? 'sbw-system' : (m.mine ? 'sbw-mine' : 'sbw-theirs')}`,
      'data-testid': 'sbw-message',
      'data-mine': m.mine ? 'true' : 'false',
    }, system ? null : meta, body);
    if (m.id) node.setAttribute('data-id', String(m.id));
    if (m.pending) node.setAttribute('data-pending', 'true');
    m.node = node;
    this.messages.push(m);
    const nearBottom = p.messages.scrollHeight - p.messages.scrollTop - p.messages.clientHeight < 60;
    p.messages.appendChild(node);
    if (nearBottom || m.mine) p.messages.scrollTop = p.messages.scrollHeight;
  };

  /** A line (see U()) between the messages. */
  Widget.prototype.notice = function (line) {
    this.panel.messages.appendChild(el('div', { class: 'sbw-notice', 'data-testid': 'sbw-notice' }, ...lineNodes(line)));
  };

  Widget.prototype.sendFromComposer = function () {
    const p = this.panel;
    if (!this.chat || this.ended) return;
    const body = p.composer.value;
    if (!body.trim()) return;
    const m = { id: null, client_id: randomId(), sender: this.guest ? this.guest.address : '', mine: true, body, ts: Date.now(), pending: true };
    this.addMessageNode(m);
    this.sendFrame({ type: 'send', conversation: this.chat.conversation, body, client_id: m.client_id });
    p.composer.value = '';
    this.stopTyping();
    this.paintComposer();
    p.composer.focus();
  };

  Widget.prototype.onError = function (f) {
    const ref = typeof f.ref === 'string' ? f.ref : '';
    const m = ref ? this.messages.find((x) => x.pending && x.client_id === ref) : null;
    const text = String(f.message || f.code || 'refused');
    if (f.code === 'forbidden' && this.chat && !this.ended) {
      // A guest may write in (and end) its own chat only while it is open: "this chat has
      // ended". (Its other limits have codes of their own: limit_reached, quota_exceeded.)
      this.chatOver();
      return;
    }
    if (m) {
      if (f.code === 'rate_limited' || f.code === 'unavailable' || f.code === 'internal') return; // resent on reconnect
      m.pending = false;
      m.node.removeAttribute('data-pending');
      m.node.classList.add('sbw-failed');
      m.node.appendChild(el('div', { class: 'sbw-error', text: `Not sent: ${text}` }));
      return;
    }
    this.notice(text);
  };

  // ------------------------------------------------------------ typing
  Widget.prototype.onComposerInput = function () {
    if (!this.chat || this.ended) return;
    if (!this.panel.composer.value.trim()) { this.stopTyping(); return; }
    const now = Date.now();
    if (!this.typingSent || now - this.typingAt > TYPING_REPEAT_MS) {
      if (this.sendFrame({ type: 'typing', conversation: this.chat.conversation, active: true })) {
        this.typingSent = true;
        this.typingAt = now;
      }
    }
    clearTimeout(this.typingStopTimer);
    this.typingStopTimer = setTimeout(() => this.stopTyping(), TYPING_STOP_MS);
  };

  Widget.prototype.stopTyping = function () {
    clearTimeout(this.typingStopTimer);
    if (this.typingSent && this.chat) this.sendFrame({ type: 'typing', conversation: this.chat.conversation, active: false });
    this.typingSent = false;
  };

  Widget.prototype.onTyping = function (f) {
    if (!this.chat || f.conversation !== this.chat.conversation || this.isMe(f.user)) return;
    clearTimeout(this.typingShowTimer);
    if (f.active) {
      setLine(this.panel.typing, [this.isAssignedExpert(f.user) ? this.expertName('The expert') : 'An expert', ' is typing\u2026']);
      this.typingShowTimer = setTimeout(() => this.clearTyping(), TYPING_SHOW_MS);
    } else {
      this.clearTyping();
    }
  };

  Widget.prototype.clearTyping = function () {
    clearTimeout(this.typingShowTimer);
    if (this.wsReady || this.ended) setText(this.panel.typing, '');
  };

  // ------------------------------------------------------------ end, transcript, survey
  Widget.prototype.endChat = function () {
    if (!this.chat || this.ended) return;
    if (!this.sendFrame({ type: 'end_chat', chat: this.chat.chat })) {
      this.notice('Not connected; please try again in a moment.');
      return;
    }
    this.panel.end.disabled = true;
    setTimeout(() => { if (this.panel) this.panel.end.disabled = false; }, 3000);
  };

  Widget.prototype.transcriptText = function () {
    const lines = [];
    const c = this.chat || {};
    lines.push(`Chat transcript \u2014 ${c.queue_name || this.queue}`);
    if (this.question) lines.push(`Question: ${this.question}`);
    lines.push('');
    for (const m of this.messages) {
      const when = new Date(m.ts || Date.now()).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
      const who = m.mine ? (this.guestName || 'You') : (m.sender ? this.senderLabel(m) : 'Notice');
      lines.push(`[${when}] ${who}: ${m.body}`);
    }
    return lines.join('\n') + '\n';
  };

  Widget.prototype.downloadTranscript = function () {
    const blob = new Blob([this.transcriptText()], { type: 'text/plain;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `chat-transcript-${(this.chat && this.chat.chat) || 'chat'}.txt`, class: 'sbw-hidden-link' });
    (document.body || document.documentElement).appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
  };

  Widget.prototype.rate = function (n) {
    this.rating = n;
    this.panel.stars.forEach((s, i) => {
      s.classList.toggle('sbw-on', i < n);
      s.setAttribute('aria-checked', i + 1 === n ? 'true' : 'false');
    });
  };

  Widget.prototype.submitSurvey = function () {
    const p = this.panel;
    const answer = {
      queue: this.queue,
      chat: this.chat ? this.chat.chat : null,
      rating: this.rating || null,
      comment: p.surveyComment.value.trim(),
      at: Date.now(),
    };
    window.__sbSurvey = answer;
    if (answer.chat && answer.rating && this.token) {
      // Best effort: the thanks shows whatever the network does.
      fetch(`${API}/queue-chats/${encodeURIComponent(String(answer.chat))}/survey`, {
        method: 'POST',
        mode: 'cors',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.token}` },
        body: JSON.stringify({ rating: answer.rating, comment: answer.comment }),
      }).then((r) => { answer.saved = r.ok; }, () => { answer.saved = false; });
    }
    p.surveyForm.hidden = true;
    p.thanks.hidden = false;
    try { p.root.dispatchEvent(new CustomEvent('switchboard:survey', { detail: answer, bubbles: true })); } catch (_) { /* old browsers */ }
  };

  window.Switchboard = Object.freeze({
    __sbw: true,
    version: '1',
    baseUrl: BASE,
    queueStatus,
    expertsReady,
    onPresence,
    button,
    refresh,
  });
})();
