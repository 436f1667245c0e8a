/*
 * mailparse.c - the MIME reader under bounce parsing: a received message
 * taken apart by GMime (the MIME tree, transfer encodings, charsets, RFC
 * 2047 in headers) into parts whose header blocks and text are UTF-8, plus
 * the small text helpers the report readers use on what GMime gives them:
 * lines, header fields (unfolded) and address lists.  It knows nothing of
 * bounces: what the parts mean is bounce_report.c's and bounce.c's.
 *
 * Owns the GMime objects and the decoded texts of a struct mail_message
 * until mailparse_close().  Must never do I/O, never read outside the
 * bytes it was given (a message need not be NUL-terminated and may hold
 * NUL), and never follow nesting or count parts without a bound.
 * Lenient as mail readers are: junk is skipped, not refused.  GMime is
 * initialised once per process (mailparse_init(), under pthread_once).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "log.h"
#include "mailparse.h"
#include "textutil.h"

#define PART_TEXT_MAX   (1u << 20)      /* decoded bytes of one part looked at */

struct mail_message {
        GMimeMessage *msg;
        struct mail_span hdr;           /* the top-level header block, decoded */
        char *hdr_owned;
        /* decoded texts handed out by the walk, freed at close */
        char **texts;
        size_t n_texts, cap_texts;
};

/* ---- bytes and lines ---------------------------------------------------- */

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
                if (mail_span_eq_ci(f.name, name))
                        return mailparse_field_text(f.value, out, cap, false);
        return false;
}

bool mailparse_field_is(const struct mail_field *f, const char *name)
{
        return mail_span_eq_ci(f->name, name);
}

bool mailparse_header_has(struct mail_span hdr, const char *name)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct mail_field f;
        while (mailparse_field_next(&p, end, &f))
                if (mail_span_eq_ci(f.name, name))
                        return true;
        return false;
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


/* ---- the MIME tree (GMime) ---------------------------------------------- */

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_start(void)
{
        g_mime_init();
}

void mailparse_init(void)
{
        pthread_once(&gmime_once, gmime_start);
}

static char *message_keep(struct mail_message *m, char *text)
{
        if (m->n_texts == m->cap_texts) {
                m->cap_texts = m->cap_texts ? 2 * m->cap_texts : 16;
                m->texts = xrealloc(m->texts, m->cap_texts * sizeof(*m->texts));
        }
        m->texts[m->n_texts++] = text;
        return text;
}

/* A header list as "Name: value" lines, values unfolded and RFC 2047
 * decoded by GMime; CR and LF inside a value become blanks. */
static struct mail_span headers_text(struct mail_message *m, GMimeObject *o)
{
        GMimeHeaderList *hl = g_mime_object_get_header_list(o);
        int count = hl ? g_mime_header_list_get_count(hl) : 0;
        size_t cap = 256, n = 0;
        char *out = xmalloc(cap);
        for (int i = 0; i < count; i++) {
                GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
                const char *name = g_mime_header_get_name(h), *value = g_mime_header_get_value(h);
                if (!name)
                        continue;
                if (!value)
                        value = "";
                size_t nl = strlen(name), vl = strlen(value);
                if (nl + vl + 4 > MAIL_FIELD_MAX * 8)
                        vl = MAIL_FIELD_MAX * 8 > nl + 4 ? MAIL_FIELD_MAX * 8 - nl - 4 : 0;
                if (n + nl + vl + 4 > cap) {
                        while (n + nl + vl + 4 > cap)
                                cap *= 2;
                        out = xrealloc(out, cap);
                }
                memcpy(out + n, name, nl);
                n += nl;
                out[n++] = ':';
                out[n++] = ' ';
                for (size_t k = 0; k < vl; k++)
                        out[n++] = value[k] == '\r' || value[k] == '\n' ? ' ' : value[k];
                out[n++] = '\n';
        }
        out[n] = '\0';
        message_keep(m, out);
        return (struct mail_span){ out, n };
}

struct mail_message *mailparse_open(const char *p, size_t n)
{
        mailparse_init();
        struct mail_message *m = xcalloc(1, sizeof(*m));
        GMimeStream *stream = g_mime_stream_mem_new_with_buffer(p, n);
        GMimeParser *parser = g_mime_parser_new_with_stream(stream);
        g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
        m->msg = g_mime_parser_construct_message(parser, NULL);
        g_object_unref(parser);
        g_object_unref(stream);
        if (m->msg)
                m->hdr = headers_text(m, GMIME_OBJECT(m->msg));
        else
                m->hdr = (struct mail_span){ "", 0 };
        return m;
}

void mailparse_close(struct mail_message *m)
{
        if (!m)
                return;
        if (m->msg)
                g_object_unref(m->msg);
        for (size_t i = 0; i < m->n_texts; i++)
                free(m->texts[i]);
        free(m->texts);
        free(m);
}

struct mail_span mailparse_headers(const struct mail_message *m)
{
        return m->hdr;
}

/* The content of a leaf part with its transfer encoding undone and, for
 * text, converted from its charset to UTF-8 (left as it is when GMime
 * knows no converter for it); at most PART_TEXT_MAX bytes. */
static struct mail_span part_text(struct mail_message *m, GMimePart *part, GMimeContentType *ct)
{
        GMimeDataWrapper *content = g_mime_part_get_content(part);
        if (!content)
                return (struct mail_span){ "", 0 };
        GByteArray *bytes = g_byte_array_new();
        GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(bytes);
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
        GMimeStream *filtered = g_mime_stream_filter_new(mem);
        bool converted = false;
        const char *charset = ct ? g_mime_content_type_get_parameter(ct, "charset") : NULL;
        if (charset && g_mime_content_type_is_type(ct, "text", "*") &&
            g_ascii_strcasecmp(charset, "utf-8") != 0 && g_ascii_strcasecmp(charset, "us-ascii") != 0) {
                GMimeFilter *conv = g_mime_filter_charset_new(charset, "UTF-8");
                if (conv) {
                        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), conv);
                        g_object_unref(conv);
                        converted = true;
                }
        }
        g_mime_data_wrapper_write_to_stream(content, filtered);
        g_mime_stream_flush(filtered);
        g_object_unref(filtered);
        g_object_unref(mem);
        size_t n = bytes->len < PART_TEXT_MAX ? bytes->len : PART_TEXT_MAX;
        char *text = xmalloc(n + 1);
        if (n)
                memcpy(text, bytes->data, n);
        text[n] = '\0';
        g_byte_array_free(bytes, TRUE);
        /* ISO-2022-JP in a part that names no charset (Japanese MTAs put it
         * into delivery-status fields too): its escape sequences say so */
        if (!converted && (memmem(text, n, "\x1b$B", 3) || memmem(text, n, "\x1b$@", 3))) {
                gsize out_n = 0;
                gchar *utf8 = g_convert_with_fallback(text, (gssize)n, "UTF-8", "ISO-2022-JP", "?", NULL,
                                                      &out_n, NULL);
                if (utf8) {
                        free(text);
                        n = out_n < PART_TEXT_MAX ? out_n : PART_TEXT_MAX;
                        text = xmalloc(n + 1);
                        memcpy(text, utf8, n);
                        text[n] = '\0';
                        g_free(utf8);
                }
        }
        message_keep(m, text);
        return (struct mail_span){ text, n };
}

struct walker {
        struct mail_message *m;
        void (*fn)(const struct mail_part *part, void *ctx);
        void *ctx;
        unsigned parts;
};

static void walk(struct walker *w, GMimeObject *o, unsigned depth)
{
        if (!o || depth > MAIL_DEPTH_MAX || w->parts >= MAIL_PARTS_MAX)
                return;
        w->parts++;
        if (GMIME_IS_MULTIPART(o)) {
                GMimeMultipart *mp = GMIME_MULTIPART(o);
                int count = g_mime_multipart_get_count(mp);
                for (int i = 0; i < count; i++)
                        walk(w, g_mime_multipart_get_part(mp, i), depth + 1);
                /* a boundary that never occurs leaves the whole body in the
                 * prologue: read it as the plain text it then is */
                const char *prologue = g_mime_multipart_get_prologue(mp);
                if (count == 0 && prologue) {
                        char *text = message_keep(w->m, xstrdup(prologue));
                        struct mail_part part = { .type = "text/plain", .hdr = headers_text(w->m, o),
                                                  .text = { text, strlen(text) } };
                        w->fn(&part, w->ctx);
                }
                return;
        }
        GMimeContentType *ct = g_mime_object_get_content_type(o);
        char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
        char type_low[64] = "";
        if (type) {
                size_t k = 0;
                for (; type[k] && k + 1 < sizeof(type_low); k++)
                        type_low[k] = ascii_lower(type[k]);
                type_low[k] = '\0';
                g_free(type);
        }
        struct mail_part part = { .type = type_low, .hdr = headers_text(w->m, o) };
        if (GMIME_IS_MESSAGE_PART(o)) {
                /* the returned original: its header block is what counts */
                GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
                part.text = inner ? headers_text(w->m, GMIME_OBJECT(inner)) : (struct mail_span){ "", 0 };
        } else if (GMIME_IS_PART(o)) {
                part.text = part_text(w->m, GMIME_PART(o), ct);
        } else {
                return;
        }
        w->fn(&part, w->ctx);
}

void mailparse_walk(struct mail_message *m, void (*fn)(const struct mail_part *part, void *ctx), void *ctx)
{
        if (!m->msg)
                return;
        struct walker w = { m, fn, ctx, 0 };
        walk(&w, g_mime_message_get_mime_part(m->msg), 0);
}
