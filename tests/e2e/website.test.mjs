#!/usr/bin/env node
// End-to-end test of the reference website (examples/website/): the real
// newsletterd, a capturing SMTP server (scripts/smtp-capture, Debian's
// aiosmtpd), PHP's built-in web server and headless Chromium driven by
// playwright-core.  A visitor signs up, finds the mail, opens its link (which
// must confirm nothing), presses the button; then duplicate, invalid address,
// expired link, a newsletter's one-click unsubscribe, the archive (an issue's
// script must not run in it), the daemon down and hung; with [antibot] pow =
// on a sign-up whose proof of work the browser solves, a bot's post without
// one refused, and the page without JavaScript.  Every state page is
// photographed (PNG) into $E2E_ARTIFACTS.
//
// Usage: node tests/e2e/website.test.mjs [BUILD_DIR]
// Environment (all optional):
//   NEWSLETTERD    the daemon        (default BUILD_DIR/daemon/newsletterd)
//   NEWSLETTERCTL  the admin CLI     (default: next to NEWSLETTERD)
//   BUILD_ROOT     BUILD_DIR when not given as argument (default ./build)
//   E2E_ARTIFACTS  screenshots, mails, logs (default BUILD_DIR/e2e-artifacts)
//   CHROMIUM       the browser       (default /usr/bin/chromium)
//   PHP            php-cli           (default php)

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseMessage, textOf, waitForMail, mailsTo } from './mail.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sourceRoot = path.resolve(here, '../..');
const buildRoot = path.resolve(process.argv[2] || process.env.BUILD_ROOT || path.join(sourceRoot, 'build'));
const NEWSLETTERD = path.resolve(process.env.NEWSLETTERD || path.join(buildRoot, 'daemon/newsletterd'));
const NEWSLETTERCTL = path.resolve(process.env.NEWSLETTERCTL || path.join(path.dirname(NEWSLETTERD), 'newsletterctl'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PHP = process.env.PHP || 'php';
const PYTHON = '/usr/bin/python3';          // Debian's, with python3-aiosmtpd
const DOCROOT = path.join(sourceRoot, 'examples/website/public');
const ARTIFACTS = path.resolve(process.env.E2E_ARTIFACTS || path.join(buildRoot, 'e2e-artifacts'));
const SHOTS = path.join(ARTIFACTS, 'screenshots');
const MAILDIR = path.join(ARTIFACTS, 'mail');
const LOGS = path.join(ARTIFACTS, 'logs');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const STATES = ['pending', 'confirmed', 'expired', 'duplicate', 'error', 'unsubscribed'];
// what must never reach a visitor
const PHP_NOISE = /(Warning|Notice|Deprecated|Fatal error|Parse error|Uncaught|Stack trace)\b.*?(\.php| on line )/i;

const children = [];
let workdir;
let browser;
let failed = false;
const started = Date.now();

function log(...a) {
  console.log(...a);
}

// ---- processes ----

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function start(name, cmd, args, opts = {}) {
  const logFile = path.join(LOGS, `${name}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', out], ...opts });
  child.stdout.on('data', (d) => fs.appendFileSync(logFile, d));
  child.name = name;
  child.logFile = logFile;
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', (e) => fs.appendFileSync(logFile, `spawn error: ${e.message}\n`));
  children.push(child);
  return child;
}

async function stop(child, timeoutMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await child.exited;
  clearTimeout(t);
}

async function until(what, fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// One request on a newsletterd socket, its answer.
function ask(socketPath, request) {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socketPath);
    let buf = '';
    c.setTimeout(5000, () => c.destroy(new Error('socket timeout')));
    c.on('connect', () => c.write(JSON.stringify(request) + '\n'));
    c.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        c.end();
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    c.on('error', reject);
  });
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60000, ...opts }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

async function startDaemon(name, { port, smtpPort, confirmTtl, resendInterval, extra = '' }) {
  const dir = path.join(workdir, name);
  await fsp.mkdir(dir);
  const conf = path.join(dir, 'newsletterd.conf');
  await fsp.writeFile(conf, `# written by tests/e2e/website.test.mjs
[daemon]
public_socket = ${dir}/public.sock
admin_socket  = ${dir}/admin.sock
database      = ${dir}/newsletterd.db
log_level     = debug

[smtp]
url             = smtp://127.0.0.1:${smtpPort}
starttls        = off
from            = E2E Newsletter <newsletter@example.org>
max_connections = 2
timeout         = 10s
retry_initial   = 1s
retry_max       = 2s
give_up_after   = 1h

[subscription]
confirm_url       = http://127.0.0.1:${port}/confirm?token={token}
unsubscribe_url   = http://127.0.0.1:${port}/unsubscribe?token={token}
confirm_ttl       = ${confirmTtl}
resend_interval   = ${resendInterval}
expired_retention = 1d
lists             = default
${extra}`);
  const child = start(`newsletterd-${name}`, NEWSLETTERD, ['-c', conf], { cwd: dir });
  const socket = `${dir}/public.sock`;
  await until(`newsletterd ${name}`, async () => {
    if (child.exitCode !== null) throw new Error(`newsletterd ${name} exited with ${child.exitCode}`);
    return (await ask(socket, { op: 'ping' })).state === 'ok';
  });
  return { name, conf, socket, child, dir };
}

async function startSite(name, port, socket, env = {}) {
  const child = start(`php-${name}`, PHP, ['-S', `127.0.0.1:${port}`, '-t', DOCROOT], {
    env: { ...process.env, NEWSLETTERD_SOCKET: socket, ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  await until(`php -S ${name}`, async () => (await fetch(url + '/style.css')).ok);
  return { name, url, child };
}

// ---- browser checks ----

// The page shows exactly one state element, and it is `state`.
async function expectState(page, state, { lang } = {}) {
  const marked = page.locator('[data-state]');
  assert.equal(await marked.count(), 1, `one element with data-state on ${page.url()}`);
  assert.equal(await marked.getAttribute('data-state'), state, `data-state on ${page.url()}`);
  assert.ok(await marked.isVisible(), 'the state element is visible');
  assert.equal(await page.locator('h1').count(), 1, 'one h1');
  assert.ok((await page.locator('h1').innerText()).trim().length > 0, 'a heading');
  if (lang) assert.equal(await page.getAttribute('html', 'lang'), lang, `html lang on ${page.url()}`);
  const text = await page.locator('body').innerText();
  assert.doesNotMatch(text, PHP_NOISE, 'no PHP message on the page');
  assert.ok(await page.evaluate(() => getComputedStyle(document.body).display === 'flex'),
    'the style sheet is applied');
}

const shotsTaken = [];
async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const st = await fsp.stat(file);
  assert.ok(st.size > 1000, `screenshot ${name} is not empty`);
  shotsTaken.push(name);
}

// Only the site itself may be contacted by its pages: no CDN, no fonts.
function watchRequests(page, origins) {
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.protocol === 'data:' || u.protocol === 'about:') return;
    if (!origins.some((o) => req.url().startsWith(o))) {
      page.foreignRequests = (page.foreignRequests || []).concat(req.url());
    }
  });
  page.on('response', (res) => {
    if (res.url().endsWith('/style.css') && res.status() !== 200) {
      page.foreignRequests = (page.foreignRequests || []).concat(`${res.url()} answered ${res.status()}`);
    }
  });
}

async function signUp(page, siteUrl, { email, name, query = '' }) {
  await page.goto(`${siteUrl}/${query}`);
  assert.equal(await page.locator('input[type=email][name=email]').count(), 1, 'one email input');
  assert.equal(await page.locator('form button[type=submit]').count(), 1, 'one submit button');
  await page.fill('input[name=email]', email);
  if (name) await page.fill('input[name=name]', name);
  await page.check('input[type=checkbox][name=consent]');
  await Promise.all([page.waitForNavigation(), page.click('form button[type=submit]')]);
}

function confirmLink(msg, siteUrl) {
  const text = textOf(msg);
  assert.ok(text, 'the confirmation mail has a text part');
  const m = new RegExp(`${siteUrl.replace(/[.]/g, '\\.')}/confirm\\?token=[A-Za-z0-9_-]+`).exec(text);
  assert.ok(m, `a confirmation link to ${siteUrl} in the mail:\n${text}`);
  return m[0];
}

function unsubscribeLink(msg) {
  const header = msg.header('list-unsubscribe');
  assert.ok(header, 'the newsletter has List-Unsubscribe');
  assert.equal(msg.header('list-unsubscribe-post'), 'List-Unsubscribe=One-Click', 'List-Unsubscribe-Post');
  const m = /<(https?:[^>]+)>/.exec(header);
  assert.ok(m, `an http(s) URL in List-Unsubscribe: ${header}`);
  return m[1].replace(/\s+/g, '');
}

// ---- the test ----

let stepNo = 0;
const pages = new Set();
async function step(name, fn) {
  stepNo++;
  const t0 = Date.now();
  try {
    await fn();
    log(`ok ${stepNo} - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    log(`not ok ${stepNo} - ${name}`);
    for (const p of pages) {
      try {
        if (!p.isClosed()) await p.screenshot({ path: path.join(SHOTS, `FAILED-step${stepNo}-${p.label}.png`), fullPage: true });
      } catch { /* the browser may be gone */ }
    }
    throw e;
  }
}

async function main() {
  for (const [what, file] of [['newsletterd', NEWSLETTERD], ['newsletterctl', NEWSLETTERCTL], ['chromium', CHROMIUM], ['python3', PYTHON]]) {
    if (!fs.existsSync(file)) throw new Error(`${what} not found at ${file}`);
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed: run "npm ci" in ${here} (${e.message})`);
  }

  for (const d of [SHOTS, MAILDIR, LOGS]) await fsp.rm(d, { recursive: true, force: true });
  for (const d of [SHOTS, MAILDIR, LOGS]) await fsp.mkdir(d, { recursive: true });
  // sockets need short paths: a directory under /tmp, not the build directory
  workdir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nl-e2e-'));

  const [smtpPort, portA, portB, portC, portD] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);

  // the capturing SMTP server
  const smtp = start('smtp-capture', PYTHON, [path.join(sourceRoot, 'scripts/smtp-capture'), '--port', String(smtpPort), MAILDIR]);
  await until('smtp-capture', () => fs.readFileSync(smtp.logFile, 'utf8').includes('capturing'));

  // A: the main daemon; B: confirmation links expire after 2 s; D: sign-ups
  // need a proof of work solved in the browser (the default difficulty)
  const [dA, dB, dD] = await Promise.all([
    startDaemon('main', { port: portA, smtpPort, confirmTtl: '30d', resendInterval: '1s' }),
    startDaemon('short', { port: portB, smtpPort, confirmTtl: '2s', resendInterval: '1s' }),
    startDaemon('pow', { port: portD, smtpPort, confirmTtl: '30d', resendInterval: '1s', extra: '\n[antibot]\npow = on\n' }),
  ]);
  // C: a "daemon" that accepts and never answers, for the site's timeout
  const silentSocket = path.join(workdir, 'silent.sock');
  const silent = net.createServer(() => {}).listen(silentSocket);
  const [siteA, siteB, siteC, siteD] = await Promise.all([
    startSite('main', portA, dA.socket),
    startSite('short', portB, dB.socket),
    startSite('silent', portC, silentSocket, { NEWSLETTERD_TIMEOUT: '1' }),
    startSite('pow', portD, dD.socket),
  ]);
  const origins = [siteA.url, siteB.url, siteC.url, siteD.url];

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  const newPage = async (label, options) => {
    const ctx = await browser.newContext(options);
    const page = await ctx.newPage();
    page.label = label;
    page.setDefaultTimeout(10000);
    watchRequests(page, origins);
    pages.add(page);
    return page;
  };
  // a German desktop browser, an English phone
  const de = await newPage('de', { locale: 'de-DE', viewport: { width: 1000, height: 800 } });
  const en = await newPage('en', { locale: 'en-GB', viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true });

  const anna = 'anna.e2e@example.org';
  const ben = 'Ben.E2E@Example.org';
  const carl = 'carl.e2e@example.org';
  const seen = new Set();
  let annaLink;
  let benLink;

  await step('the form (de), sign-up → pending', async () => {
    await de.goto(siteA.url + '/');
    assert.equal(await de.getAttribute('html', 'lang'), 'de');
    assert.equal(await de.locator('[data-state]').count(), 0, 'the form is no state page');
    for (const sel of ['label[for=email]', 'label[for=name]', 'label[for=consent]']) {
      assert.ok(await de.locator(sel).isVisible(), `${sel} visible`);
    }
    await shot(de, 'form-de');
    // keyboard: a sensible focus order, the honeypot out of it, a visible focus ring
    const order = [];
    for (let i = 0; i < 7; i++) {
      await de.keyboard.press('Tab');
      order.push(await de.evaluate(() => {
        const e = document.activeElement;
        const ring = getComputedStyle(e).outlineStyle !== 'none' || getComputedStyle(e).boxShadow !== 'none';
        return `${e.id || e.className || e.tagName.toLowerCase()}${ring ? '' : ' (no focus ring)'}`;
      }));
    }
    assert.deepEqual(order, ['skip', 'brand', 'a', 'email', 'name', 'consent', 'button'], 'focus order');
    await shot(de, 'form-focus-de');
    await signUp(de, siteA.url, { email: anna, name: 'Anna Beispiel' });
    await expectState(de, 'pending', { lang: 'de' });
    await shot(de, 'pending-de');
  });

  await step('the confirmation mail (quoted-printable) carries the link', async () => {
    const msg = await waitForMail(MAILDIR, anna, { seen });
    assert.equal((msg.header('content-transfer-encoding') || '').toLowerCase(), 'quoted-printable');
    annaLink = confirmLink(msg, siteA.url);
  });

  await step('opening the link confirms nothing; the button does', async () => {
    const token = new URL(annaLink).searchParams.get('token');
    // a mail scanner fetching the link first
    const scan = await fetch(annaLink);
    assert.equal(scan.status, 200);
    assert.match(await scan.text(), /data-state="pending"/);
    await de.goto(annaLink);
    await expectState(de, 'pending', { lang: 'de' });
    assert.ok(await de.locator('form[method=post] button[type=submit]').isVisible(), 'a confirm button');
    assert.equal((await ask(dA.socket, { op: 'check', token })).state, 'pending', 'still pending after two GETs');
    await shot(de, 'confirm-de');
    await Promise.all([de.waitForNavigation(), de.click('form[method=post] button[type=submit]')]);
    await expectState(de, 'confirmed', { lang: 'de' });
    assert.ok(!de.url().includes('token='), 'the POST answered in place (no redirect to the link)');
    await shot(de, 'confirmed-de');
    assert.equal((await ask(dA.socket, { op: 'check', token })).state, 'confirmed');
    // the link again: already confirmed
    await de.goto(annaLink);
    await expectState(de, 'confirmed');
  });

  await step('the consent record has the form\'s wording, the ip and the user agent', async () => {
    const { stdout } = await run(NEWSLETTERCTL, ['-c', dA.conf, 'export', anna], { cwd: dA.dir });
    const record = JSON.stringify(JSON.parse(stdout));
    const ua = await de.evaluate(() => navigator.userAgent);
    assert.ok(record.includes('"v1-de"'), `consent_version in ${record}`);
    assert.ok(record.includes('Ich möchte den Newsletter per E-Mail erhalten.'), 'consent_text');
    assert.ok(record.includes('"127.0.0.1"'), 'the visitor\'s ip');
    assert.ok(record.includes(JSON.stringify(ua)), 'the visitor\'s user agent');
    assert.ok(record.includes('Anna Beispiel'), 'the name');
  });

  await step('the same address again → duplicate', async () => {
    await signUp(de, siteA.url, { email: anna.toUpperCase() });
    await expectState(de, 'duplicate', { lang: 'de' });
    await shot(de, 'duplicate-de');
  });

  await step('an address the browser takes but RFC 5321 does not → error', async () => {
    await signUp(de, siteA.url, { email: 'a..b@example.org' });
    await expectState(de, 'error', { lang: 'de' });
    assert.equal(await de.inputValue('input[name=email]'), 'a..b@example.org', 'the form again, to correct the address');
    await shot(de, 'error-invalid-email-de');
  });

  await step('English (Accept-Language, phone width): sign-up, link, confirm', async () => {
    await en.goto(siteA.url + '/');
    assert.equal(await en.getAttribute('html', 'lang'), 'en');
    const overflow = await en.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(overflow, false, 'no horizontal scrolling at 390 px');
    await shot(en, 'form-en-mobile');
    await signUp(en, siteA.url, { email: ben, name: 'Ben' });
    await expectState(en, 'pending', { lang: 'en' });
    await shot(en, 'pending-en-mobile');
    const msg = await waitForMail(MAILDIR, ben, { seen });
    benLink = confirmLink(msg, siteA.url);
    await en.goto(benLink);
    await expectState(en, 'pending', { lang: 'en' });
    await shot(en, 'confirm-en-mobile');
    await Promise.all([en.waitForNavigation(), en.click('form[method=post] button[type=submit]')]);
    await expectState(en, 'confirmed', { lang: 'en' });
    await shot(en, 'confirmed-en-mobile');
    await signUp(en, siteA.url, { email: ben });
    await expectState(en, 'duplicate', { lang: 'en' });
    await shot(en, 'duplicate-en-mobile');
    await signUp(en, siteA.url, { email: 'a..b@example.org' });
    await expectState(en, 'error', { lang: 'en' });
    await shot(en, 'error-invalid-email-en-mobile');
  });

  await step('?lang=en wins over the browser and is kept through the form', async () => {
    await de.goto(siteA.url + '/?lang=en');
    assert.equal(await de.getAttribute('html', 'lang'), 'en');
    await de.fill('input[name=email]', 'a..b@example.org');
    await de.check('input[name=consent]');
    await Promise.all([de.waitForNavigation(), de.click('form button[type=submit]')]);
    await expectState(de, 'error', { lang: 'en' });
    await shot(de, 'error-invalid-email-en');
    // the language link
    await de.click('nav a[hreflang=de]');
    assert.equal(await de.getAttribute('html', 'lang'), 'de');
  });

  await step('the form checks consent and the honeypot sends nothing', async () => {
    const form = (fields) => fetch(siteA.url + '/', { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
    let res = await form({ email: 'no-consent.e2e@example.org', lang: 'de' });
    assert.equal(res.status, 400);
    let body = await res.text();
    assert.match(body, /aria-invalid="true"/);
    assert.doesNotMatch(body, /data-state=/);
    res = await form({ email: 'bot.e2e@example.org', consent: 'yes', website: 'http://spam.example', lang: 'de' });
    assert.equal(res.status, 200);
    body = await res.text();
    assert.match(body, /data-state="pending"/, 'the honeypot is answered like a sign-up');
    // markup injection is shown as text
    res = await form({ email: '<b>x</b>@example.org', name: '"><script>alert(1)</script>', consent: 'yes', lang: 'de' });
    body = await res.text();
    assert.doesNotMatch(body, /<script>|<b>x<\/b>/, 'input is escaped');
  });

  await step('a link after confirm_ttl → expired, with a way to sign up again', async () => {
    await signUp(de, siteB.url, { email: carl });
    await expectState(de, 'pending');
    const msg = await waitForMail(MAILDIR, carl, { seen });
    const link = confirmLink(msg, siteB.url);
    await new Promise((r) => setTimeout(r, 3000));             // confirm_ttl = 2s
    await de.goto(link);
    await expectState(de, 'expired', { lang: 'de' });
    assert.equal(await de.locator('form[method=post]').count(), 0, 'no confirm button');
    await shot(de, 'expired-de');
    await en.goto(link);
    await expectState(en, 'expired', { lang: 'en' });
    await shot(en, 'expired-en-mobile');
    await de.goto(link + '&lang=en');
    await expectState(de, 'expired', { lang: 'en' });
    await shot(de, 'expired-en');
    // the way back: sign up again
    await Promise.all([de.waitForNavigation(), de.click('[data-state=expired] a.button')]);
    assert.equal(await de.locator('input[type=email][name=email]').count(), 1, 'the form');
    await signUp(de, siteB.url, { email: carl });
    await expectState(de, 'pending');
    await waitForMail(MAILDIR, carl, { seen });                 // a new mail
  });

  let annaUnsub;
  let benUnsub;
  await step('a newsletter is sent (newsletterctl) with List-Unsubscribe', async () => {
    const text = path.join(workdir, 'issue.txt');
    await fsp.writeFile(text, 'Hallo,\n\ndas ist die erste Ausgabe. Grüße!\n');
    const { stdout } = await run(NEWSLETTERCTL, ['-c', dA.conf, 'send', '--subject', 'E2E Ausgabe 1', '--text', text, '--wait'], { cwd: dA.dir });
    assert.match(stdout.split('\n')[0], /^\S+$/, 'the issue id on the first line');
    const isNewsletter = (m) => m.header('list-unsubscribe') !== undefined;
    annaUnsub = unsubscribeLink(await waitForMail(MAILDIR, anna, { seen, accept: isNewsletter }));
    benUnsub = unsubscribeLink(await waitForMail(MAILDIR, ben, { seen, accept: isNewsletter }));
    assert.ok(annaUnsub.startsWith(siteA.url + '/unsubscribe?token='), annaUnsub);
  });

  await step('RFC 8058 one-click POST → 200, no redirect, unsubscribed', async () => {
    const res = await fetch(annaUnsub, {
      method: 'POST',
      body: new URLSearchParams({ 'List-Unsubscribe': 'One-Click' }),
      redirect: 'manual',
    });
    assert.equal(res.status, 200, 'one-click answers 200');
    assert.equal(res.headers.get('location'), null, 'no redirect');
    assert.equal(res.headers.get('set-cookie'), null, 'no cookie');
    assert.match(await res.text(), /data-state="unsubscribed"/);
    // the daemon agrees: a new sign-up of the address starts over
    const again = await ask(dA.socket, { op: 'subscribe', email: anna });
    assert.equal(again.state, 'pending', 'after one-click the address signs up anew');
  });

  await step('the unsubscribe link in a browser: GET shows a button, POST unsubscribes', async () => {
    await en.goto(benUnsub);
    assert.equal(await en.locator('[data-state]').count(), 0, 'GET changes nothing and shows no state');
    assert.ok(await en.locator('form[method=post] button[type=submit]').isVisible(), 'an unsubscribe button');
    await shot(en, 'unsubscribe-form-en-mobile');
    const again = await ask(dA.socket, { op: 'subscribe', email: ben });
    assert.equal(again.state, 'duplicate', 'the GET unsubscribed nobody');
    await Promise.all([en.waitForNavigation(), en.click('form[method=post] button[type=submit]')]);
    await expectState(en, 'unsubscribed', { lang: 'en' });
    await shot(en, 'unsubscribed-en-mobile');
    // German, desktop, the same link again: still unsubscribed
    await de.goto(benUnsub);
    await shot(de, 'unsubscribe-form-de');
    await Promise.all([de.waitForNavigation(), de.click('form[method=post] button[type=submit]')]);
    await expectState(de, 'unsubscribed', { lang: 'de' });
    await shot(de, 'unsubscribed-de');
    await de.goto(benUnsub + '&lang=en');
    await Promise.all([de.waitForNavigation(), de.click('form[method=post] button[type=submit]')]);
    await expectState(de, 'unsubscribed', { lang: 'en' });
    await shot(de, 'unsubscribed-en');
  });

  await step('the archive: the issue in a sandboxed frame, its script never runs; the feed', async () => {
    const text = path.join(workdir, 'archive.txt');
    const html = path.join(workdir, 'archive.html');
    await fsp.writeFile(text, 'Hallo {{name}},\n\ndas Archiv-Stück.\n');
    await fsp.writeFile(html, '<html><body style="font-family:sans-serif"><h1>Archiv-Stück</h1>'
      + '<p id="hello">Hallo {{name}}</p>'
      + '<script>document.body.setAttribute("data-ran", "yes"); alert("ran"); '
      + 'try { parent.document.title = "owned"; } catch (e) {}</script></body></html>\n');
    const { stdout } = await run(NEWSLETTERCTL, ['-c', dA.conf, 'send', '--subject', 'E2E Archiv <1>', '--text', text,
      '--html', html, '--wait'], { cwd: dA.dir });
    const id = Number(stdout.split('\n')[0]);
    assert.ok(id > 0, stdout);
    await until('the issue in the archive', async () =>
      (await ask(dA.socket, { op: 'archive' })).issues.some((i) => i.id === id));
    // the sign-up page links the archive; the archive lists the issue
    await de.goto(siteA.url + '/');
    await Promise.all([de.waitForNavigation(), de.click('a[href="/archive"]')]);
    assert.ok(await de.locator(`[data-archive-issue="${id}"]`).isVisible(), 'the issue is listed');
    await shot(de, 'archive-list-de');
    let dialogs = 0;
    de.on('dialog', (d) => { dialogs++; d.dismiss().catch(() => {}); });
    await Promise.all([de.waitForNavigation(), de.click(`[data-archive-issue="${id}"] a`)]);
    assert.equal(await de.locator('[data-state="archive"]').count(), 1, 'data-state="archive"');
    assert.equal(await de.locator('h1').first().textContent(), 'E2E Archiv <1>');
    const frame = de.locator('iframe.issue-frame');
    const sandbox = await frame.getAttribute('sandbox');
    assert.ok(sandbox !== null && !sandbox.includes('allow-scripts'), `sandbox="${sandbox}"`);
    const inner = de.frameLocator('iframe.issue-frame');
    assert.equal(await inner.locator('#hello').textContent(), 'Hallo ', 'no name in the archive copy');
    await de.waitForTimeout(300);
    assert.equal(await inner.locator('body').getAttribute('data-ran'), null, 'the script did not run');
    assert.equal(dialogs, 0, 'no alert');
    assert.notEqual(await de.title(), 'owned');
    await shot(de, 'archive-issue-de');
    await en.goto(siteA.url + `/archive/${id}?lang=en`);
    assert.equal(await en.getAttribute('html', 'lang'), 'en');
    await shot(en, 'archive-issue-en-mobile');
    const feed = await fetch(siteA.url + '/archive/feed');
    assert.equal(feed.status, 200);
    assert.match(feed.headers.get('content-type'), /^application\/atom\+xml/);
    assert.match(await feed.text(), /<title>E2E Archiv &lt;1&gt;<\/title>/);
  });

  await step('broken and unknown links → error', async () => {
    await de.goto(siteA.url + '/confirm');
    await expectState(de, 'error', { lang: 'de' });
    await shot(de, 'error-no-token-de');
    await de.goto(siteA.url + '/confirm?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await expectState(de, 'error', { lang: 'de' });
    await shot(de, 'error-unknown-token-de');
    await en.goto(siteA.url + '/unsubscribe?token=%3Cscript%3E');
    await expectState(en, 'error', { lang: 'en' });
  });

  await step('the daemon down → the error page, no PHP warning', async () => {
    await stop(dB.child);
    assert.deepEqual(await dB.child.exited, { code: 0, signal: null }, 'newsletterd ends cleanly on SIGTERM');
    await signUp(de, siteB.url, { email: 'down.e2e@example.org' });
    await expectState(de, 'error', { lang: 'de' });
    assert.match(await de.locator('[data-state=error]').innerText(), /nicht erreichbar/);
    await shot(de, 'error-daemon-down-de');
    await en.goto(siteB.url + '/confirm?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await expectState(en, 'error', { lang: 'en' });
    assert.match(await en.locator('[data-state=error]').innerText(), /cannot be reached/);
    await shot(en, 'error-daemon-down-en-mobile');
    const res = await fetch(siteB.url + '/unsubscribe?token=abc', { method: 'POST', body: new URLSearchParams({ 'List-Unsubscribe': 'One-Click' }) });
    assert.equal(res.status, 503, 'one-click with the daemon down: 503, so that it is tried again');
    // and one that accepts but never answers: the site gives up after NEWSLETTERD_TIMEOUT
    const t0 = Date.now();
    await signUp(de, siteC.url, { email: 'hung.e2e@example.org' });
    await expectState(de, 'error', { lang: 'de' });
    assert.ok(Date.now() - t0 < 8000, 'the site does not wait for ever');
  });

  const dora = 'dora.e2e@example.org';
  await step('pow = on: the browser solves the challenge, the visitor signs up', async () => {
    const page = await newPage('pow', { locale: 'de-DE', viewport: { width: 1000, height: 800 } });
    // what the form sends: the solution, solved in this browser
    let sent = null;
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().startsWith(siteD.url)) sent = new URLSearchParams(req.postData() || '');
    });
    await page.goto(siteD.url + '/');
    assert.equal(await page.locator('form[data-pow=on]').count(), 1, 'the form asks for a proof of work');
    assert.equal(await page.locator('noscript').count(), 1, 'a note for browsers without JavaScript');
    assert.ok(!(await page.locator('.pow-status').isVisible()), 'no puzzle, nothing to do for the visitor');
    await shot(page, 'form-pow-de');
    await page.fill('input[name=email]', dora);
    await page.check('input[type=checkbox][name=consent]');
    await Promise.all([page.waitForNavigation({ timeout: 30000 }), page.click('form button[type=submit]')]);
    await expectState(page, 'pending', { lang: 'de' });
    await shot(page, 'pending-pow-de');
    assert.ok(sent && sent.get('altcha'), 'the form carried a solution');
    const solution = JSON.parse(Buffer.from(sent.get('altcha'), 'base64').toString());
    log(`# solved in the browser: number ${solution.number} in ${solution.took} ms`);
    await waitForMail(MAILDIR, dora, { seen });
    // the daemon took it once: the same solution again is refused
    const again = await ask(dD.socket, { op: 'subscribe', email: 'again.e2e@example.org', altcha: sent.get('altcha') });
    assert.equal(again.error, 'challenge_failed', 'a solution opens one sign-up only');
    // submitted before solving began (no focus, no typing): "checking your browser", then on
    await page.goto(siteD.url + '/?lang=en');
    const navigated = page.waitForNavigation({ timeout: 30000 });
    const shown = await page.evaluate(() => {
      const form = document.querySelector('form[data-pow=on]');
      form.elements.email.value = 'emil.e2e@example.org';
      form.elements.consent.checked = true;
      form.requestSubmit();
      const status = form.querySelector('.pow-status');
      return { visible: !status.hidden, text: status.textContent, disabled: form.querySelector('button').disabled };
    });
    assert.deepEqual(shown, { visible: true, text: 'Checking your browser …', disabled: true });
    await page.screenshot({ path: path.join(SHOTS, 'checking-pow-en.png') }).catch(() => {});
    await navigated;
    await expectState(page, 'pending', { lang: 'en' });
    await waitForMail(MAILDIR, 'emil.e2e@example.org', { seen });
  });

  await step('pow = on: a bot posting the form without a solution is refused', async () => {
    const post = (fields) => fetch(siteD.url + '/', { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
    let res = await post({ email: 'bot1.e2e@example.org', consent: 'yes', lang: 'de' });
    assert.equal(res.status, 400);
    let body = await res.text();
    assert.match(body, /data-state="error"/);
    assert.match(body, /JavaScript/, 'the page says what is missing');
    res = await post({ email: 'bot2.e2e@example.org', consent: 'yes', lang: 'en', altcha: 'eyJmb28iOjF9' });
    assert.equal(res.status, 400);
    body = await res.text();
    assert.match(body, /data-state="error"/);
    assert.match(body, /Checking your browser did not work/);
    // straight to the daemon, as a bot that found the socket's protocol would
    const direct = await ask(dD.socket, { op: 'subscribe', email: 'bot3.e2e@example.org' });
    assert.equal(direct.error, 'challenge_required');
  });

  await step('pow = on, JavaScript off: the page explains that JavaScript is needed', async () => {
    const page = await newPage('pow-nojs', { locale: 'en-GB', javaScriptEnabled: false, viewport: { width: 390, height: 844 } });
    await page.goto(siteD.url + '/');
    const note = page.locator('.pow-note');
    assert.ok(await note.isVisible(), 'the noscript note is shown');
    assert.match(await note.innerText(), /enable JavaScript/);
    await shot(page, 'form-pow-nojs-en-mobile');
    await page.fill('input[name=email]', 'nojs.e2e@example.org');
    await page.check('input[type=checkbox][name=consent]');
    await Promise.all([page.waitForNavigation(), page.click('form button[type=submit]')]);
    await expectState(page, 'error', { lang: 'en' });
    assert.match(await page.locator('[data-state=error]').innerText(), /needs JavaScript/);
    await shot(page, 'error-pow-nojs-en-mobile');
  });

  await step('no foreign requests, no PHP warnings, nothing mailed to the honeypot', async () => {
    for (const p of pages) assert.deepEqual(p.foreignRequests || [], [], `requests of the ${p.label} page`);
    for (const site of [siteA, siteB, siteC, siteD]) {
      const text = await fsp.readFile(site.child.logFile, 'utf8');
      assert.doesNotMatch(text, /PHP (Warning|Notice|Deprecated|Fatal|Parse)/, `${site.child.logFile}`);
    }
    assert.equal((await mailsTo(MAILDIR, 'bot.e2e@example.org')).length, 0, 'no mail for the honeypot');
    for (const bot of ['bot1', 'bot2', 'bot3', 'again', 'nojs']) {
      assert.equal((await mailsTo(MAILDIR, `${bot}.e2e@example.org`)).length, 0, `no mail for ${bot} (pow = on)`);
    }
    for (const state of STATES) {
      assert.ok(shotsTaken.some((n) => n.startsWith(state)), `a screenshot of ${state}`);
    }
  });
  silent.close();
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  await Promise.all(children.map((c) => stop(c).catch(() => {})));
  if (workdir && !failed) await fsp.rm(workdir, { recursive: true, force: true });
}

const watchdog = setTimeout(() => {
  console.error('# the test took over 110 s: giving up');
  failed = true;
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}, 110000);
watchdog.unref();

try {
  await main();
  log(`# all passed in ${((Date.now() - started) / 1000).toFixed(1)} s; ${shotsTaken.length} screenshots in ${SHOTS}`);
} catch (e) {
  failed = true;
  console.error(`# FAILED: ${e.stack || e}`);
  for (const c of children) {
    try {
      const text = fs.readFileSync(c.logFile, 'utf8').split('\n').slice(-25).join('\n');
      console.error(`# --- last lines of ${c.logFile}\n${text}`);
    } catch { /* no log */ }
  }
  if (workdir) console.error(`# sockets, databases and configs kept in ${workdir}`);
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
