"""Resource limits: many connections at once, running out of file
descriptors."""
import json
import resource
import select
import socket
import time

import pytest

from nlhelpers import check_answer, wait_until


def open_connections(path, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    return socks


def readable(socks, timeout):
    p = select.poll()
    by_fd = {}
    for i, s in enumerate(socks):
        p.register(s, select.POLLIN)
        by_fd[s.fileno()] = i
    return sorted(by_fd[fd] for fd, _ in p.poll(timeout * 1000))


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("this test needs %d open files, the hard limit is %d" % (want, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_connections_over_the_limit_are_told_and_closed(daemon_factory, many_fds):
    """The daemon serves at most 1024 connections (fewer from one user): every
    further one gets one 'unavailable' answer and is closed; the ones it took
    go on working."""
    d = daemon_factory(start=False)
    d.start(nofile=4096)
    total = 1100
    socks = open_connections(d.public_socket, total)
    try:
        deadline = time.monotonic() + 10
        ready = []
        while len(ready) < total - 1024 and time.monotonic() < deadline:
            ready = readable(socks, 0.2)
        time.sleep(0.3)
        ready = readable(socks, 0.2)
        assert len(ready) >= total - 1024, len(ready)
        served = [i for i in range(total) if i not in set(ready)]
        assert served == list(range(len(served))), "refused connections before served ones"
        for i in ready:
            s = socks[i]
            s.settimeout(2)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                assert chunk, "closed without an answer"
                data += chunk
            check_answer(json.loads(data), "error", "unavailable")
            assert s.recv(4096) == b""
        for i in (served[0], served[len(served) // 2], served[-1]):
            socks[i].settimeout(5)
            socks[i].sendall(b'{"op":"ping"}\n')
            assert b'"ok"' in socks[i].recv(4096)
    finally:
        for s in socks:
            s.close()
    # and once they are gone, new ones are taken again
    wait_until(lambda: d.request({"op": "ping"})["state"] == "ok", timeout=10,
               what="new connections to be served")


def test_running_out_of_file_descriptors_does_not_spin(daemon_factory, many_fds):
    """Fewer open files allowed than connections come in (below the daemon's
    own connection limits): it must neither spin nor flood its log."""
    d = daemon_factory(start=False)
    d.start(nofile=256)
    socks = open_connections(d.public_socket, 300)
    try:
        time.sleep(0.5)
        cpu0, log0 = d.cpu_seconds(), len(d.stderr())
        time.sleep(1.5)
        cpu1, log1 = d.cpu_seconds(), len(d.stderr())
        # a connection the daemon took still works meanwhile
        socks[0].settimeout(5)
        socks[0].sendall(b'{"op":"ping"}\n')
        assert b'"ok"' in socks[0].recv(4096)
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: d.request({"op": "ping"})["state"] == "ok", timeout=10,
               what="new connections to be served")
    assert log1 - log0 < 64 * 1024, "%d bytes of log in 1.5 s" % (log1 - log0)
    assert cpu1 - cpu0 < 0.5, "%.2f s of CPU in 1.5 s while idle" % (cpu1 - cpu0)
