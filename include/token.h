/* Secret tokens: 32 random bytes, sent base64url without padding, stored
 * only as their SHA-256 (a leaf: no I/O but OpenSSL's CSPRNG). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_BYTES     32
#define TOKEN_TEXT_LEN  43      /* base64url of 32 bytes, no padding */
#define TOKEN_HASH_LEN  32

struct token {
        uint8_t raw[TOKEN_BYTES];
        char text[TOKEN_TEXT_LEN + 1];
        uint8_t hash[TOKEN_HASH_LEN];
};

/* A fresh token from csprng_bytes().  0, or -EIO when the CSPRNG fails. */
int token_new(struct token *t);

/* A token whose first 8 bytes name a row (big-endian) and whose other 24
 * are random (192 bits): the row keeps the token's hash, so issuing one
 * costs no insert of its own.  Looked up by the row, the hashes compared in
 * constant time. */
int token_new_for_row(struct token *t, int64_t row);
/* The row a token of token_new_for_row() names (any token names one). */
int64_t token_row(const struct token *t);

/* Parse the text form strictly (exactly 43 base64url characters, canonical
 * final character) and compute its hash.  false when malformed. */
bool token_parse(const char *text, size_t len, struct token *t);

/* base64url without padding; `out` must hold 4*ceil(n/3)+1 bytes. Returns
 * the length written (without the NUL). */
size_t b64url_encode(const uint8_t *in, size_t n, char *out);

/* Constant-time comparison of two secrets of equal length. */
bool secret_equal(const void *a, const void *b, size_t n);

/* Lower-case hex of a SHA-256 of `data` (65 bytes with NUL). */
void sha256_hex(const void *data, size_t n, char out[65]);
