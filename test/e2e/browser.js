#!/usr/bin/env node
// browser.js drives the example page in headless Chromium (the system one,
// through playwright-core): no session → sinvalid; log in as alice; incr
// twice; reload keeps alice and the count; log out → sinvalid.
//
//   node browser.js --url http://127.0.0.1:PORT [--mode perconn|permessage]
//
// Env CHROMIUM overrides the browser binary (default /usr/bin/chromium). On
// failure it saves a screenshot and the page's console to a temp dir.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { chromium } = require('playwright-core');

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    mode: { type: 'string', default: 'perconn' },
  },
});
if (!args.url) {
  console.error('browser.js: --url is required\nusage: node browser.js --url http://127.0.0.1:PORT [--mode perconn|permessage]');
  process.exit(2);
}
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
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 30000,
    });
    browser = context;
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(STEP);
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => logs.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));

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
    const ok = (msg) => console.log(`ok   ${msg}`);

    step = 'open /';
    const res = await page.goto(BASE + '/', { waitUntil: 'load' });
    if (!res || res.status() !== 200) throw new Error(`GET / answered ${res && res.status()}`);
    await expectText('#status', 'sinvalid');
    ok('fresh page without a session shows sinvalid');

    step = 'log in as alice';
    await page.fill('#login-user', 'alice');
    await Promise.all([
      page.waitForResponse((r) => r.url() === BASE + '/login' && r.request().method() === 'POST'),
      page.click('#login [type=submit]'),
    ]);
    await expectText('#status', 'connected');
    await expectText('#user', 'alice');
    await expectText('#count', '0');
    ok('log in as alice: connected, user alice, count 0');

    step = 'incr twice';
    await page.click('#incr');
    await expectText('#count', '1');
    await page.click('#incr');
    await expectText('#count', '2');
    ok('incr twice: count 2');

    step = 'reload';
    if (args.mode === 'perconn') {
      // perconn saves the count when the old socket disconnects: reload until
      // the new page's welcome shows it (bounded).
      const deadline = Date.now() + 3 * STEP;
      for (;;) {
        await page.reload({ waitUntil: 'load' });
        await expectText('#status', 'connected');
        const count = await page.textContent('#count');
        if (count.trim() === '2' || Date.now() > deadline) break;
        await page.waitForTimeout(200);
      }
    } else {
      await page.reload({ waitUntil: 'load' });
    }
    await expectText('#status', 'connected');
    await expectText('#user', 'alice');
    await expectText('#count', '2');
    ok(`reload (${args.mode}): still alice with count 2`);

    step = 'log out';
    await Promise.all([
      page.waitForResponse((r) => r.url() === BASE + '/logout'),
      page.click('#logout'),
    ]);
    await expectText('#status', 'sinvalid');
    await page.waitForTimeout(500); // the disconnect that follows keeps sinvalid
    await expectText('#status', 'sinvalid');
    ok('log out: sinvalid');

    step = 'reload after logout';
    await page.reload({ waitUntil: 'load' });
    await expectText('#status', 'sinvalid');
    ok('reload after logout: sinvalid');

    console.log('browser: 6 passed, 0 failed');
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
