/* ring — consistent assignment of partitions to members.
 *
 * Why not plain bounded-load walking (walk the ring from each key, skip
 * members at capacity): it only bounds loads from above. Measured with 64
 * vnodes and a cap of 1.25x the mean, members ended up to 32% below the mean
 * with 1000 partitions, and with 16 partitions on 16 members one member got
 * none; raising the floor by walking keys in some order instead cascades
 * (a join then moved up to 7x P/N partitions).
 *
 * What we do instead: the ring still gives each key its preference — the
 * cost of giving key k to member m is the clockwise distance from k's point
 * to m's nearest point — and the assignment is the one of least total cost
 * among those where every load lies in [lo, hi] (the slack band around the
 * mean, widened to floor/ceil of the mean when the band holds no integer).
 * Such an optimum is a weighted Voronoi partition of the ring: there are
 * per-member offsets w_m, zero for members strictly inside the band, such
 * that each key goes to the member minimising distance - w_m. A join or a
 * leave therefore mostly moves keys to the new member (or away from the
 * departed one); only members at the edge of the band shift their offsets
 * and pass keys between themselves. Measured movement and balance are in
 * tests/unit/test_ring.c.
 *
 * Solver: successive shortest paths. Keys are inserted one at a time; each
 * insertion follows the cheapest chain "new key -> m0, one of m0's keys ->
 * m1, ..." that ends at a member with room. Between insertions the partial
 * assignment is optimal, so the member graph has no negative cycle and a
 * Bellman-Ford (queue-based) over the N members finds the chain. Measured:
 * 1024 keys take ~2 ms on 16 members, ~25 ms on 64, ~80 ms on 128; callers
 * recompute only when membership changes. Costs are 48-bit values from the
 * hash, so the optimum is unique in practice and remaining ties go to the
 * lower index: the result is a function of (member set, keys) only. */
#include "common/ring.h"

#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "common/arena.h"
#include "common/hash.h"

#define SL_RING_DEFAULT_VNODES 64
#define SL_RING_DEFAULT_SLACK 25
/* Distances are shifted right so that path sums over up to 2N+1 edges fit
 * comfortably in int64 (48-bit costs leave 15 bits of headroom). */
#define SL_RING_COST_SHIFT 16
#define SL_RING_INF INT64_MAX

typedef struct {
    char     *name;
    uint64_t *points;       /* sorted, vnodes entries */
} s_member_t;

struct sl_ring {
    unsigned    vnodes;
    unsigned    slack;      /* percent of the mean a load may deviate */
    size_t      n, cap;
    s_member_t *members;    /* sorted by name (strcmp) */
};

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

sl_ring_t *
sl_ring_new(unsigned vnodes)
{
    sl_ring_t *ring = sl_xcalloc(1, sizeof *ring);
    ring->vnodes = vnodes ? vnodes : SL_RING_DEFAULT_VNODES;
    ring->slack = SL_RING_DEFAULT_SLACK;
    return ring;
}

void
sl_ring_destroy(sl_ring_t **ring_p)
{
    if (!ring_p || !*ring_p)
        return;
    sl_ring_t *ring = *ring_p;
    for (size_t i = 0; i < ring->n; i++) {
        free(ring->members[i].name);
        free(ring->members[i].points);
    }
    free(ring->members);
    free(ring);
    *ring_p = NULL;
}

/* Index of member, or -(insertion point) - 1 if absent. */
static long
s_search(const sl_ring_t *ring, const char *member)
{
    size_t lo = 0, hi = ring->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ring->members[mid].name, member);
        if (c == 0)
            return (long) mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long) lo - 1;
}

int
sl_ring_add(sl_ring_t *ring, const char *member)
{
    if (!ring || !member)
        return -1;
    long at = s_search(ring, member);
    if (at >= 0)
        return -1;
    size_t pos = (size_t) (-at - 1);
    if (ring->n == ring->cap) {
        ring->cap = ring->cap ? ring->cap * 2 : 8;
        ring->members = sl_xrealloc(ring->members, ring->cap * sizeof *ring->members);
    }
    memmove(&ring->members[pos + 1], &ring->members[pos],
            (ring->n - pos) * sizeof *ring->members);
    s_member_t *m = &ring->members[pos];
    m->name = sl_xstrdup(member);
    m->points = sl_xmalloc(ring->vnodes * sizeof *m->points);
    size_t len = strlen(member);
    char *buf = sl_xmalloc(len + 16);
    for (unsigned i = 0; i < ring->vnodes; i++) {
        int n = snprintf(buf, len + 16, "%s#%u", member, i);
        m->points[i] = sl_hash64(buf, (size_t) n);
    }
    free(buf);
    qsort(m->points, ring->vnodes, sizeof *m->points, s_cmp_u64);
    ring->n++;
    return 0;
}

int
sl_ring_remove(sl_ring_t *ring, const char *member)
{
    if (!ring || !member)
        return -1;
    long at = s_search(ring, member);
    if (at < 0)
        return -1;
    size_t pos = (size_t) at;
    free(ring->members[pos].name);
    free(ring->members[pos].points);
    memmove(&ring->members[pos], &ring->members[pos + 1],
            (ring->n - pos - 1) * sizeof *ring->members);
    ring->n--;
    return 0;
}

size_t
sl_ring_size(const sl_ring_t *ring)
{
    return ring ? ring->n : 0;
}

const char *
sl_ring_member(const sl_ring_t *ring, size_t i)
{
    return ring && i < ring->n ? ring->members[i].name : NULL;
}

int
sl_ring_find(const sl_ring_t *ring, const char *member)
{
    if (!ring || !member)
        return -1;
    long at = s_search(ring, member);
    return at >= 0 ? (int) at : -1;
}

/* Clockwise distance from key to the member's first point at or after it
 * (wrapping), scaled down to a 48-bit cost. */
static int64_t
s_cost(const s_member_t *m, unsigned vnodes, uint64_t key)
{
    size_t lo = 0, hi = vnodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->points[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t p = lo < vnodes ? m->points[lo] : m->points[0];
    return (int64_t) ((p - key) >> SL_RING_COST_SHIFT);
}

/* Working state of one assignment. */
typedef struct {
    size_t   n_keys, n;
    size_t   lo, hi;        /* every member ends with lo..hi keys */
    int64_t *cost;          /* n_keys x n */
    int     *owner;         /* caller's owner_out */
    size_t  *load;          /* n */
    int64_t *w;             /* n x n edge weights, INF = none */
    unsigned char *dirty;   /* n: rows to recompute after an insertion */
    size_t  *queue;         /* n + 1: ring buffer of nodes to relax */
    unsigned char *queued;  /* n */
    size_t  *via;           /* n x n: key realising w[a][b] */
    int64_t *dist;          /* n */
    long    *prev;          /* n: predecessor, -1 = path start */
} s_solver_t;

#define S_COST(s, k, m) ((s)->cost[(k) * (s)->n + (m)])
#define S_W(s, a, b) ((s)->w[(a) * (s)->n + (b)])

/* Row a of the residual graph between members: moving one of a's keys to
 * b costs min over a's keys j of cost(j,b) - cost(j,a); via[a][b] is that
 * key. Rows depend only on their member's keys, so after an insertion only
 * the rows of the members on the path change. O(upto + load(a) * n). */
static void
s_row(s_solver_t *s, size_t a, size_t upto)
{
    size_t n = s->n;
    for (size_t b = 0; b < n; b++)
        S_W(s, a, b) = SL_RING_INF;
    for (size_t j = 0; j < upto; j++) {
        if ((size_t) s->owner[j] != a)
            continue;
        int64_t base = S_COST(s, j, a);
        for (size_t b = 0; b < n; b++) {
            if (b == a)
                continue;
            int64_t d = S_COST(s, j, b) - base;
            if (d < S_W(s, a, b)) {
                S_W(s, a, b) = d;
                s->via[a * n + b] = j;
            }
        }
    }
}

/* Inserts key k at least total cost. Ending a path at member m adds the
 * marginal cost of one more key there: filling a slot below `lo` comes
 * before any distance (tier 0), a slot in lo..hi-1 costs nothing extra
 * (tier 1), and a member at `hi` is not an end. Since sum(lo) <= n_keys,
 * this fills every member to lo first, then minimises distance. */
static void
s_insert(s_solver_t *s, size_t k)
{
    size_t n = s->n;
    for (size_t m = 0; m < n; m++) {
        s->dist[m] = S_COST(s, k, m);
        s->prev[m] = -1;
    }
    /* Bellman-Ford with a FIFO of improved nodes (SPFA). The partial
     * assignment is optimal, so there is no negative cycle; the pass cap
     * only guards against one appearing through a bug. */
    size_t head = 0, tail = 0, passes = 0;
    for (size_t m = 0; m < n; m++) {
        s->queue[tail++] = m;
        s->queued[m] = 1;
    }
    while (head != tail && passes++ < (n + 1) * n) {
        size_t a = s->queue[head];
        head = (head + 1) % (n + 1);
        s->queued[a] = 0;
        for (size_t b = 0; b < n; b++) {
            int64_t w = S_W(s, a, b);
            if (w == SL_RING_INF || s->dist[a] + w >= s->dist[b])
                continue;
            s->dist[b] = s->dist[a] + w;
            s->prev[b] = (long) a;
            if (!s->queued[b]) {
                s->queue[tail] = b;
                tail = (tail + 1) % (n + 1);
                s->queued[b] = 1;
            }
        }
    }
    size_t end = n;
    int end_tier = 2;
    int64_t end_cost = 0;
    for (size_t m = 0; m < n; m++) {
        int tier = s->load[m] < s->lo ? 0 : s->load[m] < s->hi ? 1 : 2;
        if (tier == 2)
            continue;
        int64_t c = s->dist[m];
        if (tier < end_tier || (tier == end_tier && c < end_cost)) {
            end = m;
            end_tier = tier;
            end_cost = c;
        }
    }
    /* An end always exists: fewer than n_keys <= n * hi keys are placed. */
    size_t v = end, steps = 0;
    s->load[end]++;
    s->dirty[end] = 1;
    while (s->prev[v] >= 0 && steps++ < n) {
        size_t a = (size_t) s->prev[v];
        s->owner[s->via[a * n + v]] = (int) v;
        s->dirty[a] = 1;
        v = a;
    }
    s->owner[k] = (int) v;
    s->dirty[v] = 1;
    for (size_t m = 0; m < n; m++) {
        if (s->dirty[m])
            s_row(s, m, k + 1);
        s->dirty[m] = 0;
    }
}

int
sl_ring_set_slack(sl_ring_t *ring, unsigned percent)
{
    if (!ring || percent > SL_RING_MAX_SLACK)
        return -1;
    ring->slack = percent;
    return 0;
}

int
sl_ring_assign(const sl_ring_t *ring, const uint64_t *keys, size_t n_keys,
               int *owner_out)
{
    if (!ring || ring->n == 0 || (n_keys && (!keys || !owner_out)))
        return -1;
    if (n_keys == 0)
        return 0;
    size_t n = ring->n;
    /* Bounds in integers: lo = ceil(mean * (1 - slack)), hi = floor(mean *
     * (1 + slack)), widened to floor/ceil(mean) when the band holds no
     * integer (17 keys on 16 members). */
    size_t floor_mean = n_keys / n, ceil_mean = (n_keys + n - 1) / n;
    size_t lo = (n_keys * (100 - ring->slack) + 100 * n - 1) / (100 * n);
    size_t hi = n_keys * (100 + ring->slack) / (100 * n);
    if (lo > floor_mean)
        lo = floor_mean;
    if (hi < ceil_mean)
        hi = ceil_mean;
    s_solver_t s = {
        .n_keys = n_keys, .n = n, .lo = lo, .hi = hi, .owner = owner_out,
    };
    s.cost = sl_xmalloc(n_keys * n * sizeof *s.cost);
    s.load = sl_xcalloc(n, sizeof *s.load);
    s.w = sl_xmalloc(n * n * sizeof *s.w);
    s.dirty = sl_xcalloc(n, 1);
    s.queue = sl_xmalloc((n + 1) * sizeof *s.queue);
    s.queued = sl_xcalloc(n, 1);
    for (size_t i = 0; i < n * n; i++)
        s.w[i] = SL_RING_INF;
    s.via = sl_xmalloc(n * n * sizeof *s.via);
    s.dist = sl_xmalloc(n * sizeof *s.dist);
    s.prev = sl_xmalloc(n * sizeof *s.prev);
    for (size_t k = 0; k < n_keys; k++)
        for (size_t m = 0; m < n; m++)
            S_COST(&s, k, m) = s_cost(&ring->members[m], ring->vnodes, keys[k]);
    for (size_t k = 0; k < n_keys; k++)
        s_insert(&s, k);
    free(s.cost);
    free(s.load);
    free(s.w);
    free(s.dirty);
    free(s.queue);
    free(s.queued);
    free(s.via);
    free(s.dist);
    free(s.prev);
    return 0;
}
