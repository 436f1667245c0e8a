/* Fuzz target: a solved challenge as a website passes it on (the "altcha"
 * field of subscribe).  Invariants: a payload is accepted only with the
 * right key, and one accepted at some time is expired at its expiry. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "altcha.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static uint8_t key[1][SECRET_KEY_LEN];
        static const uint8_t none[1][SECRET_KEY_LEN];
        if (!key[0][0]) {
                uint8_t k[SECRET_KEY_LEN];
                for (int i = 0; i < SECRET_KEY_LEN; i++)
                        k[i] = (uint8_t)i;
                altcha_key(k, key[0]);  /* test-altcha.c's key; its first byte is not 0 */
        }
        struct altcha_solution sol;
        enum altcha_verdict v = altcha_verify((const uint8_t (*)[SECRET_KEY_LEN])key, 1, 0,
                                              (const char *)data, size, &sol);
        if (v == ALTCHA_OK) {
                if (altcha_verify(none, 1, 0, (const char *)data, size, &sol) == ALTCHA_OK)
                        abort();
                if (altcha_verify((const uint8_t (*)[SECRET_KEY_LEN])key, 1, sol.expires,
                                  (const char *)data, size, &sol) != ALTCHA_EXPIRED)
                        abort();
        }
        return 0;
}
