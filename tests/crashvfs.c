/*
 * crashvfs.c - a test-only SQLite VFS that shows what a power loss would
 * leave on disk.  Loaded into the daemon with LD_PRELOAD, it becomes the
 * default VFS, passes every call through, and keeps for each database and
 * WAL file an image "<file>-synced": the file as it was at its last sync.  Writes and truncations wait in memory, per file
 * (not per handle: a sync through any handle makes everything written to
 * that file durable, as the page cache does), and reach the image only when
 * the file is synced.  After kill -9, copying the images over the files is
 * the state a power cut at that moment would have left, the strictest one
 * (no unsynced write survives).  SQLite's own crash tests work the same way
 * (test6.c).
 *
 * Nothing of this is in the daemon; tests/integration/test_power_loss.py
 * uses it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

struct op {
        sqlite3_int64 off;
        int len;                        /* -1: truncate to off */
        unsigned char *data;
};

/* One file as the disk knows it. */
struct disk {
        struct disk *next;
        char *path, *image;
        struct op *ops;                 /* written since its last sync */
        size_t n, cap;
};

struct cv_file {
        sqlite3_file base;
        sqlite3_file *real;             /* the underlying VFS's file, after this struct */
        struct disk *disk;              /* NULL: not tracked */
};

static sqlite3_vfs crash_vfs;
static sqlite3_vfs *base_vfs;
static struct disk *disks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t real_offset(void)
{
        return (sizeof(struct cv_file) + 15) & ~(size_t)15;
}

static void die(const char *what, const char *path)
{
        fprintf(stderr, "crashvfs: %s %s: %s\n", what, path, strerror(errno));
        abort();
}

static void drop_ops(struct disk *d)
{
        for (size_t i = 0; i < d->n; i++)
                free(d->ops[i].data);
        d->n = 0;
}

/* The disk of `path`; a file seen for the first time counts as on disk as
 * it is now. */
static struct disk *disk_of(const char *path)
{
        for (struct disk *d = disks; d; d = d->next)
                if (strcmp(d->path, path) == 0)
                        return d;
        struct disk *d = calloc(1, sizeof(*d));
        if (!d)
                die("out of memory for", path);
        d->path = strdup(path);
        if (asprintf(&d->image, "%s-synced", path) < 0 || !d->path)
                die("out of memory for", path);
        if (access(d->image, F_OK) != 0) {
                int in = open(path, O_RDONLY | O_CLOEXEC);
                int out = open(d->image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (in < 0 || out < 0)
                        die("cannot copy", path);
                char buf[65536];
                ssize_t n;
                while ((n = read(in, buf, sizeof(buf))) > 0)
                        if (write(out, buf, (size_t)n) != n)
                                die("cannot write", d->image);
                close(in);
                close(out);
        }
        d->next = disks;
        disks = d;
        return d;
}

static void add_op(struct disk *d, sqlite3_int64 off, int len, const void *data)
{
        if (d->n == d->cap) {
                d->cap = d->cap ? 2 * d->cap : 64;
                d->ops = realloc(d->ops, d->cap * sizeof(*d->ops));
                if (!d->ops)
                        die("out of memory for", d->path);
        }
        struct op *o = &d->ops[d->n++];
        o->off = off;
        o->len = len;
        o->data = NULL;
        if (len > 0) {
                if (!(o->data = malloc((size_t)len)))
                        die("out of memory for", d->path);
                memcpy(o->data, data, (size_t)len);
        }
}

/* What was written to the file reaches its image, in order. */
static void make_durable(struct disk *d)
{
        int fd = open(d->image, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                die("cannot open", d->image);
        for (size_t i = 0; i < d->n; i++) {
                struct op *o = &d->ops[i];
                if (o->len < 0 ? ftruncate(fd, o->off) != 0
                               : pwrite(fd, o->data, (size_t)o->len, o->off) != o->len)
                        die("cannot write", d->image);
        }
        close(fd);
        drop_ops(d);
}

/* ---- the file methods: through, with the disk kept up to date ---- */

#define REAL(file) (((struct cv_file *)(file))->real)

static int cv_close(sqlite3_file *file)
{
        return REAL(file)->pMethods->xClose(REAL(file));
}

static int cv_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
        return REAL(file)->pMethods->xRead(REAL(file), p, n, off);
}

static int cv_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
        struct cv_file *f = (struct cv_file *)file;
        int rc = f->real->pMethods->xWrite(f->real, p, n, off);
        if (rc == SQLITE_OK && f->disk) {
                pthread_mutex_lock(&lock);
                add_op(f->disk, off, n, p);
                pthread_mutex_unlock(&lock);
        }
        return rc;
}

static int cv_truncate(sqlite3_file *file, sqlite3_int64 size)
{
        struct cv_file *f = (struct cv_file *)file;
        int rc = f->real->pMethods->xTruncate(f->real, size);
        if (rc == SQLITE_OK && f->disk) {
                pthread_mutex_lock(&lock);
                add_op(f->disk, size, -1, NULL);
                pthread_mutex_unlock(&lock);
        }
        return rc;
}

static int cv_sync(sqlite3_file *file, int flags)
{
        struct cv_file *f = (struct cv_file *)file;
        /* a failing disk: while the file $CRASHVFS_FAIL_SYNC names exists,
         * every sync fails and makes nothing durable */
        const char *fail = getenv("CRASHVFS_FAIL_SYNC");
        if (f->disk && fail && access(fail, F_OK) == 0)
                return SQLITE_IOERR_FSYNC;
        int rc = f->real->pMethods->xSync(f->real, flags);
        if (rc == SQLITE_OK && f->disk) {
                pthread_mutex_lock(&lock);
                make_durable(f->disk);
                pthread_mutex_unlock(&lock);
        }
        return rc;
}

static int cv_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
        return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int cv_lock(sqlite3_file *file, int level)
{
        return REAL(file)->pMethods->xLock(REAL(file), level);
}

static int cv_unlock(sqlite3_file *file, int level)
{
        return REAL(file)->pMethods->xUnlock(REAL(file), level);
}

static int cv_check_reserved_lock(sqlite3_file *file, int *out)
{
        return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int cv_file_control(sqlite3_file *file, int op, void *arg)
{
        return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int cv_sector_size(sqlite3_file *file)
{
        return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int cv_device_characteristics(sqlite3_file *file)
{
        return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int cv_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **p)
{
        return REAL(file)->pMethods->xShmMap(REAL(file), page, size, extend, p);
}

static int cv_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
        return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void cv_shm_barrier(sqlite3_file *file)
{
        REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int cv_shm_unmap(sqlite3_file *file, int delete_flag)
{
        return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

static int cv_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **p)
{
        *p = NULL;      /* no memory-mapped reads: every byte goes through xRead */
        return SQLITE_OK;
}

static int cv_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
        return SQLITE_OK;
}

static const sqlite3_io_methods cv_methods = {
        .iVersion = 3,
        .xClose = cv_close,
        .xRead = cv_read,
        .xWrite = cv_write,
        .xTruncate = cv_truncate,
        .xSync = cv_sync,
        .xFileSize = cv_file_size,
        .xLock = cv_lock,
        .xUnlock = cv_unlock,
        .xCheckReservedLock = cv_check_reserved_lock,
        .xFileControl = cv_file_control,
        .xSectorSize = cv_sector_size,
        .xDeviceCharacteristics = cv_device_characteristics,
        .xShmMap = cv_shm_map,
        .xShmLock = cv_shm_lock,
        .xShmBarrier = cv_shm_barrier,
        .xShmUnmap = cv_shm_unmap,
        .xFetch = cv_fetch,
        .xUnfetch = cv_unfetch,
};

/* ---- the VFS ---- */

static int cv_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                   int *out_flags)
{
        struct cv_file *f = (struct cv_file *)file;
        memset(f, 0, sizeof(*f));
        f->real = (sqlite3_file *)((char *)file + real_offset());
        int rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
        if (rc != SQLITE_OK || !f->real->pMethods)
                return rc;
        if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL))) {
                pthread_mutex_lock(&lock);
                f->disk = disk_of(name);
                pthread_mutex_unlock(&lock);
        }
        f->base.pMethods = &cv_methods;
        return SQLITE_OK;
}

static int cv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
        int rc = base_vfs->xDelete(base_vfs, name, sync_dir);
        pthread_mutex_lock(&lock);
        for (struct disk *d = disks; d; d = d->next)
                if (strcmp(d->path, name) == 0) {
                        drop_ops(d);
                        unlink(d->image);
                        /* a file made again under this name starts empty */
                        int fd = open(d->image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                        if (fd >= 0)
                                close(fd);
                }
        pthread_mutex_unlock(&lock);
        return rc;
}

static int cv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
        return base_vfs->xAccess(base_vfs, name, flags, out);
}

static int cv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
        return base_vfs->xFullPathname(base_vfs, name, n, out);
}

static void *cv_dl_open(sqlite3_vfs *vfs, const char *name)
{
        return base_vfs->xDlOpen(base_vfs, name);
}

static void cv_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
        base_vfs->xDlError(base_vfs, n, msg);
}

static void (*cv_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
        return base_vfs->xDlSym(base_vfs, h, sym);
}

static void cv_dl_close(sqlite3_vfs *vfs, void *h)
{
        base_vfs->xDlClose(base_vfs, h);
}

static int cv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
        return base_vfs->xRandomness(base_vfs, n, out);
}

static int cv_sleep(sqlite3_vfs *vfs, int us)
{
        return base_vfs->xSleep(base_vfs, us);
}

static int cv_current_time(sqlite3_vfs *vfs, double *t)
{
        return base_vfs->xCurrentTime(base_vfs, t);
}

static int cv_get_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
        return base_vfs->xGetLastError(base_vfs, n, msg);
}

static int cv_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *t)
{
        return base_vfs->xCurrentTimeInt64(base_vfs, t);
}

/* Made the default before the daemon's main() runs (LD_PRELOAD). */
__attribute__((constructor)) static void crashvfs_register(void)
{
        sqlite3_vfs *def = sqlite3_vfs_find(NULL);
        if (!def) {
                fprintf(stderr, "crashvfs: no default SQLite VFS\n");
                abort();
        }
        base_vfs = def;
        crash_vfs = (sqlite3_vfs){
                .iVersion = 2,
                .szOsFile = (int)(real_offset() + (size_t)def->szOsFile),
                .mxPathname = def->mxPathname,
                .zName = "crashvfs",
                .xOpen = cv_open,
                .xDelete = cv_delete,
                .xAccess = cv_access,
                .xFullPathname = cv_full_pathname,
                .xDlOpen = cv_dl_open,
                .xDlError = cv_dl_error,
                .xDlSym = cv_dl_sym,
                .xDlClose = cv_dl_close,
                .xRandomness = cv_randomness,
                .xSleep = cv_sleep,
                .xCurrentTime = cv_current_time,
                .xGetLastError = cv_get_last_error,
                .xCurrentTimeInt64 = cv_current_time_int64,
        };
        if (sqlite3_vfs_register(&crash_vfs, 1) != SQLITE_OK) {
                fprintf(stderr, "crashvfs: cannot register\n");
                abort();
        }
}
