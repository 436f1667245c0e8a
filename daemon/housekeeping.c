/*
 * housekeeping.c - strips expired sign-ups and purges old ones.  A pending
 * sign-up whose last confirmation mail is older than confirm_ttl is expired
 * from that moment on (the handlers see it from the dates); what has to
 * happen to the row, promptly, is that the address, the name and the
 * consent record go.  That is done here in slices of a few hundred rows,
 * one per loop iteration inside the batch transaction and
 * only in iterations no request waits on, so that the website never waits
 * long behind it.  While the background checkpoint is behind, no slice is
 * done: the WAL stays short and its copying never lands on the main thread.
 * The same run forgets used sign-up challenges past their expiry and the
 * IMAP intake's records of messages judged over IMAP_SEEN_KEEP ago.
 * Owns no data; the store does the SQL (store_expire.c, store_imap.c).
 */
#include <errno.h>
#include <string.h>

#include "conf.h"
#include "housekeeping.h"
#include "imap.h"
#include "log.h"
#include "store.h"

#define SLICE_ROWS 250          /* a few milliseconds of the main thread */

/* A run goes through these in order, a slice at a time: the expired rows of
 * sign-ups kept apart, the unsent mails of the sign-ups these emptied, the
 * linked sign-ups, the purges, the used sign-up challenges that expired,
 * the old records of the IMAP intake. */
enum { HK_SIGNUP_ROWS, HK_SIGNUP_MAILS, HK_LINKED, HK_PURGE, HK_PURGE_PENDING, HK_CHALLENGES,
       HK_IMAP_SEEN };

void housekeeping_request(struct housekeeping *hk, const struct conf *c, int64_t now)
{
        if (!hk->active) {
                hk->stripped = 0;
                hk->purged = 0;
                hk->todo = 0;
                hk->phase = HK_SIGNUP_ROWS;
        }
        hk->active = true;
        hk->expire_before = now - (int64_t)c->confirm_ttl;
        hk->purge_before = now - (int64_t)c->expired_retention;
        hk->purge_pending_before = hk->expire_before - (int64_t)c->expired_retention;
        hk->challenges_before = now;
        hk->imap_seen_before = now - IMAP_SEEN_KEEP;
}

/* One slice (its own savepoint, so that a failure here undoes only the slice
 * and not the requests that share the batch): 1 while more is left. */
static int slice(struct housekeeping *hk, struct store *st, int64_t now)
{
        int64_t n = 0;
        int r;
        switch (hk->phase) {
        case HK_SIGNUP_ROWS:
                r = store_expire_signup_rows(st, hk->expire_before, SLICE_ROWS, &n);
                hk->stripped += n;
                break;
        case HK_SIGNUP_MAILS:   /* (not counted: no sign-up of their own) */
                r = store_expire_signup_mails(st, hk->expire_before, SLICE_ROWS, &n);
                break;
        case HK_LINKED:
                r = store_expire_slice(st, now, hk->expire_before, SLICE_ROWS, &n);
                hk->stripped += n;
                break;
        case HK_PURGE:
                r = store_purge_slice(st, hk->purge_before, SLICE_ROWS, &n);
                hk->purged += n;
                break;
        case HK_PURGE_PENDING:
                r = store_purge_pending_slice(st, hk->purge_pending_before, SLICE_ROWS, &n);
                hk->purged += n;
                break;
        case HK_CHALLENGES:     /* (not counted: nobody's sign-up) */
                r = store_challenge_purge_slice(st, hk->challenges_before, SLICE_ROWS, &n);
                break;
        default:                /* (nor these) */
                r = store_imap_seen_purge_slice(st, hk->imap_seen_before, SLICE_ROWS, &n);
                break;
        }
        if (r < 0)
                return r;
        if (n == SLICE_ROWS)
                return 1;
        if (hk->phase == HK_IMAP_SEEN) {
                hk->active = false;
                return 0;
        }
        hk->phase++;
        return 1;
}

int housekeeping_work(struct housekeeping *hk, struct store *st, int64_t now)
{
        if (!hk->active)
                return 0;
        /* a million stripped sign-ups write faster than the checkpointer
         * copies; waiting for it keeps the WAL short and every checkpoint
         * off the main thread */
        if (store_wal_backlog(st))
                return HOUSEKEEPING_LATER;
        int r = store_batch_begin(st);
        if (r == 0)
                r = store_savepoint(st);
        if (r < 0)
                return r;
        r = slice(hk, st, now);
        if (r < 0) {
                store_rollback_to(st);
                log_err("expiry: a slice failed (%s); tried again in a minute", strerror(-r));
                hk->active = false;
                return r;
        }
        if (store_release(st) < 0) {
                store_rollback_to(st);
                hk->active = false;
                return -EIO;
        }
        if (r == 0 && (hk->stripped || hk->purged))
                log_info("expiry: %lld sign-ups stripped, %lld purged", (long long)hk->stripped,
                         (long long)hk->purged);
        return r;
}
