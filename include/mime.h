/* Building RFC 5322 / MIME messages (a leaf: no I/O).  Everything that
 * reaches a header goes through here, and here CR, LF and NUL are refused. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "buf.h"

struct mime_header {
        const char *name;       /* e.g. "List-Id" */
        const char *value;      /* printable ASCII */
};

struct mime_msg {
        const char *from_name;  /* UTF-8 display name, may be NULL/"" */
        const char *from_addr;
        const char *to_addr;
        const char *subject;    /* UTF-8 */
        const char *msgid_domain;
        time_t date;
        const struct mime_header *extra;
        size_t n_extra;
        const char *text;       /* UTF-8 body; LF or CRLF line ends */
        size_t text_len;
        const char *html;       /* optional HTML alternative */
        size_t html_len;
        /* or the bodies already quoted-printable (mime_encode_qp of valid
         * UTF-8): text_qp instead of text, html_qp instead of html */
        const char *text_qp;
        size_t text_qp_len;
        const char *html_qp;
        size_t html_qp_len;
};

enum mime_result {
        MIME_OK = 0,
        MIME_HEADER_CONTROL,    /* CR, LF, NUL or another control in a header field */
        MIME_HEADER_NAME,       /* bad header field name */
        MIME_HEADER_8BIT,       /* raw 8-bit data where only ASCII may go */
        MIME_BAD_UTF8,          /* subject, name or body not valid UTF-8 */
        MIME_TOO_LONG,          /* the output buffer cap was reached */
};

/* Append the whole message (headers, blank line, body; CRLF line ends, no
 * line over 998 octets) to `out`. */
enum mime_result mime_build(const struct mime_msg *m, struct buf *out);

/* Pieces, exposed for tests and for the fuzzer. */
bool mime_has_control(const char *s, size_t n);          /* CR, LF, NUL, other C0 but HTAB, DEL */
bool mime_utf8_valid(const char *s, size_t n);
/* Header value as RFC 2047 encoded-words where needed, folded; `used` is the
 * length of "Name: " already on the line. */
enum mime_result mime_encode_header_text(const char *s, struct buf *out, size_t used);
void mime_encode_qp(const char *s, size_t n, struct buf *out);
