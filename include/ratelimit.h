/* Rate limits on sign-ups: per client ip, per network, and a global ceiling
 * of confirmation mails, counted in the store so they survive a restart. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "secret.h"
#include "store.h"

#define RATE_WINDOW SECONDS_PER_HOUR     /* every limit is per hour */

struct rate_rule {
        uint8_t key[RATE_KEY_LEN];
        unsigned limit;         /* 0: not limited */
};

/* The counters a sign-up from this ip counts against: the address and its
 * /24 (IPv4, also IPv4-mapped IPv6) or /56 (IPv6), keyed by an HMAC under
 * `secret` (secret_keys.ratelimit).  false for a malformed ip. */
bool ratelimit_ip_rules(const uint8_t secret[SECRET_KEY_LEN], const char *ip, size_t len,
                        unsigned per_ip, unsigned per_network, struct rate_rule rules[2]);
/* The counter of all confirmation mails. */
void ratelimit_mail_rule(const uint8_t secret[SECRET_KEY_LEN], unsigned per_hour, struct rate_rule *rule);

/* Count one hit against every rule, or none when any is at its limit:
 * 0 counted, 1 over a limit, negative on a store failure. */
int ratelimit_hit(struct store *st, const struct rate_rule *rules, size_t n, int64_t now);
