/* sluice-monitor — read-only view of a running sluiced's shared memory.
 *
 *   sluice-monitor [--run-dir DIR] [--interval S]   live view, rates per second
 *   sluice-monitor --json                            one JSON snapshot, then exit
 *   sluice-monitor --prometheus                      Prometheus text format, once
 *   sluice-monitor --list-counters                   the counter reference (Markdown)
 *
 * It maps the region read-only: it can never disturb the agent. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/lease.h"
#include "common/promtext.h"
#include "common/stats.h"

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

static void
s_gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}

static void
s_gen_u64(yajl_gen g, const char *key, uint64_t v)
{
    char num[32];
    s_gen_str(g, key);
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long) v);
    yajl_gen_number(g, num, (size_t) n);
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
    s_gen_str(g, "supervisor");
    yajl_gen_map_open(g);
    for (int i = 0; i < SL_SV__COUNT; i++)
        s_gen_u64(g, sl_supervisor_counter_names[i], s_ld(&shm->sv[i]));
    yajl_gen_map_close(g);
    int n = s_used_slots(shm);
    unsigned n_sinks = atomic_load(&shm->n_sinks);
    s_gen_str(g, "totals");
    yajl_gen_map_open(g);
    for (int c = 0; c < SL_C__COUNT; c++)
        s_gen_u64(g, sl_worker_counter_names[c], sl_shm_sum(shm, c, 0));
    yajl_gen_map_close(g);
    s_gen_str(g, "sinks");
    yajl_gen_map_open(g);
    for (unsigned s = 0; s < n_sinks && s < SL_MAX_SINKS; s++) {
        s_gen_str(g, shm->sink_names[s]);
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
    s_gen_str(g, "publishers");
    yajl_gen_array_open(g);
    for (unsigned s = 0; s < n_sinks && s < SL_MAX_SINKS; s++)
        for (unsigned k = 0; k < SL_MAX_SINK_PUBLISHERS; k++) {
            s_named_t p;
            if (!s_pub_agg(shm, n, s, k, &p))
                continue;
            yajl_gen_map_open(g);
            s_gen_str(g, "sink");
            s_gen_str(g, shm->sink_names[s]);
            s_gen_u64(g, "index", k);
            s_gen_str(g, "publisher");
            s_gen_str(g, p.label);
            for (int c = 0; c < SL_PC__COUNT; c++)
                s_gen_u64(g, sl_publisher_counter_names[c], p.c[c]);
            s_gen_str(g, "last_error");
            s_gen_str(g, p.error);
            s_gen_u64(g, "last_error_ms", p.error_ms);
            yajl_gen_map_close(g);
        }
    yajl_gen_array_close(g);
    /* one entry per broker connection of the amqp sources (over ingest workers) */
    s_gen_str(g, "brokers");
    yajl_gen_array_open(g);
    for (unsigned k = 0; k < SL_MAX_BROKERS; k++) {
        s_named_t b;
        if (!s_broker_agg(shm, n, k, &b))
            continue;
        yajl_gen_map_open(g);
        s_gen_u64(g, "index", k);
        s_gen_str(g, "broker");
        s_gen_str(g, b.label);
        s_gen_u64(g, "workers", (uint64_t) b.used);
        for (int c = 0; c < SL_BC__COUNT; c++)
            s_gen_u64(g, sl_broker_counter_names[c], b.c[c]);
        s_gen_str(g, "last_error");
        s_gen_str(g, b.error);
        s_gen_u64(g, "last_error_ms", b.error_ms);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    s_gen_str(g, "workers");
    yajl_gen_array_open(g);
    uint64_t now = sl_now_ms();
    for (int i = 0; i < n; i++) {
        const sl_slot_t *s = &shm->slots[i];
        yajl_gen_map_open(g);
        s_gen_str(g, "role");
        s_gen_str(g, sl_role_name(atomic_load(&s->role)));
        s_gen_u64(g, "index", (uint64_t) atomic_load(&s->index));
        s_gen_u64(g, "pid", (uint64_t) atomic_load(&s->pid));
        s_gen_str(g, "state");
        s_gen_str(g, sl_worker_state_name(atomic_load(&s->state)));
        s_gen_u64(g, "restarts", atomic_load(&s->restarts));
        uint64_t hb = s_ld(&s->heartbeat_ms);
        s_gen_u64(g, "heartbeat_age_ms", hb && now > hb ? now - hb : 0);
        s_gen_u64(g, "leases", s_leases_held(shm, i));
        s_gen_str(g, "counters");
        yajl_gen_map_open(g);
        for (int c = 0; c < SL_C__COUNT; c++)
            s_gen_u64(g, sl_worker_counter_names[c], s_ld(&s->c[c]));
        yajl_gen_map_close(g);
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
    for (int c = 0; c < SL_SV__COUNT; c++)
        printf("| `%s` | supervisor | %s |\n", sl_supervisor_counter_names[c], sl_supervisor_counter_help[c]);
}

static void
s_live(const sl_shm_t *shm, double interval)
{
    uint64_t prev[SL_MAX_WORKERS][4];
    memset(prev, 0, sizeof prev);
    static const int cols[4] = { SL_C_received, SL_C_samples_routed, SL_C_samples_received,
                                 SL_C_samples_published };
    int first = 1;
    while (!s_done) {
        if (atomic_load(&shm->supervisor_pid) <= 0 || kill(atomic_load(&shm->supervisor_pid), 0) < 0) {
            printf("sluiced (pid %d) is gone\n", atomic_load(&shm->supervisor_pid));
            return;
        }
        int n = s_used_slots(shm);
        printf("\033[H\033[2J");
        printf("sluiced pid %d  generation %u  partitions %u  spawns %llu  crashes %llu  "
               "reloads %llu (failed %llu)\n\n", atomic_load(&shm->supervisor_pid),
               atomic_load(&shm->generation), atomic_load(&shm->partitions),
               (unsigned long long) s_ld(&shm->sv[SL_SV_spawns]),
               (unsigned long long) s_ld(&shm->sv[SL_SV_crashes]),
               (unsigned long long) s_ld(&shm->sv[SL_SV_reloads]),
               (unsigned long long) s_ld(&shm->sv[SL_SV_reload_failures]));
        printf("%-10s %3s %7s %-9s %4s %12s %10s %12s %10s %8s %8s\n", "role", "#", "pid", "state",
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
            double rate = first || rate_v < prev_v ? 0 : (double) (rate_v - prev_v) / interval;
            uint64_t dropped = 0;
            for (int c = SL_C_drop_malformed_json; c <= SL_C_drop_multipart; c++)
                dropped += s_ld(&s->c[c]);
            uint64_t hb = s_ld(&s->heartbeat_ms);
            printf("%-10s %3d %7d %-9s %4u %12llu %10.0f %12llu %10.0f %8llu %8llu\n",
                   sl_role_name(atomic_load(&s->role)), atomic_load(&s->index),
                   atomic_load(&s->pid), sl_worker_state_name(atomic_load(&s->state)),
                   s_leases_held(shm, i), (unsigned long long) main_v, ingest ? rate : 0.0,
                   (unsigned long long) (ingest ? v[1] : v[3]), ingest ? 0.0 : rate,
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
        printf("\n(received = notifications for ingest, samples for pipeline; "
               "Ctrl-C to quit; --json for scripts)\n");
        fflush(stdout);
        first = 0;
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
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *run_dir = "/run/sluice";
    double interval = 1.0;
    int json = 0, prom = 0, opt;
    while ((opt = getopt_long(argc, argv, "r:i:jplh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': run_dir = optarg; break;
        case 'i': interval = atof(optarg); break;
        case 'j': json = 1; break;
        case 'p': prom = 1; break;
        case 'l': s_list(); return 0;
        case 'h':
            printf("usage: sluice-monitor [--run-dir DIR] [--interval S] [--json|--prometheus|--list-counters]\n");
            return 0;
        default: return 2;
        }
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
    if (json)
        s_json(shm);
    else if (prom)
        s_prometheus(shm);
    else
        s_live(shm, interval);
    sl_shm_unmap(shm);
    return 0;
}
