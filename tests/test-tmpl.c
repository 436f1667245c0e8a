/*
 * test-tmpl.c - the mail texts: parsing a template file (Subject line,
 * blank line, body), the placeholder checks, the text version, filling,
 * and loading the built-in texts or a directory of edited copies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "tmpl.h"
#include "token.h"
#include "unit.h"

static const char *const confirm_vars[] = { "confirm_url", "confirm_period", "confirm_days", "list",
                                            NULL };

/* The good file used below, and the first 16 hex digits of its SHA-256
 * (computed with Python's hashlib). */
static const char good[] = "Subject: Hallo {{list}}\n\nBitte hier: {{confirm_url}}\n"
                           "G\xc3\xbcltig {{confirm_days}} Tage.\n";
#define GOOD_VERSION "32aeaaa82d1a70e3"

static bool is_version(const char *v)
{
        if (strlen(v) != 16)
                return false;
        for (const char *p = v; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static void test_parse_good(void)
{
        struct mail_text mt;
        char err[200] = "";
        REQUIRE(tmpl_parse(&mt, good, sizeof(good) - 1, confirm_vars, err, sizeof(err)) == 0);
        CHECK_STR(mt.subject, "Hallo {{list}}");
        CHECK_STR(mt.body, "Bitte hier: {{confirm_url}}\nG\xc3\xbcltig {{confirm_days}} Tage.\n");
        CHECK_STR(mt.version, GOOD_VERSION);
        free(mt.subject);
        free(mt.body);

        /* CRLF line ends: the same texts with LF, blanks around the subject trimmed */
        static const char crlf[] = "subject:   Hallo  \t\r\n\r\nZeile 1\r\nZeile 2\r\n\r\nEnde";
        REQUIRE(tmpl_parse(&mt, crlf, sizeof(crlf) - 1, confirm_vars, err, sizeof(err)) == 0);
        CHECK_STR(mt.subject, "Hallo");
        CHECK_STR(mt.body, "Zeile 1\nZeile 2\n\nEnde");
        CHECK(is_version(mt.version));
        CHECK(strcmp(mt.version, GOOD_VERSION) != 0);
        free(mt.subject);
        free(mt.body);

        /* an empty body is allowed */
        REQUIRE(tmpl_parse(&mt, LIT("Subject: Only\n\n"), confirm_vars, err, sizeof(err)) == 0);
        CHECK_STR(mt.body, "");
        free(mt.subject);
        free(mt.body);
}

static void test_version(void)
{
        struct mail_text a, b, c;
        char err[200];
        char text[sizeof(good)];
        memcpy(text, good, sizeof(good));
        REQUIRE(tmpl_parse(&a, good, sizeof(good) - 1, confirm_vars, err, sizeof(err)) == 0);
        REQUIRE(tmpl_parse(&b, text, sizeof(text) - 1, confirm_vars, err, sizeof(err)) == 0);
        CHECK_STR(a.version, b.version);                /* same text, same version */
        text[sizeof(text) - 3] = '!';                   /* "Tage!" */
        REQUIRE(tmpl_parse(&c, text, sizeof(text) - 1, confirm_vars, err, sizeof(err)) == 0);
        CHECK(strcmp(a.version, c.version) != 0);       /* any change, a new version */
        CHECK(is_version(c.version));
        /* it is the SHA-256 of the file as given */
        char hex[65];
        sha256_hex(text, sizeof(text) - 1, hex);
        CHECK(strncmp(c.version, hex, 16) == 0);
        free(a.subject);
        free(a.body);
        free(b.subject);
        free(b.body);
        free(c.subject);
        free(c.body);
}

/* tmpl_parse refuses the text; the message contains `what`. */
static void check_refused(const char *text, size_t len, const char *what, int line)
{
        struct mail_text mt;
        char err[200] = "";
        memset(&mt, 0x5a, sizeof(mt));
        int r = tmpl_parse(&mt, text, len, confirm_vars, err, sizeof(err));
        if (!unit_check(r != 0, __FILE__, line, "tmpl_parse() refuses")) {
                free(mt.subject);
                free(mt.body);
                return;
        }
        unit_check(mt.subject == NULL && mt.body == NULL, __FILE__, line, "nothing left allocated");
        unit_check_contains(err, what, __FILE__, line, "err");
}
#define CHECK_REFUSED(text, what) check_refused((text), strlen(text), (what), __LINE__)

static void test_parse_errors(void)
{
        CHECK_REFUSED("", "Subject:");
        CHECK_REFUSED("Hello\n\nBody\n", "Subject:");
        CHECK_REFUSED("\nSubject: x\n\nBody\n", "Subject:");
        CHECK_REFUSED("Subject: no line end", "Subject:");
        CHECK_REFUSED("Subj: x\n\nBody\n", "Subject:");
        CHECK_REFUSED("Subject: x\nBody right away\n", "blank line");
        CHECK_REFUSED("Subject: x\r\nBody right away\r\n", "blank line");
        CHECK_REFUSED("Subject: x\n", "blank line");
        CHECK_REFUSED("Subject: x\n \nBody\n", "blank line");
        CHECK_REFUSED("Subject:\n\nBody\n", "subject is empty");
        CHECK_REFUSED("Subject:  \t \n\nBody\n", "subject is empty");
        CHECK_REFUSED("Subject: a\x01z\n\nBody\n", "control");
        CHECK_REFUSED("Subject: a\rz\n\nBody\n", "control");
        CHECK_REFUSED("Subject: x\n\nHallo {{name}}\n", "unknown placeholder {{name}}");
        CHECK_REFUSED("Subject: {{confirm_URL}}\n\nBody\n", "unknown placeholder");
        CHECK_REFUSED("Subject: x\n\n{{ confirm_url }}\n", "unknown placeholder");
        CHECK_REFUSED("Subject: x\n\n{{}}\n", "unknown placeholder");
        CHECK_REFUSED("Subject: x\n\nLink: {{confirm_url\n", "unclosed");
        CHECK_REFUSED("Subject: x {{list\n\nBody\n", "unclosed");
        CHECK_REFUSED("Subject: x\n\n{{confirm_url}} and {{", "unclosed");
        CHECK_REFUSED("Subject: x\n\nGr\xfc\xdf" "e\n", "UTF-8");          /* Latin-1 */
        CHECK_REFUSED("Subject: Gr\xc3\n\nBody\n", "UTF-8");
        CHECK_REFUSED("Subject: x\n\n\xed\xa0\x80\n", "UTF-8");
        check_refused(LIT("Subject: x\n\nBody\0more\n"), "UTF-8", __LINE__);    /* NUL */
        check_refused(LIT("Subject: x\0y\n\nBody\n"), "UTF-8", __LINE__);

        /* size: up to TEMPLATE_MAX_BYTES */
        size_t n = TEMPLATE_MAX_BYTES;
        char *big = malloc(n + 2);
        REQUIRE(big != NULL);
        memset(big, 'b', n + 1);
        memcpy(big, "Subject: big\n\n", 14);
        struct mail_text mt;
        char err[200] = "";
        CHECK_INT(tmpl_parse(&mt, big, n, confirm_vars, err, sizeof(err)), 0);
        CHECK_UINT(strlen(mt.body), n - 14);
        free(mt.subject);
        free(mt.body);
        check_refused(big, n + 1, "longer than", __LINE__);
        free(big);
}

/* tmpl_check: the same placeholder rules on a free text */
static void test_check(void)
{
        static const char *const nl_vars[] = NEWSLETTER_PLACEHOLDERS;
        char err[200] = "";
        CHECK_INT(tmpl_check("Hi {{name}}, bye: {{unsubscribe_url}}", nl_vars, err, sizeof(err)), 0);
        CHECK_INT(tmpl_check("no placeholders at all { } }} {", nl_vars, err, sizeof(err)), 0);
        CHECK(tmpl_check("{{confirm_url}}", nl_vars, err, sizeof(err)) != 0);
        CHECK_CONTAINS(err, "{{confirm_url}}");
        CHECK(tmpl_check("{{name", nl_vars, err, sizeof(err)) != 0);
        CHECK_CONTAINS(err, "unclosed");
        /* a long unknown name is cut in the message, not overflowing it */
        char text[600];
        memset(text, 'z', sizeof(text));
        memcpy(text, "{{", 2);
        memcpy(text + sizeof(text) - 3, "}}", 3);
        char small[64];
        CHECK(tmpl_check(text, nl_vars, small, sizeof(small)) != 0);
        CHECK(strlen(small) < sizeof(small));
}

static void test_fill(void)
{
        const struct tmpl_var vars[] = {
                { "confirm_url", "https://example.org/c?token=abc&x=1" },
                { "confirm_days", "30" },
                { "list", "{{confirm_url}}" },          /* values are not filled again */
        };
        char *s = tmpl_fill("Link: {{confirm_url}}\nAgain: {{confirm_url}}, {{confirm_days}} Tage",
                            vars, 3);
        CHECK_STR(s, "Link: https://example.org/c?token=abc&x=1\n"
                     "Again: https://example.org/c?token=abc&x=1, 30 Tage");
        free(s);
        s = tmpl_fill("{{confirm_days}}{{confirm_days}}", vars, 3);
        CHECK_STR(s, "3030");
        free(s);
        s = tmpl_fill("List {{list}}", vars, 3);
        CHECK_STR(s, "List {{confirm_url}}");
        free(s);
        s = tmpl_fill("", vars, 3);
        CHECK_STR(s, "");
        free(s);
        s = tmpl_fill("{single} braces } and {{ unclosed", vars, 3);
        CHECK_STR(s, "{single} braces } and {{ unclosed");
        free(s);
        /* an unknown placeholder, anywhere: NULL */
        CHECK(tmpl_fill("{{name}}", vars, 3) == NULL);
        CHECK(tmpl_fill("ok {{confirm_days}} then {{nope}}", vars, 3) == NULL);
        CHECK(tmpl_fill("{{confirm_days}}", vars, 0) == NULL);
        CHECK(tmpl_fill("{{CONFIRM_DAYS}}", vars, 3) == NULL);
}

static void test_html_escape(void)
{
        char *s = html_escape("<a href=\"x?a=1&b='2'\">F\xc3\xbc>r</a>");
        CHECK_STR(s, "&lt;a href=&quot;x?a=1&amp;b=&#39;2&#39;&quot;&gt;F\xc3\xbc&gt;r&lt;/a&gt;");
        free(s);
        s = html_escape("");
        CHECK_STR(s, "");
        free(s);
}

static void test_builtin(void)
{
        struct templates t;
        char err[300] = "";
        if (!CHECK_INT(templates_load(&t, NULL, err, sizeof(err)), 0)) {
                fprintf(stderr, "    %s\n", err);
                return;
        }
        for (int l = 0; l < LANG_N; l++) {
                CHECK(t.confirm[l].subject && *t.confirm[l].subject);
                CHECK_CONTAINS(t.confirm[l].body, "{{confirm_url}}");
                CHECK(is_version(t.confirm[l].version));
                CHECK(strchr(t.confirm[l].subject, '\n') == NULL);
                CHECK(strchr(t.confirm[l].body, '\r') == NULL);
        }
        CHECK(strcmp(t.confirm[LANG_DE].subject, t.confirm[LANG_EN].subject) != 0);
        CHECK(strcmp(t.confirm[LANG_DE].version, t.confirm[LANG_EN].version) != 0);
        CHECK_CONTAINS(t.confirm[LANG_DE].subject, "best\xc3\xa4tigen");
        CHECK_CONTAINS(t.confirm[LANG_EN].subject, "confirm");

        /* the built-in texts are conf/templates/ (same version as the files) */
        const char *root = getenv("SOURCE_ROOT");
        if (root) {
                for (int l = 0; l < LANG_N; l++) {
                        char path[4096];
                        snprintf(path, sizeof(path), "%s/conf/templates/confirm.%s.txt", root,
                                 lang_name((enum lang)l));
                        FILE *f = fopen(path, "rb");
                        if (!CHECK(f != NULL))
                                continue;
                        static char data[TEMPLATE_MAX_BYTES + 1];
                        size_t n = fread(data, 1, sizeof(data), f);
                        fclose(f);
                        char hex[65];
                        sha256_hex(data, n, hex);
                        CHECK(strncmp(t.confirm[l].version, hex, 16) == 0);
                }
        }
        templates_free(&t);
        templates_free(&t);     /* twice: harmless */
        templates_free(NULL);

        /* "" means built-in too */
        CHECK_INT(templates_load(&t, "", err, sizeof(err)), 0);
        CHECK(t.confirm[LANG_EN].subject != NULL);
        templates_free(&t);
}

static bool write_file(const char *dir, const char *name, const char *text, size_t len)
{
        char path[4096 + 64];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f)
                return false;
        bool ok = fwrite(text, 1, len, f) == len;
        return fclose(f) == 0 && ok;
}

static void remove_file(const char *dir, const char *name)
{
        char path[4096 + 64];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        unlink(path);
}

static void test_directory(void)
{
        char dir[4096];
        const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(dir, sizeof(dir), "%s/test-tmpl-XXXXXX", tmp);
        REQUIRE(mkdtemp(dir) != NULL);

        struct templates t;
        char err[300] = "";
        static const char de[] = "Subject: Eigener Betreff {{list}}\n\nEigener Text {{confirm_url}}\n";
        static const char en[] = "Subject: Own subject\r\n\r\nOwn text {{confirm_url}}\r\n";
        REQUIRE(write_file(dir, "confirm.de.txt", LIT(de)));

        /* one file missing: the error names it */
        CHECK(templates_load(&t, dir, err, sizeof(err)) != 0);
        CHECK_CONTAINS(err, "confirm.en.txt");
        CHECK_CONTAINS(err, strerror(ENOENT));
        CHECK(t.confirm[LANG_DE].subject == NULL);      /* nothing half-loaded */

        REQUIRE(write_file(dir, "confirm.en.txt", LIT(en)));
        if (CHECK_INT(templates_load(&t, dir, err, sizeof(err)), 0)) {
                CHECK_STR(t.confirm[LANG_DE].subject, "Eigener Betreff {{list}}");
                CHECK_STR(t.confirm[LANG_DE].body, "Eigener Text {{confirm_url}}\n");
                CHECK_STR(t.confirm[LANG_EN].subject, "Own subject");
                CHECK_STR(t.confirm[LANG_EN].body, "Own text {{confirm_url}}\n");
                char hex[65];
                sha256_hex(de, sizeof(de) - 1, hex);
                CHECK(strncmp(t.confirm[LANG_DE].version, hex, 16) == 0);
                templates_free(&t);
        } else {
                fprintf(stderr, "    %s\n", err);
        }

        /* a bad file: the error names the file and the problem */
        REQUIRE(write_file(dir, "confirm.en.txt", LIT("Subject: x\n\n{{unsubscribe_url}}\n")));
        CHECK(templates_load(&t, dir, err, sizeof(err)) != 0);
        CHECK_CONTAINS(err, "confirm.en.txt");
        CHECK_CONTAINS(err, "unknown placeholder {{unsubscribe_url}}");
        CHECK(t.confirm[LANG_DE].subject == NULL);

        /* a file over the size limit */
        size_t n = TEMPLATE_MAX_BYTES + 100;
        char *big = malloc(n);
        REQUIRE(big != NULL);
        memset(big, 'x', n);
        memcpy(big, "Subject: x\n\n", 12);
        bool wrote = write_file(dir, "confirm.en.txt", big, n);
        free(big);
        REQUIRE(wrote);
        CHECK(templates_load(&t, dir, err, sizeof(err)) != 0);
        CHECK_CONTAINS(err, "confirm.en.txt");

        remove_file(dir, "confirm.de.txt");
        remove_file(dir, "confirm.en.txt");
        rmdir(dir);

        /* a directory that does not exist: the error names the file */
        CHECK(templates_load(&t, "/nonexistent-dir/templates", err, sizeof(err)) != 0);
        CHECK_CONTAINS(err, "/nonexistent-dir/templates/confirm.de.txt");
        CHECK_CONTAINS(err, strerror(ENOENT));
        templates_free(&t);
}

static void test_period(void)
{
        static const struct { unsigned long long s; enum lang l; const char *want; } cases[] = {
                { 30 * 86400ull, LANG_DE, "30 Tage" },  { 30 * 86400ull, LANG_EN, "30 days" },
                { 86400, LANG_DE, "1 Tag" },            { 86400, LANG_EN, "1 day" },
                { 2 * 86400, LANG_EN, "2 days" },
                { 36 * 3600, LANG_DE, "36 Stunden" },   { 3600, LANG_EN, "1 hour" },
                { 3600, LANG_DE, "1 Stunde" },          { 90 * 60, LANG_EN, "90 minutes" },
                { 61, LANG_EN, "2 minutes" },           { 60, LANG_DE, "1 Minute" },
                { 1, LANG_EN, "1 minute" },             { 86401, LANG_DE, "1441 Minuten" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char out[48];
                tmpl_period(cases[i].s, cases[i].l, out);
                CHECK_STR(out, cases[i].want);
        }
}

int main(void)
{
        RUN(test_parse_good);
        RUN(test_version);
        RUN(test_parse_errors);
        RUN(test_check);
        RUN(test_fill);
        RUN(test_period);
        RUN(test_html_escape);
        RUN(test_builtin);
        RUN(test_directory);
        return unit_finish();
}
