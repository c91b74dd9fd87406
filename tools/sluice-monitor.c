/* sluice-monitor — read-only view of a running sluiced's shared memory.
 *
 *   sluice-monitor [--run-dir DIR] [--interval S]   live view, rates per second
 *   sluice-monitor --json                            one JSON snapshot, then exit
 *   sluice-monitor --prometheus                      Prometheus text format, once
 *   sluice-monitor --list-counters                   the counter reference (Markdown)
 *   sluice-monitor --sockets                         live view of the ZeroMQ sockets
 *   sluice-monitor --stages [RUN_DIR]                CPU µs per notification per stage
 *                                                    and the latency percentiles, one
 *                                                    JSON line
 *   -f GLOB (repeatable)                             only counters and fields matching
 *   --count N                                        live view: N refreshes, then exit
 *
 * The live view clears the screen and draws Unicode sparklines only on a
 * terminal; piped or redirected, it prints plain ASCII refreshes one after
 * the other.
 *
 * It maps the region read-only: it can never disturb the agent. */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/json.h"
#include "common/lease.h"
#include "common/promtext.h"
#include "common/stagetime.h"
#include "common/stats.h"
#include "common/zmon.h"

#define S_MAX_FILTERS 32
#define S_SPARK_N 40               /* refreshes the throughput sparkline covers */

static const char *s_filters[S_MAX_FILTERS];
static int s_n_filters;
static int s_tty;                  /* stdout is a terminal: escape codes, Unicode */

/* Whether a counter or field is shown: no -f given, or a glob matches. */
static int
s_want(const char *name)
{
    if (!s_n_filters)
        return 1;
    for (int i = 0; i < s_n_filters; i++)
        if (fnmatch(s_filters[i], name, 0) == 0)
            return 1;
    return 0;
}

static volatile sig_atomic_t s_done;

static void
s_on_int(int sig)
{
    (void) sig;
    s_done = 1;
}

static uint64_t
s_ld(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static int
s_used_slots(const sl_shm_t *shm)
{
    int n = (int) (atomic_load(&shm->n_ingest) + atomic_load(&shm->n_pipeline));
    return n > (int) shm->n_slots ? (int) shm->n_slots : n;
}

static unsigned
s_leases_held(const sl_shm_t *shm, int slot)
{
    const sl_lease_table_t *t = sl_shm_leases_ro(shm);
    if (!t)
        return 0;
    unsigned n = 0;
    for (unsigned s = 0; s < sl_lease_table_sinks(t); s++)
        for (unsigned p = 0; p < sl_lease_table_partitions(t); p++) {
            sl_lease_info_t li;
            if (sl_lease_get(t, s, p, &li) == 0 && li.owner == slot)
                n++;
        }
    return n;
}

/* A publisher instance or a broker connection over the used slots:
 * counters summed (max for the max kind), the label, and the most recent
 * error of any worker. */
#define S_NAMED_MAX ((int) SL_PC__COUNT > (int) SL_BC__COUNT ? (int) SL_PC__COUNT : (int) SL_BC__COUNT)
typedef struct {
    uint64_t c[S_NAMED_MAX];
    uint64_t error_ms;
    char     label[SL_PUB_LABEL_MAX];
    char     error[SL_PUB_ERROR_MAX];
    int      used;                  /* workers that set it up */
} s_named_t;

static void
s_named_add(s_named_t *out, const _Atomic uint64_t *c, int nc, const int *kind,
            const sl_stats_text_t *t)
{
    if (!atomic_load_explicit(&t->used, memory_order_acquire))
        return;
    for (int k = 0; k < nc; k++) {
        uint64_t v = s_ld(&c[k]);
        if (kind[k] == SL_PK_max)
            out->c[k] = v > out->c[k] ? v : out->c[k];
        else
            out->c[k] += v;
    }
    uint64_t ems = s_ld(&t->error_ms);
    char label[SL_PUB_LABEL_MAX], error[SL_PUB_ERROR_MAX];
    sl_stats_text_get(t, label, sizeof label, error, sizeof error);
    if (!out->used)
        memcpy(out->label, label, sizeof label);
    if (ems > out->error_ms) {
        out->error_ms = ems;
        memcpy(out->error, error, sizeof error);
    }
    out->used++;
}

/* Publisher k of sink s; 0 if no worker set it up. */
static int
s_pub_agg(const sl_shm_t *shm, int n, unsigned s, unsigned k, s_named_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        const sl_pub_stats_t *ps = &shm->slots[i].pub[s][k];
        s_named_add(out, ps->c, SL_PC__COUNT, sl_publisher_counter_kind, &ps->t);
    }
    return out->used;
}

/* Broker connection k of the ingest workers (each connects to every
 * broker, in the same order); 0 if none. */
static int
s_broker_agg(const sl_shm_t *shm, int n, unsigned k, s_named_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++) {
        const sl_broker_stats_t *bs = &shm->slots[i].broker[k];
        s_named_add(out, bs->c, SL_BC__COUNT, sl_broker_counter_kind, &bs->t);
    }
    return out->used;
}

/* A number that identifies its object (index, pid): never filtered. */
static void
s_gen_id(yajl_gen g, const char *key, uint64_t v)
{
    sl_json_gen_str(g, key);
    sl_json_gen_u64(g, v);
}

/* A counter or field: left out unless it passes -f. */
static void
s_gen_u64(yajl_gen g, const char *key, uint64_t v)
{
    if (!s_want(key))
        return;
    sl_json_gen_str(g, key);
    sl_json_gen_u64(g, v);
}

static void
s_gen_kv(yajl_gen g, const char *key, const char *v)
{
    if (!s_want(key))
        return;
    sl_json_gen_str(g, key);
    sl_json_gen_str(g, v);
}

/* One worker's ZeroMQ sockets: totals, entries and recent events. */
static void
s_json_zmq(yajl_gen g, const sl_slot_t *s)
{
    const sl_zmon_stats_t *z = &s->zmon;
    sl_json_gen_str(g, "zmq");
    yajl_gen_map_open(g);
    for (int c = 0; c < SL_ZC__COUNT; c++)
        s_gen_u64(g, sl_zmon_counter_names[c], s_ld(&z->total[c]));
    s_gen_u64(g, "unlisted", atomic_load(&z->unlisted));
    yajl_gen_map_close(g);
    sl_json_gen_str(g, "sockets");
    yajl_gen_array_open(g);
    unsigned ns = atomic_load(&z->n_socks);
    for (unsigned k = 0; k < ns && k < SL_MAX_ZSOCKS; k++) {
        sl_zsock_view_t v;
        if (sl_zmon_sock_get(z, (int) k, &v) < 0)
            continue;
        yajl_gen_map_open(g);
        s_gen_id(g, "socket", k);
        sl_json_gen_str(g, "kind");
        sl_json_gen_str(g, v.kind);
        sl_json_gen_str(g, "endpoint");
        sl_json_gen_str(g, v.endpoint);
        s_gen_kv(g, "state", v.state == SL_ZS_OPEN ? "open" : "closed");
        for (int c = 0; c < SL_ZC__COUNT; c++)
            s_gen_u64(g, sl_zmon_counter_names[c], v.c[c]);
        s_gen_kv(g, "last_event", v.last_event ? sl_zmon_event_name(v.last_event) : "");
        s_gen_u64(g, "last_event_ms", v.last_ms);
        s_gen_u64(g, "last_errno", (uint64_t) (v.last_errno > 0 ? v.last_errno : 0));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    if (s_want("socket_events")) {
        sl_zevent_view_t ev[SL_ZRING];
        size_t ne = sl_zmon_ring_get(z, ev, SL_ZRING);
        sl_json_gen_str(g, "socket_events");
        yajl_gen_array_open(g);
        for (size_t k = 0; k < ne; k++) {
            yajl_gen_map_open(g);
            s_gen_id(g, "n", ev[k].n);
            s_gen_id(g, "ms", ev[k].ms);
            sl_json_gen_str(g, "event");
            sl_json_gen_str(g, sl_zmon_event_name(ev[k].event));
            s_gen_id(g, "socket", (uint64_t) (int64_t) ev[k].sock);
            sl_json_gen_str(g, "endpoint");
            sl_json_gen_str(g, ev[k].text);
            char why[160];
            s_gen_id(g, "errno", (uint64_t) (ev[k].err > 0 ? ev[k].err : 0));
            sl_json_gen_str(g, "error");
            sl_json_gen_str(g, sl_zmon_failure_text(ev[k].event, ev[k].err, why, sizeof why));
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
    }
}

/* Stage times and latency summed over the live slots (of this
 * configuration generation: a reload zeroes them, the numerators and the
 * notifications alike; a respawned worker's slot keeps its predecessor's). */
typedef struct {
    uint64_t notifications, samples;
    uint64_t ns[SL_ST__COUNT], timed[SL_ST__COUNT];
    uint64_t lat[SL_LAT_BUCKETS], lat_count, lat_sum_us, lat_max_us;
} s_stages_t;

/* A percentile of the summed histogram in µs, never past the largest
 * value seen (interpolation within the top bucket could overshoot it). */
static double
s_lat_q(const s_stages_t *a, double q)
{
    double v = sl_lat_quantile(a->lat, q);
    return v > (double) a->lat_max_us ? (double) a->lat_max_us : v;
}

static void
s_stages_of(const sl_slot_t *s, s_stages_t *a)
{
    if (atomic_load(&s->role) == SL_ROLE_INGEST) {
        a->notifications += s_ld(&s->c[SL_C_received]);
        a->samples += s_ld(&s->c[SL_C_samples_converted]);
    }
    for (int g = 0; g < SL_ST__COUNT; g++) {
        a->ns[g] += s_ld(&s->stage_ns[g]);
        a->timed[g] += s_ld(&s->stage_timed[g]);
    }
    for (int b = 0; b < SL_LAT_BUCKETS; b++) {
        uint64_t v = s_ld(&s->lat[b]);
        a->lat[b] += v;
        a->lat_count += v;
    }
    a->lat_sum_us += s_ld(&s->lat_sum_us);
    uint64_t mx = s_ld(&s->lat_max_us);
    a->lat_max_us = mx > a->lat_max_us ? mx : a->lat_max_us;
}

static void
s_stages_sum(const sl_shm_t *shm, s_stages_t *a)
{
    memset(a, 0, sizeof *a);
    int n = s_used_slots(shm);
    for (int i = 0; i < n; i++)
        s_stages_of(&shm->slots[i], a);
}

/* µs of stage g per notification (0 without notifications). */
static double
s_stage_us(const s_stages_t *a, int g)
{
    return a->notifications ? (double) a->ns[g] / 1000.0 / (double) a->notifications : 0.0;
}

/* --stages: the one-line contract tools/bench reads. */
static void
s_stages_line(const sl_shm_t *shm)
{
    s_stages_t a;
    s_stages_sum(shm, &a);
    printf("{\"notifications\": %llu, \"samples\": %llu, \"cpu_us_per_notification\": {",
           (unsigned long long) a.notifications, (unsigned long long) a.samples);
    double total = 0;
    for (int g = 0; g < SL_ST__COUNT; g++) {
        double us = s_stage_us(&a, g);
        total += us;
        printf("\"%s\": %.3f, ", sl_stage_names[g], us);
    }
    printf("\"total\": %.3f}, \"latency_ms\": {\"count\": %llu, \"p50\": %.3f, \"p90\": %.3f, "
           "\"p99\": %.3f, \"max\": %.3f}}\n", total, (unsigned long long) a.lat_count,
           s_lat_q(&a, 0.50) / 1000.0, s_lat_q(&a, 0.90) / 1000.0,
           s_lat_q(&a, 0.99) / 1000.0, (double) a.lat_max_us / 1000.0);
}

/* --json: "stages" of the totals or of one worker. */
static void
s_json_stages(yajl_gen g, const s_stages_t *a, int latency)
{
    sl_json_gen_str(g, "stages");
    yajl_gen_map_open(g);
    for (int k = 0; k < SL_ST__COUNT; k++) {
        if (!s_want(sl_stage_names[k]))
            continue;
        sl_json_gen_str(g, sl_stage_names[k]);
        yajl_gen_map_open(g);
        s_gen_u64(g, "ns", a->ns[k]);
        s_gen_u64(g, "timed", a->timed[k]);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    if (!latency)
        return;
    sl_json_gen_str(g, "latency_us");
    yajl_gen_map_open(g);
    s_gen_u64(g, "count", a->lat_count);
    s_gen_u64(g, "sum", a->lat_sum_us);
    s_gen_u64(g, "p50", (uint64_t) s_lat_q(a, 0.50));
    s_gen_u64(g, "p90", (uint64_t) s_lat_q(a, 0.90));
    s_gen_u64(g, "p99", (uint64_t) s_lat_q(a, 0.99));
    s_gen_u64(g, "max", a->lat_max_us);
    yajl_gen_map_close(g);
}

/* Live view: one line of CPU µs per notification per stage, one of latency. */
static void
s_live_stages(const sl_shm_t *shm)
{
    s_stages_t a;
    s_stages_sum(shm, &a);
    printf("\nstages (CPU us per notification, sampled; --stages for scripts):\n ");
    double total = 0;
    for (int g = 0; g < SL_ST__COUNT; g++) {
        double us = s_stage_us(&a, g);
        total += us;
        printf(" %s %.2f", sl_stage_names[g], us);
    }
    printf("  total %.2f\n  latency read->published: %llu frames  p50 %.2f  p90 %.2f  p99 %.2f  "
           "max %.2f ms\n", total, (unsigned long long) a.lat_count,
           s_lat_q(&a, 0.50) / 1000.0, s_lat_q(&a, 0.90) / 1000.0,
           s_lat_q(&a, 0.99) / 1000.0, (double) a.lat_max_us / 1000.0);
}

static void
s_json(const sl_shm_t *shm)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    s_gen_u64(g, "supervisor_pid", (uint64_t) atomic_load(&shm->supervisor_pid));
    s_gen_u64(g, "generation", atomic_load(&shm->generation));
    s_gen_u64(g, "partitions", atomic_load(&shm->partitions));
    s_gen_u64(g, "started_ms", shm->started_ms);
    sl_json_gen_str(g, "supervisor");
    yajl_gen_map_open(g);
    for (int i = 0; i < SL_SV__COUNT; i++)
        s_gen_u64(g, sl_supervisor_counter_names[i], s_ld(&shm->sv[i]));
    yajl_gen_map_close(g);
    int n = s_used_slots(shm);
    unsigned n_sinks = atomic_load(&shm->n_sinks);
    sl_json_gen_str(g, "totals");
    yajl_gen_map_open(g);
    for (int c = 0; c < SL_C__COUNT; c++)
        s_gen_u64(g, sl_worker_counter_names[c], sl_shm_sum(shm, c, 0));
    s_stages_t agg;
    s_stages_sum(shm, &agg);
    s_json_stages(g, &agg, 1);
    yajl_gen_map_close(g);
    /* the ZeroMQ socket counters summed over the workers */
    sl_json_gen_str(g, "zmq_totals");
    yajl_gen_map_open(g);
    for (int c = 0; c < SL_ZC__COUNT; c++) {
        uint64_t sum = 0;
        for (int i = 0; i < n; i++)
            sum += s_ld(&shm->slots[i].zmon.total[c]);
        s_gen_u64(g, sl_zmon_counter_names[c], sum);
    }
    yajl_gen_map_close(g);
    sl_json_gen_str(g, "sinks");
    yajl_gen_map_open(g);
    for (unsigned s = 0; s < n_sinks && s < SL_MAX_SINKS; s++) {
        sl_json_gen_str(g, shm->sink_names[s]);
        yajl_gen_map_open(g);
        for (int c = 0; c < SL_SC__COUNT; c++) {
            uint64_t sum = 0;
            for (int i = 0; i < n; i++)
                sum += s_ld(&shm->slots[i].sink[s][c]);
            s_gen_u64(g, sl_sink_counter_names[c], sum);
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    /* one entry per (sink, publisher) some worker runs */
    sl_json_gen_str(g, "publishers");
    yajl_gen_array_open(g);
    for (unsigned s = 0; s < n_sinks && s < SL_MAX_SINKS; s++)
        for (unsigned k = 0; k < SL_MAX_SINK_PUBLISHERS; k++) {
            s_named_t p;
            if (!s_pub_agg(shm, n, s, k, &p))
                continue;
            yajl_gen_map_open(g);
            sl_json_gen_str(g, "sink");
            sl_json_gen_str(g, shm->sink_names[s]);
            s_gen_id(g, "index", k);
            sl_json_gen_str(g, "publisher");
            sl_json_gen_str(g, p.label);
            for (int c = 0; c < SL_PC__COUNT; c++)
                s_gen_u64(g, sl_publisher_counter_names[c], p.c[c]);
            s_gen_kv(g, "last_error", p.error);
            s_gen_u64(g, "last_error_ms", p.error_ms);
            yajl_gen_map_close(g);
        }
    yajl_gen_array_close(g);
    /* one entry per broker connection of the amqp sources (over ingest workers) */
    sl_json_gen_str(g, "brokers");
    yajl_gen_array_open(g);
    for (unsigned k = 0; k < SL_MAX_BROKERS; k++) {
        s_named_t b;
        if (!s_broker_agg(shm, n, k, &b))
            continue;
        yajl_gen_map_open(g);
        s_gen_id(g, "index", k);
        sl_json_gen_str(g, "broker");
        sl_json_gen_str(g, b.label);
        s_gen_u64(g, "workers", (uint64_t) b.used);
        for (int c = 0; c < SL_BC__COUNT; c++)
            s_gen_u64(g, sl_broker_counter_names[c], b.c[c]);
        s_gen_kv(g, "last_error", b.error);
        s_gen_u64(g, "last_error_ms", b.error_ms);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    sl_json_gen_str(g, "workers");
    yajl_gen_array_open(g);
    uint64_t now = sl_now_ms();
    for (int i = 0; i < n; i++) {
        const sl_slot_t *s = &shm->slots[i];
        yajl_gen_map_open(g);
        sl_json_gen_str(g, "role");
        sl_json_gen_str(g, sl_role_name(atomic_load(&s->role)));
        s_gen_id(g, "index", (uint64_t) atomic_load(&s->index));
        s_gen_id(g, "pid", (uint64_t) atomic_load(&s->pid));
        s_gen_kv(g, "state", sl_worker_state_name(atomic_load(&s->state)));
        s_gen_u64(g, "restarts", atomic_load(&s->restarts));
        uint64_t hb = s_ld(&s->heartbeat_ms);
        s_gen_u64(g, "heartbeat_age_ms", hb && now > hb ? now - hb : 0);
        s_gen_u64(g, "leases", s_leases_held(shm, i));
        sl_json_gen_str(g, "counters");
        yajl_gen_map_open(g);
        for (int c = 0; c < SL_C__COUNT; c++)
            s_gen_u64(g, sl_worker_counter_names[c], s_ld(&s->c[c]));
        s_stages_t one;
        memset(&one, 0, sizeof one);
        s_stages_of(s, &one);
        s_json_stages(g, &one, atomic_load(&s->role) == SL_ROLE_PIPELINE);
        yajl_gen_map_close(g);
        s_json_zmq(g, s);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    fwrite(buf, 1, len, stdout);
    fputc('\n', stdout);
    yajl_gen_free(g);
}

/* The exposition sluiced serves on /metrics (common/promtext.h), from the
 * live slots only: the retired totals live in the supervisor. */
static void
s_prometheus(const sl_shm_t *shm)
{
    sl_promtext_write(stdout, shm, NULL);
}

static void
s_list(void)
{
    printf("| counter | scope | meaning |\n|---|---|---|\n");
    for (int c = 0; c < SL_C__COUNT; c++)
        printf("| `%s` | worker | %s |\n", sl_worker_counter_names[c], sl_worker_counter_help[c]);
    for (int c = 0; c < SL_SC__COUNT; c++)
        printf("| `%s` | worker x sink | %s |\n", sl_sink_counter_names[c], sl_sink_counter_help[c]);
    for (int c = 0; c < SL_PC__COUNT; c++)
        printf("| `%s` | worker x sink x publisher (%s) | %s |\n", sl_publisher_counter_names[c],
               sl_publisher_counter_kind[c] == SL_PK_counter ? "counter" :
               sl_publisher_counter_kind[c] == SL_PK_gauge ? "gauge" : "max over workers",
               sl_publisher_counter_help[c]);
    for (int c = 0; c < SL_BC__COUNT; c++)
        printf("| `%s` | ingest worker x broker (%s) | %s |\n", sl_broker_counter_names[c],
               sl_broker_counter_kind[c] == SL_PK_counter ? "counter" : "gauge",
               sl_broker_counter_help[c]);
    for (int c = 0; c < SL_ZC__COUNT; c++)
        printf("| `%s` | worker x ZeroMQ socket (%s) | %s |\n", sl_zmon_counter_names[c],
               sl_zmon_counter_kind[c] == SL_PK_counter ? "counter" : "gauge",
               sl_zmon_counter_help[c]);
    for (int c = 0; c < SL_SV__COUNT; c++)
        printf("| `%s` | supervisor | %s |\n", sl_supervisor_counter_names[c], sl_supervisor_counter_help[c]);
    for (int g = 0; g < SL_ST__COUNT; g++)
        printf("| `stage %s` | %s worker (ns, sampled) | %s |\n", sl_stage_names[g],
               sl_role_name(sl_stage_role[g]), sl_stage_help[g]);
}

/* The last values as a sparkline of width n: Unicode blocks on a
 * terminal, ASCII otherwise; scaled to the largest value shown. */
static void
s_sparkline(const double *v, int n, char *out, size_t len)
{
    static const char *const uni[8] = { "\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588" };
    static const char ascii[] = "_.-:=+*#";
    double max = 0;
    for (int i = 0; i < n; i++)
        max = v[i] > max ? v[i] : max;
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        int level = max > 0 ? (int) (v[i] / max * 7.0 + 0.5) : 0;
        level = level < 0 ? 0 : level > 7 ? 7 : level;
        int w = s_tty ? snprintf(out + o, len - o, "%s", uni[level])
                      : snprintf(out + o, len - o, "%c", ascii[level]);
        if (w < 0 || (size_t) w >= len - o)
            break;
        o += (size_t) w;
    }
}

static const char *
s_age(uint64_t ms, uint64_t now, char *buf, size_t len)
{
    if (!ms)
        snprintf(buf, len, "-");
    else if (now < ms + 1000)
        snprintf(buf, len, "now");
    else if (now - ms < 120000)
        snprintf(buf, len, "%llus ago", (unsigned long long) ((now - ms) / 1000));
    else
        snprintf(buf, len, "%llum ago", (unsigned long long) ((now - ms) / 60000));
    return buf;
}

static uint64_t
s_zfailures(const uint64_t *c)
{
    return c[SL_ZC_bind_failures] + c[SL_ZC_accept_failures] + c[SL_ZC_handshake_failures] +
           c[SL_ZC_close_failures];
}

/* A compact line per worker: its sockets now and what happened to them. */
static void
s_live_zmq_summary(const sl_shm_t *shm, int n)
{
    printf("\nzeromq sockets (per worker; --sockets for each socket):\n");
    printf("  %-12s %5s %5s %9s %9s %9s %8s %8s  %s\n", "worker", "open", "peers", "connects",
           "accepted", "disconn", "retries", "failures", "last event");
    uint64_t now = sl_wall_ms();
    for (int i = 0; i < n; i++) {
        const sl_slot_t *s = &shm->slots[i];
        const sl_zmon_stats_t *z = &s->zmon;
        uint64_t t[SL_ZC__COUNT];
        for (int c = 0; c < SL_ZC__COUNT; c++)
            t[c] = s_ld(&z->total[c]);
        unsigned open = atomic_load(&z->unlisted);
        for (unsigned k = 0; k < atomic_load(&z->n_socks) && k < SL_MAX_ZSOCKS; k++)
            open += atomic_load(&z->sock[k].state) == SL_ZS_OPEN;
        sl_zevent_view_t ev[1];
        char last[160] = "-", age[32], who[32];
        if (sl_zmon_ring_get(z, ev, 1) == 1)
            snprintf(last, sizeof last, "%s %s (%s)", sl_zmon_event_name(ev[0].event),
                     ev[0].text, s_age(ev[0].ms, now, age, sizeof age));
        snprintf(who, sizeof who, "%s #%d", sl_role_name(atomic_load(&s->role)),
                 atomic_load(&s->index));
        printf("  %-12s %5u %5llu %9llu %9llu %9llu %8llu %8llu  %s\n", who, open,
               (unsigned long long) t[SL_ZC_peers], (unsigned long long) t[SL_ZC_connects],
               (unsigned long long) t[SL_ZC_accepted], (unsigned long long) t[SL_ZC_disconnects],
               (unsigned long long) t[SL_ZC_connect_retries],
               (unsigned long long) s_zfailures(t), last);
    }
}

typedef struct {
    sl_zevent_view_t e;
    int worker;
} s_wevent_t;

static int
s_cmp_event(const void *a, const void *b)
{
    const s_wevent_t *x = a, *y = b;
    if (x->e.ms != y->e.ms)
        return x->e.ms < y->e.ms ? -1 : 1;
    return x->worker != y->worker ? x->worker - y->worker : (x->e.n > y->e.n) - (x->e.n < y->e.n);
}

/* Every socket with its endpoint, peers, last event and failures, then the
 * most recent events of all workers. */
static void
s_live_sockets(const sl_shm_t *shm, int n)
{
    uint64_t now = sl_wall_ms();
    printf("\n%-12s %-13s %-6s %-44s %5s %8s %8s %8s  %s\n", "worker", "kind", "state",
           "endpoint", "peers", "disconn", "retries", "failures", "last event");
    for (int i = 0; i < n; i++) {
        const sl_zmon_stats_t *z = &shm->slots[i].zmon;
        char who[32];
        snprintf(who, sizeof who, "%s #%d", sl_role_name(atomic_load(&shm->slots[i].role)),
                 atomic_load(&shm->slots[i].index));
        for (unsigned k = 0; k < atomic_load(&z->n_socks) && k < SL_MAX_ZSOCKS; k++) {
            sl_zsock_view_t v;
            if (sl_zmon_sock_get(z, (int) k, &v) < 0)
                continue;
            char age[32], err[180] = "", why[160];
            if (v.last_errno > 0)
                snprintf(err, sizeof err, ": %s",
                         sl_zmon_failure_text(v.last_event, v.last_errno, why, sizeof why));
            printf("%-12s %-13s %-6s %-44s %5llu %8llu %8llu %8llu  %s %s%s\n", who, v.kind,
                   v.state == SL_ZS_OPEN ? "open" : "closed", v.endpoint,
                   (unsigned long long) v.c[SL_ZC_peers],
                   (unsigned long long) v.c[SL_ZC_disconnects],
                   (unsigned long long) v.c[SL_ZC_connect_retries],
                   (unsigned long long) s_zfailures(v.c),
                   v.last_event ? sl_zmon_event_name(v.last_event) : "-",
                   s_age(v.last_ms, now, age, sizeof age), err);
        }
        unsigned unlisted = atomic_load(&z->unlisted);
        if (unlisted)
            printf("%-12s (%u more sockets, counted in the totals only)\n", who, unlisted);
    }
    enum { S_SHOW = 20 };
    s_wevent_t *all = calloc((size_t) (n > 0 ? n : 1) * SL_ZRING, sizeof *all);
    if (!all)
        return;
    size_t na = 0;
    for (int i = 0; i < n; i++) {
        sl_zevent_view_t ev[SL_ZRING];
        size_t got = sl_zmon_ring_get(&shm->slots[i].zmon, ev, SL_ZRING);
        for (size_t k = 0; k < got; k++)
            all[na++] = (s_wevent_t) { .e = ev[k], .worker = i };
    }
    qsort(all, na, sizeof *all, s_cmp_event);
    printf("\nrecent socket events:\n");
    for (size_t k = na > S_SHOW ? na - S_SHOW : 0; k < na; k++) {
        const sl_zevent_view_t *e = &all[k].e;
        const sl_slot_t *ws = &shm->slots[all[k].worker];
        char age[32], why[160], who[32];
        snprintf(who, sizeof who, "%s #%d", sl_role_name(atomic_load(&ws->role)),
                 atomic_load(&ws->index));
        printf("  %-9s %-19s %-12s %s%s%s\n", s_age(e->ms, now, age, sizeof age),
               sl_zmon_event_name(e->event), who, e->text, e->err > 0 ? ": " : "",
               sl_zmon_failure_text(e->event, e->err, why, sizeof why));
    }
    if (!na)
        printf("  (none)\n");
    free(all);
}

/* -f: each matching counter summed over the workers, with its rate. */
#define S_FIELDS_MAX 256
static void
s_live_fields(const sl_shm_t *shm, int n, uint64_t *prev, double elapsed, int first)
{
    printf("\nfields matching -f:\n");
    int k = 0, shown = 0;
    for (int c = 0; c < SL_C__COUNT; c++, k++) {
        uint64_t v = sl_shm_sum(shm, c, 0);
        if (s_want(sl_worker_counter_names[c])) {
            printf("  %-28s %14llu %12.1f/s\n", sl_worker_counter_names[c], (unsigned long long) v,
                   first || v < prev[k] ? 0.0 : (double) (v - prev[k]) / elapsed);
            shown++;
        }
        prev[k] = v;
    }
    for (int c = 0; c < SL_ZC__COUNT; c++, k++) {
        uint64_t v = 0;
        for (int i = 0; i < n; i++)
            v += s_ld(&shm->slots[i].zmon.total[c]);
        char name[64];
        snprintf(name, sizeof name, "zmq_%s", sl_zmon_counter_names[c]);
        if (s_want(sl_zmon_counter_names[c]) || s_want(name)) {
            printf("  %-28s %14llu %12.1f/s\n", name, (unsigned long long) v,
                   first || v < prev[k] ? 0.0 : (double) (v - prev[k]) / elapsed);
            shown++;
        }
        prev[k] = v;
    }
    for (int c = 0; c < SL_SV__COUNT; c++) {
        char name[64];
        snprintf(name, sizeof name, "supervisor_%s", sl_supervisor_counter_names[c]);
        if (s_want(sl_supervisor_counter_names[c]) || s_want(name)) {
            printf("  %-28s %14llu\n", name, (unsigned long long) s_ld(&shm->sv[c]));
            shown++;
        }
    }
    if (!shown)
        printf("  (no counter matches; sluice-monitor --list-counters lists them)\n");
}

static void
s_live(const sl_shm_t *shm, double interval, int sockets, long count)
{
    uint64_t prev[SL_MAX_WORKERS][4];
    memset(prev, 0, sizeof prev);
    static const int cols[4] = { SL_C_received, SL_C_samples_routed, SL_C_samples_received,
                                 SL_C_samples_published };
    int first = 1;
    double spark[S_SPARK_N] = { 0 };
    uint64_t fprev[S_FIELDS_MAX] = { 0 }, last_in = 0, last_ms = sl_now_ms();
    long rounds = 0;
    while (!s_done && (count <= 0 || rounds++ < count)) {
        if (atomic_load(&shm->supervisor_pid) <= 0 || kill(atomic_load(&shm->supervisor_pid), 0) < 0) {
            printf("sluiced (pid %d) is gone\n", atomic_load(&shm->supervisor_pid));
            return;
        }
        int n = s_used_slots(shm);
        if (s_tty) {
            printf("\033[H\033[2J");
        } else {
            time_t t = time(NULL);
            struct tm tm;
            char when[32];
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
            printf("---- %s ----\n", when);
        }
        printf("sluiced pid %d  generation %u  partitions %u  spawns %llu  crashes %llu  "
               "reloads %llu (failed %llu)\n\n", atomic_load(&shm->supervisor_pid),
               atomic_load(&shm->generation), atomic_load(&shm->partitions),
               (unsigned long long) s_ld(&shm->sv[SL_SV_spawns]),
               (unsigned long long) s_ld(&shm->sv[SL_SV_crashes]),
               (unsigned long long) s_ld(&shm->sv[SL_SV_reloads]),
               (unsigned long long) s_ld(&shm->sv[SL_SV_reload_failures]));
        /* throughput: notifications read by the ingest workers, per second */
        uint64_t in_now = sl_shm_sum(shm, SL_C_received, SL_ROLE_INGEST), t_now = sl_now_ms();
        double elapsed = t_now > last_ms ? (double) (t_now - last_ms) / 1000.0 : interval;
        double rate = first || in_now < last_in ? 0.0 : (double) (in_now - last_in) / elapsed;
        memmove(spark, spark + 1, sizeof spark - sizeof *spark);
        spark[S_SPARK_N - 1] = rate;
        last_in = in_now;
        last_ms = t_now;
        char line[S_SPARK_N * 4 + 1];
        s_sparkline(spark, S_SPARK_N, line, sizeof line);
        printf("notifications/s %10.0f  %s\n", rate, line);
        if (s_n_filters) {
            s_live_fields(shm, n, fprev, elapsed, first);
            fflush(stdout);
            first = 0;
            goto sleep;
        }
        if (sockets) {
            s_live_sockets(shm, n);
            printf("\n(Ctrl-C to quit; --json for scripts)\n");
            fflush(stdout);
            first = 0;
            goto sleep;
        }
        printf("\n%-10s %3s %7s %-9s %4s %12s %10s %12s %10s %8s %8s\n", "role", "#", "pid", "state",
               "lse", "received", "notif/s", "published", "samp/s", "dropped", "hb ms");
        uint64_t now = sl_now_ms();
        for (int i = 0; i < n; i++) {
            const sl_slot_t *s = &shm->slots[i];
            uint64_t v[4];
            for (int k = 0; k < 4; k++)
                v[k] = s_ld(&s->c[cols[k]]);
            int ingest = atomic_load(&s->role) == SL_ROLE_INGEST;
            uint64_t main_v = ingest ? v[0] : v[2], rate_v = ingest ? v[0] : v[3];
            uint64_t prev_v = ingest ? prev[i][0] : prev[i][3];
            double wrate = first || rate_v < prev_v ? 0 : (double) (rate_v - prev_v) / elapsed;
            uint64_t dropped = 0;
            for (int c = SL_C_drop_malformed_json; c <= SL_C_drop_multipart; c++)
                dropped += s_ld(&s->c[c]);
            uint64_t hb = s_ld(&s->heartbeat_ms);
            printf("%-10s %3d %7d %-9s %4u %12llu %10.0f %12llu %10.0f %8llu %8llu\n",
                   sl_role_name(atomic_load(&s->role)), atomic_load(&s->index),
                   atomic_load(&s->pid), sl_worker_state_name(atomic_load(&s->state)),
                   s_leases_held(shm, i), (unsigned long long) main_v, ingest ? wrate : 0.0,
                   (unsigned long long) (ingest ? v[1] : v[3]), ingest ? 0.0 : wrate,
                   (unsigned long long) dropped,
                   (unsigned long long) (hb && now > hb ? now - hb : 0));
            memcpy(prev[i], v, sizeof v);
        }
        printf("\nsinks:\n");
        unsigned n_sinks = atomic_load(&shm->n_sinks);
        for (unsigned k = 0; k < n_sinks && k < SL_MAX_SINKS; k++) {
            uint64_t routed = 0, pub = 0, failed = 0;
            for (int i = 0; i < n; i++) {
                routed += s_ld(&shm->slots[i].sink[k][SL_SC_routed]);
                pub += s_ld(&shm->slots[i].sink[k][SL_SC_published]);
                failed += s_ld(&shm->slots[i].sink[k][SL_SC_failed]);
            }
            printf("  %-24s routed %llu  published %llu  failed %llu\n", shm->sink_names[k],
                   (unsigned long long) routed, (unsigned long long) pub, (unsigned long long) failed);
        }
        int header = 0;
        for (unsigned k = 0; k < n_sinks && k < SL_MAX_SINKS; k++)
            for (unsigned j = 0; j < SL_MAX_SINK_PUBLISHERS; j++) {
                s_named_t p;
                if (!s_pub_agg(shm, n, k, j, &p))
                    continue;
                if (!header++)
                    printf("\npublishers:\n");
                uint64_t calls = p.c[SL_PC_publishes];
                printf("  %s#%u %s  sent %llu  retried %llu  dropped %llu  dead-lettered %llu  "
                       "queue %llu  errors %llu  latency avg %.1f max %llu ms%s%s\n",
                       shm->sink_names[k], j, p.label,
                       (unsigned long long) p.c[SL_PC_sent],
                       (unsigned long long) p.c[SL_PC_retried],
                       (unsigned long long) p.c[SL_PC_dropped],
                       (unsigned long long) p.c[SL_PC_dead_lettered],
                       (unsigned long long) p.c[SL_PC_queue_depth],
                       (unsigned long long) p.c[SL_PC_errors],
                       calls ? (double) p.c[SL_PC_latency_ms_sum] / (double) calls : 0.0,
                       (unsigned long long) p.c[SL_PC_latency_ms_max],
                       p.error[0] ? "\n      last error: " : "", p.error);
            }
        header = 0;
        for (unsigned k = 0; k < SL_MAX_BROKERS; k++) {
            s_named_t b;
            if (!s_broker_agg(shm, n, k, &b))
                continue;
            if (!header++)
                printf("\nbrokers (amqp sources; over ingest workers):\n");
            printf("  %s  consuming %llu/%d  deliveries %llu  redelivered %llu  acks %llu  "
                   "nacks %llu  unacked %llu  connects %llu  disconnects %llu  failed "
                   "attempts %llu%s%s\n", b.label,
                   (unsigned long long) (b.c[SL_BC_state] / 2), b.used,
                   (unsigned long long) b.c[SL_BC_deliveries],
                   (unsigned long long) b.c[SL_BC_redeliveries],
                   (unsigned long long) b.c[SL_BC_acks], (unsigned long long) b.c[SL_BC_nacks],
                   (unsigned long long) b.c[SL_BC_unacked],
                   (unsigned long long) b.c[SL_BC_connects],
                   (unsigned long long) b.c[SL_BC_disconnects],
                   (unsigned long long) b.c[SL_BC_reconnect_attempts],
                   b.error[0] ? "\n      last error: " : "", b.error);
        }
        s_live_zmq_summary(shm, n);
        s_live_stages(shm);
        printf("\n(received = notifications for ingest, samples for pipeline; "
               "Ctrl-C to quit; --json for scripts)\n");
        fflush(stdout);
        first = 0;
    sleep:
        if (count > 0 && rounds >= count)
            break;
        struct timespec ts = { (time_t) interval, (long) ((interval - (double) (time_t) interval) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "run-dir", required_argument, NULL, 'r' },
        { "interval", required_argument, NULL, 'i' },
        { "json", no_argument, NULL, 'j' },
        { "prometheus", no_argument, NULL, 'p' },
        { "list-counters", no_argument, NULL, 'l' },
        { "sockets", no_argument, NULL, 's' },
        { "field", required_argument, NULL, 'f' },
        { "count", required_argument, NULL, 'n' },
        { "stages", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *run_dir = "/run/sluice";
    double interval = 1.0;
    int json = 0, prom = 0, sockets = 0, stages = 0, opt;
    long count = 0;
    while ((opt = getopt_long(argc, argv, "r:i:jplsSf:n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': run_dir = optarg; break;
        case 'i': interval = atof(optarg); break;
        case 'j': json = 1; break;
        case 'p': prom = 1; break;
        case 'l': s_list(); return 0;
        case 's': sockets = 1; break;
        case 'S': stages = 1; break;
        case 'n': count = atol(optarg); break;
        case 'f':
            if (s_n_filters == S_MAX_FILTERS) {
                fprintf(stderr, "sluice-monitor: at most %d -f globs; join them into fewer "
                        "(-f 'drop_*' matches every drop counter)\n", S_MAX_FILTERS);
                return 2;
            }
            s_filters[s_n_filters++] = optarg;
            break;
        case 'h':
            printf("usage: sluice-monitor [--run-dir DIR] [--interval S] [--count N] [--sockets]\n"
                   "                      [-f GLOB]... [--json|--prometheus|--list-counters|--stages]\n"
                   "                      [RUN_DIR]\n"
                   "  live view (default): workers, sinks, publishers, brokers, ZeroMQ sockets\n"
                   "    and a notifications/s sparkline, every --interval seconds (1), --count\n"
                   "    times (0 = until Ctrl-C); plain text without escape codes when stdout\n"
                   "    is not a terminal\n"
                   "  --sockets      each ZeroMQ socket (endpoint, kind, peers, last event,\n"
                   "                 failures) and the recent socket events\n"
                   "  -f, --field GLOB  only counters and fields whose names match (fnmatch;\n"
                   "                 repeatable): in --json, in the live view (a fields panel)\n"
                   "  --json         one JSON snapshot (with each worker's zmq totals, sockets\n"
                   "                 and socket_events), then exit\n"
                   "  --prometheus   Prometheus text format, once\n"
                   "  --list-counters  the counter reference (Markdown)\n"
                   "  --stages       one JSON line: CPU us per notification per stage (sampled\n"
                   "                 timing) and the read-to-published latency percentiles\n");
            return 0;
        default: return 2;
        }
    }
    if (optind < argc)
        run_dir = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "sluice-monitor: one run directory only (got '%s' too); see --help\n",
                argv[optind]);
        return 2;
    }
    if (interval < 0.1)
        interval = 0.1;
    char name[64], err[512];
    sl_shm_name(run_dir, name, sizeof name);
    const sl_shm_t *shm = sl_shm_attach(name, err, sizeof err);
    if (!shm) {
        fprintf(stderr, "sluice-monitor: %s\n", err);
        return 1;
    }
    signal(SIGINT, s_on_int);
    s_tty = isatty(STDOUT_FILENO);
    if (stages)
        s_stages_line(shm);
    else if (json)
        s_json(shm);
    else if (prom)
        s_prometheus(shm);
    else
        s_live(shm, interval, sockets, count);
    sl_shm_unmap(shm);
    return 0;
}
