/*
 * client.c - talking to the daemon's admin socket from newsletterctl: a
 * blocking connection, a request per line, its answer read with a deadline
 * and a size cap.  Knows the framing only; what the ops mean is the
 * caller's business.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "client.h"
#include "log.h"

int client_connect(struct client *c, const char *path, int timeout_ms)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        memset(c, 0, sizeof(*c));
        c->fd = -1;
        c->timeout_ms = timeout_ms;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        c->fd = fd;
        buf_init(&c->in, ADMIN_LINE_MAX);
        return 0;
}

void client_close(struct client *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        buf_free(&c->in);
}

static long long mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(struct client *c, const char *p, size_t n)
{
        while (n) {
                ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

int client_call(struct client *c, json_t *req, json_t **answer)
{
        char *text = json_dumps(req, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        size_t n = strlen(text);
        int r = send_all(c, text, n);
        free(text);
        if (r == 0)
                r = send_all(c, "\n", 1);
        /* a daemon that refuses us answers and closes at once: its answer may
         * be waiting although our request could not be written */
        int send_error = r;
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                return r;

        long long deadline = mono_ms() + c->timeout_ms;
        for (;;) {
                char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
                if (nl) {
                        json_error_t err;
                        size_t len = (size_t)(nl - c->in.data);
                        *answer = json_loadb(c->in.data, len, 0, &err);
                        buf_consume(&c->in, len + 1);
                        return *answer && json_is_object(*answer) ? 0 : -EPROTO;
                }
                long long left = deadline - mono_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
                int p = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
                if (p < 0 && errno != EINTR)
                        return -errno;
                if (p <= 0)
                        continue;
                char chunk[65536];
                ssize_t got = read(c->fd, chunk, sizeof(chunk));
                if (got < 0 && errno != EINTR)
                        return send_error < 0 ? send_error : -errno;
                if (got == 0)
                        return send_error < 0 ? send_error : -ECONNRESET;
                if (got > 0 && !buf_append(&c->in, chunk, (size_t)got))
                        return -EPROTO;
        }
}
