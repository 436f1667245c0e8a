/* Base64 (RFC 4648): the standard and the URL-safe alphabet, with or
 * without padding; a strict decoder for what we made ourselves and a
 * lenient one for MIME bodies from outside (a leaf: no I/O, no allocation). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define BASE64_URL      1u      /* '-' and '_' for '+' and '/' (RFC 4648 section 5) */
#define BASE64_NOPAD    2u      /* no '=': encoding leaves it out, strict decoding refuses it */

/* Characters the encoding of n bytes takes, without the NUL. */
size_t base64_encoded_len(size_t n, unsigned flags);

/* Bytes that decoding n characters can give at most (either decoder). */
size_t base64_decoded_max(size_t n);

/* Encode n bytes into out, which must hold base64_encoded_len(n) + 1
 * bytes; NUL-terminated.  Returns the length written (without the NUL). */
size_t base64_encode(const void *in, size_t n, char *out, unsigned flags);

/* Decode exactly the canonical encoding: only the alphabet of `flags`, no
 * blanks or line breaks, padding to a multiple of 4 unless BASE64_NOPAD
 * (then none, and no length of the form 4k + 1), and the unused low bits
 * of the last character 0, so that each byte string has one text form.
 * out holds base64_decoded_max(n) bytes; *out_len gets the bytes written.
 * false when the text is malformed (out then holds garbage). */
bool base64_decode(const char *s, size_t n, void *out, size_t *out_len, unsigned flags);

/* Decode a MIME body (RFC 2045 6.8) the way a mail reader does: any
 * character outside the standard alphabet (line breaks, blanks, junk) is
 * skipped, the first '=' ends the data, and a last incomplete group gives
 * what whole bytes it holds.  Never fails; returns the bytes written to
 * out, which holds base64_decoded_max(n) bytes. */
size_t base64_decode_mime(const char *s, size_t n, void *out);
