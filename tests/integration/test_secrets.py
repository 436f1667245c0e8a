"""Secrets stay secret: at the default log level the log carries no token
and no address, even when a relay's refusal names the recipient; a
database others may read is refused."""
import base64
import hashlib
import os
import re
import stat

from nlhelpers import check_answer


def test_default_log_has_no_address_or_token(daemon_factory, sink_factory):
    # (the password: test_delivery's AUTH tests check it never reaches the log)
    address = "secret.person@example.org"
    sink = sink_factory("-f", "RCPT", "-B", "550 5.1.1 <%s>: no such user here" % address)
    d = daemon_factory(smtp_url=sink.url, overrides={
        "daemon": {"log_level": None},          # the default: info
    })
    check_answer(d.subscribe(address), "pending")
    d.wait_outbox(lambda rows: rows and rows[0]["state"] == "failed", what="the refusal")
    row = d.outbox()[0]
    # the reply is kept in the database, where the admin looks for it ...
    assert address in row["reply"]
    log = d.stderr()
    # ... but the log only says what happened
    assert "mail 1: failed, SMTP code 550" in log
    assert address not in log and address.split("@")[0] not in log
    # nothing in the log is one of the tokens the database knows the hash of
    hashes = {bytes(r["hash"]) for r in d.query("SELECT hash FROM token")}
    assert hashes
    for word in re.findall(r"[A-Za-z0-9_-]{43}", log):
        raw = base64.urlsafe_b64decode(word + "=")
        assert hashlib.sha256(raw).digest() not in hashes


def test_database_readable_by_others_is_refused(daemon_factory):
    d = daemon_factory()
    assert d.stop() == 0
    os.chmod(d.database, 0o644)
    proc = d.spawn()
    assert proc.wait(15) != 0
    assert "accessible to group or others" in d.stderr()
    os.chmod(d.database, 0o600)
    d.start()
    assert stat.S_IMODE(os.stat(d.database).st_mode) == 0o600
