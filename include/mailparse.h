/* Reading a received message: the MIME tree, transfer encodings, charsets
 * and RFC 2047 by GMime; lines, header fields and address lists of what
 * it decoded (a leaf: no I/O, no SQL). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "textutil.h"

#define MAIL_FIELD_MAX  1024            /* an unfolded header value callers keep */
#define MAIL_DEPTH_MAX  8               /* multipart nesting followed */
#define MAIL_PARTS_MAX  256             /* entities looked at per message */

/* Bytes of the message: not NUL-terminated, may hold NUL. */
struct mail_span {
        const char *p;
        size_t n;
};

/* Whether the span is `lit`, ASCII case-insensitive. */
static inline bool mail_span_eq_ci(struct mail_span s, const char *lit)
{
        return mem_eq_ci(s.p, s.n, lit);
}

struct mail_field {
        struct mail_span name;
        struct mail_span value;         /* raw: folded, untrimmed */
};

/* An entity of the MIME tree that is not a multipart. */
struct mail_part {
        const char *type;               /* "type/subtype" in lower case ("text/plain"
                                         * when absent) */
        struct mail_span hdr;           /* its header block as "Name: value" lines,
                                         * unfolded, RFC 2047 decoded */
        struct mail_span text;          /* its content, transfer encoding undone, text
                                         * converted to UTF-8; of a message/rfc822 part
                                         * the header block of that message; NUL-
                                         * terminated */
};

/* A parsed message; owns every span it hands out. */
struct mail_message;

/* Next line of [*p, end) without its LF or CRLF; false at the end. */
bool mailparse_line_next(const char **p, const char *end, struct mail_span *line);

/* Only blanks (or nothing). */
bool mailparse_line_blank(struct mail_span line);

/* Split an entity at its first empty line into header block and body; an
 * entity without one is all header. */
void mailparse_entity_split(struct mail_span entity, struct mail_span *hdr, struct mail_span *body);

/* Next field of [*p, end) with its continuation lines.  Lines that are no
 * field (an mbox "From " line, junk, empty lines) are skipped. */
bool mailparse_field_next(const char **p, const char *end, struct mail_field *f);

/* Whether the field's name is `name` (ASCII case-insensitive). */
bool mailparse_field_is(const struct mail_field *f, const char *name);

/* A field value unfolded and trimmed into a C string.  False (and "") when
 * it holds NUL or, unless `cut` allows it, does not fit into cap. */
bool mailparse_field_text(struct mail_span value, char *out, size_t cap, bool cut);

/* The first field called `name` in a header block, as mailparse_field_text
 * gives it; false (and "") when there is none. */
bool mailparse_header_get(struct mail_span hdr, const char *name, char *out, size_t cap);

/* Whether a header block has a field called `name`. */
bool mailparse_header_has(struct mail_span hdr, const char *name);

/* Calls fn for each address of an address-list value until it returns
 * true (then true); an address is inside the last <...> of its element,
 * else the element without comments, a source route "@a,@b:" dropped;
 * commas inside quotes, <> and comments do not split. */
bool mailparse_addr_each(const char *value, bool (*fn)(struct mail_span addr, void *ctx), void *ctx);

/* The first address of an address-list value; false when none. */
bool mailparse_addr_first(const char *value, struct mail_span *addr);

/* GMime's one-time initialisation (g_mime_init under pthread_once):
 * call it at start-up, before threads; mailparse_open() calls it too. */
void mailparse_init(void);

/* Parse a message (need not be NUL-terminated, may hold NUL); never NULL:
 * what GMime cannot read has no headers and no parts. */
struct mail_message *mailparse_open(const char *p, size_t n);

/* Free a message and every span it handed out; NULL is fine. */
void mailparse_close(struct mail_message *m);

/* The top-level header block, decoded as struct mail_part's hdr. */
struct mail_span mailparse_headers(const struct mail_message *m);

/* Calls fn for each entity of the message that is not a multipart, in
 * order, following multipart nesting up to MAIL_DEPTH_MAX deep and
 * looking at no more than MAIL_PARTS_MAX entities (multiparts included);
 * a message/rfc822 part is one entity (not descended into). */
void mailparse_walk(struct mail_message *m, void (*fn)(const struct mail_part *part, void *ctx), void *ctx);
