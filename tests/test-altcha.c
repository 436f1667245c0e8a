/*
 * test-altcha.c - the sign-up challenges: the derived key and a challenge's
 * hash and signature against vectors computed with Python's hashlib and
 * hmac (not with this code), a solution checked at the edges of its expiry,
 * each way of being wrong told apart, every malformed payload refused, and
 * new challenges solvable within maxnumber.
 *
 * Vectors: key = bytes(range(32)); k = hmac(key, b"altcha", sha256);
 * salt = "000102030405060708090a0b?expires=2000000000&";
 * challenge = sha256(salt + "4711"); signature = hmac(k, challenge hex).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "altcha.h"
#include "base64.h"
#include "unit.h"

#define SALT "000102030405060708090a0b?expires=2000000000&"
#define CHALLENGE "9dd7643c88c16039c712c5069fa8de59577f2519dc9ad9e59a1040e837d2be16"
#define SIGNATURE "f133c7d7022c09ab01a7ffad8f3f92cfe0ffb2f4f829768880f3914a0151854f"
#define EXPIRES 2000000000

static uint8_t keys[2][SECRET_KEY_LEN];

static void setup_keys(void)
{
        uint8_t key[SECRET_KEY_LEN];
        for (int i = 0; i < SECRET_KEY_LEN; i++)
                key[i] = (uint8_t)i;
        altcha_key(key, keys[0]);
        memset(key, 0xff, sizeof(key));
        altcha_key(key, keys[1]);
}

static void test_key_vector(void)
{
        char hex[65];
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", keys[0][i]);
        CHECK_STR(hex, "1f564fb6d1992d335c5a9fb6fa64a692b47e4e78642ffd6c1a0522c134c59a6d");
}

/* base64 of a JSON text, into a buffer of the caller's. */
static const char *b64(const char *json, char *out)
{
        base64_encode(json, strlen(json), out, 0);
        return out;
}

static enum altcha_verdict verify_json(const char *json, size_t nkeys, int64_t now,
                                       struct altcha_solution *sol)
{
        char buf[2048];
        b64(json, buf);
        return altcha_verify((const uint8_t (*)[SECRET_KEY_LEN])keys, nkeys, now, buf, strlen(buf), sol);
}

#define PAYLOAD(alg, chal, num, salt, sig) \
        "{\"algorithm\":\"" alg "\",\"challenge\":\"" chal "\",\"number\":" num \
        ",\"salt\":\"" salt "\",\"signature\":\"" sig "\"}"

static void test_verify_vector(void)
{
        struct altcha_solution sol;
        const char *good = PAYLOAD("SHA-256", CHALLENGE, "4711", SALT, SIGNATURE);
        CHECK_INT(verify_json(good, 1, EXPIRES - 1, &sol), ALTCHA_OK);
        CHECK_INT(sol.expires, EXPIRES);
        uint8_t want[32];
        for (int i = 0; i < 32; i++)
                sscanf(&CHALLENGE[2 * i], "%2hhx", &want[i]);
        CHECK_MEM(sol.challenge, 32, want, 32);
        /* expired from its second on */
        CHECK_INT(verify_json(good, 1, EXPIRES, &sol), ALTCHA_EXPIRED);
        /* signed by the second key of two (an older key): accepted; by none: refused */
        uint8_t right[SECRET_KEY_LEN];
        memcpy(right, keys[0], sizeof(right));
        memcpy(keys[0], keys[1], SECRET_KEY_LEN);
        memcpy(keys[1], right, SECRET_KEY_LEN);
        CHECK_INT(verify_json(good, 2, 0, &sol), ALTCHA_OK);
        CHECK_INT(verify_json(good, 1, 0, &sol), ALTCHA_BAD_SIGNATURE);
        CHECK_INT(verify_json(good, 0, 0, &sol), ALTCHA_BAD_SIGNATURE);
        setup_keys();
        /* the widget's "took" */
        CHECK_INT(verify_json("{\"algorithm\":\"SHA-256\",\"challenge\":\"" CHALLENGE "\",\"number\":4711,"
                              "\"salt\":\"" SALT "\",\"signature\":\"" SIGNATURE "\",\"took\":87}",
                              1, 0, &sol), ALTCHA_OK);
}

static void test_wrong(void)
{
        struct altcha_solution sol;
        CHECK_INT(verify_json(PAYLOAD("SHA-256", CHALLENGE, "4712", SALT, SIGNATURE), 1, 0, &sol),
                  ALTCHA_WRONG_NUMBER);
        CHECK_INT(verify_json(PAYLOAD("SHA-256", CHALLENGE, "0", SALT, SIGNATURE), 1, 0, &sol),
                  ALTCHA_WRONG_NUMBER);
        /* another salt of the right form: the number no longer gives the challenge */
        CHECK_INT(verify_json(PAYLOAD("SHA-256", CHALLENGE, "4711",
                                      "000102030405060708090a0b?expires=2000000001&", SIGNATURE),
                              1, 0, &sol), ALTCHA_WRONG_NUMBER);
        CHECK_INT(verify_json(PAYLOAD("SHA-256", CHALLENGE, "4711", SALT,
                                      "f133c7d7022c09ab01a7ffad8f3f92cfe0ffb2f4f829768880f3914a0151854e"),
                              1, 0, &sol), ALTCHA_BAD_SIGNATURE);
        /* number splicing: "…&4" + "711" hashes the same, and is refused */
        CHECK_INT(verify_json(PAYLOAD("SHA-256", CHALLENGE, "711", SALT "4", SIGNATURE), 1, 0, &sol),
                  ALTCHA_MALFORMED);
}

static void test_malformed(void)
{
        struct altcha_solution sol;
        static const char *const bad[] = {
                PAYLOAD("SHA-1", CHALLENGE, "4711", SALT, SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "-1", SALT, SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "10000001", SALT, SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711.0", SALT, SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "\"4711\"", SALT, SIGNATURE),
                PAYLOAD("SHA-256", "9DD7643C88C16039C712C5069FA8DE59577F2519DC9AD9E59A1040E837D2BE16", "4711",
                        SALT, SIGNATURE),
                PAYLOAD("SHA-256", "9dd7643c", "4711", SALT, SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711", SALT, "f133"),
                PAYLOAD("SHA-256", CHALLENGE, "4711", "000102030405060708090a0b?expires=2000000000", SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711", "000102030405060708090a0b?expires=&", SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711", "000102030405060708090a0b?expires=02000000000&", SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711", "000102030405060708090a0B?expires=2000000000&", SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711", "0001020304050607?expires=2000000000&", SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711", "000102030405060708090a0b?expires=99999999999999999999&",
                        SIGNATURE),
                PAYLOAD("SHA-256", CHALLENGE, "4711", "000102030405060708090a0b?expire=2000000000&", SIGNATURE),
                "{\"algorithm\":\"SHA-256\",\"challenge\":\"" CHALLENGE "\",\"number\":4711,\"salt\":\"" SALT "\"}",
                "{\"algorithm\":\"SHA-256\",\"challenge\":\"" CHALLENGE "\",\"number\":4711,\"salt\":\"" SALT
                "\",\"signature\":\"" SIGNATURE "\",\"more\":1}",
                "{\"algorithm\":\"SHA-256\",\"challenge\":\"" CHALLENGE "\",\"number\":4711,\"salt\":\"" SALT
                "\",\"signature\":\"" SIGNATURE "\",\"took\":\"x\"}",
                "{\"algorithm\":\"SHA-256\",\"algorithm\":\"SHA-256\",\"challenge\":\"" CHALLENGE
                "\",\"number\":4711,\"salt\":\"" SALT "\",\"signature\":\"" SIGNATURE "\"}",
                "[]", "null", "", "{}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (!CHECK_INT(verify_json(bad[i], 1, 0, &sol), ALTCHA_MALFORMED))
                        fprintf(stderr, "    payload %zu: %s\n", i, bad[i]);
        /* not base64, or too long to be one of ours */
        static char big[3000];
        memset(big, 'A', sizeof(big) - 1);
        const char *const raw[] = { "not base64", "eyJ", big };
        for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
                CHECK_INT(altcha_verify((const uint8_t (*)[SECRET_KEY_LEN])keys, 1, 0, raw[i], strlen(raw[i]),
                                        &sol), ALTCHA_MALFORMED);
}

/* A new challenge: well formed, solvable within maxnumber, verified. */
static void test_new_solvable(void)
{
        for (int round = 0; round < 20; round++) {
                struct altcha_challenge ch;
                REQUIRE(altcha_challenge_new(keys[0], 300, EXPIRES, &ch) == 0);
                CHECK_UINT(ch.maxnumber, 300);
                CHECK_UINT(strlen(ch.salt), 24 + strlen("?expires=2000000000&"));
                CHECK(strstr(ch.salt, "?expires=2000000000&") == ch.salt + 24);
                long found = -1;
                for (long n = 0; n <= 300 && found < 0; n++) {
                        char text[128], want[65];
                        uint8_t md[32];
                        int len = snprintf(text, sizeof(text), "%s%ld", ch.salt, n);
                        EVP_Digest(text, (size_t)len, md, NULL, EVP_sha256(), NULL);
                        for (int i = 0; i < 32; i++)
                                snprintf(want + 2 * i, 3, "%02x", md[i]);
                        if (strcmp(want, ch.challenge) == 0)
                                found = n;
                }
                REQUIRE(found >= 0);
                char json[512];
                snprintf(json, sizeof(json),
                         "{\"algorithm\":\"SHA-256\",\"challenge\":\"%s\",\"number\":%ld,\"salt\":\"%s\","
                         "\"signature\":\"%s\"}", ch.challenge, found, ch.salt, ch.signature);
                struct altcha_solution sol;
                CHECK_INT(verify_json(json, 1, EXPIRES - 1, &sol), ALTCHA_OK);
        }
}

int main(void)
{
        setup_keys();
        RUN(test_key_vector);
        RUN(test_verify_vector);
        RUN(test_wrong);
        RUN(test_malformed);
        RUN(test_new_solvable);
        return unit_finish();
}
