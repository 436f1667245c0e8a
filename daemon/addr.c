/*
 * addr.c - which strings are mail addresses we will send to.  An RFC 5321
 * Mailbox restricted to a Dot-string local part and a domain name: no quoted
 * local parts, no comments, no address literals, no non-ASCII local parts.
 * Internationalised domains become A-labels through libidn2.  CR, LF and NUL
 * anywhere are refused, never stripped.  A leaf: no I/O.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "addr.h"
#include "textutil.h"

/* RFC 5322 atext */
static bool is_atext(unsigned char c)
{
        if (isalnum(c))
                return c < 0x80;
        return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static enum addr_result check_local(const char *s, size_t n)
{
        if (n == 0)
                return ADDR_LOCAL;
        if (n > ADDR_LOCAL_MAX)
                return ADDR_LOCAL_LENGTH;
        if (s[0] == '.' || s[n - 1] == '.')
                return ADDR_LOCAL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '.') {
                        if (s[i + 1] == '.')
                                return ADDR_LOCAL;
                } else if (!is_atext(c)) {
                        return ADDR_LOCAL;
                }
        }
        return ADDR_OK;
}

/* A-label domain: LDH labels of 1..63, no hyphen at either end, at least
 * two labels, the top-level label not all digits. */
static enum addr_result check_domain(const char *d, size_t n)
{
        if (n == 0)
                return ADDR_DOMAIN;
        if (n > ADDR_DOMAIN_MAX)
                return ADDR_DOMAIN_LENGTH;
        size_t labels = 0, start = 0;
        for (size_t i = 0; i <= n; i++) {
                if (i < n && d[i] != '.') {
                        unsigned char c = (unsigned char)d[i];
                        if (!(c < 0x80 && (isalnum(c) || c == '-')))
                                return ADDR_DOMAIN;
                        continue;
                }
                size_t len = i - start;
                if (len == 0)
                        return ADDR_DOMAIN;
                if (len > 63)
                        return ADDR_DOMAIN_LENGTH;
                if (d[start] == '-' || d[i - 1] == '-')
                        return ADDR_DOMAIN;
                labels++;
                if (i == n) {
                        bool digits = true;
                        for (size_t k = start; k < i; k++)
                                if (!isdigit((unsigned char)d[k]))
                                        digits = false;
                        if (digits)
                                return ADDR_DOMAIN;
                }
                start = i + 1;
        }
        return labels >= 2 ? ADDR_OK : ADDR_DOMAIN;
}

static bool needs_idna(const char *d, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)d[i] >= 0x80)
                        return true;
        for (size_t i = 0; i + 4 <= n; i++)
                if ((i == 0 || d[i - 1] == '.') && strncasecmp(d + i, "xn--", 4) == 0)
                        return true;
        return false;
}

enum addr_result addr_parse(const char *s, size_t len, struct addr *out)
{
        memset(out, 0, sizeof(*out));
        if (len > ADDR_INPUT_MAX)
                return ADDR_PATH_LENGTH;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return ADDR_CONTROL;
        }
        while (len && is_wsp(s[0])) {
                s++;
                len--;
        }
        while (len && is_wsp(s[len - 1]))
                len--;
        if (len == 0)
                return ADDR_EMPTY;

        const char *at = memrchr(s, '@', len);
        if (!at)
                return ADDR_SYNTAX;
        size_t local_len = (size_t)(at - s);
        const char *dom = at + 1;
        size_t dom_len = len - local_len - 1;
        if (local_len == 0 || dom_len == 0)
                return ADDR_SYNTAX;

        enum addr_result r = check_local(s, local_len);
        if (r != ADDR_OK)
                return r;

        char domain[ADDR_DOMAIN_MAX + 1];
        size_t domain_len;
        if (needs_idna(dom, dom_len)) {
                char in[ADDR_INPUT_MAX + 1];    /* idn2 wants a terminated string */
                uint8_t *alabel = NULL;
                memcpy(in, dom, dom_len);
                in[dom_len] = '\0';
                int rc = idn2_lookup_u8((const uint8_t *)in, &alabel,
                                        IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
                if (rc != IDN2_OK) {
                        idn2_free(alabel);
                        return rc == IDN2_TOO_BIG_DOMAIN || rc == IDN2_TOO_BIG_LABEL ||
                               rc == IDN2_PUNYCODE_BIG_OUTPUT ? ADDR_DOMAIN_LENGTH : ADDR_DOMAIN;
                }
                domain_len = strlen((char *)alabel);
                if (domain_len > ADDR_DOMAIN_MAX) {
                        idn2_free(alabel);
                        return ADDR_DOMAIN_LENGTH;
                }
                memcpy(domain, alabel, domain_len);
                idn2_free(alabel);
        } else {
                if (dom_len > ADDR_DOMAIN_MAX)
                        return ADDR_DOMAIN_LENGTH;
                memcpy(domain, dom, dom_len);
                domain_len = dom_len;
        }
        domain[domain_len] = '\0';
        for (size_t i = 0; i < domain_len; i++)
                domain[i] = (char)tolower((unsigned char)domain[i]);
        r = check_domain(domain, domain_len);
        if (r != ADDR_OK)
                return r;

        if (local_len + 1 + domain_len > ADDR_PATH_MAX)
                return ADDR_PATH_LENGTH;
        memcpy(out->mailbox, s, local_len);
        out->mailbox[local_len] = '@';
        memcpy(out->mailbox + local_len + 1, domain, domain_len + 1);
        out->domain = out->mailbox + local_len + 1;
        for (size_t i = 0; out->mailbox[i]; i++)
                out->key[i] = (char)tolower((unsigned char)out->mailbox[i]);
        return ADDR_OK;
}

const char *addr_result_str(enum addr_result r)
{
        switch (r) {
        case ADDR_OK: return "valid";
        case ADDR_EMPTY: return "empty address";
        case ADDR_CONTROL: return "control character in address";
        case ADDR_SYNTAX: return "not of the form local@domain";
        case ADDR_LOCAL: return "local part is not a dot-string of ASCII characters";
        case ADDR_LOCAL_LENGTH: return "local part longer than 64 octets";
        case ADDR_DOMAIN: return "domain is not a valid domain name";
        case ADDR_DOMAIN_LENGTH: return "domain or one of its labels too long";
        case ADDR_PATH_LENGTH: return "address longer than 254 octets";
        }
        return "invalid address";
}
