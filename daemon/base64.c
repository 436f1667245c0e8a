/*
 * base64.c - base64 (RFC 4648) for every module: link tokens in the
 * URL-safe alphabet without padding (token.c), MIME encoded words, DKIM
 * tags and the bounce message newsletterctl hands the daemon in standard
 * base64 with padding (mime.c, dkim.c, newsletterctl.c, handlers.c), and
 * the base64 bodies of returned mail (mailparse.c).
 *
 * Two decoders on purpose: the strict one takes only the canonical text
 * (what we made ourselves, or a token, where any other spelling is an
 * error); the lenient one reads MIME bodies as mail readers do.  Owns
 * nothing, never allocates, never reads or writes past the lengths given.
 */
#include <assert.h>
#include <stdint.h>

#include "base64.h"

static const char alphabet_std[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char alphabet_url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of a character of the alphabet; -1 for any other. */
static int sextet(char c, bool url)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == (url ? '-' : '+'))
                return 62;
        if (c == (url ? '_' : '/'))
                return 63;
        return -1;
}

size_t base64_encoded_len(size_t n, unsigned flags)
{
        assert(n <= SIZE_MAX / 4 * 3 - 3);
        if (flags & BASE64_NOPAD)
                return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
        return (n + 2) / 3 * 4;
}

size_t base64_decoded_max(size_t n)
{
        return n / 4 * 3 + 2;
}

size_t base64_encode(const void *in, size_t n, char *out, unsigned flags)
{
        const char *a = flags & BASE64_URL ? alphabet_url : alphabet_std;
        const uint8_t *p = in;
        size_t o = 0, i = 0;
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
                out[o++] = a[v >> 6 & 63];
                out[o++] = a[v & 63];
        }
        if (n - i > 0) {
                uint32_t v = (uint32_t)p[i] << 16 | (n - i == 2 ? (uint32_t)p[i + 1] << 8 : 0);
                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
                if (n - i == 2)
                        out[o++] = a[v >> 6 & 63];
                else if (!(flags & BASE64_NOPAD))
                        out[o++] = '=';
                if (!(flags & BASE64_NOPAD))
                        out[o++] = '=';
        }
        out[o] = '\0';
        return o;
}

bool base64_decode(const char *s, size_t n, void *out, size_t *out_len, unsigned flags)
{
        bool url = flags & BASE64_URL;
        uint8_t *o = out;
        size_t data = n, k = 0;
        uint32_t v = 0;
        if (!(flags & BASE64_NOPAD)) {
                if (n % 4)
                        return false;
                /* one or two '=' may end the last group; any other '=' is
                 * refused below as outside the alphabet */
                for (int pad = 0; pad < 2 && data > 0 && s[data - 1] == '='; pad++)
                        data--;
        }
        if (data % 4 == 1)
                return false;
        for (size_t i = 0; i < data; i++) {
                int d = sextet(s[i], url);
                if (d < 0)
                        return false;
                v = v << 6 | (uint32_t)d;
                if (i % 4 == 3) {
                        o[k++] = (uint8_t)(v >> 16);
                        o[k++] = (uint8_t)(v >> 8);
                        o[k++] = (uint8_t)v;
                        v = 0;
                }
        }
        /* a last group of 2 or 3 characters: 12 bits for one byte or 18
         * for two, the rest must be 0 */
        if (data % 4 == 2) {
                if (v & 0xf)
                        return false;
                o[k++] = (uint8_t)(v >> 4);
        } else if (data % 4 == 3) {
                if (v & 0x3)
                        return false;
                o[k++] = (uint8_t)(v >> 10);
                o[k++] = (uint8_t)(v >> 2);
        }
        *out_len = k;
        return true;
}

size_t base64_decode_mime(const char *s, size_t n, void *out)
{
        uint8_t *o = out;
        size_t k = 0;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n && s[i] != '='; i++) {
                int d = sextet(s[i], false);
                if (d < 0)
                        continue;
                acc = (acc << 6 | (uint32_t)d) & 0xffffff;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        o[k++] = (uint8_t)(acc >> bits & 0xff);
                }
        }
        return k;
}
