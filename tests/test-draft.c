/*
 * test-draft.c - newsletter mails rendered from an issue's prepared bodies.
 * An issue's lines without placeholders are encoded once and reused for
 * every recipient; that must give exactly the body the simple way gives:
 * the whole text (with its footer) filled by tmpl_fill() and then encoded
 * by mime_encode_qp().  That reference is built here, with the footers
 * written out in the test, for hand-picked bodies (placeholders at the
 * start, the end, across lines, unclosed, invalid) and for many random
 * ones.  tests/integration checks the sent mails with Python's email.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "draft.h"
#include "log.h"
#include "mime.h"
#include "tmpl.h"
#include "unit.h"

#define URL "https://example.org/u?token=AbC-dEf_123&x=1"

static const char *const footer_text[LANG_N] = {
        "\n\n-- \nNewsletter abbestellen: {{unsubscribe_url}}\n",
        "\n\n-- \nUnsubscribe: {{unsubscribe_url}}\n",
};
static const char *const footer_html[LANG_N] = {
        "<p><a href=\"{{unsubscribe_url}}\">Newsletter abbestellen</a></p>",
        "<p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>",
};

/* The reference: footer added where draft.c promises, the whole filled,
 * then encoded; NULL when the fill fails. */
static char *reference(const char *body, bool html, enum lang lang, const char *name,
                       size_t *len)
{
        struct buf b;
        buf_init(&b, 0);
        if (strstr(body, "{{unsubscribe_url}}")) {
                buf_puts(&b, body);
        } else if (html && strstr(body, "</body>")) {
                const char *e = strstr(body, "</body>");
                buf_append(&b, body, (size_t)(e - body));
                buf_puts(&b, footer_html[lang]);
                buf_puts(&b, e);
        } else {
                buf_puts(&b, body);
                buf_puts(&b, html ? footer_html[lang] : footer_text[lang]);
        }
        char *eurl = html_escape(URL), *ename = html_escape(name);
        struct tmpl_var vars[] = {
                { "unsubscribe_url", html ? eurl : URL },
                { "name", html ? ename : name },
                { "list", "news" },
        };
        char *filled = tmpl_fill(b.data, vars, 3);
        buf_free(&b);
        free(eurl);
        free(ename);
        if (!filled)
                return NULL;
        struct buf q;
        buf_init(&q, 0);
        mime_encode_qp(filled, strlen(filled), &q);
        free(filled);
        return buf_steal(&q, len);
}

static struct mail_draft *draft(struct issue_text *it, enum lang lang, const char *name)
{
        struct mail_draft *m = xcalloc(1, sizeof(*m));
        m->issue = issue_text_ref(it);
        m->to = xstrdup("reader@example.org");
        m->unsubscribe_url = xstrdup(URL);
        m->name = xstrdup(name);
        m->list = xstrdup("news");
        m->lang = lang;
        m->from_name = xstrdup("Newsletter");
        m->from_addr = xstrdup("news@example.org");
        m->from_domain = xstrdup("example.org");
        m->date = 1700000000;
        return m;
}

/* The quoted-printable body of part `nth` (0 text, 1 HTML) of a message. */
static bool part(const char *msg, int nth, const char **p, size_t *n)
{
        const char *mark = "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
        const char *s = msg;
        for (int i = 0; i <= nth; i++) {
                s = strstr(s, mark);
                if (!s)
                        return false;
                s += strlen(mark);
        }
        /* "=_" cannot occur in quoted-printable, so the boundary ends it
         * (after the CRLF that mime_build puts in front of it) */
        const char *e = strstr(s, "\r\n--=_nl_");
        *p = s;
        *n = e ? (size_t)(e - s) : strlen(s);
        return true;
}

/* Render one body (text, or text and HTML) and compare every part with its
 * reference; a failed reference must make the render fail too. */
static bool same_as_reference(const char *text, const char *html, enum lang lang, const char *name)
{
        struct issue_text *it = issue_text_new(7, xstrdup("Subject"), xstrdup(text),
                                               html ? xstrdup(html) : NULL);
        struct mail_draft *m = draft(it, lang, name);
        struct buf out;
        buf_init(&out, 0);
        int r = draft_render(m, &out);
        bool ok = true;
        size_t tn = 0, hn = 0;
        char *tref = reference(text, false, lang, name, &tn);
        char *href = html ? reference(html, true, lang, name, &hn) : NULL;
        if (!tref || (html && !href)) {
                ok = CHECK(r != 0);
        } else if (!CHECK_INT(r, 0)) {
                ok = false;
        } else {
                const char *p;
                size_t n;
                ok = CHECK(part(out.data, 0, &p, &n)) && CHECK_MEM(p, n, tref, tn);
                if (ok && html)
                        ok = CHECK(part(out.data, 1, &p, &n)) && CHECK_MEM(p, n, href, hn);
        }
        if (!ok) {
                fprintf(stderr, "    body: ");
                unit_print_bytes(html ? html : text, strlen(html ? html : text));
                fputc('\n', stderr);
        }
        free(tref);
        free(href);
        buf_free(&out);
        draft_free(m);
        issue_text_unref(it);
        return ok;
}

static void test_bodies(void)
{
        static const char *const bodies[] = {
                "",
                "plain text, no line end",
                "Hello {{name}},\nline two\n",
                "first\nsecond {{name}}\nthird\n",
                "a line without placeholder\nthe last with one: {{list}}",
                "CRLF lines\r\nwith {{name}} here\r\nand there\r\n",
                "link in the middle: {{unsubscribe_url}}\nafter\n",
                "two {{name}} on {{list}} one line\nand {{name}}\non {{list}} adjacent lines\n",
                "a pair across lines {{name\n}} is no placeholder\n",
                "price {{ 5\nnext {{name}} line\n",
                "an unclosed {{ at the end",
                "closing first }} then {{name}}\n",
                "three braces {{{name}}}\n",
                "{{name}}",
                "\n\n{{name}}\n\n",
                "Grüße, {{name}} – schön, dass du da bist.\nÄÖÜ äöü ß € 😀\n",
                "= signs = everywhere ==\n  leading blanks and trailing blanks   \n\ttabs\t\n",
                "a long line xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx {{name}} yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n",
                "a lone CR\r in a line, and {{name}}\r\n",
                "unknown {{placeholder}} fails\n",
        };
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
                for (int l = 0; l < LANG_N; l++)
                        same_as_reference(bodies[i], NULL, (enum lang)l, "Anna Müller");
}

static void test_html(void)
{
        same_as_reference("text {{name}}\n", "<html><body><p>Hi {{name}}</p>\n</body></html>\n",
                          LANG_EN, "<b>Anna & \"Bob\"</b>");
        same_as_reference("text\n", "<p>no body element</p>", LANG_DE, "O'Neil");
        same_as_reference("text\n", "<p><a href=\"{{unsubscribe_url}}\">leave</a></p>\n</body>\n",
                          LANG_DE, "x");
        same_as_reference("text\n", "<body>{{name}}</body>{{list}}</body>\n", LANG_EN, "y");
}

/* Invalid UTF-8 in a line without placeholders is refused like before. */
static void test_bad_utf8(void)
{
        struct issue_text *it = issue_text_new(1, xstrdup("S"), xstrdup("fine {{name}}\nbad \xc3\x28\n"),
                                               NULL);
        struct mail_draft *m = draft(it, LANG_DE, "n");
        struct buf out;
        buf_init(&out, 0);
        CHECK_INT(draft_render(m, &out), MIME_BAD_UTF8);
        buf_free(&out);
        draft_free(m);
        issue_text_unref(it);
        /* and in a filled value */
        it = issue_text_new(2, xstrdup("S"), xstrdup("hello {{name}}\n"), NULL);
        m = draft(it, LANG_DE, "bad \xff name");
        buf_init(&out, 0);
        CHECK_INT(draft_render(m, &out), MIME_BAD_UTF8);
        buf_free(&out);
        draft_free(m);
        issue_text_unref(it);
}

/* Random bodies from pieces that meet placeholders' edges. */
static void test_random(void)
{
        static const char *const pieces[] = {
                "a", "word ", " ", "\t", "\n", "\r\n", "\r", "{", "}", "{{", "}}", "{{name}}",
                "{{list}}", "{{unsubscribe_url}}", "{{nam", "e}}", "=", "é", "€", "😀", "-- ",
                "</body>", "<body>", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        };
        const size_t np = sizeof(pieces) / sizeof(pieces[0]);
        uint32_t seed = 12345;
        unsigned failures = 0;
        for (int round = 0; round < 3000 && failures < 3; round++) {
                struct buf b;
                buf_init(&b, 0);
                seed = seed * 1103515245u + 12345u;
                unsigned len = (seed >> 16) % 60;
                for (unsigned k = 0; k < len; k++) {
                        seed = seed * 1103515245u + 12345u;
                        buf_puts(&b, pieces[(seed >> 16) % np]);
                }
                bool html = round % 3 == 0;
                if (!same_as_reference(html ? "t\n" : b.data ? b.data : "",
                                       html ? (b.data ? b.data : "") : NULL,
                                       (enum lang)(round % LANG_N), "Ann <&> Lee"))
                        failures++;
                buf_free(&b);
        }
        CHECK_UINT(failures, 0);
}

/* One prepared issue serves many recipients, each with its own link. */
static void test_many_recipients(void)
{
        struct issue_text *it = issue_text_new(3, xstrdup("S"), xstrdup("Hi {{name}}\nbody\n"), NULL);
        for (int i = 0; i < 3; i++) {
                char name[32];
                snprintf(name, sizeof(name), "reader %d", i);
                struct mail_draft *m = draft(it, LANG_EN, name);
                struct buf out;
                buf_init(&out, 0);
                CHECK_INT(draft_render(m, &out), 0);
                char want[64];
                snprintf(want, sizeof(want), "Hi reader %d\r\nbody\r\n", i);
                CHECK_CONTAINS(out.data, want);
                CHECK_CONTAINS(out.data, "Unsubscribe: https://example.org/u?token=3DAbC-dEf_123&x=3D1");
                buf_free(&out);
                draft_free(m);
        }
        issue_text_unref(it);
}

int main(void)
{
        RUN(test_bodies);
        RUN(test_html);
        RUN(test_bad_utf8);
        RUN(test_random);
        RUN(test_many_recipients);
        return unit_finish();
}
