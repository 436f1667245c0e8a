/* What the store's files share and nothing outside them sees: the
 * connection, the statements it caches, and the few helpers that run
 * them.  Each store_*.c keeps its own SQL beside the code that binds it:
 *
 *     static struct store_sql q_sub_mailed = STORE_SQL(
 *             "UPDATE subscription SET mailed_at = ?2 WHERE id = ?1");
 *     sqlite3_stmt *s = db_stmt(st, &q_sub_mailed);
 *
 * A statement is prepared on its first use and kept for the connection's
 * life; every one is run with bound parameters only. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

/* One SQL statement of the store.  `slot` is its place in every
 * connection's cache, handed out at first use. */
struct store_sql {
        const char *text;
        unsigned slot;          /* 0: none yet */
};
#define STORE_SQL(sql) { .text = (sql), .slot = 0 }

/* How long a connection (the main one, the checkpointer's) waits for a
 * lock the other holds before its statement fails with SQLITE_BUSY. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* More statements than the store has: a new one past this is a bug caught
 * by the first test that runs it. */
#define STORE_STMTS_MAX 160

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
        sqlite3 *db;                    /* the one connection that writes */
        sqlite3_stmt *stmts[STORE_STMTS_MAX];
        bool in_batch;
        bool wal_unsynced;              /* commits in the WAL not yet synced by us */
        unsigned long syncs;            /* explicit syncs of the WAL, for the log */
        struct checkpointer ckpt;
        int wal_frames;                 /* in the WAL after the last commit */
};

/* The statement, reset and with no bindings, ready for a new run. */
sqlite3_stmt *db_stmt(struct store *st, struct store_sql *q);
/* Step a statement that returns no rows; 0 or -errno (logged). */
int db_run(struct store *st, struct store_sql *q, sqlite3_stmt *s);
/* Bind up to two integers (?1, ?2), run, and add the rows changed to
 * *changes when not NULL. */
int db_run_ints(struct store *st, struct store_sql *q, int n, int64_t a, int64_t b,
                int64_t *changes);
/* The first column of the first row, with one integer bound. */
int db_count(struct store *st, struct store_sql *q, int64_t a, int64_t *n);
/* Log what failed and map SQLite's code to -errno. */
int db_fail(struct store *st, int rc, const char *what);
int db_errno(int rc);
int db_exec(struct store *st, const char *sql);
void db_bind_text_or_null(sqlite3_stmt *s, int i, const char *v);
/* A text column copied (NULL for NULL). */
char *db_column_dup(sqlite3_stmt *s, int i);

/* The names the schema gives the states, in the order of their enums. */
extern const char *const db_sub_state_names[SUB_BOUNCED + 1];
extern const char *const db_mail_state_names[MS_SKIPPED + 1];
extern const char *const db_issue_state_names[ISSUE_CANCELLED + 1];
extern const char *const db_token_kind_names[TOKEN_UNSUBSCRIBE + 1];
extern const char *const db_mail_kind_names[MAIL_WELCOME + 1];
/* The index of `s` among `names`, -1 when it is none of them. */
int db_name_index(const char *const *names, size_t n, const unsigned char *s);
#define DB_NAME_INDEX(names, s) db_name_index(names, sizeof(names) / sizeof(names[0]), s)

/* store_checkpoint.c: the background checkpointer of `path`, and its end. */
void checkpointer_start(struct store *st, const char *path);
void checkpointer_stop(struct store *st);
