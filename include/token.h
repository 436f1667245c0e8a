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

/* Parse the text form strictly (exactly 43 base64url characters, canonical
 * final character) and compute its hash.  false when malformed. */
bool token_parse(const char *text, size_t len, struct token *t);

/* Lower-case hex of a SHA-256 of `data` (65 bytes with NUL). */
void sha256_hex(const void *data, size_t n, char out[65]);
