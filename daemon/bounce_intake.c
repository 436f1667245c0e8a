/*
 * bounce_intake.c - one returned message from arrival to effect: the
 * classifier's verdict (bounce.c), the proof that it is about a mail of
 * ours (a VERP address with a valid tag, when return_path has {id}), the
 * recipient check (a report naming another address than the mail's
 * recipient changes nothing, but a complaint counts for the mail's
 * recipient), and the effect (suppress.c).  Every caller that receives
 * bounces (`newsletterctl bounce` through h_bounce, a mailbox reader)
 * goes through bounce_intake(), so that they cannot disagree.
 *
 * Owns nothing past a call.  Runs inside the caller's transaction; never
 * talks to a socket, never writes with explain.
 */
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "bounce_intake.h"
#include "conf.h"
#include "log.h"
#include "store.h"
#include "suppress.h"

/* A report without proof, or a message that is no report of ours:
 * consumed all the same (the MTA must not return it to a sender who may
 * be forged), counted, and nothing else changes. */
static int intake_drop(struct store *st, struct bounce_outcome *out, bool explain, bool refused,
                       const char *why, int64_t now)
{
        out->action = explain ? "explained" : refused ? "refused" : "ignored";
        out->why = why;
        if (explain)
                return 0;
        /* only a counter: what anyone can send must not grow a table */
        int r = refused ? store_bounce_refused(st, why, now) : store_bounce_ignored(st, why, now);
        if (r < 0)
                return r;
        if (refused)
                log_warn("bounce: %s report refused: %s", bounce_kind_name(out->info.kind), why);
        else
                log_info("bounce: message ignored: %s", why);
        return 0;
}

int bounce_intake(struct store *st, const struct conf *c, const char *msg, size_t n, int64_t now,
                  bool explain, struct bounce_outcome *out)
{
        memset(out, 0, sizeof(*out));
        out->why = "";
        struct bounce_info *bi = &out->info;
        bounce_parse(msg, n, c->return_path, &c->keys, bi);
        bool verp = *c->return_path;

        /* whose is it: the mail the VERP address names */
        int64_t subscriber_id = 0;
        char sent_to[256] = "";
        int r;
        if (bi->mail_id) {
                r = store_mail_owner(st, bi->mail_id, &subscriber_id, sent_to, sizeof(sent_to),
                                     &out->issue_id);
                if (r < 0)
                        return r;
                if (r == 0)
                        out->mail_id = bi->mail_id;
        }
        /* a report naming several recipients speaks of the mail's */
        if (out->mail_id)
                bounce_info_select(bi, sent_to);
        /* with VERP the recipient is the mail's; a report naming nobody
         * counts for it when it is plainly a failure notice */
        if (out->mail_id && !bi->recipient[0] && bi->kind != BOUNCE_UNKNOWN)
                snprintf(bi->recipient, sizeof(bi->recipient), "%s", sent_to);
        if (bi->kind == BOUNCE_UNKNOWN)
                return intake_drop(st, out, explain, false, bi->autoreply ? "autoreply" : "not understood", now);
        /* With VERP every mail of ours went out with its own tagged return
         * path, so a true report came back to one: anything else anyone
         * could have sent, naming anyone. */
        if (verp && bi->verp != BOUNCE_VERP_VALID)
                return intake_drop(st, out, explain, true, bi->verp == BOUNCE_VERP_INVALID ?
                                   "VERP address with a wrong id or tag" : "no VERP address", now);
        if (bi->mail_id && !out->mail_id)
                return intake_drop(st, out, explain, true, "VERP address of no mail or subscriber of ours", now);
        /* A complaint is about the mail its VERP address names, whatever
         * address the report shows: feedback loops redact or rewrite the
         * complainant's address ("redacted@...", the address a mail was
         * forwarded to).  The tag travels with the mail (a forwarded copy
         * carries it too), so an authentication-failure report (RFC 6591),
         * which a forwarding hop's receiver sends about its own
         * recipient, is not taken for the mail's recipient's wish. */
        if (out->mail_id && bi->kind == BOUNCE_COMPLAINT && !bi->auth_report &&
            strcasecmp(bi->recipient, sent_to) != 0) {
                if (!explain)
                        log_info("bounce: complaint names %s, counted for the recipient of mail %lld",
                                 bi->recipient, (long long)out->mail_id);
                snprintf(bi->recipient, sizeof(bi->recipient), "%s", sent_to);
        }
        /* a report about someone else than who got that mail is not believed */
        if (out->mail_id && strcasecmp(bi->recipient, sent_to) != 0)
                return intake_drop(st, out, explain, true, "another recipient than its mail had", now);
        if (explain) {
                out->action = "explained";
                return 0;
        }
        /* a confirmation mail of a sign-up kept apart: its data joins the
         * subscribers, where bounces are counted */
        if (out->mail_id && !subscriber_id &&
            ((r = store_signup_adopt_mail(st, bi->mail_id, now)) < 0 ||
             (r = store_mail_owner(st, bi->mail_id, &subscriber_id, sent_to, sizeof(sent_to),
                                   &out->issue_id)) < 0))
                return r;
        if (!verp && !subscriber_id && bi->recipient[0]) {
                struct addr a;
                if (addr_parse(bi->recipient, strlen(bi->recipient), &a) == ADDR_OK &&
                    ((r = store_signup_adopt_key(st, a.key, now)) < 0 ||
                     (r = store_subscriber_find(st, a.key, &subscriber_id)) < 0))
                        return r;
        }
        if (!subscriber_id)
                return intake_drop(st, out, explain, false, "unknown mail", now);

        const struct report rep = {
                .subscriber_id = subscriber_id, .outbox_id = out->mail_id, .issue_id = out->issue_id,
                .kind = bi->kind, .reason = bi->reason, .status = bi->status,
                .diagnostic = bi->diagnostic, .recipient = bi->recipient, .at = now,
        };
        enum report_action a;
        if ((r = suppress_apply(st, c, &rep, &a)) < 0)
                return r;
        out->action = report_action_name(a);
        log_info("bounce: %s report (%s, %s) for mail %lld: subscriber %s", bounce_class_name(bi->kind),
                 bi->reason, bi->status[0] ? bi->status : "no status", (long long)out->mail_id, out->action);
        return 0;
}
