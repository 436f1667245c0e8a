/* Markdown issues (markdown.c) and archive copies (archive.c): what cmark
 * makes of headings, lists and links, that raw HTML and script links never
 * pass, that placeholders survive in text and link targets, the layout,
 * bad input; the sign-up page and the copies filled for no one. */
#include "archive.h"
#include "markdown.h"
#include "tmpl.h"
#include "unit.h"

static char *render(const char *src)
{
        char *html = NULL;
        CHECK_INT(markdown_render(src, strlen(src), &html), MARKDOWN_OK);
        return html;
}

static void test_blocks_and_links(void)
{
        char *h = render("# Titel\n\nEin *kurzer* Text.\n\n- eins\n- zwei\n\n1. a\n2. b\n\n"
                         "[Seite](https://example.org/?a=1&b=2)\n\n> Zitat\n\n    code\n");
        REQUIRE(h);
        CHECK_CONTAINS(h, "<h1 style=\"");
        CHECK_CONTAINS(h, ">Titel</h1>");
        CHECK_CONTAINS(h, "<em>kurzer</em>");
        CHECK_CONTAINS(h, "<ul style=\"");
        CHECK_CONTAINS(h, "<ol style=\"");
        CHECK_CONTAINS(h, ">eins</li>");
        CHECK_CONTAINS(h, "<a style=\"color:#1a5fb4;text-decoration:underline\" href=\"https://example.org/?a=1&amp;b=2\">Seite</a>");
        CHECK_CONTAINS(h, "<blockquote style=\"");
        CHECK_CONTAINS(h, "<pre style=\"");
        /* the layout: a box of limited width, no style sheet, nothing loaded */
        CHECK_CONTAINS(h, "max-width:600px");
        CHECK(!strstr(h, "<style"));
        CHECK(!strstr(h, "<link"));
        CHECK(!strstr(h, "src="));
        free(h);
}

static void test_no_raw_html_no_script_links(void)
{
        char *h = render("<script>alert(1)</script>\n\nText <b onclick=\"x()\">fett</b>\n\n"
                         "<iframe src=\"https://evil.example/\"></iframe>\n\n"
                         "[a](javascript:alert(2)) [b](JAVASCRIPT:alert(3)) [c](vbscript:x) "
                         "[d](data:text/html;base64,PHNjcmlwdD4=) <javascript:alert(4)>\n");
        REQUIRE(h);
        CHECK(!strstr(h, "<script"));
        CHECK(!strstr(h, "onclick"));
        CHECK(!strstr(h, "<iframe"));
        CHECK(!strstr(h, "<b "));
        CHECK(!strstr(h, "alert(1)"));
        CHECK(!strcasestr(h, "href=\"javascript"));
        CHECK(!strstr(h, "vbscript"));
        CHECK(!strstr(h, "data:"));
        /* the links stay, with nothing behind them */
        CHECK_CONTAINS(h, "href=\"\">a</a>");
        CHECK_CONTAINS(h, "href=\"\">b</a>");
        CHECK_CONTAINS(h, "raw HTML omitted");
        free(h);
}

static void test_placeholders_survive(void)
{
        static const char *const allowed[] = NEWSLETTER_PLACEHOLDERS;
        char *h = render("Hallo {{name}}!\n\n[Abbestellen]({{unsubscribe_url}}) "
                         "<{{unsubscribe_url}}> `{{list}}`\n\n{{name}}{{name}}9\n");
        REQUIRE(h);
        CHECK_CONTAINS(h, "Hallo {{name}}!");
        CHECK_CONTAINS(h, "href=\"{{unsubscribe_url}}\">Abbestellen</a>");
        CHECK_CONTAINS(h, "<code style=\"font-family:Menlo,Consolas,monospace;font-size:90%\">{{list}}</code>");
        CHECK_CONTAINS(h, "{{name}}{{name}}9");
        CHECK(!strstr(h, "x7nlph"));
        char err[200];
        CHECK_INT(tmpl_check(h, allowed, err, sizeof(err)), 0);
        free(h);
}

static void test_odd_placeholders_are_text(void)
{
        /* a "placeholder" that is no name is escaped like any text (and
         * refused later by the check of the placeholders) */
        char *h = render("{{<script>}} {{a b}} {{}} {{name}\n");
        REQUIRE(h);
        CHECK(!strstr(h, "<script"));
        CHECK_CONTAINS(h, "{{<!-- raw HTML omitted -->}}");
        CHECK_CONTAINS(h, "{{a b}} {{}} {{name}");
        free(h);
}

static void test_bad_input(void)
{
        char *h = (char *)1;
        CHECK_INT(markdown_render("Stra\xdf" "e\n", 6, &h), MARKDOWN_BAD_UTF8);
        CHECK(h == NULL);
        CHECK_INT(markdown_render("x7nlph0x7nlph\n", 14, &h), MARKDOWN_RESERVED);
        CHECK(h == NULL);
        h = render("");
        CHECK_CONTAINS(h, "max-width");
        free(h);
}

static void test_signup_url(void)
{
        char *u = archive_signup_url("", "https://example.org/newsletter/confirm?token={token}");
        CHECK_STR(u, "https://example.org/newsletter/");
        free(u);
        u = archive_signup_url(NULL, "http://127.0.0.1:8080/confirm?token={token}");
        CHECK_STR(u, "http://127.0.0.1:8080/");
        free(u);
        u = archive_signup_url("", "https://example.org/c?next=/a/b/{token}");
        CHECK_STR(u, "https://example.org/");
        free(u);
        u = archive_signup_url("https://example.org/anmelden", "https://example.org/c?t={token}");
        CHECK_STR(u, "https://example.org/anmelden");
        free(u);
}

static void test_archive_fill(void)
{
        char *t = archive_fill("Hallo {{name}}, {{list}}: {{unsubscribe_url}}\n", false, "default",
                               "https://example.org/?a=1&b=2");
        CHECK_STR(t, "Hallo , default: https://example.org/?a=1&b=2\n");
        free(t);
        t = archive_fill("<a href=\"{{unsubscribe_url}}\">{{name}}</a>", true, "default",
                         "https://example.org/?a=1&b=2");
        CHECK_STR(t, "<a href=\"https://example.org/?a=1&amp;b=2\"></a>");
        free(t);
        CHECK(archive_fill("{{token}}", false, "default", "https://example.org/") == NULL);
}

int main(void)
{
        RUN(test_blocks_and_links);
        RUN(test_no_raw_html_no_script_links);
        RUN(test_placeholders_survive);
        RUN(test_odd_placeholders_are_text);
        RUN(test_bad_input);
        RUN(test_signup_url);
        RUN(test_archive_fill);
        return unit_finish();
}
