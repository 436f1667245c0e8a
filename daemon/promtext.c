/*
 * promtext.c - the figures of `stats` in the Prometheus text exposition
 * format (0.0.4), for node_exporter's textfile collector.
 *
 * Owns: the mapping from the stats JSON to metric families (generic over
 * the JSON, see promtext.h; the table below only adds labels and HELP
 * texts), the escaping of names, label values and HELP texts.
 * Never: does I/O, prints a family twice (a name already used is skipped:
 * the collector refuses the whole file otherwise), writes timestamps (the
 * textfile collector refuses them).
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "promtext.h"

#define NAME_MAX_LEN 200        /* a longer metric name or path is skipped */
#define MEMBERS_MAX 64          /* members of array elements looked at */

/* Families with something to say beyond the default: an object of
 * numbers under `name` is one family labelled `label`; `help` is the HELP
 * text.  Names without the prefix. */
static const struct family_info {
        const char *name;
        const char *label;
        const char *help;
} families[] = {
        { "subscribers", "state", "Subscriptions by state (one address on two lists counts twice)." },
        { "mails", "state", "Mails in the outbox by state; queued includes those being sent." },
        { "bounces", "class", "Bounce reports and complaints received and kept, by class." },
        { "days_signups", NULL, "Sign-ups on one UTC day (the last 30 days)." },
        { "days_confirmations", NULL, "Confirmed sign-ups on one UTC day (the last 30 days)." },
        { "refusing_domains_count", NULL,
          "Mails a receiving domain refused (sender class) in the last 24 hours, by domain and reason." },
        { "refusing_domains_last_timestamp_seconds", NULL,
          "Unix time of a receiving domain's last refusal in the last 24 hours." },
};

struct emitter {
        struct buf *out;
        char **seen;            /* family names printed so far */
        size_t nseen;
};

static const struct family_info *family_find(const char *name)
{
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
                if (strcmp(families[i].name, name) == 0)
                        return &families[i];
        return NULL;
}

/* Append "_KEY" to a metric name (or "KEY" to an empty one), every
 * character outside [A-Za-z0-9_] made '_'.  False when too long. */
static bool name_join(char *name, const char *key)
{
        size_t n = strlen(name), k = strlen(key);
        if (n + 1 + k + 1 > NAME_MAX_LEN)
                return false;
        if (n)
                name[n++] = '_';
        for (size_t i = 0; i < k; i++) {
                char c = key[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          c == '_';
                name[n++] = ok ? c : '_';
        }
        name[n] = '\0';
        return true;
}

/* The JSON path of a figure, for the default HELP text. */
static bool path_join(char *path, const char *sep, const char *key)
{
        size_t n = strlen(path);
        int w = snprintf(path + n, NAME_MAX_LEN - n, "%s%s", n ? sep : "", key);
        return w >= 0 && (size_t)w < NAME_MAX_LEN - n;
}

/* A label name from a JSON key: [A-Za-z_][A-Za-z0-9_]*, not "__..." (reserved). */
static void label_name(char *dst, size_t cap, const char *key)
{
        char tmp[NAME_MAX_LEN] = "";
        if (!name_join(tmp, key) || !tmp[0])
                snprintf(tmp, sizeof(tmp), "label");
        bool prefix = (tmp[0] >= '0' && tmp[0] <= '9') || (tmp[0] == '_' && tmp[1] == '_');
        snprintf(dst, cap, "%s%s", prefix ? "l" : "", tmp);
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" -> Unix time. */
static bool rfc3339_parse(const char *s, double *t)
{
        int y, mo, d, h, mi, sec, n = 0;
        if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
                return false;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
                return false;
        const char *p = s + n;
        double frac = 0, scale = 0.1;
        if (*p == '.') {
                if (!(p[1] >= '0' && p[1] <= '9'))
                        return false;
                for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
                        frac += (*p - '0') * scale;
        }
        long off = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int oh, om, m = 0;
                if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5 || oh > 23 || om > 59)
                        return false;
                off = (oh * 60L + om) * 60L * (*p == '-' ? -1 : 1);
                p += 1 + m;
        } else {
                return false;
        }
        if (*p)
                return false;
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                         .tm_hour = h, .tm_min = mi, .tm_sec = sec };
        *t = (double)timegm(&tm) - (double)off + frac;
        return true;
}

static bool is_figure(json_t *v)
{
        return json_is_number(v) || json_is_boolean(v);
}

static bool is_time(json_t *v)
{
        double t;
        return json_is_string(v) && rfc3339_parse(json_string_value(v), &t);
}

static void put_value(struct buf *b, json_t *v)
{
        double t;
        if (json_is_integer(v))
                buf_printf(b, " %lld\n", (long long)json_integer_value(v));
        else if (json_is_real(v))
                buf_printf(b, " %.17g\n", json_real_value(v));
        else if (json_is_boolean(v))
                buf_puts(b, json_is_true(v) ? " 1\n" : " 0\n");
        else if (json_is_string(v) && rfc3339_parse(json_string_value(v), &t))
                buf_printf(b, " %.17g\n", t);
        else
                assert(!"put_value: not a figure");
}

/* A label value or HELP text: backslash and newline escaped, and in a
 * label value the double quote too. */
static void put_escaped(struct buf *b, const char *s, bool quote)
{
        for (; *s; s++) {
                if (*s == '\\')
                        buf_puts(b, "\\\\");
                else if (*s == '\n')
                        buf_puts(b, "\\n");
                else if (*s == '"' && quote)
                        buf_puts(b, "\\\"");
                else
                        buf_putc(b, *s);
        }
}

/* HELP and TYPE of a family; false (print nothing of it) when a family of
 * that name was printed before. */
static bool family_begin(struct emitter *e, const char *name, const char *path, bool counter)
{
        for (size_t i = 0; i < e->nseen; i++)
                if (strcmp(e->seen[i], name) == 0)
                        return false;
        char **seen = realloc(e->seen, (e->nseen + 1) * sizeof(*seen));
        if (!seen)
                oom();
        e->seen = seen;
        if (!(e->seen[e->nseen] = strdup(name)))
                oom();
        e->nseen++;
        const struct family_info *fi = family_find(name);
        buf_printf(e->out, "# HELP " PROMTEXT_PREFIX "%s ", name);
        if (fi)
                put_escaped(e->out, fi->help, false);
        else {
                buf_puts(e->out, "The figure ");
                put_escaped(e->out, path, false);
                buf_puts(e->out, " of newsletterctl stats --json.");
        }
        buf_printf(e->out, "\n# TYPE " PROMTEXT_PREFIX "%s %s\n", name, counter ? "counter" : "gauge");
        return true;
}

static bool is_counter(const char *name)
{
        size_t n = strlen(name);
        return n > 6 && strcmp(name + n - 6, "_total") == 0;
}

/* One figure, no labels. */
static void emit_single(struct emitter *e, const char *name, const char *path, json_t *v)
{
        char full[NAME_MAX_LEN];
        snprintf(full, sizeof(full), "%s", name);
        if (json_is_string(v) && !name_join(full, "timestamp_seconds"))
                return;
        if (!family_begin(e, full, path, !json_is_string(v) && is_counter(full)))
                return;
        buf_printf(e->out, PROMTEXT_PREFIX "%s", full);
        put_value(e->out, v);
}

/* An object of figures the table labels: one family, a sample per member. */
static void emit_labelled(struct emitter *e, const char *name, const char *path, const char *label,
                          json_t *obj)
{
        if (!family_begin(e, name, path, is_counter(name)))
                return;
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) {
                buf_printf(e->out, PROMTEXT_PREFIX "%s{%s=\"", name, label);
                put_escaped(e->out, key, true);
                buf_puts(e->out, "\"}");
                put_value(e->out, v);
        }
}

/* An element's labels: its string members that are no times. */
static void put_element_labels(struct buf *b, json_t *el)
{
        const char *key;
        json_t *v;
        bool first = true;
        json_object_foreach(el, key, v) {
                if (!json_is_string(v) || is_time(v))
                        continue;
                char ln[NAME_MAX_LEN];
                label_name(ln, sizeof(ln), key);
                buf_printf(b, "%s%s=\"", first ? "{" : ",", ln);
                put_escaped(b, json_string_value(v), true);
                buf_putc(b, '"');
                first = false;
        }
        if (!first)
                buf_putc(b, '}');
}

/* An array: of objects, one family per figure member; of figures, one
 * family labelled by index. */
static void emit_array(struct emitter *e, const char *name, const char *path, json_t *arr)
{
        size_t i;
        json_t *el;
        const char *members[MEMBERS_MAX];
        size_t nm = 0;
        bool plain = false;
        json_array_foreach(arr, i, el) {
                if (is_figure(el)) {
                        plain = true;
                        continue;
                }
                const char *key;
                json_t *v;
                json_object_foreach(el, key, v) {
                        if (!is_figure(v) && !is_time(v))
                                continue;
                        size_t k = 0;
                        while (k < nm && strcmp(members[k], key) != 0)
                                k++;
                        if (k == nm && nm < MEMBERS_MAX)
                                members[nm++] = key;
                }
        }
        if (plain && family_begin(e, name, path, is_counter(name))) {
                json_array_foreach(arr, i, el) {
                        if (!is_figure(el))
                                continue;
                        buf_printf(e->out, PROMTEXT_PREFIX "%s{index=\"%zu\"}", name, i);
                        put_value(e->out, el);
                }
        }
        for (size_t k = 0; k < nm; k++) {
                char full[NAME_MAX_LEN], fpath[NAME_MAX_LEN];
                snprintf(full, sizeof(full), "%s", name);
                snprintf(fpath, sizeof(fpath), "%s[]", path);
                if (!name_join(full, members[k]) || !path_join(fpath, ".", members[k]))
                        continue;
                bool header = false, skip = false;
                json_array_foreach(arr, i, el) {
                        json_t *v = json_object_get(el, members[k]);
                        if (!v || !(is_figure(v) || is_time(v)))
                                continue;
                        if (!header) {
                                /* the first element decides whether the member is a time */
                                if (json_is_string(v) && !name_join(full, "timestamp_seconds"))
                                        break;
                                skip = !family_begin(e, full, fpath, !json_is_string(v) && is_counter(full));
                                header = true;
                        }
                        if (skip)
                                break;
                        buf_printf(e->out, PROMTEXT_PREFIX "%s", full);
                        put_element_labels(e->out, el);
                        put_value(e->out, v);
                }
        }
}

static void emit_object(struct emitter *e, const char *name, const char *path, json_t *obj)
{
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) {
                char child[NAME_MAX_LEN], cpath[NAME_MAX_LEN];
                snprintf(child, sizeof(child), "%s", name);
                snprintf(cpath, sizeof(cpath), "%s", path);
                if (!name_join(child, key) || !path_join(cpath, ".", key))
                        continue;
                if (is_figure(v) || is_time(v)) {
                        emit_single(e, child, cpath, v);
                } else if (json_is_object(v)) {
                        const struct family_info *fi = family_find(child);
                        bool all_figures = json_object_size(v) > 0;
                        const char *k2;
                        json_t *v2;
                        json_object_foreach(v, k2, v2)
                                all_figures = all_figures && is_figure(v2);
                        if (fi && fi->label && all_figures)
                                emit_labelled(e, child, cpath, fi->label, v);
                        else
                                emit_object(e, child, cpath, v);
                } else if (json_is_array(v)) {
                        emit_array(e, child, cpath, v);
                }
        }
}

int promtext_format(json_t *stats, struct buf *out)
{
        struct emitter e = { .out = out };
        if (json_is_object(stats))
                emit_object(&e, "", "", stats);
        for (size_t i = 0; i < e.nseen; i++)
                free(e.seen[i]);
        free(e.seen);
        return out->overflow ? -E2BIG : 0;
}
