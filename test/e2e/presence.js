#!/usr/bin/env node
// presence.js drives the example's "Users, presence and push" rows with the
// real socket.io client of its engine over websocket, on one node (--a) or
// on two nodes sharing one Redis (--a and --b):
//
//   - GET /presence lists a user from its first socket on any node, and the
//     sockets with a session receive `presence` {"user","online":true}
//     once; a reload within the grace sends nothing; once the grace passed
//     with no socket, `presence` {"online":false} once, and GET /presence
//     no longer lists the user;
//   - POST /push to=user:NAME reaches every socket of every session of
//     NAME on every node with `note` {"from","text"}, and answers
//     {"sockets":N,"acked":N} once they acked; to=session only the
//     caller's session; nobody: {"sockets":0,"acked":0}; a client that does
//     not ack: {"sockets":1,"acked":0} after 2 s; bad input: 400 / 401;
//   - with --redis URL: PUBLISH on iosessions-example:push reaches the
//     user's sockets on every node; garbage changes nothing;
//   - with --kill-pid PID (node A's process, two nodes): SIGKILL node A; its
//     user goes offline, as node B's sockets hear, within 15 s plus the
//     grace.
//
//   node presence.js --a URL [--b URL] --engine googollee|v4 --grace MS
//     [--redis URL] [--kill-pid PID]
//
// It prints one line per passed case and a line `figures {...}`, and exits
// 0; on the first failure it prints what it saw and exits 1.
'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { parseArgs } = require('node:util');
const { CLIENTS, runCases, setEngine, now, uniqueUser, request, login, Sock } = require('./lib');

const USAGE = 'usage: node presence.js --a URL [--b URL] --engine googollee|v4 --grace MS [--redis URL] [--kill-pid PID]';
const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    engine: { type: 'string', default: 'v4' },
    grace: { type: 'string', default: '1000' },
    redis: { type: 'string' },
    'kill-pid': { type: 'string' },
  },
});
if (!args.a) usage('--a is required');
if (!(args.engine in CLIENTS)) usage('--engine must be googollee or v4');
const GRACE = Number(args.grace);
if (!(GRACE > 0)) usage('--grace must be a positive number of ms');
if (args['kill-pid'] && !args.b) usage('--kill-pid needs --b');

const A = args.a.replace(/\/+$/, '');
const B = (args.b || args.a).replace(/\/+$/, ''); // one node: B is A
setEngine(args.engine);
const NODE_DEATH = 15000; // the library's default NodeTTL, ms
const EVENTS = { events: ['presence', 'note'], acked: ['note'] };

function usage(msg) {
  console.error(`presence.js: ${msg}\n${USAGE}`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// presenceOf returns the presence events an observer got about user.
const presenceOf = (s, user) => s.events.filter((e) => e.name === 'presence' && e.data?.user === user).map((e) => e.data.online);

async function online(base) {
  const r = await request(base, 'GET', '/presence');
  assert.equal(r.status, 200, r.desc);
  assert.ok(Array.isArray(r.json?.online), r.desc);
  assert.deepEqual(r.json.online, [...r.json.online].sort(), `${r.desc}: not sorted`);
  return r.json.online;
}

async function waitUntil(what, cond, ms) {
  const deadline = now() + ms;
  while (now() < deadline) {
    if (await cond()) return now();
    await sleep(20);
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

async function push(base, cookie, form) {
  return request(base, 'POST', '/push', { cookie, form });
}

// ---------------------------------------------------------------- cases

const cases = [];
const test = (name, fn) => cases.push({ name, fn });
const opened = [];
const track = (s) => { opened.push(s); return s; };
const figures = {};

// observer: a socket with a session on B, which hears presence changes.
async function observer() {
  const user = uniqueUser('watch');
  const s = track(new Sock('observer', B, { cookie: await login(B, user), ...EVENTS }));
  await s.welcome({ user, count: 0 });
  return s;
}

test('presence: online from the first socket, a reload within the grace sends nothing, offline once after the grace', async () => {
  const obs = await observer();
  const user = uniqueUser('alice');
  assert.ok(!(await online(A)).includes(user), 'listed before logging in');
  const cookie = await login(A, user);
  const s1 = track(new Sock('alice-A', A, { cookie, ...EVENTS }));
  await s1.welcome({ user, count: 0 });
  await waitUntil('the observer hears alice online', () => presenceOf(obs, user).length === 1, 3000);
  assert.deepEqual(presenceOf(obs, user), [true]);
  assert.ok((await online(B)).includes(user), 'GET /presence on B lists alice');
  const s2 = track(new Sock('alice-B', B, { cookie, ...EVENTS }));
  await s2.welcome({ user, count: 0 });
  // A reload: the page's socket goes, a new one comes within the grace.
  s1.close();
  s2.close();
  await sleep(GRACE / 4);
  const s3 = track(new Sock('alice-reload', A, { cookie, ...EVENTS }));
  await s3.welcome({ user, count: 0 });
  await sleep(GRACE + 500);
  assert.deepEqual(presenceOf(obs, user), [true], `a reload within the grace: ${obs.seen()}`);
  s3.close();
  const left = now();
  await waitUntil('the observer hears alice offline', () => presenceOf(obs, user).length === 2, GRACE + 3000);
  figures.offlineAfterMs = Math.round(now() - left);
  assert.ok(now() - left >= GRACE - 50, `offline ${Math.round(now() - left)} ms after the last socket left; grace ${GRACE}`);
  assert.deepEqual(presenceOf(obs, user), [true, false]);
  assert.ok(!(await online(A)).includes(user), 'GET /presence still lists alice');
  await sleep(500);
  assert.deepEqual(presenceOf(obs, user), [true, false], 'a second offline');
});

test('POST /push: to a user on every node, to the own session, to nobody, with acks', async () => {
  const bob = uniqueUser('bob');
  const bobCookie = await login(A, bob);
  const alice = uniqueUser('alice');
  const a1 = await login(A, alice);
  const a2 = await login(B, alice);
  const socks = [
    track(new Sock('alice1-A', A, { cookie: a1, ...EVENTS })),
    track(new Sock('alice1-B', B, { cookie: a1, ...EVENTS })),
    track(new Sock('alice2-B', B, { cookie: a2, ...EVENTS })),
  ];
  for (const s of socks) await s.welcome({ user: alice, count: 0 });

  const t0 = now();
  let r = await push(A, bobCookie, { to: `user:${alice}`, text: 'héllo 👋' });
  figures.pushToUserMs = Math.round(now() - t0);
  assert.equal(r.status, 200, r.desc);
  assert.deepEqual(r.json, { sockets: 3, acked: 3 }, r.desc);
  for (const s of socks) {
    const e = await s.waitFor('note');
    assert.deepEqual(e.data, { from: bob, text: 'héllo 👋' }, `${s.name}: note`);
  }

  r = await push(B, a1, { to: 'session', text: 'mine' });
  assert.deepEqual(r.json, { sockets: 2, acked: 2 }, r.desc);
  await sleep(200);
  assert.deepEqual(socks.map((s) => s.count('note')), [2, 2, 1], 'notes per socket after to=session');

  r = await push(A, bobCookie, { to: `user:${uniqueUser('nobody')}`, text: 'anyone?' });
  assert.equal(r.status, 200, r.desc);
  assert.deepEqual(r.json, { sockets: 0, acked: 0 }, r.desc);

  // A client that never acks: reached, not acked, answered after 2 s.
  const dave = uniqueUser('dave');
  const silent = track(new Sock('silent', B, { cookie: await login(B, dave), ...EVENTS, noAck: true }));
  await silent.welcome({ user: dave, count: 0 });
  const t1 = now();
  r = await push(A, bobCookie, { to: `user:${dave}`, text: 'ack me' });
  assert.deepEqual(r.json, { sockets: 1, acked: 0 }, r.desc);
  assert.ok(now() - t1 >= 1900, `answered ${Math.round(now() - t1)} ms after; want about 2 s`);
  await silent.waitFor('note');
});

test('POST /push: bad input is refused', async () => {
  const cookie = await login(A, uniqueUser('eve'));
  const bad = [
    [{ to: 'everyone', text: 'x' }, 400],
    [{ to: 'user:', text: 'x' }, 400],
    [{ to: 'user:no spaces', text: 'x' }, 400],
    [{ to: 'session', text: '' }, 400],
    [{ to: 'session', text: 'x'.repeat(1001) }, 400],
  ];
  for (const [form, status] of bad) {
    const r = await push(A, cookie, form);
    assert.equal(r.status, status, `${JSON.stringify(form).slice(0, 80)}: ${r.desc}`);
    assert.equal(typeof r.json?.error, 'string', r.desc);
  }
  // 1000 code points (2000 UTF-16 units) is within the limit.
  const r = await push(A, cookie, { to: 'session', text: '😀'.repeat(1000) });
  assert.equal(r.status, 200, r.desc);
  const anon = await push(A, undefined, { to: 'session', text: 'x' });
  assert.equal(anon.status, 401, anon.desc);
});

if (args.redis) {
  test('PUBLISH iosessions-example:push reaches the user on every node; garbage changes nothing', async () => {
    const user = uniqueUser('pub');
    const cookie = await login(A, user);
    const socks = [track(new Sock('pub-A', A, { cookie, events: ['shout'] })), track(new Sock('pub-B', B, { cookie, events: ['shout'] }))];
    for (const s of socks) await s.welcome({ user, count: 0 });
    const publish = (msg) => execFileSync('redis-cli', ['-u', args.redis, 'PUBLISH', 'iosessions-example:push', msg]);
    for (const garbage of ['not json', '{"user":"' + user + '"}', '{"event":"shout"}', '[1,2]', '{"user":"' + user + '","event":"disconnect"}']) {
      publish(garbage);
    }
    publish(JSON.stringify({ user, event: 'shout', data: { text: 'from redis-cli' } }));
    for (const s of socks) {
      const e = await s.waitFor('shout');
      assert.deepEqual(e.data, { text: 'from redis-cli' }, `${s.name}: shout`);
      assert.equal(s.count('disconnect'), 0, `${s.name}: ${s.seen()}`);
    }
    assert.deepEqual(await socks[0].ack('whoami'), { user, count: 0 }, 'the socket still works');
  });
}

if (args['kill-pid']) {
  test(`SIGKILL node A: its user goes offline on node B within ${NODE_DEATH / 1000} s plus the grace`, async () => {
    const obs = await observer();
    const user = uniqueUser('doomed');
    const s = track(new Sock('doomed-A', A, { cookie: await login(A, user), ...EVENTS }));
    await s.welcome({ user, count: 0 });
    await waitUntil('the observer hears the user online', () => presenceOf(obs, user).length === 1, 3000);
    process.kill(Number(args['kill-pid']), 'SIGKILL');
    const killed = now();
    await waitUntil('the observer hears the user offline', () => presenceOf(obs, user).length === 2, NODE_DEATH + GRACE + 3000);
    figures.offlineAfterKillMs = Math.round(now() - killed);
    assert.ok(now() - killed <= NODE_DEATH + GRACE + 300, `offline ${figures.offlineAfterKillMs} ms after SIGKILL`);
    assert.deepEqual(presenceOf(obs, user), [true, false]);
    assert.ok(!(await online(B)).includes(user), 'GET /presence on B still lists the user');
  });
}

// ---------------------------------------------------------------- runner

runCases(cases, opened, figures);
