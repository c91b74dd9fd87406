/* promtext — the shared-memory stats in the Prometheus text exposition
 * format (0.0.4), and the "retired" totals that keep its counters from
 * going backwards.
 *
 * One implementation for sluiced's /metrics (supervisor/metrics.h) and
 * `sluice-monitor --prometheus`. Names are sluice_<subsystem>_<name>, with
 * _total on counters and not on gauges; HELP texts are the X-macro help
 * texts of common/stats.h. Labels: worker ("ingest-0"), sink, publisher
 * (the publisher's label in shared memory, a URL without credentials or
 * query), broker (an amqp source's broker label).
 *
 * Shared memory loses counts in two places: every worker slot is zeroed at
 * each configuration generation (a reload), and a pipeline worker zeroes
 * its publisher counters when it (re)starts. The supervisor moves them into
 * a retired set first (sl_promtext_fold), keyed by label set, and renders
 * live + retired. Gauges (and the max kind) are not folded. The retired
 * set is owned by its creator; it is not thread-safe (the caller locks).
 * Any process; no global state. */
#ifndef SL_PROMTEXT_H
#define SL_PROMTEXT_H

#include <stddef.h>
#include <stdio.h>
#include "common/stats.h"

typedef struct sl_promtext_retired sl_promtext_retired_t;

/* What sl_promtext_fold moves out of a slot. */
enum {
    SL_PROMTEXT_FOLD_PUB = 1,      /* publisher counters (a dead pipeline worker) */
    SL_PROMTEXT_FOLD_ALL = 3,      /* everything: worker, sink, publisher, broker counters, restarts */
};

sl_promtext_retired_t *sl_promtext_retired_new(void);
void sl_promtext_retired_destroy(sl_promtext_retired_t **self_p);

/* Moves the counters `what` names of slot i into r (adding, keyed by the
 * slot's role and index, sink names and labels as they are now) and zeroes
 * them in the slot; publisher gauges are zeroed too (their worker is gone).
 * Only while nobody writes the slot: its worker has exited. */
void sl_promtext_fold(sl_promtext_retired_t *r, sl_shm_t *shm, unsigned i, unsigned what);

/* Writes every metric family (HELP and TYPE even without samples, so the
 * set of names is fixed) for the live workers of shm plus r (NULL: live
 * only). */
void sl_promtext_write(FILE *out, const sl_shm_t *shm, const sl_promtext_retired_t *r);

/* Escaping of the format: a label value (\ " and newline) and a HELP text
 * (\ and newline). */
void sl_promtext_label_value(FILE *out, const char *s);
void sl_promtext_help(FILE *out, const char *s);

/* Parses a listen setting: "off" or "" (1 if off), "HOST:PORT",
 * "[IPV6]:PORT" or ":PORT" (any address). Fills host (empty = any) and
 * port. 0, 1 (off), or -1 with the reason in err. */
int sl_promtext_listen_parse(const char *text, char *host, size_t hostlen, unsigned *port,
                             char *err, size_t errlen);

#endif
