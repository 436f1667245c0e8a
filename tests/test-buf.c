/*
 * test-buf.c - the capped byte buffer: appends up to the cap and not one
 * byte past it, printf beyond the on-stack fast path, consume and steal.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

static void test_empty(void)
{
        struct buf b;
        buf_init(&b, 0);
        CHECK_UINT(b.len, 0);
        CHECK(!b.overflow);
        CHECK(b.data == NULL);
        buf_free(&b);
        buf_free(NULL);         /* free functions accept NULL */
}

static void test_append(void)
{
        struct buf b;
        buf_init(&b, 0);
        CHECK(buf_puts(&b, "abc"));
        CHECK(buf_putc(&b, 'd'));
        CHECK(buf_append(&b, LIT("e\0f")));
        CHECK(buf_append(&b, NULL, 0));
        CHECK_MEM(b.data, b.len, "abcde\0f", 7);
        CHECK_INT(b.data[b.len], '\0');        /* always NUL-terminated */
        buf_reset(&b);
        CHECK_UINT(b.len, 0);
        CHECK(buf_puts(&b, "x"));
        CHECK_STR(b.data, "x");
        buf_free(&b);
}

/* Growth over many reallocations keeps every byte. */
static void test_growth(void)
{
        struct buf b;
        buf_init(&b, 0);
        for (unsigned i = 0; i < 100000; i++)
                REQUIRE(buf_putc(&b, (char)('a' + i % 26)));
        CHECK_UINT(b.len, 100000);
        CHECK(b.cap > b.len);
        bool same = true;
        for (unsigned i = 0; i < 100000; i++)
                if (b.data[i] != (char)('a' + i % 26))
                        same = false;
        CHECK(same);
        buf_free(&b);
}

static void test_cap(void)
{
        struct buf b;
        buf_init(&b, 10);
        CHECK(buf_puts(&b, "0123456789"));      /* exactly max fits */
        CHECK(!b.overflow);
        CHECK(!buf_putc(&b, 'x'));              /* one more does not */
        CHECK(b.overflow);
        CHECK_STR(b.data, "0123456789");  /* nothing was truncated in */
        CHECK(b.cap <= 11);                     /* never allocates past max + NUL */

        buf_reset(&b);
        CHECK(!b.overflow);
        CHECK(buf_puts(&b, "01234"));
        CHECK(!buf_puts(&b, "567890"));         /* would be 11: refused whole */
        CHECK(b.overflow);
        CHECK_STR(b.data, "01234");
        CHECK(buf_puts(&b, "56789"));           /* a later append that fits is fine */
        CHECK_STR(b.data, "0123456789");
        CHECK(b.overflow);                      /* and the refusal is remembered */
        buf_free(&b);

        /* a huge append cannot wrap the size computation */
        buf_init(&b, 0);
        CHECK(buf_puts(&b, "a"));
        CHECK(!buf_append(&b, "", SIZE_MAX));
        CHECK(b.overflow);
        CHECK_STR(b.data, "a");
        buf_free(&b);
}

static void test_printf(void)
{
        struct buf b;
        buf_init(&b, 0);
        CHECK(buf_printf(&b, "%s=%d;", "n", 42));
        CHECK_STR(b.data, "n=42;");

        /* longer than the 256-byte stack buffer inside buf_printf */
        char big[1001];
        memset(big, 'q', 1000);
        big[1000] = '\0';
        CHECK(buf_printf(&b, "[%s]%u", big, 7u));
        CHECK_UINT(b.len, 5 + 1 + 1000 + 1 + 1);
        CHECK(memcmp(b.data, "n=42;[", 6) == 0);
        CHECK(memcmp(b.data + 6, big, 1000) == 0);
        CHECK_STR(b.data + 1006, "]7");
        CHECK_INT(b.data[b.len], '\0');

        /* exactly 255 and 256 characters: both sides of the fast path */
        buf_reset(&b);
        CHECK(buf_printf(&b, "%.*s", 255, big));
        CHECK_UINT(b.len, 255);
        CHECK(buf_printf(&b, "%.*s", 256, big));
        CHECK_UINT(b.len, 511);
        CHECK_UINT(strlen(b.data), 511);
        buf_free(&b);

        /* the cap applies to printf too, short and long */
        buf_init(&b, 300);
        CHECK(buf_printf(&b, "%.*s", 250, big));
        CHECK(!buf_printf(&b, "%.*s", 51, big));
        CHECK(b.overflow);
        CHECK_UINT(b.len, 250);
        buf_reset(&b);
        CHECK(!buf_printf(&b, "%.*s", 301, big));
        CHECK(b.overflow);
        CHECK_UINT(b.len, 0);
        CHECK(buf_printf(&b, "%.*s", 300, big));
        CHECK_UINT(b.len, 300);
        buf_free(&b);
}

static void test_consume(void)
{
        struct buf b;
        buf_init(&b, 0);
        buf_consume(&b, 5);                     /* on an empty buffer: harmless */
        CHECK_UINT(b.len, 0);
        buf_puts(&b, "line one\nline two\n");
        buf_consume(&b, 9);
        CHECK_STR(b.data, "line two\n");
        CHECK_UINT(b.len, 9);
        buf_consume(&b, 0);
        CHECK_STR(b.data, "line two\n");
        buf_consume(&b, 100);                   /* more than there is */
        CHECK_UINT(b.len, 0);
        CHECK_STR(b.data, "");
        CHECK(buf_puts(&b, "again"));
        CHECK_STR(b.data, "again");
        buf_free(&b);
}

/* After one large line the room goes back; what is kept stays intact. */
static void test_shrink(void)
{
        struct buf b;
        buf_init(&b, 1u << 20);
        CHECK(buf_reserve(&b, 100000));
        CHECK(b.cap > 100000);
        CHECK(buf_puts(&b, "rest"));
        buf_shrink(&b, 4096);
        CHECK_UINT(b.cap, 4096);
        CHECK_STR(b.data, "rest");
        CHECK(buf_puts(&b, "!"));
        CHECK_STR(b.data, "rest!");
        buf_shrink(&b, 8192);                   /* already smaller: unchanged */
        CHECK_UINT(b.cap, 4096);
        CHECK(buf_reserve(&b, 10000));
        size_t cap = b.cap;
        b.len = 5000;
        buf_shrink(&b, 4096);                   /* more in use than that: kept */
        CHECK_UINT(b.cap, cap);
        buf_free(&b);
}

static void test_steal(void)
{
        struct buf b;
        size_t len = 99;
        buf_init(&b, 64);
        buf_puts(&b, "owned");
        char *p = buf_steal(&b, &len);
        CHECK_STR(p, "owned");
        CHECK_UINT(len, 5);
        CHECK(b.data == NULL);
        CHECK_UINT(b.len, 0);
        CHECK_UINT(b.cap, 0);
        free(p);

        /* the buffer is usable (and still capped) afterwards */
        CHECK(buf_puts(&b, "next"));
        CHECK_STR(b.data, "next");
        buf_reset(&b);
        char big[80];
        memset(big, 'z', sizeof(big));
        CHECK(!buf_append(&b, big, sizeof(big)));
        CHECK(b.overflow);
        p = buf_steal(&b, NULL);
        CHECK(!b.overflow);
        free(p);

        /* stealing from a never-used buffer gives an empty string, not NULL */
        buf_init(&b, 0);
        p = buf_steal(&b, &len);
        CHECK(p != NULL);
        CHECK_STR(p, "");
        CHECK_UINT(len, 0);
        free(p);
        buf_free(&b);
}

int main(void)
{
        RUN(test_empty);
        RUN(test_append);
        RUN(test_growth);
        RUN(test_cap);
        RUN(test_printf);
        RUN(test_consume);
        RUN(test_shrink);
        RUN(test_steal);
        return unit_finish();
}
