"""The archive (public op `archive`, publish/unpublish, --no-archive), the
reference site's archive pages and Atom feed (php -S, the feed parsed by
Python's XML parser), Markdown issues (`send --markdown`, checked part by
part with Python's email package), previews that send nothing, and sends at
a set time (`send --at`), which survive restarts and can be cancelled."""
import email
import email.policy
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

import nlhelpers
from ctlhelpers import (REFUSED, USAGE, confirmed_list, ctl, ctl_json, need_ctl, status,
                        wait_status, write)
from dkimhelpers import Keys, check_signed
from nlhelpers import check_answer, free_port, port_open, wait_until

pytestmark = pytest.mark.usefixtures("ctl_available")

SIGNUP_URL = "http://127.0.0.1:8080/"
ATOM = "{http://www.w3.org/2005/Atom}"
WEBSITE = os.path.join(os.environ.get("SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..")), "examples", "website", "public")


@pytest.fixture
def ctl_available():
    need_ctl()


def send(daemon, workdir, *args, name="issue"):
    """newsletterctl send ARGS...; (Result, issue id or None)."""
    r = ctl(daemon, "send", *args, timeout=120)
    first = r.out.splitlines()[0] if r.out else ""
    return r, int(first) if first.isdigit() else None


def send_text(daemon, workdir, subject, text, html=None, *options):
    args = ["--subject", subject, "--text", write(os.path.join(workdir, "t.txt"), text)]
    if html is not None:
        args += ["--html", write(os.path.join(workdir, "t.html"), html)]
    r, issue = send(daemon, workdir, *(args + list(options)))
    r.ok()
    return issue


def finished(daemon, issue):
    return wait_status(daemon, issue, lambda s: s["finished"] and s.get("in_archive") is not None,
                       what="issue %d finished" % issue)


def archive(daemon, **fields):
    with daemon.client() as c:
        return c.request(dict({"op": "archive"}, **fields))


def wait_in_archive(daemon, issue):
    wait_until(lambda: any(i["id"] == issue for i in archive(daemon)["issues"]), timeout=20,
               what="issue %d in the archive" % issue)


def count_rows(daemon, table):
    return nlhelpers.db_query(daemon.database, "SELECT count(*) FROM %s" % table)[0][0]


# ---------------------------------------------------------------- the archive

def test_archive_round_trip_carries_no_personal_data(daemon_factory, smtp, workdir):
    d = daemon_factory()
    confirmed_list(d, workdir, [("leserin@example.org", "Jördis Öztürk")])
    text = "Hallo {{name}},\nneu auf {{list}}.\nAbbestellen: {{unsubscribe_url}}\n"
    html = ("<html><body><p>Hallo {{name}}</p>"
            "<p><a href=\"{{unsubscribe_url}}\">Abbestellen</a></p></body></html>")
    issue = send_text(d, workdir, "Ausgabe 1 – Straßenfest", text, html)
    (mail,) = smtp.wait_for(1)
    assert "Jördis Öztürk" in mail.msg.get_body(("plain",)).get_content()
    wait_in_archive(d, issue)

    listing = archive(d)
    check_answer(listing, "ok")
    (entry,) = listing["issues"]
    assert entry["id"] == issue and entry["subject"] == "Ausgabe 1 – Straßenfest"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["sent_at"]), entry

    one = archive(d, issue=issue)
    check_answer(one, "ok")
    got = one["issue"]
    assert got["id"] == issue and got["sent_at"] == entry["sent_at"]
    for part in (got["text"], got["html"]):
        assert "Jördis" not in part and "Öztürk" not in part
        assert "token=" not in part and "unsubscribe" not in part
    assert got["text"] == "Hallo ,\nneu auf default.\nAbbestellen: %s\n" % SIGNUP_URL
    assert '<a href="%s">Abbestellen</a>' % SIGNUP_URL in got["html"]
    # the mail's text, the footer included, is not what the archive shows
    assert "{{" not in got["text"] + got["html"]

    # the public socket serves it (it is an op of the public table)
    s = status(d, issue)
    assert s["in_archive"] is True


def test_signup_url_is_configurable(daemon_factory, smtp, workdir):
    d = daemon_factory({"subscription": {"signup_url": "https://example.org/newsletter/"}})
    confirmed_list(d, workdir, ["a@example.org"])
    issue = send_text(d, workdir, "S", "Link: {{unsubscribe_url}}\n")
    wait_in_archive(d, issue)
    assert archive(d, issue=issue)["issue"]["text"] == "Link: https://example.org/newsletter/\n"
    assert archive(d, issue=issue)["issue"]["html"] is None


def test_no_archive_publish_unpublish_and_paging(daemon_factory, smtp, workdir):
    d = daemon_factory()
    confirmed_list(d, workdir, ["a@example.org"])
    first = send_text(d, workdir, "Eins", "1\n")
    hidden = send_text(d, workdir, "Intern", "2\n", None, "--no-archive")
    third = send_text(d, workdir, "Drei", "3\n")
    test = send_text(d, workdir, "Test", "t\n", None, "--test", "t@example.org")
    smtp.wait_for(4)
    wait_in_archive(d, third)
    wait_in_archive(d, first)
    finished(d, hidden)
    assert [i["id"] for i in archive(d)["issues"]] == [third, first]
    assert [i["id"] for i in archive(d, limit=1)["issues"]] == [third]
    assert [i["id"] for i in archive(d, before=third)["issues"]] == [first]
    assert archive(d, list="events")["issues"] == []
    for unseen in (hidden, test, 999999):
        check_answer(archive(d, issue=unseen), "error", "unknown_issue")

    ctl(d, "publish", str(hidden)).ok()
    assert [i["id"] for i in archive(d)["issues"]] == [third, hidden, first]
    ctl(d, "unpublish", str(third)).ok()
    assert [i["id"] for i in archive(d)["issues"]] == [hidden, first]
    check_answer(archive(d, issue=third), "error", "unknown_issue")
    # a test send is never published; an unknown issue is named as such
    r = ctl(d, "publish", str(test))
    r.fails(REFUSED)
    assert "test" in r.err
    r = ctl(d, "publish", "999999")
    r.fails(REFUSED)
    assert "unknown_issue" in r.err
    # publish and unpublish are admin ops only
    check_answer(nlhelpers.Client(d.public_socket).request({"op": "publish", "issue": first}),
                 "error", "forbidden")


@pytest.mark.parametrize("fields", [
    {"limit": -1}, {"limit": 0}, {"limit": 101}, {"limit": "5"}, {"before": -3}, {"issue": 0},
    {"issue": "1"}, {"list": "nosuchlist"}, {"email": "x@example.org"},
])
def test_archive_bad_requests(daemon_factory, smtp, workdir, fields):
    d = daemon_factory()
    confirmed_list(d, workdir, ["a@example.org"])
    issue = send_text(d, workdir, "S", "x\n")
    wait_in_archive(d, issue)
    before = nlhelpers.db_dump(d.database)
    check_answer(archive(d, **fields), "error", "invalid_request")
    assert nlhelpers.db_dump(d.database) == before
    assert [i["id"] for i in archive(d)["issues"]] == [issue]


def test_limit_caps_at_100(daemon_factory, smtp, workdir):
    d = daemon_factory()
    assert archive(d, limit=100)["issues"] == []


# ---------------------------------------------------------------- Markdown

MARKDOWN = """# Straßenfest am Samstag

Hallo {{name}}, hier das **Programm**:

- Flohmarkt ab 10 Uhr
- Kinderschminken
- Musik

1. erstens
2. zweitens

Mehr auf [unserer Seite](https://example.org/fest?a=1&b=2).

<script>alert("raw")</script>
<div onclick="steal()">roh</div>

[böser Link](javascript:alert(1))

[Abbestellen]({{unsubscribe_url}})
"""


def test_markdown_issue_part_by_part(daemon_factory, smtp, workdir):
    d = daemon_factory()
    confirmed_list(d, workdir, [("leser@example.org", "Ann <B> & Co")])
    src = write(os.path.join(workdir, "issue.md"), MARKDOWN)
    r, issue = send(d, workdir, "--subject", "Fest", "--markdown", src)
    r.ok()
    (mail,) = smtp.wait_for(1)
    msg = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    token = re.search(r"unsubscribe\?token=([A-Za-z0-9_-]{43})", str(msg["List-Unsubscribe"])).group(1)

    # the text part is the Markdown source, placeholders filled
    assert text.startswith("# Straßenfest am Samstag\n\nHallo Ann <B> & Co, hier das **Programm**:")
    assert "- Flohmarkt ab 10 Uhr\n" in text and "[unserer Seite](https://example.org/fest?a=1&b=2)" in text
    assert "[Abbestellen](http://127.0.0.1:8080/unsubscribe?token=%s)" % token in text

    # the HTML part: headings, lists, links, the name escaped, no raw HTML
    assert re.search(r"<h1[^>]*>Straßenfest am Samstag</h1>", html)
    assert "Hallo Ann &lt;B&gt; &amp; Co" in html
    assert re.search(r"<strong>Programm</strong>", html)
    items = re.findall(r"<li[^>]*>(.*?)</li>", html)
    assert items == ["Flohmarkt ab 10 Uhr", "Kinderschminken", "Musik", "erstens", "zweitens"], items
    assert re.search(r"<ul[^>]*>", html) and re.search(r"<ol[^>]*>", html)
    assert re.search(r'<a [^>]*href="https://example.org/fest\?a=1&amp;b=2"[^>]*>unserer Seite</a>', html)
    assert re.search(r'<a [^>]*href="http://127.0.0.1:8080/unsubscribe\?token=%s"[^>]*>Abbestellen</a>'
                     % token, html)
    low = html.lower()
    assert "<script" not in low and "onclick" not in low and "<div onclick" not in low
    assert "alert(" not in html and "javascript:" not in low
    # a mail-client-safe layout: inline styles, a maximum width, nothing loaded
    assert "max-width:600px" in html and "<style" not in low and "<link" not in low
    assert not re.search(r"(src|href)=\"https?://(?!example\.org|127\.0\.0\.1)", html)
    # the archive keeps the rendering, for no one
    wait_in_archive(d, issue)
    got = archive(d, issue=issue)["issue"]
    assert got["text"].startswith("# Straßenfest") and "Ann" not in got["text"] + got["html"]
    assert re.search(r'<a [^>]*href="%s"[^>]*>Abbestellen</a>' % SIGNUP_URL, got["html"])


def test_markdown_bad_input_changes_nothing(daemon_factory, smtp, workdir):
    d = daemon_factory()
    confirmed_list(d, workdir, ["a@example.org"])
    before = count_rows(d, "issue")
    bad = write(os.path.join(workdir, "latin1.md"), "# Stra\xdfenfest\n".encode("latin-1"))
    r, _ = send(d, workdir, "--subject", "S", "--markdown", bad)
    r.fails(REFUSED)
    assert "not UTF-8" in r.err and "latin1.md" in r.err
    r = ctl(d, "preview", "--subject", "S", "--markdown", bad)
    r.fails(REFUSED)
    assert "not UTF-8" in r.err
    # an unknown placeholder, and --markdown with --text
    unknown = write(os.path.join(workdir, "u.md"), "Hallo {{vorname}}\n")
    r, _ = send(d, workdir, "--subject", "S", "--markdown", unknown)
    r.fails(REFUSED)
    assert "placeholder" in r.err
    # escaped braces are no placeholder in the source, but one in the HTML
    escaped = write(os.path.join(workdir, "e.md"), "Hallo \\{\\{vorname}}\n")
    r, _ = send(d, workdir, "--subject", "S", "--markdown", escaped)
    r.fails(REFUSED)
    assert "placeholder" in r.err, r
    good = write(os.path.join(workdir, "g.md"), "ok\n")
    r, _ = send(d, workdir, "--subject", "S", "--markdown", good, "--text", good)
    r.fails(USAGE)
    # the daemon itself refuses a markdown body with a text body
    with d.client() as c:
        check_answer(c.request({"op": "send", "subject": "S", "markdown": "x", "text": "y"}),
                     "error", "forbidden")
    with nlhelpers.Client(d.admin_socket) as c:
        a = c.request({"op": "send", "subject": "S", "markdown": "x", "text": "y"})
        check_answer(a, "error", "invalid_request")
    assert count_rows(d, "issue") == before
    time.sleep(0.3)
    assert smtp.count() == 0


# ---------------------------------------------------------------- preview

def test_preview_sends_nothing_and_is_the_mail(daemon_factory, smtp, workdir):
    keys = Keys(workdir)
    d = daemon_factory({"dkim": keys.config})
    confirmed_list(d, workdir, [("erste@example.org", "Erste"), ("zweite@example.org", "Zweite")])
    src = write(os.path.join(workdir, "p.md"), "# Titel\n\nHallo {{name}}!\n")
    dump_before = nlhelpers.db_dump(d.database)
    out = os.path.join(workdir, "preview.eml")
    r = ctl(d, "preview", "--subject", "Vorschau", "--markdown", src, "--out", out)
    r.ok()
    data = open(out, "rb").read()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["To"] == "erste@example.org" and str(msg["Subject"]) == "Vorschau"
    assert "Hallo Erste!" in msg.get_body(("plain",)).get_content()
    assert re.search(r"<h1[^>]*>Titel</h1>", msg.get_body(("html",)).get_content())
    for h in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Message-ID", "Date"):
        assert msg[h], h
    check_signed(data, keys)

    # --to a subscriber: theirs; to stdout
    r = ctl(d, "preview", "--subject", "Vorschau", "--markdown", src, "--to", "Zweite@Example.org")
    r.ok()
    msg2 = email.message_from_bytes(r.out.encode(), policy=email.policy.default)
    assert msg2["To"] == "zweite@example.org"
    assert "Hallo Zweite!" in msg2.get_body(("plain",)).get_content()

    # nothing sent, nothing stored (no issue, no mail, no token)
    time.sleep(1.5)
    assert smtp.count() == 0
    assert nlhelpers.db_dump(d.database) == dump_before
    # the preview's unsubscribe link unsubscribes no one
    token = re.search(r"token=([A-Za-z0-9_-]{43})", str(msg["List-Unsubscribe"])).group(1)
    check_answer(d.request({"op": "unsubscribe", "token": token}), "error", "unknown_token")

    # an address that is no subscriber gets it as a test send would: no name
    r = ctl(d, "preview", "--subject", "Vorschau", "--markdown", src, "--to", "gast@example.net")
    r.ok()
    msg3 = email.message_from_bytes(r.out.encode(), policy=email.policy.default)
    assert msg3["To"] == "gast@example.net"
    assert "Hallo !" in msg3.get_body(("plain",)).get_content()

    r = ctl(d, "preview", "--subject", "Vorschau", "--markdown", src, "--to", "kein-at")
    r.fails(REFUSED)
    assert nlhelpers.db_dump(d.database) == dump_before
    assert smtp.count() == 0


# ---------------------------------------------------------------- scheduled sends

def test_scheduled_issue_goes_out_only_at_its_time(daemon_factory, smtp, workdir):
    d = daemon_factory()
    confirmed_list(d, workdir, ["frueh@example.org"])
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(d.now() + 3 * 3600))
    text = write(os.path.join(workdir, "s.txt"), "Geplant\n")
    r, issue = send(d, workdir, "--subject", "Geplant", "--text", text, "--at", at)
    r.ok()
    cancelled_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.now() + 2 * 3600))
    r, cancelled = send(d, workdir, "--subject", "Abgesagt", "--text", text, "--at", cancelled_at)
    r.ok()
    s = status(d, issue)
    assert s["issue_state"] == "scheduled" and s["send_at"] == at and s["total"] == 0
    assert not s["finished"]
    r = ctl(d, "status", str(issue))
    r.ok()
    assert "scheduled for %s" % at in r.out
    ctl(d, "cancel", str(cancelled)).ok()
    assert status(d, cancelled)["issue_state"] == "cancelled"

    # someone who confirms before the time gets it; a restart keeps the plan
    confirmed_list(d, workdir, ["spaet@example.org"], name="late.csv")
    d.restart_later(3600)
    time.sleep(2)
    assert smtp.count() == 0
    assert status(d, issue)["issue_state"] == "scheduled"

    # the daemon is down at the time: it sends when it starts
    d.stop()
    d.set_clock(d.clock_offset + 3 * 3600)
    d.start()
    mails = smtp.wait_for(2)
    assert sorted(m.rcpt_tos[0] for m in mails) == ["frueh@example.org", "spaet@example.org"]
    assert {str(m.msg["Subject"]) for m in mails} == {"Geplant"}
    s = wait_status(d, issue, lambda s: s["finished"], what="scheduled issue sent")
    assert s["issue_state"] == "sending" and s["sent"] == 2
    wait_in_archive(d, issue)
    # the cancelled one sent nothing and is not in the archive
    time.sleep(1.5)
    assert smtp.count() == 2
    assert status(d, cancelled)["total"] == 0
    check_answer(archive(d, issue=cancelled), "error", "unknown_issue")


def test_a_paused_scheduled_issue_waits_for_resume(daemon_factory, smtp, workdir):
    d = daemon_factory()
    confirmed_list(d, workdir, ["geduld@example.org"])
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(d.now() + 3600))
    text = write(os.path.join(workdir, "p.txt"), "Pausiert\n")
    r, issue = send(d, workdir, "--subject", "Pausiert", "--text", text, "--at", at)
    r.ok()
    ctl(d, "pause", str(issue)).ok()
    # nothing is queued yet, but nothing was sent either: not finished
    # (send --at --wait would otherwise exit 0 at once)
    s = status(d, issue)
    assert s["issue_state"] == "paused" and s["total"] == 0, s
    assert not s["finished"], s
    # its time passes while paused: still held
    d.restart_later(2 * 3600)
    time.sleep(1.5)
    assert smtp.count() == 0
    s = status(d, issue)
    assert s["issue_state"] == "paused" and not s["finished"], s
    # resumed after its time: it goes out
    ctl(d, "resume", str(issue)).ok()
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ["geduld@example.org"]
    wait_status(d, issue, lambda s: s["finished"] and s["sent"] == 1, what="resumed issue sent")


def test_send_at_bad_times_change_nothing(daemon_factory, smtp, workdir):
    d = daemon_factory()
    confirmed_list(d, workdir, ["a@example.org"])
    text = write(os.path.join(workdir, "s.txt"), "x\n")
    before = nlhelpers.db_dump(d.database)
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(d.now() - 60))
    r, _ = send(d, workdir, "--subject", "S", "--text", text, "--at", past)
    r.fails(REFUSED)
    assert "past" in r.err
    for bad in ("morgen früh", "2026-02-30 08:00", "2026-12-07T25:00:00Z", "2026-12-07T08:00Z",
                "2026-12-07 08:00:00x", ""):
        r, _ = send(d, workdir, "--subject", "S", "--text", text, "--at", bad)
        r.fails(USAGE)
        assert "not a time" in r.err, (bad, r)
    r, _ = send(d, workdir, "--subject", "S", "--text", text, "--at", "2099-01-01T00:00:00Z",
                "--test", "t@example.org")
    r.fails(REFUSED)
    r = ctl(d, "cancel", "424242")
    r.fails(REFUSED)
    assert nlhelpers.db_dump(d.database) == before
    time.sleep(0.5)
    assert smtp.count() == 0


# ---------------------------------------------------------------- the reference site

@pytest.fixture
def site(daemon_factory, workdir):
    """The reference site under php -S, talking to a daemon of its own."""
    php = "/usr/bin/php"
    if not os.access(php, os.X_OK):
        pytest.skip("php-cli is not installed")
    port = free_port()
    d = daemon_factory({"subscription": {
        "confirm_url": "http://127.0.0.1:%d/confirm?token={token}" % port,
        "unsubscribe_url": "http://127.0.0.1:%d/unsubscribe?token={token}" % port}})
    log = open(os.path.join(workdir, "php.log"), "ab")
    proc = subprocess.Popen([php, "-S", "127.0.0.1:%d" % port, "-t", WEBSITE],
                            env=dict(os.environ, NEWSLETTERD_SOCKET=d.public_socket),
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), what="php -S to listen")
        yield d, "http://127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_site_archive_pages_and_feed(site, smtp, workdir):
    d, base = site
    confirmed_list(d, workdir, [("leser@example.org", "Geheimer Name")])
    issues = []
    for n in range(3):
        issues.append(send_text(d, workdir, "Ausgabe %d & <Co>" % n, "Text %d {{name}}\n" % n,
                                "<html><body><p>HTML %d {{name}}</p><script>document.title='x'</script>"
                                "</body></html>" % n))
    smtp.wait_for(3)
    for i in issues:
        wait_in_archive(d, i)

    code, headers, body = get(base + "/")
    assert code == 200 and b'href="/archive"' in body

    code, headers, body = get(base + "/archive")
    page = body.decode()
    assert code == 200
    assert re.findall(r'data-archive-issue="(\d+)"', page) == [str(i) for i in reversed(issues)]
    assert "Ausgabe 2 &amp; &lt;Co&gt;" in page and "Newsletter-Archiv" in page
    code, headers, body = get(base + "/archive?lang=en")
    assert "Newsletter archive" in body.decode()

    code, headers, body = get(base + "/archive/%d" % issues[0])
    page = body.decode()
    assert code == 200 and 'data-state="archive"' in page
    frame = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'sandbox=""' in frame and "allow-scripts" not in frame
    src = re.search(r'src="([^"]+)"', frame).group(1)
    code, headers, body = get(base + src)
    assert code == 200 and b"HTML 0 " in body and b"Geheimer" not in body
    assert "sandbox" in headers["Content-Security-Policy"]

    code, headers, body = get(base + "/archive/999999")
    assert code == 404
    code, headers, body = get(base + "/archive/abc")
    assert code == 404

    code, headers, body = get(base + "/archive/feed")
    assert code == 200 and headers["Content-Type"].startswith("application/atom+xml")
    feed = ET.fromstring(body)
    assert feed.tag == ATOM + "feed"
    for required in ("id", "title", "updated", "author"):
        assert feed.find(ATOM + required) is not None, required
    entries = feed.findall(ATOM + "entry")
    assert [e.find(ATOM + "title").text for e in entries] == [
        "Ausgabe 2 & <Co>", "Ausgabe 1 & <Co>", "Ausgabe 0 & <Co>"]
    for e in entries:
        assert e.find(ATOM + "id").text.startswith(base + "/archive/")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e.find(ATOM + "updated").text)
        assert e.find(ATOM + "link").get("href") == e.find(ATOM + "id").text
    assert b"Geheimer" not in body


def test_large_issue_through_the_public_socket(daemon_factory, smtp, workdir):
    """An archive answer is far larger than any request: megabytes of HTML."""
    d = daemon_factory()
    confirmed_list(d, workdir, ["a@example.org"])
    para = "<p>" + "Straßenfest und Bürgersprechstunde. " * 100 + "</p>\n"
    html = "<html><body>\n" + para * 600 + "</body></html>\n"
    assert len(html.encode()) > 2 * 1024 * 1024
    issue = send_text(d, workdir, "Groß", "kurz\n", html)
    wait_in_archive(d, issue)
    got = archive(d, issue=issue)["issue"]
    assert got["html"] == html


def test_site_archive_pages_through(site, smtp, workdir):
    """21 issues: the first page shows 20, its "older" link the 21st."""
    d, base = site
    confirmed_list(d, workdir, ["a@example.org"])
    issues = [send_text(d, workdir, "Nr. %d" % n, "x\n") for n in range(21)]
    smtp.wait_for(21)
    wait_until(lambda: len(archive(d, limit=100)["issues"]) == 21, timeout=30, what="21 in the archive")
    code, _, body = get(base + "/archive")
    page = body.decode()
    shown = [int(i) for i in re.findall(r'data-archive-issue="(\d+)"', page)]
    assert shown == list(reversed(issues))[:20]
    older = re.search(r'<a [^>]*rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    code, _, body = get(base + older)
    assert code == 200
    assert [int(i) for i in re.findall(r'data-archive-issue="(\d+)"', body.decode())] == [issues[0]]
    assert 'rel="next"' not in body.decode()
    code, _, body = get(base + "/archive?before=abc")
    assert code == 404
