/* Fuzz target: one import line.  Invariants: an accepted row has a valid
 * address and a name without control characters. */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct csv_row row;
        enum csv_result r = csv_parse_line((const char *)data, size, size & 1, &row);
        if (r != CSV_OK)
                return 0;
        struct addr again;
        if (addr_parse(row.addr.mailbox, strlen(row.addr.mailbox), &again) != ADDR_OK)
                abort();
        if (row.has_name && (mime_has_control(row.name, strlen(row.name)) ||
                             !mime_utf8_valid(row.name, strlen(row.name))))
                abort();
        return 0;
}
