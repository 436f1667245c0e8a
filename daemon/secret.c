/*
 * secret.c - the daemon's secret keys.  They live in a file of their own,
 * not in the database: whoever reads a copy of the database (a backup, an
 * export) learns neither how to forge a bounce nor which ip a rate-limit
 * counter belongs to.  The file holds several keys so that one can be
 * replaced without breaking what the old one made: the first signs, all
 * are accepted when checking.  Each use gets a key derived for it alone
 * (HMAC(key, purpose)), so a VERP tag says nothing about a counter's key.
 *
 * Owns the key file (made at first start when missing); must never log a
 * key or write one anywhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "secret.h"

#define KEY_FILE_MAX 4096               /* SECRET_KEYS_MAX keys and some comments */

static const char key_file_head[] =
        "# newsletterd secret keys, 64 hex digits each: the first makes new VERP\n"
        "# tags and keys the rate-limit counters, the others are still accepted\n"
        "# in bounces (see newsletterd.conf(5), [daemon] key_file)\n";

/* HMAC-SHA256(key, purpose): a key of its own for each use of a secret. */
static void derive(const uint8_t key[SECRET_KEY_LEN], const char *purpose,
                   uint8_t out[SECRET_KEY_LEN])
{
        unsigned len = SECRET_KEY_LEN;
        if (!HMAC(EVP_sha256(), key, SECRET_KEY_LEN, (const unsigned char *)purpose, strlen(purpose),
                  out, &len))
                abort();        /* only when OpenSSL cannot allocate */
}

void secret_tag(const uint8_t key[SECRET_KEY_LEN], int64_t id, char out[SECRET_TAG_LEN + 1])
{
        static const char hex[] = "0123456789abcdef";
        uint8_t sub[SECRET_KEY_LEN], md[EVP_MAX_MD_SIZE];
        unsigned len = sizeof(md);
        char dec[24];
        int n = snprintf(dec, sizeof(dec), "%" PRId64, id);
        derive(key, "verp", sub);
        if (!HMAC(EVP_sha256(), sub, sizeof(sub), (const unsigned char *)dec, (size_t)n, md, &len))
                abort();
        for (size_t i = 0; i < SECRET_TAG_LEN / 2; i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 15];
        }
        out[SECRET_TAG_LEN] = '\0';
        explicit_bzero(sub, sizeof(sub));
}

bool secret_tag_check(const struct secret_keys *keys, int64_t id, const char *tag, size_t n)
{
        if (!keys || n != SECRET_TAG_LEN || id <= 0)
                return false;
        /* MTAs may change the case of a local part */
        char given[SECRET_TAG_LEN], want[SECRET_TAG_LEN + 1];
        for (size_t i = 0; i < n; i++)
                given[i] = tag[i] >= 'A' && tag[i] <= 'Z' ? (char)(tag[i] - 'A' + 'a') : tag[i];
        bool ok = false;
        for (size_t k = 0; k < keys->n; k++) {
                secret_tag(keys->key[k], id, want);
                ok |= CRYPTO_memcmp(given, want, SECRET_TAG_LEN) == 0;
        }
        return ok;
}

void secret_keys_clear(struct secret_keys *keys)
{
        explicit_bzero(keys, sizeof(*keys));
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int parse(const char *text, size_t len, struct secret_keys *out, char *err, size_t errlen)
{
        unsigned lineno = 0;
        for (const char *p = text, *end = text + len; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *e = nl ? nl : end;
                lineno++;
                size_t n = (size_t)(e - p);
                while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
                        n--;
                if (n && p[0] != '#') {
                        if (out->n == SECRET_KEYS_MAX) {
                                snprintf(err, errlen, "more than %d keys", SECRET_KEYS_MAX);
                                return 1;
                        }
                        bool ok = n == 2 * SECRET_KEY_LEN;
                        for (size_t i = 0; ok && i < SECRET_KEY_LEN; i++) {
                                int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
                                ok = hi >= 0 && lo >= 0;
                                if (ok)
                                        out->key[out->n][i] = (uint8_t)(hi << 4 | lo);
                        }
                        if (!ok) {
                                snprintf(err, errlen, "line %u: not a key of %d hex digits", lineno,
                                         2 * SECRET_KEY_LEN);
                                return 1;
                        }
                        out->n++;
                }
                p = nl ? nl + 1 : end;
        }
        if (!out->n) {
                snprintf(err, errlen, "holds no key");
                return 1;
        }
        return 0;
}

/* Sync the directory `path` is in, so that a new name in it survives. */
static int sync_dir_of(const char *path)
{
        char copy[4096];
        if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
                return -ENAMETOOLONG;
        int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

/* A key file with one new key, put in place whole (a crash leaves either
 * no file or a complete one) and never over one that exists. */
static int create(const char *path, char *err, size_t errlen)
{
        static const char hex[] = "0123456789abcdef";
        char tmp[4096], text[sizeof(key_file_head) + 2 * SECRET_KEY_LEN + 1];
        uint8_t key[SECRET_KEY_LEN];
        if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
                snprintf(err, errlen, "%s", strerror(ENAMETOOLONG));
                return 1;
        }
        if (RAND_bytes(key, sizeof(key)) != 1) {
                snprintf(err, errlen, "no random bytes for a new key");
                return 1;
        }
        size_t n = sizeof(key_file_head) - 1;
        memcpy(text, key_file_head, n);
        for (size_t i = 0; i < SECRET_KEY_LEN; i++) {
                text[n++] = hex[key[i] >> 4];
                text[n++] = hex[key[i] & 15];
        }
        text[n++] = '\n';
        explicit_bzero(key, sizeof(key));
        /* mkostemp makes the file with mode 0600 */
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                snprintf(err, errlen, "cannot be created: %s", strerror(errno));
                explicit_bzero(text, sizeof(text));
                return 1;
        }
        bool ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
        int e = errno;
        explicit_bzero(text, sizeof(text));
        close(fd);
        /* link() fails rather than replace a file another process made meanwhile */
        if (ok && link(tmp, path) < 0 && errno != EEXIST) {
                e = errno;
                ok = false;
        }
        unlink(tmp);
        if (!ok) {
                snprintf(err, errlen, "cannot be created: %s", strerror(e));
                return 1;
        }
        int r = sync_dir_of(path);
        if (r < 0) {
                snprintf(err, errlen, "its directory cannot be synced: %s", strerror(-r));
                return 1;
        }
        return 0;
}

int secret_load(const char *path, bool create_missing, struct secret_keys *out, char *err, size_t errlen)
{
        memset(out, 0, sizeof(*out));
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ENOENT && create_missing) {
                if (create(path, err, errlen) != 0)
                        return 1;
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        }
        if (fd < 0) {
                snprintf(err, errlen, "%s", strerror(errno));
                return 1;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(err, errlen, "not a regular file");
                return 1;
        }
        if (st.st_mode & 0077) {
                close(fd);
                snprintf(err, errlen, "group or others may access it (mode %04o); chmod 600 it",
                         (unsigned)(st.st_mode & 07777));
                return 1;
        }
        char text[KEY_FILE_MAX + 1];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof(text) && (n = read(fd, text + len, sizeof(text) - len)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = errno;
                        close(fd);
                        explicit_bzero(text, sizeof(text));
                        snprintf(err, errlen, "%s", strerror(e));
                        return 1;
                }
                len += (size_t)n;
        }
        close(fd);
        int r = 1;
        if (len > KEY_FILE_MAX)
                snprintf(err, errlen, "larger than %d bytes", KEY_FILE_MAX);
        else
                r = parse(text, len, out, err, errlen);
        explicit_bzero(text, sizeof(text));
        if (r == 0)
                derive(out->key[0], "ratelimit", out->ratelimit);
        else
                secret_keys_clear(out);
        return r;
}
