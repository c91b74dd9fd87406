/* metrics — the supervisor's HTTP endpoint: Prometheus /metrics and
 * /healthz, served from the shared memory by libmicrohttpd's own polling
 * thread (the supervisor's signal loop is untouched).
 *
 * The object always exists while the supervisor runs: it also keeps the
 * retired totals (common/promtext.h) that the supervisor folds dead and
 * rolled-over workers into, under the lock the HTTP thread takes to render.
 * Start it after the supervisor blocked its signals (the thread inherits
 * the mask). Supervisor process only. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include "common/stats.h"

typedef struct sl_metrics sl_metrics_t;

sl_metrics_t *sl_metrics_new(sl_shm_t *shm);
void sl_metrics_destroy(sl_metrics_t **self_p);

/* Serves on listen ("HOST:PORT" or off, as metrics.listen), replacing what
 * it served before if the address changed. 0, or -1 with a reason naming
 * the setting in err (then the previous server, if any, keeps running). */
int sl_metrics_listen(sl_metrics_t *self, const char *listen, char *err, size_t errlen);

/* /healthz calls heartbeats older than this stale. */
void sl_metrics_set_stale_ms(sl_metrics_t *self, uint64_t ms);

/* Moves slot i's counters into the retired totals (sl_promtext_fold). */
void sl_metrics_fold(sl_metrics_t *self, unsigned i, unsigned what);

/* In a freshly forked worker: closes the listening socket it inherited. */
void sl_metrics_close_in_child(sl_metrics_t *self);

/* 200 "ok" or 503 and why (in why), from shared memory only. */
int sl_metrics_health(const sl_shm_t *shm, uint64_t stale_ms, char *why, size_t len);

#endif
