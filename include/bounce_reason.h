/* The one classifier of delivery failures: what a report or a relay's
 * reply says (status code, reply code, diagnostic text, action) -> a
 * reason from Sisimai's vocabulary and the class that decides what
 * happens to the subscriber (a leaf: no I/O, no SQL). */
#pragma once
#include <stdbool.h>

#include "bounce.h"

/* What was read about one failed (or delayed, or delivered) recipient. */
struct bounce_evidence {
        const char *status;     /* enhanced status code "5.1.1"; NULL or "" when none */
        int reply;              /* SMTP reply code 4xx/5xx; 0 when none */
        const char *text;       /* diagnostic text (UTF-8); NULL when none */
        const char *context;    /* the report's other words, asked after the codes; NULL */
        bool delayed;           /* Action: delayed, or a notice that the MTA keeps trying */
        bool failed;            /* Action: failed, or plainly a failure notice */
        const char *mta_reason; /* the reason the sending MTA filed it under; NULL */
        bool relay;             /* our relay's own reply while sending: its access
                                 * table is our admin's policy, not the recipient's */
        bool notice;            /* a plain notice (no DSN fields): a bare reply it quotes
                                 * without the command answered is a filter's word */
};

/* The reason (a static string: "userunknown", "mailboxfull", "blocked",
 * ..., "undefined") and the class: BOUNCE_PERMANENT only for a dead
 * address (userunknown, hostunknown, hasmoved, notaccept) said with a
 * permanent code, or by a failure notice without any code;
 * BOUNCE_SENDER for a refusal of us; BOUNCE_TEMPORARY for the rest. */
enum bounce_kind bounce_classify(const struct bounce_evidence *e, const char **reason);

/* The reason the text alone names by its rules; NULL when none. */
const char *bounce_reason_text(const char *text);

/* The reason an enhanced status code alone names; NULL when none. */
const char *bounce_reason_status(const char *status);

/* The class of a reason, given the class ('4', '5' or 0) of the code said
 * with it. */
enum bounce_kind bounce_reason_class(const char *reason, int code_class, bool delayed);
