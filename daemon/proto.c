/*
 * proto.c - the JSON-lines protocol, both directions.  jansson parses (and
 * checks UTF-8 strictly); this module checks the request's shape: the op
 * and its entry in the op table, fields of the right type and size, nothing
 * unknown.  It formats the answers with the visitor-facing texts in German
 * and English.  A leaf: no I/O, no SQL; what a valid request means is the
 * handlers' business.
 *
 * The op table (PROTO_OPS, proto.h) says for every op its sockets, whether
 * it writes, its fields and its handler.  It is a macro in the header, not
 * an array in handlers.c, because the parser needs its fields and must not
 * depend on the handlers (nor link the store through them): proto_ops[]
 * here is the table without its handlers, and handlers.c takes the
 * handlers from the same lines.  req->spec hands the entry on, so the
 * dispatcher looks nothing up again.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "log.h"
#include "mime.h"
#include "proto.h"

static const char *const state_names[] = {
        [ST_PENDING] = "pending", [ST_CONFIRMED] = "confirmed", [ST_EXPIRED] = "expired",
        [ST_DUPLICATE] = "duplicate", [ST_UNSUBSCRIBED] = "unsubscribed", [ST_OK] = "ok",
        [ST_ERROR] = "error",
};

static const char *const error_names[] = {
        [ERR_NONE] = "", [ERR_INVALID_REQUEST] = "invalid_request",
        [ERR_INVALID_EMAIL] = "invalid_email", [ERR_UNKNOWN_TOKEN] = "unknown_token",
        [ERR_RATE_LIMITED] = "rate_limited", [ERR_FORBIDDEN] = "forbidden",
        [ERR_UNAVAILABLE] = "unavailable", [ERR_INTERNAL] = "internal",
        [ERR_CHALLENGE_REQUIRED] = "challenge_required", [ERR_CHALLENGE_FAILED] = "challenge_failed",
        [ERR_UNKNOWN_ISSUE] = "unknown_issue",
};

static const char *state_name(enum state s)
{
        return s <= ST_ERROR ? state_names[s] : "error";
}

static const char *errcode_name(enum errcode e)
{
        return e <= ERR_UNKNOWN_ISSUE ? error_names[e] : "internal";
}

/* Texts a website shows its visitors as they are. */
static const char *const state_text[][LANG_N] = {
        [ST_PENDING] = {
                "Wir haben Ihnen eine E-Mail mit einem Bestätigungslink geschickt. "
                "Bitte öffnen Sie den Link, um die Anmeldung abzuschließen.",
                "We have sent you an email with a confirmation link. "
                "Please open the link to complete your sign-up." },
        [ST_CONFIRMED] = {
                "Ihre Anmeldung ist abgeschlossen. Vielen Dank!",
                "Your sign-up is complete. Thank you!" },
        [ST_EXPIRED] = {
                "Der Bestätigungslink ist abgelaufen. Bitte melden Sie sich erneut an.",
                "The confirmation link has expired. Please sign up again." },
        [ST_DUPLICATE] = {
                "Diese E-Mail-Adresse ist bereits für den Newsletter angemeldet.",
                "This email address is already signed up for the newsletter." },
        [ST_UNSUBSCRIBED] = {
                "Sie sind abgemeldet und erhalten den Newsletter nicht mehr.",
                "You have been unsubscribed and will no longer receive the newsletter." },
        [ST_OK] = {
                "Der Dienst ist bereit.",
                "The service is ready." },
};

static const char *const error_text[][LANG_N] = {
        [ERR_INVALID_REQUEST] = {
                "Die Anfrage konnte nicht verarbeitet werden.",
                "The request could not be processed." },
        [ERR_INVALID_EMAIL] = {
                "Diese E-Mail-Adresse können wir nicht verwenden. Bitte prüfen Sie die Schreibweise.",
                "We cannot use this email address. Please check its spelling." },
        [ERR_UNKNOWN_TOKEN] = {
                "Dieser Link ist ungültig oder nicht mehr bekannt.",
                "This link is not valid or no longer known." },
        [ERR_RATE_LIMITED] = {
                "Zu viele Anfragen. Bitte versuchen Sie es später noch einmal.",
                "Too many requests. Please try again later." },
        [ERR_FORBIDDEN] = {
                "Diese Aktion ist hier nicht erlaubt.",
                "This action is not allowed here." },
        [ERR_UNAVAILABLE] = {
                "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal.",
                "The service is unavailable at the moment. Please try again later." },
        [ERR_CHALLENGE_REQUIRED] = {
                "Bitte aktivieren Sie JavaScript: Ihr Browser muss vor der Anmeldung eine kleine Rechenaufgabe lösen.",
                "Please enable JavaScript: your browser has to solve a small computing task before signing up." },
        [ERR_CHALLENGE_FAILED] = {
                "Die Prüfung Ihres Browsers ist fehlgeschlagen oder abgelaufen. Bitte senden Sie das Formular noch einmal.",
                "Checking your browser failed or took too long. Please submit the form again." },
        [ERR_INTERNAL] = {
                "Etwas ist schiefgegangen. Bitte versuchen Sie es später noch einmal.",
                "Something went wrong. Please try again later." },
        [ERR_UNKNOWN_ISSUE] = {
                "Diese Ausgabe des Newsletters gibt es nicht im Archiv.",
                "This issue of the newsletter is not in the archive." },
};

/* The visitor-facing text for a state or error in a language. */
static const char *message(enum state s, enum errcode e, enum lang lang)
{
        if ((unsigned)lang >= LANG_N)
                lang = LANG_DEFAULT;
        if (s == ST_ERROR)
                return error_text[e >= ERR_INVALID_REQUEST && e <= ERR_UNKNOWN_ISSUE ? e : ERR_INTERNAL][lang];
        return state_text[s <= ST_OK ? s : ST_OK][lang];
}

/* check on a pending sign-up: the site shows this above its confirm button */
static const char *const confirmable_text[LANG_N] = {
        "Bitte bestätigen Sie Ihre Anmeldung zum Newsletter.",
        "Please confirm your newsletter sign-up.",
};

/* The expired text names the confirmation period. */
static const char *const expired_days_text[LANG_N][3] = {
        { "Der Bestätigungslink ist abgelaufen: Eine Anmeldung muss innerhalb von ",
          " Tagen bestätigt werden. Bitte melden Sie sich erneut an.",
          " Tag bestätigt werden. Bitte melden Sie sich erneut an." },
        { "The confirmation link has expired: a sign-up must be confirmed within ",
          " days. Please sign up again.",
          " day. Please sign up again." },
};

/* The names of enum field (proto.h). */
static const char *const field_names[F_N] = {
        "op", "email", "name", "list", "lang", "ip", "user_agent", "token",
        "consent_text", "consent_version", "altcha",
};

#define PROTO_OP(name, sockets, writes, fields, required, handler) \
        { name, sockets, writes, fields, required },
const struct proto_op proto_ops[] = { PROTO_OPS(PROTO_OP) };
#undef PROTO_OP
#define PROTO_OPS_N (sizeof(proto_ops) / sizeof(proto_ops[0]))

static const size_t field_max[F_N] = {
        [F_OP] = 32, [F_EMAIL] = ADDR_INPUT_MAX, [F_NAME] = NAME_MAX_BYTES,
        [F_LIST] = LIST_NAME_MAX_BYTES, [F_LANG] = 8, [F_IP] = 64,
        [F_USER_AGENT] = USER_AGENT_MAX_BYTES, [F_TOKEN] = TOKEN_TEXT_MAX_BYTES,
        [F_CONSENT_TEXT] = CONSENT_TEXT_MAX_BYTES, [F_CONSENT_VERSION] = 64,
        [F_ALTCHA] = ALTCHA_PAYLOAD_MAX_BYTES,
};

static struct pstr *field_slot(struct request *r, enum field f)
{
        switch (f) {
        case F_EMAIL: return &r->email;
        case F_NAME: return &r->name;
        case F_LIST: return &r->list;
        case F_IP: return &r->ip;
        case F_USER_AGENT: return &r->user_agent;
        case F_TOKEN: return &r->token;
        case F_CONSENT_TEXT: return &r->consent_text;
        case F_CONSENT_VERSION: return &r->consent_version;
        case F_ALTCHA: return &r->altcha;
        default: return NULL;
        }
}

static bool ip_valid(const char *s, size_t n)
{
        char tmp[65];
        unsigned char addr[16];
        if (n == 0 || n >= sizeof(tmp) || memchr(s, '\0', n))
                return false;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        return inet_pton(AF_INET, tmp, addr) == 1 || inet_pton(AF_INET6, tmp, addr) == 1;
}

void request_free(struct request *req)
{
        if (!req)
                return;
        json_decref(req->root);
        memset(req, 0, sizeof(*req));
}

bool proto_parse(const char *line, size_t len, struct request *req, struct reply *err)
{
        json_error_t jerr;
        memset(req, 0, sizeof(*req));
        memset(err, 0, sizeof(*err));
        req->lang = LANG_DEFAULT;

        json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!root) {
                reply_error(err, ERR_INVALID_REQUEST, "not a JSON text");
                return false;
        }
        req->root = root;
        if (!json_is_object(root)) {
                reply_error(err, ERR_INVALID_REQUEST, "a request must be a JSON object");
                goto fail;
        }
        /* language first, so that every later error speaks it */
        json_t *jl = json_object_get(root, "lang");
        if (jl && !json_is_null(jl)) {
                int l = json_is_string(jl) ? lang_parse(json_string_value(jl), json_string_length(jl)) : -1;
                if (l < 0) {
                        reply_error(err, ERR_INVALID_REQUEST, "lang must be \"de\" or \"en\"");
                        goto fail;
                }
                req->lang = (enum lang)l;
        }
        json_t *jop = json_object_get(root, "op");
        if (!json_is_string(jop)) {
                reply_error(err, ERR_INVALID_REQUEST, "op must be a string");
                goto fail;
        }
        req->op = json_string_value(jop);
        if (strlen(req->op) != json_string_length(jop) || json_string_length(jop) > field_max[F_OP]) {
                reply_error(err, ERR_INVALID_REQUEST, "unknown op");
                goto fail;
        }

        for (size_t i = 0; i < PROTO_OPS_N && !req->spec; i++)
                if (strcmp(proto_ops[i].name, req->op) == 0)
                        req->spec = &proto_ops[i];
        if (!req->spec || (req->spec->fields & FIELDS_OWN))
                return true;    /* no such op, or its handler checks the fields */

        unsigned seen = 0;
        const char *key;
        json_t *val;
        json_object_foreach(root, key, val) {
                size_t f;
                for (f = 0; f < F_N; f++)
                        if (strcmp(field_names[f], key) == 0)
                                break;
                if (f == F_OP || f == F_LANG)
                        continue;
                if (f == F_N || !(req->spec->fields & (1u << f))) {
                        reply_error(err, ERR_INVALID_REQUEST, "unknown field");
                        goto fail;
                }
                if (json_is_null(val))
                        continue;       /* an absent optional field */
                if (!json_is_string(val)) {
                        reply_error(err, ERR_INVALID_REQUEST, "fields must be strings");
                        goto fail;
                }
                size_t n = json_string_length(val);
                const char *s = json_string_value(val);
                if (n > field_max[f]) {
                        reply_error(err, f == F_EMAIL ? ERR_INVALID_EMAIL :
                                         f == F_TOKEN ? ERR_UNKNOWN_TOKEN :
                                         f == F_ALTCHA ? ERR_CHALLENGE_FAILED : ERR_INVALID_REQUEST,
                                    "field too long");
                        goto fail;
                }
                /* the consent wording may have line breaks; never NUL */
                if (f == F_CONSENT_TEXT ? memchr(s, '\0', n) != NULL :
                    f != F_EMAIL && f != F_TOKEN && f != F_ALTCHA && mime_has_control(s, n)) {
                        /* the address, the token and the solution get their own, more precise answers */
                        reply_error(err, ERR_INVALID_REQUEST, "control characters in a field");
                        goto fail;
                }
                if (f == F_IP && !ip_valid(s, n)) {
                        reply_error(err, ERR_INVALID_REQUEST, "ip is not an IPv4 or IPv6 address");
                        goto fail;
                }
                struct pstr *slot = field_slot(req, (enum field)f);
                slot->s = s;
                slot->len = n;
                seen |= 1u << f;
        }
        if ((seen & req->spec->required) != req->spec->required) {
                reply_error(err, ERR_INVALID_REQUEST, "a required field is missing");
                goto fail;
        }
        return true;
fail:
        err->state = ST_ERROR;
        return false;
}

bool proto_fields_only(const struct request *req, const char *const *allowed, struct reply *err)
{
        const char *key;
        json_t *val;
        json_object_foreach(req->root, key, val) {
                bool ok = strcmp(key, "op") == 0 || strcmp(key, "lang") == 0;
                for (size_t i = 0; !ok && allowed[i]; i++)
                        ok = strcmp(key, allowed[i]) == 0;
                if (!ok) {
                        reply_error(err, ERR_INVALID_REQUEST, "unknown field");
                        return false;
                }
        }
        return true;
}

bool proto_str(const struct request *req, const char *key, bool required, size_t max,
               struct pstr *out, struct reply *err)
{
        json_t *v = json_object_get(req->root, key);
        if (!v || json_is_null(v)) {
                if (required)
                        reply_error(err, ERR_INVALID_REQUEST, "a required field is missing");
                return !required;
        }
        if (!json_is_string(v) || json_string_length(v) > max ||
            memchr(json_string_value(v), '\0', json_string_length(v))) {
                reply_error(err, ERR_INVALID_REQUEST, "a field has the wrong type or size");
                return false;
        }
        out->s = json_string_value(v);
        out->len = json_string_length(v);
        return true;
}

bool proto_bool(const struct request *req, const char *key, bool *out, struct reply *err)
{
        json_t *v = json_object_get(req->root, key);
        if (!v || json_is_null(v))
                return true;
        if (!json_is_boolean(v)) {
                reply_error(err, ERR_INVALID_REQUEST, "a field has the wrong type");
                return false;
        }
        *out = json_is_true(v);
        return true;
}

bool proto_int(const struct request *req, const char *key, bool required, int64_t min, int64_t max,
               int64_t *out, struct reply *err)
{
        json_t *v = json_object_get(req->root, key);
        if (!v || json_is_null(v)) {
                if (required)
                        reply_error(err, ERR_INVALID_REQUEST, "a required field is missing");
                return !required;
        }
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
                reply_error(err, ERR_INVALID_REQUEST, "a field has the wrong type or range");
                return false;
        }
        *out = json_integer_value(v);
        return true;
}

static char *format(const struct reply *r, enum lang lang, size_t *len);

/* The answers that are only a state and its text (nearly all of them: a
 * sign-up's "pending") are formatted once per state and language, not by
 * jansson again for every request.  Only the main thread answers, so no
 * lock. */
char *proto_format(const struct reply *r, enum lang lang, size_t *len)
{
        static char *plain[ST_ERROR][LANG_N];
        static size_t plain_len[ST_ERROR][LANG_N];
        if ((unsigned)r->state >= ST_ERROR || (unsigned)lang >= LANG_N || r->error || r->detail ||
            r->extra || r->confirmable || (r->state == ST_EXPIRED && r->days))
                return format(r, lang, len);
        if (!plain[r->state][lang])
                plain[r->state][lang] = format(r, lang, &plain_len[r->state][lang]);
        *len = plain_len[r->state][lang];
        char *line = xmalloc(*len + 1);
        memcpy(line, plain[r->state][lang], *len + 1);
        return line;
}

static char *format(const struct reply *r, enum lang lang, size_t *len)
{
        json_t *o = json_object();
        if (!o)
                oom();
        json_object_set_new(o, "state", json_string(state_name(r->state)));
        const char *msg = message(r->state, r->error, lang);
        if (r->state == ST_EXPIRED && r->days) {
                char text[512];
                enum lang l = (unsigned)lang < LANG_N ? lang : LANG_DEFAULT;
                if (r->days == 1)
                        snprintf(text, sizeof(text), "%s%s%s", expired_days_text[l][0],
                                 l == LANG_DE ? "einem" : "one", expired_days_text[l][2]);
                else
                        snprintf(text, sizeof(text), "%s%u%s", expired_days_text[l][0], r->days,
                                 expired_days_text[l][1]);
                json_object_set_new(o, "message", json_string(text));
        } else if (r->state == ST_PENDING && r->confirmable) {
                json_object_set_new(o, "message",
                                    json_string(confirmable_text[(unsigned)lang < LANG_N ? lang : LANG_DEFAULT]));
        } else {
                json_object_set_new(o, "message", json_string(msg));
        }
        if (r->state == ST_ERROR) {
                json_object_set_new(o, "error", json_string(errcode_name(r->error)));
                if (r->detail)
                        json_object_set_new(o, "detail", json_string(r->detail));
        }
        if (r->extra)
                json_object_update(o, r->extra);
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
                oom();
        size_t n = strlen(s);
        char *line = xmalloc(n + 2);
        memcpy(line, s, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        free(s);
        *len = n + 1;
        return line;
}
