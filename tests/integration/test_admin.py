"""newsletterctl and the subscriber lifecycle against a running daemon:
expire (stripping and purging), import, stats, export, erase, the admin
socket's fences (public socket, peer credentials) and the CLI's usage and
exit codes."""
import base64
import datetime
import json
import os
import shutil
import sqlite3
import grp
import pwd
import re
import stat
import subprocess
import sys
import time

import pytest

import nlhelpers
from ctlhelpers import (REFUSED, UNREACHABLE, USAGE, NEWSLETTERCTL, ctl, ctl_is_sanitized,
                        ctl_json, import_csv, need_ctl, stats, subscription_states, write)
from nlhelpers import (DAY, CaptureSMTP, Client, check_answer, db_dump, free_port,
                       mint_unsubscribe_token, token_hash, wait_until)

pytestmark = pytest.mark.usefixtures("ctl_available")


@pytest.fixture
def ctl_available():
    need_ctl()


def one_line_reason(result):
    lines = [l for l in result.err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected a one-line reason, got %r" % result.err
    return lines[0]


def signup_and_confirm(daemon, smtp, address, **fields):
    check_answer(daemon.subscribe(address, **fields), "pending")
    key = address.lower()
    mail = wait_until(lambda: [m for m in smtp.snapshot()
                               if key in (r.lower() for r in m.rcpt_tos)],
                      what="the confirmation mail to %s" % address)[-1]
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    return mail


def subscriber_rows(daemon, email_key):
    return daemon.query("SELECT * FROM subscriber WHERE email_key = ?", (email_key,))


def all_db_text(daemon):
    """Every value of every row, as one string: what the database holds."""
    return repr(db_dump(daemon.database))


# ---------------------------------------------------------------- expire

def write_old_signups(daemon, n):
    """n pending sign-ups whose last confirmation mail went out now (by the
    daemon's clock), written with the daemon stopped (as a restored backup
    would be)."""
    old = int(daemon.now())
    con = sqlite3.connect(daemon.database, isolation_level=None)
    try:
        con.execute("BEGIN")
        base = con.execute("SELECT coalesce(max(id), 0) FROM subscriber").fetchone()[0]
        ids = range(base + 1, base + n + 1)
        con.executemany("INSERT INTO subscriber (id, email_key, email, name, created_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        ((i, "old%d@example.org" % i, "old%d@example.org" % i, "Old %d" % i, old)
                         for i in ids))
        con.executemany("INSERT INTO subscription (id, subscriber_id, list, state, lang, created_at,"
                        " mailed_at) VALUES (?, ?, 'default', 'pending', 'de', ?, ?)",
                        ((i, i, old, old) for i in ids))
        con.executemany("INSERT INTO consent (subscriber_id, list, event, at, ip, source)"
                        " VALUES (?, 'default', 'signup', ?, '192.0.2.77', 'socket')",
                        ((i, old) for i in ids))
        con.executemany("INSERT INTO token (hash, subscription_id, kind, issued_at, expires_at)"
                        " VALUES (?, ?, 'confirm', ?, ?)",
                        ((os.urandom(32), i, old, old + 30 * 86400) for i in ids))
        con.execute("COMMIT")
    finally:
        con.close()


def test_expire_wait_follows_a_run_of_many_slices_to_its_end(daemon_factory):
    # the progress `--wait` sees comes from what the run was given and did,
    # not from counting again: it may not say 0 before the last slice
    d = daemon_factory()
    d.stop()
    # many slices, and longer than newsletterctl's first looks (10, 20, 40 ms ...)
    n = 20000 if not nlhelpers.WRAPPER else 4000
    write_old_signups(d, n)
    d.set_clock(d.clock_offset + 40 * DAY)
    d.start()
    out = ctl_json(d, "expire", "--wait", "--json")
    assert out == {"expired": n, "purged": 0, "remaining": 0}, out
    assert d.query("SELECT count(*) AS n FROM subscriber")[0]["n"] == 0
    assert d.query("SELECT count(*) AS n FROM consent")[0]["n"] == 0
    states = d.query("SELECT state, count(*) AS n FROM subscription GROUP BY state")
    assert [(r["state"], r["n"]) for r in states] == [("expired", n)], states
    assert d.query("PRAGMA foreign_key_check") == []
    assert ctl_json(d, "expire", "--wait", "--json") == {"expired": 0, "purged": 0, "remaining": 0}


def test_expire_strips_overdue_signups_and_leaves_the_rest(daemon_factory, smtp):
    d = daemon_factory()
    keep = signup_and_confirm(d, smtp, "keep@example.org", name="Keeper")
    signup_and_confirm(d, smtp, "mixed@example.org", name="Mixi")
    check_answer(d.subscribe("mixed@example.org", list="events", ip="192.0.2.31",
                             user_agent="MixAgent/1"), "pending")
    check_answer(d.subscribe("gone.one@example.org", name="Gonzalo Eins", ip="192.0.2.32",
                             user_agent="GoneAgent/1"), "pending")
    check_answer(d.subscribe("Gone.Two@Example.org", name="Zweiter Weg", lang="en"), "pending")
    mails = smtp.wait_for(5)
    late = {m.rcpt_tos[0]: m.token for m in mails[2:]}
    assert set(late) == {"mixed@example.org", "gone.one@example.org", "Gone.Two@example.org"}
    d.settle()
    # a month later (the daemon's clock moved: no race with a slow run); the
    # confirmed subscriptions are as old, and stay
    d.restart_later(31 * DAY)
    for token in late.values():
        check_answer(d.request({"op": "check", "token": token}), "expired")
    keep_before = d.subscription("keep@example.org")
    mixed_default_before = d.subscription("mixed@example.org")

    # overdue but not yet stripped: stats counts them expired already
    before = stats(d)["subscribers"]
    assert before == {"pending": 0, "confirmed": 2, "expired": 3, "unsubscribed": 0,
                      "bounced": 0}, before

    out = ctl_json(d, "expire", "--wait", "--json")
    assert out == {"expired": 3, "purged": 0, "remaining": 0}, out

    # what stays of them is no one's: no subscriber, no address, no record,
    # a subscription still 'pending' whose date says expired (sql/009)
    rows = d.query("SELECT * FROM subscription WHERE subscriber_id IS NULL ORDER BY id")
    assert len(rows) == 3
    for r in rows:
        assert r["state"] == "pending"
        assert r["mailed_at"] <= d.now() - 31 * DAY
        assert r["confirm_ip"] is None
    assert sorted(r["list"] for r in rows) == ["default", "default", "events"]
    assert d.query("SELECT count(*) FROM signup")[0][0] == 0
    # the pure sign-ups never had a subscriber row; the confirmed one of the
    # mixed subscriber keeps it
    assert subscriber_rows(d, "gone.one@example.org") == []
    assert subscriber_rows(d, "gone.two@example.org") == []
    assert len(subscriber_rows(d, "mixed@example.org")) == 1
    text = all_db_text(d)
    for trace in ("gone.one", "Gone.Two", "gone.two", "Gonzalo", "Zweiter", "GoneAgent",
                  "192.0.2.32", "MixAgent", "192.0.2.31"):
        assert trace not in text, "%r is still in the database" % trace
    consent = d.query("SELECT c.list, c.event FROM consent c JOIN subscriber u"
                      " ON u.id = c.subscriber_id WHERE u.email_key = 'mixed@example.org'")
    assert sorted((r["list"], r["event"]) for r in consent) == [
        ("default", "confirm"), ("default", "signup")]
    # their mails stay, to no address, until the rows are purged
    assert len(d.outbox()) == 5

    # a late click still says expired, and changes nothing
    dump = db_dump(d.database)
    for token in late.values():
        check_answer(d.request({"op": "check", "token": token}), "expired")
        check_answer(d.request({"op": "confirm", "token": token}), "expired")
    assert db_dump(d.database) == dump

    # confirmed subscribers are untouched
    assert d.subscription("keep@example.org") == keep_before
    assert d.subscription("mixed@example.org") == mixed_default_before
    check_answer(d.request({"op": "confirm", "token": keep.token}), "confirmed")
    exported = ctl_json(d, "export", "mixed@example.org")
    assert [s["list"] for s in exported["subscriptions"]] == ["default"]
    assert {c["list"] for c in exported["consent"]} == {"default"}

    after = stats(d)["subscribers"]
    assert after == before, after
    # nothing more to do on a second run
    assert ctl_json(d, "expire", "--json") == {"expired": 0, "purged": 0, "remaining": 0}
    # plain output names the count
    plain = ctl(d, "expire", "--wait").ok()
    assert plain.out.startswith("0 pending sign-ups expired"), plain.out

    # the stripped address starts over
    r = ctl(d, "export", "gone.one@example.org")
    r.fails(REFUSED)
    check_answer(d.subscribe("gone.one@example.org"), "pending")
    (fresh,) = smtp.wait_for_rcpt("gone.one@example.org", n=2)[1:]
    assert fresh.token != late["gone.one@example.org"]
    check_answer(d.request({"op": "check", "token": late["gone.one@example.org"]}), "expired")
    check_answer(d.request({"op": "confirm", "token": fresh.token}), "confirmed")


# ---- sign-ups of different ages, and sign-ups of the old layout

def test_expire_strips_signups_that_all_expired_and_the_address_starts_over(daemon, smtp):
    for a in ("old.one@example.org", "old.two@example.org"):
        check_answer(daemon.subscribe(a, name="Alt", ip="192.0.2.44"), "pending")
    mails = smtp.wait_for(2)
    daemon.settle()
    daemon.restart_later(40 * DAY)
    assert stats(daemon)["subscribers"]["expired"] == 2
    assert ctl_json(daemon, "expire", "--wait", "--json") == {"expired": 2, "purged": 0,
                                                              "remaining": 0}
    assert daemon.query("SELECT count(*) FROM signup")[0][0] == 0
    text = repr(db_dump(daemon.database))
    for trace in ("old.one", "old.two", "Alt", "192.0.2.44"):
        assert trace not in text, "%r is still in the database" % trace
    for m in mails:
        check_answer(daemon.request({"op": "check", "token": m.token}), "expired")
    assert stats(daemon)["subscribers"]["expired"] == 2
    # the address signs up afresh
    check_answer(daemon.subscribe("old.one@example.org"), "pending")
    (fresh,) = smtp.wait_for_rcpt("old.one@example.org", n=2)[1:]
    check_answer(daemon.request({"op": "confirm", "token": fresh.token}), "confirmed")


def test_expire_strips_the_signups_older_than_confirm_ttl_and_keeps_the_younger(daemon, smtp):
    # days apart, so the cut of the run falls between them: 31.5 and 28.5
    # days old when it runs (confirm_ttl 30d)
    check_answer(daemon.subscribe("early@example.org", ip="192.0.2.45"), "pending")
    (early,) = smtp.wait_for(1)
    daemon.settle()
    daemon.restart_later(3 * DAY)
    check_answer(daemon.subscribe("late@example.org", ip="192.0.2.46"), "pending")
    (late,) = smtp.wait_for_rcpt("late@example.org")
    daemon.settle()
    daemon.restart_later(28 * DAY + DAY // 2)
    assert stats(daemon)["subscribers"]["expired"] == 1
    check_answer(daemon.request({"op": "check", "token": early.token}), "expired")
    check_answer(daemon.request({"op": "check", "token": late.token}), "pending")
    assert ctl_json(daemon, "expire", "--wait", "--json") == {"expired": 1, "purged": 0,
                                                              "remaining": 0}
    assert [r[0] for r in daemon.query("SELECT email_key FROM signup")] == ["late@example.org"]
    text = repr(db_dump(daemon.database))
    assert "192.0.2.45" not in text and "early@" not in text
    assert "192.0.2.46" in text
    check_answer(daemon.request({"op": "confirm", "token": early.token}), "expired")
    check_answer(daemon.request({"op": "confirm", "token": late.token}), "confirmed")


def test_a_signup_made_again_keeps_its_newer_record_when_the_older_expires(daemon, smtp):
    check_answer(daemon.subscribe("twice@example.org", ip="192.0.2.1", name="Erst"), "pending")
    (first,) = smtp.wait_for(1)
    daemon.settle()
    daemon.restart_later(25 * DAY)
    # a second sign-up 25 days after the first: a record of its own
    check_answer(daemon.subscribe("twice@example.org", ip="192.0.2.2"), "pending")
    (second,) = smtp.wait_for_rcpt("twice@example.org", n=2)[1:]
    daemon.settle()
    assert daemon.query("SELECT count(*) FROM signup")[0][0] == 2
    # 10 days later the first record is 35 days old, the second 10
    daemon.restart_later(10 * DAY)
    assert ctl_json(daemon, "expire", "--wait", "--json")["expired"] == 1
    assert [r[0] for r in daemon.query("SELECT ip FROM signup")] == ["192.0.2.2"]
    assert daemon.subscription("twice@example.org")["state"] == "pending"
    check_answer(daemon.request({"op": "confirm", "token": second.token}), "confirmed")
    rows = daemon.query("SELECT event, ip FROM consent ORDER BY id")
    assert [tuple(r) for r in rows] == [("signup", "192.0.2.2"), ("confirm", None)]
    # the name of the first sign-up was kept through the second (which gave none)
    assert daemon.query("SELECT name FROM subscriber")[0][0] == "Erst"


def test_pending_signups_of_the_old_layout_are_stripped(daemon, smtp):
    """Sign-ups stored before sql/009 (linked to a subscriber) expire as before."""
    daemon.stop()
    old = int(daemon.now())
    con = nlhelpers.db_connect(daemon.database)
    with con:
        con.execute("INSERT INTO subscriber (id, email_key, email, name, created_at)"
                    " VALUES (7, 'legacy@example.org', 'legacy@example.org', 'Alt', ?)", (old,))
        con.execute("INSERT INTO subscription (id, subscriber_id, list, state, lang, created_at,"
                    " mailed_at) VALUES (7, 7, 'default', 'pending', 'de', ?, ?)", (old, old))
        con.execute("INSERT INTO consent (subscriber_id, list, event, at, ip, source)"
                    " VALUES (7, 'default', 'signup', ?, '192.0.2.99', 'socket')", (old,))
        con.execute("INSERT INTO outbox (kind, subscription_id, state, priority, created_at,"
                    " next_at, attempts, done_at, reply) VALUES ('confirm', 7, 'sent', 0, ?, ?,"
                    " 1, ?, '250 ok')", (old, old, old))
    con.close()
    daemon.set_clock(40 * DAY)
    daemon.start()
    assert ctl_json(daemon, "expire", "--wait", "--json") == {"expired": 1, "purged": 0,
                                                              "remaining": 0}
    (row,) = daemon.query("SELECT * FROM subscription")
    assert (row["state"], row["subscriber_id"]) == ("expired", None)
    assert daemon.query("SELECT count(*) FROM subscriber")[0][0] == 0
    assert daemon.query("SELECT count(*) FROM consent")[0][0] == 0
    assert daemon.outbox() == []


def test_expired_records_are_purged_after_the_retention(daemon, smtp):
    # the defaults: a sign-up expires after 30 days, what stays of it goes
    # 90 days later; the daemon's clock is moved, not waited for
    check_answer(daemon.subscribe("purge@example.org", name="Pia"), "pending")
    (mail,) = smtp.wait_for(1)
    daemon.settle()
    daemon.restart_later(31 * DAY)
    assert ctl_json(daemon, "expire", "--wait", "--json") == {"expired": 1, "purged": 0,
                                                              "remaining": 0}
    check_answer(daemon.request({"op": "check", "token": mail.token}), "expired")
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "expired")
    assert stats(daemon)["subscribers"]["expired"] == 1

    # expired 89 days ago: kept
    daemon.restart_later(88 * DAY)
    assert ctl_json(daemon, "expire", "--wait", "--json") == {"expired": 0, "purged": 0,
                                                              "remaining": 0}
    check_answer(daemon.request({"op": "check", "token": mail.token}), "expired")

    # expired 91 days ago: purged, and counted in the answer of the run
    daemon.restart_later(2 * DAY)
    assert ctl_json(daemon, "expire", "--wait", "--json") == {"expired": 0, "purged": 1,
                                                              "remaining": 0}
    assert daemon.query("SELECT * FROM subscription") == []
    assert daemon.query("SELECT * FROM token") == []
    check_answer(daemon.request({"op": "check", "token": mail.token}), "error", "unknown_token")
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "error", "unknown_token")
    assert stats(daemon)["subscribers"] == {"pending": 0, "confirmed": 0, "expired": 0,
                                            "unsubscribed": 0, "bounced": 0}


def test_a_signup_expired_long_ago_is_stripped_and_purged_in_one_run(daemon, smtp):
    # a daemon that was down (or whose expiry was off) for longer than
    # confirm_ttl + expired_retention: the answer counts both
    check_answer(daemon.subscribe("late.purge@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    daemon.settle()
    daemon.restart_later(121 * DAY)
    assert ctl_json(daemon, "expire", "--wait", "--json") == {"expired": 1, "purged": 1,
                                                              "remaining": 0}
    assert daemon.query("SELECT * FROM subscription") == []
    assert "late.purge" not in repr(db_dump(daemon.database))
    check_answer(daemon.request({"op": "check", "token": mail.token}), "error", "unknown_token")


# ---------------------------------------------------------------- import

def csv_bytes(lines, bom=False, crlf=False):
    nl = b"\r\n" if crlf else b"\n"
    data = nl.join(l if isinstance(l, bytes) else l.encode("utf-8") for l in lines) + nl
    return (b"\xef\xbb\xbf" if bom else b"") + data


def test_import_confirmed_subscribers(daemon, smtp, workdir):
    signup_and_confirm(daemon, smtp, "existing@example.org", name="Old Name")
    check_answer(daemon.subscribe("waiting@example.org"), "pending")
    smtp.wait_for(2)
    daemon.settle()
    path = write(os.path.join(workdir, "members.csv"), csv_bytes([
        "email,name",
        "anna@example.org,Anna",
        '"bert@example.org","Bert, der Zweite"',
        "",
        'carla@example.org,"Carla ""CJ"" Jones"',
        "   ",
        "juergen@bücher.example,Jürgen Größe",
        "ANNA@EXAMPLE.ORG,Anna Again",
        "dora@example.org",
        "existing@example.org,New Name",
        "waiting@example.org,Wartende",
        "",
    ], bom=True, crlf=True))
    counts = import_csv(daemon, path)
    assert counts == {"rows": 8, "added": 5, "duplicates": 1, "existing": 2}, counts
    # the pending sign-up keeps waiting apart: the file's name for it is not taken
    assert [tuple(r) for r in daemon.query("SELECT email_key, name FROM signup")] == [
        ("waiting@example.org", None)]

    names = {r["email_key"]: r["name"] for r in daemon.query("SELECT email_key, name FROM subscriber")}
    assert names == {
        "existing@example.org": "Old Name",
        "anna@example.org": "Anna",
        "bert@example.org": "Bert, der Zweite",
        "carla@example.org": 'Carla "CJ" Jones',
        "juergen@xn--bcher-kva.example": "Jürgen Größe",
        "dora@example.org": None,
    }, names
    states = subscription_states(daemon)
    assert states == {"existing@example.org": "confirmed", "waiting@example.org": "pending",
                      "anna@example.org": "confirmed", "bert@example.org": "confirmed",
                      "carla@example.org": "confirmed",
                      "juergen@xn--bcher-kva.example": "confirmed",
                      "dora@example.org": "confirmed"}, states
    # confirmed imports get no mail
    assert len(daemon.outbox()) == 2
    exported = ctl_json(daemon, "export", "Carla@Example.org")
    assert exported["subscriber"]["name"] == 'Carla "CJ" Jones'
    (sub,) = exported["subscriptions"]
    assert sub["state"] == "confirmed" and sub["list"] == "default"
    (consent,) = exported["consent"]
    assert consent["event"] == "import"
    assert consent["source"] == "import:" + path
    assert consent["at"]
    assert ctl_json(daemon, "export", "juergen@bücher.example")["subscriber"]["name"] == "Jürgen Größe"
    assert stats(daemon)["subscribers"]["confirmed"] == 6

    # the same file into the second list: everyone is new there
    counts = import_csv(daemon, path, "--list", "events")
    assert counts == {"rows": 8, "added": 7, "duplicates": 1, "existing": 0}, counts
    assert daemon.subscription("waiting@example.org", "events")["state"] == "confirmed"
    # and once more: everyone is there already
    counts = import_csv(daemon, path, "--list", "events")
    assert counts == {"rows": 8, "added": 0, "duplicates": 1, "existing": 7}, counts
    time.sleep(0.3)
    assert smtp.count() == 2

    # plain output and stdin
    r = ctl(daemon, "import", "-", stdin=b"stdin@example.org,Via Stdin\n").ok()
    assert "1 added" in r.out, r.out
    assert daemon.subscription("stdin@example.org")["state"] == "confirmed"


def test_import_pending_mails_each_one_confirmation(daemon, smtp, workdir):
    check_answer(daemon.subscribe("ref-en@example.org", lang="en"), "pending")
    check_answer(daemon.subscribe("ref-de@example.org", lang="de"), "pending")
    signup_and_confirm(daemon, smtp, "already@example.org")
    refs = {m.rcpt_tos[0]: m for m in smtp.wait_for(3)}
    en_subject = refs["ref-en@example.org"].msg["Subject"]
    assert en_subject != refs["ref-de@example.org"].msg["Subject"]
    daemon.settle()
    base = smtp.count()

    addresses = ["p1@example.org", "p2@example.org", "p3@example.org"]
    path = write(os.path.join(workdir, "pending.csv"),
                 "\n".join(["p1@example.org,Paula", "P2@example.org", "p3@example.org,Drei",
                            "p1@example.org", "already@example.org"]) + "\n")
    counts = import_csv(daemon, path, "--pending", "--lang", "en")
    assert counts == {"rows": 5, "added": 3, "duplicates": 1, "existing": 1}, counts
    smtp.wait_for(base + 3)
    daemon.settle()
    time.sleep(0.5)
    new = smtp.snapshot()[base:]
    assert sorted(m.rcpt_tos[0].lower() for m in new) == addresses
    for m in new:
        assert m.msg["Subject"] == en_subject
    for a in addresses:
        assert daemon.subscription(a)["state"] == "pending"
        assert daemon.subscription(a)["lang"] == "en"
    exported = ctl_json(daemon, "export", "p1@example.org")
    (consent,) = exported["consent"]
    assert consent["event"] == "signup" and consent["source"] == "import:" + path
    assert consent["lang"] == "en" and consent["text_version"]
    ref = ctl_json(daemon, "export", "ref-en@example.org")["consent"][0]
    assert consent["text_version"] == ref["text_version"]

    (m1,) = smtp.to("p1@example.org")
    check_answer(daemon.request({"op": "confirm", "token": m1.token}), "confirmed")
    assert daemon.subscription("p1@example.org")["state"] == "confirmed"
    assert daemon.subscription("already@example.org")["state"] == "confirmed"
    assert len(smtp.to("already@example.org")) == 1


BAD_LINES = [
    ("bad address", b"not-an-address,Someone"),
    ("three fields", b"three@example.org,Three,extra"),
    ("unbalanced quote", b'"quote@example.org,Quote'),
    ("not UTF-8", b"latin@example.org,J\xfcrgen M\xfcller"),
    ("line over 4 KiB", b"long@example.org," + b"x" * 5000),
    ("name too long", b"longname@example.org," + b"y" * 3000),
]


@pytest.mark.parametrize("pending", [False, True], ids=["confirmed", "pending"])
def test_import_with_invalid_lines_imports_nothing(daemon, smtp, workdir, pending):
    signup_and_confirm(daemon, smtp, "present@example.org")
    daemon.settle()
    before = db_dump(daemon.database)
    options = ["--pending"] if pending else []
    good = [b"email,name", b"good1@example.org,Good One", b"good2@example.org"]
    # each kind of bad line alone (at line 3) ...
    for what, bad in BAD_LINES:
        path = write(os.path.join(workdir, "bad.csv"), csv_bytes(good[:2] + [bad] + good[2:]))
        r = ctl(daemon, "import", path, *options, leak_check=False)   # see the leak test below
        assert r.rc == REFUSED, (what, r)
        assert "%s:3:" % path in r.err, (what, r.err)
        assert "%s:2:" % path not in r.err and "%s:4:" % path not in r.err, (what, r.err)
        assert db_dump(daemon.database) == before, what
    # ... and all of them in one file, between good lines, CRLF
    lines = [b"email,name"]
    bad_numbers = []
    for i, (_, bad) in enumerate(BAD_LINES):
        lines.append(b"ok%d@example.org,Fine %d" % (i, i))
        lines.append(bad)
        bad_numbers.append(len(lines))
    lines.append(b"last@example.org")
    path = write(os.path.join(workdir, "worse.csv"), csv_bytes(lines, crlf=True))
    r = ctl(daemon, "import", path, "--json", *options, leak_check=False)
    assert r.rc == REFUSED, r
    reported = sorted(int(l.split(":")[1]) for l in r.err.splitlines() if l.startswith(path + ":"))
    assert reported == bad_numbers, r.err
    assert "nothing was imported" in r.err.splitlines()[-1]
    assert r.out == ""
    time.sleep(0.5)
    assert db_dump(daemon.database) == before
    assert smtp.count() == 1
    # a good file goes in afterwards: the failed one left nothing staged
    path = write(os.path.join(workdir, "good.csv"), csv_bytes(good))
    assert import_csv(daemon, path, *options)["added"] == 2


@pytest.mark.skipif(not ctl_is_sanitized(), reason="needs an ASan build of newsletterctl")
def test_import_of_invalid_lines_leaks_nothing_in_the_cli(daemon, workdir):
    path = write(os.path.join(workdir, "bad.csv"), "good@example.org\nnot-an-address\n")
    r = ctl(daemon, "import", path)     # asserts no sanitizer report
    r.fails(REFUSED)


def test_import_refusals(daemon, workdir):
    path = write(os.path.join(workdir, "x.csv"), "x@example.org\n")
    before = db_dump(daemon.database)
    r = ctl(daemon, "import", path, "--list", "nosuchlist")
    assert "unknown list" in one_line_reason(r)
    r.fails(REFUSED)
    r = ctl(daemon, "import", os.path.join(workdir, "missing.csv"))
    r.fails(REFUSED)
    assert "missing.csv" in one_line_reason(r)
    ctl(daemon, "import", path, "--lang", "fr").fails(USAGE)
    ctl(daemon, "import").fails(USAGE)
    ctl(daemon, "import", path, path).fails(USAGE)
    assert db_dump(daemon.database) == before


def test_import_twenty_thousand_rows(daemon, smtp, workdir):
    n = 20000
    lines = ["email,name"] + ["bulk%05d@example.org,Bulk Nummer %d" % (i, i) for i in range(n)]
    lines.append("BULK00007@example.org,Twice")
    path = write(os.path.join(workdir, "bulk.csv"), "\n".join(lines) + "\n")
    counts = import_csv(daemon, path)
    assert counts == {"rows": n + 1, "added": n, "duplicates": 1, "existing": 0}, counts
    assert daemon.query("SELECT count(*) AS n FROM subscription WHERE state = 'confirmed'")[0]["n"] == n
    assert stats(daemon)["subscribers"]["confirmed"] == n
    assert daemon.subscription("bulk19999@example.org")["state"] == "confirmed"
    assert smtp.count() == 0


# ---------------------------------------------------------------- stats

def dsn_for(address):
    """A minimal RFC 3464 report: the mail to `address` failed permanently."""
    return ("From: MAILER-DAEMON@mx.example.net\r\n"
            "To: newsletter@example.org\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"xyz\"\r\n"
            "\r\n"
            "--xyz\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\r\n"
            "--xyz\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.net\r\n\r\n"
            "Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
            "--xyz--\r\n" % address).encode("ascii")


def test_stats_after_a_known_sequence(daemon_factory, sink_factory, workdir):
    port = free_port()
    relay = CaptureSMTP(port=port).start()
    try:
        d = daemon_factory({"smtp": {"retry_initial": "1h", "retry_max": "1h"}},
                           smtp_url=relay.url)
        empty = stats(d)
        assert empty["subscribers"] == {"pending": 0, "confirmed": 0, "expired": 0,
                                        "unsubscribed": 0, "bounced": 0}
        assert empty["mails"] == {"queued": 0, "sent": 0, "deferred": 0, "failed": 0}

        path = write(os.path.join(workdir, "three.csv"), "i1@example.org\ni2@example.org\ni3@example.org\n")
        assert import_csv(d, path)["added"] == 3
        for i in range(1, 5):
            check_answer(d.subscribe("s%d@example.org" % i), "pending")
        relay.wait_for(4)
        for a in ("s1@example.org", "s2@example.org"):
            (m,) = relay.to(a)
            check_answer(d.request({"op": "confirm", "token": m.token}), "confirmed")
        token = mint_unsubscribe_token(d.database, d.subscription("s1@example.org")["id"])
        check_answer(d.request({"op": "unsubscribe", "token": token}), "unsubscribed")
        ctl(d, "bounce", stdin=dsn_for("i1@example.org")).ok()
        assert d.subscription("i1@example.org")["state"] == "bounced"
        d.settle()
    finally:
        relay.stop()
    # a relay that defers: the next confirmation is deferred (and retried
    # only in an hour; a relay that is gone would be probed sooner)
    soft = sink_factory("-r", "RCPT", port=port)
    check_answer(d.subscribe("s5@example.org"), "pending")
    d.wait_outbox(lambda rows: any(r["state"] == "deferred" for r in rows),
                  what="a deferred mail")
    soft.stop()
    # a refusing relay on the same port: the next one fails
    sink_factory("-f", "RCPT", port=port)
    check_answer(d.subscribe("s6@example.org"), "pending")
    d.wait_outbox(lambda rows: any(r["state"] == "failed" for r in rows), what="a failed mail")

    st = stats(d)
    assert set(st) >= {"subscribers", "mails", "days"}
    assert st["subscribers"] == {"pending": 4, "confirmed": 3, "expired": 0,
                                 "unsubscribed": 1, "bounced": 1}, st["subscribers"]
    assert st["mails"] == {"queued": 0, "sent": 4, "deferred": 1, "failed": 1}, st["mails"]
    days = st["days"]
    assert len(days) == 30
    today = datetime.datetime.now(datetime.timezone.utc).date()
    dates = [datetime.date.fromisoformat(x["date"]) for x in days]
    # today last (allowing for a test running across midnight UTC)
    assert dates[-1] in (today, today - datetime.timedelta(days=1))
    assert all(b - a == datetime.timedelta(days=1) for a, b in zip(dates, dates[1:]))
    assert days[-1]["signups"] == 6 and days[-1]["confirmations"] == 2, days[-1]
    assert all(x["signups"] == 0 and x["confirmations"] == 0 for x in days[:-1])

    plain = ctl(d, "stats").ok().out
    assert "3 confirmed, 4 pending, 0 expired, 1 unsubscribed, 1 bounced" in plain, plain
    assert "0 queued, 4 sent, 1 deferred, 1 failed" in plain, plain
    assert re.search(r"^%s\s+6\s+2\s*$" % dates[-1].isoformat(), plain, re.M), plain


# ---------------------------------------------------------------- export

def test_export_shows_everything_stored_and_no_secret(daemon, smtp):
    check_answer(daemon.subscribe("Export.Me@Example.org", name="Ekaterina Export", lang="en",
                                  ip="198.51.100.7", user_agent="ExportAgent/2.0",
                                  consent_text="Ja, schickt mir den Newsletter.",
                                  consent_version="2024-06"), "pending")
    (mail,) = smtp.wait_for(1)
    check_answer(daemon.request({"op": "confirm", "token": mail.token, "ip": "198.51.100.8"}),
                 "confirmed")
    daemon.settle()
    r = ctl(daemon, "export", "export.me@example.org").ok()
    out = r.out
    data = json.loads(out)
    assert set(data) >= {"subscriber", "subscriptions", "consent", "mails", "tokens"}
    assert data["subscriber"]["email"] == "Export.Me@example.org"
    assert data["subscriber"]["name"] == "Ekaterina Export"
    assert data["subscriber"]["created_at"]
    (sub,) = data["subscriptions"]
    assert sub["list"] == "default" and sub["state"] == "confirmed" and sub["lang"] == "en"
    assert sub["confirmed_at"] and sub["confirm_ip"] == "198.51.100.8"
    events = {c["event"]: c for c in data["consent"]}
    assert set(events) == {"signup", "confirm"}
    signup = events["signup"]
    assert signup["ip"] == "198.51.100.7"
    assert signup["user_agent"] == "ExportAgent/2.0"
    assert signup["lang"] == "en"
    assert signup["source"] == "socket"
    assert signup["text_version"]
    assert signup["consent_text"] == "Ja, schickt mir den Newsletter."
    assert signup["consent_version"] == "2024-06"
    assert signup["at"]
    assert events["confirm"]["ip"] == "198.51.100.8" and events["confirm"]["at"]
    (m,) = data["mails"]
    assert m["kind"] == "confirm" and m["state"] == "sent"
    (tok,) = data["tokens"]
    assert set(tok) <= {"list", "kind", "issued_at", "expires_at"}, tok
    assert tok["kind"] == "confirm"
    for key in ("issued_at", "expires_at"):
        datetime.datetime.strptime(tok[key], "%Y-%m-%dT%H:%M:%SZ")
    # no secret in any form
    digest = token_hash(mail.token)
    for secret in (mail.token, digest.hex(), digest.hex().upper(),
                   base64.b64encode(digest).decode(), base64.urlsafe_b64encode(digest).decode().rstrip("=")):
        assert secret not in out
    # the same whatever the case of the address
    assert ctl(daemon, "export", "EXPORT.ME@EXAMPLE.ORG").ok().out == out


def test_export_of_an_unknown_address(daemon, smtp):
    check_answer(daemon.subscribe("known@example.org"), "pending")
    r = ctl(daemon, "export", "unknown@example.org")
    r.fails(REFUSED)
    assert "unknown@example.org" in one_line_reason(r)
    assert r.out == ""
    r = ctl(daemon, "export", "not an address")
    r.fails(REFUSED)
    one_line_reason(r)
    ctl(daemon, "export").fails(USAGE)


# ---------------------------------------------------------------- erase

def raw_database(daemon):
    """The bytes of the database file and its WAL, as they are on disk."""
    data = b""
    for suffix in ("", "-wal"):
        try:
            with open(daemon.database + suffix, "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


def test_erase_removes_every_trace(daemon, smtp):
    signup_and_confirm(daemon, smtp, "Stays.Here@example.org", name="Bleibt Hier",
                       user_agent="StayAgent/1")
    signup_and_confirm(daemon, smtp, "Erase.Me@Example.org", name="Xaver Löschmann",
                       ip="203.0.113.99", user_agent="EraseAgent/7.7", lang="en")
    check_answer(daemon.subscribe("erase.me@example.org", list="events"), "pending")
    smtp.wait_for(3)
    daemon.settle()
    raw = raw_database(daemon)
    assert b"erase.me@example.org" in raw and "Löschmann".encode() in raw

    r = ctl(daemon, "erase", "ERASE.ME@example.org", "--json").ok()
    assert json.loads(r.out) == {"erased": True}
    ctl(daemon, "export", "erase.me@example.org").fails(REFUSED)
    raw = raw_database(daemon)
    for trace in ("erase.me", "Erase.Me", "ERASE.ME", "Xaver", "Löschmann", "EraseAgent/7.7",
                  "203.0.113.99"):
        assert trace.encode("utf-8") not in raw, "%r is still in the database files" % trace
    # the other subscriber is all there (and proves the scan reads the data)
    assert b"stays.here@example.org" in raw and "Bleibt Hier".encode() in raw
    assert ctl_json(daemon, "export", "stays.here@example.org")["subscriber"]["name"] == "Bleibt Hier"
    assert daemon.query("SELECT count(*) AS n FROM subscription")[0]["n"] == 1
    assert daemon.query("SELECT count(*) AS n FROM consent")[0]["n"] == 2
    assert len(daemon.outbox()) == 1

    # a second erase finds nothing
    r = ctl(daemon, "erase", "erase.me@example.org")
    r.fails(REFUSED)
    one_line_reason(r)
    # a new sign-up starts over
    check_answer(daemon.subscribe("erase.me@example.org"), "pending")
    (again,) = smtp.wait_for_rcpt("erase.me@example.org", n=2)[1:]
    assert daemon.subscription("erase.me@example.org")["state"] == "pending"
    exported = ctl_json(daemon, "export", "erase.me@example.org")
    assert exported["subscriber"]["name"] is None
    assert [c["event"] for c in exported["consent"]] == ["signup"]
    check_answer(daemon.request({"op": "confirm", "token": again.token}), "confirmed")


def test_erase_drops_queued_mails(daemon_factory):
    port = free_port()
    d = daemon_factory(smtp_url="smtp://127.0.0.1:%d" % port)
    check_answer(d.subscribe("victim@example.org", name="Vic Tim"), "pending")
    check_answer(d.subscribe("canary@example.org"), "pending")
    d.wait_outbox(lambda rows: len(rows) == 2 and all(r["state"] == "deferred" for r in rows),
                  what="both mails to be deferred")
    ctl(d, "erase", "victim@example.org").ok()
    assert len(d.outbox()) == 1
    relay = CaptureSMTP(port=port).start()
    try:
        relay.wait_for_rcpt("canary@example.org", timeout=10)
        d.settle()
        time.sleep(0.5)
        assert relay.to("victim@example.org") == []
        assert relay.count() == 1
    finally:
        relay.stop()
    assert b"victim@example.org" not in raw_database(d)


def test_erase_also_removes_test_sends_to_the_address(daemon, smtp, workdir):
    signup_and_confirm(daemon, smtp, "tester@example.org")
    text = write(os.path.join(workdir, "t.txt"), "Probe\n")
    ctl(daemon, "send", "--test", "tester@example.org", "--subject", "Probe", "--text", text).ok()
    smtp.wait_for(2)
    daemon.settle()
    ctl(daemon, "erase", "tester@example.org").ok()
    assert b"tester@example.org" not in raw_database(daemon)


# ---------------------------------------------------------------- the admin socket

ADMIN_ONLY = [
    {"op": "expire"},
    {"op": "import_begin", "source": "x.csv"},
    {"op": "import_rows", "first_line": 1, "lines": ["evil@example.net"]},
    {"op": "import_commit"},
    {"op": "stats"},
    {"op": "export", "email": "someone@example.org"},
    {"op": "erase", "email": "someone@example.org"},
    {"op": "send", "subject": "Spam", "text": "Buy now"},
    {"op": "status"},
    {"op": "pause", "issue": 1},
    {"op": "resume", "issue": 1},
    {"op": "cancel", "issue": 1},
    {"op": "bounce", "message": "eA=="},
]


@pytest.mark.parametrize("req", ADMIN_ONLY, ids=lambda r: r["op"])
def test_admin_op_on_the_public_socket_is_forbidden(shared_daemon, req):
    with shared_daemon.client() as c:
        check_answer(c.request(req), "error", "forbidden")
        check_answer(c.request({"op": "ping"}), "ok")
    # nothing happened: no issue was queued, nothing imported
    assert shared_daemon.query("SELECT count(*) AS n FROM issue")[0]["n"] == 0
    assert shared_daemon.query("SELECT count(*) AS n FROM subscriber")[0]["n"] == 0


def test_admin_socket_serves_the_same_ops_to_root(daemon, smtp):
    """The same requests on the admin socket are served (the CLI's path)."""
    with Client(daemon.admin_socket) as c:
        for req in ({"op": "stats"}, {"op": "expire"}, {"op": "ping"},
                    {"op": "export", "email": "someone@example.org"}):
            answer = c.request(req)
            assert answer["state"] == "ok", (req, answer)
        assert c.request({"op": "export", "email": "someone@example.org"})["found"] is False


NOBODY = pwd.getpwnam("nobody")


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY.pw_gid)
    os.setuid(NOBODY.pw_uid)


RAW_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(5)
try:
    s.sendall(b'{"op":"stats"}\n')
except OSError:
    pass
data, closed = b"", False
while True:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        closed = True
        break
    except socket.timeout:
        break
    if not chunk:
        closed = True
        break
    data += chunk
    if b"\n" in data:
        # one answer: is the connection closed after it?
        s.settimeout(float(sys.argv[2]))
print(json.dumps({"answer": data.decode("utf-8", "replace"), "closed": closed}))
"""


def raw_as_nobody(path, linger=2.0):
    """Send one stats request as user nobody: its answer, and whether the
    daemon closed the connection within `linger` seconds after it."""
    p = subprocess.run([sys.executable, "-c", RAW_CLIENT, path, str(linger)], capture_output=True,
                       preexec_fn=as_nobody, timeout=20)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def open_to_nobody(daemon):
    """Let user nobody reach the daemon's directory, its config and a copy of
    newsletterctl there (the build directory may sit where nobody cannot
    go, e.g. in a fresh clone under a 0700 temporary directory)."""
    os.chmod(daemon.dir, 0o755)
    os.chmod(daemon.config_path, 0o644)
    copy = os.path.join(daemon.dir, "newsletterctl")
    if not os.path.exists(copy):
        shutil.copy(NEWSLETTERCTL, copy)
        os.chmod(copy, 0o755)
    daemon.ctl_for_nobody = copy


def ctl_as_nobody(daemon, *args):
    return ctl(daemon, *args, preexec_fn=as_nobody, binary=daemon.ctl_for_nobody)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_admin_socket_refuses_a_peer_that_is_no_admin(daemon):
    open_to_nobody(daemon)
    st = os.stat(daemon.admin_socket)
    assert stat.S_IMODE(st.st_mode) == 0o660
    # first fence: the file mode
    r = ctl_as_nobody(daemon, "stats")
    r.fails(UNREACHABLE)
    # second fence: with the mode wrong, the credentials
    os.chmod(daemon.admin_socket, 0o666)
    seen = raw_as_nobody(daemon.admin_socket)
    (line,) = seen["answer"].splitlines()
    answer = json.loads(line)
    assert answer["state"] == "error" and answer["error"] == "forbidden", answer
    assert seen["closed"], seen
    assert "stats" not in answer and "subscribers" not in answer
    assert "admin connection of uid %d refused" % NOBODY.pw_uid in daemon.stderr()
    # whatever the CLI makes of it, it gets nothing and says why
    for _ in range(5):
        r = ctl_as_nobody(daemon, "stats", "--json")
        assert r.rc in (REFUSED, UNREACHABLE), r
        one_line_reason(r)
        assert r.out == ""
    check_answer(daemon.request({"op": "ping"}), "ok")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_newsletterctl_says_forbidden_to_a_peer_that_is_no_admin(daemon):
    open_to_nobody(daemon)
    os.chmod(daemon.admin_socket, 0o666)
    # twenty tries: each outcome depends on who is faster, the CLI's send or the
    # daemon's close (the wrong answer came 20 to 37 times in 40, plain, ASan, valgrind)
    for _ in range(20):
        r = ctl_as_nobody(daemon, "stats", "--json")
        r.fails(REFUSED)
        assert "forbidden" in one_line_reason(r)
        assert r.out == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
@pytest.mark.parametrize("grant", [{"admin_users": "nobody"}, {"admin_group": "nogroup"}],
                         ids=["admin_users", "admin_group"])
def test_admin_socket_admits_configured_admins(daemon_factory, smtp, grant):
    d = daemon_factory({"daemon": grant})
    open_to_nobody(d)
    if "admin_group" in grant:
        # the group owns the socket: no chmod needed
        st = os.stat(d.admin_socket)
        assert st.st_gid == grp.getgrnam("nogroup").gr_gid
        assert stat.S_IMODE(st.st_mode) == 0o660
    else:
        os.chmod(d.admin_socket, 0o666)
    check_answer(d.subscribe("seen@example.org"), "pending")
    out = ctl_as_nobody(d, "stats", "--json").ok().json
    assert out["subscribers"]["pending"] == 1
    seen = raw_as_nobody(d.admin_socket, linger=0.1)
    answer = json.loads(seen["answer"].splitlines()[0])
    assert answer["state"] == "ok" and answer["subscribers"]["pending"] == 1, answer


def test_unreachable_daemon_exits_3(daemon_factory, workdir):
    d = daemon_factory()
    path = write(os.path.join(workdir, "u.csv"), "u@example.org\n")
    text = write(os.path.join(workdir, "u.txt"), "x\n")
    assert d.stop() == 0
    for args in (["stats"], ["expire"], ["export", "a@example.org"], ["erase", "a@example.org"],
                 ["import", path], ["status"], ["send", "--subject", "S", "--text", text],
                 ["pause", "1"]):
        r = ctl(d, *args)
        r.fails(UNREACHABLE)
        assert "cannot reach newsletterd" in one_line_reason(r), (args, r.err)


# ---------------------------------------------------------------- usage

COMMANDS = ["expire", "import", "send", "status", "pause", "resume", "cancel", "stats",
            "export", "erase", "bounce", "dkim-keygen"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(workdir, command):
    # no daemon and no config needed for --help
    r = ctl(None, command, "--help", config=os.path.join(workdir, "absent.conf")).ok()
    assert r.out.startswith("usage: newsletterctl"), r.out
    assert " %s" % command in r.out.splitlines()[0]
    assert len(r.out.splitlines()) >= 3, "no explanation: %r" % r.out
    r = ctl(None, command, "--no-such-option", config=os.path.join(workdir, "absent.conf"))
    r.fails(USAGE)
    assert "usage:" in r.err


def test_usage_errors_exit_2(daemon, workdir):
    text = write(os.path.join(workdir, "t.txt"), "x\n")
    r = subprocess.run([NEWSLETTERCTL, "--help"], capture_output=True, timeout=10)
    assert r.returncode == 0 and b"commands:" in r.stdout
    for cmd in COMMANDS:
        assert cmd.encode() in r.stdout
    r = subprocess.run([NEWSLETTERCTL], capture_output=True, timeout=10)
    assert r.returncode == USAGE and r.stderr
    for args in (["frobnicate"], ["stats", "extra"], ["expire", "now"], ["send", "--text", text],
                 ["send", "--subject", "S"], ["status", "1", "2"], ["status", "abc"],
                 ["pause"], ["pause", "x"], ["resume", "0"], ["cancel", "-3"],
                 ["export", "a@example.org", "b@example.org"], ["erase"]):
        ctl(daemon, *args).fails(USAGE)
    # none of that reached the daemon's data
    assert daemon.query("SELECT count(*) AS n FROM issue")[0]["n"] == 0
