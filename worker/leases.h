/* leases — who holds which partition: one interface, two backends, chosen
 * once at start-up from conf->coord_backend (DESIGN.md section 3).
 *
 *   "local"         the lease table in the shared-memory region
 *                   (common/lease.h); a pipeline worker is a live member
 *                   while its shm slot says so, or said so less than
 *                   SL_LEASES_TAKEOVER_MS ago.
 *   "memcached://"  group membership and leases in memcached
 *                   (common/coord.h); the lease is also mirrored into the
 *                   local table so that sluice-monitor shows it.
 *
 * Two roles:
 *   member (pipeline worker "pipeline-<index>"): sl_leases_tick once per
 *     sl_leases_period_ms (renews, reads the live members, recomputes the
 *     ring), then takes what sl_leases_mine says and it does not hold and
 *     releases what it holds but should not. A partition may be used only
 *     while sl_leases_valid says so (memcached: until the lease's local
 *     deadline, whatever the store says later).
 *   reader (ingest worker): sl_leases_refresh every ~10 ms (cheap: the
 *     local table's version, or memcached every heartbeat/4), and when it
 *     returns 1 reads sl_leases_route for every (sink, p).
 *
 * The owner epoch. A route carries the endpoint to connect to and `epoch`:
 * 0 while nobody holds the partition, otherwise a number that names one
 * holding (one holder, one take). It changes whenever the holder changes
 * or re-takes the lease, including a pipeline worker respawned under the
 * same index; a nonzero value never names two holdings of one partition
 * (it may read 0 for a moment and come back to the same value when a
 * reader's view of an expiry was early: same holding, nothing to do).
 * A frame sent under epoch e and not yet confirmed will never be confirmed
 * once the route shows a nonzero epoch other than e: resend it then. The
 * holder of epoch e confirms only frames it received while it held e.
 * local: epoch = the lease's sl_lease_info_t.generation at the take;
 * memcached: a hash of (owner, endpoint, take stamp).
 *
 * Not thread-safe; one handle per process, created after fork (the
 * memcached backend owns a connection). Pipeline and ingest workers. */
#ifndef SL_LEASES_H
#define SL_LEASES_H

#include <stddef.h>
#include <stdint.h>
#include "common/lease.h"
#include "worker/worker.h"

#define SL_LEASES_TAKEOVER_MS 3000   /* local: a dead member's partitions move after this */

typedef struct sl_leases sl_leases_t;

typedef enum { SL_LEASES_MEMBER, SL_LEASES_READER } sl_leases_role_t;

typedef struct {
    char     endpoint[SL_LEASE_ENDPOINT_MAX];   /* "" = none known yet: do not connect */
    uint64_t epoch;                             /* 0 = no live holder */
} sl_leases_route_t;

/* Member: joins (memcached; a failed join is logged and retried by tick).
 * NULL with a reason in err (bad backend URL, secret): a configuration
 * error, exit 2. */
sl_leases_t *sl_leases_new(sl_worker_ctx_t *ctx, sl_leases_role_t role, char *err,
                           size_t errlen);
/* Member: leaves the group (memcached; leases still held are released
 * first, but release them yourself after flushing). Then frees. */
void sl_leases_destroy(sl_leases_t **l_p);

/* --- member (pipeline worker) ------------------------------------------ */

/* How often to call sl_leases_tick: 100 ms (local), the coordination
 * heartbeat (memcached). */
unsigned sl_leases_period_ms(const sl_leases_t *l);
/* Renews (heartbeat) and recomputes the assignment over the live members.
 * 0; or -1 if the backend could not be reached or gave no member list:
 * then sl_leases_mine keeps the last assignment and the caller should only
 * drop what sl_leases_valid no longer allows, not take or release. */
int sl_leases_tick(sl_leases_t *l);
/* 1 if the ring gives (sink, p) to this member (as of the last tick). */
int sl_leases_mine(const sl_leases_t *l, unsigned sink, unsigned p);

/* Binds the caller's partition socket to endpoint (which may end in ":*")
 * and writes the endpoint actually bound into bound. 0, or -1 with errno. */
typedef int (*sl_leases_bind_fn)(void *arg, const char *endpoint, char *bound, size_t len);
/* Takes (sink, p) and publishes the endpoint bind() bound: local = the
 * partition's ipc endpoint, bound after the lease is won; memcached = a tcp
 * port on coordination.advertise (plus the ipc endpoint when same-host ipc
 * is on), bound before. 0 taken; 1 held by someone else (retry next tick);
 * -1 bind failed (logged, lease not held). On anything but 0 the caller
 * closes its socket. */
int sl_leases_take(sl_leases_t *l, unsigned sink, unsigned p, sl_leases_bind_fn bind,
                   void *arg);
/* Releases (sink, p) (close its socket first). Memcached errors are logged:
 * the lease then expires after lease_ttl. */
void sl_leases_release(sl_leases_t *l, unsigned sink, unsigned p);
/* 1 while this member holds (sink, p) and may still use it. */
int sl_leases_valid(const sl_leases_t *l, unsigned sink, unsigned p);
/* 1 if other agents share the partitions (memcached): frames may come
 * from another configuration generation, and a partition's next owner may
 * be on another host (transformer state is then flushed, not handed over
 * through run_dir). */
int sl_leases_shared(const sl_leases_t *l);
/* "pipeline-<index>" (local) or "<host>:<run_dir hash>/pipeline-<index>". */
const char *sl_leases_member_id(const sl_leases_t *l);

/* --- reader (ingest worker) -------------------------------------------- */

/* Re-reads the routes if due. 1 if any route changed since the previous
 * call that returned 1 (the first call returns 1), else 0. A memcached
 * error keeps every route as it was (logged at a rate limit). */
int sl_leases_refresh(sl_leases_t *l);
/* The route of (sink, p) as of the last refresh. local: the holder's
 * endpoint, or the partition's well-known ipc endpoint
 * (sl_worker_partition_endpoint) while nobody holds it, so frames queue in
 * ZeroMQ until an owner binds it. memcached: the holder's endpoint ("ipc"
 * half when the holder runs on this host, else "tcp"), or the last one
 * known while there is no live holder. */
void sl_leases_route(const sl_leases_t *l, unsigned sink, unsigned p, sl_leases_route_t *out);

#endif
