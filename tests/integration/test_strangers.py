"""Only the subscriber changes the subscriber: a sign-up nobody confirmed
never changes what is stored about a confirmed subscriber (the name every
list's mails greet them with, the spelling of the address they go to).
What an unconfirmed request gives waits with that sign-up, and becomes the
subscriber's when the address's owner confirms it."""
import os
import sqlite3
import time

from ctlhelpers import ctl, import_csv, need_ctl, write
from nlhelpers import check_answer, wait_until

SPAM = "Cheap pills http://spam.example"


def subscriber(d, key):
    rows = d.query("SELECT email, name FROM subscriber WHERE email_key = ?", (key,))
    return tuple(rows[0]) if rows else None


def newsletter_to(d, smtp, workdir, key, subject):
    """Send an issue to the list `default`; the mail `key` got."""
    text = write(os.path.join(workdir, "issue.txt"), "Hallo {{name}}!\n\n{{unsubscribe_url}}\n")
    ctl(d, "send", "--subject", subject, "--text", text, "--list", "default", "--wait").ok()
    mails = [m for m in smtp.snapshot()
             if m.rcpt_tos[0].lower() == key and m.msg["Subject"] == subject]
    assert len(mails) == 1, mails
    return mails[0]


def confirm_latest(d, smtp, rcpt):
    check_answer(d.request({"op": "confirm", "token": smtp.to(rcpt)[-1].token}), "confirmed")


def test_a_strangers_signup_leaves_a_confirmed_subscriber_as_they_are(daemon_factory, smtp,
                                                                      workdir):
    need_ctl()
    d = daemon_factory()
    # Alice: confirmed on default, confirmed and then unsubscribed on events
    check_answer(d.subscribe("Alice@example.org", name="Alice", list="default"), "pending")
    smtp.wait_for(1)
    confirm_latest(d, smtp, "Alice@example.org")
    check_answer(d.subscribe("Alice@example.org", list="events"), "pending")
    smtp.wait_for(2)
    confirm_latest(d, smtp, "Alice@example.org")
    sub = d.subscription("alice@example.org", "events")
    d.stop()
    # (the row is changed with the daemon stopped)
    con = sqlite3.connect(d.database)
    with con:
        con.execute("UPDATE subscription SET state = 'unsubscribed' WHERE id = ?", (sub["id"],))
    con.close()
    d.start()
    assert subscriber(d, "alice@example.org") == ("Alice@example.org", "Alice")

    # anyone signs her up again, with another spelling and a name of theirs
    check_answer(d.subscribe("ALICE@example.ORG", name=SPAM, list="events"), "pending")
    smtp.wait_for(3)
    assert subscriber(d, "alice@example.org") == ("Alice@example.org", "Alice")
    mail = newsletter_to(d, smtp, workdir, "alice@example.org", "Ausgabe 1")
    assert mail.rcpt_tos == ["Alice@example.org"]
    assert "Hallo Alice!" in mail.body and "spam.example" not in mail.body

    # her export shows the request waiting, apart from her subscriber data
    assert d.subscription("alice@example.org", "events")["state"] == "pending"

    # when the owner of the address confirms it, what it gave is hers
    confirm_latest(d, smtp, "ALICE@example.org")     # (domains are mailed in lower case)
    assert subscriber(d, "alice@example.org") == ("ALICE@example.org", SPAM)
    assert d.subscription("alice@example.org", "events")["state"] == "confirmed"


def test_a_strangers_signup_after_an_import_pending_leaves_the_subscriber(daemon_factory, smtp,
                                                                         workdir):
    need_ctl()
    d = daemon_factory({"subscription": {"resend_interval": "1s"}})
    # Alice is a confirmed subscriber of default (imported), and an admin
    # imported her as pending on events: a subscription linked to her row
    path = write(os.path.join(workdir, "alice.csv"), 'email,name\nAlice@example.org,Alice\n')
    import_csv(d, path)
    import_csv(d, path, "--pending", "--list", "events")
    smtp.wait_for(1)
    time.sleep(1.1)     # past resend_interval: the next sign-up sends a mail again
    check_answer(d.subscribe("alice@EXAMPLE.org", name=SPAM, list="events"), "pending")
    wait_until(lambda: len(smtp.to("alice@example.org")) == 1, what="the second confirmation")
    assert subscriber(d, "alice@example.org") == ("Alice@example.org", "Alice")
    mail = newsletter_to(d, smtp, workdir, "alice@example.org", "Ausgabe 2")
    assert mail.rcpt_tos == ["Alice@example.org"]
    assert "Hallo Alice!" in mail.body and "spam.example" not in mail.body
    # Alice confirms the import's mail: that request, not the stranger's later one
    check_answer(d.request({"op": "confirm", "token": smtp.to("Alice@example.org")[0].token}),
                 "confirmed")
    assert subscriber(d, "alice@example.org") == ("Alice@example.org", "Alice")


def test_confirming_a_link_confirms_the_request_it_was_mailed_for(daemon_factory, smtp):
    """Bob signs up; a stranger signs his address up again with a name of
    theirs; Bob clicks the link of his own mail: his name, not theirs."""
    d = daemon_factory({"subscription": {"resend_interval": "1s"}})
    check_answer(d.subscribe("Bob@example.org", name="Bob"), "pending")
    smtp.wait_for(1)
    time.sleep(1.1)
    check_answer(d.subscribe("bob@example.org", name=SPAM), "pending")
    smtp.wait_for(2)
    check_answer(d.request({"op": "confirm", "token": smtp.to("Bob@example.org")[0].token}),
                 "confirmed")
    assert subscriber(d, "bob@example.org") == ("Bob@example.org", "Bob")
    # both requests are in his consent record
    events = [r[0] for r in d.query("SELECT event FROM consent ORDER BY id")]
    assert events == ["signup", "signup", "confirm"]


def test_an_unsubscribe_leaves_the_subscriber_as_they_are(daemon_factory, smtp, workdir):
    """A stranger's sign-up waiting, then Alice unsubscribes with an older
    newsletter's link: the waiting name does not become hers."""
    need_ctl()
    d = daemon_factory()
    path = write(os.path.join(workdir, "alice.csv"), 'email,name\nAlice@example.org,Alice\n')
    import_csv(d, path, "--list", "events")
    import_csv(d, path)
    mail = newsletter_to(d, smtp, workdir, "alice@example.org", "Ausgabe 3")
    ctl(d, "send", "--subject", "Events 1", "--text",
        write(os.path.join(workdir, "e.txt"), "Hallo {{name}}\n{{unsubscribe_url}}\n"),
        "--list", "events", "--wait").ok()
    (events_mail,) = [m for m in smtp.snapshot() if m.msg["Subject"] == "Events 1"]
    token = events_mail.msg["List-Unsubscribe"].split("token=")[1].rstrip(">")
    check_answer(d.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    # a stranger signs her up for events again; then her old link is clicked once more
    check_answer(d.subscribe("ALICE@example.org", name=SPAM, list="events"), "pending")
    check_answer(d.request({"op": "unsubscribe", "token": token}), "unsubscribed")
    assert subscriber(d, "alice@example.org") == ("Alice@example.org", "Alice")
    assert mail.rcpt_tos == ["Alice@example.org"]
