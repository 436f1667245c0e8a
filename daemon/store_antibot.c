/*
 * store_antibot.c - the solved sign-up challenges, kept until they expire
 * so that each opens one sign-up only (sql/002-antibot.sql).  Knows nothing
 * of how a challenge is made or checked (altcha.c); the expired ones are
 * purged by housekeeping (store_expire.c).
 */
#include <sqlite3.h>

#include "store_db.h"

static struct store_sql q_challenge_use = STORE_SQL(
        "INSERT INTO challenge_used (challenge, expires_at) VALUES (?1, ?2)"
        " ON CONFLICT (challenge) DO NOTHING");
int store_challenge_use(struct store *st, const uint8_t challenge[32], int64_t expires)
{
        sqlite3_stmt *s = db_stmt(st, &q_challenge_use);
        sqlite3_bind_blob(s, 1, challenge, 32, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, expires);
        int r = db_run(st, &q_challenge_use, s);
        if (r < 0)
                return r;
        return sqlite3_changes64(st->db) == 1 ? 0 : 1;
}
