/* Markdown issues: CommonMark (cmark, the reference implementation) to the
 * HTML part of a mail, inside a small layout a mail client shows as meant
 * (inline styles, a maximum width, nothing loaded from elsewhere).  Raw
 * HTML in the source is not passed through, nor links to javascript:,
 * vbscript:, file: or data:.  {{placeholders}} stay placeholders, in text
 * and in link targets alike, to be filled per recipient.  A leaf: no I/O. */
#pragma once
#include <stddef.h>

enum markdown_result {
        MARKDOWN_OK,
        MARKDOWN_BAD_UTF8,      /* the source is not UTF-8 */
        MARKDOWN_RESERVED,      /* the source holds the marker placeholders are kept by */
};

/* The HTML part for the CommonMark `src` (malloc'd into *html). */
enum markdown_result markdown_render(const char *src, size_t len, char **html);
const char *markdown_result_str(enum markdown_result r);
