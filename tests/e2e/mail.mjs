// Just enough RFC 5322 / MIME to read the mails the capturing SMTP server
// wrote: headers (unfolded), multipart bodies, quoted-printable and base64
// transfer encodings, UTF-8 text.

import fs from 'node:fs/promises';
import path from 'node:path';

// A message (or MIME part) from its raw bytes.
export function parseMessage(raw) {
  const s = Buffer.isBuffer(raw) ? raw.toString('latin1') : raw;
  const end = /\r?\n\r?\n/.exec(s);
  const head = end ? s.slice(0, end.index) : s;
  const body = end ? s.slice(end.index + end[0].length) : '';
  const headers = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      headers[headers.length - 1][1] += line;        // unfold: drop only the line break
    } else {
      const colon = line.indexOf(':');
      if (colon > 0) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
    }
  }
  return {
    headers,
    body,
    header(name) {
      const h = headers.find(([n]) => n === name.toLowerCase());
      return h ? h[1] : undefined;
    },
    headerAll(name) {
      return headers.filter(([n]) => n === name.toLowerCase()).map(([, v]) => v);
    },
  };
}

// Quoted-printable (RFC 2045 6.7) to bytes: soft line breaks go, =XX become bytes.
export function decodeQuotedPrintable(text) {
  // trailing blanks were added in transport (rule 3); then the soft breaks go
  const s = text.replace(/[ \t]+(?=\r?\n|$)/g, '').replace(/=\r?\n/g, '');
  const out = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3d && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(c & 0xff);
    }
  }
  return Buffer.from(out);
}

function param(value, name) {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(value || '');
  return m ? (m[1] ?? m[2]) : undefined;
}

// The decoded text of a part whose type matches `want` (default text/plain),
// looking into multiparts; undefined when there is none.
export function textOf(msg, want = 'text/plain') {
  const type = (msg.header('content-type') || 'text/plain').split(';')[0].trim().toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = param(msg.header('content-type'), 'boundary');
    if (!boundary) throw new Error('multipart without boundary');
    const chunks = msg.body.split(new RegExp(`(?:^|\\r?\\n)--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // chunks[0] is the preamble; a chunk starting with "--" is the end
    for (const chunk of chunks.slice(1)) {
      if (chunk.startsWith('--')) break;
      const t = textOf(parseMessage(chunk.replace(/^[ \t]*\r?\n/, '')), want);
      if (t !== undefined) return t;
    }
    return undefined;
  }
  if (type !== want) return undefined;
  const cte = (msg.header('content-transfer-encoding') || '7bit').trim().toLowerCase();
  let bytes;
  if (cte === 'quoted-printable') bytes = decodeQuotedPrintable(msg.body);
  else if (cte === 'base64') bytes = Buffer.from(msg.body.replace(/\s+/g, ''), 'base64');
  else bytes = Buffer.from(msg.body, 'latin1');
  const charset = (param(msg.header('content-type'), 'charset') || 'utf-8').toLowerCase();
  return new TextDecoder(charset === 'us-ascii' ? 'utf-8' : charset).decode(bytes);
}

// The mails in `dir` for envelope recipient `to`, oldest first.
export async function mailsTo(dir, to) {
  let names;
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.eml') && !n.startsWith('.')).sort();
  } catch {
    return [];
  }
  const found = [];
  for (const name of names) {
    const raw = await fs.readFile(path.join(dir, name));
    const msg = parseMessage(raw);
    if (msg.headerAll('x-envelope-to').some((v) => v.toLowerCase() === `<${to.toLowerCase()}>`)) {
      msg.file = path.join(dir, name);
      found.push(msg);
    }
  }
  return found;
}

// Waits for the first mail to `to` that `accept` likes and that is not in `seen` (file names).
export async function waitForMail(dir, to, { accept = () => true, seen = new Set(), timeoutMs = 15000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const msg of await mailsTo(dir, to)) {
      if (!seen.has(msg.file) && accept(msg)) {
        seen.add(msg.file);
        return msg;
      }
    }
    if (Date.now() > deadline) throw new Error(`no mail to ${to} arrived in ${dir} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
