/* Housekeeping: stripping expired sign-ups and purging old ones (and other
 * records past their time), in small slices between the requests, so that
 * a million of them never stall the website. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct conf;
struct store;

struct housekeeping {
        bool active;
        int64_t expire_before;  /* pending sign-ups mailed before this are expired */
        int64_t purge_before;   /* expired sign-ups stripped before this are purged */
        int64_t stripped;       /* done in the current run */
        int64_t purged;
        int64_t todo;           /* stripped + purged at its end, as counted when asked */
        int64_t purge_pending_before;   /* sign-ups kept apart mailed before this are purged */
        int64_t challenges_before;      /* used sign-up challenges expired by then are purged */
        int64_t imap_seen_before;       /* messages the IMAP intake judged before this are forgotten */
        int phase;              /* what the next slice does (housekeeping.c) */
};

/* Start (or widen) a run with the cutoffs of `now`. */
void housekeeping_request(struct housekeeping *hk, const struct conf *c, int64_t now);
/* housekeeping_work(): more is left, but the checkpointer should catch up
 * first (no slice was done; come back in a moment) */
#define HOUSEKEEPING_LATER 2

/* One slice, inside the batch (opened here when there is work): 1 when more
 * is left, HOUSEKEEPING_LATER, 0 when the run is complete, negative on a
 * store failure. */
int housekeeping_work(struct housekeeping *hk, struct store *st, int64_t now);
