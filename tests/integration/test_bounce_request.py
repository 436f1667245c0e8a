"""The bounce request on the admin socket takes the message only as
canonical base64 (what newsletterctl sends, base64.c's strict decoder):
any other spelling is an invalid_request."""
import base64

import pytest

from nlhelpers import Client, check_answer


def bounce(d, message):
    with Client(d.admin_socket) as c:
        return c.request({"op": "bounce", "message": message})


def test_canonical_base64_is_taken(daemon):
    for message in ("eA==", base64.b64encode(b"Subject: hi\n\nhello\n").decode(), ""):
        answer = check_answer(bounce(daemon, message), "ok")
        assert answer["action"] == "ignored", (message, answer)


@pytest.mark.parametrize("message", [
    "eA=",                      # not a multiple of 4
    "eA==    ",                 # trailing blanks (OpenSSL's decoder dropped them)
    "eA==\r\n\r\n",             # trailing line breaks
    "    eA==",                 # leading blanks
    "e=A=",                     # '=' in the middle (OpenSSL read it as 'A')
    "eB==",                     # unused bits not 0 (OpenSSL ignored them)
    "eA-_",                     # the URL-safe alphabet
    "eA\x00=",
])
def test_other_spellings_are_refused(shared_daemon, message):
    check_answer(bounce(shared_daemon, message), "error", "invalid_request")
