"""Delivery through the outbox: relays that are down, refuse, defer or hang
up; retries with backoff, giving up, failover between URLs."""
import os
import socket
import time

import pytest

from ctlhelpers import ctl_json
from nlhelpers import (SLOW, BlackHoleRelay, CaptureSMTP, HangUpAfterDataRelay,
                       SilentAfterDataRelay, check_answer, free_port, wait_until)


def only_row(rows):
    assert len(rows) == 1, rows
    return rows[0]


def test_delivered_mail_is_marked_sent(daemon, smtp):
    check_answer(daemon.subscribe("sent@example.org"), "pending")
    smtp.wait_for(1)
    row = only_row(daemon.settle())
    assert row["state"] == "sent"
    assert row["kind"] == "confirm"
    assert row["attempts"] == 1
    assert row["done_at"] and abs(row["done_at"] - time.time()) < 60
    assert row["reply"] and row["reply"].startswith("250")


def test_relay_down_defers_then_delivers_when_it_comes_up(daemon_factory):
    port = free_port()
    d = daemon_factory(smtp_url="smtp://127.0.0.1:%d" % port)
    check_answer(d.subscribe("later@example.org"), "pending")
    rows = d.wait_outbox(lambda rows: rows and rows[0]["state"] == "deferred",
                         what="the mail to be deferred")
    row = only_row(rows)
    # a relay that is not there costs the mail no attempt (issue 17.4)
    assert row["attempts"] == 0
    assert row["reply"]
    assert row["next_at"] >= row["created_at"] + 1     # the relay's probe: retry_initial = 1s
    # the subscriber still sees pending
    check_answer(d.subscribe("later@example.org"), "pending")

    server = CaptureSMTP(port=port).start()
    try:
        (mail,) = server.wait_for(1, timeout=10)
        assert mail.rcpt_tos == ["later@example.org"]
        row = only_row(d.settle())
        assert row["state"] == "sent"
        assert row["attempts"] == 1
        check_answer(d.request({"op": "confirm", "token": mail.token}), "confirmed")
    finally:
        server.stop()


def test_permanent_refusal_fails_without_retry(daemon_factory, sink_factory):
    # a refusal that says nothing of the address (5.7.1); a dead address
    # (5.1.1) suppresses the sign-up as well: test_relay_refusals.py
    sink = sink_factory("-f", "RCPT", "-B", "550 5.7.1 Recipient refused by policy")
    d = daemon_factory(smtp_url=sink.url)
    check_answer(d.subscribe("nobody@example.org"), "pending")
    rows = d.wait_outbox(lambda rows: rows and rows[0]["state"] == "failed",
                         what="the mail to fail")
    row = only_row(rows)
    assert row["attempts"] == 1
    assert row["done_at"]
    # retry_initial is 1 s: no further attempt comes
    time.sleep(2.5)
    row = only_row(d.outbox())
    assert row["state"] == "failed" and row["attempts"] == 1
    # a failed mail is no confirmation, the sign-up stays pending
    assert d.subscription("nobody@example.org")["state"] == "pending"


def test_expiry_deletes_the_refused_confirmation_mail(daemon_factory, sink_factory):
    """A refused mail keeps the relay's reply, which may name the address:
    it goes when the sign-up expires (sql/009), not with the purge.  (A
    5.1.1 would suppress the sign-up instead: test_relay_refusals.py.)"""
    sink = sink_factory("-f", "RCPT", "-B", "550 5.7.1 <nobody@example.org> refused by policy")
    d = daemon_factory({"subscription": {"confirm_ttl": "2s", "resend_interval": "1s"}},
                       smtp_url=sink.url)
    check_answer(d.subscribe("nobody@example.org"), "pending")
    row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "failed",
                                 what="the mail to fail"))
    assert row["reply"].startswith("550")
    wait_until(lambda: ctl_json(d, "stats", "--json")["subscribers"]["expired"] == 1,
               timeout=6, what="the sign-up to expire")
    assert ctl_json(d, "expire", "--wait", "--json")["expired"] == 1
    assert d.outbox() == []
    assert d.query("SELECT count(*) FROM signup")[0][0] == 0


@pytest.mark.parametrize("command", ["DATA", "."])
def test_permanent_refusal_of_the_message(daemon_factory, sink_factory, command):
    sink = sink_factory("-f", command)
    d = daemon_factory(smtp_url=sink.url)
    check_answer(d.subscribe("message@example.org"), "pending")
    row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "failed",
                                 what="the mail to fail"))
    assert row["attempts"] == 1
    time.sleep(1.5)
    assert only_row(d.outbox())["attempts"] == 1


def test_permanent_refusal_of_mail_from(daemon_factory, sink_factory):
    sink = sink_factory("-f", "MAIL", "-B", "553 5.7.1 Sender not allowed")
    d = daemon_factory(smtp_url=sink.url)
    check_answer(d.subscribe("mailfrom@example.org"), "pending")
    row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "failed",
                                 what="the mail to fail"))
    assert row["attempts"] == 1
    assert row["reply"]


@pytest.mark.parametrize("options,final", [
    (("-f", "RCPT", "-B", "550 5.1.1 No such mailbox here"), "failed"),
    (("-f", "MAIL", "-B", "553 5.7.1 Sender not allowed"), "failed"),
    (("-r", "RCPT", "-b", "451 4.3.2 Try again later please"), "deferred"),
], ids=["5xx-RCPT", "5xx-MAIL", "4xx-RCPT"])
def test_refusal_reply_is_kept(daemon_factory, sink_factory, options, final):
    reply = options[-1]
    sink = sink_factory(*options)
    d = daemon_factory(smtp_url=sink.url)
    check_answer(d.subscribe("reply@example.org"), "pending")
    row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == final,
                                 what="the mail to be %s" % final))
    assert row["reply"] == reply
    log = d.stderr()
    # at info level the state and the code only (a reply may name the address),
    # the relay's whole reply at debug level (the test daemons log at debug)
    assert "mail 1: %s, SMTP code %s" % (final, reply[:3]) in log
    assert "mail 1: %s" % reply in log


def test_temporary_refusal_defers_and_retries(daemon_factory, sink_factory):
    sink = sink_factory("-r", "RCPT", "-b", "451 4.3.2 Try again later please")
    d = daemon_factory(smtp_url=sink.url)
    check_answer(d.subscribe("busy@example.org"), "pending")
    rows = d.wait_outbox(lambda rows: rows and rows[0]["state"] == "deferred",
                         what="the mail to be deferred")
    row = only_row(rows)
    assert row["reply"]
    assert row["done_at"] is None
    # retry_initial 1 s, retry_max 2 s: more attempts come within seconds
    rows = d.wait_outbox(lambda rows: rows[0]["attempts"] >= 3, timeout=15,
                         what="three attempts")
    row = only_row(rows)
    assert row["state"] in ("deferred", "sending")
    assert d.subscription("busy@example.org")["state"] == "pending"


def test_retry_delay_doubles_up_to_retry_max(daemon_factory, sink_factory):
    sink = sink_factory("-r", "RCPT")
    d = daemon_factory({"smtp": {"retry_initial": "1s", "retry_max": "4s"}},
                       smtp_url=sink.url)
    check_answer(d.subscribe("backoff@example.org"), "pending")
    # for each attempt: how far in the future its retry was scheduled when first seen
    delays = {}
    deadline = time.monotonic() + 30
    while max(delays, default=0) < 4 and time.monotonic() < deadline:
        row = d.outbox()[0]
        seen = time.time()
        if row["state"] == "deferred" and row["attempts"] not in delays:
            delays[row["attempts"]] = row["next_at"] - seen
        time.sleep(0.03)
    # a deferred state may be too short to be seen, but most are
    assert len(delays) >= 3 and max(delays) >= 4, delays
    for attempts, delay in delays.items():
        expected = min(2 ** (attempts - 1), 4)
        # next_at is whole seconds from the moment of the write, which came
        # shortly before `seen` (allow for a slow poll)
        assert expected - 1.6 < delay <= expected + 0.01, (attempts, delay, delays)


@pytest.mark.parametrize("options,what", [
    (("-q", "DATA"), "disconnect at DATA"),
    (("-q", "RCPT"), "disconnect at RCPT"),
    (("-Q", "MAIL"), "421 at MAIL"),
    (("-Q", "CONNECT"), "421 greeting"),
    (("-q", "."), "disconnect after the message"),
])
def test_relay_hanging_up_defers(daemon_factory, sink_factory, options, what):
    sink = sink_factory(*options)
    d = daemon_factory(smtp_url=sink.url)
    check_answer(d.subscribe("hangup@example.org"), "pending")
    rows = d.wait_outbox(lambda rows: rows and rows[0]["state"] == "deferred"
                         and rows[0]["attempts"] >= 2, timeout=15,
                         what="the mail to be deferred twice (%s)" % what)
    row = only_row(rows)
    assert row["reply"]
    assert row["done_at"] is None


def test_give_up_after_turns_temporary_into_failed(daemon_factory, sink_factory):
    sink = sink_factory("-r", "RCPT")
    d = daemon_factory({"smtp": {"give_up_after": "3s", "retry_initial": "1s",
                                 "retry_max": "1s"}}, smtp_url=sink.url)
    check_answer(d.subscribe("giveup@example.org"), "pending")
    rows = d.wait_outbox(lambda rows: rows and rows[0]["state"] == "failed", timeout=15,
                         what="the mail to be given up")
    row = only_row(rows)
    assert row["attempts"] >= 2
    assert row["done_at"] - row["created_at"] >= 3
    attempts = row["attempts"]
    time.sleep(2)
    row = only_row(d.outbox())
    assert row["state"] == "failed" and row["attempts"] == attempts


def test_failover_to_the_second_url(daemon_factory, smtp):
    dead = free_port()
    d = daemon_factory(smtp_url="smtp://127.0.0.1:%d, %s" % (dead, smtp.url))
    check_answer(d.subscribe("failover@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["failover@example.org"]
    row = only_row(d.settle())
    assert row["state"] == "sent"
    assert row["attempts"] == 1


def test_failover_past_a_relay_refusing_the_session(daemon_factory, sink_factory, smtp):
    refusing = sink_factory("-Q", "CONNECT")
    d = daemon_factory(smtp_url="%s,%s" % (refusing.url, smtp.url))
    check_answer(d.subscribe("failover2@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["failover2@example.org"]
    assert only_row(d.settle())["state"] == "sent"


def test_all_relays_down_defers(daemon_factory):
    d = daemon_factory(smtp_url="smtp://127.0.0.1:%d,smtp://127.0.0.1:%d"
                       % (free_port(), free_port()))
    check_answer(d.subscribe("alldown@example.org"), "pending")
    row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "deferred",
                                 what="the mail to be deferred"))
    assert row["reply"]


def test_one_refused_recipient_does_not_hold_up_others(daemon_factory, sink_factory, smtp):
    """Mails go one recipient per transfer: a failing relay for one mail does not
    stop the next mail, and every mail names exactly one recipient."""
    d = daemon_factory({"smtp": {"max_connections": "3"}})
    addresses = ["bulk%02d@example.org" % i for i in range(25)]
    with d.client() as c:
        for a in addresses:
            check_answer(c.request({"op": "subscribe", "email": a}), "pending")
    mails = smtp.wait_for(25, timeout=30)
    assert sorted(m.rcpt_tos[0] for m in mails) == addresses
    assert all(len(m.rcpt_tos) == 1 for m in mails)
    rows = d.settle(timeout=15)
    assert len(rows) == 25 and all(r["state"] == "sent" for r in rows)


def test_hung_relay_times_out_and_defers(daemon_factory):
    hole = BlackHoleRelay()
    try:
        # 5 s: the transfer is still hanging after the requests below, also
        # under valgrind
        d = daemon_factory({"smtp": {"timeout": "5s"}}, smtp_url=hole.url)
        check_answer(d.subscribe("hung@example.org"), "pending")
        hole.wait_connected(1)
        # the socket front stays responsive while the sender waits
        for _ in range(5):
            t0 = time.monotonic()
            check_answer(d.request({"op": "ping"}), "ok")
            check_answer(d.subscribe("hung@example.org"), "pending")
            assert time.monotonic() - t0 < 1.5 * SLOW
        assert only_row(d.outbox())["state"] == "sending"
        row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "deferred",
                                     timeout=10, what="the hung transfer to time out"))
        assert row["reply"]
    finally:
        hole.close()


def test_relay_silent_after_the_data_times_out_and_defers(daemon_factory):
    """libcurl waits for the reply to the end of the data up to its own
    server-response timeout (120 s), not up to CURLOPT_TIMEOUT: [smtp]
    timeout must bound that wait too."""
    relay = SilentAfterDataRelay()
    try:
        d = daemon_factory({"smtp": {"timeout": "2s"}}, smtp_url=relay.url)
        check_answer(d.subscribe("silent@example.org"), "pending")
        assert relay.data_ended.wait(10)
        # far less than 120 s, with room for a slow (valgrind) run
        row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "deferred",
                                     timeout=15, what="the silent transfer to time out"))
        assert row["attempts"] == 1
        assert "imeout" in row["reply"] or "timed out" in row["reply"], row["reply"]
    finally:
        relay.close()


def test_relay_hanging_up_after_the_data_defers_and_says_a_copy_may_come_twice(
        daemon_factory):
    """A relay that hangs up instead of answering the final "." may have
    taken the mail (RFC 1047): it is deferred and sent again, so it can
    arrive twice, and the log and the stored reply say why."""
    relay = HangUpAfterDataRelay(hang_ups=1)
    try:
        # 2 s: the deferred state lasts at least 1 s (retry times are whole
        # seconds), long enough for the poll below not to miss it
        d = daemon_factory({"smtp": {"retry_initial": "2s", "retry_max": "2s"}},
                           smtp_url=relay.url)
        check_answer(d.subscribe("lost@example.org"), "pending")
        row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["attempts"] >= 1
                                     and rows[0]["state"] == "deferred", timeout=15,
                                     what="the mail whose answer was lost to be deferred"))
        assert row["reply"].startswith("no answer to the data: "), row["reply"]
        row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "sent",
                                     timeout=15, what="the mail to be sent again"))
        assert row["attempts"] == 2
        assert relay.messages == 2
        assert "answer to its data was lost" in d.stderr()
        assert "arrives twice" in d.stderr()
    finally:
        relay.close()


def test_sigterm_while_the_relay_is_silent_after_the_data(daemon_factory):
    """A stop waits for the transfer in flight at most [smtp] timeout, also
    when the relay went silent after the data: well within the unit's
    TimeoutStopSec, and the mail is deferred, to be sent after the next
    start."""
    relay = SilentAfterDataRelay()
    try:
        d = daemon_factory({"smtp": {"timeout": "2s"}}, smtp_url=relay.url)
        check_answer(d.subscribe("stopping@example.org"), "pending")
        assert relay.data_ended.wait(10)
        assert only_row(d.outbox())["state"] == "sending"
        # Daemon.stop fails unless it exits within 10 s (times NEWSLETTERD_SLOW)
        assert d.stop(timeout=10) == 0
        row = only_row(d.outbox())
        assert row["state"] == "deferred", row
        assert "stopped" in d.stderr()
    finally:
        relay.close()


@pytest.mark.parametrize("command,reply,final", [
    ("RCPT", "552 4.5.3 Too many recipients", "deferred"),
    (".", "552 5.3.4 Message too big for system", "failed"),
], ids=["RCPT", "end-of-data"])
def test_552_is_temporary_only_at_rcpt(daemon_factory, sink_factory, command, reply, final):
    """RFC 5321 4.5.3.1.10: a 552 to RCPT (too many recipients, a full
    mailbox) is to be treated as temporary; elsewhere it stays permanent."""
    sink = sink_factory("-f", command, "-B", reply)
    d = daemon_factory({"smtp": {"retry_initial": "1h", "retry_max": "1h"}}, smtp_url=sink.url)
    check_answer(d.subscribe("full552@example.org"), "pending")
    row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == final,
                                 what="the mail to be %s" % final))
    assert row["attempts"] == 1
    assert row["reply"] == reply


def test_ehlo_names_helo_name(daemon_factory, smtp):
    d = daemon_factory({"smtp": {"helo_name": "MTA.Example.NET"}})
    check_answer(d.subscribe("helo@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.helo == "mta.example.net"


def test_ehlo_name_defaults_to_a_fully_qualified_name(daemon, smtp):
    """Postfix's reject_non_fqdn_helo_hostname refuses a bare host name,
    which libcurl would send: the default is the host's FQDN or, where it
    has none, the domain of from (example.org in the test config)."""
    check_answer(daemon.subscribe("fqdn@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.helo and "." in mail.helo.strip("."), mail.helo
    # as the daemon looks it up: gethostname(), then the resolver's canonical name
    name = socket.gethostname()
    try:
        canon = socket.getaddrinfo(name, None, flags=socket.AI_CANONNAME)[0][3]
    except OSError:
        canon = ""
    fqdn = canon if "." in canon else name
    assert mail.helo == (fqdn if "." in fqdn else "example.org"), (mail.helo, fqdn)


def test_url_with_a_path_keeps_its_ehlo_name(daemon_factory, smtp):
    d = daemon_factory({"smtp": {"helo_name": "mta.example.net"}},
                       smtp_url=smtp.url + "/own.example.com")
    check_answer(d.subscribe("ownhelo@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.helo == "own.example.com"


def test_starttls_required_never_sends_in_the_clear(daemon_factory, smtp):
    """The capture server offers no STARTTLS: with starttls = required nothing
    may be sent to it."""
    d = daemon_factory({"smtp": {"starttls": "required"}})
    check_answer(d.subscribe("tls@example.org"), "pending")
    row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] == "deferred",
                                 what="the mail to be deferred"))
    assert row["reply"]
    time.sleep(1.5)
    assert smtp.count() == 0


def test_starttls_opportunistic_falls_back_to_plain(daemon_factory, smtp):
    d = daemon_factory({"smtp": {"starttls": "opportunistic"}})
    check_answer(d.subscribe("opportunistic@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["opportunistic@example.org"]


class AuthCapture(CaptureSMTP):
    def authenticate(self, login, password):
        return (login, password) == ("mailer", "s3cret-Passw0rd!")


def write_secret(workdir, text):
    import os
    path = os.path.join(workdir, "smtp.secret")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_auth_with_password_file(daemon_factory, workdir):
    server = AuthCapture(auth_required=True).start()
    try:
        secret = write_secret(workdir, "s3cret-Passw0rd!\n")
        d = daemon_factory({"smtp": {"username": "mailer", "password_file": secret}},
                           smtp_url=server.url)
        check_answer(d.subscribe("auth@example.org"), "pending")
        (mail,) = server.wait_for(1)
        assert mail.rcpt_tos == ["auth@example.org"]
        assert ("mailer", "s3cret-Passw0rd!") in server.logins
        assert only_row(d.settle())["state"] == "sent"
        assert "s3cret" not in d.stderr()
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_auth_with_a_wrong_password_sends_nothing(daemon_factory, workdir):
    server = AuthCapture(auth_required=True).start()
    try:
        secret = write_secret(workdir, "wrong-password\n")
        d = daemon_factory({"smtp": {"username": "mailer", "password_file": secret}},
                           smtp_url=server.url)
        check_answer(d.subscribe("noauth@example.org"), "pending")
        row = only_row(d.wait_outbox(lambda rows: rows and rows[0]["state"] in
                                     ("deferred", "failed"), what="the mail not to be sent"))
        assert row["reply"]
        assert server.logins and server.logins[0][0] == "mailer"
        assert server.count() == 0
        assert "wrong-password" not in d.stderr()
    finally:
        server.stop()


def thread_nice(pid, tid):
    with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[16])      # field 19 of stat(5): nice


def test_sender_threads_run_below_the_main_thread(daemon, smtp):
    """The main thread serves the website and commits what the senders wait
    for; when the machine is busy it goes first (senders at nice +10)."""
    pid = daemon.proc.pid
    main = thread_nice(pid, pid)
    senders = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, task)) as f:
            if f.read().strip() == "sender":
                senders.append(task)
    assert senders, "no thread named sender"
    assert {thread_nice(pid, t) for t in senders} == {min(main + 10, 19)}, (main, senders)
    # and they still send
    check_answer(daemon.subscribe("nice@example.org"), "pending")
    smtp.wait_for_rcpt("nice@example.org")
