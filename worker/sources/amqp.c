/* amqp source: oslo.messaging notifications from RabbitMQ (rabbitmq-c).
 *
 * Topology, as oslo's notification listener declares it (impl_rabbit.py
 * declare_topic_consumer, with Ceilometer's targets): for every control
 * exchange a topic exchange; for every topic and priority a queue
 * "<topic>.<priority>" bound to every exchange with that routing key;
 * durable/auto_delete as amqp_durable_queues/amqp_auto_delete, quorum and
 * HA arguments as rabbit_quorum_queue/rabbit_ha_queues, plus the operator's
 * x-* arguments. passive: declare nothing, check the queues exist.
 *
 * Every broker of the source (url, or each of messaging_urls) gets one
 * connection per ingest worker: competing consumers on the same queues.
 *
 * Delivery: each message is one notification (the messagingv2 envelope);
 * its token is (broker, connection epoch, delivery tag). The core acks in
 * delivery order (SL_SOURCE_F_ORDERED), so acks are coalesced into one
 * basic.ack with multiple=1 per loop iteration (before sleeping) or every
 * prefetch/2 deliveries. A nack (a publisher gave up for a reason that may
 * heal, or a stop) is basic.nack with requeue. Acks for a connection that
 * is gone are dropped: the broker requeued those deliveries already.
 * basic.qos prefetch bounds what is unacknowledged, so while a destination
 * is down the broker keeps the backlog.
 *
 * Connection life: rabbitmq-c has no recovery and handles heartbeats only
 * inside its calls. A periodic timer (a quarter of the heartbeat, at most
 * 1 s) reads from the connection when the core is not paused (that makes
 * rabbitmq-c send its heartbeats and notice a silent broker), or sends a
 * heartbeat frame itself while paused. Any socket error, heartbeat
 * timeout, channel or connection close or consumer cancel marks the
 * broker down: its deliveries' tokens become stale, it reconnects after a
 * capped exponential backoff with full jitter, moving along the URL's host
 * list after a failed attempt, then redeclares and consumes again.
 * Opening blocks the worker for at most `timeout` per step. */
#include "worker/sources/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <amqp.h>
#include <amqp_framing.h>

#include "common/amqp.h"
#include "common/source_conf.h"
#include "worker/output.h"

#define S_TAG_BITS   48
#define S_EPOCH_BITS 12
#define S_TAG_MASK   ((UINT64_C(1) << S_TAG_BITS) - 1)
#define S_EPOCH_MASK ((UINT64_C(1) << S_EPOCH_BITS) - 1)

enum { S_DOWN = 0, S_CONNECTING = 1, S_UP = 2 };

typedef struct s_amqp s_amqp_t;

typedef struct {
    s_amqp_t *a;
    unsigned index;                 /* within the source (token bits) */
    sl_amqp_url_t url;
    char label[SL_PUB_LABEL_MAX];
    size_t host;                    /* the fail-over list's current host */
    amqp_connection_state_t conn;
    int state;
    uint64_t epoch;                 /* connections opened (token bits) */
    uint64_t ack_tag;               /* coalesced ack not sent yet (0 = none) */
    uint64_t ack_n;
    uint64_t unacked;
    unsigned attempts;              /* failed connection attempts in a row */
    sl_loop_timer_t *retry;
    uint64_t last_send_ms;
    sl_broker_stats_t *st;          /* NULL beyond SL_MAX_BROKERS */
    sl_broker_stats_t none;         /* ... then counted here, not shown */
} s_broker_t;

struct s_amqp {
    sl_source_inst_t *src;
    const sl_amqp_source_opts_t *o;
    s_broker_t *b;
    size_t n;
    sl_loop_timer_t *service;
    uint64_t rnd;
    int stopping;
    char **queues;                  /* "<topic>.<priority>" */
    size_t n_queues;
    char **exchanges;
    size_t n_exchanges;
    amqp_pool_t pool;               /* queue arguments */
    amqp_table_t args;
};

/* Brokers of all amqp sources of this worker, numbered for the stats. */
static unsigned s_brokers_counted;

static const sl_amqp_source_opts_t *
s_opts(const sl_source_inst_t *src)
{
    return src->env.sc->opts;
}

static uint64_t
s_rand(s_amqp_t *a)
{
    a->rnd ^= a->rnd << 13;
    a->rnd ^= a->rnd >> 7;
    a->rnd ^= a->rnd << 17;
    return a->rnd;
}

/* "a,b,c" into a malloc'd array of strings. */
static char **
s_split(const char *list, size_t *n)
{
    size_t cap = 1;
    for (const char *c = list; *c; c++)
        cap += *c == ',';
    char **v = sl_xcalloc(cap, sizeof *v);
    *n = 0;
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k)
            v[(*n)++] = sl_xstrndup(p, k);
        p += k + (p[k] == ',');
    }
    return v;
}

static void
s_free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* --- connection life ----------------------------------------------------- */

static void s_connect(sl_loop_t *loop, void *arg);
static size_t s_read(sl_source_inst_t *src, size_t budget);

/* The watches follow the connections' descriptors. */
static void
s_rewatch(s_amqp_t *a)
{
    sl_source_unwatch_all(a->src);
    if (a->stopping)
        return;
    for (size_t i = 0; i < a->n; i++)
        if (a->b[i].state == S_UP)
            sl_source_watch_fd(a->src, amqp_get_sockfd(a->b[i].conn), SL_LOOP_IN);
}

static void
s_schedule(s_broker_t *b)
{
    const sl_amqp_source_opts_t *o = b->a->o;
    unsigned delay = b->attempts ? sl_output_backoff_ms(o->reconnect_initial, o->reconnect_max,
                                                        b->attempts, s_rand(b->a)) : 0;
    b->retry = sl_loop_after(b->a->src->env.loop, delay, s_connect, b);
}

/* The connection is gone (why says how): forget it, count, reconnect. */
static void
s_down(s_broker_t *b, const char *why)
{
    sl_source_inst_t *src = b->a->src;
    if (b->state == S_UP) {
        SL_BINC(b->st, disconnects, 1);
        sl_log_limited(src->env.rl, SL_LOG_WARN, "amqp source %s: connection lost: %s; %zu "
                       "unacknowledged deliveries go back to the queue (they come again, "
                       "flagged redelivered); reconnecting", b->label, why,
                       (size_t) b->unacked);
    }
    sl_stats_text_set_error(&b->st->t, why);
    sl_amqp_abandon(b->conn);
    b->conn = NULL;
    b->state = S_DOWN;
    b->ack_tag = b->ack_n = 0;
    b->unacked = 0;
    SL_BSET(b->st, state, S_DOWN);
    SL_BSET(b->st, unacked, 0);
    s_rewatch(b->a);
    if (!b->a->stopping && !b->retry)
        s_schedule(b);
}

/* One declaration RPC's outcome: 0, or -1 with the reason in why. */
static int
s_rpc(s_broker_t *b, const char *what, char *why, size_t len)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
    if (sl_amqp_ok(r))
        return 0;
    char text[256];
    sl_amqp_reply_text(r, text, sizeof text);
    snprintf(why, len, "%s: %s", what, text);
    return -1;
}

/* Declares (or, passive, checks) the topology, sets the prefetch and
 * starts consuming: 0, or -1 with why. */
static int
s_declare(s_broker_t *b, char *why, size_t len)
{
    s_amqp_t *a = b->a;
    const sl_amqp_source_opts_t *o = a->o;
    amqp_connection_state_t c = b->conn;
    int durable = o->durable || o->quorum;
    char what[300];
    if (!o->passive)
        for (size_t e = 0; e < a->n_exchanges; e++) {
            amqp_exchange_declare(c, 1, amqp_cstring_bytes(a->exchanges[e]),
                                  amqp_cstring_bytes("topic"), 0, durable, o->auto_delete, 0,
                                  amqp_empty_table);
            snprintf(what, sizeof what, "declaring exchange '%s' (if it exists with another "
                     "durability, set `durable` to match, or `passive: true`)", a->exchanges[e]);
            if (s_rpc(b, what, why, len) < 0)
                return -1;
        }
    for (size_t q = 0; q < a->n_queues; q++) {
        amqp_queue_declare(c, 1, amqp_cstring_bytes(a->queues[q]), o->passive, durable, 0,
                           o->auto_delete, o->passive ? amqp_empty_table : a->args);
        if (o->passive)
            snprintf(what, sizeof what, "checking queue '%s' (passive: it must exist; create "
                     "it or set `passive: false`)", a->queues[q]);
        else
            snprintf(what, sizeof what, "declaring queue '%s' (if it exists with other "
                     "arguments, set durable/quorum/ha_queues/queue_arguments to match, or "
                     "`passive: true`)", a->queues[q]);
        if (s_rpc(b, what, why, len) < 0)
            return -1;
        if (!o->passive)
            for (size_t e = 0; e < a->n_exchanges; e++) {
                amqp_queue_bind(c, 1, amqp_cstring_bytes(a->queues[q]),
                                amqp_cstring_bytes(a->exchanges[e]),
                                amqp_cstring_bytes(a->queues[q]), amqp_empty_table);
                snprintf(what, sizeof what, "binding queue '%s' to exchange '%s'", a->queues[q],
                         a->exchanges[e]);
                if (s_rpc(b, what, why, len) < 0)
                    return -1;
            }
    }
    amqp_basic_qos(c, 1, 0, (uint16_t) o->prefetch, 0);
    if (s_rpc(b, "setting the prefetch (basic.qos)", why, len) < 0)
        return -1;
    for (size_t q = 0; q < a->n_queues; q++) {
        amqp_basic_consume(c, 1, amqp_cstring_bytes(a->queues[q]), amqp_empty_bytes, 0, 0, 0,
                           amqp_empty_table);
        snprintf(what, sizeof what, "consuming from queue '%s'", a->queues[q]);
        if (s_rpc(b, what, why, len) < 0)
            return -1;
    }
    return 0;
}

static void
s_connect(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_broker_t *b = arg;
    s_amqp_t *a = b->a;
    const sl_amqp_source_opts_t *o = a->o;
    sl_source_inst_t *src = a->src;
    b->retry = NULL;
    if (a->stopping)
        return;
    char err[600], step[500], name[96];
    snprintf(name, sizeof name, "sluice ingest %d", src->env.worker);
    sl_amqp_open_opts_t oo = {
        .ca_file = o->ssl_ca_file, .cert_file = o->ssl_cert_file, .key_file = o->ssl_key_file,
        .verify = (int) o->ssl_verify, .heartbeat_s = (o->heartbeat + 999) / 1000,
        .timeout_ms = o->timeout, .name = name,
    };
    sl_amqp_url_label(&b->url, b->host, b->label, sizeof b->label);
    b->state = S_CONNECTING;
    SL_BSET(b->st, state, S_CONNECTING);
    b->conn = sl_amqp_open(&b->url, b->host, &oo, err, sizeof err);
    if (b->conn && s_declare(b, step, sizeof step) < 0) {
        snprintf(err, sizeof err, "%.80s: %s", b->label, step);
        sl_amqp_abandon(b->conn);
        b->conn = NULL;
    }
    if (!b->conn) {
        b->state = S_DOWN;
        SL_BSET(b->st, state, S_DOWN);
        SL_BINC(b->st, reconnect_attempts, 1);
        sl_stats_text_set_error(&b->st->t, err);
        b->attempts++;
        sl_log_limited(src->env.rl, SL_LOG_WARN, "amqp source: %s; retrying%s (attempt %u; "
                       "see reconnect_attempts in sluice-monitor)", err,
                       b->url.n_hosts > 1 ? " with the next host of the URL" : "", b->attempts);
        if (b->url.n_hosts > 1) {
            b->host = (b->host + 1) % b->url.n_hosts;
            SL_BINC(b->st, failovers, 1);
        }
        s_schedule(b);
        return;
    }
    b->epoch++;
    b->state = S_UP;
    b->attempts = 0;
    b->last_send_ms = sl_now_ms();
    SL_BSET(b->st, state, S_UP);
    SL_BINC(b->st, connects, 1);
    sl_stats_text_set_label(&b->st->t, b->label);
    sl_log(SL_LOG_INFO, "amqp source: consuming from %s (%zu queues on %zu exchanges, prefetch "
           "%u)", b->label, a->n_queues, o->passive ? (size_t) 0 : a->n_exchanges, o->prefetch);
    s_rewatch(a);
    /* what arrived with the last RPC replies is in rabbitmq-c's buffer */
    if (!src->paused)
        s_read(src, 256);
}

/* --- acknowledgements ----------------------------------------------------- */

static void
s_flush(s_broker_t *b)
{
    if (!b->ack_tag || b->state != S_UP)
        return;
    int rc = amqp_basic_ack(b->conn, 1, b->ack_tag, 1);
    uint64_t n = b->ack_n;
    b->ack_tag = b->ack_n = 0;
    if (rc != AMQP_STATUS_OK) {
        s_down(b, amqp_error_string2(rc));
        return;
    }
    b->last_send_ms = sl_now_ms();
    SL_BINC(b->st, acks, n);
    SL_BINC(b->st, ack_frames, 1);
}

static int
s_flush_all(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_amqp_t *a = arg;
    for (size_t i = 0; i < a->n; i++)
        s_flush(&a->b[i]);
    return 0;
}

/* The broker of token t, if its connection is the one that delivered it. */
static s_broker_t *
s_owner(s_amqp_t *a, uint64_t t, uint64_t *tag)
{
    size_t bi = (size_t) (t >> (S_TAG_BITS + S_EPOCH_BITS));
    if (bi >= a->n)
        return NULL;
    s_broker_t *b = &a->b[bi];
    if (b->state != S_UP || ((t >> S_TAG_BITS) & S_EPOCH_MASK) != (b->epoch & S_EPOCH_MASK)) {
        SL_BINC(b->st, stale_acks, 1);
        return NULL;
    }
    *tag = t & S_TAG_MASK;
    return b;
}

/* A delivery of b is settled (acked or nacked): one less unacknowledged. */
static void
s_settled(s_broker_t *b)
{
    if (b->unacked)
        b->unacked--;
    SL_BSET(b->st, unacked, b->unacked);
}

static void
s_ack(sl_source_inst_t *src, uint64_t token)
{
    s_amqp_t *a = src->ctx;
    uint64_t tag;
    s_broker_t *b = s_owner(a, token, &tag);
    if (!b)
        return;
    b->ack_tag = tag;
    b->ack_n++;
    s_settled(b);
    if (b->ack_n >= (a->o->prefetch + 1) / 2)
        s_flush(b);
}

static void
s_nack(sl_source_inst_t *src, uint64_t token)
{
    s_amqp_t *a = src->ctx;
    uint64_t tag;
    s_broker_t *b = s_owner(a, token, &tag);
    if (!b)
        return;
    s_flush(b);                       /* earlier deliveries first */
    if (b->state != S_UP)
        return;
    int rc = amqp_basic_nack(b->conn, 1, tag, 0, 1);
    s_settled(b);
    if (rc != AMQP_STATUS_OK) {
        s_down(b, amqp_error_string2(rc));
        return;
    }
    b->last_send_ms = sl_now_ms();
    SL_BINC(b->st, nacks, 1);
}

/* --- reading --------------------------------------------------------------- */

/* A frame other than a delivery is waiting (amqp_consume_message said
 * AMQP_STATUS_UNEXPECTED_STATE): the broker closing the channel or the
 * connection, or cancelling our consumer (its queue was deleted). */
static void
s_other_frame(s_broker_t *b)
{
    amqp_frame_t f;
    struct timeval zero = { 0, 0 };
    char why[300];
    if (amqp_simple_wait_frame_noblock(b->conn, &f, &zero) != AMQP_STATUS_OK) {
        s_down(b, "the connection broke while reading a frame");
        return;
    }
    if (f.frame_type != AMQP_FRAME_METHOD)
        return;                       /* a stray header or body: ignore */
    switch (f.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = f.payload.method.decoded;
        snprintf(why, sizeof why, "the broker closed the channel: %u %.*s", m->reply_code,
                 (int) m->reply_text.len, (const char *) m->reply_text.bytes);
        amqp_channel_close_ok_t ok = { 0 };
        amqp_send_method(b->conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        s_down(b, why);
        break;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = f.payload.method.decoded;
        snprintf(why, sizeof why, "the broker closed the connection: %u %.*s", m->reply_code,
                 (int) m->reply_text.len, (const char *) m->reply_text.bytes);
        amqp_connection_close_ok_t ok = { 0 };
        amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        s_down(b, why);
        break;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        s_down(b, "the broker cancelled the consumer (queue deleted?); declaring again");
        break;
    default:
        break;                        /* basic.ack of a confirm-select we never did, etc. */
    }
}

/* Up to budget deliveries from b; how many. */
static size_t
s_read_broker(s_broker_t *b, size_t budget)
{
    sl_source_inst_t *src = b->a->src;
    size_t got = 0;
    while (got < budget && !src->paused && b->state == S_UP) {
        amqp_envelope_t env;
        struct timeval zero = { 0, 0 };
        amqp_maybe_release_buffers(b->conn);
        amqp_rpc_reply_t r = amqp_consume_message(b->conn, &env, &zero, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            got++;
            b->unacked++;
            SL_BINC(b->st, deliveries, 1);
            SL_BSET(b->st, unacked, b->unacked);
            if (env.redelivered)
                SL_BINC(b->st, redeliveries, 1);
            uint64_t token = ((uint64_t) b->index << (S_TAG_BITS + S_EPOCH_BITS)) |
                             ((b->epoch & S_EPOCH_MASK) << S_TAG_BITS) |
                             (env.delivery_tag & S_TAG_MASK);
            src->redelivered = env.redelivered != 0;
            sl_source_deliver(src, token, env.message.body.bytes, env.message.body.len);
            src->redelivered = 0;
            amqp_destroy_envelope(&env);
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT) {
            /* the broker sends more only once these are acknowledged:
             * their frames should not wait for batch_timeout_ms */
            if (got)
                sl_source_idle(src);
            break;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            s_other_frame(b);
            continue;
        }
        char why[300];
        s_down(b, sl_amqp_reply_text(r, why, sizeof why));
        break;
    }
    if (b->state == S_UP && got == budget)
        sl_source_more(src);
    else if (b->state == S_UP && (amqp_data_in_buffer(b->conn) || amqp_frames_enqueued(b->conn)))
        sl_source_more(src);
    return got;
}

static size_t
s_read(sl_source_inst_t *src, size_t budget)
{
    s_amqp_t *a = src->ctx;
    size_t got = 0;
    for (size_t i = 0; i < a->n && !src->paused && !a->stopping; i++)
        got += s_read_broker(&a->b[i], budget > got ? budget - got : 1);
    return got;
}

/* Heartbeats and dead-connection detection between deliveries. */
static void
s_service(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_amqp_t *a = arg;
    uint64_t now = sl_now_ms();
    for (size_t i = 0; i < a->n; i++) {
        s_broker_t *b = &a->b[i];
        if (b->state != S_UP)
            continue;
        s_flush(b);
        if (b->state != S_UP)
            continue;
        if (!a->src->paused && !a->stopping) {
            s_read_broker(b, 256);    /* rabbitmq-c sends and checks heartbeats in there */
        } else if (a->o->heartbeat && now - b->last_send_ms >= a->o->heartbeat / 2) {
            amqp_frame_t hb = { .frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0 };
            int rc = amqp_send_frame(b->conn, &hb);
            if (rc != AMQP_STATUS_OK)
                s_down(b, amqp_error_string2(rc));
            else
                b->last_send_ms = now;
        }
    }
}

/* --- the plugin ------------------------------------------------------------- */

static int
s_init(sl_source_inst_t *src, char *err, size_t errlen)
{
    const sl_amqp_source_opts_t *o = s_opts(src);
    s_amqp_t *a = sl_xcalloc(1, sizeof *a);
    src->ctx = a;
    a->src = src;
    a->o = o;
    a->rnd = (sl_now_ms() * 2654435761u) ^ ((uint64_t) getpid() << 20) ^ (src->env.index + 1);
    src->requeue_event_errors = !o->ack_on_event_error;
    size_t n_topics, n_prios;
    char **topics = s_split(o->topics, &n_topics), **prios = s_split(o->priorities, &n_prios);
    a->queues = sl_xcalloc(n_topics * n_prios + 1, sizeof *a->queues);
    for (size_t t = 0; t < n_topics; t++)
        for (size_t p = 0; p < n_prios; p++) {
            char q[512];
            snprintf(q, sizeof q, "%s.%s", topics[t], prios[p]);
            a->queues[a->n_queues++] = sl_xstrdup(q);
        }
    s_free_list(topics, n_topics);
    s_free_list(prios, n_prios);
    a->exchanges = s_split(o->exchanges, &a->n_exchanges);
    /* queue arguments: oslo's, then the operator's */
    char args[1024];
    snprintf(args, sizeof args, "%s%s%s", o->quorum ? "x-queue-type=quorum," : "",
             o->ha_queues ? "x-ha-policy=all," : "", o->queue_arguments ? o->queue_arguments : "");
    size_t al = strlen(args);
    if (al && args[al - 1] == ',')
        args[al - 1] = '\0';
    init_amqp_pool(&a->pool, 1024);
    char why[256];
    if (sl_amqp_table(args, &a->args, &a->pool, why, sizeof why) < 0)
        return sl_errf(err, errlen, "amqp source: queue_arguments: %s", why);
    /* brokers */
    const char *list = o->url ? o->url : o->messaging_urls;
    size_t cap = 1;
    for (const char *p = list; *p; p += sl_amqp_url_list_next(p), p += *p == ',')
        cap++;
    a->b = sl_xcalloc(cap, sizeof *a->b);
    for (const char *p = list; *p;) {
        size_t k = o->url ? strlen(p) : sl_amqp_url_list_next(p);
        char *one = sl_xstrndup(p, k);
        s_broker_t *b = &a->b[a->n];
        int rc = sl_amqp_url_parse(one, &b->url, why, sizeof why);
        free(one);
        if (rc < 0)
            return sl_errf(err, errlen, "amqp source: %s", why);
        b->a = a;
        b->index = (unsigned) a->n++;
        unsigned k_stats = s_brokers_counted++;
        b->st = k_stats < SL_MAX_BROKERS ? &src->env.slot->broker[k_stats] : &b->none;
        sl_amqp_url_label(&b->url, 0, b->label, sizeof b->label);
        sl_stats_text_set_label(&b->st->t, b->label);
        p += k + (p[k] == ',');
    }
    /* Connect in the first loop iteration, not here: a broker that is down
     * at start is retried like one lost later. */
    for (size_t i = 0; i < a->n; i++)
        a->b[i].retry = sl_loop_after(src->env.loop, 0, s_connect, &a->b[i]);
    unsigned every = o->heartbeat ? o->heartbeat / 4 : 1000;
    a->service = sl_loop_every(src->env.loop, every > 1000 ? 1000 : every ? every : 1, 0,
                               s_service, a);
    sl_loop_before_sleep(src->env.loop, s_flush_all, a);
    return 0;
}

/* Stopping: take nothing more; what is unconfirmed goes back (the core
 * nacks it, or the broker requeues it when the connection closes). */
static int
s_drain(sl_source_inst_t *src)
{
    s_amqp_t *a = src->ctx;
    if (!a->stopping) {
        a->stopping = 1;
        sl_source_unwatch_all(src);
    }
    return 0;
}

static void
s_destroy(sl_source_inst_t *src)
{
    s_amqp_t *a = src->ctx;
    if (!a)
        return;
    a->stopping = 1;
    if (a->service)
        sl_loop_cancel(src->env.loop, &a->service);
    for (size_t i = 0; i < a->n; i++) {
        s_broker_t *b = &a->b[i];
        if (b->retry)
            sl_loop_cancel(src->env.loop, &b->retry);
        s_flush(b);
        if (b->state == S_UP)
            sl_amqp_close(b->conn);
        else
            sl_amqp_abandon(b->conn);
        b->conn = NULL;
        SL_BSET(b->st, state, S_DOWN);
        sl_amqp_url_free(&b->url);
    }
    sl_loop_before_sleep_remove(src->env.loop, s_flush_all, a);
    s_free_list(a->queues, a->n_queues);
    s_free_list(a->exchanges, a->n_exchanges);
    empty_amqp_pool(&a->pool);
    free(a->b);
    free(a);
    src->ctx = NULL;
}

const sl_source_plugin_t sl_source_amqp = {
    .name = "amqp",
    .flags = SL_SOURCE_F_ACKS | SL_SOURCE_F_ORDERED | SL_SOURCE_F_REQUEUE,
    .init = s_init,
    .read = s_read,
    .ack = s_ack,
    .nack = s_nack,
    .drain = s_drain,
    .destroy = s_destroy,
};
