/* dispatch — frame in, chain, publish, confirm (see pipeline_worker.h).
 *
 * A partition socket is a ROUTER: each message is [sender id][frame]. The
 * frame's samples go through the chain notification by notification (or
 * into the reorder window first), what comes out is published in one batch
 * per frame, and the frame's completion record turns into an ack for its
 * sender once nothing of it is pending any more. */
#include "worker/pipeline_worker.h"
#include "worker/stagetime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* --- completion ----------------------------------------------------------- */

static void
s_ack(sl_pw_part_t *pt, const unsigned char *id, size_t id_len, uint16_t sink,
      uint32_t partition, uint32_t seq)
{
    sl_pw_peer_t *peer = NULL;
    for (size_t i = 0; i < pt->n_peers && !peer; i++) {
        sl_pw_peer_t *q = &pt->peers[i];
        if (q->id_len == id_len && q->sink == sink && q->partition == partition &&
            memcmp(q->id, id, id_len) == 0)
            peer = q;
    }
    if (!peer) {
        pt->peers = sl_xrealloc(pt->peers, (pt->n_peers + 1) * sizeof *pt->peers);
        peer = &pt->peers[pt->n_peers++];
        memset(peer, 0, sizeof *peer);
        memcpy(peer->id, id, id_len);
        peer->id_len = (uint8_t) id_len;
        peer->sink = sink;
        peer->partition = partition;
    }
    if (peer->n >= SL_PW_ACKS_MAX) {
        /* A sender that does not read its acks (its window bounds what a
         * live one has outstanding): keep memory bounded, it resends. */
        sl_log_limited(&pt->pw->rl_ack, SL_LOG_WARN, "partition %u: a sender does not read "
                       "its confirmations; dropping %zu of them", partition, peer->n / 2);
        memmove(peer->seqs, peer->seqs + peer->n / 2, (peer->n - peer->n / 2) * sizeof *peer->seqs);
        peer->n -= peer->n / 2;
    }
    if (peer->n == peer->cap) {
        peer->cap = peer->cap ? peer->cap * 2 : 64;
        peer->seqs = sl_xrealloc(peer->seqs, peer->cap * sizeof *peer->seqs);
    }
    peer->seqs[peer->n++] = seq;
    pt->acks_pending = 1;
}

static void
s_frame_msg_close(sl_pw_frame_t *f)
{
    if (f->has_msg) {
        zmq_msg_close(&f->msg);
        f->has_msg = 0;
    }
}

static void
s_unref(sl_pw_t *pw, sl_pw_frame_t *f)
{
    if (--f->refs)
        return;
    sl_pw_part_t *pt = &pw->parts[f->part];
    /* Completed after its partition was released (or released and taken
     * again): the sender resends it to the owner of its new epoch. */
    if (pt->held && pt->holding == f->holding)
        s_ack(pt, f->id, f->id_len, f->sink, f->partition,
              f->seq | (f->failed ? SL_WIRE_ACK_FAILED : 0));
    s_frame_msg_close(f);
    free(f);
}

static void
s_batch_add(sl_pw_t *pw, sl_pw_frame_t *f)
{
    if (pw->n_batch == pw->cap_batch) {
        pw->cap_batch = pw->cap_batch ? pw->cap_batch * 2 : 16;
        pw->batch = sl_xrealloc(pw->batch, pw->cap_batch * sizeof *pw->batch);
    }
    f->refs++;
    pw->batch[pw->n_batch++] = f;
}

void
sl_pw_batch_done(sl_pw_t *pw, sl_pw_batch_t *b)
{
    if (--b->refs)
        return;
    for (size_t i = 0; i < b->n; i++)
        s_unref(pw, b->frames[i]);
    free(b);
}

/* --- publish ------------------------------------------------------------- */

void
sl_pw_account(sl_pw_t *pw, sl_pw_part_t *pt)
{
    const sl_chain_stats_t *st = sl_chain_stats(pt->chain);
    uint64_t errors = st->no_volume + st->errors + st->flush_errors + st->eval_errors;
    uint64_t before = pt->counted.no_volume + pt->counted.errors + pt->counted.flush_errors +
                      pt->counted.eval_errors;
    SL_INC(pw->ctx->slot, transform_errors, errors - before);
    SL_INC(pw->ctx->slot, transform_absorbed, st->absorbed - pt->counted.absorbed);
    pt->counted = *st;
}

/* Latency of each frame of a delivered batch (once per frame, though it
 * appears once per notification), from its read time. */
static void
s_latency(const sl_pw_batch_t *b)
{
    uint64_t now = sl_wall_us();
    for (size_t i = 0; i < b->n; i++)
        if (b->frames[i]->read_us && (i == 0 || b->frames[i] != b->frames[i - 1]))
            sl_lat_record(b->pw->ctx->slot, now > b->frames[i]->read_us ?
                          now - b->frames[i]->read_us : 0, 1);
}

static void
s_output_done(void *arg, int delivered)
{
    /* dropped for good counts as finished (counted there); a failure that
     * may heal is flagged in the ack: the source may requeue */
    sl_pw_batch_t *b = arg;
    if (!b)
        return;
    if (delivered == 1)
        s_latency(b);
    if (delivered == SL_OUTPUT_FAILED)
        for (size_t i = 0; i < b->n; i++)
            b->frames[i]->failed = 1;
    sl_pw_batch_done(b->pw, b);
}

void
sl_pw_publish(sl_pw_t *pw)
{
    sl_sample_vec_t *out = &pw->out;
    if (!pw->n_batch && !out->n)
        return;
    uint64_t t0 = SL_ST_SEC_BEGIN();
    /* The batch's frames: each keeps a reference until every publisher of
     * the sink is done with the batch (the output layer's done callback). */
    sl_pw_batch_t *b = NULL;
    size_t n_frames = pw->n_batch;
    if (n_frames) {
        b = sl_xmalloc(sizeof *b + n_frames * sizeof *b->frames);
        memcpy(b->frames, pw->batch, n_frames * sizeof *b->frames);
        b->pw = pw;
        b->n = n_frames;
        b->refs = 1;                /* ours, while submitting */
        pw->n_batch = 0;
    }
    if (out->n) {
        if (b)
            b->refs++;              /* the output layer's */
        sl_output_submit(pw->output, pw->out_sink, out->v, out->n, s_output_done, b);
        out->n = 0;
    }
    /* The output layer has published or copied the samples: the messages
     * they were views into can go (not the frames: they wait for done). */
    for (size_t i = 0; b && i < n_frames; i++)
        s_frame_msg_close(b->frames[i]);
    if (b)
        sl_pw_batch_done(pw, b);
    SL_ST_SEC_END(publish, t0);
}

void
sl_pw_stage(sl_pw_t *pw, unsigned sink)
{
    if (pw->out_sink != sink) {
        sl_pw_publish(pw);
        pw->out_sink = sink;
    }
}

void
sl_pw_publish_some(sl_pw_t *pw)
{
    if (pw->out.n >= pw->conf->batch_size || pw->n_batch >= SL_PW_BATCH_FRAMES)
        sl_pw_publish(pw);
}

/* --- the chain ----------------------------------------------------------- */

/* One notification's samples through the chain, then its flush point
 * (Ceilometer's batch_size 1); the frame joins the batch its output goes
 * out in. */
static void
s_run_chain(sl_pw_t *pw, sl_pw_part_t *pt, sl_pw_frame_t *f, const sl_sample_t *samples,
            size_t n)
{
    uint64_t t0 = SL_ST_SEC_BEGIN();
    sl_chain_process(pt->chain, samples, n, &pw->out);
    sl_chain_flush(pt->chain, &pw->out);
    SL_ST_SEC_END(transform, t0);
    if (f)
        s_batch_add(pw, f);
}

static void
s_released(void *arg, const sl_sample_t *samples, size_t n, void *tag)
{
    sl_pw_part_t *pt = arg;
    sl_pw_frame_t *f = tag;
    s_run_chain(pt->pw, pt, f, samples, n);
    if (f)
        s_unref(pt->pw, f);         /* the window's reference */
}

void
sl_pw_reorder_release(sl_pw_t *pw, sl_pw_part_t *pt, int force)
{
    if (!pt->reorder)
        return;
    sl_pw_stage(pw, pt->index / pw->partitions);
    if (sl_reorder_release(pt->reorder, sl_now_ms(), force, s_released, pt) == 0)
        return;
    sl_pw_publish(pw);
    sl_pw_account(pw, pt);
}

void
sl_pw_retention(sl_pw_t *pw, sl_pw_part_t *pt)
{
    /* A quiet partition still emits an aggregate whose retention_time
     * expired (Ceilometer flushed on the next notification). */
    if ((double) sl_wall_ms() / 1000.0 < sl_chain_next_expiry(pt->chain))
        return;
    sl_pw_stage(pw, pt->index / pw->partitions);
    sl_chain_flush(pt->chain, &pw->out);
    sl_pw_publish(pw);
    sl_pw_account(pw, pt);
}

static void
s_notification(sl_pw_t *pw, sl_pw_part_t *pt, sl_pw_frame_t *f, const sl_sample_t *samples,
               size_t n, uint64_t now)
{
    if (pt->reorder) {
        f->refs++;
        sl_reorder_add(pt->reorder, samples, n, now, f);
        return;
    }
    s_run_chain(pw, pt, f, samples, n);
}

static void
s_end_push(sl_pw_t *pw, size_t end)
{
    if (pw->n_ends == pw->cap_ends) {
        pw->cap_ends = pw->cap_ends ? pw->cap_ends * 2 : 64;
        pw->ends = sl_xrealloc(pw->ends, pw->cap_ends * sizeof *pw->ends);
    }
    pw->ends[pw->n_ends++] = end;
}

/* --- frames --------------------------------------------------------------- */

static uint32_t
s_le32(const unsigned char *p)
{
    return p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* A rejected frame is confirmed too (resending would not help), from its
 * raw header when that still says who it is. */
static void
s_reject(sl_pw_t *pw, sl_pw_part_t *pt, const zmq_msg_t *id, const unsigned char *data,
         size_t len, const char *why)
{
    SL_INC(pw->ctx->slot, frames_rejected, 1);
    sl_log_limited(&pw->rl_frame, SL_LOG_WARN, "rejected a frame of %zu bytes: %s", len, why);
    if (len >= SL_WIRE_HEADER_SIZE && memcmp(data, "SLW1", 4) == 0 && id)
        s_ack(pt, zmq_msg_data((zmq_msg_t *) id), zmq_msg_size((zmq_msg_t *) id),
              (uint16_t) (data[6] | data[7] << 8), s_le32(data + 8), s_le32(data + 20));
}

/* msg: the frame; its content moves into the frame's record, since the
 * samples published from it may be views into it until the batch they go
 * out in is submitted (sl_pw_publish). */
static void
s_frame(sl_pw_t *pw, sl_pw_part_t *pt, zmq_msg_t *id, zmq_msg_t *msg)
{
    sl_worker_ctx_t *ctx = pw->ctx;
    sl_wire_reader_t r;
    char err[256];
    SL_INC(ctx->slot, frames_received, 1);
    sl_pw_frame_t *f = sl_xmalloc(sizeof *f);
    zmq_msg_init(&f->msg);
    zmq_msg_move(&f->msg, msg);
    f->has_msg = 1;
    void *data = zmq_msg_data(&f->msg);
    size_t len = zmq_msg_size(&f->msg);
    const char *why = NULL;
    const zmq_msg_t *ack_id = id;   /* whom a rejection is confirmed to */
    sl_pw_part_t *dest = NULL;
    if (sl_wire_reader_open(&r, data, len, err, sizeof err) < 0) {
        why = err;
    } else if (r.hdr.sink >= pw->n_sinks || r.hdr.partition >= pw->partitions ||
               (r.hdr.generation != ctx->generation && !sl_leases_shared(pw->leases))) {
        /* (agents sharing partitions may run other configuration generations) */
        why = "stale generation or bad sink/partition";
    } else if (!(dest = sl_pw_part(pw, r.hdr.sink, r.hdr.partition))->held) {
        /* a sender's mistake: not ours; unconfirmed, it resends to the owner */
        why = "frame for a partition this worker does not hold";
        ack_id = NULL;
    }
    if (why) {
        s_reject(pw, pt, ack_id, data, len, why);
        s_frame_msg_close(f);
        free(f);
        return;
    }
    f->refs = 1;                    /* while being read */
    f->part = pt->index;
    f->holding = pt->holding;
    f->sink = r.hdr.sink;
    f->partition = r.hdr.partition;
    f->seq = r.hdr.seq & SL_WIRE_SEQ_MASK;
    f->failed = 0;
    f->read_us = r.hdr.read_us;
    f->id_len = (uint8_t) zmq_msg_size(id);
    memcpy(f->id, zmq_msg_data(id), f->id_len);
    sl_pw_stage(pw, r.hdr.sink);
    /* The whole frame first (views into f->msg), with where each
     * notification ends, so that the chain can prefetch its state for all
     * of them: a stateful sink's lookups miss the cache. */
    sl_sample_t s;
    unsigned flags;
    pw->in.n = 0;
    pw->n_ends = 0;
    while (sl_wire_reader_next(&r, &s, &flags) == 1) {
        sl_sample_vec_push(&pw->in, &s);
        if (flags & SL_WIRE_FLAG_END_OF_NOTIFICATION)
            s_end_push(pw, pw->in.n);
    }
    if (!pw->n_ends || pw->ends[pw->n_ends - 1] != pw->in.n)
        s_end_push(pw, pw->in.n);   /* a frame always ends on a boundary; be safe */
    SL_INC(ctx->slot, samples_received, pw->in.n);
    if (!dest->reorder)
        sl_chain_prefetch(dest->chain, pw->in.v, pw->in.n);
    uint64_t now = sl_now_ms();
    for (size_t i = 0, start = 0; i < pw->n_ends; start = pw->ends[i++])
        if (pw->ends[i] > start)
            s_notification(pw, dest, f, pw->in.v + start, pw->ends[i] - start, now);
    pw->in.n = 0;
    if (dest->reorder)
        s_frame_msg_close(f);       /* the window holds copies */
    sl_pw_account(pw, dest);
    s_unref(pw, f);
    sl_pw_publish_some(pw);
}

size_t
sl_pw_read(sl_pw_t *pw, sl_pw_part_t *pt, size_t budget)
{
    zmq_msg_t id, msg;
    size_t n = 0;
    zmq_msg_init(&id);
    zmq_msg_init(&msg);
    SL_ST_BEGIN_UNIT(receive);
    /* a frame's batch may fill the sink's publisher queue: stop there, so
     * that a queue never holds more than max_queue_length (partitions.c
     * then stops polling the socket) */
    unsigned sink = pt->index / pw->partitions;
    while (n < budget && sl_output_ready(pw->output, sink) &&
           zmq_msg_recv(&id, pt->sock, ZMQ_DONTWAIT) >= 0) {
        n++;
        pw->last_frame = sl_now_ms();
        /* A ROUTER delivers every part of a message at once. */
        if (!zmq_msg_more(&id) || zmq_msg_recv(&msg, pt->sock, ZMQ_DONTWAIT) < 0) {
            SL_INC(pw->ctx->slot, frames_received, 1);
            s_reject(pw, pt, NULL, zmq_msg_data(&id), 0, "a message without a frame");
            continue;
        }
        if (zmq_msg_more(&msg)) {   /* one frame per message: drop the rest, reject */
            size_t len = zmq_msg_size(&msg);
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            while (zmq_msg_more(&msg) && zmq_msg_recv(&extra, pt->sock, ZMQ_DONTWAIT) >= 0 &&
                   zmq_msg_more(&extra))
                ;
            zmq_msg_close(&extra);
            SL_INC(pw->ctx->slot, frames_received, 1);
            s_reject(pw, pt, &id, zmq_msg_data(&msg), len, "a message of several frames");
            continue;
        }
        s_frame(pw, pt, &id, &msg);
        SL_ST_END(0);
        SL_ST_BEGIN_UNIT(receive);
    }
    SL_ST_IDLE();
    zmq_msg_close(&id);
    zmq_msg_close(&msg);
    return n;
}

/* --- acks ----------------------------------------------------------------- */

void
sl_pw_drop_acks(sl_pw_part_t *pt)
{
    for (size_t i = 0; i < pt->n_peers; i++)
        free(pt->peers[i].seqs);
    free(pt->peers);
    pt->peers = NULL;
    pt->n_peers = 0;
    pt->acks_pending = 0;
}

void
sl_pw_send_acks(sl_pw_t *pw, sl_pw_part_t *pt)
{
    if (!pt->acks_pending || !pt->sock)
        return;
    static unsigned char buf[SL_WIRE_ACK_SIZE(SL_WIRE_ACK_MAX)];
    int left = 0;
    for (size_t i = 0; i < pt->n_peers; i++) {
        sl_pw_peer_t *q = &pt->peers[i];
        size_t done = 0;
        while (done < q->n) {
            size_t k = q->n - done < SL_WIRE_ACK_MAX ? q->n - done : SL_WIRE_ACK_MAX;
            size_t len = sl_wire_ack_encode(buf, q->sink, q->partition, q->seqs + done, k);
            /* ROUTER_MANDATORY: an unknown sender fails (it is gone: its
             * frames went with it), a full pipe would block (retry later). */
            if (zmq_send(pt->sock, q->id, q->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
                if (errno == EAGAIN) {
                    left = 1;
                    break;
                }
                sl_log_limited(&pw->rl_ack, SL_LOG_INFO, "sink %s partition %u: %zu "
                               "confirmations for a sender that is gone: %s",
                               sl_conf_sink_label(pw->conf, q->sink), q->partition,
                               q->n - done, zmq_strerror(errno));
                done = q->n;
                break;
            }
            zmq_send(pt->sock, buf, len, ZMQ_DONTWAIT);   /* a ROUTER sends all parts or none */
            SL_INC(pw->ctx->slot, frames_acked, k);
            done += k;
        }
        memmove(q->seqs, q->seqs + done, (q->n - done) * sizeof *q->seqs);
        q->n -= done;
    }
    pt->acks_pending = left;
    /* a send may take the signal of a frame arriving meanwhile */
    sl_loop_watch_touch(pt->watch);
}
