/*
 * token.c - the secrets in confirmation and unsubscribe links.  A token is
 * 32 bytes from OpenSSL's CSPRNG (csprng.c), travels as 43 characters of base64url
 * without padding, and is stored only as its SHA-256 (looked up by hash, so
 * the database never holds anything that opens a link).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "base64.h"
#include "csprng.h"
#include "token.h"

/* SHA-256 fetched once: OpenSSL 3's SHA256() looks the algorithm up on
 * every call (a lock and a table), two thirds of its time for 32 bytes. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256(const void *data, size_t n, uint8_t out[SHA256_DIGEST_LENGTH])
{
        pthread_once(&sha256_once, sha256_fetch);
        if (!sha256_md || EVP_Digest(data, n, out, NULL, sha256_md, NULL) != 1)
                SHA256(data, n, out);
}

static void token_hash(struct token *t)
{
        sha256(t->raw, TOKEN_BYTES, t->hash);
}

int token_new(struct token *t)
{
        if (csprng_bytes(t->raw, TOKEN_BYTES) < 0)
                return -EIO;
        base64_encode(t->raw, TOKEN_BYTES, t->text, BASE64_URL | BASE64_NOPAD);
        token_hash(t);
        return 0;
}

bool token_parse(const char *text, size_t len, struct token *t)
{
        size_t n;
        /* 43 characters carry 258 bits: the strict decoder wants the last
         * one's 2 spare bits 0, so each token has one text form */
        if (len != TOKEN_TEXT_LEN ||
            !base64_decode(text, len, t->raw, &n, BASE64_URL | BASE64_NOPAD) || n != TOKEN_BYTES)
                return false;
        memcpy(t->text, text, TOKEN_TEXT_LEN);
        t->text[TOKEN_TEXT_LEN] = '\0';
        token_hash(t);
        return true;
}

void sha256_hex(const void *data, size_t n, char out[65])
{
        static const char hex[] = "0123456789abcdef";
        uint8_t md[SHA256_DIGEST_LENGTH];
        sha256(data, n, md);
        for (size_t i = 0; i < sizeof(md); i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 15];
        }
        out[64] = '\0';
}
