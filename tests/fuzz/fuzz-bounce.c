/* Fuzz target: the classifier's entry point, one message piped in as a
 * bounce (GMime's MIME reading, the report readers, the rules), and the
 * same rules on the message's first line as a relay's reply.  Invariants:
 * no crash, nothing read out of bounds, a recipient found is a valid
 * address, the status code is short and printable, every reason is a
 * name, a refusal of us is never a dead address, and the answer is the
 * same when the message is parsed again. */
#include <stdint.h>

#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "bounce.h"
#include "bounce_reason.h"
#include "mailparse.h"
#include "secret.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        mailparse_init();       /* GMime, once, before any input */
        return 0;
}

static void check_reason(enum bounce_kind k, const char *reason)
{
        if (!reason || !*reason)
                abort();
        for (const char *p = reason; *p; p++)
                if (*p < 'a' || *p > 'z')
                        abort();
        static const char *const ours[] = { "blocked", "spamdetected", "policyviolation", "rejected",
                                            "securityerror", "toomanyconn", "norelaying", "virusdetected",
                                            "contenterror", "mesgtoobig", "syntaxerror" };
        for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
                if (!strcmp(reason, ours[i]) && k != BOUNCE_SENDER)
                        abort();
        if (k == BOUNCE_PERMANENT && strcmp(reason, "userunknown") && strcmp(reason, "hostunknown") &&
            strcmp(reason, "hasmoved") && strcmp(reason, "notaccept"))
                abort();
}

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
            strcmp(a.recipient, b.recipient) != 0 || strcmp(a.reason, b.reason) != 0)
                abort();
        check_reason(a.kind, a.reason);
        for (size_t i = 0; i < a.n_rcpts; i++)
                check_reason(a.rcpts[i].kind, a.rcpts[i].reason);
        if (a.n_rcpts > BOUNCE_RCPTS_MAX)
                abort();
        /* the first line as a relay's reply */
        char line[512];
        size_t n = 0;
        while (n < size && n + 1 < sizeof(line) && data[n] != '\n' && data[n] != '\0') {
                line[n] = (char)data[n];
                n++;
        }
        line[n] = '\0';
        long code = n >= 3 ? (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') : 0;
        char status[16];
        const char *reason;
        enum bounce_kind k = bounce_relay_reply(code, line, "ann@example.net", status, &reason);
        check_reason(k, reason);
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
