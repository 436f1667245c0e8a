/* The JSON-lines protocol: its table of ops, parsing requests and formatting
 * answers (a leaf: no I/O, no SQL).  Requests are checked here for shape and
 * types; what the values mean is the handlers' business. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "lang.h"

enum state {
        ST_PENDING, ST_CONFIRMED, ST_EXPIRED, ST_DUPLICATE, ST_UNSUBSCRIBED,
        ST_OK, ST_ERROR,
};

enum errcode {
        ERR_NONE,
        ERR_INVALID_REQUEST,
        ERR_INVALID_EMAIL,
        ERR_UNKNOWN_TOKEN,
        ERR_RATE_LIMITED,
        ERR_FORBIDDEN,
        ERR_UNAVAILABLE,
        ERR_CHALLENGE_REQUIRED,         /* [antibot] pow = on and no solved challenge */
        ERR_CHALLENGE_FAILED,           /* a solution wrong, expired or used before */
        ERR_INTERNAL,
        ERR_UNKNOWN_ISSUE,      /* archive: no such published issue */
};

/* The sockets an op may be used on (an op's `sockets` are their bits). */
enum role { ROLE_PUBLIC = 1, ROLE_ADMIN = 2 };

/* The fields this parser checks itself (those of the public ops: strings of
 * a bounded size); FIELD() makes the bits of an op's `fields`. */
enum field { F_OP, F_EMAIL, F_NAME, F_LIST, F_LANG, F_IP, F_USER_AGENT, F_TOKEN,
             F_CONSENT_TEXT, F_CONSENT_VERSION, F_ALTCHA, F_N };
#define FIELD(f) (1u << F_##f)
/* The `fields` of an op whose handler names and types its own (the admin
 * ops, with proto_fields_only() and proto_str() ...): the parser takes any. */
#define FIELDS_OWN (1u << F_N)

/*
 * The ops, one entry each:
 *   name      the "op" of a request
 *   sockets   where it may be used (ROLE_ bits); anywhere else it is
 *             answered forbidden, whatever else the request holds
 *   writes    it runs in a savepoint of the batch transaction, so its answer
 *             waits for the commit and the sync of the WAL (daemon.c)
 *   fields    the fields it accepts besides op and lang (FIELD bits, checked
 *             here), or FIELDS_OWN
 *   required  those of `fields` it cannot do without
 *   handler   the function in handlers.c that answers it
 * The table is a macro so that it is written once and both its users take
 * what they need: proto.c all but the handler (the parser stays a leaf that
 * links no handler, no store, and is unit-tested and fuzzed on its own),
 * handlers.c the handler of each entry, in the same order.
 */
#define PROTO_OPS(OP)                                                                          \
        OP("subscribe", ROLE_PUBLIC | ROLE_ADMIN, true,                                        \
           FIELD(EMAIL) | FIELD(NAME) | FIELD(LIST) | FIELD(IP) | FIELD(USER_AGENT) |          \
           FIELD(CONSENT_TEXT) | FIELD(CONSENT_VERSION) | FIELD(ALTCHA), FIELD(EMAIL),         \
           h_subscribe)                                                                        \
        OP("confirm", ROLE_PUBLIC | ROLE_ADMIN, true,                                          \
           FIELD(TOKEN) | FIELD(IP) | FIELD(USER_AGENT), FIELD(TOKEN), h_confirm)              \
        OP("check", ROLE_PUBLIC | ROLE_ADMIN, false, FIELD(TOKEN), FIELD(TOKEN), h_check)      \
        OP("unsubscribe", ROLE_PUBLIC | ROLE_ADMIN, true,                                      \
           FIELD(TOKEN) | FIELD(IP) | FIELD(USER_AGENT), FIELD(TOKEN), h_unsubscribe)          \
        OP("ping", ROLE_PUBLIC | ROLE_ADMIN, false, 0, 0, h_ping)                              \
        OP("challenge", ROLE_PUBLIC | ROLE_ADMIN, false, 0, 0, h_challenge)                    \
        OP("archive", ROLE_PUBLIC | ROLE_ADMIN, false, FIELDS_OWN, 0, h_archive)               \
        OP("expire", ROLE_ADMIN, true, FIELDS_OWN, 0, h_expire)                                \
        OP("import_begin", ROLE_ADMIN, true, FIELDS_OWN, 0, h_import_begin)                    \
        OP("import_rows", ROLE_ADMIN, true, FIELDS_OWN, 0, h_import_rows)                      \
        OP("import_commit", ROLE_ADMIN, true, FIELDS_OWN, 0, h_import_commit)                  \
        OP("import_status", ROLE_ADMIN, false, FIELDS_OWN, 0, h_import_status)                 \
        OP("import_abort", ROLE_ADMIN, true, FIELDS_OWN, 0, h_import_abort)                    \
        OP("stats", ROLE_ADMIN, false, FIELDS_OWN, 0, h_stats)                                 \
        OP("export", ROLE_ADMIN, false, FIELDS_OWN, 0, h_export)                               \
        OP("erase", ROLE_ADMIN, true, FIELDS_OWN, 0, h_erase)                                  \
        OP("send", ROLE_ADMIN, true, FIELDS_OWN, 0, h_send)                                    \
        OP("status", ROLE_ADMIN, false, FIELDS_OWN, 0, h_status)                               \
        OP("pause", ROLE_ADMIN, true, FIELDS_OWN, 0, h_pause)                                  \
        OP("resume", ROLE_ADMIN, true, FIELDS_OWN, 0, h_resume)                                \
        OP("cancel", ROLE_ADMIN, true, FIELDS_OWN, 0, h_cancel)                                \
        OP("publish", ROLE_ADMIN, true, FIELDS_OWN, 0, h_publish)                              \
        OP("unpublish", ROLE_ADMIN, true, FIELDS_OWN, 0, h_unpublish)                          \
        OP("preview", ROLE_ADMIN, false, FIELDS_OWN, 0, h_preview)                             \
        OP("bounce", ROLE_ADMIN, true, FIELDS_OWN, 0, h_bounce)

/* An entry of the table as the parser keeps it (proto_ops[], in its order). */
struct proto_op {
        const char *name;
        unsigned sockets;
        bool writes;
        unsigned fields, required;
};
extern const struct proto_op proto_ops[];

/* A string field as it arrived; may contain NUL (checked by its user). */
struct pstr {
        const char *s;          /* NULL when absent */
        size_t len;
};

struct request {
        json_t *root;           /* owns the strings below */
        const char *op;
        const struct proto_op *spec;    /* op's entry in PROTO_OPS; NULL: no such op */
        enum lang lang;
        struct pstr email, name, list, ip, user_agent, token, consent_text, consent_version;
        struct pstr altcha;     /* a solved challenge (altcha.h) */
};

struct reply {
        enum state state;
        enum errcode error;
        const char *detail;     /* optional English detail for errors (static) */
        unsigned days;          /* ST_EXPIRED: confirm_ttl in days, for the text */
        bool confirmable;       /* ST_PENDING from check: the text asks to confirm */
        json_t *extra;          /* optional fields merged into the answer (owned) */
};

/* Parse one request line (without its newline).  On failure `reply` holds
 * the invalid_request error (with a detail) and false is returned; on
 * success call request_free() afterwards.  An op that is not in PROTO_OPS
 * parses (req->spec NULL): refusing it is the dispatcher's answer. */
bool proto_parse(const char *line, size_t len, struct request *req, struct reply *err);
void request_free(struct request *req);

/* Field access for ops that check their own fields (the admin ops).  Each
 * returns false, with an invalid_request in `err`, when the field is present
 * but of the wrong type, too long or (strings) holding NUL; an absent field
 * leaves `out` untouched and is only an error when `required`. */
bool proto_fields_only(const struct request *req, const char *const *allowed, struct reply *err);
bool proto_str(const struct request *req, const char *key, bool required, size_t max,
               struct pstr *out, struct reply *err);
bool proto_bool(const struct request *req, const char *key, bool *out, struct reply *err);
bool proto_int(const struct request *req, const char *key, bool required, int64_t min, int64_t max,
               int64_t *out, struct reply *err);

/* Format an answer as one JSON line ending in '\n' (malloc'd): its state,
 * the visitor-facing message in `lang`, and for an error its code. */
char *proto_format(const struct reply *r, enum lang lang, size_t *len);

static inline void reply_error(struct reply *r, enum errcode e, const char *detail)
{
        r->state = ST_ERROR;
        r->error = e;
        r->detail = detail;
}
