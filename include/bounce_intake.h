/* Taking in one returned message, whoever delivered it (the MTA's pipe
 * through `newsletterctl bounce`, or a mailbox reader): parse, classify,
 * check its VERP address, apply, count. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounce.h"

struct conf;
struct store;

struct bounce_outcome {
        struct bounce_info info;        /* what the message says */
        /* "counted", "already recorded", "suppressed", "unsubscribed",
         * "refused" (no proof: changes nothing), "ignored" (no report of
         * ours), "explained" (explain: nothing was changed) */
        const char *action;
        const char *why;                /* for refused and ignored; "" else */
        int64_t mail_id;                /* the mail it is about; 0 */
        int64_t issue_id;               /* that mail's issue; 0 */
};

/* Take in the message msg[0..n) at `now`, inside the caller's
 * transaction: with explain, only read (no row written, nothing counted).
 * 0, or negative -errno from the store. */
int bounce_intake(struct store *st, const struct conf *c, const char *msg, size_t n, int64_t now,
                  bool explain, struct bounce_outcome *out);
