/* leases — the lease interface over its two backends (contract in leases.h).
 *
 * What both backends share lives here: the ring keys of every (sink, p),
 * the assignment computed from a member list, the routes readers see. A
 * backend is a small table of functions; the one chosen at start-up is the
 * only place that knows about shared memory or memcached. */
#include "worker/leases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <zmq.h>

#include "common/coord.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/ring.h"

#define S_LOCAL_PERIOD_MS 100
#define S_MAX_MEMBERS 256

typedef struct {
    int (*tick)(sl_leases_t *l);
    int (*take)(sl_leases_t *l, unsigned sink, unsigned p, sl_leases_bind_fn bind, void *arg);
    void (*release)(sl_leases_t *l, unsigned sink, unsigned p);
    int (*valid)(const sl_leases_t *l, unsigned sink, unsigned p);
    int (*refresh)(sl_leases_t *l);
} s_backend_t;

struct sl_leases {
    const s_backend_t *be;
    sl_worker_ctx_t *ctx;
    const sl_conf_t *conf;
    sl_leases_role_t role;
    unsigned n_sinks, partitions, total;
    char member_id[SL_COORD_ID_MAX];
    /* member */
    uint64_t *keys;                     /* ring key of every (sink, p) */
    unsigned char *mine, *held;         /* [sink * partitions + p] */
    uint64_t member_mask_seen;          /* local: the members mine was computed for */
    uint64_t last_seen_alive[SL_MAX_WORKERS];
    char member_sig[4096];              /* memcached: the same, as a member list */
    /* reader */
    sl_leases_route_t *routes;
    int refreshed;
    uint64_t version;                   /* local: the table version routes show */
    uint64_t polled;                    /* memcached: when the owners were read */
    sl_coord_lease_t *coord_leases;
    char host_id[32];
    /* memcached */
    sl_coord_t *coord;
    sl_ratelimit_t rl;
};

/* Sets mine[] from the members' names: a member's share is what the ring
 * gives it. */
static void
s_assign(sl_leases_t *l, const char *const *names, size_t n)
{
    sl_ring_t *ring = sl_ring_new(0);
    for (size_t k = 0; k < n; k++)
        sl_ring_add(ring, names[k]);
    int me = sl_ring_find(ring, l->member_id);
    int *owners = sl_xcalloc(l->total + 1, sizeof *owners);
    sl_ring_assign(ring, l->keys, l->total, owners);
    for (unsigned i = 0; i < l->total; i++)
        l->mine[i] = me >= 0 && owners[i] == me;
    free(owners);
    sl_ring_destroy(&ring);
}

static int
s_route_set(sl_leases_route_t *r, const char *endpoint, uint64_t epoch)
{
    if (r->epoch == epoch && strcmp(r->endpoint, endpoint) == 0)
        return 0;
    if (endpoint != r->endpoint)
        snprintf(r->endpoint, sizeof r->endpoint, "%s", endpoint);
    r->epoch = epoch;
    return 1;
}

/* --- local: the shared-memory table ------------------------------------ */

/* Pipeline workers that count as ring members right now (bit = index): alive,
 * or alive less than SL_LEASES_TAKEOVER_MS ago, so that a quickly respawned
 * worker gets its own partitions back without anything moving. */
static uint64_t
s_local_members(sl_leases_t *l)
{
    uint64_t mask = 0, now = sl_now_ms();
    const sl_shm_t *shm = l->ctx->shm;
    int n_ingest = l->conf->n_ingest;
    for (int j = 0; j < l->conf->n_pipeline && j < 64; j++) {
        const sl_slot_t *s = &shm->slots[n_ingest + j];
        int st = atomic_load(&s->state);
        if (atomic_load(&s->pid) > 0 && (st == SL_WS_RUNNING || st == SL_WS_STARTING))
            l->last_seen_alive[j] = now;
        if (j == l->ctx->index ||
            (l->last_seen_alive[j] && now - l->last_seen_alive[j] < SL_LEASES_TAKEOVER_MS))
            mask |= 1ULL << j;
    }
    return mask;
}

static int
s_local_tick(sl_leases_t *l)
{
    uint64_t mask = s_local_members(l);
    if (mask == l->member_mask_seen)
        return 0;
    char names[64][32];
    const char *np[64];
    size_t n = 0;
    for (int j = 0; j < 64; j++) {
        if (mask & (1ULL << j)) {
            snprintf(names[n], sizeof names[n], "pipeline-%d", j);
            np[n] = names[n];
            n++;
        }
    }
    s_assign(l, np, n);
    l->member_mask_seen = mask;
    return 0;
}

static int
s_local_take(sl_leases_t *l, unsigned sink, unsigned p, sl_leases_bind_fn bind, void *arg)
{
    sl_lease_table_t *t = sl_shm_leases(l->ctx->shm);
    char ep[SL_LEASE_ENDPOINT_MAX], bound[SL_LEASE_ENDPOINT_MAX];
    sl_worker_partition_endpoint(l->conf, sink, p, ep, sizeof ep);
    /* The lease first: binding an ipc path takes it from whoever bound it. */
    if (sl_lease_take(t, sink, p, l->ctx->slot_index, ep) < 0)
        return 1;   /* still held by its previous owner */
    if (bind(arg, ep, bound, sizeof bound) < 0) {
        sl_log_limited(&l->rl, SL_LOG_ERROR, "cannot bind %s: %s (is run_dir writable?)", ep,
                       zmq_strerror(errno));
        sl_lease_release(t, sink, p, l->ctx->slot_index);
        return -1;
    }
    return 0;
}

static void
s_local_release(sl_leases_t *l, unsigned sink, unsigned p)
{
    sl_lease_release(sl_shm_leases(l->ctx->shm), sink, p, l->ctx->slot_index);
}

static int
s_local_valid(const sl_leases_t *l, unsigned sink, unsigned p)
{
    return l->held[(size_t) sink * l->partitions + p];
}

static int
s_local_refresh(sl_leases_t *l)
{
    const sl_lease_table_t *t = sl_shm_leases(l->ctx->shm);
    uint64_t v = sl_lease_version(t);
    if (l->refreshed && v == l->version)
        return 0;
    l->version = v;
    int changed = !l->refreshed;
    l->refreshed = 1;
    for (unsigned s = 0; s < l->n_sinks; s++) {
        for (unsigned p = 0; p < l->partitions; p++) {
            sl_lease_info_t li;
            if (sl_lease_get(t, s, p, &li) == 0 && li.owner >= 0 && li.endpoint[0]) {
                /* Every take and release bumps the generation: it names the holding. */
                changed |= s_route_set(&l->routes[(size_t) s * l->partitions + p], li.endpoint,
                                       li.generation ? li.generation : 1);
            } else {
                char ep[SL_LEASE_ENDPOINT_MAX];
                sl_worker_partition_endpoint(l->conf, s, p, ep, sizeof ep);
                changed |= s_route_set(&l->routes[(size_t) s * l->partitions + p], ep, 0);
            }
        }
    }
    return changed;
}

static const s_backend_t s_local = {
    .tick = s_local_tick, .take = s_local_take, .release = s_local_release,
    .valid = s_local_valid, .refresh = s_local_refresh,
};

/* --- memcached ------------------------------------------------------------ */

/* Heartbeat, then the assignment over the live members of the whole group
 * (every host). On a memcached error the last assignment stays in force. */
static int
s_mc_tick(sl_leases_t *l)
{
    int hb = sl_coord_heartbeat(l->coord);
    if (hb < 0) {
        sl_log_limited(&l->rl, SL_LOG_WARN, "memcached heartbeat failed; keeping the "
                       "partitions whose lease has not run out (coordination.backend %s "
                       "reachable?)", l->conf->coord_backend);
        hb = sl_coord_join(l->coord, l->member_id, "-");
    }
    if (hb < 0)
        return -1;
    sl_coord_member_t *members = sl_xcalloc(S_MAX_MEMBERS, sizeof *members);
    ssize_t n = sl_coord_members(l->coord, members, S_MAX_MEMBERS);
    if (n > S_MAX_MEMBERS)
        n = S_MAX_MEMBERS;
    if (n > 0) {
        char sig[sizeof l->member_sig];
        size_t off = 0;
        sig[0] = '\0';
        for (ssize_t k = 0; k < n && off < sizeof sig - 70; k++)
            off += (size_t) snprintf(sig + off, sizeof sig - off, "%s;", members[k].id);
        if (strcmp(sig, l->member_sig) != 0) {
            const char *np[S_MAX_MEMBERS];
            for (ssize_t k = 0; k < n; k++)
                np[k] = members[k].id;
            s_assign(l, np, (size_t) n);
            snprintf(l->member_sig, sizeof l->member_sig, "%s", sig);
            sl_info("group membership: %zd pipeline workers", n);
        }
    }
    free(members);
    return n > 0 ? 0 : -1;
}

static int
s_mc_take(sl_leases_t *l, unsigned sink, unsigned p, sl_leases_bind_fn bind, void *arg)
{
    /* A tcp port other hosts can reach first: the lease names it. */
    char want[256], ep[SL_LEASE_ENDPOINT_MAX];
    snprintf(want, sizeof want, "tcp://%s:*", l->conf->coord_advertise);
    if (bind(arg, want, ep, sizeof ep) < 0) {
        sl_log_limited(&l->rl, SL_LOG_ERROR, "cannot bind %s: %s (check coordination.advertise)",
                       want, zmq_strerror(errno));
        return -1;
    }
    /* Agents on this host connect over ipc instead: the lease names both,
     * "tcp://...|ipc://...", when it fits. */
    /* The ipc path names this worker slot too: a previous holder whose
     * lease ran out (memcached lost it) may still have its socket open, and
     * ZeroMQ unlinks an ipc path when it closes: on a shared path it would
     * take the new holder's socket file with it, and the senders would
     * connect to nothing until the next change of holder. */
    char ipc[SL_LEASE_ENDPOINT_MAX + 16], bound[SL_LEASE_ENDPOINT_MAX];
    sl_worker_partition_endpoint(l->conf, sink, p, ipc, SL_LEASE_ENDPOINT_MAX);
    size_t il = strlen(ipc);
    snprintf(ipc + il, sizeof ipc - il, ".w%d", l->ctx->slot_index);
    struct sockaddr_un sun;
    if (l->conf->coord_same_host_ipc && strlen(ep) + 1 + strlen(ipc) < SL_COORD_ENDPOINT_MAX &&
        strlen(ipc) - strlen("ipc://") < sizeof sun.sun_path &&
        bind(arg, ipc, bound, sizeof bound) == 0) {
        size_t len = strlen(ep);
        snprintf(ep + len, sizeof ep - len, "|%s", ipc);
    }
    int rc = sl_coord_lease_take(l->coord, sink, p, ep);
    if (rc != 0 || sl_lease_take(sl_shm_leases(l->ctx->shm), sink, p, l->ctx->slot_index, ep) < 0) {
        if (rc == 0)
            sl_coord_lease_release(l->coord, sink, p);
        return 1;   /* held elsewhere until it expires or is released */
    }
    return 0;
}

static void
s_mc_release(sl_leases_t *l, unsigned sink, unsigned p)
{
    sl_lease_release(sl_shm_leases(l->ctx->shm), sink, p, l->ctx->slot_index);
    if (sl_coord_lease_release(l->coord, sink, p) < 0)
        sl_log_limited(&l->rl, SL_LOG_WARN, "memcached: cannot release lease %s/%u; it "
                       "expires after lease_ttl", sl_conf_sink_label(l->conf, sink), p);
}

static int
s_mc_valid(const sl_leases_t *l, unsigned sink, unsigned p)
{
    return l->held[(size_t) sink * l->partitions + p] && sl_coord_lease_held(l->coord, sink, p);
}

/* Owners (and their endpoints) of every partition, read a few times per
 * heartbeat. A partition without a live owner keeps its last endpoint:
 * frames queue there, then back-pressure. */
static int
s_mc_refresh(sl_leases_t *l)
{
    uint64_t now = sl_now_ms();
    if (l->refreshed && now - l->polled < l->conf->coord_heartbeat_ms / 4 + 1)
        return 0;
    l->polled = now;
    int changed = !l->refreshed;
    l->refreshed = 1;
    if (sl_coord_leases_get_all(l->coord, l->n_sinks, l->partitions, l->coord_leases) < 0) {
        sl_log_limited(&l->rl, SL_LOG_WARN, "memcached: cannot read the partition owners; "
                       "keeping the current connections");
        return changed;
    }
    for (size_t i = 0; i < l->total; i++) {
        const sl_coord_lease_t *c = &l->coord_leases[i];
        sl_leases_route_t *r = &l->routes[i];
        if (!c->owner[0]) {
            changed |= s_route_set(r, r->endpoint, 0);
            continue;
        }
        /* "tcp://...|ipc://...": ipc when the owner runs on this host. */
        char want[SL_COORD_ENDPOINT_MAX];
        snprintf(want, sizeof want, "%s", c->endpoint);
        char *bar = strchr(want, '|');
        if (bar) {
            size_t hl = strlen(l->host_id);
            if (strncmp(c->owner, l->host_id, hl) == 0 && c->owner[hl] == ':')
                memmove(want, bar + 1, strlen(bar + 1) + 1);
            else
                *bar = '\0';
        }
        /* One holding = one owner's one take: its take stamp (kept by
         * renewals) with who took it and what it bound. */
        uint64_t h = sl_hash64_update(SL_HASH64_INIT, c->owner, strlen(c->owner) + 1);
        h = sl_hash64_update(h, c->endpoint, strlen(c->endpoint) + 1);
        h = sl_hash64_final(sl_hash64_update(h, &c->taken_ms, sizeof c->taken_ms));
        changed |= s_route_set(r, want, h ? h : 1);
    }
    return changed;
}

static const s_backend_t s_memcached = {
    .tick = s_mc_tick, .take = s_mc_take, .release = s_mc_release,
    .valid = s_mc_valid, .refresh = s_mc_refresh,
};

/* --- the interface ----------------------------------------------------- */

sl_leases_t *
sl_leases_new(sl_worker_ctx_t *ctx, sl_leases_role_t role, char *err, size_t errlen)
{
    const sl_conf_t *conf = ctx->conf;
    int local = strcmp(conf->coord_backend, "local") == 0;
    if (!local && strncmp(conf->coord_backend, "memcached://", strlen("memcached://")) != 0) {
        snprintf(err, errlen, "unknown coordination backend %s", conf->coord_backend);
        return NULL;
    }
    sl_leases_t *l = sl_xcalloc(1, sizeof *l);
    l->be = local ? &s_local : &s_memcached;
    l->ctx = ctx;
    l->conf = conf;
    l->role = role;
    l->n_sinks = (unsigned) sl_conf_n_sinks(conf);
    l->partitions = conf->partitions;
    l->total = l->n_sinks * l->partitions;
    l->mine = sl_xcalloc(l->total + 1, 1);
    l->held = sl_xcalloc(l->total + 1, 1);
    l->routes = sl_xcalloc(l->total + 1, sizeof *l->routes);
    l->keys = sl_xcalloc(l->total + 1, sizeof *l->keys);
    for (unsigned i = 0; i < l->total; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s/%u", sl_conf_sink_label(conf, i / l->partitions),
                 i % l->partitions);
        l->keys[i] = sl_hash64_str(key);
    }
    sl_worker_host_id(l->host_id, sizeof l->host_id);
    if (local) {
        snprintf(l->member_id, sizeof l->member_id, "pipeline-%d", ctx->index);
        /* Every configured pipeline worker counts as a member from the start
         * (they are forked together): each takes only its own share at once,
         * instead of one worker taking everything and handing partitions
         * over as the others come up. One that never comes up is taken over
         * after SL_LEASES_TAKEOVER_MS like a dead one. */
        for (int j = 0; j < conf->n_pipeline && j < SL_MAX_WORKERS; j++)
            l->last_seen_alive[j] = sl_now_ms();
        return l;
    }
    char shm_name[64];
    sl_shm_name(conf->run_dir, shm_name, sizeof shm_name);
    /* Stable across respawns and unique per agent: host, run_dir hash, index. */
    snprintf(l->member_id, sizeof l->member_id, "%s:%.8s/pipeline-%d", l->host_id,
             shm_name + strlen("/sluice."), ctx->index);
    l->coord = sl_coord_new(conf->coord_backend + strlen("memcached://"), conf->coord_group,
                            conf->coord_secret, conf->coord_secret_len, conf->coord_lease_ttl_ms,
                            err, errlen);
    if (!l->coord) {
        l->role = SL_LEASES_READER;   /* nothing to leave */
        sl_leases_destroy(&l);
        return NULL;
    }
    l->coord_leases = sl_xcalloc(l->total + 1, sizeof *l->coord_leases);
    if (role == SL_LEASES_MEMBER && sl_coord_join(l->coord, l->member_id, "-") < 0)
        sl_warn("coordination: cannot join group %s yet (memcached down?); retrying",
                conf->coord_group);
    return l;
}

void
sl_leases_destroy(sl_leases_t **l_p)
{
    if (!l_p || !*l_p)
        return;
    sl_leases_t *l = *l_p;
    for (unsigned i = 0; i < l->total && l->role == SL_LEASES_MEMBER; i++)
        if (l->held[i])
            sl_leases_release(l, i / l->partitions, i % l->partitions);
    if (l->coord && l->role == SL_LEASES_MEMBER)
        sl_coord_leave(l->coord);
    sl_coord_destroy(&l->coord);
    free(l->coord_leases);
    free(l->mine);
    free(l->held);
    free(l->routes);
    free(l->keys);
    free(l);
    *l_p = NULL;
}

unsigned
sl_leases_period_ms(const sl_leases_t *l)
{
    return l->coord ? l->conf->coord_heartbeat_ms : S_LOCAL_PERIOD_MS;
}

int
sl_leases_tick(sl_leases_t *l)
{
    return l->be->tick(l);
}

int
sl_leases_mine(const sl_leases_t *l, unsigned sink, unsigned p)
{
    return sink < l->n_sinks && p < l->partitions && l->mine[(size_t) sink * l->partitions + p];
}

int
sl_leases_take(sl_leases_t *l, unsigned sink, unsigned p, sl_leases_bind_fn bind, void *arg)
{
    if (sink >= l->n_sinks || p >= l->partitions)
        return -1;
    int rc = l->be->take(l, sink, p, bind, arg);
    if (rc == 0)
        l->held[(size_t) sink * l->partitions + p] = 1;
    return rc;
}

void
sl_leases_release(sl_leases_t *l, unsigned sink, unsigned p)
{
    if (sink >= l->n_sinks || p >= l->partitions || !l->held[(size_t) sink * l->partitions + p])
        return;
    l->held[(size_t) sink * l->partitions + p] = 0;
    l->be->release(l, sink, p);
}

int
sl_leases_valid(const sl_leases_t *l, unsigned sink, unsigned p)
{
    return sink < l->n_sinks && p < l->partitions && l->be->valid(l, sink, p);
}

int
sl_leases_shared(const sl_leases_t *l)
{
    return l->be == &s_memcached;
}

const char *
sl_leases_member_id(const sl_leases_t *l)
{
    return l->member_id;
}

int
sl_leases_refresh(sl_leases_t *l)
{
    return l->be->refresh(l);
}

void
sl_leases_route(const sl_leases_t *l, unsigned sink, unsigned p, sl_leases_route_t *out)
{
    if (sink >= l->n_sinks || p >= l->partitions) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = l->routes[(size_t) sink * l->partitions + p];
}
