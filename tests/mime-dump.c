/*
 * mime-dump.c - builds a set of messages with mime_build() and writes them
 * for tests/mime_check.py, which parses them with Python's email package
 * and compares what it decodes with the inputs.  Usage: mime-dump DIR;
 * writes DIR/NN-name.eml (the raw messages) and DIR/cases.json (for each
 * message the file name and the inputs it was built from).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "mime.h"

struct dump_case {
        const char *name;
        const char *from_name;
        const char *to;
        const char *subject;
        const char *text;       /* built below when NULL */
        const char *html;
};

/* A body with the awkward parts: very long lines (ASCII and multi-byte),
 * trailing blanks, '=' signs, lines starting with '.', "From ", CRLF. */
static char *awkward_body(void)
{
        struct buf b;
        buf_init(&b, 0);
        buf_puts(&b, "Guten Tag,\n\nTrailing space here \nTrailing tab here\t\n"
                     "Both at the end \t \n"
                     "Equals: a=b, ==, =3D, =?UTF-8?B?eA==?=, = at the end =\n"
                     ".\n..\n. leading dot\n.hidden\nFrom the start of a line\n"
                     "CRLF line\r\nanother CRLF line \r\n\n\n");
        for (int i = 0; i < 300; i++)
                buf_puts(&b, "word ");
        buf_puts(&b, "\n");
        for (int i = 0; i < 2500; i++)
                buf_putc(&b, (char)('a' + i % 26));
        buf_puts(&b, "\n");
        for (int i = 0; i < 400; i++)
                buf_puts(&b, "\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80x");   /* 2, 3, 4, 1 bytes */
        buf_puts(&b, "\n");
        for (int i = 0; i < 200; i++)
                buf_puts(&b, "= ");
        buf_puts(&b, "\nEnde.\n");
        return buf_steal(&b, NULL);
}

static char *long_subject(void)
{
        struct buf b;
        buf_init(&b, 0);
        /* 300 characters, most of them non-ASCII */
        for (int i = 0; i < 30; i++)
                buf_puts(&b, "\xc3\x84rger \xe2\x82\xac\xf0\x9f\x8e\x89\xc3\x9f");    /* 10 */
        return buf_steal(&b, NULL);
}

static char *long_ascii_subject(size_t n)
{
        struct buf b;
        buf_init(&b, 0);
        for (size_t i = 0; i < n; i++)
                buf_putc(&b, i % 9 == 8 ? ' ' : (char)('A' + i % 26));
        return buf_steal(&b, NULL);
}

static const char html_body[] =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Newsletter</title></head>\n"
        "<body style=\"font-family: sans-serif; margin: 0; padding: 0; background-color: #ffffff;\">"
        "<p>Hallo <b>Welt</b> \xe2\x80\x93 Gr\xc3\xbc\xc3\x9f" "e \xf0\x9f\x8e\x89</p>"
        "<p><a href=\"https://example.org/newsletter/unsubscribe?token=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8&amp;x=1\">"
        "Abmelden</a></p>\n.\n</body></html>\n";

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        const char *dir = argv[1];
        char *body = awkward_body();
        char *subj300 = long_subject();
        char *subj200 = long_ascii_subject(200);
        char *subj1100 = long_ascii_subject(1100);

        const struct dump_case cases[] = {
                { "german", "M\xc3\xbcller & S\xc3\xb6hne, K\xc3\xb6ln", "anna@example.org",
                  "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x93 Ihre Anmeldung zum Newsletter",
                  NULL, NULL },
                { "english", "Example Newsletter", "Bob.Smith@example.com",
                  "Please confirm your newsletter sign-up", "Hello,\n\nplease confirm.\n", NULL },
                { "emoji", "Team \xf0\x9f\x9a\x80", "emoji@xn--bcher-kva.example",
                  "\xf0\x9f\x8e\x89 Neuigkeiten \xf0\x9f\x9a\x80 im M\xc3\xa4rz \xe2\x80\x93 jetzt lesen! "
                  "\xf0\x9f\x91\x8d", NULL, html_body },
                { "long-subject", "\"Quoted\" Name, Inc.", "x@example.org", subj300, NULL, NULL },
                { "quoted-name", "Dr. \"Doc\" O'Brien \\ Co. (Berlin)", "x@example.org",
                  "Literal =?UTF-8?B?abc?= in a subject", NULL, NULL },
                { "umlaut-name", "J\xc3\xbcrgen M\xc3\xbcller", "x@example.org",
                  "Best\xc3\xa4tigung", NULL, html_body },
                { "ascii-200", "Plain Name", "x@example.org", subj200, "short\n", NULL },
                { "ascii-1100", "", "x@example.org", subj1100, NULL, NULL },
                { "no-final-newline", "", "x@example.org", "x", "no newline at the end", NULL },
                { "empty-body", "N", "x@example.org", "empty", "", NULL },
                { "encoded-word-lookalikes", "Not =?UTF-8?B?SGk=?= encoded", "x@example.org",
                  "=?UTF-8?Q?not_encoded?= either", "=?UTF-8?B?SGk=?= in the body\n", NULL },
        };
        size_t n = sizeof(cases) / sizeof(cases[0]);

        json_t *list = json_array();
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                const struct dump_case *c = &cases[i];
                const char *text = c->text ? c->text : body;
                struct mime_header extra[] = {
                        { "List-Id", "<default.example.org>" },
                        { "List-Unsubscribe", "<https://example.org/newsletter/unsubscribe?token=abc>" },
                        { "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
                };
                struct mime_msg m = {
                        .from_name = c->from_name,
                        .from_addr = "newsletter@example.org",
                        .to_addr = c->to,
                        .subject = c->subject,
                        .msgid_domain = "example.org",
                        .date = 1700000000 + (time_t)i * 86400,
                        .extra = extra,
                        .n_extra = 3,
                        .text = text,
                        .text_len = strlen(text),
                        .html = c->html,
                        .html_len = c->html ? strlen(c->html) : 0,
                };
                struct buf out;
                buf_init(&out, 0);
                enum mime_result r = mime_build(&m, &out);
                if (r != MIME_OK) {
                        fprintf(stderr, "mime-dump: case %s: mime_build() = %d\n", c->name, (int)r);
                        rc = 1;
                        buf_free(&out);
                        continue;
                }
                char file[64], path[4096 + 64];
                snprintf(file, sizeof(file), "%02zu-%s.eml", i + 1, c->name);
                snprintf(path, sizeof(path), "%s/%s", dir, file);
                FILE *f = fopen(path, "wb");
                if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
                        perror(path);
                        return 1;
                }
                buf_free(&out);
                json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s%,s:s?}", "name", c->name,
                                      "file", file, "from_name", c->from_name, "from_addr",
                                      m.from_addr, "to", c->to, "subject", c->subject, "text",
                                      text, strlen(text), "html", c->html);
                if (!o) {
                        fprintf(stderr, "mime-dump: case %s: cannot record the inputs\n", c->name);
                        return 1;
                }
                json_array_append_new(list, o);
        }
        char path[4096 + 64];
        snprintf(path, sizeof(path), "%s/cases.json", dir);
        if (json_dump_file(list, path, JSON_INDENT(1)) != 0) {
                fprintf(stderr, "mime-dump: cannot write %s\n", path);
                return 1;
        }
        json_decref(list);
        free(body);
        free(subj300);
        free(subj200);
        free(subj1100);
        return rc;
}
