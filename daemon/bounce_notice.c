/*
 * bounce_notice.c - reading the plain-text failure notices of MTAs that
 * send no DSN (and the human-readable part of those that do): who sent the
 * message (an MTA, an auto-responder: struct origin), the report before
 * the copy of the original it quotes, the SMTP and enhanced codes in it
 * and the lines around them, the words that say it gave up or keeps
 * trying, the recipients it names, and DSN fields set as text.  A notice
 * is judged by the same rules as a DSN (bounce_classify()).
 *
 * Owns the flattened texts of a struct notice until notice_free().  Must
 * never do I/O or SQL, never read outside the spans it is given, and never
 * guess: a text that does not come from an MTA, or that says neither that
 * delivery failed nor that it is delayed, leaves the verdict unknown.
 * Which mail the notice is about is bounce_verp.c's; the verdict over all
 * parts is bounce.c's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "bounce_int.h"
#include "bounce_reason.h"
#include "bounce_report.h"
#include "log.h"
#include "mailparse.h"
#include "textutil.h"

#define NOTICE_MAX      (64u << 10)     /* human-readable text searched for codes */
#define NEAR_LINES      6               /* lines above a status code searched for the recipient */


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

/* Said by the MTA in a warning that the message is late, not lost (it
 * may name a failure: "Technical details of temporary failure"). */
static const char *const warning_phrases[] = {
        "warning message only", "do not need to resend", "has been delayed", "will be retried",
        "will retry", "will keep trying", "still trying",
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

void origin_get(struct mail_span hdr, struct origin *o)
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

void notice_read(struct mail_span text, struct mail_span hdr, struct notice *nt)
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
        nt->warning = has_any(nt->flat, n, warning_phrases, N_ELEM(warning_phrases));
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

void notice_free(struct notice *nt)
{
        free(nt->flat);
        free(nt->context);
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
void notice_parse(const struct notice *nt, struct mail_span hdr, const struct verp *v,
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
                .delayed = hit ? hit == &nt->temp : nt->warning || !failure,
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

/* Delivery-status fields in the text of a report (MTAs that put the
 * fields of RFC 3464 into the text part, or a multipart whose boundary
 * never occurs): read from the first Final-Recipient or Original-Recipient
 * line's block on. */
void dsn_in_text(struct mail_span text, struct dsn_report *dsn)
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

/* The line of the notice that names `rcpt` and quotes a reply with an
 * enhanced status code: where an MTA that lists every recipient with its
 * reply (OpenSMTPD, ...) puts what its DSN fields leave out.  (A line
 * without a code is not enough: Sendmail names the recipient with a
 * generic reply and the reason on the line before.)  Its codes in *hit. */
bool notice_line_of(const struct notice *nt, const char *rcpt, struct code_hit *hit)
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
