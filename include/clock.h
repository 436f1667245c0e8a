/* The daemon's wall clock: the one "now" of every date it stores, compares
 * and writes into a mail.  Timeouts run on CLOCK_MONOTONIC and log lines
 * carry the real time; neither goes through here. */
#pragma once
#include <stdint.h>

/* The largest test offset: ten years, in seconds. */
#define CLOCK_OFFSET_MAX (3650 * 86400LL)

/* Read NEWSLETTERD_TEST_CLOCK_OFFSET ("SECONDS": 1 to CLOCK_OFFSET_MAX,
 * digits only) once, at start-up, before any thread runs; a warning is
 * logged when it is set, and a value out of range is ignored. */
void clock_init(void);
/* Seconds since the epoch, plus the test offset (0 unless set). */
int64_t clock_now(void);
