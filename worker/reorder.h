/* reorder — the per-partition reorder window of a sink (`reorder_window`).
 *
 * Samples of one resource ingested by different workers can reach the
 * partition's owner out of order. With a window of W ms, each notification's
 * samples (a group: the unit between two flush points) are held at least W ms
 * after they arrive and released in event-time order: by the timestamp of the
 * group's first sample, then its message_id (so that the order does not
 * depend on which worker ingested what). A group is only released once every
 * group ahead of it in that order is, so a late group can still overtake
 * later-stamped ones that arrived within W ms before it. The trade-off:
 * W ms more latency, and memory for W ms of the partition's samples.
 *
 * Groups are copied in (the caller's sample views may die); the samples a
 * release hands to its callback stay valid until the next call on the
 * buffer (add, release or destroy), so the caller can publish what its
 * chain passed on first. Pipeline workers only. */
#ifndef SL_REORDER_H
#define SL_REORDER_H

#include <stddef.h>
#include <stdint.h>
#include "common/sample.h"

typedef struct sl_reorder sl_reorder_t;

/* tag: what the caller passed to sl_reorder_add with this group (e.g. the
 * completion record of the frame it came in): the group's samples are done
 * with once cb returns, so cb may complete what the tag stands for. */
typedef void (*sl_reorder_cb)(void *arg, const sl_sample_t *samples, size_t n, void *tag);

sl_reorder_t *sl_reorder_new(unsigned window_ms);
/* Holds a copy of one notification's samples, arrived at now_ms, with the
 * caller's tag (not touched; may be NULL). n = 0 holds nothing. */
void sl_reorder_add(sl_reorder_t *r, const sl_sample_t *s, size_t n, uint64_t now_ms, void *tag);
/* Calls cb for each group due at now_ms (every group if force), in order;
 * returns how many groups were released. */
size_t sl_reorder_release(sl_reorder_t *r, uint64_t now_ms, int force, sl_reorder_cb cb, void *arg);
size_t sl_reorder_pending(const sl_reorder_t *r);
/* Frees what is still held without calling anyone back: release with force
 * first if the tags stand for something that must complete. */
void sl_reorder_destroy(sl_reorder_t **r_p);

#endif
