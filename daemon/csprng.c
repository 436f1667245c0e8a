/*
 * csprng.c - random bytes from OpenSSL's RAND_bytes(), drawn 1 KiB at a
 * time.  OpenSSL 3 pays a fixed cost on every call whatever its size
 * (parameter lookups, the generator's lock, a getpid() for fork
 * detection), and every mail needs two draws (its token, its Message-ID).
 * Drawn in bulk, a 24-byte token costs a memcpy.
 *
 * Each thread has its own pool, so no lock.  Bytes are wiped from the pool
 * as they are handed out: what stays in memory was never used, the same
 * as the generator's own state.  A child of fork() starts with an empty
 * pool, so parent and child never hand out the same bytes.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/rand.h>

#include "csprng.h"

#define POOL_BYTES 1024

static _Thread_local struct {
        unsigned char b[POOL_BYTES];
        size_t left;            /* the unused bytes are the last `left` */
} pool;

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_in_child(void)
{
        csprng_forget();
}

static void register_atfork(void)
{
        pthread_atfork(NULL, NULL, forget_in_child);
}

int csprng_bytes(void *out, size_t n)
{
        unsigned char *o = out;
        pthread_once(&atfork_once, register_atfork);
        if (n > POOL_BYTES / 4)
                return n <= INT_MAX && RAND_bytes(o, (int)n) == 1 ? 0 : -EIO;
        while (n) {
                if (!pool.left) {
                        if (RAND_bytes(pool.b, POOL_BYTES) != 1)
                                return -EIO;
                        pool.left = POOL_BYTES;
                }
                size_t take = n < pool.left ? n : pool.left;
                unsigned char *from = pool.b + POOL_BYTES - pool.left;
                memcpy(o, from, take);
                explicit_bzero(from, take);
                pool.left -= take;
                o += take;
                n -= take;
        }
        return 0;
}

void csprng_forget(void)
{
        explicit_bzero(pool.b, sizeof(pool.b));
        pool.left = 0;
}
