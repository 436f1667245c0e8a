/*
 * conf.c - the configuration file.  inih does the INI syntax; this module
 * knows the keys: their types, their defaults (the contract's), and what
 * makes a value wrong.  Unknown sections and keys, repeated keys and bad
 * values are errors reported as file:line, never ignored.  Parsing reads
 * only the file it is given; conf_load_secrets() reads password_file.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "addr.h"
#include "altcha.h"
#include "bounds.h"
#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "log.h"
#include "mime.h"
#include "secret.h"

enum key_type { K_STR, K_PATH, K_DURATION, K_UINT, K_LIST, K_STARTTLS, K_FROM, K_URLTMPL,
                K_SMTPURLS, K_LOGLEVEL, K_GROUP, K_RETURNPATH, K_DOMAIN, K_ONOFF, K_URL, K_IMAPURL };

struct key {
        const char *section;
        const char *name;
        enum key_type type;
        size_t offset;
        uint64_t min;           /* durations and numbers */
        uint64_t max;
};

#define O(f) offsetof(struct conf, f)
static const struct key keys[] = {
        { "daemon", "public_socket", K_PATH, O(public_socket), 0, 0 },
        { "daemon", "admin_socket", K_PATH, O(admin_socket), 0, 0 },
        { "daemon", "database", K_PATH, O(database), 0, 0 },
        { "daemon", "key_file", K_PATH, O(key_file), 0, 0 },
        { "daemon", "public_group", K_GROUP, O(public_group), 0, 0 },
        { "daemon", "admin_group", K_GROUP, O(admin_group), 0, 0 },
        { "daemon", "admin_users", K_LIST, O(admin_users), 0, 0 },
        { "daemon", "log_level", K_LOGLEVEL, O(log_level), 0, 0 },
        { "smtp", "url", K_SMTPURLS, O(urls), 0, 0 },
        { "smtp", "starttls", K_STARTTLS, O(starttls), 0, 0 },
        { "smtp", "username", K_STR, O(username), 0, 0 },
        { "smtp", "password_file", K_STR, O(password_file), 0, 0 },
        { "smtp", "from", K_FROM, O(from_name), 0, 0 },
        { "smtp", "max_connections", K_UINT, O(max_connections), 1, SENDER_MAX },
        { "smtp", "rate", K_UINT, O(rate), 0, 100000 },
        { "smtp", "timeout", K_DURATION, O(timeout), 1, SECONDS_PER_HOUR },
        { "smtp", "idle_timeout", K_DURATION, O(idle_timeout), 1, SECONDS_PER_HOUR },
        { "smtp", "helo_name", K_DOMAIN, O(helo_name), 0, 0 },
        { "smtp", "retry_initial", K_DURATION, O(retry_initial), 1, 30 * SECONDS_PER_DAY },
        { "smtp", "retry_max", K_DURATION, O(retry_max), 1, 30 * SECONDS_PER_DAY },
        { "smtp", "give_up_after", K_DURATION, O(give_up_after), 1, 365 * SECONDS_PER_DAY },
        { "subscription", "confirm_url", K_URLTMPL, O(confirm_url), 0, 0 },
        { "subscription", "unsubscribe_url", K_URLTMPL, O(unsubscribe_url), 0, 0 },
        { "subscription", "signup_url", K_URL, O(signup_url), 0, 0 },
        { "subscription", "confirm_ttl", K_DURATION, O(confirm_ttl), 1, 365 * SECONDS_PER_DAY },
        { "subscription", "resend_interval", K_DURATION, O(resend_interval), 0, 365 * SECONDS_PER_DAY },
        { "subscription", "expired_retention", K_DURATION, O(expired_retention), 0, 10 * 365ull * SECONDS_PER_DAY },
        { "subscription", "lists", K_LIST, O(lists), 0, 0 },
        { "subscription", "templates", K_STR, O(templates), 0, 0 },
        { "subscription", "welcome", K_ONOFF, O(welcome), 0, 0 },
        { "limits", "signups_per_ip", K_UINT, O(signups_per_ip), 0, 1000000 },
        { "limits", "signups_per_network", K_UINT, O(signups_per_network), 0, 1000000 },
        { "limits", "mails_per_hour", K_UINT, O(mails_per_hour), 0, 100000000 },
        { "dkim", "domain", K_DOMAIN, O(dkim_domain), 0, 0 },
        { "dkim", "selector", K_LIST, O(dkim_selectors), 0, 0 },
        { "dkim", "key_file", K_LIST, O(dkim_key_files), 0, 0 },
        { "bounce", "return_path", K_RETURNPATH, O(return_path), 0, 0 },
        { "bounce", "temporary_limit", K_UINT, O(temporary_limit), 0, 1000 },
        { "bounce", "temporary_window", K_DURATION, O(temporary_window), 1, 365 * SECONDS_PER_DAY },
        { "bounce", "imap_url", K_IMAPURL, O(imap_url), 0, 0 },
        { "bounce", "imap_username", K_STR, O(imap_username), 0, 0 },
        { "bounce", "imap_password_file", K_PATH, O(imap_password_file), 0, 0 },
        { "bounce", "imap_ca_file", K_PATH, O(imap_ca_file), 0, 0 },
        { "bounce", "imap_interval", K_DURATION, O(imap_interval), 1, SECONDS_PER_DAY },
        { "bounce", "imap_keep", K_ONOFF, O(imap_keep), 0, 0 },
        { "antibot", "pow", K_ONOFF, O(pow), 0, 0 },
        { "antibot", "key_file", K_PATH, O(antibot_key_file), 0, 0 },
        { "antibot", "maxnumber", K_UINT, O(pow_maxnumber), 1, ALTCHA_MAXNUMBER_MAX },
        { "antibot", "challenge_ttl", K_DURATION, O(challenge_ttl), 10, SECONDS_PER_DAY },
};
#undef O
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

struct parse_state {
        struct conf *c;
        struct conf_errors *errs;
        const char *name;
        unsigned line;          /* of the line inih is handling */
        unsigned seen[N_KEYS];  /* line where each key was set, 0 = not set */
        /* input */
        FILE *f;
        const char *text;
        size_t len, pos;
};

static void conf_error(struct conf_errors *errs, const char *name, unsigned line,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void conf_error(struct conf_errors *errs, const char *name, unsigned line,
                       const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (errs->n >= sizeof(errs->msg) / sizeof(errs->msg[0]) || errs->n >= CONFIG_ERRORS_MAX) {
                errs->dropped++;
                return;
        }
        struct buf b;
        buf_init(&b, 0);
        if (line)
                buf_printf(&b, "%s:%u: %s", name, line, msg);
        else
                buf_printf(&b, "%s: %s", name, msg);
        errs->msg[errs->n++] = buf_steal(&b, NULL);
}

void conf_errors_print(const struct conf_errors *errs, FILE *f)
{
        for (size_t i = 0; i < errs->n; i++)
                fprintf(f, "%s\n", errs->msg[i]);
        if (errs->dropped)
                fprintf(f, "(%zu more errors)\n", errs->dropped);
}

void conf_errors_free(struct conf_errors *errs)
{
        for (size_t i = 0; i < errs->n; i++)
                free(errs->msg[i]);
        memset(errs, 0, sizeof(*errs));
}

bool conf_parse_duration(const char *s, uint64_t *out)
{
        uint64_t v = 0, mult = 1;
        const char *p = s;
        if (!isdigit((unsigned char)*p))
                return false;
        for (; isdigit((unsigned char)*p); p++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        switch (*p) {
        case '\0': break;
        case 's': mult = 1; p++; break;
        case 'm': mult = 60; p++; break;
        case 'h': mult = SECONDS_PER_HOUR; p++; break;
        case 'd': mult = SECONDS_PER_DAY; p++; break;
        default: return false;
        }
        if (*p != '\0')
                return false;
        if (v > UINT64_MAX / mult)
                return false;
        *out = v * mult;
        return true;
}

static void list_free(struct conf_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

/* Comma-separated, blanks around items ignored, no empty items. */
static bool list_parse(const char *value, struct conf_list *l)
{
        list_free(l);
        const char *p = value;
        while (isspace((unsigned char)*p))
                p++;
        if (!*p)
                return true;    /* an empty list */
        for (;;) {
                const char *e = strchr(p, ',');
                const char *end = e ? e : p + strlen(p);
                while (p < end && isspace((unsigned char)*p))
                        p++;
                const char *q = end;
                while (q > p && isspace((unsigned char)q[-1]))
                        q--;
                if (q == p) {
                        list_free(l);
                        return false;
                }
                l->v = xrealloc(l->v, (l->n + 1) * sizeof(char *));
                l->v[l->n++] = xstrndup(p, (size_t)(q - p));
                if (!e)
                        break;
                p = e + 1;
        }
        return true;
}

static bool list_name_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > LIST_NAME_MAX_BYTES)
                return false;
        for (const char *p = s; *p; p++)
                if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
                      *p == '_' || *p == '.'))
                        return false;
        return true;
}

static bool has_space_or_control(const char *s)
{
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
                        return true;
        return false;
}

static void set_str(char **dst, const char *v)
{
        free(*dst);
        *dst = xstrdup(v);
}

/* "Name <addr>", "\"Name\" <addr>" or "addr" */
static bool from_parse(struct conf *c, const char *v, char *err, size_t errlen)
{
        const char *lt = strrchr(v, '<');
        const char *addr = v, *addr_end = v + strlen(v);
        char *name = NULL;
        if (mime_has_control(v, strlen(v))) {
                snprintf(err, errlen, "control characters in from");
                return false;
        }
        if (lt) {
                const char *gt = strchr(lt, '>');
                if (!gt || gt[1] != '\0') {
                        snprintf(err, errlen, "from: expected \"Name <address>\"");
                        return false;
                }
                addr = lt + 1;
                addr_end = gt;
                const char *ne = lt;
                while (ne > v && isspace((unsigned char)ne[-1]))
                        ne--;
                const char *nb = v;
                if (ne - nb >= 2 && *nb == '"' && ne[-1] == '"') {
                        nb++;
                        ne--;
                }
                name = xstrndup(nb, (size_t)(ne - nb));
                if (!mime_utf8_valid(name, strlen(name))) {
                        free(name);
                        snprintf(err, errlen, "from: the name is not valid UTF-8");
                        return false;
                }
        }
        struct addr a;
        enum addr_result r = addr_parse(addr, (size_t)(addr_end - addr), &a);
        if (r != ADDR_OK) {
                free(name);
                snprintf(err, errlen, "from: %s", addr_result_str(r));
                return false;
        }
        free(c->from_name);
        free(c->from_addr);
        free(c->from_domain);
        c->from_name = name ? name : xstrdup("");
        c->from_addr = xstrdup(a.mailbox);
        c->from_domain = xstrdup(a.domain);
        return true;
}

static bool set_value(struct parse_state *ps, const struct key *k, const char *value,
                      char *err, size_t errlen)
{
        struct conf *c = ps->c;
        void *dst = (char *)c + k->offset;
        uint64_t d;

        switch (k->type) {
        case K_STR:
                set_str(dst, value);
                return true;
        case K_PATH:
                if (!*value || has_space_or_control(value)) {
                        snprintf(err, errlen, "%s must be a path (no blanks)", k->name);
                        return false;
                }
                set_str(dst, value);
                return true;
        case K_GROUP:
                if (has_space_or_control(value)) {
                        snprintf(err, errlen, "%s: not a group name", k->name);
                        return false;
                }
                set_str(dst, value);
                return true;
        case K_DURATION:
                if (!conf_parse_duration(value, &d)) {
                        snprintf(err, errlen, "%s: \"%s\" is not a duration (30d, 12h, 15m, 2s or seconds)",
                                 k->name, value);
                        return false;
                }
                if (d < k->min || d > k->max) {
                        snprintf(err, errlen, "%s must be between %llus and %llus", k->name,
                                 (unsigned long long)k->min, (unsigned long long)k->max);
                        return false;
                }
                *(uint64_t *)dst = d;
                return true;
        case K_UINT: {
                char *end;
                errno = 0;
                if (!isdigit((unsigned char)*value)) {
                        snprintf(err, errlen, "%s: not a number", k->name);
                        return false;
                }
                unsigned long long v = strtoull(value, &end, 10);
                if (errno || *end || v < k->min || v > k->max) {
                        snprintf(err, errlen, "%s must be a number from %llu to %llu", k->name,
                                 (unsigned long long)k->min, (unsigned long long)k->max);
                        return false;
                }
                *(unsigned *)dst = (unsigned)v;
                return true;
        }
        case K_LIST: {
                struct conf_list *l = dst;
                if (!list_parse(value, l)) {
                        snprintf(err, errlen, "%s: a comma-separated list without empty items", k->name);
                        return false;
                }
                if (l == &c->lists && l->n == 0) {
                        snprintf(err, errlen, "lists must name at least one list");
                        return false;
                }
                if (l == &c->lists)
                        for (size_t i = 0; i < l->n; i++)
                                if (!list_name_ok(l->v[i])) {
                                        snprintf(err, errlen, "lists: \"%s\" is not a list name "
                                                 "(a-z, 0-9, '-', '_', '.', up to %d)", l->v[i],
                                                 LIST_NAME_MAX_BYTES);
                                        return false;
                                }
                return true;
        }
        case K_SMTPURLS: {
                struct conf_list *l = dst;
                if (!list_parse(value, l) || l->n == 0) {
                        snprintf(err, errlen, "url: a comma-separated list of smtp:// or smtps:// URLs");
                        return false;
                }
                for (size_t i = 0; i < l->n; i++)
                        if ((strncmp(l->v[i], "smtp://", 7) && strncmp(l->v[i], "smtps://", 8)) ||
                            has_space_or_control(l->v[i]) || strlen(l->v[i]) < 9) {
                                snprintf(err, errlen, "url: \"%s\" is not an smtp:// or smtps:// URL",
                                         l->v[i]);
                                return false;
                        }
                return true;
        }
        case K_STARTTLS:
                if (strcmp(value, "off") == 0)
                        c->starttls = STARTTLS_OFF;
                else if (strcmp(value, "opportunistic") == 0)
                        c->starttls = STARTTLS_OPPORTUNISTIC;
                else if (strcmp(value, "required") == 0)
                        c->starttls = STARTTLS_REQUIRED;
                else {
                        snprintf(err, errlen, "starttls must be off, opportunistic or required");
                        return false;
                }
                return true;
        case K_FROM:
                return from_parse(c, value, err, errlen);
        case K_URLTMPL:
                if ((strncmp(value, "https://", 8) && strncmp(value, "http://", 7)) ||
                    has_space_or_control(value) || !strstr(value, "{token}")) {
                        snprintf(err, errlen, "%s must be an http(s) URL containing {token}", k->name);
                        return false;
                }
                set_str(dst, value);
                return true;
        case K_URL:
                if ((strncmp(value, "https://", 8) && strncmp(value, "http://", 7)) ||
                    has_space_or_control(value)) {
                        snprintf(err, errlen, "%s must be an http(s) URL", k->name);
                        return false;
                }
                set_str(dst, value);
                return true;
        case K_LOGLEVEL: {
                int l = log_level_parse(value);
                if (l < 0) {
                        snprintf(err, errlen, "log_level must be err, warning, info or debug");
                        return false;
                }
                c->log_level = l;
                return true;
        }
        case K_RETURNPATH: {
                if (!*value) {
                        set_str(dst, "");
                        return true;
                }
                /* check it as an address with {id} standing for the longest
                 * mail id and its tag (secret.h) */
                char sample[ADDR_INPUT_MAX + 1];
                const char *id = strstr(value, "{id}");
                if (!id || strlen(value) > 200) {
                        snprintf(err, errlen, "return_path must be an address containing {id}");
                        return false;
                }
                snprintf(sample, sizeof(sample), "%.*s123456789012345678-0123456789abcdef%s",
                         (int)(id - value), value, id + 4);
                struct addr a;
                if (addr_parse(sample, strlen(sample), &a) != ADDR_OK || strstr(id + 4, "{id}")) {
                        snprintf(err, errlen, "return_path must be an address containing {id} once");
                        return false;
                }
                set_str(dst, value);
                return true;
        }
        case K_ONOFF:
                if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
                        *(bool *)dst = true;
                else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 ||
                         strcmp(value, "false") == 0)
                        *(bool *)dst = false;
                else {
                        snprintf(err, errlen, "%s must be on or off", k->name);
                        return false;
                }
                return true;
        case K_IMAPURL: {
                /* a host and a mailbox are named; TLS is asked for by the
                 * scheme or, for imap://, always required (imap.c) */
                const char *host = strncmp(value, "imaps://", 8) == 0 ? value + 8 :
                                   strncmp(value, "imap://", 7) == 0 ? value + 7 : NULL;
                const char *box = host ? strchr(host, '/') : NULL;
                if (*value && (!box || box == host || box[1] == '\0' || has_space_or_control(value) ||
                               strchr(value, ';') || strchr(value, '?') || strchr(value, '#'))) {
                        snprintf(err, errlen, "imap_url must be imaps://HOST[:PORT]/MAILBOX or imap://HOST[:PORT]/MAILBOX");
                        return false;
                }
                set_str(dst, value);
                return true;
        }
        case K_DOMAIN: {
                struct addr a;
                char sample[ADDR_INPUT_MAX + 1];
                snprintf(sample, sizeof(sample), "x@%s", value);
                if (addr_parse(sample, strlen(sample), &a) != ADDR_OK) {
                        snprintf(err, errlen, "%s: not a domain name", k->name);
                        return false;
                }
                set_str(dst, a.domain);
                return true;
        }
        }
        return false;
}

static int conf_ini_handler(void *user, const char *section, const char *name, const char *value)
{
        struct parse_state *ps = user;
        char err[400];
        size_t i;

        for (i = 0; i < N_KEYS; i++)
                if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
                        break;
        if (i == N_KEYS) {
                bool known_section = false;
                for (size_t k = 0; k < N_KEYS; k++)
                        if (strcmp(keys[k].section, section) == 0)
                                known_section = true;
                if (!*section)
                        conf_error(ps->errs, ps->name, ps->line, "\"%s\" outside of any [section]", name);
                else if (!known_section)
                        conf_error(ps->errs, ps->name, ps->line, "unknown section [%s]", section);
                else
                        conf_error(ps->errs, ps->name, ps->line, "unknown key \"%s\" in [%s]", name, section);
                return 1;
        }
        if (ps->seen[i]) {
                conf_error(ps->errs, ps->name, ps->line, "%s given twice (first on line %u)", name,
                           ps->seen[i]);
                return 1;
        }
        ps->seen[i] = ps->line;
        if (!set_value(ps, &keys[i], value, err, sizeof(err)))
                conf_error(ps->errs, ps->name, ps->line, "%s", err);
        return 1;
}

/* inih reader: one line at a time, counted, so that the handler knows the
 * line it is called for; a line longer than inih's buffer is an error, not
 * two lines. */
static char *conf_ini_reader(char *str, int num, void *stream)
{
        struct parse_state *ps = stream;
        size_t cap = (size_t)num - 1, n = 0;
        bool too_long = false;
        int ch;

        for (;;) {
                if (ps->f) {
                        ch = getc(ps->f);
                } else {
                        ch = ps->pos < ps->len ? (unsigned char)ps->text[ps->pos++] : EOF;
                }
                if (ch == EOF) {
                        if (n == 0 && !too_long)
                                return NULL;
                        break;
                }
                if (ch == '\0') {
                        ch = 0x7f;      /* reported below as a control character */
                }
                if (n < cap)
                        str[n++] = (char)ch;
                else
                        too_long = true;
                if (ch == '\n')
                        break;
        }
        str[n] = '\0';
        ps->line++;
        if (too_long) {
                conf_error(ps->errs, ps->name, ps->line, "line longer than %d bytes", num - 2);
                str[0] = '\0';  /* an empty line for inih */
        } else {
                for (size_t i = 0; i < n; i++) {
                        unsigned char c = (unsigned char)str[i];
                        bool line_end = (c == '\n' && i == n - 1) ||
                                        (c == '\r' && (i == n - 1 || (i == n - 2 && str[n - 1] == '\n')));
                        if (((c < 0x20 && c != '\t') || c == 0x7f) && !line_end) {
                                conf_error(ps->errs, ps->name, ps->line, "control character in line");
                                str[0] = '\0';
                                break;
                        }
                }
        }
        return str;
}

void conf_defaults(struct conf *c)
{
        memset(c, 0, sizeof(*c));
        c->public_socket = xstrdup("/run/newsletterd/public.sock");
        c->admin_socket = xstrdup("/run/newsletterd/admin.sock");
        c->database = xstrdup("/var/lib/newsletterd/newsletterd.db");
        c->key_file = xstrdup("");
        c->public_group = xstrdup("");
        c->admin_group = xstrdup("");
        c->log_level = LOG_LVL_INFO;
        list_parse("smtp://127.0.0.1:25", &c->urls);
        c->starttls = STARTTLS_OPPORTUNISTIC;
        c->username = xstrdup("");
        c->password_file = xstrdup("");
        c->from_name = xstrdup("Newsletter");
        c->from_addr = xstrdup("newsletter@example.org");
        c->from_domain = xstrdup("example.org");
        c->max_connections = 8;
        c->timeout = 30;
        /* under the 10 s a Postfix under stress allows an idle client */
        c->idle_timeout = 5;
        c->helo_name = xstrdup("");
        c->retry_initial = 5 * 60;
        c->retry_max = SECONDS_PER_HOUR;
        c->give_up_after = 5 * SECONDS_PER_DAY;
        c->confirm_url = xstrdup("https://example.org/newsletter/confirm?token={token}");
        c->unsubscribe_url = xstrdup("https://example.org/newsletter/unsubscribe?token={token}");
        c->confirm_ttl = 30 * SECONDS_PER_DAY;
        c->resend_interval = SECONDS_PER_HOUR;
        c->expired_retention = 90 * SECONDS_PER_DAY;
        list_parse("default", &c->lists);
        c->signups_per_ip = 10;
        c->signups_per_network = 30;
        c->mails_per_hour = 0;
        c->templates = xstrdup("");
        c->signup_url = xstrdup("");
        c->dkim_domain = xstrdup("");
        c->return_path = xstrdup("");
        c->temporary_limit = 5;
        c->temporary_window = 30 * SECONDS_PER_DAY;
        c->imap_url = xstrdup("");
        c->imap_username = xstrdup("");
        c->imap_password_file = xstrdup("");
        c->imap_ca_file = xstrdup("");
        c->imap_interval = 5 * 60;
        c->imap_keep = false;
        c->welcome = false;
        c->pow = false;
        c->antibot_key_file = xstrdup("");
        c->pow_maxnumber = 100000;
        c->challenge_ttl = 10 * 60;
}

void conf_free(struct conf *c)
{
        if (!c)
                return;
        free(c->path);
        free(c->public_socket);
        free(c->admin_socket);
        free(c->database);
        free(c->key_file);
        secret_keys_clear(&c->keys);
        free(c->public_group);
        free(c->admin_group);
        list_free(&c->admin_users);
        list_free(&c->urls);
        free(c->username);
        free(c->password_file);
        if (c->password) {
                explicit_bzero(c->password, strlen(c->password));
                free(c->password);
        }
        free(c->from_name);
        free(c->from_addr);
        free(c->from_domain);
        free(c->helo_name);
        free(c->confirm_url);
        free(c->unsubscribe_url);
        list_free(&c->lists);
        free(c->templates);
        free(c->signup_url);
        free(c->dkim_domain);
        list_free(&c->dkim_selectors);
        list_free(&c->dkim_key_files);
        free(c->return_path);
        free(c->imap_url);
        free(c->imap_username);
        free(c->imap_password_file);
        free(c->imap_ca_file);
        if (c->imap_password) {
                explicit_bzero(c->imap_password, strlen(c->imap_password));
                free(c->imap_password);
        }
        free(c->antibot_key_file);
        explicit_bzero(c->altcha_keys, sizeof(c->altcha_keys));
        memset(c, 0, sizeof(*c));
}

static unsigned key_line(const struct parse_state *ps, const char *name)
{
        for (size_t i = 0; i < N_KEYS; i++)
                if (strcmp(keys[i].name, name) == 0)
                        return ps->seen[i];
        return 0;
}

/* A rule between two keys is reported at the first key's line, or at the
 * second's when the first has its default. */
static unsigned pair_line(const struct parse_state *ps, const char *a, const char *b)
{
        unsigned la = key_line(ps, a);
        return la ? la : key_line(ps, b);
}

/* Rules between keys. */
static void check_cross(struct parse_state *ps)
{
        struct conf *c = ps->c;
        if (c->retry_initial > c->retry_max)
                conf_error(ps->errs, ps->name, pair_line(ps, "retry_initial", "retry_max"),
                           "retry_initial is longer than retry_max");
        if (c->resend_interval > c->confirm_ttl)
                conf_error(ps->errs, ps->name, pair_line(ps, "resend_interval", "confirm_ttl"),
                           "resend_interval is longer than confirm_ttl");
        if (strcmp(c->public_socket, c->admin_socket) == 0)
                conf_error(ps->errs, ps->name, pair_line(ps, "admin_socket", "public_socket"),
                           "admin_socket and public_socket must differ");
        if (*c->username && !*c->password_file)
                conf_error(ps->errs, ps->name, pair_line(ps, "username", "password_file"),
                           "username needs password_file");
        if (*c->imap_url && (!*c->imap_username || !*c->imap_password_file))
                conf_error(ps->errs, ps->name, pair_line(ps, "imap_url", "imap_username"),
                           "imap_url needs imap_username and imap_password_file");
        bool dkim = *c->dkim_domain || c->dkim_selectors.n || c->dkim_key_files.n;
        if (dkim && (!*c->dkim_domain || !c->dkim_selectors.n ||
                     c->dkim_selectors.n != c->dkim_key_files.n))
                conf_error(ps->errs, ps->name,
                           pair_line(ps, "domain", key_line(ps, "selector") > key_line(ps, "key_file") ?
                                                   "selector" : "key_file"),
                           "[dkim] needs domain, and as many selectors as key_file entries");
}

static int conf_parse(struct conf *c, struct parse_state *ps)
{
        ini_allow_multiline = false;
        ini_allow_inline_comments = true;
        ini_inline_comment_prefixes = "#;";
        ini_start_comment_prefixes = "#;";
        ini_stop_on_first_error = false;
        ini_max_line = CONFIG_LINE_MAX;

        size_t before = ps->errs->n + ps->errs->dropped;
        int r = ini_parse_stream(conf_ini_reader, ps, conf_ini_handler, ps);
        if (r > 0)
                conf_error(ps->errs, ps->name, (unsigned)r,
                           "syntax error (expected [section], key = value or a # comment)");
        else if (r < 0)
                conf_error(ps->errs, ps->name, 0, "could not be parsed");
        check_cross(ps);
        size_t n = ps->errs->n + ps->errs->dropped - before;
        return n ? (int)n : 0;
}

int conf_load(struct conf *c, const char *path, struct conf_errors *errs)
{
        struct parse_state ps = { .c = c, .errs = errs, .name = path };
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        ps.f = f;
        free(c->path);
        c->path = xstrdup(path);
        int r = conf_parse(c, &ps);
        fclose(f);
        return r;
}

int conf_load_string(struct conf *c, const char *name, const char *text, size_t len,
                     struct conf_errors *errs)
{
        struct parse_state ps = { .c = c, .errs = errs, .name = name, .text = text, .len = len };
        free(c->path);
        c->path = xstrdup(name);
        return conf_parse(c, &ps);
}

/* The first line of a password file that only its owner may read into *out. */
static int password_read(const char *path, char **out, struct conf_errors *errs)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                conf_error(errs, path, 0, "%s", strerror(errno));
                return 1;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                conf_error(errs, path, 0, "not a regular file");
                return 1;
        }
        if (st.st_mode & 0044) {
                close(fd);
                conf_error(errs, path, 0,
                           "readable by group or others (mode %04o); chmod 600 it",
                           (unsigned)(st.st_mode & 07777));
                return 1;
        }
        char pw[1024];
        ssize_t n = read(fd, pw, sizeof(pw) - 1);
        close(fd);
        if (n < 0) {
                conf_error(errs, path, 0, "%s", strerror(errno));
                return 1;
        }
        pw[n] = '\0';
        size_t len = strcspn(pw, "\r\n");
        pw[len] = '\0';
        if (len == 0) {
                conf_error(errs, path, 0, "empty password");
                return 1;
        }
        if (*out) {
                explicit_bzero(*out, strlen(*out));
                free(*out);
        }
        *out = xstrdup(pw);
        explicit_bzero(pw, sizeof(pw));
        return 0;
}

int conf_load_secrets(struct conf *c, struct conf_errors *errs)
{
        int r = 0;
        if (*c->password_file)
                r |= password_read(c->password_file, &c->password, errs);
        if (*c->imap_password_file)
                r |= password_read(c->imap_password_file, &c->imap_password, errs);
        return r;
}
