/* file:// publisher — JSON Lines, one sample or event per line, with
 * Ceilometer's rotation options: file:///path?max_bytes=N&backup_count=M.
 *
 * format= chooses the bytes: sluice (default) = compact JSON with sluice's
 * sample fields; ceilometer / ceilometer-json = exactly what Ceilometer
 * 19's FilePublisher writes without / with its `json` option (str() or
 * json.dumps() of Sample.as_dict(); events as str(Event.as_dict()), and
 * for ceilometer-json json.dumps(Event.serialize()) since Ceilometer 19
 * raises TypeError there and writes nothing). The `json` flag itself is
 * accepted and changes nothing. A forward profile (sl_pub_batch_t.forward)
 * filters every record before it is written, in every format.
 *
 * Rotation follows Python's RotatingFileHandler, which Ceilometer uses:
 * when max_bytes > 0 and backup_count > 0, path.(M-1) -> path.M, ...,
 * path -> path.1. In the Ceilometer formats it is decided before each
 * record exactly as shouldRollover does (size in bytes + the record's
 * length in characters >= max_bytes, an empty file included), so the
 * files and their bytes are Ceilometer's; in sluice's format it is decided
 * per batch (a batch is never split over two files).
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/forward.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "worker/publishers/pubjson.h"

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
    sl_buf_t text;      /* one sample's text, for a forward profile's filters */
    sl_arena_t ar;      /* records parsed for a forward profile's filters */
    int      ar_ready;
    sl_ratelimit_t rl;
    unsigned format;    /* s_format_t */
    sl_py_t *py;        /* format=ceilometer: datetimes */
    /* Ceilometer formats: where each record of buf ends, and its length
     * in characters (RotatingFileHandler decides per record, in
     * characters: len("%s\n" % msg)). */
    size_t  *rec_end, *rec_chars;
    size_t   n_rec, cap_rec;
} s_file_t;

/* sluice: compact JSON, sluice's sample fields (the default, unchanged);
 * ceilometer: Ceilometer 19's FilePublisher without `json` (str() of
 * Sample.as_dict() / Event.as_dict()); ceilometer-json: with `json`
 * (json.dumps(Sample.as_dict()); for events, which Ceilometer 19 cannot
 * json.dumps, json.dumps(Event.serialize())). */
typedef enum { S_FMT_SLUICE = 0, S_FMT_CEILOMETER, S_FMT_CEILOMETER_JSON } s_format_t;

/* The URL's query options, as text: their checks below give the range and
 * an example in the message (sluiced -t shows it to the operator). */
typedef struct {
    char *max_bytes;
    char *backup_count;
    unsigned format;
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
      .help = "accepted as in Ceilometer's URL; it does not change the format (sluice's JSON "
              "Lines unless format= says otherwise): write format=ceilometer-json for the "
              "bytes Ceilometer's `json` writes" },
    { .name = "format", .type = SL_OPT_ENUM, .offset = offsetof(s_opts_t, format),
      .def = "sluice", .choices = "sluice|ceilometer|ceilometer-json",
      .help = "sluice = compact JSON with sluice's fields (samples with message_id); "
              "ceilometer = what Ceilometer 19's file publisher writes without json (Python's "
              "str() of Sample.as_dict() / Event.as_dict()); ceilometer-json = what it writes "
              "with json (json.dumps(Sample.as_dict()); events as json.dumps(Event.serialize()), "
              "which Ceilometer 19 fails to write)" },
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
    f->format = o ? o->format : S_FMT_SLUICE;
    if (!check_only) {
        if (f->format == S_FMT_CEILOMETER && !(f->py = sl_py_new())) {
            snprintf(err, errlen, "cannot compile the date patterns of format=ceilometer");
            void *v = f;
            s_destroy(&v);
            return NULL;
        }
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
 * first if writing incoming bytes would reach max_bytes (incoming
 * SIZE_MAX: never rotated here, the caller decides). 0, or -1 with err
 * (nothing locked). */
static int
s_lock_current(s_file_t *f, size_t incoming, char *err, size_t errlen)
{
    int rotated = 0;
    /* Each failed attempt means the file at path changed under us: another
     * worker rotated it (progress of its own) or someone removed it. A
     * worker that keeps losing that race on a busy machine (descheduled
     * between its open and its lock while the other writes and rotates)
     * must not fail the batch: the bound only stops a file that is
     * replaced for ever. */
    for (int attempt = 0; attempt < 1024; attempt++) {
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
        if (current && incoming != SIZE_MAX && (!rotated || cur.st_size > 0) && f->max_bytes &&
            f->backup_count &&
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
static sl_pub_status_t s_write_records(s_file_t *f, char *err, size_t errlen);

static void
s_append(s_file_t *f, const char *text, size_t n)
{
    sl_buf_put(&f->buf, text, n);
    sl_buf_putc(&f->buf, '\n');
}

/* Appends one record (JSON text) as the forward profile lets its consumer
 * see it: parsed, filtered (common/forward.h), written again. Uses
 * f->gen. -1 if the text does not parse or cannot be written. */
static int
s_append_filtered(s_file_t *f, const sl_forward_t *fwd, int events, const char *text, size_t n)
{
    if (!f->ar_ready) {
        sl_arena_init(&f->ar, 0);
        f->ar_ready = 1;
    }
    char why[128];
    yajl_val v = sl_json_parse(&f->ar, text, n, 0, why, sizeof why);
    if (!v)
        return -1;
    sl_forward_filter(fwd, events, v);
    const unsigned char *out;
    size_t olen;
    yajl_gen_reset(f->gen, NULL);
    yajl_gen_clear(f->gen);
    int rc = sl_json_gen_val(f->gen, v) == 0 &&
             yajl_gen_get_buf(f->gen, &out, &olen) == yajl_gen_status_ok ? 0 : -1;
    if (rc == 0)
        s_append(f, (const char *) out, olen);
    sl_arena_reset(&f->ar);
    return rc;
}

/* Events arrive serialised (Ceilometer has no file publisher for events;
 * sluice writes them as JSON Lines in the oracle's event format). */
static sl_pub_status_t
s_publish_events(s_file_t *f, const sl_forward_t *fwd, const char *const *json, size_t n,
                 char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!json[i])
            continue;
        if (!fwd)
            s_append(f, json[i], strlen(json[i]));
        else if (s_append_filtered(f, fwd, 1, json[i], strlen(json[i])) < 0)
            sl_log_limited(&f->rl, SL_LOG_WARN, "file publisher %s: an event that is not a "
                           "JSON object was skipped (forward profile %s)", f->path,
                           sl_forward_name(fwd));
    }
    return s_write(f, err, errlen);
}

/* repr() of a naive UTC datetime made from ISO text, as
 * timeutils.normalize_time(parse_isotime(text)) gives it; 0, or -1 if
 * the text is not a date (the caller writes it as a string). */
static int
s_repr_datetime(s_file_t *f, const char *text)
{
    sl_py_dt_t t;
    if (!text || sl_py_parse_isotime(f->py, text, &t) < 0 || sl_py_dt_to_utc(&t) < 0)
        return -1;
    sl_buf_printf(&f->buf, "datetime.datetime(%d, %d, %d, %d, %d", t.year, t.month, t.day,
                  t.hour, t.minute);
    if (t.micro)
        sl_buf_printf(&f->buf, ", %d, %ld", t.second, t.micro);
    else if (t.second)
        sl_buf_printf(&f->buf, ", %d", t.second);
    sl_buf_putc(&f->buf, ')');
    return 0;
}

/* str(Event.as_dict()) from the Event.serialize() tree ev (already
 * filtered): generated and datetime traits (dtype 4) are datetime
 * objects, traits are {'name', 'dtype', 'value'} dicts. */
static void
s_repr_event(s_file_t *f, yajl_val ev, sl_arena_t *a)
{
    sl_buf_putc(&f->buf, '{');
    for (size_t i = 0; i < ev->u.object.len; i++) {
        const char *k = ev->u.object.keys[i];
        yajl_val v = ev->u.object.values[i];
        sl_buf_printf(&f->buf, "%s%s: ", i ? ", " : "", sl_py_repr(a, sl_json_new_string(a, k,
                                                                                 strlen(k))));
        if (strcmp(k, "generated") == 0 && s_repr_datetime(f, sl_json_str(v)) == 0)
            continue;
        if (strcmp(k, "traits") != 0 || !YAJL_IS_ARRAY(v)) {
            sl_buf_puts(&f->buf, sl_py_repr(a, v));
            continue;
        }
        sl_buf_putc(&f->buf, '[');
        for (size_t j = 0; j < v->u.array.len; j++) {
            yajl_val t = v->u.array.values[j];
            size_t n = YAJL_IS_ARRAY(t) ? t->u.array.len : 0;
            yajl_val name = n > 0 ? t->u.array.values[0] : NULL;
            yajl_val dtype = n > 1 ? t->u.array.values[1] : NULL;
            yajl_val value = n > 2 ? t->u.array.values[2] : NULL;
            sl_buf_printf(&f->buf, "%s{'name': %s, 'dtype': %s, 'value': ", j ? ", " : "",
                          sl_py_repr(a, name), sl_py_repr(a, dtype));
            int is_dt = dtype && YAJL_IS_INTEGER(dtype) && YAJL_GET_INTEGER(dtype) == 4;
            if (!is_dt || s_repr_datetime(f, sl_json_str(value)) < 0)
                sl_buf_puts(&f->buf, sl_py_repr(a, value));
            sl_buf_putc(&f->buf, '}');
        }
        sl_buf_putc(&f->buf, ']');
    }
    sl_buf_putc(&f->buf, '}');
}

/* One record in a Ceilometer format: sample s, or event json. */
static int
s_append_ceilometer(s_file_t *f, const sl_forward_t *fwd, const sl_sample_t *s,
                    const char *json, char *err, size_t errlen)
{
    int rc;
    if (f->format == S_FMT_CEILOMETER_JSON) {
        rc = s ? sl_pubjson_sample(&f->buf, s, fwd, err, errlen)
               : sl_pubjson_event(&f->buf, json, fwd, err, errlen);
    } else {
        if (!f->ar_ready) {
            sl_arena_init(&f->ar, 0);
            f->ar_ready = 1;
        }
        yajl_val t = s ? sl_pubjson_sample_tree(&f->ar, s, err, errlen)
                       : sl_pubjson_event_tree(&f->ar, json, err, errlen);
        if (t) {
            sl_forward_filter(fwd, !s, t);
            if (s)
                sl_buf_puts(&f->buf, sl_py_repr(&f->ar, t));
            else
                s_repr_event(f, t, &f->ar);
        }
        sl_arena_reset(&f->ar);
        rc = t ? 0 : -1;
    }
    if (rc == 0) {
        sl_buf_putc(&f->buf, '\n');
        if (f->n_rec == f->cap_rec) {
            f->cap_rec = f->cap_rec ? f->cap_rec * 2 : 64;
            f->rec_end = sl_xrealloc(f->rec_end, f->cap_rec * sizeof *f->rec_end);
            f->rec_chars = sl_xrealloc(f->rec_chars, f->cap_rec * sizeof *f->rec_chars);
        }
        size_t from = f->n_rec ? f->rec_end[f->n_rec - 1] : 0, chars = 0;
        for (size_t i = from; i < f->buf.n; i++)
            chars += ((unsigned char) f->buf.p[i] & 0xc0) != 0x80;
        f->rec_end[f->n_rec] = f->buf.n;
        f->rec_chars[f->n_rec++] = chars;
    }
    return rc;
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_file_t *f = ctx;
    sl_buf_reset(&f->buf);
    if (f->format != S_FMT_SLUICE) {
        char why[256];
        f->n_rec = 0;
        for (size_t i = 0; i < b->n; i++) {
            int events = b->kind == SL_PUB_EVENTS;
            if (events && !b->events[i])
                continue;
            if (s_append_ceilometer(f, b->forward, events ? NULL : &b->samples[i],
                                    events ? b->events[i] : NULL, why, sizeof why) < 0)
                sl_log_limited(&f->rl, SL_LOG_WARN, "file publisher %s: a record was skipped: "
                               "%s", f->path, why);
        }
        return s_write_records(f, err, errlen);
    }
    if (b->kind == SL_PUB_EVENTS)
        return s_publish_events(f, b->forward, b->events, b->n, err, errlen);
    const sl_sample_t *samples = b->samples;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->forward) {
            /* straight into the write buffer (sl_sample_put: the text
             * sl_sample_gen writes, without yajl's per-token calls) */
            sl_sample_put(&f->buf, &f->gen, &samples[i]);
            sl_buf_putc(&f->buf, '\n');
            continue;
        }
        /* filtering parses the text again and writes it with f->gen */
        sl_buf_reset(&f->text);
        sl_sample_put(&f->text, &f->gen, &samples[i]);
        if (s_append_filtered(f, b->forward, 0, f->text.p, f->text.n) < 0) {
            snprintf(err, errlen, "file publisher: cannot filter sample %s for forward "
                     "profile %s", samples[i].name, sl_forward_name(b->forward));
            return SL_PUB_ERROR;
        }
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

/* write(2) of p[0..n) in full, counting what was written in *done; 0,
 * or -1 with errno. */
static int
s_write_all(int fd, const char *p, size_t n, size_t *done)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t) w;
        *done += (size_t) w;
    }
    return 0;
}

/* The Ceilometer formats with rotation: decided before each record, as
 * RotatingFileHandler.shouldRollover does (current size in bytes + the
 * record's length in characters, newline included, >= max_bytes; an
 * empty file is rotated too when one record reaches max_bytes), all
 * under the file's lock. Without rotation: s_write. */
static sl_pub_status_t
s_write_records(s_file_t *f, char *err, size_t errlen)
{
    if (!f->buf.n || !f->max_bytes || !f->backup_count)
        return s_write(f, err, errlen);
    if (s_lock_current(f, SIZE_MAX, err, errlen) < 0)
        return SL_PUB_RETRY;
    struct stat st;
    unsigned long long size = fstat(f->fd, &st) == 0 ? (unsigned long long) st.st_size : 0;
    size_t start = 0, done = 0;
    for (size_t i = 0; i < f->n_rec; i++) {
        size_t b = i ? f->rec_end[i - 1] : 0, e = f->rec_end[i];
        if (size + f->rec_chars[i] >= f->max_bytes) {
            if (s_write_all(f->fd, f->buf.p + start, b - start, &done) < 0)
                goto fail;
            start = b;
            s_rotate(f);
            s_flock(f->fd, LOCK_UN);
            close(f->fd);
            f->fd = -1;
            if (s_lock_current(f, SIZE_MAX, err, errlen) < 0)
                return done ? SL_PUB_ERROR : SL_PUB_RETRY;
            size = fstat(f->fd, &st) == 0 ? (unsigned long long) st.st_size : 0;
        }
        size += e - b;
    }
    if (s_write_all(f->fd, f->buf.p + start, f->buf.n - start, &done) < 0)
        goto fail;
    s_flock(f->fd, LOCK_UN);
    return SL_PUB_OK;
fail:
    snprintf(err, errlen, "file publisher: write to %s failed: %s (disk full?)", f->path,
             strerror(errno));
    s_flock(f->fd, LOCK_UN);
    return done ? SL_PUB_ERROR : SL_PUB_RETRY;
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
    sl_buf_free(&f->text);
    if (f->ar_ready)
        sl_arena_destroy(&f->ar);
    sl_py_destroy(&f->py);
    free(f->rec_end);
    free(f->rec_chars);
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
