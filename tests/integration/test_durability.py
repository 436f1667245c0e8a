"""Crash safety: what was acknowledged survives kill -9, mails in flight are
sent again after a restart (at least once), with a token that works."""
import os
import sqlite3

from nlhelpers import BlackHoleRelay, check_answer, token_hash, wait_until


def test_acknowledged_signup_survives_kill9(daemon, smtp):
    check_answer(daemon.subscribe("crash@example.org", name="Crash"), "pending")
    daemon.kill9()
    # the sockets are left behind; the next start must cope with that
    assert os.path.exists(daemon.public_socket)

    daemon.start()
    sub = daemon.subscription("crash@example.org")
    assert sub is not None and sub["state"] == "pending"
    smtp.wait_for(1)
    daemon.settle()
    mails = smtp.to("crash@example.org")
    assert mails, "no confirmation mail after the restart"
    # whichever mail came last carries a token that confirms
    check_answer(daemon.request({"op": "check", "token": mails[-1].token}), "pending")
    check_answer(daemon.request({"op": "confirm", "token": mails[-1].token}), "confirmed")
    assert daemon.subscription("crash@example.org")["state"] == "confirmed"
    assert [r[0] for r in daemon.query("SELECT event FROM consent ORDER BY id")] == \
        ["signup", "confirm"]


def test_many_acknowledged_signups_survive_kill9(daemon, smtp):
    addresses = ["burst%02d@example.org" % i for i in range(40)]
    with daemon.client() as c:
        for a in addresses:
            check_answer(c.request({"op": "subscribe", "email": a}), "pending")
    daemon.kill9()
    daemon.start()
    # every acknowledged sign-up is there, waiting apart until confirmed (sql/009)
    keys = sorted(r[0] for r in daemon.query("SELECT email_key FROM signup"))
    assert keys == addresses
    smtp.wait_for(40, timeout=30)
    daemon.settle(timeout=20)
    assert {m.rcpt_tos[0] for m in smtp.snapshot()} == set(addresses)


def test_mail_in_flight_at_kill9_is_sent_again_with_a_fresh_token(daemon_factory, smtp):
    hole = BlackHoleRelay()
    try:
        # the relay never answers: the mail stays 'sending' until the timeout
        d = daemon_factory({"smtp": {"timeout": "60s"}}, smtp_url=hole.url)
        check_answer(d.subscribe("inflight@example.org"), "pending")
        rows = d.wait_outbox(lambda rows: rows and rows[0]["state"] == "sending",
                             what="the mail to be in flight")
        assert rows[0]["attempts"] == 1
        first_hashes = {r[0] for r in d.query("SELECT hash FROM token")}
        assert len(first_hashes) == 1
        d.kill9()
    finally:
        hole.close()

    d.configure({"smtp": {"timeout": "5s"}}, smtp_url=smtp.url)
    d.start()
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["inflight@example.org"]
    rows = d.settle()
    assert len(rows) == 1 and rows[0]["state"] == "sent" and rows[0]["attempts"] == 2
    # the resent mail has a new token (the first was never delivered)
    assert token_hash(mail.token) not in first_hashes
    check_answer(d.request({"op": "confirm", "token": mail.token}), "confirmed")


def test_sigterm_waits_for_the_transfer_in_flight(daemon_factory, smtp):
    hole = BlackHoleRelay()
    try:
        d = daemon_factory({"smtp": {"timeout": "2s"}}, smtp_url=hole.url)
        check_answer(d.subscribe("stopping@example.org"), "pending")
        d.wait_outbox(lambda rows: rows and rows[0]["state"] == "sending",
                      what="the mail to be in flight")
        hole.wait_connected(1)      # the transfer has started
        assert d.stop(timeout=12) == 0
    finally:
        hole.close()
    # the transfer's outcome was recorded before the exit
    rows = d.outbox()
    assert len(rows) == 1 and rows[0]["state"] == "deferred", rows
    assert not os.path.exists(d.public_socket)

    d.configure(smtp_url=smtp.url)
    d.start()
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["stopping@example.org"]
    check_answer(d.request({"op": "confirm", "token": mail.token}), "confirmed")


def test_sigterm_puts_unstarted_mails_back(daemon_factory, smtp):
    """One sender, a relay that hangs: one mail in flight, more claimed or
    waiting.  After SIGTERM none is lost and none is left 'sending'; the next
    process sends them all."""
    hole = BlackHoleRelay()
    addresses = ["unstarted%d@example.org" % i for i in range(5)]
    try:
        d = daemon_factory({"smtp": {"timeout": "2s", "max_connections": "1"}},
                           smtp_url=hole.url)
        with d.client() as c:
            for a in addresses:
                check_answer(c.request({"op": "subscribe", "email": a}), "pending")
        d.wait_outbox(lambda rows: any(r["state"] == "sending" for r in rows),
                      what="a mail in flight")
        hole.wait_connected(1)
        assert d.stop(timeout=12) == 0
    finally:
        hole.close()
    rows = d.outbox()
    assert len(rows) == 5
    assert not [r for r in rows if r["state"] == "sending"], rows
    assert all(r["state"] in ("queued", "deferred") for r in rows), rows

    d.configure(smtp_url=smtp.url)
    d.start()
    mails = smtp.wait_for(5)
    assert sorted(m.rcpt_tos[0] for m in mails) == addresses
    assert all(r["state"] == "sent" for r in d.settle())
    for m in mails:
        check_answer(d.request({"op": "confirm", "token": m.token}), "confirmed")


def test_queued_mails_survive_a_restart(daemon_factory, smtp):
    """Deferred mails (relay down) are sent by the next process."""
    from nlhelpers import free_port
    d = daemon_factory(smtp_url="smtp://127.0.0.1:%d" % free_port())
    for i in range(3):
        check_answer(d.subscribe("queued%d@example.org" % i), "pending")
    d.wait_outbox(lambda rows: len(rows) == 3 and all(r["state"] == "deferred" for r in rows),
                  what="three deferred mails")
    assert d.stop() == 0
    d.configure(smtp_url=smtp.url)
    d.start()
    mails = smtp.wait_for(3)
    assert sorted(m.rcpt_tos[0] for m in mails) == ["queued%d@example.org" % i for i in range(3)]
    for m in mails:
        check_answer(d.request({"op": "confirm", "token": m.token}), "confirmed")


def test_state_survives_a_clean_restart(daemon, smtp):
    check_answer(daemon.subscribe("keep@example.org"), "pending")
    check_answer(daemon.subscribe("keep-pending@example.org"), "pending")
    smtp.wait_for(2)
    (mail,) = smtp.to("keep@example.org")
    (pending_mail,) = smtp.to("keep-pending@example.org")
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    daemon.settle()
    assert daemon.stop() == 0
    daemon.start()
    check_answer(daemon.subscribe("keep@example.org"), "duplicate")
    check_answer(daemon.request({"op": "check", "token": mail.token}), "confirmed")
    # within resend_interval across the restart: no second mail
    check_answer(daemon.subscribe("keep-pending@example.org"), "pending")
    check_answer(daemon.request({"op": "confirm", "token": pending_mail.token}), "confirmed")
    assert len(daemon.outbox()) == 2
    assert smtp.count() == 2


def test_locked_database_answers_unavailable_and_recovers(daemon, smtp):
    """Another process holding the write lock longer than the daemon waits:
    the request is refused with 'unavailable', nothing half-done remains,
    and the daemon serves normally once the lock is gone."""
    check_answer(daemon.subscribe("first@example.org"), "pending")
    smtp.wait_for(1)
    daemon.settle()
    con = sqlite3.connect(daemon.database, timeout=10, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        with daemon.client(timeout=30) as c:
            answer = c.request({"op": "subscribe", "email": "locked@example.org"})
        check_answer(answer, "error", "unavailable")
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert daemon.subscription("locked@example.org") is None
    check_answer(daemon.subscribe("locked@example.org"), "pending")
    (mail,) = smtp.wait_for_rcpt("locked@example.org")
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")


def test_the_wal_is_copied_into_the_database_by_a_thread_of_its_own(daemon_factory, workdir):
    from ctlhelpers import confirmed_list
    d = daemon_factory()
    names = set()
    for task in os.listdir("/proc/%d/task" % d.proc.pid):
        with open("/proc/%d/task/%s/comm" % (d.proc.pid, task)) as f:
            names.add(f.read().strip())
    assert "checkpoint" in names, names
    size0 = os.path.getsize(d.database)
    # some megabytes of writes: more than the WAL holds before a checkpoint
    confirmed_list(d, workdir, ["wal%05d@example.org" % i for i in range(20000)])
    # without checkpoints everything would stay in the WAL
    wait_until(lambda: os.path.getsize(d.database) > size0 + 2000000, timeout=30,
               what="the imported rows to reach the database file")


# ---------------------------------------------------------------- schema

# Every CHECK constraint that names more than two values (sql/001-schema.sql), with
# the table, a row that passes but for the checked column, and its values.
CHECKED = [
    ("subscription", "INSERT INTO subscription (subscriber_id, list, state, lang, created_at)"
     " VALUES (NULL, 'x', ?, 'en', 1)",
     ["pending", "confirmed", "expired", "unsubscribed", "bounced"]),
    ("outbox", "INSERT INTO outbox (kind, state, priority, created_at, next_at, rcpt)"
     " VALUES ('confirm', ?, 1, 1, 1, 'a@example.org')",
     ["queued", "sending", "sent", "deferred", "failed", "skipped"]),
    ("consent", "INSERT INTO consent (subscriber_id, list, event, at, source)"
     " VALUES (1, 'x', ?, 1, 'socket')",
     ["signup", "confirm", "unsubscribe", "import"]),
    ("issue", "INSERT INTO issue (list, subject, text_body, state, created_at)"
     " VALUES ('x', 's', 't', ?, 1)",
     ["sending", "paused", "cancelled"]),
    ("bounce", "INSERT INTO bounce (subscriber_id, kind, at) VALUES (1, ?, 1)",
     ["permanent", "temporary", "complaint"]),
]


def test_the_schema_checks_every_state_by_comparisons(daemon_factory):
    """The daemon's schema still refuses a state no code knows, accepts every
    one it does, and checks them without a temporary b-tree per row (what
    SQLite builds for `IN` over more than two constants)."""
    d = daemon_factory()
    d.stop()
    con = sqlite3.connect(d.database, isolation_level=None)
    try:
        con.execute("BEGIN")
        for table, insert, values in CHECKED:
            for v in values:
                con.execute(insert, (v,))
            for bad in ("bogus", values[0].upper(), values[0] + " "):
                try:
                    con.execute(insert, (bad,))
                except sqlite3.IntegrityError as e:
                    assert "CHECK constraint failed" in str(e), e
                else:
                    raise AssertionError("%s took the value %r" % (table, bad))
            plan = [r[1] for r in con.execute("EXPLAIN " + insert, (values[0],))]
            assert "OpenEphemeral" not in plan, "%s: a temporary b-tree per row" % table
        # the two state changes of every mail, as the scheduler writes them
        for sql in ("UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?",
                    "UPDATE outbox SET state = ?, next_at = 1 WHERE id = 1"):
            plan = [r[1] for r in con.execute("EXPLAIN " + sql, ("sent",) if "?, " in sql else (1,))]
            assert "OpenEphemeral" not in plan, sql
        con.execute("ROLLBACK")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
