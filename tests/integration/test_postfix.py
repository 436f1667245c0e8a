"""Against a real Postfix as the relay (a private instance on a loopback
port, see nlhelpers.Postfix): what the README promises about delivery holds
with an MTA that closes idle connections, refuses bare HELO names and is
stopped and started while mail goes out."""
import os
import re
import shutil
import time

import pytest

from ctlhelpers import ctl, ctl_json, confirmed_list, need_ctl, status, wait_status, write
from nlhelpers import check_answer, wait_until

RETRY_LOG = "the relay had closed the connection"


def signups_with_pauses(d, pf, addresses, pause):
    """One sign-up after the other, each confirmation mail delivered before
    a pause of `pause` seconds."""
    for i, a in enumerate(addresses):
        check_answer(d.subscribe(a), "pending")
        d.wait_outbox(lambda rows: rows[-1]["state"] not in ("queued", "sending"),
                      what="the confirmation mail to %s to be done" % a)
        if i < len(addresses) - 1:
            time.sleep(pause)


@pytest.mark.parametrize("idle_timeout", ["1s", "1h"])
def test_connections_the_relay_closed_when_idle_defer_nothing(daemon_factory, postfix_factory,
                                                             idle_timeout):
    """Postfix ends a connection idle for smtpd_timeout with "421 4.4.2
    timeout exceeded", which a reused connection would read as the answer
    to its next mail: each mail must still go out at its first attempt,
    whether the daemon dropped the idle connection first (idle_timeout
    under smtpd_timeout) or found it closed and sent again on a new one."""
    pf = postfix_factory(smtpd_timeout="2s")
    d = daemon_factory({"smtp": {"max_connections": "1", "idle_timeout": idle_timeout,
                                 "retry_initial": "1h", "retry_max": "1h"}},
                       smtp_url=pf.url)
    addresses = ["idle%d@example.org" % i for i in range(3)]
    # longer than smtpd_timeout: Postfix has hung up by the next sign-up
    signups_with_pauses(d, pf, addresses, 3)
    rows = d.settle()
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 1)] * len(addresses), rows
    wait_until(lambda: pf.delivered() == {a: 1 for a in addresses},
               what="one mail for each address in the Maildir")
    retries = d.stderr().count(RETRY_LOG)
    if idle_timeout == "1s":
        assert retries == 0, "an idle connection was reused"
    else:
        assert retries == len(addresses) - 1, "no stale connection was found: the test tests nothing"


def test_postfix_stopped_and_started_during_a_send(daemon_factory, postfix_factory, workdir):
    """Postfix goes down in the middle of an issue and comes back: every
    subscriber gets the issue (mails it had taken stay in its queue; those
    it did not are deferred and sent after it is back), and only once,
    except a mail whose data reached Postfix as it stopped: Postfix may
    have queued it without its answer reaching us (RFC 1047), so it is sent
    again and may arrive twice; the daemon's log names each such mail."""
    need_ctl()
    pf = postfix_factory()
    # rate 5: the outage starts long before the last of 50 mails (Postfix's
    # delivery into the Maildir can lag what it accepted by seconds)
    d = daemon_factory({"smtp": {"rate": "5", "retry_initial": "1s", "retry_max": "1s"}},
                       smtp_url=pf.url)
    addresses = ["fan%02d@example.org" % i for i in range(50)]
    confirmed_list(d, workdir, addresses)
    text = write(os.path.join(workdir, "issue.txt"), "Hello {{name}}\n")
    r = ctl(d, "send", "--subject", "Outage", "--text", text).ok()
    issue = int(r.out.splitlines()[0])

    wait_until(lambda: sum(pf.delivered().values()) >= 5, timeout=20,
               what="the first mails in the Maildir")
    pf.stop()
    assert status(d, issue)["sent"] < len(addresses), "the send ended before the outage"
    time.sleep(1.5)
    pf.start()

    wait_status(d, issue, lambda st: st["sent"] == len(addresses), timeout=60,
                what="every mail of the issue sent")
    wait_until(lambda: pf.queue_empty() and sum(pf.delivered().values()) >= len(addresses),
               timeout=30, what="Postfix to deliver what it queued")
    delivered = pf.delivered()
    lost = set(int(m) for m in re.findall(
        r"mail (\d+): deferred, the relay's answer to its data was lost", d.stderr()))
    may_be_twice = set(row[0] for row in d.query(
        "SELECT b.email, o.id FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
        " JOIN subscriber b ON b.id = s.subscriber_id WHERE o.issue_id = ?", (issue,))
        if row[1] in lost)
    assert set(delivered) == set(addresses)
    assert {a: n for a, n in delivered.items() if n != 1 and a not in may_be_twice} == {}, \
        (delivered, may_be_twice)
    assert all(delivered[a] <= 2 for a in may_be_twice), delivered
    st = status(d, issue)
    assert (st["failed"], st["deferred"], st["queued"]) == (0, 0, 0), st
    # the outage was felt: the relay was found down and probed until it
    # answered (mails that reached no relay are not charged an attempt)
    assert "relay unreachable" in d.stderr() and "relay answers again" in d.stderr()


def test_a_recipient_postfix_refuses_at_rcpt_is_suppressed(daemon_factory, postfix_factory,
                                                           workdir):
    """Postfix checks recipients at RCPT (here: a virtual mailbox table
    without the address) and answers 550 5.1.1: the subscriber is bounced
    and the next issue does not try the dead address again."""
    need_ctl()
    known = ["known%d@example.org" % i for i in range(2)]
    pf = postfix_factory(virtual_mailbox_maps="inline:{%s}"
                         % ", ".join("%s=maildir/" % a for a in known))
    d = daemon_factory(smtp_url=pf.url)
    confirmed_list(d, workdir, known + ["ghost@example.org"])
    text = write(os.path.join(workdir, "issue.txt"), "Hello {{name}}\n")
    first = int(ctl(d, "send", "--subject", "One", "--text", text).ok().out.splitlines()[0])
    wait_status(d, first, lambda st: st["finished"], timeout=30, what="the first issue")
    st = status(d, first)
    assert (st["sent"], st["failed"]) == (2, 1), st
    assert d.subscription("ghost@example.org")["state"] == "bounced"
    reply = d.query("SELECT reply FROM outbox WHERE state = 'failed'")[0][0]
    assert reply.startswith("550") and "5.1.1" in reply, reply
    second = int(ctl(d, "send", "--subject", "Two", "--text", text).ok().out.splitlines()[0])
    wait_status(d, second, lambda st: st["finished"], timeout=30, what="the second issue")
    st = status(d, second)
    assert (st["total"], st["sent"], st["failed"]) == (2, 2, 0), st


def test_an_auto_reply_to_a_verp_address_is_consumed_and_nothing_bounced(
        daemon_factory, postfix_factory, smtp, workdir):
    """The README's bounce pipe in a real Postfix: an out-of-office reply to
    a newsletter's VERP address goes into `newsletterctl bounce`, which
    consumes it (exit 0), so Postfix sends no bounce to its (possibly
    forged) sender."""
    need_ctl()
    import smtplib
    # the pipe runs newsletterctl as nobody: it must reach the config and
    # the admin socket (admin_group nogroup, admin_users nobody)
    os.chmod(workdir, 0o755)
    d = daemon_factory({"bounce": {"return_path": "bounces+{id}@bounce.test"},
                        "daemon": {"admin_group": "nogroup", "admin_users": "nobody"}})
    os.chmod(d.config_path, 0o644)
    # a copy nobody can reach: the build directory may sit in a directory
    # of mode 0700 (a clone in mktemp -d)
    ctl_bin = os.path.join(workdir, "newsletterctl")
    shutil.copy(os.environ["NEWSLETTERCTL"], ctl_bin)
    os.chmod(ctl_bin, 0o755)
    pf = postfix_factory(
        services=["newsletter-bounce unix - n n - - pipe flags=DORq user=nobody argv=%s -c %s bounce"
                  % (ctl_bin, d.config_path)],
        relay_domains="bounce.test", recipient_delimiter="+",
        transport_maps="inline:{bounce.test=newsletter-bounce:}")
    confirmed_list(d, workdir, ["reader@example.org"])
    text = write(os.path.join(workdir, "issue.txt"), "Hello {{name}}\n")
    ctl(d, "send", "--subject", "Issue", "--text", text, "--wait").ok()
    (mail,) = smtp.wait_for(1)
    assert mail.mail_from.startswith("bounces+") and mail.mail_from.endswith("@bounce.test")
    before = d.query("SELECT state FROM subscription")

    reply = ("From: Reader <reader@example.org>\r\nTo: %s\r\n"
             "Subject: Out of office: Issue\r\nAuto-Submitted: auto-replied\r\n"
             "Date: Mon, 16 Dec 2030 11:00:00 +0100\r\n\r\n"
             "I am away until Monday.\r\n" % mail.mail_from)
    with smtplib.SMTP("127.0.0.1", pf.port, local_hostname="client.example.org") as c:
        c.sendmail("reader@example.org", [mail.mail_from], reply.encode())
    wait_until(lambda: "delivered via newsletter-bounce" in pf.log() and pf.queue_empty(),
               timeout=30, what="Postfix to hand the reply to the pipe")
    log = pf.log()
    assert "status=sent (delivered via newsletter-bounce service" in log, log[-3000:]
    assert "status=bounced" not in log
    # no bounce came back to the reply's sender (it would land in the Maildir)
    assert pf.delivered() == {}
    assert d.query("SELECT state FROM subscription") == before
    assert ctl_json(d, "stats", "--json")["bounces"]["autoreplies"] == 1
