"""The daemon's clock and the tests' hook that moves it,
NEWSLETTERD_TEST_CLOCK_OFFSET=SECONDS (newsletterd(8)): without it the
daemon keeps the real time; with it every date the daemon stores, compares,
mails and reports (tokens, expiry, the Date and DKIM t= of a mail, the
days of `newsletterctl stats`) is that far ahead, and the log says so.
This is how the other tests let days pass (Daemon.restart_later)."""
import datetime
import email.utils
import time

import pytest

from ctlhelpers import need_ctl, stats
from dkimhelpers import Keys, signatures
from nlhelpers import DAY, check_answer, token_hash

OFFSET = "NEWSLETTERD_TEST_CLOCK_OFFSET"
WARNING = "ahead of the real time (NEWSLETTERD_TEST_CLOCK_OFFSET)"


@pytest.fixture
def keys(workdir):
    need_ctl()
    return Keys(workdir)


def check_dated(d, mail, before, after):
    """The confirmation `mail`, its token in the database and its DKIM
    signatures all carry a time from `before` to `after` (the daemon's
    clock, read around the request)."""
    lo, hi = int(before) - 1, int(after) + 1
    (row,) = d.query("SELECT issued_at, expires_at FROM token WHERE hash = ?",
                     (token_hash(mail.token),))
    assert lo <= row["issued_at"] <= hi, (row["issued_at"], before, after)
    assert row["expires_at"] - row["issued_at"] == 30 * DAY
    date = email.utils.parsedate_to_datetime(str(mail.msg["Date"])).timestamp()
    assert lo <= date <= hi, (mail.msg["Date"], before, after)
    sigs = signatures(mail.data)
    assert len(sigs) == 2, sigs
    for tags in sigs:
        assert lo <= int(tags["t"]) <= hi, (tags, before, after)


def last_stats_day(d):
    return datetime.date.fromisoformat(stats(d)["days"][-1]["date"])


def utc_date(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).date()


def test_the_clock_is_the_real_time_without_the_offset(daemon_factory, smtp, keys):
    d = daemon_factory({"dkim": keys.config})
    assert d.clock_offset == 0 and OFFSET not in d.env
    before = time.time()
    check_answer(d.subscribe("now@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    after = time.time()
    check_dated(d, mail, before, after)
    assert last_stats_day(d) in (utc_date(before), utc_date(time.time()))
    check_answer(d.request({"op": "check", "token": mail.token}), "pending")
    assert OFFSET not in d.stderr()


def test_a_link_is_valid_29_days_later_and_expired_31_days_later(daemon_factory, smtp, keys):
    d = daemon_factory({"dkim": keys.config})
    check_answer(d.subscribe("early@example.org"), "pending")
    (early,) = smtp.wait_for(1)
    d.settle()
    log_before = d.stderr()
    assert OFFSET not in log_before

    d.restart_later(29 * DAY)
    assert WARNING in d.stderr()[len(log_before):], d.stderr()[len(log_before):]
    assert "2505600 s (29.0 days)" in d.stderr()
    check_answer(d.request({"op": "check", "token": early.token}), "pending")
    # what the daemon does now is dated 29 days ahead: in the database, in
    # the mail, in its signatures and in the statistics newsletterctl shows
    before = time.time() + 29 * DAY
    check_answer(d.subscribe("later@example.org"), "pending")
    (later,) = smtp.wait_for_rcpt("later@example.org")
    after = time.time() + 29 * DAY
    check_dated(d, later, before, after)
    assert last_stats_day(d) in (utc_date(before), utc_date(time.time() + 29 * DAY))
    d.settle()

    d.restart_later(2 * DAY)
    assert "2678400 s (31.0 days)" in d.stderr()
    check_answer(d.request({"op": "check", "token": early.token}), "expired")
    check_answer(d.request({"op": "confirm", "token": early.token}), "expired")
    assert d.subscription("early@example.org")["state"] == "pending"
    # the one signed up two days ago is still welcome
    check_answer(d.request({"op": "confirm", "token": later.token}), "confirmed")
    assert stats(d)["subscribers"]["expired"] == 1


def test_an_offset_that_is_no_number_of_seconds_is_ignored_with_a_warning(daemon_factory, smtp):
    d = daemon_factory(start=False)
    d.env[OFFSET] = "31d"
    d.start()
    assert OFFSET + "=31d ignored" in d.stderr()
    assert WARNING not in d.stderr()
    before = time.time()
    check_answer(d.subscribe("real@example.org"), "pending")
    (mail,) = smtp.wait_for(1)
    (row,) = d.query("SELECT issued_at FROM token")
    assert int(before) - 1 <= row["issued_at"] <= time.time() + 1
    check_answer(d.request({"op": "check", "token": mail.token}), "pending")
