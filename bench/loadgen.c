/*
 * loadgen.c - the sign-up load of the benchmark: CLIENTS threads, each one a
 * website worker with its own connection to a JSON Lines Unix socket, send
 * `subscribe` requests one at a time and wait for each answer before sending
 * the next.  The addresses PREFIX<i>@DOMAIN, i in [OFFSET, OFFSET+N), are
 * handed out from one shared counter, so every address is used exactly once
 * whatever the number of clients.
 *
 * The same program drives the daemon and bench/echo.c (the transport limit),
 * so the two rates differ only by what sits behind the socket.
 *
 * Prints one JSON object on stdout: wall time from the moment every client
 * is connected to the last answer (and that moment on CLOCK_MONOTONIC, for
 * the driver to line up with its own clock), the rate, the answers counted by their
 * "state", failures of the transport, and the answer latency percentiles.
 *
 * Usage: loadgen -S SOCKET -c CLIENTS -n N [-o OFFSET] [-p PREFIX]
 *                [-d DOMAIN] [-r]
 *   -r  open a new connection for every request (as the PHP example does)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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
#define STATES_MAX 16

static const char *sock_path;
static const char *prefix = "u";
static const char *domain = "example.org";
static long long offset;
static long long total;
static int n_clients = 1;
static bool reconnect_each;

static atomic_llong next_index;
static pthread_barrier_t start_line;
static double *latency;                 /* seconds, by request index */

struct client {
        pthread_t thread;
        int fd;
        char buf[LINE_MAX_BYTES];
        size_t have;
        long long done;
        long long io_errors;
        char state_name[STATES_MAX][32];
        long long state_count[STATES_MAX];
        int n_states;
        char first_error[256];
};

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_socket(void)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(sock_path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "loadgen: socket path too long\n");
                exit(2);
        }
        strcpy(sa.sun_path, sock_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static bool write_all(int fd, const char *p, size_t n)
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

/* Reads one answer line into line (NUL-terminated, without the newline). */
static bool read_line(struct client *c, char *line, size_t cap)
{
        for (;;) {
                char *nl = memchr(c->buf, '\n', c->have);
                if (nl) {
                        size_t len = (size_t)(nl - c->buf);
                        size_t keep = len < cap - 1 ? len : cap - 1;
                        memcpy(line, c->buf, keep);
                        line[keep] = '\0';
                        c->have -= len + 1;
                        memmove(c->buf, nl + 1, c->have);
                        return true;
                }
                if (c->have == sizeof(c->buf))
                        c->have = 0;    /* an over-long line: drop it, keep reading */
                ssize_t r = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return false;
                c->have += (size_t)r;
        }
}

static void count_state(struct client *c, const char *line)
{
        char name[32] = "(no state)";
        const char *p = strstr(line, "\"state\"");
        if (p && (p = strchr(p + 7, '"'))) {
                const char *e = strchr(p + 1, '"');
                if (e && (size_t)(e - p - 1) < sizeof(name)) {
                        memcpy(name, p + 1, (size_t)(e - p - 1));
                        name[e - p - 1] = '\0';
                }
        }
        if (strcmp(name, "pending") != 0 && !c->first_error[0])
                snprintf(c->first_error, sizeof(c->first_error), "%.200s", line);
        for (int i = 0; i < c->n_states; i++)
                if (strcmp(c->state_name[i], name) == 0) {
                        c->state_count[i]++;
                        return;
                }
        if (c->n_states < STATES_MAX) {
                snprintf(c->state_name[c->n_states], sizeof(c->state_name[0]), "%s", name);
                c->state_count[c->n_states++] = 1;
        }
}

static void drop_connection(struct client *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->have = 0;
}

static void *run_client(void *arg)
{
        struct client *c = arg;
        char req[512], line[LINE_MAX_BYTES];
        if (!reconnect_each) {
                c->fd = open_socket();
                if (c->fd < 0) {
                        fprintf(stderr, "loadgen: connect %s: %s\n", sock_path, strerror(errno));
                        exit(1);
                }
        }
        pthread_barrier_wait(&start_line);
        for (;;) {
                long long i = atomic_fetch_add(&next_index, 1);
                if (i >= total)
                        break;
                int len = snprintf(req, sizeof(req),
                                   "{\"op\":\"subscribe\",\"email\":\"%s%lld@%s\"}\n",
                                   prefix, offset + i, domain);
                double t0 = now_s();
                if (c->fd < 0 && (c->fd = open_socket()) < 0) {
                        c->io_errors++;
                        if (!c->first_error[0])
                                snprintf(c->first_error, sizeof(c->first_error), "connect: %s",
                                         strerror(errno));
                        latency[i] = -1;
                        continue;
                }
                if (!write_all(c->fd, req, (size_t)len) || !read_line(c, line, sizeof(line))) {
                        c->io_errors++;
                        if (!c->first_error[0])
                                snprintf(c->first_error, sizeof(c->first_error),
                                         "connection lost after %lld answers", c->done);
                        drop_connection(c);
                        latency[i] = -1;
                        continue;
                }
                latency[i] = now_s() - t0;
                count_state(c, line);
                c->done++;
                if (reconnect_each)
                        drop_connection(c);
        }
        drop_connection(c);
        return NULL;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p)
{
        if (!n)
                return 0;
        size_t rank = (size_t)(p * (double)n + 0.999999);
        if (rank < 1)
                rank = 1;
        return v[rank > n ? n - 1 : rank - 1];
}

static void json_string(const char *s)
{
        putchar('"');
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\')
                        printf("\\%c", ch);
                else if (ch < 0x20)
                        printf("\\u%04x", ch);
                else
                        putchar(ch);
        }
        putchar('"');
}

static void usage(void)
{
        fprintf(stderr, "usage: loadgen -S SOCKET -c CLIENTS -n N [-o OFFSET] [-p PREFIX] [-d DOMAIN] [-r]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        int opt;
        while ((opt = getopt(argc, argv, "S:c:n:o:p:d:r")) != -1) {
                switch (opt) {
                case 'S': sock_path = optarg; break;
                case 'c': n_clients = atoi(optarg); break;
                case 'n': total = atoll(optarg); break;
                case 'o': offset = atoll(optarg); break;
                case 'p': prefix = optarg; break;
                case 'd': domain = optarg; break;
                case 'r': reconnect_each = true; break;
                default: usage();
                }
        }
        if (!sock_path || n_clients < 1 || total < 1)
                usage();

        latency = calloc((size_t)total, sizeof(*latency));
        struct client *cl = calloc((size_t)n_clients, sizeof(*cl));
        if (!latency || !cl) {
                fprintf(stderr, "loadgen: out of memory\n");
                return 1;
        }
        /* every client plus main: the clock starts when all are connected */
        pthread_barrier_init(&start_line, NULL, (unsigned)n_clients + 1);
        for (int i = 0; i < n_clients; i++) {
                cl[i].fd = -1;
                if (pthread_create(&cl[i].thread, NULL, run_client, &cl[i]) != 0) {
                        fprintf(stderr, "loadgen: cannot start thread %d\n", i);
                        return 1;
                }
        }
        pthread_barrier_wait(&start_line);
        double t0 = now_s();
        for (int i = 0; i < n_clients; i++)
                pthread_join(cl[i].thread, NULL);
        double elapsed = now_s() - t0;

        /* merge */
        long long answered = 0, io_errors = 0;
        char names[STATES_MAX * 4][32];
        long long counts[STATES_MAX * 4];
        int n_names = 0;
        const char *first_error = "";
        for (int i = 0; i < n_clients; i++) {
                answered += cl[i].done;
                io_errors += cl[i].io_errors;
                if (!*first_error && cl[i].first_error[0])
                        first_error = cl[i].first_error;
                for (int k = 0; k < cl[i].n_states; k++) {
                        int j;
                        for (j = 0; j < n_names; j++)
                                if (strcmp(names[j], cl[i].state_name[k]) == 0)
                                        break;
                        if (j == n_names) {
                                if (n_names == STATES_MAX * 4)
                                        continue;
                                snprintf(names[j], sizeof(names[j]), "%s", cl[i].state_name[k]);
                                counts[j] = 0;
                                n_names++;
                        }
                        counts[j] += cl[i].state_count[k];
                }
        }
        size_t n_lat = 0;
        for (long long i = 0; i < total; i++)
                if (latency[i] >= 0)
                        latency[n_lat++] = latency[i];
        qsort(latency, n_lat, sizeof(*latency), cmp_double);

        printf("{\"clients\":%d,\"requests\":%lld,\"answered\":%lld,\"io_errors\":%lld,"
               "\"start_monotonic\":%.6f,\"seconds\":%.6f,\"rate\":%.1f,\"reconnect_each\":%s,"
               "\"states\":{",
               n_clients, total, answered, io_errors, t0, elapsed,
               elapsed > 0 ? (double)answered / elapsed : 0.0, reconnect_each ? "true" : "false");
        for (int j = 0; j < n_names; j++) {
                if (j)
                        putchar(',');
                json_string(names[j]);
                printf(":%lld", counts[j]);
        }
        printf("},\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},\"first_error\":",
               pct(latency, n_lat, 0.50) * 1e3, pct(latency, n_lat, 0.99) * 1e3,
               n_lat ? latency[n_lat - 1] * 1e3 : 0.0);
        json_string(first_error);
        printf("}\n");
        free(latency);
        free(cl);
        return io_errors ? 1 : 0;
}
