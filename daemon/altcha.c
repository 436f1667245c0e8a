/*
 * altcha.c - proof-of-work challenges in the ALTCHA v1 format, so that the
 * reference site (or the ALTCHA widget) can have a visitor's browser spend
 * a moment of CPU on each sign-up instead of asking a third party whether
 * the visitor is human.  A challenge is SHA-256(salt + number) for a random
 * number up to maxnumber; the browser finds the number by trying them all.
 * The salt carries its expiry ("?expires=UNIX&") and the challenge is
 * signed with HMAC-SHA256 under a key of the daemon's, so nothing about an
 * issued challenge needs to be stored: the daemon hands them out without
 * writing anything, and checks a solution from its own fields.
 *
 * The salt ends in '&' and must match the form made here exactly: without
 * that, digits could be moved from the number into the salt ("number
 * splicing") to give a signed challenge a later expiry.
 *
 * Owns nothing; must never decide on reuse (the store keeps the used ones)
 * nor log a key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "altcha.h"
#include "base64.h"
#include "csprng.h"

/* The largest payload decoded (its base64 is bounded by the request's
 * field; this bounds the buffer). */
#define PAYLOAD_JSON_MAX 1024

static const char hexdigits[] = "0123456789abcdef";

static void hex(const uint8_t *in, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hexdigits[in[i] >> 4];
                out[2 * i + 1] = hexdigits[in[i] & 15];
        }
        out[2 * n] = '\0';
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;      /* we make lower case only */
}

/* n hex digits (lower case) into n / 2 bytes; false on anything else. */
static bool unhex(const char *s, size_t n, uint8_t *out)
{
        if (n % 2)
                return false;
        for (size_t i = 0; i < n; i += 2) {
                int hi = hexval(s[i]), lo = hexval(s[i + 1]);
                if (hi < 0 || lo < 0)
                        return false;
                out[i / 2] = (uint8_t)(hi << 4 | lo);
        }
        return true;
}

void altcha_key(const uint8_t key[SECRET_KEY_LEN], uint8_t out[SECRET_KEY_LEN])
{
        unsigned len = SECRET_KEY_LEN;
        if (!HMAC(EVP_sha256(), key, SECRET_KEY_LEN, (const unsigned char *)"altcha", 6, out, &len))
                abort();        /* only when OpenSSL cannot allocate */
}

/* hex SHA-256(salt + decimal number) */
static void challenge_of(const char *salt, size_t salt_len, uint64_t number,
                         char out[ALTCHA_HEX_LEN + 1])
{
        char dec[24];
        uint8_t md[32];
        int n = snprintf(dec, sizeof(dec), "%" PRIu64, number);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, salt, salt_len) != 1 || EVP_DigestUpdate(ctx, dec, (size_t)n) != 1 ||
            EVP_DigestFinal_ex(ctx, md, NULL) != 1)
                abort();        /* only when OpenSSL cannot allocate */
        EVP_MD_CTX_free(ctx);
        hex(md, sizeof(md), out);
}

/* hex HMAC-SHA256(key, challenge as text), as ALTCHA signs */
static void signature_of(const uint8_t key[SECRET_KEY_LEN], const char challenge[ALTCHA_HEX_LEN],
                         char out[ALTCHA_HEX_LEN + 1])
{
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned len = sizeof(md);
        if (!HMAC(EVP_sha256(), key, SECRET_KEY_LEN, (const unsigned char *)challenge, ALTCHA_HEX_LEN,
                  md, &len))
                abort();
        hex(md, 32, out);
}

/* A uniform random number from 0 to max, by rejection. */
static int random_upto(uint64_t max, uint64_t *out)
{
        uint64_t span = max + 1, limit = UINT64_MAX - UINT64_MAX % span, v;
        do {
                int r = csprng_bytes(&v, sizeof(v));
                if (r < 0)
                        return r;
        } while (v >= limit);
        *out = v % span;
        return 0;
}

int altcha_challenge_new(const uint8_t key[SECRET_KEY_LEN], uint64_t maxnumber, int64_t expires,
                         struct altcha_challenge *out)
{
        uint8_t rnd[ALTCHA_SALT_RANDOM];
        uint64_t number;
        int r;
        if ((r = csprng_bytes(rnd, sizeof(rnd))) < 0 || (r = random_upto(maxnumber, &number)) < 0)
                return r;
        hex(rnd, sizeof(rnd), out->salt);
        snprintf(out->salt + 2 * sizeof(rnd), sizeof(out->salt) - 2 * sizeof(rnd),
                 "?expires=%" PRId64 "&", expires);
        challenge_of(out->salt, strlen(out->salt), number, out->challenge);
        signature_of(key, out->challenge, out->signature);
        out->maxnumber = maxnumber;
        return 0;
}

/* A salt as altcha_challenge_new() makes them; its expiry into *expires. */
static bool salt_parse(const char *s, size_t n, int64_t *expires)
{
        static const char mid[] = "?expires=";
        const size_t head = 2 * ALTCHA_SALT_RANDOM, m = sizeof(mid) - 1;
        uint8_t ignored[ALTCHA_SALT_RANDOM];
        if (n < head + m + 2 || n > ALTCHA_SALT_MAX || !unhex(s, head, ignored) ||
            memcmp(s + head, mid, m) != 0 || s[n - 1] != '&')
                return false;
        const char *d = s + head + m, *end = s + n - 1;
        if (*d == '0' && end - d > 1)
                return false;   /* one spelling per number */
        int64_t v = 0;
        for (; d < end; d++) {
                if (*d < '0' || *d > '9' || v > (INT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (*d - '0');
        }
        *expires = v;
        return true;
}

/* The string field `key` of `o`: false when absent or not a string. */
static bool field(json_t *o, const char *key, const char **s, size_t *n)
{
        json_t *v = json_object_get(o, key);
        if (!json_is_string(v))
                return false;
        *s = json_string_value(v);
        *n = json_string_length(v);
        return strlen(*s) == *n;
}

enum altcha_verdict altcha_verify(const uint8_t (*keys)[SECRET_KEY_LEN], size_t nkeys, int64_t now,
                                  const char *payload, size_t len, struct altcha_solution *out)
{
        char text[PAYLOAD_JSON_MAX];
        size_t tlen;
        if (base64_decoded_max(len) > sizeof(text) || !base64_decode(payload, len, text, &tlen, 0))
                return ALTCHA_MALFORMED;
        json_t *o = json_loadb(text, tlen, JSON_REJECT_DUPLICATES, NULL);
        enum altcha_verdict v = ALTCHA_MALFORMED;
        const char *alg, *chal, *salt, *sig;
        size_t alg_n, chal_n, salt_n, sig_n;
        int64_t expires;
        if (!json_is_object(o) || json_object_size(o) != 5 + (json_object_get(o, "took") != NULL))
                goto done;
        json_t *num = json_object_get(o, "number"), *took = json_object_get(o, "took");
        if (!field(o, "algorithm", &alg, &alg_n) || strcmp(alg, "SHA-256") != 0 ||
            !field(o, "challenge", &chal, &chal_n) || chal_n != ALTCHA_HEX_LEN ||
            !unhex(chal, chal_n, out->challenge) ||
            !field(o, "signature", &sig, &sig_n) || sig_n != ALTCHA_HEX_LEN ||
            !field(o, "salt", &salt, &salt_n) || !salt_parse(salt, salt_n, &expires) ||
            !json_is_integer(num) || json_integer_value(num) < 0 ||
            json_integer_value(num) > ALTCHA_MAXNUMBER_MAX || (took && !json_is_number(took)))
                goto done;

        /* ours: signed with one of the keys (each compared, in constant time) */
        char want[ALTCHA_HEX_LEN + 1];
        bool signed_ok = false;
        for (size_t i = 0; i < nkeys; i++) {
                signature_of(keys[i], chal, want);
                signed_ok |= CRYPTO_memcmp(want, sig, ALTCHA_HEX_LEN) == 0;
        }
        if (!signed_ok) {
                v = ALTCHA_BAD_SIGNATURE;
                goto done;
        }
        /* solved: the number gives the challenge */
        challenge_of(salt, salt_n, (uint64_t)json_integer_value(num), want);
        if (memcmp(want, chal, ALTCHA_HEX_LEN) != 0) {
                v = ALTCHA_WRONG_NUMBER;
                goto done;
        }
        if (now >= expires) {
                v = ALTCHA_EXPIRED;
                goto done;
        }
        out->expires = expires;
        v = ALTCHA_OK;
done:
        json_decref(o);
        return v;
}

const char *altcha_verdict_str(enum altcha_verdict v)
{
        switch (v) {
        case ALTCHA_OK: return "ok";
        case ALTCHA_MALFORMED: return "malformed";
        case ALTCHA_WRONG_NUMBER: return "wrong number";
        case ALTCHA_BAD_SIGNATURE: return "not signed by us";
        case ALTCHA_EXPIRED: return "expired";
        }
        return "?";
}
