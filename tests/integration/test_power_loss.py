"""Durability against power loss, not only kill -9: every answer that
acknowledges a write (pending, confirmed, unsubscribed, an import) goes out
after a sync of that write.

Two views of the same promise: the system calls the daemon makes (strace:
an fdatasync/fsync on the answering thread before every such answer), and
what a power cut would leave on disk (tests/crashvfs.c keeps each file as it
was at its last sync; after kill -9 those images replace the files).  A
kill -9 alone cannot tell: the page cache survives the process."""
import os
import re
import shutil
import signal
import subprocess

import pytest

from ctlhelpers import ctl, need_ctl, write
from nlhelpers import check_answer, wait_until

CRASHVFS = os.environ.get("CRASHVFS", "")
ACK_RE = re.compile(r'\\"state\\":\\"(pending|confirmed|unsubscribed)\\"')


def strace_attach(pid, out):
    """strace every thread of `pid` (syncs and socket sends) into `out`;
    returns once all threads are traced."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    proc = subprocess.Popen(["strace", "-f", "-qq", "-s", "200", "-e", "signal=none",
                             "-e", "trace=fdatasync,fsync,sendto,sendmsg,write,writev",
                             "-o", out, "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def traced():
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                if "TracerPid:\t0\n" in f.read():
                    return False
        return True
    wait_until(traced, what="strace to attach")
    return proc


def strace_detach(proc):
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def acknowledgements(trace_path):
    """[(tid, line number, synced since that thread's previous answer)] for
    every answer that acknowledges a write."""
    out, synced = [], {}
    with open(trace_path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f):
            tid, _, call = line.partition(" ")
            call = call.lstrip()        # (strace pads short thread ids)
            # (a call another thread interrupts is split: "fdatasync(5
            # <unfinished ...>" ... "<... fdatasync resumed>) = 0")
            if call.startswith(("fdatasync(", "fsync(", "<... fdatasync resumed>",
                                "<... fsync resumed>")) and call.rstrip().endswith("= 0"):
                synced[tid] = True
            elif call.startswith(("sendto(", "sendmsg(", "write(", "writev(")) and ACK_RE.search(call):
                out.append((tid, n, synced.get(tid, False)))
                synced[tid] = False
    return out


def unsubscribe_token(mail):
    m = re.search(r"unsubscribe\?token=([A-Za-z0-9_-]+)", mail.msg["List-Unsubscribe"])
    assert m, mail.msg["List-Unsubscribe"]
    return m.group(1)


def send_issue(daemon, workdir, subject):
    text = write(os.path.join(workdir, "issue.txt"), "Hallo {{name}}\n\n{{unsubscribe_url}}\n")
    r = ctl(daemon, "send", "--subject", subject, "--text", text, "--wait")
    r.ok()


def test_every_acknowledging_answer_comes_after_a_sync(daemon, smtp, workdir):
    need_ctl()
    trace = os.path.join(workdir, "strace.out")
    tracer = strace_attach(daemon.proc.pid, trace)
    try:
        addresses = ["sync%d@example.org" % i for i in range(4)]
        with daemon.client() as c:
            for a in addresses:
                check_answer(c.request({"op": "subscribe", "email": a}), "pending")
        smtp.wait_for(4)
        with daemon.client() as c:
            for a in addresses:
                check_answer(c.request({"op": "confirm", "token": smtp.to(a)[-1].token}),
                             "confirmed")
        send_issue(daemon, workdir, "Sync")
        wait_until(lambda: len(smtp.snapshot()) >= 8, what="the issue's mails")
        with daemon.client() as c:
            for a in addresses[:2]:
                mail = [m for m in smtp.to(a) if m.msg["List-Unsubscribe"]][-1]
                check_answer(c.request({"op": "unsubscribe", "token": unsubscribe_token(mail)}),
                             "unsubscribed")
    finally:
        strace_detach(tracer)
    acks = acknowledgements(trace)
    assert len(acks) == 10, "expected 4 pending, 4 confirmed, 2 unsubscribed answers: %r" % acks
    unsynced = [a for a in acks if not a[2]]
    assert not unsynced, "answers sent without a sync of their write (line numbers of %s): %r" \
        % (trace, unsynced)


def power_cut(daemon):
    """kill -9, then what the disk held at the last syncs replaces the files."""
    daemon.kill9()
    db = daemon.database
    for suffix in ("", "-wal"):
        image = db + suffix + "-synced"
        if os.path.exists(image):
            os.replace(image, db + suffix)
        elif os.path.exists(db + suffix):
            os.unlink(db + suffix)      # never synced: a power cut leaves nothing
    if os.path.exists(db + "-shm"):
        os.unlink(db + "-shm")          # shared memory: gone with the power


def test_acknowledged_changes_survive_a_power_loss(daemon_factory, smtp, workdir):
    need_ctl()
    d = crashvfs_daemon(daemon_factory)

    addresses = ["power%d@example.org" % i for i in range(6)]
    with d.client() as c:
        for a in addresses:
            check_answer(c.request({"op": "subscribe", "email": a, "name": "P"}), "pending")
    smtp.wait_for(6)
    with d.client() as c:
        for a in addresses[:4]:
            check_answer(c.request({"op": "confirm", "token": smtp.to(a)[-1].token}), "confirmed")
    imported = write(os.path.join(workdir, "list.csv"), "email\nimported@example.org\n")
    ctl(d, "import", imported).ok()
    send_issue(d, workdir, "Power")
    wait_until(lambda: len(smtp.snapshot()) >= 6 + 5, what="the issue's mails")
    with d.client() as c:
        mail = [m for m in smtp.to(addresses[0]) if m.msg["List-Unsubscribe"]][-1]
        check_answer(c.request({"op": "unsubscribe", "token": unsubscribe_token(mail)}),
                     "unsubscribed")

    power_cut(d)
    d.env = {}
    d.start()
    def state(a):
        sub = d.subscription(a)
        return sub and sub["state"]
    assert state(addresses[0]) == "unsubscribed"
    for a in addresses[1:4] + ["imported@example.org"]:
        assert state(a) == "confirmed", a
    # the two unconfirmed sign-ups wait apart (sql/009), as acknowledged
    waiting = {r[0] for r in d.query("SELECT email_key FROM signup")}
    assert waiting == set(addresses[4:])


def crashvfs_daemon(daemon_factory, **env):
    assert CRASHVFS and os.path.exists(CRASHVFS), "CRASHVFS names tests/crashvfs.c's module"
    d = daemon_factory(start=False)
    # (under AddressSanitizer the preloaded module would otherwise come
    # before its runtime, which it refuses)
    d.env = {"LD_PRELOAD": CRASHVFS,
             "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    d.env.update(env)
    d.start()
    assert os.path.exists(d.database + "-synced"), "the daemon did not run on crashvfs"
    return d


def test_links_in_mails_sent_work_after_a_power_loss(daemon_factory, smtp, workdir):
    """A newsletter goes out while no client waits on anything: the tokens
    of its mails are on disk before the mails leave."""
    need_ctl()
    d = crashvfs_daemon(daemon_factory)
    imported = write(os.path.join(workdir, "list.csv"),
                     "email\n" + "".join("link%d@example.org\n" % i for i in range(40)))
    ctl(d, "import", imported).ok()
    text = write(os.path.join(workdir, "issue.txt"), "Hallo\n\n{{unsubscribe_url}}\n")
    ctl(d, "send", "--subject", "Links", "--text", text).ok()
    smtp.wait_for(40)
    power_cut(d)
    d.env = {}
    d.start()
    d.settle(timeout=20)
    for i in range(40):
        first = smtp.to("link%d@example.org" % i)[0]
        check_answer(d.request({"op": "unsubscribe", "token": unsubscribe_token(first)}),
                     "unsubscribed")


def test_a_failed_sync_acknowledges_nothing_and_stops_the_daemon(daemon_factory, smtp, workdir):
    flag = os.path.join(workdir, "fail-sync")
    d = crashvfs_daemon(daemon_factory, CRASHVFS_FAIL_SYNC=flag)
    check_answer(d.subscribe("before@example.org"), "pending")
    smtp.wait_for(1)
    d.settle()
    open(flag, "w").close()             # the disk starts failing
    with d.client() as c:
        c.send({"op": "subscribe", "email": "during@example.org"})
        try:
            answer = c.recv()
        except Exception:               # closed without an answer
            answer = None
    assert answer is None, "acknowledged without a sync: %r" % answer
    d.proc.wait(30)
    assert d.proc.returncode != 0
    assert "syncing the WAL failed" in d.stderr()
    # the disk works again: the next start recovers what is on disk
    os.unlink(flag)
    d.env = {}
    d.start()
    assert d.subscription("before@example.org")["state"] == "pending"
