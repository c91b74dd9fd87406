/* ring — consistent assignment of partitions to members.
 *
 * Members are named by stable strings (e.g. "pipeline-0", "host-b/pipeline-3").
 * Each member is placed on a hash ring at `vnodes` points (sl_hash64 of
 * "<member>#<i>"). sl_ring_assign() gives every partition key an owner such
 * that (a) every member's load is within +-25% of the mean whenever there are
 * at least as many partitions as members (floor or ceil of the mean where
 * that band holds no whole number), and (b) adding or removing one member
 * moves only about 1/N of the partitions: of all assignments within the
 * bounds, it is the one with the least total ring distance from keys to
 * their owners' points (ring.c says why, test_ring.c what it measures).
 * The result depends only on the member set and the keys, never on insertion
 * order, so every process and host computes the same assignment.
 * Owns its memory; any process. */
#ifndef SL_RING_H
#define SL_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_ring sl_ring_t;

sl_ring_t *sl_ring_new(unsigned vnodes);        /* 0 = default (64) */
/* How far (percent of the mean, 0..25, default 25) a member's load may
 * stray from the mean. 0 = strict: every load is floor or ceil of the mean.
 * More slack lets joins and leaves move fewer partitions (measured in
 * tests/unit/test_ring.c). -1 if percent > 25. */
#define SL_RING_MAX_SLACK 25
int sl_ring_set_slack(sl_ring_t *ring, unsigned percent);
void sl_ring_destroy(sl_ring_t **ring_p);
/* 0, or -1 if already present. Member names are copied. */
int sl_ring_add(sl_ring_t *ring, const char *member);
int sl_ring_remove(sl_ring_t *ring, const char *member);   /* -1 if absent */
size_t sl_ring_size(const sl_ring_t *ring);
/* Member names in sorted order; index i of this list is "member i" below. */
const char *sl_ring_member(const sl_ring_t *ring, size_t i);
int sl_ring_find(const sl_ring_t *ring, const char *member);  /* index or -1 */

/* Assigns n_keys partitions (key hashes, e.g. sl_hash64 of "sink/p") to
 * members: owner_out[k] = member index. Returns 0, or -1 if the ring is
 * empty. Deterministic in (member set, keys). */
int sl_ring_assign(const sl_ring_t *ring, const uint64_t *keys, size_t n_keys,
                   int *owner_out);

#endif
