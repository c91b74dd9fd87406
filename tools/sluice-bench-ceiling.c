/* sluice-bench-ceiling — the bare ceiling of sluice's path on this machine,
 * built and run by tools/bench in the same run as sluiced, so that every
 * end-to-end figure is reported as a ratio to it.
 *
 * The same shape as sluiced with no definitions, no stats, no confirmations:
 *   I ingest processes take notifications from the same inlet as sluiced
 *     (default: a PULL socket connected to the endpoint sluice-inject binds;
 *     --file: lines k, k+I, ... of the input file, like the file source),
 *     capture with yajl callbacks the few fields a sample needs (event_type,
 *     publisher_id, timestamp, message_id; in the payload user, project,
 *     resource id and the first number), make K samples per notification
 *     with yajl_gen (K may be fractional: 1.7 gives 1 or 2 samples so that
 *     the mean is 1.7), route each by FNV-1a(resource id) to one of P
 *     pipeline processes, 64 samples ('\n'-separated) per ZeroMQ message
 *     over ipc; a partial batch leaves after 1 ms idle.
 *   P pipeline processes PULL, split, decode each sample with yajl
 *     callbacks (counter_name, counter_volume, resource_id) and add the
 *     volume to a per-counter sum.
 * The parent waits until N notifications have been read and every sample
 * made has been decoded (or --timeout seconds without progress), then
 * prints one JSON line: counts, the wall-clock time of the first
 * notification read and of the last sample decoded (CLOCK_REALTIME, to
 * compare with sluice-inject's first_send), and CPU seconds of the ingest
 * and pipeline processes (their rusage).
 * Exit 0 when complete, 1 when the count was not reached (the JSON line
 * still says how far it got), 2 on bad usage. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <zmq.h>

#define S_BATCH 64
#define S_MAXW 64
#define S_FIELD 96

/* One cache line per counter: each is written by one process only. */
typedef struct {
    volatile uint64_t value;
    volatile double wall;
    char pad[48];
} s_slot_t;

typedef struct {
    s_slot_t received[S_MAXW];   /* per ingest: notifications read; wall = first read */
    s_slot_t made[S_MAXW];       /* per ingest: samples made and sent */
    s_slot_t decoded[S_MAXW];    /* per pipeline: samples decoded; wall = last one */
    volatile int stop;
    volatile int failed;
} s_shared_t;

typedef struct {
    const char *endpoint, *file, *run;
    int ingest, pipeline;
    double k;
    uint64_t count;
    double timeout;
} s_opts_t;

static s_shared_t *s_sh;

static double
s_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double
s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint32_t
s_fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 16777619u;
    }
    return h;
}

/* ------------------------------------------------------------ capture */

enum { F_EVENT, F_PUB, F_TS, F_MSGID, F_USER, F_PROJECT, F_RESOURCE, F_NFIELDS };

typedef struct {
    int depth, in_payload, want;
    char key[S_FIELD];
    char val[F_NFIELDS][S_FIELD];
    size_t len[F_NFIELDS];
    char number[32];
    int have_number;
} s_capture_t;

static void
s_copy(s_capture_t *c, int f, const unsigned char *s, size_t n)
{
    if (c->len[f])
        return;   /* first one wins */
    if (n >= S_FIELD)
        n = S_FIELD - 1;
    memcpy(c->val[f], s, n);
    c->val[f][n] = '\0';
    c->len[f] = n;
}

static int
s_cap_key(void *ctx, const unsigned char *k, size_t n)
{
    s_capture_t *c = ctx;
    c->want = -1;
    if (c->depth == 1) {
        c->in_payload = n == 7 && memcmp(k, "payload", 7) == 0;
        if (n == 10 && memcmp(k, "event_type", 10) == 0)
            c->want = F_EVENT;
        else if (n == 12 && memcmp(k, "publisher_id", 12) == 0)
            c->want = F_PUB;
        else if (n == 9 && memcmp(k, "timestamp", 9) == 0)
            c->want = F_TS;
        else if (n == 10 && memcmp(k, "message_id", 10) == 0)
            c->want = F_MSGID;
    } else if (c->depth == 2 && c->in_payload) {
        if (n == 7 && memcmp(k, "user_id", 7) == 0)
            c->want = F_USER;
        else if ((n == 9 && memcmp(k, "tenant_id", 9) == 0) ||
                 (n == 10 && memcmp(k, "project_id", 10) == 0))
            c->want = F_PROJECT;
        else if ((n == 11 && memcmp(k, "instance_id", 11) == 0) ||
                 (n == 11 && memcmp(k, "resource_id", 11) == 0) ||
                 (n == 2 && memcmp(k, "id", 2) == 0) ||
                 (n > 3 && memcmp(k + n - 3, "_id", 3) == 0))
            c->want = F_RESOURCE;
        else
            c->want = -2;   /* a payload scalar: its first number is the volume */
    }
    return 1;
}

static int
s_cap_string(void *ctx, const unsigned char *s, size_t n)
{
    s_capture_t *c = ctx;
    if (c->want >= 0)
        s_copy(c, c->want, s, n);
    c->want = -1;
    return 1;
}

static int
s_cap_number(void *ctx, const char *s, size_t n)
{
    s_capture_t *c = ctx;
    if (c->want == -2 && !c->have_number && n < sizeof c->number) {
        memcpy(c->number, s, n);
        c->number[n] = '\0';
        c->have_number = 1;
    }
    c->want = -1;
    return 1;
}

static int
s_cap_other(void *ctx)
{
    ((s_capture_t *) ctx)->want = -1;
    return 1;
}

static int
s_cap_bool(void *ctx, int b)
{
    (void) b;
    return s_cap_other(ctx);
}

static int
s_cap_open(void *ctx)
{
    s_capture_t *c = ctx;
    c->depth++;
    c->want = -1;
    return 1;
}

static int
s_cap_close(void *ctx)
{
    s_capture_t *c = ctx;
    c->depth--;
    if (c->depth == 1)
        c->in_payload = 0;
    return 1;
}

static const yajl_callbacks s_capture_cbs = {
    .yajl_null = s_cap_other, .yajl_boolean = s_cap_bool, .yajl_number = s_cap_number,
    .yajl_string = s_cap_string, .yajl_start_map = s_cap_open, .yajl_map_key = s_cap_key,
    .yajl_end_map = s_cap_close, .yajl_start_array = s_cap_open, .yajl_end_array = s_cap_close,
};

/* ------------------------------------------------------------ ingest */

typedef struct {
    char *buf;
    size_t len, cap;
    int count;
} s_batch_t;

static void
s_append(void *ctx, const char *s, size_t n)
{
    s_batch_t *b = *(s_batch_t **) ctx;
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->buf = realloc(b->buf, b->cap);
        if (!b->buf) {
            fprintf(stderr, "sluice-bench-ceiling: out of memory (lower --pipeline or free memory)\n");
            _exit(1);
        }
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static const char *s_counters[] = { "memory", "vcpus", "instance", "disk.root.size",
                                    "port", "volume.size", "image.size", "ip.floating" };
static const char *s_units[] = { "MB", "vcpu", "instance", "GB", "port", "GB", "B", "ip" };

#define S_STR(g, s) yajl_gen_string((g), (const unsigned char *) (s), strlen(s))
#define S_FLD(g, c, f) yajl_gen_string((g), (const unsigned char *) (c)->val[f], (c)->len[f])

/* One sample of notification c, in the shape of a Ceilometer sample. */
static void
s_gen_sample(yajl_gen g, const s_capture_t *c, int k, uint64_t seq)
{
    char mid[48];
    snprintf(mid, sizeof mid, "%08x-0000-4000-8000-%012llx", (unsigned) (seq >> 24),
             (unsigned long long) (seq & 0xffffffffffffULL));
    yajl_gen_map_open(g);
    S_STR(g, "message_id"); S_STR(g, mid);
    S_STR(g, "source"); S_STR(g, "openstack");
    S_STR(g, "counter_name"); S_STR(g, s_counters[k & 7]);
    S_STR(g, "counter_type"); S_STR(g, k == 0 ? "gauge" : "delta");
    S_STR(g, "counter_unit"); S_STR(g, s_units[k & 7]);
    S_STR(g, "counter_volume");
    if (k == 0 && c->have_number)
        yajl_gen_number(g, c->number, strlen(c->number));
    else
        yajl_gen_integer(g, 1);
    S_STR(g, "user_id"); S_FLD(g, c, F_USER);
    S_STR(g, "project_id"); S_FLD(g, c, F_PROJECT);
    S_STR(g, "resource_id");
    if (c->len[F_RESOURCE])
        S_FLD(g, c, F_RESOURCE);
    else
        S_FLD(g, c, F_MSGID);
    S_STR(g, "timestamp"); S_FLD(g, c, F_TS);
    S_STR(g, "resource_metadata");
    yajl_gen_map_open(g);
    S_STR(g, "host"); S_FLD(g, c, F_PUB);
    S_STR(g, "event_type"); S_FLD(g, c, F_EVENT);
    yajl_gen_map_close(g);
    S_STR(g, "monotonic_time"); yajl_gen_null(g);
    yajl_gen_map_close(g);
}

typedef struct {
    const s_opts_t *o;
    int idx;
    void *push[S_MAXW];
    s_batch_t batch[S_MAXW];
    s_batch_t *cur;
    yajl_gen g;
    double acc;
    uint64_t seq, made, received;
} s_ingest_t;

static void
s_flush(s_ingest_t *w, int p)
{
    s_batch_t *b = &w->batch[p];
    if (!b->count)
        return;
    while (zmq_send(w->push[p], b->buf, b->len, 0) < 0) {
        if (errno != EINTR || s_sh->stop) {
            fprintf(stderr, "sluice-bench-ceiling: ingest #%d: send: %s (see the pipeline "
                    "process's error above)\n", w->idx, zmq_strerror(errno));
            s_sh->failed = 1;
            _exit(1);
        }
    }
    b->len = 0;
    b->count = 0;
}

static void s_make(s_ingest_t *w, const s_capture_t *c);

/* One notification: capture, make its samples, count it read. A line that
 * is not JSON counts as read and makes no sample (sluiced drops it too). */
static void
s_notification(s_ingest_t *w, const char *data, size_t n)
{
    s_capture_t c;
    c.depth = c.in_payload = c.have_number = 0;
    c.want = -1;
    memset(c.len, 0, sizeof c.len);
    yajl_handle h = yajl_alloc(&s_capture_cbs, NULL, &c);
    int ok = yajl_parse(h, (const unsigned char *) data, n) == yajl_status_ok &&
             yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    if (!s_sh->received[w->idx].wall)
        s_sh->received[w->idx].wall = s_wall();
    if (ok)
        s_make(w, &c);
    /* after made: the parent must never see this notification read
     * without its samples counted (x86 keeps the order of these stores) */
    w->received++;
    s_sh->received[w->idx].value = w->received;
}

static void
s_make(s_ingest_t *w, const s_capture_t *c)
{
    const char *rid = c->len[F_RESOURCE] ? c->val[F_RESOURCE] : c->val[F_MSGID];
    size_t rlen = c->len[F_RESOURCE] ? c->len[F_RESOURCE] : c->len[F_MSGID];
    int p = (int) (s_fnv1a(rid, rlen) % (uint32_t) w->o->pipeline);
    w->acc += w->o->k;
    int k = (int) w->acc;
    w->acc -= k;
    w->cur = &w->batch[p];
    for (int i = 0; i < k; i++) {
        yajl_gen_reset(w->g, NULL);
        s_gen_sample(w->g, c, i, w->seq++);
        s_append(&w->cur, "\n", 1);
        w->made++;
        if (++w->cur->count == S_BATCH)
            s_flush(w, p);
    }
    s_sh->made[w->idx].value = w->made;
}

static void
s_ingest_main(const s_opts_t *o, int idx)
{
    s_ingest_t w = { .o = o, .idx = idx, .seq = (uint64_t) idx << 40 };
    void *ctx = zmq_ctx_new();
    for (int p = 0; p < o->pipeline; p++) {
        char ep[512];
        snprintf(ep, sizeof ep, "ipc://%s/ceiling.%d.sock", o->run, p);
        w.push[p] = zmq_socket(ctx, ZMQ_PUSH);
        int zero = 0;
        zmq_setsockopt(w.push[p], ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_connect(w.push[p], ep) < 0) {
            fprintf(stderr, "sluice-bench-ceiling: connect %s: %s (is the run directory "
                    "path short enough for a Unix socket?)\n", ep, zmq_strerror(errno));
            _exit(1);
        }
        w.batch[p].cap = 64 * 1024;
        w.batch[p].buf = malloc(w.batch[p].cap);
    }
    w.g = yajl_gen_alloc(NULL);
    yajl_gen_config(w.g, yajl_gen_print_callback, s_append, &w.cur);
    if (o->file) {
        FILE *f = fopen(o->file, "r");
        if (!f) {
            fprintf(stderr, "sluice-bench-ceiling: cannot open %s: %s\n", o->file, strerror(errno));
            _exit(1);
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t r;
        for (long i = 0; (r = getline(&line, &cap, f)) > 0 && !s_sh->stop; i++) {
            if (i % o->ingest != idx)
                continue;
            while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
                r--;
            if (r)
                s_notification(&w, line, (size_t) r);
        }
        for (int p = 0; p < o->pipeline; p++)
            s_flush(&w, p);
        while (!s_sh->stop)
            usleep(10000);
        free(line);
        fclose(f);
    } else {
        void *pull = zmq_socket(ctx, ZMQ_PULL);
        int hwm = 1000;
        zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_connect(pull, o->endpoint) < 0) {
            fprintf(stderr, "sluice-bench-ceiling: connect %s: %s (give the endpoint "
                    "sluice-inject binds)\n", o->endpoint, zmq_strerror(errno));
            _exit(1);
        }
        int pending = 0;
        while (!s_sh->stop) {
            zmq_pollitem_t it = { pull, 0, ZMQ_POLLIN, 0 };
            int rc = zmq_poll(&it, 1, pending ? 1 : 100);
            if (rc <= 0) {
                for (int p = 0; p < o->pipeline; p++)
                    s_flush(&w, p);
                pending = 0;
                continue;
            }
            /* drain what is queued, then poll again */
            for (int m = 0; m < 256; m++) {
                zmq_msg_t msg;
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, pull, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&msg);
                    break;
                }
                s_notification(&w, zmq_msg_data(&msg), zmq_msg_size(&msg));
                zmq_msg_close(&msg);
                pending = 1;
            }
        }
        int zero = 0;
        zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(pull);
    }
    for (int p = 0; p < o->pipeline; p++) {
        zmq_close(w.push[p]);
        free(w.batch[p].buf);
    }
    yajl_gen_free(w.g);
    zmq_ctx_term(ctx);
    _exit(0);
}

/* ------------------------------------------------------------ pipeline */

typedef struct {
    int depth, want;
    const unsigned char *counter, *resource;
    size_t counter_len, resource_len;
    double volume;
    unsigned found;
} s_decode_t;

static int
s_dec_key(void *ctx, const unsigned char *k, size_t n)
{
    s_decode_t *d = ctx;
    d->want = 0;
    if (d->depth != 1)
        return 1;
    if (n == 12 && memcmp(k, "counter_name", 12) == 0)
        d->want = 1;
    else if (n == 14 && memcmp(k, "counter_volume", 14) == 0)
        d->want = 2;
    else if (n == 11 && memcmp(k, "resource_id", 11) == 0)
        d->want = 3;
    return 1;
}

static int
s_dec_string(void *ctx, const unsigned char *s, size_t n)
{
    s_decode_t *d = ctx;
    if (d->depth == 1 && d->want == 1) {
        d->counter = s;   /* valid during the callback only: hashed at once */
        d->counter_len = s_fnv1a((const char *) s, n) & 63;
        d->found |= 2;
    } else if (d->depth == 1 && d->want == 3) {
        d->resource_len = n;
        d->found |= 8;
    }
    d->want = 0;
    return 1;
}

static int
s_dec_number(void *ctx, const char *s, size_t n)
{
    s_decode_t *d = ctx;
    if (d->depth == 1 && d->want == 2) {
        char tmp[40];
        if (n >= sizeof tmp)
            n = sizeof tmp - 1;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        d->volume = strtod(tmp, NULL);
        d->found |= 4;
    }
    d->want = 0;
    return 1;
}

static int
s_dec_open(void *ctx)
{
    ((s_decode_t *) ctx)->depth++;
    return 1;
}

static int
s_dec_close(void *ctx)
{
    ((s_decode_t *) ctx)->depth--;
    return 1;
}

static int
s_dec_null(void *ctx)
{
    ((s_decode_t *) ctx)->want = 0;
    return 1;
}

static const yajl_callbacks s_decode_cbs = {
    .yajl_null = s_dec_null, .yajl_number = s_dec_number, .yajl_string = s_dec_string,
    .yajl_start_map = s_dec_open, .yajl_map_key = s_dec_key, .yajl_end_map = s_dec_close,
    .yajl_start_array = s_dec_open, .yajl_end_array = s_dec_close,
};

static void
s_pipeline_main(const s_opts_t *o, int idx)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    char ep[512];
    snprintf(ep, sizeof ep, "ipc://%s/ceiling.%d.sock", o->run, idx);
    if (zmq_bind(pull, ep) < 0) {
        fprintf(stderr, "sluice-bench-ceiling: bind %s: %s (is the run directory writable "
                "and its path short enough for a Unix socket?)\n", ep, zmq_strerror(errno));
        s_sh->failed = 1;
        _exit(1);
    }
    double sums[64] = { 0 };
    uint64_t decoded = 0, bad = 0;
    while (!s_sh->stop) {
        zmq_pollitem_t it = { pull, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        const char *p = zmq_msg_data(&msg), *end = p + zmq_msg_size(&msg);
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t) (end - p));
            if (!nl)
                nl = end;
            s_decode_t d = { 0 };
            yajl_handle h = yajl_alloc(&s_decode_cbs, NULL, &d);
            if (yajl_parse(h, (const unsigned char *) p, (size_t) (nl - p)) == yajl_status_ok &&
                yajl_complete_parse(h) == yajl_status_ok && d.found == 14)
                sums[d.counter_len] += d.volume;
            else
                bad++;
            yajl_free(h);
            decoded++;
            p = nl + 1;
        }
        zmq_msg_close(&msg);
        s_sh->decoded[idx].wall = s_wall();
        s_sh->decoded[idx].value = decoded;
    }
    if (bad)
        fprintf(stderr, "sluice-bench-ceiling: pipeline #%d: %llu samples did not decode "
                "(a bug in this tool: report it)\n", idx, (unsigned long long) bad);
    if (sums[0] < -1)
        fprintf(stderr, "-");   /* keeps the sums live */
    int zero = 0;
    zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    _exit(0);
}

/* ------------------------------------------------------------ parent */

static void
s_usage(FILE *out)
{
    fprintf(out,
        "usage: sluice-bench-ceiling --count N --run DIR [--endpoint EP | --file F]\n"
        "                            [--ingest I] [--pipeline P] [--samples K] [--timeout S]\n"
        "  --count N      notifications to wait for\n"
        "  --run DIR      directory for the ipc sockets (short path: a Unix socket's limit)\n"
        "  --endpoint EP  PULL, connected to EP (the endpoint sluice-inject --peers I binds)\n"
        "  --file F       read F instead (ingest k of I takes lines k, k+I, ...)\n"
        "  --ingest I     ingest processes (default 1)\n"
        "  --pipeline P   pipeline processes (default 1)\n"
        "  --samples K    samples per notification, may be fractional (default 1)\n"
        "  --timeout S    give up after S seconds without progress (default 30)\n");
}

static void
s_rusage_add(const struct rusage *ru, double *cpu)
{
    *cpu += (double) ru->ru_utime.tv_sec + (double) ru->ru_utime.tv_usec / 1e6 +
            (double) ru->ru_stime.tv_sec + (double) ru->ru_stime.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "count", required_argument, NULL, 'n' },
        { "run", required_argument, NULL, 'r' },
        { "endpoint", required_argument, NULL, 'e' },
        { "file", required_argument, NULL, 'f' },
        { "ingest", required_argument, NULL, 'i' },
        { "pipeline", required_argument, NULL, 'p' },
        { "samples", required_argument, NULL, 'k' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    s_opts_t o = { .ingest = 1, .pipeline = 1, .k = 1, .timeout = 30 };
    int opt;
    while ((opt = getopt_long(argc, argv, "n:r:e:f:i:p:k:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n': o.count = strtoull(optarg, NULL, 10); break;
        case 'r': o.run = optarg; break;
        case 'e': o.endpoint = optarg; break;
        case 'f': o.file = optarg; break;
        case 'i': o.ingest = atoi(optarg); break;
        case 'p': o.pipeline = atoi(optarg); break;
        case 'k': o.k = atof(optarg); break;
        case 't': o.timeout = atof(optarg); break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (!o.count || !o.run || !o.endpoint == !o.file || o.ingest < 1 || o.ingest > S_MAXW ||
        o.pipeline < 1 || o.pipeline > S_MAXW || o.k <= 0 || o.k > 64 || optind != argc) {
        s_usage(stderr);
        return 2;
    }
    s_sh = mmap(NULL, sizeof *s_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s_sh == MAP_FAILED) {
        fprintf(stderr, "sluice-bench-ceiling: mmap: %s\n", strerror(errno));
        return 1;
    }
    memset(s_sh, 0, sizeof *s_sh);
    signal(SIGPIPE, SIG_IGN);
    int nchild = o.ingest + o.pipeline;
    pid_t pids[2 * S_MAXW];
    for (int c = 0; c < nchild; c++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "sluice-bench-ceiling: fork: %s\n", strerror(errno));
            s_sh->stop = 1;
            nchild = c;
            break;
        }
        if (pid == 0) {
            if (c < o.pipeline)
                s_pipeline_main(&o, c);
            s_ingest_main(&o, c - o.pipeline);
        }
        pids[c] = pid;
    }
    uint64_t last_progress = 0, received = 0, made = 0, decoded = 0;
    double since = s_mono();
    int complete = 0;
    while (!s_sh->failed) {
        received = made = decoded = 0;
        for (int i = 0; i < o.ingest; i++) {
            received += s_sh->received[i].value;
            made += s_sh->made[i].value;
        }
        for (int p = 0; p < o.pipeline; p++)
            decoded += s_sh->decoded[p].value;
        if (received >= o.count && decoded == made) {
            /* made is counted per batch sent: re-read after a pause so that
             * a notification's last batch cannot be missed */
            usleep(5000);
            uint64_t m2 = 0, d2 = 0;
            for (int i = 0; i < o.ingest; i++)
                m2 += s_sh->made[i].value;
            for (int p = 0; p < o.pipeline; p++)
                d2 += s_sh->decoded[p].value;
            if (m2 == made && d2 == decoded) {
                complete = 1;
                break;
            }
        }
        if (received + decoded != last_progress) {
            last_progress = received + decoded;
            since = s_mono();
        } else if (s_mono() - since > o.timeout) {
            fprintf(stderr, "sluice-bench-ceiling: no progress for %.0f s: read %llu of %llu "
                    "notifications, decoded %llu of %llu samples (did sluice-inject send "
                    "everything to %s?)\n", o.timeout, (unsigned long long) received,
                    (unsigned long long) o.count, (unsigned long long) decoded,
                    (unsigned long long) made, o.endpoint ? o.endpoint : o.file);
            break;
        }
        usleep(2000);
    }
    s_sh->stop = 1;
    double cpu_ingest = 0, cpu_pipeline = 0;
    for (int c = 0; c < nchild; c++) {
        struct rusage ru;
        int st;
        while (wait4(pids[c], &st, 0, &ru) < 0 && errno == EINTR)
            ;
        s_rusage_add(&ru, c < o.pipeline ? &cpu_pipeline : &cpu_ingest);
    }
    double first = 0, last = 0;
    for (int i = 0; i < o.ingest; i++)
        if (s_sh->received[i].wall && (!first || s_sh->received[i].wall < first))
            first = s_sh->received[i].wall;
    for (int p = 0; p < o.pipeline; p++)
        if (s_sh->decoded[p].wall > last)
            last = s_sh->decoded[p].wall;
    printf("{\"complete\": %s, \"notifications\": %llu, \"samples\": %llu, \"samples_made\": %llu, "
           "\"ingest\": %d, \"pipeline\": %d, \"samples_per_notification\": %.3f, "
           "\"first_read\": %.6f, \"last_decoded\": %.6f, \"seconds\": %.6f, "
           "\"cpu_ingest_s\": %.3f, \"cpu_pipeline_s\": %.3f, \"inlet\": \"%s\"}\n",
           complete ? "true" : "false", (unsigned long long) received,
           (unsigned long long) decoded, (unsigned long long) made, o.ingest, o.pipeline, o.k,
           first, last, last - first, cpu_ingest, cpu_pipeline, o.file ? "file" : "zmq");
    for (int p = 0; p < o.pipeline; p++) {
        char path[512];
        snprintf(path, sizeof path, "%s/ceiling.%d.sock", o.run, p);
        unlink(path);
    }
    return complete ? 0 : 1;
}
