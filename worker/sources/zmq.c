/* zmq source: one notification per single-part message on a PULL socket
 * (sluice-inject, or any ZeroMQ producer). At most once: ZeroMQ has no
 * acknowledgement to give back to the producer (README, delivery table).
 *
 * ZeroMQ cuts a connection whose peer sends a message over
 * max_message_size (ZMQ_MAXMSGSIZE) or breaks the protocol, without saying
 * why, and the connecting side then never reconnects (a protocol error
 * ends its session). So a socket monitor counts every disconnect; in
 * connect mode a disconnect that no reconnect attempt follows within
 * 200 ms was such a cut, and the source connects again. In bind mode the
 * producer reconnects by itself; the log line says what may have happened. */
#include "worker/sources/source.h"

#include "common/source_conf.h"
#include "common/zmon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_RECONNECT_AFTER_MS 200
#define S_DRAIN_QUIET_MS 50

typedef struct {
    void *sock;
    sl_zmon_t *zmon;              /* the worker's socket monitor, or our own */
    sl_zmon_t *own_zmon;          /* without one from the worker (stats not kept) */
    int closing;                  /* the socket is being closed: events no longer acted on */
    sl_loop_timer_t *reconnect;
    uint64_t drain_start, last_msg;
} s_zmq_t;

static const sl_zmq_source_opts_t *
s_opts(const sl_source_inst_t *src)
{
    return src->env.sc->opts;
}

static void
s_reconnect(sl_loop_t *loop, void *arg)
{
    (void) loop;
    sl_source_inst_t *src = arg;
    s_zmq_t *z = src->ctx;
    const sl_zmq_source_opts_t *sc = s_opts(src);
    z->reconnect = NULL;
    if (!z->sock)
        return;
    sl_log_limited(src->env.rl, SL_LOG_WARN, "zmq source %s: ZeroMQ cut the connection for a "
                   "message over max_message_size = %llu bytes or a protocol error (what the "
                   "producer had queued for us is lost); connecting again; see "
                   "source_disconnects in sluice-monitor", sc->endpoint,
                   (unsigned long long) src->env.conf->max_message_size);
    if (zmq_connect(z->sock, sc->endpoint) < 0)
        sl_log_limited(src->env.rl, SL_LOG_ERROR, "zmq source: cannot connect to %s again: %s",
                       sc->endpoint, zmq_strerror(errno));
}

/* Each event of the source socket, after common/zmon counted it. */
static void
s_monitor_event(void *arg, int event, int value, const char *endpoint)
{
    (void) value;
    (void) endpoint;
    sl_source_inst_t *src = arg;
    s_zmq_t *z = src->ctx;
    const sl_zmq_source_opts_t *sc = s_opts(src);
    sl_loop_t *loop = src->env.loop;
    if (z->closing)
        return;
    if (event != ZMQ_EVENT_DISCONNECTED && event != ZMQ_EVENT_CONNECT_RETRIED &&
        event != ZMQ_EVENT_CONNECTED && event != ZMQ_EVENT_CONNECT_DELAYED)
        return;
    if (event != ZMQ_EVENT_DISCONNECTED) {
        if (z->reconnect)             /* the session lives: it reconnects */
            sl_loop_cancel(loop, &z->reconnect);
        return;
    }
    SL_INC(src->env.slot, source_disconnects, 1);
    if (sc->mode != SL_ZMQ_BIND) {
        if (!z->reconnect)
            z->reconnect = sl_loop_after(loop, S_RECONNECT_AFTER_MS, s_reconnect, src);
    } else {
        sl_log_limited(src->env.rl, SL_LOG_WARN, "zmq source %s: a producer disconnected "
                       "(if it did not close its socket, ZeroMQ cut it off for a message "
                       "over max_message_size = %llu bytes or a protocol error; what it "
                       "had queued is lost)", sc->endpoint,
                       (unsigned long long) src->env.conf->max_message_size);
    }
}

/* Closes the source socket (detached from the monitor first). */
static void
s_close_sock(s_zmq_t *z)
{
    int zero = 0;
    z->closing = 1;                     /* the detach reads the last events */
    sl_zmon_detach(z->zmon, z->sock);
    zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(z->sock);
    z->sock = NULL;
}

static int
s_init(sl_source_inst_t *src, char *err, size_t errlen)
{
    const sl_zmq_source_opts_t *sc = s_opts(src);
    const sl_conf_t *c = src->env.conf;
    s_zmq_t *z = sl_xcalloc(1, sizeof *z);
    src->ctx = z;
    z->sock = zmq_socket(src->env.zctx, ZMQ_PULL);
    int hwm = (int) sl_conf_source_hwm(c), ivl = 20;
    zmq_setsockopt(z->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* A larger message is refused by libzmq before it is buffered (it
     * disconnects the peer): one 512 MiB message once took 533 MB. */
    int64_t maxmsg = (int64_t) c->max_message_size;
    zmq_setsockopt(z->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* Reconnect quickly to a producer that binds after we start. */
    zmq_setsockopt(z->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    /* The monitor counts every disconnect (see the top of this file); it is
     * attached before the bind, so that a failed bind is counted too. */
    z->zmon = src->env.zmon;
    if (!z->zmon)
        z->zmon = z->own_zmon = sl_zmon_new(src->env.zctx, src->env.loop, NULL);
    sl_zmon_attach(z->zmon, z->sock, "source", sc->endpoint, s_monitor_event, src);
    if (sc->mode == SL_ZMQ_BIND) {
        /* Worker k binds port+k (tcp) or path.k (ipc). */
        char ep[256];
        const char *colon = strrchr(sc->endpoint, ':');
        if (strncmp(sc->endpoint, "tcp://", 6) == 0 && colon && colon > sc->endpoint + 5)
            snprintf(ep, sizeof ep, "%.*s:%d", (int) (colon - sc->endpoint), sc->endpoint,
                     atoi(colon + 1) + src->env.worker);
        else
            snprintf(ep, sizeof ep, "%s.%d", sc->endpoint, src->env.worker);
        if (zmq_bind(z->sock, ep) < 0) {
            snprintf(err, errlen, "zmq source: cannot bind %s: %s (address in use? another "
                     "sluiced running?)", ep, zmq_strerror(errno));
            sl_zmon_poll(z->zmon);          /* count the failure before the worker exits */
            return -1;
        }
        sl_zmon_endpoint(z->zmon, z->sock, ep);
    } else if (zmq_connect(z->sock, sc->endpoint) < 0) {
        snprintf(err, errlen, "zmq source: cannot connect to %s: %s", sc->endpoint,
                 zmq_strerror(errno));
        return -1;
    }
    return sl_source_watch_zmq(src, z->sock, SL_LOOP_IN);
}

static size_t
s_read(sl_source_inst_t *src, size_t budget)
{
    s_zmq_t *z = src->ctx;
    size_t got = 0;
    while (got < budget && !src->paused && z->sock) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, z->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            break;
        }
        got++;
        if (zmq_msg_more(&msg)) {
            /* one notification per single-part message: a multipart
             * message is one bad message, not K */
            size_t parts = 1;
            while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, z->sock, 0) >= 0)
                parts++;
            zmq_msg_close(&msg);
            SL_INC(src->env.slot, received, 1);
            SL_INC(src->env.slot, drop_multipart, 1);
            sl_log_limited(src->env.rl, SL_LOG_WARN, "dropped a ZeroMQ message of %zu parts "
                           "from %s: send one notification per single-part message; see "
                           "drop_multipart in sluice-monitor", parts, s_opts(src)->endpoint);
            continue;
        }
        sl_source_deliver(src, 0, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
    if (got && z->drain_start)
        z->last_msg = sl_now_ms();
    return got;
}

/* Takes what the socket already holds (ZeroMQ drops a PULL socket's queue
 * when it closes), until it stays empty for 50 ms or a third of
 * shutdown_grace has passed (a producer that never stops sending would
 * hold the drain forever); then closes the socket. What a producer still
 * sends after that is lost: ZeroMQ has no acknowledgement. */
static int
s_drain(sl_source_inst_t *src)
{
    s_zmq_t *z = src->ctx;
    if (!z->sock)
        return 0;
    uint64_t now = sl_now_ms();
    if (!z->drain_start)
        z->drain_start = z->last_msg = now;
    uint64_t limit = (uint64_t) src->env.conf->shutdown_grace * 1000 / 3;
    if (now - z->drain_start < limit && now - z->last_msg < S_DRAIN_QUIET_MS)
        return 1;
    sl_source_unwatch_all(src);
    s_close_sock(z);
    return 0;
}

static void
s_destroy(sl_source_inst_t *src)
{
    s_zmq_t *z = src->ctx;
    if (!z)
        return;
    if (z->sock)
        s_close_sock(z);
    if (z->reconnect)
        sl_loop_cancel(src->env.loop, &z->reconnect);
    sl_zmon_destroy(&z->own_zmon);
    free(z);
    src->ctx = NULL;
}

const sl_source_plugin_t sl_source_zmq = {
    .name = "zmq",
    .flags = 0,
    .init = s_init,
    .read = s_read,
    .drain = s_drain,
    .destroy = s_destroy,
};
