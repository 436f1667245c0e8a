"""Rate limits: sign-ups per client ip and per network per hour, a ceiling
of confirmation mails; over a limit the answer is rate_limited and nothing
is stored or mailed; the counters survive a restart."""
import hashlib
import hmac
import ipaddress
import os

from nlhelpers import check_answer


def addresses_in_db(d):
    """What is stored of addresses: subscribers, and pending sign-ups kept
    apart (sql/009)."""
    return {r["email"] for r in d.query("SELECT email FROM subscriber"
                                        " UNION SELECT email FROM signup")}


def limits(**kw):
    return {"limits": {k: str(v) for k, v in kw.items()}}


def test_signups_per_ip(daemon_factory, smtp):
    d = daemon_factory(limits(signups_per_ip=3, signups_per_network=100))
    for i in range(3):
        check_answer(d.subscribe("ip%d@example.org" % i, ip="192.0.2.7"), "pending")
    over = d.subscribe("ip3@example.org", ip="192.0.2.7")
    check_answer(over, "error", "rate_limited")
    assert over["message"]
    # nothing of the refused sign-up: no row, no mail
    assert "ip3@example.org" not in addresses_in_db(d)
    smtp.wait_for(3)
    d.settle()
    assert all("ip3@" not in "".join(m.rcpt_tos) for m in smtp.mails)
    # another client ip, and a request without ip, are not held back
    check_answer(d.subscribe("other@example.org", ip="192.0.2.8"), "pending")
    check_answer(d.subscribe("noip@example.org"), "pending")


def test_signups_per_network_ipv4_and_ipv6(daemon_factory):
    d = daemon_factory(limits(signups_per_ip=100, signups_per_network=2))
    check_answer(d.subscribe("n1@example.org", ip="198.51.100.1"), "pending")
    check_answer(d.subscribe("n2@example.org", ip="198.51.100.200"), "pending")
    check_answer(d.subscribe("n3@example.org", ip="198.51.100.77"), "error", "rate_limited")
    # the same /24 seen through an IPv6 socket
    check_answer(d.subscribe("n4@example.org", ip="::ffff:198.51.100.9"), "error", "rate_limited")
    check_answer(d.subscribe("n5@example.org", ip="198.51.101.1"), "pending")
    # IPv6: one /56
    check_answer(d.subscribe("v1@example.org", ip="2001:db8:0:100::1"), "pending")
    check_answer(d.subscribe("v2@example.org", ip="2001:db8:0:1ff::2"), "pending")
    check_answer(d.subscribe("v3@example.org", ip="2001:db8:0:1aa::3"), "error", "rate_limited")
    check_answer(d.subscribe("v4@example.org", ip="2001:db8:0:200::1"), "pending")


def test_limits_survive_a_restart(daemon_factory):
    d = daemon_factory(limits(signups_per_ip=1))
    check_answer(d.subscribe("r1@example.org", ip="203.0.113.5"), "pending")
    check_answer(d.subscribe("r2@example.org", ip="203.0.113.5"), "error", "rate_limited")
    assert d.stop() == 0
    d.start()
    check_answer(d.subscribe("r3@example.org", ip="203.0.113.5"), "error", "rate_limited")
    # the counters keep no ip address, only hashed keys (the ip of the
    # accepted sign-up is in its consent record, where it belongs)
    keys = [bytes(r["key"]) for r in d.query("SELECT key FROM rate_limit")]
    assert len(keys) == 2 and all(len(k) == 16 for k in keys)
    assert all(b"203.0.113" not in k for k in keys)


def plain_hashes(ip):
    """Every unkeyed SHA-256 of ip and network a counter key could be, as
    anyone could compute from the ip alone (2^32 tries undo them for IPv4)."""
    a = ipaddress.ip_address(ip).packed
    inputs = [b"ip4\0" + a, b"net4\0" + a[:3], a, a[:3], ip.encode(), ip.rsplit(".", 1)[0].encode()]
    return {hashlib.sha256(x).digest()[:16] for x in inputs}


def test_counter_keys_are_keyed_by_the_daemon_secret(daemon_factory):
    d = daemon_factory(limits(signups_per_ip=5))
    check_answer(d.subscribe("k1@example.org", ip="203.0.113.5"), "pending")
    stored = {bytes(r["key"]) for r in d.query("SELECT key FROM rate_limit")}
    assert len(stored) == 2
    # not a plain hash of the ip: nothing to undo by trying every address
    assert not stored & plain_hashes("203.0.113.5")
    # but the HMAC under the key derived from the key file (outside the database)
    with open(d.database + ".key", encoding="ascii") as f:
        key = bytes.fromhex([line for line in f if line.strip() and not line.startswith("#")][0])
    sub = hmac.new(key, b"ratelimit", hashlib.sha256).digest()
    a = ipaddress.ip_address("203.0.113.5").packed
    want = {hmac.new(sub, kind + a[:n], hashlib.sha256).digest()[:16]
            for kind, n in ((b"ip4\0", 4), (b"net4\0", 3))}
    assert stored == want
    assert key.hex() not in repr([tuple(r) for r in d.query("SELECT * FROM rate_limit")])


def test_a_new_key_starts_the_counters_afresh(daemon_factory):
    d = daemon_factory(limits(signups_per_ip=1))
    check_answer(d.subscribe("a1@example.org", ip="203.0.113.9"), "pending")
    check_answer(d.subscribe("a2@example.org", ip="203.0.113.9"), "error", "rate_limited")
    assert d.stop() == 0
    path = d.database + ".key"
    with open(path, "w", encoding="ascii") as f:
        f.write(bytes(range(32)).hex() + "\n")
    os.chmod(path, 0o600)
    d.start()
    check_answer(d.subscribe("a3@example.org", ip="203.0.113.9"), "pending")
    check_answer(d.subscribe("a4@example.org", ip="203.0.113.9"), "error", "rate_limited")


def test_ceiling_of_confirmation_mails(daemon_factory, smtp):
    d = daemon_factory(limits(mails_per_hour=2))
    check_answer(d.subscribe("c1@example.org"), "pending")
    check_answer(d.subscribe("c2@example.org"), "pending")
    check_answer(d.subscribe("c3@example.org"), "error", "rate_limited")
    assert "c3@example.org" not in addresses_in_db(d)
    smtp.wait_for(2)
    d.settle()
    assert len(smtp.mails) == 2


def test_limits_off(daemon_factory):
    d = daemon_factory(limits(signups_per_ip=0, signups_per_network=0))
    for i in range(15):
        check_answer(d.subscribe("f%d@example.org" % i, ip="192.0.2.99"), "pending")
