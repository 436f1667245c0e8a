/*
 * token.c - the secrets in confirmation and unsubscribe links.  A token is
 * 32 bytes from OpenSSL's CSPRNG (csprng.c), travels as 43 characters of base64url
 * without padding, and is stored only as its SHA-256 (looked up by hash, so
 * the database never holds anything that opens a link).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "csprng.h"
#include "token.h"

static const char b64url_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
        size_t o = 0, i = 0;
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
                out[o++] = b64url_alphabet[v >> 18 & 63];
                out[o++] = b64url_alphabet[v >> 12 & 63];
                out[o++] = b64url_alphabet[v >> 6 & 63];
                out[o++] = b64url_alphabet[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)in[i] << 16;
                out[o++] = b64url_alphabet[v >> 18 & 63];
                out[o++] = b64url_alphabet[v >> 12 & 63];
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                out[o++] = b64url_alphabet[v >> 18 & 63];
                out[o++] = b64url_alphabet[v >> 12 & 63];
                out[o++] = b64url_alphabet[v >> 6 & 63];
        }
        out[o] = '\0';
        return o;
}

static int b64url_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '-')
                return 62;
        if (c == '_')
                return 63;
        return -1;
}

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
        b64url_encode(t->raw, TOKEN_BYTES, t->text);
        token_hash(t);
        return 0;
}

bool token_parse(const char *text, size_t len, struct token *t)
{
        if (len != TOKEN_TEXT_LEN)
                return false;
        /* 43 characters = 10 groups of 4 (30 bytes) + 3 characters (2 bytes) */
        size_t o = 0;
        uint32_t v = 0;
        for (size_t i = 0; i < len; i++) {
                int d = b64url_value((unsigned char)text[i]);
                if (d < 0)
                        return false;
                v = v << 6 | (uint32_t)d;
                if (i % 4 == 3) {
                        t->raw[o++] = (uint8_t)(v >> 16);
                        t->raw[o++] = (uint8_t)(v >> 8);
                        t->raw[o++] = (uint8_t)v;
                        v = 0;
                }
        }
        /* the last 3 characters carry 18 bits: 16 of data and 2 that must be 0 */
        if (v & 3)
                return false;
        t->raw[o++] = (uint8_t)(v >> 10);
        t->raw[o++] = (uint8_t)(v >> 2);
        memcpy(t->text, text, TOKEN_TEXT_LEN);
        t->text[TOKEN_TEXT_LEN] = '\0';
        token_hash(t);
        return true;
}

bool secret_equal(const void *a, const void *b, size_t n)
{
        return CRYPTO_memcmp(a, b, n) == 0;
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
