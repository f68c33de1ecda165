#!/usr/bin/env node
// adminui.js drives the official socket.io Admin UI page (npm
// @socket.io/admin-ui, its ui/dist, which the example serves at /admin-ui/
// with -engine v4 -admin-token TOKEN) in headless Chromium: two users are
// connected with socket.io-client 4 in Node (one by cookie, one by shim
// token); the page's connection form is filled (server URL = the example,
// user admin, password TOKEN; the UI's defaults: path /socket.io,
// namespace /admin; "websocket only" preset in its localStorage so every
// admin frame is a websocket frame); the socket list must show both
// sockets, the socket's page its user in data, and a disconnect from the
// page must end the socket. Neither the page's visible text nor any frame
// of its websockets may contain a session cookie value or a shim token.
//
//   node adminui.js --url http://127.0.0.1:PORT --token TOKEN
//
// Env CHROMIUM overrides the browser binary (default /usr/bin/chromium).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const lib = require('./lib');

const { values: args } = parseArgs({ options: { url: { type: 'string' }, token: { type: 'string' } } });
if (!args.url || !args.token) {
  console.error('usage: node adminui.js --url http://127.0.0.1:PORT --token TOKEN');
  process.exit(2);
}
const BASE = args.url.replace(/\/+$/, '');
const STEP = 10000;
lib.setEngine('v4');

// shimToken returns the shim token of the session of cookie.
async function shimToken(cookie) {
  const r = await lib.request(BASE, 'GET', '/socket.io/socket.io-sessions.js', { cookie, headers: { Accept: 'application/json' } });
  assert.equal(r.status, 200, r.desc);
  const tok = r.json && (r.json.token || r.json.Token);
  assert.ok(tok, `${r.desc}: no token`);
  return tok;
}

async function main() {
  const ok = (msg) => console.log(`ok   ${msg}`);
  const aliceName = lib.uniqueUser('alice');
  const bobName = lib.uniqueUser('bob');
  const aliceCookie = await lib.login(BASE, aliceName);
  const bobCookie = await lib.login(BASE, bobName);
  const bobToken = await shimToken(bobCookie);
  // Every secret of the scenario: cookie values and tokens.
  const secrets = [aliceCookie.split('=').slice(1).join('='), bobCookie.split('=').slice(1).join('='), bobToken, await shimToken(aliceCookie)];
  const alice = new lib.Sock('alice', BASE, { cookie: aliceCookie });
  const bob = new lib.Sock('bob', BASE, { token: bobToken });
  await alice.welcome({ user: aliceName, count: 0 });
  await bob.welcome({ user: bobName, count: 0 });
  ok('two users connected (cookie, shim token)');

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iosessions-chromium-'));
  const logs = [];
  const frames = [];
  let context, page;
  let step = 'launch chromium';
  try {
    context = await lib.launchChromium(userDataDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-sync'],
      viewport: { width: 1400, height: 900 },
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP);
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    // The page's fonts and icons come from CDNs: cosmetic, and offline here.
    await page.route((u) => u.origin !== new URL(BASE).origin, (r) => r.abort());
    page.on('websocket', (ws) => {
      logs.push(`ws open ${ws.url()}`);
      ws.on('framesent', (f) => frames.push(String(f.payload)));
      ws.on('framereceived', (f) => frames.push(String(f.payload)));
    });
    // The UI keeps its settings in localStorage: "websocket only" on.
    await page.addInitScript(() => { if (!localStorage.getItem('ws_only')) localStorage.setItem('ws_only', 'true'); });

    step = 'open /admin-ui/';
    const res = await page.goto(BASE + '/admin-ui/', { waitUntil: 'load' });
    assert.equal(res && res.status(), 200, 'GET /admin-ui/');

    const dialog = page.locator('.v-dialog--active');
    const fill = async (password) => {
      const inputs = dialog.locator('input[type=text], input[type=password], input:not([type])');
      await inputs.nth(0).fill(BASE);
      await inputs.nth(1).fill('admin');
      await dialog.locator('input[type=password]').fill(password);
      await dialog.locator('button[type=submit]').click();
    };
    step = 'log in with a wrong password';
    await fill(args.token + 'x');
    await dialog.locator('.red--text').waitFor();
    ok(`wrong password refused: ${(await dialog.locator('.red--text').innerText()).trim()}`);

    step = 'log in as admin';
    await fill(args.token);
    await dialog.waitFor({ state: 'detached' }).catch(() => dialog.waitFor({ state: 'hidden' }));
    ok('logged in');

    step = 'socket list';
    await page.evaluate(() => { location.hash = '#/sockets/'; });
    const body = page.locator('body');
    for (const s of [alice, bob]) {
      await page.getByText(s.socket.id, { exact: true }).first().waitFor();
    }
    ok('the socket list shows both sockets');

    for (const [s, name] of [[alice, aliceName], [bob, bobName]]) {
      step = `socket page of ${s.name}`;
      await page.evaluate(() => { location.hash = '#/sockets/'; });
      await page.getByText(s.socket.id, { exact: true }).first().click(); // its row
      await page.getByText(`"user": "${name}"`).waitFor();
      const text = await body.innerText();
      for (const x of secrets) assert.ok(!text.includes(x), `${s.name}'s socket page shows a secret`);
      assert.ok(!/cookie/i.test(text), `${s.name}'s socket page shows a cookie header`);
      ok(`${s.name}'s socket page shows user ${name} in data, no cookie, no token`);
    }

    step = 'events';
    assert.equal(typeof (await alice.ack('whoami')), 'object');
    await page.evaluate(() => { location.hash = '#/events/'; });
    await page.getByText('whoami', { exact: true }).first().waitFor();
    ok('the events page lists alice\'s whoami');

    step = 'disconnect bob from the page';
    await page.evaluate(() => { location.hash = '#/sockets/'; });
    await page.getByText(bob.socket.id, { exact: true }).first().click();
    await page.getByText(`"user": "${bobName}"`).waitFor();
    // On bob's page: the socket's disconnect button (the last of the two).
    await page.locator('button:has(.mdi-logout)').last().click();
    const d = await bob.waitFor('disconnect', STEP);
    assert.equal(d.data, 'io server disconnect', 'bob\'s disconnect reason');
    ok('disconnect from the page ends bob\'s socket');

    step = 'servers';
    const stats = frames.filter((f) => f.startsWith('42/admin,["server_stats"'));
    assert.ok(stats.length > 0, 'no server_stats frame');
    const ids = new Set(stats.map((f) => JSON.parse(f.slice('42/admin,'.length))[1].serverId));
    assert.equal(ids.size, 1, `server ids ${[...ids]}`);
    ok('one server listed');

    step = 'scan';
    const admin = frames.filter((f) => f.startsWith('4') && f.includes('/admin'));
    assert.ok(admin.length > 3, `only ${admin.length} admin frames`);
    for (const f of frames) for (const x of secrets) assert.ok(!f.includes(x), `a frame holds a secret: ${f.slice(0, 80)}`);
    ok(`${frames.length} websocket frames (${admin.length} of /admin) hold no cookie value or token`);
    alice.close();
    bob.close();
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  } catch (err) {
    console.log(`FAIL ${step}: ${err.message}`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iosessions-adminui-'));
    if (page) {
      const shot = path.join(dir, 'screenshot.png');
      await page.screenshot({ path: shot, fullPage: true }).then(() => console.log(`screenshot: ${shot}`), () => {});
    }
    fs.writeFileSync(path.join(dir, 'page.log'), logs.join('\n'));
    console.log(`page log: ${path.join(dir, 'page.log')}\n${logs.slice(-30).join('\n')}`);
    if (context) await context.close().catch(() => {});
    process.exit(1);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });
