/* worker — what the supervisor hands a forked worker, and the two loops.
 *
 * A worker is one process running one loop (zmq_poll + a cron function).
 * It creates its own ZeroMQ context after fork, stamps a heartbeat in its
 * shared-memory slot, and acts on signals only through the flags below:
 * SIGTERM/SIGQUIT = drain (ingest: stop reading, send what is batched, wait
 * until the pipeline workers have it; pipeline: finish what was received,
 * flush, release leases), SIGINT = stop now. Exit code 0 = clean, 1 = error
 * (respawned), 2 = fatal configuration problem (not respawned). */
#ifndef SL_WORKER_H
#define SL_WORKER_H

#include <signal.h>
#include <sys/types.h>
#include <stdint.h>
#include "common/conf.h"
#include "common/stats.h"

typedef struct {
    const sl_conf_t *conf;
    sl_shm_t        *shm;
    sl_slot_t       *slot;
    int              slot_index;    /* global slot */
    int              index;         /* index within its role */
    uint32_t         generation;
    pid_t            supervisor;    /* the parent that forked it */
    uint64_t         trimmed_ms;    /* sl_worker_beat's last malloc_trim */
} sl_worker_ctx_t;

extern volatile sig_atomic_t sl_worker_drain;   /* TERM/QUIT */
extern volatile sig_atomic_t sl_worker_stop;    /* INT */
extern volatile sig_atomic_t sl_worker_reopen;  /* USR1: reopen the log (done in sl_worker_beat) */

/* Installs the worker's signal handlers (after fork). */
void sl_worker_signals(void);
/* Sets the process title ("sluice: ingest #1") and the thread name. */
void sl_worker_title(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sl_worker_title_init(int argc, char **argv);
/* 1 once the supervisor that forked this worker is gone: its parent is
 * now another process (PID 1, or a subreaper such as a container runtime
 * or systemd --user). The worker then stops at once: nobody will confirm,
 * coordinate or reap it. */
int sl_worker_orphaned(const sl_worker_ctx_t *ctx);
/* Heartbeat and state in the slot. The beat also gives the heap's free
 * pages back to the kernel, at most every SL_WORKER_TRIM_MS (malloc_trim:
 * frames kept until confirmed come and go in chunks of up to
 * batch_max_bytes, which glibc keeps in its heaps once its mmap threshold
 * has risen to their size; without it a worker stayed at the size of its
 * largest backlog). */
#define SL_WORKER_TRIM_MS 1000
void sl_worker_beat(sl_worker_ctx_t *ctx);
/* zmq_ctx_term, bounded: waits at most ms for the context to end (every
 * socket already closed; their linger is at most half a second) and
 * returns 0, or logs a warning and returns -1 once ms have passed: the
 * termination then stays blocked in a thread of its own and the worker
 * exits without it. libzmq 4.3's context termination can wait forever on
 * a pipe that never finishes closing (seen about once in 40 runs, on a
 * pipeline worker whose ingest peers had died while it was stopped); a
 * worker that stops must stop. */
#define SL_WORKER_ZTERM_MS 5000
int sl_worker_zmq_term(void *zctx, unsigned ms);
void sl_worker_set_state(sl_worker_ctx_t *ctx, int state);
/* The ipc endpoint of partition p of sink s: ipc://<run_dir>/<sink>.<p> */
void sl_worker_partition_endpoint(const sl_conf_t *conf, unsigned sink, unsigned p,
                                  char *buf, size_t len);

/* This host's name as coordination ids use it ([A-Za-z0-9-], at most 24). */
void sl_worker_host_id(char *buf, size_t len);

/* cpu_affinity: spread: pins the calling worker (before it creates its
 * ZeroMQ context, whose I/O threads inherit the mask) to one CPU of the
 * mask it inherited: ingest worker i to the i-th allowed CPU, pipeline
 * worker j to the (workers.ingest + j)-th, modulo their number. Does
 * nothing when off or with fewer than two allowed CPUs; a failure is
 * logged and the worker runs unpinned. A pipeline worker first adds
 * pipeline_nice to its nice value (conf.h sl_conf_pipeline_nice), also
 * before any of its threads start. */
void sl_worker_place(const sl_worker_ctx_t *ctx, int is_ingest);

int sl_ingest_run(sl_worker_ctx_t *ctx);
int sl_pipeline_run(sl_worker_ctx_t *ctx);

#endif
