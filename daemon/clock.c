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
#include <stdlib.h>
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
