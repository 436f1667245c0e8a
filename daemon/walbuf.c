/*
 * walbuf.c - a thin SQLite VFS over the default one that gathers the frames
 * of a transaction into one write.  SQLite writes every WAL frame as two
 * pwrite() calls (its 24-byte header, then the page): a sign-up changes
 * pages in a dozen b-trees, so a commit of a busy loop iteration made a
 * hundred or more system calls on the main thread, each of them going
 * through the file system's write path for a few KiB.
 *
 * Only WAL files are buffered, and only as far as it is safe:
 *   - only frames that do not end a transaction are held (a header whose
 *     "database size after commit" field is zero, and the page written
 *     right after it).  The commit frame's header goes out together with
 *     everything held, in the xWrite call SQLite makes for it, and its page
 *     right after: a transaction is in the file (the page cache, and on
 *     disk after SQLite's sync) before SQLite publishes it in the wal-index
 *     for other connections, and a failed write fails the commit as it
 *     would without this file.  Two writes per commit instead of two per
 *     page;
 *   - whatever else is written (the WAL header, a page written again within
 *     a transaction, checksums rewritten) goes out at once, after what is
 *     held;
 *   - every other call on the WAL file (read, size, sync, truncate, close,
 *     file controls) first writes what is held.
 * A transaction that spills pages mid-way and is then rolled back leaves
 * frames beyond the committed end, exactly as SQLite's own writes would.
 *
 * Everything else (the database file, its shared memory, temporary files)
 * goes straight to the default VFS.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "walbuf.h"

/* Flushed when full.  Below 128 KiB: the default VFS writes at most
 * 0x1ffff bytes per call and cannot finish a longer write whose rest is a
 * multiple of 128 KiB (it reports the disk full). */
#define WALBUF_CAP (124 * 1024)
#define FRAME_HEADER 24                 /* SQLite's WAL frame header (wal.c) */

struct wb_file {
        sqlite3_file base;
        sqlite3_file *real;             /* the default VFS's file, after this struct */
        bool wal;
        bool in_frame;                  /* the last write was a non-commit frame header */
        unsigned char *buf;             /* WAL: bytes held for [at, at + len) */
        size_t len;
        sqlite3_int64 at;
};

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *base_vfs;

static size_t real_offset(void)
{
        return (sizeof(struct wb_file) + 15) & ~(size_t)15;
}

static int flush(struct wb_file *f)
{
        if (f->len == 0)
                return SQLITE_OK;
        int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
        f->len = 0;
        return rc;
}

static uint32_t get32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- the methods ---- */

static int wb_close(sqlite3_file *file)
{
        struct wb_file *f = (struct wb_file *)file;
        int rc = flush(f);
        int rc2 = f->real->pMethods->xClose(f->real);
        free(f->buf);
        f->buf = NULL;
        return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
        struct wb_file *f = (struct wb_file *)file;
        int rc = flush(f);
        return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, p, n, off);
}

/* Hold `n` bytes at `off` behind what is held when they continue it. */
static int hold(struct wb_file *f, const void *p, int n, sqlite3_int64 off)
{
        if (f->len && (off != f->at + (sqlite3_int64)f->len || f->len + (size_t)n > WALBUF_CAP)) {
                int rc = flush(f);
                if (rc != SQLITE_OK)
                        return rc;
        }
        if ((size_t)n > WALBUF_CAP)
                return f->real->pMethods->xWrite(f->real, p, n, off);
        if (!f->buf && !(f->buf = malloc(WALBUF_CAP)))
                return f->real->pMethods->xWrite(f->real, p, n, off);
        if (f->len == 0)
                f->at = off;
        memcpy(f->buf + f->len, p, (size_t)n);
        f->len += (size_t)n;
        return SQLITE_OK;
}

static int wb_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
        struct wb_file *f = (struct wb_file *)file;
        if (!f->wal)
                return f->real->pMethods->xWrite(f->real, p, n, off);
        bool was_in_frame = f->in_frame;
        f->in_frame = false;
        /* the header of a frame that does not end a transaction: its page
         * follows at once, and more frames after it */
        if (n == FRAME_HEADER && get32((const unsigned char *)p + 4) == 0) {
                f->in_frame = true;
                return hold(f, p, n, off);
        }
        /* that frame's page, right behind its held header (after a read
         * or any other flush, what comes next is not it: checksums being
         * rewritten, say, whose last header is a commit frame's) */
        if (was_in_frame && f->len && off == f->at + (sqlite3_int64)f->len)
                return hold(f, p, n, off);
        /* anything else (a commit frame, the WAL header, a page written again,
         * checksums rewritten) goes out now, behind what is held: in one
         * write when it continues it */
        int rc = hold(f, p, n, off);
        return rc != SQLITE_OK ? rc : flush(f);
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
        struct wb_file *f = (struct wb_file *)file;
        int rc = flush(f);
        return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *file, int flags)
{
        struct wb_file *f = (struct wb_file *)file;
        int rc = flush(f);
        return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
        struct wb_file *f = (struct wb_file *)file;
        int rc = flush(f);
        return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wb_lock(sqlite3_file *file, int level)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xLock(f->real, level);
}

static int wb_unlock(sqlite3_file *file, int level)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xUnlock(f->real, level);
}

static int wb_check_reserved_lock(sqlite3_file *file, int *out)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wb_file_control(sqlite3_file *file, int op, void *arg)
{
        struct wb_file *f = (struct wb_file *)file;
        int rc = flush(f);
        if (rc != SQLITE_OK)
                return rc;
        if (op == SQLITE_FCNTL_VFSNAME) {
                rc = f->real->pMethods->xFileControl(f->real, op, arg);
                if (rc == SQLITE_OK)
                        *(char **)arg = sqlite3_mprintf("walbuf/%z", *(char **)arg);
                return rc;
        }
        return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wb_sector_size(sqlite3_file *file)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xSectorSize(f->real);
}

static int wb_device_characteristics(sqlite3_file *file)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int wb_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **p)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xShmMap(f->real, page, size, extend, p);
}

static int wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wb_shm_barrier(sqlite3_file *file)
{
        struct wb_file *f = (struct wb_file *)file;
        f->real->pMethods->xShmBarrier(f->real);
}

static int wb_shm_unmap(sqlite3_file *file, int delete_flag)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int wb_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **p)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xFetch(f->real, off, n, p);
}

static int wb_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
        struct wb_file *f = (struct wb_file *)file;
        return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods wb_methods = {
        .iVersion = 3,
        .xClose = wb_close,
        .xRead = wb_read,
        .xWrite = wb_write,
        .xTruncate = wb_truncate,
        .xSync = wb_sync,
        .xFileSize = wb_file_size,
        .xLock = wb_lock,
        .xUnlock = wb_unlock,
        .xCheckReservedLock = wb_check_reserved_lock,
        .xFileControl = wb_file_control,
        .xSectorSize = wb_sector_size,
        .xDeviceCharacteristics = wb_device_characteristics,
        .xShmMap = wb_shm_map,
        .xShmLock = wb_shm_lock,
        .xShmBarrier = wb_shm_barrier,
        .xShmUnmap = wb_shm_unmap,
        .xFetch = wb_fetch,
        .xUnfetch = wb_unfetch,
};

static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                   int *out_flags)
{
        struct wb_file *f = (struct wb_file *)file;
        (void)vfs;
        memset(f, 0, sizeof(*f));
        f->real = (sqlite3_file *)((char *)f + real_offset());
        int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
        if (!f->real->pMethods) {
                f->base.pMethods = NULL;        /* nothing to close */
                return rc;
        }
        /* the methods below need what the default VFS's files have */
        if (f->real->pMethods->iVersion < 3) {
                f->real->pMethods->xClose(f->real);
                f->base.pMethods = NULL;
                return SQLITE_CANTOPEN;
        }
        f->wal = (flags & SQLITE_OPEN_WAL) != 0;
        f->base.pMethods = &wb_methods;
        return rc;
}

/* The rest of the VFS is the default one's. */
static int wb_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
        (void)vfs;
        return base_vfs->xDelete(base_vfs, name, sync_dir);
}

static int wb_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
        (void)vfs;
        return base_vfs->xAccess(base_vfs, name, flags, out);
}

static int wb_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
        (void)vfs;
        return base_vfs->xFullPathname(base_vfs, name, n, out);
}

static void *wb_dl_open(sqlite3_vfs *vfs, const char *name)
{
        (void)vfs;
        return base_vfs->xDlOpen(base_vfs, name);
}

static void wb_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
        (void)vfs;
        base_vfs->xDlError(base_vfs, n, msg);
}

static void (*wb_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
        (void)vfs;
        return base_vfs->xDlSym(base_vfs, h, sym);
}

static void wb_dl_close(sqlite3_vfs *vfs, void *h)
{
        (void)vfs;
        base_vfs->xDlClose(base_vfs, h);
}

static int wb_randomness(sqlite3_vfs *vfs, int n, char *out)
{
        (void)vfs;
        return base_vfs->xRandomness(base_vfs, n, out);
}

static int wb_sleep(sqlite3_vfs *vfs, int us)
{
        (void)vfs;
        return base_vfs->xSleep(base_vfs, us);
}

static int wb_current_time(sqlite3_vfs *vfs, double *t)
{
        (void)vfs;
        return base_vfs->xCurrentTime(base_vfs, t);
}

static int wb_get_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
        (void)vfs;
        return base_vfs->xGetLastError ? base_vfs->xGetLastError(base_vfs, n, msg) : 0;
}

static int wb_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *t)
{
        (void)vfs;
        return base_vfs->xCurrentTimeInt64(base_vfs, t);
}

const char *walbuf_register(void)
{
        if (sqlite3_vfs_find(WALBUF_VFS))
                return WALBUF_VFS;
        sqlite3_vfs *def = sqlite3_vfs_find(NULL);
        if (!def || def->iVersion < 2 || !def->xCurrentTimeInt64)
                return NULL;
        base_vfs = def;
        walbuf_vfs = (sqlite3_vfs){
                .iVersion = 2,
                .szOsFile = (int)(real_offset() + (size_t)def->szOsFile),
                .mxPathname = def->mxPathname,
                .zName = WALBUF_VFS,
                .xOpen = wb_open,
                .xDelete = wb_delete,
                .xAccess = wb_access,
                .xFullPathname = wb_full_pathname,
                .xDlOpen = wb_dl_open,
                .xDlError = wb_dl_error,
                .xDlSym = wb_dl_sym,
                .xDlClose = wb_dl_close,
                .xRandomness = wb_randomness,
                .xSleep = wb_sleep,
                .xCurrentTime = wb_current_time,
                .xGetLastError = wb_get_last_error,
                .xCurrentTimeInt64 = wb_current_time_int64,
        };
        if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK)
                return NULL;
        return WALBUF_VFS;
}
