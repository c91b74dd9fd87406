/* promtext — Prometheus text exposition of the shared-memory stats, and
 * the retired totals folded in so that counters never go backwards. */
#include "common/promtext.h"

#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/stagetime.h"

/* Worker rows carry the worker counters, restarts, then the totals of the
 * worker's ZeroMQ sockets (common/zmon.h). */
#define S_W_RESTARTS SL_C__COUNT
#define S_W_ZMON (SL_C__COUNT + 1)
/* ... then the stage times (ns), the latency histogram and its sum (µs) */
#define S_W_STAGE (S_W_ZMON + SL_ZC__COUNT)
#define S_W_LAT (S_W_STAGE + SL_ST__COUNT)
#define S_W_LAT_SUM (S_W_LAT + SL_LAT_BUCKETS)
#define S_W_N (S_W_LAT_SUM + 1)

/* One label set and its values; live says shared memory has it now (only
 * live rows get gauge samples). */
typedef struct {
    char     *key;          /* rendered labels, e.g. worker="ingest-0" */
    uint64_t *v;
    double    age;          /* worker rows: heartbeat age, seconds */
    int       live, up;
} s_row_t;

typedef struct {
    s_row_t *rows;
    size_t   n, cap, nv;
} s_table_t;

struct sl_promtext_retired {
    s_table_t worker, sink, pub, broker;
};

static s_row_t *
s_row(s_table_t *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].key, key) == 0)
            return &t->rows[i];
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rows = sl_xrealloc(t->rows, t->cap * sizeof *t->rows);
    }
    s_row_t *r = &t->rows[t->n++];
    memset(r, 0, sizeof *r);
    r->key = sl_xstrdup(key);
    r->v = sl_xcalloc(t->nv, sizeof *r->v);
    return r;
}

static void
s_table_free(s_table_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->rows[i].key);
        free(t->rows[i].v);
    }
    free(t->rows);
    t->rows = NULL;
    t->n = t->cap = 0;
}

static void
s_table_init(s_table_t *t, size_t nv)
{
    *t = (s_table_t) { .nv = nv };
}

void
sl_promtext_label_value(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '"')
            fputs("\\\"", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

void
sl_promtext_help(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

/* A rendered label set: name="value"[,name="value"] with values escaped. */
static void
s_key(char *buf, size_t len, const char *n1, const char *v1, const char *n2, const char *v2)
{
    char *p = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&p, &sz);
    if (!f) {
        snprintf(buf, len, "%s=\"?\"", n1);
        return;
    }
    fprintf(f, "%s=\"", n1);
    sl_promtext_label_value(f, v1);
    fputc('"', f);
    if (n2) {
        fprintf(f, ",%s=\"", n2);
        sl_promtext_label_value(f, v2);
        fputc('"', f);
    }
    fclose(f);
    snprintf(buf, len, "%s", p ? p : "");
    free(p);
}

static void
s_worker_key(char *buf, size_t len, const sl_slot_t *s)
{
    char w[48];
    snprintf(w, sizeof w, "%s-%d", sl_role_name(atomic_load(&s->role)),
             (int) atomic_load(&s->index));
    s_key(buf, len, "worker", w, NULL, NULL);
}

static uint64_t
s_take(_Atomic uint64_t *p)
{
    return atomic_exchange_explicit(p, 0, memory_order_relaxed);
}

sl_promtext_retired_t *
sl_promtext_retired_new(void)
{
    sl_promtext_retired_t *r = sl_xcalloc(1, sizeof *r);
    s_table_init(&r->worker, S_W_N);
    s_table_init(&r->sink, SL_SC__COUNT);
    s_table_init(&r->pub, SL_PC__COUNT);
    s_table_init(&r->broker, SL_BC__COUNT);
    return r;
}

void
sl_promtext_retired_destroy(sl_promtext_retired_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sl_promtext_retired_t *r = *self_p;
    s_table_free(&r->worker);
    s_table_free(&r->sink);
    s_table_free(&r->pub);
    s_table_free(&r->broker);
    free(r);
    *self_p = NULL;
}

void
sl_promtext_fold(sl_promtext_retired_t *r, sl_shm_t *shm, unsigned i, unsigned what)
{
    if (!r || i >= shm->n_slots)
        return;
    sl_slot_t *slot = &shm->slots[i];
    if (atomic_load(&slot->role) == SL_ROLE_NONE)
        return;
    char key[SL_SINK_NAME_MAX * 2 + SL_PUB_LABEL_MAX * 2 + 64];
    unsigned n_sinks = atomic_load(&shm->n_sinks);
    if (n_sinks > SL_MAX_SINKS)
        n_sinks = SL_MAX_SINKS;
    if (what & SL_PROMTEXT_FOLD_PUB) {
        for (unsigned s = 0; s < n_sinks; s++)
            for (unsigned k = 0; k < SL_MAX_SINK_PUBLISHERS; k++) {
                sl_pub_stats_t *ps = &slot->pub[s][k];
                if (!atomic_load(&ps->t.used))
                    continue;
                char label[SL_PUB_LABEL_MAX];
                sl_stats_text_get(&ps->t, label, sizeof label, NULL, 0);
                s_key(key, sizeof key, "sink", shm->sink_names[s], "publisher", label);
                s_row_t *row = s_row(&r->pub, key);
                for (int c = 0; c < SL_PC__COUNT; c++) {
                    if (sl_publisher_counter_kind[c] == SL_PK_counter)
                        row->v[c] += s_take(&ps->c[c]);
                    else if (sl_publisher_counter_kind[c] == SL_PK_gauge)
                        s_take(&ps->c[c]);
                }
            }
    }
    if ((what & SL_PROMTEXT_FOLD_ALL) != SL_PROMTEXT_FOLD_ALL)
        return;
    s_worker_key(key, sizeof key, slot);
    s_row_t *w = s_row(&r->worker, key);
    for (int c = 0; c < SL_C__COUNT; c++)
        w->v[c] += s_take(&slot->c[c]);
    w->v[S_W_RESTARTS] += atomic_exchange(&slot->restarts, 0);
    for (int z = 0; z < SL_ZC__COUNT; z++)   /* (a respawn keeps them: only a reload folds) */
        if (sl_zmon_counter_kind[z] == SL_PK_counter)
            w->v[S_W_ZMON + z] += s_take(&slot->zmon.total[z]);
    for (int st = 0; st < SL_ST__COUNT; st++) {
        w->v[S_W_STAGE + st] += s_take(&slot->stage_ns[st]);
        s_take(&slot->stage_timed[st]);
    }
    for (int b = 0; b < SL_LAT_BUCKETS; b++)
        w->v[S_W_LAT + b] += s_take(&slot->lat[b]);
    w->v[S_W_LAT_SUM] += s_take(&slot->lat_sum_us);
    s_take(&slot->lat_max_us);
    for (unsigned s = 0; s < n_sinks; s++) {
        s_key(key, sizeof key, "sink", shm->sink_names[s], NULL, NULL);
        s_row_t *row = s_row(&r->sink, key);
        for (int c = 0; c < SL_SC__COUNT; c++)
            row->v[c] += s_take(&slot->sink[s][c]);
    }
    for (unsigned k = 0; k < SL_MAX_BROKERS; k++) {
        sl_broker_stats_t *bs = &slot->broker[k];
        if (!atomic_load(&bs->t.used))
            continue;
        char label[SL_PUB_LABEL_MAX];
        sl_stats_text_get(&bs->t, label, sizeof label, NULL, 0);
        s_key(key, sizeof key, "broker", label, NULL, NULL);
        s_row_t *row = s_row(&r->broker, key);
        for (int c = 0; c < SL_BC__COUNT; c++)
            if (sl_broker_counter_kind[c] == SL_PK_counter)
                row->v[c] += s_take(&bs->c[c]);
    }
}

/* Adds retired rows (counters only: kinds says which; NULL = all) into t. */
static void
s_add_retired(s_table_t *t, const s_table_t *ret, const int *kinds)
{
    if (!ret)
        return;
    for (size_t i = 0; i < ret->n; i++) {
        s_row_t *row = s_row(t, ret->rows[i].key);
        for (size_t c = 0; c < ret->nv; c++)
            if (!kinds || c >= t->nv || kinds[c] == SL_PK_counter)
                row->v[c] += ret->rows[i].v[c];
    }
}

static void
s_family(FILE *out, const char *name, const char *help, int counter)
{
    fprintf(out, "# HELP %s%s ", name, counter ? "_total" : "");
    sl_promtext_help(out, help);
    fprintf(out, "\n# TYPE %s%s %s\n", name, counter ? "_total" : "", counter ? "counter" : "gauge");
}

/* One family over a table: value c of every row (live rows only for gauges). */
static void
s_series(FILE *out, const char *prefix, const char *name, const char *help, int counter,
         const s_table_t *t, size_t c)
{
    char full[128];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    s_family(out, full, help, counter);
    for (size_t i = 0; i < t->n; i++)
        if (counter || t->rows[i].live)
            fprintf(out, "%s%s{%s} %llu\n", full, counter ? "_total" : "", t->rows[i].key,
                    (unsigned long long) t->rows[i].v[c]);
}

/* Stage times per worker (the stages of its role), and the latency
 * histogram over every worker, with bounds at powers of two of
 * microseconds (bucket edges of the shared-memory histogram: exact). */
static void
s_stages(FILE *out, const s_table_t *w)
{
    s_family(out, "sluice_stage_cpu_seconds", "busy time of each stage of the worker, seconds, "
             "estimated from sampled timing (sluice-monitor --stages)", 1);
    for (size_t i = 0; i < w->n; i++) {
        int ingest = strncmp(w->rows[i].key, "worker=\"ingest", 14) == 0;
        for (int g = 0; g < SL_ST__COUNT; g++)
            if (sl_stage_role[g] == (ingest ? SL_ROLE_INGEST : SL_ROLE_PIPELINE))
                fprintf(out, "sluice_stage_cpu_seconds_total{%s,stage=\"%s\"} %.6f\n",
                        w->rows[i].key, sl_stage_names[g],
                        (double) w->rows[i].v[S_W_STAGE + g] / 1e9);
    }
    fputs("# HELP sluice_publish_latency_seconds time from an ingest worker's read of a "
          "frame's first notification to the publishers' delivery of the frame (one "
          "observation per frame and sink)\n# TYPE sluice_publish_latency_seconds histogram\n",
          out);
    uint64_t h[SL_LAT_BUCKETS] = { 0 }, sum = 0, cum = 0;
    for (size_t i = 0; i < w->n; i++) {
        for (int b = 0; b < SL_LAT_BUCKETS; b++)
            h[b] += w->rows[i].v[S_W_LAT + b];
        sum += w->rows[i].v[S_W_LAT_SUM];
    }
    unsigned b = 0;
    for (unsigned p2 = 5; p2 <= 27; p2++) {       /* 32 µs .. 134 s */
        uint64_t le = (uint64_t) 1 << p2;
        while (b < SL_LAT_BUCKETS && sl_lat_bucket_hi(b) <= le)
            cum += h[b++];
        fprintf(out, "sluice_publish_latency_seconds_bucket{le=\"%.6f\"} %llu\n",
                (double) le / 1e6, (unsigned long long) cum);
    }
    while (b < SL_LAT_BUCKETS)
        cum += h[b++];
    fprintf(out, "sluice_publish_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
            (unsigned long long) cum);
    fprintf(out, "sluice_publish_latency_seconds_sum %.6f\n", (double) sum / 1e6);
    fprintf(out, "sluice_publish_latency_seconds_count %llu\n", (unsigned long long) cum);
}

static int
s_used_slots(const sl_shm_t *shm)
{
    int n = (int) (atomic_load(&shm->n_ingest) + atomic_load(&shm->n_pipeline));
    return n > (int) shm->n_slots ? (int) shm->n_slots : n;
}

/* Adds one publisher's or broker's counters of one slot into row. */
static void
s_add_named(s_row_t *row, const _Atomic uint64_t *c, int n, const int *kinds)
{
    for (int j = 0; j < n; j++) {
        uint64_t v = atomic_load_explicit(&c[j], memory_order_relaxed);
        if (kinds[j] == SL_PK_max)
            row->v[j] = v > row->v[j] ? v : row->v[j];
        else
            row->v[j] += v;
    }
    row->live = 1;
}

void
sl_promtext_write(FILE *out, const sl_shm_t *shm, const sl_promtext_retired_t *r)
{
    s_table_t w, sk, pub, br;
    s_table_init(&w, S_W_N);
    s_table_init(&sk, SL_SC__COUNT);
    s_table_init(&pub, SL_PC__COUNT);
    s_table_init(&br, SL_BC__COUNT);
    char key[SL_SINK_NAME_MAX * 2 + SL_PUB_LABEL_MAX * 2 + 64];
    int n = s_used_slots(shm);
    unsigned n_sinks = atomic_load(&shm->n_sinks);
    if (n_sinks > SL_MAX_SINKS)
        n_sinks = SL_MAX_SINKS;
    uint64_t now = sl_now_ms();
    for (int i = 0; i < n; i++) {
        const sl_slot_t *s = &shm->slots[i];
        if (atomic_load(&s->role) == SL_ROLE_NONE)
            continue;
        s_worker_key(key, sizeof key, s);
        s_row_t *row = s_row(&w, key);
        for (int c = 0; c < SL_C__COUNT; c++)
            row->v[c] += atomic_load_explicit(&s->c[c], memory_order_relaxed);
        row->v[S_W_RESTARTS] += atomic_load(&s->restarts);
        for (int z = 0; z < SL_ZC__COUNT; z++)
            row->v[S_W_ZMON + z] += atomic_load_explicit(&s->zmon.total[z], memory_order_relaxed);
        for (int g = 0; g < SL_ST__COUNT; g++)
            row->v[S_W_STAGE + g] += atomic_load_explicit(&s->stage_ns[g], memory_order_relaxed);
        for (int b = 0; b < SL_LAT_BUCKETS; b++)
            row->v[S_W_LAT + b] += atomic_load_explicit(&s->lat[b], memory_order_relaxed);
        row->v[S_W_LAT_SUM] += atomic_load_explicit(&s->lat_sum_us, memory_order_relaxed);
        int st = atomic_load(&s->state);
        row->live = 1;
        row->up = atomic_load(&s->pid) > 0 && (st == SL_WS_RUNNING || st == SL_WS_DRAINING);
        uint64_t hb = atomic_load(&s->heartbeat_ms);
        row->age = hb && now > hb ? (double) (now - hb) / 1000.0 : 0.0;
    }
    for (unsigned s = 0; s < n_sinks; s++) {
        s_key(key, sizeof key, "sink", shm->sink_names[s], NULL, NULL);
        s_row_t *row = s_row(&sk, key);
        row->live = 1;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < SL_SC__COUNT; c++)
                row->v[c] += atomic_load_explicit(&shm->slots[i].sink[s][c], memory_order_relaxed);
        for (unsigned k = 0; k < SL_MAX_SINK_PUBLISHERS; k++)
            for (int i = 0; i < n; i++) {
                const sl_pub_stats_t *ps = &shm->slots[i].pub[s][k];
                if (!atomic_load(&ps->t.used))
                    continue;
                char label[SL_PUB_LABEL_MAX];
                sl_stats_text_get(&ps->t, label, sizeof label, NULL, 0);
                s_key(key, sizeof key, "sink", shm->sink_names[s], "publisher", label);
                s_add_named(s_row(&pub, key), ps->c, SL_PC__COUNT, sl_publisher_counter_kind);
            }
    }
    for (unsigned k = 0; k < SL_MAX_BROKERS; k++)
        for (int i = 0; i < n; i++) {
            const sl_broker_stats_t *bs = &shm->slots[i].broker[k];
            if (!atomic_load(&bs->t.used))
                continue;
            char label[SL_PUB_LABEL_MAX];
            sl_stats_text_get(&bs->t, label, sizeof label, NULL, 0);
            s_key(key, sizeof key, "broker", label, NULL, NULL);
            s_add_named(s_row(&br, key), bs->c, SL_BC__COUNT, sl_broker_counter_kind);
        }
    if (r) {
        s_add_retired(&w, &r->worker, NULL);
        s_add_retired(&sk, &r->sink, NULL);
        s_add_retired(&pub, &r->pub, sl_publisher_counter_kind);
        s_add_retired(&br, &r->broker, sl_broker_counter_kind);
    }

    for (int c = 0; c < SL_C__COUNT; c++)
        s_series(out, "sluice_worker_", sl_worker_counter_names[c], sl_worker_counter_help[c], 1,
                 &w, (size_t) c);
    s_series(out, "sluice_worker_", "restarts", "times the supervisor respawned this worker", 1,
             &w, S_W_RESTARTS);
    for (int z = 0; z < SL_ZC__COUNT; z++)
        s_series(out, "sluice_zmq_", sl_zmon_counter_names[z], sl_zmon_counter_help[z],
                 sl_zmon_counter_kind[z] == SL_PK_counter, &w, (size_t) (S_W_ZMON + z));
    s_family(out, "sluice_worker_up", "1 if the worker process runs (running or draining), else 0", 0);
    for (size_t i = 0; i < w.n; i++)
        if (w.rows[i].live)
            fprintf(out, "sluice_worker_up{%s} %d\n", w.rows[i].key, w.rows[i].up);
    s_family(out, "sluice_worker_heartbeat_age_seconds", "seconds since the worker's last heartbeat", 0);
    for (size_t i = 0; i < w.n; i++)
        if (w.rows[i].live)
            fprintf(out, "sluice_worker_heartbeat_age_seconds{%s} %.3f\n", w.rows[i].key,
                    w.rows[i].age);
    s_stages(out, &w);
    for (int c = 0; c < SL_SC__COUNT; c++)
        s_series(out, "sluice_sink_", sl_sink_counter_names[c], sl_sink_counter_help[c], 1, &sk,
                 (size_t) c);
    for (int c = 0; c < SL_PC__COUNT; c++)
        s_series(out, "sluice_publisher_", sl_publisher_counter_names[c],
                 sl_publisher_counter_help[c], sl_publisher_counter_kind[c] == SL_PK_counter,
                 &pub, (size_t) c);
    for (int c = 0; c < SL_BC__COUNT; c++)
        s_series(out, "sluice_broker_", sl_broker_counter_names[c], sl_broker_counter_help[c],
                 sl_broker_counter_kind[c] == SL_PK_counter, &br, (size_t) c);
    /* Supervisor counters live in the header, which no reload zeroes;
     * config_warnings is stored, not incremented: a gauge. */
    for (int c = 0; c < SL_SV__COUNT; c++) {
        int counter = c != SL_SV_config_warnings;
        char full[96];
        snprintf(full, sizeof full, "sluice_supervisor_%s", sl_supervisor_counter_names[c]);
        s_family(out, full, sl_supervisor_counter_help[c], counter);
        fprintf(out, "%s%s %llu\n", full, counter ? "_total" : "",
                (unsigned long long) atomic_load_explicit(&shm->sv[c], memory_order_relaxed));
    }
    s_family(out, "sluice_supervisor_generation", "configuration generation (1 at start, +1 per reload)", 0);
    fprintf(out, "sluice_supervisor_generation %u\n", atomic_load(&shm->generation));
    s_family(out, "sluice_supervisor_workers", "worker processes the configuration asks for, by role", 0);
    fprintf(out, "sluice_supervisor_workers{role=\"ingest\"} %u\n", atomic_load(&shm->n_ingest));
    fprintf(out, "sluice_supervisor_workers{role=\"pipeline\"} %u\n", atomic_load(&shm->n_pipeline));
    s_family(out, "sluice_supervisor_start_time_seconds", "when the supervisor started (Unix time)", 0);
    fprintf(out, "sluice_supervisor_start_time_seconds %.3f\n", (double) shm->started_ms / 1000.0);
    s_table_free(&w);
    s_table_free(&sk);
    s_table_free(&pub);
    s_table_free(&br);
}

int
sl_promtext_listen_parse(const char *text, char *host, size_t hostlen, unsigned *port,
                         char *err, size_t errlen)
{
    if (!text || !*text || strcmp(text, "off") == 0 || strcmp(text, "false") == 0 ||
        strcmp(text, "no") == 0)
        return 1;
    const char *colon = strrchr(text, ':');
    if (!colon)
        return sl_errf(err, errlen, "'%s' is not HOST:PORT (e.g. 127.0.0.1:9465, [::1]:9465, "
                       ":9465 for every address) or off", text);
    const char *h = text;
    size_t hl = (size_t) (colon - text);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return sl_errf(err, errlen, "'%s': write an IPv6 address in brackets ([::1]:9465)", text);
    }
    if (hl >= hostlen)
        return sl_errf(err, errlen, "'%s': host name too long", text);
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 1 || p > 65535)
        return sl_errf(err, errlen, "'%s': the port must be a number 1..65535", text);
    *port = (unsigned) p;
    return 0;
}
