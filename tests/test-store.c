/*
 * test-store.c - the store's promises about its file, on real files in a
 * temporary directory: the connection's settings as SQLite reads them back
 * (synchronous, defensive), a sync exactly when a commit is not yet on
 * disk, and a refusal to start on a file that is not a database it made.
 * And its promises about subscribers, through the public store_* calls in
 * the order the handlers make them: the states of a subscription, what an
 * export holds and an erase leaves (every table and column of the file,
 * read by a second connection, and the file's bytes), expiry and purge
 * through housekeeping, and imports.  Where the file is read directly,
 * only the tables subscriber, subscription, consent, outbox and token are
 * named: the layout of pending sign-ups is the store's own business.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "conf.h"
#include "housekeeping.h"
#include "store.h"
#include "unit.h"

static char dir[] = "/tmp/test-store-XXXXXX";

static char *path_of(const char *name)
{
        static char p[256];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        return p;
}

static void write_file(const char *path, const void *data, size_t n)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, data, n) != (ssize_t)n)
                abort();
        close(fd);
}

static void test_settings_read_back(void)
{
        struct store *st = NULL;
        REQUIRE(store_open(path_of("settings.db"), &st) == 0);
        /* NORMAL, with durable commits synced by store_sync(): a prepared
         * "PRAGMA synchronous = FULL" that never took effect once stood here */
        CHECK_INT(store_synchronous(st), 1);
        /* on again after the migrations that need it off */
        CHECK(store_defensive(st));
        store_close(st);
        /* and when a migrated database is opened again */
        REQUIRE(store_open(path_of("settings.db"), &st) == 0);
        CHECK_INT(store_synchronous(st), 1);
        CHECK(store_defensive(st));
        store_close(st);
}

static void test_a_sync_for_each_commit_not_on_disk(void)
{
        struct store *st = NULL;
        REQUIRE(store_open(path_of("sync.db"), &st) == 0);
        uint8_t key[RATE_KEY_LEN] = { 1 };
        unsigned long before = store_syncs(st);

        REQUIRE(store_batch_begin(st) == 0);
        CHECK_INT(store_rate_set(st, key, 1000, 1), 0);
        CHECK_INT(store_batch_commit(st), 0);
        CHECK_UINT(store_syncs(st), before);            /* committed, not synced */
        store_sync(st);
        CHECK_UINT(store_syncs(st), before + 1);
        store_sync(st);                                  /* nothing new: no sync */
        CHECK_UINT(store_syncs(st), before + 1);

        /* a batch that writes nothing needs no sync */
        REQUIRE(store_batch_begin(st) == 0);
        int64_t count = 0, start = 0;
        CHECK_INT(store_rate_count(st, key, 1000, 3600, &count, &start), 0);
        CHECK_INT(store_batch_commit(st), 0);
        store_sync(st);
        CHECK_UINT(store_syncs(st), before + 1);

        /* two commits, one sync */
        for (int i = 0; i < 2; i++) {
                REQUIRE(store_batch_begin(st) == 0);
                CHECK_INT(store_rate_set(st, key, 1000, 2 + i), 0);
                CHECK_INT(store_batch_commit(st), 0);
        }
        store_sync(st);
        CHECK_UINT(store_syncs(st), before + 2);
        store_close(st);
}

static void test_an_empty_file_it_did_not_make_is_refused(void)
{
        struct store *st = NULL;
        write_file(path_of("empty.db"), "", 0);
        CHECK(store_open(path_of("empty.db"), &st) < 0);
        CHECK(st == NULL);
        struct stat sb;
        CHECK(stat(path_of("empty.db"), &sb) == 0 && sb.st_size == 0);   /* left as it was */

        /* one it makes itself is a new database */
        REQUIRE(store_open(path_of("new.db"), &st) == 0);
        store_close(st);
        st = NULL;
        REQUIRE(store_open(path_of("new.db"), &st) == 0);
        store_close(st);
}

static void test_a_damaged_file_is_refused(void)
{
        struct store *st = NULL;
        char junk[8192];
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char)(i * 7 + 3);
        write_file(path_of("junk.db"), junk, sizeof(junk));
        CHECK(store_open(path_of("junk.db"), &st) < 0);
        CHECK(st == NULL);
}

/* ---- subscribers, as the handlers drive the store ---- */

#define T0      1700000000LL    /* 2023-11-14 */
#define TTL     (30 * 86400LL)  /* confirm_ttl (the default) */

struct person {
        const char *key, *email, *name, *ip, *ua;
};

static const struct person alice = {
        "alice@example.org", "Alice@example.org", "Alice Zebrafish", "192.0.2.77", "AliceBrowser/7.1",
};
static const struct person bob = {
        "bob@example.net", "bob@example.net", "Bob Quokka", "198.51.100.9", "BobAgent/3.3",
};
static const struct person carol = {
        "carol@example.com", "carol@example.com", "Carol Narwhal", "203.0.113.5", "CarolFetch/1.0",
};
static const struct person dave = {
        "dave@example.com", "dave@example.com", "Dave Okapi", "203.0.113.6", "DaveView/2.0",
};

/* A sign-up as h_subscribe makes it: a new one waits apart (no subscriber
 * yet); one of an address on the list already starts over (after an
 * unsubscribe or a bounce), or, still pending, gets another record
 * (renew).  Its confirmation mail is queued.  The subscription's id, 0
 * after a failed check. */
static int64_t sign_up(struct store *st, const struct person *p, const char *email, const char *name,
                       const char *list, int64_t now)
{
        struct subscription sub;
        int64_t id = 0;
        bool renew = false;
        int r = store_subscription_find(st, p->key, list, &sub);
        if (!CHECK(r >= 0))
                return 0;
        if (r == 1) {
                if (!CHECK_INT(store_subscription_add(st, 0, list, LANG_EN, now, &id), 0))
                        return 0;
        } else {
                id = sub.id;
                renew = sub.state == SUB_PENDING;
                if (sub.subscriber_id && !CHECK_INT(store_subscription_unlink(st, id), 0))
                        return 0;
                if (!renew && (!CHECK_INT(store_subscription_restart(st, id, LANG_EN, now), 0) ||
                               !CHECK_INT(store_signup_forget(st, id), 0)))
                        return 0;
        }
        if (!CHECK_INT(store_outbox_add(st, MAIL_CONFIRM, id, PRIO_CONFIRM, now, NULL), 0))
                return 0;
        if (r == 0 && !CHECK_INT(store_subscription_mailed(st, id, now, LANG_EN), 0))
                return 0;
        struct consent c = {
                .list = list, .event = "signup", .at = now, .ip = p->ip, .user_agent = p->ua,
                .lang = "en", .source = "socket", .text_version = "0123456789abcdef",
                .consent_text = "Yes, send me the newsletter", .consent_version = "form-3",
        };
        if (!CHECK_INT(store_signup_put(st, id, p->key, email ? email : p->email, name, &c, renew), 0))
                return 0;
        return id;
}

static void hash_of(unsigned n, uint8_t h[32])
{
        memset(h, 0x5a, 32);
        h[0] = (uint8_t)n;
        h[1] = (uint8_t)(n >> 8);
}

/* The token of a confirmation mail, as the scheduler stores it when it
 * claims the mail queued at `mailed` (which the token then confirms). */
static bool confirm_token(struct store *st, unsigned n, int64_t subscription_id, int64_t mailed)
{
        uint8_t h[32];
        hash_of(n, h);
        return CHECK_INT(store_token_add(st, h, subscription_id, TOKEN_CONFIRM, mailed, mailed + TTL,
                                         mailed), 0);
}

/* h_confirm: 0 confirmed now, 1 the token confirms nothing (unknown,
 * confirmed already, expired), negative on failure. */
static int confirm(struct store *st, unsigned n, int64_t now, const struct person *p)
{
        uint8_t h[32];
        struct token_row row;
        hash_of(n, h);
        int r = store_token_find(st, h, &row);
        if (r)
                return r;
        if (row.kind != TOKEN_CONFIRM || row.state != SUB_PENDING || row.stripped ||
            (row.expires_at && now >= row.expires_at))
                return 1;
        int64_t subscriber_id = row.subscriber_id;
        if (!subscriber_id &&
            (r = store_signup_adopt(st, row.subscription_id, now, row.request_at, &subscriber_id)) != 0)
                return r;
        if ((r = store_subscription_confirm(st, row.subscription_id, now, p->ip)) < 0)
                return r;
        struct consent c = {
                .subscriber_id = subscriber_id, .list = row.list, .event = "confirm", .at = now,
                .ip = p->ip, .user_agent = p->ua, .lang = "en", .source = "socket",
        };
        return store_consent_add(st, &c);
}

/* h_unsubscribe with an unsubscribe token (n): 0 or negative. */
static int unsubscribe(struct store *st, unsigned n, int64_t now)
{
        uint8_t h[32];
        struct token_row row;
        hash_of(n, h);
        int r = store_token_find(st, h, &row);
        if (r)
                return r < 0 ? r : -ENOENT;
        if (row.state == SUB_UNSUBSCRIBED)
                return 0;
        int64_t subscriber_id = row.subscriber_id;
        if (!subscriber_id &&
            (r = store_signup_adopt(st, row.subscription_id, now, 0, &subscriber_id)) < 0)
                return r;
        if ((r = store_subscription_unsubscribe(st, row.subscription_id, now)) < 0 ||
            (r = store_tokens_delete(st, row.subscription_id, TOKEN_CONFIRM)) < 0)
                return r;
        struct consent c = {
                .subscriber_id = subscriber_id, .list = row.list, .event = "unsubscribe", .at = now,
                .source = "socket",
        };
        return subscriber_id ? store_consent_add(st, &c) : 0;
}

static enum sub_state state_of(struct store *st, const struct person *p, const char *list,
                               int64_t *subscriber_id)
{
        struct subscription sub;
        int r = store_subscription_find(st, p->key, list, &sub);
        if (!CHECK_INT(r, 0))
                return (enum sub_state)-1;
        if (subscriber_id)
                *subscriber_id = sub.subscriber_id;
        return sub.state;
}

/* ---- the file, read by a second connection ---- */

static sqlite3 *peek_open(const char *path)
{
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                fprintf(stderr, "%s: %s\n", path, db ? sqlite3_errmsg(db) : "no memory");
                abort();
        }
        return db;
}

/* One integer from a query with up to one integer parameter (of the
 * tables named in the header comment only). */
static int64_t peek_int(const char *path, const char *sql, int64_t arg)
{
        sqlite3 *db = peek_open(path);
        sqlite3_stmt *s = NULL;
        int64_t v = -1;
        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
                fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
                abort();
        }
        if (sqlite3_bind_parameter_count(s) >= 1)
                sqlite3_bind_int64(s, 1, arg);
        if (sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

static char *peek_text(const char *path, const char *sql, int64_t arg)
{
        sqlite3 *db = peek_open(path);
        sqlite3_stmt *s = NULL;
        char *v = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
                abort();
        sqlite3_bind_int64(s, 1, arg);
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
                v = strdup((const char *)sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

/* Every value of every column of every table in the file, whatever the
 * tables are: the "table.column" of the first that holds `needle` (any
 * case) into `where`, "" when none does.  `cells` counts the columns read
 * (that the scan saw the tables at all). */
static void find_anywhere(const char *path, const char *needle, char *where, size_t n,
                          unsigned *cells)
{
        sqlite3 *db = peek_open(path);
        sqlite3_stmt *tables = NULL, *cols = NULL;
        where[0] = 0;
        if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &tables,
                               NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &cols, NULL) != SQLITE_OK)
                abort();
        while (!where[0] && sqlite3_step(tables) == SQLITE_ROW) {
                char *table = strdup((const char *)sqlite3_column_text(tables, 0));
                sqlite3_bind_text(cols, 1, table, -1, SQLITE_TRANSIENT);
                while (!where[0] && sqlite3_step(cols) == SQLITE_ROW) {
                        const char *col = (const char *)sqlite3_column_text(cols, 0);
                        char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE"
                                                    " instr(lower(CAST(\"%w\" AS TEXT)), lower(?1)) > 0"
                                                    " LIMIT 1", table, col);
                        sqlite3_stmt *s = NULL;
                        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
                                fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
                                abort();
                        }
                        sqlite3_bind_text(s, 1, needle, -1, SQLITE_STATIC);
                        if (sqlite3_step(s) == SQLITE_ROW)
                                snprintf(where, n, "%s.%s", table, col);
                        (*cells)++;
                        sqlite3_finalize(s);
                        sqlite3_free(sql);
                }
                sqlite3_reset(cols);
                free(table);
        }
        sqlite3_finalize(cols);
        sqlite3_finalize(tables);
        sqlite3_close(db);
}

/* true when the file holds `needle` somewhere (printing where when `say`) */
static bool file_holds(const char *path, const char *needle, bool say)
{
        char where[256];
        unsigned cells = 0;
        find_anywhere(path, needle, where, sizeof(where), &cells);
        if (!where[0] && cells < 20) {
                fprintf(stderr, "    scan of %s read only %u columns\n", path, cells);
                abort();
        }
        if (where[0] && say)
                fprintf(stderr, "    %s holds \"%s\" in %s\n", path, needle, where);
        return where[0] != 0;
}

/* The raw bytes of a file hold `needle` (exactly); printed when `say`. */
static bool bytes_hold(const char *path, const char *needle, bool say)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return false;
        size_t cap = 1 << 16, len = 0, k;
        char *buf = malloc(cap);
        while (buf && (k = fread(buf + len, 1, cap - len, f)) > 0) {
                len += k;
                if (len == cap)
                        buf = realloc(buf, cap *= 2);
        }
        fclose(f);
        if (!buf)
                abort();
        bool found = memmem(buf, len, needle, strlen(needle)) != NULL;
        free(buf);
        if (found && say)
                fprintf(stderr, "    the bytes of %s hold \"%s\"\n", path, needle);
        return found;
}

/* How many of someone's data (address as key and as given, name, IP
 * address, user agent) the file holds; those found are printed when `say`
 * (where none should be). */
static unsigned held_of(const char *path, const struct person *p, bool say)
{
        const char *v[] = { p->key, p->email, p->name, p->ip, p->ua };
        unsigned n = 0;
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
                n += v[i] && file_holds(path, v[i], say);
        return n;
}

/* ---- JSON of an export ---- */

static size_t count_where(json_t *arr, const char *field, const char *value)
{
        size_t n = 0, i;
        json_t *o;
        json_array_foreach(arr, i, o) {
                const char *v = json_string_value(json_object_get(o, field));
                n += v && strcmp(v, value) == 0;
        }
        return n;
}

static const char *str_at(json_t *root, const char *a, const char *b)
{
        return json_string_value(json_object_get(json_object_get(root, a), b));
}

/* ---- the tests ---- */

static void test_subscription_states(void)
{
        const char *path = path_of("states.db");
        struct store *st = NULL;
        REQUIRE(store_open(path, &st) == 0);
        REQUIRE(store_batch_begin(st) == 0);
        struct subscription sub;
        struct token_row row;
        uint8_t h[32];
        int64_t sid = 0, other = 0;

        /* nobody yet */
        CHECK_INT(store_subscription_find(st, alice.key, "news", &sub), 1);
        CHECK_INT(store_subscriber_find(st, alice.key, &sid), 1);

        /* pending, apart from the subscribers: no subscriber row, and on no
         * other list */
        int64_t id = sign_up(st, &alice, NULL, alice.name, "news", T0);
        REQUIRE(id > 0);
        REQUIRE(store_subscription_find(st, alice.key, "news", &sub) == 0);
        CHECK_INT(sub.id, id);
        CHECK_INT(sub.state, SUB_PENDING);
        CHECK_INT(sub.subscriber_id, 0);
        CHECK_INT(sub.created_at, T0);
        CHECK_INT(sub.mailed_at, T0);
        CHECK_INT(sub.lang, LANG_EN);
        CHECK_INT(store_subscriber_find(st, alice.key, &sid), 1);
        CHECK_INT(store_subscription_find(st, alice.key, "other", &sub), 1);
        CHECK_INT(store_subscription_find(st, bob.key, "news", &sub), 1);

        /* the mail's token */
        REQUIRE(confirm_token(st, 1, id, T0));
        hash_of(1, h);
        CHECK(store_token_add(st, h, id, TOKEN_CONFIRM, T0, T0 + TTL, T0) < 0);  /* one hash, one token */
        REQUIRE(store_token_find(st, h, &row) == 0);
        CHECK_INT(row.subscription_id, id);
        CHECK_INT(row.subscriber_id, 0);
        CHECK_INT(row.kind, TOKEN_CONFIRM);
        CHECK_INT(row.state, SUB_PENDING);
        CHECK_STR(row.list, "news");
        CHECK(!row.stripped);
        CHECK_INT(row.issued_at, T0);
        CHECK_INT(row.expires_at, T0 + TTL);
        CHECK_INT(row.request_at, T0);
        hash_of(999, h);
        CHECK_INT(store_token_find(st, h, &row), 1);
        CHECK_INT(confirm(st, 999, T0 + 10, &alice), 1);

        /* asked again before confirming, without a name: one more record,
         * the same subscription, mailed now */
        CHECK_INT(sign_up(st, &alice, NULL, NULL, "news", T0 + 7200), id);
        REQUIRE(store_subscription_find(st, alice.key, "news", &sub) == 0);
        CHECK_INT(sub.state, SUB_PENDING);
        CHECK_INT(sub.subscriber_id, 0);
        CHECK_INT(sub.created_at, T0);
        CHECK_INT(sub.mailed_at, T0 + 7200);
        REQUIRE(confirm_token(st, 2, id, T0 + 7200));

        /* confirmed with the first mail's token: the subscriber is made of
         * the record that mail was sent for */
        CHECK_INT(confirm(st, 1, T0 + 8000, &alice), 0);
        REQUIRE(store_subscriber_find(st, alice.key, &sid) == 0);
        CHECK_INT(state_of(st, &alice, "news", &other), SUB_CONFIRMED);
        CHECK_INT(other, sid);
        hash_of(1, h);
        REQUIRE(store_token_find(st, h, &row) == 0);
        CHECK_INT(row.state, SUB_CONFIRMED);
        CHECK_INT(row.subscriber_id, sid);
        /* a second confirmation (either token) finds nothing to do, and
         * nothing is left apart to adopt */
        CHECK_INT(confirm(st, 1, T0 + 9000, &alice), 1);
        CHECK_INT(confirm(st, 2, T0 + 9000, &alice), 1);
        CHECK_INT(store_signup_adopt(st, id, T0 + 9000, T0, &other), 1);
        /* one subscription per subscriber and list */
        CHECK(store_subscription_add(st, sid, "news", LANG_EN, T0 + 9000, &other) < 0);
        /* the consent record is append-only, its events a closed set */
        struct consent bad = { .subscriber_id = sid, .list = "news", .event = "bogus", .at = T0,
                               .source = "socket" };
        CHECK(store_consent_add(st, &bad) < 0);

        json_t *ex = NULL;
        REQUIRE(store_export(st, alice.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "email"), alice.email);
        CHECK_STR(str_at(ex, "subscriber", "name"), alice.name);
        /* both records of the sign-up, then the confirmation */
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "event", "signup"), 2);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "event", "confirm"), 1);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "ip", alice.ip), 3);
        json_decref(ex);

        /* unsubscribed by a newsletter's token (which does not expire) */
        hash_of(3, h);
        CHECK_INT(store_token_add(st, h, id, TOKEN_UNSUBSCRIBE, T0 + 9000, 0, 0), 0);
        REQUIRE(store_token_find(st, h, &row) == 0);
        CHECK_INT(row.kind, TOKEN_UNSUBSCRIBE);
        CHECK_INT(row.expires_at, 0);
        CHECK_INT(unsubscribe(st, 3, T0 + 10000), 0);
        CHECK_INT(state_of(st, &alice, "news", &other), SUB_UNSUBSCRIBED);
        CHECK_INT(other, sid);
        CHECK_INT(confirm(st, 2, T0 + 10001, &alice), 1);       /* its old confirmation tokens are gone */
        CHECK_INT(store_token_find(st, h, &row), 0);             /* the unsubscribe token stays */

        /* signed up again by someone else, with another name and spelling:
         * started over, apart from the subscriber, whose row stays as the
         * owner confirmed it */
        CHECK_INT(sign_up(st, &alice, "ALICE@example.org", "Mallory", "news", T0 + 20000), id);
        REQUIRE(store_subscription_find(st, alice.key, "news", &sub) == 0);
        CHECK_INT(sub.state, SUB_PENDING);
        CHECK_INT(sub.subscriber_id, 0);
        CHECK_INT(sub.created_at, T0 + 20000);
        CHECK_INT(sub.mailed_at, T0 + 20000);
        CHECK_INT(store_subscriber_find(st, alice.key, &other), 0);
        CHECK_INT(other, sid);
        REQUIRE(store_batch_commit(st) == 0);
        char *name = peek_text(path, "SELECT name FROM subscriber WHERE id = ?1", sid);
        CHECK_STR(name, alice.name);
        free(name);
        REQUIRE(store_batch_begin(st) == 0);
        /* the old unsubscribe link now: the sign-up joins the subscriber,
         * which keeps its name and address (no confirmed request) */
        CHECK_INT(unsubscribe(st, 3, T0 + 20100), 0);
        CHECK_INT(state_of(st, &alice, "news", &other), SUB_UNSUBSCRIBED);
        CHECK_INT(other, sid);
        REQUIRE(store_export(st, alice.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "email"), alice.email);
        CHECK_STR(str_at(ex, "subscriber", "name"), alice.name);
        json_decref(ex);

        /* and once more by the owner, confirmed: the new name is taken */
        CHECK_INT(sign_up(st, &alice, NULL, "Alice Renamed", "news", T0 + 30000), id);
        REQUIRE(confirm_token(st, 4, id, T0 + 30000));
        CHECK_INT(confirm(st, 4, T0 + 30100, &alice), 0);
        CHECK_INT(state_of(st, &alice, "news", &other), SUB_CONFIRMED);
        CHECK_INT(other, sid);
        REQUIRE(store_export(st, alice.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "name"), "Alice Renamed");
        json_decref(ex);

        /* bounced: what is pending apart joins first, then every pending
         * and confirmed subscription is suppressed; an unsubscribed one
         * stays so */
        int64_t bnews = sign_up(st, &bob, NULL, bob.name, "news", T0);
        REQUIRE(bnews > 0 && confirm_token(st, 10, bnews, T0));
        CHECK_INT(confirm(st, 10, T0 + 100, &bob), 0);
        int64_t bthird = sign_up(st, &bob, NULL, bob.name, "third", T0);
        REQUIRE(bthird > 0 && confirm_token(st, 11, bthird, T0));
        CHECK_INT(confirm(st, 11, T0 + 100, &bob), 0);
        hash_of(12, h);
        CHECK_INT(store_token_add(st, h, bthird, TOKEN_UNSUBSCRIBE, T0 + 100, 0, 0), 0);
        CHECK_INT(unsubscribe(st, 12, T0 + 200), 0);
        REQUIRE(sign_up(st, &bob, NULL, bob.name, "other", T0 + 300) > 0);
        int64_t bsid = 0;
        REQUIRE(store_subscriber_find(st, bob.key, &bsid) == 0);
        CHECK_INT(state_of(st, &bob, "other", &other), SUB_PENDING);
        CHECK_INT(other, 0);
        CHECK_INT(store_signup_adopt_subscriber(st, bsid, T0 + 400), 0);
        CHECK_INT(state_of(st, &bob, "other", &other), SUB_PENDING);
        CHECK_INT(other, bsid);
        int64_t changed = 0;
        CHECK_INT(store_subscriber_bounced(st, bsid, &changed), 0);
        CHECK_INT(changed, 2);
        CHECK_INT(state_of(st, &bob, "news", NULL), SUB_BOUNCED);
        CHECK_INT(state_of(st, &bob, "other", NULL), SUB_BOUNCED);
        CHECK_INT(state_of(st, &bob, "third", NULL), SUB_UNSUBSCRIBED);
        CHECK_INT(state_of(st, &alice, "news", NULL), SUB_CONFIRMED);     /* someone else's */
        CHECK_INT(store_subscriber_bounced(st, bsid, &changed), 0);
        CHECK_INT(changed, 0);
        /* a report about one mail counts once */
        bool added = false;
        struct bounce_row b = { .subscriber_id = bsid, .outbox_id = 77, .kind = "permanent",
                                .status = "5.1.1", .diagnostic = "no such user", .at = T0 + 500 };
        CHECK_INT(store_bounce_add(st, &b, &added), 0);
        CHECK(added);
        CHECK_INT(store_bounce_add(st, &b, &added), 0);
        CHECK(!added);
        /* signed up again after the bounce: a new sign-up, apart */
        CHECK_INT(sign_up(st, &bob, NULL, bob.name, "news", T0 + 600), bnews);
        CHECK_INT(state_of(st, &bob, "news", &other), SUB_PENDING);
        CHECK_INT(other, 0);
        CHECK_INT(store_batch_commit(st), 0);
        store_close(st);
}

/* An address's data everywhere the daemon puts it: a confirmed sign-up
 * (records, tokens, mails), one still apart on another list, a
 * newsletter mail whose reply names the address, a bounce, a test send. */
static void fill_person(struct store *st, const struct person *p, unsigned tok, int64_t *subscriber)
{
        int64_t id = sign_up(st, p, NULL, p->name, "news", T0);
        if (!CHECK(id > 0) || !confirm_token(st, tok, id, T0))
                return;
        CHECK_INT(confirm(st, tok, T0 + 60, p), 0);
        CHECK_INT(store_subscriber_find(st, p->key, subscriber), 0);
        uint8_t h[32];
        hash_of(tok + 1, h);
        CHECK_INT(store_token_add(st, h, id, TOKEN_UNSUBSCRIBE, T0 + 60, 0, 0), 0);
        int64_t other = sign_up(st, p, NULL, p->name, "other", T0 + 120);
        if (CHECK(other > 0))
                confirm_token(st, tok + 2, other, T0 + 120);
}

struct collected {
        int64_t id[64];
        struct outbox_row row[64];
        size_t n;
};

static int collect_row(void *ud, const struct outbox_row *row)
{
        struct collected *c = ud;
        if (c->n < 64) {
                c->id[c->n] = row->id;
                c->row[c->n++] = *row;
        }
        return 0;
}

static void test_export_then_erase(void)
{
        const char *path = path_of("erase.db");
        struct store *st = NULL;
        REQUIRE(store_open(path, &st) == 0);
        REQUIRE(store_batch_begin(st) == 0);
        int64_t a = 0, b = 0;
        fill_person(st, &alice, 20, &a);
        fill_person(st, &bob, 30, &b);
        REQUIRE(a && b && a != b);
        /* a newsletter to both, and a test send to alice */
        struct issue is = { .list = "news", .subject = "Issue 1", .text = "Hello {{name}}" };
        int64_t issue = 0, n = 0, test_issue = 0;
        REQUIRE(store_issue_create(st, &is, NULL, T0 + 200, &issue, &n) == 0);
        CHECK_INT(n, 2);
        REQUIRE(store_issue_create(st, &is, alice.email, T0 + 200, &test_issue, &n) == 0);
        CHECK_INT(n, 1);
        /* the relay refused alice's newsletter, naming her (a reply is kept) */
        struct collected due = { .n = 0 };
        REQUIRE(store_outbox_due(st, T0 + 300, 64, collect_row, &due) == 0);
        int64_t alice_mail = 0;
        for (size_t i = 0; i < due.n; i++)
                if (due.row[i].issue_id == issue && strcmp(due.row[i].email, alice.email) == 0)
                        alice_mail = due.id[i];
        REQUIRE(alice_mail);
        CHECK_INT(store_outbox_sending(st, alice_mail, NULL), 0);
        CHECK_INT(store_outbox_finish(st, alice_mail, MS_FAILED, T0 + 300, T0 + 300,
                                      "550 5.1.1 <Alice@example.org>: Recipient address rejected",
                                      true, NULL), 0);
        bool added = false;
        struct bounce_row br = { .subscriber_id = a, .outbox_id = alice_mail, .issue_id = issue,
                                 .kind = "permanent", .status = "5.1.1",
                                 .diagnostic = "smtp; 550 5.1.1 <alice@example.org>... User unknown",
                                 .at = T0 + 400 };
        CHECK_INT(store_bounce_add(st, &br, &added), 0);
        br.subscriber_id = b;
        br.outbox_id = 0;
        br.diagnostic = "smtp; 452 mailbox of bob@example.net full";
        br.kind = "temporary";
        CHECK_INT(store_bounce_add(st, &br, &added), 0);
        REQUIRE(store_batch_commit(st) == 0);
        /* (the scan sees all of it) */
        CHECK_UINT(held_of(path, &alice, false), 5);
        CHECK_UINT(held_of(path, &bob, false), 5);

        /* the export: everything about alice, nothing about bob */
        json_t *ex = NULL;
        REQUIRE(store_export(st, alice.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "email"), alice.email);
        CHECK_STR(str_at(ex, "subscriber", "name"), alice.name);
        json_t *subs = json_object_get(ex, "subscriptions");
        CHECK_UINT(json_array_size(subs), 2);
        CHECK_UINT(count_where(subs, "list", "news"), 1);
        CHECK_UINT(count_where(subs, "list", "other"), 1);
        CHECK_UINT(count_where(subs, "state", "confirmed"), 1);
        CHECK_UINT(count_where(subs, "state", "pending"), 1);
        CHECK_UINT(count_where(subs, "confirm_ip", alice.ip), 1);
        json_t *consent = json_object_get(ex, "consent");
        /* the confirmed sign-up's record, its confirmation, and the record
         * of the one still apart */
        CHECK_UINT(json_array_size(consent), 3);
        CHECK_UINT(count_where(consent, "event", "signup"), 2);
        CHECK_UINT(count_where(consent, "event", "confirm"), 1);
        CHECK_UINT(count_where(consent, "user_agent", alice.ua), 3);
        CHECK_UINT(count_where(consent, "consent_text", "Yes, send me the newsletter"), 2);
        json_t *mails = json_object_get(ex, "mails");
        /* two confirmation mails and the newsletter */
        CHECK_UINT(count_where(mails, "kind", "confirm"), 2);
        CHECK_UINT(count_where(mails, "kind", "newsletter"), 1);
        CHECK_UINT(count_where(mails, "state", "failed"), 1);
        CHECK_UINT(json_array_size(json_object_get(ex, "tokens")), 3);
        char *dump = json_dumps(ex, JSON_COMPACT);
        REQUIRE(dump);
        CHECK(!strstr(dump, "bob") && !strstr(dump, "Quokka") && !strstr(dump, bob.ip) &&
              !strstr(dump, bob.ua));
        free(dump);
        json_decref(ex);
        CHECK_INT(store_export(st, "nobody@example.org", &ex), 1);

        /* the erase: nothing of alice anywhere in the file, all of bob */
        REQUIRE(store_batch_begin(st) == 0);
        CHECK_INT(store_erase(st, alice.key), 0);
        CHECK_INT(store_erase(st, alice.key), 1);
        CHECK_INT(store_erase(st, "nobody@example.org"), 1);
        REQUIRE(store_batch_commit(st) == 0);
        CHECK_INT(store_export(st, alice.key, &ex), 1);
        CHECK_UINT(held_of(path, &alice, true), 0);
        CHECK(!file_holds(path, "Zebrafish", true));
        CHECK_UINT(held_of(path, &bob, false), 5);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM outbox WHERE issue_id = ?1", test_issue), 0);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM consent WHERE subscriber_id = ?1", a), 0);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM subscription WHERE subscriber_id = ?1", a), 0);
        REQUIRE(store_export(st, bob.key, &ex) == 0);
        CHECK_UINT(json_array_size(json_object_get(ex, "subscriptions")), 2);
        CHECK_UINT(json_array_size(json_object_get(ex, "consent")), 3);
        CHECK_UINT(count_where(json_object_get(ex, "mails"), "kind", "newsletter"), 1);
        json_decref(ex);
        /* nor in the bytes of the file, once the WAL is folded in (what
         * the daemon does after an erase), deleted content overwritten */
        CHECK_INT(store_checkpoint(st), 0);
        char wal[300];
        snprintf(wal, sizeof(wal), "%s-wal", path);
        const char *raw[] = { "lice@example.org", "Alice Zebrafish", alice.ip, alice.ua };
        for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
                CHECK(!bytes_hold(path, raw[i], true));
                CHECK(!bytes_hold(wal, raw[i], true));
        }
        CHECK(bytes_hold(path, bob.name, false));

        /* an address known only from a test send, or only from a sign-up
         * still apart, is erased too */
        REQUIRE(store_batch_begin(st) == 0);
        REQUIRE(store_issue_create(st, &is, "carol@example.com", T0 + 500, &test_issue, &n) == 0);
        REQUIRE(sign_up(st, &dave, NULL, dave.name, "news", T0 + 500) > 0);
        REQUIRE(store_export(st, dave.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "email"), dave.email);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "ip", dave.ip), 1);
        CHECK_UINT(json_array_size(json_object_get(ex, "mails")), 1);
        json_decref(ex);
        CHECK_INT(store_erase(st, "carol@example.com"), 0);
        CHECK_INT(store_erase(st, dave.key), 0);
        CHECK_INT(store_erase(st, dave.key), 1);
        REQUIRE(store_batch_commit(st) == 0);
        CHECK(!file_holds(path, "carol@example.com", true));
        CHECK_UINT(held_of(path, &dave, true), 0);
        CHECK_UINT(held_of(path, &bob, false), 5);
        store_close(st);
}

/* Housekeeping until its run is done, each slice committed as the daemon's
 * loop does. */
static void housekeep(struct store *st, const struct conf *c, struct housekeeping *hk, int64_t now)
{
        housekeeping_request(hk, c, now);
        for (int i = 0; i < 100000; i++) {
                int r = housekeeping_work(hk, st, now);
                CHECK_INT(store_batch_commit(st), 0);   /* (0 when none is open) */
                if (r == HOUSEKEEPING_LATER) {
                        usleep(1000);
                        continue;
                }
                if (!CHECK(r >= 0) || r == 0)
                        return;
        }
        CHECK(!"housekeeping never finished");
}

/* Apply a staged import to its end, two addresses a slice (so that every
 * test of an import crosses slices); 0, or what failed. */
static int import_all(struct store *st, const struct import_spec *spec, struct import_result *res)
{
        int r;
        memset(res, 0, sizeof(*res));
        while ((r = store_import_apply(st, spec, 2, res)) == 0)
                ;
        return r == 1 ? 0 : r;
}

static void test_expiry(void)
{
        const char *path = path_of("expiry.db");
        struct conf c;
        conf_defaults(&c);
        CHECK_INT(c.confirm_ttl, TTL);
        const int64_t retention = (int64_t)c.expired_retention;
        const int64_t now = T0 + TTL + 500;     /* sign-ups mailed at or before T0 + 500 expire */
        struct store *st = NULL;
        REQUIRE(store_open(path, &st) == 0);
        REQUIRE(store_batch_begin(st) == 0);
        /* old and apart */
        int64_t a = sign_up(st, &alice, NULL, alice.name, "news", T0);
        REQUIRE(a > 0 && confirm_token(st, 40, a, T0));
        /* old and linked: an `import --pending` */
        REQUIRE(store_import_clear(st) == 0);
        REQUIRE(store_import_stage(st, carol.key, carol.email, carol.name) == 0);
        struct import_spec spec = { .list = "news", .pending = true, .lang = LANG_EN,
                                    .source = "import:old.csv", .text_version = "0123456789abcdef",
                                    .now = T0 };
        struct import_result res;
        REQUIRE(import_all(st, &spec, &res) == 0);
        CHECK_INT(res.added, 1);
        struct subscription sub;
        REQUIRE(store_subscription_find(st, carol.key, "news", &sub) == 0);
        CHECK(sub.subscriber_id != 0);
        int64_t cid = sub.id;
        REQUIRE(confirm_token(st, 41, cid, T0));
        /* fresh by one second */
        int64_t b = sign_up(st, &bob, NULL, bob.name, "news", T0 + 501);
        REQUIRE(b > 0 && confirm_token(st, 42, b, T0 + 501));
        /* long confirmed: never expires */
        int64_t d = sign_up(st, &dave, NULL, dave.name, "news", T0 - 86400);
        REQUIRE(d > 0 && confirm_token(st, 43, d, T0 - 86400));
        CHECK_INT(confirm(st, 43, T0 - 86000, &dave), 0);
        REQUIRE(store_batch_commit(st) == 0);
        CHECK_UINT(held_of(path, &alice, false), 5);
        CHECK_UINT(held_of(path, &carol, false), 3);   /* (an import has address and name only) */

        int64_t to_expire = 0, to_purge = 0;
        CHECK_INT(store_expiry_count(st, now - TTL, now - retention, now - TTL - retention,
                                     &to_expire, &to_purge), 0);
        CHECK_INT(to_expire, 2);
        CHECK_INT(to_purge, 0);

        struct housekeeping hk = { .active = false };
        housekeep(st, &c, &hk, now);
        CHECK_INT(hk.stripped, 2);
        CHECK_INT(hk.purged, 0);
        CHECK(!hk.active);
        /* alice and carol: address, name and record gone, unsent mail too */
        CHECK_UINT(held_of(path, &alice, true), 0);
        CHECK_UINT(held_of(path, &carol, true), 0);
        CHECK_INT(store_subscription_find(st, alice.key, "news", &sub), 1);
        CHECK_INT(store_subscription_find(st, carol.key, "news", &sub), 1);
        int64_t id;
        CHECK_INT(store_subscriber_find(st, carol.key, &id), 1);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM outbox WHERE subscription_id = ?1", a), 0);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM outbox WHERE subscription_id = ?1", cid), 0);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM consent WHERE list = 'news' AND event <> 'confirm'"
                                 " AND subscriber_id NOT IN (SELECT id FROM subscriber)", 0), 0);
        /* their links still say "expired" */
        uint8_t h[32];
        struct token_row row;
        hash_of(40, h);
        REQUIRE(store_token_find(st, h, &row) == 0);
        CHECK(row.stripped || row.state == SUB_EXPIRED);
        CHECK_INT(confirm(st, 40, now, &alice), 1);
        hash_of(41, h);
        REQUIRE(store_token_find(st, h, &row) == 0);
        CHECK_INT(row.state, SUB_EXPIRED);
        CHECK_INT(confirm(st, 41, now, &carol), 1);
        /* bob (fresh) and dave (confirmed) as they were */
        CHECK_UINT(held_of(path, &bob, false), 5);
        CHECK_UINT(held_of(path, &dave, false), 5);
        CHECK_INT(state_of(st, &bob, "news", NULL), SUB_PENDING);
        CHECK_INT(state_of(st, &dave, "news", NULL), SUB_CONFIRMED);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM outbox WHERE subscription_id = ?1", b), 1);
        REQUIRE(store_batch_begin(st) == 0);
        CHECK_INT(confirm(st, 42, now, &bob), 0);
        CHECK_INT(store_batch_commit(st), 0);
        CHECK_INT(store_expiry_count(st, now - TTL, now - retention, now - TTL - retention,
                                     &to_expire, &to_purge), 0);
        CHECK_INT(to_expire, 0);

        /* expired_retention later, to the second: what stays of both goes */
        const int64_t later = now + retention;
        housekeep(st, &c, &hk, later);
        CHECK_INT(hk.purged, 2);
        hash_of(40, h);
        CHECK_INT(store_token_find(st, h, &row), 1);
        hash_of(41, h);
        CHECK_INT(store_token_find(st, h, &row), 1);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM subscription WHERE id = ?1", a), 0);
        CHECK_INT(peek_int(path, "SELECT count(*) FROM subscription WHERE id = ?1", cid), 0);
        CHECK_INT(state_of(st, &bob, "news", NULL), SUB_CONFIRMED);
        CHECK_INT(state_of(st, &dave, "news", NULL), SUB_CONFIRMED);
        CHECK_UINT(held_of(path, &dave, false), 5);
        store_close(st);
        conf_free(&c);
}

/* Confirmation mails an import queued (priority PRIO_IMPORT), by address. */
static size_t import_mails(struct store *st, int64_t now, const char *email)
{
        struct collected due = { .n = 0 };
        if (!CHECK_INT(store_outbox_due(st, now, 64, collect_row, &due), 0))
                return 0;
        size_t n = 0;
        for (size_t i = 0; i < due.n; i++)
                n += due.row[i].priority == PRIO_IMPORT && due.row[i].kind == MAIL_CONFIRM &&
                     (!email || strcmp(due.row[i].email, email) == 0);
        return n;
}

static void test_import(void)
{
        const char *path = path_of("import.db");
        struct store *st = NULL;
        REQUIRE(store_open(path, &st) == 0);
        REQUIRE(store_batch_begin(st) == 0);
        /* on the list already: a confirmed subscriber, and a sign-up apart */
        int64_t x = sign_up(st, &alice, NULL, alice.name, "news", T0);
        REQUIRE(x > 0 && confirm_token(st, 50, x, T0));
        CHECK_INT(confirm(st, 50, T0 + 10, &alice), 0);
        REQUIRE(sign_up(st, &bob, NULL, bob.name, "news", T0) > 0);

        REQUIRE(store_import_clear(st) == 0);
        CHECK_INT(store_import_stage(st, carol.key, carol.email, carol.name), 0);
        CHECK_INT(store_import_stage(st, dave.key, dave.email, NULL), 0);
        CHECK_INT(store_import_stage(st, carol.key, "CAROL@example.com", "Carol Again"), 1);
        CHECK_INT(store_import_stage(st, alice.key, alice.key, "Not Alice"), 0);
        CHECK_INT(store_import_stage(st, bob.key, bob.email, "Not Bob"), 0);
        struct import_spec spec = { .list = "news", .pending = false, .lang = LANG_DE,
                                    .source = "import:first.csv", .now = T0 + 100 };
        struct import_result res;
        CHECK_INT(import_all(st, &spec, &res), 0);
        CHECK_INT(res.existing, 2);
        CHECK_INT(res.added, 2);
        int64_t sid = 0;
        CHECK_INT(state_of(st, &carol, "news", &sid), SUB_CONFIRMED);
        CHECK(sid != 0);
        CHECK_INT(state_of(st, &dave, "news", NULL), SUB_CONFIRMED);
        json_t *ex = NULL;
        REQUIRE(store_export(st, carol.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "name"), carol.name);       /* the first line's */
        CHECK_STR(str_at(ex, "subscriber", "email"), carol.email);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "event", "import"), 1);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "source", "import:first.csv"), 1);
        CHECK_UINT(count_where(json_object_get(ex, "subscriptions"), "lang", "de"), 1);
        json_decref(ex);
        /* the existing ones left alone: alice's name, bob still apart */
        CHECK_INT(state_of(st, &alice, "news", NULL), SUB_CONFIRMED);
        REQUIRE(store_export(st, alice.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "name"), alice.name);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "event", "import"), 0);
        json_decref(ex);
        CHECK_INT(state_of(st, &bob, "news", &sid), SUB_PENDING);
        CHECK_INT(sid, 0);
        CHECK_INT(store_subscriber_find(st, bob.key, &sid), 1);
        CHECK_UINT(import_mails(st, T0 + 100, NULL), 0);        /* confirmed: no mail */

        /* --pending, to another list: linked sign-ups with a confirmation
         * mail each, the existing subscriber's among them */
        REQUIRE(store_import_clear(st) == 0);
        CHECK_INT(store_import_stage(st, "erin@example.com", "erin@example.com", "Erin"), 0);
        CHECK_INT(store_import_stage(st, alice.key, alice.key, "Not Alice"), 0);
        CHECK_INT(store_import_stage(st, "erin@example.com", "erin@example.com", NULL), 1);
        struct import_spec pend = { .list = "other", .pending = true, .lang = LANG_EN,
                                    .source = "import:second.csv", .text_version = "fedcba9876543210",
                                    .now = T0 + 200 };
        CHECK_INT(import_all(st, &pend, &res), 0);
        CHECK_INT(res.existing, 0);
        CHECK_INT(res.added, 2);
        struct person erin = { "erin@example.com", "erin@example.com", "Erin", NULL, NULL };
        CHECK_INT(state_of(st, &erin, "other", &sid), SUB_PENDING);
        CHECK(sid != 0);
        int64_t alice_id = 0, linked = 0;
        REQUIRE(store_subscriber_find(st, alice.key, &alice_id) == 0);
        CHECK_INT(state_of(st, &alice, "other", &linked), SUB_PENDING);
        CHECK_INT(linked, alice_id);
        CHECK_UINT(import_mails(st, T0 + 200, NULL), 2);
        CHECK_UINT(import_mails(st, T0 + 200, "erin@example.com"), 1);
        CHECK_UINT(import_mails(st, T0 + 200, alice.email), 1);
        REQUIRE(store_export(st, "erin@example.com", &ex) == 0);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "event", "signup"), 1);
        CHECK_UINT(count_where(json_object_get(ex, "consent"), "text_version", "fedcba9876543210"), 1);
        json_decref(ex);
        REQUIRE(store_export(st, alice.key, &ex) == 0);
        CHECK_STR(str_at(ex, "subscriber", "name"), alice.name);
        json_decref(ex);
        /* the same file again: all there already */
        REQUIRE(store_import_clear(st) == 0);
        CHECK_INT(store_import_stage(st, "erin@example.com", "erin@example.com", "Erin"), 0);
        CHECK_INT(import_all(st, &pend, &res), 0);
        CHECK_INT(res.existing, 1);
        CHECK_INT(res.added, 0);
        CHECK_UINT(import_mails(st, T0 + 200, NULL), 2);

        /* a cleared stage applies nothing */
        REQUIRE(store_import_clear(st) == 0);
        CHECK_INT(store_import_stage(st, "frank@example.com", "frank@example.com", NULL), 0);
        REQUIRE(store_import_clear(st) == 0);
        CHECK_INT(import_all(st, &spec, &res), 0);
        CHECK_INT(res.added, 0);
        CHECK_INT(store_subscriber_find(st, "frank@example.com", &sid), 1);
        CHECK_INT(store_batch_commit(st), 0);
        store_close(st);
}

int main(void)
{
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        RUN(test_settings_read_back);
        RUN(test_a_sync_for_each_commit_not_on_disk);
        RUN(test_an_empty_file_it_did_not_make_is_refused);
        RUN(test_a_damaged_file_is_refused);
        RUN(test_subscription_states);
        RUN(test_export_then_erase);
        RUN(test_expiry);
        RUN(test_import);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        return unit_finish();
}
