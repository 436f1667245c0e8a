#!/usr/bin/env node
// What the proof-of-work of [antibot] pow = on costs a visitor: the
// reference site's own solver (examples/website/public/antibot.js) in
// headless Chromium, on challenges whose number is maxnumber (the worst
// case; the number is uniform from 0 to maxnumber, so a visitor waits half
// of this on average).  Each run is one page, one form submitted without
// a prior touch, so that solving starts at the submit; the time is the
// solver's own ("took" in the payload it sends).  Then the same under
// Chromium's CPU throttling (DevTools' "4x slowdown", Lighthouse's stand-in
// for a mid-range phone).  Not a test: nothing here fails on time.
//
// Usage: node bench/pow-browser.mjs [MAXNUMBER] [RUNS]
// Needs tests/e2e's npm package (npm ci there) and /usr/bin/chromium.
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/e2e/package.json'));
const { chromium } = require('playwright-core');
const SCRIPT = fs.readFileSync(path.join(here, '../examples/website/public/antibot.js'));
const MAXNUMBER = Number(process.argv[2] || 100000);
const RUNS = Number(process.argv[3] || 5);

function challenge(number) {
  const salt = `${crypto.randomBytes(12).toString('hex')}?expires=${Math.floor(Date.now() / 1000) + 600}&`;
  const c = crypto.createHash('sha256').update(salt + number).digest('hex');
  return { algorithm: 'SHA-256', challenge: c, maxnumber: MAXNUMBER, salt, signature: '0'.repeat(64) };
}

const esc = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
let resolveTook;
const server = http.createServer((req, res) => {
  if (req.url === '/antibot.js') {
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    return res.end(SCRIPT);
  }
  if (req.method === 'POST') {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const p = JSON.parse(Buffer.from(new URLSearchParams(body).get('altcha'), 'base64').toString());
      resolveTook(p);
      res.end('ok');
    });
    return undefined;
  }
  res.writeHead(200, { 'Content-Type': 'text/html' });
  return res.end(`<!doctype html><form method="post" data-pow="on" data-challenge="${esc(JSON.stringify(challenge(MAXNUMBER)))}"
 data-challenge-ttl="600" data-challenge-url="/c" data-checking="checking" data-failed="failed" data-unsupported="no">
<input type="hidden" name="altcha"><p class="pow-status" hidden></p><button type="submit">go</button></form>
<script src="/antibot.js"></script>`);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'], headless: true });
const results = {};
for (const [label, throttle] of [['desktop', 1], ['4x CPU slowdown', 4]]) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await browser.newPage();
    if (throttle > 1) {
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: throttle });
    }
    await page.goto(url);
    const got = new Promise((r) => { resolveTook = r; });
    await page.evaluate(() => document.querySelector('form').requestSubmit());
    const p = await got;
    if (p.number !== MAXNUMBER) throw new Error(`solved ${p.number}, expected ${MAXNUMBER}`);
    times.push(p.took);
    await page.close();
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  results[label] = { runs_ms: times, median_ms: median, hashes_per_s: Math.round(MAXNUMBER / (median / 1000)) };
  console.log(`${label}: ${MAXNUMBER} hashes (worst case) median ${median} ms [${times.join(', ')}], ${results[label].hashes_per_s} hashes/s; average visitor ~${Math.round(median / 2)} ms`);
}
await browser.close();
server.close();
console.log(JSON.stringify({ maxnumber: MAXNUMBER, chromium: (await import('node:child_process')).execFileSync(process.env.CHROMIUM || '/usr/bin/chromium', ['--version']).toString().trim(), results }));
