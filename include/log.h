/* Logging to stderr, with sd-daemon level prefixes under systemd. */
#pragma once
#include <stdarg.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* A warning or error with the same text as one shown less than this long
 * ago is left out; the next one shown says how many were. */
#define LOG_REPEAT_INTERVAL_S 30

void log_set_level(int level);
/* 0: show every repeat (for tests: a shorter interval) */
void log_set_repeat_interval(unsigned seconds);
/* "err", "warning", "info", "debug" -> level, or -1 */
int log_level_parse(const char *s);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* A broken invariant: log and abort.  Out of memory is one. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define oom() fatal("out of memory at %s:%d", __FILE__, __LINE__)

/* Allocation that never returns NULL (out of memory is fatal). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
