"""Helpers for the tests of newsletterctl (the admin CLI): where the binary
is, running it against a test daemon, reading its JSON output, and a few
small tools the admin and send tests share (CSV files, counting mails).

$NEWSLETTERCTL names the CLI; without it the CLI is looked for next to
$NEWSLETTERD (both are built into the same directory)."""
import json
import os
import subprocess
from collections import Counter

import pytest

import nlhelpers
from nlhelpers import assert_no_sanitizer_report, wait_until

NEWSLETTERCTL = os.environ.get("NEWSLETTERCTL") or os.path.join(
    os.path.dirname(nlhelpers.NEWSLETTERD or "."), "newsletterctl")

# Exit codes of newsletterctl (its --help).
OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3

# include/bounds.h: mails the scheduler hands each sender thread ahead.
JOBS_PER_SENDER = 8


class Result:
    def __init__(self, args, proc_or_rc, out=b"", err=b""):
        self.args = args
        if isinstance(proc_or_rc, int):
            self.rc = proc_or_rc
        else:
            self.rc = proc_or_rc.returncode
            out, err = proc_or_rc.stdout, proc_or_rc.stderr
        self.out_bytes = out or b""
        self.err_bytes = err or b""
        self.out = self.out_bytes.decode("utf-8", "replace")
        self.err = self.err_bytes.decode("utf-8", "replace")

    @property
    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            raise AssertionError("newsletterctl %s printed no JSON:\n%s\nstderr:\n%s"
                                 % (" ".join(self.args), self.out, self.err))

    def ok(self):
        assert self.rc == 0, "newsletterctl %s exited %s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.args), self.rc, self.out, self.err)
        return self

    def fails(self, rc):
        """Assert exit status rc and a failure reason on stderr."""
        assert self.rc == rc, "newsletterctl %s exited %s, expected %s\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.args), self.rc, rc, self.out, self.err)
        assert self.err.strip(), "no reason on stderr"
        return self

    def __repr__(self):
        return "Result(rc=%r, out=%r, err=%r)" % (self.rc, self.out[-500:], self.err[-500:])


def ctl_command(config_path, *args):
    return [NEWSLETTERCTL, "-c", config_path] + [str(a) for a in args]


def ctl_is_sanitized():
    """Whether newsletterctl is a sanitizer build (ASan reports leaks at exit)."""
    try:
        with open(NEWSLETTERCTL, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def ctl(daemon, *args, stdin=None, timeout=60, preexec_fn=None, config=None, leak_check=True,
        binary=None):
    """Run newsletterctl -c CONFIG ARGS...; a Result.  leak_check=False: an
    ASan build of the CLI does not look for leaks (for a known leak that has
    its own test).  binary: another copy of newsletterctl to run (one that
    another user may reach)."""
    cmd = ctl_command(config or daemon.config_path, *args)
    if binary:
        cmd[0] = binary
    env = None
    if not leak_check:
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""), "detect_leaks=0"]))
    p = subprocess.run(cmd, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=timeout * nlhelpers.SLOW, preexec_fn=preexec_fn,
                       env=env)
    r = Result(cmd[3:], p)
    assert_no_sanitizer_report(r.err)
    return r


def ctl_json(daemon, *args, **kw):
    return ctl(daemon, *args, **kw).ok().json


def ctl_start(daemon, *args):
    """Start newsletterctl in the background (stdout/stderr piped)."""
    return subprocess.Popen(ctl_command(daemon.config_path, *args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def ctl_finish(proc, args=(), timeout=60):
    out, err = proc.communicate(timeout=timeout * nlhelpers.SLOW)
    r = Result(list(args), proc.returncode, out, err)
    assert_no_sanitizer_report(r.err)
    return r


def need_ctl():
    if not os.access(NEWSLETTERCTL, os.X_OK):
        pytest.fail("newsletterctl not found at %s (set NEWSLETTERCTL)" % NEWSLETTERCTL)


# ---------------------------------------------------------------- files and data

def write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
        f.write(data)
    return path


def import_csv(daemon, path, *options):
    """import PATH OPTIONS --json; the counts it printed."""
    return ctl_json(daemon, "import", path, "--json", *options)


def confirmed_list(daemon, workdir, addresses, name="list.csv"):
    """Import (address, name) pairs or addresses as confirmed subscribers."""
    lines = ["email,name"]
    for a in addresses:
        if isinstance(a, tuple):
            lines.append('%s,"%s"' % (a[0], a[1].replace('"', '""')))
        else:
            lines.append(a)
    path = write(os.path.join(workdir, name), "\n".join(lines) + "\n")
    counts = import_csv(daemon, path)
    assert counts["added"] == len(set(a[0] if isinstance(a, tuple) else a for a in addresses)), counts
    return counts


def stats(daemon):
    return ctl_json(daemon, "stats", "--json")


def status(daemon, issue=None):
    args = ["status"] + ([str(issue)] if issue is not None else []) + ["--json"]
    return ctl_json(daemon, *args)


STATUS_BUCKETS = ("queued", "sent", "deferred", "failed", "skipped")


def assert_status_counts_outbox(daemon, issue):
    """`status` takes an issue's counts from counters the database keeps by
    trigger (sql/006): they must equal a count of the outbox rows, in every
    state the test left them (queued includes the mails with a sender)."""
    st = status(daemon, issue)
    counted = {b: 0 for b in STATUS_BUCKETS}
    for r in daemon.query("SELECT state, count(*) AS n FROM outbox WHERE issue_id = ?"
                          " GROUP BY state", (issue,)):
        counted["queued" if r["state"] == "sending" else r["state"]] += r["n"]
    assert {b: st[b] for b in STATUS_BUCKETS} == counted, (st, counted)
    assert st["total"] == sum(counted.values()), (st, counted)
    return st


def wait_status(daemon, issue, predicate, timeout=20, what="issue status"):
    def check():
        st = status(daemon, issue)
        return st if predicate(st) else None
    return wait_until(check, timeout=timeout, interval=0.1, what=what)


def subscription_states(daemon):
    """{email_key: state} of every subscription of the default list, a
    pending sign-up kept apart (sql/009) included."""
    return {r["email_key"]: r["state"] for r in daemon.query(
        "SELECT u.email_key, s.state FROM subscription s JOIN subscriber u"
        " ON u.id = s.subscriber_id WHERE s.list = 'default'"
        " UNION ALL SELECT DISTINCT g.email_key, s.state FROM subscription s"
        " JOIN signup g ON g.subscription_id = s.id WHERE s.list = 'default'")}


def recipients(mails):
    """Counter of the envelope recipients of a list of captured mails."""
    return Counter(r for m in mails for r in m.rcpt_tos)


class SilentRelay(nlhelpers.BlackHoleRelay):
    """nlhelpers.BlackHoleRelay whose port can be taken over by another
    server right after close(): its sockets are SO_REUSEADDR (the accepted
    ones inherit it), so connections still closing do not block the bind."""

    def __init__(self):
        super().__init__(reuse=True)


class SlowAckSMTP(nlhelpers.CaptureSMTP):
    """A capturing server that keeps the first `slow` mails but answers their
    end of DATA only after `delay` seconds: a client with a shorter timeout
    takes them for not delivered, and sends them again."""

    def __init__(self, delay, slow=1, **options):
        super().__init__(**options)
        self.delay = delay
        self.slow = slow

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        reply = await super().handle_DATA(server, session, envelope)
        with self.cond:
            late = self.slow > 0
            self.slow -= late
        if late:
            await asyncio.sleep(self.delay)
        return reply
