/* zmon — ZeroMQ's socket monitor, counted in a worker's shared-memory slot
 * (see zmon.h). */
#include "common/zmon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"

#define S_READ_BUDGET 256          /* events per PAIR per callback */

typedef struct {
    sl_zmon_t *zm;
    void *sock;
    void *pair;                     /* receives sock's events */
    sl_loop_watch_t *watch;
    int entry;                      /* index in stats->sock, -1 = unlisted */
    sl_zmon_fn fn;
    void *arg;
} s_att_t;

struct sl_zmon {
    void *zctx;
    sl_loop_t *loop;
    sl_zmon_stats_t *stats;
    s_att_t **att;
    size_t n, cap;
    unsigned seq;                   /* for unique inproc names */
};

static const struct {
    int event;
    const char *name;
} s_names[] = {
    { ZMQ_EVENT_CONNECTED, "connected" },
    { ZMQ_EVENT_CONNECT_DELAYED, "connect_delayed" },
    { ZMQ_EVENT_CONNECT_RETRIED, "connect_retried" },
    { ZMQ_EVENT_LISTENING, "listening" },
    { ZMQ_EVENT_BIND_FAILED, "bind_failed" },
    { ZMQ_EVENT_ACCEPTED, "accepted" },
    { ZMQ_EVENT_ACCEPT_FAILED, "accept_failed" },
    { ZMQ_EVENT_CLOSED, "closed" },
    { ZMQ_EVENT_CLOSE_FAILED, "close_failed" },
    { ZMQ_EVENT_DISCONNECTED, "disconnected" },
    { ZMQ_EVENT_MONITOR_STOPPED, "monitor_stopped" },
    { ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, "handshake_failed" },
    { ZMQ_EVENT_HANDSHAKE_SUCCEEDED, "handshake_succeeded" },
    { ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, "handshake_failed_protocol" },
    { ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, "handshake_failed_auth" },
};

const char *
sl_zmon_event_name(int event)
{
    for (size_t i = 0; i < sizeof s_names / sizeof *s_names; i++)
        if (s_names[i].event == event)
            return s_names[i].name;
    return "?";
}

int
sl_zmon_event_is_failure(int event)
{
    return event == ZMQ_EVENT_BIND_FAILED || event == ZMQ_EVENT_ACCEPT_FAILED ||
           event == ZMQ_EVENT_CLOSE_FAILED || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
           event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
           event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
}

const char *
sl_zmon_failure_text(int event, int value, char *buf, size_t len)
{
    if (!sl_zmon_event_is_failure(event) || value <= 0)
        snprintf(buf, len, "%s", "");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        snprintf(buf, len, "ZMTP protocol error 0x%x (%s)", (unsigned) value,
                 (value & 0x10000000) ? "the peer's greeting or handshake: is it ZeroMQ, with "
                 "the same security mechanism?" : "ZAP");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf(buf, len, "refused by authentication (ZAP status %d)", value);
    else
        snprintf(buf, len, "%s", strerror(value));
    return buf;
}

/* The counter an event increments; -1 = none. */
static int
s_counter(int event)
{
    switch (event) {
    case ZMQ_EVENT_CONNECTED: return SL_ZC_connects;
    case ZMQ_EVENT_CONNECT_DELAYED: return SL_ZC_connect_delays;
    case ZMQ_EVENT_CONNECT_RETRIED: return SL_ZC_connect_retries;
    case ZMQ_EVENT_LISTENING: return SL_ZC_binds;
    case ZMQ_EVENT_BIND_FAILED: return SL_ZC_bind_failures;
    case ZMQ_EVENT_ACCEPTED: return SL_ZC_accepted;
    case ZMQ_EVENT_ACCEPT_FAILED: return SL_ZC_accept_failures;
    case ZMQ_EVENT_CLOSED: return SL_ZC_closed;
    case ZMQ_EVENT_CLOSE_FAILED: return SL_ZC_close_failures;
    case ZMQ_EVENT_DISCONNECTED: return SL_ZC_disconnects;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return SL_ZC_handshakes;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return SL_ZC_handshake_failures;
    default: return -1;
    }
}

static uint64_t
s_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void
s_add(_Atomic uint64_t *c, int64_t d)
{
    uint64_t v = s_get(c);
    if (d < 0 && v < (uint64_t) -d)
        v = 0;
    else
        v += (uint64_t) d;
    atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Writes an entry's endpoint (one line, truncated) between two increments
 * of its seq. */
static void
s_set_endpoint(sl_zsock_stats_t *e, const char *endpoint)
{
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    snprintf(e->endpoint, sizeof e->endpoint, "%s", endpoint ? endpoint : "");
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->seq, s + 2, memory_order_relaxed);
}

void
sl_zmon_record(sl_zmon_stats_t *st, int sock, int event, int value, const char *endpoint,
               uint64_t ms)
{
    if (!st || event == ZMQ_EVENT_MONITOR_STOPPED)
        return;
    sl_zsock_stats_t *e = sock >= 0 && sock < SL_MAX_ZSOCKS ? &st->sock[sock] : NULL;
    int c = s_counter(event);
    if (c >= 0) {
        s_add(&st->total[c], 1);
        if (e)
            s_add(&e->c[c], 1);
    }
    int64_t dp = 0;
    if (event == ZMQ_EVENT_CONNECTED || event == ZMQ_EVENT_ACCEPTED)
        dp = 1;
    else if (event == ZMQ_EVENT_DISCONNECTED)
        dp = -1;
    if (dp && (!e || dp > 0 || s_get(&e->c[SL_ZC_peers]) > 0)) {
        s_add(&st->total[SL_ZC_peers], dp);
        if (e)
            s_add(&e->c[SL_ZC_peers], dp);
    }
    int fail = sl_zmon_event_is_failure(event);
    if (e) {
        atomic_store_explicit(&e->last_event, (uint32_t) event, memory_order_relaxed);
        atomic_store_explicit(&e->last_errno, fail ? value : 0, memory_order_relaxed);
        atomic_store_explicit(&e->last_ms, ms, memory_order_relaxed);
    }
    /* the ring: seq odd while the entry is written; head moves last */
    uint64_t h = atomic_load_explicit(&st->head, memory_order_relaxed);
    sl_zevent_t *r = &st->ring[h % SL_ZRING];
    uint32_t s = atomic_load_explicit(&r->seq, memory_order_relaxed);
    atomic_store_explicit(&r->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&r->event, (uint32_t) event, memory_order_relaxed);
    atomic_store_explicit(&r->sock, e ? sock : -1, memory_order_relaxed);
    atomic_store_explicit(&r->err, fail ? value : 0, memory_order_relaxed);
    atomic_store_explicit(&r->ms, ms, memory_order_relaxed);
    atomic_store_explicit(&r->n, h + 1, memory_order_relaxed);
    snprintf(r->text, sizeof r->text, "%s", endpoint ? endpoint : "");
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&r->seq, s + 2, memory_order_relaxed);
    atomic_store_explicit(&st->head, h + 1, memory_order_release);
}

int
sl_zmon_sock_get(const sl_zmon_stats_t *st, int sock, sl_zsock_view_t *out)
{
    if (!st || sock < 0 || sock >= SL_MAX_ZSOCKS)
        return -1;
    const sl_zsock_stats_t *e = &st->sock[sock];
    for (int attempt = 0; attempt < 100; attempt++) {
        uint32_t before = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (before & 1)
            continue;
        out->state = (int) atomic_load_explicit(&e->state, memory_order_relaxed);
        out->last_event = (int) atomic_load_explicit(&e->last_event, memory_order_relaxed);
        out->last_errno = atomic_load_explicit(&e->last_errno, memory_order_relaxed);
        out->last_ms = atomic_load_explicit(&e->last_ms, memory_order_relaxed);
        for (int k = 0; k < SL_ZC__COUNT; k++)
            out->c[k] = s_get(&e->c[k]);
        snprintf(out->kind, sizeof out->kind, "%.*s", (int) sizeof e->kind - 1, e->kind);
        snprintf(out->endpoint, sizeof out->endpoint, "%.*s", (int) sizeof e->endpoint - 1,
                 e->endpoint);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->seq, memory_order_relaxed) == before)
            break;
    }
    return out->state == SL_ZS_FREE ? -1 : 0;
}

size_t
sl_zmon_ring_get(const sl_zmon_stats_t *st, sl_zevent_view_t *out, size_t max)
{
    if (!st)
        return 0;
    uint64_t h = atomic_load_explicit(&st->head, memory_order_acquire);
    if (max > SL_ZRING)
        max = SL_ZRING;
    uint64_t from = h > max ? h - max : 0;
    size_t n = 0;
    for (uint64_t i = from; i < h; i++) {
        const sl_zevent_t *r = &st->ring[i % SL_ZRING];
        uint32_t before = atomic_load_explicit(&r->seq, memory_order_acquire);
        if (before & 1)
            continue;
        sl_zevent_view_t *v = &out[n];
        v->n = atomic_load_explicit(&r->n, memory_order_relaxed);
        v->ms = atomic_load_explicit(&r->ms, memory_order_relaxed);
        v->event = (int) atomic_load_explicit(&r->event, memory_order_relaxed);
        v->sock = atomic_load_explicit(&r->sock, memory_order_relaxed);
        v->err = atomic_load_explicit(&r->err, memory_order_relaxed);
        snprintf(v->text, sizeof v->text, "%.*s", (int) sizeof r->text - 1, r->text);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&r->seq, memory_order_relaxed) == before && v->n == i + 1)
            n++;
    }
    return n;
}

/* An entry for a new socket: a free one, else the one closed longest ago;
 * -1 if every entry is open. Its counters start from zero (the totals
 * keep what the previous socket counted). */
static int
s_entry(sl_zmon_stats_t *st, const char *kind, const char *endpoint)
{
    if (!st)
        return -1;
    int best = -1;
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < SL_MAX_ZSOCKS; i++) {
        uint32_t state = atomic_load_explicit(&st->sock[i].state, memory_order_relaxed);
        if (state == SL_ZS_FREE) {
            best = i;
            break;
        }
        uint64_t ms = atomic_load_explicit(&st->sock[i].last_ms, memory_order_relaxed);
        if (state == SL_ZS_CLOSED && ms < oldest) {
            oldest = ms;
            best = i;
        }
    }
    if (best < 0) {
        atomic_store_explicit(&st->unlisted,
                              atomic_load_explicit(&st->unlisted, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return -1;
    }
    sl_zsock_stats_t *e = &st->sock[best];
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (int k = 0; k < SL_ZC__COUNT; k++)
        atomic_store_explicit(&e->c[k], 0, memory_order_relaxed);
    atomic_store_explicit(&e->last_event, 0, memory_order_relaxed);
    atomic_store_explicit(&e->last_errno, 0, memory_order_relaxed);
    atomic_store_explicit(&e->last_ms, sl_wall_ms(), memory_order_relaxed);
    snprintf(e->kind, sizeof e->kind, "%s", kind ? kind : "");
    snprintf(e->endpoint, sizeof e->endpoint, "%s", endpoint ? endpoint : "");
    atomic_store_explicit(&e->state, SL_ZS_OPEN, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->seq, s + 2, memory_order_relaxed);
    if ((uint32_t) best + 1 > atomic_load_explicit(&st->n_socks, memory_order_relaxed))
        atomic_store_explicit(&st->n_socks, (uint32_t) best + 1, memory_order_relaxed);
    return best;
}

static int
s_read(s_att_t *a, int budget)
{
    int got = 0;
    while (got < budget) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, a->pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        uint16_t id = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&id, zmq_msg_data(&ev), 2);
            memcpy(&value, (const char *) zmq_msg_data(&ev) + 2, 4);
        }
        int more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        char text[SL_ZEVENT_TEXT_MAX + SL_ZSOCK_EP_MAX] = "";
        if (more) {
            zmq_msg_init(&addr);
            if (zmq_msg_recv(&addr, a->pair, 0) >= 0) {
                size_t n = zmq_msg_size(&addr);
                if (n >= sizeof text)
                    n = sizeof text - 1;
                memcpy(text, zmq_msg_data(&addr), n);
                text[n] = '\0';
            }
            zmq_msg_close(&addr);
        }
        got++;
        if (id == ZMQ_EVENT_MONITOR_STOPPED)
            continue;
        sl_zmon_stats_t *st = a->zm->stats;
        if (st && a->entry >= 0 && !st->sock[a->entry].endpoint[0] && text[0])
            s_set_endpoint(&st->sock[a->entry], text);   /* bound to a wildcard, say */
        sl_zmon_record(st, a->entry, id, (int) value, text, sl_wall_ms());
        if (a->fn)
            a->fn(a->arg, id, (int) value, text);
    }
    return got;
}

static void
s_ready(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    (void) revents;
    s_read(arg, S_READ_BUDGET);
}

sl_zmon_t *
sl_zmon_new(void *zctx, sl_loop_t *loop, sl_zmon_stats_t *stats)
{
    sl_zmon_t *zm = calloc(1, sizeof *zm);
    if (!zm)
        return NULL;
    zm->zctx = zctx;
    zm->loop = loop;
    zm->stats = stats;
    if (stats) {
        /* a previous process of this slot left these open: gone with it */
        for (int i = 0; i < SL_MAX_ZSOCKS; i++) {
            sl_zsock_stats_t *e = &stats->sock[i];
            if (atomic_load_explicit(&e->state, memory_order_relaxed) == SL_ZS_OPEN) {
                atomic_store_explicit(&e->c[SL_ZC_peers], 0, memory_order_relaxed);
                atomic_store_explicit(&e->state, SL_ZS_CLOSED, memory_order_relaxed);
            }
        }
        atomic_store_explicit(&stats->total[SL_ZC_peers], 0, memory_order_relaxed);
        atomic_store_explicit(&stats->unlisted, 0, memory_order_relaxed);
    }
    return zm;
}

static s_att_t *
s_find(sl_zmon_t *zm, void *sock, size_t *pos)
{
    for (size_t i = 0; i < zm->n; i++)
        if (zm->att[i]->sock == sock) {
            if (pos)
                *pos = i;
            return zm->att[i];
        }
    return NULL;
}

int
sl_zmon_attach(sl_zmon_t *zm, void *sock, const char *kind, const char *endpoint,
               sl_zmon_fn fn, void *arg)
{
    if (!zm || !sock || s_find(zm, sock, NULL))
        return -1;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://sl-zmon-%p-%u", (void *) zm, zm->seq++);
    if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_ALL) < 0) {
        sl_warn("cannot monitor a %s socket (%s): %s; it works, but sluice-monitor does not "
                "show its connections", kind ? kind : "ZeroMQ", endpoint ? endpoint : "-",
                zmq_strerror(zmq_errno()));
        return -1;
    }
    void *pair = zmq_socket(zm->zctx, ZMQ_PAIR);
    if (!pair || zmq_connect(pair, ep) < 0) {
        sl_warn("cannot read the monitor of a %s socket (%s): %s (too many sockets? raise "
                "the limit or use fewer partitions)", kind ? kind : "ZeroMQ",
                endpoint ? endpoint : "-", zmq_strerror(zmq_errno()));
        if (pair)
            zmq_close(pair);
        zmq_socket_monitor(sock, NULL, 0);
        return -1;
    }
    s_att_t *a = calloc(1, sizeof *a);
    if (zm->n == zm->cap && a) {
        size_t cap = zm->cap ? zm->cap * 2 : 8;
        s_att_t **p = realloc(zm->att, cap * sizeof *p);
        if (p) {
            zm->att = p;
            zm->cap = cap;
        }
    }
    if (!a || zm->n == zm->cap) {
        free(a);
        zmq_close(pair);
        zmq_socket_monitor(sock, NULL, 0);
        return -1;
    }
    a->zm = zm;
    a->sock = sock;
    a->pair = pair;
    a->fn = fn;
    a->arg = arg;
    a->entry = s_entry(zm->stats, kind, endpoint);
    if (zm->loop)
        a->watch = sl_loop_watch_zmq(zm->loop, pair, SL_LOOP_IN, s_ready, a);
    zm->att[zm->n++] = a;
    return 0;
}

void
sl_zmon_endpoint(sl_zmon_t *zm, void *sock, const char *endpoint)
{
    s_att_t *a = zm ? s_find(zm, sock, NULL) : NULL;
    if (!a || a->entry < 0)
        return;
    s_set_endpoint(&zm->stats->sock[a->entry], endpoint);
}

static void
s_detach(sl_zmon_t *zm, s_att_t *a)
{
    s_read(a, 1 << 20);
    zmq_socket_monitor(a->sock, NULL, 0);
    if (a->watch)
        sl_loop_unwatch(zm->loop, &a->watch);
    int zero = 0;
    zmq_setsockopt(a->pair, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(a->pair);
    sl_zmon_stats_t *st = zm->stats;
    if (st && a->entry >= 0) {
        sl_zsock_stats_t *e = &st->sock[a->entry];
        s_add(&st->total[SL_ZC_peers], -(int64_t) s_get(&e->c[SL_ZC_peers]));
        atomic_store_explicit(&e->c[SL_ZC_peers], 0, memory_order_relaxed);
        atomic_store_explicit(&e->last_ms, sl_wall_ms(), memory_order_relaxed);
        /* a socket that saw no event (a partition whose lease was taken
         * elsewhere meanwhile) leaves no trace in the list */
        int quiet = atomic_load_explicit(&e->last_event, memory_order_relaxed) == 0;
        atomic_store_explicit(&e->state, quiet ? SL_ZS_FREE : SL_ZS_CLOSED,
                              memory_order_relaxed);
    } else if (st) {
        uint32_t u = atomic_load_explicit(&st->unlisted, memory_order_relaxed);
        atomic_store_explicit(&st->unlisted, u ? u - 1 : 0, memory_order_relaxed);
    }
    free(a);
}

void
sl_zmon_detach(sl_zmon_t *zm, void *sock)
{
    size_t pos;
    s_att_t *a = zm ? s_find(zm, sock, &pos) : NULL;
    if (!a)
        return;
    zm->att[pos] = zm->att[--zm->n];
    s_detach(zm, a);
}

int
sl_zmon_poll(sl_zmon_t *zm)
{
    int got = 0;
    for (size_t i = 0; zm && i < zm->n; i++)
        got += s_read(zm->att[i], 1 << 20);
    return got;
}

void
sl_zmon_destroy(sl_zmon_t **self_p)
{
    sl_zmon_t *zm = *self_p;
    if (!zm)
        return;
    while (zm->n)
        s_detach(zm, zm->att[--zm->n]);
    free(zm->att);
    free(zm);
    *self_p = NULL;
}
