/* The daemon's wall clock: the one "now" of every date it stores, compares
 * and writes into a mail.  Timeouts run on CLOCK_MONOTONIC and log lines
 * carry the real time; neither goes through here. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* The largest test offset: ten years, in seconds. */
#define CLOCK_OFFSET_MAX (3650 * 86400LL)

/* "SECONDS" (1 to CLOCK_OFFSET_MAX, digits only) -> true and *out. */
bool clock_parse_offset(const char *s, int64_t *out);
/* Read NEWSLETTERD_TEST_CLOCK_OFFSET once, at start-up, before any thread
 * runs; a warning is logged when it is set. */
void clock_init(void);
/* Seconds since the epoch, plus the test offset (0 unless set). */
int64_t clock_now(void);
