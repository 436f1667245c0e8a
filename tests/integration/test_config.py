"""--check-config: valid files pass, every kind of mistake is reported as
FILE:LINE: naming the right line, nothing is created."""
import os

import pytest

from nlhelpers import DEFAULT_CONFIG, check_config, merge_config, render_config

SOURCE_ROOT = os.environ.get("SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def config_text(workdir, overrides=None):
    sections = merge_config(DEFAULT_CONFIG, overrides)
    text = render_config(sections)
    return text.replace("{dir}", workdir).replace("{smtp_url}", "smtp://127.0.0.1:2525")


def write(workdir, text, name="test.conf"):
    path = os.path.join(workdir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError("%r not in the config" % needle)


def run_check(path):
    return check_config(path)


def test_valid_config_passes(workdir):
    text = config_text(workdir)
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc == 0, err
    assert out.strip() == "%s: ok" % path
    # checking creates nothing
    assert sorted(os.listdir(workdir)) == ["test.conf"]


@pytest.mark.parametrize("name", ["newsletterd.conf", "dev.conf"])
def test_shipped_configs_pass(name):
    path = os.path.join(SOURCE_ROOT, "conf", name)
    if not os.path.exists(path):
        pytest.skip("%s not in the source tree" % path)
    rc, out, err = run_check(path)
    assert rc == 0, err
    assert "ok" in out


def test_comments_blanks_and_minimal_config(workdir):
    text = ("# a comment\n; another\n\n[daemon]\n"
            "public_socket = %s/p.sock   # inline comment\n"
            "admin_socket = %s/a.sock\n"
            "database = %s/d.db\n" % (workdir, workdir, workdir))
    rc, out, err = run_check(write(workdir, text))
    assert rc == 0, err


def test_empty_file_uses_the_defaults(workdir):
    rc, out, err = run_check(write(workdir, ""))
    assert rc == 0, err


@pytest.mark.parametrize("durations", [
    {"confirm_ttl": "2s", "resend_interval": "1s"},
    {"confirm_ttl": "12h", "resend_interval": "15m"},
    {"confirm_ttl": "86400", "resend_interval": "0"},
])
def test_duration_forms(workdir, durations):
    rc, out, err = run_check(write(workdir, config_text(workdir, {"subscription": durations})))
    assert rc == 0, err


BAD = [
    # (section, key, value, what the error must mention or None)
    ("smtp", "bogus_key", "1", "bogus_key"),
    ("daemon", "socket", "/tmp/x", "socket"),
    ("subscription", "confirm_ttl", "30x", "confirm_ttl"),
    ("subscription", "confirm_ttl", "d30", "confirm_ttl"),
    ("subscription", "confirm_ttl", "", "confirm_ttl"),
    ("subscription", "confirm_ttl", "-5", "confirm_ttl"),
    ("subscription", "confirm_ttl", "5 d", "confirm_ttl"),
    ("subscription", "confirm_ttl", "0", "confirm_ttl"),
    ("subscription", "confirm_ttl", "99999999999999999999999", "confirm_ttl"),
    ("subscription", "expired_retention", "1w", "expired_retention"),
    ("smtp", "timeout", "30ms", "timeout"),
    ("smtp", "starttls", "sometimes", "starttls"),
    ("smtp", "starttls", "ON", "starttls"),
    ("smtp", "url", "http://x", "url"),
    ("smtp", "url", "smtp://127.0.0.1:25,", "url"),
    ("smtp", "url", "smtp://127.0.0.1:25, ftp://x", "url"),
    ("smtp", "url", "", "url"),
    ("smtp", "from", "not an address", "from"),
    ("smtp", "from", "Name <a..b@example.org>", "from"),
    ("smtp", "from", "Name <news@example.org", "from"),
    ("smtp", "max_connections", "0", "max_connections"),
    ("smtp", "max_connections", "100000", "max_connections"),
    ("smtp", "max_connections", "two", "max_connections"),
    ("smtp", "max_connections", "-1", "max_connections"),
    ("subscription", "confirm_url", "https://example.org/confirm", "confirm_url"),
    ("subscription", "confirm_url", "ftp://example.org/{token}", "confirm_url"),
    ("subscription", "confirm_url", "https://exa mple.org/{token}", "confirm_url"),
    ("subscription", "unsubscribe_url", "example.org/{token}", "unsubscribe_url"),
    ("subscription", "lists", "", "lists"),
    ("subscription", "lists", "default,,events", "lists"),
    ("subscription", "lists", "Default", "lists"),
    ("subscription", "lists", "news letter", "lists"),
    ("daemon", "log_level", "verbose", "log_level"),
    ("daemon", "public_socket", "", "public_socket"),
    ("daemon", "database", "/tmp/with space/db", "database"),
    ("bounce", "return_path", "bounces@example.org", "return_path"),
    ("dkim", "domain", "not a domain", "domain"),
]


@pytest.mark.parametrize("section,key,value,mention", BAD,
                         ids=["%s.%s=%s" % (b[0], b[1], b[2][:20]) for b in BAD])
def test_bad_value_is_reported_with_its_line(workdir, section, key, value, mention):
    overrides = {section: {key: value}}
    text = config_text(workdir, overrides)
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0, (text, out)
    line = line_of(text, "%s = %s" % (key, value) if value else "%s = " % key)
    assert "%s:%d:" % (path, line) in err, (line, err)
    assert mention in err
    assert "ok" not in out
    assert sorted(os.listdir(workdir)) == ["test.conf"]


def test_unknown_section(workdir):
    text = config_text(workdir) + "\n[frobnicator]\nspeed = 3\n"
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0
    assert "%s:%d:" % (path, line_of(text, "speed = 3")) in err or \
        "%s:%d:" % (path, line_of(text, "[frobnicator]")) in err, err
    assert "frobnicator" in err


def test_key_given_twice(workdir):
    text = config_text(workdir).replace("starttls = off", "starttls = off\nstarttls = required")
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0
    second = line_of(text, "starttls = required")
    assert "%s:%d:" % (path, second) in err, err
    assert "starttls" in err


def test_key_outside_any_section(workdir):
    text = "confirm_ttl = 30d\n" + config_text(workdir)
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0
    assert "%s:1:" % path in err, err


def test_syntax_error_line(workdir):
    text = config_text(workdir).replace("[smtp]", "[smtp]\nthis line has no equals sign")
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0
    assert "%s:%d:" % (path, line_of(text, "no equals sign")) in err, err


def test_unterminated_section_header(workdir):
    text = config_text(workdir).replace("[smtp]", "[smtp")
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0
    assert "%s:%d:" % (path, line_of(text, "[smtp")) in err, err


def test_control_character_in_a_line(workdir):
    text = config_text(workdir).replace("starttls = off", "starttls = off\x01")
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0
    assert "%s:%d:" % (path, line_of(text, "starttls")) in err, err


def test_several_errors_are_all_reported(workdir):
    text = config_text(workdir, {"smtp": {"starttls": "maybe", "timeout": "soon"},
                                 "subscription": {"confirm_ttl": "30x"}})
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0
    for needle in ("starttls = maybe", "timeout = soon", "confirm_ttl = 30x"):
        assert "%s:%d:" % (path, line_of(text, needle)) in err, (needle, err)


@pytest.mark.parametrize("overrides,key", [
    ({"subscription": {"confirm_ttl": "1h", "resend_interval": "2h"}}, "resend_interval"),
    ({"smtp": {"retry_initial": "10m", "retry_max": "5m"}}, "retry_initial"),
    ({"daemon": {"admin_socket": "{dir}/public.sock"}}, "admin_socket"),
    ({"smtp": {"username": "mailer"}}, "username"),
    ({"dkim": {"domain": "example.org"}}, "domain"),
])
def test_rules_between_keys(workdir, overrides, key):
    text = config_text(workdir, overrides)
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0, out
    assert "%s:%d:" % (path, line_of(text, key + " = ")) in err, err


def test_password_file_permissions(workdir):
    secret = os.path.join(workdir, "smtp.secret")
    with open(secret, "w") as f:
        f.write("hunter2-very-secret\n")
    text = config_text(workdir, {"smtp": {"username": "mailer", "password_file": secret}})
    path = write(workdir, text)

    os.chmod(secret, 0o644)
    rc, out, err = run_check(path)
    assert rc != 0
    assert secret in err
    assert "hunter2" not in err and "hunter2" not in out

    os.chmod(secret, 0o640)
    rc, out, err = run_check(path)
    assert rc != 0 and secret in err

    os.chmod(secret, 0o600)
    rc, out, err = run_check(path)
    assert rc == 0, err
    assert "hunter2" not in err and "hunter2" not in out

    os.unlink(secret)
    rc, out, err = run_check(path)
    assert rc != 0 and secret in err


def test_templates_directory(workdir):
    tdir = os.path.join(workdir, "tpl")
    os.makedirs(tdir)
    text = config_text(workdir, {"subscription": {"templates": tdir}})
    path = write(workdir, text)
    rc, out, err = run_check(path)
    assert rc != 0, "missing template files must be an error"
    for lang in ("de", "en"):
        with open(os.path.join(tdir, "confirm.%s.txt" % lang), "w", encoding="utf-8") as f:
            f.write("Subject: Hallo\n\n{{confirm_url}}\n")
    rc, out, err = run_check(path)
    assert rc == 0, err
    with open(os.path.join(tdir, "confirm.en.txt"), "w", encoding="utf-8") as f:
        f.write("Subject: Hi\n\n{{confirm_link}}\n")
    rc, out, err = run_check(path)
    assert rc != 0
    assert "confirm_link" in err


def test_missing_config_file(workdir):
    rc, out, err = run_check(os.path.join(workdir, "nonexistent.conf"))
    assert rc != 0
    assert "nonexistent.conf" in err
