/* metrics — the supervisor's HTTP endpoint: Prometheus /metrics and
 * /healthz, served from the shared memory by libmicrohttpd in external
 * polling mode. The supervisor's loop waits on sl_metrics_fd() (an epoll
 * descriptor) with its signals and calls sl_metrics_run(); there is no
 * HTTP thread, because the supervisor forks its workers and a fork taken
 * while another thread holds a lock (the allocator's, under
 * AddressSanitizer) leaves the child deadlocked on it.
 *
 * The object always exists while the supervisor runs: it also keeps the
 * retired totals (common/promtext.h) that the supervisor folds dead and
 * rolled-over workers into. Supervisor process only. */
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

/* What the supervisor's wait adds to its poll set: a descriptor readable
 * when HTTP work is pending (-1 when not serving), and how long it may
 * wait at most (max_ms, or less when a connection times out sooner). */
int sl_metrics_fd(const sl_metrics_t *self);
int sl_metrics_timeout_ms(const sl_metrics_t *self, int max_ms);

/* Serves what is ready without blocking: after every wait. */
void sl_metrics_run(sl_metrics_t *self);

/* In a freshly forked worker: closes the listening socket it inherited. */
void sl_metrics_close_in_child(sl_metrics_t *self);

/* 200 "ok" or 503 and why (in why), from shared memory only. */
int sl_metrics_health(const sl_shm_t *shm, uint64_t stale_ms, char *why, size_t len);

#endif
