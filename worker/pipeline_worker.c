/* Pipeline worker: leases -> PULL -> transform -> publish.
 *
 * Worker j is ring member "pipeline-j". The ring (common/ring.h) over the
 * pipeline members that are alive, or were alive less than
 * S_TAKEOVER_DELAY_MS ago, says which partitions j should hold: a quickly
 * respawned worker gets its own partitions back without anything moving,
 * and a worker that stays down has its partitions taken over. For each
 * partition it should hold and that is free, it takes the lease, binds the
 * partition's ipc endpoint and creates the sink's transformer chain; for
 * each it holds but should not, it drains the socket, flushes the chain and
 * releases. Every received frame is decoded, its samples go through the
 * chain notification by notification, and what comes out is published to
 * the sink's publishers in one batch per frame. */
#include "worker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/coord.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/ring.h"
#include "common/wire.h"
#include "worker/publisher.h"
#include "worker/reorder.h"
#include "worker/transform.h"

#define S_TAKEOVER_DELAY_MS 3000
#define S_TIMER_FLUSH_MS 1000     /* retention checks */

typedef struct {
    int held;
    void *sock;
    sl_chain_t *chain;
    sl_reorder_t *reorder;         /* NULL unless the sink has a reorder_window */
    sl_chain_stats_t counted;      /* chain counters already added to the slot */
    char endpoint[SL_LEASE_ENDPOINT_MAX];
} s_hold_t;

/* A partition just handed over (memcached backend): its old socket stays
 * open and whatever still arrives there is passed on, unprocessed, to the
 * new owner, until the senders have switched (ZeroMQ has no acks, so this
 * is what keeps a graceful handoff from dropping frames in flight). */
typedef struct s_fwd {
    struct s_fwd *next;
    void *in;                      /* the old PULL socket */
    void *out;                     /* PUSH to the new owner, once known */
    unsigned sink, p;
    uint64_t released, connected, last_lookup;
    zmq_msg_t *queue;              /* frames waiting for the new owner */
    size_t n_queue, cap_queue;
} s_fwd_t;

typedef struct {
    sl_worker_ctx_t *ctx;
    const sl_conf_t *conf;
    void *zctx;
    unsigned n_sinks, partitions;
    s_hold_t *holds;               /* [sink * partitions + p] */
    sl_publisher_t ***pubs;        /* [sink][i] */
    uint64_t *keys;                /* ring keys of every (sink, p) */
    int *owners;
    uint64_t member_mask_seen;
    uint64_t last_seen_alive[SL_MAX_WORKERS];
    sl_sample_vec_t in, out;
    zmq_msg_t msg;
    sl_coord_t *coord;             /* memcached backend; NULL = local shared memory */
    s_fwd_t *fwd;                  /* handed-over partitions still forwarding */
    char member_id[SL_COORD_ID_MAX];
    uint64_t last_heartbeat;
    char member_sig[4096];         /* the member list the assignment was computed for */
    const char **event_json;       /* scratch for event publishing */
    size_t n_event_json;
    sl_ratelimit_t rl_frame, rl_pub;
} s_pipe_t;

static s_hold_t *
s_hold(s_pipe_t *pp, unsigned sink, unsigned p)
{
    return &pp->holds[(size_t) sink * pp->partitions + p];
}

/* Adds what the chain counted since last time to the worker's counters. */
static void
s_account(s_pipe_t *pp, s_hold_t *h)
{
    const sl_chain_stats_t *st = sl_chain_stats(h->chain);
    uint64_t errors = st->no_volume + st->errors + st->flush_errors + st->eval_errors;
    uint64_t before = h->counted.no_volume + h->counted.errors + h->counted.flush_errors +
                      h->counted.eval_errors;
    SL_INC(pp->ctx->slot, transform_errors, errors - before);
    SL_INC(pp->ctx->slot, transform_absorbed, st->absorbed - h->counted.absorbed);
    h->counted = *st;
}

static void
s_publish(s_pipe_t *pp, unsigned sink, sl_sample_vec_t *out)
{
    if (!out->n)
        return;
    const sl_sink_t *sk = sl_conf_sink(pp->conf, sink);
    int failed = 0, events = sl_conf_sink_is_event(pp->conf, sink);
    if (events) {
        /* Event records carry the event's JSON in resource_metadata (wire.h). */
        if (pp->n_event_json < out->n) {
            pp->event_json = sl_xrealloc(pp->event_json, out->n * sizeof *pp->event_json);
            pp->n_event_json = out->n;
        }
        for (size_t i = 0; i < out->n; i++)
            pp->event_json[i] = out->v[i].resource_metadata;
    }
    for (size_t i = 0; i < sk->n_publishers; i++) {
        char err[512];
        sl_pub_status_t st;
        for (int attempt = 0; attempt < 2; attempt++) {   /* one immediate retry; queueing is a later issue */
            st = events ? sl_publisher_publish_events(pp->pubs[sink][i], pp->event_json, out->n,
                                                      err, sizeof err)
                        : sl_publisher_publish(pp->pubs[sink][i], out->v, out->n, err, sizeof err);
            if (st != SL_PUB_RETRY)
                break;
        }
        if (st != SL_PUB_OK) {
            failed = 1;
            sl_log_limited(&pp->rl_pub, SL_LOG_ERROR, "sink %s: publisher %s lost %zu samples: %s",
                           sk->name, pp->pubs[sink][i]->url, out->n, err);
        }
    }
    if (failed) {
        SL_INC(pp->ctx->slot, publish_errors, out->n);
        SL_SINC(pp->ctx->slot, sink, failed, out->n);
    } else {
        if (events)
            SL_INC(pp->ctx->slot, events_published, out->n);
        else
            SL_INC(pp->ctx->slot, samples_published, out->n);
        SL_SINC(pp->ctx->slot, sink, published, out->n);
    }
    out->n = 0;
}

/* One notification's samples through the chain, then its flush point
 * (Ceilometer's batch_size 1). */
static void
s_run_chain(void *arg, const sl_sample_t *samples, size_t n)
{
    s_hold_t *h = ((void **) arg)[1];
    s_pipe_t *pp = ((void **) arg)[0];
    sl_chain_process(h->chain, samples, n, &pp->out);
    sl_chain_flush(h->chain, &pp->out);
}

static void
s_notification(s_pipe_t *pp, s_hold_t *h, uint64_t now)
{
    if (h->reorder) {
        sl_reorder_add(h->reorder, pp->in.v, pp->in.n, now);
        return;
    }
    void *arg[2] = { pp, h };
    s_run_chain(arg, pp->in.v, pp->in.n);
}

/* Releases what the reorder window lets go (everything if force) and, on
 * the timer, gives every chain an empty flush point (retention_time). */
static void
s_timers(s_pipe_t *pp, int force, int timer_flush)
{
    uint64_t now = sl_now_ms();
    for (unsigned i = 0; i < pp->n_sinks * pp->partitions; i++) {
        s_hold_t *h = &pp->holds[i];
        if (!h->held)
            continue;
        void *arg[2] = { pp, h };
        if (h->reorder)
            sl_reorder_release(h->reorder, now, force, s_run_chain, arg);
        /* A quiet partition still emits an aggregate whose retention_time
         * expired (Ceilometer flushed on the next notification). */
        if (timer_flush && (double) sl_wall_ms() / 1000.0 >= sl_chain_next_expiry(h->chain))
            sl_chain_flush(h->chain, &pp->out);
        s_publish(pp, i / pp->partitions, &pp->out);
        s_account(pp, h);
    }
}

static void
s_handle_frame(s_pipe_t *pp, void *data, size_t len)
{
    sl_worker_ctx_t *ctx = pp->ctx;
    sl_wire_reader_t r;
    char err[256];
    SL_INC(ctx->slot, frames_received, 1);
    if (sl_wire_reader_open(&r, data, len, err, sizeof err) < 0 ||
        r.hdr.sink >= pp->n_sinks || r.hdr.partition >= pp->partitions ||
        (r.hdr.generation != ctx->generation && !pp->coord)) {   /* agents' generations differ */
        SL_INC(ctx->slot, frames_rejected, 1);
        sl_log_limited(&pp->rl_frame, SL_LOG_WARN, "rejected a frame of %zu bytes: %s", len,
                       err[0] && r.hdr.generation == ctx->generation ? err : "stale generation or bad sink/partition");
        return;
    }
    s_hold_t *h = s_hold(pp, r.hdr.sink, r.hdr.partition);
    sl_sample_t s;
    unsigned flags;
    int rc;
    pp->in.n = 0;
    uint64_t now = sl_now_ms();
    while ((rc = sl_wire_reader_next(&r, &s, &flags)) == 1) {
        SL_INC(ctx->slot, samples_received, 1);
        sl_sample_vec_push(&pp->in, &s);
        if (flags & SL_WIRE_FLAG_END_OF_NOTIFICATION) {
            s_notification(pp, h, now);
            pp->in.n = 0;
        }
    }
    if (pp->in.n) {   /* a frame always ends on a notification boundary; be safe */
        s_notification(pp, h, now);
        pp->in.n = 0;
    }
    s_publish(pp, r.hdr.sink, &pp->out);
    s_account(pp, h);
}

/* Receives everything queued on one partition socket. */
static size_t
s_drain_socket(s_pipe_t *pp, s_hold_t *h)
{
    size_t n = 0;
    while (zmq_msg_recv(&pp->msg, h->sock, ZMQ_DONTWAIT) >= 0) {
        s_handle_frame(pp, zmq_msg_data(&pp->msg), zmq_msg_size(&pp->msg));
        n++;
    }
    return n;
}

/* --- partition handoff -------------------------------------------------
 * When a partition changes hands (a rebalance, or a reload that restarts
 * every worker), the old owner writes its chain's state to
 * <run_dir>/state/<sink>.<p> before it releases the lease, and the new
 * owner loads it after taking the lease, so the transformers go on as if
 * nothing had moved. The file starts with "SLST", a version and a
 * fingerprint of the sink's transformer configuration and the partition
 * count: state saved under another configuration is discarded (logged). On
 * a final stop the chain is drained instead (everything held is emitted). */

#define S_STATE_MAGIC 0x54534c53u   /* "SLST" */
#define S_STATE_VERSION 1u

static uint64_t
s_ynode_hash(uint64_t h, const sl_ynode_t *n)
{
    if (!n)
        return sl_hash64_update(h, "~", 1);
    h = sl_hash64_update(h, &n->kind, sizeof n->kind);
    if (n->kind == SL_Y_SCALAR)
        return sl_hash64_update(h, n->value, strlen(n->value) + 1);
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == SL_Y_MAP)
            h = sl_hash64_update(h, n->keys[i], strlen(n->keys[i]) + 1);
        h = s_ynode_hash(h, n->items[i]);
    }
    return h;
}

static uint64_t
s_fingerprint(const s_pipe_t *pp, unsigned sink)
{
    const sl_sink_t *sk = sl_conf_sink(pp->conf, sink);
    uint64_t h = sl_hash64_update(SL_HASH64_INIT, &pp->partitions, sizeof pp->partitions);
    h = sl_hash64_update(h, sk->name, strlen(sk->name) + 1);
    for (size_t i = 0; i < sk->n_transformers; i++) {
        h = sl_hash64_update(h, sk->transformers[i].name, strlen(sk->transformers[i].name) + 1);
        h = s_ynode_hash(h, sk->transformers[i].parameters);
    }
    return sl_hash64_final(h);
}

static void
s_state_path(const s_pipe_t *pp, unsigned sink, unsigned p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/state/%s.%u", pp->conf->run_dir, sl_conf_sink_label(pp->conf, sink), p);
}

static void
s_state_save(s_pipe_t *pp, unsigned sink, unsigned p, s_hold_t *h)
{
    char path[4096], tmp[4200];
    char *blob = NULL;
    size_t len = 0;
    if (!sl_conf_sink(pp->conf, sink)->n_transformers)
        return;
    if (sl_chain_save(h->chain, &blob, &len) < 0) {
        sl_log_limited(&pp->rl_pub, SL_LOG_ERROR, "sink %s partition %u: cannot save transformer "
                       "state for the next owner; draining it instead", sl_conf_sink(pp->conf, sink)->name, p);
        sl_chain_drain(h->chain, &pp->out);
        return;
    }
    s_state_path(pp, sink, p, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int) getpid());
    uint32_t hdr[2] = { S_STATE_MAGIC, S_STATE_VERSION };
    uint64_t fp = s_fingerprint(pp, sink);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(&fp, sizeof fp, 1, f) == 1 &&
             (len == 0 || fwrite(blob, len, 1, f) == 1);
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        sl_log_limited(&pp->rl_pub, SL_LOG_ERROR, "cannot write transformer state %s: %s; "
                       "draining it instead (is run_dir writable?)", path, strerror(errno));
        unlink(tmp);
        sl_chain_drain(h->chain, &pp->out);
    }
    free(blob);
}

static void
s_state_load(s_pipe_t *pp, unsigned sink, unsigned p, s_hold_t *h)
{
    char path[4096], err[256];
    s_state_path(pp, sink, p, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    uint32_t hdr[2];
    uint64_t fp;
    char *blob = NULL;
    size_t len = 0, cap = 0, n;
    int ok = fread(hdr, sizeof hdr, 1, f) == 1 && fread(&fp, sizeof fp, 1, f) == 1 &&
             hdr[0] == S_STATE_MAGIC && hdr[1] == S_STATE_VERSION;
    while (ok) {
        if (len == cap)
            blob = sl_xrealloc(blob, cap = cap ? cap * 2 : 65536);
        if ((n = fread(blob + len, 1, cap - len, f)) == 0)
            break;
        len += n;
    }
    fclose(f);
    unlink(path);
    if (!ok)
        sl_warn("%s is not a sluice state file: ignored", path);
    else if (fp != s_fingerprint(pp, sink))
        sl_info("%s was saved under another transformer configuration or partition count: the "
                "partition starts with fresh state", path);
    else if (sl_chain_load(h->chain, blob, len, err, sizeof err) < 0)
        sl_error("cannot load transformer state %s: %s; the partition starts with fresh state",
                 path, err);
    free(blob);
}

static void
s_release(s_pipe_t *pp, unsigned sink, unsigned p)
{
    s_hold_t *h = s_hold(pp, sink, p);
    if (!h->held)
        return;
    s_drain_socket(pp, h);
    if (h->reorder) {
        void *arg[2] = { pp, h };
        sl_reorder_release(h->reorder, 0, 1, s_run_chain, arg);
    }
    /* Handing over: the state goes to the next owner. Stopping for good:
     * emit what the chain still holds rather than lose it. */
    int final = (sl_worker_drain && !atomic_load(&pp->ctx->shm->handoff)) || pp->coord;
    /* With memcached the next owner may be on another host: the state is
     * emitted (drained) rather than handed over. */
    if (final)
        sl_chain_drain(h->chain, &pp->out);
    else
        s_state_save(pp, sink, p, h);
    s_publish(pp, sink, &pp->out);
    s_account(pp, h);
    memset(&h->counted, 0, sizeof h->counted);
    sl_reorder_destroy(&h->reorder);
    sl_chain_destroy(&h->chain);
    if (pp->coord) {
        s_fwd_t *f = sl_xcalloc(1, sizeof *f);
        f->in = h->sock;
        f->sink = sink;
        f->p = p;
        f->released = sl_now_ms();
        f->next = pp->fwd;
        pp->fwd = f;
    } else {
        int zero = 0;
        zmq_setsockopt(h->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(h->sock);
    }
    h->sock = NULL;
    h->held = 0;
    sl_lease_release(sl_shm_leases(pp->ctx->shm), sink, p, pp->ctx->slot_index);
    if (pp->coord && sl_coord_lease_release(pp->coord, sink, p) < 0)
        sl_log_limited(&pp->rl_pub, SL_LOG_WARN, "memcached: cannot release lease %s/%u; it "
                       "expires after lease_ttl", sl_conf_sink_label(pp->conf, sink), p);
    SL_INC(pp->ctx->slot, leases_released, 1);
}

static void
s_take(s_pipe_t *pp, unsigned sink, unsigned p)
{
    s_hold_t *h = s_hold(pp, sink, p);
    char ep[SL_LEASE_ENDPOINT_MAX];
    sl_lease_table_t *t = sl_shm_leases(pp->ctx->shm);
    if (pp->coord) {
        /* Bind a tcp port other hosts can reach first: the lease names it. */
        char bind_ep[256];
        size_t eplen = sizeof ep;
        snprintf(bind_ep, sizeof bind_ep, "tcp://%s:*", pp->conf->coord_advertise);
        h->sock = zmq_socket(pp->zctx, ZMQ_PULL);
        int hwm = (int) sl_conf_frame_hwm(pp->conf);
        zmq_setsockopt(h->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_bind(h->sock, bind_ep) < 0 ||
            zmq_getsockopt(h->sock, ZMQ_LAST_ENDPOINT, ep, &eplen) < 0) {
            sl_log_limited(&pp->rl_frame, SL_LOG_ERROR, "cannot bind %s: %s (check "
                           "coordination.advertise)", bind_ep, zmq_strerror(errno));
            zmq_close(h->sock);
            h->sock = NULL;
            return;
        }
        /* Agents on this host connect over ipc instead: the lease names
         * both, "tcp://...|ipc://...", when it fits. */
        char ipc[SL_LEASE_ENDPOINT_MAX];
        sl_worker_partition_endpoint(pp->conf, sink, p, ipc, sizeof ipc);
        if (pp->conf->coord_same_host_ipc && strlen(ep) + 1 + strlen(ipc) < SL_COORD_ENDPOINT_MAX &&
            zmq_bind(h->sock, ipc) == 0) {
            size_t l = strlen(ep);
            snprintf(ep + l, sizeof ep - l, "|%s", ipc);
        }
        int rc = sl_coord_lease_take(pp->coord, sink, p, ep);
        if (rc != 0 || sl_lease_take(t, sink, p, pp->ctx->slot_index, ep) < 0) {
            if (rc == 0)
                sl_coord_lease_release(pp->coord, sink, p);
            int zero = 0;
            zmq_setsockopt(h->sock, ZMQ_LINGER, &zero, sizeof zero);
            zmq_close(h->sock);
            h->sock = NULL;
            return;   /* held elsewhere until it expires or is released: retry later */
        }
    } else {
        sl_worker_partition_endpoint(pp->conf, sink, p, ep, sizeof ep);
        if (sl_lease_take(t, sink, p, pp->ctx->slot_index, ep) < 0)
            return;   /* still held by its previous owner: retry on the next cron */
        h->sock = zmq_socket(pp->zctx, ZMQ_PULL);
        int hwm = (int) sl_conf_frame_hwm(pp->conf);
        zmq_setsockopt(h->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_bind(h->sock, ep) < 0) {
            sl_log_limited(&pp->rl_frame, SL_LOG_ERROR, "cannot bind %s: %s (is run_dir writable?)",
                           ep, zmq_strerror(errno));
            zmq_close(h->sock);
            h->sock = NULL;
            sl_lease_release(t, sink, p, pp->ctx->slot_index);
            return;
        }
    }
    snprintf(h->endpoint, sizeof h->endpoint, "%s", ep);
    h->chain = sl_chain_new(sl_conf_sink(pp->conf, sink));
    sl_chain_set_source(h->chain, pp->conf->sample_source);
    s_state_load(pp, sink, p, h);
    unsigned window = sl_conf_sink(pp->conf, sink)->reorder_window_ms;
    h->reorder = window ? sl_reorder_new(window) : NULL;
    h->held = 1;
    SL_INC(pp->ctx->slot, leases_taken, 1);
}

/* Pipeline slots that count as ring members right now (bit = role index). */
static uint64_t
s_members(s_pipe_t *pp)
{
    uint64_t mask = 0, now = sl_now_ms();
    const sl_shm_t *shm = pp->ctx->shm;
    int n_ingest = pp->conf->n_ingest;
    for (int j = 0; j < pp->conf->n_pipeline && j < 64; j++) {
        const sl_slot_t *s = &shm->slots[n_ingest + j];
        int st = atomic_load(&s->state);
        if (atomic_load(&s->pid) > 0 && (st == SL_WS_RUNNING || st == SL_WS_STARTING))
            pp->last_seen_alive[j] = now;
        if (j == pp->ctx->index || (pp->last_seen_alive[j] &&
                                    now - pp->last_seen_alive[j] < S_TAKEOVER_DELAY_MS))
            mask |= 1ULL << j;
    }
    return mask;
}

/* memcached backend: heartbeat, drop leases found lost, and recompute the
 * assignment over the live members of the whole group (every host). On a
 * memcached error the last assignment stays in force. */
static void
s_rebalance_coord(s_pipe_t *pp)
{
    unsigned total = pp->n_sinks * pp->partitions;
    uint64_t now = sl_now_ms();
    if (now - pp->last_heartbeat < pp->conf->coord_heartbeat_ms)
        return;
    pp->last_heartbeat = now;
    int hb = sl_coord_heartbeat(pp->coord);
    if (hb < 0) {
        sl_log_limited(&pp->rl_pub, SL_LOG_WARN, "memcached heartbeat failed; keeping the "
                       "partitions whose lease has not run out (coordination.backend %s "
                       "reachable?)", pp->conf->coord_backend);
        hb = sl_coord_join(pp->coord, pp->member_id, "-");
    }
    /* A lease we could not renew in time is no longer ours, memcached
     * reachable or not: once it is back another host may take it, so we
     * stop first (its samples wait in the senders' queues meanwhile). */
    for (unsigned i = 0; i < total; i++) {
        s_hold_t *h = &pp->holds[i];
        if (h->held && !sl_coord_lease_held(pp->coord, i / pp->partitions, i % pp->partitions)) {
            sl_warn("lease %s/%u was lost (expired or taken over): dropping the partition",
                    sl_conf_sink_label(pp->conf, i / pp->partitions), i % pp->partitions);
            s_release(pp, i / pp->partitions, i % pp->partitions);
        }
    }
    if (hb < 0)
        return;
    sl_coord_member_t members[256];
    ssize_t n = sl_coord_members(pp->coord, members, 256);
    if (n <= 0)
        return;
    if (n > 256)
        n = 256;
    char sig[4096];
    size_t off = 0;
    sig[0] = '\0';
    for (ssize_t k = 0; k < n && off < sizeof sig - 70; k++)
        off += (size_t) snprintf(sig + off, sizeof sig - off, "%s;", members[k].id);
    if (strcmp(sig, pp->member_sig) != 0) {
        sl_ring_t *ring = sl_ring_new(0);
        for (ssize_t k = 0; k < n; k++)
            sl_ring_add(ring, members[k].id);
        int me = sl_ring_find(ring, pp->member_id);
        sl_ring_assign(ring, pp->keys, total, pp->owners);
        for (unsigned i = 0; i < total; i++)
            pp->owners[i] = pp->owners[i] == me && me >= 0 ? pp->ctx->index : -1;
        sl_ring_destroy(&ring);
        snprintf(pp->member_sig, sizeof pp->member_sig, "%s", sig);
        sl_info("group membership: %zd pipeline workers", n);
    }
    for (unsigned i = 0; i < total; i++) {
        unsigned sk = i / pp->partitions, p = i % pp->partitions;
        int mine = pp->owners[i] == pp->ctx->index;
        if (pp->holds[i].held && !mine)
            s_release(pp, sk, p);
        else if (!pp->holds[i].held && mine)
            s_take(pp, sk, p);
    }
}

static void
s_rebalance(s_pipe_t *pp, int leaving)
{
    unsigned total = pp->n_sinks * pp->partitions;
    if (leaving) {
        for (unsigned i = 0; i < total; i++)
            s_release(pp, i / pp->partitions, i % pp->partitions);
        return;
    }
    if (pp->coord) {
        s_rebalance_coord(pp);
        return;
    }
    uint64_t mask = s_members(pp);
    if (mask != pp->member_mask_seen) {
        sl_ring_t *ring = sl_ring_new(0);
        for (int j = 0; j < 64; j++) {
            if (mask & (1ULL << j)) {
                char name[32];
                snprintf(name, sizeof name, "pipeline-%d", j);
                sl_ring_add(ring, name);
            }
        }
        int *idx = pp->owners;
        sl_ring_assign(ring, pp->keys, total, idx);
        /* Translate ring member indexes into worker indexes. */
        for (unsigned i = 0; i < total; i++)
            idx[i] = atoi(sl_ring_member(ring, (size_t) idx[i]) + strlen("pipeline-"));
        sl_ring_destroy(&ring);
        pp->member_mask_seen = mask;
    }
    for (unsigned i = 0; i < total; i++) {
        unsigned s = i / pp->partitions, p = i % pp->partitions;
        int mine = pp->owners[i] == pp->ctx->index;
        s_hold_t *h = s_hold(pp, s, p);
        if (h->held && !mine)
            s_release(pp, s, p);
        else if (!h->held && mine)
            s_take(pp, s, p);
    }
}

static void
s_fwd_free(s_fwd_t *f, int linger_ms)
{
    for (size_t i = 0; i < f->n_queue; i++)
        zmq_msg_close(&f->queue[i]);
    free(f->queue);
    int zero = 0;
    zmq_setsockopt(f->in, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(f->in);
    if (f->out) {
        zmq_setsockopt(f->out, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(f->out);
    }
    free(f);
}

/* Moves frames from handed-over sockets to their new owners; returns how
 * many forwarders are still open. */
static size_t
s_forward(s_pipe_t *pp)
{
    uint64_t now = sl_now_ms(), hb = pp->conf->coord_heartbeat_ms;
    size_t open = 0;
    for (s_fwd_t **fp = &pp->fwd; *fp;) {
        s_fwd_t *f = *fp;
        for (int b = 0; b < 256; b++) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, f->in, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            if (f->n_queue == f->cap_queue) {
                f->cap_queue = f->cap_queue ? f->cap_queue * 2 : 16;
                f->queue = sl_xrealloc(f->queue, f->cap_queue * sizeof *f->queue);
            }
            zmq_msg_init(&f->queue[f->n_queue]);
            zmq_msg_move(&f->queue[f->n_queue++], &m);
            zmq_msg_close(&m);
        }
        /* We may hold the partition again ourselves (a renewal came too late,
         * the lease was dropped, then the ring gave it back to us): then what
         * arrives on the old socket is ours to process. */
        int mine = pp->holds[(size_t) f->sink * pp->partitions + f->p].held;
        if (mine) {
            for (size_t i = 0; i < f->n_queue; i++) {
                s_handle_frame(pp, zmq_msg_data(&f->queue[i]), zmq_msg_size(&f->queue[i]));
                zmq_msg_close(&f->queue[i]);
            }
            f->n_queue = 0;
            if (!f->connected)
                f->connected = now;
        } else if (!f->out && now - f->last_lookup >= hb / 2) {
            f->last_lookup = now;
            sl_coord_lease_t l;
            if (sl_coord_lease_get(pp->coord, f->sink, f->p, &l) == 0 && l.owner[0] &&
                strcmp(l.owner, pp->member_id) != 0) {
                char *bar = strchr(l.endpoint, '|');
                if (bar)
                    *bar = '\0';
                f->out = zmq_socket(pp->zctx, ZMQ_PUSH);
                if (zmq_connect(f->out, l.endpoint) == 0) {
                    f->connected = now;
                } else {
                    zmq_close(f->out);
                    f->out = NULL;
                }
            }
        }
        size_t sent = 0;
        while (f->out && sent < f->n_queue &&
               zmq_msg_send(&f->queue[sent], f->out, ZMQ_DONTWAIT) >= 0)
            sent++;
        if (sent) {
            SL_INC(pp->ctx->slot, frames_forwarded, sent);
            memmove(f->queue, f->queue + sent, (f->n_queue - sent) * sizeof *f->queue);
            f->n_queue -= sent;
        }
        /* Done once the senders have had time to switch (they re-read the
         * owners every heartbeat/4); give up after lease_ttl + 3 heartbeats. */
        int switched = (f->out || mine) && now - f->connected > 3 * hb && !f->n_queue;
        int expired = now - f->released > pp->conf->coord_lease_ttl_ms + 3 * hb;
        if (switched || expired) {
            if (f->n_queue)
                sl_warn("handover of %s/%u: %zu frames could not reach the new owner",
                        sl_conf_sink_label(pp->conf, f->sink), f->p, f->n_queue);
            *fp = f->next;
            s_fwd_free(f, 2000);
            continue;
        }
        open++;
        fp = &f->next;
    }
    return open;
}

int
sl_pipeline_run(sl_worker_ctx_t *ctx)
{
    s_pipe_t pp;
    memset(&pp, 0, sizeof pp);
    pp.ctx = ctx;
    pp.conf = ctx->conf;
    pp.n_sinks = (unsigned) sl_conf_n_sinks(ctx->conf);
    pp.partitions = ctx->conf->partitions;
    unsigned total = pp.n_sinks * pp.partitions;
    pp.zctx = zmq_ctx_new();
    pp.holds = sl_xcalloc(total + 1, sizeof *pp.holds);
    pp.keys = sl_xcalloc(total + 1, sizeof *pp.keys);
    pp.owners = sl_xcalloc(total + 1, sizeof *pp.owners);
    for (unsigned i = 0; i < total; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s/%u", sl_conf_sink_label(pp.conf, i / pp.partitions),
                 i % pp.partitions);
        pp.keys[i] = sl_hash64_str(key);
    }
    /* Every configured pipeline worker counts as a member from the start
     * (they are forked together): each takes only its own share at once,
     * instead of one worker taking everything and handing partitions over
     * as the others come up. One that never comes up is taken over after
     * S_TAKEOVER_DELAY_MS like a dead one. */
    for (int j = 0; j < ctx->conf->n_pipeline && j < SL_MAX_WORKERS; j++)
        pp.last_seen_alive[j] = sl_now_ms();
    zmq_msg_init(&pp.msg);
    int rc = 0;
    if (strcmp(ctx->conf->coord_backend, "local") != 0) {
        char err[512], host[32];
        sl_worker_host_id(host, sizeof host);
        char shm_name[64];
        sl_shm_name(ctx->conf->run_dir, shm_name, sizeof shm_name);
        /* Stable across respawns and unique per agent: host, run_dir hash, index. */
        snprintf(pp.member_id, sizeof pp.member_id, "%s:%.8s/pipeline-%d", host,
                 shm_name + strlen("/sluice."), ctx->index);
        pp.coord = sl_coord_new(ctx->conf->coord_backend + strlen("memcached://"),
                                ctx->conf->coord_group, ctx->conf->coord_secret,
                                ctx->conf->coord_secret_len, ctx->conf->coord_lease_ttl_ms,
                                err, sizeof err);
        if (!pp.coord) {
            sl_error("coordination: %s", err);
            rc = 2;
        } else if (sl_coord_join(pp.coord, pp.member_id, "-") < 0) {
            sl_warn("coordination: cannot join group %s yet (memcached down?); retrying",
                    ctx->conf->coord_group);
        }
    }
    pp.pubs = sl_xcalloc(pp.n_sinks + 1, sizeof *pp.pubs);
    for (unsigned s = 0; s < pp.n_sinks && rc == 0; s++) {
        const sl_sink_t *sk = sl_conf_sink(pp.conf, s);
        pp.pubs[s] = sl_xcalloc(sk->n_publishers + 1, sizeof **pp.pubs);
        for (size_t i = 0; i < sk->n_publishers; i++) {
            char err[512];
            char *url = sl_conf_expand(pp.conf, sk->publishers[i]);
            pp.pubs[s][i] = sl_publisher_new(url, err, sizeof err);
            free(url);
            if (!pp.pubs[s][i]) {
                sl_error("sink %s: %s", sk->name, err);
                rc = 2;
                break;
            }
        }
    }
    if (rc == 0) {
        sl_worker_set_state(ctx, SL_WS_RUNNING);
        sl_info("pipeline worker #%d running: %u sinks x %u partitions", ctx->index,
                pp.n_sinks, pp.partitions);
    }
    zmq_pollitem_t *items = sl_xcalloc(total + 1, sizeof *items);
    unsigned *item_part = sl_xcalloc(total + 1, sizeof *item_part);
    uint64_t last_cron = 0, drain_started = 0, last_frame = sl_now_ms(), last_flush = sl_now_ms(), last_timers = 0;
    while (rc == 0 && !sl_worker_stop) {
        uint64_t now = sl_now_ms();
        int timer_flush = now - last_flush >= S_TIMER_FLUSH_MS;
        if (timer_flush)
            last_flush = now;
        if (now - last_timers >= 5 || timer_flush) {
            last_timers = now;
            s_timers(&pp, 0, timer_flush);
        }
        if (now - last_cron >= 100 || last_cron == 0) {
            last_cron = now;
            sl_worker_beat(ctx);
            if (!sl_worker_drain)
                s_rebalance(&pp, 0);
            if (pp.fwd)
                s_forward(&pp);
            if (getppid() == 1)
                sl_worker_stop = 1;
        }
        if (sl_worker_drain) {
            /* Ingest workers have stopped before we are told to drain: keep
             * receiving until every frame they sent has arrived somewhere
             * (shared counters), nothing came for a moment, or grace ends. */
            if (!drain_started) {
                drain_started = now;
                sl_worker_set_state(ctx, SL_WS_DRAINING);
                sl_worker_title("sluice: pipeline #%d [draining]", ctx->index);
            }
            uint64_t sent = sl_shm_sum(ctx->shm, SL_C_frames_sent, SL_ROLE_INGEST);
            uint64_t recvd = sl_shm_sum(ctx->shm, SL_C_frames_received, SL_ROLE_PIPELINE);
            /* A frame can be missing for good if a pipeline worker was
             * killed with it queued: then stop after a quiet half second
             * (ingest workers have exited, so everything they sent is
             * already in our sockets or in the kernel). */
            uint64_t quiet = now - (last_frame > drain_started ? last_frame : drain_started);
            if ((recvd >= sent && quiet >= 50) || quiet >= 500 ||
                now - drain_started >= (uint64_t) pp.conf->shutdown_grace * 1000) {
                if (recvd < sent)
                    sl_warn("drain: %llu frames sent by ingest workers were not received by "
                            "any pipeline worker (lost with a killed worker?)",
                            (unsigned long long) (sent - recvd));
                break;
            }
        }
        int ni = 0;
        for (unsigned i = 0; i < total; i++) {
            if (pp.holds[i].held) {
                items[ni].socket = pp.holds[i].sock;
                items[ni].events = ZMQ_POLLIN;
                item_part[ni] = i;
                ni++;
            }
        }
        int n = zmq_poll(items, ni, 20);
        if (n <= 0)
            continue;
        for (int k = 0; k < ni; k++) {
            if (!(items[k].revents & ZMQ_POLLIN))
                continue;
            /* Bounded burst per socket so one partition cannot starve the others. */
            for (int b = 0; b < 64; b++) {
                if (zmq_msg_recv(&pp.msg, items[k].socket, ZMQ_DONTWAIT) < 0)
                    break;
                s_handle_frame(&pp, zmq_msg_data(&pp.msg), zmq_msg_size(&pp.msg));
                last_frame = sl_now_ms();
            }
        }
    }
    free(items);
    free(item_part);
    /* Flush every chain, publish, release the leases. */
    s_rebalance(&pp, 1);
    if (pp.coord) {
        /* Leave first, so the others take the partitions, then pass on
         * what still arrives until the senders have switched. */
        sl_coord_leave(pp.coord);
        while (!sl_worker_stop && s_forward(&pp)) {
            sl_worker_beat(ctx);
            struct timespec ts = { 0, 5 * 1000000 };
            nanosleep(&ts, NULL);
        }
        while (pp.fwd) {
            s_fwd_t *f = pp.fwd;
            pp.fwd = f->next;
            s_fwd_free(f, 0);
        }
        sl_coord_destroy(&pp.coord);
    }
    for (unsigned s = 0; s < pp.n_sinks; s++) {
        for (size_t i = 0; pp.pubs[s] && i < sl_conf_sink(pp.conf, s)->n_publishers; i++)
            sl_publisher_destroy(&pp.pubs[s][i]);
        free(pp.pubs[s]);
    }
    free(pp.pubs);
    zmq_msg_close(&pp.msg);
    sl_sample_vec_free(&pp.in);
    free(pp.event_json);
    sl_sample_vec_free(&pp.out);
    free(pp.holds);
    free(pp.keys);
    free(pp.owners);
    zmq_ctx_term(pp.zctx);
    sl_info("pipeline worker #%d stopped", ctx->index);
    return rc;
}
