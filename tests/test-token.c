/*
 * test-token.c - link tokens: fresh ones are 43 base64url characters from
 * 32 random bytes, their hash is the SHA-256 of those bytes, and parsing
 * accepts exactly the canonical text form.  The expected values below were
 * computed independently with Python (base64.urlsafe_b64encode, hashlib).
 */
#include <stdint.h>
#include <string.h>

#include "base64.h"
#include "token.h"
#include "unit.h"

static bool is_b64url(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[p[i] >> 4];
                out[2 * i + 1] = hex[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static void test_new(void)
{
        struct token t, u;
        REQUIRE(token_new(&t) == 0);
        CHECK_UINT(strlen(t.text), TOKEN_TEXT_LEN);
        bool alphabet = true;
        for (size_t i = 0; i < TOKEN_TEXT_LEN; i++)
                if (!is_b64url(t.text[i]))
                        alphabet = false;
        CHECK(alphabet);
        CHECK(strchr(t.text, '=') == NULL);

        /* the text is the encoding of raw, and the hash that of raw */
        char enc[TOKEN_TEXT_LEN + 2];
        CHECK_UINT(base64_encode(t.raw, TOKEN_BYTES, enc, BASE64_URL | BASE64_NOPAD), TOKEN_TEXT_LEN);
        CHECK_STR(enc, t.text);
        char h1[65], h2[65];
        sha256_hex(t.raw, TOKEN_BYTES, h1);
        hex_of(t.hash, TOKEN_HASH_LEN, h2);
        CHECK_STR(h1, h2);

        /* it parses back to the same bytes */
        REQUIRE(token_parse(t.text, TOKEN_TEXT_LEN, &u));
        CHECK(memcmp(t.raw, u.raw, TOKEN_BYTES) == 0);
        CHECK(memcmp(t.hash, u.hash, TOKEN_HASH_LEN) == 0);

        /* tokens differ from each other */
        static struct token many[200];
        for (size_t i = 0; i < 200; i++)
                REQUIRE(token_new(&many[i]) == 0);
        size_t same = 0;
        for (size_t i = 0; i < 200; i++)
                for (size_t j = i + 1; j < 200; j++)
                        if (memcmp(many[i].raw, many[j].raw, TOKEN_BYTES) == 0 ||
                            strcmp(many[i].text, many[j].text) == 0)
                                same++;
        CHECK_UINT(same, 0);
}

/* Known vectors: raw bytes, their text, their SHA-256. */
static const struct {
        uint8_t fill;           /* 0xff or 0x00, or 1 for 0, 1, 2, ... 31 */
        const char *text;
        const char *sha256;
} vectors[] = {
        { 1, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
          "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd" },
        { 0xff, "__________________________________________8",
          "af9613760f72635fbdb44a5a0a63c39f12af30f950a6ee5c971be188e89c4051" },
        { 0x00, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
          "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925" },
};

static void test_vectors(void)
{
        for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
                uint8_t raw[TOKEN_BYTES];
                for (size_t i = 0; i < TOKEN_BYTES; i++)
                        raw[i] = vectors[v].fill == 1 ? (uint8_t)i : vectors[v].fill;
                char text[TOKEN_TEXT_LEN + 2], hex[65];
                CHECK_UINT(base64_encode(raw, TOKEN_BYTES, text, BASE64_URL | BASE64_NOPAD), TOKEN_TEXT_LEN);
                CHECK_STR(text, vectors[v].text);

                struct token t;
                memset(&t, 0xaa, sizeof(t));
                REQUIRE(token_parse(vectors[v].text, TOKEN_TEXT_LEN, &t));
                CHECK(memcmp(t.raw, raw, TOKEN_BYTES) == 0);
                CHECK_STR(t.text, vectors[v].text);
                hex_of(t.hash, TOKEN_HASH_LEN, hex);
                CHECK_STR(hex, vectors[v].sha256);
                sha256_hex(raw, TOKEN_BYTES, hex);
                CHECK_STR(hex, vectors[v].sha256);
        }
        char hex[65];
        sha256_hex("abc", 3, hex);
        CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("", 0, hex);
        CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_parse_rejects(void)
{
        const char *good = vectors[0].text;
        char s[64];
        struct token t;

        CHECK(token_parse(good, 43, &t));
        CHECK(!token_parse(good, 42, &t));              /* too short */
        memcpy(s, good, 43);
        s[43] = 'A';
        CHECK(!token_parse(s, 44, &t));                 /* too long */
        CHECK(!token_parse("", 0, &t));
        /* standard base64 characters, padding, blanks, NUL */
        const char bad[] = { '+', '/', '=', ' ', '.', '\0', '\n', '~', (char)0xc3 };
        for (size_t i = 0; i < sizeof(bad); i++) {
                for (size_t pos = 0; pos < 43; pos += 21) {
                        memcpy(s, good, 43);
                        s[pos] = bad[i];
                        if (!CHECK(!token_parse(s, 43, &t)))
                                fprintf(stderr, "    bad char 0x%02x at %zu\n",
                                        (unsigned char)bad[i], pos);
                }
        }
        /* padded form of a 32-byte value: 44 characters ending in '=' */
        snprintf(s, sizeof(s), "%s=", good);
        CHECK(!token_parse(s, 44, &t));

        /*
         * Canonical last character: 43 characters carry 258 bits for 256, so
         * the last one's low 2 bits must be 0: only A E I M Q U Y c g k o s
         * w 0 4 8 may end a token, every other character is refused there.
         */
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *canon = "AEIMQUYcgkosw048";
        size_t accepted = 0;
        for (const char *p = alphabet; *p; p++) {
                memcpy(s, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 43);
                s[42] = *p;
                const char *k = strchr(canon, *p);
                bool ok = token_parse(s, 43, &t);
                if (!CHECK(ok == (k != NULL)))
                        fprintf(stderr, "    last char '%c': %s\n", *p, ok ? "accepted" : "refused");
                if (ok) {
                        accepted++;
                        CHECK_UINT(t.raw[31], (unsigned)(k - canon));
                        CHECK_UINT(t.raw[30], 0);
                }
        }
        CHECK_UINT(accepted, 16);
        /* the example: a 43-character string ending in 'B' */
        memcpy(s, vectors[0].text, 43);
        s[42] = 'B';
        CHECK(!token_parse(s, 43, &t));
}

int main(void)
{
        RUN(test_new);
        RUN(test_vectors);
        RUN(test_parse_rejects);
        return unit_finish();
}
