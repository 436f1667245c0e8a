/*
 * mime.c - builds the mails: RFC 5322 headers, MIME parts, RFC 2047 encoded
 * words, quoted-printable bodies, CRLF line ends, no line over 998 octets.
 * This is the one place text turns into header lines, so this is where CR,
 * LF and NUL are refused (refused: never stripped).  A leaf: no I/O.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <uuid/uuid.h>

#include "base64.h"
#include "bounds.h"
#include "csprng.h"
#include "mime.h"

bool mime_has_control(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return true;
        }
        return false;
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
bool mime_utf8_valid(const char *str, size_t n)
{
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0;
        while (i < n) {
                /* runs of ASCII, eight octets at a time */
                while (n - i >= 8) {
                        uint64_t w;
                        memcpy(&w, s + i, 8);
                        if (w & UINT64_C(0x8080808080808080))
                                break;
                        i += 8;
                }
                if (i >= n)
                        break;
                unsigned char c = s[i];
                size_t len;
                uint32_t cp;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf) {
                        len = 2;
                        cp = c & 0x1f;
                } else if (c >= 0xe0 && c <= 0xef) {
                        len = 3;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        len = 4;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if (n - i < len)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += len;
        }
        return true;
}

static bool is_ascii_printable(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c > 0x7e)
                        return false;
        }
        return true;
}

static bool b64_append(struct buf *out, const unsigned char *p, size_t n)
{
        char tmp[4 * ((SMTP_REPLY_MAX + 2) / 3) + 1];
        if (n > 3 * ((sizeof(tmp) - 1) / 4))
                return false;
        return buf_append(out, tmp, base64_encode(p, n, tmp, 0));
}

/* Encoded words of at most this many input octets keep every folded line
 * under 78 characters, "Subject: " included. */
#define EW_CHUNK 39

/* Encoded words of at most EW_CHUNK octets each, folded onto lines of their own. */
static enum mime_result encode_words(const char *s, size_t n, struct buf *out)
{
        size_t i = 0;
        bool first = true;
        while (i < n || first) {
                size_t take = n - i < EW_CHUNK ? n - i : EW_CHUNK;
                /* never split a UTF-8 sequence between two words */
                while (take < n - i && take > 0 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
                        take--;
                if (!first && !buf_append(out, "\r\n ", 3))
                        return MIME_TOO_LONG;
                if (!buf_puts(out, "=?UTF-8?B?") ||
                    !b64_append(out, (const unsigned char *)s + i, take) ||
                    !buf_puts(out, "?="))
                        return MIME_TOO_LONG;
                i += take;
                first = false;
        }
        return MIME_OK;
}

enum mime_result mime_encode_header_text(const char *s, struct buf *out, size_t used)
{
        size_t n = strlen(s);

        if (mime_has_control(s, n))
                return MIME_HEADER_CONTROL;
        if (!mime_utf8_valid(s, n))
                return MIME_BAD_UTF8;
        /* plain ASCII without "=?" needs no encoding; it only has to fit */
        if (is_ascii_printable(s, n) && !strstr(s, "=?") && used + n <= MAIL_LINE_MAX)
                return buf_append(out, s, n) ? MIME_OK : MIME_TOO_LONG;
        return encode_words(s, n, out);
}

/* RFC 5322 phrase for a display name: atoms as they are, other ASCII as a
 * quoted-string, anything else, and anything too long for one line next to
 * the address, as encoded words. */
static enum mime_result encode_display_name(const char *name, const char *addr, struct buf *out)
{
        size_t n = strlen(name);
        if (mime_has_control(name, n))
                return MIME_HEADER_CONTROL;
        if (!mime_utf8_valid(name, n))
                return MIME_BAD_UTF8;
        if (!is_ascii_printable(name, n) || strstr(name, "=?") ||
            sizeof("From: \"\" <>") + 2 * n + strlen(addr) > MAIL_LINE_MAX)
                return encode_words(name, n, out);
        bool atoms = true;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)name[i];
                if (!(c == ' ' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                      (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-/=?^_`{|}~", c)))
                        atoms = false;
        }
        if (atoms)
                return buf_append(out, name, n) ? MIME_OK : MIME_TOO_LONG;
        if (!buf_putc(out, '"'))
                return MIME_TOO_LONG;
        for (size_t i = 0; i < n; i++) {
                if ((name[i] == '"' || name[i] == '\\') && !buf_putc(out, '\\'))
                        return MIME_TOO_LONG;
                if (!buf_putc(out, name[i]))
                        return MIME_TOO_LONG;
        }
        return buf_putc(out, '"') ? MIME_OK : MIME_TOO_LONG;
}

void mime_encode_qp(const char *s, size_t n, struct buf *out)
{
        static const char hex[] = "0123456789ABCDEF";
        /* worst case: every octet as =XX, plus a soft break per 25 of them */
        if (n > (SIZE_MAX - 64) / 4 || !buf_reserve(out, 3 * n + n / 8 + 64))
                return;
        char *o = out->data + out->len;
        size_t i = 0;
        while (i < n) {
                const char *nl = memchr(s + i, '\n', n - i);
                size_t end = nl ? (size_t)(nl - s) : n;
                size_t line_end = end;
                /* CRLF is a line end; a CR anywhere else is data */
                if (nl && line_end > i && s[line_end - 1] == '\r')
                        line_end--;
                size_t col = 0;
                for (size_t k = i; k < line_end;) {
                        /* a run of octets that stand for themselves, copied
                         * in pieces that fit the line */
                        size_t run = k;
                        while (run < line_end) {
                                unsigned char c = (unsigned char)s[run];
                                if (!((c >= 33 && c <= 126 && c != '=') ||
                                      ((c == ' ' || c == '\t') && run + 1 < line_end)))
                                        break;
                                run++;
                        }
                        while (k < run) {
                                if (col == 75) {
                                        memcpy(o, "=\r\n", 3);
                                        o += 3;
                                        col = 0;
                                }
                                size_t take = run - k < 75 - col ? run - k : 75 - col;
                                memcpy(o, s + k, take);
                                o += take;
                                col += take;
                                k += take;
                        }
                        if (k == line_end)
                                break;
                        unsigned char c = (unsigned char)s[k];
                        /* a UTF-8 sequence stays on one line */
                        size_t take = 1;
                        if (c >= 0xc0)
                                while (take < 4 && k + take < line_end &&
                                       ((unsigned char)s[k + take] & 0xc0) == 0x80)
                                        take++;
                        if (col + 3 * take > 75) {
                                memcpy(o, "=\r\n", 3);
                                o += 3;
                                col = 0;
                        }
                        for (size_t t = 0; t < take; t++) {
                                unsigned char b = (unsigned char)s[k + t];
                                *o++ = '=';
                                *o++ = hex[b >> 4];
                                *o++ = hex[b & 15];
                        }
                        col += 3 * take;
                        k += take;
                }
                *o++ = '\r';
                *o++ = '\n';
                i = nl ? end + 1 : n;
        }
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
}

/* RFC 5322 date in UTC, whatever the local time zone */
static void format_date(time_t t, char out[40])
{
        static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
}

/* "<uuid@domain>", a random (version 4) UUID */
static void message_id(const char *domain, char out[128])
{
        uuid_t u;
        char text[37];
        /* a version 4 UUID from OpenSSL's generator, drawn in bulk
         * (csprng.c): uuid_generate_random() makes six system calls and
         * reseeds random() every time (its fallback here) */
        if (csprng_bytes(u, sizeof(u)) == 0) {
                u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);   /* version 4 */
                u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);   /* variant of RFC 9562 */
        } else {
                uuid_generate_random(u);
        }
        uuid_unparse_lower(u, text);
        snprintf(out, 128, "<%s@%s>", text, domain);
}

static bool header_name_ok(const char *name)
{
        if (!*name)
                return false;
        for (const char *p = name; *p; p++)
                if (*p < 33 || *p > 126 || *p == ':')
                        return false;
        return true;
}

/* An addr-spec from our own validation; checked again because it lands in
 * a header. */
static enum mime_result check_addr(const char *a)
{
        size_t n = strlen(a);
        if (mime_has_control(a, n))
                return MIME_HEADER_CONTROL;
        if (!is_ascii_printable(a, n) || strpbrk(a, " <>\"(),;:\\[]"))
                return MIME_HEADER_8BIT;
        return MIME_OK;
}

static void boundary_new(char out[40])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char r[12];
        if (csprng_bytes(r, sizeof(r)) < 0)
                memset(r, 0x5a, sizeof(r));
        /* "=_" cannot occur in quoted-printable text, so it cannot occur in a part */
        memcpy(out, "=_nl_", 5);
        for (size_t i = 0; i < sizeof(r); i++) {
                out[5 + 2 * i] = hex[r[i] >> 4];
                out[6 + 2 * i] = hex[r[i] & 15];
        }
        out[5 + 2 * sizeof(r)] = '\0';
}

static void text_part(struct buf *out, const char *type, const char *text, size_t len,
                      const char *qp, size_t qp_len)
{
        buf_printf(out, "Content-Type: %s; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n", type);
        if (qp)
                buf_append(out, qp, qp_len);
        else
                mime_encode_qp(text, len, out);
}

enum mime_result mime_build(const struct mime_msg *m, struct buf *out)
{
        enum mime_result r;
        char date[40], msgid[128];

        if ((r = check_addr(m->from_addr)) != MIME_OK || (r = check_addr(m->to_addr)) != MIME_OK ||
            (r = check_addr(m->msgid_domain)) != MIME_OK)
                return r;
        bool html = m->html || m->html_qp;
        if ((!m->text_qp && !mime_utf8_valid(m->text, m->text_len)) ||
            (m->html && !m->html_qp && !mime_utf8_valid(m->html, m->html_len)))
                return MIME_BAD_UTF8;
        for (size_t i = 0; i < m->n_extra; i++) {
                const char *v = m->extra[i].value;
                size_t vn = strlen(v);
                if (!header_name_ok(m->extra[i].name))
                        return MIME_HEADER_NAME;
                if (mime_has_control(v, vn))
                        return MIME_HEADER_CONTROL;
                if (!is_ascii_printable(v, vn))
                        return MIME_HEADER_8BIT;
                if (strlen(m->extra[i].name) + 2 + vn > MAIL_LINE_MAX)
                        return MIME_TOO_LONG;
        }

        /* one allocation for the whole message, as far as it can be foreseen */
        buf_reserve(out, 2048 + (m->text_qp ? m->text_qp_len : m->text_len + m->text_len / 4) +
                         (m->html_qp ? m->html_qp_len : m->html ? m->html_len + m->html_len / 4 : 0));
        format_date(m->date, date);
        message_id(m->msgid_domain, msgid);
        buf_printf(out, "Date: %s\r\nFrom: ", date);
        if (m->from_name && *m->from_name) {
                if ((r = encode_display_name(m->from_name, m->from_addr, out)) != MIME_OK)
                        return r;
                buf_printf(out, " <%s>\r\n", m->from_addr);
        } else {
                buf_printf(out, "%s\r\n", m->from_addr);
        }
        buf_printf(out, "To: %s\r\nSubject: ", m->to_addr);
        if ((r = mime_encode_header_text(m->subject, out, sizeof("Subject: "))) != MIME_OK)
                return r;
        buf_printf(out, "\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n", msgid);
        for (size_t i = 0; i < m->n_extra; i++)
                buf_printf(out, "%s: %s\r\n", m->extra[i].name, m->extra[i].value);

        if (!html) {
                text_part(out, "text/plain", m->text, m->text_len, m->text_qp, m->text_qp_len);
        } else {
                char boundary[40];
                boundary_new(boundary);
                buf_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                                "This is a message in MIME format.\r\n\r\n--%s\r\n",
                           boundary, boundary);
                text_part(out, "text/plain", m->text, m->text_len, m->text_qp, m->text_qp_len);
                buf_printf(out, "\r\n--%s\r\n", boundary);
                text_part(out, "text/html", m->html, m->html_len, m->html_qp, m->html_qp_len);
                buf_printf(out, "\r\n--%s--\r\n", boundary);
        }
        return out->overflow ? MIME_TOO_LONG : MIME_OK;
}
