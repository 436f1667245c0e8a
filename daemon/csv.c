/*
 * csv.c - one line of an import file: "email" or "email,name", fields
 * optionally in double quotes ("" for a quote inside), UTF-8, an optional
 * header line.  A record must fit on one line: a quoted field with a line
 * break in it is an error, not a continuation.  A leaf: no I/O.
 */
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "mime.h"
#include "textutil.h"

/* Split into at most 2 fields; each is unquoted into `out` (cap each). */
static enum csv_result split(const char *s, size_t len, char out[2][CSV_LINE_MAX + 1], size_t flen[2],
                             size_t *nf)
{
        size_t i = 0, n = 0;
        for (;;) {
                if (n == 2)
                        return CSV_TOO_MANY_FIELDS;
                size_t o = 0;
                while (i < len && is_wsp(s[i]))
                        i++;
                if (i < len && s[i] == '"') {
                        i++;
                        for (;;) {
                                if (i >= len)
                                        return CSV_BAD_QUOTE;
                                if (s[i] == '"') {
                                        if (i + 1 < len && s[i + 1] == '"') {
                                                out[n][o++] = '"';
                                                i += 2;
                                                continue;
                                        }
                                        i++;
                                        break;
                                }
                                out[n][o++] = s[i++];
                        }
                        while (i < len && is_wsp(s[i]))
                                i++;
                        if (i < len && s[i] != ',')
                                return CSV_BAD_QUOTE;
                } else {
                        while (i < len && s[i] != ',') {
                                if (s[i] == '"')
                                        return CSV_BAD_QUOTE;
                                out[n][o++] = s[i++];
                        }
                        while (o && is_wsp(out[n][o - 1]))
                                o--;
                }
                out[n][o] = '\0';
                flen[n] = o;
                n++;
                if (i >= len)
                        break;
                i++;    /* the comma */
                if (i >= len) {
                        /* "email," : an empty last field */
                        if (n == 2)
                                return CSV_TOO_MANY_FIELDS;
                        out[n][0] = '\0';
                        flen[n] = 0;
                        n++;
                        break;
                }
        }
        *nf = n;
        return CSV_OK;
}

enum csv_result csv_parse_line(const char *line, size_t len, bool first, struct csv_row *row)
{
        char fields[2][CSV_LINE_MAX + 1];
        size_t flen[2] = { 0, 0 }, nf = 0;

        memset(row, 0, sizeof(*row));
        if (len && line[len - 1] == '\r')
                len--;
        if (len > CSV_LINE_MAX)
                return CSV_TOO_LONG;
        /* a UTF-8 byte order mark on the first line */
        if (first && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
                line += 3;
                len -= 3;
        }
        if (mime_has_control(line, len))
                return CSV_CONTROL;
        if (!mime_utf8_valid(line, len))
                return CSV_BAD_UTF8;
        size_t k = 0;
        while (k < len && is_wsp(line[k]))
                k++;
        if (k == len)
                return CSV_BLANK;

        enum csv_result r = split(line, len, fields, flen, &nf);
        if (r != CSV_OK)
                return r;
        if (first && strcasecmp(fields[0], "email") == 0 &&
            (nf == 1 || strcasecmp(fields[1], "name") == 0))
                return CSV_HEADER;
        row->addr_error = addr_parse(fields[0], flen[0], &row->addr);
        if (row->addr_error != ADDR_OK)
                return CSV_BAD_EMAIL;
        if (nf == 2 && flen[1]) {
                if (flen[1] > NAME_MAX_BYTES)
                        return CSV_BAD_NAME;
                memcpy(row->name, fields[1], flen[1] + 1);
                row->has_name = true;
        }
        return CSV_OK;
}

const char *csv_result_str(enum csv_result r)
{
        switch (r) {
        case CSV_OK: return "ok";
        case CSV_BLANK: return "blank line";
        case CSV_HEADER: return "header line";
        case CSV_TOO_LONG: return "line too long";
        case CSV_TOO_MANY_FIELDS: return "more than two fields (expected email[,name])";
        case CSV_BAD_QUOTE: return "unbalanced or misplaced double quote";
        case CSV_CONTROL: return "control character";
        case CSV_BAD_UTF8: return "not valid UTF-8";
        case CSV_BAD_EMAIL: return "invalid address";
        case CSV_BAD_NAME: return "name too long";
        }
        return "invalid line";
}
