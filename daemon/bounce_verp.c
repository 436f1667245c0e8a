/*
 * bounce_verp.c - which of our mails a returned message belongs to: the
 * VERP envelope sender it was addressed to ("PREFIX<mail id>-<tag>SUFFIX"
 * from [bounce] return_path), found in the Delivered-To/X-Original-To the
 * MTA added, the To of the report, the returned original's Return-Path or
 * the copy a plain notice quotes, and its tag checked against our keys
 * (secret_tag_check()).
 *
 * Owns nothing past a call.  Must never do I/O or SQL, never read outside
 * the spans it is given, and never take an id whose tag is not valid: only
 * we can make one, so a valid one proves the report came back from where
 * that mail went.  What the report says is bounce.c's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bounce_int.h"
#include "mailparse.h"
#include "secret.h"
#include "textutil.h"

#define VERP_ID_DIGITS  18              /* fits int64_t */

void verp_init(struct verp *v, const char *tmpl, const struct secret_keys *keys)
{
        memset(v, 0, sizeof(*v));
        v->keys = keys;
        const char *id = tmpl ? strstr(tmpl, "{id}") : NULL;
        if (!id)
                return;
        v->on = true;
        v->prefix = tmpl;
        v->prefix_len = (size_t)(id - tmpl);
        v->suffix = id + 4;
        v->suffix_len = strlen(v->suffix);
}

/* Compare n bytes of a candidate address at off with a template piece:
 * exact in the local part, case-insensitive after the candidate's '@'. */
static bool verp_piece_eq(struct mail_span a, size_t off, const char *pat, size_t n, size_t at)
{
        for (size_t i = 0; i < n; i++) {
                char x = a.p[off + i], y = pat[i];
                if (at < a.n && off + i > at) {
                        x = ascii_lower(x);
                        y = ascii_lower(y);
                }
                if (x != y)
                        return false;
        }
        return true;
}

/* Prefix and suffix of the template, whatever stands between them. */
bool verp_like(const struct verp *v, struct mail_span a)
{
        if (!v->on || a.n < v->prefix_len + v->suffix_len)
                return false;
        const char *at_p = memrchr(a.p, '@', a.n);
        size_t at = at_p ? (size_t)(at_p - a.p) : SIZE_MAX;
        return verp_piece_eq(a, 0, v->prefix, v->prefix_len, at) &&
               verp_piece_eq(a, a.n - v->suffix_len, v->suffix, v->suffix_len, at);
}

/* The mail id in a VERP address "PREFIX<id>-<tag>SUFFIX"; 0 when the
 * address is not one of ours, or when its id is malformed (non-digits, a
 * leading zero, more than 18 digits) or its tag is not that id's under one
 * of our keys: only we can make a valid one, so a valid one shows that the
 * report came back from where that mail went.  An address of our form that
 * fails sets v->invalid. */
static int64_t verp_match(struct verp *v, struct mail_span a)
{
        if (!verp_like(v, a))
                return 0;
        const char *d = a.p + v->prefix_len;
        size_t n = a.n - v->prefix_len - v->suffix_len, digits = 0;
        while (digits < n && is_digit(d[digits]))
                digits++;
        int64_t id = 0;
        bool ok = digits >= 1 && digits <= VERP_ID_DIGITS && !(digits > 1 && d[0] == '0') &&
                  digits < n && d[digits] == '-';
        for (size_t i = 0; ok && i < digits; i++)
                id = id * 10 + (d[i] - '0');
        if (ok && secret_tag_check(v->keys, id, d + digits + 1, n - digits - 1))
                return id;
        v->invalid = true;
        return 0;
}

struct verp_search {
        struct verp *verp;
        int64_t id;
};

static bool verp_try(struct mail_span a, void *ctx)
{
        struct verp_search *vs = ctx;
        vs->id = verp_match(vs->verp, a);
        return vs->id > 0;
}

int64_t verp_in_value(struct verp *v, const char *value)
{
        struct verp_search vs = { v, 0 };
        if (!v->on || !mailparse_addr_each(value, verp_try, &vs))
                return 0;
        return vs.id;
}

/* The id in any field called `name` of a header block. */
int64_t verp_in_header(struct verp *v, struct mail_span hdr, const char *name)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct mail_field f;
        char value[MAIL_FIELD_MAX];
        while (mailparse_field_next(&p, end, &f)) {
                if (!mailparse_field_is(&f, name) || !mailparse_field_text(f.value, value, sizeof(value), false))
                        continue;
                int64_t id = verp_in_value(v, value);
                if (id > 0)
                        return id;
        }
        return 0;
}

/* "Return-Path:" in the header of the copy of the original that a plain
 * report quotes. */
int64_t verp_in_copy(struct verp *v, struct mail_span copy)
{
        const char *p = copy.p, *end = copy.p + copy.n;
        struct mail_span line, hdr, body;
        for (;;) {                      /* blank lines after the marker */
                const char *start = p;
                if (!mailparse_line_next(&p, end, &line))
                        return 0;
                if (!mailparse_line_blank(line)) {
                        p = start;
                        break;
                }
        }
        mailparse_entity_split((struct mail_span){ p, (size_t)(end - p) }, &hdr, &body);
        return verp_in_header(v, hdr, "return-path");
}

static bool verp_like_try(struct mail_span a, void *ctx)
{
        return verp_like(ctx, a);
}

/* The topmost Delivered-To or X-Original-To with an address of our VERP
 * form: the envelope recipient the MTA delivered the report to (the
 * report's own copies are below it).  Those without our form are skipped:
 * a hosted mailbox adds its own plain address on top.  *seen when one
 * decided (or one could not be read): then nothing below it counts. */
int64_t verp_delivered_to(struct verp *v, struct mail_span hdr, bool *seen)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct mail_field f;
        char value[MAIL_FIELD_MAX];
        while (mailparse_field_next(&p, end, &f)) {
                if (!mailparse_field_is(&f, "delivered-to") && !mailparse_field_is(&f, "x-original-to"))
                        continue;
                if (!mailparse_field_text(f.value, value, sizeof(value), false)) {
                        *seen = true;
                        return 0;
                }
                if (!mailparse_addr_each(value, verp_like_try, v))
                        continue;
                *seen = true;
                return verp_in_value(v, value);
        }
        return 0;
}
