/* Mail texts: built-in or loaded from the `templates` directory, with
 * {{placeholder}} filling (a leaf but for reading the directory). */
#pragma once
#include <stddef.h>
#include "lang.h"

struct mail_text {
        char *subject;          /* one line, UTF-8 */
        char *body;             /* UTF-8, LF line ends */
        char version[17];       /* first 16 hex of SHA-256 of the file: the consent record's text version */
};

struct templates {
        struct mail_text confirm[LANG_N];
        struct mail_text welcome[LANG_N];       /* [subscription] welcome */
};

struct tmpl_var {
        const char *name;
        const char *value;
};

/* Load confirm.LANG.txt and welcome.LANG.txt for every language from
 * `dir`, or the built-in texts when dir is NULL or "" (a welcome text the
 * directory lacks is the built-in one: directories made before it existed
 * keep working).  0, or a positive error with a message. */
int templates_load(struct templates *t, const char *dir, char *err, size_t errlen);
void templates_free(struct templates *t);

/* Parse one template file's text ("Subject: ..." line, blank line, body);
 * checks every {{placeholder}} against `allowed`. */
int tmpl_parse(struct mail_text *mt, const char *text, size_t len, const char *const *allowed,
               char *err, size_t errlen);

/* Replace {{name}} by the values; NULL if a placeholder is not in vars. */
char *tmpl_fill(const char *text, const struct tmpl_var *vars, size_t n);

/* Check every {{placeholder}} in `text` against `allowed` (NULL-terminated);
 * 0, or 1 with a message. */
int tmpl_check(const char *text, const char *const *allowed, char *err, size_t errlen);

/* How long a confirmation link is valid, in words of `lang` for
 * {{confirm_period}}: whole days ("30 Tage", "1 day"), else whole hours,
 * else minutes (rounded up). */
void tmpl_period(unsigned long long seconds, enum lang lang, char out[48]);

/* &, <, >, " and ' as HTML character references (malloc'd). */
char *html_escape(const char *s);

/* The placeholders of newsletter bodies. */
#define NEWSLETTER_PLACEHOLDERS { "unsubscribe_url", "name", "list", NULL }
