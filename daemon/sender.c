/*
 * sender.c - the threads that talk SMTP.  Each of max_connections threads
 * owns one libcurl easy handle (so its connection is reused between mails)
 * and runs one blocking transfer at a time, one recipient per transfer, so
 * a refused recipient fails only its own mail.  They never run on the thread
 * that serves the sockets: a hung relay cannot stall the website.  Jobs come
 * in through a two-class queue (confirmations before newsletters) and go
 * back, with their outcome, through a list the main thread collects when the
 * eventfd says so.  Knows mails and relays, nothing of the protocol or the
 * database.  Every wait on the relay is bounded by [smtp] timeout, and a
 * connection the relay may have closed while it idled is not trusted with
 * a mail (idle_timeout, and one retry on a new connection).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/resource.h>

#include <curl/curl.h>

#include "buf.h"
#include "clock.h"
#include "csprng.h"
#include "dkim.h"
#include "log.h"
#include "draft.h"
#include "sender.h"

/* Room for two mails at risk per connection: while the outcome of its last
 * mail waits for the next commit, a sender can already send the next one
 * instead of waiting for the main thread's commit between two mails. */
#define AT_RISK_PER_CONNECTION 2

struct relay_ref {
        struct relay *relay;
        unsigned refs;
};

struct sender {
        pthread_mutex_t lock;
        pthread_cond_t cond;            /* a job was queued */
        pthread_cond_t room;            /* mails at risk were recorded */
        struct mail_job *head[2], *tail[2];     /* 0: confirmations, 1: the rest */
        struct mail_job *done;
        struct relay_ref *relay;
        bool stopping;
        int notify_fd;
        int urgent_fd;                  /* a thread waits for a commit */
        /* A mail the relay may have taken whose outcome is not committed yet
         * would go out twice after a crash.  Such mails (counted from the
         * moment their data starts, before which no relay takes a mail)
         * stay within AT_RISK_PER_CONNECTION x max_connections: a transfer
         * runs up to its data and waits there for room, so a crash sends at
         * most that many twice, and a stalled commit cannot let the senders
         * run ahead of what the database knows.  Connecting, MAIL, RCPT and
         * DATA overlap with the commit it waits for. */
        unsigned at_risk;
        unsigned budget;
        uint64_t next_slot_ns;          /* [smtp] rate: when the next transfer may start */
        pthread_t *threads;
        unsigned n_threads;
};

struct transfer {
        struct sender *sender;
        const struct mail_job *job;
        size_t pos;
        bool gated;             /* its data was let through: counted in at_risk */
        bool mail_sent;         /* MAIL FROM went out: the relay took the session */
        bool closing;           /* QUIT or RSET went out: later replies say nothing of the mail */
        bool at_rcpt;           /* the last command was RCPT: a reply answers it */
        char last_reply[SMTP_REPLY_MAX];
};

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

/* The host's fully qualified name, as gethostname() and the resolver's
 * canonical name give it, or "" when that has no dot or is no plain host
 * name.  Looked up once, by the first relay_from_conf() that needs it (at
 * start unless helo_name is set): reloads do not wait for DNS again. */
static char host_fqdn[256];
static pthread_once_t host_fqdn_once = PTHREAD_ONCE_INIT;

static void host_fqdn_lookup(void)
{
        char name[256] = "";
        if (gethostname(name, sizeof(name) - 1) < 0)
                return;
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_flags = AI_CANONNAME }, *ai = NULL;
        const char *fqdn = name;
        if (getaddrinfo(name, NULL, &hints, &ai) == 0 && ai && ai->ai_canonname &&
            strchr(ai->ai_canonname, '.'))
                fqdn = ai->ai_canonname;
        /* it becomes the path of the relay's URL: letters, digits, '-', '.' */
        size_t n = strlen(fqdn);
        bool ok = n > 0 && n < sizeof(host_fqdn) && strchr(fqdn, '.') && fqdn[0] != '.' &&
                  fqdn[n - 1] != '.';
        for (size_t i = 0; ok && i < n; i++)
                ok = (fqdn[i] >= 'a' && fqdn[i] <= 'z') || (fqdn[i] >= 'A' && fqdn[i] <= 'Z') ||
                     (fqdn[i] >= '0' && fqdn[i] <= '9') || fqdn[i] == '-' || fqdn[i] == '.';
        if (ok)
                memcpy(host_fqdn, fqdn, n + 1);
        if (ai)
                freeaddrinfo(ai);
}

/* The name EHLO gives: helo_name, else the host's FQDN, else the domain of
 * from (relays such as Postfix with reject_non_fqdn_helo_hostname refuse
 * the bare host name libcurl would send). */
static const char *helo_name(const struct conf *c)
{
        if (*c->helo_name)
                return c->helo_name;
        pthread_once(&host_fqdn_once, host_fqdn_lookup);
        return *host_fqdn ? host_fqdn : c->from_domain;
}

/* libcurl says EHLO with the path of the URL; a URL that has a path of its
 * own keeps it. */
static char *url_with_helo(const char *url, const char *helo)
{
        const char *host = strstr(url, "://");
        const char *path = strchr(host ? host + 3 : url, '/');
        struct buf b;
        buf_init(&b, 0);
        if (!path)
                buf_printf(&b, "%s/%s", url, helo);
        else if (path[1] == '\0')
                buf_printf(&b, "%s%s", url, helo);
        else
                buf_puts(&b, url);
        return buf_steal(&b, NULL);
}

struct relay *relay_from_conf(const struct conf *c, struct dkim_key **dkim, size_t n_dkim)
{
        struct relay *r = xcalloc(1, sizeof(*r));
        const char *helo = helo_name(c);
        r->urls = xcalloc(c->urls.n, sizeof(char *));
        for (size_t i = 0; i < c->urls.n; i++)
                r->urls[i] = url_with_helo(c->urls.v[i], helo);
        r->n_urls = c->urls.n;
        log_debug("sender: EHLO %s", helo);
        r->starttls = c->starttls;
        r->username = *c->username ? xstrdup(c->username) : NULL;
        r->password = c->password ? xstrdup(c->password) : NULL;
        r->timeout_ms = (long)c->timeout * 1000;
        r->idle_timeout = (long)c->idle_timeout;
        r->rate = c->rate;
        r->dkim = dkim;
        r->n_dkim = n_dkim;
        return r;
}

static void relay_free(struct relay *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_urls; i++)
                free(r->urls[i]);
        free(r->urls);
        free(r->username);
        for (size_t i = 0; i < r->n_dkim; i++)
                dkim_key_free(r->dkim[i]);
        free(r->dkim);
        if (r->password) {
                explicit_bzero(r->password, strlen(r->password));
                free(r->password);
        }
        free(r);
}

static void relay_unref(struct relay_ref *ref)
{
        if (ref && --ref->refs == 0) {
                relay_free(ref->relay);
                free(ref);
        }
}

/* Before the data goes out (after its end, the relay may have the mail):
 * wait until the mails at risk leave room for one more. */
static bool gate(struct transfer *t)
{
        struct sender *s = t->sender;
        pthread_mutex_lock(&s->lock);
        if (s->at_risk >= s->budget && !s->stopping) {
                /* tell the main thread: a commit is awaited */
                uint64_t one = 1;
                if (write(s->urgent_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                        log_err("sender: eventfd: %s", strerror(errno));
                while (s->at_risk >= s->budget && !s->stopping)
                        pthread_cond_wait(&s->room, &s->lock);
        }
        bool go = !s->stopping;
        if (go) {
                s->at_risk++;
                t->gated = true;
        }
        pthread_mutex_unlock(&s->lock);
        return go;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
        struct transfer *t = ud;
        size_t room = size * nitems, left = t->job->len - t->pos;
        size_t n = left < room ? left : room;
        /* curl ends the data by itself once it has the size it was told, so
         * the gate comes before the first byte: MAIL, RCPT and DATA overlap
         * with the commit it waits for, and the message still goes out in
         * one write (stopping: the mail is sent after the next start) */
        if (!t->gated && !gate(t))
                return CURL_READFUNC_ABORT;
        memcpy(buf, t->job->data + t->pos, n);
        t->pos += n;
        return n;
}

/* Watch the SMTP dialogue: keep the relay's last reply line, note MAIL FROM. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
        struct transfer *t = ud;
        if (type == CURLINFO_HEADER_OUT && size >= 10 && strncasecmp(data, "MAIL FROM:", 10) == 0)
                t->mail_sent = true;
        /* which of the transaction's commands a reply answers (a QUIT or
         * RSET after a refusal does not change that) */
        if (type == CURLINFO_HEADER_OUT && size >= 4 &&
            (strncasecmp(data, "MAIL", 4) == 0 || strncasecmp(data, "RCPT", 4) == 0 ||
             strncasecmp(data, "DATA", 4) == 0))
                t->at_rcpt = strncasecmp(data, "RCPT", 4) == 0;
        if (type == CURLINFO_HEADER_OUT && size >= 4 &&
            (strncasecmp(data, "QUIT", 4) == 0 || strncasecmp(data, "RSET", 4) == 0))
                t->closing = true;
        if (type != CURLINFO_HEADER_IN || t->closing)
                return 0;
        size_t n = size < sizeof(t->last_reply) - 1 ? size : sizeof(t->last_reply) - 1;
        memcpy(t->last_reply, data, n);
        while (n && (t->last_reply[n - 1] == '\n' || t->last_reply[n - 1] == '\r'))
                n--;
        t->last_reply[n] = '\0';
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)t->last_reply[i] < 0x20 || (unsigned char)t->last_reply[i] > 0x7e)
                        t->last_reply[i] = '?';
        return 0;
}

/* One transaction with one relay URL; `fresh`: on a new connection. */
static CURLcode attempt(CURL *h, const struct relay *r, const char *url, const char *from,
                        struct curl_slist *rcpt, bool fresh, struct transfer *t, char *errbuf)
{
        errbuf[0] = '\0';
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, t);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->job->len);
        curl_easy_setopt(h, CURLOPT_USE_SSL,
                         r->starttls == STARTTLS_REQUIRED ? (long)CURLUSESSL_ALL :
                         r->starttls == STARTTLS_OPPORTUNISTIC ? (long)CURLUSESSL_TRY :
                         (long)CURLUSESSL_NONE);
        if (r->username) {
                curl_easy_setopt(h, CURLOPT_USERNAME, r->username);
                curl_easy_setopt(h, CURLOPT_PASSWORD, r->password ? r->password : "");
        }
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
        /* libcurl waits for each reply up to this, not up to TIMEOUT_MS: the
         * reply to the end of the data, and QUIT's when a connection is
         * closed (its default is 120 s) */
#if LIBCURL_VERSION_NUM >= 0x080600
        curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT_MS, r->timeout_ms);
#else
        curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, (r->timeout_ms + 999) / 1000);
#endif
        /* relays hang up on clients idle for a while (Postfix: smtpd_timeout,
         * 10 s under stress) and may say "421" first, which libcurl would read
         * as the answer to the next mail: an older connection is not reused */
        curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, r->idle_timeout);
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
        curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
        curl_easy_setopt(h, CURLOPT_DEBUGDATA, t);
        return curl_easy_perform(h);
}

/* Whether a failed transaction ended as one does on a connection the relay
 * closed while it idled: on a reused connection, before any of the data
 * went out (so the relay cannot have the mail), by a dropped connection or
 * a 421, not by a timeout (a hung relay would only hang again). */
static bool stale_connection(CURL *h, const struct transfer *t, CURLcode rc, long code)
{
        long connects = 0;
        if (t->gated || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_ABORTED_BY_CALLBACK)
                return false;
        if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) != CURLE_OK || connects != 0)
                return false;
        return code == 421 || code == 0;
}

/* Returns whether the data went out (the mail counts in at_risk). */
static bool transfer(struct sender *s, CURL *h, const struct relay *r, struct mail_job *j)
{
        bool gated = false;
        char errbuf[CURL_ERROR_SIZE];
        char from[300];
        struct curl_slist *rcpt = NULL;

        snprintf(from, sizeof(from), "<%s>", j->env_from);
        rcpt = curl_slist_append(NULL, j->rcpt);
        if (!rcpt)
                oom();
        j->outcome = OUTCOME_DEFERRED;
        j->code = 0;
        snprintf(j->reply, sizeof(j->reply), "no relay configured");

        for (size_t u = 0; u < r->n_urls; u++) {
                struct transfer t = { .sender = s, .job = j };
                CURLcode rc = attempt(h, r, r->urls[u], from, rcpt, false, &t, errbuf);
                long code = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                if (rc != CURLE_OK && stale_connection(h, &t, rc, code)) {
                        /* once, on a new connection, and not an attempt: the
                         * mail never got as far as its data */
                        log_info("mail %lld: the relay had closed the connection (%ld); "
                                 "again on a new one", (long long)j->id, code);
                        t = (struct transfer){ .sender = s, .job = j };
                        rc = attempt(h, r, r->urls[u], from, rcpt, true, &t, errbuf);
                        code = 0;
                        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
                }
                gated |= t.gated;
                j->code = code;
                if (rc == CURLE_OK) {
                        j->outcome = OUTCOME_SENT;
                        snprintf(j->reply, sizeof(j->reply), "%s",
                                 t.last_reply[0] ? t.last_reply : "250 accepted");
                        break;
                }
                if (t.last_reply[0] && code >= 400)
                        snprintf(j->reply, sizeof(j->reply), "%s", t.last_reply);
                else
                        /* after the data, silence or a hang-up leaves open
                         * whether the relay took the mail (RFC 1047) */
                        snprintf(j->reply, sizeof(j->reply), "%s%s: %.200s",
                                 t.gated ? "no answer to the data: " : "",
                                 curl_easy_strerror(rc), errbuf[0] ? errbuf : "no reply");
                /* 552 to RCPT: too many recipients, or a full mailbox
                 * reported early; RFC 5321 4.5.3.1.10 has the client treat
                 * it as temporary */
                if (code >= 500 && code < 600 && t.mail_sent && !(code == 552 && t.at_rcpt)) {
                        j->outcome = OUTCOME_FAILED;
                        break;
                }
                j->outcome = OUTCOME_DEFERRED;
                /* a relay that would not even take the session: try the next one */
                if (t.mail_sent)
                        break;
        }
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        curl_slist_free_all(rcpt);
        return gated;
}

static uint64_t mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* With a rate, transfers start at least 1/rate seconds apart, whichever
 * thread runs them: a slot is taken under the lock, waited for outside it.
 * Called with the lock held. */
static uint64_t take_slot(struct sender *s, unsigned rate)
{
        if (!rate)
                return 0;
        uint64_t now = mono_ns(), at = s->next_slot_ns > now ? s->next_slot_ns : now;
        s->next_slot_ns = at + 1000000000u / rate;
        return at;
}

static void wait_until(uint64_t at_ns)
{
        struct timespec ts = { .tv_sec = (time_t)(at_ns / 1000000000u),
                               .tv_nsec = (long)(at_ns % 1000000000u) };
        while (at_ns && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* A draft becomes the message here, off the main thread. */
static int render(struct mail_job *j)
{
        if (!j->draft)
                return 0;
        struct buf b;
        buf_init(&b, 0);
        int r = draft_render(j->draft, &b);
        draft_free(j->draft);
        j->draft = NULL;
        if (r != 0) {
                buf_free(&b);
                j->outcome = OUTCOME_FAILED;
                j->code = 0;
                snprintf(j->reply, sizeof(j->reply), "the message could not be built (%d)", r);
                return -1;
        }
        j->data = buf_steal(&b, &j->len);
        return 0;
}

/* Put the DKIM signatures in front of the message; here, on a sender
 * thread, because an RSA signature costs the main thread too much. */
static void sign(const struct relay *r, struct mail_job *j)
{
        struct buf b;
        buf_init(&b, 0);
        int rc = dkim_sign(r->dkim, r->n_dkim, (time_t)clock_now(), j->data, j->len, &b);
        if (rc != 0) {
                log_err("mail %lld could not be DKIM-signed (%d); sent unsigned", (long long)j->id, rc);
                buf_free(&b);
                return;
        }
        buf_append(&b, j->data, j->len);
        explicit_bzero(j->data, j->len);
        free(j->data);
        j->data = buf_steal(&b, &j->len);
}

static struct mail_job *pop(struct sender *s)
{
        for (int c = 0; c < 2; c++) {
                struct mail_job *j = s->head[c];
                if (j) {
                        s->head[c] = j->next;
                        if (!s->head[c])
                                s->tail[c] = NULL;
                        j->next = NULL;
                        return j;
                }
        }
        return NULL;
}

/* How far below the main thread the senders run (nice, Linux: per thread). */
#define SENDER_NICE 10

/* The main thread serves the website and commits the outcomes the senders
 * wait for before their next data: when the machine is busy it goes first,
 * so the senders wait less at the gate.  Where refused (a seccomp filter,
 * say) the thread keeps its priority. */
static void run_below_main(void)
{
        pid_t tid = gettid();
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, (id_t)tid);
        if (nice == -1 && errno)
                return;
        nice = nice + SENDER_NICE > 19 ? 19 : nice + SENDER_NICE;
        if (setpriority(PRIO_PROCESS, (id_t)tid, nice) < 0)
                log_debug("sender: cannot lower the thread's priority: %s", strerror(errno));
}

static void *sender_thread(void *ud)
{
        struct sender *s = ud;
        run_below_main();
        CURL *h = curl_easy_init();
        if (!h)
                fatal("curl_easy_init failed");

        pthread_mutex_lock(&s->lock);
        for (;;) {
                struct mail_job *j = NULL;
                while (!s->stopping && !(j = pop(s)))
                        pthread_cond_wait(&s->cond, &s->lock);
                if (!j)
                        break;
                struct relay_ref *ref = s->relay;
                ref->refs++;
                uint64_t slot = take_slot(s, ref->relay->rate);
                pthread_mutex_unlock(&s->lock);

                bool gated = false;
                if (render(j) == 0) {
                        if (ref->relay->n_dkim)
                                sign(ref->relay, j);
                        wait_until(slot);
                        gated = transfer(s, h, ref->relay, j);
                }
                j->data_sent = gated;
                if (j->outcome != OUTCOME_SENT) {
                        /* after a timeout or an error the relay may still answer
                         * an earlier command: no later mail may read that as its
                         * own reply, so the next transfer opens a new connection */
                        curl_easy_cleanup(h);
                        if (!(h = curl_easy_init()))
                                fatal("curl_easy_init failed");
                }

                pthread_mutex_lock(&s->lock);
                relay_unref(ref);
                /* a sent mail stays at risk until its outcome is committed
                 * (sender_committed); one the relay did not take is not */
                if (gated && j->outcome != OUTCOME_SENT) {
                        s->at_risk--;
                        pthread_cond_signal(&s->room);
                } else if (!gated && j->outcome == OUTCOME_SENT) {
                        s->at_risk++;           /* cannot happen: kept consistent anyway */
                }
                /* the main thread takes the whole list: one wake-up for it */
                bool first = !s->done;
                j->next = s->done;
                s->done = j;
                uint64_t one = 1;
                if (first && write(s->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                        log_err("sender: eventfd: %s", strerror(errno));
        }
        pthread_mutex_unlock(&s->lock);
        curl_easy_cleanup(h);
        csprng_forget();
        return NULL;
}

int sender_new(unsigned n, struct relay *relay, int notify_fd, int urgent_fd, struct sender **out)
{
        struct sender *s = xcalloc(1, sizeof(*s));
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        pthread_cond_init(&s->room, NULL);
        s->relay = xcalloc(1, sizeof(*s->relay));
        s->relay->relay = relay;
        s->relay->refs = 1;
        s->notify_fd = notify_fd;
        s->urgent_fd = urgent_fd;
        s->budget = AT_RISK_PER_CONNECTION * n;
        s->threads = xcalloc(n, sizeof(pthread_t));
        for (unsigned i = 0; i < n; i++) {
                int r = pthread_create(&s->threads[i], NULL, sender_thread, s);
                if (r) {
                        log_err("sender: pthread_create: %s", strerror(r));
                        sender_stop(s);
                        sender_free(s);
                        return -r;
                }
                s->n_threads++;
                /* so that top -H and perf tell them from the main thread */
                pthread_setname_np(s->threads[i], "sender");
        }
        *out = s;
        return 0;
}

void sender_push(struct sender *s, struct mail_job *job)
{
        int c = job->urgent ? 0 : 1;
        job->next = NULL;
        pthread_mutex_lock(&s->lock);
        if (s->tail[c])
                s->tail[c]->next = job;
        else
                s->head[c] = job;
        s->tail[c] = job;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

struct mail_job *sender_collect(struct sender *s)
{
        pthread_mutex_lock(&s->lock);
        struct mail_job *list = s->done;
        s->done = NULL;
        pthread_mutex_unlock(&s->lock);
        return list;
}

void sender_committed(struct sender *s, unsigned sent)
{
        pthread_mutex_lock(&s->lock);
        sent = sent < s->at_risk ? sent : s->at_risk;
        s->at_risk -= sent;
        /* one waiter per freed place: no herd */
        for (unsigned i = 0; i < sent; i++)
                pthread_cond_signal(&s->room);
        pthread_mutex_unlock(&s->lock);
}

void sender_set_relay(struct sender *s, struct relay *relay)
{
        struct relay_ref *ref = xcalloc(1, sizeof(*ref));
        ref->relay = relay;
        ref->refs = 1;
        pthread_mutex_lock(&s->lock);
        relay_unref(s->relay);
        s->relay = ref;
        pthread_mutex_unlock(&s->lock);
}

struct mail_job *sender_take_queued(struct sender *s)
{
        struct mail_job *list = NULL, *j;
        pthread_mutex_lock(&s->lock);
        while ((j = pop(s))) {
                j->next = list;
                list = j;
        }
        pthread_mutex_unlock(&s->lock);
        return list;
}

void sender_stop(struct sender *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_broadcast(&s->cond);
        pthread_cond_broadcast(&s->room);
        pthread_mutex_unlock(&s->lock);
        for (unsigned i = 0; i < s->n_threads; i++)
                pthread_join(s->threads[i], NULL);
        s->n_threads = 0;
}

void sender_free(struct sender *s)
{
        if (!s)
                return;
        sender_stop(s);
        struct mail_job *j;
        while ((j = pop(s)))
                mail_job_free(j);
        while ((j = s->done)) {
                s->done = j->next;
                mail_job_free(j);
        }
        relay_unref(s->relay);
        free(s->threads);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        pthread_cond_destroy(&s->room);
        free(s);
}
