/*
 * mailparse.c - the MIME reader under bounce parsing: a received message
 * taken apart into lines, header fields (unfolded), address lists, the
 * tree of MIME entities (multipart boundaries, bounded nesting) and bodies
 * with their transfer encoding undone.  It knows nothing of bounces: what
 * the parts mean is bounce_report.c's and bounce.c's.
 *
 * Owns nothing past a call but the decoded bodies it hands to the caller.
 * Must never do I/O, never read outside the bytes it was given (a message
 * need not be NUL-terminated and may hold NUL), and never follow nesting
 * or count parts without a bound.  Lenient as mail readers are: junk is
 * skipped, not refused.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "log.h"
#include "mailparse.h"

#define BOUNDARY_MAX    200             /* RFC 2046 allows 70 */

struct content_type {
        char type[64];                  /* "type/subtype" in lower case; "" when absent */
        char boundary[BOUNDARY_MAX + 1];
};

/* ---- bytes and lines ---------------------------------------------------- */

static bool is_wsp(char c)
{
        return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static char lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool span_eq_ci(struct mail_span s, const char *lit)
{
        size_t n = strlen(lit);
        if (s.n != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (lower(s.p[i]) != lower(lit[i]))
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
bool mailparse_line_next(const char **p, const char *end, struct mail_span *line)
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

bool mailparse_line_blank(struct mail_span l)
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

/* ---- header fields ------------------------------------------------------ */

/* Split an entity at its first empty line into header block and body; an
 * entity without one is all header. */
void mailparse_entity_split(struct mail_span e, struct mail_span *hdr, struct mail_span *body)
{
        const char *p = e.p, *end = e.p + e.n;
        struct mail_span line;
        for (;;) {
                const char *start = p;
                if (!mailparse_line_next(&p, end, &line)) {
                        *hdr = e;
                        *body = (struct mail_span){ end, 0 };
                        return;
                }
                if (line.n == 0) {
                        *hdr = (struct mail_span){ e.p, (size_t)(start - e.p) };
                        *body = (struct mail_span){ p, (size_t)(end - p) };
                        return;
                }
        }
}

/* Next field of [*p, end) with its continuation lines.  Lines that are no
 * field (an mbox "From " line, junk, empty lines) are skipped. */
bool mailparse_field_next(const char **p, const char *end, struct mail_field *f)
{
        struct mail_span line;
        for (;;) {
                if (!mailparse_line_next(p, end, &line))
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
                        struct mail_span cont;
                        if (!mailparse_line_next(&q, end, &cont) || cont.n == 0 || !is_wsp(cont.p[0]))
                                break;
                        vend = cont.p + cont.n;
                        *p = q;
                }
                f->name = (struct mail_span){ line.p, name_len };
                f->value = (struct mail_span){ colon + 1, (size_t)(vend - colon - 1) };
                return true;
        }
}

/* A field value unfolded and trimmed into a C string.  False (and "") when
 * it holds NUL or, unless `cut` allows it, does not fit. */
bool mailparse_field_text(struct mail_span v, char *out, size_t cap, bool cut)
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
bool mailparse_header_get(struct mail_span hdr, const char *name, char *out, size_t cap)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct mail_field f;
        out[0] = '\0';
        while (mailparse_field_next(&p, end, &f))
                if (span_eq_ci(f.name, name))
                        return mailparse_field_text(f.value, out, cap, false);
        return false;
}

bool mailparse_field_is(const struct mail_field *f, const char *name)
{
        return span_eq_ci(f->name, name);
}

bool mailparse_header_has(struct mail_span hdr, const char *name)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct mail_field f;
        while (mailparse_field_next(&p, end, &f))
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
static void content_type_get(struct mail_span hdr, struct content_type *ct)
{
        char v[MAIL_FIELD_MAX];
        memset(ct, 0, sizeof(*ct));
        if (!mailparse_header_get(hdr, "content-type", v, sizeof(v)))
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

/* ---- address lists ----------------------------------------------------- */

/* The address in one element of an address list: inside the last <...>,
 * else the element without comments; a source route "@a,@b:" dropped. */
static struct mail_span addr_in_element(const char *s, size_t n)
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
        struct mail_span a;
        if (open && close) {
                a = (struct mail_span){ open + 1, (size_t)(close - open - 1) };
        } else {
                a = (struct mail_span){ s, n };
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
bool mailparse_addr_each(const char *v, bool (*fn)(struct mail_span, void *), void *ctx)
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
                        struct mail_span a = addr_in_element(start, (size_t)(s - start));
                        if (a.n && fn(a, ctx))
                                return true;
                        if (c == '\0')
                                return false;
                        start = s + 1;
                }
        }
}

static bool first_addr(struct mail_span a, void *ctx)
{
        *(struct mail_span *)ctx = a;
        return true;
}

bool mailparse_addr_first(const char *value, struct mail_span *addr)
{
        return mailparse_addr_each(value, first_addr, addr);
}

/* ---- the MIME tree ------------------------------------------------------ */

static bool delimiter_line(struct mail_span line, const char *boundary, size_t blen, bool *close)
{
        if (line.n < 2 + blen || line.p[0] != '-' || line.p[1] != '-' ||
            memcmp(line.p + 2, boundary, blen) != 0)
                return false;
        struct mail_span rest = { line.p + 2 + blen, line.n - 2 - blen };
        *close = rest.n >= 2 && rest.p[0] == '-' && rest.p[1] == '-';
        if (*close) {
                rest.p += 2;
                rest.n -= 2;
        }
        return mailparse_line_blank(rest);
}

/* What a walk over the tree passes down. */
struct walker {
        void (*fn)(const struct mail_part *part, void *ctx);
        void *ctx;
        unsigned parts;
};

static void walk(struct walker *w, struct mail_span entity, unsigned depth, bool cut);

/* The parts between the delimiter lines; a part cut off by the end of the
 * message (no close delimiter) runs to the end and is marked cut. */
static void walk_multipart(struct walker *w, struct mail_span body, const char *boundary,
                           unsigned depth)
{
        size_t blen = strlen(boundary);
        const char *p = body.p, *end = body.p + body.n;
        const char *part = NULL;
        struct mail_span line;
        for (;;) {
                const char *line_start = p;
                bool close;
                if (!mailparse_line_next(&p, end, &line))
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
                        walk(w, (struct mail_span){ part, (size_t)(e - part) }, depth + 1, false);
                }
                if (close)
                        return;
                part = p;
        }
        if (part)
                walk(w, (struct mail_span){ part, (size_t)(end - part) }, depth + 1, true);
}

/* `cut`: the entity ran into the end of the message without its close
 * delimiter, so its encoded content may stop in the middle of a line. */
static void walk(struct walker *w, struct mail_span entity, unsigned depth, bool cut)
{
        if (depth > MAIL_DEPTH_MAX || w->parts >= MAIL_PARTS_MAX)
                return;
        w->parts++;
        struct mail_part part = { .cut = cut };
        struct content_type ct;
        mailparse_entity_split(entity, &part.hdr, &part.body);
        content_type_get(part.hdr, &ct);
        if (strncmp(ct.type, "multipart/", 10) == 0) {
                if (ct.boundary[0])
                        walk_multipart(w, part.body, ct.boundary, depth);
                return;
        }
        part.type = ct.type;
        w->fn(&part, w->ctx);
}

void mailparse_walk(struct mail_span msg, void (*fn)(const struct mail_part *part, void *ctx), void *ctx)
{
        struct walker w = { fn, ctx, 0 };
        walk(&w, msg, 0, false);
}

struct mail_span mailparse_part_text(const struct mail_part *part, char **owned)
{
        char cte[64];
        *owned = NULL;
        if (!mailparse_header_get(part->hdr, "content-transfer-encoding", cte, sizeof(cte)))
                return part->body;
        bool b64 = str_eq_ci(cte, "base64");
        bool qp = str_eq_ci(cte, "quoted-printable");
        if (!b64 && !qp)
                return part->body;
        const char *s = part->body.p;
        size_t n = part->body.n;
        char *out = xmalloc((b64 ? base64_decoded_max(n) : n) + 1);
        struct mail_span text = { out, b64 ? base64_decode_mime(s, n, out) : qp_decode(s, n, out) };
        out[text.n] = '\0';
        *owned = out;
        if (part->cut) {
                /* a value cut short must not pass for a whole one */
                const char *nl = memrchr(text.p, '\n', text.n);
                text.n = nl ? (size_t)(nl - text.p) + 1 : 0;
        }
        return text;
}
