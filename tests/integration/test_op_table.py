"""The op table (PROTO_OPS in include/proto.h) seen from the sockets: which
socket serves which op, what an unknown op gets, and in which order a request
is checked (the op, then its socket, then its fields).  The answers are
compared byte for byte: they are the protocol (CONTRACT.md)."""
import pytest

from nlhelpers import Client

FORBIDDEN_DE = (b'{"state":"error","message":"Diese Aktion ist hier nicht erlaubt.",'
                b'"error":"forbidden","detail":"not on this socket"}')
FORBIDDEN_EN = (b'{"state":"error","message":"This action is not allowed here.",'
                b'"error":"forbidden","detail":"not on this socket"}')
UNKNOWN_OP = (b'{"state":"error","message":"Die Anfrage konnte nicht verarbeitet werden.",'
              b'"error":"invalid_request","detail":"unknown op"}')


def invalid(detail, lang="de"):
    message = ("Die Anfrage konnte nicht verarbeitet werden." if lang == "de"
               else "The request could not be processed.")
    return ('{"state":"error","message":"%s","error":"invalid_request","detail":"%s"}'
            % (message, detail)).encode()


ADMIN_OPS = ["expire", "import_begin", "import_rows", "import_commit", "import_status",
             "import_abort",
             "stats", "export", "erase", "send", "status", "pause", "resume", "cancel",
             "bounce"]


def ask(path, line):
    with Client(path) as c:
        c.send_raw(line + b"\n")
        return c.recv_line()


@pytest.mark.parametrize("op", ADMIN_OPS)
def test_an_admin_op_on_the_public_socket_is_forbidden_whatever_its_fields(shared_daemon, op):
    """The socket is checked before the fields: the public socket learns
    nothing of what an admin op would accept."""
    sock = shared_daemon.public_socket
    assert ask(sock, b'{"op":"%s"}' % op.encode()) == FORBIDDEN_DE
    assert ask(sock, b'{"op":"%s","lang":"en"}' % op.encode()) == FORBIDDEN_EN
    # fields no admin op takes, and wrong types: still only forbidden
    assert ask(sock, b'{"op":"%s","bogus":[1],"issue":"x","email":7}' % op.encode()) == FORBIDDEN_DE
    assert ask(sock, b'{"lang":"en","op":"%s","message":null}' % op.encode()) == FORBIDDEN_EN


@pytest.mark.parametrize("line", [
    b'{"op":"frobnicate"}',
    b'{"op":"frobnicate","email":"a@example.org","x":[1,2]}',
    b'{"op":"SUBSCRIBE","email":"a@example.org"}',
    b'{"op":"import"}',
    b'{"op":"stats ","token":"t"}',
    b'{"op":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}',     # 32 bytes: the longest op read
    b'{"op":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}',    # 33: refused before the lookup
])
def test_an_unknown_op_is_answered_the_same_on_both_sockets(shared_daemon, line):
    assert ask(shared_daemon.public_socket, line) == UNKNOWN_OP
    assert ask(shared_daemon.admin_socket, line) == UNKNOWN_OP


def test_the_public_ops_are_parsed_alike_on_the_admin_socket(shared_daemon):
    """A public op's fields are the parser's, whichever socket it came on."""
    for sock in (shared_daemon.public_socket, shared_daemon.admin_socket):
        assert ask(sock, b'{"op":"ping","x":1}') == invalid("unknown field")
        assert ask(sock, b'{"op":"check","token":"t","ip":"::1"}') == invalid("unknown field")
        assert ask(sock, b'{"op":"confirm","lang":"en"}') == invalid("a required field is missing", "en")
        assert ask(sock, b'{"op":"subscribe","email":1}') == invalid("fields must be strings")
        assert ask(sock, b'{"op":"ping","lang":"en"}') == \
            b'{"state":"ok","message":"The service is ready."}'
        assert ask(sock, b'{"op":"check","token":"AAAA"}') == (
            b'{"state":"error","message":"Dieser Link ist ung\xc3\xbcltig oder nicht mehr bekannt.",'
            b'"error":"unknown_token","detail":"malformed token"}')


@pytest.mark.parametrize("line, detail", [
    (b'{"op":"stats","x":1}', "unknown field"),
    (b'{"op":"export","email":"a@example.org","name":"A"}', "unknown field"),
    (b'{"op":"export"}', "a required field is missing"),
    (b'{"op":"export","email":7}', "a field has the wrong type or size"),
    (b'{"op":"status","issue":"1"}', "a field has the wrong type or range"),
    (b'{"op":"expire","progress":"yes"}', "a field has the wrong type"),
    (b'{"op":"send","text":"x"}', "a required field is missing"),
    (b'{"op":"import_abort"}', "no import begun on this connection"),
    (b'{"op":"pause"}', "name the issue"),
])
def test_an_admin_op_checks_its_own_fields_on_the_admin_socket(shared_daemon, line, detail):
    """The admin ops' fields are their handlers' (FIELDS_OWN), not the
    parser's: a public field name is no help, a missing one is found."""
    assert ask(shared_daemon.admin_socket, line) == invalid(detail)
