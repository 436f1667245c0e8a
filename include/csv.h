/* Import lines: CSV "email[,name]" records, one per line (a leaf: no I/O). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "bounds.h"

#define CSV_LINE_MAX 4096

enum csv_result {
        CSV_OK = 0,
        CSV_BLANK,              /* nothing but blanks: skipped, not an error */
        CSV_HEADER,             /* the optional "email[,name]" header */
        CSV_TOO_LONG,
        CSV_TOO_MANY_FIELDS,
        CSV_BAD_QUOTE,
        CSV_CONTROL,            /* CR, LF, NUL or another control character */
        CSV_BAD_UTF8,
        CSV_BAD_EMAIL,
        CSV_BAD_NAME,           /* too long */
};

struct csv_row {
        struct addr addr;
        char name[NAME_MAX_BYTES + 1];
        bool has_name;
        enum addr_result addr_error;    /* with CSV_BAD_EMAIL */
};

/* Parse and check one line (without its newline; a trailing CR is allowed).
 * `first` says whether it is the file's first line, where a header may be. */
enum csv_result csv_parse_line(const char *line, size_t len, bool first, struct csv_row *row);
const char *csv_result_str(enum csv_result r);
