/*
 * draft.c - renders mails on the sender threads.  A newsletter for one
 * recipient: fills {{name}}, {{list}} and {{unsubscribe_url}} (HTML-escaped
 * in the HTML part), adds the unsubscribe link where the author placed
 * none, and sets List-Id, List-Unsubscribe and List-Unsubscribe-Post
 * (RFC 8058); the issue's texts are shared between the threads, read-only,
 * with a reference count, and encoded once per issue where no placeholder
 * is (see body_prep).  A confirmation: its finished texts as they are.
 * A leaf: no I/O, no SQL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "log.h"
#include "mime.h"
#include "draft.h"
#include "tmpl.h"

/*
 * An issue body, ready for many recipients.  Quoted-printable encodes line
 * by line (a soft break never crosses a line end), so the encoding of a
 * body is the encodings of its lines one after the other.  Lines without
 * a placeholder are encoded here, once; the lines a placeholder touches
 * (from the line of its "{{" to the line of its "}}") are kept as they are
 * and filled and encoded per recipient.  The placeholders are found the
 * way tmpl_fill() finds them, so a filled segment is exactly that part of
 * the filled whole.
 */
struct body_seg {
        bool fill;              /* raw text to fill (NUL-terminated), else quoted-printable */
        size_t off, len;        /* in data */
};

struct body_prep {
        struct buf data;
        struct body_seg *seg;
        size_t n, cap;
        bool bad_utf8;          /* a line without placeholders is not UTF-8 */
        bool html;
};

static void prep_add(struct body_prep *bp, const char *s, size_t n, bool fill)
{
        if (n == 0)
                return;
        if (bp->n == bp->cap) {
                bp->cap = bp->cap ? 2 * bp->cap : 8;
                bp->seg = xrealloc(bp->seg, bp->cap * sizeof(*bp->seg));
        }
        struct body_seg *g = &bp->seg[bp->n++];
        g->fill = fill;
        g->off = bp->data.len;
        if (fill) {
                buf_append(&bp->data, s, n);
                g->len = n;
                buf_putc(&bp->data, '\0');
        } else {
                if (!mime_utf8_valid(s, n))
                        bp->bad_utf8 = true;
                mime_encode_qp(s, n, &bp->data);
                g->len = bp->data.len - g->off;
        }
}

/* Just past the line end at or after p, or the end of the text. */
static const char *line_after(const char *p, const char *end)
{
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        return nl ? nl + 1 : end;
}

static struct body_prep *prep_body(const char *body, bool html)
{
        struct body_prep *bp = xcalloc(1, sizeof(*bp));
        bp->html = html;
        buf_init(&bp->data, 0);
        const char *end = body + strlen(body), *done = body;
        for (;;) {
                const char *o = strstr(done, "{{");
                const char *e = o ? strstr(o + 2, "}}") : NULL;
                if (!e)
                        break;  /* tmpl_fill() keeps the rest as it is */
                const char *from = o;
                while (from > done && from[-1] != '\n')
                        from--;
                const char *to = line_after(e + 2, end);
                /* later placeholders that start before the segment ends
                 * belong to it, and may take it further */
                const char *q = e + 2;
                for (;;) {
                        const char *o2 = strstr(q, "{{");
                        const char *e2 = o2 && o2 < to ? strstr(o2 + 2, "}}") : NULL;
                        if (!e2)
                                break;
                        q = e2 + 2;
                        if (q > to)
                                to = line_after(q, end);
                }
                prep_add(bp, done, (size_t)(from - done), false);
                prep_add(bp, from, (size_t)(to - from), true);
                done = to;
        }
        prep_add(bp, done, (size_t)(end - done), false);
        return bp;
}

static void prep_free(struct body_prep *bp)
{
        if (!bp)
                return;
        buf_free(&bp->data);
        free(bp->seg);
        free(bp);
}

static const char *const footer_text[LANG_N] = {
        "\n\n-- \nNewsletter abbestellen: {{unsubscribe_url}}\n",
        "\n\n-- \nUnsubscribe: {{unsubscribe_url}}\n",
};
static const char *const footer_html[LANG_N] = {
        "<p><a href=\"{{unsubscribe_url}}\">Newsletter abbestellen</a></p>",
        "<p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>",
};

/* A body with the unsubscribe link added at the end (in HTML before
 * </body>) when the author placed none; still to be filled. */
static char *with_footer(const char *body, bool html, enum lang lang)
{
        if (strstr(body, "{{unsubscribe_url}}"))
                return xstrdup(body);
        const char *footer = html ? footer_html[lang] : footer_text[lang];
        const char *end = html ? strstr(body, "</body>") : NULL;
        struct buf b;
        buf_init(&b, 0);
        if (end) {
                buf_append(&b, body, (size_t)(end - body));
                buf_puts(&b, footer);
                buf_puts(&b, end);
        } else {
                buf_puts(&b, body);
                buf_puts(&b, footer);
        }
        return buf_steal(&b, NULL);
}

struct issue_text *issue_text_new(int64_t id, char *subject, char *text, char *html)
{
        struct issue_text *it = xcalloc(1, sizeof(*it));
        it->refs = 1;
        it->id = id;
        it->subject = subject;
        it->text = text;
        it->html = html;
        for (int l = 0; l < LANG_N; l++) {
                for (int h = 0; h < 2; h++) {
                        const char *body = h ? html : text;
                        if (!body)
                                continue;
                        char *full = with_footer(body, h, (enum lang)l);
                        it->prep[l][h] = prep_body(full, h);
                        free(full);
                }
        }
        return it;
}

struct issue_text *issue_text_ref(struct issue_text *it)
{
        __atomic_add_fetch(&it->refs, 1, __ATOMIC_RELAXED);
        return it;
}

void issue_text_unref(struct issue_text *it)
{
        if (!it || __atomic_sub_fetch(&it->refs, 1, __ATOMIC_ACQ_REL) != 0)
                return;
        for (int l = 0; l < LANG_N; l++)
                for (int h = 0; h < 2; h++)
                        prep_free(it->prep[l][h]);
        free(it->subject);
        free(it->text);
        free(it->html);
        free(it);
}

/* One recipient's body, quoted-printable, into out (wiped and freed by the
 * caller: it carries the token).  MIME_OK or the mime_result. */
static enum mime_result encode_body(const struct body_prep *bp, const struct mail_draft *m,
                                    struct buf *out)
{
        if (bp->bad_utf8)
                return MIME_BAD_UTF8;
        char *eurl = bp->html ? html_escape(m->unsubscribe_url) : NULL;
        char *ename = bp->html ? html_escape(m->name) : NULL;
        struct tmpl_var vars[] = {
                { "unsubscribe_url", bp->html ? eurl : m->unsubscribe_url },
                { "name", bp->html ? ename : m->name },
                { "list", m->list },
        };
        enum mime_result r = MIME_OK;
        buf_reserve(out, bp->data.len + 512);
        for (size_t i = 0; i < bp->n && r == MIME_OK; i++) {
                const struct body_seg *g = &bp->seg[i];
                if (!g->fill) {
                        buf_append(out, bp->data.data + g->off, g->len);
                        continue;
                }
                char *filled = tmpl_fill(bp->data.data + g->off, vars, 3);
                if (!filled) {
                        /* a placeholder checked away when the issue was queued */
                        r = MIME_HEADER_CONTROL;
                        break;
                }
                size_t n = strlen(filled);
                if (mime_utf8_valid(filled, n))
                        mime_encode_qp(filled, n, out);
                else
                        r = MIME_BAD_UTF8;
                explicit_bzero(filled, n);
                free(filled);
        }
        if (eurl) {
                explicit_bzero(eurl, strlen(eurl));
                free(eurl);
        }
        free(ename);
        return r;
}

static void wipe(struct buf *b)
{
        if (b->data)
                explicit_bzero(b->data, b->len);
        buf_free(b);
}

static int render_plain(const struct mail_draft *m, struct buf *out)
{
        struct mime_header extra[] = { { "Auto-Submitted", "auto-generated" } };
        struct mime_msg msg = {
                .from_name = m->from_name, .from_addr = m->from_addr, .to_addr = m->to,
                .subject = m->subject, .msgid_domain = m->from_domain, .date = m->date,
                .extra = extra, .n_extra = 1, .text = m->text, .text_len = strlen(m->text),
        };
        return mime_build(&msg, out);
}

int draft_render(const struct mail_draft *m, struct buf *out)
{
        if (!m->issue)
                return render_plain(m, out);
        const struct body_prep *tp = m->issue->prep[m->lang][0], *hp = m->issue->prep[m->lang][1];
        struct buf text, html;
        buf_init(&text, 0);
        buf_init(&html, 0);
        enum mime_result r = encode_body(tp, m, &text);
        if (r == MIME_OK && hp)
                r = encode_body(hp, m, &html);
        char list_id[LIST_NAME_MAX_BYTES + 300], unsub[MAIL_LINE_MAX + 1];
        snprintf(list_id, sizeof(list_id), "<%s.%s>", m->list, m->from_domain);
        int n = snprintf(unsub, sizeof(unsub), "<%s>", m->unsubscribe_url);
        struct mime_header extra[] = {
                { "List-Id", list_id },
                { "List-Unsubscribe", unsub },
                { "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
        };
        struct mime_msg msg = {
                .from_name = m->from_name, .from_addr = m->from_addr, .to_addr = m->to,
                .subject = m->issue->subject, .msgid_domain = m->from_domain, .date = m->date,
                .extra = extra, .n_extra = 3,
                .text_qp = text.data ? text.data : "", .text_qp_len = text.len,
                .html_qp = hp ? (html.data ? html.data : "") : NULL, .html_qp_len = html.len,
        };
        if (r == MIME_OK)
                r = n < 0 || (size_t)n >= sizeof(unsub) ? MIME_TOO_LONG : mime_build(&msg, out);
        explicit_bzero(unsub, sizeof(unsub));
        wipe(&text);
        wipe(&html);
        return r;
}

void draft_free(struct mail_draft *m)
{
        if (!m)
                return;
        issue_text_unref(m->issue);
        free(m->subject);
        if (m->text) {
                explicit_bzero(m->text, strlen(m->text));
                free(m->text);
        }
        if (m->unsubscribe_url) {
                explicit_bzero(m->unsubscribe_url, strlen(m->unsubscribe_url));
                free(m->unsubscribe_url);
        }
        free(m->to);
        free(m->name);
        free(m->list);
        free(m->from_name);
        free(m->from_addr);
        free(m->from_domain);
        free(m);
}
