/* otlp — the JSON of the opentelemetryhttp:// publisher
 * (worker/publishers/otlp.c documents both formats), exposed for tests.
 * Pure functions, any thread. */
#ifndef SL_PUBLISHERS_OTLP_H
#define SL_PUBLISHERS_OTLP_H

#include <stddef.h>
#include "common/buf.h"
#include "common/pycompat.h"
#include "common/sample.h"

/* Appends one metric object for s (otlp = 0: Ceilometer's JSON; 1: the
 * OTLP specification's). -1 with err (out unchanged) when Ceilometer
 * would leave the sample out (its timestamp does not parse) or, with
 * otlp, its volume is not a number. */
int sl_otlp_metric(sl_buf_t *out, const sl_sample_t *s, int otlp, const sl_py_t *py,
                   char *err, size_t errlen);
/* The document around the metrics: open, then metrics separated by ", ",
 * then close. */
void sl_otlp_open(sl_buf_t *out, int otlp);
void sl_otlp_close(sl_buf_t *out);

#endif
