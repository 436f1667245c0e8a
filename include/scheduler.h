/* The scheduler: moves due mails from the outbox to the sender threads and
 * their outcomes back, on the main thread, inside the batch transaction.
 * A confirmation token is minted when its mail is claimed, so the token
 * itself only ever exists in memory and in the mail. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "lang.h"

struct conf;
struct store;
struct sender;
struct templates;
struct dkim_key;
struct issue_text;

struct sched;

struct sched *sched_new(struct store *st, struct sender *snd);
void sched_free(struct sched *s);
/* Config and texts in use from now on (start and reload). */
void sched_configure(struct sched *s, const struct conf *c, const struct templates *t);
/* Something may have become due (a new mail, a result, the timer). */
void sched_kick(struct sched *s);
/* Stop claiming (shutdown). */
void sched_hold(struct sched *s);

/* In the batch: record the outcomes the sender has finished (when
 * `collect`; the caller gathers them into windows), then claim due mails
 * while the sender has room.  Opens the batch when it writes.  0 or
 * negative (the batch must then be rolled back). */
int sched_work(struct sched *s, int64_t now, bool collect);
/* After the batch committed: hand the claimed mails to the sender. */
void sched_committed(struct sched *s);
/* After the batch was rolled back: forget the claims, keep the outcomes
 * for the next batch. */
void sched_rolled_back(struct sched *s);
/* Put jobs the sender never started back into the outbox (shutdown). */
int sched_requeue_unstarted(struct sched *s);
/* Mails handed to the sender and not yet recorded. */
unsigned sched_in_flight(struct sched *s);
/* Mails were claimed in the batch: sched_committed() hands them to the
 * senders, and they carry tokens the batch stored. */
bool sched_claimed(const struct sched *s);

/* Whom a preview is made for. */
struct preview_rcpt {
        const char *email, *name, *list;        /* name may be NULL */
        enum lang lang;
};
/* The mail `to` would get of the issue, exactly as a sender would send it
 * (rendered from a draft as a claimed mail is, DKIM-signed with `keys`),
 * appended to `out`; its unsubscribe token is new and stored nowhere (the
 * link unsubscribes no one).  0, a positive mime_result or dkim error, or
 * -errno.  Sends and stores nothing. */
int sched_preview(struct sched *s, struct dkim_key *const *keys, size_t n_keys,
                  struct issue_text *it, const struct preview_rcpt *to, int64_t now,
                  struct buf *out);
