/* Mail address validation and normalisation (a leaf: no I/O). */
#pragma once
#include <stddef.h>
#include "bounds.h"

struct addr {
        /* local@domain as it will be mailed: local part as given, domain as
         * lower-case A-labels */
        char mailbox[ADDR_PATH_MAX + 1];
        /* the identity: mailbox lower-cased */
        char key[ADDR_PATH_MAX + 1];
        /* the domain (A-labels), a pointer into mailbox */
        const char *domain;
};

enum addr_result {
        ADDR_OK = 0,
        ADDR_EMPTY,             /* nothing but blanks */
        ADDR_CONTROL,           /* CR, LF, NUL or another control character */
        ADDR_SYNTAX,            /* not local@domain */
        ADDR_LOCAL,             /* local part not a Dot-string of ASCII atext */
        ADDR_LOCAL_LENGTH,      /* local part over 64 octets */
        ADDR_DOMAIN,            /* not a domain name (or IDN conversion failed) */
        ADDR_DOMAIN_LENGTH,     /* label over 63 or domain over 255 octets */
        ADDR_PATH_LENGTH,       /* whole address over 254 octets */
};

/* Validate an RFC 5321 Mailbox restricted to Dot-string local parts and
 * domain names; internationalised domains are converted to A-labels.
 * Leading and trailing blanks (SP, HTAB) are ignored; nothing else is
 * stripped.  `s` need not be NUL-terminated and may contain NUL. */
enum addr_result addr_parse(const char *s, size_t len, struct addr *out);

const char *addr_result_str(enum addr_result r);
