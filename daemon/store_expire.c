/*
 * store_expire.c - the statements of housekeeping: strip expired sign-ups
 * (their address, name and consent record), purge what has been stripped
 * long enough, ended rate limit windows and used sign-up challenges; each
 * a slice of at most a given number of rows, so that the caller
 * (housekeeping.c) can run them between requests.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_db.h"

/* what there is to strip: sign-ups kept apart, and the linked ones */
static struct store_sql q_exp_todo = STORE_SQL(
        "SELECT (SELECT count(*) FROM signup WHERE mailed_at <= ?1)"
        " + (SELECT count(*) FROM subscription WHERE state = 'pending'"
        " AND subscriber_id IS NOT NULL AND mailed_at <= ?1)");
/* the unlinked pending ones counted here whose record is still
 * kept apart are stripped first in the same run (their rows are no
 * younger than their mailed_at) */
static struct store_sql q_purge_count = STORE_SQL(
        "SELECT (SELECT count(*) FROM subscription WHERE state = 'expired' AND expired_at <= ?1)"
        " + (SELECT count(*) FROM subscription WHERE state = 'pending' AND mailed_at <= ?2"
        " AND +subscriber_id IS NULL)");
int store_expiry_count(struct store *st, int64_t mailed_before, int64_t expired_before,
                       int64_t pending_purge_before, int64_t *to_expire, int64_t *to_purge)
{
        int r = db_count(st, &q_exp_todo, mailed_before, to_expire);
        if (r < 0)
                return r;
        sqlite3_stmt *s = db_stmt(st, &q_purge_count);
        sqlite3_bind_int64(s, 1, expired_before);
        sqlite3_bind_int64(s, 2, pending_purge_before);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *to_purge = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : db_fail(st, rc, q_purge_count.text);
}

static struct store_sql q_exp_signup_ids = STORE_SQL(
        "SELECT subscription_id, mailed_at FROM signup WHERE mailed_at <= ?1 LIMIT ?2");
static struct store_sql q_signup_delete_one = STORE_SQL(
        "DELETE FROM signup WHERE subscription_id = ?1 AND mailed_at = ?2");
int store_expire_signup_rows(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n)
{
        int64_t ids[256], at[256];
        size_t k = 0;
        if (limit > sizeof(ids) / sizeof(ids[0]))
                limit = sizeof(ids) / sizeof(ids[0]);
        sqlite3_stmt *s = db_stmt(st, &q_exp_signup_ids);
        sqlite3_bind_int64(s, 1, mailed_before);
        sqlite3_bind_int(s, 2, (int)limit);
        int rc = SQLITE_DONE;
        while (k < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                ids[k] = sqlite3_column_int64(s, 0);
                at[k++] = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (k < limit && rc != SQLITE_DONE)
                return db_fail(st, rc, q_exp_signup_ids.text);
        for (size_t i = 0; i < k; i++) {
                int r = db_run_ints(st, &q_signup_delete_one, 2, ids[i], at[i], NULL);
                if (r < 0)
                        return r;
        }
        *n = (int64_t)k;
        return 0;
}

/* the linked ones are stripped in slices (each a range of the
 * subscription_pending_linked index) */
static struct store_sql q_exp_clear = STORE_SQL("DELETE FROM temp.expire_ids");
static struct store_sql q_exp_select = STORE_SQL(
        "INSERT INTO temp.expire_ids (id, subscriber_id, list) SELECT id, subscriber_id, list"
        " FROM subscription WHERE state = 'pending' AND subscriber_id IS NOT NULL"
        " AND mailed_at <= ?1 LIMIT ?2");
static struct store_sql q_exp_consent = STORE_SQL(
        "DELETE FROM consent WHERE rowid IN (SELECT c.rowid FROM temp.expire_ids e"
        " JOIN consent c ON c.subscriber_id = e.subscriber_id AND c.list = e.list)");
static struct store_sql q_exp_outbox = STORE_SQL(
        "DELETE FROM outbox WHERE subscription_id IN (SELECT id FROM temp.expire_ids)");
static struct store_sql q_exp_mark = STORE_SQL(
        "UPDATE subscription SET state = 'expired', expired_at = ?1, subscriber_id = NULL,"
        " confirm_ip = NULL WHERE id IN (SELECT id FROM temp.expire_ids)");
static struct store_sql q_exp_subscribers = STORE_SQL(
        "DELETE FROM subscriber WHERE id IN (SELECT subscriber_id FROM temp.expire_ids)"
        " AND NOT EXISTS (SELECT 1 FROM subscription s WHERE s.subscriber_id = subscriber.id)");
int store_expire_slice(struct store *st, int64_t now, int64_t mailed_before, unsigned limit,
                       int64_t *n)
{
        int r;
        *n = 0;
        if ((r = db_run_ints(st, &q_exp_clear, 0, 0, 0, NULL)) < 0 ||
            (r = db_run_ints(st, &q_exp_select, 2, mailed_before, limit, n)) < 0 || *n == 0)
                return r;
        if ((r = db_run_ints(st, &q_exp_consent, 0, 0, 0, NULL)) < 0 ||
            (r = db_run_ints(st, &q_exp_outbox, 0, 0, 0, NULL)) < 0 ||
            (r = db_run_ints(st, &q_exp_mark, 1, now, 0, NULL)) < 0 ||
            (r = db_run_ints(st, &q_exp_subscribers, 0, 0, 0, NULL)) < 0)
                return r;
        return db_run_ints(st, &q_exp_clear, 0, 0, 0, NULL);
}

static struct store_sql q_purge = STORE_SQL(
        "DELETE FROM subscription WHERE id IN (SELECT id FROM subscription"
        " WHERE state = 'expired' AND expired_at <= ?1 LIMIT ?2)");
int store_purge_slice(struct store *st, int64_t expired_before, unsigned limit, int64_t *n)
{
        return db_run_ints(st, &q_purge, 2, expired_before, limit, n);
}

/* and the mails of those it emptied that did not go out: a failed
 * one keeps a reply that may name the address, a waiting one would
 * find none.  Both are found by the indexes there are (failed rows
 * without an issue in outbox_issue_failed, waiting confirmations in
 * outbox_due's first class): an index of their own would cost every
 * change of a mail's state its upkeep. */
static struct store_sql q_exp_signup_failed = STORE_SQL(
        "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o"
        " JOIN subscription s ON s.id = o.subscription_id WHERE o.state = 'failed'"
        " AND o.issue_id IS NULL AND o.kind = 'confirm' AND s.state = 'pending'"
        " AND +s.subscriber_id IS NULL AND s.mailed_at <= ?1"
        " AND NOT EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = s.id) LIMIT ?2)");
static struct store_sql q_exp_signup_waiting = STORE_SQL(
        "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o"
        " JOIN subscription s ON s.id = o.subscription_id"
        " WHERE o.state IN ('queued', 'deferred') AND o.priority = ?3 AND o.kind = 'confirm'"
        " AND s.state = 'pending' AND +s.subscriber_id IS NULL AND s.mailed_at <= ?1"
        " AND NOT EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = s.id) LIMIT ?2)");
int store_expire_signup_mails(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n)
{
        int64_t waiting = 0;
        int r = db_run_ints(st, &q_exp_signup_failed, 2, mailed_before, limit, n);
        if (r < 0 || *n == limit)
                return r;
        sqlite3_stmt *s = db_stmt(st, &q_exp_signup_waiting);
        sqlite3_bind_int64(s, 1, mailed_before);
        sqlite3_bind_int64(s, 2, limit - *n);
        sqlite3_bind_int(s, 3, PRIO_CONFIRM);
        if ((r = db_run(st, &q_exp_signup_waiting, s)) == 0)
                waiting = sqlite3_changes64(st->db);
        *n += waiting;
        return r;
}

/* what stays of them (pending, no subscriber, long expired) goes
 * expired_retention after it expired, as stripped rows do */
static struct store_sql q_purge_pending = STORE_SQL(
        "DELETE FROM subscription WHERE id IN (SELECT id FROM subscription s"
        " WHERE state = 'pending' AND mailed_at <= ?1 AND +subscriber_id IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = s.id) LIMIT ?2)");
int store_purge_pending_slice(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n)
{
        return db_run_ints(st, &q_purge_pending, 2, mailed_before, limit, n);
}

static struct store_sql q_rate_purge = STORE_SQL("DELETE FROM rate_limit WHERE window_start <= ?1");
int store_rate_purge(struct store *st, int64_t ended_before)
{
        return db_run_ints(st, &q_rate_purge, 1, ended_before, 0, NULL);
}

/* solved sign-up challenges past their expiry (store_antibot.c) */
static struct store_sql q_challenge_purge = STORE_SQL(
        "DELETE FROM challenge_used WHERE challenge IN (SELECT challenge FROM challenge_used"
        " WHERE expires_at <= ?1 LIMIT ?2)");
int store_challenge_purge_slice(struct store *st, int64_t before, unsigned limit, int64_t *n)
{
        return db_run_ints(st, &q_challenge_purge, 2, before, limit, n);
}
