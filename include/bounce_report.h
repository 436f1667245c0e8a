/* The machine-readable parts of a returned mail: RFC 3464 delivery-status
 * fields, RFC 5965 feedback-report fields, the headers of the returned
 * original, and SMTP status codes in text (a leaf: no I/O, no SQL). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "bounce.h"
#include "mailparse.h"

#define DSN_GROUPS_MAX  16              /* recipient groups of a report kept */

/* One recipient group of a delivery-status part. */
struct dsn_group {
        enum bounce_kind kind;          /* by the action and the code's class */
        char rcpt[MAIL_FIELD_MAX];      /* address-type stripped: Original-Recipient when
                                         * it is a valid address, else Final-Recipient */
        char status[16];                /* enhanced status code; "" when none */
        char diag[MAIL_FIELD_MAX];      /* Diagnostic-Code without its type */
        char action[16];                /* lower case; "" when none */
        int reply;                      /* the SMTP reply code in the diagnostic; 0 */
        /* the reason the sending MTA itself filed the failure under
         * (PowerMTA's X-PowerMTA-BounceCategory), in Sisimai's words;
         * NULL when it gave none or one that names no reason */
        const char *mta_reason;
};

/* The recipient groups of a delivery-status part, and the one that says
 * most. */
struct dsn_report {
        bool found;                     /* a group with a recipient field */
        size_t best;                    /* index in groups */
        size_t n;
        struct dsn_group groups[DSN_GROUPS_MAX];
};

struct arf_report {
        char feedback_type[64];         /* lower case; "" when none */
        char rcpt[MAIL_FIELD_MAX];      /* Original-Rcpt-To (or Removal-Recipient) */
        char mail_from[MAIL_FIELD_MAX]; /* Original-Mail-From */
};

/* What the copy of the original (or its headers) says. */
struct original_report {
        char return_path[MAIL_FIELD_MAX];
        char to[MAIL_FIELD_MAX];
        /* Microsoft's JMRP complaint: the original forwarded with the
         * complaining recipient in X-HmXmrOriginalRecipient; "" when none */
        char jmrp_rcpt[MAIL_FIELD_MAX];
};

/* A message/delivery-status body: per-message fields, then recipient
 * groups separated by blank lines; the first DSN_GROUPS_MAX are kept, and
 * `best` is the one that says most (permanent over temporary over the
 * rest), among equals the first.  The
 * kind is the Action's (delayed: temporary; delivered, relayed, expanded:
 * unknown), for failed or no action the class of the Status (else of an
 * SMTP reply code in the Diagnostic-Code).  *out is cleared first. */
void bounce_report_dsn(struct mail_span text, struct dsn_report *out);

/* What an Amazon SES notification (its JSON, as SNS mails it) says. */
enum ses_kind { SES_NONE = 0, SES_BOUNCE, SES_COMPLAINT, SES_DELIVERY };

/* A text that starts with an SES notification object: its kind, its
 * recipients as delivery-status groups (bounced ones with their status,
 * diagnostic and "failed" or, for a transient bounce, "delayed";
 * delivered ones "delivered"), and for a complaint *arf with the
 * feedback type and the first complaining recipient.  SES_NONE when the
 * text is no such object. */
enum ses_kind bounce_report_ses(struct mail_span text, struct dsn_report *dsn, struct arf_report *arf);

/* A message/feedback-report body; the first of each field counts.  *out is
 * cleared first. */
void bounce_report_arf(struct mail_span text, struct arf_report *out);

/* The header of a returned original (message/rfc822 or only its headers). */
void bounce_report_original(struct mail_span text, struct original_report *out);

/* An enhanced status code "c.s.d" (RFC 3463) at s[i], standing alone: its
 * class ('2', '4', '5') or 0; *len gets its length. */
int bounce_report_enhanced_at(const char *s, size_t n, size_t i, size_t *len);

/* An SMTP reply code 4yz/5yz at s[i] standing as a word (not "5000 users"
 * or "555-1234"): its class or 0. */
int bounce_report_reply_at(const char *s, size_t n, size_t i);

/* The first enhanced status code of a string, copied to out[16] ("" when
 * none); its class or 0. */
int bounce_report_status(const char *s, char out[16]);
