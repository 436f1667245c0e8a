/*
 * ratelimit.c - how often one client may sign addresses up.  A sign-up form
 * is a mail cannon: bots sign strangers up by the thousand.  Each request
 * with an ip counts against that ip and its network (/24 for IPv4, /56 for
 * IPv6) per hour; confirmation mails of the whole daemon may have a ceiling.
 * A request over any limit counts against none.  Counters live in the store,
 * so they survive a restart, under keys that are an HMAC of the address with
 * a key of the daemon's kept outside the database (secret.h): a plain hash
 * of an IPv4 address is undone by trying all 2^32, an HMAC only by whoever
 * has that key too.  A new key starts every counter afresh (the old ones
 * are then orphans, purged when their hour is over).
 */
#include <arpa/inet.h>
#include <string.h>

#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ratelimit.h"

static void rule_key(const uint8_t secret[SECRET_KEY_LEN], const char *kind, const uint8_t *bytes,
                     size_t n, uint8_t key[RATE_KEY_LEN])
{
        uint8_t in[32], md[EVP_MAX_MD_SIZE];
        unsigned len = sizeof(md);
        size_t k = strlen(kind) + 1;
        memcpy(in, kind, k);            /* kind (with its NUL) then the address bytes */
        memcpy(in + k, bytes, n);
        if (!HMAC(EVP_sha256(), secret, SECRET_KEY_LEN, in, k + n, md, &len))
                abort();                /* only when OpenSSL cannot allocate */
        memcpy(key, md, RATE_KEY_LEN);
}

bool ratelimit_ip_rules(const uint8_t secret[SECRET_KEY_LEN], const char *ip, size_t len,
                        unsigned per_ip, unsigned per_network, struct rate_rule rules[2])
{
        char text[INET6_ADDRSTRLEN + 1];
        uint8_t a[16];
        if (len == 0 || len >= sizeof(text) || memchr(ip, '\0', len))
                return false;
        memcpy(text, ip, len);
        text[len] = '\0';
        if (inet_pton(AF_INET, text, a) == 1) {
                rule_key(secret, "ip4", a, 4, rules[0].key);
                rule_key(secret, "net4", a, 3, rules[1].key);
        } else if (inet_pton(AF_INET6, text, a) == 1) {
                static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
                if (memcmp(a, mapped, sizeof(mapped)) == 0) {
                        /* an IPv4 client seen through an IPv6 socket */
                        rule_key(secret, "ip4", a + 12, 4, rules[0].key);
                        rule_key(secret, "net4", a + 12, 3, rules[1].key);
                } else {
                        rule_key(secret, "ip6", a, 16, rules[0].key);
                        rule_key(secret, "net6", a, 7, rules[1].key);
                }
        } else {
                return false;
        }
        rules[0].limit = per_ip;
        rules[1].limit = per_network;
        return true;
}

void ratelimit_mail_rule(const uint8_t secret[SECRET_KEY_LEN], unsigned per_hour, struct rate_rule *rule)
{
        rule_key(secret, "mails", (const uint8_t *)"", 0, rule->key);
        rule->limit = per_hour;
}

int ratelimit_hit(struct store *st, const struct rate_rule *rules, size_t n, int64_t now)
{
        int64_t count[4], start[4];
        if (n > 4)
                n = 4;
        for (size_t i = 0; i < n; i++) {
                if (!rules[i].limit)
                        continue;
                int r = store_rate_count(st, rules[i].key, now, RATE_WINDOW, &count[i], &start[i]);
                if (r < 0)
                        return r;
                if (count[i] >= rules[i].limit)
                        return 1;
        }
        for (size_t i = 0; i < n; i++) {
                if (!rules[i].limit)
                        continue;
                int r = store_rate_set(st, rules[i].key, start[i], count[i] + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}
