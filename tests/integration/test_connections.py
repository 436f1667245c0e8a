"""The socket front's limits (include/bounds.h) seen from a client: a
pipelining client that pauses reading keeps every answer to the lines it
completed, a client that reads nothing does not keep its slot, a large
request does not keep its memory once answered.

The timeout tests run the daemon with NEWSLETTERD_TEST_TIMEOUT_DIVISOR=5:
the line timeout is 2 s, the write timeout 12 s, the idle timeout 60 s."""
import threading
import time

import pytest

from nlhelpers import NEWSLETTERD, SLOW, WRAPPER, Client, check_answer, wait_until

PING = b'{"op":"ping"}\n'
# far more answers than the daemon holds for one client plus what the
# socket buffers take: the daemon must stop reading this client
PINGS = 40000
LINE_TIMEOUT = 2.0
WRITE_TIMEOUT = 12.0


@pytest.fixture
def fast_timeouts(monkeypatch):
    monkeypatch.setenv("NEWSLETTERD_TEST_TIMEOUT_DIVISOR", "5")


class Sender(threading.Thread):
    """Sends all of `data` on a client's socket; blocks while the daemon
    does not read."""

    def __init__(self, client, data):
        super().__init__(daemon=True)
        self.client = client
        self.data = data
        self.error = None

    def run(self):
        try:
            self.client.send_raw(self.data)
        except OSError as e:
            self.error = e


def test_complete_lines_are_answered_however_long_the_client_pauses(daemon_factory,
                                                                      fast_timeouts):
    d = daemon_factory()
    with d.client(timeout=60) as c:
        sender = Sender(c, PING * PINGS)
        sender.start()
        # not reading: the daemon stops reading too, with the end of a line
        # in its buffer; twice the line timeout passes
        time.sleep(2 * LINE_TIMEOUT)
        assert WRITE_TIMEOUT > 2 * LINE_TIMEOUT + 2
        for i in range(PINGS):
            check_answer(c.recv(), "ok")
        sender.join(30)
        assert not sender.is_alive() and sender.error is None, sender.error
        assert c.nothing_more()
    check_answer(d.request({"op": "ping"}), "ok")
    assert "not completed in time" not in d.stderr()


def test_a_line_left_unfinished_is_still_timed_out(daemon_factory, fast_timeouts):
    d = daemon_factory()
    with d.client(timeout=30) as c:
        c.send_raw(PING * 3 + b'{"op":"pi')
        for _ in range(3):
            check_answer(c.recv(), "ok")
        answer = c.recv(timeout=LINE_TIMEOUT * 10)
        check_answer(answer, "error", "invalid_request")
        assert "not completed" in answer.get("detail", ""), answer
        assert c.wait_closed(10)


def test_a_peer_that_reads_nothing_is_closed(daemon_factory, fast_timeouts):
    d = daemon_factory()
    c = d.client(timeout=60)
    try:
        sender = Sender(c, PING * PINGS)
        sender.start()
        wait_until(lambda: "answers not taken" in d.stderr(), timeout=WRITE_TIMEOUT * 4,
                   what="the daemon to close a client that reads nothing")
        # what it had already written is there, then the end
        assert c.wait_closed(30)
        sender.join(30)
        assert not sender.is_alive()
    finally:
        c.close()
    check_answer(d.request({"op": "ping"}), "ok")


def daemon_is_sanitized():
    with open(NEWSLETTERD, "rb") as f:
        return b"__asan_init" in f.read()


def rss_kib(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % d.proc.pid)


@pytest.mark.skipif(bool(WRAPPER), reason="RSS under valgrind is valgrind's")
def test_memory_is_given_back_after_a_large_admin_request(daemon):
    if daemon_is_sanitized():
        pytest.skip("ASan keeps freed memory in quarantine")
    before = rss_kib(daemon)
    # 12 MB of small JSON values: millions of small allocations while parsed
    line = b'{"op":"stats","junk":[' + b",".join([b"1"] * (6 << 20)) + b']}\n'
    with Client(daemon.admin_socket, timeout=60 * SLOW) as c:
        c.send_raw(line)
        check_answer(c.recv(), "error", "invalid_request")
        # the connection stays open: its read buffer must not keep the line
        check_answer(c.request({"op": "stats"}), "ok")
        # given back (malloc_trim after the answer): read for up to 10 s,
        # since twice on a loaded machine the RSS read right after the
        # answer was still 211 MB (cause not found; never on a quiet one)
        wait_until(lambda: rss_kib(daemon) < before + 16 * 1024, timeout=10,
                   what="RSS back within 16 MiB of %d KiB (now %d KiB)" % (before, rss_kib(daemon)))
    check_answer(daemon.request({"op": "ping"}), "ok")
