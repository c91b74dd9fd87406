/* zaqar:// publisher — samples and events as messages of a Zaqar queue, the
 * way Ceilometer 19's ZaqarPublisher (ceilometer/publisher/zaqar.py, through
 * python3-zaqarclient's v2 API) posts them:
 *
 *   zaqar://[host:port]/?queue=NAME[&ttl=3600][&endpoint=http://h:8888]
 *       [&project_id=P][&auth_token_file=F][&client_id=UUID][&timeout=10]
 *       [&verify_ssl=true|false|/ca.pem][&max_body_bytes=262144]
 *
 * Each batch is POST <endpoint>/v2/queues/<queue>/messages with body
 * {"messages": [{"body": <record>, "ttl": <ttl>}, ...]} (records as
 * Sample.as_dict() / Event.serialize(): worker/publishers/pubjson.h,
 * filtered by the URL's forward profile), headers "Client-ID: <uuid4 hex>"
 * (random per instance, as zaqarclient) and "content-type:
 * application/json"; X-Project-Id (keystone-less Zaqar needs it; behind
 * Keystone the auth middleware overwrites it) and X-Auth-Token when set.
 * Ceilometer takes the endpoint from Keystone's catalog: sluice needs it in
 * the URL (endpoint= or the URL's host:port, plain http).
 *
 * Zaqar refuses a body over 256 KiB (400): unlike Ceilometer, whose POST
 * then fails, a batch is split into as many POSTs as needed, each under
 * max_body_bytes. A single message larger than that can never be posted:
 * the others are, and the batch then ends in ERROR (dead-lettered whole).
 * A failure part-way retries the whole batch: the parts already posted
 * come again (at least once). Statuses as sl_httpc_classify. */
#include "worker/publishers/publisher.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "worker/publishers/httpc.h"
#include "worker/publishers/pubjson.h"

#define S_ENVELOPE_HEAD "{\"messages\": ["
#define S_ENVELOPE_TAIL "]}"

typedef struct {
    char    *queue;
    unsigned ttl;
    char    *endpoint;
    char    *project_id;
    char    *auth_token_file;
    char    *client_id;
    double   timeout;
    char    *verify_ssl;
    unsigned max_body;
} s_opts_t;

typedef struct {
    sl_httpc_t *http;
    char       *target;          /* <endpoint>/v2/queues/<queue>/messages */
    char       *headers[6];
    unsigned    ttl, max_body;
    sl_buf_t    msgs;            /* the batch's messages, back to back */
    size_t     *offs;
    size_t      offs_cap;
    sl_buf_t    body;
} s_zaqar_t;

static void s_destroy(void **ctx_p);

/* Zaqar's queue names: ^[a-zA-Z0-9_-]{1,64}$ */
static int
s_check_queue(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    size_t n = strlen(text);
    int ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char) text[i]) || text[i] == '_' || text[i] == '-';
    if (!ok)
        return sl_errf(err, errlen, "queue: '%.70s' is not a Zaqar queue name (1 to 64 "
                       "letters, digits, '_' or '-')", text);
    return 0;
}

static int
s_check_endpoint(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    if ((strncmp(text, "http://", 7) == 0 && text[7]) ||
        (strncmp(text, "https://", 8) == 0 && text[8]))
        return 0;
    return sl_errf(err, errlen, "endpoint: '%.70s' is not an http(s) URL (e.g. "
                   "endpoint=http://127.0.0.1:8888)", text);
}

/* a UUID with or without dashes, as Zaqar parses Client-ID */
static int
s_check_client_id(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    size_t hex = 0, n = strlen(text);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (isxdigit((unsigned char) text[i]))
            hex++;
        else if (text[i] != '-')
            ok = 0;
    }
    if (!ok || hex != 32)
        return sl_errf(err, errlen, "client_id: '%.60s' is not a UUID (Zaqar refuses it)", text);
    return 0;
}

static int
s_check_verify(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    static const char *const w[] = { "1", "t", "true", "on", "y", "yes",
                                     "0", "f", "false", "off", "n", "no" };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++)
        if (strcasecmp(text, w[i]) == 0)
            return 0;
    if (text[0] == '/')
        return 0;
    return sl_errf(err, errlen, "verify_ssl: '%s' is neither a boolean nor the absolute path of "
                   "a CA bundle", text);
}

#define S_OFF(f) offsetof(s_opts_t, f)

static const sl_opt_t s_opts[] = {
    { .name = "queue", .type = SL_OPT_STR, .offset = S_OFF(queue), .required = 1,
      .check = s_check_queue,
      .help = "the Zaqar queue (created by the first POST; required, as in Ceilometer)" },
    { .name = "ttl", .type = SL_OPT_UINT, .offset = S_OFF(ttl), .def = "3600", .min = 60,
      .max = 1209600, .help = "seconds each message lives (Zaqar accepts 60..1209600)" },
    { .name = "endpoint", .type = SL_OPT_STR, .offset = S_OFF(endpoint),
      .check = s_check_endpoint,
      .help = "Zaqar's API URL, e.g. http://127.0.0.1:8888 (Ceilometer finds it in Keystone's "
              "catalog); default: http://<the URL's host:port>" },
    { .name = "project_id", .type = SL_OPT_STR, .offset = S_OFF(project_id),
      .help = "sent as X-Project-Id (a Zaqar without Keystone refuses requests without it)" },
    { .name = "auth_token_file", .type = SL_OPT_PATH, .offset = S_OFF(auth_token_file),
      .help = "file holding a Keystone token sent as X-Auth-Token (read when the publisher "
              "starts)" },
    { .name = "client_id", .type = SL_OPT_STR, .offset = S_OFF(client_id),
      .check = s_check_client_id,
      .help = "the Client-ID header; default: a random uuid4 per publisher instance "
              "(zaqarclient's)" },
    { .name = "timeout", .type = SL_OPT_DOUBLE, .offset = S_OFF(timeout), .def = "10",
      .dmin = 0.001, .dmax = 3600, .help = "seconds a POST may take; then RETRY" },
    { .name = "verify_ssl", .type = SL_OPT_STR, .offset = S_OFF(verify_ssl), .def = "true",
      .check = s_check_verify, .type_text = "true, false or a CA path",
      .help = "https endpoints: verify the certificate (true), not (false), or against this "
              "CA bundle" },
    { .name = "max_body_bytes", .type = SL_OPT_UINT, .offset = S_OFF(max_body),
      .def = "262144", .min = 1024, .max = 16777216,
      .help = "largest POST body; bigger batches are split (Zaqar's limit: 262144)" },
    { .name = NULL },
};

static char *
s_read_token(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        sl_errf(err, errlen, "auth_token_file %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && isspace((unsigned char) buf[n - 1]))
        buf[--n] = '\0';
    if (!n || strpbrk(buf, "\r\n")) {
        sl_errf(err, errlen, "auth_token_file %s: %s", path,
                n ? "holds more than one line" : "is empty");
        return NULL;
    }
    size_t len = n + 16;
    char *h = sl_xmalloc(len);
    snprintf(h, len, "X-Auth-Token: %s", buf);
    memset(buf, 0, sizeof buf);
    return h;
}

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_zaqar_t *z = sl_xcalloc(1, sizeof *z);
    void *ctx = z;
    (void) check_only;   /* nothing is opened before the first publish */
    if (!o->queue) {
        sl_errf(err, errlen, "queue= is required (e.g. zaqar://?queue=metering&"
                "endpoint=http://127.0.0.1:8888)");
        goto fail;
    }
    const char *hp = strstr(url, "://");
    hp = hp ? hp + 3 : url;
    size_t hl = strcspn(hp, "/?#");
    sl_buf_t t = { 0 };
    if (o->endpoint) {
        size_t el = strlen(o->endpoint);
        while (el && o->endpoint[el - 1] == '/')
            el--;
        sl_buf_put(&t, o->endpoint, el);
    } else if (hl) {
        sl_buf_printf(&t, "http://%.*s", (int) hl, hp);
    } else {
        sl_errf(err, errlen, "needs Zaqar's endpoint: endpoint=http://HOST:PORT or "
                "zaqar://HOST:PORT/?queue=... (Ceilometer finds it in Keystone's catalog)");
        goto fail;
    }
    sl_buf_printf(&t, "/v2/queues/%s/messages", o->queue);
    z->target = t.p;
    char cid[37], hex[33] = "";
    if (!o->client_id) {
        sl_sample_uuid4(cid);
        size_t k = 0;
        for (const char *p = cid; *p; p++)
            if (*p != '-')
                hex[k++] = *p;
        hex[k] = '\0';
    }
    size_t nh = 0;
    char line[512];
    snprintf(line, sizeof line, "Client-ID: %s", o->client_id ? o->client_id : hex);
    z->headers[nh++] = sl_xstrdup(line);
    z->headers[nh++] = sl_xstrdup("content-type: application/json");
    z->headers[nh++] = sl_xstrdup("Accept: */*");
    if (o->project_id) {
        if (strpbrk(o->project_id, "\r\n")) {
            sl_errf(err, errlen, "project_id may not hold a line break");
            goto fail;
        }
        snprintf(line, sizeof line, "X-Project-Id: %.400s", o->project_id);
        z->headers[nh++] = sl_xstrdup(line);
    }
    if (o->auth_token_file &&
        !(z->headers[nh++] = s_read_token(o->auth_token_file, err, errlen)))
        goto fail;
    z->ttl = o->ttl;
    z->max_body = o->max_body;
    const char *v = o->verify_ssl ? o->verify_ssl : "true";
    int verify = strcasecmp(v, "0") && strcasecmp(v, "f") && strcasecmp(v, "false") &&
                 strcasecmp(v, "off") && strcasecmp(v, "n") && strcasecmp(v, "no");
    const char *ca = v[0] == '/' ? v : NULL;
    if (ca && access(ca, R_OK) < 0) {
        sl_errf(err, errlen, "verify_ssl: cannot read %s", ca);
        goto fail;
    }
    sl_httpc_opts_t ho = {
        .timeout_ms = (unsigned) (o->timeout * 1000 + 0.5),
        .verify_ssl = verify,
        .ca_file = ca,
    };
    if (!ho.timeout_ms)
        ho.timeout_ms = 1;
    if (!(z->http = sl_httpc_new(&ho, err, errlen)))
        goto fail;
    return z;
fail:
    s_destroy(&ctx);
    return NULL;
}

static sl_pub_status_t
s_post(s_zaqar_t *z, char *err, size_t errlen)
{
    return sl_httpc_send(z->http, "POST", z->target, (const char *const *) z->headers, z->body.p,
                         z->body.n, err, errlen);
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_zaqar_t *z = ctx;
    int events = b->kind == SL_PUB_EVENTS;
    sl_buf_reset(&z->msgs);
    if (z->offs_cap < 2 * b->n + 2) {
        z->offs_cap = 2 * b->n + 2;
        z->offs = sl_xrealloc(z->offs, z->offs_cap * sizeof *z->offs);
    }
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (events && !b->events[i])
            continue;
        size_t start = z->msgs.n;
        sl_buf_puts(&z->msgs, "{\"body\": ");
        int rc = events ? sl_pubjson_event(&z->msgs, b->events[i], b->forward, err, errlen)
                        : sl_pubjson_sample(&z->msgs, &b->samples[i], b->forward, err, errlen);
        if (rc < 0)
            return SL_PUB_ERROR;
        sl_buf_printf(&z->msgs, ", \"ttl\": %u}", z->ttl);
        z->offs[2 * n] = start;
        z->offs[2 * n + 1] = z->msgs.n;
        n++;
    }
    const size_t frame = strlen(S_ENVELOPE_HEAD) + strlen(S_ENVELOPE_TAIL);
    size_t too_big = 0, first_big = 0;
    for (size_t i = 0; i < n;) {
        sl_buf_reset(&z->body);
        sl_buf_puts(&z->body, S_ENVELOPE_HEAD);
        size_t k = 0;
        for (; i < n; i++) {
            size_t len = z->offs[2 * i + 1] - z->offs[2 * i];
            if (frame + len > z->max_body) {
                if (!too_big++)
                    first_big = len;
                continue;
            }
            if (z->body.n + (k ? 2 : 0) + len + strlen(S_ENVELOPE_TAIL) > z->max_body)
                break;
            if (k++)
                sl_buf_puts(&z->body, ", ");
            sl_buf_put(&z->body, z->msgs.p + z->offs[2 * i], len);
        }
        if (!k)
            continue;
        sl_buf_puts(&z->body, S_ENVELOPE_TAIL);
        sl_pub_status_t st = s_post(z, err, errlen);
        if (st != SL_PUB_OK)
            return st;
    }
    if (too_big) {
        sl_errf(err, errlen, "%zu of %zu messages are larger than max_body_bytes (%u; the first "
                "is %zu bytes with its envelope): Zaqar would refuse them; the others were "
                "posted", too_big, n, z->max_body, first_big + frame);
        return SL_PUB_ERROR;
    }
    return SL_PUB_OK;
}

static void
s_destroy(void **ctx_p)
{
    s_zaqar_t *z = *ctx_p;
    if (!z)
        return;
    sl_httpc_free(&z->http);
    free(z->target);
    for (size_t i = 0; i < sizeof z->headers / sizeof *z->headers; i++) {
        if (z->headers[i])
            memset(z->headers[i], 0, strlen(z->headers[i]));   /* may hold the token */
        free(z->headers[i]);
    }
    sl_buf_free(&z->msgs);
    sl_buf_free(&z->body);
    free(z->offs);
    free(z);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_zaqar = {
    .name = "zaqar",
    .help = "samples or events as messages of a Zaqar queue, as Ceilometer's zaqar:// "
            "(one POST per batch, split under Zaqar's 256 KiB limit)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD | SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
