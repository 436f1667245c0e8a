"""A relay that cannot be reached (issue 17.4): the whole relay backs off,
one probe connection at a time, instead of every queued mail knocking on
its own; mails that found it gone are not charged an attempt, and once it
answers again every waiting mail goes out at once, not at its own retry
time."""

from test_deliverability import WAIT, import_confirmed, send_issue
from nlhelpers import CaptureSMTP, LoopbackListener, wait_until


class ClosingListener(LoopbackListener):
    """A port that takes each connection and closes it at once, without a
    greeting (a relay going down, or a firewall): counts the attempts."""

    def __init__(self):
        self.accepted = 0
        super().__init__(backlog=64, reuse=True)

    def on_accept(self, conn):
        with self.lock:
            self.accepted += 1
        conn.close()

    def count(self):
        with self.lock:
            return self.accepted


def test_unreachable_relay_is_probed_by_one_connection_then_everyone_goes(
        request, daemon_factory, workdir):
    down = ClosingListener()
    request.addfinalizer(down.close)
    # a mail's own retry would come after an hour: only the relay's probe
    # can bring these mails out within the test
    d = daemon_factory(smtp_url="smtp://127.0.0.1:%d" % down.port, overrides={
        "smtp": {"max_connections": "2", "retry_initial": "1h", "retry_max": "1h"}})
    readers = ["reader%02d@example.org" % i for i in range(30)]
    import_confirmed(d, workdir, readers)
    send_issue(d, workdir, "Ausgabe 1")

    # the first failures: at most the mails claimed ahead (max_connections x
    # 8) before the first outcome said the relay is gone; the rest wait unclaimed
    d.wait_outbox(lambda rows: len(rows) == 30 and any(r["state"] == "deferred" for r in rows) and
                  all(r["state"] in ("queued", "deferred") for r in rows),
                  timeout=WAIT, what="every mail waiting for the relay")
    first = down.count()
    assert 1 <= first <= 16, "%d connections at the start of the outage" % first
    assert "relay unreachable" in d.stderr()
    # then one probe after the relay's own delay, and nothing else knocks
    wait_until(lambda: down.count() > first, timeout=WAIT, what="the probe")
    wait_until(lambda: d.stderr().count("relay unreachable") >= 2, timeout=WAIT,
               what="the probe's failure")
    assert down.count() == first + 1
    # nobody was charged an attempt for a relay that was not there
    assert all(r["attempts"] == 0 for r in d.outbox()), d.outbox()

    # the relay comes back on the same port: the next probe gets through,
    # and every mail follows it without waiting for its own retry time
    down.close()
    up = CaptureSMTP(port=down.port).start()
    request.addfinalizer(up.stop)
    mails = up.wait_for(30, timeout=WAIT)
    assert sorted(m.rcpt_tos[0] for m in mails) == readers
    rows = d.settle(timeout=WAIT)
    assert all(r["state"] == "sent" and r["attempts"] == 1 for r in rows), rows
    assert "relay answers again" in d.stderr()
