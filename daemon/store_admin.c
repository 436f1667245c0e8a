/*
 * store_admin.c - what the admin socket asks of the database as a whole:
 * list imports (staged, checked, then applied), the figures of `stats`,
 * and an address's data protection requests (export, erase).
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "store_db.h"

/* ---- import ----
 *
 * An import is staged line by line into the connection's scratch table
 * import_keys (sql/scratch.sql), one row per address: the first line of an
 * address wins, a later one is a duplicate.  Nothing reaches the database
 * file until every line has been read and found valid; then the staged
 * addresses are applied a slice at a time, the oldest first, each slice
 * deleting what it applied, so that a million of them never hold up the
 * website for longer than one slice. */

static struct store_sql q_imp_clear = STORE_SQL("DELETE FROM temp.import_keys");
int store_import_clear(struct store *st)
{
        return db_run_ints(st, &q_imp_clear, 0, 0, 0, NULL);
}

static struct store_sql q_imp_stage = STORE_SQL(
        "INSERT INTO temp.import_keys (email_key, email, name) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (email_key) DO NOTHING");
int store_import_stage(struct store *st, const char *email_key, const char *email,
                       const char *name)
{
        sqlite3_stmt *s = db_stmt(st, &q_imp_stage);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 3, name);
        int r = db_run(st, &q_imp_stage, s);
        return r < 0 ? r : sqlite3_changes64(st->db) ? 0 : 1;
}

/* Every statement of a slice works on the staged rows up to ?9, the last
 * rowid of the slice. */
static struct store_sql q_imp_slice_end = STORE_SQL(
        "SELECT max(rowid) FROM (SELECT rowid FROM temp.import_keys ORDER BY rowid LIMIT ?1)");
/* a pending sign-up kept apart stays so, and its address gets no
 * subscriber row from the file (before q_imp_subscribers) */
static struct store_sql q_imp_apart = STORE_SQL(
        "DELETE FROM temp.import_keys WHERE rowid <= ?9 AND EXISTS (SELECT 1 FROM signup g"
        " WHERE g.email_key = import_keys.email_key AND g.list = ?1)");
static struct store_sql q_imp_subscribers = STORE_SQL(
        "INSERT INTO subscriber (email_key, email, name, created_at)"
        " SELECT k.email_key, k.email, k.name, ?4 FROM temp.import_keys k WHERE k.rowid <= ?9"
        " ORDER BY k.rowid ON CONFLICT (email_key) DO NOTHING");
static struct store_sql q_imp_subscriber_ids = STORE_SQL(
        "UPDATE temp.import_keys SET subscriber_id ="
        " (SELECT u.id FROM subscriber u WHERE u.email_key = import_keys.email_key)"
        " WHERE rowid <= ?9");
static struct store_sql q_imp_existing = STORE_SQL(
        "DELETE FROM temp.import_keys WHERE rowid <= ?9 AND EXISTS (SELECT 1 FROM subscription s"
        " WHERE s.subscriber_id = import_keys.subscriber_id AND s.list = ?1)");
static struct store_sql q_imp_subscriptions = STORE_SQL(
        "INSERT INTO subscription (subscriber_id, list, state, lang, created_at, mailed_at,"
        " confirmed_at) SELECT subscriber_id, ?1, ?2, ?3, ?4,"
        " CASE WHEN ?2 = 'pending' THEN ?4 END, CASE WHEN ?2 = 'confirmed' THEN ?4 END"
        " FROM temp.import_keys WHERE rowid <= ?9 ORDER BY rowid");
static struct store_sql q_imp_consent = STORE_SQL(
        "INSERT INTO consent (subscriber_id, list, event, at, lang, source, text_version)"
        " SELECT subscriber_id, ?1, ?5, ?4, ?3, ?6, ?7 FROM temp.import_keys WHERE rowid <= ?9"
        " ORDER BY rowid");
static struct store_sql q_imp_outbox = STORE_SQL(
        "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at)"
        " SELECT 'confirm', s.id, 'queued', ?8, ?4, ?4 FROM temp.import_keys k"
        " JOIN subscription s ON s.subscriber_id = k.subscriber_id AND s.list = ?1"
        " WHERE k.rowid <= ?9 ORDER BY k.rowid");
static struct store_sql q_imp_welcome = STORE_SQL(
        "INSERT INTO outbox (kind, subscription_id, state, priority, created_at, next_at)"
        " SELECT 'welcome', s.id, 'queued', ?8, ?4, ?4 FROM temp.import_keys k"
        " JOIN subscription s ON s.subscriber_id = k.subscriber_id AND s.list = ?1"
        " WHERE k.rowid <= ?9 ORDER BY k.rowid");
static struct store_sql q_imp_done = STORE_SQL("DELETE FROM temp.import_keys WHERE rowid <= ?9");

/* Run one statement of a slice with the parameters every one of them may
 * use (each names only those it needs); the rows it changed. */
static int import_step(struct store *st, struct store_sql *q, const struct import_spec *spec,
                       int64_t last, int64_t *changed)
{
        sqlite3_stmt *s = db_stmt(st, q);
        int n = sqlite3_bind_parameter_count(s);
        for (int i = 1; i <= n; i++) {
                const char *name = sqlite3_bind_parameter_name(s, i);
                switch (name ? name[1] : 0) {
                case '1': sqlite3_bind_text(s, i, spec->list, -1, SQLITE_STATIC); break;
                case '2': sqlite3_bind_text(s, i, spec->pending ? "pending" : "confirmed", -1,
                                            SQLITE_STATIC); break;
                case '3': sqlite3_bind_text(s, i, lang_name(spec->lang), -1, SQLITE_STATIC); break;
                case '4': sqlite3_bind_int64(s, i, spec->now); break;
                case '5': sqlite3_bind_text(s, i, spec->pending ? "signup" : "import", -1,
                                            SQLITE_STATIC); break;
                case '6': sqlite3_bind_text(s, i, spec->source, -1, SQLITE_STATIC); break;
                case '7': db_bind_text_or_null(s, i, spec->pending ? spec->text_version : NULL);
                          break;
                case '8': sqlite3_bind_int(s, i, PRIO_IMPORT); break;
                case '9': sqlite3_bind_int64(s, i, last); break;
                }
        }
        int r = db_run(st, q, s);
        if (r == 0 && changed)
                *changed = sqlite3_changes64(st->db);
        return r;
}

int store_import_apply(struct store *st, const struct import_spec *spec, unsigned limit,
                       struct import_result *res)
{
        sqlite3_stmt *s = db_stmt(st, &q_imp_slice_end);
        sqlite3_bind_int64(s, 1, limit);
        int rc = sqlite3_step(s);
        bool any = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
        int64_t last = any ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return db_fail(st, rc, q_imp_slice_end.text);
        if (!any)
                return 1;
        int64_t apart = 0, existing = 0, added = 0;
        int r;
        if ((r = import_step(st, &q_imp_apart, spec, last, &apart)) < 0 ||
            (r = import_step(st, &q_imp_subscribers, spec, last, NULL)) < 0 ||
            (r = import_step(st, &q_imp_subscriber_ids, spec, last, NULL)) < 0 ||
            (r = import_step(st, &q_imp_existing, spec, last, &existing)) < 0 ||
            (r = import_step(st, &q_imp_subscriptions, spec, last, &added)) < 0 ||
            (r = import_step(st, &q_imp_consent, spec, last, NULL)) < 0 ||
            (spec->pending && (r = import_step(st, &q_imp_outbox, spec, last, NULL)) < 0) ||
            (!spec->pending && spec->welcome &&
             (r = import_step(st, &q_imp_welcome, spec, last, NULL)) < 0) ||
            (r = import_step(st, &q_imp_done, spec, last, NULL)) < 0)
                return r;
        res->existing += apart + existing;
        res->added += added;
        return 0;
}

static struct store_sql q_stats_subs = STORE_SQL(
        "SELECT state, count(*) FROM subscription GROUP BY state");
/* expiry: pending sign-ups whose last mail is older than confirm_ttl
 * are expired, stripped or not (stats) */
static struct store_sql q_exp_count = STORE_SQL(
        "SELECT count(*) FROM subscription WHERE state = 'pending' AND mailed_at <= ?1");
static struct store_sql q_stats_mails = STORE_SQL(
        "SELECT state, count(*) FROM outbox GROUP BY state");
static struct store_sql q_stats_refused = STORE_SQL(
        "SELECT coalesce(sum(n), 0) FROM bounce_refused");
static struct store_sql q_stats_ignored = STORE_SQL(
        "SELECT coalesce(sum(n) FILTER (WHERE reason = 'autoreply'), 0),"
        " coalesce(sum(n) FILTER (WHERE reason <> 'autoreply'), 0) FROM bounce_ignored");
static struct store_sql q_stats_bounces = STORE_SQL(
        "SELECT kind, count(*) FROM bounce GROUP BY kind");
static struct store_sql q_stats_days = STORE_SQL(
        "SELECT event, (at - ?1) / ?2, count(*) FROM"
        " (SELECT event, at FROM consent WHERE event IN ('signup', 'confirm') AND at >= ?1"
        " UNION ALL SELECT 'signup', mailed_at FROM signup WHERE mailed_at >= ?1) GROUP BY 1, 2");
/* ---- stats ---- */

int store_stats(struct store *st, int64_t now, int64_t expired_mailed_before, struct store_stats *out)
{
        sqlite3_stmt *s;
        int rc;
        memset(out, 0, sizeof(*out));

        s = db_stmt(st, &q_stats_subs);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                int i = DB_NAME_INDEX(db_sub_state_names, sqlite3_column_text(s, 0));
                if (i >= 0)
                        out->subscriptions[i] += sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return db_fail(st, rc, "stats");
        /* pending sign-ups past confirm_ttl are expired, stripped or not yet */
        int64_t overdue = 0;
        int r = db_count(st, &q_exp_count, expired_mailed_before, &overdue);
        if (r < 0)
                return r;
        out->subscriptions[SUB_PENDING] -= overdue;
        out->subscriptions[SUB_EXPIRED] += overdue;
        s = db_stmt(st, &q_stats_mails);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                int i = DB_NAME_INDEX(db_mail_state_names, sqlite3_column_text(s, 0));
                if (i >= 0)
                        out->mails[i] += sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return db_fail(st, rc, "stats");

        s = db_stmt(st, &q_stats_refused);
        if ((rc = sqlite3_step(s)) == SQLITE_ROW)
                out->bounces_refused = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return db_fail(st, rc, "stats");

        s = db_stmt(st, &q_stats_ignored);
        if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                out->autoreplies = sqlite3_column_int64(s, 0);
                out->not_understood = sqlite3_column_int64(s, 1);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return db_fail(st, rc, "stats");

        s = db_stmt(st, &q_stats_bounces);
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
                return db_fail(st, rc, "stats");

        /* the last STATS_DAYS days, today last; day boundaries in UTC */
        int64_t today = now - now % SECONDS_PER_DAY;
        int64_t first = today - (STATS_DAYS - 1) * SECONDS_PER_DAY;
        for (int d = 0; d < STATS_DAYS; d++)
                out->days[d].day = first + d * SECONDS_PER_DAY;
        s = db_stmt(st, &q_stats_days);
        sqlite3_bind_int64(s, 1, first);
        sqlite3_bind_int64(s, 2, SECONDS_PER_DAY);
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
                return db_fail(st, rc, "stats");
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
static int rows_json(struct store *st, struct store_sql *q, int64_t subscriber_id,
                     const char *email_key, json_t *arr)
{
        sqlite3_stmt *s = db_stmt(st, q);
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
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "export");
}

static int who_by_key(struct store *st, struct store_sql *sid, const char *email_key, int64_t *id,
                      json_t **obj)
{
        sqlite3_stmt *s = db_stmt(st, sid);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                sqlite3_reset(s);
                return 1;
        }
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return db_fail(st, rc, "find subscriber");
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

static struct store_sql q_subscriber_by_key = STORE_SQL(
        "SELECT id, email, name, created_at FROM subscriber WHERE email_key = ?1");
static int subscriber_by_key(struct store *st, const char *email_key, int64_t *id, json_t **obj)
{
        return who_by_key(st, &q_subscriber_by_key, email_key, id, obj);
}

/* an address known only from pending sign-ups */
static struct store_sql q_signup_who = STORE_SQL(
        "SELECT 0, email, name, at FROM signup WHERE email_key = ?1 ORDER BY at DESC LIMIT 1");
/* ?1 the subscriber (0: none), ?2 the address's key: its sign-ups kept apart */
static struct store_sql q_export_subs = STORE_SQL(
        "SELECT list, state, lang, created_at, mailed_at, confirmed_at, confirm_ip,"
        " unsubscribed_at FROM subscription WHERE subscriber_id = ?1"
        " OR id IN (SELECT subscription_id FROM signup WHERE email_key = ?2) ORDER BY id");
static struct store_sql q_export_consent = STORE_SQL(
        "SELECT list, event, at, ip, user_agent, lang, source, text_version, consent_text,"
        " consent_version FROM (SELECT c.id AS k, c.list, c.event, c.at, c.ip, c.user_agent,"
        " c.lang, c.source, c.text_version, c.consent_text, c.consent_version FROM consent c"
        " WHERE c.subscriber_id = ?1 UNION ALL SELECT 9e18, g.list, 'signup', g.at, g.ip,"
        " g.user_agent, g.lang, g.source, g.text_version, g.consent_text, g.consent_version"
        " FROM signup g WHERE g.email_key = ?2) ORDER BY k, at");
static struct store_sql q_export_mails = STORE_SQL(
        "SELECT o.id, o.kind, s.list, o.state, o.created_at, o.attempts, o.done_at, o.reply"
        " FROM outbox o JOIN subscription s ON s.id = o.subscription_id"
        " WHERE s.subscriber_id = ?1"
        " OR s.id IN (SELECT subscription_id FROM signup WHERE email_key = ?2) ORDER BY o.id");
static struct store_sql q_export_tokens = STORE_SQL(
        "SELECT s.list, t.kind, t.issued_at, t.expires_at FROM token t"
        " JOIN subscription s ON s.id = t.subscription_id WHERE s.subscriber_id = ?1"
        " OR s.id IN (SELECT subscription_id FROM signup WHERE email_key = ?2)"
        " ORDER BY t.issued_at");
/* the classified reports about the subscriber (?2 unused); the contract's
 * four fields, then what else is kept: the receiving domain and the
 * diagnostic, which often quotes the address */
static struct store_sql q_export_bounces = STORE_SQL(
        "SELECT at, class, reason, status, domain, diagnostic FROM bounce_report WHERE subscriber_id = ?1"
        " AND ?2 IS NOT NULL ORDER BY at, id");
int store_export(struct store *st, const char *email_key, json_t **out)
{
        int64_t id = 0;
        json_t *who = NULL;
        /* an address known only from a pending sign-up has no subscriber yet */
        int r = subscriber_by_key(st, email_key, &id, &who);
        if (r == 1)
                r = who_by_key(st, &q_signup_who, email_key, &id, &who);
        if (r)
                return r;
        json_t *subs = json_array(), *consent = json_array(), *mails = json_array(),
               *tokens = json_array(), *bounces = json_array();
        if ((r = rows_json(st, &q_export_subs, id, email_key, subs)) < 0 ||
            (r = rows_json(st, &q_export_consent, id, email_key, consent)) < 0 ||
            (r = rows_json(st, &q_export_mails, id, email_key, mails)) < 0 ||
            (r = rows_json(st, &q_export_tokens, id, email_key, tokens)) < 0 ||
            (r = rows_json(st, &q_export_bounces, id, email_key, bounces)) < 0) {
                json_decref(bounces);
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
        json_object_set_new(o, "bounces", bounces);
        *out = o;
        return 0;
}

static struct store_sql q_erase_rcpt = STORE_SQL(
        "DELETE FROM outbox WHERE rcpt IS NOT NULL AND lower(rcpt) = ?1");
static struct store_sql q_erase = STORE_SQL("DELETE FROM subscriber WHERE id = ?1");
/* cascades to the sign-up's row, tokens and mails */
static struct store_sql q_erase_signups = STORE_SQL(
        "DELETE FROM subscription WHERE id IN (SELECT subscription_id FROM signup"
        " WHERE email_key = ?1)");
static struct store_sql q_erase_subs = STORE_SQL(
        "DELETE FROM subscription WHERE subscriber_id = ?1");
int store_erase(struct store *st, const char *email_key)
{
        /* test sends went to the address without a subscription */
        sqlite3_stmt *s = db_stmt(st, &q_erase_rcpt);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        int r = db_run(st, &q_erase_rcpt, s);
        if (r < 0)
                return r;
        int64_t test_sends = sqlite3_changes64(st->db);
        /* pending sign-ups kept apart: with their subscription */
        s = db_stmt(st, &q_erase_signups);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        if ((r = db_run(st, &q_erase_signups, s)) < 0)
                return r;
        int64_t signups = sqlite3_changes64(st->db);
        int64_t id = 0;
        r = subscriber_by_key(st, email_key, &id, NULL);
        if (r)
                return r == 1 && (test_sends || signups) ? 0 : r;
        /* subscriptions cascade to tokens and queued mails; the subscriber to
         * the consent record and bounces */
        if ((r = db_run_ints(st, &q_erase_subs, 1, id, 0, NULL)) < 0)
                return r;
        return db_run_ints(st, &q_erase, 1, id, 0, NULL);
}
