/*
 * handlers.c - what each request does.  The op table says which socket may
 * use an op and whether it writes; writes run in a savepoint of the batch
 * transaction, so a failing request undoes only itself.  The rules of the
 * sign-up states live here: new -> pending (+ one confirmation mail),
 * pending again -> pending (a new mail once resend_interval has passed),
 * confirmed -> duplicate, expired/unsubscribed -> a fresh pending sign-up.
 * Nothing a peer sends is fatal: every failure becomes an error answer.
 */
#include <errno.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "handlers.h"
#include "log.h"
#include "scheduler.h"
#include "store.h"
#include "tmpl.h"
#include "token.h"

typedef int handler_fn(struct handler_ctx *ctx, const struct request *req, struct reply *rep);

/* A pstr the parser checked to be NUL-free, as a C string (jansson keeps a
 * terminating NUL). */
static const char *cstr(const struct pstr *p)
{
        return p->s;
}

static unsigned ttl_days(const struct conf *c)
{
        return (unsigned)((c->confirm_ttl + 86399) / 86400);
}

static int queue_confirmation(struct handler_ctx *ctx, int64_t subscription_id, enum lang lang)
{
        int r = store_outbox_add(ctx->store, MAIL_CONFIRM, subscription_id, PRIO_CONFIRM, ctx->now,
                                 NULL);
        if (r == 0)
                r = store_subscription_mailed(ctx->store, subscription_id, ctx->now, lang);
        if (r == 0)
                sched_kick(ctx->sched);
        return r;
}

static int record(struct handler_ctx *ctx, int64_t subscriber_id, const char *list,
                  const char *event, const struct request *req, const char *text_version)
{
        struct consent c = {
                .subscriber_id = subscriber_id, .list = list, .event = event, .at = ctx->now,
                .ip = cstr(&req->ip), .user_agent = cstr(&req->user_agent),
                .lang = lang_name(req->lang), .source = "socket", .text_version = text_version,
        };
        return store_consent_add(ctx->store, &c);
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
        const char *version = ctx->tmpl->confirm[req->lang].version;
        struct subscription sub;
        int64_t subscriber_id, subscription_id;
        int r = store_subscription_find(ctx->store, a.key, list, &sub);
        if (r < 0)
                return r;
        if (r == 1) {
                if ((r = store_subscriber_ensure(ctx->store, a.key, a.mailbox, cstr(&req->name),
                                                 ctx->now, &subscriber_id)) < 0 ||
                    (r = store_subscription_add(ctx->store, subscriber_id, list, req->lang, ctx->now,
                                                &subscription_id)) < 0)
                        return r;
        } else {
                subscriber_id = sub.subscriber_id;
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
                if ((r = store_subscriber_ensure(ctx->store, a.key, a.mailbox, cstr(&req->name),
                                                 ctx->now, &subscriber_id)) < 0)
                        return r;
                if (fresh && (r = store_subscription_restart(ctx->store, subscription_id, req->lang,
                                                             ctx->now)) < 0)
                        return r;
        }
        if ((r = queue_confirmation(ctx, subscription_id, req->lang)) < 0 ||
            (r = record(ctx, subscriber_id, list, "signup", req, version)) < 0)
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
                if (row->expires_at && ctx->now >= row->expires_at)
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
                if ((r = store_subscription_confirm(ctx->store, row.subscription_id, ctx->now,
                                                    cstr(&req->ip))) < 0 ||
                    (r = record(ctx, row.subscriber_id, row.list, "confirm", req, NULL)) < 0)
                        return r;
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
                if ((r = store_subscription_unsubscribe(ctx->store, row.subscription_id, ctx->now)) < 0 ||
                    (r = store_tokens_delete(ctx->store, row.subscription_id, TOKEN_CONFIRM)) < 0 ||
                    (r = record(ctx, row.subscriber_id, row.list, "unsubscribe", req, NULL)) < 0)
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

static const struct handler {
        const char *op;
        unsigned roles;
        bool writes;
        handler_fn *fn;
} handlers[] = {
        { "subscribe", ROLE_PUBLIC | ROLE_ADMIN, true, h_subscribe },
        { "confirm", ROLE_PUBLIC | ROLE_ADMIN, true, h_confirm },
        { "check", ROLE_PUBLIC | ROLE_ADMIN, false, h_check },
        { "unsubscribe", ROLE_PUBLIC | ROLE_ADMIN, true, h_unsubscribe },
        { "ping", ROLE_PUBLIC | ROLE_ADMIN, false, h_ping },
};

static void reply_failure(struct reply *rep, int r)
{
        reply_error(rep, r == -EBUSY ? ERR_UNAVAILABLE : ERR_INTERNAL, NULL);
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

        const struct handler *h = NULL;
        for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
                if (strcmp(handlers[i].op, req.op) == 0)
                        h = &handlers[i];
        if (!h) {
                reply_error(rep, ERR_INVALID_REQUEST, "unknown op");
        } else if (!(h->roles & role)) {
                reply_error(rep, ERR_FORBIDDEN, "not on this socket");
        } else if (!h->writes) {
                int r = h->fn(ctx, &req, rep);
                if (r < 0)
                        reply_failure(rep, r);
        } else {
                int r = store_batch_begin(ctx->store);
                if (r == 0)
                        r = store_savepoint(ctx->store);
                if (r < 0) {
                        reply_failure(rep, r);
                } else {
                        r = h->fn(ctx, &req, rep);
                        if (r == 0 && store_release(ctx->store) == 0) {
                                /* done */
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
