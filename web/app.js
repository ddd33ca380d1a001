// Switchboard web client. Vanilla ES2020, no build step, no external resources.
//
// Security rule for this file: every string that comes from the server or from a user
// (chat text, names, notes, titles, error messages) is put into the page with
// textContent / createTextNode / setAttribute only. Never innerHTML, never insertAdjacentHTML.
'use strict';

(() => {
  const API = '/api/v1';
  const PAGE_SIZE = 50;
  const IDLE_AFTER_MS = 5 * 60 * 1000;
  const TYPING_REPEAT_MS = 3000; // re-send "typing active" at most this often
  const TYPING_STOP_MS = 4000; // no keystroke for this long: "typing stopped"
  const TYPING_SHOW_MS = 7000; // show someone as typing this long after their last frame
  const PING_EVERY_MS = 25000;
  const PONG_TIMEOUT_MS = 10000;
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const STATES = ['available', 'busy', 'dnd', 'away', 'offline'];
  const STATE_LABEL = {
    available: 'Available', busy: 'Busy', dnd: 'Do not disturb', away: 'Away', offline: 'Offline',
  };

  // ---------------------------------------------------------------- state
  const S = {
    me: null, // {address, display_name, ...}
    csrf: null,
    signedIn: false,
    users: new Map(), // address -> user
    userFetches: new Set(),
    presence: new Map(), // address -> {state, idle, note}
    presenceTick: 0,
    presenceTouched: new Map(), // address -> tick of the last live update
    groups: [],
    ungrouped: [],
    contactsLoaded: false,
    convs: new Map(), // id -> conversation
    convFetches: new Set(),
    buckets: new Map(), // conversation id -> {events: Map(id -> event), loaded, hasOlder, loading}
    pending: new Map(), // client_id -> {client_id, conversation, body, ts, state, error}
    readers: new Map(), // conversation id -> Map(address -> up_to)
    typing: new Map(), // conversation id -> Map(address -> expires at)
    current: null, // open conversation id
    lastEventId: 0,
    haveCursor: false,
    ws: null,
    wsReady: false,
    wsUrl: '',
    everReady: false,
    failures: 0,
    reconnectTimer: null,
    heldForTest: false,
    pingTimer: null,
    pongTimer: null,
    myState: 'available',
    myNote: '',
    idle: false,
    lastActivity: Date.now(),
    typingSent: false,
    typingConv: null,
    typingSentAt: 0,
    typingStopTimer: null,
    tab: 'chats',
    filter: '',
  };

  // ---------------------------------------------------------------- DOM helpers
  const $ = (id) => document.getElementById(id);

  /** createElement with attributes; `text` sets textContent. No HTML is ever parsed. */
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
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

  function setText(node, text) {
    const t = text == null ? '' : String(text);
    if (node.textContent !== t) node.textContent = t;
  }

  // --- user-supplied text in a line of other words
  // Names, titles, notes, previews and questions come from people: a display name may start
  // with U+202E RIGHT-TO-LEFT OVERRIDE, or be written right to left. Where such text shares a
  // line with other words it is isolated, so that it cannot reorder them: a "line" is an
  // array of literal strings and U(text) pieces; in the page each U piece is a <bdi>; in
  // plain-text places (tooltips, notifications) it is wrapped in FSI … PDI. Elements that hold
  // nothing but user text are isolated by app.css (unicode-bidi: isolate).
  const U = (t) => ({ u: t == null ? '' : String(t) });
  const partsOf = (x) => (Array.isArray(x) ? x : [x == null ? '' : String(x)]);
  const partText = (p) => (typeof p === 'string' ? p : p.u);
  /** The line as plain text (filters, comparisons). */
  const plain = (x) => partsOf(x).map(partText).join('');
  /** The line as plain text with its user pieces isolated (FSI … PDI). */
  const isoText = (x) => partsOf(x).map((p) => (typeof p === 'string' ? p : `\u2068${p.u}\u2069`)).join('');
  /** The line as nodes: text nodes and <bdi> elements. */
  const richNodes = (x) => partsOf(x).filter((p) => partText(p) !== '')
    .map((p) => (typeof p === 'string' ? document.createTextNode(p) : el('bdi', { text: p.u })));
  /** Each piece of a line with its white space collapsed (one-line previews). */
  const squash = (x) => partsOf(x).map((p) => (typeof p === 'string' ? p.replace(/\s+/g, ' ') : U(p.u.replace(/\s+/g, ' '))));
  /** A list of user pieces joined by `sep`. */
  const joinU = (list, sep) => list.flatMap((t, i) => (i ? [sep, U(t)] : [U(t)]));
  const richKeys = new WeakMap();
  /** setText for a line: redraws `node` only when the line changed. */
  function setRich(node, x) {
    const key = JSON.stringify(partsOf(x));
    if (richKeys.get(node) === key && node.textContent === plain(x)) return;
    richKeys.set(node, key);
    node.replaceChildren(...richNodes(x));
  }

  let toastTimer = null;
  /** A short message at the bottom: a string, or a line with user pieces. */
  function toast(msg) {
    const t = $('toast');
    t.replaceChildren(...richNodes(msg));
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  const lower = (s) => String(s || '').toLowerCase();

  function toMs(v) {
    if (typeof v === 'number') return v;
    if (typeof v === 'string') { const t = Date.parse(v); return Number.isNaN(t) ? 0 : t; }
    return 0;
  }

  function fmtTime(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    const now = new Date();
    if (d.toDateString() === now.toDateString()) {
      return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  }

  function randomId() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return 'w-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function asList(r, ...keys) {
    if (Array.isArray(r)) return r;
    if (r && typeof r === 'object') {
      for (const k of keys) if (Array.isArray(r[k])) return r[k];
    }
    return [];
  }

  // ---------------------------------------------------------------- HTTP
  function cookie(name) {
    for (const part of document.cookie.split(';')) {
      const i = part.indexOf('=');
      if (i < 0) continue;
      if (part.slice(0, i).trim() === name) {
        try { return decodeURIComponent(part.slice(i + 1).trim()); } catch (_) { return part.slice(i + 1).trim(); }
      }
    }
    return null;
  }
  const csrfToken = () => cookie('sb_csrf') || S.csrf;

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD') {
      const t = csrfToken();
      if (t) headers['X-CSRF-Token'] = t;
    }
    let res;
    try {
      res = await fetch(API + path, {
        method, headers, credentials: 'same-origin', cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      const e = new Error('Cannot reach the server.');
      e.code = 'network'; e.status = 0;
      throw e;
    }
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const e = new Error(typeof err.message === 'string' && err.message
        ? err.message : `Request failed (HTTP ${res.status}).`);
      e.code = err.code || `http_${res.status}`;
      e.status = res.status;
      if (res.status === 401 && S.signedIn && path !== '/auth/login') sessionEnded();
      throw e;
    }
    return data;
  }

  // ---------------------------------------------------------------- users & presence
  function normUser(u) {
    if (!u || typeof u !== 'object') return null;
    const address = lower(u.address);
    if (!address) return null;
    return Object.assign({}, u, { address });
  }

  /** tick: S.presenceTick when the snapshot carrying u was requested. */
  function rememberUser(u, tick) {
    const n = normUser(u);
    if (!n) return null;
    const old = S.users.get(n.address);
    const merged = Object.assign({}, old || {}, n);
    delete merged.presence;
    S.users.set(n.address, merged);
    if (n.presence) setPresence(n.address, n.presence, false, tick === undefined ? S.presenceTick : tick);
    return merged;
  }

  function displayName(addr) {
    const a = lower(addr);
    const u = S.users.get(a);
    if (u && u.display_name) return u.display_name;
    if (a && !S.userFetches.has(a)) fetchUser(a);
    return a;
  }

  function firstName(addr) {
    const n = displayName(addr);
    return n.includes('@') ? n : n.split(/\s+/)[0];
  }

  async function fetchUser(addr) {
    S.userFetches.add(addr);
    const tick = S.presenceTick;
    try {
      const u = await api('GET', `/users/${encodeURIComponent(addr)}`);
      rememberUser((u && u.user) || u, tick);
      dirty.header = true; // names in the chat's header and queue bar
      scheduleRender();
      paintNames();
    } catch (_) { /* unknown user: keep the address */ }
  }

  function presenceOf(addr) {
    return S.presence.get(lower(addr)) || { state: 'offline', idle: false, note: '' };
  }

  function normPresence(p) {
    const state = STATES.includes(p && p.state) ? p.state : 'offline';
    return { state, idle: !!(p && p.idle), note: (p && typeof p.note === 'string') ? p.note : '' };
  }

  /** live: from a WebSocket frame. Snapshots (REST) never overwrite newer live data. */
  function setPresence(addr, p, live, snapshotTick) {
    const a = lower(addr);
    if (!live && snapshotTick !== undefined && (S.presenceTouched.get(a) || 0) > snapshotTick) return;
    if (live) S.presenceTouched.set(a, ++S.presenceTick);
    S.presence.set(a, normPresence(p));
    updatePresenceViews(a);
  }

  function presenceLabel(p) {
    const l = STATE_LABEL[p.state] || p.state;
    return p.idle && p.state !== 'offline' ? `${l} (idle)` : l;
  }

  function paintDot(dot, p) {
    if (dot.getAttribute('data-state') !== p.state) dot.setAttribute('data-state', p.state);
    const idle = p.idle && p.state !== 'offline' ? 'true' : 'false';
    if (dot.getAttribute('data-idle') !== idle) dot.setAttribute('data-idle', idle);
    dot.title = presenceLabel(p);
  }

  const contactRows = new Map(); // address -> [{row, dot, note}]

  function updatePresenceViews(addr) {
    const p = presenceOf(addr);
    for (const r of contactRows.get(addr) || []) {
      paintDot(r.dot, p);
      setText(r.note, p.note || presenceLabel(p));
      r.note.classList.toggle('is-note', !!p.note);
      r.row.setAttribute('data-state', p.state);
    }
    if (S.me && addr === S.me.address) paintDot($('me-dot'), p);
    updateGroupCounts();
    dirty.convs = true; // direct-chat dots
    dirty.header = true;
    scheduleRender();
  }

  // ---------------------------------------------------------------- conversations
  function bucket(convId) {
    let b = S.buckets.get(convId);
    if (!b) {
      b = { events: new Map(), loaded: false, hasOlder: false, loading: false };
      S.buckets.set(convId, b);
    }
    return b;
  }

  function othersIn(conv) {
    const me = S.me ? S.me.address : '';
    return (conv.members || []).filter((m) => m !== me);
  }

  /** A conversation's title, as a line (names and titles isolated): see U(). */
  function convTitle(conv) {
    if (!conv) return [];
    if (conv.kind === 'direct') {
      const o = othersIn(conv);
      if (o.length === 1 && isAlertsConv(conv)) { const n = displayName(o[0]); return n === o[0] ? ['Alerts'] : [U(n)]; }
      return o.length ? [U(displayName(o[0]))] : (conv.title ? [U(conv.title)] : ['Just you']);
    }
    if (conv.kind === 'queue') {
      const others = othersIn(conv).map(firstName);
      const t = conv.title ? U(conv.title) : 'Queue chat';
      return others.length ? [t, ' · ', ...joinU(others, ', ')] : [t];
    }
    if (conv.title) return [U(conv.title)];
    const names = othersIn(conv).map(firstName);
    return names.length ? joinU(names, ', ') : ['Group chat'];
  }

  function countUnreadAfter(conv, afterId) {
    const me = S.me ? S.me.address : '';
    let n = 0;
    for (const ev of bucket(conv.id).events.values()) {
      if (isChat(ev) && lower(ev.sender) !== me && ev.id > afterId
          && ev.id > (conv.read_up_to || 0)) n++;
    }
    return n;
  }

  /** source: 'rest' (authoritative snapshot) or 'frame' (membership change). */
  function upsertConv(c, source) {
    if (!c || typeof c.id !== 'number') return null;
    let cur = S.convs.get(c.id);
    const isNew = !cur;
    if (!cur) {
      cur = { id: c.id, kind: 'direct', title: '', members: [], unread: 0, read_up_to: 0, last_message: null, created_at: 0 };
      S.convs.set(c.id, cur);
    }
    if (c.kind) cur.kind = c.kind;
    if (typeof c.title === 'string') cur.title = c.title;
    if (Array.isArray(c.members)) cur.members = c.members.map((m) => lower(typeof m === 'string' ? m : m && m.address));
    if (c.created_at) cur.created_at = toMs(c.created_at);
    if (source === 'rest' || isNew) {
      if (typeof c.read_up_to === 'number') cur.read_up_to = Math.max(cur.read_up_to || 0, c.read_up_to);
      const restLast = c.last_message && typeof c.last_message.id === 'number' ? c.last_message : null;
      const localLast = cur.last_message;
      if (!localLast || (restLast && restLast.id >= localLast.id)) {
        if (restLast) cur.last_message = restLast;
        if (typeof c.unread === 'number') cur.unread = c.unread;
      } else if (typeof c.unread === 'number') {
        // We hold live events newer than the snapshot: add the ones it could not count.
        cur.unread = c.unread + countUnreadAfter(cur, restLast ? restLast.id : 0);
      }
      if (isNew && typeof c.unread !== 'number') {
        // A bare conversation (GET /conversations/{id}, a "conversation" frame): what we
        // know is what arrived live.
        const b = S.buckets.get(cur.id);
        if (b) for (const ev of b.events.values()) if (!cur.last_message || ev.id > cur.last_message.id) cur.last_message = ev;
        cur.unread = countUnreadAfter(cur, 0);
      }
    }
    for (const m of cur.members) if (!S.users.has(m)) displayName(m);
    if (S.me && cur.members.length && !cur.members.includes(S.me.address)) {
      removeConv(cur.id);
      return null;
    }
    dirty.convs = true;
    if (cur.id === S.current) dirty.header = true;
    scheduleRender();
    return cur;
  }

  function removeConv(id) {
    S.convs.delete(id);
    S.buckets.delete(id);
    if (S.current === id) closeChat();
    dirty.convs = true;
    scheduleRender();
  }

  async function ensureConv(id) {
    if (S.convs.has(id) || S.convFetches.has(id)) return;
    S.convFetches.add(id);
    try {
      const c = await api('GET', `/conversations/${id}`);
      upsertConv((c && c.conversation) || c, 'rest');
    } catch (_) { /* not ours any more */ } finally { S.convFetches.delete(id); }
  }

  async function loadConversations() {
    const known = new Set(S.convs.keys());
    const r = await api('GET', '/conversations');
    const list = asList(r, 'conversations', 'items');
    const seen = new Set();
    for (const c of list) { const u = upsertConv(c, 'rest'); if (u) seen.add(u.id); }
    // Gone from the server's list (left in another tab). Conversations that appeared while
    // the request was running are kept: the snapshot may predate them.
    for (const id of known) if (!seen.has(id) && S.convs.has(id)) removeConv(id);
    dirty.convs = true;
    scheduleRender();
  }

  async function loadContacts() {
    const tick = S.presenceTick;
    const r = await api('GET', '/contacts');
    const groups = (r && Array.isArray(r.groups)) ? r.groups : [];
    const ungrouped = (r && Array.isArray(r.ungrouped)) ? r.ungrouped : [];
    const normMembers = (ms) => (ms || []).map((u) => {
      const n = normUser(u);
      if (!n) return null;
      rememberUser(n, tick);
      return n.address;
    }).filter(Boolean);
    S.groups = groups.map((g) => ({ id: String(g.id), name: String(g.name || g.id || ''), members: normMembers(g.members) }));
    S.ungrouped = normMembers(ungrouped);
    S.contactsLoaded = true;
    renderContacts();
    dirty.convs = true;
    scheduleRender();
  }

  // ---------------------------------------------------------------- events
  /** A chat message from a person (system notices are messages without a sender). */
  const isChat = (ev) => ev.kind === 'message' && !!ev.sender;

  /** One line describing a non-chat event (names isolated: see U()). `short` uses first names (previews). */
  function systemText(ev, short) {
    const name = (a) => (short ? firstName(a) : displayName(a));
    if (ev.kind === 'message') return [U(ev.body || '')];
    const who = ev.sender ? U(name(ev.sender)) : null;
    if (ev.kind === 'created') return who ? [who, ' created the conversation'] : ['Conversation created'];
    if (ev.kind === 'joined') {
      const by = ev.body && ev.body.includes('@') && lower(ev.body) !== ev.sender ? [' (added by ', U(name(lower(ev.body))), ')'] : [];
      return [who || 'Someone', ' joined', ...by];
    }
    if (ev.kind === 'left') return [who || 'Someone', ' left'];
    if (ev.body) return [U(ev.body)];
    return who ? [who, ` ${ev.kind}`] : [String(ev.kind || '')];
  }

  /** Adds a stored event. live: it came over the WebSocket. Returns false for duplicates. */
  function handleEvent(ev, live) {
    if (!ev || typeof ev.id !== 'number' || typeof ev.conversation !== 'number') return false;
    if (live && S.haveCursor && ev.id > S.lastEventId) S.lastEventId = ev.id;
    ev.sender = lower(ev.sender);
    const b = bucket(ev.conversation);
    if (b.events.has(ev.id)) return false; // dedupe by id
    b.events.set(ev.id, ev);
    const me = S.me ? S.me.address : '';
    if (ev.client_id && ev.sender === me && S.pending.has(ev.client_id)) {
      S.pending.delete(ev.client_id);
      savePending();
    }
    const fromOther = isChat(ev) && ev.sender !== me;
    const conv = S.convs.get(ev.conversation);
    if (!conv) {
      if (live) {
        ensureConv(ev.conversation).then(() => {
          if (fromOther) notify(ev);
        });
      }
    } else {
      const prevLast = conv.last_message ? conv.last_message.id : 0;
      if (ev.id > prevLast) conv.last_message = ev;
      if (live && fromOther && ev.id > prevLast && ev.id > (conv.read_up_to || 0)) {
        if (conversationVisible(conv.id)) queueMarkRead(conv.id);
        else conv.unread = (conv.unread || 0) + 1;
        notify(ev);
      }
      const staleMembers = (ev.kind === 'joined' && !conv.members.includes(ev.sender))
        || (ev.kind === 'left' && conv.members.includes(ev.sender));
      if (live && staleMembers && ev.sender !== me) ensureMembersFresh(conv);
    }
    if (isChat(ev)) stopShowingTyping(ev.conversation, ev.sender);
    if (live && ev.kind === 'left' && ev.sender === me && S.convs.has(ev.conversation)) {
      // Left in another tab or device: only the remaining members get a "conversation" frame.
      removeConv(ev.conversation);
      return true;
    }
    dirty.convs = true;
    if (ev.conversation === S.current) dirty.chat = true;
    scheduleRender();
    return true;
  }

  function ensureMembersFresh(conv) {
    // joined/left events change membership; the server also sends a "conversation" frame,
    // this is a cheap safety net for group headers.
    api('GET', `/conversations/${conv.id}`).then((c) => upsertConv((c && c.conversation) || c, 'frame')).catch(() => {});
  }

  function conversationVisible(id) {
    return S.current === id && document.visibilityState === 'visible';
  }

  let markReadQueued = new Set();
  function queueMarkRead(id) {
    markReadQueued.add(id);
    setTimeout(() => {
      const ids = [...markReadQueued];
      markReadQueued = new Set();
      for (const i of ids) markRead(i);
    }, 0);
  }

  function markRead(id) {
    const conv = S.convs.get(id);
    if (!conv || !conversationVisible(id)) return;
    let upTo = conv.last_message ? conv.last_message.id : 0;
    for (const k of bucket(id).events.keys()) if (k > upTo) upTo = k;
    const hadUnread = (conv.unread || 0) > 0;
    conv.unread = 0;
    if (upTo > (conv.read_up_to || 0) || hadUnread) {
      conv.read_up_to = Math.max(conv.read_up_to || 0, upTo);
      if (upTo > 0) {
        if (!sendFrame({ type: 'read', conversation: id, up_to: upTo })) {
          api('POST', `/conversations/${id}/read`, { up_to: upTo }).catch(() => {});
        }
      }
    }
    dirty.convs = true;
    scheduleRender();
  }

  // ---------------------------------------------------------------- pending messages
  function pendingKey() { return S.me ? `sb.pending.${S.me.address}` : null; }

  function savePending() {
    const k = pendingKey();
    if (!k) return;
    try {
      const list = [...S.pending.values()].filter((p) => p.state === 'pending')
        .map(({ client_id, conversation, body, ts }) => ({ client_id, conversation, body, ts }));
      if (list.length) sessionStorage.setItem(k, JSON.stringify(list));
      else sessionStorage.removeItem(k);
    } catch (_) { /* storage full or disabled */ }
  }

  function restorePending() {
    const k = pendingKey();
    if (!k) return;
    try {
      const list = JSON.parse(sessionStorage.getItem(k) || '[]');
      for (const p of list) {
        if (p && typeof p.client_id === 'string' && typeof p.conversation === 'number' && typeof p.body === 'string') {
          S.pending.set(p.client_id, { client_id: p.client_id, conversation: p.conversation, body: p.body, ts: p.ts || Date.now(), state: 'pending', error: '' });
        }
      }
    } catch (_) { /* ignore */ }
  }

  function sendPending(p) {
    p.state = 'pending';
    p.error = '';
    sendFrame({ type: 'send', conversation: p.conversation, body: p.body, client_id: p.client_id });
  }

  function sendMessage(convId, body) {
    if (!body.trim()) return;
    const p = { client_id: randomId(), conversation: convId, body, ts: Date.now(), state: 'pending', error: '' };
    S.pending.set(p.client_id, p);
    savePending();
    if (S.wsReady) sendPending(p);
    stopTyping();
    dirty.chat = true;
    forceBottom = true;
    scheduleRender();
  }

  // ---------------------------------------------------------------- WebSocket
  function sendFrame(obj) {
    if (!S.ws || !S.wsReady || S.ws.readyState !== WebSocket.OPEN) return false;
    try { S.ws.send(JSON.stringify(obj)); return true; } catch (_) { return false; }
  }

  function setConn(state, text) {
    const c = $('conn-status');
    c.setAttribute('data-state', state);
    if (state === 'online') { c.hidden = true; c.textContent = ''; return; }
    c.hidden = false;
    c.textContent = text;
  }

  function connect() {
    if (!S.signedIn || S.heldForTest) return;
    clearTimeout(S.reconnectTimer);
    S.reconnectTimer = null;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${proto}//${location.host}${API}/ws`;
    if (S.haveCursor) url += `?resume_from=${S.lastEventId}`;
    S.wsUrl = url;
    let ws;
    try { ws = new WebSocket(url); } catch (_) { scheduleReconnect(); return; }
    S.ws = ws;
    S.wsReady = false;
    setConn('connecting', S.everReady ? 'Reconnecting…' : 'Connecting…');
    ws.onmessage = (m) => {
      if (ws !== S.ws) return;
      let f;
      try { f = JSON.parse(m.data); } catch (_) { return; }
      if (f && typeof f === 'object') onFrame(f);
    };
    ws.onclose = () => {
      if (ws !== S.ws) return;
      S.ws = null;
      S.wsReady = false;
      clearInterval(S.pingTimer);
      clearTimeout(S.pongTimer);
      S.failures++;
      if (S.signedIn) scheduleReconnect();
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  function scheduleReconnect() {
    if (!S.signedIn || S.reconnectTimer || S.heldForTest) return;
    const base = BACKOFF_MS[Math.min(S.failures - 1, BACKOFF_MS.length - 1)] || BACKOFF_MS[0];
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    setConn('offline', `Disconnected. Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`);
    S.reconnectTimer = setTimeout(async () => {
      S.reconnectTimer = null;
      if (S.failures >= 2) {
        // Maybe the session ended: api() signs out on 401.
        try { await api('GET', '/me'); } catch (e) { if (e.status === 401) return; }
      }
      connect();
    }, delay);
  }

  function reconnectNow() {
    if (!S.signedIn || S.ws || S.heldForTest) return;
    clearTimeout(S.reconnectTimer);
    S.reconnectTimer = null;
    connect();
  }

  function startHeartbeat() {
    clearInterval(S.pingTimer);
    S.pingTimer = setInterval(() => {
      if (!sendFrame({ type: 'ping', ref: String(Date.now()) })) return;
      clearTimeout(S.pongTimer);
      S.pongTimer = setTimeout(() => { if (S.ws) S.ws.close(); }, PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  function onFrame(f) {
    switch (f.type) {
      case 'ready': onReady(f); break;
      case 'event': handleEvent(f.event, true); break;
      case 'ack': {
        const ev = f.event;
        if (typeof f.client_id === 'string') S.pending.delete(f.client_id);
        savePending();
        if (ev) handleEvent(ev, false);
        dirty.chat = true;
        scheduleRender();
        break;
      }
      case 'conversation': upsertConv(f.conversation, 'frame'); break;
      case 'presence': if (f.user) setPresence(f.user, f.presence, true); break;
      case 'typing': onTyping(f); break;
      case 'read': onRead(f); break;
      case 'pong': clearTimeout(S.pongTimer); break;
      case 'error': onErrorFrame(f); break;
      case 'closing': setConn('connecting', 'The server is restarting. Reconnecting…'); break;
      case 'queue_offer': onQueueOffer(f); workChanged(); break;
      case 'queue_offer_gone': offerGone(Number(f.chat), String(f.reason || '')); break;
      case 'queue_chat': onQueueChat(f); workChanged(); break;
      case 'compliance_violation': onViolation(f); break;
      case 'alert': onAlert(f); break;
      case 'alert_acked': onAlertAcked(f); break;
      default: break;
    }
  }

  function onReady(f) {
    S.wsReady = true;
    S.failures = 0;
    const first = !S.everReady;
    S.everReady = true;
    if (!S.haveCursor) {
      S.lastEventId = Math.max(S.lastEventId, Number(f.last_event) || 0);
      S.haveCursor = true;
    }
    if (f.user) { const u = rememberUser(f.user); if (u) { S.me = Object.assign({}, S.me || {}, u); renderMe(); } }
    setConn('online', '');
    startHeartbeat();
    // A new connection starts "available": restore what this tab chose.
    if (S.myState !== 'available' || S.myNote) sendFrame({ type: 'presence', state: S.myState, note: S.myNote });
    if (S.idle) sendFrame({ type: 'idle', idle: true });
    // Resend what was never acknowledged, same client_id: the server makes it idempotent.
    for (const p of S.pending.values()) if (p.state === 'pending') sendPending(p);
    loadQueues();
    if (first) {
      Promise.all([loadContacts(), loadConversations()])
        .catch((e) => toast(e.message))
        .then(() => route());
    } else {
      // Frames may have been missed while away: refresh the snapshots (events are resumed).
      loadContacts().catch(() => {});
      loadConversations().catch(() => {});
      recheckQueueChats();
    }
    if (S.current) markRead(S.current);
  }

  // Refusals worth retrying: the same client_id makes a retry safe.
  const TRANSIENT = new Set(['unavailable', 'internal', 'rate_limited', 'too_many_connections']);
  const MAX_SEND_RETRIES = 6;

  function onErrorFrame(f) {
    const ref = typeof f.ref === 'string' ? f.ref : '';
    const p = ref && S.pending.get(ref);
    console.warn('switchboard: server refused a frame:', f.code, f.message, ref);
    if (p) {
      p.retries = (p.retries || 0) + 1;
      if (TRANSIENT.has(f.code) && p.retries <= MAX_SEND_RETRIES) {
        const delay = Math.min(500 * 2 ** (p.retries - 1), 15000);
        clearTimeout(p.retryTimer);
        p.retryTimer = setTimeout(() => {
          if (S.pending.get(p.client_id) === p && p.state === 'pending' && S.wsReady) sendPending(p);
        }, delay);
        return; // stays "Sending…"; a reconnect resends it anyway
      }
      p.state = 'failed';
      p.error = String(f.message || f.code || 'refused');
      savePending();
      dirty.chat = true;
      scheduleRender();
      return;
    }
    if (f.message && !TRANSIENT.has(f.code)) toast(f.message);
  }

  function onTyping(f) {
    const user = lower(f.user);
    if (!user || (S.me && user === S.me.address) || typeof f.conversation !== 'number') return;
    let m = S.typing.get(f.conversation);
    if (!m) { m = new Map(); S.typing.set(f.conversation, m); }
    if (f.active) m.set(user, Date.now() + TYPING_SHOW_MS);
    else m.delete(user);
    renderTyping();
    if (f.active) setTimeout(renderTyping, TYPING_SHOW_MS + 50);
  }

  function stopShowingTyping(convId, user) {
    const m = S.typing.get(convId);
    if (m && m.delete(user)) renderTyping();
  }

  function onRead(f) {
    const user = lower(f.user);
    const upTo = Number(f.up_to) || 0;
    const conv = S.convs.get(f.conversation);
    if (!conv) return;
    if (S.me && user === S.me.address) {
      // Read in another tab or device.
      conv.read_up_to = Math.max(conv.read_up_to || 0, upTo);
      conv.unread = countUnreadAfter(conv, 0);
      if (conv.last_message && conv.last_message.id <= upTo) conv.unread = 0;
      dirty.convs = true;
    } else {
      let m = S.readers.get(conv.id);
      if (!m) { m = new Map(); S.readers.set(conv.id, m); }
      m.set(user, Math.max(m.get(user) || 0, upTo));
      if (conv.id === S.current) dirty.chat = true;
    }
    scheduleRender();
  }

  // ---------------------------------------------------------------- typing (outgoing)
  function onComposerInput() {
    autoGrow();
    if (!S.current) return;
    if (!$('composer').value.trim()) { stopTyping(); return; }
    const now = Date.now();
    if (!S.typingSent || S.typingConv !== S.current || now - S.typingSentAt > TYPING_REPEAT_MS) {
      if (S.typingSent && S.typingConv !== S.current) stopTyping();
      if (sendFrame({ type: 'typing', conversation: S.current, active: true })) {
        S.typingSent = true;
        S.typingConv = S.current;
        S.typingSentAt = now;
      }
    }
    clearTimeout(S.typingStopTimer);
    S.typingStopTimer = setTimeout(stopTyping, TYPING_STOP_MS);
  }

  function stopTyping() {
    clearTimeout(S.typingStopTimer);
    if (S.typingSent) sendFrame({ type: 'typing', conversation: S.typingConv, active: false });
    S.typingSent = false;
    S.typingConv = null;
  }

  // ---------------------------------------------------------------- own presence & idle
  function presenceKey() { return S.me ? `sb.presence.${S.me.address}` : null; }

  function setMyPresence(state, note) {
    S.myState = STATES.includes(state) && state !== 'offline' ? state : 'available';
    S.myNote = String(note || '').slice(0, 200);
    try { sessionStorage.setItem(presenceKey(), JSON.stringify({ state: S.myState, note: S.myNote })); } catch (_) { /* ignore */ }
    sendFrame({ type: 'presence', state: S.myState, note: S.myNote });
  }

  function restoreMyPresence() {
    try {
      const v = JSON.parse(sessionStorage.getItem(presenceKey()) || 'null');
      if (v && STATES.includes(v.state)) { S.myState = v.state; S.myNote = String(v.note || ''); }
    } catch (_) { /* ignore */ }
    $('presence-select').value = S.myState;
    $('presence-note').value = S.myNote;
  }

  function activity() {
    S.lastActivity = Date.now();
    if (S.idle) {
      S.idle = false;
      sendFrame({ type: 'idle', idle: false });
    }
  }

  function checkIdle() {
    if (!S.signedIn || S.idle) return;
    if (Date.now() - S.lastActivity >= (api.idleAfterMs ?? IDLE_AFTER_MS)) {
      S.idle = true;
      sendFrame({ type: 'idle', idle: true });
    }
  }

  // ---------------------------------------------------------------- notifications & title
  function askNotificationPermission() {
    try {
      if ('Notification' in window && Notification.permission === 'default') {
        const r = Notification.requestPermission();
        if (r && r.catch) r.catch(() => {});
      }
    } catch (_) { /* unsupported */ }
  }

  function notify(ev) {
    try {
      if (!('Notification' in window) || Notification.permission !== 'granted') return;
      if (S.myState === 'dnd') return;
      if (!document.hidden && S.current === ev.conversation) return;
      const conv = S.convs.get(ev.conversation);
      const who = U(displayName(ev.sender));
      const title = isoText(conv && conv.kind === 'group' ? [who, ' in ', ...convTitle(conv)] : [who]);
      const body = String(ev.body || '');
      const n = new Notification(title, { body: body.length > 200 ? `${body.slice(0, 199)}…` : body, tag: `sb-conv-${ev.conversation}` });
      n.onclick = () => { window.focus(); goToConversation(ev.conversation); n.close(); };
    } catch (_) { /* e.g. mobile browsers that need a service worker */ }
  }

  function totalUnread() {
    let n = 0;
    for (const c of S.convs.values()) n += c.unread || 0;
    return n;
  }

  function renderTitle() {
    const n = totalUnread();
    const t = `${urgentOpen() ? '(!) ' : ''}${n > 0 ? `(${n}) ` : ''}Switchboard`;
    if (document.title !== t) document.title = t;
    const b = $('tab-chats-count');
    b.hidden = n === 0;
    setText(b, n > 99 ? '99+' : String(n));
  }

  // ---------------------------------------------------------------- rendering
  const dirty = { convs: false, chat: false, header: false };
  let renderTimer = null;
  let forceBottom = false;

  function scheduleRender() {
    if (renderTimer) return;
    renderTimer = setTimeout(() => {
      renderTimer = null;
      if (!S.signedIn) return;
      if (dirty.convs) { dirty.convs = false; renderConversations(); }
      if (dirty.header) { dirty.header = false; renderHeader(); }
      if (dirty.chat) { dirty.chat = false; renderMessages(); }
      renderTitle();
    }, 15);
  }

  function renderMe() {
    if (!S.me) return;
    setText($('me-name'), S.me.display_name || S.me.address);
    setText($('me-address'), S.me.address);
    paintDot($('me-dot'), presenceOf(S.me.address));
  }

  function matchesFilter(...texts) {
    const f = S.filter;
    if (!f) return true;
    return texts.some((t) => lower(t).includes(f));
  }

  // --- conversation list
  const convRows = new Map(); // id -> {row, dot, title, time, preview, badgeBox}

  function convActivity(c) {
    return c.last_message ? (toMs(c.last_message.ts) || c.last_message.id) : toMs(c.created_at);
  }

  /** The last message of a conversation in one line (names and text isolated: see U()). */
  function previewText(c) {
    const ev = c.last_message;
    if (!ev) return [c.kind === 'group' ? `${(c.members || []).length} members` : 'No messages yet'];
    const me = S.me ? S.me.address : '';
    if (isChat(ev)) {
      const who = lower(ev.sender) === me ? 'You' : (c.kind === 'group' ? U(firstName(ev.sender)) : '');
      const body = U(String(ev.body || '').replace(/\s+/g, ' '));
      return who ? [who, ': ', body] : [body];
    }
    return squash(systemText(ev, true));
  }

  function buildConvRow(id) {
    const dot = el('span', { class: 'dot', 'aria-hidden': 'true' });
    const title = el('span', { class: 'row-title' });
    const time = el('time', { class: 'row-time' });
    const preview = el('span', { class: 'row-preview' });
    const badgeBox = el('span', { class: 'badge-box' });
    const row = el('div', { class: 'row conv', 'data-testid': 'conversation', 'data-id': id, role: 'button', tabindex: '0' },
      dot,
      el('div', { class: 'row-main' },
        el('div', { class: 'row-top' }, title, time),
        el('div', { class: 'row-bottom' }, preview, badgeBox)));
    const open = () => goToConversation(id);
    row.addEventListener('click', open);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
    const r = { row, dot, title, time, preview, badgeBox };
    convRows.set(id, r);
    return r;
  }

  function renderConversations() {
    const list = $('conversation-list');
    // The alerts conversation comes first while alerts there wait for an acknowledgement.
    const pinned = (c) => (isAlertsConv(c) && openAlertsIn(c.id) > 0 ? 1 : 0);
    const convs = [...S.convs.values()].sort((a, b) => pinned(b) - pinned(a) || convActivity(b) - convActivity(a) || b.id - a.id);
    const wanted = [];
    for (const c of convs) {
      const title = convTitle(c);
      const preview = previewText(c);
      if (!matchesFilter(plain(title), plain(preview), ...(c.members || []))) continue;
      const r = convRows.get(c.id) || buildConvRow(c.id);
      setRich(r.title, title);
      r.row.title = isoText(title);
      setRich(r.preview, preview);
      setText(r.time, fmtTime(convActivity(c)));
      const alerts = isAlertsConv(c);
      const openAlerts = alerts ? openAlertsIn(c.id) : 0;
      r.row.classList.toggle('alerts-conv', alerts);
      r.row.classList.toggle('has-open-alerts', openAlerts > 0);
      if (alerts) {
        r.row.setAttribute('data-alerts', 'true');
        r.row.setAttribute('data-open-alerts', String(openAlerts));
        if (openAlerts) r.row.title = `${isoText(title)}: ${openAlerts} to acknowledge`;
      } else {
        r.row.removeAttribute('data-alerts');
        r.row.removeAttribute('data-open-alerts');
      }
      if (alerts) {
        r.dot.classList.add('group-dot', 'alerts-dot');
        r.dot.removeAttribute('data-state');
        r.dot.removeAttribute('data-idle');
        r.dot.title = 'Alerts';
        setText(r.dot, '!');
      } else if (c.kind === 'direct') {
        r.dot.classList.remove('alerts-dot');
        const o = othersIn(c);
        r.dot.classList.remove('group-dot');
        paintDot(r.dot, presenceOf(o[0] || ''));
        setText(r.dot, '');
      } else {
        r.dot.classList.remove('alerts-dot');
        r.dot.classList.add('group-dot');
        r.dot.removeAttribute('data-state');
        r.dot.removeAttribute('data-idle');
        r.dot.title = c.kind === 'queue' ? 'Queue chat' : 'Group chat';
        setText(r.dot, c.kind === 'queue' ? '?' : '#');
      }
      const unread = c.unread || 0;
      r.row.classList.toggle('has-unread', unread > 0);
      r.row.classList.toggle('active', c.id === S.current);
      if (c.id === S.current) r.row.setAttribute('aria-current', 'true'); else r.row.removeAttribute('aria-current');
      let badge = r.badgeBox.firstChild;
      if (unread > 0) {
        if (!badge) { badge = el('span', { class: 'badge', 'data-testid': 'unread' }); r.badgeBox.appendChild(badge); }
        setText(badge, unread > 99 ? '99+' : String(unread));
      } else if (badge) {
        badge.remove();
      }
      wanted.push(r.row);
    }
    for (const id of [...convRows.keys()]) if (!S.convs.has(id)) convRows.delete(id);
    if (!wanted.length) {
      const text = S.convs.size ? 'No chats match the filter.' : 'No chats yet. Pick a contact to start one.';
      const e = list.querySelector('.empty-note') || el('p', { class: 'empty-note' });
      setText(e, text);
      wanted.push(e);
    }
    reconcile(list, wanted);
  }

  /** Make parent's children exactly `nodes`, in order, moving as few as possible. */
  function reconcile(parent, nodes) {
    let cur = parent.firstChild;
    for (const n of nodes) {
      if (n === cur) cur = cur.nextSibling;
      else parent.insertBefore(n, cur);
    }
    while (cur) { const next = cur.nextSibling; cur.remove(); cur = next; }
  }

  // --- contacts
  function collapsedGroups() {
    try { return new Set(JSON.parse(localStorage.getItem('sb.collapsed') || '[]')); } catch (_) { return new Set(); }
  }

  const groupHeads = []; // {count, members: [addr]}

  function renderContacts() {
    const list = $('contact-list');
    contactRows.clear();
    groupHeads.length = 0;
    const collapsed = collapsedGroups();
    const frag = document.createDocumentFragment();
    const sections = S.groups.map((g) => ({ key: `g:${g.id}`, name: g.name, members: g.members }));
    if (S.ungrouped.length) sections.push({ key: 'ungrouped', name: 'Other contacts', members: S.ungrouped });
    const byName = (a, b) => displayName(a).localeCompare(displayName(b));
    let shown = 0;
    for (const sec of sections) {
      const members = sec.members.filter((a) => {
        const p = presenceOf(a);
        return matchesFilter(displayName(a), a, p.note);
      }).sort(byName);
      if (!members.length && S.filter) continue;
      const isCollapsed = collapsed.has(sec.key) && !S.filter;
      const count = el('span', { class: 'count' });
      const head = el('button', { type: 'button', class: 'group-head', 'aria-expanded': isCollapsed ? 'false' : 'true', 'data-testid': 'group' },
        el('span', { class: 'caret', 'aria-hidden': 'true' }), el('span', { class: 'group-name', text: sec.name }), count);
      const body = el('div', { class: 'group-members' });
      body.hidden = isCollapsed;
      head.addEventListener('click', () => {
        const c = collapsedGroups();
        const nowCollapsed = !body.hidden;
        body.hidden = nowCollapsed;
        head.setAttribute('aria-expanded', nowCollapsed ? 'false' : 'true');
        if (nowCollapsed) c.add(sec.key); else c.delete(sec.key);
        try { localStorage.setItem('sb.collapsed', JSON.stringify([...c])); } catch (_) { /* ignore */ }
      });
      for (const a of members) { body.appendChild(buildContactRow(a)); shown++; }
      groupHeads.push({ count, members: sec.members });
      frag.appendChild(el('section', { class: 'group' }, head, body));
    }
    if (!shown) {
      frag.appendChild(el('p', { class: 'empty-note', text: S.contactsLoaded ? (S.filter ? 'No contacts match the filter.' : 'No contacts.') : 'Loading…' }));
    }
    list.replaceChildren(frag);
    updateGroupCounts();
  }

  function buildContactRow(addr) {
    const p = presenceOf(addr);
    const isMe = S.me && addr === S.me.address;
    const dot = el('span', { class: 'dot', 'data-testid': 'presence' });
    paintDot(dot, p);
    const note = el('div', { class: 'row-note' + (p.note ? ' is-note' : ''), 'data-testid': 'presence-text', text: p.note || presenceLabel(p) });
    const row = el('div', { class: 'row contact', 'data-testid': 'contact', 'data-address': addr, 'data-state': p.state, role: 'button', tabindex: '0', title: addr },
      dot,
      el('div', { class: 'row-main' },
        el('div', { class: 'row-top' }, el('span', { class: 'row-title' }, ...richNodes([U(displayName(addr)), isMe ? ' (you)' : '']))),
        note));
    const open = () => openDirect(addr);
    row.addEventListener('click', open);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
    let rows = contactRows.get(addr);
    if (!rows) { rows = []; contactRows.set(addr, rows); }
    rows.push({ row, dot, note });
    return row;
  }

  function updateGroupCounts() {
    for (const g of groupHeads) {
      const online = g.members.filter((a) => presenceOf(a).state !== 'offline').length;
      setText(g.count, `${online}/${g.members.length}`);
    }
  }

  // --- chat pane
  function renderHeader() {
    const conv = S.convs.get(S.current);
    if (!conv) return;
    setRich($('chat-title'), convTitle(conv));
    const dot = $('chat-dot');
    const sub = $('chat-subtitle');
    if (isAlertsConv(conv)) {
      dot.hidden = true;
      setRich(sub, 'Alerts for you · reply "ack" to acknowledge the latest, or "ack <number>" for another');
    } else if (conv.kind === 'direct') {
      const o = othersIn(conv)[0] || '';
      const p = presenceOf(o);
      dot.hidden = false;
      paintDot(dot, p);
      setRich(sub, [`${presenceLabel(p)} · `, p.note ? U(p.note) : o]);
    } else {
      dot.hidden = true;
      setRich(sub, joinU((conv.members || []).map(firstName), ', '));
    }
    const group = conv.kind === 'group';
    renderQueueBar();
    $('chat-invite').hidden = !group;
    $('chat-leave').hidden = !group;
    $('chat').setAttribute('data-id', String(conv.id));
    $('chat').setAttribute('data-kind', conv.kind);
  }

  const msgNodes = new Map(); // key -> node, for the open conversation

  function linkify(parent, text) {
    const re = /\bhttps?:\/\/[^\s<>"'`]+/gi;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      let url = m[0];
      const trail = url.match(/[.,;:!?)\]}]+$/);
      if (trail) url = url.slice(0, -trail[0].length);
      let href = null;
      try {
        const u = new URL(url);
        if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
      } catch (_) { href = null; }
      if (!href) continue;
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      const a = el('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' });
      a.textContent = url;
      parent.appendChild(a);
      last = m.index + url.length;
      re.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function buildMessageNode(item, pending) {
    const me = S.me ? S.me.address : '';
    const sender = pending ? me : item.sender;
    const mine = sender === me;
    const body = el('div', { class: 'msg-body', 'data-testid': 'message-body' });
    linkify(body, String(item.body || ''));
    const node = el('div', { class: `msg ${mine ? 'mine' : 'theirs'}`, 'data-testid': 'message', 'data-sender': sender },
      el('div', { class: 'msg-meta' },
        el('span', { class: 'msg-sender', text: mine ? 'You' : displayName(sender) }),
        el('time', { class: 'msg-time', text: fmtTime(toMs(item.ts)), title: new Date(toMs(item.ts) || Date.now()).toLocaleString() })),
      body,
      el('div', { class: 'msg-status' }));
    if (pending) node.setAttribute('data-pending', 'true');
    else node.setAttribute('data-id', String(item.id));
    return node;
  }

  function buildSystemNode(ev) {
    const notice = ev.kind === 'message';
    return el('div', { class: notice ? 'sys notice' : 'sys', 'data-testid': 'event', 'data-id': String(ev.id), 'data-kind': String(ev.kind) },
      el('span', { class: 'sys-text' }, ...richNodes(systemText(ev, false))), el('time', { class: 'msg-time', text: ` · ${fmtTime(toMs(ev.ts))}` }));
  }

  function dayKey(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
  }

  function renderMessages() {
    const convId = S.current;
    if (convId === null) return;
    const b = bucket(convId);
    const box = $('messages');
    const list = $('message-list');
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const events = [...b.events.values()].sort((x, y) => ((x.seq || 0) - (y.seq || 0)) || (x.id - y.id));
    const pend = [...S.pending.values()].filter((p) => p.conversation === convId);
    const me = S.me ? S.me.address : '';
    const wanted = [];
    let prevSender = null;
    let prevTs = 0;
    let prevDay = null;
    const readers = S.readers.get(convId);
    let seenUpTo = 0;
    if (readers) for (const v of readers.values()) seenUpTo = Math.max(seenUpTo, v);
    let lastSeenMine = null;
    const put = (key, build, item, sender, ts) => {
      const day = dayKey(ts || Date.now());
      if (day !== prevDay) {
        const dk = `d:${day}`;
        let dn = msgNodes.get(dk);
        if (!dn) {
          dn = el('div', { class: 'day', text: new Date(ts || Date.now()).toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric' }) });
          msgNodes.set(dk, dn);
        }
        wanted.push(dn);
        prevDay = day;
        prevSender = null;
      }
      let n = msgNodes.get(key);
      if (!n) { n = build(); msgNodes.set(key, n); }
      if (sender !== null) {
        n.classList.toggle('cont', sender === prevSender && ts - prevTs < 5 * 60 * 1000);
        const s = n.querySelector('.msg-sender');
        if (s) setText(s, sender === me ? 'You' : displayName(sender));
      }
      prevSender = sender;
      prevTs = ts;
      wanted.push(n);
      return n;
    };
    for (const ev of events) {
      if (isChat(ev)) {
        const n = put(`e:${ev.id}`, () => buildMessageNode(ev, false), ev, ev.sender, toMs(ev.ts));
        setText(n.querySelector('.msg-status'), '');
        if (ev.sender === me && ev.id <= seenUpTo) lastSeenMine = n;
      } else {
        const n = put(`e:${ev.id}`, () => buildSystemNode(ev), ev, null, toMs(ev.ts));
        setRich(n.querySelector('.sys-text'), systemText(ev, false)); // names may arrive later
      }
    }
    for (const p of pend) {
      const n = put(`p:${p.client_id}`, () => buildMessageNode(p, true), p, me, p.ts);
      const st = n.querySelector('.msg-status');
      n.classList.toggle('failed', p.state === 'failed');
      if (p.state === 'failed') {
        if (!st.querySelector('button')) {
          st.replaceChildren(
            el('span', { class: 'err', text: `Not sent: ${p.error} ` }),
            actionButton('Retry', () => { p.retries = 0; sendPending(p); dirty.chat = true; scheduleRender(); }),
            actionButton('Discard', () => { S.pending.delete(p.client_id); savePending(); dirty.chat = true; scheduleRender(); }));
        }
      } else {
        setText(st, S.wsReady ? 'Sending…' : 'Waiting for connection…');
      }
    }
    if (lastSeenMine) {
      const conv = S.convs.get(convId);
      const st = lastSeenMine.querySelector('.msg-status');
      const n = readers ? [...readers.values()].filter((v) => v >= Number(lastSeenMine.getAttribute('data-id'))).length : 0;
      setText(st, conv && conv.kind === 'group' ? `Seen by ${n}` : 'Seen');
    }
    const prevHeight = box.scrollHeight;
    const prevTop = box.scrollTop;
    const firstBefore = list.firstElementChild;
    reconcile(list, wanted);
    for (const k of [...msgNodes.keys()]) if (!msgNodes.get(k).isConnected) msgNodes.delete(k);
    $('load-older').hidden = !b.hasOlder;
    if (forceBottom || nearBottom) {
      box.scrollTop = box.scrollHeight;
    } else if (firstBefore && list.firstElementChild !== firstBefore && preserveOnPrepend) {
      box.scrollTop = prevTop + (box.scrollHeight - prevHeight);
    }
    forceBottom = false;
    preserveOnPrepend = false;
  }
  let preserveOnPrepend = false;

  function actionButton(label, fn) {
    const btn = el('button', { type: 'button', class: 'link', text: label });
    btn.addEventListener('click', fn);
    return btn;
  }

  function renderTyping() {
    const t = $('typing');
    const m = S.current !== null ? S.typing.get(S.current) : null;
    const now = Date.now();
    const names = [];
    if (m) {
      for (const [u, exp] of [...m.entries()]) {
        if (exp <= now) m.delete(u);
        else names.push(firstName(u));
      }
    }
    let line = [];
    if (names.length === 1) line = [U(names[0]), ' is typing…'];
    else if (names.length === 2) line = [U(names[0]), ' and ', U(names[1]), ' are typing…'];
    else if (names.length > 2) line = ['Several people are typing…'];
    setRich(t, line);
  }

  // ---------------------------------------------------------------- navigation
  function goToConversation(id) {
    const h = `#/c/${id}`;
    if (location.hash !== h) location.hash = h; // hashchange -> route()
    else openConversation(id);
  }

  function route() {
    if (!S.signedIn) return;
    const adm = /^#\/(manage|dashboard|compliance|audit|alerts)(?:\/(\d+))?$/.exec(location.hash);
    if (adm && (adm[2] === undefined || adm[1] === 'alerts')) {
      if (adm[1] === 'alerts') AL.want = adm[2] === undefined ? null : Number(adm[2]);
      if (showAdmin(adm[1])) return;
    }
    hideAdmin();
    const m = /^#\/c\/(\d+)$/.exec(location.hash);
    if (m) {
      const id = Number(m[1]);
      if (S.convs.has(id)) openConversation(id);
      else if (S.everReady) {
        ensureConv(id).then(() => { if (S.convs.has(id)) openConversation(id); else closeChat(); });
      }
    } else {
      closeChat();
    }
  }

  function openConversation(id) {
    const conv = S.convs.get(id);
    if (!conv) return;
    if (S.current !== id) {
      stopTyping();
      S.current = id;
      msgNodes.clear();
      $('message-list').replaceChildren();
      $('composer').value = '';
      forceBottom = true;
    }
    $('chat-empty').hidden = true;
    $('chat-main').hidden = false;
    document.querySelector('.app').classList.add('chat-open');
    autoGrow(); // after the chat is shown, so that the composer can be measured
    confirmLeave(false);
    renderHeader();
    renderTyping();
    dirty.chat = true;
    dirty.convs = true;
    scheduleRender();
    const b = bucket(id);
    if (!b.loaded) loadHistory(id, false);
    markRead(id);
    if (window.matchMedia('(min-width: 721px)').matches) $('composer').focus({ preventScroll: true });
  }

  function closeChat() {
    stopTyping();
    S.current = null;
    msgNodes.clear();
    $('message-list').replaceChildren();
    $('chat-main').hidden = true;
    $('chat-empty').hidden = false;
    $('chat').removeAttribute('data-id');
    document.querySelector('.app').classList.remove('chat-open');
    dirty.convs = true;
    scheduleRender();
  }

  async function loadHistory(convId, older) {
    const b = bucket(convId);
    if (b.loading) return;
    b.loading = true;
    let q = `?limit=${PAGE_SIZE}`;
    if (older && b.events.size) q += `&before=${Math.min(...b.events.keys())}`;
    try {
      const r = await api('GET', `/conversations/${convId}/messages${q}`);
      const list = asList(r, 'events', 'messages', 'items');
      if (older) preserveOnPrepend = true;
      for (const ev of list) handleEvent(ev, false);
      if (!older) b.loaded = true;
      let minSeq = Infinity;
      for (const ev of b.events.values()) if (typeof ev.seq === 'number' && ev.seq < minSeq) minSeq = ev.seq;
      b.hasOlder = r && typeof r.has_more === 'boolean'
        ? r.has_more
        : list.length >= PAGE_SIZE && minSeq > 1;
      if (convId === S.current) { dirty.chat = true; scheduleRender(); markRead(convId); }
    } catch (e) {
      if (e.status !== 401) toast(e.message);
    } finally {
      b.loading = false;
    }
  }

  async function openDirect(addr) {
    if (S.me && addr === S.me.address) { toast('That is you.'); return; }
    for (const c of S.convs.values()) {
      if (c.kind === 'direct') {
        const o = othersIn(c);
        if (o.length === 1 && o[0] === addr) { goToConversation(c.id); return; }
      }
    }
    try {
      const c = await api('POST', '/conversations', { kind: 'direct', members: [addr] });
      const conv = upsertConv((c && c.conversation) || c, 'rest');
      if (conv) goToConversation(conv.id);
    } catch (e) {
      toast(e.message);
    }
  }

  function switchTab(tab) {
    S.tab = tab;
    const panes = { chats: ['tab-chats', 'conversation-list'], contacts: ['tab-contacts', 'contact-list'], queues: ['tab-queues', 'queue-panel'] };
    for (const [name, [t, pane]] of Object.entries(panes)) {
      const on = name === tab;
      $(t).classList.toggle('active', on);
      $(t).setAttribute('aria-selected', String(on));
      $(pane).hidden = !on;
    }
    if (tab === 'queues') { renderQueues(); loadQueues(); renderWork(); refreshWork(); }
  }

  // ---------------------------------------------------------------- modal (new group / invite)
  let modalState = null;

  function openPeopleModal(mode) {
    const conv = mode === 'invite' ? S.convs.get(S.current) : null;
    if (mode === 'invite' && !conv) return;
    const exclude = new Set(conv ? conv.members : []);
    if (S.me) exclude.add(S.me.address);
    const people = [...S.users.keys()].filter((a) => !exclude.has(a))
      .sort((a, b) => displayName(a).localeCompare(displayName(b)));
    modalState = { mode, convId: conv ? conv.id : null, people, selected: new Set() };
    setRich($('modal-title'), mode === 'invite' ? ['Invite to ', ...convTitle(conv)] : 'New group chat');
    setText($('modal-ok'), mode === 'invite' ? 'Invite' : 'Create');
    $('modal-group-title').hidden = mode === 'invite';
    $('modal-title-label').hidden = mode === 'invite';
    $('modal-group-title').value = '';
    $('modal-filter').value = '';
    $('modal-error').hidden = true;
    renderPeople();
    $('modal').hidden = false;
    (mode === 'invite' ? $('modal-filter') : $('modal-group-title')).focus();
  }

  function renderPeople() {
    if (!modalState) return;
    const f = lower($('modal-filter').value.trim());
    const frag = document.createDocumentFragment();
    for (const a of modalState.people) {
      if (f && !lower(displayName(a)).includes(f) && !a.includes(f)) continue;
      const cb = el('input', { type: 'checkbox', 'data-address': a });
      cb.checked = modalState.selected.has(a);
      cb.addEventListener('change', () => { if (cb.checked) modalState.selected.add(a); else modalState.selected.delete(a); });
      const dot = el('span', { class: 'dot' });
      paintDot(dot, presenceOf(a));
      frag.appendChild(el('label', { class: 'person', 'data-testid': 'person', 'data-address': a },
        cb, dot, el('span', { class: 'person-name', text: displayName(a) }), el('span', { class: 'person-addr', text: a })));
    }
    if (!frag.childNodes.length) frag.appendChild(el('p', { class: 'empty-note', text: 'Nobody to add.' }));
    $('modal-people').replaceChildren(frag);
  }

  function closeModal() { $('modal').hidden = true; modalState = null; }

  async function submitModal() {
    const st = modalState;
    if (!st) return;
    const err = $('modal-error');
    const members = [...st.selected];
    const fail = (m) => { err.textContent = m; err.hidden = false; };
    if (!members.length) { fail('Pick at least one person.'); return; }
    $('modal-ok').disabled = true;
    try {
      if (st.mode === 'group') {
        const title = $('modal-group-title').value.trim();
        if (!title) { fail('Give the group a title.'); return; }
        const c = await api('POST', '/conversations', { kind: 'group', title, members });
        const conv = upsertConv((c && c.conversation) || c, 'rest');
        closeModal();
        if (conv) { switchTab('chats'); goToConversation(conv.id); }
      } else {
        let last = null;
        for (const a of members) last = await api('POST', `/conversations/${st.convId}/members`, { address: a });
        if (last && typeof last.id === 'number') upsertConv(last, 'frame');
        else if (last && last.conversation) upsertConv(last.conversation, 'frame');
        else ensureMembersFresh(S.convs.get(st.convId) || { id: st.convId });
        closeModal();
      }
    } catch (e) {
      fail(e.message);
    } finally {
      $('modal-ok').disabled = false;
    }
  }

  let leaveTimer = null;
  function confirmLeave(on) {
    const b = $('chat-leave');
    clearTimeout(leaveTimer);
    b.classList.toggle('confirm', on);
    setText(b, on ? 'Really leave?' : 'Leave');
    if (on) leaveTimer = setTimeout(() => confirmLeave(false), 4000);
  }

  async function leaveCurrent() {
    const b = $('chat-leave');
    if (!b.classList.contains('confirm')) { confirmLeave(true); return; }
    confirmLeave(false);
    const id = S.current;
    try {
      await api('DELETE', `/conversations/${id}/members/me`);
      removeConv(id);
      location.hash = '#/';
    } catch (e) {
      toast(e.message);
    }
  }

  // ---------------------------------------------------------------- sign-in / out
  function showLoginError(msg) {
    const e = $('login-error');
    e.textContent = String(msg);
    e.hidden = !msg;
  }

  function showLogin(message) {
    $('app-view').hidden = true;
    $('login-view').hidden = false;
    showLoginError(message || '');
    const a = $('login-address');
    (a.value ? $('login-password') : a).focus();
  }

  async function onLoginSubmit(e) {
    e.preventDefault();
    const address = $('login-address').value.trim();
    const password = $('login-password').value;
    if (!address || !password) { showLoginError('Enter your address and password.'); return; }
    const btn = $('login-submit');
    btn.disabled = true;
    showLoginError('');
    try {
      const r = await api('POST', '/auth/login', { address, password });
      S.csrf = (r && r.csrf_token) || null;
      const user = normUser(r && r.user);
      if (!user) throw new Error('Unexpected answer from the server.');
      $('login-password').value = '';
      askNotificationPermission();
      startApp(user);
    } catch (err) {
      showLoginError(err.message || 'Sign-in failed.');
      $('login-password').select();
    } finally {
      btn.disabled = false;
    }
  }

  function startApp(user) {
    S.me = user;
    rememberUser(user);
    S.signedIn = true;
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    renderMe();
    restoreMyPresence();
    restorePending();
    renderContacts();
    startQueues();
    startAdmin();
    dirty.convs = true;
    scheduleRender();
    connect();
  }

  function teardown() {
    S.signedIn = false;
    clearTimeout(S.reconnectTimer);
    clearInterval(S.pingTimer);
    clearTimeout(S.pongTimer);
    if (S.ws) { const w = S.ws; S.ws = null; try { w.close(1000, 'signed out'); } catch (_) { /* ignore */ } }
  }

  async function signOut() {
    teardown();
    try { await api('POST', '/auth/logout', {}); } catch (_) { /* the session may be gone already */ }
    try {
      const k = pendingKey(); if (k) sessionStorage.removeItem(k);
      const p = presenceKey(); if (p) sessionStorage.removeItem(p);
    } catch (_) { /* ignore */ }
    // A fresh page is the simplest way to drop every piece of state.
    location.replace(location.pathname);
  }

  let ended = false;
  function sessionEnded() {
    if (ended) return;
    ended = true;
    teardown();
    try { sessionStorage.setItem('sb.ended', '1'); } catch (_) { /* ignore */ }
    location.replace(location.pathname);
  }

  async function boot() {
    let ended0 = false;
    try { ended0 = sessionStorage.getItem('sb.ended') === '1'; sessionStorage.removeItem('sb.ended'); } catch (_) { /* ignore */ }
    try {
      const r = await api('GET', '/me');
      if (r && typeof r.csrf_token === 'string') S.csrf = r.csrf_token;
      const user = normUser((r && r.user) || r);
      if (!user) throw new Error('no user');
      startApp(user);
    } catch (e) {
      showLogin(e.status === 401 || e.status === undefined
        ? (ended0 ? 'Your session has ended. Please sign in again.' : '')
        : e.message);
    }
  }

  // ---------------------------------------------------------------- expert queues
  // Experts: their queues with live state, offers (accept / decline, countdown), transfer
  // and end for the chats they took. Everyone: "Get help" asks a queue for a chat, and the
  // header of a queue conversation says where it stands.
  /** How long an offer may wait for its queue's definition before it is shown anyway. */
  const OFFER_DEF_WAIT_MS = 2000;
  const OFFER_GONE_TEXT = {
    taken: 'Taken by another expert', timed_out: 'Timed out', withdrawn: 'Withdrawn', declined: 'Declined',
  };
  const Q = {
    isExpert: false,
    defs: [], // GET /queues
    loaded: false,
    offers: new Map(), // chat -> {f, node, countdown, accept, decline, answers}
    heldOffers: new Map(), // chat -> offer frame waiting for its queue's definition (onQueueOffer)
    chats: new Map(), // chat -> last QueueChat view
    convChat: new Map(), // conversation id -> chat
    accepted: new Set(), // chats this user accepted (expert side)
    seekers: new Map(), // chat -> {seeker, seeker_name, question}
    opened: new Set(), // assigned chats already opened
    fetching: new Set(), // chats whose state was asked for after a reload
    pollTimer: null,
    tickTimer: null,
    loadTimer: null,
    full: new Map(), // queue id -> {def, at} from GET /queues/{id} (canned responses, tags, form)
    fullFetches: new Map(), // queue id -> promise
    waiting: new Map(), // queue id -> {items, at, error}
    offline: new Map(), // queue id -> {items, error}
    workNodes: new Map(), // key -> node of the waiting / offline lists
    listTimer: null,
    listTick: 0,
    listBusy: false,
    listAgain: false,
    listSoon: null,
    picking: new Set(), // chats being picked or taken
    wrapped: new Set(), // chats whose wrap-up was saved or skipped
    wrapDue: new Set(), // chats that ended under this user's eyes (wrap-up asked for)
    wrapSaved: new Set(), // wrap-ups saved in this page
    wrapFor: null, // chat the wrap-up panel was built for
    wrapTimer: null,
    cannedKey: '',
    helpFor: null, // queue whose form fields the "Get help" dialog shows
  };

  function queueKey() { return S.me ? `sb.queues.${S.me.address}` : null; }

  function saveQueueState() {
    const k = queueKey();
    if (!k) return;
    try {
      sessionStorage.setItem(k, JSON.stringify({
        convChat: [...Q.convChat.entries()].slice(-50),
        accepted: [...Q.accepted].slice(-50),
        seekers: [...Q.seekers.entries()].slice(-50),
        wrapped: [...Q.wrapped].slice(-100),
        wrapDue: [...Q.wrapDue].slice(-50),
      }));
    } catch (_) { /* ignore */ }
  }

  function restoreQueueState() {
    const k = queueKey();
    if (!k) return;
    try {
      const v = JSON.parse(sessionStorage.getItem(k) || 'null');
      if (!v) return;
      for (const [c, ch] of v.convChat || []) if (typeof c === 'number' && typeof ch === 'number') Q.convChat.set(c, ch);
      for (const ch of v.accepted || []) if (typeof ch === 'number') { Q.accepted.add(ch); Q.opened.add(ch); }
      for (const [ch, s] of v.seekers || []) if (typeof ch === 'number' && s && typeof s === 'object') Q.seekers.set(ch, s);
      for (const ch of v.wrapped || []) if (typeof ch === 'number') Q.wrapped.add(ch);
      for (const ch of v.wrapDue || []) if (typeof ch === 'number') Q.wrapDue.add(ch);
    } catch (_) { /* ignore */ }
  }

  function myQueues() {
    const me = S.me ? S.me.address : '';
    return Q.defs.filter((d) => (d.members || []).some((m) => lower(m && (m.address || m)) === me));
  }

  async function loadQueues() {
    try {
      const r = await api('GET', '/queues');
      Q.defs = asList(r, 'queues', 'items');
      Q.loaded = true;
      noteQueueManagers(Q.defs);
    } catch (_) { /* keep the last list */ }
    renderQueues();
    renderTransferOptions();
    if (!$('help-modal').hidden) renderHelpQueues();
    if (workVisible()) renderWork();
  }

  /** Reload the queue list soon (several frames in a row cost one request). */
  function queuesChanged() {
    if (Q.loadTimer) return;
    Q.loadTimer = setTimeout(() => { Q.loadTimer = null; loadQueues(); }, 300);
  }

  function startQueues() {
    Q.isExpert = Array.isArray(S.me && S.me.roles) && S.me.roles.map(lower).includes('expert');
    restoreQueueState();
    $('tab-queues').hidden = !Q.isExpert;
    clearInterval(Q.pollTimer);
    Q.pollTimer = setInterval(() => { if (S.signedIn && (Q.isExpert || S.tab === 'queues')) loadQueues(); }, 15000);
    clearInterval(Q.listTimer);
    Q.listTimer = setInterval(workTick, 1000);
    renderQueues();
  }

  // The server's queue state is the public one: "busy" means that no expert could take one
  // more chat now (none is ready, or every ready one is at capacity or holds an offer).
  function stateLabel(s) {
    return s === 'open' ? 'Open' : s === 'busy' ? 'Busy (no expert free)' : s === 'closed' ? 'Closed' : (s || '—');
  }

  /** Offers of queue `id` open to this user now. */
  function liveOffersOf(id) {
    let n = 0;
    for (const o of Q.offers.values()) if (!o.gone && String(o.f.queue || '') === id) n++;
    return n;
  }

  /**
   * A queue's state as the expert sees it: their own readiness and offers first (the public
   * state says "busy" while the only ready expert holds an offer or is at capacity).
   */
  function expertStateLabel(d, state) {
    if (state === 'closed') return 'Closed';
    const ready = S.myState === 'available';
    const offers = liveOffersOf(String(d.id));
    if (offers) return offers === 1 ? 'Offer open for you' : `${offers} offers open for you`;
    if (state === 'busy' && ready) return 'You are ready (no room for more chats)';
    if (state === 'busy') return 'Busy (no expert free)';
    return stateLabel(state);
  }

  function renderQueues() {
    const ready = $('queue-ready');
    ready.checked = S.myState === 'available';
    const list = $('queue-list');
    const frag = document.createDocumentFragment();
    const mine = myQueues();
    if (!Q.loaded) frag.appendChild(el('p', { class: 'empty-note', text: 'Loading…' }));
    else if (!mine.length) frag.appendChild(el('p', { class: 'empty-note', text: 'You are not an expert of any queue.' }));
    for (const d of mine) {
      const state = String(d.state || '');
      const dot = el('span', { class: 'dot', 'data-state': state === 'open' ? 'available' : state === 'busy' ? 'away' : 'offline', 'aria-hidden': 'true' });
      frag.appendChild(el('div', { class: 'row queue-row', 'data-testid': 'queue', 'data-queue': String(d.id), 'data-state': state },
        dot,
        el('div', { class: 'row-main' },
          el('div', { class: 'row-top' }, el('bdi', { class: 'row-title', text: String(d.display_name || d.id) }),
            el('span', { class: 'row-time', 'data-testid': 'queue-status', text: expertStateLabel(d, state) })),
          el('div', { class: 'row-bottom' }, el('span', { class: 'row-note', 'data-testid': 'queue-counts',
            text: `${Number(d.experts_ready) || 0} free · ${Number(d.seekers_waiting) || 0} waiting · ${String(d.method || '')}` })))));
    }
    list.replaceChildren(frag);
  }

  function renderTransferOptions() {
    const dl = $('transfer-options');
    const frag = document.createDocumentFragment();
    for (const d of Q.defs) {
      if (d.enabled === false) continue; // listed to its managers, but takes no chats
      frag.appendChild(el('option', { value: String(d.id), label: String(d.display_name || d.id) }));
    }
    dl.replaceChildren(frag);
  }

  // --- offers
  function renderOffersBox() {
    const box = $('offers');
    const n = [...Q.offers.values()].filter((o) => !o.gone).length;
    box.hidden = box.childElementCount === 0;
    const b = $('tab-queues-count');
    b.hidden = n === 0;
    setText(b, String(n));
    renderQueues(); // the queues' states as this expert sees them follow their offers
  }

  function onQueueOffer(f) {
    const chat = Number(f.chat);
    if (!chat) return;
    if (f.seeker) {
      Q.seekers.set(chat, {
        seeker: lower(f.seeker), seeker_name: String(f.seeker_name || ''), question: String(f.question || ''),
        answers: cleanAnswers(f.answers), queue: String(f.queue || ''),
      });
      if (f.seeker_name && !S.users.has(lower(f.seeker))) rememberUser({ address: f.seeker, display_name: String(f.seeker_name) });
      saveQueueState();
    }
    if (typeof f.conversation === 'number') Q.convChat.set(f.conversation, chat);
    // The offer can come before this queue's definition (the labels of its pre-chat form):
    // just after signing in, before GET /queues has answered, or after the form changed. Then
    // the offer is held until the definition is here (for a moment at most), so that it is
    // shown whole, labels and all, rather than with raw field names.
    const queueId = String(f.queue || '');
    Q.heldOffers.delete(chat);
    if (!Q.offers.has(chat) && unlabelled(queueId, f.answers).length) {
      Q.heldOffers.set(chat, f);
      const left = toMs(f.expires_at) ? toMs(f.expires_at) - Date.now() : 30000;
      const wait = new Promise((r) => setTimeout(r, Math.max(0, Math.min(OFFER_DEF_WAIT_MS, left / 4))));
      Promise.race([ensureQueueDef(queueId, 0), wait]).then(() => {
        if (Q.heldOffers.get(chat) !== f) return; // gone, or offered again, meanwhile
        Q.heldOffers.delete(chat);
        showOffer(chat, f);
      });
      return;
    }
    showOffer(chat, f);
  }

  /** Labels of the pre-chat answers that the known definition of queue `queueId` lacks. */
  function unlabelled(queueId, answers) {
    const a = cleanAnswers(answers);
    const d = queueDef(queueId);
    const fields = d && Array.isArray(d.form) ? d.form : [];
    return Object.keys(a).filter((k) => a[k] !== '' && !fields.some((x) => x && x.name === k));
  }

  /** Draws the pre-chat answers of the offers shown again (their queue's definition came). */
  function redrawOfferAnswers() {
    for (const o of Q.offers.values()) {
      if (o.gone || !o.answers) continue;
      const n = answersNode(String(o.f.queue || ''), o.f.answers, 'offer-answers');
      if (n) { o.answers.replaceWith(n); o.answers = n; }
    }
  }

  function showOffer(chat, f) {
    let o = Q.offers.get(chat);
    if (o) { o.node.remove(); clearTimeout(o.goneTimer); }
    const countdown = el('span', { class: 'offer-countdown', 'data-testid': 'offer-countdown' });
    const accept = el('button', { type: 'button', class: 'primary small', 'data-testid': 'offer-accept', text: 'Accept' });
    const decline = el('button', { type: 'button', class: 'ghost small', 'data-testid': 'offer-decline', text: 'Decline' });
    const seekerName = String(f.seeker_name || '');
    const seeker = lower(f.seeker);
    const answers = answersNode(String(f.queue || ''), f.answers, 'offer-answers');
    const node = el('div', { class: 'offer', 'data-testid': 'offer', 'data-chat': String(chat), role: 'alert' },
      el('div', { class: 'offer-top' },
        el('span', { class: 'offer-queue', 'data-testid': 'offer-queue', text: String(f.queue_name || f.queue || 'Queue') }),
        countdown),
      el('div', { class: 'offer-seeker', 'data-testid': 'offer-seeker' },
        el('span', { class: 'offer-seeker-name', text: seekerName || seeker }),
        seekerName && seeker ? el('span', { class: 'offer-seeker-addr', text: ` ${seeker}` }) : null),
      el('div', { class: 'offer-question', 'data-testid': 'offer-question', text: String(f.question || '') }),
      answers,
      el('div', { class: 'offer-actions' }, decline, accept));
    o = { f, node, countdown, accept, decline, answers, expires: toMs(f.expires_at), gone: false };
    Q.offers.set(chat, o);
    accept.addEventListener('click', () => acceptOffer(chat));
    decline.addEventListener('click', () => declineOffer(chat));
    $('offers').appendChild(node);
    tickOffers();
    if (!Q.tickTimer) Q.tickTimer = setInterval(tickOffers, 250);
    renderOffersBox();
    notifyOffer(f);
    queuesChanged();
  }

  function tickOffers() {
    const now = Date.now();
    let live = 0;
    for (const [chat, o] of [...Q.offers.entries()]) {
      if (o.gone) continue;
      // Safety net (a frame missed while reconnecting): well past its expiry, it is gone.
      if (o.expires && now > o.expires + 5000) { offerGone(chat, 'timed_out'); continue; }
      live++;
      const left = Math.max(0, Math.ceil((o.expires - now) / 1000));
      setText(o.countdown, o.expires ? `${left} s` : '');
      o.countdown.setAttribute('data-seconds', String(left));
      o.node.classList.toggle('urgent', left <= 5);
    }
    if (!live && Q.tickTimer) { clearInterval(Q.tickTimer); Q.tickTimer = null; }
  }

  function acceptOffer(chat) {
    const o = Q.offers.get(chat);
    if (!o || o.gone) return;
    Q.accepted.add(chat);
    saveQueueState();
    o.accept.disabled = true;
    o.decline.disabled = true;
    setText(o.accept, 'Accepting…');
    if (!sendFrame({ type: 'accept', chat })) {
      api('POST', `/queue-chats/${chat}/accept`, {})
        .then((v) => { if (v && v.chat) onQueueChat(v); })
        .catch((e) => { Q.accepted.delete(chat); offerGone(chat, '', e.message); });
    }
    // Whatever happens, do not leave the buttons dead.
    setTimeout(() => {
      const cur = Q.offers.get(chat);
      if (cur === o && !o.gone) { o.accept.disabled = false; o.decline.disabled = false; setText(o.accept, 'Accept'); }
    }, 8000);
  }

  function declineOffer(chat) {
    const o = Q.offers.get(chat);
    if (!o || o.gone) return;
    if (!sendFrame({ type: 'decline', chat })) api('POST', `/queue-chats/${chat}/decline`, {}).catch(() => {});
    offerGone(chat, 'declined');
  }

  /** Removes an offer; shows the reason for a few seconds when there is one. */
  function offerGone(chat, reason, text) {
    Q.heldOffers.delete(chat);
    const o = Q.offers.get(chat);
    if (!o || o.gone) return;
    o.gone = true;
    const why = text || OFFER_GONE_TEXT[reason] || '';
    if (!why || reason === 'accepted') {
      o.node.remove();
      Q.offers.delete(chat);
    } else {
      o.node.setAttribute('data-testid', 'offer-gone');
      o.node.setAttribute('data-reason', String(reason || 'error'));
      o.node.classList.add('gone');
      o.node.replaceChildren(
        el('span', { class: 'offer-queue', text: String(o.f.queue_name || o.f.queue || '') }),
        el('span', { class: 'offer-gone-text', 'data-testid': 'offer-gone-reason', text: ` — ${why}` }));
      o.goneTimer = setTimeout(() => {
        o.node.remove();
        if (Q.offers.get(chat) === o) Q.offers.delete(chat);
        renderOffersBox();
      }, 4000);
    }
    renderOffersBox();
    tickOffers();
  }

  function notifyOffer(f) {
    try {
      if (!('Notification' in window) || Notification.permission !== 'granted' || !document.hidden) return;
      const n = new Notification(`Chat request: ${String(f.queue_name || f.queue || '')}`, {
        body: `${String(f.seeker_name || f.seeker || '')}: ${String(f.question || '')}`.slice(0, 200),
        tag: `sb-offer-${f.chat}`,
      });
      n.onclick = () => { window.focus(); n.close(); };
    } catch (_) { /* unsupported */ }
  }

  // --- chat state
  function isExpertOf(chat) {
    const v = Q.chats.get(chat);
    return Q.accepted.has(chat) || !!(v && S.me && lower(v.expert) === S.me.address);
  }

  async function openWhenKnown(convId) {
    for (let i = 0; i < 20 && !S.convs.has(convId); i++) {
      S.convFetches.delete(convId);
      await ensureConv(convId);
      if (!S.convs.has(convId)) await new Promise((r) => setTimeout(r, 150));
    }
    if (S.convs.has(convId)) { switchTab('chats'); goToConversation(convId); }
  }

  function onQueueChat(f) {
    const chat = Number(f.chat);
    if (!chat) return;
    const prev = Q.chats.get(chat);
    const v = Object.assign({}, prev || {}, f);
    delete v.type;
    Q.chats.set(chat, v);
    if (typeof v.conversation === 'number') Q.convChat.set(v.conversation, chat);
    if (v.state === 'assigned') {
      const mineNow = S.me && lower(v.expert) === S.me.address;
      if (Q.accepted.has(chat) || mineNow) {
        if (mineNow) Q.accepted.add(chat);
        offerGone(chat, 'accepted');
        if (!Q.opened.has(chat) && typeof v.conversation === 'number') {
          Q.opened.add(chat);
          openWhenKnown(v.conversation);
        }
      }
    }
    if (v.state !== 'waiting' && v.state !== 'assigned') {
      offerGone(chat, 'withdrawn');
    }
    // The chat ended under this expert's eyes (End, or the seeker left): ask for a wrap-up.
    const ended = v.state === 'wrap_up' || v.state === 'closed' || v.state === 'abandoned';
    const wasOpen = !!prev && (prev.state === 'assigned' || prev.state === 'wrap_up');
    if (ended && (wasOpen || v.state === 'wrap_up') && !Q.wrapped.has(chat) && isExpertOf(chat)) Q.wrapDue.add(chat);
    saveQueueState();
    if (v.conversation === S.current) renderQueueBar();
    queuesChanged();
  }

  /**
   * After a reconnection: the chats this page last knew open may have ended while it was
   * away (a waiting chat whose seeker had no connection for the server's grace period
   * leaves the line). The server replays only the chats still open, so ask about the others:
   * one no longer found is over.
   */
  function recheckQueueChats() {
    for (const [chat, v] of Q.chats) {
      const was = v && v.state;
      if (was !== 'waiting' && was !== 'assigned' && was !== 'wrap_up') continue;
      api('GET', `/queue-chats/${chat}`)
        .then((r) => { if (r && r.chat) onQueueChat(r); })
        .catch((e) => {
          if (e.status !== 404) return; // unreachable again: the next reconnection asks again
          const cur = Q.chats.get(chat);
          if (!cur || cur.state !== was) return; // a frame told meanwhile
          // Gone from the line while this seeker was away (abandoned, or overflowed: the
          // server does not say which any more); any other chat simply closed.
          const leftLine = was === 'waiting' && !isExpertOf(chat);
          onQueueChat({ chat, state: leftLine ? 'ended' : 'closed', left_line: leftLine, position: null, estimated_wait_s: null });
        });
    }
  }

  /**
   * The assigned expert as the seeker sees them: the display name the server gives
   * (`expert_name`), else the directory's name for their address; '' when the queue does
   * not show its experts.
   */
  function expertNameOf(v) {
    const n = typeof v.expert_name === 'string' ? v.expert_name.trim() : '';
    if (n) return n;
    return v.expert ? displayName(v.expert) : '';
  }

  /** A queue chat's state for its status bar, as a line (names isolated: see U()). */
  function queueChatStatusText(v, expertSide) {
    if (!v) return '';
    const st = v.state;
    if (st === 'waiting') {
      if (expertSide) return 'Transferred — waiting for the next expert';
      const parts = ['Waiting for an expert'];
      if (typeof v.position === 'number') parts.push(v.position === 1 ? 'you are next' : `number ${v.position} in line`);
      if (typeof v.estimated_wait_s === 'number') parts.push(v.estimated_wait_s < 60 ? 'less than a minute' : `about ${Math.round(v.estimated_wait_s / 60)} min`);
      return parts.join(' · ');
    }
    if (st === 'assigned') {
      if (expertSide) {
        const s = Q.seekers.get(v.chat);
        const who = s ? (s.seeker_name || s.seeker) : '';
        return [v.queue_name || v.queue ? U(v.queue_name || v.queue) : 'Queue', ' chat', ...(who ? [' with ', U(who)] : [])];
      }
      const who = expertNameOf(v);
      return who ? ['Connected to ', U(who)] : 'Connected to an expert';
    }
    if (st === 'offline') {
      if (expertSide) {
        const s = Q.seekers.get(v.chat);
        const who = s ? (s.seeker_name || s.seeker) : '';
        return ['Offline message', ...(who ? [' from ', U(who)] : []), ' — your answer reaches them here'];
      }
      return v.message ? String(v.message) : 'Nobody can answer right now. Leave your message here; an expert will answer it later.';
    }
    if (st === 'wrap_up') return expertSide ? 'Chat ended — wrap-up' : 'Chat ended';
    if (st === 'overflowed') return v.message ? String(v.message) : 'No expert could take this chat.';
    if (st === 'abandoned') return expertSide ? 'The seeker left the chat.' : 'You left the line. Use Get help to ask again.';
    if (st === 'ended' && v.left_line && !expertSide) return 'This chat left the line while you were away. Use Get help to ask again.';
    return 'Chat ended';
  }

  /** The queue a chat belongs to, as far as this page knows. */
  function queueOf(chat) {
    const v = Q.chats.get(chat);
    const s = Q.seekers.get(chat);
    return String((v && v.queue) || (s && s.queue) || '');
  }

  /** Who asked and what, for the expert: from the offer / waiting list, else the chat view. */
  function seekerInfo(chat) {
    const s = Q.seekers.get(chat) || {};
    const v = Q.chats.get(chat) || {};
    const answers = s.answers && Object.keys(s.answers).length ? s.answers : cleanAnswers(v.answers);
    return {
      seeker: s.seeker || '', seeker_name: s.seeker_name || '',
      question: s.question || (typeof v.question === 'string' ? v.question : ''), answers,
    };
  }

  function renderQueueBar() {
    const conv = S.convs.get(S.current);
    const bar = $('queue-bar');
    if (!conv || conv.kind !== 'queue') {
      bar.hidden = true;
      $('canned-select').hidden = true;
      stopWrapTimer();
      return;
    }
    const chat = Q.convChat.get(conv.id);
    const v = chat ? Q.chats.get(chat) : null;
    const expertSide = chat ? isExpertOf(chat) : false;
    bar.hidden = false;
    if (bar.getAttribute('data-chat') !== (chat ? String(chat) : '')) {
      $('invite-expert-error').hidden = true;
      $('invite-expert-target').value = '';
    }
    bar.setAttribute('data-chat', chat ? String(chat) : '');
    bar.setAttribute('data-state', v ? String(v.state || '') : '');
    const st = $('queue-chat-status');
    setRich(st, v ? queueChatStatusText(v, expertSide) : (chat ? '' : 'Queue chat'));
    st.setAttribute('data-state', v ? String(v.state || '') : '');
    const open = !!v && (v.state === 'assigned' || v.state === 'waiting');
    const assigned = expertSide && !!v && v.state === 'assigned';
    $('transfer-form').hidden = !assigned;
    $('invite-expert-form').hidden = !assigned;
    $('end-queue-chat').hidden = !(chat && open);
    const queueId = chat ? queueOf(chat) : '';
    if (expertSide && queueId) ensureQueueDef(queueId);
    const info = chat && expertSide ? seekerInfo(chat) : null;
    const qn = $('queue-chat-question');
    setRich(qn, info && info.question ? ['Question: ', U(info.question)] : '');
    qn.hidden = !(info && info.question);
    const an = $('queue-chat-answers');
    const akey = info ? JSON.stringify([chat, queueId, info.answers, !!queueDef(queueId)]) : '';
    if (an.getAttribute('data-key') !== akey) {
      an.setAttribute('data-key', akey);
      const node = info ? answersNode(queueId, info.answers, 'answers') : null;
      an.replaceChildren(...(node ? [node] : []));
    }
    an.hidden = !an.firstChild;
    renderCanned(assigned ? queueId : '');
    if (assigned) renderInviteOptions(queueId, conv);
    renderWrapup(chat, v, expertSide);
    // After a reload the chat's state is not known yet: ask for it once.
    if (chat && !v && !Q.fetching.has(chat)) {
      Q.fetching.add(chat);
      api('GET', `/queue-chats/${chat}`)
        .then((r) => { if (r && r.chat) onQueueChat(r); })
        .catch((e) => { if (e.status === 404) onQueueChat({ chat, state: 'closed', conversation: conv.id }); });
    }
  }

  async function submitTransfer() {
    const chat = Q.convChat.get(S.current);
    const target = $('transfer-target').value.trim();
    if (!chat || !target) { $('transfer-target').focus(); return; }
    const t = lower(target);
    const q = Q.defs.find((d) => lower(d.id) === t || lower(d.display_name) === t || lower(d.address) === t);
    const body = q ? { queue: String(q.id) } : (t.includes('@') ? { expert: t } : { queue: t });
    $('transfer-submit').disabled = true;
    try {
      const r = await api('POST', `/queue-chats/${chat}/transfer`, body);
      $('transfer-target').value = '';
      toast(['Transferred to ', U(q ? (q.display_name || q.id) : target), '.']);
      if (r && r.chat) onQueueChat(r);
    } catch (e) {
      toast(e.message);
    } finally {
      $('transfer-submit').disabled = false;
    }
  }

  async function endQueueChat() {
    const chat = Q.convChat.get(S.current);
    if (!chat) return;
    $('end-queue-chat').disabled = true;
    try {
      const r = await api('POST', `/queue-chats/${chat}/end`, {});
      if (r && r.chat) onQueueChat(r);
      const v = Q.chats.get(chat);
      if (v && (v.state === 'assigned' || v.state === 'waiting')) {
        onQueueChat({ chat, state: v.state === 'waiting' ? 'abandoned' : 'closed' });
        // In case the server holds it in wrap-up (and its frame has not come yet).
        if (isExpertOf(chat)) {
          api('GET', `/queue-chats/${chat}`).then((cur) => {
            const now = Q.chats.get(chat);
            if (cur && cur.chat && now && now.state === 'closed' && cur.state === 'wrap_up' && !Q.wrapped.has(chat)) onQueueChat(cur);
          }).catch(() => {});
        }
      }
    } catch (e) {
      toast(e.message);
    } finally {
      $('end-queue-chat').disabled = false;
    }
  }

  // --- queue definitions as the console needs them (canned responses, tags, form labels)
  function queueDef(id) {
    if (!id) return null;
    const f = Q.full.get(String(id));
    return (f && f.def) || Q.defs.find((d) => String(d.id) === String(id)) || null;
  }

  /** GET /queues/{id} at most every maxAgeMs; the views that use it are re-rendered after. */
  function ensureQueueDef(id, maxAgeMs = 30000) {
    const key = String(id || '');
    if (!key) return Promise.resolve(null);
    const f = Q.full.get(key);
    if (f && Date.now() - f.at < maxAgeMs) return Promise.resolve(f.def);
    if (Q.fullFetches.has(key)) return Q.fullFetches.get(key);
    const p = api('GET', `/queues/${encodeURIComponent(key)}`)
      .then((d) => {
        const def = d && typeof d === 'object' ? (d.queue && typeof d.queue === 'object' ? d.queue : d) : null;
        Q.full.set(key, { def, at: Date.now() });
        return def;
      }, () => {
        Q.full.set(key, { def: f ? f.def : null, at: Date.now() });
        return null;
      })
      .finally(() => {
        Q.fullFetches.delete(key);
        if (S.current !== null) renderQueueBar();
        if (!$('help-modal').hidden) renderHelpFields();
      });
    Q.fullFetches.set(key, p);
    return p;
  }

  /** Pre-chat answers as {name: text}; anything else is dropped. */
  function cleanAnswers(a) {
    const out = {};
    if (!a || typeof a !== 'object' || Array.isArray(a)) return out;
    for (const [k, v] of Object.entries(a)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[String(k)] = String(v);
    }
    return out;
  }

  /** The answers as a definition list (label: value), in the order of the queue's form. */
  function answersNode(queueId, answers, testid) {
    const a = cleanAnswers(answers);
    const keys = Object.keys(a).filter((k) => a[k] !== '');
    if (!keys.length) return null;
    const d = queueDef(queueId);
    const fields = d && Array.isArray(d.form) ? d.form.filter((x) => x && typeof x.name === 'string') : [];
    const order = fields.map((x) => x.name).filter((n) => keys.includes(n));
    for (const k of keys) if (!order.includes(k)) order.push(k);
    const dl = el('dl', { class: 'answers', 'data-testid': testid || 'answers' });
    // A field without its label: this queue's definition is not here yet; fetch it once and
    // draw the offers' answers again (the queue bar and the lists redraw by themselves).
    if (keys.some((k) => !fields.some((x) => x.name === k)) && !Q.full.has(String(queueId))) {
      ensureQueueDef(queueId).then(redrawOfferAnswers);
    }
    for (const k of order) {
      const fdef = fields.find((x) => x.name === k);
      const label = fdef && fdef.label ? String(fdef.label) : k;
      dl.appendChild(el('div', { class: 'answer', 'data-testid': 'answer', 'data-name': k },
        el('dt', { class: 'answer-name', text: label, title: k }), el('dd', { class: 'answer-value', 'data-testid': 'answer-value', text: a[k] })));
    }
    return dl;
  }

  // --- canned responses (inserted into the composer, never sent by themselves)
  let cannedList = [];

  function cannedOf(queueId) {
    const d = queueDef(queueId);
    if (!d || !Array.isArray(d.canned)) return [];
    return d.canned.filter((c) => c && typeof c === 'object' && (c.text || c.title))
      .map((c) => ({ title: String(c.title || ''), text: String(c.text || '') }));
  }

  function renderCanned(queueId) {
    const sel = $('canned-select');
    const list = queueId ? cannedOf(queueId) : [];
    sel.hidden = !list.length;
    const key = JSON.stringify([queueId, list]);
    if (key === Q.cannedKey) return;
    Q.cannedKey = key;
    cannedList = list;
    const frag = document.createDocumentFragment();
    frag.appendChild(el('option', { value: '', text: 'Canned…' }));
    list.forEach((c, i) => frag.appendChild(el('option', {
      value: String(i), title: c.text, 'data-testid': 'canned-option', text: c.title || (c.text.length > 40 ? `${c.text.slice(0, 39)}…` : c.text),
    })));
    sel.replaceChildren(frag);
    sel.value = '';
  }

  function insertCanned() {
    const sel = $('canned-select');
    const c = sel.value === '' ? null : cannedList[Number(sel.value)];
    sel.value = '';
    if (!c || S.current === null) return;
    const box = $('composer');
    const len = box.value.length;
    const focused = document.activeElement === box;
    const start = focused ? box.selectionStart : len;
    const end = focused ? box.selectionEnd : len;
    const before = box.value.slice(0, start);
    const text = before && !/\s$/.test(before) ? ` ${c.text}` : c.text;
    box.setRangeText(text, start, end, 'end');
    box.focus();
    onComposerInput();
  }

  // --- inviting a colleague into the chat (conference)
  function renderInviteOptions(queueId, conv) {
    const d = queueDef(queueId);
    const inConv = new Set(conv.members || []);
    if (S.me) inConv.add(S.me.address);
    const members = d && Array.isArray(d.members) ? d.members.map((m) => lower(m && (m.address || m))) : [];
    const opts = members.filter((a) => a && !inConv.has(a));
    const dl = $('invite-expert-options');
    const key = opts.join(',');
    if (dl.getAttribute('data-key') === key) return;
    dl.setAttribute('data-key', key);
    dl.replaceChildren(...opts.map((a) => el('option', { value: a, label: displayName(a) })));
  }

  async function submitInvite() {
    const chat = Q.convChat.get(S.current);
    const input = $('invite-expert-target');
    const err = $('invite-expert-error');
    const fail = (m) => { setText(err, m); err.hidden = !m; };
    let t = input.value.trim();
    const m = /<([^<>\s]+@[^<>\s]+)>\s*$/.exec(t);
    if (m) t = m[1];
    t = lower(t);
    if (!chat) return;
    if (!t) { input.focus(); return; }
    if (!/^[^@\s]+@[^@\s]+$/.test(t)) { fail('Enter the expert\'s address (name@domain).'); input.focus(); return; }
    fail('');
    const btn = $('invite-expert-submit');
    btn.disabled = true;
    try {
      await api('POST', `/queue-chats/${chat}/invite`, { expert: t });
      input.value = '';
      toast(['Invited ', U(displayName(t)), ' into the chat.']);
      const conv = S.convs.get(S.current);
      if (conv) ensureMembersFresh(conv);
    } catch (e) {
      fail(e.message);
    } finally {
      btn.disabled = false;
    }
  }

  // --- wrap-up (tags and a note after a chat ended)
  function wrapupTags(queueId) {
    const d = queueDef(queueId);
    return d && Array.isArray(d.wrap_up_tags) ? d.wrap_up_tags.map(String).filter(Boolean) : [];
  }

  function wrapupWanted(chat, v, expertSide) {
    if (!chat || !v || !expertSide || Q.wrapped.has(chat)) return false;
    if (v.state === 'wrap_up') return true;
    return Q.wrapDue.has(chat) && (v.state === 'closed' || v.state === 'abandoned') && wrapupTags(queueOf(chat)).length > 0;
  }

  function stopWrapTimer() {
    clearInterval(Q.wrapTimer);
    Q.wrapTimer = null;
  }

  function renderWrapup(chat, v, expertSide) {
    const form = $('wrapup-form');
    $('wrapup-done').hidden = !(chat && Q.wrapSaved.has(chat));
    if (!wrapupWanted(chat, v, expertSide)) {
      form.hidden = true;
      form.removeAttribute('data-chat');
      stopWrapTimer();
      return;
    }
    const tags = wrapupTags(queueOf(chat));
    const key = JSON.stringify([chat, tags]);
    if (Q.wrapFor !== key) {
      const sameChat = form.getAttribute('data-chat') === String(chat);
      const checked = new Set(sameChat ? [...form.querySelectorAll('[data-testid=wrapup-tag]:checked')].map((i) => i.value) : []);
      Q.wrapFor = key;
      const box = $('wrapup-tags');
      const legend = box.querySelector('legend');
      box.replaceChildren(legend, ...tags.map((t) => {
        const cb = el('input', { type: 'checkbox', value: t, 'data-testid': 'wrapup-tag', 'data-tag': t });
        cb.checked = checked.has(t);
        return el('label', { class: 'wrapup-tag' }, cb, el('span', { text: t }));
      }));
      box.hidden = !tags.length;
      if (!sameChat) {
        $('wrapup-note').value = '';
        $('wrapup-error').hidden = true;
      }
    }
    form.setAttribute('data-chat', String(chat));
    form.setAttribute('data-state', String(v.state || ''));
    form.hidden = false;
    tickWrapup();
    if (v.state === 'wrap_up' && toMs(v.wrap_up_until) && !Q.wrapTimer) Q.wrapTimer = setInterval(tickWrapup, 1000);
  }

  function tickWrapup() {
    const chat = S.current !== null ? Q.convChat.get(S.current) : null;
    const v = chat ? Q.chats.get(chat) : null;
    const cd = $('wrapup-countdown');
    const until = v && v.state === 'wrap_up' ? toMs(v.wrap_up_until) : 0;
    if (!until || $('wrapup-form').hidden) {
      setText(cd, v && v.state !== 'wrap_up' ? 'The chat is closed; the wrap-up can still be saved.' : '');
      cd.removeAttribute('data-seconds');
      stopWrapTimer();
      return;
    }
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    const mmss = left >= 60 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} min` : `${left} s`;
    setText(cd, left > 0 ? `Closes by itself in ${mmss}` : 'Closing…');
    cd.setAttribute('data-seconds', String(left));
  }

  async function submitWrapup(skip) {
    const chat = S.current !== null ? Q.convChat.get(S.current) : null;
    if (!chat) return;
    const v = Q.chats.get(chat);
    const done = (saved) => {
      Q.wrapped.add(chat);
      Q.wrapDue.delete(chat);
      if (saved) Q.wrapSaved.add(chat);
      saveQueueState();
    };
    if (skip && !(v && v.state === 'wrap_up')) { done(false); renderQueueBar(); return; }
    const tags = skip ? [] : [...document.querySelectorAll('#wrapup-tags [data-testid=wrapup-tag]:checked')].map((i) => i.value);
    const note = skip ? '' : $('wrapup-note').value.trim();
    const err = $('wrapup-error');
    err.hidden = true;
    $('wrapup-submit').disabled = true;
    $('wrapup-skip').disabled = true;
    try {
      await api('POST', `/queue-chats/${chat}/wrapup`, { tags, note });
      done(!skip);
      const cur = Q.chats.get(chat);
      if (cur && cur.state === 'wrap_up') onQueueChat({ chat, state: 'closed', wrap_up_until: null });
      if (S.current !== null && Q.convChat.get(S.current) === chat) renderQueueBar();
    } catch (e) {
      setText(err, e.message);
      err.hidden = false;
    } finally {
      $('wrapup-submit').disabled = false;
      $('wrapup-skip').disabled = false;
    }
  }

  // --- the waiting list and offline messages of the expert's queues (Queues tab)
  const WORK_EVERY_TICKS = 5; // refresh every 5 s (the tick is 1 s) while shown

  function workVisible() {
    return S.signedIn && Q.isExpert && S.tab === 'queues' && !$('queue-panel').hidden && document.visibilityState === 'visible';
  }

  function workQueues() {
    return myQueues().filter((d) => d.enabled !== false);
  }

  /** A queue frame arrived: refresh the lists soon (several frames cost one round). */
  function workChanged() {
    if (!workVisible()) return;
    clearTimeout(Q.listSoon);
    Q.listSoon = setTimeout(refreshWork, 200);
  }

  function workTick() {
    if (!workVisible()) return;
    Q.listTick += 1;
    if (Q.listTick >= WORK_EVERY_TICKS) refreshWork();
    else tickWaited();
  }

  async function refreshWork() {
    if (!workVisible()) return;
    if (Q.listBusy) { Q.listAgain = true; return; }
    Q.listBusy = true;
    Q.listTick = 0;
    try {
      await Promise.all(workQueues().map(async (d) => {
        const id = String(d.id);
        const enc = encodeURIComponent(id);
        const [w, o] = await Promise.all([
          api('GET', `/queues/${enc}/waiting`).then((r) => ({ items: asList(r, 'waiting', 'items') }), (e) => ({ error: e })),
          api('GET', `/queues/${enc}/offline`).then((r) => ({ items: asList(r, 'messages', 'items') }), (e) => ({ error: e })),
        ]);
        const at = Date.now();
        const prevW = Q.waiting.get(id);
        Q.waiting.set(id, w.error
          ? { items: prevW ? prevW.items : [], at: prevW ? prevW.at : at, error: w.error.message }
          : { items: w.items.filter((x) => x && Number(x.chat)), at, error: '' });
        Q.offline.set(id, o.error
          ? { items: [], error: o.error.status === 404 ? '' : o.error.message, none: o.error.status === 404 }
          : { items: o.items.filter((x) => x && Number(x.chat)), error: '' });
      }));
    } finally {
      Q.listBusy = false;
    }
    renderWork();
    if (Q.listAgain) { Q.listAgain = false; workChanged(); }
  }

  function workNode(key, build) {
    let r = Q.workNodes.get(key);
    if (!r) { r = build(); Q.workNodes.set(key, r); }
    return r;
  }

  function buildWorkSection(id) {
    const title = el('h3', { class: 'work-title', 'data-testid': 'work-queue-name' });
    const wCount = el('span', { class: 'work-count', 'data-testid': 'waiting-count' });
    const wHint = el('span', { class: 'work-hint muted' });
    const wList = el('div', { class: 'work-list', 'data-testid': 'waiting-list', 'data-queue': id });
    const wEmpty = el('p', { class: 'empty-note work-empty' });
    const oCount = el('span', { class: 'work-count', 'data-testid': 'offline-count' });
    const oList = el('div', { class: 'work-list', 'data-testid': 'offline-list', 'data-queue': id });
    const oEmpty = el('p', { class: 'empty-note work-empty' });
    const oHead = el('h4', { class: 'work-head' }, 'Offline messages ', oCount);
    const err = el('p', { class: 'queue-bar-error', 'data-testid': 'work-error', role: 'alert' });
    err.hidden = true;
    const node = el('section', { class: 'work', 'data-testid': 'queue-work-section', 'data-queue': id },
      title,
      el('h4', { class: 'work-head' }, 'Waiting ', wCount, wHint), wList,
      oHead, oList, err);
    return { node, title, wCount, wHint, wList, wEmpty, oCount, oHead, oList, oEmpty, err };
  }

  function renderWork() {
    const box = $('queue-work');
    const wanted = [];
    for (const d of workQueues()) {
      const id = String(d.id);
      const sec = workNode(`s:${id}`, () => buildWorkSection(id));
      setText(sec.title, String(d.display_name || id));
      setText(sec.wHint, d.method === 'manual' ? ' · pick a chat to take it' : '');
      const w = Q.waiting.get(id);
      const o = Q.offline.get(id);
      setText(sec.wCount, w ? String(w.items.length) : '…');
      const wn = w ? w.items.map((it) => fillWaiting(id, it, w.at)) : [];
      if (!wn.length) { setText(sec.wEmpty, w ? 'Nobody is waiting.' : 'Loading…'); wn.push(sec.wEmpty); }
      reconcile(sec.wList, wn);
      const noOffline = !!(o && o.none);
      sec.oHead.hidden = noOffline;
      sec.oList.hidden = noOffline;
      const open = o ? o.items.filter((it) => !it.taken_by).length : 0;
      setText(sec.oCount, o ? String(open) : '…');
      const on = o ? o.items.slice(0, 30).map((it) => fillOffline(id, it)) : [];
      if (!on.length) { setText(sec.oEmpty, o ? 'No offline messages.' : 'Loading…'); on.push(sec.oEmpty); }
      reconcile(sec.oList, on);
      const errText = [w && w.error, o && o.error].filter(Boolean).join(' ');
      if (errText || !sec.keepError) { setText(sec.err, errText); sec.err.hidden = !errText; }
      wanted.push(sec.node);
    }
    reconcile(box, wanted);
    for (const [k, r] of [...Q.workNodes.entries()]) if (!r.node.isConnected) Q.workNodes.delete(k);
  }

  function fillWaiting(qid, it, at) {
    const chat = Number(it.chat);
    const r = workNode(`w:${chat}`, () => {
      const pick = el('button', { type: 'button', class: 'primary small', 'data-testid': 'waiting-pick', text: 'Pick' });
      pick.addEventListener('click', () => pickChat(chat));
      const name = el('span', { class: 'work-seeker', 'data-testid': 'waiting-seeker' });
      const waited = el('span', { class: 'work-time', 'data-testid': 'waiting-waited' });
      const question = el('div', { class: 'work-question', 'data-testid': 'waiting-question' });
      const answers = el('div', { class: 'work-answers' });
      const node = el('div', { class: 'work-item', 'data-testid': 'waiting', 'data-chat': String(chat) },
        el('div', { class: 'work-top' }, name, waited), question, answers, el('div', { class: 'work-actions' }, pick));
      return { node, name, waited, question, answers, pick };
    });
    r.item = it;
    r.qid = qid;
    r.at = at;
    r.base = Number(it.waited_s) || 0;
    const seeker = lower(it.seeker);
    setText(r.name, it.seeker_name ? String(it.seeker_name) : (seeker || 'Someone'));
    r.name.title = seeker;
    setText(r.question, String(it.question || ''));
    const akey = JSON.stringify([it.answers || null, !!queueDef(qid)]);
    if (r.akey !== akey) {
      r.akey = akey;
      const a = answersNode(qid, it.answers, 'waiting-answers');
      r.answers.replaceChildren(...(a ? [a] : []));
    }
    paintWaited(r);
    r.pick.disabled = Q.picking.has(chat);
    return r.node;
  }

  function paintWaited(r) {
    const s = r.base + Math.max(0, (Date.now() - r.at) / 1000);
    setText(r.waited, `waiting ${fmtSeconds(s)}`);
    r.waited.setAttribute('data-seconds', String(Math.floor(s)));
  }

  function tickWaited() {
    for (const [k, r] of Q.workNodes) if (k.startsWith('w:')) paintWaited(r);
  }

  function showWorkError(qid, msg) {
    const sec = Q.workNodes.get(`s:${qid}`);
    if (!sec) { if (msg) toast(msg); return; }
    setText(sec.err, msg);
    sec.err.hidden = !msg;
    sec.keepError = !!msg;
  }

  function rememberSeeker(chat, it, qid) {
    const seeker = lower(it.seeker);
    Q.seekers.set(chat, {
      seeker, seeker_name: String(it.seeker_name || ''), question: String(it.question || ''),
      answers: cleanAnswers(it.answers), queue: String(it.queue || qid || ''),
    });
    if (it.seeker_name && seeker && !S.users.has(seeker)) rememberUser({ address: seeker, display_name: String(it.seeker_name) });
  }

  /** Take a waiting chat from the list (required on manual queues, allowed on any). */
  async function pickChat(chat) {
    if (Q.picking.has(chat)) return;
    const r = Q.workNodes.get(`w:${chat}`);
    const qid = r ? r.qid : '';
    Q.picking.add(chat);
    if (r) { r.pick.disabled = true; setText(r.pick, 'Picking…'); }
    if (r && r.item) rememberSeeker(chat, r.item, qid);
    Q.accepted.add(chat);
    saveQueueState();
    showWorkError(qid, '');
    try {
      const v = await api('POST', `/queue-chats/${chat}/accept`, {});
      if (v && v.chat) onQueueChat(v);
      else {
        const cur = await api('GET', `/queue-chats/${chat}`).catch(() => null);
        if (cur && cur.chat) onQueueChat(cur);
      }
    } catch (e) {
      Q.accepted.delete(chat);
      saveQueueState();
      showWorkError(qid, e.message);
    } finally {
      Q.picking.delete(chat);
      if (r) setText(r.pick, 'Pick');
      refreshWork();
    }
  }

  function fillOffline(qid, it) {
    const chat = Number(it.chat);
    const r = workNode(`o:${chat}`, () => {
      const take = el('button', { type: 'button', class: 'primary small', 'data-testid': 'offline-take', text: 'Take' });
      take.addEventListener('click', () => takeOffline(chat));
      const open = el('button', { type: 'button', class: 'ghost small', 'data-testid': 'offline-open', text: 'Open' });
      open.addEventListener('click', () => openOffline(chat));
      const name = el('span', { class: 'work-seeker', 'data-testid': 'offline-seeker' });
      const time = el('time', { class: 'work-time', 'data-testid': 'offline-time' });
      const question = el('div', { class: 'work-question', 'data-testid': 'offline-question' });
      const answers = el('div', { class: 'work-answers' });
      const status = el('span', { class: 'work-status muted', 'data-testid': 'offline-status' });
      const node = el('div', { class: 'work-item offline', 'data-testid': 'offline-message', 'data-chat': String(chat) },
        el('div', { class: 'work-top' }, name, time), question, answers,
        el('div', { class: 'work-actions' }, status, open, take));
      return { node, name, time, question, answers, status, take, open };
    });
    r.item = it;
    r.qid = qid;
    const seeker = lower(it.seeker);
    setText(r.name, it.seeker_name ? String(it.seeker_name) : (seeker || 'Someone'));
    r.name.title = seeker;
    const at = toMs(it.requested_at);
    setText(r.time, at ? fmtTime(at) : '');
    r.time.title = at ? new Date(at).toLocaleString() : '';
    setText(r.question, String(it.question || ''));
    const akey = JSON.stringify([it.answers || null, !!queueDef(qid)]);
    if (r.akey !== akey) {
      r.akey = akey;
      const a = answersNode(qid, it.answers, 'offline-answers');
      r.answers.replaceChildren(...(a ? [a] : []));
    }
    const me = S.me ? S.me.address : '';
    const by = lower(it.taken_by);
    r.node.setAttribute('data-taken', by ? (by === me ? 'me' : 'other') : 'no');
    setRich(r.status, by ? (by === me ? 'Taken by you' : ['Taken by ', U(displayName(by))]) : 'Not answered yet');
    r.take.hidden = !!by;
    r.open.hidden = !(by && by === me);
    r.take.disabled = Q.picking.has(chat);
    return r.node;
  }

  /** This expert answers an offline message: remember the chat and open its conversation. */
  function rememberOffline(chat, it, qid, conv) {
    if (it) rememberSeeker(chat, it, qid);
    Q.convChat.set(conv, chat);
    Q.accepted.add(chat);
    Q.opened.add(chat);
    const d = queueDef(qid);
    const cur = Q.chats.get(chat);
    if (!cur || cur.state === 'offline' || !cur.state) {
      Q.chats.set(chat, Object.assign({}, cur || {}, {
        chat, queue: qid, queue_name: d ? String(d.display_name || qid) : qid, state: 'offline', conversation: conv,
        question: it ? String(it.question || '') : '', answers: it ? cleanAnswers(it.answers) : {},
      }));
    }
    saveQueueState();
  }

  async function takeOffline(chat) {
    if (Q.picking.has(chat)) return;
    const r = Q.workNodes.get(`o:${chat}`);
    const qid = r ? r.qid : '';
    const it = r ? r.item : null;
    Q.picking.add(chat);
    if (r) { r.take.disabled = true; setText(r.take, 'Taking…'); }
    showWorkError(qid, '');
    try {
      const res = await api('POST', `/queue-chats/${chat}/take`, {});
      const conv = Number(res && res.conversation) || Number(it && it.conversation);
      if (conv) {
        rememberOffline(chat, it, qid, conv);
        openWhenKnown(conv);
      }
    } catch (e) {
      showWorkError(qid, e.message);
    } finally {
      Q.picking.delete(chat);
      if (r) setText(r.take, 'Take');
      refreshWork();
    }
  }

  function openOffline(chat) {
    const r = Q.workNodes.get(`o:${chat}`);
    const it = r ? r.item : null;
    const conv = it ? Number(it.conversation) : 0;
    if (!conv) return;
    rememberOffline(chat, it, r.qid, conv);
    openWhenKnown(conv);
  }

  // --- "Get help"
  function renderHelpQueues() {
    const sel = $('help-queue');
    const keep = sel.value;
    const frag = document.createDocumentFragment();
    for (const d of Q.defs) {
      if (d.enabled === false) continue;
      frag.appendChild(el('option', { value: String(d.id), 'data-state': String(d.state || ''),
        text: `${String(d.display_name || d.id)}${d.state === 'closed' ? ' (closed)' : d.state === 'busy' ? ' (busy)' : ''}` }));
    }
    if (!frag.childNodes.length) frag.appendChild(el('option', { value: '', text: Q.loaded ? 'No queues' : 'Loading…' }));
    sel.replaceChildren(frag);
    if (keep && [...sel.options].some((o) => o.value === keep)) sel.value = keep;
    renderHelpState();
  }

  function renderHelpState() {
    const d = Q.defs.find((x) => String(x.id) === $('help-queue').value);
    const p = $('help-queue-state');
    if (!d) { setText(p, ''); return; }
    const parts = [stateLabel(d.state)];
    if (d.description) parts.push(String(d.description));
    setText(p, parts.join(' — '));
    renderHelpFields();
    ensureQueueDef(d.id);
  }

  /** The queue's pre-chat form fields (GET /queues/{id} form) in the "Get help" dialog. */
  function renderHelpFields() {
    const id = $('help-queue').value;
    const d = queueDef(id);
    const fields = d && Array.isArray(d.form)
      ? d.form.filter((f) => f && typeof f === 'object' && typeof f.name === 'string' && f.name) : [];
    const key = JSON.stringify([id, fields]);
    if (Q.helpFor === key) return;
    const box = $('help-fields');
    const old = new Map();
    if (Q.helpFor && JSON.parse(Q.helpFor)[0] === id) {
      for (const c of box.querySelectorAll('[data-testid=help-field]')) old.set(c.getAttribute('data-name'), c.value);
    }
    Q.helpFor = key;
    const frag = document.createDocumentFragment();
    fields.forEach((f, i) => {
      const fid = `help-field-${i}`;
      const label = String(f.label || f.name);
      const kind = String(f.kind || 'text');
      const attrs = {
        id: fid, 'data-testid': 'help-field', 'data-name': f.name, 'data-label': label, 'data-kind': kind,
        required: !!f.required, 'aria-required': f.required ? 'true' : null,
      };
      let c;
      if (kind === 'textarea') c = el('textarea', Object.assign({ rows: '2', maxlength: '500' }, attrs));
      else if (kind === 'select') {
        c = el('select', attrs, el('option', { value: '', text: f.required ? 'Choose…' : '—' }));
        for (const o of Array.isArray(f.options) ? f.options : []) c.appendChild(el('option', { value: String(o), text: String(o) }));
      } else {
        c = el('input', Object.assign({ type: kind === 'email' ? 'email' : 'text', maxlength: '500', autocomplete: kind === 'email' ? 'email' : 'off' }, attrs));
      }
      if (old.has(f.name)) c.value = old.get(f.name);
      frag.appendChild(el('label', { for: fid }, label, f.required ? el('span', { class: 'req', 'aria-hidden': 'true', text: ' *' }) : null));
      frag.appendChild(c);
    });
    box.replaceChildren(frag);
    box.hidden = !fields.length;
  }

  function openHelp() {
    $('help-error').hidden = true;
    $('help-question').value = '';
    Q.helpFor = null;
    $('help-fields').replaceChildren();
    renderHelpQueues();
    $('help-modal').hidden = false;
    loadQueues();
    $('help-question').focus();
  }

  function closeHelp() { $('help-modal').hidden = true; }

  async function submitHelp() {
    const id = $('help-queue').value;
    const question = $('help-question').value.trim();
    const err = $('help-error');
    const fail = (m) => { err.textContent = m; err.hidden = false; };
    if (!id) { fail('Pick a queue.'); return; }
    if (!question) { fail('Write your question.'); $('help-question').focus(); return; }
    const answers = {};
    for (const c of $('help-fields').querySelectorAll('[data-testid=help-field]')) {
      const v = c.value.trim();
      if (!v && c.required) { fail(`Please fill in "${c.getAttribute('data-label')}".`); c.focus(); return; }
      if (v) answers[c.getAttribute('data-name')] = v;
    }
    const body = { question };
    if (Object.keys(answers).length) body.answers = answers;
    $('help-submit').disabled = true;
    try {
      const v = await api('POST', `/queues/${encodeURIComponent(id)}/chats`, body);
      closeHelp();
      if (v && v.chat) {
        onQueueChat(v);
        if (typeof v.conversation === 'number') await openWhenKnown(v.conversation);
      }
    } catch (e) {
      fail(e.message);
    } finally {
      $('help-submit').disabled = false;
    }
  }

  function setReady(on) {
    const state = on ? 'available' : 'busy';
    $('presence-select').value = state;
    setMyPresence(state, $('presence-note').value.trim());
    renderQueues();
  }

  // ---------------------------------------------------------------- wiring
  // The composer grows with its text up to 160 px. An empty box keeps its natural one-row
  // height (no inline height), and a box that is not laid out (hidden chat) is not measured:
  // its scrollHeight would be 0 and pin it at the height of its padding.
  function autoGrow() {
    const c = $('composer');
    c.style.height = '';
    if (!c.value || !c.getClientRects().length) return;
    c.style.height = 'auto';
    const borders = c.offsetHeight - c.clientHeight; // box-sizing: border-box
    c.style.height = `${Math.min(c.scrollHeight + borders, 160)}px`;
  }

  // ---------------------------------------------------------------- queue administration
  // Administrators and the managers of a queue: "Manage queues" (list, create, edit,
  // open/close, enable/disable, managers) and the live "Queue dashboard" (GET
  // /queues/{id}/stats every 2 s while the page is visible). Routes: #/manage and
  // #/dashboard. Administrators manage every queue, create queues and name their managers;
  // anyone named in a queue's `managers` changes that queue (not its managers) and sees
  // its statistics, and the other queues read-only. The queue_manager role by itself
  // grants nothing here.
  const METHOD_LABEL = {
    broadcast: 'Broadcast', longest_idle: 'Longest idle', round_robin: 'Round robin',
    least_busy: 'Least busy', serial: 'Serial', manual: 'Manual',
  };
  const DASH_EVERY_MS = 2000;
  const A = {
    allowed: false, // may open "Manage queues" and the dashboard (admin, or manager of a queue)
    admin: false, // administrators: every queue, create queues, name managers
    managesAny: false, // named among the managers of some queue
    page: null, // 'manage' | 'dashboard' | 'compliance' | 'audit' | null
    queues: [], // GET /queues
    editing: null, // null: new queue; else the id being edited
    members: [], // [{address, priority, skills}] in the form
    managers: [], // [address] in the form
    editable: false, // the form's queue is one this user manages
    spans: [], // [{day, open, close}] business hours in the form
    fields: [], // [{name, label, kind, required, options}] pre-chat form in the form
    canned: [], // [{title, text}] canned responses in the form
    formV2: false, // the form shows (and saves) the newer settings
    saving: false,
    dashTimer: null,
    dashBusy: false,
    dashGen: 0,
    cards: new Map(), // queue id -> {node, values: {key: node}, name, sub, state}
    formSeq: 0,
  };

  const qid = (q) => String((q && q.id) || '');
  const encId = (id) => encodeURIComponent(String(id));

  function fmtSeconds(v) {
    if (v === null || v === undefined || v === '' || !Number.isFinite(Number(v))) return '—';
    let s = Math.max(0, Math.round(Number(v)));
    if (s < 60) return `${s}s`;
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    s %= 60;
    if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
    return `${m}m ${String(s).padStart(2, '0')}s`;
  }
  function fmtInt(v) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '—';
    return Math.round(Number(v)).toLocaleString();
  }
  /** service_level is a fraction 0..1 (answered within the threshold / answered). */
  function fmtPercent(v) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '—';
    return `${Math.round(Number(v) * 1000) / 10}%`;
  }
  function fmtScore(v) {
    if (v === null || v === undefined || !Number.isFinite(Number(v))) return '—';
    return (Math.round(Number(v) * 100) / 100).toFixed(2).replace(/\.?0+$/, '');
  }

  function queueStateText(q) {
    if (q.enabled === false) return 'Disabled';
    if (q.closed) return 'Closed';
    return stateLabel(q.state);
  }
  function queueStateKey(q) {
    if (q.enabled === false) return 'disabled';
    if (q.closed) return 'closed';
    return q.state || 'unknown';
  }

  function startAdmin() {
    const roles = Array.isArray(S.me && S.me.roles) ? S.me.roles.map(lower) : [];
    A.admin = roles.includes('admin');
    AL.allowed = roles.includes('admin');
    // Anyone else manages the queues that name them among their managers (the queue
    // manager role by itself manages none): known once a queue list arrives.
    A.managesAny = (Q.defs || []).some(managesQueue);
    paintAdminNav();
    startCompliance(roles);
  }

  function paintAdminNav() {
    A.allowed = A.admin || A.managesAny;
    $('admin-nav').hidden = !(A.allowed || AL.allowed);
    $('nav-manage').hidden = !A.allowed;
    $('nav-dashboard').hidden = !A.allowed;
    $('nav-alerts').hidden = !AL.allowed;
    $('queue-new').hidden = !A.admin;
    $('mq-note').hidden = A.admin;
  }

  /**
   * May this user change queue `q` (its settings, experts, statistics)? Administrators
   * every queue; anyone else only a queue that names them in its `managers`.
   */
  function managesQueue(q) {
    if (A.admin) return true;
    const me = S.me ? S.me.address : '';
    return !!me && !!q && Array.isArray(q.managers) && q.managers.some((a) => lower(a) === me);
  }

  /** A queue list arrived (GET /queues): does this user manage any of them now? */
  function noteQueueManagers(list) {
    const any = (list || []).some(managesQueue);
    if (any === A.managesAny) return;
    A.managesAny = any;
    paintAdminNav();
    // Opened at #/manage before the list was known, or no longer a manager: route again.
    if (/^#\/(manage|dashboard)$/.test(location.hash)) route();
  }

  // The administration pages: route name -> [view, nav button, who may see it].
  const ADMIN_PAGES = {
    manage: ['manage-view', 'nav-manage', () => A.allowed],
    dashboard: ['dash-view', 'nav-dashboard', () => A.allowed],
    compliance: ['compliance-view', 'nav-compliance', () => C.officer],
    audit: ['audit-view', 'nav-audit', () => C.auditor],
    alerts: ['alerts-view', 'nav-alerts', () => AL.allowed],
  };

  function markAdminNav(page) {
    for (const [name, [view, nav]] of Object.entries(ADMIN_PAGES)) {
      $(view).hidden = name !== page;
      $(nav).classList.toggle('active', name === page);
      $(nav).setAttribute('aria-current', name === page ? 'page' : 'false');
    }
  }

  function showAdmin(page) {
    const def = ADMIN_PAGES[page];
    if (!def || !def[2]()) { hideAdmin(); return false; }
    if (A.page === page && !$('admin').hidden) { // already there (route() runs again after a reconnect)
      if (page === 'alerts') showAlerts(); // another alert, or back to the list
      return true;
    }
    if (S.current !== null) closeChat();
    A.page = page;
    $('chat').hidden = true;
    $('admin').hidden = false;
    document.querySelector('.app').classList.add('admin-open');
    markAdminNav(page);
    if (page !== 'dashboard') stopDashboard();
    if (page !== 'alerts') { stopAlertPoll(); stopMailboxPoll(); }
    if (page === 'manage') { renderManageList(); loadAdminQueues(); }
    else if (page === 'dashboard') { A.cards.clear(); $('dash-grid').replaceChildren(); startDashboard(); }
    else if (page === 'compliance') showCompliance();
    else if (page === 'audit') showAudit();
    else if (page === 'alerts') showAlerts();
    return true;
  }

  function hideAdmin() {
    if (A.page === null && $('admin').hidden) return;
    A.page = null;
    stopDashboard();
    stopAlertPoll();
    stopMailboxPoll();
    $('admin').hidden = true;
    $('chat').hidden = false;
    document.querySelector('.app').classList.remove('admin-open');
    markAdminNav(null);
  }

  function showAdminError(id, msg) {
    const e = $(id);
    e.textContent = msg ? String(msg) : '';
    e.hidden = !msg;
  }

  async function loadAdminQueues() {
    try {
      const r = await api('GET', '/queues');
      A.queues = asList(r, 'queues', 'items').filter((q) => q && typeof q === 'object' && qid(q));
      A.queues.sort((a, b) => String(a.display_name || a.id).localeCompare(String(b.display_name || b.id)));
      showAdminError('mq-error', '');
      noteQueueManagers(A.queues);
    } catch (e) {
      showAdminError('mq-error', e.message);
    }
    if (A.page === 'manage') renderManageList();
    return A.queues;
  }

  // ---------------- manage: list
  function renderManageList() {
    const body = $('mq-list');
    const frag = document.createDocumentFragment();
    if (!A.queues.length) {
      frag.appendChild(el('tr', null, el('td', { colspan: '8', class: 'empty-note', text: 'No queues yet.' })));
    }
    for (const q of A.queues) {
      const id = qid(q);
      const closed = !!q.closed;
      const enabled = q.enabled !== false;
      const mine = managesQueue(q);
      const nameCell = el('td', { class: 'mq-name' },
        el('div', { class: 'mq-display', text: q.display_name || id }),
        el('div', { class: 'mq-id muted', text: id }));
      if (q.description) nameCell.appendChild(el('div', { class: 'mq-desc muted', text: q.description }));
      const state = el('span', { class: 'state-pill', 'data-state': queueStateKey(q), 'data-testid': 'queue-state', text: queueStateText(q) });
      const buttons = el('div', { class: 'mq-buttons' });
      if (mine) {
        const edit = el('button', { type: 'button', class: 'ghost small', 'data-testid': 'queue-edit', text: 'Edit' });
        edit.addEventListener('click', () => openQueueForm(id));
        const tClosed = el('button', { type: 'button', class: 'ghost small', 'data-testid': 'queue-toggle-closed', text: closed ? 'Open' : 'Close' });
        tClosed.addEventListener('click', () => quickToggle(id, 'closed', tClosed));
        const tEnabled = el('button', { type: 'button', class: 'ghost small' + (enabled ? ' danger' : ''), 'data-testid': 'queue-toggle-enabled', text: enabled ? 'Disable' : 'Enable' });
        tEnabled.addEventListener('click', () => quickToggle(id, 'enabled', tEnabled));
        buttons.append(edit, tClosed, tEnabled);
      } else {
        buttons.appendChild(el('span', { class: 'mq-view-only muted', 'data-testid': 'queue-view-only', title: 'Only its managers and administrators change this queue', text: 'View only' }));
      }
      const row = el('tr', { class: 'queue-row', 'data-testid': 'queue-row', 'data-id': id, 'data-state': queueStateKey(q), 'data-managed': mine ? 'yes' : 'no' },
        nameCell,
        el('td', { class: 'mq-addr' }, ...breakableAddress(q.address || '')),
        managersCell(q),
        el('td', { class: 'mq-method', 'data-label': 'Routing', text: METHOD_LABEL[q.method] || q.method || '' }),
        el('td', { class: 'mq-state' }, state),
        el('td', { class: 'num', 'data-label': 'Ready', 'data-testid': 'queue-ready-count', text: fmtInt(q.experts_ready) }),
        el('td', { class: 'num', 'data-label': 'Waiting', 'data-testid': 'queue-waiting-count', text: fmtInt(q.seekers_waiting) }),
        el('td', { class: 'mq-actions' }, buttons));
      frag.appendChild(row);
    }
    body.replaceChildren(frag);
  }

  /** A person's display name, kept up to date as the directory answers (see paintNames). */
  function nameNode(tag, addr, attrs) {
    const a = lower(addr);
    return el(tag, Object.assign({ 'data-name-of': a, title: a, text: displayName(a) }, attrs || {}));
  }

  /** Names shown before the directory knew them: their display names now. */
  function paintNames() {
    for (const n of document.querySelectorAll('[data-name-of]')) setText(n, displayName(n.getAttribute('data-name-of')));
  }

  /** The queue's managers as names (each isolated: a name may be written right to left). */
  function managersCell(q) {
    const list = Array.isArray(q.managers) ? q.managers.map(lower).filter(Boolean) : [];
    const td = el('td', { class: 'mq-managers', 'data-label': 'Managers', 'data-testid': 'queue-managers' });
    if (!list.length) {
      td.appendChild(el('span', { class: 'muted', title: 'No managers: administrators only', text: '—' }));
      return td;
    }
    list.forEach((a, i) => {
      if (i) td.appendChild(document.createTextNode(', '));
      td.appendChild(nameNode('bdi', a, { class: 'mq-manager', 'data-testid': 'queue-manager', 'data-address': a }));
    });
    return td;
  }

  /** An address as text nodes with a line-break opportunity after the "@" (narrow tables). */
  function breakableAddress(addr) {
    const at = addr.indexOf('@');
    if (at < 0) return [addr];
    return [addr.slice(0, at + 1), el('wbr'), addr.slice(at + 1)];
  }

  /** The QueueInput body of a queue as the server returned it. */
  function queueInput(q) {
    const out = {
      display_name: String(q.display_name || q.id || ''),
      method: q.method || 'longest_idle',
      offer_timeout_s: q.offer_timeout_s,
      capacity: q.capacity,
      daily_cap: q.daily_cap === undefined ? null : q.daily_cap,
      max_wait_s: q.max_wait_s === undefined ? null : q.max_wait_s,
      enabled: q.enabled !== false,
      closed: !!q.closed,
      welcome: q.welcome || '',
      closed_message: q.closed_message || '',
      description: q.description || '',
      show_expert_name: q.show_expert_name !== false,
      overflow_queue: q.overflow_queue || null,
      no_expert_queue: q.no_expert_queue || null,
      members: (q.members || []).map((m) => ({
        address: lower(m && (m.address || m)),
        priority: Number.isFinite(Number(m && m.priority)) ? Number(m.priority) : 0,
        skills: Array.isArray(m && m.skills) ? m.skills.map(String) : [],
      })),
    };
    if (q.address) out.address = q.address;
    Object.assign(out, v2Input(q));
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
  }

  async function quickToggle(id, field, btn) {
    btn.disabled = true;
    showAdminError('mq-error', '');
    try {
      // Start from the server's current version, not a stale list.
      const cur = await api('GET', `/queues/${encId(id)}`);
      const body = queueInput(cur);
      body[field] = !body[field];
      await api('PUT', `/queues/${encId(id)}`, body);
    } catch (e) {
      showAdminError('mq-error', `${id}: ${e.message}`);
    } finally {
      btn.disabled = false;
    }
    await loadAdminQueues();
    if (A.editing === id && !$('qf').hidden) {
      const q = A.queues.find((x) => qid(x) === id);
      if (q) { $('qf-closed').checked = !!q.closed; $('qf-enabled').checked = q.enabled !== false; }
    }
  }

  // ---------------- manage: the settings added with business hours, forms and wrap-up
  const V2_KEYS = ['overflow_action', 'no_expert_action', 'offline_message', 'hours', 'form', 'canned', 'wrap_up_tags', 'wrap_up_s'];
  const DAYS = [['mon', 'Monday'], ['tue', 'Tuesday'], ['wed', 'Wednesday'], ['thu', 'Thursday'], ['fri', 'Friday'], ['sat', 'Saturday'], ['sun', 'Sunday']];
  const FIELD_KINDS = [['text', 'Text'], ['email', 'E-mail'], ['textarea', 'Long text'], ['select', 'Choice']];
  const ACTIONS = ['close', 'queue', 'offline_message'];

  /** Does the server know the new queue settings? (An older one refuses unknown fields.) */
  function serverHasV2(q) {
    if (q && typeof q === 'object') return V2_KEYS.some((k) => Object.hasOwn(q, k));
    return (A.queues || []).some((x) => V2_KEYS.some((k) => Object.hasOwn(x, k)));
  }

  function normHours(h) {
    if (!h || typeof h !== 'object') return null;
    return {
      tz: String(h.tz || ''),
      weekly: (Array.isArray(h.weekly) ? h.weekly : []).filter((s) => s && typeof s === 'object')
        .map((s) => ({ day: String(s.day || ''), open: String(s.open || ''), close: String(s.close || '') })),
      holidays: (Array.isArray(h.holidays) ? h.holidays : []).map(String),
    };
  }

  function normField(f) {
    const kind = String((f && f.kind) || 'text');
    const out = { name: String((f && f.name) || ''), label: String((f && f.label) || ''), kind, required: !!(f && f.required) };
    if (kind === 'select') out.options = Array.isArray(f && f.options) ? f.options.map(String) : [];
    return out;
  }

  function normCanned(c) {
    return { title: String((c && c.title) || ''), text: String((c && c.text) || '') };
  }

  /** The new settings of a queue as the server returned them, ready to PUT again. */
  function v2Input(q) {
    const out = {};
    if (!serverHasV2(q)) return out;
    if (Object.hasOwn(q, 'overflow_action')) out.overflow_action = ACTIONS.includes(q.overflow_action) ? q.overflow_action : 'close';
    if (Object.hasOwn(q, 'no_expert_action')) out.no_expert_action = ACTIONS.includes(q.no_expert_action) ? q.no_expert_action : 'close';
    if (Object.hasOwn(q, 'offline_message')) out.offline_message = String(q.offline_message || '');
    if (Object.hasOwn(q, 'hours')) out.hours = normHours(q.hours);
    if (Object.hasOwn(q, 'form')) out.form = (Array.isArray(q.form) ? q.form : []).map(normField);
    if (Object.hasOwn(q, 'canned')) out.canned = (Array.isArray(q.canned) ? q.canned : []).map(normCanned);
    if (Object.hasOwn(q, 'wrap_up_tags')) out.wrap_up_tags = (Array.isArray(q.wrap_up_tags) ? q.wrap_up_tags : []).map(String);
    if (Object.hasOwn(q, 'wrap_up_s')) out.wrap_up_s = Number.isFinite(Number(q.wrap_up_s)) ? Number(q.wrap_up_s) : 0;
    return out;
  }

  function fillQueueOptions(selId, selfId, value) {
    const sel = $(selId);
    const frag = document.createDocumentFragment();
    frag.appendChild(el('option', { value: '', text: '— pick a queue —' }));
    const ids = new Set();
    for (const q of A.queues) {
      const id = qid(q);
      if (id === selfId) continue;
      ids.add(id);
      frag.appendChild(el('option', { value: id, text: `${q.display_name || id} (${id})` }));
    }
    if (value && !ids.has(value)) frag.appendChild(el('option', { value, text: value }));
    sel.replaceChildren(frag);
    sel.value = value || '';
  }

  function syncActionQueues() {
    $('qf-overflow-queue').hidden = $('qf-overflow-action').value !== 'queue';
    $('qf-no-expert-queue').hidden = $('qf-no-expert-action').value !== 'queue';
  }

  function fillTimeZones() {
    const dl = $('qf-tz-options');
    if (dl.childElementCount) return;
    let zones = [];
    try { zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : []; } catch (_) { zones = []; }
    if (!zones.includes('UTC')) zones.unshift('UTC');
    dl.replaceChildren(...zones.map((z) => el('option', { value: z })));
  }

  function localTimeZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch (_) { return 'UTC'; }
  }

  /** Fills the new parts of the form from a queue (or the defaults for a new one). */
  function openV2Form(q, id) {
    const on = serverHasV2(q);
    A.formV2 = on;
    for (const n of document.querySelectorAll('#qf .qf-v2')) n.hidden = !on;
    const overflowAction = q && ACTIONS.includes(q.overflow_action) ? q.overflow_action : (q && q.overflow_queue ? 'queue' : 'close');
    const noExpertAction = q && ACTIONS.includes(q.no_expert_action) ? q.no_expert_action : (q && q.no_expert_queue ? 'queue' : 'close');
    $('qf-overflow-action').value = overflowAction;
    $('qf-no-expert-action').value = noExpertAction;
    fillQueueOptions('qf-overflow-queue', id || '', q ? String(q.overflow_queue || '') : '');
    fillQueueOptions('qf-no-expert-queue', id || '', q ? String(q.no_expert_queue || '') : '');
    syncActionQueues();
    $('qf-offline-message').value = q ? String(q.offline_message || '') : '';
    const h = normHours(q && q.hours);
    $('qf-hours-on').checked = !!h;
    $('qf-hours-box').hidden = !h;
    $('qf-hours-tz').value = h ? h.tz : '';
    A.spans = h ? h.weekly : [];
    $('qf-holidays').value = h ? h.holidays.join('\n') : '';
    A.fields = (q && Array.isArray(q.form) ? q.form : []).map(normField);
    A.canned = (q && Array.isArray(q.canned) ? q.canned : []).map(normCanned);
    $('qf-wrapup-tags').value = q && Array.isArray(q.wrap_up_tags) ? q.wrap_up_tags.map(String).join(', ') : '';
    setNum('qf-wrapup-s', q && q.wrap_up_s !== undefined ? q.wrap_up_s : 0);
    renderSpans();
    renderFields();
    renderCannedRows();
  }

  function normTime(t) {
    const v = String(t || '').trim();
    const m = /^(\d{1,2})[:.](\d{2})$/.exec(v);
    return m ? `${m[1].padStart(2, '0')}:${m[2]}` : v;
  }

  /** The new settings from the form, for the PUT body. */
  function v2FromForm() {
    const overflow = $('qf-overflow-action').value;
    const noExpert = $('qf-no-expert-action').value;
    const hoursOn = $('qf-hours-on').checked;
    return {
      overflow_action: overflow,
      overflow_queue: overflow === 'queue' ? ($('qf-overflow-queue').value || null) : null,
      no_expert_action: noExpert,
      no_expert_queue: noExpert === 'queue' ? ($('qf-no-expert-queue').value || null) : null,
      offline_message: $('qf-offline-message').value,
      hours: hoursOn ? {
        tz: $('qf-hours-tz').value.trim(),
        weekly: A.spans.map((s) => ({ day: s.day, open: normTime(s.open), close: normTime(s.close) })),
        holidays: $('qf-holidays').value.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean),
      } : null,
      form: A.fields.map((f) => {
        const out = { name: f.name.trim(), label: f.label.trim(), kind: f.kind, required: !!f.required };
        if (f.kind === 'select') out.options = (f.options || []).map((o) => String(o).trim()).filter(Boolean);
        return out;
      }),
      canned: A.canned.filter((c) => c.title.trim() || c.text.trim()).map((c) => ({ title: c.title.trim(), text: c.text })),
      wrap_up_tags: $('qf-wrapup-tags').value.split(',').map((x) => x.trim()).filter(Boolean),
      wrap_up_s: numVal('qf-wrapup-s') === null ? 0 : numVal('qf-wrapup-s'),
    };
  }

  function rowButton(testid, label, aria, fn) {
    const b = el('button', { type: 'button', class: 'ghost small danger', 'data-testid': testid, 'aria-label': aria, text: label });
    b.addEventListener('click', fn);
    return b;
  }

  function boundInput(attrs, obj, key, map) {
    const tag = attrs.tag || 'input';
    const a = Object.assign({}, attrs);
    delete a.tag;
    const n = el(tag, a);
    n.value = Array.isArray(obj[key]) ? obj[key].join(', ') : String(obj[key] ?? '');
    n.addEventListener('input', () => { obj[key] = map ? map(n.value) : n.value; });
    return n;
  }

  function renderSpans() {
    const box = $('qf-spans');
    const frag = document.createDocumentFragment();
    if (!A.spans.length) frag.appendChild(el('p', { class: 'empty-note', text: 'No opening hours yet: with business hours on, the queue is closed until you add some.' }));
    A.spans.forEach((s, i) => {
      const day = el('select', { 'data-testid': 'qf-span-day', 'aria-label': `Day of span ${i + 1}` },
        ...DAYS.map(([v, l]) => el('option', { value: v, text: l })));
      day.value = DAYS.some(([v]) => v === s.day) ? s.day : 'mon';
      s.day = day.value;
      day.addEventListener('change', () => { s.day = day.value; });
      const open = boundInput({ type: 'text', class: 'qf-time', 'data-testid': 'qf-span-open', placeholder: '09:00', maxlength: '5', inputmode: 'numeric', 'aria-label': `Opens (span ${i + 1})` }, s, 'open');
      const close = boundInput({ type: 'text', class: 'qf-time', 'data-testid': 'qf-span-close', placeholder: '17:00', maxlength: '5', inputmode: 'numeric', 'aria-label': `Closes (span ${i + 1}; 24:00 for midnight)` }, s, 'close');
      frag.appendChild(el('div', { class: 'qf-row', 'data-testid': 'qf-span' }, day, open, el('span', { class: 'muted', text: '–' }), close,
        rowButton('qf-span-remove', 'Remove', `Remove span ${i + 1}`, () => { A.spans = A.spans.filter((x) => x !== s); renderSpans(); })));
    });
    box.replaceChildren(frag);
  }

  function addSpans(list) {
    A.spans.push(...list);
    renderSpans();
    const opens = $('qf-spans').querySelectorAll('[data-testid=qf-span-open]');
    if (opens.length) opens[opens.length - list.length].focus();
  }

  function renderFields() {
    const box = $('qf-fields');
    const frag = document.createDocumentFragment();
    if (!A.fields.length) frag.appendChild(el('p', { class: 'empty-note', text: 'No form: seekers give their question only.' }));
    A.fields.forEach((f, i) => {
      const name = boundInput({ type: 'text', class: 'qf-field-name', 'data-testid': 'qf-field-name', placeholder: 'name (a-z 0-9 _ -)', maxlength: '40', spellcheck: 'false', autocapitalize: 'none', 'aria-label': `Name of field ${i + 1}` }, f, 'name');
      const label = boundInput({ type: 'text', class: 'qf-field-label', 'data-testid': 'qf-field-label', placeholder: 'Label shown to the seeker', maxlength: '200', 'aria-label': `Label of field ${i + 1}` }, f, 'label');
      const kind = el('select', { 'data-testid': 'qf-field-kind', 'aria-label': `Kind of field ${i + 1}` }, ...FIELD_KINDS.map(([v, l]) => el('option', { value: v, text: l })));
      kind.value = FIELD_KINDS.some(([v]) => v === f.kind) ? f.kind : 'text';
      f.kind = kind.value;
      const req = el('input', { type: 'checkbox', 'data-testid': 'qf-field-required' });
      req.checked = !!f.required;
      req.addEventListener('change', () => { f.required = req.checked; });
      const options = boundInput({ type: 'text', class: 'qf-field-options', 'data-testid': 'qf-field-options', placeholder: 'choices, comma separated', maxlength: '2000', 'aria-label': `Choices of field ${i + 1}` },
        f, 'options', (v) => v.split(',').map((x) => x.trim()).filter(Boolean));
      if (!Array.isArray(f.options)) f.options = [];
      options.hidden = f.kind !== 'select';
      kind.addEventListener('change', () => { f.kind = kind.value; options.hidden = f.kind !== 'select'; });
      frag.appendChild(el('div', { class: 'qf-row qf-field', 'data-testid': 'qf-field' }, name, label, kind,
        el('label', { class: 'qf-check' }, req, ' required'), options,
        rowButton('qf-field-remove', 'Remove', `Remove field ${i + 1}`, () => { A.fields = A.fields.filter((x) => x !== f); renderFields(); })));
    });
    box.replaceChildren(frag);
  }

  function renderCannedRows() {
    const box = $('qf-canned');
    const frag = document.createDocumentFragment();
    if (!A.canned.length) frag.appendChild(el('p', { class: 'empty-note', text: 'No canned responses.' }));
    A.canned.forEach((c, i) => {
      const title = boundInput({ type: 'text', class: 'qf-canned-title', 'data-testid': 'qf-canned-title', placeholder: 'Title', maxlength: '100', 'aria-label': `Title of response ${i + 1}` }, c, 'title');
      const text = boundInput({ tag: 'textarea', class: 'qf-canned-text', 'data-testid': 'qf-canned-text', rows: '2', maxlength: '4000', placeholder: 'Text inserted into the expert\'s message', 'aria-label': `Text of response ${i + 1}` }, c, 'text');
      frag.appendChild(el('div', { class: 'qf-row qf-canned', 'data-testid': 'qf-canned' }, title, text,
        rowButton('qf-canned-remove', 'Remove', `Remove response ${i + 1}`, () => { A.canned = A.canned.filter((x) => x !== c); renderCannedRows(); })));
    });
    box.replaceChildren(frag);
  }

  function focusLast(boxId, testid) {
    const all = $(boxId).querySelectorAll(`[data-testid=${testid}]`);
    if (all.length) all[all.length - 1].focus();
  }

  function wireV2Form() {
    $('qf-overflow-action').addEventListener('change', syncActionQueues);
    $('qf-no-expert-action').addEventListener('change', syncActionQueues);
    $('qf-hours-on').addEventListener('change', () => {
      const on = $('qf-hours-on').checked;
      $('qf-hours-box').hidden = !on;
      if (on) {
        fillTimeZones();
        if (!$('qf-hours-tz').value.trim()) $('qf-hours-tz').value = localTimeZone();
      }
    });
    $('qf-hours-tz').addEventListener('focus', fillTimeZones);
    $('qf-span-add').addEventListener('click', () => addSpans([{ day: 'mon', open: '09:00', close: '17:00' }]));
    $('qf-span-weekdays').addEventListener('click', () => addSpans(['mon', 'tue', 'wed', 'thu', 'fri'].map((day) => ({ day, open: '09:00', close: '17:00' }))));
    $('qf-field-add').addEventListener('click', () => {
      A.fields.push({ name: '', label: '', kind: 'text', required: false, options: [] });
      renderFields();
      focusLast('qf-fields', 'qf-field-name');
    });
    $('qf-canned-add').addEventListener('click', () => {
      A.canned.push({ title: '', text: '' });
      renderCannedRows();
      focusLast('qf-canned', 'qf-canned-title');
    });
  }

  // ---------------- manage: form
  function numVal(id) {
    const v = $(id).value.trim();
    if (v === '') return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : NaN;
  }
  function setNum(id, v) { $(id).value = v === null || v === undefined ? '' : String(v); }

  async function openQueueForm(id) {
    const seq = ++A.formSeq;
    $('qf').hidden = true;
    $('qf-id').value = '';
    A.editing = id || null;
    showAdminError('qf-error', '');
    if (!id && !A.admin) { A.editing = null; return; } // only administrators create queues
    let q = null;
    if (id) {
      try { q = await api('GET', `/queues/${encId(id)}`); } catch (e) {
        q = A.queues.find((x) => qid(x) === id) || null;
        if (!q) { showAdminError('mq-error', e.message); return; }
      }
      if (seq !== A.formSeq) return; // another queue was picked meanwhile
      if (!managesQueue(q)) { A.editing = null; showAdminError('mq-error', `${id}: you do not manage this queue.`); return; }
    }
    $('qf-title').textContent = q ? `Edit ${q.display_name || id}` : 'New queue';
    $('qf-id').value = q ? id : '';
    $('qf-id').readOnly = !!q;
    $('qf-name').value = q ? (q.display_name || '') : '';
    $('qf-address').value = q ? (q.address || '') : '';
    $('qf-description').value = q ? (q.description || '') : '';
    $('qf-method').value = (q && METHOD_LABEL[q.method]) ? q.method : 'longest_idle';
    setNum('qf-offer-timeout', q ? q.offer_timeout_s : 30);
    setNum('qf-capacity', q ? q.capacity : 1);
    setNum('qf-daily-cap', q ? q.daily_cap : null);
    setNum('qf-max-wait', q ? q.max_wait_s : null);
    $('qf-welcome').value = q ? (q.welcome || '') : '';
    $('qf-closed-message').value = q ? (q.closed_message || '') : '';
    $('qf-enabled').checked = q ? q.enabled !== false : true;
    $('qf-closed').checked = q ? !!q.closed : false;
    $('qf-show-expert').checked = q ? q.show_expert_name !== false : true;
    A.members = q ? queueInput(q).members : [];
    $('qf-member-add').value = '';
    renderMembers();
    A.managers = q && Array.isArray(q.managers) ? [...new Set(q.managers.map(lower).filter(Boolean))] : [];
    $('qf-manager-add').value = '';
    renderManagers();
    openV2Form(q, id);
    $('qf').hidden = false;
    $('qf').scrollIntoView({ block: 'nearest' });
    (q ? $('qf-name') : $('qf-id')).focus({ preventScroll: true });
  }

  function closeQueueForm() {
    A.formSeq += 1;
    $('qf').hidden = true;
    A.editing = null;
    showAdminError('qf-error', '');
  }

  function renderMembers() {
    const box = $('qf-members');
    const frag = document.createDocumentFragment();
    if (!A.members.length) frag.appendChild(el('p', { class: 'empty-note', text: 'No experts yet.' }));
    A.members.forEach((m) => {
      const u = S.users.get(m.address);
      const prio = el('input', { type: 'number', class: 'qf-prio', step: '1', 'data-testid': 'qf-member-priority', 'aria-label': `Priority of ${m.address}`, title: 'Priority (lower is offered first by serial routing)' });
      prio.value = String(m.priority || 0);
      prio.addEventListener('input', () => { const n = Number(prio.value); m.priority = Number.isFinite(n) ? Math.trunc(n) : 0; });
      const skills = el('input', { type: 'text', class: 'qf-skills', 'data-testid': 'qf-member-skills', placeholder: 'skills, comma separated', 'aria-label': `Skills of ${m.address}`, maxlength: '500' });
      skills.value = (m.skills || []).join(', ');
      skills.addEventListener('input', () => { m.skills = skills.value.split(',').map((x) => x.trim()).filter(Boolean); });
      const rm = el('button', { type: 'button', class: 'ghost small danger', 'data-testid': 'qf-member-remove', 'aria-label': `Remove ${m.address}`, text: 'Remove' });
      rm.addEventListener('click', () => {
        A.members = A.members.filter((x) => x !== m);
        renderMembers();
      });
      frag.appendChild(el('div', { class: 'qf-member', 'data-testid': 'qf-member', 'data-address': m.address },
        el('div', { class: 'qf-member-who' },
          el('div', { class: 'qf-member-name', text: (u && u.display_name) || m.address }),
          el('div', { class: 'muted qf-member-addr', text: m.address })),
        el('label', { class: 'qf-prio-label' }, 'Priority ', prio),
        skills, rm));
    });
    box.replaceChildren(frag);
  }

  function addMember() {
    const input = $('qf-member-add');
    // "Carol Clark <carol@example.com>" from the suggestions, or a bare address.
    const v = pickedAddress(input);
    if (!v) return;
    if (!/^[^@\s]+@[^@\s]+$/.test(v)) { showAdminError('qf-error', `Not an address: ${v}`); return; }
    showAdminError('qf-error', '');
    if (!A.members.some((x) => x.address === v)) {
      const maxPrio = A.members.reduce((a, x) => Math.max(a, Number(x.priority) || 0), -1);
      A.members.push({ address: v, priority: maxPrio + 1, skills: [] });
    }
    input.value = '';
    renderMembers();
    input.focus();
  }

  /**
   * The queue's managers in the form. Administrators add and remove them; a manager sees
   * the list but cannot change it (the server refuses, and the list is not sent).
   */
  function renderManagers() {
    const box = $('qf-managers');
    const frag = document.createDocumentFragment();
    if (!A.managers.length) frag.appendChild(el('p', { class: 'empty-note', text: 'No managers: only administrators change this queue.' }));
    for (const a of A.managers) {
      const row = el('div', { class: 'qf-member qf-manager', 'data-testid': 'qf-manager', 'data-address': a },
        el('div', { class: 'qf-member-who' },
          nameNode('div', a, { class: 'qf-member-name', 'data-testid': 'qf-manager-name' }),
          el('div', { class: 'muted qf-member-addr', text: a })));
      if (A.admin) {
        const rm = el('button', { type: 'button', class: 'ghost small danger', 'data-testid': 'qf-manager-remove', 'aria-label': `Remove ${a} as a manager`, text: 'Remove' });
        rm.addEventListener('click', () => {
          A.managers = A.managers.filter((x) => x !== a);
          renderManagers();
          $('qf-manager-add').focus();
        });
        row.appendChild(rm);
      }
      frag.appendChild(row);
    }
    box.replaceChildren(frag);
    $('qf-manager-add-row').hidden = !A.admin;
    setText($('qf-managers-note'), A.admin
      ? 'Managers change this queue\'s settings and experts, and see its statistics, waiting list and offline messages.'
      : 'Only administrators change a queue\'s managers.');
  }

  /** The address typed or picked in a directory search box ("Carol Clark <carol@…>" or an address). */
  function pickedAddress(input) {
    let v = input.value.trim();
    const m = /<([^<>\s]+@[^<>\s]+)>\s*$/.exec(v);
    if (m) v = m[1];
    return lower(v);
  }

  function addManager() {
    if (!A.admin) return;
    const input = $('qf-manager-add');
    const v = pickedAddress(input);
    if (!v) return;
    if (!/^[^@\s]+@[^@\s]+$/.test(v)) { showAdminError('qf-error', `Not an address: ${v}`); return; }
    showAdminError('qf-error', '');
    if (!A.managers.includes(v)) A.managers.push(v);
    input.value = '';
    renderManagers();
    input.focus();
  }

  const directorySearches = new Map(); // input id -> {timer, seq}

  /** Suggestions from the directory for the box `inputId`, into the datalist `listId`. */
  function searchDirectory(inputId, listId) {
    let st = directorySearches.get(inputId);
    if (!st) { st = { timer: null, seq: 0 }; directorySearches.set(inputId, st); }
    clearTimeout(st.timer);
    const q = $(inputId).value.trim();
    if (q.length < 2 || q.includes('<')) return;
    st.timer = setTimeout(async () => {
      const seq = ++st.seq;
      try {
        const r = await api('GET', `/users?q=${encodeURIComponent(q)}&limit=20`);
        if (seq !== st.seq) return;
        const list = $(listId);
        const frag = document.createDocumentFragment();
        for (const u of asList(r, 'users')) {
          const n = rememberUser(u);
          if (!n) continue;
          frag.appendChild(el('option', { value: n.address, label: n.display_name ? `${n.display_name} <${n.address}>` : n.address }));
        }
        list.replaceChildren(frag);
      } catch (_) { /* suggestions are optional */ }
    }, 200);
  }

  async function saveQueue(e) {
    if (e) e.preventDefault();
    if (A.saving) return;
    const fail = (m) => showAdminError('qf-error', m);
    const id = A.editing || lower($('qf-id').value.trim());
    if (!id) { fail('Enter an id (a-z, 0-9 and -).'); return; }
    const body = {
      display_name: $('qf-name').value.trim(),
      description: $('qf-description').value,
      method: $('qf-method').value,
      offer_timeout_s: numVal('qf-offer-timeout'),
      capacity: numVal('qf-capacity'),
      daily_cap: numVal('qf-daily-cap'),
      max_wait_s: numVal('qf-max-wait'),
      enabled: $('qf-enabled').checked,
      closed: $('qf-closed').checked,
      welcome: $('qf-welcome').value,
      closed_message: $('qf-closed-message').value,
      show_expert_name: $('qf-show-expert').checked,
      members: A.members.map((m) => ({ address: m.address, priority: Number(m.priority) || 0, skills: m.skills || [] })),
    };
    // Only administrators name managers; without the field the server keeps the list.
    if (A.admin) body.managers = [...A.managers];
    // Rollover, business hours, pre-chat form, canned responses and wrap-up (when the
    // server knows them; an older one only knows the rollover targets).
    const known = (A.queues || []).find((q) => qid(q) === id);
    if (A.formV2) {
      const v2 = v2FromForm();
      if (Number.isNaN(v2.wrap_up_s)) { fail('wrap-up time: not a number'); return; }
      if (v2.hours && !v2.hours.tz) { fail('Business hours: enter a time zone such as Europe/Berlin.'); $('qf-hours-tz').focus(); return; }
      Object.assign(body, v2);
    } else if (known) {
      body.overflow_queue = known.overflow_queue || null;
      body.no_expert_queue = known.no_expert_queue || null;
    }
    const addr = $('qf-address').value.trim();
    if (addr) body.address = addr;
    // Empty required numbers fall back to the server's defaults; anything typed goes as is,
    // so the server's own validation message is what the user sees.
    if (body.offer_timeout_s === null) delete body.offer_timeout_s;
    if (body.capacity === null) delete body.capacity;
    for (const k of ['offer_timeout_s', 'capacity', 'daily_cap', 'max_wait_s']) {
      if (Number.isNaN(body[k])) { fail(`${k.replace(/_/g, ' ')}: not a number`); return; }
    }
    if (!A.editing && A.queues.some((q) => qid(q) === id)) {
      fail(`A queue with the id "${id}" exists already; edit it instead.`);
      return;
    }
    A.saving = true;
    $('qf-save').disabled = true;
    fail('');
    try {
      await api('PUT', `/queues/${encId(id)}`, body);
      closeQueueForm();
      toast(['Saved ', U(body.display_name || id), '.']);
    } catch (err) {
      fail(err.message);
    } finally {
      A.saving = false;
      $('qf-save').disabled = false;
    }
    await loadAdminQueues();
  }

  // ---------------- dashboard
  function dashInterval() {
    const now = Date.now();
    const v = $('dash-interval').value;
    if (v === 'hour') return { from: now - 3600e3, to: now };
    if (v === 'today') { const d = new Date(now); d.setHours(0, 0, 0, 0); return { from: d.getTime(), to: now }; }
    return { from: now - 86400e3, to: now };
  }

  const DASH_TILES = [
    // [group, key, label, testid, format, source]
    ['live', 'experts_total', 'Experts', 'dash-experts-total', fmtInt],
    ['live', 'signed_in', 'Signed in', 'dash-signed-in', fmtInt],
    ['live', 'ready', 'Ready', 'dash-ready', fmtInt],
    ['live', 'busy', 'Busy', 'dash-busy', fmtInt],
    ['live', 'seekers_waiting', 'Waiting', 'dash-waiting', fmtInt],
    ['live', 'longest_wait_s', 'Longest wait', 'dash-longest-wait', fmtSeconds],
    ['live', 'active_chats', 'Active chats', 'dash-active-chats', fmtInt],
    ['int', 'offered', 'Offered', 'dash-offered', fmtInt],
    ['int', 'accepted', 'Accepted', 'dash-accepted', fmtInt],
    ['int', 'abandoned', 'Abandoned', 'dash-abandoned', fmtInt],
    ['int', 'overflowed', 'Overflowed', 'dash-overflowed', fmtInt],
    ['int', 'avg_wait_s', 'Avg wait', 'dash-avg-wait', fmtSeconds],
    ['int', 'p90_wait_s', 'P90 wait', 'dash-p90-wait', fmtSeconds],
    ['int', 'avg_handle_s', 'Avg handle time', 'dash-avg-handle', fmtSeconds],
    ['int', 'service_level', 'Service level', 'dash-service-level', fmtPercent],
    ['int', 'survey_average', 'Survey average', 'dash-survey', fmtScore],
  ];

  function dashCard(q) {
    const id = qid(q);
    let c = A.cards.get(id);
    if (!c) {
      const name = el('h3', { class: 'dash-name', 'data-testid': 'dash-name' });
      const sub = el('div', { class: 'dash-sub muted' });
      const state = el('span', { class: 'state-pill', 'data-testid': 'dash-state' });
      const live = el('div', { class: 'tiles' });
      const cum = el('div', { class: 'tiles' });
      const values = {};
      const slTitle = el('span', { class: 'tile-label' });
      for (const [group, key, label, testid] of DASH_TILES) {
        const v = el('div', { class: 'tile-value', 'data-testid': testid, text: '—' });
        values[key] = v;
        const lab = key === 'service_level' ? slTitle : el('span', { class: 'tile-label' });
        lab.textContent = label;
        (group === 'live' ? live : cum).appendChild(el('div', { class: 'tile', 'data-key': key }, v, lab));
      }
      const node = el('article', { class: 'dash-card', 'data-testid': 'dash-queue', 'data-id': id },
        el('header', { class: 'dash-card-head' }, el('div', { class: 'dash-card-title' }, name, sub), state),
        el('h4', { class: 'dash-group', text: 'Now' }), live,
        el('h4', { class: 'dash-group', 'data-testid': 'dash-interval-label' }), cum);
      c = { node, name, sub, state, values, slTitle, groupLabel: node.querySelector('[data-testid=dash-interval-label]') };
      A.cards.set(id, c);
    }
    setText(c.name, q.display_name || id);
    setText(c.sub, [id, q.address].filter(Boolean).join(' · '));
    setText(c.state, queueStateText(q));
    c.state.setAttribute('data-state', queueStateKey(q));
    const sel = $('dash-interval');
    setText(c.groupLabel, sel.options[sel.selectedIndex] ? sel.options[sel.selectedIndex].textContent : '');
    return c;
  }

  function fillCard(c, stats) {
    const rt = (stats && stats.realtime) || {};
    const iv = (stats && stats.interval) || {};
    for (const [group, key, , , fmt] of DASH_TILES) {
      const src = group === 'live' ? rt : iv;
      setText(c.values[key], fmt(src[key]));
    }
    const thr = iv.service_level_threshold_s;
    setText(c.slTitle, Number.isFinite(Number(thr)) && thr !== null ? `Service level (≤ ${fmtSeconds(thr)})` : 'Service level');
    c.node.classList.toggle('has-waiting', Number(rt.seekers_waiting) > 0);
  }

  function renderDashSelect() {
    const sel = $('dash-select');
    const cur = sel.value || '';
    const frag = document.createDocumentFragment();
    const mine = dashQueues();
    frag.appendChild(el('option', { value: '', text: A.admin ? 'All queues' : 'All my queues' }));
    for (const q of mine) frag.appendChild(el('option', { value: qid(q), text: q.display_name || qid(q) }));
    sel.replaceChildren(frag);
    sel.value = mine.some((q) => qid(q) === cur) ? cur : '';
  }

  /** The queues whose statistics this user may see: every queue for administrators, else the ones they manage. */
  function dashQueues() { return A.queues.filter(managesQueue); }

  async function refreshDashboard() {
    if (A.page !== 'dashboard' || A.dashBusy) return;
    A.dashBusy = true;
    const gen = A.dashGen;
    try {
      await loadAdminQueues();
      if (gen !== A.dashGen || A.page !== 'dashboard') return;
      renderDashSelect();
      const pick = $('dash-select').value;
      const shown = dashQueues().filter((q) => !pick || qid(q) === pick);
      const { from, to } = dashInterval();
      const results = await Promise.all(shown.map((q) =>
        api('GET', `/queues/${encId(qid(q))}/stats?from=${Math.floor(from)}&to=${Math.floor(to)}`)
          .then((s) => ({ q, s }), (e) => ({ q, e }))));
      if (gen !== A.dashGen || A.page !== 'dashboard') return;
      const grid = $('dash-grid');
      const keep = new Set();
      let err = '';
      const frag = document.createDocumentFragment();
      for (const { q, s, e } of results) {
        const c = dashCard(q);
        keep.add(qid(q));
        if (s) fillCard(c, s);
        else err = `${qid(q)}: ${e.message}`;
        frag.appendChild(c.node);
      }
      for (const id of [...A.cards.keys()]) if (!keep.has(id)) A.cards.delete(id);
      // Re-append only when the order or set changed, so the tiles do not flicker.
      const now = [...grid.children];
      const want = [...frag.childNodes];
      if (now.length !== want.length || now.some((n, i) => n !== want[i])) grid.replaceChildren(...want);
      if (!results.length) grid.replaceChildren(el('p', { class: 'empty-note', text: 'No queues.' }));
      showAdminError('dash-error', err);
      setText($('dash-updated'), `Updated ${new Date().toLocaleTimeString()}`);
    } finally {
      A.dashBusy = false;
    }
  }

  function scheduleDashboard(delay) {
    clearTimeout(A.dashTimer);
    A.dashTimer = null;
    if (A.page !== 'dashboard' || document.visibilityState !== 'visible' || !S.signedIn) return;
    A.dashTimer = setTimeout(async () => {
      A.dashTimer = null;
      try { await refreshDashboard(); } catch (_) { /* shown on the next round */ }
      if (!A.dashTimer) scheduleDashboard(DASH_EVERY_MS);
    }, delay);
  }

  function startDashboard() { A.dashGen += 1; scheduleDashboard(0); }
  function stopDashboard() { clearTimeout(A.dashTimer); A.dashTimer = null; A.dashGen += 1; }

  // ---------------------------------------------------------------- compliance and audit
  // Compliance officers: e-discovery search over the archive (hits with the matched words
  // marked, the whole archived conversation, exports), ethical walls, the violations they
  // catch (live over the WebSocket), disclaimers, retention policies and legal holds.
  // Auditors, admins and compliance officers: the audit log. Routes: #/compliance, #/audit.
  const SEARCH_PAGE = 50;
  const AUDIT_PAGE = 100;
  const CONV_KINDS = [['direct', 'Direct'], ['group', 'Group'], ['queue', 'Queue']];
  const KIND_LABEL = { direct: 'Direct', group: 'Group', queue: 'Queue' };
  const EXPORT_EXT = { eml: 'eml', jsonl: 'jsonl', csv: 'csv', xml: 'xml' };
  const FREQ_LABEL = { conversation: 'Each new conversation', pair_day: 'Once per pair per day' };
  const C = {
    officer: false,
    auditor: false,
    section: 'search',
    groups: [], // GET /groups: [{id (slug), name}]
    groupsLoaded: false,
    query: null, // the filters of the search shown (exports use them)
    hits: [],
    nextOffset: null,
    searchGen: 0,
    searching: false,
    conv: null, // id of the archived conversation shown
    convGen: 0,
    walls: [],
    violations: [],
    violationIds: new Set(),
    unseen: 0, // live violations not looked at yet
    disclaimers: [],
    dscEditing: null, // null: new; else the id being edited
    dscTexts: [], // [{lang, text}] in the form
    retention: [], // [{group, days}] in the form
    holds: [],
    audit: [],
    auditNext: null,
    auditBusy: false,
    auditGen: 0,
  };

  function startCompliance(roles) {
    C.officer = roles.includes('compliance_officer');
    C.auditor = C.officer || roles.includes('auditor') || roles.includes('admin');
    $('nav-compliance').hidden = !C.officer;
    $('nav-audit').hidden = !C.auditor;
    $('compliance-nav').hidden = !(C.officer || C.auditor);
    renderViolationBadge();
  }

  function fmtFull(ms) {
    const t = toMs(ms);
    if (!t) return '';
    return new Date(t).toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function timeNode(ms, cls) {
    const t = toMs(ms);
    return el('time', { class: cls || 'cmp-time', datetime: t ? new Date(t).toISOString() : null, text: fmtFull(t) });
  }

  /** A person as "Display Name" with the address beside it (or just the address). */
  function personNode(addr, testid) {
    const a = lower(addr);
    if (!a) return el('span', { class: 'muted', 'data-testid': testid, text: 'system' });
    const u = S.users.get(a);
    const name = u && u.display_name && u.display_name !== a ? u.display_name : '';
    return el('span', { class: 'cmp-person', 'data-testid': testid, 'data-address': a, title: a },
      name ? el('span', { class: 'cmp-person-name', text: name }) : null,
      el('span', { class: name ? 'cmp-person-addr muted' : 'cmp-person-addr', text: name ? ` ${a}` : a }));
  }

  function groupName(slug) {
    const g = C.groups.find((x) => x.id === slug);
    return g ? g.name : String(slug || '');
  }

  function cmpError(id, msg) { showAdminError(id, msg); }

  async function loadGroups() {
    try {
      const r = await api('GET', '/groups');
      C.groups = asList(r, 'groups', 'items').filter((g) => g && g.id)
        .map((g) => ({ id: String(g.id), name: String(g.name || g.id) }))
        .sort((a, b) => a.name.localeCompare(b.name));
      C.groupsLoaded = true;
    } catch (e) {
      if (!C.groupsLoaded && S.groups.length) C.groups = S.groups.map((g) => ({ id: g.id, name: g.name }));
    }
    fillGroupSelects();
  }

  function fillSelect(sel, options, keep) {
    const cur = keep === undefined ? sel.value : keep;
    sel.replaceChildren(...options.map(([value, label]) => el('option', { value, text: label })));
    if (options.some(([v]) => v === cur)) sel.value = cur;
  }

  function fillGroupSelects() {
    const gs = C.groups.map((g) => [g.id, g.name]);
    fillSelect($('cmp-group'), [['', 'Any group'], ...gs]);
    fillSelect($('wall-a'), [['', 'Choose a group…'], ...gs]);
    fillSelect($('wall-b'), [['', 'Choose a group…'], ...gs]);
    fillSelect($('dsc-audience'), [['all', 'Anyone'], ['guests', 'A guest (external)'], ...C.groups.map((g) => [`group:${g.id}`, `In group ${g.name}`])]);
    if ($('ret-rows').hasAttribute('data-loaded')) renderRetention();
  }

  function fillPeople() {
    const dl = $('cmp-people');
    const people = [...S.users.values()].filter((u) => u && u.address).sort((a, b) => String(a.address).localeCompare(String(b.address)));
    if (dl.childElementCount === people.length) return;
    dl.replaceChildren(...people.map((u) => el('option', { value: u.address, label: u.display_name || u.address })));
  }

  function showCompliance() {
    loadGroups();
    fillPeople();
    showSection(C.section);
  }

  function showSection(name) {
    C.section = name;
    for (const b of document.querySelectorAll('#compliance-view .subtab')) {
      const on = b.getAttribute('data-section') === name;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', String(on));
      $(`cmp-${b.getAttribute('data-section')}`).hidden = !on;
    }
    if (name === 'walls') loadWalls();
    else if (name === 'violations') { C.unseen = 0; renderViolationBadge(); loadViolations(); }
    else if (name === 'disclaimers') loadDisclaimers();
    else if (name === 'retention') { loadRetention(); loadHolds(); }
    else if (name === 'search' && window.matchMedia('(min-width: 721px)').matches) $('cmp-q').focus({ preventScroll: true });
  }

  // ---------------- e-discovery
  /** "YYYY-MM-DD" from a date input as ms: the start of that local day, or its end. */
  function dayMs(v, end) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(v || ''));
    if (!m) return null;
    const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (end ? 1 : 0));
    return end ? d.getTime() - 1 : d.getTime();
  }

  function readSearchForm() {
    return {
      q: $('cmp-q').value.trim(),
      participant: lower($('cmp-participant').value.trim()),
      group: $('cmp-group').value,
      kind: $('cmp-kind').value,
      from: dayMs($('cmp-from').value, false),
      to: dayMs($('cmp-to').value, true),
    };
  }

  function searchParams(f) {
    const p = new URLSearchParams();
    for (const k of ['q', 'participant', 'group', 'kind', 'from', 'to']) {
      const v = f[k];
      if (v !== null && v !== undefined && v !== '') p.set(k, String(v));
    }
    return p;
  }

  async function runSearch(more) {
    if (more && (C.searching || C.nextOffset === null || !C.query)) return;
    cmpError('cmp-search-error', '');
    if (!more) {
      const f = readSearchForm();
      if (f.from !== null && f.to !== null && f.from > f.to) { cmpError('cmp-search-error', 'The "From" date is after the "To" date.'); return; }
      C.query = f;
      C.hits = [];
      C.nextOffset = null;
    }
    const gen = more ? C.searchGen : ++C.searchGen;
    const p = searchParams(C.query);
    p.set('limit', String(SEARCH_PAGE));
    if (more) p.set('offset', String(C.nextOffset));
    C.searching = true;
    $('cmp-search-submit').disabled = true;
    $('cmp-more').disabled = true;
    setText($('cmp-status'), more ? 'Loading more…' : 'Searching…');
    try {
      const r = await api('GET', `/archive/search?${p}`);
      if (gen !== C.searchGen) return;
      const seen = new Set(C.hits.map((h) => h.id));
      for (const h of asList(r, 'hits')) if (h && typeof h === 'object' && !seen.has(h.id)) C.hits.push(h);
      C.nextOffset = r && typeof r.next_offset === 'number' ? r.next_offset : null;
    } catch (e) {
      if (gen !== C.searchGen) return;
      cmpError('cmp-search-error', e.message);
      if (!more) C.query = null;
    } finally {
      if (gen === C.searchGen) {
        C.searching = false;
        $('cmp-search-submit').disabled = false;
        $('cmp-more').disabled = false;
        renderHits();
      }
    }
  }

  function renderHits() {
    const box = $('cmp-results');
    const frag = document.createDocumentFragment();
    for (const h of C.hits) frag.appendChild(hitNode(h));
    if (C.query && !C.hits.length) frag.appendChild(el('p', { class: 'empty-note', 'data-testid': 'cmp-no-hits', text: 'Nothing in the archive matches.' }));
    box.replaceChildren(frag);
    const n = C.hits.length;
    setText($('cmp-status'), !C.query ? 'Search the archive by keywords, people, group, kind and dates.'
      : `${n} ${n === 1 ? 'hit' : 'hits'}${C.nextOffset !== null ? ' so far' : ''}`);
    $('cmp-more').hidden = C.nextOffset === null;
    for (const b of document.querySelectorAll('[data-testid=cmp-export-search] button')) b.disabled = !C.query;
  }

  /** The snippet's segments; matched words in <mark>. Text only, never HTML. */
  function fillSnippet(node, segs) {
    if (typeof segs === 'string') { node.textContent = segs; return; }
    for (const s of Array.isArray(segs) ? segs : []) {
      if (!s || typeof s !== 'object') continue;
      const t = s.text === null || s.text === undefined ? '' : String(s.text);
      node.appendChild(s.hit ? el('mark', { 'data-testid': 'cmp-hit-mark', text: t }) : document.createTextNode(t));
    }
  }

  function hitNode(h) {
    const conv = Number(h.conversation);
    const snippet = el('div', { class: 'cmp-snippet', 'data-testid': 'cmp-hit-snippet' });
    fillSnippet(snippet, h.snippet);
    const ckind = String(h.conversation_kind || '');
    const row = el('div', {
      class: 'cmp-hit' + (conv === C.conv ? ' active' : ''), 'data-testid': 'cmp-hit', 'data-id': String(h.id),
      'data-conversation': String(conv), 'data-kind': String(h.kind || ''), role: 'button', tabindex: '0',
      title: 'Show the whole conversation',
    },
    el('div', { class: 'cmp-hit-meta' },
      timeNode(h.ts),
      el('span', { class: 'state-pill', 'data-testid': 'cmp-hit-kind', text: String(h.kind || '') }),
      personNode(h.actor, 'cmp-hit-actor'),
      el('span', { class: 'cmp-hit-conv muted', 'data-testid': 'cmp-hit-conversation', text: `${KIND_LABEL[ckind] || ckind || 'Conversation'} #${conv}` })),
    snippet);
    const open = () => openArchived(conv);
    row.addEventListener('click', open);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
    return row;
  }

  async function openArchived(id) {
    if (!Number.isFinite(id) || id <= 0) return;
    C.conv = id;
    const gen = ++C.convGen;
    for (const n of document.querySelectorAll('#cmp-results .cmp-hit')) n.classList.toggle('active', Number(n.getAttribute('data-conversation')) === id);
    const box = $('cmp-conv');
    box.hidden = false;
    box.setAttribute('data-id', String(id));
    setText($('cmp-conv-title'), `Conversation #${id}`);
    $('cmp-conv-people').replaceChildren();
    $('cmp-records').replaceChildren(el('li', { class: 'empty-note', text: 'Loading…' }));
    cmpError('cmp-conv-error', '');
    try {
      const r = await api('GET', `/archive/conversations/${id}`);
      if (gen !== C.convGen) return;
      renderArchived(id, r || {});
    } catch (e) {
      if (gen !== C.convGen) return;
      $('cmp-records').replaceChildren();
      cmpError('cmp-conv-error', e.message);
    }
    if (window.matchMedia('(max-width: 1100px)').matches) box.scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  function renderArchived(id, r) {
    const c = (r && r.conversation) || {};
    const kind = String(c.kind || '');
    const title = c.title ? String(c.title) : `${KIND_LABEL[kind] || 'Conversation'} #${id}`;
    setText($('cmp-conv-title'), c.title ? `${title} · ${KIND_LABEL[kind] || kind} #${id}` : title);
    $('cmp-conv').setAttribute('data-kind', kind);
    const people = Array.isArray(c.participants) ? c.participants : [];
    const pbox = $('cmp-conv-people');
    pbox.replaceChildren(...people.map((p, i) => {
      const a = lower(p && (p.address || p));
      const name = p && p.display_name ? String(p.display_name) : '';
      return el('span', { class: 'cmp-participant', 'data-testid': 'cmp-conv-participant', 'data-address': a },
        `${i ? ', ' : ''}${name && name !== a ? `${name} <${a}>` : a}`);
    }));
    const names = new Map(people.map((p) => [lower(p && p.address), p && p.display_name ? String(p.display_name) : '']));
    const list = $('cmp-records');
    const frag = document.createDocumentFragment();
    for (const rec of asList(r, 'records')) {
      if (!rec || typeof rec !== 'object') continue;
      const actor = lower(rec.actor);
      const kindR = String(rec.kind || '');
      const chat = kindR === 'message' && actor;
      const who = actor ? (names.get(actor) || (S.users.get(actor) || {}).display_name || actor) : '';
      frag.appendChild(el('li', { class: chat ? 'cmp-record' : 'cmp-record cmp-sys', 'data-testid': 'cmp-record', 'data-id': String(rec.id), 'data-kind': kindR },
        el('div', { class: 'cmp-record-meta' },
          timeNode(rec.ts),
          el('span', { class: 'cmp-record-actor', 'data-testid': 'cmp-record-actor', title: actor, text: who || 'system' }),
          chat ? null : el('span', { class: 'state-pill', text: kindR })),
        el('div', { class: 'cmp-record-body', 'data-testid': 'cmp-record-body', text: rec.body === null || rec.body === undefined ? '' : String(rec.body) })));
    }
    if (!frag.childNodes.length) frag.appendChild(el('li', { class: 'empty-note', text: 'No records.' }));
    list.replaceChildren(frag);
  }

  function closeArchived() {
    C.conv = null;
    C.convGen += 1;
    $('cmp-conv').hidden = true;
    for (const n of document.querySelectorAll('#cmp-results .cmp-hit.active')) n.classList.remove('active');
  }

  /** filename="…" or filename*=UTF-8''… of a Content-Disposition header, made harmless. */
  function dispositionName(h) {
    if (!h) return '';
    let name = '';
    const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(h);
    if (star) { try { name = decodeURIComponent(star[1].trim()); } catch (_) { name = ''; } }
    if (!name) { const m = /filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;\s]+)/i.exec(h); if (m) name = m[1] || m[2] || ''; }
    return name.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, '_').replace(/^\.+/, '').slice(0, 200);
  }

  /** GET /archive/export with the session, saved through a Blob URL. */
  async function exportArchive(params, format, btn, errId) {
    const p = new URLSearchParams(params);
    p.set('format', format);
    cmpError(errId, '');
    btn.disabled = true;
    const label = btn.textContent;
    setText(btn, 'Exporting…');
    try {
      let res;
      try {
        const headers = { Accept: '*/*' };
        const t = csrfToken();
        if (t) headers['X-CSRF-Token'] = t;
        res = await fetch(`${API}/archive/export?${p}`, { method: 'GET', headers, credentials: 'same-origin', cache: 'no-store' });
      } catch (_) {
        throw new Error('Cannot reach the server.');
      }
      if (!res.ok) {
        let msg = `Export failed (HTTP ${res.status}).`;
        try { const j = await res.json(); if (j && j.error && typeof j.error.message === 'string' && j.error.message) msg = j.error.message; } catch (_) { /* not JSON */ }
        if (res.status === 401) sessionEnded();
        throw new Error(msg);
      }
      const blob = await res.blob();
      const name = dispositionName(res.headers.get('Content-Disposition')) || `switchboard-export.${EXPORT_EXT[format] || format}`;
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: name, hidden: true, 'data-testid': 'cmp-download' });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      cmpError(errId, e.message);
    } finally {
      setText(btn, label);
      btn.disabled = false;
    }
  }

  // ---------------- ethical walls
  async function loadWalls() {
    try {
      const r = await api('GET', '/walls');
      C.walls = asList(r, 'walls', 'items').filter((w) => w && typeof w === 'object');
      cmpError('cmp-walls-error', '');
    } catch (e) {
      cmpError('cmp-walls-error', e.message);
    }
    renderWalls();
    $('wall-list').setAttribute('data-loaded', 'true');
  }

  function renderWalls() {
    const body = $('wall-list');
    const frag = document.createDocumentFragment();
    if (!C.walls.length) frag.appendChild(el('tr', null, el('td', { colspan: '5', class: 'empty-note', text: 'No ethical walls yet.' })));
    for (const w of C.walls) {
      const id = String(w.id);
      const enabled = w.enabled !== false;
      const mode = el('select', { 'data-testid': 'wall-row-mode', 'aria-label': `Mode of ${w.name || id}` },
        el('option', { value: 'block', text: 'Block' }), el('option', { value: 'monitor', text: 'Monitor' }));
      mode.value = w.mode === 'monitor' ? 'monitor' : 'block';
      mode.addEventListener('change', () => updateWall(w, { mode: mode.value }, mode));
      const toggle = el('button', { type: 'button', class: 'ghost small' + (enabled ? ' danger' : ''), 'data-testid': 'wall-toggle', text: enabled ? 'Disable' : 'Enable' });
      toggle.addEventListener('click', () => updateWall(w, { enabled: !enabled }, toggle));
      frag.appendChild(el('tr', { class: 'queue-row', 'data-testid': 'wall-row', 'data-id': id, 'data-name': String(w.name || ''), 'data-mode': String(w.mode || ''), 'data-state': enabled ? 'enabled' : 'disabled' },
        el('td', { class: 'mq-name' }, el('div', { class: 'mq-display', 'data-testid': 'wall-row-name', text: String(w.name || id) }),
          w.updated_at || w.created_at ? el('div', { class: 'mq-desc muted', text: `Changed ${fmtFull(w.updated_at || w.created_at)}` }) : null),
        el('td', { 'data-label': 'Between', 'data-testid': 'wall-row-groups', text: `${groupName(w.group_a)} ↔ ${groupName(w.group_b)}` }),
        el('td', { 'data-label': 'Mode' }, mode),
        el('td', null, el('span', { class: 'state-pill', 'data-state': enabled ? 'open' : 'disabled', 'data-testid': 'wall-row-state', text: enabled ? 'Enabled' : 'Disabled' })),
        el('td', { class: 'mq-actions' }, toggle)));
    }
    body.replaceChildren(frag);
  }

  async function updateWall(w, change, ctl) {
    ctl.disabled = true;
    cmpError('cmp-walls-error', '');
    try {
      await api('PUT', `/walls/${encId(w.id)}`, change);
    } catch (e) {
      cmpError('cmp-walls-error', `${w.name || w.id}: ${e.message}`);
    }
    await loadWalls();
  }

  async function createWall(e) {
    e.preventDefault();
    const name = $('wall-name').value.trim();
    const a = $('wall-a').value;
    const b = $('wall-b').value;
    const mode = $('wall-mode').value;
    const fail = (m) => cmpError('wall-form-error', m);
    if (!name) { fail('Give the wall a name.'); $('wall-name').focus(); return; }
    if (!a || !b) { fail('Choose the two groups the wall separates.'); return; }
    if (a === b) { fail('A wall separates two different groups.'); return; }
    fail('');
    $('wall-create').disabled = true;
    try {
      await api('POST', '/walls', { name, group_a: a, group_b: b, mode });
      $('wall-name').value = '';
      $('wall-a').value = '';
      $('wall-b').value = '';
      toast(['Ethical wall "', U(name), '" created.']);
    } catch (err) {
      fail(err.message);
    } finally {
      $('wall-create').disabled = false;
    }
    await loadWalls();
  }

  // ---------------- violations
  function renderViolationBadge() {
    const n = C.unseen;
    for (const id of ['nav-compliance-count', 'cmp-violations-count']) {
      const b = $(id);
      b.hidden = n === 0;
      setText(b, n > 99 ? '99+' : String(n));
    }
  }

  function violationKey(v) { return v.id === undefined || v.id === null ? JSON.stringify(v) : String(v.id); }

  async function loadViolations() {
    try {
      const r = await api('GET', '/compliance/violations?limit=200');
      const list = asList(r, 'violations', 'items').filter((v) => v && typeof v === 'object');
      // Live ones that the snapshot does not hold yet stay on top.
      const listed = new Set(list.map(violationKey));
      const live = C.violations.filter((v) => !listed.has(violationKey(v)) && toMs(v.ts) >= (list.length ? toMs(list[0].ts) : 0));
      C.violations = [...live, ...list];
      C.violationIds = new Set(C.violations.map(violationKey));
      cmpError('cmp-violations-error', '');
    } catch (e) {
      cmpError('cmp-violations-error', e.message);
    }
    renderViolations();
    $('violation-list').setAttribute('data-loaded', 'true');
  }

  function onViolation(f) {
    if (!C.officer) return;
    const v = Object.assign({}, f);
    delete v.type;
    const key = violationKey(v);
    if (C.violationIds.has(key)) return;
    C.violationIds.add(key);
    C.violations.unshift(v);
    v.live = true;
    const looking = A.page === 'compliance' && C.section === 'violations' && document.visibilityState === 'visible';
    if (!looking) C.unseen += 1;
    renderViolationBadge();
    renderViolations();
    const what = v.action === 'blocked' ? 'blocked' : 'flagged';
    toast(['Ethical wall "', U(v.wall_name || v.wall || ''), '": ', U(displayName(v.actor)), ' → ', U(displayName(v.other)), ` ${what}.`]);
  }

  function renderViolations() {
    const body = $('violation-list');
    const frag = document.createDocumentFragment();
    if (!C.violations.length) frag.appendChild(el('tr', null, el('td', { colspan: '6', class: 'empty-note', text: 'No violations.' })));
    for (const v of C.violations) {
      const action = String(v.action || '');
      frag.appendChild(el('tr', { class: 'violation-row' + (v.live ? ' live' : ''), 'data-testid': 'violation-row', 'data-id': String(v.id ?? ''), 'data-action': action, 'data-actor': lower(v.actor), 'data-other': lower(v.other) },
        el('td', { 'data-label': 'Time' }, timeNode(v.ts)),
        el('td', { 'data-label': 'Wall', 'data-testid': 'violation-wall' },
          el('div', { class: 'mq-display', text: String(v.wall_name || v.wall || '') }),
          el('div', { class: 'mq-desc muted', text: v.mode ? `mode ${v.mode}` : '' })),
        el('td', { 'data-label': 'Action' }, el('span', { class: 'state-pill', 'data-state': action === 'blocked' ? 'closed' : 'busy', 'data-testid': 'violation-action', text: action })),
        el('td', { 'data-label': 'Who' }, personNode(v.actor, 'violation-actor')),
        el('td', { 'data-label': 'With' }, personNode(v.other, 'violation-other')),
        el('td', { class: 'cmp-detail', 'data-testid': 'violation-detail', text: [v.detail ? String(v.detail) : '', typeof v.conversation === 'number' ? `conversation #${v.conversation}` : ''].filter(Boolean).join(' · ') })));
    }
    body.replaceChildren(frag);
  }

  // ---------------- disclaimers
  async function loadDisclaimers() {
    try {
      const r = await api('GET', '/disclaimers');
      C.disclaimers = asList(r, 'disclaimers', 'items').filter((d) => d && typeof d === 'object');
      cmpError('cmp-disclaimers-error', '');
    } catch (e) {
      cmpError('cmp-disclaimers-error', e.message);
    }
    renderDisclaimers();
    $('dsc-list').setAttribute('data-loaded', 'true');
  }

  function audienceLabel(a) {
    const s = String(a || 'all');
    if (s === 'all') return 'Anyone';
    if (s === 'guests') return 'Guests';
    if (s.startsWith('group:')) return `Group ${groupName(s.slice(6))}`;
    return s;
  }

  function disclaimerInput(d) {
    const texts = {};
    if (d.texts && typeof d.texts === 'object') for (const [k, v] of Object.entries(d.texts)) texts[String(k)] = String(v ?? '');
    return {
      name: String(d.name || ''),
      kinds: Array.isArray(d.kinds) ? d.kinds.map(String) : [],
      audience: String(d.audience || 'all'),
      frequency: String(d.frequency || 'conversation'),
      texts,
      fallback: String(d.fallback || Object.keys(texts)[0] || 'en'),
      enabled: d.enabled !== false,
    };
  }

  function renderDisclaimers() {
    const body = $('dsc-list');
    const frag = document.createDocumentFragment();
    if (!C.disclaimers.length) frag.appendChild(el('tr', null, el('td', { colspan: '7', class: 'empty-note', text: 'No disclaimers yet.' })));
    for (const d of C.disclaimers) {
      const id = String(d.id);
      const enabled = d.enabled !== false;
      const edit = el('button', { type: 'button', class: 'ghost small', 'data-testid': 'dsc-edit', text: 'Edit' });
      edit.addEventListener('click', () => openDisclaimer(d));
      const toggle = el('button', { type: 'button', class: 'ghost small' + (enabled ? ' danger' : ''), 'data-testid': 'dsc-toggle', text: enabled ? 'Disable' : 'Enable' });
      toggle.addEventListener('click', () => toggleDisclaimer(d, toggle));
      const langs = d.texts && typeof d.texts === 'object' ? Object.keys(d.texts) : [];
      const fb = String(d.fallback || '');
      const preview = fb && d.texts && d.texts[fb] ? String(d.texts[fb]) : (langs.length ? String(d.texts[langs[0]]) : '');
      frag.appendChild(el('tr', { class: 'queue-row', 'data-testid': 'dsc-row', 'data-id': id, 'data-name': String(d.name || ''), 'data-state': enabled ? 'enabled' : 'disabled' },
        el('td', { class: 'mq-name' }, el('div', { class: 'mq-display', 'data-testid': 'dsc-row-name', text: String(d.name || id) }),
          preview ? el('div', { class: 'mq-desc muted', text: preview.length > 120 ? `${preview.slice(0, 119)}…` : preview }) : null),
        el('td', { 'data-label': 'Kinds', text: (Array.isArray(d.kinds) ? d.kinds : []).map((k) => KIND_LABEL[k] || k).join(', ') || '—' }),
        el('td', { 'data-label': 'Audience', text: audienceLabel(d.audience) }),
        el('td', { 'data-label': 'Frequency', text: FREQ_LABEL[d.frequency] || String(d.frequency || '') }),
        el('td', { 'data-label': 'Languages', 'data-testid': 'dsc-row-langs', text: langs.map((l) => (l === fb ? `${l}*` : l)).join(', ') }),
        el('td', null, el('span', { class: 'state-pill', 'data-state': enabled ? 'open' : 'disabled', 'data-testid': 'dsc-row-state', text: enabled ? 'Enabled' : 'Disabled' })),
        el('td', { class: 'mq-actions' }, edit, toggle)));
    }
    body.replaceChildren(frag);
  }

  async function toggleDisclaimer(d, btn) {
    btn.disabled = true;
    cmpError('cmp-disclaimers-error', '');
    try {
      const body = disclaimerInput(d);
      body.enabled = !body.enabled;
      await api('PUT', `/disclaimers/${encId(d.id)}`, body);
    } catch (e) {
      cmpError('cmp-disclaimers-error', `${d.name || d.id}: ${e.message}`);
    }
    await loadDisclaimers();
  }

  function openDisclaimer(d) {
    const v = disclaimerInput(d || { kinds: ['direct', 'group', 'queue'], texts: { en: '' }, fallback: 'en' });
    C.dscEditing = d ? d.id : null;
    setText($('dsc-title'), d ? `Edit disclaimer: ${v.name}` : 'New disclaimer');
    $('dsc-name').value = v.name;
    for (const cb of document.querySelectorAll('#dsc-form .dsc-kind')) cb.checked = v.kinds.includes(cb.value);
    const aud = $('dsc-audience');
    if (![...aud.options].some((o) => o.value === v.audience)) aud.appendChild(el('option', { value: v.audience, text: audienceLabel(v.audience) }));
    aud.value = v.audience;
    $('dsc-frequency').value = FREQ_LABEL[v.frequency] ? v.frequency : 'conversation';
    C.dscTexts = Object.entries(v.texts).map(([lang, text]) => ({ lang, text }));
    if (!C.dscTexts.length) C.dscTexts.push({ lang: 'en', text: '' });
    $('dsc-enabled').checked = v.enabled;
    renderDscTexts();
    renderDscFallback(v.fallback);
    cmpError('dsc-error', '');
    $('dsc-form').hidden = false;
    $('dsc-form').setAttribute('data-id', d ? String(d.id) : '');
    $('dsc-form').scrollIntoView({ block: 'nearest' });
    $('dsc-name').focus({ preventScroll: true });
  }

  function closeDisclaimer() {
    $('dsc-form').hidden = true;
    C.dscEditing = null;
    cmpError('dsc-error', '');
  }

  function renderDscTexts() {
    const box = $('dsc-texts');
    box.replaceChildren(...C.dscTexts.map((t, i) => {
      const lang = boundInput({ type: 'text', class: 'dsc-lang', 'data-testid': 'dsc-lang', maxlength: '16', placeholder: 'en', spellcheck: 'false', autocapitalize: 'none', 'aria-label': 'Language' }, t, 'lang', (x) => x.trim().toLowerCase());
      lang.addEventListener('input', () => renderDscFallback());
      const text = el('textarea', { class: 'dsc-text', 'data-testid': 'dsc-text', rows: '2', maxlength: '4000', 'aria-label': 'Disclaimer text' });
      text.value = t.text;
      text.addEventListener('input', () => { t.text = text.value; });
      const del = rowButton('dsc-text-remove', 'Remove', 'Remove this language', () => {
        C.dscTexts.splice(i, 1);
        renderDscTexts();
        renderDscFallback();
      });
      return el('div', { class: 'qf-row dsc-text-row', 'data-testid': 'dsc-text-row' }, lang, text, del);
    }));
    if (!C.dscTexts.length) box.appendChild(el('p', { class: 'empty-note', text: 'No texts yet.' }));
  }

  function renderDscFallback(want) {
    const sel = $('dsc-fallback');
    const langs = [...new Set(C.dscTexts.map((t) => t.lang.trim().toLowerCase()).filter(Boolean))];
    fillSelect(sel, langs.map((l) => [l, l]), want === undefined ? sel.value : want);
    if (!sel.value && langs.length) sel.value = langs[0];
  }

  async function saveDisclaimer(e) {
    e.preventDefault();
    const fail = (m) => cmpError('dsc-error', m);
    const name = $('dsc-name').value.trim();
    const kinds = [...document.querySelectorAll('#dsc-form .dsc-kind:checked')].map((c) => c.value);
    const texts = {};
    for (const t of C.dscTexts) {
      const lang = t.lang.trim().toLowerCase();
      const text = t.text.trim();
      if (!lang && !text) continue;
      if (!lang) { fail('Every text needs a language (en, de, …).'); return; }
      if (!/^[a-z]{2,3}([-_][a-z0-9]{2,8})*$/.test(lang)) { fail(`Not a language code: ${lang}`); return; }
      if (Object.hasOwn(texts, lang)) { fail(`Language ${lang} is there twice.`); return; }
      if (!text) { fail(`The ${lang} text is empty.`); return; }
      texts[lang] = text;
    }
    const fallback = $('dsc-fallback').value;
    if (!name) { fail('Give the disclaimer a name.'); $('dsc-name').focus(); return; }
    if (!kinds.length) { fail('Choose at least one kind of conversation.'); return; }
    if (!Object.keys(texts).length) { fail('Write the text in at least one language.'); return; }
    if (!Object.hasOwn(texts, fallback)) { fail('The fallback language must be one of the texts.'); return; }
    const body = { name, kinds, audience: $('dsc-audience').value, frequency: $('dsc-frequency').value, texts, fallback, enabled: $('dsc-enabled').checked };
    fail('');
    $('dsc-save').disabled = true;
    try {
      if (C.dscEditing === null) await api('POST', '/disclaimers', body);
      else await api('PUT', `/disclaimers/${encId(C.dscEditing)}`, body);
      closeDisclaimer();
      toast(['Disclaimer "', U(name), '" saved.']);
    } catch (err) {
      fail(err.message);
    } finally {
      $('dsc-save').disabled = false;
    }
    await loadDisclaimers();
  }

  // ---------------- retention and legal holds
  async function loadRetention() {
    try {
      const r = await api('GET', '/retention');
      C.retention = asList(r, 'policies', 'items').filter((p) => p && typeof p === 'object')
        .map((p) => ({ group: p.group ? String(p.group) : '', days: Number.isFinite(Number(p.days)) ? String(p.days) : '' }));
      cmpError('ret-error', '');
    } catch (e) {
      cmpError('ret-error', e.message);
    }
    $('ret-saved').hidden = true;
    renderRetention();
    $('ret-rows').setAttribute('data-loaded', 'true');
  }

  function renderRetention() {
    const box = $('ret-rows');
    const scopes = [['', 'Everything (global)'], ...C.groups.map((g) => [g.id, `Group ${g.name}`])];
    box.replaceChildren(...C.retention.map((p, i) => {
      const sel = el('select', { 'data-testid': 'retention-scope', 'aria-label': 'Applies to' });
      const opts = scopes.some(([v]) => v === p.group) ? scopes : [...scopes, [p.group, `Group ${p.group}`]];
      fillSelect(sel, opts, p.group);
      sel.addEventListener('change', () => { p.group = sel.value; $('ret-saved').hidden = true; });
      const days = el('input', { type: 'number', class: 'ret-days', min: '1', step: '1', 'data-testid': 'retention-days', 'aria-label': 'Days to keep' });
      days.value = p.days;
      days.addEventListener('input', () => { p.days = days.value; $('ret-saved').hidden = true; });
      const del = rowButton('retention-remove', 'Remove', 'Remove this policy', () => { C.retention.splice(i, 1); $('ret-saved').hidden = true; renderRetention(); });
      return el('div', { class: 'qf-row', 'data-testid': 'retention-row' }, sel, el('label', { class: 'qf-prio-label' }, 'keep for', days, 'days'), del);
    }));
    if (!C.retention.length) box.appendChild(el('p', { class: 'empty-note', text: 'No retention policy: everything is kept.' }));
  }

  async function saveRetention(e) {
    e.preventDefault();
    const fail = (m) => cmpError('ret-error', m);
    const seen = new Set();
    const policies = [];
    for (const p of C.retention) {
      const days = Number(p.days);
      if (!Number.isInteger(days) || days < 1) { fail('Days must be a whole number of at least 1.'); return; }
      if (seen.has(p.group)) { fail(p.group ? `Group ${groupName(p.group)} has two policies.` : 'There are two global policies.'); return; }
      seen.add(p.group);
      policies.push({ group: p.group || null, days });
    }
    fail('');
    $('ret-save').disabled = true;
    try {
      await api('PUT', '/retention', { policies });
      await loadRetention();
      $('ret-saved').hidden = false;
    } catch (err) {
      fail(err.message);
    } finally {
      $('ret-save').disabled = false;
    }
  }

  async function loadHolds() {
    try {
      const r = await api('GET', '/holds');
      C.holds = asList(r, 'holds', 'items').filter((h) => h && typeof h === 'object');
      cmpError('hold-error', '');
    } catch (e) {
      cmpError('hold-error', e.message);
    }
    renderHolds();
    $('hold-list').setAttribute('data-loaded', 'true');
  }

  function renderHolds() {
    const body = $('hold-list');
    const frag = document.createDocumentFragment();
    if (!C.holds.length) frag.appendChild(el('tr', null, el('td', { colspan: '5', class: 'empty-note', text: 'No legal holds.' })));
    for (const h of C.holds) {
      const active = !h.released_at;
      let release = null;
      if (active) {
        release = el('button', { type: 'button', class: 'ghost small danger', 'data-testid': 'hold-release', text: 'Release' });
        release.addEventListener('click', () => releaseHold(h, release));
      }
      frag.appendChild(el('tr', { class: 'queue-row', 'data-testid': 'hold-row', 'data-id': String(h.id), 'data-custodian': lower(h.custodian), 'data-state': active ? 'active' : 'released' },
        el('td', { class: 'mq-name' }, personNode(h.custodian, 'hold-custodian-cell')),
        el('td', { 'data-label': 'Reason', class: 'cmp-detail', 'data-testid': 'hold-reason-cell', text: String(h.reason || '') }),
        el('td', { 'data-label': 'Placed' }, timeNode(h.created_at), h.created_by ? el('div', { class: 'mq-desc muted', text: `by ${lower(h.created_by)}` }) : null),
        el('td', { 'data-label': 'Released', 'data-testid': 'hold-released' }, active ? el('span', { class: 'state-pill', 'data-state': 'open', text: 'Active' }) : timeNode(h.released_at)),
        el('td', { class: 'mq-actions' }, release)));
    }
    body.replaceChildren(frag);
  }

  async function createHold(e) {
    e.preventDefault();
    const custodian = lower($('hold-custodian').value.trim());
    const reason = $('hold-reason').value.trim();
    if (!/^[^@\s]+@[^@\s]+$/.test(custodian)) { cmpError('hold-error', 'Enter the custodian\'s address (name@domain).'); $('hold-custodian').focus(); return; }
    cmpError('hold-error', '');
    $('hold-create').disabled = true;
    try {
      await api('POST', '/holds', { custodian, reason });
      $('hold-custodian').value = '';
      $('hold-reason').value = '';
    } catch (err) {
      cmpError('hold-error', err.message);
    } finally {
      $('hold-create').disabled = false;
    }
    await loadHolds();
  }

  async function releaseHold(h, btn) {
    btn.disabled = true;
    cmpError('hold-error', '');
    try {
      await api('POST', `/holds/${encId(h.id)}/release`, {});
    } catch (e) {
      cmpError('hold-error', `${h.custodian}: ${e.message}`);
    }
    await loadHolds();
  }

  // ---------------- audit log
  function showAudit() {
    if (!C.audit.length) loadAudit(true);
    else { renderAudit(); loadAudit(true); }
  }

  async function loadAudit(reset) {
    if (!reset && (C.auditBusy || C.auditNext === null)) return;
    const gen = reset ? ++C.auditGen : C.auditGen;
    const p = new URLSearchParams({ limit: String(AUDIT_PAGE) });
    if (!reset) p.set('before', String(C.auditNext));
    C.auditBusy = true;
    $('audit-more').disabled = true;
    try {
      const r = await api('GET', `/audit?${p}`);
      if (gen !== C.auditGen) return;
      const list = asList(r, 'entries', 'items').filter((x) => x && typeof x === 'object');
      if (reset) C.audit = list;
      else {
        const seen = new Set(C.audit.map((x) => x.id));
        for (const x of list) if (!seen.has(x.id)) C.audit.push(x);
      }
      C.auditNext = r && r.next_before !== null && r.next_before !== undefined ? r.next_before : null;
      cmpError('audit-error', '');
    } catch (e) {
      if (gen === C.auditGen) cmpError('audit-error', e.message);
    } finally {
      if (gen === C.auditGen) {
        C.auditBusy = false;
        $('audit-more').disabled = false;
        renderAudit();
      }
    }
  }

  /** before/after as one line of JSON. */
  function compactJson(v) {
    if (v === null || v === undefined) return '—';
    try { return JSON.stringify(v); } catch (_) { return String(v); }
  }

  function renderAudit() {
    const body = $('audit-list');
    const frag = document.createDocumentFragment();
    if (!C.audit.length) frag.appendChild(el('tr', null, el('td', { colspan: '6', class: 'empty-note', text: 'The audit log is empty.' })));
    for (const x of C.audit) {
      const before = compactJson(x.before);
      const after = compactJson(x.after);
      frag.appendChild(el('tr', { class: 'audit-row', 'data-testid': 'audit-row', 'data-id': String(x.id ?? ''), 'data-action': String(x.action || '') },
        el('td', { 'data-label': 'Time', class: 'audit-time' }, timeNode(x.ts)),
        el('td', { 'data-label': 'Actor' }, x.actor ? personNode(x.actor, 'audit-actor') : el('span', { class: 'muted', 'data-testid': 'audit-actor', text: 'system' })),
        el('td', { 'data-label': 'Action' }, el('code', { class: 'audit-action', 'data-testid': 'audit-action', text: String(x.action || '') })),
        el('td', { 'data-label': 'Target', class: 'cmp-detail', 'data-testid': 'audit-target', text: x.target === null || x.target === undefined ? '' : (typeof x.target === 'string' ? x.target : compactJson(x.target)) }),
        el('td', { 'data-label': 'Before' }, el('code', { class: 'audit-json', 'data-testid': 'audit-before', title: before, text: before })),
        el('td', { 'data-label': 'After' }, el('code', { class: 'audit-json', 'data-testid': 'audit-after', title: after, text: after }))));
    }
    body.replaceChildren(frag);
    $('audit-more').hidden = C.auditNext === null;
  }

  function wireCompliance() {
    $('nav-compliance').addEventListener('click', () => { location.hash = '#/compliance'; });
    $('nav-audit').addEventListener('click', () => { location.hash = '#/audit'; });
    $('compliance-back').addEventListener('click', () => { location.hash = '#/'; });
    $('audit-back').addEventListener('click', () => { location.hash = '#/'; });
    for (const b of document.querySelectorAll('#compliance-view .subtab')) {
      b.addEventListener('click', () => showSection(b.getAttribute('data-section')));
    }
    $('cmp-search-form').addEventListener('submit', (e) => { e.preventDefault(); runSearch(false); });
    $('cmp-participant').addEventListener('focus', fillPeople);
    $('hold-custodian').addEventListener('focus', fillPeople);
    $('cmp-clear').addEventListener('click', () => {
      for (const id of ['cmp-q', 'cmp-participant', 'cmp-from', 'cmp-to']) $(id).value = '';
      $('cmp-group').value = '';
      $('cmp-kind').value = '';
      C.searchGen += 1;
      C.searching = false;
      $('cmp-search-submit').disabled = false;
      C.query = null;
      C.hits = [];
      C.nextOffset = null;
      cmpError('cmp-search-error', '');
      closeArchived();
      renderHits();
    });
    $('cmp-more').addEventListener('click', () => runSearch(true));
    for (const b of document.querySelectorAll('[data-testid=cmp-export-search] button')) {
      b.addEventListener('click', () => { if (C.query) exportArchive(searchParams(C.query), b.getAttribute('data-export'), b, 'cmp-search-error'); });
    }
    for (const b of document.querySelectorAll('[data-testid=cmp-export-conversation] button')) {
      b.addEventListener('click', () => { if (C.conv !== null) exportArchive({ conversation: String(C.conv) }, b.getAttribute('data-export'), b, 'cmp-conv-error'); });
    }
    $('cmp-conv-close').addEventListener('click', closeArchived);
    $('wall-form').addEventListener('submit', createWall);
    $('violations-refresh').addEventListener('click', loadViolations);
    $('dsc-new').addEventListener('click', () => openDisclaimer(null));
    $('dsc-form').addEventListener('submit', saveDisclaimer);
    $('dsc-cancel').addEventListener('click', closeDisclaimer);
    $('dsc-text-add').addEventListener('click', () => {
      C.dscTexts.push({ lang: '', text: '' });
      renderDscTexts();
      renderDscFallback();
      focusLast('dsc-texts', 'dsc-lang');
    });
    $('ret-form').addEventListener('submit', saveRetention);
    $('ret-add').addEventListener('click', () => {
      const used = new Set(C.retention.map((p) => p.group));
      const next = ['', ...C.groups.map((g) => g.id)].find((g) => !used.has(g));
      C.retention.push({ group: next === undefined ? '' : next, days: '365' });
      $('ret-saved').hidden = true;
      renderRetention();
      focusLast('ret-rows', 'retention-days');
    });
    $('hold-form').addEventListener('submit', createHold);
    $('audit-refresh').addEventListener('click', () => loadAudit(true));
    $('audit-more').addEventListener('click', () => loadAudit(false));
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && A.page === 'compliance' && C.section === 'violations' && C.unseen) {
        C.unseen = 0;
        renderViolationBadge();
      }
    });
    renderHits();
  }

  // ---------------------------------------------------------------- alerts: recipients
  // An alert arrives as a message from alerts@<domain> in the recipient's conversation with
  // that address, followed by an "alert" frame (held ones when the WebSocket connects), and
  // "alert_acked" once acknowledged (here, in another session, or by replying "ack"). Cards by
  // priority: low and normal unobtrusive and gone after a while, high prominent, urgent red
  // and persistent; "Acknowledge" when asked for. A click opens the alerts conversation.
  const ALERT_PRIORITIES = ['low', 'normal', 'high', 'urgent'];
  const PRIORITY_LABEL = { low: 'Low', normal: 'Normal', high: 'High', urgent: 'Urgent' };
  const ALERT_DISMISS_MS = { low: 8000, normal: 12000, high: 30000 }; // urgent: not on its own
  const ALERT_ACKED_LINGER_MS = 20000;
  const ALERT_MAX_CARDS = 6;
  const R = {
    alerts: new Map(), // id -> {id, title, body, priority, ack_required, created_at, conversation, reminder, acked, acking, error, node, parts, timer, hover}
    convs: new Set(), // conversation ids the alerts arrived in
    acked: new Set(), // ids acknowledged (an alert_acked may come before its card)
  };

  function isAlertsConv(c) {
    if (!c || c.kind !== 'direct') return false;
    if (R.convs.has(c.id)) return true;
    const me = S.me ? S.me.address : '';
    const at = me.indexOf('@');
    if (at < 0) return false;
    const o = othersIn(c);
    return o.length === 1 && o[0] === `alerts${me.slice(at)}`;
  }

  /** Alerts of a conversation still waiting for this user's acknowledgement. */
  function openAlertsIn(convId) {
    let n = 0;
    for (const a of R.alerts.values()) if (a.conversation === convId && a.ack_required && !a.acked) n++;
    return n;
  }

  function urgentOpen() {
    for (const a of R.alerts.values()) if (a.priority === 'urgent' && a.ack_required && !a.acked) return true;
    return false;
  }

  function onAlert(f) {
    const id = Number(f.id);
    if (!Number.isFinite(id)) return;
    const conv = Number(f.conversation);
    if (Number.isInteger(conv) && conv > 0) { R.convs.add(conv); ensureConv(conv); }
    let a = R.alerts.get(id);
    if (!a) { a = { id, reminder: false, acked: false, acking: false, error: '', node: null, timer: null, hover: false }; R.alerts.set(id, a); }
    a.title = String(f.title || '');
    a.body = String(f.body || '');
    a.priority = ALERT_PRIORITIES.includes(f.priority) ? f.priority : 'normal';
    a.ack_required = !!f.ack_required;
    a.created_at = toMs(f.created_at) || a.created_at || Date.now();
    if (Number.isInteger(conv) && conv > 0) a.conversation = conv;
    a.reminder = a.reminder || !!f.reminder;
    a.acked = a.acked || R.acked.has(id);
    a.error = '';
    showAlertCard(a);
    dirty.convs = true;
    scheduleRender();
  }

  function onAlertAcked(f) {
    const id = Number(f.id);
    if (Number.isFinite(id)) alertAcked(id);
  }

  function alertAcked(id) {
    R.acked.add(id);
    const a = R.alerts.get(id);
    if (a && !a.acked) {
      a.acked = true;
      a.error = '';
      if (a.node) { paintAlertCard(a); scheduleAlertDismiss(a); }
    }
    dirty.convs = true;
    scheduleRender();
  }

  function buildAlertCard(a) {
    const p = {
      prio: el('span', { class: 'alert-prio', 'data-testid': 'alert-priority' }),
      reminder: el('span', { class: 'alert-reminder', 'data-testid': 'alert-reminder', text: 'Reminder' }),
      time: el('time', { class: 'alert-time' }),
      close: el('button', { type: 'button', class: 'ghost small alert-close', 'data-testid': 'alert-dismiss', 'aria-label': 'Dismiss the alert', title: 'Dismiss', text: '×' }),
      title: el('div', { class: 'alert-title', 'data-testid': 'alert-title' }),
      body: el('div', { class: 'alert-body', 'data-testid': 'alert-body' }),
      status: el('span', { class: 'alert-status', 'data-testid': 'alert-status' }),
      ack: el('button', { type: 'button', class: 'small alert-ack', 'data-testid': 'alert-ack', text: 'Acknowledge' }),
    };
    const node = el('article', { class: 'alert-card', 'data-testid': 'alert-card', 'data-id': String(a.id), tabindex: '0', title: 'Open the alerts conversation' },
      el('header', { class: 'alert-head' }, p.prio, p.reminder, p.time, p.close),
      p.title, p.body,
      el('div', { class: 'alert-actions' }, p.status, p.ack));
    p.close.addEventListener('click', (e) => { e.stopPropagation(); dismissAlert(a); });
    p.ack.addEventListener('click', (e) => { e.stopPropagation(); ackAlert(a); });
    const open = () => openAlertConversation(a);
    node.addEventListener('click', (e) => {
      if (e.target.closest('button, a')) return;
      const sel = window.getSelection ? String(window.getSelection()) : '';
      if (sel) return; // selecting text to copy is not a click
      open();
    });
    node.addEventListener('keydown', (e) => {
      if (e.target !== node) return;
      if (e.key === 'Enter') { e.preventDefault(); open(); } else if (e.key === 'Escape' && !p.close.hidden) { e.preventDefault(); dismissAlert(a); }
    });
    const hold = (on) => { a.hover = on; if (on) { clearTimeout(a.timer); a.timer = null; } else scheduleAlertDismiss(a); };
    node.addEventListener('mouseenter', () => hold(true));
    node.addEventListener('mouseleave', () => hold(false));
    node.addEventListener('focusin', () => hold(true));
    node.addEventListener('focusout', (e) => { if (!node.contains(e.relatedTarget)) hold(false); });
    a.node = node;
    a.parts = p;
    return node;
  }

  function paintAlertCard(a) {
    const n = a.node;
    const p = a.parts;
    if (!n) return;
    const open = a.ack_required && !a.acked;
    n.setAttribute('data-priority', a.priority);
    n.setAttribute('data-state', a.acked ? 'acknowledged' : (a.ack_required ? 'open' : 'info'));
    n.setAttribute('data-reminder', a.reminder ? 'true' : 'false');
    n.setAttribute('data-conversation', a.conversation ? String(a.conversation) : '');
    n.classList.toggle('pulse', a.priority === 'urgent' && open);
    n.setAttribute('role', a.priority === 'urgent' || a.priority === 'high' ? 'alert' : 'status');
    setText(p.prio, PRIORITY_LABEL[a.priority]);
    p.reminder.hidden = !a.reminder;
    setText(p.time, fmtTime(a.created_at));
    p.time.title = fmtFull(a.created_at);
    setText(p.title, a.title);
    setText(p.body, a.body);
    p.body.hidden = !a.body;
    p.ack.hidden = !open;
    p.ack.disabled = !!a.acking;
    p.ack.classList.toggle('primary', a.priority !== 'urgent');
    let status = '';
    if (a.acked) status = 'Acknowledged';
    else if (a.acking) status = 'Acknowledging…';
    else if (a.error) status = a.error;
    else if (a.reminder && a.ack_required) status = 'Not acknowledged yet';
    else if (a.ack_required) status = 'Please acknowledge';
    setText(p.status, status);
    p.status.classList.toggle('err', !!a.error && !a.acked);
    // Urgent alerts that ask for an acknowledgement stay until they have it.
    p.close.hidden = a.priority === 'urgent' && open && !a.error;
  }

  function showAlertCard(a) {
    const stack = $('alert-stack');
    if (!a.node) buildAlertCard(a);
    paintAlertCard(a);
    if (stack.firstChild !== a.node) stack.insertBefore(a.node, stack.firstChild); // newest on top
    stack.hidden = false;
    a.node.classList.remove('arrive');
    void a.node.offsetWidth; // restart the arrival animation (a reminder of a card shown)
    a.node.classList.add('arrive');
    scheduleAlertDismiss(a);
    // Too many: the oldest that may go, go.
    const cards = [...stack.children];
    for (let i = cards.length - 1; i >= 0 && stack.childElementCount > ALERT_MAX_CARDS; i--) {
      const other = R.alerts.get(Number(cards[i].getAttribute('data-id')));
      if (other && other !== a && !(other.priority === 'urgent' && other.ack_required && !other.acked)) dismissAlert(other);
    }
    renderTitle();
  }

  function scheduleAlertDismiss(a) {
    clearTimeout(a.timer);
    a.timer = null;
    if (!a.node || !a.node.isConnected || a.hover) return;
    let ms;
    if (a.acked) ms = ALERT_ACKED_LINGER_MS;
    else if (a.ack_required || a.priority === 'urgent') return; // stays until acknowledged or dismissed
    else ms = ALERT_DISMISS_MS[a.priority] || ALERT_DISMISS_MS.normal;
    a.timer = setTimeout(() => { a.timer = null; if (!a.hover) dismissAlert(a); }, ms);
  }

  function dismissAlert(a) {
    clearTimeout(a.timer);
    a.timer = null;
    a.hover = false;
    if (a.node) a.node.remove();
    const stack = $('alert-stack');
    if (!stack.childElementCount) stack.hidden = true;
  }

  async function ackAlert(a) {
    if (a.acking || a.acked) return;
    a.acking = true;
    a.error = '';
    paintAlertCard(a);
    try {
      await api('POST', `/alerts/${encodeURIComponent(String(a.id))}/ack`, {});
      a.acking = false;
      alertAcked(a.id);
    } catch (e) {
      a.acking = false;
      a.error = e.message;
    }
    paintAlertCard(a);
    renderTitle();
  }

  function openAlertConversation(a) {
    if (!a.conversation) return;
    if (!S.convs.has(a.conversation)) ensureConv(a.conversation);
    switchTab('chats');
    goToConversation(a.conversation);
  }

  // ---------------------------------------------------------------- alerts: administrators
  // Compose and send (POST /alerts), then the alert's deliveries live (GET /alerts/{id} every
  // second while the page is visible), and the history (GET /alerts) with counts per state.
  // Routes: #/alerts (compose, history or mailboxes) and #/alerts/{id}.
  const ALERT_POLL_MS = 1000;
  const ALERT_PAGE = 50;
  const DELIVERY_STATES = ['pending', 'delivered', 'read', 'acknowledged', 'expired', 'failed'];
  const DELIVERY_LABEL = {
    pending: 'Pending', delivered: 'Delivered', read: 'Read', acknowledged: 'Acknowledged', expired: 'Expired', failed: 'Failed',
  };
  const AL = {
    allowed: false,
    section: 'compose', // 'compose' | 'history' | 'mailboxes'
    want: null, // the alert id of the route (#/alerts/{id}), or null
    detailId: null,
    detail: null, // GET /alerts/{id}
    rows: new Map(), // delivery key -> {tr, cells}
    pollTimer: null,
    pollBusy: false,
    pollGen: 0,
    history: [],
    historyNext: null,
    historyBusy: false,
    historyGen: 0,
    sending: false,
    // The Mailboxes section (GET /alerts/mailboxes every MAILBOX_POLL_MS while it is shown).
    mbTimer: null,
    mbBusy: false,
    mbGen: 0,
    mbFilter: '', // a mailbox name, or '' for all
    mbCards: new Map(), // mailbox name -> {node, sig}
    mbRows: new Map(), // mailbox + key -> {tr, sig}
  };

  function splitAddresses(v) {
    return String(v || '').split(/[\s,;]+/).map((x) => lower(x.replace(/^<+|>+$/g, ''))).filter(Boolean);
  }

  /** Directory suggestions for the last address typed in a list of addresses. */
  function wireAddressSuggestions(inputId, listId) {
    const input = $(inputId);
    let timer = null;
    let seq = 0;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      const m = /^(.*[\s,;])?([^\s,;]*)$/s.exec(input.value);
      const head = (m && m[1]) || '';
      const q = (m && m[2]) || '';
      if (q.length < 2) return;
      timer = setTimeout(async () => {
        const mine = ++seq;
        try {
          const r = await api('GET', `/users?q=${encodeURIComponent(q)}&limit=20`);
          if (mine !== seq) return;
          const have = new Set(splitAddresses(head));
          const frag = document.createDocumentFragment();
          for (const u of asList(r, 'users')) {
            const n = rememberUser(u);
            if (!n || have.has(n.address)) continue;
            frag.appendChild(el('option', { value: head + n.address, label: n.display_name ? `${n.display_name} <${n.address}>` : n.address }));
          }
          $(listId).replaceChildren(frag);
        } catch (_) { /* suggestions are optional */ }
      }, 200);
    });
  }

  function checkboxes(boxId, testid, options, emptyText) {
    const box = $(boxId);
    const checked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
    if (!options.length) { box.replaceChildren(el('span', { class: 'muted', text: emptyText })); return; }
    box.replaceChildren(...options.map(([value, label]) => {
      const cb = el('input', { type: 'checkbox', value, 'data-testid': testid });
      cb.checked = checked.has(value);
      return el('label', { title: value }, cb, ` ${label}`);
    }));
    syncAlertForm();
  }

  function renderAlertChoices() {
    const gs = C.groups.map((g) => [g.id, g.name]);
    checkboxes('al-groups', 'al-group', gs, C.groupsLoaded ? 'No groups.' : 'Loading…');
    checkboxes('al-esc-groups', 'al-esc-group', gs, C.groupsLoaded ? 'No groups.' : 'Loading…');
    checkboxes('al-queues', 'al-queue', A.queues.map((q) => [qid(q), q.display_name || qid(q)]), 'No queues.');
  }

  const checkedValues = (boxId) => [...$(boxId).querySelectorAll('input[type=checkbox]:checked')].map((i) => i.value);

  function syncAlertForm() {
    const everyone = $('al-everyone').checked;
    $('al-users').disabled = everyone;
    for (const i of document.querySelectorAll('#al-groups input, #al-queues input')) i.disabled = everyone;
    const esc = $('al-esc-on').checked;
    $('al-esc-box').hidden = !esc;
    const ttl = numVal('al-ttl');
    setText($('al-ttl-text'), Number.isFinite(ttl) && ttl > 0 ? fmtSeconds(ttl) : '');
  }

  function resetAlertForm() {
    for (const id of ['al-title', 'al-body', 'al-dedup', 'al-users', 'al-esc-users']) $(id).value = '';
    for (const i of document.querySelectorAll('#al-form input[type=checkbox]')) i.checked = false;
    $('al-priority').value = 'normal';
    $('al-presence').value = 'any';
    $('al-offline').value = 'hold';
    $('al-ttl').value = '3600';
    $('al-esc-after').value = '5';
    $('al-esc-unit').value = 'minutes';
    showAdminError('al-error', '');
    syncAlertForm();
  }

  /** The audience of the form ({users, groups, queues, everyone}), or {error}. */
  function readAudience(usersId, groupsBox, queuesBox, everyoneId) {
    const everyone = !!everyoneId && $(everyoneId).checked;
    const users = everyone ? [] : splitAddresses($(usersId).value);
    const bad = users.filter((u) => !/^[^@\s]+@[^@\s]+$/.test(u));
    if (bad.length) return { error: `Not an address: ${bad.join(', ')}` };
    const groups = everyone ? [] : checkedValues(groupsBox);
    const queues = everyone || !queuesBox ? [] : checkedValues(queuesBox);
    const a = {};
    if (everyone) a.everyone = true;
    if (users.length) a.users = [...new Set(users)];
    if (groups.length) a.groups = groups;
    if (queues.length) a.queues = queues;
    return { audience: a, empty: !everyone && !users.length && !groups.length && !queues.length };
  }

  async function sendAlert(e) {
    e.preventDefault();
    if (AL.sending) return;
    const fail = (m, focus) => { showAdminError('al-error', m); if (focus) $(focus).focus(); };
    const title = $('al-title').value.trim();
    if (!title) { fail('Give the alert a title.', 'al-title'); return; }
    const aud = readAudience('al-users', 'al-groups', 'al-queues', 'al-everyone');
    if (aud.error) { fail(aud.error, 'al-users'); return; }
    if (aud.empty) { fail('Choose who gets it: people, groups, the experts of queues, or everyone.'); return; }
    aud.audience.presence = $('al-presence').value;
    const ttl = numVal('al-ttl');
    if (ttl === null || !Number.isInteger(ttl) || ttl < 1 || ttl > 604800) { fail('The time to live is 1 to 604800 seconds (7 days).', 'al-ttl'); return; }
    const body = {
      title,
      body: $('al-body').value,
      priority: $('al-priority').value,
      audience: aud.audience,
      ttl_s: ttl,
      offline: $('al-offline').value,
      ack_required: $('al-ack').checked,
    };
    if ($('al-esc-on').checked) {
      if (!body.ack_required) { fail('Escalation needs an acknowledgement: tick "Ask recipients to acknowledge".', 'al-ack'); return; }
      const n = numVal('al-esc-after');
      const seconds = $('al-esc-unit').value === 'seconds';
      const max = seconds ? 86400 : 1440;
      if (n === null || !Number.isInteger(n) || n < 1 || n > max) { fail(`Escalate after 1 to ${max} ${seconds ? 'seconds' : 'minutes'}.`, 'al-esc-after'); return; }
      const esc = seconds ? { after_seconds: n } : { after_minutes: n };
      const second = readAudience('al-esc-users', 'al-esc-groups', null, null);
      if (second.error) { fail(`Escalation: ${second.error}`, 'al-esc-users'); return; }
      if (!second.empty) esc.audience = second.audience;
      body.escalation = esc;
    }
    const dedup = $('al-dedup').value.trim();
    if (dedup) body.dedup_key = dedup;
    fail('');
    AL.sending = true;
    $('al-send').disabled = true;
    try {
      const r = await api('POST', '/alerts', body);
      const id = r && r.id;
      if (r && r.duplicate) toast(`An open alert with this deduplication key exists (alert ${id}): nothing new was sent.`);
      else toast(`Alert ${id} sent to ${r && typeof r.recipients === 'number' ? r.recipients : '?'} ${r && r.recipients === 1 ? 'person' : 'people'}.`);
      resetAlertForm(); // a fresh form for the next one: no audience carried over by mistake
      AL.history = []; // stale now
      if (typeof id === 'number') location.hash = `#/alerts/${id}`;
    } catch (err) {
      fail(err.message);
    } finally {
      AL.sending = false;
      $('al-send').disabled = false;
    }
  }

  function goAlerts(section) {
    AL.section = section;
    if (location.hash !== '#/alerts') location.hash = '#/alerts';
    else showAlerts();
  }

  function showAlerts() {
    loadGroups().then(renderAlertChoices);
    loadAdminQueues().then(renderAlertChoices);
    renderAlertChoices();
    const detail = AL.want !== null;
    for (const b of document.querySelectorAll('#alerts-view .subtab')) {
      const on = !detail && b.getAttribute('data-section') === AL.section;
      b.classList.toggle('active', on);
      b.setAttribute('aria-selected', String(on));
    }
    $('al-compose').hidden = detail || AL.section !== 'compose';
    $('al-history').hidden = detail || AL.section !== 'history';
    $('al-mailboxes').hidden = detail || AL.section !== 'mailboxes';
    $('al-detail').hidden = !detail;
    if (detail || AL.section !== 'mailboxes') stopMailboxPoll();
    if (detail) {
      if (AL.detailId !== AL.want) {
        AL.detailId = AL.want;
        AL.detail = null;
        AL.rows.clear();
        $('al-deliveries').replaceChildren(el('tr', null, el('td', { colspan: '7', class: 'empty-note', text: 'Loading…' })));
        for (const id of ['al-d-title', 'al-d-meta', 'al-d-body', 'al-d-updated']) setText($(id), '');
        $('al-d-facts').replaceChildren();
        $('al-d-counts').replaceChildren();
        $('al-d-priority').hidden = true;
        showAdminError('al-d-error', '');
      }
      startAlertPoll();
      return;
    }
    stopAlertPoll();
    if (AL.section === 'history') {
      renderAlertHistory();
      loadAlertHistory(true);
    } else if (AL.section === 'mailboxes') {
      startMailboxPoll();
    } else if (window.matchMedia('(min-width: 721px)').matches) {
      $('al-title').focus({ preventScroll: true });
    }
  }

  function scheduleAlertPoll(delay) {
    clearTimeout(AL.pollTimer);
    AL.pollTimer = null;
    if (A.page !== 'alerts' || AL.want === null || document.visibilityState !== 'visible' || !S.signedIn) return;
    AL.pollTimer = setTimeout(async () => {
      AL.pollTimer = null;
      try { await refreshAlertDetail(); } catch (_) { /* shown on the next round */ }
      if (!AL.pollTimer) scheduleAlertPoll(ALERT_POLL_MS);
    }, delay);
  }
  function startAlertPoll() { AL.pollGen += 1; AL.pollBusy = false; scheduleAlertPoll(0); }
  function stopAlertPoll() { clearTimeout(AL.pollTimer); AL.pollTimer = null; AL.pollGen += 1; }

  async function refreshAlertDetail() {
    if (AL.pollBusy || AL.detailId === null) return;
    const id = AL.detailId;
    const gen = AL.pollGen;
    AL.pollBusy = true;
    try {
      const r = await api('GET', `/alerts/${encId(id)}`);
      if (gen !== AL.pollGen || id !== AL.detailId) return;
      AL.detail = r;
      showAdminError('al-d-error', '');
      renderAlertDetail();
      setText($('al-d-updated'), `Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (gen !== AL.pollGen) return;
      showAdminError('al-d-error', e.message);
      if (e.status === 404 || e.status === 403) stopAlertPoll();
    } finally {
      if (gen === AL.pollGen) AL.pollBusy = false;
    }
  }

  /** {state: n} from a list's counts (an object) or a detail's deliveries (an array). */
  function deliveryCounts(d) {
    const counts = {};
    for (const s of DELIVERY_STATES) counts[s] = 0;
    if (Array.isArray(d)) {
      for (const x of d) if (x && typeof x.state === 'string') counts[x.state] = (counts[x.state] || 0) + 1;
    } else if (d && typeof d === 'object') {
      for (const [k, v] of Object.entries(d)) if (Number.isFinite(Number(v))) counts[k] = Number(v);
    }
    return counts;
  }

  function countPills(counts, testid) {
    const total = Object.values(counts).reduce((s, n) => s + n, 0);
    const pills = [el('span', { class: 'al-count al-total', 'data-testid': testid, 'data-state': 'total', 'data-count': String(total), title: 'Recipients' },
      el('span', { class: 'al-count-label', text: 'Recipients' }), ' ', el('strong', { text: String(total) }))];
    for (const s of Object.keys(counts)) {
      const n = counts[s];
      if (!DELIVERY_STATES.includes(s) && !n) continue;
      pills.push(el('span', { class: 'al-count' + (n ? '' : ' zero'), 'data-testid': testid, 'data-state': s, 'data-count': String(n) },
        el('span', { class: 'al-count-label', text: DELIVERY_LABEL[s] || s }), ' ', el('strong', { text: String(n) })));
    }
    return pills;
  }

  function sourceLabel(src) {
    const s = String(src || '');
    if (s.startsWith('user:')) return s.slice(5);
    if (s.startsWith('app:')) return `application ${s.slice(4)}`;
    return s;
  }

  function audienceText(a) {
    if (!a || typeof a !== 'object') return '';
    const parts = [];
    if (a.everyone) parts.push('Everyone');
    if (Array.isArray(a.users) && a.users.length) parts.push(`People: ${a.users.join(', ')}`);
    if (Array.isArray(a.groups) && a.groups.length) parts.push(`Groups: ${a.groups.map(groupName).join(', ')}`);
    if (Array.isArray(a.queues) && a.queues.length) parts.push(`Experts of: ${a.queues.join(', ')}`);
    if (a.presence && a.presence !== 'any') parts.push(a.presence === 'online' ? 'signed in only' : 'available only');
    return parts.join(' · ');
  }

  function escalationText(x) {
    const e = x && x.escalation;
    if (!e) return '';
    const after = e.after_seconds ? `${e.after_seconds} s` : `${e.after_minutes} min`;
    const to = e.audience ? `alert ${audienceText(e.audience)}` : 'remind those who have not acknowledged';
    const done = x.escalated_at ? ` (escalated ${fmtFull(x.escalated_at)})` : '';
    return `After ${after}: ${to}${done}`;
  }

  function prioPill(p, testid) {
    const pr = ALERT_PRIORITIES.includes(p) ? p : 'normal';
    return el('span', { class: 'al-prio-pill', 'data-priority': pr, 'data-testid': testid, text: PRIORITY_LABEL[pr] });
  }

  function renderAlertDetail() {
    const x = AL.detail;
    if (!x) return;
    const pr = $('al-d-priority');
    const p = ALERT_PRIORITIES.includes(x.priority) ? x.priority : 'normal';
    pr.hidden = false;
    pr.setAttribute('data-priority', p);
    setText(pr, PRIORITY_LABEL[p]);
    setText($('al-d-title'), x.title || '');
    $('al-detail').setAttribute('data-id', String(x.id ?? ''));
    setText($('al-d-meta'), [`Alert ${x.id}`, x.source ? `from ${sourceLabel(x.source)}` : '', x.created_at ? `sent ${fmtFull(x.created_at)}` : ''].filter(Boolean).join(' · '));
    setText($('al-d-body'), x.body || '');
    $('al-d-body').hidden = !x.body;
    const facts = [
      ['Audience', audienceText(x.audience)],
      ['Acknowledgement', x.ack_required ? 'Required' : 'Not asked for'],
      ['Escalation', escalationText(x) || 'None'],
      ['Offline people', x.offline === 'drop' ? 'Dropped' : 'Held until they sign in'],
      ['Expires', x.expires_at ? fmtFull(x.expires_at) : (x.ttl_s ? fmtSeconds(x.ttl_s) : '')],
    ];
    if (x.dedup_key) facts.push(['Deduplication key', String(x.dedup_key)]);
    $('al-d-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
    const list = Array.isArray(x.deliveries) ? x.deliveries.filter((d) => d && typeof d === 'object') : [];
    $('al-d-counts').replaceChildren(...countPills(deliveryCounts(list), 'al-d-count'));
    list.sort((a, b) => (Number(a.round) || 0) - (Number(b.round) || 0) || String(a.user).localeCompare(String(b.user)));
    const body = $('al-deliveries');
    const wanted = [];
    const seen = new Set();
    for (const d of list) {
      const key = `${d.round || 0}:${d.user}`;
      seen.add(key);
      let r = AL.rows.get(key);
      if (!r) {
        const cells = {
          state: el('span', { class: 'al-state', 'data-testid': 'al-delivery-state' }),
          round: el('td', { class: 'num', 'data-label': 'Round', 'data-testid': 'al-delivery-round' }),
          delivered: el('td', { 'data-label': 'Delivered', 'data-testid': 'al-delivered-at', class: 'al-time' }),
          read: el('td', { 'data-label': 'Read', 'data-testid': 'al-read-at', class: 'al-time' }),
          acked: el('td', { 'data-label': 'Acknowledged', 'data-testid': 'al-acked-at', class: 'al-time' }),
          detail: el('td', { class: 'cmp-detail', 'data-testid': 'al-delivery-detail' }),
        };
        const tr = el('tr', { class: 'al-delivery', 'data-testid': 'al-delivery', 'data-user': lower(d.user) },
          el('td', { class: 'mq-name' }, personNode(d.user, 'al-delivery-user')),
          el('td', { 'data-label': 'State' }, cells.state),
          cells.round, cells.delivered, cells.read, cells.acked, cells.detail);
        r = { tr, cells };
        AL.rows.set(key, r);
      }
      const st = String(d.state || '');
      if (r.tr.getAttribute('data-state') !== st) r.tr.setAttribute('data-state', st);
      r.tr.setAttribute('data-round', String(d.round || 0));
      r.cells.state.setAttribute('data-state', st);
      setText(r.cells.state, DELIVERY_LABEL[st] || st);
      setText(r.cells.round, d.round ? `${d.round} · escalation` : String(d.round ?? 0));
      setText(r.cells.delivered, d.delivered_at ? fmtFull(d.delivered_at) : '—');
      setText(r.cells.read, d.read_at ? fmtFull(d.read_at) : '—');
      setText(r.cells.acked, d.acknowledged_at ? fmtFull(d.acknowledged_at) : '—');
      setText(r.cells.detail, d.detail || '');
      wanted.push(r.tr);
    }
    for (const k of [...AL.rows.keys()]) if (!seen.has(k)) AL.rows.delete(k);
    if (!wanted.length) wanted.push(body.querySelector('.al-none') || el('tr', { class: 'al-none' }, el('td', { colspan: '7', class: 'empty-note', text: 'No recipients.' })));
    reconcile(body, wanted);
  }

  async function loadAlertHistory(reset) {
    if (!reset && (AL.historyBusy || AL.historyNext === null)) return;
    const gen = reset ? ++AL.historyGen : AL.historyGen;
    const p = new URLSearchParams({ limit: String(ALERT_PAGE) });
    if (!reset) p.set('before', String(AL.historyNext));
    AL.historyBusy = true;
    $('al-more').disabled = true;
    try {
      const r = await api('GET', `/alerts?${p}`);
      if (gen !== AL.historyGen) return;
      const list = asList(r, 'alerts', 'items').filter((x) => x && typeof x === 'object');
      if (reset) AL.history = list;
      else {
        const have = new Set(AL.history.map((x) => x.id));
        for (const x of list) if (!have.has(x.id)) AL.history.push(x);
      }
      AL.historyNext = r && r.next_before !== null && r.next_before !== undefined ? r.next_before : null;
      showAdminError('al-history-error', '');
    } catch (e) {
      if (gen === AL.historyGen) showAdminError('al-history-error', e.message);
    } finally {
      if (gen === AL.historyGen) {
        AL.historyBusy = false;
        $('al-more').disabled = false;
        renderAlertHistory();
        $('al-history-list').setAttribute('data-loaded', 'true');
      }
    }
  }

  function renderAlertHistory() {
    const body = $('al-history-list');
    const frag = document.createDocumentFragment();
    if (!AL.history.length) frag.appendChild(el('tr', null, el('td', { colspan: '4', class: 'empty-note', text: 'No alerts sent yet.' })));
    for (const x of AL.history) {
      const id = String(x.id ?? '');
      const counts = deliveryCounts(x.deliveries);
      const flags = [x.ack_required ? 'acknowledgement required' : '', x.escalation ? 'escalation' : '', x.escalated_at ? 'escalated' : '', x.dedup_key ? `key ${x.dedup_key}` : ''].filter(Boolean).join(' · ');
      const tr = el('tr', { class: 'al-row', 'data-testid': 'al-row', 'data-id': id, 'data-title': String(x.title || ''), 'data-priority': String(x.priority || ''), tabindex: '0', title: 'Show the deliveries' },
        el('td', { 'data-label': 'Sent', class: 'audit-time' }, timeNode(x.created_at)),
        el('td', { class: 'mq-name' },
          el('div', { class: 'al-row-title' }, prioPill(x.priority, 'al-row-priority'), ' ', el('span', { class: 'mq-display', 'data-testid': 'al-row-title', text: String(x.title || '') })),
          el('div', { class: 'mq-desc muted', text: [`#${id}`, x.source ? sourceLabel(x.source) : '', flags].filter(Boolean).join(' · ') })),
        el('td', { class: 'cmp-detail', 'data-label': 'Audience', 'data-testid': 'al-row-audience', text: audienceText(x.audience) }),
        el('td', { 'data-label': 'Deliveries' }, el('div', { class: 'al-counts' }, ...countPills(counts, 'al-row-count'))));
      const open = () => { location.hash = `#/alerts/${id}`; };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    $('al-more').hidden = AL.historyNext === null;
  }

  // ---------------------------------------------------------------- alerts: mailboxes
  // The [[alerts.mailbox]] listeners (state, last check, counts) and the mail they took
  // (GET /alerts/mailboxes), refreshed while the section is shown. Everything the server
  // says here comes from mail (sender, subject, refusal reason, the mail server's errors):
  // it is only ever set as text.
  const MAILBOX_POLL_MS = 5000;
  const MAIL_LIMIT = 50;
  const MAILBOX_STATE_LABEL = {
    connecting: 'Connecting', idle: 'Listening (IDLE)', polling: 'Polling', error: 'Error', stopped: 'Stopped',
  };
  const MAIL_OUTCOME_LABEL = { alert: 'Alert', duplicate: 'Duplicate', refused: 'Refused' };

  function scheduleMailboxPoll(delay) {
    clearTimeout(AL.mbTimer);
    AL.mbTimer = null;
    if (A.page !== 'alerts' || AL.want !== null || AL.section !== 'mailboxes' || document.visibilityState !== 'visible' || !S.signedIn) return;
    AL.mbTimer = setTimeout(async () => {
      AL.mbTimer = null;
      const gen = AL.mbGen;
      try { await refreshMailboxes(); } catch (_) { /* shown on the next round */ }
      // Not when stopped (or restarted) meanwhile, nor when another round is already set.
      if (!AL.mbTimer && gen === AL.mbGen) scheduleMailboxPoll(MAILBOX_POLL_MS);
    }, delay);
  }
  function startMailboxPoll() { AL.mbGen += 1; AL.mbBusy = false; scheduleMailboxPoll(0); }
  function stopMailboxPoll() { clearTimeout(AL.mbTimer); AL.mbTimer = null; AL.mbGen += 1; AL.mbBusy = false; }

  async function refreshMailboxes() {
    if (AL.mbBusy) return;
    const gen = AL.mbGen;
    const p = new URLSearchParams({ limit: String(MAIL_LIMIT) });
    if (AL.mbFilter) p.set('mailbox', AL.mbFilter);
    AL.mbBusy = true;
    try {
      const r = await api('GET', `/alerts/mailboxes?${p}`);
      if (gen !== AL.mbGen) return;
      showAdminError('al-mb-error', '');
      renderMailboxes(asList(r, 'mailboxes').filter((m) => m && typeof m === 'object'));
      renderMails(asList(r, 'mails').filter((m) => m && typeof m === 'object'));
      $('al-mailboxes').setAttribute('data-loaded', 'true');
      setText($('al-mb-updated'), `Updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (gen !== AL.mbGen) return;
      showAdminError('al-mb-error', e.message);
      if (e.status === 403) stopMailboxPoll();
    } finally {
      if (gen === AL.mbGen) AL.mbBusy = false;
    }
  }

  function mbCount(kind, label, n) {
    const v = Number.isFinite(Number(n)) ? Number(n) : 0;
    return el('span', { class: 'al-count mb-count' + (v ? '' : ' zero'), 'data-testid': 'mailbox-count', 'data-kind': kind, 'data-count': String(v) },
      el('span', { class: 'al-count-label', text: label }), ' ', el('strong', { text: String(v) }));
  }

  function mailboxCard(m) {
    const st = String(m.state || '');
    const err = String(m.last_error || '');
    const proto = String(m.protocol || '').toUpperCase();
    const port = Number.isFinite(Number(m.port)) && Number(m.port) ? `:${Number(m.port)}` : '';
    return el('article', { class: 'cmp-card mb-card', 'data-testid': 'mailbox-row', 'data-name': String(m.name || ''), 'data-state': st },
      el('header', { class: 'mb-head' },
        el('h3', { class: 'mb-name', 'data-testid': 'mailbox-name', text: String(m.name || '') }),
        el('span', { class: 'al-state mb-state', 'data-state': st, 'data-testid': 'mailbox-state', text: MAILBOX_STATE_LABEL[st] || st || '—' })),
      el('div', { class: 'mb-endpoint muted', 'data-testid': 'mailbox-endpoint', text: [proto, `${String(m.host || '')}${port}`].filter(Boolean).join(' · ') }),
      el('div', { class: 'mb-check', 'data-testid': 'mailbox-last-check' },
        el('span', { class: 'muted', text: 'Last check: ' }),
        m.last_check ? timeNode(m.last_check, 'al-time') : el('span', { class: 'muted', text: 'not yet' })),
      el('div', { class: 'al-counts mb-counts' },
        mbCount('alerts', 'Alerts', m.alerts), mbCount('duplicates', 'Duplicates', m.duplicates), mbCount('refused', 'Refused', m.refused)),
      err ? el('p', { class: st === 'error' ? 'mb-error' : 'mb-error mb-error-old muted', 'data-testid': 'mailbox-error' },
        el('span', { class: 'mb-error-label', text: st === 'error' ? 'Error: ' : 'Last error: ' }), el('span', { 'data-testid': 'mailbox-error-text', text: err })) : null);
  }

  function renderMailboxes(list) {
    list.sort((a, b) => String(a.name).localeCompare(String(b.name)));
    $('al-mb-empty').hidden = list.length > 0;
    const wanted = [];
    const seen = new Set();
    for (const m of list) {
      const name = String(m.name || '');
      if (seen.has(name)) continue;
      seen.add(name);
      const sig = JSON.stringify(m);
      let c = AL.mbCards.get(name);
      if (!c || c.sig !== sig) {
        const node = mailboxCard(m);
        if (c) c.node.replaceWith(node);
        c = { node, sig };
        AL.mbCards.set(name, c);
      }
      wanted.push(c.node);
    }
    for (const k of [...AL.mbCards.keys()]) if (!seen.has(k)) AL.mbCards.delete(k);
    reconcile($('al-mb-list'), wanted);
    // The filter offers the configured mailboxes (and keeps a chosen one that went away).
    const sel = $('al-mb-filter');
    const names = [...seen];
    if (AL.mbFilter && !seen.has(AL.mbFilter)) names.push(AL.mbFilter);
    const have = [...sel.options].slice(1).map((o) => o.value);
    if (have.join('\n') !== names.join('\n')) {
      sel.replaceChildren(el('option', { value: '', text: 'All' }), ...names.map((n) => el('option', { value: n, text: n })));
      sel.value = AL.mbFilter;
    }
  }

  function mailRow(x) {
    const out = String(x.outcome || '');
    const id = Number.isInteger(x.alert) ? x.alert : null;
    const detail = String(x.detail || '') || (out === 'duplicate' && id !== null ? `An open alert with the same key exists (#${id})` : '');
    return el('tr', { class: 'mb-mail', 'data-testid': 'mail-row', 'data-mailbox': String(x.mailbox || ''), 'data-key': String(x.key || ''), 'data-outcome': out, 'data-alert': id === null ? null : String(id) },
      el('td', { 'data-label': 'Received', class: 'audit-time', 'data-testid': 'mail-at' }, timeNode(x.at)),
      el('td', { 'data-label': 'Mailbox', 'data-testid': 'mail-mailbox', text: String(x.mailbox || '') }),
      el('td', { class: 'mq-name mb-sender', 'data-testid': 'mail-sender', text: String(x.sender || '') }),
      el('td', { class: 'mb-subject', 'data-label': 'Subject', 'data-testid': 'mail-subject', text: String(x.subject || '') }),
      el('td', { 'data-label': 'Outcome' }, el('span', { class: 'al-state mb-outcome', 'data-outcome': out, 'data-testid': 'mail-outcome', text: MAIL_OUTCOME_LABEL[out] || out })),
      el('td', { 'data-label': 'Alert' }, id === null ? el('span', { class: 'muted', text: '—' })
        : el('a', { href: `#/alerts/${encId(id)}`, 'data-testid': 'mail-alert-link', title: 'Show the alert and its deliveries', text: `#${id}` })),
      el('td', { class: 'cmp-detail', 'data-label': 'Detail', 'data-testid': 'mail-detail', text: detail }));
  }

  function renderMails(list) {
    const body = $('al-mail-list');
    const wanted = [];
    const seen = new Set();
    for (const x of list) {
      const k = `${x.mailbox}\n${x.key}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const sig = JSON.stringify(x);
      let r = AL.mbRows.get(k);
      if (!r || r.sig !== sig) {
        r = { tr: mailRow(x), sig };
        AL.mbRows.set(k, r);
      }
      wanted.push(r.tr);
    }
    for (const k of [...AL.mbRows.keys()]) if (!seen.has(k)) AL.mbRows.delete(k);
    if (!wanted.length) {
      wanted.push(body.querySelector('.mb-none') || el('tr', { class: 'mb-none' },
        el('td', { colspan: '7', class: 'empty-note', text: AL.mbFilter ? 'No mail from this mailbox yet.' : 'No mail taken yet.' })));
    }
    reconcile(body, wanted);
  }

  function wireAlerts() {
    $('nav-alerts').addEventListener('click', () => goAlerts(AL.section));
    $('alerts-back').addEventListener('click', () => { location.hash = '#/'; });
    for (const b of document.querySelectorAll('#alerts-view .subtab')) {
      b.addEventListener('click', () => goAlerts(b.getAttribute('data-section')));
    }
    $('al-form').addEventListener('submit', sendAlert);
    $('al-reset').addEventListener('click', () => resetAlertForm());
    for (const id of ['al-everyone', 'al-esc-on', 'al-ttl']) $(id).addEventListener('input', syncAlertForm);
    $('al-esc-on').addEventListener('change', () => {
      // Escalation works on acknowledgements.
      if ($('al-esc-on').checked) $('al-ack').checked = true;
      syncAlertForm();
    });
    $('al-ack').addEventListener('change', () => { if (!$('al-ack').checked) { $('al-esc-on').checked = false; syncAlertForm(); } });
    wireAddressSuggestions('al-users', 'al-users-options');
    wireAddressSuggestions('al-esc-users', 'al-esc-users-options');
    $('al-history-refresh').addEventListener('click', () => loadAlertHistory(true));
    $('al-more').addEventListener('click', () => loadAlertHistory(false));
    $('al-d-history').addEventListener('click', () => goAlerts('history'));
    $('al-d-new').addEventListener('click', () => goAlerts('compose'));
    $('al-mb-refresh').addEventListener('click', () => scheduleMailboxPoll(0));
    $('al-mb-filter').addEventListener('change', () => {
      AL.mbFilter = $('al-mb-filter').value;
      AL.mbGen += 1; // an answer for the previous filter is dropped
      AL.mbBusy = false;
      scheduleMailboxPoll(0);
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        if (A.page === 'alerts' && AL.want !== null) scheduleAlertPoll(0);
        if (A.page === 'alerts' && AL.want === null && AL.section === 'mailboxes') scheduleMailboxPoll(0);
      } else {
        clearTimeout(AL.pollTimer); AL.pollTimer = null;
        clearTimeout(AL.mbTimer); AL.mbTimer = null;
      }
    });
    syncAlertForm();
  }

  function wireAdmin() {
    $('nav-manage').addEventListener('click', () => { location.hash = '#/manage'; });
    $('nav-dashboard').addEventListener('click', () => { location.hash = '#/dashboard'; });
    $('manage-back').addEventListener('click', () => { location.hash = '#/'; });
    $('dash-back').addEventListener('click', () => { location.hash = '#/'; });
    $('queue-new').addEventListener('click', () => openQueueForm(null));
    $('qf').addEventListener('submit', saveQueue);
    $('qf-cancel').addEventListener('click', closeQueueForm);
    $('qf-member-add-submit').addEventListener('click', addMember);
    $('qf-member-add').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) { e.preventDefault(); addMember(); }
    });
    $('qf-member-add').addEventListener('input', () => searchDirectory('qf-member-add', 'qf-member-options'));
    $('qf-manager-add-submit').addEventListener('click', addManager);
    $('qf-manager-add').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) { e.preventDefault(); addManager(); }
    });
    $('qf-manager-add').addEventListener('input', () => searchDirectory('qf-manager-add', 'qf-manager-options'));
    wireV2Form();
    $('dash-interval').addEventListener('change', () => { A.dashGen += 1; A.dashBusy = false; scheduleDashboard(0); });
    $('dash-select').addEventListener('change', () => { A.dashGen += 1; A.dashBusy = false; scheduleDashboard(0); });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') { if (A.page === 'dashboard') scheduleDashboard(0); } else {
        clearTimeout(A.dashTimer); A.dashTimer = null;
      }
    });
  }

  function wire() {
    $('login-form').addEventListener('submit', onLoginSubmit);
    wireAdmin();
    wireCompliance();
    wireAlerts();
    $('signout').addEventListener('click', signOut);
    $('presence-select').addEventListener('change', (e) => { setMyPresence(e.target.value, $('presence-note').value); renderQueues(); });
    const note = $('presence-note');
    note.addEventListener('change', () => setMyPresence($('presence-select').value, note.value.trim()));
    note.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); note.blur(); } });
    $('tab-chats').addEventListener('click', () => switchTab('chats'));
    $('tab-contacts').addEventListener('click', () => switchTab('contacts'));
    $('tab-queues').addEventListener('click', () => switchTab('queues'));
    $('queue-ready').addEventListener('change', (e) => setReady(e.target.checked));
    $('get-help').addEventListener('click', openHelp);
    $('help-form').addEventListener('submit', (e) => { e.preventDefault(); submitHelp(); });
    $('help-cancel').addEventListener('click', closeHelp);
    $('help-queue').addEventListener('change', renderHelpState);
    $('help-modal').addEventListener('click', (e) => { if (e.target === $('help-modal')) closeHelp(); });
    $('transfer-form').addEventListener('submit', (e) => { e.preventDefault(); submitTransfer(); });
    $('end-queue-chat').addEventListener('click', endQueueChat);
    $('invite-expert-form').addEventListener('submit', (e) => { e.preventDefault(); submitInvite(); });
    $('canned-select').addEventListener('change', insertCanned);
    $('wrapup-form').addEventListener('submit', (e) => { e.preventDefault(); submitWrapup(false); });
    $('wrapup-skip').addEventListener('click', () => submitWrapup(true));
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refreshWork(); });
    let filterTimer = null;
    $('filter').addEventListener('input', () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => {
        S.filter = lower($('filter').value.trim());
        renderContacts();
        dirty.convs = true;
        scheduleRender();
      }, 80);
    });
    $('new-group').addEventListener('click', () => openPeopleModal('group'));
    $('chat-invite').addEventListener('click', () => openPeopleModal('invite'));
    $('chat-leave').addEventListener('click', leaveCurrent);
    $('chat-back').addEventListener('click', () => { location.hash = '#/'; });
    $('load-older').addEventListener('click', () => { if (S.current !== null) loadHistory(S.current, true); });
    $('modal-form').addEventListener('submit', (e) => { e.preventDefault(); submitModal(); });
    $('modal-cancel').addEventListener('click', closeModal);
    $('modal-filter').addEventListener('input', renderPeople);
    $('modal').addEventListener('click', (e) => { if (e.target === $('modal')) closeModal(); });
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      if (!$('modal').hidden) closeModal();
      if (!$('help-modal').hidden) closeHelp();
    });

    const composer = $('composer');
    const submit = () => {
      if (S.current === null) return;
      const text = composer.value;
      if (!text.trim()) return;
      sendMessage(S.current, text);
      composer.value = '';
      autoGrow();
      composer.focus();
    };
    $('composer-form').addEventListener('submit', (e) => { e.preventDefault(); submit(); });
    composer.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    composer.addEventListener('input', onComposerInput);
    composer.addEventListener('blur', () => { if (!composer.value.trim()) stopTyping(); });

    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        activity();
        if (S.current !== null) markRead(S.current);
        reconnectNow();
      }
    });
    window.addEventListener('focus', () => { if (S.current !== null) markRead(S.current); });
    window.addEventListener('online', reconnectNow);
    for (const ev of ['mousemove', 'mousedown', 'keydown', 'touchstart', 'wheel']) {
      window.addEventListener(ev, activity, { passive: true, capture: true });
    }
    setInterval(checkIdle, 15000);
    // A restored session never saw the sign-in click: ask on the first click instead.
    document.addEventListener('click', () => { if (S.signedIn) askNotificationPermission(); }, { once: true, capture: true });
    setInterval(() => { if (S.current !== null) renderTyping(); }, 2000);
  }

  // Hooks for automated tests: drop the WebSocket and hold it down, then let it come back.
  window.__switchboard = Object.freeze({
    disconnect() {
      S.heldForTest = true;
      clearTimeout(S.reconnectTimer);
      S.reconnectTimer = null;
      if (S.ws) S.ws.close();
    },
    reconnect() { S.heldForTest = false; S.failures = 0; reconnectNow(); },
    connected: () => S.wsReady,
    wsUrl: () => S.wsUrl,
    lastEventId: () => S.lastEventId,
    setIdleAfter(ms) { api.idleAfterMs = ms; checkIdle(); },
    mailboxPolling: () => AL.mbTimer !== null || AL.mbBusy, // the Mailboxes section's refresh is on
  });

  wire();
  boot();
})();
