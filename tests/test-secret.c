/*
 * test-secret.c - the key file and what is derived from it: VERP tags
 * against vectors computed with Python's hmac module (not with this code),
 * the check accepting every key of the file in any case and nothing else,
 * the file made at first start with mode 0600 and read back the same, and
 * every bad file refused.
 *
 * Vectors: key = bytes(range(32)), sub = hmac(key, b"verp", sha256);
 * tag(id) = hmac(sub, str(id).encode(), sha256).hexdigest()[:16].
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "unit.h"

static char dir[] = "/tmp/test-secret-XXXXXX";

static void key_0_31(uint8_t key[SECRET_KEY_LEN])
{
        for (int i = 0; i < SECRET_KEY_LEN; i++)
                key[i] = (uint8_t)i;
}

static void test_tag_vectors(void)
{
        uint8_t key[SECRET_KEY_LEN], ff[SECRET_KEY_LEN];
        char tag[SECRET_TAG_LEN + 1];
        key_0_31(key);
        memset(ff, 0xff, sizeof(ff));
        secret_tag(key, 1, tag);
        CHECK_STR(tag, "4f8cf86ed206bf95");
        secret_tag(key, 4711, tag);
        CHECK_STR(tag, "e79c97aee3d51936");
        secret_tag(key, INT64_MAX, tag);
        CHECK_STR(tag, "b30e5bbc9d36b474");
        secret_tag(ff, 4711, tag);
        CHECK_STR(tag, "5488caae73ec34da");
}

static void test_tag_check(void)
{
        struct secret_keys keys = { .n = 2 };
        memset(keys.key[0], 0xff, SECRET_KEY_LEN);
        key_0_31(keys.key[1]);
        CHECK(secret_tag_check(&keys, 4711, "5488caae73ec34da", 16));  /* the current key */
        CHECK(secret_tag_check(&keys, 4711, "e79c97aee3d51936", 16));  /* the older one */
        CHECK(secret_tag_check(&keys, 4711, "E79C97AEE3D51936", 16));  /* any case */
        CHECK(!secret_tag_check(&keys, 4712, "e79c97aee3d51936", 16)); /* another mail */
        CHECK(!secret_tag_check(&keys, 4711, "e79c97aee3d51937", 16));
        CHECK(!secret_tag_check(&keys, 4711, "e79c97aee3d5193", 15));  /* cut */
        CHECK(!secret_tag_check(&keys, 4711, "e79c97aee3d519360", 17));
        CHECK(!secret_tag_check(&keys, 4711, "", 0));
        CHECK(!secret_tag_check(&keys, 0, "e79c97aee3d51936", 16));
        CHECK(!secret_tag_check(NULL, 4711, "e79c97aee3d51936", 16));
        keys.n = 1;                                                     /* the old key retired */
        CHECK(!secret_tag_check(&keys, 4711, "e79c97aee3d51936", 16));
        keys.n = 0;
        CHECK(!secret_tag_check(&keys, 4711, "5488caae73ec34da", 16));
}

static void put(const char *name, const char *text, mode_t mode, char *path, size_t cap)
{
        snprintf(path, cap, "%s/%s", dir, name);
        unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
                abort();
        close(fd);
        chmod(path, mode);
}

static void test_created_at_first_start(void)
{
        char path[512], err[256] = "";
        struct secret_keys a, b;
        snprintf(path, sizeof(path), "%s/new.key", dir);
        CHECK_INT(secret_load(path, false, &a, err, sizeof(err)), 1);   /* --check-config makes none */
        CHECK_INT(access(path, F_OK), -1);
        REQUIRE(secret_load(path, true, &a, err, sizeof(err)) == 0);
        CHECK_UINT(a.n, 1);
        struct stat st;
        REQUIRE(stat(path, &st) == 0);
        CHECK_UINT(st.st_mode & 07777, 0600);
        /* read back, not made again */
        REQUIRE(secret_load(path, true, &b, err, sizeof(err)) == 0);
        CHECK_MEM(a.key[0], SECRET_KEY_LEN, b.key[0], SECRET_KEY_LEN);
        CHECK_MEM(a.ratelimit, SECRET_KEY_LEN, b.ratelimit, SECRET_KEY_LEN);
        /* no temporary file left behind */
        DIR *dp = opendir(dir);
        REQUIRE(dp != NULL);
        unsigned others = 0;
        for (struct dirent *e; (e = readdir(dp));)
                others += strncmp(e->d_name, "new.key.", 8) == 0;
        closedir(dp);
        CHECK_UINT(others, 0);
        /* a second new file has another key */
        snprintf(path, sizeof(path), "%s/other.key", dir);
        REQUIRE(secret_load(path, true, &b, err, sizeof(err)) == 0);
        CHECK(memcmp(a.key[0], b.key[0], SECRET_KEY_LEN) != 0);
        /* a directory that does not exist: an error, no crash */
        snprintf(path, sizeof(path), "%s/missing/x.key", dir);
        CHECK_INT(secret_load(path, true, &a, err, sizeof(err)), 1);
        CHECK_UINT(a.n, 0);
}

static const char k1[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char k2[] = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";

static void test_several_keys(void)
{
        char path[512], err[256] = "", text[512];
        struct secret_keys keys;
        snprintf(text, sizeof(text), "# rotated\n%s\r\n\n  \n%s  \n", k2, k1);
        put("two.key", text, 0600, path, sizeof(path));
        REQUIRE(secret_load(path, false, &keys, err, sizeof(err)) == 0);
        CHECK_UINT(keys.n, 2);
        char tag[SECRET_TAG_LEN + 1];
        secret_tag(keys.key[0], 4711, tag);
        CHECK_STR(tag, "5488caae73ec34da");
        secret_tag(keys.key[1], 4711, tag);
        CHECK_STR(tag, "e79c97aee3d51936");
        /* owner-only modes other than 0600 are fine */
        put("ro.key", k1, 0400, path, sizeof(path));
        CHECK_INT(secret_load(path, false, &keys, err, sizeof(err)), 0);
        /* the rate-limit key: HMAC-SHA256(the first key, "ratelimit") */
        static const uint8_t want[SECRET_KEY_LEN] = {
                0x4e, 0xc1, 0x53, 0x29, 0x82, 0xab, 0xee, 0x24, 0xcc, 0xe1, 0x63, 0xd1, 0x73, 0xab, 0xeb, 0xef,
                0x85, 0xe6, 0x7b, 0x2e, 0xab, 0x66, 0x7d, 0x11, 0xe4, 0x7b, 0xa6, 0x1a, 0x79, 0x3c, 0x8a, 0x04,
        };
        CHECK_MEM(keys.ratelimit, SECRET_KEY_LEN, want, sizeof(want));
}

static void refused(const char *name, const char *text, mode_t mode, const char *why)
{
        char path[512], err[256] = "";
        struct secret_keys keys;
        put(name, text, mode, path, sizeof(path));
        CHECK_INT(secret_load(path, true, &keys, err, sizeof(err)), 1);
        CHECK_CONTAINS(err, why);
        CHECK_UINT(keys.n, 0);
}

static void test_bad_files(void)
{
        char text[2048];
        refused("group.key", k1, 0640, "chmod 600");
        refused("world.key", k1, 0604, "chmod 600");
        refused("gw.key", k1, 0620, "chmod 600");
        refused("empty.key", "", 0600, "no key");
        refused("comments.key", "# nothing\n\n", 0600, "no key");
        refused("short.key", "000102030405060708090a0b0c0d0e0f\n", 0600, "line 1");
        snprintf(text, sizeof(text), "%s\n%sff\n", k1, k1);
        refused("long.key", text, 0600, "line 2");
        snprintf(text, sizeof(text), "%s\n", k1);
        text[10] = 'g';
        refused("nonhex.key", text, 0600, "line 1");
        text[0] = '\0';
        for (int i = 0; i < SECRET_KEYS_MAX + 1; i++)
                snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s\n", k1);
        refused("many.key", text, 0600, "more than");
        char big[8192];
        memset(big, '#', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        refused("big.key", big, 0600, "larger than");
        char err[256];
        struct secret_keys keys;
        CHECK_INT(secret_load(dir, true, &keys, err, sizeof(err)), 1);  /* a directory */
        CHECK_CONTAINS(err, "regular file");
}

int main(void)
{
        if (!mkdtemp(dir))
                return 1;
        unit_run("tag vectors", test_tag_vectors);
        unit_run("tag check", test_tag_check);
        unit_run("created at first start", test_created_at_first_start);
        unit_run("several keys", test_several_keys);
        unit_run("bad files", test_bad_files);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                return 1;
        return unit_finish();
}
