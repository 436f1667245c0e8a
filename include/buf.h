/* A growable byte buffer with a hard cap (a leaf). */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
        char *data;     /* NUL-terminated by every append and consume (the NUL
                         * is not counted in len); NULL before the first */
        size_t len;
        size_t cap;
        size_t max;     /* 0 = no cap beyond memory */
        bool overflow;  /* an append was refused because of max */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Make room for `extra` more bytes at once (false past max). */
bool buf_reserve(struct buf *b, size_t extra);
/* Appends fail (return false, set overflow) only when max would be passed. */
bool buf_append(struct buf *b, const void *p, size_t n);
bool buf_puts(struct buf *b, const char *s);
bool buf_putc(struct buf *b, char c);
bool buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Give back the room of a buffer holding more than `keep` bytes of room
 * but fewer in use (after one large line). */
void buf_shrink(struct buf *b, size_t keep);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hand the data over to the caller (NUL-terminated), leaving b empty. */
char *buf_steal(struct buf *b, size_t *len);
