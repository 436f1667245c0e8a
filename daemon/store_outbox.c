/*
 * store_outbox.c - the mails to send and the issues they belong to: queueing,
 * the due scans the scheduler claims from, outcomes, an issue's progress
 * counts, pause, resume and cancel.  Never sends anything itself.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "log.h"
#include "store_db.h"

static struct store_sql q_outbox_add = STORE_SQL(
        "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at)"
        " VALUES (?1, ?2, 'queued', ?3, ?4, ?4)");
/* ---- outbox ---- */

int store_outbox_add(struct store *st, enum mail_kind kind, int64_t subscription_id,
                     int priority, int64_t now, int64_t *id)
{
        sqlite3_stmt *s = db_stmt(st, &q_outbox_add);
        sqlite3_bind_text(s, 1, db_mail_kind_names[kind], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, subscription_id);
        sqlite3_bind_int(s, 3, priority);
        sqlite3_bind_int64(s, 4, now);
        int r = db_run(st, &q_outbox_add, s);
        if (r == 0 && id)
                *id = sqlite3_last_insert_rowid(st->db);
        return r;
}

/* a sign-up kept apart is mailed at the address of its
 * newest record, whose mailed_at is its subscription's (any of its
 * records, should they ever differ); its name is not needed: a
 * confirmation mail never shows one */
static struct store_sql q_outbox_due = STORE_SQL(
        "SELECT o.id, o.kind, o.subscription_id, s.state, s.lang, o.attempts, o.created_at,"
        " coalesce(o.rcpt, u.email, (SELECT g.email FROM signup g"
        " WHERE g.subscription_id = o.subscription_id AND g.mailed_at = s.mailed_at),"
        " (SELECT g.email FROM signup g WHERE g.subscription_id = o.subscription_id)),"
        " coalesce(s.list, i.list), o.issue_id,"
        " u.name, i.state, o.state"
        " FROM outbox o LEFT JOIN subscription s ON s.id = o.subscription_id"
        " LEFT JOIN subscriber u ON u.id = s.subscriber_id"
        " LEFT JOIN issue i ON i.id = o.issue_id"
        " WHERE o.state IN ('queued', 'deferred') AND o.priority = ?3 AND o.next_at <= ?1"
        " ORDER BY o.next_at LIMIT ?2");
/* One priority class: a range scan of the outbox_due index. */
static int due_class(struct store *st, int priority, int64_t now, unsigned limit,
                     struct outbox_row *rows, size_t *n)
{
        sqlite3_stmt *s = db_stmt(st, &q_outbox_due);
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int(s, 2, (int)limit);
        sqlite3_bind_int(s, 3, priority);
        int rc = SQLITE_DONE;
        while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                struct outbox_row *r = &rows[*n];
                memset(r, 0, sizeof(*r));
                r->id = sqlite3_column_int64(s, 0);
                r->priority = priority;
                int kind = DB_NAME_INDEX(db_mail_kind_names, sqlite3_column_text(s, 1));
                r->subscription_id = sqlite3_column_int64(s, 2);
                /* a test send has no subscription: it counts as confirmed */
                int state = sqlite3_column_type(s, 3) == SQLITE_NULL ? (int)SUB_CONFIRMED :
                            DB_NAME_INDEX(db_sub_state_names, sqlite3_column_text(s, 3));
                int lang = lang_parse((const char *)sqlite3_column_text(s, 4),
                                      (size_t)sqlite3_column_bytes(s, 4));
                r->attempts = sqlite3_column_int(s, 5);
                r->created_at = sqlite3_column_int64(s, 6);
                /* none: a sign-up kept apart that has expired since */
                if (sqlite3_column_type(s, 7) != SQLITE_NULL)
                        snprintf(r->email, sizeof(r->email), "%s", (const char *)sqlite3_column_text(s, 7));
                snprintf(r->list, sizeof(r->list), "%s", (const char *)sqlite3_column_text(s, 8));
                r->issue_id = sqlite3_column_int64(s, 9);
                if (sqlite3_column_type(s, 10) != SQLITE_NULL)
                        snprintf(r->name, sizeof(r->name), "%s", (const char *)sqlite3_column_text(s, 10));
                if (sqlite3_column_type(s, 11) != SQLITE_NULL) {
                        int is = DB_NAME_INDEX(db_issue_state_names, sqlite3_column_text(s, 11));
                        r->issue_state = is < 0 ? ISSUE_CANCELLED : (enum issue_state)is;
                }
                int ms = DB_NAME_INDEX(db_mail_state_names, sqlite3_column_text(s, 12));
                if (kind < 0 || state < 0 || ms < 0)
                        fatal("outbox row %lld with an unknown kind or state", (long long)r->id);
                r->state = (enum mail_state)ms;
                r->kind = (enum mail_kind)kind;
                r->sub_state = (enum sub_state)state;
                r->lang = lang < 0 ? LANG_DEFAULT : (enum lang)lang;
                (*n)++;
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return db_fail(st, rc, "due mails");
        return 0;
}

int store_outbox_due(struct store *st, int64_t now, unsigned limit,
                     int (*fn)(void *ud, const struct outbox_row *row), void *ud)
{
        /* rows are collected first: fn writes to the tables being read */
        struct outbox_row rows[64];
        static const int classes[] = { PRIO_CONFIRM, PRIO_IMPORT, PRIO_NEWSLETTER };
        size_t n = 0;
        int r;

        if (limit > sizeof(rows) / sizeof(rows[0]))
                limit = sizeof(rows) / sizeof(rows[0]);
        for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]) && n < limit; c++)
                if ((r = due_class(st, classes[c], now, limit, rows, &n)) < 0)
                        return r;
        for (size_t i = 0; i < n; i++)
                if ((r = fn(ud, &rows[i])) != 0)
                        return r;
        return 0;
}

static struct store_sql q_outbox_sending = STORE_SQL(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1,"
        " token_hash_prev = CASE WHEN ?2 IS NULL THEN token_hash_prev ELSE token_hash END,"
        " token_hash = coalesce(?2, token_hash) WHERE id = ?1");
int store_outbox_sending(struct store *st, int64_t id, const uint8_t *token_hash)
{
        sqlite3_stmt *s = db_stmt(st, &q_outbox_sending);
        sqlite3_bind_int64(s, 1, id);
        if (token_hash)
                sqlite3_bind_blob(s, 2, token_hash, 32, SQLITE_STATIC);
        return db_run(st, &q_outbox_sending, s);
}

/* by the hash of its latest attempt's token or the one before */
static struct store_sql q_mail_token = STORE_SQL(
        "SELECT o.created_at, s.id, s.subscriber_id, s.state, s.list"
        " FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
        " WHERE (o.token_hash = ?1 OR o.token_hash_prev = ?1) AND o.kind IN ('newsletter', 'welcome')");
int store_mail_token_find(struct store *st, const uint8_t hash[32], struct token_row *out)
{
        sqlite3_stmt *s = db_stmt(st, &q_mail_token);
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return rc == SQLITE_DONE ? 1 : db_fail(st, rc, "mail token");
        }
        int state = DB_NAME_INDEX(db_sub_state_names, sqlite3_column_text(s, 3));
        out->kind = TOKEN_UNSUBSCRIBE;
        out->issued_at = sqlite3_column_int64(s, 0);
        out->expires_at = 0;
        out->subscription_id = sqlite3_column_int64(s, 1);
        out->subscriber_id = sqlite3_column_int64(s, 2);
        out->stripped = false;
        out->state = state < 0 ? SUB_UNSUBSCRIBED : (enum sub_state)state;
        snprintf(out->list, sizeof(out->list), "%s", (const char *)sqlite3_column_text(s, 4));
        sqlite3_reset(s);
        return 0;
}

static struct store_sql q_outbox_finish = STORE_SQL(
        "UPDATE outbox SET state = ?2, next_at = ?3, reply = ?5,"
        " done_at = CASE WHEN ?2 IN ('sent', 'failed') THEN ?4 END,"
        " token_hash = CASE WHEN ?6 THEN token_hash_prev ELSE token_hash END WHERE id = ?1");
int store_outbox_finish(struct store *st, int64_t id, enum mail_state state, int64_t next_at,
                        int64_t now, const char *reply, bool undelivered, bool *changed)
{
        sqlite3_stmt *s = db_stmt(st, &q_outbox_finish);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, db_mail_state_names[state], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, next_at);
        sqlite3_bind_int64(s, 4, now);
        db_bind_text_or_null(s, 5, reply);
        sqlite3_bind_int(s, 6, undelivered);
        int r = db_run(st, &q_outbox_finish, s);
        if (changed)
                *changed = r == 0 && sqlite3_changes(st->db) > 0;
        return r;
}

/* 'sending' is counted as 'queued' */
static const char *progress_state(enum mail_state m)
{
        return db_mail_state_names[m == MS_SENDING ? MS_QUEUED : m];
}

/* issue_progress: inserts and updates of outbox rows move its counts
 * here, deletes by trigger */
static struct store_sql q_progress_take = STORE_SQL(
        "UPDATE issue_progress SET n = n - ?3 WHERE issue_id = ?1 AND state = ?2");
static struct store_sql q_progress_give = STORE_SQL(
        "INSERT INTO issue_progress (issue_id, state, n) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (issue_id, state) DO UPDATE SET n = n + excluded.n");
int store_progress_move(struct store *st, int64_t issue_id, enum mail_state from,
                        enum mail_state to, int64_t n)
{
        if (!issue_id || !n || strcmp(progress_state(from), progress_state(to)) == 0)
                return 0;
        sqlite3_stmt *s = db_stmt(st, &q_progress_take);
        sqlite3_bind_int64(s, 1, issue_id);
        sqlite3_bind_text(s, 2, progress_state(from), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, n);
        int r = db_run(st, &q_progress_take, s);
        if (r < 0)
                return r;
        s = db_stmt(st, &q_progress_give);
        sqlite3_bind_int64(s, 1, issue_id);
        sqlite3_bind_text(s, 2, progress_state(to), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, n);
        return db_run(st, &q_progress_give, s);
}

static struct store_sql q_outbox_delete = STORE_SQL("DELETE FROM outbox WHERE id = ?1");
int store_outbox_delete(struct store *st, int64_t id)
{
        sqlite3_stmt *s = db_stmt(st, &q_outbox_delete);
        sqlite3_bind_int64(s, 1, id);
        return db_run(st, &q_outbox_delete, s);
}

/* a mail that never reached the relay (sched: relay down) */
static struct store_sql q_outbox_uncharge = STORE_SQL(
        "UPDATE outbox SET attempts = attempts - 1 WHERE id = ?1 AND attempts > 0");
int store_outbox_uncharge(struct store *st, int64_t id)
{
        return db_run_ints(st, &q_outbox_uncharge, 1, id, 0, NULL);
}

static struct store_sql q_outbox_requeue = STORE_SQL(
        "UPDATE outbox SET state = 'queued' WHERE state = 'sending'");
int store_outbox_requeue(struct store *st, int64_t *count)
{
        int r = db_run(st, &q_outbox_requeue, db_stmt(st, &q_outbox_requeue));
        if (r == 0 && count)
                *count = sqlite3_changes64(st->db);
        return r;
}

static struct store_sql q_outbox_get = STORE_SQL(
        "SELECT attempts, created_at FROM outbox WHERE id = ?1");
int store_outbox_get(struct store *st, int64_t id, struct outbox_row *out)
{
        sqlite3_stmt *s = db_stmt(st, &q_outbox_get);
        sqlite3_bind_int64(s, 1, id);
        int rc = sqlite3_step(s);
        int r = 1;
        if (rc == SQLITE_ROW) {
                memset(out, 0, sizeof(*out));
                out->id = id;
                out->attempts = sqlite3_column_int(s, 0);
                out->created_at = sqlite3_column_int64(s, 1);
                r = 0;
        } else if (rc != SQLITE_DONE) {
                r = db_fail(st, rc, "outbox row");
        }
        sqlite3_reset(s);
        return r;
}

static struct store_sql q_issue_add = STORE_SQL(
        "INSERT INTO issue (list, subject, text_body, html_body, state, test, created_at,"
        " send_at, scheduled, archive) VALUES (?1, ?2, ?3, ?4, 'sending', ?5, ?6, ?7, ?7 IS NOT NULL, ?8)");
static struct store_sql q_issue_test_rcpt = STORE_SQL(
        "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at,"
        " issue_id, rcpt) VALUES ('newsletter', NULL, 'queued', ?3, ?2, ?2, ?1, ?4)");
/* the recipient set is fixed here: who confirms later gets the next issue */
static struct store_sql q_issue_recipients = STORE_SQL(
        "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at, issue_id)"
        " SELECT 'newsletter', id, 'queued', ?3, ?2, ?2, ?1 FROM subscription"
        " WHERE list = ?4 AND state = 'confirmed' ORDER BY id");
/* ---- newsletter issues ---- */

int store_issue_create(struct store *st, const struct issue *is, const char *test_rcpt,
                       int64_t now, int64_t *id, int64_t *recipients)
{
        sqlite3_stmt *s = db_stmt(st, &q_issue_add);
        sqlite3_bind_text(s, 1, is->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, is->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, is->text, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 4, is->html);
        sqlite3_bind_int(s, 5, test_rcpt != NULL);
        sqlite3_bind_int64(s, 6, now);
        if (is->send_at)
                sqlite3_bind_int64(s, 7, is->send_at);
        sqlite3_bind_int(s, 8, is->archive && !test_rcpt);
        int r = db_run(st, &q_issue_add, s);
        if (r < 0)
                return r;
        *id = sqlite3_last_insert_rowid(st->db);
        *recipients = 0;
        /* a scheduled issue gets its recipients at its time (store_issue_release) */
        if (is->send_at)
                return 0;
        return store_issue_queue(st, *id, is->list, test_rcpt, now, recipients);
}

int store_issue_queue(struct store *st, int64_t id, const char *list, const char *test_rcpt,
                      int64_t now, int64_t *recipients)
{
        sqlite3_stmt *s;
        if (test_rcpt) {
                s = db_stmt(st, &q_issue_test_rcpt);
                sqlite3_bind_text(s, 4, test_rcpt, -1, SQLITE_STATIC);
        } else {
                s = db_stmt(st, &q_issue_recipients);
                sqlite3_bind_text(s, 4, list, -1, SQLITE_STATIC);
        }
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        /* a test goes out ahead of the bulk, like a confirmation */
        sqlite3_bind_int(s, 3, test_rcpt ? PRIO_CONFIRM : PRIO_NEWSLETTER);
        int r = db_run(st, test_rcpt ? &q_issue_test_rcpt : &q_issue_recipients, s);
        if (r < 0)
                return r;
        *recipients = sqlite3_changes64(st->db);
        if (*recipients == 0)
                return 0;
        /* all of them queued (no insert trigger counts them) */
        s = db_stmt(st, &q_progress_give);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, db_mail_state_names[MS_QUEUED], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, *recipients);
        return db_run(st, &q_progress_give, s);
}

static struct store_sql q_issue_get = STORE_SQL(
        "SELECT list, subject, text_body, html_body, state, test, created_at,"
        " send_at, scheduled, archive, sent_at FROM issue WHERE id = ?1");
int store_issue_get(struct store *st, int64_t id, struct issue *out)
{
        sqlite3_stmt *s = db_stmt(st, &q_issue_get);
        sqlite3_bind_int64(s, 1, id);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return rc == SQLITE_DONE ? 1 : db_fail(st, rc, "issue");
        }
        memset(out, 0, sizeof(*out));
        out->id = id;
        out->list = db_column_dup(s, 0);
        out->subject = db_column_dup(s, 1);
        out->text = db_column_dup(s, 2);
        out->html = db_column_dup(s, 3);
        int state = DB_NAME_INDEX(db_issue_state_names, sqlite3_column_text(s, 4));
        out->test = sqlite3_column_int(s, 5) != 0;
        out->created_at = sqlite3_column_int64(s, 6);
        out->send_at = sqlite3_column_int64(s, 7);
        out->scheduled = sqlite3_column_int(s, 8) != 0;
        out->archive = sqlite3_column_int(s, 9) != 0;
        out->sent_at = sqlite3_column_int64(s, 10);
        sqlite3_reset(s);
        if (state < 0)
                fatal("issue %lld has an unknown state", (long long)id);
        out->state = (enum issue_state)state;
        return 0;
}

void issue_clear(struct issue *is)
{
        if (!is)
                return;
        free(is->list);
        free(is->subject);
        free(is->text);
        free(is->html);
        memset(is, 0, sizeof(*is));
}

/* kept by the daemon and by triggers; queued includes sending */
static struct store_sql q_issue_counts = STORE_SQL(
        "SELECT state, n FROM issue_progress WHERE issue_id = ?1");
int store_issue_counts(struct store *st, int64_t id, int64_t counts[MS_SKIPPED + 1])
{
        memset(counts, 0, sizeof(int64_t) * (MS_SKIPPED + 1));
        sqlite3_stmt *s = db_stmt(st, &q_issue_counts);
        sqlite3_bind_int64(s, 1, id);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                int i = DB_NAME_INDEX(db_mail_state_names, sqlite3_column_text(s, 0));
                if (i >= 0)
                        counts[i] += sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "issue counts");
}

static struct store_sql q_issue_latest = STORE_SQL("SELECT max(id) FROM issue WHERE test = 0");
int store_issue_latest(struct store *st, int64_t *id)
{
        sqlite3_stmt *s = db_stmt(st, &q_issue_latest);
        int rc = sqlite3_step(s);
        int r = 1;
        if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
                *id = sqlite3_column_int64(s, 0);
                r = 0;
        } else if (rc != SQLITE_ROW) {
                r = db_fail(st, rc, "latest issue");
        }
        sqlite3_reset(s);
        return r;
}

/* Far enough in the future to be out of every due scan, near enough not to overflow. */
#define PARK_OFFSET (INT64_C(1) << 40)

static struct store_sql q_issue_state = STORE_SQL("UPDATE issue SET state = ?2 WHERE id = ?1");
/* a paused issue's mails are parked far in the future, out of the due scans */
static struct store_sql q_issue_park = STORE_SQL(
        "UPDATE outbox SET next_at = next_at + ?2 WHERE issue_id = ?1"
        " AND state IN ('queued', 'deferred') AND next_at < ?2");
static struct store_sql q_issue_unpark = STORE_SQL(
        "UPDATE outbox SET next_at = max(next_at - ?2, 0) WHERE issue_id = ?1"
        " AND state IN ('queued', 'deferred') AND next_at >= ?2");
static struct store_sql q_issue_cancel = STORE_SQL(
        "UPDATE outbox SET state = 'skipped', reply = 'cancelled', done_at = ?2"
        " WHERE issue_id = ?1 AND state IN ('queued', 'deferred')");
static struct store_sql q_progress_clear = STORE_SQL(
        "DELETE FROM issue_progress WHERE issue_id = ?1");
static struct store_sql q_progress_count = STORE_SQL(
        "INSERT INTO issue_progress (issue_id, state, n)"
        " SELECT issue_id, CASE state WHEN 'sending' THEN 'queued' ELSE state END, count(*)"
        " FROM outbox WHERE issue_id = ?1 GROUP BY 2");
int store_issue_set_state(struct store *st, int64_t id, enum issue_state from, enum issue_state to,
                          int64_t now, int64_t *changed)
{
        sqlite3_stmt *s = db_stmt(st, &q_issue_state);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, db_issue_state_names[to], -1, SQLITE_STATIC);
        int r = db_run(st, &q_issue_state, s);
        if (r < 0)
                return r;
        *changed = 0;
        if (to == ISSUE_PAUSED)
                r = db_run_ints(st, &q_issue_park, 2, id, PARK_OFFSET, changed);
        else if (to == ISSUE_SENDING && from == ISSUE_PAUSED)
                r = db_run_ints(st, &q_issue_unpark, 2, id, PARK_OFFSET, changed);
        else if (to == ISSUE_CANCELLED) {
                if (from == ISSUE_PAUSED && (r = db_run_ints(st, &q_issue_unpark, 2, id, PARK_OFFSET, NULL)) < 0)
                        return r;
                if ((r = db_run_ints(st, &q_issue_cancel, 2, id, now, changed)) == 0 && *changed &&
                    (r = db_run_ints(st, &q_progress_clear, 1, id, 0, NULL)) == 0)
                        r = db_run_ints(st, &q_progress_count, 1, id, 0, NULL);
        }
        return r;
}

/* with the class and reason of the latest report about the mail */
static struct store_sql q_issue_failed = STORE_SQL(
        "SELECT coalesce(o.rcpt, u.email), o.reply, o.done_at,"
        " EXISTS (SELECT 1 FROM bounce b WHERE b.outbox_id = o.id AND b.kind = 'permanent'),"
        " (SELECT r.class FROM bounce_report r WHERE r.outbox_id = o.id ORDER BY r.id DESC LIMIT 1),"
        " (SELECT r.reason FROM bounce_report r WHERE r.outbox_id = o.id ORDER BY r.id DESC LIMIT 1)"
        " FROM outbox o"
        " LEFT JOIN subscription s ON s.id = o.subscription_id"
        " LEFT JOIN subscriber u ON u.id = s.subscriber_id"
        " WHERE o.issue_id = ?1 AND o.state = 'failed' ORDER BY o.id LIMIT ?2");
int store_issue_failed(struct store *st, int64_t id, unsigned limit,
                       int (*fn)(void *ud, const char *email, const char *reply, int64_t at,
                                 bool suppressed, const char *class_name, const char *reason),
                       void *ud)
{
        sqlite3_stmt *s = db_stmt(st, &q_issue_failed);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, (int)limit);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *email = (const char *)sqlite3_column_text(s, 0);
                const char *reply = (const char *)sqlite3_column_text(s, 1);
                fn(ud, email ? email : "(erased)", reply ? reply : "", sqlite3_column_int64(s, 2),
                   sqlite3_column_int(s, 3) != 0, (const char *)sqlite3_column_text(s, 4),
                   (const char *)sqlite3_column_text(s, 5));
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "failed recipients");
}

static struct store_sql q_outbox_park = STORE_SQL(
        "UPDATE outbox SET next_at = next_at + ?2 WHERE id = ?1 AND next_at < ?2");
int store_outbox_park(struct store *st, int64_t id)
{
        return db_run_ints(st, &q_outbox_park, 2, id, PARK_OFFSET, NULL);
}

static struct store_sql q_outbox_skip = STORE_SQL(
        "UPDATE outbox SET state = 'skipped', reply = ?2, done_at = ?3 WHERE id = ?1");
int store_outbox_skip(struct store *st, int64_t id, const char *why, int64_t now)
{
        sqlite3_stmt *s = db_stmt(st, &q_outbox_skip);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, why, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now);
        return db_run(st, &q_outbox_skip, s);
}
