/*
 * test-store.c - the store's promises about its file, on real files in a
 * temporary directory: the connection's settings as SQLite reads them back
 * (synchronous, defensive), a sync exactly when a commit is not yet on
 * disk, and a refusal to start on a file that is not a database it made.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        return unit_finish();
}
