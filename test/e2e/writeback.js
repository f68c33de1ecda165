#!/usr/bin/env node
// writeback.js proves the cookie write-back in headless Chromium (through
// playwright-core), against the example started with -store cookie: log in,
// incr three times, then a GET /me from the page answers count 3 within 1 s
// of the last ack, and a reload shows 3. It also checks that each write-back
// went to the shim's endpoint (POST, answered 204 without caching), that the
// session cookie is HttpOnly (the page's script cannot read it), and that no
// URL the page requested carries the cookie's value.
//
//   node writeback.js --url http://127.0.0.1:PORT [--engine v4|googollee] [--mode perconn|permessage]
//
// Env CHROMIUM overrides the browser binary (default /usr/bin/chromium). On
// failure it saves a screenshot and the page's log to a temp dir.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const lib = require('./lib');

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    engine: { type: 'string', default: 'v4' },
    mode: { type: 'string', default: 'perconn' },
  },
});
if (!args.url || !['v4', 'googollee'].includes(args.engine)) {
  console.error('usage: node writeback.js --url http://127.0.0.1:PORT [--engine v4|googollee] [--mode perconn|permessage]');
  process.exit(2);
}
const BASE = args.url.replace(/\/+$/, '');
const STEP = 5000; // per-step timeout, ms
const WRITEBACK = BASE + '/socket.io/socket.io-sessions/writeback';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iosessions-chromium-'));
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  let context, page;
  const logs = [];
  const urls = [];
  const writebacks = []; // {status, cacheControl} of each write-back POST
  let step = 'launch chromium';
  let passed = 0;
  const ok = (msg) => { passed++; console.log(`ok   ${msg}`); };
  try {
    context = await lib.launchChromium(userDataDir, {
      executablePath, headless: true, args: CHROMIUM_ARGS,
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP);
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    page.on('request', (r) => urls.push(r.url()));
    page.on('response', (r) => {
      if (r.url() === WRITEBACK) {
        writebacks.push({ method: r.request().method(), status: r.status(), cacheControl: r.headers()['cache-control'] });
      }
      if (r.status() >= 400) logs.push(`response: ${r.status()} ${r.request().method()} ${r.url()}`);
    });

    const expectText = async (sel, want) => {
      step = `expect ${sel} = ${JSON.stringify(want)}`;
      try {
        await page.waitForFunction(
          ([s, w]) => { const el = document.querySelector(s); return el && el.textContent.trim() === w; },
          [sel, want], { timeout: STEP });
      } catch (err) {
        const got = await page.$eval(sel, (el) => el.textContent.trim()).catch(() => '(missing)');
        throw new Error(`still ${JSON.stringify(got)} after ${STEP} ms`);
      }
    };

    step = 'open / and log in as carol';
    const res = await page.goto(BASE + '/', { waitUntil: 'load' });
    if (!res || res.status() !== 200) throw new Error(`GET / answered ${res && res.status()}`);
    await expectText('#status', 'sinvalid');
    await page.fill('#login-user', 'carol');
    await Promise.all([
      page.waitForResponse((r) => r.url() === BASE + '/login' && r.request().method() === 'POST'),
      page.click('#login [type=submit]'),
    ]);
    await expectText('#status', 'connected');
    await expectText('#user', 'carol');
    await expectText('#count', '0');
    ok('log in as carol: connected, count 0');

    step = 'the session cookie is HttpOnly';
    const cookies = await context.cookies(BASE);
    const session = cookies.find((c) => c.name === 'session');
    if (!session) throw new Error('no session cookie after login');
    if (!session.httpOnly) throw new Error('the session cookie is not HttpOnly');
    if ((await page.evaluate(() => document.cookie)).includes('session=')) throw new Error('the page reads the session cookie');
    ok('the session cookie is HttpOnly');

    step = 'incr three times';
    let lastAck = 0;
    for (let want = 1; want <= 3; want++) {
      await page.click('#incr');
      await expectText('#count', String(want));
      lastAck = Date.now();
    }
    ok('incr three times: the acks count to 3');

    step = 'GET /me answers 3 within 1 s of the last ack';
    {
      let me;
      for (;;) {
        me = await page.evaluate(async () => {
          const r = await fetch('/me', { credentials: 'same-origin', cache: 'no-store' });
          return { status: r.status, body: await r.json() };
        });
        if (me.status === 200 && me.body.count === 3) break;
        if (Date.now() - lastAck > 1000) throw new Error(`GET /me: ${me.status} ${JSON.stringify(me.body)} 1 s after the ack`);
        await page.waitForTimeout(25);
      }
      ok(`GET /me from the page: ${JSON.stringify(me.body)}, ${Date.now() - lastAck} ms after the ack`);
    }

    step = 'the write-backs went to the shim endpoint';
    {
      const applied = writebacks.filter((w) => w.method === 'POST' && w.status === 204);
      if (applied.length < 1) throw new Error(`write-back answers ${JSON.stringify(writebacks)}`);
      const bad = writebacks.find((w) => w.cacheControl !== 'no-store');
      if (bad) throw new Error(`a write-back answer is cacheable: ${JSON.stringify(bad)}`);
      ok(`${applied.length} write-back POSTs answered 204, no-store`);
    }

    step = 'reload';
    await page.reload({ waitUntil: 'load' });
    await expectText('#status', 'connected');
    await expectText('#user', 'carol');
    await expectText('#count', '3');
    ok('reload: carol with count 3');

    step = 'one more incr after the reload';
    await page.click('#incr');
    await expectText('#count', '4');
    step = 'GET /me answers 4';
    await page.waitForFunction(async () => {
      const r = await fetch('/me', { cache: 'no-store' });
      return r.ok && (await r.json()).count === 4;
    }, null, { timeout: 1000, polling: 25 });
    ok('incr after the reload: GET /me answers 4');

    step = 'no URL carries the cookie';
    {
      const value = (await context.cookies(BASE)).find((c) => c.name === 'session').value;
      const leak = urls.find((u) => u.includes(value) || u.includes(encodeURIComponent(value)));
      if (leak) throw new Error(`a request URL carries the session cookie: ${leak.slice(0, 80)}…`);
      ok(`none of ${urls.length} request URLs carries the session cookie`);
    }

    console.log(`writeback: ${passed} passed, 0 failed`);
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  } catch (err) {
    console.log(`FAIL ${step}: ${err.message.split('\n')[0]}`);
    if (page) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iosessions-writeback-fail-'));
      const shot = path.join(dir, 'screenshot.png');
      await page.screenshot({ path: shot, fullPage: true }).then(
        () => console.log(`screenshot: ${shot}`),
        (e) => console.log(`screenshot failed: ${e.message}`));
      if (logs.length) console.log('page log:\n  ' + logs.join('\n  '));
    }
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
    process.exit(1);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
