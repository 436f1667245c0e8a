"""The public socket's JSON-lines protocol: answers, errors, framing, many
requests per connection, pipelining, many connections, slow clients."""
import json
import socket
import time

import pytest

from nlhelpers import Client, check_answer, db_dump, new_token


def test_ping_answers_ok_in_german_and_english(daemon):
    with daemon.client() as c:
        de = check_answer(c.request({"op": "ping"}), "ok")
        en = check_answer(c.request({"op": "ping", "lang": "en"}), "ok")
        de2 = check_answer(c.request({"op": "ping", "lang": "de"}), "ok")
    assert de["message"] != en["message"]
    assert de["message"] == de2["message"]


def test_error_messages_follow_lang(daemon):
    with daemon.client() as c:
        de = check_answer(c.request({"op": "subscribe", "email": "nope"}),
                          "error", "invalid_email")
        en = check_answer(c.request({"op": "subscribe", "email": "nope", "lang": "en"}),
                          "error", "invalid_email")
    assert de["message"] != en["message"]


def test_many_requests_on_one_connection(daemon):
    with daemon.client() as c:
        for i in range(50):
            check_answer(c.request({"op": "ping"}), "ok")
        check_answer(c.request({"op": "subscribe", "email": "many@example.org"}), "pending")
        check_answer(c.request({"op": "ping"}), "ok")


@pytest.mark.parametrize("line", [
    b"this is not json",
    b"{",
    b'{"op":"ping"',
    b'{"op":"ping"}}',
    b"[1,2,3]",
    b'"ping"',
    b"42",
    b"null",
    b'{"op":"ping",}',
    b'{"op":"subscribe","email":"bad\xff@example.org"}',      # not UTF-8
    b'{"op":"subscribe","email":"\xc3\x28@example.org"}',     # broken UTF-8 sequence
    b'{"op":"ping","op":"ping"}',                              # duplicate key
    b" ",
    b'{"op":"ping"}\x00',                                       # raw NUL
    b'{"op":"p\x00ing"}',
    b'{"op":"subscribe","email":"a\x01@example.org"}',        # raw control character
    b'\xef\xbb\xbf{"op":"ping"}',                              # byte order mark
    b'{"op":"subscribe","email":"\\ud800@example.org"}',      # lone surrogate escape
    b'{"op":"subscribe","email":"x@example.org","name":' + b"[" * 1000 + b"]" * 1000 + b"}",
], ids=lambda b: b.decode("latin-1")[:40])
def test_unparseable_line_is_invalid_request_and_connection_goes_on(shared_daemon, line):
    with shared_daemon.client() as c, shared_daemon.client() as other:
        c.send_raw(line + b"\n")
        check_answer(c.recv(), "error", "invalid_request")
        # the same connection keeps working, and so does every other
        check_answer(c.request({"op": "ping"}), "ok")
        check_answer(other.request({"op": "ping"}), "ok")


ADMIN_OPS = [
    {"op": "expire"},
    {"op": "stats"},
    {"op": "status"},
    {"op": "status", "issue": 1},
    {"op": "export", "email": "admin-victim@example.org"},
    {"op": "erase", "email": "admin-victim@example.org"},
    {"op": "send", "subject": "Spam", "text": "Buy now", "list": "default"},
    {"op": "import", "source": "x.csv", "rows": [["evil@example.net"]]},
    {"op": "import_begin", "source": "x.csv"},
    {"op": "import_rows", "lines": ["evil@example.net"]},
    {"op": "import_commit"},
    {"op": "bounce", "message": "x"},
    {"op": "pause", "issue": 1},
    {"op": "resume", "issue": 1},
    {"op": "cancel", "issue": 1},
]


def test_admin_ops_are_refused_on_the_public_socket(daemon, smtp):
    """Whatever the admin socket serves, the public socket serves none of it:
    refused (invalid_request or forbidden), nothing changed, nothing told."""
    check_answer(daemon.subscribe("admin-victim@example.org", name="Victim"), "pending")
    (mail,) = smtp.wait_for(1)
    check_answer(daemon.request({"op": "confirm", "token": mail.token}), "confirmed")
    daemon.settle()
    before = db_dump(daemon.database)
    with daemon.client() as c:
        for req in ADMIN_OPS:
            answer = c.request(req)
            assert answer.get("state") == "error", (req, answer)
            assert answer.get("error") in ("invalid_request", "forbidden"), (req, answer)
            assert set(answer) <= {"state", "message", "error", "detail"}, (req, answer)
            assert "admin-victim" not in json.dumps(answer)
    time.sleep(1.2)
    assert db_dump(daemon.database) == before
    assert smtp.count() == 1


@pytest.mark.parametrize("req", [
    {"op": "frobnicate"},
    {"op": "PING"},
    {"op": 1},
    {"op": None},
    {"op": ["ping"]},
    {"email": "x@example.org"},       # no op at all
    {},
    {"op": ""},
    {"op": "ping\u0000"},
], ids=lambda r: json.dumps(r))
def test_unknown_or_malformed_op_is_invalid_request(shared_daemon, req):
    with shared_daemon.client() as c:
        check_answer(c.request(req), "error", "invalid_request")
        check_answer(c.request({"op": "ping"}), "ok")


@pytest.mark.parametrize("req", [
    {"op": "ping", "extra": 1},
    {"op": "subscribe", "email": "f1@example.org", "bogus": "x"},
    {"op": "subscribe", "email": "f1@example.org", "token": "x"},
    {"op": "confirm", "token": "x", "email": "f1@example.org"},
    {"op": "check", "token": "x", "ip": "127.0.0.1"},
    {"op": "subscribe", "email": 42},
    {"op": "subscribe", "email": ["f1@example.org"]},
    {"op": "subscribe", "email": {"a": "f1@example.org"}},
    {"op": "subscribe", "email": True},
    {"op": "subscribe", "email": "f1@example.org", "name": 7},
    {"op": "subscribe", "email": "f1@example.org", "list": 1},
    {"op": "subscribe"},
    {"op": "subscribe", "email": None},
    {"op": "confirm"},
    {"op": "confirm", "token": 12345},
    {"op": "check"},
    {"op": "unsubscribe"},
    {"op": "subscribe", "email": "f1@example.org", "lang": "fr"},
    {"op": "subscribe", "email": "f1@example.org", "lang": "DE"},
    {"op": "subscribe", "email": "f1@example.org", "lang": ""},
    {"op": "subscribe", "email": "f1@example.org", "lang": 1},
    {"op": "ping", "lang": "english"},
    {"op": "subscribe", "email": "f1@example.org", "ip": "not an ip"},
    {"op": "subscribe", "email": "f1@example.org", "ip": "256.1.1.1"},
    {"op": "subscribe", "email": "f1@example.org", "ip": "127.0.0.1\n"},
    {"op": "subscribe", "email": "f1@example.org", "ip": ""},
    {"op": "confirm", "token": "x" * 43, "ip": "::1::2"},
    {"op": "subscribe", "email": "f1@example.org", "name": "Eve\r\nBcc: evil@example.net"},
    {"op": "subscribe", "email": "f1@example.org", "name": "Eve\nX"},
    {"op": "subscribe", "email": "f1@example.org", "name": "Eve\rX"},
    {"op": "subscribe", "email": "f1@example.org", "name": "Eve\u0000X"},
    {"op": "subscribe", "email": "f1@example.org", "user_agent": "UA\r\nX-Evil: 1"},
    {"op": "subscribe", "email": "f1@example.org", "name": "x" * 5000},
    {"op": "subscribe", "email": "f1@example.org", "list": "events\n"},
], ids=lambda r: json.dumps(r)[:70])
def test_bad_fields_are_invalid_request_and_store_nothing(shared_daemon, req):
    answer = shared_daemon.request(req)
    check_answer(answer, "error", "invalid_request")
    assert shared_daemon.query("SELECT count(*) FROM subscriber")[0][0] == 0
    assert shared_daemon.query("SELECT count(*) FROM signup")[0][0] == 0
    assert shared_daemon.query("SELECT count(*) FROM outbox")[0][0] == 0


def test_unknown_list_is_invalid_request(daemon):
    check_answer(daemon.subscribe("lists@example.org", list="nosuchlist"),
                 "error", "invalid_request")
    check_answer(daemon.subscribe("lists@example.org", list="Default"),
                 "error", "invalid_request")
    assert daemon.query("SELECT count(*) FROM subscription")[0][0] == 0


def test_optional_fields_may_be_null(daemon, smtp):
    answer = daemon.request({"op": "subscribe", "email": "nulls@example.org", "name": None,
                             "list": None, "ip": None, "user_agent": None})
    check_answer(answer, "pending")
    assert daemon.subscription("nulls@example.org")["list"] == "default"
    smtp.wait_for(1)


def test_blank_lines_get_no_answer(daemon):
    bad_token, _ = new_token()
    with daemon.client() as c:
        c.send_raw(b"\n\r\n\n" + Client.encode({"op": "ping"}) + b"\n\n\n"
                   + Client.encode({"op": "check", "token": bad_token}) + b"\n\r\n")
        check_answer(c.recv(), "ok")
        check_answer(c.recv(), "error", "unknown_token")
        assert c.nothing_more(0.5)


def test_crlf_terminated_requests(daemon):
    with daemon.client() as c:
        c.send_raw(b'{"op":"ping"}\r\n{"op":"ping","lang":"en"}\r\n')
        a = check_answer(c.recv(), "ok")
        b = check_answer(c.recv(), "ok")
        assert a["message"] != b["message"]


def test_answers_are_single_json_lines(daemon):
    with daemon.client() as c:
        c.send_raw(b'{"op":"ping"}\n{"op":"ping","lang":"en"}\nnot json\n')
        deadline = time.monotonic() + 10
        while c.buf.count(b"\n") < 3 and time.monotonic() < deadline:
            c.buf += c.sock.recv(65536)
        lines = c.buf.split(b"\n")
        assert lines[-1] == b""
        assert len(lines) == 4, c.buf
        for line in lines[:-1]:
            obj = json.loads(line.decode("utf-8"))
            assert set(obj) >= {"state", "message"}


def test_request_split_over_many_writes(daemon):
    with daemon.client() as c:
        data = Client.encode({"op": "ping", "lang": "en"}) + b"\n"
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
            if i % 5 == 0:
                time.sleep(0.01)
        check_answer(c.recv(), "ok")


def test_last_line_without_newline_is_answered_at_eof(daemon):
    with daemon.client() as c:
        c.send_raw(b'{"op":"ping"}\n{"op":"ping","lang":"en"}')
        c.shutdown_write()
        check_answer(c.recv(), "ok")
        check_answer(c.recv(), "ok")
        assert c.wait_closed(5)


def test_line_just_under_the_limit_is_served(daemon):
    # 4096 bytes including the newline is the largest request line
    base = b'{"op":"ping"'
    line = base + b" " * (4095 - len(base) - 1) + b"}"
    assert len(line) + 1 == 4096
    with daemon.client() as c:
        c.send_raw(line + b"\n")
        check_answer(c.recv(), "ok")
        check_answer(c.request({"op": "ping"}), "ok")


@pytest.mark.parametrize("size", [4097, 5000, 100000])
def test_overlong_line_gets_one_error_then_close(daemon, size):
    base = b'{"op":"ping"'
    line = base + b" " * (size - len(base) - 2) + b"}\n"
    assert len(line) == size
    with daemon.client() as c, daemon.client() as other:
        c.send_raw(Client.encode({"op": "ping"}) + b"\n")
        check_answer(c.recv(), "ok")
        try:
            c.send_raw(line + Client.encode({"op": "ping"}) + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass    # the daemon may close before it took everything
        check_answer(c.recv(), "error", "invalid_request")
        assert c.wait_closed(5), "the connection stayed open after an overlong line"
        assert c.buf == b"", "more answers after the overlong line: %r" % c.buf
        check_answer(other.request({"op": "ping"}), "ok")
    check_answer(daemon.request({"op": "ping"}), "ok")


def test_overlong_line_without_newline_is_refused(daemon):
    with daemon.client() as c:
        c.send_raw(b'{"op":"subscribe","email":"' + b"a" * 6000)
        check_answer(c.recv(), "error", "invalid_request")
        assert c.wait_closed(5)
    assert daemon.query("SELECT count(*) FROM subscriber")[0][0] == 0
    assert daemon.query("SELECT count(*) FROM signup")[0][0] == 0


def test_pipelined_requests_are_answered_in_order(daemon, smtp):
    bad_token, _ = new_token()
    requests, expected = [], []
    for i in range(200):
        kind = i % 5
        if kind == 0:
            requests.append(Client.encode({"op": "subscribe", "email": "pipe%03d@example.org" % i,
                                           "lang": "en"}))
            expected.append(("pending", None))
        elif kind == 1:
            requests.append(Client.encode({"op": "ping"}))
            expected.append(("ok", None))
        elif kind == 2:
            requests.append(b"{broken json " + str(i).encode())
            expected.append(("error", "invalid_request"))
        elif kind == 3:
            requests.append(Client.encode({"op": "check", "token": bad_token}))
            expected.append(("error", "unknown_token"))
        else:
            requests.append(Client.encode({"op": "subscribe", "email": "bad%03d@@example.org" % i}))
            expected.append(("error", "invalid_email"))
    payload = b"\n".join(requests) + b"\n"
    with daemon.client(timeout=30) as c:
        c.send_raw(payload)
        answers = [c.recv() for _ in range(200)]
        assert c.nothing_more(0.3)
    for i, (answer, (state, error)) in enumerate(zip(answers, expected)):
        assert answer.get("state") == state and answer.get("error") == error, (i, answer)
    subscribed = {r[0] for r in daemon.query("SELECT email_key FROM signup")}
    assert subscribed == {"pipe%03d@example.org" % i for i in range(0, 200, 5)}
    smtp.wait_for(40, timeout=30)


def test_interleaved_connections(daemon, smtp):
    clients = [daemon.client() for _ in range(20)]
    try:
        # every connection sends half a request, then the other halves in reverse order
        reqs = [Client.encode({"op": "subscribe", "email": "conc%02d@example.org" % i}) + b"\n"
                for i in range(20)]
        for c, r in zip(clients, reqs):
            c.send_raw(r[:10])
        for c, r in reversed(list(zip(clients, reqs))):
            c.send_raw(r[10:])
        for c in clients:
            check_answer(c.recv(), "pending")
        for i, c in enumerate(clients):
            check_answer(c.request({"op": "subscribe", "email": "CONC%02d@example.org" % i}),
                         "pending")
            check_answer(c.request({"op": "ping"}), "ok")
    finally:
        for c in clients:
            c.close()
    mails = smtp.wait_for(20, timeout=20)
    assert sorted(m.rcpt_tos[0] for m in mails) == ["conc%02d@example.org" % i for i in range(20)]


def test_stalled_client_does_not_block_others(daemon):
    stalled = daemon.client()
    silent = daemon.client()   # connected, never sends
    try:
        stalled.send_raw(b'{"op":"subscribe","email":"stall')
        t0 = time.monotonic()
        for i in range(20):
            with daemon.client(timeout=5) as c:
                check_answer(c.request({"op": "ping"}), "ok")
                check_answer(c.request({"op": "subscribe", "email": "other%d@example.org" % i}),
                             "pending")
        assert time.monotonic() - t0 < 10
        # the stalled request completes when the rest comes
        stalled.send_raw(b'@example.org"}\n')
        check_answer(stalled.recv(), "pending")
    finally:
        stalled.close()
        silent.close()


def test_client_that_never_reads_does_not_block_others(daemon):
    """A client pipelining many requests without reading its answers."""
    hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hog.connect(daemon.public_socket)
    hog.setblocking(False)
    sent = 0
    chunk = (Client.encode({"op": "ping"}) + b"\n") * 1000
    deadline = time.monotonic() + 3
    try:
        while time.monotonic() < deadline:
            try:
                sent += hog.send(chunk)
            except BlockingIOError:
                break
        assert sent > 0
        for _ in range(5):
            with daemon.client(timeout=5) as c:
                check_answer(c.request({"op": "ping"}), "ok")
    finally:
        hog.close()
    check_answer(daemon.request({"op": "ping"}), "ok")


def test_client_disconnecting_mid_request_does_not_hurt(daemon, smtp):
    for i in range(10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.public_socket)
        s.sendall(b'{"op":"subscribe","email":"gone%d@example.org"' % i)
        s.close()
    # and some who send a full request and leave without reading
    for i in range(10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(daemon.public_socket)
        s.sendall(Client.encode({"op": "subscribe", "email": "left%d@example.org" % i}) + b"\n")
        s.close()
    check_answer(daemon.request({"op": "ping"}), "ok")
    rows = daemon.query("SELECT email_key FROM signup")
    assert not any(r[0].startswith("gone") for r in rows)


def test_answers_keep_their_own_texts_when_repeated(daemon, smtp):
    """A plain answer's line is formatted once per state and language; the
    answers with their own text (check's "please confirm", errors) must not
    get it, nor the other language."""
    with daemon.client() as c:
        p_de = check_answer(c.request({"op": "subscribe", "email": "rep1@example.org"}), "pending")
        p_en = check_answer(c.request({"op": "subscribe", "email": "rep2@example.org",
                                       "lang": "en"}), "pending")
        assert p_de["message"] != p_en["message"]
        smtp.wait_for(2)
        token = smtp.to("rep1@example.org")[-1].token
        for _ in range(2):
            chk = check_answer(c.request({"op": "check", "token": token}), "pending")
            assert chk["message"] not in (p_de["message"], p_en["message"]), chk
        err = check_answer(c.request({"op": "subscribe", "email": "nope"}), "error",
                           "invalid_email")
        assert err["message"] != p_de["message"]
        again_de = check_answer(c.request({"op": "subscribe", "email": "rep3@example.org"}),
                                "pending")
        again_en = check_answer(c.request({"op": "subscribe", "email": "rep4@example.org",
                                           "lang": "en"}), "pending")
        assert (again_de, again_en) == (p_de, p_en)
