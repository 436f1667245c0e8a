/*
 * scheduler.c - between the outbox and the sender threads, on the main thread.
 * Each loop iteration, inside the batch transaction: record the outcomes
 * the senders finished (sent, deferred with doubling backoff, failed), then
 * claim due mails while the senders have room, confirmations first.  A
 * claimed confirmation gets a fresh token here: its hash goes into the same
 * transaction, the token itself only into the mail, which is handed to a
 * sender only after that transaction committed.  So the database never holds
 * a usable token, and a crash loses no mail: rows left 'sending' are queued
 * again at start-up and sent with a new token (at-least-once).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "buf.h"
#include "conf.h"
#include "log.h"
#include "mime.h"
#include "scheduler.h"
#include "sender.h"
#include "store.h"
#include "tmpl.h"
#include "token.h"

struct sched {
        struct store *store;
        struct sender *sender;
        const struct conf *conf;
        const struct templates *tmpl;
        struct mail_job *claimed;       /* built in this batch, not yet handed over */
        struct mail_job *recorded;      /* outcomes written in this batch */
        struct mail_job *results;       /* outcomes still to write */
        unsigned in_flight;             /* handed to the sender, outcome not recorded */
        unsigned capacity;
        bool maybe_due;
        bool held;
        int64_t now;                    /* of the current sched_work() */
        struct issue issue;             /* the issue being sent (one at a time is the rule) */
};

struct sched *sched_new(struct store *st, struct sender *snd)
{
        struct sched *s = xcalloc(1, sizeof(*s));
        s->store = st;
        s->sender = snd;
        s->maybe_due = true;
        return s;
}

static void free_list(struct mail_job *j)
{
        while (j) {
                struct mail_job *n = j->next;
                mail_job_free(j);
                j = n;
        }
}

void sched_free(struct sched *s)
{
        if (!s)
                return;
        free_list(s->claimed);
        free_list(s->recorded);
        free_list(s->results);
        issue_clear(&s->issue);
        free(s);
}

void sched_configure(struct sched *s, const struct conf *c, const struct templates *t)
{
        s->conf = c;
        s->tmpl = t;
        s->capacity = c->max_connections * JOBS_PER_SENDER;
        s->maybe_due = true;
}

void sched_kick(struct sched *s)
{
        s->maybe_due = true;
}

void sched_hold(struct sched *s)
{
        s->held = true;
}

unsigned sched_in_flight(struct sched *s)
{
        return s->in_flight;
}

/* Every {token} in the URL template replaced. */
static char *link_with_token(const char *tmpl, const char *token)
{
        struct buf b;
        buf_init(&b, 0);
        for (const char *p = tmpl; *p;) {
                const char *t = strstr(p, "{token}");
                if (!t) {
                        buf_puts(&b, p);
                        break;
                }
                buf_append(&b, p, (size_t)(t - p));
                buf_puts(&b, token);
                p = t + 7;
        }
        return buf_steal(&b, NULL);
}

static char *envelope_sender(const struct conf *c, int64_t id)
{
        if (!*c->return_path)
                return xstrdup(c->from_addr);
        const char *p = strstr(c->return_path, "{id}");
        struct buf b;
        buf_init(&b, 0);
        buf_printf(&b, "%.*s%lld%s", (int)(p - c->return_path), c->return_path, (long long)id, p + 4);
        return buf_steal(&b, NULL);
}

/* Build the confirmation mail for a claimed row, with a new token. */
static int build_confirmation(struct sched *s, const struct outbox_row *row, int64_t now,
                              struct mail_job **out)
{
        const struct conf *c = s->conf;
        const struct mail_text *mt = &s->tmpl->confirm[row->lang];
        struct token t;
        int r;

        if ((r = token_new(&t)) < 0) {
                log_err("no random bytes for a token");
                return r;
        }
        if ((r = store_token_add(s->store, t.hash, row->subscription_id, TOKEN_CONFIRM, now,
                                 now + (int64_t)c->confirm_ttl)) < 0)
                return r;

        char days[24];
        snprintf(days, sizeof(days), "%llu", (unsigned long long)((c->confirm_ttl + 86399) / 86400));
        char *url = link_with_token(c->confirm_url, t.text);
        explicit_bzero(&t, sizeof(t));
        struct tmpl_var vars[] = {
                { "confirm_url", url }, { "confirm_days", days }, { "list", row->list },
        };
        char *subject = tmpl_fill(mt->subject, vars, 3);
        char *body = tmpl_fill(mt->body, vars, 3);
        if (!subject || !body)
                fatal("template placeholders were checked at load time");

        struct mime_header extra[] = { { "Auto-Submitted", "auto-generated" } };
        struct mime_msg m = {
                .from_name = c->from_name, .from_addr = c->from_addr, .to_addr = row->email,
                .subject = subject, .msgid_domain = c->from_domain, .date = (time_t)now,
                .extra = extra, .n_extra = 1, .text = body, .text_len = strlen(body),
        };
        struct buf b;
        buf_init(&b, 0);
        enum mime_result mr = mime_build(&m, &b);
        explicit_bzero(url, strlen(url));
        free(url);
        free(subject);
        explicit_bzero(body, strlen(body));
        free(body);
        if (mr != MIME_OK) {
                /* only a stored address that no longer passes the header checks gets here */
                log_err("mail %lld could not be built (%d); marked failed", (long long)row->id, mr);
                explicit_bzero(b.data, b.len);
                buf_free(&b);
                return 1;
        }
        struct mail_job *j = xcalloc(1, sizeof(*j));
        j->id = row->id;
        j->urgent = row->priority <= PRIO_CONFIRM;
        j->env_from = envelope_sender(c, row->id);
        j->rcpt = xstrdup(row->email);
        j->data = buf_steal(&b, &j->len);
        *out = j;
        return 0;
}

static void mark_batch(struct sched *s, int *r)
{
        if (*r == 0)
                *r = store_batch_begin(s->store);
}

/* How long an unsubscribe link in a newsletter keeps working. */
#define UNSUBSCRIBE_TOKEN_TTL (366 * 86400)

static const char *const footer_text[LANG_N] = {
        "\n\n-- \nNewsletter abbestellen: {{unsubscribe_url}}\n",
        "\n\n-- \nUnsubscribe: {{unsubscribe_url}}\n",
};
static const char *const footer_html[LANG_N] = {
        "<p><a href=\"{{unsubscribe_url}}\">Newsletter abbestellen</a></p>",
        "<p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>",
};

/* A body with its placeholders filled; the unsubscribe link is added at
 * the end when the author did not place it. */
static char *newsletter_body(const char *body, bool html, const char *url, const char *name,
                             const char *list, enum lang lang)
{
        char *eurl = html ? html_escape(url) : NULL, *ename = html ? html_escape(name) : NULL;
        struct tmpl_var vars[] = {
                { "unsubscribe_url", html ? eurl : url }, { "name", html ? ename : name },
                { "list", list },
        };
        struct buf b;
        buf_init(&b, 0);
        buf_puts(&b, body);
        if (!strstr(body, "{{unsubscribe_url}}")) {
                const char *footer = html ? footer_html[lang] : footer_text[lang];
                const char *end = html ? strstr(b.data, "</body>") : NULL;
                if (end) {
                        size_t at = (size_t)(end - b.data);
                        struct buf t;
                        buf_init(&t, 0);
                        buf_append(&t, b.data, at);
                        buf_puts(&t, footer);
                        buf_puts(&t, b.data + at);
                        buf_free(&b);
                        b = t;
                } else {
                        buf_puts(&b, footer);
                }
        }
        char *out = tmpl_fill(b.data, vars, 3);
        buf_free(&b);
        free(eurl);
        free(ename);
        if (!out)
                fatal("newsletter placeholders were checked when the issue was queued");
        return out;
}

/* Build one newsletter mail, with a new unsubscribe token for its recipient. */
static int build_newsletter(struct sched *s, const struct outbox_row *row, int64_t now,
                            struct mail_job **out)
{
        const struct conf *c = s->conf;
        int r;
        if (s->issue.id != row->issue_id) {
                issue_clear(&s->issue);
                if ((r = store_issue_get(s->store, row->issue_id, &s->issue)) != 0)
                        return r < 0 ? r : 1;
        }
        struct token t;
        if ((r = token_new(&t)) < 0)
                return r;
        /* a test send's link opens nothing: it belongs to no subscription */
        if (row->subscription_id &&
            (r = store_token_add(s->store, t.hash, row->subscription_id, TOKEN_UNSUBSCRIBE, now,
                                 now + UNSUBSCRIBE_TOKEN_TTL)) < 0)
                return r;
        char *url = link_with_token(c->unsubscribe_url, t.text);
        explicit_bzero(&t, sizeof(t));
        char *text = newsletter_body(s->issue.text, false, url, row->name, row->list, row->lang);
        char *html = s->issue.html ?
                     newsletter_body(s->issue.html, true, url, row->name, row->list, row->lang) : NULL;

        char list_id[LIST_NAME_MAX_BYTES + 300], unsub[4200];
        snprintf(list_id, sizeof(list_id), "<%s.%s>", row->list, c->from_domain);
        snprintf(unsub, sizeof(unsub), "<%s>", url);
        struct mime_header extra[] = {
                { "List-Id", list_id },
                { "List-Unsubscribe", unsub },
                { "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
        };
        struct mime_msg m = {
                .from_name = c->from_name, .from_addr = c->from_addr, .to_addr = row->email,
                .subject = s->issue.subject, .msgid_domain = c->from_domain, .date = (time_t)now,
                .extra = extra, .n_extra = 3, .text = text, .text_len = strlen(text),
                .html = html, .html_len = html ? strlen(html) : 0,
        };
        struct buf b;
        buf_init(&b, 0);
        enum mime_result mr = mime_build(&m, &b);
        explicit_bzero(url, strlen(url));
        explicit_bzero(unsub, sizeof(unsub));
        free(url);
        free(text);
        free(html);
        if (mr != MIME_OK) {
                log_err("mail %lld could not be built (%d); marked failed", (long long)row->id, mr);
                buf_free(&b);
                return 1;
        }
        struct mail_job *j = xcalloc(1, sizeof(*j));
        j->id = row->id;
        j->urgent = row->priority <= PRIO_CONFIRM;
        j->env_from = envelope_sender(c, row->id);
        j->rcpt = xstrdup(row->email);
        j->data = buf_steal(&b, &j->len);
        *out = j;
        return 0;
}

static int claim_row(void *ud, const struct outbox_row *row)
{
        struct sched *s = ud;
        struct mail_job *j = NULL;
        int r = 0;

        mark_batch(s, &r);
        if (r < 0)
                return r;
        if (row->kind == MAIL_CONFIRM && row->sub_state != SUB_PENDING) {
                /* confirmed, unsubscribed or restarted since: nothing to send */
                return store_outbox_delete(s->store, row->id);
        }
        if (row->kind == MAIL_NEWSLETTER && row->sub_state != SUB_CONFIRMED)
                return store_outbox_skip(s->store, row->id, "no longer subscribed", s->now);
        if (row->kind == MAIL_CONFIRM)
                r = build_confirmation(s, row, s->now, &j);
        else
                r = build_newsletter(s, row, s->now, &j);
        if (r < 0)
                return r;
        if (r == 1)
                return store_outbox_finish(s->store, row->id, MS_FAILED, s->now, s->now,
                                           "message could not be built");
        if ((r = store_outbox_sending(s->store, row->id)) < 0) {
                mail_job_free(j);
                return r;
        }
        j->next = s->claimed;
        s->claimed = j;
        s->in_flight++;
        return 0;
}

static int64_t retry_delay(const struct conf *c, int attempts)
{
        uint64_t d = c->retry_initial;
        for (int i = 1; i < attempts && d < c->retry_max; i++)
                d *= 2;
        return (int64_t)(d < c->retry_max ? d : c->retry_max);
}

/* Write one outcome.  The row's attempts and age decide deferred vs failed. */
static int record_outcome(struct sched *s, struct mail_job *j, const struct outbox_row *row)
{
        const struct conf *c = s->conf;
        enum mail_state state;
        int64_t next = s->now;

        switch (j->outcome) {
        case OUTCOME_SENT:
                state = MS_SENT;
                break;
        case OUTCOME_FAILED:
                state = MS_FAILED;
                break;
        default:
                if (row && s->now - row->created_at >= (int64_t)c->give_up_after) {
                        state = MS_FAILED;
                } else {
                        state = MS_DEFERRED;
                        next = s->now + retry_delay(c, row ? row->attempts : 1);
                }
                break;
        }
        /* the reply may name the recipient: only at debug level */
        if (state == MS_SENT)
                log_debug("mail %lld: sent (%s)", (long long)j->id, j->reply);
        else
                log_info("mail %lld: %s, SMTP code %ld", (long long)j->id, mail_state_name(state), j->code);
        log_debug("mail %lld: %s", (long long)j->id, j->reply);
        return store_outbox_finish(s->store, j->id, state, next, s->now, j->reply);
}

int sched_work(struct sched *s, int64_t now)
{
        int r = 0;
        s->now = now;

        /* outcomes first: they free room for the next claims */
        struct mail_job *done = sender_collect(s->sender);
        while (done) {
                struct mail_job *j = done;
                done = j->next;
                j->next = s->results;
                s->results = j;
                s->in_flight--;
        }
        while (s->results) {
                struct mail_job *j = s->results;
                struct outbox_row row;
                bool have_row = false;
                mark_batch(s, &r);
                if (r < 0)
                        return r;
                if (j->outcome == OUTCOME_DEFERRED) {
                        int q = store_outbox_get(s->store, j->id, &row);
                        if (q < 0)
                                return q;
                        have_row = q == 0;
                }
                if ((r = record_outcome(s, j, have_row ? &row : NULL)) < 0)
                        return r;
                s->results = j->next;
                j->next = s->recorded;
                s->recorded = j;
                s->maybe_due = true;
        }

        while (!s->held && s->maybe_due && s->in_flight < s->capacity) {
                unsigned room = s->capacity - s->in_flight;
                unsigned before = s->in_flight;
                s->maybe_due = false;
                r = store_outbox_due(s->store, now, room, claim_row, s);
                if (r < 0)
                        return r;
                /* a full batch may mean more is due */
                if (s->in_flight - before == room)
                        s->maybe_due = true;
                else
                        break;
        }
        return 0;
}

void sched_committed(struct sched *s)
{
        free_list(s->recorded);
        s->recorded = NULL;
        while (s->claimed) {
                struct mail_job *j = s->claimed;
                s->claimed = j->next;
                sender_push(s->sender, j);
        }
}

void sched_rolled_back(struct sched *s)
{
        while (s->claimed) {
                struct mail_job *j = s->claimed;
                s->claimed = j->next;
                s->in_flight--;
                explicit_bzero(j->data, j->len);
                mail_job_free(j);
        }
        /* write the outcomes again in the next batch */
        while (s->recorded) {
                struct mail_job *j = s->recorded;
                s->recorded = j->next;
                j->next = s->results;
                s->results = j;
        }
        s->maybe_due = true;
}

int sched_requeue_unstarted(struct sched *s)
{
        struct mail_job *list = sender_take_queued(s->sender);
        int r = 0;
        while (list) {
                struct mail_job *j = list;
                list = j->next;
                s->in_flight--;
                mark_batch(s, &r);
                if (r == 0)
                        r = store_outbox_finish(s->store, j->id, MS_QUEUED, s->now, s->now, NULL);
                explicit_bzero(j->data, j->len);
                mail_job_free(j);
        }
        return r;
}
