/* stats — the shared-memory region: counters, worker slots, lease table.
 *
 * The supervisor creates one named POSIX shared-memory region before it
 * forks (workers inherit the mapping; sluice-monitor attaches read-only by
 * name). Layout: a header (supervisor pid, config generation, sink names,
 * supervisor counters), one cache-line-aligned slot per worker (written only
 * by that worker: its counters, per-sink counters, heartbeat, state), then
 * the local lease table (common/lease.h).
 *
 * Every counter is declared once in the X-macro lists below; they expand
 * into the slot, the aggregation, sluice-monitor's output and the
 * README table (`sluice-monitor --list-counters`). */
#ifndef SL_STATS_H
#define SL_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "common/lease.h"
#include "common/pipeline.h"

/* X(name, help) — per-worker counters. */
#define SL_WORKER_COUNTERS(X) \
    X(received,            "notifications read from sources") \
    X(decoded,             "notifications decoded and validated") \
    X(drop_malformed_json, "dropped: not valid JSON") \
    X(drop_not_object,     "dropped: JSON is not an object") \
    X(drop_bad_envelope,   "dropped: oslo v2 envelope without a valid oslo.message") \
    X(drop_missing_field,  "dropped: required field missing or of the wrong type") \
    X(drop_bad_priority,   "dropped: unknown priority") \
    X(drop_oversized,      "dropped: larger than max_message_size") \
    X(drop_bad_utf8,       "dropped: a string or key is not valid UTF-8") \
    X(drop_multipart,      "dropped: a ZeroMQ message of several parts (one notification per message)") \
    X(no_sample_priority,  "decoded notifications whose priority yields no samples (only info and sample do)") \
    X(no_definition,       "notifications no meter definition matched") \
    X(convert_skipped,     "samples a matching definition could not build (missing field, bad volume)") \
    X(convert_failed,      "notifications that lost every sample where Ceilometer raises (bad timestamp, bad index, ...)") \
    X(samples_converted,   "samples built from notifications") \
    X(samples_unrouted,    "samples no pipeline source selected") \
    X(samples_routed,      "samples sent towards sinks (one per sink)") \
    X(events_converted,    "events built from notifications (event_definitions.yaml)") \
    X(events_dropped,      "events Ceilometer would drop (a trait or timestamp cannot be converted)") \
    X(events_unrouted,     "events no event pipeline source selected") \
    X(events_routed,       "events sent towards event sinks (one per sink)") \
    X(frames_sent,         "wire frames sent by ingest workers") \
    X(frame_bytes,         "bytes of the wire frames ingest workers made (each kept until confirmed; frame_bytes / frames_sent is the mean frame size)") \
    X(frames_lingered,     "frames held past batch_timeout_ms (up to batch_linger_ms) while their ingest worker was busy or their sink filled them") \
    X(send_blocked,        "sends that would block (back-pressure on the source)") \
    X(frames_received,     "wire frames received by pipeline workers") \
    X(frames_rejected,     "wire frames rejected (corrupt, truncated, stale generation)") \
    X(frames_acked,        "wire frames a pipeline worker confirmed to their sender (delivered or rejected)") \
    X(samples_received,    "samples received by pipeline workers") \
    X(transform_absorbed,  "samples a transformer kept for later or dropped by design (no predecessor, aggregated, ...)") \
    X(transform_errors,    "samples lost to a transformer error or an invalid volume (logged)") \
    X(samples_published,   "samples handed successfully to publishers") \
    X(events_published,    "events handed successfully to publishers") \
    X(publish_errors,      "samples a publisher failed to publish") \
    X(leases_taken,        "partition leases taken") \
    X(leases_released,     "partition leases released") \
    X(source_eof,          "file sources read to the end") \
    X(source_disconnects,  "zmq source: producers that disconnected (closed, or cut off by ZeroMQ for a message over max_message_size)") \
    X(frames_confirmed,    "frames a pipeline worker confirmed back to this ingest worker") \
    X(frames_resent,       "unconfirmed frames sent again to a partition's new holder (a pipeline worker died or left): possible duplicates") \
    X(acks_unknown,        "confirmations of frames already confirmed or never sent here (after a resend)") \
    X(notifications_confirmed, "notifications fully delivered, confirmed to their source (ack)") \
    X(notifications_requeued, "notifications given back to their source to deliver again (nack with requeue: a publisher gave up on them for a reason that may heal)") \
    X(frames_failed,       "frames confirmed with records a publisher gave up on (max_retries, queue overflow, stop) and did not dead-letter") \
    X(notifications_unconfirmed, "notifications still unconfirmed when an ingest worker stopped (a file source reads them again)") \
    X(source_pauses,       "times an ingest worker paused its sources (back-pressure: a full socket or a partition without holder, max_unconfirmed notifications, or its share of queue_memory in frames unconfirmed)") \
    X(pauses_blocked,      "source pauses because a frame waited for a full socket or a partition without holder (the pipeline workers are behind, or a partition has no holder)") \
    X(pauses_unconfirmed,  "source pauses because max_unconfirmed notifications were unconfirmed (raise it if the pipeline workers keep up)") \
    X(pauses_budget,       "source pauses because the worker's unconfirmed frames reached its share of queue_memory (raise queue_memory if the pipeline workers keep up)")

/* X(name, help) — per-worker, per-sink counters. */
#define SL_SINK_COUNTERS(X) \
    X(routed,    "samples an ingest worker routed to this sink") \
    X(published, "samples of this sink published") \
    X(failed,    "samples of this sink a publisher failed on")

/* X(name, help) — supervisor counters in the header. */
#define SL_SUPERVISOR_COUNTERS(X) \
    X(spawns,          "worker processes started") \
    X(crashes,         "workers that died of a signal or exited non-zero") \
    X(reloads,         "successful configuration reloads (SIGHUP)") \
    X(reload_failures, "rejected configuration reloads (old config kept)") \
    X(leases_freed,    "leases the supervisor freed for dead workers") \
    X(config_warnings, "warnings of the running configuration (what Ceilometer tolerates; strict: true refuses it)") \
    X(lost_in_crash,   "records publishers with confirm=queued held, already confirmed to their source, when their pipeline worker died (their at_risk gauges then)")

/* X(name, kind, help) — per-worker, per-sink, per-publisher counters, kept
 * by the output layer (worker/output.h) for publisher k of sink s in
 * slot->pub[s][k]. kind says how sluice-monitor aggregates over workers:
 * counter and gauge are summed, max takes the largest. A record is one
 * sample or one event. */
#define SL_PUBLISHER_COUNTERS(X) \
    X(queued,         counter, "batches accepted into the publisher's queue") \
    X(sent,           counter, "records (samples or events) the publisher published") \
    X(retried,        counter, "publish attempts that failed transiently (RETRY) and were retried after a backoff") \
    X(errors,         counter, "publish attempts that failed (RETRY or ERROR)") \
    X(dropped,        counter, "records finally not published: policy=drop, queue full (policy=queue), rejected (ERROR), max_retries reached, or left when the drain deadline passed") \
    X(dead_lettered,  counter, "dropped records written to the dead_letter directory") \
    X(queue_depth,    gauge,   "batches waiting in the publisher's queue or being published, now") \
    X(publishes,      counter, "publish calls (the mean latency is latency_ms_sum / publishes)") \
    X(latency_ms_sum, counter, "milliseconds spent in publish calls") \
    X(latency_ms_max, max,     "longest publish call, milliseconds") \
    X(peers,          gauge,   "consumers the publisher serves now, as the plugin reports them (websocket: connected subscribers)") \
    X(lost,           counter, "records the plugin took (counted in sent) and lost afterwards, as it reports them (websocket: records of subscribers cut off, or not taken by the hub worker)") \
    X(at_risk,        gauge,   "records queued here that were already confirmed to their source (confirm=queued: policy=queue or drop), now: a crash of the worker loses them (the supervisor then counts them in lost_in_crash)")

/* X(name, kind, help) — per-worker counters of one AMQP broker connection
 * of an amqp source (worker/sources/amqp.c), in slot->broker[k]: the
 * worker's k-th broker over all its amqp sources. */
#define SL_BROKER_COUNTERS(X) \
    X(state,              gauge,   "connection state now: 0 down (waiting to reconnect), 1 connecting, 2 consuming") \
    X(connects,           counter, "connections opened and consuming (the first and every reconnection)") \
    X(disconnects,        counter, "connections lost or closed by the broker (socket error, heartbeat timeout, channel or connection close, consumer cancelled)") \
    X(reconnect_attempts, counter, "connection attempts that failed (connect, TLS, login or declaration); each waits a capped exponential backoff with jitter") \
    X(failovers,          counter, "moves to the next host of the URL's fail-over list") \
    X(deliveries,         counter, "messages the broker delivered") \
    X(redeliveries,       counter, "deliveries flagged redelivered (delivered before to someone and not acknowledged)") \
    X(acks,               counter, "deliveries acknowledged (everything they produced was delivered)") \
    X(ack_frames,         counter, "basic.ack frames sent (with multiple=1 one acknowledges many)") \
    X(nacks,              counter, "deliveries given back with requeue (a publisher gave up, or the worker stopped before delivering them)") \
    X(unacked,            gauge,   "deliveries not acknowledged yet (at most prefetch)") \
    X(stale_acks,         counter, "acknowledgements of deliveries of a connection that is gone (the broker requeued them: they come again)")

/* X(name, kind, help) — per-worker counters of one ZeroMQ socket, from
 * ZeroMQ's socket monitor (common/zmon.h), in slot->zmon.sock[k]; their
 * sums over every socket the worker ever had (closed ones included) are in
 * slot->zmon.total. */
#define SL_ZMON_COUNTERS(X) \
    X(connects,           counter, "connections this socket made (ZMQ_EVENT_CONNECTED)") \
    X(connect_delays,     counter, "connects that did not complete at once (ZMQ_EVENT_CONNECT_DELAYED; normal for tcp)") \
    X(connect_retries,    counter, "reconnection attempts after a failed or lost connection (ZMQ_EVENT_CONNECT_RETRIED): the peer is not there") \
    X(binds,              counter, "endpoints this socket bound (ZMQ_EVENT_LISTENING)") \
    X(bind_failures,      counter, "binds that failed (ZMQ_EVENT_BIND_FAILED: address in use, no permission, ...)") \
    X(accepted,           counter, "connections this socket accepted (ZMQ_EVENT_ACCEPTED)") \
    X(accept_failures,    counter, "connections it could not accept (ZMQ_EVENT_ACCEPT_FAILED: out of descriptors?)") \
    X(disconnects,        counter, "connections lost or closed by either side (ZMQ_EVENT_DISCONNECTED)") \
    X(closed,             counter, "listening or connecting descriptors closed (ZMQ_EVENT_CLOSED)") \
    X(close_failures,     counter, "descriptors that could not be closed (ZMQ_EVENT_CLOSE_FAILED)") \
    X(handshakes,         counter, "ZMTP handshakes completed (ZMQ_EVENT_HANDSHAKE_SUCCEEDED)") \
    X(handshake_failures, counter, "ZMTP handshakes that failed (ZMQ_EVENT_HANDSHAKE_FAILED_*: a peer that is not ZeroMQ, another socket type, bad security)") \
    X(peers,              gauge,   "connections up now (connects and accepted minus disconnects)")

/* X(name, role, help) — pipeline stages whose CPU time the workers
 * estimate from sampled timing (worker/stagetime.h): busy wall time
 * (CLOCK_MONOTONIC) of the stage, scaled by the sampling period, in
 * slot->stage_ns. An ingest notification is timed whole at 1 in the
 * sampling period; a pipeline frame likewise; send and the publish calls
 * a publisher makes outside a frame (queued, threaded) are timed each. */
#define SL_STAGES(X) \
    X(read,      ingest,   "source read (socket receive or file read) up to the hand-over of a notification") \
    X(decode,    ingest,   "envelope JSON parse and validation") \
    X(convert,   ingest,   "meter and event conversion (meters.yaml, event_definitions.yaml)") \
    X(serialise, ingest,   "routing to sinks and partitions, wire encoding, frames kept for confirmation") \
    X(send,      ingest,   "ZeroMQ sends of frames") \
    X(receive,   pipeline, "ZeroMQ receive of frames and wire decoding") \
    X(transform, pipeline, "transformer chains") \
    X(publish,   pipeline, "output layer and publisher calls")

enum { SL_PK_counter, SL_PK_gauge, SL_PK_max };

enum {
#define X(n, h) SL_C_##n,
    SL_WORKER_COUNTERS(X)
#undef X
    SL_C__COUNT
};
enum {
#define X(n, h) SL_SC_##n,
    SL_SINK_COUNTERS(X)
#undef X
    SL_SC__COUNT
};
enum {
#define X(n, h) SL_SV_##n,
    SL_SUPERVISOR_COUNTERS(X)
#undef X
    SL_SV__COUNT
};
enum {
#define X(n, k, h) SL_PC_##n,
    SL_PUBLISHER_COUNTERS(X)
#undef X
    SL_PC__COUNT
};
enum {
#define X(n, k, h) SL_BC_##n,
    SL_BROKER_COUNTERS(X)
#undef X
    SL_BC__COUNT
};
enum {
#define X(n, k, h) SL_ZC_##n,
    SL_ZMON_COUNTERS(X)
#undef X
    SL_ZC__COUNT
};

enum {
#define X(n, r, h) SL_ST_##n,
    SL_STAGES(X)
#undef X
    SL_ST__COUNT
};

/* Notification-to-publish latency histogram (worker/stagetime.h): bucket
 * i < 4 holds i microseconds, above that 4 buckets per power of two
 * (sl_lat_bucket_lo/hi in common/stagetime.h); the last one is open. */
#define SL_LAT_BUCKETS 128

typedef enum { SL_ROLE_NONE = 0, SL_ROLE_INGEST = 1, SL_ROLE_PIPELINE = 2 } sl_role_t;
typedef enum {
    SL_WS_EMPTY = 0, SL_WS_STARTING, SL_WS_RUNNING, SL_WS_DRAINING, SL_WS_EXITED, SL_WS_BACKOFF
} sl_worker_state_t;

#define SL_MAX_WORKERS 128
#define SL_MAX_SOURCES 16
#define SL_SINK_NAME_MAX 64
#define SL_MAX_SINK_PUBLISHERS 4     /* publishers of a sink counted one by one; more are not shown */
#define SL_PUB_LABEL_MAX 64
#define SL_PUB_ERROR_MAX 160
#define SL_MAX_BROKERS 8             /* AMQP broker connections of a worker counted one by one */

/* The label (a URL without credentials or query) and last error of a
 * publisher instance or broker connection, written by its worker's loop
 * thread only; seq is odd while the texts are being written
 * (sl_stats_text_get reads them consistently). */
typedef struct {
    _Atomic uint64_t error_ms;       /* CLOCK_REALTIME ms of the last error; 0 = none */
    _Atomic uint32_t seq;
    _Atomic uint32_t used;           /* 1 once the worker set it up */
    char label[SL_PUB_LABEL_MAX];
    char error[SL_PUB_ERROR_MAX];
} sl_stats_text_t;

#define SL_MAX_ZSOCKS 32            /* ZeroMQ sockets of a worker listed one by one */
#define SL_ZSOCK_KIND_MAX 24
#define SL_ZSOCK_EP_MAX 104
#define SL_ZRING 32                  /* recent socket events kept per worker */
#define SL_ZEVENT_TEXT_MAX 88

enum { SL_ZS_FREE = 0, SL_ZS_OPEN = 1, SL_ZS_CLOSED = 2 };

/* One monitored ZeroMQ socket of a worker. Written by the worker's loop
 * thread only; kind and endpoint between two increments of seq (odd while
 * writing), read with sl_zmon_sock_get (common/zmon.h). */
typedef struct {
    _Atomic uint32_t seq;
    _Atomic uint32_t state;          /* SL_ZS_* */
    _Atomic uint32_t last_event;     /* ZMQ_EVENT_* of the last event; 0 = none yet */
    _Atomic int32_t  last_errno;     /* of the last failure event; 0 = none */
    _Atomic uint64_t last_ms;        /* CLOCK_REALTIME ms of the last event */
    _Atomic uint64_t c[SL_ZC__COUNT];
    char kind[SL_ZSOCK_KIND_MAX];    /* what the socket is for: "partition", "source", ... */
    char endpoint[SL_ZSOCK_EP_MAX];
} sl_zsock_stats_t;

/* One recent socket event; n (the event's number + 1) is stored last, under
 * seq, so that a reader knows which event it copied. */
typedef struct {
    _Atomic uint32_t seq;
    _Atomic uint32_t event;          /* ZMQ_EVENT_* */
    _Atomic int32_t  sock;           /* index in sock[], -1 = a socket without an entry */
    _Atomic int32_t  err;            /* errno of a failure event, else 0 */
    _Atomic uint64_t ms;             /* CLOCK_REALTIME */
    _Atomic uint64_t n;
    char text[SL_ZEVENT_TEXT_MAX];   /* the event's endpoint (peer or local address) */
} sl_zevent_t;

/* A worker's ZeroMQ sockets: totals (every socket since the slot's
 * generation began, closed ones and those without an entry included), one
 * entry per socket, and a ring of the last SL_ZRING events (head = events
 * ever written; the newest is ring[(head - 1) % SL_ZRING]). */
typedef struct {
    _Atomic uint64_t total[SL_ZC__COUNT];
    _Atomic uint64_t head;
    _Atomic uint32_t n_socks;        /* entries ever used (high-water mark) */
    _Atomic uint32_t unlisted;       /* sockets monitored now without an entry */
    sl_zsock_stats_t sock[SL_MAX_ZSOCKS];
    sl_zevent_t ring[SL_ZRING];
} sl_zmon_stats_t;

/* One publisher instance's counters and texts. */
typedef struct {
    _Atomic uint64_t c[SL_PC__COUNT];
    sl_stats_text_t  t;
} sl_pub_stats_t;

/* One broker connection's counters and texts. */
typedef struct {
    _Atomic uint64_t c[SL_BC__COUNT];
    sl_stats_text_t  t;
} sl_broker_stats_t;

typedef struct {
    _Alignas(64) _Atomic int32_t pid;
    _Atomic int32_t  role;
    _Atomic int32_t  index;          /* index within its role */
    _Atomic int32_t  state;
    _Atomic uint32_t generation;     /* config generation it runs */
    _Atomic uint32_t restarts;
    _Atomic uint64_t heartbeat_ms;   /* CLOCK_MONOTONIC ms */
    _Atomic uint64_t started_ms;     /* CLOCK_REALTIME ms */
    _Atomic uint64_t c[SL_C__COUNT];
    _Atomic uint64_t sink[SL_MAX_SINKS][SL_SC__COUNT];
    sl_pub_stats_t   pub[SL_MAX_SINKS][SL_MAX_SINK_PUBLISHERS];
    sl_broker_stats_t broker[SL_MAX_BROKERS];
    sl_zmon_stats_t  zmon;           /* ZeroMQ sockets (common/zmon.h) */
    /* stage timing (SL_STAGES): estimated ns, and how many timings made
     * them; the latency histogram (SL_LAT_BUCKETS, microseconds), its sum
     * and largest value. Added with atomic_fetch_add: a publisher thread
     * adds to publish. */
    _Atomic uint64_t stage_ns[SL_ST__COUNT];
    _Atomic uint64_t stage_timed[SL_ST__COUNT];
    _Atomic uint64_t lat[SL_LAT_BUCKETS];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t lat_max_us;
} sl_slot_t;

#define SL_STATS_MAGIC 0x534c55494345534dULL  /* "SLUICESM" */
#define SL_STATS_VERSION 10

typedef struct {
    uint64_t magic;
    uint32_t version;
    uint32_t n_slots;
    _Atomic int32_t  supervisor_pid;
    _Atomic uint32_t generation;
    _Atomic uint32_t n_sinks;
    _Atomic uint32_t n_ingest, n_pipeline;
    _Atomic uint32_t partitions;
    _Atomic int32_t  stopping;
    _Atomic int32_t  handoff;     /* workers stopping for a reload: save state, do not drain */
    uint64_t started_ms;
    uint64_t region_size;
    uint64_t lease_offset;
    uint64_t lease_capacity;         /* bytes available for the lease table */
    char sink_names[SL_MAX_SINKS][SL_SINK_NAME_MAX];
    _Atomic uint64_t sv[SL_SV__COUNT];
    _Alignas(64) sl_slot_t slots[];
} sl_shm_t;

/* Relaxed single-writer increments: each slot has exactly one writer. */
#define SL_INC(slot, name, n) \
    atomic_store_explicit(&(slot)->c[SL_C_##name], \
        atomic_load_explicit(&(slot)->c[SL_C_##name], memory_order_relaxed) + (n), \
        memory_order_relaxed)
#define SL_SINC(slot, s, name, n) \
    atomic_store_explicit(&(slot)->sink[s][SL_SC_##name], \
        atomic_load_explicit(&(slot)->sink[s][SL_SC_##name], memory_order_relaxed) + (n), \
        memory_order_relaxed)
#define SL_PINC(ps, name, n) \
    atomic_store_explicit(&(ps)->c[SL_PC_##name], \
        atomic_load_explicit(&(ps)->c[SL_PC_##name], memory_order_relaxed) + (n), \
        memory_order_relaxed)
#define SL_PSET(ps, name, v) \
    atomic_store_explicit(&(ps)->c[SL_PC_##name], (v), memory_order_relaxed)
#define SL_PGET(ps, name) atomic_load_explicit(&(ps)->c[SL_PC_##name], memory_order_relaxed)
#define SL_BINC(bs, name, n) \
    atomic_store_explicit(&(bs)->c[SL_BC_##name], \
        atomic_load_explicit(&(bs)->c[SL_BC_##name], memory_order_relaxed) + (n), \
        memory_order_relaxed)
#define SL_BSET(bs, name, v) \
    atomic_store_explicit(&(bs)->c[SL_BC_##name], (v), memory_order_relaxed)
#define SL_GET(slot, name) atomic_load_explicit(&(slot)->c[SL_C_##name], memory_order_relaxed)

extern const char *const sl_worker_counter_names[SL_C__COUNT];
extern const char *const sl_worker_counter_help[SL_C__COUNT];
extern const char *const sl_sink_counter_names[SL_SC__COUNT];
extern const char *const sl_sink_counter_help[SL_SC__COUNT];
extern const char *const sl_publisher_counter_names[SL_PC__COUNT];
extern const char *const sl_publisher_counter_help[SL_PC__COUNT];
extern const int sl_publisher_counter_kind[SL_PC__COUNT];   /* SL_PK_* */
extern const char *const sl_broker_counter_names[SL_BC__COUNT];
extern const char *const sl_broker_counter_help[SL_BC__COUNT];
extern const int sl_broker_counter_kind[SL_BC__COUNT];      /* SL_PK_* */
extern const char *const sl_zmon_counter_names[SL_ZC__COUNT];
extern const char *const sl_zmon_counter_help[SL_ZC__COUNT];
extern const int sl_zmon_counter_kind[SL_ZC__COUNT];        /* SL_PK_* */
extern const char *const sl_stage_names[SL_ST__COUNT];
extern const char *const sl_stage_help[SL_ST__COUNT];
extern const int sl_stage_role[SL_ST__COUNT];               /* SL_ROLE_* */
extern const char *const sl_supervisor_counter_names[SL_SV__COUNT];
extern const char *const sl_supervisor_counter_help[SL_SV__COUNT];
const char *sl_worker_state_name(int state);
const char *sl_role_name(int role);

/* Stats texts: set by their writer (label once, which marks them used;
 * error on each failure, with error_ms), read by anyone into buffers. */
void sl_stats_text_set_label(sl_stats_text_t *t, const char *label);
void sl_stats_text_set_error(sl_stats_text_t *t, const char *error);
void sl_stats_text_get(const sl_stats_text_t *t, char *label, size_t llen, char *error,
                       size_t elen);

/* Name of the region for a run directory ("/sluice.<hash>"), into buf. */
void sl_shm_name(const char *run_dir, char *buf, size_t len);
/* Creates (mode 0640 minus the umask) and maps the region; NULL with err,
 * also if a region of that name exists: the supervisor removes a stale one
 * (sl_shm_unlink) while it holds the pidfile lock, which proves that no
 * live supervisor owns it. */
sl_shm_t *sl_shm_create(const char *name, unsigned n_slots, size_t lease_capacity,
                        char *err, size_t errlen);
/* Maps an existing region read-only (monitor); NULL with err. */
const sl_shm_t *sl_shm_attach(const char *name, char *err, size_t errlen);
void sl_shm_unmap(const void *shm);
int sl_shm_unlink(const char *name);

/* The lease table inside the region. */
sl_lease_table_t *sl_shm_leases(sl_shm_t *shm);
const sl_lease_table_t *sl_shm_leases_ro(const sl_shm_t *shm);

/* Sum of one worker counter over all slots (optionally of one role, 0 = any). */
uint64_t sl_shm_sum(const sl_shm_t *shm, int counter, int role);

uint64_t sl_now_ms(void);        /* CLOCK_MONOTONIC */
uint64_t sl_now_us(void);        /* CLOCK_MONOTONIC, microseconds */
uint64_t sl_wall_ms(void);       /* CLOCK_REALTIME */
uint64_t sl_wall_us(void);       /* CLOCK_REALTIME, microseconds */
/* ms milliseconds from now on clock: the absolute time the timed waits
 * take (pthread_cond_timedwait, pthread_clockjoin_np). */
struct timespec sl_deadline(clockid_t clock, unsigned ms);

#endif
