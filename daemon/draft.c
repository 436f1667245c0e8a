/*
 * draft.c - renders mails on the sender threads.  A newsletter for one
 * recipient: fills {{name}}, {{list}} and {{unsubscribe_url}} (HTML-escaped
 * in the HTML part), adds the unsubscribe link where the author placed
 * none, and sets List-Id, List-Unsubscribe and List-Unsubscribe-Post
 * (RFC 8058); the issue's texts are shared between the threads, read-only,
 * with a reference count.  A confirmation: its finished texts as they are.
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

struct issue_text *issue_text_new(int64_t id, char *subject, char *text, char *html)
{
        struct issue_text *it = xcalloc(1, sizeof(*it));
        it->refs = 1;
        it->id = id;
        it->subject = subject;
        it->text = text;
        it->html = html;
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
        free(it->subject);
        free(it->text);
        free(it->html);
        free(it);
}

static const char *const footer_text[LANG_N] = {
        "\n\n-- \nNewsletter abbestellen: {{unsubscribe_url}}\n",
        "\n\n-- \nUnsubscribe: {{unsubscribe_url}}\n",
};
static const char *const footer_html[LANG_N] = {
        "<p><a href=\"{{unsubscribe_url}}\">Newsletter abbestellen</a></p>",
        "<p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>",
};

/* A body with its placeholders filled; the unsubscribe link is added at the
 * end (in HTML before </body>) when the author did not place it. */
static char *fill_body(const char *body, bool html, const struct mail_draft *m)
{
        char *eurl = html ? html_escape(m->unsubscribe_url) : NULL;
        char *ename = html ? html_escape(m->name) : NULL;
        struct tmpl_var vars[] = {
                { "unsubscribe_url", html ? eurl : m->unsubscribe_url },
                { "name", html ? ename : m->name },
                { "list", m->list },
        };
        const char *footer = NULL;
        if (!strstr(body, "{{unsubscribe_url}}"))
                footer = html ? footer_html[m->lang] : footer_text[m->lang];
        struct buf b;
        buf_init(&b, 0);
        const char *end = footer && html ? strstr(body, "</body>") : NULL;
        if (end) {
                buf_append(&b, body, (size_t)(end - body));
                buf_puts(&b, footer);
                buf_puts(&b, end);
        } else {
                buf_puts(&b, body);
                if (footer)
                        buf_puts(&b, footer);
        }
        char *out = tmpl_fill(b.data, vars, 3);
        buf_free(&b);
        if (eurl) {
                explicit_bzero(eurl, strlen(eurl));
                free(eurl);
        }
        free(ename);
        return out;     /* NULL only for a placeholder checked away when the issue was queued */
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
        char *text = fill_body(m->issue->text, false, m);
        char *html = m->issue->html ? fill_body(m->issue->html, true, m) : NULL;
        if (!text || (m->issue->html && !html)) {
                free(text);
                free(html);
                return MIME_HEADER_CONTROL;
        }
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
                .extra = extra, .n_extra = 3, .text = text, .text_len = strlen(text),
                .html = html, .html_len = html ? strlen(html) : 0,
        };
        enum mime_result r = n < 0 || (size_t)n >= sizeof(unsub) ? MIME_TOO_LONG : mime_build(&msg, out);
        explicit_bzero(unsub, sizeof(unsub));
        explicit_bzero(text, strlen(text));
        free(text);
        if (html) {
                explicit_bzero(html, strlen(html));
                free(html);
        }
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
