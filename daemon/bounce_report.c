/*
 * bounce_report.c - the fields of the machine-readable parts of returned
 * mail: the recipient groups of an RFC 3464 delivery-status part and what
 * each says (action, status, recipients, diagnostic), the fields of an RFC
 * 5965 feedback report, the Return-Path and To of the returned original,
 * and the SMTP reply and enhanced status codes found in text.
 *
 * Owns nothing past a call.  Must never do I/O or SQL, never read outside
 * the bytes it was given, and never decide what a report means for a
 * subscriber: that is bounce.c's.  Lines and fields come from the MIME
 * reader (mailparse.c).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "addr.h"
#include "bounce_report.h"
#include "log.h"
#include "mailparse.h"
#include "textutil.h"

/* A recipient group of a delivery-status part. */
struct rcpt_group {
        bool seen;                      /* a recipient field was there */
        char action[16];
        char status[16];
        char final_rcpt[MAIL_FIELD_MAX];
        char orig_rcpt[MAIL_FIELD_MAX];
        char diag[MAIL_FIELD_MAX];
        const char *mta_reason;
};

/* ---- bytes -------------------------------------------------------------- */

static bool is_token_char(char c)
{
        unsigned char u = (unsigned char)c;
        return u > 0x20 && u < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* "rfc822; user@example.org" (RFC 3464 address-type; "utf-8" of RFC 6533
 * too) -> the address; NULL for another type. */
static const char *typed_addr(const char *v)
{
        const char *semi = strchr(v, ';');
        if (!semi)
                return strchr(v, '@') ? v : NULL;
        size_t n = (size_t)(semi - v);
        while (n && is_wsp(v[n - 1]))
                n--;
        struct mail_span type = { v, n };
        if (!mail_span_eq_ci(type, "rfc822") && !mail_span_eq_ci(type, "utf-8"))
                return NULL;
        return semi + 1;
}

/* PowerMTA files every failure under a category of its own and says it
 * in X-PowerMTA-BounceCategory: the verdict of the MTA that had the
 * receiver's reply, named here by the reason of Sisimai's vocabulary it
 * stands for (our own mapping of PowerMTA's documented categories).
 * "other" and unknown categories name nothing. */
static const char *powermta_reason(const char *category)
{
        static const struct {
                const char *category, *reason;
        } map[] = {
                { "bad-mailbox", "userunknown" },       { "bad-domain", "hostunknown" },
                { "inactive-mailbox", "suspend" },      { "quota-issues", "mailboxfull" },
                { "message-expired", "expired" },       { "no-answer-from-host", "networkerror" },
                { "bad-connection", "networkerror" },   { "routing-errors", "networkerror" },
                { "relaying-issues", "norelaying" },    { "spam-related", "spamdetected" },
                { "policy-related", "policyviolation" }, { "content-related", "contenterror" },
                { "virus-related", "virusdetected" },   { "invalid-sender", "rejected" },
                { "protocol-errors", "systemerror" },   { "bad-configuration", "systemerror" },
        };
        for (size_t i = 0; i < N_ELEM(map); i++)
                if (str_eq_ci(category, map[i].category))
                        return map[i].reason;
        return NULL;
}

/* ---- status codes ------------------------------------------------------- */

/* An enhanced status code "c.s.d" (RFC 3463) at s[i], standing alone;
 * its class ('2', '4', '5') or 0.  *len gets its length. */
int bounce_report_enhanced_at(const char *s, size_t n, size_t i, size_t *len)
{
        if (i >= n || (s[i] != '2' && s[i] != '4' && s[i] != '5'))
                return 0;
        if (i > 0 && (is_alnum_ascii(s[i - 1]) || s[i - 1] == '.'))
                return 0;
        size_t k = i + 1;
        for (int part = 0; part < 2; part++) {
                if (k >= n || s[k] != '.')
                        return 0;
                k++;
                size_t d = 0;
                while (k < n && is_digit(s[k]) && d < 4) {
                        k++;
                        d++;
                }
                if (d == 0 || d > 3)
                        return 0;
        }
        if (k < n && (is_alnum_ascii(s[k]) || (s[k] == '.' && k + 1 < n && is_digit(s[k + 1]))))
                return 0;
        *len = k - i;
        return s[i];
}

/* The first enhanced status code of a string, copied to out[16]; its class
 * or 0. */
int bounce_report_status(const char *s, char out[16])
{
        size_t n = strlen(s), len;
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                int cls = bounce_report_enhanced_at(s, n, i, &len);
                if (cls) {
                        memcpy(out, s + i, len);
                        out[len] = '\0';
                        return cls;
                }
        }
        return 0;
}

/* An SMTP reply code 4yz/5yz at s[i] (y 0-5) standing as a word: after
 * the start, a blank or one of ":;([", followed by a blank, '-' or the
 * end, and if a digit follows that, it starts an enhanced code.  Keeps
 * "5000 users" and "555-1234" out.  Its class or 0. */
int bounce_report_reply_at(const char *s, size_t n, size_t i)
{
        if (i + 3 > n || (s[i] != '4' && s[i] != '5') || s[i + 1] < '0' || s[i + 1] > '5' ||
            !is_digit(s[i + 2]))
                return 0;
        if (i > 0 && !is_wsp(s[i - 1]) && (s[i - 1] == '\0' || !strchr(":;([", s[i - 1])))
                return 0;
        size_t k = i + 3;
        if (k == n)
                return s[i];
        if (s[k] != ' ' && s[k] != '-')
                return 0;
        size_t len;
        if (k + 1 < n && is_digit(s[k + 1]) && !bounce_report_enhanced_at(s, n, k + 1, &len))
                return 0;
        return s[i];
}

/* ---- delivery-status (RFC 3464) ----------------------------------------- */

static enum bounce_kind group_kind(const struct rcpt_group *g)
{
        int cls = g->status[0];
        if (!cls) {
                size_t n = strlen(g->diag);
                for (size_t i = 0; i < n && !cls; i++)
                        cls = bounce_report_reply_at(g->diag, n, i);
        }
        if (str_eq_ci(g->action, "delayed"))
                return BOUNCE_TEMPORARY;
        if (str_eq_ci(g->action, "delivered") || str_eq_ci(g->action, "relayed") ||
            str_eq_ci(g->action, "expanded"))
                return BOUNCE_UNKNOWN;
        /* "failed", and a missing or unknown action: the code decides */
        if (cls == '5')
                return BOUNCE_PERMANENT;
        if (cls == '4')
                return BOUNCE_TEMPORARY;
        return BOUNCE_UNKNOWN;
}

static int kind_rank(enum bounce_kind k)
{
        return k == BOUNCE_PERMANENT ? 3 : k == BOUNCE_TEMPORARY ? 2 : 1;
}

static void group_field(struct rcpt_group *g, const struct mail_field *f)
{
        char v[MAIL_FIELD_MAX];
        if (mailparse_field_is(f, "action")) {
                if (mailparse_field_text(f->value, v, sizeof(v), false)) {
                        const char *s = v;
                        size_t n = 0;
                        while (n + 1 < sizeof(g->action) && is_token_char(s[n]))
                                n++;
                        memcpy(g->action, s, n);
                        g->action[n] = '\0';
                }
                g->seen = true;
        } else if (mailparse_field_is(f, "status")) {
                if (mailparse_field_text(f->value, v, sizeof(v), false))
                        bounce_report_status(v, g->status);
                g->seen = true;
        } else if (mailparse_field_is(f, "final-recipient")) {
                const char *a = mailparse_field_text(f->value, v, sizeof(v), false) ? typed_addr(v) : NULL;
                if (a)
                        copy_str(g->final_rcpt, sizeof(g->final_rcpt), a);
                g->seen = true;
        } else if (mailparse_field_is(f, "original-recipient")) {
                const char *a = mailparse_field_text(f->value, v, sizeof(v), false) ? typed_addr(v) : NULL;
                if (a)
                        copy_str(g->orig_rcpt, sizeof(g->orig_rcpt), a);
                g->seen = true;
        } else if (mailparse_field_is(f, "x-powermta-bouncecategory")) {
                if (mailparse_field_text(f->value, v, sizeof(v), false)) {
                        size_t n = 0;
                        while (n + 1 < sizeof(v) && is_token_char(v[n]))
                                n++;
                        v[n] = '\0';
                        g->mta_reason = powermta_reason(v);
                }
        } else if (mailparse_field_is(f, "diagnostic-code")) {
                if (mailparse_field_text(f->value, v, sizeof(v), true)) {
                        const char *semi = strchr(v, ';');
                        copy_str(g->diag, sizeof(g->diag), semi ? semi + 1 : v);
                }
        }
}

/* Per-message fields, then per-recipient groups, separated by blank lines.
 * The group that says most (permanent over temporary over the rest) wins;
 * among equals the first. */
void bounce_report_dsn(struct mail_span text, struct dsn_report *out)
{
        const char *p = text.p, *end = text.p + text.n;
        struct rcpt_group *g = xmalloc(sizeof(*g));
        int best = 0;
        memset(out, 0, sizeof(*out));
        while (p < end) {
                struct mail_span line;
                const char *block = p, *block_end;
                while (block < end) {           /* skip blank lines */
                        const char *q = block;
                        mailparse_line_next(&q, end, &line);
                        if (!mailparse_line_blank(line))
                                break;
                        block = q;
                }
                block_end = block;
                while (block_end < end) {
                        const char *q = block_end;
                        mailparse_line_next(&q, end, &line);
                        if (mailparse_line_blank(line))
                                break;
                        block_end = q;
                }
                p = block_end;
                if (block == block_end)
                        continue;

                memset(g, 0, sizeof(*g));
                const char *f_p = block;
                struct mail_field f;
                while (mailparse_field_next(&f_p, block_end, &f))
                        group_field(g, &f);
                if (!g->seen)
                        continue;
                enum bounce_kind k = group_kind(g);
                if (out->n == DSN_GROUPS_MAX)
                        continue;
                struct dsn_group *d = &out->groups[out->n];
                d->kind = k;
                /* Original-Recipient is the address we sent to, Final-Recipient
                 * may be where the receiving side forwarded it. */
                struct mail_span a;
                struct addr parsed;
                bool orig_ok = g->orig_rcpt[0] && mailparse_addr_first(g->orig_rcpt, &a) &&
                               addr_parse(a.p, a.n, &parsed) == ADDR_OK;
                copy_str(d->rcpt, sizeof(d->rcpt), orig_ok ? g->orig_rcpt : g->final_rcpt);
                copy_str(d->status, sizeof(d->status), g->status);
                copy_str(d->diag, sizeof(d->diag), g->diag);
                size_t an = strlen(g->action);
                for (size_t i = 0; i < an; i++)
                        d->action[i] = ascii_lower(g->action[i]);
                d->action[an] = '\0';
                d->mta_reason = g->mta_reason;
                d->reply = 0;
                size_t dn = strlen(g->diag);
                for (size_t i = 0; i < dn && !d->reply; i++)
                        if (bounce_report_reply_at(g->diag, dn, i))
                                d->reply = atoi(g->diag + i);
                if (kind_rank(k) > best) {
                        best = kind_rank(k);
                        out->best = out->n;
                }
                out->found = true;
                out->n++;
        }
        free(g);
}

/* ---- feedback-report (RFC 5965) and the returned original --------------- */

void bounce_report_arf(struct mail_span text, struct arf_report *out)
{
        const char *p = text.p, *end = text.p + text.n;
        struct mail_field f;
        char v[MAIL_FIELD_MAX];
        memset(out, 0, sizeof(*out));
        while (mailparse_field_next(&p, end, &f)) {
                if (!mailparse_field_text(f.value, v, sizeof(v), false))
                        continue;
                if (mailparse_field_is(&f, "feedback-type") && !out->feedback_type[0]) {
                        size_t n = 0;
                        while (n + 1 < sizeof(out->feedback_type) && is_token_char(v[n])) {
                                out->feedback_type[n] = ascii_lower(v[n]);
                                n++;
                        }
                        out->feedback_type[n] = '\0';
                } else if (mailparse_field_is(&f, "original-rcpt-to") && !out->rcpt[0]) {
                        copy_str(out->rcpt, sizeof(out->rcpt), v);
                } else if (mailparse_field_is(&f, "removal-recipient") && !out->rcpt[0]) {
                        copy_str(out->rcpt, sizeof(out->rcpt), v);   /* RFC 5965 draft name */
                } else if (mailparse_field_is(&f, "original-mail-from") && !out->mail_from[0]) {
                        copy_str(out->mail_from, sizeof(out->mail_from), v);
                }
        }
}

void bounce_report_original(struct mail_span text, struct original_report *out)
{
        struct mail_span hdr, body;
        mailparse_entity_split(text, &hdr, &body);
        mailparse_header_get(hdr, "return-path", out->return_path, sizeof(out->return_path));
        mailparse_header_get(hdr, "to", out->to, sizeof(out->to));
        mailparse_header_get(hdr, "x-hmxmroriginalrecipient", out->jmrp_rcpt, sizeof(out->jmrp_rcpt));
}


/* ---- Amazon SES notifications ------------------------------------------- */

#define SES_JSON_MAX    (256u << 10)    /* bytes of notification looked at */

static const char *json_str(json_t *o, const char *key)
{
        const char *v = json_string_value(json_object_get(o, key));
        return v ? v : "";
}

static void ses_group(struct dsn_report *dsn, json_t *r, const char *action)
{
        if (dsn->n == DSN_GROUPS_MAX || !json_is_object(r))
                return;
        struct dsn_group *g = &dsn->groups[dsn->n];
        memset(g, 0, sizeof(*g));
        copy_str(g->rcpt, sizeof(g->rcpt), json_str(r, "emailAddress"));
        char status[16];
        int cls = bounce_report_status(json_str(r, "status"), status);
        copy_str(g->status, sizeof(g->status), status);
        const char *diag = json_str(r, "diagnosticCode"), *semi = strchr(diag, ';');
        copy_str(g->diag, sizeof(g->diag), semi ? semi + 1 : diag);
        copy_str(g->action, sizeof(g->action), action);
        size_t dn = strlen(g->diag);
        for (size_t i = 0; i < dn && !g->reply; i++)
                if (bounce_report_reply_at(g->diag, dn, i))
                        g->reply = atoi(g->diag + i);
        if (!cls && g->reply)
                cls = '0' + g->reply / 100;
        g->kind = !strcmp(action, "delivered") ? BOUNCE_UNKNOWN : !strcmp(action, "delayed") ||
                  cls == '4' ? BOUNCE_TEMPORARY : cls == '5' ? BOUNCE_PERMANENT : BOUNCE_UNKNOWN;
        if (!strcmp(action, "failed") && g->kind == BOUNCE_UNKNOWN)
                g->kind = BOUNCE_PERMANENT;     /* a permanent bounce without a code */
        if (!dsn->found || g->kind == BOUNCE_PERMANENT)
                dsn->best = dsn->n;
        dsn->found = true;
        dsn->n++;
}

enum ses_kind bounce_report_ses(struct mail_span text, struct dsn_report *dsn, struct arf_report *arf)
{
        size_t i = 0;
        while (i < text.n && is_wsp_nl(text.p[i]))
                i++;
        if (i == text.n || text.p[i] != '{')
                return SES_NONE;
        /* SNS wraps long lines: line breaks (and the blank after one) are
         * no part of the JSON */
        size_t cap = text.n - i < SES_JSON_MAX ? text.n - i : SES_JSON_MAX, n = 0;
        char *buf = xmalloc(cap);
        for (size_t k = i; k < i + cap; k++) {
                if (text.p[k] == '\r')
                        continue;
                if (text.p[k] == '\n') {
                        if (k + 1 < i + cap && text.p[k + 1] == ' ')
                                k++;
                        continue;
                }
                buf[n++] = text.p[k];
        }
        json_t *o = json_loadb(buf, n, JSON_DISABLE_EOF_CHECK, NULL);
        free(buf);
        enum ses_kind kind = SES_NONE;
        if (!json_is_object(o)) {
                json_decref(o);
                return SES_NONE;
        }
        /* the SNS envelope (HTTP/JSON delivery) carries it as a string */
        const char *inner = json_str(o, "Message");
        if (!strcmp(json_str(o, "Type"), "Notification") && *inner) {
                json_t *m = json_loads(inner, 0, NULL);
                json_decref(o);
                o = m;
                if (!json_is_object(o)) {
                        json_decref(o);
                        return SES_NONE;
                }
        }
        const char *type = json_str(o, "notificationType");
        if (!*type)
                type = json_str(o, "eventType");
        memset(dsn, 0, sizeof(*dsn));
        if (!strcmp(type, "Bounce")) {
                json_t *b = json_object_get(o, "bounce"), *r;
                const char *action = !strcmp(json_str(b, "bounceType"), "Transient") ? "delayed" : "failed";
                size_t k;
                json_array_foreach(json_object_get(b, "bouncedRecipients"), k, r)
                        ses_group(dsn, r, action);
                kind = SES_BOUNCE;
        } else if (!strcmp(type, "Delivery")) {
                json_t *d = json_object_get(o, "delivery"), *r;
                size_t k;
                json_array_foreach(json_object_get(d, "recipients"), k, r) {
                        json_t *g = json_pack("{ss}", "emailAddress", json_string_value(r) ?
                                              json_string_value(r) : "");
                        ses_group(dsn, g, "delivered");
                        json_decref(g);
                }
                if (!dsn->found) {      /* none named: the mail's destination */
                        json_t *dest = json_array_get(json_object_get(json_object_get(o, "mail"),
                                                                      "destination"), 0);
                        json_t *g = json_pack("{ss}", "emailAddress", json_string_value(dest) ?
                                              json_string_value(dest) : "");
                        ses_group(dsn, g, "delivered");
                        json_decref(g);
                }
                kind = SES_DELIVERY;
        } else if (!strcmp(type, "Complaint")) {
                json_t *c = json_object_get(o, "complaint");
                memset(arf, 0, sizeof(*arf));
                const char *ft = json_str(c, "complaintFeedbackType");
                size_t fn = 0;
                for (; ft[fn] && fn + 1 < sizeof(arf->feedback_type); fn++)
                        arf->feedback_type[fn] = ascii_lower(ft[fn]);
                arf->feedback_type[fn] = '\0';
                if (!fn)
                        copy_str(arf->feedback_type, sizeof(arf->feedback_type), "abuse");
                json_t *first = json_array_get(json_object_get(c, "complainedRecipients"), 0);
                copy_str(arf->rcpt, sizeof(arf->rcpt), json_str(first, "emailAddress"));
                kind = SES_COMPLAINT;
        }
        json_decref(o);
        return kind;
}
