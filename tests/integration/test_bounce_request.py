"""The bounce request on the admin socket takes the message only as
canonical base64 (what newsletterctl sends, base64.c's strict decoder):
any other spelling is an invalid_request."""
import base64
import os
import re

import pytest

from dkimhelpers import ctl
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


def test_a_message_the_daemon_does_not_take_is_kept_by_the_mta(daemon, workdir):
    # a set-up fault: the pipe's config (not the daemon's) names the daemon's
    # public socket as the admin socket, so the daemon answers forbidden.  The message was not consumed:
    # exit 75 (the MTA keeps it and retries), never another non-zero status
    # (the MTA would return it to a sender that may be forged)
    with open(daemon.config_path) as f:
        text = f.read()
    wrong = re.sub(r"(?m)^public_socket\s*=.*$", "public_socket = " + workdir + "/elsewhere.sock", text)
    wrong = re.sub(r"(?m)^admin_socket\s*=.*$", "admin_socket = " + daemon.public_socket, wrong)
    assert wrong != text
    path = os.path.join(workdir, "wrong-socket.conf")
    with open(path, "w") as f:
        f.write(wrong)
    os.chmod(path, 0o600)
    r = ctl(path, "bounce", stdin=b"Subject: hi\n\nhello\n")
    assert r.rc == 75, r
    assert "forbidden" in r.err, r
    # the right config takes the same message (exit 0)
    assert ctl(daemon.config_path, "bounce", stdin=b"Subject: hi\n\nhello\n").rc == 0
