/*
 * scheduler.c - between the outbox and the sender threads, on the main thread.
 * Each loop iteration, inside the batch transaction: record the outcomes
 * the senders finished (sent, deferred with doubling backoff, failed; a
 * refusal of the recipient itself applied as a DSN would be), then
 * claim due mails while the senders have room, confirmations first.  A
 * claimed confirmation gets a fresh token here: its hash goes into the same
 * transaction, the token itself only into the mail, which is handed to a
 * sender only after that transaction committed.  So the database never holds
 * a usable token, and a crash loses no mail: rows left 'sending' are queued
 * again at start-up and sent with a new token (at-least-once).
 *
 * The relay as a whole: a mail that reached no relay at all (no reply, not
 * even a greeting: refused, timed out, closed) says the relay is down, not
 * that the mail has a problem.  Then no mail is claimed but one probe after
 * a backoff of its own, the mails the senders have not started are taken
 * back, and none of those mails is charged an attempt; the probe's first
 * reply lets every sender go again, and the waiting mails go at once
 * rather than each at its own retry time.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "bounds.h"
#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "dkim.h"
#include "log.h"
#include "mime.h"
#include "draft.h"
#include "scheduler.h"
#include "sender.h"
#include "store.h"
#include "suppress.h"
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
        struct issue_text *issue;       /* texts of the issue being sent */
        uint8_t token_hash[32];         /* of the newsletter mail being claimed */
        int64_t relay_retry_at;         /* the relay is down: the next probe; 0: up */
        int64_t relay_delay;            /* between probes, doubling */
        int64_t probe_id;               /* the probe's mail while it is out, else 0 */
        unsigned rows_seen;             /* due rows claim_row() was called for */
        int64_t issues_checked_at;      /* the second scheduled and finished issues were looked for */
        bool finish_due;                /* a newsletter mail reached a final state in this batch */
        /* outcomes of newsletter mails in this batch, added up per issue and
         * state: the counts move once each */
        struct progress_move {
                int64_t issue_id;
                enum mail_state to;
                int64_t n;
        } moves[8];
        unsigned n_moves;
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
        issue_text_unref(s->issue);
        free(s);
}

void sched_configure(struct sched *s, const struct conf *c, const struct templates *t)
{
        s->conf = c;
        s->tmpl = t;
        s->capacity = c->max_connections * JOBS_PER_SENDER;
        s->maybe_due = true;
        /* a reload may name another relay, or the one that was down again:
         * try it at once rather than after the backoff */
        s->relay_retry_at = 0;
        s->relay_delay = 0;
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
        /* {id} becomes the mail's id and its tag: a bounce that names the
         * mail proves that it came back from where the mail went */
        const char *p = strstr(c->return_path, "{id}");
        char tag[SECRET_TAG_LEN + 1];
        assert(c->keys.n > 0);
        secret_tag(c->keys.key[0], id, tag);
        struct buf b;
        buf_init(&b, 0);
        buf_printf(&b, "%.*s%lld-%s%s", (int)(p - c->return_path), c->return_path, (long long)id, tag,
                   p + 4);
        return buf_steal(&b, NULL);
}

/* The job for a claimed row: its draft gets the sender and recipient. */
static struct mail_job *job_for(struct sched *s, const struct outbox_row *row, struct mail_draft *m,
                                int64_t now)
{
        const struct conf *c = s->conf;
        m->to = xstrdup(row->email);
        m->from_name = xstrdup(c->from_name);
        m->from_addr = xstrdup(c->from_addr);
        m->from_domain = xstrdup(c->from_domain);
        m->date = (time_t)now;
        struct mail_job *j = xcalloc(1, sizeof(*j));
        j->id = row->id;
        j->issue_id = row->issue_id;
        j->urgent = row->priority <= PRIO_CONFIRM;
        j->env_from = envelope_sender(c, row->id);
        j->rcpt = xstrdup(row->email);
        j->draft = m;
        return j;
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
        /* the token confirms the request this mail was queued for (whose
         * record has the mail's time): a later one may be a stranger's */
        if ((r = store_token_add(s->store, t.hash, row->subscription_id, TOKEN_CONFIRM, now,
                                 now + (int64_t)c->confirm_ttl, row->created_at)) < 0)
                return r;

        char days[24], period[48];
        snprintf(days, sizeof(days), "%llu", (unsigned long long)DAYS_ROUNDED_UP(c->confirm_ttl));
        tmpl_period(c->confirm_ttl, row->lang, period);
        char *url = link_with_token(c->confirm_url, t.text);
        explicit_bzero(&t, sizeof(t));
        struct tmpl_var vars[] = {
                { "confirm_url", url }, { "confirm_period", period }, { "confirm_days", days },
                { "list", row->list },
        };
        size_t nv = sizeof(vars) / sizeof(vars[0]);
        char *subject = tmpl_fill(mt->subject, vars, nv);
        char *body = tmpl_fill(mt->body, vars, nv);
        explicit_bzero(url, strlen(url));
        free(url);
        if (!subject || !body)
                fatal("template placeholders were checked at load time");

        /* the sender thread builds the message from this */
        struct mail_draft *m = xcalloc(1, sizeof(*m));
        m->subject = subject;
        m->text = body;
        *out = job_for(s, row, m, now);
        return 0;
}

static void mark_batch(struct sched *s, int *r)
{
        if (*r == 0)
                *r = store_batch_begin(s->store);
}

/* The texts of the issue being sent, shared with the sender threads. */
static int issue_texts(struct sched *s, int64_t id, struct issue_text **out)
{
        if (!s->issue || s->issue->id != id) {
                struct issue is;
                int r = store_issue_get(s->store, id, &is);
                if (r != 0)
                        return r < 0 ? r : 1;
                issue_text_unref(s->issue);
                s->issue = issue_text_new(id, is.subject, is.text, is.html);
                free(is.list);
        }
        *out = issue_text_ref(s->issue);
        return 0;
}

/* Claim one newsletter mail: a new unsubscribe token for its recipient goes
 * into the store; the mail itself is rendered by the sender thread. */
static int build_newsletter(struct sched *s, const struct outbox_row *row, int64_t now,
                            struct mail_job **out)
{
        const struct conf *c = s->conf;
        struct issue_text *it;
        int r = issue_texts(s, row->issue_id, &it);
        if (r != 0)
                return r;
        /* this mail's row keeps the token's hash (see claim_row); a test
         * send's link opens nothing: no hash is kept */
        struct token t;
        if ((r = token_new(&t)) < 0) {
                issue_text_unref(it);
                return r;
        }
        if (row->subscription_id)
                memcpy(s->token_hash, t.hash, sizeof(t.hash));
        struct mail_draft *m = xcalloc(1, sizeof(*m));
        m->issue = it;
        m->unsubscribe_url = link_with_token(c->unsubscribe_url, t.text);
        explicit_bzero(&t, sizeof(t));
        m->name = xstrdup(row->name);
        m->list = xstrdup(row->list);
        m->lang = row->lang;
        *out = job_for(s, row, m, now);
        return 0;
}

int sched_preview(struct sched *s, struct dkim_key *const *keys, size_t n_keys,
                  struct issue_text *it, const struct preview_rcpt *to, int64_t now,
                  struct buf *out)
{
        const struct conf *c = s->conf;
        struct token t;
        int r = token_new(&t);
        if (r < 0)
                return r;
        struct mail_draft *m = xcalloc(1, sizeof(*m));
        m->issue = issue_text_ref(it);
        m->unsubscribe_url = link_with_token(c->unsubscribe_url, t.text);
        explicit_bzero(&t, sizeof(t));
        m->name = xstrdup(to->name ? to->name : "");
        m->list = xstrdup(to->list);
        m->lang = to->lang;
        m->to = xstrdup(to->email);
        m->from_name = xstrdup(c->from_name);
        m->from_addr = xstrdup(c->from_addr);
        m->from_domain = xstrdup(c->from_domain);
        m->date = (time_t)now;
        struct buf msg;
        buf_init(&msg, 0);
        r = draft_render(m, &msg);
        draft_free(m);
        /* signed as a sender thread signs (sender.c: sign()) */
        if (r == 0 && n_keys && (r = dkim_sign(keys, n_keys, (time_t)now, msg.data, msg.len, out)) != 0)
                log_err("a preview could not be DKIM-signed (%d)", r);
        if (r == 0)
                buf_append(out, msg.data, msg.len);
        if (msg.data)
                explicit_bzero(msg.data, msg.len);
        buf_free(&msg);
        return r;
}

/* Claim one welcome mail: the welcome text of the subscriber's language as
 * a one-mail issue of its own, so that it gets a personal unsubscribe link
 * (its token's hash kept with the row, as a newsletter's) and List-Id,
 * List-Unsubscribe and List-Unsubscribe-Post like a newsletter. */
static int build_welcome(struct sched *s, const struct outbox_row *row, int64_t now,
                         struct mail_job **out)
{
        const struct mail_text *mt = &s->tmpl->welcome[row->lang];
        struct tmpl_var vars[] = { { "name", row->name }, { "list", row->list }, { "unsubscribe_url", "" } };
        char *subject = tmpl_fill(mt->subject, vars, sizeof(vars) / sizeof(vars[0]));
        if (!subject)
                fatal("template placeholders were checked at load time");
        struct token t;
        int r = token_new(&t);
        if (r < 0) {
                free(subject);
                return r;
        }
        memcpy(s->token_hash, t.hash, sizeof(t.hash));
        struct mail_draft *m = xcalloc(1, sizeof(*m));
        m->issue = issue_text_new(0, subject, xstrdup(mt->body), NULL);
        m->unsubscribe_url = link_with_token(s->conf->unsubscribe_url, t.text);
        explicit_bzero(&t, sizeof(t));
        m->name = xstrdup(row->name);
        m->list = xstrdup(row->list);
        m->lang = row->lang;
        *out = job_for(s, row, m, now);
        return 0;
}

static int skip(struct sched *s, const struct outbox_row *row, const char *why)
{
        int r = store_outbox_skip(s->store, row->id, why, s->now);
        if (r == 0)
                r = store_progress_move(s->store, row->issue_id, row->state, MS_SKIPPED, 1);
        s->finish_due = true;
        return r;
}

static int claim_row(void *ud, const struct outbox_row *row)
{
        struct sched *s = ud;
        struct mail_job *j = NULL;
        int r = 0;

        s->rows_seen++;
        mark_batch(s, &r);
        if (r < 0)
                return r;
        if (row->kind == MAIL_CONFIRM && (row->sub_state != SUB_PENDING || !row->email[0])) {
                /* confirmed, unsubscribed or restarted since, or expired with
                 * its address gone: nothing to send */
                return store_outbox_delete(s->store, row->id);
        }
        if ((row->kind == MAIL_NEWSLETTER || row->kind == MAIL_WELCOME) && row->sub_state != SUB_CONFIRMED)
                return skip(s, row, "no longer subscribed");
        /* a mail that was with a sender when its issue was paused or cancelled
         * and came back deferred */
        if (row->kind == MAIL_NEWSLETTER && row->issue_state == ISSUE_PAUSED)
                return store_outbox_park(s->store, row->id);
        if (row->kind == MAIL_NEWSLETTER && row->issue_state == ISSUE_CANCELLED)
                return skip(s, row, "cancelled");
        bool keep_hash = false;
        if (row->kind == MAIL_CONFIRM) {
                r = build_confirmation(s, row, s->now, &j);
        } else if (row->kind == MAIL_WELCOME) {
                r = build_welcome(s, row, s->now, &j);
                keep_hash = r == 0;
        } else {
                r = build_newsletter(s, row, s->now, &j);
                keep_hash = r == 0 && row->subscription_id;
        }
        if (r < 0)
                return r;
        if (r == 1) {
                if ((r = store_outbox_finish(s->store, row->id, MS_FAILED, s->now, s->now,
                                             "message could not be built", false, NULL)) < 0)
                        return r;
                s->finish_due = true;
                return store_progress_move(s->store, row->issue_id, row->state, MS_FAILED, 1);
        }
        r = store_outbox_sending(s->store, row->id, keep_hash ? s->token_hash : NULL);
        /* a deferred mail counts as queued again while it is with a sender */
        if (r == 0)
                r = store_progress_move(s->store, row->issue_id, row->state, MS_SENDING, 1);
        explicit_bzero(s->token_hash, sizeof(s->token_hash));
        if (r < 0) {
                mail_job_free(j);
                return r;
        }
        j->next = s->claimed;
        s->claimed = j;
        s->in_flight++;
        return 0;
}

static int flush_moves(struct sched *s)
{
        int r = 0;
        if (s->n_moves)
                s->finish_due = true;
        for (unsigned i = 0; i < s->n_moves && r == 0; i++)
                r = store_progress_move(s->store, s->moves[i].issue_id, MS_SENDING, s->moves[i].to,
                                        s->moves[i].n);
        /* on failure the batch is rolled back, and the outcomes recorded again */
        s->n_moves = 0;
        return r;
}

static int add_move(struct sched *s, int64_t issue_id, enum mail_state to)
{
        for (unsigned i = 0; i < s->n_moves; i++) {
                if (s->moves[i].issue_id == issue_id && s->moves[i].to == to) {
                        s->moves[i].n++;
                        return 0;
                }
        }
        int r = 0;
        if (s->n_moves == sizeof(s->moves) / sizeof(s->moves[0]))
                r = flush_moves(s);
        if (r == 0)
                s->moves[s->n_moves++] = (struct progress_move){ issue_id, to, 1 };
        return r;
}

static int64_t retry_delay(const struct conf *c, int attempts)
{
        uint64_t d = c->retry_initial;
        for (int i = 1; i < attempts && d < c->retry_max; i++)
                d *= 2;
        return (int64_t)(d < c->retry_max ? d : c->retry_max);
}

/* The relay refused the recipient itself (at RCPT, or at the data's end):
 * what a DSN saying the same would do (suppress.c), so that a relay that
 * checks recipients gets its unknown users suppressed too.  A dead address
 * (5.1.1, ..., 5.2.1) on a failed mail suppresses; a passing trouble of the
 * address (a 4xx before the data) on a deferred one counts toward
 * temporary_limit, once per mail; anything else (policy, content, the
 * relay's own trouble) leaves the subscriber alone. */
static int relay_refusal(struct sched *s, const struct mail_job *j)
{
        char status[16];
        const char *reason;
        enum bounce_kind k = bounce_relay_reply(j->code, j->reply, j->rcpt, status, &reason);
        if (!(k == BOUNCE_PERMANENT && j->outcome == OUTCOME_FAILED) &&
            !(k == BOUNCE_TEMPORARY && j->outcome == OUTCOME_DEFERRED && !j->data_sent) &&
            !(k == BOUNCE_SENDER && (j->outcome == OUTCOME_FAILED || j->outcome == OUTCOME_DEFERRED)))
                return 0;
        int64_t subscriber_id = 0, issue_id = 0;
        char email[256];
        int r = store_mail_owner(s->store, j->id, &subscriber_id, email, sizeof(email), &issue_id);
        /* a confirmation mail of a sign-up kept apart: its data joins the
         * subscribers, where bounces are counted (as for a DSN) */
        if (r == 0 && !subscriber_id &&
            (r = store_signup_adopt_mail(s->store, j->id, s->now)) >= 0)
                r = store_mail_owner(s->store, j->id, &subscriber_id, email, sizeof(email), &issue_id);
        if (r != 0 || !subscriber_id)
                return r < 0 ? r : 0;   /* a test send, an erased or expired address */
        const struct report rep = {
                .subscriber_id = subscriber_id, .outbox_id = j->id, .issue_id = issue_id, .kind = k,
                .reason = reason, .status = status, .diagnostic = j->reply, .recipient = email,
                .at = s->now,
        };
        enum report_action a;
        if ((r = suppress_apply(s->store, s->conf, &rep, &a)) < 0)
                return r;
        log_info("mail %lld: the relay refused its recipient (%s %s %s): subscriber %s", (long long)j->id,
                 bounce_class_name(k), reason, status[0] ? status : "no status", report_action_name(a));
        return 0;
}

/* The mail reached no relay: not a word from any (the sender's code is
 * that of the relay's last reply). */
static bool unreachable(const struct mail_job *j)
{
        return j->outcome == OUTCOME_DEFERRED && j->code == 0 && !j->data_sent;
}

/* What an outcome says of the relay.  Only the probe (or the first mail
 * that found the relay gone) moves its state: a mail that left before the
 * relay went down may still come back sent. */
static void relay_note(struct sched *s, const struct mail_job *j)
{
        const struct conf *c = s->conf;
        bool probe = s->probe_id && j->id == s->probe_id;
        if (probe)
                s->probe_id = 0;
        if (unreachable(j) && (!s->relay_retry_at || probe)) {
                int64_t first = c->retry_initial < RELAY_PROBE_FIRST ? (int64_t)c->retry_initial :
                                RELAY_PROBE_FIRST;
                int64_t max = c->retry_max < RELAY_PROBE_MAX ? (int64_t)c->retry_max : RELAY_PROBE_MAX;
                bool was_up = !s->relay_retry_at;
                s->relay_delay = was_up ? first : s->relay_delay * 2;
                if (s->relay_delay > max)
                        s->relay_delay = max;
                if (s->relay_delay < 1)
                        s->relay_delay = 1;
                s->relay_retry_at = s->now + s->relay_delay;
                log_warn("relay unreachable (%s); one probe in %llds", j->reply,
                         (long long)s->relay_delay);
                /* what the senders have not started would only knock too */
                if (was_up) {
                        struct mail_job *back = sender_take_queued(s->sender);
                        while (back) {
                                struct mail_job *b = back;
                                back = b->next;
                                b->outcome = OUTCOME_DEFERRED;
                                b->code = 0;
                                b->data_sent = false;
                                snprintf(b->reply, sizeof(b->reply), "not tried: the relay is unreachable");
                                b->next = s->results->next;
                                s->results->next = b;
                                s->in_flight--;
                        }
                }
        } else if (!unreachable(j) && probe) {
                log_info("relay answers again");
                s->relay_retry_at = 0;
                s->relay_delay = 0;
        }
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
                        /* one that found the relay gone waits for the relay, not for itself */
                        next = unreachable(j) && s->relay_retry_at ? s->relay_retry_at :
                               s->now + retry_delay(c, row ? row->attempts : 1);
                }
                break;
        }
        /* the reply may name the recipient: only at debug level */
        if (state == MS_SENT)
                log_debug("mail %lld: sent (%s)", (long long)j->id, j->reply);
        else if (j->data_sent && j->code < 400)
                /* it is sent again: a copy may arrive twice (README, "Delivery") */
                log_info("mail %lld: %s, the relay's answer to its data was lost; "
                         "if the relay had taken the mail, it arrives twice",
                         (long long)j->id, mail_state_name(state));
        else
                log_info("mail %lld: %s, SMTP code %ld", (long long)j->id, mail_state_name(state), j->code);
        log_debug("mail %lld: %s", (long long)j->id, j->reply);
        /* the token of a mail the relay cannot have is no copy's: the one
         * before it stays the previous hash (see claim_row) */
        bool changed = false;
        int r = store_outbox_finish(s->store, j->id, state, next, s->now, j->reply,
                                    state != MS_SENT && !j->data_sent, &changed);
        if (r == 0 && changed && state != MS_SENT)
                r = relay_refusal(s, j);
        /* an attempt that never reached a relay is none */
        if (r == 0 && changed && unreachable(j))
                r = store_outbox_uncharge(s->store, j->id);
        if (r < 0 || !changed || !j->issue_id)
                return r;
        /* it was 'sending' (a cancel or pause leaves those alone); an erased
         * recipient's row is gone and counted out by its delete trigger */
        return add_move(s, j->issue_id, state);
}

int sched_work(struct sched *s, int64_t now, bool collect)
{
        int r = 0;
        s->now = now;

        /* outcomes first: they free room for the next claims */
        struct mail_job *done = collect ? sender_collect(s->sender) : NULL;
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
                relay_note(s, j);
                if (j->outcome == OUTCOME_DEFERRED) {
                        int q = store_outbox_get(s->store, j->id, &row);
                        if (q < 0)
                                return q;
                        have_row = q == 0;
                }
                if ((r = record_outcome(s, j, have_row ? &row : NULL)) < 0) {
                        s->n_moves = 0;
                        return r;
                }
                s->results = j->next;
                j->next = s->recorded;
                s->recorded = j;
                s->maybe_due = true;
        }
        if ((r = flush_moves(s)) < 0)
                return r;
        /* once a second: the scheduled issues whose time has come get their
         * recipients (a daemon that was down then does it at its start),
         * and the issues no mail of which waits are looked for (those that
         * had none to send, or were resumed with none left) */
        if (now != s->issues_checked_at) {
                int64_t n = 0;
                s->issues_checked_at = now;
                mark_batch(s, &r);
                if (r == 0)
                        r = store_issue_release(s->store, now, &n);
                if (r < 0)
                        return r;
                if (n)
                        s->maybe_due = true;
                s->finish_due = true;
        }

        while (!s->held && s->maybe_due && s->in_flight < s->capacity) {
                unsigned room = s->capacity - s->in_flight;
                unsigned before = s->in_flight;
                /* the relay is down: one probe at a time, once its time came
                 * (the tick kicks the scheduler every second) */
                if (s->relay_retry_at && (s->probe_id || now < s->relay_retry_at))
                        break;
                if (s->relay_retry_at)
                        room = 1;
                s->maybe_due = false;
                s->rows_seen = 0;
                r = store_outbox_due(s->store, now, room, claim_row, s);
                if (r < 0)
                        return r;
                if (s->relay_retry_at && s->in_flight > before)
                        s->probe_id = s->claimed->id;
                /* a row that needed no relay (skipped, dropped, parked) was
                 * no probe: look for the next one */
                if (s->relay_retry_at && !s->probe_id && s->rows_seen) {
                        s->maybe_due = true;
                        continue;
                }
                /* a full batch may mean more is due */
                if (s->in_flight - before == room)
                        s->maybe_due = true;
                else
                        break;
        }
        /* an issue whose last mail reached its final state is finished in
         * the same transaction (the archive shows it from then on): status
         * never says finished while the archive does not know */
        if (s->finish_due) {
                int64_t n = 0;
                s->finish_due = false;
                mark_batch(s, &r);
                if (r == 0)
                        r = store_issue_finish(s->store, now, &n);
                if (r < 0)
                        return r;
        }
        return 0;
}

bool sched_claimed(const struct sched *s)
{
        return s->claimed != NULL;
}

void sched_committed(struct sched *s)
{
        unsigned sent = 0;
        for (struct mail_job *j = s->recorded; j; j = j->next)
                sent += j->outcome == OUTCOME_SENT;
        free_list(s->recorded);
        s->recorded = NULL;
        if (sent)
                sender_committed(s->sender, sent);
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
                if (j->id == s->probe_id)
                        s->probe_id = 0;        /* the next tick claims another */
                s->claimed = j->next;
                s->in_flight--;
                if (j->data)
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
                        r = store_outbox_finish(s->store, j->id, MS_QUEUED, s->now, s->now, NULL,
                                                true, NULL);     /* counted as queued already */
                if (j->data)
                        explicit_bzero(j->data, j->len);
                mail_job_free(j);
        }
        return r;
}
