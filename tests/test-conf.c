/*
 * test-conf.c - the configuration: the contract's defaults, a full file,
 * durations, and for each way a file can be wrong an error that names the
 * file and the right line.  conf_load_secrets() with real files of both
 * modes.  Everything is freed, so the ASan build also checks for leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "conf.h"
#include "log.h"
#include "unit.h"

#define NAME "test.conf"

/* Defaults, then the text; returns conf_load_string()'s result. */
static int load(struct conf *c, struct conf_errors *e, const char *text, size_t len)
{
        memset(e, 0, sizeof(*e));
        conf_defaults(c);
        return conf_load_string(c, NAME, text, len, e);
}

static void dump_errors(const struct conf_errors *e)
{
        for (size_t i = 0; i < e->n; i++)
                fprintf(stderr, "    error: %s\n", e->msg[i]);
}

/* Is there an error "test.conf:LINE: ...what..."?  (line 0: "test.conf: ") */
static bool has_error(const struct conf_errors *e, unsigned line, const char *what)
{
        char prefix[64];
        if (line)
                snprintf(prefix, sizeof(prefix), NAME ":%u: ", line);
        else
                snprintf(prefix, sizeof(prefix), NAME ": ");
        for (size_t i = 0; i < e->n; i++)
                if (strncmp(e->msg[i], prefix, strlen(prefix)) == 0 &&
                    strstr(e->msg[i] + strlen(prefix), what))
                        return true;
        return false;
}

/*
 * The text must give exactly one error, at `line`, containing `what`.
 * Also frees the config of the failed parse (ASan checks the leak).
 */
static bool check_error_at(const char *text, size_t len, unsigned line, const char *what,
                           const char *file, int srcline)
{
        struct conf c;
        struct conf_errors e;
        int r = load(&c, &e, text, len);
        /* both checks run (and report) whatever the first one found */
        bool ok_r = unit_check_int(r, 1, file, srcline, "conf_load_string()", "1 error");
        bool ok_n = unit_check_uint(e.n, 1, file, srcline, "errors.n", "1");
        bool ok = ok_r && ok_n;
        if (!unit_check(has_error(&e, line, what), file, srcline, "error at the line")) {
                fprintf(stderr, "    expected at line %u: %s\n", line, what);
                ok = false;
        }
        if (!ok) {
                dump_errors(&e);
                fprintf(stderr, "    in config: ");
                unit_print_bytes(text, len);
                fputc('\n', stderr);
        }
        conf_errors_free(&e);
        conf_free(&c);
        return ok;
}
#define CHECK_ERROR(text, line, what) \
        check_error_at((text), strlen(text), (line), (what), __FILE__, __LINE__)

/* One key = value in its section, after a comment line and a blank line:
 * the key is on line 4.  Exactly one error expected there. */
static bool check_bad_value(const char *section, const char *key, const char *value,
                            const char *what, const char *file, int srcline)
{
        char text[8192];
        snprintf(text, sizeof(text), "# a comment\n\n[%s]\n%s = %s\n", section, key, value);
        return check_error_at(text, strlen(text), 4, what, file, srcline);
}
#define CHECK_BAD(section, key, value, what) \
        check_bad_value((section), (key), (value), (what), __FILE__, __LINE__)

/* The value is accepted. */
static bool check_good_value(const char *section, const char *key, const char *value,
                             const char *file, int srcline)
{
        char text[8192];
        struct conf c;
        struct conf_errors e;
        snprintf(text, sizeof(text), "[%s]\n%s = %s\n", section, key, value);
        int r = load(&c, &e, text, strlen(text));
        bool ok = unit_check_int(r, 0, file, srcline, "conf_load_string()", "0");
        if (!ok) {
                fprintf(stderr, "    %s = %s\n", key, value);
                dump_errors(&e);
        }
        conf_errors_free(&e);
        conf_free(&c);
        return ok;
}
#define CHECK_GOOD(section, key, value) \
        check_good_value((section), (key), (value), __FILE__, __LINE__)

static void test_defaults(void)
{
        struct conf c;
        conf_defaults(&c);
        /* the sample values of CONTRACT.md */
        CHECK_STR(c.public_socket, "/run/newsletterd/public.sock");
        CHECK_STR(c.admin_socket, "/run/newsletterd/admin.sock");
        CHECK_STR(c.database, "/var/lib/newsletterd/newsletterd.db");
        CHECK_STR(c.public_group, "");
        CHECK_STR(c.admin_group, "");
        CHECK_UINT(c.admin_users.n, 0);
        REQUIRE(c.urls.n == 1);
        CHECK_STR(c.urls.v[0], "smtp://127.0.0.1:25");
        CHECK_INT(c.starttls, STARTTLS_OPPORTUNISTIC);
        CHECK_STR(c.username, "");
        CHECK_STR(c.password_file, "");
        CHECK(c.password == NULL);
        CHECK_STR(c.from_name, "Newsletter");
        CHECK_STR(c.from_addr, "newsletter@example.org");
        CHECK_STR(c.from_domain, "example.org");
        CHECK_UINT(c.max_connections, 8);
        CHECK_UINT(c.timeout, 30);
        CHECK_UINT(c.idle_timeout, 5);
        CHECK_STR(c.helo_name, "");
        CHECK_UINT(c.retry_initial, 5 * 60);
        CHECK_UINT(c.retry_max, 60 * 60);
        CHECK_UINT(c.give_up_after, 5 * 86400);
        CHECK_STR(c.confirm_url, "https://example.org/newsletter/confirm?token={token}");
        CHECK_STR(c.unsubscribe_url, "https://example.org/newsletter/unsubscribe?token={token}");
        CHECK_UINT(c.confirm_ttl, 30 * 86400);
        CHECK_UINT(c.resend_interval, 3600);
        CHECK_UINT(c.expired_retention, 90 * 86400);
        REQUIRE(c.lists.n == 1);
        CHECK_STR(c.lists.v[0], "default");
        CHECK_STR(c.templates, "");
        CHECK_STR(c.dkim_domain, "");
        CHECK_UINT(c.dkim_selectors.n, 0);
        CHECK_UINT(c.dkim_key_files.n, 0);
        CHECK_STR(c.return_path, "");
        conf_free(&c);
        conf_free(&c);          /* twice: conf_free leaves a cleared struct */
        conf_free(NULL);
}

/* The config shipped in conf/ parses without errors to the defaults. */
static void test_shipped_config(void)
{
        const char *root = getenv("SOURCE_ROOT");
        if (!root) {
                fprintf(stderr, "    SOURCE_ROOT not set; skipped\n");
                return;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/conf/newsletterd.conf", root);
        struct conf c, d;
        struct conf_errors e = { 0 };
        conf_defaults(&c);
        conf_defaults(&d);
        int r = conf_load(&c, path, &e);
        if (!CHECK_INT(r, 0))
                dump_errors(&e);
        CHECK_STR(c.path, path);
        CHECK_STR(c.public_socket, d.public_socket);
        CHECK_STR(c.from_name, d.from_name);
        CHECK_STR(c.from_addr, d.from_addr);
        CHECK_UINT(c.confirm_ttl, d.confirm_ttl);
        CHECK_UINT(c.expired_retention, d.expired_retention);
        conf_errors_free(&e);
        conf_free(&c);
        conf_free(&d);
}

static const char full[] =
        "# every key, none at its default\n"
        "[daemon]\n"
        "public_socket = /tmp/nl/public.sock\n"
        "admin_socket  = /tmp/nl/admin.sock   # inline comment\n"
        "database      = /tmp/nl/db.sqlite\n"
        "public_group  = www-data\n"
        "admin_group   = newsadm\n"
        "admin_users   = alice, bob\n"
        "log_level     = debug\n"
        "\n"
        "[smtp]\n"
        "url             = smtps://mail.example.org:465, smtp://backup.example.org:587\n"
        "starttls        = required\n"
        "username        = newsletter user\n"
        "password_file   = /etc/newsletterd/smtp-password\n"
        "from            = \"Example, Inc.\" <News@Example.ORG>\n"
        "max_connections = 16\n"
        "timeout         = 2m\n"
        "retry_initial   = 30s\n"
        "retry_max       = 2h\n"
        "give_up_after   = 3d\n"
        "\n"
        "[subscription]\n"
        "confirm_url     = https://example.com/c?token={token}#top\n"
        "unsubscribe_url = http://example.com/u/{token}\n"
        "confirm_ttl     = 7d\n"
        "resend_interval = 0\n"
        "expired_retention = 3600\n"
        "lists           = news, events.2024 ,dev_team-x\n"
        "templates       = /etc/newsletterd/templates\n"
        "\n"
        "[dkim]\n"
        "domain   = Example.ORG\n"
        "selector = rsa, ed\n"
        "key_file = /k/rsa.key, /k/ed.key\n"
        "\n"
        "; a semicolon comment\n"
        "[bounce]\n"
        "return_path = bounces+{id}@example.org\n";

static void test_full(void)
{
        struct conf c;
        struct conf_errors e;
        int r = load(&c, &e, full, sizeof(full) - 1);
        if (!CHECK_INT(r, 0))
                dump_errors(&e);
        CHECK_STR(c.path, NAME);
        CHECK_STR(c.public_socket, "/tmp/nl/public.sock");
        CHECK_STR(c.admin_socket, "/tmp/nl/admin.sock");
        CHECK_STR(c.database, "/tmp/nl/db.sqlite");
        CHECK_STR(c.public_group, "www-data");
        CHECK_STR(c.admin_group, "newsadm");
        if (CHECK_UINT(c.admin_users.n, 2))
                CHECK_STR(c.admin_users.v[1], "bob");
        CHECK_INT(c.log_level, LOG_LVL_DEBUG);
        if (CHECK_UINT(c.urls.n, 2)) {
                CHECK_STR(c.urls.v[0], "smtps://mail.example.org:465");
                CHECK_STR(c.urls.v[1], "smtp://backup.example.org:587");
        }
        CHECK_INT(c.starttls, STARTTLS_REQUIRED);
        CHECK_STR(c.username, "newsletter user");
        CHECK_STR(c.password_file, "/etc/newsletterd/smtp-password");
        CHECK_STR(c.from_name, "Example, Inc.");
        CHECK_STR(c.from_addr, "News@example.org");
        CHECK_STR(c.from_domain, "example.org");
        CHECK_UINT(c.max_connections, 16);
        CHECK_UINT(c.timeout, 120);
        CHECK_UINT(c.retry_initial, 30);
        CHECK_UINT(c.retry_max, 7200);
        CHECK_UINT(c.give_up_after, 3 * 86400);
        CHECK_STR(c.confirm_url, "https://example.com/c?token={token}#top");
        CHECK_STR(c.unsubscribe_url, "http://example.com/u/{token}");
        CHECK_UINT(c.confirm_ttl, 7 * 86400);
        CHECK_UINT(c.resend_interval, 0);
        CHECK_UINT(c.expired_retention, 3600);
        if (CHECK_UINT(c.lists.n, 3)) {
                CHECK_STR(c.lists.v[0], "news");
                CHECK_STR(c.lists.v[1], "events.2024");
                CHECK_STR(c.lists.v[2], "dev_team-x");
        }
        CHECK_STR(c.templates, "/etc/newsletterd/templates");
        CHECK_STR(c.dkim_domain, "example.org");
        if (CHECK_UINT(c.dkim_selectors.n, 2) && CHECK_UINT(c.dkim_key_files.n, 2)) {
                CHECK_STR(c.dkim_selectors.v[1], "ed");
                CHECK_STR(c.dkim_key_files.v[0], "/k/rsa.key");
        }
        CHECK_STR(c.return_path, "bounces+{id}@example.org");
        conf_errors_free(&e);
        conf_free(&c);

        /* the same with CRLF line ends */
        struct conf_errors e2;
        char crlf[sizeof(full) * 2];
        size_t n = 0;
        for (const char *p = full; *p; p++) {
                if (*p == '\n')
                        crlf[n++] = '\r';
                crlf[n++] = *p;
        }
        r = load(&c, &e2, crlf, n);
        if (!CHECK_INT(r, 0))
                dump_errors(&e2);
        CHECK_STR(c.return_path, "bounces+{id}@example.org");
        CHECK_STR(c.from_name, "Example, Inc.");
        conf_errors_free(&e2);
        conf_free(&c);
}

static void test_from(void)
{
        static const struct { const char *value, *name, *addr, *domain; } cases[] = {
                { "Name <addr@example.org>", "Name", "addr@example.org", "example.org" },
                { "\"Quoted, Name\" <addr@example.org>", "Quoted, Name", "addr@example.org",
                  "example.org" },
                { "addr@example.org", "", "addr@example.org", "example.org" },
                { "<addr@example.org>", "", "addr@example.org", "example.org" },
                { "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln <Info@B\xc3\xbc" "cher.Example>",
                  "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln", "Info@xn--bcher-kva.example",
                  "xn--bcher-kva.example" },
                { "Team   <team@sub.example.net>", "Team", "team@sub.example.net",
                  "sub.example.net" },
                { "Name <addr@example.org>  # inline comment", "Name", "addr@example.org",
                  "example.org" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char text[512];
                struct conf c;
                struct conf_errors e;
                snprintf(text, sizeof(text), "[smtp]\nfrom = %s\n", cases[i].value);
                int r = load(&c, &e, text, strlen(text));
                if (!CHECK_INT(r, 0)) {
                        fprintf(stderr, "    from = %s\n", cases[i].value);
                        dump_errors(&e);
                } else {
                        CHECK_STR(c.from_name, cases[i].name);
                        CHECK_STR(c.from_addr, cases[i].addr);
                        CHECK_STR(c.from_domain, cases[i].domain);
                }
                conf_errors_free(&e);
                conf_free(&c);
        }
        CHECK_BAD("smtp", "from", "Newsletter", "from: ");
        CHECK_BAD("smtp", "from", "Newsletter <>", "from: ");
        CHECK_BAD("smtp", "from", "Newsletter <news@localhost>", "from: ");
        CHECK_BAD("smtp", "from", "Newsletter <news@example.org", "from: ");
        CHECK_BAD("smtp", "from", "Newsletter <news@example.org> trailing", "from: ");
        CHECK_BAD("smtp", "from", "Newsletter <a@b@example.org>", "from: ");
        CHECK_BAD("smtp", "from", "Caf\xe9 <news@example.org>", "UTF-8");
        CHECK_BAD("smtp", "from", "", "from: ");
}

static void test_durations(void)
{
        static const struct { const char *s; uint64_t v; } good[] = {
                { "30d", 30 * 86400ull }, { "12h", 12 * 3600ull }, { "15m", 900 }, { "2s", 2 },
                { "0", 0 }, { "45", 45 }, { "0s", 0 }, { "007m", 420 },
                { "213503982334601d", 213503982334601ull * 86400 },
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                uint64_t v = 12345;
                if (!CHECK(conf_parse_duration(good[i].s, &v)))
                        fprintf(stderr, "    refused \"%s\"\n", good[i].s);
                else
                        CHECK_UINT(v, good[i].v);
        }
        static const char *const bad[] = {
                "", "-1", "+5", "1.5h", "5 m", " 5m", "5m ", "m", "d", "5x", "5mm", "5ms",
                "5M", "5D", "1h30m", "0x10", "1e3",
                "99999999999999999999d", "99999999999999999999", "18446744073709551616",
                "213503982334602d",     /* just over UINT64_MAX seconds */
                "5124095576030432h", "307445734561825861m",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint64_t v = 12345;
                if (!CHECK(!conf_parse_duration(bad[i], &v)))
                        fprintf(stderr, "    accepted \"%s\" as %llu\n", bad[i],
                                (unsigned long long)v);
                CHECK_UINT(v, 12345);   /* untouched on failure */
        }
        /* in a config file */
        CHECK_GOOD("smtp", "timeout", "1h");
        CHECK_BAD("smtp", "timeout", "5 m", "timeout");
        CHECK_BAD("smtp", "timeout", "1.5h", "timeout");
        CHECK_BAD("smtp", "timeout", "-1", "timeout");
        CHECK_BAD("smtp", "timeout", "", "timeout");
        CHECK_BAD("smtp", "timeout", "99999999999999999999d", "timeout");
}

static void test_syntax_errors(void)
{
        CHECK_ERROR("[daemon]\n# comment\nnosuchkey = 1\n", 3, "unknown key \"nosuchkey\" in [daemon]");
        CHECK_ERROR("[smtp]\nurl = smtp://a.example:25\n\n[smpt]\nurl = smtp://b.example:25\n", 5,
                    "unknown section [smpt]");
        CHECK_ERROR("\n# comment\nurl = smtp://a.example:25\n[smtp]\n", 3, "outside of any [section]");
        CHECK_ERROR("[smtp]\ntimeout = 5s\nstarttls = off\ntimeout = 6s\n", 4,
                    "timeout given twice (first on line 2)");
        CHECK_ERROR("[smtp]\ntimeout = 5s\n[daemon]\n[smtp]\ntimeout = 6s\n", 5, "given twice");
        /* a key of one section is unknown in another */
        CHECK_ERROR("[daemon]\nurl = smtp://a.example:25\n", 2, "unknown key \"url\" in [daemon]");
        /* lines that are neither section, key = value nor comment */
        CHECK_ERROR("[smtp]\ntimeout = 5s\njust words\n", 3, "syntax error");
        CHECK_ERROR("[smtp\n", 1, "syntax error");
}

static void test_bad_values(void)
{
        CHECK_BAD("daemon", "public_socket", "", "public_socket");
        CHECK_BAD("daemon", "public_socket", "/run/a b.sock", "public_socket");
        CHECK_BAD("daemon", "admin_socket", "", "admin_socket");
        CHECK_BAD("daemon", "database", "/var/lib/my db", "database");
        CHECK_BAD("daemon", "public_group", "www data", "public_group");
        CHECK_GOOD("daemon", "public_group", "");
        CHECK_BAD("daemon", "admin_group", "news admins", "admin_group");
        CHECK_GOOD("daemon", "admin_group", "newsadm");
        CHECK_BAD("daemon", "admin_users", "alice,,bob", "admin_users");
        CHECK_GOOD("daemon", "admin_users", "alice, bob");
        CHECK_BAD("daemon", "log_level", "loud", "log_level");
        CHECK_BAD("daemon", "log_level", "", "log_level");

        CHECK_BAD("smtp", "url", "http://mail.example.org", "url");
        CHECK_BAD("smtp", "url", "mail.example.org:25", "url");
        CHECK_BAD("smtp", "url", "smtp://", "url");
        CHECK_BAD("smtp", "url", "smtp://a.example:25, lmtp://b.example", "url");
        CHECK_BAD("smtp", "url", "smtp://a.example:25,,smtp://b.example:25", "url");
        CHECK_BAD("smtp", "url", "", "url");
        CHECK_BAD("smtp", "url", " ", "url");
        CHECK_GOOD("smtp", "url", "smtps://a.example");

        CHECK_BAD("smtp", "starttls", "yes", "starttls");
        CHECK_BAD("smtp", "starttls", "Required", "starttls");
        CHECK_BAD("smtp", "starttls", "", "starttls");
        static const struct { const char *v; enum starttls_mode m; } modes[] = {
                { "off", STARTTLS_OFF }, { "opportunistic", STARTTLS_OPPORTUNISTIC },
                { "required", STARTTLS_REQUIRED },
        };
        for (size_t i = 0; i < 3; i++) {
                char text[64];
                struct conf c;
                struct conf_errors e;
                snprintf(text, sizeof(text), "[smtp]\nstarttls = %s\n", modes[i].v);
                CHECK_INT(load(&c, &e, text, strlen(text)), 0);
                CHECK_INT(c.starttls, modes[i].m);
                conf_errors_free(&e);
                conf_free(&c);
        }

        CHECK_BAD("smtp", "max_connections", "0", "max_connections");
        CHECK_BAD("smtp", "max_connections", "65", "max_connections");
        CHECK_BAD("smtp", "max_connections", "8x", "max_connections");
        CHECK_BAD("smtp", "max_connections", "-1", "max_connections");
        CHECK_BAD("smtp", "max_connections", "", "max_connections");
        CHECK_BAD("smtp", "max_connections", "99999999999999999999", "max_connections");
        CHECK_GOOD("smtp", "max_connections", "64");
        CHECK_GOOD("smtp", "max_connections", "1");

        CHECK_BAD("smtp", "rate", "-1", "rate");
        CHECK_BAD("smtp", "rate", "100001", "rate");
        CHECK_BAD("smtp", "rate", "10/s", "rate");
        CHECK_GOOD("smtp", "rate", "0");
        CHECK_BAD("limits", "signups_per_ip", "many", "signups_per_ip");
        CHECK_BAD("limits", "signups_per_ip", "1000001", "signups_per_ip");
        CHECK_BAD("limits", "signups_per_network", "", "signups_per_network");
        CHECK_BAD("limits", "mails_per_hour", "100000001", "mails_per_hour");
        CHECK_GOOD("limits", "mails_per_hour", "0");
        CHECK_BAD("limits", "per_ip", "1", "unknown key");

        CHECK_BAD("smtp", "timeout", "0", "timeout");
        CHECK_BAD("smtp", "timeout", "3601", "timeout");
        CHECK_BAD("smtp", "retry_initial", "0", "retry_initial");
        CHECK_BAD("smtp", "retry_initial", "soon", "retry_initial");
        CHECK_BAD("smtp", "retry_max", "31d", "retry_max");
        CHECK_BAD("smtp", "give_up_after", "366d", "give_up_after");
        CHECK_BAD("smtp", "give_up_after", "0", "give_up_after");

        CHECK_BAD("subscription", "confirm_url", "https://example.org/confirm", "{token}");
        CHECK_BAD("subscription", "confirm_url", "ftp://example.org/{token}", "confirm_url");
        CHECK_BAD("subscription", "confirm_url", "example.org/?t={token}", "confirm_url");
        CHECK_BAD("subscription", "confirm_url", "https://example.org/a b?t={token}", "confirm_url");
        CHECK_BAD("subscription", "confirm_url", "", "confirm_url");
        CHECK_BAD("subscription", "unsubscribe_url", "https://example.org/u?t={tok}", "{token}");
        CHECK_BAD("subscription", "confirm_ttl", "0", "confirm_ttl");
        CHECK_BAD("subscription", "confirm_ttl", "366d", "confirm_ttl");
        CHECK_BAD("subscription", "resend_interval", "1w", "resend_interval");
        CHECK_BAD("subscription", "expired_retention", "3651d", "expired_retention");
        CHECK_GOOD("subscription", "expired_retention", "0");

        CHECK_BAD("subscription", "lists", "Default", "\"Default\" is not a list name");
        CHECK_BAD("subscription", "lists", "news, my list", "\"my list\" is not a list name");
        CHECK_BAD("subscription", "lists", "news/letter", "not a list name");
        CHECK_BAD("subscription", "lists", "news,,events", "empty items");
        CHECK_BAD("subscription", "lists", "news,", "empty items");
        CHECK_BAD("subscription", "lists", ", news", "empty items");
        CHECK_BAD("subscription", "lists", "", "at least one list");
        CHECK_BAD("subscription", "lists", "  ", "at least one list");
        CHECK_BAD("subscription", "lists",
                  "a234567890123456789012345678901234567890123456789012345678901234x",
                  "not a list name");
        CHECK_GOOD("subscription", "lists",
                   "a234567890123456789012345678901234567890123456789012345678901234");

        CHECK_GOOD("smtp", "idle_timeout", "2s");
        CHECK_BAD("smtp", "idle_timeout", "0", "idle_timeout");
        CHECK_BAD("smtp", "idle_timeout", "2h", "idle_timeout");
        /* it becomes the path of the relay's URL and the EHLO argument */
        CHECK_GOOD("smtp", "helo_name", "mta.example.net");
        CHECK_BAD("smtp", "helo_name", "mta", "helo_name");
        CHECK_BAD("smtp", "helo_name", "mta example.net", "helo_name");
        CHECK_BAD("smtp", "helo_name", "mta.example.net/x", "helo_name");
        CHECK_BAD("smtp", "helo_name", "mta%2eexample.net", "helo_name");
        CHECK_BAD("smtp", "helo_name", "", "helo_name");

        CHECK_BAD("dkim", "domain", "not a domain", "domain");
        CHECK_BAD("dkim", "domain", "localhost", "domain");
        CHECK_BAD("dkim", "selector", "a,,b", "selector");
        CHECK_BAD("dkim", "key_file", "/k/a.key,", "key_file");
        CHECK_GOOD("dkim", "key_file", "");             /* an empty list: no key */
        CHECK_GOOD("dkim", "selector", "  ");

        CHECK_BAD("bounce", "return_path", "bounces@example.org", "{id}");
        CHECK_BAD("bounce", "return_path", "b+{id}+{id}@example.org", "{id}");
        CHECK_BAD("bounce", "return_path", "b+{id}@localhost", "{id}");
        CHECK_BAD("bounce", "return_path", "b {id}@example.org", "{id}");
        CHECK_GOOD("bounce", "return_path", "bounces+{id}@example.org");
        CHECK_GOOD("bounce", "return_path", "");
}

static void test_cross_errors(void)
{
        CHECK_ERROR("[smtp]\nretry_initial = 2h\nretry_max = 1h\n", 2,
                    "retry_initial is longer than retry_max");
        CHECK_ERROR("[smtp]\nretry_max = 1h\nretry_initial = 2h\n", 3, "retry_initial");
        CHECK_ERROR("[subscription]\nconfirm_ttl = 1h\nresend_interval = 2h\n", 3,
                    "resend_interval is longer than confirm_ttl");
        CHECK_ERROR("[daemon]\npublic_socket = /run/x.sock\nadmin_socket = /run/x.sock\n", 3,
                    "must differ");
        CHECK_ERROR("[smtp]\n\nusername = news\n", 3, "username needs password_file");
        CHECK_ERROR("[dkim]\ndomain = example.org\nselector = a, b\nkey_file = /k/a.key\n", 2,
                    "[dkim]");
        /* equal durations and a pair that fits are fine */
        CHECK_GOOD("smtp", "retry_initial", "1h");

        /*
         * DAEMON BUG (conf.c, check_cross/key_line): a rule between two keys
         * is reported at the line of one fixed key; when only the other one
         * is in the file, that line is 0 and the message carries no line at
         * all ("test.conf: retry_initial is longer than retry_max"), though
         * the key that breaks the rule is on a known line of the file.
         */
        if (!CHECK_ERROR("[smtp]\n\nretry_max = 1m\n", 3, "retry_initial is longer than retry_max"))
                BUG("cross-key error without a line when only retry_max is in the file");
        if (!CHECK_ERROR("[subscription]\nconfirm_ttl = 30m\n", 2, "resend_interval is longer"))
                BUG("cross-key error without a line when only confirm_ttl is in the file");
        if (!CHECK_ERROR("[daemon]\npublic_socket = /run/newsletterd/admin.sock\n", 2, "must differ"))
                BUG("cross-key error without a line when only public_socket is in the file");
}

static void test_line_limits(void)
{
        /* a line over the limit is one error at its line; later lines count on */
        size_t big = CONFIG_LINE_MAX + 500;
        char *text = malloc(big + 200);
        REQUIRE(text != NULL);
        int n = snprintf(text, 200, "[daemon]\ndatabase = /");
        memset(text + n, 'x', big);
        n += (int)big;
        n += snprintf(text + n, 200, "\nlog_level = info\n");
        CHECK(check_error_at(text, (size_t)n, 2, "line longer than", __FILE__, __LINE__));
        n += snprintf(text + n, 200, "log_level = loud\n");    /* also a duplicate */
        struct conf c;
        struct conf_errors e;
        CHECK_INT(load(&c, &e, text, (size_t)n), 2);
        CHECK(has_error(&e, 2, "line longer than"));
        CHECK(has_error(&e, 4, "given twice (first on line 3)"));
        CHECK_STR(c.database, "/var/lib/newsletterd/newsletterd.db");   /* not half a value */
        conf_errors_free(&e);
        conf_free(&c);

        /* just under the limit: accepted whole */
        size_t path_len = CONFIG_LINE_MAX - 2 - strlen("database = ");
        n = snprintf(text, 200, "[daemon]\ndatabase = /");
        memset(text + n, 'y', path_len - 1);
        n += (int)path_len - 1;
        n += snprintf(text + n, 200, "\n");
        CHECK_INT(load(&c, &e, text, (size_t)n), 0);
        CHECK_UINT(strlen(c.database), path_len);
        conf_errors_free(&e);
        conf_free(&c);
        free(text);

        /* NUL and other control characters in a line */
        static const char nul[] = "[daemon]\nlog_level = info\0debug\n";
        CHECK(check_error_at(nul, sizeof(nul) - 1, 2, "control character", __FILE__, __LINE__));
        static const char nul2[] = "[daemon]\n\0\n";
        CHECK(check_error_at(nul2, sizeof(nul2) - 1, 2, "control character", __FILE__, __LINE__));
        CHECK_ERROR("[smtp]\n\nusername = a\x01" "b\n", 3, "control character");
        CHECK_ERROR("[smtp]\nusername = ab\x1b[0m\npassword_file = /x\n", 2, "control character");
        CHECK_ERROR("[smtp]\nusername = ab\x7f\npassword_file = /x\n", 2, "control character");
}

static void test_comments(void)
{
        static const char text[] =
                "# leading comment\n"
                "; another\n"
                "[smtp]   # after a section\n"
                "timeout = 45s    # after a value\n"
                "retry_initial = 10s ; semicolon too\n"
                "   # indented comment\n"
                "from = Team <team@example.org> # the sender\n"
                "[subscription]\n"
                "confirm_url = https://example.org/c?token={token}#frag\n";
        struct conf c;
        struct conf_errors e;
        int r = load(&c, &e, text, sizeof(text) - 1);
        if (!CHECK_INT(r, 0))
                dump_errors(&e);
        CHECK_UINT(c.timeout, 45);
        CHECK_UINT(c.retry_initial, 10);
        CHECK_STR(c.from_name, "Team");
        CHECK_STR(c.from_addr, "team@example.org");
        /* '#' without a blank before it is part of the value */
        CHECK_STR(c.confirm_url, "https://example.org/c?token={token}#frag");
        conf_errors_free(&e);
        conf_free(&c);
}

static void test_many_errors(void)
{
        /* more errors than are kept: the rest are counted, none is lost */
        char text[4096];
        size_t n = (size_t)snprintf(text, sizeof(text), "[daemon]\n");
        for (int i = 0; i < 60; i++)
                n += (size_t)snprintf(text + n, sizeof(text) - n, "bad%d = x\n", i);
        struct conf c;
        struct conf_errors e;
        int r = load(&c, &e, text, n);
        CHECK_INT(r, 60);
        CHECK_UINT(e.n, CONFIG_ERRORS_MAX);
        CHECK_UINT(e.dropped, 60 - CONFIG_ERRORS_MAX);
        CHECK(has_error(&e, 2, "unknown key \"bad0\""));
        CHECK(has_error(&e, 51, "unknown key \"bad49\""));

        char *out = NULL;
        size_t outlen = 0;
        FILE *f = open_memstream(&out, &outlen);
        REQUIRE(f != NULL);
        conf_errors_print(&e, f);
        fclose(f);
        CHECK_CONTAINS(out, NAME ":2: unknown key \"bad0\" in [daemon]\n");
        CHECK_CONTAINS(out, "(10 more errors)\n");
        free(out);
        conf_errors_free(&e);
        CHECK_UINT(e.n, 0);
        conf_free(&c);
}

/* A temporary file holding `text` with mode `mode`; the path in `path`. */
static bool temp_file(char *path, size_t size, const char *text, mode_t mode)
{
        const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(path, size, "%s/test-conf-XXXXXX", dir);
        int fd = mkstemp(path);
        if (fd < 0)
                return false;
        size_t len = strlen(text);
        bool ok = write(fd, text, len) == (ssize_t)len && fchmod(fd, mode) == 0;
        close(fd);
        return ok;
}

static void test_secrets(void)
{
        char path[4096];
        struct conf c;
        struct conf_errors e = { 0 };

        /* no password_file: nothing to read */
        conf_defaults(&c);
        CHECK_INT(conf_load_secrets(&c, &e), 0);
        CHECK(c.password == NULL);
        conf_free(&c);

        /* 0600: read, up to the line end */
        REQUIRE(temp_file(path, sizeof(path), "s3cret pass\nsecond line\n", 0600));
        conf_defaults(&c);
        free(c.password_file);
        c.password_file = strdup(path);
        CHECK_INT(conf_load_secrets(&c, &e), 0);
        CHECK_STR(c.password, "s3cret pass");
        CHECK_UINT(e.n, 0);
        /* reading again replaces it (no leak) */
        CHECK_INT(conf_load_secrets(&c, &e), 0);
        CHECK_STR(c.password, "s3cret pass");

        /* 0644 and 0640: refused, and the error names the file */
        static const mode_t modes[] = { 0644, 0640, 0604, 0444 };
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                REQUIRE(chmod(path, modes[i]) == 0);
                conf_errors_free(&e);
                free(c.password);
                c.password = NULL;
                if (!CHECK_INT(conf_load_secrets(&c, &e), 1))
                        fprintf(stderr, "    mode %04o\n", (unsigned)modes[i]);
                CHECK(c.password == NULL);
                if (CHECK_UINT(e.n, 1)) {
                        CHECK(strncmp(e.msg[0], path, strlen(path)) == 0);
                        CHECK_CONTAINS(e.msg[0], "readable by group or others");
                }
        }
        unlink(path);
        conf_errors_free(&e);

        /* a missing file and an empty one are errors too */
        CHECK_INT(conf_load_secrets(&c, &e), 1);
        CHECK_UINT(e.n, 1);
        conf_errors_free(&e);
        REQUIRE(temp_file(path, sizeof(path), "\n", 0600));
        free(c.password_file);
        c.password_file = strdup(path);
        CHECK_INT(conf_load_secrets(&c, &e), 1);
        CHECK(e.n == 1 && strstr(e.msg[0], "empty"));
        unlink(path);
        conf_errors_free(&e);
        conf_free(&c);
}

static void test_load_file(void)
{
        char path[4096];
        struct conf c;
        struct conf_errors e = { 0 };
        conf_defaults(&c);
        CHECK_INT(conf_load(&c, "/nonexistent/newsletterd.conf", &e), -ENOENT);
        CHECK_UINT(e.n, 0);
        conf_free(&c);

        REQUIRE(temp_file(path, sizeof(path), "[smtp]\ntimeout = 9s\n\nstarttls = maybe\n", 0600));
        conf_defaults(&c);
        CHECK_INT(conf_load(&c, path, &e), 1);
        CHECK_UINT(c.timeout, 9);
        char prefix[4200];
        snprintf(prefix, sizeof(prefix), "%s:4: starttls", path);
        CHECK(e.n == 1 && strncmp(e.msg[0], prefix, strlen(prefix)) == 0);
        unlink(path);
        conf_errors_free(&e);
        conf_free(&c);
}

int main(void)
{
        RUN(test_defaults);
        RUN(test_shipped_config);
        RUN(test_full);
        RUN(test_from);
        RUN(test_durations);
        RUN(test_syntax_errors);
        RUN(test_bad_values);
        RUN(test_cross_errors);
        RUN(test_line_limits);
        RUN(test_comments);
        RUN(test_many_errors);
        RUN(test_secrets);
        RUN(test_load_file);
        return unit_finish();
}
