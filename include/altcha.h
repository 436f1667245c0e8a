/* Proof-of-work challenges in the ALTCHA v1 format (SHA-256): made with a
 * key of the daemon's, and the solutions a visitor's browser sends back
 * checked against it.  A leaf: no I/O, no SQL; whether a solution was used
 * before is the store's to say (store_challenge_use()). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secret.h"

#define ALTCHA_SALT_RANDOM      12      /* random bytes of a salt (24 hex digits) */
#define ALTCHA_HEX_LEN          64      /* a SHA-256 as hex */
/* "<24 hex>?expires=<up to 20 digits>&" */
#define ALTCHA_SALT_MAX         (2 * ALTCHA_SALT_RANDOM + 9 + 20 + 1)
#define ALTCHA_MAXNUMBER_MAX    10000000u       /* [antibot] maxnumber's ceiling */

/* What the `challenge` op hands out. */
struct altcha_challenge {
        char challenge[ALTCHA_HEX_LEN + 1];     /* hex SHA-256(salt + decimal number) */
        char salt[ALTCHA_SALT_MAX + 1];
        char signature[ALTCHA_HEX_LEN + 1];     /* hex HMAC-SHA256(key, challenge) */
        uint64_t maxnumber;
};

/* A verified solution: what replay protection keeps of it. */
struct altcha_solution {
        uint8_t challenge[32];          /* the challenge's bytes (a SHA-256 already) */
        int64_t expires;                /* from the salt */
};

enum altcha_verdict {
        ALTCHA_OK,
        ALTCHA_MALFORMED,       /* not base64 of the JSON object, a bad field, a foreign salt */
        ALTCHA_WRONG_NUMBER,    /* SHA-256(salt + number) is not the challenge */
        ALTCHA_BAD_SIGNATURE,   /* not signed with any of the keys */
        ALTCHA_EXPIRED,         /* the salt's expires has passed */
};

/* The key challenges are signed with, HMAC(key, "altcha"): a key of its own
 * for this use of a key-file key. */
void altcha_key(const uint8_t key[SECRET_KEY_LEN], uint8_t out[SECRET_KEY_LEN]);

/* A new challenge signed with `key` (from altcha_key()): a random number
 * from 0 to maxnumber, a random salt valid until `expires` (Unix seconds).
 * 0, or -EIO when there are no random bytes. */
int altcha_challenge_new(const uint8_t key[SECRET_KEY_LEN], uint64_t maxnumber, int64_t expires,
                         struct altcha_challenge *out);

/* Check a payload (base64 of the JSON {"algorithm", "challenge", "number",
 * "salt", "signature"}, "took" allowed) at time `now` against `n` keys
 * (from altcha_key(); any may have signed it, compared in constant time).
 * On ALTCHA_OK `out` says what to remember against its reuse. */
enum altcha_verdict altcha_verify(const uint8_t (*keys)[SECRET_KEY_LEN], size_t n, int64_t now,
                                  const char *payload, size_t len, struct altcha_solution *out);

/* A word for the log. */
const char *altcha_verdict_str(enum altcha_verdict v);
