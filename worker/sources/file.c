/* file source: replays a JSON Lines file of notifications, one per line,
 * optionally at a rate; ingest worker k of N takes lines k, k+N, ...
 *
 * At least once, across kill -9 of everything: the token of a line is its
 * number, acks come in order (SL_SOURCE_F_ORDERED), and the position up
 * to which every line of this worker's share is delivered (the oldest
 * line not yet confirmed, or the read position when none is waiting) is
 * written to <run_dir>/sources/file-<hash of the path>.pos every
 * S_SAVE_MS and when the worker stops. A worker that starts again (a
 * respawn, a reload, a restart of sluiced) continues from its position;
 * what it re-reads is what was not confirmed (duplicates, never a loss).
 * If the number of ingest workers changed, every worker starts from the
 * lowest position of the previous ones and skips the lines the previous
 * workers had delivered beyond it (the file keeps their positions until
 * every worker has passed the highest). A position is kept with the file's device
 * and inode: another file at the same path starts from its first line.
 *
 * A graceful stop (SIGTERM, a reload) ends at one common line, as if one
 * reader had stopped there: each worker stops reading, writes where it
 * got to (with the stop's id) into the position file, waits until every
 * worker has (at most S_BARRIER_WAIT_MS: a dead worker's share is read
 * again by its successor), then reads its share up to the furthest of
 * them, without the rate limit. So the next generation starts everywhere
 * at that line, and the samples of one resource keep their order across a
 * reload (stateful transformers depend on it).
 *
 * The file has one line per worker, "K LINE OFFSET HI STOP" (HI: where a
 * stopping worker got to, STOP: the id of that stop), after a header, and
 * the previous worker count's "K LINE" after "previous M"; the
 * workers update it under an flock of "<file>.lock" and replace it by
 * rename, so a kill at any moment leaves either the old or the new one. */
#include "worker/sources/source.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/source_conf.h"

#define S_READ_CHUNK 65536
#define S_SAVE_MS 100
#define S_MAX_WORKERS 1024
#define S_BARRIER_WAIT_MS 2000

typedef struct {
    uint64_t line, offset;
    uint64_t hi, stop;      /* a stopping worker's read position, and the stop's id */
} s_pos_t;

static const char *
s_path(const sl_source_inst_t *src)
{
    return ((const sl_file_source_opts_t *) src->env.sc->opts)->path;
}

typedef struct {
    FILE *file;
    dev_t dev;
    ino_t ino;
    uint64_t line_no;       /* next line to read */
    uint64_t offset;        /* its byte offset */
    /* a bounded line reader, so that a line of any length costs at most
     * max_message_size + S_READ_CHUNK bytes (getline once took 533 MB for
     * one 512 MiB line) */
    char *buf;
    size_t cap, start, end;
    int read_eof;
    int skipping;           /* inside a line longer than max_message_size */
    size_t skipped;         /* its bytes so far */
    double per_ms;          /* lines of this worker per ms (0 = unlimited) */
    double credit;
    uint64_t credit_ms;
    /* lines delivered and not yet confirmed, oldest first (a ring) */
    s_pos_t *fly;
    size_t fly_head, fly_n, fly_cap;
    char pos_path[4200], lock_path[4200];
    s_pos_t saved;          /* what the position file says for us */
    s_pos_t base;           /* where we started */
    /* lines below skip[line % n_skip] were delivered under the previous
     * worker count (none past skip_top); kept for the position file, which
     * passes it on to the other workers */
    uint64_t *skip;
    int n_skip;
    uint64_t skip_top;
    sl_loop_timer_t *save_timer;
    int stopping;           /* 1 waiting for the others at the barrier, 2 reading up to it, 3 done */
    uint64_t barrier;       /* the common stop line */
    uint64_t hi;            /* where reading stopped (stopping >= 1) */
    uint64_t barrier_deadline;
} s_file_t;

/* --- the position file ------------------------------------------------- */

/* What the position file says: this worker count's positions, and the
 * previous worker count's (lines only) while some worker may still be
 * below the highest of them. */
typedef struct {
    int n;
    s_pos_t *pos;
    int m;
    uint64_t *prev;
} s_table_t;

static void
s_table_free(s_table_t *t)
{
    free(t->pos);
    free(t->prev);
    memset(t, 0, sizeof *t);
}

/* 0 with *t filled if the file is about this file; -1 if absent,
 * unreadable, corrupt or about another file. */
static int
s_pos_read(const s_file_t *f, s_table_t *t)
{
    memset(t, 0, sizeof *t);
    FILE *in = fopen(f->pos_path, "r");
    if (!in)
        return -1;
    unsigned long long dev = 0, ino = 0;
    int ok = fscanf(in, "sluice file position 3 dev %llu ino %llu workers %d", &dev, &ino,
                    &t->n) == 3 &&
             dev == (unsigned long long) f->dev && ino == (unsigned long long) f->ino &&
             t->n > 0 && t->n <= S_MAX_WORKERS;
    if (ok)
        t->pos = sl_xcalloc((size_t) t->n, sizeof *t->pos);
    for (int i = 0; ok && i < t->n; i++) {
        int k;
        unsigned long long line, off, hi, stop;
        ok = fscanf(in, "%d %llu %llu %llu %llu", &k, &line, &off, &hi, &stop) == 5 && k == i;
        t->pos[i] = (s_pos_t) { line, off, hi, stop };
    }
    if (ok && fscanf(in, " previous %d", &t->m) == 1) {
        ok = t->m > 0 && t->m <= S_MAX_WORKERS;
        if (ok)
            t->prev = sl_xcalloc((size_t) t->m, sizeof *t->prev);
        for (int i = 0; ok && i < t->m; i++) {
            int k;
            unsigned long long line;
            ok = fscanf(in, "%d %llu", &k, &line) == 2 && k == i;
            t->prev[i] = line;
        }
    } else {
        t->m = 0;
    }
    fclose(in);
    if (!ok) {
        s_table_free(t);
        return -1;
    }
    return 0;
}

/* Where this worker's share is confirmed up to. */
static s_pos_t
s_confirmed(const sl_source_inst_t *src)
{
    const s_file_t *f = src->ctx;
    s_pos_t p = { f->line_no, f->offset, 0, 0 };
    if (f->fly_n)
        p = f->fly[f->fly_head];
    if (f->stopping) {
        p.hi = f->hi;
        p.stop = src->env.stop_id;
    }
    return p;
}

/* Writes our position (the others' as the file has them, or our start
 * where the file is about another worker count). 0 or -1 (logged). */
static int
s_pos_save(sl_source_inst_t *src, int force)
{
    s_file_t *f = src->ctx;
    s_pos_t me = s_confirmed(src);
    if (!force && me.line == f->saved.line && me.offset == f->saved.offset)
        return 0;
    int n_workers = src->env.n_workers, k = src->env.worker;
    int lock = open(f->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) {
        sl_log_limited(src->env.rl, SL_LOG_ERROR, "file source: cannot lock %s: %s (is run_dir "
                       "writable?); the position is not saved", f->lock_path, strerror(errno));
        if (lock >= 0)
            close(lock);
        return -1;
    }
    s_table_t t;
    if (s_pos_read(f, &t) < 0 || t.n != n_workers) {
        /* First save under this worker count: everyone starts where we
         * did, and what the previous count delivered stays known. */
        s_table_free(&t);
        t.n = n_workers;
        t.pos = sl_xcalloc((size_t) n_workers, sizeof *t.pos);
        for (int i = 0; i < n_workers; i++) {
            t.pos[i] = f->base;
            t.pos[i].hi = t.pos[i].stop = 0;
        }
        if (f->n_skip) {
            t.m = f->n_skip;
            t.prev = sl_xcalloc((size_t) t.m, sizeof *t.prev);
            memcpy(t.prev, f->skip, (size_t) t.m * sizeof *t.prev);
        }
    }
    t.pos[k] = me;
    /* The previous table is needed while some worker is below its top. */
    uint64_t low = t.pos[0].line;
    for (int i = 1; i < t.n; i++)
        if (t.pos[i].line < low)
            low = t.pos[i].line;
    uint64_t top = 0;
    for (int i = 0; i < t.m; i++)
        if (t.prev[i] > top)
            top = t.prev[i];
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", f->pos_path, (int) getpid());
    FILE *out = fopen(tmp, "w");
    int ok = out != NULL;
    if (ok) {
        fprintf(out, "sluice file position 3\ndev %llu ino %llu workers %d\n",
                (unsigned long long) f->dev, (unsigned long long) f->ino, t.n);
        for (int i = 0; i < t.n; i++)
            fprintf(out, "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", i, t.pos[i].line,
                    t.pos[i].offset, t.pos[i].hi, t.pos[i].stop);
        if (t.m && low < top) {
            fprintf(out, "previous %d\n", t.m);
            for (int i = 0; i < t.m; i++)
                fprintf(out, "%d %" PRIu64 "\n", i, t.prev[i]);
        }
        ok = fclose(out) == 0;
    }
    if (!ok || rename(tmp, f->pos_path) < 0) {
        sl_log_limited(src->env.rl, SL_LOG_ERROR, "file source: cannot write %s: %s (is run_dir "
                       "writable?); the position is not saved", f->pos_path, strerror(errno));
        unlink(tmp);
        ok = 0;
    } else {
        f->saved = me;
    }
    s_table_free(&t);
    close(lock);
    return ok ? 0 : -1;
}

static void
s_save_tick(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_pos_save(arg, 0);
}

/* Whether line ln was delivered under the previous worker count. */
static int
s_delivered_before(s_file_t *f, uint64_t ln)
{
    if (!f->n_skip || ln >= f->skip_top)
        return 0;
    return ln < f->skip[ln % (uint64_t) f->n_skip];
}

/* --- reading ----------------------------------------------------------- */

/* The next line (without its newline) into *line, *len. A line longer than
 * max comes back with *oversized set, *len its full length and only a
 * part of it in *line (never read: the decoder refuses it by length).
 * Returns 1, or 0 at the end of the file. */
static int
s_next_line(s_file_t *s, size_t max, const char **line, size_t *len, int *oversized)
{
    if (!s->buf) {
        s->cap = max + S_READ_CHUNK;
        s->buf = sl_xmalloc(s->cap);
    }
    for (;;) {
        size_t have = s->end - s->start;
        char *nl = memchr(s->buf + s->start, '\n', have);
        if (nl || (s->read_eof && (have || s->skipping))) {
            size_t n = nl ? (size_t) (nl - (s->buf + s->start)) : have;
            *line = s->buf + s->start;
            *len = s->skipped + n;
            *oversized = s->skipping || n > max;
            s->start += n + (nl != NULL);
            s->offset += s->skipped + n + (nl != NULL);
            s->skipping = 0;
            s->skipped = 0;
            return 1;
        }
        if (s->read_eof)
            return 0;
        if (have > max) {   /* too long already: keep counting, not storing */
            s->skipping = 1;
            s->skipped += have;
            s->start = s->end = 0;
            have = 0;
        }
        if (s->start > 0) {
            memmove(s->buf, s->buf + s->start, have);
            s->start = 0;
            s->end = have;
        }
        size_t got = fread(s->buf + s->end, 1, s->cap - s->end, s->file);
        s->end += got;
        if (got == 0)
            s->read_eof = 1;    /* end of file, or a read error: both end the source */
    }
}

static void
s_fly_push(s_file_t *f, uint64_t line, uint64_t offset)
{
    if (f->fly_n == f->fly_cap)
        f->fly = sl_xring_grow(f->fly, sizeof *f->fly, &f->fly_head, f->fly_n, &f->fly_cap,
                               1024);
    f->fly[(f->fly_head + f->fly_n) % f->fly_cap] = (s_pos_t) { line, offset, 0, 0 };
    f->fly_n++;
}

static size_t
s_read(sl_source_inst_t *src, size_t budget)
{
    s_file_t *f = src->ctx;
    size_t got = 0;
    size_t max = (size_t) src->env.conf->max_message_size;
    unsigned long n_workers = (unsigned long) src->env.n_workers;
    while (got < budget && !src->paused &&
           (!f->stopping || (f->stopping == 2 && f->line_no < f->barrier))) {
        /* token bucket, at most 100 ms of burst (not on the way to a stop
         * barrier: the stop waits for it) */
        if (f->per_ms > 0 && !f->stopping) {
            uint64_t now = sl_now_ms();
            f->credit += (double) (now - f->credit_ms) * f->per_ms;
            f->credit_ms = now;
            if (f->credit > f->per_ms * 100 + 1)
                f->credit = f->per_ms * 100 + 1;
            if (f->credit < 1) {
                sl_source_wait(src, (unsigned) ((1 - f->credit) / f->per_ms) + 1);
                break;
            }
        }
        uint64_t line_offset = f->offset;
        const char *text;
        size_t n;
        int oversized;
        if (!s_next_line(f, max, &text, &n, &oversized)) {
            SL_INC(src->env.slot, source_eof, 1);
            sl_info("file source %s: end of file after %" PRIu64 " lines", s_path(src),
                    f->line_no);
            sl_source_wait(src, SL_SOURCE_FOREVER);
            s_pos_save(src, 0);
            break;
        }
        uint64_t ln = f->line_no++;
        if (ln % n_workers != (unsigned long) src->env.worker || s_delivered_before(f, ln))
            continue;
        got++;
        f->credit -= 1;
        while (!oversized && n > 0 && text[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        s_fly_push(f, ln, line_offset);
        /* oversized: the decoder counts it by length, unread */
        sl_source_deliver(src, ln, text, n);
    }
    return got;
}

static void
s_ack(sl_source_inst_t *src, uint64_t token)
{
    s_file_t *f = src->ctx;
    if (f->fly_n && f->fly[f->fly_head].line == token) {
        f->fly_head = (f->fly_head + 1) % f->fly_cap;
        f->fly_n--;
    } else {
        sl_log_limited(src->env.rl, SL_LOG_ERROR, "file source %s: confirmation of line %" PRIu64
                       " out of order (a bug: please report it); the position is kept where "
                       "it was", s_path(src), token);
    }
}

static void
s_nack(sl_source_inst_t *src, uint64_t token)
{
    /* Not delivered: the position stays before it, so the line is read
     * again at the next start. */
    (void) src;
    (void) token;
}

static int
s_init(sl_source_inst_t *src, char *err, size_t errlen)
{
    const sl_file_source_opts_t *sc = src->env.sc->opts;
    s_file_t *f = sl_xcalloc(1, sizeof *f);
    src->ctx = f;
    f->per_ms = sc->rate / 1000.0 / (double) src->env.n_workers;
    f->credit_ms = sl_now_ms();
    f->file = fopen(sc->path, "r");
    struct stat st;
    if (!f->file || fstat(fileno(f->file), &st) < 0) {
        snprintf(err, errlen, "file source %s: %s (check the path in sluice.yaml)", sc->path,
                 strerror(errno));
        return -1;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sources", src->env.conf->run_dir);
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "file source: cannot create %s: %s (is run_dir writable?)", dir,
                 strerror(errno));
        return -1;
    }
    snprintf(f->pos_path, sizeof f->pos_path, "%s/file-%016" PRIx64 ".pos", dir,
             sl_hash64_str(sc->path));
    snprintf(f->lock_path, sizeof f->lock_path, "%s/file-%016" PRIx64 ".lock", dir,
             sl_hash64_str(sc->path));
    /* Where to start: our own position if the worker count is the same;
     * else the lowest of the previous workers', skipping what they had
     * delivered beyond it. */
    s_table_t t;
    if (s_pos_read(f, &t) == 0) {
        uint64_t *skip = NULL;
        int n_skip = 0;
        if (t.n == src->env.n_workers) {
            f->base = t.pos[src->env.worker];
            skip = t.prev;
            n_skip = t.m;
            t.prev = NULL;
        } else {
            f->base = t.pos[0];
            skip = sl_xcalloc((size_t) t.n, sizeof *skip);
            n_skip = t.n;
            for (int i = 0; i < t.n; i++) {
                if (t.pos[i].line < f->base.line)
                    f->base = t.pos[i];
                skip[i] = t.pos[i].line;
            }
        }
        f->skip = skip;
        f->n_skip = n_skip;
        for (int i = 0; i < n_skip; i++)
            if (skip[i] > f->skip_top)
                f->skip_top = skip[i];
        s_table_free(&t);
        if (f->base.offset > (uint64_t) st.st_size) {
            sl_warn("file source %s is shorter than its saved position (line %" PRIu64
                    "): reading it from the start", sc->path, f->base.line);
            f->base = (s_pos_t) { 0, 0, 0, 0 };
            free(f->skip);
            f->skip = NULL;
            f->n_skip = 0;
        }
    }
    f->saved = f->base;
    if (f->base.offset && fseeko(f->file, (off_t) f->base.offset, SEEK_SET) < 0) {
        snprintf(err, errlen, "file source %s: cannot seek to its saved position: %s",
                 sc->path, strerror(errno));
        return -1;
    }
    f->line_no = f->base.line;
    f->offset = f->base.offset;
    if (f->base.line)
        sl_info("file source %s: continuing at line %" PRIu64 " (saved in %s)", sc->path,
                f->base.line, f->pos_path);
    f->save_timer = sl_loop_every(src->env.loop, S_SAVE_MS, 0, s_save_tick, src);
    return sl_source_watch_fd(src, fileno(f->file), SL_LOOP_IN);
}

/* The stop barrier (see the top of the file): 1 while this worker still
 * waits for the others or reads up to the common line. */
static int
s_drain(sl_source_inst_t *src)
{
    s_file_t *f = src->ctx;
    uint64_t now = sl_now_ms();
    if (!f->stopping) {
        f->stopping = 1;
        f->hi = f->line_no;
        f->barrier_deadline = now + S_BARRIER_WAIT_MS;
        s_pos_save(src, 1);
    }
    if (f->stopping == 1) {
        s_table_t t;
        int all = 0;
        uint64_t line = f->hi;
        if (s_pos_read(f, &t) == 0 && t.n == src->env.n_workers) {
            all = 1;
            for (int i = 0; i < t.n; i++) {
                if (t.pos[i].stop != src->env.stop_id)
                    all = 0;
                else if (t.pos[i].hi > line)
                    line = t.pos[i].hi;
            }
        }
        s_table_free(&t);
        if (!all && now < f->barrier_deadline)
            return 1;
        if (!all)
            sl_warn("file source %s: not every ingest worker reached the stop line within %d ms "
                    "(one is down?): stopping at line %" PRIu64 "; the missing worker's share "
                    "is read again from its saved position", s_path(src), S_BARRIER_WAIT_MS,
                    line);
        f->barrier = line;
        f->stopping = 2;
    }
    if (f->stopping == 2) {
        if (f->line_no < f->barrier && !src->done) {
            if (!src->paused)
                s_read(src, 256);
            if (f->line_no < f->barrier && !src->done)
                return 1;
        }
        f->stopping = 3;
    }
    return 0;
}

static void
s_destroy(sl_source_inst_t *src)
{
    s_file_t *f = src->ctx;
    if (!f)
        return;
    if (f->save_timer)
        sl_loop_cancel(src->env.loop, &f->save_timer);
    if (f->file) {
        s_pos_save(src, 0);
        fclose(f->file);
    }
    free(f->buf);
    free(f->fly);
    free(f->skip);
    free(f);
    src->ctx = NULL;
}

const sl_source_plugin_t sl_source_file = {
    .name = "file",
    .flags = SL_SOURCE_F_ACKS | SL_SOURCE_F_ORDERED,
    .init = s_init,
    .read = s_read,
    .ack = s_ack,
    .nack = s_nack,
    .drain = s_drain,
    .destroy = s_destroy,
};
