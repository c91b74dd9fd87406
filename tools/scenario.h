/* scenario — a transformer scenario file (TRANSFORMERS.md section 13) run
 * through the chain code the pipeline worker uses, writing the publisher
 * calls in the scenario's `expected` format. Shared by sluice-transform and
 * the tests, so that a test can run some steps on one chain and the rest on
 * another. Tools and tests only.
 *
 * The scenario's transformers become a one-sink pipeline.yaml (JSON written
 * as YAML flow text, so the parameters go through the same YAML loading and
 * checks as a real configuration). All input samples are parsed at open;
 * they and the sink live until sl_scenario_destroy(). */
#ifndef SL_SCENARIO_H
#define SL_SCENARIO_H

#include <stddef.h>
#include <yajl/yajl_gen.h>
#include "common/pipeline.h"
#include "common/sample.h"
#include "worker/transform.h"

typedef struct sl_scenario sl_scenario_t;

/* 0 with *out; 1 (cannot read or parse the file) or 2 (the transformers do
 * not load) with the reason in err. */
int sl_scenario_open(const char *path, sl_scenario_t **out, char *err, size_t errlen);
size_t sl_scenario_steps(const sl_scenario_t *sc);
/* The scenario's sink (for sl_chain_new). */
const sl_sink_t *sl_scenario_sink(const sl_scenario_t *sc);
/* Step st on c: process(step samples), then, if the step flushes, flush()
 * with the clock frozen at the step's `now`. Each publisher call is
 * written into g (inside an array the caller opened) as
 * {"step", "phase", "samples"}. 0, or -1 (a bad `now`) with err. */
int sl_scenario_step(sl_scenario_t *sc, sl_chain_t *c, size_t st, yajl_gen g, char *err,
                     size_t errlen);
/* Writes one publisher call (samples v[0..n)) into g. An output sample's
 * id is written only if it is one of the scenario's input ids, else null
 * (new samples have fresh random ids). */
void sl_scenario_gen_call(const sl_scenario_t *sc, yajl_gen g, size_t step, const char *phase,
                          const sl_sample_t *v, size_t n);
void sl_scenario_destroy(sl_scenario_t **sc_p);

#endif
