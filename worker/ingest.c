/* Ingest worker: sources -> decode -> convert -> route -> frames, kept
 * until confirmed.
 *
 * One event loop (common/loop.h). Source plugins (worker/sources/) hand
 * notifications to s_deliver with a delivery token; each gets the next
 * notification number. Its samples and events go into one frame per
 * (sink, partition) being filled; a frame is sent when full or older than
 * batch_timeout_ms, over a DEALER socket connected to the partition's
 * current holder (worker/leases.h), and kept until the holder confirms it
 * (an SLAK message back on the same socket, common/wire.h). Confirmation
 * of a notification: when no frame that is being filled, waiting to be
 * sent or waiting for its confirmation holds a record of it or of an
 * earlier one, every notification before the oldest such record is
 * delivered, and the source gets ack(token) for each, in order.
 *
 * When a partition's holder changes (its owner epoch, leases.h), the
 * socket reconnects and every frame sent and not confirmed is sent again
 * to the new holder (counted in frames_resent: the duplicates a dead or
 * departed pipeline worker can cause). While a partition has no holder,
 * nothing is sent to it.
 *
 * Back-pressure: sources are paused while a frame waits for a full socket
 * or a partition without holder, while max_unconfirmed notifications are
 * unconfirmed, or while the kept frames reach this worker's share of
 * queue_memory (sl_conf_kept_limit; what ZeroMQ queues shares their bytes:
 * zmq_msg_copy). Every frame a pipeline worker holds is one kept here, so
 * the frames in flight of the whole agent are bounded whatever the
 * destinations do. Frames of a sink with a reorder window are not counted
 * against the share: they are confirmed only once the window lets their
 * samples go (at least reorder_window_ms), so the share would cap such a
 * sink at share / window bytes per second and a paused worker's samples
 * would reach the window too late to be put in order; max_unconfirmed
 * bounds them. */
#include "worker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/envelope.h"
#include "common/json_simd.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/meters.h"
#include "common/wire.h"
#include "common/zmon.h"
#include "worker/leases.h"
#include "worker/sources/source.h"
#include "worker/stagetime.h"

#define S_MAX_SAMPLES_PER_NOTIFICATION 512
#define S_BEAT_MS 50
#define S_ROUTE_MS 10

typedef struct {
    zmq_msg_t msg;
    uint32_t seq;
    int acked;
    uint64_t first_n;           /* the oldest notification with a record in it ... */
    uint64_t last_n;            /* ... and the newest (or a later one) */
} s_frame_t;

struct s_ingest;

typedef struct {
    struct s_ingest *in;
    unsigned sink, p;
    void *sock;                 /* DEALER to the holder */
    sl_loop_watch_t *watch;
    char endpoint[SL_LEASE_ENDPOINT_MAX];
    uint64_t epoch;             /* of the holder frames were sent to (0 = none) */
    int live;                   /* the route names a holder now */
    /* Its frame's writer: its own for a stateful sink; for a stateless
     * one the sink's (in->sink_w): only the partition in->rr[sink] has a
     * frame open, and one buffer grown to a full frame, not `partitions`,
     * stays resident. */
    sl_wire_writer_t own, *w;
    int open;                   /* writer holds records */
    int touched;                /* got samples from the current notification */
    uint64_t opened_ms, first_n;
    uint64_t opened_us, opened_wait_us; /* sl_now_us() and the loop's wait_us then */
    uint64_t opened_routed;     /* in->routed[sink] then */
    int lingered;               /* held past batch_timeout_ms (counted once) */
    /* its kept frames count in kept_bytes: not for a sink with a reorder
     * window, whose frames wait that long by design */
    int budgeted;
    /* kept frames, a ring: [0, n_sent) sent and waiting for confirmation,
     * [n_sent, n) not sent yet */
    s_frame_t *q;
    size_t head, n, cap, n_sent;
} s_part_t;

typedef struct {
    sl_source_inst_t *src;
    uint64_t token;
    int failed;                 /* a frame holding it was not delivered (may heal) */
} s_tok_t;

typedef struct s_ingest {
    sl_worker_ctx_t *ctx;
    const sl_conf_t *conf;
    void *zctx;
    sl_loop_t *loop;
    sl_loop_timer_t *flush_timer;   /* armed while a frame is open (s_flush_due) */
    sl_zmon_t *zmon;            /* ZeroMQ socket monitor (common/zmon.h) */
    sl_leases_t *leases;
    unsigned n_sinks, partitions;
    s_part_t *parts;            /* [sink * partitions + p] */
    unsigned *rr;               /* per sink: current partition for stateless sinks */
    uint64_t *routed;           /* per sink: samples routed to it so far */
    sl_wire_writer_t *sink_w;   /* per sink: the writer of a stateless sink's frames */
    size_t n_sources;
    sl_source_inst_t *sources;
    uint32_t seq;
    uint64_t nseq;              /* notifications delivered so far */
    uint64_t cur_n;             /* the one being handled */
    /* tokens of unconfirmed notifications, a ring: tok[tok_head] is
     * notification nseq - tok_n */
    s_tok_t *tok;
    size_t tok_head, tok_n, tok_cap;
    size_t max_unconfirmed;
    size_t kept_bytes, kept_limit;
    size_t n_unsent;            /* partitions with frames not sent (recounted by s_send_all) */
    int paused;
    int draining;
    sl_arena_t arena;
    sl_buf_t ev_text;           /* an event's JSON text (sl_event_put) */
    yajl_gen ev_gen;            /* what sl_event_put escapes strings with */
    sl_env_keep_t *keep;        /* what decoding keeps of each message */
    sl_sample_t *samples;
    uint16_t *route;
    sl_ratelimit_t rl_drop, rl_convert, rl_send, rl_source;
} s_ingest_t;

static s_part_t *
s_part(s_ingest_t *in, unsigned sink, unsigned p)
{
    return &in->parts[(size_t) sink * in->partitions + p];
}

static size_t
s_nparts(const s_ingest_t *in)
{
    return (size_t) in->n_sinks * in->partitions;
}

static s_frame_t *
s_q(s_part_t *pt, size_t i)
{
    return &pt->q[(pt->head + i) % pt->cap];
}

/* --- sending and confirmations ------------------------------------------ */

/* Sends frames not sent yet while the socket takes them and the partition
 * has a holder. */
static void
s_send(s_ingest_t *in, s_part_t *pt)
{
    uint64_t t0 = SL_ST_DIRECT_BEGIN();
    int tried = 0;
    while (pt->live && pt->n_sent < pt->n) {
        tried = 1;
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_copy(&m, &s_q(pt, pt->n_sent)->msg);   /* shares the bytes */
        if (zmq_msg_send(&m, pt->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (errno == EAGAIN)
                SL_INC(in->ctx->slot, send_blocked, 1);
            else
                sl_log_limited(&in->rl_send, SL_LOG_WARN, "send to %s failed: %s; the frame "
                               "stays queued", pt->endpoint, zmq_strerror(errno));
            break;
        }
        SL_INC(in->ctx->slot, frames_sent, 1);
        pt->n_sent++;
    }
    /* a send may take the signal of a confirmation arriving meanwhile */
    if (tried)
        sl_loop_watch_touch(pt->watch);
    int unsent = pt->n_sent < pt->n;
    sl_loop_watch_set(pt->watch, SL_LOOP_IN | (unsent && pt->live ? SL_LOOP_OUT : 0));
    SL_ST_DIRECT_END(send, t0);
}

static void
s_send_all(s_ingest_t *in)
{
    in->n_unsent = 0;
    for (size_t i = 0; i < s_nparts(in); i++) {
        s_part_t *pt = &in->parts[i];
        if (pt->n_sent < pt->n)
            s_send(in, pt);
        in->n_unsent += pt->n_sent < pt->n;
    }
}

static void
s_keep(s_ingest_t *in, s_part_t *pt, const void *frame, size_t len)
{
    if (pt->n == pt->cap)   /* zmq_msg_t may be moved bytewise */
        pt->q = sl_xring_grow(pt->q, sizeof *pt->q, &pt->head, pt->n, &pt->cap, 16);
    s_frame_t *f = s_q(pt, pt->n);
    zmq_msg_init_size(&f->msg, len);
    memcpy(zmq_msg_data(&f->msg), frame, len);
    f->seq = pt->w->hdr.seq;
    f->acked = 0;
    f->first_n = pt->first_n;
    f->last_n = in->cur_n;
    pt->n++;
    if (pt->budgeted)
        in->kept_bytes += len;
    SL_INC(in->ctx->slot, frame_bytes, len);
}

static void
s_flush_part(s_ingest_t *in, s_part_t *pt)
{
    if (!pt->open)
        return;
    size_t len;
    const void *frame = sl_wire_writer_finish(pt->w, &len);
    pt->open = 0;
    /* A sink without state spreads its frames over every partition: the
     * next frame (full or timed out) goes to the next one. */
    unsigned sink = pt->w->hdr.sink;
    if (!sl_conf_sink(in->conf, sink)->stateful)
        in->rr[sink] = (in->rr[sink] + 1) % in->partitions;
    int had_unsent = pt->n_sent < pt->n;
    s_keep(in, pt, frame, len);
    s_send(in, pt);
    if (!had_unsent && pt->n_sent < pt->n)
        in->n_unsent++;
}

/* Frames of pt confirmed: drop them from the front. */
static void
s_pop_acked(s_ingest_t *in, s_part_t *pt)
{
    while (pt->n_sent && s_q(pt, 0)->acked) {
        s_frame_t *f = s_q(pt, 0);
        if (pt->budgeted)
            in->kept_bytes -= zmq_msg_size(&f->msg);
        zmq_msg_close(&f->msg);
        pt->head = (pt->head + 1) % pt->cap;
        pt->n--;
        pt->n_sent--;
    }
}

/* A publisher gave up on some of f's records: its notifications (and any
 * between its first and last: a frame does not list them) are requeued by
 * a source that can (SL_SOURCE_F_REQUEUE), else acked as today. */
static void
s_mark_failed(s_ingest_t *in, const s_frame_t *f)
{
    SL_INC(in->ctx->slot, frames_failed, 1);
    uint64_t first = in->nseq - in->tok_n;
    for (uint64_t n = f->first_n > first ? f->first_n : first; n <= f->last_n && n < in->nseq; n++)
        in->tok[(in->tok_head + (n - first)) % in->tok_cap].failed = 1;
}

static void
s_ack_message(s_ingest_t *in, s_part_t *pt, const void *data, size_t len)
{
    uint16_t sink;
    uint32_t p;
    size_t n;
    if (sl_wire_ack_decode(data, len, &sink, &p, &n) < 0 || sink != pt->sink || p != pt->p) {
        sl_log_limited(&in->rl_send, SL_LOG_WARN, "ignored a malformed confirmation of %zu bytes "
                       "from %s", len, pt->endpoint);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        uint32_t seq = sl_wire_ack_seq(data, k), failed = seq & SL_WIRE_ACK_FAILED;
        seq &= SL_WIRE_SEQ_MASK;
        size_t i = 0;
        while (i < pt->n_sent && (s_q(pt, i)->seq != seq || s_q(pt, i)->acked))
            i++;
        if (i == pt->n_sent) {
            SL_INC(in->ctx->slot, acks_unknown, 1);
            continue;
        }
        s_q(pt, i)->acked = 1;
        SL_INC(in->ctx->slot, frames_confirmed, 1);
        if (failed)
            s_mark_failed(in, s_q(pt, i));
    }
    s_pop_acked(in, pt);
}

static void
s_part_ready(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    s_part_t *pt = arg;
    s_ingest_t *in = pt->in;
    if (revents & SL_LOOP_IN) {
        for (int k = 0; k < 64; k++) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, pt->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m);
                break;
            }
            s_ack_message(in, pt, zmq_msg_data(&m), zmq_msg_size(&m));
            zmq_msg_close(&m);
        }
    }
    if (pt->n_sent < pt->n)
        s_send(in, pt);
}

/* The oldest notification that some frame (being filled, unsent or
 * unconfirmed) holds a record of; in->nseq if none. */
static uint64_t
s_oldest_held(s_ingest_t *in)
{
    uint64_t low = in->nseq;
    for (size_t i = 0; i < s_nparts(in); i++) {
        s_part_t *pt = &in->parts[i];
        if (pt->n && s_q(pt, 0)->first_n < low)
            low = s_q(pt, 0)->first_n;
        if (pt->open && pt->first_n < low)
            low = pt->first_n;
    }
    return low;
}

/* Acks, in order, every notification before the oldest one still held. */
static void
s_confirm(s_ingest_t *in)
{
    uint64_t low = s_oldest_held(in), first = in->nseq - in->tok_n;
    size_t done = 0;
    while (in->tok_n && first + done < low) {
        s_tok_t *t = &in->tok[in->tok_head];
        const sl_source_plugin_t *pl = t->src->plugin;
        if (t->failed && pl && (pl->flags & SL_SOURCE_F_REQUEUE)) {
            pl->nack(t->src, t->token);
            SL_INC(in->ctx->slot, notifications_requeued, 1);
        } else if (pl && pl->ack) {
            pl->ack(t->src, t->token);
        }
        in->tok_head = (in->tok_head + 1) % in->tok_cap;
        in->tok_n--;
        done++;
    }
    if (done)
        SL_INC(in->ctx->slot, notifications_confirmed, done);
}

/* Why the sources pause (0: they need not), in the order checked. */
enum { S_PAUSE_BLOCKED = 1, S_PAUSE_UNCONFIRMED, S_PAUSE_BUDGET };

/* paused: 0, or the reason (S_PAUSE_*), counted when the sources stop. */
static void
s_set_paused(s_ingest_t *in, int paused)
{
    if (!in->paused == !paused)
        return;
    in->paused = paused != 0;
    if (paused) {
        SL_INC(in->ctx->slot, source_pauses, 1);
        if (paused == S_PAUSE_BLOCKED)
            SL_INC(in->ctx->slot, pauses_blocked, 1);
        else if (paused == S_PAUSE_UNCONFIRMED)
            SL_INC(in->ctx->slot, pauses_unconfirmed, 1);
        else
            SL_INC(in->ctx->slot, pauses_budget, 1);
    }
    for (size_t i = 0; i < in->n_sources; i++)
        if (in->sources[i].plugin)
            sl_source_set_paused(&in->sources[i], paused);
}

static int
s_must_pause(const s_ingest_t *in)
{
    if (in->n_unsent)
        return S_PAUSE_BLOCKED;
    if (in->tok_n >= in->max_unconfirmed)
        return S_PAUSE_UNCONFIRMED;
    return in->kept_bytes >= in->kept_limit ? S_PAUSE_BUDGET : 0;
}

/* A source has nothing more until what it delivered is confirmed: send
 * the frames being filled now. */
static void
s_idle(void *core)
{
    s_ingest_t *in = core;
    for (size_t i = 0; i < s_nparts(in); i++)
        if (in->parts[i].open)
            s_flush_part(in, &in->parts[i]);
}

/* Before the loop waits: confirm, send what waits, pause or resume. */
static int
s_before_sleep(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_ingest_t *in = arg;
    if (in->n_unsent)
        s_send_all(in);
    s_confirm(in);
    s_set_paused(in, s_must_pause(in));
    return 0;
}

/* Routes changed: reconnect where the holder changed, and send again what
 * the previous holder did not confirm. */
static void
s_routes(s_ingest_t *in)
{
    if (sl_leases_refresh(in->leases) != 1)
        return;
    for (size_t i = 0; i < s_nparts(in); i++) {
        s_part_t *pt = &in->parts[i];
        sl_leases_route_t r;
        sl_leases_route(in->leases, pt->sink, pt->p, &r);
        pt->live = r.epoch != 0 && r.endpoint[0];
        if (!pt->live || (r.epoch == pt->epoch && strcmp(r.endpoint, pt->endpoint) == 0))
            continue;
        /* A new holder: a fresh connection (what ZeroMQ still queued for
         * the old one is dropped with it), then everything unconfirmed. */
        if (pt->endpoint[0])
            zmq_disconnect(pt->sock, pt->endpoint);
        pt->endpoint[0] = '\0';
        if (zmq_connect(pt->sock, r.endpoint) < 0) {
            sl_log_limited(&in->rl_send, SL_LOG_WARN, "cannot connect to %s: %s", r.endpoint,
                           zmq_strerror(errno));
            pt->live = 0;
            continue;
        }
        snprintf(pt->endpoint, sizeof pt->endpoint, "%s", r.endpoint);
        sl_zmon_endpoint(in->zmon, pt->sock, r.endpoint);
        if (pt->epoch && pt->n_sent) {
            SL_INC(in->ctx->slot, frames_resent, pt->n_sent);
            sl_debug("partition %s/%u has a new holder: sending %zu unconfirmed frames again",
                     sl_conf_sink_label(in->conf, pt->sink), pt->p, pt->n_sent);
        }
        pt->n_sent = 0;
        for (size_t k = 0; k < pt->n; k++)
            s_q(pt, k)->acked = 0;
        pt->epoch = r.epoch;
    }
    s_send_all(in);
}

static void s_flush_due(sl_loop_t *loop, void *arg);

static void
s_add(s_ingest_t *in, unsigned sink, const sl_sample_t *smp)
{
    const sl_sink_t *sk = sl_conf_sink(in->conf, sink);
    unsigned p;
    if (sk->stateful)
        p = (unsigned) (sl_pipeline_group_hash(sk, smp) % in->partitions);
    else
        p = in->rr[sink];   /* any partition; advanced per frame */
    s_part_t *pt = s_part(in, sink, p);
    if (!pt->open) {
        sl_wire_header_t h = {
            .sink = (uint16_t) sink, .partition = p, .generation = in->ctx->generation,
            .origin = (uint32_t) in->ctx->slot_index, .seq = in->seq = (in->seq + 1) & SL_WIRE_SEQ_MASK,
            .read_us = SL_ST_READ_US(),
        };
        sl_wire_writer_begin(pt->w, &h);
        pt->open = 1;
        pt->lingered = 0;
        pt->opened_ms = sl_loop_now(in->loop);
        pt->opened_us = sl_now_us();
        pt->opened_wait_us = sl_loop_stats(in->loop)->wait_us;
        pt->opened_routed = in->routed[sink];
        pt->first_n = in->cur_n;
        if (!in->flush_timer)
            in->flush_timer = sl_loop_after(in->loop, in->conf->batch_timeout_ms, s_flush_due, in);
    }
    sl_wire_writer_add(pt->w, smp, 0);
    pt->touched = 1;
    in->routed[sink]++;
    SL_SINC(in->ctx->slot, sink, routed, 1);
}

/* A frame is full at batch_size samples or batch_max_bytes. */
static int
s_frame_full(const s_ingest_t *in, const s_part_t *pt)
{
    return pt->w->hdr.count >= in->conf->batch_size ||
           sl_wire_writer_bytes(pt->w) >= in->conf->batch_max_bytes;
}

/* After a notification: flag its last sample in each frame it touched, and
 * send frames that are full. */
static void
s_end_notification(s_ingest_t *in)
{
    for (size_t i = 0; i < s_nparts(in); i++) {
        s_part_t *pt = &in->parts[i];
        if (!pt->touched)
            continue;
        pt->touched = 0;
        sl_wire_writer_mark_end(pt->w);
        if (s_frame_full(in, pt))
            s_flush_part(in, pt);
    }
}

/* Events take their own path, as Ceilometer's do: event_definitions.yaml,
 * then event_pipeline.yaml's sources select event sinks (indexed after the
 * sample sinks). An event travels as a wire record whose name is the
 * event_type and whose resource_metadata is the event's JSON (wire.h). */
static void
s_events(s_ingest_t *in, const sl_notification_t *n)
{
    sl_event_t ev;
    sl_event_stats_t es;
    memset(&es, 0, sizeof es);
    if (sl_events_convert(in->conf->events, n, &in->arena, &ev, &es) != 1) {
        SL_INC(in->ctx->slot, events_dropped, es.failed);
        /* Ceilometer's ack_on_event_error=false: requeue it, once */
        s_tok_t *t = in->tok_n ? &in->tok[(in->tok_head + in->tok_n - 1) % in->tok_cap] : NULL;
        if (es.failed && t && t->src->requeue_event_errors && !t->src->redelivered)
            t->failed = 1;
        return;
    }
    SL_INC(in->ctx->slot, events_converted, 1);
    size_t nr = sl_pipeline_route(in->conf->event_pipeline, ev.event_type, in->route, SL_MAX_SINKS);
    if (!nr) {
        SL_INC(in->ctx->slot, events_unrouted, 1);
        return;
    }
    sl_sample_t rec;
    memset(&rec, 0, sizeof rec);
    rec.name = ev.event_type;
    rec.message_id = ev.message_id;
    rec.timestamp = ev.generated;
    sl_buf_reset(&in->ev_text);
    rec.resource_metadata = sl_event_put(&in->ev_text, &in->ev_gen, &ev) == 0
                            ? sl_arena_strndup(&in->arena, in->ev_text.p, in->ev_text.n) : NULL;
    SL_INC(in->ctx->slot, events_routed, nr);
    for (size_t r = 0; r < nr; r++)
        s_add(in, (unsigned) in->conf->pipeline->n_sinks + in->route[r], &rec);
}

static void
s_handle(s_ingest_t *in, const char *buf, size_t len)
{
    sl_slot_t *slot = in->ctx->slot;
    char err[256];
    sl_notification_t n;
    SL_INC(slot, received, 1);
    sl_env_status_t st = sl_envelope_decode_keep(buf, len, in->conf->max_message_size, in->keep,
                                                 &n, err, sizeof err);
    switch (st) {
    case SL_ENV_OK:
        break;
#define X(name, help) \
    case SL_ENV_ERR_##name: \
        SL_INC(slot, drop_##name, 1); \
        break;
    SL_ENV_ERRORS(X)
#undef X
    default:
        break;
    }
    if (st != SL_ENV_OK) {
        sl_log_limited(&in->rl_drop, SL_LOG_WARN, "dropped notification (%s): %s; see the "
                       "drop_* counters in sluice-monitor", sl_env_status_name(st), err);
        return;
    }
    SL_INC(slot, decoded, 1);
    SL_ST_LAP(convert);
    sl_arena_reset(&in->arena);
    if (in->conf->events)
        s_events(in, &n);
    if (n.priority != SL_PRIO_INFO && n.priority != SL_PRIO_SAMPLE) {
        SL_INC(slot, no_sample_priority, 1);
        s_end_notification(in);
        sl_notification_clear(&n);
        return;
    }
    sl_convert_stats_t cs;
    memset(&cs, 0, sizeof cs);
    size_t ns = sl_meters_convert(in->conf->meters, &n, &in->arena, in->samples,
                                  S_MAX_SAMPLES_PER_NOTIFICATION, &cs);
    SL_ST_LAP(serialise);
    SL_INC(slot, no_definition, cs.no_definition);
    SL_INC(slot, convert_skipped, cs.skipped);
    SL_INC(slot, convert_failed, cs.failed);
    if (cs.failed)
        sl_log_limited(&in->rl_convert, SL_LOG_WARN, "notification %s (%s): a meter definition "
                       "raised where Ceilometer's would (a timestamp it cannot parse, an index "
                       "on a dict, a JSONPath over its memory limit, ...), so its samples are "
                       "lost, as there; counted in convert_failed: check the definitions of "
                       "this event type", n.message_id ? n.message_id : "without message_id",
                       n.event_type ? n.event_type : "no event_type");
    SL_INC(slot, samples_converted, ns);
    if (in->conf->sample_ids)
        sl_sample_stable_ids(in->samples, ns, n.message_id, &in->arena);
    for (size_t i = 0; i < ns; i++) {
        /* Ceilometer's sample_source, except for samples that carry their
         * own (telemetry.polling). */
        if (in->samples[i].source == sl_meters_default_source)
            in->samples[i].source = in->conf->sample_source;
        size_t nr = sl_pipeline_route(in->conf->pipeline, in->samples[i].name, in->route, SL_MAX_SINKS);
        if (!nr)
            SL_INC(slot, samples_unrouted, 1);
        SL_INC(slot, samples_routed, nr);
        for (size_t r = 0; r < nr; r++)
            s_add(in, in->route[r], &in->samples[i]);
    }
    s_end_notification(in);
    sl_notification_clear(&n);
}

/* A source's notification: number it, keep its token until confirmed,
 * handle it; pause the sources when the worker cannot take more. */
static void
s_deliver(void *core, sl_source_inst_t *src, uint64_t token, const char *buf, size_t len)
{
    s_ingest_t *in = core;
    if (in->tok_n == in->tok_cap)
        in->tok = sl_xring_grow(in->tok, sizeof *in->tok, &in->tok_head, in->tok_n,
                                &in->tok_cap, 1024);
    in->tok[(in->tok_head + in->tok_n) % in->tok_cap] = (s_tok_t) { src, token, 0 };
    in->tok_n++;
    in->cur_n = in->nseq++;
    SL_ST_BEGIN(read, decode);
    s_handle(in, buf, len);
    SL_ST_END(1);
    int why = s_must_pause(in);
    if (why)
        s_set_paused(in, why);
}

/* --- timers -------------------------------------------------------------- */

/* A frame is sent batch_timeout_ms after its first record at the latest,
 * or, up to batch_linger_ms if that is larger, when the worker has been
 * busy since the frame opened (its loop waited less than a quarter of that
 * time: S_LINGER_IDLE) or when the frame's sink as a whole took at least
 * batch_size samples meanwhile (s_sink_fills). A loaded worker so sends
 * fuller frames, which cost both kinds of worker less per sample (a
 * partitioned sink's frames fill `partitions` times more slowly than a
 * stateless sink's, and every frame costs a send, a wakeup, a confirmation
 * and a publisher call); its input waits anyway. Below that load the loop
 * waits between reads and batch_timeout_ms bounds the wait. The one-shot
 * timer is armed when a frame opens and none is armed; when it runs it
 * sends every frame that is due and arms itself again for the next
 * deadline (every millisecond while a frame is held past batch_timeout_ms,
 * to see the worker become idle). An idle worker has no flush timer at
 * all. */
#define S_LINGER_IDLE 4         /* lingers while waited * S_LINGER_IDLE < age */
/* Whether the loop waited less than 1/S_LINGER_IDLE of the time since pt
 * opened, over at least timeout_ms (microseconds: the loop's clock is in
 * milliseconds, and a frame opened late in one may be due early in the
 * next). */
static int
s_busy_since(const s_ingest_t *in, const s_part_t *pt, uint64_t timeout_ms)
{
    uint64_t age_us = sl_now_us() - pt->opened_us;
    uint64_t waited_us = sl_loop_stats(in->loop)->wait_us - pt->opened_wait_us;
    return age_us >= timeout_ms * 1000 && waited_us * S_LINGER_IDLE < age_us;
}

/* Whether pt's sink took a full frame's worth of samples (batch_size)
 * since pt opened: across its partitions it fills a frame within a
 * frame's age. Then the sink's input is heavy enough for the frames to be
 * worth filling, whether or not this worker waits for input meanwhile (on
 * 2 CPUs shared with its producer and the pipeline workers it does, about
 * a third of the time, at the machine's maximum rate). A stateless sink's
 * one open frame is full, and sent, at that count: never applies there. */
static int
s_sink_fills(const s_ingest_t *in, const s_part_t *pt)
{
    return in->routed[pt->sink] - pt->opened_routed >= in->conf->batch_size;
}

static void
s_flush_due(sl_loop_t *loop, void *arg)
{
    s_ingest_t *in = arg;
    uint64_t now = sl_loop_now(loop), next = UINT64_MAX;
    uint64_t timeout = in->conf->batch_timeout_ms, linger = in->conf->batch_linger_ms;
    in->flush_timer = NULL;
    for (size_t i = 0; i < s_nparts(in); i++) {
        s_part_t *pt = &in->parts[i];
        if (!pt->open)
            continue;
        uint64_t age = now - pt->opened_ms;
        if (age < timeout) {
            if (pt->opened_ms + timeout < next)
                next = pt->opened_ms + timeout;
        } else if (linger > timeout && age < linger &&
                   (s_sink_fills(in, pt) || s_busy_since(in, pt, timeout))) {
            SL_INC(in->ctx->slot, frames_lingered, pt->lingered ? 0 : 1);
            pt->lingered = 1;
            if (now + 1 < next)
                next = now + 1;
        } else {
            s_flush_part(in, pt);
        }
    }
    if (next != UINT64_MAX)
        in->flush_timer = sl_loop_after(loop, (unsigned) (next - now), s_flush_due, in);
}

static void
s_route_tick(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_routes(arg);
}

static void
s_beat(sl_loop_t *loop, void *arg)
{
    s_ingest_t *in = arg;
    sl_worker_beat(in->ctx);
    if (sl_worker_orphaned(in->ctx))
        sl_worker_stop = 1;   /* supervisor gone */
    if (sl_worker_stop || (sl_worker_drain && !in->draining))
        sl_loop_break(loop);
}

/* --- set-up and stop ----------------------------------------------------- */

static int
s_open_sources(s_ingest_t *in, char *err, size_t errlen)
{
    const sl_conf_t *c = in->conf;
    in->n_sources = c->n_sources;
    in->sources = sl_xcalloc(c->n_sources + 1, sizeof *in->sources);
    for (size_t i = 0; i < c->n_sources; i++) {
        sl_source_inst_t *s = &in->sources[i];
        s->plugin = sl_source_plugin(c->sources[i].type->name);
        if (!s->plugin) {
            snprintf(err, errlen, "source type %s has no plugin in this build",
                     c->sources[i].type->name);
            return -1;
        }
        s->env = (sl_source_env_t) {
            .conf = c, .sc = &c->sources[i], .index = i, .worker = in->ctx->index,
            .n_workers = c->n_ingest, .loop = in->loop, .slot = in->ctx->slot,
            .zctx = in->zctx, .rl = &in->rl_source, .deliver = s_deliver, .idle = s_idle,
            .core = in, .zmon = in->zmon,
            .stop_id = in->ctx->shm->started_ms * 1000003u + in->ctx->generation,
        };
        if (s->plugin->init(s, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static void
s_cleanup(s_ingest_t *in)
{
    /* What is not confirmed now will not be: sources that can give it
     * back (a file position, a broker) will. */
    size_t left = in->tok_n;
    while (in->tok_n) {
        s_tok_t *t = &in->tok[in->tok_head];
        if (t->src->plugin && t->src->plugin->nack)
            t->src->plugin->nack(t->src, t->token);
        in->tok_head = (in->tok_head + 1) % in->tok_cap;
        in->tok_n--;
    }
    if (left)
        SL_INC(in->ctx->slot, notifications_unconfirmed, left);
    for (size_t i = 0; i < in->n_sources; i++)
        if (in->sources[i].plugin)
            sl_source_close(&in->sources[i]);
    for (size_t i = 0; i < s_nparts(in); i++) {
        s_part_t *pt = &in->parts[i];
        for (size_t k = 0; k < pt->n; k++)
            zmq_msg_close(&s_q(pt, k)->msg);
        free(pt->q);
        sl_wire_writer_free(&pt->own);
        if (pt->watch)
            sl_loop_unwatch(in->loop, &pt->watch);
        if (pt->sock) {
            int zero = 0;
            sl_zmon_detach(in->zmon, pt->sock);
            zmq_setsockopt(pt->sock, ZMQ_LINGER, &zero, sizeof zero);
            zmq_close(pt->sock);
        }
    }
    free(in->sources);
    free(in->parts);
    for (unsigned s = 0; in->sink_w && s < in->n_sinks; s++)
        sl_wire_writer_free(&in->sink_w[s]);
    free(in->sink_w);
    free(in->rr);
    free(in->routed);
    free(in->samples);
    free(in->route);
    free(in->tok);
    sl_arena_destroy(&in->arena);
    sl_buf_free(&in->ev_text);
    if (in->ev_gen)
        yajl_gen_free(in->ev_gen);
    sl_env_keep_destroy(&in->keep);
    sl_leases_destroy(&in->leases);
    sl_zmon_destroy(&in->zmon);
    sl_loop_destroy(&in->loop);
    sl_worker_zmq_term(in->zctx, SL_WORKER_ZTERM_MS);
}

/* Stopping: sources deliver what they hold locally and take no more; the
 * frames go out; the worker waits (within shutdown_grace) until the
 * pipeline workers have confirmed everything. */
static void
s_drain(s_ingest_t *in)
{
    in->draining = 1;
    sl_worker_set_state(in->ctx, SL_WS_DRAINING);
    sl_worker_title("sluice: ingest #%d [draining]", in->ctx->index);
    uint64_t deadline = sl_now_ms() + (uint64_t) in->conf->shutdown_grace * 1000;
    for (;;) {
        int busy = 0;
        for (size_t i = 0; i < in->n_sources; i++) {
            sl_source_inst_t *s = &in->sources[i];
            if (s->plugin && s->plugin->drain && s->plugin->drain(s))
                busy = 1;
            else if (s->plugin)
                sl_source_set_paused(s, 1);
        }
        if (!busy)
            break;
        sl_loop_run_once(in->loop, 5);
        if (sl_worker_stop || sl_now_ms() >= deadline)
            break;
    }
    for (size_t i = 0; i < in->n_sources; i++)
        if (in->sources[i].plugin)
            sl_source_set_paused(&in->sources[i], 1);
    in->paused = 1;
    for (size_t i = 0; i < s_nparts(in); i++)
        s_flush_part(in, &in->parts[i]);
    while (!sl_worker_stop && sl_now_ms() < deadline) {
        s_confirm(in);
        if (!in->tok_n)
            break;
        sl_loop_run_once(in->loop, 10);
    }
    s_confirm(in);
    if (in->tok_n)
        sl_warn("drain: %zu notifications were not confirmed within shutdown_grace (are the "
                "pipeline workers or their publishers stuck?); a file source reads them again "
                "at the next start, a zmq source has lost them", in->tok_n);
}

int
sl_ingest_run(sl_worker_ctx_t *ctx)
{
    s_ingest_t in;
    memset(&in, 0, sizeof in);
    in.ctx = ctx;
    in.conf = ctx->conf;
    sl_stage_start(ctx->slot);
    in.n_sinks = (unsigned) sl_conf_n_sinks(ctx->conf);
    in.partitions = ctx->conf->partitions;
    sl_worker_place(ctx, 1);
    in.zctx = zmq_ctx_new();
    in.loop = sl_loop_new();
    in.zmon = sl_zmon_new(in.zctx, in.loop, &ctx->slot->zmon);
    in.max_unconfirmed = in.conf->max_unconfirmed;
    in.kept_limit = (size_t) sl_conf_kept_limit(in.conf);
    sl_arena_init(&in.arena, 0);
    in.keep = sl_env_keep_new(in.conf->meters, in.conf->events);
    in.samples = sl_xcalloc(S_MAX_SAMPLES_PER_NOTIFICATION, sizeof *in.samples);
    in.route = sl_xcalloc(SL_MAX_SINKS, sizeof *in.route);
    in.rr = sl_xcalloc(in.n_sinks ? in.n_sinks : 1, sizeof *in.rr);
    in.routed = sl_xcalloc(in.n_sinks ? in.n_sinks : 1, sizeof *in.routed);
    in.parts = sl_xcalloc(s_nparts(&in) + 1, sizeof *in.parts);
    in.sink_w = sl_xcalloc(in.n_sinks ? in.n_sinks : 1, sizeof *in.sink_w);
    for (unsigned s = 0; s < in.n_sinks; s++) {
        in.rr[s] = (unsigned) ctx->index % in.partitions;
        sl_wire_writer_init(&in.sink_w[s]);
        int stateful = sl_conf_sink(in.conf, s)->stateful;
        int budgeted = !sl_conf_sink(in.conf, s)->reorder_window_ms;
        for (unsigned p = 0; p < in.partitions; p++) {
            s_part_t *pt = s_part(&in, s, p);
            pt->in = &in;
            pt->sink = s;
            pt->p = p;
            sl_wire_writer_init(&pt->own);
            pt->w = stateful ? &pt->own : &in.sink_w[s];
            pt->budgeted = budgeted;
            pt->sock = zmq_socket(in.zctx, ZMQ_DEALER);
            int hwm = (int) sl_conf_frame_hwm(in.conf), zero = 0;
            zmq_setsockopt(pt->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt(pt->sock, ZMQ_LINGER, &zero, sizeof zero);
            sl_zmon_attach(in.zmon, pt->sock, "to-partition", NULL, NULL, NULL);
            pt->watch = sl_loop_watch_zmq(in.loop, pt->sock, SL_LOOP_IN, s_part_ready, pt);
        }
    }
    char err[1024];
    in.leases = sl_leases_new(ctx, SL_LEASES_READER, err, sizeof err);
    if (!in.leases) {
        sl_error("coordination: %s", err);
        s_cleanup(&in);
        return 2;
    }
    if (s_open_sources(&in, err, sizeof err) < 0) {
        sl_error("%s", err);
        s_cleanup(&in);
        return 2;
    }
    s_routes(&in);
    sl_loop_every(in.loop, S_ROUTE_MS, 0, s_route_tick, &in);
    sl_loop_every(in.loop, S_BEAT_MS, 1, s_beat, &in);
    sl_loop_before_sleep(in.loop, s_before_sleep, &in);
    sl_worker_set_state(ctx, SL_WS_RUNNING);
    size_t n_ctx;
    int all_ctx = sl_env_keep_all_context(in.keep, &n_ctx);
    sl_info("ingest worker #%d running: %zu sources, %u sinks x %u partitions, keeps up to "
            "%.1f MiB of frames until confirmed (its share of queue_memory); decoding keeps "
            "%s _context_* keys; JSON read by simdjson (%s kernel), yajl for what it declines",
            ctx->index, in.n_sources, in.n_sinks, in.partitions,
            (double) in.kept_limit / (1024.0 * 1024.0),
            all_ctx ? "all" : n_ctx ? "the definitions'" : "no", sl_json_simd_kernel());
    sl_loop_run(in.loop, &sl_worker_stop, 50);
    if (!sl_worker_stop)
        s_drain(&in);
    s_cleanup(&in);
    sl_info("ingest worker #%d stopped", ctx->index);
    return 0;
}
