/*
 * bounce.c - the verdict on a returned mail: which of our mails it belongs
 * to (the VERP envelope sender it was addressed to, its tag checked),
 * which recipient failed or complained, and whether the failure is
 * permanent or temporary.  It weighs what bounce_report.c reads from RFC
 * 3464 delivery status notifications and RFC 5965 (ARF) feedback reports,
 * falls back, cautiously, on heuristics for the plain-text reports of MTAs
 * that send no DSN and for auto-replies, and judges the relay's own refusal
 * of a recipient while sending (one reply line, by its enhanced status
 * code).  The message is taken apart by the MIME reader (mailparse.c).
 *
 * Owns nothing past a call: decoded parts are freed before bounce_parse()
 * returns.  Must never do I/O or SQL, never read outside the bytes it was
 * given (the message need not be NUL-terminated and may hold NUL), and
 * never guess: what is not clearly a failure or a complaint is
 * BOUNCE_UNKNOWN, so the caller changes nothing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "bounce.h"
#include "bounce_reason.h"
#include "bounce_report.h"
#include "log.h"
#include "mailparse.h"
#include "secret.h"
#include "textutil.h"

#define NOTICE_MAX      (64u << 10)     /* human-readable text searched for codes */
#define NEAR_LINES      6               /* lines above a status code searched for the recipient */
#define VERP_ID_DIGITS  18              /* fits int64_t */

#define N_ELEM(a)       (sizeof(a) / sizeof((a)[0]))

_Static_assert(DSN_GROUPS_MAX <= BOUNCE_RCPTS_MAX, "every DSN group has its judged recipient");

/* What the walk over the MIME tree found: the first part of each kind. */
struct scan {
        struct dsn_report dsn;          /* dsn.found: a delivery-status part with a
                                         * recipient group */
        bool arf;                       /* a feedback-report part */
        struct arf_report arf_rep;
        bool orig;                      /* the returned original (or its headers) */
        struct original_report orig_rep;
        bool notice;                    /* the first text/plain part */
        struct mail_span notice_text;
};

/* The return_path template split at "{id}", the keys its tags are checked
 * with, and whether an address of its form was seen whose id or tag was
 * wrong. */
struct verp {
        bool on;
        const char *prefix;
        size_t prefix_len;
        const char *suffix;
        size_t suffix_len;
        const struct secret_keys *keys;
        bool invalid;
};

const char *bounce_kind_name(enum bounce_kind k)
{
        switch (k) {
        case BOUNCE_UNKNOWN: return "unknown";
        case BOUNCE_PERMANENT: return "permanent";
        case BOUNCE_TEMPORARY: return "temporary";
        case BOUNCE_COMPLAINT: return "complaint";
        case BOUNCE_SENDER: return "sender";
        }
        return "unknown";
}

const char *bounce_class_name(enum bounce_kind k)
{
        return k == BOUNCE_UNKNOWN ? "none" : bounce_kind_name(k);
}

/* ---- bytes and lines ---------------------------------------------------- */

/* Printable ASCII for the log: whitespace runs become one space, other
 * bytes '?', cut to what fits. */
static void diag_set(char *out, size_t cap, const char *s, size_t n)
{
        size_t o = 0;
        bool space = false;
        for (size_t i = 0; i < n && o + 1 < cap; i++) {
                unsigned char c = (unsigned char)s[i];
                if (is_wsp_nl(s[i])) {
                        space = o > 0;
                        continue;
                }
                if (space) {
                        out[o++] = ' ';
                        space = false;
                        if (o + 1 >= cap)
                                break;
                }
                out[o++] = c > 0x20 && c < 0x7f ? (char)c : '?';
        }
        out[o] = '\0';
}

/* ---- addresses ---------------------------------------------------------- */

/* Normalise a recipient into out (ADDR_PATH_MAX + 1 bytes); "" when it is
 * no valid address. */
static void recipient_set(char *out, const char *v)
{
        struct mail_span a;
        struct addr parsed;
        out[0] = '\0';
        if (!v || !mailparse_addr_first(v, &a))
                return;
        if (addr_parse(a.p, a.n, &parsed) == ADDR_OK)
                copy_str(out, ADDR_PATH_MAX + 1, parsed.mailbox);
}

/* ---- VERP --------------------------------------------------------------- */

static void verp_init(struct verp *v, const char *tmpl, const struct secret_keys *keys)
{
        memset(v, 0, sizeof(*v));
        v->keys = keys;
        const char *id = tmpl ? strstr(tmpl, "{id}") : NULL;
        if (!id)
                return;
        v->on = true;
        v->prefix = tmpl;
        v->prefix_len = (size_t)(id - tmpl);
        v->suffix = id + 4;
        v->suffix_len = strlen(v->suffix);
}

/* Compare n bytes of a candidate address at off with a template piece:
 * exact in the local part, case-insensitive after the candidate's '@'. */
static bool verp_piece_eq(struct mail_span a, size_t off, const char *pat, size_t n, size_t at)
{
        for (size_t i = 0; i < n; i++) {
                char x = a.p[off + i], y = pat[i];
                if (at < a.n && off + i > at) {
                        x = ascii_lower(x);
                        y = ascii_lower(y);
                }
                if (x != y)
                        return false;
        }
        return true;
}

/* The mail id in a VERP address "PREFIX<id>-<tag>SUFFIX"; 0 when the
 * address is not one of ours, or when its id is malformed (non-digits, a
 * leading zero, more than 18 digits) or its tag is not that id's under one
 * of our keys: only we can make a valid one, so a valid one shows that the
 * report came back from where that mail went.  An address of our form that
 * fails sets v->invalid. */
static int64_t verp_match(struct verp *v, struct mail_span a)
{
        if (!v->on || a.n < v->prefix_len + v->suffix_len)
                return 0;
        const char *at_p = memrchr(a.p, '@', a.n);
        size_t at = at_p ? (size_t)(at_p - a.p) : SIZE_MAX;
        if (!verp_piece_eq(a, 0, v->prefix, v->prefix_len, at) ||
            !verp_piece_eq(a, a.n - v->suffix_len, v->suffix, v->suffix_len, at))
                return 0;
        const char *d = a.p + v->prefix_len;
        size_t n = a.n - v->prefix_len - v->suffix_len, digits = 0;
        while (digits < n && is_digit(d[digits]))
                digits++;
        int64_t id = 0;
        bool ok = digits >= 1 && digits <= VERP_ID_DIGITS && !(digits > 1 && d[0] == '0') &&
                  digits < n && d[digits] == '-';
        for (size_t i = 0; ok && i < digits; i++)
                id = id * 10 + (d[i] - '0');
        if (ok && secret_tag_check(v->keys, id, d + digits + 1, n - digits - 1))
                return id;
        v->invalid = true;
        return 0;
}

/* Prefix and suffix of the template, whatever stands between them. */
static bool verp_like(const struct verp *v, struct mail_span a)
{
        if (!v->on || a.n < v->prefix_len + v->suffix_len)
                return false;
        const char *at_p = memrchr(a.p, '@', a.n);
        size_t at = at_p ? (size_t)(at_p - a.p) : SIZE_MAX;
        return verp_piece_eq(a, 0, v->prefix, v->prefix_len, at) &&
               verp_piece_eq(a, a.n - v->suffix_len, v->suffix, v->suffix_len, at);
}

struct verp_search {
        struct verp *verp;
        int64_t id;
};

static bool verp_try(struct mail_span a, void *ctx)
{
        struct verp_search *vs = ctx;
        vs->id = verp_match(vs->verp, a);
        return vs->id > 0;
}

static int64_t verp_in_value(struct verp *v, const char *value)
{
        struct verp_search vs = { v, 0 };
        if (!v->on || !mailparse_addr_each(value, verp_try, &vs))
                return 0;
        return vs.id;
}

/* The id in any field called `name` of a header block. */
static int64_t verp_in_header(struct verp *v, struct mail_span hdr, const char *name)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct mail_field f;
        char value[MAIL_FIELD_MAX];
        while (mailparse_field_next(&p, end, &f)) {
                if (!mailparse_field_is(&f, name) || !mailparse_field_text(f.value, value, sizeof(value), false))
                        continue;
                int64_t id = verp_in_value(v, value);
                if (id > 0)
                        return id;
        }
        return 0;
}

/* ---- the parts of the message ------------------------------------------ */

/* The first delivery-status part with a recipient group, feedback report,
 * returned original and text/plain part; every other part is skipped. */
static void scan_part(const struct mail_part *part, void *ctx)
{
        struct scan *sc = ctx;
        const char *t = part->type;
        enum { NONE, DSN, ARF, ORIGINAL, NOTICE } what = NONE;
        if (!strcmp(t, "message/delivery-status") || !strcmp(t, "message/global-delivery-status"))
                what = sc->dsn.found ? NONE : DSN;
        else if (!strcmp(t, "message/feedback-report"))
                what = sc->arf ? NONE : ARF;
        else if (!strcmp(t, "message/rfc822") || !strcmp(t, "message/global") ||
                 !strcmp(t, "text/rfc822-headers") || !strcmp(t, "message/rfc822-headers") ||
                 !strcmp(t, "message/global-headers"))
                what = sc->orig ? NONE : ORIGINAL;
        else if (!t[0] || !strcmp(t, "text/plain"))
                what = sc->notice ? NONE : NOTICE;
        if (what == NONE)
                return;

        struct mail_span text = part->text;
        switch (what) {
        case DSN:
                bounce_report_dsn(text, &sc->dsn);
                break;
        case ARF:
                sc->arf = true;
                bounce_report_arf(text, &sc->arf_rep);
                break;
        case ORIGINAL:
                sc->orig = true;
                bounce_report_original(text, &sc->orig_rep);
                break;
        case NOTICE:
                sc->notice = true;
                sc->notice_text = text;
                return;
        case NONE:
                break;
        }
}

/* ---- plain-text reports ------------------------------------------------- */

/* Said by the MTA about a message it gave up on. */
static const char *const failure_phrases[] = {
        "permanent error", "permanent failure", "permanently", "could not be delivered",
        "couldn't be delivered", "was not delivered", "wasn't able to deliver",
        "was not able to deliver", "unable to deliver", "undeliverable", "delivery has failed",
        "delivery failed", "delivery to the following recipient failed", "address(es) failed",
        "addresses failed", "failed recipient", "giving up", "given up", "user unknown",
        "unknown user", "no such user", "no mailbox", "mailbox unavailable", "does not exist",
        "address rejected", "recipient rejected", "did not reach", "error has occurred",
        "could not deliver", "couldn't deliver", "failed permanently", "fatal error",
        "delivery error", "not be delivered", "no valid recipients", "failed addresses",
        "invalid final delivery", "failure reasons", "failed recipients", "returned permanent",
        "permanent delivery error", "had delivery errors", "failed to deliver", "message rejected",
        "mail failed", "delivery to the following", "error message below", "host unknown",
        "unsent message follows", "delivery problems", "non-delivered", "could not be sent",
        "was not sent", "not be sent", "送信できませんでした", "配信できませんでした",
};

/* Said by the MTA about a message it still tries to deliver. */
static const char *const delay_phrases[] = {
        "not yet been delivered", "has not been delivered yet", "delayed", "delivery delay",
        "temporary failure", "temporary error", "temporarily", "still in the queue",
        "will retry", "will keep trying", "will continue", "deferred", "still trying",
};

/* The MTA's own words at the top of a report. */
static const char *const report_banners[] = {
        "qmail-send program", "mail delivery software", "mail delivery system",
        "mail delivery subsystem", "delivery status notification", "non-delivery",
        "delivery has failed to these recipients", "undelivered mail returned",
        "this is the mail system", "this is the mailer-daemon", "transcript of session",
        "message log follows", "original message was received", "failure reasons",
        "following addresses had", "following recipients", "following recipient",
        "following address", "the mail system",
};

/* Subjects of reports. */
static const char *const report_subjects[] = {
        "undeliver", "delivery fail", "failure notice", "returned mail", "delivery status",
        "non-delivery", "delivery delayed", "delayed mail", "could not send message",
        "mail delivery", "mail failed", "not delivered", "delivery failure", "nondeliverable",
        "delivery notification", "mail could not be delivered", "rejected", "bounce", "error",
        "エラー",
};

/* Subjects of auto-replies, at the start. */
static const char *const autoreply_subjects[] = {
        "out of office", "out-of-office", "automatic reply", "auto reply", "auto-reply",
        "autoreply", "auto:", "vacation", "away from", "abwesenheit", "abwesend",
};

/* A line like these starts the copy of the original in the text. */
static const char *const copy_markers[] = {
        "below this line is a copy of the message", "this is a copy of the message",
        "original message follows", "returned message follows", "headers of the original",
        "original message headers", "----- original message", "-- original message",
};

/* the local parts of MTAs' own addresses, without their separators
 * (mailer-daemon, MAILER_DAEMON, post_master, mail.daemon, ...) */
static const char *const daemon_locals[] = { "mailerdaemon", "maildaemon", "postmaster" };

static bool has_any(const char *lowered, size_t n, const char *const *list, size_t n_list)
{
        for (size_t i = 0; i < n_list; i++)
                if (memmem(lowered, n, list[i], strlen(list[i])))
                        return true;
        return false;
}

/* Lower case, whitespace runs (line breaks too) as one space: phrases
 * wrapped over lines are found as well. */
static size_t text_flatten(const char *s, size_t n, char *out)
{
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (is_wsp_nl(c)) {
                        if (o && out[o - 1] != ' ')
                                out[o++] = ' ';
                        continue;
                }
                out[o++] = ascii_lower(c);
        }
        return o;
}

static bool line_is_copy_marker(struct mail_span line)
{
        char low[256];
        size_t n = line.n < sizeof(low) ? line.n : sizeof(low);
        for (size_t i = 0; i < n; i++)
                low[i] = ascii_lower(line.p[i]);
        return has_any(low, n, copy_markers, N_ELEM(copy_markers));
}

static bool local_is_daemon(struct mail_span a)
{
        const char *at = memrchr(a.p, '@', a.n);
        size_t n = at ? (size_t)(at - a.p) : a.n, o = 0;
        char bare[32];
        for (size_t i = 0; i < n; i++) {
                if (a.p[i] == '-' || a.p[i] == '_' || a.p[i] == '.')
                        continue;
                if (o == sizeof(bare))
                        return false;
                bare[o++] = a.p[i];
        }
        struct mail_span local = { bare, o };
        for (size_t i = 0; i < N_ELEM(daemon_locals); i++)
                if (mail_span_eq_ci(local, daemon_locals[i]))
                        return true;
        return false;
}

/* What the top-level headers say about the sender of the message. */
struct origin {
        bool daemon;            /* an MTA's report */
        bool autoreply;         /* someone's auto-responder */
        char failed_rcpt[MAIL_FIELD_MAX];    /* Exim's X-Failed-Recipients */
};

static void origin_get(struct mail_span hdr, struct origin *o)
{
        char from[MAIL_FIELD_MAX], subject[MAIL_FIELD_MAX], auto_sub[64];
        struct mail_span a;
        memset(o, 0, sizeof(*o));
        bool from_daemon = mailparse_header_get(hdr, "from", from, sizeof(from)) &&
                           mailparse_addr_first(from, &a) && local_is_daemon(a);
        bool failed = mailparse_header_get(hdr, "x-failed-recipients", o->failed_rcpt,
                                 sizeof(o->failed_rcpt)) && o->failed_rcpt[0];
        bool subject_report = false, subject_auto = false;
        if (mailparse_header_get(hdr, "subject", subject, sizeof(subject))) {
                char low[MAIL_FIELD_MAX];
                size_t n = text_flatten(subject, strlen(subject), low);
                subject_report = has_any(low, n, report_subjects, N_ELEM(report_subjects));
                for (size_t i = 0; i < N_ELEM(autoreply_subjects); i++)
                        if (n >= strlen(autoreply_subjects[i]) &&
                            memcmp(low, autoreply_subjects[i], strlen(autoreply_subjects[i])) == 0)
                                subject_auto = true;
        }
        bool auto_replied = mailparse_header_get(hdr, "auto-submitted", auto_sub, sizeof(auto_sub)) &&
                            str_starts_ci(auto_sub, "auto-replied");
        /* RFC 3834 3.1.8 names it as what older responders send instead */
        char precedence[64];
        bool precedence_auto = mailparse_header_get(hdr, "precedence", precedence, sizeof(precedence)) &&
                               str_starts_ci(precedence, "auto_reply");
        o->daemon = from_daemon || failed || subject_report;
        o->autoreply = mailparse_header_has(hdr, "x-autoreply") || mailparse_header_has(hdr, "x-autorespond") ||
                       subject_auto || precedence_auto || (auto_replied && !from_daemon && !failed);
}

static bool is_local_char(char c)
{
        return is_alnum_ascii(c) || c == '.' || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool is_domain_char(char c)
{
        return is_alnum_ascii(c) || c == '.' || c == '-' || (unsigned char)c >= 0x80;
}

/* The first address in a line that is neither ours (whatever its id) nor
 * an MTA's. */
static bool line_recipient_from(struct mail_span l, size_t *from, const struct verp *v, char *out)
{
        for (size_t i = *from; i < l.n; i++) {
                if (l.p[i] != '@')
                        continue;
                size_t s = i, e = i + 1;
                while (s > 0 && is_local_char(l.p[s - 1]))
                        s--;
                while (e < l.n && is_domain_char(l.p[e]))
                        e++;
                while (e > i + 1 && (l.p[e - 1] == '.' || l.p[e - 1] == '-'))
                        e--;
                while (s < i && l.p[s] == '.')
                        s++;
                struct mail_span a = { l.p + s, e - s };
                struct addr parsed;
                if (a.n > ADDR_INPUT_MAX || verp_like(v, a) || local_is_daemon(a) ||
                    addr_parse(a.p, a.n, &parsed) != ADDR_OK)
                        continue;
                copy_str(out, ADDR_PATH_MAX + 1, parsed.mailbox);
                *from = e;
                return true;
        }
        return false;
}

static bool line_recipient(struct mail_span l, const struct verp *v, char *out)
{
        size_t from = 0;
        return line_recipient_from(l, &from, v, out);
}

/* qmail names the recipient on a line of its own: "<user@example.org>:". */
static bool qmail_recipient(struct mail_span l, char *out)
{
        struct addr parsed;
        while (l.n && is_wsp(l.p[l.n - 1]))
                l.n--;
        if (l.n < 4 || l.p[0] != '<' || l.p[l.n - 2] != '>' || l.p[l.n - 1] != ':')
                return false;
        if (addr_parse(l.p + 1, l.n - 3, &parsed) != ADDR_OK)
                return false;
        copy_str(out, ADDR_PATH_MAX + 1, parsed.mailbox);
        return true;
}

/* The first code of a class in the text before the copy of the original:
 * its line number, the line, and the first enhanced code of that class. */
struct code_hit {
        bool found;
        size_t line_no;
        struct mail_span line;
        char status[16];
        int reply;                      /* the first reply code of that line; 0 */
};

static void line_codes(struct mail_span l, size_t line_no, struct code_hit *perm, struct code_hit *temp)
{
        for (size_t i = 0; i < l.n; i++) {
                size_t len = 0;
                int cls = bounce_report_enhanced_at(l.p, l.n, i, &len);
                bool enhanced = cls != 0;
                if (!cls)
                        cls = bounce_report_reply_at(l.p, l.n, i);
                struct code_hit *h = cls == '5' ? perm : cls == '4' ? temp : NULL;
                if (!h)
                        continue;
                if (!h->found) {
                        h->found = true;
                        h->line_no = line_no;
                        h->line = l;
                }
                if (!enhanced && !h->reply && h->line_no == line_no)
                        h->reply = (l.p[i] - '0') * 100 + (l.p[i + 1] - '0') * 10 + (l.p[i + 2] - '0');
                if (enhanced && !h->status[0] && len < sizeof(h->status)) {
                        memcpy(h->status, l.p + i, len);
                        h->status[len] = '\0';
                }
        }
}

/* What the human-readable text of a report says, up to the copy of the
 * original it quotes. */
struct notice {
        struct mail_span report;        /* the text before the copy */
        struct mail_span copy;          /* the copy of the original, if marked */
        struct code_hit perm, temp;
        char qmail_rcpt[ADDR_PATH_MAX + 1];
        bool banner;                    /* the MTA's own words */
        bool failure, delay;            /* it gave up; it keeps trying */
        char *flat;                     /* the report, flattened (text_flatten) */
        char *context;                  /* flat and the Subject: the words the rules
                                         * read where the diagnostic says nothing */
};

static void notice_read(struct mail_span text, struct mail_span hdr, struct notice *nt)
{
        memset(nt, 0, sizeof(*nt));
        if (text.n > NOTICE_MAX)
                text.n = NOTICE_MAX;
        nt->copy = (struct mail_span){ text.p + text.n, 0 };
        const char *p = text.p, *end = text.p + text.n, *report_end = end;
        struct mail_span line;
        size_t line_no = 0;
        for (;;) {
                const char *start = p;
                if (!mailparse_line_next(&p, end, &line))
                        break;
                if (line_is_copy_marker(line)) {
                        report_end = start;
                        nt->copy = (struct mail_span){ p, (size_t)(end - p) };
                        break;
                }
                line_codes(line, line_no, &nt->perm, &nt->temp);
                if (!nt->qmail_rcpt[0])
                        qmail_recipient(line, nt->qmail_rcpt);
                line_no++;
        }
        nt->report = (struct mail_span){ text.p, (size_t)(report_end - text.p) };
        nt->flat = xmalloc(nt->report.n + 1);
        size_t n = text_flatten(nt->report.p, nt->report.n, nt->flat);
        nt->flat[n] = '\0';
        nt->banner = has_any(nt->flat, n, report_banners, N_ELEM(report_banners));
        nt->failure = has_any(nt->flat, n, failure_phrases, N_ELEM(failure_phrases));
        nt->delay = has_any(nt->flat, n, delay_phrases, N_ELEM(delay_phrases));
        /* Sendmail and others name the reason in the Subject ("Returned
         * mail: User unknown") */
        char subject[MAIL_FIELD_MAX];
        if (!mailparse_header_get(hdr, "subject", subject, sizeof(subject)))
                subject[0] = '\0';
        size_t sn = strlen(subject);
        nt->context = xmalloc(n + sn + 2);
        memcpy(nt->context, nt->flat, n);
        nt->context[n] = ' ';
        memcpy(nt->context + n + 1, subject, sn + 1);
}

/* The lines around a code: where MTAs put the reply they quote and the
 * words that explain it. */
static char *notice_window(const struct notice *nt, const struct code_hit *hit)
{
        const char *p = nt->report.p, *end = nt->report.p + nt->report.n, *from = NULL, *to = end;
        struct mail_span line;
        for (size_t line_no = 0; mailparse_line_next(&p, end, &line); line_no++) {
                if (!from && line_no + 2 >= hit->line_no)
                        from = line.p;
                if (line_no >= hit->line_no + 3) {
                        to = p;
                        break;
                }
        }
        if (!from)
                from = nt->report.p;
        size_t n = (size_t)(to - from);
        char *w = xmalloc(n + 1);
        memcpy(w, from, n);
        w[n] = '\0';
        return w;
}

/* An address whose own line (or the next one: Sendmail's "(reason: ...)")
 * quotes a failure code is judged by that line: a report about several
 * recipients, or a transcript of several hosts, says something else of
 * each. */
static void notice_recipient_own(struct mail_span line, const char *next, const char *end,
                                 struct bounce_rcpt *r)
{
        struct code_hit perm = { 0 }, temp = { 0 };
        struct mail_span lines[2] = { line };
        size_t n = 1;
        line_codes(line, 0, &perm, &temp);
        if (!perm.found && !temp.found && mailparse_line_next(&next, end, &lines[1])) {
                line_codes(lines[1], 1, &perm, &temp);
                n = 2;
        }
        if (!perm.found && !temp.found)
                return;
        const struct code_hit *hit = perm.found ? &perm : &temp;
        size_t len = (size_t)(lines[n - 1].p + lines[n - 1].n - line.p);
        char *text = xmalloc(len + 1);
        memcpy(text, line.p, len);
        text[len] = '\0';
        struct bounce_evidence e = {
                .status = hit->status, .reply = hit->reply, .text = text, .context = NULL,
                .failed = true, .delayed = hit == &temp, .notice = true,
        };
        r->kind = bounce_classify(&e, &r->reason);
        copy_str(r->status, sizeof(r->status), hit->status);
        diag_set(r->diagnostic, sizeof(r->diagnostic), text, len);
        free(text);
}

/* Every address a plain report names before the copy of the original,
 * judged as the report is: the recipient of the mail it came back from
 * may be any of them (bounce_info_select()). */
static void notice_recipients(const struct notice *nt, const struct verp *v, struct bounce_info *out)
{
        const char *p = nt->report.p, *end = nt->report.p + nt->report.n;
        struct mail_span line;
        char addr[ADDR_PATH_MAX + 1];
        while (out->n_rcpts < BOUNCE_RCPTS_MAX && mailparse_line_next(&p, end, &line)) {
                size_t from = 0;
                while (out->n_rcpts < BOUNCE_RCPTS_MAX && line_recipient_from(line, &from, v, addr)) {
                        bool seen = false;
                        for (size_t i = 0; i < out->n_rcpts && !seen; i++)
                                seen = !strcasecmp(out->rcpts[i].recipient, addr);
                        if (seen)
                                continue;
                        struct bounce_rcpt *r = &out->rcpts[out->n_rcpts++];
                        copy_str(r->recipient, sizeof(r->recipient), addr);
                        r->kind = out->kind;
                        r->reason = out->reason;
                        copy_str(r->status, sizeof(r->status), out->status);
                        copy_str(r->diagnostic, sizeof(r->diagnostic), out->diagnostic);
                        notice_recipient_own(line, p, end, r);
                }
        }
}

/* A plain-text report from what looks like an MTA and not an
 * auto-reply: one that quotes a 5xx/5.x.x code and says it failed, or a
 * 4xx/4.x.x code and says it failed or keeps trying, or (without any
 * code) says it failed.  Classified by the lines around the code, then by
 * the whole report. */
static void notice_parse(const struct notice *nt, struct mail_span hdr, const struct verp *v,
                         struct bounce_info *out)
{
        struct origin o;
        origin_get(hdr, &o);
        if (!(o.daemon || nt->banner) || o.autoreply)
                return;

        /* X-Failed-Recipients (Exim, Gmail) says it failed, in any language */
        bool failure = nt->failure || o.failed_rcpt[0];
        const struct code_hit *hit = NULL;
        if (nt->perm.found && failure)
                hit = &nt->perm;
        else if (nt->temp.found && (nt->delay || failure))
                hit = &nt->temp;
        else if (!failure && !nt->delay)
                return;
        char *window = hit ? notice_window(nt, hit) : NULL;
        struct bounce_evidence e = {
                .status = hit ? hit->status : NULL,
                .reply = hit ? hit->reply : 0,
                .text = window ? window : nt->flat,
                .context = nt->context,
                .failed = failure,
                .delayed = hit ? hit == &nt->temp : !failure,
                .notice = true,
        };
        if (hit && !hit->status[0] && !hit->reply)
                e.reply = hit == &nt->perm ? 550 : 450;
        out->kind = bounce_classify(&e, &out->reason);
        free(window);
        if (hit) {
                copy_str(out->status, sizeof(out->status), hit->status);
                diag_set(out->diagnostic, sizeof(out->diagnostic), hit->line.p, hit->line.n);
        } else {
                diag_set(out->diagnostic, sizeof(out->diagnostic), nt->report.p, nt->report.n);
        }

        notice_recipients(nt, v, out);
        /* the recipient: X-Failed-Recipients, qmail's "<addr>:", or the
         * nearest address at or above the code */
        recipient_set(out->recipient, o.failed_rcpt[0] ? o.failed_rcpt : NULL);
        if (!out->recipient[0] && nt->qmail_rcpt[0])
                copy_str(out->recipient, sizeof(out->recipient), nt->qmail_rcpt);
        if (out->recipient[0])
                return;
        size_t hit_line = hit ? hit->line_no : SIZE_MAX;
        struct mail_span near[NEAR_LINES + 1], line;
        size_t n_near = 0, line_no = 0;
        const char *p = nt->report.p, *end = nt->report.p + nt->report.n;
        while (line_no <= hit_line && mailparse_line_next(&p, end, &line)) {
                if (hit && line_no + NEAR_LINES >= hit_line)
                        near[n_near++] = line;
                else if (!hit && line_recipient(line, v, out->recipient))
                        return;
                line_no++;
        }
        while (n_near > 0)
                if (line_recipient(near[--n_near], v, out->recipient))
                        return;
}

/* "Return-Path:" in the header of the copy of the original that a plain
 * report quotes. */
static int64_t verp_in_copy(struct verp *v, struct mail_span copy)
{
        const char *p = copy.p, *end = copy.p + copy.n;
        struct mail_span line, hdr, body;
        for (;;) {                      /* blank lines after the marker */
                const char *start = p;
                if (!mailparse_line_next(&p, end, &line))
                        return 0;
                if (!mailparse_line_blank(line)) {
                        p = start;
                        break;
                }
        }
        mailparse_entity_split((struct mail_span){ p, (size_t)(end - p) }, &hdr, &body);
        return verp_in_header(v, hdr, "return-path");
}

/* ---- the relay's own refusals ------------------------------------------- */

/* Whether the reply names, in <...>, another address than rcpt: Postfix
 * echoes the address a restriction is about, and refuses our return path
 * at RCPT too (smtpd_delay_reject), with 5.1.0 or 4.1.8. */
static bool names_another(const char *reply, const char *rcpt)
{
        size_t rn = strlen(rcpt);
        for (const char *p = strchr(reply, '<'); p; p = strchr(p + 1, '<')) {
                const char *e = strchr(p + 1, '>');
                if (!e)
                        break;
                size_t n = (size_t)(e - p - 1);
                if (memchr(p + 1, '@', n) && (n != rn || strncasecmp(p + 1, rcpt, n) != 0))
                        return true;
        }
        return false;
}

enum bounce_kind bounce_relay_reply(long code, const char *reply, const char *rcpt, char status[16],
                                   const char **reason)
{
        int cls = bounce_report_status(reply, status);
        *reason = "undefined";
        if (code < 400 || code > 599)
                return BOUNCE_UNKNOWN;
        /* about our return path, not the recipient */
        if (names_another(reply, rcpt)) {
                *reason = "rejected";
                return BOUNCE_SENDER;
        }
        /* 421: the relay closes the session, whoever the mail was for */
        if (code == 421) {
                *reason = "systemerror";
                return BOUNCE_UNKNOWN;
        }
        struct bounce_evidence e = {
                .status = cls && cls - '0' == code / 100 ? status : NULL,
                .reply = (int)code,
                .text = reply,
                .failed = code >= 500,
                .delayed = code < 500,
        };
        /* a 5xx without an enhanced code: its text alone would be a
         * guess, so no address is called dead on it */
        enum bounce_kind k = bounce_classify(&e, reason);
        if (k == BOUNCE_PERMANENT && !e.status)
                k = BOUNCE_TEMPORARY;
        return k;
}

/* ---- the whole message -------------------------------------------------- */

/* Delivery-status fields in the text of a report (MTAs that put the
 * fields of RFC 3464 into the text part, or a multipart whose boundary
 * never occurs): read from the first Final-Recipient or Original-Recipient
 * line's block on. */
static void dsn_in_text(struct mail_span text, struct dsn_report *dsn)
{
        const char *p = text.p, *end = text.p + text.n, *block = text.p;
        struct mail_span line;
        for (;;) {
                const char *start = p;
                if (!mailparse_line_next(&p, end, &line))
                        return;
                if (mailparse_line_blank(line)) {
                        block = p;
                        continue;
                }
                if ((line.n > 16 && !strncasecmp(line.p, "final-recipient:", 16)) ||
                    (line.n > 19 && !strncasecmp(line.p, "original-recipient:", 19))) {
                        if (block > start)
                                block = start;
                        bounce_report_dsn((struct mail_span){ block, (size_t)(end - block) }, dsn);
                        return;
                }
        }
}

/* The first code of the diagnostic that says more than the Status
 * field: one with a subject and a detail ("5.7.1" in "5.1.0 - Unknown
 * address error 550-'5.7.1 ... Access denied'"), or, where the Status
 * names nothing (x.0.0 or none), one with a subject ("5.3.0"). */
static bool diag_specific(const char *diag, const char *status, char out[16])
{
        bool vague = !status[0] || (status[1] == '.' && !strncmp(status + 2, "0.0", 4));
        size_t n = strlen(diag), len;
        /* the code of a reply the diagnostic quotes ("550 5.7.1", "550-'5.7.1")
         * is the remote server's own, over a gateway's summary before it */
        for (size_t i = 0; vague && i + 4 < n; i++) {
                if (!bounce_report_reply_at(diag, n, i))
                        continue;
                size_t j = i + 3;
                while (j < n && j < i + 6 && strchr(" -'\"", diag[j]))
                        j++;
                if (bounce_report_enhanced_at(diag, n, j, &len) == diag[i] && len < 16 &&
                    diag[j + 2] >= '1' && diag[j + 2] <= '9') {
                        memcpy(out, diag + j, len);
                        out[len] = '\0';
                        return true;
                }
        }
        for (size_t i = 0; i < n; i++) {
                if (!bounce_report_enhanced_at(diag, n, i, &len))
                        continue;
                const char *c = diag + i;
                if (len == 5 && c[2] >= '1' && c[2] <= '9' && ((c[4] >= '1' && c[4] <= '9') || vague)) {
                        memcpy(out, c, len);
                        out[len] = '\0';
                        return true;
                }
                i += len;
        }
        return false;
}

/* The line of the notice that names `rcpt` and quotes a reply with an
 * enhanced status code: where an MTA that lists every recipient with its
 * reply (OpenSMTPD, ...) puts what its DSN fields leave out.  (A line
 * without a code is not enough: Sendmail names the recipient with a
 * generic reply and the reason on the line before.)  Its codes in *hit. */
static bool notice_line_of(const struct notice *nt, const char *rcpt, struct code_hit *hit)
{
        size_t rn = strlen(rcpt);
        const char *p = nt->report.p, *end = nt->report.p + nt->report.n;
        struct mail_span line;
        if (!rn || !strchr(rcpt, '@'))
                return false;
        while (mailparse_line_next(&p, end, &line)) {
                bool named = false;
                for (size_t i = 0; i + rn <= line.n && !named; i++)
                        named = strncasecmp(line.p + i, rcpt, rn) == 0;
                if (!named)
                        continue;
                struct code_hit perm = { 0 }, temp = { 0 };
                line_codes(line, 0, &perm, &temp);
                const struct code_hit *h = perm.found ? &perm : &temp;
                if (h->found && h->status[0]) {
                        *hit = *h;
                        return true;
                }
        }
        return false;
}

/* One recipient group of a DSN, judged by its action, codes and
 * diagnostic (the notice's words where those say nothing). */
static void dsn_judge(const struct dsn_group *d, const struct notice *nt, struct bounce_rcpt *r)
{
        memset(r, 0, sizeof(*r));
        r->reason = "undefined";
        const char *diag = d->diag;
        char line[MAIL_FIELD_MAX];
        recipient_set(r->recipient, d->rcpt);
        if (!strcmp(d->action, "delivered") || !strcmp(d->action, "relayed") ||
            !strcmp(d->action, "expanded") || !strcmp(d->action, "deliverable") || d->status[0] == '2') {
                r->reason = "delivered";
        } else if (d->kind != BOUNCE_UNKNOWN) {
                /* (failed without a 4xx/5xx code, or with 2.x.x, a group
                 * says nothing it could be judged by) */
                /* a specific code in the remote MTA's own words over the
                 * Status field, which relaying MTAs often fill generically */
                char diag_status[16];
                int reply = d->reply;
                /* no diagnostic: the notice's line about this recipient */
                struct code_hit own;
                if (!diag[0] && notice_line_of(nt, r->recipient, &own)) {
                        diag_set(line, sizeof(line), own.line.p, own.line.n);
                        diag = line;
                        reply = own.reply;
                }
                bool specific = diag_specific(diag, d->status, diag_status);
                struct bounce_evidence e = {
                        .status = specific ? diag_status : d->status, .reply = reply, .text = diag,
                        .context = nt->context, .delayed = !strcmp(d->action, "delayed"),
                        .failed = !strcmp(d->action, "failed"),
                };
                r->kind = bounce_classify(&e, &r->reason);
        }
        copy_str(r->status, sizeof(r->status), d->status);
        diag_set(r->diagnostic, sizeof(r->diagnostic), diag, strlen(diag));
}

bool bounce_info_select(struct bounce_info *bi, const char *rcpt)
{
        for (size_t i = 0; i < bi->n_rcpts; i++) {
                const struct bounce_rcpt *r = &bi->rcpts[i];
                if (!r->recipient[0] || strcasecmp(r->recipient, rcpt) != 0)
                        continue;
                copy_str(bi->recipient, sizeof(bi->recipient), r->recipient);
                bi->kind = r->kind;
                bi->reason = r->reason;
                copy_str(bi->status, sizeof(bi->status), r->status);
                copy_str(bi->diagnostic, sizeof(bi->diagnostic), r->diagnostic);
                return true;
        }
        return false;
}

static bool verp_like_try(struct mail_span a, void *ctx)
{
        return verp_like(ctx, a);
}

/* The topmost Delivered-To or X-Original-To with an address of our VERP
 * form: the envelope recipient the MTA delivered the report to (the
 * report's own copies are below it).  Those without our form are skipped:
 * a hosted mailbox adds its own plain address on top.  *seen when one
 * decided (or one could not be read): then nothing below it counts. */
static int64_t verp_delivered_to(struct verp *v, struct mail_span hdr, bool *seen)
{
        const char *p = hdr.p, *end = hdr.p + hdr.n;
        struct mail_field f;
        char value[MAIL_FIELD_MAX];
        while (mailparse_field_next(&p, end, &f)) {
                if (!mailparse_field_is(&f, "delivered-to") && !mailparse_field_is(&f, "x-original-to"))
                        continue;
                if (!mailparse_field_text(f.value, value, sizeof(value), false)) {
                        *seen = true;
                        return 0;
                }
                if (!mailparse_addr_each(value, verp_like_try, v))
                        continue;
                *seen = true;
                return verp_in_value(v, value);
        }
        return 0;
}

int bounce_parse(const char *msg, size_t len, const char *return_path, const struct secret_keys *keys,
                 struct bounce_info *out)
{
        memset(out, 0, sizeof(*out));
        out->reason = "undefined";
        if (!msg || len > BOUNCE_MSG_MAX)
                return 0;
        /* An MTA delivers whole lines: a last line without its line break
         * was cut, and a cut address or code must not pass for a whole one. */
        const char *last_nl = memrchr(msg, '\n', len);
        len = last_nl ? (size_t)(last_nl - msg) + 1 : 0;

        struct verp v;
        verp_init(&v, return_path, keys);
        struct scan *sc = xcalloc(1, sizeof(*sc));
        struct mail_message *m = mailparse_open(msg, len);
        struct mail_span hdr = mailparse_headers(m);
        mailparse_walk(m, scan_part, sc);
        struct notice nt;
        notice_read(sc->notice ? sc->notice_text : (struct mail_span){ "", 0 }, hdr, &nt);
        struct mail_span copy = nt.copy;
        /* an Amazon SES notification, or the fields of a delivery status
         * notification set as text */
        if (!sc->dsn.found && !sc->arf && sc->notice &&
            bounce_report_ses(sc->notice_text, &sc->dsn, &sc->arf_rep) == SES_COMPLAINT)
                sc->arf = true;
        if (!sc->dsn.found && !sc->arf) {
                struct origin o;
                origin_get(hdr, &o);
                if ((o.daemon || nt.banner) && !o.autoreply)
                        dsn_in_text(nt.report, &sc->dsn);
        }

        /* Microsoft's JMRP: a complaint as a forwarded original */
        if (!sc->arf && !sc->dsn.found && sc->orig && sc->orig_rep.jmrp_rcpt[0]) {
                sc->arf = true;
                copy_str(sc->arf_rep.feedback_type, sizeof(sc->arf_rep.feedback_type), "abuse");
                copy_str(sc->arf_rep.rcpt, sizeof(sc->arf_rep.rcpt), sc->orig_rep.jmrp_rcpt);
        }
        if (sc->arf) {
                const char *t = sc->arf_rep.feedback_type;
                /* every feedback type but "not-spam" (RFC 6650: a report that
                 * a mail was wanted) is the recipient or its provider asking
                 * for no more: opt-out, abuse, fraud, virus, auth-failure, other */
                if (strcmp(t, "not-spam") != 0) {
                        out->kind = BOUNCE_COMPLAINT;
                        out->reason = "feedback";
                }
                recipient_set(out->recipient, sc->arf_rep.rcpt[0] ? sc->arf_rep.rcpt : sc->orig_rep.to);
                char d[96];
                snprintf(d, sizeof(d), "feedback-type %s", t[0] ? t : "(none)");
                diag_set(out->diagnostic, sizeof(out->diagnostic), d, strlen(d));
        } else if (sc->dsn.found) {
                /* each group judged; the one that says most speaks for the
                 * report: a dead address over a passing trouble over a
                 * refusal of us, among equals the first */
                static const int rank[] = { [BOUNCE_UNKNOWN] = 0, [BOUNCE_SENDER] = 1,
                                            [BOUNCE_TEMPORARY] = 2, [BOUNCE_COMPLAINT] = 3,
                                            [BOUNCE_PERMANENT] = 4 };
                size_t best = 0;
                for (size_t i = 0; i < sc->dsn.n; i++) {
                        dsn_judge(&sc->dsn.groups[i], &nt, &out->rcpts[i]);
                        if (rank[out->rcpts[i].kind] > rank[out->rcpts[best].kind])
                                best = i;
                }
                out->n_rcpts = sc->dsn.n;
                const struct bounce_rcpt *r = &out->rcpts[best];
                copy_str(out->recipient, sizeof(out->recipient), r->recipient);
                out->kind = r->kind;
                out->reason = r->reason;
                copy_str(out->status, sizeof(out->status), r->status);
                copy_str(out->diagnostic, sizeof(out->diagnostic), r->diagnostic);
        } else if (sc->notice) {
                notice_parse(&nt, hdr, &v, out);
        }

        /* the mail: the envelope recipient the MTA delivered the report to,
         * else what the report and the original name */
        bool delivered_seen = false;
        out->mail_id = verp_delivered_to(&v, hdr, &delivered_seen);
        if (!out->mail_id && !delivered_seen)
                out->mail_id = verp_in_header(&v, hdr, "to");
        if (!out->mail_id && sc->arf)
                out->mail_id = verp_in_value(&v, sc->arf_rep.mail_from);
        if (!out->mail_id && sc->orig)
                out->mail_id = verp_in_value(&v, sc->orig_rep.return_path);
        if (!out->mail_id)
                out->mail_id = verp_in_copy(&v, copy);
        out->verp = out->mail_id ? BOUNCE_VERP_VALID : v.invalid ? BOUNCE_VERP_INVALID :
                    BOUNCE_VERP_ABSENT;
        if (out->kind == BOUNCE_UNKNOWN && strcmp(out->reason, "delivered") != 0) {
                struct origin o;
                origin_get(hdr, &o);
                out->autoreply = o.autoreply;
                if (o.autoreply)
                        out->reason = "vacation";
        }

        free(nt.flat);
        free(nt.context);
        mailparse_close(m);
        free(sc);
        return 0;
}
