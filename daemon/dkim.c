/*
 * dkim.c - DKIM signatures on outgoing mail (RFC 6376) with OpenSSL:
 * rsa-sha256 and ed25519-sha256 (RFC 8463), relaxed/relaxed, the signed
 * header fields over-signed so that none can be added in transit; and the
 * private keys: loading them (refusing keys others may read, short RSA keys
 * and other key types) and generating new ones with their DNS record.
 * Owns the loaded keys.  Signing does no I/O and never fails on a message
 * the mail builder made; it must never log, print or copy key material, and
 * never write over an existing file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base64.h"
#include "bounds.h"
#include "dkim.h"
#include "log.h"
#include "textutil.h"

struct dkim_key {
        EVP_PKEY *pkey;
        bool ed25519;
        char *domain;
        char *selector;
};

/* Header fields signed when present, each listed once more than it occurs;
 * those marked `absent` are also listed once when missing, so that a
 * later-added one breaks the signature (RFC 6376 8.15, RFC 8058 4). */
static const struct {
        const char *name;       /* lower case, as it goes into h= */
        bool absent;
} signed_fields[] = {
        { "from", true },
        { "to", true },
        { "subject", true },
        { "date", true },
        { "message-id", true },
        { "mime-version", true },
        { "content-type", true },
        { "content-transfer-encoding", false },
        { "list-id", true },
        { "list-unsubscribe", true },
        { "list-unsubscribe-post", true },
        { "auto-submitted", false },
        { "reply-to", false },
        { "sender", false },
        { "cc", false },
};
#define N_SIGNED (sizeof(signed_fields) / sizeof(signed_fields[0]))

#define FOLD_AT         78      /* RFC 5322 2.1.1 "SHOULD" line length */
#define SIG_MAX         512     /* signature bytes: RSA 4096 */
#define SIG_FIELD_MAX   8192    /* one DKIM-Signature field, folded: h= may list 255 names */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;
        if (!err || errlen == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
}

/* ---- canonicalisation (RFC 6376 3.4.2, 3.4.4) ---- */

/* Canonical body data goes to a buffer (tests) or into a digest (signing)
 * through a small staging area, so a body of short words does not turn
 * into one digest update per word. */
struct sink {
        struct buf *out;
        EVP_MD_CTX *md;
        bool failed;
        size_t used;
        char stage[4096];
};

static void sink_flush(struct sink *s)
{
        if (s->used == 0)
                return;
        if (s->out)
                buf_append(s->out, s->stage, s->used);
        else if (EVP_DigestUpdate(s->md, s->stage, s->used) != 1)
                s->failed = true;
        s->used = 0;
}

static void sink_put(struct sink *s, const char *p, size_t n)
{
        while (n > 0) {
                if (s->used == sizeof(s->stage))
                        sink_flush(s);
                size_t take = sizeof(s->stage) - s->used;
                if (take > n)
                        take = n;
                memcpy(s->stage + s->used, p, take);
                s->used += take;
                p += take;
                n -= take;
        }
}

/* One line without its CRLF: runs of WSP become one SP, WSP at the end
 * goes.  Returns whether anything is left (an "empty line" otherwise). */
static bool canon_body_line(const char *p, size_t n, struct sink *s, size_t *empty_lines)
{
        size_t i = 0;
        bool any = false;
        while (i < n) {
                size_t ws = i;
                while (i < n && is_wsp(p[i]))
                        i++;
                if (i == n)
                        break;          /* trailing WSP */
                size_t start = i;
                while (i < n && !is_wsp(p[i]))
                        i++;
                if (!any) {
                        /* the empty lines before this one were not trailing */
                        for (; *empty_lines > 0; (*empty_lines)--)
                                sink_put(s, "\r\n", 2);
                        any = true;
                }
                if (start > ws)
                        sink_put(s, " ", 1);
                sink_put(s, p + start, i - start);
        }
        if (any)
                sink_put(s, "\r\n", 2);
        else
                (*empty_lines)++;
        return any;
}

static void canon_body(const char *body, size_t n, struct sink *s)
{
        size_t empty_lines = 0, i = 0;
        while (i < n) {
                const char *crlf = memmem(body + i, n - i, "\r\n", 2);
                size_t end = crlf ? (size_t)(crlf - body) : n;
                /* a last line without CRLF gets one (3.4.4 b) */
                canon_body_line(body + i, end - i, s, &empty_lines);
                i = crlf ? end + 2 : n;
        }
        /* the empty lines still counted are the trailing ones: dropped */
}

void dkim_canon_body(const char *body, size_t n, struct buf *out)
{
        struct sink s = { .out = out };
        canon_body(body, n, &s);
        sink_flush(&s);
}

void dkim_canon_header(const char *field, size_t n, struct buf *out)
{
        const char *colon = memchr(field, ':', n);
        size_t name_len = colon ? (size_t)(colon - field) : n;

        while (name_len > 0 && is_wsp(field[name_len - 1]))
                name_len--;
        for (size_t i = 0; i < name_len; i++)
                buf_putc(out, ascii_lower(field[i]));
        buf_putc(out, ':');
        if (colon) {
                /* unfold (drop CRLF), runs of WSP to one SP, none at either end */
                bool pending = false, any = false;
                for (size_t i = (size_t)(colon - field) + 1; i < n; i++) {
                        char c = field[i];
                        if (c == '\r' && i + 1 < n && field[i + 1] == '\n') {
                                i++;
                                continue;
                        }
                        if (is_wsp(c)) {
                                pending = true;
                                continue;
                        }
                        if (pending && any)
                                buf_putc(out, ' ');
                        pending = false;
                        any = true;
                        buf_putc(out, c);
                }
        }
        buf_append(out, "\r\n", 2);
}

/* ---- the message ---- */

struct field {
        const char *p;          /* "Name: value" with its folds, no final CRLF */
        size_t n;
};

struct parsed {
        /* the present instances of each signed field name, in message order */
        struct field fields[N_SIGNED][DKIM_FIELD_REPEAT_MAX];
        size_t count[N_SIGNED];
        const char *body;
        size_t body_len;
};

static int signed_index(const char *name, size_t n)
{
        for (size_t i = 0; i < N_SIGNED; i++) {
                const char *s = signed_fields[i].name;
                if (strlen(s) != n)
                        continue;
                size_t k = 0;
                while (k < n && ascii_lower(name[k]) == s[k])
                        k++;
                if (k == n)
                        return (int)i;
        }
        return -1;
}

/* Line ends are CRLF and nothing else; no NUL anywhere. */
static bool crlf_only(const char *m, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                if (m[i] == '\0' || m[i] == '\n')
                        return false;
                if (m[i] == '\r') {
                        if (i + 1 >= len || m[i + 1] != '\n')
                                return false;
                        i++;
                }
        }
        return true;
}

static int parse_message(const char *m, size_t len, struct parsed *pm)
{
        size_t i = 0;

        memset(pm->count, 0, sizeof(pm->count));
        if (!crlf_only(m, len))
                return DKIM_BAD_MESSAGE;
        for (;;) {
                if (len - i < 2)
                        return DKIM_BAD_MESSAGE;        /* no empty line */
                if (m[i] == '\r')
                        break;                          /* CRLF: end of the header */
                if (is_wsp(m[i]))
                        return DKIM_BAD_MESSAGE;        /* a fold with no field */
                size_t start = i, name_end;
                while (i < len && m[i] != ':' && m[i] > 32 && m[i] < 127)
                        i++;
                name_end = i;
                while (i < len && is_wsp(m[i]))
                        i++;
                if (name_end == start || i >= len || m[i] != ':')
                        return DKIM_BAD_MESSAGE;
                /* the field ends at the first CRLF not followed by WSP */
                for (;;) {
                        const char *crlf = memmem(m + i, len - i, "\r\n", 2);
                        if (!crlf)
                                return DKIM_BAD_MESSAGE;
                        i = (size_t)(crlf - m) + 2;
                        if (i >= len || !is_wsp(m[i]))
                                break;
                }
                int k = signed_index(m + start, name_end - start);
                if (k >= 0) {
                        if (pm->count[k] == DKIM_FIELD_REPEAT_MAX)
                                return DKIM_BAD_MESSAGE;
                        pm->fields[k][pm->count[k]++] = (struct field){ m + start, i - 2 - start };
                }
        }
        pm->body = m + i + 2;
        pm->body_len = len - i - 2;
        return 0;
}

/* ---- the DKIM-Signature field ---- */

/* Appends tokens to a header field, folding ("CRLF SP") before a token
 * that would take the line past FOLD_AT. */
struct folder {
        struct buf *b;
        size_t col;
};

static void fold_token(struct folder *f, const char *tok, size_t n, bool space)
{
        size_t need = n + (space ? 1 : 0);
        if (f->col + need > FOLD_AT && f->col > 1) {
                buf_append(f->b, "\r\n ", 3);
                f->col = 1;
        } else if (space) {
                buf_putc(f->b, ' ');
                f->col++;
        }
        buf_append(f->b, tok, n);
        f->col += n;
}

/* A base64 value, split across lines wherever it reaches FOLD_AT (FWS may
 * go anywhere inside b= and bh=, RFC 6376 3.5). */
static void fold_base64(struct folder *f, const char *s, size_t n)
{
        while (n > 0) {
                if (f->col >= FOLD_AT) {
                        buf_append(f->b, "\r\n ", 3);
                        f->col = 1;
                }
                size_t take = FOLD_AT - f->col;
                if (take > n)
                        take = n;
                buf_append(f->b, s, take);
                f->col += take;
                s += take;
                n -= take;
        }
}

/* Everything of the field up to and including "b=": the part the
 * signature covers (RFC 6376 3.7: b= empty, no final CRLF). */
static void sig_field_head(const struct dkim_key *k, time_t now, const struct parsed *pm,
                           const char *bh, struct folder *f)
{
        char tok[320];
        int n;

        buf_puts(f->b, "DKIM-Signature:");
        f->col = sizeof("DKIM-Signature:") - 1;
        fold_token(f, "v=1;", 4, true);
        n = snprintf(tok, sizeof(tok), "a=%s;", k->ed25519 ? "ed25519-sha256" : "rsa-sha256");
        fold_token(f, tok, (size_t)n, true);
        fold_token(f, "c=relaxed/relaxed;", 18, true);
        n = snprintf(tok, sizeof(tok), "d=%s;", k->domain);
        fold_token(f, tok, (size_t)n, true);
        n = snprintf(tok, sizeof(tok), "s=%s;", k->selector);
        fold_token(f, tok, (size_t)n, true);
        n = snprintf(tok, sizeof(tok), "t=%lld;", (long long)now);
        fold_token(f, tok, (size_t)n, true);

        /* h=: present fields once more than they occur, absent ones once */
        size_t listed = 0, total = 0;
        for (size_t i = 0; i < N_SIGNED; i++)
                total += pm->count[i] ? pm->count[i] + 1 : signed_fields[i].absent;
        for (size_t i = 0; i < N_SIGNED; i++) {
                size_t times = pm->count[i] ? pm->count[i] + 1 : signed_fields[i].absent;
                for (size_t t = 0; t < times; t++, listed++) {
                        n = snprintf(tok, sizeof(tok), "%s%s%s", listed ? ":" : "h=",
                                     signed_fields[i].name, listed + 1 == total ? ";" : "");
                        fold_token(f, tok, (size_t)n, listed == 0);
                }
        }
        n = snprintf(tok, sizeof(tok), "bh=%s;", bh);
        fold_token(f, tok, (size_t)n, true);
        /* start b= on a new line unless a fair part of the value fits */
        if (f->col + 3 + 16 > FOLD_AT) {
                buf_append(f->b, "\r\n b=", 5);
                f->col = 3;
        } else {
                fold_token(f, "b=", 2, true);
        }
}

/* The header data the signature covers: each signed field as h= names it
 * (instances from the bottom up, RFC 6376 5.4.2), canonicalised; a listed
 * name with no instance left contributes nothing. */
static void signed_headers_canon(const struct parsed *pm, struct buf *out)
{
        for (size_t i = 0; i < N_SIGNED; i++)
                for (size_t t = pm->count[i]; t > 0; t--)
                        dkim_canon_header(pm->fields[i][t - 1].p, pm->fields[i][t - 1].n, out);
}

static int sign_data(const struct dkim_key *k, const struct buf *hdrs, const struct buf *self,
                     unsigned char *sig, size_t *sig_len)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ret = -EIO;

        if (!ctx)
                oom();
        if (k->ed25519) {
                /* RFC 8463 3: PureEdDSA over the SHA-256 of the header data */
                unsigned char digest[EVP_MAX_MD_SIZE];
                unsigned int dlen = 0;
                if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
                    EVP_DigestUpdate(ctx, hdrs->data, hdrs->len) != 1 ||
                    EVP_DigestUpdate(ctx, self->data, self->len) != 1 ||
                    EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 ||
                    EVP_MD_CTX_reset(ctx) != 1 ||
                    EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
                    EVP_DigestSign(ctx, sig, sig_len, digest, dlen) != 1)
                        goto out;
        } else {
                /* RSASSA-PKCS1-v1_5 with SHA-256 over the header data */
                if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
                    EVP_DigestSignUpdate(ctx, hdrs->data, hdrs->len) != 1 ||
                    EVP_DigestSignUpdate(ctx, self->data, self->len) != 1 ||
                    EVP_DigestSignFinal(ctx, sig, sig_len) != 1)
                        goto out;
        }
        ret = 0;
out:
        EVP_MD_CTX_free(ctx);
        if (ret)
                ERR_clear_error();
        return ret;
}

static int body_hash(const struct parsed *pm, char bh[64])
{
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        struct sink *s = xcalloc(1, sizeof(*s));
        int ret = -EIO;

        s->md = EVP_MD_CTX_new();
        if (!s->md)
                oom();
        if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) == 1) {
                canon_body(pm->body, pm->body_len, s);
                sink_flush(s);
                if (!s->failed && EVP_DigestFinal_ex(s->md, digest, &dlen) == 1) {
                        base64_encode(digest, dlen, bh, 0);
                        ret = 0;
                }
        }
        EVP_MD_CTX_free(s->md);
        free(s);
        if (ret)
                ERR_clear_error();
        return ret;
}

int dkim_sign(struct dkim_key *const *keys, size_t n_keys, time_t now, const char *msg,
              size_t len, struct buf *out)
{
        struct parsed *pm;
        struct buf hdrs, field, self;
        char bh[64];
        size_t old_len = out->len;
        int r;

        if (n_keys == 0)
                return 0;
        if (now < 0)
                return -EINVAL;
        pm = xmalloc(sizeof(*pm));
        buf_init(&hdrs, 0);
        buf_init(&field, SIG_FIELD_MAX);
        buf_init(&self, SIG_FIELD_MAX);
        if ((r = parse_message(msg, len, pm)) != 0 || (r = body_hash(pm, bh)) != 0)
                goto out;
        signed_headers_canon(pm, &hdrs);

        for (size_t i = 0; i < n_keys; i++) {
                const struct dkim_key *k = keys[i];
                struct folder f = { .b = &field };
                unsigned char sig[SIG_MAX];
                char sig64[4 * (SIG_MAX / 3 + 1) + 1];
                size_t sig_len = sizeof(sig);

                if (!k)
                        fatal("dkim_sign: key %zu is NULL", i);
                buf_reset(&field);
                buf_reset(&self);
                sig_field_head(k, now, pm, bh, &f);
                if (field.overflow)
                        fatal("dkim_sign: signature field over %d bytes", SIG_FIELD_MAX);
                dkim_canon_header(field.data, field.len, &self);
                self.len -= 2;          /* hashed without its CRLF (3.7) */
                self.data[self.len] = '\0';
                if ((r = sign_data(k, &hdrs, &self, sig, &sig_len)) != 0)
                        goto out;
                fold_base64(&f, sig64, base64_encode(sig, sig_len, sig64, 0));
                buf_append(&field, "\r\n", 2);
                if (field.overflow)
                        fatal("dkim_sign: signature field over %d bytes", SIG_FIELD_MAX);
                if (!buf_append(out, field.data, field.len)) {
                        r = -ENOBUFS;
                        goto out;
                }
        }
        r = 0;
out:
        if (r && out->data) {
                out->len = old_len;
                out->data[old_len] = '\0';
        }
        buf_free(&hdrs);
        buf_free(&field);
        buf_free(&self);
        free(pm);
        return r;
}

/* ---- keys ---- */

/* An LDH DNS name: labels of 1..63 letters, digits and inner hyphens. */
static bool dns_name_ok(const char *s)
{
        size_t label = 0, n = strlen(s);
        if (n == 0 || n > ADDR_DOMAIN_MAX - 2)
                return false;
        for (size_t i = 0; i <= n; i++) {
                char c = s[i];
                if (c == '.' || c == '\0') {
                        if (label == 0 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                bool letdig = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9');
                if (!letdig && (c != '-' || label == 0))
                        return false;
                if (++label > 63)
                        return false;
        }
        return true;
}

/* Encrypted keys are refused rather than prompting on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
        return -1;
}

/* The whole file, at most DKIM_KEY_FILE_MAX bytes, after the checks on what
 * it is and who may read it.  Returns 0 or a dkim_result. */
static int key_file_read(const char *path, char *data, size_t *n, char *err, size_t errlen)
{
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int r = DKIM_KEY_UNREADABLE;

        if (fd < 0) {
                set_err(err, errlen, "cannot open the key file: %s", strerror(errno));
                return DKIM_KEY_UNREADABLE;
        }
        if (fstat(fd, &st) < 0) {
                set_err(err, errlen, "cannot stat the key file: %s", strerror(errno));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                set_err(err, errlen, "the key file is not a regular file");
                goto out;
        }
        if (st.st_mode & 077) {
                set_err(err, errlen, "the key file may be read or written by group or others "
                        "(mode %04o; it must be 0600 or 0400)", (unsigned)(st.st_mode & 07777));
                r = DKIM_KEY_PERMISSIONS;
                goto out;
        }
        *n = 0;
        for (;;) {
                ssize_t got = read(fd, data + *n, DKIM_KEY_FILE_MAX + 1 - *n);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0) {
                        set_err(err, errlen, "cannot read the key file: %s", strerror(errno));
                        goto out;
                }
                if (got == 0)
                        break;
                *n += (size_t)got;
                if (*n > DKIM_KEY_FILE_MAX) {
                        set_err(err, errlen, "the key file is over %d bytes", DKIM_KEY_FILE_MAX);
                        goto out;
                }
        }
        r = 0;
out:
        close(fd);
        return r;
}

int dkim_key_load(const char *path, const char *domain, const char *selector,
                  struct dkim_key **out, char *err, size_t errlen)
{
        char *data;
        size_t n = 0;
        EVP_PKEY *pkey = NULL;
        int r;

        *out = NULL;
        if (!dns_name_ok(domain) || !dns_name_ok(selector) ||
            strlen(selector) + strlen("._domainkey.") + strlen(domain) > ADDR_DOMAIN_MAX - 2) {
                set_err(err, errlen, "the domain or the selector is not a DNS name");
                return -EINVAL;
        }
        data = xmalloc(DKIM_KEY_FILE_MAX + 1);
        if ((r = key_file_read(path, data, &n, err, errlen)) != 0)
                goto out;

        BIO *bio = BIO_new_mem_buf(data, (int)n);
        if (!bio)
                oom();
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
        if (!pkey) {
                set_err(err, errlen, "no unencrypted PEM private key in the key file");
                r = DKIM_KEY_UNREADABLE;
                goto out;
        }
        int type = EVP_PKEY_get_base_id(pkey);
        if (type == EVP_PKEY_RSA) {
                int bits = EVP_PKEY_get_bits(pkey);
                if (bits < DKIM_RSA_BITS_MIN) {
                        set_err(err, errlen, "the RSA key has %d bits, under the %d that "
                                "RFC 8301 requires", bits, DKIM_RSA_BITS_MIN);
                        r = DKIM_KEY_TOO_SHORT;
                        goto out;
                }
                if (bits > DKIM_RSA_BITS_MAX || EVP_PKEY_get_size(pkey) > SIG_MAX) {
                        set_err(err, errlen, "the RSA key has %d bits; verifiers need not "
                                "handle more than %d", bits, DKIM_RSA_BITS_MAX);
                        r = DKIM_KEY_TYPE;
                        goto out;
                }
        } else if (type != EVP_PKEY_ED25519) {
                set_err(err, errlen, "the key is neither RSA nor Ed25519 (it is %s)",
                        OBJ_nid2sn(type) ? OBJ_nid2sn(type) : "unknown");
                r = DKIM_KEY_TYPE;
                goto out;
        }

        struct dkim_key *k = xcalloc(1, sizeof(*k));
        k->pkey = pkey;
        k->ed25519 = type == EVP_PKEY_ED25519;
        k->domain = xstrdup(domain);
        k->selector = xstrdup(selector);
        pkey = NULL;
        *out = k;
        r = 0;
out:
        EVP_PKEY_free(pkey);
        OPENSSL_cleanse(data, DKIM_KEY_FILE_MAX + 1);
        free(data);
        ERR_clear_error();
        return r;
}

void dkim_key_free(struct dkim_key *k)
{
        if (!k)
                return;
        EVP_PKEY_free(k->pkey);
        free(k->domain);
        free(k->selector);
        free(k);
}

const char *dkim_key_selector(const struct dkim_key *k)
{
        return k->selector;
}

const char *dkim_key_domain(const struct dkim_key *k)
{
        return k->domain;
}

bool dkim_key_is_ed25519(const struct dkim_key *k)
{
        return k->ed25519;
}

/* ---- key generation ---- */

/* "v=DKIM1; k=...; p=...": RSA keys as SubjectPublicKeyInfo (RFC 6376
 * 3.6.1), Ed25519 keys as the bare 32 bytes (RFC 8463 4). */
static int dns_record(EVP_PKEY *pkey, bool ed25519, char *dns_txt, size_t dns_len)
{
        unsigned char raw[600], *der = NULL;
        size_t raw_len = sizeof(raw);
        const unsigned char *pub = raw;
        int len;

        if (ed25519) {
                if (EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) != 1)
                        return -EIO;
        } else {
                len = i2d_PUBKEY(pkey, &der);
                if (len <= 0)
                        return -EIO;
                pub = der;
                raw_len = (size_t)len;
                if (raw_len > sizeof(raw)) {
                        OPENSSL_free(der);
                        return -EIO;
                }
        }
        const char *head = ed25519 ? "v=DKIM1; k=ed25519; p=" : "v=DKIM1; k=rsa; p=";
        size_t head_len = strlen(head), b64_len = 4 * ((raw_len + 2) / 3);
        int r = -ENOBUFS;
        if (dns_len > head_len + b64_len) {
                memcpy(dns_txt, head, head_len);
                base64_encode(pub, raw_len, dns_txt + head_len, 0);
                r = 0;
        }
        OPENSSL_free(der);
        return r;
}

static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

int dkim_keygen(const char *path, bool ed25519, char *dns_txt, size_t dns_len, char *err,
                size_t errlen)
{
        EVP_PKEY *pkey;
        BIO *pem = NULL;
        char *pem_data;
        long pem_len;
        int fd = -1, r;

        if (ed25519)
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        else
                pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)DKIM_RSA_BITS_MIN);
        if (!pkey) {
                set_err(err, errlen, "OpenSSL could not generate the key");
                r = -EIO;
                goto out;
        }
        if ((r = dns_record(pkey, ed25519, dns_txt, dns_len)) != 0) {
                set_err(err, errlen, r == -ENOBUFS ? "no room for the DNS record" :
                        "OpenSSL could not export the public key");
                goto out;
        }
        /* secure-heap BIO: the PEM text is wiped when it is freed */
        pem = BIO_new(BIO_s_secmem());
        if (!pem)
                oom();
        if (PEM_write_bio_PrivateKey(pem, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
            (pem_len = BIO_get_mem_data(pem, &pem_data)) <= 0) {
                set_err(err, errlen, "OpenSSL could not write the key as PEM");
                r = -EIO;
                goto out;
        }

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                r = -errno;
                set_err(err, errlen, "cannot create the key file: %s", strerror(errno));
                goto out;
        }
        /* the umask may have taken bits away; we want exactly 0600 */
        if (fchmod(fd, 0600) < 0 || (r = write_all(fd, pem_data, (size_t)pem_len)) < 0 ||
            fsync(fd) < 0) {
                if (r == 0)
                        r = -errno;
                set_err(err, errlen, "cannot write the key file: %s", strerror(-r));
                unlink(path);
                goto out;
        }
        if (close(fd) < 0) {
                fd = -1;
                r = -errno;
                set_err(err, errlen, "cannot write the key file: %s", strerror(-r));
                unlink(path);
                goto out;
        }
        fd = -1;
        r = 0;
out:
        if (fd >= 0)
                close(fd);
        if (r && dns_txt && dns_len)
                dns_txt[0] = '\0';
        BIO_free(pem);
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return r;
}
