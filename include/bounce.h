/* Understanding bounces and complaints: RFC 3464 delivery status
 * notifications, the common plain-text non-delivery reports and RFC 5965
 * (ARF) feedback reports (a leaf: no I/O, no SQL). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bounds.h"

/* A larger message is not looked at (BOUNCE_UNKNOWN). */
#define BOUNCE_MSG_MAX          (10u << 20)

enum bounce_kind {
        BOUNCE_UNKNOWN = 0,     /* not a bounce or complaint, or not understood */
        BOUNCE_PERMANENT,       /* the address does not take mail (5.x.x) */
        BOUNCE_TEMPORARY,       /* delayed, or given up after 4.x.x failures */
        BOUNCE_COMPLAINT,       /* the recipient reported the mail as abuse */
        BOUNCE_SENDER,          /* the receiver refuses us, not the address */
};

/* What the VERP addresses of a report showed. */
enum bounce_verp {
        BOUNCE_VERP_ABSENT = 0,         /* none of the return_path's form */
        BOUNCE_VERP_INVALID,            /* of its form, but no valid id and tag */
        BOUNCE_VERP_VALID,              /* one with an id and its valid tag */
};

struct secret_keys;

#define BOUNCE_RCPTS_MAX        16      /* recipients of one report judged apart */

/* What a report says of one of the recipients it names. */
struct bounce_rcpt {
        char recipient[ADDR_PATH_MAX + 1];
        enum bounce_kind kind;
        const char *reason;
        char status[16];
        char diagnostic[256];
};

struct bounce_info {
        enum bounce_kind kind;
        /* from a VERP address with a valid tag; 0 when none found */
        int64_t mail_id;
        enum bounce_verp verp;
        /* the failed/complaining recipient, normalised with addr_parse
         * (mailbox form); "" when none */
        char recipient[ADDR_PATH_MAX + 1];
        /* enhanced status code "5.1.1"; "" when none */
        char status[16];
        /* printable ASCII excerpt of the diagnostic, for the log/status */
        char diagnostic[256];
        /* Sisimai's name of the reason (bounce_reason.c): "userunknown",
         * "blocked", "feedback", "vacation", ...; "undefined" when the
         * message is no report that was understood */
        const char *reason;
        /* kind BOUNCE_UNKNOWN and an auto-reply (RFC 3834 Auto-Submitted:
         * auto-replied, X-Autoreply, X-Autorespond, Precedence: auto_reply,
         * or an out-of-office subject): ignored, counted apart */
        bool autoreply;
        /* kind BOUNCE_COMPLAINT from an ARF auth-failure report (RFC 6591):
         * about the mail's authentication, not a person's wish */
        bool auth_report;
        /* a DSN naming several recipients: each as it was judged (the
         * fields above are the one that says most); 0 otherwise */
        size_t n_rcpts;
        struct bounce_rcpt rcpts[BOUNCE_RCPTS_MAX];
};

/* Parse one message as an MTA delivers it (headers, blank line, body; LF or
 * CRLF; need not be NUL-terminated, may contain NUL).  `return_path` is the
 * configured template with {id} (NULL or "": no VERP), which stands for
 * "<mail id>-<tag>"; a tag counts only when valid under one of `keys`
 * (secret_tag_check(); NULL: none is).  Returns 0 and fills
 * *out; kind is BOUNCE_UNKNOWN when the message is not a bounce/complaint or
 * cannot be understood, and when it is larger than BOUNCE_MSG_MAX.  mail_id,
 * recipient, status and diagnostic are filled whatever the kind, as far as
 * found.  A last line without a line break is ignored: MTAs deliver whole
 * lines, so the message was cut there. */
int bounce_parse(const char *msg, size_t len, const char *return_path, const struct secret_keys *keys,
                 struct bounce_info *out);

/* Make the recipient `rcpt` (mailbox form, ASCII case-insensitive) the
 * one *bi speaks of, when its report names several and one of them is
 * rcpt; false (nothing changed) otherwise. */
bool bounce_info_select(struct bounce_info *bi, const char *rcpt);

/* What the relay's refusal of a mail to `rcpt` says of that address (the
 * sender's SMTP reply code and reply line; a leaf like bounce_parse),
 * judged by the same rules as a report (bounce_classify()); *reason gets
 * the reason.  BOUNCE_PERMANENT only for a 5xx with an enhanced code
 * that, with its text, names the address dead; a 5xx without one is at
 * most BOUNCE_TEMPORARY (its text alone is a guess).  BOUNCE_SENDER for a
 * refusal of us (blocked, policy, ...), and for any reply that names
 * another address than `rcpt` in <...> (Postfix's "Sender address
 * rejected" at RCPT is about our return path).  BOUNCE_UNKNOWN for 421
 * (the relay closes the session, whoever the mail was for) and codes
 * outside 4xx/5xx.  The code found goes to status[16] ("" when none). */
enum bounce_kind bounce_relay_reply(long code, const char *reply, const char *rcpt, char status[16],
                                   const char **reason);

/* "unknown", "permanent", "temporary", "complaint", "sender" */
const char *bounce_kind_name(enum bounce_kind k);

/* The class as the contract names it: "none" for BOUNCE_UNKNOWN, else as
 * bounce_kind_name(). */
const char *bounce_class_name(enum bounce_kind k);
