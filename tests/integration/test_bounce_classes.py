"""What the admin sees of classified bounces, with the real daemon:
`newsletterctl bounce --explain`, the classes and refusing domains in
`stats`, the reports in `export`, the one warning per receiving domain that
refuses several of our mails within an hour, and that such refusals cost no
subscriber; the topmost Delivered-To names the mail."""
import json
import re

from dkimhelpers import ctl
from nlhelpers import db_dump
from test_deliverability import (CLASSES, NOTHING_IGNORED, admin, bounce, dsn, newsletter_to_readers,
                                 subscription_states, verp)

READERS = ("ada@example.org", "bert@example.net", "cleo@example.net", "dora@example.net",
           "emil@example.net")
BLOCKED = "smtp; 550 5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org"


def explain(d, report):
    r = ctl(d.config_path, "bounce", "--explain",
            stdin=report.encode() if isinstance(report, str) else report)
    assert r.rc == 0, r
    lines = r.out.strip().splitlines()
    assert len(lines) == 1, r
    return json.loads(lines[0])


def test_explain_says_what_and_changes_nothing(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, readers=READERS)
    before = db_dump(d.database)
    report = dsn(verp(d, ids["ada@example.org"]), "ada@example.org")
    assert explain(d, report) == {"class": "permanent", "reason": "userunknown",
                                  "recipient": "ada@example.org", "status": "5.1.1", "verp": "valid",
                                  "issue": issue}
    blocked = dsn(verp(d, ids["bert@example.net"]), "bert@example.net", status="5.7.1",
                  diagnostic=BLOCKED)
    assert explain(d, blocked) == {"class": "sender", "reason": "blocked",
                                   "recipient": "bert@example.net", "status": "5.7.1", "verp": "valid",
                                   "issue": issue}
    # no VERP address of ours, a wrong tag, and no report at all
    assert explain(d, dsn("someone@example.org", "ada@example.org"))["verp"] == "absent"
    forged = verp(d, ids["ada@example.org"]).replace("-", "-0", 1)
    assert explain(d, dsn(forged, "ada@example.org"))["verp"] == "invalid"
    assert explain(d, "From: ann@example.org\nSubject: hello\n\nhi\n") == {
        "class": "none", "reason": "undefined", "recipient": None, "status": None, "verp": "absent",
        "issue": None}
    assert db_dump(d.database) == before
    assert admin(d, {"op": "stats"})["bounces"] == {"permanent": 0, "temporary": 0, "complaints": 0,
                                                    "refused": 0, **NOTHING_IGNORED, **CLASSES}


def test_a_domain_refusing_us_costs_nobody_and_is_warned_about_once(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, readers=READERS)
    refusing = [r for r in READERS if r.endswith("@example.net")]
    for n, rcpt in enumerate(refusing, 1):
        # reports spell the domain as they like: one domain all the same
        named = rcpt.replace("example.net", "EXAMPLE.Net") if n == 2 else rcpt
        r = bounce(d, dsn(verp(d, ids[rcpt]), named, status="5.7.1", diagnostic=BLOCKED))
        assert r.rc == 0, r
        assert "sender report" in r.out and "subscriber counted" in r.out, r
        warnings = re.findall(r"example\.net refuses our mails: .*", d.stderr())
        # one warning, when the third refusal within the hour came
        assert len(warnings) == (1 if n >= 3 else 0), warnings
    assert re.search(r"example\.net refuses our mails: 550 5\.7\.1 .*spamhaus.* \(blocked\), 3 since "
                     r"\d\d:\d\d UTC", d.stderr())
    assert all(state == "confirmed" for state in subscription_states(d).values())
    stats = admin(d, {"op": "stats"})
    assert stats["bounces"] == {"permanent": 0, "temporary": 0, "complaints": 0, "refused": 0,
                                **NOTHING_IGNORED, **CLASSES, "sender": 4}
    (dom,) = stats["refusing_domains"]
    assert (dom["domain"], dom["reason"], dom["count"]) == ("example.net", "blocked", 4)
    assert dom["last"] > 0
    # the same in newsletterctl's JSON
    r = ctl(d.config_path, "stats", "--json")
    assert r.rc == 0, r
    assert json.loads(r.out)["refusing_domains"] == stats["refusing_domains"]
    # and in its plain report
    r = ctl(d.config_path, "stats")
    assert r.rc == 0, r
    assert "4 refusals of our mails by the receiver" in r.out, r
    assert re.search(r"^refusing: +example\.net refused 4 of our mails in the last 24 hours \(blocked\), "
                     r"last \d{4}-\d\d-\d\d \d\d:\d\d UTC$", r.out, re.M), r

    # a day later the domain is no longer listed
    d.restart_later(25 * 3600)
    assert admin(d, {"op": "stats"})["refusing_domains"] == []


def test_export_lists_the_reports_of_an_address(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, readers=READERS)
    assert bounce(d, dsn(verp(d, ids["cleo@example.net"]), "cleo@example.net", status="4.2.2",
                         action="delayed", diagnostic="smtp; 452 4.2.2 Mailbox full")).rc == 0
    assert bounce(d, dsn(verp(d, ids["cleo@example.net"]), "cleo@example.net")).rc == 0
    data = admin(d, {"op": "export", "email": "cleo@example.net"})["export"]
    got = [(b["class"], b["reason"], b["status"]) for b in data["bounces"]]
    assert got == [("temporary", "mailboxfull", "4.2.2"), ("permanent", "userunknown", "5.1.1")]
    # and what else is kept of each report (Art. 15: all of it)
    assert all(b["domain"] == "example.net" for b in data["bounces"]), data["bounces"]
    assert "<cleo@example.net>: Recipient address rejected" in data["bounces"][1]["diagnostic"], data
    # times as everywhere in export: UTC, ISO 8601
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b["at"]) for b in data["bounces"])
    assert admin(d, {"op": "export", "email": "ada@example.org"})["export"]["bounces"] == []
    assert subscription_states(d)[("cleo@example.net", "default")] == "bounced"


def test_the_topmost_delivered_to_names_the_mail(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, readers=READERS)
    # as Postfix's pipe delivers it (flags DO): its own header on top; the
    # report's Delivered-To below names another mail of ours
    report = dsn(verp(d, ids["dora@example.net"]), "emil@example.net")
    piped = "Delivered-To: %s\n%s" % (verp(d, ids["emil@example.net"]), report)
    assert explain(d, piped)["recipient"] == "emil@example.net"
    assert bounce(d, piped).rc == 0
    states = subscription_states(d)
    assert states[("emil@example.net", "default")] == "bounced"
    assert states[("dora@example.net", "default")] == "confirmed"
    # the same report with the other mail's address on top names someone
    # else than that mail went to: refused
    piped = "Delivered-To: %s\n%s" % (verp(d, ids["dora@example.net"]), report)
    r = bounce(d, piped)
    assert r.rc == 0 and "refused" in r.out, r
    assert subscription_states(d)[("dora@example.net", "default")] == "confirmed"
