"""The sign-up states: subscribe, resend, confirm, check, expiry, unsubscribe,
and what each leaves in the database (tokens, consent record)."""
import time

import pytest

from nlhelpers import (DAY, check_answer, db_dump, mint_unsubscribe_token, new_token,
                       token_hash, wait_until)

SHORT_TTL = {"subscription": {"confirm_ttl": "2s", "resend_interval": "1s"}}


def next_second():
    """Sleep into the next wall-clock second (the daemon counts whole seconds)."""
    now = time.time()
    time.sleep(1.05 - (now % 1.0))


def test_new_address_gets_pending_and_one_mail(daemon, smtp):
    a = check_answer(daemon.subscribe("new@example.org", name="Neu"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["new@example.org"]
    sub = daemon.subscription("new@example.org")
    assert sub["state"] == "pending" and sub["lang"] == "de"
    rows = daemon.query("SELECT hash, kind, expires_at - issued_at FROM token")
    assert len(rows) == 1
    assert rows[0]["hash"] == token_hash(mail.token)
    assert rows[0]["kind"] == "confirm"
    assert rows[0][2] == 30 * 86400
    en = check_answer(daemon.subscribe("new2@example.org", lang="en"), "pending")
    assert a["message"] != en["message"]


def test_pending_again_within_resend_interval_sends_nothing(daemon, smtp):
    check_answer(daemon.subscribe("again@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    for _ in range(3):
        check_answer(daemon.subscribe("again@example.org"), "pending")
    check_answer(daemon.subscribe("again@example.org", lang="en"), "pending")
    # answers come after the commit: no further mail was queued
    assert len(daemon.outbox()) == 1
    assert len(daemon.query("SELECT * FROM token")) == 1
    assert len(daemon.query("SELECT * FROM signup")) == 1
    time.sleep(1.2)
    assert smtp.count() == 1
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")


def test_resend_after_interval_gives_new_token_and_old_one_still_confirms(daemon_factory, smtp):
    d = daemon_factory({"subscription": {"resend_interval": "1s", "confirm_ttl": "1h"}})
    check_answer(d.subscribe("resend@example.org"), "pending")
    (first,) = smtp.wait_for(1)
    next_second()
    check_answer(d.subscribe("resend@example.org", lang="en"), "pending")
    mails = smtp.wait_for(2)
    assert len(mails) == 2
    second = mails[1]
    assert second.rcpt_tos == ["resend@example.org"]
    assert first.token != second.token
    # the second mail is in the language of the second request
    assert first.msg["Subject"] != second.msg["Subject"]
    hashes = {r[0] for r in d.query("SELECT hash FROM token")}
    assert hashes == {token_hash(first.token), token_hash(second.token)}
    check_answer(d.request({"op": "check", "token": second.token}), "pending")
    check_answer(d.request({"op": "check", "token": first.token}), "pending")
    check_answer(d.request({"op": "confirm", "token": first.token}), "confirmed")
    check_answer(d.request({"op": "confirm", "token": second.token}), "confirmed")
    assert d.subscription("resend@example.org")["state"] == "confirmed"
    assert len(d.query("SELECT * FROM consent WHERE event = 'signup'")) == 2
    assert len(d.query("SELECT * FROM consent WHERE event = 'confirm'")) == 1


def test_confirmed_address_is_duplicate_without_mail(daemon, smtp):
    check_answer(daemon.subscribe("dup@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    before = daemon.query("SELECT count(*) FROM outbox")[0][0]
    de = check_answer(daemon.subscribe("dup@example.org"), "duplicate")
    en = check_answer(daemon.subscribe("DUP@example.org", lang="en"), "duplicate")
    assert de["message"] != en["message"]
    assert daemon.query("SELECT count(*) FROM outbox")[0][0] == before
    assert daemon.subscription("dup@example.org")["state"] == "confirmed"
    time.sleep(0.5)
    assert smtp.count() == 1


def test_confirm_twice_and_check_changes_nothing(daemon, smtp):
    check_answer(daemon.subscribe("conf@example.org", ip="192.0.2.7"), "pending")
    (mail,) = smtp.wait_for(1)
    daemon.settle()
    before = db_dump(daemon.database)
    for lang in ("de", "en", "de"):
        check_answer(daemon.request({"op": "check", "token": mail.token, "lang": lang}),
                     "pending")
    assert db_dump(daemon.database) == before, "check changed the database"
    assert daemon.subscription("conf@example.org")["state"] == "pending"

    first = check_answer(daemon.request({"op": "confirm", "token": mail.token,
                                         "ip": "2001:db8::1"}), "confirmed")
    sub = daemon.subscription("conf@example.org")
    assert sub["state"] == "confirmed"
    assert sub["confirm_ip"] == "2001:db8::1"
    assert sub["confirmed_at"] and abs(sub["confirmed_at"] - time.time()) < 60
    after_confirm = db_dump(daemon.database)

    again = check_answer(daemon.request({"op": "confirm", "token": mail.token,
                                         "ip": "198.51.100.1"}), "confirmed")
    assert again["message"] == first["message"]
    check_answer(daemon.request({"op": "check", "token": mail.token}), "confirmed")
    # a repeated confirm records nothing new and keeps the first confirm's ip
    assert db_dump(daemon.database) == after_confirm
    assert daemon.subscription("conf@example.org")["confirm_ip"] == "2001:db8::1"


def test_consent_record(daemon, smtp):
    ua = "Mozilla/5.0 (X11; Linux x86_64) Täst/1.0"
    check_answer(daemon.subscribe("consent@example.org", name="Constanze", lang="en",
                                  ip="203.0.113.9", user_agent=ua), "pending")
    (mail,) = smtp.wait_for(1)
    # pending: the sign-up's record waits apart with the address (sql/009)
    assert daemon.query("SELECT count(*) FROM consent")[0][0] == 0
    rows = daemon.query("SELECT * FROM signup WHERE email_key = 'consent@example.org'")
    assert len(rows) == 1
    s = rows[0]
    assert s["list"] == "default"
    assert s["ip"] == "203.0.113.9"
    assert s["user_agent"] == ua
    assert s["lang"] == "en"
    assert s["source"] == "socket"
    assert s["text_version"]
    assert s["name"] == "Constanze"
    assert abs(s["at"] - time.time()) < 60
    pending = dict(s)

    check_answer(daemon.request({"op": "confirm", "token": mail.token, "ip": "203.0.113.10",
                                 "user_agent": "Confirmer/2"}), "confirmed")
    rows = daemon.query("SELECT * FROM consent ORDER BY id")
    assert [r["event"] for r in rows] == ["signup", "confirm"]
    # the sign-up's record moved into consent as it was
    for k in ("list", "at", "ip", "user_agent", "lang", "source", "text_version",
              "consent_text", "consent_version"):
        assert rows[0][k] == pending[k], k
    assert daemon.query("SELECT count(*) FROM signup")[0][0] == 0
    c = rows[1]
    assert c["ip"] == "203.0.113.10"
    assert c["user_agent"] == "Confirmer/2"
    assert c["source"] == "socket"
    assert c["list"] == "default"
    assert daemon.subscription("consent@example.org")["confirm_ip"] == "203.0.113.10"
    sub_name = daemon.query("SELECT name FROM subscriber")[0][0]
    assert sub_name == "Constanze"


def test_consent_text_version_differs_per_language(daemon, smtp):
    check_answer(daemon.subscribe("tv-de@example.org"), "pending")
    check_answer(daemon.subscribe("tv-en@example.org", lang="en"), "pending")
    rows = daemon.query("SELECT lang, text_version FROM signup ORDER BY subscription_id")
    assert [r["lang"] for r in rows] == ["de", "en"]
    assert rows[0]["text_version"] and rows[1]["text_version"]
    assert rows[0]["text_version"] != rows[1]["text_version"]


def test_confirm_ip_is_optional(daemon, smtp):
    check_answer(daemon.subscribe("noip@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    sub = daemon.subscription("noip@example.org")
    assert sub["state"] == "confirmed" and sub["confirm_ip"] is None


def test_expired_token(daemon_factory, smtp):
    d = daemon_factory(SHORT_TTL)
    check_answer(d.subscribe("exp@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    d.settle()
    row = d.query("SELECT issued_at, expires_at FROM token")[0]
    assert row["expires_at"] - row["issued_at"] == 2
    wait_until(lambda: d.request({"op": "check", "token": mail.token})["state"] == "expired",
               timeout=6, what="the token to expire")
    before = db_dump(d.database)
    de = check_answer(d.request({"op": "confirm", "token": mail.token}), "expired")
    en = check_answer(d.request({"op": "confirm", "token": mail.token, "lang": "en"}), "expired")
    check_answer(d.request({"op": "check", "token": mail.token}), "expired")
    assert de["message"] != en["message"]
    assert d.subscription("exp@example.org")["state"] != "confirmed"
    assert db_dump(d.database) == before, "an expired confirm changed the database"


def test_expired_signup_starts_over(daemon, smtp):
    d = daemon
    check_answer(d.subscribe("over@example.org", ip="192.0.2.61"), "pending")
    (old,) = smtp.wait_for(1)
    d.settle()
    # 31 days later (the daemon's clock moved, so a slow run cannot race it)
    d.restart_later(31 * DAY)
    check_answer(d.request({"op": "check", "token": old.token}), "expired")
    check_answer(d.subscribe("over@example.org", lang="en", ip="192.0.2.62"), "pending")
    mails = smtp.wait_for(2)
    new = mails[1]
    assert new.token != old.token
    assert new.rcpt_tos == ["over@example.org"]
    check_answer(d.request({"op": "check", "token": new.token}), "pending")
    # the old, expired link does not confirm the new sign-up
    old_state = d.request({"op": "confirm", "token": old.token})
    assert old_state["state"] in ("expired", "error"), old_state
    if old_state["state"] == "error":
        assert old_state["error"] == "unknown_token", old_state
    assert d.subscription("over@example.org")["state"] == "pending"
    check_answer(d.request({"op": "confirm", "token": new.token}), "confirmed")
    sub = d.subscription("over@example.org")
    assert sub["state"] == "confirmed"
    assert sub["lang"] == "en"
    # the record of the expired sign-up did not come along
    rows = d.query("SELECT event, ip FROM consent ORDER BY id")
    assert [tuple(r) for r in rows] == [("signup", "192.0.2.62"), ("confirm", None)]


def test_expired_pending_without_new_mail_yet(daemon_factory, smtp):
    """Within resend_interval of the last mail nothing is sent, even twice."""
    d = daemon_factory({"subscription": {"confirm_ttl": "1h", "resend_interval": "1h"}})
    for _ in range(5):
        check_answer(d.subscribe("quiet@example.org"), "pending")
    assert len(d.outbox()) == 1
    smtp.wait_for(1)


@pytest.mark.parametrize("token", [
    "",
    "short",
    "A" * 42,
    "A" * 44,
    "A" * 43 + "=",
    "A" * 42 + "=",
    "A" * 42 + "B",          # non-zero padding bits: not a canonical encoding
    "A" * 42 + "!",
    "+" * 43,                # standard base64 alphabet, not base64url
    "/" * 43,
    "ä" * 43,
    "A" * 20 + "\u0000" + "A" * 22,
    "A" * 20 + "\r\n" + "A" * 21,
], ids=lambda t: repr(t)[:50])
def test_malformed_token_is_unknown(shared_daemon, token):
    for op in ("confirm", "check", "unsubscribe"):
        check_answer(shared_daemon.request({"op": op, "token": token}), "error", "unknown_token")


def test_overlong_token_is_unknown(daemon):
    for op in ("confirm", "check", "unsubscribe"):
        check_answer(daemon.request({"op": op, "token": "A" * 129}), "error", "unknown_token")


def test_well_formed_but_unknown_token(daemon, smtp):
    check_answer(daemon.subscribe("someone@example.org"), "pending")
    smtp.wait_for(1)
    daemon.settle()
    before = db_dump(daemon.database)
    for _ in range(3):
        token, _ = new_token()
        for op in ("confirm", "check", "unsubscribe"):
            de = check_answer(daemon.request({"op": op, "token": token}), "error", "unknown_token")
            en = check_answer(daemon.request({"op": op, "token": token, "lang": "en"}),
                              "error", "unknown_token")
            assert de["message"] != en["message"]
    assert db_dump(daemon.database) == before


def test_token_of_other_case_is_unknown(daemon, smtp):
    """Tokens are case-sensitive: flipping a letter's case makes another token."""
    check_answer(daemon.subscribe("case@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    t = mail.token
    i = next(i for i, ch in enumerate(t[:42]) if ch.isalpha())
    flipped = t[:i] + t[i].swapcase() + t[i + 1:]
    check_answer(daemon.request({"op": "confirm", "token": flipped}), "error", "unknown_token")
    assert daemon.subscription("case@example.org")["state"] == "pending"


def confirmed_subscriber(daemon, smtp, address):
    check_answer(daemon.subscribe(address), "pending")
    mail = smtp.wait_for_rcpt(address)[0]
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    return daemon.subscription(address), mail


def test_unsubscribe(daemon, smtp):
    sub, mail = confirmed_subscriber(daemon, smtp, "unsub@example.org")
    token = mint_unsubscribe_token(daemon.database, sub["id"])
    de = check_answer(daemon.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    en = check_answer(daemon.request({"op": "unsubscribe", "token": token, "lang": "en"}),
                      "unsubscribed")
    assert de["message"] != en["message"]
    sub = daemon.subscription("unsub@example.org")
    assert sub["state"] == "unsubscribed"
    assert sub["unsubscribed_at"] and abs(sub["unsubscribed_at"] - time.time()) < 60
    events = [r[0] for r in daemon.query("SELECT event FROM consent ORDER BY id")]
    assert events == ["signup", "confirm", "unsubscribe"]
    # the confirmation link opens nothing any more
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "error", "unknown_token")
    check_answer(daemon.request({"op": "check", "token": mail.token}), "error", "unknown_token")
    assert daemon.subscription("unsub@example.org")["state"] == "unsubscribed"


def test_unsubscribe_a_pending_signup(daemon, smtp):
    check_answer(daemon.subscribe("unsub-pending@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    sub = daemon.subscription("unsub-pending@example.org")
    token = mint_unsubscribe_token(daemon.database, sub["id"])
    check_answer(daemon.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "error", "unknown_token")
    assert daemon.subscription("unsub-pending@example.org")["state"] == "unsubscribed"


def test_subscribe_after_unsubscribe_starts_over(daemon, smtp):
    sub, first = confirmed_subscriber(daemon, smtp, "back@example.org")
    token = mint_unsubscribe_token(daemon.database, sub["id"])
    check_answer(daemon.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    check_answer(daemon.subscribe("Back@example.org", lang="en"), "pending")
    mails = smtp.wait_for(2)
    second = mails[1]
    assert second.rcpt_tos == ["Back@example.org"]
    assert second.token != first.token
    assert daemon.subscription("back@example.org")["state"] == "pending"
    check_answer(daemon.request({"op": "confirm", "token": second.token}), "confirmed")
    assert daemon.subscription("back@example.org")["state"] == "confirmed"
    events = [r[0] for r in daemon.query("SELECT event FROM consent ORDER BY id")]
    assert events == ["signup", "confirm", "unsubscribe", "signup", "confirm"]


def test_token_kinds_do_not_mix(daemon, smtp):
    sub, mail = confirmed_subscriber(daemon, smtp, "kinds@example.org")
    unsub = mint_unsubscribe_token(daemon.database, sub["id"])
    # a confirmation token does not unsubscribe
    check_answer(daemon.request({"op": "unsubscribe", "token": mail.token}),
                 "error", "unknown_token")
    assert daemon.subscription("kinds@example.org")["state"] == "confirmed"
    # an unsubscribe token neither confirms nor is checked as one
    check_answer(daemon.request({"op": "confirm", "token": unsub}), "error", "unknown_token")
    check_answer(daemon.request({"op": "check", "token": unsub}), "error", "unknown_token")
    assert daemon.subscription("kinds@example.org")["state"] == "confirmed"


def test_unsubscribe_of_one_list_keeps_the_other(daemon, smtp):
    check_answer(daemon.subscribe("two@example.org"), "pending")
    check_answer(daemon.subscribe("two@example.org", list="events"), "pending")
    mails = smtp.wait_for(2)
    for m in mails:
        check_answer(daemon.request({"op": "confirm", "token": m.token}), "confirmed")
    events = daemon.subscription("two@example.org", "events")
    token = mint_unsubscribe_token(daemon.database, events["id"])
    check_answer(daemon.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    assert daemon.subscription("two@example.org", "events")["state"] == "unsubscribed"
    assert daemon.subscription("two@example.org", "default")["state"] == "confirmed"
    check_answer(daemon.subscribe("two@example.org"), "duplicate")
