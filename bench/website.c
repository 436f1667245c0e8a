/*
 * website.c - a website that signs visitors up at a steady pace while the
 * daemon works on something else: one connection to the daemon's public
 * Unix socket, one `subscribe` of a new address (PREFIX<i>@DOMAIN) every
 * INTERVAL milliseconds, one request at a time, each timed from the moment
 * its request is written to the moment its whole answer line is read.
 *
 * Each answer is appended to LOG at once, one line per request:
 *
 *     SENT_NS LATENCY_NS STATE
 *
 * SENT_NS on CLOCK_MONOTONIC (the clock of Python's time.monotonic_ns(), so
 * the driver can cut the run into its phases by its own timestamps), STATE
 * the answer's "state", or "io_error" when the connection broke (the next
 * request then opens a new one, as a website would).  The driver reads the
 * log while the run goes on, to know how many confirmation mails the
 * website's sign-ups have queued.
 *
 * The pace is a schedule: each request is due INTERVAL after the one
 * before was due.  An answer that comes later than that sends the next
 * request at once (one request at a time) and the schedule goes on from
 * there: the due times it ran past are not caught up in a burst, only
 * counted ("late_ticks").
 *
 * Runs until SIGTERM or SIGINT, then prints one JSON object on stdout: the
 * requests, answers, transport errors, late ticks, and the age of a request
 * still unanswered at the stop (its answer would have come later still).
 *
 * Owns nothing but its connection and LOG; keeps no latencies in memory.
 *
 * Usage: website -S SOCKET -l LOG [-i INTERVAL_MS] [-p PREFIX] [-d DOMAIN]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192

static const char *sock_path;
static const char *log_path;
static const char *prefix = "web";
static const char *domain = "example.org";
static int64_t interval_ns = 5000000;

static volatile sig_atomic_t stopping;

static int fd = -1;
static char buf[LINE_MAX_BYTES];
static size_t have;

static void on_stop(int sig)
{
        (void)sig;
        stopping = 1;
}

static int64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int open_socket(void)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(sock_path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "website: socket path too long\n");
                exit(2);
        }
        strcpy(sa.sun_path, sock_path);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -1;
        if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(s);
                return -1;
        }
        return s;
}

static void drop_connection(void)
{
        if (fd >= 0)
                close(fd);
        fd = -1;
        have = 0;
}

static bool write_all(const char *p, size_t n)
{
        while (n) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return false;
                }
                p += w;
                n -= (size_t)w;
        }
        return true;
}

/* Reads one answer line into line (NUL-terminated, without the newline):
 * 1, 0 when the connection broke, -1 when told to stop while waiting. */
static int read_line(char *line, size_t cap)
{
        for (;;) {
                char *nl = memchr(buf, '\n', have);
                if (nl) {
                        size_t len = (size_t)(nl - buf);
                        size_t keep = len < cap - 1 ? len : cap - 1;
                        memcpy(line, buf, keep);
                        line[keep] = '\0';
                        have -= len + 1;
                        memmove(buf, nl + 1, have);
                        return 1;
                }
                if (have == sizeof(buf))
                        have = 0;       /* an over-long line: drop it, keep reading */
                /* waits in poll, not read: a stop that comes just before the
                 * wait is seen within 50 ms, not never */
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r = poll(&p, 1, 50);
                if (stopping)
                        return -1;
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return 0;
                if (r == 0)
                        continue;
                ssize_t n = read(fd, buf + have, sizeof(buf) - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return 0;
                have += (size_t)n;
        }
}

static void state_of(const char *line, char *name, size_t cap)
{
        snprintf(name, cap, "no_state");
        const char *p = strstr(line, "\"state\"");
        if (p && (p = strchr(p + 7, ':')) && (p = strchr(p, '"'))) {
                const char *e = strchr(p + 1, '"');
                if (e && (size_t)(e - p - 1) < cap) {
                        memcpy(name, p + 1, (size_t)(e - p - 1));
                        name[e - p - 1] = '\0';
                }
        }
}

static void usage(void)
{
        fprintf(stderr, "usage: website -S SOCKET -l LOG [-i INTERVAL_MS] [-p PREFIX] [-d DOMAIN]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        int opt;
        while ((opt = getopt(argc, argv, "S:l:i:p:d:")) != -1) {
                switch (opt) {
                case 'S': sock_path = optarg; break;
                case 'l': log_path = optarg; break;
                case 'i': interval_ns = (int64_t)(atof(optarg) * 1e6); break;
                case 'p': prefix = optarg; break;
                case 'd': domain = optarg; break;
                default: usage();
                }
        }
        if (!sock_path || !log_path || interval_ns <= 0)
                usage();

        struct sigaction sa = { .sa_handler = on_stop };        /* no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        int logfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0) {
                fprintf(stderr, "website: %s: %s\n", log_path, strerror(errno));
                return 1;
        }
        if ((fd = open_socket()) < 0) {
                fprintf(stderr, "website: connect %s: %s\n", sock_path, strerror(errno));
                return 1;
        }

        long long requests = 0, answers = 0, io_errors = 0, late = 0, pending = 0;
        int64_t unanswered_ns = -1, start = now_ns(), due = start;
        char req[512], line[LINE_MAX_BYTES], state[32], rec[96];
        char first_other[256] = "";
        while (!stopping) {
                struct timespec ts = { .tv_sec = due / 1000000000, .tv_nsec = due % 1000000000 };
                if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                        continue;       /* the loop's test sees the stop */
                int len = snprintf(req, sizeof(req), "{\"op\":\"subscribe\",\"email\":\"%s%lld@%s\"}\n",
                                   prefix, requests, domain);
                requests++;
                int64_t t0 = now_ns();
                int r = 0;
                if (fd < 0)
                        fd = open_socket();
                if (fd >= 0 && write_all(req, (size_t)len))
                        r = read_line(line, sizeof(line));
                int64_t t1 = now_ns();
                if (r < 0) {
                        unanswered_ns = t1 - t0;
                        break;
                }
                if (r == 0) {
                        io_errors++;
                        snprintf(state, sizeof(state), "io_error");
                        drop_connection();
                } else {
                        answers++;
                        state_of(line, state, sizeof(state));
                        if (strcmp(state, "pending") == 0)
                                pending++;
                        else if (!first_other[0])
                                snprintf(first_other, sizeof(first_other), "%.200s", line);
                }
                int n = snprintf(rec, sizeof(rec), "%lld %lld %s\n", (long long)t0, (long long)(t1 - t0),
                                 state);
                if (write(logfd, rec, (size_t)n) != n) {
                        fprintf(stderr, "website: %s: %s\n", log_path, strerror(errno));
                        return 1;
                }
                due += interval_ns;
                int64_t now = now_ns();
                if (due < now) {
                        late += (now - due) / interval_ns + 1;
                        due = now;
                }
        }
        drop_connection();
        close(logfd);

        printf("{\"interval_ms\":%.3f,\"start_monotonic_ns\":%lld,\"seconds\":%.3f,\"requests\":%lld,"
               "\"answers\":%lld,\"pending\":%lld,\"io_errors\":%lld,\"late_ticks\":%lld,"
               "\"unanswered_at_stop_ms\":",
               (double)interval_ns / 1e6, (long long)start, (double)(now_ns() - start) / 1e9, requests,
               answers, pending, io_errors, late);
        if (unanswered_ns >= 0)
                printf("%.3f", (double)unanswered_ns / 1e6);
        else
                printf("null");
        printf(",\"first_other_answer\":\"");
        for (const char *p = first_other; *p; p++) {
                unsigned char ch = (unsigned char)*p;
                if (ch == '"' || ch == '\\')
                        printf("\\%c", ch);
                else if (ch < 0x20)
                        printf("\\u%04x", ch);
                else
                        putchar(ch);
        }
        printf("\"}\n");
        return 0;
}
