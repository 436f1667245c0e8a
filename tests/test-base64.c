/*
 * test-base64.c - the one base64 module: the RFC 4648 section 10 vectors
 * in both alphabets, with and without padding; what the strict decoder
 * refuses (its callers: link tokens, the bounce request); what the lenient
 * MIME decoder makes of line breaks, junk and cut bodies (its caller: the
 * bounce reader); and encodings byte-identical to OpenSSL's
 * EVP_EncodeBlock, which mime.c, dkim.c and newsletterctl used before.
 *
 * The vectors marked "Python" were computed with /usr/bin/python3's base64
 * module (b64encode, urlsafe_b64encode, encodebytes, b64decode) and pasted.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "base64.h"
#include "unit.h"

#define URL_NOPAD       (BASE64_URL | BASE64_NOPAD)

/* Encode with a sentinel after the room promised: nothing written past it. */
static void check_encode(const void *in, size_t n, unsigned flags, const char *want)
{
        char out[512];
        size_t room = base64_encoded_len(n, flags) + 1;
        REQUIRE(room < sizeof(out));
        memset(out, '#', sizeof(out));
        size_t len = base64_encode(in, n, out, flags);
        CHECK_UINT(len, strlen(want));
        CHECK_UINT(len, room - 1);
        CHECK_STR(out, want);                   /* the NUL too */
        CHECK(out[room] == '#');
}

/* Strict decode of text to exactly the bytes want[0..n). */
static void check_decode(const char *text, unsigned flags, const void *want, size_t n)
{
        uint8_t out[512];
        size_t len = 0, room = base64_decoded_max(strlen(text));
        REQUIRE(room + 1 < sizeof(out));
        memset(out, 0xa5, sizeof(out));
        if (!CHECK(base64_decode(text, strlen(text), out, &len, flags))) {
                fprintf(stderr, "    refused \"%s\" (flags %u)\n", text, flags);
                return;
        }
        CHECK_MEM(out, len, want, n);
        CHECK(len <= room);
        CHECK_UINT(out[len], 0xa5);
}

static void check_refused(const char *text, size_t n, unsigned flags)
{
        uint8_t out[512];
        size_t len = 12345;
        if (!CHECK(!base64_decode(text, n, out, &len, flags)))
                fprintf(stderr, "    accepted \"%.*s\" (flags %u)\n", (int)n, text, flags);
}

static void check_mime(const char *text, size_t n, const void *want, size_t want_n)
{
        uint8_t out[1024];
        REQUIRE(base64_decoded_max(n) < sizeof(out));
        memset(out, 0xa5, sizeof(out));
        size_t len = base64_decode_mime(text, n, out);
        CHECK_MEM(out, len, want, want_n);
        CHECK(len <= base64_decoded_max(n));
        CHECK_UINT(out[len], 0xa5);
}

/* ---- RFC 4648 section 10 ------------------------------------------------ */

static const struct {
        const char *in, *padded, *bare;
} rfc[] = {
        { "", "", "" },
        { "f", "Zg==", "Zg" },
        { "fo", "Zm8=", "Zm8" },
        { "foo", "Zm9v", "Zm9v" },
        { "foob", "Zm9vYg==", "Zm9vYg" },
        { "fooba", "Zm9vYmE=", "Zm9vYmE" },
        { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
};

static void test_rfc4648(void)
{
        for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
                const char *in = rfc[i].in;
                size_t n = strlen(in);
                /* these bytes give the same text in both alphabets */
                check_encode(in, n, 0, rfc[i].padded);
                check_encode(in, n, BASE64_URL, rfc[i].padded);
                check_encode(in, n, BASE64_NOPAD, rfc[i].bare);
                check_encode(in, n, URL_NOPAD, rfc[i].bare);
                check_decode(rfc[i].padded, 0, in, n);
                check_decode(rfc[i].padded, BASE64_URL, in, n);
                check_decode(rfc[i].bare, BASE64_NOPAD, in, n);
                check_decode(rfc[i].bare, URL_NOPAD, in, n);
                check_mime(rfc[i].padded, strlen(rfc[i].padded), in, n);
                check_mime(rfc[i].bare, strlen(rfc[i].bare), in, n);
        }
}

/* ---- the two alphabets -------------------------------------------------- */

/* Bytes that hit values 62 and 63 (Python: b64encode / urlsafe_b64encode). */
static const uint8_t high[] = { 0xfb, 0xff, 0xbf, 0x00, 0x3e };
static const struct {
        const char *std, *url;
} high_text[] = {
        { "", "" },
        { "+w==", "-w==" },
        { "+/8=", "-_8=" },
        { "+/+/", "-_-_" },
        { "+/+/AA==", "-_-_AA==" },
        { "+/+/AD4=", "-_-_AD4=" },
};

/* Without its '=' (what tokens are). */
static void strip_pad(const char *s, char *out)
{
        size_t n = strcspn(s, "=");
        memcpy(out, s, n);
        out[n] = '\0';
}

static void test_alphabets(void)
{
        for (size_t n = 0; n <= sizeof(high); n++) {
                char bare[16];
                check_encode(high, n, 0, high_text[n].std);
                check_encode(high, n, BASE64_URL, high_text[n].url);
                strip_pad(high_text[n].url, bare);
                check_encode(high, n, URL_NOPAD, bare);
                check_decode(high_text[n].std, 0, high, n);
                check_decode(high_text[n].url, BASE64_URL, high, n);
                check_decode(bare, URL_NOPAD, high, n);
                if (n == 0)
                        continue;
                /* each alphabet refuses the other's two characters */
                check_refused(high_text[n].std, strlen(high_text[n].std), BASE64_URL);
                check_refused(high_text[n].url, strlen(high_text[n].url), 0);
                /* the MIME reader knows only the standard alphabet */
                check_mime(high_text[n].std, strlen(high_text[n].std), high, n);
        }
}

/* ---- the strict decoder ------------------------------------------------- */

static void test_strict_refuses(void)
{
        static const char *const padded_bad[] = {
                "Zg", "Zm8", "Zm9vY", "Zg=", "Zm9vYg=",         /* not a multiple of 4 */
                "Z===", "====", "Zg==Zg==", "Zm=v", "=Zm9",     /* '=' out of place */
                "Zh==", "Zm9=",                                 /* spare bits not 0 */
                "Zm9v\n", "Zm9v\r\nYmFy", " Zm9v", "Zm 9v", "Zm9v\t", /* blanks */
                "Zm9-", "Zm9_", "Zm.v", "Zm9v~~~~",             /* outside the alphabet */
        };
        for (size_t i = 0; i < sizeof(padded_bad) / sizeof(padded_bad[0]); i++)
                check_refused(padded_bad[i], strlen(padded_bad[i]), 0);
        check_refused("Zm\0v", 4, 0);
        check_refused("Zm9v\xc3\xa4" "AA", 8, 0);

        static const char *const bare_bad[] = {
                "Zg==", "Zm8=", "Z", "Zm9vY",                   /* padding, 4k + 1 */
                "Zh", "Zm9",                                    /* spare bits not 0 */
                "-w=", "Zm+v", "Zm/v", "Zm9v\n", "Zm 9v",
        };
        for (size_t i = 0; i < sizeof(bare_bad) / sizeof(bare_bad[0]); i++)
                check_refused(bare_bad[i], strlen(bare_bad[i]), URL_NOPAD);
        check_refused("Zm\0v", 4, URL_NOPAD);

        /* every character that may end a 2- and a 3-character group */
        static const char alphabet[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t ends2 = 0, ends3 = 0;
        for (size_t i = 0; i < 64; i++) {
                char two[3] = { 'A', alphabet[i], 0 }, three[4] = { 'A', 'A', alphabet[i], 0 };
                uint8_t out[4];
                size_t len;
                if (base64_decode(two, 2, out, &len, URL_NOPAD))
                        ends2++;
                if (base64_decode(three, 3, out, &len, URL_NOPAD))
                        ends3++;
        }
        CHECK_UINT(ends2, 4);           /* A Q g w */
        CHECK_UINT(ends3, 16);          /* A E I M ... 0 4 8 */
}

/* ---- the lenient MIME decoder ------------------------------------------- */

/* Python: base64.encodebytes(bytes(range(256))): lines of 76 and LF. */
static const char python_lines[] =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\n"
        "OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\n"
        "cnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmq\n"
        "q6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj\n"
        "5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==\n";

static void test_mime(void)
{
        uint8_t all[256];
        for (size_t i = 0; i < 256; i++)
                all[i] = (uint8_t)i;
        check_mime(python_lines, sizeof(python_lines) - 1, all, 256);

        /* the same with CRLF, blanks and junk in the lines */
        char crlf[sizeof(python_lines) * 2];
        size_t n = 0;
        for (const char *p = python_lines; *p; p++) {
                if (*p == '\n')
                        crlf[n++] = '\r';
                crlf[n++] = *p;
                if (*p == 'Q')
                        crlf[n++] = ' ';
                if (*p == 'z')
                        crlf[n++] = '*';
        }
        check_mime(crlf, n, all, 256);

        /* Python's b64decode(validate=False) agrees on junk */
        check_mime(LIT("Zm*9v YmFy"), "foobar", 6);
        check_mime(LIT("Zm9v\r\n\r\nYmFy\r\n"), "foobar", 6);
        check_mime(LIT("\t Zm9v\x00YmFy"), "foobar", 6);
        check_mime(LIT("-_Zm9v"), "foo", 3);            /* URL-safe characters are junk here */
        /* the first '=' ends the data, whatever follows */
        check_mime(LIT("Zg==Zm9v"), "f", 1);
        check_mime(LIT("Zm9vYmFy=garbage"), "foobar", 6);
        check_mime(LIT("=Zm9v"), "", 0);
        /* a cut body: a last incomplete group gives its whole bytes */
        check_mime(LIT("Zm9vY"), "foo", 3);
        check_mime(LIT("Zm9vYm"), "foob", 4);
        check_mime(LIT("Zm9vYmE"), "fooba", 5);
        check_mime(LIT("Zh"), "f", 1);                  /* spare bits are ignored */
        check_mime(LIT(""), "", 0);
        check_mime(LIT("\r\n!!!\r\n"), "", 0);
}

/* ---- against OpenSSL, and round trips ----------------------------------- */

static void test_openssl_and_round_trips(void)
{
        /* Python: b64encode(bytes(range(255, -1, -1))[:100]) */
        uint8_t down[100];
        for (size_t i = 0; i < sizeof(down); i++)
                down[i] = (uint8_t)(255 - i);
        check_encode(down, sizeof(down), 0,
                     "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eDf3t3c29rZ2NfW1dTT0tHQz87NzMvKycjH"
                     "xsXEw8LBwL++vby7urm4t7a1tLOysbCvrq2sq6qpqKempaSjoqGgn56dnA==");

        uint32_t seed = 18;
        for (size_t n = 0; n <= 200; n++) {
                uint8_t in[200], back[200 + 2];
                for (size_t i = 0; i < n; i++) {
                        seed = seed * 1103515245u + 12345u;
                        in[i] = (uint8_t)(seed >> 16);
                }
                /* what mime.c, dkim.c and newsletterctl produced before */
                char ours[300];
                unsigned char theirs[300];
                size_t len = base64_encode(in, n, ours, 0);
                int evp = EVP_EncodeBlock(theirs, in, (int)n);
                if (!CHECK_MEM(ours, len, theirs, (size_t)evp))
                        fprintf(stderr, "    n = %zu\n", n);
                static const unsigned flags[] = { 0, BASE64_URL, BASE64_NOPAD, URL_NOPAD };
                for (size_t f = 0; f < 4; f++) {
                        size_t blen = 0;
                        len = base64_encode(in, n, ours, flags[f]);
                        CHECK_UINT(len, base64_encoded_len(n, flags[f]));
                        CHECK(base64_decode(ours, len, back, &blen, flags[f]));
                        CHECK_MEM(back, blen, in, n);
                        CHECK(blen <= base64_decoded_max(len));
                }
                len = base64_encode(in, n, ours, 0);
                CHECK_UINT(base64_decode_mime(ours, len, back), n);
                CHECK(memcmp(back, in, n) == 0);
        }
}

int main(void)
{
        RUN(test_rfc4648);
        RUN(test_alphabets);
        RUN(test_strict_refuses);
        RUN(test_mime);
        RUN(test_openssl_and_round_trips);
        return unit_finish();
}
