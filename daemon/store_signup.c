/*
 * store_signup.c - a subscription's life in the database: subscribers and
 * their subscriptions, the personal data of a pending sign-up kept apart
 * (table signup) until it is confirmed, the consent record, token hashes,
 * and the rate limit counters of sign-ups.  Never decides a state: the
 * handlers do; this only reads and writes it.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "log.h"
#include "store_db.h"

/* ---- subscribers and subscriptions ---- */

static int subscription_find(struct store *st, struct store_sql *q, const char *email_key,
                             const char *list, struct subscription *out)
{
        sqlite3_stmt *s = db_stmt(st, q);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                sqlite3_reset(s);
                return 1;
        }
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return db_fail(st, rc, q->text);
        }
        out->id = sqlite3_column_int64(s, 0);
        out->subscriber_id = sqlite3_column_int64(s, 1);
        int state = DB_NAME_INDEX(db_sub_state_names, sqlite3_column_text(s, 2));
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

static struct store_sql q_sub_find = STORE_SQL(
        "SELECT s.id, s.subscriber_id, s.state, s.lang, s.created_at, s.mailed_at"
        " FROM subscriber u JOIN subscription s ON s.subscriber_id = u.id"
        " WHERE u.email_key = ?1 AND s.list = ?2");
/* a pending sign-up kept apart until it is confirmed (table signup) */
static struct store_sql q_signup_find = STORE_SQL(
        "SELECT s.id, s.subscriber_id, s.state, s.lang, s.created_at, s.mailed_at"
        " FROM signup g JOIN subscription s ON s.id = g.subscription_id"
        " WHERE g.email_key = ?1 AND g.list = ?2 LIMIT 1");
int store_subscription_find(struct store *st, const char *email_key, const char *list,
                            struct subscription *out)
{
        int r = subscription_find(st, &q_sub_find, email_key, list, out);
        if (r == 1)
                r = subscription_find(st, &q_signup_find, email_key, list, out);
        return r;
}

static struct store_sql q_subscriber_find = STORE_SQL(
        "SELECT id FROM subscriber WHERE email_key = ?1");
static struct store_sql q_subscriber_name = STORE_SQL(
        "UPDATE subscriber SET email = ?2, name = coalesce(?3, name) WHERE id = ?1");
static struct store_sql q_subscriber_add = STORE_SQL(
        "INSERT INTO subscriber (email_key, email, name, created_at) VALUES (?1, ?2, ?3, ?4)");
int store_subscriber_find(struct store *st, const char *email_key, int64_t *id)
{
        sqlite3_stmt *s = db_stmt(st, &q_subscriber_find);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *id = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : db_fail(st, rc, q_subscriber_find.text);
}

/* The subscriber of this address, made from `email` and `name` when there
 * is none; an existing one's address and name are changed only when
 * `update` (a confirmation: the address's owner speaks). */
static int subscriber_get(struct store *st, const char *email_key, const char *email,
                          const char *name, int64_t now, bool update, int64_t *id)
{
        sqlite3_stmt *s = db_stmt(st, &q_subscriber_find);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *id = sqlite3_column_int64(s, 0);
                sqlite3_reset(s);
                if (!update)
                        return 0;
                s = db_stmt(st, &q_subscriber_name);
                sqlite3_bind_int64(s, 1, *id);
                sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
                db_bind_text_or_null(s, 3, name);
                return db_run(st, &q_subscriber_name, s);
        }
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return db_fail(st, rc, "find subscriber");
        s = db_stmt(st, &q_subscriber_add);
        sqlite3_bind_text(s, 1, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, email, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 3, name);
        sqlite3_bind_int64(s, 4, now);
        int r = db_run(st, &q_subscriber_add, s);
        if (r == 0)
                *id = sqlite3_last_insert_rowid(st->db);
        return r;
}

static struct store_sql q_sub_unlink = STORE_SQL(
        "UPDATE subscription SET subscriber_id = NULL WHERE id = ?1");
int store_subscription_unlink(struct store *st, int64_t subscription_id)
{
        return db_run_ints(st, &q_sub_unlink, 1, subscription_id, 0, NULL);
}

static struct store_sql q_sub_add = STORE_SQL(
        "INSERT INTO subscription (subscriber_id, list, state, lang, created_at, mailed_at)"
        " VALUES (?1, ?2, 'pending', ?3, ?4, ?4)");
int store_subscription_add(struct store *st, int64_t subscriber_id, const char *list,
                           enum lang lang, int64_t now, int64_t *id)
{
        sqlite3_stmt *s = db_stmt(st, &q_sub_add);
        if (subscriber_id)
                sqlite3_bind_int64(s, 1, subscriber_id);
        else
                sqlite3_bind_null(s, 1);
        sqlite3_bind_text(s, 2, list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, lang_name(lang), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, now);
        int r = db_run(st, &q_sub_add, s);
        if (r == 0)
                *id = sqlite3_last_insert_rowid(st->db);
        return r;
}

static struct store_sql q_sub_restart = STORE_SQL(
        "UPDATE subscription SET state = 'pending', lang = ?2, created_at = ?3,"
        " mailed_at = NULL, confirmed_at = NULL, confirm_ip = NULL, unsubscribed_at = NULL"
        " WHERE id = ?1");
int store_subscription_restart(struct store *st, int64_t id, enum lang lang, int64_t now)
{
        sqlite3_stmt *s = db_stmt(st, &q_sub_restart);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, lang_name(lang), -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, now);
        int r = db_run(st, &q_sub_restart, s);
        if (r == 0)
                r = store_tokens_delete(st, id, TOKEN_CONFIRM);
        return r;
}

static struct store_sql q_sub_mailed = STORE_SQL(
        "UPDATE subscription SET mailed_at = ?2, lang = ?3 WHERE id = ?1");
int store_subscription_mailed(struct store *st, int64_t id, int64_t now, enum lang lang)
{
        sqlite3_stmt *s = db_stmt(st, &q_sub_mailed);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        sqlite3_bind_text(s, 3, lang_name(lang), -1, SQLITE_STATIC);
        return db_run(st, &q_sub_mailed, s);
}

static struct store_sql q_sub_confirm = STORE_SQL(
        "UPDATE subscription SET state = 'confirmed', confirmed_at = ?2, confirm_ip = ?3"
        " WHERE id = ?1");
int store_subscription_confirm(struct store *st, int64_t id, int64_t now, const char *ip)
{
        sqlite3_stmt *s = db_stmt(st, &q_sub_confirm);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        db_bind_text_or_null(s, 3, ip);
        return db_run(st, &q_sub_confirm, s);
}

static struct store_sql q_sub_unsubscribe = STORE_SQL(
        "UPDATE subscription SET state = 'unsubscribed', unsubscribed_at = ?2 WHERE id = ?1");
int store_subscription_unsubscribe(struct store *st, int64_t id, int64_t now)
{
        sqlite3_stmt *s = db_stmt(st, &q_sub_unsubscribe);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, now);
        return db_run(st, &q_sub_unsubscribe, s);
}

static struct store_sql q_consent_add = STORE_SQL(
        "INSERT INTO consent (subscriber_id, list, event, at, ip, user_agent, lang, source,"
        " text_version, consent_text, consent_version)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
int store_consent_add(struct store *st, const struct consent *c)
{
        sqlite3_stmt *s = db_stmt(st, &q_consent_add);
        sqlite3_bind_int64(s, 1, c->subscriber_id);
        sqlite3_bind_text(s, 2, c->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, c->event, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, c->at);
        db_bind_text_or_null(s, 5, c->ip);
        db_bind_text_or_null(s, 6, c->user_agent);
        db_bind_text_or_null(s, 7, c->lang);
        sqlite3_bind_text(s, 8, c->source, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 9, c->text_version);
        db_bind_text_or_null(s, 10, c->consent_text);
        db_bind_text_or_null(s, 11, c->consent_version);
        return db_run(st, &q_consent_add, s);
}

static struct store_sql q_signup_name = STORE_SQL(
        "SELECT name FROM signup WHERE subscription_id = ?1 ORDER BY mailed_at DESC LIMIT 1");
static struct store_sql q_signup_put = STORE_SQL(
        "INSERT OR REPLACE INTO signup (subscription_id, email_key, list, email, name, mailed_at,"
        " at, ip, user_agent, lang, source, text_version, consent_text, consent_version)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
int store_signup_put(struct store *st, int64_t subscription_id, const char *email_key,
                     const char *email, const char *name, const struct consent *c, bool renew)
{
        /* made again: a row of its own, as consent
         * would record it; the earlier ones stay until they expire (the name
         * given before stays when none is given now) */
        char *old_name = NULL;
        if (renew && !name) {
                sqlite3_stmt *s = db_stmt(st, &q_signup_name);
                sqlite3_bind_int64(s, 1, subscription_id);
                int rc = sqlite3_step(s);
                if (rc == SQLITE_ROW)
                        old_name = db_column_dup(s, 0);
                sqlite3_reset(s);
                if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                        return db_fail(st, rc, q_signup_name.text);
                name = old_name;
        }
        sqlite3_stmt *s = db_stmt(st, &q_signup_put);
        sqlite3_bind_int64(s, 1, subscription_id);
        sqlite3_bind_text(s, 2, email_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, c->list, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, email, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 5, name);
        sqlite3_bind_int64(s, 6, c->at);
        db_bind_text_or_null(s, 7, c->ip);
        db_bind_text_or_null(s, 8, c->user_agent);
        db_bind_text_or_null(s, 9, c->lang);
        sqlite3_bind_text(s, 10, c->source, -1, SQLITE_STATIC);
        db_bind_text_or_null(s, 11, c->text_version);
        db_bind_text_or_null(s, 12, c->consent_text);
        db_bind_text_or_null(s, 13, c->consent_version);
        int r = db_run(st, &q_signup_put, s);
        free(old_name);
        return r;
}

static struct store_sql q_signup_delete = STORE_SQL(
        "DELETE FROM signup WHERE subscription_id = ?1");
int store_signup_forget(struct store *st, int64_t subscription_id)
{
        return db_run_ints(st, &q_signup_delete, 1, subscription_id, 0, NULL);
}

static struct store_sql q_signup_get_at = STORE_SQL(
        "SELECT email_key, email, name FROM signup WHERE subscription_id = ?1"
        " AND mailed_at = ?2");
static struct store_sql q_signup_get = STORE_SQL(
        "SELECT email_key, email, name FROM signup WHERE subscription_id = ?1"
        " ORDER BY mailed_at DESC LIMIT 1");
/* The address and name of one record of a sign-up (copied: the statements
 * that use them run before this one is reset); 1 when there is none. */
static int signup_record(struct store *st, int64_t subscription_id, int64_t mailed_at,
                         char **key, char **email, char **name)
{
        struct store_sql *q = mailed_at ? &q_signup_get_at : &q_signup_get;
        sqlite3_stmt *s = db_stmt(st, q);
        sqlite3_bind_int64(s, 1, subscription_id);
        if (mailed_at)
                sqlite3_bind_int64(s, 2, mailed_at);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *key = db_column_dup(s, 0);
                *email = db_column_dup(s, 1);
                *name = db_column_dup(s, 2);
        }
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : db_fail(st, rc, q->text);
}

static struct store_sql q_sub_link = STORE_SQL(
        "UPDATE subscription SET subscriber_id = ?2 WHERE id = ?1");
static struct store_sql q_signup_to_consent = STORE_SQL(
        "INSERT INTO consent (subscriber_id, list, event, at, ip, user_agent, lang, source,"
        " text_version, consent_text, consent_version) SELECT ?2, list, 'signup', at, ip,"
        " user_agent, lang, source, text_version, consent_text, consent_version FROM signup"
        " WHERE subscription_id = ?1 ORDER BY mailed_at");
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
                sqlite3_stmt *s = db_stmt(st, &q_sub_link);
                sqlite3_bind_int64(s, 1, subscription_id);
                sqlite3_bind_int64(s, 2, *subscriber_id);
                r = db_run(st, &q_sub_link, s);
        }
        /* every record of it, oldest first, into consent */
        if (r == 0)
                r = db_run_ints(st, &q_signup_to_consent, 2, subscription_id, *subscriber_id, NULL);
        if (r == 0)
                r = db_run_ints(st, &q_signup_delete, 1, subscription_id, 0, NULL);
        free(key);
        free(email);
        free(name);
        return r;
}

/* The sign-up of one statement's first row, adopted; 1 when there is none. */
static int adopt_first(struct store *st, struct store_sql *q, int64_t key_id, const char *key,
                       int64_t now)
{
        sqlite3_stmt *s = db_stmt(st, q);
        if (key)
                sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        else
                sqlite3_bind_int64(s, 1, key_id);
        int rc = sqlite3_step(s);
        int64_t subscription_id = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? 1 : db_fail(st, rc, q->text);
        if (!subscription_id)
                return 1;       /* a subscriber with none */
        int64_t subscriber_id;
        return store_signup_adopt(st, subscription_id, now, 0, &subscriber_id);
}

static struct store_sql q_signup_of_mail = STORE_SQL(
        "SELECT o.subscription_id FROM outbox o WHERE o.id = ?1"
        " AND EXISTS (SELECT 1 FROM signup g WHERE g.subscription_id = o.subscription_id)");
int store_signup_adopt_mail(struct store *st, int64_t outbox_id, int64_t now)
{
        return adopt_first(st, &q_signup_of_mail, outbox_id, NULL, now);
}

static struct store_sql q_signup_of_subscriber = STORE_SQL(
        "SELECT (SELECT g.subscription_id FROM signup g WHERE g.email_key = u.email_key LIMIT 1)"
        " FROM subscriber u WHERE u.id = ?1");
int store_signup_adopt_subscriber(struct store *st, int64_t subscriber_id, int64_t now)
{
        int r;
        while ((r = adopt_first(st, &q_signup_of_subscriber, subscriber_id, NULL, now)) == 0)
                ;
        return r < 0 ? r : 0;
}

static struct store_sql q_signup_of_key = STORE_SQL(
        "SELECT subscription_id FROM signup WHERE email_key = ?1 LIMIT 1");
int store_signup_adopt_key(struct store *st, const char *email_key, int64_t now)
{
        int r, n = 0;
        while ((r = adopt_first(st, &q_signup_of_key, 0, email_key, now)) == 0)
                n++;
        return r < 0 ? r : n ? 0 : 1;
}

static struct store_sql q_token_add = STORE_SQL(
        "INSERT INTO token (hash, subscription_id, kind, issued_at, expires_at, request_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
/* ---- tokens ---- */

int store_token_add(struct store *st, const uint8_t hash[32], int64_t subscription_id,
                    enum token_kind kind, int64_t issued_at, int64_t expires_at,
                    int64_t request_at)
{
        sqlite3_stmt *s = db_stmt(st, &q_token_add);
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, subscription_id);
        sqlite3_bind_text(s, 3, db_token_kind_names[kind], -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, issued_at);
        if (expires_at)
                sqlite3_bind_int64(s, 5, expires_at);
        else
                sqlite3_bind_null(s, 5);
        if (request_at)
                sqlite3_bind_int64(s, 6, request_at);
        return db_run(st, &q_token_add, s);
}

static struct store_sql q_token_find = STORE_SQL(
        "SELECT t.subscription_id, s.subscriber_id, t.kind, t.issued_at, t.expires_at,"
        " s.state, s.list, s.subscriber_id IS NULL AND NOT EXISTS"
        " (SELECT 1 FROM signup g WHERE g.subscription_id = s.id), t.request_at"
        " FROM token t JOIN subscription s ON s.id = t.subscription_id WHERE t.hash = ?1");
int store_token_find(struct store *st, const uint8_t hash[32], struct token_row *out)
{
        sqlite3_stmt *s = db_stmt(st, &q_token_find);
        sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
                sqlite3_reset(s);
                return 1;
        }
        if (rc != SQLITE_ROW) {
                sqlite3_reset(s);
                return db_fail(st, rc, "find token");
        }
        out->subscription_id = sqlite3_column_int64(s, 0);
        out->subscriber_id = sqlite3_column_int64(s, 1);
        int kind = DB_NAME_INDEX(db_token_kind_names, sqlite3_column_text(s, 2));
        out->issued_at = sqlite3_column_int64(s, 3);
        out->expires_at = sqlite3_column_int64(s, 4);
        int state = DB_NAME_INDEX(db_sub_state_names, sqlite3_column_text(s, 5));
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

static struct store_sql q_tokens_delete = STORE_SQL(
        "DELETE FROM token WHERE subscription_id = ?1 AND kind = ?2");
int store_tokens_delete(struct store *st, int64_t subscription_id, enum token_kind kind)
{
        sqlite3_stmt *s = db_stmt(st, &q_tokens_delete);
        sqlite3_bind_int64(s, 1, subscription_id);
        sqlite3_bind_text(s, 2, db_token_kind_names[kind], -1, SQLITE_STATIC);
        return db_run(st, &q_tokens_delete, s);
}

static struct store_sql q_rate_get = STORE_SQL(
        "SELECT window_start, count FROM rate_limit WHERE key = ?1");
/* ---- rate limits ---- */

int store_rate_count(struct store *st, const uint8_t key[RATE_KEY_LEN], int64_t now, int64_t window,
                     int64_t *count, int64_t *window_start)
{
        sqlite3_stmt *s = db_stmt(st, &q_rate_get);
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
                return db_fail(st, rc, "rate limit");
        return 0;
}

static struct store_sql q_rate_put = STORE_SQL(
        "INSERT INTO rate_limit (key, window_start, count) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start,"
        " count = excluded.count");
int store_rate_set(struct store *st, const uint8_t key[RATE_KEY_LEN], int64_t window_start,
                   int64_t count)
{
        sqlite3_stmt *s = db_stmt(st, &q_rate_put);
        sqlite3_bind_blob(s, 1, key, RATE_KEY_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, window_start);
        sqlite3_bind_int64(s, 3, count);
        return db_run(st, &q_rate_put, s);
}
