/* http:// and https:// publishers — JSON POSTs the way Ceilometer 19's
 * HttpPublisher (ceilometer/publisher/http.py) sends them:
 *
 *   http[s]://[user:password@]host[:port]/path?[timeout=5][&batch=true]
 *       [&verify_ssl=true|false|/path/ca.pem][&clientcert=PEM[&clientkey=PEM]]
 *       [&raw_only=false][&header=Name:value ...][&other=query ...]
 *
 * Each batch is one POST of a JSON list (samples as Sample.as_dict(),
 * events as Event.serialize(), raw_only: the events' raw payloads; see
 * worker/publishers/pubjson.h) with "Content-type: application/json";
 * batch=false posts each record on its own (the record, not the list:
 * Ceilometer's _individual_post posts the whole list once per record, a
 * bug not reproduced). The userinfo becomes HTTP basic auth and leaves the
 * target URL; this publisher's options (and the core's) leave the query,
 * whatever else is in it goes to the target as Python's urlencode(doseq)
 * writes it. A record is filtered by the URL's forward profile before it
 * is written (webhooks).
 *
 * Status: 2xx OK; 408/425/429/5xx and transport errors (refused, reset,
 * timeout) RETRY; any other status ERROR (sl_httpc_classify): the output
 * layer retries, queues, drops and dead-letters by the URL's core options
 * (policy, max_retries, dead_letter: Ceilometer's max_retries is the
 * core's, counted per batch). Runs on its own thread (SL_PUB_F_THREAD)
 * with one keep-alive connection (worker/publishers/httpc.h). */
#include "worker/publishers/publisher.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"
#include "worker/publishers/httpc.h"
#include "worker/publishers/prometheus.h"
#include "worker/publishers/pubjson.h"

typedef struct {
    double   timeout;        /* seconds, as Ceilometer's timeout= */
    unsigned batch;
    char    *verify_ssl;     /* a boolean word, or a CA bundle's path */
    char    *clientcert, *clientkey;
    unsigned raw_only;
    char    *header;         /* the last one; every header= is read from the URL */
} s_opts_t;

typedef struct {
    sl_httpc_t *http;
    char       *target;      /* scheme://host[:port]/path[?query][#fragment] */
    char      **headers;     /* "Name: value", NULL-terminated */
    unsigned    batch, raw_only;
    sl_buf_t    body;
    sl_buf_t    records;     /* one batch's records, back to back */
    size_t     *offs;        /* per record: start, end in records */
    size_t      offs_cap;
} s_http_t;

static void s_destroy(void **ctx_p);

/* ---- options ------------------------------------------------------------- */

/* "Name:value": an HTTP token, a colon, a value without CR/LF. */
static int
s_check_header(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    const char *colon = strchr(text, ':');
    size_t nl = colon ? (size_t) (colon - text) : 0;
    for (size_t i = 0; i < nl; i++)
        if (!isalnum((unsigned char) text[i]) && !strchr("!#$%&'*+-.^_`|~", text[i]))
            nl = 0;
    if (!colon || !nl)
        return sl_errf(err, errlen, "header: '%.60s' is not Name:value (e.g. "
                       "header=X-Api-Key:s3cret; repeat header= for more)", text);
    if (strpbrk(text, "\r\n"))
        return sl_errf(err, errlen, "header: a value may not hold a line break");
    return 0;
}

#define S_OFF(f) offsetof(s_opts_t, f)

static const sl_opt_t s_opts[] = {
    { .name = "timeout", .type = SL_OPT_DOUBLE, .offset = S_OFF(timeout), .def = "5",
      .dmin = 0.001, .dmax = 3600,
      .help = "seconds a POST may take, connection included (Ceilometer's timeout=, in "
              "seconds); then RETRY" },
    { .name = "batch", .type = SL_OPT_BOOL, .offset = S_OFF(batch), .def = "true",
      .help = "true: one POST of a JSON list per batch; false: one POST per record (the "
              "record itself)" },
    { .name = "verify_ssl", .type = SL_OPT_STR, .offset = S_OFF(verify_ssl), .def = "true",
      .check = sl_httpbase_check_verify, .type_text = "true, false or a CA path",
      .help = "https: verify the server's certificate and host name against the system's "
              "CAs (true), not at all (false), or against the CA bundle at this path" },
    { .name = "clientcert", .type = SL_OPT_PATH, .offset = S_OFF(clientcert),
      .help = "PEM client certificate for https (with its key unless clientkey is set)" },
    { .name = "clientkey", .type = SL_OPT_PATH, .offset = S_OFF(clientkey),
      .help = "PEM key of clientcert" },
    { .name = "raw_only", .type = SL_OPT_BOOL, .offset = S_OFF(raw_only), .def = "false",
      .help = "events: post only each event's raw notification payload (needs [event] "
              "store_raw for the event's priority; events without one are left out)" },
    { .name = "header", .type = SL_OPT_STR, .offset = S_OFF(header), .check = s_check_header,
      .type_text = "Name:value (repeatable)",
      .help = "an extra request header, e.g. header=X-Api-Key:s3cret (percent-encode '&' "
              "and '%'); repeat for more" },
    { .name = "*", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .type_text = "any",
      .help = "any other query parameter is passed on to the target URL, as Ceilometer does" },
    { .name = NULL },
};

/* ---- the target URL ------------------------------------------------------ */

/* Python's quote_plus (urlencode's quoting). */
static void
s_quote_plus(sl_buf_t *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (isalnum(*p) || strchr("_.-~", *p))
            sl_buf_putc(b, (char) *p);
        else if (*p == ' ')
            sl_buf_putc(b, '+');
        else
            sl_buf_printf(b, "%%%02X", *p);
    }
}

typedef struct {
    char *key, *val;
} s_pair_t;

/* The query's key=value pairs as parse_qs reads them (blank values
 * dropped), decoded. */
static s_pair_t *
s_query_pairs(const char *query, size_t qlen, size_t *n)
{
    s_pair_t *v = NULL;
    *n = 0;
    for (const char *p = query, *end = query + qlen; p < end;) {
        const char *amp = memchr(p, '&', (size_t) (end - p));
        size_t len = amp ? (size_t) (amp - p) : (size_t) (end - p);
        const char *eq = memchr(p, '=', len);
        if (eq && eq < p + len - 1) {
            v = sl_xrealloc(v, (*n + 1) * sizeof *v);
            v[*n].key = sl_url_unquote(p, (size_t) (eq - p), 1);
            v[*n].val = sl_url_unquote(eq + 1, (size_t) (p + len - eq - 1), 1);
            (*n)++;
        }
        p += len + (amp ? 1 : 0);
    }
    return v;
}

static void
s_pairs_free(s_pair_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].val);
    }
    free(v);
}

/* 1 if key is an option of this publisher or of the core (kept out of the
 * target's query). */
static int
s_ours(const char *key)
{
    if (strcmp(key, "*") == 0)
        return 0;
    return sl_opt_find(s_opts, key) || sl_opt_find(sl_pub_core_opts, key);
}

/* The pass-through query: urlencode(parse_qs(rest), doseq=True), i.e. the
 * remaining keys in order of first appearance, each with all its values. */
static void
s_rest_query(sl_buf_t *b, const s_pair_t *v, size_t n)
{
    unsigned char *done = sl_xcalloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        if (done[i] || s_ours(v[i].key))
            continue;
        for (size_t j = i; j < n; j++) {
            if (done[j] || strcmp(v[j].key, v[i].key) != 0)
                continue;
            done[j] = 1;
            if (b->n)
                sl_buf_putc(b, '&');
            s_quote_plus(b, v[j].key);
            sl_buf_putc(b, '=');
            s_quote_plus(b, v[j].val);
        }
    }
    free(done);
}

/* Splits url into the target (no userinfo, filtered query) and the
 * userinfo's user and password (malloc'd, percent-decoded; NULL without
 * userinfo). Collects every header= into h->headers. */
static int
s_parse_url(s_http_t *h, const char *url, char **user, char **password, char *err,
            size_t errlen)
{
    const char *sep = strstr(url, "://");
    const char *scheme_end = sep;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *frag = strchr(auth, '#');
    const char *q = strchr(auth, '?');
    if (q && frag && frag < q)
        q = NULL;
    const char *path = auth + alen;
    size_t plen = strcspn(path, "?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;     /* the last '@' ends the userinfo, as urlsplit */
    const char *host = at ? at + 1 : auth;
    size_t hlen = (size_t) (auth + alen - host);
    *user = *password = NULL;
    /* host and port: [v6]:port or name:port */
    const char *hend = host + hlen, *port = NULL;
    if (hlen && host[0] == '[') {
        const char *rb = memchr(host, ']', hlen);
        if (!rb)
            return sl_errf(err, errlen, "the host '%.*s' has no closing ']'", (int) hlen, host);
        if (rb + 1 < hend && rb[1] == ':')
            port = rb + 2;
        else if (rb + 1 < hend)
            return sl_errf(err, errlen, "unexpected text after the host '%.*s'", (int) hlen,
                           host);
        if (rb == host + 1)
            hlen = 0;
    } else {
        const char *c = memchr(host, ':', hlen);
        if (c) {
            port = c + 1;
            if (c == host)
                hlen = 0;
        }
    }
    if (!hlen)
        return sl_errf(err, errlen, "the hostname of the endpoint is required (e.g. "
                       "http://collector.example.com:8080/samples)");
    if (port) {
        if (port == hend)
            port = NULL;   /* "host:" = the default port, as urlsplit */
        for (const char *p = port; p && p < hend; p++)
            if (!isdigit((unsigned char) *p))
                return sl_errf(err, errlen, "the port '%.*s' is not a number", (int) (hend - port),
                               port);
        if (port && (hend - port > 5 || atoi(port) > 65535))
            return sl_errf(err, errlen, "the port '%.*s' is out of range 0..65535",
                           (int) (hend - port), port);
    }
    if (at) {
        const char *colon = memchr(auth, ':', (size_t) (at - auth));
        size_t ul = colon ? (size_t) (colon - auth) : (size_t) (at - auth);
        *user = sl_url_unquote(auth, ul, 0);
        *password = colon ? sl_url_unquote(colon + 1, (size_t) (at - colon - 1), 0)
                          : sl_xstrdup("");
        if (!**user) {
            free(*user);
            free(*password);
            *user = *password = NULL;
        }
    }
    sl_buf_t t = { 0 };
    sl_buf_put(&t, url, (size_t) (scheme_end - url));
    sl_buf_puts(&t, "://");
    sl_buf_put(&t, host, (size_t) (auth + alen - host));
    sl_buf_put(&t, path, plen);
    if (!plen)
        sl_buf_putc(&t, '/');     /* what requests sends for an empty path */
    size_t n = 0;
    s_pair_t *pairs = q ? s_query_pairs(q + 1, strcspn(q + 1, "#"), &n) : NULL;
    sl_buf_t rest = { 0 };
    s_rest_query(&rest, pairs, n);
    if (rest.n) {
        sl_buf_putc(&t, '?');
        sl_buf_put(&t, rest.p, rest.n);
    }
    if (frag && frag[1])
        sl_buf_puts(&t, frag);
    sl_buf_free(&rest);
    h->target = t.p;
    /* headers: ours first, then every header= in order */
    size_t nh = 0;
    h->headers = sl_xcalloc(n + 3, sizeof *h->headers);
    h->headers[nh++] = sl_xstrdup("Content-type: application/json");
    h->headers[nh++] = sl_xstrdup("Accept: */*");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(pairs[i].key, "header") != 0)
            continue;
        if ((rc = s_check_header(NULL, pairs[i].val, err, errlen)) < 0)
            break;
        const char *colon = strchr(pairs[i].val, ':');
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t len = strlen(pairs[i].val) + 2;
        char *line = sl_xmalloc(len);
        snprintf(line, len, "%.*s: %s", (int) (colon - pairs[i].val), pairs[i].val, v);
        h->headers[nh++] = line;
    }
    s_pairs_free(pairs, n);
    return rc;
}

/* ---- the plugin ---------------------------------------------------------- */

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_http_t *h = sl_xcalloc(1, sizeof *h);
    void *ctx = h;
    char *user = NULL, *password = NULL;
    if (s_parse_url(h, url, &user, &password, err, errlen) < 0)
        goto fail;
    int verify;
    const char *ca;
    if (sl_httpbase_tls(o->verify_ssl, o->clientcert, o->clientkey, &verify, &ca, err,
                        errlen) < 0)
        goto fail;
    h->batch = o->batch;
    h->raw_only = o->raw_only;
    (void) check_only;   /* nothing is opened before the first publish anyway */
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
    h->http = sl_httpc_new(&ho, err, errlen);
    if (!h->http)
        goto fail;
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    free(user);
    return h;
fail:
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    free(user);
    s_destroy(&ctx);
    return NULL;
}

/* One POST of body; OK, or RETRY/ERROR with the reason. */
static sl_pub_status_t
s_post(s_http_t *h, const char *body, size_t len, char *err, size_t errlen)
{
    return sl_httpc_send(h->http, "POST", h->target, (const char *const *) h->headers, body, len,
                         err, errlen);
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_http_t *h = ctx;
    int events = b->kind == SL_PUB_EVENTS;
    sl_buf_reset(&h->records);
    if (h->offs_cap < 2 * b->n + 2) {
        h->offs_cap = 2 * b->n + 2;
        h->offs = sl_xrealloc(h->offs, h->offs_cap * sizeof *h->offs);
    }
    size_t nrec = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t start = h->records.n;
        int rc;
        if (!events)
            rc = sl_pubjson_sample(&h->records, &b->samples[i], b->forward, err, errlen);
        else if (!b->events[i])
            continue;
        else if (h->raw_only)
            rc = sl_pubjson_event_raw(&h->records, b->events[i], b->forward, err, errlen);
        else
            rc = sl_pubjson_event(&h->records, b->events[i], b->forward, err, errlen);
        if (rc < 0)
            return SL_PUB_ERROR;
        if (rc == 0 && h->raw_only && events)
            continue;      /* no raw payload: Ceilometer leaves the event out */
        h->offs[2 * nrec] = start;
        h->offs[2 * nrec + 1] = h->records.n;
        nrec++;
    }
    if (!nrec)
        return SL_PUB_OK;   /* Ceilometer: "Data set is empty!", nothing posted */
    if (!h->batch) {
        for (size_t r = 0; r < nrec; r++) {
            sl_pub_status_t st = s_post(h, h->records.p + h->offs[2 * r],
                                        h->offs[2 * r + 1] - h->offs[2 * r], err, errlen);
            if (st != SL_PUB_OK)
                return st;
        }
        return SL_PUB_OK;
    }
    sl_buf_reset(&h->body);
    sl_buf_putc(&h->body, '[');
    for (size_t r = 0; r < nrec; r++) {
        if (r)
            sl_buf_puts(&h->body, ", ");
        sl_buf_put(&h->body, h->records.p + h->offs[2 * r], h->offs[2 * r + 1] - h->offs[2 * r]);
    }
    sl_buf_putc(&h->body, ']');
    return s_post(h, h->body.p, h->body.n, err, errlen);
}

static void
s_destroy(void **ctx_p)
{
    s_http_t *h = *ctx_p;
    if (!h)
        return;
    sl_httpc_free(&h->http);
    free(h->target);
    for (size_t i = 0; h->headers && h->headers[i]; i++)
        free(h->headers[i]);
    free(h->headers);
    sl_buf_free(&h->body);
    sl_buf_free(&h->records);
    free(h->offs);
    free(h);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_http = {
    .name = "http",
    .help = "JSON POSTs of samples or events to a web endpoint, as Ceilometer's http:// "
            "(batches as lists; basic auth from the URL; webhooks with forward=)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD | SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};

const sl_pub_plugin_t sl_pub_https = {
    .name = "https",
    .help = "http:// over TLS (verify_ssl, clientcert, clientkey)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD | SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
