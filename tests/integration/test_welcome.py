"""The welcome mail (issue 22): with [subscription] welcome = yes a
confirmation is followed by one welcome mail from welcome.LANG.txt, with
List-Unsubscribe / List-Unsubscribe-Post and a personal unsubscribe link
that works; one per confirmed subscription, none for imported subscribers;
and the outbox rebuilt by sql/004 keeps its rows, indexes and trigger."""
import os
import re
import sqlite3
import subprocess

import pytest

from ctlhelpers import confirmed_list, need_ctl
from dkimhelpers import ctl
from nlhelpers import Client, Daemon, check_answer, wait_until

UNSUBSCRIBE_RE = re.compile(r"<http://127\.0\.0\.1:8080/unsubscribe\?token=([A-Za-z0-9_-]{43})>")
WELCOME = {"subscription": {"welcome": "yes"}}


def sign_up_and_confirm(d, smtp, address, lang="en", **fields):
    before = smtp.count()
    check_answer(d.subscribe(address, lang=lang, **fields), "pending")
    mail = smtp.wait_for(before + 1)[before]
    check_answer(d.request({"op": "confirm", "token": mail.token}), "confirmed")
    return mail


def welcomes(smtp, address):
    return [m for m in smtp.to(address) if m.msg["List-Unsubscribe"]]


def test_confirmation_is_followed_by_one_welcome_mail_whose_link_unsubscribes(daemon_factory, smtp):
    d = daemon_factory(WELCOME)
    confirm = sign_up_and_confirm(d, smtp, "ada@example.org", lang="en", name="Ada")
    assert confirm.msg["List-Unsubscribe"] is None
    [welcome] = wait_until(lambda: welcomes(smtp, "ada@example.org"), what="the welcome mail")
    assert welcome.msg["Subject"] == "Welcome to our newsletter"
    assert welcome.msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert welcome.msg["List-Id"] == "<default.example.org>"
    token = UNSUBSCRIBE_RE.fullmatch(welcome.msg["List-Unsubscribe"].strip()).group(1)
    assert "unsubscribe?token=" + token in welcome.body
    assert "thank you for confirming" in welcome.body
    assert [r["kind"] for r in d.settle()] == ["confirm", "welcome"]

    # a second click on the confirmation link sends no second welcome
    check_answer(d.request({"op": "confirm", "token": confirm.token}), "confirmed")
    d.settle()
    # the link of the welcome mail unsubscribes
    check_answer(d.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    assert d.subscription("ada@example.org")["state"] == "unsubscribed"
    assert len(welcomes(smtp, "ada@example.org")) == 1
    assert smtp.count() == 2


def test_welcome_is_in_the_subscribers_language(daemon_factory, smtp):
    d = daemon_factory(WELCOME)
    sign_up_and_confirm(d, smtp, "bert@example.net", lang="de")
    [welcome] = wait_until(lambda: welcomes(smtp, "bert@example.net"), what="the welcome mail")
    assert welcome.msg["Subject"] == "Willkommen bei unserem Newsletter"
    assert "abbestellen" in welcome.body


def test_a_new_sign_up_after_unsubscribing_is_welcomed_again(daemon_factory, smtp):
    d = daemon_factory(WELCOME)
    sign_up_and_confirm(d, smtp, "cleo@example.com")
    [first] = wait_until(lambda: welcomes(smtp, "cleo@example.com"), what="the welcome mail")
    token = UNSUBSCRIBE_RE.fullmatch(first.msg["List-Unsubscribe"].strip()).group(1)
    check_answer(d.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    d.settle()
    sign_up_and_confirm(d, smtp, "cleo@example.com")
    wait_until(lambda: len(welcomes(smtp, "cleo@example.com")) == 2, what="a second welcome")


def test_no_welcome_by_default(daemon_factory, smtp):
    plain = daemon_factory()
    sign_up_and_confirm(plain, smtp, "dora@example.org")
    assert [r["kind"] for r in plain.settle()] == ["confirm"]
    assert len(smtp.to("dora@example.org")) == 1


def test_no_welcome_for_imported_subscribers(daemon_factory, smtp, workdir):
    need_ctl()
    d = daemon_factory(WELCOME)
    confirmed_list(d, workdir, ["erik@example.org", "fay@example.org"])
    sign_up_and_confirm(d, smtp, "gus@example.org")
    wait_until(lambda: welcomes(smtp, "gus@example.org"), what="the welcome mail")
    rows = d.settle()
    assert sorted(r["kind"] for r in rows) == ["confirm", "welcome"], rows
    assert not smtp.to("erik@example.org") and not smtp.to("fay@example.org")


def test_import_welcome_welcomes_the_confirmed_subscribers_it_adds(daemon_factory, smtp, workdir):
    need_ctl()
    d = daemon_factory()        # [subscription] welcome is off: the option asks for it
    path = os.path.join(workdir, "members.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("email,name\nhal@example.org,Hal\nida@example.org,Ida\n")
    r = ctl(d.config_path, "import", path, "--welcome", "--lang", "en")
    assert r.rc == 0, r
    wait_until(lambda: welcomes(smtp, "hal@example.org") and welcomes(smtp, "ida@example.org"),
               what="the welcome mails")
    [hal] = welcomes(smtp, "hal@example.org")
    assert hal.msg["Subject"] == "Welcome to our newsletter"
    token = UNSUBSCRIBE_RE.fullmatch(hal.msg["List-Unsubscribe"].strip()).group(1)
    check_answer(d.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    assert d.subscription("hal@example.org")["state"] == "unsubscribed"
    assert d.subscription("ida@example.org")["state"] == "confirmed"
    # importing them again adds no one, and welcomes no one again
    r = ctl(d.config_path, "import", path, "--welcome")
    assert r.rc == 0, r
    assert sorted(x["kind"] for x in d.settle()) == ["welcome", "welcome"]
    # a sign-up is welcomed when confirmed, by the config: not both at once
    r = ctl(d.config_path, "import", path, "--welcome", "--pending")
    assert r.rc == 2, r
    with Client(d.admin_socket) as c:
        check_answer(c.request({"op": "import_begin", "source": "x", "pending": True,
                                "welcome": True}), "error", "invalid_request")


def test_a_welcome_text_with_an_unknown_placeholder_is_a_start_up_error(daemon_factory, workdir):
    tdir = os.path.join(workdir, "templates")
    os.mkdir(tdir)
    src = os.path.join(os.environ["SOURCE_ROOT"], "conf", "templates")
    for name in ("confirm.de.txt", "confirm.en.txt"):
        with open(os.path.join(src, name), encoding="utf-8") as f, \
                open(os.path.join(tdir, name), "w", encoding="utf-8") as g:
            g.write(f.read())
    # without welcome texts of its own the directory is fine: the built-in ones
    d = daemon_factory({"subscription": {"welcome": "yes", "templates": tdir}}, start=False)
    from nlhelpers import check_config
    rc, out, err = check_config(d.config_path)
    assert rc == 0, (rc, out, err)
    with open(os.path.join(tdir, "welcome.en.txt"), "w", encoding="utf-8") as f:
        f.write("Subject: Hi\n\nHello {{confirm_url}}\n")
    rc, out, err = check_config(d.config_path)
    assert rc != 0 and "welcome.en.txt" in err and "confirm_url" in err, (rc, out, err)


def test_schema_4_rebuilds_the_outbox_keeping_rows_indexes_and_trigger(workdir, smtp):
    """A database at schema 3 with mails in its outbox, migrated by the daemon."""
    db = os.path.join(workdir, "old.sqlite")
    sql_dir = os.path.join(os.environ["SOURCE_ROOT"], "sql")
    con = sqlite3.connect(db)
    for name in ("001-schema.sql", "002-antibot.sql", "003-archive.sql"):
        with open(os.path.join(sql_dir, name), encoding="utf-8") as f:
            con.executescript(f.read())
    con.execute("PRAGMA user_version = 3")
    con.execute("INSERT INTO issue (id, list, subject, text_body, state, created_at)"
                " VALUES (7, 'default', 'S', 'T', 'sending', 1)")
    con.execute("INSERT INTO issue_progress VALUES (7, 'queued', 1)")
    con.execute("INSERT INTO outbox (id, kind, state, priority, created_at, next_at, issue_id, rcpt)"
                " VALUES (41, 'newsletter', 'failed', 10, 1, 1, 7, 'x@example.org')")
    con.execute("INSERT INTO outbox (id, kind, state, priority, created_at, next_at, issue_id, rcpt)"
                " VALUES (42, 'newsletter', 'queued', 10, 1, 1, 7, 'y@example.org')")
    con.commit()
    before_idx = sorted(r[0] for r in con.execute(
        "SELECT name FROM sqlite_schema WHERE tbl_name = 'outbox' AND type IN ('index', 'trigger')"))
    con.close()
    os.chmod(db, 0o600)

    d = Daemon(workdir, smtp.url, {"daemon": {"database": db}}, name="migrated")
    d.start()
    try:
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA user_version").fetchone()[0] >= 4
        rows = con.execute("SELECT id, kind, rcpt FROM outbox ORDER BY id").fetchall()
        assert rows[:2] == [(41, "newsletter", "x@example.org"), (42, "newsletter", "y@example.org")]
        after_idx = sorted(r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE tbl_name = 'outbox' AND type IN ('index', 'trigger')"))
        assert after_idx == before_idx and "outbox_progress_delete" in after_idx
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(sqlite3.IntegrityError):
            con.execute("INSERT INTO outbox (kind, state, priority, created_at, next_at)"
                        " VALUES ('bogus', 'queued', 0, 1, 1)")
        con.rollback()
    finally:
        assert d.stop() == 0
