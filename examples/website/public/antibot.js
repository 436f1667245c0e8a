/*
 * antibot.js - solves the daemon's proof-of-work challenge in the
 * visitor's browser ([antibot] pow = on), so that the sign-up form needs no
 * captcha and no third party.  The challenge (ALTCHA v1, SHA-256) comes
 * with the form (data-challenge); the browser tries the numbers from 0 up
 * until SHA-256(salt + number) is the challenge, with the Web Crypto API,
 * and sends the answer in the hidden field "altcha" with the form.
 *
 * Solving starts when the visitor first touches the form (a visitor who
 * only reads spends nothing); by the time the address is typed it is done,
 * otherwise the submit shows "checking your browser" until it is.  A
 * challenge older than its lifetime is replaced by a fresh one from
 * challenge/ first.  No external script, no cookie, nothing stored.
 */
(function () {
  'use strict';

  var form = document.querySelector('form[data-pow="on"]');
  if (!form) {
    return;
  }
  var field = form.querySelector('input[name="altcha"]');
  var status = form.querySelector('.pow-status');
  var button = form.querySelector('button[type="submit"]');
  var subtle = window.crypto && window.crypto.subtle;
  var encoder = new TextEncoder();
  var BATCH = 200;              /* digests in flight at once */
  var MARGIN_MS = 15000;        /* a solution this close to its expiry is not sent */
  var ttlMs = (Number(form.getAttribute('data-challenge-ttl')) || 0) * 1000;
  var current = null;           /* {solution: Promise of the payload, until: ms} */

  function bytesOf(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) {
      out[i] = parseInt(hex.substr(2 * i, 2), 16);
    }
    return out;
  }

  function same(buffer, want) {
    var got = new Uint8Array(buffer);
    for (var i = 0; i < want.length; i++) {
      if (got[i] !== want[i]) {
        return false;
      }
    }
    return true;
  }

  /* The number, or null when none up to maxnumber fits. */
  async function solve(ch) {
    var want = bytesOf(ch.challenge);
    for (var from = 0; from <= ch.maxnumber; from += BATCH) {
      var to = Math.min(from + BATCH - 1, ch.maxnumber);
      var jobs = [];
      for (var n = from; n <= to; n++) {
        jobs.push(subtle.digest('SHA-256', encoder.encode(ch.salt + n)));
      }
      var digests = await Promise.all(jobs);
      for (var i = 0; i < digests.length; i++) {
        if (same(digests[i], want)) {
          return from + i;
        }
      }
    }
    return null;
  }

  function begin(ch) {
    var t0 = performance.now();
    var solution = solve(ch).then(function (number) {
      if (number === null) {
        throw new Error('the challenge has no solution');
      }
      return btoa(JSON.stringify({
        algorithm: ch.algorithm, challenge: ch.challenge, number: number,
        salt: ch.salt, signature: ch.signature, took: Math.round(performance.now() - t0),
      }));
    });
    solution.catch(function () {});     /* handled when it is needed */
    current = { solution: solution, until: t0 + ttlMs - MARGIN_MS };
  }

  async function fresh() {
    var res = await fetch(form.getAttribute('data-challenge-url'), { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) {
      throw new Error('challenge/ answered ' + res.status);
    }
    begin(await res.json());
  }

  function show(text) {
    status.textContent = text;
    status.hidden = text === '';
  }

  function start() {
    if (!current && subtle) {
      begin(JSON.parse(form.getAttribute('data-challenge')));
    }
  }

  form.addEventListener('focusin', start);
  form.addEventListener('input', start);

  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    if (!subtle) {
      show(form.getAttribute('data-unsupported'));
      return;
    }
    form.setAttribute('aria-busy', 'true');
    form.classList.add('checking');
    button.disabled = true;
    show(form.getAttribute('data-checking'));
    try {
      start();
      if (performance.now() > current.until) {
        await fresh();
      }
      field.value = await current.solution;
      HTMLFormElement.prototype.submit.call(form);      /* no second submit event */
    } catch (e) {
      current = null;
      form.removeAttribute('aria-busy');
      form.classList.remove('checking');
      button.disabled = false;
      show(form.getAttribute('data-failed'));
    }
  });

  /* back to the page from the history: that solution is spent */
  window.addEventListener('pageshow', function (event) {
    if (event.persisted) {
      current = null;
      field.value = '';
      form.removeAttribute('aria-busy');
      form.classList.remove('checking');
      button.disabled = false;
      show('');
    }
  });
})();
