/*
 * bounce.c - the verdict on a returned mail (bounce_parse()): the walk
 * over its MIME parts, which of them speaks (a feedback report, a DSN and
 * each of its recipient groups judged by bounce_classify(), else the
 * plain-text notice), which recipient failed or complained, and whether
 * the failure is permanent or temporary; also the relay's own refusal of
 * a recipient while sending (bounce_relay_reply(): one reply line, by its
 * enhanced status code), and the names of the classes.  It weighs what
 * bounce_report.c reads from RFC 3464 delivery status notifications and
 * RFC 5965 (ARF) feedback reports, what bounce_notice.c reads from the
 * text of a notice, and which mail bounce_verp.c finds it is about; the
 * message is taken apart by the MIME reader (mailparse.c).
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
#include "bounce_int.h"
#include "bounce_reason.h"
#include "bounce_report.h"
#include "log.h"
#include "mailparse.h"
#include "textutil.h"

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

/* ---- what the verdict is written with (bounce_int.h) -------------------- */

/* Printable ASCII for the log: whitespace runs become one space, other
 * bytes '?', cut to what fits. */
void diag_set(char *out, size_t cap, const char *s, size_t n)
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

/* Normalise a recipient into out (ADDR_PATH_MAX + 1 bytes); "" when it is
 * no valid address. */
void recipient_set(char *out, const char *v)
{
        struct mail_span a;
        struct addr parsed;
        out[0] = '\0';
        if (!v || !mailparse_addr_first(v, &a))
                return;
        if (addr_parse(a.p, a.n, &parsed) == ADDR_OK)
                copy_str(out, ADDR_PATH_MAX + 1, parsed.mailbox);
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
                .relay = true,
        };
        /* a 5xx without an enhanced code: its text alone would be a
         * guess, so no address is called dead on it */
        enum bounce_kind k = bounce_classify(&e, reason);
        if (k == BOUNCE_PERMANENT && !e.status)
                k = BOUNCE_TEMPORARY;
        return k;
}

/* ---- the whole message -------------------------------------------------- */

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
                        .failed = !strcmp(d->action, "failed"), .mta_reason = d->mta_reason,
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
                        out->auth_report = !strcmp(t, "auth-failure");
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

        notice_free(&nt);
        mailparse_close(m);
        free(sc);
        return 0;
}
