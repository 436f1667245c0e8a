/*
 * test-bounce.c - what bounce_parse() makes of returned mail: every sample
 * in tests/bounces/ against tests/bounces/EXPECTED (also with its line ends
 * converted), the VERP address rules, how DSN recipient groups and feedback
 * types are classified, and that no input - cut off anywhere, nested 100k
 * deep, with huge lines, NUL bytes or random damage - crashes it, reads
 * outside the message or gives an output that breaks its promises.
 *
 * The sample directory is argv[1], else $SOURCE_ROOT/tests/bounces.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "bounce.h"
#include "buf.h"
#include "log.h"
#include "secret.h"
#include "unit.h"

#define TEMPLATE        "bounces+{id}@news.example.org"
#define SAMPLES_MIN     20

static const char *sample_dir;

/* ---- helpers ------------------------------------------------------------ */

static char *file_read(const char *dir, const char *name, size_t *len)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "    %s: %s\n", path, strerror(errno));
                return NULL;
        }
        struct buf b;
        buf_init(&b, 0);
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                buf_append(&b, chunk, n);
        fclose(f);
        return buf_steal(&b, len);
}

/* LF -> CRLF when the text has no CR, else CRLF -> LF. */
static char *flip_line_ends(const char *s, size_t n, size_t *out_len)
{
        bool has_cr = memchr(s, '\r', n) != NULL;
        struct buf b;
        buf_init(&b, 0);
        for (size_t i = 0; i < n; i++) {
                if (has_cr && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
                        continue;
                if (!has_cr && s[i] == '\n')
                        buf_putc(&b, '\r');
                buf_putc(&b, s[i]);
        }
        return buf_steal(&b, out_len);
}

/* What every result must satisfy, whatever the input. */
static void check_sane(int rc, const struct bounce_info *bi, const char *what)
{
        unsigned before = unit_test_failures;
        CHECK_INT(rc, 0);
        CHECK(bi->kind >= BOUNCE_UNKNOWN && bi->kind <= BOUNCE_SENDER);
        CHECK(bi->mail_id >= 0 && bi->mail_id <= 999999999999999999LL);
        REQUIRE(memchr(bi->recipient, '\0', sizeof(bi->recipient)) != NULL);
        REQUIRE(memchr(bi->status, '\0', sizeof(bi->status)) != NULL);
        REQUIRE(memchr(bi->diagnostic, '\0', sizeof(bi->diagnostic)) != NULL);
        if (bi->recipient[0]) {
                struct addr a;
                if (CHECK_INT(addr_parse(bi->recipient, strlen(bi->recipient), &a), ADDR_OK))
                        CHECK_STR(a.mailbox, bi->recipient);    /* already normalised */
        }
        if (bi->status[0]) {
                const char *s = bi->status;
                CHECK(*s == '2' || *s == '4' || *s == '5');
                int dots = 0, digits = 0;
                for (s++; *s; s++) {
                        if (*s == '.') {
                                CHECK(s[-1] != '.');
                                dots++;
                                digits = 0;
                        } else {
                                CHECK(*s >= '0' && *s <= '9');
                                CHECK(++digits <= 3);
                        }
                }
                CHECK_INT(dots, 2);
                CHECK(s[-1] != '.');
        }
        for (const char *d = bi->diagnostic; *d; d++)
                CHECK(*d >= 0x20 && *d < 0x7f);
        if (unit_test_failures != before)
                fprintf(stderr, "    input: %s\n", what);
}

/* The keys the samples' tags were made with: KEY_OLD = bytes 0..31 (as
 * the EXPECTED file says), checked as the file's second key, behind a
 * current one of 0xff bytes. */
static struct secret_keys keys;

static void keys_init(void)
{
        keys.n = 2;
        memset(keys.key[0], 0xff, SECRET_KEY_LEN);
        for (int i = 0; i < SECRET_KEY_LEN; i++)
                keys.key[1][i] = (uint8_t)i;
}

/* "{N}" (N decimal digits) in s stands for the VERP "N-TAG" of mail N
 * under the older key, as a mail sent before the key changed has it. */
static char *tags_expand(const char *s, size_t n, size_t *out_len)
{
        struct buf b;
        buf_init(&b, 0);
        for (size_t i = 0; i < n; i++) {
                size_t j = i + 1;
                while (s[i] == '{' && j < n && j - i <= 19 && s[j] >= '0' && s[j] <= '9')
                        j++;
                if (s[i] == '{' && j > i + 1 && j < n && s[j] == '}') {
                        char tag[SECRET_TAG_LEN + 1];
                        long long id = strtoll(s + i + 1, NULL, 10);
                        secret_tag(keys.key[1], id, tag);
                        buf_printf(&b, "%lld-%s", id, tag);
                        i = j;
                        continue;
                }
                buf_putc(&b, s[i]);
        }
        return buf_steal(&b, out_len);
}

/* Parse a copy of exactly n bytes on the heap, so that ASan sees any read
 * past the end; "{N}" becomes a tagged mail id first. */
static struct bounce_info parse_exact(const char *s, size_t n, const char *tmpl, const char *what)
{
        struct bounce_info bi;
        size_t len;
        char *text = tags_expand(s, n, &len);
        char *copy = xmalloc(len ? len : 1);
        if (len)
                memcpy(copy, text, len);
        free(text);
        int rc = bounce_parse(copy, len, tmpl, &keys, &bi);
        free(copy);
        check_sane(rc, &bi, what);
        CHECK((bi.mail_id > 0) == (bi.verp == BOUNCE_VERP_VALID));
        return bi;
}

static struct bounce_info parse_str(const char *s)
{
        return parse_exact(s, strlen(s), TEMPLATE, s);
}

/* ---- the samples -------------------------------------------------------- */

struct expect {
        char file[128];
        char kind[32];
        long long mail_id;
        char recipient[ADDR_PATH_MAX + 1];
        char status[16];
        char diag[256];
        bool used;
};

static size_t expectations_load(struct expect *ex, size_t max)
{
        size_t len, n = 0;
        char *text = file_read(sample_dir, "EXPECTED", &len);
        if (!text)
                return 0;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (line[0] == '#' || line[strspn(line, " \t")] == '\0')
                        continue;
                if (!CHECK(n < max))
                        break;
                struct expect *e = &ex[n];
                int off = 0;
                memset(e, 0, sizeof(*e));
                if (!CHECK_INT(sscanf(line, "%127s %31s %lld %254s %15s %n", e->file, e->kind,
                                      &e->mail_id, e->recipient, e->status, &off), 5)) {
                        fprintf(stderr, "    EXPECTED line: %s\n", line);
                        continue;
                }
                if (off > 0)
                        snprintf(e->diag, sizeof(e->diag), "%s", line + off);
                if (strcmp(e->recipient, "-") == 0)
                        e->recipient[0] = '\0';
                if (strcmp(e->status, "-") == 0)
                        e->status[0] = '\0';
                n++;
        }
        free(text);
        return n;
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t samples_list(char **names, size_t max)
{
        DIR *d = opendir(sample_dir);
        if (!d) {
                fprintf(stderr, "    %s: %s\n", sample_dir, strerror(errno));
                return 0;
        }
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
                size_t l = strlen(de->d_name);
                if (l > 4 && strcmp(de->d_name + l - 4, ".eml") == 0 && n < max)
                        names[n++] = xstrdup(de->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), name_cmp);
        return n;
}

static bool result_matches(const struct bounce_info *bi, const struct expect *e, const char *what)
{
        unsigned before = unit_test_failures;
        CHECK_STR(bounce_kind_name(bi->kind), e->kind);
        CHECK_INT(bi->mail_id, e->mail_id);
        CHECK_STR(bi->recipient, e->recipient);
        CHECK_STR(bi->status, e->status);
        if (e->diag[0])
                CHECK_CONTAINS(bi->diagnostic, e->diag);
        if (unit_test_failures != before) {
                fprintf(stderr, "    sample: %s (diagnostic \"%s\")\n", what, bi->diagnostic);
                return false;
        }
        return true;
}

static void test_samples(void)
{
        static struct expect ex[128];
        char *names[128];
        REQUIRE(sample_dir != NULL);
        size_t n_ex = expectations_load(ex, 128);
        size_t n = samples_list(names, 128);
        CHECK(n >= SAMPLES_MIN);
        CHECK_UINT(n_ex, n);
        for (size_t i = 0; i < n; i++) {
                struct expect *e = NULL;
                for (size_t k = 0; k < n_ex; k++)
                        if (strcmp(ex[k].file, names[i]) == 0)
                                e = &ex[k];
                if (!CHECK(e != NULL)) {
                        fprintf(stderr, "    no line in EXPECTED for %s\n", names[i]);
                        free(names[i]);
                        continue;
                }
                e->used = true;
                size_t len;
                char *msg = file_read(sample_dir, names[i], &len);
                if (!CHECK(msg != NULL)) {
                        free(names[i]);
                        continue;
                }
                char what[256];
                struct bounce_info bi = parse_exact(msg, len, TEMPLATE, names[i]);
                result_matches(&bi, e, names[i]);

                /* the same with the other line ends */
                size_t flen;
                char *flipped = flip_line_ends(msg, len, &flen);
                CHECK(flen != len);
                snprintf(what, sizeof(what), "%s with line ends converted", names[i]);
                struct bounce_info fb = parse_exact(flipped, flen, TEMPLATE, what);
                if (result_matches(&fb, e, what))
                        CHECK_STR(fb.diagnostic, bi.diagnostic);
                free(flipped);

                /* without a template: no id, nothing else changes */
                for (int t = 0; t < 2; t++) {
                        snprintf(what, sizeof(what), "%s without a template", names[i]);
                        struct bounce_info nb = parse_exact(msg, len, t ? "" : NULL, what);
                        CHECK_INT(nb.mail_id, 0);
                        CHECK_INT(nb.kind, bi.kind);
                        CHECK_STR(nb.recipient, bi.recipient);
                        CHECK_STR(nb.status, bi.status);
                }
                free(msg);
                free(names[i]);
        }
        for (size_t k = 0; k < n_ex; k++)
                if (!CHECK(ex[k].used))
                        fprintf(stderr, "    EXPECTED names a missing sample: %s\n", ex[k].file);
}

/* ---- VERP --------------------------------------------------------------- */

/* A permanent DSN whose headers are `headers` (each line LF-terminated). */
static struct bounce_info dsn_with_headers(const char *headers, const char *tmpl)
{
        struct buf b;
        buf_init(&b, 0);
        buf_printf(&b, "%sFrom: MAILER-DAEMON@mx.example.net\n"
                   "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n"
                   "\n--B\nContent-Type: message/delivery-status\n\n"
                   "Reporting-MTA: dns; mx.example.net\n\n"
                   "Final-Recipient: rfc822; x@example.net\nAction: failed\nStatus: 5.1.1\n"
                   "\n--B--\n", headers);
        struct bounce_info bi = parse_exact(b.data, b.len, tmpl, headers);
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        buf_free(&b);
        return bi;
}

static int64_t verp_id(const char *to, const char *tmpl)
{
        char h[1024];
        snprintf(h, sizeof(h), "X-Original-To: %s\n", to);
        return dsn_with_headers(h, tmpl).mail_id;
}

static void test_verp(void)
{
        CHECK_INT(verp_id("bounces+{4711}@news.example.org", TEMPLATE), 4711);
        CHECK_INT(verp_id("<bounces+{4711}@news.example.org>", TEMPLATE), 4711);
        CHECK_INT(verp_id("  bounces+{4711}@news.example.org  ", TEMPLATE), 4711);
        CHECK_INT(verp_id("bounces+{4711}@NEWS.Example.ORG", TEMPLATE), 4711);    /* domain: any case */
        CHECK_INT(verp_id("Bounces+4711@news.example.org", TEMPLATE), 0);       /* local part: exact */
        CHECK_INT(verp_id("bounces+0@news.example.org", TEMPLATE), 0);          /* 0 is no id */
        CHECK_INT(verp_id("bounces+{1}@news.example.org", TEMPLATE), 1);
        CHECK_INT(verp_id("bounces+0471@news.example.org", TEMPLATE), 0);       /* leading zero */
        CHECK_INT(verp_id("bounces+00@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+47a1@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+-47@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+ 47@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+47 @news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+{999999999999999999}@news.example.org", TEMPLATE),
                  999999999999999999LL);                                          /* 18 digits */
        CHECK_INT(verp_id("bounces+1000000000000000000@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+9223372036854775807@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+99999999999999999999999@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("xbounces+{4711}@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+{4711}@news.example.org.evil.example", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+{4711}@evil.news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+{4711}@example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+4711", TEMPLATE), 0);
        CHECK_INT(verp_id("", TEMPLATE), 0);

        /* lists, display names, comments */
        CHECK_INT(verp_id("a@example.net, Club <bounces+{77}@news.example.org>", TEMPLATE), 77);
        CHECK_INT(verp_id("\"Doe, J\" <j@example.net>, bounces+{78}@news.example.org", TEMPLATE), 78);
        CHECK_INT(verp_id("bounces+{79}@news.example.org (the bounce box)", TEMPLATE), 79);
        CHECK_INT(verp_id("\"bounces+{80}@news.example.org\" <other@example.net>", TEMPLATE), 0);

        /* other templates */
        CHECK_INT(verp_id("{4711}@bounce.example.org", "{id}@bounce.example.org"), 4711);
        CHECK_INT(verp_id("b-{4711}-x@example.org", "b-{id}-x@example.org"), 4711);
        CHECK_INT(verp_id("b-{4711}-X@example.org", "b-{id}-x@example.org"), 0);
        CHECK_INT(verp_id("bounces+{4711}@news.example.org", "bounces@news.example.org"), 0);
        CHECK_INT(verp_id("bounces+{4711}@news.example.org", NULL), 0);
        CHECK_INT(verp_id("bounces+{4711}@news.example.org", ""), 0);

        /* where the id is looked for, in order */
        /* the topmost Delivered-To or X-Original-To (the MTA's pipe adds
         * it) names the envelope recipient; the report's own below it and
         * To do not */
        CHECK_INT(dsn_with_headers("Delivered-To: bounces+{2}@news.example.org\n"
                                   "To: bounces+{3}@news.example.org\n"
                                   "X-Original-To: bounces+{1}@news.example.org\n", TEMPLATE).mail_id, 2);
        CHECK_INT(dsn_with_headers("X-Original-To: bounces+{1}@news.example.org\n"
                                   "Delivered-To: bounces+{2}@news.example.org\n", TEMPLATE).mail_id, 1);
        CHECK_INT(dsn_with_headers("To: bounces+{3}@news.example.org\n", TEMPLATE).mail_id, 3);
        CHECK_INT(dsn_with_headers("To: Bounces <bounces+{3}@news.example.org>\n", TEMPLATE).mail_id, 3);
        CHECK_INT(dsn_with_headers("To:\n bounces+{4}@news.example.org\n", TEMPLATE).mail_id, 4);
        CHECK_INT(dsn_with_headers("Cc: bounces+{5}@news.example.org\n", TEMPLATE).mail_id, 0);
        CHECK_INT(dsn_with_headers("X-ORIGINAL-TO: bounces+{6}@news.example.org\n", TEMPLATE).mail_id, 6);
        /* a field without our form (a hosted mailbox's own plain address,
         * added on top) is skipped: the topmost one of our form decides,
         * and without any, To and the report's fields are looked at */
        CHECK_INT(dsn_with_headers("Delivered-To: bounces@news.example.org\n"
                                   "X-Original-To: bounces+{1}@news.example.org\n"
                                   "To: bounces+{3}@news.example.org\n", TEMPLATE).mail_id, 1);
        CHECK_INT(dsn_with_headers("Delivered-To: bounces@news.example.org\n"
                                   "To: bounces+{3}@news.example.org\n", TEMPLATE).mail_id, 3);
        CHECK_INT(dsn_with_headers("X-Original-To: <bounces@NEWS.example.org>\n"
                                   "Delivered-To: postmaster@news.example.org\n"
                                   "To: Bounces <bounces+{3}@news.example.org>\n", TEMPLATE).mail_id, 3);
        CHECK_INT(dsn_with_headers("Delivered-To: bounces@news.example.org\n"
                                   "Delivered-To: bounces+{2}@news.example.org\n"
                                   "X-Original-To: bounces+{1}@news.example.org\n", TEMPLATE).mail_id, 2);
        CHECK_INT(dsn_with_headers("Delivered-To: bounces@news.example.org, bounces+{2}@news.example.org\n"
                                   "X-Original-To: bounces+{1}@news.example.org\n", TEMPLATE).mail_id, 2);
        CHECK_INT(dsn_with_headers("Delivered-To: bounces@news.example.org\n", TEMPLATE).verp,
                  BOUNCE_VERP_ABSENT);
        /* one of our form with a wrong tag still decides: neither a lower
         * one nor To overrides it */
        struct bounce_info forged = dsn_with_headers("Delivered-To: bounces@news.example.org\n"
                                                     "Delivered-To: bounces+1-0000000000000000@news.example.org\n"
                                                     "X-Original-To: bounces+{1}@news.example.org\n"
                                                     "To: bounces+{3}@news.example.org\n", TEMPLATE);
        CHECK_INT(forged.mail_id, 0);
        CHECK_INT(forged.verp, BOUNCE_VERP_INVALID);

        /* the returned original and the feedback report come after the headers */
        struct bounce_info bi = parse_str(
                "To: bounces+{9}@news.example.org\n"
                "Content-Type: multipart/report; report-type=feedback-report; boundary=F\n"
                "\n--F\nContent-Type: message/feedback-report\n\n"
                "Feedback-Type: abuse\nOriginal-Mail-From: <bounces+{10}@news.example.org>\n"
                "\n--F\nContent-Type: message/rfc822\n\n"
                "Return-Path: <bounces+{11}@news.example.org>\nTo: r@example.net\n\nbody\n--F--\n");
        CHECK_INT(bi.kind, BOUNCE_COMPLAINT);
        CHECK_INT(bi.mail_id, 9);
        CHECK_STR(bi.recipient, "r@example.net");
        bi = parse_str(
                "To: fbl@news.example.org\n"
                "Content-Type: multipart/report; report-type=feedback-report; boundary=F\n"
                "\n--F\nContent-Type: message/feedback-report\n\n"
                "Feedback-Type: abuse\nOriginal-Mail-From: <bounces+{10}@news.example.org>\n"
                "\n--F\nContent-Type: message/rfc822\n\n"
                "Return-Path: <bounces+{11}@news.example.org>\nTo: r@example.net\n\nbody\n--F--\n");
        CHECK_INT(bi.mail_id, 10);
        bi = parse_str(
                "To: fbl@news.example.org\n"
                "Content-Type: multipart/report; report-type=feedback-report; boundary=F\n"
                "\n--F\nContent-Type: message/feedback-report\n\n"
                "Feedback-Type: abuse\nOriginal-Mail-From: <someone@news.example.org>\n"
                "\n--F\nContent-Type: message/rfc822\n\n"
                "Return-Path: <bounces+{11}@news.example.org>\nTo: r@example.net\n\nbody\n--F--\n");
        CHECK_INT(bi.mail_id, 11);
}

/* What the VERP addresses of a DSN delivered to `to` showed. */
static enum bounce_verp verp_state(const char *to)
{
        char h[1024];
        snprintf(h, sizeof(h), "X-Original-To: %s\n", to);
        return dsn_with_headers(h, TEMPLATE).verp;
}

static void test_verp_tags(void)
{
        char tag[SECRET_TAG_LEN + 1], addr[128];
        /* only the tag we made for that id counts: not a bare or sequential
         * id (the form of old), nor another mail's tag, nor a cut one */
        CHECK_INT(verp_id("bounces+4711@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_state("bounces+4711@news.example.org"), BOUNCE_VERP_INVALID);
        CHECK_INT(verp_id("bounces+4711-e79c97aee3d51936@news.example.org", TEMPLATE), 4711);
        CHECK_INT(verp_state("bounces+4711-e79c97aee3d51936@news.example.org"), BOUNCE_VERP_VALID);
        CHECK_INT(verp_id("bounces+4711-E79C97AEE3D51936@news.example.org", TEMPLATE), 4711);
        CHECK_INT(verp_id("bounces+4711-e79c97aee3d51937@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+4712-e79c97aee3d51936@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+4711-e79c97aee3d5193@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+4711-e79c97aee3d519360@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+4711e79c97aee3d51936@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+4711--e79c97aee3d51936@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+-e79c97aee3d51936@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_id("bounces+04711-e79c97aee3d51936@news.example.org", TEMPLATE), 0);
        CHECK_INT(verp_state("bounces+04711-e79c97aee3d51936@news.example.org"), BOUNCE_VERP_INVALID);
        CHECK_INT(verp_state("bounces+@news.example.org"), BOUNCE_VERP_INVALID);
        /* the current key's tags count as the older one's do */
        secret_tag(keys.key[0], 4711, tag);
        snprintf(addr, sizeof(addr), "bounces+4711-%s@news.example.org", tag);
        CHECK_INT(verp_id(addr, TEMPLATE), 4711);
        /* no address of our form at all */
        CHECK_INT(verp_state("bounces@news.example.org"), BOUNCE_VERP_ABSENT);
        CHECK_INT(verp_state("postmaster@news.example.org"), BOUNCE_VERP_ABSENT);
        CHECK_INT(dsn_with_headers("X-Original-To: bounces+{4711}@news.example.org\n", NULL).verp,
                  BOUNCE_VERP_ABSENT);
        /* a forged address on top is the envelope recipient: no valid id */
        CHECK_INT(dsn_with_headers("X-Original-To: bounces+1@news.example.org\n"
                                   "Delivered-To: bounces+{2}@news.example.org\n", TEMPLATE).mail_id, 0);
        /* without keys no tag is valid */
        struct bounce_info bi;
        static const char m[] = "X-Original-To: bounces+4711-e79c97aee3d51936@news.example.org\n"
                "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                "--B\nContent-Type: message/delivery-status\n\n"
                "Final-Recipient: rfc822; x@example.net\nAction: failed\nStatus: 5.1.1\n--B--\n";
        CHECK_INT(bounce_parse(m, sizeof(m) - 1, TEMPLATE, NULL, &bi), 0);
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_INT(bi.mail_id, 0);
        CHECK_INT(bi.verp, BOUNCE_VERP_INVALID);
        struct secret_keys none = { 0 };
        CHECK_INT(bounce_parse(m, sizeof(m) - 1, TEMPLATE, &none, &bi), 0);
        CHECK_INT(bi.mail_id, 0);
        CHECK_INT(bounce_parse(m, sizeof(m) - 1, TEMPLATE, &keys, &bi), 0);
        CHECK_INT(bi.mail_id, 4711);
}

/* ---- classification ----------------------------------------------------- */

/* A DSN with the given recipient groups (blank-line separated). */
static struct bounce_info dsn_groups(const char *groups)
{
        struct buf b;
        buf_init(&b, 0);
        buf_printf(&b, "X-Original-To: bounces+{5}@news.example.org\n"
                   "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b b\"\n"
                   "\n--b b\nContent-Type: text/plain\n\nsee below\n"
                   "\n--b b\nContent-Type: message/delivery-status\n\n"
                   "Reporting-MTA: dns; mx.example.net\n\n%s\n--b b--\n", groups);
        struct bounce_info bi = parse_exact(b.data, b.len, TEMPLATE, groups);
        CHECK_INT(bi.mail_id, 5);
        buf_free(&b);
        return bi;
}

static void test_dsn(void)
{
        struct bounce_info bi;
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "a@example.net");
        CHECK_STR(bi.status, "5.1.1");

        /* given up after temporary failures: still only temporary */
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 4.2.2\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.status, "4.2.2");
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: delayed\nStatus: 4.4.7\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: Delayed (retrying)\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);

        /* not failures */
        static const char *const fine[] = { "delivered", "relayed", "expanded" };
        for (size_t i = 0; i < 3; i++) {
                char g[256];
                snprintf(g, sizeof(g), "Final-Recipient: rfc822; a@example.net\nAction: %s\n"
                         "Status: 2.0.0\n", fine[i]);
                bi = dsn_groups(g);
                CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
                CHECK_STR(bi.recipient, "a@example.net");
        }
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 2.0.0\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);

        /* no status: the SMTP reply of the diagnostic decides */
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\n"
                        "Diagnostic-Code: smtp; 550 mailbox unavailable\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.status, "");
        CHECK_STR(bi.diagnostic, "550 mailbox unavailable");
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\n"
                        "Diagnostic-Code: smtp; mailbox unavailable\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        CHECK_STR(bi.status, "");
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1.1\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1234.1\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 6.1.1\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        /* no action: the status decides; 5.7.1 is a refusal of us */
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nStatus: 5.7.1\n");
        CHECK_INT(bi.kind, BOUNCE_SENDER);
        CHECK_STR(bi.reason, "securityerror");
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nStatus: 5.1.2\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.reason, "hostunknown");

        /* several groups: the failed one, whatever the order */
        bi = dsn_groups("Final-Recipient: rfc822; ok@example.net\nAction: delivered\nStatus: 2.0.0\n\n"
                        "Final-Recipient: rfc822; late@example.net\nAction: delayed\nStatus: 4.4.1\n\n"
                        "Final-Recipient: rfc822; bad@example.net\nAction: failed\nStatus: 5.1.1\n\n"
                        "Final-Recipient: rfc822; bad2@example.net\nAction: failed\nStatus: 5.1.2\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "bad@example.net");
        CHECK_STR(bi.status, "5.1.1");
        bi = dsn_groups("Final-Recipient: rfc822; ok@example.net\nAction: delivered\nStatus: 2.0.0\n\n"
                        "Final-Recipient: rfc822; late@example.net\nAction: delayed\nStatus: 4.4.1\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.recipient, "late@example.net");
        /* groups separated by lines of blanks, fields folded and odd case */
        bi = dsn_groups(" \t\nFINAL-RECIPIENT:\n  RFC822;\n  <Folded@Example.NET>\nACTION :FAILED\n"
                        "status:\t5.4.4 (unroutable)\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "Folded@example.net");
        CHECK_STR(bi.status, "5.4.4");

        /* which recipient */
        bi = dsn_groups("Original-Recipient: rfc822;sub@example.org\n"
                        "Final-Recipient: rfc822;fwd@example.net\nAction: failed\nStatus: 5.1.1\n");
        CHECK_STR(bi.recipient, "sub@example.org");
        bi = dsn_groups("Original-Recipient: rfc822;not an address\n"
                        "Final-Recipient: rfc822;fwd@example.net\nAction: failed\nStatus: 5.1.1\n");
        CHECK_STR(bi.recipient, "fwd@example.net");
        bi = dsn_groups("Final-Recipient: x400; c=de;a=x;p=y;s=z\nAction: failed\nStatus: 5.1.1\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "");
        bi = dsn_groups("Final-Recipient: rfc822; a@b@example.net\nAction: failed\nStatus: 5.1.1\n");
        CHECK_STR(bi.recipient, "");
        bi = dsn_groups("Final-Recipient: utf-8; a@b\xc3\xbc" "cher.example\nAction: failed\n"
                        "Status: 5.1.1\n");
        CHECK_STR(bi.recipient, "a@xn--bcher-kva.example");

        /* a DSN part without any recipient group is not a DSN */
        bi = dsn_groups("");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        CHECK_STR(bi.recipient, "");
}

/* A DSN whose groups carry only a generic Status, with each recipient's
 * reply in the notice above (as OpenSMTPD writes them): each recipient is
 * judged by its own line, not by the words of the other's. */
static void test_dsn_lines_in_the_notice(void)
{
        static const char msg[] =
                "X-Original-To: bounces+{5}@news.example.org\n"
                "From: MAILER-DAEMON@mx.example.net\n"
                "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n"
                "\n--B\nContent-Type: text/plain\n\n"
                "An error has occurred while delivering a message to these recipients:\n\n"
                "gone@example.net: 550 5.1.1 <gone@example.net>: Recipient address rejected: no such user\n"
                "full@example.net: 552 5.2.2 <full@example.net>: Recipient address rejected: quota exceeded\n"
                "\n--B\nContent-Type: message/delivery-status\n\n"
                "Reporting-MTA: dns; mx.example.net\n\n"
                "Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.0.0\n\n"
                "Final-Recipient: rfc822; full@example.net\nAction: failed\nStatus: 5.0.0\n"
                "\n--B--\n";
        struct bounce_info bi = parse_str(msg);
        REQUIRE(bounce_info_select(&bi, "gone@example.net"));
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.reason, "userunknown");
        CHECK(strstr(bi.diagnostic, "550 5.1.1") != NULL);
        bi = parse_str(msg);
        REQUIRE(bounce_info_select(&bi, "full@example.net"));
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "mailboxfull");
        /* a line with no enhanced code is not taken for the reason: the
         * reason may stand on the line before (Sendmail's "unknown user"
         * above "554 <x>... Service unavailable") */
        bi = parse_str("X-Original-To: bounces+{5}@news.example.org\n"
                       "From: MAILER-DAEMON@mx.example.net\n"
                       "Subject: Returned mail: Service unavailable\n"
                       "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n"
                       "\n--B\nContent-Type: text/plain\n\n"
                       "mail.local: unknown user: gone\n554 <gone@example.net>... Service unavailable\n"
                       "\n--B\nContent-Type: message/delivery-status\n\n"
                       "Reporting-MTA: dns; mx.example.net\n\n"
                       "Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.5.0\n"
                       "\n--B--\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.reason, "userunknown");
}

/* The remote server's own code in a gateway's diagnostic, over the
 * gateway's summary code before it. */
static void test_dsn_quoted_reply_code(void)
{
        struct bounce_info bi = dsn_groups(
                "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\n"
                "Diagnostic-Code: smtp; 5.1.0 - Address error 550-'5.7.1 <a@example.net>... "
                "Message refused'\n");
        CHECK_INT(bi.kind, BOUNCE_SENDER);
        CHECK_STR(bi.reason, "securityerror");
        /* the summary's code alone would have called the address dead */
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\n"
                        "Diagnostic-Code: smtp; 5.1.0 - Address error 550 Message refused\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
}

/* PowerMTA's own category of a failure names the reason: it had the
 * whole dialogue, the diagnostic quotes one line ("5.2.1 ... User
 * Unknown" filed as bad-mailbox); an unknown category names nothing. */
static void test_dsn_mta_category(void)
{
        static const char group[] = "Final-Recipient: rfc822; a@example.net\nAction: failed\n"
                                    "Status: 5.2.1 (mailbox disabled, not accepting messages)\n"
                                    "Diagnostic-Code: smtp;550 5.2.1 <a@example.net>... User Unknown\n";
        char buf[1024];
        struct bounce_info bi = dsn_groups(group);
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "filtered");
        snprintf(buf, sizeof(buf), "%sX-PowerMTA-BounceCategory: bad-mailbox\n", group);
        bi = dsn_groups(buf);
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.reason, "userunknown");
        snprintf(buf, sizeof(buf), "%sX-PowerMTA-BounceCategory: Spam-Related\n", group);
        bi = dsn_groups(buf);
        CHECK_INT(bi.kind, BOUNCE_SENDER);
        CHECK_STR(bi.reason, "spamdetected");
        /* a dead-address category never makes a refusal of us one */
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.7.1\n"
                        "Diagnostic-Code: smtp;550 5.7.1 Service unavailable; client [192.0.2.1] blocked "
                        "using zen.spamhaus.org\nX-PowerMTA-BounceCategory: bad-mailbox\n");
        CHECK_INT(bi.kind, BOUNCE_SENDER);
        CHECK_STR(bi.reason, "blocked");
        snprintf(buf, sizeof(buf), "%sX-PowerMTA-BounceCategory: other\n", group);
        bi = dsn_groups(buf);
        CHECK_STR(bi.reason, "filtered");
        /* nor does it make a warning (the MTA keeps trying) permanent */
        bi = dsn_groups("Final-Recipient: rfc822; a@example.net\nAction: delayed\nStatus: 4.2.1\n"
                        "Diagnostic-Code: smtp;450 4.2.1 try later\nX-PowerMTA-BounceCategory: bad-mailbox\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "userunknown");
}

static void test_transfer_encodings(void)
{
        /* base64 with junk and odd line lengths; quoted-printable with soft
         * breaks, trailing blanks and a stray '=' */
        struct bounce_info bi = parse_str(
                "To: bounces+{12}@news.example.org\n"
                "Content-Type: multipart/report; report-type=delivery-status; boundary=Z\n\n"
                "--Z\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: BASE64\n\n"
                "RmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGI2NEBleGFtcGxl \t!\n"
                "Lm5ldApBY3Rpb246IGZhaWxlZApTdGF0dXM6IDUuMS4xCg==\n"
                "--Z--\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "b64@example.net");
        bi = parse_str(
                "Content-Type: multipart/report; report-type=delivery-status; boundary=Z\n\n"
                "--Z\nContent-Type: message/delivery-status\n"
                "Content-Transfer-Encoding: quoted-printable\n\n"
                "Final-Recipient: rfc822; q=\n"
                "p@example.net\nAction: fa=69led  \nStatus: 5.=312.1\n"
                "Diagnostic-Code: smtp; 550 a=b =3D c=\n"
                "--Z--\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);   /* 5.12.1 and no words: not known dead */
        CHECK_STR(bi.recipient, "qp@example.net");
        CHECK_STR(bi.status, "5.12.1");
        CHECK_STR(bi.diagnostic, "550 a=b = c");

        /* an encoded part that runs into the end of the message may stop in
         * the middle of a value ("someone@example.co" of ".com"): GMime
         * decodes what is there, and the intake then finds a recipient
         * that is not the mail's and refuses the report (test_bounce_corpus
         * and test_deliverability: "another recipient") */
        static const char cut_b64[] =
                "Content-Type: multipart/report; report-type=delivery-status; boundary=C\n\n"
                "--C\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
                "QWN0aW9uOiBmYWlsZWQKU3RhdHVzOiA1LjEuMQpGaW5hbC1SZWNpcGllbnQ6IHJmYzgyMjsgc29t\n"
                "ZW9uZUBleGFtcGxlLmNv\n";
        bi = parse_str(cut_b64);
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "someone@example.co");
        char closed[sizeof(cut_b64) + 8];
        snprintf(closed, sizeof(closed), "%s--C--\n", cut_b64);
        bi = parse_str(closed);
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "someone@example.co");
}

static void test_feedback(void)
{
        static const struct {
                const char *type;
                enum bounce_kind kind;
        } types[] = {
                { "abuse", BOUNCE_COMPLAINT },
                { "ABUSE", BOUNCE_COMPLAINT },
                { "fraud", BOUNCE_COMPLAINT },
                { "virus", BOUNCE_COMPLAINT },
                /* every type but not-spam asks for no more of our mail */
                { "other", BOUNCE_COMPLAINT },
                { "not-spam", BOUNCE_UNKNOWN },
                { "auth-failure", BOUNCE_COMPLAINT },
                { "opt-out", BOUNCE_COMPLAINT },
                { "", BOUNCE_COMPLAINT },
        };
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                char m[1024];
                snprintf(m, sizeof(m),
                         "Content-Type: multipart/report; report-type=feedback-report; boundary=F\n"
                         "\n--F\nContent-Type: message/feedback-report\n\n"
                         "Version: 1\nFeedback-Type: %s\nOriginal-Rcpt-To: c@example.net\n"
                         "\n--F--\n", types[i].type);
                struct bounce_info bi = parse_str(m);
                if (!CHECK_INT(bi.kind, types[i].kind))
                        fprintf(stderr, "    feedback type \"%s\"\n", types[i].type);
                CHECK_STR(bi.recipient, "c@example.net");
        }
        /* no feedback part: an abuse report in prose is not a complaint */
        struct bounce_info bi = parse_str("From: abuse@example.net\nSubject: spam complaint\n\n"
                                          "Feedback-Type: abuse\nOriginal-Rcpt-To: c@example.net\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
}

static void test_plain(void)
{
        struct bounce_info bi;
        /* an MTA's address, however its local part is spelt */
        static const char *const daemons[] = { "MAILER-DAEMON", "mailer_daemon", "post_master",
                                               "Post.Master", "mail-daemon" };
        for (size_t i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++) {
                char m[512];
                snprintf(m, sizeof(m), "From: %s@mx.example.net\nSubject: Re: hello\n\n"
                         "Error: Invalid user address\n"
                         "550 - Requested action not taken: no such user here\n"
                         "RCPT TO: x@example.net\n", daemons[i]);
                bi = parse_str(m);
                CHECK_INT(bi.kind, BOUNCE_PERMANENT);
                CHECK_STR(bi.reason, "userunknown");
        }
        /* a code and a failure phrase, but from a person */
        bi = parse_str("From: someone@example.net\nSubject: hello\n\n"
                       "Your mail could not be delivered: 550 5.1.1 user unknown x@example.net\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        /* from an MTA, a code, but no failure phrase */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: note\n\n"
                       "x@example.net: 550 5.1.1 see you\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        /* from an MTA, a failure phrase, but only numbers that are no codes */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
                       "x@example.net could not be delivered. 5000 users, call 555-1234, "
                       "v5.1.1, 5.1.1.1, 192.0.5.1.1\n");
        /* a failure notice all the same: counted, but by no code, and
         * on hold (words, but none that name a reason) */
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "onhold");
        CHECK_STR(bi.status, "");
        /* all three, and the reply answered RCPT: permanent */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
                       "The message could not be delivered to\n  x@example.net\n"
                       "(reason: 550 no such user, in reply to RCPT TO)\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "x@example.net");
        CHECK_STR(bi.status, "");
        CHECK_STR(bi.diagnostic, "(reason: 550 no such user, in reply to RCPT TO)");
        /* the same reply quoted without the command it answered nor a
         * code of the address: a filtering relay's word, not proof */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
                       "The message could not be delivered to\n  x@example.net\n"
                       "(reason: 550 no such user)\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "filtered");
        /* the recipient is not our own address, whatever its id */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
                       "bounces+x1@news.example.org: your mail to y@example.net\n"
                       "could not be delivered: 550 5.1.1 bounces+4@news.example.org\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "y@example.net");
        /* codes in the copy of the original do not count */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
                       "Delivery failed for x@example.net.\n\n"
                       "--- Below this line is a copy of the message.\n\n"
                       "Return-Path: <bounces+{31}@news.example.org>\n\n550 5.1.1 in the text\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);   /* a failure notice without a code */
        CHECK_STR(bi.status, "");
        CHECK_INT(bi.mail_id, 31);
        /* an auto-reply that happens to use the words */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: Out of Office: news\n\n"
                       "Delivery failed 550 5.1.1 x@example.net\n");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        /* delay without a code, and a code without delay words */
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: Delivery delayed\n\n"
                       "Your message to x@example.net is delayed; we will retry.\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "expired");
        bi = parse_str("From: MAILER-DAEMON@mx.example.net\nSubject: Delivery delayed\n\n"
                       "Your message to x@example.net is delayed: 421 4.4.2 timeout\n");
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.status, "4.4.2");
        CHECK_STR(bi.recipient, "x@example.net");
}

/* ---- robustness --------------------------------------------------------- */

static void test_kind_name(void)
{
        CHECK_STR(bounce_kind_name(BOUNCE_UNKNOWN), "unknown");
        CHECK_STR(bounce_kind_name(BOUNCE_PERMANENT), "permanent");
        CHECK_STR(bounce_kind_name(BOUNCE_TEMPORARY), "temporary");
        CHECK_STR(bounce_kind_name(BOUNCE_COMPLAINT), "complaint");
        CHECK_STR(bounce_kind_name((enum bounce_kind)42), "unknown");
}

/* Auto-replies are told from other messages that are no report: both are
 * ignored, but counted apart (RFC 3834 and what responders send instead). */
static void test_autoreply(void)
{
        static const char *const autos[] = {
                "Auto-Submitted: auto-replied\n",
                "Auto-Submitted: auto-replied (vacation)\n",
                "X-Autoreply: yes\n",
                "X-Autorespond: Out of office\n",
                "Precedence: auto_reply\n",
                "PRECEDENCE:  Auto_Reply\n",
                "Subject: Out of Office: June news\n",
        };
        static const char *const others[] = {
                "Precedence: bulk\n",
                "Auto-Submitted: no\n",
                "Auto-Submitted: auto-generated\n",
                "Subject: Re: June news\n",
        };
        for (size_t i = 0; i < sizeof(autos) / sizeof(autos[0]); i++) {
                char msg[512];
                snprintf(msg, sizeof(msg), "From: a@example.net\n%s\nI am away.\n", autos[i]);
                struct bounce_info bi = parse_str(msg);
                CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
                if (!bi.autoreply)
                        fprintf(stderr, "not an auto-reply: %s", autos[i]);
                CHECK(bi.autoreply);
        }
        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
                char msg[512];
                snprintf(msg, sizeof(msg), "From: a@example.net\n%s\nHello.\n", others[i]);
                struct bounce_info bi = parse_str(msg);
                CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
                CHECK(!bi.autoreply);
        }
        /* an MTA's report that says Auto-Submitted: auto-replied (Postfix
         * does) is a report, not an auto-reply */
        struct bounce_info bi = parse_str("From: MAILER-DAEMON@mx.example.net\n"
                                          "Subject: Undelivered Mail Returned to Sender\n"
                                          "Auto-Submitted: auto-replied\n\n"
                                          "<x@example.net>: host said: 550 5.1.1 user unknown;"
                                          " the message could not be delivered\n");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK(!bi.autoreply);
}

/* The relay's refusal of a recipient, judged by its enhanced status code. */
static void test_relay_reply(void)
{
        static const struct {
                long code;
                const char *reply;
                enum bounce_kind kind;
                const char *status;
        } cases[] = {
                /* the address is dead */
                { 550, "550 5.1.1 <ann@example.net>: Recipient address rejected: User unknown in"
                       " local recipient table", BOUNCE_PERMANENT, "5.1.1" },
                { 550, "550 5.1.1 The email account that you tried to reach does not exist",
                  BOUNCE_PERMANENT, "5.1.1" },
                { 550, "550 5.1.0 Address rejected", BOUNCE_PERMANENT, "5.1.0" },
                { 554, "554 5.1.2 <ann@example.net>: Recipient address rejected: Domain not found",
                  BOUNCE_PERMANENT, "5.1.2" },
                { 553, "553 5.1.3 bad address syntax", BOUNCE_PERMANENT, "5.1.3" },
                { 550, "550 5.1.6 mailbox has moved", BOUNCE_PERMANENT, "5.1.6" },
                { 556, "556 5.1.10 <ann@example.net>: Recipient address rejected: Domain"
                       " example.net does not accept mail (nullMX)", BOUNCE_PERMANENT, "5.1.10" },
                { 550, "550 5.2.1 mailbox disabled", BOUNCE_TEMPORARY, "5.2.1" },
                { 550, "550 5.1.1 <ANN@Example.NET>: no such user", BOUNCE_PERMANENT, "5.1.1" },
                /* a 5xx about us, the message or the relay: the mail fails, the address stays */
                { 554, "554 5.7.1 <ann@example.net>: Relay access denied", BOUNCE_SENDER, "5.7.1" },
                { 550, "550 5.7.1 Service unavailable; client host blocked", BOUNCE_SENDER, "5.7.1" },
                /* our relay's access table: our admin's policy, not the
                 * address (a remote MTA's report saying so is) */
                { 550, "550 5.7.1 <ann@example.net>: Recipient address rejected: Access denied", BOUNCE_SENDER,
                  "5.7.1" },
                { 552, "552 5.2.2 mailbox full", BOUNCE_TEMPORARY, "5.2.2" },
                { 554, "554 5.6.0 content rejected", BOUNCE_SENDER, "5.6.0" },
                { 550, "550 5.1.8 <b+1-x@news.example.org>: Sender address rejected: Domain"
                       " not found", BOUNCE_SENDER, "5.1.8" },
                { 550, "550 no such user here", BOUNCE_TEMPORARY, "" },
                { 550, "550 4.1.1 mixed classes", BOUNCE_TEMPORARY, "4.1.1" },
                /* Postfix refuses our return path at RCPT, with 5.1.0 */
                { 550, "550 5.1.0 <b+1-x@news.example.org>: Sender address rejected: User unknown",
                  BOUNCE_SENDER, "5.1.0" },
                /* the address's passing trouble */
                { 450, "450 4.1.1 <ann@example.net>: Recipient address rejected: User unknown",
                  BOUNCE_TEMPORARY, "4.1.1" },
                { 451, "451 4.3.0 <ann@example.net>: Temporary lookup failure", BOUNCE_TEMPORARY,
                  "4.3.0" },
                { 452, "452 4.2.2 mailbox full", BOUNCE_TEMPORARY, "4.2.2" },
                { 450, "450 try again later", BOUNCE_TEMPORARY, "" },
                /* ours, or the relay's */
                { 450, "450 4.7.1 <ann@example.net>: Recipient address rejected: greylisted",
                  BOUNCE_SENDER, "4.7.1" },
                { 421, "421 4.4.2 mx.example.org Error: timeout exceeded", BOUNCE_UNKNOWN, "4.4.2" },
                { 451, "451 4.4.5 too many connections", BOUNCE_SENDER, "4.4.5" },
                { 452, "452 4.5.3 too many recipients", BOUNCE_SENDER, "4.5.3" },
                { 450, "450 4.1.8 <b+1-x@news.example.org>: Sender address rejected: Domain"
                       " not found", BOUNCE_SENDER, "4.1.8" },
                { 0, "Couldn't connect to server: Connection refused", BOUNCE_UNKNOWN, "" },
                { 250, "250 2.0.0 Ok: queued", BOUNCE_UNKNOWN, "2.0.0" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char status[16];
                const char *reason;
                enum bounce_kind k = bounce_relay_reply(cases[i].code, cases[i].reply, "ann@example.net",
                                                        status, &reason);
                if (k != cases[i].kind)
                        fprintf(stderr, "reply: %s -> %s (%s)\n", cases[i].reply, bounce_kind_name(k), reason);
                CHECK_INT(k, cases[i].kind);
                CHECK_STR(status, cases[i].status);
        }
}

static void test_empty(void)
{
        struct bounce_info bi;
        memset(&bi, 0x55, sizeof(bi));
        CHECK_INT(bounce_parse(NULL, 0, TEMPLATE, &keys, &bi), 0);
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        CHECK_STR(bi.recipient, "");
        check_sane(bounce_parse("", 0, TEMPLATE, &keys, &bi), &bi, "empty");
        static const char *const tiny[] = { "\n", "\r\n", "\r", ":", "--", "\n\n", "a: b", "-",
                                            "Content-Type: multipart/mixed; boundary=a\n\n--a" };
        for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++)
                CHECK_INT(parse_str(tiny[i]).kind, BOUNCE_UNKNOWN);
}

static char *sample_load(const char *name, size_t *len)
{
        char *msg = sample_dir ? file_read(sample_dir, name, len) : NULL;
        CHECK(msg != NULL);
        return msg;
}

/* `addr` stands in the message as a whole address (case aside): not the
 * start of a longer one. */
static bool occurs_whole(const char *msg, size_t len, const char *addr)
{
        size_t n = strlen(addr);
        for (size_t i = 0; i + n <= len; i++) {
                if (strncasecmp(msg + i, addr, n) != 0)
                        continue;
                char before = i ? msg[i - 1] : ' ', after = i + n < len ? msg[i + n] : ' ';
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+_",
                            after) &&
                    !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+_",
                            before))
                        return true;
        }
        return false;
}

static void test_truncated(void)
{
        static const char *const names[] = { "postfix-dsn.eml", "exchange-dsn-base64.eml",
                                             "gmail-dsn-forwarded.eml", "arf-abuse-rfc822.eml",
                                             "exim-failed.eml" };
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
                size_t len;
                char *msg = sample_load(names[k], &len);
                if (!msg)
                        continue;
                char what[128];
                struct bounce_info full = parse_exact(msg, len, TEMPLATE, names[k]);
                CHECK(full.kind != BOUNCE_UNKNOWN);
                for (size_t n = 0; n <= len; n++) {
                        snprintf(what, sizeof(what), "%s cut to %zu bytes", names[k], n);
                        struct bounce_info bi = parse_exact(msg, n, TEMPLATE, what);
                        /* less, never something else: no cut address or
                         * code (without its DSN part, a report may name
                         * another address that stands in the message) */
                        unsigned before = unit_test_failures;
                        CHECK(bi.kind == full.kind || (bi.kind != BOUNCE_PERMANENT && bi.kind != BOUNCE_COMPLAINT));
                        CHECK(bi.mail_id == 0 || bi.mail_id == full.mail_id);
                        CHECK(!bi.recipient[0] || !strcmp(bi.recipient, full.recipient) ||
                              occurs_whole(msg, len, bi.recipient));
                        CHECK(!bi.status[0] || !strcmp(bi.status, full.status));
                        if (unit_test_failures != before)
                                fprintf(stderr, "    %s\n", what);
                }
                /* the whole message but its last line break: the last line is dropped */
                CHECK_INT(parse_exact(msg, len - 1, TEMPLATE, names[k]).kind, full.kind);
                free(msg);
        }
}

static void test_nul(void)
{
        size_t len;
        char *msg = sample_load("postfix-dsn.eml", &len);
        if (!msg)
                return;
        for (size_t i = 0; i < len; i++) {
                char saved = msg[i];
                msg[i] = '\0';
                parse_exact(msg, len, TEMPLATE, "postfix-dsn.eml with one NUL");
                msg[i] = saved;
        }
        free(msg);

        /* NUL inside an address: that address is refused, not cut */
        static const char m[] =
                "X-Original-To: bounces+47\0" "11@news.example.org\n"
                "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                "--B\nContent-Type: message/delivery-status\n\n"
                "Final-Recipient: rfc822; nul@example.net\0.evil.example\nAction: failed\n"
                "Status: 5.1.1\n--B--\n";
        struct bounce_info bi = parse_exact(m, sizeof(m) - 1, TEMPLATE, "NUL in fields");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_INT(bi.mail_id, 0);
        CHECK_STR(bi.recipient, "");
}

static void test_nested(void)
{
        static const char dsn[] =
                "Content-Type: message/delivery-status\n\n"
                "Final-Recipient: rfc822; deep@example.net\nAction: failed\nStatus: 5.1.1\n";
        static const int depths[] = { 1, 2, 3, 4, 8, 9, 100000 };
        for (int same = 0; same < 2; same++) {
                for (size_t d = 0; d < sizeof(depths) / sizeof(depths[0]); d++) {
                        int depth = depths[d];
                        struct buf b;
                        buf_init(&b, 0);
                        buf_puts(&b, "X-Original-To: bounces+{6}@news.example.org\n");
                        for (int i = 0; i < depth; i++) {
                                int id = same ? 0 : i;
                                buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n"
                                           "--b%d\n", id, id);
                        }
                        buf_puts(&b, dsn);
                        CHECK(!b.overflow);
                        char what[64];
                        snprintf(what, sizeof(what), "DSN nested %d deep", depth);
                        struct bounce_info bi = parse_exact(b.data, b.len, TEMPLATE, what);
                        CHECK_INT(bi.mail_id, 6);
                        /* 8 levels are followed, with one boundary for all
                         * levels too (GMime nests them as they stand) */
                        enum bounce_kind want = depth <= 8 ? BOUNCE_PERMANENT : BOUNCE_UNKNOWN;
                        if (!CHECK_INT(bi.kind, want))
                                fprintf(stderr, "    %s%s\n", what, same ? ", one boundary" : "");
                        buf_free(&b);
                }
        }

        /* many sibling parts */
        struct buf b;
        buf_init(&b, 0);
        buf_puts(&b, "Content-Type: multipart/mixed; boundary=s\n\n");
        for (int i = 0; i < 200000; i++)
                buf_puts(&b, "--s\n\nx\n");
        buf_printf(&b, "--s\n%s--s--\n", dsn);
        parse_exact(b.data, b.len, TEMPLATE, "200000 parts");
        buf_free(&b);
}

/* n copies of c after a prefix, then a suffix. */
static char *big_message(const char *prefix, char c, size_t n, const char *suffix, size_t *len)
{
        size_t pl = strlen(prefix), sl = strlen(suffix);
        char *m = xmalloc(pl + n + sl);
        memcpy(m, prefix, pl);
        memset(m + pl, c, n);
        memcpy(m + pl + n, suffix, sl);
        *len = pl + n + sl;
        return m;
}

static void test_huge(void)
{
        static const char dsn_tail[] =
                "\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                "--B\nContent-Type: message/delivery-status\n\n"
                "Final-Recipient: rfc822; h@example.net\nAction: failed\nStatus: 5.1.1\n--B--\n";
        struct {
                const char *prefix;
                char c;
                size_t n;
                const char *suffix;
                enum bounce_kind kind;
        } cases[] = {
                /* a 5 MiB header line before a good DSN */
                { "Subject: ", 'a', 5u << 20, dsn_tail, BOUNCE_PERMANENT },
                /* a folded header of 4 MiB */
                { "Subject: x\n", ' ', 4u << 20, dsn_tail, BOUNCE_PERMANENT },
                /* one line of 10 MiB without a line end */
                { "", 'a', BOUNCE_MSG_MAX, "", BOUNCE_UNKNOWN },
                /* a Content-Type of 8 MiB: not understood */
                { "Content-Type: multipart/report; boundary=", 'b', 8u << 20,
                  "\n\n--B\nContent-Type: message/delivery-status\n\n"
                  "Final-Recipient: rfc822; h@example.net\nAction: failed\nStatus: 5.1.1\n",
                  BOUNCE_UNKNOWN },
                /* 9 MiB of line breaks */
                { "Subject: x\n\n", '\n', 9u << 20, "550 5.1.1 failed", BOUNCE_UNKNOWN },
                /* 9 MiB of dashes in a multipart body */
                { "Content-Type: multipart/mixed; boundary=-\n\n", '-', 9u << 20, "\n",
                  BOUNCE_UNKNOWN },
                /* 9 MiB of '(' in a header */
                { "Content-Type: multipart/report; (", '(', 9u << 20, "\n\n", BOUNCE_UNKNOWN },
                /* unterminated comments in a Content-Type that is parsed */
                { "Content-Type: (", '(', 900, "multipart/mixed; boundary=x\n\n--x\n"
                  "Content-Type: message/delivery-status\n\nStatus: 5.1.1\n", BOUNCE_UNKNOWN },
                { "Content-Type: multipart/mixed; boundary=x; (", '(', 900, "\n\n--x\n"
                  "Content-Type: message/delivery-status\n\nStatus: 5.1.1\n", BOUNCE_PERMANENT },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t len;
                char *m = big_message(cases[i].prefix, cases[i].c, cases[i].n, cases[i].suffix, &len);
                char what[64];
                snprintf(what, sizeof(what), "huge case %zu", i);
                struct bounce_info bi = parse_exact(m, len, TEMPLATE, what);
                if (!CHECK_INT(bi.kind, cases[i].kind))
                        fprintf(stderr, "    %s\n", what);
                free(m);
        }

        /* a header of 1 million small fields */
        struct buf b;
        buf_init(&b, 0);
        for (int i = 0; i < 1000000; i++)
                buf_puts(&b, "X-A: b\n");
        buf_puts(&b, "X-Original-To: bounces+{7}@news.example.org");
        buf_puts(&b, dsn_tail);
        struct bounce_info bi = parse_exact(b.data, b.len, TEMPLATE, "a million fields");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_INT(bi.mail_id, 7);
        buf_free(&b);

        /* over-long field values: an address is refused, a diagnostic cut */
        buf_init(&b, 0);
        buf_puts(&b, "X-Original-To: bounces+{8}@news.example.org\n"
                 "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                 "--B\nContent-Type: message/delivery-status\n\n"
                 "Final-Recipient: rfc822; ");
        for (int i = 0; i < 2000; i++)
                buf_putc(&b, 'a');
        buf_puts(&b, "@example.net\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 ");
        for (int i = 0; i < 100000; i++)
                buf_puts(&b, "x\n ");
        buf_puts(&b, "\n--B--\n");
        bi = parse_exact(b.data, b.len, TEMPLATE, "long fields");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.recipient, "");
        CHECK_UINT(strlen(bi.diagnostic), sizeof(bi.diagnostic) - 1);
        CHECK(strncmp(bi.diagnostic, "550 x x x", 9) == 0);
        buf_free(&b);
}

static void test_size_limit(void)
{
        size_t len;
        char *msg = sample_load("postfix-dsn.eml", &len);
        if (!msg)
                return;
        /* padding after the close delimiter (the epilogue) */
        char *m = xmalloc(BOUNCE_MSG_MAX + 1);
        memcpy(m, msg, len);
        memset(m + len, '\n', BOUNCE_MSG_MAX + 1 - len);
        struct bounce_info bi = parse_exact(m, BOUNCE_MSG_MAX, TEMPLATE, "exactly the limit");
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_INT(bi.mail_id, 4711);
        bi = parse_exact(m, BOUNCE_MSG_MAX + 1, TEMPLATE, "one byte over the limit");
        CHECK_INT(bi.kind, BOUNCE_UNKNOWN);
        CHECK_INT(bi.mail_id, 0);
        free(m);
        free(msg);
}

/* Random damage to every sample: bytes changed, lines and boundaries
 * inserted, pieces dropped (a fixed seed: the same run every time). */
static void test_mutations(void)
{
        char *names[128];
        size_t n = sample_dir ? samples_list(names, 128) : 0;
        uint64_t x = 0x9e3779b97f4a7c15ull;
        static const char *const inserts[] = { "\n", "\r\n", "\n\n", "--", ":", ";", "\"",
                                               "(", "=", "\n--", "\0", "\n ", "@", "<" };
        for (size_t k = 0; k < n; k++) {
                size_t len;
                char *msg = file_read(sample_dir, names[k], &len);
                if (!CHECK(msg != NULL))
                        continue;
                for (int round = 0; round < 300; round++) {
                        struct buf b;
                        buf_init(&b, 0);
                        buf_append(&b, msg, len);
                        for (int e = 0; e < 1 + round % 8; e++) {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                size_t pos = b.len ? (size_t)(x >> 8) % b.len : 0;
                                switch (x % 4) {
                                case 0:
                                        if (b.len)
                                                b.data[pos] = (char)(x >> 40);
                                        break;
                                case 1: {
                                        const char *ins = inserts[(x >> 32) % 14];
                                        size_t il = ins[0] ? strlen(ins) : 1;
                                        buf_append(&b, ins, il);   /* grow, then move */
                                        memmove(b.data + pos + il, b.data + pos, b.len - il - pos);
                                        memcpy(b.data + pos, ins, il);
                                        break;
                                }
                                case 2: {
                                        size_t cut = (size_t)(x >> 32) % 64;
                                        if (cut > b.len - pos)
                                                cut = b.len - pos;
                                        memmove(b.data + pos, b.data + pos + cut, b.len - pos - cut);
                                        b.len -= cut;
                                        break;
                                }
                                default:
                                        b.len = pos + (b.len - pos) / 2;
                                        break;
                                }
                        }
                        parse_exact(b.data, b.len, TEMPLATE, names[k]);
                        buf_free(&b);
                }
                free(msg);
                free(names[k]);
        }
}

int main(int argc, char **argv)
{
        static char dir[4096];
        if (argc > 1) {
                sample_dir = argv[1];
        } else if (getenv("SOURCE_ROOT")) {
                snprintf(dir, sizeof(dir), "%s/tests/bounces", getenv("SOURCE_ROOT"));
                sample_dir = dir;
        } else {
                fprintf(stderr, "test-bounce: no sample directory (argument or SOURCE_ROOT)\n");
        }
        keys_init();
        RUN(test_samples);
        RUN(test_verp);
        RUN(test_verp_tags);
        RUN(test_dsn);
        RUN(test_dsn_lines_in_the_notice);
        RUN(test_dsn_quoted_reply_code);
        RUN(test_dsn_mta_category);
        RUN(test_transfer_encodings);
        RUN(test_feedback);
        RUN(test_plain);
        RUN(test_kind_name);
        RUN(test_autoreply);
        RUN(test_relay_reply);
        RUN(test_empty);
        RUN(test_truncated);
        RUN(test_nul);
        RUN(test_nested);
        RUN(test_huge);
        RUN(test_size_limit);
        RUN(test_mutations);
        return unit_finish();
}
