/*
 * test-promtext.c - the stats JSON in the Prometheus text format: the
 * labelled families of the table, the generic mapping of figures nobody
 * told promtext.c about, times, escaping, names made valid, a family name
 * never printed twice, the cap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "promtext.h"
#include "unit.h"

/* promtext_format() of a JSON text; the output, to be freed. */
static char *format(const char *json_text, size_t cap, int *rc)
{
        json_error_t err;
        json_t *j = json_loads(json_text, 0, &err);
        if (!j) {
                fprintf(stderr, "bad test JSON: %s\n", err.text);
                abort();
        }
        struct buf b;
        buf_init(&b, cap);
        *rc = promtext_format(j, &b);
        json_decref(j);
        char *s = buf_steal(&b, NULL);
        buf_free(&b);
        return s ? s : strdup("");
}

static char *format_ok(const char *json_text)
{
        int rc;
        char *s = format(json_text, 0, &rc);
        CHECK_INT(rc, 0);
        return s;
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* The figures of today's stats answer, exactly. */
static void test_stats_shape(void)
{
        char *s = format_ok(
                "{\"state\":\"ok\",\"message\":\"done\","
                "\"subscribers\":{\"pending\":2,\"confirmed\":5},"
                "\"mails\":{\"queued\":1,\"sent\":7},"
                "\"bounces\":{\"permanent\":3},"
                "\"days\":[{\"date\":\"2026-12-06\",\"signups\":4,\"confirmations\":1},"
                "{\"date\":\"2026-12-07\",\"signups\":0,\"confirmations\":2}]}");
        CHECK_STR(s,
                "# HELP newsletterd_subscribers Subscriptions by state (one address on two lists counts twice).\n"
                "# TYPE newsletterd_subscribers gauge\n"
                "newsletterd_subscribers{state=\"pending\"} 2\n"
                "newsletterd_subscribers{state=\"confirmed\"} 5\n"
                "# HELP newsletterd_mails Mails in the outbox by state; queued includes those being sent.\n"
                "# TYPE newsletterd_mails gauge\n"
                "newsletterd_mails{state=\"queued\"} 1\n"
                "newsletterd_mails{state=\"sent\"} 7\n"
                "# HELP newsletterd_bounces Bounce reports and complaints received and kept, by class.\n"
                "# TYPE newsletterd_bounces gauge\n"
                "newsletterd_bounces{class=\"permanent\"} 3\n"
                "# HELP newsletterd_days_signups Sign-ups on one UTC day (the last 30 days).\n"
                "# TYPE newsletterd_days_signups gauge\n"
                "newsletterd_days_signups{date=\"2026-12-06\"} 4\n"
                "newsletterd_days_signups{date=\"2026-12-07\"} 0\n"
                "# HELP newsletterd_days_confirmations Confirmed sign-ups on one UTC day (the last 30 days).\n"
                "# TYPE newsletterd_days_confirmations gauge\n"
                "newsletterd_days_confirmations{date=\"2026-12-06\"} 1\n"
                "newsletterd_days_confirmations{date=\"2026-12-07\"} 2\n");
        free(s);
}

/* Figures the table does not know appear anyway: numbers by path, times
 * as Unix time, arrays of objects labelled by their strings. */
static void test_new_figures(void)
{
        char *s = format_ok(
                "{\"imap\":{\"handled\":3,\"not_understood\":0,\"last_poll\":\"2026-12-07T00:00:00Z\","
                "\"mailbox\":\"imaps://mail.example.org/INBOX\",\"enabled\":true,\"nothing\":null},"
                "\"refusing_domains\":[{\"domain\":\"example.net\",\"reason\":\"blocked\",\"count\":4,"
                "\"last\":\"2026-12-07T01:02:03+01:00\"}],"
                "\"load\":0.5}");
        CHECK_CONTAINS(s, "# HELP newsletterd_imap_handled The figure imap.handled of newsletterctl stats --json.\n"
                          "# TYPE newsletterd_imap_handled gauge\nnewsletterd_imap_handled 3\n");
        CHECK_CONTAINS(s, "\nnewsletterd_imap_not_understood 0\n");
        /* 2026-12-07T00:00:00Z = 1796601600 */
        CHECK_CONTAINS(s, "# TYPE newsletterd_imap_last_poll_timestamp_seconds gauge\n"
                          "newsletterd_imap_last_poll_timestamp_seconds 1796601600\n");
        CHECK_CONTAINS(s, "\nnewsletterd_imap_enabled 1\n");
        CHECK(!strstr(s, "mailbox"));
        CHECK(!strstr(s, "nothing"));
        CHECK_CONTAINS(s, "# TYPE newsletterd_refusing_domains_count gauge\n"
                          "newsletterd_refusing_domains_count{domain=\"example.net\",reason=\"blocked\"} 4\n");
        CHECK_CONTAINS(s, "newsletterd_refusing_domains_last_timestamp_seconds{domain=\"example.net\","
                          "reason=\"blocked\"} 1796601723\n");
        CHECK_CONTAINS(s, "\nnewsletterd_load 0.5\n");
        CHECK(!strstr(s, "state"));
        free(s);
}

/* Keys become valid names; label values and HELP are escaped. */
static void test_escaping(void)
{
        char *s = format_ok(
                "{\"mails\":{\"a\\\"b\\\\c\\nd\":1},"
                "\"per-list.x\":{\"big list\":2},"
                "\"rows\":[{\"__name\":\"x\\\"y\",\"9th\":\"z\",\"n\":1}]}");
        CHECK_CONTAINS(s, "newsletterd_mails{state=\"a\\\"b\\\\c\\nd\"} 1\n");
        CHECK_CONTAINS(s, "\nnewsletterd_per_list_x_big_list 2\n");
        CHECK_CONTAINS(s, "# HELP newsletterd_per_list_x_big_list The figure per-list.x.big list of newsletterctl");
        CHECK_CONTAINS(s, "newsletterd_rows_n{l__name=\"x\\\"y\",l9th=\"z\"} 1\n");
        free(s);
}

/* Two figures whose names come out alike: the second is left out, as the
 * collector refuses a file that has a family twice. */
static void test_no_family_twice(void)
{
        char *s = format_ok("{\"a_b\":1,\"a\":{\"b\":2},\"a-b\":3}");
        CHECK_UINT(count(s, "# TYPE newsletterd_a_b "), 1);
        CHECK_CONTAINS(s, "\nnewsletterd_a_b 1\n");
        CHECK(!strstr(s, " 2\n"));
        CHECK(!strstr(s, " 3\n"));
        free(s);
}

/* A key ending in _total is a counter; arrays of numbers are labelled by
 * index; a labelled object with a non-figure is walked as any other. */
static void test_counter_and_arrays(void)
{
        char *s = format_ok("{\"handled_total\":9,\"sizes\":[4,5],"
                            "\"subscribers\":{\"pending\":1,\"note\":\"x\"}}");
        CHECK_CONTAINS(s, "# TYPE newsletterd_handled_total counter\nnewsletterd_handled_total 9\n");
        CHECK_CONTAINS(s, "newsletterd_sizes{index=\"0\"} 4\nnewsletterd_sizes{index=\"1\"} 5\n");
        CHECK_CONTAINS(s, "\nnewsletterd_subscribers_pending 1\n");
        free(s);
}

/* What is no RFC 3339 time stays a string (a label, or nothing). */
static void test_times(void)
{
        char *s = format_ok("{\"a\":\"2026-13-01T00:00:00Z\",\"b\":\"2026-12-07T00:00:00\","
                            "\"c\":\"2026-12-07T00:00:00.5Z\",\"d\":\"2026-12-07T00:00:00Zjunk\","
                            "\"days\":[{\"date\":\"2026-12-07\",\"n\":1}]}");
        CHECK(!strstr(s, "newsletterd_a_"));
        CHECK(!strstr(s, "newsletterd_b_"));
        CHECK_CONTAINS(s, "\nnewsletterd_c_timestamp_seconds 1796601600.5\n");
        CHECK(!strstr(s, "newsletterd_d_"));
        CHECK_CONTAINS(s, "newsletterd_days_n{date=\"2026-12-07\"} 1\n");
        free(s);
}

/* The cap: -E2BIG, never more than it. */
static void test_cap(void)
{
        int rc;
        char *s = format("{\"subscribers\":{\"pending\":2,\"confirmed\":5}}", 64, &rc);
        CHECK_INT(rc, -E2BIG);
        CHECK(strlen(s) <= 64);
        free(s);
        s = format("[1,2]", 0, &rc);            /* no object: nothing */
        CHECK_INT(rc, 0);
        CHECK_STR(s, "");
        free(s);
}

int main(void)
{
        RUN(test_stats_shape);
        RUN(test_new_figures);
        RUN(test_escaping);
        RUN(test_no_family_twice);
        RUN(test_counter_and_arrays);
        RUN(test_times);
        RUN(test_cap);
        return unit_finish();
}
