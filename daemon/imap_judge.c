/*
 * imap_judge.c - the IMAP intake's judge, on the main thread.  A message
 * the poller fetched goes through the very request `newsletterctl bounce`
 * sends ({"op":"bounce","message":BASE64}, or "too_large"), run by
 * handler_run() with the admin role inside the batch, so both ways of
 * intake share one bounce logic.  Its SHA-256 is recorded in imap_seen in
 * the same batch: a message seen again (its delete lost to a crash) is
 * only deleted, never judged twice.  Owns no thread and no connection;
 * never touches the mailbox itself (imap.c does, after the commit).
 */
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "base64.h"
#include "imap_judge.h"
#include "handlers.h"
#include "log.h"
#include "store.h"

/* The outcome of the bounce request: IMAP_HANDLED (acted on),
 * IMAP_LEFT (not understood: no report, or one of nobody's), IMAP_REFUSED
 * (a report without proof that it is about a mail of ours: a forgery, or a
 * provider that dropped the VERP address; both stay in the mailbox for a
 * human, where the pipe consumes them), or IMAP_RETRY (nothing decided). */
static enum imap_verdict judge(struct handler_ctx *ctx, const struct imap_message *m)
{
        json_t *req = json_object();
        json_object_set_new(req, "op", json_string("bounce"));
        json_object_set_new(req, "lang", json_string("en"));
        if (m->too_large) {
                json_object_set_new(req, "too_large", json_true());
        } else {
                char *b64 = xmalloc(base64_encoded_len(m->len, 0) + 1);
                size_t len = base64_encode(m->data, m->len, b64, 0);
                json_object_set_new(req, "message", json_stringn(b64, len));
                free(b64);
        }
        char *line = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        if (!line)
                oom();
        struct reply rep;
        enum lang lang;
        handler_run(ctx, ROLE_ADMIN, line, strlen(line), &rep, &lang);
        free(line);
        enum imap_verdict r = IMAP_RETRY;
        if (rep.state == ST_OK) {
                const char *action = json_string_value(json_object_get(rep.extra, "action"));
                r = !action ? IMAP_HANDLED : strcmp(action, "ignored") == 0 ? IMAP_LEFT :
                    strcmp(action, "refused") == 0 ? IMAP_REFUSED : IMAP_HANDLED;
        } else {
                log_err("imap: the bounce logic failed on a message (%s); it is tried again later",
                        rep.detail ? rep.detail : "error");
        }
        json_decref(rep.extra);
        return r;
}

int imap_judge_work(struct imap_judge *in, struct handler_ctx *ctx)
{
        if (in->judged)
                return 1;
        const struct imap_message *m = imap_pending(in->imap);
        if (!m)
                return 0;
        in->judged = true;
        in->again = false;
        in->verdict = IMAP_RETRY;
        /* one too large for us has no digest: it is left unseen, and judged
         * (ignored) once more only after a restart */
        if (m->too_large) {
                in->verdict = judge(ctx, m);
                return 1;
        }
        uint8_t digest[32];
        unsigned dlen = 0;
        if (!EVP_Digest(m->data, m->len, digest, &dlen, EVP_sha256(), NULL))
                oom();
        bool handled = false;
        int r = store_imap_seen(ctx->store, digest, &handled);
        if (r < 0)
                return 1;
        if (r == 1) {
                log_info("imap: message %llu was judged before; not again", (unsigned long long)m->uid);
                in->again = true;
                in->verdict = handled ? IMAP_HANDLED : IMAP_LEFT;
                return 1;
        }
        enum imap_verdict v = judge(ctx, m);
        if (v == IMAP_RETRY)
                return 1;
        /* the outcome is in the batch: without its record it must not be
         * committed (it could be judged twice); one left unseen, refused
         * or not understood, is recorded as not handled */
        int w;
        if ((w = store_batch_begin(ctx->store)) < 0 ||
            (w = store_imap_seen_add(ctx->store, digest, v == IMAP_HANDLED, ctx->now)) < 0)
                return w;
        in->verdict = v;
        return 1;
}

void imap_judge_done(struct imap_judge *in, bool ok)
{
        if (!in->judged)
                return;
        in->judged = false;
        imap_verdict(in->imap, ok ? in->verdict : IMAP_RETRY, in->again);
}
