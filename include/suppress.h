/* What a report of a failed delivery does to its subscriber, whether it
 * came as a DSN or complaint (`newsletterctl bounce`) or as the relay's
 * own refusal while sending. */
#pragma once
#include <stdint.h>

#include "bounce.h"

struct conf;
struct store;

enum report_action {
        REPORT_COUNTED,         /* recorded; the subscriber stays */
        REPORT_REPEATED,        /* the same report about the same mail was recorded before */
        REPORT_SUPPRESSED,      /* bounced: no further mail */
        REPORT_UNSUBSCRIBED,    /* a complaint: off every list */
};

/* One report of a failed delivery, whoever made it. */
struct report {
        int64_t subscriber_id;
        int64_t outbox_id;      /* the mail it is about; 0: unknown */
        int64_t issue_id;       /* that mail's issue; 0: none */
        enum bounce_kind kind;  /* not BOUNCE_UNKNOWN */
        const char *reason;     /* Sisimai's vocabulary */
        const char *status, *diagnostic;
        const char *recipient;  /* whose domain a 'sender' report counts for */
        int64_t at;
};

/* Record the report (bounce_report, with its class and reason; a bounce
 * row for BOUNCE_PERMANENT, BOUNCE_TEMPORARY and BOUNCE_COMPLAINT) and
 * apply it to its subscriber, inside the caller's transaction.
 * BOUNCE_SENDER changes no subscriber (REPORT_COUNTED): counted per
 * receiving domain, with a warning in the log when a domain refused
 * several mails within an hour.  0 or negative. */
int suppress_apply(struct store *st, const struct conf *c, const struct report *rep,
                   enum report_action *action);

/* "counted", "already recorded", "suppressed", "unsubscribed" */
const char *report_action_name(enum report_action a);
