/*
 * store_imap.c - the messages the IMAP intake has judged, by digest
 * (sql/004-reach.sql), so that none is handled twice, and their purge
 * after IMAP_SEEN_KEEP (housekeeping.c).  Knows nothing of IMAP or of
 * bounces: the intake (imap_judge.c, imap.c) decides, this records.
 */
#include <sqlite3.h>

#include "store_db.h"

static struct store_sql q_imap_seen_get = STORE_SQL(
        "SELECT handled FROM imap_seen WHERE digest = ?1");
int store_imap_seen(struct store *st, const uint8_t digest[32], bool *handled)
{
        sqlite3_stmt *s = db_stmt(st, &q_imap_seen_get);
        sqlite3_bind_blob(s, 1, digest, 32, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *handled = sqlite3_column_int(s, 0) != 0;
                sqlite3_reset(s);
                return 1;
        }
        sqlite3_reset(s);
        return rc == SQLITE_DONE ? 0 : db_fail(st, rc, "imap_seen");
}

static struct store_sql q_imap_seen_add = STORE_SQL(
        "INSERT INTO imap_seen (digest, handled, at) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (digest) DO UPDATE SET handled = max(handled, excluded.handled)");
int store_imap_seen_add(struct store *st, const uint8_t digest[32], bool handled, int64_t now)
{
        sqlite3_stmt *s = db_stmt(st, &q_imap_seen_add);
        sqlite3_bind_blob(s, 1, digest, 32, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, handled ? 1 : 0);
        sqlite3_bind_int64(s, 3, now);
        return db_run(st, &q_imap_seen_add, s);
}

/* (by the imap_seen_at index) */
static struct store_sql q_imap_seen_purge = STORE_SQL(
        "DELETE FROM imap_seen WHERE digest IN (SELECT digest FROM imap_seen"
        " WHERE at <= ?1 LIMIT ?2)");
int store_imap_seen_purge_slice(struct store *st, int64_t before, unsigned limit, int64_t *n)
{
        return db_run_ints(st, &q_imap_seen_purge, 2, before, limit, n);
}
