/*
 * tmpl.c - the texts of the mails: one file per kind and language
 * (confirm.de.txt, confirm.en.txt, welcome.de.txt, welcome.en.txt), a "Subject:" line, a blank line, the
 * body, with {{placeholders}} filled per mail.  The files under
 * conf/templates/ are compiled in as the built-in texts; `templates` in the
 * config points at a directory of edited copies.  Every placeholder is
 * checked when the texts are loaded, so a typo is a start-up error, not a
 * broken mail.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "buf.h"
#include "clock.h"
#include "embedded.h"
#include "log.h"
#include "mime.h"
#include "tmpl.h"
#include "token.h"

static const char *const confirm_placeholders[] = { "confirm_url", "confirm_period", "confirm_days",
                                                     "list", NULL };
static const char *const welcome_placeholders[] = NEWSLETTER_PLACEHOLDERS;

void tmpl_period(unsigned long long seconds, enum lang lang, char out[48])
{
        static const char *const units[LANG_N][3][2] = {
                [LANG_DE] = { { "Tag", "Tage" }, { "Stunde", "Stunden" }, { "Minute", "Minuten" } },
                [LANG_EN] = { { "day", "days" }, { "hour", "hours" }, { "minute", "minutes" } },
        };
        unsigned long long n;
        int u;
        if (seconds >= SECONDS_PER_DAY && seconds % SECONDS_PER_DAY == 0) {
                n = seconds / SECONDS_PER_DAY;
                u = 0;
        } else if (seconds >= SECONDS_PER_HOUR && seconds % SECONDS_PER_HOUR == 0) {
                n = seconds / SECONDS_PER_HOUR;
                u = 1;
        } else {
                n = (seconds + 59) / 60;
                u = 2;
        }
        if ((unsigned)lang >= LANG_N)
                lang = LANG_DEFAULT;
        snprintf(out, 48, "%llu %s", n, units[lang][u][n != 1]);
}

static bool name_allowed(const char *name, size_t n, const char *const *allowed)
{
        for (size_t i = 0; allowed[i]; i++)
                if (strlen(allowed[i]) == n && memcmp(allowed[i], name, n) == 0)
                        return true;
        return false;
}

/* Check every {{name}} in s against allowed. */
static int check_placeholders(const char *s, const char *const *allowed, char *err, size_t errlen)
{
        const char *p = s;
        while ((p = strstr(p, "{{")) != NULL) {
                const char *e = strstr(p + 2, "}}");
                if (!e) {
                        snprintf(err, errlen, "unclosed \"{{\"");
                        return 1;
                }
                if (!name_allowed(p + 2, (size_t)(e - p - 2), allowed)) {
                        snprintf(err, errlen, "unknown placeholder {{%.*s}}",
                                 (int)((e - p - 2) > 40 ? 40 : (e - p - 2)), p + 2);
                        return 1;
                }
                p = e + 2;
        }
        return 0;
}

int tmpl_parse(struct mail_text *mt, const char *text, size_t len, const char *const *allowed,
               char *err, size_t errlen)
{
        memset(mt, 0, sizeof(*mt));
        if (len > TEMPLATE_MAX_BYTES) {
                snprintf(err, errlen, "longer than %u bytes", TEMPLATE_MAX_BYTES);
                return 1;
        }
        if (memchr(text, '\0', len) || !mime_utf8_valid(text, len)) {
                snprintf(err, errlen, "not valid UTF-8 text");
                return 1;
        }
        const char *nl = memchr(text, '\n', len);
        if (!nl || strncasecmp(text, "Subject:", 8) != 0) {
                snprintf(err, errlen, "must begin with a \"Subject:\" line");
                return 1;
        }
        const char *sb = text + 8, *se = nl;
        while (sb < se && (*sb == ' ' || *sb == '\t'))
                sb++;
        while (se > sb && (se[-1] == ' ' || se[-1] == '\t' || se[-1] == '\r'))
                se--;
        if (se == sb || mime_has_control(sb, (size_t)(se - sb))) {
                snprintf(err, errlen, "the subject is empty or holds control characters");
                return 1;
        }
        const char *body = nl + 1;
        const char *end = text + len;
        if (body < end && *body == '\r')
                body++;
        if (body >= end || *body != '\n') {
                snprintf(err, errlen, "a blank line must follow the subject");
                return 1;
        }
        body++;
        mt->subject = xstrndup(sb, (size_t)(se - sb));
        /* body with LF line ends */
        struct buf b;
        buf_init(&b, 0);
        for (const char *p = body; p < end; p++)
                if (!(*p == '\r' && p + 1 < end && p[1] == '\n'))
                        buf_putc(&b, *p);
        mt->body = buf_steal(&b, NULL);
        if (check_placeholders(mt->subject, allowed, err, errlen) ||
            check_placeholders(mt->body, allowed, err, errlen)) {
                free(mt->subject);
                free(mt->body);
                memset(mt, 0, sizeof(*mt));
                return 1;
        }
        char hex[65];
        sha256_hex(text, len, hex);
        memcpy(mt->version, hex, 16);
        mt->version[16] = '\0';
        return 0;
}

static int read_small_file(const char *path, char **out, size_t *len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct buf b;
        buf_init(&b, TEMPLATE_MAX_BYTES);
        char chunk[4096];
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = -errno;
                        close(fd);
                        buf_free(&b);
                        return e;
                }
                if (n == 0)
                        break;
                if (!buf_append(&b, chunk, (size_t)n)) {
                        close(fd);
                        buf_free(&b);
                        return -EFBIG;
                }
        }
        close(fd);
        *out = buf_steal(&b, len);
        return 0;
}

/* One text: `kind`.LANG.txt from dir, else (none given, or `optional`
 * and missing there) the built-in one.  0, or 1 with a message. */
static int template_load(struct mail_text *mt, const char *dir, const char *kind, enum lang l,
                         const char *const *allowed, bool optional, char *err, size_t errlen)
{
        char file[64], msg[200];
        snprintf(file, sizeof(file), "%s.%s.txt", kind, lang_name(l));
        char *text = NULL;
        size_t len = 0;
        int r;
        bool builtin = !dir || !*dir;
        if (!builtin) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dir, file);
                r = read_small_file(path, &text, &len);
                if (r == -ENOENT && optional) {
                        builtin = true;
                } else if (r < 0) {
                        snprintf(err, errlen, "%s: %s", path, strerror(-r));
                        return 1;
                }
        }
        if (builtin) {
                for (const struct embedded_text *e = embedded_templates; e->name; e++)
                        if (strcmp(e->name, file) == 0) {
                                text = xstrdup(e->text);
                                len = strlen(text);
                        }
                if (!text)
                        fatal("built-in template %s missing", file);
        }
        r = tmpl_parse(mt, text, len, allowed, msg, sizeof(msg));
        free(text);
        if (r) {
                snprintf(err, errlen, "%s/%s: %s", builtin ? "built-in" : dir, file, msg);
                return 1;
        }
        return 0;
}

int templates_load(struct templates *t, const char *dir, char *err, size_t errlen)
{
        memset(t, 0, sizeof(*t));
        for (int l = 0; l < LANG_N; l++) {
                if (template_load(&t->confirm[l], dir, "confirm", (enum lang)l, confirm_placeholders,
                                  false, err, errlen) ||
                    template_load(&t->welcome[l], dir, "welcome", (enum lang)l, welcome_placeholders,
                                  true, err, errlen)) {
                        templates_free(t);
                        return 1;
                }
        }
        return 0;
}

void templates_free(struct templates *t)
{
        if (!t)
                return;
        for (int l = 0; l < LANG_N; l++) {
                free(t->confirm[l].subject);
                free(t->confirm[l].body);
                free(t->welcome[l].subject);
                free(t->welcome[l].body);
        }
        memset(t, 0, sizeof(*t));
}

char *tmpl_fill(const char *text, const struct tmpl_var *vars, size_t n)
{
        struct buf b;
        buf_init(&b, 0);
        const char *p = text;
        for (;;) {
                const char *o = strstr(p, "{{");
                const char *e = o ? strstr(o + 2, "}}") : NULL;
                if (!o || !e) {
                        buf_puts(&b, p);
                        break;
                }
                buf_append(&b, p, (size_t)(o - p));
                size_t nlen = (size_t)(e - o - 2);
                size_t i;
                for (i = 0; i < n; i++)
                        if (strlen(vars[i].name) == nlen && memcmp(vars[i].name, o + 2, nlen) == 0)
                                break;
                if (i == n) {
                        buf_free(&b);
                        return NULL;
                }
                buf_puts(&b, vars[i].value);
                p = e + 2;
        }
        return buf_steal(&b, NULL);
}

char *html_escape(const char *s)
{
        struct buf b;
        buf_init(&b, 0);
        for (; *s; s++) {
                switch (*s) {
                case '&': buf_puts(&b, "&amp;"); break;
                case '<': buf_puts(&b, "&lt;"); break;
                case '>': buf_puts(&b, "&gt;"); break;
                case '"': buf_puts(&b, "&quot;"); break;
                case '\'': buf_puts(&b, "&#39;"); break;
                default: buf_putc(&b, *s); break;
                }
        }
        return buf_steal(&b, NULL);
}

int tmpl_check(const char *text, const char *const *allowed, char *err, size_t errlen)
{
        return check_placeholders(text, allowed, err, errlen);
}
