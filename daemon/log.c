/*
 * log.c - messages to stderr, the only log sink: systemd's journal picks
 * stderr up, and under it each line carries an sd-daemon "<N>" level prefix.
 * A warning or error repeated word for word is shown once per interval: a
 * full disk fails every batch the same way, and the log must not fill what
 * little room is left.  Never pass a token or a password here; addresses
 * only at debug level.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int log_level = LOG_LVL_INFO;
static int log_journal = -1;   /* stderr is the journal: prefix levels, no time */

/* The warnings and errors shown lately, by a hash of their text: the
 * sender threads log too, hence the lock.  A message pushed out of the
 * table by newer ones loses its count of left-out repeats, nothing else. */
#define REPEAT_SLOTS 16
static struct repeat {
        uint64_t hash;          /* 0: free */
        int64_t shown;          /* CLOCK_MONOTONIC seconds */
        unsigned skipped;       /* left out since */
} repeats[REPEAT_SLOTS];
static unsigned repeat_interval = LOG_REPEAT_INTERVAL_S;
static pthread_mutex_t repeat_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_repeat_interval(unsigned seconds)
{
        pthread_mutex_lock(&repeat_lock);
        repeat_interval = seconds;
        memset(repeats, 0, sizeof(repeats));
        pthread_mutex_unlock(&repeat_lock);
}

static uint64_t text_hash(const char *p, size_t n)
{
        uint64_t h = 14695981039346656037ull;   /* FNV-1a */
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
        return h ? h : 1;
}

/* Whether to show a message now; *skipped: its repeats left out before. */
static bool repeat_show(const char *text, size_t n, unsigned *skipped)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t h = text_hash(text, n);
        bool show = true;
        *skipped = 0;
        pthread_mutex_lock(&repeat_lock);
        if (repeat_interval) {
                struct repeat *r = NULL, *oldest = &repeats[0];
                for (size_t i = 0; i < REPEAT_SLOTS && !r; i++) {
                        if (repeats[i].hash == h)
                                r = &repeats[i];
                        /* a free slot, else the one shown longest ago */
                        else if (oldest->hash && (!repeats[i].hash || repeats[i].shown < oldest->shown))
                                oldest = &repeats[i];
                }
                if (r && ts.tv_sec - r->shown < (int64_t)repeat_interval) {
                        r->skipped++;
                        show = false;
                } else {
                        if (!r) {
                                r = oldest;
                                *r = (struct repeat){ .hash = h };
                        }
                        *skipped = r->skipped;
                        r->shown = ts.tv_sec;
                        r->skipped = 0;
                }
        }
        pthread_mutex_unlock(&repeat_lock);
        return show;
}

void log_set_level(int level)
{
        log_level = level;
}

int log_level_parse(const char *s)
{
        static const struct { const char *name; int level; } names[] = {
                { "err", LOG_LVL_ERR }, { "error", LOG_LVL_ERR },
                { "warning", LOG_LVL_WARN }, { "warn", LOG_LVL_WARN },
                { "info", LOG_LVL_INFO }, { "debug", LOG_LVL_DEBUG },
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(s, names[i].name) == 0)
                        return names[i].level;
        return -1;
}

static void log_vmsg(int level, bool limited, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static void log_vmsg(int level, bool limited, const char *fmt, va_list ap)
{
        char line[2048];
        int n;

        if (log_journal < 0)
                log_journal = getenv("JOURNAL_STREAM") != NULL;
        if (log_journal) {
                n = snprintf(line, sizeof(line), "<%d>", level);
        } else {
                struct timespec ts;
                struct tm tm;
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
                n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ newsletterd[%s]: ",
                              ts.tv_nsec / 1000000,
                              level <= LOG_LVL_ERR ? "err" : level == LOG_LVL_WARN ? "warn" :
                              level == LOG_LVL_INFO ? "info" : "debug");
        }
        if (n < 0 || (size_t)n >= sizeof(line))
                n = 0;
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
        if (len > sizeof(line) - 2)
                len = sizeof(line) - 2;
        /* one line per message, whatever the text held */
        for (size_t i = (size_t)n; i < len; i++)
                if (line[i] == '\n' || line[i] == '\r')
                        line[i] = ' ';
        unsigned skipped = 0;
        if (limited && level <= LOG_LVL_WARN &&
            !repeat_show(line + n, len - (size_t)n, &skipped))
                return;
        if (skipped) {
                size_t room = sizeof(line) - len - 1;   /* keeps one byte for the newline */
                int k = snprintf(line + len, room, " (%u more like it since it was last shown)", skipped);
                if (k > 0)
                        len += (size_t)k < room ? (size_t)k : room - 1;
        }
        line[len++] = '\n';
        fwrite(line, 1, len, stderr);
}

void log_msg(int level, const char *fmt, ...)
{
        va_list ap;
        if (level > log_level)
                return;
        int saved = errno;
        va_start(ap, fmt);
        log_vmsg(level, true, fmt, ap);
        va_end(ap);
        errno = saved;
}

_Noreturn void fatal(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(LOG_LVL_ERR, false, fmt, ap);
        va_end(ap);
        abort();
}

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                oom();
        return p;
}

void *xcalloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                oom();
        return p;
}

void *xrealloc(void *p, size_t n)
{
        p = realloc(p, n ? n : 1);
        if (!p)
                oom();
        return p;
}

char *xstrdup(const char *s)
{
        char *p = strdup(s);
        if (!p)
                oom();
        return p;
}

/* Like strndup, but never looks past s[n - 1]: s need not be terminated. */
char *xstrndup(const char *s, size_t n)
{
        const char *nul = memchr(s, '\0', n);
        size_t len = nul ? (size_t)(nul - s) : n;
        char *p = xmalloc(len + 1);
        memcpy(p, s, len);
        p[len] = '\0';
        return p;
}
