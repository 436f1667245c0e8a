/* Fuzz target: address validation.  Invariants: an accepted address is
 * printable ASCII without CR/LF/NUL, within the RFC lengths, its key is
 * its lower-case form, and parsing it again gives the same result. */
#include <ctype.h>
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct addr a, b;
        if (addr_parse((const char *)data, size, &a) != ADDR_OK)
                return 0;
        size_t n = strlen(a.mailbox);
        if (n == 0 || n > ADDR_PATH_MAX || strlen(a.key) != n)
                abort();
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)a.mailbox[i];
                if (c <= 0x20 || c >= 0x7f || a.key[i] != (char)tolower(c))
                        abort();
        }
        if (addr_parse(a.mailbox, n, &b) != ADDR_OK || strcmp(a.mailbox, b.mailbox) != 0)
                abort();
        return 0;
}
