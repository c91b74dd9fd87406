/* websocket:// publisher — a WebSocket server (libwebsockets) streaming
 * samples and events to subscribers; the contract is in websocket.h.
 *
 * Threads of one instance:
 *   publish thread  (the output layer's, SL_PUB_F_THREAD) serialises a
 *                   batch once; on the hub it hands the records to the
 *                   clients' queues (s_deliver), elsewhere it PUSHes them
 *                   to the hub in one ZeroMQ message (ZMQ_DONTWAIT).
 *   service thread  tries to bind the port every takeover_ms until it
 *                   holds it, then runs lws_service(): handshakes, token
 *                   checks, writing queued frames, cutting off clients.
 *   hub receiver    (hub only) zmq_recv on the PULL socket; what other
 *                   instances pushed goes through s_deliver too.
 * The clients, their queues and the counters are under one mutex; only the
 * service thread touches wsi's, and other threads wake it with
 * lws_cancel_service().
 *
 * A record is serialised once per batch per forward profile (a client's
 * profile filter applied to a fresh parse of the record), into a
 * reference-counted frame with LWS_PRE bytes of headroom that every client
 * of that profile shares; lws_write writes its header into the headroom
 * (servers do not mask), so sharing is safe on the one service thread.
 *
 * Hub message (ZeroMQ): one byte 'S' (samples) or 'E' (events), then per
 * record a 4-byte big-endian length and the record's JSON text, already
 * filtered by the URL's own forward= profile. */
#include "worker/publishers/websocket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <libwebsockets.h>
#include <yajl/yajl_gen.h>
#include <zmq.h>

#include "common/arena.h"
#include "common/conf.h"
#include "common/json.h"
#include "common/log.h"
#include "worker/worker.h"

#define S_MAX_PROFILES 16
#define S_WRITES_PER_CALLBACK 64

/* ---- process-wide profile lookup ---------------------------------------- */

static const sl_conf_t *s_conf;

void
sl_publisher_websocket_set_conf(const sl_conf_t *conf)
{
    s_conf = conf;
}

const sl_conf_t *
sl_publisher_websocket_conf(void)
{
    return s_conf;
}

/* ---- pure helpers (websocket.h) ------------------------------------------ */

int
sl_ws_url_split(const char *url, char *host, size_t hostlen, unsigned *port, char *path,
                size_t pathlen, char *err, size_t errlen)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t auth_len = strcspn(p, "/?");
    const char *h = p, *hend, *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', auth_len);
        if (!rb)
            return sl_errf(err, errlen, "unterminated IPv6 address in '%.*s' (write "
                           "websocket://[::1]:8787/stream)", (int) auth_len, p);
        h++;
        hend = rb;
        colon = rb + 1 < p + auth_len && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', auth_len);
        hend = colon ? colon : p + auth_len;
    }
    if (memchr(p, '@', auth_len))
        return sl_errf(err, errlen, "no user or password in the URL: clients authenticate with "
                       "tokens of forward profiles (profiles=...)");
    size_t hl = (size_t) (hend - h);
    if (hl == 0) {
        h = "127.0.0.1";
        hl = strlen(h);
    }
    if (hl + 1 > hostlen)
        return sl_errf(err, errlen, "host name too long");
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned long v = 0;
    const char *ps = colon ? colon + 1 : NULL;
    size_t pl = ps ? (size_t) (p + auth_len - ps) : 0;
    if (!ps || pl == 0 || pl > 5 || strspn(ps, "0123456789") < pl ||
        (v = strtoul(ps, NULL, 10)) < 1 || v > 65535)
        return sl_errf(err, errlen, "needs a port 1..65535 to listen on (e.g. "
                       "websocket://127.0.0.1:8787/stream)");
    *port = (unsigned) v;
    const char *path0 = p + auth_len;
    size_t plen = strcspn(path0, "?");
    if (plen == 0) {
        path0 = "/";
        plen = 1;
    }
    if (plen + 1 > pathlen)
        return sl_errf(err, errlen, "path too long");
    memcpy(path, path0, plen);
    path[plen] = '\0';
    return 0;
}

static int
s_glob_ok(const char *g, char *err, size_t errlen)
{
    if (!*g)
        return sl_errf(err, errlen, "empty glob (write e.g. meters=cpu,disk.*)");
    int in_class = 0;
    for (const char *c = g; *c; c++) {
        if (*c == '\\') {
            if (!c[1])
                return sl_errf(err, errlen, "glob '%s' ends with '\\'", g);
            c++;
        } else if (*c == '[' && !in_class) {
            in_class = 1;
            if (c[1] == '!' || c[1] == '^')
                c++;
            if (c[1] == ']')
                c++;
        } else if (*c == ']' && in_class) {
            in_class = 0;
        }
    }
    if (in_class)
        return sl_errf(err, errlen, "glob '%s' has an unterminated '['", g);
    return 0;
}

static void
s_list_add(char ***list, size_t *n, const char *s, size_t len)
{
    *list = sl_xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = sl_xstrndup(s, len);
}

int
sl_ws_select_add(sl_ws_select_t *s, int events, const char *text, char *err, size_t errlen)
{
    char ***list = events ? &s->event_types : &s->meters;
    size_t *n = events ? &s->n_event_types : &s->n_meters;
    size_t n0 = *n;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        char *g = sl_xstrndup(p, len);
        /* blanks around a glob are trimmed */
        char *a = g, *e = g + strlen(g);
        while (*a == ' ')
            a++;
        while (e > a && e[-1] == ' ')
            *--e = '\0';
        if (s_glob_ok(a, err, errlen) < 0) {
            free(g);
            while (*n > n0)
                free((*list)[--*n]);
            return -1;
        }
        s_list_add(list, n, a, strlen(a));
        free(g);
        if (!p[len])
            break;
        p += len + 1;
    }
    if (events)
        s->event_types_set = 1;
    else
        s->meters_set = 1;
    return 0;
}

void
sl_ws_select_free(sl_ws_select_t *s)
{
    for (size_t i = 0; i < s->n_meters; i++)
        free(s->meters[i]);
    for (size_t i = 0; i < s->n_event_types; i++)
        free(s->event_types[i]);
    free(s->meters);
    free(s->event_types);
    memset(s, 0, sizeof *s);
}

/* Adds the globs of v (an array of strings, or one string) to the list. */
static int
s_select_from_json(sl_ws_select_t *s, int events, yajl_val v, char *err, size_t errlen)
{
    const char *key = events ? "event_types" : "meters";
    if (YAJL_IS_STRING(v))
        return sl_ws_select_add(s, events, v->u.string, err, errlen);
    if (!YAJL_IS_ARRAY(v))
        return sl_errf(err, errlen, "\"%s\" must be a list of globs", key);
    if (v->u.array.len == 0) {   /* an empty list: nothing of this kind */
        if (events)
            s->event_types_set = 1;
        else
            s->meters_set = 1;
        return 0;
    }
    for (size_t i = 0; i < v->u.array.len; i++) {
        yajl_val it = v->u.array.values[i];
        if (!YAJL_IS_STRING(it))
            return sl_errf(err, errlen, "\"%s\" must be a list of globs (strings)", key);
        if (sl_ws_select_add(s, events, it->u.string, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int
sl_ws_select_parse(sl_ws_select_t *s, const char *json, size_t len, char *err, size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 4096);
    char why[160];
    int rc = -1;
    yajl_val v = sl_json_parse(&a, json, len, 8, why, sizeof why);
    if (!v || !YAJL_IS_OBJECT(v)) {
        sl_errf(err, errlen, "a subscribe message is a JSON object {\"meters\": [globs], "
                "\"event_types\": [globs]}%s%s", v ? "" : ": ", v ? "" : why);
        goto out;
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        if (strcmp(k, "meters") && strcmp(k, "event_types")) {
            sl_errf(err, errlen, "unknown key \"%s\" in the subscribe message (known: meters, "
                    "event_types)", k);
            goto out;
        }
    }
    sl_ws_select_t n = { 0 };
    yajl_val m = sl_json_get(v, "meters"), e = sl_json_get(v, "event_types");
    if ((m && !YAJL_IS_NULL(m) && s_select_from_json(&n, 0, m, err, errlen) < 0) ||
        (e && !YAJL_IS_NULL(e) && s_select_from_json(&n, 1, e, err, errlen) < 0)) {
        sl_ws_select_free(&n);
        goto out;
    }
    sl_ws_select_free(s);
    *s = n;
    rc = 0;
out:
    sl_arena_destroy(&a);
    return rc;
}

int
sl_ws_select_match(const sl_ws_select_t *s, int events, const char *name)
{
    int set = events ? s->event_types_set : s->meters_set;
    if (!set)
        return !(events ? s->meters_set : s->event_types_set);
    char *const *g = events ? s->event_types : s->meters;
    size_t n = events ? s->n_event_types : s->n_meters;
    for (size_t i = 0; i < n; i++)
        if (fnmatch(g[i], name, 0) == 0)
            return 1;
    return 0;
}

static void
s_json_list(sl_buf_t *out, int set, char *const *g, size_t n)
{
    if (!set) {
        sl_buf_puts(out, "null");
        return;
    }
    sl_buf_putc(out, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_buf_putc(out, ',');
        sl_buf_json_str(out, g[i]);
    }
    sl_buf_putc(out, ']');
}

void
sl_ws_select_json(const sl_ws_select_t *s, sl_buf_t *out)
{
    sl_buf_puts(out, "{\"meters\":");
    s_json_list(out, s->meters_set, s->meters, s->n_meters);
    sl_buf_puts(out, ",\"event_types\":");
    s_json_list(out, s->event_types_set, s->event_types, s->n_event_types);
    sl_buf_putc(out, '}');
}

const char *
sl_ws_bearer(const char *header, char *out, size_t outlen)
{
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, "bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *t = header + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r' || t[n - 1] == '\n'))
        n--;
    if (n == 0 || n + 1 > outlen)
        return NULL;
    memcpy(out, t, n);
    out[n] = '\0';
    return out;
}

void
sl_ws_hub_endpoint(const char *host, unsigned port, char *out, size_t outlen)
{
    snprintf(out, outlen, "ipc://@sluice-websocket-%u-%s-%u", (unsigned) getuid(), host, port);
}

/* ---- the instance --------------------------------------------------------- */

typedef struct {
    char    *profiles;
    unsigned anonymous;
    unsigned max_client_queue;
    unsigned max_clients;
    char    *hub;
    unsigned hub_hwm;
    unsigned takeover_ms;
} s_opts_t;

/* A frame shared by the clients it is queued for. */
typedef struct {
    atomic_uint   refs;
    size_t        len;
    unsigned char data[];   /* LWS_PRE + len (+1 for a NUL) */
} s_msg_t;

typedef struct s_ws s_ws_t;

typedef struct s_client {
    s_ws_t          *ws;
    struct lws      *wsi;
    int              prof;          /* index in ws->prof (0 = anonymous / no profile) */
    sl_ws_select_t   sel;
    s_msg_t        **q;             /* ring of ws->max_q */
    size_t           head, len;
    int              cut_off;       /* queue overflowed: close it */
    int              closing;
    char             peer[64];
    struct s_client *next;
} s_client_t;

/* Per-connection data lws allocates (HTTP requests and WebSocket clients);
 * lws frees it. Nothing malloc'd hangs off it before ESTABLISHED, since a
 * connection may die between the handshake check and ESTABLISHED without
 * a CLOSED callback. */
typedef struct {
    s_client_t *c;          /* from ESTABLISHED to CLOSED */
    int         prof;       /* the handshake's profile */
    char        args[1024]; /* its meters=/event_types= parameters, NUL-separated */
    char        body[512];  /* GET /stats */
    size_t      body_len;
} s_pss_t;

struct s_ws {
    char     host[128], path[256];
    unsigned port;
    char     hub_ep[300];
    unsigned max_q, max_clients, hub_hwm, takeover_ms;
    int      anonymous;
    /* prof[0] = no profile (anonymous clients); 1..n_prof from profiles= */
    const sl_forward_t *prof[S_MAX_PROFILES + 1];
    char    *prof_name[S_MAX_PROFILES + 1];
    size_t   n_prof;

    pthread_mutex_t mu;
    pthread_cond_t  cv;
    s_client_t     *clients;
    unsigned        n_by_prof[S_MAX_PROFILES + 1];
    sl_ws_stats_t   st;

    atomic_int           stop;
    atomic_int           is_hub;
    struct lws_context  *lws;
    pthread_t            service;
    int                  service_started;
    pthread_t            receiver;
    int                  receiver_started;
    atomic_int           receiver_stop;

    void    *zctx;
    void    *push;          /* publish thread only */
    yajl_gen gen;           /* publish thread only */
    sl_buf_t out;           /* publish thread only */
    sl_buf_t rec;           /* publish thread only: one sample's text */
    sl_ratelimit_t rl_pub, rl_svc, rl_recv;
    sl_ratelimit_t rl_cut;   /* under mu */
};

static s_msg_t *
s_msg_new(const char *text, size_t len)
{
    s_msg_t *m = sl_xmalloc(sizeof *m + LWS_PRE + len + 1);
    atomic_init(&m->refs, 1);
    m->len = len;
    memcpy(m->data + LWS_PRE, text, len);
    m->data[LWS_PRE + len] = '\0';
    return m;
}

static void
s_msg_unref(s_msg_t *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        free(m);
}

/* Under ws->mu: queues m (taking a reference) for c; a full queue cuts the
 * client off (its queue dropped and counted). */
static void
s_enqueue_locked(s_ws_t *ws, s_client_t *c, s_msg_t *m)
{
    if (c->cut_off || c->closing)
        return;
    if (c->len == ws->max_q) {
        c->cut_off = 1;
        ws->st.cut_off++;
        ws->st.dropped += c->len + 1;
        sl_log_limited(&ws->rl_cut, SL_LOG_WARN, "websocket publisher %s:%u: client %s "
                       "(profile %s) cut off: %zu records waiting for it (max_client_queue); "
                       "%llu clients cut off so far. A subscriber must read as fast as records "
                       "come, or narrow its stream (meters=, event_types=)", ws->host, ws->port,
                       c->peer, ws->prof_name[c->prof], c->len, ws->st.cut_off);
        for (; c->len; c->len--, c->head = (c->head + 1) % ws->max_q)
            s_msg_unref(c->q[c->head]);
        return;
    }
    atomic_fetch_add(&m->refs, 1);
    c->q[(c->head + c->len++) % ws->max_q] = m;
}

static s_msg_t *
s_dequeue_locked(s_ws_t *ws, s_client_t *c)
{
    if (!c->len)
        return NULL;
    s_msg_t *m = c->q[c->head];
    c->head = (c->head + 1) % ws->max_q;
    c->len--;
    return m;
}

/* One record's text for the consumer of profile f: the text itself when
 * f has nothing to filter (NULL), else a fresh parse, filtered, dumped. */
static s_msg_t *
s_render(const sl_forward_t *f, int events, const char *text, size_t len, sl_arena_t *a)
{
    if (!f)
        return s_msg_new(text, len);
    sl_arena_reset(a);
    yajl_val v = sl_json_parse(a, text, len, 0, NULL, 0);
    if (!v)
        return NULL;
    sl_forward_filter(f, events, v);
    char *out = sl_json_dump(a, v);
    return out ? s_msg_new(out, strlen(out)) : NULL;
}

/* Hands n records (JSON texts) to the clients whose profile and stream
 * select them. Any thread but the service thread; never waits on a client. */
static void
s_deliver(s_ws_t *ws, int events, const char *const *texts, const size_t *lens, size_t n)
{
    unsigned active[S_MAX_PROFILES + 1];
    pthread_mutex_lock(&ws->mu);
    memcpy(active, ws->n_by_prof, sizeof active);
    int any = ws->clients != NULL;
    struct lws_context *lc = ws->lws;   /* destroyed only after this thread is done */
    pthread_mutex_unlock(&ws->mu);
    if (!any)
        return;
    sl_arena_t a, b;
    sl_arena_init(&a, 0);
    sl_arena_init(&b, 0);
    s_msg_t *msg[S_MAX_PROFILES + 1];
    int delivered = 0;
    for (size_t i = 0; i < n; i++) {
        sl_arena_reset(&a);
        yajl_val v = sl_json_parse(&a, texts[i], lens[i], 0, NULL, 0);
        const char *name = v ? sl_json_str(sl_json_get(v, events ? "event_type" : "name")) : NULL;
        if (!name) {
            pthread_mutex_lock(&ws->mu);
            sl_log_limited(&ws->rl_cut, SL_LOG_WARN, "websocket publisher %s:%u: a record "
                           "without %s skipped (a bug: please report it)", ws->host, ws->port,
                           events ? "event_type" : "a meter name");
            pthread_mutex_unlock(&ws->mu);
            continue;
        }
        for (size_t k = 0; k <= ws->n_prof; k++) {
            msg[k] = NULL;
            if (active[k] && (k == 0 || sl_forward_selects(ws->prof[k], events, name)))
                msg[k] = s_render(ws->prof[k], events, texts[i], lens[i], &b);
        }
        pthread_mutex_lock(&ws->mu);
        for (s_client_t *c = ws->clients; c; c = c->next)
            if (msg[c->prof] && sl_ws_select_match(&c->sel, events, name)) {
                s_enqueue_locked(ws, c, msg[c->prof]);
                delivered = 1;
            }
        pthread_mutex_unlock(&ws->mu);
        for (size_t k = 0; k <= ws->n_prof; k++)
            s_msg_unref(msg[k]);
    }
    sl_arena_destroy(&a);
    sl_arena_destroy(&b);
    if (delivered && lc)
        lws_cancel_service(lc);
}

/* ---- libwebsockets -------------------------------------------------------- */

static void
s_lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    if (level & LLL_ERR)
        sl_debug("websocket publisher: libwebsockets: %.*s", (int) n, line);
}

/* The request's token: Authorization: Bearer, else ?token=. */
static const char *
s_request_token(struct lws *wsi, char *buf, size_t len)
{
    char hdr[512];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        lws_hdr_copy(wsi, hdr, (int) sizeof hdr, WSI_TOKEN_HTTP_AUTHORIZATION) > 0)
        return sl_ws_bearer(hdr, buf, len);
    char arg[600];
    const char *v = lws_get_urlarg_by_name(wsi, "token=", arg, (int) sizeof arg);
    if (!v || !*v || strlen(v) + 1 > len)
        return NULL;
    memcpy(buf, v, strlen(v) + 1);
    return buf;
}

/* Adds the selection parameters kept by s_request_check to sel. */
static int
s_select_from_args(sl_ws_select_t *sel, const char *args, char *err, size_t errlen)
{
    for (const char *a = args; *a; a += strlen(a) + 1) {
        int events = strncmp(a, "event_types=", 12) == 0;
        const char *val = a + (events ? 12 : 7);
        if (*val && sl_ws_select_add(sel, events, val, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Checks a handshake: path, token, stream selection, room. 0 with the
 * client's profile index and selection filled (and, if args, its
 * selection parameters kept there NUL-separated, ending with an empty
 * one), or an HTTP status with a reason. */
static unsigned
s_request_check(s_ws_t *ws, struct lws *wsi, int *prof, sl_ws_select_t *sel, char *args,
                size_t argslen, char *why, size_t whylen)
{
    char uri[512];
    if (lws_hdr_copy(wsi, uri, (int) sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, ws->path) != 0) {
        snprintf(why, whylen, "no WebSocket stream here: connect to %s", ws->path);
        return 404;
    }
    char tok[512];
    const char *token = s_request_token(wsi, tok, sizeof tok);
    *prof = -1;
    if (token)
        for (size_t k = 1; k <= ws->n_prof && *prof < 0; k++)
            if (sl_forward_has_tokens(ws->prof[k]) && sl_forward_token_ok(ws->prof[k], token))
                *prof = (int) k;
    if (*prof < 0 && !token && ws->anonymous)
        *prof = 0;
    explicit_bzero(tok, sizeof tok);
    if (*prof < 0) {
        snprintf(why, whylen, "a valid token is needed: send 'Authorization: Bearer <token>' "
                 "or ?token=<token>, a token of one of this stream's forward profiles");
        return 401;
    }
    memset(sel, 0, sizeof *sel);
    size_t used = 0;
    char frag[1024];
    for (int i = 0; lws_hdr_copy_fragment(wsi, frag, (int) sizeof frag, WSI_TOKEN_HTTP_URI_ARGS,
                                          i) > 0; i++) {
        char err[200];
        int events = -1;
        const char *val = NULL;
        if (strncmp(frag, "meters=", 7) == 0)
            events = 0, val = frag + 7;
        else if (strncmp(frag, "event_types=", 12) == 0)
            events = 1, val = frag + 12;
        else if (strncmp(frag, "token=", 6) == 0)
            continue;
        else {
            snprintf(why, whylen, "unknown query parameter '%.40s' (known: token, meters, "
                     "event_types)", frag);
            sl_ws_select_free(sel);
            return 400;
        }
        if (*val && sl_ws_select_add(sel, events, val, err, sizeof err) < 0) {
            snprintf(why, whylen, "%s", err);
            sl_ws_select_free(sel);
            return 400;
        }
        size_t fl = strlen(frag) + 1;
        if (args && used + fl + 1 > argslen) {
            snprintf(why, whylen, "meters= and event_types= are longer than %zu bytes in all: "
                     "subscribe with a message after connecting instead", argslen - 1);
            sl_ws_select_free(sel);
            return 400;
        }
        if (args) {
            memcpy(args + used, frag, fl);
            used += fl;
        }
    }
    if (args)
        args[used] = '\0';
    pthread_mutex_lock(&ws->mu);
    unsigned n = 0;
    for (s_client_t *c = ws->clients; c; c = c->next)
        n++;
    pthread_mutex_unlock(&ws->mu);
    if (n >= ws->max_clients) {
        snprintf(why, whylen, "too many subscribers (max_clients=%u); try again later",
                 ws->max_clients);
        sl_ws_select_free(sel);
        return 503;
    }
    return 0;
}

/* Queues a control frame for c only: {"subscribed": {...}} or an error. */
static void
s_queue_control_locked(s_ws_t *ws, s_client_t *c, const char *error)
{
    sl_buf_t b = { 0 };
    if (error) {
        sl_buf_puts(&b, "{\"error\":");
        sl_buf_json_str(&b, error);
        sl_buf_putc(&b, '}');
    } else {
        sl_buf_puts(&b, "{\"subscribed\":{\"profile\":");
        if (c->prof)
            sl_buf_json_str(&b, ws->prof_name[c->prof]);
        else
            sl_buf_puts(&b, "null");
        sl_buf_puts(&b, ",\"select\":");
        sl_ws_select_json(&c->sel, &b);
        sl_buf_puts(&b, "}}");
    }
    s_msg_t *m = s_msg_new(b.p, b.n);
    sl_buf_free(&b);
    s_enqueue_locked(ws, c, m);
    s_msg_unref(m);
}

static void
s_client_free(s_ws_t *ws, s_client_t *c)
{
    s_msg_t *m;
    while ((m = s_dequeue_locked(ws, c)))
        s_msg_unref(m);
    sl_ws_select_free(&c->sel);
    free(c->q);
    free(c);
}

static int
s_http_stats(s_ws_t *ws, struct lws *wsi, s_pss_t *pss)
{
    sl_ws_stats_t st;
    sl_publisher_websocket_stats(ws, &st);
    pss->body_len = (size_t) snprintf(pss->body, sizeof pss->body,
        "{\"hub\":%d,\"clients\":%llu,\"connects\":%llu,\"rejected\":%llu,\"sent\":%llu,"
        "\"cut_off\":%llu,\"dropped\":%llu,\"pid\":%ld}\n", st.hub, st.clients, st.connects,
        st.rejected, st.sent, st.cut_off, st.dropped, (long) getpid());
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/json",
                                    (lws_filepos_t) pss->body_len, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* Refuses a handshake with status and why as a text/plain body, written
 * whole by us: lws_return_http_status answers HTTP/1.0 before the request
 * version is known, which WebSocket clients reject as "not a valid HTTP
 * response" instead of showing the status. Returns the callback's value. */
static int
s_http_refuse(struct lws *wsi, unsigned status, const char *why)
{
    const char *text = status == 401 ? "Unauthorized" : status == 404 ? "Not Found" :
                       status == 503 ? "Service Unavailable" : "Bad Request";
    unsigned char buf[LWS_PRE + 1024];
    char *p = (char *) buf + LWS_PRE;
    int n = snprintf(p, sizeof buf - LWS_PRE, "HTTP/1.1 %u %s\r\ncontent-type: text/plain\r\n"
                     "content-length: %zu\r\nconnection: close\r\n%s\r\n%s\n", status, text,
                     strlen(why) + 1, status == 401 ? "www-authenticate: Bearer\r\n" : "", why);
    if (n < 0 || (size_t) n >= sizeof buf - LWS_PRE)
        return -1;
    if (lws_write(wsi, (unsigned char *) p, (size_t) n, LWS_WRITE_HTTP_HEADERS) != n)
        return -1;
    return 1;
}

static int
s_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct lws_context *lc = lws_get_context(wsi);
    s_ws_t *ws = lc ? lws_context_user(lc) : NULL;
    s_pss_t *pss = user;
    if (!ws)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        /* GET <path>/stats: this hub's counters (plain HTTP, no token:
         * nothing in it is secret). Anything else: 404. */
        char want[300];
        snprintf(want, sizeof want, "%s%sstats", ws->path,
                 ws->path[strlen(ws->path) - 1] == '/' ? "" : "/");
        if (in && (strcmp(in, want) == 0 || strcmp(in, "/stats") == 0))
            return s_http_stats(ws, wsi, pss);
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!pss || !pss->body_len)
            return 0;
        {
            unsigned char buf[LWS_PRE + sizeof pss->body];
            memcpy(buf + LWS_PRE, pss->body, pss->body_len);
            if (lws_write(wsi, buf + LWS_PRE, pss->body_len, LWS_WRITE_HTTP_FINAL) !=
                (int) pss->body_len)
                return 1;
            pss->body_len = 0;
        }
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        int prof;
        sl_ws_select_t sel;
        char why[300];
        unsigned status = s_request_check(ws, wsi, &prof, &sel, NULL, 0, why, sizeof why);
        if (!status) {
            sl_ws_select_free(&sel);
            return 0;
        }
        char peer[64] = "";
        lws_get_peer_simple(wsi, peer, sizeof peer);
        pthread_mutex_lock(&ws->mu);
        ws->st.rejected++;
        pthread_mutex_unlock(&ws->mu);
        sl_log_limited(&ws->rl_svc, SL_LOG_INFO, "websocket publisher %s:%u: refused %s: %u %s",
                       ws->host, ws->port, peer, status, why);
        return s_http_refuse(wsi, status, why);
    }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* checked again (CONFIRM_UPGRADE refused the bad ones with a
         * status), now to keep the profile and parameters */
        sl_ws_select_t sel;
        char why[300];
        if (s_request_check(ws, wsi, &pss->prof, &sel, pss->args, sizeof pss->args, why,
                            sizeof why))
            return 1;
        sl_ws_select_free(&sel);
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        char err[200];
        s_client_t *c = sl_xcalloc(1, sizeof *c);
        if (s_select_from_args(&c->sel, pss->args, err, sizeof err) < 0) {
            sl_ws_select_free(&c->sel);
            free(c);
            return -1;
        }
        c->ws = ws;
        c->wsi = wsi;
        c->prof = pss->prof;
        c->q = sl_xcalloc(ws->max_q, sizeof *c->q);
        lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
        pss->c = c;
        pthread_mutex_lock(&ws->mu);
        c->next = ws->clients;
        ws->clients = c;
        ws->n_by_prof[c->prof]++;
        ws->st.connects++;
        ws->st.clients++;
        s_queue_control_locked(ws, c, NULL);
        pthread_mutex_unlock(&ws->mu);
        sl_info("websocket publisher %s:%u: subscriber %s connected (profile %s)", ws->host,
                ws->port, c->peer, ws->prof_name[c->prof]);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_CLOSED: {
        s_client_t *c = pss ? pss->c : NULL;
        if (!c)
            return 0;
        pthread_mutex_lock(&ws->mu);
        for (s_client_t **pp = &ws->clients; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                ws->n_by_prof[c->prof]--;
                ws->st.clients--;
                break;
            }
        s_client_free(ws, c);
        pthread_mutex_unlock(&ws->mu);
        pss->c = NULL;
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        /* A subscribe message replaces the client's stream selection. */
        s_client_t *c = pss ? pss->c : NULL;
        if (!c || !lws_is_final_fragment(wsi) || !lws_is_first_fragment(wsi))
            return 0;   /* fragmented control messages are not supported: ignored */
        sl_ws_select_t sel = { 0 };
        char err[200];
        int rc = sl_ws_select_parse(&sel, in, len, err, sizeof err);
        pthread_mutex_lock(&ws->mu);
        if (rc == 0) {
            sl_ws_select_free(&c->sel);
            c->sel = sel;
        }
        s_queue_control_locked(ws, c, rc == 0 ? NULL : err);
        pthread_mutex_unlock(&ws->mu);
        lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        s_client_t *c = pss ? pss->c : NULL;
        if (!c)
            return 0;
        if (c->cut_off) {
            static const char r[] = "subscriber too slow: max_client_queue records waiting";
            unsigned char rb[sizeof r];
            memcpy(rb, r, sizeof r);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, rb, sizeof r - 1);
            return -1;
        }
        unsigned long long sent = 0;
        int more = 0;
        for (int k = 0; k < S_WRITES_PER_CALLBACK; k++) {
            pthread_mutex_lock(&ws->mu);
            s_msg_t *m = s_dequeue_locked(ws, c);
            more = c->len > 0;
            pthread_mutex_unlock(&ws->mu);
            if (!m)
                break;
            size_t mlen = m->len;
            int w = lws_write(wsi, m->data + LWS_PRE, mlen, LWS_WRITE_TEXT);
            s_msg_unref(m);
            if (w < (int) mlen)
                return -1;
            sent++;
            if (!more || lws_send_pipe_choked(wsi))
                break;
        }
        pthread_mutex_lock(&ws->mu);
        ws->st.sent += sent;
        more = c->len > 0;
        pthread_mutex_unlock(&ws->mu);
        if (more)
            lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* Another thread queued records or cut a client off. */
        pthread_mutex_lock(&ws->mu);
        for (s_client_t *c = ws->clients; c; c = c->next) {
            if (c->cut_off && !c->closing) {
                c->closing = 1;
                /* A close frame if the socket takes one; a stalled one
                 * is dropped a second later without it. */
                lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 1);
                lws_callback_on_writable(c->wsi);
            } else if (c->len && !c->closing) {
                lws_callback_on_writable(c->wsi);
            }
        }
        pthread_mutex_unlock(&ws->mu);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols s_protocols[] = {
    { "sluice", s_callback, sizeof(s_pss_t), 4096, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* 1 if host:port can be bound now (nobody serves it). */
static int
s_port_free(s_ws_t *ws)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
    if (inet_pton(AF_INET, ws->host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t) ws->port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, ws->host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t) ws->port);
        sl = sizeof *s6;
    } else {
        return 1;   /* a name: let libwebsockets try */
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = bind(fd, (struct sockaddr *) &ss, sl) == 0;
    close(fd);
    return ok;
}

#define S_STATS_LOG_S 60

/* Every S_STATS_LOG_S on the hub, when something changed: one info line
 * with the counters (also at GET /stats). */
static void
s_stats_log(s_ws_t *ws, time_t *last_at, sl_ws_stats_t *last)
{
    time_t now = time(NULL);
    if (now - *last_at < S_STATS_LOG_S)
        return;
    *last_at = now;
    sl_ws_stats_t st;
    sl_publisher_websocket_stats(ws, &st);
    if (st.connects == last->connects && st.sent == last->sent &&
        st.dropped == last->dropped && st.rejected == last->rejected)
        return;
    sl_info("websocket publisher %s:%u: %llu subscribers now; since this worker started: "
            "%llu connected, %llu refused, %llu frames sent, %llu cut off, %llu records dropped",
            ws->host, ws->port, st.clients, st.connects, st.rejected, st.sent, st.cut_off,
            st.dropped);
    *last = st;
}

static void *
s_receiver_main(void *arg)
{
    s_ws_t *ws = arg;
    void *pull = zmq_socket(ws->zctx, ZMQ_PULL);
    int timeout = 200, hwm = (int) ws->hub_hwm, zero = 0;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
    int bound = 0;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    const char **texts = NULL;
    size_t *lens = NULL, cap = 0;
    time_t log_at = time(NULL);
    sl_ws_stats_t logged = { 0 };
    while (!atomic_load(&ws->receiver_stop)) {
        s_stats_log(ws, &log_at, &logged);
        if (!bound) {
            if (zmq_bind(pull, ws->hub_ep) == 0) {
                bound = 1;
                sl_info("websocket publisher %s:%u: hub receives the other workers' records "
                        "on %s", ws->host, ws->port, ws->hub_ep);
            } else {
                sl_log_limited(&ws->rl_recv, SL_LOG_ERROR, "websocket publisher %s:%u: cannot "
                               "bind the hub endpoint %s: %s; the other workers' records do "
                               "not reach the subscribers (retrying)", ws->host, ws->port,
                               ws->hub_ep, zmq_strerror(errno));
                usleep(500000);
                continue;
            }
        }
        if (zmq_msg_recv(&msg, pull, 0) < 0)
            continue;   /* timeout: look at the stop flag */
        const unsigned char *p = zmq_msg_data(&msg);
        size_t n = zmq_msg_size(&msg), off = 1, k = 0;
        if (n < 1 || (p[0] != 'S' && p[0] != 'E'))
            continue;
        while (off + 4 <= n) {
            uint32_t l = (uint32_t) p[off] << 24 | (uint32_t) p[off + 1] << 16 |
                         (uint32_t) p[off + 2] << 8 | p[off + 3];
            off += 4;
            if (l > n - off)
                break;
            if (k == cap) {
                cap = cap ? cap * 2 : 64;
                texts = sl_xrealloc(texts, cap * sizeof *texts);
                lens = sl_xrealloc(lens, cap * sizeof *lens);
            }
            texts[k] = (const char *) p + off;
            lens[k++] = l;
            off += l;
        }
        s_deliver(ws, p[0] == 'E', texts, lens, k);
    }
    zmq_msg_close(&msg);
    zmq_close(pull);
    free(texts);
    free(lens);
    return NULL;
}

/* Becomes the hub if the port is free: creates the lws context (binding
 * the port) and starts the receiver. 1 = hub now. */
static int
s_try_hub(s_ws_t *ws)
{
    if (!s_port_free(ws))
        return 0;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int) ws->port;
    info.iface = ws->host;
    info.protocols = s_protocols;
    info.user = ws;
    info.gid = (gid_t) -1;
    info.uid = (uid_t) -1;
    info.count_threads = 1;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 * (strchr(ws->host, ':') == NULL);
    info.ka_time = 0;
    struct lws_context *lc = lws_create_context(&info);
    if (!lc)
        return 0;
    pthread_mutex_lock(&ws->mu);
    ws->lws = lc;
    pthread_mutex_unlock(&ws->mu);
    atomic_store(&ws->receiver_stop, 0);
    if (pthread_create(&ws->receiver, NULL, s_receiver_main, ws) == 0)
        ws->receiver_started = 1;
    atomic_store(&ws->is_hub, 1);
    sl_info("websocket publisher: serving subscribers on ws://%s:%u%s (this worker is the hub)",
            ws->host, ws->port, ws->path);
    return 1;
}

static void *
s_service_main(void *arg)
{
    s_ws_t *ws = arg;
    while (!atomic_load(&ws->stop)) {
        if (!ws->lws && !s_try_hub(ws)) {
            struct timespec ts = sl_deadline(CLOCK_REALTIME, ws->takeover_ms);
            pthread_mutex_lock(&ws->mu);
            if (!atomic_load(&ws->stop))
                pthread_cond_timedwait(&ws->cv, &ws->mu, &ts);
            pthread_mutex_unlock(&ws->mu);
            continue;
        }
        lws_service(ws->lws, 0);
    }
    if (ws->lws) {
        atomic_store(&ws->receiver_stop, 1);
        if (ws->receiver_started)
            pthread_join(ws->receiver, NULL);
        ws->receiver_started = 0;
        atomic_store(&ws->is_hub, 0);
        struct lws_context *lc = ws->lws;
        lws_context_destroy(lc);   /* CLOSED for each client frees it */
        pthread_mutex_lock(&ws->mu);
        ws->lws = NULL;
        pthread_mutex_unlock(&ws->mu);
    }
    return NULL;
}

/* ---- options, init, publish ---------------------------------------------- */

#define S_OFF(f) offsetof(s_opts_t, f)

static const sl_opt_t s_opts[] = {
    { .name = "profiles", .type = SL_OPT_STR, .offset = S_OFF(profiles),
      .type_text = "comma-separated forward profile names",
      .help = "forward profiles (sluice.yaml forward:) whose tokens open a subscription; a "
              "subscriber gets that profile's records (meters / event_types) with its field "
              "filters. e.g. profiles=searchlight,ops" },
    { .name = "anonymous", .type = SL_OPT_BOOL, .offset = S_OFF(anonymous), .def = "false",
      .help = "true = a client without a token is accepted and gets every record unfiltered "
              "(the URL's own forward= profile still applies); only for loopback set-ups" },
    { .name = "max_client_queue", .type = SL_OPT_UINT, .offset = S_OFF(max_client_queue),
      .def = "1000", .min = 1, .max = 1000000,
      .help = "records waiting for one subscriber; when one more comes, the subscriber is "
              "disconnected (close 1008), its records dropped and counted" },
    { .name = "max_clients", .type = SL_OPT_UINT, .offset = S_OFF(max_clients), .def = "64",
      .min = 1, .max = 10000,
      .help = "subscribers at once; more are refused with 503 at the handshake" },
    { .name = "hub", .type = SL_OPT_STR, .offset = S_OFF(hub),
      .type_text = "ZeroMQ endpoint",
      .help = "where the other pipeline workers push their records to the worker that serves "
              "the port (default: ipc://<run_dir>/websocket-<host>-<port>.hub)" },
    { .name = "hub_hwm", .type = SL_OPT_UINT, .offset = S_OFF(hub_hwm), .def = "1000",
      .min = 1, .max = 1000000,
      .help = "batches a worker keeps for the hub (ZeroMQ high-water mark); beyond, its "
              "batches are dropped and counted, never waited for" },
    { .name = "takeover_ms", .type = SL_OPT_MS, .offset = S_OFF(takeover_ms), .def = "1000",
      .min = 50, .max = 60000,
      .help = "how often a worker that is not the hub tries to take the port over (when the "
              "hub's worker is gone)" },
    { .name = NULL },
};

static void s_destroy(void **ctx_p);

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_ws_t *ws = sl_xcalloc(1, sizeof *ws);
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->cv, NULL);
    void *v = ws;
    if (sl_ws_url_split(url, ws->host, sizeof ws->host, &ws->port, ws->path, sizeof ws->path,
                        err, errlen) < 0)
        goto fail;
    ws->max_q = o->max_client_queue;
    ws->max_clients = o->max_clients;
    ws->hub_hwm = o->hub_hwm;
    ws->takeover_ms = o->takeover_ms;
    ws->anonymous = (int) o->anonymous;
    ws->prof_name[0] = sl_xstrdup("(none)");
    /* The hub endpoint: in run_dir (only sluice's user can bind or reach
     * it there), else an abstract socket (unit tests, no configuration). */
    if (o->hub && *o->hub)
        snprintf(ws->hub_ep, sizeof ws->hub_ep, "%s", o->hub);
    else if (s_conf && s_conf->run_dir)
        snprintf(ws->hub_ep, sizeof ws->hub_ep, "ipc://%s/websocket-%s-%u.hub", s_conf->run_dir,
                 ws->host, ws->port);
    else
        sl_ws_hub_endpoint(ws->host, ws->port, ws->hub_ep, sizeof ws->hub_ep);
    if (strncmp(ws->hub_ep, "ipc://", 6) == 0 && strlen(ws->hub_ep + 6) > 107) {
        sl_errf(err, errlen, "the hub endpoint %s is longer than a socket path may be (107 "
                "bytes): set hub= to a shorter ipc:// path", ws->hub_ep);
        goto fail;
    }
    for (const char *p = o->profiles ? o->profiles : ""; *p;) {
        size_t len = strcspn(p, ",");
        if (len) {
            char *name = sl_xstrndup(p, len);
            if (ws->n_prof == S_MAX_PROFILES) {
                sl_errf(err, errlen, "profiles: at most %d profiles per URL", S_MAX_PROFILES);
                free(name);
                goto fail;
            }
            const sl_forward_t *f = s_conf ? sl_conf_forward(s_conf, name) : NULL;
            if (!f) {
                sl_errf(err, errlen, "profiles: no forward profile '%s'%s (define it under "
                        "forward: in sluice.yaml, with tokens: or token_file:)", name,
                        s_conf ? "" : " (no forward profiles are loaded: the websocket publisher was given no "
                        "configuration, sl_publisher_websocket_set_conf)");
                free(name);
                goto fail;
            }
            if (!sl_forward_has_tokens(f)) {
                sl_errf(err, errlen, "profiles: forward profile '%s' has no tokens, so no "
                        "subscriber could use it (add tokens: or token_file: to it)", name);
                free(name);
                goto fail;
            }
            ws->n_prof++;
            ws->prof[ws->n_prof] = f;
            ws->prof_name[ws->n_prof] = name;
        }
        p += len + (p[len] == ',');
    }
    if (!ws->n_prof && !ws->anonymous) {
        sl_errf(err, errlen, "nobody could subscribe: name the forward profiles whose tokens "
                "are accepted (profiles=searchlight,ops), or anonymous=true for a trusted "
                "loopback stream");
        goto fail;
    }
    if (check_only)
        return ws;
    ws->gen = yajl_gen_alloc(NULL);
    ws->zctx = zmq_ctx_new();
    lws_set_log_level(LLL_ERR, s_lws_log);
    if (!ws->zctx || pthread_create(&ws->service, NULL, s_service_main, ws) != 0) {
        sl_errf(err, errlen, "cannot start its threads: %s", strerror(errno));
        goto fail;
    }
    ws->service_started = 1;
    return ws;
fail:
    s_destroy(&v);
    return NULL;
}

static void
s_put_record(sl_buf_t *b, const char *text, size_t len)
{
    unsigned char l[4] = { (unsigned char) (len >> 24), (unsigned char) (len >> 16),
                           (unsigned char) (len >> 8), (unsigned char) len };
    sl_buf_put(b, l, 4);
    sl_buf_put(b, text, len);
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_ws_t *ws = ctx;
    int events = b->kind == SL_PUB_EVENTS;
    sl_buf_reset(&ws->out);
    sl_buf_putc(&ws->out, events ? 'E' : 'S');
    sl_arena_t a;
    sl_arena_init(&a, 0);
    for (size_t i = 0; i < b->n; i++) {
        const char *text;
        size_t len;
        if (events) {
            text = b->events[i];
            if (!text)
                continue;
            len = strlen(text);
        } else {
            sl_buf_reset(&ws->rec);
            if (sl_sample_put(&ws->rec, &ws->gen, &b->samples[i]) < 0) {
                sl_arena_destroy(&a);
                snprintf(err, errlen, "cannot serialise sample %s", b->samples[i].name);
                return SL_PUB_ERROR;
            }
            text = ws->rec.p;
            len = ws->rec.n;
        }
        if (b->forward) {   /* the URL's own profile, before any subscriber's */
            sl_arena_reset(&a);
            yajl_val v = sl_json_parse(&a, text, len, 0, NULL, 0);
            if (v) {
                sl_forward_filter(b->forward, events, v);
                text = sl_json_dump(&a, v);
                len = strlen(text);
            }
        }
        s_put_record(&ws->out, text, len);
    }
    sl_arena_destroy(&a);
    if (ws->out.n <= 1)
        return SL_PUB_OK;
    if (atomic_load(&ws->is_hub)) {
        /* split the message back into records: the same path as the hub's
         * receiver takes */
        size_t cap = b->n, k = 0, off = 1;
        const char **texts = sl_xmalloc((cap ? cap : 1) * sizeof *texts);
        size_t *lens = sl_xmalloc((cap ? cap : 1) * sizeof *lens);
        const unsigned char *p = (const unsigned char *) ws->out.p;
        while (off + 4 <= ws->out.n && k < cap) {
            uint32_t l = (uint32_t) p[off] << 24 | (uint32_t) p[off + 1] << 16 |
                         (uint32_t) p[off + 2] << 8 | p[off + 3];
            texts[k] = (const char *) p + off + 4;
            lens[k++] = l;
            off += 4 + l;
        }
        s_deliver(ws, events, texts, lens, k);
        free(texts);
        free(lens);
        return SL_PUB_OK;
    }
    if (!ws->push) {
        ws->push = zmq_socket(ws->zctx, ZMQ_PUSH);
        int hwm = (int) ws->hub_hwm, zero = 0;
        zmq_setsockopt(ws->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(ws->push, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_connect(ws->push, ws->hub_ep) < 0)
            sl_log_limited(&ws->rl_pub, SL_LOG_ERROR, "websocket publisher %s:%u: cannot "
                           "connect to the hub at %s: %s", ws->host, ws->port, ws->hub_ep,
                           zmq_strerror(errno));
    }
    if (zmq_send(ws->push, ws->out.p, ws->out.n, ZMQ_DONTWAIT) < 0) {
        pthread_mutex_lock(&ws->mu);
        ws->st.dropped += b->n;
        unsigned long long d = ws->st.dropped;
        pthread_mutex_unlock(&ws->mu);
        sl_log_limited(&ws->rl_pub, SL_LOG_WARN, "websocket publisher %s:%u: the hub worker "
                       "does not take records (%s): %zu dropped, %llu so far; subscribers "
                       "miss them", ws->host, ws->port, zmq_strerror(errno), b->n, d);
        return SL_PUB_OK;   /* never publishable later: subscribers are live streams */
    }
    pthread_mutex_lock(&ws->mu);
    ws->st.forwarded += b->n;
    pthread_mutex_unlock(&ws->mu);
    return SL_PUB_OK;
}

void
sl_publisher_websocket_stats(void *ctx, sl_ws_stats_t *out)
{
    s_ws_t *ws = ctx;
    pthread_mutex_lock(&ws->mu);
    *out = ws->st;
    pthread_mutex_unlock(&ws->mu);
    out->hub = atomic_load(&ws->is_hub);
}

/* sl_pub_plugin_t.counters: subscribers now (the hub's), records lost. */
static void
s_counters(void *ctx, uint64_t *peers, uint64_t *lost)
{
    sl_ws_stats_t st;
    sl_publisher_websocket_stats(ctx, &st);
    *peers = st.clients;
    *lost = st.dropped;
}

static void
s_destroy(void **ctx_p)
{
    s_ws_t *ws = *ctx_p;
    if (!ws)
        return;
    atomic_store(&ws->stop, 1);
    if (ws->service_started) {
        pthread_mutex_lock(&ws->mu);
        pthread_cond_broadcast(&ws->cv);
        if (ws->lws)
            lws_cancel_service(ws->lws);
        pthread_mutex_unlock(&ws->mu);
        pthread_join(ws->service, NULL);
    }
    if (ws->push)
        zmq_close(ws->push);
    if (ws->zctx)
        sl_worker_zmq_term(ws->zctx, SL_WORKER_ZTERM_MS);   /* (bounded: see worker.h) */
    if (ws->gen)
        yajl_gen_free(ws->gen);
    sl_buf_free(&ws->out);
    sl_buf_free(&ws->rec);
    for (size_t k = 0; k <= ws->n_prof; k++)
        free(ws->prof_name[k]);
    pthread_mutex_destroy(&ws->mu);
    pthread_cond_destroy(&ws->cv);
    free(ws);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_websocket = {
    .name = "websocket",
    .help = "WebSocket server streaming records to subscribers (token per forward profile, "
            "per-client meters/event_types, bounded per-client queues)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD | SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
    .counters = s_counters,
};
