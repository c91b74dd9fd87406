/* The output layer (worker/output.h).
 *
 * A submitted batch is copied once and shared by the sink's instances; it
 * counts the instances its source waits for (gate: done is called when it
 * reaches 0; instances with confirm=queued do not count), the instances
 * that have not finished with it (refs: it is counted and off the books
 * when it reaches 0) and the threads publishing it right now (inflight:
 * the memory is freed when refs and inflight are 0, so that a batch
 * abandoned at the drain deadline while a thread still reads it stays
 * valid until that thread returns).
 *
 * Each instance works its queue head first, one batch in flight: a loop
 * plugin is called from the kick timer (a 0 ms timer, so never inside
 * submit and never more than S_BUDGET batches per instance per turn); a
 * threaded one gets the head through its mutex and condition variable and
 * reports through the eventfd. Everything else (counters, policies,
 * timers, dead letters, done callbacks) happens on the loop thread, so
 * each shared-memory slot keeps its single writer. */
#include "worker/output.h"
#include "worker/stagetime.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/forward.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/publishers/publisher.h"

#define S_BUDGET 64          /* loop-plugin batches per instance per kick */
#define S_ERR_MAX 256
#define S_POLL_MS 1000       /* plugins' own counters (sl_pub_plugin_t.counters) */

typedef struct {
    sl_pub_batch_t    b;
    unsigned          sink;
    unsigned          gate;      /* instances the source waits for, not finished with it */
    unsigned          refs;      /* instances not finished with it */
    unsigned          inflight;  /* threads publishing it now */
    int               failed;    /* some instance dropped it (counters) */
    int               gfailed;   /* some instance the source waits for dropped it */
    int               heal;      /* ... for a reason that may heal, not dead-lettered */
    sl_output_done_fn done;
    void             *arg;
    void             *mem;       /* the copies b points into */
} s_batch_t;

enum { S_CMD_NONE = 0, S_CMD_PUBLISH, S_CMD_STOP };

/* What one instance gets of a batch: the records its forward profile
 * selects (arrays of views into the batch), with .forward set. */
typedef struct {
    sl_pub_batch_t  b;
    sl_sample_t    *samples;
    const char    **events;
    size_t          cap;
    sl_arena_t      ar;          /* events parsed for their event_type */
    int             ar_ready;
} s_view_t;

typedef struct {
    sl_output_t     *out;
    unsigned         sink, index;
    sl_pub_url_t     u;
    void            *ctx;
    const sl_forward_t *fwd;     /* forward= profile, or NULL */
    int              early;      /* confirm=queued: the source does not wait for it */
    uint64_t         at_risk;    /* early: records queued, already confirmed */
    s_view_t         pub, aux;   /* views for publishing / for drops (both loop-made) */
    size_t           sent_n;     /* records in the view last published */
    int              skip;       /* nothing selected: completed without a call */
    sl_pub_stats_t  *st;         /* NULL = not counted */
    s_batch_t      **q;          /* ring: q[(head + i) % cap], i < len */
    size_t           head, len, cap;
    unsigned         attempts;   /* failed attempts at the head position */
    sl_loop_timer_t *retry;      /* backoff before the head is tried again */
    sl_ratelimit_t   rl;
    /* SL_PUB_F_THREAD */
    int              threaded, started;
    pthread_t        th;
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    int              cmd;        /* S_CMD_* (under mu) */
    s_batch_t       *flying;     /* the batch the thread has (loop side) */
    const sl_pub_batch_t *fview; /* what of it the thread publishes (set before the command) */
    int              flying_gone;/* it was abandoned meanwhile */
    int              res_ready;  /* under mu: a result waits */
    sl_pub_status_t  res;
    uint64_t         res_ms;
    char             res_err[S_ERR_MAX];
    int              efd;
} s_inst_t;

typedef struct {
    char      *name;
    int        events;
    s_inst_t **insts;
    size_t     n;
} s_sink_t;

struct sl_output {
    const sl_conf_t *conf;       /* forward profiles; NULL without one */
    sl_loop_t       *loop;
    sl_slot_t       *slot;
    s_sink_t        *sinks;
    size_t           n_sinks;
    sl_loop_timer_t *kick;
    sl_loop_timer_t *poll;        /* plugins' own counters (sl_pub_plugin_t.counters) */
    int              efd;
    sl_loop_watch_t *watch;
    size_t           pending;    /* batches whose done has not run */
    size_t           live;       /* batches some instance has not finished */
    uint64_t         rng;
    s_batch_t      **idle;       /* batches with nothing to publish, done at the next kick */
    size_t           n_idle, cap_idle;
    int              abandoning;
    size_t           abandoned;
    const char     **ev_scratch;  /* event views for inline publishing */
    size_t           n_ev_scratch;
    void           (*ready_fn)(void *arg, unsigned sink);
    void            *ready_arg;
    sl_ratelimit_t   rl_dl;
};

/* --- batches --------------------------------------------------------------- */

static size_t
s_len(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *
s_copy_str(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    const char *r = *p;
    *p += n;
    return r;
}

/* One allocation: the sample (or event pointer) array, then the strings. */
static s_batch_t *
s_batch_new(const sl_sample_t *v, size_t n, int events)
{
    s_batch_t *b = sl_xcalloc(1, sizeof *b);
    size_t bytes = n * (events ? sizeof(char *) : sizeof(sl_sample_t));
    for (size_t i = 0; i < n; i++) {
        const sl_sample_t *s = &v[i];
        if (events) {
            bytes += s_len(s->resource_metadata);
            continue;
        }
        bytes += s_len(s->id) + s_len(s->name) + s_len(s->type) + s_len(s->unit) +
                 s_len(s->volume_json) + s_len(s->user_id) + s_len(s->project_id) +
                 s_len(s->resource_id) + s_len(s->timestamp) + s_len(s->resource_metadata) +
                 s_len(s->source) + s_len(s->message_id) + s_len(s->monotonic_time);
    }
    b->mem = sl_xmalloc(bytes ? bytes : 1);
    b->b.n = n;
    if (events) {
        const char **ev = b->mem;
        char *p = (char *) (ev + n);
        for (size_t i = 0; i < n; i++)
            ev[i] = s_copy_str(&p, v[i].resource_metadata);
        b->b.kind = SL_PUB_EVENTS;
        b->b.events = ev;
        return b;
    }
    sl_sample_t *out = b->mem;
    char *p = (char *) (out + n);
    for (size_t i = 0; i < n; i++) {
        const sl_sample_t *s = &v[i];
        sl_sample_t *d = &out[i];
        d->id = s_copy_str(&p, s->id);
        d->name = s_copy_str(&p, s->name);
        d->type = s_copy_str(&p, s->type);
        d->unit = s_copy_str(&p, s->unit);
        d->volume_json = s_copy_str(&p, s->volume_json);
        d->volume = s->volume;
        d->user_id = s_copy_str(&p, s->user_id);
        d->project_id = s_copy_str(&p, s->project_id);
        d->resource_id = s_copy_str(&p, s->resource_id);
        d->timestamp = s_copy_str(&p, s->timestamp);
        d->resource_metadata = s_copy_str(&p, s->resource_metadata);
        d->source = s_copy_str(&p, s->source);
        d->message_id = s_copy_str(&p, s->message_id);
        d->monotonic_time = s_copy_str(&p, s->monotonic_time);
    }
    b->b.kind = SL_PUB_SAMPLES;
    b->b.samples = out;
    return b;
}

static void
s_batch_free(s_batch_t *b)
{
    free(b->mem);
    free(b);
}

/* Every instance the source waits for is done with b: tell the caller. */
static void
s_confirm(sl_output_t *out, s_batch_t *b)
{
    sl_output_done_fn done = b->done;
    if (!done)
        return;
    b->done = NULL;
    out->pending--;
    done(b->arg, !b->gfailed ? 1 : b->heal ? SL_OUTPUT_FAILED : 0);
}

/* Every instance is done with b: count it (and tell the caller if that
 * has not happened yet). */
static void
s_complete(sl_output_t *out, s_batch_t *b)
{
    sl_slot_t *slot = out->slot;
    size_t n = b->b.n;
    if (slot && n) {
        if (b->failed) {
            SL_INC(slot, publish_errors, n);
            if (b->sink < SL_MAX_SINKS)
                SL_SINC(slot, b->sink, failed, n);
        } else {
            if (b->b.kind == SL_PUB_EVENTS)
                SL_INC(slot, events_published, n);
            else
                SL_INC(slot, samples_published, n);
            if (b->sink < SL_MAX_SINKS)
                SL_SINC(slot, b->sink, published, n);
        }
    }
    out->live--;
    if (out->abandoning)
        out->abandoned++;
    s_confirm(out, b);
    if (!b->inflight)
        s_batch_free(b);
}

/* The submitter's own references (see sl_output_submit) go: if only
 * confirm=queued instances hold b, done runs now. */
static void
s_release(sl_output_t *out, s_batch_t *b)
{
    if (--b->gate == 0)
        s_confirm(out, b);
    if (--b->refs == 0)
        s_complete(out, b);
}

/* in is finished with b, which it had n records of. */
static void
s_finish(s_inst_t *in, s_batch_t *b, size_t n)
{
    if (in->early) {
        in->at_risk -= n < in->at_risk ? n : in->at_risk;
        if (in->st)
            SL_PSET(in->st, at_risk, in->at_risk);
    } else if (--b->gate == 0) {
        s_confirm(in->out, b);
    }
    if (--b->refs == 0)
        s_complete(in->out, b);
}

/* --- queues ---------------------------------------------------------------- */

static s_batch_t *
s_at(const s_inst_t *in, size_t i)
{
    return in->q[(in->head + i) % in->cap];
}

static void
s_push(s_inst_t *in, s_batch_t *b)
{
    if (in->len == in->cap)
        in->q = sl_xring_grow(in->q, sizeof *in->q, &in->head, in->len, &in->cap, 8);
    in->q[(in->head + in->len) % in->cap] = b;
    in->len++;
}

static const sl_pub_batch_t *s_select(const s_inst_t *in, const sl_pub_batch_t *b,
                                      s_view_t *v);

/* Queues b on in; n: the records of it in publishes (with a forward
 * profile, what the profile selects; (size_t) -1 = count them here). */
static void
s_push_counted(s_inst_t *in, s_batch_t *b, size_t n)
{
    s_push(in, b);
    if (!in->early)
        return;
    if (n == (size_t) -1)
        n = s_select(in, &b->b, &in->aux)->n;
    in->at_risk += n;
    if (in->st)
        SL_PSET(in->st, at_risk, in->at_risk);
}

/* Removes the batch at position i (0 = head, or 1). */
static s_batch_t *
s_remove(s_inst_t *in, size_t i)
{
    s_batch_t *b = s_at(in, i);
    if (i == 1)
        in->q[(in->head + 1) % in->cap] = in->q[in->head];
    in->head = (in->head + 1) % in->cap;
    in->len--;
    return b;
}

static void
s_gauge(s_inst_t *in)
{
    if (in->st)
        SL_PSET(in->st, queue_depth, in->len);
}

/* in's queue just got shorter: if that is what held its sink back, say so. */
static void
s_shorter(s_inst_t *in)
{
    sl_output_t *out = in->out;
    if (out->ready_fn && in->u.core.policy == SL_PUB_POLICY_DEFAULT &&
        in->len + 1 == in->u.core.max_queue_length && sl_output_ready(out, in->sink))
        out->ready_fn(out->ready_arg, in->sink);
}

/* --- forward profiles ------------------------------------------------------ */

/* The event_type of an event's JSON text, or NULL. */
static const char *
s_event_type(s_view_t *v, const char *json)
{
    if (!json)
        return NULL;
    if (!v->ar_ready) {
        sl_arena_init(&v->ar, 0);
        v->ar_ready = 1;
    }
    char err[128];
    yajl_val ev = sl_json_parse(&v->ar, json, strlen(json), 0, err, sizeof err);
    return ev ? sl_json_str(sl_json_get(ev, "event_type")) : NULL;
}

/* What in publishes of b: b itself without a profile, else the records
 * its profile selects, in v (valid until v is used again). */
static const sl_pub_batch_t *
s_select(const s_inst_t *in, const sl_pub_batch_t *b, s_view_t *v)
{
    if (!in->fwd)
        return b;
    v->b = *b;
    v->b.forward = in->fwd;
    int events = b->kind == SL_PUB_EVENTS;
    if (!sl_forward_has_selection(in->fwd, events))
        return &v->b;
    if (v->cap < b->n) {
        v->cap = b->n;
        v->samples = sl_xrealloc(v->samples, v->cap * sizeof *v->samples);
        v->events = sl_xrealloc(v->events, v->cap * sizeof *v->events);
    }
    size_t n = 0;
    if (events) {
        for (size_t i = 0; i < b->n; i++)
            if (sl_forward_selects(in->fwd, 1, s_event_type(v, b->events[i])))
                v->events[n++] = b->events[i];
        if (v->ar_ready)
            sl_arena_reset(&v->ar);
        v->b.events = v->events;
    } else {
        for (size_t i = 0; i < b->n; i++)
            if (sl_forward_selects(in->fwd, 0, b->samples[i].name))
                v->samples[n++] = b->samples[i];
        v->b.samples = v->samples;
    }
    v->b.n = n;
    return &v->b;
}

static void
s_view_free(s_view_t *v)
{
    free(v->samples);
    free(v->events);
    if (v->ar_ready)
        sl_arena_destroy(&v->ar);
}

/* The profile url's forward= names, resolved in conf: 0 with *f (NULL
 * when it names none), or -1 with the reason. */
static int
s_resolve_forward(const sl_conf_t *conf, const sl_pub_url_t *u, const sl_forward_t **f,
                  char *err, size_t errlen)
{
    *f = NULL;
    if (!u->core.forward)
        return 0;
    *f = conf ? sl_conf_forward(conf, u->core.forward) : NULL;
    if (*f)
        return 0;
    char names[256] = "", red[1024];
    size_t k = 0;
    for (size_t i = 0; conf && i < conf->n_forwards && k < sizeof names; i++)
        k += (size_t) snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "",
                               sl_forward_name(conf->forwards[i]));
    return sl_errf(err, errlen, "%s publisher '%s': forward profile '%s' is not defined in "
                   "%s (%s%s): add it under `forward:` or fix the name", u->plugin->name,
                   sl_url_redact(u->url, red, sizeof red), u->core.forward,
                   conf ? conf->file : "sluice.yaml", k ? "defined: " : "no forward: profiles",
                   names);
}

int
sl_output_check_forward(const sl_conf_t *conf, const char *url, char *err, size_t errlen)
{
    sl_pub_url_t u;
    if (sl_pub_url_parse(&u, url, err, errlen) < 0)
        return -1;
    const sl_forward_t *f;
    int rc = s_resolve_forward(conf, &u, &f, err, errlen);
    sl_pub_url_free(&u);
    return rc;
}

/* --- dead letters ---------------------------------------------------------- */

static void
s_now_iso(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03d+00:00", (int) (ts.tv_nsec / 1000000));
}

/* Appends one JSON line per record of b, with the reason, to
 * DIR/<sink>.deadletter.jsonl. Returns the records written. */
static size_t
s_dead_letter(s_inst_t *in, const sl_pub_batch_t *pb, const char *reason, unsigned attempts)
{
    const char *dir = in->u.core.dead_letter;
    sl_output_t *out = in->out;
    if (!dir || !pb->n)
        return 0;
    const char *sink = out->sinks[in->sink].name;
    sl_buf_t path = { 0 };
    sl_buf_printf(&path, "%s/", dir);
    for (const char *p = sink; *p; p++)   /* a file name, whatever the sink is called */
        sl_buf_putc(&path, (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ? *p : '_');
    sl_buf_puts(&path, ".deadletter.jsonl");
    char when[48];
    s_now_iso(when, sizeof when);
    sl_buf_t line = { 0 };
    yajl_gen g = pb->kind == SL_PUB_SAMPLES ? yajl_gen_alloc(NULL) : NULL;
    for (size_t i = 0; i < pb->n; i++) {
        sl_buf_puts(&line, "{\"time\":");
        sl_buf_json_str(&line, when);
        sl_buf_puts(&line, ",\"sink\":");
        sl_buf_json_str(&line, sink);
        sl_buf_puts(&line, ",\"publisher\":");
        sl_buf_json_str(&line, in->u.label);
        sl_buf_puts(&line, ",\"reason\":");
        sl_buf_json_str(&line, reason);
        sl_buf_printf(&line, ",\"attempts\":%u,", attempts);
        if (g) {
            const unsigned char *txt;
            size_t tl;
            yajl_gen_reset(g, NULL);
            yajl_gen_clear(g);
            sl_buf_puts(&line, "\"sample\":");
            if (sl_sample_gen(g, &pb->samples[i]) == 0 &&
                yajl_gen_get_buf(g, &txt, &tl) == yajl_gen_status_ok)
                sl_buf_put(&line, txt, tl);
            else
                sl_buf_puts(&line, "null");
        } else {
            sl_buf_puts(&line, "\"event\":");
            sl_buf_puts(&line, pb->events[i] ? pb->events[i] : "null");
        }
        sl_buf_puts(&line, "}\n");
    }
    if (g)
        yajl_gen_free(g);
    /* The directory is made on first use; another worker may make it at
     * the same moment (EEXIST): open again either way. */
    int fd = open(path.p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT && (mkdir(dir, 0750) == 0 || errno == EEXIST))
        fd = open(path.p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    size_t written = 0;
    if (fd >= 0) {
        size_t off = 0;
        while (off < line.n) {
            ssize_t w = write(fd, line.p + off, line.n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t) w;
        }
        written = off == line.n ? pb->n : 0;
        close(fd);
    }
    if (!written)
        sl_log_limited(&out->rl_dl, SL_LOG_ERROR, "sink %s: publisher %s: cannot write %zu "
                       "dropped records to %s: %s", sink, in->u.label, pb->n, path.p,
                       fd < 0 ? strerror(errno) : "short write");
    sl_buf_free(&path);
    sl_buf_free(&line);
    return written;
}

/* in is finally done with b without publishing it, after attempts
 * publish calls; heal: the reason may go away (not policy=drop, not a
 * rejection). */
static void
s_drop(s_inst_t *in, s_batch_t *b, const char *reason, unsigned attempts, int heal)
{
    /* Only what this publisher would have had counts: with a forward
     * profile, a batch of nothing it selects drops nothing. */
    const sl_pub_batch_t *pb = s_select(in, &b->b, &in->aux);
    size_t dl = s_dead_letter(in, pb, reason, attempts);
    if (in->st) {
        SL_PINC(in->st, dropped, pb->n);
        SL_PINC(in->st, dead_lettered, dl);
    }
    if (pb->n) {
        sl_log_limited(&in->rl, SL_LOG_ERROR, "sink %s: publisher %s dropped %zu %s: %s%s",
                       in->out->sinks[in->sink].name, in->u.label, pb->n,
                       pb->kind == SL_PUB_EVENTS ? "events" : "samples", reason,
                       dl ? " (dead-lettered)" : "");
        b->failed = 1;
        if (!in->early)
            b->gfailed = 1;
    }
    /* (confirm=queued: the source has its answer already) */
    if (heal && dl < pb->n && !in->early)
        b->heal = 1;
    s_finish(in, b, pb->n);
}

/* --- publishing ------------------------------------------------------------ */

unsigned
sl_output_backoff_ms(unsigned initial_ms, unsigned max_ms, unsigned attempt, uint64_t rnd)
{
    uint64_t cap = initial_ms ? initial_ms : 1;
    for (unsigned i = 1; i < attempt && cap < max_ms; i++)
        cap *= 2;
    if (cap > max_ms)
        cap = max_ms;
    if (cap < 1)
        cap = 1;
    return (unsigned) (1 + rnd % cap);
}

static uint64_t
s_rand(sl_output_t *out)
{
    /* xorshift64*: jitter only */
    out->rng ^= out->rng >> 12;
    out->rng ^= out->rng << 25;
    out->rng ^= out->rng >> 27;
    return out->rng * 2685821657736338717ULL;
}

static void s_kick(sl_output_t *out);
static int s_pump(s_inst_t *in);
static void s_enqueue(s_inst_t *in, s_batch_t *b);
static int s_inline(sl_output_t *out, s_sink_t *sk, unsigned sink, const sl_sample_t *samples,
                    size_t n, sl_output_done_fn done, void *arg);

static void
s_on_retry(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_inst_t *in = arg;
    in->retry = NULL;
    if (s_pump(in))
        s_kick(in->out);
}

/* The result of publishing the head of in's queue. */
static void
s_result(s_inst_t *in, sl_pub_status_t st, const char *err, uint64_t ms)
{
    if (in->st && !in->skip) {
        SL_PINC(in->st, publishes, 1);
        SL_PINC(in->st, latency_ms_sum, ms);
        if (ms > SL_PGET(in->st, latency_ms_max))
            SL_PSET(in->st, latency_ms_max, ms);
    }
    if (!in->len)
        return;
    s_batch_t *b = s_at(in, 0);
    if (st == SL_PUB_OK) {
        s_remove(in, 0);
        in->attempts = 0;
        if (in->st)
            SL_PINC(in->st, sent, in->sent_n);
        s_gauge(in);
        s_finish(in, b, in->sent_n);
        s_shorter(in);
        return;
    }
    const sl_pub_core_opts_t *co = &in->u.core;
    char reason[S_ERR_MAX + 64];
    if (in->st) {
        SL_PINC(in->st, errors, 1);
        sl_stats_text_set_error(&in->st->t, err && *err ? err : "failed");
    }
    if (st == SL_PUB_ERROR)
        snprintf(reason, sizeof reason, "rejected: %s", err);
    else if (co->policy == SL_PUB_POLICY_DROP)
        snprintf(reason, sizeof reason, "policy=drop: %s", err);
    else if (co->max_retries && in->attempts >= co->max_retries)
        snprintf(reason, sizeof reason, "gave up after %u retries: %s", co->max_retries, err);
    else
        reason[0] = '\0';
    if (reason[0]) {
        s_remove(in, 0);
        s_gauge(in);
        s_drop(in, b, reason, in->attempts + 1, st != SL_PUB_ERROR && co->policy != SL_PUB_POLICY_DROP);
        in->attempts = 0;
        s_shorter(in);
        return;
    }
    in->attempts++;
    if (in->st)
        SL_PINC(in->st, retried, 1);
    unsigned delay = sl_output_backoff_ms(co->retry_initial_ms, co->retry_max_ms, in->attempts,
                                          s_rand(in->out));
    sl_log_limited(&in->rl, SL_LOG_WARN, "sink %s: publisher %s failed (%s); retry %u in %u ms",
                   in->out->sinks[in->sink].name, in->u.label, err, in->attempts, delay);
    in->retry = sl_loop_after(in->out->loop, delay, s_on_retry, in);
}

/* Works in's queue: hands the head to the thread, or publishes up to
 * S_BUDGET batches on the loop. 1 if work is left for the next kick. */
static int
s_pump(s_inst_t *in)
{
    for (int k = 0; k < S_BUDGET; k++) {
        if (!in->len || in->retry || in->flying)
            return 0;
        s_batch_t *b = s_at(in, 0);
        const sl_pub_batch_t *pb = s_select(in, &b->b, &in->pub);
        in->sent_n = pb->n;
        in->skip = pb->n == 0;
        if (in->skip) {   /* nothing this publisher's profile selects: done */
            s_result(in, SL_PUB_OK, "", 0);
            in->skip = 0;
            continue;
        }
        if (in->threaded) {
            in->fview = pb;
            in->flying = b;
            in->flying_gone = 0;
            b->inflight++;
            pthread_mutex_lock(&in->mu);
            in->cmd = S_CMD_PUBLISH;
            pthread_cond_signal(&in->cv);
            pthread_mutex_unlock(&in->mu);
            return 0;
        }
        char err[S_ERR_MAX];
        err[0] = '\0';
        uint64_t t0 = sl_now_ms(), st0 = SL_ST_DIRECT_BEGIN();
        sl_pub_status_t st = in->u.plugin->publish(in->ctx, pb, err, sizeof err);
        SL_ST_DIRECT_END(publish, st0);
        s_result(in, st, err, sl_now_ms() - t0);
    }
    return in->len && !in->retry;
}

static void *
s_thread(void *arg)
{
    s_inst_t *in = arg;
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (in->cmd == S_CMD_NONE)
            pthread_cond_wait(&in->cv, &in->mu);
        if (in->cmd == S_CMD_STOP)
            break;
        in->cmd = S_CMD_NONE;
        const sl_pub_batch_t *b = in->fview;   /* set before the command, stable until our result */
        pthread_mutex_unlock(&in->mu);
        char err[S_ERR_MAX];
        err[0] = '\0';
        uint64_t t0 = sl_now_ms(), st0 = SL_ST_THREAD_BEGIN();
        sl_pub_status_t st = in->u.plugin->publish(in->ctx, b, err, sizeof err);
        SL_ST_THREAD_END(in->out->slot, publish, st0);
        uint64_t ms = sl_now_ms() - t0;
        pthread_mutex_lock(&in->mu);
        in->res = st;
        in->res_ms = ms;
        memcpy(in->res_err, err, sizeof err);
        in->res_ready = 1;
        uint64_t one = 1;
        if (write(in->efd, &one, sizeof one) < 0) {
            /* EAGAIN: the counter is already non-zero; the loop will look */
        }
    }
    pthread_mutex_unlock(&in->mu);
    if (in->u.plugin->flush) {
        char err[S_ERR_MAX];
        in->u.plugin->flush(in->ctx, err, sizeof err);
    }
    return NULL;
}

/* A thread has a result: take it on the loop. */
static void
s_on_wake(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    (void) revents;
    sl_output_t *out = arg;
    uint64_t v;
    if (read(out->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        sl_log_limited(&out->rl_dl, SL_LOG_ERROR, "output: eventfd read: %s", strerror(errno));
    int more = 0;
    for (size_t s = 0; s < out->n_sinks; s++)
        for (size_t i = 0; i < out->sinks[s].n; i++) {
            s_inst_t *in = out->sinks[s].insts[i];
            if (!in->threaded || !in->flying)
                continue;
            pthread_mutex_lock(&in->mu);
            int ready = in->res_ready;
            in->res_ready = 0;
            sl_pub_status_t st = in->res;
            uint64_t ms = in->res_ms;
            char err[S_ERR_MAX];
            memcpy(err, in->res_err, sizeof err);
            pthread_mutex_unlock(&in->mu);
            if (!ready)
                continue;
            s_batch_t *b = in->flying;
            in->flying = NULL;
            b->inflight--;
            if (in->flying_gone) {
                /* dropped while the thread had it: nothing to account; the
                 * next batch may go now */
                if (!b->refs && !b->inflight)
                    s_batch_free(b);
                more |= s_pump(in);
                continue;
            }
            s_result(in, st, err, ms);
            more |= s_pump(in);
        }
    if (more)
        s_kick(out);
}

static void
s_on_kick(sl_loop_t *loop, void *arg)
{
    (void) loop;
    sl_output_t *out = arg;
    out->kick = NULL;
    while (out->n_idle) {
        s_batch_t *b = out->idle[--out->n_idle];
        s_complete(out, b);
    }
    int more = 0;
    for (size_t s = 0; s < out->n_sinks; s++)
        for (size_t i = 0; i < out->sinks[s].n; i++)
            more |= s_pump(out->sinks[s].insts[i]);
    if (more)
        s_kick(out);
}

static void
s_kick(sl_output_t *out)
{
    if (!out->kick)
        out->kick = sl_loop_after(out->loop, 0, s_on_kick, out);
}

/* Copies the counters plugins keep themselves into their stats. */
static void
s_on_poll(sl_loop_t *loop, void *arg)
{
    (void) loop;
    sl_output_t *out = arg;
    for (size_t s = 0; s < out->n_sinks; s++)
        for (size_t i = 0; i < out->sinks[s].n; i++) {
            s_inst_t *in = out->sinks[s].insts[i];
            if (!in->st || !in->ctx || !in->u.plugin->counters)
                continue;
            uint64_t peers = 0, lost = 0;
            in->u.plugin->counters(in->ctx, &peers, &lost);
            SL_PSET(in->st, peers, peers);
            SL_PSET(in->st, lost, lost);
        }
}

/* --- the API ---------------------------------------------------------------- */

static void
s_inst_free(s_inst_t *in)
{
    if (in->started) {
        pthread_mutex_lock(&in->mu);
        in->cmd = S_CMD_STOP;
        pthread_cond_signal(&in->cv);
        pthread_mutex_unlock(&in->mu);
        pthread_join(in->th, NULL);
    }
    if (in->threaded) {
        pthread_mutex_destroy(&in->mu);
        pthread_cond_destroy(&in->cv);
    }
    if (in->flying) {   /* abandoned while the thread had it; the thread is gone now */
        s_batch_t *b = in->flying;
        in->flying = NULL;
        if (--b->inflight == 0 && !b->refs)
            s_batch_free(b);
    }
    if (in->ctx)
        in->u.plugin->destroy(&in->ctx);
    if (in->retry)
        sl_loop_cancel(in->out->loop, &in->retry);
    sl_pub_url_free(&in->u);
    s_view_free(&in->pub);
    s_view_free(&in->aux);
    free(in->q);
    free(in);
}

int
sl_output_add_sink(sl_output_t *out, const char *name, int events, const char *const *urls,
                   size_t n_urls, char *err, size_t errlen)
{
    size_t si = out->n_sinks;
    out->sinks = sl_xrealloc(out->sinks, (si + 1) * sizeof *out->sinks);
    s_sink_t *sk = &out->sinks[si];
    memset(sk, 0, sizeof *sk);
    sk->name = sl_xstrdup(name);
    sk->events = events;
    sk->insts = sl_xcalloc(n_urls + 1, sizeof *sk->insts);
    out->n_sinks++;
    for (size_t k = 0; k < n_urls; k++) {
        s_inst_t *in = sl_xcalloc(1, sizeof *in);
        in->out = out;
        in->sink = (unsigned) si;
        in->index = (unsigned) k;
        in->efd = -1;
        if (sl_pub_url_parse(&in->u, urls[k], err, errlen) < 0) {
            free(in);
            return -1;
        }
        sk->insts[sk->n++] = in;
        in->early = in->u.core.confirm == SL_PUB_CONFIRM_QUEUED ||
                    (in->u.core.confirm == SL_PUB_CONFIRM_AUTO &&
                     in->u.core.policy != SL_PUB_POLICY_DEFAULT);
        if (s_resolve_forward(out->conf, &in->u, &in->fwd, err, errlen) < 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", err);
            return sl_errf(err, errlen, "sink %s: %s", name, why);
        }
        if (events && !(in->u.plugin->flags & SL_PUB_F_EVENTS))
            return sl_errf(err, errlen, "sink %s: publisher scheme '%s' cannot publish events",
                           name, in->u.plugin->name);
        if (!(in->ctx = sl_pub_url_init(&in->u, 0, err, errlen)))
            return -1;
        if (out->slot && si < SL_MAX_SINKS && k < SL_MAX_SINK_PUBLISHERS) {
            in->st = &out->slot->pub[si][k];
            for (int c = 0; c < SL_PC__COUNT; c++)
                atomic_store_explicit(&in->st->c[c], 0, memory_order_relaxed);
            sl_stats_text_set_label(&in->st->t, in->u.label);
        }
        if (in->u.plugin->counters && !out->poll)
            out->poll = sl_loop_every(out->loop, S_POLL_MS, 0, s_on_poll, out);
        if (!(in->u.plugin->flags & SL_PUB_F_THREAD))
            continue;
        in->threaded = 1;
        pthread_mutex_init(&in->mu, NULL);
        pthread_cond_init(&in->cv, NULL);
        if (out->efd < 0) {
            out->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (out->efd < 0)
                return sl_errf(err, errlen, "output: eventfd: %s", strerror(errno));
            out->watch = sl_loop_watch_fd(out->loop, out->efd, SL_LOOP_IN, s_on_wake, out);
        }
        in->efd = out->efd;
        /* The thread takes no signals: the worker's flags are the loop's. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc = pthread_create(&in->th, NULL, s_thread, in);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0)
            return sl_errf(err, errlen, "sink %s: publisher %s: cannot start its thread: %s",
                           name, in->u.label, strerror(rc));
        in->started = 1;
    }
    return (int) si;
}

sl_output_t *
sl_output_new(const sl_conf_t *conf, sl_loop_t *loop, sl_slot_t *slot, char *err,
              size_t errlen)
{
    sl_output_t *out = sl_xcalloc(1, sizeof *out);
    out->conf = conf;
    out->loop = loop;
    out->slot = slot;
    out->efd = -1;
    out->rng = sl_now_ms() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) out;
    if (!out->rng)
        out->rng = 0x9e3779b97f4a7c15ULL;
    for (size_t s = 0; conf && s < sl_conf_n_sinks(conf); s++) {
        const sl_sink_t *sk = sl_conf_sink(conf, (unsigned) s);
        char **urls = sl_xcalloc(sk->n_publishers + 1, sizeof *urls);
        for (size_t k = 0; k < sk->n_publishers; k++)
            urls[k] = sl_conf_expand(conf, sk->publishers[k]);
        int rc = sl_output_add_sink(out, sk->name, sl_conf_sink_is_event(conf, (unsigned) s),
                                    (const char *const *) urls, sk->n_publishers, err, errlen);
        for (size_t k = 0; k < sk->n_publishers; k++)
            free(urls[k]);
        free(urls);
        if (rc < 0) {
            sl_output_destroy(&out);
            return NULL;
        }
    }
    return out;
}

void
sl_output_submit(sl_output_t *out, unsigned sink, const sl_sample_t *samples, size_t n,
                 sl_output_done_fn done, void *arg)
{
    s_sink_t *sk = sink < out->n_sinks ? &out->sinks[sink] : NULL;
    if (sk && sk->n && n && s_inline(out, sk, sink, samples, n, done, arg))
        return;
    s_batch_t *b = s_batch_new(samples, n, sk && sk->events);
    b->sink = sink;
    b->done = done;
    b->arg = arg;
    out->pending++;
    out->live++;
    if (!sk || !sk->n || !n) {
        if (out->n_idle == out->cap_idle) {
            out->cap_idle = out->cap_idle ? out->cap_idle * 2 : 8;
            out->idle = sl_xrealloc(out->idle, out->cap_idle * sizeof *out->idle);
        }
        out->idle[out->n_idle++] = b;
        s_kick(out);
        return;
    }
    /* one reference of each kind is ours while queueing: an overflow
     * below may drop b at once */
    b->refs = (unsigned) sk->n + 1;
    b->gate = 1;
    for (size_t i = 0; i < sk->n; i++)
        b->gate += !sk->insts[i]->early;
    for (size_t i = 0; i < sk->n; i++)
        s_enqueue(sk->insts[i], b);
    s_release(out, b);
    s_kick(out);
}

/* Inline publishing (SL_PUB_F_INLINE, empty queues): 1 if every instance
 * published the caller's samples (done was called), 0 if nothing was
 * tried (the caller queues a copy as usual). An instance that fails here
 * gets a copy queued with its first attempt already counted. */
static int
s_inline(sl_output_t *out, s_sink_t *sk, unsigned sink, const sl_sample_t *samples, size_t n,
         sl_output_done_fn done, void *arg)
{
    if (sk->n > SL_MAX_SINK_PUBLISHERS)
        return 0;
    for (size_t i = 0; i < sk->n; i++) {
        const s_inst_t *in = sk->insts[i];
        if (!(in->u.plugin->flags & SL_PUB_F_INLINE) || in->len || in->retry || in->flying)
            return 0;
    }
    sl_pub_batch_t view = { .kind = sk->events ? SL_PUB_EVENTS : SL_PUB_SAMPLES, .n = n,
                            .samples = samples };
    if (sk->events) {
        if (out->n_ev_scratch < n) {
            out->ev_scratch = sl_xrealloc(out->ev_scratch, n * sizeof *out->ev_scratch);
            out->n_ev_scratch = n;
        }
        for (size_t k = 0; k < n; k++)
            out->ev_scratch[k] = samples[k].resource_metadata;
        view.samples = NULL;
        view.events = out->ev_scratch;
    }
    sl_pub_status_t st[SL_MAX_SINK_PUBLISHERS];
    char err[SL_MAX_SINK_PUBLISHERS][S_ERR_MAX];
    uint64_t ms[SL_MAX_SINK_PUBLISHERS];
    size_t failed = 0;
    size_t sent[SL_MAX_SINK_PUBLISHERS];
    for (size_t i = 0; i < sk->n; i++) {
        s_inst_t *in = sk->insts[i];
        err[i][0] = '\0';
        const sl_pub_batch_t *pb = s_select(in, &view, &in->pub);
        sent[i] = pb->n;
        uint64_t t0 = sl_now_ms();
        st[i] = pb->n ? in->u.plugin->publish(in->ctx, pb, err[i], sizeof err[i]) : SL_PUB_OK;
        ms[i] = sl_now_ms() - t0;
        if (in->st)
            SL_PINC(in->st, queued, 1);
        if (st[i] != SL_PUB_OK)
            failed++;
    }
    s_batch_t *b;
    if (failed) {
        b = s_batch_new(samples, n, sk->events);   /* kept for the retries */
    } else {
        b = sl_xcalloc(1, sizeof *b);               /* views, done before we return */
        b->b = view;
    }
    b->sink = sink;
    b->done = done;
    b->arg = arg;
    b->refs = (unsigned) sk->n + 1;   /* one of each is ours while the results go in */
    b->gate = 1;
    for (size_t i = 0; i < sk->n; i++)
        b->gate += !sk->insts[i]->early;
    out->pending++;
    out->live++;
    /* s_result works on the head of an instance's queue: put it there. */
    for (size_t i = 0; i < sk->n; i++) {
        s_inst_t *in = sk->insts[i];
        s_push_counted(in, b, sent[i]);
        in->sent_n = sent[i];
        in->skip = sent[i] == 0;
        s_result(in, st[i], err[i], ms[i]);
        in->skip = 0;
    }
    s_release(out, b);
    return 1;
}

/* Queues b on in, applying queue and drop's max_queue_length. */
static void
s_enqueue(s_inst_t *in, s_batch_t *b)
{
    {
        s_push_counted(in, b, (size_t) -1);
        if (in->st)
            SL_PINC(in->st, queued, 1);
        /* queue and drop: the oldest batch beyond max_queue_length goes;
         * default: back-pressure instead. The oldest is the head, also
         * while a thread publishes it again after it failed before (a
         * stalled destination must not hold it, and with it every
         * confirmation of its source, for ever); a head on its first
         * attempt is spared and the next one goes. A head dropped in
         * flight is let go: the thread's result is ignored. */
        if (in->u.core.policy != SL_PUB_POLICY_DEFAULT &&
            in->len > in->u.core.max_queue_length) {
            int head_flies = in->flying && in->flying == s_at(in, 0);
            size_t at = head_flies && !in->attempts ? 1 : 0;
            unsigned tried = at ? 0 : in->attempts + (head_flies ? 1 : 0);
            s_batch_t *old = s_remove(in, at);
            if (!at) {
                if (old == in->flying)
                    in->flying_gone = 1;
                if (in->retry)
                    sl_loop_cancel(in->out->loop, &in->retry);
                in->attempts = 0;
            }
            char reason[96];
            snprintf(reason, sizeof reason, "queue full (max_queue_length=%u): the oldest "
                     "batch is dropped", in->u.core.max_queue_length);
            s_drop(in, old, reason, tried, 1);
        }
        s_gauge(in);
    }
}

int
sl_output_ready(const sl_output_t *out, unsigned sink)
{
    if (sink >= out->n_sinks)
        return 1;
    const s_sink_t *sk = &out->sinks[sink];
    for (size_t i = 0; i < sk->n; i++) {
        const s_inst_t *in = sk->insts[i];
        if (in->u.core.policy == SL_PUB_POLICY_DEFAULT && in->len >= in->u.core.max_queue_length)
            return 0;
    }
    return 1;
}

void
sl_output_on_ready(sl_output_t *out, void (*fn)(void *arg, unsigned sink), void *arg)
{
    out->ready_fn = fn;
    out->ready_arg = arg;
}

size_t
sl_output_pending(const sl_output_t *out)
{
    return out ? out->pending : 0;
}

/* Drops everything still queued (the batch a thread has too: its memory
 * stays until the thread returns) and finishes the idle batches. */
static size_t
s_abandon(sl_output_t *out, const char *reason)
{
    out->abandoning = 1;
    out->abandoned = 0;
    for (size_t s = 0; s < out->n_sinks; s++)
        for (size_t i = 0; i < out->sinks[s].n; i++) {
            s_inst_t *in = out->sinks[s].insts[i];
            if (in->retry)
                sl_loop_cancel(out->loop, &in->retry);
            for (unsigned tried = in->attempts + (in->flying ? 1 : 0); in->len; tried = 0) {
                s_batch_t *b = s_remove(in, 0);
                if (b == in->flying)
                    in->flying_gone = 1;
                s_gauge(in);
                s_drop(in, b, reason, tried, 1);
                s_shorter(in);
            }
            in->attempts = 0;
        }
    while (out->n_idle)
        s_complete(out, out->idle[--out->n_idle]);
    out->abandoning = 0;
    return out->abandoned;
}

size_t
sl_output_drain(sl_output_t *out, uint64_t deadline_ms)
{
    for (uint64_t now = sl_now_ms(); out->live && now < deadline_ms; now = sl_now_ms()) {
        uint64_t wait = deadline_ms - now;
        if (sl_loop_run_once(out->loop, wait > 50 ? 50 : (int) wait) < 0 && errno != EINTR)
            break;
    }
    size_t n = s_abandon(out, "not delivered before the drain deadline");
    for (size_t s = 0; s < out->n_sinks; s++)
        for (size_t i = 0; i < out->sinks[s].n; i++) {
            s_inst_t *in = out->sinks[s].insts[i];
            char err[S_ERR_MAX];
            err[0] = '\0';
            /* threaded plugins flush on their thread when it stops */
            if (!in->threaded && in->u.plugin->flush &&
                in->u.plugin->flush(in->ctx, err, sizeof err) != SL_PUB_OK)
                sl_warn("sink %s: publisher %s: flush failed: %s", out->sinks[s].name,
                        in->u.label, err);
        }
    return n;
}

void
sl_output_destroy(sl_output_t **out_p)
{
    if (!out_p || !*out_p)
        return;
    sl_output_t *out = *out_p;
    if (out->live)
        s_abandon(out, "not delivered: the output layer was destroyed");
    if (out->kick)
        sl_loop_cancel(out->loop, &out->kick);
    if (out->poll) {
        s_on_poll(out->loop, out);   /* the last figures stay in the slot */
        sl_loop_cancel(out->loop, &out->poll);
    }
    for (size_t s = 0; s < out->n_sinks; s++) {
        for (size_t i = 0; i < out->sinks[s].n; i++)
            s_inst_free(out->sinks[s].insts[i]);
        free(out->sinks[s].insts);
        free(out->sinks[s].name);
    }
    free(out->sinks);
    if (out->watch)
        sl_loop_unwatch(out->loop, &out->watch);
    if (out->efd >= 0)
        close(out->efd);
    free(out->idle);
    free(out->ev_scratch);
    free(out);
    *out_p = NULL;
}
