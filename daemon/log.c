/*
 * log.c - messages to stderr, the only log sink: systemd's journal picks
 * stderr up, and under it each line carries an sd-daemon "<N>" level prefix.
 * Never pass a token or a password here; addresses only at debug level.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int log_level = LOG_LVL_INFO;
static int log_journal = -1;   /* stderr is the journal: prefix levels, no time */

void log_set_level(int level)
{
        log_level = level;
}

int log_get_level(void)
{
        return log_level;
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

static void log_vmsg(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void log_vmsg(int level, const char *fmt, va_list ap)
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
        log_vmsg(level, fmt, ap);
        va_end(ap);
        errno = saved;
}

_Noreturn void fatal(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(LOG_LVL_ERR, fmt, ap);
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
