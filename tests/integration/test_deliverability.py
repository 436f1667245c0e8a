"""Deliverability (issue 8): DKIM signatures on every kind of outgoing mail,
checked with dkimpy against the records `newsletterctl dkim-keygen`
printed; the key files; the VERP envelope sender; bounces and complaints
piped into `newsletterctl bounce`."""
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import time

import pytest

from dkimhelpers import (Keys, check_signed, check_tampering_breaks, ctl, keygen, record_tags,
                         signatures, verify)
from nlhelpers import Client, check_answer, check_config, db_dump, wait_until

RETURN_PATH = "bounces+{id}@example.org"
# {id} is the mail id and its tag (an HMAC under the daemon's key)
VERP_RE = re.compile(r"bounces\+([0-9]+)-([0-9a-f]{16})@example\.org")
FROM_DE = "Bürgerinitiative Süd <newsletter@example.org>"
WAIT = 30.0     # seconds for mails to arrive; generous for runs under valgrind
# the counts of messages `newsletterctl bounce` consumed without acting on them
NOTHING_IGNORED = {"autoreplies": 0, "not_understood": 0}
# the counts per class of the reports kept (bounce_report) that are neither
# permanent nor temporary: none of them by default
CLASSES = {"sender": 0, "complaint": 0, "none": 0}


# ---------------------------------------------------------------- helpers

def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def import_confirmed(d, directory, addresses, list_name=None):
    path = write(directory, "import-%d.csv" % time.monotonic_ns(),
                 "email,name\n" + "".join("%s,Leser %d\n" % (a, i) for i, a in enumerate(addresses)))
    args = ["import", path] + (["--list", list_name] if list_name else [])
    r = ctl(d.config_path, *args)
    assert r.rc == 0, r


def send_issue(d, directory, subject, text="Hallo {{name}},\n\nneue Nachrichten.\n", html=None,
               test=None):
    """`newsletterctl send`; the issue id it printed."""
    args = ["send", "--subject", subject,
            "--text", write(directory, "text-%d.txt" % time.monotonic_ns(), text)]
    if html is not None:
        args += ["--html", write(directory, "html-%d.html" % time.monotonic_ns(), html)]
    if test is not None:
        args += ["--test", test]
    r = ctl(d.config_path, *args)
    assert r.rc == 0, r
    first = r.out.splitlines()[0]
    assert re.fullmatch(r"[0-9]+", first), r
    return int(first)


def admin(d, obj):
    """One request on the admin socket (the daemon's own answer, whatever
    newsletterctl makes of it)."""
    with Client(d.admin_socket) as c:
        answer = c.request(obj)
    assert answer.get("state") == "ok", answer
    return answer


def subscription_states(d):
    """{(email, list): state} of every subscription, a pending sign-up kept
    apart (sql/009) included."""
    return {(r["email"], r["list"]): r["state"] for r in d.query(
        "SELECT u.email, s.list, s.state FROM subscription s"
        " JOIN subscriber u ON u.id = s.subscriber_id"
        " UNION ALL SELECT DISTINCT g.email, s.list, s.state FROM subscription s"
        " JOIN signup g ON g.subscription_id = s.id")}


def verp_id(mail):
    m = VERP_RE.fullmatch(mail.mail_from)
    assert m, "envelope sender %r is no VERP address" % mail.mail_from
    return int(m.group(1))


def bounce(d, report):
    """Pipe REPORT (str or bytes) into `newsletterctl bounce`."""
    if isinstance(report, str):
        report = report.encode("utf-8")
    return ctl(d.config_path, "bounce", stdin=report)


def dsn(delivered_to, final_recipient, status="5.1.1", action="failed",
        diagnostic="smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        original_headers=None):
    """An RFC 3464 delivery status notification as Postfix would pipe it to
    the address DELIVERED_TO (LF line ends, as a pipe transport delivers)."""
    diagnostic = diagnostic.format(rcpt=final_recipient)
    extra = "Will-Retry-Until: Fri, 20 Dec 2030 10:00:00 +0000\n" if action == "delayed" else ""
    headers_part = ""
    if original_headers is not None:
        headers_part = ("--b0undary.42\n"
                        "Content-Description: Undelivered Message Headers\n"
                        "Content-Type: text/rfc822-headers\n\n" + original_headers + "\n")
    return ("Return-Path: <>\n"
            "X-Original-To: {to}\n"
            "Delivered-To: {to}\n"
            "Received: by mx.example.org (Postfix) id 4QxYz1; Mon, 16 Dec 2030 10:00:01 +0000\n"
            "Date: Mon, 16 Dec 2030 10:00:01 +0000\n"
            "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n"
            "Subject: {subject}\n"
            "To: {to}\n"
            "Auto-Submitted: auto-replied\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=delivery-status;\n"
            "\tboundary=\"b0undary.42\"\n"
            "Message-Id: <20301216100001.4QxYz1@mx.example.org>\n"
            "\n"
            "This is a MIME-encapsulated message.\n"
            "\n"
            "--b0undary.42\n"
            "Content-Description: Notification\n"
            "Content-Type: text/plain; charset=us-ascii\n"
            "\n"
            "This is the mail system at host mx.example.org.\n"
            "\n"
            "<{rcpt}>: {diag}\n"
            "\n"
            "--b0undary.42\n"
            "Content-Description: Delivery report\n"
            "Content-Type: message/delivery-status\n"
            "\n"
            "Reporting-MTA: dns; mx.example.org\n"
            "X-Postfix-Queue-ID: 4QxYz1\n"
            "Arrival-Date: Mon, 16 Dec 2030 09:59:58 +0000\n"
            "\n"
            "Final-Recipient: rfc822; {rcpt}\n"
            "Original-Recipient: rfc822;{rcpt}\n"
            "Action: {action}\n"
            "Status: {status}\n"
            "Remote-MTA: dns; in.example.net\n"
            "Diagnostic-Code: {diag}\n"
            "{extra}"
            "\n"
            "{headers_part}"
            "--b0undary.42--\n").format(
                to=delivered_to, rcpt=final_recipient, action=action, status=status,
                diag=diagnostic, extra=extra, headers_part=headers_part,
                subject="Delayed Mail (still being retried)" if action == "delayed"
                else "Undelivered Mail Returned to Sender")


def arf(original, delivered_to="abuse@example.org"):
    """An RFC 5965 abuse report with ORIGINAL (bytes, the whole mail) attached."""
    original = original.replace(b"\r\n", b"\n").decode("utf-8")
    return ("Return-Path: <fbl@feedback.example.net>\n"
            "X-Original-To: {to}\n"
            "Delivered-To: {to}\n"
            "From: Feedback Loop <fbl@feedback.example.net>\n"
            "To: {to}\n"
            "Subject: Complaint about a message from 192.0.2.25\n"
            "Date: Mon, 16 Dec 2030 10:41:12 +0000\n"
            "Message-ID: <fbl-20301216-0001@feedback.example.net>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=feedback-report;\n"
            "\tboundary=\"fbl_part_77\"\n"
            "\n"
            "--fbl_part_77\n"
            "Content-Type: text/plain; charset=\"US-ASCII\"\n"
            "\n"
            "A user of ours marked the attached message as spam.\n"
            "\n"
            "--fbl_part_77\n"
            "Content-Type: message/feedback-report\n"
            "\n"
            "Feedback-Type: abuse\n"
            "User-Agent: ExampleFBL/3.0\n"
            "Version: 1\n"
            "Source-IP: 192.0.2.25\n"
            "Arrival-Date: Mon, 16 Dec 2030 10:30:00 +0000\n"
            "Reported-Domain: example.org\n"
            "\n"
            "--fbl_part_77\n"
            "Content-Type: message/rfc822\n"
            "Content-Disposition: inline\n"
            "\n"
            "{original}\n"
            "--fbl_part_77--\n").format(to=delivered_to, original=original)


def with_return_path(mail):
    """The mail as the receiving MTA stored it: Return-Path on top."""
    return b"Return-Path: <" + mail.mail_from.encode() + b">\r\n" + mail.data


READERS = ("ada@example.org", "bert@example.net", "cleo@example.com")


def newsletter_to_readers(daemon_factory, smtp, workdir, bounce_conf=None, readers=READERS,
                          with_verp=True):
    """A daemon with VERP (or without, with_verp=False) whose first issue went
    to READERS; (daemon, issue, {reader: the VERP id of their mail}, {reader:
    their mail})."""
    conf = {"return_path": RETURN_PATH} if with_verp else {}
    conf.update(bounce_conf or {})
    d = daemon_factory({"bounce": conf} if conf else {})
    import_confirmed(d, workdir, readers)
    issue = send_issue(d, workdir, "Ausgabe 1")
    mails = smtp.wait_for(len(readers), timeout=WAIT)
    d.settle(timeout=WAIT)
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted(readers)
    ids = {m.rcpt_tos[0]: verp_id(m) for m in mails} if with_verp else {}
    return d, issue, ids, {m.rcpt_tos[0]: m for m in mails}


def key_file(d):
    return d.database + ".key"


def daemon_keys(d):
    """The keys in the daemon's key file, current one first."""
    with open(key_file(d), encoding="ascii") as f:
        return [bytes.fromhex(line.strip()) for line in f
                if line.strip() and not line.startswith("#")]


def verp_tag(key, mail_id):
    """The tag of a mail id, computed here with Python's hmac (not the daemon's code)."""
    sub = hmac.new(key, b"verp", hashlib.sha256).digest()
    return hmac.new(sub, str(mail_id).encode(), hashlib.sha256).hexdigest()[:16]


def verp(d, mail_id, key=None):
    """The VERP address of a mail, with a valid tag under the daemon's current key."""
    key = key or daemon_keys(d)[0]
    return RETURN_PATH.replace("{id}", "%d-%s" % (mail_id, verp_tag(key, mail_id)))


def next_issue(d, smtp, workdir, subject):
    """Send one more issue; {reader: the VERP id of their mail of it}."""
    before = len(smtp.mails)
    send_issue(d, workdir, subject)
    n = len(d.query("SELECT id FROM subscription WHERE state = 'confirmed'"))
    mails = smtp.wait_for(before + n, timeout=WAIT)[before:]
    d.settle(timeout=WAIT)
    return {m.rcpt_tos[0]: verp_id(m) for m in mails}


def delayed_dsn(d, mail_id, rcpt="ada@example.org"):
    return dsn(verp(d, mail_id), rcpt, status="4.4.1", action="delayed",
               diagnostic="smtp; 421 4.4.1 try later")


# ---------------------------------------------------------------- DKIM signatures

@pytest.fixture
def keys(workdir):
    return Keys(workdir)


def test_confirmation_mail_is_signed_with_both_keys(daemon_factory, smtp, keys):
    d = daemon_factory({"smtp": {"from": FROM_DE}, "dkim": keys.config})
    check_answer(d.subscribe("anwohnerin@example.org", name="Jördis Öztürk", lang="de"), "pending")
    (mail,) = smtp.wait_for(1, timeout=WAIT)
    msg = mail.msg
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Bürgerinitiative Süd", "newsletter@example.org")
    assert re.search(rb"(?mi)^From:.*=\?utf-8\?", mail.data), "the display name is not RFC 2047 encoded"
    check_signed(mail.data, keys)
    check_tampering_breaks(mail.data, keys)


def test_newsletter_with_non_ascii_subject_and_long_html_is_signed(daemon_factory, smtp, workdir,
                                                                    keys):
    d = daemon_factory({"smtp": {"from": FROM_DE}, "dkim": keys.config})
    import_confirmed(d, workdir, ["leserin@example.org"])
    subject = "Grüße aus Süd – Straßenfest, Bürgersprechstunde & Ärger über Lärm 🎉 Ausgabe Nr. 7"
    # long lines of multi-byte text, well over 100 KB in all
    line = "<p>" + "Über die Änderung der Straßenführung berichten wir ausführlich. " * 120 + "</p>"
    html = ("<!DOCTYPE html><html><body><h1>Grüße, {{name}}</h1>\n"
            + "\n".join(line for _ in range(20))
            + "\n<p><a href=\"{{unsubscribe_url}}\">Abbestellen</a></p></body></html>\n")
    assert len(html.encode()) > 100 * 1024 and max(len(l) for l in html.splitlines()) > 5000
    send_issue(d, workdir, subject, html=html)
    (mail,) = smtp.wait_for(1, timeout=WAIT)
    msg = mail.msg
    assert str(msg["Subject"]) == subject
    assert len(mail.data) > 100 * 1024
    body = msg.get_body(preferencelist=("html",)).get_content()
    assert body.count("Straßenführung") == 20 * 120
    for name in ("List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"):
        assert len(msg.get_all(name) or []) == 1, name
    check_signed(mail.data, keys)
    check_tampering_breaks(mail.data, keys)


def test_test_send_is_signed(daemon_factory, smtp, workdir, keys):
    d = daemon_factory({"smtp": {"from": FROM_DE}, "dkim": keys.config})
    send_issue(d, workdir, "Probe: Übersicht für März", text="Nur ein Test, {{name}}.\n",
               html="<p>Nur ein <b>Test</b>.</p>\n", test="redaktion@example.net")
    (mail,) = smtp.wait_for(1, timeout=WAIT)
    assert mail.rcpt_tos == ["redaktion@example.net"]
    assert str(mail.msg["Subject"]) == "Probe: Übersicht für März"
    check_signed(mail.data, keys)
    check_tampering_breaks(mail.data, keys)


def test_signatures_only_verify_with_the_right_record(daemon_factory, smtp, workdir, keys):
    """The checker itself: published records of other keys make both fail."""
    d = daemon_factory({"dkim": keys.config})
    check_answer(d.subscribe("gegenprobe@example.org"), "pending")
    (mail,) = smtp.wait_for(1, timeout=WAIT)
    check_signed(mail.data, keys)
    elsewhere = os.path.join(workdir, "other")
    os.mkdir(elsewhere)
    other = Keys(elsewhere)
    for idx in range(2):
        assert not verify(mail.data, other, idx)


def reloads_done(d):
    text = d.stderr()
    return text.count("reloaded") + text.count("reload failed")


def reload(d):
    n = reloads_done(d)
    d.signal(signal.SIGHUP)
    wait_until(lambda: reloads_done(d) > n, timeout=WAIT, what="the reload to finish")
    return d.stderr()


def test_reload_takes_new_keys_and_keeps_the_old_ones_on_a_bad_key(daemon_factory, smtp, workdir,
                                                                    keys):
    only_rsa = {"domain": "example.org", "selector": "rsa2048", "key_file": keys.rsa_path}
    d = daemon_factory({"dkim": only_rsa})
    check_answer(d.subscribe("vorher@example.org"), "pending")
    (mail,) = smtp.wait_for(1, timeout=WAIT)
    assert [s["a"] for s in signatures(mail.data)] == ["rsa-sha256"]
    assert verify(mail.data, keys, 0)

    d.configure({"dkim": keys.config})
    assert "reload failed" not in reload(d)
    check_answer(d.subscribe("nachher@example.org"), "pending")
    (mail,) = smtp.wait_for_rcpt("nachher@example.org", timeout=WAIT)
    check_signed(mail.data, keys)

    # a key others may read is refused on reload too; signing goes on with the keys in use
    os.chmod(keys.ed_path, 0o644)
    assert "reload failed" in reload(d)
    assert d.running
    check_answer(d.subscribe("danach@example.org"), "pending")
    (mail,) = smtp.wait_for_rcpt("danach@example.org", timeout=WAIT)
    check_signed(mail.data, keys)


# ---------------------------------------------------------------- key files

def test_dkim_keygen_writes_0600_and_never_overwrites(workdir):
    for ed25519 in (False, True):
        selector = "ed" if ed25519 else "rsa"
        # a permissive umask must not loosen the mode
        path, name, txt = keygen(workdir, selector, ed25519=ed25519, umask=0)
        assert os.stat(path).st_mode & 0o7777 == 0o600
        tags = record_tags(txt)
        assert tags.get("v") == "DKIM1" and tags.get("k") == ("ed25519" if ed25519 else "rsa"), txt
        # the record is the public half of the key in the file
        der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                             capture_output=True, check=True).stdout
        published = base64.b64decode(tags["p"])
        assert published == (der[-32:] if ed25519 else der), "the record does not match the key"
        if not ed25519:
            text = subprocess.run(["openssl", "pkey", "-in", path, "-noout", "-text"],
                                  capture_output=True, check=True).stdout.decode()
            assert "2048 bit" in text, text[:200]

        # a second run on the same file is refused and leaves it alone
        with open(path, "rb") as f:
            before = f.read()
        r = ctl(None, "dkim-keygen", "--selector", selector, "--domain", "example.org",
                "--key", path, *(["--ed25519"] if ed25519 else []))
        assert r.rc == 1, r
        assert "_domainkey" not in r.out, r
        with open(path, "rb") as f:
            assert f.read() == before
        assert os.stat(path).st_mode & 0o7777 == 0o600

    # also a file of someone else's, and a dangling symlink (nothing created at its target)
    other = write(workdir, "notes.txt", "keep me\n")
    os.chmod(other, 0o644)
    r = ctl(None, "dkim-keygen", "--selector", "x", "--domain", "example.org", "--key", other)
    assert r.rc == 1, r
    with open(other) as f:
        assert f.read() == "keep me\n"
    link = os.path.join(workdir, "link.key")
    target = os.path.join(workdir, "target.key")
    os.symlink(target, link)
    r = ctl(None, "dkim-keygen", "--selector", "x", "--domain", "example.org", "--key", link)
    assert r.rc == 1, r
    assert not os.path.exists(target)


def make_bad_key(workdir, kind):
    if kind in ("mode 0644", "mode 0640"):
        path, _, _ = keygen(workdir, "loose")
        os.chmod(path, 0o644 if kind == "mode 0644" else 0o640)
        return path
    path = os.path.join(workdir, kind.replace(" ", "-") + ".key")
    if kind == "EC P-256":
        cmd = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    else:
        cmd = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]
    old = os.umask(0o077)
    try:
        subprocess.run(cmd + ["-out", path], check=True, capture_output=True)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize("kind", ["mode 0644", "mode 0640", "EC P-256", "RSA 1024"])
def test_bad_key_is_a_config_error(daemon_factory, workdir, keys, kind):
    bad = make_bad_key(workdir, kind)
    # the good configuration passes: the refusal below is about the key alone
    good = daemon_factory({"dkim": keys.config}, start=False, name="good")
    rc, out, err = check_config(good.config_path)
    assert rc == 0, out + err

    conf = dict(keys.config, key_file="%s, %s" % (keys.rsa_path, bad))
    d = daemon_factory({"dkim": conf}, start=False, name="bad")
    rc, out, err = check_config(d.config_path)
    assert rc == 1, out + err
    assert bad in err, "the message does not name the key file:\n" + err

    proc = d.spawn()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the daemon started with a %s key" % kind)
    assert proc.returncode != 0
    assert bad in d.stderr(), d.stderr()


# ---------------------------------------------------------------- VERP

def test_every_mail_has_its_own_verp_envelope_sender(daemon_factory, smtp, workdir):
    d = daemon_factory({"bounce": {"return_path": RETURN_PATH}})
    for a in ("neu1@example.org", "neu2@example.org"):
        check_answer(d.subscribe(a), "pending")
    import_confirmed(d, workdir, ["alt1@example.org", "alt2@example.net"])
    send_issue(d, workdir, "Ausgabe 1")
    send_issue(d, workdir, "Ausgabe 1 (Probe)", test="probe@example.com")
    mails = smtp.wait_for(5, timeout=WAIT)
    rows = d.settle(timeout=WAIT)
    assert len(mails) == 5 and len(rows) == 5

    ids = [verp_id(m) for m in mails]
    assert len(set(ids)) == 5, ids
    # each id is the outbox row of exactly that mail
    rcpt_of_row = {r["id"]: r["rcpt"] for r in d.query(
        "SELECT o.id, COALESCE(o.rcpt, u.email, (SELECT g.email FROM signup g"
        " WHERE g.subscription_id = o.subscription_id)) AS rcpt FROM outbox o"
        " LEFT JOIN subscription s ON s.id = o.subscription_id"
        " LEFT JOIN subscriber u ON u.id = s.subscriber_id")}
    assert set(ids) == set(rcpt_of_row)
    for m in mails:
        assert m.rcpt_tos == [rcpt_of_row[verp_id(m)]], (m, rcpt_of_row)
        assert m.msg["From"].addresses[0].addr_spec == "newsletter@example.org"
        # its tag is the HMAC of its id under the key in the key file
        assert m.mail_from == verp(d, verp_id(m)), m.mail_from


# ---------------------------------------------------------------- bounces

def test_permanent_dsn_suppresses_exactly_its_subscriber(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir)
    # bert is also signed up, still pending, on the second list
    check_answer(d.subscribe("bert@example.net", list="events"), "pending")
    smtp.wait_for(4, timeout=WAIT)
    d.settle(timeout=WAIT)
    before = subscription_states(d)
    assert before[("bert@example.net", "events")] == "pending"

    r = bounce(d, dsn(verp(d, ids["bert@example.net"]), "bert@example.net"))
    assert r.rc == 0, r

    after = subscription_states(d)
    expected = dict(before)
    expected[("bert@example.net", "default")] = "bounced"
    expected[("bert@example.net", "events")] = "bounced"
    assert after == expected

    rows = [dict(x) for x in d.query("SELECT * FROM bounce")]
    assert len(rows) == 1, rows
    assert (rows[0]["kind"], rows[0]["status"], rows[0]["outbox_id"], rows[0]["issue_id"]) == \
        ("permanent", "5.1.1", ids["bert@example.net"], issue)

    stats = admin(d, {"op": "stats"})
    assert stats["subscribers"]["bounced"] == 2          # both of bert's subscriptions
    assert stats["subscribers"]["confirmed"] == 2
    assert stats["bounces"] == {"permanent": 1, "temporary": 0, "complaints": 0, "refused": 0,
        **NOTHING_IGNORED, **CLASSES}
    status = admin(d, {"op": "status", "issue": issue})
    assert (status["bounced"], status["complaints"]) == (1, 0)

    # the next issue skips bert
    seen = smtp.count()
    second = send_issue(d, workdir, "Ausgabe 2")
    smtp.wait_for(seen + 2, timeout=WAIT)
    d.settle(timeout=WAIT)
    new = smtp.snapshot()[seen:]
    assert sorted(m.rcpt_tos[0] for m in new) == ["ada@example.org", "cleo@example.com"]
    assert admin(d, {"op": "status", "issue": second})["total"] == 2


def test_temporary_dsns_count_and_suppress_at_the_limit(daemon_factory, smtp, workdir):
    # temporary failures count per mail: N mails delayed within the window
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir,
                                             bounce_conf={"temporary_limit": "2",
                                                          "temporary_window": "30d"})
    delayed = dsn(verp(d, ids["ada@example.org"]), "ada@example.org", status="4.4.1", action="delayed",
                  diagnostic="X-Postfix; connect to in.example.org[192.0.2.9]:25: Connection timed out")
    r = bounce(d, delayed)
    assert r.rc == 0, r
    assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"
    assert admin(d, {"op": "stats"})["bounces"] == {"permanent": 0, "temporary": 1, "complaints": 0,
                                                    "refused": 0, **NOTHING_IGNORED, **CLASSES}
    # the same notice about the same mail again (an MTA retrying its pipe) adds nothing
    assert bounce(d, delayed).rc == 0
    assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"
    assert admin(d, {"op": "stats"})["bounces"]["temporary"] == 1
    # a delay of somebody else's does not add to ada's count
    r = bounce(d, dsn(verp(d, ids["cleo@example.com"]), "cleo@example.com", status="4.2.2",
                      action="delayed", diagnostic="smtp; 452 4.2.2 Mailbox full"))
    assert r.rc == 0, r
    assert subscription_states(d)[("cleo@example.com", "default")] == "confirmed"
    assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"

    second = next_issue(d, smtp, workdir, "Ausgabe 2")
    r = bounce(d, delayed_dsn(d, second["ada@example.org"]))
    assert r.rc == 0, r
    states = subscription_states(d)
    assert states[("ada@example.org", "default")] == "bounced"
    assert states[("bert@example.net", "default")] == "confirmed"
    assert states[("cleo@example.com", "default")] == "confirmed"
    stats = admin(d, {"op": "stats"})
    assert stats["bounces"] == {"permanent": 0, "temporary": 3, "complaints": 0, "refused": 0,
        **NOTHING_IGNORED, **CLASSES}
    assert stats["subscribers"]["bounced"] == 1


def test_temporary_dsns_outside_the_window_do_not_count(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, readers=READERS[:1],
                                             bounce_conf={"temporary_limit": "2",
                                                          "temporary_window": "2s"})
    second = next_issue(d, smtp, workdir, "Ausgabe 2")
    third = next_issue(d, smtp, workdir, "Ausgabe 3")
    assert bounce(d, delayed_dsn(d, ids["ada@example.org"])).rc == 0
    time.sleep(3.2)         # the first one is now older than the window, whole seconds counted
    assert bounce(d, delayed_dsn(d, second["ada@example.org"])).rc == 0
    assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"
    assert bounce(d, delayed_dsn(d, third["ada@example.org"])).rc == 0
    assert subscription_states(d)[("ada@example.org", "default")] == "bounced"


def test_one_temporary_dsn_does_not_suppress_with_the_default_limit(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, readers=READERS[:1])
    mail_ids = [ids["ada@example.org"]]
    for n in range(2, 6):
        mail_ids.append(next_issue(d, smtp, workdir, "Ausgabe %d" % n)["ada@example.org"])
    for mail_id in mail_ids[:4]:
        r = bounce(d, delayed_dsn(d, mail_id))
        assert r.rc == 0, r
        assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"
    r = bounce(d, delayed_dsn(d, mail_ids[4]))
    assert r.rc == 0, r
    assert subscription_states(d)[("ada@example.org", "default")] == "bounced"


def test_arf_complaint_unsubscribes_everywhere(daemon_factory, smtp, workdir):
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    import_confirmed(d, workdir, ["cleo@example.com"], list_name="events")
    report = arf(with_return_path(mails["cleo@example.com"]))
    assert "Return-Path: <%s>" % verp(d, ids["cleo@example.com"]) in report
    r = bounce(d, report)
    assert r.rc == 0, r

    states = subscription_states(d)
    assert states[("cleo@example.com", "default")] == "unsubscribed"
    assert states[("cleo@example.com", "events")] == "unsubscribed"
    assert states[("ada@example.org", "default")] == "confirmed"
    assert states[("bert@example.net", "default")] == "confirmed"

    status = admin(d, {"op": "status", "issue": issue})
    assert (status["bounced"], status["complaints"]) == (0, 1)
    stats = admin(d, {"op": "stats"})
    assert stats["bounces"] == {"permanent": 0, "temporary": 0, "complaints": 1, "refused": 0,
        **NOTHING_IGNORED, **CLASSES, "complaint": 1}
    assert stats["subscribers"]["unsubscribed"] == 2

    r = ctl(d.config_path, "export", "cleo@example.com")
    assert r.rc == 0, r
    export = json.loads(r.out)
    complaints = [c for c in export["consent"] if c["event"] == "unsubscribe"]
    assert sorted(c["list"] for c in complaints) == ["default", "events"], export["consent"]
    assert all(c["source"] == "complaint" for c in complaints), complaints

    # the next issue does not go to cleo
    seen = smtp.count()
    send_issue(d, workdir, "Ausgabe 2")
    smtp.wait_for(seen + 2, timeout=WAIT)
    d.settle(timeout=WAIT)
    assert sorted(m.rcpt_tos[0] for m in smtp.snapshot()[seen:]) == \
        ["ada@example.org", "bert@example.net"]


def ordinary_mail(to):
    return ("From: Ada Lovelace <ada@example.org>\n"
            "To: {to}\n"
            "Subject: Re: Ausgabe 1\n"
            "Date: Mon, 16 Dec 2030 11:00:00 +0100\n"
            "Message-ID: <reply-1@example.org>\n"
            "In-Reply-To: <x@example.org>\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "\n"
            "Danke für die Ausgabe! Der Link auf Seite 2 hat bei mir nicht\n"
            "funktioniert, die Zustellung der Einladung ist fehlgeschlagen.\n").format(to=to)


def auto_reply(to):
    return ("Return-Path: <>\n"
            "X-Original-To: {to}\n"
            "Delivered-To: {to}\n"
            "From: Ada Lovelace <ada@example.org>\n"
            "To: {to}\n"
            "Subject: Abwesenheitsnotiz: Ausgabe 1\n"
            "Auto-Submitted: auto-replied\n"
            "X-Autoreply: yes\n"
            "Date: Mon, 16 Dec 2030 11:00:00 +0100\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "\n"
            "Ich bin bis 6.1. nicht im Büro, Ihre Nachricht wird nicht\n"
            "weitergeleitet. In dringenden Fällen: Zimmer 550, 5.1.1 im Plan.\n").format(to=to)


def spam(to):
    return ("Return-Path: <winner@lottery.example>\n"
            "Delivered-To: {to}\n"
            "From: Lottery <winner@lottery.example>\n"
            "To: {to}\n"
            "Subject: You have won!!!\n"
            "Date: Mon, 16 Dec 2030 11:00:00 +0100\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "\n"
            "Claim your prize: reply with your bank details. Delivery failed? Call\n"
            "550 5.1.1 at once.\n").format(to=to)


def ignored(d):
    b = admin(d, {"op": "stats"})["bounces"]
    return b["autoreplies"], b["not_understood"]


def dump_but_ignored(d):
    """db_dump without the counts of ignored messages: what ignoring one must not change."""
    dump = db_dump(d.database)
    dump.pop("bounce_ignored", None)
    return dump


# Issue 17: what `newsletterctl bounce` does not act on it consumes all the
# same (exit 0): a pipe that exits non-zero makes Postfix return the message
# to its sender, who for spam and auto-replies is likely forged (backscatter).
@pytest.mark.parametrize("kind,counted", [
    ("ordinary mail", (0, 1)),
    ("spam", (0, 1)),
    ("auto-reply", (1, 0)),
    ("out-of-office with Precedence: auto_reply only", (1, 0)),
    ("delivery success DSN", (0, 1)),
])
def test_non_bounce_is_consumed_and_changes_nothing(daemon_factory, smtp, workdir, kind, counted):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir)
    to = verp(d, ids["ada@example.org"])
    message = {
        "ordinary mail": lambda: ordinary_mail(to),
        "spam": lambda: spam(to),
        "auto-reply": lambda: auto_reply(to),
        "out-of-office with Precedence: auto_reply only": lambda: auto_reply(to)
            .replace("Auto-Submitted: auto-replied\n", "Precedence: auto_reply\n")
            .replace("X-Autoreply: yes\n", "").replace("Abwesenheitsnotiz: ", ""),
        "delivery success DSN": lambda: dsn(to, "ada@example.org", status="2.0.0",
                                            action="delivered",
                                            diagnostic="smtp; 250 2.0.0 Ok: queued as 4QxYz9"),
    }[kind]()
    before = dump_but_ignored(d)
    r = bounce(d, message)
    assert r.rc == 0, r
    assert "ignored" in r.out, r
    assert dump_but_ignored(d) == before
    assert ignored(d) == counted
    assert "message ignored: %s" % ("autoreply" if counted[0] else "not understood") in d.stderr()
    r = ctl(d.config_path, "stats")
    assert r.rc == 0, r
    assert "ignored: %d auto-replies, %d not understood" % counted in r.out, r


def test_message_larger_than_the_limit_is_consumed(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir)
    before = dump_but_ignored(d)
    huge = dsn(verp(d, ids["ada@example.org"]), "ada@example.org") + "x" * 100 + "\n"
    huge += ("y" * 1023 + "\n") * (10 * 1024 + 10)       # past 10 MiB
    r = bounce(d, huge)
    assert r.rc == 0, r
    assert dump_but_ignored(d) == before
    assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"
    assert ignored(d) == (0, 1)
    assert "too large" in d.stderr()


def dump_but_refusals(d):
    """db_dump without the count of refused reports: what a refusal must not change."""
    dump = db_dump(d.database)
    dump.pop("bounce_refused", None)
    return dump


def refused(d):
    return admin(d, {"op": "stats"})["bounces"]["refused"]


def check_refused(d, report, before, count):
    """REPORT is consumed (exit 0: an MTA must not return it), changes
    nothing, and is the COUNTth refused report."""
    r = bounce(d, report)
    assert r.rc == 0, r
    assert "refused" in r.out, r
    assert dump_but_refusals(d) == before
    assert refused(d) == count


@pytest.mark.parametrize("reported", ["bert@example.net", "stranger@example.net"])
def test_dsn_naming_another_recipient_than_its_mail_is_refused(daemon_factory, smtp, workdir,
                                                               reported):
    # a valid tag of ada's mail does not speak for bert's address
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir)
    before = dump_but_refusals(d)
    check_refused(d, dsn(verp(d, ids["ada@example.org"]), reported), before, 1)
    assert "refused" in d.stderr()


def test_dsn_without_verp_is_attributed_by_the_reported_address(daemon_factory, smtp, workdir):
    # without return_path the reported address is believed (README says whom that trusts)
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, with_verp=False)
    headers = ("From: Bürgerinitiative <newsletter@example.org>\n"
               "To: {rcpt}\n"
               "Subject: Ausgabe 1\n"
               "Message-ID: <abc@example.org>\n")

    before = dump_but_ignored(d)
    unknown = dsn("postmaster@example.org", "stranger@example.net",
                  original_headers=headers.format(rcpt="stranger@example.net"))
    r = bounce(d, unknown)
    assert r.rc == 0, r             # consumed: an MTA would return it (issue 17)
    assert dump_but_ignored(d) == before
    assert ignored(d) == (0, 1)

    # the address compares case-insensitively
    known = dsn("postmaster@example.org", "Bert@Example.NET",
                original_headers=headers.format(rcpt="Bert@Example.NET"))
    r = bounce(d, known)
    assert r.rc == 0, r
    states = subscription_states(d)
    assert states[("bert@example.net", "default")] == "bounced"
    assert states[("ada@example.org", "default")] == "confirmed"
    assert states[("cleo@example.com", "default")] == "confirmed"
    (row,) = [dict(x) for x in d.query("SELECT * FROM bounce")]
    assert row["kind"] == "permanent"


def test_dsn_for_a_confirmation_mail_suppresses_the_pending_signup(daemon_factory, smtp):
    """A pending sign-up keeps its address apart (sql/009); a bounce of its
    confirmation mail still finds it, by the VERP id or by the address."""
    d = daemon_factory({"bounce": {"return_path": RETURN_PATH}})
    check_answer(d.subscribe("typo@example.org", name="Tippfehler", ip="192.0.2.77"), "pending")
    check_answer(d.subscribe("other@example.org"), "pending")
    check_answer(d.subscribe("noverp@example.net"), "pending")
    mails = {m.rcpt_tos[0]: m for m in smtp.wait_for(3, timeout=WAIT)}
    d.settle(timeout=WAIT)
    assert d.query("SELECT count(*) AS n FROM subscriber")[0]["n"] == 0

    # a report naming another recipient than the mail had is not believed,
    # and moves nothing
    before = dump_but_refusals(d)
    check_refused(d, dsn(verp(d, verp_id(mails["other@example.org"])), "someone.else@example.org"),
                  before, 1)

    r = bounce(d, dsn(verp(d, verp_id(mails["typo@example.org"])), "typo@example.org"))
    assert r.rc == 0, r
    states = subscription_states(d)
    assert states[("typo@example.org", "default")] == "bounced"
    assert states[("other@example.org", "default")] == "pending"
    # its sign-up became a subscriber's, with its record, to carry the bounce
    (row,) = [dict(x) for x in d.query(
        "SELECT b.kind, b.outbox_id, u.email, u.name FROM bounce b"
        " JOIN subscriber u ON u.id = b.subscriber_id")]
    assert row == {"kind": "permanent", "outbox_id": verp_id(mails["typo@example.org"]),
                   "email": "typo@example.org", "name": "Tippfehler"}
    assert [tuple(x) for x in d.query("SELECT event, ip FROM consent")] == [("signup", "192.0.2.77")]
    assert [x[0] for x in d.query("SELECT email_key FROM signup ORDER BY 1")] == [
        "noverp@example.net", "other@example.org"]
    # the link in the bounced mail confirms nothing
    check_answer(d.request({"op": "confirm", "token": mails["typo@example.org"].token}), "error",
                 "unknown_token")

    # with VERP on, a report without it proves nothing: refused, even for
    # an address that has a pending sign-up
    before = dump_but_refusals(d)
    check_refused(d, dsn("postmaster@example.org", "NoVerp@Example.NET"), before, 2)


def test_dsn_without_verp_suppresses_a_pending_signup_by_address(daemon_factory, smtp):
    d = daemon_factory()
    check_answer(d.subscribe("noverp@example.net"), "pending")
    check_answer(d.subscribe("other@example.org"), "pending")
    smtp.wait_for(2, timeout=WAIT)
    d.settle(timeout=WAIT)
    r = bounce(d, dsn("postmaster@example.org", "NoVerp@Example.NET"))
    assert r.rc == 0, r
    assert subscription_states(d)[("noverp@example.net", "default")] == "bounced"
    assert [x[0] for x in d.query("SELECT email_key FROM signup")] == ["other@example.org"]


def test_bounce_with_the_daemon_stopped_asks_the_mta_to_retry(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir, readers=READERS[:1])
    assert d.stop() == 0
    before = db_dump(d.database)
    r = bounce(d, dsn(verp(d, ids["ada@example.org"]), "ada@example.org"))
    assert r.rc == 75, r
    assert db_dump(d.database) == before



def test_a_report_delivered_twice_counts_once(daemon_factory, smtp, workdir):
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    report = dsn(verp(d, ids["ada@example.org"]), "ada@example.org")
    complaint = arf(with_return_path(mails["bert@example.net"]))
    for _ in range(2):
        r = bounce(d, report)
        assert r.rc == 0, r
        r = bounce(d, complaint)
        assert r.rc == 0, r
    # applying it twice changed nothing more than applying it once
    consent = d.query("SELECT count(*) AS n FROM consent WHERE source = 'complaint'")[0]["n"]
    assert consent == 1
    status = admin(d, {"op": "status", "issue": issue})
    assert (status["bounced"], status["complaints"]) == (1, 1), status
    stats = admin(d, {"op": "stats"})
    assert stats["bounces"] == {"permanent": 1, "temporary": 0, "complaints": 1, "refused": 0,
        **NOTHING_IGNORED, **CLASSES, "complaint": 1}, stats


# ---------------------------------------------------------------- forged reports (issue 16)
#
# With return_path set, a report counts only when it came to a VERP address
# whose tag the daemon made for a mail to the recipient it names.  Anyone can
# mail the bounce address; none of these may change a subscriber.

def test_dsn_to_the_plain_bounce_address_changes_nothing(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir)
    before = dump_but_refusals(d)
    check_refused(d, dsn("bounces@example.org", "bert@example.net"), before, 1)
    # nor when the copy of "the original" claims the plain address either
    headers = ("Return-Path: <bounces@example.org>\nFrom: newsletter@example.org\n"
               "To: bert@example.net\nSubject: Ausgabe 1\n")
    check_refused(d, dsn("bounces@example.org", "bert@example.net", original_headers=headers),
                  before, 2)
    assert subscription_states(d)[("bert@example.net", "default")] == "confirmed"
    r = ctl(d.config_path, "stats")
    assert r.rc == 0 and "2 refused" in r.out, r


def test_arf_complaint_without_verp_changes_nothing(daemon_factory, smtp, workdir):
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    before = dump_but_refusals(d)
    # the mail as the victim got it, but without its envelope sender
    original = mails["cleo@example.com"].data
    assert b"bounces+" not in original
    check_refused(d, arf(original), before, 1)
    # an invented Return-Path of the plain bounce address does not help
    check_refused(d, arf(b"Return-Path: <bounces@example.org>\r\n" + original), before, 2)
    assert subscription_states(d)[("cleo@example.com", "default")] == "confirmed"


def guesses(d, ids):
    """VERP addresses anyone could make up for ada's mail without the key."""
    mail_id = ids["ada@example.org"]
    other = ids["bert@example.net"]
    wrong_key = bytes(32)
    tag = verp_tag(daemon_keys(d)[0], mail_id)
    return {
        "bare id (the old form)": "bounces+%d@example.org" % mail_id,
        "tag under another key": verp(d, mail_id, key=wrong_key),
        "another mail's tag": "bounces+%d-%s@example.org" % (mail_id, verp_tag(daemon_keys(d)[0],
                                                                                other)),
        "tag one digit off": "bounces+%d-%s%s@example.org" % (mail_id, tag[:-1],
                                                              "0" if tag[-1] != "0" else "1"),
        "cut tag": "bounces+%d-%s@example.org" % (mail_id, tag[:-1]),
        "next id, no tag": "bounces+%d@example.org" % (max(ids.values()) + 1),
    }


@pytest.mark.parametrize("guess", ["bare id (the old form)", "tag under another key",
                                   "another mail's tag", "tag one digit off", "cut tag",
                                   "next id, no tag"])
def test_guessed_verp_addresses_change_nothing(daemon_factory, smtp, workdir, guess):
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    address = guesses(d, ids)[guess]
    before = dump_but_refusals(d)
    check_refused(d, dsn(address, "ada@example.org"), before, 1)
    # a complaint whose original claims that envelope sender
    forged = b"Return-Path: <" + address.encode() + b">\r\n" + mails["ada@example.org"].data
    check_refused(d, arf(forged), before, 2)
    assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"


def test_valid_tag_of_one_mail_with_the_recipient_of_another_is_refused(daemon_factory, smtp,
                                                                         workdir):
    # bert got a mail, so he holds a valid VERP address: it is good for bert only
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    before = dump_but_refusals(d)
    check_refused(d, dsn(verp(d, ids["bert@example.net"]), "cleo@example.com"), before, 1)
    # and a tag that names a mail the daemon never sent
    unknown = max(ids.values()) + 1000
    check_refused(d, dsn(verp(d, unknown), "cleo@example.com"), before, 2)
    # his own mail, re-addressed to cleo, attached to a complaint: a
    # complaint is about the mail its tag names, so it counts for bert
    # (who alone holds that tag), never for cleo
    data = mails["bert@example.net"].data.replace(b"To: bert@example.net", b"To: cleo@example.com")
    assert data != mails["bert@example.net"].data
    report = arf(b"Return-Path: <" + verp(d, ids["bert@example.net"]).encode() + b">\r\n" + data)
    r = bounce(d, report)
    assert r.rc == 0, r
    assert refused(d) == 2
    states = subscription_states(d)
    assert states[("cleo@example.com", "default")] == "confirmed"
    assert states[("bert@example.net", "default")] == "unsubscribed"
    assert "complaint names cleo@example.com, counted for the recipient of mail" in d.stderr()


def test_complaint_with_a_redacted_recipient_counts_for_the_mail(daemon_factory, smtp, workdir):
    # feedback loops hide the complainant's address ("redacted@..."): the
    # valid tag of cleo's mail still says whose mail was reported
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    data = mails["cleo@example.com"].data.replace(b"To: cleo@example.com", b"To: redacted@example.com")
    assert data != mails["cleo@example.com"].data
    report = arf(b"Return-Path: <" + verp(d, ids["cleo@example.com"]).encode() + b">\r\n" + data)
    report = report.replace("Reported-Domain: example.org\n",
                            "Reported-Domain: example.org\nOriginal-Rcpt-To: redacted@example.com\n")
    ex = ctl(d.config_path, "bounce", "--explain", stdin=report.encode())
    assert ex.rc == 0, ex
    explain = json.loads(ex.out)
    assert (explain["class"], explain["recipient"], explain["verp"]) == \
        ("complaint", "cleo@example.com", "valid"), explain
    r = bounce(d, report)
    assert r.rc == 0, r
    states = subscription_states(d)
    assert states[("cleo@example.com", "default")] == "unsubscribed"
    assert states[("ada@example.org", "default")] == "confirmed"
    assert states[("bert@example.net", "default")] == "confirmed"


def test_auth_failure_report_naming_another_recipient_is_refused(daemon_factory, smtp, workdir):
    # an RFC 6591 report is about a copy's authentication, sent by the
    # receiver of whoever got that copy (a forwarding hop's recipient):
    # the tag it carries does not make it ada's wish
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    data = mails["ada@example.org"].data.replace(b"To: ada@example.org", b"To: ada.fwd@example.net")
    report = arf(b"Return-Path: <" + verp(d, ids["ada@example.org"]).encode() + b">\r\n" + data)
    report = report.replace("Feedback-Type: abuse\n", "Feedback-Type: auth-failure\nAuth-Failure: dkim\n")
    report = report.replace("Reported-Domain: example.org\n",
                            "Reported-Domain: example.org\nOriginal-Rcpt-To: ada.fwd@example.net\n")
    before = dump_but_refusals(d)
    check_refused(d, report, before, 1)
    assert subscription_states(d)[("ada@example.org", "default")] == "confirmed"


def test_refused_reports_are_counted_across_a_restart(daemon_factory, smtp, workdir):
    d, issue, ids, _ = newsletter_to_readers(daemon_factory, smtp, workdir)
    for n in range(1, 4):
        assert bounce(d, dsn("bounces+%d@example.org" % n, "ada@example.org")).rc == 0
    assert refused(d) == 3
    assert d.stop() == 0
    d.start()
    assert refused(d) == 3
    r = ctl(d.config_path, "stats", "--json")
    assert r.rc == 0, r
    assert json.loads(r.out)["bounces"]["refused"] == 3


def rotate(d, new_key, keep_old=True):
    """Put NEW_KEY first in the key file (the old ones after it, or dropped)."""
    old = daemon_keys(d) if keep_old else []
    with open(key_file(d), "w", encoding="ascii") as f:
        f.write("".join(k.hex() + "\n" for k in [new_key] + old))
    os.chmod(key_file(d), 0o600)


@pytest.mark.parametrize("how", ["reload", "restart"])
def test_old_tags_keep_working_after_a_key_change(daemon_factory, smtp, workdir, how):
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    old_key = daemon_keys(d)[0]
    new_key = bytes(range(100, 132))
    rotate(d, new_key)
    if how == "reload":
        assert "reload failed" not in reload(d)
    else:
        assert d.stop() == 0
        d.start()
    # new mails are tagged with the new key
    second = next_issue(d, smtp, workdir, "Ausgabe 2")
    (mail,) = [m for m in smtp.snapshot() if verp_id(m) == second["ada@example.org"]]
    assert mail.mail_from == verp(d, second["ada@example.org"], key=new_key)
    assert mail.mail_from != verp(d, second["ada@example.org"], key=old_key)
    # a bounce of a mail tagged before the change still counts
    r = bounce(d, dsn(verp(d, ids["bert@example.net"], key=old_key), "bert@example.net"))
    assert r.rc == 0, r
    assert subscription_states(d)[("bert@example.net", "default")] == "bounced"
    r = bounce(d, dsn(verp(d, second["ada@example.org"], key=new_key), "ada@example.org"))
    assert r.rc == 0, r
    assert subscription_states(d)[("ada@example.org", "default")] == "bounced"
    assert refused(d) == 0

    # once the old key is dropped from the file, its tags are refused
    rotate(d, new_key, keep_old=False)
    assert daemon_keys(d) == [new_key]
    assert d.stop() == 0
    d.start()
    before = dump_but_refusals(d)
    check_refused(d, dsn(verp(d, ids["cleo@example.com"], key=old_key), "cleo@example.com"),
                  before, 1)


# ---------------------------------------------------------------- the key file

def test_a_key_file_gone_at_reload_is_not_made_anew(daemon_factory, smtp, workdir):
    """A new key made at a reload would leave every tag in the mails already
    out unverifiable: the reload is refused and the old keys stay."""
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    old_keys = daemon_keys(d)
    os.unlink(key_file(d))
    assert "the key file ([daemon] key_file) is missing" in reload(d)
    assert not os.path.exists(key_file(d))
    r = bounce(d, dsn(verp(d, ids["bert@example.net"], key=old_keys[0]), "bert@example.net"))
    assert r.rc == 0, r
    assert subscription_states(d)[("bert@example.net", "default")] == "bounced"


def test_key_file_is_made_0600_at_first_start_and_kept(daemon_factory, smtp, workdir):
    old = os.umask(0o022)       # a permissive umask must not loosen the mode
    try:
        d = daemon_factory({"bounce": {"return_path": RETURN_PATH}})
    finally:
        os.umask(old)
    st = os.stat(key_file(d))
    assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
    keys = daemon_keys(d)
    assert len(keys) == 1 and len(keys[0]) == 32
    assert d.stop() == 0
    d.start()
    assert daemon_keys(d) == keys
    # no copy of the key in the database
    assert keys[0].hex() not in repr(db_dump(d.database))


def test_key_file_of_the_config_is_used(daemon_factory, smtp, workdir):
    path = os.path.join(workdir, "secret", "newsletterd.key")
    os.mkdir(os.path.dirname(path))
    d = daemon_factory({"daemon": {"key_file": path}, "bounce": {"return_path": RETURN_PATH}})
    assert os.path.exists(path) and not os.path.exists(d.database + ".key")
    check_answer(d.subscribe("neu@example.org"), "pending")
    (mail,) = smtp.wait_for(1, timeout=WAIT)
    with open(path, encoding="ascii") as f:
        key = bytes.fromhex([line for line in f if not line.startswith("#")][0].strip())
    assert mail.mail_from == verp(d, verp_id(mail), key=key)


@pytest.mark.parametrize("mode,content,message", [
    (0o640, None, "chmod 600"),
    (0o604, None, "chmod 600"),
    (0o600, "00112233\n", "line 1"),
    (0o600, "# only a comment\n", "no key"),
])
def test_bad_key_file_is_a_start_up_error(daemon_factory, workdir, mode, content, message):
    d = daemon_factory(start=False)
    path = d.database + ".key"
    with open(path, "w", encoding="ascii") as f:
        f.write(content if content is not None else "ab" * 32 + "\n")
    os.chmod(path, mode)
    rc, out, err = check_config(d.config_path)
    assert rc != 0 and message in err and path in err, (rc, out, err)
    proc = d.spawn()
    assert proc.wait(30) != 0
    assert message in d.stderr(), d.stderr()


def test_check_config_makes_no_key_file(daemon_factory, workdir):
    d = daemon_factory(start=False)
    rc, out, err = check_config(d.config_path)
    assert rc == 0, (rc, out, err)
    assert not os.path.exists(d.database + ".key")


# ---------------------------------------------------------------- newsletterctl --json

CLI_JSON_BUG = ("newsletterctl status --json and stats --json build their output from a fixed "
                "list of keys and drop the daemon's bounced/complaints (status) and bounces "
                "(stats) fields")


def bounced_and_complained(daemon_factory, smtp, workdir):
    d, issue, ids, mails = newsletter_to_readers(daemon_factory, smtp, workdir)
    assert bounce(d, dsn(verp(d, ids["ada@example.org"]), "ada@example.org")).rc == 0
    assert bounce(d, arf(with_return_path(mails["bert@example.net"]))).rc == 0
    return d, issue


def test_cli_status_json_shows_bounces_and_complaints(daemon_factory, smtp, workdir):
    d, issue = bounced_and_complained(daemon_factory, smtp, workdir)
    r = ctl(d.config_path, "status", str(issue), "--json")
    assert r.rc == 0, r
    status = json.loads(r.out)
    assert (status.get("bounced"), status.get("complaints")) == (1, 1), status


def test_cli_stats_json_shows_bounces_and_complaints(daemon_factory, smtp, workdir):
    d, issue = bounced_and_complained(daemon_factory, smtp, workdir)
    r = ctl(d.config_path, "stats", "--json")
    assert r.rc == 0, r
    stats = json.loads(r.out)
    assert stats["subscribers"]["bounced"] == 1
    assert stats.get("bounces") == {"permanent": 1, "temporary": 0, "complaints": 1, "refused": 0,
        **NOTHING_IGNORED, **CLASSES, "complaint": 1}, stats
