/*
 * unit.h - the few assertion macros the unit tests share.  No framework:
 * each test executable calls unit_run() for its test functions and returns
 * unit_finish() from main().  A failed CHECK prints file:line, the
 * expression and the values, and makes the executable exit non-zero; the
 * test function goes on, so one run shows every failure.  REQUIRE is the
 * same but leaves the test function (use it before dereferencing).
 */
#pragma once

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned unit_failures;          /* in the whole executable */
static unsigned unit_test_failures;     /* in the running test function */

/* Print a byte string readably: printable ASCII as is, the rest escaped,
 * long strings shortened in the middle. */
static inline void unit_print_bytes(const char *s, size_t n)
{
        if (!s) {
                fputs("(null)", stderr);
                return;
        }
        fputc('"', stderr);
        for (size_t i = 0; i < n; i++) {
                if (n > 240 && i == 100) {
                        fprintf(stderr, "\"...(%zu bytes)...\"", n - 200);
                        i = n - 100;
                }
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                        fprintf(stderr, "\\%c", c);
                else if (c == '\n')
                        fputs("\\n", stderr);
                else if (c == '\r')
                        fputs("\\r", stderr);
                else if (c == '\t')
                        fputs("\\t", stderr);
                else if (c < 0x20 || c >= 0x7f)
                        fprintf(stderr, "\\x%02x", c);
                else
                        fputc(c, stderr);
        }
        fputc('"', stderr);
}

static inline void unit_fail_head(const char *file, int line, const char *what)
{
        unit_failures++;
        unit_test_failures++;
        fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
}

static inline bool unit_check(bool ok, const char *file, int line, const char *expr)
{
        if (!ok)
                unit_fail_head(file, line, expr);
        return ok;
}

static inline bool unit_check_int(intmax_t a, intmax_t b, const char *file, int line,
                                  const char *ea, const char *eb)
{
        if (a == b)
                return true;
        unit_fail_head(file, line, "integers differ");
        fprintf(stderr, "    %s == %" PRIdMAX "\n    %s == %" PRIdMAX "\n", ea, a, eb, b);
        return false;
}

static inline bool unit_check_uint(uintmax_t a, uintmax_t b, const char *file, int line,
                                   const char *ea, const char *eb)
{
        if (a == b)
                return true;
        unit_fail_head(file, line, "integers differ");
        fprintf(stderr, "    %s == %" PRIuMAX "\n    %s == %" PRIuMAX "\n", ea, a, eb, b);
        return false;
}

static inline bool unit_check_mem(const char *a, size_t an, const char *b, size_t bn,
                                  const char *file, int line, const char *ea, const char *eb)
{
        if (a && b && an == bn && memcmp(a, b, an) == 0)
                return true;
        unit_fail_head(file, line, "strings differ");
        fprintf(stderr, "    %s == ", ea);
        unit_print_bytes(a, an);
        fprintf(stderr, "\n    %s == ", eb);
        unit_print_bytes(b, bn);
        fputc('\n', stderr);
        return false;
}

static inline bool unit_check_str(const char *a, const char *b, const char *file, int line,
                                  const char *ea, const char *eb)
{
        return unit_check_mem(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0, file, line, ea, eb);
}

/* true when `needle` occurs in `hay`; prints both otherwise */
static inline bool unit_check_contains(const char *hay, const char *needle, const char *file,
                                       int line, const char *eh)
{
        if (hay && needle && strstr(hay, needle))
                return true;
        unit_fail_head(file, line, "substring missing");
        fprintf(stderr, "    %s == ", eh);
        unit_print_bytes(hay, hay ? strlen(hay) : 0);
        fprintf(stderr, "\n    expected to contain ");
        unit_print_bytes(needle, needle ? strlen(needle) : 0);
        fputc('\n', stderr);
        return false;
}

#define CHECK(e)                unit_check(!!(e), __FILE__, __LINE__, #e)
#define CHECK_INT(a, b)         unit_check_int((intmax_t)(a), (intmax_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_UINT(a, b)        unit_check_uint((uintmax_t)(a), (uintmax_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR(a, b)         unit_check_str((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_MEM(a, an, b, bn) unit_check_mem((const char *)(a), (an), (const char *)(b), (bn), \
                                               __FILE__, __LINE__, #a, #b)
#define CHECK_CONTAINS(h, n)    unit_check_contains((h), (n), __FILE__, __LINE__, #h)

/* Leave the (void) test function when the check fails. */
#define REQUIRE(e)              do { if (!CHECK(e)) return; } while (0)

/* Marks an assertion that fails because of a known daemon bug; the message
 * is printed with the failure so that the log says which bug it is. */
#define BUG(msg)                fprintf(stderr, "    (known daemon bug: %s)\n", msg)

static inline void unit_run(const char *name, void (*fn)(void))
{
        unit_test_failures = 0;
        fn();
        fprintf(stderr, "%s %s\n", unit_test_failures ? "FAIL" : "ok  ", name);
}

#define RUN(fn) unit_run(#fn, fn)

static inline int unit_finish(void)
{
        if (unit_failures) {
                fprintf(stderr, "%u check(s) failed\n", unit_failures);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

/* A string literal with its length (literals may hold NUL). */
#define LIT(s) (s), (sizeof(s) - 1)
