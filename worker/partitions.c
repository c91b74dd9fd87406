/* partitions — the partitions a pipeline worker holds (see pipeline_worker.h).
 *
 * For each partition the lease interface gives this worker and that is
 * free, it takes the lease, binds the partition's ROUTER socket and creates
 * the sink's transformer chain (loading the state its previous owner left);
 * for each it holds but should not, it finishes what the socket holds,
 * confirms it, hands the chain's state over (or flushes it) and releases. */
#include "worker/pipeline_worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "common/zmon.h"
#include "worker/state.h"

#define S_CLOSE_LINGER_MS 500      /* for the last acks of a released partition */

static void s_readable(sl_loop_t *loop, void *arg, int revents);

static int
s_bind(void *arg, const char *endpoint, char *bound, size_t len)
{
    void *sock = arg;
    if (zmq_bind(sock, endpoint) < 0)
        return -1;
    size_t blen = len;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &blen) < 0)
        return -1;
    return 0;
}

static void
s_close(sl_pw_t *pw, void *sock, int linger_ms)
{
    sl_zmon_detach(pw->zmon, sock);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_close(sock);
}

static void
s_take(sl_pw_t *pw, unsigned sink, unsigned p)
{
    sl_pw_part_t *pt = sl_pw_part(pw, sink, p);
    void *sock = zmq_socket(pw->zctx, ZMQ_ROUTER);
    int hwm = (int) sl_conf_frame_hwm(pw->conf), one = 1;
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    /* A sender that reconnects under its routing id gets the acks still
     * due to it on the new connection. */
    zmq_setsockopt(sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    /* before the bind: a failed bind is an event too */
    sl_zmon_attach(pw->zmon, sock, "partition", NULL, NULL, NULL);
    if (sl_leases_take(pw->leases, sink, p, s_bind, sock) != 0) {
        s_close(pw, sock, 0);
        return;   /* held elsewhere, or could not bind (logged): retry on the next tick */
    }
    pt->sock = sock;
    pt->chain = sl_chain_new(sl_conf_sink(pw->conf, sink));
    sl_chain_set_source(pt->chain, pw->conf->sample_source);
    sl_state_load(pw->conf, sink, p, pt->chain);
    unsigned window = sl_conf_sink(pw->conf, sink)->reorder_window_ms;
    pt->reorder = window ? sl_reorder_new(window) : NULL;
    pt->holding = ++pw->holdings;
    pt->held = 1;
    pt->watch = sl_loop_watch_zmq(pw->loop, sock, SL_LOOP_IN, s_readable, pt);
    SL_INC(pw->ctx->slot, leases_taken, 1);
}

void
sl_pw_release(sl_pw_t *pw, unsigned sink, unsigned p, int lost)
{
    sl_pw_part_t *pt = sl_pw_part(pw, sink, p);
    if (!pt->held)
        return;
    sl_loop_unwatch(pw->loop, &pt->watch);
    /* What the socket already holds is ours to finish, unless the lease ran
     * out: then another owner may have the partition and the senders resend
     * what we did not confirm. */
    if (!lost)
        while (sl_pw_read(pw, pt, SIZE_MAX) > 0)
            ;
    sl_pw_reorder_release(pw, pt, 1);
    /* Handing over on this host: the state goes to the next owner.
     * Stopping for good, or a next owner that may be on another host: emit
     * what the chain still holds rather than lose it. */
    int final = (sl_worker_drain && !atomic_load(&pw->ctx->shm->handoff)) ||
                sl_leases_shared(pw->leases);
    sl_pw_stage(pw, sink);
    if (final || sl_state_save(pw->conf, sink, p, pt->chain) < 0)
        sl_chain_drain(pt->chain, &pw->out);
    /* (also what the frames above left pending: the chain goes next) */
    sl_pw_publish(pw);
    sl_pw_account(pw, pt);
    sl_pw_send_acks(pw, pt);
    sl_pw_drop_acks(pt);
    memset(&pt->counted, 0, sizeof pt->counted);
    sl_reorder_destroy(&pt->reorder);
    sl_chain_destroy(&pt->chain);
    s_close(pw, pt->sock, lost ? 0 : S_CLOSE_LINGER_MS);
    pt->sock = NULL;
    pt->held = 0;
    sl_leases_release(pw->leases, sink, p);
    SL_INC(pw->ctx->slot, leases_released, 1);
}

void
sl_pw_release_all(sl_pw_t *pw)
{
    for (unsigned i = 0; i < pw->total; i++)
        sl_pw_release(pw, i / pw->partitions, i % pw->partitions, 0);
}

void
sl_pw_rebalance(sl_pw_t *pw, int draining)
{
    int rc = sl_leases_tick(pw->leases);
    /* A lease we could not renew in time is no longer ours, backend
     * reachable or not: once it is back another host may take it, so we
     * stop first (what we did not confirm waits with its senders). */
    for (unsigned i = 0; i < pw->total; i++) {
        unsigned sk = i / pw->partitions, p = i % pw->partitions;
        if (pw->parts[i].held && !sl_leases_valid(pw->leases, sk, p)) {
            sl_warn("lease %s/%u was lost (expired or taken over): dropping the partition",
                    sl_conf_sink_label(pw->conf, sk), p);
            sl_pw_release(pw, sk, p, 1);
        }
    }
    if (rc < 0 || draining)
        return;
    for (unsigned i = 0; i < pw->total; i++) {
        unsigned sk = i / pw->partitions, p = i % pw->partitions;
        int mine = sl_leases_mine(pw->leases, sk, p);
        if (pw->parts[i].held && !mine)
            sl_pw_release(pw, sk, p, 0);
        else if (!pw->parts[i].held && mine)
            s_take(pw, sk, p);
    }
}

/* A bounded burst per socket, so that one partition cannot starve the
 * others nor delay the timers (lease renewal) by more than one burst. */
static void
s_readable(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    (void) revents;
    sl_pw_part_t *pt = arg;
    sl_pw_t *pw = pt->pw;
    if (!sl_leases_valid(pw->leases, pt->index / pw->partitions, pt->index % pw->partitions)) {
        sl_warn("lease %s/%u ran out: dropping the partition",
                sl_conf_sink_label(pw->conf, pt->index / pw->partitions),
                pt->index % pw->partitions);
        sl_pw_release(pw, pt->index / pw->partitions, pt->index % pw->partitions, 1);
        return;
    }
    /* Back-pressure: a sink whose publishers cannot take more (policy
     * default, max_queue_length batches waiting) is not read until the
     * output layer says so (s_on_output_ready in pipeline_worker.c); its
     * senders then block on full sockets and pause their sources. */
    if (!sl_output_ready(pw->output, pt->index / pw->partitions)) {
        sl_loop_watch_set(pt->watch, 0);
        return;
    }
    sl_pw_read(pw, pt, SL_PW_READ_BUDGET);
}
