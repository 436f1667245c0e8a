/*
 * imap.c - the poller of the bounce mailbox ([bounce] imap_url).  One
 * thread, never the one that serves the sockets: every imap_interval it
 * logs in with libcurl (TLS always: imaps://, or STARTTLS required for
 * imap://), asks for the unseen messages (UID SEARCH UNSEEN), fetches them
 * one at a time (at most BOUNCE_MSG_MAX of each, every wait bounded),
 * gives each back its unseen state at once (a FETCH of BODY[] sets \Seen,
 * and libcurl has no BODY.PEEK), hands it to the main thread and waits for
 * the verdict, which comes only after the outcome is committed.  Then it
 * deletes the message (flags it \Seen with imap_keep), or leaves it unseen
 * and does not fetch it again while it runs (the latest IMAP_LEFT_MAX of
 * them remembered).  A poll fetches at most IMAP_FETCH_PER_POLL messages and
 * the next one goes on after the last it fetched, round the mailbox, so that
 * old messages left unseen never keep a newer report from its turn (not
 * even after a restart, when none is remembered).  A failed poll (server away,
 * login refused) is logged and tried again after a growing pause, never
 * fatal.  Owns its curl handle, a copy of the settings and the password;
 * knows nothing of bounces or the database, and never logs the password.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "bounce.h"
#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "imap.h"
#include "log.h"

/* bounds: every wait on the server, the messages fetched per poll, the UIDs
 * read from one search, the answers other than a message, the UIDs
 * remembered as left unseen */
#define IMAP_TIMEOUT_MS         (120 * 1000L)
#define IMAP_FETCH_PER_POLL     1000
#define IMAP_SEARCH_MAX         (1u << 17)
#define IMAP_LIST_MAX           (1u << 20)
#define IMAP_LEFT_MAX           10000
/* a failed poll is tried again after imap_interval times 2^failures, at most this */
#define IMAP_BACKOFF_MAX        (6 * 3600)

struct imap {
        /* settings, copied at start (a reload changes them only with a restart) */
        char *url;              /* without a trailing slash */
        char *username, *password, *ca_file;
        uint64_t interval;
        bool keep;
        bool plain_needs_starttls;
        unsigned test_hold;     /* NEWSLETTERD_TEST_IMAP_HOLD: seconds before a delete */
        unsigned per_poll;      /* IMAP_FETCH_PER_POLL, or NEWSLETTERD_TEST_IMAP_PER_POLL */
        int notify_fd;

        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stopping;
        /* the message handed over, and its verdict */
        bool waiting;
        struct imap_message msg;
        bool decided;
        enum imap_verdict verdict;
        struct imap_status st;

        /* the thread's own */
        CURL *h;
        struct buf body;
        bool too_large;
        uint32_t *uids;                 /* of one poll's search, IMAP_SEARCH_MAX */
        uint32_t left[IMAP_LEFT_MAX];   /* left unseen: not fetched again; ascending */
        size_t n_left;
        uint64_t next_uid;              /* where the next poll goes on */
        char errbuf[CURL_ERROR_SIZE];
};

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
        struct imap *im = ud;
        size_t len = size * n;
        if (!buf_append(&im->body, p, len)) {
                im->too_large = true;
                return 0;       /* ends the transfer */
        }
        return len;
}

static int progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
        struct imap *im = ud;
        pthread_mutex_lock(&im->lock);
        bool stop = im->stopping;
        pthread_mutex_unlock(&im->lock);
        return stop ? 1 : 0;
}

/* One IMAP command on the mailbox: `custom` (NULL for a fetch of `path`
 * below the mailbox); the answer in im->body, at most `max` bytes. */
static CURLcode imap_do(struct imap *im, const char *path, const char *custom, size_t max)
{
        char url[4096];
        snprintf(url, sizeof(url), "%s%s", im->url, path ? path : "");
        buf_free(&im->body);
        buf_init(&im->body, max);
        im->too_large = false;
        im->errbuf[0] = '\0';
        curl_easy_setopt(im->h, CURLOPT_URL, url);
        curl_easy_setopt(im->h, CURLOPT_CUSTOMREQUEST, custom);
        return curl_easy_perform(im->h);
}

static void handle_setup(struct imap *im)
{
        CURL *h = im->h;
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "imap,imaps");
        curl_easy_setopt(h, CURLOPT_USERNAME, im->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, im->password);
        if (im->plain_needs_starttls)
                curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (*im->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, im->ca_file);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, IMAP_TIMEOUT_MS);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, IMAP_TIMEOUT_MS);
        curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, IMAP_TIMEOUT_MS / 1000);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, im);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, im);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, im->errbuf);
}

/* The position of uid in the left set, or where it would go. */
static size_t left_find(const struct imap *im, uint32_t uid)
{
        size_t lo = 0, hi = im->n_left;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (im->left[mid] < uid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static bool uid_left(const struct imap *im, uint32_t uid)
{
        size_t i = left_find(im, uid);
        return i < im->n_left && im->left[i] == uid;
}

/* Remember uid as left unseen; when full, the oldest (lowest) is
 * forgotten: it is fetched once more (and skipped as judged before). */
static void left_add(struct imap *im, uint32_t uid)
{
        if (uid_left(im, uid))
                return;
        if (im->n_left == IMAP_LEFT_MAX) {
                if (uid < im->left[0])
                        return;
                memmove(im->left, im->left + 1, --im->n_left * sizeof(im->left[0]));
        }
        size_t i = left_find(im, uid);
        memmove(im->left + i + 1, im->left + i, (im->n_left - i) * sizeof(im->left[0]));
        im->left[i] = uid;
        im->n_left++;
}

static int uid_cmp(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
        return x < y ? -1 : x > y;
}

/* The UIDs of "* SEARCH 1 2 3" lines, at most IMAP_SEARCH_MAX, ascending;
 * *cut when there were more (or the answer was cut: a number at its very
 * end may be cut too, and is not taken). */
static size_t uids_parse(const char *p, size_t len, bool answer_cut, uint32_t *out, bool *cut)
{
        size_t n = 0;
        const char *end = p + len;
        *cut = answer_cut;
        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t)(end - p));
                if (!eol)
                        eol = end;
                if ((size_t)(eol - p) > 9 && memcmp(p, "* SEARCH ", 9) == 0) {
                        const char *q = p + 9;
                        while (q < eol) {
                                uint64_t v = 0;
                                bool digits = false;
                                while (q < eol && *q >= '0' && *q <= '9' && v < UINT32_MAX) {
                                        v = v * 10 + (uint64_t)(*q++ - '0');
                                        digits = true;
                                }
                                bool whole = q < eol || eol < end || !answer_cut;
                                while (q < eol && *q >= '0' && *q <= '9') {
                                        q++;    /* too long for a UID: none */
                                        v = 0;
                                }
                                if (digits && whole && v > 0 && v <= UINT32_MAX) {
                                        if (n == IMAP_SEARCH_MAX) {
                                                *cut = true;
                                                goto done;
                                        }
                                        out[n++] = (uint32_t)v;
                                }
                                while (q < eol && (*q < '0' || *q > '9'))
                                        q++;
                        }
                }
                p = eol + 1;
        }
done:
        qsort(out, n, sizeof(out[0]), uid_cmp);
        return n;
}

/* Hand the fetched message over and wait for its verdict; false when stopping. */
static bool hand_over(struct imap *im, uint64_t uid, enum imap_verdict *v)
{
        pthread_mutex_lock(&im->lock);
        im->msg = (struct imap_message){ .data = im->too_large ? NULL : im->body.data ? im->body.data : "",
                                         .len = im->too_large ? 0 : im->body.len,
                                         .too_large = im->too_large, .uid = uid };
        im->decided = false;
        im->waiting = true;
        pthread_mutex_unlock(&im->lock);
        uint64_t one = 1;
        if (write(im->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                log_err("imap: eventfd: %s", strerror(errno));
        pthread_mutex_lock(&im->lock);
        while (!im->decided && !im->stopping)
                pthread_cond_wait(&im->cond, &im->lock);
        bool ok = im->decided;
        *v = im->verdict;
        im->waiting = false;
        pthread_mutex_unlock(&im->lock);
        return ok;
}

static void fail(struct imap *im, const char *what, CURLcode rc)
{
        char text[sizeof(im->errbuf) + 128];
        snprintf(text, sizeof(text), "%s: %s%s%s", what, curl_easy_strerror(rc),
                 im->errbuf[0] ? ": " : "", im->errbuf);
        size_t n = strcspn(text, "\r\n");
        text[n] = '\0';
        log_warn("imap: %s", text);
        pthread_mutex_lock(&im->lock);
        snprintf(im->st.last_error, sizeof(im->st.last_error), "%.*s", (int)sizeof(im->st.last_error) - 1, text);
        im->st.last_error_at = clock_now();
        im->st.failures++;
        pthread_mutex_unlock(&im->lock);
}

/* One message: fetched, given its unseen state back, judged, then
 * deleted (flagged) or remembered as left.  0 done, -1 failed (logged),
 * 1 stopping; *deleted set when it is to be expunged. */
static int take_one(struct imap *im, uint32_t uid, bool *deleted)
{
        char cmd[128], path[64];
        snprintf(path, sizeof(path), "/;UID=%" PRIu32, uid);
        CURLcode rc = imap_do(im, path, NULL, BOUNCE_MSG_MAX);
        if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && im->too_large)) {
                fail(im, "fetch", rc);
                return -1;
        }
        /* the fetch set \Seen: take it back before anything else
         * (the message is in im->body, which the STORE leaves alone
         * when it is too large: its answer is empty) */
        struct buf msg = im->body;
        bool too_large = im->too_large;
        im->body = (struct buf){ 0 };
        snprintf(cmd, sizeof(cmd), "UID STORE %" PRIu32 " -FLAGS.SILENT (\\Seen)", uid);
        rc = imap_do(im, NULL, cmd, IMAP_LIST_MAX);
        buf_free(&im->body);
        im->body = msg;
        im->too_large = too_large;
        if (rc != CURLE_OK) {
                fail(im, "store", rc);
                return -1;
        }
        enum imap_verdict v;
        if (!hand_over(im, uid, &v))
                return 1;
        buf_free(&im->body);
        if (v == IMAP_RETRY) {
                fail(im, "judge", CURLE_OK);
                return -1;
        }
        if (v == IMAP_LEFT || v == IMAP_REFUSED) {
                left_add(im, uid);
                return 0;
        }
        if (im->test_hold) {
                log_info("imap: message %" PRIu32 " committed, held %u s before it is %s (test)",
                         uid, im->test_hold, im->keep ? "flagged" : "deleted");
                sleep(im->test_hold);
        }
        snprintf(cmd, sizeof(cmd), "UID STORE %" PRIu32 " +FLAGS.SILENT (%s)", uid,
                 im->keep ? "\\Seen" : "\\Deleted");
        if ((rc = imap_do(im, NULL, cmd, IMAP_LIST_MAX)) != CURLE_OK) {
                fail(im, "store", rc);
                return -1;
        }
        *deleted = !im->keep;
        return 0;
}

/* One poll: the unseen messages from next_uid on, at most per_poll of
 * them fetched (those remembered as left are passed over).  The next poll
 * goes on after the last one fetched; after one that came to the end, the
 * next begins again at the lowest.  0 done, -1 failed (logged), 1 stopping. */
static int poll_once(struct imap *im)
{
        char cmd[128];
        /* (n:* also matches the highest UID when that is below n: filtered below) */
        snprintf(cmd, sizeof(cmd), "UID SEARCH UNSEEN UID %" PRIu64 ":*", im->next_uid);
        CURLcode rc = imap_do(im, NULL, cmd, IMAP_LIST_MAX);
        if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && im->too_large)) {
                fail(im, "search", rc);
                return -1;
        }
        bool cut;
        size_t n = uids_parse(im->body.data ? im->body.data : "", im->body.len, im->too_large,
                              im->uids, &cut);
        size_t fetched = 0;
        bool deleted = false, full = false;
        for (size_t i = 0; i < n; i++) {
                uint32_t uid = im->uids[i];
                if (uid < im->next_uid || uid_left(im, uid))
                        continue;
                if (fetched == im->per_poll) {
                        full = true;
                        break;
                }
                fetched++;
                bool del = false;
                int r = take_one(im, uid, &del);
                if (r != 0)
                        return r;
                deleted |= del;
                im->next_uid = (uint64_t)uid + 1;
        }
        if (!full)
                im->next_uid = cut && n ? (uint64_t)im->uids[n - 1] + 1 : 1;
        if (deleted && (rc = imap_do(im, NULL, "EXPUNGE", IMAP_LIST_MAX)) != CURLE_OK) {
                fail(im, "expunge", rc);
                return -1;
        }
        pthread_mutex_lock(&im->lock);
        im->st.last_poll = clock_now();
        im->st.last_error[0] = '\0';
        pthread_mutex_unlock(&im->lock);
        log_debug("imap: polled, %zu unseen from here, %zu fetched; next from UID %" PRIu64, n,
                  fetched, im->next_uid);
        return 0;
}

static void *imap_thread(void *ud)
{
        struct imap *im = ud;
        unsigned failures = 0;
        for (;;) {
                im->h = curl_easy_init();
                int r = -1;
                if (im->h) {
                        handle_setup(im);
                        r = poll_once(im);
                        curl_easy_cleanup(im->h);
                        im->h = NULL;
                }
                buf_free(&im->body);
                if (r > 0)
                        break;
                failures = r < 0 ? failures + 1 : 0;
                uint64_t wait = im->interval;
                for (unsigned i = 0; i < failures && i < 16 && wait < IMAP_BACKOFF_MAX; i++)
                        wait *= 2;
                if (failures && wait > IMAP_BACKOFF_MAX)
                        wait = IMAP_BACKOFF_MAX > im->interval ? IMAP_BACKOFF_MAX : im->interval;
                if (failures)
                        log_warn("imap: %u failed polls in a row; trying again in %llu s", failures,
                                 (unsigned long long)wait);
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_sec += (time_t)wait;
                pthread_mutex_lock(&im->lock);
                while (!im->stopping &&
                       pthread_cond_timedwait(&im->cond, &im->lock, &until) != ETIMEDOUT)
                        ;
                bool stop = im->stopping;
                pthread_mutex_unlock(&im->lock);
                if (stop)
                        break;
        }
        return NULL;
}

int imap_new(const struct conf *c, int notify_fd, struct imap **out)
{
        struct imap *im = xcalloc(1, sizeof(*im));
        size_t len = strlen(c->imap_url);
        while (len && c->imap_url[len - 1] == '/')
                len--;
        im->url = xstrndup(c->imap_url, len);
        im->username = xstrdup(c->imap_username);
        im->password = xstrdup(c->imap_password ? c->imap_password : "");
        im->ca_file = xstrdup(c->imap_ca_file);
        im->interval = c->imap_interval;
        im->keep = c->imap_keep;
        im->plain_needs_starttls = strncmp(c->imap_url, "imap://", 7) == 0;
        im->notify_fd = notify_fd;
        im->uids = xcalloc(IMAP_SEARCH_MAX, sizeof(im->uids[0]));
        im->next_uid = 1;
        im->per_poll = IMAP_FETCH_PER_POLL;
        const char *per_poll = getenv("NEWSLETTERD_TEST_IMAP_PER_POLL");
        if (per_poll && *per_poll) {
                unsigned long v = strtoul(per_poll, NULL, 10);
                im->per_poll = v >= 1 && v < IMAP_FETCH_PER_POLL ? (unsigned)v : IMAP_FETCH_PER_POLL;
                log_warn("NEWSLETTERD_TEST_IMAP_PER_POLL is set: a test lets a poll fetch %u messages",
                         im->per_poll);
        }
        const char *hold = getenv("NEWSLETTERD_TEST_IMAP_HOLD");
        if (hold && *hold) {
                im->test_hold = (unsigned)strtoul(hold, NULL, 10) % 600;
                log_warn("NEWSLETTERD_TEST_IMAP_HOLD is set: a test holds each delete %u s", im->test_hold);
        }
        pthread_mutex_init(&im->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&im->cond, &ca);
        pthread_condattr_destroy(&ca);
        int r = pthread_create(&im->thread, NULL, imap_thread, im);
        if (r != 0) {
                log_err("imap: pthread_create: %s", strerror(r));
                imap_free(im);
                return -r;
        }
        im->started = true;
        *out = im;
        return 0;
}

const struct imap_message *imap_pending(struct imap *im)
{
        if (!im)
                return NULL;
        pthread_mutex_lock(&im->lock);
        const struct imap_message *m = im->waiting && !im->decided ? &im->msg : NULL;
        pthread_mutex_unlock(&im->lock);
        return m;
}

void imap_verdict(struct imap *im, enum imap_verdict v, bool again)
{
        pthread_mutex_lock(&im->lock);
        assert(im->waiting && !im->decided);
        im->verdict = v;
        im->decided = true;
        if (again)
                im->st.skipped++;
        else if (v == IMAP_HANDLED)
                im->st.handled++;
        else if (v == IMAP_LEFT)
                im->st.not_understood++;
        else if (v == IMAP_REFUSED)
                im->st.refused++;
        pthread_cond_broadcast(&im->cond);
        pthread_mutex_unlock(&im->lock);
}

void imap_status(struct imap *im, struct imap_status *out)
{
        pthread_mutex_lock(&im->lock);
        *out = im->st;
        pthread_mutex_unlock(&im->lock);
}

void imap_free(struct imap *im)
{
        if (!im)
                return;
        pthread_mutex_lock(&im->lock);
        im->stopping = true;
        pthread_cond_broadcast(&im->cond);
        pthread_mutex_unlock(&im->lock);
        if (im->started)
                pthread_join(im->thread, NULL);
        pthread_mutex_destroy(&im->lock);
        pthread_cond_destroy(&im->cond);
        free(im->url);
        free(im->username);
        if (im->password) {
                explicit_bzero(im->password, strlen(im->password));
                free(im->password);
        }
        free(im->ca_file);
        buf_free(&im->body);
        free(im->uids);
        free(im);
}
