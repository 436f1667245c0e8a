/*
 * bounce.c - what a returned mail says: which of our mails it belongs to
 * (the VERP envelope sender it was addressed to), which recipient failed or
 * complained, and whether the failure is permanent or temporary.  Reads RFC
 * 3464 delivery status notifications, RFC 5965 (ARF) feedback reports and,
 * cautiously, the plain-text reports of MTAs that send no DSN; and the
 * same of the relay's own refusal of a recipient while sending (one reply
 * line, judged by its enhanced status code).
 *
 * Owns nothing past a call: decoded parts are freed before bounce_parse()
 * returns.  Must never do I/O or SQL, never read outside the bytes it was
 * given (the message need not be NUL-terminated and may hold NUL), never
 * follow the message's nesting without a bound, and never guess: what is
 * not clearly a failure or a complaint is BOUNCE_UNKNOWN, so the caller
 * changes nothing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "base64.h"
#include "bounce.h"
#include "log.h"
#include "secret.h"

#define MIME_DEPTH_MAX  8               /* multipart nesting we follow */
#define MIME_PARTS_MAX  256             /* entities looked at per message */
#define BOUNDARY_MAX    200             /* RFC 2046 allows 70 */
#define FIELD_MAX       1024            /* an unfolded header value we keep */
#define NOTICE_MAX      (64u << 10)     /* human-readable text searched for codes */
#define NEAR_LINES      6               /* lines above a status code searched for the recipient */
#define VERP_ID_DIGITS  18              /* fits int64_t */

#define N_ELEM(a)       (sizeof(a) / sizeof((a)[0]))

struct span {
        const char *p;
        size_t n;
};

struct field {
        struct span name;
        struct span value;              /* raw: folded, untrimmed */
};

struct content_type {
        char type[64];                  /* "type/subtype" in lower case; "" when absent */
        char boundary[BOUNDARY_MAX + 1];
};

/* What the walk over the MIME tree found. */
struct scan {
        unsigned parts;

        bool dsn;                       /* a delivery-status part with a recipient group */
        enum bounce_kind dsn_kind;
        char dsn_rcpt[FIELD_MAX];       /* address-type stripped */
        char dsn_status[16];
        char dsn_diag[FIELD_MAX];

        bool arf;                       /* a feedback-report part */
        char feedback_type[64];
        char arf_rcpt[FIELD_MAX];
        char arf_mail_from[FIELD_MAX];

        bool orig;                      /* the returned original (or its headers) */
        char orig_return_path[FIELD_MAX];
        char orig_to[FIELD_MAX];

        bool notice;                    /* the first text/plain part */
        struct span notice_text;
        char *notice_owned;
};

/* A recipient group of a delivery-status part. */
struct rcpt_group {
        bool seen;                      /* a recipient field was there */
        char action[16];
        char status[16];
        char final_rcpt[FIELD_MAX];
        char orig_rcpt[FIELD_MAX];
        char diag[FIELD_MAX];
};

/* The return_path template split at "{id}", the keys its tags are checked
 * with, and whether an address of its form was seen whose id or tag was
 * wrong. */
struct verp {
        bool on;
        const char *prefix;
        size_t prefix_len;
        const char *suffix;
        size_t suffix_len;
        const struct secret_keys *keys;
        bool invalid;
};

const char *bounce_kind_name(enum bounce_kind k)
{
        switch (k) {
        case BOUNCE_UNKNOWN: return "unknown";
        case BOUNCE_PERMANENT: return "permanent";
        case BOUNCE_TEMPORARY: return "temporary";
        case BOUNCE_COMPLAINT: return "complaint";
        }
        return "unknown";
}

/* ---- bytes and lines ---------------------------------------------------- */

static bool is_wsp(char c)
{
        return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_alnum_ascii(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool span_eq_ci(struct span s, const char *lit)
{
        size_t n = strlen(lit);
        if (s.n != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (lower(s.p[i]) != lower(lit[i]))
                        return false;
        return true;
}

static bool str_starts_ci(const char *s, const char *prefix)
{
        for (; *prefix; s++, prefix++)
                if (lower(*s) != *prefix)
                        return false;
        return true;
}

static bool str_eq_ci(const char *a, const char *b)
{
        for (; *a && *b; a++, b++)
                if (lower(*a) != lower(*b))
                        return false;
        return *a == *b;
}

/* Next line of [*p, end) without its LF or CRLF; false at the end. */
static bool line_next(const char **p, const char *end, struct span *line)
{
        if (*p >= end)
                return false;
        const char *s = *p;
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        *p = nl ? nl + 1 : end;
        if (e > s && e[-1] == '\r')
                e--;
        line->p = s;
        line->n = (size_t)(e - s);
        return true;
}

static bool line_blank(struct span l)
{
        for (size_t i = 0; i < l.n; i++)
                if (!is_wsp(l.p[i]))
                        return false;
        return true;
}

static void copy_str(char *out, size_t cap, const char *s)
{
        size_t n = strnlen(s, cap - 1);
        memcpy(out, s, n);
        out[n] = '\0';
}

/* Printable ASCII for the log: whitespace runs become one space, other
 * bytes '?', cut to what fits. */
static void diag_set(char *out, size_t cap, const char *s, size_t n)
{
        size_t o = 0;
        bool space = false;
        for (size_t i = 0; i < n && o + 1 < cap; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                        space = o > 0;
                        continue;
                }
                if (space) {
                        out[o++] = ' ';
                        space = false;
                        if (o + 1 >= cap)
                                break;
                }
                out[o++] = c > 0x20 && c < 0x7f ? (char)c : '?';
        }
        out[o] = '\0';
}

/* ---- header fields ------------------------------------------------------ */

/* Split an entity at its first empty line into header block and body; an
 * entity without one is all header. */
static void entity_split(struct span e, struct span *hdr, struct span *body)
{
        const char *p = e.p, *end = e.p + e.n;
        struct span line;
        for (;;) {
                const char *start = p;
                if (!line_next(&p, end, &line)) {
                        *hdr = e;
                        *body = (struct span){ end, 0 };
                        return;
                }
                if (line.n == 0) {
                        *hdr = (struct span){ e.p, (size_t)(start - e.p) };
                        *body = (struct span){ p, (size_t)(end - p) };
                        return;
                }
        }
}

/* Next field of [*p, end) with its continuation lines.  Lines that are no
 * field (an mbox "From " line, junk, empty lines) are skipped. */
static bool field_next(const char **p, const char *end, struct field *f)
{
        struct span line;
        for (;;) {
                if (!line_next(p, end, &line))
                        return false;
                if (line.n == 0 || is_wsp(line.p[0]))
                        continue;
                const char *colon = memchr(line.p, ':', line.n);
                if (!colon)
                        continue;
                size_t name_len = (size_t)(colon - line.p);
                while (name_len && is_wsp(line.p[name_len - 1]))
                        name_len--;
                bool ok = name_len > 0;
                for (size_t i = 0; i < name_len && ok; i++) {
                        unsigned char c = (unsigned char)line.p[i];
                        ok = c > 0x20 && c < 0x7f;
                }
                if (!ok)
                        continue;
                const char *vend = line.p + line.n;
                for (;;) {
                        const char *q = *p;
                        struct span cont;
                        if (!line_next(&q, end, &cont) || cont.n == 0 || !is_wsp(cont.p[0]))
                                break;
                        vend = cont.p + cont.n;
                        *p = q;
                }
                f->name = (struct span){ line.p, name_len };
                f->value = (struct span){ colon + 1, (size_t)(vend - colon - 1) };
                return true;
        }
}

/* A field value unfolded and trimmed into a C string.  False (and "") when
 * it holds NUL or, unless `cut` allows it, does not fit. */
static bool field_text(struct span v, char *out, size_t cap, bool cut)
{
        size_t o = 0;
        out[0] = '\0';
        for (size_t i = 0; i < v.n; i++) {
                char c = v.p[i];
                if (c == '\r' || c == '\n')
                        continue;
                if (c == '\0')
                        return false;
                if (o + 1 >= cap) {
                        if (!cut)
                                return false;
                        break;
                }
                if (o == 0 && is_wsp(c))
                        continue;
                out[o++] = c;
        }
        while (o && is_wsp(out[o - 1]))
                o--;
        out[o] = '\0';
        return true;
}

/* The first field called `name` in a header block. */
static bool header_get(struct span hdr, const char *name, char *out, size_t cap)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct field f;
        out[0] = '\0';
        while (field_next(&p, end, &f))
                if (span_eq_ci(f.name, name))
                        return field_text(f.value, out, cap, false);
        return false;
}

static bool header_has(struct span hdr, const char *name)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct field f;
        while (field_next(&p, end, &f))
                if (span_eq_ci(f.name, name))
                        return true;
        return false;
}

/* Skip blanks and (nested) comments. */
static const char *skip_cfws(const char *s)
{
        for (;;) {
                while (is_wsp(*s))
                        s++;
                if (*s != '(')
                        return s;
                int depth = 0;
                while (*s) {
                        if (*s == '\\' && s[1]) {
                                s += 2;
                                continue;
                        }
                        if (*s == '(')
                                depth++;
                        else if (*s == ')' && --depth == 0) {
                                s++;
                                break;
                        }
                        s++;
                }
        }
}

static bool is_token_char(char c)
{
        unsigned char u = (unsigned char)c;
        return u > 0x20 && u < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* A MIME token or quoted-string; false when it is empty, unterminated or
 * longer than cap - 1. */
static bool read_value(const char **sp, char *out, size_t cap, bool fold_case)
{
        const char *s = *sp;
        size_t o = 0;
        if (*s == '"') {
                for (s++; *s && *s != '"'; s++) {
                        if (*s == '\\' && s[1])
                                s++;
                        if (o + 1 >= cap)
                                return false;
                        out[o++] = *s;
                }
                if (*s != '"')
                        return false;
                s++;
        } else {
                for (; is_token_char(*s); s++) {
                        if (o + 1 >= cap)
                                return false;
                        out[o++] = fold_case ? lower(*s) : *s;
                }
                if (o == 0)
                        return false;
        }
        out[o] = '\0';
        *sp = s;
        return true;
}

/* Content-Type of an entity: type/subtype and the boundary parameter.
 * Anything not understood leaves type "" (text/plain). */
static void content_type_get(struct span hdr, struct content_type *ct)
{
        char v[FIELD_MAX];
        memset(ct, 0, sizeof(*ct));
        if (!header_get(hdr, "content-type", v, sizeof(v)))
                return;
        const char *s = skip_cfws(v);
        char type[32], sub[32];
        if (!read_value(&s, type, sizeof(type), true))
                return;
        s = skip_cfws(s);
        if (*s != '/')
                return;
        s = skip_cfws(s + 1);
        if (!read_value(&s, sub, sizeof(sub), true))
                return;
        snprintf(ct->type, sizeof(ct->type), "%s/%s", type, sub);
        for (;;) {
                s = skip_cfws(s);
                while (*s && *s != ';')         /* junk up to the next parameter */
                        s++;
                if (*s != ';')
                        return;
                s = skip_cfws(s + 1);
                char name[32], value[BOUNDARY_MAX + 1];
                if (!read_value(&s, name, sizeof(name), true))
                        continue;
                s = skip_cfws(s);
                if (*s != '=')
                        continue;
                s = skip_cfws(s + 1);
                if (!read_value(&s, value, sizeof(value), false))
                        continue;
                if (strcmp(name, "boundary") == 0 && !ct->boundary[0])
                        copy_str(ct->boundary, sizeof(ct->boundary), value);
        }
}

/* ---- transfer encodings ------------------------------------------------- */

static int hex_value(char c)
{
        if (is_digit(c))
                return c - '0';
        c = lower(c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Soft line breaks (with trailing blanks) vanish, =XX becomes a byte, a
 * '=' that is neither stays as it is. */
static size_t qp_decode(const char *s, size_t n, char *out)
{
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] != '=') {
                        out[o++] = s[i];
                        continue;
                }
                size_t k = i + 1;
                while (k < n && is_wsp(s[k]))
                        k++;
                if (k < n && s[k] == '\r' && k + 1 < n && s[k + 1] == '\n')
                        k++;
                if (k < n && s[k] == '\n') {
                        i = k;
                        continue;
                }
                if (k == n) {           /* "=" at the very end */
                        i = k;
                        continue;
                }
                int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
                int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
                if (hi >= 0 && lo >= 0) {
                        out[o++] = (char)(hi << 4 | lo);
                        i += 2;
                } else {
                        out[o++] = '=';
                }
        }
        return o;
}

/* The body of an entity with its Content-Transfer-Encoding undone; *owned
 * is what the caller frees (NULL when the body is returned as it is). */
static struct span body_decode(struct span hdr, struct span body, char **owned)
{
        char cte[64];
        *owned = NULL;
        if (!header_get(hdr, "content-transfer-encoding", cte, sizeof(cte)))
                return body;
        bool b64 = str_eq_ci(cte, "base64");
        bool qp = str_eq_ci(cte, "quoted-printable");
        if (!b64 && !qp)
                return body;
        char *out = xmalloc((b64 ? base64_decoded_max(body.n) : body.n) + 1);
        size_t n = b64 ? base64_decode_mime(body.p, body.n, out) : qp_decode(body.p, body.n, out);
        out[n] = '\0';
        *owned = out;
        return (struct span){ out, n };
}

/* ---- addresses ---------------------------------------------------------- */

/* The address in one element of an address list: inside the last <...>,
 * else the element without comments; a source route "@a,@b:" dropped. */
static struct span addr_in_element(const char *s, size_t n)
{
        const char *open = NULL, *close = NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '<') {
                        open = s + i;
                        close = NULL;
                } else if (s[i] == '>' && open && !close) {
                        close = s + i;
                }
        }
        struct span a;
        if (open && close) {
                a = (struct span){ open + 1, (size_t)(close - open - 1) };
        } else {
                a = (struct span){ s, n };
                const char *paren = memchr(s, '(', n);
                if (paren)
                        a.n = (size_t)(paren - s);
        }
        while (a.n && is_wsp(a.p[0])) {
                a.p++;
                a.n--;
        }
        while (a.n && is_wsp(a.p[a.n - 1]))
                a.n--;
        if (a.n && a.p[0] == '@') {
                const char *colon = memchr(a.p, ':', a.n);
                if (colon) {
                        a.n -= (size_t)(colon + 1 - a.p);
                        a.p = colon + 1;
                }
        }
        return a;
}

/* Calls fn for each address of an address-list value until it returns
 * true; commas inside quotes, <> and comments do not split. */
static bool addr_list_each(const char *v, bool (*fn)(struct span, void *), void *ctx)
{
        const char *start = v;
        bool quoted = false;
        int angle = 0, paren = 0;
        for (const char *s = v;; s++) {
                char c = *s;
                if (c == '\\' && quoted && s[1]) {
                        s++;
                        continue;
                }
                if (c == '"' && !paren)
                        quoted = !quoted;
                else if (!quoted && c == '(')
                        paren++;
                else if (!quoted && c == ')' && paren)
                        paren--;
                else if (!quoted && !paren && c == '<')
                        angle++;
                else if (!quoted && !paren && c == '>' && angle)
                        angle--;
                if (c == '\0' || (c == ',' && !quoted && !paren && !angle)) {
                        struct span a = addr_in_element(start, (size_t)(s - start));
                        if (a.n && fn(a, ctx))
                                return true;
                        if (c == '\0')
                                return false;
                        start = s + 1;
                }
        }
}

static bool first_addr(struct span a, void *ctx)
{
        *(struct span *)ctx = a;
        return true;
}

/* "rfc822; user@example.org" (RFC 3464 address-type; "utf-8" of RFC 6533
 * too) -> the address; NULL for another type. */
static const char *typed_addr(const char *v)
{
        const char *semi = strchr(v, ';');
        if (!semi)
                return strchr(v, '@') ? v : NULL;
        size_t n = (size_t)(semi - v);
        while (n && is_wsp(v[n - 1]))
                n--;
        struct span type = { v, n };
        if (!span_eq_ci(type, "rfc822") && !span_eq_ci(type, "utf-8"))
                return NULL;
        return semi + 1;
}

/* Normalise a recipient into out (ADDR_PATH_MAX + 1 bytes); "" when it is
 * no valid address. */
static void recipient_set(char *out, const char *v)
{
        struct span a;
        struct addr parsed;
        out[0] = '\0';
        if (!v || !addr_list_each(v, first_addr, &a))
                return;
        if (addr_parse(a.p, a.n, &parsed) == ADDR_OK)
                copy_str(out, ADDR_PATH_MAX + 1, parsed.mailbox);
}

/* ---- VERP --------------------------------------------------------------- */

static void verp_init(struct verp *v, const char *tmpl, const struct secret_keys *keys)
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
static bool verp_piece_eq(struct span a, size_t off, const char *pat, size_t n, size_t at)
{
        for (size_t i = 0; i < n; i++) {
                char x = a.p[off + i], y = pat[i];
                if (at < a.n && off + i > at) {
                        x = lower(x);
                        y = lower(y);
                }
                if (x != y)
                        return false;
        }
        return true;
}

/* The mail id in a VERP address "PREFIX<id>-<tag>SUFFIX"; 0 when the
 * address is not one of ours, or when its id is malformed (non-digits, a
 * leading zero, more than 18 digits) or its tag is not that id's under one
 * of our keys: only we can make a valid one, so a valid one shows that the
 * report came back from where that mail went.  An address of our form that
 * fails sets v->invalid. */
static int64_t verp_match(struct verp *v, struct span a)
{
        if (!v->on || a.n < v->prefix_len + v->suffix_len)
                return 0;
        const char *at_p = memrchr(a.p, '@', a.n);
        size_t at = at_p ? (size_t)(at_p - a.p) : SIZE_MAX;
        if (!verp_piece_eq(a, 0, v->prefix, v->prefix_len, at) ||
            !verp_piece_eq(a, a.n - v->suffix_len, v->suffix, v->suffix_len, at))
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

/* Prefix and suffix of the template, whatever stands between them. */
static bool verp_like(const struct verp *v, struct span a)
{
        if (!v->on || a.n < v->prefix_len + v->suffix_len)
                return false;
        const char *at_p = memrchr(a.p, '@', a.n);
        size_t at = at_p ? (size_t)(at_p - a.p) : SIZE_MAX;
        return verp_piece_eq(a, 0, v->prefix, v->prefix_len, at) &&
               verp_piece_eq(a, a.n - v->suffix_len, v->suffix, v->suffix_len, at);
}

struct verp_search {
        struct verp *verp;
        int64_t id;
};

static bool verp_try(struct span a, void *ctx)
{
        struct verp_search *vs = ctx;
        vs->id = verp_match(vs->verp, a);
        return vs->id > 0;
}

static int64_t verp_in_value(struct verp *v, const char *value)
{
        struct verp_search vs = { v, 0 };
        if (!v->on || !addr_list_each(value, verp_try, &vs))
                return 0;
        return vs.id;
}

/* The id in any field called `name` of a header block. */
static int64_t verp_in_header(struct verp *v, struct span hdr, const char *name)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct field f;
        char value[FIELD_MAX];
        while (field_next(&p, end, &f)) {
                if (!span_eq_ci(f.name, name) || !field_text(f.value, value, sizeof(value), false))
                        continue;
                int64_t id = verp_in_value(v, value);
                if (id > 0)
                        return id;
        }
        return 0;
}

/* ---- status codes ------------------------------------------------------- */

/* An enhanced status code "c.s.d" (RFC 3463) at s[i], standing alone;
 * its class ('2', '4', '5') or 0.  *len gets its length. */
static int enhanced_at(const char *s, size_t n, size_t i, size_t *len)
{
        if (i >= n || (s[i] != '2' && s[i] != '4' && s[i] != '5'))
                return 0;
        if (i > 0 && (is_alnum_ascii(s[i - 1]) || s[i - 1] == '.'))
                return 0;
        size_t k = i + 1;
        for (int part = 0; part < 2; part++) {
                if (k >= n || s[k] != '.')
                        return 0;
                k++;
                size_t d = 0;
                while (k < n && is_digit(s[k]) && d < 4) {
                        k++;
                        d++;
                }
                if (d == 0 || d > 3)
                        return 0;
        }
        if (k < n && (is_alnum_ascii(s[k]) || (s[k] == '.' && k + 1 < n && is_digit(s[k + 1]))))
                return 0;
        *len = k - i;
        return s[i];
}

/* The first enhanced status code of a string, copied to out[16]; its class
 * or 0. */
static int status_parse(const char *s, char out[16])
{
        size_t n = strlen(s), len;
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                int cls = enhanced_at(s, n, i, &len);
                if (cls) {
                        memcpy(out, s + i, len);
                        out[len] = '\0';
                        return cls;
                }
        }
        return 0;
}

/* An SMTP reply code 4yz/5yz at s[i] (y 0-5) standing as a word: after
 * the start, a blank or one of ":;([", followed by a blank, '-' or the
 * end, and if a digit follows that, it starts an enhanced code.  Keeps
 * "5000 users" and "555-1234" out.  Its class or 0. */
static int reply_at(const char *s, size_t n, size_t i)
{
        if (i + 3 > n || (s[i] != '4' && s[i] != '5') || s[i + 1] < '0' || s[i + 1] > '5' ||
            !is_digit(s[i + 2]))
                return 0;
        if (i > 0 && !is_wsp(s[i - 1]) && (s[i - 1] == '\0' || !strchr(":;([", s[i - 1])))
                return 0;
        size_t k = i + 3;
        if (k == n)
                return s[i];
        if (s[k] != ' ' && s[k] != '-')
                return 0;
        size_t len;
        if (k + 1 < n && is_digit(s[k + 1]) && !enhanced_at(s, n, k + 1, &len))
                return 0;
        return s[i];
}

/* ---- delivery-status (RFC 3464) ----------------------------------------- */

static enum bounce_kind group_kind(const struct rcpt_group *g)
{
        int cls = g->status[0];
        if (!cls) {
                size_t n = strlen(g->diag);
                for (size_t i = 0; i < n && !cls; i++)
                        cls = reply_at(g->diag, n, i);
        }
        if (str_eq_ci(g->action, "delayed"))
                return BOUNCE_TEMPORARY;
        if (str_eq_ci(g->action, "delivered") || str_eq_ci(g->action, "relayed") ||
            str_eq_ci(g->action, "expanded"))
                return BOUNCE_UNKNOWN;
        /* "failed", and a missing or unknown action: the code decides */
        if (cls == '5')
                return BOUNCE_PERMANENT;
        if (cls == '4')
                return BOUNCE_TEMPORARY;
        return BOUNCE_UNKNOWN;
}

static int kind_rank(enum bounce_kind k)
{
        return k == BOUNCE_PERMANENT ? 3 : k == BOUNCE_TEMPORARY ? 2 : 1;
}

static void group_field(struct rcpt_group *g, const struct field *f)
{
        char v[FIELD_MAX];
        if (span_eq_ci(f->name, "action")) {
                if (field_text(f->value, v, sizeof(v), false)) {
                        const char *s = v;
                        size_t n = 0;
                        while (n + 1 < sizeof(g->action) && is_token_char(s[n]))
                                n++;
                        memcpy(g->action, s, n);
                        g->action[n] = '\0';
                }
                g->seen = true;
        } else if (span_eq_ci(f->name, "status")) {
                if (field_text(f->value, v, sizeof(v), false))
                        status_parse(v, g->status);
                g->seen = true;
        } else if (span_eq_ci(f->name, "final-recipient")) {
                const char *a = field_text(f->value, v, sizeof(v), false) ? typed_addr(v) : NULL;
                if (a)
                        copy_str(g->final_rcpt, sizeof(g->final_rcpt), a);
                g->seen = true;
        } else if (span_eq_ci(f->name, "original-recipient")) {
                const char *a = field_text(f->value, v, sizeof(v), false) ? typed_addr(v) : NULL;
                if (a)
                        copy_str(g->orig_rcpt, sizeof(g->orig_rcpt), a);
                g->seen = true;
        } else if (span_eq_ci(f->name, "diagnostic-code")) {
                if (field_text(f->value, v, sizeof(v), true)) {
                        const char *semi = strchr(v, ';');
                        copy_str(g->diag, sizeof(g->diag), semi ? semi + 1 : v);
                }
        }
}

/* Per-message fields, then per-recipient groups, separated by blank lines.
 * The group that says most (permanent over temporary over the rest) wins;
 * among equals the first. */
static void dsn_parse(struct scan *sc, struct span text)
{
        const char *p = text.p, *end = text.p + text.n;
        struct rcpt_group *g = xmalloc(sizeof(*g));
        int best = 0;
        while (p < end) {
                struct span line;
                const char *block = p, *block_end;
                while (block < end) {           /* skip blank lines */
                        const char *q = block;
                        line_next(&q, end, &line);
                        if (!line_blank(line))
                                break;
                        block = q;
                }
                block_end = block;
                while (block_end < end) {
                        const char *q = block_end;
                        line_next(&q, end, &line);
                        if (line_blank(line))
                                break;
                        block_end = q;
                }
                p = block_end;
                if (block == block_end)
                        continue;

                memset(g, 0, sizeof(*g));
                const char *f_p = block;
                struct field f;
                while (field_next(&f_p, block_end, &f))
                        group_field(g, &f);
                if (!g->seen)
                        continue;
                enum bounce_kind k = group_kind(g);
                if (kind_rank(k) <= best)
                        continue;
                best = kind_rank(k);
                sc->dsn = true;
                sc->dsn_kind = k;
                /* Original-Recipient is the address we sent to, Final-Recipient
                 * may be where the receiving side forwarded it. */
                struct span a;
                struct addr parsed;
                bool orig_ok = g->orig_rcpt[0] && addr_list_each(g->orig_rcpt, first_addr, &a) &&
                               addr_parse(a.p, a.n, &parsed) == ADDR_OK;
                copy_str(sc->dsn_rcpt, sizeof(sc->dsn_rcpt), orig_ok ? g->orig_rcpt : g->final_rcpt);
                copy_str(sc->dsn_status, sizeof(sc->dsn_status), g->status);
                copy_str(sc->dsn_diag, sizeof(sc->dsn_diag), g->diag);
        }
        free(g);
}

/* ---- feedback-report (RFC 5965) and the returned original --------------- */

static void arf_parse(struct scan *sc, struct span text)
{
        const char *p = text.p, *end = text.p + text.n;
        struct field f;
        char v[FIELD_MAX];
        sc->arf = true;
        while (field_next(&p, end, &f)) {
                if (!field_text(f.value, v, sizeof(v), false))
                        continue;
                if (span_eq_ci(f.name, "feedback-type") && !sc->feedback_type[0]) {
                        size_t n = 0;
                        while (n + 1 < sizeof(sc->feedback_type) && is_token_char(v[n])) {
                                sc->feedback_type[n] = lower(v[n]);
                                n++;
                        }
                        sc->feedback_type[n] = '\0';
                } else if (span_eq_ci(f.name, "original-rcpt-to") && !sc->arf_rcpt[0]) {
                        copy_str(sc->arf_rcpt, sizeof(sc->arf_rcpt), v);
                } else if (span_eq_ci(f.name, "removal-recipient") && !sc->arf_rcpt[0]) {
                        copy_str(sc->arf_rcpt, sizeof(sc->arf_rcpt), v);   /* RFC 5965 draft name */
                } else if (span_eq_ci(f.name, "original-mail-from") && !sc->arf_mail_from[0]) {
                        copy_str(sc->arf_mail_from, sizeof(sc->arf_mail_from), v);
                }
        }
}

static void original_parse(struct scan *sc, struct span text)
{
        struct span hdr, body;
        entity_split(text, &hdr, &body);
        sc->orig = true;
        header_get(hdr, "return-path", sc->orig_return_path, sizeof(sc->orig_return_path));
        header_get(hdr, "to", sc->orig_to, sizeof(sc->orig_to));
}

/* ---- the MIME tree ------------------------------------------------------ */

static void walk(struct scan *sc, struct span entity, unsigned depth, bool cut);

static bool delimiter_line(struct span line, const char *boundary, size_t blen, bool *close)
{
        if (line.n < 2 + blen || line.p[0] != '-' || line.p[1] != '-' ||
            memcmp(line.p + 2, boundary, blen) != 0)
                return false;
        struct span rest = { line.p + 2 + blen, line.n - 2 - blen };
        *close = rest.n >= 2 && rest.p[0] == '-' && rest.p[1] == '-';
        if (*close) {
                rest.p += 2;
                rest.n -= 2;
        }
        return line_blank(rest);
}

/* The parts between the delimiter lines; a part cut off by the end of the
 * message (no close delimiter) runs to the end and is marked cut. */
static void walk_multipart(struct scan *sc, struct span body, const char *boundary,
                           unsigned depth)
{
        size_t blen = strlen(boundary);
        const char *p = body.p, *end = body.p + body.n;
        const char *part = NULL;
        struct span line;
        for (;;) {
                const char *line_start = p;
                bool close;
                if (!line_next(&p, end, &line))
                        break;
                if (!delimiter_line(line, boundary, blen, &close))
                        continue;
                if (part) {
                        /* the line break before a delimiter belongs to it */
                        const char *e = line_start;
                        if (e > part && e[-1] == '\n')
                                e--;
                        if (e > part && e[-1] == '\r')
                                e--;
                        walk(sc, (struct span){ part, (size_t)(e - part) }, depth + 1, false);
                }
                if (close)
                        return;
                part = p;
        }
        if (part)
                walk(sc, (struct span){ part, (size_t)(end - part) }, depth + 1, true);
}

/* `cut`: the entity ran into the end of the message without its close
 * delimiter, so its encoded content may stop in the middle of a line. */
static void walk(struct scan *sc, struct span entity, unsigned depth, bool cut)
{
        if (depth > MIME_DEPTH_MAX || sc->parts >= MIME_PARTS_MAX)
                return;
        sc->parts++;
        struct span hdr, body;
        struct content_type ct;
        entity_split(entity, &hdr, &body);
        content_type_get(hdr, &ct);
        const char *t = ct.type;
        if (strncmp(t, "multipart/", 10) == 0) {
                if (ct.boundary[0])
                        walk_multipart(sc, body, ct.boundary, depth);
                return;
        }

        enum { NONE, DSN, ARF, ORIGINAL, NOTICE } what = NONE;
        if (!strcmp(t, "message/delivery-status") || !strcmp(t, "message/global-delivery-status"))
                what = sc->dsn ? NONE : DSN;
        else if (!strcmp(t, "message/feedback-report"))
                what = sc->arf ? NONE : ARF;
        else if (!strcmp(t, "message/rfc822") || !strcmp(t, "message/global") ||
                 !strcmp(t, "text/rfc822-headers") || !strcmp(t, "message/rfc822-headers") ||
                 !strcmp(t, "message/global-headers"))
                what = sc->orig ? NONE : ORIGINAL;
        else if (!t[0] || !strcmp(t, "text/plain"))
                what = sc->notice ? NONE : NOTICE;
        if (what == NONE)
                return;

        char *owned;
        struct span text = body_decode(hdr, body, &owned);
        if (cut && owned) {
                /* a value cut short must not pass for a whole one */
                const char *nl = memrchr(text.p, '\n', text.n);
                text.n = nl ? (size_t)(nl - text.p) + 1 : 0;
        }
        switch (what) {
        case DSN:
                dsn_parse(sc, text);
                break;
        case ARF:
                arf_parse(sc, text);
                break;
        case ORIGINAL:
                original_parse(sc, text);
                break;
        case NOTICE:
                sc->notice = true;
                sc->notice_text = text;
                sc->notice_owned = owned;       /* kept until the end */
                return;
        case NONE:
                break;
        }
        free(owned);
}

/* ---- plain-text reports ------------------------------------------------- */

/* Said by the MTA about a message it gave up on. */
static const char *const failure_phrases[] = {
        "permanent error", "permanent failure", "permanently", "could not be delivered",
        "couldn't be delivered", "was not delivered", "wasn't able to deliver",
        "was not able to deliver", "unable to deliver", "undeliverable", "delivery has failed",
        "delivery failed", "delivery to the following recipient failed", "address(es) failed",
        "addresses failed", "failed recipient", "giving up", "given up", "user unknown",
        "unknown user", "no such user", "no mailbox", "mailbox unavailable", "does not exist",
        "address rejected", "recipient rejected",
};

/* Said by the MTA about a message it still tries to deliver. */
static const char *const delay_phrases[] = {
        "not yet been delivered", "has not been delivered yet", "delayed", "delivery delay",
        "temporary failure", "temporary error", "temporarily", "still in the queue",
        "will retry", "will keep trying", "will continue", "deferred", "still trying",
};

/* The MTA's own words at the top of a report. */
static const char *const report_banners[] = {
        "qmail-send program", "mail delivery software", "mail delivery system",
        "mail delivery subsystem", "delivery status notification", "non-delivery",
        "delivery has failed to these recipients", "undelivered mail returned",
};

/* Subjects of reports. */
static const char *const report_subjects[] = {
        "undeliver", "delivery fail", "failure notice", "returned mail", "delivery status",
        "non-delivery", "delivery delayed", "delayed mail", "could not send message",
        "mail delivery",
};

/* Subjects of auto-replies, at the start. */
static const char *const autoreply_subjects[] = {
        "out of office", "out-of-office", "automatic reply", "auto reply", "auto-reply",
        "autoreply", "auto:", "vacation", "away from", "abwesenheit", "abwesend",
};

/* A line like these starts the copy of the original in the text. */
static const char *const copy_markers[] = {
        "below this line is a copy of the message", "this is a copy of the message",
        "original message follows", "returned message follows", "headers of the original",
        "original message headers", "----- original message", "-- original message",
};

static const char *const daemon_locals[] = {
        "mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "maildaemon",
        "postmaster",
};

static bool has_any(const char *lowered, size_t n, const char *const *list, size_t n_list)
{
        for (size_t i = 0; i < n_list; i++)
                if (memmem(lowered, n, list[i], strlen(list[i])))
                        return true;
        return false;
}

/* Lower case, whitespace runs (line breaks too) as one space: phrases
 * wrapped over lines are found as well. */
static size_t text_flatten(const char *s, size_t n, char *out)
{
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                        if (o && out[o - 1] != ' ')
                                out[o++] = ' ';
                        continue;
                }
                out[o++] = lower(c);
        }
        return o;
}

static bool line_is_copy_marker(struct span line)
{
        char low[256];
        size_t n = line.n < sizeof(low) ? line.n : sizeof(low);
        for (size_t i = 0; i < n; i++)
                low[i] = lower(line.p[i]);
        return has_any(low, n, copy_markers, N_ELEM(copy_markers));
}

static bool local_is_daemon(struct span a)
{
        const char *at = memrchr(a.p, '@', a.n);
        struct span local = { a.p, at ? (size_t)(at - a.p) : a.n };
        for (size_t i = 0; i < N_ELEM(daemon_locals); i++)
                if (span_eq_ci(local, daemon_locals[i]))
                        return true;
        return false;
}

/* What the top-level headers say about the sender of the message. */
struct origin {
        bool daemon;            /* an MTA's report */
        bool autoreply;         /* someone's auto-responder */
        char failed_rcpt[FIELD_MAX];    /* Exim's X-Failed-Recipients */
};

static void origin_get(struct span hdr, struct origin *o)
{
        char from[FIELD_MAX], subject[FIELD_MAX], auto_sub[64];
        struct span a;
        memset(o, 0, sizeof(*o));
        bool from_daemon = header_get(hdr, "from", from, sizeof(from)) &&
                           addr_list_each(from, first_addr, &a) && local_is_daemon(a);
        bool failed = header_get(hdr, "x-failed-recipients", o->failed_rcpt,
                                 sizeof(o->failed_rcpt)) && o->failed_rcpt[0];
        bool subject_report = false, subject_auto = false;
        if (header_get(hdr, "subject", subject, sizeof(subject))) {
                char low[FIELD_MAX];
                size_t n = text_flatten(subject, strlen(subject), low);
                subject_report = has_any(low, n, report_subjects, N_ELEM(report_subjects));
                for (size_t i = 0; i < N_ELEM(autoreply_subjects); i++)
                        if (n >= strlen(autoreply_subjects[i]) &&
                            memcmp(low, autoreply_subjects[i], strlen(autoreply_subjects[i])) == 0)
                                subject_auto = true;
        }
        bool auto_replied = header_get(hdr, "auto-submitted", auto_sub, sizeof(auto_sub)) &&
                            str_starts_ci(auto_sub, "auto-replied");
        /* RFC 3834 3.1.8 names it as what older responders send instead */
        char precedence[64];
        bool precedence_auto = header_get(hdr, "precedence", precedence, sizeof(precedence)) &&
                               str_starts_ci(precedence, "auto_reply");
        o->daemon = from_daemon || failed || subject_report;
        o->autoreply = header_has(hdr, "x-autoreply") || header_has(hdr, "x-autorespond") ||
                       subject_auto || precedence_auto || (auto_replied && !from_daemon && !failed);
}

static bool is_local_char(char c)
{
        return is_alnum_ascii(c) || c == '.' || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool is_domain_char(char c)
{
        return is_alnum_ascii(c) || c == '.' || c == '-' || (unsigned char)c >= 0x80;
}

/* The first address in a line that is neither ours (whatever its id) nor
 * an MTA's. */
static bool line_recipient(struct span l, const struct verp *v, char *out)
{
        for (size_t i = 0; i < l.n; i++) {
                if (l.p[i] != '@')
                        continue;
                size_t s = i, e = i + 1;
                while (s > 0 && is_local_char(l.p[s - 1]))
                        s--;
                while (e < l.n && is_domain_char(l.p[e]))
                        e++;
                while (e > i + 1 && (l.p[e - 1] == '.' || l.p[e - 1] == '-'))
                        e--;
                while (s < i && l.p[s] == '.')
                        s++;
                struct span a = { l.p + s, e - s };
                struct addr parsed;
                if (a.n > ADDR_INPUT_MAX || verp_like(v, a) || local_is_daemon(a) ||
                    addr_parse(a.p, a.n, &parsed) != ADDR_OK)
                        continue;
                copy_str(out, ADDR_PATH_MAX + 1, parsed.mailbox);
                return true;
        }
        return false;
}

/* qmail names the recipient on a line of its own: "<user@example.org>:". */
static bool qmail_recipient(struct span l, char *out)
{
        struct addr parsed;
        while (l.n && is_wsp(l.p[l.n - 1]))
                l.n--;
        if (l.n < 4 || l.p[0] != '<' || l.p[l.n - 2] != '>' || l.p[l.n - 1] != ':')
                return false;
        if (addr_parse(l.p + 1, l.n - 3, &parsed) != ADDR_OK)
                return false;
        copy_str(out, ADDR_PATH_MAX + 1, parsed.mailbox);
        return true;
}

/* The first code of a class in the text before the copy of the original:
 * its line number, the line, and the first enhanced code of that class. */
struct code_hit {
        bool found;
        size_t line_no;
        struct span line;
        char status[16];
};

static void line_codes(struct span l, size_t line_no, struct code_hit *perm, struct code_hit *temp)
{
        for (size_t i = 0; i < l.n; i++) {
                size_t len = 0;
                int cls = enhanced_at(l.p, l.n, i, &len);
                bool enhanced = cls != 0;
                if (!cls)
                        cls = reply_at(l.p, l.n, i);
                struct code_hit *h = cls == '5' ? perm : cls == '4' ? temp : NULL;
                if (!h)
                        continue;
                if (!h->found) {
                        h->found = true;
                        h->line_no = line_no;
                        h->line = l;
                }
                if (enhanced && !h->status[0] && len < sizeof(h->status)) {
                        memcpy(h->status, l.p + i, len);
                        h->status[len] = '\0';
                }
        }
}

/* A plain-text report: PERMANENT only on a 5xx reply or 5.x.x code and a
 * failure phrase, TEMPORARY on a 4xx/4.x.x code and a delay (or failure)
 * phrase, both only from what looks like an MTA and not an auto-reply. */
static void notice_parse(struct span text, struct span hdr, const struct verp *v,
                         struct bounce_info *out, struct span *copy)
{
        struct origin o;
        origin_get(hdr, &o);
        if (text.n > NOTICE_MAX)
                text.n = NOTICE_MAX;
        *copy = (struct span){ text.p + text.n, 0 };

        /* the report up to the copy of the original */
        const char *p = text.p, *end = text.p + text.n;
        struct span line;
        struct code_hit perm = { 0 }, temp = { 0 };
        char qmail_rcpt[ADDR_PATH_MAX + 1] = "";
        size_t line_no = 0;
        const char *report_end = end;
        for (;;) {
                const char *start = p;
                if (!line_next(&p, end, &line))
                        break;
                if (line_is_copy_marker(line)) {
                        report_end = start;
                        *copy = (struct span){ p, (size_t)(end - p) };
                        break;
                }
                line_codes(line, line_no, &perm, &temp);
                if (!qmail_rcpt[0])
                        qmail_recipient(line, qmail_rcpt);
                line_no++;
        }

        size_t report_len = (size_t)(report_end - text.p);
        char *flat = xmalloc(report_len + 1);
        size_t flat_len = text_flatten(text.p, report_len, flat);
        bool daemon = o.daemon || has_any(flat, flat_len, report_banners, N_ELEM(report_banners));
        bool failure = has_any(flat, flat_len, failure_phrases, N_ELEM(failure_phrases));
        bool delay = has_any(flat, flat_len, delay_phrases, N_ELEM(delay_phrases));
        free(flat);
        if (!daemon || o.autoreply)
                return;

        struct code_hit *hit = NULL;
        if (perm.found && failure) {
                out->kind = BOUNCE_PERMANENT;
                hit = &perm;
        } else if (temp.found && (delay || failure)) {
                out->kind = BOUNCE_TEMPORARY;
                hit = &temp;
        } else {
                return;
        }
        copy_str(out->status, sizeof(out->status), hit->status);
        diag_set(out->diagnostic, sizeof(out->diagnostic), hit->line.p, hit->line.n);

        /* the recipient: X-Failed-Recipients, qmail's "<addr>:", or the
         * nearest address at or above the code */
        recipient_set(out->recipient, o.failed_rcpt[0] ? o.failed_rcpt : NULL);
        if (!out->recipient[0] && qmail_rcpt[0])
                copy_str(out->recipient, sizeof(out->recipient), qmail_rcpt);
        if (out->recipient[0])
                return;
        struct span near[NEAR_LINES + 1];
        size_t n_near = 0;
        p = text.p;
        line_no = 0;
        while (line_no <= hit->line_no && line_next(&p, report_end, &line)) {
                if (line_no + NEAR_LINES >= hit->line_no)
                        near[n_near++] = line;
                line_no++;
        }
        while (n_near > 0)
                if (line_recipient(near[--n_near], v, out->recipient))
                        return;
}

/* "Return-Path:" in the header of the copy of the original that a plain
 * report quotes. */
static int64_t verp_in_copy(struct verp *v, struct span copy)
{
        const char *p = copy.p, *end = copy.p + copy.n;
        struct span line, hdr, body;
        for (;;) {                      /* blank lines after the marker */
                const char *start = p;
                if (!line_next(&p, end, &line))
                        return 0;
                if (!line_blank(line)) {
                        p = start;
                        break;
                }
        }
        entity_split((struct span){ p, (size_t)(end - p) }, &hdr, &body);
        return verp_in_header(v, hdr, "return-path");
}

/* ---- the relay's own refusals ------------------------------------------- */

/* Whether the reply names, in <...>, another address than rcpt: Postfix
 * echoes the address a restriction is about, and refuses our return path
 * at RCPT too (smtpd_delay_reject), with 5.1.0 or 4.1.8. */
static bool names_another(const char *reply, const char *rcpt)
{
        size_t rn = strlen(rcpt);
        for (const char *p = strchr(reply, '<'); p; p = strchr(p + 1, '<')) {
                const char *e = strchr(p + 1, '>');
                if (!e)
                        break;
                size_t n = (size_t)(e - p - 1);
                if (memchr(p + 1, '@', n) && (n != rn || strncasecmp(p + 1, rcpt, n) != 0))
                        return true;
        }
        return false;
}

enum bounce_kind bounce_relay_reply(long code, const char *reply, const char *rcpt, char status[16])
{
        int cls = status_parse(reply, status);
        if (code < 400 || code > 599 || names_another(reply, rcpt))
                return BOUNCE_UNKNOWN;
        /* subject and detail of an enhanced code of the reply's own class */
        long subject = -1, detail = -1;
        if (cls && cls - '0' == code / 100) {
                char *e;
                subject = strtol(status + 2, &e, 10);
                detail = strtol(e + 1, NULL, 10);
        }
        if (code >= 500) {
                bool dead = (subject == 1 && (detail == 0 || detail == 1 || detail == 2 ||
                                              detail == 3 || detail == 6 || detail == 10)) ||
                            (subject == 2 && detail == 1);
                return dead ? BOUNCE_PERMANENT : BOUNCE_UNKNOWN;
        }
        /* 421: the relay closes the session, whoever the mail was for */
        bool ours = code == 421 || subject == 5 || subject == 7 || (subject == 4 && detail == 5) ||
                    (subject == 1 && (detail == 7 || detail == 8));
        return ours ? BOUNCE_UNKNOWN : BOUNCE_TEMPORARY;
}

/* ---- the whole message -------------------------------------------------- */

int bounce_parse(const char *msg, size_t len, const char *return_path, const struct secret_keys *keys,
                 struct bounce_info *out)
{
        memset(out, 0, sizeof(*out));
        if (!msg || len > BOUNCE_MSG_MAX)
                return 0;
        /* An MTA delivers whole lines: a last line without its line break
         * was cut, and a cut address or code must not pass for a whole one. */
        const char *last_nl = memrchr(msg, '\n', len);
        len = last_nl ? (size_t)(last_nl - msg) + 1 : 0;

        struct verp v;
        verp_init(&v, return_path, keys);
        struct scan *sc = xcalloc(1, sizeof(*sc));
        struct span whole = { msg, len }, hdr, body, copy = { msg, 0 };
        entity_split(whole, &hdr, &body);
        walk(sc, whole, 0, false);

        if (sc->arf) {
                const char *t = sc->feedback_type;
                if (!strcmp(t, "abuse") || !strcmp(t, "fraud") || !strcmp(t, "virus"))
                        out->kind = BOUNCE_COMPLAINT;
                recipient_set(out->recipient, sc->arf_rcpt[0] ? sc->arf_rcpt : sc->orig_to);
                char d[96];
                snprintf(d, sizeof(d), "feedback-type %s", t[0] ? t : "(none)");
                diag_set(out->diagnostic, sizeof(out->diagnostic), d, strlen(d));
        } else if (sc->dsn) {
                out->kind = sc->dsn_kind;
                recipient_set(out->recipient, sc->dsn_rcpt);
                copy_str(out->status, sizeof(out->status), sc->dsn_status);
                diag_set(out->diagnostic, sizeof(out->diagnostic), sc->dsn_diag,
                         strlen(sc->dsn_diag));
        } else if (sc->notice) {
                notice_parse(sc->notice_text, hdr, &v, out, &copy);
        }

        /* the mail: where the MTA delivered the report, then the original */
        static const char *const delivered_to[] = { "x-original-to", "delivered-to", "to" };
        for (size_t i = 0; i < N_ELEM(delivered_to) && !out->mail_id; i++)
                out->mail_id = verp_in_header(&v, hdr, delivered_to[i]);
        if (!out->mail_id && sc->arf)
                out->mail_id = verp_in_value(&v, sc->arf_mail_from);
        if (!out->mail_id && sc->orig)
                out->mail_id = verp_in_value(&v, sc->orig_return_path);
        if (!out->mail_id)
                out->mail_id = verp_in_copy(&v, copy);
        out->verp = out->mail_id ? BOUNCE_VERP_VALID : v.invalid ? BOUNCE_VERP_INVALID :
                    BOUNCE_VERP_ABSENT;
        if (out->kind == BOUNCE_UNKNOWN) {
                struct origin o;
                origin_get(hdr, &o);
                out->autoreply = o.autoreply;
        }

        free(sc->notice_owned);
        free(sc);
        return 0;
}
