"""The relay's own refusal of a recipient (issue 17.2): a relay that checks
recipients at RCPT never sends a DSN for an unknown user, so its 5.1.1 has
to suppress the subscriber as a DSN would; a refusal that is about us or the
message (5.7.1 policy) fails the mail and keeps the subscriber; a 4xx that is
the address's passing trouble counts toward temporary_limit, once per mail."""
import json

from test_deliverability import (CLASSES, NOTHING_IGNORED, WAIT, admin, import_confirmed, send_issue,
                                 subscription_states)
from dkimhelpers import ctl
from nlhelpers import CaptureSMTP, check_answer, wait_until


class RefusingSMTP(CaptureSMTP):
    """A capturing SMTP server that answers RCPT for some addresses with a
    refusal of its own (`refuse`, changeable while it runs)."""

    def __init__(self, refuse):
        super().__init__()
        self.refuse = dict(refuse)
        self.refused = []       # (address, reply) of every refusal given

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.cond:
            reply = self.refuse.get(address)
            if reply:
                self.refused.append((address, reply))
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    def refusals(self, address):
        with self.cond:
            return sum(1 for a, _ in self.refused if a == address)


DEAD = "dead@example.org"
POLICY = "policy@example.org"
FULL = "full@example.org"
ADA = "ada@example.org"
UNKNOWN_USER = "550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table"
# our relay's recipient access table: our admin's policy, not the address's
# death (in a remote MTA's report the same words refuse the address)
ACCESS_DENIED = "550 5.7.1 <%s>: Recipient address rejected: Access denied"
MAILBOX_FULL = "450 4.2.2 <%s>: Recipient address rejected: Mailbox full"


def relay(request, refuse):
    server = RefusingSMTP(refuse).start()
    request.addfinalizer(server.stop)
    return server


def mails_to(server, since):
    return sorted(m.rcpt_tos[0] for m in server.snapshot()[since:])


def test_unknown_user_at_rcpt_is_suppressed_policy_refusal_is_not(request, daemon_factory, workdir):
    server = relay(request, {DEAD: UNKNOWN_USER % DEAD, POLICY: ACCESS_DENIED % POLICY})
    d = daemon_factory(smtp_url=server.url)
    import_confirmed(d, workdir, [ADA, DEAD, POLICY])
    issue = send_issue(d, workdir, "Ausgabe 1")
    server.wait_for(1, timeout=WAIT)
    rows = d.settle(timeout=WAIT)
    assert sorted(r["state"] for r in rows) == ["failed", "failed", "sent"]

    states = subscription_states(d)
    assert states[(DEAD, "default")] == "bounced"
    assert states[(POLICY, "default")] == "confirmed"
    assert states[(ADA, "default")] == "confirmed"
    # recorded as a DSN would be: a permanent bounce of that mail and issue
    (b,) = [dict(x) for x in d.query("SELECT * FROM bounce")]
    dead_mail = d.query("SELECT o.id FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
                        " JOIN subscriber u ON u.id = s.subscriber_id WHERE u.email = ?",
                        (DEAD,))[0]["id"]
    assert (b["kind"], b["status"], b["outbox_id"], b["issue_id"]) == \
        ("permanent", "5.1.1", dead_mail, issue)
    stats = admin(d, {"op": "stats"})
    # the policy refusal is one of us: counted for its domain, nobody suppressed
    assert stats["bounces"] == {"permanent": 1, "temporary": 0, "complaints": 0, "refused": 0,
                                **NOTHING_IGNORED, **CLASSES, "sender": 1}
    assert [(x["domain"], x["reason"], x["count"]) for x in stats["refusing_domains"]] == \
        [(POLICY.split("@")[1], "blocked", 1)]
    reports = [tuple(x) for x in d.query("SELECT class, reason, status FROM bounce_report ORDER BY id")]
    assert sorted(reports) == [("permanent", "userunknown", "5.1.1"), ("sender", "blocked", "5.7.1")]
    assert stats["subscribers"]["bounced"] == 1
    assert "subscriber suppressed" in d.stderr()

    # status --failed tells the two failures apart
    r = ctl(d.config_path, "status", str(issue), "--failed")
    assert r.rc == 0, r
    assert "suppressed: %s: 550 5.1.1" % DEAD in r.out, r
    assert "failed: %s: 550 5.7.1" % POLICY in r.out, r
    r = ctl(d.config_path, "status", str(issue), "--failed", "--json")
    assert r.rc == 0, r
    failures = {f["email"]: (f["suppressed"], f["class"], f["reason"])
                for f in json.loads(r.out)["failures"]}
    assert failures == {DEAD: (True, "permanent", "userunknown"), POLICY: (False, "sender", "blocked")}
    assert "(permanent, userunknown)" in ctl(d.config_path, "status", str(issue), "--failed").out
    assert admin(d, {"op": "status", "issue": issue})["bounced"] == 1

    # the next issue skips the dead address; the refused-by-policy one gets it
    server.refuse.clear()
    seen = server.count()
    second = send_issue(d, workdir, "Ausgabe 2")
    server.wait_for(seen + 2, timeout=WAIT)
    d.settle(timeout=WAIT)
    assert mails_to(server, seen) == [ADA, POLICY]
    assert admin(d, {"op": "status", "issue": second})["total"] == 2
    assert server.refusals(DEAD) == 1


def test_unknown_user_at_rcpt_of_a_confirmation_mail_suppresses_the_signup(request, daemon_factory):
    server = relay(request, {DEAD: UNKNOWN_USER % DEAD})
    d = daemon_factory(smtp_url=server.url)
    check_answer(d.subscribe(DEAD), "pending")
    check_answer(d.subscribe(ADA), "pending")
    server.wait_for(1, timeout=WAIT)
    d.settle(timeout=WAIT)
    assert d.subscription(DEAD)["state"] == "bounced"
    assert d.subscription(ADA)["state"] == "pending"
    assert admin(d, {"op": "stats"})["bounces"]["permanent"] == 1


def test_temporary_refusals_at_rcpt_count_once_per_mail_and_suppress_at_the_limit(
        request, daemon_factory, workdir):
    server = relay(request, {FULL: MAILBOX_FULL % FULL})
    d = daemon_factory(smtp_url=server.url, overrides={
        "bounce": {"temporary_limit": "2", "temporary_window": "30d"}})
    import_confirmed(d, workdir, [ADA, FULL])
    send_issue(d, workdir, "Ausgabe 1")
    server.wait_for(1, timeout=WAIT)
    # refused again and again (retry_initial 1s): counted once, for its mail
    wait_until(lambda: server.refusals(FULL) >= 3, timeout=WAIT, what="three refusals of one mail")
    d.wait_outbox(lambda rows: any(r["state"] == "deferred" and r["attempts"] >= 3 for r in rows),
                  timeout=WAIT, what="the third deferral recorded")
    rows = [dict(x) for x in d.query("SELECT * FROM bounce")]
    assert [(r["kind"], r["status"]) for r in rows] == [("temporary", "4.2.2")]
    assert subscription_states(d)[(FULL, "default")] == "confirmed"

    # a second mail refused the same way reaches the limit: suppressed, and
    # both waiting mails are dropped at their next turn
    seen = server.count()
    send_issue(d, workdir, "Ausgabe 2")
    server.wait_for(seen + 1, timeout=WAIT)
    wait_until(lambda: subscription_states(d)[(FULL, "default")] == "bounced", timeout=WAIT,
               what="the subscriber suppressed")
    rows = d.wait_outbox(lambda rows: all(r["state"] in ("sent", "skipped") for r in rows),
                         timeout=WAIT, what="the waiting mails dropped")
    assert sorted(r["state"] for r in rows) == ["sent", "sent", "skipped", "skipped"]
    assert admin(d, {"op": "stats"})["bounces"]["temporary"] == 2
    assert subscription_states(d)[(ADA, "default")] == "confirmed"
