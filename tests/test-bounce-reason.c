/*
 * test-bounce-reason.c - the one classifier (bounce_reason.c) on what
 * reports and relays say, and bounce_parse() on one short synthetic
 * message per shape of report: RFC 3464 DSNs, Exim, qmail (QSBMF),
 * Postfix and Sendmail without a DSN, Exchange, Amazon SES, auto-replies
 * (RFC 3834, X-Autoreply, subjects), ARF, and the encodings they come in
 * (quoted-printable, base64, ISO-8859-1 and ISO-2022-JP, RFC 2047
 * headers).  What matters most is tested first: a receiver refusing us is
 * never a dead address.
 */
#include <string.h>

#include "bounce.h"
#include "bounce_reason.h"
#include "log.h"
#include "mailparse.h"
#include "unit.h"

/* ---- the classifier on its own --------------------------------------- */

static enum bounce_kind judge(const char *status, int reply, const char *text, const char **reason)
{
        struct bounce_evidence e = { .status = status, .reply = reply, .text = text, .failed = true };
        return bounce_classify(&e, reason);
}

#define JUDGED(status, reply, text, kind_want, reason_want) do { \
                const char *r_; \
                enum bounce_kind k_ = judge(status, reply, text, &r_); \
                bool kind_ok_ = CHECK_INT(k_, kind_want); /* both checked, both reported */ \
                bool reason_ok_ = CHECK_STR(r_, reason_want); \
                if (!kind_ok_ || !reason_ok_) \
                        fprintf(stderr, "    text: %s\n", text); \
        } while (0)

static void test_refusals_of_us(void)
{
        /* blocklists, spam, policy, authentication: never the address's fault,
         * whatever code the receiver picks for it */
        JUDGED("5.7.1", 550, "550 5.7.1 Service unavailable; client host [192.0.2.1] blocked using "
               "zen.spamhaus.org", BOUNCE_SENDER, "blocked");
        JUDGED("5.7.1", 554, "554 5.7.1 Message rejected as spam by Content Filtering", BOUNCE_SENDER,
               "spamdetected");
        JUDGED("5.7.26", 550, "550-5.7.26 Unauthenticated email from example.org is not accepted due "
               "to domain's DMARC policy", BOUNCE_SENDER, "policyviolation");
        JUDGED("5.1.0", 550, "550 5.1.0 <b+1-x@news.example.org>: Sender address rejected: Domain not "
               "found", BOUNCE_SENDER, "rejected");
        JUDGED("5.1.1", 550, "550 5.1.1 <x@example.org> - 192.0.2.1 has sent to too many recipients this "
               "hour", BOUNCE_SENDER, "toomanyconn");
        JUDGED("5.7.1", 550, "550 5.7.1 Relay access denied", BOUNCE_SENDER, "norelaying");
        JUDGED("5.7.1", 550, "550 5.7.1 Our system has detected that this message is likely infected "
               "by a virus", BOUNCE_SENDER, "virusdetected");
        JUDGED("4.7.1", 450, "450 4.7.1 <x@example.org>: Recipient address rejected: Greylisted, try "
               "again later", BOUNCE_SENDER, "blocked");
        JUDGED(NULL, 554, "554 mx.example.org ESMTP not accepting connections", BOUNCE_SENDER, "blocked");
        /* the cause named wins over the verb of the refusal ("not allowed") */
        JUDGED(NULL, 550, "550 Unauthenticated senders not allowed", BOUNCE_SENDER, "securityerror");
        JUDGED(NULL, 550, "550 Ip frequency limited [Blocked IP 192.0.2.22]", BOUNCE_SENDER, "toomanyconn");
        JUDGED("5.2.1", 550, "550-5.2.1 The user you are trying to contact is receiving mail at a rate that "
               "prevents additional messages from being delivered", BOUNCE_SENDER, "toomanyconn");
        /* "Access denied" in reply to MAIL FROM: our sender address, unless
         * the words name our host */
        JUDGED("5.7.1", 550, "550 5.7.1 Access denied (in reply to MAIL FROM command)", BOUNCE_SENDER,
               "rejected");
        JUDGED("4.7.1", 450, ">>> MAIL From:<b@news.example.org>\n<<< 450 4.7.1 Access denied. IP name "
               "lookup failed [192.0.2.222]", BOUNCE_SENDER, "blocked");
        JUDGED("5.7.1", 550, "Connected to 192.0.2.225 but sender was rejected.\nRemote host said: 550 5.7.1 "
               "<b@news.example.org>... Access denied", BOUNCE_SENDER, "rejected");
        /* "Access denied" names no cause: what the refusal names was
         * denied, here the recipient address (Postfix's recipient access
         * table); the client host or the sender address is us */
        JUDGED("5.7.1", 550, "550 5.7.1 <policy@example.org>: Recipient address rejected: Access denied",
               BOUNCE_PERMANENT, "userunknown");
        JUDGED("5.7.1", 554, "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied",
               BOUNCE_SENDER, "blocked");
        JUDGED("5.7.1", 554, "554 5.7.1 <b@news.example.org>: Sender address rejected: Access denied",
               BOUNCE_SENDER, "rejected");
        /* ... but not with words of a refusal of us */
        JUDGED("5.7.1", 554, "554 5.7.1 <x@example.org>: Recipient address rejected: Access denied; client "
               "listed at zen.spamhaus.org", BOUNCE_SENDER, "blocked");
        /* our sender's domain unknown is about us, not the recipient's domain */
        JUDGED(NULL, 550, "550 <b@news.example.org>: Sender address rejected: Domain not found (in reply to "
               "RCPT TO command)", BOUNCE_SENDER, "rejected");
        JUDGED("5.1.8", 553, "553 5.1.8 Sender domain news.example.org does not exist", BOUNCE_SENDER,
               "rejected");
        /* a plea to check the address is no reason where words name one */
        JUDGED(NULL, 550, "550 Message rejected as spam. Please check the email address.", BOUNCE_SENDER,
               "spamdetected");
        JUDGED(NULL, 550, "Unable to deliver message. Please check the email address.", BOUNCE_PERMANENT,
               "userunknown");
        /* an address that reads like a reason is no reason */
        JUDGED(NULL, 550, "550 <quota@example.org>: Recipient address rejected: User unknown",
               BOUNCE_PERMANENT, "userunknown");
}

static void test_dead_addresses(void)
{
        JUDGED("5.1.1", 550, "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown in "
               "local recipient table (in reply to RCPT TO command)", BOUNCE_PERMANENT, "userunknown");
        JUDGED("5.1.1", 550, "550-5.1.1 The email account that you tried to reach does not exist.",
               BOUNCE_PERMANENT, "userunknown");
        JUDGED(NULL, 550, "550 Unknown user x@example.org", BOUNCE_PERMANENT, "userunknown");
        JUDGED("5.1.2", 550, "Host or domain name not found. Name service error for name=example.invalid",
               BOUNCE_PERMANENT, "hostunknown");
        JUDGED("5.1.6", 551, "551 User has moved; please try <y@example.net>", BOUNCE_PERMANENT,
               "hasmoved");
        JUDGED("5.1.10", 556, "556 5.1.10 Recipient address has null MX", BOUNCE_PERMANENT, "notaccept");
        /* the same words with a temporary code: not dead yet while the
         * MTA keeps trying; dead when it gave up after days of them */
        struct bounce_evidence e = { .status = "4.1.1", .reply = 450, .delayed = true,
                                     .text = "450 4.1.1 <x@example.org>: Recipient address rejected: "
                                             "User unknown" };
        const char *r;
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        CHECK_STR(r, "userunknown");
        e.delayed = false;
        e.failed = true;
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_PERMANENT);
        CHECK_STR(r, "userunknown");
        /* nor while the receiver had yet to verify the address, nor with
         * another code of the address subject */
        e.text = "450 4.1.1 <x@example.org>: Recipient address rejected: unverified address: Address "
                 "verification in progress";
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        e.status = "4.1.3";
        e.text = "450 4.1.3 <x@example.org>: User unknown";
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        /* not on words alone: 450 "mailbox unavailable" is a busy mailbox */
        e.status = "4.0.0";
        e.text = "450 Requested mail action not taken: mailbox unavailable";
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        /* but a null MX only with a permanent code */
        e.status = "4.1.10";
        e.text = "450 4.1.10 Recipient address has null MX";
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        CHECK_STR(r, "notaccept");
        /* refused after the data: the address was taken at RCPT, a filter
         * refused the mail */
        JUDGED(NULL, 550, "550 Unknown user x@example.org (in reply to end of DATA command)",
               BOUNCE_TEMPORARY, "filtered");
        /* a transcript with pipelining: the refusals came after DATA, but
         * DATA itself was refused for want of a recipient (503) */
        JUDGED("5.1.1", 550, ">>> DATA\n<<< 550 5.1.1 <x@example.org>... User Unknown\n"
               "<<< 503 5.0.0 Need RCPT (recipient)\n", BOUNCE_PERMANENT, "userunknown");
        JUDGED("5.5.0", 550, ">>> DATA\n<<< 550 5.5.0 Invalid recipient\n"
               "<<< 554 5.5.1 Error: no valid recipients\n", BOUNCE_PERMANENT, "userunknown");
        /* Exim names the command it was refused after */
        JUDGED("5.2.1", 550, "SMTP error from remote server after RCPT command:\n"
               "550 5.2.1 <x@example.org>... User Unknown", BOUNCE_PERMANENT, "userunknown");
        JUDGED(NULL, 550, "550 <x@example.org>: Recipient address rejected. (in reply to RCPT TO command)",
               BOUNCE_PERMANENT, "userunknown");
        /* a code of a mailbox that is there: the words do not make it dead */
        JUDGED("5.2.1", 550, "550 5.2.1 <x@example.org>... User Unknown", BOUNCE_TEMPORARY, "filtered");
        /* nor a code of the mail system's own trouble */
        JUDGED("5.3.0", 550, "5.3.0 - Other mail system problem 550-'Unknown user x@example.org'",
               BOUNCE_TEMPORARY, "filtered");
        /* a reply with its address slot left empty: no lookup of a
         * recipient gave it */
        JUDGED("5.0.0", 550, "550 : User unknown", BOUNCE_TEMPORARY, "filtered");
        JUDGED(NULL, 550, "Could not deliver to the following address. <x@example.org>: 550: : User unknown",
               BOUNCE_TEMPORARY, "filtered");
        /* qmail says how far the dialogue got */
        JUDGED(NULL, 550, "Sorry, no SMTP connection got far enough; most progress was RCPT TO response; "
               "remote host 192.0.2.9 said: 550 no such mailbox", BOUNCE_PERMANENT, "userunknown");
        /* an address code with a vendor's detail still names the address */
        JUDGED("5.1.351", 550, "550 5.1.351 Remote server returned unknown recipient",
               BOUNCE_PERMANENT, "userunknown");
        /* the recipient's own filter named beside an address code */
        JUDGED("5.1.1", 550, "550 5.1.1 XY-12 Refused due to recipient preferences", BOUNCE_TEMPORARY,
               "filtered");
        JUDGED("5.1.1", 550, "550 5.1.1 The mailbox does not exist; rejected by the recipient domain",
               BOUNCE_PERMANENT, "userunknown");
}

/* A plain notice quoting a bare reply of the host behind the reporting
 * MTA, without the command it answered: Sisimai's reading, a filter's
 * refusal, unless a code names the address. */
/* Rules that read the structure of what was said. */
static void test_structure(void)
{
        /* the resolver's TRY_AGAIN is a passing trouble, not a missing host */
        JUDGED(NULL, 0, "<x@example.org>: Name service error for domain example.org: Host not found, "
               "try again", BOUNCE_TEMPORARY, "networkerror");
        /* ... where its final answer is a missing host */
        JUDGED(NULL, 0, "<x@example.org>: Host or domain name not found. Name service error for "
               "name=example.org type=A: Host not found", BOUNCE_PERMANENT, "hostunknown");
        /* a lookup that answered: the domain takes no mail (null MX) */
        JUDGED("4.0.0", 0, "DNS Error: DNS type 'mx' lookup of example.org responded with code NOERROR "
               "The domain example.org doesn't receive email according to the administrator",
               BOUNCE_TEMPORARY, "notaccept");
        /* a mailbox disabled (x.2.1) is not a dead address, whatever the
         * prefix of the words */
        JUDGED("5.2.1", 550, "550-5.2.1 The email account that you tried to reach is inactive.",
               BOUNCE_TEMPORARY, "filtered");
        /* refused in reply to MAIL FROM: about our sender, whatever the
         * code of the address or the words of a missing one */
        JUDGED("5.1.0", 553, "SMTP error from remote mail server after MAIL FROM:<a@example.net> "
               "SIZE=1022: 553 5.1.0 example.net does not exist", BOUNCE_SENDER, "rejected");
        JUDGED("5.1.1", 550, "550 5.1.1 <a@example.net>: unknown user (in reply to MAIL FROM command)",
               BOUNCE_SENDER, "rejected");
        /* words of a disabled account under a code saying the mailbox is
         * not there: the code */
        JUDGED("5.1.1", 550, "550 5.1.1 <x@example.org>: inactive email address", BOUNCE_PERMANENT,
               "userunknown");
        JUDGED("5.2.1", 550, "550 5.2.1 <x@example.org>: inactive email address", BOUNCE_TEMPORARY,
               "suspend");
}

static void test_notice_quotes(void)
{
        struct bounce_evidence e = { .reply = 550, .text = "Server mx.example.org failed with: 550 "
                                     "<x@example.org> No such user here", .failed = true, .notice = true };
        const char *r;
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        CHECK_STR(r, "filtered");
        /* the reporting MTA's own words, without a reply it quotes */
        e.reply = 0;
        e.text = "The following recipient could not be reached: x@example.org The recipient name is "
                 "not recognized";
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_PERMANENT);
        CHECK_STR(r, "userunknown");
        /* an address code with the quote */
        e.status = "5.1.1";
        e.reply = 550;
        e.text = "failed with: 550 5.1.1 <x@example.org> No such user here";
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_PERMANENT);
        CHECK_STR(r, "userunknown");
}

static void test_passing_trouble(void)
{
        JUDGED("5.2.2", 552, "552 5.2.2 Mailbox full", BOUNCE_TEMPORARY, "mailboxfull");
        JUDGED("4.2.2", 452, "452 4.2.2 Over quota", BOUNCE_TEMPORARY, "mailboxfull");
        JUDGED("5.2.1", 550, "550 5.2.1 This mailbox has been suspended", BOUNCE_TEMPORARY, "suspend");
        JUDGED("4.4.7", 0, "delivery time expired", BOUNCE_TEMPORARY, "expired");
        JUDGED("4.4.1", 0, "connect to mx.example.org: Connection refused", BOUNCE_TEMPORARY,
               "networkerror");
        JUDGED("5.3.0", 550, "550 5.3.0 Local configuration error", BOUNCE_TEMPORARY, "systemerror");
        JUDGED(NULL, 0, "", BOUNCE_TEMPORARY, "undefined");
        JUDGED(NULL, 0, "something happened", BOUNCE_TEMPORARY, "onhold");
        JUDGED("2.0.0", 250, "250 2.0.0 Ok", BOUNCE_UNKNOWN, "delivered");
        JUDGED(NULL, 0, "Network error on destination MXs", BOUNCE_TEMPORARY, "networkerror");
        /* the program that was to deliver it failed, whatever the code */
        JUDGED("5.2.0", 550, "procmail: Lock failure on \"/var/mail/kai.lock\"", BOUNCE_TEMPORARY,
               "mailererror");
        JUDGED("5.1.1", 550, "procmail: Couldn't create \"/var/spool/mail/kai\"", BOUNCE_TEMPORARY,
               "mailererror");
        /* the domain unknown, not a mailbox of it; but a lookup's trouble
         * ("DNS Error ... NXDOMAIN" with a 4.x.x) stays a passing one */
        JUDGED(NULL, 0, "kai@nowhere.example: Domain does not exist", BOUNCE_PERMANENT, "hostunknown");
        JUDGED("4.0.0", 0, "DNS Error: DNS type 'mx' lookup of nowhere.example responded with code "
               "NXDOMAIN Domain name not found: nowhere.example", BOUNCE_TEMPORARY, "networkerror");
        /* a delay warning: the time to deliver running out, whatever
         * vague words of trouble come with it */
        struct bounce_evidence e = { .text = "Message will be retried for 2 more day(s). Technical details "
                                             "of temporary failure: socket error", .delayed = true };
        const char *r;
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        CHECK_STR(r, "expired");
        e.text = "Message will be retried. The recipient's mailbox is full";
        CHECK_INT(bounce_classify(&e, &r), BOUNCE_TEMPORARY);
        CHECK_STR(r, "mailboxfull");
}

static void test_relay_replies(void)
{
        /* the same rules judge the relay's own replies while sending */
        char status[16];
        const char *reason;
        CHECK_INT(bounce_relay_reply(550, "550 5.1.1 <ann@example.net>: Recipient address rejected: "
                                     "User unknown", "ann@example.net", status, &reason), BOUNCE_PERMANENT);
        CHECK_STR(reason, "userunknown");
        CHECK_STR(status, "5.1.1");
        CHECK_INT(bounce_relay_reply(554, "554 5.7.1 Service unavailable; Client host [192.0.2.1] "
                                     "blocked using bl.spamcop.net", "ann@example.net", status, &reason),
                  BOUNCE_SENDER);
        CHECK_STR(reason, "blocked");
        /* a 5xx without an enhanced code: at most temporary */
        CHECK_INT(bounce_relay_reply(550, "550 no such user here", "ann@example.net", status, &reason),
                  BOUNCE_TEMPORARY);
        CHECK_STR(reason, "userunknown");
        CHECK_INT(bounce_relay_reply(421, "421 4.3.2 Service shutting down", "ann@example.net", status,
                                     &reason), BOUNCE_UNKNOWN);
}

/* ---- messages of each shape ------------------------------------------ */

static struct bounce_info parse(const char *msg)
{
        struct bounce_info bi;
        size_t n = strlen(msg);
        char *copy = xmalloc(n ? n : 1);
        memcpy(copy, msg, n);
        CHECK_INT(bounce_parse(copy, n, NULL, NULL, &bi), 0);
        free(copy);
        return bi;
}

#define PARSED(msg, kind_want, reason_want, rcpt_want) do { \
                struct bounce_info bi_ = parse(msg); \
                bool ok_ = CHECK_INT(bi_.kind, kind_want); \
                ok_ &= CHECK_STR(bi_.reason, reason_want); \
                ok_ &= CHECK_STR(bi_.recipient, rcpt_want); \
                if (!ok_) \
                        fprintf(stderr, "    message: %.120s...\n", msg); \
        } while (0)

static void test_dsn_shapes(void)
{
        /* Postfix's DSN: the diagnostic and the command it answered */
        PARSED("From: MAILER-DAEMON@mx.example.net\n"
               "Subject: Undelivered Mail Returned to Sender\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
               "--B\nContent-Type: text/plain\n\nThis is the mail system at host mx.example.net.\n\n"
               "<ann@example.org>: host mx.example.org[192.0.2.1] said: 550 5.7.1 Service\n"
               "    unavailable; client host blocked using zen.spamhaus.org (in reply to RCPT TO command)\n"
               "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
               "Final-Recipient: rfc822; ann@example.org\nAction: failed\nStatus: 5.7.1\n"
               "Diagnostic-Code: smtp; 550 5.7.1 Service unavailable; client host blocked using\n"
               "    zen.spamhaus.org\n--B--\n",
               BOUNCE_SENDER, "blocked", "ann@example.org");
        /* a DSN naming two recipients: each judged apart, the mail's chosen */
        struct bounce_info bi = parse(
               "From: MAILER-DAEMON@mx.example.net\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
               "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
               "Final-Recipient: rfc822; full@example.org\nAction: failed\nStatus: 5.2.2\n"
               "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n\n"
               "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n"
               "Diagnostic-Code: smtp; 550 5.1.1 No such user\n--B--\n");
        CHECK_INT(bi.n_rcpts, 2);
        CHECK_STR(bi.recipient, "gone@example.org");   /* the one that says most */
        CHECK(bounce_info_select(&bi, "FULL@example.org"));
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "mailboxfull");
        CHECK_STR(bi.recipient, "full@example.org");
        CHECK(!bounce_info_select(&bi, "other@example.org"));
        CHECK_STR(bi.recipient, "full@example.org");
        /* the DSN of an X.400 gateway: a generic Status, the remote words */
        PARSED("From: postmaster@gw.example.net\nSubject: Delivery Status Notification (Failure)\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
               "--B\nContent-Type: message/delivery-status\n\n"
               "Final-Recipient: X400; /C=DE/O=Example/S=Beispiel/\n"
               "Original-Recipient: rfc822; jo@example.de\nAction: failed\nStatus: 5.0.0\n"
               "Diagnostic-Code: X400; 1 (unable-to-transfer) 550 5.1.1 recipient unknown\n--B--\n",
               BOUNCE_PERMANENT, "userunknown", "jo@example.de");
        /* a delayed DSN: it keeps trying */
        PARSED("From: MAILER-DAEMON@mx.example.net\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
               "--B\nContent-Type: message/delivery-status\n\n"
               "Final-Recipient: rfc822; slow@example.org\nAction: delayed\nStatus: 4.4.1\n"
               "Diagnostic-Code: smtp; connect to mx.example.org: Connection timed out\n--B--\n",
               BOUNCE_TEMPORARY, "expired", "slow@example.org");
}

static void test_notice_shapes(void)
{
        /* Exim: X-Failed-Recipients, the SMTP error quoted */
        PARSED("From: Mail Delivery System <Mailer-Daemon@mx.example.net>\n"
               "Subject: Mail delivery failed: returning message to sender\n"
               "X-Failed-Recipients: lea@example.com\n\n"
               "This message was created automatically by mail delivery software.\n\n"
               "A message that you sent could not be delivered to one or more of its\n"
               "recipients. This is a permanent error. The following address(es) failed:\n\n"
               "  lea@example.com\n    host mx.example.com [192.0.2.7]\n"
               "    SMTP error from remote mail server after RCPT TO:<lea@example.com>:\n"
               "    550 5.1.1 <lea@example.com>: Recipient address rejected: User unknown\n",
               BOUNCE_PERMANENT, "userunknown", "lea@example.com");
        /* qmail's QSBMF */
        PARSED("From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\n\n"
               "Hi. This is the qmail-send program at mx.example.net.\n"
               "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
               "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
               "<old@example.com>:\n192.0.2.3 does not like recipient.\n"
               "Remote host said: 554 5.7.1 <old@example.com>: Relay access denied\n"
               "Giving up on 192.0.2.3.\n\n--- Below this line is a copy of the message.\n\n"
               "Subject: hi\n\nhello\n",
               BOUNCE_SENDER, "norelaying", "old@example.com");
        /* Postfix without a DSN (old versions, or notify_classes) */
        PARSED("From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
               "Subject: Undelivered Mail Returned to Sender\n\n"
               "This is the Postfix program at host mx.example.net.\n\n"
               "I'm sorry to have to inform you that your message could not\n"
               "be delivered to one or more recipients.\n\n"
               "<box@example.org>: host mx.example.org[192.0.2.9] said: 552 5.2.2 Mailbox\n"
               "    full (in reply to RCPT TO command)\n",
               BOUNCE_TEMPORARY, "mailboxfull", "box@example.org");
        /* Sendmail: the reason in the Subject, the transcript */
        PARSED("From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\n"
               "Subject: Returned mail: see transcript for details\n\n"
               "The original message was received at Mon, 7 Dec 2026 10:00:00 GMT\n\n"
               "   ----- The following addresses had permanent fatal errors -----\n"
               "<nobody@example.org>\n    (reason: 550 5.1.1 <nobody@example.org>... User unknown)\n\n"
               "   ----- Transcript of session follows -----\n... while talking to mx.example.org.:\n"
               ">>> RCPT To:<nobody@example.org>\n<<< 550 5.1.1 <nobody@example.org>... User unknown\n",
               BOUNCE_PERMANENT, "userunknown", "nobody@example.org");
        /* a Sendmail transcript of several hosts: each recipient by its own
         * line, not by what another host said */
        struct bounce_info bi = parse(
               "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\n"
               "Subject: Returned mail: Host unknown\n\n"
               "   ----- Transcript of session follows -----\n"
               "554 <kim@example.edu>... Remote protocol error: Connection reset by peer\n"
               "550 example.org (smtp)... 550 Host unknown\n"
               "554 <lou@example.org>... 550 Host unknown (Authoritative answer from name server)\n");
        CHECK(bounce_info_select(&bi, "kim@example.edu"));
        CHECK_INT(bi.kind, BOUNCE_TEMPORARY);
        CHECK_STR(bi.reason, "networkerror");
        CHECK(bounce_info_select(&bi, "lou@example.org"));
        CHECK_INT(bi.kind, BOUNCE_PERMANENT);
        CHECK_STR(bi.reason, "hostunknown");
        /* Exchange 2003: no code, its own words */
        PARSED("From: System Administrator <postmaster@example.jp>\nSubject: Undeliverable: hello\n\n"
               "Your message\n\n  To:      kai@example.jp\n  Subject: hello\n\n"
               "did not reach the following recipient(s):\n\n"
               "kai@example.jp on Mon, 7 Dec 2026 10:00:00 +0000\n"
               "    The recipient name is not recognized\n",
               BOUNCE_PERMANENT, "userunknown", "kai@example.jp");
        /* a gateway's own words asking to check the address, no code */
        PARSED("From: postmaster@gw.example.jp\nSubject: Mail could not be delivered\n\n"
               "****** Message from the mail gateway ******\n"
               "Unable to deliver message to <kai@example.jp>. Please check if address is correct.\n",
               BOUNCE_PERMANENT, "userunknown", "kai@example.jp");
        /* Gmail's warning: late, not lost, though it says "failure" */
        PARSED("From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
               "Subject: Delivery Status Notification (Delay)\n\n"
               "This is an automatically generated Delivery Status Notification\n\n"
               "THIS IS A WARNING MESSAGE ONLY.\n\nYOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\n"
               "Delivery to the following recipient has been delayed:\n\n     kai@example.jp\n\n"
               "Message will be retried for 2 more day(s)\n\n"
               "Technical details of temporary failure:\n"
               "The recipient server did not accept our requests to connect.\n",
               BOUNCE_TEMPORARY, "expired", "kai@example.jp");
        /* a person writing about a failure is no report */
        PARSED("From: friend@example.org\nSubject: your mail\n\n"
               "Your mail to x@example.net could not be delivered: 550 5.1.1 user unknown\n",
               BOUNCE_UNKNOWN, "undefined", "");
}

static void test_other_formats(void)
{
        /* Amazon SES as SNS mails it: JSON, long lines wrapped */
        PARSED("From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n"
               "Content-Type: text/plain; charset=UTF-8\n\n"
               "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bouncedRecipie\n"
               " nts\":[{\"emailAddress\":\"ses@example.org\",\"action\":\"failed\",\"status\":\"5.1.1\",\n"
               " \"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"}]},\"mail\":{}}\n\n--\nIf you wish to "
               "stop receiving notifications from this topic, ...\n",
               BOUNCE_PERMANENT, "userunknown", "ses@example.org");
        PARSED("From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n"
               "{\"notificationType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":"
               "[{\"emailAddress\":\"angry@example.org\"}],\"complaintFeedbackType\":\"abuse\"}}\n",
               BOUNCE_COMPLAINT, "feedback", "angry@example.org");
        PARSED("From: no-reply@sns.amazonaws.com\nSubject: AWS Notification Message\n\n"
               "{\"notificationType\":\"Delivery\",\"delivery\":{\"recipients\":[\"ok@example.org\"]}}\n",
               BOUNCE_UNKNOWN, "delivered", "ok@example.org");
        /* ARF */
        PARSED("From: feedback@example.net\nSubject: FW: news\n"
               "Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\n\n"
               "--F\nContent-Type: text/plain\n\nA complaint\n"
               "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n"
               "Original-Rcpt-To: reader@example.org\n--F--\n",
               BOUNCE_COMPLAINT, "feedback", "reader@example.org");
}

static void test_autoreplies(void)
{
        PARSED("From: ann@example.org\nSubject: Re: news\nAuto-Submitted: auto-replied\n\n"
               "I am out of the office until Monday.\n", BOUNCE_UNKNOWN, "vacation", "");
        PARSED("From: ann@example.org\nSubject: Abwesenheitsnotiz\nX-Autoreply: yes\n\nBin weg.\n",
               BOUNCE_UNKNOWN, "vacation", "");
        PARSED("From: ann@example.org\nSubject: Out of Office: news\n\nAway.\n", BOUNCE_UNKNOWN,
               "vacation", "");
        PARSED("From: ann@example.org\nSubject: news\nPrecedence: auto_reply\n\nAway.\n", BOUNCE_UNKNOWN,
               "vacation", "");
        /* an MTA's report that an auto-responder sent is still a report */
        PARSED("From: MAILER-DAEMON@mx.example.net\nAuto-Submitted: auto-replied\n"
               "Subject: Undelivered Mail Returned to Sender\n\n"
               "<gone@example.org>: host mx.example.org said: 550 5.1.1 User unknown\n"
               "    (in reply to RCPT TO command)\n", BOUNCE_PERMANENT, "userunknown", "gone@example.org");
}

static void test_encodings(void)
{
        /* quoted-printable, a soft line break inside the diagnostic */
        PARSED("From: MAILER-DAEMON@mx.example.net\nSubject: Undeliverable\n"
               "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: quoted-printable\n\n"
               "Delivery to the following recipient failed permanently:\n\n     qp@example.org\n\n"
               "550 5.1.1 The email account that you tried to reach does not ex=\nist.\n",
               BOUNCE_PERMANENT, "userunknown", "qp@example.org");
        /* base64 */
        PARSED("From: MAILER-DAEMON@mx.example.net\nSubject: Undeliverable\n"
               "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
               /* "Delivery failed: b64@example.org: 552 5.2.2 mailbox is full\n" */
               "RGVsaXZlcnkgZmFpbGVkOiBiNjRAZXhhbXBsZS5vcmc6IDU1MiA1LjIuMiBtYWlsYm94IGlzIGZ1bGwK\n",
               BOUNCE_TEMPORARY, "mailboxfull", "b64@example.org");
        /* ISO-8859-1: "Ihre Nachricht konnte nicht zugestellt werden ... Empfänger
         * unbekannt" around an English code line */
        PARSED("From: MAILER-DAEMON@mx.example.de\nSubject: Unzustellbar\n"
               "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
               "Ihre Nachricht konnte nicht zugestellt werden (delivery failed).\n"
               "Empf\xe4nger: de@example.de\n550 5.1.1 user unknown\n",
               BOUNCE_PERMANENT, "userunknown", "de@example.de");
        /* ISO-2022-JP text: "存在しません" (does not exist) */
        PARSED("From: postmaster@example.jp\nSubject: Undeliverable message\n"
               "Content-Type: text/plain; charset=ISO-2022-JP\n\n"
               "Delivery failed:\njp@example.jp\n\x1b$BB8:_$7$^$;$s\x1b(B\n",
               BOUNCE_PERMANENT, "userunknown", "jp@example.jp");
        /* RFC 2047 in the Subject, which names the reason (Sendmail) */
        PARSED("From: MAILER-DAEMON@mx.example.net\n"
               "Subject: =?iso-8859-1?Q?Returned_mail:_User_unknown?=\n\n"
               "   ----- The following addresses had permanent fatal errors -----\n<sub@example.org>\n",
               BOUNCE_PERMANENT, "userunknown", "sub@example.org");
}

int main(void)
{
        mailparse_init();
        RUN(test_refusals_of_us);
        RUN(test_dead_addresses);
        RUN(test_notice_quotes);
        RUN(test_structure);
        RUN(test_passing_trouble);
        RUN(test_relay_replies);
        RUN(test_dsn_shapes);
        RUN(test_notice_shapes);
        RUN(test_other_formats);
        RUN(test_autoreplies);
        RUN(test_encodings);
        return unit_finish();
}
