/* The daemon's wall clock: the one "now" of every date it stores, compares
 * and writes into a mail.  Timeouts run on CLOCK_MONOTONIC and log lines
 * carry the real time; neither goes through here. */
#pragma once
#include <stdint.h>

/* The calendar in seconds: dates are counted in UTC days of this length. */
#define SECONDS_PER_HOUR 3600
#define SECONDS_PER_DAY 86400
/* Whole days, a started day counted: what a visitor is told of a period. */
#define DAYS_ROUNDED_UP(seconds) (((seconds) + SECONDS_PER_DAY - 1) / SECONDS_PER_DAY)

/* The largest test offset: ten years, in seconds. */
#define CLOCK_OFFSET_MAX (3650 * (long long)SECONDS_PER_DAY)

/* Read NEWSLETTERD_TEST_CLOCK_OFFSET ("SECONDS": 1 to CLOCK_OFFSET_MAX,
 * digits only) once, at start-up, before any thread runs; a warning is
 * logged when it is set, and a value out of range is ignored. */
void clock_init(void);
/* Seconds since the epoch, plus the test offset (0 unless set). */
int64_t clock_now(void);

/* A time as an administrator writes it: RFC 3339 ("2026-12-07T08:00:00Z",
 * "...T08:00:00.5+01:00") or "YYYY-MM-DD HH:MM" in local time (TZ); 0 and
 * *out in Unix seconds, or 1 when it is neither or no such date.  A leaf:
 * reads no clock. */
int clock_parse_time(const char *s, int64_t *out);
/* "YYYY-MM-DDTHH:MM:SSZ" (UTC). */
#define CLOCK_RFC3339_LEN 32
void clock_format_rfc3339(int64_t t, char out[CLOCK_RFC3339_LEN]);
