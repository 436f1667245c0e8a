"""Against a real Postfix as the relay (a private instance on a loopback
port, see nlhelpers.Postfix): what the README promises about delivery holds
with an MTA that closes idle connections, refuses bare HELO names and is
stopped and started while mail goes out."""
import os
import time

import pytest

from ctlhelpers import ctl, confirmed_list, need_ctl, status, wait_status, write
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
    subscriber gets the issue exactly once (mails it had taken stay in its
    queue; those it did not are deferred and sent after it is back)."""
    need_ctl()
    pf = postfix_factory()
    d = daemon_factory({"smtp": {"rate": "10", "retry_initial": "1s", "retry_max": "1s"}},
                       smtp_url=pf.url)
    addresses = ["fan%02d@example.org" % i for i in range(50)]
    confirmed_list(d, workdir, addresses)
    text = write(os.path.join(workdir, "issue.txt"), "Hello {{name}}\n")
    r = ctl(d, "send", "--subject", "Outage", "--text", text).ok()
    issue = int(r.out.splitlines()[0])

    wait_until(lambda: sum(pf.delivered().values()) >= 10, timeout=20,
               what="the first mails in the Maildir")
    pf.stop()
    assert status(d, issue)["sent"] < len(addresses), "the send ended before the outage"
    time.sleep(1.5)
    pf.start()

    wait_status(d, issue, lambda st: st["sent"] == len(addresses), timeout=60,
                what="every mail of the issue sent")
    wait_until(lambda: pf.queue_empty() and sum(pf.delivered().values()) >= len(addresses),
               timeout=30, what="Postfix to deliver what it queued")
    assert pf.delivered() == {a: 1 for a in addresses}
    st = status(d, issue)
    assert (st["failed"], st["deferred"], st["queued"]) == (0, 0, 0), st
    # the outage was felt: the relay was found down and probed until it
    # answered (mails that reached no relay are not charged an attempt)
    assert "relay unreachable" in d.stderr() and "relay answers again" in d.stderr()
