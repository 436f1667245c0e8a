/* Fuzz target: one message piped in as a bounce.  Invariants: no crash,
 * nothing read out of bounds, a recipient found is a valid address, the
 * status code is short and printable, and the answer is the same when the
 * message is parsed again. */
#include <stdint.h>

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "bounce.h"
#include "secret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct bounce_info a, b;
        static const char tmpl[] = "bounces+{id}@news.example.org";
        /* the key of tests/bounces/EXPECTED: the samples' tags are valid */
        static struct secret_keys keys = { .n = 1 };
        for (int i = 0; i < SECRET_KEY_LEN; i++)
                keys.key[0][i] = (uint8_t)i;
        bounce_parse((const char *)data, size, tmpl, &keys, &a);
        bounce_parse((const char *)data, size, tmpl, &keys, &b);
        if (a.kind != b.kind || a.mail_id != b.mail_id || a.verp != b.verp ||
            strcmp(a.recipient, b.recipient) != 0)
                abort();
        if ((a.mail_id > 0) != (a.verp == BOUNCE_VERP_VALID))
                abort();
        if (a.mail_id < 0 || strlen(a.status) >= sizeof(a.status))
                abort();
        struct addr x;
        if (a.recipient[0] && addr_parse(a.recipient, strlen(a.recipient), &x) != ADDR_OK)
                abort();
        for (const char *p = a.diagnostic; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                        abort();
        return 0;
}
