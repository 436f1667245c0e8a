"""Fixtures of the newsletterd integration suite.

$NEWSLETTERD names the daemon binary under test (a plain or a sanitizer
build); nothing else about the build is assumed.  Each test gets a short
directory under /tmp (Unix socket paths must stay under 108 bytes), a
capturing SMTP server on a free port and as many daemons as it asks for;
tests against a real MTA get a private Postfix instance (postfix_factory).
On teardown every daemon still running gets SIGTERM and must exit 0 within
10 s, and no daemon may have printed a sanitizer report.
"""
import os
import shutil
import tempfile

import pytest

import nlhelpers
from nlhelpers import CaptureSMTP, Daemon, Postfix, SmtpSink


def pytest_configure(config):
    path = nlhelpers.NEWSLETTERD
    if not path or not os.access(path, os.X_OK):
        raise pytest.UsageError("set NEWSLETTERD to the newsletterd binary to test (got %r)" % path)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture
def workdir(request):
    d = tempfile.mkdtemp(prefix="nl", dir="/tmp")
    yield d
    if not _failed(request):
        shutil.rmtree(d, ignore_errors=True)
    else:
        print("test directory kept: %s" % d)


@pytest.fixture
def smtp():
    server = CaptureSMTP().start()
    yield server
    server.stop()


@pytest.fixture
def sink_factory():
    """smtp_sink('-f', 'RCPT') -> a running smtp-sink with those options."""
    sinks = []

    def make(*options, port=None):
        s = SmtpSink(*options, port=port).start()
        sinks.append(s)
        return s

    yield make
    for s in sinks:
        s.stop()


@pytest.fixture
def postfix_factory(request):
    """make(**main_cf) -> a running private Postfix instance (nlhelpers.Postfix)
    with those main.cf parameters; stopped and removed at teardown.  Skips
    the test where Postfix cannot run (not installed, not root)."""
    why = Postfix.available()
    if why:
        pytest.skip(why)
    instances = []

    def make(services=(), **main_cf):
        pf = Postfix(services=services, **main_cf)
        instances.append(pf)
        return pf.start()

    yield make
    for pf in instances:
        if _failed(request):
            print("---- maillog of the Postfix instance (last 6000 chars) ----\n%s"
                  % pf.log()[-6000:])
        pf.destroy()


class DaemonPool:
    """The daemons of one test (or module); checked when they are done."""

    def __init__(self, directory, smtp_url):
        self.dir = directory
        self.smtp_url = smtp_url      # callable: the default relay URL
        self.daemons = []

    def make(self, overrides=None, smtp_url=None, start=True, name=None):
        if smtp_url is None:
            smtp_url = self.smtp_url()
        d = Daemon(self.dir, smtp_url, overrides,
                   name=name or "newsletterd%d" % len(self.daemons))
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def finish(self, show_logs):
        problems = []
        for d in self.daemons:
            try:
                if d.running:
                    rc = d.stop(timeout=10)
                    if rc != 0:
                        problems.append("%s exited %s after SIGTERM" % (d.name, rc))
            except AssertionError as e:
                problems.append("%s: %s" % (d.name, e))
            found = d.sanitizer_reports()
            if found:
                problems.append("%s: sanitizer report on stderr (%s)" % (d.name, ", ".join(found)))
        if problems or show_logs:
            for d in self.daemons:
                print("---- stderr of %s (last 6000 chars) ----\n%s" % (d.name, d.stderr()[-6000:]))
        assert not problems, "; ".join(problems)


@pytest.fixture
def daemon_factory(request, workdir):
    """make(overrides=None, smtp_url=None, start=True, name=...) -> Daemon.

    overrides: {section: {key: value}} over the default test config (a value
    of None drops the key).  Without smtp_url the daemon sends to the test's
    capturing SMTP server."""
    pool = DaemonPool(workdir, lambda: request.getfixturevalue("smtp").url)
    yield pool.make
    pool.finish(_failed(request))


@pytest.fixture
def daemon(daemon_factory):
    """A running daemon on the default test config, mailing to `smtp`."""
    return daemon_factory()


@pytest.fixture(scope="module")
def shared_daemon():
    """One daemon for a whole module, for tests that only send requests the
    daemon must refuse: its database stays empty, so they cannot disturb
    each other.  Has its own capturing SMTP server as `.smtp`."""
    directory = tempfile.mkdtemp(prefix="nl", dir="/tmp")
    server = CaptureSMTP().start()
    pool = DaemonPool(directory, lambda: server.url)
    d = pool.make(name="shared")
    d.smtp = server
    yield d
    try:
        pool.finish(False)
    finally:
        server.stop()
    shutil.rmtree(directory, ignore_errors=True)
