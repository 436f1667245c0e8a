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
#include "textutil.h"

#define TEXT_MAX        4096            /* diagnostic bytes the rules look at */

/* The phrases (lower case, single blanks, addresses left out) that name
 * each reason; a phrase matches at the start of a word and may end inside
 * one ("violat" in "violation"). */
static const char *const ph_mailboxfull[] = {
        "mailbox full", "mailbox is full", "mailbox has exceeded", "mailbox exceeded",
        "mailbox exceeds", "mailbox size limit", "mailbox over quota", "mailbox quota",
        "over quota", "overquota", "over the quota", "over disk quota", "over the allowed quota",
        "quota exceeded", "quota exceed", "exceeded quota", "exceeds quota", "exceeded the quota",
        "exceeding its mailbox quota", "exceeding their quota", "quota violation", "disk quota",
        "disc quota", "mail quota", "storage quota", "reached disk quota", "exceeded storage",
        "exceeds storage", "not enough storage", "not enough space", "enough space",
        "insufficient storage", "account is full", "inbox is full", "full mailbox",
        "mailfolder is full", "mailbox is over", "user is over", "user over quota",
        "too much mail", "too many messages on the server", "disk space limit",
        "would exceed maximum allowed storage", "boite du destinataire pleine",
        "mail file size exceeds", NULL };
static const char *const ph_mesgtoobig[] = {
        "message too large", "message too big", "message is too large", "message is too big",
        "message size exceeds", "message file too big", "message length exceeds",
        "exceeds maximum message size", "exceeded maximum inbound message size",
        "max message size exceeded", "size limit", "line limit exceeded",
        "taille limite du message", NULL };
static const char *const ph_suspend[] = {
        "is currently suspended", "has been suspended", "mailbox currently suspended",
        "user suspended", "suspend the service", "temporary locked", "temporarily locked",
        "account is locked", "account locked", "account has been disabled", "account disabled",
        "account is disabled", "mailbox is disabled", "mailbox disabled", "this mailbox is disabled",
        "deactivated mailbox", "is a deactivated", "has been deactivated", "inactive user",
        "/inactive user", "temporarily inactive", "mailbox is frozen", "disabled or discontinued",
        "mailbox unavailable or access denied", "boite du destinataire archivee",
        "you tried to reach is disabled", "inactive email address", "inactive account",
        "account is inactive", NULL };
static const char *const ph_hasmoved[] = {
        "has been replaced by", "has moved", "has been moved", "moved permanently",
        "no longer available at this address", "address has changed", "changed his address",
        "changed her address", "address changed", NULL };
static const char *const ph_norelaying[] = {
        "relay access denied", "relaying denied", "relay denied", "relay not permitted",
        "not permitted to relay", "relaying not allowed", "not allowed to relay", "unable to relay",
        "we do not relay", "relaying is prohibited", "relay prohibited", "relaying mail to",
        "not a gateway", "cannot relay", "as a relay", "insecure mail relay", "open relay, so",
        "not configured to relay", "not local host", NULL };
static const char *const ph_userunknown[] = {
        "user unknown", "unknown user", "user is unknown", "unknown local", "no such user",
        "no such mailbox", "no such recipient", "no such account", "no such address",
        "no such person", "no mailbox", "mailbox not found", "mailbox unavailable",
        "mailbox does not exist", "mailbox doesn't exist", "user not found", "user doesn't exist",
        "user does not exist", "recipient not found", "recipient unknown", "unknown recipient",
        "recipient does not exist", "recipient is not", "invalid recipient", "invalid mailbox",
        "invalid user", "address unknown", "unknown address", "address not found",
        "bad destination mailbox", "account does not exist", "account doesn't exist",
        "account that you tried to reach does not exist", "address does not exist",
        "address doesn't exist", "does not exist", "doesn't exist", "not exist",
        "is not a valid mailbox", "not a valid recipient", "no account", "doesn't have a",
        "does not have a", "not our customer", "unknown or illegal alias", "illegal alias",
        "not listed in domino directory", "not listed in public name", "unknown mailbox",
        "mailbox unknown", "addressee unknown", "undeliverable address", "no valid recipients",
        "is not a known user", "no longer valid", "destinataire invalide", "adresse invalide",
        "unknown e-mail address", "no mail box", "mailbox is unavailable", "not found in",
        "address rejected: undeliverable", "recipient address rejected: user",
        "recipient address rejected: unknown", "recipient address rejected: invalid",

        "recipient name is not recognized", "is not recognized", "not recognized as",
        "sorry, no mailbox", "user reject", "no such local user", "unknown account",
        "recipient rejected: user",
        "invalid final delivery",
        "存在しません", "ディレクトリのリストにありません", "ディレクトリには見つかりません",
        "宛先不明", NULL };
static const char *const ph_filtered[] = {
        "only accepting mail from specific", "bounced address", "due to extended inactivity",
        "restricted sms e-mail", "is not accepting any mail", "rejected due to user rules",
        "not found recipient account", "refused due to recipient preferences",
        "notauthorized", "this account is protected by", "refuse to receive mail",
        "blocked by the recipient", "rejected by the recipient", "rejected by recipient",
        "recipient refuses", "user refuses", "content filter", "filtered", NULL };
static const char *const ph_rejected[] = {
        "sender address rejected", "sender rejected", "sender denied", "sender verify failed",
        "sender verification", "sender email address rejected", "sender ip address rejected",
        "invalid sender", "bad sender", "unknown sender", "sender unknown", "bogus mail from",
        "domain of sender address", "sender domain", "sender is", "sender not pre-approved",
        "sender address has been", "null sender is not allowed", "empty envelope senders",
        "returned mail not accepted here", "no third-party dsns", "batv",
        "fully qualified email address required", "mail from not owned", "from: domain is invalid",
        "emetteur invalide", "administrative prohibition",
        "delivery not authorized, message refused", "unroutable sender", "unrouteable sender",
        "access denied (in reply to mail from", "envelope blocked", NULL };
/* a lookup that failed, not an answer that the domain is not there */
static const char *const ph_dns_trouble[] = {
        "dns error", "dns failure", "temporary lookup failure", "name server timeout",
        "malformed or unexpected name server reply", "servfail",
        /* the resolver's TRY_AGAIN (Postfix: "Host not found, try again") */
        "not found, try again", NULL };
static const char *const ph_policy_named[] = {
        "dmarc", "content presents a potential", "local policy", "organization policy",
        "policy reasons", "security policies", NULL };
static const char *const ph_greylisting[] = {
        "greylist", "graylist", "grey-list", "gray-list", "greylisting", NULL };
/* a mailing list refusing a post from a non-member: "rejected" */
static const char *const ph_list_refusal[] = {
        "groups.google.com", "google groups", "permission to post", "not allowed to post",
        "non-member", "members only", "members-only", NULL };
static const char *const ph_hostunknown[] = {
        "host unknown", "unknown host", "host not found", "domain not found", "no such domain",
        "unknown domain", "domain does not exist", "domain doesn't exist", "domain must exist",
        "domain name not found", "host or domain name not found", "domain is not reachable",
        "name or service not known", "unrouteable address", "unroutable address",
        "mail domain mentioned in email address is unknown", "account or domain may not exist",
        "nxdomain", "illegal host", "couldn't find a mail exchanger",
        "could not find a mail exchanger", "no mail exchanger", "host unreachable", NULL };
static const char *const ph_spamdetected[] = {
        "spam", "junk mail", "unsolicited", "bulk mail", "bulk e-mail", "content rejected",
        "message content rejected", "scam", "phishing", "rejected as junk", "uce",
        "classified as", "looks like", "suspicious", NULL };
static const char *const ph_toomanyconn[] = {
        "too many connections", "too many concurrent", "too many sessions", "too many smtp sessions",
        "connection limit", "maximum connection limit", "connection rate limit",
        "too many simultaneous", "rate limit", "ratelimit", "rate-limit",
        "too many messages", "too many mails", "too many recipients", "too many errors from", "throttled", "throttling",
        "max emails per hour", "sending rate", "trop de connexions", "frequency limited",
        "receiving mail at a rate",
        "numerous attempts to deliver", NULL };
/* a refusal that names no cause: of us, but of what depends on the
 * command it answered (in reply to MAIL FROM: our sender address) */
static const char *const ph_access_denied[] = { "access denied", NULL };
/* "Access denied" of the recipient address: Postfix's recipient access
 * table, Exchange Online's directory check (5.4.1); that address will not
 * take our mail (unless other words name a refusal of us) */
/* Postfix's verify(8) not done yet: no answer about the address at all */
static const char *const ph_verifying[] = {
        "unverified address", "address verification in progress", NULL };
static const char *const ph_recipient_denied[] = {
        "recipient address rejected: access denied", NULL };
static const char *const ph_blocked[] = {
        "spamhaus", "spamcop", "barracuda", "dnsbl", "rbl", "blacklist", "black list", "blocklist",
        "block list", "blacklisted", "listed at", "listed on", "is listed", "are listed",
        "been listed", "ip reputation", "poor reputation", "sender reputation", "bad reputation",
        "reverse dns", "reverse lookup", "ip name lookup", "ptr record", "rdns", "client host rejected",
        "refused to talk", "your ip", "sending ip", "your host", "connecting host",
        "connections from", "connection refused by", "dynamic ip", "dial-up", "dialup",
        "residential", "unauthorized host", "not allowed to connect",
        "smtp server of your isp", "mismatches client ip", "invalid ip for sending", "sending ips",
        "unverifyable sending", "unexpected volume", "user complaints", "purported responsible address",
        "bad spf", "spf record", "authentication information", "not authorized to send",
        "blocked", "banned", "refused by", "refused to", "not welcome", "go away", "no access from",
        "not accepting connections",
        "is not allowed to send", NULL };
static const char *const ph_policyviolation[] = {
        "dmarc", "policy", "policies", "prohibited", "violation", "violates", "violated",
        "not allowed", "disallowed",
        "forbidden", "terms of service", "acceptable use", "illegal attachment",
        "members-only list", "closed mailing list", "organizational settings",
        "organization policy", "greylist", "graylist", "header are not accepted",
        "messages with multiple addresses", "not subscribed to this group", "captcha", NULL };
static const char *const ph_virusdetected[] = {
        "virus", "malware", "infected", "trojan", "potentially executable attachment", NULL };
static const char *const ph_securityerror[] = {
        "spf", "dkim", "authentication", "authenticate", "unauthenticated", "starttls",
        "tls required", "must use tls", "encryption", "certificate", "not authorized",
        "unauthorized", "credentials", "sender policy framework", "forged", NULL };
static const char *const ph_systemerror[] = {
        "system error", "server error", "internal error", "local error", "local problem",
        "configuration error", "config error", "i/o error", "write error", "out of memory",
        "interrupted system call", "forwarding loop", "mail loop", "loops back to myself",
        "loop was found", "misconfigured", "service currently unavailable",
        "service unavailable", "transaction failed", "timeout waiting for input",
        "could not load drd", "error while being processed", "temporary failure", NULL };
static const char *const ph_networkerror[] = {
        "network error", "could not connect", "unable to connect", "can't connect", "cannot connect",
        "connection refused", "connection reset", "lost connection", "connection lost",
        "connection closed", "network is unreachable", "no route to host", "host is unreachable",
        "host not reachable", "name server", "nameserver", "lookup failure", "host name lookup",
        "dns records", "routing loop", "too many hops", "hop count", "message looping",
        "unable to resolve route", "unrouteable mail domain", "could not be found", NULL };
static const char *const ph_expired[] = {
        "expired", "retry time", "retry timeout", "gave up", "giving up", "too long",
        "delivery time", "delivery attempts will continue", "has been delayed",
        "could not be delivered for", "not delivered within", "undeliverable for",
        "have been failing for", "not been collected", "message timed out", "timed out",
        "connection timed out", "server did not respond", "multiple retries",
        "within the allowed queue period", "could not find a gateway",
        "still undeliverable", "not yet been delivered", "will retry", "will keep trying",
        "delivery delayed", "delayed", NULL };
static const char *const ph_contenterror[] = {
        "content error", "header error", "invalid header", "bad header", "invalid mime",
        "header size exceeds", "8-bit data", "illegal character", "line too long",
        "improperly-formatted", "unnecessary base64", "mime complexity", "format error",
        "too many received", NULL };
static const char *const ph_systemfull[] = {
        "system full", "disk full", "insufficient system storage", "no space left",
        "mail system full", NULL };
static const char *const ph_notaccept[] = {
        "does not accept mail", "not accepting mail", "accepts no mail", "null mx", "nullmx",
        "does not receive mail", "doesn't receive mail", "does not receive email",
        "doesn't receive email", "no mx record",
        "indicated no smtp service", "no smtp service", NULL };
static const char *const ph_mailererror[] = {
        "mailer error", "mail program", "command failed", "program exited", "exit code",
        "exit status", "procmail", "maildrop", "permission denied", "x-unix", "unix-pipe",
        "command died", "couldn't create", NULL };
/* the reporting MTA asking to check the address it could not deliver
 * to: an unknown user where no other words name a reason */
static const char *const ph_check_address[] = {
        "check if address is correct", "check if the address is correct", "check the e-mail address",
        "check the email address", "check the recipient's email address", NULL };
/* a program on the receiving host that was to deliver the mail failed
 * (a mailer error, whatever code the MTA put on it) */
static const char *const ph_local_program[] = {
        "procmail:", "maildrop:", "pipe to |", "unix-pipe", "x-unix;", NULL };
static const char *const ph_vacation[] = {
        "away on vacation", "out of the office", "out of office", "i am away", "i will be away",
        "traveling for work", "auto-reply", "automatic reply", NULL };

static bool is_word_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Lower case, every run of whitespace one blank, at most cap - 1 bytes;
 * words with an '@' (addresses: "policy@example.org" says nothing of a
 * policy) left out. */
static size_t text_flatten(const char *s, char *out, size_t cap)
{
        size_t o = 0;
        while (*s && o + 1 < cap) {
                if (is_wsp_nl(*s)) {
                        if (o && out[o - 1] != ' ')
                                out[o++] = ' ';
                        s++;
                        continue;
                }
                size_t n = 0;
                while (s[n] && !is_wsp_nl(s[n]))
                        n++;
                if (!memchr(s, '@', n))
                        for (size_t i = 0; i < n && o + 1 < cap; i++)
                                out[o++] = ascii_lower(s[i]);
                s += n;
        }
        out[o] = '\0';
        return o;
}

/* A phrase as whole words: "rbl" is not in "verbless", "spam" not in
 * "spamhaus". */
static bool has_phrase(const char *text, size_t n, const char *phrase)
{
        size_t pn = strlen(phrase);
        for (const char *p = text; (p = memmem(p, n - (size_t)(p - text), phrase, pn)); p++) {
                size_t end = (size_t)(p - text) + pn;
                if ((p == text || !is_word_char(p[-1]) || !is_word_char(phrase[0])) &&
                    (end == n || !is_word_char(text[end]) || !is_word_char(phrase[pn - 1])))
                        return true;
                if ((size_t)(p - text) + 1 >= n)
                        break;
        }
        return false;
}

/* The diagnostic text, flattened once. */
struct said {
        char *text;
        size_t n;
};

static void said_init(struct said *sd, const char *text)
{
        sd->text = xmalloc(TEXT_MAX);
        sd->n = text_flatten(text ? text : "", sd->text, TEXT_MAX);
}

static bool says(const struct said *sd, const char *const *phrases)
{
        for (; *phrases; phrases++)
                if (has_phrase(sd->text, sd->n, *phrases))
                        return true;
        return false;
}

/* A reason and its phrases, in the order the text alone is asked. */
struct text_rule {
        const char *reason;
        const char *const *phrases;
};

static const struct text_rule text_rules[] = {
        { "virusdetected", ph_virusdetected }, { "norelaying", ph_norelaying },
        { "mesgtoobig", ph_mesgtoobig }, { "mailboxfull", ph_mailboxfull },
        { "suspend", ph_suspend }, { "hasmoved", ph_hasmoved },
        { "rejected", ph_rejected }, { "userunknown", ph_userunknown },
        { "hostunknown", ph_hostunknown }, { "notaccept", ph_notaccept },
        { "filtered", ph_filtered }, { "toomanyconn", ph_toomanyconn },
        { "blocked", ph_blocked }, { "blocked", ph_access_denied }, { "spamdetected", ph_spamdetected },
        { "securityerror", ph_securityerror }, { "policyviolation", ph_policyviolation },
        { "contenterror", ph_contenterror }, { "mailererror", ph_mailererror },
        { "systemfull", ph_systemfull }, { "networkerror", ph_networkerror },
        { "expired", ph_expired }, { "systemerror", ph_systemerror },
};

const char *bounce_reason_text(const char *text)
{
        if (!text || !*text)
                return NULL;
        struct said sd;
        said_init(&sd, text);
        const char *reason = NULL;
        for (size_t i = 0; i < N_ELEM(text_rules) && !reason; i++)
                if (says(&sd, text_rules[i].phrases))
                        reason = text_rules[i].reason;
        free(sd.text);
        return reason;
}

/* ---- codes -------------------------------------------------------------- */

/* What an enhanced status code names (RFC 3463 and its registry):
 * subject 1 addressing, 2 mailbox, 3 mail system, 4 network and routing,
 * 5 protocol, 6 content, 7 security and policy.  The generic x.y.0 codes
 * name nothing but x.1.0, x.4.0, x.6.0 and x.7.0. */
const char *bounce_reason_status(const char *status)
{
        if (!status || (status[0] != '4' && status[0] != '5') || status[1] != '.')
                return NULL;
        char *e;
        long subject = strtol(status + 2, &e, 10);
        if (*e != '.')
                return NULL;
        long detail = strtol(e + 1, NULL, 10);
        bool perm = status[0] == '5';
        switch (subject) {
        case 1:
                switch (detail) {
                case 0: case 1: case 3: return perm ? "userunknown" : NULL;
                case 2: return perm ? "hostunknown" : NULL;
                case 4: return "filtered";
                case 6: return "hasmoved";
                case 7: case 8: return "rejected";
                case 9: return "systemerror";
                case 10: return "notaccept";
                }
                return NULL;
        case 2:
                switch (detail) {
                case 0: return perm ? "filtered" : NULL;
                case 1: return perm ? "filtered" : "suspend";
                case 2: return "mailboxfull";
                case 3: return "exceedlimit";
                case 4: return "filtered";
                }
                return NULL;
        case 3:
                switch (detail) {
                case 0: return perm ? "systemerror" : NULL;
                case 1: return "systemfull";
                case 2: return "notaccept";
                case 3: case 5: return "systemerror";
                case 4: return "mesgtoobig";
                }
                return NULL;
        case 4:
                switch (detail) {
                case 0: return perm ? "networkerror" : NULL;
                case 1: return perm ? NULL : "expired";
                case 2: case 6: return "networkerror";
                case 3: return perm ? "systemerror" : NULL;
                case 4: return perm ? "hostunknown" : "networkerror";
                case 5: return "systemfull";
                case 7: return "expired";
                }
                return NULL;
        case 5:
                switch (detail) {
                case 3: return perm ? "toomanyconn" : "systemerror";
                case 4: case 5: return "systemerror";
                case 6: return "securityerror";
                }
                return NULL;
        case 6:
                return "contenterror";
        case 7:
                switch (detail) {
                case 0: return perm ? "securityerror" : NULL;
                case 1: case 2: return perm ? "securityerror" : "blocked";
                case 13: return "suspend";
                case 16: return "mesgtoobig";
                case 17: case 18: return "hasmoved";
                case 25: return "blocked";
                case 27: return "notaccept";
                }
                return "securityerror";
        }
        return NULL;
}

static bool reason_is(const char *r, const char *const *list)
{
        for (; r && *list; list++)
                if (!strcmp(r, *list))
                        return true;
        return false;
}

static bool str_is(const char *a, const char *b)
{
        return a && !strcmp(a, b);
}

static const char *const dead_reasons[] = {
        "userunknown", "hostunknown", "hasmoved", "notaccept", NULL,
};
static const char *const sender_reasons[] = {
        "blocked", "spamdetected", "policyviolation", "rejected", "securityerror", "toomanyconn",
        "norelaying", "contenterror", "virusdetected", "mesgtoobig", "syntaxerror", NULL,
};
/* reasons a code names that the text is asked to make more precise */
static const char *const vague_reasons[] = {
        "undefined", "onhold", "systemerror", "securityerror", "networkerror", "hostunknown",
        "userunknown", "expired", NULL,
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

/* The SMTP command a refusal answered, as the dialogue quoted in the
 * text shows it: Postfix's "(in reply to RCPT TO command)", Sendmail's
 * ">>> RCPT To:<...>" before the "<<< 550" line, "RCPT TO:<...>" quoted
 * by others; NULL when it does not say. */
static const char *said_command(const struct said *sd)
{
        static const struct {
                const char *phrase, *command;
        } marks[] = {
                { "in reply to rcpt to", "RCPT" }, { "in reply to rcpt", "RCPT" },
                { "in reply to end of data", "DATA" }, { "in reply to data", "DATA" },
                { "after end of data", "DATA" }, { "after data", "DATA" },
                { "in reply to mail from", "MAIL" }, { "in reply to mail", "MAIL" },
                { "in reply to helo", "HELO" }, { "rcpt to response", "RCPT" }, { "in reply to ehlo", "HELO" },
                { "while talking to", NULL }, { "rcpt to:", "RCPT" }, { "rcpt to <", "RCPT" },
                { "rcpt-to", "RCPT" }, { "mail from:", "MAIL" },
                { "smtp:rcpt", "RCPT" }, { "[rcpt_to]", "RCPT" }, { "after rcpt", "RCPT" },
                { "after mail from", "MAIL" },
                /* Exim's "after MAIL FROM:<a@b>", its address left out by the flattening */
                { "server after mail", "MAIL" }, { "smtp command data", "DATA" }, { "smtp command: data", "DATA" },
                { "smtp command rcpt", "RCPT" }, { "smtp command: rcpt", "RCPT" },
                /* qmail's fixed words for each step of the dialogue */
                { "does not like recipient", "RCPT" }, { "but sender was rejected", "MAIL" },
                { "but my name was rejected", "HELO" }, { "but greeting failed", "CONN" },
                { "failed after i sent the message", "DATA" }, { "failed on data command", "DATA" },
        };
        const char *t = sd->text, *end = sd->text + sd->n;
        /* a transcript: the last command before the first refusal */
        const char *refusal = NULL;
        for (const char *p = t; (p = memmem(p, (size_t)(end - p), "<<< ", 4)); p += 4)
                if (p + 4 < end && (p[4] == '4' || p[4] == '5')) {
                        refusal = p;
                        break;
                }
        if (refusal) {
                const char *cmd = NULL;
                for (const char *p = t; (p = memmem(p, (size_t)(refusal - p), ">>> ", 4)); p += 4)
                        cmd = p + 4;
                /* with pipelining the RCPT refusals come after DATA, and
                 * DATA itself is refused for want of a recipient (503) */
                if (cmd && !strncmp(cmd, "data", 4) &&
                    (memmem(refusal, (size_t)(end - refusal), "<<< 503", 7) ||
                     memmem(refusal, (size_t)(end - refusal), "need rcpt", 9) ||
                     memmem(refusal, (size_t)(end - refusal), "no valid recipients", 19)))
                        return "RCPT";
                if (cmd) {
                        if (!strncmp(cmd, "rcpt", 4))
                                return "RCPT";
                        if (!strncmp(cmd, "data", 4) || !strncmp(cmd, ".", 1))
                                return "DATA";
                        if (!strncmp(cmd, "mail", 4))
                                return "MAIL";
                        if (!strncmp(cmd, "helo", 4) || !strncmp(cmd, "ehlo", 4))
                                return "HELO";
                }
        }
        for (size_t i = 0; i < N_ELEM(marks); i++)
                if (marks[i].command && memmem(t, sd->n, marks[i].phrase, strlen(marks[i].phrase)))
                        return marks[i].command;
        return NULL;
}

static bool command_is(const char *c, const char *const *list)
{
        return reason_is(c, list);
}

/* A reply whose address slot is empty ("550 : user unknown", "550: :
 * ..."): the refusal names no recipient, so no lookup of one gave it (a
 * filter answers so). */
static bool empty_slot(const struct said *sd)
{
        const char *t = sd->text;
        for (size_t i = 0; i + 5 < sd->n; i++) {
                if ((t[i] != '4' && t[i] != '5') || !is_digit(t[i + 1]) || !is_digit(t[i + 2]) ||
                    (i && is_word_char(t[i - 1])))
                        continue;
                size_t j = i + 3;
                if (t[j] == ':' || t[j] == '-')
                        j++;
                if (j + 2 < sd->n && t[j] == ' ' && t[j + 1] == ':' && (t[j + 2] == ' ' || j + 3 == sd->n))
                        return true;
        }
        return false;
}

/* An enhanced code of the addressing subject (x.1.x) about the
 * recipient (not x.1.7 and x.1.8, the sender's): it names the address,
 * whatever detail a vendor gave it (5.1.351, 5.1.10). */
static bool address_code(const char *status)
{
        if (!status || (status[0] != '4' && status[0] != '5') || strncmp(status + 1, ".1.", 3))
                return false;
        return strcmp(status + 4, "7") != 0 && strcmp(status + 4, "8") != 0;
}

static const char *const before_data[] = { "CONN", "HELO", "MAIL", "RCPT", NULL };

/* codes that say the mailbox is there but refuses, or that policy
 * refused: words of an unknown user do not make its address dead,
 * unless the refusal was plainly at RCPT */
static const char *const mailbox_exists[] = {
        "filtered", "suspend", "mailboxfull", "securityerror", "blocked", "policyviolation", "systemerror",
        NULL,
};

/* The reasons of the first pass, each by the code or the words, in the
 * order where the narrower reading wins. */
static const char *first_pass(const struct said *sd, const char *by_status, const char *command, bool coded,
                              bool address_code, bool notice_quote)
{
        if (says(sd, ph_local_program))
                return "mailererror";
        if (str_is(by_status, "mailboxfull") || says(sd, ph_mailboxfull))
                return "mailboxfull";
        if (str_is(by_status, "mesgtoobig") ||
            (!str_is(by_status, "exceedlimit") && says(sd, ph_mesgtoobig)))
                return "mesgtoobig";
        if (str_is(by_status, "exceedlimit"))
                return "exceedlimit";
        /* words of a disabled account, unless a permanent code says the
         * mailbox is not there (5.1.1: "inactive email address") */
        if (says(sd, ph_suspend) && !(address_code && str_is(by_status, "userunknown")))
                return "suspend";
        if (says(sd, ph_hasmoved))
                return "hasmoved";
        if (!command_is(command, (const char *const[]){ "CONN", "HELO", NULL }) && says(sd, ph_norelaying))
                return "norelaying";
        /* an unknown user: said by an address code, unless the words say
         * something narrower; said in words, only at RCPT (refused after
         * the data, the address was taken: a filter refused the mail) */
        if (says(sd, ph_list_refusal))
                return "rejected";
        /* access denied to what MAIL FROM named: our sender address */
        if (str_is(command, "MAIL") && says(sd, ph_access_denied) && !says(sd, ph_blocked))
                return "rejected";
        /* greylisting: the receiver's policy against senders it does not
         * know yet, whatever words it uses for the recipient */
        if (says(sd, ph_greylisting))
                return "blocked";
        /* a policy named as such (DMARC, the content's risk), whatever
         * words of access or blocking come with it */
        if (says(sd, ph_policy_named))
                return "policyviolation";
        /* a code of our sender's address (x.1.7, x.1.8), whatever the words */
        if (str_is(by_status, "rejected"))
                return "rejected";
        /* the domain named unknown, not a mailbox of it ("Domain does not
         * exist"), unless a code names the mailbox */
        if (!str_is(by_status, "userunknown") && says(sd, ph_hostunknown) &&
            !says(sd, ph_rejected) && !says(sd, ph_networkerror) && !says(sd, ph_dns_trouble))
                return "hostunknown";
        if (!str_is(by_status, "suspend")) {
                if (!command_is(command, (const char *const[]){ "MAIL", "DATA", NULL }) &&
                    says(sd, ph_recipient_denied) && !says(sd, ph_blocked) && !says(sd, ph_spamdetected) &&
                    !says(sd, ph_policy_named))
                        return "userunknown";
                if (empty_slot(sd) && says(sd, ph_userunknown))
                        return "filtered";
                /* refused in reply to DATA, the address had been taken at
                 * RCPT: whatever the code, a filter refused the mail */
                if (str_is(command, "DATA") && !str_is(by_status, "userunknown") && says(sd, ph_userunknown))
                        return "filtered";
                if (str_is(by_status, "userunknown")) {
                        /* unless the words name a narrower reason: a code of
                         * the recipient's address said about our sender, a
                         * block or a rate limit */
                        static const struct text_rule vetoes[] = {
                                { "norelaying", ph_norelaying }, { "rejected", ph_rejected },
                                { "toomanyconn", ph_toomanyconn }, { "blocked", ph_blocked },
                                { "blocked", ph_access_denied },
                                { "hasmoved", ph_hasmoved }, { "notaccept", ph_notaccept },
                                { "filtered", ph_filtered },
                        };
                        for (size_t i = 0; i < N_ELEM(vetoes); i++)
                                if (says(sd, vetoes[i].phrases))
                                        return says(sd, ph_userunknown) && (!strcmp(vetoes[i].reason, "blocked") ||
                                                                            !strcmp(vetoes[i].reason, "filtered")) ?
                                               "userunknown" : vetoes[i].reason;
                        return "userunknown";
                } else if ((str_is(command, "RCPT") ||
                            (!command && (address_code || (notice_quote ? !coded : !reason_is(by_status, mailbox_exists))))) &&
                           /* not where the words name our sender */
                           !says(sd, ph_rejected) &&
                           (says(sd, ph_userunknown) ||
                            /* Postfix's bare refusal of a recipient, at RCPT */
                            (str_is(command, "RCPT") && !reason_is(by_status, mailbox_exists) &&
                             says(sd, (const char *const[]){ "recipient address rejected", NULL })))) {
                        /* at RCPT, or where the report does not say (most
                         * MTAs check recipients there) */
                        return "userunknown";
                }
                if (str_is(by_status, "filtered")) {
                        if (says(sd, ph_userunknown) || says(sd, ph_filtered))
                                return "filtered";
                } else if (!command_is(command, before_data) &&
                           (says(sd, ph_filtered) || says(sd, ph_userunknown))) {
                        return "filtered";
                }
        }
        if ((str_is(command, "MAIL") || (str_is(command, "DATA") && !str_is(by_status, "userunknown")) ||
             !by_status || reason_is(by_status, (const char *const[]){ "onhold", "securityerror",
                                                                       "systemerror", NULL })) &&
            says(sd, ph_rejected))
                return "rejected";
        /* a lookup that answered that the domain takes no mail (a null
         * MX) is no trouble of the lookup */
        if (says(sd, ph_dns_trouble))
                return says(sd, ph_notaccept) ? "notaccept" : "networkerror";
        if ((str_is(by_status, "hostunknown") && !says(sd, ph_networkerror)) || says(sd, ph_hostunknown))
                return "hostunknown";
        if (!command_is(command, before_data) && says(sd, ph_spamdetected))
                return "spamdetected";
        if (str_is(by_status, "toomanyconn") || says(sd, ph_toomanyconn))
                return "toomanyconn";
        if (str_is(by_status, "blocked") || says(sd, ph_blocked) || says(sd, ph_access_denied))
                return "blocked";
        if (!by_status && !command_is(command, (const char *const[]){ "MAIL", "DATA", NULL }) &&
            says(sd, ph_check_address) && !bounce_reason_text(sd->text))
                return "userunknown";
        return NULL;
}

/* What the code names, made more precise by the words where it is vague. */
static const char *second_pass(const struct said *sd, const struct bounce_evidence *e,
                               const char *by_status, const char *command)
{
        static const struct text_rule order[] = {
                { "mailboxfull", ph_mailboxfull }, { "spamdetected", ph_spamdetected },
                { "securityerror", ph_securityerror }, { "policyviolation", ph_policyviolation },
                { "virusdetected", ph_virusdetected }, { "norelaying", ph_norelaying },
                { "systemerror", ph_systemerror }, { "networkerror", ph_networkerror },
                { "suspend", ph_suspend }, { "expired", ph_expired },
                { "contenterror", ph_contenterror }, { "systemfull", ph_systemfull },
                { "notaccept", ph_notaccept }, { "mailererror", ph_mailererror },
        };
        if (by_status && !reason_is(by_status, vague_reasons))
                return by_status;
        for (size_t i = 0; i < N_ELEM(order); i++)
                if (says(sd, order[i].phrases))
                        return order[i].reason;
        if (by_status)
                return by_status;
        const char *st = e->status;
        if (st && st[0] && st[1] == '.' && st[2] == '6')
                return "contenterror";
        if (st && st[0] && st[1] == '.' && st[2] == '7')
                return "securityerror";
        if (e->reply >= 400 && e->reply % 100 <= 7 && (e->reply / 10) % 10 == 0)
                return "syntaxerror";
        if (e->delayed)
                return "expired";
        if (command_is(command, (const char *const[]){ "HELO", "CONN", NULL }))
                return "blocked";
        return NULL;
}

enum bounce_kind bounce_classify(const struct bounce_evidence *e, const char **reason)
{
        const char *status = e->status && *e->status ? e->status : NULL;
        int code_class = status ? status[0] : e->reply >= 400 && e->reply < 600 ? '0' + e->reply / 100 : 0;
        if (status && status[0] == '2') {
                *reason = "delivered";
                return BOUNCE_UNKNOWN;
        }
        const char *by_status = bounce_reason_status(status);
        struct said sd, ctx;
        said_init(&sd, e->text);
        said_init(&ctx, e->context);
        const char *command = said_command(&sd);
        if (!command)
                command = said_command(&ctx);
        const char *r = first_pass(&sd, by_status, command, code_class != 0, address_code(status), e->notice);
        if (!r)
                r = second_pass(&sd, e, by_status, command);
        /* the words of the rest of the report, where the diagnostic and
         * the code said nothing */
        if (!r && ctx.n)
                r = first_pass(&ctx, NULL, command, code_class != 0, address_code(status), e->notice);
        if (!r && ctx.n)
                r = second_pass(&ctx, e, NULL, command);
        if (!r && (says(&sd, ph_vacation)))
                r = "vacation";
        if (!r)
                r = sd.n ? "onhold" : "undefined";
        /* a delay warning names the delivery's time running out, unless
         * its words name a narrower reason than trouble on the way */
        if (e->delayed && reason_is(r, (const char *const[]){ "systemerror", "onhold",
                                                               "undefined", NULL }))
                r = "expired";
        /* the sending MTA's own filing of the receiver's reply: it saw
         * the whole dialogue, the report only quotes a line of it; but it
         * never makes a refusal of us a dead address */
        if (e->mta_reason && !(reason_is(e->mta_reason, dead_reasons) && reason_is(r, sender_reasons)))
                r = e->mta_reason;
        /* our own relay denying a recipient by its access table: our
         * admin's policy (the relay takes any address of the world), not
         * the address's death */
        if (e->relay && str_is(r, "userunknown") && says(&sd, ph_recipient_denied))
                r = "blocked";
        /* refused in reply to MAIL FROM, before any recipient was named:
         * our sender was, never the address, whatever the words */
        if (str_is(command, "MAIL") && (reason_is(r, dead_reasons) || str_is(r, "filtered")))
                r = says(&sd, ph_blocked) ? "blocked" : "rejected";
        bool verifying = says(&sd, ph_verifying);
        free(sd.text);
        free(ctx.text);
        /* a dead-address reason needs a permanent code, or a notice that
         * gave up without quoting any */
        if (reason_is(r, dead_reasons) && !code_class && !e->failed)
                code_class = '4';
        /* the MTA gave up after the receiver kept answering with a code
         * of the address (4.1.1 no such mailbox, 4.1.2 no such domain)
         * that it is dead: dead all the same.  Not on words alone ("450
         * mailbox unavailable" is RFC 5321's busy mailbox), not while the
         * receiver had yet to verify it; a notaccept only with a 5xx. */
        if (code_class == '4' && e->failed && status &&
            (!strcmp(status, "4.1.1") || !strcmp(status, "4.1.2")) && reason_is(r, dead_reasons) &&
            !str_is(r, "notaccept") && !verifying)
                code_class = '5';
        *reason = r;
        return bounce_reason_class(r, code_class, e->delayed);
}
