/* sluice-bench-amqp — fills a RabbitMQ queue with notifications the way
 * oslo.messaging's rabbit driver does, and drains it bare: the broker's
 * ceiling that tools/bench --amqp compares sluice and Ceilometer with.
 *
 *   fill  --port P [--exchange nova] [--routing-key notifications.info]
 *         --input FILE.jsonl --count N [--durable] [--purge] [--window W]
 *   drain --port P [--queue notifications.info] --prefetch K
 *         [--multiple-every M] [--api frames|consume] --count N
 *   watch --port P [--queue Q] --count N [--interval-ms I] [--until-empty]
 *   purge --port P [--queue Q]
 *
 * fill declares what oslo.messaging's notify_send and a notification
 * listener's declare_topic_consumer declare (a topic exchange, a queue named
 * after the routing key, bound with it; durable only with --durable, as with
 * amqp_durable_queues), then publishes N messages with publisher confirms
 * (at most W unconfirmed), cycling through FILE. Each message is what
 * oslo's Notifier (driver messagingv2) puts on the wire, captured with
 * basic.get: properties content_type application/json, content_encoding
 * utf-8, headers {}, delivery_mode 2, priority 0; body the v2 envelope
 * {"oslo.version": "2.0", "oslo.message": "<message>"} in Python's
 * json.dumps form (", " and ": " separators, non-ASCII as \uXXXX), the
 * inner message too. Every message gets a fresh message_id (uuid4) and
 * _unique_id (uuid4 hex: oslo's listener skips a _unique_id it has just
 * acked), so that downstream checks can count. FILE lines are either
 * envelopes or bare notifications (sluice-inject --generate [--wire],
 * ../shared/ceilometer/gen.py [--wire]).
 *
 * drain is the bare consumer: basic.qos(prefetch K; 0 = unlimited),
 * basic.consume, no parsing, and an ack with multiple=1 every M deliveries
 * (M=1: one ack per delivery, multiple=0). M must not exceed K (the broker
 * would stop at K unacked and we would wait for the M-th). The clock runs
 * from consume-ok to the answer of a passive queue.declare sent after the
 * last ack (the broker handles a channel's methods in order, so every ack
 * has been applied by then). --api frames reads raw frames (the ceiling);
 * consume uses amqp_consume_message (one allocation and copy per message).
 *
 * watch polls the queue's ready count (passive queue.declare) every I ms
 * (default 2); it prints a first line after its first poll (start the
 * consumer after reading it), then one with when the count first fell
 * below N, i.e. when a consumer started on the pre-filled queue (the
 * middle of the two polls around it), and stops there so as not to load
 * the broker while it is measured; --until-empty polls on until the count
 * reaches 0 and prints when.
 *
 * Each mode prints one JSON line on stdout (watch: two); times are epoch seconds
 * (CLOCK_REALTIME), rates use CLOCK_MONOTONIC. Exit 0, or 1 with why on
 * stderr (a broker error, a timeout, fewer messages than --count). */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <yajl/yajl_parse.h>

typedef struct {
    const char *host, *user, *pass, *vhost;
    int         port;
    const char *exchange, *routing_key, *queue, *input, *api;
    long        count, prefetch, multiple_every, window, interval_ms;
    double      timeout_s;
    int         durable, purge, until_empty;
} s_opts_t;

static double
s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of this process so far. */
static double
s_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6
           + (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

static double
s_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ broker */

static int
s_reply_ok(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fprintf(stderr, "sluice-bench-amqp: %s: %s\n", what, amqp_error_string2(r.library_error));
    else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_t *c = r.reply.decoded;
        fprintf(stderr, "sluice-bench-amqp: %s: connection closed by the broker: %u %.*s\n", what,
                c->reply_code, (int) c->reply_text.len, (char *) c->reply_text.bytes);
    } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *c = r.reply.decoded;
        fprintf(stderr, "sluice-bench-amqp: %s: channel closed by the broker: %u %.*s\n", what,
                c->reply_code, (int) c->reply_text.len, (char *) c->reply_text.bytes);
    } else
        fprintf(stderr, "sluice-bench-amqp: %s: unexpected reply 0x%08x\n", what, r.reply.id);
    return 0;
}

static amqp_connection_state_t
s_open(const s_opts_t *o)
{
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    struct timeval tv = { 10, 0 };
    if (!sock) {
        fprintf(stderr, "sluice-bench-amqp: cannot create a socket\n");
        amqp_destroy_connection(c);
        return NULL;
    }
    int rc = amqp_socket_open_noblock(sock, o->host, o->port, &tv);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "sluice-bench-amqp: connect %s:%d: %s\n", o->host, o->port,
                amqp_error_string2(rc));
        amqp_destroy_connection(c);
        return NULL;
    }
    /* frame_max 131072 (RabbitMQ's default): a notification is one body frame. */
    if (!s_reply_ok(amqp_login(c, o->vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, o->user, o->pass),
                    "login")) {
        amqp_destroy_connection(c);
        return NULL;
    }
    amqp_channel_open(c, 1);
    if (!s_reply_ok(amqp_get_rpc_reply(c), "channel.open")) {
        amqp_destroy_connection(c);
        return NULL;
    }
    return c;
}

static void
s_close(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* Ready messages of queue q (passive declare), or -1. */
static long
s_ready(amqp_connection_state_t c, const char *q)
{
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 1, 0, 0, 0,
                                                     amqp_empty_table);
    if (!ok) {
        s_reply_ok(amqp_get_rpc_reply(c), "queue.declare (passive)");
        return -1;
    }
    return (long) ok->message_count;
}

/* ------------------------------------------------------------ wire form */

/* A growable byte buffer. */
typedef struct {
    char  *p;
    size_t len, cap;
} s_buf_t;

static void
s_put(s_buf_t *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "sluice-bench-amqp: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void
s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

/* Python's json.dumps string (ensure_ascii): \" \\ \b \f \n \r \t, any other
 * byte outside ' '..'~' as \uXXXX (UTF-16 surrogate pairs above U+FFFF).
 * s is valid UTF-8 (yajl validated it). */
static void
s_put_pystr(s_buf_t *b, const unsigned char *s, size_t n)
{
    s_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned ch = s[i];
        char esc[16];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            size_t j = i;
            while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\')
                j++;
            s_put(b, s + i, j - i);
            i = j;
            continue;
        }
        unsigned cp = ch;
        size_t len = 1;
        if (ch >= 0xf0 && i + 3 < n) {
            cp = ((ch & 0x07u) << 18) | ((s[i + 1] & 0x3fu) << 12) | ((s[i + 2] & 0x3fu) << 6)
                 | (s[i + 3] & 0x3fu);
            len = 4;
        } else if (ch >= 0xe0 && i + 2 < n) {
            cp = ((ch & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) | (s[i + 2] & 0x3fu);
            len = 3;
        } else if (ch >= 0xc0 && i + 1 < n) {
            cp = ((ch & 0x1fu) << 6) | (s[i + 1] & 0x3fu);
            len = 2;
        }
        i += len;
        switch (cp) {
        case '"': s_puts(b, "\\\""); continue;
        case '\\': s_puts(b, "\\\\"); continue;
        case '\b': s_puts(b, "\\b"); continue;
        case '\f': s_puts(b, "\\f"); continue;
        case '\n': s_puts(b, "\\n"); continue;
        case '\r': s_puts(b, "\\r"); continue;
        case '\t': s_puts(b, "\\t"); continue;
        default: break;
        }
        if (cp > 0xffff) {
            cp -= 0x10000;
            snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ffu));
        } else
            snprintf(esc, sizeof esc, "\\u%04x", cp);
        s_puts(b, esc);
    }
    s_put(b, "\"", 1);
}

/* The re-encoder: yajl callbacks writing Python's json.dumps form of the
 * inner message into out, with the top-level message_id and _unique_id
 * values replaced by placeholders whose offsets are recorded. */
#define S_MAX_DEPTH 128

typedef struct {
    s_buf_t out;
    int     depth;
    int     first[S_MAX_DEPTH];   /* no element written yet at this depth */
    int     is_map[S_MAX_DEPTH];
    int     want;                 /* the next value is: 1 message_id, 2 _unique_id */
    long    off_mid, off_uid;     /* offsets of the placeholders in out, or -1 */
    /* probe mode (outer line): capture depth-1 "oslo.message" */
    int     probe, probe_key;
    s_buf_t inner;
    int     has_inner;
} s_enc_t;

static const char s_mid_ph[] = "00000000-0000-4000-8000-000000000000";
static const char s_uid_ph[] = "00000000000000000000000000000000";

static void
s_sep(s_enc_t *e)
{
    if (e->depth == 0)
        return;
    if (e->is_map[e->depth - 1])
        return; /* map values follow their key; the key wrote the separator */
    if (!e->first[e->depth - 1])
        s_puts(&e->out, ", ");
    e->first[e->depth - 1] = 0;
}

static int
s_cb_null(void *ctx)
{
    s_enc_t *e = ctx;
    if (!e->probe) {
        s_sep(e);
        s_puts(&e->out, "null");
    }
    e->want = 0;
    return 1;
}

static int
s_cb_bool(void *ctx, int v)
{
    s_enc_t *e = ctx;
    if (!e->probe) {
        s_sep(e);
        s_puts(&e->out, v ? "true" : "false");
    }
    e->want = 0;
    return 1;
}

/* A number as Python's json.dumps writes what json.loads made of it: an
 * integer as it came, a float as repr() does (the shortest digits that
 * read back the same; fixed notation when the decimal exponent is within
 * -4..15, else d.ddde+XX). */
static void
s_put_pynum(s_buf_t *b, const char *s, size_t n)
{
    char txt[64], buf[64];
    if (!memchr(s, '.', n) && !memchr(s, 'e', n) && !memchr(s, 'E', n)) {
        s_put(b, s, n);
        return;
    }
    if (n >= sizeof txt) {
        s_put(b, s, n);
        return;
    }
    memcpy(txt, s, n);
    txt[n] = 0;
    double v = strtod(txt, NULL);
    if (v != v || v - v != 0) { /* inf, nan: Python writes Infinity, NaN */
        s_puts(b, v != v ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    int p = 0;
    for (; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof buf, "%.*e", p, v);
    /* buf: [-]d[.ddd]e[+-]XX -> sign, digits, exponent */
    char digits[32];
    int nd = 0, neg = buf[0] == '-';
    const char *q = buf + neg;
    for (; *q && *q != 'e'; q++)
        if (*q != '.')
            digits[nd++] = *q;
    int exp = atoi(q + 1), decpt = exp + 1;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (neg)
        s_put(b, "-", 1);
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            s_puts(b, "0.");
            for (int i = 0; i < -decpt; i++)
                s_put(b, "0", 1);
            s_put(b, digits, (size_t) nd);
        } else if (nd <= decpt) {
            s_put(b, digits, (size_t) nd);
            for (int i = nd; i < decpt; i++)
                s_put(b, "0", 1);
            s_puts(b, ".0");
        } else {
            s_put(b, digits, (size_t) decpt);
            s_put(b, ".", 1);
            s_put(b, digits + decpt, (size_t) (nd - decpt));
        }
    } else {
        s_put(b, digits, 1);
        if (nd > 1) {
            s_put(b, ".", 1);
            s_put(b, digits + 1, (size_t) (nd - 1));
        }
        snprintf(buf, sizeof buf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        s_puts(b, buf);
    }
}

static int
s_cb_number(void *ctx, const char *s, size_t n)
{
    s_enc_t *e = ctx;
    if (!e->probe) {
        s_sep(e);
        s_put_pynum(&e->out, s, n);
    }
    e->want = 0;
    return 1;
}

static int
s_cb_string(void *ctx, const unsigned char *s, size_t n)
{
    s_enc_t *e = ctx;
    if (e->probe) {
        if (e->probe_key && e->depth == 1) {
            s_put(&e->inner, s, n);
            s_put(&e->inner, "", 1);
            e->has_inner = 1;
        }
        e->probe_key = 0;
        return 1;
    }
    s_sep(e);
    if (e->want == 1) {
        e->off_mid = (long) e->out.len + 1;
        s_put(&e->out, "\"", 1);
        s_puts(&e->out, s_mid_ph);
        s_put(&e->out, "\"", 1);
    } else if (e->want == 2) {
        e->off_uid = (long) e->out.len + 1;
        s_put(&e->out, "\"", 1);
        s_puts(&e->out, s_uid_ph);
        s_put(&e->out, "\"", 1);
    } else
        s_put_pystr(&e->out, s, n);
    e->want = 0;
    return 1;
}

static int
s_open_container(s_enc_t *e, int map)
{
    if (e->depth >= S_MAX_DEPTH)
        return 0;
    if (!e->probe) {
        s_sep(e);
        s_puts(&e->out, map ? "{" : "[");
    }
    e->is_map[e->depth] = map;
    e->first[e->depth] = 1;
    e->depth++;
    e->want = 0;
    e->probe_key = 0;
    return 1;
}

static int
s_cb_start_map(void *ctx)
{
    return s_open_container(ctx, 1);
}

static int
s_cb_start_array(void *ctx)
{
    return s_open_container(ctx, 0);
}

static int
s_cb_map_key(void *ctx, const unsigned char *s, size_t n)
{
    s_enc_t *e = ctx;
    if (e->probe) {
        e->probe_key = e->depth == 1 && n == 12 && !memcmp(s, "oslo.message", 12);
        return 1;
    }
    if (!e->first[e->depth - 1])
        s_puts(&e->out, ", ");
    e->first[e->depth - 1] = 0;
    s_put_pystr(&e->out, s, n);
    s_puts(&e->out, ": ");
    e->want = 0;
    if (e->depth == 1 && n == 10 && !memcmp(s, "message_id", 10))
        e->want = 1;
    else if (e->depth == 1 && n == 10 && !memcmp(s, "_unique_id", 10))
        e->want = 2;
    return 1;
}

static int
s_close_container(s_enc_t *e, int map)
{
    e->depth--;
    if (!e->probe) {
        if (map && e->depth == 0) {
            /* oslo always sends both ids; add what the line lacks */
            const char *sep = e->first[0] ? "" : ", ";
            if (e->off_mid < 0) {
                s_puts(&e->out, sep);
                s_puts(&e->out, "\"message_id\": \"");
                e->off_mid = (long) e->out.len;
                s_puts(&e->out, s_mid_ph);
                s_puts(&e->out, "\"");
                sep = ", ";
            }
            if (e->off_uid < 0) {
                s_puts(&e->out, sep);
                s_puts(&e->out, "\"_unique_id\": \"");
                e->off_uid = (long) e->out.len;
                s_puts(&e->out, s_uid_ph);
                s_puts(&e->out, "\"");
            }
        }
        s_puts(&e->out, map ? "}" : "]");
    }
    e->want = 0;
    return 1;
}

static int
s_cb_end_map(void *ctx)
{
    return s_close_container(ctx, 1);
}

static int
s_cb_end_array(void *ctx)
{
    return s_close_container(ctx, 0);
}

static const yajl_callbacks s_callbacks = {
    s_cb_null, s_cb_bool, NULL, NULL, s_cb_number, s_cb_string,
    s_cb_start_map, s_cb_map_key, s_cb_end_map, s_cb_start_array, s_cb_end_array
};

static int
s_parse(s_enc_t *e, const unsigned char *text, size_t n)
{
    yajl_handle h = yajl_alloc(&s_callbacks, NULL, e);
    int ok = yajl_parse(h, text, n) == yajl_status_ok && yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok;
}

/* One message body ready to send: the envelope, and where in it the two
 * ids go. */
typedef struct {
    s_buf_t body;
    size_t  off_mid, off_uid;
} s_msg_t;

/* Builds m from one input line; 0, or -1 if the line is not a JSON object. */
static int
s_build(s_enc_t *e, const char *line, size_t n, s_msg_t *m)
{
    e->probe = 1;
    e->depth = 0;
    e->probe_key = 0;
    e->has_inner = 0;
    e->inner.len = 0;
    if (!s_parse(e, (const unsigned char *) line, n))
        return -1;
    const char *inner = e->has_inner ? e->inner.p : line;
    size_t inner_len = e->has_inner ? strlen(e->inner.p) : n;
    e->probe = 0;
    e->depth = 0;
    e->want = 0;
    e->off_mid = e->off_uid = -1;
    e->out.len = 0;
    if (!s_parse(e, (const unsigned char *) inner, inner_len) || e->out.len == 0
        || e->out.p[0] != '{')
        return -1;
    /* The envelope: the inner text (ASCII, no control characters now) as a
     * JSON string, where only '"' and '\' need escaping. */
    m->body.len = 0;
    s_puts(&m->body, "{\"oslo.version\": \"2.0\", \"oslo.message\": \"");
    for (size_t i = 0; i < e->out.len;) {
        size_t j = i;
        while (j < e->out.len && e->out.p[j] != '"' && e->out.p[j] != '\\')
            j++;
        /* the placeholders hold neither '"' nor '\\': within one span */
        if (e->off_mid >= (long) i && e->off_mid < (long) j)
            m->off_mid = m->body.len + (size_t) e->off_mid - i;
        if (e->off_uid >= (long) i && e->off_uid < (long) j)
            m->off_uid = m->body.len + (size_t) e->off_uid - i;
        s_put(&m->body, e->out.p + i, j - i);
        if (j < e->out.len) {
            s_put(&m->body, "\\", 1);
            s_put(&m->body, e->out.p + j, 1);
            j++;
        }
        i = j;
    }
    s_puts(&m->body, "\"}");
    return 0;
}

/* splitmix64: fresh ids, seeded from the clock and the pid. */
static uint64_t s_rng;

static uint64_t
s_rand(void)
{
    uint64_t z = (s_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void
s_hex(char *dst, uint64_t v, int digits)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        dst[i] = hx[v & 15];
}

/* A uuid4 into dst[36] (message_id) and its 32-hex form into hex[32]
 * (_unique_id: oslo uses uuid4().hex). */
static void
s_uuid4(char *dst, char *hex)
{
    uint64_t a = s_rand(), b = s_rand();
    a = (a & ~0xf000ULL) | 0x4000ULL;                       /* version 4 */
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; /* variant 10 */
    char h[32];
    s_hex(h, a, 16);
    s_hex(h + 16, b, 16);
    memcpy(dst, h, 8);
    dst[8] = '-';
    memcpy(dst + 9, h + 8, 4);
    dst[13] = '-';
    memcpy(dst + 14, h + 12, 4);
    dst[18] = '-';
    memcpy(dst + 19, h + 16, 4);
    dst[23] = '-';
    memcpy(dst + 24, h + 20, 12);
    uint64_t c = s_rand(), d = s_rand();
    c = (c & ~0xf000ULL) | 0x4000ULL;
    d = (d & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    s_hex(hex, c, 16);
    s_hex(hex + 16, d, 16);
}

/* ------------------------------------------------------------ fill */

/* Reads confirms until at most `keep` publishes are unconfirmed (block),
 * or only what is already there (keep < 0). 0, or -1 on a nack or error. */
static int
s_confirms(amqp_connection_state_t c, uint64_t published, uint64_t *confirmed, long keep)
{
    while (keep < 0 || published - *confirmed > (uint64_t) keep) {
        amqp_frame_t f;
        struct timeval zero = { 0, 0 }, limit = { 60, 0 };
        amqp_maybe_release_buffers(c);
        int rc = amqp_simple_wait_frame_noblock(c, &f, keep < 0 ? &zero : &limit);
        if (rc == AMQP_STATUS_TIMEOUT && keep < 0)
            return 0;
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "sluice-bench-amqp: waiting for confirms: %s\n", amqp_error_string2(rc));
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            /* One queue: the broker confirms in publishing order. */
            if (a->delivery_tag > *confirmed)
                *confirmed = a->delivery_tag;
        } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            fprintf(stderr, "sluice-bench-amqp: the broker nacked publish %llu\n",
                    (unsigned long long) ((amqp_basic_nack_t *) f.payload.method.decoded)->delivery_tag);
            return -1;
        } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD
                   || f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            fprintf(stderr, "sluice-bench-amqp: the broker closed the channel while publishing\n");
            return -1;
        }
    }
    return 0;
}

static int
s_fill(const s_opts_t *o)
{
    FILE *in = fopen(o->input, "r");
    if (!in) {
        fprintf(stderr, "sluice-bench-amqp: %s: %s\n", o->input, strerror(errno));
        return 1;
    }
    amqp_connection_state_t c = s_open(o);
    if (!c)
        return 1;
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(o->exchange), amqp_cstring_bytes("topic"), 0,
                          o->durable, 0, 0, amqp_empty_table);
    if (!s_reply_ok(amqp_get_rpc_reply(c), "exchange.declare"))
        return 1;
    amqp_queue_declare(c, 1, amqp_cstring_bytes(o->routing_key), 0, o->durable, 0, 0,
                       amqp_empty_table);
    if (!s_reply_ok(amqp_get_rpc_reply(c), "queue.declare"))
        return 1;
    amqp_queue_bind(c, 1, amqp_cstring_bytes(o->routing_key), amqp_cstring_bytes(o->exchange),
                    amqp_cstring_bytes(o->routing_key), amqp_empty_table);
    if (!s_reply_ok(amqp_get_rpc_reply(c), "queue.bind"))
        return 1;
    if (o->purge) {
        amqp_queue_purge(c, 1, amqp_cstring_bytes(o->routing_key));
        if (!s_reply_ok(amqp_get_rpc_reply(c), "queue.purge"))
            return 1;
    }
    amqp_confirm_select(c, 1);
    if (!s_reply_ok(amqp_get_rpc_reply(c), "confirm.select"))
        return 1;

    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG
                   | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG
                   | AMQP_BASIC_PRIORITY_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.content_encoding = amqp_cstring_bytes("utf-8");
    props.headers = amqp_empty_table;
    props.delivery_mode = 2;
    props.priority = 0;

    s_enc_t *e = calloc(1, sizeof *e);
    s_msg_t m = { { NULL, 0, 0 }, 0, 0 };
    char *line = NULL;
    size_t cap = 0;
    uint64_t published = 0, confirmed = 0, bytes = 0, lineno = 0, bad = 0;
    double t0 = s_mono(), wall0 = s_wall();
    while (published < (uint64_t) o->count) {
        ssize_t n = getline(&line, &cap, in);
        if (n < 0) {
            if (lineno == bad) {
                fprintf(stderr, "sluice-bench-amqp: %s: no usable line\n", o->input);
                return 1;
            }
            rewind(in); /* cycle the input */
            lineno = bad = 0;
            continue;
        }
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0 || s_build(e, line, (size_t) n, &m) < 0) {
            bad++;
            continue;
        }
        char hex[32];
        s_uuid4(m.body.p + m.off_mid, hex);
        memcpy(m.body.p + m.off_uid, hex, 32);
        int rc = amqp_basic_publish(c, 1, amqp_cstring_bytes(o->exchange),
                                    amqp_cstring_bytes(o->routing_key), 0, 0, &props,
                                    (amqp_bytes_t) { m.body.len, m.body.p });
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "sluice-bench-amqp: basic.publish: %s\n", amqp_error_string2(rc));
            return 1;
        }
        published++;
        bytes += m.body.len;
        if ((published & 63) == 0 && s_confirms(c, published, &confirmed, -1) < 0)
            return 1;
        if (published - confirmed >= (uint64_t) o->window
            && s_confirms(c, published, &confirmed, o->window / 2) < 0)
            return 1;
    }
    if (s_confirms(c, published, &confirmed, 0) < 0)
        return 1;
    double dt = s_mono() - t0;
    long ready = s_ready(c, o->routing_key);
    printf("{\"mode\": \"fill\", \"published\": %llu, \"confirmed\": %llu, \"bytes\": %llu, "
           "\"mean_body_bytes\": %.0f, \"skipped_lines\": %llu, \"t_start\": %.6f, "
           "\"seconds\": %.3f, \"msg_per_s\": %.0f, \"queue_ready\": %ld}\n",
           (unsigned long long) published, (unsigned long long) confirmed,
           (unsigned long long) bytes, published ? (double) bytes / (double) published : 0.0,
           (unsigned long long) bad, wall0, dt, published / dt, ready);
    s_close(c);
    free(line);
    free(m.body.p);
    free(e->out.p);
    free(e->inner.p);
    free(e);
    fclose(in);
    return 0;
}

/* ------------------------------------------------------------ drain */

static int
s_drain(const s_opts_t *o)
{
    long every = o->multiple_every > 0 ? o->multiple_every : 1;
    if (o->prefetch > 0 && every > o->prefetch) {
        fprintf(stderr, "sluice-bench-amqp: --multiple-every %ld > --prefetch %ld would stall "
                        "(the broker stops at %ld unacked)\n", every, o->prefetch, o->prefetch);
        return 1;
    }
    int frames = strcmp(o->api, "consume") != 0;
    amqp_connection_state_t c = s_open(o);
    if (!c)
        return 1;
    amqp_basic_qos(c, 1, 0, (uint16_t) o->prefetch, 0);
    if (!s_reply_ok(amqp_get_rpc_reply(c), "basic.qos"))
        return 1;
    long ready0 = s_ready(c, o->queue);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(o->queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    if (!s_reply_ok(amqp_get_rpc_reply(c), "basic.consume"))
        return 1;
    double t0 = s_mono(), wall0 = s_wall(), cpu0 = s_cpu(), deadline = t0 + o->timeout_s;
    uint64_t got = 0, bytes = 0, acks = 0, last_tag = 0;
    int unacked = 0;
    while (got < (uint64_t) o->count) {
        double left = deadline - s_mono();
        if (left <= 0) {
            fprintf(stderr, "sluice-bench-amqp: drain: %llu of %ld after %.0f s\n",
                    (unsigned long long) got, o->count, o->timeout_s);
            return 1;
        }
        struct timeval tv = { (time_t) left, (suseconds_t) ((left - (long) left) * 1e6) };
        if (frames) {
            amqp_frame_t f;
            amqp_maybe_release_buffers(c);
            int rc = amqp_simple_wait_frame_noblock(c, &f, &tv);
            if (rc == AMQP_STATUS_TIMEOUT)
                continue;
            if (rc != AMQP_STATUS_OK) {
                fprintf(stderr, "sluice-bench-amqp: drain: %s\n", amqp_error_string2(rc));
                return 1;
            }
            if (f.frame_type != AMQP_FRAME_METHOD)
                continue;
            if (f.payload.method.id != AMQP_BASIC_DELIVER_METHOD) {
                fprintf(stderr, "sluice-bench-amqp: drain: unexpected method 0x%08x\n",
                        f.payload.method.id);
                return 1;
            }
            last_tag = ((amqp_basic_deliver_t *) f.payload.method.decoded)->delivery_tag;
            /* the content header, then body frames up to body_size */
            if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_HEADER) {
                fprintf(stderr, "sluice-bench-amqp: drain: no content header\n");
                return 1;
            }
            uint64_t size = f.payload.properties.body_size, have = 0;
            while (have < size) {
                if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_BODY) {
                    fprintf(stderr, "sluice-bench-amqp: drain: body frame missing\n");
                    return 1;
                }
                have += f.payload.body_fragment.len;
            }
            bytes += size;
        } else {
            amqp_envelope_t env;
            amqp_maybe_release_buffers(c);
            amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
            if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                && r.library_error == AMQP_STATUS_TIMEOUT)
                continue;
            if (!s_reply_ok(r, "drain"))
                return 1;
            last_tag = env.delivery_tag;
            bytes += env.message.body.len;
            amqp_destroy_envelope(&env);
        }
        got++;
        if (++unacked >= every || got == (uint64_t) o->count) {
            if (amqp_basic_ack(c, 1, last_tag, every > 1) != 0) {
                fprintf(stderr, "sluice-bench-amqp: basic.ack failed\n");
                return 1;
            }
            acks++;
            unacked = 0;
        }
    }
    /* Cancel nothing: a passive declare after the last ack is answered only
     * once the broker has applied every ack on this channel. */
    long left = s_ready(c, o->queue);
    double dt = s_mono() - t0;
    printf("{\"mode\": \"drain\", \"api\": \"%s\", \"prefetch\": %ld, \"multiple_every\": %ld, "
           "\"received\": %llu, \"acks\": %llu, \"bytes\": %llu, \"queue_ready_before\": %ld, "
           "\"queue_ready_after\": %ld, \"t_start\": %.6f, \"seconds\": %.3f, \"msg_per_s\": %.0f, "
           "\"cpu_s\": %.3f}\n",
           frames ? "frames" : "consume", o->prefetch, every, (unsigned long long) got,
           (unsigned long long) acks, (unsigned long long) bytes, ready0, left, wall0, dt, got / dt,
           s_cpu() - cpu0);
    s_close(c);
    return 0;
}

/* ------------------------------------------------------------ watch, purge */

static int
s_watch(const s_opts_t *o)
{
    amqp_connection_state_t c = s_open(o);
    if (!c)
        return 1;
    double deadline = s_mono() + o->timeout_s, t_prev = s_wall(), t_start = 0, t_empty = 0;
    long polls = 0, first = -1;
    for (;;) {
        long r = s_ready(c, o->queue);
        double now = s_wall();
        polls++;
        if (r < 0)
            return 1;
        if (first < 0) {
            /* a first line once the queue has been seen: the caller starts
             * its consumer after reading it */
            first = r;
            printf("{\"mode\": \"watch\", \"first_ready\": %ld}\n", r);
            fflush(stdout);
        }
        if (t_start == 0 && r < o->count)
            t_start = (t_prev + now) / 2; /* between the last poll at N and this one */
        if (t_start > 0 && !o->until_empty)
            break;
        if (t_start > 0 && r == 0) {
            t_empty = (t_prev + now) / 2;
            break;
        }
        if (s_mono() > deadline) {
            fprintf(stderr, "sluice-bench-amqp: watch: %ld ready after %.0f s\n", r, o->timeout_s);
            break;
        }
        t_prev = now;
        usleep((useconds_t) (o->interval_ms * 1000));
    }
    printf("{\"mode\": \"watch\", \"first_ready\": %ld, \"t_start\": %.6f, \"t_empty\": %.6f, "
           "\"polls\": %ld, \"interval_ms\": %ld}\n",
           first, t_start, t_empty, polls, o->interval_ms);
    fflush(stdout);
    s_close(c);
    return t_start > 0 && (t_empty > 0 || !o->until_empty) ? 0 : 1;
}

static int
s_purge(const s_opts_t *o)
{
    amqp_connection_state_t c = s_open(o);
    if (!c)
        return 1;
    amqp_queue_purge_ok_t *ok = amqp_queue_purge(c, 1, amqp_cstring_bytes(o->queue));
    if (!ok) {
        s_reply_ok(amqp_get_rpc_reply(c), "queue.purge");
        return 1;
    }
    printf("{\"mode\": \"purge\", \"purged\": %u}\n", ok->message_count);
    s_close(c);
    return 0;
}

/* ------------------------------------------------------------ main */

static void
s_usage(FILE *out)
{
    fprintf(out,
        "usage: sluice-bench-amqp fill  --port P --input FILE --count N [--exchange nova]\n"
        "                               [--routing-key notifications.info] [--durable] [--purge]\n"
        "                               [--window W (unconfirmed publishes, default 1000)]\n"
        "       sluice-bench-amqp drain --port P --prefetch K --count N [--queue notifications.info]\n"
        "                               [--multiple-every M (default 1: one ack each)] [--api frames|consume]\n"
        "       sluice-bench-amqp watch --port P --count N [--queue Q] [--interval-ms I] [--until-empty]\n"
        "       sluice-bench-amqp purge --port P [--queue Q]\n"
        "  common: --host 127.0.0.1 --user guest --password guest --vhost / --timeout S (600)\n");
}

int
main(int argc, char **argv)
{
    s_opts_t o = { .host = "127.0.0.1", .user = "guest", .pass = "guest", .vhost = "/",
                   .port = 5672, .exchange = "nova", .routing_key = "notifications.info",
                   .api = "frames", .multiple_every = 1, .window = 1000, .interval_ms = 2,
                   .timeout_s = 600 };
    static const struct option lo[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "user", required_argument, NULL, 'u' },
        { "password", required_argument, NULL, 'w' },
        { "vhost", required_argument, NULL, 'v' },
        { "exchange", required_argument, NULL, 'x' },
        { "routing-key", required_argument, NULL, 'r' },
        { "queue", required_argument, NULL, 'q' },
        { "input", required_argument, NULL, 'i' },
        { "count", required_argument, NULL, 'n' },
        { "prefetch", required_argument, NULL, 'k' },
        { "multiple-every", required_argument, NULL, 'm' },
        { "window", required_argument, NULL, 'W' },
        { "interval-ms", required_argument, NULL, 'I' },
        { "timeout", required_argument, NULL, 't' },
        { "api", required_argument, NULL, 'a' },
        { "durable", no_argument, NULL, 'd' },
        { "purge", no_argument, NULL, 'P' },
        { "until-empty", no_argument, NULL, 'E' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        s_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const char *mode = argv[1];
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'H': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'u': o.user = optarg; break;
        case 'w': o.pass = optarg; break;
        case 'v': o.vhost = optarg; break;
        case 'x': o.exchange = optarg; break;
        case 'r': o.routing_key = optarg; break;
        case 'q': o.queue = optarg; break;
        case 'i': o.input = optarg; break;
        case 'n': o.count = atol(optarg); break;
        case 'k': o.prefetch = atol(optarg); break;
        case 'm': o.multiple_every = atol(optarg); break;
        case 'W': o.window = atol(optarg); break;
        case 'I': o.interval_ms = atol(optarg); break;
        case 't': o.timeout_s = atof(optarg); break;
        case 'a': o.api = optarg; break;
        case 'd': o.durable = 1; break;
        case 'P': o.purge = 1; break;
        case 'E': o.until_empty = 1; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 1;
        }
    }
    if (!o.queue)
        o.queue = o.routing_key; /* oslo: the queue is named after the routing key */
    if (o.prefetch < 0 || o.prefetch > 65535 || o.window < 1 || o.interval_ms < 1) {
        fprintf(stderr, "sluice-bench-amqp: --prefetch 0..65535, --window and --interval-ms >= 1\n");
        return 1;
    }
    s_rng = (uint64_t) s_wall() * 1000003u ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (s_mono() * 1e9);
    if (!strcmp(mode, "fill")) {
        if (!o.input || o.count <= 0) {
            s_usage(stderr);
            return 1;
        }
        return s_fill(&o);
    }
    if (!strcmp(mode, "drain")) {
        if (o.count <= 0) {
            s_usage(stderr);
            return 1;
        }
        return s_drain(&o);
    }
    if (!strcmp(mode, "watch")) {
        if (o.count <= 0) {
            s_usage(stderr);
            return 1;
        }
        return s_watch(&o);
    }
    if (!strcmp(mode, "purge"))
        return s_purge(&o);
    s_usage(stderr);
    return 1;
}
