/*
 * echo.c - the transport limit for the sign-up benchmark: a JSON Lines
 * server on a Unix socket that answers every request line with one fixed
 * answer line, without parsing it.  One thread and epoll, like the daemon's
 * socket front, so loadgen against this measures what the socket, the
 * kernel and the client cost, and nothing else.
 *
 * The answer is the daemon's German "pending" answer, byte for byte the
 * same size, so both servers write the same amount.
 *
 * Usage: echo SOCKET      (runs until SIGTERM/SIGINT; removes SOCKET then)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char answer[] =
        "{\"state\":\"pending\",\"message\":\"Wir haben Ihnen eine E-Mail mit einem "
        "Best\xc3\xa4tigungslink geschickt. Bitte \xc3\xb6""ffnen Sie den Link, um die "
        "Anmeldung abzuschlie\xc3\x9f""en.\"}\n";

#define IN_CAP 8192

struct conn {
        int fd;
        size_t in_len;
        char in[IN_CAP];
        char *out;
        size_t out_len, out_cap;
};

static void die(const char *what)
{
        perror(what);
        exit(1);
}

static void queue_answer(struct conn *c)
{
        size_t n = sizeof(answer) - 1;
        if (c->out_len + n > c->out_cap) {
                c->out_cap = (c->out_len + n) * 2;
                c->out = realloc(c->out, c->out_cap);
                if (!c->out)
                        die("realloc");
        }
        memcpy(c->out + c->out_len, answer, n);
        c->out_len += n;
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
                                queue_answer(c);
                                start = i + 1;
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

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: echo SOCKET\n");
                return 2;
        }
        const char *path = argv[1];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "echo: socket path too long\n");
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

        struct epoll_event evs[64];
        for (;;) {
                int n = epoll_wait(ep, evs, 64, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("epoll_wait");
                }
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.ptr == &sfd) {
                                unlink(path);
                                return 0;
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
                        if (alive && c->out_len)
                                alive = flush_out(ep, c);
                        if (!alive)
                                drop(c);
                }
        }
}
