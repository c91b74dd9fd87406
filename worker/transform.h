/* transform — a sink's transformer chain: Ceilometer's six transformers
 * (unit_conversion, rate_of_change, delta, accumulator, aggregator,
 * arithmetic) driven as Ceilometer's sink drove them (TRANSFORMERS.md;
 * README "Transformers" lists where sluice deliberately differs).
 *
 * One chain instance per (sink, partition) in the pipeline worker that holds
 * the partition, so transformer state is per partition and output never
 * depends on how many workers share the partitions. Call
 * sl_chain_process() with the samples of ONE notification and then
 * sl_chain_flush(), as Ceilometer did for every notification; flush also at
 * partition handoff and shutdown (or sl_chain_drain(), which also releases
 * what aggregators and accumulators hold).
 *
 * Memory: input samples are borrowed for the duration of the call; state
 * keeps its own copies. Output samples are appended to `out` as views. A
 * passed-on sample is the caller's input (same strings, same id); a new one
 * lives in the chain's output memory, which the chain recycles at the start
 * of a process/flush/drain call whose `out` is empty (out->n == 0: the
 * caller has consumed everything) or at sl_chain_recycle(). So: keep
 * appending to one vector across the notifications of a frame, publish it,
 * set out->n = 0, and go on. A chain is used by one thread. Pipeline
 * workers (and tools) only. */
#ifndef SL_TRANSFORM_H
#define SL_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "common/pipeline.h"
#include "common/sample.h"

typedef struct {
    sl_sample_t *v;
    size_t n, cap;
} sl_sample_vec_t;

void sl_sample_vec_push(sl_sample_vec_t *vec, const sl_sample_t *s);
void sl_sample_vec_free(sl_sample_vec_t *vec);

typedef struct sl_chain sl_chain_t;

typedef struct {
    uint64_t in;                /* samples given to process() */
    uint64_t out;               /* samples appended to out (process and flush) */
    uint64_t no_volume;         /* dropped: volume null or not a number */
    uint64_t aborted_batches;   /* notifications dropped whole: a list/object volume */
    uint64_t absorbed;          /* a transformer kept or dropped the sample (normal) */
    uint64_t errors;            /* a transformer failed on a sample (logged) */
    uint64_t flush_errors;      /* a transformer's flush failed (logged) */
    uint64_t eval_errors;       /* arithmetic evaluations that failed (logged) */
} sl_chain_stats_t;

/* 0 if every sink's transformers load; else -1 with "file:line: sink 'x':
 * transformer 'y': message" for what Ceilometer refuses at start-up (an
 * unknown transformer, int()/float() of a bad string, a true non-mapping
 * target) and what sluice refuses by decision (a value of a type
 * TRANSFORMERS.md does not allow, on which Ceilometer failed every sample;
 * a construct sluice cannot run with Python's meaning). It first resolves
 * the pipeline against the registry (sl_pipeline_resolve: unknown names,
 * each sink's stateful flag and grouping keys), for pipelines loaded
 * without it (sl_conf_load). What Ceilometer
 * ignores or swallows (a parameter it does not read, an invalid map_from
 * pattern, an unknown aggregator policy, an expression that cannot be
 * evaluated, ...) goes through warn with file:line and the transformer
 * then behaves as Ceilometer's did (yconf.h: warnings counted in
 * warn->count, or errors in strict mode; NULL = logged). */
int sl_transform_check(sl_pipeline_t *p, sl_ywarn_t *warn, char *err, size_t errlen);
/* The registry as the pipeline loader asks it (common/pipeline.h
 * sl_transformer_lookup_fn): -1 for an unknown name, else whether the
 * plugin is stateful and its grouping keys. */
int sl_transform_lookup(const char *name, int *stateful, const char *const **keys);

/* A chain with fresh state for sink. NULL (error logged) only if the sink
 * does not pass sl_transform_check(). New samples get source "openstack"
 * until sl_chain_set_source(). */
sl_chain_t *sl_chain_new(const sl_sink_t *sink);
/* The `source` of samples the transformers create ([DEFAULT] sample_source;
 * sluice.yaml `sample_source`). Copied. */
void sl_chain_set_source(sl_chain_t *c, const char *sample_source);
/* Freezes the wall clock the aggregator's retention_time compares with
 * (seconds since the epoch, UTC); NAN goes back to the real clock (the
 * default). Only flush reads the clock. */
void sl_chain_set_now(sl_chain_t *c, double now);

/* Before processing several notifications' samples in[0..n) (a frame):
 * lets the first transformer prefetch the state they will touch. Changes
 * nothing; optional. */
void sl_chain_prefetch(const sl_chain_t *c, const sl_sample_t *in, size_t n);
/* Ceilometer's publish_data: in[0..n) are the samples of ONE notification.
 * Appends what comes out of the last transformer to out. */
void sl_chain_process(sl_chain_t *c, const sl_sample_t *in, size_t n, sl_sample_vec_t *out);
/* Ceilometer's sink flush: each transformer's flush output goes through the
 * transformers after it; what survives is appended to out. */
void sl_chain_flush(sl_chain_t *c, sl_sample_vec_t *out);
/* A flush that also releases what is held short of its size or retention
 * (aggregator groups, accumulator samples): for handoff and shutdown. */
void sl_chain_drain(sl_chain_t *c, sl_sample_vec_t *out);
/* Ends, in out, of the publisher batches of the last flush/drain (Ceilometer
 * publishes each transformer's surviving flush output as its own batch):
 * (*ends)[i] is the out->n after batch i. Valid until the next call. */
size_t sl_chain_flush_batches(const sl_chain_t *c, const size_t **ends);
/* Seconds since the epoch after which a flush would emit something without
 * new input (an aggregator's retention_time expiring), or INFINITY. A
 * worker may flush from its cron then; Ceilometer only flushed when a
 * notification arrived. */
double sl_chain_next_expiry(const sl_chain_t *c);
/* State handoff: when a partition moves to another pipeline worker (a
 * rebalance, or a reload that restarts the workers), the old holder saves
 * its chain and the new one loads the bytes into a fresh chain of the same
 * sink configuration; from there the output is exactly what the old chain
 * would have produced (rate_of_change/delta caches, aggregator groups with
 * their counts, first timestamp and insertion order, accumulator and
 * arithmetic held samples with every field, doubles bit for bit). Not
 * carried: stats, log rate limits, sample_source and the frozen clock (the
 * caller's settings), and output memory (flush or publish before saving).
 *
 * sl_chain_save: 0 with *buf (malloc'd, the caller frees) and *len, or -1
 * (a state too large for the format). The bytes of equal states are equal.
 * sl_chain_load: 0, or -1 with the reason in err (truncated, corrupt, other
 * version, other transformer list or parameters); on -1 the chain is left
 * as it was (a fresh chain stays empty). Never trusts the input.
 *
 * Format, version 1; integers little-endian (item counts u64), doubles as
 * IEEE-754 bit patterns, strings as u32 (length + 1, 0 = null) and bytes:
 *   "SLCS"  u16 version  u16 n
 *   n times: u8 name length, name, u64 parameter fingerprint (FNV-1a 64 of
 *            the transformer's parameter tree), u32 blob length, blob (the
 *            plugin's state, its layout next to its save callback in
 *            worker/transformers/; empty for stateless unit_conversion)
 *   u64 FNV-1a 64 of every byte before it. */
int sl_chain_save(const sl_chain_t *c, char **buf, size_t *len);
/* The fingerprint of a sink's transformer list and parameters, as the
 * blob records it per transformer (names, kinds, keys and values of the
 * parameter trees; never line numbers). */
uint64_t sl_chain_fingerprint(const sl_sink_t *sink);
int sl_chain_load(sl_chain_t *c, const void *buf, size_t len, char *err, size_t errlen);

/* Releases the output memory now (the caller holds no output sample). */
void sl_chain_recycle(sl_chain_t *c);
const sl_chain_stats_t *sl_chain_stats(const sl_chain_t *c);
void sl_chain_destroy(sl_chain_t **c_p);

/* Registered transformers, for documentation: the i-th name, summary and
 * parameter table rendered as a Markdown list into buf; NULL past the end. */
const char *sl_transform_describe(size_t i, char *buf, size_t len);
/* Every transformer's parameter table (common/opt.h sl_opt_help), with a
 * heading naming it, for `sluiced --help-plugins`. */
void sl_transform_help(FILE *out);

#endif
