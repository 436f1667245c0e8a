/*
 * test-clock.c - the daemon's wall clock: the real time unless
 * NEWSLETTERD_TEST_CLOCK_OFFSET moves it forward (then with a warning in
 * the log); a value that is not a number of seconds from 1 to ten years is
 * ignored, with a warning too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "unit-stderr.h"
#include "unit.h"

#define ENV "NEWSLETTERD_TEST_CLOCK_OFFSET"

/* clock_init() with the variable set to `value` (NULL: unset); what it logged. */
static char *init_with(const char *value)
{
        if (value)
                setenv(ENV, value, 1);
        else
                unsetenv(ENV);
        unit_capture_stderr();
        clock_init();
        return unit_captured_stderr();
}

/* clock_now() - time(NULL), checked to be `offset` across a second's turn */
static void check_ahead_by(int64_t offset)
{
        int64_t before = (int64_t)time(NULL);
        int64_t now = clock_now();
        int64_t after = (int64_t)time(NULL);
        CHECK(now >= before + offset);
        CHECK(now <= after + offset);
}

/* Seconds from 1 to ten years, digits only, move the clock; anything else
 * leaves the real time (even after an offset was in force). */
static void test_parse(void)
{
        static const struct { const char *s; int64_t v; } good[] = {
                { "1", 1 }, { "2678400", 31 * 86400 }, { "315360000", CLOCK_OFFSET_MAX },
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                char *log = init_with(good[i].s);
                check_ahead_by(good[i].v);
                if (!CHECK_CONTAINS(log, " ahead of the real time"))
                        fprintf(stderr, "    refused: \"%s\"\n", good[i].s);
                free(log);
        }
        static const char *const bad[] = {
                "0", "-86400", "+86400", " 86400", "86400 ", "86400s", "31d", "1e6",
                "0x10", "315360001", "99999999999999999999", "abc",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                free(init_with("86400"));
                char *log = init_with(bad[i]);
                check_ahead_by(0);
                if (!CHECK_CONTAINS(log, " ignored: not a number of seconds"))
                        fprintf(stderr, "    taken: \"%s\"\n", bad[i]);
                free(log);
        }
}

static void test_real_time_by_default(void)
{
        check_ahead_by(0);
        char *log = init_with(NULL);
        CHECK_STR(log, "");
        check_ahead_by(0);
        free(log);
        log = init_with("");
        CHECK_STR(log, "");
        check_ahead_by(0);
        free(log);
}

static void test_offset_moves_the_clock_forward_with_a_warning(void)
{
        char *log = init_with("2678400");
        check_ahead_by(31 * 86400);
        CHECK_CONTAINS(log, "NEWSLETTERD_TEST_CLOCK_OFFSET");
        CHECK_CONTAINS(log, "2678400 s (31.0 days) ahead");
        free(log);
        /* read once: a later change of the environment does nothing */
        setenv(ENV, "60", 1);
        check_ahead_by(31 * 86400);
        /* and a new start without it is back to the real time */
        free(init_with(NULL));
        check_ahead_by(0);
}

static void test_invalid_offset_is_ignored_with_a_warning(void)
{
        free(init_with("86400"));
        char *log = init_with("-86400");
        check_ahead_by(0);
        CHECK_CONTAINS(log, "NEWSLETTERD_TEST_CLOCK_OFFSET=-86400 ignored");
        free(log);
        log = init_with("31d");
        check_ahead_by(0);
        CHECK_CONTAINS(log, "NEWSLETTERD_TEST_CLOCK_OFFSET=31d ignored");
        free(log);
}

static void test_parse_time(void)
{
        int64_t t = 0;
        CHECK_INT(clock_parse_time("2026-12-07T08:00:00Z", &t), 0);
        CHECK_INT(t, 1796630400);
        CHECK_INT(clock_parse_time("2026-12-07t08:00:00.250z", &t), 0);
        CHECK_INT(t, 1796630400);
        CHECK_INT(clock_parse_time("2026-12-07T09:30:00+01:30", &t), 0);
        CHECK_INT(t, 1796630400);
        CHECK_INT(clock_parse_time("2026-12-07T03:00:00-05:00", &t), 0);
        CHECK_INT(t, 1796630400);
        CHECK_INT(clock_parse_time("2024-02-29T00:00:00Z", &t), 0);
        /* local time, as TZ says */
        setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);    /* POSIX: no tzdata needed */
        tzset();
        CHECK_INT(clock_parse_time("2026-12-07 09:00", &t), 0);
        CHECK_INT(t, 1796630400);
        CHECK_INT(clock_parse_time("2026-07-07 10:00", &t), 0);     /* summer: +02:00 */
        CHECK_INT(t, 1783411200);
        unsetenv("TZ");
        tzset();
        static const char *const bad[] = {
                "", "morgen", "2026-12-07", "2026-12-07T08:00Z", "2026-12-07 08:00:00", "2026-12-07 8:00",
                "2026-13-01 08:00", "2026-02-30 08:00", "2025-02-29T00:00:00Z", "2026-12-07T24:00:00Z",
                "2026-12-07T08:60:00Z", "2026-12-07T08:00:00", "2026-12-07T08:00:00+1:00",
                "2026-12-07T08:00:00+01:00x", "2026-12-07T08:00:00.Z", "2026-12-07X08:00:00Z",
                " 2026-12-07 08:00", "2026-12-07 08:00 ", "1969-12-31T23:59:59Z", "-026-12-07 08:00",
                NULL,
        };
        for (size_t i = 0; bad[i]; i++) {
                t = 42;
                if (!CHECK_INT(clock_parse_time(bad[i], &t), 1))
                        fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
                CHECK_INT(t, 42);
        }
        CHECK_INT(clock_parse_time(NULL, &t), 1);
}

static void test_format_rfc3339(void)
{
        char out[CLOCK_RFC3339_LEN];
        clock_format_rfc3339(1796630400, out);
        CHECK_STR(out, "2026-12-07T08:00:00Z");
        clock_format_rfc3339(0, out);
        CHECK_STR(out, "1970-01-01T00:00:00Z");
}

int main(void)
{
        log_set_repeat_interval(0);
        RUN(test_parse);
        RUN(test_real_time_by_default);
        RUN(test_offset_moves_the_clock_forward_with_a_warning);
        RUN(test_invalid_offset_is_ignored_with_a_warning);
        RUN(test_parse_time);
        RUN(test_format_rfc3339);
        return unit_finish();
}
