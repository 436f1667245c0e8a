/* What a report of a failed delivery does to its subscriber, whether it
 * came as a DSN or complaint (`newsletterctl bounce`) or as the relay's
 * own refusal while sending. */
#pragma once
#include <stdint.h>

#include "bounce.h"

struct conf;
struct store;
struct bounce_row;
struct bounce_report_row;

enum report_action {
        REPORT_COUNTED,         /* recorded; the subscriber stays */
        REPORT_REPEATED,        /* the same report about the same mail was recorded before */
        REPORT_SUPPRESSED,      /* bounced: no further mail */
        REPORT_UNSUBSCRIBED,    /* a complaint: off every list */
};

/* Record the report (rr: its class and reason; row, with row->kind
 * bounce_kind_name(kind), for BOUNCE_PERMANENT, BOUNCE_TEMPORARY or
 * BOUNCE_COMPLAINT) about the subscriber row->subscriber_id and apply it,
 * inside the caller's transaction.  BOUNCE_SENDER changes no subscriber
 * (REPORT_COUNTED): counted per domain, with a warning in the log when a
 * domain refused several mails within an hour.  0 or negative. */
int suppress_apply(struct store *st, const struct conf *c, enum bounce_kind kind,
                   const struct bounce_row *row, const struct bounce_report_row *rr,
                   enum report_action *action);

/* "counted", "already recorded", "suppressed", "unsubscribed" */
const char *report_action_name(enum report_action a);
