/* lease — the local partition lease table in shared memory.
 *
 * Each slot has two parts:
 *  - `lock`: the owner as a compare-and-swap target. Holding it is what
 *    holding the lease means, and it also makes its holder the only writer
 *    of the published part (a seqlock needs a single writer).
 *  - the published triple (owner, generation, endpoint) behind a sequence
 *    counter, odd while being written (Boehm, "Can seqlocks get along with
 *    programming language memory models?", 2012): every field is an atomic
 *    accessed relaxed, ordered by fences, so readers never race in the C11
 *    sense and may copy a torn value only to throw it away.
 *
 * A taker publishes after winning the lock; a releaser publishes "free"
 * before dropping the lock, so a taker may briefly fail against a lease
 * that already reads as free (it retries on its next cron). */
#include "common/lease.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#define SL_LEASE_MAGIC 0x534c4c54u      /* "SLLT" */
#define SL_LEASE_LAYOUT 1u
#define SL_LEASE_ALIGN 64
#define SL_LEASE_EP_WORDS (SL_LEASE_ENDPOINT_MAX / 8)
/* A reader gives up after this many attempts: only a writer that stopped
 * in the middle of a publish (killed) keeps a slot odd that long, and the
 * supervisor's sl_lease_release_all repairs it. */
#define SL_LEASE_READ_TRIES 100000

/* The table is shared between processes: every atomic must be lock-free,
 * or the "atomics" would be per-process locks. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(SL_LEASE_ENDPOINT_MAX % 8 == 0, "endpoint is copied in 8-byte words");

typedef struct {
    _Alignas(SL_LEASE_ALIGN)            /* one cache line or three per slot */
    _Atomic int32_t  lock;              /* owner, -1 = free */
    _Atomic uint32_t seq;               /* odd while the triple is written */
    _Atomic int32_t  owner;             /* published */
    uint32_t         pad;
    _Atomic uint64_t generation;        /* published */
    _Atomic uint64_t endpoint[SL_LEASE_EP_WORDS];  /* published, NUL-padded */
} s_slot_t;

struct sl_lease_table {
    _Atomic uint32_t magic;             /* stored last by init */
    uint32_t         layout;
    uint32_t         n_sinks;
    uint32_t         partitions;
    uint64_t         bytes;
    _Alignas(SL_LEASE_ALIGN) _Atomic uint64_t version;
    _Alignas(SL_LEASE_ALIGN) s_slot_t slots[];
};

size_t
sl_lease_table_size(unsigned n_sinks, unsigned partitions)
{
    size_t n = (size_t) n_sinks * partitions;
    if (partitions && n / partitions != n_sinks)
        return 0;
    if (n > (SIZE_MAX - sizeof(struct sl_lease_table)) / sizeof(s_slot_t))
        return 0;
    return sizeof(struct sl_lease_table) + n * sizeof(s_slot_t);
}

static s_slot_t *
s_slot(const sl_lease_table_t *t, unsigned sink, unsigned p)
{
    if (!t || sink >= t->n_sinks || p >= t->partitions)
        return NULL;
    return (s_slot_t *) &t->slots[(size_t) sink * t->partitions + p];
}

sl_lease_table_t *
sl_lease_table_init(void *mem, unsigned n_sinks, unsigned partitions)
{
    size_t bytes = sl_lease_table_size(n_sinks, partitions);
    if (!mem || !bytes || (uintptr_t) mem % SL_LEASE_ALIGN)
        return NULL;
    memset(mem, 0, bytes);
    sl_lease_table_t *t = mem;
    t->layout = SL_LEASE_LAYOUT;
    t->n_sinks = n_sinks;
    t->partitions = partitions;
    t->bytes = bytes;
    atomic_init(&t->version, 0);
    for (size_t i = 0; i < (size_t) n_sinks * partitions; i++) {
        atomic_init(&t->slots[i].lock, -1);
        atomic_init(&t->slots[i].owner, -1);
    }
    /* A process attaching concurrently sees magic only once the rest is
     * in place. */
    atomic_store_explicit(&t->magic, SL_LEASE_MAGIC, memory_order_release);
    return t;
}

sl_lease_table_t *
sl_lease_table_attach(void *mem)
{
    if (!mem || (uintptr_t) mem % SL_LEASE_ALIGN)
        return NULL;
    sl_lease_table_t *t = mem;
    if (atomic_load_explicit(&t->magic, memory_order_acquire) != SL_LEASE_MAGIC
        || t->layout != SL_LEASE_LAYOUT
        || t->bytes != sl_lease_table_size(t->n_sinks, t->partitions))
        return NULL;
    return t;
}

unsigned
sl_lease_table_sinks(const sl_lease_table_t *t)
{
    return t ? t->n_sinks : 0;
}

unsigned
sl_lease_table_partitions(const sl_lease_table_t *t)
{
    return t ? t->partitions : 0;
}

/* Publishes (owner, generation + 1, endpoint). Caller holds the slot's lock
 * (or, for a dead holder, acts for it). Also repairs a slot left odd by a
 * writer that died mid-publish. */
static void
s_publish(sl_lease_table_t *t, s_slot_t *slot, int32_t owner, const char *endpoint)
{
    uint64_t words[SL_LEASE_EP_WORDS] = { 0 };
    if (endpoint)
        memcpy(words, endpoint, strlen(endpoint));  /* < SL_LEASE_ENDPOINT_MAX */
    uint32_t seq = atomic_load_explicit(&slot->seq, memory_order_relaxed);
    uint32_t odd = seq | 1u;
    atomic_store_explicit(&slot->seq, odd, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&slot->owner, owner, memory_order_relaxed);
    atomic_store_explicit(&slot->generation,
                          atomic_load_explicit(&slot->generation, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    for (size_t i = 0; i < SL_LEASE_EP_WORDS; i++)
        atomic_store_explicit(&slot->endpoint[i], words[i], memory_order_relaxed);
    atomic_store_explicit(&slot->seq, odd + 1, memory_order_release);
    atomic_fetch_add_explicit(&t->version, 1, memory_order_release);
}

int
sl_lease_take(sl_lease_table_t *t, unsigned sink, unsigned p, int32_t owner,
              const char *endpoint)
{
    s_slot_t *slot = s_slot(t, sink, p);
    if (!slot || owner < 0 || (endpoint && strlen(endpoint) >= SL_LEASE_ENDPOINT_MAX))
        return -1;
    int32_t expected = -1;
    if (!atomic_compare_exchange_strong_explicit(&slot->lock, &expected, owner,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)
        && expected != owner)
        return -1;
    /* Won the lock, or already held it (then the endpoint is re-published,
     * e.g. after a rebind). */
    s_publish(t, slot, owner, endpoint);
    return 0;
}

int
sl_lease_release(sl_lease_table_t *t, unsigned sink, unsigned p, int32_t owner)
{
    s_slot_t *slot = s_slot(t, sink, p);
    if (!slot || owner < 0
        || atomic_load_explicit(&slot->lock, memory_order_acquire) != owner)
        return -1;
    s_publish(t, slot, -1, NULL);
    atomic_store_explicit(&slot->lock, -1, memory_order_release);
    return 0;
}

unsigned
sl_lease_release_all(sl_lease_table_t *t, int32_t owner)
{
    if (!t || owner < 0)
        return 0;
    unsigned released = 0;
    for (unsigned s = 0; s < t->n_sinks; s++)
        for (unsigned p = 0; p < t->partitions; p++)
            released += sl_lease_release(t, s, p, owner) == 0;
    return released;
}

int
sl_lease_get(const sl_lease_table_t *t, unsigned sink, unsigned p, sl_lease_info_t *out)
{
    s_slot_t *slot = s_slot(t, sink, p);
    if (!slot || !out)
        return -1;
    uint64_t words[SL_LEASE_EP_WORDS];
    for (long tries = 0; tries < SL_LEASE_READ_TRIES; tries++) {
        uint32_t before = atomic_load_explicit(&slot->seq, memory_order_acquire);
        if (before & 1u) {
            if (tries % 64 == 63)
                sched_yield();
            continue;
        }
        int32_t owner = atomic_load_explicit(&slot->owner, memory_order_relaxed);
        uint64_t gen = atomic_load_explicit(&slot->generation, memory_order_relaxed);
        for (size_t i = 0; i < SL_LEASE_EP_WORDS; i++)
            words[i] = atomic_load_explicit(&slot->endpoint[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&slot->seq, memory_order_relaxed) != before)
            continue;
        out->owner = owner;
        out->generation = gen;
        memcpy(out->endpoint, words, sizeof out->endpoint);
        out->endpoint[SL_LEASE_ENDPOINT_MAX - 1] = '\0';
        return 0;
    }
    return -1;
}

uint64_t
sl_lease_version(const sl_lease_table_t *t)
{
    return t ? atomic_load_explicit(&t->version, memory_order_acquire) : 0;
}
