/* The daemon's secret keys, kept in a file of their own outside the
 * database, and what is derived from them: the tags that make VERP
 * addresses unforgeable and the keys of the rate-limit counters. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRET_KEY_LEN  32              /* bytes of one key (64 hex digits in the file) */
#define SECRET_KEYS_MAX 8               /* keys one file may hold */
#define SECRET_TAG_LEN  16              /* lower-case hex digits of a VERP tag (64 bits) */

struct secret_keys {
        size_t n;                       /* 0: none loaded */
        /* key[0] makes new tags; every key is accepted when checking one */
        uint8_t key[SECRET_KEYS_MAX][SECRET_KEY_LEN];
        /* HMAC(key[0], "ratelimit"): the rate-limit counters' key */
        uint8_t ratelimit[SECRET_KEY_LEN];
};

/* Read the key file at `path`: one key per line as 64 hex digits, the first
 * the current one; blank lines and lines starting with '#' are skipped.
 * When the file does not exist and `create` is set, a file with one new
 * random key is made (mode 0600, synced).  A file that group or others may
 * access, one without a key or with a malformed line is refused.  0, or 1
 * with the reason in `err`. */
int secret_load(const char *path, bool create, struct secret_keys *out, char *err, size_t errlen);

/* The VERP tag of mail `id` under `key`: the first SECRET_TAG_LEN hex
 * digits (lower case) of HMAC-SHA256(HMAC(key, "verp"), decimal id). */
void secret_tag(const uint8_t key[SECRET_KEY_LEN], int64_t id, char out[SECRET_TAG_LEN + 1]);

/* Whether `tag` (n bytes, any case) is mail `id`'s tag under any of `keys`;
 * compared in constant time.  false when no key is loaded. */
bool secret_tag_check(const struct secret_keys *keys, int64_t id, const char *tag, size_t n);

/* Wipe the keys. */
void secret_keys_clear(struct secret_keys *keys);
