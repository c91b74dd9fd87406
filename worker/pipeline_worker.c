/* Pipeline worker: leases -> ROUTER -> transform -> publish -> confirm.
 *
 * Worker j is a member of the lease interface (worker/leases.h), whose ring
 * over the live pipeline workers says which partitions j should hold;
 * worker/partitions.c follows that assignment, worker/dispatch.c handles
 * the frames and confirms them back to their senders. This file sets the
 * worker up and runs its one event loop:
 *
 *   watch per held partition socket   a bounded burst of frames
 *   timer "leases" (100 ms local,     renew, drop lost leases, take/release
 *         heartbeat with memcached)
 *   timer "cron" 100 ms               heartbeat in the shm slot, parent check
 *   timer "reorder" 5 ms              release what the reorder windows let go
 *   timer "retention" 1 s             flush aggregates whose retention ran out
 *   before sleep                      send the acks gathered this iteration;
 *                                     notice a drain request
 *   timer "drain" 10 ms (draining)    stop once every frame sent has arrived
 *
 * Stopping: ingest workers stop first and wait for their confirmations;
 * then this worker drains (keeps receiving until the frames the ingest
 * workers sent have all arrived, or nothing came for a moment), finishes
 * and confirms what its sockets hold, flushes or hands over every chain and
 * releases its leases. */
#include "worker/pipeline_worker.h"

#include "common/zmon.h"
#include "worker/stagetime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_CRON_MS 100
#define S_REORDER_MS 5
#define S_RETENTION_MS 1000       /* retention checks */
#define S_DRAIN_CHECK_MS 10

typedef struct {
    sl_pw_t pw;
    int draining;
    uint64_t drain_started;
    sl_loop_timer_t *drain_timer;
} s_main_t;

static void
s_on_leases(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_main_t *m = arg;
    sl_pw_rebalance(&m->pw, m->draining);
}

static void
s_on_cron(sl_loop_t *loop, void *arg)
{
    s_main_t *m = arg;
    sl_worker_beat(m->pw.ctx);
    if (sl_worker_orphaned(m->pw.ctx)) {
        sl_worker_stop = 1;
        sl_loop_break(loop);
    }
}

static void
s_on_reorder(sl_loop_t *loop, void *arg)
{
    (void) loop;
    sl_pw_t *pw = &((s_main_t *) arg)->pw;
    for (unsigned i = 0; i < pw->total; i++)
        if (pw->parts[i].held)
            sl_pw_reorder_release(pw, &pw->parts[i], 0);
}

static void
s_on_retention(sl_loop_t *loop, void *arg)
{
    (void) loop;
    sl_pw_t *pw = &((s_main_t *) arg)->pw;
    for (unsigned i = 0; i < pw->total; i++)
        if (pw->parts[i].held)
            sl_pw_retention(pw, &pw->parts[i]);
}

/* Ingest workers have stopped before we are told to drain: keep receiving
 * until every frame they sent has arrived somewhere (shared counters),
 * nothing came for a moment, or grace ends. */
static void
s_on_drain_check(sl_loop_t *loop, void *arg)
{
    s_main_t *m = arg;
    sl_pw_t *pw = &m->pw;
    uint64_t now = sl_now_ms();
    uint64_t sent = sl_shm_sum(pw->ctx->shm, SL_C_frames_sent, SL_ROLE_INGEST);
    uint64_t recvd = sl_shm_sum(pw->ctx->shm, SL_C_frames_received, SL_ROLE_PIPELINE);
    /* A frame can be missing for good if a pipeline worker was killed with
     * it queued: then stop after a quiet half second (ingest workers have
     * exited, so everything they sent is already in our sockets or in the
     * kernel). */
    uint64_t quiet = now - (pw->last_frame > m->drain_started ? pw->last_frame : m->drain_started);
    if ((recvd >= sent && quiet >= 50) || quiet >= 500 ||
        now - m->drain_started >= (uint64_t) pw->conf->shutdown_grace * 1000) {
        if (recvd < sent)
            sl_warn("drain: %llu frames sent by ingest workers were not received by any "
                    "pipeline worker (lost with a killed worker?)",
                    (unsigned long long) (sent - recvd));
        sl_loop_cancel(loop, &m->drain_timer);
        sl_loop_break(loop);
    }
}

static int
s_before_sleep(sl_loop_t *loop, void *arg)
{
    s_main_t *m = arg;
    sl_pw_t *pw = &m->pw;
    /* The output of the frames read this iteration, as one batch (fewer
     * publisher calls: see sl_pw_stage); inline publishers finish it here,
     * so its frames' acks go out just below. */
    sl_pw_publish(pw);
    /* Acks gathered this iteration, one message per sender and partition;
     * what would block waits for the next iteration (at most a timer
     * period away), not for a busy loop. */
    for (unsigned i = 0; i < pw->total; i++)
        if (pw->parts[i].acks_pending)
            sl_pw_send_acks(pw, &pw->parts[i]);
    if (sl_worker_drain && !m->draining) {
        m->draining = 1;
        m->drain_started = sl_now_ms();
        sl_worker_set_state(pw->ctx, SL_WS_DRAINING);
        sl_worker_title("sluice: pipeline #%d [draining]", pw->ctx->index);
        m->drain_timer = sl_loop_every(loop, S_DRAIN_CHECK_MS, 1, s_on_drain_check, m);
    }
    return 0;
}

/* A sink's publishers can take more again: read its partitions again. */
static void
s_on_output_ready(void *arg, unsigned sink)
{
    sl_pw_t *pw = arg;
    for (unsigned p = 0; p < pw->partitions; p++) {
        sl_pw_part_t *pt = sl_pw_part(pw, sink, p);
        if (pt->held && pt->watch)
            sl_loop_watch_set(pt->watch, SL_LOOP_IN);
    }
}

int
sl_pipeline_run(sl_worker_ctx_t *ctx)
{
    s_main_t m;
    memset(&m, 0, sizeof m);
    sl_pw_t *pw = &m.pw;
    pw->ctx = ctx;
    pw->conf = ctx->conf;
    sl_stage_start(ctx->slot);
    pw->n_sinks = (unsigned) sl_conf_n_sinks(ctx->conf);
    pw->partitions = ctx->conf->partitions;
    pw->total = pw->n_sinks * pw->partitions;
    sl_worker_place(ctx, 0);
    pw->zctx = zmq_ctx_new();
    pw->loop = sl_loop_new();
    pw->zmon = sl_zmon_new(pw->zctx, pw->loop, &ctx->slot->zmon);
    pw->last_frame = sl_now_ms();
    pw->parts = sl_xcalloc(pw->total + 1, sizeof *pw->parts);
    for (unsigned i = 0; i < pw->total; i++) {
        pw->parts[i].pw = pw;
        pw->parts[i].index = i;
    }
    int rc = 0;
    char err[512];
    pw->leases = sl_leases_new(ctx, SL_LEASES_MEMBER, err, sizeof err);
    if (!pw->leases) {
        sl_error("coordination: %s", err);
        rc = 2;
    } else if (!(pw->output = sl_output_new(pw->conf, pw->loop, ctx->slot, err, sizeof err))) {
        sl_error("%s", err);
        rc = 2;
    } else {
        sl_output_on_ready(pw->output, s_on_output_ready, pw);
    }
    if (rc == 0) {
        sl_worker_set_state(ctx, SL_WS_RUNNING);
        sl_info("pipeline worker #%d running: %u sinks x %u partitions", ctx->index,
                pw->n_sinks, pw->partitions);
        sl_loop_every(pw->loop, sl_leases_period_ms(pw->leases), 1, s_on_leases, &m);
        sl_loop_every(pw->loop, S_CRON_MS, 1, s_on_cron, &m);
        /* (no sink with a reorder window: nothing to release, no wakeups) */
        for (unsigned k = 0; k < pw->n_sinks; k++)
            if (sl_conf_sink(pw->conf, k)->reorder_window_ms) {
                sl_loop_every(pw->loop, S_REORDER_MS, 0, s_on_reorder, &m);
                break;
            }
        sl_loop_every(pw->loop, S_RETENTION_MS, 0, s_on_retention, &m);
        sl_loop_before_sleep(pw->loop, s_before_sleep, &m);
        if (sl_loop_run(pw->loop, &sl_worker_stop, 20) < 0) {
            sl_error("event loop: %s", zmq_strerror(errno));
            rc = 1;
        }
        /* Finish and confirm what the sockets hold, flush or hand over
         * every chain, release the leases. */
        sl_pw_release_all(pw);
        /* What the publishers still have, within shutdown_grace. */
        size_t left = sl_output_drain(pw->output, sl_now_ms() +
                                      (uint64_t) pw->conf->shutdown_grace * 1000);
        if (left)
            sl_warn("drain: %zu batches were not delivered within shutdown_grace (counted as "
                    "dropped; dead-lettered where configured)", left);
    }
    sl_leases_destroy(&pw->leases);   /* leaves the group */
    sl_output_destroy(&pw->output);
    sl_zmon_destroy(&pw->zmon);
    sl_loop_destroy(&pw->loop);
    sl_sample_vec_free(&pw->in);
    sl_sample_vec_free(&pw->out);
    free(pw->ends);
    free(pw->batch);
    free(pw->parts);
    sl_worker_zmq_term(pw->zctx, SL_WORKER_ZTERM_MS);
    sl_info("pipeline worker #%d stopped", ctx->index);
    return rc;
}
