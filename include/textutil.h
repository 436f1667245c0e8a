/* The byte and string helpers the modules that read text share (mailparse.c,
 * bounce*.c, addr.c, csv.c, dkim.c): ASCII classes and case folding that
 * never depend on the locale, and a bounded string copy.  All static inline; a leaf: no I/O,
 * no allocation. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* the number of elements of an array (not of a pointer) */
#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

/* SP or HTAB (RFC 5234 WSP) */
static inline bool is_wsp(char c)
{
        return c == ' ' || c == '\t';
}

/* WSP or a line break: what a run of "whitespace" is in a text */
static inline bool is_wsp_nl(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static inline bool is_alnum_ascii(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline char ascii_lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether n bytes at p are `lit`, ASCII case-insensitive. */
static inline bool mem_eq_ci(const char *p, size_t n, const char *lit)
{
        if (strlen(lit) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (ascii_lower(p[i]) != ascii_lower(lit[i]))
                        return false;
        return true;
}

/* Two strings equal, ASCII case-insensitive. */
static inline bool str_eq_ci(const char *a, const char *b)
{
        for (; *a && *b; a++, b++)
                if (ascii_lower(*a) != ascii_lower(*b))
                        return false;
        return *a == *b;
}

/* Whether s starts with `prefix`, which is in lower case, s in any case. */
static inline bool str_starts_ci(const char *s, const char *prefix)
{
        for (; *prefix; s++, prefix++)
                if (ascii_lower(*s) != *prefix)
                        return false;
        return true;
}

/* s into out[cap] (cap > 0), cut to what fits, always terminated. */
static inline void copy_str(char *out, size_t cap, const char *s)
{
        size_t n = strnlen(s, cap - 1);
        memcpy(out, s, n);
        out[n] = '\0';
}
