/* Random bytes for secrets and unique names, from OpenSSL's CSPRNG, drawn a
 * kilobyte at a time into a pool of the calling thread (a leaf). */
#pragma once
#include <stddef.h>

/* n bytes into out.  0, or -EIO when the CSPRNG fails. */
int csprng_bytes(void *out, size_t n);

/* Wipe what is left of the calling thread's pool (before the thread ends). */
void csprng_forget(void);
