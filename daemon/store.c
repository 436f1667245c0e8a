/*
 * store.c - the database connection: open, migrate, transactions and
 * syncs.  One SQLite connection for all reads and writes, used only by the
 * main thread: the single writer.  WAL with synchronous=NORMAL, and an
 * explicit sync of the WAL after every commit a client's answer waits on
 * (store_sync), so an acknowledged sign-up survives a crash and a power
 * loss.  The schema is sql/, applied in one transaction and recorded in
 * PRAGMA user_version; nothing here makes a table at run time.  Also the
 * helpers the other store_*.c run their statements with (store_db.h).
 * Knows SQL, nothing of sockets or SMTP.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "buf.h"
#include "embedded.h"
#include "log.h"
#include "store_db.h"

const char *const db_sub_state_names[SUB_BOUNCED + 1] = {
        [SUB_PENDING] = "pending", [SUB_CONFIRMED] = "confirmed", [SUB_EXPIRED] = "expired",
        [SUB_UNSUBSCRIBED] = "unsubscribed", [SUB_BOUNCED] = "bounced",
};
const char *const db_mail_state_names[MS_SKIPPED + 1] = {
        [MS_QUEUED] = "queued", [MS_SENDING] = "sending", [MS_SENT] = "sent",
        [MS_DEFERRED] = "deferred", [MS_FAILED] = "failed", [MS_SKIPPED] = "skipped",
};
const char *const db_issue_state_names[ISSUE_CANCELLED + 1] = {
        [ISSUE_SENDING] = "sending", [ISSUE_PAUSED] = "paused", [ISSUE_CANCELLED] = "cancelled",
};
const char *const db_token_kind_names[TOKEN_UNSUBSCRIBE + 1] = {
        [TOKEN_CONFIRM] = "confirm", [TOKEN_UNSUBSCRIBE] = "unsubscribe",
};
const char *const db_mail_kind_names[MAIL_WELCOME + 1] = {
        [MAIL_CONFIRM] = "confirm", [MAIL_NEWSLETTER] = "newsletter", [MAIL_WELCOME] = "welcome",
};

const char *sub_state_name(enum sub_state s)
{
        return db_sub_state_names[s];
}

const char *issue_state_name(enum issue_state s)
{
        return db_issue_state_names[s];
}

const char *mail_state_name(enum mail_state s)
{
        return db_mail_state_names[s];
}

int db_name_index(const char *const *names, size_t n, const unsigned char *s)
{
        if (s)
                for (size_t i = 0; i < n; i++)
                        if (strcmp(names[i], (const char *)s) == 0)
                                return (int)i;
        return -1;
}

/* ---- running statements (store_db.h) ---- */

int db_errno(int rc)
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

int db_fail(struct store *st, int rc, const char *what)
{
        log_err("database: %s: %s", what, sqlite3_errmsg(st->db));
        return db_errno(rc);
}

static unsigned stmt_slots;     /* handed out so far, to every store_sql */

sqlite3_stmt *db_stmt(struct store *st, struct store_sql *q)
{
        if (!q->slot) {
                q->slot = __atomic_add_fetch(&stmt_slots, 1, __ATOMIC_RELAXED);
                assert(q->slot < STORE_STMTS_MAX);
        }
        sqlite3_stmt *s = st->stmts[q->slot];
        if (!s) {
                /* the SQL is the store's own and the schema is sql/'s: a
                 * statement that does not prepare is a bug */
                int rc = sqlite3_prepare_v3(st->db, q->text, -1, SQLITE_PREPARE_PERSISTENT, &s,
                                            NULL);
                if (rc != SQLITE_OK)
                        fatal("database: cannot prepare \"%s\": %s", q->text,
                              sqlite3_errmsg(st->db));
                st->stmts[q->slot] = s;
                return s;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
}

int db_run(struct store *st, struct store_sql *q, sqlite3_stmt *s)
{
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
                return db_fail(st, rc, q->text);
        return 0;
}

void db_bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
        if (v)
                sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(s, i);
}

int db_exec(struct store *st, const char *sql)
{
        char *msg = NULL;
        int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                log_err("database: %s", msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return db_errno(rc);
        }
        return 0;
}

static int migrate(struct store *st)
{
        sqlite3_stmt *s;
        int version = 0, target = 0, r;

        if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
                return db_fail(st, SQLITE_ERROR, "user_version");
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
        if ((r = db_exec(st, "BEGIN EXCLUSIVE")) < 0)
                return r;
        for (int i = version; i < target; i++) {
                if ((r = db_exec(st, embedded_migrations[i].text)) < 0) {
                        log_err("database migration %s failed", embedded_migrations[i].name);
                        if (!sqlite3_get_autocommit(st->db))
                                db_exec(st, "ROLLBACK");
                        return r;
                }
        }
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", target);
        if (((r = db_exec(st, sql)) < 0 || (r = db_exec(st, "COMMIT")) < 0) &&
            !sqlite3_get_autocommit(st->db))
                db_exec(st, "ROLLBACK");
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

/* A savepoint's journal stays in memory up to this size.  Below 128 KiB:
 * SQLite (3.40) writes an overflowing journal to its file in one write,
 * and its unix layer writes at most 128 KiB - 1 bytes at a time, so a
 * larger threshold fails the first statement that overflows it with
 * SQLITE_FULL. */
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
         * (a sign-up's are more than SQLite's default of 64 KiB): kept in
         * memory up to STMT_SPILL, since a temporary file costs writes on
         * every sign-up. */
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, STMT_SPILL);
        int rc = sqlite3_open_v2(path, &st->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                                 NULL);
        if (rc != SQLITE_OK) {
                log_err("database %s: %s", path, st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
                sqlite3_close(st->db);
                free(st);
                return db_errno(rc);
        }
        sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
        sqlite3_extended_result_codes(st->db, 1);
        /* no statement may corrupt the file by writing the schema or
         * SQLite's internals (only a migration may need to: migrate()) */
        sqlite3_db_config(st->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
        if ((r = db_exec(st, "PRAGMA journal_mode = WAL")) < 0 ||
            (r = db_exec(st, "PRAGMA synchronous = NORMAL")) < 0 ||
            (r = check_synchronous(st)) < 0 ||
            (r = db_exec(st, "PRAGMA foreign_keys = ON")) < 0 ||
            (r = db_exec(st, "PRAGMA trusted_schema = OFF")) < 0 ||
            (r = db_exec(st, "PRAGMA secure_delete = ON")) < 0 ||
            (r = migrate(st)) < 0 ||
            (r = db_exec(st, embedded_scratch[0].text)) < 0) {
                r = open_failure(st, path, r);
                store_close(st);
                return r;
        }
        checkpointer_start(st, path);
        *out = st;
        return 0;
}

void store_close(struct store *st)
{
        if (!st)
                return;
        checkpointer_stop(st);
        if (st->db && !sqlite3_get_autocommit(st->db))
                db_exec(st, "ROLLBACK");
        for (size_t i = 0; i < STORE_STMTS_MAX; i++)
                sqlite3_finalize(st->stmts[i]);
        sqlite3_close(st->db);
        free(st);
}

static struct store_sql q_begin = STORE_SQL("BEGIN IMMEDIATE");
/* ---- transactions ---- */

int store_batch_begin(struct store *st)
{
        if (st->in_batch)
                return 0;
        int r = db_run(st, &q_begin, db_stmt(st, &q_begin));
        if (r == 0)
                st->in_batch = true;
        return r;
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

static struct store_sql q_commit = STORE_SQL("COMMIT");
static struct store_sql q_rollback = STORE_SQL("ROLLBACK");
int store_batch_commit(struct store *st)
{
        if (!st->in_batch)
                return 0;
        int r = db_run(st, &q_commit, db_stmt(st, &q_commit));
        if (r < 0) {
                if (!sqlite3_get_autocommit(st->db))
                        db_run(st, &q_rollback, db_stmt(st, &q_rollback));
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
                db_run(st, &q_rollback, db_stmt(st, &q_rollback));
        st->in_batch = false;
}

static struct store_sql q_savepoint = STORE_SQL("SAVEPOINT req");
int store_savepoint(struct store *st)
{
        return db_run(st, &q_savepoint, db_stmt(st, &q_savepoint));
}

static struct store_sql q_release = STORE_SQL("RELEASE req");
int store_release(struct store *st)
{
        return db_run(st, &q_release, db_stmt(st, &q_release));
}

static struct store_sql q_rollback_to = STORE_SQL("ROLLBACK TO req");
void store_rollback_to(struct store *st)
{
        /* ROLLBACK TO keeps the savepoint open; RELEASE it afterwards */
        if (db_run(st, &q_rollback_to, db_stmt(st, &q_rollback_to)) == 0)
                db_run(st, &q_release, db_stmt(st, &q_release));
}

/* ---- reading rows ---- */

char *db_column_dup(sqlite3_stmt *s, int i)
{
        if (sqlite3_column_type(s, i) == SQLITE_NULL)
                return NULL;
        return xstrndup((const char *)sqlite3_column_text(s, i), (size_t)sqlite3_column_bytes(s, i));
}


/* Run a statement with up to two integer parameters; count changed rows. */
int db_run_ints(struct store *st, struct store_sql *q, int n, int64_t a, int64_t b,
                int64_t *changes)
{
        sqlite3_stmt *s = db_stmt(st, q);
        if (n >= 1)
                sqlite3_bind_int64(s, 1, a);
        if (n >= 2)
                sqlite3_bind_int64(s, 2, b);
        int r = db_run(st, q, s);
        if (r == 0 && changes)
                *changes = sqlite3_changes64(st->db);
        return r;
}

int db_count(struct store *st, struct store_sql *q, int64_t a, int64_t *n)
{
        sqlite3_stmt *s = db_stmt(st, q);
        sqlite3_bind_int64(s, 1, a);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *n = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return rc == SQLITE_ROW ? 0 : db_fail(st, rc, q->text);
}
