/* lease — the local (single-host) partition lease table, in shared memory.
 *
 * One slot per (sink, partition). A slot is free (owner -1) or held by one
 * pipeline worker slot index, with the endpoint that worker bound for it
 * (e.g. "ipc:///run/sluice/meter_sink.3"). Taking is a compare-and-swap on
 * the owner, so two workers can never hold one partition; only the holder
 * releases; the supervisor releases every lease of a dead worker.
 * Readers (ingest workers) get a consistent (owner, endpoint, generation)
 * triple through a per-slot sequence counter, and can poll one table-wide
 * version number to learn cheaply that something changed.
 *
 * The memory is provided by the caller (the supervisor's shared region);
 * the table is position-independent (no pointers inside). Any process
 * that maps the region; writers are pipeline workers and the supervisor. */
#ifndef SL_LEASE_H
#define SL_LEASE_H

#include <stddef.h>
#include <stdint.h>

#define SL_LEASE_ENDPOINT_MAX 160

typedef struct sl_lease_table sl_lease_table_t;

typedef struct {
    int32_t  owner;                          /* -1 = free */
    uint64_t generation;                     /* bumps on every take/release */
    char     endpoint[SL_LEASE_ENDPOINT_MAX];
} sl_lease_info_t;

/* Bytes needed for the table; 0 if the counts overflow. */
size_t sl_lease_table_size(unsigned n_sinks, unsigned partitions);
/* Initialises mem (of sl_lease_table_size bytes, 64-byte aligned as mmap'd
 * memory is) with every lease free. NULL if mem is NULL or misaligned. */
sl_lease_table_t *sl_lease_table_init(void *mem, unsigned n_sinks, unsigned partitions);
/* Views an already initialised table; NULL if mem does not hold one. */
sl_lease_table_t *sl_lease_table_attach(void *mem);
unsigned sl_lease_table_sinks(const sl_lease_table_t *t);
unsigned sl_lease_table_partitions(const sl_lease_table_t *t);

/* 0 if taken (endpoint published), -1 if held by someone else or out of range.
 * owner must be >= 0 and endpoint (NULL = "") shorter than
 * SL_LEASE_ENDPOINT_MAX. Taking a lease one already holds re-publishes the
 * endpoint (and bumps the generation). */
int sl_lease_take(sl_lease_table_t *t, unsigned sink, unsigned p, int32_t owner,
                  const char *endpoint);
/* 0 if released, -1 if not held by owner. */
int sl_lease_release(sl_lease_table_t *t, unsigned sink, unsigned p, int32_t owner);
/* Releases every lease owner holds; returns how many. Only for an owner
 * that no longer runs (the supervisor, after reaping it): it also repairs a
 * slot the owner left half-written. */
unsigned sl_lease_release_all(sl_lease_table_t *t, int32_t owner);
/* Consistent snapshot of one slot; 0, or -1 if out of range (or if a
 * writer died in the middle of publishing this slot and the supervisor has
 * not released its leases yet). */
int sl_lease_get(const sl_lease_table_t *t, unsigned sink, unsigned p, sl_lease_info_t *out);
/* Table-wide change counter (acquire load). */
uint64_t sl_lease_version(const sl_lease_table_t *t);

#endif
