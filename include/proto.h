/* The JSON-lines protocol: parsing requests and formatting answers (a leaf:
 * no I/O, no SQL).  Requests are checked here for shape and types; what the
 * values mean is the handlers' business. */
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
        ERR_INTERNAL,
};

/* A string field as it arrived; may contain NUL (checked by its user). */
struct pstr {
        const char *s;          /* NULL when absent */
        size_t len;
};

struct request {
        json_t *root;           /* owns the strings below */
        const char *op;
        enum lang lang;
        struct pstr email, name, list, ip, user_agent, token, consent_text, consent_version;
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
 * success call request_free() afterwards. */
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

/* Format an answer as one JSON line ending in '\n' (malloc'd). */
char *proto_format(const struct reply *r, enum lang lang, size_t *len);

const char *state_name(enum state s);
const char *errcode_name(enum errcode e);
/* The visitor-facing text for a state or error in a language. */
const char *proto_message(enum state s, enum errcode e, enum lang lang);

static inline void reply_error(struct reply *r, enum errcode e, const char *detail)
{
        r->state = ST_ERROR;
        r->error = e;
        r->detail = detail;
}
