// lib.js: what the end-to-end scripts share: HTTP requests to the example,
// login, and Sock, a socket.io-client socket that records its events.
'use strict';

const assert = require('node:assert/strict');
const { performance } = require('node:perf_hooks');

const CLIENTS = { googollee: 2, v4: 4 };
const STEP = 3000; // per-step timeout, ms
const TOKEN_PARAM = 'iosessions_token';

// The client of the engine under test: setEngine picks it.
let CLIENT = 4;
let ioClient = null;
function setEngine(engine) {
  CLIENT = CLIENTS[engine];
  ioClient = require(CLIENT === 4 ? 'socket.io-client' : 'socket.io-client-v2');
}

const now = () => performance.now();

// withTimeout rejects with a message naming the step when p takes too long;
// what may be a function, called then (to show what was seen by that time).
function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${typeof what === 'function' ? what() : what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

let userSeq = 0;
// uniqueUser returns a fresh valid user name, so cases never share a session.
function uniqueUser(prefix = 'u') {
  userSeq++;
  return `${prefix}${userSeq}_${process.pid}.${Date.now().toString(36)}`;
}

// request sends one HTTP request to a node, with cookie (a Cookie header
// value) if given, and returns its status, Set-Cookie lines and JSON body.
async function request(base, method, path, { cookie, form, headers = {} } = {}) {
  const h = { ...headers };
  if (cookie) h.Cookie = cookie;
  const init = { method, headers: h, redirect: 'manual', signal: AbortSignal.timeout(STEP) };
  if (form) init.body = new URLSearchParams(form);
  const res = await fetch(base + path, init);
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, setCookie: res.headers.getSetCookie(), json, desc: `${method} ${base}${path} → ${res.status} ${text.slice(0, 200)}` };
}

// login logs user in on base and returns the session's Cookie header value.
async function login(base, user) {
  const r = await request(base, 'POST', '/login', { form: { user } });
  assert.equal(r.status, 200, r.desc);
  assert.deepEqual(r.json, { user, count: 0 }, r.desc);
  const pair = r.setCookie.map((l) => l.split(';')[0]).find((p) => p.startsWith('session='));
  assert.ok(pair, `${r.desc}: no session cookie in ${JSON.stringify(r.setCookie)}`);
  return pair;
}

async function me(base, cookie) {
  const r = await request(base, 'GET', '/me', { cookie });
  assert.equal(r.status, 200, r.desc);
  return r.json;
}

// Sock is one socket.io-client socket to a node, over websocket, with the
// events it received recorded (with their time), so none is missed.
class Sock {
  // events are recorded besides the contract's; events named in acked are
  // acked (the callback called with no arguments) unless noAck.
  constructor(name, base, { cookie, token, events = [], acked = [], noAck = false } = {}) {
    this.name = name;
    this.base = base;
    this.cookie = cookie;
    this.token = token;
    this.extra = events;
    this.acked = acked;
    this.noAck = noAck;
    this.events = [];
    this.waiters = [];
    this.closed = false;
    this.open();
  }

  open() {
    const o = { autoConnect: false, forceNew: true, reconnection: false, transports: ['websocket'], timeout: STEP };
    if (this.cookie) o.extraHeaders = { Cookie: this.cookie };
    if (this.token) {
      // Where the shim puts it: the auth payload (4.x), the query (2.x).
      if (CLIENT === 4) o.auth = { [TOKEN_PARAM]: this.token };
      else o.query = { [TOKEN_PARAM]: this.token };
    }
    const s = ioClient(this.base, o);
    this.socket = s;
    for (const ev of ['connect', 'connect_error', 'disconnect', 'welcome', 'sinvalid', ...this.extra]) {
      s.on(ev, (data, ack) => {
        if (this.socket !== s) return;
        this.record(ev, data);
        if (this.acked.includes(ev) && !this.noAck && typeof ack === 'function') ack();
      });
    }
    s.open();
  }

  record(name, data) {
    const e = { name, data, at: now() };
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (w.name === name) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(e); }
    }
  }

  seen() {
    return this.events.map((e) => e.name + (e.data === undefined ? '' : ' ' + JSON.stringify(e.data))).join(', ') || 'nothing';
  }

  // count returns how many events called name the socket received.
  count(name) { return this.events.filter((e) => e.name === name).length; }

  // waitFor resolves with the first event called name, past or future.
  waitFor(name, ms = STEP) {
    const e = this.events.find((x) => x.name === name);
    if (e) return Promise.resolve(e);
    let w;
    const p = new Promise((resolve) => { w = { name, resolve }; this.waiters.push(w); });
    return withTimeout(p, ms, () => `${this.name}: waiting for ${name}; saw ${this.seen()}`)
      .finally(() => { const i = this.waiters.indexOf(w); if (i >= 0) this.waiters.splice(i, 1); });
  }

  // welcome waits for the socket's first contract event and requires it
  // to be welcome with want.
  async welcome(want) {
    const e = await withTimeout(new Promise((resolve) => {
      const first = () => this.events.find((x) => ['welcome', 'sinvalid', 'connect_error', 'disconnect'].includes(x.name));
      const tick = () => { const f = first(); if (f) resolve(f); else setTimeout(tick, 5); };
      tick();
    }), STEP, () => `${this.name}: waiting for welcome; saw ${this.seen()}`);
    assert.equal(e.name, 'welcome', `${this.name}: expected welcome, saw ${this.seen()}`);
    assert.deepEqual(e.data, want, `${this.name}: welcome payload`);
  }

  ack(event, ms = STEP) {
    return withTimeout(new Promise((resolve) => this.socket.emit(event, (v) => resolve(v))), ms, `${this.name}: ack of ${event}`);
  }

  close() {
    this.closed = true;
    this.socket.close();
  }
}

// runCases runs the cases in order, closing the sockets each opened, and
// stops at the first failure; it prints a line per case, then `figures`,
// and exits 0, or 1 after a failure.
async function runCases(cases, opened, figures) {
  const started = now();
  let failed = false;
  for (const c of cases) {
    const t0 = now();
    try {
      await c.fn();
      console.log(`ok   ${c.name} (${(now() - t0).toFixed(0)} ms)`);
    } catch (err) {
      failed = true;
      console.log(`FAIL ${c.name}\n     ${String(err && err.stack || err).split('\n').join('\n     ')}`);
      break;
    } finally {
      for (const s of opened.splice(0)) s.close();
    }
  }
  figures.totalMs = Math.round(now() - started);
  console.log(`figures ${JSON.stringify(figures)}`);
  process.exit(failed ? 1 : 0);
}

// launchChromium starts a headless Chromium with its profile in dir, as a
// playwright persistent context (opts are launchPersistentContext's). A
// launch that has not answered within 30 s is given up and tried again,
// with a fresh profile under dir, up to three tries: in a soak, under
// two CPU hogs, two launches of one run never answered (the Chromium
// process started and then said nothing), while every other launch took
// a second or two. Other errors are thrown at once.
async function launchChromium(dir, opts) {
  const path = require('node:path');
  const { chromium } = require('playwright-core');
  for (let attempt = 1; ; attempt++) {
    const profile = attempt === 1 ? dir : path.join(dir, `retry-${attempt}`);
    try {
      return await chromium.launchPersistentContext(profile, { ...opts, timeout: 30000 });
    } catch (err) {
      if (!err || err.name !== 'TimeoutError' || attempt === 3) throw err;
      console.log(`note launch chromium: no answer within 30 s (try ${attempt}); again with a fresh profile`);
    }
  }
}

module.exports = { launchChromium, runCases, CLIENTS, STEP, TOKEN_PARAM, setEngine, now, withTimeout, uniqueUser, request, login, me, Sock };
