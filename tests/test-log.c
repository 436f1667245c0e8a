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
#include "unit.h"

static FILE *captured;
static int saved_stderr = -1;

/* Send stderr (the log's sink) to a file until captured_text(). */
static void capture(void)
{
        fflush(stderr);
        captured = tmpfile();
        saved_stderr = dup(2);
        dup2(fileno(captured), 2);
}

/* What was logged since capture(); the caller frees it. */
static char *captured_text(void)
{
        fflush(stderr);
        dup2(saved_stderr, 2);
        close(saved_stderr);
        long n = ftell(captured);
        char *text = calloc(1, (size_t)(n < 0 ? 0 : n) + 1);
        rewind(captured);
        if (n > 0 && fread(text, 1, (size_t)n, captured) != (size_t)n)
                text[0] = '\0';
        fclose(captured);
        return text;
}

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
        capture();
        for (int i = 0; i < 100; i++)
                log_err("database: %s", "database or disk is full");
        log_warn("something else");
        log_err("database: %s", "database or disk is full");
        log_warn("something else");
        pause_past(1);
        log_err("database: %s", "database or disk is full");
        char *text = captured_text();
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
        capture();
        for (int i = 0; i < 5; i++) {
                log_info("reloaded");
                log_debug("a mail went out");
        }
        char *text = captured_text();
        CHECK_UINT(count(text, "reloaded"), 5);
        CHECK_UINT(count(text, "a mail went out"), 5);
        free(text);
}

static void test_interval_zero_limits_nothing(void)
{
        log_set_repeat_interval(0);
        capture();
        for (int i = 0; i < 5; i++)
                log_err("no room");
        char *text = captured_text();
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
