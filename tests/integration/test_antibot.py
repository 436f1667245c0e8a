"""Bot protection without a third party ([antibot] pow = on): the daemon's
ALTCHA v1 challenges, solved and checked by an implementation of the format
of the test's own (Python's hashlib and hmac, not the daemon's code); a
sign-up on the public socket needs a solution, and every way a solution can
be wrong is refused with nothing stored, mailed or counted."""
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import stat
import time

import shutil
import tempfile

import pytest

from conftest import DaemonPool
from nlhelpers import CaptureSMTP, Client, check_answer, check_config, wait_until

SALT_RE = re.compile(r"\A[0-9a-f]{24}\?expires=([0-9]+)&\Z")
TTL = 600


def pow_on(**antibot):
    keys = {"pow": "on"}
    keys.update({k: str(v) for k, v in antibot.items()})
    return {"antibot": keys}


# ---------------------------------------------------------------- ALTCHA, independently

def challenge_of(salt, number):
    return hashlib.sha256((salt + str(number)).encode()).hexdigest()


def solve(ch):
    """The number a browser finds: try them all, as the ALTCHA widget does."""
    for n in range(ch["maxnumber"] + 1):
        if challenge_of(ch["salt"], n) == ch["challenge"]:
            return n
    raise AssertionError("challenge not solvable within maxnumber: %r" % ch)


def payload(ch, number, /, **changes):
    obj = {"algorithm": "SHA-256", "challenge": ch["challenge"], "number": number,
           "salt": ch["salt"], "signature": ch["signature"]}
    obj.update(changes)
    return base64.b64encode(json.dumps(obj).encode()).decode()


def daemon_keys(d, path=None):
    """The keys of a daemon's key file (default: [daemon] key_file's default)."""
    with open(path or d.database + ".key") as f:
        return [bytes.fromhex(line.strip()) for line in f if line.strip() and not line.startswith("#")]


def altcha_key(key):
    """The key challenges are signed with: HMAC(key-file key, "altcha")."""
    return hmac.new(key, b"altcha", hashlib.sha256).digest()


def make_challenge(key, number, expires):
    """A challenge made here, signed with `key` (from altcha_key())."""
    salt = "%s?expires=%d&" % (secrets.token_hex(12), expires)
    c = challenge_of(salt, number)
    return {"algorithm": "SHA-256", "challenge": c, "maxnumber": 100000, "salt": salt,
            "signature": hmac.new(key, c.encode(), hashlib.sha256).hexdigest()}


def get_challenge(d):
    a = check_answer(d.request({"op": "challenge"}), "ok")
    assert a["pow"] is True, a
    return a["challenge"]


def solved(d):
    ch = get_challenge(d)
    return ch, payload(ch, solve(ch))


# ---------------------------------------------------------------- what is left behind

def stored(d):
    """Everything a sign-up would leave: addresses, sign-ups, mails, counters."""
    return {
        "addresses": [r[0] for r in d.query("SELECT email FROM subscriber UNION ALL"
                                            " SELECT email FROM signup")],
        "subscriptions": d.query("SELECT count(*) FROM subscription")[0][0],
        "outbox": d.query("SELECT count(*) FROM outbox")[0][0],
        "rate_limit": d.query("SELECT count(*) FROM rate_limit")[0][0],
        "consent": d.query("SELECT count(*) FROM consent")[0][0],
    }


NOTHING = {"addresses": [], "subscriptions": 0, "outbox": 0, "rate_limit": 0, "consent": 0}


def refused(d, altcha, error="challenge_failed", address="bot@example.org"):
    fields = {"ip": "192.0.2.1"}
    if altcha is not None:
        fields["altcha"] = altcha
    return check_answer(d.subscribe(address, **fields), "error", error)


# ---------------------------------------------------------------- the challenge

def test_challenge_format_and_signature(daemon_factory):
    d = daemon_factory(pow_on(maxnumber=5000, challenge_ttl="7m"))
    ch = get_challenge(d)
    assert list(ch) == ["algorithm", "challenge", "maxnumber", "salt", "signature"]
    assert ch["algorithm"] == "SHA-256" and ch["maxnumber"] == 5000
    m = SALT_RE.match(ch["salt"])
    assert m, ch["salt"]
    assert abs(int(m.group(1)) - (d.now() + 420)) <= 5
    assert re.fullmatch(r"[0-9a-f]{64}", ch["challenge"])
    # the number is within maxnumber (Python finds it)
    assert 0 <= solve(ch) <= 5000
    # signed as ALTCHA signs: hex HMAC-SHA256 of the challenge, with a key
    # derived from the daemon's key file
    key = altcha_key(daemon_keys(d)[0])
    assert ch["signature"] == hmac.new(key, ch["challenge"].encode(), hashlib.sha256).hexdigest()
    # every challenge is new
    assert len({get_challenge(d)["salt"] for _ in range(20)}) == 20
    # nothing is written to hand them out
    assert d.query("SELECT count(*) FROM challenge_used")[0][0] == 0


def test_numbers_spread_over_the_range(daemon_factory):
    d = daemon_factory(pow_on(maxnumber=100))
    numbers = {solve(get_challenge(d)) for _ in range(60)}
    assert len(numbers) > 25 and max(numbers) > 60


# ---------------------------------------------------------------- accepted

def test_solution_by_python_is_accepted(daemon_factory, smtp):
    d = daemon_factory(pow_on())
    ch, sol = solved(d)
    check_answer(d.subscribe("anna@example.org", altcha=sol, ip="192.0.2.1"), "pending")
    assert smtp.wait_for(1)[0].rcpt_tos == ["anna@example.org"]
    assert d.query("SELECT count(*) FROM challenge_used")[0][0] == 1


def test_challenge_made_by_python_with_the_daemons_key_is_accepted(daemon_factory):
    d = daemon_factory(pow_on())
    key = altcha_key(daemon_keys(d)[0])
    ch = make_challenge(key, 4711, int(d.now()) + 60)
    check_answer(d.subscribe("anna@example.org", altcha=payload(ch, 4711)), "pending")


def test_widget_payload_with_took_is_accepted(daemon_factory):
    # the ALTCHA widget adds how long it took
    d = daemon_factory(pow_on(maxnumber=1000))
    ch = get_challenge(d)
    check_answer(d.subscribe("anna@example.org", altcha=payload(ch, solve(ch), took=123)),
                 "pending")


def test_admin_socket_needs_no_challenge(daemon_factory):
    d = daemon_factory(pow_on())
    with Client(d.admin_socket) as c:
        check_answer(c.request({"op": "subscribe", "email": "admin-made@example.org"}), "pending")


def test_pow_off_works_as_before(daemon_factory):
    d = daemon_factory()
    a = check_answer(d.request({"op": "challenge"}), "ok")
    assert a["pow"] is False and a["challenge"] is None
    check_answer(d.subscribe("anna@example.org"), "pending")
    # a payload is not looked at
    check_answer(d.subscribe("ben@example.org", altcha="junk"), "pending")


# ---------------------------------------------------------------- refused

def test_missing_solution_is_required(daemon_factory, smtp):
    d = daemon_factory(pow_on())
    a = refused(d, None, "challenge_required")
    assert "JavaScript" in a["message"]
    refused(d, None, "challenge_required", address="another@example.org")
    assert stored(d) == NOTHING
    assert smtp.count() == 0


def test_replay_is_refused(daemon_factory):
    d = daemon_factory(pow_on())
    ch, sol = solved(d)
    check_answer(d.subscribe("anna@example.org", altcha=sol), "pending")
    before = stored(d)
    refused(d, sol, address="ben@example.org")
    refused(d, sol, address="anna@example.org")
    assert stored(d) == before


def test_replay_is_refused_after_a_restart(daemon_factory):
    d = daemon_factory(pow_on())
    ch, sol = solved(d)
    check_answer(d.subscribe("anna@example.org", altcha=sol), "pending")
    d.restart_later(1)
    refused(d, sol, address="ben@example.org")


def test_tampered_signature_is_refused(daemon_factory):
    d = daemon_factory(pow_on())
    ch = get_challenge(d)
    n = solve(ch)
    bad = ch["signature"][:-1] + ("0" if ch["signature"][-1] != "0" else "1")
    refused(d, payload(ch, n, signature=bad))
    refused(d, payload(ch, n, signature=ch["signature"].upper()))
    # a challenge of our own with a key guessed
    mine = make_challenge(b"\0" * 32, 7, int(d.now()) + 60)
    refused(d, payload(mine, 7))
    assert stored(d) == NOTHING
    # the untampered one still opens its sign-up
    check_answer(d.subscribe("anna@example.org", altcha=payload(ch, n)), "pending")


def test_wrong_number_is_refused(daemon_factory):
    d = daemon_factory(pow_on())
    ch = get_challenge(d)
    n = solve(ch)
    refused(d, payload(ch, n + 1))
    refused(d, payload(ch, n - 1 if n else 2))
    refused(d, payload(ch, str(n)))         # a string is no number
    assert stored(d) == NOTHING
    check_answer(d.subscribe("anna@example.org", altcha=payload(ch, n)), "pending")


def test_expired_challenge_is_refused(daemon_factory):
    d = daemon_factory(pow_on(challenge_ttl="1m"))
    ch, sol = solved(d)
    d.restart_later(61)
    refused(d, sol)
    assert stored(d) == NOTHING
    # one made with the right key but an expiry in the past
    key = altcha_key(daemon_keys(d)[0])
    old = make_challenge(key, 99, int(d.now()) - 1)
    refused(d, payload(old, 99))
    fresh = make_challenge(key, 99, int(d.now()) + 30)
    check_answer(d.subscribe("anna@example.org", altcha=payload(fresh, 99)), "pending")


def test_another_daemons_challenge_is_refused(daemon_factory):
    a = daemon_factory(pow_on(), name="a")
    b = daemon_factory(dict(pow_on(), daemon={"public_socket": "{dir}/b.sock",
                                              "admin_socket": "{dir}/b-admin.sock",
                                              "database": "{dir}/b.sqlite"}), name="b")
    ch, sol = solved(a)
    refused(b, sol)
    assert stored(b) == NOTHING
    check_answer(a.subscribe("anna@example.org", altcha=sol), "pending")


def test_spliced_number_is_refused(daemon_factory):
    # moving the number's first digits into the salt keeps SHA-256(salt +
    # number) and the signature, and would give the salt another expiry
    d = daemon_factory(pow_on())
    # (a number whose second digit is 0 cannot be spliced so: the rest
    # would lose its leading zero, and one in ten are such a number)
    while True:
        ch = get_challenge(d)
        n = solve(ch)
        if n >= 10 and str(n)[1] != "0":
            break
    digits = str(n)
    spliced = dict(ch, salt=ch["salt"] + digits[0])
    assert challenge_of(spliced["salt"], int(digits[1:])) == ch["challenge"]
    refused(d, payload(spliced, int(digits[1:])))
    assert stored(d) == NOTHING


@pytest.mark.parametrize("bad", [
    "not base64!",
    base64.b64encode(b"not json").decode(),
    base64.b64encode(b"[1,2]").decode(),
    "A" * 1025,                                             # over the field's size
    "QUJD\nREVG",                                           # a control character
])
def test_malformed_payload_is_refused(shared_daemon_pow, bad):
    refused(shared_daemon_pow, bad)


def test_malformed_fields_are_refused(shared_daemon_pow):
    d = shared_daemon_pow
    ch = get_challenge(d)
    n = solve(ch)
    for changes in ({"algorithm": "SHA-1"}, {"salt": ch["salt"][:-1]}, {"number": -1},
                    {"number": 10 ** 12}, {"challenge": ch["challenge"].upper()},
                    {"extra": 1}, {"took": "x"}):
        refused(d, payload(ch, n, **changes))
    obj = json.loads(base64.b64decode(payload(ch, n)))
    for field in obj:
        rest = dict(obj)
        del rest[field]
        refused(d, base64.b64encode(json.dumps(rest).encode()).decode())
    assert stored(d) == NOTHING


@pytest.fixture(scope="module")
def shared_daemon_pow():
    """One daemon with pow = on for tests that only send what it refuses."""
    directory = tempfile.mkdtemp(prefix="nl", dir="/tmp")
    server = CaptureSMTP().start()
    pool = DaemonPool(directory, lambda: server.url)
    d = pool.make(pow_on(), name="pow")
    yield d
    try:
        pool.finish(False)
    finally:
        server.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_refused_requests_count_against_no_rate_limit(daemon_factory):
    # a bot without solutions cannot use up the sign-ups of a visitor who
    # shares its address
    d = daemon_factory(dict(pow_on(), limits={"signups_per_ip": "1", "signups_per_network": "1"}))
    for i in range(3):
        refused(d, None, "challenge_required", address="bot%d@example.org" % i)
        refused(d, "junk", address="bot%d@example.org" % i)
    ch, sol = solved(d)
    check_answer(d.subscribe("anna@example.org", altcha=sol, ip="192.0.2.1"), "pending")


# ---------------------------------------------------------------- kept bounded

def test_used_challenges_are_purged_once_expired(daemon_factory):
    d = daemon_factory(pow_on(challenge_ttl="1m"))
    for address in ("anna@example.org", "ben@example.org"):
        ch, sol = solved(d)
        check_answer(d.subscribe(address, altcha=sol), "pending")
    assert d.query("SELECT count(*) FROM challenge_used")[0][0] == 2
    # still unexpired: kept
    with Client(d.admin_socket) as c:
        check_answer(c.request({"op": "expire"}), "ok")
    time.sleep(0.5)
    assert d.query("SELECT count(*) FROM challenge_used")[0][0] == 2
    d.restart_later(61)
    with Client(d.admin_socket) as c:
        check_answer(c.request({"op": "expire"}), "ok")
    wait_until(lambda: d.query("SELECT count(*) FROM challenge_used")[0][0] == 0,
               what="the used challenges to be purged")


# ---------------------------------------------------------------- keys and config

def test_own_key_file_made_at_first_start(daemon_factory, workdir):
    path = os.path.join(workdir, "antibot.key")
    d = daemon_factory(pow_on(key_file=path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ch = get_challenge(d)
    key = altcha_key(daemon_keys(d, path)[0])
    assert ch["signature"] == hmac.new(key, ch["challenge"].encode(), hashlib.sha256).hexdigest()
    # the daemon's own key does not sign them
    other = altcha_key(daemon_keys(d)[0])
    assert ch["signature"] != hmac.new(other, ch["challenge"].encode(), hashlib.sha256).hexdigest()
    check_answer(d.subscribe("anna@example.org", altcha=payload(ch, solve(ch))), "pending")
    # the same key after a restart: an issued challenge stays valid
    ch, sol = solved(d)
    d.restart_later(1)
    check_answer(d.subscribe("ben@example.org", altcha=sol), "pending")


def test_older_key_of_the_file_still_accepted(daemon_factory, workdir):
    # a key replaced: challenges out under the old one are still good
    path = os.path.join(workdir, "antibot.key")
    d = daemon_factory(pow_on(key_file=path))
    ch, sol = solved(d)
    assert d.stop() == 0
    old = open(path).read().split("\n")
    keyline = [l for l in old if l and not l.startswith("#")][0]
    with open(path, "w") as f:
        f.write(secrets.token_hex(32) + "\n" + keyline + "\n")
    d.start()
    check_answer(d.subscribe("anna@example.org", altcha=sol), "pending")
    ch2 = get_challenge(d)
    assert ch2["signature"] == hmac.new(altcha_key(daemon_keys(d, path)[0]), ch2["challenge"].encode(),
                                        hashlib.sha256).hexdigest()


@pytest.mark.parametrize("key,value", [
    ("pow", "maybe"), ("maxnumber", "0"), ("maxnumber", "10000001"), ("maxnumber", "x"),
    ("challenge_ttl", "5s"), ("challenge_ttl", "2d"), ("key_file", ""), ("colour", "red"),
])
def test_bad_config_is_refused(daemon_factory, key, value):
    d = daemon_factory({"antibot": {key: value}}, start=False)
    rc, out, err = check_config(d.config_path)
    assert rc != 0, out
    assert re.search(r"\.conf:\d+: .*%s" % key, err), err


def test_key_file_others_may_read_is_refused(daemon_factory, workdir):
    path = os.path.join(workdir, "antibot.key")
    d = daemon_factory(pow_on(key_file=path))
    assert d.stop() == 0
    os.chmod(path, 0o644)
    rc, out, err = check_config(d.config_path)
    assert rc != 0 and "[antibot] key_file" in err and "chmod 600" in err, err
    assert d.spawn().wait(15) != 0
    os.chmod(path, 0o600)
    d.start()


def test_reload_without_the_key_file_keeps_the_old_config(daemon_factory, workdir):
    # SIGHUP makes no key: a key file gone is an error, and the old
    # configuration (and its key) stays in use
    path = os.path.join(workdir, "antibot.key")
    d = daemon_factory(pow_on(key_file=path))
    ch, sol = solved(d)
    os.rename(path, path + ".gone")
    d.signal(signal.SIGHUP)
    wait_until(lambda: "[antibot] key_file) is missing" in d.stderr(), what="the reload refused")
    check_answer(d.subscribe("anna@example.org", altcha=sol), "pending")
    assert not os.path.exists(path)
