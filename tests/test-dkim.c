/*
 * test-dkim.c - DKIM signing: relaxed canonicalisation against vectors
 * worked out by hand from RFC 6376 3.4.2, 3.4.4 and the example in 3.4.5;
 * the signature fields (tags, over-signed h= list, folding); signatures
 * checked here with OpenSSL over header data put together by the test;
 * messages refused; key loading refusals; key generation (mode 0600, never
 * over an existing file, the DNS record).  The body hashes were computed
 * independently with Python's hashlib.  tests/dkim_verify.py checks whole
 * signed messages with dkimpy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "dkim.h"
#include "unit.h"

static char tmpdir[] = "/tmp/test-dkim-XXXXXX";
/* generated once in main(), used by several tests */
static char rsa_path[256], ed_path[256], rsa_txt[DKIM_TXT_MAX], ed_txt[DKIM_TXT_MAX];

static void path_in_tmp(char *out, size_t n, const char *name)
{
        snprintf(out, n, "%s/%s", tmpdir, name);
}

static bool write_file(const char *path, const void *data, size_t n, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return false;
        bool ok = write(fd, data, n) == (ssize_t)n && fchmod(fd, mode) == 0;
        return close(fd) == 0 && ok;
}

/* Write `pkey` as PEM to the file `name` in tmpdir with mode 0600. */
static bool write_key(const char *name, EVP_PKEY *pkey, bool traditional, const char *pass,
                      char *path, size_t pathlen)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        bool ok;
        path_in_tmp(path, pathlen, name);
        if (traditional)
                ok = PEM_write_bio_PrivateKey_traditional(b, pkey, NULL, NULL, 0, NULL, NULL);
        else if (pass)
                ok = PEM_write_bio_PrivateKey(b, pkey, EVP_aes_256_cbc(), NULL, 0, NULL,
                                              (void *)pass);
        else
                ok = PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL);
        long n = BIO_get_mem_data(b, &data);
        ok = ok && n > 0 && write_file(path, data, (size_t)n, 0600);
        BIO_free(b);
        return ok;
}

static EVP_PKEY *read_key(const char *path)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        return k;
}

/* ---- canonicalisation ---- */

static void check_header(const char *in, const char *want)
{
        struct buf b;
        buf_init(&b, 0);
        dkim_canon_header(in, strlen(in), &b);
        CHECK_MEM(b.data, b.len, want, strlen(want));
        buf_free(&b);
}

static void check_body(const char *in, size_t n, const char *want)
{
        struct buf b;
        buf_init(&b, 0);
        dkim_canon_body(in, n, &b);
        CHECK_MEM(b.len ? b.data : "", b.len, want, strlen(want));
        buf_free(&b);
}

static void test_canon_header(void)
{
        /* the brief's vector: unfold, WSP runs to one SP, strip both ends */
        check_header("SUBJect:  AbC \r\n\tdef  ", "subject:AbC def\r\n");
        /* RFC 6376 3.4.5 */
        check_header("A: X", "a:X\r\n");
        check_header("B : Y\t\r\n\tZ  ", "b:Y Z\r\n");
        check_header("Content-Type: text/plain;\r\n charset=utf-8",
                     "content-type:text/plain; charset=utf-8\r\n");
        check_header("To: a@example.org,\r\n\t \r\n  b@example.org",
                     "to:a@example.org, b@example.org\r\n");
        check_header("X-Empty:", "x-empty:\r\n");
        check_header("X-Blank: \t ", "x-blank:\r\n");
        check_header("X-Tight:value", "x-tight:value\r\n");
        /* case and 8-bit bytes in the value stay as they are */
        check_header("X-Utf8:  Gr\xc3\xbc\xc3\x9f""e  AUS", "x-utf8:Gr\xc3\xbc\xc3\x9f""e AUS\r\n");
        /* a colon in the value is value */
        check_header("Date: Tue, 14 Nov 2023 22:13:20 +0000",
                     "date:Tue, 14 Nov 2023 22:13:20 +0000\r\n");
}

static void test_canon_body(void)
{
        /* RFC 6376 3.4.5 */
        check_body(LIT(" C \r\nD \t E\r\n\r\n\r\n"), " C\r\nD E\r\n");
        /* an empty body, and one of empty lines only, is empty in relaxed */
        check_body(LIT(""), "");
        check_body(LIT("\r\n"), "");
        check_body(LIT("\r\n\r\n \t\r\n\t\r\n"), "");
        /* a last line without CRLF gets one; its trailing WSP goes too */
        check_body(LIT("abc"), "abc\r\n");
        check_body(LIT("abc \t"), "abc\r\n");
        /* empty lines that are not trailing stay, as do leading ones */
        check_body(LIT("a\r\n\r\n\r\nb\r\n"), "a\r\n\r\n\r\nb\r\n");
        check_body(LIT("\r\n\r\nx\r\n\r\n"), "\r\n\r\nx\r\n");
        /* a line of WSP only is an empty line */
        check_body(LIT(" \t \r\nx"), "\r\nx\r\n");
        /* leading WSP becomes one SP */
        check_body(LIT("\t\tx\ty \r\n"), " x y\r\n");

        /* longer than the staging area: the pieces arrive in order */
        struct buf in, want;
        buf_init(&in, 0);
        buf_init(&want, 0);
        for (int i = 0; i < 3000; i++) {
                buf_printf(&in, "line  %d\t\tend \t\r\n", i);
                buf_printf(&want, "line %d end\r\n", i);
        }
        buf_puts(&in, "\r\n\r\n  \r\n");
        check_body(in.data, in.len, want.data);
        buf_free(&in);
        buf_free(&want);
}

/* ---- signing ---- */

/* The value of tag `tag` in a DKIM-Signature field, unfolded, without
 * any whitespace, or "" */
static void tag_value(const char *field, const char *tag, char *out, size_t n)
{
        char pat[16];
        size_t o = 0;
        snprintf(pat, sizeof(pat), " %s=", tag);
        const char *p = strstr(field, pat);
        if (!p) {
                snprintf(pat, sizeof(pat), "\n %s=", tag);
                p = strstr(field, pat);
                if (p)
                        p++;
        }
        out[0] = '\0';
        if (!p)
                return;
        for (p += strlen(pat); *p && *p != ';' && o + 1 < n; p++)
                if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
                        out[o++] = *p;
        out[o] = '\0';
}

/* The folding rules: CRLF only, every line break followed by SP, lines of
 * at most 78 characters, ends with CRLF. */
static void check_folding(const char *s, size_t n)
{
        size_t col = 0;
        REQUIRE(n >= 2 && memcmp(s + n - 2, "\r\n", 2) == 0);
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\r') {
                        REQUIRE(i + 1 < n && s[i + 1] == '\n');
                        CHECK(col <= 78);
                        if (i + 2 < n)
                                CHECK(s[i + 2] == ' ');
                        col = 0;
                        i++;
                } else {
                        CHECK(s[i] != '\n');
                        col++;
                }
        }
}

static const char simple_msg[] =
        "From: News <news@example.org>\r\n"
        "To: reader@example.net\r\n"
        "Subject:   Hello\r\n"
        "  world\r\n"
        "Cc: a@example.net\r\n"
        "X-Mailer: test\r\n"
        "cc: b@example.net\r\n"
        "\r\n"
        " C \r\n"
        "D \t E\r\n"
        "\r\n"
        "\r\n";

/* The header data a verifier hashes for simple_msg, put together here:
 * h= order, instances bottom-up, then the signature field without b=. */
static const char simple_signed[] =
        "from:News <news@example.org>\r\n"
        "to:reader@example.net\r\n"
        "subject:Hello world\r\n"
        "cc:b@example.net\r\n"
        "cc:a@example.net\r\n";

static const char simple_h[] =
        "from:from:to:to:subject:subject:date:message-id:mime-version:content-type:"
        "list-id:list-unsubscribe:list-unsubscribe-post:cc:cc:cc";

/* Check one signature field (text from "DKIM-Signature:" to its CRLF)
 * over simple_msg with OpenSSL. */
static void check_signature(const char *field, size_t n, EVP_PKEY *pub, bool ed25519)
{
        char b64[1024], alg[32];
        unsigned char sig[600];
        struct buf data, unsigned_field;

        /* the field with the b= value removed, as RFC 6376 3.7 hashes it */
        const char *b = strstr(field, " b=");
        REQUIRE(b && (size_t)(b - field) < n);
        buf_init(&unsigned_field, 0);
        buf_append(&unsigned_field, field, (size_t)(b - field) + 3);
        buf_init(&data, 0);
        buf_puts(&data, simple_signed);
        dkim_canon_header(unsigned_field.data, unsigned_field.len, &data);
        data.len -= 2;

        tag_value(field, "a", alg, sizeof(alg));
        CHECK_STR(alg, ed25519 ? "ed25519-sha256" : "rsa-sha256");
        tag_value(field, "b", b64, sizeof(b64));
        size_t b64_len = strlen(b64);
        int sig_len = EVP_DecodeBlock(sig, (unsigned char *)b64, (int)b64_len);
        REQUIRE(sig_len > 0);
        /* EVP_DecodeBlock counts the padding as zero bytes */
        for (size_t i = b64_len; i > 0 && b64[i - 1] == '='; i--)
                sig_len--;
        CHECK_INT(sig_len, ed25519 ? 64 : 256);

        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok;
        if (ed25519) {
                /* RFC 8463: Ed25519 over the SHA-256 of the header data */
                unsigned char dg[32];
                unsigned int dlen = 0;
                EVP_Digest(data.data, data.len, dg, &dlen, EVP_sha256(), NULL);
                ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
                     EVP_DigestVerify(ctx, sig, (size_t)sig_len, dg, dlen) == 1;
        } else {
                ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
                     EVP_DigestVerify(ctx, sig, (size_t)sig_len,
                                      (unsigned char *)data.data, data.len) == 1;
        }
        CHECK(ok);
        /* and one changed byte in the data does not verify */
        data.data[0] ^= 1;
        EVP_MD_CTX_reset(ctx);
        if (ed25519) {
                unsigned char dg[32];
                unsigned int dlen = 0;
                EVP_Digest(data.data, data.len, dg, &dlen, EVP_sha256(), NULL);
                ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
                     EVP_DigestVerify(ctx, sig, (size_t)sig_len, dg, dlen) == 1;
        } else {
                ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
                     EVP_DigestVerify(ctx, sig, (size_t)sig_len,
                                      (unsigned char *)data.data, data.len) == 1;
        }
        CHECK(!ok);
        EVP_MD_CTX_free(ctx);
        buf_free(&data);
        buf_free(&unsigned_field);
}

static void test_sign(void)
{
        struct dkim_key *keys[2] = { NULL, NULL };
        char err[256], v[1024];
        struct buf out;

        REQUIRE(dkim_key_load(rsa_path, "example.org", "rsa", &keys[0], err, sizeof(err)) == 0);
        REQUIRE(dkim_key_load(ed_path, "example.org", "ed.news", &keys[1], err,
                              sizeof(err)) == 0);
        CHECK(!dkim_key_is_ed25519(keys[0]));
        CHECK(dkim_key_is_ed25519(keys[1]));
        CHECK_STR(dkim_key_selector(keys[1]), "ed.news");
        CHECK_STR(dkim_key_domain(keys[1]), "example.org");

        buf_init(&out, 0);
        buf_puts(&out, "kept");
        REQUIRE(dkim_sign(keys, 2, 1700000000, LIT(simple_msg), &out) == 0);
        REQUIRE(out.len > 4 && memcmp(out.data, "kept", 4) == 0);

        const char *first = out.data + 4;
        const char *second = strstr(first + 1, "\r\nDKIM-Signature:");
        REQUIRE(second);
        second += 2;
        size_t first_len = (size_t)(second - first);
        size_t second_len = out.len - (size_t)(second - out.data);
        CHECK(strncmp(first, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;", 53) == 0);
        CHECK(strncmp(second, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;",
                      57) == 0);
        check_folding(first, first_len);
        check_folding(second, second_len);

        /* copies, NUL-terminated, for the tag lookups */
        char *f1 = strndup(first, first_len), *f2 = strndup(second, second_len);
        REQUIRE(f1 && f2);
        for (int i = 0; i < 2; i++) {
                const char *f = i ? f2 : f1;
                tag_value(f, "d", v, sizeof(v));
                CHECK_STR(v, "example.org");
                tag_value(f, "s", v, sizeof(v));
                CHECK_STR(v, i ? "ed.news" : "rsa");
                tag_value(f, "t", v, sizeof(v));
                CHECK_STR(v, "1700000000");
                tag_value(f, "c", v, sizeof(v));
                CHECK_STR(v, "relaxed/relaxed");
                tag_value(f, "h", v, sizeof(v));
                CHECK_STR(v, simple_h);
                /* SHA-256 of " C\r\nD E\r\n" (RFC 6376 3.4.5), by hashlib */
                tag_value(f, "bh", v, sizeof(v));
                CHECK_STR(v, "unak6JHq0wL+Q1HP7dW1tjBx9FLA6DffoZ0qrLwbbpo=");
                /* b= is the last tag */
                CHECK(strstr(f, " b=") && !strchr(strstr(f, " b="), ';'));
        }

        EVP_PKEY *rsa = read_key(rsa_path), *ed = read_key(ed_path);
        REQUIRE(rsa && ed);
        check_signature(f1, first_len, rsa, false);
        check_signature(f2, second_len, ed, true);
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ed);

        /* Ed25519 is deterministic: the same input signs the same */
        struct buf again;
        buf_init(&again, 0);
        REQUIRE(dkim_sign(keys + 1, 1, 1700000000, LIT(simple_msg), &again) == 0);
        CHECK_MEM(again.data, again.len, f2, second_len);
        buf_free(&again);
        free(f1);
        free(f2);

        /* an empty body hashes to SHA-256 of "" (relaxed) */
        static const char empty_body[] = "From: a@example.org\r\n\r\n";
        buf_reset(&out);
        REQUIRE(dkim_sign(keys + 1, 1, 1, LIT(empty_body), &out) == 0);
        tag_value(out.data, "bh", v, sizeof(v));
        CHECK_STR(v, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        tag_value(out.data, "h", v, sizeof(v));
        CHECK_STR(v, "from:from:to:subject:date:message-id:mime-version:content-type:"
                     "list-id:list-unsubscribe:list-unsubscribe-post");

        /* no keys: nothing to do */
        buf_reset(&out);
        CHECK_INT(dkim_sign(keys, 0, 1, LIT(simple_msg), &out), 0);
        CHECK_UINT(out.len, 0);

        /* the output cap: refused, and out as it was */
        struct buf small;
        buf_init(&small, 300);
        buf_puts(&small, "before");
        CHECK_INT(dkim_sign(keys, 2, 1, LIT(simple_msg), &small), -ENOBUFS);
        CHECK_MEM(small.data, small.len, "before", 6);
        buf_free(&small);

        buf_free(&out);
        dkim_key_free(keys[0]);
        dkim_key_free(keys[1]);
}

static void test_sign_refusals(void)
{
        struct dkim_key *k = NULL;
        char err[256];
        struct buf out;
        static const char *const bad[] = {
                "From: a@example.org\nSubject: x\r\n\r\nbody\r\n",      /* bare LF */
                "From: a@example.org\r\nSubject: x\r\n\r\nbo\rdy\r\n",  /* bare CR */
                "From: a@example.org\r\nSubject: x\r\n\r\nbody\n",      /* bare LF in the body */
                "From: a@example.org\r\nSubject: x\r\n",                /* no empty line */
                "From: a@example.org",                                  /* no CRLF at all */
                " folded: first\r\n\r\n",                               /* a fold, no field */
                "From a@example.org\r\n\r\n",                           /* no colon */
                ": no name\r\n\r\n",                                    /* empty name */
                "Fr\xc3\xb6m: a@example.org\r\n\r\n",                   /* 8-bit name */
                "",
        };

        REQUIRE(dkim_key_load(ed_path, "example.org", "ed", &k, err, sizeof(err)) == 0);
        buf_init(&out, 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = dkim_sign(&k, 1, 1, bad[i], strlen(bad[i]), &out);
                if (!CHECK_INT(r, DKIM_BAD_MESSAGE))
                        fprintf(stderr, "    message %zu\n", i);
                CHECK_UINT(out.len, 0);
        }
        /* NUL */
        CHECK_INT(dkim_sign(&k, 1, 1, LIT("From: a@example.org\r\n\r\nx\0y\r\n"), &out),
                  DKIM_BAD_MESSAGE);
        /* a signed field more than DKIM_FIELD_REPEAT_MAX times */
        struct buf many;
        buf_init(&many, 0);
        for (int i = 0; i < DKIM_FIELD_REPEAT_MAX; i++)
                buf_puts(&many, "To: x@example.org\r\n");
        buf_puts(&many, "\r\nbody\r\n");
        CHECK_INT(dkim_sign(&k, 1, 1, many.data, many.len, &out), 0);
        buf_reset(&out);
        buf_reset(&many);
        for (int i = 0; i <= DKIM_FIELD_REPEAT_MAX; i++)
                buf_puts(&many, "tO: x@example.org\r\n");
        buf_puts(&many, "\r\nbody\r\n");
        CHECK_INT(dkim_sign(&k, 1, 1, many.data, many.len, &out), DKIM_BAD_MESSAGE);
        /* but unsigned fields may repeat */
        buf_reset(&many);
        for (int i = 0; i < 100; i++)
                buf_puts(&many, "Received: from a by b\r\n");
        buf_puts(&many, "\r\nbody\r\n");
        buf_reset(&out);
        CHECK_INT(dkim_sign(&k, 1, 1, many.data, many.len, &out), 0);
        buf_free(&many);

        /* the largest h= list still folds into a field within bounds */
        struct buf worst;
        buf_init(&worst, 0);
        static const char *const names[] = {
                "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
                "Content-Transfer-Encoding", "List-Id", "List-Unsubscribe",
                "List-Unsubscribe-Post", "Auto-Submitted", "Reply-To", "Sender", "Cc",
        };
        for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++)
                for (int i = 0; i < DKIM_FIELD_REPEAT_MAX; i++)
                        buf_printf(&worst, "%s: x\r\n", names[n]);
        buf_puts(&worst, "\r\n");
        buf_reset(&out);
        CHECK_INT(dkim_sign(&k, 1, 1, worst.data, worst.len, &out), 0);
        check_folding(out.data, out.len);
        buf_free(&worst);

        buf_free(&out);
        dkim_key_free(k);
}

/* ---- keys ---- */

static void check_load(const char *path, int want, const char *what)
{
        struct dkim_key *k = (struct dkim_key *)&k;     /* must be reset to NULL */
        char err[256] = "";
        int r = dkim_key_load(path, "example.org", "sel", &k, err, sizeof(err));
        if (!CHECK_INT(r, want))
                fprintf(stderr, "    %s: %s\n", what, err);
        if (want != 0) {
                CHECK(k == NULL);
                CHECK(err[0] != '\0');
                /* the reason is one line and holds no key material */
                CHECK(!strchr(err, '\n') && !strstr(err, "-----"));
        }
        dkim_key_free(k);
}

static void test_key_load(void)
{
        char path[256];

        check_load(rsa_path, 0, "RSA 2048 from dkim_keygen");
        check_load(ed_path, 0, "Ed25519 from dkim_keygen");

        /* group or others may read or write: refused whatever the key */
        CHECK(chmod(rsa_path, 0644) == 0);
        check_load(rsa_path, DKIM_KEY_PERMISSIONS, "0644");
        CHECK(chmod(rsa_path, 0640) == 0);
        check_load(rsa_path, DKIM_KEY_PERMISSIONS, "0640");
        CHECK(chmod(rsa_path, 0602) == 0);
        check_load(rsa_path, DKIM_KEY_PERMISSIONS, "0602");
        CHECK(chmod(rsa_path, 0400) == 0);
        check_load(rsa_path, 0, "0400");
        CHECK(chmod(rsa_path, 0600) == 0);

        /* RSA 1024: too short (RFC 8301) */
        EVP_PKEY *short_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        REQUIRE(short_rsa);
        REQUIRE(write_key("rsa1024.pem", short_rsa, false, NULL, path, sizeof(path)));
        check_load(path, DKIM_KEY_TOO_SHORT, "RSA 1024");
        EVP_PKEY_free(short_rsa);

        /* EC P-256: another type */
        EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        REQUIRE(ec);
        REQUIRE(write_key("p256.pem", ec, false, NULL, path, sizeof(path)));
        check_load(path, DKIM_KEY_TYPE, "EC P-256");
        EVP_PKEY_free(ec);

        /* RSA in the traditional "BEGIN RSA PRIVATE KEY" form: fine */
        EVP_PKEY *rsa = read_key(rsa_path);
        REQUIRE(rsa);
        REQUIRE(write_key("traditional.pem", rsa, true, NULL, path, sizeof(path)));
        check_load(path, 0, "traditional RSA PEM");
        /* encrypted: refused, without asking for a passphrase */
        REQUIRE(write_key("encrypted.pem", rsa, false, "secret", path, sizeof(path)));
        check_load(path, DKIM_KEY_UNREADABLE, "encrypted PEM");
        EVP_PKEY_free(rsa);

        /* garbage, an empty file, a public key only, too big, missing, a directory */
        path_in_tmp(path, sizeof(path), "garbage.pem");
        REQUIRE(write_file(path, LIT("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
                                     "-----END PRIVATE KEY-----\n"), 0600));
        check_load(path, DKIM_KEY_UNREADABLE, "garbage");
        path_in_tmp(path, sizeof(path), "empty.pem");
        REQUIRE(write_file(path, "", 0, 0600));
        check_load(path, DKIM_KEY_UNREADABLE, "empty file");
        path_in_tmp(path, sizeof(path), "public.pem");
        {
                EVP_PKEY *ed = read_key(ed_path);
                BIO *b = BIO_new(BIO_s_mem());
                char *data;
                REQUIRE(ed && b && PEM_write_bio_PUBKEY(b, ed) == 1);
                long n = BIO_get_mem_data(b, &data);
                REQUIRE(write_file(path, data, (size_t)n, 0600));
                BIO_free(b);
                EVP_PKEY_free(ed);
        }
        check_load(path, DKIM_KEY_UNREADABLE, "public key only");
        path_in_tmp(path, sizeof(path), "big.pem");
        {
                char *big = malloc(DKIM_KEY_FILE_MAX + 1);
                REQUIRE(big);
                memset(big, 'A', DKIM_KEY_FILE_MAX + 1);
                CHECK(write_file(path, big, DKIM_KEY_FILE_MAX + 1, 0600));
                free(big);
        }
        check_load(path, DKIM_KEY_UNREADABLE, "too big");
        path_in_tmp(path, sizeof(path), "missing.pem");
        check_load(path, DKIM_KEY_UNREADABLE, "missing");
        check_load(tmpdir, DKIM_KEY_UNREADABLE, "a directory");

        /* domain and selector must be DNS names */
        static const char *const bad_names[][2] = {
                { "", "sel" }, { "example.org", "" }, { "exa mple.org", "sel" },
                { "-bad.example.org", "sel" }, { "bad-.example.org", "sel" },
                { "a..b", "sel" }, { "example.org.", "sel" }, { "example.org", "sel_1" },
                { "example.org", "sel;x=1" }, { "example.org", "s\r\nX: y" },
                { "ex\xc3\xa4mple.org", "sel" },
        };
        for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
                struct dkim_key *k = NULL;
                char err[256];
                if (!CHECK_INT(dkim_key_load(ed_path, bad_names[i][0], bad_names[i][1], &k, err,
                                             sizeof(err)), -EINVAL))
                        fprintf(stderr, "    names %zu\n", i);
                CHECK(k == NULL);
        }
        char long_label[80];
        memset(long_label, 'a', 64);
        long_label[64] = '\0';
        struct dkim_key *k = NULL;
        char err[256];
        CHECK_INT(dkim_key_load(ed_path, "example.org", long_label, &k, err, sizeof(err)),
                  -EINVAL);
        long_label[63] = '\0';
        CHECK_INT(dkim_key_load(ed_path, "example.org", long_label, &k, err, sizeof(err)), 0);
        dkim_key_free(k);
        dkim_key_free(NULL);
}

/* ---- key generation ---- */

static void test_keygen(void)
{
        char path[256], txt[DKIM_TXT_MAX], err[256];
        struct stat st;

        /* the files main() made: exactly 0600, even though umask was 0 then */
        REQUIRE(stat(ed_path, &st) == 0);
        CHECK_UINT(st.st_mode & 07777, 0600);
        REQUIRE(stat(rsa_path, &st) == 0);
        CHECK_UINT(st.st_mode & 07777, 0600);

        /* the records: the public halves of the keys written */
        EVP_PKEY *rsa = read_key(rsa_path), *ed = read_key(ed_path);
        REQUIRE(rsa && ed);
        CHECK_INT(EVP_PKEY_get_base_id(rsa), EVP_PKEY_RSA);
        CHECK_INT(EVP_PKEY_get_bits(rsa), 2048);
        CHECK_INT(EVP_PKEY_get_base_id(ed), EVP_PKEY_ED25519);
        {
                unsigned char *der = NULL, raw[32];
                char want[DKIM_TXT_MAX];
                size_t raw_len = sizeof(raw);
                int n = i2d_PUBKEY(rsa, &der);
                REQUIRE(n > 0);
                int m = snprintf(want, sizeof(want), "v=DKIM1; k=rsa; p=");
                EVP_EncodeBlock((unsigned char *)want + m, der, n);
                OPENSSL_free(der);
                CHECK_STR(rsa_txt, want);
                CHECK_UINT(strlen(rsa_txt), 410);
                CHECK(strncmp(rsa_txt, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", 50)
                      == 0);
                REQUIRE(EVP_PKEY_get_raw_public_key(ed, raw, &raw_len) == 1);
                m = snprintf(want, sizeof(want), "v=DKIM1; k=ed25519; p=");
                EVP_EncodeBlock((unsigned char *)want + m, raw, (int)raw_len);
                CHECK_STR(ed_txt, want);
                CHECK_UINT(strlen(ed_txt), 22 + 44);
        }
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(ed);

        /* an existing path is never touched */
        path_in_tmp(path, sizeof(path), "existing.pem");
        REQUIRE(write_file(path, LIT("keep me"), 0644));
        CHECK_INT(dkim_keygen(path, true, txt, sizeof(txt), err, sizeof(err)), -EEXIST);
        CHECK(err[0] != '\0');
        {
                char back[16] = "";
                int fd = open(path, O_RDONLY);
                REQUIRE(fd >= 0);
                ssize_t n = read(fd, back, sizeof(back) - 1);
                close(fd);
                CHECK_MEM(back, n < 0 ? 0 : (size_t)n, "keep me", 7);
                REQUIRE(stat(path, &st) == 0);
                CHECK_UINT(st.st_mode & 07777, 0644);
        }
        /* nor is a symlink followed */
        char link_path[256];
        path_in_tmp(link_path, sizeof(link_path), "link.pem");
        path_in_tmp(path, sizeof(path), "link-target.pem");
        REQUIRE(symlink(path, link_path) == 0);
        CHECK_INT(dkim_keygen(link_path, true, txt, sizeof(txt), err, sizeof(err)), -EEXIST);
        CHECK(access(path, F_OK) != 0);

        /* no room for the record: nothing written */
        path_in_tmp(path, sizeof(path), "small.pem");
        CHECK_INT(dkim_keygen(path, false, txt, 100, err, sizeof(err)), -ENOBUFS);
        CHECK(access(path, F_OK) != 0);
        CHECK_INT(dkim_keygen(path, true, txt, 66, err, sizeof(err)), -ENOBUFS);
        CHECK(access(path, F_OK) != 0);
        CHECK_INT(dkim_keygen(path, true, txt, 67, err, sizeof(err)), 0);
        CHECK_UINT(strlen(txt), 66);
        CHECK(access(path, F_OK) == 0);

        /* a directory that does not exist */
        path_in_tmp(path, sizeof(path), "no/such/dir.pem");
        CHECK_INT(dkim_keygen(path, true, txt, sizeof(txt), err, sizeof(err)), -ENOENT);
}

static void remove_tmpdir(void)
{
        DIR *d = opendir(tmpdir);
        struct dirent *e;
        char path[512];
        if (!d)
                return;
        while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
                        unlink(path);
                }
        closedir(d);
        rmdir(tmpdir);
}

int main(void)
{
        char err[256];

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        path_in_tmp(rsa_path, sizeof(rsa_path), "rsa.pem");
        path_in_tmp(ed_path, sizeof(ed_path), "ed.pem");
        mode_t old = umask(0);  /* dkim_keygen must make 0600 by itself */
        int r1 = dkim_keygen(rsa_path, false, rsa_txt, sizeof(rsa_txt), err, sizeof(err));
        int r2 = dkim_keygen(ed_path, true, ed_txt, sizeof(ed_txt), err, sizeof(err));
        umask(old);
        if (r1 != 0 || r2 != 0) {
                fprintf(stderr, "dkim_keygen: %d %d %s\n", r1, r2, err);
                remove_tmpdir();
                return EXIT_FAILURE;
        }

        RUN(test_canon_header);
        RUN(test_canon_body);
        RUN(test_sign);
        RUN(test_sign_refusals);
        RUN(test_key_load);
        RUN(test_keygen);
        remove_tmpdir();
        return unit_finish();
}
