/* transform — the seam where a sink's transformer chain runs.
 *
 * One chain instance per (sink, partition) in the pipeline worker that holds
 * the partition, so transformer state is per partition and output never
 * depends on how many workers share the partitions. process() is called
 * with the samples of one notification (a flush point follows each, as in
 * Ceilometer with batch_size 1); flush() at flush points, retention timers,
 * partition handoff and shutdown.
 *
 * Now: only the empty chain (pass-through) runs; sl_transform_check()
 * rejects sinks that configure transformers, with file:line, until the
 * transformers issue lands. Output samples are views valid until the next
 * call on the chain. Pipeline workers only. */
#ifndef SL_TRANSFORM_H
#define SL_TRANSFORM_H

#include <stddef.h>
#include "common/pipeline.h"
#include "common/sample.h"

typedef struct {
    sl_sample_t *v;
    size_t n, cap;
} sl_sample_vec_t;

void sl_sample_vec_push(sl_sample_vec_t *vec, const sl_sample_t *s);
void sl_sample_vec_free(sl_sample_vec_t *vec);

typedef struct sl_chain sl_chain_t;

/* 0 if every sink's transformers can run; else -1 with file:line. */
int sl_transform_check(const sl_pipeline_t *p, char *err, size_t errlen);

sl_chain_t *sl_chain_new(const sl_sink_t *sink);
/* Appends what the chain emits for in[0..n) to out. */
void sl_chain_process(sl_chain_t *c, const sl_sample_t *in, size_t n, sl_sample_vec_t *out);
void sl_chain_flush(sl_chain_t *c, sl_sample_vec_t *out);
void sl_chain_destroy(sl_chain_t **c_p);

#endif
