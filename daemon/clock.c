/*
 * clock.c - the wall clock of the daemon.  Every date the daemon stores or
 * compares (sign-ups, tokens, mails, expiry, rate-limit windows, the Date
 * and DKIM t= of a mail) is clock_now(), so that the test suite can move
 * all of them at once: NEWSLETTERD_TEST_CLOCK_OFFSET=SECONDS starts the
 * daemon that far in the future, and a test sees a month pass without
 * rewriting dates in the database.  newsletterctl reads no clock of its
 * own: every date it prints or sends comes from the daemon, so the two
 * always agree.  Owns the offset, set once before the threads start and
 * only read after.  Must never move the clock back, nor be used for
 * timeouts (CLOCK_MONOTONIC) or log lines (the real time).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"

static int64_t offset;

/* "SECONDS" (1 to CLOCK_OFFSET_MAX, digits only) -> true and *out. */
static bool parse_offset(const char *s, int64_t *out)
{
        if (!s || *s < '0' || *s > '9')
                return false;   /* no sign, no blanks */
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (errno || *end || n < 1 || n > CLOCK_OFFSET_MAX)
                return false;
        *out = n;
        return true;
}

/* The tests' way to let days pass: it can only move the clock forward, and
 * anything but a number of seconds from 1 to ten years is ignored. */
void clock_init(void)
{
        const char *v = getenv("NEWSLETTERD_TEST_CLOCK_OFFSET");
        offset = 0;
        if (!v || !*v)
                return;
        if (!parse_offset(v, &offset)) {
                offset = 0;
                log_warn("NEWSLETTERD_TEST_CLOCK_OFFSET=%s ignored: not a number of seconds"
                         " from 1 to %lld", v, CLOCK_OFFSET_MAX);
                return;
        }
        log_warn("the clock runs %lld s (%.1f days) ahead of the real time"
                 " (NEWSLETTERD_TEST_CLOCK_OFFSET): every date stored is in the future",
                 (long long)offset, (double)offset / SECONDS_PER_DAY);
}

int64_t clock_now(void)
{
        return (int64_t)time(NULL) + offset;
}

/* n digits at s -> *v; false when any is not a digit. */
static bool digits(const char *s, int n, int *v)
{
        *v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                *v = *v * 10 + (s[i] - '0');
        }
        return true;
}

/* "YYYY-MM-DD?HH:MM" with `sep` at 10 into tm; the rest after it in *rest. */
static bool date_minute(const char *s, struct tm *tm, const char **rest)
{
        int y, mo, d, h, mi;
        if (strlen(s) < 16 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
            s[7] != '-' || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || s[13] != ':' ||
            !digits(s + 14, 2, &mi))
                return false;
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59)
                return false;
        memset(tm, 0, sizeof(*tm));
        tm->tm_year = y - 1900;
        tm->tm_mon = mo - 1;
        tm->tm_mday = d;
        tm->tm_hour = h;
        tm->tm_min = mi;
        *rest = s + 16;
        return true;
}

/* The normalised date still names the day given (no 31 February). */
static bool same_day(const struct tm *a, int year, int mon, int mday)
{
        return a->tm_year == year && a->tm_mon == mon && a->tm_mday == mday;
}

int clock_parse_time(const char *s, int64_t *out)
{
        struct tm tm;
        const char *rest;
        if (!s || !date_minute(s, &tm, &rest))
                return 1;
        int year = tm.tm_year, mon = tm.tm_mon, mday = tm.tm_mday;
        if (s[10] == ' ' && *rest == '\0') {
                /* local time, as the administrator's clock on the wall says */
                tm.tm_isdst = -1;
                time_t t = mktime(&tm);
                if (t == (time_t)-1 || !same_day(&tm, year, mon, mday))
                        return 1;
                *out = (int64_t)t;
                return 0;
        }
        /* RFC 3339: date "T" time with seconds, fraction, and "Z" or an zone */
        if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
                return 1;
        int sec;
        if (rest[0] != ':' || !digits(rest + 1, 2, &sec) || sec > 60)
                return 1;
        rest += 3;
        if (*rest == '.') {
                rest++;
                if (*rest < '0' || *rest > '9')
                        return 1;
                while (*rest >= '0' && *rest <= '9')
                        rest++;
        }
        int64_t zone = 0;
        if ((rest[0] == 'Z' || rest[0] == 'z') && rest[1] == '\0') {
                zone = 0;
        } else if ((rest[0] == '+' || rest[0] == '-') && strlen(rest) == 6 && rest[3] == ':') {
                int oh, om;
                if (!digits(rest + 1, 2, &oh) || !digits(rest + 4, 2, &om) || oh > 23 || om > 59)
                        return 1;
                zone = (int64_t)(oh * 60 + om) * 60 * (rest[0] == '-' ? -1 : 1);
        } else {
                return 1;
        }
        tm.tm_sec = sec == 60 ? 59 : sec;       /* a leap second: its minute's end */
        time_t t = timegm(&tm);
        if (t == (time_t)-1 || !same_day(&tm, year, mon, mday))
                return 1;
        *out = (int64_t)t - zone;
        return 0;
}

void clock_format_rfc3339(int64_t t, char out[CLOCK_RFC3339_LEN])
{
        time_t tt = (time_t)t;
        struct tm tm;
        if (!gmtime_r(&tt, &tm) || strftime(out, CLOCK_RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(out, CLOCK_RFC3339_LEN, "1970-01-01T00:00:00Z");
}
