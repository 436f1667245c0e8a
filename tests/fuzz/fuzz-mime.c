/* Fuzz target: building a mail from hostile subject, name, header value and
 * body.  Invariants: either a clear refusal, or a message with CRLF line
 * ends only, no line over 998 octets, exactly the headers we wrote (none
 * injected), and 7-bit output. */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "mime.h"

/* split the input at NUL-free '\x01' separators into 4 fields */
static const char *field(const uint8_t *data, size_t size, int k, char *out, size_t cap)
{
        size_t start = 0, i = 0;
        int n = 0;
        for (; i <= size; i++) {
                if (i == size || data[i] == 0x01) {
                        if (n == k) {
                                size_t len = i - start < cap - 1 ? i - start : cap - 1;
                                memcpy(out, data + start, len);
                                out[len] = '\0';
                                return out;
                        }
                        n++;
                        start = i + 1;
                }
        }
        out[0] = '\0';
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static char subject[2048], name[512], value[1024], body[8192];
        field(data, size, 0, subject, sizeof(subject));
        field(data, size, 1, name, sizeof(name));
        field(data, size, 2, value, sizeof(value));
        field(data, size, 3, body, sizeof(body));
        struct mime_header extra[] = { { "List-Id", value } };
        struct mime_msg m = {
                .from_name = name, .from_addr = "news@example.org", .to_addr = "a@example.org",
                .subject = subject, .msgid_domain = "example.org", .date = 1800000000,
                .extra = extra, .n_extra = 1, .text = body, .text_len = strlen(body),
                .html = (size & 1) ? body : NULL, .html_len = strlen(body),
        };
        struct buf b;
        buf_init(&b, 0);
        if (mime_build(&m, &b) != MIME_OK) {
                buf_free(&b);
                return 0;
        }
        size_t col = 0, headers = 0;
        bool in_headers = true;
        for (size_t i = 0; i < b.len; i++) {
                unsigned char c = (unsigned char)b.data[i];
                if (c >= 0x80 || c == 0)
                        abort();
                if (c == '\r') {
                        if (i + 1 >= b.len || b.data[i + 1] != '\n')
                                abort();
                        if (in_headers && col == 0)
                                in_headers = false;
                        col = 0;
                        i++;
                        continue;
                }
                if (c == '\n')
                        abort();
                if (in_headers && col == 0 && c != ' ' && c != '\t')
                        headers++;
                if (++col > 998)
                        abort();
        }
        /* Date From To Subject Message-ID MIME-Version List-Id Content-Type (+CTE) */
        if (headers != (m.html ? 8u : 9u))
                abort();
        buf_free(&b);
        return 0;
}
