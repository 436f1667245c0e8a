/*
 * latency.c - confirmation latency at idle.  One program is both ends, so
 * that both timestamps come from one clock: a minimal SMTP server on
 * 127.0.0.1:PORT (the relay the daemon is configured to use) and one
 * website client that signs up N addresses one after another.  For each
 * address it takes the time from writing `subscribe` to the moment the
 * relay has received the end of that address's mail (the final "." of
 * DATA, answered with 250 right after), and waits for that before the next
 * sign-up, after a pause (-g) that lets the daemon fall idle again.
 *
 * The SMTP side accepts everything (EHLO/HELO, MAIL, RCPT, DATA, RSET,
 * NOOP, QUIT), one thread per connection, any number of transactions per
 * connection.  Recipients PREFIX<i>@DOMAIN are matched to sign-up i.
 *
 * Prints one JSON object on stdout: percentiles of the answer latency and
 * of the mail latency, mails that did not arrive within -w seconds, and the
 * raw mail latencies in milliseconds.
 *
 * Usage: latency -P PORT -S SOCKET [-n 200] [-g PAUSE_MS] [-w WAIT_S]
 *                [-p PREFIX] [-d DOMAIN]
 * PORT is bound before anything else; the client starts once SOCKET accepts
 * connections (the daemon may be started after this program).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *prefix = "lat";
static const char *domain = "example.org";
static int n_signups = 200;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static double *accepted_at;             /* by sign-up index; 0 = not yet */
static long long mails_total, mails_unmatched, smtp_sessions;

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the relay ---- */

struct line_reader {
        int fd;
        char buf[16384];
        size_t start, end;
};

/* One line without CRLF into out (truncated to cap-1); false on EOF. */
static bool get_line(struct line_reader *r, char *out, size_t cap)
{
        size_t len = 0;
        for (;;) {
                while (r->start < r->end) {
                        char ch = r->buf[r->start++];
                        if (ch == '\n') {
                                if (len && out[len - 1] == '\r')
                                        len--;
                                out[len] = '\0';
                                return true;
                        }
                        if (len < cap - 1)
                                out[len++] = ch;
                }
                ssize_t n = read(r->fd, r->buf, sizeof(r->buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return false;
                r->start = 0;
                r->end = (size_t)n;
        }
}

static bool reply(int fd, const char *s)
{
        size_t n = strlen(s);
        while (n) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return false;
                }
                s += w;
                n -= (size_t)w;
        }
        return true;
}

/* index of PREFIX<i>@DOMAIN in "<...>" of a RCPT TO line, or -1 */
static long rcpt_index(const char *line)
{
        const char *p = strchr(line, '<');
        p = p ? p + 1 : strchr(line, ':') ? strchr(line, ':') + 1 : line;
        while (*p == ' ')
                p++;
        size_t pl = strlen(prefix);
        if (strncasecmp(p, prefix, pl) != 0 || !isdigit((unsigned char)p[pl]))
                return -1;
        char *end;
        long i = strtol(p + pl, &end, 10);
        if (*end != '@' || strncasecmp(end + 1, domain, strlen(domain)) != 0)
                return -1;
        return i >= 0 && i < n_signups ? i : -1;
}

static void *smtp_session(void *arg)
{
        struct line_reader r = { .fd = (int)(long)arg };
        char line[2048];
        long rcpt[64];
        int n_rcpt = 0;
        bool ok = reply(r.fd, "220 latency-sink ESMTP\r\n");
        while (ok && get_line(&r, line, sizeof(line))) {
                if (!strncasecmp(line, "EHLO", 4)) {
                        ok = reply(r.fd, "250-latency-sink\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n");
                } else if (!strncasecmp(line, "HELO", 4)) {
                        ok = reply(r.fd, "250 latency-sink\r\n");
                } else if (!strncasecmp(line, "MAIL", 4) || !strncasecmp(line, "RSET", 4)) {
                        n_rcpt = 0;
                        ok = reply(r.fd, "250 2.0.0 Ok\r\n");
                } else if (!strncasecmp(line, "RCPT", 4)) {
                        if (n_rcpt < 64)
                                rcpt[n_rcpt++] = rcpt_index(line);
                        ok = reply(r.fd, "250 2.1.5 Ok\r\n");
                } else if (!strncasecmp(line, "DATA", 4)) {
                        if (!(ok = reply(r.fd, "354 End data with <CR><LF>.<CR><LF>\r\n")))
                                break;
                        bool done = false;
                        while (get_line(&r, line, sizeof(line)))
                                if (strcmp(line, ".") == 0) {
                                        done = true;
                                        break;
                                }
                        if (!done)
                                break;
                        double t = now_s();
                        pthread_mutex_lock(&lock);
                        mails_total++;
                        for (int k = 0; k < n_rcpt; k++) {
                                if (rcpt[k] < 0)
                                        mails_unmatched++;
                                else if (accepted_at[rcpt[k]] == 0)
                                        accepted_at[rcpt[k]] = t;
                        }
                        pthread_cond_broadcast(&arrived);
                        pthread_mutex_unlock(&lock);
                        n_rcpt = 0;
                        ok = reply(r.fd, "250 2.0.0 Ok: queued\r\n");
                } else if (!strncasecmp(line, "NOOP", 4)) {
                        ok = reply(r.fd, "250 2.0.0 Ok\r\n");
                } else if (!strncasecmp(line, "QUIT", 4)) {
                        reply(r.fd, "221 2.0.0 Bye\r\n");
                        break;
                } else {
                        ok = reply(r.fd, "502 5.5.2 Command not recognized\r\n");
                }
        }
        close(r.fd);
        return NULL;
}

static void *smtp_listener(void *arg)
{
        int lfd = (int)(long)arg;
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        perror("latency: accept");
                        return NULL;
                }
                pthread_mutex_lock(&lock);
                smtp_sessions++;
                pthread_mutex_unlock(&lock);
                pthread_t t;
                if (pthread_create(&t, NULL, smtp_session, (void *)(long)fd) != 0)
                        close(fd);
                else
                        pthread_detach(t);
        }
}

/* ---- the website ---- */

static int connect_public(const char *path, double wait_s)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        double until = now_s() + wait_s;
        for (;;) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return fd;
                if (fd >= 0)
                        close(fd);
                if (now_s() > until)
                        return -1;
                usleep(20000);
        }
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
        if (!n)
                return 0;
        size_t rank = (size_t)(p * (double)n + 0.999999);
        if (rank < 1)
                rank = 1;
        return v[rank > n ? n - 1 : rank - 1];
}

static void usage(void)
{
        fprintf(stderr, "usage: latency -P PORT -S SOCKET [-n N] [-g PAUSE_MS] [-w WAIT_S] [-p PREFIX] [-d DOMAIN]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        int port = 0, pause_ms = 20;
        double wait_s = 10;
        const char *sock_path = NULL;
        int opt;
        while ((opt = getopt(argc, argv, "P:S:n:g:w:p:d:")) != -1) {
                switch (opt) {
                case 'P': port = atoi(optarg); break;
                case 'S': sock_path = optarg; break;
                case 'n': n_signups = atoi(optarg); break;
                case 'g': pause_ms = atoi(optarg); break;
                case 'w': wait_s = atof(optarg); break;
                case 'p': prefix = optarg; break;
                case 'd': domain = optarg; break;
                default: usage();
                }
        }
        if (!port || !sock_path || n_signups < 1)
                usage();
        accepted_at = calloc((size_t)n_signups, sizeof(*accepted_at));
        double *sent_at = calloc((size_t)n_signups, sizeof(*sent_at));
        double *answer_lat = calloc((size_t)n_signups, sizeof(*answer_lat));
        double *mail_lat = calloc((size_t)n_signups, sizeof(*mail_lat));
        double *mail_raw = calloc((size_t)n_signups, sizeof(*mail_raw));

        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 128) < 0) {
                perror("latency: bind");
                return 1;
        }
        pthread_t lt;
        pthread_create(&lt, NULL, smtp_listener, (void *)(long)lfd);
        fprintf(stderr, "latency: relay listening on 127.0.0.1:%d\n", port);

        int fd = connect_public(sock_path, 30);
        if (fd < 0) {
                fprintf(stderr, "latency: cannot connect to %s\n", sock_path);
                return 1;
        }
        struct line_reader rd = { .fd = fd };
        char req[256], line[8192];
        size_t n_ans = 0, n_mail = 0;
        long long missing = 0, not_pending = 0;
        for (int i = 0; i < n_signups; i++) {
                struct timespec gap = { pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L };
                nanosleep(&gap, NULL);
                snprintf(req, sizeof(req), "{\"op\":\"subscribe\",\"email\":\"%s%d@%s\"}\n", prefix, i,
                         domain);
                double t0 = now_s();
                sent_at[i] = t0;
                if (!reply(fd, req) || !get_line(&rd, line, sizeof(line))) {
                        fprintf(stderr, "latency: the daemon closed the connection\n");
                        return 1;
                }
                answer_lat[n_ans++] = now_s() - t0;
                if (!strstr(line, "\"pending\"")) {
                        not_pending++;
                        fprintf(stderr, "latency: sign-up %d answered %s\n", i, line);
                        continue;
                }
                pthread_mutex_lock(&lock);
                struct timespec deadline;
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_sec += (time_t)wait_s;
                while (accepted_at[i] == 0)
                        if (pthread_cond_timedwait(&arrived, &lock, &deadline) == ETIMEDOUT)
                                break;
                double acc = accepted_at[i];
                pthread_mutex_unlock(&lock);
                if (acc == 0) {
                        missing++;
                        mail_raw[i] = -1;
                        continue;
                }
                mail_raw[i] = acc - t0;
                mail_lat[n_mail++] = acc - t0;
        }
        close(fd);
        /* mails that came after their wait ran out still tell something */
        pthread_mutex_lock(&lock);
        long long late = 0;
        for (int i = 0; i < n_signups; i++)
                if (mail_raw[i] < 0 && accepted_at[i] != 0)
                        late++;
        long long total = mails_total, unmatched = mails_unmatched, sessions = smtp_sessions;
        pthread_mutex_unlock(&lock);

        qsort(answer_lat, n_ans, sizeof(double), cmp_double);
        qsort(mail_lat, n_mail, sizeof(double), cmp_double);
        double mean = 0;
        for (size_t k = 0; k < n_mail; k++)
                mean += mail_lat[k];
        mean = n_mail ? mean / (double)n_mail : 0;
        printf("{\"signups\":%d,\"pause_ms\":%d,\"not_pending\":%lld,\"missing\":%lld,\"late\":%lld,"
               "\"mails_received\":%lld,\"mails_unmatched\":%lld,\"smtp_sessions\":%lld,"
               "\"answer_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
               "\"mail_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"min\":%.3f,\"mean\":%.3f},"
               "\"mail_ms_in_order\":[",
               n_signups, pause_ms, not_pending, missing, late, total, unmatched, sessions,
               pct(answer_lat, n_ans, 0.5) * 1e3, pct(answer_lat, n_ans, 0.99) * 1e3,
               n_ans ? answer_lat[n_ans - 1] * 1e3 : 0.0,
               pct(mail_lat, n_mail, 0.5) * 1e3, pct(mail_lat, n_mail, 0.9) * 1e3,
               pct(mail_lat, n_mail, 0.99) * 1e3, n_mail ? mail_lat[n_mail - 1] * 1e3 : 0.0,
               n_mail ? mail_lat[0] * 1e3 : 0.0, mean * 1e3);
        for (int i = 0; i < n_signups; i++)
                printf("%s%.3f", i ? "," : "", mail_raw[i] < 0 ? -1.0 : mail_raw[i] * 1e3);
        printf("]}\n");
        return 0;
}
