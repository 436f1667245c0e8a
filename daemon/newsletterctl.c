/*
 * newsletterctl.c - main() of the admin CLI.  Every command is a request
 * on the admin socket; the CLI never opens the database (one writer, one
 * place where the rules are enforced).  Exit status: 0 success, 1 the
 * daemon refused or failed the operation, 2 wrong usage, 3 the daemon
 * could not be reached.  Every failure prints one line on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base64.h"
#include "bounce.h"
#include "client.h"
#include "clock.h"
#include "conf.h"
#include "csv.h"
#include "dkim.h"
#include "log.h"
#include "mime.h"
#include "promtext.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

#define DEFAULT_CONFIG "/etc/newsletterd/newsletterd.conf"
#define IMPORT_CHUNK 2000

static const char *prog = "newsletterctl";
static struct client cl;
static const char *config_path = DEFAULT_CONFIG;

struct command {
        const char *name;
        const char *usage;
        const char *help;
        int (*run)(int argc, char **argv);
};

static void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void die(int status, const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "%s: ", prog);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        client_close(&cl);
        exit(status);
}

static void connect_daemon(void)
{
        struct conf c;
        struct conf_errors errs = { 0 };
        conf_defaults(&c);
        int r = conf_load(&c, config_path, &errs);
        if (r < 0)
                die(EXIT_USAGE, "%s: %s", config_path, strerror(-r));
        if (r > 0) {
                conf_errors_print(&errs, stderr);
                conf_errors_free(&errs);
                die(EXIT_USAGE, "%s has errors", config_path);
        }
        r = client_connect(&cl, c.admin_socket, 600 * 1000);
        if (r < 0) {
                char path[4096];
                snprintf(path, sizeof(path), "%s", c.admin_socket);
                conf_free(&c);
                die(EXIT_UNREACHABLE, "cannot reach newsletterd at %s: %s", path, strerror(-r));
        }
        conf_free(&c);
}

/* Send a request (consumed) and return the answer; exits on transport
 * failure and on error answers. */
static json_t *call(json_t *req)
{
        json_t *ans = NULL;
        int r = client_call(&cl, req, &ans);
        json_decref(req);
        if (r < 0)
                die(EXIT_UNREACHABLE, "no answer from newsletterd: %s",
                    r == -EPROTO ? "malformed answer" : strerror(-r));
        const char *state = json_string_value(json_object_get(ans, "state"));
        if (!state || strcmp(state, "error") == 0) {
                const char *code = json_string_value(json_object_get(ans, "error"));
                const char *detail = json_string_value(json_object_get(ans, "detail"));
                const char *msg = json_string_value(json_object_get(ans, "message"));
                char text[1024];
                snprintf(text, sizeof(text), "%s (%s)", detail ? detail : msg ? msg : "failed",
                         code ? code : "no code");
                json_decref(ans);
                die(EXIT_REFUSED, "%s", text);
        }
        return ans;
}

static json_t *request(const char *op)
{
        json_t *o = json_object();
        json_object_set_new(o, "op", json_string(op));
        json_object_set_new(o, "lang", json_string("en"));
        return o;
}

static void print_json(json_t *v)
{
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s)
                oom();
        puts(s);
        free(s);
}

static json_int_t int_of(json_t *o, const char *key)
{
        return json_integer_value(json_object_get(o, key));
}

/* Options common to all commands: --json and --help. */
static int parse_opts(int argc, char **argv, const struct option *extra, const char *shortopts,
                      int (*on_opt)(int, const char *), bool *json)
{
        struct option opts[16];
        size_t n = 0;
        for (; extra && extra[n].name; n++)
                opts[n] = extra[n];
        opts[n++] = (struct option){ "json", no_argument, NULL, 'j' };
        opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
        opts[n] = (struct option){ 0 };
        int o;
        optind = 0;     /* 0: glibc starts over (main() used getopt already) */
        while ((o = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
                if (o == 'j' && json)
                        *json = true;
                else if (o == 'h')
                        return 'h';
                else if (o == '?' || (o == 'j' && !json) || !on_opt || on_opt(o, optarg) != 0)
                        return '?';
        }
        return 0;
}

/* ---- expire ---- */

static int expire_wait;

static int expire_opt(int o, const char *arg)
{
        if (o == 'w') {
                expire_wait = 1;
                return 0;
        }
        return -1;
}

static int cmd_expire(int argc, char **argv)
{
        static const struct option opts[] = { { "wait", no_argument, NULL, 'w' }, { 0 } };
        bool json = false;
        int r = parse_opts(argc, argv, opts, "", expire_opt, &json);
        if (r)
                return r;
        if (optind != argc)
                return '?';
        connect_daemon();
        json_t *ans = call(request("expire"));
        long long remaining = (long long)int_of(ans, "remaining");
        /* the daemon strips in the background; --wait follows it to the end,
         * looking after 10 ms first (a week's leftovers take less), then
         * twice as long each time up to every 200 ms */
        useconds_t pause = 10000;
        while (expire_wait && remaining > 0) {
                usleep(pause);
                pause = pause < 100000 ? 2 * pause : 200000;
                json_t *req = request("expire");
                json_object_set_new(req, "progress", json_true());
                json_t *p = call(req);
                remaining = (long long)int_of(p, "remaining");
                json_decref(p);
        }
        if (json) {
                json_t *o = json_pack("{sIsIsI}", "expired", int_of(ans, "expired"), "purged",
                                      int_of(ans, "purged"), "remaining", (json_int_t)remaining);
                print_json(o);
                json_decref(o);
        } else {
                printf("%lld pending sign-ups expired, %lld expired records purged%s\n",
                       (long long)int_of(ans, "expired"), (long long)int_of(ans, "purged"),
                       remaining ? " (their data is being deleted in the background)" : "");
        }
        json_decref(ans);
        return 0;
}

/* ---- import ---- */

static bool import_pending;
static bool import_welcome;
static const char *import_list;
static const char *import_lang = "de";

static int import_opt(int o, const char *arg)
{
        switch (o) {
        case 'p': import_pending = true; return 0;
        case 'w': import_welcome = true; return 0;
        case 'l': import_list = arg; return 0;
        case 'L':
                if (strcmp(arg, "de") && strcmp(arg, "en"))
                        return -1;
                import_lang = arg;
                return 0;
        }
        return -1;
}

/* Print the invalid lines the daemon reported for one chunk. */
static void report_invalid(const char *file, json_t *ans)
{
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(ans, "invalid"), i, v)
                fprintf(stderr, "%s:%lld: %s\n", file, (long long)int_of(v, "line"),
                        json_string_value(json_object_get(v, "error")));
}

static int cmd_import(int argc, char **argv)
{
        static const struct option opts[] = {
                { "pending", no_argument, NULL, 'p' },
                { "welcome", no_argument, NULL, 'w' },
                { "list", required_argument, NULL, 'l' },
                { "lang", required_argument, NULL, 'L' },
                { 0 },
        };
        bool json = false;
        int r = parse_opts(argc, argv, opts, "", import_opt, &json);
        if (r)
                return r;
        if (optind != argc - 1 || (import_pending && import_welcome))
                return '?';
        const char *file = argv[optind];
        FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
        if (!f)
                die(EXIT_REFUSED, "%s: %s", file, strerror(errno));
        connect_daemon();

        json_t *req = request("import_begin");
        json_object_set_new(req, "source", json_stringn(file, strlen(file) > 255 ? 255 : strlen(file)));
        json_object_set_new(req, "pending", json_boolean(import_pending));
        if (import_welcome)
                json_object_set_new(req, "welcome", json_true());
        json_object_set_new(req, "lang", json_string(import_lang));
        if (import_list)
                json_object_set_new(req, "list", json_string(import_list));
        json_decref(call(req));

        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        long long lineno = 0, first = 1, invalid = 0;
        json_t *lines = json_array();
        for (;;) {
                len = getline(&line, &cap, f);
                if (len >= 0) {
                        lineno++;
                        if (len && line[len - 1] == '\n')
                                len--;
                        json_t *s;
                        if ((size_t)len > CSV_LINE_MAX + 1) {
                                /* reported here; the daemon gets a blank line in its place */
                                fprintf(stderr, "%s:%lld: line too long\n", file, lineno);
                                invalid++;
                                s = json_string("");
                        } else {
                                /* NULL when not UTF-8 (JSON cannot carry it): sent as null,
                                 * which the daemon reports as such */
                                s = json_stringn(line, (size_t)len);
                        }
                        json_array_append_new(lines, s ? s : json_null());
                }
                if (json_array_size(lines) == IMPORT_CHUNK || (len < 0 && json_array_size(lines))) {
                        json_t *rows = request("import_rows");
                        json_object_set_new(rows, "first_line", json_integer(first));
                        json_object_set_new(rows, "lines", lines);
                        json_t *ans = call(rows);
                        report_invalid(file, ans);
                        invalid += (long long)json_array_size(json_object_get(ans, "invalid"));
                        json_decref(ans);
                        first = lineno + 1;
                        lines = json_array();
                }
                if (len < 0)
                        break;
        }
        json_decref(lines);
        free(line);
        if (ferror(f))
                die(EXIT_REFUSED, "%s: read error; nothing was imported", file);
        if (f != stdin)
                fclose(f);
        if (invalid) {
                json_t *abort_req = request("import_abort"), *ans = NULL;
                client_call(&cl, abort_req, &ans);
                json_decref(abort_req);
                json_decref(ans);
                die(EXIT_REFUSED, "%s: %lld invalid lines; nothing was imported", file, invalid);
        }
        /* the daemon applies the file a slice at a time between the website's
         * requests; the counts come once all of it is in (and on disk) */
        json_t *ans = call(request("import_commit"));
        useconds_t pause = 10000;
        while (!json_is_true(json_object_get(ans, "done"))) {
                usleep(pause);
                if (pause < 200000)
                        pause *= 2;
                json_decref(ans);
                ans = call(request("import_status"));
        }
        if (json) {
                json_t *o = json_pack("{sIsIsIsI}", "rows", int_of(ans, "rows"), "added",
                                      int_of(ans, "added"), "duplicates", int_of(ans, "duplicates"),
                                      "existing", int_of(ans, "existing"));
                print_json(o);
                json_decref(o);
        } else {
                printf("%s: %lld addresses, %lld added as %s, %lld duplicates in the file, "
                       "%lld already on the list\n", file, (long long)int_of(ans, "rows"),
                       (long long)int_of(ans, "added"),
                       import_pending ? "sign-ups (confirmation mails queued)" : "confirmed subscribers",
                       (long long)int_of(ans, "duplicates"), (long long)int_of(ans, "existing"));
        }
        json_decref(ans);
        return 0;
}

/* ---- stats ---- */

static bool stats_prometheus;

static int stats_opt(int o, const char *arg)
{
        if (o != 'p')
                return -1;
        stats_prometheus = true;
        return 0;
}

/* The whole answer in the Prometheus text format: a failed write exits
 * non-zero, so that `... > FILE.tmp && mv FILE.tmp FILE` keeps the last
 * good file. */
static int stats_print_prometheus(json_t *ans)
{
        struct buf b;
        buf_init(&b, 16 << 20);
        int r = promtext_format(ans, &b);
        json_decref(ans);
        if (r < 0) {
                buf_free(&b);
                die(EXIT_REFUSED, "the figures do not fit in 16 MiB");
        }
        bool ok = fwrite(b.data ? b.data : "", 1, b.len, stdout) == b.len;
        buf_free(&b);
        if (!ok || fflush(stdout) != 0)
                die(EXIT_REFUSED, "cannot write the figures: %s", strerror(errno));
        return 0;
}

static int cmd_stats(int argc, char **argv)
{
        static const struct option opts[] = { { "prometheus", no_argument, NULL, 'p' }, { 0 } };
        bool json = false;
        int r = parse_opts(argc, argv, opts, "", stats_opt, &json);
        if (r)
                return r;
        if (optind != argc || (json && stats_prometheus))
                return '?';
        connect_daemon();
        json_t *ans = call(request("stats"));
        if (stats_prometheus)
                return stats_print_prometheus(ans);
        json_t *subs = json_object_get(ans, "subscribers"), *mails = json_object_get(ans, "mails");
        if (json) {
                json_t *o = json_pack("{sOsOsOsO}", "subscribers", subs, "mails", mails, "bounces",
                                      json_object_get(ans, "bounces"), "days",
                                      json_object_get(ans, "days"));
                if (json_object_get(ans, "imap"))
                        json_object_set(o, "imap", json_object_get(ans, "imap"));
                json_t *refusing = json_object_get(ans, "refusing_domains");
                json_object_set(o, "refusing_domains", refusing ? refusing : json_array());
                print_json(o);
                json_decref(o);
                json_decref(ans);
                return 0;
        }
        printf("subscribers: %lld confirmed, %lld pending, %lld expired, %lld unsubscribed, %lld bounced\n",
               (long long)int_of(subs, "confirmed"), (long long)int_of(subs, "pending"),
               (long long)int_of(subs, "expired"), (long long)int_of(subs, "unsubscribed"),
               (long long)int_of(subs, "bounced"));
        printf("mails:       %lld queued, %lld sent, %lld deferred, %lld failed\n",
               (long long)int_of(mails, "queued"), (long long)int_of(mails, "sent"),
               (long long)int_of(mails, "deferred"), (long long)int_of(mails, "failed"));
        json_t *b = json_object_get(ans, "bounces");
        printf("reports:     %lld permanent bounces, %lld temporary, %lld complaints, %lld refused;"
               " ignored: %lld auto-replies, %lld not understood\n",
               (long long)int_of(b, "permanent"), (long long)int_of(b, "temporary"),
               (long long)int_of(b, "complaints"), (long long)int_of(b, "refused"),
               (long long)int_of(b, "autoreplies"), (long long)int_of(b, "not_understood"));
        printf("             %lld refusals of our mails by the receiver (no subscriber changed)\n",
               (long long)int_of(b, "sender"));
        size_t di;
        json_t *dom;
        json_array_foreach(json_object_get(ans, "refusing_domains"), di, dom) {
                char last[32] = "";
                time_t t = (time_t)int_of(dom, "last");
                struct tm tm;
                if (t && gmtime_r(&t, &tm))
                        strftime(last, sizeof(last), "%Y-%m-%d %H:%M UTC", &tm);
                printf("refusing:    %s refused %lld of our mails in the last 24 hours (%s), last %s\n",
                       json_string_value(json_object_get(dom, "domain")), (long long)int_of(dom, "count"),
                       json_string_value(json_object_get(dom, "reason")), last);
        }
        json_t *im = json_object_get(ans, "imap");
        if (im) {
                char when[32] = "never";
                time_t t = (time_t)int_of(im, "last_poll");
                struct tm tm;
                if (t && gmtime_r(&t, &tm))
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
                const char *err = json_string_value(json_object_get(im, "last_error"));
                printf("mailbox:     last poll %s; %lld handled, %lld not understood and %lld refused"
                       " (left unseen), %lld seen before; %lld failed polls%s%s\n",
                       when, (long long)int_of(im, "handled"), (long long)int_of(im, "not_understood"),
                       (long long)int_of(im, "refused"), (long long)int_of(im, "skipped"),
                       (long long)int_of(im, "failures"),
                       err && *err ? ", last error: " : "", err && *err ? err : "");
        }
        printf("\n%-10s  %8s  %13s\n", "day (UTC)", "sign-ups", "confirmations");
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(ans, "days"), i, d)
                printf("%-10s  %8lld  %13lld\n", json_string_value(json_object_get(d, "date")),
                       (long long)int_of(d, "signups"), (long long)int_of(d, "confirmations"));
        json_decref(ans);
        return 0;
}

/* ---- export / erase ---- */

static json_t *address_call(const char *op, int argc, char **argv, bool *json, int *rc)
{
        *rc = parse_opts(argc, argv, NULL, "", NULL, json);
        if (*rc)
                return NULL;
        if (optind != argc - 1) {
                *rc = '?';
                return NULL;
        }
        connect_daemon();
        json_t *req = request(op);
        json_t *email = json_string(argv[optind]);
        if (!email)
                die(EXIT_USAGE, "the address is not valid UTF-8");
        json_object_set_new(req, "email", email);
        json_t *ans = call(req);
        if (!json_is_true(json_object_get(ans, "found"))) {
                json_decref(ans);
                die(EXIT_REFUSED, "no subscriber with the address %s", argv[optind]);
        }
        return ans;
}

static int cmd_export(int argc, char **argv)
{
        bool json = true;
        int rc;
        json_t *ans = address_call("export", argc, argv, &json, &rc);
        if (!ans)
                return rc;
        print_json(json_object_get(ans, "export"));
        json_decref(ans);
        return 0;
}

static int cmd_erase(int argc, char **argv)
{
        bool json = false;
        int rc;
        json_t *ans = address_call("erase", argc, argv, &json, &rc);
        if (!ans)
                return rc;
        if (json)
                puts("{\"erased\": true}");
        else
                printf("erased everything stored about %s\n", argv[optind]);
        json_decref(ans);
        return 0;
}


/* ---- newsletter issues ---- */

#define BODY_MAX (4u << 20)

static char *read_text_file(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                die(EXIT_REFUSED, "%s: %s", path, strerror(errno));
        struct buf b;
        buf_init(&b, BODY_MAX);
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (!buf_append(&b, chunk, n))
                        die(EXIT_REFUSED, "%s: larger than %u bytes", path, BODY_MAX);
        if (ferror(f))
                die(EXIT_REFUSED, "%s: read error", path);
        fclose(f);
        return buf_steal(&b, NULL);
}

static json_t *text_of(const char *path)
{
        char *t = read_text_file(path);
        json_t *j = json_string(t);
        free(t);
        if (!j)
                die(EXIT_REFUSED, "%s: not UTF-8 text", path);
        return j;
}

/* A Markdown file: UTF-8, or a clear error naming the first bad byte. */
static json_t *markdown_of(const char *path)
{
        char *t = read_text_file(path);
        size_t n = strlen(t);
        if (!mime_utf8_valid(t, n)) {
                /* the longest valid prefix ends where the bad byte starts */
                size_t lo = 0, hi = n;
                while (lo < hi) {
                        size_t mid = lo + (hi - lo + 1) / 2;
                        if (mime_utf8_valid(t, mid))
                                lo = mid;
                        else
                                hi = mid - 1;
                }
                die(EXIT_REFUSED, "%s: not UTF-8 (a bad byte near offset %zu); nothing was queued", path, lo);
        }
        json_t *j = json_string(t);
        free(t);
        if (!j)
                die(EXIT_REFUSED, "%s: not UTF-8 text", path);
        return j;
}

static const char *send_subject, *send_text, *send_html, *send_list, *send_test, *send_markdown,
                  *send_at, *preview_to, *preview_out;
static bool send_wait, send_no_archive;

static int send_opt(int o, const char *arg)
{
        switch (o) {
        case 's': send_subject = arg; return 0;
        case 't': send_text = arg; return 0;
        case 'H': send_html = arg; return 0;
        case 'l': send_list = arg; return 0;
        case 'w': send_wait = true; return 0;
        case 'T': send_test = arg; return 0;
        case 'm': send_markdown = arg; return 0;
        case 'a': send_at = arg; return 0;
        case 'N': send_no_archive = true; return 0;
        case 'o': preview_to = arg; return 0;
        case 'O': preview_out = arg; return 0;
        }
        return -1;
}

/* subject and bodies, as send and preview name them */
static void issue_fields(json_t *req)
{
        json_t *subject = json_string(send_subject);
        if (!subject)
                die(EXIT_USAGE, "the subject is not valid UTF-8");
        json_object_set_new(req, "subject", subject);
        if (send_markdown) {
                json_object_set_new(req, "markdown", markdown_of(send_markdown));
        } else {
                json_object_set_new(req, "text", text_of(send_text));
                if (send_html)
                        json_object_set_new(req, "html", text_of(send_html));
        }
        if (send_list)
                json_object_set_new(req, "list", json_string(send_list));
}

static json_t *status_of(long long issue, bool failures)
{
        json_t *req = request("status");
        json_object_set_new(req, "issue", json_integer(issue));
        if (failures)
                json_object_set_new(req, "failures", json_true());
        return call(req);
}

static double mono_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A status call that survives a restart of the daemon (it resumes the
 * issue by itself): reconnect for up to a minute. */
static json_t *status_patient(long long issue)
{
        for (int tries = 0;; tries++) {
                json_t *req = request("status"), *ans = NULL;
                json_object_set_new(req, "issue", json_integer(issue));
                int r = cl.fd >= 0 ? client_call(&cl, req, &ans) : -ENOTCONN;
                json_decref(req);
                if (r == 0) {
                        const char *state = json_string_value(json_object_get(ans, "state"));
                        if (state && strcmp(state, "ok") == 0)
                                return ans;
                        json_decref(ans);
                        die(EXIT_REFUSED, "status of issue %lld refused", issue);
                }
                if (tries >= 60)
                        die(EXIT_UNREACHABLE, "lost newsletterd and could not reach it again: %s", strerror(-r));
                client_close(&cl);
                sleep(1);
                struct conf c;
                struct conf_errors errs = { 0 };
                conf_defaults(&c);
                if (conf_load(&c, config_path, &errs) == 0)
                        client_connect(&cl, c.admin_socket, 600 * 1000);
                conf_errors_free(&errs);
                conf_free(&c);
        }
}

/* Follow an issue until every recipient has a final state. */
static int wait_issue(long long issue)
{
        bool tty = isatty(STDERR_FILENO);
        double start = mono_s(), last_print = 0;
        long long first_sent = -1, last_line = -1;
        for (;;) {
                json_t *st = status_patient(issue);
                long long total = int_of(st, "total"), sent = int_of(st, "sent"),
                          queued = int_of(st, "queued"), deferred = int_of(st, "deferred"),
                          failed = int_of(st, "failed"), skipped = int_of(st, "skipped");
                bool finished = json_is_true(json_object_get(st, "finished"));
                json_decref(st);
                double now = mono_s();
                if (first_sent < 0)
                        first_sent = sent;
                double rate = now > start ? (double)(sent - first_sent) / (now - start) : 0;
                long long remaining = queued + deferred;
                long long eta = rate > 0 ? (long long)((double)remaining / rate) : -1;
                long long done = sent + failed + skipped;
                if (tty) {
                        int width = 30, fill = total ? (int)(width * done / total) : width;
                        char bar[64];
                        for (int i = 0; i < width; i++)
                                bar[i] = i < fill ? '#' : '.';
                        bar[width] = '\0';
                        char etas[32] = "--:--";
                        if (eta >= 0)
                                snprintf(etas, sizeof(etas), "%lld:%02lld", eta / 60, eta % 60);
                        fprintf(stderr, "\r[%s] %3lld%%  sent %lld  deferred %lld  failed %lld  remaining %lld"
                                "  %.0f/s  ETA %s ", bar, total ? 100 * done / total : 100, sent, deferred,
                                failed, remaining, rate, etas);
                } else if (finished || (done != last_line && now - last_print >= 2)) {
                        fprintf(stderr, "issue %lld: %lld of %lld done: sent %lld, deferred %lld, failed %lld, "
                                "remaining %lld, %.0f/s\n", issue, done, total, sent, deferred, failed,
                                remaining, rate);
                        last_print = now;
                        last_line = done;
                }
                if (finished) {
                        if (tty)
                                fputc('\n', stderr);
                        if (failed) {
                                json_t *f = status_of(issue, true);
                                size_t i;
                                json_t *v;
                                json_array_foreach(json_object_get(f, "failures"), i, v)
                                        fprintf(stderr, "failed: %s: %s\n",
                                                json_string_value(json_object_get(v, "email")),
                                                json_string_value(json_object_get(v, "reply")));
                                json_decref(f);
                                die(EXIT_REFUSED, "issue %lld: %lld of %lld recipients failed", issue,
                                    failed, total);
                        }
                        return 0;
                }
                usleep(tty ? 250000 : 500000);
        }
}

/* What send and preview share: the issue's options (send_opt) and their
 * rule: a subject, and either a text (with an optional HTML) or Markdown. */
#define ISSUE_OPTIONS \
        { "subject", required_argument, NULL, 's' }, \
        { "text", required_argument, NULL, 't' }, \
        { "html", required_argument, NULL, 'H' }, \
        { "markdown", required_argument, NULL, 'm' }, \
        { "list", required_argument, NULL, 'l' }

static bool issue_options_ok(void)
{
        return send_subject && !send_text != !send_markdown && !(send_markdown && send_html);
}

static int cmd_send(int argc, char **argv)
{
        static const struct option opts[] = {
                ISSUE_OPTIONS,
                { "wait", no_argument, NULL, 'w' },
                { "test", required_argument, NULL, 'T' },
                { "at", required_argument, NULL, 'a' },
                { "no-archive", no_argument, NULL, 'N' },
                { 0 },
        };
        int r = parse_opts(argc, argv, opts, "", send_opt, NULL);
        if (r)
                return r;
        if (optind != argc || !issue_options_ok())
                return '?';
        int64_t at = 0;
        if (send_at && clock_parse_time(send_at, &at) != 0)
                die(EXIT_USAGE, "--at \"%s\": not a time (RFC 3339, as 2026-12-07T08:00:00+01:00, or"
                    " YYYY-MM-DD HH:MM in local time)", send_at);
        json_t *req = request("send");
        issue_fields(req);
        if (send_test)
                json_object_set_new(req, "test", json_string(send_test));
        if (send_at)
                json_object_set_new(req, "at", json_integer(at));
        if (send_no_archive)
                json_object_set_new(req, "archive", json_false());
        connect_daemon();
        json_t *ans = call(req);
        long long issue = (long long)int_of(ans, "issue");
        printf("%lld\n", issue);
        const char *when = json_string_value(json_object_get(ans, "scheduled"));
        if (when)
                fprintf(stderr, "issue %lld scheduled for %s\n", issue, when);
        fflush(stdout);
        json_decref(ans);
        return send_wait ? wait_issue(issue) : 0;
}

static int cmd_preview(int argc, char **argv)
{
        static const struct option opts[] = {
                ISSUE_OPTIONS,
                { "to", required_argument, NULL, 'o' },
                { "out", required_argument, NULL, 'O' },
                { 0 },
        };
        int r = parse_opts(argc, argv, opts, "", send_opt, NULL);
        if (r)
                return r;
        if (optind != argc || !issue_options_ok())
                return '?';
        json_t *req = request("preview");
        issue_fields(req);
        if (preview_to)
                json_object_set_new(req, "to", json_string(preview_to));
        connect_daemon();
        json_t *ans = call(req);
        json_t *eml = json_object_get(ans, "eml");
        FILE *f = stdout;
        if (preview_out && !(f = fopen(preview_out, "we")))
                die(EXIT_REFUSED, "%s: %s", preview_out, strerror(errno));
        if (fwrite(json_string_value(eml), 1, json_string_length(eml), f) != json_string_length(eml) ||
            (f != stdout && fclose(f) != 0) || (f == stdout && fflush(f) != 0))
                die(EXIT_REFUSED, "%s: write error", preview_out ? preview_out : "stdout");
        if (preview_out)
                fprintf(stderr, "preview for %s written to %s (nothing was sent)\n",
                        json_string_value(json_object_get(ans, "to")), preview_out);
        json_decref(ans);
        return 0;
}

static long long issue_arg(const char *s)
{
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end || v <= 0)
                die(EXIT_USAGE, "\"%s\" is not an issue number", s);
        return v;
}

static int publish_op(const char *op, int argc, char **argv)
{
        int r = parse_opts(argc, argv, NULL, "", NULL, NULL);
        if (r)
                return r;
        if (optind != argc - 1)
                return '?';
        json_t *req = request(op);
        json_object_set_new(req, "issue", json_integer(issue_arg(argv[optind])));
        connect_daemon();
        json_t *ans = call(req);
        bool published = json_is_true(json_object_get(ans, "published"));
        printf("issue %lld: %s\n", (long long)int_of(ans, "issue"),
               !published ? "not in the archive" :
               json_is_true(json_object_get(ans, "in_archive")) ? "in the archive" :
               "in the archive once it has finished sending");
        json_decref(ans);
        return 0;
}

static int cmd_publish(int argc, char **argv)
{
        return publish_op("publish", argc, argv);
}

static int cmd_unpublish(int argc, char **argv)
{
        return publish_op("unpublish", argc, argv);
}

static bool status_failed;

static int status_opt(int o, const char *arg)
{
        if (o == 'f') {
                status_failed = true;
                return 0;
        }
        return -1;
}

static int cmd_status(int argc, char **argv)
{
        static const struct option opts[] = { { "failed", no_argument, NULL, 'f' }, { 0 } };
        bool json = false;
        int r = parse_opts(argc, argv, opts, "", status_opt, &json);
        if (r)
                return r;
        if (optind < argc - 1)
                return '?';
        json_t *req = request("status");
        if (optind == argc - 1)
                json_object_set_new(req, "issue", json_integer(issue_arg(argv[optind])));
        if (status_failed)
                json_object_set_new(req, "failures", json_true());
        connect_daemon();
        json_t *ans = call(req);
        if (json) {
                json_t *o = json_pack("{sIsIsIsIsIsIsIsIsIsb}", "issue", int_of(ans, "issue"),
                                      "total", int_of(ans, "total"), "queued", int_of(ans, "queued"),
                                      "sent", int_of(ans, "sent"), "deferred", int_of(ans, "deferred"),
                                      "failed", int_of(ans, "failed"), "skipped", int_of(ans, "skipped"),
                                      "bounced", int_of(ans, "bounced"),
                                      "complaints", int_of(ans, "complaints"),
                                      "finished", json_is_true(json_object_get(ans, "finished")));
                json_object_set(o, "issue_state", json_object_get(ans, "issue_state"));
                if (json_object_get(ans, "send_at"))
                        json_object_set(o, "send_at", json_object_get(ans, "send_at"));
                json_object_set(o, "in_archive", json_object_get(ans, "in_archive"));
                if (status_failed)
                        json_object_set(o, "failures", json_object_get(ans, "failures"));
                print_json(o);
                json_decref(o);
        } else {
                const char *send_at_s = json_string_value(json_object_get(ans, "send_at"));
                const char *state_s = json_string_value(json_object_get(ans, "issue_state"));
                printf("issue %lld%s \"%s\": %s%s%s%s%s\n", (long long)int_of(ans, "issue"),
                       json_is_true(json_object_get(ans, "test")) ? " (test)" : "",
                       json_string_value(json_object_get(ans, "subject")), state_s,
                       send_at_s && strcmp(state_s, "scheduled") == 0 ? " for " : "",
                       send_at_s && strcmp(state_s, "scheduled") == 0 ? send_at_s : "",
                       json_is_true(json_object_get(ans, "finished")) ? ", finished" : "",
                       json_is_true(json_object_get(ans, "in_archive")) ? ", in the archive" : "");
                printf("  total %lld: sent %lld, queued %lld, deferred %lld, failed %lld, skipped %lld;"
                       " bounced %lld, complaints %lld\n",
                       (long long)int_of(ans, "total"), (long long)int_of(ans, "sent"),
                       (long long)int_of(ans, "queued"), (long long)int_of(ans, "deferred"),
                       (long long)int_of(ans, "failed"), (long long)int_of(ans, "skipped"),
                       (long long)int_of(ans, "bounced"), (long long)int_of(ans, "complaints"));
                size_t i;
                json_t *v;
                /* suppressed: the relay said the address is dead, it gets no more mail */
                json_array_foreach(json_object_get(ans, "failures"), i, v) {
                        const char *cls = json_string_value(json_object_get(v, "class"));
                        const char *why = json_string_value(json_object_get(v, "reason"));
                        printf("  %s: %s: %s (%s, %s)\n",
                               json_is_true(json_object_get(v, "suppressed")) ? "suppressed" : "failed",
                               json_string_value(json_object_get(v, "email")),
                               json_string_value(json_object_get(v, "reply")), cls ? cls : "none",
                               why ? why : "undefined");
                }
        }
        json_decref(ans);
        return 0;
}

static int issue_op(const char *op, int argc, char **argv)
{
        int r = parse_opts(argc, argv, NULL, "", NULL, NULL);
        if (r)
                return r;
        if (optind != argc - 1)
                return '?';
        json_t *req = request(op);
        json_object_set_new(req, "issue", json_integer(issue_arg(argv[optind])));
        connect_daemon();
        json_t *ans = call(req);
        printf("issue %lld: %s (%lld mails)\n", (long long)int_of(ans, "issue"),
               json_string_value(json_object_get(ans, "issue_state")), (long long)int_of(ans, "mails"));
        json_decref(ans);
        return 0;
}

static int cmd_pause(int argc, char **argv)
{
        return issue_op("pause", argc, argv);
}

static int cmd_resume(int argc, char **argv)
{
        return issue_op("resume", argc, argv);
}

static int cmd_cancel(int argc, char **argv)
{
        return issue_op("cancel", argc, argv);
}


/* ---- dkim-keygen (local: no daemon involved) ---- */

static const char *kg_selector, *kg_domain, *kg_key;
static bool kg_ed25519;

static int keygen_opt(int o, const char *arg)
{
        switch (o) {
        case 's': kg_selector = arg; return 0;
        case 'd': kg_domain = arg; return 0;
        case 'k': kg_key = arg; return 0;
        case 'e': kg_ed25519 = true; return 0;
        }
        return -1;
}

static int cmd_dkim_keygen(int argc, char **argv)
{
        static const struct option opts[] = {
                { "selector", required_argument, NULL, 's' },
                { "domain", required_argument, NULL, 'd' },
                { "key", required_argument, NULL, 'k' },
                { "ed25519", no_argument, NULL, 'e' },
                { 0 },
        };
        int r = parse_opts(argc, argv, opts, "", keygen_opt, NULL);
        if (r)
                return r;
        if (optind != argc || !kg_selector)
                return '?';
        for (const char *p = kg_selector; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '-'))
                        die(EXIT_USAGE, "the selector must be letters, digits and '-'");
        struct conf c;
        struct conf_errors errs = { 0 };
        conf_defaults(&c);
        if (!kg_domain && conf_load(&c, config_path, &errs) < 0)
                die(EXIT_USAGE, "%s: cannot be read; name the domain with --domain", config_path);
        conf_errors_free(&errs);
        char domain[256], path[4096];
        snprintf(domain, sizeof(domain), "%s", kg_domain ? kg_domain :
                 *c.dkim_domain ? c.dkim_domain : c.from_domain);
        conf_free(&c);
        if (kg_key) {
                snprintf(path, sizeof(path), "%s", kg_key);
        } else {
                if (mkdir("/etc/newsletterd/dkim", 0700) < 0 && errno != EEXIST)
                        die(EXIT_REFUSED, "/etc/newsletterd/dkim: %s; name the file with --key", strerror(errno));
                snprintf(path, sizeof(path), "/etc/newsletterd/dkim/%s.key", kg_selector);
        }
        char txt[DKIM_TXT_MAX], err[300];
        r = dkim_keygen(path, kg_ed25519, txt, sizeof(txt), err, sizeof(err));
        if (r != 0)
                die(EXIT_REFUSED, "%s: %s", path, err);
        printf("# %s key written to %s (mode 0600). Publish this record:\n",
               kg_ed25519 ? "Ed25519" : "RSA 2048", path);
        /* DNS strings hold at most 255 bytes each: longer records are split */
        printf("%s._domainkey.%s. IN TXT (", kg_selector, domain);
        for (size_t i = 0, n = strlen(txt); i < n; i += 250)
                printf(" \"%.*s\"", (int)(n - i < 250 ? n - i : 250), txt + i);
        printf(" )\n# and sign with it in newsletterd.conf (then: systemctl reload newsletterd):\n"
               "# [dkim]\n# domain = %s\n# selector = %s\n# key_file = %s\n", domain, kg_selector, path);
        return 0;
}

/* ---- bounce (from an MTA's pipe) ---- */

/* sysexits.h EX_TEMPFAIL: the MTA keeps the message and tries again later */
#define EXIT_TEMPFAIL 75

static bool bounce_explain;

static int bounce_opt(int o, const char *arg)
{
        if (o != 'x')
                return -1;
        bounce_explain = true;
        return 0;
}

static int cmd_bounce(int argc, char **argv)
{
        static const struct option opts[] = { { "explain", no_argument, NULL, 'x' }, { 0 } };
        int r = parse_opts(argc, argv, opts, "", bounce_opt, NULL);
        if (r)
                return r;
        if (optind != argc)
                return '?';
        struct buf in;
        buf_init(&in, BOUNCE_MSG_MAX);
        char chunk[65536];
        size_t n;
        bool too_large = false;
        /* a larger message is read to its end all the same (the MTA wants
         * it consumed) and only counted by the daemon */
        while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
                if (!too_large && !buf_append(&in, chunk, n))
                        too_large = true;
        if (ferror(stdin))
                die(EXIT_TEMPFAIL, "could not read the message");
        json_t *req = request("bounce");
        if (bounce_explain)
                json_object_set_new(req, "explain", json_true());
        if (too_large) {
                json_object_set_new(req, "too_large", json_true());
        } else {
                char *b64 = xmalloc(base64_encoded_len(in.len, 0) + 1);
                size_t len = base64_encode(in.data ? in.data : "", in.len, b64, 0);
                json_object_set_new(req, "message", json_stringn(b64, len));
                free(b64);
        }
        buf_free(&in);

        /* an MTA retries on EX_TEMPFAIL: use it whenever the daemon cannot be asked */
        struct conf c;
        struct conf_errors errs = { 0 };
        conf_defaults(&c);
        if (conf_load(&c, config_path, &errs) != 0) {
                conf_errors_free(&errs);
                json_decref(req);
                die(EXIT_TEMPFAIL, "%s cannot be read", config_path);
        }
        r = client_connect(&cl, c.admin_socket, 120 * 1000);
        conf_free(&c);
        if (r < 0) {
                json_decref(req);
                die(EXIT_TEMPFAIL, "cannot reach newsletterd: %s", strerror(-r));
        }
        json_t *ans = NULL;
        r = client_call(&cl, req, &ans);
        json_decref(req);
        if (r < 0)
                die(EXIT_TEMPFAIL, "no answer from newsletterd: %s", strerror(-r));
        const char *state = json_string_value(json_object_get(ans, "state"));
        if (!state || strcmp(state, "ok") != 0) {
                const char *detail = json_string_value(json_object_get(ans, "detail"));
                const char *code = json_string_value(json_object_get(ans, "error"));
                char text[512];
                snprintf(text, sizeof(text), "the daemon did not take the message (%s): %s",
                         code ? code : "error", detail ? detail : "refused");
                json_decref(ans);
                /* not consumed: the MTA keeps it and tries again (a
                 * refusal here is a set-up fault, e.g. admin_socket naming
                 * the public socket, that an admin fixes); any other exit
                 * status would return it to a sender that may be forged */
                die(EXIT_TEMPFAIL, "%s", text);
        }
        if (bounce_explain) {
                json_t *o = json_pack("{sOsOsOsOsOsO}", "class", json_object_get(ans, "class"),
                                      "reason", json_object_get(ans, "reason_code"),
                                      "recipient", json_object_get(ans, "recipient"),
                                      "status", json_object_get(ans, "status"),
                                      "verp", json_object_get(ans, "verp"),
                                      "issue", json_object_get(ans, "issue"));
                const char *st = json_string_value(json_object_get(o, "status"));
                if (!st || !*st)
                        json_object_set_new(o, "status", json_null());
                char *line = json_dumps(o, JSON_COMPACT);
                printf("%s\n", line);
                free(line);
                json_decref(o);
                json_decref(ans);
                return 0;
        }
        /* a refused report is consumed too: returned, it would only come back;
         * and so is anything else (returned, it would go to a sender that may
         * be forged: backscatter) */
        const char *action = json_string_value(json_object_get(ans, "action"));
        if (action && strcmp(action, "refused") == 0)
                printf("%s report refused, nothing changed: %s\n",
                       json_string_value(json_object_get(ans, "kind")),
                       json_string_value(json_object_get(ans, "reason")));
        else if (action && strcmp(action, "ignored") == 0)
                printf("message ignored, nothing changed: %s\n",
                       json_string_value(json_object_get(ans, "reason")));
        else
                printf("%s report for mail %lld: subscriber %s\n",
                       json_string_value(json_object_get(ans, "kind")), (long long)int_of(ans, "mail"),
                       action);
        json_decref(ans);
        return 0;
}

static const struct command commands[] = {
        { "expire", "expire [--wait] [--json]",
          "Expires pending sign-ups whose confirmation mail is older than confirm_ttl:\n"
          "their address, name and consent record are deleted, only the list, the dates\n"
          "and the token hashes stay so that a late click still answers \"expired\".\n"
          "Expired records older than expired_retention are purged. Prints how many.\n"
          "The deleting runs in the daemon in the background, in slices that never\n"
          "stall the website (the daemon also starts it every minute by itself);\n"
          "--wait returns only when it is done. For cron or newsletterd-expire.timer.", cmd_expire },
        { "import", "import FILE [--pending | --welcome] [--list L] [--lang de|en] [--json]",
          "Imports a CSV file of \"email[,name]\" lines (UTF-8, header line optional, FILE -\n"
          "reads stdin). Without --pending the addresses become confirmed subscribers\n"
          "(their consent was given elsewhere; recorded as import:FILE); with --pending\n"
          "each becomes a sign-up that gets a confirmation mail in --lang. One\n"
          "transaction: if any line is invalid, each is reported as FILE:LINE and nothing\n"
          "is imported. Duplicates and addresses already on the list are counted.\n"
          "--welcome: each confirmed subscriber added gets the welcome mail (in --lang);\n"
          "without it imported subscribers get none.", cmd_import },
        { "send", "send --subject S (--text FILE [--html FILE] | --markdown FILE) [--list L] [--at TIME]\n"
          "     [--no-archive] [--wait] [--test ADDRESS]",
          "Queues a newsletter issue to every confirmed subscriber of the list (default:\n"
          "the first of lists) and prints the issue number alone on the first line. The\n"
          "recipients are fixed now: who confirms later does not get it, who unsubscribes\n"
          "before their mail goes out does not get it. Bodies are UTF-8 files;\n"
          "{{unsubscribe_url}}, {{name}} and {{list}} are filled per recipient (escaped in\n"
          "HTML); without {{unsubscribe_url}} the link is added at the end. Every mail\n"
          "carries List-Unsubscribe (one click, RFC 8058). --wait follows the issue with\n"
          "a progress bar (plain lines when stderr is no terminal) and exits 0 only if\n"
          "every recipient was accepted by the relay. --test ADDRESS sends one copy to\n"
          "that address only, as an issue of its own that is not sent to the list.\n"
          "--markdown FILE: the body in CommonMark instead; the text part is the source,\n"
          "the HTML part its rendering in a plain mail layout (raw HTML in the source is\n"
          "left out). --at TIME (RFC 3339, or YYYY-MM-DD HH:MM local time) queues it now\n"
          "and sends from TIME: the recipients are those confirmed at TIME; status shows\n"
          "it scheduled; cancel before TIME sends nothing; a daemon that was down at TIME\n"
          "sends when it starts. Once it has finished sending the issue is published to\n"
          "the archive (the website's /archive) unless --no-archive.", cmd_send },
        { "preview", "preview --subject S (--text FILE [--html FILE] | --markdown FILE) [--list L]\n"
          "     [--to ADDRESS] [--out FILE]",
          "Writes the mail exactly as one subscriber would get it (headers, both parts,\n"
          "the DKIM signature when [dkim] is set) as an .eml to FILE or stdout, and sends\n"
          "and stores nothing. For --to ADDRESS when that is a confirmed subscriber of\n"
          "the list (their name and language), else for that address as a test send;\n"
          "without --to for the list's first confirmed subscriber. The unsubscribe link\n"
          "carries a token that is stored nowhere: it unsubscribes no one.", cmd_preview },
        { "publish", "publish ISSUE",
          "Puts an issue into the archive (shown once it has finished sending).", cmd_publish },
        { "unpublish", "unpublish ISSUE", "Takes an issue out of the archive.", cmd_unpublish },
        { "status", "status [ISSUE] [--failed] [--json]",
          "Counts of an issue (default: the latest): total, sent, queued, deferred,\n"
          "failed, skipped. --failed lists failed recipients with the relay's reply,\n"
          "each marked suppressed (the relay said the address is dead: the subscriber\n"
          "was bounced, as for a DSN) or failed (the subscriber stays).", cmd_status },
        { "pause", "pause ISSUE", "Stops sending an issue; mails already handed to the relay finish.", cmd_pause },
        { "resume", "resume ISSUE", "Continues a paused issue.", cmd_resume },
        { "cancel", "cancel ISSUE", "Stops an issue for good: its waiting mails are skipped.", cmd_cancel },
        { "stats", "stats [--json | --prometheus]",
          "Subscribers by state, mails by state, and sign-ups and confirmations per day\n"
          "for the last 30 days. --prometheus prints every figure in the Prometheus text\n"
          "format (metrics newsletterd_*, for node_exporter's textfile collector; write\n"
          "it to a temporary file in the collector's directory, then rename it).", cmd_stats },
        { "dkim-keygen", "dkim-keygen --selector S [--ed25519] [--domain D] [--key FILE]",
          "Generates a DKIM key (RSA 2048, or Ed25519) and writes it to FILE (default\n"
          "/etc/newsletterd/dkim/S.key) with mode 0600, never over an existing file; prints\n"
          "the DNS TXT record to publish at S._domainkey.D (D: [dkim] domain, else the\n"
          "domain of from) and the [dkim] lines for the config. Publish the record before\n"
          "signing with the key. Ed25519 is smaller, but not every receiver checks it:\n"
          "sign with both (two selectors) to be safe. The key belongs to whoever runs\n"
          "this: run as root, hand it to the daemon's user afterwards (chown\n"
          "newsletterd: FILE, keeping mode 0600), or the daemon cannot read it.", cmd_dkim_keygen },
        { "bounce", "bounce [--explain] < MESSAGE",
          "Reads one bounce (RFC 3464 delivery status notification or a plain\n"
          "non-delivery report) or complaint (ARF) from stdin, as an MTA's pipe\n"
          "transport delivers it to the [bounce] return_path address, and sorts it into\n"
          "a class with a reason. A dead address (permanent) suppresses the subscriber\n"
          "(bounced: no further mail), temporary ones are counted ([bounce]\n"
          "temporary_limit within temporary_window suppress too), a refusal of us\n"
          "(sender: blocklists, spam, policy) changes no subscriber and is counted per\n"
          "receiving domain, a complaint unsubscribes. --explain prints one JSON line\n"
          "{class, reason, recipient, status, verp, issue} and changes nothing. With return_path set, a report that came to no\n"
          "VERP address with a valid tag of a mail to the recipient it names is refused:\n"
          "nothing changes, it is counted (stats: refused). A message that is no report\n"
          "of ours (an auto-reply - Auto-Submitted: auto-replied, X-Autoreply,\n"
          "X-Autorespond, Precedence: auto_reply -, spam, a report about no mail or\n"
          "subscriber of ours, one larger than 10 MiB) is ignored: nothing changes, it is\n"
          "counted (stats: auto-replies, not understood) and logged. Exit 0 for every\n"
          "message the daemon took (an MTA returns the input of a pipe that fails, to a\n"
          "sender that may be forged); 75 (EX_TEMPFAIL: the MTA keeps it and tries\n"
          "again) when the daemon cannot be reached, does not take the message (a\n"
          "set-up fault such as admin_socket naming the public socket) or the message\n"
          "cannot be read.", cmd_bounce },
        { "export", "export EMAIL",
          "Prints as JSON everything stored about the address: subscriptions, the consent\n"
          "record, mails, token dates (GDPR Art. 15).", cmd_export },
        { "erase", "erase EMAIL [--json]",
          "Deletes everything stored about the address, queued mails included, and folds\n"
          "the database's write-ahead log so no copy remains (GDPR Art. 17). A later\n"
          "sign-up starts over.", cmd_erase },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
        fprintf(f, "usage: %s [-c FILE] COMMAND [ARGS]\n\n"
                   "Administers a running newsletterd over its admin socket (admin_socket in the\n"
                   "config, default %s).\n\ncommands:\n", prog, DEFAULT_CONFIG);
        for (size_t i = 0; i < N_COMMANDS; i++)
                fprintf(f, "  %s\n", commands[i].usage);
        fprintf(f, "\n%s COMMAND --help explains one.\n"
                   "Exit status: 0 done, 1 refused or failed, 2 wrong usage, 3 daemon unreachable.\n",
                prog);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int o;
        cl.fd = -1;
        while ((o = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
                switch (o) {
                case 'c': config_path = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        const char *name = argv[optind];
        if (strcmp(name, "help") == 0) {
                usage(stdout);
                return 0;
        }
        for (size_t i = 0; i < N_COMMANDS; i++) {
                if (strcmp(commands[i].name, name) != 0)
                        continue;
                int r = commands[i].run(argc - optind, argv + optind);
                client_close(&cl);
                if (r == 'h') {
                        printf("usage: %s [-c FILE] %s\n\n%s\n", prog, commands[i].usage, commands[i].help);
                        return 0;
                }
                if (r == '?') {
                        fprintf(stderr, "usage: %s [-c FILE] %s\n", prog, commands[i].usage);
                        return EXIT_USAGE;
                }
                return r;
        }
        fprintf(stderr, "%s: unknown command \"%s\"\n", prog, name);
        usage(stderr);
        return EXIT_USAGE;
}
