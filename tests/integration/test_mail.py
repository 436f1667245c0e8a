"""The confirmation mail: headers, MIME structure, line format, the link and
its token, the envelope; what must never appear in it or anywhere else."""
import email.utils
import os
import re
import time

import pytest

from nlhelpers import (CONFIRM_PREFIX, check_answer, raw_lines, token_hash, token_raw)

SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def builtin_subject(lang):
    """The Subject line of the built-in template, or None when it has placeholders."""
    path = os.path.join(SOURCE_ROOT, "conf", "templates", "confirm.%s.txt" % lang)
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except FileNotFoundError:
        return None
    assert first.lower().startswith("subject:")
    subject = first[8:].strip()
    return None if "{{" in subject else subject


def all_text(mail):
    """Every header (decoded) and the decoded body, as one string."""
    msg = mail.msg
    parts = ["%s: %s" % (k, v) for k, v in msg.items()]
    parts.append(mail.body)
    return "\n".join(parts)


def check_format(mail):
    """What every mail must satisfy on the wire; returns the parsed message."""
    lines = raw_lines(mail.data)
    for i, line in enumerate(lines):
        assert b"\r" not in line and b"\n" not in line, "bare CR or LF in line %d: %r" % (i, line)
        assert len(line) <= 998, "line %d is %d octets" % (i, len(line))
    msg = mail.msg
    assert not msg.defects, msg.defects
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        assert len(msg.get_all(name) or []) == 1, "%s must appear once" % name
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", msg["Message-ID"].strip()), msg["Message-ID"]
    date = email.utils.parsedate_to_datetime(msg["Date"])
    assert date.tzinfo is not None
    assert abs(date.timestamp() - time.time()) < 300
    return msg


def test_confirmation_mail_in_german(daemon, smtp):
    check_answer(daemon.subscribe("mail-de@example.org", name="Zebulon Quaxxter",
                                  ip="192.0.2.55", user_agent="AgentSmith/9.9"), "pending")
    (mail,) = smtp.wait_for(1)
    msg = check_format(mail)

    # envelope: one recipient, the configured sender
    assert mail.mail_from == "newsletter@example.org"
    assert mail.rcpt_tos == ["mail-de@example.org"]

    sender = msg["From"].addresses
    assert len(sender) == 1
    assert sender[0].display_name == "Newsletter Test"
    assert sender[0].addr_spec == "newsletter@example.org"
    to = msg["To"].addresses
    assert len(to) == 1 and to[0].addr_spec == "mail-de@example.org"
    assert to[0].display_name == ""
    assert msg["Message-ID"].strip().endswith("@example.org>")
    assert msg["Auto-Submitted"] == "auto-generated"

    subject = str(msg["Subject"])
    assert subject and "=?" not in subject and "?=" not in subject
    expected = builtin_subject("de")
    if expected is not None:
        assert subject == expected

    body = mail.body
    token = mail.token
    link = CONFIRM_PREFIX + token
    assert body.count(link) == 1
    assert body.count("token=") == 1
    assert "30" in body        # the link's validity in days
    assert "{{" not in body and "{token}" not in body

    # nothing the visitor sent is echoed
    raw = mail.data
    text = all_text(mail)
    for given in ("Zebulon", "Quaxxter", "192.0.2.55", "AgentSmith"):
        assert given.encode() not in raw
        assert given not in text


def test_confirmation_mail_in_english(daemon, smtp):
    check_answer(daemon.subscribe("mail-de2@example.org"), "pending")
    check_answer(daemon.subscribe("mail-en@example.org", lang="en"), "pending")
    smtp.wait_for(2)
    (de,) = smtp.to("mail-de2@example.org")
    (en,) = smtp.to("mail-en@example.org")
    check_format(en)
    de_subject, en_subject = str(de.msg["Subject"]), str(en.msg["Subject"])
    assert en_subject and en_subject != de_subject
    expected = builtin_subject("en")
    if expected is not None:
        assert en_subject == expected
    assert en.body != de.body
    assert en.body.count(CONFIRM_PREFIX + en.token) == 1
    assert daemon.subscription("mail-en@example.org")["lang"] == "en"


def test_name_with_unicode_is_not_echoed(daemon, smtp):
    name = "Zoë Ünïcødé-Ŧęšť"
    check_answer(daemon.subscribe("uni@example.org", name=name), "pending")
    (mail,) = smtp.wait_for(1)
    check_format(mail)
    text = all_text(mail)
    for piece in ("Zoë", "Ünïcødé", "Ŧęšť"):
        assert piece not in text
        assert piece.encode() not in mail.data
    assert daemon.query("SELECT name FROM signup")[0][0] == name


def test_token_is_stored_only_as_its_hash(daemon, smtp):
    check_answer(daemon.subscribe("hash@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    daemon.settle()
    token = mail.token
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert len(token_raw(token)) == 32
    rows = daemon.query("SELECT hash, typeof(hash) AS t, length(hash) AS n, kind FROM token")
    assert len(rows) == 1
    assert rows[0]["t"] == "blob" and rows[0]["n"] == 32
    assert rows[0]["hash"] == token_hash(token)
    assert rows[0]["kind"] == "confirm"
    check_answer(daemon.request({"op": "confirm", "token": token}), "confirmed")
    daemon.stop()
    needles = [token.encode(), token_raw(token), (CONFIRM_PREFIX + token).encode()]
    for suffix in ("", "-wal", "-journal", "-shm"):
        path = daemon.database + suffix
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            content = f.read()
        for needle in needles:
            assert needle not in content, "the token is in %s" % path
    assert token not in daemon.stderr()


def test_tokens_do_not_leak_while_running(daemon, smtp):
    """Checked while the daemon runs: the WAL holds the recent writes."""
    for i in range(5):
        check_answer(daemon.subscribe("leak%d@example.org" % i), "pending")
    mails = smtp.wait_for(5)
    daemon.settle()
    blobs = b""
    for suffix in ("", "-wal"):
        if os.path.exists(daemon.database + suffix):
            with open(daemon.database + suffix, "rb") as f:
                blobs += f.read()
    log = daemon.stderr()
    hashes = {r[0] for r in daemon.query("SELECT hash FROM token")}
    for m in mails:
        assert m.token.encode() not in blobs
        assert token_raw(m.token) not in blobs
        assert m.token not in log
        assert token_hash(m.token) in hashes


def test_each_mail_has_its_own_token_and_message_id(daemon, smtp):
    for i in range(6):
        check_answer(daemon.subscribe("uniq%d@example.org" % i, lang="en" if i % 2 else "de"),
                     "pending")
    mails = smtp.wait_for(6)
    assert len({m.token for m in mails}) == 6
    assert len({m.msg["Message-ID"] for m in mails}) == 6
    for m in mails:
        check_format(m)
        assert len(m.rcpt_tos) == 1
        assert m.msg["To"].addresses[0].addr_spec == m.rcpt_tos[0]


@pytest.mark.parametrize("from_value,name,addr", [
    ("Bürgerinitiative Süd e.V. <news@example.org>", "Bürgerinitiative Süd e.V.",
     "news@example.org"),
    ('"Verein, Berlin" <verein@example.org>', "Verein, Berlin", "verein@example.org"),
    ("plain@example.org", "", "plain@example.org"),
    ("Nachrichten <news@bücher.example>", "Nachrichten", "news@xn--bcher-kva.example"),
])
def test_from_header_and_envelope(daemon_factory, smtp, from_value, name, addr):
    d = daemon_factory({"smtp": {"from": from_value}})
    check_answer(d.subscribe("from@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    msg = check_format(mail)
    (sender,) = msg["From"].addresses
    assert sender.display_name == name
    assert sender.addr_spec == addr
    assert mail.mail_from == addr
    assert msg["Message-ID"].strip().endswith("@" + addr.split("@")[1] + ">")


def write_templates(directory, subject_de, body_de, subject_en, body_en):
    os.makedirs(directory, exist_ok=True)
    for lang, subject, body in (("de", subject_de, body_de), ("en", subject_en, body_en)):
        with open(os.path.join(directory, "confirm.%s.txt" % lang), "w", encoding="utf-8") as f:
            f.write("Subject: %s\n\n%s" % (subject, body))


def test_custom_templates_long_lines_and_folding(daemon_factory, smtp, workdir):
    subject_de = ("Bitte bestätigen Sie Ihre Anmeldung – Übermäßig lange Betreffzeile "
                  "mit Umlauten äöüß und Zeichen €, damit sie gefaltet werden muss, "
                  "Liste {{list}}")
    long_line = "Sehr lange Zeile: " + "äöü ÄÖÜ ß € " * 120 + "Ende."
    body_de = ("Hallo,\n\n{{confirm_url}}\n\n" + long_line + "\n\n"
               "Gültig {{confirm_days}} Tage.\n.\n.leading dot\nFrom the start\n")
    subject_en = "Confirm {{list}}, please"
    body_en = "Link: {{confirm_url}}\nDays: {{confirm_days}}\n"
    tdir = os.path.join(workdir, "templates")
    write_templates(tdir, subject_de, body_de, subject_en, body_en)
    d = daemon_factory({"subscription": {"templates": tdir}})

    check_answer(d.subscribe("tmpl@example.org", list="events"), "pending")
    check_answer(d.subscribe("tmpl-en@example.org", lang="en"), "pending")
    smtp.wait_for(2)
    (de,) = smtp.to("tmpl@example.org")
    (en,) = smtp.to("tmpl-en@example.org")
    msg = check_format(de)
    check_format(en)
    assert str(msg["Subject"]) == subject_de.replace("{{list}}", "events")
    body = de.body.replace("\r\n", "\n")
    link = CONFIRM_PREFIX + de.token
    expected = body_de.replace("{{confirm_url}}", link).replace("{{confirm_days}}", "30")
    assert body == expected
    assert str(en.msg["Subject"]) == "Confirm default, please"
    assert en.body.replace("\r\n", "\n") == ("Link: %s%s\nDays: 30\n" % (CONFIRM_PREFIX, en.token))


def test_confirm_days_follow_confirm_ttl(daemon_factory, smtp, workdir):
    tdir = os.path.join(workdir, "templates")
    write_templates(tdir, "Bestätigen", "{{confirm_url}} {{confirm_days}}.\n",
                    "Confirm", "{{confirm_url}} {{confirm_days}}.\n")
    d = daemon_factory({"subscription": {"templates": tdir, "confirm_ttl": "3d",
                                         "resend_interval": "1h"}})
    check_answer(d.subscribe("days@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.body.strip() == "%s%s 3." % (CONFIRM_PREFIX, mail.token)


@pytest.mark.parametrize("ttl, de, en", [
    ("30d", "30 Tage", "30 days"),
    ("1d", "1 Tag", "1 day"),
    ("36h", "36 Stunden", "36 hours"),
])
def test_the_builtin_texts_name_the_validity_in_words(daemon_factory, smtp, ttl, de, en):
    d = daemon_factory({"subscription": {"confirm_ttl": ttl, "resend_interval": "1m"}})
    check_answer(d.subscribe("period-de@example.org"), "pending")
    check_answer(d.subscribe("period-en@example.org", lang="en"), "pending")
    smtp.wait_for(2)
    (mde,) = smtp.to("period-de@example.org")
    (men,) = smtp.to("period-en@example.org")
    assert "Der Link ist %s gültig." % de in mde.body.replace("\r\n", "\n")
    assert "The link is valid for %s." % en in men.body.replace("\r\n", "\n")


def test_confirm_url_with_token_in_the_path(daemon_factory, smtp):
    d = daemon_factory({"subscription": {
        "confirm_url": "https://news.example.org/c/{token}/ok?x=1&y=2"}})
    check_answer(d.subscribe("path@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    found = re.findall(r"https://news\.example\.org/c/([A-Za-z0-9_-]{43})/ok\?x=1&y=2",
                       mail.body)
    assert len(found) == 1
    check_answer(d.request({"op": "confirm", "token": found[0]}), "confirmed")


def test_return_path_gives_each_mail_its_own_envelope_sender(daemon_factory, smtp):
    d = daemon_factory({"bounce": {"return_path": "bounces+{id}@example.org"}})
    for i in range(3):
        check_answer(d.subscribe("verp%d@example.org" % i), "pending")
    mails = smtp.wait_for(3)
    senders = [m.mail_from for m in mails]
    for m in mails:
        assert re.fullmatch(r"bounces\+[A-Za-z0-9._=-]+@example\.org", m.mail_from), m.mail_from
        # the visible sender stays the configured one
        assert m.msg["From"].addresses[0].addr_spec == "newsletter@example.org"
    assert len(set(senders)) == 3, senders
