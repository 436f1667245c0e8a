/*
 * buf.c - growable byte buffers with a hard cap.  Every buffer that holds
 * outside input or output to a peer has a max; an append past it is refused
 * and remembered, never truncated silently.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

void buf_init(struct buf *b, size_t max)
{
        memset(b, 0, sizeof(*b));
        b->max = max;
}

void buf_free(struct buf *b)
{
        if (!b)
                return;
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
        b->overflow = false;
}

void buf_reset(struct buf *b)
{
        b->len = 0;
        b->overflow = false;
}

bool buf_reserve(struct buf *b, size_t extra)
{
        if (extra > SIZE_MAX - b->len - 1) {
                b->overflow = true;
                return false;
        }
        size_t need = b->len + extra + 1;       /* room for a NUL */
        if (b->max && need > b->max + 1) {
                b->overflow = true;
                return false;
        }
        if (need <= b->cap)
                return true;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (b->max && cap > b->max + 1)
                cap = b->max + 1;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
        return true;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
        if (!buf_reserve(b, n))
                return false;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return true;
}

bool buf_puts(struct buf *b, const char *s)
{
        return buf_append(b, s, strlen(s));
}

bool buf_putc(struct buf *b, char c)
{
        return buf_append(b, &c, 1);
}

bool buf_printf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        char small[256];

        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return false;
        if ((size_t)n < sizeof(small))
                return buf_append(b, small, (size_t)n);
        if (!buf_reserve(b, (size_t)n))
                return false;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return true;
}

void buf_shrink(struct buf *b, size_t keep)
{
        if (b->cap <= keep || b->len + 1 > keep)
                return;
        b->data = xrealloc(b->data, keep);
        b->cap = keep;
}

void buf_consume(struct buf *b, size_t n)
{
        if (n >= b->len) {
                b->len = 0;
        } else {
                memmove(b->data, b->data + n, b->len - n);
                b->len -= n;
        }
        if (b->data)
                b->data[b->len] = '\0';
}

char *buf_steal(struct buf *b, size_t *len)
{
        char *p = b->data ? b->data : xstrdup("");
        if (len)
                *len = b->len;
        b->data = NULL;
        b->len = b->cap = 0;
        b->overflow = false;
        return p;
}
