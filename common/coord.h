/* coord — multi-host group membership and partition leases kept in memcached
 * (DESIGN.md section 3, the `memcached` backend of the lease interface).
 *
 * Members (pipeline workers, on any host) join a group with a TTL'd record
 * and refresh it by heartbeat; the group's member list is edited with
 * gets/cas, so concurrent joins never lose a member. A lease on (sink, p) is
 * taken with `add`, renewed and released with gets/cas by its holder only,
 * and taken over (gets/cas) once its record has expired. Every record
 * (member, lease, epoch) carries owner id, endpoint, stamp and expiry in ms
 * and an HMAC-SHA256, keyed by the group's shared secret, over the record
 * and its key: records that do not verify are ignored and counted, so an
 * agent without the secret can neither join nor hold nor steal a partition.
 *
 * Clocks and TTL. Expiries are wall-clock ms (CLOCK_REALTIME) because other
 * hosts read them: the hosts' clocks must agree within SL_COORD_SKEW_MS
 * (NTP gives far better). A record is live while now <= expiry + skew; a
 * holder counts its lease as its own only until (monotonic time when its
 * last successful take/renewal started) + lease_ttl, which ends before any
 * other host may consider the record expired. memcached's own expiry is
 * ceil(ttl / 1 s) + 1 s, so the store never drops a record that is still
 * live. Heartbeat well inside the TTL (ttl/3 is usual).
 * memcached data loss (restart, eviction): the group keeps an "epoch"
 * record; whoever finds it missing recreates it, and for ttl + skew after
 * the epoch's stamp nobody takes a lease it did not already hold, so an
 * old holder's local deadline ends before anyone else can take over.
 * Holders re-add their own leases (within their deadline) at heartbeat.
 * Every host must list the same memcached servers (keys map to servers by
 * consistent hashing; failed servers are not ejected).
 * The HMAC stops impersonation, not vandalism: anyone who can write to
 * memcached can delete or overwrite records, which delays takes (a forged
 * epoch restarts the pause) or makes holders drop leases, but never makes
 * a forger a holder nor two members holders; keep memcached on a trusted
 * network. Heartbeat cost: 3 round trips + one noreply cas per held lease
 * (tools/sluice-bench-coord measures it).
 *
 * memcached down: calls return -1 within ~200 ms (connect/poll timeouts)
 * and count an error; the caller keeps its last known assignment.
 * A handle owns its memcached connection and all memory; one handle per
 * process and thread (not fork-safe: create it after fork). Any process;
 * members are pipeline workers, readers (get, get_all) ingest workers. */
#ifndef SL_COORD_H
#define SL_COORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SL_COORD_ID_MAX       64    /* member id / group: 1..63 of [A-Za-z0-9._:@/-], alnum first */
#define SL_COORD_ENDPOINT_MAX 160   /* endpoint: 1..159 printable ASCII, no space */
#define SL_COORD_SKEW_MS      500   /* assumed bound on clock differences between hosts */
#define SL_COORD_SECRET_MIN   16    /* bytes */

typedef struct sl_coord sl_coord_t;

typedef struct {
    char    id[SL_COORD_ID_MAX];
    char    endpoint[SL_COORD_ENDPOINT_MAX];
    int64_t stamp_ms;      /* wall clock of the last heartbeat */
    int64_t expiry_ms;
} sl_coord_member_t;

typedef struct {
    char    owner[SL_COORD_ID_MAX];          /* "" = no live, verified holder */
    char    endpoint[SL_COORD_ENDPOINT_MAX];
    int64_t expiry_ms;
    int64_t taken_ms;      /* wall clock of the holder's take (kept by renewals; a
                            * re-take, even by the same member, gives a new one) */
} sl_coord_lease_t;

/* Counters (name, help); one X-macro list expands into the struct. */
#define SL_COORD_COUNTERS(X) \
    X(bad_records,  "records ignored because their HMAC or format did not verify") \
    X(mc_errors,    "memcached operations that failed (server down, timeout, protocol)") \
    X(cas_retries,  "member-list edits retried after a concurrent change") \
    X(leases_taken, "leases taken (add, or cas over an expired/free/forged record)") \
    X(leases_renewed, "lease renewals that succeeded") \
    X(leases_lost,  "held leases found gone, taken over or past their deadline")

typedef struct {
#define SL_COORD_X_FIELD(name, help) uint64_t name;
    SL_COORD_COUNTERS(SL_COORD_X_FIELD)
#undef SL_COORD_X_FIELD
} sl_coord_stats_t;

/* servers "HOST:PORT[,HOST:PORT...]"; group names the key namespace;
 * secret (>= SL_COORD_SECRET_MIN bytes, copied) keys the HMAC; lease_ttl_ms
 * (>= 100) is both the lease and the member-record TTL. Does not connect
 * yet. NULL with a reason in err on bad arguments. */
sl_coord_t *sl_coord_new(const char *servers, const char *group, const void *secret,
                         size_t secret_len, unsigned lease_ttl_ms, char *err, size_t errlen);
/* Frees without releasing anything (leases then expire): call leave first
 * for a graceful exit. Sets *c to NULL. */
void sl_coord_destroy(sl_coord_t **c);

/* Publishes this member's record and adds it to the member list. 0, or -1
 * (bad id/endpoint, memcached error, or already joined as another id). */
int sl_coord_join(sl_coord_t *c, const char *member_id, const char *endpoint);
/* Renews every held lease (cas, only if the record is still ours; re-add if
 * memcached lost it within our deadline; dropped and counted if lost),
 * refreshes the member record and re-adds us to the list if missing.
 * 0, or -1 if not joined or any memcached operation failed. */
int sl_coord_heartbeat(sl_coord_t *c);
/* Releases held leases, removes us from the list, deletes our record. */
int sl_coord_leave(sl_coord_t *c);
/* Live members whose records verify, sorted by id; the count (may exceed
 * max: only max are written), or -1. Prunes ids without a valid record
 * from the list. */
ssize_t sl_coord_members(sl_coord_t *c, sl_coord_member_t *out, size_t max);

/* 0 taken (or renewed, if already ours), 1 held by another live member
 * (or taking is paused after memcached lost its data, see above), -1 error
 * or not joined. endpoint as in join. */
int sl_coord_lease_take(sl_coord_t *c, unsigned sink, unsigned p, const char *endpoint);
/* 0 released, 1 not held by us, -1 error. Always forgets the lease locally. */
int sl_coord_lease_release(sl_coord_t *c, unsigned sink, unsigned p);
/* 1 if we hold the lease and its local deadline has not passed, else 0. */
int sl_coord_lease_held(const sl_coord_t *c, unsigned sink, unsigned p);
/* 0 found, verified and live (out filled), 1 none, -1 error. */
int sl_coord_lease_get(sl_coord_t *c, unsigned sink, unsigned p, sl_coord_lease_t *out);
/* All n_sinks * partitions leases in one multi-get; out[sink * partitions + p]
 * has owner "" where there is no live verified holder. Returns how many have
 * a holder, or -1 (out then untouched: keep the last known assignment). */
ssize_t sl_coord_leases_get_all(sl_coord_t *c, unsigned n_sinks, unsigned partitions,
                                sl_coord_lease_t *out);

void sl_coord_stats(const sl_coord_t *c, sl_coord_stats_t *out);

#endif
