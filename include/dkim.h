/* DKIM signatures on outgoing mail (RFC 6376; rsa-sha256 and, RFC 8463,
 * ed25519-sha256; relaxed/relaxed) and key generation for admins.  Signing
 * is a leaf: no I/O.  Loading and generating keys touch one file each. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

/* A selector and its private key (opaque).  Read-only once loaded: several
 * threads may sign with the same keys at once; free it only when no thread
 * signs with it any more. */
struct dkim_key;

enum dkim_result {
        DKIM_OK = 0,
        DKIM_KEY_UNREADABLE,    /* missing, not a regular file, too big, no PEM private key in it */
        DKIM_KEY_PERMISSIONS,   /* group or others may read or write it (mode & 077) */
        DKIM_KEY_TYPE,          /* neither RSA nor Ed25519 (or RSA over DKIM_RSA_BITS_MAX) */
        DKIM_KEY_TOO_SHORT,     /* RSA under DKIM_RSA_BITS_MIN bits (RFC 8301) */
        DKIM_BAD_MESSAGE,       /* not "headers CRLF body" with CRLF line ends only */
};

#define DKIM_RSA_BITS_MIN       2048
#define DKIM_RSA_BITS_MAX       4096    /* what RFC 8301 verifiers must handle */
#define DKIM_KEY_FILE_MAX       16384   /* a PEM key file, bytes */
/* Instances of one signed header field name a message may carry; more (the
 * over-signed h= list would grow without bound) is DKIM_BAD_MESSAGE. */
#define DKIM_FIELD_REPEAT_MAX   16
/* Room for the TXT record dkim_keygen() writes ("v=DKIM1; k=rsa; p=" and
 * the base64 of a 2048-bit key's SubjectPublicKeyInfo is 410 bytes). */
#define DKIM_TXT_MAX            512

/* Load a PEM private key (PKCS#8 or traditional; unencrypted) for signing
 * as `selector` for `domain` (both LDH DNS names, ASCII).  Returns 0, a
 * positive enum dkim_result, or -EINVAL when domain or selector is not a
 * DNS name.  `err` gets a one-line reason (never key material). */
int dkim_key_load(const char *path, const char *domain, const char *selector,
                  struct dkim_key **out, char *err, size_t errlen);
void dkim_key_free(struct dkim_key *k);          /* accepts NULL */
const char *dkim_key_selector(const struct dkim_key *k);
const char *dkim_key_domain(const struct dkim_key *k);
bool dkim_key_is_ed25519(const struct dkim_key *k);

/* Sign a complete message (header fields, an empty line, the body; CRLF
 * line ends only, no NUL) with each key: appends one folded, CRLF-terminated
 * "DKIM-Signature:" field per key to `out`, to be put in front of the
 * message as it is (t= is `now`).  Returns 0, DKIM_BAD_MESSAGE, -ENOBUFS
 * when `out`'s cap is reached, -EINVAL when now < 0, or -EIO when OpenSSL
 * fails; on error `out` keeps its old length.  The body hash is computed
 * once for all keys.  Never logs: List-Unsubscribe carries tokens. */
int dkim_sign(struct dkim_key *const *keys, size_t n_keys, time_t now,
              const char *msg, size_t len, struct buf *out);

/* Generate an RSA 2048 or Ed25519 key, write it as PKCS#8 PEM to `path`
 * (created with O_EXCL and mode 0600: an existing file is never touched),
 * and put the TXT record value to publish at SELECTOR._domainkey.DOMAIN
 * into dns_txt ("v=DKIM1; k=rsa; p=..." or "v=DKIM1; k=ed25519; p=...";
 * an RSA record is over 255 bytes and must go into DNS as several strings).
 * Returns 0 or -errno (-EEXIST, -ENOBUFS when dns_len < the record, -EIO
 * when OpenSSL fails); `err` gets a one-line reason. */
int dkim_keygen(const char *path, bool ed25519, char *dns_txt, size_t dns_len,
                char *err, size_t errlen);

/* Pieces, exposed for tests and for fuzzers. */
/* Relaxed canonical form (RFC 6376 3.4.2) of one header field as it stands
 * in the message (name, colon, value with its folds; no final CRLF):
 * "name:value\r\n" appended to out. */
void dkim_canon_header(const char *field, size_t n, struct buf *out);
/* Relaxed canonical form (RFC 6376 3.4.4) of a body with CRLF line ends,
 * appended to out (an empty body, or one of empty lines only, gives ""). */
void dkim_canon_body(const char *body, size_t n, struct buf *out);
