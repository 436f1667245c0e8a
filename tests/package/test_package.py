"""The Debian package, as an admin gets it: built with dpkg-buildpackage
from a clean copy of the repository's HEAD (git archive, so nothing of the
work tree's builds leaks in), checked by lintian, installed with dpkg -i on
this machine, the installed config checked and the installed daemon run as
the user the package made, then removed (state and config stay), installed
again (a changed conffile survives), and purged (nothing stays but the
system user, as Debian does it).

This test changes the machine it runs on (root only, a disposable test
machine: scripts/test runs it as a stage of its own). It refuses to start
where newsletterd is installed already, and it puts the machine back as
it found it on every way out: purge, and the user and group removed when it
made them."""
import grp
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import pytest

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKG = "newsletterd"
CONF = "/etc/newsletterd/newsletterd.conf"
STATE = "/var/lib/newsletterd"
RUNDIR = "/run/newsletterd"
UNITDIR = "/lib/systemd/system"


def run(*cmd, check=True, **kw):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(cmd), p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p


def dpkg_status():
    p = run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG, check=False)
    return p.stdout.strip() if p.returncode == 0 else "not known"


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def host_units():
    """Files and links under /etc/systemd and /var/lib/systemd that name us."""
    found = []
    for top in ("/etc/systemd", "/var/lib/systemd"):
        for dirpath, dirnames, filenames in os.walk(top):
            found += [os.path.join(dirpath, n) for n in dirnames + filenames if PKG in n]
    return sorted(found)


@pytest.fixture(scope="module")
def machine():
    """This machine, checked to be free of newsletterd, and put back as it
    was whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("installs a package: needs root")
    for tool in ("dpkg-buildpackage", "dh", "lintian", "git"):
        if not shutil.which(tool):
            pytest.fail("%s is missing: run scripts/install-deps package" % tool)
    status = dpkg_status()
    assert status in ("not known", "un", "pn"), \
        "newsletterd is installed on this machine (%s): the package test would purge it" % status
    for path in (STATE, os.path.dirname(CONF), RUNDIR):
        assert not os.path.exists(path), "%s exists: the package test would remove it" % path
    had_user, had_group = user_exists(PKG), group_exists(PKG)
    units_before = host_units()
    work = tempfile.mkdtemp(prefix="nl-deb-")
    daemons = []
    try:
        yield {"work": work, "daemons": daemons, "units_before": units_before}
    finally:
        for p in daemons:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if dpkg_status() not in ("not known", "un", "pn"):
            run("dpkg", "--purge", PKG, check=False)
        shutil.rmtree(RUNDIR, ignore_errors=True)
        if not had_user and user_exists(PKG):
            run("userdel", PKG, check=False)
        if not had_group and group_exists(PKG):
            run("groupdel", PKG, check=False)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(machine):
    """newsletterd_VERSION_ARCH.deb built from HEAD in a clean copy."""
    src = os.path.join(machine["work"], "src")
    os.mkdir(src)
    archive = subprocess.run(["git", "-C", SOURCE_ROOT, "archive", "--format=tar", "HEAD"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", src], input=archive, check=True)
    env = dict(os.environ)
    # scripts/test has run the unit suite already; the package's own run of
    # it is dpkg-buildpackage's default without nocheck
    env["DEB_BUILD_OPTIONS"] = "nocheck parallel=%d" % min(4, os.cpu_count() or 1)
    p = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, env=env, check=False)
    with open(os.path.join(machine["work"], "build.log"), "w") as f:
        f.write(p.stdout + p.stderr)
    assert p.returncode == 0, "dpkg-buildpackage failed:\n%s" % (p.stdout + p.stderr)[-6000:]
    debs = [n for n in os.listdir(machine["work"]) if n.startswith(PKG + "_") and n.endswith(".deb")]
    assert len(debs) == 1, os.listdir(machine["work"])
    changes = [n for n in os.listdir(machine["work"]) if n.endswith(".changes")]
    assert len(changes) == 1
    return {"deb": os.path.join(machine["work"], debs[0]),
            "changes": os.path.join(machine["work"], changes[0])}


def test_lintian_reports_no_error(deb):
    """Errors fail; warnings kept are explained in debian/README.source."""
    p = run("lintian", "--fail-on", "error", "--no-tag-display-limit", deb["changes"], check=False)
    tags = [l for l in p.stdout.splitlines() if l[:2] in ("E:", "W:")]
    assert p.returncode == 0 and not [t for t in tags if t.startswith("E:")], p.stdout + p.stderr
    with open(os.path.join(SOURCE_ROOT, "debian", "README.source")) as f:
        explained = f.read()
    unexplained = [t for t in tags if t.split()[2] not in explained]
    assert not unexplained, "lintian warnings not explained in debian/README.source:\n" + "\n".join(unexplained)


def test_contents(deb):
    # debian/changelog's version is meson.build's (a release bumps both)
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        version = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
    assert run("dpkg-deb", "--field", deb["deb"], "Version").stdout.strip() == version
    listing = run("dpkg-deb", "--contents", deb["deb"]).stdout
    paths = {l.split()[5].lstrip(".") for l in listing.splitlines()}
    for want in ("/usr/sbin/newsletterd", "/usr/bin/newsletterctl", CONF,
                 UNITDIR + "/newsletterd.service", UNITDIR + "/newsletterd-expire.service",
                 UNITDIR + "/newsletterd-expire.timer",
                 "/usr/lib/sysusers.d/newsletterd.conf", "/usr/lib/tmpfiles.d/newsletterd.conf",
                 "/usr/share/man/man8/newsletterd.8.gz", "/usr/share/man/man1/newsletterctl.1.gz",
                 "/usr/share/man/man5/newsletterd.conf.5.gz",
                 "/usr/share/newsletterd/templates/confirm.de.txt",
                 "/usr/share/newsletterd/templates/confirm.en.txt",
                 "/usr/share/newsletterd/templates/welcome.de.txt",
                 "/usr/share/newsletterd/templates/welcome.en.txt",
                 "/usr/share/newsletterd/website/public/index.php",
                 "/usr/share/newsletterd/website/lib/newsletterd.php",
                 "/usr/share/doc/newsletterd/copyright"):
        assert want in paths, "%s is not in the package:\n%s" % (want, listing)
    assert not [p for p in paths if p.startswith("/var/") and not p.endswith("/")], listing
    info = run("dpkg-deb", "--info", deb["deb"], "conffiles").stdout.split()
    assert info == [CONF], info


def start_daemon(machine):
    """The installed daemon on the installed config, as the package's user
    (what the unit does: its runtime directory made for it first)."""
    os.makedirs(RUNDIR, exist_ok=True)
    pw = pwd.getpwnam(PKG)
    os.chown(RUNDIR, pw.pw_uid, pw.pw_gid)
    log = open(os.path.join(machine["work"], "daemon.log"), "ab")
    p = subprocess.Popen(["/usr/sbin/newsletterd", "-c", CONF], user=pw.pw_uid, group=pw.pw_gid,
                         extra_groups=[], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    machine["daemons"].append(p)
    deadline = time.monotonic() + 30
    while True:
        assert p.poll() is None, "the installed daemon exited %s:\n%s" % (p.returncode, daemon_log(machine))
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(RUNDIR + "/admin.sock")
            return p
        except OSError:
            assert time.monotonic() < deadline, "no admin socket:\n" + daemon_log(machine)
            time.sleep(0.1)


def stop_daemon(p):
    p.terminate()
    assert p.wait(30) == 0


def daemon_log(machine):
    with open(os.path.join(machine["work"], "daemon.log"), errors="replace") as f:
        return f.read()[-4000:]


def test_install_remove_reinstall_purge(deb, machine):
    run("dpkg", "-i", deb["deb"])
    assert dpkg_status() == "ii"
    files = [l for l in run("dpkg-query", "-L", PKG).stdout.splitlines() if os.path.isfile(l)]

    # sysusers and tmpfiles: the user, and the state directory only it may enter
    pw = pwd.getpwnam(PKG)
    assert pw.pw_dir == STATE and pw.pw_shell.endswith("nologin")
    st = os.stat(STATE)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, 0o700)
    # dh_installsystemd: enabled the Debian way (the links systemctl enable makes)
    for link in ("/etc/systemd/system/multi-user.target.wants/newsletterd.service",
                 "/etc/systemd/system/timers.target.wants/newsletterd-expire.timer"):
        assert os.path.islink(link) and os.path.exists(link), link

    # the installed config is valid as shipped, and the daemon runs on it
    check = run("/usr/sbin/newsletterd", "-c", CONF, "--check-config", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    if os.path.isdir("/run/systemd/system"):
        # where systemd runs, dpkg -i started the service: it runs on the
        # sample config; stopped here so that the test's own run below has
        # the sockets and the database
        assert run("systemctl", "is-active", "newsletterd", check=False).stdout.strip() == "active"
        run("/usr/bin/newsletterctl", "-c", CONF, "stats", "--json")
        run("systemctl", "stop", "newsletterd")
    d = start_daemon(machine)
    prom = run("/usr/bin/newsletterctl", "-c", CONF, "stats", "--prometheus").stdout
    assert 'newsletterd_subscribers{state="confirmed"} 0' in prom
    stop_daemon(d)
    assert os.path.exists(STATE + "/newsletterd.db")
    assert pwd.getpwuid(os.stat(STATE + "/newsletterd.db").st_uid).pw_name == PKG

    # the admin's change to the config
    with open(CONF, "a") as f:
        f.write("# changed by the admin\n")

    # remove: the programs go, the config and the data stay
    run("dpkg", "--remove", PKG)
    assert dpkg_status() == "rc"
    gone = [f for f in files if f != CONF and os.path.exists(f)]
    assert not gone, "left after remove: %r" % gone
    assert os.path.exists(STATE + "/newsletterd.db")
    with open(CONF) as f:
        assert f.read().endswith("# changed by the admin\n")

    # installed again: the changed conffile is kept, the data found again
    run("dpkg", "-i", deb["deb"])
    assert dpkg_status() == "ii"
    if os.path.isdir("/run/systemd/system"):
        run("systemctl", "stop", "newsletterd")
    with open(CONF) as f:
        assert f.read().endswith("# changed by the admin\n")
    assert run("/usr/sbin/newsletterd", "-c", CONF, "--check-config", check=False).returncode == 0
    d = start_daemon(machine)
    run("/usr/bin/newsletterctl", "-c", CONF, "stats", "--json")
    stop_daemon(d)
    shutil.rmtree(RUNDIR)

    # purge: config and state go too; the enable links and their state too
    run("dpkg", "--purge", PKG)
    assert dpkg_status() in ("not known", "un", "pn")
    left = [f for f in files if os.path.exists(f)]
    assert not left, "left after purge: %r" % left
    for path in (STATE, os.path.dirname(CONF), "/usr/share/newsletterd"):
        assert not os.path.exists(path), "%s left after purge" % path
    assert host_units() == machine["units_before"], host_units()
