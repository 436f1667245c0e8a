/*
 * handlers.c - what each request does.  The op table says which socket may
 * use an op and whether it writes; writes run in a savepoint of the batch
 * transaction, so a failing request undoes only itself.  The rules of the
 * sign-up states live here: new -> pending (+ one confirmation mail),
 * pending again -> pending (a new mail once resend_interval has passed),
 * confirmed -> duplicate, expired/unsubscribed -> a fresh pending sign-up.
 * Nothing a peer sends is fatal: every failure becomes an error answer.
 *
 * The op table is PROTO_OPS in proto.h, where the parser reads the fields
 * of the public ops; op_handlers[] below takes the handlers from its lines.
 * The one import that may run is the handler context's (struct
 * import_session in handlers.h), not a global of this file.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "altcha.h"
#include "archive.h"
#include "base64.h"
#include "clock.h"
#include "bounce.h"
#include "bounce_intake.h"
#include "conf.h"
#include "csv.h"
#include "draft.h"
#include "handlers.h"
#include "housekeeping.h"
#include "imap.h"
#include "log.h"
#include "markdown.h"
#include "mime.h"
#include "ratelimit.h"
#include "scheduler.h"
#include "store.h"
#include "suppress.h"
#include "tmpl.h"
#include "token.h"

/* 0: done (writes kept); 1: refused, writes undone, the answer stands;
 * negative: failed (writes undone, an error answer replaces the reply). */
typedef int handler_fn(struct handler_ctx *ctx, const struct request *req, struct reply *rep);

/* A pstr the parser checked to be NUL-free, as a C string (jansson keeps a
 * terminating NUL). */
static const char *cstr(const struct pstr *p)
{
        return p->s;
}

static unsigned ttl_days(const struct conf *c)
{
        return (unsigned)DAYS_ROUNDED_UP(c->confirm_ttl);
}

/* 1 when the daemon-wide ceiling of confirmation mails is reached (the
 * caller then undoes the request).  `dated`: the subscription row was
 * written with this mail's time and language already. */
static int queue_confirmation(struct handler_ctx *ctx, int64_t subscription_id, enum lang lang,
                              bool dated)
{
        if (ctx->conf->mails_per_hour) {
                struct rate_rule rule;
                ratelimit_mail_rule(ctx->conf->keys.ratelimit, ctx->conf->mails_per_hour, &rule);
                int q = ratelimit_hit(ctx->store, &rule, 1, ctx->now);
                if (q)
                        return q;
        }
        int r = store_outbox_add(ctx->store, MAIL_CONFIRM, subscription_id, PRIO_CONFIRM, ctx->now,
                                 NULL);
        if (r == 0 && !dated)
                r = store_subscription_mailed(ctx->store, subscription_id, ctx->now, lang);
        if (r == 0)
                sched_kick(ctx->sched);
        return r;
}

static struct consent consent_of(struct handler_ctx *ctx, int64_t subscriber_id, const char *list,
                                  const char *event, const struct request *req,
                                  const char *text_version)
{
        struct consent c = {
                .subscriber_id = subscriber_id, .list = list, .event = event, .at = ctx->now,
                .ip = cstr(&req->ip), .user_agent = cstr(&req->user_agent),
                .lang = lang_name(req->lang), .source = "socket", .text_version = text_version,
                .consent_text = cstr(&req->consent_text), .consent_version = cstr(&req->consent_version),
        };
        return c;
}

static int record(struct handler_ctx *ctx, int64_t subscriber_id, const char *list,
                  const char *event, const struct request *req, const char *text_version)
{
        struct consent c = consent_of(ctx, subscriber_id, list, event, req, text_version);
        return store_consent_add(ctx->store, &c);
}

/* With [antibot] pow = on, a sign-up from the website needs a solved
 * challenge, used once (the admin socket is the administrator's).  Checked
 * before the rate limits: a request without a solution counts against
 * nobody's limit (a bot cannot use up the sign-ups of a visitor behind the
 * same address) and costs the daemon one HMAC and no write.  1 when
 * refused (the answer in `rep`). */
static int challenge_check(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        const struct conf *c = ctx->conf;
        if (!c->pow || ctx->role != ROLE_PUBLIC)
                return 0;
        if (!req->altcha.s) {
                reply_error(rep, ERR_CHALLENGE_REQUIRED, NULL);
                return 1;
        }
        struct altcha_solution sol;
        enum altcha_verdict v = altcha_verify((const uint8_t (*)[SECRET_KEY_LEN])c->altcha_keys,
                                              c->altcha_keys_n, ctx->now, req->altcha.s,
                                              req->altcha.len, &sol);
        int r = v == ALTCHA_OK ? store_challenge_use(ctx->store, sol.challenge, sol.expires) : 1;
        if (r < 0)
                return r;
        if (r) {
                log_debug("subscribe: challenge refused (%s)",
                          v == ALTCHA_OK ? "used before" : altcha_verdict_str(v));
                reply_error(rep, ERR_CHALLENGE_FAILED, NULL);
                return 1;
        }
        return 0;
}

static int h_subscribe(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        const struct conf *c = ctx->conf;
        struct addr a;
        enum addr_result ar = addr_parse(req->email.s, req->email.len, &a);
        if (ar != ADDR_OK) {
                reply_error(rep, ERR_INVALID_EMAIL, addr_result_str(ar));
                return 0;
        }
        const char *list = c->lists.v[0];
        if (req->list.s) {
                size_t i;
                for (i = 0; i < c->lists.n; i++)
                        if (strlen(c->lists.v[i]) == req->list.len &&
                            memcmp(c->lists.v[i], req->list.s, req->list.len) == 0)
                                break;
                if (i == c->lists.n) {
                        reply_error(rep, ERR_INVALID_REQUEST, "unknown list");
                        return 0;
                }
                list = c->lists.v[i];
        }
        int refused = challenge_check(ctx, req, rep);
        if (refused)
                return refused < 0 ? refused : 0;
        if (req->ip.s) {
                struct rate_rule rules[2];
                if (!ratelimit_ip_rules(c->keys.ratelimit, req->ip.s, req->ip.len, c->signups_per_ip,
                                        c->signups_per_network, rules)) {
                        reply_error(rep, ERR_INVALID_REQUEST, "ip is not an IPv4 or IPv6 address");
                        return 0;
                }
                int q = ratelimit_hit(ctx->store, rules, 2, ctx->now);
                if (q < 0)
                        return q;
                if (q) {
                        reply_error(rep, ERR_RATE_LIMITED, "too many sign-ups from this network");
                        return 0;
                }
        }
        const char *version = ctx->tmpl->confirm[req->lang].version;
        struct subscription sub;
        int64_t subscription_id;
        bool dated = false, renew = false;
        int r = store_subscription_find(ctx->store, a.key, list, &sub);
        if (r < 0)
                return r;
        if (r == 1) {
                /* a new sign-up waits apart from the subscribers until it is
                 * confirmed */
                if ((r = store_subscription_add(ctx->store, 0, list, req->lang, ctx->now,
                                                &subscription_id)) < 0)
                        return r;
                dated = true;   /* the new row has this mail's time and language */
        } else {
                subscription_id = sub.id;
                int64_t last = sub.mailed_at ? sub.mailed_at : sub.created_at;
                bool fresh;
                switch (sub.state) {
                case SUB_CONFIRMED:
                        rep->state = ST_DUPLICATE;
                        return 0;
                case SUB_PENDING:
                        /* every token of this sign-up has expired: start over */
                        fresh = ctx->now - last >= (int64_t)c->confirm_ttl;
                        if (!fresh && ctx->now - last < (int64_t)c->resend_interval) {
                                rep->state = ST_PENDING;
                                return 0;
                        }
                        break;
                default:
                        fresh = true;
                        break;
                }
                /* kept apart: a new record beside the earlier
                 * ones, or instead of them once they have expired.  A
                 * subscription of an address that is a subscriber already
                 * (confirmed on another list, unsubscribed here) leaves it
                 * until confirmed: nothing an unconfirmed request gives
                 * (name, spelling of the address) may reach the subscriber's
                 * row, which every list's mails use */
                if (sub.subscriber_id && (r = store_subscription_unlink(ctx->store,
                                                                        subscription_id)) < 0)
                        return r;
                renew = !fresh;
                if (fresh && (r = store_subscription_restart(ctx->store, subscription_id, req->lang,
                                                             ctx->now)) < 0)
                        return r;
                if (fresh && (r = store_signup_forget(ctx->store, subscription_id)) < 0)
                        return r;
        }
        if ((r = queue_confirmation(ctx, subscription_id, req->lang, dated)) != 0) {
                if (r < 0)
                        return r;
                /* over the mail ceiling: undo this sign-up, keep the answer */
                reply_error(rep, ERR_RATE_LIMITED, "too many confirmation mails this hour");
                return 1;
        }
        struct consent g = consent_of(ctx, 0, list, "signup", req, version);
        if ((r = store_signup_put(ctx->store, subscription_id, a.key, a.mailbox, cstr(&req->name),
                                  &g, renew)) < 0)
                return r;
        rep->state = ST_PENDING;
        return 0;
}

/* Look a token up; 1 (and an unknown_token answer) when it opens nothing. */
static int find_token(struct handler_ctx *ctx, const struct request *req, enum token_kind kind,
                      struct token_row *row, struct reply *rep)
{
        struct token t;
        if (!token_parse(req->token.s, req->token.len, &t)) {
                reply_error(rep, ERR_UNKNOWN_TOKEN, "malformed token");
                return 1;
        }
        int r = store_token_find(ctx->store, t.hash, row);
        if (r == 1 && kind == TOKEN_UNSUBSCRIBE) {
                /* a newsletter's token: its mail keeps the hash */
                r = store_mail_token_find(ctx->store, t.hash, row);
        }
        if (r < 0)
                return r;
        if (r == 1 || row->kind != kind) {
                reply_error(rep, ERR_UNKNOWN_TOKEN, NULL);
                return 1;
        }
        return 0;
}

/* The state a confirmation token leads to; ST_PENDING means it would confirm. */
static enum state confirm_outcome(struct handler_ctx *ctx, const struct token_row *row)
{
        switch (row->state) {
        case SUB_CONFIRMED:
                return ST_CONFIRMED;
        case SUB_PENDING:
                if (row->stripped || (row->expires_at && ctx->now >= row->expires_at))
                        return ST_EXPIRED;
                return ST_PENDING;
        case SUB_EXPIRED:
                return ST_EXPIRED;
        default:
                return ST_ERROR;
        }
}

static int h_check(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct token_row row;
        int r = find_token(ctx, req, TOKEN_CONFIRM, &row, rep);
        if (r)
                return r < 0 ? r : 0;
        rep->state = confirm_outcome(ctx, &row);
        rep->confirmable = rep->state == ST_PENDING;
        if (rep->state == ST_ERROR)
                reply_error(rep, ERR_UNKNOWN_TOKEN, NULL);
        rep->days = ttl_days(ctx->conf);
        return 0;
}

static int h_confirm(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct token_row row;
        int r = find_token(ctx, req, TOKEN_CONFIRM, &row, rep);
        if (r)
                return r < 0 ? r : 0;
        enum state s = confirm_outcome(ctx, &row);
        rep->days = ttl_days(ctx->conf);
        if (s == ST_ERROR) {
                reply_error(rep, ERR_UNKNOWN_TOKEN, NULL);
                return 0;
        }
        if (s == ST_PENDING) {
                /* a sign-up kept apart becomes a subscriber's now */
                int64_t subscriber_id = row.subscriber_id;
                if (!subscriber_id && (r = store_signup_adopt(ctx->store, row.subscription_id,
                                                              ctx->now, row.request_at,
                                                              &subscriber_id)) < 0)
                        return r;
                if (!subscriber_id) {
                        rep->state = ST_EXPIRED;
                        return 0;
                }
                if ((r = store_subscription_confirm(ctx->store, row.subscription_id, ctx->now,
                                                    cstr(&req->ip))) < 0 ||
                    (r = record(ctx, subscriber_id, row.list, "confirm", req, NULL)) < 0)
                        return r;
                /* one welcome mail per confirmation: a subscription is
                 * confirmed once (a later click finds it confirmed) */
                if (ctx->conf->welcome) {
                        if ((r = store_outbox_add(ctx->store, MAIL_WELCOME, row.subscription_id,
                                                  PRIO_WELCOME, ctx->now, NULL)) < 0)
                                return r;
                        sched_kick(ctx->sched);
                }
                s = ST_CONFIRMED;
        }
        rep->state = s;
        return 0;
}

static int h_unsubscribe(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct token_row row;
        int r = find_token(ctx, req, TOKEN_UNSUBSCRIBE, &row, rep);
        if (r)
                return r < 0 ? r : 0;
        if (row.state != SUB_UNSUBSCRIBED) {
                int64_t subscriber_id = row.subscriber_id;
                if (!subscriber_id && (r = store_signup_adopt(ctx->store, row.subscription_id,
                                                              ctx->now, 0, &subscriber_id)) < 0)
                        return r;
                if ((r = store_subscription_unsubscribe(ctx->store, row.subscription_id, ctx->now)) < 0 ||
                    (r = store_tokens_delete(ctx->store, row.subscription_id, TOKEN_CONFIRM)) < 0 ||
                    (subscriber_id &&
                     (r = record(ctx, subscriber_id, row.list, "unsubscribe", req, NULL)) < 0))
                        return r;
        }
        rep->state = ST_UNSUBSCRIBED;
        return 0;
}

static int h_ping(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        rep->state = ST_OK;
        return 0;
}

/* A sign-up challenge to solve (ALTCHA v1), made and signed here and
 * stored nowhere; with pow = off "challenge" is null (the site then asks
 * for none). */
static int h_challenge(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        const struct conf *c = ctx->conf;
        rep->state = ST_OK;
        if (!c->pow) {
                rep->extra = json_pack("{sbsn}", "pow", 0, "challenge");
                return rep->extra ? 0 : -ENOMEM;
        }
        assert(c->altcha_keys_n > 0);
        struct altcha_challenge ch;
        int r = altcha_challenge_new(c->altcha_keys[0], c->pow_maxnumber,
                                     ctx->now + (int64_t)c->challenge_ttl, &ch);
        if (r < 0)
                return r;
        rep->extra = json_pack("{sbs{sssssIssss}}", "pow", 1, "challenge", "algorithm", "SHA-256",
                               "challenge", ch.challenge, "maxnumber", (json_int_t)ch.maxnumber,
                               "salt", ch.salt, "signature", ch.signature);
        return rep->extra ? 0 : -ENOMEM;
}


/* ---- admin operations (admin socket only) ---- */

static void reply_ok(struct reply *rep, json_t *extra)
{
        rep->state = ST_OK;
        rep->extra = extra;
}

static int h_expire(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { "progress", NULL };
        bool progress = false;
        if (!proto_fields_only(req, fields, rep) || !proto_bool(req, "progress", &progress, rep))
                return 0;
        const struct conf *c = ctx->conf;
        int64_t expire = 0, purge = 0;
        if (progress) {
                /* what the running stripping has still to do, from what it
                 * was given and what it did: counting the rows again would
                 * hold the website for as long as the count takes, every
                 * time `expire --wait` looks */
                const struct housekeeping *hk = ctx->hk;
                int64_t remaining = 0, done = hk->stripped + hk->purged;
                if (hk->active)
                        remaining = hk->todo > done ? hk->todo - done : 1;
                reply_ok(rep, json_pack("{sI}", "remaining", (json_int_t)remaining));
                return 0;
        }
        int r = store_expiry_count(ctx->store, ctx->now - (int64_t)c->confirm_ttl,
                                   ctx->now - (int64_t)c->expired_retention,
                                   ctx->now - (int64_t)c->confirm_ttl - (int64_t)c->expired_retention,
                                   &expire, &purge);
        if (r == 0)
                r = store_rate_purge(ctx->store, ctx->now - RATE_WINDOW);
        if (r < 0)
                return r;
        /* the rows are stripped and purged in the background, slice by slice */
        housekeeping_request(ctx->hk, c, ctx->now);
        ctx->hk->todo = ctx->hk->stripped + ctx->hk->purged + expire + purge;
        log_info("expire: %lld pending sign-ups expired, %lld expired records to purge",
                 (long long)expire, (long long)purge);
        reply_ok(rep, json_pack("{sIsIsI}", "expired", (json_int_t)expire, "purged", (json_int_t)purge,
                                "remaining", (json_int_t)(expire + purge)));
        return 0;
}

#define IMPORT_INVALID_LISTED 100

static int import_end(struct handler_ctx *ctx)
{
        memset(&ctx->import, 0, sizeof(ctx->import));
        return store_import_clear(ctx->store);
}

static const char *list_lookup(const struct conf *c, const struct pstr *p)
{
        if (!p->s)
                return c->lists.v[0];
        for (size_t i = 0; i < c->lists.n; i++)
                if (strlen(c->lists.v[i]) == p->len && memcmp(c->lists.v[i], p->s, p->len) == 0)
                        return c->lists.v[i];
        return NULL;
}

static int h_import_begin(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct import_session *im = &ctx->import;
        static const char *const fields[] = { "source", "pending", "list", "welcome", NULL };
        struct pstr source = { 0 }, list = { 0 };
        bool pending = false, welcome = false;
        if (!proto_fields_only(req, fields, rep) ||
            !proto_str(req, "source", true, 255, &source, rep) ||
            !proto_str(req, "list", false, LIST_NAME_MAX_BYTES, &list, rep) ||
            !proto_bool(req, "pending", &pending, rep) || !proto_bool(req, "welcome", &welcome, rep))
                return 0;
        /* a sign-up is welcomed when it is confirmed ([subscription] welcome) */
        if (pending && welcome) {
                reply_error(rep, ERR_INVALID_REQUEST, "welcome is for confirmed subscribers, not with pending");
                return 0;
        }
        const char *l = list_lookup(ctx->conf, &list);
        if (!l) {
                reply_error(rep, ERR_INVALID_REQUEST, "unknown list");
                return 0;
        }
        if (im->active && (im->conn != ctx->conn || im->applying)) {
                reply_error(rep, ERR_UNAVAILABLE, "another import is running");
                return 0;
        }
        int r = import_end(ctx);
        if (r < 0)
                return r;
        im->active = true;
        im->conn = ctx->conn;
        im->pending = pending;
        im->welcome = welcome;
        im->lang = req->lang;
        snprintf(im->list, sizeof(im->list), "%s", l);
        snprintf(im->source, sizeof(im->source), "import:%.*s", (int)source.len, source.s);
        reply_ok(rep, NULL);
        return 0;
}

static json_t *import_progress(const struct import_session *im)
{
        return json_pack("{sbsIsIsIsI}", "done", im->done, "rows", (json_int_t)im->staged,
                         "added", (json_int_t)im->res.added, "duplicates", (json_int_t)im->duplicates,
                         "existing", (json_int_t)im->res.existing);
}

static bool import_owned(struct handler_ctx *ctx, struct reply *rep)
{
        if (!ctx->import.active || ctx->import.conn != ctx->conn) {
                reply_error(rep, ERR_INVALID_REQUEST, "no import begun on this connection");
                return false;
        }
        if (ctx->import.applying) {
                reply_error(rep, ERR_INVALID_REQUEST, "the import is committed already");
                return false;
        }
        return true;
}

static int h_import_rows(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct import_session *im = &ctx->import;
        static const char *const fields[] = { "first_line", "lines", NULL };
        int64_t first = 1;
        if (!proto_fields_only(req, fields, rep) ||
            !proto_int(req, "first_line", true, 1, INT64_MAX / 2, &first, rep) || !import_owned(ctx, rep))
                return 0;
        json_t *lines = json_object_get(req->root, "lines");
        if (!json_is_array(lines)) {
                reply_error(rep, ERR_INVALID_REQUEST, "lines must be an array of strings");
                return 0;
        }
        json_t *invalid = json_array();
        size_t i;
        json_t *v;
        int64_t staged = 0;
        json_array_foreach(lines, i, v) {
                int64_t lineno = first + (int64_t)i;
                struct csv_row row;
                enum csv_result cr;
                if (!json_is_string(v))
                        cr = CSV_BAD_UTF8;
                else
                        cr = csv_parse_line(json_string_value(v), json_string_length(v), lineno == 1, &row);
                if (cr == CSV_BLANK || cr == CSV_HEADER)
                        continue;
                if (cr != CSV_OK) {
                        im->invalid++;
                        if (json_array_size(invalid) < IMPORT_INVALID_LISTED)
                                json_array_append_new(invalid, json_pack("{sIss}", "line", (json_int_t)lineno,
                                        "error", cr == CSV_BAD_EMAIL ? addr_result_str(row.addr_error) :
                                        csv_result_str(cr)));
                        continue;
                }
                if (im->invalid)
                        continue;       /* nothing of this file will be imported anyway */
                int r = store_import_stage(ctx->store, row.addr.key, row.addr.mailbox,
                                           row.has_name ? row.name : NULL);
                if (r < 0) {
                        json_decref(invalid);
                        return r;
                }
                im->duplicates += r;
                staged++;
        }
        im->staged += staged;
        reply_ok(rep, json_pack("{sIso}", "staged", (json_int_t)staged, "invalid", invalid));
        return 0;
}

static int h_import_commit(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct import_session *im = &ctx->import;
        static const char *const fields[] = { NULL };
        if (!proto_fields_only(req, fields, rep) || !import_owned(ctx, rep))
                return 0;
        int r;
        if (im->invalid) {
                int64_t n = im->invalid;
                if ((r = import_end(ctx)) < 0)
                        return r;
                reply_error(rep, ERR_INVALID_REQUEST, "the file has invalid lines; nothing was imported");
                rep->extra = json_pack("{sI}", "invalid_lines", (json_int_t)n);
                return 0;
        }
        /* every line is in and valid: from here on it is applied, a slice
         * at a time between the requests (handler_import_work) */
        im->applying = true;
        im->now = ctx->now;
        snprintf(im->text_version, sizeof(im->text_version), "%s", ctx->tmpl->confirm[im->lang].version);
        reply_ok(rep, import_progress(im));
        return 0;
}

/* How far the committed import of this connection got; the counts once it
 * is applied (and synced: this answer waits for the batch's sync). */
static int h_import_status(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct import_session *im = &ctx->import;
        static const char *const fields[] = { NULL };
        if (!proto_fields_only(req, fields, rep))
                return 0;
        if (!im->active || im->conn != ctx->conn || !im->applying) {
                reply_error(rep, ERR_INVALID_REQUEST, "no import committed on this connection");
                return 0;
        }
        reply_ok(rep, import_progress(im));
        if (im->done)
                memset(im, 0, sizeof(*im));
        return 0;
}

static int h_import_abort(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { NULL };
        if (!proto_fields_only(req, fields, rep) || !import_owned(ctx, rep))
                return 0;
        int r = import_end(ctx);
        if (r < 0)
                return r;
        reply_ok(rep, NULL);
        return 0;
}

static void refusing_add(const char *domain, const char *reason, int64_t n, int64_t last, void *ctx)
{
        json_array_append_new(ctx, json_pack("{sssssIsI}", "domain", domain, "reason", reason,
                                             "count", (json_int_t)n, "last", (json_int_t)last));
}

static int h_stats(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { NULL };
        if (!proto_fields_only(req, fields, rep))
                return 0;
        struct store_stats st;
        int r = store_stats(ctx->store, ctx->now, ctx->now - (int64_t)ctx->conf->confirm_ttl, &st);
        if (r < 0)
                return r;
        json_t *subs = json_object(), *mails = json_object(), *days = json_array();
        for (int i = 0; i <= SUB_BOUNCED; i++)
                json_object_set_new(subs, sub_state_name((enum sub_state)i), json_integer(st.subscriptions[i]));
        json_object_set_new(mails, "queued", json_integer(st.mails[MS_QUEUED] + st.mails[MS_SENDING]));
        json_object_set_new(mails, "sent", json_integer(st.mails[MS_SENT]));
        json_object_set_new(mails, "deferred", json_integer(st.mails[MS_DEFERRED]));
        json_object_set_new(mails, "failed", json_integer(st.mails[MS_FAILED]));
        for (int d = 0; d < STATS_DAYS; d++) {
                char date[16];
                time_t t = (time_t)st.days[d].day;
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(date, sizeof(date), "%Y-%m-%d", &tm);
                json_array_append_new(days, json_pack("{sssIsI}", "date", date,
                                                      "signups", (json_int_t)st.days[d].signups,
                                                      "confirmations", (json_int_t)st.days[d].confirmations));
        }
        json_t *reports = json_pack("{sIsIsIsIsIsI}", "permanent", (json_int_t)st.bounces_permanent,
                                    "temporary", (json_int_t)st.bounces_temporary,
                                    "complaints", (json_int_t)st.complaints,
                                    "refused", (json_int_t)st.bounces_refused,
                                    "autoreplies", (json_int_t)st.autoreplies,
                                    "not_understood", (json_int_t)st.not_understood);
        /* the classes of the reports, and who refused us in the last 24 hours */
        int64_t counts[5];
        static const char *const classes[5] = { NULL, NULL, "sender", "complaint", "none" };
        json_t *refusing = json_array();
        if ((r = store_bounce_report_counts(ctx->store, counts)) < 0 ||
            (r = store_bounce_refusing_domains(ctx->store, ctx->now - SECONDS_PER_DAY, refusing_add, refusing)) < 0) {
                json_decref(subs);
                json_decref(mails);
                json_decref(days);
                json_decref(reports);
                json_decref(refusing);
                return r;
        }
        /* permanent and temporary are as before (once per mail); a 'none'
         * message changes nothing and is only counted as ignored */
        counts[4] += st.autoreplies + st.not_understood;
        for (int i = 2; i < 5; i++)
                json_object_set_new(reports, classes[i], json_integer(counts[i]));
        json_t *extra = json_pack("{sososososo}", "subscribers", subs, "mails", mails, "bounces", reports,
                                  "days", days, "refusing_domains", refusing);
        if (ctx->imap) {
                /* the bounce mailbox ([bounce] imap_url) since the start */
                struct imap_status is;
                imap_status(ctx->imap, &is);
                json_object_set_new(extra, "imap", json_pack(
                        "{sIsIsIsIsIsIsIss}", "last_poll", (json_int_t)is.last_poll,
                        "handled", (json_int_t)is.handled, "not_understood", (json_int_t)is.not_understood,
                        "refused", (json_int_t)is.refused,
                        "skipped", (json_int_t)is.skipped, "failures", (json_int_t)is.failures,
                        "last_error_at", (json_int_t)is.last_error_at, "last_error", is.last_error));
        }
        reply_ok(rep, extra);
        return 0;
}

/* The address of an export or erase, normalised like a sign-up's. */
static bool admin_address(const struct request *req, struct addr *a, struct reply *rep)
{
        static const char *const fields[] = { "email", NULL };
        struct pstr email = { 0 };
        if (!proto_fields_only(req, fields, rep) ||
            !proto_str(req, "email", true, ADDR_INPUT_MAX, &email, rep))
                return false;
        enum addr_result ar = addr_parse(email.s, email.len, a);
        if (ar != ADDR_OK) {
                reply_error(rep, ERR_INVALID_EMAIL, addr_result_str(ar));
                return false;
        }
        return true;
}

static int h_export(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct addr a;
        if (!admin_address(req, &a, rep))
                return 0;
        json_t *data = NULL;
        int r = store_export(ctx->store, a.key, &data);
        if (r < 0)
                return r;
        if (r == 1)
                reply_ok(rep, json_pack("{sb}", "found", 0));
        else
                reply_ok(rep, json_pack("{sbso}", "found", 1, "export", data));
        return 0;
}

static int h_erase(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        struct addr a;
        if (!admin_address(req, &a, rep))
                return 0;
        int r = store_erase(ctx->store, a.key);
        if (r < 0)
                return r;
        if (r == 0) {
                /* the old page images in the WAL hold the address until a checkpoint */
                ctx->checkpoint_after_commit = true;
                log_info("erase: one subscriber and everything about them deleted");
        }
        reply_ok(rep, json_pack("{sb}", "found", r == 0));
        return 0;
}

/* ---- newsletter issues ---- */

#define ISSUE_SUBJECT_MAX 900
#define ISSUE_BODY_MAX (4u << 20)

/* The subject and bodies of an issue as a send or preview names them:
 * --text [--html], or --markdown (the text part is its source, the HTML part
 * its rendering).  0 with *html_owned the rendering (or NULL), or 1 with an
 * error answer. */
static int issue_body(const struct request *req, struct reply *rep, struct pstr *subject,
                      struct pstr *text, struct pstr *html, char **html_owned)
{
        static const char *const placeholders[] = NEWSLETTER_PLACEHOLDERS;
        struct pstr markdown = { 0 };
        *html_owned = NULL;
        if (!proto_str(req, "subject", true, ISSUE_SUBJECT_MAX, subject, rep) ||
            !proto_str(req, "text", false, ISSUE_BODY_MAX, text, rep) ||
            !proto_str(req, "html", false, ISSUE_BODY_MAX, html, rep) ||
            !proto_str(req, "markdown", false, ISSUE_BODY_MAX, &markdown, rep))
                return 1;
        if (subject->len == 0 || mime_has_control(subject->s, subject->len)) {
                reply_error(rep, ERR_INVALID_REQUEST, "the subject is empty or holds control characters");
                return 1;
        }
        if (!markdown.s == !text->s || (markdown.s && html->s)) {
                reply_error(rep, ERR_INVALID_REQUEST, "name the body: text (and html), or markdown");
                return 1;
        }
        char err[200];
        if (tmpl_check(markdown.s ? markdown.s : text->s, placeholders, err, sizeof(err)) ||
            (html->s && tmpl_check(html->s, placeholders, err, sizeof(err)))) {
                reply_error(rep, ERR_INVALID_REQUEST, "unknown placeholder in the body");
                rep->extra = json_pack("{ss}", "placeholder_error", err);
                return 1;
        }
        if (markdown.s) {
                enum markdown_result mr = markdown_render(markdown.s, markdown.len, html_owned);
                if (mr != MARKDOWN_OK) {
                        reply_error(rep, ERR_INVALID_REQUEST, markdown_result_str(mr));
                        return 1;
                }
                /* "\{\{x}}" in Markdown is "{{x}}" in HTML: checked again */
                if (tmpl_check(*html_owned, placeholders, err, sizeof(err))) {
                        free(*html_owned);
                        *html_owned = NULL;
                        reply_error(rep, ERR_INVALID_REQUEST, "unknown placeholder in the rendered body");
                        rep->extra = json_pack("{ss}", "placeholder_error", err);
                        return 1;
                }
                *text = markdown;
                html->s = *html_owned;
                html->len = strlen(*html_owned);
        }
        return 0;
}

static int h_send(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { "subject", "text", "html", "markdown", "list", "test",
                                              "at", "archive", NULL };
        struct pstr subject = { 0 }, text = { 0 }, html = { 0 }, list = { 0 }, test = { 0 };
        int64_t at = 0;
        bool archive = true;
        char *rendered = NULL;
        if (!proto_fields_only(req, fields, rep) ||
            !proto_str(req, "list", false, LIST_NAME_MAX_BYTES, &list, rep) ||
            !proto_str(req, "test", false, ADDR_INPUT_MAX, &test, rep) ||
            !proto_int(req, "at", false, 1, INT64_MAX, &at, rep) ||
            !proto_bool(req, "archive", &archive, rep))
                return 0;
        if (at && at <= ctx->now) {
                reply_error(rep, ERR_INVALID_REQUEST, "the time to send at is in the past");
                return 0;
        }
        if (at && test.s) {
                reply_error(rep, ERR_INVALID_REQUEST, "a test goes out at once: no time with it");
                return 0;
        }
        if (issue_body(req, rep, &subject, &text, &html, &rendered))
                return 0;
        const char *l = list_lookup(ctx->conf, &list);
        if (!l) {
                free(rendered);
                reply_error(rep, ERR_INVALID_REQUEST, "unknown list");
                return 0;
        }
        struct addr a;
        if (test.s) {
                enum addr_result ar = addr_parse(test.s, test.len, &a);
                if (ar != ADDR_OK) {
                        free(rendered);
                        reply_error(rep, ERR_INVALID_EMAIL, addr_result_str(ar));
                        return 0;
                }
        }
        struct issue is = { .list = (char *)l, .subject = (char *)subject.s, .text = (char *)text.s,
                            .html = (char *)html.s, .send_at = at, .archive = archive };
        int64_t id, n;
        int r = store_issue_create(ctx->store, &is, test.s ? a.mailbox : NULL, ctx->now, &id, &n);
        free(rendered);
        if (r < 0)
                return r;
        sched_kick(ctx->sched);
        if (at) {
                char when[CLOCK_RFC3339_LEN];
                clock_format_rfc3339(at, when);
                log_info("issue %lld scheduled for %s to the confirmed subscribers of list %s then",
                         (long long)id, when, l);
                reply_ok(rep, json_pack("{sIsIsIss}", "issue", (json_int_t)id, "recipients", (json_int_t)0,
                                        "send_at", (json_int_t)at, "scheduled", when));
                return 0;
        }
        log_info("issue %lld queued%s to %lld recipients of list %s", (long long)id,
                 test.s ? " as a test" : "", (long long)n, l);
        reply_ok(rep, json_pack("{sIsI}", "issue", (json_int_t)id, "recipients", (json_int_t)n));
        return 0;
}

/* An issue's archive copy (placeholders filled for no one) into the answer. */
static json_t *archive_issue(struct handler_ctx *ctx, const struct issue *is)
{
        char when[CLOCK_RFC3339_LEN];
        clock_format_rfc3339(is->sent_at, when);
        char *url = archive_signup_url(ctx->conf->signup_url, ctx->conf->confirm_url);
        char *text = archive_fill(is->text, false, is->list, url);
        char *html = is->html ? archive_fill(is->html, true, is->list, url) : NULL;
        free(url);
        /* the placeholders were checked when the issue was queued */
        if (!text || (is->html && !html))
                fatal("issue %lld holds an unknown placeholder", (long long)is->id);
        json_t *o = json_pack("{sIssssssso}", "id", (json_int_t)is->id, "subject", is->subject,
                              "sent_at", when, "text", text, "html", html ? json_string(html) : json_null());
        free(text);
        free(html);
        return o;
}

static int archive_row(void *ud, int64_t id, const char *subject, int64_t sent_at)
{
        char when[CLOCK_RFC3339_LEN];
        clock_format_rfc3339(sent_at, when);
        json_array_append_new(ud, json_pack("{sIssss}", "id", (json_int_t)id, "subject", subject,
                                            "sent_at", when));
        return 0;
}

#define ARCHIVE_LIMIT_DEFAULT 20
#define ARCHIVE_LIMIT_MAX 100

/* The archive, for the website: the published issues, or one of them. */
static int h_archive(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { "list", "before", "limit", "issue", NULL };
        struct pstr list = { 0 };
        int64_t before = 0, limit = ARCHIVE_LIMIT_DEFAULT, id = 0;
        if (!proto_fields_only(req, fields, rep) ||
            !proto_str(req, "list", false, LIST_NAME_MAX_BYTES, &list, rep) ||
            !proto_int(req, "before", false, 1, INT64_MAX, &before, rep) ||
            !proto_int(req, "limit", false, 1, ARCHIVE_LIMIT_MAX, &limit, rep) ||
            !proto_int(req, "issue", false, 1, INT64_MAX, &id, rep))
                return 0;
        if (id) {
                struct issue is;
                int r = store_issue_get(ctx->store, id, &is);
                if (r < 0)
                        return r;
                if (r == 1 || !is.archive || !is.sent_at || is.test) {
                        if (r == 0)
                                issue_clear(&is);
                        reply_error(rep, ERR_UNKNOWN_ISSUE, "no such issue in the archive");
                        return 0;
                }
                json_t *o = archive_issue(ctx, &is);
                issue_clear(&is);
                reply_ok(rep, json_pack("{so}", "issue", o));
                return 0;
        }
        const char *l = NULL;
        if (list.s && !(l = list_lookup(ctx->conf, &list))) {
                reply_error(rep, ERR_INVALID_REQUEST, "unknown list");
                return 0;
        }
        json_t *issues = json_array();
        int r = store_archive_list(ctx->store, l, before, (unsigned)limit, archive_row, issues);
        if (r < 0) {
                json_decref(issues);
                return r;
        }
        reply_ok(rep, json_pack("{so}", "issues", issues));
        return 0;
}

/* publish, unpublish: an issue into the archive (once it has finished
 * sending) or out of it. */
static int issue_publish(struct handler_ctx *ctx, const struct request *req, struct reply *rep,
                         bool publish)
{
        static const char *const fields[] = { "issue", NULL };
        int64_t id = 0;
        if (!proto_fields_only(req, fields, rep) || !proto_int(req, "issue", true, 1, INT64_MAX, &id, rep))
                return 0;
        struct issue is;
        int r = store_issue_get(ctx->store, id, &is);
        if (r < 0)
                return r;
        if (r == 1) {
                reply_error(rep, ERR_UNKNOWN_ISSUE, "no such issue");
                return 0;
        }
        bool test = is.test, cancelled = is.state == ISSUE_CANCELLED, finished = is.sent_at != 0;
        issue_clear(&is);
        if (publish && (test || cancelled)) {
                reply_error(rep, ERR_INVALID_REQUEST, test ? "a test send is never published" :
                            "a cancelled issue is never published");
                return 0;
        }
        if ((r = store_issue_set_archive(ctx->store, id, publish)) < 0)
                return r;
        log_info("issue %lld %s", (long long)id, publish ? finished ? "published" :
                 "published once it has finished sending" : "taken out of the archive");
        reply_ok(rep, json_pack("{sIsbsb}", "issue", (json_int_t)id, "published", publish,
                                "in_archive", publish && finished));
        return 0;
}

static int h_publish(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        return issue_publish(ctx, req, rep, true);
}

static int h_unpublish(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        return issue_publish(ctx, req, rep, false);
}

/* The mail one subscriber would get, as an .eml: nothing stored, nothing sent. */
static int h_preview(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { "subject", "text", "html", "markdown", "list", "to", NULL };
        struct pstr subject = { 0 }, text = { 0 }, html = { 0 }, list = { 0 }, to = { 0 };
        char *rendered = NULL;
        if (!proto_fields_only(req, fields, rep) ||
            !proto_str(req, "list", false, LIST_NAME_MAX_BYTES, &list, rep) ||
            !proto_str(req, "to", false, ADDR_INPUT_MAX, &to, rep))
                return 0;
        const char *l = list_lookup(ctx->conf, &list);
        if (!l) {
                reply_error(rep, ERR_INVALID_REQUEST, "unknown list");
                return 0;
        }
        struct addr a;
        if (to.s) {
                enum addr_result ar = addr_parse(to.s, to.len, &a);
                if (ar != ADDR_OK) {
                        reply_error(rep, ERR_INVALID_EMAIL, addr_result_str(ar));
                        return 0;
                }
        }
        if (issue_body(req, rep, &subject, &text, &html, &rendered))
                return 0;
        /* the subscriber named (or the list's first), with their name and
         * language; an address that is none gets it as a test send would */
        char *email = NULL, *name = NULL, *lang = NULL;
        int r = store_preview_recipient(ctx->store, l, to.s ? a.key : NULL, &email, &name, &lang);
        if (r < 0) {
                free(rendered);
                return r;
        }
        int lg = lang ? lang_parse(lang, strlen(lang)) : -1;
        struct preview_rcpt pr = {
                .email = r == 0 ? email : to.s ? a.mailbox : ctx->conf->from_addr,
                .name = r == 0 ? name : NULL, .list = l,
                .lang = lg < 0 ? LANG_DEFAULT : (enum lang)lg,
        };
        struct issue_text *it = issue_text_new(0, xstrdup(subject.s), xstrdup(text.s),
                                               html.s ? xstrdup(html.s) : NULL);
        struct buf eml;
        buf_init(&eml, 0);
        r = sched_preview(ctx->sched, ctx->dkim, ctx->n_dkim, it, &pr, ctx->now, &eml);
        issue_text_unref(it);
        free(rendered);
        if (r == 0)
                reply_ok(rep, json_pack("{ss%ss}", "eml", eml.data ? eml.data : "", eml.len, "to", pr.email));
        else if (r > 0)
                reply_error(rep, ERR_INVALID_REQUEST, "the mail could not be built");
        free(email);
        free(name);
        free(lang);
        if (eml.data)
                explicit_bzero(eml.data, eml.len);
        buf_free(&eml);
        return r < 0 ? r : 0;
}

/* A failed mail with the class and reason of what was said about it: the
 * latest report kept, else the relay's reply judged now (the same rules). */
static int failure_row(void *ud, const char *email, const char *reply, int64_t at, bool suppressed,
                       const char *class_name, const char *reason)
{
        if (!class_name || !reason) {
                char status[16];
                long code = 0;
                if (reply[0] >= '2' && reply[0] <= '5' && reply[1] >= '0' && reply[1] <= '9' &&
                    reply[2] >= '0' && reply[2] <= '9')
                        code = (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
                enum bounce_kind k = bounce_relay_reply(code, reply, email, status, &reason);
                class_name = bounce_class_name(k);
        }
        json_array_append_new(ud, json_pack("{sssssbssss}", "email", email, "reply", reply,
                                            "suppressed", suppressed, "class", class_name,
                                            "reason", reason));
        return 0;
}

/* The issue a request names, or the latest; 1 with an error answer when none. */
static int issue_of(struct handler_ctx *ctx, const struct request *req, struct issue *is,
                    struct reply *rep)
{
        int64_t id = 0;
        if (!proto_int(req, "issue", false, 1, INT64_MAX, &id, rep))
                return 1;
        int r = id ? 0 : store_issue_latest(ctx->store, &id);
        if (r == 0)
                r = store_issue_get(ctx->store, id, is);
        if (r == 1)
                reply_error(rep, ERR_INVALID_REQUEST, "no such issue");
        return r;
}

static int h_status(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { "issue", "failures", NULL };
        bool failures = false;
        if (!proto_fields_only(req, fields, rep) || !proto_bool(req, "failures", &failures, rep))
                return 0;
        struct issue is;
        int r = issue_of(ctx, req, &is, rep);
        if (r)
                return r < 0 ? r : 0;
        int64_t n[MS_SKIPPED + 1];
        if ((r = store_issue_counts(ctx->store, is.id, n)) < 0) {
                issue_clear(&is);
                return r;
        }
        int64_t total = 0;
        for (int i = 0; i <= MS_SKIPPED; i++)
                total += n[i];
        int64_t waiting = n[MS_QUEUED] + n[MS_SENDING] + n[MS_DEFERRED];
        int64_t bounced = 0, complaints = 0;
        if ((r = store_issue_bounces(ctx->store, is.id, &bounced, &complaints)) < 0) {
                issue_clear(&is);
                return r;
        }
        /* a scheduled issue is 'sending' with no recipients yet; paused, it
         * still has them to come (only a cancelled one is done) */
        bool held = is.scheduled && is.state != ISSUE_CANCELLED;
        const char *state_name = is.scheduled && is.state == ISSUE_SENDING ? "scheduled" :
                                 issue_state_name(is.state);
        json_t *o = json_pack("{sIsssssbsIsIsIsIsIsIsb}", "issue", (json_int_t)is.id,
                              "subject", is.subject, "issue_state", state_name,
                              "test", is.test, "total", (json_int_t)total,
                              "queued", (json_int_t)(n[MS_QUEUED] + n[MS_SENDING]),
                              "sent", (json_int_t)n[MS_SENT], "deferred", (json_int_t)n[MS_DEFERRED],
                              "failed", (json_int_t)n[MS_FAILED], "skipped", (json_int_t)n[MS_SKIPPED],
                              "finished", waiting == 0 && !held);
        json_object_set_new(o, "bounced", json_integer(bounced));
        json_object_set_new(o, "complaints", json_integer(complaints));
        char when[CLOCK_RFC3339_LEN];
        if (is.send_at) {
                clock_format_rfc3339(is.send_at, when);
                json_object_set_new(o, "send_at", json_string(when));
        }
        if (is.sent_at) {
                clock_format_rfc3339(is.sent_at, when);
                json_object_set_new(o, "sent_at", json_string(when));
        }
        json_object_set_new(o, "archive", json_boolean(is.archive && !is.test));
        json_object_set_new(o, "in_archive", json_boolean(is.archive && is.sent_at && !is.test));
        if (failures) {
                json_t *list = json_array();
                if ((r = store_issue_failed(ctx->store, is.id, 1000, failure_row, list)) < 0) {
                        json_decref(list);
                        json_decref(o);
                        issue_clear(&is);
                        return r;
                }
                json_object_set_new(o, "failures", list);
        }
        issue_clear(&is);
        reply_ok(rep, o);
        return 0;
}

static int issue_transition(struct handler_ctx *ctx, const struct request *req, struct reply *rep,
                            enum issue_state to)
{
        static const char *const fields[] = { "issue", NULL };
        if (!proto_fields_only(req, fields, rep))
                return 0;
        if (!json_object_get(req->root, "issue")) {
                reply_error(rep, ERR_INVALID_REQUEST, "name the issue");
                return 0;
        }
        struct issue is;
        int r = issue_of(ctx, req, &is, rep);
        if (r)
                return r < 0 ? r : 0;
        enum issue_state from = is.state;
        int64_t id = is.id, changed = 0;
        issue_clear(&is);
        if (from == ISSUE_CANCELLED || (to == ISSUE_SENDING && from != ISSUE_PAUSED) ||
            (to == ISSUE_PAUSED && from != ISSUE_SENDING)) {
                reply_error(rep, ERR_INVALID_REQUEST, from == ISSUE_CANCELLED ? "the issue is cancelled" :
                            to == ISSUE_SENDING ? "the issue is not paused" : "the issue is not sending");
                return 0;
        }
        if ((r = store_issue_set_state(ctx->store, id, from, to, ctx->now, &changed)) < 0)
                return r;
        sched_kick(ctx->sched);
        log_info("issue %lld: %s -> %s (%lld mails)", (long long)id, issue_state_name(from),
                 issue_state_name(to), (long long)changed);
        reply_ok(rep, json_pack("{sIsssI}", "issue", (json_int_t)id, "issue_state",
                                issue_state_name(to), "mails", (json_int_t)changed));
        return 0;
}

static int h_pause(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        return issue_transition(ctx, req, rep, ISSUE_PAUSED);
}

static int h_resume(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        return issue_transition(ctx, req, rep, ISSUE_SENDING);
}

static int h_cancel(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        return issue_transition(ctx, req, rep, ISSUE_CANCELLED);
}

/* ---- bounces and complaints ---- */

/* One returned message, as an MTA's pipe delivers it: the intake
 * (bounce_intake.c) decides; with "explain" it only says what it would
 * make of it. */
static int h_bounce(struct handler_ctx *ctx, const struct request *req, struct reply *rep)
{
        static const char *const fields[] = { "message", "too_large", "explain", NULL };
        struct pstr b64 = { 0 };
        bool too_large = false, explain = false;
        if (!proto_fields_only(req, fields, rep) || !proto_bool(req, "too_large", &too_large, rep) ||
            !proto_bool(req, "explain", &explain, rep) ||
            !proto_str(req, "message", !too_large, 4 * (BOUNCE_MSG_MAX / 3) + 8, &b64, rep))
                return 0;
        /* newsletterctl read no more than BOUNCE_MSG_MAX of it: nothing to look at */
        char *msg = xmalloc(too_large ? 1 : base64_decoded_max(b64.len));
        size_t n = 0;
        if (!too_large && !base64_decode(b64.s, b64.len, msg, &n, 0)) {
                free(msg);
                reply_error(rep, ERR_INVALID_REQUEST, "message must be base64");
                return 0;
        }
        struct bounce_outcome o;
        int r = 0;
        if (too_large) {
                memset(&o, 0, sizeof(o));
                o.info.reason = "undefined";
                o.action = explain ? "explained" : "ignored";
                o.why = "too large";
                if (!explain && (r = store_bounce_ignored(ctx->store, "too large", ctx->now)) == 0)
                        log_info("bounce: message ignored: too large");
        } else {
                r = bounce_intake(ctx->store, ctx->conf, msg, n, ctx->now, explain, &o);
        }
        free(msg);
        if (r < 0)
                return r;
        const struct bounce_info *bi = &o.info;
        const char *verp = bi->verp == BOUNCE_VERP_VALID ? "valid" :
                           bi->verp == BOUNCE_VERP_INVALID ? "invalid" : "absent";
        json_t *ans = json_pack("{sssssIssssssss}", "kind", bounce_kind_name(bi->kind), "action", o.action,
                                "mail", (json_int_t)o.mail_id, "status", bi->status, "class",
                                bounce_class_name(bi->kind), "reason_code", bi->reason, "verp", verp);
        if (o.why[0])
                json_object_set_new(ans, "reason", json_string(o.why));
        json_object_set_new(ans, "recipient", bi->recipient[0] ? json_string(bi->recipient) : json_null());
        json_object_set_new(ans, "issue", o.issue_id ? json_integer(o.issue_id) : json_null());
        reply_ok(rep, ans);
        return 0;
}

/* The handler of each entry of the op table, in its order: proto_ops[i]
 * (the rest of the entry) is answered by op_handlers[i]. */
#define OP_HANDLER(name, sockets, writes, fields, required, handler) handler,
static handler_fn *const op_handlers[] = { PROTO_OPS(OP_HANDLER) };
#undef OP_HANDLER

static void reply_failure(struct reply *rep, int r)
{
        reply_error(rep, r == -EBUSY ? ERR_UNAVAILABLE : ERR_INTERNAL, NULL);
}

/* Staged addresses applied per slice (sign-ups with their confirmation
 * mails): small enough that a request waiting behind one is not held long. */
#define IMPORT_SLICE 200

int handler_import_work(struct handler_ctx *ctx)
{
        struct import_session *im = &ctx->import;
        if (!im->active || !im->applying || im->done)
                return 0;
        struct import_spec spec = {
                .list = im->list, .pending = im->pending, .welcome = im->welcome, .lang = im->lang,
                .source = im->source, .text_version = im->text_version, .now = im->now,
        };
        struct import_result res = im->res;
        int r = store_batch_begin(ctx->store);
        if (r == 0)
                r = store_savepoint(ctx->store);
        if (r < 0)
                return r;
        r = store_import_apply(ctx->store, &spec, IMPORT_SLICE, &res);
        if (r < 0 || store_release(ctx->store) < 0) {
                store_rollback_to(ctx->store);
                log_err("import %s: a slice failed (%s); the addresses before it are imported,"
                        " the rest are not", im->source, strerror(r < 0 ? -r : EIO));
                /* what is left is dropped: importing the file again adds it
                 * (what is on the list by now counts as existing) */
                store_import_clear(ctx->store);
                memset(im, 0, sizeof(*im));
                return r < 0 ? r : -EIO;
        }
        im->res = res;
        if ((spec.pending || spec.welcome) && res.added)
                sched_kick(ctx->sched);
        if (r == 0)
                return 1;
        im->done = true;
        log_info("import %s: %lld added, %lld duplicates in the file, %lld already on the list",
                 im->source, (long long)res.added, (long long)im->duplicates,
                 (long long)res.existing);
        if (!im->conn)          /* nobody waits for the counts */
                memset(im, 0, sizeof(*im));
        return 0;
}

void handler_conn_closed(struct handler_ctx *ctx, uint64_t conn)
{
        if (!ctx->import.active || ctx->import.conn != conn)
                return;
        if (ctx->import.applying) {
                /* committed: applied all the same, its counts logged */
                if (ctx->import.done)
                        memset(&ctx->import, 0, sizeof(ctx->import));
                else
                        ctx->import.conn = 0;
                return;
        }
        log_warn("import %s abandoned: its connection closed before commit", ctx->import.source);
        if (store_batch_begin(ctx->store) < 0 || import_end(ctx) < 0)
                log_err("an abandoned import could not be cleared");
        memset(&ctx->import, 0, sizeof(ctx->import));
}

void handler_run(struct handler_ctx *ctx, enum role role, const char *line, size_t len,
                 struct reply *rep, enum lang *lang)
{
        struct request req;
        memset(rep, 0, sizeof(*rep));
        if (!proto_parse(line, len, &req, rep)) {
                *lang = req.lang;
                request_free(&req);
                return;
        }
        *lang = req.lang;

        const struct proto_op *op = req.spec;
        handler_fn *fn = op ? op_handlers[op - proto_ops] : NULL;
        ctx->role = role;
        if (!op) {
                reply_error(rep, ERR_INVALID_REQUEST, "unknown op");
        } else if (!(op->sockets & role)) {
                reply_error(rep, ERR_FORBIDDEN, "not on this socket");
        } else if (!op->writes) {
                int r = fn(ctx, &req, rep);
                if (r < 0)
                        reply_failure(rep, r);
        } else {
                int r = store_batch_begin(ctx->store);
                if (r == 0)
                        r = store_savepoint(ctx->store);
                if (r < 0) {
                        reply_failure(rep, r);
                } else {
                        r = fn(ctx, &req, rep);
                        if (r == 0 && store_release(ctx->store) == 0) {
                                /* done */
                        } else if (r == 1) {
                                /* refused after writing: undone, the answer stands */
                                store_rollback_to(ctx->store);
                        } else {
                                store_rollback_to(ctx->store);
                                json_decref(rep->extra);
                                memset(rep, 0, sizeof(*rep));
                                reply_failure(rep, r < 0 ? r : -EIO);
                        }
                }
        }
        request_free(&req);
}
