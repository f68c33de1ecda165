#!/usr/bin/env node
// browser.js drives the example page in headless Chromium (the system one,
// through playwright-core): no session → sinvalid; log in as alice; incr
// twice; a second window (its own browser profile) logs in as bob, which
// alice's page lists online, and pushes a note that alice's page shows
// (acked); reload keeps alice and the count; log out → sinvalid. It also
// checks that the page speaks the engine's protocol (EIO=4 for v4, EIO=3 for
// googollee) and where its shim token travels (the CONNECT packet's auth
// payload for v4, the handshake query for googollee).
//
//   node browser.js --url http://127.0.0.1:PORT [--engine v4|googollee] [--mode perconn|permessage]
//
// Env CHROMIUM overrides the browser binary (default /usr/bin/chromium). On
// failure it saves a screenshot and the page's console to a temp dir.
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
  console.error('browser.js: --url is required, --engine is v4 or googollee\nusage: node browser.js --url http://127.0.0.1:PORT [--engine v4|googollee] [--mode perconn|permessage]');
  process.exit(2);
}
// The engine.io protocol of the socket.io client the page must load.
const EIO = args.engine === 'v4' ? '4' : '3';
const BASE = args.url.replace(/\/+$/, '');
const STEP = 5000; // per-step timeout, ms

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iosessions-chromium-'));
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  let browser, context, page;
  const logs = [];
  let step = 'launch chromium';
  try {
    // A persistent context is how playwright takes a --user-data-dir.
    context = await lib.launchChromium(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    browser = context;
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP);
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => logs.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) logs.push(`response: ${r.status()} ${r.request().method()} ${r.url()}`); });
    // The page's websockets, in order, with the text frames each sent. The
    // page log, shown on failure, gets every frame.
    const sockets = [];
    page.on('websocket', (ws) => {
      const w = { n: sockets.length + 1, url: ws.url(), sent: [] };
      sockets.push(w);
      const clipped = (p) => { p = String(p); return p.length > 120 ? p.slice(0, 120) + '…' : p; };
      logs.push(`ws#${w.n} open ${w.url.replace(/iosessions_token=[^&]+/, 'iosessions_token=…')}`);
      ws.on('framesent', (f) => {
        const p = String(f.payload);
        w.sent.push(p);
        logs.push(`ws#${w.n} sent ${clipped(p)}`);
      });
      ws.on('framereceived', (f) => {
        const p = String(f.payload);
        logs.push(`ws#${w.n} recv ${clipped(p)}`);
      });
      ws.on('close', () => logs.push(`ws#${w.n} closed`));
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
    // expectStatus waits for #status to read want.
    const expectStatus = async (want) => {
      step = `expect #status = ${JSON.stringify(want)}`;
      const deadline = Date.now() + STEP;
      for (;;) {
        const got = await page.$eval('#status', (el) => el.textContent.trim()).catch(() => '(missing)');
        if (got === want) return;
        if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(got)} after ${STEP} ms`);
        await page.waitForTimeout(50);
      }
    };
    const ok = (msg) => console.log(`ok   ${msg}`);

    step = 'open /';
    const res = await page.goto(BASE + '/', { waitUntil: 'load' });
    if (!res || res.status() !== 200) throw new Error(`GET / answered ${res && res.status()}`);
    await expectStatus('sinvalid');
    ok('fresh page without a session shows sinvalid');

    step = 'log in as alice';
    await page.fill('#login-user', 'alice');
    await Promise.all([
      page.waitForResponse((r) => r.url() === BASE + '/login' && r.request().method() === 'POST'),
      page.click('#login [type=submit]'),
    ]);
    await expectStatus('connected');
    await expectText('#user', 'alice');
    await expectText('#count', '0');
    ok('log in as alice: connected, user alice, count 0');

    step = 'the page\'s socket after login';
    {
      const w = sockets[sockets.length - 1];
      if (!w) throw new Error('the page opened no websocket');
      const q = new URL(w.url).searchParams;
      if (q.get('EIO') !== EIO) throw new Error(`websocket ${w.url}: EIO=${q.get('EIO')}, want EIO=${EIO} (-engine ${args.engine})`);
      // The shim reloaded after login inlines a token for alice's session.
      const connect = w.sent.find((p) => p.startsWith('40')); // engine message + socket.io CONNECT
      let where;
      if (args.engine === 'v4') {
        if (q.has('iosessions_token')) throw new Error(`socket.io-client 4.x: the shim token is in the handshake query, want it in the auth payload only: ${w.url}`);
        if (!connect || !/"iosessions_token":"[^"]+"/.test(connect)) throw new Error(`socket.io-client 4.x: no shim token in the CONNECT packet's auth payload; sent ${JSON.stringify(connect ?? '(no CONNECT)')}`);
        where = 'the CONNECT auth payload';
      } else {
        if (!q.get('iosessions_token')) throw new Error(`socket.io-client 2.x: no shim token in the handshake query: ${w.url}`);
        where = 'the handshake query';
      }
      ok(`the page speaks EIO=${EIO} over websocket; the shim token is in ${where}`);
    }

    step = 'incr twice';
    await page.click('#incr');
    await expectText('#count', '1');
    await page.click('#incr');
    await expectText('#count', '2');
    ok('incr twice: count 2');

    step = 'a second window, bob, pushes a note to alice';
    {
      const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'iosessions-chromium-'));
      const context2 = await lib.launchChromium(dir2, { executablePath, headless: true, args: CHROMIUM_ARGS });
      try {
        const page2 = context2.pages()[0] || (await context2.newPage());
        page2.setDefaultTimeout(STEP);
        page2.on('pageerror', (e) => logs.push(`bob pageerror: ${e.message}`));
        await page2.goto(BASE + '/', { waitUntil: 'load' });
        await page2.fill('#login-user', 'bob');
        await page2.click('#login [type=submit]');
        await page2.waitForFunction(() => document.querySelector('#status').textContent.trim() === 'connected');
        step = 'alice\'s page lists bob online';
        await page.waitForFunction(() => [...document.querySelectorAll('#online li')].some((li) => li.textContent.trim() === 'bob'), null, { timeout: STEP });
        step = 'bob pushes a note to alice';
        await page2.fill('#push-to', 'alice');
        await page2.fill('#push-text', 'hello from bob');
        await page2.click('#push [type=submit]');
        step = 'alice\'s page shows the note';
        await page.waitForFunction(() => [...document.querySelectorAll('#notes li')].some((li) => li.textContent.trim() === 'bob: hello from bob'), null, { timeout: STEP });
        step = 'bob\'s page shows the note reached and acked';
        await page2.waitForFunction(() => document.querySelector('#push-result').textContent.trim() === 'reached 1, acked 1');
      } finally {
        await context2.close().catch(() => {});
        fs.rmSync(dir2, { recursive: true, force: true });
      }
    }
    ok('a second window: alice\'s page lists bob online and shows the note bob pushed, acked');

    step = 'reload';
    if (args.mode === 'perconn') {
      // perconn saves the count when the old socket disconnects: reload until
      // the new page's welcome shows it (bounded).
      const deadline = Date.now() + 3 * STEP;
      for (;;) {
        await page.reload({ waitUntil: 'load' });
        await expectStatus('connected');
        const count = await page.textContent('#count');
        if (count.trim() === '2' || Date.now() > deadline) break;
        await page.waitForTimeout(200);
      }
    } else {
      await page.reload({ waitUntil: 'load' });
    }
    await expectStatus('connected');
    await expectText('#user', 'alice');
    await expectText('#count', '2');
    ok(`reload (${args.mode}): still alice with count 2`);

    step = 'log out';
    await Promise.all([
      page.waitForResponse((r) => r.url() === BASE + '/logout'),
      page.click('#logout'),
    ]);
    await expectStatus('sinvalid');
    await page.waitForTimeout(500); // the disconnect that follows keeps sinvalid
    await expectStatus('sinvalid');
    ok('log out: sinvalid');

    step = 'reload after logout';
    await page.reload({ waitUntil: 'load' });
    await expectStatus('sinvalid');
    ok('reload after logout: sinvalid');

    console.log('browser: 8 passed, 0 failed');
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  } catch (err) {
    console.log(`FAIL ${step}: ${err.message.split('\n')[0]}`);
    if (page) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iosessions-browser-fail-'));
      const shot = path.join(dir, 'screenshot.png');
      await page.screenshot({ path: shot, fullPage: true }).then(
        () => console.log(`screenshot: ${shot}`),
        (e) => console.log(`screenshot failed: ${e.message}`));
      if (logs.length) console.log('page log:\n  ' + logs.join('\n  '));
    }
    if (browser) await browser.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
    process.exit(1);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
