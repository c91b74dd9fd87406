/* zmon — ZeroMQ's socket monitor, counted in a worker's shared-memory slot.
 *
 * A worker creates one sl_zmon_t on its loop and attaches each ZeroMQ
 * socket it creates (sl_zmon_attach, before its bind or connect, so that a
 * bind failure is seen): zmq_socket_monitor() publishes the socket's events
 * on an inproc PAIR that the loop watches; each event increments the
 * socket's entry and the worker's totals in sl_zmon_stats_t (common/stats.h:
 * connects, retries, bind/accept/handshake failures, disconnects, peers
 * now) and goes into the worker's ring of recent events. A socket is
 * detached (sl_zmon_detach) before it is closed; its entry then shows it
 * closed until another socket needs the room (the entry of a socket that
 * saw no event at all is freed at once).
 *
 * stats may be NULL (no shared memory: a unit test, a tool): the callbacks
 * still run. The writer side is for the worker process that owns the loop
 * (ingest or pipeline, its loop thread only); the reader side
 * (sl_zmon_sock_get, sl_zmon_ring_get) for anyone who maps the region
 * (sluice-monitor, the supervisor). */
#ifndef SL_ZMON_H
#define SL_ZMON_H

#include <stddef.h>
#include <stdint.h>
#include "common/loop.h"
#include "common/stats.h"

typedef struct sl_zmon sl_zmon_t;

/* Called for each event of an attached socket, after it was counted:
 * event is ZMQ_EVENT_*, value the event's value (errno of a failure, the
 * descriptor, or the retry interval), endpoint its address text. */
typedef void (*sl_zmon_fn)(void *arg, int event, int value, const char *endpoint);

/* The worker's monitor on loop, with the ZeroMQ context zctx. stats: the
 * slot's area (its totals and ring are kept: a respawned worker continues
 * them; entries left open by a previous process are marked closed). */
sl_zmon_t *sl_zmon_new(void *zctx, sl_loop_t *loop, sl_zmon_stats_t *stats);
/* Detaches every socket still attached and frees; *self_p = NULL. */
void sl_zmon_destroy(sl_zmon_t **self_p);

/* Attaches the socket monitor to sock. kind says what the socket is for
 * (shown as is), endpoint the address it will bind or connect (may be
 * NULL, then set later with sl_zmon_endpoint). fn (may be NULL) is called
 * for each event. 0, or -1 if ZeroMQ refused (the socket works unmonitored;
 * logged). */
int sl_zmon_attach(sl_zmon_t *zm, void *sock, const char *kind, const char *endpoint,
                   sl_zmon_fn fn, void *arg);
/* Sets the endpoint shown for sock (after a connect to a new peer). */
void sl_zmon_endpoint(sl_zmon_t *zm, void *sock, const char *endpoint);
/* Reads the events still pending for sock, stops monitoring it and marks
 * its entry closed (peers 0). Call before zmq_close(sock). No-op for a
 * socket not attached. */
void sl_zmon_detach(sl_zmon_t *zm, void *sock);
/* Reads every pending event of every socket now (the loop does it when the
 * PAIRs are readable). Returns the number of events read. */
int sl_zmon_poll(sl_zmon_t *zm);

/* Counts one event in stats (entry sock, -1 = none) and writes it into
 * the ring: what sl_zmon's loop callback does for each event, exposed for
 * tests. ms is CLOCK_REALTIME. */
void sl_zmon_record(sl_zmon_stats_t *stats, int sock, int event, int value,
                    const char *endpoint, uint64_t ms);
/* Name of a ZMQ_EVENT_* ("connected", "bind_failed", ...); "?" if unknown. */
const char *sl_zmon_event_name(int event);
/* Whether the event is a failure (its value is kept as the entry's
 * last_errno and the ring's err: an errno, except for
 * handshake_failed_protocol, a ZMQ_PROTOCOL_ERROR_* code, and
 * handshake_failed_auth, a ZAP status code). */
int sl_zmon_event_is_failure(int event);
/* What a failure's value means, as text, into buf ("" if none). */
const char *sl_zmon_failure_text(int event, int value, char *buf, size_t len);

/* Reader side: a consistent copy of one entry (its kind and endpoint texts
 * with the counters). 0, or -1 if the entry is free. */
typedef struct {
    int      state;                  /* SL_ZS_* */
    int      last_event;
    int      last_errno;
    uint64_t last_ms;
    uint64_t c[SL_ZC__COUNT];
    char     kind[SL_ZSOCK_KIND_MAX];
    char     endpoint[SL_ZSOCK_EP_MAX];
} sl_zsock_view_t;
int sl_zmon_sock_get(const sl_zmon_stats_t *stats, int sock, sl_zsock_view_t *out);

/* The most recent events, oldest first, at most max (and SL_ZRING); an
 * event overwritten while being copied is left out. Returns how many. */
typedef struct {
    uint64_t n;                      /* its number: 1 = the slot's first event */
    uint64_t ms;
    int      event;
    int      sock;
    int      err;
    char     text[SL_ZEVENT_TEXT_MAX];
} sl_zevent_view_t;
size_t sl_zmon_ring_get(const sl_zmon_stats_t *stats, sl_zevent_view_t *out, size_t max);

#endif
