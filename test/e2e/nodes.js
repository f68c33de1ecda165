#!/usr/bin/env node
// nodes.js drives two example processes that share one Redis (-store redis,
// the same -redis URL, different ports) as two nodes of one app, with the
// real socket.io client of their engine over websocket, and plain HTTP:
//
//   - a session made on node A (POST /login) is the session of a socket on
//     node B (welcome with the user), by cookie and by a shim token that
//     node A issued (the nodes share their token keys through Redis),
//     which node A then refuses (a token is good for one handshake on
//     any node);
//   - POST /logout on node A makes every socket of that session on node B
//     (and on A) receive sinvalid and disconnect within 1 s, measured from
//     when the request was sent; a socket of another session stays;
//   - perconn: what a socket on B counted is in the session once it
//     disconnects, as node A serves it;
//   - permessage: a socket on A and one on B of one session each send 200
//     incr at once; every count from 1 to 400 is acked once and GET /me
//     on either node says 400.
//
//   node nodes.js --a http://127.0.0.1:PORT --b http://127.0.0.1:PORT \
//     --engine googollee|v4 --mode perconn|permessage
//
// It prints one line per passed case, then a line `figures {...}` (JSON:
// the logout delivery latencies in ms, the burst's duration), and exits 0;
// on the first failure it prints what it saw and exits 1.
'use strict';

const assert = require('node:assert/strict');
const { parseArgs } = require('node:util');
const { CLIENTS, runCases, setEngine, now, uniqueUser, request, login, me, Sock } = require('./lib');

const USAGE = 'usage: node nodes.js --a URL --b URL --engine googollee|v4 --mode perconn|permessage';
const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    engine: { type: 'string', default: 'v4' },
    mode: { type: 'string', default: 'perconn' },
  },
});
if (!args.a || !args.b) usage('--a and --b are required');
if (!(args.engine in CLIENTS)) usage('--engine must be googollee or v4');
if (!['perconn', 'permessage'].includes(args.mode)) usage('--mode must be perconn or permessage');

const A = args.a.replace(/\/+$/, '');
const B = args.b.replace(/\/+$/, '');
setEngine(args.engine);
const MODE = args.mode;
const LOGOUT_LIMIT = 1000; // ms from POST /logout to sinvalid and disconnect

function usage(msg) {
  console.error(`nodes.js: ${msg}\n${USAGE}`);
  process.exit(2);
}

// ---------------------------------------------------------------- cases

const cases = [];
const test = (name, fn) => cases.push({ name, fn });
const opened = [];
const track = (s) => { opened.push(s); return s; };
const figures = { logoutSinvalidMs: [], logoutDisconnectMs: [] };

test('a session made on node A is the session of sockets on node B, by cookie and by A\'s shim token, which A then refuses', async () => {
  const user = uniqueUser('across');
  const cookie = await login(A, user);
  const byCookie = track(new Sock('B-cookie', B, { cookie }));
  await byCookie.welcome({ user, count: 0 });
  // The token as the shim would inline it, fetched from node A.
  const r = await request(A, 'GET', '/socket.io/socket.io-sessions.js', { cookie, headers: { Accept: 'application/json' } });
  assert.equal(r.status, 200, r.desc);
  assert.equal(typeof r.json?.token, 'string', `${r.desc}: no token`);
  const byToken = track(new Sock('B-token', B, { token: r.json.token }));
  await byToken.welcome({ user, count: 0 });
  assert.deepEqual(await byToken.ack('whoami'), { user, count: 0 }, 'whoami on B over the token');
  // Tokens are single-use on every node (the store's ledger in Redis):
  // the one B took is refused on A.
  const replay = track(new Sock('A-replay', A, { token: r.json.token }));
  const e = await replay.waitFor('sinvalid');
  assert.ok(!replay.events.some((x) => x.name === 'welcome'), `the token used on B was accepted again on A: ${replay.seen()}`);
  assert.equal(typeof e.data?.reason, 'string', `A-replay: sinvalid payload ${JSON.stringify(e.data)}`);
});

test(`POST /logout on node A: every socket of the session on B and A gets sinvalid and disconnects within ${LOGOUT_LIMIT} ms`, async () => {
  for (let round = 1; round <= 3; round++) {
    const user = uniqueUser('logout');
    const other = uniqueUser('other');
    const cookie = await login(A, user);
    const otherCookie = await login(A, other);
    const onB = [track(new Sock(`B1.${round}`, B, { cookie })), track(new Sock(`B2.${round}`, B, { cookie }))];
    const onA = track(new Sock(`A1.${round}`, A, { cookie }));
    const bystander = track(new Sock(`B-other.${round}`, B, { cookie: otherCookie }));
    for (const s of [...onB, onA]) await s.welcome({ user, count: 0 });
    await bystander.welcome({ user: other, count: 0 });

    const sent = now();
    const r = await request(A, 'POST', '/logout', { cookie });
    assert.equal(r.status, 204, r.desc);
    for (const s of [...onB, onA]) {
      const inv = await s.waitFor('sinvalid', 2 * LOGOUT_LIMIT);
      const disc = await s.waitFor('disconnect', 2 * LOGOUT_LIMIT);
      const invMs = inv.at - sent;
      const discMs = disc.at - sent;
      if (s.base === B) {
        figures.logoutSinvalidMs.push(Math.round(invMs));
        figures.logoutDisconnectMs.push(Math.round(discMs));
      }
      assert.ok(invMs < LOGOUT_LIMIT, `${s.name}: sinvalid ${invMs.toFixed(0)} ms after POST /logout on A; want < ${LOGOUT_LIMIT}`);
      assert.ok(discMs < LOGOUT_LIMIT, `${s.name}: disconnect ${discMs.toFixed(0)} ms after POST /logout on A; want < ${LOGOUT_LIMIT}`);
      assert.equal(s.events.filter((e) => e.name === 'sinvalid').length, 1, `${s.name}: sinvalid count; saw ${s.seen()}`);
      assert.equal(typeof inv.data?.reason, 'string', `${s.name}: sinvalid payload ${JSON.stringify(inv.data)}`);
    }
    assert.ok(!bystander.events.some((e) => e.name === 'sinvalid' || e.name === 'disconnect'), `the other session's socket on B: ${bystander.seen()}`);
    assert.deepEqual(await bystander.ack('whoami'), { user: other, count: 0 }, 'the other session on B after the logout');
    const m = await request(B, 'GET', '/me', { cookie });
    assert.equal(m.status, 401, `after the logout on A, node B: ${m.desc}`);
    bystander.close();
  }
});

if (MODE === 'perconn') {
  test('perconn: what a socket on B counted is the session on A once it disconnects', async () => {
    const user = uniqueUser('count');
    const cookie = await login(A, user);
    const s = track(new Sock('B-counter', B, { cookie }));
    await s.welcome({ user, count: 0 });
    for (let i = 1; i <= 3; i++) assert.equal(await s.ack('incr'), i, `incr ${i} on B`);
    s.close();
    const deadline = now() + 2000;
    let got;
    while (now() < deadline) {
      got = await me(A, cookie);
      if (got.count === 3) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`GET /me on A 2 s after the socket on B disconnected: ${JSON.stringify(got)}; want count 3`);
  });
}

if (MODE === 'permessage') {
  test('permessage: 200 incr from a socket on A and 200 from one on B at once count to exactly 400', async () => {
    const user = uniqueUser('burst');
    const cookie = await login(A, user);
    const a = track(new Sock('A-burst', A, { cookie }));
    const b = track(new Sock('B-burst', B, { cookie }));
    await a.welcome({ user, count: 0 });
    await b.welcome({ user, count: 0 });
    const N = 200;
    const fire = (s) => {
      const acks = [];
      for (let i = 0; i < N; i++) acks.push(s.ack('incr', 20000));
      return Promise.all(acks);
    };
    const start = now();
    const [fromA, fromB] = await Promise.all([fire(a), fire(b)]);
    figures.burstMs = Math.round(now() - start);
    const all = [...fromA, ...fromB];
    const bad = all.filter((v) => !Number.isInteger(v));
    assert.deepEqual(bad, [], `acks that are not counts (${bad.length})`);
    const sorted = [...all].sort((x, y) => x - y);
    const want = Array.from({ length: 2 * N }, (_, i) => i + 1);
    assert.deepEqual(sorted, want, 'the acked counts should be 1 to 400, each once');
    for (const s of [fromA, fromB]) {
      for (let i = 1; i < s.length; i++) assert.ok(s[i] > s[i - 1], 'one socket\'s acks should increase');
    }
    assert.deepEqual(await me(A, cookie), { user, count: 2 * N }, 'GET /me on A');
    assert.deepEqual(await me(B, cookie), { user, count: 2 * N }, 'GET /me on B');
  });
}

// ---------------------------------------------------------------- runner

runCases(cases, opened, figures);
