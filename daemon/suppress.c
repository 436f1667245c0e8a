/*
 * suppress.c - what a report of a failed delivery does to its subscriber,
 * whoever made the report: a DSN or complaint piped into `newsletterctl
 * bounce` (handlers.c), or the relay refusing the recipient while sending
 * (scheduler.c).  The report becomes a bounce row (once per mail and kind);
 * a permanent one, or temporary_limit temporary ones within
 * temporary_window, suppress the subscriber (every pending and confirmed
 * subscription 'bounced'), a complaint unsubscribes from every list.  What
 * the address has pending apart (a sign-up kept apart) is adopted
 * first, so that it is suppressed with the rest.  A 'sender' report (the
 * receiver refusing us) changes no subscriber: it is counted per receiving
 * domain, and the log warns once when one domain refused
 * REFUSALS_WARN mails within an hour.  Every report is kept with its class
 * and reason (bounce_report).  Runs inside the caller's transaction; knows
 * the store and the config, nothing of SMTP or sockets.
 */
#include <assert.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "store.h"
#include "suppress.h"

#define REFUSALS_WARN           3       /* 'sender' reports of one domain within ... */
#define REFUSALS_WINDOW         3600    /* ... this many seconds: one warning */

/* The report row, and for a refusal of us the warning when its domain
 * reaches REFUSALS_WARN within the hour. */
static int report_note(struct store *st, const struct bounce_report_row *rr)
{
        int r = store_bounce_report_add(st, rr);
        if (r < 0 || strcmp(rr->class_name, "sender") != 0 || !rr->domain)
                return r;
        int64_t n = 0, first = 0;
        if ((r = store_bounce_domain_refusals(st, rr->domain, rr->at - REFUSALS_WINDOW, &n, &first)) < 0)
                return r;
        if (n == REFUSALS_WARN) {
                char since[16];
                time_t t = (time_t)first;
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(since, sizeof(since), "%H:%M", &tm);
                log_warn("%s refuses our mails: %s%s(%s), %lld since %s UTC", rr->domain,
                         rr->diagnostic ? rr->diagnostic : "", rr->diagnostic && *rr->diagnostic ? " " : "",
                         rr->reason, (long long)n, since);
        }
        return 0;
}

int suppress_apply(struct store *st, const struct conf *c, const struct report *rep,
                   enum report_action *action)
{
        enum bounce_kind kind = rep->kind;
        assert(kind != BOUNCE_UNKNOWN);
        /* the receiving domain as addr.c spells it (lower-case A-labels),
         * so that GMAIL.com and gmail.com are one refusing domain */
        struct addr a;
        bool parsed = rep->recipient &&
                      addr_parse(rep->recipient, strlen(rep->recipient), &a) == ADDR_OK;
        const struct bounce_report_row report_row = {
                .subscriber_id = rep->subscriber_id, .outbox_id = rep->outbox_id,
                .class_name = bounce_class_name(kind), .reason = rep->reason, .status = rep->status,
                .domain = parsed ? a.domain : NULL, .diagnostic = rep->diagnostic, .at = rep->at,
        };
        const struct bounce_row bounce_row = {
                .subscriber_id = rep->subscriber_id, .outbox_id = rep->outbox_id,
                .issue_id = rep->issue_id, .kind = bounce_kind_name(kind), .status = rep->status,
                .diagnostic = rep->diagnostic, .at = rep->at,
        };
        const struct bounce_report_row *rr = &report_row;
        const struct bounce_row *row = &bounce_row;
        int r = report_note(st, rr);
        if (r < 0)
                return r;
        if (kind == BOUNCE_SENDER) {
                *action = REPORT_COUNTED;
                return 0;
        }
        bool added = true;
        r = store_bounce_add(st, row, &added);
        if (r < 0)
                return r;
        *action = added ? REPORT_COUNTED : REPORT_REPEATED;
        bool suppress = kind == BOUNCE_PERMANENT || kind == BOUNCE_COMPLAINT;
        if (kind == BOUNCE_TEMPORARY && added) {
                int64_t count = 0;
                if ((r = store_bounce_temporary_count(st, row->subscriber_id,
                                                      row->at - (int64_t)c->temporary_window, &count)) < 0)
                        return r;
                suppress = c->temporary_limit && count >= c->temporary_limit;
        }
        if (suppress && (r = store_signup_adopt_subscriber(st, row->subscriber_id, row->at)) < 0)
                return r;
        int64_t changed = 0;
        if (kind == BOUNCE_COMPLAINT) {
                if ((r = store_subscriber_unsubscribe_all(st, row->subscriber_id, row->at, "complaint")) < 0)
                        return r;
                *action = REPORT_UNSUBSCRIBED;
        } else if (suppress) {
                if ((r = store_subscriber_bounced(st, row->subscriber_id, &changed)) < 0)
                        return r;
                *action = REPORT_SUPPRESSED;
        }
        return 0;
}

const char *report_action_name(enum report_action a)
{
        switch (a) {
        case REPORT_COUNTED: return "counted";
        case REPORT_REPEATED: return "already recorded";
        case REPORT_SUPPRESSED: return "suppressed";
        case REPORT_UNSUBSCRIBED: return "unsubscribed";
        }
        return "counted";
}
