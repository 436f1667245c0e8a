/*
 * bounce_reason.c - the one set of rules that names why a delivery failed
 * and what that means for the subscriber.  Bounce reports (bounce.c) and
 * the relay's own replies while sending (bounce_relay_reply()) both come
 * here with what they read: an enhanced status code (RFC 3463), an SMTP
 * reply code, the diagnostic text and whether the MTA gave up or keeps
 * trying.  Reasons are Sisimai's vocabulary.  The rules go by the shape of
 * what MTAs say, not by sample: the text first (the words an MTA uses for
 * a dead mailbox, a full one, a blocklisted client, a policy, ...), in an
 * order where the narrower reading wins ("spamhaus" is a blocklist before
 * "spam" is content), then the status code's subject and detail, then the
 * bare reply code.
 *
 * Owns nothing.  Must never do I/O, and never call an address dead on a
 * guess: only the four dead-address reasons with a permanent code (or a
 * failure notice without any code) are BOUNCE_PERMANENT; what names the
 * receiver refusing us is BOUNCE_SENDER, so that a blocklisting costs no
 * subscriber.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bounce_reason.h"
#include "log.h"

#define TEXT_MAX        4096            /* diagnostic bytes the rules look at */
#define N_ELEM(a)       (sizeof(a) / sizeof((a)[0]))

/* A reason and the phrases (lower case, single blanks) that name it. */
struct text_rule {
        const char *reason;
        const char *const *phrases;
};

#define PHRASES(...)    (const char *const[]){ __VA_ARGS__, NULL }

/* In order: the first rule with a phrase in the text names the reason. */
static const struct text_rule text_rules[] = {
        { "virusdetected", PHRASES("virus", "malware", "infected", "trojan") },
        { "norelaying", PHRASES("relay access denied", "relaying denied", "relay denied",
                                "relay not permitted", "not permitted to relay", "relaying not allowed",
                                "unable to relay", "we do not relay", "relaying is prohibited",
                                "relay prohibited", "no relaying", "relaying mail to",
                                "not a gateway", "cannot relay", "relay not allowed") },
        { "mesgtoobig", PHRASES("message too large", "message too big", "message is too large",
                                "message is too big", "message size exceeds", "message file too big",
                                "message length exceeds", "exceeds maximum message size",
                                "exceeds the maximum message size", "size exceeds the maximum",
                                "message exceeds", "mail size limit", "message size limit",
                                "size limit exceeded") },
        { "mailboxfull", PHRASES("mailbox full", "mailbox is full", "mailbox has exceeded",
                                 "mailbox exceeds", "mailbox size", "over quota", "overquota",
                                 "over the quota", "quota exceeded", "exceeded quota", "exceeds quota",
                                 "exceeded the quota", "exceed the quota", "quota exceed", "disk quota",
                                 "mail quota", "storage quota", "exceeded storage", "exceeds storage",
                                 "storage allocation", "insufficient storage", "not enough storage",
                                 "account is full", "inbox is full", "full mailbox", "mailbox is over",
                                 "user is over", "too much mail", "is full", "out of storage",
                                 "mailfolder is full", "quota") },
        { "blocked", PHRASES("spamhaus", "spamcop", "barracuda", "dnsbl", "rbl", "blacklist",
                             "black list", "blocklist", "block list", "blacklisted", "listed at",
                             "listed on", "is listed", "are listed", "been listed", "ip reputation", "poor reputation",
                             "sender reputation", "bad reputation", "reverse dns", "reverse lookup",
                             "ptr record", "rdns", "client host rejected",
                             "refused to talk", "your ip", "sending ip",
                             "connecting host", "connections from", "dynamic ip", "dial-up",
                             "dialup", "residential", "unauthorized host", "not allowed to connect") },
        { "spamdetected", PHRASES("spam", "junk mail", "unsolicited", "bulk mail", "bulk e-mail",
                                  "content rejected", "message content rejected", "scam",
                                  "phishing", "suspicious", "uce", "rejected as junk") },
        { "hasmoved", PHRASES("has been moved", "has moved", "moved permanently", "address has changed",
                              "no longer available at this address", "new address",
                              "changed his address", "changed her address", "address changed") },
        { "suspend", PHRASES("suspended", "account disabled", "account is disabled",
                             "account has been disabled", "mailbox disabled", "mailbox is disabled",
                             "mailbox has been disabled", "deactivated", "inactive", "not active",
                             "account locked", "account is locked", "account expired",
                             "account has expired", "mailbox is frozen", "temporarily disabled",
                             "is disabled", "has been disabled", "blocked account",
                             "mailbox unavailable temporarily") },
        { "userunknown", PHRASES("user unknown", "unknown user", "user is unknown", "unknown local",
                                 "no such user", "no such mailbox", "no such recipient",
                                 "no such account", "no such address", "no such person",
                                 "no mailbox", "mailbox not found", "mailbox unavailable",
                                 "mailbox does not exist", "mailbox doesn't exist", "user not found",
                                 "recipient not found", "recipient unknown", "unknown recipient",
                                 "invalid recipient",
                                 "invalid mailbox", "invalid user", "invalid address",
                                 "address unknown", "unknown address", "address not found",
                                 "bad destination mailbox", "does not exist", "doesn't exist",
                                 "not exist", "do not exist", "is not a valid", "not a valid recipient",
                                 "no account", "account does not", "doesn't have a", "does not have a",
                                 "not our customer", "unknown or illegal alias",
                                 "not listed in domino directory", "not listed in",
                                 "unknown mailbox", "mailbox unknown", "addressee unknown",
                                 "undeliverable address", "no valid recipients",
                                 "not found in", "is not a known user", "no longer valid",
                                 "name is not recognized", "not recognized", "is unknown") },
        { "hostunknown", PHRASES("host unknown", "unknown host", "host not found", "domain not found",
                                 "no such domain", "unknown domain", "domain does not exist",
                                 "domain doesn't exist", "domain name not found", "host or domain name",
                                 "name or service not known", "unrouteable", "unroutable",
                                 "nxdomain", "illegal host", "no mx", "mx record", "mail exchanger",
                                 "domain is not reachable",
                                 "hostname lookup", "dns lookup", "non-existent host",
                                 "nonexistent host", "host name lookup", "domain is not",
                                 "not a valid domain", "invalid domain") },
        { "notaccept", PHRASES("does not accept mail", "not accepting mail", "accepts no mail",
                               "null mx", "does not receive mail") },
        { "rejected", PHRASES("sender address rejected", "sender rejected", "sender denied",
                              "sender verify", "sender address", "sender domain", "domain of sender",
                              "sender is", "envelope sender", "mail from", "from address",
                              "return path", "return-path", "sender not", "bad sender",
                              "sender unknown", "unknown sender", "invalid sender") },
        { "securityerror", PHRASES("spf", "dkim", "authentication", "authenticate", "unauthenticated",
                                   "starttls", "tls required", "must use tls", "encryption",
                                   "certificate", "not authorized", "unauthorized", "credentials",
                                   "sender policy framework", "forged") },
        { "policyviolation", PHRASES("dmarc", "greylist", "graylist", "policy", "policies", "prohibited", "not permitted",
                                     "violat", "not allowed", "disallowed", "forbidden",
                                     "terms of service", "acceptable use") },
        { "toomanyconn", PHRASES("too many connections", "too many concurrent", "too many sessions",
                                 "connection limit", "too many simultaneous", "rate limit",
                                 "ratelimit", "rate-limit", "throttl", "too many messages",
                                 "too many mails", "too many recipients", "too fast",
                                 "try again later", "exceeded the rate", "sending rate") },
        { "blocked", PHRASES("blocked", "banned", "access denied", "denied", "refused",
                             "not welcome", "go away") },
        { "filtered", PHRASES("filter", "filtered", "rejected by the recipient", "recipient refuses",
                              "refuses to accept", "user refuses", "does not accept",
                              "rejected by recipient") },
        { "contenterror", PHRASES("content error", "header error", "invalid header", "bad header",
                                  "illegal character", "8-bit", "8bit", "line too long",
                                  "mime", "format error", "message header") },
        { "syntaxerror", PHRASES("syntax error", "command unrecognized", "unrecognized command",
                                 "bad sequence", "command not implemented", "parameter not implemented",
                                 "command not recognized") },
        { "mailererror", PHRASES("mailer error", "mail program", "command failed", "program exited",
                                 "exit code", "exit status", "procmail", "maildrop",
                                 "permission denied", "x-unix", "unix-pipe", "command died") },
        { "systemfull", PHRASES("system full", "disk full", "insufficient system storage",
                                "no space left") },
        { "networkerror", PHRASES("connection refused", "connection timed out", "connection reset",
                                  "network is unreachable", "no route to host", "could not connect",
                                  "unable to connect", "can't connect", "cannot connect",
                                  "lost connection", "connection lost", "connection closed",
                                  "connection dropped", "host not reachable", "host unreachable",
                                  "name server", "nameserver", "temporary lookup failure",
                                  "lookup failure", "routing loop", "mail loop", "loops back",
                                  "too many hops", "hop count", "timed out", "timeout",
                                  "dns", "unreachable") },
        { "expired", PHRASES("expired", "retry time", "retry timeout", "gave up", "giving up",
                             "too long", "could not be delivered within", "not delivered within",
                             "delivery time", "undeliverable for", "has been delayed",
                             "delayed for", "have not been able to deliver", "still undeliverable",
                             "not yet been delivered", "will retry", "will keep trying",
                             "delivery delayed", "delayed") },
        { "systemerror", PHRASES("system error", "server error", "internal error", "local error",
                                 "local problem", "configuration error", "config error",
                                 "i/o error", "io error", "temporary failure", "temporarily",
                                 "try again", "out of memory", "resources", "service unavailable",
                                 "not available", "unavailable") },
};

static char lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_word_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Lower case, every run of whitespace one blank, at most cap - 1 bytes;
 * words with an '@' (addresses: "policy@example.org" says nothing of a
 * policy) left out. */
static size_t text_flatten(const char *s, char *out, size_t cap)
{
        size_t o = 0;
        while (*s && o + 1 < cap) {
                if (is_blank(*s)) {
                        if (o && out[o - 1] != ' ')
                                out[o++] = ' ';
                        s++;
                        continue;
                }
                size_t n = 0;
                while (s[n] && !is_blank(s[n]))
                        n++;
                if (!memchr(s, '@', n))
                        for (size_t i = 0; i < n && o + 1 < cap; i++)
                                out[o++] = lower(s[i]);
                s += n;
        }
        out[o] = '\0';
        return o;
}

/* A phrase at the start of a word (so "rbl" is not in "verbless"; a
 * phrase may end inside one: "violat" in "violation"). */
static bool has_phrase(const char *text, size_t n, const char *phrase)
{
        size_t pn = strlen(phrase);
        for (const char *p = text; (p = memmem(p, n - (size_t)(p - text), phrase, pn)); p++) {
                if (p == text || !is_word_char(p[-1]))
                        return true;
                if ((size_t)(p - text) + 1 >= n)
                        break;
        }
        return false;
}

const char *bounce_reason_text(const char *text)
{
        if (!text || !*text)
                return NULL;
        char *flat = xmalloc(TEXT_MAX);
        size_t n = text_flatten(text, flat, TEXT_MAX);
        const char *reason = NULL;
        for (size_t i = 0; i < N_ELEM(text_rules) && !reason; i++)
                for (const char *const *ph = text_rules[i].phrases; *ph && !reason; ph++)
                        if (has_phrase(flat, n, *ph))
                                reason = text_rules[i].reason;
        free(flat);
        return reason;
}

/* ---- codes -------------------------------------------------------------- */

const char *bounce_reason_status(const char *status)
{
        if (!status || (status[0] != '4' && status[0] != '5') || status[1] != '.')
                return NULL;
        char *e;
        long subject = strtol(status + 2, &e, 10);
        if (*e != '.')
                return NULL;
        long detail = strtol(e + 1, NULL, 10);
        switch (subject) {
        case 1:         /* addressing */
                switch (detail) {
                case 0: case 1: case 3: case 4: return "userunknown";
                case 2: return "hostunknown";
                case 6: return "hasmoved";
                case 7: case 8: return "rejected";
                case 10: return "notaccept";
                }
                return NULL;
        case 2:         /* mailbox */
                switch (detail) {
                case 1: return "suspend";
                case 2: return "mailboxfull";
                case 3: return "exceedlimit";
                case 4: return "systemerror";
                }
                return NULL;
        case 3:         /* mail system */
                switch (detail) {
                case 1: return "systemfull";
                case 2: return "notaccept";
                case 4: return "mesgtoobig";
                }
                return "systemerror";
        case 4:         /* network and routing */
                switch (detail) {
                case 3: return "systemerror";
                case 4: return "hostunknown";
                case 5: return "toomanyconn";
                case 7: return "expired";
                }
                return "networkerror";
        case 5:         /* protocol */
                return detail == 3 ? "toomanyconn" : "syntaxerror";
        case 6:         /* content */
                return "contenterror";
        case 7:         /* security and policy */
                switch (detail) {
                case 1: return "blocked";
                case 13: case 18: return "suspend";
                case 17: return "hasmoved";
                case 25: return "blocked";
                case 26: return "policyviolation";
                case 27: return "rejected";
                }
                return "securityerror";
        }
        return NULL;
}

/* What the bare reply code says, where the text said nothing. */
static const char *reason_reply(int reply)
{
        switch (reply) {
        case 421: return "systemerror";
        case 450: case 451: return "systemerror";
        case 452: return "systemfull";
        case 550: case 553: return "userunknown";
        case 551: return "hasmoved";
        case 552: return "mailboxfull";
        case 554: return "blocked";
        }
        return NULL;
}

static bool reason_is(const char *r, const char *const *list);

/* Whether the quoted SMTP dialogue shows the refusal came at DATA. */
static bool after_data(const char *text, const char *context)
{
        static const char *const marks[] = {
                "end of data", "after data", "in reply to data", "after end of", "during data",
                ">>> data <<< 55", ">>> data <<< 45",
        };
        const char *texts[] = { text, context };
        for (size_t t = 0; t < 2; t++) {
                if (!texts[t])
                        continue;
                char *flat = xmalloc(TEXT_MAX);
                size_t n = text_flatten(texts[t], flat, TEXT_MAX);
                bool found = false;
                for (size_t i = 0; i < N_ELEM(marks) && !found; i++)
                        found = memmem(flat, n, marks[i], strlen(marks[i])) != NULL;
                free(flat);
                if (found)
                        return true;
        }
        return false;
}

static bool reason_is(const char *r, const char *const *list)
{
        for (; *list; list++)
                if (!strcmp(r, *list))
                        return true;
        return false;
}

static const char *const dead_reasons[] = {
        "userunknown", "hostunknown", "hasmoved", "notaccept", NULL,
};
/* reasons of codes specific enough to stand against a text that calls
 * the address dead */
static const char *const overriding_codes[] = {
        "rejected", "policyviolation", "mailboxfull", NULL,
};
static const char *const sender_reasons[] = {
        "blocked", "spamdetected", "policyviolation", "rejected", "securityerror", "toomanyconn",
        "norelaying", "contenterror", "virusdetected", "mesgtoobig", "syntaxerror", NULL,
};

enum bounce_kind bounce_reason_class(const char *reason, int code_class, bool delayed)
{
        if (!strcmp(reason, "feedback"))
                return BOUNCE_COMPLAINT;
        if (!strcmp(reason, "vacation") || !strcmp(reason, "delivered"))
                return BOUNCE_UNKNOWN;
        if (reason_is(reason, sender_reasons))
                return BOUNCE_SENDER;
        if (reason_is(reason, dead_reasons) && !delayed && code_class != '4')
                return BOUNCE_PERMANENT;
        return BOUNCE_TEMPORARY;
}

enum bounce_kind bounce_classify(const struct bounce_evidence *e, const char **reason)
{
        const char *status = e->status && *e->status ? e->status : NULL;
        int code_class = status ? status[0] : e->reply >= 400 && e->reply < 600 ? '0' + e->reply / 100 : 0;
        const char *r = bounce_reason_text(e->text);
        const char *by_status = bounce_reason_status(status);
        /* A code that names the address dead, said with a text that names
         * no reason of its own (a bare "550 5.1.1" line), stands; so does a
         * code of a full or disabled mailbox against a vaguer text. */
        /* a dead address said with a code of another subject (x.1.7 our
         * sender, x.2.2 a full mailbox, x.7.x policy) is that code's */
        if (r && reason_is(r, dead_reasons) && by_status && reason_is(by_status, overriding_codes))
                r = by_status;
        /* refused after the data: the address was taken at RCPT, so what
         * refused the mail was a filter, not a missing mailbox */
        if (r && reason_is(r, dead_reasons) && after_data(e->text, e->context))
                r = "filtered";
        if (!r)
                r = by_status;
        if (!r)
                r = bounce_reason_text(e->context);
        if (!r)
                r = reason_reply(e->reply);
        if (!r && e->delayed)
                r = "expired";
        if (!r)
                r = "undefined";
        /* a dead-address reason needs a permanent code, or a notice that
         * gave up without quoting any */
        if (reason_is(r, dead_reasons) && !code_class && !e->failed)
                code_class = '4';
        *reason = r;
        return bounce_reason_class(r, code_class, e->delayed);
}
