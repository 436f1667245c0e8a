/* A SQLite VFS over the default one that writes the frames of a WAL
 * transaction with one system call rather than two per page (walbuf.c). */
#pragma once

#define WALBUF_VFS "newsletterd-walbuf"

/* Registers the VFS (once; not as the default) and returns its name for
 * sqlite3_open_v2(), or NULL when the default VFS lacks what it needs (then
 * open with the default VFS). */
const char *walbuf_register(void);
