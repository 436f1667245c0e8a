"""Bounces from a mailbox (issue 22): the daemon reads [bounce] imap_url
over IMAP with libcurl, hands each unseen message to the same bounce logic
as `newsletterctl bounce`, deletes (or, with imap_keep, flags \\Seen) what
it handled only after the outcome is committed, leaves what it does not
understand unseen, and handles no message twice, not even across a crash
between the commit and the delete.  Against a real Dovecot (imaphelpers),
over TLS with a certificate made for the test."""
import json
import os
import re
import socket
import threading
import time

import pytest

import imaphelpers
from imaphelpers import Dovecot, PASSWORD, USER
from dkimhelpers import ctl
from nlhelpers import check_answer, check_config, free_port, wait_until
from test_deliverability import (RETURN_PATH, admin, dsn, newsletter_to_readers, ordinary_mail,
                                 subscription_states, verp)

WAIT = 30.0


@pytest.fixture
def dovecot(request):
    why = imaphelpers.available()
    if why:
        pytest.skip(why)
    dc = Dovecot().start()
    yield dc
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print("---- dovecot log (last 4000 chars) ----\n%s" % dc.log()[-4000:])
    dc.destroy()


def password_file(workdir, password=PASSWORD, mode=0o600, name="imap.pw"):
    path = os.path.join(workdir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    os.chmod(path, mode)
    return path


def imap_conf(dc, workdir, tls="imaps", password=PASSWORD, **more):
    conf = {"imap_url": dc.url(tls), "imap_username": USER,
            "imap_password_file": password_file(workdir, password),
            "imap_ca_file": dc.cert, "imap_interval": "1s"}
    conf.update(more)
    return conf


def imap_stats(d):
    return admin(d, {"op": "stats"})["imap"]


def polls_after(d, n=2):
    """Wait for n more complete polls; the stats then."""
    first = imap_stats(d)["last_poll"]
    seen = [first]

    def advanced():
        s = imap_stats(d)
        if s["last_poll"] != seen[-1]:
            seen.append(s["last_poll"])
        return s if len(seen) > n else None
    return wait_until(advanced, timeout=WAIT, what="%d more polls of the mailbox" % n)


def bounce_rows(d):
    return [dict(r) for r in d.query("SELECT * FROM bounce ORDER BY id")]


@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_dsn_in_the_mailbox_suppresses_and_is_deleted_a_non_bounce_stays_unseen(
        daemon_factory, smtp, workdir, dovecot, tls):
    dovecot.deliver(ordinary_mail("bounces@example.org"))
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir,
        bounce_conf=imap_conf(dovecot, workdir, "imaps" if tls == "imaps" else "imap"))
    dovecot.deliver(dsn(verp(d, ids["bert@example.net"]), "bert@example.net"))

    wait_until(lambda: subscription_states(d)[("bert@example.net", "default")] == "bounced",
               timeout=WAIT, what="bert to be bounced")
    wait_until(lambda: len(dovecot.messages()) == 1, timeout=WAIT, what="the DSN to be deleted")
    stats = polls_after(d)
    # the non-bounce is still there, unseen, and was counted once only
    [(uid, flags, subject)] = dovecot.messages()
    assert subject == "Re: Ausgabe 1" and "\\Seen" not in flags, flags
    assert (stats["handled"], stats["not_understood"], stats["skipped"]) == (1, 1, 0), stats
    assert stats["last_error"] == "" and stats["last_poll"] > 0, stats
    assert states_but(d, "bert@example.net") == {"confirmed"}
    assert [(r["kind"], r["outbox_id"]) for r in bounce_rows(d)] == \
        [("permanent", ids["bert@example.net"])]
    # every login came over TLS (Dovecot says "secured" for plain text on loopback)
    logins = [l for l in dovecot.log().splitlines() if "Login: user=<%s>" % USER in l]
    assert logins and all(", TLS," in l for l in logins), logins
    # newsletterctl shows them
    r = ctl(d.config_path, "stats", "--json")
    assert r.rc == 0, r
    shown = json.loads(r.out)["imap"]
    assert (shown["handled"], shown["not_understood"], shown["last_error"]) == (1, 1, ""), shown
    assert shown["last_poll"] >= stats["last_poll"], shown
    r = ctl(d.config_path, "stats")
    assert r.rc == 0 and "mailbox:" in r.out and "1 handled, 1 not understood and 0 refused" in r.out, r
    # the figures reach Prometheus too (its mapping is generic over the JSON)
    r = ctl(d.config_path, "stats", "--prometheus")
    assert r.rc == 0, r
    assert re.search(r"^newsletterd_imap_handled(_total)? 1$", r.out, re.M), r.out


def states_but(d, address):
    return {s for (a, _), s in subscription_states(d).items() if a != address}


def test_imap_keep_flags_the_handled_message_seen_and_leaves_it(daemon_factory, smtp, workdir,
                                                                 dovecot):
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir, bounce_conf=imap_conf(dovecot, workdir, imap_keep="yes"))
    dovecot.deliver(dsn(verp(d, ids["ada@example.org"]), "ada@example.org"))
    wait_until(lambda: any("\\Seen" in f for _, f, _ in dovecot.messages()), timeout=WAIT,
               what="the DSN to be flagged")
    stats = polls_after(d)
    assert [f for _, f, _ in dovecot.messages()] == [{"\\Seen"}]
    assert (stats["handled"], stats["not_understood"]) == (1, 0), stats
    assert len(bounce_rows(d)) == 1


def test_the_same_dsn_twice_is_handled_once(daemon_factory, smtp, workdir, dovecot):
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir, bounce_conf=imap_conf(dovecot, workdir))
    report = dsn(verp(d, ids["ada@example.org"]), "ada@example.org", status="4.2.2",
                 action="delayed", diagnostic="smtp; 452 4.2.2 mailbox full")
    dovecot.deliver(report)
    dovecot.deliver(report)
    wait_until(lambda: dovecot.messages() == [], timeout=WAIT, what="both copies to be deleted")
    stats = imap_stats(d)
    assert (stats["handled"], stats["skipped"]) == (1, 1), stats
    assert [r["kind"] for r in bounce_rows(d)] == ["temporary"]


def test_crash_between_commit_and_delete_handles_the_message_once(daemon_factory, smtp, workdir,
                                                                   dovecot):
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir, bounce_conf=imap_conf(dovecot, workdir))
    d.stop()
    # test-only: the poller waits this long after the commit before its delete
    d.env["NEWSLETTERD_TEST_IMAP_HOLD"] = "60"
    d.start()
    report = dsn(verp(d, ids["cleo@example.com"]), "cleo@example.com", status="4.2.2",
                 action="delayed", diagnostic="smtp; 452 4.2.2 mailbox full")
    dovecot.deliver(report)
    wait_until(lambda: "committed, held" in d.stderr(), timeout=WAIT, what="the commit")
    d.kill9()
    # the outcome is on disk, the message still in the mailbox
    assert [r["kind"] for r in bounce_rows(d)] == ["temporary"]
    assert len(dovecot.messages()) == 1
    del d.env["NEWSLETTERD_TEST_IMAP_HOLD"]
    d.start()
    wait_until(lambda: dovecot.messages() == [], timeout=WAIT, what="the message to be deleted")
    stats = imap_stats(d)
    assert (stats["handled"], stats["skipped"]) == (0, 1), stats
    assert [r["kind"] for r in bounce_rows(d)] == ["temporary"]


def test_wrong_password_is_logged_and_retried_never_fatal(daemon_factory, smtp, workdir, dovecot):
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir,
        bounce_conf=imap_conf(dovecot, workdir, password="not-the-password"))
    dovecot.deliver(dsn(verp(d, ids["ada@example.org"]), "ada@example.org"))
    stats = wait_until(lambda: (lambda s: s if s["failures"] >= 1 else None)(imap_stats(d)),
                       timeout=WAIT, what="a failed poll")
    assert "login" in stats["last_error"].lower(), stats
    assert stats["last_poll"] == 0 and stats["handled"] == 0
    assert "imap: search: Login denied" in d.stderr()
    assert PASSWORD not in d.stderr() and "not-the-password" not in d.stderr()
    r = ctl(d.config_path, "stats")
    assert r.rc == 0 and "last poll never" in r.out and "last error: search: Login denied" in r.out, r
    assert d.request({"op": "ping"})["state"] == "ok"
    assert len(dovecot.messages()) == 1 and bounce_rows(d) == []


def test_untrusted_certificate_is_refused(daemon_factory, smtp, workdir, dovecot):
    conf = imap_conf(dovecot, workdir)
    del conf["imap_ca_file"]
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, bounce_conf=conf)
    dovecot.deliver(dsn(verp(d, ids["ada@example.org"]), "ada@example.org"))
    stats = wait_until(lambda: (lambda s: s if s["failures"] >= 1 else None)(imap_stats(d)),
                       timeout=WAIT, what="a failed poll")
    assert "certificate" in stats["last_error"].lower() or "ssl" in stats["last_error"].lower(), stats
    assert "Login: user=" not in dovecot.log()
    assert len(dovecot.messages()) == 1


class PlainImapServer:
    """An IMAP server that offers no STARTTLS and records every line it gets."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.lines = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
                f = conn.makefile("rb")
                for line in f:
                    self.lines.append(line)
                    tag = line.split(b" ", 1)[0]
                    if b"CAPABILITY" in line.upper():
                        conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                    elif b"LOGOUT" in line.upper():
                        conn.sendall(b"* BYE\r\n" + tag + b" OK bye\r\n")
                        break
                    else:
                        conn.sendall(tag + b" OK fine\r\n")

    def close(self):
        self.sock.close()


def test_plain_imap_without_starttls_never_sends_the_password(daemon_factory, smtp, workdir):
    server = PlainImapServer()
    try:
        d = daemon_factory({"bounce": {
            "imap_url": "imap://127.0.0.1:%d/INBOX" % server.port, "imap_username": USER,
            "imap_password_file": password_file(workdir), "imap_interval": "1s"}})
        stats = wait_until(lambda: (lambda s: s if s["failures"] >= 1 else None)(imap_stats(d)),
                           timeout=WAIT, what="a failed poll")
        assert "ssl" in stats["last_error"].lower() or "tls" in stats["last_error"].lower(), stats
        assert server.lines, "the daemon never connected"
        sent = b"".join(server.lines)
        assert PASSWORD.encode() not in sent and b"LOGIN" not in sent.upper() \
            and b"AUTHENTICATE" not in sent.upper(), sent
    finally:
        server.close()


@pytest.mark.parametrize("keys,error", [
    ({"imap_url": "http://localhost/INBOX"}, "imap_url must be"),
    ({"imap_url": "imaps://localhost"}, "imap_url must be"),
    ({"imap_url": "imap://"}, "imap_url must be"),
    ({"imap_url": "imaps:///INBOX"}, "imap_url must be"),
    ({"imap_url": "imaps://localhost/"}, "imap_url must be"),
    ({"imap_url": "imaps://localhost/INBOX;UID=1"}, "imap_url must be"),
    ({"imap_url": "imaps://localhost/INBOX"}, "imap_url needs imap_username and imap_password_file"),
    ({"imap_interval": "0"}, "imap_interval must be between"),
])
def test_bad_imap_settings_are_config_errors(daemon_factory, workdir, keys, error):
    d = daemon_factory({"bounce": keys}, start=False)
    rc, out, err = check_config(d.config_path)
    assert rc != 0 and error in err, (rc, out, err)


def test_password_file_readable_by_others_is_a_config_error(daemon_factory, workdir):
    path = password_file(workdir, mode=0o644)
    d = daemon_factory({"bounce": {"imap_url": "imaps://localhost/INBOX", "imap_username": USER,
                                   "imap_password_file": path}}, start=False)
    rc, out, err = check_config(d.config_path)
    assert rc != 0 and "readable by group or others" in err and path in err, (rc, out, err)
    os.chmod(path, 0o600)
    rc, out, err = check_config(d.config_path)
    assert rc == 0, (rc, out, err)


def test_unreachable_server_is_logged_and_retried_never_fatal(daemon_factory, smtp, workdir):
    port = free_port()          # nothing listens there
    d = daemon_factory({"bounce": {
        "imap_url": "imaps://127.0.0.1:%d/INBOX" % port, "imap_username": USER,
        "imap_password_file": password_file(workdir), "imap_interval": "1s"}})
    stats = wait_until(lambda: (lambda s: s if s["failures"] >= 1 else None)(imap_stats(d)),
                       timeout=WAIT, what="a failed poll")
    assert "connect" in stats["last_error"].lower(), stats
    assert stats["last_error_at"] > 0 and stats["last_poll"] == 0
    assert "imap: search: " in d.stderr()
    check_answer(d.subscribe("ada@example.org"), "pending")
    smtp.wait_for(1)
    # the pause doubles: imap_interval times 2, 4, ...
    wait_until(lambda: "2 failed polls in a row; trying again in 4 s" in d.stderr(), timeout=WAIT,
               what="the second retry")
    assert "1 failed polls in a row; trying again in 2 s" in d.stderr()


def imap_seen(d):
    return [tuple(r) for r in d.query("SELECT handled, at FROM imap_seen ORDER BY at, handled")]


def forged_verp(d, mail_id):
    """The VERP address of a mail with a tag under a key that is not the daemon's."""
    return verp(d, mail_id, key=b"\x5a" * 32)


def test_refused_reports_stay_unseen_are_counted_and_judged_once(daemon_factory, smtp, workdir,
                                                                  dovecot):
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir, bounce_conf=imap_conf(dovecot, workdir))
    # a report to the plain mailbox naming a subscriber (a provider that
    # dropped the +tag, or a forgery), and one with a tag that is not ours
    dovecot.deliver(dsn("bounces@example.org", "bert@example.net"))
    dovecot.deliver(dsn(forged_verp(d, ids["ada@example.org"]), "ada@example.org"))
    wait_until(lambda: imap_stats(d)["refused"] == 2, timeout=WAIT, what="two refused reports")
    stats = polls_after(d)
    assert (stats["handled"], stats["not_understood"], stats["refused"], stats["skipped"]) == \
        (0, 0, 2, 0), stats
    # both still there, unseen, for a human to read; nobody suppressed
    assert [f for _, f, _ in dovecot.messages()] == [set(), set()]
    assert set(subscription_states(d).values()) == {"confirmed"}
    assert bounce_rows(d) == []
    assert [h for h, _ in imap_seen(d)] == [0, 0]
    bounces = admin(d, {"op": "stats"})["bounces"]
    assert (bounces["refused"], bounces["not_understood"]) == (2, 0), bounces
    r = ctl(d.config_path, "stats", "--prometheus")
    assert r.rc == 0, r
    assert re.search(r"^newsletterd_imap_refused(_total)? 2$", r.out, re.M), r.out
    assert re.search(r"^newsletterd_imap_not_understood(_total)? 0$", r.out, re.M), r.out
    r = ctl(d.config_path, "stats")
    assert r.rc == 0 and "0 not understood and 2 refused (left unseen)" in r.out, r
    # after a restart (nothing remembered) they are recognised, not judged again
    d.stop()
    d.start()
    wait_until(lambda: imap_stats(d)["skipped"] == 2, timeout=WAIT, what="both to be skipped")
    stats = polls_after(d)
    assert (stats["handled"], stats["refused"], stats["skipped"]) == (0, 0, 2), stats
    assert [f for _, f, _ in dovecot.messages()] == [set(), set()]
    assert len(imap_seen(d)) == 2 and bounce_rows(d) == []


def header_lines_without(message, names):
    """MESSAGE with the header fields called NAMES (lower case) taken out."""
    head, sep, body = message.partition("\n\n")
    kept = [l for l in head.split("\n") if l.split(":", 1)[0].lower() not in names]
    return "\n".join(kept) + sep + body


@pytest.mark.parametrize("below", ["to", "x-original-to"])
def test_the_mailbox_own_address_added_on_top_is_passed_over(daemon_factory, smtp, workdir,
                                                               dovecot, below):
    """A hosted mailbox adds `Delivered-To: bounces@example.org` (its own
    address, without the +tag) on top of what the provider's MTA wrote."""
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir, bounce_conf=imap_conf(dovecot, workdir))
    report = dsn(verp(d, ids["bert@example.net"]), "bert@example.net")
    drop = {"delivered-to", "x-original-to"} if below == "to" else {"delivered-to"}
    report = "Delivered-To: bounces@example.org\n" + header_lines_without(report, drop)
    assert report.count("bounces+") == (1 if below == "to" else 2)
    dovecot.deliver(report)
    wait_until(lambda: subscription_states(d)[("bert@example.net", "default")] == "bounced",
               timeout=WAIT, what="bert to be bounced")
    wait_until(lambda: dovecot.messages() == [], timeout=WAIT, what="the DSN to be deleted")
    stats = imap_stats(d)
    assert (stats["handled"], stats["refused"]) == (1, 0), stats
    assert [(r["kind"], r["outbox_id"]) for r in bounce_rows(d)] == \
        [("permanent", ids["bert@example.net"])]


def test_messages_left_unseen_never_keep_a_newer_report_from_its_turn(daemon_factory, smtp,
                                                                      workdir, dovecot):
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir, bounce_conf=imap_conf(dovecot, workdir))
    d.stop()
    # more messages it does not understand than a poll fetches, then a DSN
    for i in range(7):
        dovecot.deliver(ordinary_mail("bounces@example.org").replace("reply-1@", "reply-%d@" % (i + 2)))
    dovecot.deliver(dsn(verp(d, ids["bert@example.net"]), "bert@example.net"))
    # test-only: a poll fetches at most 3 messages
    d.env["NEWSLETTERD_TEST_IMAP_PER_POLL"] = "3"
    d.start()
    assert "NEWSLETTERD_TEST_IMAP_PER_POLL is set" in d.stderr()
    wait_until(lambda: subscription_states(d)[("bert@example.net", "default")] == "bounced",
               timeout=WAIT, what="bert to be bounced")
    wait_until(lambda: len(dovecot.messages()) == 7, timeout=WAIT, what="the DSN to be deleted")
    stats = polls_after(d)
    assert (stats["handled"], stats["not_understood"], stats["skipped"]) == (1, 7, 0), stats
    # after a restart, when none is remembered, a new one gets its turn too,
    # and each old one is looked at once
    d.stop()
    dovecot.deliver(dsn(verp(d, ids["cleo@example.com"]), "cleo@example.com"))
    d.start()
    wait_until(lambda: subscription_states(d)[("cleo@example.com", "default")] == "bounced",
               timeout=WAIT, what="cleo to be bounced")
    wait_until(lambda: len(dovecot.messages()) == 7, timeout=WAIT, what="the DSN to be deleted")
    stats = polls_after(d, 3)
    assert (stats["handled"], stats["not_understood"], stats["skipped"]) == (1, 0, 7), stats
    assert [f for _, f, _ in dovecot.messages()] == [set()] * 7


def test_records_of_judged_messages_are_forgotten_after_90_days(daemon_factory, smtp, workdir,
                                                                 dovecot):
    d, issue, ids, _ = newsletter_to_readers(
        daemon_factory, smtp, workdir, bounce_conf=imap_conf(dovecot, workdir))
    dovecot.deliver(dsn(verp(d, ids["bert@example.net"]), "bert@example.net"))
    wait_until(lambda: dovecot.messages() == [], timeout=WAIT, what="the DSN to be deleted")
    [(handled, first)] = imap_seen(d)
    assert handled == 1
    d.restart_later(60 * 86400)
    dovecot.deliver(ordinary_mail("bounces@example.org"))
    wait_until(lambda: len(imap_seen(d)) == 2, timeout=WAIT, what="the second to be judged")
    # out of the mailbox (by a human), so that nothing is judged again
    dovecot.doveadm("expunge", "-u", USER, "mailbox", "INBOX", "all")
    second = imap_seen(d)[1][1]
    admin(d, {"op": "expire"})
    time.sleep(1.0)     # (the purge runs in slices between requests)
    assert imap_seen(d) == [(1, first), (0, second)]    # 60 days: kept
    d.restart_later(31 * 86400)
    admin(d, {"op": "expire"})
    wait_until(lambda: imap_seen(d) == [(0, second)], timeout=WAIT,
               what="the record of 91 days to be purged")
