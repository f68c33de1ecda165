#!/usr/bin/env node
// hold.js logs in, opens a socket with the session, sends `incr` N times,
// writes the session's Cookie header to --cookie-file (never to the log),
// prints "ready" and holds the socket open until the server closes
// it; then prints "closed REASON" and exits 0. The Go test uses it to check
// that SIGTERM saves the sessions of connected sockets (perconn mode).
//
//   node hold.js --url http://127.0.0.1:PORT --cookie-file PATH [--engine v4|googollee]
//     [--user NAME] [--incr N] [--transport websocket|polling]
//
// --engine picks the client that speaks the server's protocol:
// socket.io-client 4.x for v4 (the default), 2.x for googollee.
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    engine: { type: 'string', default: 'v4' },
    user: { type: 'string', default: `hold${process.pid}` },
    incr: { type: 'string', default: '3' },
    transport: { type: 'string', default: 'websocket' },
    'cookie-file': { type: 'string' },
  },
});
const fail = (msg) => { console.error(`hold.js: ${msg}`); process.exit(1); };
if (!args.url || !args['cookie-file']) fail('--url and --cookie-file are required');
const clients = { v4: 'socket.io-client', googollee: 'socket.io-client-v2' };
if (!(args.engine in clients)) fail('--engine must be v4 or googollee');
const ioClient = require(clients[args.engine]);
const BASE = args.url.replace(/\/+$/, '');
const N = Number(args.incr);

async function main() {
  const res = await fetch(BASE + '/login', { method: 'POST', body: new URLSearchParams({ user: args.user }), signal: AbortSignal.timeout(3000) });
  if (res.status !== 200) fail(`POST /login → ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const s = ioClient(BASE, {
    autoConnect: false, forceNew: true, reconnection: false, transports: [args.transport],
    extraHeaders: { Cookie: cookie },
  });
  const timer = setTimeout(() => fail('no welcome within 3 s'), 3000);
  s.on('sinvalid', (d) => fail(`sinvalid ${JSON.stringify(d)}`));
  s.on('connect_error', (e) => fail(`connect_error ${e.message}`));
  s.on('disconnect', (reason) => { console.log(`closed ${reason}`); process.exit(0); });
  s.on('welcome', async (w) => {
    clearTimeout(timer);
    for (let i = 1; i <= N; i++) {
      const n = await new Promise((resolve) => s.emit('incr', resolve));
      if (n !== i) fail(`incr #${i} acked ${JSON.stringify(n)}`);
    }
    fs.writeFileSync(args['cookie-file'], cookie, { mode: 0o600 });
    console.log(`ready: user ${args.user}, count ${N}`);
  });
  s.open();
}

main().catch((err) => fail(err.message));
