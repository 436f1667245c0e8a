"""The process: start-up, SIGTERM/SIGINT, SIGHUP reload, a second instance,
files it creates."""
import os
import signal
import socket
import stat
import time

import pytest

from nlhelpers import (CONFIRM_PREFIX, SLOW, BlackHoleRelay, check_answer, run_daemon,
                       wait_until)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_0_and_removes_sockets(daemon, sig):
    check_answer(daemon.request({"op": "ping"}), "ok")
    assert os.path.exists(daemon.public_socket) and os.path.exists(daemon.admin_socket)
    t0 = time.monotonic()
    daemon.signal(sig)
    assert daemon.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5 * SLOW
    assert not os.path.exists(daemon.public_socket)
    assert not os.path.exists(daemon.admin_socket)
    assert os.path.exists(daemon.database)


def test_sigterm_with_idle_and_half_sent_clients(daemon):
    idle = daemon.client()
    half = daemon.client()
    try:
        half.send_raw(b'{"op":"pi')
        check_answer(idle.request({"op": "ping"}), "ok")
        t0 = time.monotonic()
        assert daemon.stop(timeout=10) == 0
        assert time.monotonic() - t0 < 5 * SLOW
        assert idle.wait_closed(2)
        assert half.wait_closed(2)
    finally:
        idle.close()
        half.close()


def test_sigterm_after_delivering_mail(daemon, smtp):
    """Exercises the shutdown of sender threads that hold an open relay
    connection (curl sends QUIT on cleanup)."""
    for i in range(3):
        check_answer(daemon.subscribe("bye%d@example.org" % i), "pending")
    smtp.wait_for(3)
    daemon.settle()
    assert daemon.stop(timeout=10) == 0
    assert not daemon.sanitizer_reports()


def test_sigterm_with_a_client_that_never_reads(daemon_factory):
    """A client that pipelines requests and never reads its answers cannot
    keep the daemon from stopping: it exits 0 at the latest when its stop
    timer (smtp timeout + 5 s) runs out."""
    d = daemon_factory({"smtp": {"timeout": "1s"}})
    hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hog.connect(d.public_socket)
    hog.setblocking(False)
    chunk = b'{"op":"ping"}\n' * 1000
    deadline = time.monotonic() + 3
    try:
        while time.monotonic() < deadline:
            try:
                hog.send(chunk)
            except BlockingIOError:
                break
        time.sleep(0.2)
        t0 = time.monotonic()
        assert d.stop(timeout=15) == 0
        assert time.monotonic() - t0 < 1 + 5 + 3 * SLOW
        assert not os.path.exists(d.public_socket)
    finally:
        hog.close()


def test_files_are_not_world_accessible(daemon):
    st = os.stat(daemon.public_socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert st.st_mode & 0o007 == 0, oct(st.st_mode)
    st = os.stat(daemon.admin_socket)
    assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o007 == 0, oct(st.st_mode)
    st = os.stat(daemon.database)
    assert st.st_mode & 0o077 == 0, oct(st.st_mode)


def test_sighup_applies_a_changed_config_to_the_next_mail(daemon, smtp):
    check_answer(daemon.subscribe("before@example.org"), "pending")
    (before,) = smtp.wait_for(1)
    assert before.body.count(CONFIRM_PREFIX + before.token) == 1

    daemon.configure({"subscription": {
        "confirm_url": "https://reloaded.example.net/bestaetigen?t={token}",
        "lists": "default, events, extra"}})
    daemon.signal(signal.SIGHUP)
    # the reload is done once the new list is accepted
    wait_until(lambda: daemon.subscribe("probe@example.org", list="extra")["state"] == "pending",
               timeout=10, what="the reload to take effect")
    check_answer(daemon.subscribe("after@example.org"), "pending")
    smtp.wait_for(3)
    (after,) = smtp.to("after@example.org")
    assert "https://reloaded.example.net/bestaetigen?t=" + after.token in after.body
    assert CONFIRM_PREFIX not in after.body
    assert daemon.running
    # links from before the reload still work
    check_answer(daemon.request({"op": "confirm", "token": before.token}), "confirmed")
    check_answer(daemon.request({"op": "confirm", "token": after.token}), "confirmed")


def test_sighup_switches_the_relay(daemon_factory, smtp, sink_factory):
    first = sink_factory()     # swallows mails
    d = daemon_factory(smtp_url=first.url)
    check_answer(d.subscribe("relay@example.org"), "pending")
    d.settle()
    assert smtp.count() == 0
    d.configure(smtp_url=smtp.url)
    d.signal(signal.SIGHUP)
    # new sign-ups until one reaches the new relay
    n = [0]

    def one_more():
        n[0] += 1
        check_answer(d.subscribe("relay%d@example.org" % n[0]), "pending")
        d.settle()
        return smtp.count() > 0
    wait_until(one_more, timeout=10, what="mail through the new relay")
    (mail,) = smtp.snapshot()
    assert mail.rcpt_tos == ["relay%d@example.org" % n[0]]


def reports_about(daemon, path):
    return daemon.stderr().count(path)


def test_sighup_with_a_broken_config_keeps_the_old_one(daemon, smtp):
    good = open(daemon.config_path, encoding="utf-8").read()
    broken = good.replace("confirm_ttl = 30d", "confirm_ttl = 30x").replace(
        "http://127.0.0.1:8080/confirm?token={token}", "https://broken.example/c?t={token}")
    assert broken != good
    bad_line = next(i for i, l in enumerate(broken.splitlines(), 1) if "30x" in l)
    daemon.write_config(broken)
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: "%s:%d:" % (daemon.config_path, bad_line) in daemon.stderr(),
               timeout=10, what="the reload to be refused with file:line")
    assert daemon.running
    check_answer(daemon.request({"op": "ping"}), "ok")
    check_answer(daemon.subscribe("still@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.body.count(CONFIRM_PREFIX + mail.token) == 1
    assert "broken.example" not in mail.body

    # a missing file is refused the same way
    seen = reports_about(daemon, daemon.config_path)
    os.rename(daemon.config_path, daemon.config_path + ".away")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: reports_about(daemon, daemon.config_path) > seen, timeout=10,
               what="the missing file to be reported")
    assert daemon.running
    check_answer(daemon.request({"op": "ping"}), "ok")
    os.rename(daemon.config_path + ".away", daemon.config_path)

    # and a good config after that is taken
    daemon.write_config(good.replace("http://127.0.0.1:8080/confirm?token={token}",
                                     "https://fixed.example/c?t={token}"))
    daemon.signal(signal.SIGHUP)
    n = [0]

    def fixed_url():
        n[0] += 1
        address = "fixed%d@example.org" % n[0]
        check_answer(daemon.subscribe(address), "pending")
        (m,) = smtp.wait_for_rcpt(address)
        return "https://fixed.example/c?t=" + m.token in m.body
    wait_until(fixed_url, timeout=10, what="mails with the reloaded confirm_url")


def test_many_reloads_while_serving(daemon, smtp):
    with daemon.client() as c:
        for i in range(10):
            daemon.signal(signal.SIGHUP)
            check_answer(c.request({"op": "subscribe", "email": "reload%d@example.org" % i}),
                         "pending")
    smtp.wait_for(10)
    assert daemon.running


def test_second_daemon_on_a_live_socket_fails_and_the_first_keeps_serving(daemon_factory, smtp):
    first = daemon_factory()
    check_answer(first.subscribe("one@example.org"), "pending")
    rc, out, err = run_daemon(["-c", first.config_path])
    assert rc != 0
    # the second one stops at the first thing it would share: the database
    assert "in use by another newsletterd" in err
    assert first.running
    assert os.path.exists(first.public_socket)
    check_answer(first.request({"op": "ping"}), "ok")
    check_answer(first.subscribe("two@example.org"), "pending")
    smtp.wait_for(2)


def test_second_daemon_leaves_the_first_ones_mails_alone(daemon_factory, smtp):
    hole = BlackHoleRelay()
    try:
        first = daemon_factory({"smtp": {"timeout": "30s", "max_connections": "2"}},
                               smtp_url=hole.url)
        check_answer(first.subscribe("twice@example.org"), "pending")
        first.wait_outbox(lambda rows: rows and rows[0]["state"] == "sending",
                          what="the mail to be in flight")
        rc, out, err = run_daemon(["-c", first.config_path])
        assert rc != 0
        time.sleep(1.5)     # the first daemon's scheduler ticks once a second
        rows = first.outbox()
        assert len(rows) == 1
        assert rows[0]["state"] == "sending" and rows[0]["attempts"] == 1, rows
        assert len(first.query("SELECT * FROM token")) == 1
    finally:
        hole.close()


def test_socket_path_taken_by_a_file_is_not_replaced(daemon_factory):
    d = daemon_factory(start=False)
    with open(d.public_socket, "w") as f:
        f.write("precious\n")
    proc = d.spawn()
    assert proc.wait(30) != 0
    with open(d.public_socket) as f:
        assert f.read() == "precious\n"


def test_stale_socket_from_a_crash_is_replaced(daemon):
    daemon.kill9()
    assert os.path.exists(daemon.public_socket)
    daemon.start()
    check_answer(daemon.request({"op": "ping"}), "ok")


def test_start_with_a_broken_config_fails(daemon_factory):
    d = daemon_factory(start=False)
    text = open(d.config_path, encoding="utf-8").read()
    d.write_config(text.replace("starttls = off", "starttls = sometimes"))
    proc = d.spawn()
    assert proc.wait(30) != 0
    err = d.stderr()
    line = next(i + 1 for i, l in enumerate(text.splitlines()) if l.startswith("starttls"))
    assert "%s:%d:" % (d.config_path, line) in err
    assert not os.path.exists(d.public_socket)


def test_start_with_an_unusable_database_path_fails(daemon_factory, workdir):
    d = daemon_factory({"daemon": {"database": os.path.join(workdir, "missing", "db.sqlite")}},
                       start=False)
    proc = d.spawn()
    assert proc.wait(30) != 0
    assert not os.path.exists(d.public_socket)
