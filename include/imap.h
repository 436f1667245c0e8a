/* The IMAP intake's poller: a thread that reads the bounce mailbox
 * ([bounce] imap_url) with libcurl and hands its unseen messages, one at a
 * time, to the main thread, which judges each inside the batch and says
 * after the commit what becomes of it.  Knows IMAP and the mailbox, nothing
 * of bounces or the database. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct imap;

/* How long the record of a judged message (imap_seen) is kept: a message
 * still unseen in the mailbox after that is judged once more. */
#define IMAP_SEEN_KEEP          (90 * 86400)

/* What the main thread decided about a message, once that is on disk. */
enum imap_verdict {
        IMAP_HANDLED,   /* acted on, or judged before: delete it (imap_keep: flag it \Seen) */
        IMAP_LEFT,      /* not understood: stays unseen */
        IMAP_REFUSED,   /* a report without proof it is about a mail of ours
                         * (no valid VERP tag): stays unseen, counted apart */
        IMAP_RETRY,     /* not judged (the batch failed): left as it is for the next poll */
};

/* A message waiting for its verdict; owned by the poller. */
struct imap_message {
        const char *data;
        size_t len;
        bool too_large;         /* over BOUNCE_MSG_MAX: data is NULL */
        uint64_t uid;
};

/* For stats: what the poller did since the start. */
struct imap_status {
        int64_t last_poll;      /* end of the last complete poll, 0 = none yet */
        int64_t handled;        /* messages acted on (deleted or flagged) */
        int64_t not_understood; /* left unseen: no report, or one of nobody's */
        int64_t refused;        /* left unseen: a report refused as unproven */
        int64_t skipped;        /* judged before (a crash before the delete): not again */
        int64_t failures;       /* polls that failed */
        int64_t last_error_at;  /* 0 = none */
        char last_error[256];   /* of the last failed poll, "" after a good one */
};

/* Start the poller for c's [bounce] imap_* settings (copied); `notify_fd`
 * (an eventfd) is written when a message waits.  0 or -errno. */
int imap_new(const struct conf *c, int notify_fd, struct imap **out);
/* Main thread: the message waiting for a verdict, or NULL. */
const struct imap_message *imap_pending(struct imap *im);
/* Main thread: the verdict on imap_pending()'s message, given only after
 * the batch that recorded it committed and synced.  `again`: it was judged
 * before (counted as skipped, not once more as handled, not understood or
 * refused). */
void imap_verdict(struct imap *im, enum imap_verdict v, bool again);
void imap_status(struct imap *im, struct imap_status *out);
/* Stop the thread (a transfer in progress is aborted) and free; NULL is fine. */
void imap_free(struct imap *im);
