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
#include "worker/publisher.h"
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
    char    *buf;
    size_t   cap;
} s_file_t;

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

/* Parses a URL option's value: digits only, at most max. On error, err says
 * which option, the allowed range and what to write instead. */
static int
s_parse_option(const char *url, const char *name, const char *v, unsigned long long max,
               const char *range_note, const char *example, unsigned long long *out,
               char *err, size_t errlen)
{
    unsigned long long x = 0;
    int ok = *v && strspn(v, "0123456789") == strlen(v);
    if (ok) {
        errno = 0;
        x = strtoull(v, NULL, 10);
        ok = errno == 0 && x <= max;
    }
    if (!ok)
        return sl_errf(err, errlen, "file publisher '%s': %s=%s is not allowed: %s must be a "
                       "whole number from 0 to %llu%s; write e.g. %s", url, name, v, name, max,
                       range_note, example);
    *out = x;
    return 0;
}

static void *
s_init(const char *url, int check_only, char *err, size_t errlen)
{
    const char *rest = url + strlen("file://");
    const char *q = strchr(rest, '?');
    size_t plen = q ? (size_t) (q - rest) : strlen(rest);
    if (plen == 0 || rest[0] != '/') {
        snprintf(err, errlen, "file publisher '%s': needs an absolute path (file:///var/lib/sluice/samples.jsonl)", url);
        return NULL;
    }
    s_file_t *f = sl_xcalloc(1, sizeof *f);
    f->fd = -1;
    f->path = sl_xstrdup(rest);
    f->path[plen] = '\0';
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t) (amp - p) : strlen(p);
        char kv[128];
        if (n >= sizeof kv)
            n = sizeof kv - 1;
        memcpy(kv, p, n);
        kv[n] = '\0';
        char *eq = strchr(kv, '=');
        if (eq)
            *eq++ = '\0';
        unsigned long long x = 0;
        int rc = 0;
        if (strcmp(kv, "max_bytes") == 0) {
            rc = s_parse_option(url, kv, eq ? eq : "", SL_PUBLISHER_FILE_MAX_BYTES_MAX,
                                " (2^50, 1 PiB; 0 = never rotate)",
                                "max_bytes=104857600 for 100 MiB", &x, err, errlen);
            f->max_bytes = x;
        } else if (strcmp(kv, "backup_count") == 0) {
            rc = s_parse_option(url, kv, eq ? eq : "", SL_PUBLISHER_FILE_BACKUP_COUNT_MAX,
                                " (0 = never rotate)", "backup_count=5", &x, err, errlen);
            f->backup_count = (unsigned) x;
        } else if (strcmp(kv, "json") != 0) {
            rc = sl_errf(err, errlen, "file publisher '%s': unknown option '%s' (known: "
                         "max_bytes, backup_count, json)", url, kv);
        }
        if (rc < 0) {
            void *v = f;
            s_destroy(&v);
            return NULL;
        }
        p = amp ? amp + 1 : NULL;
    }
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

static sl_pub_status_t s_write(s_file_t *f, size_t len, char *err, size_t errlen);

static void
s_append(s_file_t *f, size_t *len, const char *text, size_t n)
{
    if (*len + n + 1 > f->cap) {
        f->cap = (*len + n + 1) * 2;
        f->buf = sl_xrealloc(f->buf, f->cap);
    }
    memcpy(f->buf + *len, text, n);
    *len += n;
    f->buf[(*len)++] = '\n';
}

/* Events arrive serialised (Ceilometer has no file publisher for events;
 * sluice writes them as JSON Lines in the oracle's event format). */
static sl_pub_status_t
s_publish_events(void *ctx, const char *const *json, size_t n, char *err, size_t errlen)
{
    s_file_t *f = ctx;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (json[i])
            s_append(f, &len, json[i], strlen(json[i]));
    return s_write(f, len, err, errlen);
}

static sl_pub_status_t
s_publish(void *ctx, const sl_sample_t *samples, size_t n, char *err, size_t errlen)
{
    s_file_t *f = ctx;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *out;
        size_t olen;
        yajl_gen_reset(f->gen, NULL);
        yajl_gen_clear(f->gen);
        if (sl_sample_gen(f->gen, &samples[i]) < 0 ||
            yajl_gen_get_buf(f->gen, &out, &olen) != yajl_gen_status_ok) {
            snprintf(err, errlen, "file publisher: cannot serialise sample %s", samples[i].name);
            return SL_PUB_ERROR;
        }
        s_append(f, &len, (const char *) out, olen);
    }
    return s_write(f, len, err, errlen);
}

/* One O_APPEND write of the len bytes in f->buf, under the file's lock
 * (rotating first if due). */
static sl_pub_status_t
s_write(s_file_t *f, size_t len, char *err, size_t errlen)
{
    if (!len)
        return SL_PUB_OK;
    if (s_lock_current(f, len, err, errlen) < 0)
        return SL_PUB_RETRY;
    size_t off = 0;
    sl_pub_status_t st = SL_PUB_OK;
    while (off < len) {
        ssize_t w = write(f->fd, f->buf + off, len - off);
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
    free(f->buf);
    free(f->path);
    free(f);
    *ctx_p = NULL;
}

const sl_publisher_ops_t sl_publisher_file = {
    .scheme = "file",
    .help = "JSON Lines file; ?max_bytes=N&backup_count=M rotate like Ceilometer's",
    .init = s_init,
    .publish = s_publish,
    .publish_events = s_publish_events,
    .destroy = s_destroy,
};
