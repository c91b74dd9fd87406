/* Ingest worker: sources -> decode -> convert -> route -> batched PUSH.
 *
 * One loop. Sources are read only while no frame is waiting for a full
 * socket (back-pressure: a PUSH that would block keeps the frame queued on
 * its partition and pauses the sources, never drops). Each (sink, partition)
 * has a PUSH socket connected to the partition's endpoint, from the lease
 * table; frames are sent when a batch is full or older than
 * batch_timeout_ms. The last sample of every notification is flagged in the
 * frame (a transformer flush point). */
#include "worker/worker.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/coord.h"
#include "common/envelope.h"
#include "common/log.h"
#include "common/meters.h"
#include "common/wire.h"

#define S_MAX_SAMPLES_PER_NOTIFICATION 512
#define S_READ_BURST 256
#define S_READ_CHUNK 65536

typedef struct s_pending {
    struct s_pending *next;
    zmq_msg_t msg;
} s_pending_t;

typedef struct {
    void *sock;
    char endpoint[SL_LEASE_ENDPOINT_MAX];
    sl_wire_writer_t w;
    int open;                   /* writer holds records */
    int touched;                /* got samples from the current notification */
    uint64_t opened_ms;
    s_pending_t *pending, *pending_tail;
} s_part_t;

typedef struct {
    sl_source_kind_t kind;
    FILE *file;
    unsigned long line_no;
    int eof;
    void *sock;
    void *monitor;          /* zmq: PAIR receiving the source socket's events */
    uint64_t lost_ms;       /* zmq connect mode: disconnected then, no reconnect seen yet */
    /* file: a bounded line reader, so that a line of any length costs at
     * most max_message_size + S_READ_CHUNK bytes (getline once took 533 MB
     * for one 512 MiB line) */
    char *buf;
    size_t cap, start, end;
    int read_eof;
    int skipping;           /* inside a line longer than max_message_size */
    size_t skipped;         /* its bytes so far */
    double per_ms;          /* file rate: lines of this worker per ms (0 = unlimited) */
    double credit;
    uint64_t credit_ms;
} s_source_t;

typedef struct {
    sl_worker_ctx_t *ctx;
    const sl_conf_t *conf;
    void *zctx;
    unsigned n_sinks, partitions;
    s_part_t *parts;            /* [sink * partitions + p] */
    unsigned *rr;               /* per sink: current partition for stateless sinks */
    size_t n_sources;
    s_source_t *sources;
    size_t n_pending;           /* partitions with queued frames */
    uint32_t seq;
    uint64_t lease_version;
    sl_arena_t arena;
    sl_sample_t *samples;
    uint16_t *route;
    int zmq_only;               /* draining: read what ZeroMQ already holds, no files */
    sl_coord_t *coord;          /* memcached backend: lease owners come from there */
    sl_coord_lease_t *coord_leases;
    uint64_t coord_polled;
    char host_id[32];
    sl_ratelimit_t rl_drop, rl_send, rl_convert;
} s_ingest_t;

static s_part_t *
s_part(s_ingest_t *in, unsigned sink, unsigned p)
{
    return &in->parts[(size_t) sink * in->partitions + p];
}

/* Connects each partition socket to the endpoint its lease names (or to the
 * partition's well-known ipc endpoint before any owner has bound it, so that
 * frames queue in ZeroMQ until the owner appears). */
static void
s_connect(s_ingest_t *in, s_part_t *pt, const char *want)
{
    if (strcmp(want, pt->endpoint) == 0)
        return;
    if (pt->endpoint[0])
        zmq_disconnect(pt->sock, pt->endpoint);
    pt->endpoint[0] = '\0';
    if (!want[0])
        return;
    if (zmq_connect(pt->sock, want) < 0) {
        sl_log_limited(&in->rl_send, SL_LOG_WARN, "cannot connect to %s: %s", want,
                       zmq_strerror(errno));
        return;
    }
    snprintf(pt->endpoint, sizeof pt->endpoint, "%s", want);
}

/* memcached backend: owners (and their tcp endpoints) of every partition,
 * polled a few times per heartbeat. A partition without a live owner keeps
 * its last connection: frames queue there, then back-pressure. */
static void
s_resolve_coord(s_ingest_t *in)
{
    uint64_t now = sl_now_ms();
    if (now - in->coord_polled < in->conf->coord_heartbeat_ms / 4 + 1)
        return;
    in->coord_polled = now;
    if (sl_coord_leases_get_all(in->coord, in->n_sinks, in->partitions, in->coord_leases) < 0) {
        sl_log_limited(&in->rl_send, SL_LOG_WARN, "memcached: cannot read the partition owners; "
                       "keeping the current connections");
        return;
    }
    for (size_t i = 0; i < (size_t) in->n_sinks * in->partitions; i++) {
        const sl_coord_lease_t *l = &in->coord_leases[i];
        if (!l->owner[0])
            continue;
        /* "tcp://...|ipc://...": ipc when the owner runs on this host. */
        char want[SL_COORD_ENDPOINT_MAX];
        snprintf(want, sizeof want, "%s", l->endpoint);
        char *bar = strchr(want, '|');
        if (bar) {
            size_t hl = strlen(in->host_id);
            if (strncmp(l->owner, in->host_id, hl) == 0 && l->owner[hl] == ':')
                memmove(want, bar + 1, strlen(bar + 1) + 1);
            else
                *bar = '\0';
        }
        s_connect(in, &in->parts[i], want);
    }
}

static void
s_resolve_leases(s_ingest_t *in)
{
    if (in->coord) {
        s_resolve_coord(in);
        return;
    }
    const sl_lease_table_t *t = sl_shm_leases(in->ctx->shm);
    uint64_t v = sl_lease_version(t);
    if (v == in->lease_version && in->lease_version)
        return;
    in->lease_version = v ? v : 1;
    for (unsigned s = 0; s < in->n_sinks; s++) {
        for (unsigned p = 0; p < in->partitions; p++) {
            s_part_t *pt = s_part(in, s, p);
            sl_lease_info_t li;
            char want[SL_LEASE_ENDPOINT_MAX];
            if (sl_lease_get(t, s, p, &li) == 0 && li.owner >= 0 && li.endpoint[0])
                snprintf(want, sizeof want, "%s", li.endpoint);
            else
                sl_worker_partition_endpoint(in->conf, s, p, want, sizeof want);
            s_connect(in, pt, want);
        }
    }
}

static int
s_queue(s_ingest_t *in, s_part_t *pt, const void *frame, size_t len)
{
    s_pending_t *q = sl_xmalloc(sizeof *q);
    zmq_msg_init_size(&q->msg, len);
    memcpy(zmq_msg_data(&q->msg), frame, len);
    q->next = NULL;
    if (!pt->pending)
        in->n_pending++;
    if (pt->pending_tail)
        pt->pending_tail->next = q;
    else
        pt->pending = q;
    pt->pending_tail = q;
    return 0;
}

/* Sends queued frames of pt while the socket accepts them. */
static void
s_send_pending(s_ingest_t *in, s_part_t *pt)
{
    while (pt->pending) {
        s_pending_t *q = pt->pending;
        if (zmq_msg_send(&q->msg, pt->sock, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN)
                sl_log_limited(&in->rl_send, SL_LOG_WARN, "send to %s failed: %s",
                               pt->endpoint, zmq_strerror(errno));
            return;
        }
        SL_INC(in->ctx->slot, frames_sent, 1);
        pt->pending = q->next;
        if (!pt->pending) {
            pt->pending_tail = NULL;
            in->n_pending--;
        }
        zmq_msg_close(&q->msg);
        free(q);
    }
}

/* Tries every partition's queued frames once; returns how many partitions
 * still have frames queued. */
static size_t
s_send_all_pending(s_ingest_t *in)
{
    for (size_t i = 0; i < (size_t) in->n_sinks * in->partitions && in->n_pending; i++)
        if (in->parts[i].pending)
            s_send_pending(in, &in->parts[i]);
    return in->n_pending;
}

static void
s_nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static void
s_flush_part(s_ingest_t *in, s_part_t *pt)
{
    if (!pt->open)
        return;
    size_t len;
    const void *frame = sl_wire_writer_finish(&pt->w, &len);
    pt->open = 0;
    /* A sink without state spreads its frames over every partition: the
     * next frame (full or timed out) goes to the next one. */
    unsigned sink = pt->w.hdr.sink;
    if (!sl_conf_sink(in->conf, sink)->stateful)
        in->rr[sink] = (in->rr[sink] + 1) % in->partitions;
    if (pt->pending) {
        s_queue(in, pt, frame, len);
        return;
    }
    if (zmq_send(pt->sock, frame, len, ZMQ_DONTWAIT) < 0) {
        if (errno == EAGAIN) {
            SL_INC(in->ctx->slot, send_blocked, 1);
        } else {
            sl_log_limited(&in->rl_send, SL_LOG_WARN, "send to %s failed: %s; frame queued",
                           pt->endpoint, zmq_strerror(errno));
        }
        s_queue(in, pt, frame, len);
        return;
    }
    SL_INC(in->ctx->slot, frames_sent, 1);
}

static void
s_flush_all(s_ingest_t *in, uint64_t older_than_ms)
{
    uint64_t now = sl_now_ms();
    for (size_t i = 0; i < (size_t) in->n_sinks * in->partitions; i++) {
        s_part_t *pt = &in->parts[i];
        if (pt->open && (older_than_ms == 0 || now - pt->opened_ms >= older_than_ms))
            s_flush_part(in, pt);
    }
}

static void
s_add(s_ingest_t *in, unsigned sink, const sl_sample_t *smp)
{
    const sl_sink_t *sk = sl_conf_sink(in->conf, sink);
    unsigned p;
    if (sk->stateful)
        p = (unsigned) (sl_pipeline_group_hash(sk, smp) % in->partitions);
    else
        p = in->rr[sink];   /* any partition; advanced per frame below */
    s_part_t *pt = s_part(in, sink, p);
    if (!pt->open) {
        sl_wire_header_t h = {
            .sink = (uint16_t) sink, .partition = p, .generation = in->ctx->generation,
            .origin = (uint32_t) in->ctx->slot_index, .seq = ++in->seq,
        };
        sl_wire_writer_begin(&pt->w, &h);
        pt->open = 1;
        pt->opened_ms = sl_now_ms();
    }
    sl_wire_writer_add(&pt->w, smp, 0);
    pt->touched = 1;
    SL_SINC(in->ctx->slot, sink, routed, 1);
}

/* A frame is full at batch_size samples or batch_max_bytes. */
static int
s_frame_full(const s_ingest_t *in, const s_part_t *pt)
{
    return pt->w.hdr.count >= in->conf->batch_size ||
           sl_wire_writer_bytes(&pt->w) >= in->conf->batch_max_bytes;
}

/* After a notification: flag its last sample in each frame it touched, and
 * send frames that are full. */
static void
s_end_notification(s_ingest_t *in)
{
    for (size_t i = 0; i < (size_t) in->n_sinks * in->partitions; i++) {
        s_part_t *pt = &in->parts[i];
        if (!pt->touched)
            continue;
        pt->touched = 0;
        sl_wire_writer_mark_end(&pt->w);
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
    rec.resource_metadata = sl_event_json(&in->arena, &ev);
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
    sl_env_status_t st = sl_envelope_decode(buf, len, in->conf->max_message_size, &n, err, sizeof err);
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
    SL_INC(slot, no_definition, cs.no_definition);
    SL_INC(slot, convert_skipped, cs.skipped);
    SL_INC(slot, convert_failed, cs.failed);
    SL_INC(slot, samples_converted, ns);
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

/* The next line of a file source (without its newline) into *line, *len.
 * A line longer than max comes back with *oversized set, *len its full
 * length and only a part of it in *line (never read: the decoder refuses
 * it by length). Returns 1, or 0 at the end of the file. */
static int
s_next_line(s_source_t *s, size_t max, const char **line, size_t *len, int *oversized)
{
    if (!s->buf) {
        s->cap = max + S_READ_CHUNK;
        s->buf = sl_xmalloc(s->cap);
    }
    for (;;) {
        size_t have = s->end - s->start;
        char *nl = memchr(s->buf + s->start, '\n', have);
        if (nl || (s->read_eof && (have || s->skipping))) {
            size_t n = nl ? (size_t) (nl - (s->buf + s->start)) : have;
            *line = s->buf + s->start;
            *len = s->skipped + n;
            *oversized = s->skipping || n > max;
            s->start += n + (nl != NULL);
            s->skipping = 0;
            s->skipped = 0;
            return 1;
        }
        if (s->read_eof)
            return 0;
        if (have > max) {   /* too long already: keep counting, not storing */
            s->skipping = 1;
            s->skipped += have;
            s->start = s->end = 0;
            have = 0;
        }
        if (s->start > 0) {
            memmove(s->buf, s->buf + s->start, have);
            s->start = 0;
            s->end = have;
        }
        size_t got = fread(s->buf + s->end, 1, s->cap - s->end, s->file);
        s->end += got;
        if (got == 0)
            s->read_eof = 1;    /* end of file, or a read error: both end the source */
    }
}

/* zmq source events. ZeroMQ cuts a connection whose peer sends a message
 * over max_message_size (ZMQ_MAXMSGSIZE) or breaks the protocol, without
 * saying why, and the connecting side then never reconnects (a protocol
 * error ends its session). So every disconnect is counted; in connect
 * mode a disconnect that no reconnect attempt follows within 200 ms was
 * such a cut, and the worker connects again. In bind mode the producer
 * reconnects by itself; the log line says what may have happened. */
static void
s_poll_monitors(s_ingest_t *in)
{
    uint64_t now = sl_now_ms();
    for (size_t i = 0; i < in->n_sources; i++) {
        s_source_t *s = &in->sources[i];
        const sl_source_conf_t *sc = &in->conf->sources[i];
        if (!s->monitor)
            continue;
        for (;;) {
            zmq_msg_t ev, addr;
            zmq_msg_init(&ev);
            if (zmq_msg_recv(&ev, s->monitor, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&ev);
                break;
            }
            uint16_t id = 0;
            if (zmq_msg_size(&ev) >= 2)
                memcpy(&id, zmq_msg_data(&ev), 2);
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, s->monitor, ZMQ_DONTWAIT);
            zmq_msg_close(&addr);
            zmq_msg_close(&ev);
            if (id != ZMQ_EVENT_DISCONNECTED) {
                s->lost_ms = 0;         /* the session lives: it reconnects */
                continue;
            }
            SL_INC(in->ctx->slot, source_disconnects, 1);
            if (!sc->bind)
                s->lost_ms = now ? now : 1;
            else
                sl_log_limited(&in->rl_drop, SL_LOG_WARN, "zmq source %s: a producer "
                               "disconnected (if it did not close its socket, ZeroMQ cut it off "
                               "for a message over max_message_size = %llu bytes or a protocol "
                               "error; what it had queued is lost)", sc->endpoint,
                               (unsigned long long) in->conf->max_message_size);
        }
        if (s->lost_ms && now - s->lost_ms >= 200 && s->sock) {
            s->lost_ms = 0;
            sl_log_limited(&in->rl_drop, SL_LOG_WARN, "zmq source %s: ZeroMQ cut the connection "
                           "for a message over max_message_size = %llu bytes or a protocol "
                           "error (what the producer had queued for us is lost); connecting "
                           "again; see source_disconnects in sluice-monitor", sc->endpoint,
                           (unsigned long long) in->conf->max_message_size);
            if (zmq_connect(s->sock, sc->endpoint) < 0)
                sl_log_limited(&in->rl_drop, SL_LOG_ERROR, "zmq source: cannot connect to %s "
                               "again: %s", sc->endpoint, zmq_strerror(errno));
        }
    }
}

static int
s_open_sources(s_ingest_t *in, char *err, size_t errlen)
{
    const sl_conf_t *c = in->conf;
    in->n_sources = c->n_sources;
    in->sources = sl_xcalloc(c->n_sources, sizeof *in->sources);
    for (size_t i = 0; i < c->n_sources; i++) {
        const sl_source_conf_t *sc = &c->sources[i];
        s_source_t *s = &in->sources[i];
        s->kind = sc->kind;
        if (sc->kind == SL_SOURCE_FILE) {
            s->per_ms = sc->rate / 1000.0 / (double) c->n_ingest;
            s->credit_ms = sl_now_ms();
            s->file = fopen(sc->path, "r");
            if (!s->file) {
                snprintf(err, errlen, "file source %s: %s (check the path in sluice.yaml)",
                         sc->path, strerror(errno));
                return -1;
            }
            continue;
        }
        s->sock = zmq_socket(in->zctx, ZMQ_PULL);
        int hwm = (int) sl_conf_source_hwm(c), ivl = 20;
        zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
        /* A larger message is refused by libzmq before it is buffered
         * (it disconnects the peer): one 512 MiB message once took 533 MB.
         * Counted through the socket monitor as zmq_peer_errors. */
        int64_t maxmsg = (int64_t) c->max_message_size;
        zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
        /* Reconnect quickly to a producer that binds after we start. */
        zmq_setsockopt(s->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        int rc;
        if (sc->bind) {
            /* Worker k binds port+k (tcp) or path.k (ipc). */
            char ep[256];
            const char *colon = strrchr(sc->endpoint, ':');
            if (strncmp(sc->endpoint, "tcp://", 6) == 0 && colon && colon > sc->endpoint + 5)
                snprintf(ep, sizeof ep, "%.*s:%d", (int) (colon - sc->endpoint), sc->endpoint,
                         atoi(colon + 1) + in->ctx->index);
            else
                snprintf(ep, sizeof ep, "%s.%d", sc->endpoint, in->ctx->index);
            rc = zmq_bind(s->sock, ep);
            if (rc < 0) {
                snprintf(err, errlen, "zmq source: cannot bind %s: %s (address in use? another "
                         "sluiced running?)", ep, zmq_strerror(errno));
                return -1;
            }
        } else if (zmq_connect(s->sock, sc->endpoint) < 0) {
            snprintf(err, errlen, "zmq source: cannot connect to %s: %s", sc->endpoint,
                     zmq_strerror(errno));
            return -1;
        }
        char mon[64];
        snprintf(mon, sizeof mon, "inproc://source-monitor-%zu", i);
        if (zmq_socket_monitor(s->sock, mon, ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                               ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_DELAYED) == 0) {
            s->monitor = zmq_socket(in->zctx, ZMQ_PAIR);
            if (zmq_connect(s->monitor, mon) < 0) {
                zmq_close(s->monitor);
                s->monitor = NULL;
            }
        }
    }
    return 0;
}

/* Whether file source i may read its next line under a reload barrier:
 * paused while the supervisor takes positions (1), then up to file_stop (2). */
static int
s_file_may_read(s_ingest_t *in, size_t i, const s_source_t *s)
{
    int barrier = atomic_load(&in->ctx->shm->file_barrier);
    if (barrier == 0) {
        atomic_store(&in->ctx->slot->files_paused, 0);
        return 1;
    }
    if (barrier == 1) {
        atomic_store(&in->ctx->slot->files_paused, 1);
        return 0;
    }
    return s->line_no < atomic_load(&in->ctx->shm->file_stop[i]);
}

static int
s_files_behind_barrier(const s_ingest_t *in)
{
    for (size_t i = 0; i < in->n_sources; i++) {
        const s_source_t *s = &in->sources[i];
        if (s->kind == SL_SOURCE_FILE && !s->eof &&
            s->line_no < atomic_load(&in->ctx->shm->file_stop[i]))
            return 1;
    }
    return 0;
}

/* Reads up to a burst from every source; returns how many were read. */
static size_t
s_read_sources(s_ingest_t *in)
{
    size_t got = 0;
    for (size_t i = 0; i < in->n_sources && !in->n_pending; i++) {
        s_source_t *s = &in->sources[i];
        for (int k = 0; k < S_READ_BURST && !in->n_pending; k++) {
            if (s->kind == SL_SOURCE_FILE) {
                if (s->eof || in->zmq_only || !s_file_may_read(in, i, s))
                    break;
                /* token bucket, at most 100 ms of burst; not while a reload
                 * waits for this worker to reach the barrier line: a worker
                 * behind (a respawned one re-reading its share) must catch
                 * up within shutdown_grace or lose the rest */
                if (s->per_ms > 0 && atomic_load(&in->ctx->shm->file_barrier) != 2) {
                    uint64_t now = sl_now_ms();
                    s->credit += (double) (now - s->credit_ms) * s->per_ms;
                    s->credit_ms = now;
                    if (s->credit > s->per_ms * 100 + 1)
                        s->credit = s->per_ms * 100 + 1;
                    if (s->credit < 1)
                        break;
                }
                const char *text;
                size_t n;
                int oversized;
                if (!s_next_line(s, (size_t) in->conf->max_message_size, &text, &n, &oversized)) {
                    s->eof = 1;
                    SL_INC(in->ctx->slot, source_eof, 1);
                    sl_info("file source %s: end of file after %lu lines",
                            in->conf->sources[i].path, s->line_no);
                    break;
                }
                /* Ingest worker k of N takes lines k, k+N, ... */
                unsigned long ln = s->line_no++;
                atomic_store_explicit(&in->ctx->slot->file_pos[i], s->line_no, memory_order_release);
                if (ln < atomic_load(&in->ctx->shm->file_start[i]))
                    continue;   /* read by the previous configuration generation */
                if (ln % (unsigned long) in->conf->n_ingest != (unsigned long) in->ctx->index)
                    continue;
                s->credit -= 1;
                while (!oversized && n > 0 && text[n - 1] == '\r')
                    n--;
                if (n == 0)
                    continue;
                /* oversized: the decoder counts it by length, unread */
                s_handle(in, text, n);
                got++;
            } else {
                zmq_msg_t msg;
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&msg);
                    break;
                }
                if (zmq_msg_more(&msg)) {
                    /* one notification per single-part message: a
                     * multipart message is one bad message, not K */
                    size_t parts = 1;
                    while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, s->sock, 0) >= 0)
                        parts++;
                    zmq_msg_close(&msg);
                    SL_INC(in->ctx->slot, received, 1);
                    SL_INC(in->ctx->slot, drop_multipart, 1);
                    sl_log_limited(&in->rl_drop, SL_LOG_WARN, "dropped a ZeroMQ message of %zu "
                                   "parts from %s: send one notification per single-part "
                                   "message; see drop_multipart in sluice-monitor", parts,
                                   in->conf->sources[i].endpoint);
                    got++;
                    continue;
                }
                s_handle(in, zmq_msg_data(&msg), zmq_msg_size(&msg));
                zmq_msg_close(&msg);
                got++;
            }
        }
    }
    return got;
}

static int
s_all_files_done(const s_ingest_t *in)
{
    for (size_t i = 0; i < in->n_sources; i++)
        if (in->sources[i].kind != SL_SOURCE_FILE || !in->sources[i].eof)
            return 0;
    return 1;
}

static void
s_cleanup(s_ingest_t *in, int linger_ms)
{
    for (size_t i = 0; i < (size_t) in->n_sinks * in->partitions; i++) {
        s_part_t *pt = &in->parts[i];
        while (pt->pending) {
            s_pending_t *q = pt->pending;
            pt->pending = q->next;
            zmq_msg_close(&q->msg);
            free(q);
        }
        sl_wire_writer_free(&pt->w);
        if (pt->sock) {
            zmq_setsockopt(pt->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
            zmq_close(pt->sock);
        }
    }
    for (size_t i = 0; i < in->n_sources; i++) {
        s_source_t *s = &in->sources[i];
        if (s->file)
            fclose(s->file);
        free(s->buf);
        if (s->monitor) {
            int zero = 0;
            zmq_setsockopt(s->monitor, ZMQ_LINGER, &zero, sizeof zero);
            zmq_close(s->monitor);
        }
        if (s->sock) {
            int zero = 0;
            zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
            zmq_close(s->sock);
        }
    }
    free(in->sources);
    free(in->parts);
    free(in->rr);
    free(in->samples);
    free(in->route);
    sl_arena_destroy(&in->arena);
    sl_coord_destroy(&in->coord);
    free(in->coord_leases);
    zmq_ctx_term(in->zctx);
}

int
sl_ingest_run(sl_worker_ctx_t *ctx)
{
    s_ingest_t in;
    memset(&in, 0, sizeof in);
    in.ctx = ctx;
    in.conf = ctx->conf;
    in.n_sinks = (unsigned) sl_conf_n_sinks(ctx->conf);
    in.partitions = ctx->conf->partitions;
    in.zctx = zmq_ctx_new();
    sl_arena_init(&in.arena, 0);
    in.samples = sl_xcalloc(S_MAX_SAMPLES_PER_NOTIFICATION, sizeof *in.samples);
    in.route = sl_xcalloc(SL_MAX_SINKS, sizeof *in.route);
    in.rr = sl_xcalloc(in.n_sinks ? in.n_sinks : 1, sizeof *in.rr);
    in.parts = sl_xcalloc((size_t) in.n_sinks * in.partitions + 1, sizeof *in.parts);
    for (unsigned s = 0; s < in.n_sinks; s++) {
        in.rr[s] = (unsigned) ctx->index % in.partitions;
        for (unsigned p = 0; p < in.partitions; p++) {
            s_part_t *pt = s_part(&in, s, p);
            sl_wire_writer_init(&pt->w);
            pt->sock = zmq_socket(in.zctx, ZMQ_PUSH);
            int hwm = (int) sl_conf_frame_hwm(in.conf);
            zmq_setsockopt(pt->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        }
    }
    char err[1024];
    if (strcmp(in.conf->coord_backend, "local") != 0) {
        in.coord = sl_coord_new(in.conf->coord_backend + strlen("memcached://"),
                                in.conf->coord_group, in.conf->coord_secret,
                                in.conf->coord_secret_len, in.conf->coord_lease_ttl_ms,
                                err, sizeof err);
        if (!in.coord) {
            sl_error("coordination: %s", err);
            s_cleanup(&in, 0);
            return 2;
        }
        in.coord_leases = sl_xcalloc((size_t) in.n_sinks * in.partitions + 1,
                                     sizeof *in.coord_leases);
        sl_worker_host_id(in.host_id, sizeof in.host_id);
    }
    if (s_open_sources(&in, err, sizeof err) < 0) {
        sl_error("%s", err);
        s_cleanup(&in, 0);
        return 2;
    }
    s_resolve_leases(&in);
    sl_worker_set_state(ctx, SL_WS_RUNNING);
    sl_info("ingest worker #%d running: %zu sources, %u sinks x %u partitions", ctx->index,
            in.n_sources, in.n_sinks, in.partitions);

    uint64_t last_cron = 0;
    zmq_pollitem_t *items = sl_xcalloc(in.n_sources + (size_t) in.n_sinks * in.partitions + 1,
                                       sizeof *items);
    while (!sl_worker_drain && !sl_worker_stop) {
        size_t got = s_read_sources(&in);
        uint64_t now = sl_now_ms();
        if (now - last_cron >= 50) {
            last_cron = now;
            sl_worker_beat(ctx);
            if (atomic_load(&ctx->shm->file_barrier) == 1)   /* no line is half-read here */
                atomic_store(&ctx->slot->files_paused, 1);
            s_resolve_leases(&in);
            s_flush_all(&in, in.conf->batch_timeout_ms);
            s_poll_monitors(&in);
            if (getppid() == 1)
                sl_worker_stop = 1;   /* supervisor gone */
        }
        if (got)
            continue;
        /* Idle or blocked: wait for input or for a full socket to drain. */
        int ni = 0;
        if (!in.n_pending) {
            for (size_t i = 0; i < in.n_sources; i++) {
                if (in.sources[i].sock) {
                    items[ni].socket = in.sources[i].sock;
                    items[ni].events = ZMQ_POLLIN;
                    ni++;
                }
            }
        }
        for (size_t i = 0; i < (size_t) in.n_sinks * in.partitions; i++) {
            if (in.parts[i].pending) {
                items[ni].socket = in.parts[i].sock;
                items[ni].events = ZMQ_POLLOUT;
                ni++;
            }
        }
        int timeout = (int) in.conf->batch_timeout_ms;
        if (timeout > 50)
            timeout = 50;
        if (ni == 0 && s_all_files_done(&in) && !in.n_pending)
            timeout = 50;
        zmq_poll(items, ni, timeout);
        s_send_all_pending(&in);
    }
    free(items);

    /* Drain: on a reload, file sources first read up to the barrier line
     * the next generation starts from; then send what is batched and
     * queued, and let ZeroMQ deliver it (linger) within the grace period. */
    int linger = 0;
    if (!sl_worker_stop && atomic_load(&ctx->shm->file_barrier) == 2) {
        while (!sl_worker_stop && s_files_behind_barrier(&in)) {
            sl_worker_beat(ctx);
            if (in.n_pending) {
                if (s_send_all_pending(&in))
                    s_nap_ms(1);
                continue;
            }
            s_read_sources(&in);
        }
    }
    /* zmq sources: take what the sockets already hold (ZeroMQ drops a
     * PULL socket's queue when it closes), until they stay empty for 50 ms
     * or a third of shutdown_grace has passed (a producer that never stops
     * sending would otherwise hold the drain forever). What a producer
     * still sends after that is lost: ZeroMQ has no acknowledgement (the
     * README's delivery table). */
    if (!sl_worker_stop) {
        in.zmq_only = 1;
        uint64_t start = sl_now_ms(), quiet_since = start;
        uint64_t limit = (uint64_t) in.conf->shutdown_grace * 1000 / 3;
        while (!sl_worker_stop && sl_now_ms() - start < limit && sl_now_ms() - quiet_since < 50) {
            sl_worker_beat(ctx);
            if (in.n_pending) {
                if (s_send_all_pending(&in))
                    s_nap_ms(1);
                continue;
            }
            if (s_read_sources(&in))
                quiet_since = sl_now_ms();
            else
                s_nap_ms(1);
        }
        for (size_t i = 0; i < in.n_sources; i++) {
            if (in.sources[i].sock) {   /* no new messages from now on */
                int zero = 0;
                zmq_setsockopt(in.sources[i].sock, ZMQ_LINGER, &zero, sizeof zero);
                zmq_close(in.sources[i].sock);
                in.sources[i].sock = NULL;
            }
        }
    }
    if (!sl_worker_stop) {
        sl_worker_set_state(ctx, SL_WS_DRAINING);
        sl_worker_title("sluice: ingest #%d [draining]", ctx->index);
        s_flush_all(&in, 0);
        uint64_t deadline = sl_now_ms() + (uint64_t) in.conf->shutdown_grace * 1000;
        while (in.n_pending && sl_now_ms() < deadline && !sl_worker_stop) {
            sl_worker_beat(ctx);
            s_resolve_leases(&in);
            if (s_send_all_pending(&in))
                s_nap_ms(5);
        }
        if (in.n_pending)
            sl_warn("drain: %zu partitions still had queued frames after shutdown_grace; "
                    "they are lost (are the pipeline workers running?)", in.n_pending);
        uint64_t now = sl_now_ms();
        linger = now < deadline ? (int) (deadline - now) : 0;
    }
    s_cleanup(&in, linger);
    sl_info("ingest worker #%d stopped", ctx->index);
    return 0;
}
