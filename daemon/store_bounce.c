/*
 * store_bounce.c - bounces and complaints in the database: which mail and
 * subscriber a report names, the reports kept, the counts of those
 * refused or ignored, and the suppression they cause.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_db.h"

/* the subscriber 0 (NULL) and the address of its record: a sign-up
 * kept apart; no address: one that expired */
static struct store_sql q_mail_owner = STORE_SQL(
        "SELECT s.subscriber_id, coalesce(u.email, (SELECT g.email FROM signup g"
        " WHERE g.subscription_id = s.id AND g.mailed_at = s.mailed_at),"
        " (SELECT g.email FROM signup g WHERE g.subscription_id = s.id)), o.issue_id"
        " FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
        " LEFT JOIN subscriber u ON u.id = s.subscriber_id WHERE o.id = ?1");
/* ---- bounces ---- */

int store_mail_owner(struct store *st, int64_t outbox_id, int64_t *subscriber_id, char *email,
                     size_t email_len, int64_t *issue_id)
{
        sqlite3_stmt *s = db_stmt(st, &q_mail_owner);
        sqlite3_bind_int64(s, 1, outbox_id);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return rc == SQLITE_DONE ? 1 : db_fail(st, rc, "mail owner");
        }
        bool known = sqlite3_column_type(s, 1) != SQLITE_NULL;
        *subscriber_id = sqlite3_column_int64(s, 0);
        if (known)
                snprintf(email, email_len, "%s", (const char *)sqlite3_column_text(s, 1));
        *issue_id = sqlite3_column_int64(s, 2);
        sqlite3_reset(s);
        return known ? 0 : 1;
}

/* a report the MTA delivers twice (it retries after a failed pipe) counts once */
static struct store_sql q_bounce_add = STORE_SQL(
        "INSERT INTO bounce (subscriber_id, outbox_id, issue_id, kind, status, diagnostic, at)"
        " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE ?2 IS NULL OR NOT EXISTS"
        " (SELECT 1 FROM bounce WHERE outbox_id = ?2 AND kind = ?4)");
int store_bounce_add(struct store *st, const struct bounce_row *b, bool *added)
{
        sqlite3_stmt *s = db_stmt(st, &q_bounce_add);
        sqlite3_bind_int64(s, 1, b->subscriber_id);
        if (b->outbox_id)
                sqlite3_bind_int64(s, 2, b->outbox_id);
        if (b->issue_id)
                sqlite3_bind_int64(s, 3, b->issue_id);
        sqlite3_bind_text(s, 4, b->kind, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 5, b->status && *b->status ? b->status : NULL);
        db_bind_text_or_null(s, 6, b->diagnostic && *b->diagnostic ? b->diagnostic : NULL);
        sqlite3_bind_int64(s, 7, b->at);
        int r = db_run(st, &q_bounce_add, s);
        if (r == 0 && added)
                *added = sqlite3_changes64(st->db) > 0;
        return r;
}

static struct store_sql q_bounce_refused = STORE_SQL(
        "INSERT INTO bounce_refused (reason, n, last) VALUES (?1, 1, ?2)"
        " ON CONFLICT (reason) DO UPDATE SET n = n + 1, last = ?2");
int store_bounce_refused(struct store *st, const char *reason, int64_t at)
{
        sqlite3_stmt *s = db_stmt(st, &q_bounce_refused);
        sqlite3_bind_text(s, 1, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, at);
        return db_run(st, &q_bounce_refused, s);
}

static struct store_sql q_bounce_ignored = STORE_SQL(
        "INSERT INTO bounce_ignored (reason, n, last) VALUES (?1, 1, ?2)"
        " ON CONFLICT (reason) DO UPDATE SET n = n + 1, last = ?2");
int store_bounce_ignored(struct store *st, const char *reason, int64_t at)
{
        sqlite3_stmt *s = db_stmt(st, &q_bounce_ignored);
        sqlite3_bind_text(s, 1, reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, at);
        return db_run(st, &q_bounce_ignored, s);
}

static struct store_sql q_bounce_count = STORE_SQL(
        "SELECT count(*) FROM bounce WHERE subscriber_id = ?1 AND kind = 'temporary' AND at >= ?2");
int store_bounce_temporary_count(struct store *st, int64_t subscriber_id, int64_t since, int64_t *n)
{
        sqlite3_stmt *s = db_stmt(st, &q_bounce_count);
        sqlite3_bind_int64(s, 1, subscriber_id);
        sqlite3_bind_int64(s, 2, since);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *n = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : db_fail(st, rc, "temporary bounces");
}

static struct store_sql q_subs_bounced = STORE_SQL(
        "UPDATE subscription SET state = 'bounced' WHERE subscriber_id = ?1"
        " AND state IN ('pending', 'confirmed')");
int store_subscriber_bounced(struct store *st, int64_t subscriber_id, int64_t *changed)
{
        return db_run_ints(st, &q_subs_bounced, 1, subscriber_id, 0, changed);
}

/* one consent event per list the next statement leaves, however many */
static struct store_sql q_consent_unsubscribe_all = STORE_SQL(
        "INSERT INTO consent (subscriber_id, list, event, at, source)"
        " SELECT subscriber_id, list, 'unsubscribe', ?2, ?3 FROM subscription"
        " WHERE subscriber_id = ?1 AND state IN ('pending', 'confirmed', 'bounced')");
static struct store_sql q_subs_unsubscribe_all = STORE_SQL(
        "UPDATE subscription SET state = 'unsubscribed', unsubscribed_at = ?2"
        " WHERE subscriber_id = ?1 AND state IN ('pending', 'confirmed', 'bounced')");
int store_subscriber_unsubscribe_all(struct store *st, int64_t subscriber_id, int64_t now,
                                     const char *source)
{
        sqlite3_stmt *s = db_stmt(st, &q_consent_unsubscribe_all);
        sqlite3_bind_int64(s, 1, subscriber_id);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_text(s, 3, source, -1, SQLITE_STATIC);
        int r = db_run(st, &q_consent_unsubscribe_all, s);
        if (r < 0)
                return r;
        return db_run_ints(st, &q_subs_unsubscribe_all, 2, subscriber_id, now, NULL);
}

static struct store_sql q_issue_bounces = STORE_SQL(
        "SELECT kind, count(*) FROM bounce WHERE issue_id = ?1 GROUP BY kind");
int store_issue_bounces(struct store *st, int64_t issue_id, int64_t *bounced, int64_t *complaints)
{
        sqlite3_stmt *s = db_stmt(st, &q_issue_bounces);
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
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "issue bounces");
}

/* ---- classified reports (002-bounces.sql) ---- */

/* reports of one class about the same mail (an MTA retrying its pipe, a
 * second report of the same failure) are kept once */
static struct store_sql q_report_add = STORE_SQL(
        "INSERT INTO bounce_report (subscriber_id, outbox_id, class, reason, status, domain,"
        " diagnostic, at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE ?2 IS NULL OR NOT EXISTS"
        " (SELECT 1 FROM bounce_report WHERE outbox_id = ?2 AND class = ?3)");

int store_bounce_report_add(struct store *st, const struct bounce_report_row *b)
{
        sqlite3_stmt *s = db_stmt(st, &q_report_add);
        if (b->subscriber_id)
                sqlite3_bind_int64(s, 1, b->subscriber_id);
        if (b->outbox_id)
                sqlite3_bind_int64(s, 2, b->outbox_id);
        sqlite3_bind_text(s, 3, b->class_name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, b->reason, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 5, b->status && *b->status ? b->status : NULL);
        db_bind_text_or_null(s, 6, b->domain && *b->domain ? b->domain : NULL);
        db_bind_text_or_null(s, 7, b->diagnostic && *b->diagnostic ? b->diagnostic : NULL);
        sqlite3_bind_int64(s, 8, b->at);
        return db_run(st, &q_report_add, s);
}

static struct store_sql q_domain_refusals = STORE_SQL(
        "SELECT count(*), min(at) FROM bounce_report"
        " WHERE class = 'sender' AND domain = ?1 AND at >= ?2");

int store_bounce_domain_refusals(struct store *st, const char *domain, int64_t since, int64_t *n,
                                 int64_t *first)
{
        sqlite3_stmt *s = db_stmt(st, &q_domain_refusals);
        sqlite3_bind_text(s, 1, domain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, since);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *n = sqlite3_column_int64(s, 0);
                *first = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : db_fail(st, rc, "domain refusals");
}

static struct store_sql q_report_counts = STORE_SQL(
        "SELECT class, count(*) FROM bounce_report GROUP BY class");

int store_bounce_report_counts(struct store *st, int64_t counts[5])
{
        static const char *const names[5] = { "permanent", "temporary", "sender", "complaint", "none" };
        sqlite3_stmt *s = db_stmt(st, &q_report_counts);
        memset(counts, 0, 5 * sizeof(counts[0]));
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *c = (const char *)sqlite3_column_text(s, 0);
                for (int i = 0; i < 5; i++)
                        if (c && !strcmp(c, names[i]))
                                counts[i] = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "report counts");
}

/* the reason of the latest report of each domain (SQLite takes the bare
 * column from the row of max()) */
static struct store_sql q_refusing_domains = STORE_SQL(
        "SELECT domain, reason, count(*), max(at) FROM bounce_report"
        " WHERE class = 'sender' AND domain IS NOT NULL AND at >= ?1"
        " GROUP BY domain ORDER BY count(*) DESC, domain LIMIT 100");

int store_bounce_refusing_domains(struct store *st, int64_t since,
                                  void (*fn)(const char *, const char *, int64_t, int64_t, void *),
                                  void *ctx)
{
        sqlite3_stmt *s = db_stmt(st, &q_refusing_domains);
        sqlite3_bind_int64(s, 1, since);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
                fn((const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
                   sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3), ctx);
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "refusing domains");
}

static struct store_sql q_reports_of = STORE_SQL(
        "SELECT at, class, reason, status FROM bounce_report WHERE subscriber_id = ?1 ORDER BY at, id");

int store_bounce_reports_of(struct store *st, int64_t subscriber_id,
                            void (*fn)(int64_t, const char *, const char *, const char *, void *),
                            void *ctx)
{
        sqlite3_stmt *s = db_stmt(st, &q_reports_of);
        sqlite3_bind_int64(s, 1, subscriber_id);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
                fn(sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
                   (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3), ctx);
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "reports of a subscriber");
}
