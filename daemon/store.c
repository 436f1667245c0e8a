/*
 * store.c - the database.  One SQLite connection for all reads and writes,
 * used only by the main thread: the single writer.  WAL with
 * synchronous=NORMAL, and an explicit sync of the WAL after every commit a
 * client's answer waits on (store_sync), so an acknowledged sign-up
 * survives a crash and a power loss.  Every statement is prepared once at
 * start-up and only ever run with bound parameters.  The schema comes from
 * sql/ as numbered migrations, applied in one transaction and recorded in
 * PRAGMA user_version.  Checkpoints (copying the WAL into the database and
 * syncing it) run on a thread of their own with a second connection that
 * never writes a row, so that the requests never wait behind that
 * I/O.  Knows SQL, nothing of sockets or SMTP.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "embedded.h"
#include "log.h"
#include "store.h"

enum stmt_id {
        S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
        S_SUB_FIND, S_SUBSCRIBER_FIND, S_SUBSCRIBER_ADD, S_SUBSCRIBER_NAME,
        S_SUB_ADD, S_SUB_RESTART, S_SUB_MAILED, S_SUB_CONFIRM, S_SUB_UNSUBSCRIBE,
        S_CONSENT_ADD, S_CONSENT_UNSUBSCRIBE_ALL,
        S_SIGNUP_FIND, S_SIGNUP_NAME, S_SIGNUP_GET, S_SIGNUP_GET_AT, S_SIGNUP_TO_CONSENT, S_SIGNUP_DELETE, S_SIGNUP_DELETE_ONE,
        S_SUB_LINK, S_SUB_UNLINK,
        S_SIGNUP_OF_MAIL, S_SIGNUP_OF_KEY, S_SIGNUP_OF_SUBSCRIBER, S_PERIOD_LAST, S_PERIOD_ADD,
        S_TOKEN_ADD, S_TOKEN_FIND, S_TOKENS_DELETE,
        S_OUTBOX_ADD, S_OUTBOX_DUE, S_OUTBOX_SENDING, S_MAIL_TOKEN, S_OUTBOX_FINISH, S_OUTBOX_DELETE,
        S_OUTBOX_REQUEUE, S_OUTBOX_GET,
        S_EXP_COUNT, S_EXP_TODO, S_PURGE_COUNT,
        S_PERIOD_EXPIRED, S_PERIOD_DELETE, S_EXP_SIGNUP_IDS, S_EXP_SIGNUP_FAILED,
        S_EXP_SIGNUP_WAITING, S_PURGE_PENDING,
        S_EXP_CLEAR, S_EXP_SELECT, S_EXP_CONSENT, S_EXP_OUTBOX, S_EXP_MARK, S_EXP_SUBSCRIBERS,
        S_PURGE,
        S_IMP_STAGE, S_IMP_CLEAR_STAGE, S_IMP_CLEAR_KEYS, S_IMP_KEYS, S_IMP_COUNT_STAGE,
        S_IMP_SUBSCRIBERS, S_IMP_SUBSCRIBER_IDS, S_IMP_APART, S_IMP_EXISTING, S_IMP_SUBSCRIPTIONS,
        S_IMP_CONSENT, S_IMP_OUTBOX,
        S_STATS_SUBS, S_STATS_MAILS, S_STATS_DAYS,
        S_SUBSCRIBER_BY_KEY, S_SIGNUP_WHO, S_EXPORT_SUBS, S_EXPORT_CONSENT, S_EXPORT_MAILS, S_EXPORT_TOKENS,
        S_ERASE_SUBS, S_ERASE_SIGNUPS, S_ERASE_RCPT, S_ERASE,
        S_ISSUE_ADD, S_ISSUE_RECIPIENTS, S_ISSUE_TEST_RCPT, S_ISSUE_GET, S_ISSUE_COUNTS,
        S_ISSUE_LATEST, S_ISSUE_STATE, S_ISSUE_PARK, S_ISSUE_UNPARK, S_ISSUE_CANCEL,
        S_ISSUE_FAILED, S_OUTBOX_SKIP, S_OUTBOX_PARK,
        S_PROGRESS_TAKE, S_PROGRESS_GIVE, S_PROGRESS_CLEAR, S_PROGRESS_COUNT,
        S_RATE_GET, S_RATE_PUT, S_RATE_PURGE,
        S_MAIL_OWNER, S_BOUNCE_ADD, S_BOUNCE_COUNT, S_SUBS_BOUNCED, S_SUBS_UNSUBSCRIBE_ALL,
        S_ISSUE_BOUNCES, S_STATS_BOUNCES,
        S_BOUNCE_REFUSED, S_STATS_REFUSED, S_BOUNCE_IGNORED, S_STATS_IGNORED, S_OUTBOX_UNCHARGE,
        S_N
};

static const char *const stmt_sql[S_N] = {
        [S_BEGIN] = "BEGIN IMMEDIATE",
        [S_COMMIT] = "COMMIT",
        [S_ROLLBACK] = "ROLLBACK",
        [S_SAVEPOINT] = "SAVEPOINT req",
        [S_RELEASE] = "RELEASE req",
        [S_ROLLBACK_TO] = "ROLLBACK TO req",
        [S_SUB_FIND] =
                "SELECT s.id, s.subscriber_id, s.state, s.lang, s.created_at, s.mailed_at"
                " FROM subscriber u JOIN subscription s ON s.subscriber_id = u.id"
                " WHERE u.email_key = ?1 AND s.list = ?2",
        [S_SUBSCRIBER_FIND] = "SELECT id FROM subscriber WHERE email_key = ?1",
        [S_SUBSCRIBER_ADD] =
                "INSERT INTO subscriber (email_key, email, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        [S_SUBSCRIBER_NAME] =
                "UPDATE subscriber SET email = ?2, name = coalesce(?3, name) WHERE id = ?1",
        [S_SUB_ADD] =
                "INSERT INTO subscription (subscriber_id, list, state, lang, created_at, mailed_at)"
                " VALUES (?1, ?2, 'pending', ?3, ?4, ?4)",
        [S_SUB_RESTART] =
                "UPDATE subscription SET state = 'pending', lang = ?2, created_at = ?3,"
                " mailed_at = NULL, confirmed_at = NULL, confirm_ip = NULL, unsubscribed_at = NULL"
                " WHERE id = ?1",
        [S_SUB_MAILED] = "UPDATE subscription SET mailed_at = ?2, lang = ?3 WHERE id = ?1",
        [S_SUB_CONFIRM] =
                "UPDATE subscription SET state = 'confirmed', confirmed_at = ?2, confirm_ip = ?3"
                " WHERE id = ?1",
        [S_SUB_UNSUBSCRIBE] =
                "UPDATE subscription SET state = 'unsubscribed', unsubscribed_at = ?2 WHERE id = ?1",
        [S_CONSENT_ADD] =
                "INSERT INTO consent (subscriber_id, list, event, at, ip, user_agent, lang, source,"
                " text_version, consent_text, consent_version)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        /* a pending sign-up kept apart until it is confirmed (sql/009):
         * `signup` is this connection's view of the tables per period, its
         * trigger deletes from any (signup_view); rows go straight into the
         * newest (store_signup_put) */
        [S_SIGNUP_FIND] =
                "SELECT s.id, s.subscriber_id, s.state, s.lang, s.created_at, s.mailed_at"
                " FROM signup g JOIN subscription s ON s.id = g.subscription_id"
                " WHERE g.email_key = ?1 AND g.list = ?2 LIMIT 1",
        [S_SIGNUP_NAME] =
                "SELECT name FROM signup WHERE subscription_id = ?1 ORDER BY mailed_at DESC LIMIT 1",
        [S_SIGNUP_GET] =
                "SELECT email_key, email, name FROM signup WHERE subscription_id = ?1"
                " ORDER BY mailed_at DESC LIMIT 1",
        [S_SIGNUP_GET_AT] =
                "SELECT email_key, email, name FROM signup WHERE subscription_id = ?1"
                " AND mailed_at = ?2",
        [S_SIGNUP_TO_CONSENT] =
                "INSERT INTO consent (subscriber_id, list, event, at, ip, user_agent, lang, source,"
                " text_version, consent_text, consent_version) SELECT ?2, list, 'signup', at, ip,"
                " user_agent, lang, source, text_version, consent_text, consent_version FROM signup"
                " WHERE subscription_id = ?1 ORDER BY mailed_at",
        [S_SIGNUP_DELETE] = "DELETE FROM signup WHERE subscription_id = ?1",
        [S_SIGNUP_DELETE_ONE] = "DELETE FROM signup WHERE subscription_id = ?1 AND mailed_at = ?2",
        [S_SUB_LINK] = "UPDATE subscription SET subscriber_id = ?2 WHERE id = ?1",
        [S_SUB_UNLINK] = "UPDATE subscription SET subscriber_id = NULL WHERE id = ?1",
        /* (the view in a correlated subquery, not a join, and without ORDER
         * BY there: SQLite pushes the subquery's equalities into each
         * table's index only then; otherwise it scans every table) */
        [S_SIGNUP_OF_MAIL] =
                "SELECT o.subscription_id FROM outbox o WHERE o.id = ?1"
                " AND EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = o.subscription_id)",
        [S_SIGNUP_OF_KEY] = "SELECT subscription_id FROM signup WHERE email_key = ?1 LIMIT 1",
        [S_SIGNUP_OF_SUBSCRIBER] =
                "SELECT (SELECT g.subscription_id FROM signup g WHERE g.email_key = u.email_key LIMIT 1)"
                " FROM subscriber u WHERE u.id = ?1",
        [S_PERIOD_LAST] = "SELECT max(ends), max(id) FROM signup_period",
        [S_PERIOD_ADD] = "INSERT INTO signup_period (starts, ends) VALUES (?1, ?2)",
        [S_TOKEN_ADD] =
                "INSERT INTO token (hash, subscription_id, kind, issued_at, expires_at, request_at)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        [S_TOKEN_FIND] =
                "SELECT t.subscription_id, s.subscriber_id, t.kind, t.issued_at, t.expires_at,"
                " s.state, s.list, s.subscriber_id IS NULL AND NOT EXISTS"
                " (SELECT 1 FROM signup g WHERE g.subscription_id = s.id), t.request_at"
                " FROM token t JOIN subscription s ON s.id = t.subscription_id WHERE t.hash = ?1",
        [S_TOKENS_DELETE] = "DELETE FROM token WHERE subscription_id = ?1 AND kind = ?2",
        [S_OUTBOX_ADD] =
                "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at)"
                " VALUES (?1, ?2, 'queued', ?3, ?4, ?4)",
        /* a sign-up kept apart (sql/009) is mailed at the address of its
         * newest record, whose mailed_at is its subscription's (any of its
         * records, should they ever differ); its name is not needed: a
         * confirmation mail never shows one */
        [S_OUTBOX_DUE] =
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
                " ORDER BY o.next_at LIMIT ?2",
        [S_OUTBOX_SENDING] =
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1,"
                " token_hash_prev = CASE WHEN ?2 IS NULL THEN token_hash_prev ELSE token_hash END,"
                " token_hash = coalesce(?2, token_hash) WHERE id = ?1",
        /* by the hash of its latest attempt's token or the one before (sql/010) */
        [S_MAIL_TOKEN] =
                "SELECT o.created_at, s.id, s.subscriber_id, s.state, s.list"
                " FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
                " WHERE (o.token_hash = ?1 OR o.token_hash_prev = ?1) AND o.kind = 'newsletter'",
        [S_OUTBOX_FINISH] =
                "UPDATE outbox SET state = ?2, next_at = ?3, reply = ?5,"
                " done_at = CASE WHEN ?2 IN ('sent', 'failed') THEN ?4 END,"
                " token_hash = CASE WHEN ?6 THEN token_hash_prev ELSE token_hash END WHERE id = ?1",
        [S_OUTBOX_DELETE] = "DELETE FROM outbox WHERE id = ?1",
        [S_OUTBOX_REQUEUE] = "UPDATE outbox SET state = 'queued' WHERE state = 'sending'",
        [S_OUTBOX_GET] = "SELECT attempts, created_at FROM outbox WHERE id = ?1",
        /* a mail that never reached the relay (sched: relay down) */
        [S_OUTBOX_UNCHARGE] = "UPDATE outbox SET attempts = attempts - 1 WHERE id = ?1 AND attempts > 0",
        /* expiry: pending sign-ups whose last mail is older than confirm_ttl
         * are expired, stripped or not (stats) */
        [S_EXP_COUNT] =
                "SELECT count(*) FROM subscription WHERE state = 'pending' AND mailed_at <= ?1",
        /* what there is to strip: sign-ups kept apart, and the linked ones */
        [S_EXP_TODO] =
                "SELECT (SELECT count(*) FROM signup WHERE mailed_at <= ?1)"
                " + (SELECT count(*) FROM subscription WHERE state = 'pending'"
                " AND subscriber_id IS NOT NULL AND mailed_at <= ?1)",
        /* the unlinked pending ones counted here whose record is still
         * kept apart are stripped first in the same run (their rows are no
         * younger than their mailed_at) */
        [S_PURGE_COUNT] =
                "SELECT (SELECT count(*) FROM subscription WHERE state = 'expired' AND expired_at <= ?1)"
                " + (SELECT count(*) FROM subscription WHERE state = 'pending' AND mailed_at <= ?2"
                " AND +subscriber_id IS NULL)",
        /* sign-ups kept apart: a table whose every row has expired is
         * dropped whole; of the one that straddles the cut-off, the expired
         * rows go one by one, oldest first */
        [S_PERIOD_EXPIRED] =
                "SELECT id FROM signup_period WHERE ends - 1 <= ?1 ORDER BY id LIMIT 1",
        [S_PERIOD_DELETE] = "DELETE FROM signup_period WHERE id = ?1",
        [S_EXP_SIGNUP_IDS] =
                "SELECT subscription_id, mailed_at FROM signup WHERE mailed_at <= ?1 LIMIT ?2",
        /* and the mails of those it emptied that did not go out: a failed
         * one keeps a reply that may name the address, a waiting one would
         * find none.  Both are found by the indexes there are (failed rows
         * without an issue in outbox_issue_failed, waiting confirmations in
         * outbox_due's first class): an index of their own would cost every
         * change of a mail's state its upkeep. */
        [S_EXP_SIGNUP_FAILED] =
                "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o"
                " JOIN subscription s ON s.id = o.subscription_id WHERE o.state = 'failed'"
                " AND o.issue_id IS NULL AND o.kind = 'confirm' AND s.state = 'pending'"
                " AND +s.subscriber_id IS NULL AND s.mailed_at <= ?1"
                " AND NOT EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = s.id) LIMIT ?2)",
        [S_EXP_SIGNUP_WAITING] =
                "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o"
                " JOIN subscription s ON s.id = o.subscription_id"
                " WHERE o.state IN ('queued', 'deferred') AND o.priority = ?3 AND o.kind = 'confirm'"
                " AND s.state = 'pending' AND +s.subscriber_id IS NULL AND s.mailed_at <= ?1"
                " AND NOT EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = s.id) LIMIT ?2)",
        /* what stays of them (pending, no subscriber, long expired) goes
         * expired_retention after it expired, as stripped rows do */
        [S_PURGE_PENDING] =
                "DELETE FROM subscription WHERE id IN (SELECT id FROM subscription s"
                " WHERE state = 'pending' AND mailed_at <= ?1 AND +subscriber_id IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = s.id) LIMIT ?2)",
        /* the linked ones are stripped in slices (each a range of the
         * subscription_pending_linked index) */
        [S_EXP_CLEAR] = "DELETE FROM temp.expire_ids",
        [S_EXP_SELECT] =
                "INSERT INTO temp.expire_ids (id, subscriber_id, list) SELECT id, subscriber_id, list"
                " FROM subscription WHERE state = 'pending' AND subscriber_id IS NOT NULL"
                " AND mailed_at <= ?1 LIMIT ?2",
        [S_EXP_CONSENT] =
                "DELETE FROM consent WHERE rowid IN (SELECT c.rowid FROM temp.expire_ids e"
                " JOIN consent c ON c.subscriber_id = e.subscriber_id AND c.list = e.list)",
        [S_EXP_OUTBOX] =
                "DELETE FROM outbox WHERE subscription_id IN (SELECT id FROM temp.expire_ids)",
        [S_EXP_MARK] =
                "UPDATE subscription SET state = 'expired', expired_at = ?1, subscriber_id = NULL,"
                " confirm_ip = NULL WHERE id IN (SELECT id FROM temp.expire_ids)",
        [S_EXP_SUBSCRIBERS] =
                "DELETE FROM subscriber WHERE id IN (SELECT subscriber_id FROM temp.expire_ids)"
                " AND NOT EXISTS (SELECT 1 FROM subscription s WHERE s.subscriber_id = subscriber.id)",
        [S_PURGE] =
                "DELETE FROM subscription WHERE id IN (SELECT id FROM subscription"
                " WHERE state = 'expired' AND expired_at <= ?1 LIMIT ?2)",

        /* import: lines are staged, then applied in one go */
        [S_IMP_STAGE] =
                "INSERT INTO temp.import_stage (line, email_key, email, name) VALUES (?1, ?2, ?3, ?4)",
        [S_IMP_CLEAR_STAGE] = "DELETE FROM temp.import_stage",
        [S_IMP_CLEAR_KEYS] = "DELETE FROM temp.import_keys",
        [S_IMP_KEYS] =
                "INSERT INTO temp.import_keys (email_key, email, name)"
                " SELECT email_key, email, name FROM temp.import_stage WHERE rowid IN"
                " (SELECT min(rowid) FROM temp.import_stage GROUP BY email_key)",
        [S_IMP_COUNT_STAGE] = "SELECT count(*) FROM temp.import_stage",
        [S_IMP_SUBSCRIBERS] =
                "INSERT INTO subscriber (email_key, email, name, created_at)"
                " SELECT k.email_key, k.email, k.name, ?1 FROM temp.import_keys k WHERE true"
                " ON CONFLICT (email_key) DO NOTHING",
        [S_IMP_SUBSCRIBER_IDS] =
                "UPDATE temp.import_keys SET subscriber_id ="
                " (SELECT u.id FROM subscriber u WHERE u.email_key = import_keys.email_key)",
        [S_IMP_EXISTING] =
                "DELETE FROM temp.import_keys WHERE EXISTS (SELECT 1 FROM subscription s"
                " WHERE s.subscriber_id = import_keys.subscriber_id AND s.list = ?1)",
        /* a pending sign-up kept apart stays so, and its address gets no
         * subscriber row from the file (before S_IMP_SUBSCRIBERS) */
        [S_IMP_APART] =
                "DELETE FROM temp.import_keys WHERE EXISTS (SELECT 1 FROM signup g"
                " WHERE g.email_key = import_keys.email_key AND g.list = ?1)",
        [S_IMP_SUBSCRIPTIONS] =
                "INSERT INTO subscription (subscriber_id, list, state, lang, created_at, mailed_at,"
                " confirmed_at) SELECT subscriber_id, ?1, ?2, ?3, ?4,"
                " CASE WHEN ?2 = 'pending' THEN ?4 END, CASE WHEN ?2 = 'confirmed' THEN ?4 END"
                " FROM temp.import_keys ORDER BY rowid",
        [S_IMP_CONSENT] =
                "INSERT INTO consent (subscriber_id, list, event, at, lang, source, text_version)"
                " SELECT subscriber_id, ?1, ?2, ?3, ?4, ?5, ?6 FROM temp.import_keys ORDER BY rowid",
        [S_IMP_OUTBOX] =
                "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at)"
                " SELECT 'confirm', s.id, 'queued', ?2, ?3, ?3 FROM temp.import_keys k"
                " JOIN subscription s ON s.subscriber_id = k.subscriber_id AND s.list = ?1"
                " ORDER BY k.rowid",

        [S_STATS_SUBS] = "SELECT state, count(*) FROM subscription GROUP BY state",
        [S_STATS_MAILS] = "SELECT state, count(*) FROM outbox GROUP BY state",
        [S_STATS_DAYS] =
                "SELECT event, (at - ?1) / 86400, count(*) FROM"
                " (SELECT event, at FROM consent WHERE event IN ('signup', 'confirm') AND at >= ?1"
                " UNION ALL SELECT 'signup', mailed_at FROM signup WHERE mailed_at >= ?1) GROUP BY 1, 2",

        [S_SUBSCRIBER_BY_KEY] =
                "SELECT id, email, name, created_at FROM subscriber WHERE email_key = ?1",
        /* an address known only from pending sign-ups (sql/009) */
        [S_SIGNUP_WHO] =
                "SELECT 0, email, name, at FROM signup WHERE email_key = ?1 ORDER BY at DESC LIMIT 1",
        /* ?1 the subscriber (0: none), ?2 the address's key: its sign-ups kept apart */
        [S_EXPORT_SUBS] =
                "SELECT list, state, lang, created_at, mailed_at, confirmed_at, confirm_ip,"
                " unsubscribed_at FROM subscription WHERE subscriber_id = ?1"
                " OR id IN (SELECT subscription_id FROM signup WHERE email_key = ?2) ORDER BY id",
        [S_EXPORT_CONSENT] =
                "SELECT list, event, at, ip, user_agent, lang, source, text_version, consent_text,"
                " consent_version FROM (SELECT c.id AS k, c.list, c.event, c.at, c.ip, c.user_agent,"
                " c.lang, c.source, c.text_version, c.consent_text, c.consent_version FROM consent c"
                " WHERE c.subscriber_id = ?1 UNION ALL SELECT 9e18, g.list, 'signup', g.at, g.ip,"
                " g.user_agent, g.lang, g.source, g.text_version, g.consent_text, g.consent_version"
                " FROM signup g WHERE g.email_key = ?2) ORDER BY k, at",
        [S_EXPORT_MAILS] =
                "SELECT o.id, o.kind, s.list, o.state, o.created_at, o.attempts, o.done_at, o.reply"
                " FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
                " WHERE s.subscriber_id = ?1"
                " OR s.id IN (SELECT subscription_id FROM signup WHERE email_key = ?2) ORDER BY o.id",
        [S_EXPORT_TOKENS] =
                "SELECT s.list, t.kind, t.issued_at, t.expires_at FROM token t"
                " JOIN subscription s ON s.id = t.subscription_id WHERE s.subscriber_id = ?1"
                " OR s.id IN (SELECT subscription_id FROM signup WHERE email_key = ?2)"
                " ORDER BY t.issued_at",
        [S_ERASE_SUBS] = "DELETE FROM subscription WHERE subscriber_id = ?1",
        /* cascades to the sign-up's row, tokens and mails */
        [S_ERASE_SIGNUPS] =
                "DELETE FROM subscription WHERE id IN (SELECT subscription_id FROM signup"
                " WHERE email_key = ?1)",
        [S_ERASE_RCPT] = "DELETE FROM outbox WHERE rcpt IS NOT NULL AND lower(rcpt) = ?1",
        [S_ERASE] = "DELETE FROM subscriber WHERE id = ?1",

        [S_ISSUE_ADD] =
                "INSERT INTO issue (list, subject, text_body, html_body, state, test, created_at)"
                " VALUES (?1, ?2, ?3, ?4, 'sending', ?5, ?6)",
        /* the recipient set is fixed here: who confirms later gets the next issue */
        [S_ISSUE_RECIPIENTS] =
                "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at, issue_id)"
                " SELECT 'newsletter', id, 'queued', ?3, ?2, ?2, ?1 FROM subscription"
                " WHERE list = ?4 AND state = 'confirmed' ORDER BY id",
        [S_ISSUE_TEST_RCPT] =
                "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at,"
                " issue_id, rcpt) VALUES ('newsletter', NULL, 'queued', ?3, ?2, ?2, ?1, ?4)",
        [S_ISSUE_GET] =
                "SELECT list, subject, text_body, html_body, state, test, created_at FROM issue"
                " WHERE id = ?1",
        /* kept by the daemon and by triggers (sql/006, sql/008); queued includes sending */
        [S_ISSUE_COUNTS] = "SELECT state, n FROM issue_progress WHERE issue_id = ?1",
        [S_ISSUE_LATEST] = "SELECT max(id) FROM issue WHERE test = 0",
        [S_ISSUE_STATE] = "UPDATE issue SET state = ?2 WHERE id = ?1",
        /* a paused issue's mails are parked far in the future, out of the due scans */
        [S_ISSUE_PARK] =
                "UPDATE outbox SET next_at = next_at + ?2 WHERE issue_id = ?1"
                " AND state IN ('queued', 'deferred') AND next_at < ?2",
        [S_ISSUE_UNPARK] =
                "UPDATE outbox SET next_at = max(next_at - ?2, 0) WHERE issue_id = ?1"
                " AND state IN ('queued', 'deferred') AND next_at >= ?2",
        [S_ISSUE_CANCEL] =
                "UPDATE outbox SET state = 'skipped', reply = 'cancelled', done_at = ?2"
                " WHERE issue_id = ?1 AND state IN ('queued', 'deferred')",
        [S_ISSUE_FAILED] =
                "SELECT coalesce(o.rcpt, u.email), o.reply, o.done_at,"
                " EXISTS (SELECT 1 FROM bounce b WHERE b.outbox_id = o.id AND b.kind = 'permanent')"
                " FROM outbox o"
                " LEFT JOIN subscription s ON s.id = o.subscription_id"
                " LEFT JOIN subscriber u ON u.id = s.subscriber_id"
                " WHERE o.issue_id = ?1 AND o.state = 'failed' ORDER BY o.id LIMIT ?2",
        /* the subscriber 0 (NULL) and the address of its record: a sign-up
         * kept apart (sql/009); no address: one that expired */
        [S_MAIL_OWNER] =
                "SELECT s.subscriber_id, coalesce(u.email, (SELECT g.email FROM signup g"
                " WHERE g.subscription_id = s.id AND g.mailed_at = s.mailed_at),"
                " (SELECT g.email FROM signup g WHERE g.subscription_id = s.id)), o.issue_id"
                " FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
                " LEFT JOIN subscriber u ON u.id = s.subscriber_id WHERE o.id = ?1",
        /* a report the MTA delivers twice (it retries after a failed pipe) counts once */
        [S_BOUNCE_ADD] =
                "INSERT INTO bounce (subscriber_id, outbox_id, issue_id, kind, status, diagnostic, at)"
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE ?2 IS NULL OR NOT EXISTS"
                " (SELECT 1 FROM bounce WHERE outbox_id = ?2 AND kind = ?4)",
        [S_BOUNCE_COUNT] =
                "SELECT count(*) FROM bounce WHERE subscriber_id = ?1 AND kind = 'temporary' AND at >= ?2",
        [S_SUBS_BOUNCED] =
                "UPDATE subscription SET state = 'bounced' WHERE subscriber_id = ?1"
                " AND state IN ('pending', 'confirmed')",
        /* one consent event per list the next statement leaves, however many */
        [S_CONSENT_UNSUBSCRIBE_ALL] =
                "INSERT INTO consent (subscriber_id, list, event, at, source)"
                " SELECT subscriber_id, list, 'unsubscribe', ?2, ?3 FROM subscription"
                " WHERE subscriber_id = ?1 AND state IN ('pending', 'confirmed', 'bounced')",
        [S_SUBS_UNSUBSCRIBE_ALL] =
                "UPDATE subscription SET state = 'unsubscribed', unsubscribed_at = ?2"
                " WHERE subscriber_id = ?1 AND state IN ('pending', 'confirmed', 'bounced')",
        [S_STATS_BOUNCES] = "SELECT kind, count(*) FROM bounce GROUP BY kind",
        [S_BOUNCE_REFUSED] =
                "INSERT INTO bounce_refused (reason, n, last) VALUES (?1, 1, ?2)"
                " ON CONFLICT (reason) DO UPDATE SET n = n + 1, last = ?2",
        [S_STATS_REFUSED] = "SELECT coalesce(sum(n), 0) FROM bounce_refused",
        [S_BOUNCE_IGNORED] =
                "INSERT INTO bounce_ignored (reason, n, last) VALUES (?1, 1, ?2)"
                " ON CONFLICT (reason) DO UPDATE SET n = n + 1, last = ?2",
        [S_STATS_IGNORED] =
                "SELECT coalesce(sum(n) FILTER (WHERE reason = 'autoreply'), 0),"
                " coalesce(sum(n) FILTER (WHERE reason <> 'autoreply'), 0) FROM bounce_ignored",
        [S_ISSUE_BOUNCES] = "SELECT kind, count(*) FROM bounce WHERE issue_id = ?1 GROUP BY kind",
        [S_RATE_GET] = "SELECT window_start, count FROM rate_limit WHERE key = ?1",
        [S_RATE_PUT] =
                "INSERT INTO rate_limit (key, window_start, count) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start,"
                " count = excluded.count",
        [S_RATE_PURGE] = "DELETE FROM rate_limit WHERE window_start <= ?1",
        [S_OUTBOX_PARK] = "UPDATE outbox SET next_at = next_at + ?2 WHERE id = ?1 AND next_at < ?2",
        [S_OUTBOX_SKIP] =
                "UPDATE outbox SET state = 'skipped', reply = ?2, done_at = ?3 WHERE id = ?1",
        /* issue_progress: inserts and updates of outbox rows move its counts
         * here (sql/008), deletes by trigger (sql/006) */
        [S_PROGRESS_TAKE] = "UPDATE issue_progress SET n = n - ?3 WHERE issue_id = ?1 AND state = ?2",
        [S_PROGRESS_GIVE] =
                "INSERT INTO issue_progress (issue_id, state, n) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (issue_id, state) DO UPDATE SET n = n + excluded.n",
        [S_PROGRESS_CLEAR] = "DELETE FROM issue_progress WHERE issue_id = ?1",
        [S_PROGRESS_COUNT] =
                "INSERT INTO issue_progress (issue_id, state, n)"
                " SELECT issue_id, CASE state WHEN 'sending' THEN 'queued' ELSE state END, count(*)"
                " FROM outbox WHERE issue_id = ?1 GROUP BY 2",
};

/* The WAL is checkpointed in the background once it holds this many
 * frames (pages); past the second mark, the writer finishes the job (see
 * wal_hook), so the WAL stays bounded. */
#define CHECKPOINT_FRAMES       1000
#define CHECKPOINT_FRAMES_MAX   4000

struct checkpointer {
        sqlite3 *db;                    /* checkpoints only */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool wanted, stopping, running, busy;
        unsigned long done;             /* checkpoints run, for the tests' log */
        int woken_at;                   /* WAL frames when it was last woken */
};

struct store {
        sqlite3 *db;
        sqlite3_stmt *stmt[S_N];
        bool in_batch;
        bool wal_unsynced;              /* commits in the WAL not yet synced by us */
        unsigned long syncs;            /* explicit syncs of the WAL, for the log */
        struct checkpointer ckpt;
        int wal_frames;                 /* in the WAL after the last commit */
        int64_t signup_period;          /* seconds of mailed_at per sign-up table (sql/009) */
        sqlite3_stmt *signup_insert;    /* into the newest of them, */
        int64_t signup_insert_table;    /* this one */
};

static void checkpointer_start(struct store *st, const char *path);
static int signup_view(struct store *st);
static void checkpointer_stop(struct store *st);

static const char *const sub_state_names[] = {
        [SUB_PENDING] = "pending", [SUB_CONFIRMED] = "confirmed", [SUB_EXPIRED] = "expired",
        [SUB_UNSUBSCRIBED] = "unsubscribed", [SUB_BOUNCED] = "bounced",
};
static const char *const mail_state_names[] = {
        [MS_QUEUED] = "queued", [MS_SENDING] = "sending", [MS_SENT] = "sent",
        [MS_DEFERRED] = "deferred", [MS_FAILED] = "failed", [MS_SKIPPED] = "skipped",
};
static const char *const issue_state_names[] = {
        [ISSUE_SENDING] = "sending", [ISSUE_PAUSED] = "paused", [ISSUE_CANCELLED] = "cancelled",
};
static const char *const token_kind_names[] = {
        [TOKEN_CONFIRM] = "confirm", [TOKEN_UNSUBSCRIBE] = "unsubscribe",
};
static const char *const mail_kind_names[] = {
        [MAIL_CONFIRM] = "confirm", [MAIL_NEWSLETTER] = "newsletter",
};

const char *sub_state_name(enum sub_state s)
{
        return sub_state_names[s];
}

const char *issue_state_name(enum issue_state s)
{
        return issue_state_names[s];
}

const char *mail_state_name(enum mail_state s)
{
        return mail_state_names[s];
}

static int name_index(const char *const *names, size_t n, const unsigned char *s)
{
        if (s)
                for (size_t i = 0; i < n; i++)
                        if (strcmp(names[i], (const char *)s) == 0)
                                return (int)i;
        return -1;
}
#define NAME_INDEX(names, s) name_index(names, sizeof(names) / sizeof(names[0]), s)

const char *store_errmsg(struct store *st)
{
        return st && st->db ? sqlite3_errmsg(st->db) : "no database";
}

static int sqlite_to_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED: return -EBUSY;
        case SQLITE_NOMEM: return -ENOMEM;
        case SQLITE_FULL: return -ENOSPC;
        case SQLITE_READONLY: return -EROFS;
        case SQLITE_CONSTRAINT: return -EEXIST;
        case SQLITE_CANTOPEN: return -ENOENT;
        default: return -EIO;
        }
}

static int fail(struct store *st, int rc, const char *what)
{
        log_err("database: %s: %s", what, sqlite3_errmsg(st->db));
        return sqlite_to_errno(rc);
}

/* Reset and clear a cached statement for a new run. */
static sqlite3_stmt *stmt(struct store *st, enum stmt_id id)
{
        sqlite3_stmt *s = st->stmt[id];
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
}

/* Run a statement that returns no rows. */
static int run(struct store *st, enum stmt_id id, sqlite3_stmt *s)
{
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return fail(st, rc, stmt_sql[id]);
        return 0;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
        if (v)
                sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(s, i);
}

static int exec(struct store *st, const char *sql)
{
        char *msg = NULL;
        int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                log_err("database: %s", msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return sqlite_to_errno(rc);
        }
        return 0;
}

static int migrate(struct store *st)
{
        sqlite3_stmt *s;
        int version = 0, target = 0, r;

        if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
                return fail(st, SQLITE_ERROR, "user_version");
        if (sqlite3_step(s) == SQLITE_ROW)
                version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        for (const struct embedded_text *m = embedded_migrations; m->name; m++)
                target++;
        if (version > target) {
                log_err("database schema version %d is newer than this newsletterd knows (%d)",
                        version, target);
                return -EPROTO;
        }
        if (version == target)
                return 0;
        /* sql/007 rewrites constraint text with writable_schema, which a
         * connection in defensive mode ignores (its guard would then fail
         * the start): off, whatever this SQLite's build chose by default */
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 0, (int *)NULL);
        if ((r = exec(st, "BEGIN EXCLUSIVE")) < 0) {
                sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
                return r;
        }
        for (int i = version; i < target; i++) {
                if ((r = exec(st, embedded_migrations[i].text)) < 0) {
                        log_err("database migration %s failed", embedded_migrations[i].name);
                        if (!sqlite3_get_autocommit(st->db))
                                exec(st, "ROLLBACK");
                        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
                        return r;
                }
        }
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", target);
        if (((r = exec(st, sql)) < 0 || (r = exec(st, "COMMIT")) < 0) &&
            !sqlite3_get_autocommit(st->db))
                exec(st, "ROLLBACK");
        /* and on again: no statement may write the schema by hand */
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
        if (r < 0)
                return r;
        log_info("database schema migrated from version %d to %d", version, target);
        return 0;
}

/* Commits are written with synchronous=NORMAL: SQLite syncs the WAL only
 * before a checkpoint.  A commit that carries a client's write is synced by
 * store_sync(), which the daemon calls before its answers go out.  The
 * setting is fixed here, outside any transaction: SQLite refuses to change
 * it inside one, and a prepared "PRAGMA synchronous" takes effect when it
 * is prepared, not when it is run (so switching per commit cannot work).
 * Read back, so that a build whose default differs is noticed. */
static int check_synchronous(struct store *st)
{
        int v = store_synchronous(st);
        if (v != 1) {
                log_err("database: PRAGMA synchronous reads %d, not NORMAL (1)", v);
                return -EIO;
        }
        return 0;
}

bool store_defensive(struct store *st)
{
        int on = 0;
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, -1, &on);
        return on == 1;
}

int store_synchronous(struct store *st)
{
        sqlite3_stmt *s;
        int v = -1;
        if (sqlite3_prepare_v2(st->db, "PRAGMA synchronous", -1, &s, NULL) != SQLITE_OK)
                return -1;
        if (sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        return v;
}

/* Scratch tables of this connection (never on disk with the data). */
static const char temp_schema[] =
        "PRAGMA temp_store = FILE;"
        "CREATE TEMP TABLE expire_ids (id INTEGER PRIMARY KEY, subscriber_id INTEGER, list TEXT);"
        "CREATE TEMP TABLE import_stage (line INTEGER, email_key TEXT, email TEXT, name TEXT);"
        "CREATE TEMP TABLE import_keys (email_key TEXT PRIMARY KEY, email TEXT, name TEXT,"
        " subscriber_id INTEGER);";

/* A savepoint's journal stays in memory up to this size.  Below 128 KiB:
 * SQLite (3.40) writes an overflowing journal to its file in one write,
 * and its unix layer writes at most 128 KiB - 1 bytes at a time, so a
 * larger threshold fails the first statement that overflows it with
 * SQLITE_FULL (an import of 20,000 addresses did, at 256 KiB to 3 MiB). */
#define STMT_SPILL (120 << 10)

/* Whether `path`-wal holds anything (a database may live in its WAL until
 * the first checkpoint). */
static bool wal_has_data(const char *path)
{
        char wal[4096];
        struct stat sb;
        if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >= sizeof(wal))
                return false;
        return stat(wal, &sb) == 0 && sb.st_size > 0;
}

/* Why the first use of the database failed, in words an admin can act on;
 * the errno to report. */
static int open_failure(struct store *st, const char *path, int r)
{
        int rc = sqlite3_extended_errcode(st->db), sys = sqlite3_system_errno(st->db);
        if (r == -ENOSPC)       /* (a rollback after it may have replaced the error) */
                rc = SQLITE_FULL;
        switch (rc & 0xff) {
        case SQLITE_NOTADB:
        case SQLITE_CORRUPT:
                log_err("database %s is damaged or not an SQLite database (%s): restore it from a"
                        " backup, or move it away to start with an empty one", path,
                        sqlite3_errstr(rc));
                return -EBADMSG;
        case SQLITE_FULL:
                sys = ENOSPC;
                break;
        case SQLITE_READONLY:
                /* SQLite opens a file it may not write read-only; the
                 * directory must be writable too (the WAL and its index) */
                if (!sys)
                        sys = EACCES;
                log_err("database %s or its directory is not writable for uid %u", path,
                        (unsigned)geteuid());
                break;
        default:
                break;
        }
        if (sys) {
                log_err("database %s: %s", path, strerror(sys));
                return -sys;
        }
        return r;
}

int store_open(const char *path, struct store **out)
{
        struct store *st = xcalloc(1, sizeof(*st));
        int r;
        pthread_mutex_init(&st->ckpt.lock, NULL);
        pthread_cond_init(&st->ckpt.cond, NULL);

        /* create it 0600 ourselves (SQLite would follow the umask), and only
         * when there is none: a file that is there must hold a database */
        bool created = false;
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT) {
                fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                created = fd >= 0;
        }
        if (fd < 0) {
                r = -errno;
                log_err("database %s cannot be opened for writing by uid %u: %s", path,
                        (unsigned)geteuid(), strerror(errno));
                free(st);
                return r;
        }
        struct stat sb;
        if (fstat(fd, &sb) == 0 && (sb.st_mode & 0077)) {
                log_err("database %s is accessible to group or others (mode %04o); chmod 600 it",
                        path, (unsigned)(sb.st_mode & 07777));
                close(fd);
                free(st);
                return -EPERM;
        }
        close(fd);
        if (!created && sb.st_size == 0 && !wal_has_data(path)) {
                /* a truncated or replaced file would otherwise start as a new,
                 * empty database: every subscriber gone without a word */
                log_err("database %s is an empty file this start did not make: restore it from a"
                        " backup, or delete it to start with an empty database", path);
                free(st);
                return -EBADMSG;
        }

        /* Set before SQLite's first use (SQLITE_MISUSE after it, harmless).
         * Its memory statistics take a global mutex on every allocation, and
         * nothing here reads them.  Every request of a batch runs in a
         * savepoint, whose journal holds the pages the request changes
         * (16 or more for a sign-up, over SQLite's default of 64 KiB): kept
         * in memory up to STMT_SPILL rather than in a temporary file, which
         * cost a sign-up storm 20 writes per sign-up. */
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, STMT_SPILL);
        int rc = sqlite3_open_v2(path, &st->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                                 NULL);
        if (rc != SQLITE_OK) {
                log_err("database %s: %s", path, st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
                sqlite3_close(st->db);
                free(st);
                return sqlite_to_errno(rc);
        }
        sqlite3_busy_timeout(st->db, 5000);
        sqlite3_extended_result_codes(st->db, 1);
        /* no statement may corrupt the file by writing the schema or
         * SQLite's internals (only a migration may need to: migrate()) */
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
        if ((r = exec(st, "PRAGMA journal_mode = WAL")) < 0 ||
            (r = exec(st, "PRAGMA synchronous = NORMAL")) < 0 ||
            (r = check_synchronous(st)) < 0 ||
            (r = exec(st, "PRAGMA foreign_keys = ON")) < 0 ||
            (r = exec(st, "PRAGMA trusted_schema = OFF")) < 0 ||
            (r = exec(st, "PRAGMA secure_delete = ON")) < 0 ||
            (r = migrate(st)) < 0 ||
            (r = exec(st, temp_schema)) < 0 ||
            (r = signup_view(st)) < 0) {
                r = open_failure(st, path, r);
                store_close(st);
                return r;
        }
        for (int i = 0; i < S_N; i++) {
                rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &st->stmt[i], NULL);
                if (rc != SQLITE_OK) {
                        r = open_failure(st, path, fail(st, rc, stmt_sql[i]));
                        store_close(st);
                        return r;
                }
        }
        st->signup_period = 30 * 86400 / 4;
        checkpointer_start(st, path);
        *out = st;
        return 0;
}

/* ---- checkpoints ---- */

static void *checkpointer_thread(void *ud)
{
        struct checkpointer *c = ud;
        pthread_mutex_lock(&c->lock);
        for (;;) {
                while (!c->wanted && !c->stopping)
                        pthread_cond_wait(&c->cond, &c->lock);
                if (c->stopping)
                        break;
                c->wanted = false;
                c->busy = true;
                pthread_mutex_unlock(&c->lock);
                /* PASSIVE: copies what it can without waiting for the writer
                 * or blocking it */
                int log = 0, done = 0;
                int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                        log_warn("checkpoint: %s", sqlite3_errmsg(c->db));
                pthread_mutex_lock(&c->lock);
                c->busy = false;
                c->done++;
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

/* After every commit, on the main thread: wake the checkpointer.  The WAL
 * starts over from its beginning only at a write that finds every frame in
 * it copied, which a checkpoint running beside a busy writer (a storm of
 * sign-ups) never leaves behind; so when the WAL has grown long anyway and
 * the checkpointer is between two runs, the writer copies what was added
 * since the last run itself, and the next transaction starts the WAL over.
 * Housekeeping waits for the checkpointer instead (store_wal_backlog). */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int frames)
{
        struct store *st = ud;
        struct checkpointer *c = &st->ckpt;
        st->wal_frames = frames;
        st->wal_unsynced = true;
        if (frames < CHECKPOINT_FRAMES)
                return SQLITE_OK;
        bool here = !c->running;
        if (c->running) {
                pthread_mutex_lock(&c->lock);
                if (frames < c->woken_at)
                        c->woken_at = 0;        /* the WAL started over */
                if (!c->busy && !c->wanted && frames >= CHECKPOINT_FRAMES_MAX) {
                        here = true;
                } else if (!c->busy && frames - c->woken_at >= CHECKPOINT_FRAMES) {
                        c->wanted = true;
                        c->woken_at = frames;
                }
                pthread_cond_signal(&c->cond);
                pthread_mutex_unlock(&c->lock);
        }
        if (here) {
                int log = 0, done = 0;
                sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        }
        return SQLITE_OK;
}

bool store_wal_backlog(struct store *st)
{
        struct checkpointer *c = &st->ckpt;
        if (!c->running || st->wal_frames < CHECKPOINT_FRAMES)
                return false;
        pthread_mutex_lock(&c->lock);
        bool behind = c->busy || c->wanted;
        pthread_mutex_unlock(&c->lock);
        return behind;
}

static void checkpointer_start(struct store *st, const char *path)
{
        struct checkpointer *c = &st->ckpt;
        sqlite3_wal_hook(st->db, wal_hook, st);
        int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        /* a connection knows the database is in WAL mode only once it read it */
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(c->db, "PRAGMA journal_mode", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_busy_timeout(c->db, 5000);
                /* every signal is the main loop's: the thread starts with all blocked */
                sigset_t all, old;
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                rc = pthread_create(&c->thread, NULL, checkpointer_thread, c);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (rc == 0) {
                        pthread_setname_np(c->thread, "checkpoint");
                        c->running = true;
                        return;
                }
                log_warn("checkpointer: pthread_create: %s", strerror(rc));
        } else {
                log_warn("checkpointer: %s", c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        }
        /* the main connection checkpoints itself (see wal_hook) */
        sqlite3_close(c->db);
        c->db = NULL;
}

static void checkpointer_stop(struct store *st)
{
        struct checkpointer *c = &st->ckpt;
        if (c->running) {
                pthread_mutex_lock(&c->lock);
                c->stopping = true;
                pthread_cond_signal(&c->cond);
                pthread_mutex_unlock(&c->lock);
                pthread_join(c->thread, NULL);
                c->running = false;
                log_debug("checkpointer: %lu checkpoints", c->done);
        }
        sqlite3_close(c->db);
        c->db = NULL;
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cond);
}

void store_close(struct store *st)
{
        if (!st)
                return;
        checkpointer_stop(st);
        if (st->db && !sqlite3_get_autocommit(st->db))
                exec(st, "ROLLBACK");
        for (int i = 0; i < S_N; i++)
                sqlite3_finalize(st->stmt[i]);
        sqlite3_finalize(st->signup_insert);
        sqlite3_close(st->db);
        free(st);
}

/* ---- transactions ---- */

int store_batch_begin(struct store *st)
{
        if (st->in_batch)
                return 0;
        int r = run(st, S_BEGIN, stmt(st, S_BEGIN));
        if (r == 0)
                st->in_batch = true;
        return r;
}

bool store_batch_open(struct store *st)
{
        return st->in_batch;
}

/* fdatasync() the WAL (SQLite's xSync of it).  In WAL mode the pager's
 * journal file is the WAL. */
static void wal_sync(struct store *st)
{
        sqlite3_file *wal = NULL;
        int rc = sqlite3_file_control(st->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
        if (rc == SQLITE_OK && (!wal || !wal->pMethods))
                rc = SQLITE_IOERR_FSYNC;        /* no WAL open after a commit: cannot be */
        if (rc == SQLITE_OK)
                rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
        /* After a failed fsync the kernel may have dropped the dirty pages
         * and report the next fsync as a success: what was acknowledged
         * since the last good one would be lost at a power cut, and every
         * later frame depends on them (the WAL's checksum chain).  No
         * answer may go out on that; the next start recovers from what is
         * on disk, and systemd restarts the daemon. */
        if (rc != SQLITE_OK)
                fatal("database: syncing the WAL failed (%s): stopping, nothing more is"
                      " acknowledged; the next start recovers what is on disk", sqlite3_errstr(rc));
        st->wal_unsynced = false;
        st->syncs++;
}

int store_batch_commit(struct store *st)
{
        if (!st->in_batch)
                return 0;
        int r = run(st, S_COMMIT, stmt(st, S_COMMIT));
        if (r < 0) {
                if (!sqlite3_get_autocommit(st->db))
                        run(st, S_ROLLBACK, stmt(st, S_ROLLBACK));
        }
        st->in_batch = false;
        return r;
}

void store_sync(struct store *st)
{
        if (st->wal_unsynced)
                wal_sync(st);
}

unsigned long store_syncs(struct store *st)
{
        return st->syncs;
}

void store_batch_rollback(struct store *st)
{
        if (!st->in_batch)
                return;
        if (!sqlite3_get_autocommit(st->db))
                run(st, S_ROLLBACK, stmt(st, S_ROLLBACK));
        st->in_batch = false;
}

int store_savepoint(struct store *st)
{
        return run(st, S_SAVEPOINT, stmt(st, S_SAVEPOINT));
}

int store_release(struct store *st)
{
        return run(st, S_RELEASE, stmt(st, S_RELEASE));
}

void store_rollback_to(struct store *st)
{
        /* ROLLBACK TO keeps the savepoint open; RELEASE it afterwards */
        if (run(st, S_ROLLBACK_TO, stmt(st, S_ROLLBACK_TO)) == 0)
                run(st, S_RELEASE, stmt(st, S_RELEASE));
}

/* ---- subscribers and subscriptions ---- */

static int subscription_find(struct store *st, enum stmt_id id, const char *email_key,
                             const char *list, struct subscription *out)
{
        sqlite3_stmt *s = stmt(st, id);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                sqlite3_reset(s);
                return 1;
        }
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return fail(st, rc, stmt_sql[id]);
        }
        out->id = sqlite3_column_int64(s, 0);
        out->subscriber_id = sqlite3_column_int64(s, 1);
        int state = NAME_INDEX(sub_state_names, sqlite3_column_text(s, 2));
        int lang = lang_parse((const char *)sqlite3_column_text(s, 3),
                              (size_t)sqlite3_column_bytes(s, 3));
        out->created_at = sqlite3_column_int64(s, 4);
        out->mailed_at = sqlite3_column_int64(s, 5);
        sqlite3_reset(s);
        if (state < 0)
                fatal("subscription %lld has an unknown state", (long long)out->id);
        out->state = (enum sub_state)state;
        out->lang = lang < 0 ? LANG_DEFAULT : (enum lang)lang;
        return 0;
}

int store_subscription_find(struct store *st, const char *email_key, const char *list,
                            struct subscription *out)
{
        int r = subscription_find(st, S_SUB_FIND, email_key, list, out);
        if (r == 1)
                r = subscription_find(st, S_SIGNUP_FIND, email_key, list, out);
        return r;
}

static int run_ints(struct store *st, enum stmt_id id, int n, int64_t a, int64_t b, int64_t *changes);

/* The subscriber of this address, made from `email` and `name` when there
 * is none; an existing one's address and name are changed only when
 * `update` (a confirmation: the address's owner speaks). */
static int subscriber_get(struct store *st, const char *email_key, const char *email,
                          const char *name, int64_t now, bool update, int64_t *id)
{
        sqlite3_stmt *s = stmt(st, S_SUBSCRIBER_FIND);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *id = sqlite3_column_int64(s, 0);
                sqlite3_reset(s);
                if (!update)
                        return 0;
                s = stmt(st, S_SUBSCRIBER_NAME);
                sqlite3_bind_int64(s, 1, *id);
                sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
                bind_text_or_null(s, 3, name);
                return run(st, S_SUBSCRIBER_NAME, s);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return fail(st, rc, "find subscriber");
        s = stmt(st, S_SUBSCRIBER_ADD);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
        bind_text_or_null(s, 3, name);
        sqlite3_bind_int64(s, 4, now);
        int r = run(st, S_SUBSCRIBER_ADD, s);
        if (r == 0)
                *id = sqlite3_last_insert_rowid(st->db);
        return r;
}

int store_subscription_unlink(struct store *st, int64_t subscription_id)
{
        return run_ints(st, S_SUB_UNLINK, 1, subscription_id, 0, NULL);
}

int store_subscription_add(struct store *st, int64_t subscriber_id, const char *list,
                           enum lang lang, int64_t now, int64_t *id)
{
        sqlite3_stmt *s = stmt(st, S_SUB_ADD);
        if (subscriber_id)
                sqlite3_bind_int64(s, 1, subscriber_id);
        else
                sqlite3_bind_null(s, 1);
        sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, lang_name(lang), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, now);
        int r = run(st, S_SUB_ADD, s);
        if (r == 0)
                *id = sqlite3_last_insert_rowid(st->db);
        return r;
}

int store_subscription_restart(struct store *st, int64_t id, enum lang lang, int64_t now)
{
        sqlite3_stmt *s = stmt(st, S_SUB_RESTART);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, lang_name(lang), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now);
        int r = run(st, S_SUB_RESTART, s);
        if (r == 0)
                r = store_tokens_delete(st, id, TOKEN_CONFIRM);
        return r;
}

int store_subscription_mailed(struct store *st, int64_t id, int64_t now, enum lang lang)
{
        sqlite3_stmt *s = stmt(st, S_SUB_MAILED);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_text(s, 3, lang_name(lang), -1, SQLITE_STATIC);
        return run(st, S_SUB_MAILED, s);
}

int store_subscription_confirm(struct store *st, int64_t id, int64_t now, const char *ip)
{
        sqlite3_stmt *s = stmt(st, S_SUB_CONFIRM);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        bind_text_or_null(s, 3, ip);
        return run(st, S_SUB_CONFIRM, s);
}

int store_subscription_unsubscribe(struct store *st, int64_t id, int64_t now)
{
        sqlite3_stmt *s = stmt(st, S_SUB_UNSUBSCRIBE);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        return run(st, S_SUB_UNSUBSCRIBE, s);
}

int store_consent_add(struct store *st, const struct consent *c)
{
        sqlite3_stmt *s = stmt(st, S_CONSENT_ADD);
        sqlite3_bind_int64(s, 1, c->subscriber_id);
        sqlite3_bind_text(s, 2, c->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, c->event, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, c->at);
        bind_text_or_null(s, 5, c->ip);
        bind_text_or_null(s, 6, c->user_agent);
        bind_text_or_null(s, 7, c->lang);
        sqlite3_bind_text(s, 8, c->source, -1, SQLITE_STATIC);
        bind_text_or_null(s, 9, c->text_version);
        bind_text_or_null(s, 10, c->consent_text);
        bind_text_or_null(s, 11, c->consent_version);
        return run(st, S_CONSENT_ADD, s);
}

/* ---- sign-ups kept apart until confirmed (sql/009) ---- */


static char *column_dup(sqlite3_stmt *s, int i)
{
        if (sqlite3_column_type(s, i) == SQLITE_NULL)
                return NULL;
        return xstrndup((const char *)sqlite3_column_text(s, i), (size_t)sqlite3_column_bytes(s, i));
}

/* The columns of a signup_<id> table, and the table itself.  Every piece
 * of SQL built at run time here holds only numbers the store chose (table
 * ids), never anything from outside. */
#define SIGNUP_COLUMNS \
        "email_key, list, subscription_id, email, name, mailed_at, at, ip, user_agent, lang," \
        " source, text_version, consent_text, consent_version"

/* Keyed by (subscription_id, mailed_at): rows go in at the end, in
 * sign-up order, and the due scan's lookup by subscription reads the
 * address from the table itself.  Each secondary index repeats that short
 * key, not an address: the address is in the table and in the index by
 * address only.  A million bench sign-ups take 52,500 pages this way and
 * took 74,000 keyed by address (with an address-carrying index by
 * subscription), every one of which a dropped table zeroes. */
static const char signup_table_sql[] =
        "CREATE TABLE main.signup_%lld ("
        " subscription_id INTEGER NOT NULL REFERENCES subscription(id) ON DELETE CASCADE,"
        " mailed_at INTEGER NOT NULL, email_key TEXT NOT NULL, list TEXT NOT NULL,"
        " email TEXT NOT NULL, name TEXT,"
        " at INTEGER NOT NULL, ip TEXT, user_agent TEXT, lang TEXT, source TEXT NOT NULL,"
        " text_version TEXT, consent_text TEXT, consent_version TEXT,"
        " PRIMARY KEY (subscription_id, mailed_at)) WITHOUT ROWID;"
        "CREATE INDEX main.signup_%lld_key ON signup_%lld (email_key, list);"
        "CREATE INDEX main.signup_%lld_mailed ON signup_%lld (mailed_at);";

/* The view `signup` of every table, and its triggers, (re)made whenever a
 * table comes or goes.  The statements that read it are prepared again by
 * SQLite when they next run; in a transaction that rolls back, the view
 * goes back to what it was, with the tables. */
static int signup_view(struct store *st)
{
        struct buf view, del;
        buf_init(&view, 0);
        buf_init(&del, 0);
        buf_puts(&view, "DROP VIEW IF EXISTS temp.signup; CREATE TEMP VIEW signup AS ");
        buf_puts(&del, "CREATE TEMP TRIGGER signup_delete INSTEAD OF DELETE ON signup BEGIN"
                       " SELECT 0;");
        sqlite3_stmt *s;
        int rc = sqlite3_prepare_v2(st->db, "SELECT id FROM main.signup_period ORDER BY id", -1, &s,
                                    NULL);
        long long newest = 0;
        while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                long long id = sqlite3_column_int64(s, 0);
                buf_printf(&view, "%sSELECT " SIGNUP_COLUMNS " FROM main.signup_%lld",
                           newest ? " UNION ALL " : "", id);
                buf_printf(&del, " DELETE FROM signup_%lld WHERE subscription_id = old.subscription_id"
                                " AND mailed_at = old.mailed_at;",
                           id);
                newest = id;
                rc = SQLITE_OK;
        }
        sqlite3_finalize(s);
        if (!newest)    /* no table yet: the same columns, no rows */
                buf_puts(&view, "SELECT NULL AS email_key, NULL AS list, NULL AS subscription_id,"
                                " NULL AS email, NULL AS name, NULL AS mailed_at, NULL AS at,"
                                " NULL AS ip, NULL AS user_agent, NULL AS lang, NULL AS source,"
                                " NULL AS text_version, NULL AS consent_text,"
                                " NULL AS consent_version WHERE 0");
        buf_puts(&view, ";");
        buf_puts(&del, " END;");

        int r = rc == SQLITE_DONE || rc == SQLITE_OK ? 0 : fail(st, rc, "sign-up tables");
        if (r == 0 && ((r = exec(st, buf_cstr(&view))) < 0 || (r = exec(st, buf_cstr(&del))) < 0))
                log_err("database: the view of the sign-up tables could not be made");
        buf_free(&view);
        buf_free(&del);
        return r;
}

void store_signup_period(struct store *st, int64_t seconds)
{
        st->signup_period = seconds > 0 ? seconds : 1;
}

/* The newest table takes rows mailed until its end; past it, a new one.
 * Rows go into it by a statement of its own (prepared again when the
 * newest is another; a table gone with a rolled-back transaction leaves a
 * statement SQLite prepares again, or replaces, at its next use). */
static int signup_table_for(struct store *st, int64_t now, sqlite3_stmt **insert)
{
        sqlite3_stmt *s = stmt(st, S_PERIOD_LAST);
        int rc = sqlite3_step(s);
        bool any = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
        int64_t last_end = any ? sqlite3_column_int64(s, 0) : 0;
        long long id = any ? sqlite3_column_int64(s, 1) : 0;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return fail(st, rc, stmt_sql[S_PERIOD_LAST]);
        int r;
        if (!any || now >= last_end) {
                int64_t len = st->signup_period;
                int64_t starts = now - now % len, ends = starts + len;
                if (starts < last_end)
                        starts = last_end;
                s = stmt(st, S_PERIOD_ADD);
                sqlite3_bind_int64(s, 1, starts);
                sqlite3_bind_int64(s, 2, ends);
                if ((r = run(st, S_PERIOD_ADD, s)) < 0)
                        return r;
                char sql[sizeof(signup_table_sql) + 5 * 24];
                id = sqlite3_last_insert_rowid(st->db);
                snprintf(sql, sizeof(sql), signup_table_sql, id, id, id, id, id);
                if ((r = exec(st, sql)) < 0 || (r = signup_view(st)) < 0)
                        return r;
        }
        if (!st->signup_insert || st->signup_insert_table != id) {
                char sql[512];
                snprintf(sql, sizeof(sql),
                         "INSERT OR REPLACE INTO main.signup_%lld (subscription_id, email_key, list,"
                         " email, name, mailed_at, at, ip, user_agent, lang, source, text_version,"
                         " consent_text, consent_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8,"
                         " ?9, ?10, ?11, ?12, ?13)", id);
                sqlite3_finalize(st->signup_insert);
                st->signup_insert = NULL;
                rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                        &st->signup_insert, NULL);
                if (rc != SQLITE_OK)
                        return fail(st, rc, sql);
                st->signup_insert_table = id;
        }
        *insert = st->signup_insert;
        return 0;
}

int store_signup_put(struct store *st, int64_t subscription_id, const char *email_key,
                     const char *email, const char *name, const struct consent *c, bool renew)
{
        /* made again: a row of its own in the newest table, as consent
         * would record it; the earlier ones stay until they expire (the name
         * given before stays when none is given now) */
        char *old_name = NULL;
        int r;
        if (renew && !name) {
                sqlite3_stmt *s = stmt(st, S_SIGNUP_NAME);
                sqlite3_bind_int64(s, 1, subscription_id);
                int rc = sqlite3_step(s);
                if (rc == SQLITE_ROW)
                        old_name = column_dup(s, 0);
                sqlite3_reset(s);
                if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                        return fail(st, rc, stmt_sql[S_SIGNUP_NAME]);
                name = old_name;
        }
        sqlite3_stmt *s = NULL;
        if ((r = signup_table_for(st, c->at, &s)) < 0) {
                free(old_name);
                return r;
        }
        sqlite3_bind_int64(s, 1, subscription_id);
        sqlite3_bind_text(s, 2, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, c->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, email, -1, SQLITE_STATIC);
        bind_text_or_null(s, 5, name);
        sqlite3_bind_int64(s, 6, c->at);
        bind_text_or_null(s, 7, c->ip);
        bind_text_or_null(s, 8, c->user_agent);
        bind_text_or_null(s, 9, c->lang);
        sqlite3_bind_text(s, 10, c->source, -1, SQLITE_STATIC);
        bind_text_or_null(s, 11, c->text_version);
        bind_text_or_null(s, 12, c->consent_text);
        bind_text_or_null(s, 13, c->consent_version);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        r = rc == SQLITE_DONE ? 0 : fail(st, rc, "a sign-up's record");
        free(old_name);
        return r;
}

int store_signup_forget(struct store *st, int64_t subscription_id)
{
        return run_ints(st, S_SIGNUP_DELETE, 1, subscription_id, 0, NULL);
}

/* The address and name of one record of a sign-up (copied: the statements
 * that use them run before this one is reset); 1 when there is none. */
static int signup_record(struct store *st, int64_t subscription_id, int64_t mailed_at,
                         char **key, char **email, char **name)
{
        enum stmt_id id = mailed_at ? S_SIGNUP_GET_AT : S_SIGNUP_GET;
        sqlite3_stmt *s = stmt(st, id);
        sqlite3_bind_int64(s, 1, subscription_id);
        if (mailed_at)
                sqlite3_bind_int64(s, 2, mailed_at);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *key = column_dup(s, 0);
                *email = column_dup(s, 1);
                *name = column_dup(s, 2);
        }
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : fail(st, rc, stmt_sql[id]);
}

int store_signup_adopt(struct store *st, int64_t subscription_id, int64_t now,
                       int64_t confirmed_request, int64_t *subscriber_id)
{
        /* the record the confirmation was mailed for, if it names one;
         * else the newest (it has the address's key) */
        char *key = NULL, *email = NULL, *name = NULL;
        bool own = false;
        int r = 1;
        if (confirmed_request > 0 &&
            (r = signup_record(st, subscription_id, confirmed_request, &key, &email, &name)) == 0)
                own = true;
        if (r == 1)
                r = signup_record(st, subscription_id, 0, &key, &email, &name);
        /* an existing subscriber takes only what its owner confirmed */
        if (r == 0)
                r = subscriber_get(st, key, email, name, now, own, subscriber_id);
        if (r == 0) {
                sqlite3_stmt *s = stmt(st, S_SUB_LINK);
                sqlite3_bind_int64(s, 1, subscription_id);
                sqlite3_bind_int64(s, 2, *subscriber_id);
                r = run(st, S_SUB_LINK, s);
        }
        /* every record of it, oldest first, into consent */
        if (r == 0)
                r = run_ints(st, S_SIGNUP_TO_CONSENT, 2, subscription_id, *subscriber_id, NULL);
        if (r == 0)
                r = run_ints(st, S_SIGNUP_DELETE, 1, subscription_id, 0, NULL);
        free(key);
        free(email);
        free(name);
        return r;
}

/* The sign-up of one statement's first row, adopted; 1 when there is none. */
static int adopt_first(struct store *st, enum stmt_id id, int64_t key_id, const char *key,
                       int64_t now)
{
        sqlite3_stmt *s = stmt(st, id);
        if (key)
                sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        else
                sqlite3_bind_int64(s, 1, key_id);
        int rc = sqlite3_step(s);
        int64_t subscription_id = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? 1 : fail(st, rc, stmt_sql[id]);
        if (!subscription_id)
                return 1;       /* a subscriber with none */
        int64_t subscriber_id;
        return store_signup_adopt(st, subscription_id, now, 0, &subscriber_id);
}

int store_signup_adopt_mail(struct store *st, int64_t outbox_id, int64_t now)
{
        return adopt_first(st, S_SIGNUP_OF_MAIL, outbox_id, NULL, now);
}

int store_signup_adopt_subscriber(struct store *st, int64_t subscriber_id, int64_t now)
{
        int r;
        while ((r = adopt_first(st, S_SIGNUP_OF_SUBSCRIBER, subscriber_id, NULL, now)) == 0)
                ;
        return r < 0 ? r : 0;
}

int store_signup_adopt_key(struct store *st, const char *email_key, int64_t now)
{
        int r, n = 0;
        while ((r = adopt_first(st, S_SIGNUP_OF_KEY, 0, email_key, now)) == 0)
                n++;
        return r < 0 ? r : n ? 0 : 1;
}

/* ---- tokens ---- */

int store_token_add(struct store *st, const uint8_t hash[32], int64_t subscription_id,
                    enum token_kind kind, int64_t issued_at, int64_t expires_at,
                    int64_t request_at)
{
        sqlite3_stmt *s = stmt(st, S_TOKEN_ADD);
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, subscription_id);
        sqlite3_bind_text(s, 3, token_kind_names[kind], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, issued_at);
        if (expires_at)
                sqlite3_bind_int64(s, 5, expires_at);
        else
                sqlite3_bind_null(s, 5);
        if (request_at)
                sqlite3_bind_int64(s, 6, request_at);
        return run(st, S_TOKEN_ADD, s);
}

int store_token_find(struct store *st, const uint8_t hash[32], struct token_row *out)
{
        sqlite3_stmt *s = stmt(st, S_TOKEN_FIND);
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                sqlite3_reset(s);
                return 1;
        }
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return fail(st, rc, "find token");
        }
        out->subscription_id = sqlite3_column_int64(s, 0);
        out->subscriber_id = sqlite3_column_int64(s, 1);
        int kind = NAME_INDEX(token_kind_names, sqlite3_column_text(s, 2));
        out->issued_at = sqlite3_column_int64(s, 3);
        out->expires_at = sqlite3_column_int64(s, 4);
        int state = NAME_INDEX(sub_state_names, sqlite3_column_text(s, 5));
        snprintf(out->list, sizeof(out->list), "%s", (const char *)sqlite3_column_text(s, 6));
        out->stripped = sqlite3_column_int(s, 7) != 0;
        out->request_at = sqlite3_column_int64(s, 8);   /* (NULL reads 0) */
        sqlite3_reset(s);
        if (kind < 0 || state < 0)
                fatal("token row with an unknown kind or state");
        out->kind = (enum token_kind)kind;
        out->state = (enum sub_state)state;
        return 0;
}

int store_tokens_delete(struct store *st, int64_t subscription_id, enum token_kind kind)
{
        sqlite3_stmt *s = stmt(st, S_TOKENS_DELETE);
        sqlite3_bind_int64(s, 1, subscription_id);
        sqlite3_bind_text(s, 2, token_kind_names[kind], -1, SQLITE_STATIC);
        return run(st, S_TOKENS_DELETE, s);
}

/* ---- outbox ---- */

int store_outbox_add(struct store *st, enum mail_kind kind, int64_t subscription_id,
                     int priority, int64_t now, int64_t *id)
{
        sqlite3_stmt *s = stmt(st, S_OUTBOX_ADD);
        sqlite3_bind_text(s, 1, mail_kind_names[kind], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, subscription_id);
        sqlite3_bind_int(s, 3, priority);
        sqlite3_bind_int64(s, 4, now);
        int r = run(st, S_OUTBOX_ADD, s);
        if (r == 0 && id)
                *id = sqlite3_last_insert_rowid(st->db);
        return r;
}

/* One priority class: a range scan of the outbox_due index. */
static int due_class(struct store *st, int priority, int64_t now, unsigned limit,
                     struct outbox_row *rows, size_t *n)
{
        sqlite3_stmt *s = stmt(st, S_OUTBOX_DUE);
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int(s, 2, (int)limit);
        sqlite3_bind_int(s, 3, priority);
        int rc = SQLITE_DONE;
        while (*n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                struct outbox_row *r = &rows[*n];
                memset(r, 0, sizeof(*r));
                r->id = sqlite3_column_int64(s, 0);
                r->priority = priority;
                int kind = NAME_INDEX(mail_kind_names, sqlite3_column_text(s, 1));
                r->subscription_id = sqlite3_column_int64(s, 2);
                /* a test send has no subscription: it counts as confirmed */
                int state = sqlite3_column_type(s, 3) == SQLITE_NULL ? (int)SUB_CONFIRMED :
                            NAME_INDEX(sub_state_names, sqlite3_column_text(s, 3));
                int lang = lang_parse((const char *)sqlite3_column_text(s, 4),
                                      (size_t)sqlite3_column_bytes(s, 4));
                r->attempts = sqlite3_column_int(s, 5);
                r->created_at = sqlite3_column_int64(s, 6);
                /* none: a sign-up kept apart that has expired since (sql/009) */
                if (sqlite3_column_type(s, 7) != SQLITE_NULL)
                        snprintf(r->email, sizeof(r->email), "%s", (const char *)sqlite3_column_text(s, 7));
                snprintf(r->list, sizeof(r->list), "%s", (const char *)sqlite3_column_text(s, 8));
                r->issue_id = sqlite3_column_int64(s, 9);
                if (sqlite3_column_type(s, 10) != SQLITE_NULL)
                        snprintf(r->name, sizeof(r->name), "%s", (const char *)sqlite3_column_text(s, 10));
                if (sqlite3_column_type(s, 11) != SQLITE_NULL) {
                        int is = NAME_INDEX(issue_state_names, sqlite3_column_text(s, 11));
                        r->issue_state = is < 0 ? ISSUE_CANCELLED : (enum issue_state)is;
                }
                int ms = NAME_INDEX(mail_state_names, sqlite3_column_text(s, 12));
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
                return fail(st, rc, "due mails");
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

int store_outbox_sending(struct store *st, int64_t id, const uint8_t *token_hash)
{
        sqlite3_stmt *s = stmt(st, S_OUTBOX_SENDING);
        sqlite3_bind_int64(s, 1, id);
        if (token_hash)
                sqlite3_bind_blob(s, 2, token_hash, 32, SQLITE_STATIC);
        return run(st, S_OUTBOX_SENDING, s);
}

int store_mail_token_find(struct store *st, const uint8_t hash[32], struct token_row *out)
{
        sqlite3_stmt *s = stmt(st, S_MAIL_TOKEN);
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return rc == SQLITE_DONE ? 1 : fail(st, rc, "mail token");
        }
        int state = NAME_INDEX(sub_state_names, sqlite3_column_text(s, 3));
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

int store_outbox_finish(struct store *st, int64_t id, enum mail_state state, int64_t next_at,
                        int64_t now, const char *reply, bool undelivered, bool *changed)
{
        sqlite3_stmt *s = stmt(st, S_OUTBOX_FINISH);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, mail_state_names[state], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, next_at);
        sqlite3_bind_int64(s, 4, now);
        bind_text_or_null(s, 5, reply);
        sqlite3_bind_int(s, 6, undelivered);
        int r = run(st, S_OUTBOX_FINISH, s);
        if (changed)
                *changed = r == 0 && sqlite3_changes(st->db) > 0;
        return r;
}

/* 'sending' is counted as 'queued' (sql/006) */
static const char *progress_state(enum mail_state m)
{
        return mail_state_names[m == MS_SENDING ? MS_QUEUED : m];
}

int store_progress_move(struct store *st, int64_t issue_id, enum mail_state from,
                        enum mail_state to, int64_t n)
{
        if (!issue_id || !n || strcmp(progress_state(from), progress_state(to)) == 0)
                return 0;
        sqlite3_stmt *s = stmt(st, S_PROGRESS_TAKE);
        sqlite3_bind_int64(s, 1, issue_id);
        sqlite3_bind_text(s, 2, progress_state(from), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, n);
        int r = run(st, S_PROGRESS_TAKE, s);
        if (r < 0)
                return r;
        s = stmt(st, S_PROGRESS_GIVE);
        sqlite3_bind_int64(s, 1, issue_id);
        sqlite3_bind_text(s, 2, progress_state(to), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, n);
        return run(st, S_PROGRESS_GIVE, s);
}

int store_outbox_delete(struct store *st, int64_t id)
{
        sqlite3_stmt *s = stmt(st, S_OUTBOX_DELETE);
        sqlite3_bind_int64(s, 1, id);
        return run(st, S_OUTBOX_DELETE, s);
}

int store_outbox_uncharge(struct store *st, int64_t id)
{
        return run_ints(st, S_OUTBOX_UNCHARGE, 1, id, 0, NULL);
}

int store_outbox_requeue(struct store *st, int64_t *count)
{
        int r = run(st, S_OUTBOX_REQUEUE, stmt(st, S_OUTBOX_REQUEUE));
        if (r == 0 && count)
                *count = sqlite3_changes64(st->db);
        return r;
}

int store_outbox_get(struct store *st, int64_t id, struct outbox_row *out)
{
        sqlite3_stmt *s = stmt(st, S_OUTBOX_GET);
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
                r = fail(st, rc, "outbox row");
        }
        sqlite3_reset(s);
        return r;
}

/* ---- expiry ---- */

/* Run a statement with up to two integer parameters; count changed rows. */
static int run_ints(struct store *st, enum stmt_id id, int n, int64_t a, int64_t b, int64_t *changes)
{
        sqlite3_stmt *s = stmt(st, id);
        if (n >= 1)
                sqlite3_bind_int64(s, 1, a);
        if (n >= 2)
                sqlite3_bind_int64(s, 2, b);
        int r = run(st, id, s);
        if (r == 0 && changes)
                *changes = sqlite3_changes64(st->db);
        return r;
}

static int count_ints(struct store *st, enum stmt_id id, int64_t a, int64_t *n)
{
        sqlite3_stmt *s = stmt(st, id);
        sqlite3_bind_int64(s, 1, a);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *n = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : fail(st, rc, stmt_sql[id]);
}

int store_expiry_count(struct store *st, int64_t mailed_before, int64_t expired_before,
                       int64_t pending_purge_before, int64_t *to_expire, int64_t *to_purge)
{
        int r = count_ints(st, S_EXP_TODO, mailed_before, to_expire);
        if (r < 0)
                return r;
        sqlite3_stmt *s = stmt(st, S_PURGE_COUNT);
        sqlite3_bind_int64(s, 1, expired_before);
        sqlite3_bind_int64(s, 2, pending_purge_before);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *to_purge = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : fail(st, rc, stmt_sql[S_PURGE_COUNT]);
}

int store_expire_signup_table(struct store *st, int64_t mailed_before, int64_t *n)
{
        *n = 0;
        sqlite3_stmt *s = stmt(st, S_PERIOD_EXPIRED);
        sqlite3_bind_int64(s, 1, mailed_before);
        int rc = sqlite3_step(s);
        long long id = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (rc == SQLITE_DONE)
                return 1;
        if (rc != SQLITE_ROW)
                return fail(st, rc, stmt_sql[S_PERIOD_EXPIRED]);
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM main.signup_%lld", id);
        if ((rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL)) == SQLITE_OK &&
            (rc = sqlite3_step(s)) == SQLITE_ROW)
                *n = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW)
                return fail(st, rc, sql);
        snprintf(sql, sizeof(sql), "DROP TABLE main.signup_%lld", id);
        int r;
        if ((r = exec(st, sql)) < 0 || (r = run_ints(st, S_PERIOD_DELETE, 1, id, 0, NULL)) < 0)
                return r;
        return signup_view(st);
}

int store_expire_signup_rows(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n)
{
        int64_t ids[256], at[256];
        size_t k = 0;
        if (limit > sizeof(ids) / sizeof(ids[0]))
                limit = sizeof(ids) / sizeof(ids[0]);
        sqlite3_stmt *s = stmt(st, S_EXP_SIGNUP_IDS);
        sqlite3_bind_int64(s, 1, mailed_before);
        sqlite3_bind_int(s, 2, (int)limit);
        int rc = SQLITE_DONE;
        while (k < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                ids[k] = sqlite3_column_int64(s, 0);
                at[k++] = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (k < limit && rc != SQLITE_DONE)
                return fail(st, rc, stmt_sql[S_EXP_SIGNUP_IDS]);
        for (size_t i = 0; i < k; i++) {
                int r = run_ints(st, S_SIGNUP_DELETE_ONE, 2, ids[i], at[i], NULL);
                if (r < 0)
                        return r;
        }
        *n = (int64_t)k;
        return 0;
}

int store_expire_slice(struct store *st, int64_t now, int64_t mailed_before, unsigned limit,
                       int64_t *n)
{
        int r;
        *n = 0;
        if ((r = run_ints(st, S_EXP_CLEAR, 0, 0, 0, NULL)) < 0 ||
            (r = run_ints(st, S_EXP_SELECT, 2, mailed_before, limit, n)) < 0 || *n == 0)
                return r;
        if ((r = run_ints(st, S_EXP_CONSENT, 0, 0, 0, NULL)) < 0 ||
            (r = run_ints(st, S_EXP_OUTBOX, 0, 0, 0, NULL)) < 0 ||
            (r = run_ints(st, S_EXP_MARK, 1, now, 0, NULL)) < 0 ||
            (r = run_ints(st, S_EXP_SUBSCRIBERS, 0, 0, 0, NULL)) < 0)
                return r;
        return run_ints(st, S_EXP_CLEAR, 0, 0, 0, NULL);
}

int store_purge_slice(struct store *st, int64_t expired_before, unsigned limit, int64_t *n)
{
        return run_ints(st, S_PURGE, 2, expired_before, limit, n);
}

int store_expire_signup_mails(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n)
{
        int64_t waiting = 0;
        int r = run_ints(st, S_EXP_SIGNUP_FAILED, 2, mailed_before, limit, n);
        if (r < 0 || *n == limit)
                return r;
        sqlite3_stmt *s = stmt(st, S_EXP_SIGNUP_WAITING);
        sqlite3_bind_int64(s, 1, mailed_before);
        sqlite3_bind_int64(s, 2, limit - *n);
        sqlite3_bind_int(s, 3, PRIO_CONFIRM);
        if ((r = run(st, S_EXP_SIGNUP_WAITING, s)) == 0)
                waiting = sqlite3_changes64(st->db);
        *n += waiting;
        return r;
}

int store_purge_pending_slice(struct store *st, int64_t mailed_before, unsigned limit, int64_t *n)
{
        return run_ints(st, S_PURGE_PENDING, 2, mailed_before, limit, n);
}

/* ---- import ---- */

int store_import_clear(struct store *st)
{
        int r = run_ints(st, S_IMP_CLEAR_STAGE, 0, 0, 0, NULL);
        if (r == 0)
                r = run_ints(st, S_IMP_CLEAR_KEYS, 0, 0, 0, NULL);
        return r;
}

int store_import_stage(struct store *st, int64_t line, const char *email_key, const char *email,
                       const char *name)
{
        sqlite3_stmt *s = stmt(st, S_IMP_STAGE);
        sqlite3_bind_int64(s, 1, line);
        sqlite3_bind_text(s, 2, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, email, -1, SQLITE_STATIC);
        bind_text_or_null(s, 4, name);
        return run(st, S_IMP_STAGE, s);
}

int store_import_apply(struct store *st, const struct import_spec *spec, struct import_result *res)
{
        sqlite3_stmt *s;
        int64_t staged = 0, distinct = 0, existing = 0, added = 0;
        int r, rc;

        memset(res, 0, sizeof(*res));
        if ((r = run_ints(st, S_IMP_CLEAR_KEYS, 0, 0, 0, NULL)) < 0 ||
            (r = run_ints(st, S_IMP_KEYS, 0, 0, 0, &distinct)) < 0)
                return r;
        s = stmt(st, S_IMP_COUNT_STAGE);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                staged = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return fail(st, rc, "import count");
        s = stmt(st, S_IMP_APART);
        sqlite3_bind_text(s, 1, spec->list, -1, SQLITE_STATIC);
        if ((r = run(st, S_IMP_APART, s)) < 0)
                return r;
        int64_t apart = sqlite3_changes64(st->db);
        if ((r = run_ints(st, S_IMP_SUBSCRIBERS, 1, spec->now, 0, NULL)) < 0 ||
            (r = run_ints(st, S_IMP_SUBSCRIBER_IDS, 0, 0, 0, NULL)) < 0)
                return r;
        s = stmt(st, S_IMP_EXISTING);
        sqlite3_bind_text(s, 1, spec->list, -1, SQLITE_STATIC);
        if ((r = run(st, S_IMP_EXISTING, s)) < 0)
                return r;
        existing = sqlite3_changes64(st->db) + apart;

        s = stmt(st, S_IMP_SUBSCRIPTIONS);
        sqlite3_bind_text(s, 1, spec->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, spec->pending ? "pending" : "confirmed", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, lang_name(spec->lang), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, spec->now);
        if ((r = run(st, S_IMP_SUBSCRIPTIONS, s)) < 0)
                return r;
        added = sqlite3_changes64(st->db);

        s = stmt(st, S_IMP_CONSENT);
        sqlite3_bind_text(s, 1, spec->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, spec->pending ? "signup" : "import", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, spec->now);
        sqlite3_bind_text(s, 4, lang_name(spec->lang), -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, spec->source, -1, SQLITE_STATIC);
        bind_text_or_null(s, 6, spec->pending ? spec->text_version : NULL);
        if ((r = run(st, S_IMP_CONSENT, s)) < 0)
                return r;
        if (spec->pending) {
                s = stmt(st, S_IMP_OUTBOX);
                sqlite3_bind_text(s, 1, spec->list, -1, SQLITE_STATIC);
                sqlite3_bind_int(s, 2, PRIO_IMPORT);
                sqlite3_bind_int64(s, 3, spec->now);
                if ((r = run(st, S_IMP_OUTBOX, s)) < 0)
                        return r;
        }
        if ((r = store_import_clear(st)) < 0)
                return r;
        res->rows = staged;
        res->duplicates_in_file = staged - distinct;
        res->existing = existing;
        res->added = added;
        return 0;
}

/* ---- stats ---- */

int store_stats(struct store *st, int64_t now, int64_t expired_mailed_before, struct store_stats *out)
{
        sqlite3_stmt *s;
        int rc;
        memset(out, 0, sizeof(*out));

        s = stmt(st, S_STATS_SUBS);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                int i = NAME_INDEX(sub_state_names, sqlite3_column_text(s, 0));
                if (i >= 0)
                        out->subscriptions[i] += sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return fail(st, rc, "stats");
        /* pending sign-ups past confirm_ttl are expired, stripped or not yet */
        int64_t overdue = 0;
        int r = count_ints(st, S_EXP_COUNT, expired_mailed_before, &overdue);
        if (r < 0)
                return r;
        out->subscriptions[SUB_PENDING] -= overdue;
        out->subscriptions[SUB_EXPIRED] += overdue;
        s = stmt(st, S_STATS_MAILS);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                int i = NAME_INDEX(mail_state_names, sqlite3_column_text(s, 0));
                if (i >= 0)
                        out->mails[i] += sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return fail(st, rc, "stats");

        s = stmt(st, S_STATS_REFUSED);
        if ((rc = sqlite3_step(s)) == SQLITE_ROW)
                out->bounces_refused = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return fail(st, rc, "stats");

        s = stmt(st, S_STATS_IGNORED);
        if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                out->autoreplies = sqlite3_column_int64(s, 0);
                out->not_understood = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return fail(st, rc, "stats");

        s = stmt(st, S_STATS_BOUNCES);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *k = (const char *)sqlite3_column_text(s, 0);
                int64_t v = sqlite3_column_int64(s, 1);
                if (strcmp(k, "permanent") == 0)
                        out->bounces_permanent = v;
                else if (strcmp(k, "temporary") == 0)
                        out->bounces_temporary = v;
                else
                        out->complaints = v;
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return fail(st, rc, "stats");

        /* the last STATS_DAYS days, today last; day boundaries in UTC */
        int64_t today = now - now % 86400;
        int64_t first = today - (STATS_DAYS - 1) * 86400;
        for (int d = 0; d < STATS_DAYS; d++)
                out->days[d].day = first + d * 86400;
        s = stmt(st, S_STATS_DAYS);
        sqlite3_bind_int64(s, 1, first);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const unsigned char *ev = sqlite3_column_text(s, 0);
                int64_t d = sqlite3_column_int64(s, 1);
                if (d < 0 || d >= STATS_DAYS || !ev)
                        continue;
                if (strcmp((const char *)ev, "signup") == 0)
                        out->days[d].signups += sqlite3_column_int64(s, 2);
                else
                        out->days[d].confirmations += sqlite3_column_int64(s, 2);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return fail(st, rc, "stats");
        return 0;
}

/* ---- export and erase (GDPR Art. 15 and 17) ---- */

static json_t *column_json(sqlite3_stmt *s, int i, bool is_time)
{
        switch (sqlite3_column_type(s, i)) {
        case SQLITE_NULL:
                return json_null();
        case SQLITE_INTEGER:
                if (is_time) {
                        char t[32];
                        time_t v = (time_t)sqlite3_column_int64(s, i);
                        struct tm tm;
                        gmtime_r(&v, &tm);
                        strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
                        return json_string(t);
                }
                return json_integer(sqlite3_column_int64(s, i));
        default:
                return json_stringn((const char *)sqlite3_column_text(s, i),
                                    (size_t)sqlite3_column_bytes(s, i));
        }
}

/* Rows of a statement as an array of objects; "at" and names ending in "_at" are times. */
static int rows_json(struct store *st, enum stmt_id id, int64_t subscriber_id,
                     const char *email_key, json_t *arr)
{
        sqlite3_stmt *s = stmt(st, id);
        sqlite3_bind_int64(s, 1, subscriber_id);
        sqlite3_bind_text(s, 2, email_key, -1, SQLITE_STATIC);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                json_t *o = json_object();
                for (int i = 0; i < sqlite3_column_count(s); i++) {
                        const char *name = sqlite3_column_name(s, i);
                        size_t n = strlen(name);
                        bool is_time = strcmp(name, "at") == 0 ||
                                       (n > 3 && strcmp(name + n - 3, "_at") == 0);
                        json_object_set_new(o, name, column_json(s, i, is_time));
                }
                json_array_append_new(arr, o);
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : fail(st, rc, "export");
}

static int who_by_key(struct store *st, enum stmt_id sid, const char *email_key, int64_t *id,
                      json_t **obj)
{
        sqlite3_stmt *s = stmt(st, sid);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                sqlite3_reset(s);
                return 1;
        }
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return fail(st, rc, "find subscriber");
        }
        *id = sqlite3_column_int64(s, 0);
        if (obj) {
                *obj = json_object();
                json_object_set_new(*obj, "email", column_json(s, 1, false));
                json_object_set_new(*obj, "name", column_json(s, 2, false));
                json_object_set_new(*obj, "created_at", column_json(s, 3, true));
        }
        sqlite3_reset(s);
        return 0;
}

static int subscriber_by_key(struct store *st, const char *email_key, int64_t *id, json_t **obj)
{
        return who_by_key(st, S_SUBSCRIBER_BY_KEY, email_key, id, obj);
}

int store_export(struct store *st, const char *email_key, json_t **out)
{
        int64_t id = 0;
        json_t *who = NULL;
        /* an address known only from a pending sign-up has no subscriber yet */
        int r = subscriber_by_key(st, email_key, &id, &who);
        if (r == 1)
                r = who_by_key(st, S_SIGNUP_WHO, email_key, &id, &who);
        if (r)
                return r;
        json_t *subs = json_array(), *consent = json_array(), *mails = json_array(),
               *tokens = json_array();
        if ((r = rows_json(st, S_EXPORT_SUBS, id, email_key, subs)) < 0 ||
            (r = rows_json(st, S_EXPORT_CONSENT, id, email_key, consent)) < 0 ||
            (r = rows_json(st, S_EXPORT_MAILS, id, email_key, mails)) < 0 ||
            (r = rows_json(st, S_EXPORT_TOKENS, id, email_key, tokens)) < 0) {
                json_decref(who);
                json_decref(subs);
                json_decref(consent);
                json_decref(mails);
                json_decref(tokens);
                return r;
        }
        json_t *o = json_object();
        json_object_set_new(o, "subscriber", who);
        json_object_set_new(o, "subscriptions", subs);
        json_object_set_new(o, "consent", consent);
        json_object_set_new(o, "mails", mails);
        json_object_set_new(o, "tokens", tokens);
        *out = o;
        return 0;
}

int store_erase(struct store *st, const char *email_key)
{
        /* test sends went to the address without a subscription */
        sqlite3_stmt *s = stmt(st, S_ERASE_RCPT);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        int r = run(st, S_ERASE_RCPT, s);
        if (r < 0)
                return r;
        int64_t test_sends = sqlite3_changes64(st->db);
        /* pending sign-ups kept apart (sql/009): with their subscription */
        s = stmt(st, S_ERASE_SIGNUPS);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        if ((r = run(st, S_ERASE_SIGNUPS, s)) < 0)
                return r;
        int64_t signups = sqlite3_changes64(st->db);
        int64_t id = 0;
        r = subscriber_by_key(st, email_key, &id, NULL);
        if (r)
                return r == 1 && (test_sends || signups) ? 0 : r;
        /* subscriptions cascade to tokens and queued mails; the subscriber to
         * the consent record and bounces */
        if ((r = run_ints(st, S_ERASE_SUBS, 1, id, 0, NULL)) < 0)
                return r;
        return run_ints(st, S_ERASE, 1, id, 0, NULL);
}

int store_checkpoint(struct store *st)
{
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
        if (rc != SQLITE_OK)
                return fail(st, rc, "checkpoint");
        return 0;
}

/* ---- newsletter issues ---- */

int store_issue_create(struct store *st, const struct issue *is, const char *test_rcpt,
                       int64_t now, int64_t *id, int64_t *recipients)
{
        sqlite3_stmt *s = stmt(st, S_ISSUE_ADD);
        sqlite3_bind_text(s, 1, is->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, is->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, is->text, -1, SQLITE_STATIC);
        bind_text_or_null(s, 4, is->html);
        sqlite3_bind_int(s, 5, test_rcpt != NULL);
        sqlite3_bind_int64(s, 6, now);
        int r = run(st, S_ISSUE_ADD, s);
        if (r < 0)
                return r;
        *id = sqlite3_last_insert_rowid(st->db);
        if (test_rcpt) {
                s = stmt(st, S_ISSUE_TEST_RCPT);
                sqlite3_bind_text(s, 4, test_rcpt, -1, SQLITE_STATIC);
        } else {
                s = stmt(st, S_ISSUE_RECIPIENTS);
                sqlite3_bind_text(s, 4, is->list, -1, SQLITE_STATIC);
        }
        sqlite3_bind_int64(s, 1, *id);
        sqlite3_bind_int64(s, 2, now);
        /* a test goes out ahead of the bulk, like a confirmation */
        sqlite3_bind_int(s, 3, test_rcpt ? PRIO_CONFIRM : PRIO_NEWSLETTER);
        if ((r = run(st, test_rcpt ? S_ISSUE_TEST_RCPT : S_ISSUE_RECIPIENTS, s)) < 0)
                return r;
        *recipients = sqlite3_changes64(st->db);
        if (*recipients == 0)
                return 0;
        /* all of them queued (sql/008: no insert trigger counts them) */
        s = stmt(st, S_PROGRESS_GIVE);
        sqlite3_bind_int64(s, 1, *id);
        sqlite3_bind_text(s, 2, mail_state_names[MS_QUEUED], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, *recipients);
        return run(st, S_PROGRESS_GIVE, s);
}

int store_issue_get(struct store *st, int64_t id, struct issue *out)
{
        sqlite3_stmt *s = stmt(st, S_ISSUE_GET);
        sqlite3_bind_int64(s, 1, id);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return rc == SQLITE_DONE ? 1 : fail(st, rc, "issue");
        }
        memset(out, 0, sizeof(*out));
        out->id = id;
        out->list = column_dup(s, 0);
        out->subject = column_dup(s, 1);
        out->text = column_dup(s, 2);
        out->html = column_dup(s, 3);
        int state = NAME_INDEX(issue_state_names, sqlite3_column_text(s, 4));
        out->test = sqlite3_column_int(s, 5) != 0;
        out->created_at = sqlite3_column_int64(s, 6);
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

int store_issue_counts(struct store *st, int64_t id, int64_t counts[MS_SKIPPED + 1])
{
        memset(counts, 0, sizeof(int64_t) * (MS_SKIPPED + 1));
        sqlite3_stmt *s = stmt(st, S_ISSUE_COUNTS);
        sqlite3_bind_int64(s, 1, id);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                int i = NAME_INDEX(mail_state_names, sqlite3_column_text(s, 0));
                if (i >= 0)
                        counts[i] += sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : fail(st, rc, "issue counts");
}

int store_issue_latest(struct store *st, int64_t *id)
{
        sqlite3_stmt *s = stmt(st, S_ISSUE_LATEST);
        int rc = sqlite3_step(s);
        int r = 1;
        if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
                *id = sqlite3_column_int64(s, 0);
                r = 0;
        } else if (rc != SQLITE_ROW) {
                r = fail(st, rc, "latest issue");
        }
        sqlite3_reset(s);
        return r;
}

/* Far enough in the future to be out of every due scan, near enough not to overflow. */
#define PARK_OFFSET (INT64_C(1) << 40)

int store_issue_set_state(struct store *st, int64_t id, enum issue_state from, enum issue_state to,
                          int64_t now, int64_t *changed)
{
        sqlite3_stmt *s = stmt(st, S_ISSUE_STATE);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, issue_state_names[to], -1, SQLITE_STATIC);
        int r = run(st, S_ISSUE_STATE, s);
        if (r < 0)
                return r;
        *changed = 0;
        if (to == ISSUE_PAUSED)
                r = run_ints(st, S_ISSUE_PARK, 2, id, PARK_OFFSET, changed);
        else if (to == ISSUE_SENDING && from == ISSUE_PAUSED)
                r = run_ints(st, S_ISSUE_UNPARK, 2, id, PARK_OFFSET, changed);
        else if (to == ISSUE_CANCELLED) {
                if (from == ISSUE_PAUSED && (r = run_ints(st, S_ISSUE_UNPARK, 2, id, PARK_OFFSET, NULL)) < 0)
                        return r;
                if ((r = run_ints(st, S_ISSUE_CANCEL, 2, id, now, changed)) == 0 && *changed &&
                    (r = run_ints(st, S_PROGRESS_CLEAR, 1, id, 0, NULL)) == 0)
                        r = run_ints(st, S_PROGRESS_COUNT, 1, id, 0, NULL);
        }
        return r;
}

int store_issue_failed(struct store *st, int64_t id, unsigned limit,
                       int (*fn)(void *ud, const char *email, const char *reply, int64_t at,
                                 bool suppressed), void *ud)
{
        sqlite3_stmt *s = stmt(st, S_ISSUE_FAILED);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, (int)limit);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *email = (const char *)sqlite3_column_text(s, 0);
                const char *reply = (const char *)sqlite3_column_text(s, 1);
                fn(ud, email ? email : "(erased)", reply ? reply : "", sqlite3_column_int64(s, 2),
                   sqlite3_column_int(s, 3) != 0);
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : fail(st, rc, "failed recipients");
}

int store_outbox_park(struct store *st, int64_t id)
{
        return run_ints(st, S_OUTBOX_PARK, 2, id, PARK_OFFSET, NULL);
}

int store_outbox_skip(struct store *st, int64_t id, const char *why, int64_t now)
{
        sqlite3_stmt *s = stmt(st, S_OUTBOX_SKIP);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, why, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now);
        return run(st, S_OUTBOX_SKIP, s);
}

/* ---- rate limits ---- */

int store_rate_count(struct store *st, const uint8_t key[RATE_KEY_LEN], int64_t now, int64_t window,
                     int64_t *count, int64_t *window_start)
{
        sqlite3_stmt *s = stmt(st, S_RATE_GET);
        sqlite3_bind_blob(s, 1, key, RATE_KEY_LEN, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        *count = 0;
        *window_start = now;
        if (rc == SQLITE_ROW) {
                int64_t start = sqlite3_column_int64(s, 0);
                if (now < start + window && now >= start) {
                        *count = sqlite3_column_int64(s, 1);
                        *window_start = start;
                }
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return fail(st, rc, "rate limit");
        return 0;
}

int store_rate_set(struct store *st, const uint8_t key[RATE_KEY_LEN], int64_t window_start,
                   int64_t count)
{
        sqlite3_stmt *s = stmt(st, S_RATE_PUT);
        sqlite3_bind_blob(s, 1, key, RATE_KEY_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, window_start);
        sqlite3_bind_int64(s, 3, count);
        return run(st, S_RATE_PUT, s);
}

int store_rate_purge(struct store *st, int64_t ended_before)
{
        return run_ints(st, S_RATE_PURGE, 1, ended_before, 0, NULL);
}

/* ---- bounces ---- */

int store_mail_owner(struct store *st, int64_t outbox_id, int64_t *subscriber_id, char *email,
                     size_t email_len, int64_t *issue_id)
{
        sqlite3_stmt *s = stmt(st, S_MAIL_OWNER);
        sqlite3_bind_int64(s, 1, outbox_id);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return rc == SQLITE_DONE ? 1 : fail(st, rc, "mail owner");
        }
        bool known = sqlite3_column_type(s, 1) != SQLITE_NULL;
        *subscriber_id = sqlite3_column_int64(s, 0);
        if (known)
                snprintf(email, email_len, "%s", (const char *)sqlite3_column_text(s, 1));
        *issue_id = sqlite3_column_int64(s, 2);
        sqlite3_reset(s);
        return known ? 0 : 1;
}

int store_subscriber_find(struct store *st, const char *email_key, int64_t *id)
{
        return subscriber_by_key(st, email_key, id, NULL);
}

int store_bounce_add(struct store *st, const struct bounce_row *b, bool *added)
{
        sqlite3_stmt *s = stmt(st, S_BOUNCE_ADD);
        sqlite3_bind_int64(s, 1, b->subscriber_id);
        if (b->outbox_id)
                sqlite3_bind_int64(s, 2, b->outbox_id);
        if (b->issue_id)
                sqlite3_bind_int64(s, 3, b->issue_id);
        sqlite3_bind_text(s, 4, b->kind, -1, SQLITE_STATIC);
        bind_text_or_null(s, 5, b->status && *b->status ? b->status : NULL);
        bind_text_or_null(s, 6, b->diagnostic && *b->diagnostic ? b->diagnostic : NULL);
        sqlite3_bind_int64(s, 7, b->at);
        int r = run(st, S_BOUNCE_ADD, s);
        if (r == 0 && added)
                *added = sqlite3_changes64(st->db) > 0;
        return r;
}

int store_bounce_refused(struct store *st, const char *reason, int64_t at)
{
        sqlite3_stmt *s = stmt(st, S_BOUNCE_REFUSED);
        sqlite3_bind_text(s, 1, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, at);
        return run(st, S_BOUNCE_REFUSED, s);
}

int store_bounce_ignored(struct store *st, const char *reason, int64_t at)
{
        sqlite3_stmt *s = stmt(st, S_BOUNCE_IGNORED);
        sqlite3_bind_text(s, 1, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, at);
        return run(st, S_BOUNCE_IGNORED, s);
}

int store_bounce_temporary_count(struct store *st, int64_t subscriber_id, int64_t since, int64_t *n)
{
        sqlite3_stmt *s = stmt(st, S_BOUNCE_COUNT);
        sqlite3_bind_int64(s, 1, subscriber_id);
        sqlite3_bind_int64(s, 2, since);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *n = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : fail(st, rc, "temporary bounces");
}

int store_subscriber_bounced(struct store *st, int64_t subscriber_id, int64_t *changed)
{
        return run_ints(st, S_SUBS_BOUNCED, 1, subscriber_id, 0, changed);
}

int store_subscriber_unsubscribe_all(struct store *st, int64_t subscriber_id, int64_t now,
                                     const char *source)
{
        sqlite3_stmt *s = stmt(st, S_CONSENT_UNSUBSCRIBE_ALL);
        sqlite3_bind_int64(s, 1, subscriber_id);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_text(s, 3, source, -1, SQLITE_STATIC);
        int r = run(st, S_CONSENT_UNSUBSCRIBE_ALL, s);
        if (r < 0)
                return r;
        return run_ints(st, S_SUBS_UNSUBSCRIBE_ALL, 2, subscriber_id, now, NULL);
}

int store_issue_bounces(struct store *st, int64_t issue_id, int64_t *bounced, int64_t *complaints)
{
        sqlite3_stmt *s = stmt(st, S_ISSUE_BOUNCES);
        sqlite3_bind_int64(s, 1, issue_id);
        *bounced = *complaints = 0;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *k = (const char *)sqlite3_column_text(s, 0);
                if (strcmp(k, "complaint") == 0)
                        *complaints += sqlite3_column_int64(s, 1);
                else
                        *bounced += sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : fail(st, rc, "issue bounces");
}
