"""One import at a time, owned by the admin connection that began it (the
handler context's import session): another connection can neither begin one
nor feed, commit or abort it; when its connection closes it is dropped,
staged lines and all.  The log names the import it drops or commits."""
import time

from nlhelpers import Client, check_answer


def begin(c, source):
    return c.request({"op": "import_begin", "source": source})


def rows(c, first_line, lines):
    return c.request({"op": "import_rows", "first_line": first_line, "lines": lines})


def found(daemon, email):
    with Client(daemon.admin_socket) as c:
        return check_answer(c.request({"op": "export", "email": email}), "ok")["found"]


def test_an_import_belongs_to_its_connection_and_ends_with_it(daemon):
    with Client(daemon.admin_socket) as a, Client(daemon.admin_socket) as b:
        check_answer(begin(a, "a.csv"), "ok")
        assert check_answer(rows(a, 2, ["left@example.org"]), "ok")["staged"] == 1

        answer = check_answer(begin(b, "b.csv"), "error", "unavailable")
        assert answer["detail"] == "another import is running"
        for req in ({"op": "import_rows", "first_line": 2, "lines": ["b@example.org"]},
                    {"op": "import_commit"}, {"op": "import_abort"}):
            answer = check_answer(b.request(req), "error", "invalid_request")
            assert answer["detail"] == "no import begun on this connection", req

        # the owner goes on undisturbed by all that
        assert check_answer(rows(a, 3, ["also-left@example.org"]), "ok")["staged"] == 1
        # and may begin again: the first one's lines are dropped
        check_answer(begin(a, "a2.csv"), "ok")
        assert check_answer(rows(a, 2, ["again@example.org"]), "ok")["staged"] == 1
    # both connections closed: the import is abandoned

    with Client(daemon.admin_socket) as c:
        deadline = time.monotonic() + 10
        while True:
            answer = begin(c, "c.csv")
            if answer["state"] == "ok" or time.monotonic() > deadline:
                break
            # the daemon may read this line before it sees a's end
            assert answer.get("detail") == "another import is running", answer
            time.sleep(0.05)
        check_answer(answer, "ok")
        assert check_answer(rows(c, 2, ["mine@example.org"]), "ok")["staged"] == 1
        done = check_answer(c.request({"op": "import_commit"}), "ok")
        assert (done["rows"], done["added"]) == (1, 1), done

    assert found(daemon, "mine@example.org")
    for gone in ("left@example.org", "also-left@example.org", "again@example.org",
                 "b@example.org"):
        assert not found(daemon, gone), gone
    log = daemon.stderr()
    assert "import import:a2.csv abandoned: its connection closed before commit" in log
    assert "import import:c.csv: 1 added, 0 duplicates in the file, 0 already on the list" in log
