/* The store: the SQLite database, its schema and every query.  Knows SQL,
 * nothing of sockets or SMTP.  Only the main thread uses it (one writer). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bounds.h"
#include "lang.h"

struct store;

enum sub_state { SUB_PENDING, SUB_CONFIRMED, SUB_EXPIRED, SUB_UNSUBSCRIBED, SUB_BOUNCED };
enum token_kind { TOKEN_CONFIRM, TOKEN_UNSUBSCRIBE };
enum mail_kind { MAIL_CONFIRM, MAIL_NEWSLETTER, MAIL_WELCOME };
enum mail_state { MS_QUEUED, MS_SENDING, MS_SENT, MS_DEFERRED, MS_FAILED, MS_SKIPPED };
enum issue_state { ISSUE_SENDING, ISSUE_PAUSED, ISSUE_CANCELLED };

/* Priorities in the outbox: lower first. */
#define PRIO_CONFIRM    0       /* a visitor is waiting for it */
#define PRIO_IMPORT     5       /* confirmations of an `import --pending` */
#define PRIO_NEWSLETTER 10
#define PRIO_WELCOME    PRIO_IMPORT     /* after the mails a visitor waits for, before newsletters */

#define STATS_DAYS      30

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
        bool stripped;          /* a sign-up kept apart whose data expiry deleted */
        int64_t request_at;     /* confirmation: mailed_at of the request it confirms; 0 unknown */
};

struct consent {
        int64_t subscriber_id;
        const char *list;
        const char *event;      /* "signup", "confirm", "unsubscribe" */
        int64_t at;
        const char *ip, *user_agent, *lang, *source, *text_version;
        const char *consent_text, *consent_version;     /* from the website's form */
};

/* A due mail as the scheduler needs it. */
struct outbox_row {
        int64_t id;
        enum mail_state state;  /* queued or deferred: it is due */
        enum mail_kind kind;
        int priority;
        int64_t subscription_id;
        enum sub_state sub_state;
        enum lang lang;
        int attempts;
        int64_t created_at;
        char email[256];
        char list[65];
        int64_t issue_id;       /* newsletters */
        enum issue_state issue_state;
        char name[NAME_MAX_BYTES + 1];
};

struct issue {
        int64_t id;
        char *list;
        char *subject;
        char *text;
        char *html;             /* NULL: text only */
        enum issue_state state;
        bool test;
        int64_t created_at;
        int64_t send_at;        /* send --at: when its recipients are queued; 0: at once */
        bool scheduled;         /* send_at has not come yet: no recipients so far */
        bool archive;           /* published once it has finished sending */
        int64_t sent_at;        /* when it finished sending; 0: not (yet) */
};

/* Open (creating if needed, mode 0600) and migrate.  0 or -errno. */
int store_open(const char *path, struct store **out);
void store_close(struct store *st);

/* The batch transaction (group commit): opened on first use in a loop
 * iteration, committed once at its end.  A savepoint makes each request
 * atomic inside it. */
int store_batch_begin(struct store *st);
/* Commits the batch.  It survives a crash of the process at once, and
 * reaches the disk with the next store_sync() or checkpoint. */
int store_batch_commit(struct store *st);
/* fdatasync()s the WAL when a commit since the last sync is not on disk
 * yet: called after a commit that holds writes a client was or will be told
 * about, or that mails about to go out depend on (their tokens), before
 * they leave.  The scheduler's and housekeeping's own bookkeeping is not
 * synced by itself: a power loss can send again the mails of the last
 * moments, as a crash can.  A failed sync stops the daemon (abort): after
 * one, the kernel may have dropped what it did not write, and no later
 * sync could make those commits durable again. */
void store_sync(struct store *st);
/* explicit syncs of the WAL so far (the log, tests) */
unsigned long store_syncs(struct store *st);
/* the connection's PRAGMA synchronous (1: NORMAL, as store_open sets it) */
int store_synchronous(struct store *st);
/* whether SQLITE_DBCONFIG_DEFENSIVE is on (it is, but during a migration) */
bool store_defensive(struct store *st);
void store_batch_rollback(struct store *st);
int store_savepoint(struct store *st);
int store_release(struct store *st);
void store_rollback_to(struct store *st);

/* Subscribers and subscriptions.  Return 0, 1 for "not found" where noted,
 * negative on failure. */
/* subscriber_id 0: a pending sign-up kept apart (see store_signup_put) */
int store_subscription_find(struct store *st, const char *email_key, const char *list,
                            struct subscription *out);                          /* 1: none */
/* The subscription leaves its subscriber: a new sign-up of an address that
 * has one waits apart like any other (store_signup_put), so that nothing
 * it gives (name, spelling of the address) reaches the subscriber's row
 * before the address's owner confirms it. */
int store_subscription_unlink(struct store *st, int64_t subscription_id);
/* A new pending sign-up whose confirmation mail is queued now (mailed_at);
 * subscriber_id 0: none yet (a sign-up kept apart). */
int store_subscription_add(struct store *st, int64_t subscriber_id, const char *list,
                           enum lang lang, int64_t now, int64_t *id);
/* Start the sign-up over: pending, created now, old confirmation tokens gone. */
int store_subscription_restart(struct store *st, int64_t id, enum lang lang, int64_t now);
/* A confirmation mail was queued now, in this language. */
int store_subscription_mailed(struct store *st, int64_t id, int64_t now, enum lang lang);
int store_subscription_confirm(struct store *st, int64_t id, int64_t now, const char *ip);
int store_subscription_unsubscribe(struct store *st, int64_t id, int64_t now);

int store_consent_add(struct store *st, const struct consent *c);

/* A pending sign-up kept apart (table signup): its address, name and the
 * record of the sign-up (c: list, at = the time of its mail, ip, ...) as
 * one row; its subscription has no subscriber until adopted.  `renew`: made again, a row beside the earlier ones, which keeps
 * the name given before when none is given now. */
int store_signup_put(struct store *st, int64_t subscription_id, const char *email_key,
                     const char *email, const char *name, const struct consent *c, bool renew);
/* Its records gone (a sign-up started over once they had expired). */
int store_signup_forget(struct store *st, int64_t subscription_id);
/* Into the linked layout: the subscriber (found, or added with the address
 * and name of a record), every record as a consent record of the sign-up,
 * the subscription linked; 1 when the subscription has no records (never
 * had, or they expired).  `confirmed_request`: the mailed_at of the record
 * a confirmation was mailed for (token_row.request_at): that record's
 * address and name become the subscriber's, also an existing one's (its
 * owner confirmed them).  0 (an unsubscribe, a bounce, a token that names
 * no record): a new subscriber is made from the newest record, an existing
 * one stays as it is. */
int store_signup_adopt(struct store *st, int64_t subscription_id, int64_t now,
                       int64_t confirmed_request, int64_t *subscriber_id);
/* The same for the sign-up a mail went to, or every one of an address;
 * 1 when there was none. */
int store_signup_adopt_mail(struct store *st, int64_t outbox_id, int64_t now);
int store_signup_adopt_key(struct store *st, const char *email_key, int64_t now);
/* Every sign-up kept apart of a subscriber's address (0 also when none). */
int store_signup_adopt_subscriber(struct store *st, int64_t subscriber_id, int64_t now);

/* request_at: a confirmation token's request (its mail's created_at, the
 * mailed_at of its record); 0 none */
int store_token_add(struct store *st, const uint8_t hash[32], int64_t subscription_id,
                    enum token_kind kind, int64_t issued_at, int64_t expires_at,
                    int64_t request_at);
int store_token_find(struct store *st, const uint8_t hash[32], struct token_row *out); /* 1: none */
int store_tokens_delete(struct store *st, int64_t subscription_id, enum token_kind kind);

/* The outbox */
int store_outbox_add(struct store *st, enum mail_kind kind, int64_t subscription_id,
                     int priority, int64_t now, int64_t *id);
/* Calls fn for up to `limit` due rows, confirmations first.  fn returns 0
 * to go on, non-zero to stop (and that value is returned). */
int store_outbox_due(struct store *st, int64_t now, unsigned limit,
                     int (*fn)(void *ud, const struct outbox_row *row), void *ud);
/* Handed to a sender; a newsletter mail's unsubscribe token hash goes into its row. */
int store_outbox_sending(struct store *st, int64_t id, const uint8_t *token_hash);
/* The unsubscribe token of a newsletter mail, by its hash (that of the
 * mail's latest attempt or the one before); 1 when no mail has it. */
int store_mail_token_find(struct store *st, const uint8_t hash[32], struct token_row *out);
/* The outcome of an attempt.  `undelivered`: the relay cannot have the mail
 * (its data never ended), so the token it carried is dropped and the one
 * before it stays: every copy that may be out there keeps a working link. */
/* The WAL has grown and the background checkpoint is still at it: bulk
 * writers that can wait (housekeeping) should. */
bool store_wal_backlog(struct store *st);
/* `changed`: the row was still there.  The caller moves its issue's counts
 * (store_progress_move). */
int store_outbox_finish(struct store *st, int64_t id, enum mail_state state, int64_t next_at,
                        int64_t now, const char *reply, bool undelivered, bool *changed);
/* n of an issue's mails went from one state to another: its counts follow
 * (issue_progress; 'sending' counts as 'queued').  Every update of an
 * outbox row's state calls this; store_issue_create counts the
 * inserts, a trigger the deletes. */
int store_progress_move(struct store *st, int64_t issue_id, enum mail_state from,
                        enum mail_state to, int64_t n);
int store_outbox_delete(struct store *st, int64_t id);
/* attempts and created_at of one row; 1 when it is gone */
int store_outbox_get(struct store *st, int64_t id, struct outbox_row *out);
/* An attempt that never reached the relay does not count (attempts - 1). */
int store_outbox_uncharge(struct store *st, int64_t id);
/* After a crash or a stop: whatever was 'sending' is queued again. */
int store_outbox_requeue(struct store *st, int64_t *count);

/* Expiry.  A pending sign-up mailed before now - confirm_ttl is expired.
 * One kept apart loses its rows in table signup and its mails that did not
 * go out;
 * what stays of it (subscription, token hashes, sent mail) is purged once
 * mailed before now - confirm_ttl - expired_retention
 * (store_purge_pending_slice).  A linked one is stripped (state 'expired',
 * detached from its subscriber, consent record and mails deleted, the
 * subscriber too when nothing else is left of them) and purged (tokens and
 * all) once expired before now - expired_retention. */
int store_expiry_count(struct store *st, int64_t mailed_before, int64_t expired_before,
                       int64_t pending_purge_before, int64_t *to_expire, int64_t *to_purge);
/* Sign-ups kept apart: up to `limit` expired rows deleted, oldest first
 * (n < limit: none left). */
int store_expire_signup_rows(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n);
/* Up to `limit` confirmation mails that did not go out, of sign-ups whose
 * records have all expired, deleted (their replies may name the address). */
int store_expire_signup_mails(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n);
int store_purge_pending_slice(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n);
int store_expire_slice(struct store *st, int64_t now, int64_t mailed_before, unsigned limit,
                       int64_t *n);
int store_purge_slice(struct store *st, int64_t expired_before, unsigned limit, int64_t *n);

/* Import: stage every valid line, then apply them a slice at a time. */
struct import_spec {
        const char *list;
        bool pending;           /* sign-ups with a confirmation mail, else confirmed */
        bool welcome;           /* confirmed ones get a welcome mail (import --welcome) */
        enum lang lang;
        const char *source;     /* "import:FILE" */
        const char *text_version;
        int64_t now;
};
struct import_result {
        int64_t added;
        int64_t existing;       /* already on the list, in whatever state: left alone */
};
/* Nothing staged any more (a new import, or one given up). */
int store_import_clear(struct store *st);
/* One valid line: 0, or 1 when an earlier line had its address (that
 * line's spelling and name stay). */
int store_import_stage(struct store *st, const char *email_key, const char *email,
                       const char *name);
/* Up to `limit` staged addresses applied, oldest first, and counted into
 * `res`: 0, or 1 when none was left (the import is complete). */
int store_import_apply(struct store *st, const struct import_spec *spec, unsigned limit,
                       struct import_result *res);

struct store_stats {
        int64_t subscriptions[SUB_BOUNCED + 1];
        int64_t mails[MS_SKIPPED + 1];
        int64_t bounces_permanent, bounces_temporary, complaints;
        int64_t bounces_refused;        /* reports without proof */
        /* messages consumed without acting on them */
        int64_t autoreplies, not_understood;
        struct {
                int64_t day;    /* Unix time of 00:00 UTC */
                int64_t signups;
                int64_t confirmations;
        } days[STATS_DAYS];
};
/* Sign-ups mailed before expired_mailed_before count as expired. */
int store_stats(struct store *st, int64_t now, int64_t expired_mailed_before, struct store_stats *out);

/* Everything stored about an address as JSON; 1 when unknown. */
int store_export(struct store *st, const char *email_key, json_t **out);
/* Delete everything about an address; 1 when unknown. */
int store_erase(struct store *st, const char *email_key);
/* Fold the WAL into the database file and truncate it (after an erase). */
int store_checkpoint(struct store *st);

/* Newsletter issues.  Queue one to every confirmed subscriber of its list,
 * or (test_rcpt) to that one address only. */
int store_issue_create(struct store *st, const struct issue *is, const char *test_rcpt,
                       int64_t now, int64_t *id, int64_t *recipients);
int store_issue_get(struct store *st, int64_t id, struct issue *out);   /* 1: none */
/* Fix and queue an issue's recipients (store_issue_create, or a scheduled
 * issue when its time has come). */
int store_issue_queue(struct store *st, int64_t id, const char *list, const char *test_rcpt,
                      int64_t now, int64_t *recipients);
void issue_clear(struct issue *is);
int store_issue_counts(struct store *st, int64_t id, int64_t counts[MS_SKIPPED + 1]);
int store_issue_latest(struct store *st, int64_t *id);                  /* 1: none */
/* pause parks the issue's waiting mails, resume brings them back, cancel
 * skips them; `changed` counts the mails moved. */
int store_issue_set_state(struct store *st, int64_t id, enum issue_state from, enum issue_state to,
                          int64_t now, int64_t *changed);
/* Its failed mails; `suppressed`: the relay's refusal (or a DSN about the
 * mail) said the address is dead, and the subscriber was bounced for it;
 * class_name and reason: of the latest report kept about the mail (NULL
 * when none). */
int store_issue_failed(struct store *st, int64_t id, unsigned limit,
                       int (*fn)(void *ud, const char *email, const char *reply, int64_t at,
                                 bool suppressed, const char *class_name, const char *reason),
                       void *ud);
/* A mail of a paused issue: out of the due scans until resume. */
int store_outbox_park(struct store *st, int64_t id);
/* A mail not sent on purpose. */
int store_outbox_skip(struct store *st, int64_t id, const char *why, int64_t now);

/* The issues' life after queueing (store_archive.c).  Release the scheduled
 * issues whose time has come: their recipients are fixed and queued now. */
int store_issue_release(struct store *st, int64_t now, int64_t *released);
/* Note the end of sending (sent_at) of every issue no mail of which waits. */
int store_issue_finish(struct store *st, int64_t now, int64_t *finished);
int store_issue_set_archive(struct store *st, int64_t id, bool archive);
/* The published issues of `list` (NULL: all), newest first, with ids below
 * `before` (0: any); fn's non-zero return stops and is returned. */
int store_archive_list(struct store *st, const char *list, int64_t before, unsigned limit,
                       int (*fn)(void *ud, int64_t id, const char *subject, int64_t sent_at),
                       void *ud);
/* Whom a preview goes to: the confirmed subscriber of the list with that
 * key, or (key NULL) its first; 1 when none.  The strings are malloc'd
 * (name may be NULL). */
int store_preview_recipient(struct store *st, const char *list, const char *email_key,
                            char **email, char **name, char **lang);

/* Rate limit counters, keyed by a hash.  count: hits in the window that
 * is running at `now` (0 and a new window when the last one ended). */
#define RATE_KEY_LEN 16
int store_rate_count(struct store *st, const uint8_t key[RATE_KEY_LEN], int64_t now, int64_t window,
                     int64_t *count, int64_t *window_start);
int store_rate_set(struct store *st, const uint8_t key[RATE_KEY_LEN], int64_t window_start,
                   int64_t count);
/* Forget windows that started at or before this time. */
int store_rate_purge(struct store *st, int64_t ended_before);

/* Bounces and complaints. */
struct bounce_row {
        int64_t subscriber_id;
        int64_t outbox_id;      /* 0: unknown */
        int64_t issue_id;       /* 0: none */
        const char *kind;       /* "permanent", "temporary", "complaint" */
        const char *status, *diagnostic;
        int64_t at;
};
/* Who a mail went to; 1 when the mail or its subscriber is gone. */
int store_mail_owner(struct store *st, int64_t outbox_id, int64_t *subscriber_id, char *email,
                     size_t email_len, int64_t *issue_id);
int store_subscriber_find(struct store *st, const char *email_key, int64_t *id); /* 1: none */
/* `added` false: the same report about the same mail was recorded before. */
int store_bounce_add(struct store *st, const struct bounce_row *b, bool *added);
int store_bounce_temporary_count(struct store *st, int64_t subscriber_id, int64_t since, int64_t *n);
/* Count a report refused for want of proof, under `reason` (a fixed text). */
int store_bounce_refused(struct store *st, const char *reason, int64_t at);
/* Count a message that is no report of ours, under `reason` (a fixed text). */
int store_bounce_ignored(struct store *st, const char *reason, int64_t at);
/* Suppress: pending and confirmed subscriptions of the subscriber become 'bounced'. */
int store_subscriber_bounced(struct store *st, int64_t subscriber_id, int64_t *changed);
/* Unsubscribe from every list, with one consent event ("unsubscribe",
 * from `source`) for each list left. */
int store_subscriber_unsubscribe_all(struct store *st, int64_t subscriber_id, int64_t now,
                                     const char *source);
int store_issue_bounces(struct store *st, int64_t issue_id, int64_t *bounced, int64_t *complaints);

/* A classified report (sql/002-bounces.sql); subscriber_id and outbox_id
 * 0 when unknown, domain NULL when none. */
struct bounce_report_row {
        int64_t subscriber_id, outbox_id;
        const char *class_name, *reason, *status, *domain, *diagnostic;
        int64_t at;
};
int store_bounce_report_add(struct store *st, const struct bounce_report_row *r);
/* Reports of class 'sender' about `domain` since `since`: how many and
 * the time of the first. */
int store_bounce_domain_refusals(struct store *st, const char *domain, int64_t since, int64_t *n,
                                 int64_t *first);
/* Reports per class, all time: counts[5] in the order permanent,
 * temporary, sender, complaint, none. */
int store_bounce_report_counts(struct store *st, int64_t counts[5]);
/* Calls fn for each receiving domain with 'sender' reports since
 * `since`: its latest reason, count and latest time, most first. */
int store_bounce_refusing_domains(struct store *st, int64_t since,
                                  void (*fn)(const char *domain, const char *reason, int64_t n,
                                             int64_t last, void *ctx),
                                  void *ctx);
/* Calls fn for each report about a subscriber, oldest first. */
int store_bounce_reports_of(struct store *st, int64_t subscriber_id,
                            void (*fn)(int64_t at, const char *class_name, const char *reason,
                                       const char *status, void *ctx),
                            void *ctx);

const char *issue_state_name(enum issue_state s);
const char *sub_state_name(enum sub_state s);
const char *mail_state_name(enum mail_state s);

/* ---- solved sign-up challenges (store_antibot.c) ---- */

/* Remember a solved challenge (its 32 bytes, a SHA-256 already) until it
 * expires: 0 the first time, 1 when it was used before. */
int store_challenge_use(struct store *st, const uint8_t challenge[32], int64_t expires);
/* Forget up to `limit` that expired at or before `before`; *n: how many. */
int store_challenge_purge_slice(struct store *st, int64_t before, unsigned limit, int64_t *n);

/* ---- messages judged by the IMAP intake (store_imap.c) ---- */

/* 1 (and *handled) when the message of this SHA-256 was judged before, 0 when not. */
int store_imap_seen(struct store *st, const uint8_t digest[32], bool *handled);
/* Record the judgement, in the batch that holds its outcome. */
int store_imap_seen_add(struct store *st, const uint8_t digest[32], bool handled, int64_t now);
/* Forget up to `limit` judged at or before `before`; *n: how many. */
int store_imap_seen_purge_slice(struct store *st, int64_t before, unsigned limit, int64_t *n);
