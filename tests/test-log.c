/*
 * test-log.c - the log's rate limit: a warning or error repeated within
 * the interval is shown once, the next one shown after the interval says
 * how many were left out; other messages and lower levels pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "unit-stderr.h"
#include "unit.h"

static unsigned count(const char *text, const char *needle)
{
        unsigned n = 0;
        for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static void pause_past(unsigned seconds)
{
        struct timespec ts = { .tv_sec = seconds, .tv_nsec = 200 * 1000000 };
        while (nanosleep(&ts, &ts) < 0)
                ;
}

static void test_repeats_are_shown_once_per_interval(void)
{
        log_set_repeat_interval(1);
        unit_capture_stderr();
        for (int i = 0; i < 100; i++)
                log_err("database: %s", "database or disk is full");
        log_warn("something else");
        log_err("database: %s", "database or disk is full");
        log_warn("something else");
        pause_past(1);
        log_err("database: %s", "database or disk is full");
        char *text = unit_captured_stderr();
        CHECK_UINT(count(text, "disk is full"), 2);
        CHECK_UINT(count(text, "something else"), 1);
        CHECK_CONTAINS(text, "database or disk is full (100 more like it since it was last shown)");
        CHECK_UINT(count(text, "\n"), 3);
        free(text);
}

static void test_info_and_debug_are_not_limited(void)
{
        log_set_repeat_interval(1);
        log_set_level(LOG_LVL_DEBUG);
        unit_capture_stderr();
        for (int i = 0; i < 5; i++) {
                log_info("reloaded");
                log_debug("a mail went out");
        }
        char *text = unit_captured_stderr();
        CHECK_UINT(count(text, "reloaded"), 5);
        CHECK_UINT(count(text, "a mail went out"), 5);
        free(text);
}

static void test_interval_zero_limits_nothing(void)
{
        log_set_repeat_interval(0);
        unit_capture_stderr();
        for (int i = 0; i < 5; i++)
                log_err("no room");
        char *text = unit_captured_stderr();
        CHECK_UINT(count(text, "no room"), 5);
        CHECK(!strstr(text, "more like it"));
        free(text);
}

int main(void)
{
        RUN(test_repeats_are_shown_once_per_interval);
        RUN(test_info_and_debug_are_not_limited);
        RUN(test_interval_zero_limits_nothing);
        return unit_finish();
}
