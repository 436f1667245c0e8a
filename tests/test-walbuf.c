/*
 * test-walbuf.c - the WAL-gathering VFS against SQLite's own: the same
 * random transactions (spilling pages mid-way through a tiny page cache,
 * so that frames are written again and checksums rewritten; some rolled
 * back; durable and not) go into one database through walbuf and into
 * another through the default VFS.  After every commit a third connection,
 * reading the walbuf database through the default VFS, must see exactly
 * what the reference database holds: what SQLite published is in the file.
 * Then a writer is killed (SIGKILL) at a random moment: every commit it had
 * reported must be there when the database is opened again, and SQLite's
 * recovery must find the WAL intact.
 */
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "walbuf.h"

static char dir[] = "/tmp/test-walbuf-XXXXXX";
static const char *vfs;

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next_random(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static sqlite3 *open_db(const char *name, const char *with_vfs)
{
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, with_vfs);
        if (rc != SQLITE_OK) {
                fprintf(stderr, "open %s: %s\n", path, sqlite3_errstr(rc));
                exit(2);
        }
        sqlite3_busy_timeout(db, 5000);
        return db;
}

static int exec(sqlite3 *db, const char *sql)
{
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK)
                fprintf(stderr, "%.120s: %s\n", sql, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        return rc;
}

static const char schema[] =
        "PRAGMA journal_mode = WAL;"
        "PRAGMA cache_size = 12;"       /* a transaction spills pages mid-way */
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k BLOB UNIQUE, v TEXT);";

/* Everything in the table, as one text: compared across databases. */
static char *digest(sqlite3 *db)
{
        sqlite3_stmt *s = NULL;
        char *out = NULL;
        if (sqlite3_prepare_v2(db,
                               "SELECT count(*) || ':' || coalesce(sum(id), 0) || ':' ||"
                               " coalesce(group_concat(hex(k) || v, ','), '')"
                               " FROM (SELECT * FROM t ORDER BY id)",
                               -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
                out = strdup((const char *)sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        return out;
}

/* One random transaction's statements, the same text for both databases. */
static void random_transaction(char *sql, size_t size)
{
        size_t n = 0;
        unsigned ops = 1 + (unsigned)(next_random() % 60);
        for (unsigned i = 0; i < ops && n + 300 < size; i++) {
                uint64_t r = next_random();
                unsigned id = 1 + (unsigned)(r % 3000);
                switch ((r >> 32) % 4) {
                case 0:
                case 1:         /* a row with a key far from its neighbours' */
                        n += (size_t)snprintf(sql + n, size - n,
                                              "INSERT OR REPLACE INTO t VALUES (%u, x'%016llx%016llx',"
                                              " printf('%%.*c', %u, 'v'));",
                                              id, (unsigned long long)next_random(),
                                              (unsigned long long)next_random(),
                                              (unsigned)(next_random() % 900));
                        break;
                case 2:
                        n += (size_t)snprintf(sql + n, size - n,
                                              "UPDATE t SET v = v || 'u' WHERE id %% 97 = %u;",
                                              id % 97);
                        break;
                default:
                        n += (size_t)snprintf(sql + n, size - n,
                                              "DELETE FROM t WHERE id BETWEEN %u AND %u;", id,
                                              id + 5);
                        break;
                }
        }
}

static void test_same_as_the_default_vfs(void)
{
        sqlite3 *a = open_db("a.db", vfs), *ref = open_db("ref.db", NULL);
        REQUIRE(exec(a, schema) == SQLITE_OK && exec(ref, schema) == SQLITE_OK);
        sqlite3 *reader = open_db("a.db", NULL);
        REQUIRE(exec(reader, "PRAGMA journal_mode") == SQLITE_OK);

        static char sql[64 * 1024];
        unsigned commits = 0, rollbacks = 0, differ = 0;
        for (unsigned i = 0; i < 400; i++) {
                const char *sync = next_random() % 2 ? "PRAGMA synchronous = FULL"
                                                     : "PRAGMA synchronous = NORMAL";
                REQUIRE(exec(a, sync) == SQLITE_OK && exec(ref, sync) == SQLITE_OK);
                random_transaction(sql, sizeof(sql));
                bool undo = next_random() % 8 == 0;
                REQUIRE(exec(a, "BEGIN") == SQLITE_OK && exec(ref, "BEGIN") == SQLITE_OK);
                REQUIRE(exec(a, sql) == SQLITE_OK && exec(ref, sql) == SQLITE_OK);
                const char *end = undo ? "ROLLBACK" : "COMMIT";
                REQUIRE(exec(a, end) == SQLITE_OK && exec(ref, end) == SQLITE_OK);
                undo ? rollbacks++ : commits++;
                if (next_random() % 50 == 0)    /* the WAL starts over now and then */
                        REQUIRE(exec(reader, "PRAGMA wal_checkpoint(RESTART)") == SQLITE_OK);
                char *seen = digest(reader), *want = digest(ref);
                REQUIRE(seen && want);
                if (strcmp(seen, want) != 0 && differ++ == 0)
                        fprintf(stderr, "after transaction %u another connection sees other data\n",
                                i);
                free(seen);
                free(want);
        }
        CHECK_UINT(differ, 0);
        CHECK(commits > 300 && rollbacks > 20);
        char *mine = digest(a), *theirs = digest(ref);
        CHECK_STR(mine, theirs);
        free(mine);
        free(theirs);
        sqlite3_close(reader);
        sqlite3_close(a);
        sqlite3_close(ref);

        /* opened again: the file says the same, and is whole */
        sqlite3 *again = open_db("a.db", NULL);
        ref = open_db("ref.db", NULL);
        sqlite3_stmt *s = NULL;
        REQUIRE(sqlite3_prepare_v2(again, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK);
        REQUIRE(sqlite3_step(s) == SQLITE_ROW);
        CHECK_STR((const char *)sqlite3_column_text(s, 0), "ok");
        sqlite3_finalize(s);
        mine = digest(again);
        theirs = digest(ref);
        CHECK_STR(mine, theirs);
        free(mine);
        free(theirs);
        sqlite3_close(again);
        sqlite3_close(ref);
}

/* The child: commits transaction after transaction (each spilling), and
 * after each commit writes its number to the pipe. */
static void writer(int fd, int durable)
{
        sqlite3 *db = open_db("killed.db", vfs);
        if (exec(db, schema) != SQLITE_OK ||
            exec(db, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") !=
                    SQLITE_OK ||
            exec(db, "CREATE TABLE IF NOT EXISTS done (n INTEGER PRIMARY KEY)") != SQLITE_OK)
                _exit(2);
        static char sql[64 * 1024];
        for (uint32_t n = 1;; n++) {
                random_transaction(sql, sizeof(sql));
                char mark[64];
                snprintf(mark, sizeof(mark), "INSERT INTO done VALUES (%u);", n);
                if (exec(db, "BEGIN") != SQLITE_OK || exec(db, sql) != SQLITE_OK ||
                    exec(db, mark) != SQLITE_OK || exec(db, "COMMIT") != SQLITE_OK)
                        _exit(2);
                if (write(fd, &n, sizeof(n)) != sizeof(n))
                        _exit(2);
        }
}

static void killed_once(int durable, unsigned after)
{
        static const char *const suffixes[] = { "", "-wal", "-shm" };
        char path[256];
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes); i++) {
                snprintf(path, sizeof(path), "%s/killed.db%s", dir, suffixes[i]);
                unlink(path);
        }
        int p[2];
        REQUIRE(pipe(p) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                writer(p[1], durable);
        }
        close(p[1]);
        uint32_t n = 0, last = 0;
        while (last < after && read(p[0], &n, sizeof(n)) == sizeof(n))
                last = n;
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        /* what it wrote in the moment before the kill counts too */
        while (read(p[0], &n, sizeof(n)) == sizeof(n))
                last = n;
        close(p[0]);
        REQUIRE(last >= after);

        sqlite3 *db = open_db("killed.db", NULL);
        sqlite3_stmt *s = NULL;
        REQUIRE(sqlite3_prepare_v2(db, "SELECT coalesce(max(n), 0), count(*) FROM done", -1, &s,
                                   NULL) == SQLITE_OK);
        REQUIRE(sqlite3_step(s) == SQLITE_ROW);
        int64_t max = sqlite3_column_int64(s, 0), count = sqlite3_column_int64(s, 1);
        sqlite3_finalize(s);
        CHECK(max >= last);             /* every reported commit is there */
        CHECK_INT(count, max);          /* and none is missing before it */
        REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK);
        REQUIRE(sqlite3_step(s) == SQLITE_ROW);
        CHECK_STR((const char *)sqlite3_column_text(s, 0), "ok");
        sqlite3_finalize(s);
        sqlite3_close(db);
}

static void test_a_killed_writer_loses_no_commit(void)
{
        for (unsigned i = 0; i < 6; i++)
                killed_once(i % 2, 20 + (unsigned)(next_random() % 200));
}

int main(void)
{
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 2;
        }
        vfs = walbuf_register();
        if (!vfs) {
                fprintf(stderr, "walbuf_register failed\n");
                return 1;
        }
        RUN(test_same_as_the_default_vfs);
        RUN(test_a_killed_writer_loses_no_commit);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        return unit_finish();
}
