/*
 * test-csprng.c - the pooled random bytes: no draw repeats another, the
 * bytes are uniform (a chi-square test over 4 MiB, computed here and not
 * taken from the module), draws of every size cross the pool's refills
 * without handing a byte out twice, each thread and a child of fork() get
 * bytes of their own.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "csprng.h"
#include "unit.h"

static int cmp16(const void *a, const void *b)
{
        return memcmp(a, b, 16);
}

static void test_no_repeats(void)
{
        enum { N = 100000 };
        unsigned char (*v)[16] = calloc(N, 16);
        REQUIRE(v != NULL);
        bool ok = true;
        for (size_t i = 0; i < N; i++)
                ok &= csprng_bytes(v[i], 16) == 0;
        CHECK(ok);
        qsort(v, N, 16, cmp16);
        size_t same = 0;
        for (size_t i = 1; i < N; i++)
                same += memcmp(v[i - 1], v[i], 16) == 0;
        CHECK_UINT(same, 0);
        free(v);
}

/* Sizes from 1 to 300 (also above the pool's direct-call threshold): the
 * counts of each byte value over 4 MiB must be uniform. */
static void test_uniform(void)
{
        enum { TOTAL = 4 << 20 };
        unsigned char buf[300];
        uint64_t count[256] = { 0 };
        size_t got = 0, size = 1;
        bool ok = true;
        while (got < TOTAL) {
                ok &= csprng_bytes(buf, size) == 0;
                for (size_t i = 0; i < size; i++)
                        count[buf[i]]++;
                got += size;
                size = size % 300 + 1;
        }
        CHECK(ok);
        double expect = (double)got / 256, chi2 = 0;
        for (int i = 0; i < 256; i++)
                chi2 += (count[i] - expect) * (count[i] - expect) / expect;
        /* 255 degrees of freedom: P(chi2 > 370) is below 1e-5 */
        if (chi2 >= 370)
                fprintf(stderr, "chi-square %.1f\n", chi2);
        CHECK(chi2 < 370);
}

/* A draw never equals the one before it, also across a refill: a pool
 * that handed bytes out twice would repeat 8-byte windows. */
static void test_refills(void)
{
        unsigned char a[8], b[8];
        REQUIRE(csprng_bytes(a, sizeof(a)) == 0);
        size_t repeats = 0;
        for (int i = 0; i < 20000; i++) {
                /* 8 is a divisor of the pool size, 7 is not: both line-ups */
                size_t n = i % 2 ? 7 : 8;
                memset(b, 0, sizeof(b));
                REQUIRE(csprng_bytes(b, n) == 0);
                repeats += memcmp(a, b, n) == 0;
                memcpy(a, b, sizeof(a));
        }
        CHECK_UINT(repeats, 0);
}

static void *draw32(void *out)
{
        if (csprng_bytes(out, 32) != 0)
                memset(out, 0, 32);
        csprng_forget();
        return NULL;
}

static void test_threads(void)
{
        unsigned char mine[32], other[32];
        pthread_t t;
        REQUIRE(pthread_create(&t, NULL, draw32, other) == 0);
        pthread_join(t, NULL);
        REQUIRE(csprng_bytes(mine, sizeof(mine)) == 0);
        CHECK(memcmp(mine, other, sizeof(mine)) != 0);
}

/* Parent and child draw right after fork(): without the pool emptied in
 * the child, both would hand out the same next bytes. */
static void test_fork(void)
{
        unsigned char warm[4], mine[32], child[32];
        REQUIRE(csprng_bytes(warm, sizeof(warm)) == 0);     /* the pool is filled */
        int fd[2];
        REQUIRE(pipe(fd) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
                unsigned char c[32] = { 0 };
                csprng_bytes(c, sizeof(c));
                ssize_t w = write(fd[1], c, sizeof(c));
                _exit(w == (ssize_t)sizeof(c) ? 0 : 1);
        }
        close(fd[1]);
        REQUIRE(csprng_bytes(mine, sizeof(mine)) == 0);
        ssize_t r = read(fd[0], child, sizeof(child));
        close(fd[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(r == (ssize_t)sizeof(child));
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(memcmp(mine, child, sizeof(mine)) != 0);
}

int main(void)
{
        RUN(test_no_repeats);
        RUN(test_uniform);
        RUN(test_refills);
        RUN(test_threads);
        RUN(test_fork);
        return unit_finish();
}
