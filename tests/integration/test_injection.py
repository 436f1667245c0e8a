"""Header and SMTP injection through any request field: refused, and no mail
at all leaves the daemon because of it."""
import time

from nlhelpers import check_answer

EVIL = "evil@example.net"

ATTEMPTS = [
    ({"email": "victim@example.org\r\nBcc: evil@example.net"}, "invalid_email"),
    ({"email": "victim@example.org\nBcc: evil@example.net"}, "invalid_email"),
    ({"email": "victim@example.org\rBcc: evil@example.net"}, "invalid_email"),
    ({"email": "victim@example.org\u0000\r\nBcc: evil@example.net"}, "invalid_email"),
    ({"email": "victim@example.org>\r\nRCPT TO:<evil@example.net"}, "invalid_email"),
    ({"email": "victim@example.org> NOTIFY=NEVER"}, "invalid_email"),
    ({"email": "evil@example.net,victim@example.org"}, "invalid_email"),
    ({"email": "evil@example.net victim@example.org"}, "invalid_email"),
    ({"email": "victim@exa\u2028mple.org"}, "invalid_email"),
    ({"email": "victim\u0085@example.org"}, "invalid_email"),
    ({"email": "victim@example.org", "name": "V\r\nBcc: evil@example.net"}, "invalid_request"),
    ({"email": "victim@example.org", "name": "V\nBcc: evil@example.net"}, "invalid_request"),
    ({"email": "victim@example.org", "name": "V\u0000Bcc: evil@example.net"}, "invalid_request"),
    ({"email": "victim@example.org", "user_agent": "UA\r\nBcc: evil@example.net"},
     "invalid_request"),
    ({"email": "victim@example.org", "list": "default\r\nBcc: evil@example.net"},
     "invalid_request"),
    ({"email": "victim@example.org", "ip": "127.0.0.1\r\nBcc: evil@example.net"},
     "invalid_request"),
    ({"email": "victim@example.org", "lang": "de\r\nBcc: evil@example.net"}, "invalid_request"),
]


def test_injection_attempts_send_no_mail(daemon, smtp):
    with daemon.client() as c:
        for fields, error in ATTEMPTS:
            req = {"op": "subscribe"}
            req.update(fields)
            check_answer(c.request(req), "error", error)
        # a raw CR or LF inside a JSON string is no JSON at all
        c.send_raw(b'{"op":"subscribe","email":"victim@example.org\r\nBcc: evil@example.net"}\n')
        answers = [c.recv()]
        # the line may be split at the LF: every piece is refused
        while not c.nothing_more(0.3):
            answers.append(c.recv())
        for a in answers:
            assert a["state"] == "error" and a["error"] in ("invalid_request", "invalid_email"), a
        check_answer(c.request({"op": "ping"}), "ok")
    assert daemon.query("SELECT count(*) FROM subscriber")[0][0] == 0
    assert daemon.query("SELECT count(*) FROM signup")[0][0] == 0
    assert daemon.query("SELECT count(*) FROM outbox")[0][0] == 0
    time.sleep(1.5)   # one scheduler tick and more
    assert smtp.count() == 0, smtp.snapshot()

    # the capture works: a clean sign-up arrives, alone, to the right address
    check_answer(daemon.subscribe("victim@example.org", name="Vic Tim"), "pending")
    (mail,) = smtp.wait_for(1)
    time.sleep(0.5)
    mails = smtp.snapshot()
    assert len(mails) == 1
    assert mail.rcpt_tos == ["victim@example.org"]
    assert not smtp.to(EVIL)
    assert b"evil" not in mail.data
    assert b"Bcc" not in mail.data
    assert mail.msg.get_all("Bcc") is None and mail.msg.get_all("Cc") is None


def test_header_like_text_in_name_is_never_used(daemon, smtp):
    """A name with header-like text but no control characters: accepted, but
    the mail never shows it."""
    name = "Bcc: evil@example.net =?utf-8?q?X=0D=0ABcc:_evil@example.net?="
    check_answer(daemon.subscribe("quiet@example.org", name=name), "pending")
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["quiet@example.org"]
    assert b"evil" not in mail.data
    assert mail.msg.get_all("Bcc") is None
    assert daemon.query("SELECT name FROM signup")[0][0] == name
