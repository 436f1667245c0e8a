/*
 * server.c - the socket front.  Owns the listening Unix sockets and every
 * client connection: reading with a bounded line buffer, splitting lines,
 * handing each to the handlers, holding the answers until the batch
 * transaction they depend on has committed and the WAL is synced (group
 * commit: daemon.c), writing them in
 * request order, and closing idle or misbehaving clients.  A client that
 * sends too much gets an error and is closed; everyone else is served on.
 * Must never block: sockets are non-blocking and the event loop is sd-event.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "server.h"

struct held {
        struct reply reply;
        enum lang lang;
};

struct conn {
        struct server *srv;
        struct conn *prev, *next;       /* all connections */
        struct conn *held_next;         /* connections with held answers */
        bool on_held_list;
        int fd;
        enum role role;
        sd_event_source *io;
        struct buf in, out;
        struct held *held;
        size_t n_held, cap_held;
        bool read_closed;               /* peer shut down its side, or we stopped reading */
        bool close_after_flush;
        uint64_t last_active;           /* CLOCK_MONOTONIC usec */
        uint64_t partial_since;         /* we began waiting for the rest of a line, 0 when not */
        uint64_t out_since;             /* answers last moved (queued into empty out, or sent) */
        uint64_t id;
        uid_t uid;
};

struct listener {
        struct server *srv;
        int fd;
        enum role role;
        char *path;
        sd_event_source *io;
        sd_event_source *resume;        /* accepting paused: out of file descriptors */
};

struct server {
        sd_event *ev;
        struct handler_ctx *ctx;
        struct listener listeners[2];
        size_t n_listeners;
        struct conn *conns;
        size_t n_conns;
        struct conn *held;
        sd_event_source *sweep;
        bool shutting_down;
        bool trim_due;                  /* a large request was handled: give memory back */
        uint64_t next_id;
        struct admin_acl acl;
        uint64_t line_timeout, write_timeout, idle_timeout;     /* usec, bounds.h */
        struct uid_count {
                uid_t uid;
                unsigned n;
        } *uids;                        /* connections per peer uid */
        size_t n_uids;
};

static struct uid_count *uid_slot(struct server *s, uid_t uid, bool create)
{
        for (size_t i = 0; i < s->n_uids; i++)
                if (s->uids[i].uid == uid)
                        return &s->uids[i];
        if (!create)
                return NULL;
        s->uids = xrealloc(s->uids, (s->n_uids + 1) * sizeof(*s->uids));
        s->uids[s->n_uids] = (struct uid_count){ .uid = uid, .n = 0 };
        return &s->uids[s->n_uids++];
}

static void conn_update_events(struct conn *c);

static uint64_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static size_t line_max(enum role r)
{
        return r == ROLE_ADMIN ? ADMIN_LINE_MAX : PUBLIC_LINE_MAX;
}

static void conn_free(struct conn *c)
{
        struct server *s = c->srv;
        handler_conn_closed(s->ctx, c->id);
        struct uid_count *u = uid_slot(s, c->uid, false);
        if (u && u->n)
                u->n--;
        if (c->on_held_list) {
                struct conn **pp = &s->held;
                while (*pp && *pp != c)
                        pp = &(*pp)->held_next;
                if (*pp)
                        *pp = c->held_next;
        }
        for (size_t i = 0; i < c->n_held; i++)
                json_decref(c->held[i].reply.extra);
        free(c->held);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_conns--;
        sd_event_source_disable_unref(c->io);
        close(c->fd);
        buf_free(&c->in);
        buf_free(&c->out);
        free(c);
}

static void hold(struct conn *c, const struct reply *r, enum lang lang)
{
        if (c->n_held == c->cap_held) {
                c->cap_held = c->cap_held ? c->cap_held * 2 : 8;
                c->held = xrealloc(c->held, c->cap_held * sizeof(*c->held));
        }
        c->held[c->n_held].reply = *r;
        c->held[c->n_held].lang = lang;
        c->n_held++;
        if (!c->on_held_list) {
                c->on_held_list = true;
                c->held_next = c->srv->held;
                c->srv->held = c;
        }
}

/* Write what we can; false when the connection is gone. */
static bool conn_flush(struct conn *c)
{
        while (c->out.len) {
                ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        conn_free(c);
                        return false;
                }
                buf_consume(&c->out, (size_t)n);
                c->last_active = c->out_since = now_usec();
        }
        if (!c->out.len && c->n_held == 0 && (c->close_after_flush || c->read_closed ||
                                              c->srv->shutting_down)) {
                conn_free(c);
                return false;
        }
        conn_update_events(c);
        return true;
}

static void conn_update_events(struct conn *c)
{
        uint32_t ev = 0;
        if (!c->read_closed && !c->close_after_flush && c->out.len < OUTBUF_HIGH_WATER &&
            !c->srv->shutting_down)
                ev |= EPOLLIN;
        if (c->out.len)
                ev |= EPOLLOUT;
        /* The unfinished-line clock runs only while we read: a client whose
         * answers hold back our reading cannot finish its line, and the lines
         * it completed are owed an answer however long it pauses. */
        if (!(ev & EPOLLIN) || !c->in.len)
                c->partial_since = 0;
        else if (!c->partial_since)
                c->partial_since = now_usec();
        sd_event_source_set_io_events(c->io, ev);
        sd_event_source_set_enabled(c->io, ev ? SD_EVENT_ON : SD_EVENT_OFF);
}

/* An answer for a request that was never parsed (too long, too many). */
static void reject(struct conn *c, enum errcode e, const char *detail)
{
        struct reply r = { 0 };
        reply_error(&r, e, detail);
        hold(c, &r, LANG_DEFAULT);
        c->close_after_flush = true;
}

static void handle_line(struct conn *c, const char *line, size_t len)
{
        struct reply r;
        enum lang lang = LANG_DEFAULT;
        if (len && line[len - 1] == '\r')
                len--;
        if (len == 0)
                return;         /* blank lines are no requests */
        c->srv->ctx->now = clock_now();
        c->srv->ctx->conn = c->id;
        handler_run(c->srv->ctx, c->role, line, len, &r, &lang);
        hold(c, &r, lang);
}

/* Answer every complete line in c->in; true when any was there. */
static bool conn_process(struct conn *c)
{
        size_t start = 0;
        while (start < c->in.len && !c->close_after_flush) {
                char *nl = memchr(c->in.data + start, '\n', c->in.len - start);
                if (!nl)
                        break;
                size_t len = (size_t)(nl - (c->in.data + start));
                if (len + 1 > line_max(c->role))
                        reject(c, ERR_INVALID_REQUEST, "request line too long");
                else
                        handle_line(c, c->in.data + start, len);
                if (len >= REQUEST_TRIM_BYTES)
                        c->srv->trim_due = true;
                start += len + 1;
        }
        buf_consume(&c->in, start);
        /* the room one large admin line needed is not kept for the next ones */
        buf_shrink(&c->in, REQUEST_TRIM_BYTES);
        if (!c->close_after_flush && c->in.len >= line_max(c->role))
                reject(c, ERR_INVALID_REQUEST, "request line too long");
        if (c->read_closed && c->in.len && !c->close_after_flush) {
                /* the peer closed after a last line without newline: answer it too */
                handle_line(c, c->in.data, c->in.len);
                buf_reset(&c->in);
        }
        return start > 0;
}

static int on_conn_io(sd_event_source *es, int fd, uint32_t revents, void *ud)
{
        struct conn *c = ud;
        c->last_active = now_usec();
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char chunk[65536];
                size_t room = line_max(c->role) + 1 - c->in.len;
                size_t want = room < sizeof(chunk) ? room : sizeof(chunk);
                ssize_t n = read(fd, chunk, want);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        conn_free(c);
                        return 0;
                }
                if (n == 0) {
                        c->read_closed = true;
                } else if (n > 0) {
                        buf_append(&c->in, chunk, (size_t)n);
                }
                /* what is left after a completed line began in this read */
                if (conn_process(c))
                        c->partial_since = 0;
                if (c->read_closed && c->n_held == 0 && c->out.len == 0) {
                        conn_free(c);
                        return 0;
                }
                /* answers wait for the commit; reading stops until then if we reject */
                conn_update_events(c);
        }
        if (revents & EPOLLOUT)
                conn_flush(c);
        return 0;
}

static void conn_new(struct listener *l, int fd, uid_t uid)
{
        struct server *s = l->srv;
        struct conn *c = xcalloc(1, sizeof(*c));
        c->srv = s;
        c->fd = fd;
        c->role = l->role;
        buf_init(&c->in, line_max(l->role) + 1);
        buf_init(&c->out, 0);
        c->last_active = now_usec();
        c->id = ++s->next_id;
        c->uid = uid;
        uid_slot(s, uid, true)->n++;
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        if (sd_event_add_io(s->ev, &c->io, fd, EPOLLIN, on_conn_io, c) < 0) {
                log_err("cannot watch a connection");
                conn_free(c);
        }
}

/* Whether the peer process holds group `gid`: its groups as the kernel
 * took them at connect, the ones the socket's file mode was checked
 * against.  No user database lookup: NSS may block (LDAP), and this runs
 * on the event loop for every admin connect. */
static bool peer_in_group(int fd, const struct ucred *cred, gid_t gid)
{
        if (cred->gid == gid)
                return true;
        gid_t small[64], *groups = small;
        socklen_t len = sizeof(small);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                if (errno != ERANGE || len > NGROUPS_MAX * sizeof(gid_t))
                        return false;
                groups = xmalloc(len);
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                        len = 0;
        }
        bool found = false;
        for (size_t i = 0; i < len / sizeof(gid_t) && !found; i++)
                found = groups[i] == gid;
        if (groups != small)
                free(groups);
        return found;
}

/* Whether the peer of an admin connection may use it: root, our own user,
 * the configured users (resolved at start and reload), processes in the
 * admin group.  The socket's file mode is the first fence; this is the
 * second, for when the mode is wrong. */
static bool admin_peer_allowed(const struct server *s, int fd, const struct ucred *cred)
{
        if (cred->uid == 0 || cred->uid == geteuid())
                return true;
        for (size_t i = 0; i < s->acl.n_uids; i++)
                if (s->acl.uids[i] == cred->uid)
                        return true;
        return s->acl.gid != (gid_t)-1 && peer_in_group(fd, cred, s->acl.gid);
}

/* Answer one line and close: for clients we will not serve. */
static void refuse(int cfd, enum errcode e, const char *detail)
{
        struct reply r = { 0 };
        size_t len;
        reply_error(&r, e, detail);
        char *line = proto_format(&r, LANG_DEFAULT, &len);
        if (send(cfd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                log_debug("could not tell a refused client why");
        free(line);
        close(cfd);
}

static int on_resume_accept(sd_event_source *es, uint64_t usec, void *ud)
{
        struct listener *l = ud;
        sd_event_source_set_enabled(l->io, SD_EVENT_ON);
        return 0;
}

/* Out of file descriptors: the waiting connection would wake us at once
 * again and again.  Stop listening for a moment instead. */
static void pause_accepting(struct listener *l)
{
        log_warn("accept on %s: %s; not accepting for a second", l->path, strerror(errno));
        sd_event_source_set_enabled(l->io, SD_EVENT_OFF);
        if (!l->resume) {
                if (sd_event_add_time_relative(l->srv->ev, &l->resume, CLOCK_MONOTONIC, 1000000u, 0,
                                               on_resume_accept, l) < 0)
                        sd_event_source_set_enabled(l->io, SD_EVENT_ON);
        } else {
                sd_event_source_set_time_relative(l->resume, 1000000u);
                sd_event_source_set_enabled(l->resume, SD_EVENT_ONESHOT);
        }
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *ud)
{
        struct listener *l = ud;
        for (int i = 0; i < 64; i++) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                                pause_accepting(l);
                        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warn("accept on %s: %s", l->path, strerror(errno));
                        break;
                }
                if (l->srv->n_conns >= CONN_MAX) {
                        /* one line of explanation, then closed; the others go on */
                        refuse(cfd, ERR_UNAVAILABLE, "too many connections");
                        log_warn("connection refused: %d connections open", CONN_MAX);
                        continue;
                }
                struct ucred cred = { .uid = (uid_t)-1 };
                socklen_t clen = sizeof(cred);
                if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
                        close(cfd);
                        continue;
                }
                if (l->role == ROLE_ADMIN && !admin_peer_allowed(l->srv, cfd, &cred)) {
                        refuse(cfd, ERR_FORBIDDEN, "not an administrator");
                        log_warn("admin connection of uid %ld refused", (long)cred.uid);
                        continue;
                }
                struct uid_count *u = uid_slot(l->srv, cred.uid, false);
                if (u && u->n >= CONN_PER_UID_MAX) {
                        refuse(cfd, ERR_UNAVAILABLE, "too many connections from this user");
                        log_warn("connection of uid %ld refused: %d open", (long)cred.uid, CONN_PER_UID_MAX);
                        continue;
                }
                conn_new(l, cfd, cred.uid);
        }
        return 0;
}

static int on_sweep(sd_event_source *es, uint64_t usec, void *ud)
{
        struct server *s = ud;
        uint64_t now = now_usec();
        for (struct conn *c = s->conns, *n; c; c = n) {
                n = c->next;
                if (c->n_held)
                        continue;
                if (c->out.len && now - c->out_since > s->write_timeout) {
                        /* it reads nothing: its slot goes to someone who does */
                        log_info("connection of uid %ld closed: answers not taken for %llu s",
                                 (long)c->uid, (unsigned long long)(s->write_timeout / 1000000u));
                        conn_free(c);
                        continue;
                }
                if (c->close_after_flush)
                        continue;
                if (c->partial_since && now - c->partial_since > s->line_timeout) {
                        /* a line begun and never finished: say so, then close */
                        buf_reset(&c->in);
                        c->partial_since = 0;
                        reject(c, ERR_INVALID_REQUEST, "request line not completed in time");
                } else if (!c->out.len && now - c->last_active > s->idle_timeout) {
                        conn_free(c);
                }
        }
        sd_event_source_set_time_relative(es, 1000000u);
        sd_event_source_set_enabled(es, SD_EVENT_ON);
        return 0;
}

/* The tests' way to see the connection timeouts act without waiting
 * minutes: NEWSLETTERD_TEST_TIMEOUT_DIVISOR=N divides all three by N
 * (2..1000).  It can only shorten them; anything else is ignored. */
static uint64_t timeout_divisor(void)
{
        const char *v = getenv("NEWSLETTERD_TEST_TIMEOUT_DIVISOR");
        if (!v || !*v)
                return 1;
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || n < 2 || n > 1000) {
                log_warn("NEWSLETTERD_TEST_TIMEOUT_DIVISOR=%s ignored: not a number from 2 to 1000", v);
                return 1;
        }
        log_warn("connection timeouts divided by %lu (NEWSLETTERD_TEST_TIMEOUT_DIVISOR)", n);
        return n;
}

int server_new(sd_event *ev, struct handler_ctx *ctx, struct server **out)
{
        struct server *s = xcalloc(1, sizeof(*s));
        s->ev = ev;
        s->ctx = ctx;
        uint64_t div = timeout_divisor();
        s->line_timeout = CONN_READ_TIMEOUT_USEC / div;
        s->write_timeout = CONN_WRITE_TIMEOUT_USEC / div;
        s->idle_timeout = CONN_IDLE_TIMEOUT_USEC / div;
        int r = sd_event_add_time_relative(ev, &s->sweep, CLOCK_MONOTONIC, 1000000u, 0,
                                           on_sweep, s);
        if (r < 0) {
                free(s);
                return r;
        }
        *out = s;
        return 0;
}

int server_listen(struct server *s, const char *path, enum role role, mode_t mode, gid_t gid)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (s->n_listeners >= sizeof(s->listeners) / sizeof(s->listeners[0]))
                return -EMFILE;
        strcpy(sa.sun_path, path);

        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        close(fd);
                        log_err("%s exists and is not a socket", path);
                        return -EEXIST;
                }
                /* a socket someone still answers on belongs to a running daemon */
                int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        close(probe);
                        close(fd);
                        log_err("%s is in use by another process", path);
                        return -EADDRINUSE;
                }
                if (probe >= 0)
                        close(probe);
                unlink(path);
        }
        mode_t old = umask(0777 & ~mode);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0 || chmod(path, mode) < 0 ||
            (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) || listen(fd, 512) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        struct listener *l = &s->listeners[s->n_listeners];
        l->srv = s;
        l->fd = fd;
        l->role = role;
        l->path = xstrdup(path);
        r = sd_event_add_io(s->ev, &l->io, fd, EPOLLIN, on_accept, l);
        if (r < 0) {
                close(fd);
                free(l->path);
                return r;
        }
        s->n_listeners++;
        return 0;
}

static void release(struct server *s, bool failed, enum errcode e)
{
        struct conn *list = s->held;
        s->held = NULL;
        while (list) {
                struct conn *c = list;
                list = c->held_next;
                c->on_held_list = false;
                for (size_t i = 0; i < c->n_held; i++) {
                        struct held *h = &c->held[i];
                        struct reply r = h->reply;
                        if (failed && r.state != ST_ERROR) {
                                json_decref(r.extra);
                                memset(&r, 0, sizeof(r));
                                reply_error(&r, e, NULL);
                        }
                        size_t len;
                        char *line = proto_format(&r, h->lang, &len);
                        json_decref(r.extra);
                        if (!c->out.len)
                                c->out_since = now_usec();
                        buf_append(&c->out, line, len);
                        free(line);
                }
                c->n_held = 0;
                conn_flush(c);
        }
        if (s->trim_due) {
                /* what the large request's parse freed stays in the heap
                 * otherwise: 200 MB after 12 MB of small JSON values */
                s->trim_due = false;
                malloc_trim(0);
        }
}

void server_release_answers(struct server *s)
{
        release(s, false, ERR_NONE);
}

void server_fail_answers(struct server *s, enum errcode e)
{
        release(s, true, e);
}

void server_shutdown(struct server *s)
{
        s->shutting_down = true;
        for (size_t i = 0; i < s->n_listeners; i++) {
                struct listener *l = &s->listeners[i];
                l->io = sd_event_source_disable_unref(l->io);
                l->resume = sd_event_source_disable_unref(l->resume);
                close(l->fd);
                unlink(l->path);
                free(l->path);
        }
        s->n_listeners = 0;
        for (struct conn *c = s->conns, *n; c; c = n) {
                n = c->next;
                if (c->n_held == 0 && c->out.len == 0)
                        conn_free(c);
                else
                        conn_update_events(c);
        }
}

void server_set_admin_acl(struct server *s, const struct admin_acl *acl)
{
        s->acl = *acl;
}

bool server_busy(const struct server *s)
{
        return s->held != NULL;
}

size_t server_connections(const struct server *s)
{
        return s->n_conns;
}

void server_free(struct server *s)
{
        if (!s)
                return;
        if (s->n_listeners)
                server_shutdown(s);
        while (s->conns)
                conn_free(s->conns);
        sd_event_source_disable_unref(s->sweep);
        free(s->uids);
        free(s);
}
