"""Which addresses the daemon takes, how it normalises them, and that a
refused address stores and sends nothing."""
import time

import pytest

from nlhelpers import check_answer


INVALID = [
    "",
    " ",
    "plainaddress",
    "@example.org",
    "user@",
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    '"q"@example.org',
    '"quoted local"@example.org',
    "a b@example.org",
    "a(comment)@example.org",
    "a@[127.0.0.1]",
    "a@[IPv6:::1]",
    "ä@example.org",
    "jörg@example.org",
    "a@b@example.org",
    "a@example",
    "a@localhost",
    "a@example.123",
    "a@-example.org",
    "a@example-.org",
    "a@exa_mple.org",
    "a@example..org",
    "a@.example.org",
    "a@example.org.",
    "a,b@example.org",
    "a<b>@example.org",
    "a;b@example.org",
    "a\\b@example.org",
    "a:b@example.org",
    "<a@example.org>",
    "Name <a@example.org>",
    "a@example.org, b@example.org",
    "x" * 65 + "@example.org",                       # local part over 64
    "a@" + "l" * 64 + ".example.org",                # label over 63
    "a@" + ".".join(["abcdefghi"] * 25) + ".org",    # domain over 255 / path over 254
    "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".example.org",  # path over 254
    "a@" + "x" * 2000 + ".org",                      # over the input limit
    "a\x01b@example.org",
    "a\x7f@example.org",
    "a\tb@example.org",
]

CONTROL = [
    "victim@example.org\r\nBcc: evil@example.net",
    "victim@example.org\nBcc: evil@example.net",
    "victim@example.org\rBcc: evil@example.net",
    "victim@example.org\u0000evil@example.net",
    "vic\u0000tim@example.org",
    "\r\nvictim@example.org",
]


@pytest.mark.parametrize("address", INVALID + CONTROL, ids=lambda a: repr(a)[:60])
def test_invalid_address_is_refused(shared_daemon, address):
    with shared_daemon.client() as c:
        check_answer(c.request({"op": "subscribe", "email": address}), "error", "invalid_email")
        check_answer(c.request({"op": "subscribe", "email": address, "lang": "en"}),
                     "error", "invalid_email")
        check_answer(c.request({"op": "ping"}), "ok")
    assert shared_daemon.query("SELECT count(*) FROM subscriber")[0][0] == 0
    assert shared_daemon.query("SELECT count(*) FROM signup")[0][0] == 0
    assert shared_daemon.query("SELECT count(*) FROM outbox")[0][0] == 0
    assert shared_daemon.query("SELECT count(*) FROM consent")[0][0] == 0


VALID = [
    ("simple@example.org", "simple@example.org", "simple@example.org"),
    ("o'brien+news@example.org", "o'brien+news@example.org", "o'brien+news@example.org"),
    ("first.last@sub.example.co.uk", "first.last@sub.example.co.uk",
     "first.last@sub.example.co.uk"),
    ("x!#$%&*/=?^_`{|}~-@example.org", "x!#$%&*/=?^_`{|}~-@example.org",
     "x!#$%&*/=?^_`{|}~-@example.org"),
    ("Anna@Example.ORG", "Anna@example.org", "anna@example.org"),
    ("user@bücher.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
    ("user@BÜCHER.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
    ("user@xn--bcher-kva.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
    ("user@bu\u0308cher.example", "user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
    ("a@1.example", "a@1.example", "a@1.example"),
    ("x" * 64 + "@example.org", "x" * 64 + "@example.org", "x" * 64 + "@example.org"),
]


@pytest.mark.parametrize("given,mailed,key", VALID, ids=[v[0][:40] for v in VALID])
def test_valid_address_is_mailed_normalised(daemon, smtp, given, mailed, key):
    check_answer(daemon.subscribe(given), "pending")
    # a pending sign-up's address waits apart (sql/009) ...
    rows = daemon.query("SELECT email, email_key FROM signup")
    assert [tuple(r) for r in rows] == [(mailed, key)]
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == [mailed]
    assert mail.msg["To"].addresses[0].addr_spec == mailed
    # ... and is the subscriber's once confirmed
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    rows = daemon.query("SELECT email, email_key FROM subscriber")
    assert [tuple(r) for r in rows] == [(mailed, key)]
    assert daemon.query("SELECT count(*) FROM signup")[0][0] == 0


def test_addresses_compare_case_insensitively(daemon, smtp):
    check_answer(daemon.subscribe("Anna@Example.ORG"), "pending")
    (mail,) = smtp.wait_for(1)
    check_answer(daemon.subscribe("anna@example.org"), "pending")
    check_answer(daemon.subscribe("ANNA@EXAMPLE.ORG"), "pending")
    assert daemon.query("SELECT count(DISTINCT email_key) FROM signup")[0][0] == 1
    assert daemon.query("SELECT count(*) FROM subscription")[0][0] == 1
    assert daemon.query("SELECT count(*) FROM outbox")[0][0] == 1
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    assert daemon.query("SELECT count(*) FROM subscriber")[0][0] == 1
    check_answer(daemon.subscribe("aNNa@exAMPLE.org"), "duplicate")
    time.sleep(0.3)
    assert smtp.count() == 1


def test_idn_unicode_and_alabel_forms_are_one_subscriber(daemon, smtp):
    check_answer(daemon.subscribe("user@bücher.example"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["user@xn--bcher-kva.example"]
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    check_answer(daemon.subscribe("USER@xn--bcher-kva.example"), "duplicate")
    check_answer(daemon.subscribe("user@Bücher.Example"), "duplicate")


def test_blanks_around_the_address(daemon, smtp):
    """Surrounding blanks never reach the mail: either refused or trimmed."""
    answer = daemon.subscribe("  spaced@example.org ")
    if answer["state"] == "error":
        check_answer(answer, "error", "invalid_email")
        assert daemon.query("SELECT count(*) FROM subscriber")[0][0] == 0
        assert daemon.query("SELECT count(*) FROM signup")[0][0] == 0
    else:
        check_answer(answer, "pending")
        (mail,) = smtp.wait_for(1)
        assert mail.rcpt_tos == ["spaced@example.org"]


def test_each_list_is_its_own_subscription(daemon, smtp):
    check_answer(daemon.subscribe("lists@example.org"), "pending")
    check_answer(daemon.subscribe("lists@example.org", list="events"), "pending")
    rows = daemon.query("SELECT list, state FROM subscription ORDER BY list")
    assert [tuple(r) for r in rows] == [("default", "pending"), ("events", "pending")]
    mails = smtp.wait_for(2)
    assert all(m.rcpt_tos == ["lists@example.org"] for m in mails)
    tokens = {m.token for m in mails}
    assert len(tokens) == 2
    # confirming one list leaves the other pending
    check_answer(daemon.request({"op": "confirm", "token": mails[0].token}), "confirmed")
    states = sorted(r[0] for r in daemon.query("SELECT state FROM subscription"))
    assert states == ["confirmed", "pending"]
    check_answer(daemon.request({"op": "check", "token": mails[1].token}), "pending")
