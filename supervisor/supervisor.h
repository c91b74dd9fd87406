/* supervisor — sluiced's master process: forks, reaps, respawns, reloads.
 *
 * Owns no data path, never creates a ZeroMQ context and runs no thread (it
 * forks). Signals are blocked and taken synchronously from a signalfd in
 * one loop (which also serves /metrics, supervisor/metrics.h), which
 * then acts in a fixed order: child exits, stop requests, reload, log
 * reopen, watchdog, respawns. TERM/QUIT = graceful stop (ingest workers
 * drain first, then pipeline workers, within shutdown_grace), INT = fast
 * stop, HUP = load and validate the configuration again and, if valid, roll
 * every worker onto it (if not, keep running and log why), USR1 = reopen
 * the log file.
 *
 * A supervisor owns its run_dir through an fcntl() lock on the pidfile,
 * held for its lifetime and not inherited by workers: a second sluiced on
 * the same run_dir exits 1 before touching anything there, and a pidfile
 * whose lock nobody holds is stale whatever pid it names. Under that lock it
 * empties <run_dir>/state and removes a shared-memory region a killed
 * supervisor left behind. Supervisor process only. */
#ifndef SL_SUPERVISOR_H
#define SL_SUPERVISOR_H

#include <stddef.h>
#include "common/conf.h"

typedef struct {
    const char  *config_path;      /* NULL = embedded default */
    const char *const *overrides;
    size_t       n_overrides;
    int          argc;
    char       **argv;
} sl_supervisor_opts_t;

/* Full validation of a loaded configuration beyond parsing: transformers
 * and publisher URLs. 0, or -1 with file:line in err. */
int sl_supervisor_validate(sl_conf_t *conf, char *err, size_t errlen);
/* Loads + validates; NULL with the reason in err. */
sl_conf_t *sl_supervisor_load(const sl_supervisor_opts_t *o, char *err, size_t errlen);
/* Runs until stopped; returns the process exit code. Takes ownership of conf. */
int sl_supervisor_run(const sl_supervisor_opts_t *o, sl_conf_t *conf);

#endif
