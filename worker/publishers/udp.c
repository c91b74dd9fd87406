/* udp:// and tcp:// publishers — Ceilometer's meter messages as msgpack.
 *
 *   udp://HOST[:PORT][?telemetry_secret_file=PATH]
 *       Ceilometer 19's UDPPublisher (ceilometer/publisher/udp.py): one
 *       datagram per sample, msgpack of meter_message_from_counter. HOST may
 *       be a name, an IPv4 address or an IPv6 address ([::1]:4952, or ::1
 *       without a port); PORT defaults to 4952. Like Ceilometer, the
 *       address is looked up as IPv6 first, then IPv4.
 *   tcp://HOST[:PORT][?telemetry_secret_file=PATH&timeout=5s]
 *       Ceilometer 20's TCPPublisher (upstream ceilometer/publisher/tcp.py,
 *       not in Debian's Ceilometer 19): one connection, each sample's
 *       msgpack preceded by its length as 8 bytes little-endian.
 *
 * Message layout and packing: worker/publishers/udp.h. With a forward
 * profile (forward=), each sample is filtered as its Sample.as_dict()
 * before the message is built: a field the profile removes is None in the
 * message (and signed so). Events: Ceilometer
 * raises NotImplementedError for both, so neither has SL_PUB_F_EVENTS.
 *
 * Delivery: both run on their own thread (SL_PUB_F_THREAD). UDP: the
 * datagrams of a batch go out up to 64 per sendmmsg() call; a
 * datagram the kernel refuses for a transient reason (no buffer space,
 * unreachable network) makes the batch RETRY; the retry resumes after the
 * last sample sent. A sample that cannot be a datagram (its message is
 * over the 65,507-byte IPv4 / 65,527-byte IPv6 limit, or cannot be packed)
 * is not sent: the other samples of the batch are, and the batch then ends
 * as ERROR naming how many were not sent (the output layer counts and
 * dead-letters it). TCP: the connection is opened on the first publish,
 * checked before each batch (a peer that closed it is noticed then), and
 * after a failed write on a connection that worked before, reopened once
 * and written again from the first sample not yet fully written
 * (Ceilometer's reconnect-and-resend); otherwise RETRY, resuming there. */
#include "worker/publishers/publisher.h"
#include "worker/publishers/udp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <msgpack.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "worker/publishers/notifier.h"
#include "worker/publishers/pubjson.h"
#include "worker/publishers/prometheus.h"

/* ---- packing --------------------------------------------------------------- */

static int
s_buf_write(void *data, const char *p, size_t n)
{
    sl_buf_put(data, p, n);
    return 0;
}

/* msgpack of v as Python's msgpack.packb(json.loads(text), use_bin_type=True)
 * would write it. -1 with err for an int msgpack cannot hold. */
static int
s_pack(msgpack_packer *pk, yajl_val v, char *err, size_t errlen)
{
    if (!v)
        return msgpack_pack_nil(pk);
    switch (v->type) {
    case yajl_t_string: {
        size_t n = strlen(v->u.string);
        msgpack_pack_str(pk, n);
        return msgpack_pack_str_body(pk, v->u.string, n);
    }
    case yajl_t_number:
        if (sl_py_is_float(v)) {
            double d = (v->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ? v->u.number.d
                       : v->u.number.r ? strtod(v->u.number.r, NULL)   /* 1e400: inf */
                       : (double) v->u.number.i;
            return msgpack_pack_double(pk, d);
        }
        if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
            return msgpack_pack_int64(pk, v->u.number.i);
        if (v->u.number.r && v->u.number.r[0] != '-') {
            char *end;
            errno = 0;
            unsigned long long u = strtoull(v->u.number.r, &end, 10);
            if (!errno && !*end)
                return msgpack_pack_uint64(pk, u);
        }
        return sl_errf(err, errlen, "integer %.40s is out of msgpack's range (Python's msgpack "
                       "raises OverflowError)", v->u.number.r ? v->u.number.r : "?");
    case yajl_t_true:
        return msgpack_pack_true(pk);
    case yajl_t_false:
        return msgpack_pack_false(pk);
    case yajl_t_array:
        msgpack_pack_array(pk, v->u.array.len);
        for (size_t i = 0; i < v->u.array.len; i++)
            if (s_pack(pk, v->u.array.values[i], err, errlen) < 0)
                return -1;
        return 0;
    case yajl_t_object:
        msgpack_pack_map(pk, v->u.object.len);
        for (size_t i = 0; i < v->u.object.len; i++) {
            size_t n = strlen(v->u.object.keys[i]);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, v->u.object.keys[i], n);
            if (s_pack(pk, v->u.object.values[i], err, errlen) < 0)
                return -1;
        }
        return 0;
    default:
        return msgpack_pack_nil(pk);
    }
}

/* ---- the meter message ----------------------------------------------------- */

static yajl_val
s_parse(sl_arena_t *a, const sl_sample_t *s, const char *what, const char *text, char *err,
        size_t errlen)
{
    char why[160];
    yajl_val v = sl_json_parse(a, text, strlen(text), 0, why, sizeof why);
    if (!v)
        sl_errf(err, errlen, "sample %s: %s is not JSON: %s", s->id ? s->id : "?", what, why);
    return v;
}

int
sl_udp_meter_pack(sl_buf_t *out, const sl_sample_t *s, const char *secret, size_t secret_len,
                  const char *publisher_id, char *err, size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    int rc = -1;
    size_t start = out->n;
    yajl_val volume, meta, mono;
    if (s->volume_json)
        volume = s_parse(&a, s, "volume", s->volume_json, err, errlen);
    else
        volume = sl_py_new_float(&a, s->volume);
    meta = s_parse(&a, s, "resource_metadata",
                   s->resource_metadata ? s->resource_metadata : "{}", err, errlen);
    mono = s->monotonic_time ? s_parse(&a, s, "monotonic_time", s->monotonic_time, err, errlen)
                             : sl_pubjson_node(&a, yajl_t_null);
    if (!volume || !meta || !mono)
        goto out;
    const char *keys[16];
    yajl_val vals[16];
    size_t n = 0;
#define S_FIELD(k, v) (keys[n] = (k), vals[n++] = (v))
    S_FIELD("source", sl_pubjson_str(&a, s->source));
    S_FIELD("counter_name", sl_pubjson_str(&a, s->name));
    S_FIELD("counter_type", sl_pubjson_str(&a, s->type));
    S_FIELD("counter_unit", sl_pubjson_str(&a, s->unit));
    S_FIELD("counter_volume", volume);
    S_FIELD("user_id", sl_pubjson_str(&a, s->user_id));
    if (publisher_id)
        S_FIELD("user_name", sl_pubjson_node(&a, yajl_t_null));
    S_FIELD("project_id", sl_pubjson_str(&a, s->project_id));
    if (publisher_id)
        S_FIELD("project_name", sl_pubjson_node(&a, yajl_t_null));
    S_FIELD("resource_id", sl_pubjson_str(&a, s->resource_id));
    S_FIELD("timestamp", sl_pubjson_str(&a, s->timestamp));
    S_FIELD("resource_metadata", meta);
    S_FIELD("message_id", sl_pubjson_str(&a, s->id));
    S_FIELD("monotonic_time", mono);
    if (publisher_id)
        S_FIELD("publisher_id", sl_pubjson_str(&a, publisher_id));
    S_FIELD("message_signature", sl_pubjson_node(&a, yajl_t_null));
#undef S_FIELD
    struct yajl_val_s msg = { .type = yajl_t_object };
    msg.u.object.keys = keys;
    msg.u.object.values = vals;
    msg.u.object.len = n;
    vals[n - 1] = sl_pubjson_str(&a, sl_notifier_signature(&msg, secret, secret_len, &a));
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, s_buf_write);
    if (s_pack(&pk, &msg, err, errlen) < 0) {
        out->n = start;
        if (out->p)
            out->p[start] = '\0';
        goto out;
    }
    rc = 0;
out:
    sl_arena_destroy(&a);
    return rc;
}

/* ---- URL ------------------------------------------------------------------- */

int
sl_udp_parse_host_port(const char *netloc, unsigned default_port, char *host, size_t hostlen,
                       unsigned *port, char *err, size_t errlen)
{
    const char *portp = NULL;
    size_t hn;
    if (netloc[0] == '[') {
        const char *close = strchr(netloc, ']');
        if (!close)
            return sl_errf(err, errlen, "'%s': an IPv6 address opened with '[' needs its ']' "
                           "(e.g. [::1]:4952)", netloc);
        hn = (size_t) (close - netloc - 1);
        if (hn >= hostlen)
            return sl_errf(err, errlen, "host '%.40s...' is too long", netloc);
        memcpy(host, netloc + 1, hn);
        host[hn] = '\0';
        const char *c = strchr(close, ':');
        portp = c ? c + 1 : NULL;
    } else {
        const char *c = strchr(netloc, ':');
        int one = c && !strchr(c + 1, ':');
        hn = one ? (size_t) (c - netloc) : strlen(netloc);
        if (hn >= hostlen)
            return sl_errf(err, errlen, "host '%.40s...' is too long", netloc);
        memcpy(host, netloc, hn);
        host[hn] = '\0';
        portp = one ? c + 1 : NULL;
    }
    if (!host[0])
        return sl_errf(err, errlen, "needs a host, e.g. udp://127.0.0.1:4952");
    if (!portp) {
        *port = default_port;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(portp, &end, 10);
    if (!*portp || *end || errno || p > 65535)
        return sl_errf(err, errlen, "port '%s' is not a number from 0 to 65535", portp);
    *port = (unsigned) p;
    return 0;
}

/* The URL's host and port. */
static int
s_url_host(const char *url, char *host, size_t hostlen, unsigned *port, char *err,
           size_t errlen)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    char netloc[512];
    if (n >= sizeof netloc)
        return sl_errf(err, errlen, "host part is too long");
    memcpy(netloc, p, n);
    netloc[n] = '\0';
    if (strchr(netloc, '@'))
        return sl_errf(err, errlen, "a user or password in the URL means nothing here; give "
                       "HOST[:PORT] only");
    return sl_udp_parse_host_port(netloc, SL_UDP_DEFAULT_PORT, host, hostlen, port, err, errlen);
}

/* ---- options shared by both ------------------------------------------------- */

typedef struct {
    char    *telemetry_secret_file;
    unsigned timeout_ms;
} s_opts_t;

#define S_OFF(f) offsetof(s_opts_t, f)

#define S_SECRET_OPT \
    { .name = "telemetry_secret_file", .type = SL_OPT_PATH, \
      .offset = S_OFF(telemetry_secret_file), \
      .help = "file holding Ceilometer's telemetry_secret that signs each message " \
              "(message_signature; an empty file = unsigned); default: Ceilometer's default " \
              "secret 'change this for valid signing'" }

static const sl_opt_t s_udp_opts[] = {
    S_SECRET_OPT,
    { .name = NULL },
};

static const sl_opt_t s_tcp_opts[] = {
    S_SECRET_OPT,
    { .name = "timeout", .type = SL_OPT_MS, .offset = S_OFF(timeout_ms), .def = "5s",
      .min = 10, .max = 600000,
      .help = "bound on connecting and on each wait for the socket to take more of a batch "
              "(then RETRY and a new connection)" },
    { .name = NULL },
};

static char *
s_read_secret(const char *path, size_t *len, char *err, size_t errlen)
{
    if (!path) {
        *len = strlen(SL_NOTIFIER_DEFAULT_SECRET);
        return sl_xstrdup(SL_NOTIFIER_DEFAULT_SECRET);
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        sl_errf(err, errlen, "telemetry_secret_file %s: %s (give a readable file, or leave "
                "the option out for Ceilometer's default secret)", path, strerror(errno));
        return NULL;
    }
    sl_buf_t b = { 0 };
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0 && b.n < 65536)
        sl_buf_put(&b, chunk, r);
    fclose(f);
    while (b.n && (b.p[b.n - 1] == '\n' || b.p[b.n - 1] == '\r'))
        b.p[--b.n] = '\0';
    *len = b.n;
    return b.p ? b.p : sl_xstrdup("");
}

/* Where a batch that failed part way resumes: the retry of the same batch
 * (same array, same count, and the sample before the resume point still
 * has the id it had) starts at index i, with `bad` samples already found
 * unsendable. */
typedef struct {
    const sl_sample_t *ptr;
    size_t             n, i, bad;
    char               prev_id[64];
    char               first_bad[256];
} s_resume_t;

static size_t
s_resume_at(s_resume_t *r, const sl_pub_batch_t *b)
{
    size_t i = 0;
    if (r->ptr && r->ptr == b->samples && r->n == b->n && r->i > 0 && r->i <= b->n) {
        const char *id = b->samples[r->i - 1].id;
        if (id && strncmp(id, r->prev_id, sizeof r->prev_id) == 0)
            i = r->i;
    }
    if (!i) {
        r->bad = 0;
        r->first_bad[0] = '\0';
    }
    r->ptr = NULL;
    return i;
}

static void
s_resume_set(s_resume_t *r, const sl_pub_batch_t *b, size_t i)
{
    r->ptr = b->samples;
    r->n = b->n;
    r->i = i;
    const char *prev = i ? b->samples[i - 1].id : NULL;
    snprintf(r->prev_id, sizeof r->prev_id, "%s", prev ? prev : "");
}

static void
s_bad(s_resume_t *r, const char *why)
{
    if (!r->bad++)
        snprintf(r->first_bad, sizeof r->first_bad, "%s", why);
}

static sl_pub_status_t
s_bad_result(s_resume_t *r, size_t n, char *err, size_t errlen)
{
    if (!r->bad)
        return SL_PUB_OK;
    sl_errf(err, errlen, "%zu of %zu samples not sent (the other %zu were): %s", r->bad, n,
            n - r->bad, r->first_bad);
    r->bad = 0;
    return SL_PUB_ERROR;
}

/* ---- udp:// ----------------------------------------------------------------- */

#define S_MMSG 64   /* datagrams per sendmmsg() */

typedef struct {
    char     host[256];
    unsigned port;
    char    *secret;
    size_t   secret_len;
    int      fd;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    size_t   limit;          /* largest datagram payload of the address family */
    sl_buf_t msg;            /* up to S_MMSG datagrams back to back */
    size_t   idx[S_MMSG], off[S_MMSG], len[S_MMSG];   /* sample, start, length */
    sl_arena_t arena;        /* forward views */
    s_resume_t resume;
} s_udp_t;

static void s_udp_destroy(void **ctx_p);

static void *
s_udp_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_udp_t *u = sl_xcalloc(1, sizeof *u);
    void *ctx = u;
    u->fd = -1;
    sl_arena_init(&u->arena, 0);
    if (s_url_host(url, u->host, sizeof u->host, &u->port, err, errlen) < 0)
        goto fail;
    if (!(u->secret = s_read_secret(o->telemetry_secret_file, &u->secret_len, err, errlen)))
        goto fail;
    (void) check_only;   /* the address is looked up on the first publish */
    return u;
fail:
    s_udp_destroy(&ctx);
    return NULL;
}

/* Ceilometer's choice of socket: the host's first IPv6 address, else its
 * first IPv4 one. -1 with err (a name that does not resolve yet: RETRY). */
static int
s_udp_open(s_udp_t *u, char *err, size_t errlen)
{
    char port[8];
    snprintf(port, sizeof port, "%u", u->port);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
    int rc = -1;
    static const int fams[] = { AF_INET6, AF_INET };
    for (size_t i = 0; i < 2 && rc != 0; i++) {
        hints.ai_family = fams[i];
        rc = getaddrinfo(u->host, port, &hints, &res);
    }
    if (rc != 0)
        return sl_errf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sl_errf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    memcpy(&u->addr, res->ai_addr, res->ai_addrlen);
    u->addrlen = res->ai_addrlen;
    u->limit = res->ai_family == AF_INET6 ? 65527 : 65507;
    freeaddrinfo(res);
    u->fd = fd;
    return 0;
}

/* Sends the n datagrams gathered in u->msg with as few sendmmsg() calls
 * as the kernel allows. 0, or -1 with *failed = the first not sent (a
 * transient error, in err). A datagram refused as too large is counted
 * as a bad sample and skipped. */
static int
s_udp_flush(s_udp_t *u, const sl_pub_batch_t *b, size_t n, size_t *failed, char *err,
            size_t errlen)
{
    struct mmsghdr mm[S_MMSG];
    struct iovec iov[S_MMSG];
    memset(mm, 0, n * sizeof *mm);
    for (size_t k = 0; k < n; k++) {
        iov[k].iov_base = u->msg.p + u->off[k];
        iov[k].iov_len = u->len[k];
        mm[k].msg_hdr.msg_name = &u->addr;
        mm[k].msg_hdr.msg_namelen = u->addrlen;
        mm[k].msg_hdr.msg_iov = &iov[k];
        mm[k].msg_hdr.msg_iovlen = 1;
    }
    size_t done = 0;
    while (done < n) {
        int r = sendmmsg(u->fd, mm + done, (unsigned) (n - done), 0);
        if (r > 0) {
            done += (size_t) r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EMSGSIZE) {
            char why[256];
            const char *id = b->samples[u->idx[done]].id;
            snprintf(why, sizeof why, "sample %.40s: its message of %zu bytes is too large for "
                     "a datagram to %.100s", id ? id : "?", u->len[done], u->host);
            s_bad(&u->resume, why);
            done++;
            continue;
        }
        *failed = done;
        return sl_errf(err, errlen, "sendmmsg to %s port %u: %s", u->host, u->port,
                       r < 0 ? strerror(errno) : "nothing sent");
    }
    return 0;
}

static sl_pub_status_t
s_udp_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_udp_t *u = ctx;
    if (b->kind != SL_PUB_SAMPLES)
        return sl_errf(err, errlen, "udp publishes samples only (Ceilometer's does not publish "
                       "events)"), SL_PUB_ERROR;
    if (!b->n)
        return SL_PUB_OK;
    size_t i = s_resume_at(&u->resume, b);
    if (u->fd < 0 && s_udp_open(u, err, errlen) < 0) {
        s_resume_set(&u->resume, b, i);
        return SL_PUB_RETRY;
    }
    char why[256];
    size_t n = 0, failed;
    sl_buf_reset(&u->msg);
    for (; i <= b->n; i++) {
        if (n == S_MMSG || (i == b->n && n)) {
            if (s_udp_flush(u, b, n, &failed, err, errlen) < 0) {
                /* the address may have changed: look it up again next time */
                close(u->fd);
                u->fd = -1;
                s_resume_set(&u->resume, b, u->idx[failed]);
                return SL_PUB_RETRY;
            }
            n = 0;
            sl_buf_reset(&u->msg);
        }
        if (i == b->n)
            break;
        size_t start = u->msg.n;
        sl_sample_t view;
        sl_arena_reset(&u->arena);
        const sl_sample_t *s = sl_httpbase_forward_view(b->forward, &b->samples[i], &view,
                                                        &u->arena);
        if (sl_udp_meter_pack(&u->msg, s, u->secret, u->secret_len, NULL, why,
                              sizeof why) < 0) {
            s_bad(&u->resume, why);
            continue;
        }
        if (u->msg.n - start > u->limit) {
            snprintf(why, sizeof why, "sample %.40s: its message of %zu bytes is over the %zu "
                     "bytes a UDP datagram can hold", b->samples[i].id ? b->samples[i].id : "?",
                     u->msg.n - start, u->limit);
            s_bad(&u->resume, why);
            u->msg.n = start;
            u->msg.p[start] = '\0';
            continue;
        }
        u->idx[n] = i;
        u->off[n] = start;
        u->len[n] = u->msg.n - start;
        n++;
    }
    return s_bad_result(&u->resume, b->n, err, errlen);
}

static void
s_udp_destroy(void **ctx_p)
{
    s_udp_t *u = *ctx_p;
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (u->secret)
        memset(u->secret, 0, u->secret_len);
    free(u->secret);
    sl_buf_free(&u->msg);
    sl_arena_destroy(&u->arena);
    free(u);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_udp = {
    .name = "udp",
    .help = "one msgpack datagram per sample, as Ceilometer's udp:// (default port 4952)",
    .opts = s_udp_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD,
    .init = s_udp_init,
    .publish = s_udp_publish,
    .destroy = s_udp_destroy,
};

/* ---- tcp:// ----------------------------------------------------------------- */

typedef struct {
    char     host[256];
    unsigned port;
    char    *secret;
    size_t   secret_len;
    char     publisher_id[256];
    unsigned timeout_ms;
    int      fd;
    sl_buf_t out;
    size_t  *ends;           /* per sample of the batch: end of its frame in out */
    size_t   ends_cap;
    sl_arena_t arena;        /* forward views */
    s_resume_t resume;
} s_tcp_t;

static void s_tcp_destroy(void **ctx_p);

static void *
s_tcp_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_tcp_t *t = sl_xcalloc(1, sizeof *t);
    void *ctx = t;
    t->fd = -1;
    sl_arena_init(&t->arena, 0);
    t->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
    if (s_url_host(url, t->host, sizeof t->host, &t->port, err, errlen) < 0)
        goto fail;
    if (!(t->secret = s_read_secret(o->telemetry_secret_file, &t->secret_len, err, errlen)))
        goto fail;
    /* Ceilometer's [DEFAULT] host: socket.gethostname() */
    if (gethostname(t->publisher_id, sizeof t->publisher_id) < 0)
        snprintf(t->publisher_id, sizeof t->publisher_id, "localhost");
    t->publisher_id[sizeof t->publisher_id - 1] = '\0';
    (void) check_only;   /* connects on the first publish */
    return t;
fail:
    s_tcp_destroy(&ctx);
    return NULL;
}

static void
s_tcp_close(s_tcp_t *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

/* socket.create_connection: each address of the host in turn, each
 * connect bounded by the timeout. */
static int
s_tcp_connect(s_tcp_t *t, char *err, size_t errlen)
{
    char port[8];
    snprintf(port, sizeof port, "%u", t->port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    int rc = getaddrinfo(t->host, port, &hints, &res);
    if (rc != 0)
        return sl_errf(err, errlen, "cannot resolve %s: %s", t->host, gai_strerror(rc));
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            if (errno != EINPROGRESS) {
                last = errno;
                close(fd);
                continue;
            }
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int pr;
            do
                pr = poll(&p, 1, (int) t->timeout_ms);
            while (pr < 0 && errno == EINTR);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr == 0)
                soerr = ETIMEDOUT;
            else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            if (soerr) {
                last = soerr;
                close(fd);
                continue;
            }
        }
        t->fd = fd;
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    return sl_errf(err, errlen, "cannot connect to %s port %u: %s", t->host, t->port,
                   last == ETIMEDOUT ? "timed out" : strerror(last));
}

/* 1 if the peer closed or reset the connection (the receiver never sends
 * anything, so anything readable is its end). */
static int
s_tcp_peer_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return 1;
    char c[256];
    ssize_t r = recv(fd, c, sizeof c, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Writes out[*off..n), advancing *off. -1 with err. */
static int
s_tcp_write(s_tcp_t *t, size_t *off, char *err, size_t errlen)
{
    while (*off < t->out.n) {
        ssize_t w = send(t->fd, t->out.p + *off, t->out.n - *off, MSG_NOSIGNAL);
        if (w > 0) {
            *off += (size_t) w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = { .fd = t->fd, .events = POLLOUT };
            int pr = poll(&p, 1, (int) t->timeout_ms);
            if (pr == 0)
                return sl_errf(err, errlen, "%s port %u took nothing for %u ms", t->host,
                               t->port, t->timeout_ms);
            if (pr < 0 && errno != EINTR)
                return sl_errf(err, errlen, "poll: %s", strerror(errno));
            continue;
        }
        return sl_errf(err, errlen, "send to %s port %u: %s", t->host, t->port,
                       w == 0 ? "nothing written" : strerror(errno));
    }
    return 0;
}

static sl_pub_status_t
s_tcp_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_tcp_t *t = ctx;
    if (b->kind != SL_PUB_SAMPLES)
        return sl_errf(err, errlen, "tcp publishes samples only (Ceilometer's does not publish "
                       "events)"), SL_PUB_ERROR;
    if (!b->n)
        return SL_PUB_OK;
    size_t first = s_resume_at(&t->resume, b);
    if (t->ends_cap < b->n + 1) {
        t->ends = sl_xrealloc(t->ends, (b->n + 1) * sizeof *t->ends);
        t->ends_cap = b->n + 1;
    }
    /* The whole batch as frames, written in as few send() calls as the
     * socket allows. */
    sl_buf_reset(&t->out);
    char why[256];
    for (size_t i = first; i < b->n; i++) {
        size_t start = t->out.n;
        static const char zero[8];
        sl_buf_put(&t->out, zero, 8);
        sl_sample_t view;
        sl_arena_reset(&t->arena);
        const sl_sample_t *s = sl_httpbase_forward_view(b->forward, &b->samples[i], &view,
                                                        &t->arena);
        if (sl_udp_meter_pack(&t->out, s, t->secret, t->secret_len, t->publisher_id, why,
                              sizeof why) < 0) {
            t->out.n = start;
            t->out.p[start] = '\0';
            s_bad(&t->resume, why);
        } else {
            uint64_t len = t->out.n - start - 8;
            for (int k = 0; k < 8; k++)
                t->out.p[start + k] = (char) (unsigned char) (len >> (8 * k));
        }
        t->ends[i] = t->out.n;
    }
    if (t->fd >= 0 && s_tcp_peer_gone(t->fd))
        s_tcp_close(t);
    size_t off = 0;
    for (int attempt = 0;; attempt++) {
        int reused = t->fd >= 0;
        if (!reused && s_tcp_connect(t, err, errlen) < 0)
            break;
        if (s_tcp_write(t, &off, err, errlen) == 0)
            return s_bad_result(&t->resume, b->n, err, errlen);
        s_tcp_close(t);
        /* a frame cut by the failure is sent whole on the next connection */
        size_t k = first;
        while (k < b->n && t->ends[k] <= off)
            k++;
        size_t restart = k > first ? t->ends[k - 1] : 0;
        sl_buf_t rest = { 0 };
        sl_buf_put(&rest, t->out.p + restart, t->out.n - restart);
        for (size_t j = k; j < b->n; j++)
            t->ends[j] -= restart;
        sl_buf_free(&t->out);
        t->out = rest;
        off = 0;
        first = k;
        if (!reused || attempt > 0)
            break;
        sl_info("tcp publisher %s port %u: %s; reconnecting to send again", t->host, t->port,
                err);
    }
    s_resume_set(&t->resume, b, first);
    return SL_PUB_RETRY;
}

static void
s_tcp_destroy(void **ctx_p)
{
    s_tcp_t *t = *ctx_p;
    if (!t)
        return;
    s_tcp_close(t);
    if (t->secret)
        memset(t->secret, 0, t->secret_len);
    free(t->secret);
    sl_buf_free(&t->out);
    free(t->ends);
    sl_arena_destroy(&t->arena);
    free(t);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_tcp = {
    .name = "tcp",
    .help = "msgpack samples on one TCP connection, each framed by an 8-byte little-endian "
            "length, as Ceilometer 20's tcp:// (default port 4952)",
    .opts = s_tcp_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD,
    .init = s_tcp_init,
    .publish = s_tcp_publish,
    .destroy = s_tcp_destroy,
};
