/*
 * daemon.c - wires the modules together and runs the loop.  The post source
 * is the heart of it: after every loop iteration it lets the scheduler
 * record outcomes and claim mails inside the batch transaction, commits that
 * batch once, syncs the WAL once when answers wait on it (one fdatasync for
 * everything the iteration did: group commit), and only then sends the
 * answers and hands the mails to the sender threads.  An acknowledged
 * sign-up is therefore on disk.  SIGHUP reloads what can be
 * reloaded; SIGTERM stops accepting, lets transfers in flight finish (or
 * leaves them 'sending' for the next start to send again) and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "altcha.h"
#include "imap_judge.h"
#include "clock.h"
#include "conf.h"
#include "daemon.h"
#include "dkim.h"
#include "handlers.h"
#include "housekeeping.h"
#include "imap.h"
#include "log.h"
#include "scheduler.h"
#include "sender.h"
#include "server.h"
#include "store.h"
#include "tmpl.h"

struct daemon {
        struct conf *conf;
        struct templates *tmpl;
        struct store *store;
        struct sender *sender;
        struct sched *sched;
        struct server *server;
        struct handler_ctx hctx;
        struct housekeeping hk;
        struct imap_judge intake;       /* [bounce] imap_url */
        unsigned ticks;
        bool collect_due;               /* record the senders' outcomes in this iteration */
        sd_event *ev;
        sd_event_source *post, *tick, *notify, *urgent, *collect, *stop_timer, *more, *later, *imap;
        int notify_fd;
        int imap_fd;
        int urgent_fd;
        int lock_fd;
        bool stopping;
};

/* An exclusive lock on DATABASE.lock, held for the life of the process. */
static int database_lock(const char *db, int *fd_out)
{
        char path[4096];
        if (snprintf(path, sizeof(path), "%s.lock", db) >= (int)sizeof(path))
                return -ENAMETOOLONG;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                int e = -errno;
                log_err("%s: %s", path, strerror(errno));
                return e;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
                log_err("database %s is in use by another newsletterd", db);
                close(fd);
                return e;
        }
        *fd_out = fd;
        return 0;
}

/* Every client is a file descriptor: take what the hard limit allows. */
static void raise_fd_limit(void)
{
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        log_debug("RLIMIT_NOFILE stays as it is");
        }
}

struct signing {
        struct dkim_key **keys;
        size_t n;
};

static void signing_free(struct signing *sg)
{
        for (size_t i = 0; i < sg->n; i++)
                dkim_key_free(sg->keys[i]);
        free(sg->keys);
        sg->keys = NULL;
        sg->n = 0;
}

/* The [dkim] keys; errors reported like config errors. */
static int signing_load(const struct conf *c, struct signing *sg)
{
        memset(sg, 0, sizeof(*sg));
        if (!c->dkim_selectors.n)
                return 0;
        sg->keys = xcalloc(c->dkim_selectors.n, sizeof(*sg->keys));
        for (size_t i = 0; i < c->dkim_selectors.n; i++) {
                char err[300];
                int r = dkim_key_load(c->dkim_key_files.v[i], c->dkim_domain, c->dkim_selectors.v[i],
                                      &sg->keys[sg->n], err, sizeof(err));
                if (r != 0) {
                        fprintf(stderr, "%s: [dkim] key_file %s: %s\n", c->path, c->dkim_key_files.v[i], err);
                        signing_free(sg);
                        return 1;
                }
                sg->n++;
        }
        return 0;
}

/* The key of the sign-up challenges: derived from [antibot] key_file's
 * keys, or from [daemon] key_file's when it names none (altcha.h).  A file
 * of its own is made only when pow is on. */
static int antibot_keys_load(struct conf *c, bool create)
{
        struct secret_keys own, *from = &c->keys;
        char err[300];
        if (*c->antibot_key_file) {
                if (!(create && c->pow) && access(c->antibot_key_file, F_OK) < 0 && errno == ENOENT)
                        return 0;
                if (secret_load(c->antibot_key_file, create && c->pow, &own, err, sizeof(err)) != 0) {
                        fprintf(stderr, "%s: [antibot] key_file %s: %s\n", c->path,
                                c->antibot_key_file, err);
                        return 1;
                }
                from = &own;
        }
        for (size_t i = 0; i < from->n; i++)
                altcha_key(from->key[i], c->altcha_keys[i]);
        c->altcha_keys_n = from->n;
        if (from == &own)
                secret_keys_clear(&own);
        return 0;
}

/* The secret keys of [daemon] key_file (default: next to the database).
 * A missing file is made when `create` is set; --check-config makes none
 * and only checks a file that is there. */
static int keys_load(struct conf *c, bool create)
{
        char path[4096], err[300];
        if (snprintf(path, sizeof(path), "%s%s", *c->key_file ? c->key_file : c->database,
                     *c->key_file ? "" : ".key") >= (int)sizeof(path)) {
                fprintf(stderr, "%s: [daemon] key_file: path too long\n", c->path);
                return 1;
        }
        if (!create && access(path, F_OK) < 0 && errno == ENOENT)
                return 0;
        if (secret_load(path, create, &c->keys, err, sizeof(err)) != 0) {
                fprintf(stderr, "%s: [daemon] key_file %s: %s\n", c->path, path, err);
                return 1;
        }
        return antibot_keys_load(c, create);
}

/* Load and check everything the config names.  0, or errors printed.
 * `create`: make what is missing that a running daemon needs (the key file). */
static int load_config(const char *path, bool create, struct conf **cp, struct templates **tp,
                       struct signing *sg)
{
        struct conf *c = xcalloc(1, sizeof(*c));
        struct templates *t = xcalloc(1, sizeof(*t));
        struct conf_errors errs = { 0 };
        char err[512];

        conf_defaults(c);
        int r = conf_load(c, path, &errs);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                goto fail;
        }
        if (r == 0)
                conf_load_secrets(c, &errs);
        if (errs.n == 0 && templates_load(t, c->templates, err, sizeof(err)) != 0) {
                fprintf(stderr, "%s: templates: %s\n", path, err);
                r = 1;
                goto fail;
        }
        if (errs.n) {
                conf_errors_print(&errs, stderr);
                r = 1;
                goto fail;
        }
        if (keys_load(c, create) != 0 || signing_load(c, sg) != 0) {
                r = 1;
                goto fail;
        }
        conf_errors_free(&errs);
        *cp = c;
        *tp = t;
        return 0;
fail:
        conf_errors_free(&errs);
        conf_free(c);
        free(c);
        templates_free(t);
        free(t);
        return r ? r : 1;
}

int daemon_check_config(const char *path)
{
        struct conf *c;
        struct templates *t;
        struct signing sg;
        if (load_config(path, false, &c, &t, &sg) != 0)
                return 1;
        signing_free(&sg);
        conf_free(c);
        free(c);
        templates_free(t);
        free(t);
        printf("%s: ok\n", path);
        return 0;
}

/* housekeeping waiting for the checkpointer looks again after this long */
#define HOUSEKEEPING_WAIT_USEC 2000

static void end_of_iteration(struct daemon *d)
{
        int64_t now = clock_now();
        /* background work gives way to requests: one slice of an import or
         * of housekeeping runs only in an iteration no client waits on (a
         * failing slice undoes itself only) */
        int more;
        if (d->stopping)
                more = 0;
        else if (server_busy(d->server))
                more = d->hk.active || d->hctx.import.applying;
        else if ((more = handler_import_work(&d->hctx)) != 0)
                more = more > 0 || d->hk.active;
        else
                more = housekeeping_work(&d->hk, d->store, now);
        bool collect = d->collect_due || d->stopping;
        d->collect_due = false;
        int r = sched_work(d->sched, now, collect);
        if (r == 0 && d->stopping)
                r = sched_requeue_unstarted(d->sched);
        /* a message of the bounce mailbox: judged in this batch, deleted
         * by the poller only once the batch is on disk */
        int judged = 0;
        if (r == 0 && d->intake.imap && !d->stopping) {
                d->hctx.now = now;
                d->hctx.conn = 0;
                if ((judged = imap_judge_work(&d->intake, &d->hctx)) < 0)
                        r = judged;
        }
        if (r == 0)
                r = store_batch_commit(d->store);
        else
                store_batch_rollback(d->store);
        if (r == 0) {
                if (d->hctx.checkpoint_after_commit && store_checkpoint(d->store) < 0)
                        log_err("checkpoint after an erase failed; the WAL may still hold the old data");
                d->hctx.checkpoint_after_commit = false;
                /* What leaves the daemon waits for the sync of what it
                 * speaks of: answers, and mails whose links (tokens) this
                 * batch stored (the outcomes recorded so far go to disk
                 * with them).  The scheduler's bookkeeping alone is not
                 * synced by itself: outcomes recorded after the last claim
                 * of a send reach the disk with the next sync or
                 * checkpoint.  A failed sync is the end (store_sync). */
                if (server_busy(d->server) || d->stopping || sched_claimed(d->sched) || judged > 0)
                        store_sync(d->store);
                sched_committed(d->sched);
                imap_judge_done(&d->intake, true);
                server_release_answers(d->server);
        } else {
                log_err("batch not committed (%s); its requests are answered with an error",
                        strerror(-r));
                sched_rolled_back(d->sched);
                imap_judge_done(&d->intake, false);
                d->hctx.checkpoint_after_commit = false;
                server_fail_answers(d->server, r == -EBUSY ? ERR_UNAVAILABLE : ERR_INTERNAL);
        }
        /* housekeeping left for the next slice: come round again at once (after
         * a failure the minute tick tries again, rather than spinning) */
        if (more == HOUSEKEEPING_LATER && r == 0) {
                sd_event_source_set_time_relative(d->later, HOUSEKEEPING_WAIT_USEC);
                sd_event_source_set_enabled(d->later, SD_EVENT_ONESHOT);
        } else if (more > 0 && r == 0) {
                sd_event_source_set_enabled(d->more, SD_EVENT_ONESHOT);
        }
        if (d->stopping && sched_in_flight(d->sched) == 0 && server_connections(d->server) == 0)
                sd_event_exit(d->ev, 0);
}

static int on_later(sd_event_source *s, uint64_t usec, void *ud)
{
        return 0;       /* the post source does the work */
}

static int on_more(sd_event_source *s, void *ud)
{
        return 0;       /* the post source does the work */
}

static int on_post(sd_event_source *s, void *ud)
{
        end_of_iteration(ud);
        return 0;
}

/* Outcomes are collected a few milliseconds after the first of them
 * arrives, so that one commit records many (each commit writes the WAL), while
 * the senders still have claimed mails to work on. */
#define COLLECT_DELAY_USEC 3000

static int on_collect(sd_event_source *s, uint64_t usec, void *ud)
{
        struct daemon *d = ud;
        d->collect_due = true;
        sched_kick(d->sched);
        sd_event_source_set_enabled(d->notify, SD_EVENT_ON);
        return 0;
}

static int on_notify(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
        struct daemon *d = ud;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_err("eventfd: %s", strerror(errno));
        sd_event_source_set_enabled(d->notify, SD_EVENT_OFF);
        sd_event_source_set_time_relative(d->collect, COLLECT_DELAY_USEC);
        sd_event_source_set_enabled(d->collect, SD_EVENT_ONESHOT);
        return 0;
}

/* A sender may not send its next mail's data before outcomes are
 * committed: no window then. */
static int on_urgent(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
        struct daemon *d = ud;
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_err("eventfd: %s", strerror(errno));
        d->collect_due = true;
        sched_kick(d->sched);
        sd_event_source_set_enabled(d->collect, SD_EVENT_OFF);
        sd_event_source_set_enabled(d->notify, SD_EVENT_ON);
        return 0;
}

/* The poller has a message waiting: the post source judges it. */
static int on_imap(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
        uint64_t v;
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_err("eventfd: %s", strerror(errno));
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
        struct daemon *d = ud;
        sched_kick(d->sched);
        /* expired sign-ups are stripped every minute, whether cron asks or not */
        if (++d->ticks % 60 == 0)
                housekeeping_request(&d->hk, d->conf, clock_now());
        sd_event_source_set_time_relative(s, 1000000u);
        sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
        struct daemon *d = ud;
        log_warn("stopping with %u transfers unfinished; they are sent again after the next start",
                 sched_in_flight(d->sched));
        sd_event_exit(d->ev, 0);
        return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
        struct daemon *d = ud;
        if (d->stopping)
                return 0;
        log_info("stopping (signal %u)", si->ssi_signo);
        sd_notify(0, "STOPPING=1");
        d->stopping = true;
        sched_hold(d->sched);
        server_shutdown(d->server);
        sd_event_add_time_relative(d->ev, &d->stop_timer, CLOCK_MONOTONIC,
                                   (d->conf->timeout + 5) * 1000000u, 0, on_stop_timeout, d);
        return 0;
}

static gid_t group_id(const char *name)
{
        if (!*name)
                return (gid_t)-1;
        struct group *g = getgrnam(name);
        if (!g) {
                log_err("group %s does not exist", name);
                return (gid_t)-2;
        }
        return g->gr_gid;
}

/* The admin ACL from the config: user and group names resolved. */
static int admin_acl_build(const struct conf *c, struct admin_acl *acl)
{
        memset(acl, 0, sizeof(*acl));
        acl->gid = group_id(c->admin_group);
        if (acl->gid == (gid_t)-2)
                return -ENOENT;
        for (size_t i = 0; i < c->admin_users.n; i++) {
                struct passwd *pw = getpwnam(c->admin_users.v[i]);
                if (!pw) {
                        log_err("admin_users: user %s does not exist", c->admin_users.v[i]);
                        return -ENOENT;
                }
                if (acl->n_uids == sizeof(acl->uids) / sizeof(acl->uids[0])) {
                        log_err("admin_users: at most %zu users", acl->n_uids);
                        return -E2BIG;
                }
                acl->uids[acl->n_uids++] = pw->pw_uid;
        }
        return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
        struct daemon *d = ud;
        struct conf *c;
        struct templates *t;
        struct signing sg;

        sd_notify(0, "RELOADING=1");
        log_info("reloading %s", d->conf->path);
        /* a key file gone missing is an error, not made anew: every tag in
         * the mails already out would be refused without a word */
        if (load_config(d->conf->path, false, &c, &t, &sg) != 0) {
                log_err("reload failed: the configuration has errors; the old one stays in use");
                sd_notify(0, "READY=1");
                return 0;
        }
        const char *refused = c->keys.n == 0 ? "the key file ([daemon] key_file) is missing" : NULL;
        if (!refused && c->pow && c->altcha_keys_n == 0)
                refused = "the key file ([antibot] key_file) is missing";
        struct admin_acl acl;
        if (!refused && admin_acl_build(c, &acl) < 0)
                refused = "admin users or group unknown";
        if (refused) {
                log_err("reload failed: %s; the old configuration stays in use", refused);
                signing_free(&sg);
                conf_free(c);
                free(c);
                templates_free(t);
                free(t);
                sd_notify(0, "READY=1");
                return 0;
        }
        /* what the running process holds open stays as it is */
        if (strcmp(c->public_socket, d->conf->public_socket) ||
            strcmp(c->admin_socket, d->conf->admin_socket) ||
            strcmp(c->database, d->conf->database) || c->max_connections != d->conf->max_connections)
                log_warn("sockets, database and max_connections change only with a restart");
        if (strcmp(c->imap_url, d->conf->imap_url) || strcmp(c->imap_username, d->conf->imap_username) ||
            strcmp(c->imap_password_file, d->conf->imap_password_file) ||
            strcmp(c->imap_ca_file, d->conf->imap_ca_file) || c->imap_interval != d->conf->imap_interval ||
            c->imap_keep != d->conf->imap_keep)
                log_warn("the [bounce] imap_* settings change only with a restart");
        c->max_connections = d->conf->max_connections;
        server_set_admin_acl(d->server, &acl);
        log_set_level(c->log_level);
        sender_set_relay(d->sender, relay_from_conf(c, sg.keys, sg.n));
        d->hctx.dkim = sg.keys;
        d->hctx.n_dkim = sg.n;
        sched_configure(d->sched, c, t);
        d->hctx.conf = c;
        d->hctx.tmpl = t;
        conf_free(d->conf);
        free(d->conf);
        templates_free(d->tmpl);
        free(d->tmpl);
        d->conf = c;
        d->tmpl = t;
        log_info("reloaded");
        sd_notify(0, "READY=1");
        return 0;
}

static void daemon_free(struct daemon *d)
{
        if (d->sender)
                sender_stop(d->sender);
        imap_free(d->intake.imap);
        d->intake.imap = NULL;
        server_free(d->server);
        sched_free(d->sched);
        sender_free(d->sender);
        sd_event_source_disable_unref(d->post);
        sd_event_source_disable_unref(d->tick);
        sd_event_source_disable_unref(d->notify);
        sd_event_source_disable_unref(d->urgent);
        sd_event_source_disable_unref(d->stop_timer);
        sd_event_source_disable_unref(d->more);
        sd_event_source_disable_unref(d->later);
        sd_event_source_disable_unref(d->collect);
        sd_event_source_disable_unref(d->imap);
        sd_event_unref(d->ev);
        if (d->notify_fd >= 0)
                close(d->notify_fd);
        if (d->urgent_fd >= 0)
                close(d->urgent_fd);
        if (d->imap_fd >= 0)
                close(d->imap_fd);
        store_close(d->store);
        if (d->lock_fd >= 0)
                close(d->lock_fd);
        templates_free(d->tmpl);
        free(d->tmpl);
        conf_free(d->conf);
        free(d->conf);
}

int daemon_run(const char *path)
{
        struct daemon d = { .notify_fd = -1, .urgent_fd = -1, .imap_fd = -1, .lock_fd = -1 };
        struct signing sg = { 0 };
        int r;

        if (load_config(path, true, &d.conf, &d.tmpl, &sg) != 0)
                return 1;
        log_set_level(d.conf->log_level);
        clock_init();
        for (size_t i = 0; i < sg.n; i++)
                log_info("DKIM: signing as %s for %s (%s)", dkim_key_selector(sg.keys[i]),
                         dkim_key_domain(sg.keys[i]), dkim_key_is_ed25519(sg.keys[i]) ? "ed25519" : "rsa");

        /* one daemon per database: a second one must not touch the first one's mails */
        if ((r = database_lock(d.conf->database, &d.lock_fd)) < 0)
                goto fail;
        raise_fd_limit();
        if ((r = store_open(d.conf->database, &d.store)) < 0) {
                /* store_open() logged why, in words for the admin */
                log_err("cannot start: the database cannot be used");
                r = 0;
                goto fail;
        }
        int64_t requeued = 0;
        if ((r = store_outbox_requeue(d.store, &requeued)) < 0)
                goto fail;
        if (requeued)
                log_info("%lld mails were in flight at the last stop; they are sent again",
                         (long long)requeued);

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                log_err("libcurl could not be initialised");
                r = -EIO;
                goto fail;
        }
        d.notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        d.urgent_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        d.imap_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (d.notify_fd < 0 || d.urgent_fd < 0 || d.imap_fd < 0) {
                r = -errno;
                goto fail;
        }
        signal(SIGPIPE, SIG_IGN);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        /* block before the sender threads start, so they inherit the mask */
        pthread_sigmask(SIG_BLOCK, &mask, NULL);

        r = sender_new(d.conf->max_connections, relay_from_conf(d.conf, sg.keys, sg.n), d.notify_fd,
                       d.urgent_fd, &d.sender);
        struct signing signing_in_use = sg;     /* previews sign as the senders do */
        sg = (struct signing){ 0 };     /* the relay owns the keys now */
        if (r < 0)
                goto fail;
        d.sched = sched_new(d.store, d.sender);
        sched_configure(d.sched, d.conf, d.tmpl);
        d.hctx = (struct handler_ctx){ .conf = d.conf, .store = d.store, .tmpl = d.tmpl,
                                       .sched = d.sched, .hk = &d.hk,
                                       .dkim = signing_in_use.keys, .n_dkim = signing_in_use.n };

        if ((r = sd_event_default(&d.ev)) < 0 ||
            (r = sd_event_add_signal(d.ev, NULL, SIGTERM, on_term, &d)) < 0 ||
            (r = sd_event_add_signal(d.ev, NULL, SIGINT, on_term, &d)) < 0 ||
            (r = sd_event_add_signal(d.ev, NULL, SIGHUP, on_hup, &d)) < 0 ||
            (r = sd_event_add_post(d.ev, &d.post, on_post, &d)) < 0 ||
            (r = sd_event_add_defer(d.ev, &d.more, on_more, &d)) < 0 ||
            (r = sd_event_add_time_relative(d.ev, &d.later, CLOCK_MONOTONIC, HOUSEKEEPING_WAIT_USEC,
                                            1, on_later, &d)) < 0 ||
            (r = sd_event_add_time_relative(d.ev, &d.collect, CLOCK_MONOTONIC, COLLECT_DELAY_USEC, 1,
                                            on_collect, &d)) < 0 ||
            (r = sd_event_add_io(d.ev, &d.notify, d.notify_fd, EPOLLIN, on_notify, &d)) < 0 ||
            (r = sd_event_add_io(d.ev, &d.urgent, d.urgent_fd, EPOLLIN, on_urgent, &d)) < 0 ||
            (r = sd_event_add_io(d.ev, &d.imap, d.imap_fd, EPOLLIN, on_imap, &d)) < 0 ||
            (r = sd_event_add_time_relative(d.ev, &d.tick, CLOCK_MONOTONIC, 1000000u, 0, on_tick,
                                            &d)) < 0 ||
            (r = server_new(d.ev, &d.hctx, &d.server)) < 0)
                goto fail;
        /* the post source must stay on for every iteration */
        sd_event_source_set_enabled(d.post, SD_EVENT_ON);
        sd_event_source_set_enabled(d.more, SD_EVENT_OFF);
        sd_event_source_set_enabled(d.later, SD_EVENT_OFF);
        sd_event_source_set_enabled(d.collect, SD_EVENT_OFF);

        gid_t gid = group_id(d.conf->public_group);
        if (gid == (gid_t)-2) {
                r = -ENOENT;
                goto fail;
        }
        if ((r = server_listen(d.server, d.conf->public_socket, ROLE_PUBLIC, 0660, gid)) < 0) {
                log_err("public socket %s: %s", d.conf->public_socket, strerror(-r));
                goto fail;
        }
        struct admin_acl acl;
        if ((r = admin_acl_build(d.conf, &acl)) < 0)
                goto fail;
        server_set_admin_acl(d.server, &acl);
        if ((r = server_listen(d.server, d.conf->admin_socket, ROLE_ADMIN, 0660, acl.gid)) < 0) {
                log_err("admin socket %s: %s", d.conf->admin_socket, strerror(-r));
                goto fail;
        }
        if (*d.conf->imap_url) {
                if ((r = imap_new(d.conf, d.imap_fd, &d.intake.imap)) < 0)
                        goto fail;
                d.hctx.imap = d.intake.imap;
                log_info("bounces: reading the mailbox %s every %llus", d.conf->imap_url,
                         (unsigned long long)d.conf->imap_interval);
        }
        /* mails left over from the last run go out right away */
        sched_kick(d.sched);
        end_of_iteration(&d);

        log_info("ready: public %s, admin %s, database %s", d.conf->public_socket,
                 d.conf->admin_socket, d.conf->database);
        sd_notifyf(0, "READY=1\nSTATUS=serving on %s", d.conf->public_socket);
        r = sd_event_loop(d.ev);
        if (r < 0)
                log_err("event loop: %s", strerror(-r));
        /* record what finished while we stopped */
        sender_stop(d.sender);
        if (sched_work(d.sched, clock_now(), true) == 0 &&
            store_batch_commit(d.store) == 0)
                store_sync(d.store);
        else
                store_batch_rollback(d.store);
        daemon_free(&d);
        curl_global_cleanup();
        log_info("stopped");
        return r < 0 ? 1 : 0;
fail:
        if (r < 0)
                log_err("cannot start: %s", strerror(-r));
        signing_free(&sg);
        daemon_free(&d);
        return 1;
}
