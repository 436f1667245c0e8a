"""One import at a time, owned by the admin connection that began it (the
handler context's import session): another connection can neither begin one
nor feed, commit or abort it; when its connection closes before the commit
it is dropped, staged lines and all; once committed, it is applied (a slice
at a time) whether or not anyone waits.  The log names the import it drops
or commits."""
import time

from nlhelpers import Client, check_answer


def begin(c, source):
    return c.request({"op": "import_begin", "source": source})


def rows(c, first_line, lines):
    return c.request({"op": "import_rows", "first_line": first_line, "lines": lines})


def commit(c):
    """Commit, then follow the import to its end (import_status)."""
    answer = check_answer(c.request({"op": "import_commit"}), "ok")
    deadline = time.monotonic() + 30
    while not answer["done"]:
        assert time.monotonic() < deadline, answer
        time.sleep(0.01)
        answer = check_answer(c.request({"op": "import_status"}), "ok")
    return answer


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
        answer = check_answer(b.request({"op": "import_status"}), "error", "invalid_request")
        assert answer["detail"] == "no import committed on this connection"

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
        done = commit(c)
        assert (done["rows"], done["added"]) == (1, 1), done
        # reported once: the session is over
        check_answer(c.request({"op": "import_status"}), "error", "invalid_request")

    assert found(daemon, "mine@example.org")
    for gone in ("left@example.org", "also-left@example.org", "again@example.org",
                 "b@example.org"):
        assert not found(daemon, gone), gone
    log = daemon.stderr()
    assert "import import:a2.csv abandoned: its connection closed before commit" in log
    assert "import import:c.csv: 1 added, 0 duplicates in the file, 0 already on the list" in log


def test_a_committed_import_is_applied_when_its_connection_closes(daemon):
    """Committed is committed: the connection that began it closing while
    the slices are applied drops nothing; the log has the counts, and the
    next import may begin once it is done.  (5,000 addresses: many slices.)"""
    n = 5000
    with Client(daemon.admin_socket) as a:
        check_answer(begin(a, "big.csv"), "ok")
        lines = ["big%d@example.org" % i for i in range(n)] + ["big0@example.org"]
        for first in range(0, len(lines), 2000):
            check_answer(rows(a, first + 1, lines[first:first + 2000]), "ok")
        answer = check_answer(a.request({"op": "import_commit"}), "ok")
        assert answer["rows"] == n + 1 and answer["duplicates"] == 1, answer
        # nobody else learns of it, and its lines are all in
        with Client(daemon.admin_socket) as b:
            check_answer(b.request({"op": "import_status"}), "error", "invalid_request")
        more = a.request({"op": "import_rows", "first_line": 1, "lines": ["late@example.org"]})
        assert check_answer(more, "error", "invalid_request")["detail"] == \
            "the import is committed already"
    # closed: applied all the same
    line = "import import:big.csv: %d added, 1 duplicates in the file, 0 already on the list" % n
    deadline = time.monotonic() + 60
    while line not in daemon.stderr():
        assert time.monotonic() < deadline, daemon.stderr()[-2000:]
        time.sleep(0.05)
    assert found(daemon, "big0@example.org") and found(daemon, "big%d@example.org" % (n - 1))
    assert not found(daemon, "late@example.org")
    with Client(daemon.admin_socket) as c:
        check_answer(begin(c, "next.csv"), "ok")
        check_answer(rows(c, 1, ["next@example.org"]), "ok")
        assert commit(c)["added"] == 1
