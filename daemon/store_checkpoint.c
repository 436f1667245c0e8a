/*
 * store_checkpoint.c - copying the WAL into the database file.  A thread of
 * its own with a second connection that never writes a row runs passive
 * checkpoints, so that the requests never wait behind that I/O; the writer
 * wakes it after commits (the WAL hook) and takes over only when the WAL
 * grows past a bound.  Owns that thread and its connection.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "store_db.h"

/* The WAL is checkpointed in the background once it holds this many
 * frames (pages); past the second mark, the writer finishes the job (see
 * wal_hook), so the WAL stays bounded. */
#define CHECKPOINT_FRAMES       1000
#define CHECKPOINT_FRAMES_MAX   4000

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

void checkpointer_start(struct store *st, const char *path)
{
        struct checkpointer *c = &st->ckpt;
        sqlite3_wal_hook(st->db, wal_hook, st);
        int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        /* a connection knows the database is in WAL mode only once it read it */
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(c->db, "PRAGMA journal_mode", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
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

void checkpointer_stop(struct store *st)
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

int store_checkpoint(struct store *st)
{
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
        if (rc != SQLITE_OK)
                return db_fail(st, rc, "checkpoint");
        return 0;
}
