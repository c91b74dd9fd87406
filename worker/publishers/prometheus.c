/* prometheus:// publisher — samples pushed to a Prometheus Pushgateway as
 * Ceilometer 19's PrometheusPublisher pushes them:
 *
 *   prometheus://[user:password@]host[:port]/metrics/job/<job>[/<label>/<value>...]
 *       [?timeout=5][&ssl=false][&verify_ssl=true|false|/ca.pem]
 *       [&clientcert=PEM[&clientkey=PEM]]
 *
 * Each batch is one POST of the text exposition (worker/publishers/
 * prometheus.h) to http(s)://host:port/path with "Content-type:
 * plain/text" (Ceilometer's header, which the Pushgateway reads as the
 * text format). POST replaces, in the URL's group, the metrics named in
 * the body. An empty batch posts nothing. Events: Ceilometer raises
 * NotImplementedError, so no SL_PUB_F_EVENTS.
 *
 * Status: 2xx OK; 400 (the Pushgateway refuses the body) and other 4xx
 * ERROR; 408/425/429/5xx and transport errors RETRY. Runs on its own
 * thread (SL_PUB_F_THREAD) with one keep-alive connection.
 *
 * This file also holds the HTTP base of prometheus:// and
 * opentelemetryhttp:// (prometheus.h). */
#include "worker/publishers/publisher.h"
#include "worker/publishers/prometheus.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/forward.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "worker/publishers/httpc.h"
#include "worker/publishers/pubjson.h"

/* ---- forward profiles ------------------------------------------------------ */

static const char *
s_field(yajl_val tree, const char *key)
{
    return sl_json_str(sl_json_get(tree, key));
}

const sl_sample_t *
sl_httpbase_forward_view(const struct sl_forward *fwd, const sl_sample_t *s, sl_sample_t *tmp,
                         sl_arena_t *a)
{
    if (!fwd)
        return s;
    char why[160];
    yajl_val t = sl_pubjson_sample_tree(a, s, why, sizeof why);
    if (!t)
        return s;     /* not JSON: the caller's own parsing reports it */
    sl_forward_filter(fwd, 0, t);
    memset(tmp, 0, sizeof *tmp);
    tmp->id = s_field(t, "id");
    tmp->name = s_field(t, "name");
    tmp->type = s_field(t, "type");
    tmp->unit = s_field(t, "unit");
    yajl_val v = sl_json_get(t, "volume");
    tmp->volume_json = v ? sl_json_dump(a, v) : "null";
    tmp->volume = s->volume;
    tmp->user_id = s_field(t, "user_id");
    tmp->project_id = s_field(t, "project_id");
    tmp->resource_id = s_field(t, "resource_id");
    tmp->timestamp = s_field(t, "timestamp");
    v = sl_json_get(t, "resource_metadata");
    tmp->resource_metadata = v ? sl_json_dump(a, v) : "{}";
    tmp->source = s_field(t, "source");
    tmp->message_id = s->message_id;
    v = sl_json_get(t, "monotonic_time");
    tmp->monotonic_time = v && v->type != yajl_t_null ? sl_json_dump(a, v) : NULL;
    return tmp;
}

/* ---- the text exposition ----------------------------------------------------- */

const char *
sl_prometheus_volume_str(sl_arena_t *a, const sl_sample_t *s)
{
    if (!s->volume_json)
        return sl_py_float_repr(a, s->volume);
    char why[64];
    yajl_val v = sl_json_parse(a, s->volume_json, strlen(s->volume_json), 0, why, sizeof why);
    return v ? sl_py_str(a, v) : s->volume_json;
}

/* Ceilometer: name.replace(".", "_"); any other character a metric name
 * cannot hold becomes '_' too (the Pushgateway would refuse the body). */
static void
s_put_name(sl_buf_t *b, const char *name)
{
    if (!name)
        name = "None";
    if (isdigit((unsigned char) name[0]))
        sl_buf_putc(b, '_');
    for (const char *p = name; *p; p++)
        sl_buf_putc(b, isalnum((unsigned char) *p) || *p == '_' || *p == ':' ? *p : '_');
}

static void
s_put_label(sl_buf_t *b, const char *v)
{
    if (!v)
        v = "None";
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            sl_buf_putc(b, '\\');
        if (*p == '\n')
            sl_buf_puts(b, "\\n");
        else
            sl_buf_putc(b, *p);
    }
}

typedef struct {
    const char *key;     /* the series: name{labels} */
    size_t      i;
} s_series_t;

static int
s_series_cmp(const void *x, const void *y)
{
    const s_series_t *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->i > b->i) - (a->i < b->i);
}

size_t
sl_prometheus_text(sl_buf_t *out, const sl_sample_t *samples, size_t n,
                   const struct sl_forward *fwd)
{
    if (!n)
        return 0;
    sl_arena_t a;
    sl_arena_init(&a, 0);
    const sl_sample_t **view = sl_arena_alloc(&a, n * sizeof *view);
    s_series_t *ser = sl_arena_alloc(&a, n * sizeof *ser);
    const char **names = sl_arena_alloc(&a, n * sizeof *names);
    sl_buf_t b = { 0 };
    for (size_t i = 0; i < n; i++) {
        sl_sample_t *tmp = sl_arena_alloc(&a, sizeof *tmp);
        view[i] = sl_httpbase_forward_view(fwd, &samples[i], tmp, &a);
        sl_buf_reset(&b);
        s_put_name(&b, view[i]->name);
        names[i] = sl_arena_strdup(&a, b.p);
        sl_buf_puts(&b, "{resource_id=\"");
        s_put_label(&b, view[i]->resource_id);
        sl_buf_puts(&b, "\", project_id=\"");
        s_put_label(&b, view[i]->project_id);
        sl_buf_puts(&b, "\"}");
        ser[i].key = sl_arena_strdup(&a, b.p);
        ser[i].i = i;
    }
    sl_buf_free(&b);
    /* a series written twice: keep its last sample */
    unsigned char *skip = sl_arena_alloc(&a, n);
    memset(skip, 0, n);
    s_series_t *sorted = sl_arena_alloc(&a, n * sizeof *sorted);
    memcpy(sorted, ser, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, s_series_cmp);
    for (size_t k = 0; k + 1 < n; k++)
        if (strcmp(sorted[k].key, sorted[k + 1].key) == 0)
            skip[sorted[k].i] = 1;
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        const char *type = view[i]->type;
        const char *mt = !type ? NULL : strcmp(type, "cumulative") == 0 ? "counter"
                       : strcmp(type, "gauge") == 0 ? "gauge" : NULL;
        if (mt) {
            /* "# TYPE" once per name in this body */
            int done = 0;
            for (size_t j = 0; j < i && !done; j++)
                done = !skip[j] && strcmp(names[j], names[i]) == 0 && view[j]->type &&
                       (strcmp(view[j]->type, "cumulative") == 0 ||
                        strcmp(view[j]->type, "gauge") == 0);
            if (!done)
                sl_buf_printf(out, "# TYPE %s %s\n", names[i], mt);
        }
        sl_buf_puts(out, ser[i].key);
        sl_buf_putc(out, ' ');
        sl_buf_puts(out, sl_prometheus_volume_str(&a, view[i]));
        sl_buf_putc(out, '\n');
        written++;
    }
    sl_arena_destroy(&a);
    return written;
}

/* ---- the HTTP base ------------------------------------------------------------ */

struct sl_httpbase {
    sl_httpc_t *http;
    char       *target;
    const char *headers[3];
    char       *ctype;
    sl_buf_t    url;
};

/* strutils.bool_from_string(strict=True): 1 true, 0 false, -1 neither. */
static int
s_bool_word(const char *s)
{
    static const char *const t[] = { "1", "t", "true", "on", "y", "yes" };
    static const char *const f[] = { "0", "f", "false", "off", "n", "no" };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        if (strcasecmp(s, t[i]) == 0)
            return 1;
        if (strcasecmp(s, f[i]) == 0)
            return 0;
    }
    return -1;
}

int
sl_httpbase_check_verify(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    if (s_bool_word(text) >= 0 || text[0] == '/')
        return 0;
    return sl_errf(err, errlen, "verify_ssl: '%s' is neither a boolean (true/false) nor the "
                   "absolute path of a CA bundle (e.g. verify_ssl=/etc/ssl/certs/ca.pem)", text);
}

int
sl_httpbase_tls(const char *verify_ssl, const char *clientcert, const char *clientkey,
                int *verify, const char **ca, char *err, size_t errlen)
{
    int v = s_bool_word(verify_ssl ? verify_ssl : "true");
    *ca = v < 0 ? verify_ssl : NULL;
    *verify = v != 0;
    const char *files[] = { *ca, clientcert, clientkey };
    const char *names[] = { "verify_ssl", "clientcert", "clientkey" };
    for (size_t i = 0; i < 3; i++)
        if (files[i] && access(files[i], R_OK) < 0)
            return sl_errf(err, errlen, "%s: cannot read %s (give a readable PEM file)",
                           names[i], files[i]);
    if (clientkey && !clientcert)
        return sl_errf(err, errlen, "clientkey is the key of clientcert: set clientcert too");
    return 0;
}

static void
s_free_secret(char *p)
{
    if (p) {
        memset(p, 0, strlen(p));
        free(p);
    }
}

sl_httpbase_t *
sl_httpbase_new(const char *url, const sl_httpbase_opts_t *o, const char *content_type,
                char *err, size_t errlen)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        sl_errf(err, errlen, "not a URL");
        return NULL;
    }
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *path = auth + alen;
    size_t plen = strcspn(path, "?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *host = at ? at + 1 : auth;
    size_t hlen = (size_t) (auth + alen - host);
    size_t namelen = hlen;
    if (hlen && host[0] == '[') {
        const char *rb = memchr(host, ']', hlen);
        namelen = rb ? (size_t) (rb - host - 1) : 0;
        if (!rb) {
            sl_errf(err, errlen, "the host '%.*s' has no closing ']'", (int) hlen, host);
            return NULL;
        }
        const char *rest = rb + 1;
        if (rest < host + hlen && *rest != ':') {
            sl_errf(err, errlen, "unexpected text after the host '%.*s'", (int) hlen, host);
            return NULL;
        }
    } else {
        const char *c = memchr(host, ':', hlen);
        if (c) {
            namelen = (size_t) (c - host);
            for (const char *p = c + 1; p < host + hlen; p++)
                if (!isdigit((unsigned char) *p) || host + hlen - (c + 1) > 5) {
                    sl_errf(err, errlen, "the port '%.*s' is not a number 0..65535",
                            (int) (host + hlen - c - 1), c + 1);
                    return NULL;
                }
            if (atoi(c + 1) > 65535) {
                sl_errf(err, errlen, "the port '%.*s' is out of range 0..65535",
                        (int) (host + hlen - c - 1), c + 1);
                return NULL;
            }
        }
    }
    if (!namelen) {
        sl_errf(err, errlen, "the hostname of the endpoint is required (e.g. "
                "prometheus://127.0.0.1:9091/metrics/job/ceilometer)");
        return NULL;
    }
    int verify;
    const char *ca;
    if (sl_httpbase_tls(o->verify_ssl, o->clientcert, o->clientkey, &verify, &ca, err,
                        errlen) < 0)
        return NULL;
    char *user = NULL, *password = NULL;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t) (at - auth));
        size_t ul = colon ? (size_t) (colon - auth) : (size_t) (at - auth);
        user = sl_url_unquote(auth, ul, 0);
        password = colon ? sl_url_unquote(colon + 1, (size_t) (at - colon - 1), 0) : sl_xstrdup("");
        if (!*user) {
            free(user);
            s_free_secret(password);
            user = password = NULL;
        }
    }
    sl_httpbase_opts_t defaults = { .timeout = 5 };
    if (!o)
        o = &defaults;
    sl_httpc_opts_t ho = {
        .timeout_ms = (unsigned) (o->timeout * 1000 + 0.5),
        .verify_ssl = verify,
        .ca_file = ca,
        .client_cert = o->clientcert,
        .client_key = o->clientkey,
        .user = user,
        .password = password,
    };
    if (!ho.timeout_ms)
        ho.timeout_ms = 1;
    sl_httpc_t *http = sl_httpc_new(&ho, err, errlen);
    free(user);
    s_free_secret(password);
    if (!http)
        return NULL;
    sl_httpbase_t *h = sl_xcalloc(1, sizeof *h);
    h->http = http;
    sl_buf_t t = { 0 };
    sl_buf_puts(&t, o->ssl ? "https://" : "http://");
    sl_buf_put(&t, host, hlen);
    sl_buf_put(&t, path, plen);
    if (!plen)
        sl_buf_putc(&t, '/');    /* what requests sends for an empty path */
    h->target = t.p;
    size_t cl = strlen(content_type) + 16;
    h->ctype = sl_xmalloc(cl);
    snprintf(h->ctype, cl, "Content-type: %s", content_type);
    h->headers[0] = h->ctype;
    h->headers[1] = "Accept: */*";
    h->headers[2] = NULL;
    return h;
}

const char *
sl_httpbase_target(const sl_httpbase_t *h)
{
    return h->target;
}

sl_pub_status_t
sl_httpbase_post(sl_httpbase_t *h, const char *sub_path, const char *body, size_t len,
                 char *err, size_t errlen)
{
    const char *url = h->target;
    if (sub_path) {
        sl_buf_reset(&h->url);
        sl_buf_puts(&h->url, h->target);
        if (h->url.n && h->url.p[h->url.n - 1] == '/' && sub_path[0] == '/')
            h->url.p[--h->url.n] = '\0';
        sl_buf_puts(&h->url, sub_path);
        url = h->url.p;
    }
    return sl_httpc_send(h->http, "POST", url, h->headers, body, len, err, errlen);
}

void
sl_httpbase_free(sl_httpbase_t **h_p)
{
    sl_httpbase_t *h = *h_p;
    if (!h)
        return;
    sl_httpc_free(&h->http);
    free(h->target);
    free(h->ctype);
    sl_buf_free(&h->url);
    free(h);
    *h_p = NULL;
}

/* ---- the plugin ------------------------------------------------------------- */

typedef struct {
    sl_httpbase_opts_t base;
} s_opts_t;

static const sl_opt_t s_opts[] = {
    SL_HTTPBASE_OPTS,
    { .name = "batch", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .type_text = "boolean",
      .help = "accepted as in Ceilometer's URL, without effect: a batch is always one push" },
    { .name = "raw_only", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .type_text = "boolean",
      .help = "accepted as in Ceilometer's URL, without effect (events only)" },
    { .name = NULL },
};

typedef struct {
    sl_httpbase_t *http;
    sl_buf_t       body;
} s_prom_t;

static void s_destroy(void **ctx_p);

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_prom_t *p = sl_xcalloc(1, sizeof *p);
    void *ctx = p;
    (void) check_only;   /* nothing is opened before the first publish anyway */
    if (!(p->http = sl_httpbase_new(url, &o->base, "plain/text", err, errlen)))
        goto fail;
    return p;
fail:
    s_destroy(&ctx);
    return NULL;
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_prom_t *p = ctx;
    if (b->kind != SL_PUB_SAMPLES)
        return sl_errf(err, errlen, "prometheus publishes samples only (Ceilometer's does not "
                       "publish events)"), SL_PUB_ERROR;
    if (!b->n)
        return SL_PUB_OK;
    sl_buf_reset(&p->body);
    if (!sl_prometheus_text(&p->body, b->samples, b->n, b->forward))
        return SL_PUB_OK;
    return sl_httpbase_post(p->http, NULL, p->body.p, p->body.n, err, errlen);
}

static void
s_destroy(void **ctx_p)
{
    s_prom_t *p = *ctx_p;
    if (!p)
        return;
    sl_httpbase_free(&p->http);
    sl_buf_free(&p->body);
    free(p);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_prometheus = {
    .name = "prometheus",
    .help = "samples pushed to a Prometheus Pushgateway in the text format, as Ceilometer's "
            "prometheus:// (e.g. prometheus://127.0.0.1:9091/metrics/job/ceilometer)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
