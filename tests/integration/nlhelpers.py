"""Helpers for the newsletterd integration tests: a JSON-lines client for the
daemon's sockets, SMTP servers to deliver to (a capturing aiosmtpd server,
Postfix's smtp-sink, a relay that never answers), the daemon process itself,
and small tools to read its database and the mails it sends.

Everything here waits by polling with a deadline; nothing sleeps for a fixed
long time.
"""
import base64
import email
import hashlib
import json
import os
import shlex
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from email import policy

NEWSLETTERD = os.environ.get("NEWSLETTERD", "")
# scripts/test runs the suite once more with the daemon under valgrind:
# NEWSLETTERD_WRAPPER is the command to start it under, NEWSLETTERD_SLOW how
# much longer than usual its start, stop and answers may take.
WRAPPER = shlex.split(os.environ.get("NEWSLETTERD_WRAPPER", ""))
SLOW = float(os.environ.get("NEWSLETTERD_SLOW", "1") or 1)
DAY = 86400
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"

# What the sanitizers print when they find something.
SANITIZER_MARKERS = ("runtime error", "ERROR: AddressSanitizer", "LeakSanitizer",
                     "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer")

# A token in a mail: a run of exactly 43 base64url characters.
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")


# ---------------------------------------------------------------- waiting

def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    timeout *= SLOW
    """Poll predicate() until it returns something truthy; return that value.
    Raises AssertionError naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- client

class ConnectionClosed(Exception):
    pass


class Client:
    """One connection to a daemon socket speaking JSON lines."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def encode(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def send(self, obj):
        self.send_raw(self.encode(obj) + b"\n")

    def send_raw(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def recv_line(self, timeout=None):
        """The next answer line (bytes, without its newline)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from %s within the timeout" % self.path)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no answer from %s within the timeout" % self.path)
            except ConnectionResetError:
                raise ConnectionClosed("connection reset")
            if not chunk:
                raise ConnectionClosed("connection closed with %r unread" % self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def recv(self, timeout=None):
        line = self.recv_line(timeout)
        answer = json.loads(line.decode("utf-8"))
        assert isinstance(answer, dict), line
        return answer

    def request(self, obj, timeout=None):
        self.send(obj)
        return self.recv(timeout)

    def nothing_more(self, wait=0.3):
        """True when no further byte arrives within `wait` seconds (or EOF)."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        if chunk:
            self.buf += chunk
            return False
        return True

    def wait_closed(self, timeout=5.0):
        """True when the daemon closes the connection (EOF or reset) in time;
        any data still arriving is kept in self.buf."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk


def check_answer(answer, state, error=None):
    """Assert the common shape of an answer and its state/error."""
    assert answer.get("state") == state, answer
    assert isinstance(answer.get("message"), str) and answer["message"].strip(), answer
    if error is None:
        assert "error" not in answer, answer
    else:
        assert answer.get("error") == error, answer
    return answer


# ---------------------------------------------------------------- SMTP servers

class Mail:
    def __init__(self, mail_from, rcpt_tos, data, helo=None):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.data = data
        self.helo = helo        # the name the client gave in EHLO/HELO
        self.received = time.monotonic()

    @property
    def msg(self):
        return email.message_from_bytes(self.data, policy=policy.default)

    @property
    def body(self):
        return self.msg.get_body(preferencelist=("plain",)).get_content()

    def tokens(self):
        return TOKEN_RE.findall(self.body)

    @property
    def token(self):
        found = self.tokens()
        assert len(found) == 1, "expected one token link in the mail, found %r" % found
        return found[0]

    def __repr__(self):
        return "Mail(from=%r, to=%r, %d bytes)" % (self.mail_from, self.rcpt_tos, len(self.data))


class CaptureSMTP:
    """An aiosmtpd server in this process that keeps every mail it receives."""

    def __init__(self, port=None, **smtp_options):
        self.port = port or free_port()
        self.mails = []
        self.logins = []        # (login, password) of every AUTH attempt
        self.cond = threading.Condition()
        self.controller = None
        self.smtp_options = smtp_options

    def authenticate(self, login, password):
        """Override with a checker; the default accepts nothing."""
        return False

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        with self.cond:
            self.logins.append((login, password))
        return AuthResult(success=self.authenticate(login, password))

    # aiosmtpd handler hook
    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        if data is None:
            data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        mail = Mail(envelope.mail_from, envelope.rcpt_tos, bytes(data), session.host_name)
        with self.cond:
            self.mails.append(mail)
            self.cond.notify_all()
        return "250 2.0.0 Ok: captured"

    def start(self):
        from aiosmtpd.controller import Controller
        options = dict(self.smtp_options)
        if options.get("auth_required"):
            options.setdefault("auth_require_tls", False)
            options.setdefault("authenticator", self._authenticator)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=10, **options)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def count(self):
        with self.cond:
            return len(self.mails)

    def snapshot(self):
        with self.cond:
            return list(self.mails)

    def wait_for(self, n, timeout=10.0):
        """Wait until at least n mails arrived; return all mails so far."""
        timeout *= SLOW
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.mails) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("expected %d mails within %.1fs, got %d: %r"
                                         % (n, timeout, len(self.mails), self.mails))
                self.cond.wait(left)
            return list(self.mails)

    def wait_for_rcpt(self, rcpt, n=1, timeout=10.0):
        """Wait until n mails to rcpt arrived; return those mails."""
        timeout *= SLOW
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [m for m in self.mails if rcpt in m.rcpt_tos]
                if len(found) >= n:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("expected %d mails to %s within %.1fs, got %r"
                                         % (n, rcpt, timeout, self.mails))
                self.cond.wait(left)

    def to(self, rcpt):
        with self.cond:
            return [m for m in self.mails if rcpt in m.rcpt_tos]


class SmtpSink:
    """Postfix's smtp-sink as a child process, with its reject options."""

    def __init__(self, *options, port=None):
        self.port = port or free_port()
        self.options = list(options)
        self.proc = None

    def start(self):
        cmd = [SMTP_SINK]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += self.options + ["127.0.0.1:%d" % self.port, "100"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is not None or port_open(self.port), timeout=10,
                   what="smtp-sink to listen")
        assert self.proc.poll() is None, "smtp-sink exited with %s" % self.proc.returncode
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port


class LoopbackListener:
    """A TCP port on 127.0.0.1 and a thread that takes its connections; what
    becomes of each is the subclass's on_accept().  `reuse`: SO_REUSEADDR
    (the accepted sockets inherit it), so that another server can bind the
    port right after close() while connections are still closing."""

    def __init__(self, backlog=16, reuse=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if reuse:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if self.closed:
                    conn.close()
                    return
            self.on_accept(conn)

    def on_accept(self, conn):
        """Keep the connection open and silent (until close())."""
        with self.lock:
            self.conns.append(conn)

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def close(self):
        with self.lock:
            self.closed = True
            conns, self.conns = self.conns, []
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self.thread.join(5)


class BlackHoleRelay(LoopbackListener):
    """A TCP port that takes connections and never says a word: an SMTP
    client waits there until its own timeout."""

    def connected(self):
        with self.lock:
            return len(self.conns)

    def wait_connected(self, n=1, timeout=10.0):
        wait_until(lambda: self.connected() >= n, timeout=timeout,
                   what="%d connections to the silent relay" % n)


class AfterDataRelay(LoopbackListener):
    """A relay that talks SMTP up to the end of a message's data, counts the
    message in `messages` and sets `data_ended`, and then does what
    `after_data(conn, f, n)` says for the n-th message: return True to go
    on with the session (having answered), False to end it."""

    def __init__(self):
        self.data_ended = threading.Event()
        self.messages = 0
        super().__init__()

    def on_accept(self, conn):
        super().on_accept(conn)
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def after_data(self, conn, f, n):
        raise NotImplementedError

    def _serve(self, conn):
        try:
            f = conn.makefile("rb")
            conn.sendall(b"220 relay.test ESMTP\r\n")
            while True:
                line = f.readline(4096)
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 relay.test\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    while line not in (b".\r\n", b""):
                        line = f.readline(65536)
                    if not line:
                        return
                    with self.lock:
                        self.messages += 1
                        n = self.messages
                    self.data_ended.set()
                    if not self.after_data(conn, f, n):
                        return
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return


class SilentAfterDataRelay(AfterDataRelay):
    """After the data, never a word more: the client waits for the reply
    to its final "." until its own timeout."""

    def after_data(self, conn, f, n):
        while f.readline(4096):     # until the client gives up
            pass
        return False


class HangUpAfterDataRelay(AfterDataRelay):
    """For the first `hang_ups` messages, closes the connection instead of
    answering the final ".": the client cannot know whether the relay has
    the mail (RFC 1047).  Later messages get "250"."""

    def __init__(self, hang_ups=1):
        self.hang_ups = hang_ups
        super().__init__()

    def after_data(self, conn, f, n):
        if n <= self.hang_ups:
            conn.shutdown(socket.SHUT_RDWR)
            return False
        conn.sendall(b"250 2.0.0 queued\r\n")
        return True


class Postfix:
    """A private Postfix instance as the relay (`postfix -c DIR`): its own
    main.cf and master.cf, queue and data directories in a directory of its
    own, smtpd on a free loopback port, every recipient at example.org
    delivered by virtual(8) into one Maildir, everything else refused (no
    mail ever leaves the machine).  The system's instance is never touched.
    `main_cf` adds or overrides main.cf parameters, e.g. smtpd_timeout="3s";
    `services` adds master.cf lines (a pipe to newsletterctl, say).
    Needs root (master(8) starts as root) and the postfix package."""

    BIN = shutil.which("postfix") or "/usr/sbin/postfix"

    @classmethod
    def available(cls):
        """None when a private instance can run here, else why not."""
        if not os.access(cls.BIN, os.X_OK):
            return "postfix is not installed"
        if os.geteuid() != 0:
            return "a Postfix instance needs root"
        try:
            import pwd
            pwd.getpwnam("postfix")
        except KeyError:
            return "there is no postfix user"
        return None

    def __init__(self, port=None, services=(), **main_cf):
        import pwd
        self.port = port or free_port()
        # the daemons run as the postfix user: their directory must be
        # reachable for it, which a test's private 0700 directory is not
        self.dir = tempfile.mkdtemp(prefix="pf", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.maildir = os.path.join(self.dir, "mail", "maildir")
        owner = pwd.getpwnam("postfix")
        params = {
            "compatibility_level": "3.6",
            "queue_directory": os.path.join(self.dir, "queue"),
            "data_directory": os.path.join(self.dir, "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "relay.test",
            "mydomain": "relay.test",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "maillog_file": os.path.join(self.dir, "maillog"),
            "maillog_file_prefixes": "/tmp",
            "virtual_mailbox_domains": "example.org",
            "virtual_mailbox_base": os.path.join(self.dir, "mail"),
            "virtual_mailbox_maps": "static:maildir/",
            "virtual_uid_maps": "static:%d" % owner.pw_uid,
            "virtual_gid_maps": "static:%d" % owner.pw_gid,
            # nothing goes anywhere but into the Maildir
            "default_transport": "error:5.7.1 no mail leaves a test relay",
            "relay_transport": "error:5.7.1 no mail leaves a test relay",
            "smtpd_helo_required": "yes",
            "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname",
        }
        params.update(main_cf)
        with open(os.path.join(self.dir, "main.cf"), "w") as f:
            for k, v in params.items():
                f.write("%s = %s\n" % (k, v))
        services = [
            "127.0.0.1:%d inet n - n - - smtpd" % self.port,
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ] + list(services)
        with open(os.path.join(self.dir, "master.cf"), "w") as f:
            f.write("\n".join(services) + "\n")
        for sub in ("queue", "data", "mail"):
            os.mkdir(os.path.join(self.dir, sub))
        for sub in ("data", "mail"):
            os.chown(os.path.join(self.dir, sub), owner.pw_uid, owner.pw_gid)

    def _postfix(self, *args):
        # without a terminal postfix(1) reports only to syslog: keep its
        # complaints in maillog_file, and the exit status
        p = subprocess.run([self.BIN, "-c", self.dir] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        return p.returncode

    def master_pid(self):
        try:
            with open(os.path.join(self.dir, "queue", "pid", "master.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self):
        rc = self._postfix("start")
        assert rc == 0, "postfix start exited %s:\n%s" % (rc, self.log())
        wait_until(lambda: port_open(self.port), timeout=20, what="postfix to listen")
        return self

    def stop(self):
        """Stop the instance and wait until its master(8) is gone."""
        pid = self.master_pid()
        if pid is None:
            return
        self._postfix("stop")
        wait_until(lambda: self.master_pid() is None and not port_open(self.port), timeout=20,
                   what="postfix to stop")

    def destroy(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def delivered(self):
        """{recipient: number of mails in the Maildir}, by Delivered-To."""
        counts = {}
        new = os.path.join(self.maildir, "new")
        try:
            names = os.listdir(new)
        except FileNotFoundError:
            return counts
        for name in names:
            with open(os.path.join(new, name), "rb") as f:
                msg = email.message_from_binary_file(f, policy=policy.default)
            rcpt = str(msg.get("Delivered-To", "")).lower()
            counts[rcpt] = counts.get(rcpt, 0) + 1
        return counts

    def queue_empty(self):
        """True when nothing waits in the instance's queue."""
        for sub in ("incoming", "active", "deferred", "maildrop"):
            for _root, _dirs, files in os.walk(os.path.join(self.dir, "queue", sub)):
                if files:
                    return False
        return True


# ---------------------------------------------------------------- tokens and the database

def token_raw(token):
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token
    raw = base64.urlsafe_b64decode(token + "=")
    assert len(raw) == 32
    return raw


def token_hash(token):
    return hashlib.sha256(token_raw(token)).digest()


def new_token():
    """A fresh token in the daemon's format: (text, sha256 of the raw bytes)."""
    raw = secrets.token_bytes(32)
    text = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    assert len(text) == 43
    return text, hashlib.sha256(raw).digest()


def db_connect(path):
    con = sqlite3.connect(path, timeout=10)
    con.row_factory = sqlite3.Row
    return con


def db_query(path, sql, args=()):
    """Run one query on a fresh connection; a list of sqlite3.Row."""
    con = db_connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_dump(path):
    """Every row of every table, for before/after comparisons."""
    con = db_connect(path)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: [tuple(r) for r in con.execute("SELECT * FROM %s ORDER BY 1" % t)]
                for t in tables}
    finally:
        con.close()


def mint_unsubscribe_token(path, subscription_id):
    """Insert an unsubscribe token for a subscription, as a newsletter mail
    would carry one; returns its text."""
    text, digest = new_token()
    con = db_connect(path)
    try:
        with con:
            con.execute("INSERT INTO token (hash, subscription_id, kind, issued_at, expires_at)"
                        " VALUES (?, ?, 'unsubscribe', ?, NULL)",
                        (digest, subscription_id, int(time.time())))
    finally:
        con.close()
    return text


# ---------------------------------------------------------------- the daemon

DEFAULT_CONFIG = {
    "daemon": {
        "public_socket": "{dir}/public.sock",
        "admin_socket": "{dir}/admin.sock",
        "database": "{dir}/db.sqlite",
        "log_level": "debug",
    },
    "smtp": {
        "url": "{smtp_url}",
        "starttls": "off",
        "from": "Newsletter Test <newsletter@example.org>",
        "max_connections": "2",
        "timeout": "5s",
        "retry_initial": "1s",
        "retry_max": "2s",
        "give_up_after": "1h",
    },
    "subscription": {
        "confirm_url": "http://127.0.0.1:8080/confirm?token={token}",
        "unsubscribe_url": "http://127.0.0.1:8080/unsubscribe?token={token}",
        "confirm_ttl": "30d",
        "resend_interval": "1h",
        "expired_retention": "90d",
        "lists": "default, events",
    },
}

CONFIRM_PREFIX = "http://127.0.0.1:8080/confirm?token="


def render_config(sections):
    """INI text from {section: {key: value}}; a value of None drops the key."""
    out = []
    for section, keys in sections.items():
        out.append("[%s]" % section)
        for key, value in keys.items():
            if value is not None:
                out.append("%s = %s" % (key, value))
        out.append("")
    return "\n".join(out)


def merge_config(base, overrides):
    merged = {s: dict(k) for s, k in base.items()}
    for section, keys in (overrides or {}).items():
        merged.setdefault(section, {}).update(keys)
    return merged


class Daemon:
    """One newsletterd process on its own directory, config and database."""

    def __init__(self, directory, smtp_url, overrides=None, name="newsletterd"):
        self.dir = directory
        self.name = name
        self.smtp_url = smtp_url
        self.config_path = os.path.join(directory, name + ".conf")
        self.stderr_path = os.path.join(directory, name + ".stderr")
        self.proc = None
        self.runs = []          # every Popen started, for the sanitizer check
        self.env = {}           # added to the environment it starts with
        self.clock_offset = 0   # its clock is this many seconds ahead (restart_later)
        self.sections = None
        self.configure(overrides)

    # -- configuration

    def configure(self, overrides=None, smtp_url=None):
        if smtp_url is not None:
            self.smtp_url = smtp_url
        base = merge_config(DEFAULT_CONFIG, overrides)
        sections = {}
        for section, keys in base.items():
            sections[section] = {}
            for key, value in keys.items():
                if isinstance(value, str):
                    value = (value.replace("{dir}", self.dir)
                             .replace("{smtp_url}", self.smtp_url))
                sections[section][key] = value
        self.sections = sections
        self.write_config(render_config(sections))

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    @property
    def public_socket(self):
        return self.sections["daemon"]["public_socket"]

    @property
    def admin_socket(self):
        return self.sections["daemon"]["admin_socket"]

    @property
    def database(self):
        return self.sections["daemon"]["database"]

    # -- process

    def spawn(self, nofile=None):
        """Start the process without waiting for it to be ready; `nofile`
        sets its limit of open files."""
        assert NEWSLETTERD, "NEWSLETTERD is not set"
        preexec = None
        if nofile is not None:
            import resource

            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        err = open(self.stderr_path, "ab")
        try:
            proc = subprocess.Popen(WRAPPER + [NEWSLETTERD, "-c", self.config_path], cwd=self.dir,
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                    preexec_fn=preexec,
                                    env=dict(os.environ, **self.env) if self.env else None)
        finally:
            err.close()
        self.runs.append(proc)
        return proc

    def cpu_seconds(self):
        """User + system CPU time the running daemon used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self, timeout=15.0, nofile=None):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = self.spawn(nofile)
        wait_until(self._ready, timeout=timeout * SLOW, what="newsletterd to answer ping")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("newsletterd exited with %s during start-up:\n%s"
                                 % (self.proc.returncode, self.stderr()))
        try:
            with Client(self.public_socket, timeout=2) as c:
                return c.request({"op": "ping"}).get("state") == "ok"
        except (OSError, ConnectionClosed, TimeoutError, ValueError):
            return False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM; the exit status (asserting it came within `timeout`)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            timeout *= SLOW
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("newsletterd did not exit within %.0fs of SIGTERM" % timeout)
        return self.proc.returncode

    # -- its clock (NEWSLETTERD_TEST_CLOCK_OFFSET)

    def set_clock(self, offset):
        """From the next start on, the daemon's clock runs `offset` seconds
        ahead of the real time (0: the real time).  It may only go forward."""
        assert offset >= self.clock_offset, "the clock cannot go back"
        self.clock_offset = offset
        if offset:
            self.env["NEWSLETTERD_TEST_CLOCK_OFFSET"] = str(offset)
        else:
            self.env.pop("NEWSLETTERD_TEST_CLOCK_OFFSET", None)

    def restart_later(self, seconds):
        """Stop the daemon and start it again `seconds` later by its clock:
        how a test lets days pass, with no date in the database rewritten."""
        rc = self.stop()
        assert rc == 0, "%s exited %s after SIGTERM" % (self.name, rc)
        self.set_clock(self.clock_offset + seconds)
        return self.start()

    def now(self):
        """The time by the daemon's clock."""
        return time.time() + self.clock_offset

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def sanitizer_reports(self):
        text = self.stderr()
        return [m for m in SANITIZER_MARKERS if m in text]

    # -- talking to it

    def client(self, timeout=10.0):
        return Client(self.public_socket, timeout=timeout)

    def request(self, obj, timeout=10.0):
        with self.client(timeout) as c:
            return c.request(obj)

    def subscribe(self, address, **fields):
        req = {"op": "subscribe", "email": address}
        req.update(fields)
        return self.request(req)

    def query(self, sql, args=()):
        return db_query(self.database, sql, args)

    def outbox(self):
        return [dict(r) for r in self.query("SELECT * FROM outbox ORDER BY id")]

    def subscription(self, email_key, list_name="default"):
        """The subscription row of an address and list: linked to its
        subscriber, or a pending sign-up kept apart (sql/009)."""
        rows = self.query("SELECT s.* FROM subscription s JOIN subscriber u"
                          " ON u.id = s.subscriber_id WHERE u.email_key = ? AND s.list = ?"
                          " UNION ALL SELECT s.* FROM subscription s WHERE s.id IN"
                          " (SELECT subscription_id FROM signup WHERE email_key = ? AND list = ?)",
                          (email_key, list_name, email_key, list_name))
        return dict(rows[0]) if rows else None

    def settle(self, timeout=10.0):
        """Wait until no mail is queued or being sent; the outbox rows."""
        return self.wait_outbox(
            lambda rows: all(r["state"] in ("sent", "failed") for r in rows),
            timeout=timeout, what="every mail to be sent")

    def wait_outbox(self, predicate, timeout=10.0, what="outbox state"):
        """Wait until predicate(list of outbox rows) holds; return the rows."""
        def check():
            rows = self.outbox()
            return rows if predicate(rows) else None
        return wait_until(check, timeout=timeout, what=what)


def assert_no_sanitizer_report(text):
    found = [m for m in SANITIZER_MARKERS if m in text]
    assert not found, "sanitizer report (%s):\n%s" % (", ".join(found), text[-4000:])


def run_daemon(args, timeout=30):
    """Run newsletterd to completion; (exit status, stdout, stderr), checked
    for sanitizer reports."""
    p = subprocess.run([NEWSLETTERD] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert_no_sanitizer_report(err)
    return p.returncode, out, err


def check_config(path, timeout=30):
    """Run --check-config; (exit status, stdout, stderr)."""
    return run_daemon(["-c", path, "--check-config"], timeout)


def raw_lines(data):
    """Split raw mail bytes into lines, checking every one ends in CRLF."""
    assert data.endswith(b"\r\n"), data[-20:]
    lines = data.split(b"\r\n")
    assert lines[-1] == b""
    return lines[:-1]
