#!/usr/bin/env node
// contract.js drives a running example server through every row of
// shared/example-contract.md with the real socket.io client of the server's
// engine, and plain HTTP requests:
//
//   - --engine googollee (go-socket.io v1.7.0): socket.io-client 2.x
//     (the npm alias socket.io-client-v2), over websocket or polling;
//   - --engine v4 (zishang520/socket.io): socket.io-client 4.x, over
//     websocket, polling, or upgrade (polling first, then the client's
//     upgrade to websocket, which the case checks really happens).
//
//   node contract.js --url http://127.0.0.1:PORT --engine googollee|v4 \
//     --transport websocket|polling|upgrade --mode perconn|permessage [--keep-going]
//
// It prints one line per passed case and exits 0 when all pass; on the first
// failure it prints what was sent and seen and exits 1 (with --keep-going it
// runs every case and exits 1 at the end if any failed).
'use strict';

const assert = require('node:assert/strict');
const vm = require('node:vm');
const { parseArgs } = require('node:util');
const { withTimeout, uniqueUser } = require('./lib');

const USAGE = 'usage: node contract.js --url http://127.0.0.1:PORT --engine googollee|v4 --transport websocket|polling|upgrade --mode perconn|permessage [--keep-going] [--only NAME]';
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    engine: { type: 'string', default: 'v4' },
    transport: { type: 'string', default: 'websocket' },
    mode: { type: 'string', default: 'perconn' },
    'keep-going': { type: 'boolean', default: false },
    only: { type: 'string' }, // run only the cases whose name contains this
  },
});
// The socket.io client that speaks each engine's protocol.
const CLIENTS = { googollee: 2, v4: 4 };
if (!args.url) usage('--url is required');
if (!(args.engine in CLIENTS)) usage('--engine must be googollee or v4');
if (!['websocket', 'polling', 'upgrade'].includes(args.transport)) usage('--transport must be websocket, polling or upgrade');
// go-socket.io v1.7.0 loses events across an upgrade, and the googollee
// binding does not offer it.
if (args.transport === 'upgrade' && args.engine !== 'v4') usage('--transport upgrade is for --engine v4 only');
if (!['perconn', 'permessage'].includes(args.mode)) usage('--mode must be perconn or permessage');

const BASE = args.url.replace(/\/+$/, '');
const ENGINE = args.engine;
const CLIENT = CLIENTS[ENGINE]; // major version of socket.io-client
const CLIENT_PKG = CLIENT === 4 ? 'socket.io-client' : 'socket.io-client-v2';
const ioClient = require(CLIENT_PKG);
const TRANSPORT = args.transport;
// What the client is told to use; upgrade starts on polling.
const TRANSPORTS = TRANSPORT === 'upgrade' ? ['polling', 'websocket'] : [TRANSPORT];
// The transport a connection must end on.
const FINAL_TRANSPORT = TRANSPORT === 'upgrade' ? 'websocket' : TRANSPORT;
const MODE = args.mode;
const STEP = 3000; // default per-step timeout, ms

function usage(msg) {
  console.error(`contract.js: ${msg}\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Jar is a minimal cookie jar for one origin: name → value.
class Jar {
  constructor() { this.cookies = new Map(); this.lastSetCookie = []; }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  update(res) {
    const set = res.headers.getSetCookie();
    this.lastSetCookie = set;
    for (const line of set) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v = ''] = a.trim().split('=');
        if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
        if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
        return false;
      });
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  clone() { const j = new Jar(); j.cookies = new Map(this.cookies); return j; }
  get size() { return this.cookies.size; }
}

// http sends one request; with a jar it sends and updates its cookies.
async function http(method, path, { jar, form, headers = {}, cookie } = {}) {
  const h = { ...headers };
  const c = cookie !== undefined ? cookie : jar && jar.header();
  if (c) h.Cookie = c;
  const init = { method, headers: h, redirect: 'manual', signal: AbortSignal.timeout(STEP) };
  if (form) init.body = new URLSearchParams(form);
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch (err) {
    throw new Error(`${method} ${path}: request failed: ${err.cause ? err.cause.message : err.message}`);
  }
  if (jar) jar.update(res);
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json, desc: `${method} ${path} → ${res.status} ${clip(text)}` };
}

function clip(s, n = 200) {
  s = String(s);
  return s.length > n ? s.slice(0, n) + `…(${s.length} chars)` : s;
}

function assertJSON(r) {
  assert.match(r.headers.get('content-type') || '', /application\/json/, `${r.desc}: Content-Type should be application/json`);
  assert.ok(r.json !== undefined, `${r.desc}: body is not JSON`);
}

// login posts /login with a fresh (or the given) jar and checks the 200 answer.
async function login(user, jar = new Jar()) {
  const r = await http('POST', '/login', { jar, form: { user } });
  assert.equal(r.status, 200, `${r.desc}: login of ${JSON.stringify(user)} should be 200`);
  assertJSON(r);
  assert.deepEqual(r.json, { user, count: 0 }, `${r.desc}: login body`);
  assert.ok(jar.size > 0, `${r.desc}: login set no cookie`);
  return { jar, res: r };
}

async function me(jar) {
  return http('GET', '/me', { jar });
}

// Lifecycle and contract events a Client records. socket.io-client 4.x
// has no error or connect_timeout event on the socket: connect_error
// reports both.
const RECORDED = CLIENT === 4
  ? ['connect', 'connect_error', 'disconnect', 'welcome', 'sinvalid']
  : ['connect', 'connect_error', 'connect_timeout', 'error', 'disconnect', 'welcome', 'sinvalid'];

// connects counts the sockets opened and the ones retried (only the 2.x
// client's early poll 400, see earlyPoll400), printed in the summary.
const connects = { opened: 0, retried: [] };

// Client wraps one socket.io-client socket (2.x or 4.x, as --engine says)
// and records what it sees. Listeners are registered before the socket
// opens, so an early `sinvalid` or `welcome` is never missed.
// CLOSED is what ackOrClose resolves with when the socket closed first.
const CLOSED = Symbol('closed');

class Client {
  constructor(name, { cookie, headers = {}, query, opts = {} } = {}) {
    const extraHeaders = { ...headers };
    if (cookie) extraHeaders.Cookie = cookie;
    const o = {
      autoConnect: false,
      forceNew: true,
      reconnection: false,
      transports: TRANSPORTS,
      timeout: STEP,
      ...opts,
    };
    // In Node, socket.io-client 2.x and 4.x apply the top-level
    // extraHeaders to both transports: polling sets them on every XHR (with
    // the header check disabled, so Cookie and Origin pass) and websocket
    // hands them to ws as handshake headers.
    if (Object.keys(extraHeaders).length) o.extraHeaders = extraHeaders;
    if (query) o.query = query;
    this.init(name, () => ioClient(BASE, o), false);
  }

  // wrap makes a Client of the socket that make() returns already opening
  // (the shim's); make is called again for a retry.
  static wrap(name, make) {
    const c = Object.create(Client.prototype);
    c.init(name, make, true);
    c.watch();
    return c;
  }

  init(name, make, opening) {
    this.name = name;
    this.events = []; // {name, data, at}
    this.waiters = [];
    this.make = make;
    this.opening = opening; // make() returns a socket that opens by itself
    this.retried = false;
    this.closed = false;
    this.attach(make());
  }

  // attach makes s this Client's socket and records its events (only while
  // it is this Client's socket), and the transport its engine opened on
  // (the handshake's; with upgrade, the namespace connect may already be
  // answered over websocket).
  attach(s) {
    this.socket = s;
    for (const ev of RECORDED) {
      s.on(ev, (data) => {
        if (this.socket !== s) return;
        if (this.earlyPoll400(ev, data)) {
          this.retryNow('its first poll got 400 (go-socket.io v1.7.0 registers a polling session only after answering its handshake)');
          return;
        }
        this.record(ev, data);
      });
    }
    s.io.on('open', () => { if (this.socket === s) this.openedOn = this.transport(); });
  }

  record(name, data) {
    const e = { name, data, at: Date.now() };
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (w.pred(e)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(e); }
    }
  }

  // once calls fn at the next recorded event called name, synchronously,
  // from the socket's own listener, whichever socket (after a retry) it is.
  once(name, fn) {
    this.waiters.push({ pred: (e) => e.name === name, resolve: fn });
  }

  open() { this.socket.open(); this.watch(); return this; }

  // watch counts a connect. A connect the server leaves unanswered is not
  // retried: the binding answers every one (zishang520 TestConnectRaces),
  // so here it fails the step that waits for it.
  watch() {
    connects.opened++;
  }

  // earlyPoll400: with socket.io-client 2.x over polling, a poll that
  // races go-socket.io's registration of the new session gets 400
  // ("invalid sid") before the socket ever connected: a known trait of the
  // engine, retried once.
  earlyPoll400(ev, data) {
    if (CLIENT !== 2 || this.retried || this.closed || (ev !== 'error' && ev !== 'connect_error')) return false;
    const msg = String((data && data.message) || data);
    const status = data && data.description; // 2.x: the XHR's status
    return /xhr poll error/.test(msg) && status === 400 &&
      !this.events.some((e) => ['connect', 'welcome', 'sinvalid'].includes(e.name));
  }

  retryNow(why) {
    this.retried = true;
    connects.retried.push(this.name);
    console.log(`retry ${this.name}: ${why}; connecting again`);
    const s = this.socket;
    this.attach(this.make());
    s.close();
    if (!this.opening) this.socket.open();
  }

  // waitFor resolves with the first recorded event (past or future) whose
  // name is in names, looking only at events from index `from` on.
  waitFor(names, ms = STEP, from = 0) {
    names = [].concat(names);
    const pred = (e) => names.includes(e.name);
    const seen = this.events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    let waiter;
    const p = new Promise((resolve) => { waiter = { pred, resolve }; this.waiters.push(waiter); });
    return withTimeout(p, ms, () => `${this.name}: waiting for ${names.join(' or ')}; saw ${this.seen()}`)
      .finally(() => { const i = this.waiters.indexOf(waiter); if (i >= 0) this.waiters.splice(i, 1); });
  }

  // outcome waits for the first of welcome, sinvalid, connect_error (and
  // with 2.x connect_timeout and error) or disconnect: what the server said
  // about this socket's session.
  outcome(ms = STEP) {
    return this.waitFor(RECORDED.filter((n) => n !== 'connect'), ms);
  }

  async expectWelcome(user, count, ms = STEP) {
    const e = await this.outcome(ms);
    assert.equal(e.name, 'welcome', `${this.name}: expected welcome, got ${fmt(e)}; saw ${this.seen()}`);
    assert.deepEqual(e.data, { user, count }, `${this.name}: welcome payload`);
    return e.data;
  }

  async expectSinvalid(ms = STEP) {
    const e = await this.outcome(ms);
    assert.equal(e.name, 'sinvalid', `${this.name}: expected sinvalid, got ${fmt(e)}; saw ${this.seen()}`);
    assert.ok(e.data && typeof e.data === 'object', `${this.name}: sinvalid payload should be an object, got ${fmt(e)}`);
    assert.equal(typeof e.data.reason, 'string', `${this.name}: sinvalid payload should have a string reason, got ${fmt(e)}`);
    return e.data;
  }

  // ack emits event (with arg, unless arg is undefined) and resolves with the
  // ack's first argument.
  ack(event, arg, ms = STEP) {
    const p = new Promise((resolve) => {
      if (arg === undefined) this.socket.emit(event, (v) => resolve(v));
      else this.socket.emit(event, arg, (v) => resolve(v));
    });
    return withTimeout(p, ms, () => `${this.name}: ack of ${event}(${clip(JSON.stringify(arg) ?? '', 60)}); saw ${this.seen()}`);
  }

  // ackOrClose is ack for a socket the server is closing: it resolves with
  // CLOSED if the socket disconnects before the ack arrives.
  ackOrClose(event, ms = STEP) {
    const from = this.events.length;
    return Promise.race([
      this.ack(event, undefined, ms),
      this.waitFor('disconnect', ms + 100, from).then(() => CLOSED),
    ]);
  }

  // transport is the name of the engine transport the socket is on now.
  transport() { return this.socket.io.engine?.transport?.name; }

  // waitTransport resolves with the transport name once it is want, or
  // with the name it has after ms.
  async waitTransport(want, ms) {
    const deadline = Date.now() + ms;
    while (this.transport() !== want && Date.now() < deadline) await sleep(20);
    return this.transport();
  }

  get connected() { return this.socket.connected; }
  has(name) { return this.events.some((e) => e.name === name); }
  seen() { return '[' + this.events.map(fmt).join(', ') + ']'; }
  close() { this.closed = true; this.socket.close(); }
}

function fmt(e) {
  if (e.data === undefined) return e.name;
  let d;
  if (e.data instanceof Error) {
    const desc = e.data.description;
    d = e.data.message + (desc === undefined ? '' : ` (${desc && desc.message ? desc.message : typeof desc === 'object' ? 'status ' + (desc.statusCode ?? desc.status ?? '?') : desc})`);
  } else {
    try { d = JSON.stringify(e.data); } catch { d = String(e.data); }
  }
  return `${e.name} ${clip(d, 120)}`;
}

// connectWith opens a socket carrying jar's cookie and expects welcome. The
// socket is closed after the case (see track).
async function connectWith(name, jar, user, count) {
  const c = client(name, { cookie: jar.header() }).open();
  await c.expectWelcome(user, count);
  return c;
}

// pollMe polls /me until pred(json) holds or ms pass; returns the last answer.
async function pollMe(jar, pred, ms) {
  const deadline = Date.now() + ms;
  let r;
  for (;;) {
    r = await me(jar);
    if (r.status === 200 && pred(r.json)) return r;
    if (Date.now() >= deadline) return r;
    await sleep(50);
  }
}

// tamper flips one character in the middle of a cookie value.
function tamper(value) {
  const chars = [...value];
  let i = Math.floor(chars.length / 2);
  while (i < chars.length && !/[A-Za-z0-9]/.test(chars[i])) i++;
  if (i >= chars.length) i = 0;
  chars[i] = chars[i] === 'A' ? 'B' : 'A';
  return chars.join('');
}

// ---------------------------------------------------------------- cases

const cases = [];
const notes = [];
const openClients = new Set();
function test(name, fn) { cases.push({ name, fn }); }

// track registers clients to be closed after the case, whatever happens.
function track(...cs) { for (const c of cs) openClients.add(c); return cs[0]; }
function client(name, o) { return track(new Client(name, o)); }

test('GET / is an HTML page that loads the shim', async () => {
  const r = await http('GET', '/');
  assert.equal(r.status, 200, r.desc);
  assert.match(r.headers.get('content-type') || '', /text\/html/, `${r.desc}: Content-Type`);
  assert.match(r.text, /<script[^>]*\ssrc=["']\/socket\.io\/socket\.io-sessions\.js["']/, `${r.desc}: no <script src="/socket.io/socket.io-sessions.js">`);
  for (const id of ['status', 'user', 'count', 'login', 'logout', 'incr']) {
    assert.match(r.text, new RegExp(`id=["']${id}["']`), `${r.desc}: no element #${id}`);
  }
});

test('GET /socket.io/socket.io-sessions.js is no-store JavaScript without the cookie value', async () => {
  const anon = await http('GET', '/socket.io/socket.io-sessions.js');
  assert.equal(anon.status, 200, anon.desc);
  const { jar } = await login(uniqueUser('shim'));
  const r = await http('GET', '/socket.io/socket.io-sessions.js', { jar });
  assert.equal(r.status, 200, r.desc);
  for (const x of [anon, r]) {
    assert.match(x.headers.get('content-type') || '', /javascript/, `${x.desc}: Content-Type should be JavaScript`);
    assert.match(x.headers.get('cache-control') || '', /no-store/, `${x.desc}: Cache-Control should have no-store`);
  }
  for (const v of jar.cookies.values()) {
    assert.ok(!r.text.includes(v), `shim contains the session cookie value ${clip(v, 20)}`);
    assert.ok(!r.text.includes(decodeURIComponent(v)), 'shim contains the decoded session cookie value');
  }
  assert.match(r.text, /connectWithSession/, 'shim does not define connectWithSession');
});

test('POST /login with a valid name: 200 {user,count:0} and an HttpOnly SameSite=Lax cookie', async () => {
  for (const user of [uniqueUser('v'), 'a', 'x'.repeat(64), `Az09_-.${Date.now()}`]) {
    const { jar, res } = await login(user);
    const set = jar.lastSetCookie;
    assert.ok(set.length > 0, `${res.desc}: no Set-Cookie`);
    for (const line of set) {
      assert.match(line, /;\s*HttpOnly/i, `Set-Cookie lacks HttpOnly: ${line}`);
      assert.match(line, /;\s*SameSite=Lax/i, `Set-Cookie lacks SameSite=Lax: ${line}`);
    }
    const m = await me(jar);
    assert.equal(m.status, 200, m.desc);
    assert.deepEqual(m.json, { user, count: 0 }, m.desc);
  }
});

test('POST /login with an invalid name: 400 {error}', async () => {
  for (const user of ['', 'y'.repeat(65), 'a b', '<x>', 'é', 'a/b', 'a\u0000b']) {
    const jar = new Jar();
    const r = await http('POST', '/login', { jar, form: { user } });
    assert.equal(r.status, 400, `${r.desc}: user=${JSON.stringify(user)} should be refused`);
    assertJSON(r);
    assert.equal(typeof r.json.error, 'string', `${r.desc}: 400 body should be {"error":TEXT}`);
    const m = await me(jar);
    assert.equal(m.status, 401, `${m.desc}: a refused login must not leave a session (user=${JSON.stringify(user)})`);
  }
  const r = await http('POST', '/login', { form: {} });
  assert.equal(r.status, 400, `${r.desc}: login without the user field should be 400`);
  assertJSON(r);
});

test('GET /me: 401 {error} without a session, 200 {user,count} with one', async () => {
  const none = await http('GET', '/me');
  assert.equal(none.status, 401, none.desc);
  assertJSON(none);
  assert.equal(typeof none.json.error, 'string', `${none.desc}: body should be {"error":TEXT}`);
  const bogus = await http('GET', '/me', { cookie: 'session=bogus; iosessions=bogus' });
  assert.equal(bogus.status, 401, `${bogus.desc}: a garbage cookie should be 401, not an error`);
  const user = uniqueUser('me');
  const { jar } = await login(user);
  const r = await me(jar);
  assert.equal(r.status, 200, r.desc);
  assertJSON(r);
  assert.deepEqual(r.json, { user, count: 0 }, r.desc);
});

test('socket with the cookie: welcome, incr acks 1,2,3, whoami, and /me sees the count', async () => {
  const user = uniqueUser('inc');
  const { jar } = await login(user);
  const c = track(await connectWith('cookie-socket', jar, user, 0));
  for (const want of [1, 2, 3]) {
    const got = await c.ack('incr');
    assert.strictEqual(got, want, `incr #${want} acked ${JSON.stringify(got)}`);
    if (MODE === 'permessage') {
      const m = await me(jar);
      assert.deepEqual(m.json, { user, count: want }, `permessage: /me right after incr ack #${want}: ${m.desc}`);
    }
  }
  assert.deepEqual(await c.ack('whoami'), { user, count: 3 }, 'whoami after 3 incr');
  assert.ok(!c.has('sinvalid'), `cookie socket got sinvalid: ${c.seen()}`);
  c.close();
  const m = await pollMe(jar, (j) => j.count === 3, 2000);
  assert.deepEqual(m.json, { user, count: 3 }, `/me after the socket closed (polled 2 s): ${m.desc}`);
  // A new socket of the same session is welcomed with the saved count.
  const c2 = track(await connectWith('cookie-socket-2', jar, user, 3));
  assert.deepEqual(await c2.ack('whoami'), { user, count: 3 }, 'whoami on a second socket');
});

test('POST /count: 401 without a session, 400 for a non-integer; the socket sees the new count within 1 s', async () => {
  const anon = await http('POST', '/count', { form: { count: '5' } });
  assert.strictEqual(anon.status, 401, `POST /count without a session: ${anon.desc}`);
  const user = uniqueUser('cnt');
  const { jar } = await login(user);
  const bad = await http('POST', '/count', { jar, form: { count: 'many' } });
  assert.strictEqual(bad.status, 400, `POST /count count=many: ${bad.desc}`);
  const c = track(await connectWith('count-socket', jar, user, 0));
  assert.strictEqual(await c.ack('incr'), 1, 'incr before the HTTP change');
  const set = await http('POST', '/count', { jar, form: { count: '41' } });
  assert.strictEqual(set.status, 200, `POST /count count=41: ${set.desc}`);
  assert.deepEqual(set.json, { user, count: 41 }, set.desc);
  const deadline = Date.now() + 1000;
  let who;
  for (;;) {
    who = await c.ack('whoami');
    if (who.count === 41 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(who, { user, count: 41 }, 'whoami within 1 s of POST /count');
  assert.strictEqual(await c.ack('incr'), 42, 'incr after the HTTP change');
});

test('POST /rotate: 401 without a session; 204 and a new cookie; the socket keeps its session, the old cookie is refused', async () => {
  const anon = await http('POST', '/rotate');
  assert.strictEqual(anon.status, 401, `POST /rotate without a session: ${anon.desc}`);
  const user = uniqueUser('rot');
  const { jar } = await login(user);
  const c = track(await connectWith('rotate-socket', jar, user, 0));
  assert.strictEqual(await c.ack('incr'), 1, 'incr before the rotation');
  const oldCookie = jar.header();
  const r = await http('POST', '/rotate', { jar });
  assert.strictEqual(r.status, 204, `POST /rotate: ${r.desc}`);
  assert.notStrictEqual(jar.header(), oldCookie, 'POST /rotate set no new cookie');
  assert.deepEqual(await c.ack('whoami'), { user, count: 1 }, 'whoami after the rotation');
  assert.strictEqual(await c.ack('incr'), 2, 'incr after the rotation');
  assert.ok(!c.has('sinvalid') && !c.has('disconnect'), `the socket was told: ${c.seen()}`);
  const old = await http('GET', '/me', { cookie: oldCookie });
  assert.strictEqual(old.status, 401, `GET /me with the old cookie: ${old.desc}`);
  const now = await me(jar);
  assert.strictEqual(now.json && now.json.user, user, `GET /me with the new cookie: ${now.desc}`);
});

test(`transport: the socket opens on ${TRANSPORTS[0]} and ends on ${FINAL_TRANSPORT}; no event is lost on the way`, async () => {
  // The v4 engine now and then never answers the upgrade's probe (as it
  // does a CONNECT, see CONNECT_RETRY); the case then tries once more with
  // a new socket and says so.
  for (let attempt = 1; ; attempt++) {
    const user = uniqueUser('tr');
    const { jar } = await login(user);
    const c = client('transport-socket', { cookie: jar.header() });
    // 20 incr as soon as the socket connects (during the upgrade, if any),
    // 20 more once it is on its final transport: 1..40, in order.
    const acks = [];
    const burst = () => { for (let i = 0; i < 20; i++) acks.push(c.ack('incr', undefined, 10000)); };
    c.once('connect', burst);
    c.open();
    await c.expectWelcome(user, 0);
    assert.equal(c.openedOn, TRANSPORTS[0], `the engine opened on ${c.openedOn}, want ${TRANSPORTS[0]}`);
    const final = await c.waitTransport(FINAL_TRANSPORT, 2000);
    if (final !== FINAL_TRANSPORT && TRANSPORT === 'upgrade' && attempt === 1) {
      upgrades.retried++;
      console.log(`retry ${c.name}: still on ${final} 2 s after connecting; trying once more with a new socket`);
      c.close();
      continue;
    }
    assert.equal(final, FINAL_TRANSPORT, `2 s after connecting the socket is on ${final}, want ${FINAL_TRANSPORT}`);
    burst();
    const got = await Promise.all(acks);
    assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => i + 1), 'incr acks across the transport change');
    await sleep(300);
    assert.equal(c.transport(), FINAL_TRANSPORT, 'the socket left its final transport');
    assert.ok(c.connected, `the socket disconnected: ${c.seen()}`);
    assert.deepEqual(await c.ack('whoami'), { user, count: 40 }, 'whoami after 40 incr');
    return `${c.openedOn} → ${final}${attempt > 1 ? ' (second attempt)' : ''}`;
  }
});

test('echo acks its argument unchanged', async () => {
  const { jar } = await login(uniqueUser('echo'));
  const c = track(new Client('echo-socket', { cookie: jar.header() }).open());
  await c.outcome();
  const anon = client('echo-anon').open();
  await anon.outcome();
  const values = [
    'hello',
    '',
    '"quotes" \\ </script> \n\t',
    42,
    -1.5,
    0,
    true,
    null,
    [1, 'two', { three: [3] }],
    { a: 1, b: { c: [true, null, 'x'], d: { e: 'deep' } }, 'k y': '' },
  ];
  for (const cl of [c, anon]) {
    for (const v of values) {
      const got = await cl.ack('echo', v);
      assert.deepEqual(got, v, `${cl.name}: echo(${JSON.stringify(v)}) acked ${JSON.stringify(got)}`);
    }
  }
});

test('echo acks non-ASCII text unchanged (UTF-8: 2-, 3- and 4-byte characters)', async () => {
  const c = client('echo-utf8').open();
  await c.outcome();
  for (const v of ['é', 'ünïcødé ✓', '😀', { name: 'Zoë', tags: ['日本語', '✓'] }]) {
    const got = await c.ack('echo', v);
    assert.deepEqual(got, v, `echo(${JSON.stringify(v)}) acked ${JSON.stringify(got)}`);
  }
  assert.ok(c.connected, `the socket closed after non-ASCII echo: ${c.seen()}`);
});

test('events of one socket are answered in order (50 incr fired at once)', async () => {
  const user = uniqueUser('ord');
  const { jar } = await login(user);
  const c = track(await connectWith('order-socket', jar, user, 0));
  const order = [];
  const acks = [];
  for (let i = 1; i <= 50; i++) {
    acks.push(new Promise((resolve) => c.socket.emit('incr', (n) => { order.push(n); resolve(n); })));
  }
  const got = await withTimeout(Promise.all(acks), 10000, () => `50 incr acks (got ${order.length}: ${order.slice(0, 10).join(",")}…)`);
  const want = Array.from({ length: 50 }, (_, i) => i + 1);
  assert.deepEqual(got, want, 'the i-th incr should ack i');
  assert.deepEqual(order, want, 'acks should arrive in the order sent');
  c.close();
  const m = await pollMe(jar, (j) => j.count === 50, 2000);
  assert.deepEqual(m.json, { user, count: 50 }, `/me after 50 incr: ${m.desc}`);
});

test('socket without a session: sinvalid, stays connected, echo works, incr/whoami refused', async () => {
  const user = uniqueUser('other');
  const { jar } = await login(user);
  const other = track(await connectWith('other-session', jar, user, 0));
  assert.equal(await other.ack('incr'), 1);
  const before = await pollMe(jar, (j) => j.count === 1, MODE === 'perconn' ? 0 : 2000);
  assert.equal(before.status, 200, before.desc);
  if (MODE === 'permessage') assert.deepEqual(before.json, { user, count: 1 }, `permessage: /me after the acked incr: ${before.desc}`);

  const c = client('no-cookie').open();
  await c.expectSinvalid();
  await sleep(500);
  assert.ok(c.connected && !c.has('disconnect'), `no-cookie socket should stay connected after sinvalid; saw ${c.seen()}`);
  assert.equal(await c.ack('echo', 'still here'), 'still here', 'echo on a no-session socket');
  assert.deepEqual(await c.ack('incr'), { error: 'no session' }, 'incr without a session');
  assert.deepEqual(await c.ack('whoami'), { error: 'no session' }, 'whoami without a session');
  assert.deepEqual(await c.ack('incr'), { error: 'no session' }, 'second incr without a session');
  assert.ok(c.connected, `no-cookie socket disconnected after refused events; saw ${c.seen()}`);

  const after = await me(jar);
  assert.equal(after.status, 200, after.desc);
  assert.deepEqual(after.json, before.json, `another session's /me changed: before ${before.desc}, after ${after.desc}`);
  assert.deepEqual(await other.ack('whoami'), { user, count: 1 }, 'whoami of the other session');
});

test('socket with a tampered cookie: sinvalid', async () => {
  const { jar } = await login(uniqueUser('tamp'));
  const bad = jar.clone();
  for (const [k, v] of bad.cookies) bad.cookies.set(k, tamper(v));
  const m = await me(bad);
  assert.equal(m.status, 401, `tampered cookie on /me: ${m.desc}`);
  const t = client('tampered', { cookie: bad.header() }).open();
  await t.expectSinvalid();
  await sleep(200);
  assert.ok(t.connected, `tampered-cookie socket should stay connected after sinvalid; saw ${t.seen()}`);
  assert.deepEqual(await t.ack('whoami'), { error: 'no session' }, 'whoami with a tampered cookie');
});

test('handshake from a foreign Origin gets no session', async () => {
  const user = uniqueUser('orig');
  const { jar } = await login(user);
  const c = client('evil-origin', { cookie: jar.header(), headers: { Origin: 'http://evil.example' } }).open();
  const e = await c.outcome();
  assert.notEqual(e.name, 'welcome', `a handshake with Origin: http://evil.example and a valid cookie was welcomed: ${fmt(e)}`);
  let how;
  if (e.name === 'sinvalid') {
    assert.equal(typeof e.data?.reason, 'string', `sinvalid payload: ${fmt(e)}`);
    if (c.connected) {
      const w = await c.ack('whoami');
      assert.deepEqual(w, { error: 'no session' }, 'whoami from a foreign origin');
    }
    how = `sinvalid ${JSON.stringify(e.data)}`;
  } else {
    how = `refused: ${fmt(e)}`;
  }
  // The same cookie from the right origin (or none, as Node sends) still works.
  const ok = track(await connectWith('same-origin', jar, user, 0));
  const ok2 = client('own-origin', { cookie: jar.header(), headers: { Origin: BASE } }).open();
  await ok2.expectWelcome(user, 0);
  ok.close();
  return `foreign origin → ${how}`;
});

test('re-login replaces the session; the old socket never acts as the old user', async () => {
  const oldUser = uniqueUser('old');
  const newUser = uniqueUser('new');
  const { jar } = await login(oldUser);
  const oldJar = jar.clone();
  const oldCookie = jar.header();
  const c = track(await connectWith('old-session-socket', jar, oldUser, 0));
  assert.equal(await c.ack('incr'), 1);

  const mark = c.events.length;
  await login(newUser, jar); // same jar: the old cookie is sent along
  assert.notEqual(jar.header(), oldCookie, 'the session cookie value did not change on re-login');
  const m = await me(jar);
  assert.deepEqual(m.json, { user: newUser, count: 0 }, `/me after re-login: ${m.desc}`);

  // The old socket is told: sinvalid, or welcome as the new user.
  const told = await c.waitFor(['sinvalid', 'welcome', 'disconnect'], STEP, mark);
  let how;
  if (told.name === 'welcome') {
    assert.deepEqual(told.data, { user: newUser, count: 0 }, `old socket's welcome after re-login: ${fmt(told)}`);
    how = 'followed (welcome as the new user)';
  } else {
    assert.equal(told.name, 'sinvalid', `old socket was disconnected without sinvalid after re-login: ${c.seen()}`);
    how = `sinvalid ${JSON.stringify(told.data)}`;
  }
  // After sinvalid the server closes the socket a moment later: an event
  // sent meanwhile is acked with an error, or lost with the connection.
  const w = c.connected ? await c.ackOrClose('whoami') : CLOSED;
  const i = w !== CLOSED && c.connected ? await c.ackOrClose('incr') : CLOSED;
  if (w !== CLOSED) {
    const okNew = w && w.user === newUser;
    const okErr = w && typeof w.error === 'string';
    assert.ok(okNew || okErr, `old socket's whoami after re-login returned ${JSON.stringify(w)}; want the new user or {"error":...}`);
    assert.ok(!(w && w.user === oldUser), `old socket still acts as ${oldUser}: ${JSON.stringify(w)}`);
    if (i !== CLOSED) {
      assert.ok(i && typeof i === 'object' ? typeof i.error === 'string' : okNew, `old socket's incr after re-login acked ${JSON.stringify(i)}`);
    }
  }
  const desc = (v) => (v === CLOSED ? 'disconnected' : JSON.stringify(v));
  how += `; then whoami → ${desc(w)}, incr → ${desc(i)}`;
  c.close();
  await sleep(300); // perconn: the old socket's save at disconnect has run
  const old = await me(oldJar);
  assert.equal(old.status, 401, `the old session's cookie still works after re-login (and the old socket closed): ${old.desc}`);
  const now = await me(jar);
  assert.equal(now.status, 200, now.desc);
  assert.equal(now.json.user, newUser, now.desc);
  return how;
});

test('POST /logout: 204, both sockets of the session get sinvalid and are disconnected within 1 s; others stay', async () => {
  const user = uniqueUser('out');
  const otherUser = uniqueUser('stay');
  const { jar } = await login(user);
  const { jar: otherJar } = await login(otherUser);
  const s1 = track(await connectWith('logout-1', jar, user, 0));
  const s2 = track(await connectWith('logout-2', jar, user, 0));
  const o = track(await connectWith('other', otherJar, otherUser, 0));
  assert.equal(await o.ack('incr'), 1);

  const cookieBefore = jar.header();
  const t0 = Date.now();
  const r = await http('POST', '/logout', { jar });
  assert.equal(r.status, 204, r.desc);
  const t1 = Date.now();
  for (const s of [s1, s2]) {
    const sv = await s.waitFor('sinvalid', 1000 + (t1 - t0));
    assert.equal(typeof sv.data?.reason, 'string', `${s.name}: sinvalid payload ${fmt(sv)}`);
    const d = await s.waitFor('disconnect', Math.max(50, t1 + 1000 - Date.now()));
    assert.ok(d.at - t1 <= 1000, `${s.name} disconnected ${d.at - t1} ms after the logout answer`);
    assert.ok(sv.at <= d.at, `${s.name}: disconnect came before sinvalid: ${s.seen()}`);
  }
  await sleep(500);
  assert.ok(o.connected && !o.has('sinvalid') && !o.has('disconnect'), `the other session's socket was affected: ${o.seen()}`);
  assert.deepEqual(await o.ack('whoami'), { user: otherUser, count: 1 }, 'other session whoami after logout');
  assert.equal((await me(jar)).status, 401, '/me after logout should be 401');
  const om = await pollMe(otherJar, (j) => j.count === 1, MODE === 'perconn' ? 0 : 2000);
  assert.equal(om.status, 200, om.desc);
  assert.equal(om.json.user, otherUser, `the other session's /me after logout: ${om.desc}`);
  // perconn saves at disconnect, and the other socket is still open.
  if (MODE === 'permessage') assert.equal(om.json.count, 1, `permessage: the other session's /me after logout: ${om.desc}`);
  const stale = await http('GET', '/me', { cookie: cookieBefore });
  assert.equal(stale.status, 401, `/me with the cookie from before logout: ${stale.desc}`);
  // A socket opened with the cookie from before logout gets no session.
  const late = client('after-logout', { cookie: cookieBefore }).open();
  const e = await late.outcome();
  assert.notEqual(e.name, 'welcome', `a socket opened after logout with the old cookie was welcomed: ${fmt(e)}`);
});

test('shim: connectWithSession carries the session without the cookie, in the query (2.x) or auth (4.x)', async () => {
  const user = uniqueUser('shim');
  const { jar } = await login(user);
  const shim = await http('GET', '/socket.io/socket.io-sessions.js', { jar });
  assert.equal(shim.status, 200, shim.desc);
  const c = track(Client.wrap('shim-socket', () => runShim(shim.text)));
  await c.expectWelcome(user, 0);
  assert.equal(await c.ack('incr'), 1, 'incr over the shim socket');
  assert.deepEqual(await c.ack('whoami'), { user, count: 1 }, 'whoami over the shim socket');
  // Where the token travelled: the engine handshake's query (what the
  // transport puts in its URL) or the CONNECT packet's auth payload.
  const query = c.socket.io.engine?.transport?.query || {};
  const sent = c.socket.connectPackets;
  const where = `handshake query ${JSON.stringify(query)}, namespace CONNECT payloads ${JSON.stringify(sent)}`;
  const isToken = (v) => typeof v === 'string' && v !== '';
  const inQuery = isToken(query.iosessions_token);
  const inAuth = sent.some((p) => isToken(p?.iosessions_token));
  if (CLIENT === 4) {
    assert.ok(inAuth, `socket.io-client 4.x: the shim token should be in the auth payload; ${where}`);
    assert.ok(!inQuery, `socket.io-client 4.x: the shim token should not be in the handshake query; ${where}`);
  } else {
    assert.ok(inQuery, `socket.io-client 2.x: the shim token should be in the handshake query; ${where}`);
  }

  // A shim fetched without a session connects without one.
  const anonShim = await http('GET', '/socket.io/socket.io-sessions.js');
  const a = track(Client.wrap('anon-shim-socket', () => runShim(anonShim.text)));
  await a.expectSinvalid();
  const aq = a.socket.io.engine?.transport?.query || {};
  assert.ok(!isToken(aq.iosessions_token) && !a.socket.connectPackets.some((p) => isToken(p?.iosessions_token)),
    `a shim fetched without a session sent a token: handshake query ${JSON.stringify(aq)}, CONNECT payloads ${JSON.stringify(a.socket.connectPackets)}`);
  return `token in the ${inAuth ? 'auth payload' : 'handshake query'}`;
});

// runShim evaluates the shim in a fresh context whose global io is the real
// socket.io-client, with location at the server, and connects WITHOUT the
// cookie: only the token the shim inlined can carry the session. The
// socket's connectPackets are the payloads of the namespace CONNECT packets
// it sent, so that a case sees where the token travels.
function runShim(src) {
  const loc = new URL(BASE + '/');
  const location = {
    href: loc.href, origin: loc.origin, protocol: loc.protocol, host: loc.host,
    hostname: loc.hostname, port: loc.port, pathname: loc.pathname, search: '', hash: '',
  };
  const document = {
    cookie: '',
    currentScript: null,
    readyState: 'complete',
    getElementsByTagName: () => [],
    querySelector: () => null,
    addEventListener: () => {},
  };
  const sandbox = {
    io: ioClient, console, setTimeout, clearTimeout, setInterval, clearInterval,
    URL, URLSearchParams, location, document, navigator: { userAgent: 'node' },
  };
  sandbox.window = sandbox;
  sandbox.self = sandbox;
  sandbox.globalThis = sandbox;
  vm.createContext(sandbox);
  vm.runInContext(src, sandbox, { filename: 'socket.io-sessions.js', timeout: 1000 });
  const io = sandbox.io || sandbox.window.io;
  assert.equal(typeof io?.connectWithSession, 'function', 'the shim did not define io.connectWithSession');
  const s = io.connectWithSession(BASE, { transports: TRANSPORTS, forceNew: true, reconnection: false });
  assert.ok(s && typeof s.emit === 'function' && typeof s.on === 'function', 'connectWithSession did not return a socket');
  // Record the payloads of the namespace CONNECT packets (type 0) the
  // socket sends: 4.x sends its auth payload in them.
  s.connectPackets = [];
  const packet = s.packet;
  s.packet = function (p) {
    if (p && p.type === 0) s.connectPackets.push(p.data === undefined ? null : p.data);
    return packet.apply(this, arguments);
  };
  return s;
}

test('a message over 1 MB closes only its connection', async () => {
  const user = uniqueUser('big');
  const { jar } = await login(user);
  const a = track(await connectWith('big-sender', jar, user, 0));
  const b = track(await connectWith('bystander', jar, user, 0));
  const big = 'x'.repeat(2 * 1024 * 1024);
  let acked = false;
  a.socket.emit('echo', big, () => { acked = true; });
  const d = await a.waitFor('disconnect', 5000);
  assert.ok(!acked, 'the 2 MB echo was acked');
  assert.ok(b.connected && !b.has('disconnect'), `the other connection was closed too: ${b.seen()}`);
  assert.equal(await b.ack('echo', 'after'), 'after', 'echo on the other connection after the big message');
  const m = await me(jar);
  assert.equal(m.status, 200, `HTTP after the big message: ${m.desc}`);
  const c = track(await connectWith('new-after-big', jar, user, 0));
  assert.equal(await c.ack('echo', 1), 1);
  return `sender closed: ${fmt(d)}`;
});

// ---------------------------------------------------------------- runner

// checkTransports requires every socket of the case that is still connected
// to be on FINAL_TRANSPORT. With upgrade it counts instead the sockets that
// upgraded within 2 s of their connect (the transport case requires it):
// the v4 engine now and then leaves a probe unanswered, and a socket then
// stays on polling, which is no failure of the contract.
const upgrades = { checked: 0, stayed: [], retried: 0 };
async function checkTransports() {
  for (const cl of openClients) {
    if (!cl.connected) continue;
    const since = cl.events.findLast((e) => e.name === 'connect')?.at ?? Date.now();
    const name = await cl.waitTransport(FINAL_TRANSPORT, since + 2000 - Date.now());
    if (TRANSPORT !== 'upgrade') {
      assert.equal(name, FINAL_TRANSPORT, `${cl.name} is on ${name}, want ${FINAL_TRANSPORT}`);
      continue;
    }
    upgrades.checked++;
    if (name !== FINAL_TRANSPORT) upgrades.stayed.push(cl.name);
  }
}

async function main() {
  const selected = args.only ? cases.filter((c) => c.name.includes(args.only)) : cases;
  console.log(`contract: ${BASE} engine=${ENGINE} (socket.io-client ${require(CLIENT_PKG + '/package.json').version}) transport=${TRANSPORT} mode=${MODE}: ${selected.length} cases`);
  let passed = 0;
  const failed = [];
  for (const c of selected) {
    const t0 = Date.now();
    try {
      const note = await withTimeout(c.fn(), 30000, `case "${c.name}"`);
      await checkTransports();
      passed++;
      console.log(`ok   ${c.name} (${Date.now() - t0} ms)${note ? ' — ' + note : ''}`);
      if (note) notes.push(`${c.name}: ${note}`);
    } catch (err) {
      failed.push(c.name);
      console.log(`FAIL ${c.name} (${Date.now() - t0} ms)`);
      console.log('     ' + String(err && err.message || err).split('\n').join('\n     '));
      if (!args['keep-going']) break;
    } finally {
      for (const cl of openClients) { try { cl.close(); } catch { /* closed */ } }
      openClients.clear();
    }
  }
  const skipped = selected.length - passed - failed.length;
  if (CLIENT === 4) {
    const r = connects.retried;
    console.log(`connect retries: ${r.length} of ${connects.opened} connects${r.length ? ` (${r.join(', ')})` : ''}`);
  }
  if (TRANSPORT === 'upgrade') {
    const st = upgrades.stayed;
    console.log(`upgrades: ${upgrades.checked - st.length} of ${upgrades.checked} sockets open at a case's end were on websocket within 2 s${st.length ? ` (stayed on polling: ${st.join(', ')})` : ''}; transport case retries: ${upgrades.retried}`);
  }
  console.log(`contract (${ENGINE}, ${TRANSPORT}, ${MODE}): ${passed} passed, ${failed.length} failed${skipped ? `, ${skipped} skipped` : ''}`);
  if (failed.length) console.log(`failed: ${failed.join('; ')}`);
  // Sockets may hold timers; exit explicitly.
  setTimeout(() => process.exit(failed.length ? 1 : 0), 50);
}

main().catch((err) => { console.error(err); process.exit(1); });
