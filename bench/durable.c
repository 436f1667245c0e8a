/*
 * durable.c - the limit of a durable service for the sign-up benchmark: a
 * JSON Lines server on a Unix socket that keeps every request before it
 * answers it, and does nothing else.  Group commit in its plainest form:
 * one thread and epoll, like bench/echo.c and the daemon's socket front;
 * each turn of the loop reads every complete request line the ready
 * connections have (a batch), appends the batch to FILE in one write(),
 * fdatasync()s FILE once, and only then queues one answer line per request.
 * Requests that arrive during the sync wait for the next batch.
 *
 * loadgen against this measures what the socket, the client and one
 * fdatasync per batch on this file system cost: no durable server on this
 * machine and socket can answer faster (it has to sync at least that much
 * before it answers).  FILE belongs on the file system of the daemon's
 * database.
 *
 * The answer is the daemon's German "pending" answer, as in echo.c.
 *
 * Usage: durable [-z MIB] SOCKET FILE
 *   runs until SIGTERM/SIGINT; then removes SOCKET and prints one JSON
 *   object on stdout: batches (= fdatasync calls), lines, bytes, the time
 *   spent in fdatasync, the largest batch.
 *   -z MIB  instead of appending, write MIB MiB of zeros to FILE and sync
 *           them first, then overwrite that space as a ring (as a WAL that
 *           is reused after a checkpoint does: the file's size and its
 *           block map do not change, so fdatasync has no metadata to
 *           write).  Without -z FILE is truncated and appended to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char answer[] =
        "{\"state\":\"pending\",\"message\":\"Wir haben Ihnen eine E-Mail mit einem "
        "Best\xc3\xa4tigungslink geschickt. Bitte \xc3\xb6""ffnen Sie den Link, um die "
        "Anmeldung abzuschlie\xc3\x9f""en.\"}\n";

#define IN_CAP 8192
#define MAX_EVENTS 256

struct conn {
        int fd;
        size_t in_len;
        char in[IN_CAP];
        char *out;
        size_t out_len, out_cap;
        size_t owed;                    /* requests of this batch, answered after the sync */
        bool in_batch;
        bool dead;
};

/* the batch: request lines of this turn of the loop */
static char *batch;
static size_t batch_len, batch_cap;
static struct conn **touched;
static size_t n_touched, touched_cap;

/* the file */
static int log_fd = -1;
static off_t ring_size;                 /* -z: bytes of the ring; 0: append */
static off_t ring_at;

/* statistics */
static unsigned long long n_batches, n_lines, n_bytes;
static size_t max_batch_lines;
static double sync_s;

static void die(const char *what)
{
        perror(what);
        exit(1);
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
        if (need <= *cap)
                return p;
        size_t c = *cap ? *cap : 64;
        while (c < need)
                c *= 2;
        p = realloc(p, c * size);
        if (!p)
                die("realloc");
        *cap = c;
        return p;
}

static void queue_answers(struct conn *c, size_t k)
{
        size_t n = sizeof(answer) - 1;
        c->out = grow(c->out, &c->out_cap, c->out_len + k * n, 1);
        for (size_t i = 0; i < k; i++) {
                memcpy(c->out + c->out_len, answer, n);
                c->out_len += n;
        }
}

/* false: the connection is gone */
static bool flush_out(int ep, struct conn *c)
{
        size_t off = 0;
        while (off < c->out_len) {
                ssize_t w = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return false;
                }
                off += (size_t)w;
        }
        memmove(c->out, c->out + off, c->out_len - off);
        c->out_len -= off;
        struct epoll_event ev = { .events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return true;
}

/* Moves the complete lines the connection has into the batch; false: the
 * connection is gone (its lines already read stay in the batch). */
static bool on_readable(struct conn *c)
{
        for (;;) {
                ssize_t r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN;
                }
                if (r == 0)
                        return false;
                size_t start = 0, end = c->in_len + (size_t)r;
                for (size_t i = c->in_len; i < end; i++)
                        if (c->in[i] == '\n') {
                                size_t len = i + 1 - start;
                                batch = grow(batch, &batch_cap, batch_len + len, 1);
                                memcpy(batch + batch_len, c->in + start, len);
                                batch_len += len;
                                c->owed++;
                                start = i + 1;
                        }
                if (c->owed && !c->in_batch) {
                        touched = grow(touched, &touched_cap, n_touched + 1, sizeof(*touched));
                        touched[n_touched++] = c;
                        c->in_batch = true;
                }
                c->in_len = end - start;
                memmove(c->in, c->in + start, c->in_len);
                if (c->in_len == IN_CAP)
                        return false;   /* a line longer than any request: drop the client */
                if ((size_t)r < IN_CAP)
                        return true;    /* drained for now (level-triggered epoll) */
        }
}

static void drop(struct conn *c)
{
        close(c->fd);
        free(c->out);
        free(c);
}

static void write_all_at(const char *p, size_t n, off_t at)
{
        while (n) {
                ssize_t w = ring_size ? pwrite(log_fd, p, n, at) : write(log_fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        die("write");
                }
                p += w;
                n -= (size_t)w;
                at += w;
        }
}

/* The batch into the file, synced: one write (two where it wraps around
 * the ring), one fdatasync. */
static void commit_batch(void)
{
        if (ring_size) {
                size_t done = 0;
                while (done < batch_len) {
                        size_t room = (size_t)(ring_size - ring_at);
                        size_t n = batch_len - done < room ? batch_len - done : room;
                        write_all_at(batch + done, n, ring_at);
                        done += n;
                        ring_at = (ring_at + (off_t)n) % ring_size;
                }
        } else {
                write_all_at(batch, batch_len, 0);
        }
        double t0 = now_s();
        if (fdatasync(log_fd) < 0)
                die("fdatasync");
        sync_s += now_s() - t0;
        n_batches++;
        n_bytes += batch_len;
        batch_len = 0;
}

static void prefill(size_t mib)
{
        static char zero[1 << 20];
        ring_size = (off_t)mib << 20;
        for (size_t i = 0; i < mib; i++)
                write_all_at(zero, sizeof(zero), (off_t)i << 20);
        if (fsync(log_fd) < 0)
                die("fsync");
}

int main(int argc, char **argv)
{
        int opt;
        size_t ring_mib = 0;
        while ((opt = getopt(argc, argv, "z:")) != -1) {
                if (opt == 'z' && atoi(optarg) > 0) {
                        ring_mib = (size_t)atoi(optarg);
                } else {
                        fprintf(stderr, "usage: durable [-z MIB] SOCKET FILE\n");
                        return 2;
                }
        }
        if (argc - optind != 2) {
                fprintf(stderr, "usage: durable [-z MIB] SOCKET FILE\n");
                return 2;
        }
        const char *path = argv[optind], *file = argv[optind + 1];

        log_fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (ring_mib ? 0 : O_APPEND), 0600);
        if (log_fd < 0)
                die(file);
        if (ring_mib)
                prefill(ring_mib);

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "durable: socket path too long\n");
                return 2;
        }
        strcpy(sa.sun_path, path);
        unlink(path);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0)
                die("socket");
        if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                die("bind");
        if (listen(lfd, 512) < 0)
                die("listen");

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                die("signalfd");

        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
                die("epoll_create1");
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &lfd };
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
        ev.data.ptr = &sfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

        struct epoll_event evs[MAX_EVENTS];
        bool stop = false;
        while (!stop) {
                int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("epoll_wait");
                }
                /* read: every complete line of every ready connection */
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.ptr == &sfd) {
                                stop = true;
                                continue;
                        }
                        if (evs[i].data.ptr == &lfd) {
                                int cfd;
                                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                                        struct conn *c = calloc(1, sizeof(*c));
                                        if (!c)
                                                die("calloc");
                                        c->fd = cfd;
                                        struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
                                        epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                                }
                                continue;
                        }
                        struct conn *c = evs[i].data.ptr;
                        bool alive = true;
                        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                alive = on_readable(c);
                        if (alive && !c->in_batch && c->out_len)
                                alive = flush_out(ep, c);   /* answers of an earlier batch */
                        if (!alive) {
                                if (c->in_batch)
                                        c->dead = true;     /* after the batch */
                                else
                                        drop(c);
                        }
                }
                if (!n_touched)
                        continue;
                /* keep, sync, then answer */
                size_t lines = 0;
                for (size_t i = 0; i < n_touched; i++)
                        lines += touched[i]->owed;
                n_lines += lines;
                if (lines > max_batch_lines)
                        max_batch_lines = lines;
                commit_batch();
                for (size_t i = 0; i < n_touched; i++) {
                        struct conn *c = touched[i];
                        c->in_batch = false;
                        if (!c->dead) {
                                queue_answers(c, c->owed);
                                c->dead = !flush_out(ep, c);
                        }
                        c->owed = 0;
                        if (c->dead)
                                drop(c);
                }
                n_touched = 0;
        }
        unlink(path);
        printf("{\"batches\":%llu,\"fdatasyncs\":%llu,\"lines\":%llu,\"bytes\":%llu,"
               "\"lines_per_batch\":%.2f,\"max_batch_lines\":%zu,\"sync_s\":%.3f,"
               "\"sync_ms_avg\":%.3f,\"mode\":\"%s\"}\n",
               n_batches, n_batches, n_lines, n_bytes,
               n_batches ? (double)n_lines / (double)n_batches : 0.0, max_batch_lines, sync_s,
               n_batches ? sync_s * 1e3 / (double)n_batches : 0.0, ring_size ? "ring" : "append");
        return 0;
}
