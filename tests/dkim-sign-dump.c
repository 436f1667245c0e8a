/*
 * dkim-sign-dump.c - test helper for tests/dkim_verify.py: generates an RSA
 * 2048 and an Ed25519 key with dkim_keygen() in DIR, loads them back with
 * dkim_key_load(), signs a set of messages with both (dual signatures) and
 * writes DIR/NAME.eml (signatures in front of the message) and the DNS
 * records DIR/SELECTOR.txt, so that an independent verifier can check them.
 * Usage: dkim-sign-dump DIR.  Exit status 0 or 1 (with a message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "dkim.h"
#include "mime.h"

#define DOMAIN          "example.org"
#define SEL_RSA         "rsa2048"
#define SEL_ED          "ed25519.news"  /* a selector with a dot in it */

static const char *dir;

static void die(const char *what, const char *detail)
{
        fprintf(stderr, "dkim-sign-dump: %s: %s\n", what, detail);
        exit(1);
}

static void write_file(const char *name, const char *data, size_t n)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0)
                die("cannot write", path);
}

static struct dkim_key *make_key(bool ed25519, const char *selector)
{
        char path[4096], txt[DKIM_TXT_MAX], err[256], name[300];
        struct dkim_key *k;

        snprintf(path, sizeof(path), "%s/%s.pem", dir, selector);
        if (dkim_keygen(path, ed25519, txt, sizeof(txt), err, sizeof(err)) != 0)
                die("dkim_keygen", err);
        snprintf(name, sizeof(name), "%s.txt", selector);
        write_file(name, txt, strlen(txt));
        if (dkim_key_load(path, DOMAIN, selector, &k, err, sizeof(err)) != 0)
                die("dkim_key_load", err);
        return k;
}

/* Sign `msg` with both keys and write NAME.eml. */
static void sign_and_write(struct dkim_key *const *keys, const char *name, const char *msg,
                           size_t len)
{
        struct buf out;
        char file[300];
        buf_init(&out, 0);
        int r = dkim_sign(keys, 2, time(NULL), msg, len, &out);
        if (r != 0) {
                char code[32];
                snprintf(code, sizeof(code), "returned %d", r);
                die(name, code);
        }
        buf_append(&out, msg, len);
        snprintf(file, sizeof(file), "%s.eml", name);
        write_file(file, out.data, out.len);
        buf_free(&out);
}

static void build_and_sign(struct dkim_key *const *keys, const char *name,
                           const struct mime_msg *m)
{
        struct buf msg;
        buf_init(&msg, 0);
        if (mime_build(m, &msg) != MIME_OK)
                die(name, "mime_build failed");
        sign_and_write(keys, name, msg.data, msg.len);
        buf_free(&msg);
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: dkim-sign-dump DIR\n");
                return 1;
        }
        dir = argv[1];
        struct dkim_key *keys[2] = { make_key(false, SEL_RSA), make_key(true, SEL_ED) };

        struct mime_msg base = {
                .from_name = "Newsletter",
                .from_addr = "news@" DOMAIN,
                .to_addr = "reader@example.net",
                .subject = "Plain ASCII subject",
                .msgid_domain = DOMAIN,
                .date = 1700000000,
                .text = "Hello,\n\nthis is a plain text newsletter.\n\nBye\n",
        };
        base.text_len = strlen(base.text);

        struct mime_msg m = base;
        build_and_sign(keys, "ascii", &m);

        m = base;
        m.from_name = "Verein für Ärger e.V.";
        m.subject = "Grüße aus Köln – Ausgabe №7 ✉ with a long tail so that the encoded "
                    "words fold over several lines";
        m.text = "Schöne Grüße,\n  eingerückt\tmit Tab   und Leerzeichen   \n\n\n";
        m.text_len = strlen(m.text);
        build_and_sign(keys, "nonascii", &m);

        /* a long multipart/alternative mail with an HTML part */
        struct buf html, text;
        buf_init(&html, 0);
        buf_init(&text, 0);
        buf_puts(&html, "<!DOCTYPE html>\n<html><body>\n");
        for (int i = 0; i < 2000; i++) {
                buf_printf(&html, "<p style=\"margin:0 0 1em 0;  font-family: sans-serif\">"
                                  "Paragraph %d – äöü &amp; <a href=\"https://example.org/a/%d"
                                  "?x=1&amp;y=2\">link</a>   </p>\n", i, i);
                buf_printf(&text, "Paragraph %d - text version  \n", i);
        }
        buf_puts(&html, "</body></html>\n");
        m = base;
        m.subject = "A long HTML issue";
        m.text = text.data;
        m.text_len = text.len;
        m.html = html.data;
        m.html_len = html.len;
        build_and_sign(keys, "html", &m);
        buf_free(&html);
        buf_free(&text);

        static const struct mime_header list_headers[] = {
                { "List-Id", "Example news <news.example.org>" },
                { "List-Unsubscribe", "<https://example.org/unsubscribe?t=Zm9vYmFyYmF6cXV4"
                                      "Zm9vYmFyYmF6cXV4Zm9vYmFy>, <mailto:unsub@example.org>" },
                { "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
                { "Auto-Submitted", "auto-generated" },
                { "Reply-To", "editor@example.org" },
        };
        m = base;
        m.subject = "With list headers";
        m.extra = list_headers;
        m.n_extra = sizeof(list_headers) / sizeof(list_headers[0]);
        build_and_sign(keys, "listunsub", &m);

        /* written by hand: an empty body */
        static const char empty[] =
                "From: news@" DOMAIN "\r\n"
                "To: reader@example.net\r\n"
                "Subject: nothing inside\r\n"
                "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                "Message-ID: <empty@" DOMAIN ">\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=us-ascii\r\n"
                "\r\n";
        sign_and_write(keys, "empty", empty, sizeof(empty) - 1);

        /* written by hand: what relaxed canonicalisation has to smooth out */
        static const char messy[] =
                "Received: from somewhere by somewhere-else; not signed\r\n"
                "from:   news@" DOMAIN "  \r\n"
                "TO: reader@example.net,\r\n"
                "\t  other@example.net\r\n"
                "SUBJect:  AbC \r\n"
                "\tdef  \r\n"
                "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                "Message-ID: <messy@" DOMAIN ">\r\n"
                "Cc: a@example.net\r\n"
                "Cc: b@example.net\r\n"
                "X-Unsigned:\tvalue\r\n"
                "\r\n"
                "  leading blanks and   inner\t\tblanks   \r\n"
                "\r\n"
                "\t\r\n"
                "last text line\t \r\n"
                "\r\n"
                "   \r\n"
                "\r\n";
        sign_and_write(keys, "messy", messy, sizeof(messy) - 1);

        /* a body of empty lines only (canonically empty) */
        static const char blank[] =
                "From: news@" DOMAIN "\r\n"
                "Subject: blank lines\r\n"
                "\r\n"
                "\r\n"
                " \t \r\n"
                "\r\n";
        sign_and_write(keys, "blank", blank, sizeof(blank) - 1);

        dkim_key_free(keys[0]);
        dkim_key_free(keys[1]);
        return 0;
}
