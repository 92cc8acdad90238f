#!/usr/bin/env node
// Headless browser + accessibility checks for tongban.
//
// Usage: TONGBAN_BIN=target/release/tongban node tests/browser/run.mjs
//
// Starts `$TONGBAN_BIN serve` on a free loopback port with a fresh temporary
// data directory (demo data is seeded on first start), drives the
// server-rendered pages with headless Chromium (playwright-core), runs
// axe-core on them and prints one line per check plus a final
// "N passed, M failed" line. Exit code 0 only if every check passed.
//
// Environment:
//   TONGBAN_BIN                 path to the tongban binary (required)
//   CHROMIUM                    Chromium executable (default /usr/bin/chromium)
//   TONGBAN_DEMO_PASSWORD       demo account password (default Yunling-Demo-2026)
//   TONGBAN_DEMO_TOTP_SECRET    demo staff TOTP secret, base32
//   TONGBAN_BROWSER_SCREENSHOTS directory to save a PNG of the page for each failed check
//   TONGBAN_BROWSER_VERBOSE     if set, always print the server's log at the end

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, readFile, mkdir } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

const TONGBAN_BIN = process.env.TONGBAN_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const DEMO_PASSWORD = process.env.TONGBAN_DEMO_PASSWORD || 'Yunling-Demo-2026';
const DEMO_TOTP_SECRET = process.env.TONGBAN_DEMO_TOTP_SECRET || 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const SCREENSHOT_DIR = process.env.TONGBAN_BROWSER_SCREENSHOTS || '';
const VERBOSE = !!process.env.TONGBAN_BROWSER_VERBOSE;

const READY_TIMEOUT_MS = 120_000;
const ACTION_TIMEOUT_MS = 30_000;
const STAFF_USER = 'clerk.mingyue';
const STAFF_DISTRICT = '明月区';
const CITIZEN_USER = 'citizen.demo';

const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

// ---------------------------------------------------------------------------
// TOTP (RFC 6238 over RFC 4226 HOTP, HMAC-SHA1, 30 s step, 6 digits)

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32Decode(input) {
  const s = String(input).toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of s) {
    const i = B32.indexOf(c);
    if (i < 0) throw new Error(`invalid base32 character ${JSON.stringify(c)} in TOTP secret`);
    value = ((value << 5) | i) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function hotp(key, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac('sha1', key).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin =
    ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

function totpAt(secretBase32, unixSeconds, digits = 6) {
  return hotp(base32Decode(secretBase32), Math.floor(unixSeconds / 30), digits);
}

// RFC 6238 Appendix B, SHA1 vectors (secret "12345678901234567890").
function totpSelfTest() {
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  const vectors = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
  ];
  for (const [t, want] of vectors) {
    const got = totpAt(secret, t, 8);
    if (got !== want) throw new Error(`TOTP self-test failed at T=${t}: got ${got}, want ${want}`);
  }
}

// A server may refuse to accept the same time step twice for one secret
// (replay protection), so never hand out a step that was already used and
// avoid codes that are about to expire.
const lastStepUsed = new Map();

async function freshTotp(secretBase32) {
  const key = String(secretBase32).toUpperCase().replace(/[\s=-]/g, '');
  for (;;) {
    const now = Date.now() / 1000;
    const step = Math.floor(now / 30);
    const remaining = (step + 1) * 30 - now;
    const last = lastStepUsed.get(key);
    if ((last !== undefined && step <= last) || remaining < 3) {
      const waitMs = Math.ceil(remaining * 1000) + 250;
      process.stdout.write(`# waiting ${Math.round(waitMs / 1000)} s for a fresh TOTP time step\n`);
      await sleep(waitMs);
      continue;
    }
    lastStepUsed.set(key, step);
    return hotp(base32Decode(key), step);
  }
}

// ---------------------------------------------------------------------------
// Small helpers

class CheckError extends Error {}

function expect(cond, message) {
  if (!cond) throw new CheckError(message);
}

function oneLine(s) {
  return String(s).replace(/\s*\n\s*/g, ' | ').trim();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Keep the last lines the server printed, for failure reports.
function makeLogBuffer(maxLines = 200) {
  const lines = [];
  let partial = '';
  return {
    push(chunk) {
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop();
      for (const p of parts) {
        lines.push(p);
        if (lines.length > maxLines) lines.shift();
      }
    },
    tail(n = 60) {
      const all = partial ? [...lines, partial] : lines;
      return all.slice(-n);
    },
  };
}

// ---------------------------------------------------------------------------
// Server lifecycle

let serverProc = null;
let dataDir = null;

function startServer(port) {
  const log = makeLogBuffer();
  const child = spawn(
    TONGBAN_BIN,
    ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
  );
  child.stdout.on('data', (d) => log.push(d));
  child.stderr.on('data', (d) => log.push(d));
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => {
      log.push(`spawn error: ${err.message}\n`);
      resolve({ code: null, signal: null, error: err });
    });
  });
  return { child, log, exited };
}

async function waitReady(server, baseURL) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastErr = 'no answer yet';
  let exitInfo = null;
  server.exited.then((info) => {
    exitInfo = info;
  });
  while (Date.now() < deadline) {
    if (exitInfo) {
      const how = exitInfo.error
        ? exitInfo.error.message
        : `exit code ${exitInfo.code}${exitInfo.signal ? `, signal ${exitInfo.signal}` : ''}`;
      throw new Error(`server exited before becoming ready (${how})`);
    }
    try {
      const res = await fetch(`${baseURL}/readyz`, { signal: AbortSignal.timeout(3000) });
      if (res.status === 200) return;
      lastErr = `HTTP ${res.status}`;
    } catch (err) {
      lastErr = err.cause?.code || err.message;
    }
    await sleep(250);
  }
  throw new Error(`GET /readyz did not answer 200 within ${READY_TIMEOUT_MS / 1000} s (last: ${lastErr})`);
}

async function stopServer(server) {
  const { child, exited } = server;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
  if (!done) {
    process.stdout.write('# server did not exit 15 s after SIGTERM; sending SIGKILL\n');
    child.kill('SIGKILL');
    await exited;
  }
}

// Last-resort cleanup if the runner itself is interrupted.
function emergencyCleanup() {
  try {
    if (serverProc && serverProc.child.exitCode === null) serverProc.child.kill('SIGKILL');
  } catch {}
  try {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  } catch {}
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    emergencyCleanup();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------
// Page helpers

const SUBMIT = ':is(button:not([type]), button[type="submit"], input[type="submit"])';

function pathOf(page) {
  return new URL(page.url()).pathname;
}

async function describePage(page) {
  let desc = `at ${new URL(page.url()).pathname}${new URL(page.url()).search}`;
  try {
    const h1 = await page.locator('h1').first().textContent({ timeout: 1000 });
    if (h1) desc += `, h1=${JSON.stringify(h1.trim())}`;
  } catch {}
  try {
    const alerts = await page.locator('[role="alert"]').allTextContents();
    const text = alerts.map((t) => t.trim()).filter(Boolean).join(' / ');
    if (text) desc += `, alert=${JSON.stringify(text)}`;
  } catch {}
  return desc;
}

// Click something that submits a form / follows a link and wait until the
// resulting document (after any redirects) has loaded.
async function clickAndWait(page, locator, what) {
  const count = await locator.count();
  expect(count > 0, `${what}: element not found (${await describePage(page)})`);
  const nav = page.waitForEvent('framenavigated', {
    predicate: (f) => f === page.mainFrame(),
    timeout: ACTION_TIMEOUT_MS,
  });
  await locator.first().click();
  try {
    await nav;
  } catch {
    throw new CheckError(`${what}: no navigation happened after the click (${await describePage(page)})`);
  }
  await page.waitForLoadState('load');
}

async function goto(page, p) {
  const res = await page.goto(p, { waitUntil: 'load' });
  expect(res, `GET ${p}: no response`);
  expect(res.status() < 500, `GET ${p}: HTTP ${res.status()} (${await describePage(page)})`);
  return res;
}

async function htmlLang(page) {
  return page.evaluate(() => document.documentElement.getAttribute('lang'));
}

async function expectPath(page, want, context) {
  const got = pathOf(page);
  expect(got === want, `${context}: expected to be on ${want}, but ${await describePage(page)}`);
}

let axeSource = null;

// Basic structure every page must have + axe-core WCAG 2.1 A/AA run.
async function checkPage(page, label) {
  const problems = [];
  const lang = await htmlLang(page);
  if (!lang) problems.push('<html> has no lang attribute');
  const h1Count = await page.locator('h1').count();
  if (h1Count === 0) problems.push('no <h1>');
  else {
    const h1 = (await page.locator('h1').first().textContent()) || '';
    if (!h1.trim()) problems.push('<h1> is empty');
  }
  if ((await page.locator('form.lang-switch [name="lang"]').count()) === 0)
    problems.push('no form.lang-switch with a name="lang" button');
  if ((await page.locator(`form.elder-switch ${SUBMIT}`).count()) === 0)
    problems.push('no form.elder-switch with a submit button');

  const hasAxe = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!hasAxe) await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      count: v.nodes.length,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  }, AXE_TAGS);
  if (violations.length) {
    problems.push(
      'axe violations: ' +
        violations
          .map((v) => `${v.id} [${v.impact}] x${v.count} at ${v.targets.join(', ')}`)
          .join('; '),
    );
  }
  if (problems.length) {
    throw new CheckError(`${label} (${pathOf(page)}): ${problems.join('; ')}`);
  }
}

async function switchLang(page, to) {
  const btn = page.locator(`form.lang-switch [name="lang"][value="${to}"]`);
  await clickAndWait(page, btn, `language switch to ${to}`);
  const lang = await htmlLang(page);
  expect(lang === to, `after clicking the lang-switch button for ${to}, <html lang> is ${JSON.stringify(lang)}, expected ${JSON.stringify(to)}`);
}

async function isElder(page) {
  return page.evaluate(() => document.documentElement.classList.contains('elder'));
}

async function toggleElder(page) {
  await clickAndWait(page, page.locator(`form.elder-switch ${SUBMIT}`), 'elder mode switch');
}

async function setElder(page, on) {
  if ((await isElder(page)) !== on) await toggleElder(page);
  expect((await isElder(page)) === on, `elder mode should be ${on ? 'on' : 'off'} but <html> class is ${JSON.stringify(await page.evaluate(() => document.documentElement.className))}`);
}

// Known TOTP secrets by username (the citizen's is learnt in check 7).
const totpSecrets = new Map([
  [STAFF_USER, DEMO_TOTP_SECRET],
  ['police.mingyue', DEMO_TOTP_SECRET],
  ['gaapprover.mingyue', DEMO_TOTP_SECRET],
  ['data.mz', DEMO_TOTP_SECRET],
  ['dispatcher.mingyue', DEMO_TOTP_SECRET],
  ['water.mingyue', DEMO_TOTP_SECRET],
  ['operator.mingyue', DEMO_TOTP_SECRET],
  ['sysadmin.mingyue', DEMO_TOTP_SECRET],
  ['leader.mingyue', DEMO_TOTP_SECRET],
  ['assessor', DEMO_TOTP_SECRET],
  ['open.mz.mingyue', DEMO_TOTP_SECRET],
  ['grid.mingyue', DEMO_TOTP_SECRET],
  ['trade.mingyue', DEMO_TOTP_SECRET],
  ['dataofficer.mingyue', DEMO_TOTP_SECRET],
]);

async function submitSignin(page, username, password) {
  await goto(page, '/signin');
  const form = page.locator('form:has(input[name="password"]):has(input[name="username"])');
  expect((await form.count()) > 0, `/signin: no form with inputs name="username" and name="password"`);
  await form.first().locator('input[name="username"]').fill(username);
  await form.first().locator('input[name="password"]').fill(password);
  await clickAndWait(page, form.first().locator(SUBMIT), `sign-in form submit (${username})`);
}

async function submitMfaCode(page, code, what) {
  const form = page.locator('form:has(input[name="code"])');
  expect((await form.count()) > 0, `${what}: no form with input name="code" (${await describePage(page)})`);
  await form.first().locator('input[name="code"]').fill(code);
  await clickAndWait(page, form.first().locator(SUBMIT), `${what} submit`);
}

// Sign in, answering the MFA step if the server asks for it.
async function signIn(page, username) {
  await submitSignin(page, username, DEMO_PASSWORD);
  if (pathOf(page) === '/signin/mfa') {
    const secret = totpSecrets.get(username);
    expect(secret, `${username}: server asked for MFA but no TOTP secret is known for this account`);
    await submitMfaCode(page, await freshTotp(secret), `MFA code for ${username}`);
  }
  expect(!pathOf(page).startsWith('/signin'), `sign-in as ${username} did not complete: ${await describePage(page)}`);
}

// ---------------------------------------------------------------------------
// Checks

const checks = [];
function check(name, fn) {
  checks.push({ name, fn });
}

check('home page passes axe and has lang=zh-CN', async ({ page }) => {
  await goto(page, '/');
  const lang = await htmlLang(page);
  expect(lang === 'zh-CN', `home page <html lang> is ${JSON.stringify(lang)}, expected "zh-CN"`);
  await checkPage(page, 'home page');
  expect((await page.locator('nav a[aria-current="page"][href="/"]').count()) === 1, 'the navigation marks the home page as current');
  // Search first: a search from the home page lands on the catalog's results.
  await page.fill('#home-q', '居住证');
  await clickAndWait(page, page.locator('form[role=search] button[type=submit]'), 'search from the home page');
  expect(pathOf(page) === '/services', `the home search opens the catalog (${await describePage(page)})`);
  expect((await page.locator('nav a[aria-current="page"][href="/services"]').count()) === 1, 'the catalog is marked current');
  for (const statement of ['accessibility', 'privacy', 'contact']) {
    await clickAndWait(page, page.locator(`footer a[href="/about/${statement}"]`), `the footer's ${statement} link`);
    await checkPage(page, `${statement} statement`);
  }
});

check('language switch zh-CN <-> en persists across page loads', async ({ page, context }) => {
  await goto(page, '/');
  expect((await htmlLang(page)) === 'zh-CN', `default language should be zh-CN, got ${JSON.stringify(await htmlLang(page))}`);
  await switchLang(page, 'en');
  expect((await page.locator('form.lang-switch [name="lang"][value="zh-CN"]').count()) > 0,
    'in English the lang-switch form should offer value="zh-CN"');
  await goto(page, '/signin');
  let lang = await htmlLang(page);
  const cookies = (await context.cookies()).map((c) => c.name).join(', ') || 'none';
  expect(lang === 'en', `English was not remembered on the next page load: /signin has lang ${JSON.stringify(lang)} (cookies: ${cookies})`);
  await switchLang(page, 'zh-CN');
  await goto(page, '/');
  lang = await htmlLang(page);
  expect(lang === 'zh-CN', `switching back to zh-CN was not remembered: / has lang ${JSON.stringify(lang)}`);
});

check('elder mode scales type, headings and targets', async ({ page }) => {
  await goto(page, '/');
  expect(!(await isElder(page)), 'elder mode should be off by default');
  await toggleElder(page);
  expect(await isElder(page), `after toggling elder mode <html> has no class "elder" (class=${JSON.stringify(await page.evaluate(() => document.documentElement.className))})`);
  const sizes = await page.evaluate(() => {
    const px = (el, prop) => (el ? parseFloat(getComputedStyle(el)[prop]) : 0);
    const button = document.querySelector('main button, header button');
    return {
      body: px(document.body, 'fontSize'),
      h1: px(document.querySelector('h1'), 'fontSize'),
      buttonHeight: button ? button.getBoundingClientRect().height : 0,
      buttonFont: px(button, 'fontSize'),
    };
  });
  expect(sizes.body >= 20, `in elder mode the computed body font-size is ${sizes.body}px, expected >= 20px`);
  expect(sizes.h1 > sizes.body, `in elder mode the h1 (${sizes.h1}px) should be larger than body text (${sizes.body}px)`);
  expect(sizes.buttonHeight >= 44, `in elder mode a button is ${sizes.buttonHeight}px tall, expected >= 44px`);
  expect(sizes.buttonFont >= 20, `in elder mode button text is ${sizes.buttonFont}px, expected >= 20px`);
  await checkPage(page, 'home page in elder mode');
  await toggleElder(page);
  expect(!(await isElder(page)), 'toggling elder mode a second time did not remove class "elder" from <body>');
});

check('sign-in page passes axe (normal, elder, English)', async ({ page }) => {
  await goto(page, '/signin');
  await checkPage(page, 'sign-in page (zh-CN)');
  await setElder(page, true);
  await checkPage(page, 'sign-in page (elder mode)');
  await switchLang(page, 'en');
  await checkPage(page, 'sign-in page (English, elder mode)');
  await setElder(page, false);
  expect((await htmlLang(page)) === 'en', 'turning elder mode off lost the English choice');
  await checkPage(page, 'sign-in page (English)');
});

check(`staff sign-in with MFA (${STAFF_USER}) lands on /staff`, async ({ page }) => {
  await submitSignin(page, STAFF_USER, DEMO_PASSWORD);
  await expectPath(page, '/signin/mfa', 'after a correct staff password');
  await checkPage(page, 'MFA page');
  await submitMfaCode(page, await freshTotp(DEMO_TOTP_SECRET), 'staff MFA form');
  await expectPath(page, '/staff', 'after entering the staff TOTP code');
  const profile = page.locator('#staff-profile');
  expect((await profile.count()) > 0, '/staff has no element with id="staff-profile"');
  const text = (await profile.first().innerText()).trim();
  expect(text.includes(STAFF_DISTRICT), `#staff-profile should mention ${STAFF_DISTRICT}, got ${JSON.stringify(text.slice(0, 200))}`);
  await checkPage(page, 'staff landing page');
  await goto(page, '/account');
  await expectPath(page, '/account', 'signed-in staff opening /account');
  await checkPage(page, 'account page (staff)');
  await goto(page, '/staff/corrections');
  await expectPath(page, '/staff/corrections', 'the clerk opening the correction inbox');
  await checkPage(page, 'correction requests page');
  await goto(page, '/account/password');
  await expectPath(page, '/account/password', 'signed-in staff opening /account/password');
  await checkPage(page, 'change-password page');
  // A wrong current password: the error summary links to the field, and the page still passes.
  await page.fill('#current_password', 'not-my-password');
  await page.fill('#new_password', 'a-brand-new-passphrase');
  await page.fill('#confirm_password', 'a-brand-new-passphrase');
  await clickAndWait(page, page.locator('form[action="/account/password"] button[type=submit]'), 'change-password form');
  expect((await page.locator('.error-summary[role=alert] a[href="#current_password"]').count()) === 1,
    'the error summary should link to the current-password field');
  await checkPage(page, 'change-password page with an error');
});

check('security admin sees the alerts page', async ({ page }) => {
  await submitSignin(page, 'secadmin', DEMO_PASSWORD);
  await expectPath(page, '/signin/mfa', 'after the security admin password');
  await submitMfaCode(page, await freshTotp(DEMO_TOTP_SECRET), 'security admin MFA form');
  await goto(page, '/security');
  await expectPath(page, '/security', 'opening /security');
  expect((await page.locator('#open-alerts').count()) === 1, '/security should show the open alert count');
  await checkPage(page, 'security alerts page');
});

check('error pages pass axe in both languages', async ({ page }) => {
  const r = await goto(page, '/no/such/page');
  expect(r.status() === 404, `expected 404, got ${r.status()}`);
  await checkPage(page, '404 page');
  await switchLang(page, 'en');
  await checkPage(page, '404 page in English');
  await setElder(page, true);
  await checkPage(page, '404 page in English, elder mode');
});

check('wrong password shows an alert on /signin', async ({ page }) => {
  await submitSignin(page, CITIZEN_USER, `${DEMO_PASSWORD}-wrong`);
  await expectPath(page, '/signin', 'after a wrong password');
  const alert = page.locator('[role="alert"]');
  expect((await alert.count()) > 0, 'after a wrong password there is no element with role="alert"');
  const visible = await alert.first().isVisible();
  expect(visible, 'the role="alert" element is not visible');
  const text = ((await alert.first().innerText()) || '').trim();
  expect(text.length > 0, 'the role="alert" element has no text');
  await checkPage(page, 'sign-in page with error');
});

check(`citizen sign-in (${CITIZEN_USER}) and MFA enrolment with recovery codes`, async ({ page }) => {
  await submitSignin(page, CITIZEN_USER, DEMO_PASSWORD);
  await expectPath(page, '/account', 'after citizen sign-in (no MFA expected)');
  await checkPage(page, 'account page (citizen)');
  // 我的数据: own data, the uses of it, and a correction request.
  await goto(page, '/account/data');
  await expectPath(page, '/account/data', 'opening 我的数据');
  expect((await page.locator('#my-profile').count()) === 1, '/account/data should show the resident record in #my-profile');
  await checkPage(page, 'my data page');
  await page.selectOption('#field', 'address');
  await page.fill('#requested', '春城市明月区东风街道和平社区9号');
  await page.fill('#reason', '门牌号有误');
  await clickAndWait(page, page.locator('form[action="/account/data/corrections"] button[type=submit]'), 'correction form');
  expect((await page.locator('.notice[role=status]').count()) === 1, 'a confirmation should follow the correction request');
  expect((await page.locator('#my-corrections li').count()) >= 1, 'the request should be listed under my requests');
  const requests = await page.locator('#my-corrections li').allInnerTexts();
  expect(requests.some((r) => r.includes('住址') && r.includes('处理中'))
    && !requests.some((r) => /\b(address|open|name|mobile|id_number)\b/.test(r)),
    `the requests should name their field and status in words, got ${JSON.stringify(requests)}`);
  await checkPage(page, 'my data page after a correction request');
  await goto(page, '/account/mfa');
  await expectPath(page, '/account/mfa', 'opening MFA enrolment');
  const svgCount = await page.locator('#mfa-qr svg').count();
  expect(svgCount > 0, `#mfa-qr should contain an inline <svg> QR code (found ${await page.locator('#mfa-qr').count()} #mfa-qr, ${svgCount} svg)`);
  expect((await page.locator('#mfa-uri').count()) > 0, '/account/mfa has no element with id="mfa-uri"');
  const uri = ((await page.locator('#mfa-uri').first().textContent()) || '').replace(/\s+/g, '');
  expect(uri.startsWith('otpauth://totp/'), `#mfa-uri should start with "otpauth://totp/", got ${JSON.stringify(uri.slice(0, 80))}`);
  await checkPage(page, 'MFA enrolment page');
  let secret;
  try {
    secret = new URL(uri).searchParams.get('secret');
  } catch (err) {
    throw new CheckError(`#mfa-uri is not a parseable URI: ${err.message}`);
  }
  expect(secret, `#mfa-uri has no secret= parameter: ${JSON.stringify(uri)}`);
  try {
    base32Decode(secret);
  } catch (err) {
    throw new CheckError(`#mfa-uri secret is not base32: ${err.message}`);
  }
  totpSecrets.set(CITIZEN_USER, secret);
  await submitMfaCode(page, await freshTotp(secret), 'MFA enrolment form');
  const codes = page.locator('#recovery-codes li');
  const n = await codes.count();
  expect(n >= 8, `after confirming MFA expected #recovery-codes with >= 8 <li>, found ${n} (${await describePage(page)})`);
  const texts = (await codes.allTextContents()).map((t) => t.trim());
  expect(texts.every((t) => t.length > 0), 'some recovery code <li> is empty');
  await checkPage(page, 'recovery codes page');
});

check('sign-out ends the session (/account then redirects to /signin)', async ({ page }) => {
  // citizen.demo has MFA after the previous check; signIn() answers it.
  await signIn(page, CITIZEN_USER);
  await goto(page, '/account');
  await expectPath(page, '/account', 'signed in, opening /account');
  const signout = page.locator(`form.signout ${SUBMIT}`);
  await clickAndWait(page, signout, 'sign-out button (form.signout)');
  expect(!pathOf(page).startsWith('/account'), `after sign-out still on an account page: ${await describePage(page)}`);
  expect((await page.locator('form.signout').count()) === 0,
    `after sign-out the page still shows a sign-out form (${await describePage(page)})`);
  await goto(page, '/account');
  await expectPath(page, '/signin', 'opening /account after sign-out');
});

check('service journey: search, guide, prefilled form, staff approval, certificate verified', async ({ page, context }) => {
  await signIn(page, CITIZEN_USER);
  await goto(page, '/services?q=' + encodeURIComponent('居住证'));
  await checkPage(page, 'catalog search results');
  const hit = page.locator('#service-list a', { hasText: '居住证申领' });
  expect((await hit.count()) > 0, `searching 居住证 should list 居住证申领 (${await describePage(page)})`);
  await clickAndWait(page, hit.first(), 'the 居住证申领 result');
  await checkPage(page, 'service guide');
  await clickAndWait(page, page.locator('a.button[href$="/apply"]'), 'apply online');
  await checkPage(page, 'application form');
  // 我的材料: upload a PDF from the form's link, come back and tick it.
  await clickAndWait(page, page.locator('#f-_documents a[href^="/materials"]'), 'the upload-materials link on the form');
  await checkPage(page, 'materials page');
  const pdf = '%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n';
  await page.setInputFiles('#file', { name: 'residence.pdf', mimeType: 'application/pdf', buffer: Buffer.from(pdf) });
  await clickAndWait(page, page.locator(`form[action="/materials"] ${SUBMIT}`), 'upload the PDF');
  expect((await page.locator('p.notice[role=status]').count()) === 1, `the upload is confirmed (${await describePage(page)})`);
  expect((await page.locator('#uploads td', { hasText: 'residence.pdf' }).count()) === 1, 'the upload is listed');
  await checkPage(page, 'materials page after an upload');
  await clickAndWait(page, page.locator('a[href$="/apply"]').first(), 'back to the application form');
  const upload = page.locator('#f-_documents input[name="_documents"]');
  expect((await upload.count()) === 1, `the form offers the upload (${await describePage(page)})`);
  await upload.check();
  const name = page.locator('#f-applicant_name');
  expect((await name.getAttribute('readonly')) !== null, 'the prefilled name is read-only');
  expect(((await name.inputValue()) || '').length > 0, 'the name is prefilled');
  await clickAndWait(page, page.locator('form[action$="/apply"] button[type=submit]'), 'submit the empty form');
  expect((await page.locator('.error-summary[role=alert] a[href="#f-residence_since"]').count()) === 1,
    'the error summary links to the missing date');
  await checkPage(page, 'application form with errors');
  await page.fill('#f-residence_since', '2025-03-01');
  await page.locator('input[name="residence_basis"]').first().check();
  await page.locator('#f-agree').check();
  await clickAndWait(page, page.locator('form[action$="/apply"] button[type=submit]'), 'submit the completed form');
  const appPath = pathOf(page);
  expect(appPath.startsWith('/applications/'), `after submitting, expected the application page, but ${await describePage(page)}`);
  await checkPage(page, 'application page');
  const formCells = await page.locator('#form-values td').allInnerTexts();
  const raw = formCells.filter((t) => ['true', 'false', 'employment', 'housing', 'study'].includes(t.trim()));
  expect(formCells.length > 0 && raw.length === 0, `the form values are shown in words, not as codes (${JSON.stringify(formCells)})`);
  expect(formCells.some((t) => t.trim() === '是'), `the ticked declaration reads 是 (${JSON.stringify(formCells)})`);
  expect((await page.locator('#documents td', { hasText: 'residence.pdf' }).count()) === 1,
    'the ticked material went with the application');
  const id = appPath.split('/').pop();
  await goto(page, '/notifications');
  expect((await page.locator(`a[href="/applications/${id}"]`).count()) >= 1, 'the submission is in the applicant\'s messages');
  await checkPage(page, 'messages');

  for (const [user, action] of [['police.mingyue', 'accept'], ['gaapprover.mingyue', 'approve']]) {
    await context.clearCookies();
    await signIn(page, user);
    await goto(page, '/staff/inbox');
    await checkPage(page, `inbox of ${user}`);
    if (user === 'police.mingyue') {
      const row = `#inbox tr:has(a[href="/staff/cases/${id}"])`;
      await clickAndWait(page, page.locator(`${row} form[action$="/claim"] button`), 'claim the task');
      expect((await page.locator(`#inbox a[href="/staff/cases/${id}"]`).count()) === 1,
        `the claimed task is under 我的待办 (${await describePage(page)})`);
      await checkPage(page, 'inbox: my tasks');
      await clickAndWait(page, page.locator(`${row} a[href$="/transfer"]`), 'open the transfer page');
      await checkPage(page, 'transfer page');
    }
    await goto(page, `/staff/cases/${id}`);
    await checkPage(page, `case page for ${user}`);
    if (user === 'police.mingyue') {
      // A decision that ends the case is set apart and asked again; going back decides nothing.
      const refuse = page.locator('#act button[value="refuse"]');
      expect((await refuse.getAttribute('class')) === 'warning', '不予受理 is a warning button');
      await clickAndWait(page, refuse, 'refuse, which asks for confirmation');
      expect((await page.locator('#confirm button.warning').count()) === 1, `refusing asks for confirmation (${await describePage(page)})`);
      await checkPage(page, 'decision confirmation');
      await clickAndWait(page, page.locator('#confirm a[href^="/staff/cases/"]'), 'go back without deciding');
      expect((await page.locator(`#act button[value="${action}"]`).count()) === 1, 'the case is still open to decide');
    }
    await clickAndWait(page, page.locator(`#act button[value="${action}"]`), `${user}: ${action}`);
  }
  const cert = page.locator('#certificates a');
  expect((await cert.count()) === 1, `approval should issue a certificate (${await describePage(page)})`);
  expect((await page.locator('#certificates form[action$="/revoke"]').count()) === 1,
    'the issuing department\'s approver can revoke it from the case page');
  await checkPage(page, 'case page with the issued certificate');
  await context.clearCookies();
  await clickAndWait(page, cert.first(), 'the certificate link');
  await checkPage(page, 'certificate verification');
  const verdict = (await page.locator('#verdict').innerText()).trim();
  expect(verdict.includes('有效') && !verdict.includes('无效'), `the certificate verifies, got ${JSON.stringify(verdict)}`);
});

check('booking: hall, day and time; calendar file; cancel; the window sees its day', async ({ page, context }) => {
  await signIn(page, CITIZEN_USER);
  await goto(page, '/services/YLGA0002');
  await clickAndWait(page, page.locator('a.button[href$="/book"]'), 'book a time at a window');
  await checkPage(page, 'booking: hall and day');
  await page.locator('input[name="date"]').last().check();
  await clickAndWait(page, page.locator('form[action$="/book"][method="get"] button[type=submit]'), 'show free times');
  await checkPage(page, 'booking: free times');
  const free = page.locator('#slots input[name="start"]:not([disabled])');
  expect((await free.count()) > 0, `a working day two weeks ahead has free times (${await describePage(page)})`);
  await free.first().check();
  await clickAndWait(page, page.locator('form[action$="/book"][method="post"] button[type=submit]'), 'book');
  expect(pathOf(page) === '/appointments', `after booking, expected /appointments, but ${await describePage(page)}`);
  await checkPage(page, 'my appointments');
  const ics = page.locator('#appointments a[href$="/ics"]');
  expect((await ics.count()) === 1, 'the booking offers a calendar file');
  const calendar = await page.request.get(await ics.first().getAttribute('href'));
  expect((await calendar.text()).includes('BEGIN:VEVENT'), 'the calendar file holds the event');
  await context.clearCookies();
  await signIn(page, 'police.mingyue');
  await goto(page, '/staff/appointments');
  await checkPage(page, 'hall appointments');
  await context.clearCookies();
  await signIn(page, CITIZEN_USER);
  await goto(page, '/appointments');
  await clickAndWait(page, page.locator('#appointments form[action$="/cancel"] button'), 'cancel');
  expect((await page.locator('#appointments a[href$="/ics"]').count()) === 0, 'a cancelled booking cannot be changed');
});

check('bundle: one combined form with its error summary; my certificates', async ({ page }) => {
  await signIn(page, CITIZEN_USER);
  await goto(page, '/services');
  await clickAndWait(page, page.locator('section[aria-labelledby="bundles"] a[href="/bundles/YLBD0002/apply"]'), 'the 新生儿出生 bundle (一件事一次办)');
  await checkPage(page, 'bundle form');
  await clickAndWait(page, page.locator('form[action^="/bundles/"] button[type=submit]'), 'submit the empty bundle form');
  expect((await page.locator('.error-summary[role=alert] a').count()) > 0, 'the bundle form lists what is missing');
  await checkPage(page, 'bundle form with errors');
  await goto(page, '/certificates');
  await checkPage(page, 'my certificates');
  expect((await page.locator('#certificates a[href^="/verify/"]').count()) >= 1,
    `the certificate issued in the service journey is listed (${await describePage(page)})`);
  await goto(page, '/services/YLJY0001');
  expect((await page.locator('#materials .held').count()) === 1,
    'the guide says the residence permit the resident now holds need not be submitted');
  await checkPage(page, 'guide with a material the applicant holds');
});

check('assisted submission: a clerk applies for a resident who signs at the window', async ({ page, context }) => {
  await signIn(page, CITIZEN_USER);
  await goto(page, '/services/YLMZ0005/apply');
  const idNumber = await page.locator('#f-id_number').inputValue();
  expect(idNumber.length === 18, 'the resident record prefills the ID number');
  await context.clearCookies();
  await signIn(page, 'clerk.mingyue');
  await goto(page, '/staff/assist');
  await checkPage(page, 'assisted submission: who and what');
  await page.fill('#id_number', idNumber);
  await page.selectOption('#service', 'YLMZ0005');
  await clickAndWait(page, page.locator('form[action="/staff/assist/code"] button[type=submit]'), 'send the code');
  await checkPage(page, 'assisted submission: the form');
  await page.fill('#f-household_size', '3');
  const hardship = page.locator('select#f-hardship_type');
  if (await hardship.count()) await hardship.selectOption({ index: 1 });
  else await page.locator('input[name="hardship_type"]').first().check();
  await page.fill('#f-monthly_income', '800');
  await page.fill('#f-hardship_description', '家人住院，医疗费用支出大');
  await page.locator('#f-agree').check();
  await page.locator('input[name="_assist_confirm"][value="signature"]').check();
  await clickAndWait(page, page.locator('form[action="/staff/assist/submit"] button[type=submit]'), 'submit for the resident');
  expect(pathOf(page).startsWith('/staff/cases/'), `after submitting, expected the case page, but ${await describePage(page)}`);
  await checkPage(page, 'the assisted case');
});

check('data exchange: consents, catalog request, import with its progress and report, quality', async ({ page, context }) => {
  await signIn(page, CITIZEN_USER);
  await goto(page, '/consents');
  await checkPage(page, 'my consents');
  await context.clearCookies();
  await signIn(page, 'data.mz');
  await goto(page, '/staff/exchange');
  await checkPage(page, 'resource catalog');
  const form = page.locator('form[action="/staff/exchange/requests"]:has(input[name="registry"][value="legal_entities"])');
  await form.locator('xpath=ancestor::details').locator('summary').click();
  await form.locator('input[name="fields"][value="name"]').check();
  await form.locator('input[name="purpose"]').fill('婚姻登记时核对当事人所在单位');
  await form.locator('input[name="legal_basis"]').fill('《婚姻登记条例》第七条');
  await clickAndWait(page, form.locator('button[type=submit]'), 'request access to legal entities');
  await expectPath(page, '/staff/exchange', 'after a request');
  const mine = page.locator('section[aria-labelledby="outgoing"] tbody tr', { hasText: '婚姻登记时核对当事人所在单位' });
  expect((await mine.count()) === 1, `the request is listed (${await describePage(page)})`);
  expect(((await mine.first().textContent()) || '').includes('已授权'), 'an unconditional field is granted at once');
  await checkPage(page, 'catalog with the department\'s requests');
  await goto(page, '/staff/exchange/imports');
  await checkPage(page, 'bulk import');
  await page.selectOption('#registry', 'marriage');
  const csv = 'id_number,status,registered_on,spouse_name\n' +
    '530102199001010012,married,2020-05-20,李四\n' +
    '530102199001010013,widowed,2020-05-20,王五\n';
  await page.setInputFiles('#file', { name: 'marriage.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.locator('#mode-skip').check();
  await clickAndWait(page, page.locator('form[action="/staff/exchange/imports"] button[type=submit]'), 'start the import');
  const progress = pathOf(page);
  expect(progress.startsWith('/staff/exchange/imports/'), `the progress page follows (${await describePage(page)})`);
  for (let i = 0; i < 40; i++) {
    await goto(page, progress + '?manual=1');
    if (((await page.locator('label[for="progress"]').textContent()) || '').includes('导入完成')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(((await page.locator('label[for="progress"]').textContent()) || '').includes('导入完成'), `the import ends (${await describePage(page)})`);
  const errors = page.locator('table tbody tr');
  expect((await errors.count()) === 1, 'one bad row is reported');
  expect(((await errors.first().textContent()) || '').includes('status'), 'with its column');
  await checkPage(page, 'import report');
  await goto(page, '/staff/exchange/quality');
  await checkPage(page, 'data quality and department figures');
  expect((await page.locator('section[aria-labelledby="departments"] tbody tr').count()) >= 4, 'the departments publishing data are listed');
});

check('12345: a request from the portal, the dispatchers\' queue and figures, a bureau answers, the resident rates', async ({ page, context }) => {
  await signIn(page, CITIZEN_USER);
  await goto(page, '/voice/new');
  await checkPage(page, '12345: new request');
  await clickAndWait(page, page.locator('form[action="/voice/new"] button[type=submit]'), 'submit the empty form');
  expect((await page.locator('.error-summary[role=alert] a').count()) > 0, 'the form says what is missing');
  await checkPage(page, '12345: new request with errors');
  await page.locator('input[name="kind"][value="complaint"]').check();
  await page.fill('#text', '我家小区停水三天了，自来水一直没来，打物业电话也没人管，老人做饭洗澡都成问题');
  await page.fill('#address', '东风街道翠湖小区3栋');
  await clickAndWait(page, page.locator('form[action="/voice/new"] button[type=submit]'), 'submit the request');
  const requestPath = pathOf(page);
  expect(requestPath.startsWith('/voice/'), `the request page follows (${await describePage(page)})`);
  await checkPage(page, '12345: my request');
  expect(((await page.locator('#timeline').textContent()) || '').includes('自动派至承办部门'), 'a clear complaint goes straight to its department');
  await setElder(page, true);
  await checkPage(page, '12345: my request, elder mode');
  await setElder(page, false);
  await goto(page, '/voice');
  await checkPage(page, '12345: my requests');
  await context.clearCookies();
  await signIn(page, 'dispatcher.mingyue');
  await goto(page, '/staff/voice/queue');
  await checkPage(page, '12345: the dispatchers\' queue');
  const queued = page.locator('#voice-requests tbody a').first();
  if (await queued.count()) {
    await clickAndWait(page, queued, 'open a queued request');
    await checkPage(page, '12345: a queued request');
    await clickAndWait(page, page.locator('#dispatch button[type=submit]'), 'dispatch it');
    await expectPath(page, '/staff/voice/queue', 'after dispatching');
  }
  // An extension a bureau asked for (the demo has some) is granted from the queue.
  const extending = page.locator('#voice-requests tbody tr', { hasText: '延期审核中' }).locator('a').first();
  expect((await extending.count()) === 1, 'the demo has an extension to decide');
  await clickAndWait(page, extending, 'open an extension to decide');
  await checkPage(page, '12345: an extension to decide');
  await clickAndWait(page, page.locator('#decide-extension button[value="grant"]'), 'grant the extension');
  await expectPath(page, '/staff/voice/queue', 'after granting');
  await goto(page, '/staff/voice/figures');
  await checkPage(page, '12345: figures');
  expect((await page.locator('#voice-figures tbody tr').count()) > 0, 'the departments that have requests are listed');
  await goto(page, '/staff/voice/figures?by=category');
  await checkPage(page, '12345: figures by category');
  expect(!((await page.locator('#voice-figures tbody').textContent()) || '').includes('L0'), 'categories are named, not coded');
  await goto(page, '/staff/voice/routes');
  await checkPage(page, '12345: routing tables, read only');
  expect((await page.locator('#route-form').count()) === 0, 'a dispatcher reads the tables but does not change them');
  await context.clearCookies();
  await signIn(page, 'sysadmin.mingyue');
  await goto(page, '/staff/voice/routes');
  await checkPage(page, '12345: routing tables, to change');
  await clickAndWait(page, page.locator('#route-form button[type=submit]'), 'save a routing line');
  expect((await page.locator('#route-saved').count()) === 1, `the line is saved (${await describePage(page)})`);
  await context.clearCookies();
  await signIn(page, 'water.mingyue');
  await goto(page, '/staff/voice');
  await checkPage(page, '12345: the bureau\'s requests');
  // A request in handling can be given more time, once.
  // The demo's signed-for requests without an extension yet: one gets more time, once.
  await goto(page, '/staff/voice');
  const rows = page.locator('#voice-requests tbody tr', { hasText: '办理中' }).locator('a');
  let asked = false;
  for (let i = 0; i < (await rows.count()) && !asked; i++) {
    await goto(page, (await rows.nth(i).getAttribute('href')) || '/staff/voice');
    if ((await page.locator('#ask-extension').count()) === 0) continue;
    await checkPage(page, '12345: a request in handling');
    await page.fill('#days', '3');
    await page.fill('#extension-reason', '需协调燃气、电力管线迁改');
    await clickAndWait(page, page.locator('#ask-extension button[type=submit]'), 'ask for more time');
    expect(((await page.locator('#request-stage').textContent()) || '').includes('延期审核中'), `the extension waits for a dispatcher (${await describePage(page)})`);
    asked = true;
  }
  expect(asked, 'a request in handling could be given more time');
  await goto(page, '/staff' + requestPath);
  await checkPage(page, '12345: a request to sign for');
  await clickAndWait(page, page.locator('#sign button[type=submit]'), 'sign for it');
  await page.fill('#answer-text', '经查系主管爆裂，已于今日抢修完毕并恢复供水。');
  await clickAndWait(page, page.locator('#answer-form button[type=submit]'), 'answer');
  expect(((await page.locator('#request-stage').textContent()) || '').includes('已答复'), `the request is answered (${await describePage(page)})`);
  await context.clearCookies();
  await signIn(page, CITIZEN_USER);
  await goto(page, requestPath);
  await page.locator('input[name="rating"][value="satisfied"]').check();
  await clickAndWait(page, page.locator('#rate button[type=submit]'), 'rate the answer');
  expect(((await page.locator('#request-stage').textContent()) || '').includes('已办结'), `rated, it is closed (${await describePage(page)})`);
  await checkPage(page, '12345: a closed request');
  // The answers residents agreed to publish, for anyone.
  await context.clearCookies();
  await goto(page, '/voice/published');
  await checkPage(page, '12345: published answers');
  expect((await page.locator('#published > li').count()) > 0, 'answers are published');
  // A hotline operator records a call for a caller without an account.
  await context.clearCookies();
  await signIn(page, 'operator.mingyue');
  await goto(page, '/staff/voice/calls/new');
  await checkPage(page, '12345: record a call');
  await page.fill('#caller_name', '李建国');
  await page.fill('#caller_mobile', '13900001111');
  await page.locator('input[name="kind"][value="help"]').check();
  await page.fill('#text', '来电人反映：小区门口路灯坏了一个星期，晚上老人出门看不见');
  await clickAndWait(page, page.locator('form[action="/staff/voice/calls/new"] button[type=submit]'), 'record the call');
  expect(pathOf(page).startsWith('/staff/voice/calls/'), `the recorded call follows (${await describePage(page)})`);
  expect(((await page.locator('h1').textContent()) || '').includes('12345-'), 'the call has its number');
  await checkPage(page, '12345: a recorded call');
});

check('service dashboard: a leader\'s KPIs with their figures, the weekly chart and table, drill-down, CSV', async ({ page, context }) => {
  await signIn(page, 'leader.mingyue');
  await goto(page, '/staff');
  await clickAndWait(page, page.locator('a[href="/staff/insight"]').first(), 'open the dashboard');
  await expectPath(page, '/staff/insight', 'the dashboard');
  await checkPage(page, 'dashboard');
  expect((await page.locator('#kpi-tiles > li').count()) === 20, 'every KPI has its tile');
  const submitted = ((await page.locator('#kpi-instant_rate .meta').textContent()) || '');
  expect(/分母 [1-9]/.test(submitted), `the demo's applications are counted (${submitted})`);
  expect((await page.locator('#insight-trend tbody tr').count()) >= 13, 'thirteen weeks by default');
  expect((await page.locator('svg[role=img] title').count()) >= 1, 'the chart has a text alternative');
  const forecasts = page.locator('#insight-forecasts tbody tr');
  expect((await forecasts.count()) >= 2, 'applications and 12345 requests have forecast rows');
  expect(((await forecasts.first().textContent()) || '').includes('24'), 'a short history says why there is no forecast yet');
  await setElder(page, true);
  await checkPage(page, 'dashboard, elder mode');
  await setElder(page, false);
  await switchLang(page, 'en');
  await checkPage(page, 'dashboard, English');
  expect(((await page.locator('#kpi-on_time_rate h3').textContent()) || '').includes('Finished on time'), 'KPI names in English');
  await switchLang(page, 'zh-CN');
  expect((await page.locator('#insight-departments tbody tr').count()) > 0, 'departments are ranked');
  expect((await page.locator('#hot-busiest li').count()) > 0, 'the most used services are named');
  await clickAndWait(page, page.locator('#kpi-on_time_rate a').first(), 'see the cases behind 按时办结率');
  await checkPage(page, 'dashboard: the cases behind a figure');
  expect((await page.locator('#records-denominator tbody tr').count()) > 0, 'the finished cases are listed');
  await goto(page, '/staff/insight');
  const street = page.locator('#insight-subregions tbody a').first();
  expect((await street.count()) === 1, 'the district drills down to its streets');
  await clickAndWait(page, street, 'drill into a street');
  expect(pathOf(page) === '/staff/insight', 'still the dashboard');
  await checkPage(page, 'dashboard, a street');
  const csv = await page.request.get('/staff/insight/download?region=990102&from=2026-01-01&to=2026-12-31&table=kpis');
  expect(csv.ok() && (await csv.text()).startsWith('group,code,name'), 'the KPI table downloads as CSV');
  const xlsx = await page.request.get('/staff/insight/download?region=990102&from=2026-01-01&to=2026-12-31&table=regions&format=xlsx');
  expect(xlsx.ok() && (await xlsx.body()).subarray(0, 2).toString() === 'PK', 'and as an Excel workbook');
  await goto(page, '/staff/insight/assessment');
  await checkPage(page, 'assessment: scorecards');
  expect((await page.locator('#scorecards tbody > tr').count()) > 0, 'the departments are scored');
  expect((await page.locator('a[href="/staff/insight/assessment/plan"]').count()) === 0, 'a leader does not set the indicators');
  await goto(page, '/staff/insight?region=990103');
  expect(((await page.locator('main').textContent()) || '').length > 0 && (await page.locator('#kpi-tiles').count()) === 0, 'another district is not shown');
  await context.clearCookies();
});

check('assessment office: sets the indicator system, refused when the points do not add up', async ({ page, context }) => {
  await signIn(page, 'assessor');
  await goto(page, '/staff/insight/assessment/plan');
  await checkPage(page, 'assessment: indicator system');
  await page.fill('#weight_on_time_rate', '40');
  await clickAndWait(page, page.locator('#plan-form button[type=submit]'), 'save a plan that adds up to 110');
  expect((await page.locator('.error-summary[role=alert]').count()) === 1, `the sum is refused (${await describePage(page)})`);
  await checkPage(page, 'assessment: indicator system with an error');
  await page.fill('#weight_on_time_rate', '30');
  await clickAndWait(page, page.locator('#plan-form button[type=submit]'), 'save the plan');
  await expectPath(page, '/staff/insight/assessment', 'the scorecards follow');
  const version = (await page.locator('#plan-version').textContent()) || '';
  expect(/版本 1\b/.test(version), `version 1 is in force (${version})`);
  await checkPage(page, 'assessment: the province\'s scorecards');
  await context.clearCookies();
});

check('政务公开: search and facets, a document with its history and ledger proof, a resident asks, the bureau answers, the annual report', async ({ page, context }) => {
  await goto(page, '/open');
  await checkPage(page, 'disclosure: search');
  await page.fill('#q', '最低生活保障');
  await clickAndWait(page, page.locator('#open-search button[type=submit]'), 'search for 最低生活保障');
  const first = page.locator('#open-results h2 a').first();
  expect((await first.count()) === 1, `the search finds documents (${await describePage(page)})`);
  await checkPage(page, 'disclosure: search results');
  await page.selectOption('#kind', 'policy');
  await clickAndWait(page, page.locator('#open-search button[type=submit]'), 'filter to policies');
  const policy = page.locator('#open-results h2 a').first();
  expect((await policy.count()) === 1, 'policies are found');
  await clickAndWait(page, policy, 'open a policy');
  await checkPage(page, 'disclosure: a document');
  expect((await page.locator('#history tbody tr').count()) >= 1, 'its history is listed');
  expect((await page.locator('#interpretations a').count()) === 1, 'its interpretation is linked');
  expect(((await page.locator('#history').textContent()) || '').includes('sha256'), 'each version carries its SHA-256');
  await setElder(page, true);
  await checkPage(page, 'disclosure: a document, elder mode');
  await setElder(page, false);
  await switchLang(page, 'en');
  await checkPage(page, 'disclosure: a document in English');
  await switchLang(page, 'zh-CN');
  await goto(page, '/open/departments/990102-MZ');
  await checkPage(page, 'disclosure: guide and catalogue');
  expect((await page.locator('#catalogue tbody tr').count()) > 0, 'the catalogue lists the bureau\'s documents');
  const feed = await page.request.get('/open/feed.atom');
  expect(feed.ok() && (await feed.text()).includes('<feed'), 'the Atom feed answers');

  await signIn(page, CITIZEN_USER);
  await goto(page, '/open/requests');
  await checkPage(page, 'disclosure: my requests');
  await clickAndWait(page, page.locator('#request-form button[type=submit]'), 'send the empty form');
  expect((await page.locator('.error-summary[role=alert] a').count()) > 0, 'the form says what is missing');
  await checkPage(page, 'disclosure: request form with errors');
  await page.selectOption('#department', '990102-MZ');
  await page.fill('#description', '请公开本区2026年高龄津贴的发放标准和发放人数');
  await page.locator('input[name="delivery"][value="online"]').check();
  await clickAndWait(page, page.locator('#request-form button[type=submit]'), 'send the request');
  const requestPath = pathOf(page);
  expect(requestPath.startsWith('/open/requests/'), `the request page follows (${await describePage(page)})`);
  await checkPage(page, 'disclosure: my request');
  const requestId = requestPath.split('/').pop();
  await context.clearCookies();

  await signIn(page, 'open.mz.mingyue');
  await goto(page, '/staff/open');
  await checkPage(page, 'disclosure: the officer\'s workbench');
  await goto(page, `/staff/open/requests/${requestId}`);
  await checkPage(page, 'disclosure: a request to answer');
  await page.locator('input[name="answer_type"][value="withheld"]').check();
  await page.fill('#answer-text', '该信息涉及个人隐私。');
  await clickAndWait(page, page.locator('#answer-form button[type=submit]'), 'withhold without a legal ground');
  expect((await page.locator('.error-summary[role=alert]').count()) === 1, `a withholding needs its ground (${await describePage(page)})`);
  await checkPage(page, 'disclosure: an answer refused');
  await page.locator('input[name="answer_type"][value="disclosed"]').check();
  await page.fill('#answer-text', '2026年高龄津贴标准为每人每月100元，共发放3260人。');
  await clickAndWait(page, page.locator('#answer-form button[type=submit]'), 'answer the request');
  expect(((await page.locator('#request-state').textContent()) || '').includes('已答复'), `the request is answered (${await describePage(page)})`);
  await goto(page, '/staff/open/publish');
  await checkPage(page, 'disclosure: publish form');
  await page.selectOption('#kind', 'notice');
  await page.selectOption('#theme', 'civil_affairs');
  await page.fill('#title', '明月区关于开展2027年元旦春节走访慰问的通知');
  await page.fill('#body', '各街道办事处：为做好元旦春节期间困难群众走访慰问工作，现将有关事项通知如下。');
  await clickAndWait(page, page.locator('#document-form button[type=submit]'), 'publish a notice');
  expect(pathOf(page).startsWith('/open/documents/'), `the published notice follows (${await describePage(page)})`);
  await goto(page, `/open/reports/990102-MZ/${new Date().getFullYear()}`);
  await checkPage(page, 'disclosure: the annual report with its form');
  await context.clearCookies();
});

check('public ledgers: a community\'s finances and a project\'s stages with their proofs; the community worker publishes a month', async ({ page, context }) => {
  await goto(page, '/open/ledgers');
  await checkPage(page, 'public ledgers: index');
  const community = page.locator('#communities tbody a').first();
  expect((await community.count()) === 1, 'the demo communities publish their finances');
  await clickAndWait(page, community, 'open a community');
  await checkPage(page, 'public ledgers: a community');
  expect(((await page.locator('#ledger-records').textContent()) || '').includes('sha256'), 'each record shows its SHA-256');
  expect((await page.locator('#ledger-records .tag').count()) >= 2, 'a correction and the record it corrects are both shown');
  await goto(page, '/open/ledgers');
  await clickAndWait(page, page.locator('#projects tbody a').first(), 'open a project');
  await checkPage(page, 'public ledgers: a project');
  expect((await page.locator('#ledger-records > li').count()) === 4, 'the project shows its four stages');
  await setElder(page, true);
  await checkPage(page, 'public ledgers: a project, elder mode');
  await setElder(page, false);

  await signIn(page, 'grid.mingyue');
  await goto(page, '/staff/open/ledgers');
  await checkPage(page, 'public ledgers: the community worker\'s form');
  await page.fill('#lines', '收入，上级补助，abc');
  await clickAndWait(page, page.locator('#statement-form button[type=submit]'), 'publish a bad line');
  expect((await page.locator('.error-summary[role=alert]').count()) === 1, `a bad amount is refused (${await describePage(page)})`);
  await checkPage(page, 'public ledgers: the form with an error');
  await page.fill('#lines', '收入，上级补助，120000.00\n支出，办公费，3560.50，打印纸和墨盒');
  await clickAndWait(page, page.locator('#statement-form button[type=submit]'), 'publish this month');
  expect(pathOf(page).startsWith('/open/ledgers/community-finance/'), `the community's ledger follows (${await describePage(page)})`);
  expect(((await page.locator('#ledger-records').textContent()) || '').includes('打印纸和墨盒'), 'the new month is listed');
  await context.clearCookies();
});

check('数据开放: catalogue with facets, a dataset with its preview and de-identification, a conditional dataset applied for, approved and its key taken, 数据需求', async ({ page, context }) => {
  await goto(page, '/data');
  await checkPage(page, 'open data: catalogue');
  await page.fill('#q', '停车');
  await clickAndWait(page, page.locator('#data-search button[type=submit]'), 'search for 停车');
  expect((await page.locator('#data-results h2 a').count()) === 2, `both districts' car parks are found (${await describePage(page)})`);
  await page.selectOption('#open_level', 'unconditional');
  await clickAndWait(page, page.locator('#data-search button[type=submit]'), 'filter to open datasets');
  await clickAndWait(page, page.locator('#data-results h2 a').first(), 'open a dataset');
  await checkPage(page, 'open data: a dataset');
  expect((await page.locator('#preview tbody tr').count()) > 0, 'the first rows are previewed');
  expect((await page.locator('#versions code.hash').count()) === 1, 'the version shows its SHA-256');
  const csv = await page.request.get(`${pathOf(page)}/data.csv`);
  expect(csv.ok() && (await csv.text()).startsWith('name,'), 'the CSV downloads');
  await setElder(page, true);
  await checkPage(page, 'open data: a dataset, elder mode');
  await setElder(page, false);
  await switchLang(page, 'en');
  await checkPage(page, 'open data: a dataset in English');
  await switchLang(page, 'zh-CN');
  await goto(page, '/data/datasets/province-population-age-structure');
  await checkPage(page, 'open data: a de-identified dataset');
  expect((await page.locator('#rules tbody tr').count()) === 4, 'the rules applied are shown');
  expect(((await page.locator('#k-anonymity').textContent()) || '').includes('5'), 'the k reached is shown');

  await signIn(page, CITIZEN_USER);
  await goto(page, '/data/datasets/mingyue-relief-households-by-community');
  expect((await page.locator('#preview').count()) === 0, 'a conditional dataset is not previewed');
  await clickAndWait(page, page.locator('#apply-form button[type=submit]'), 'apply without a purpose');
  expect((await page.locator('.error-summary[role=alert] a').count()) === 1, `the purpose is asked for (${await describePage(page)})`);
  await checkPage(page, 'open data: application with an error');
  await page.fill('#purpose', '研究本区社会救助政策的覆盖情况，仅用于统计分析。');
  await clickAndWait(page, page.locator('#apply-form button[type=submit]'), 'apply');
  expect(pathOf(page) === '/data/applications', `my applications follow (${await describePage(page)})`);
  await checkPage(page, 'open data: my applications');
  await goto(page, '/data/requests');
  await checkPage(page, 'open data: 数据需求');
  await page.selectOption('#department', '990102-SG');
  await page.fill('#title', '社区食堂名录');
  await page.fill('#description', '希望开放各社区老年食堂的地址和供餐时间。');
  await clickAndWait(page, page.locator('#demand-form button[type=submit]'), 'ask for a dataset');
  expect(((await page.locator('#data-requests').textContent()) || '').includes('社区食堂名录'), 'the request is listed');
  await context.clearCookies();

  await signIn(page, 'dataofficer.mingyue');
  await goto(page, '/staff/data');
  await checkPage(page, 'open data: the officer\'s desk');
  const application = page.locator('#desk-applications form').first();
  await application.locator('input[name="note"]').fill('同意，仅限统计分析使用。');
  await clickAndWait(page, application.locator('button[value="approve"]'), 'approve the application');
  expect(pathOf(page) === '/staff/data', `the desk follows (${await describePage(page)})`);
  await goto(page, '/staff/data/publish');
  await checkPage(page, 'open data: the publishing form');
  await page.fill('#name', 'mingyue-community-canteens');
  await page.fill('#title', '明月区社区老年食堂名录');
  await page.fill('#description', '各社区老年食堂的名称、地址和每餐价格。');
  await page.selectOption('#theme', 'civil_affairs');
  await page.locator('input[name="open_level"][value="unconditional"]').check();
  await page.selectOption('#frequency', 'monthly');
  await page.selectOption('#licence', 'attribution');
  await page.fill('#tags', '养老，助餐');
  await page.fill('#columns', 'name,名称,text,required\naddress,地址,text,required\nprice,每餐价格（元）,number,required');
  const canteens = (price) => ({ name: 'canteens.csv', mimeType: 'text/csv',
    buffer: Buffer.from(`name,address,price\n和平社区老年食堂,和平路 1 号,${price}\n幸福社区老年食堂,幸福街 8 号,12\n`) });
  await page.setInputFiles('#file', canteens('十元'));
  await clickAndWait(page, page.locator('#publish-form button[value="check"]'), 'check a file with a bad row');
  expect((await page.locator('#problems tbody tr').count()) === 1, `the report names the bad row (${await describePage(page)})`);
  await checkPage(page, 'open data: the check report');
  await page.setInputFiles('#file', canteens('10'));
  await clickAndWait(page, page.locator('#publish-form button[value="publish"]'), 'publish the canteens');
  expect(pathOf(page) === '/data/datasets/mingyue-community-canteens', `the dataset's page follows (${await describePage(page)})`);
  expect((await page.locator('#preview tbody tr').count()) === 2, 'both canteens are previewed');
  await context.clearCookies();

  await signIn(page, CITIZEN_USER);
  await goto(page, '/data/applications');
  await clickAndWait(page, page.locator('#applications button[type=submit]').first(), 'take the key');
  const key = ((await page.locator('#issued-key code').textContent()) || '').trim();
  expect(key.startsWith('tbod_'), `the key is shown once (${await describePage(page)})`);
  await checkPage(page, 'open data: the key shown once');
  const rows = await page.request.get('/api/v1/open-data/datasets/mingyue-relief-households-by-community/rows', { headers: { 'X-API-Key': key } });
  expect(rows.ok(), `the key reads the conditional dataset (${rows.status()})`);
  await context.clearCookies();
});

// ---------------------------------------------------------------------------
// Main

async function main() {
  if (!TONGBAN_BIN) {
    console.error('TONGBAN_BIN must be set to the path of the tongban binary');
    console.log(`0 passed, ${checks.length} failed`);
    return 2;
  }
  totpSelfTest();
  axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (SCREENSHOT_DIR) await mkdir(SCREENSHOT_DIR, { recursive: true });

  let passed = 0;
  let failed = 0;
  let browser = null;
  let showServerLog = VERBOSE;

  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tongban-browser-'));
  try {
    const port = await freePort();
    const baseURL = `http://127.0.0.1:${port}`;
    serverProc = startServer(port);
    let setupError = null;
    const t0 = Date.now();
    try {
      await waitReady(serverProc, baseURL);
      process.stdout.write(`# server ready at ${baseURL} after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    } catch (err) {
      setupError = oneLine(err.message);
    }

    for (const { name, fn } of checks) {
      // TONGBAN_BROWSER_ONLY=text runs only the checks whose name contains it.
      if (process.env.TONGBAN_BROWSER_ONLY && !name.includes(process.env.TONGBAN_BROWSER_ONLY)) continue;
      if (setupError) {
        console.log(`not ok - ${name}: setup failed: ${setupError}`);
        failed++;
        continue;
      }
      const context = await browser.newContext({ baseURL, bypassCSP: true });
      context.setDefaultTimeout(ACTION_TIMEOUT_MS);
      context.setDefaultNavigationTimeout(ACTION_TIMEOUT_MS);
      const page = await context.newPage();
      const pageErrors = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      try {
        await fn({ page, context });
        console.log(`ok - ${name}`);
        passed++;
      } catch (err) {
        let reason = err instanceof CheckError ? err.message : `${err.name}: ${err.message}`;
        if (!(err instanceof CheckError)) {
          try {
            reason += ` (${await describePage(page)})`;
          } catch {}
        }
        if (pageErrors.length) reason += ` [page errors: ${pageErrors.join('; ')}]`;
        console.log(`not ok - ${name}: ${oneLine(reason)}`);
        failed++;
        if (SCREENSHOT_DIR) {
          const file = path.join(SCREENSHOT_DIR, `${checks.findIndex((c) => c.name === name) + 1}.png`);
          try {
            await page.screenshot({ path: file, fullPage: true });
            process.stdout.write(`# screenshot: ${file}\n`);
          } catch {}
        }
      } finally {
        await context.close().catch(() => {});
      }
    }
    if (failed > 0) showServerLog = true;
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (serverProc) {
      await stopServer(serverProc).catch(() => {});
      if (showServerLog) {
        const tail = serverProc.log.tail();
        if (tail.length) {
          process.stderr.write('# --- last lines of the server log ---\n');
          for (const l of tail) process.stderr.write(`# ${l}\n`);
        }
      }
    }
    await rm(dataDir, { recursive: true, force: true }).catch(() => {});
    dataDir = null;
  }

  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed === checks.length ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    emergencyCleanup();
    console.log(`0 passed, ${checks.length} failed`);
    process.exitCode = 1;
  },
);
