"""Who may use the admin socket, decided without a user database lookup per
connect (NSS may block the event loop, e.g. on LDAP): admin_users and
admin_group are resolved at start and at reload, a peer's groups are those
the kernel reports for its process."""
import grp
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from nlhelpers import WRAPPER, check_answer, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

# no passwd entry has this uid: only the kernel knows its groups
STRANGER_UID = 54321
NOGROUP = grp.getgrnam("nogroup").gr_gid

RAW_CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(10)
try:
    s.sendall(b'{"op":"stats"}\n')
except OSError:
    pass    # a refused peer is answered and closed at once: the answer is there
data = b""
while b"\n" not in data:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        break
    if not chunk:
        break
    data += chunk
print(json.dumps(json.loads(data.split(b"\n")[0])))
"""


def stats_as(path, uid, gid, groups):
    """One stats request as a process of uid/gid with these supplementary
    groups; the daemon's answer."""
    def become():
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    p = subprocess.run([sys.executable, "-c", RAW_CLIENT, path], capture_output=True,
                       preexec_fn=become, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def open_dir(d):
    os.chmod(d.dir, 0o755)


def test_a_process_in_the_admin_group_is_admitted_without_a_user_entry(daemon_factory):
    d = daemon_factory({"daemon": {"admin_group": "nogroup"}})
    open_dir(d)
    # the group is a supplementary one, not the process's own, and no user
    # database knows the uid: only the kernel's view of the process tells
    answer = stats_as(d.admin_socket, STRANGER_UID, STRANGER_UID, [NOGROUP])
    check_answer(answer, "ok")
    # the same uid without the group: refused (the mode opened for the test)
    os.chmod(d.admin_socket, 0o666)
    answer = stats_as(d.admin_socket, STRANGER_UID, STRANGER_UID, [])
    check_answer(answer, "error", "forbidden")


def test_admin_users_take_effect_at_reload(daemon_factory):
    d = daemon_factory()
    open_dir(d)
    os.chmod(d.admin_socket, 0o666)
    nobody = 65534
    check_answer(stats_as(d.admin_socket, nobody, nobody, []), "error", "forbidden")
    d.configure({"daemon": {"admin_users": "nobody"}})
    d.signal(signal.SIGHUP)
    wait_until(lambda: "reloaded" in d.stderr(), timeout=10, what="the reload")
    check_answer(stats_as(d.admin_socket, nobody, nobody, []), "ok")
    d.configure()
    d.signal(signal.SIGHUP)
    wait_until(lambda: d.stderr().count("reloaded") >= 2, timeout=10, what="the second reload")
    check_answer(stats_as(d.admin_socket, nobody, nobody, []), "error", "forbidden")


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
@pytest.mark.skipif(bool(WRAPPER), reason="traces the daemon itself, not a wrapper")
def test_admin_connects_look_up_no_user_database(daemon_factory, workdir):
    d = daemon_factory({"daemon": {"admin_users": "nobody", "admin_group": "nogroup"}})
    open_dir(d)
    os.chmod(d.admin_socket, 0o666)
    trace = os.path.join(workdir, "strace.out")
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=openat,open,connect,accept4",
                               "-o", trace, "-p", str(d.proc.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def attached():
            check_answer(d.request({"op": "ping"}), "ok")
            return os.path.exists(trace) and "accept4" in open(trace).read()
        wait_until(attached, timeout=10, what="strace to attach")
        # an admin user, a group member, a stranger
        answers = [stats_as(d.admin_socket, 65534, 65534, []),
                   stats_as(d.admin_socket, STRANGER_UID, STRANGER_UID, [NOGROUP]),
                   stats_as(d.admin_socket, STRANGER_UID, STRANGER_UID, [])]
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
    text = open(trace).read()
    for what in ("/etc/passwd", "/etc/group", "nscd", "/var/lib/sss", "libnss_"):
        assert what not in text, "%s looked up on an admin connect:\n%s" % (what, text[-3000:])
    check_answer(answers[0], "ok")
    check_answer(answers[1], "ok")
    check_answer(answers[2], "error", "forbidden")
