"""Start-up on a database file that cannot be used: the daemon refuses with
a sentence that names the real cause (a full disk, a permission problem, an
empty or damaged file), and leaves the file as it was."""
import os
import subprocess

import pytest

from nlhelpers import NEWSLETTERD


def start_fails(d, prefix=()):
    """Run the daemon (as `prefix` says) to its exit; its stderr."""
    with open(d.stderr_path, "ab") as err:
        rc = subprocess.run(list(prefix) + [NEWSLETTERD, "-c", d.config_path], cwd=d.dir,
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=60).returncode
    assert rc != 0, "the daemon started"
    return d.stderr()


def test_an_empty_database_file_it_did_not_make_is_refused(daemon_factory):
    # a database with subscribers, then truncated (a bad restore, a full disk's victim)
    d = daemon_factory()
    d.subscribe("kept@example.org")
    assert d.stop() == 0
    for suffix in ("-wal", "-shm"):
        if os.path.exists(d.database + suffix):
            os.unlink(d.database + suffix)
    os.truncate(d.database, 0)
    log = start_fails(d)
    assert "is an empty file this start did not make" in log
    assert os.path.getsize(d.database) == 0          # not made into a new database
    # deleting it is how an admin starts afresh
    os.unlink(d.database)
    d.start()


def test_a_damaged_database_file_is_refused(daemon_factory):
    d = daemon_factory(start=False)
    junk = bytes((i * 7 + 3) % 256 for i in range(8192))
    fd = os.open(d.database, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, junk)
    os.close(fd)
    log = start_fails(d)
    assert "is damaged or not an SQLite database" in log
    with open(d.database, "rb") as f:
        assert f.read() == junk


def test_a_full_disk_at_start_says_so(daemon_factory, workdir):
    full = os.path.join(workdir, "full")
    os.mkdir(full)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full],
                      stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        d = daemon_factory(overrides={"daemon": {"database": "{dir}/full/db.sqlite"}})
        d.subscribe("kept@example.org")
        assert d.stop() == 0
        # then the disk fills up
        fd = os.open(os.path.join(full, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, bytes(4096)) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        log = start_fails(d)
    finally:
        subprocess.run(["umount", "-l", full])
    assert "No space left on device" in log
    assert "Input/output error" not in log


def test_a_database_directory_it_may_not_write_says_permission_denied(daemon_factory, workdir):
    if os.geteuid() != 0:
        pytest.skip("needs root to start the daemon as another user")
    data = os.path.join(workdir, "data")
    os.mkdir(data, 0o755)
    d = daemon_factory(overrides={"daemon": {"database": "{dir}/data/db.sqlite"}})
    d.subscribe("kept@example.org")
    assert d.stop() == 0
    # the daemon runs as nobody and owns its sockets' directory and the
    # database file, but not the database's directory (no room for the WAL)
    nobody = 65534
    os.chown(workdir, nobody, -1)
    for name in os.listdir(data):
        os.chown(os.path.join(data, name), nobody, -1)
    try:
        log = start_fails(d, ["setpriv", "--reuid=%d" % nobody, "--regid=%d" % nobody,
                              "--clear-groups"])
    finally:
        os.chown(workdir, 0, -1)
    assert "Permission denied" in log
    assert "Read-only file system" not in log
