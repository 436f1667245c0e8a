/* The main thread's half of the IMAP intake: judges the message the poller
 * (imap.h) waits with, inside the batch, exactly as `newsletterctl bounce`
 * would have it judged (the same admin request through handler_run), and
 * records it by digest in the same batch so that it is never judged twice;
 * the verdict reaches the poller only after that batch committed. */
#pragma once
#include <stdbool.h>

#include "imap.h"

struct handler_ctx;

struct imap_judge {
        struct imap *imap;      /* NULL: no mailbox configured */
        bool judged;            /* a verdict waits for the commit */
        enum imap_verdict verdict;
        bool again;
};

/* In the batch: judge the waiting message, if any.  1 when a verdict now
 * waits for the commit (the caller then syncs before handing it on), 0 when
 * no message waits, negative when the batch must be rolled back (the
 * verdict is then "retry"). */
int imap_judge_work(struct imap_judge *in, struct handler_ctx *ctx);
/* After the batch: committed and synced (`ok`), or rolled back. */
void imap_judge_done(struct imap_judge *in, bool ok);
