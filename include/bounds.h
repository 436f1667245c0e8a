/* Every limit on outside input and on resources, in one place. */
#pragma once

/* One request line on the public socket (the website), newline included. */
#define PUBLIC_LINE_MAX         4096
/* One request line on the admin socket: carries newsletter bodies. */
#define ADMIN_LINE_MAX          (16u << 20)
/* A request line longer than this gives its memory back to the system once
 * it is answered (parsed JSON is many small allocations the heap keeps). */
#define REQUEST_TRIM_BYTES      (1u << 20)
/* Answers a client has not read yet; past this we stop reading its requests. */
#define OUTBUF_HIGH_WATER       (256u << 10)
/* Open client connections in total; one more is answered and closed. */
#define CONN_MAX                1024
/* Open connections of one peer uid (a web server's workers share one). */
#define CONN_PER_UID_MAX        512
/* A connection with nothing to do for this long is closed. */
#define CONN_IDLE_TIMEOUT_USEC  (300ull * 1000000ull)
/* A request line must be complete this long after its first byte arrived
 * (the clock runs only while we read: not while answers wait to be taken). */
#define CONN_READ_TIMEOUT_USEC  (10ull * 1000000ull)
/* Answers the client takes nothing of for this long: it is closed. */
#define CONN_WRITE_TIMEOUT_USEC (60ull * 1000000ull)

/* Request fields (bytes, UTF-8) */
#define NAME_MAX_BYTES          200
#define USER_AGENT_MAX_BYTES    512
#define LIST_NAME_MAX_BYTES     64
#define TOKEN_TEXT_MAX_BYTES    128
#define CONSENT_TEXT_MAX_BYTES  2000
/* A solved challenge (base64 of a JSON object of some 300 bytes) */
#define ALTCHA_PAYLOAD_MAX_BYTES 1024

/* RFC 5321 4.5.3.1 */
#define ADDR_LOCAL_MAX          64
#define ADDR_DOMAIN_MAX         255
#define ADDR_PATH_MAX           254
/* What we accept before validation even starts (UTF-8 domain may be longer
 * than its A-label form, but not by this much). */
#define ADDR_INPUT_MAX          1024

/* Mail texts */
#define TEMPLATE_MAX_BYTES      (64u << 10)
#define MAIL_LINE_MAX           998     /* RFC 5322 2.1.1, without CRLF */
#define SMTP_REPLY_MAX          256     /* kept per mail */

/* Outbox scheduling */
#define JOBS_PER_SENDER         8       /* claimed ahead per sender thread */
#define CLAIM_BATCH_MAX         256     /* rows claimed per query */
#define SENDER_MAX              64      /* [smtp] max_connections cap */
/* While no relay can be reached, one probe connection after this many
 * seconds (at most retry_initial), doubling up to RELAY_PROBE_MAX (at most
 * retry_max): a probe costs one refused connection, and a relay back after
 * a restart should not wait a mail's retry time */
#define RELAY_PROBE_FIRST       5
#define RELAY_PROBE_MAX         60

/* Config file */
#define CONFIG_LINE_MAX         4096
#define CONFIG_ERRORS_MAX       50
