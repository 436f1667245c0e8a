/*
 * store_archive.c - the issues' life after they were queued: scheduled
 * issues released at their time (their recipients fixed then), the end of
 * sending noted (the archive's date), the archive itself (publish,
 * unpublish, the published issues newest first), and whom a preview is
 * addressed to.  Owns the issue columns of sql/002-archive.sql; never
 * renders or sends anything.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_db.h"

/* At most this many scheduled issues are released per call: the next tick
 * takes the rest. */
#define RELEASE_MAX 16

static struct store_sql q_issue_due = STORE_SQL(
        "SELECT id, list FROM issue WHERE scheduled = 1 AND send_at <= ?1 AND state = 'sending'"
        " ORDER BY send_at, id LIMIT ?2");
static struct store_sql q_issue_released = STORE_SQL(
        "UPDATE issue SET scheduled = 0 WHERE id = ?1");
int store_issue_release(struct store *st, int64_t now, int64_t *released)
{
        int64_t ids[RELEASE_MAX];
        char *lists[RELEASE_MAX];
        size_t n = 0;
        sqlite3_stmt *s = db_stmt(st, &q_issue_due);
        sqlite3_bind_int64(s, 1, now);
        sqlite3_bind_int(s, 2, RELEASE_MAX);
        int rc;
        while (n < RELEASE_MAX && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                ids[n] = sqlite3_column_int64(s, 0);
                lists[n] = db_column_dup(s, 1);
                n++;
        }
        if (n < RELEASE_MAX && rc != SQLITE_DONE) {
                sqlite3_reset(s);
                return db_fail(st, rc, "scheduled issues");
        }
        sqlite3_reset(s);
        int r = 0;
        *released = 0;
        for (size_t i = 0; i < n; i++) {
                int64_t recipients = 0;
                if (r == 0)
                        r = store_issue_queue(st, ids[i], lists[i], NULL, now, &recipients);
                if (r == 0)
                        r = db_run_ints(st, &q_issue_released, 1, ids[i], 0, NULL);
                if (r == 0) {
                        log_info("issue %lld: its time has come, queued to %lld recipients of list %s",
                                 (long long)ids[i], (long long)recipients, lists[i]);
                        (*released)++;
                }
                free(lists[i]);
        }
        return r;
}

/* no mail of it waits any more (issue_progress: 'queued' counts 'sending') */
static struct store_sql q_issue_finish = STORE_SQL(
        "UPDATE issue SET sent_at = ?1"
        " WHERE sent_at IS NULL AND test = 0 AND scheduled = 0 AND state = 'sending'"
        " AND NOT EXISTS (SELECT 1 FROM issue_progress p WHERE p.issue_id = issue.id"
        " AND (p.state = 'queued' OR p.state = 'deferred') AND p.n > 0)");
int store_issue_finish(struct store *st, int64_t now, int64_t *finished)
{
        *finished = 0;
        return db_run_ints(st, &q_issue_finish, 1, now, 0, finished);
}

static struct store_sql q_issue_archive = STORE_SQL(
        "UPDATE issue SET archive = ?2 WHERE id = ?1");
int store_issue_set_archive(struct store *st, int64_t id, bool archive)
{
        return db_run_ints(st, &q_issue_archive, 2, id, archive, NULL);
}

static struct store_sql q_archive_list = STORE_SQL(
        "SELECT id, subject, sent_at FROM issue"
        " WHERE archive = 1 AND sent_at IS NOT NULL AND (?1 IS NULL OR list = ?1)"
        " AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3");
int store_archive_list(struct store *st, const char *list, int64_t before, unsigned limit,
                       int (*fn)(void *ud, int64_t id, const char *subject, int64_t sent_at),
                       void *ud)
{
        sqlite3_stmt *s = db_stmt(st, &q_archive_list);
        db_bind_text_or_null(s, 1, list);
        sqlite3_bind_int64(s, 2, before);
        sqlite3_bind_int(s, 3, (int)limit);
        int rc, r = 0;
        while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
                r = fn(ud, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
                       sqlite3_column_int64(s, 2));
        sqlite3_reset(s);
        if (r)
                return r;
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "archive");
}

/* a confirmed subscriber of the list: the one named, or its first */
static struct store_sql q_preview_named = STORE_SQL(
        "SELECT u.email, u.name, s.lang FROM subscriber u"
        " JOIN subscription s ON s.subscriber_id = u.id AND s.list = ?1"
        " WHERE u.email_key = ?2 AND s.state = 'confirmed'");
static struct store_sql q_preview_first = STORE_SQL(
        "SELECT u.email, u.name, s.lang FROM subscription s"
        " JOIN subscriber u ON u.id = s.subscriber_id"
        " WHERE s.list = ?1 AND s.state = 'confirmed' ORDER BY s.id LIMIT 1");
int store_preview_recipient(struct store *st, const char *list, const char *email_key,
                            char **email, char **name, char **lang)
{
        struct store_sql *q = email_key ? &q_preview_named : &q_preview_first;
        sqlite3_stmt *s = db_stmt(st, q);
        sqlite3_bind_text(s, 1, list, -1, SQLITE_STATIC);
        if (email_key)
                sqlite3_bind_text(s, 2, email_key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return rc == SQLITE_DONE ? 1 : db_fail(st, rc, "preview recipient");
        }
        *email = db_column_dup(s, 0);
        *name = db_column_dup(s, 1);
        *lang = db_column_dup(s, 2);
        sqlite3_reset(s);
        return 0;
}
