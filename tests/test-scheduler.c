/*
 * test-scheduler.c - the scheduler between a real store (a SQLite file in
 * a temporary directory) and a fake sender: this file implements the
 * sender.h calls the scheduler makes, records the jobs handed to it and
 * finishes them with the SMTP outcomes a test chooses (250, a 4xx
 * deferral, a 5xx failure, no relay at all).  Each loop iteration is
 * driven as the daemon's end_of_iteration() does, with an explicit `now`:
 * sched_work(), commit, sched_committed().  Checked: due mails are claimed
 * and handed over only after the commit, a confirmation carries a token
 * the store knows, a 4xx defers with doubling backoff and is tried again
 * when due, a 5xx fails (and a dead address is suppressed), an issue's
 * progress counts follow, mails of an unsubscribed subscriber are
 * skipped, a paused issue waits, and a relay that does not answer is
 * probed alone, with backoff, without charging attempts, until it does.
 * Database reads name only subscriber, subscription, outbox and token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "conf.h"
#include "draft.h"
#include "scheduler.h"
#include "sender.h"
#include "store.h"
#include "tmpl.h"
#include "token.h"
#include "unit.h"

/* ---- the fake sender ---- */

struct sender {
        struct mail_job *queued;        /* handed over, not started (in order) */
        struct mail_job *done;          /* finished, not collected */
        unsigned pushed;                /* jobs handed over, ever */
        unsigned committed;             /* sender_committed() sums */
        unsigned taken_back;            /* by sender_take_queued() */
};

void sender_push(struct sender *s, struct mail_job *job)
{
        struct mail_job **p = &s->queued;
        while (*p)
                p = &(*p)->next;
        job->next = NULL;
        *p = job;
        s->pushed++;
}

struct mail_job *sender_collect(struct sender *s)
{
        struct mail_job *j = s->done;
        s->done = NULL;
        return j;
}

void sender_committed(struct sender *s, unsigned sent)
{
        s->committed += sent;
}

struct mail_job *sender_take_queued(struct sender *s)
{
        struct mail_job *j = s->queued;
        for (struct mail_job *k = j; k; k = k->next)
                s->taken_back++;
        s->queued = NULL;
        return j;
}

void mail_job_free(struct mail_job *j)
{
        if (!j)
                return;
        draft_free(j->draft);
        free(j->env_from);
        free(j->rcpt);
        free(j->data);
        free(j);
}

static unsigned queued_count(const struct sender *s)
{
        unsigned n = 0;
        for (const struct mail_job *j = s->queued; j; j = j->next)
                n++;
        return n;
}

/* The job for `rcpt` the senders have not started, or NULL. */
static struct mail_job *queued_for(struct sender *s, const char *rcpt)
{
        for (struct mail_job *j = s->queued; j; j = j->next)
                if (strcmp(j->rcpt, rcpt) == 0)
                        return j;
        return NULL;
}

/* A sender thread took the job for `rcpt` and the relay answered: the
 * job is finished with that outcome.  false when there was none. */
static bool finish(struct sender *s, const char *rcpt, enum mail_outcome outcome, long code,
                   bool data_sent, const char *reply)
{
        struct mail_job **p = &s->queued;
        while (*p && strcmp((*p)->rcpt, rcpt) != 0)
                p = &(*p)->next;
        if (!*p) {
                fprintf(stderr, "    no job for %s with the sender\n", rcpt);
                return false;
        }
        struct mail_job *j = *p;
        *p = j->next;
        j->outcome = outcome;
        j->code = code;
        j->data_sent = data_sent;
        snprintf(j->reply, sizeof(j->reply), "%s", reply);
        struct mail_job **d = &s->done;
        while (*d)
                d = &(*d)->next;
        j->next = NULL;
        *d = j;
        return true;
}

#define SENT(s, rcpt)           finish((s), (rcpt), OUTCOME_SENT, 250, true, "250 2.0.0 Ok: queued as 4Xy")
#define DEFER(s, rcpt)          finish((s), (rcpt), OUTCOME_DEFERRED, 451, false, \
                                       "451 4.3.0 Temporary lookup failure")
/* no relay answered: refused, timed out (the sender's code is 0) */
#define UNREACHABLE(s, rcpt)    finish((s), (rcpt), OUTCOME_DEFERRED, 0, false, \
                                       "Couldn't connect to server")

/* ---- the world: a store, a config, texts, the scheduler ---- */

#define T0      1700000000LL

static char dir[] = "/tmp/test-scheduler-XXXXXX";

struct world {
        char path[256];
        struct store *st;
        struct conf conf;
        struct templates tmpl;
        struct sender snd;
        struct sched *sched;
};

static bool world_open(struct world *w, const char *name)
{
        memset(w, 0, sizeof(*w));
        snprintf(w->path, sizeof(w->path), "%s/%s", dir, name);
        if (store_open(w->path, &w->st) != 0)
                return false;
        conf_defaults(&w->conf);
        w->conf.max_connections = 1;    /* room for JOBS_PER_SENDER */
        char err[256];
        if (templates_load(&w->tmpl, NULL, err, sizeof(err)) != 0) {
                fprintf(stderr, "templates: %s\n", err);
                return false;
        }
        w->sched = sched_new(w->st, &w->snd);
        sched_configure(w->sched, &w->conf, &w->tmpl);
        return true;
}

static void world_close(struct world *w)
{
        sched_free(w->sched);
        struct mail_job *lists[] = { w->snd.queued, w->snd.done };
        for (size_t i = 0; i < 2; i++) {
                while (lists[i]) {
                        struct mail_job *j = lists[i];
                        lists[i] = j->next;
                        mail_job_free(j);
                }
        }
        store_close(w->st);
        templates_free(&w->tmpl);
        conf_free(&w->conf);
}

/* One loop iteration of the daemon: outcomes recorded and mails claimed in
 * the batch, committed, then handed to the sender. */
static bool iterate(struct world *w, int64_t now)
{
        sched_kick(w->sched);           /* the tick */
        int r = sched_work(w->sched, now, true);
        if (r == 0)
                r = store_batch_commit(w->st);
        else
                store_batch_rollback(w->st);
        if (!CHECK_INT(r, 0)) {
                sched_rolled_back(w->sched);
                return false;
        }
        sched_committed(w->sched);
        return true;
}

/* Confirmed subscribers of `list` (an import). */
static void subscribers(struct world *w, const char *list, const char *const *emails, size_t n)
{
        struct import_spec spec = { .list = list, .lang = LANG_EN, .source = "import:test",
                                    .now = T0 - 86400 };
        struct import_result res;
        CHECK_INT(store_batch_begin(w->st), 0);
        CHECK_INT(store_import_clear(w->st), 0);
        for (size_t i = 0; i < n; i++)
                CHECK_INT(store_import_stage(w->st, emails[i], emails[i], NULL), 0);
        memset(&res, 0, sizeof(res));
        CHECK_INT(store_import_apply(w->st, &spec, 1000, &res), 0);
        CHECK_INT(store_import_apply(w->st, &spec, 1000, &res), 1);
        CHECK_INT(res.added, n);
        CHECK_INT(store_batch_commit(w->st), 0);
}

static int64_t issue(struct world *w, const char *list, int64_t now, int64_t expect)
{
        struct issue is = { .list = (char *)list, .subject = "Issue", .text = "Hello {{name}}" };
        int64_t id = 0, n = 0;
        CHECK_INT(store_batch_begin(w->st), 0);
        CHECK_INT(store_issue_create(w->st, &is, NULL, now, &id, &n), 0);
        CHECK_INT(store_batch_commit(w->st), 0);
        CHECK_INT(n, expect);
        return id;
}

static int64_t count(struct world *w, int64_t issue_id, enum mail_state state)
{
        int64_t n[MS_SKIPPED + 1] = { 0 };
        CHECK_INT(store_issue_counts(w->st, issue_id, n), 0);
        return n[state];
}

/* One integer of the file, read by a second connection; `arg` binds ?1
 * (an integer) and `text` ?2 when not NULL. */
static int64_t peek(struct world *w, const char *sql, int64_t arg, const char *text)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        int64_t v = -1;
        if (sqlite3_open_v2(w->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
                fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
                abort();
        }
        if (sqlite3_bind_parameter_count(s) >= 1)
                sqlite3_bind_int64(s, 1, arg);
        if (text)
                sqlite3_bind_text(s, 2, text, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

#define MAIL_OF "SELECT %s FROM outbox o JOIN subscription s ON s.id = o.subscription_id" \
                " JOIN subscriber u ON u.id = s.subscriber_id WHERE o.issue_id = ?1 AND u.email = ?2"

static int64_t mail_int(struct world *w, int64_t issue_id, const char *email, const char *col)
{
        char sql[512], c[64];
        snprintf(c, sizeof(c), "o.%s", col);
        snprintf(sql, sizeof(sql), MAIL_OF, c);
        return peek(w, sql, issue_id, email);
}

static int64_t mail_state(struct world *w, int64_t issue_id, const char *email, const char *state)
{
        char sql[600];
        snprintf(sql, sizeof(sql), MAIL_OF " AND o.state = '%s'", "count(*)", state);
        return peek(w, sql, issue_id, email);
}

/* ---- the tests ---- */

static void test_due_mails_are_claimed_and_handed_over(void)
{
        struct world w;
        REQUIRE(world_open(&w, "claim.db"));
        static const char *const who[] = { "a@example.org", "b@example.org", "c@example.org" };
        subscribers(&w, "news", who, 3);
        /* a sign-up waiting for its confirmation (kept apart, as h_subscribe makes it) */
        int64_t sub = 0;
        CHECK_INT(store_batch_begin(w.st), 0);
        CHECK_INT(store_subscription_add(w.st, 0, "news", LANG_EN, T0, &sub), 0);
        CHECK_INT(store_outbox_add(w.st, MAIL_CONFIRM, sub, PRIO_CONFIRM, T0, NULL), 0);
        struct consent c = { .list = "news", .event = "signup", .at = T0, .lang = "en",
                             .source = "socket" };
        CHECK_INT(store_signup_put(w.st, sub, "new@example.org", "New@example.org", NULL, &c, false), 0);
        CHECK_INT(store_batch_commit(w.st), 0);
        int64_t id = issue(&w, "news", T0, 3);

        /* nothing is due before its time */
        REQUIRE(iterate(&w, T0 - 1));
        CHECK_UINT(w.snd.pushed, 0);
        CHECK_UINT(sched_in_flight(w.sched), 0);

        /* claimed in the batch, handed over only after its commit */
        sched_kick(w.sched);
        CHECK_INT(sched_work(w.sched, T0, true), 0);
        CHECK(sched_claimed(w.sched));
        CHECK_UINT(sched_in_flight(w.sched), 4);
        CHECK_UINT(w.snd.pushed, 0);
        CHECK_INT(store_batch_commit(w.st), 0);
        sched_committed(w.sched);
        CHECK(!sched_claimed(w.sched));
        CHECK_UINT(w.snd.pushed, 4);
        CHECK_UINT(queued_count(&w.snd), 4);
        /* the confirmation: urgent (the senders take it ahead of the
         * rest), to the address as given, with a link whose token the
         * store knows */
        struct mail_job *j = queued_for(&w.snd, "New@example.org");
        REQUIRE(j);
        CHECK(j->urgent);
        CHECK_INT(j->issue_id, 0);
        CHECK_STR(j->env_from, w.conf.from_addr);
        REQUIRE(j->draft && j->draft->text);
        const char *t = strstr(j->draft->text, "token=");
        REQUIRE(t);
        struct token tok;
        REQUIRE(token_parse(t + 6, TOKEN_TEXT_LEN, &tok));
        struct token_row row;
        REQUIRE(store_token_find(w.st, tok.hash, &row) == 0);
        CHECK_INT(row.subscription_id, sub);
        CHECK_INT(row.kind, TOKEN_CONFIRM);
        CHECK_INT(row.expires_at, T0 + (int64_t)w.conf.confirm_ttl);
        /* the newsletters: not urgent, the issue's, 'sending' counted as queued */
        for (size_t i = 0; i < 3; i++) {
                struct mail_job *n = queued_for(&w.snd, who[i]);
                REQUIRE(n);
                CHECK(!n->urgent);
                CHECK_INT(n->issue_id, id);
                CHECK(n->draft && n->draft->issue && n->draft->unsubscribe_url);
                CHECK_INT(mail_state(&w, id, who[i], "sending"), 1);
                CHECK_INT(mail_int(&w, id, who[i], "attempts"), 1);
        }
        CHECK_INT(count(&w, id, MS_QUEUED), 3);
        /* claimed once only */
        REQUIRE(iterate(&w, T0 + 1));
        CHECK_UINT(w.snd.pushed, 4);

        /* 250 for all */
        CHECK(SENT(&w.snd, "New@example.org"));
        for (size_t i = 0; i < 3; i++)
                CHECK(SENT(&w.snd, who[i]));
        REQUIRE(iterate(&w, T0 + 2));
        CHECK_UINT(sched_in_flight(w.sched), 0);
        CHECK_UINT(w.snd.committed, 4);
        CHECK_INT(count(&w, id, MS_SENT), 3);
        CHECK_INT(count(&w, id, MS_QUEUED), 0);
        for (size_t i = 0; i < 3; i++) {
                CHECK_INT(mail_state(&w, id, who[i], "sent"), 1);
                CHECK_INT(mail_int(&w, id, who[i], "done_at"), T0 + 2);
        }
        CHECK_INT(peek(&w, "SELECT count(*) FROM outbox WHERE subscription_id = ?1 AND state = 'sent'",
                       sub, NULL), 1);
        REQUIRE(iterate(&w, T0 + 100000));
        CHECK_UINT(w.snd.pushed, 4);
        world_close(&w);
}

static void test_deferral_backs_off_and_failure_fails(void)
{
        struct world w;
        REQUIRE(world_open(&w, "defer.db"));
        static const char *const who[] = { "slow@example.org", "dead@example.org",
                                           "policy@example.org", "late@example.org" };
        subscribers(&w, "news", who, 4);
        int64_t id = issue(&w, "news", T0, 4);
        const int64_t first = (int64_t)w.conf.retry_initial;
        REQUIRE(iterate(&w, T0));
        CHECK_UINT(w.snd.pushed, 4);

        /* 4xx: deferred, due again retry_initial later */
        CHECK(DEFER(&w.snd, who[0]));
        /* 5xx naming a dead address: failed, and the subscriber suppressed */
        CHECK(finish(&w.snd, who[1], OUTCOME_FAILED, 550, false,
                     "550 5.1.1 <dead@example.org>: Recipient address rejected: User unknown"));
        /* 5xx for a policy reason: failed, the subscriber left alone */
        CHECK(finish(&w.snd, who[2], OUTCOME_FAILED, 554, true, "554 5.7.1 Message rejected as spam"));
        REQUIRE(iterate(&w, T0 + 10));
        CHECK_INT(mail_state(&w, id, who[0], "deferred"), 1);
        CHECK_INT(mail_int(&w, id, who[0], "next_at"), T0 + 10 + first);
        CHECK_INT(mail_state(&w, id, who[1], "failed"), 1);
        CHECK_INT(mail_state(&w, id, who[2], "failed"), 1);
        CHECK_INT(count(&w, id, MS_DEFERRED), 1);
        CHECK_INT(count(&w, id, MS_FAILED), 2);
        CHECK_INT(count(&w, id, MS_QUEUED), 1);         /* late@, still with the sender */
        struct subscription sub;
        REQUIRE(store_subscription_find(w.st, who[1], "news", &sub) == 0);
        CHECK_INT(sub.state, SUB_BOUNCED);
        REQUIRE(store_subscription_find(w.st, who[2], "news", &sub) == 0);
        CHECK_INT(sub.state, SUB_CONFIRMED);
        REQUIRE(store_subscription_find(w.st, who[0], "news", &sub) == 0);
        CHECK_INT(sub.state, SUB_CONFIRMED);

        /* not before it is due */
        REQUIRE(iterate(&w, T0 + 10 + first - 1));
        CHECK_UINT(w.snd.pushed, 4);
        REQUIRE(iterate(&w, T0 + 10 + first));
        CHECK_UINT(w.snd.pushed, 5);
        CHECK(queued_for(&w.snd, who[0]) != NULL);
        CHECK_INT(mail_int(&w, id, who[0], "attempts"), 2);
        CHECK_INT(count(&w, id, MS_DEFERRED), 0);
        CHECK_INT(count(&w, id, MS_QUEUED), 2);
        /* deferred again: twice the wait */
        CHECK(DEFER(&w.snd, who[0]));
        const int64_t second = T0 + 20 + first;
        REQUIRE(iterate(&w, second));
        CHECK_INT(mail_int(&w, id, who[0], "next_at"), second + 2 * first);
        REQUIRE(iterate(&w, second + 2 * first - 1));
        CHECK_UINT(w.snd.pushed, 5);
        REQUIRE(iterate(&w, second + 2 * first));
        CHECK_UINT(w.snd.pushed, 6);
        CHECK(SENT(&w.snd, who[0]));
        REQUIRE(iterate(&w, second + 2 * first + 1));
        CHECK_INT(mail_state(&w, id, who[0], "sent"), 1);
        CHECK_INT(count(&w, id, MS_SENT), 1);

        /* deferred past give_up_after: failed */
        CHECK(DEFER(&w.snd, who[3]));
        REQUIRE(iterate(&w, T0 + (int64_t)w.conf.give_up_after));
        CHECK_INT(mail_state(&w, id, who[3], "failed"), 1);
        CHECK_INT(count(&w, id, MS_FAILED), 3);
        CHECK_INT(count(&w, id, MS_QUEUED), 0);
        CHECK_INT(count(&w, id, MS_DEFERRED), 0);
        CHECK_UINT(sched_in_flight(w.sched), 0);
        world_close(&w);
}

static void test_unsubscribed_and_paused_are_not_sent(void)
{
        struct world w;
        REQUIRE(world_open(&w, "skip.db"));
        static const char *const who[] = { "stays@example.org", "leaves@example.org" };
        subscribers(&w, "news", who, 2);
        int64_t id = issue(&w, "news", T0, 2);
        /* one leaves before the mail's turn */
        struct subscription sub;
        REQUIRE(store_subscription_find(w.st, who[1], "news", &sub) == 0);
        CHECK_INT(store_batch_begin(w.st), 0);
        CHECK_INT(store_subscription_unsubscribe(w.st, sub.id, T0), 0);
        CHECK_INT(store_batch_commit(w.st), 0);
        REQUIRE(iterate(&w, T0));
        CHECK_UINT(w.snd.pushed, 1);
        CHECK(queued_for(&w.snd, who[0]) != NULL);
        CHECK(queued_for(&w.snd, who[1]) == NULL);
        CHECK_INT(mail_state(&w, id, who[1], "skipped"), 1);
        CHECK_INT(count(&w, id, MS_SKIPPED), 1);
        CHECK_INT(count(&w, id, MS_QUEUED), 1);
        CHECK(SENT(&w.snd, who[0]));
        REQUIRE(iterate(&w, T0 + 1));

        /* a paused issue's mails wait until it is resumed */
        static const char *const more[] = { "third@example.org" };
        subscribers(&w, "news", more, 1);
        int64_t id2 = issue(&w, "news", T0 + 10, 2);
        int64_t changed = 0;
        CHECK_INT(store_batch_begin(w.st), 0);
        CHECK_INT(store_issue_set_state(w.st, id2, ISSUE_SENDING, ISSUE_PAUSED, T0 + 10, &changed), 0);
        CHECK_INT(store_batch_commit(w.st), 0);
        CHECK_INT(changed, 2);
        REQUIRE(iterate(&w, T0 + 20));
        CHECK_UINT(w.snd.pushed, 1);
        CHECK_INT(store_batch_begin(w.st), 0);
        CHECK_INT(store_issue_set_state(w.st, id2, ISSUE_PAUSED, ISSUE_SENDING, T0 + 30, &changed), 0);
        CHECK_INT(store_batch_commit(w.st), 0);
        REQUIRE(iterate(&w, T0 + 30));
        CHECK_UINT(w.snd.pushed, 3);
        CHECK(queued_for(&w.snd, more[0]) != NULL);
        world_close(&w);
}

#define ISSUE_COL "SELECT coalesce(%s, -1) FROM issue WHERE id = ?1"

static int64_t issue_col(struct world *w, int64_t id, const char *col)
{
        char sql[200];
        snprintf(sql, sizeof(sql), ISSUE_COL, col);
        return peek(w, sql, id, NULL);
}

/* send --at: no recipient before the time, those confirmed by then after
 * it; a cancelled one never; the end of sending is noted in the batch that
 * records the last outcome (the archive's date). */
static void test_scheduled_issue_is_released_at_its_time(void)
{
        struct world w;
        REQUIRE(world_open(&w, "later.db"));
        static const char *const early[] = { "early@example.org" };
        subscribers(&w, "news", early, 1);
        struct issue is = { .list = "news", .subject = "Later", .text = "Hi {{name}}",
                            .send_at = T0 + 3600, .archive = true };
        struct issue gone = is;
        gone.send_at = T0 + 1800;
        int64_t id = 0, id_gone = 0, n = -1, changed = 0;
        CHECK_INT(store_batch_begin(w.st), 0);
        CHECK_INT(store_issue_create(w.st, &is, NULL, T0, &id, &n), 0);
        CHECK_INT(n, 0);
        CHECK_INT(store_issue_create(w.st, &gone, NULL, T0, &id_gone, &n), 0);
        CHECK_INT(store_issue_set_state(w.st, id_gone, ISSUE_SENDING, ISSUE_CANCELLED, T0, &changed), 0);
        CHECK_INT(store_batch_commit(w.st), 0);
        CHECK_INT(issue_col(&w, id, "scheduled"), 1);

        REQUIRE(iterate(&w, T0 + 3599));
        CHECK_UINT(w.snd.pushed, 0);
        CHECK_INT(issue_col(&w, id, "scheduled"), 1);
        CHECK_INT(issue_col(&w, id, "sent_at"), -1);
        /* confirmed before the time: a recipient too */
        static const char *const late[] = { "late@example.org" };
        subscribers(&w, "news", late, 1);

        REQUIRE(iterate(&w, T0 + 3600));
        CHECK_INT(issue_col(&w, id, "scheduled"), 0);
        CHECK_UINT(w.snd.pushed, 2);
        CHECK(queued_for(&w.snd, early[0]) != NULL);
        CHECK(queued_for(&w.snd, late[0]) != NULL);
        CHECK_INT(peek(&w, "SELECT count(*) FROM outbox WHERE issue_id = ?1", id_gone, NULL), 0);
        CHECK(SENT(&w.snd, early[0]));
        REQUIRE(iterate(&w, T0 + 3600));
        CHECK_INT(issue_col(&w, id, "sent_at"), -1);      /* one still out */
        CHECK(SENT(&w.snd, late[0]));
        REQUIRE(iterate(&w, T0 + 3600));
        CHECK_INT(issue_col(&w, id, "sent_at"), T0 + 3600);
        CHECK_INT(issue_col(&w, id_gone, "sent_at"), -1);
        world_close(&w);
}

static void test_unreachable_relay_is_probed(void)
{
        struct world w;
        REQUIRE(world_open(&w, "relay.db"));
        static const char *const who[] = { "r1@example.org", "r2@example.org", "r3@example.org",
                                           "r4@example.org" };
        subscribers(&w, "news", who, 4);
        int64_t id = issue(&w, "news", T0, 4);
        REQUIRE(iterate(&w, T0));
        CHECK_UINT(w.snd.pushed, 4);
        /* the first transfer finds no relay: the senders' other jobs come
         * back unstarted, no mail is charged an attempt */
        CHECK(UNREACHABLE(&w.snd, who[0]));
        REQUIRE(iterate(&w, T0 + 1));
        CHECK_UINT(w.snd.taken_back, 3);
        CHECK_UINT(queued_count(&w.snd), 0);
        CHECK_UINT(sched_in_flight(w.sched), 0);
        const int64_t probe1 = T0 + 1 + (w.conf.retry_initial < 5 ? (int64_t)w.conf.retry_initial : 5);
        for (size_t i = 0; i < 4; i++) {
                CHECK_INT(mail_state(&w, id, who[i], "deferred"), 1);
                CHECK_INT(mail_int(&w, id, who[i], "attempts"), 0);
                CHECK_INT(mail_int(&w, id, who[i], "next_at"), probe1);
        }
        CHECK_INT(count(&w, id, MS_DEFERRED), 4);
        /* one probe once its time came, not before */
        REQUIRE(iterate(&w, probe1 - 1));
        CHECK_UINT(w.snd.pushed, 4);
        REQUIRE(iterate(&w, probe1));
        CHECK_UINT(w.snd.pushed, 5);
        CHECK_UINT(queued_count(&w.snd), 1);
        REQUIRE(w.snd.queued);
        char probe_rcpt[256];
        snprintf(probe_rcpt, sizeof(probe_rcpt), "%s", w.snd.queued->rcpt);
        REQUIRE(iterate(&w, probe1 + 1));               /* one at a time */
        CHECK_UINT(w.snd.pushed, 5);
        /* the probe finds none either: the next one waits twice as long */
        CHECK(UNREACHABLE(&w.snd, probe_rcpt));
        REQUIRE(iterate(&w, probe1 + 2));
        const int64_t probe2 = probe1 + 2 + 2 * (probe1 - T0 - 1);
        CHECK_INT(mail_int(&w, id, probe_rcpt, "attempts"), 0);
        REQUIRE(iterate(&w, probe2 - 1));
        CHECK_UINT(w.snd.pushed, 5);
        REQUIRE(iterate(&w, probe2));
        CHECK_UINT(w.snd.pushed, 6);
        CHECK_UINT(queued_count(&w.snd), 1);
        REQUIRE(w.snd.queued);
        snprintf(probe_rcpt, sizeof(probe_rcpt), "%s", w.snd.queued->rcpt);
        /* it answers: everything waiting goes at once */
        CHECK(SENT(&w.snd, probe_rcpt));
        REQUIRE(iterate(&w, probe2 + 1));
        CHECK_UINT(w.snd.pushed, 9);
        CHECK_UINT(queued_count(&w.snd), 3);
        for (size_t i = 0; i < 4; i++) {
                if (strcmp(who[i], probe_rcpt) == 0)
                        continue;
                CHECK(SENT(&w.snd, who[i]));
        }
        REQUIRE(iterate(&w, probe2 + 2));
        CHECK_INT(count(&w, id, MS_SENT), 4);
        for (size_t i = 0; i < 4; i++)
                CHECK_INT(mail_int(&w, id, who[i], "attempts"), 1);
        world_close(&w);
}

int main(void)
{
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        RUN(test_due_mails_are_claimed_and_handed_over);
        RUN(test_deferral_backs_off_and_failure_fails);
        RUN(test_unsubscribed_and_paused_are_not_sent);
        RUN(test_unreachable_relay_is_probed);
        RUN(test_scheduled_issue_is_released_at_its_time);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        return unit_finish();
}
