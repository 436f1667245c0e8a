"""Unsubscribing (issue 16): a newsletter mail's unsubscribe token is 32
random bytes that name nothing, found by its hash alone (sql/010), and the
tokens of mails sent before, which named their outbox row in their first 8
bytes, keep working; a complaint records one consent event for every list it
unsubscribes from, however many there are."""
import base64
import hashlib
import os
import re

import pytest

from ctlhelpers import confirmed_list, ctl, need_ctl, write
from nlhelpers import check_answer, db_connect, token_hash, token_raw
from test_deliverability import (RETURN_PATH, WAIT, arf, bounce, import_confirmed, send_issue,
                                 with_return_path)

pytestmark = pytest.mark.usefixtures("ctl_available")

UNSUBSCRIBE_RE = re.compile(r"<http://127\.0\.0\.1:8080/unsubscribe\?token=([A-Za-z0-9_-]+)>")


@pytest.fixture
def ctl_available():
    need_ctl()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def newsletter(daemon, smtp, workdir, readers):
    """Send one issue to READERS, confirmed on `default`; {reader: (token,
    outbox id of their mail)}."""
    confirmed_list(daemon, workdir, readers)
    r = ctl(daemon, "send", "--subject", "Ausgabe", "--text",
            write(os.path.join(workdir, "issue.txt"), "Hallo,\n\nAbbestellen: {{unsubscribe_url}}\n"),
            "--wait", timeout=120)
    r.ok()
    mails = smtp.wait_for(len(readers))
    rows = {bytes(o["token_hash"]): o["id"] for o in daemon.outbox() if o["token_hash"]}
    out = {}
    for m in mails:
        match = UNSUBSCRIBE_RE.fullmatch(m.msg["List-Unsubscribe"].strip())
        assert match, m.msg["List-Unsubscribe"]
        token = match.group(1)
        assert token_hash(token) in rows, "the mail's row keeps its token's hash"
        out[m.rcpt_tos[0]] = (token, rows[token_hash(token)])
    assert sorted(out) == sorted(readers)
    return out


def test_newsletter_token_is_32_random_bytes_naming_no_mail(daemon, smtp, workdir):
    readers = ["r%d@example.org" % i for i in range(6)]
    tokens = newsletter(daemon, smtp, workdir, readers)
    raws = []
    for token, mail_id in tokens.values():
        raw = token_raw(token)
        assert len(token) == 43 and len(raw) == 32
        # the old layout began with the row id, big-endian, in 8 bytes
        assert not raw.startswith(mail_id.to_bytes(8, "big")), (token, mail_id)
        raws.append(raw)
    # consecutive mails' tokens share no prefix (ids 1..6 would share 7 bytes)
    prefixes = {raw[:4] for raw in raws}
    assert len(prefixes) == len(raws), [r.hex() for r in raws]
    # the database holds the hash of each token, never the token
    dump = repr(daemon.query("SELECT * FROM outbox"))
    for raw in raws:
        assert raw.hex() not in dump and b64url(raw) not in dump

    # each link unsubscribes its reader and no one else
    token, _ = tokens["r0@example.org"]
    check_answer(daemon.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    assert daemon.subscription("r0@example.org")["state"] == "unsubscribed"
    assert daemon.subscription("r1@example.org")["state"] == "confirmed"
    check_answer(daemon.request({"op": "unsubscribe", "token": token}), "unsubscribed")


@pytest.mark.parametrize("position", [0, 7, 8, 20, 31])
def test_token_with_a_flipped_byte_is_unknown(daemon, smtp, workdir, position):
    tokens = newsletter(daemon, smtp, workdir, ["x@example.org", "y@example.org"])
    token, _ = tokens["x@example.org"]
    raw = bytearray(token_raw(token))
    raw[position] ^= 0x01
    check_answer(daemon.request({"op": "unsubscribe", "token": b64url(bytes(raw))}),
                 "error", "unknown_token")
    assert daemon.subscription("x@example.org")["state"] == "confirmed"
    assert daemon.subscription("y@example.org")["state"] == "confirmed"


@pytest.mark.parametrize("column", ["token_hash", "token_hash_prev"])
def test_token_of_a_mail_sent_before_the_change_still_works(daemon, smtp, workdir, column):
    """A mail sent by an older daemon carried its row id in the token's first
    8 bytes; its row keeps that token's hash, of its latest attempt or of the
    one before, and that is all a lookup needs."""
    tokens = newsletter(daemon, smtp, workdir, ["old@example.org", "new@example.org"])
    _, mail_id = tokens["old@example.org"]
    old = mail_id.to_bytes(8, "big") + os.urandom(24)
    con = db_connect(daemon.database)
    try:
        with con:
            con.execute("UPDATE outbox SET %s = ? WHERE id = ?" % column,
                        (hashlib.sha256(old).digest(), mail_id))
    finally:
        con.close()
    check_answer(daemon.request({"op": "unsubscribe", "token": b64url(old)}), "unsubscribed")
    assert daemon.subscription("old@example.org")["state"] == "unsubscribed"
    assert daemon.subscription("new@example.org")["state"] == "confirmed"


def test_complaint_records_a_consent_event_for_each_of_20_lists(daemon_factory, smtp, workdir):
    lists = ["liste%02d" % i for i in range(20)]
    d = daemon_factory({"subscription": {"lists": ", ".join(lists)},
                        "bounce": {"return_path": RETURN_PATH}})
    for name in lists:
        import_confirmed(d, workdir, ["viel@example.org"], list_name=name)
    assert {r["list"] for r in d.query("SELECT list FROM subscription WHERE state = 'confirmed'")} \
        == set(lists)
    send_issue(d, workdir, "Ausgabe 1")
    (mail,) = smtp.wait_for(1, timeout=WAIT)
    d.settle(timeout=WAIT)

    r = bounce(d, arf(with_return_path(mail)))
    assert r.rc == 0, r
    assert {s["list"]: s["state"] for s in d.query("SELECT list, state FROM subscription")} == \
        {name: "unsubscribed" for name in lists}

    consent = ctl(d, "export", "viel@example.org").ok().json["consent"]
    events = [c for c in consent if c["event"] == "unsubscribe"]
    assert sorted(c["list"] for c in events) == lists, events
    assert all(c["source"] == "complaint" for c in events), events

    # a second copy of the complaint finds nothing left to unsubscribe
    assert bounce(d, arf(with_return_path(mail))).rc == 0
    consent = ctl(d, "export", "viel@example.org").ok().json["consent"]
    assert len([c for c in consent if c["event"] == "unsubscribe"]) == 20
