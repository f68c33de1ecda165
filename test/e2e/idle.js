#!/usr/bin/env node
// idle.js drives the example's `-idle` row (section "Session life") with
// the real socket.io client of its engine over websocket:
//
//   - left idle (the socket sends only `echo`, which does not count), the
//     session's socket gets `sexpiring` {"in_ms":N} once, between -idle/2
//     and -idle/4 before the expiry, then `sinvalid` and a disconnect
//     within 1 s of it;
//   - an `incr` after `sexpiring` keeps the session alive past that
//     deadline (`whoami` still answers it), until the next period's
//     `sexpiring`, then `sinvalid`.
//
//   node idle.js --url URL --engine googollee|v4 --idle MS
//
// It prints one line per passed case and a line `figures {...}`, and exits
// 0; on the first failure it prints what it saw and exits 1.
'use strict';

const assert = require('node:assert/strict');
const { parseArgs } = require('node:util');
const { CLIENTS, runCases, setEngine, now, uniqueUser, login, Sock } = require('./lib');

const USAGE = 'usage: node idle.js --url URL --engine googollee|v4 --idle MS';
const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    engine: { type: 'string', default: 'v4' },
    idle: { type: 'string' },
  },
});
if (!args.url) usage('--url is required');
if (!(args.engine in CLIENTS)) usage('--engine must be googollee or v4');
const IDLE = Number(args.idle);
if (!(IDLE >= 1000)) usage('--idle must be 1000 ms or more');
const BASE = args.url.replace(/\/+$/, '');
setEngine(args.engine);
const SLACK = 100; // ms, for scheduling and round trips

function usage(msg) {
  console.error(`idle.js: ${msg}\n${USAGE}`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const opened = [];
const figures = {};

async function connect(name) {
  const user = uniqueUser(name);
  const cookie = await login(BASE, user);
  const s = new Sock(name, BASE, { cookie, events: ['sexpiring'] });
  opened.push(s);
  await s.welcome({ user, count: 0 });
  return { s, user, at: now() };
}

// expiring waits for the socket's next sexpiring (the n-th) and checks its
// time left; it returns the expected deadline.
async function expiring(s, n, ms) {
  const e = await waitNth(s, 'sexpiring', n, ms);
  const left = e.data && e.data.in_ms;
  assert.ok(Number.isInteger(left), `${s.name}: sexpiring ${JSON.stringify(e.data)}, want {"in_ms":N}`);
  assert.ok(left >= IDLE / 4 - SLACK / 2 && left <= IDLE / 2, `${s.name}: sexpiring in ${left} ms, want between ${IDLE / 4} and ${IDLE / 2}`);
  return { at: e.at, deadline: e.at + left, left };
}

// waitNth resolves with the n-th event called name (1-based).
async function waitNth(s, name, n, ms) {
  const deadline = now() + ms;
  for (;;) {
    const seen = s.events.filter((e) => e.name === name);
    if (seen.length >= n) return seen[n - 1];
    if (now() > deadline) throw new Error(`${s.name}: no ${name} #${n} within ${ms} ms; saw ${s.seen()}`);
    await sleep(10);
  }
}

// ends checks that the socket gets sinvalid, then a disconnect, by
// deadline + 1 s, and not before the deadline.
async function ends(s, deadline) {
  const inv = await s.waitFor('sinvalid', deadline + 1000 - now() + SLACK);
  assert.deepEqual(inv.data, { reason: 'session ended' }, `${s.name}: sinvalid payload`);
  assert.ok(inv.at >= deadline - SLACK, `${s.name}: sinvalid ${Math.round(deadline - inv.at)} ms before the deadline`);
  const dis = await s.waitFor('disconnect', deadline + 1000 - now() + SLACK);
  assert.ok(dis.at <= deadline + 1000 + SLACK, `${s.name}: disconnected ${Math.round(dis.at - deadline)} ms after the deadline`);
  return dis.at - deadline;
}

const cases = [
  {
    name: 'idle session: sexpiring once, then sinvalid and disconnect (echo does not count)',
    fn: async () => {
      const { s, at } = await connect('idle');
      let echoing = true;
      const echoes = (async () => {
        while (echoing && !s.events.some((e) => e.name === 'sinvalid')) {
          assert.equal(await s.ack('echo'), null); // no argument: acked null
          await sleep(100);
        }
      })();
      const w = await expiring(s, 1, IDLE * 2);
      assert.ok(w.at >= at + IDLE / 2 - SLACK, `${s.name}: sexpiring ${Math.round(w.at - at)} ms after connecting, want ${IDLE / 2} or more`);
      figures.closeAfterDeadlineMs = Math.round(await ends(s, w.deadline));
      echoing = false;
      await echoes;
      assert.equal(s.count('sexpiring'), 1, `${s.name}: sexpiring events: ${s.seen()}`);
    },
  },
  {
    name: 'incr after sexpiring keeps the session alive for another period',
    fn: async () => {
      const { s, user } = await connect('active');
      const w = await expiring(s, 1, IDLE * 2);
      assert.equal(await s.ack('incr'), 1);
      const active = now();
      await sleep(w.deadline + 300 - now());
      assert.deepEqual(await s.ack('whoami'), { user, count: 1 }, `${s.name}: whoami past the first deadline`);
      assert.equal(s.count('sinvalid'), 0, `${s.name}: ${s.seen()}`);
      const w2 = await expiring(s, 2, IDLE * 2);
      assert.ok(w2.at >= active + IDLE / 2 - SLACK, `${s.name}: second sexpiring ${Math.round(w2.at - active)} ms after the incr`);
      await ends(s, w2.deadline);
    },
  },
];

runCases(cases, opened, figures);
