/* file:// publisher — JSON Lines, one sample per line, with Ceilometer's
 * rotation options: file:///path?max_bytes=N&backup_count=M (the `json`
 * option of Ceilometer's URL is accepted; sluice always writes JSON).
 * Rotation follows Python's RotatingFileHandler, which Ceilometer uses: when
 * max_bytes > 0 and backup_count > 0 and the next write would reach
 * max_bytes, path.(M-1) -> path.M, ..., path -> path.1.
 *
 * Several pipeline workers may append to one file, each with its own
 * instance and fd. Every batch is written under flock(LOCK_EX) on the file
 * itself, after checking under that lock that the fd still is the file at
 * `path` (same dev and inode; if another worker rotated it, or someone
 * removed it, the fd is reopened first). A rotation happens under the same
 * lock, so it is decided once per threshold, and no batch lands in a file
 * that has been rotated away. O_APPEND writes to one inode are serialised by
 * the kernel anyway, so the lock costs two system calls per batch. */
#include "worker/publishers/publisher.h"
#include "worker/publishers/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"

#define S_MODE 0644

typedef struct {
    char    *path;
    int      fd;
    dev_t    dev;
    ino_t    ino;
    unsigned long long max_bytes;
    unsigned backup_count;
    yajl_gen gen;
    sl_buf_t buf;
} s_file_t;

/* The URL's query options, as text: their checks below give the range and
 * an example in the message (sluiced -t shows it to the operator). */
typedef struct {
    char *max_bytes;
    char *backup_count;
} s_opts_t;

/* The operator's umask, when the supervisor told us (it runs with a
 * stricter one). */
static mode_t s_operator_umask;
static int    s_operator_umask_set;

void
sl_publisher_file_set_umask(mode_t operator_umask)
{
    s_operator_umask = operator_umask & 0777;
    s_operator_umask_set = 1;
}

static void s_destroy(void **ctx_p);

/* Opens path for appending, creating it with S_MODE minus the operator's
 * umask: only the process that created it sets its mode, so an operator's
 * chmod of an existing file stays. */
static int
s_open_path(const char *path)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_CREAT | O_EXCL, S_MODE);
        if (fd >= 0) {
            if (s_operator_umask_set && fchmod(fd, S_MODE & ~s_operator_umask) < 0)
                sl_warn("file publisher: cannot set the mode of %s: %s", path, strerror(errno));
            return fd;
        }
        if (errno != EEXIST)
            return -1;
        /* Another worker created it between our two opens: open theirs. */
    }
    errno = EAGAIN;
    return -1;
}

/* (Re)opens f->path into f->fd. */
static int
s_open(s_file_t *f, char *err, size_t errlen)
{
    int fd = s_open_path(f->path);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "file publisher: cannot open %s: %s (check the directory exists "
                 "and is writable)", f->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return 0;
}

/* A URL option's value: digits only, at most max. On error, err says which
 * option, the allowed range and what to write instead. */
static int
s_check_whole(const char *name, const char *v, unsigned long long max, const char *range_note,
              const char *example, unsigned long long *out, char *err, size_t errlen)
{
    unsigned long long x = 0;
    int ok = *v && strspn(v, "0123456789") == strlen(v);
    if (ok) {
        errno = 0;
        x = strtoull(v, NULL, 10);
        ok = errno == 0 && x <= max;
    }
    if (!ok)
        return sl_errf(err, errlen, "%s=%s is not allowed: %s must be a whole number from 0 to "
                       "%llu%s; write e.g. %s", name, v, name, max, range_note, example);
    if (out)
        *out = x;
    return 0;
}

static int
s_check_max_bytes(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    return s_check_whole(o->name, text, SL_PUBLISHER_FILE_MAX_BYTES_MAX,
                         " (2^50, 1 PiB; 0 = never rotate)", "max_bytes=104857600 for 100 MiB",
                         NULL, err, errlen);
}

static int
s_check_backup_count(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    return s_check_whole(o->name, text, SL_PUBLISHER_FILE_BACKUP_COUNT_MAX, " (0 = never rotate)",
                         "backup_count=5", NULL, err, errlen);
}

static const sl_opt_t s_opts[] = {
    { .name = "max_bytes", .type = SL_OPT_STR, .offset = offsetof(s_opts_t, max_bytes),
      .def = "0", .check = s_check_max_bytes, .type_text = "whole number 0..2^50",
      .help = "rotate before the file would reach this many bytes (with backup_count > 0; "
              "0 = never rotate), like Ceilometer's RotatingFileHandler" },
    { .name = "backup_count", .type = SL_OPT_STR, .offset = offsetof(s_opts_t, backup_count),
      .def = "0", .check = s_check_backup_count, .type_text = "whole number 0..1000",
      .help = "rotated files kept: path.1 (newest) .. path.N (0 = never rotate)" },
    { .name = "json", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .type_text = "flag",
      .help = "accepted as in Ceilometer's URL; sluice always writes JSON Lines" },
    { .name = NULL },
};

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    const char *rest = url + strlen("file://");
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t) (q - rest) : strlen(rest);
    if (plen == 0 || rest[0] != '/') {
        snprintf(err, errlen, "needs an absolute path (file:///var/lib/sluice/samples.jsonl)");
        return NULL;
    }
    s_file_t *f = sl_xcalloc(1, sizeof *f);
    f->fd = -1;
    f->path = sl_xstrdup(rest);
    f->path[plen] = '\0';
    unsigned long long x = 0;
    /* Checked when the options were set; read them as numbers now. */
    if (o && o->max_bytes && s_check_whole("max_bytes", o->max_bytes,
                                           SL_PUBLISHER_FILE_MAX_BYTES_MAX, "", "", &x, err,
                                           errlen) == 0)
        f->max_bytes = x;
    x = 0;
    if (o && o->backup_count && s_check_whole("backup_count", o->backup_count,
                                              SL_PUBLISHER_FILE_BACKUP_COUNT_MAX, "", "", &x,
                                              err, errlen) == 0)
        f->backup_count = (unsigned) x;
    if (!check_only) {
        if (s_open(f, err, errlen) < 0) {
            void *v = f;
            s_destroy(&v);
            return NULL;
        }
        f->gen = yajl_gen_alloc(NULL);
    }
    return f;
}

/* Renames path.(M-1) -> path.M, ..., path -> path.1; the caller holds the
 * lock of the file at path. */
static void
s_rotate(s_file_t *f)
{
    size_t n = strlen(f->path) + 16;
    char *from = sl_xmalloc(n), *to = sl_xmalloc(n);
    for (unsigned i = f->backup_count - 1; i >= 1; i--) {
        snprintf(from, n, "%s.%u", f->path, i);
        snprintf(to, n, "%s.%u", f->path, i + 1);
        if (rename(from, to) < 0 && errno != ENOENT)
            sl_warn("file publisher: cannot rename %s to %s: %s", from, to, strerror(errno));
    }
    snprintf(to, n, "%s.1", f->path);
    if (rename(f->path, to) < 0)
        sl_warn("file publisher: cannot rotate %s: %s; appending to it instead", f->path,
                strerror(errno));
    free(from);
    free(to);
}

static int
s_flock(int fd, int op)
{
    int rc;
    while ((rc = flock(fd, op)) < 0 && errno == EINTR)
        ;
    return rc;
}

/* Leaves f->fd open on the file at f->path and locked exclusively, rotated
 * first if writing incoming bytes would reach max_bytes. 0, or -1 with err
 * (nothing locked). */
static int
s_lock_current(s_file_t *f, size_t incoming, char *err, size_t errlen)
{
    int rotated = 0;
    for (int attempt = 0; attempt < 16; attempt++) {
        if (f->fd < 0 && s_open(f, err, errlen) < 0)
            return -1;
        if (s_flock(f->fd, LOCK_EX) < 0)
            return sl_errf(err, errlen, "file publisher: cannot lock %s: %s", f->path,
                           strerror(errno));
        struct stat cur;
        int current = stat(f->path, &cur) == 0 && cur.st_dev == f->dev && cur.st_ino == f->ino;
        /* A batch larger than max_bytes is written whole into a fresh file
         * (one record per rotation, as RotatingFileHandler does with a
         * record larger than maxBytes): after rotating, only a file another
         * worker has written to since is rotated again. */
        if (current && (!rotated || cur.st_size > 0) && f->max_bytes && f->backup_count &&
            (unsigned long long) cur.st_size + incoming >= f->max_bytes) {
            s_rotate(f);
            rotated = 1;
            current = stat(f->path, &cur) == 0 && cur.st_dev == f->dev && cur.st_ino == f->ino;
        }
        if (current)
            return 0;
        /* Rotated (by another worker or just now) or removed: the next
         * batch goes to the file now at path. */
        close(f->fd);   /* drops our lock too */
        f->fd = -1;
    }
    return sl_errf(err, errlen, "file publisher: %s keeps being replaced while we write to it "
                   "(is another program rotating or removing it?)", f->path);
}

static sl_pub_status_t s_write(s_file_t *f, char *err, size_t errlen);

static void
s_append(s_file_t *f, const char *text, size_t n)
{
    sl_buf_put(&f->buf, text, n);
    sl_buf_putc(&f->buf, '\n');
}

/* Events arrive serialised (Ceilometer has no file publisher for events;
 * sluice writes them as JSON Lines in the oracle's event format). */
static sl_pub_status_t
s_publish_events(s_file_t *f, const char *const *json, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (json[i])
            s_append(f, json[i], strlen(json[i]));
    return s_write(f, err, errlen);
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_file_t *f = ctx;
    sl_buf_reset(&f->buf);
    if (b->kind == SL_PUB_EVENTS)
        return s_publish_events(f, b->events, b->n, err, errlen);
    const sl_sample_t *samples = b->samples;
    for (size_t i = 0; i < b->n; i++) {
        const unsigned char *out;
        size_t olen;
        yajl_gen_reset(f->gen, NULL);
        yajl_gen_clear(f->gen);
        if (sl_sample_gen(f->gen, &samples[i]) < 0 ||
            yajl_gen_get_buf(f->gen, &out, &olen) != yajl_gen_status_ok) {
            snprintf(err, errlen, "file publisher: cannot serialise sample %s", samples[i].name);
            return SL_PUB_ERROR;
        }
        s_append(f, (const char *) out, olen);
    }
    return s_write(f, err, errlen);
}

/* One O_APPEND write of the len bytes in f->buf, under the file's lock
 * (rotating first if due). */
static sl_pub_status_t
s_write(s_file_t *f, char *err, size_t errlen)
{
    size_t len = f->buf.n;
    if (!len)
        return SL_PUB_OK;
    if (s_lock_current(f, len, err, errlen) < 0)
        return SL_PUB_RETRY;
    size_t off = 0;
    sl_pub_status_t st = SL_PUB_OK;
    while (off < len) {
        ssize_t w = write(f->fd, f->buf.p + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "file publisher: write to %s failed: %s (disk full?)",
                     f->path, strerror(errno));
            st = off ? SL_PUB_ERROR : SL_PUB_RETRY;
            break;
        }
        off += (size_t) w;
    }
    s_flock(f->fd, LOCK_UN);
    return st;
}

static void
s_destroy(void **ctx_p)
{
    s_file_t *f = *ctx_p;
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->gen)
        yajl_gen_free(f->gen);
    sl_buf_free(&f->buf);
    free(f->path);
    free(f);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_file = {
    .name = "file",
    .help = "JSON Lines file, one sample or event per line; ?max_bytes=N&backup_count=M "
            "rotate like Ceilometer's",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_EVENTS | SL_PUB_F_INLINE,   /* local appends: on the loop, inline */
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
