"""A private Dovecot (Debian's dovecot-imapd) for the IMAP bounce intake's
tests: started in the foreground with a config of its own in a directory of
its own, IMAP (STARTTLS) and IMAPS on free loopback ports, a self-signed
certificate made here with openssl, one user in a passwd-file, a Maildir.
No system service is touched.  As root its mail belongs to `nobody` (a
Dovecot user may not be root); otherwise everything runs as the caller."""
import os
import pwd
import grp
import shutil
import subprocess
import tempfile

from nlhelpers import free_port, port_open, wait_until

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
USER = "bounces@example.org"
PASSWORD = "imap-secret-Ü1"


def available():
    """None when a private Dovecot can run here, else why not."""
    if not os.access(DOVECOT, os.X_OK) or not os.access(DOVEADM, os.X_OK):
        return "dovecot-imapd is not installed"
    if os.geteuid() == 0:
        for user in ("dovecot", "dovenull", "nobody"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return "there is no %s user" % user
    return None


class Dovecot:
    def __init__(self):
        # reachable for Dovecot's own users when we are root
        self.dir = tempfile.mkdtemp(prefix="dc", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"],
                       check=True, capture_output=True)
        if os.geteuid() == 0:
            internal, login = "dovecot", "dovenull"
            internal_group = grp.getgrgid(pwd.getpwnam("dovecot").pw_gid).gr_name
            owner = pwd.getpwnam("nobody")
        else:
            internal = login = pwd.getpwuid(os.getuid()).pw_name
            internal_group = grp.getgrgid(os.getgid()).gr_name
            owner = pwd.getpwuid(os.getuid())
        self.home = os.path.join(self.dir, "home")
        os.mkdir(self.home)
        os.chown(self.home, owner.pw_uid, owner.pw_gid)
        self.passwd = os.path.join(self.dir, "passwd")
        with open(self.passwd, "w") as f:
            f.write("%s:{PLAIN}%s\n" % (USER, PASSWORD))
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""".format(d=self.dir, internal=internal, internal_group=internal_group, login=login,
           passwd=self.passwd, uid=owner.pw_uid, gid=owner.pw_gid, home=self.home,
           imap=self.imap_port, imaps=self.imaps_port))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.imaps_port) and port_open(self.imap_port),
                   timeout=15, what="dovecot to listen")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def url(self, tls="imaps", mailbox="INBOX"):
        if tls == "imaps":
            return "imaps://localhost:%d/%s" % (self.imaps_port, mailbox)
        return "imap://localhost:%d/%s" % (self.imap_port, mailbox)

    def doveadm(self, *args, stdin=None):
        p = subprocess.run([DOVEADM, "-c", self.conf] + list(args), input=stdin,
                           capture_output=True, timeout=30)
        assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p.stdout.decode("utf-8", "replace")

    def deliver(self, message):
        """Put MESSAGE (str or bytes) into the INBOX, unseen, as an MDA would."""
        if isinstance(message, str):
            message = message.encode("utf-8")
        self.doveadm("save", "-u", USER, "-m", "INBOX", stdin=message)

    def messages(self):
        """[(uid, set of flags, Subject)] of the INBOX, expunged ones gone."""
        out = self.doveadm("-f", "tab", "fetch", "-u", USER, "uid flags hdr.subject",
                           "mailbox", "INBOX", "all")
        rows = []
        for line in out.splitlines()[1:]:
            if not line.strip():
                continue
            uid, flags, subject = (line.split("\t") + ["", ""])[:3]
            rows.append((int(uid), set(flags.split()), subject.strip()))
        return rows
