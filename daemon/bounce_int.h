/* What the bounce parser's files share and nothing outside them sees:
 * the VERP matcher (bounce_verp.c), the reading of a plain-text failure
 * notice (bounce_notice.c), and the two output helpers of the verdict
 * (bounce.c) they fill a struct bounce_info with.  The public API is
 * bounce.h; every function here is a leaf like bounce_parse(): no I/O, no
 * SQL, no reading outside the spans it is given. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bounce.h"
#include "bounce_report.h"
#include "mailparse.h"

/* ---- bounce.c ----------------------------------------------------------- */

/* n bytes of s into out[cap] as printable ASCII for the log. */
void diag_set(char *out, size_t cap, const char *s, size_t n);
/* The first address of v normalised into out (ADDR_PATH_MAX + 1 bytes);
 * "" when there is no valid one (or v is NULL). */
void recipient_set(char *out, const char *v);

/* ---- bounce_verp.c ------------------------------------------------------ */

/* The return_path template split at "{id}", the keys its tags are checked
 * with, and whether an address of its form was seen whose id or tag was
 * wrong. */
struct verp {
        bool on;
        const char *prefix;
        size_t prefix_len;
        const char *suffix;
        size_t suffix_len;
        const struct secret_keys *keys;
        bool invalid;
};

/* Split the return_path template `tmpl` (NULL or without "{id}": VERP off). */
void verp_init(struct verp *v, const char *tmpl, const struct secret_keys *keys);
/* Whether a has the template's prefix and suffix, whatever its id and tag. */
bool verp_like(const struct verp *v, struct mail_span a);
/* The mail id of the first valid VERP address in an address list; 0 when
 * none (v->invalid set when one of our form failed). */
int64_t verp_in_value(struct verp *v, const char *value);
/* The same in any field called `name` of a header block. */
int64_t verp_in_header(struct verp *v, struct mail_span hdr, const char *name);
/* The same in the Return-Path of the copy of the original a notice quotes. */
int64_t verp_in_copy(struct verp *v, struct mail_span copy);
/* The same in the topmost Delivered-To/X-Original-To of our form; *seen
 * when such a field decided (then no other field counts). */
int64_t verp_delivered_to(struct verp *v, struct mail_span hdr, bool *seen);

/* ---- bounce_notice.c ---------------------------------------------------- */

/* What the top-level headers say about the sender of the message. */
struct origin {
        bool daemon;            /* an MTA's report */
        bool autoreply;         /* someone's auto-responder */
        char failed_rcpt[MAIL_FIELD_MAX];    /* Exim's X-Failed-Recipients */
};

/* The first code of a class in the text before the copy of the original:
 * its line number, the line, and the first enhanced code of that class. */
struct code_hit {
        bool found;
        size_t line_no;
        struct mail_span line;
        char status[16];
        int reply;                      /* the first reply code of that line; 0 */
};

/* What the human-readable text of a report says, up to the copy of the
 * original it quotes. */
struct notice {
        struct mail_span report;        /* the text before the copy */
        struct mail_span copy;          /* the copy of the original, if marked */
        struct code_hit perm, temp;
        char qmail_rcpt[ADDR_PATH_MAX + 1];
        bool banner;                    /* the MTA's own words */
        bool failure, delay;            /* it gave up; it keeps trying */
        bool warning;                   /* it says it is late, not lost */
        char *flat;                     /* the report, flattened (text_flatten) */
        char *context;                  /* flat and the Subject: the words the rules
                                         * read where the diagnostic says nothing */
};

/* What the top-level header block `hdr` says of who sent the message. */
void origin_get(struct mail_span hdr, struct origin *o);
/* Read the text of a notice (its Subject from `hdr`); notice_free() after. */
void notice_read(struct mail_span text, struct mail_span hdr, struct notice *nt);
void notice_free(struct notice *nt);
/* Judge a notice from an MTA into *out (kind, reason, status, diagnostic,
 * recipients); leaves *out as it is when the notice is none. */
void notice_parse(const struct notice *nt, struct mail_span hdr, const struct verp *v,
                  struct bounce_info *out);
/* The line of the notice that names rcpt and quotes an enhanced code. */
bool notice_line_of(const struct notice *nt, const char *rcpt, struct code_hit *hit);
/* Delivery-status fields set as text (into *dsn, as bounce_report_dsn()). */
void dsn_in_text(struct mail_span text, struct dsn_report *dsn);
