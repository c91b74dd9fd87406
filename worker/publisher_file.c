/* file:// publisher — JSON Lines, one sample per line, with Ceilometer's
 * rotation options: file:///path?max_bytes=N&backup_count=M (the `json`
 * option of Ceilometer's URL is accepted; sluice always writes JSON).
 * Rotation follows Python's RotatingFileHandler, which Ceilometer uses: when
 * max_bytes > 0 and backup_count > 0 and the next write would reach
 * max_bytes, path.(M-1) -> path.M, ..., path -> path.1. Several pipeline
 * workers may append to one file: every batch is one O_APPEND write, and a
 * rotation happens under flock(2) on the file itself, after checking that no
 * other worker rotated it first. */
#include "worker/publisher.h"

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

typedef struct {
    char    *path;
    int      fd;
    ino_t    ino;
    unsigned long long max_bytes;
    unsigned backup_count;
    yajl_gen gen;
    char    *buf;
    size_t   cap;
} s_file_t;

static void s_destroy(void **ctx_p);

static int
s_open(s_file_t *f, char *err, size_t errlen)
{
    int fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "file publisher: cannot open %s: %s (check the directory exists "
                 "and is writable)", f->path, strerror(errno));
        return -1;
    }
    struct stat st;
    fstat(fd, &st);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->ino = st.st_ino;
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
        char *end = NULL;
        if (strcmp(kv, "max_bytes") == 0 && eq && *eq) {
            f->max_bytes = strtoull(eq, &end, 10);
        } else if (strcmp(kv, "backup_count") == 0 && eq && *eq) {
            f->backup_count = (unsigned) strtoul(eq, &end, 10);
        } else if (strcmp(kv, "json") == 0) {
            end = NULL;
        } else {
            snprintf(err, errlen, "file publisher '%s': unknown option '%s' (known: max_bytes, "
                     "backup_count, json)", url, kv);
            void *v = f;
            s_destroy(&v);
            return NULL;
        }
        if (end && *end) {
            snprintf(err, errlen, "file publisher '%s': %s must be a whole number", url, kv);
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

static void
s_rotate_if_needed(s_file_t *f, size_t incoming)
{
    if (!f->max_bytes || !f->backup_count)
        return;
    struct stat st;
    if (fstat(f->fd, &st) < 0 || (unsigned long long) st.st_size + incoming < f->max_bytes)
        return;
    if (flock(f->fd, LOCK_EX) < 0)
        return;
    struct stat cur;
    /* Another worker may have rotated already: then just reopen. */
    if (stat(f->path, &cur) == 0 && cur.st_ino == f->ino) {
        size_t n = strlen(f->path) + 16;
        char *from = sl_xmalloc(n), *to = sl_xmalloc(n);
        for (unsigned i = f->backup_count - 1; i >= 1; i--) {
            snprintf(from, n, "%s.%u", f->path, i);
            snprintf(to, n, "%s.%u", f->path, i + 1);
            rename(from, to);
        }
        snprintf(to, n, "%s.1", f->path);
        if (rename(f->path, to) < 0)
            sl_warn("file publisher: cannot rotate %s: %s", f->path, strerror(errno));
        free(from);
        free(to);
    }
    int old = f->fd;
    char err[256];
    f->fd = -1;
    if (s_open(f, err, sizeof err) < 0) {
        sl_warn("%s", err);
        f->fd = old;
    } else {
        flock(old, LOCK_UN);
        close(old);
    }
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

/* One O_APPEND write of the len bytes in f->buf (rotating first if due). */
static sl_pub_status_t
s_write(s_file_t *f, size_t len, char *err, size_t errlen)
{
    if (!len)
        return SL_PUB_OK;
    s_rotate_if_needed(f, len);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(f->fd, f->buf + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "file publisher: write to %s failed: %s (disk full?)",
                     f->path, strerror(errno));
            return off ? SL_PUB_ERROR : SL_PUB_RETRY;
        }
        off += (size_t) w;
    }
    return SL_PUB_OK;
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
