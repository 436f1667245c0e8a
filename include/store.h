/* The store: the SQLite database, its schema and every query.  Knows SQL,
 * nothing of sockets or SMTP.  Only the main thread uses it (one writer). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lang.h"

struct store;

enum sub_state { SUB_PENDING, SUB_CONFIRMED, SUB_EXPIRED, SUB_UNSUBSCRIBED, SUB_BOUNCED };
enum token_kind { TOKEN_CONFIRM, TOKEN_UNSUBSCRIBE };
enum mail_kind { MAIL_CONFIRM, MAIL_NEWSLETTER };
enum mail_state { MS_QUEUED, MS_SENDING, MS_SENT, MS_DEFERRED, MS_FAILED };

/* Priorities in the outbox: lower first. */
#define PRIO_CONFIRM    0
#define PRIO_NEWSLETTER 10

struct subscription {
        int64_t id;
        int64_t subscriber_id;
        enum sub_state state;
        enum lang lang;
        int64_t created_at;
        int64_t mailed_at;      /* 0 when never */
};

struct token_row {
        int64_t subscription_id;
        int64_t subscriber_id;
        enum token_kind kind;
        int64_t issued_at;
        int64_t expires_at;     /* 0: does not expire */
        enum sub_state state;   /* of the subscription */
        char list[65];
};

struct consent {
        int64_t subscriber_id;
        const char *list;
        const char *event;      /* "signup", "confirm", "unsubscribe" */
        int64_t at;
        const char *ip, *user_agent, *lang, *source, *text_version;
};

/* A due mail as the scheduler needs it. */
struct outbox_row {
        int64_t id;
        enum mail_kind kind;
        int64_t subscription_id;
        enum sub_state sub_state;
        enum lang lang;
        int attempts;
        int64_t created_at;
        char email[256];
        char list[65];
};

/* Open (creating if needed, mode 0600) and migrate.  0 or -errno. */
int store_open(const char *path, struct store **out);
void store_close(struct store *st);
const char *store_errmsg(struct store *st);

/* The batch transaction (group commit): opened on first use in a loop
 * iteration, committed once at its end.  A savepoint makes each request
 * atomic inside it. */
int store_batch_begin(struct store *st);
bool store_batch_open(struct store *st);
int store_batch_commit(struct store *st);
void store_batch_rollback(struct store *st);
int store_savepoint(struct store *st);
int store_release(struct store *st);
void store_rollback_to(struct store *st);

/* Subscribers and subscriptions.  Return 0, 1 for "not found" where noted,
 * negative on failure. */
int store_subscription_find(struct store *st, const char *email_key, const char *list,
                            struct subscription *out);                          /* 1: none */
int store_subscriber_ensure(struct store *st, const char *email_key, const char *email,
                            const char *name, int64_t now, int64_t *id);
int store_subscription_add(struct store *st, int64_t subscriber_id, const char *list,
                           enum lang lang, int64_t now, int64_t *id);
/* Start the sign-up over: pending, created now, old confirmation tokens gone. */
int store_subscription_restart(struct store *st, int64_t id, enum lang lang, int64_t now);
/* A confirmation mail was queued now, in this language. */
int store_subscription_mailed(struct store *st, int64_t id, int64_t now, enum lang lang);
int store_subscription_confirm(struct store *st, int64_t id, int64_t now, const char *ip);
int store_subscription_unsubscribe(struct store *st, int64_t id, int64_t now);

int store_consent_add(struct store *st, const struct consent *c);

int store_token_add(struct store *st, const uint8_t hash[32], int64_t subscription_id,
                    enum token_kind kind, int64_t issued_at, int64_t expires_at);
int store_token_find(struct store *st, const uint8_t hash[32], struct token_row *out); /* 1: none */
int store_tokens_delete(struct store *st, int64_t subscription_id, enum token_kind kind);

/* The outbox */
int store_outbox_add(struct store *st, enum mail_kind kind, int64_t subscription_id,
                     int priority, int64_t now, int64_t *id);
/* Calls fn for up to `limit` due rows, confirmations first.  fn returns 0
 * to go on, non-zero to stop (and that value is returned). */
int store_outbox_due(struct store *st, int64_t now, unsigned limit,
                     int (*fn)(void *ud, const struct outbox_row *row), void *ud);
int store_outbox_sending(struct store *st, int64_t id);
int store_outbox_finish(struct store *st, int64_t id, enum mail_state state, int64_t next_at,
                        int64_t now, const char *reply);
int store_outbox_delete(struct store *st, int64_t id);
/* attempts and created_at of one row; 1 when it is gone */
int store_outbox_get(struct store *st, int64_t id, struct outbox_row *out);
/* After a crash or a stop: whatever was 'sending' is queued again. */
int store_outbox_requeue(struct store *st, int64_t *count);

const char *sub_state_name(enum sub_state s);
const char *mail_state_name(enum mail_state s);
