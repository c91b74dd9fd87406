/* opentelemetryhttp:// publisher — samples as OTLP/HTTP JSON metrics, the
 * way Ceilometer 2024.1+'s OpentelemetryHttpPublisher sends them
 * (upstream ceilometer/publisher/opentelemetry_http.py; not in Debian's
 * Ceilometer 19, so the reference is that code, not a running one):
 *
 *   opentelemetryhttp://[user:password@]host[:port]/v1/metrics
 *       [?timeout=5][&ssl=false][&verify_ssl=...][&clientcert=...]
 *       [&post=sample|batch][&format=ceilometer|otlp]
 *
 * format=ceilometer (default), byte for byte what Ceilometer posts, one
 * POST per sample with "Content-type: application/json":
 *   {"resource_metrics": [{"scope_metrics": [{"scope": {"name":
 *    "ceilometer", "version": "v1"}, "metrics": [{"name": <meter with '.'
 *    made '_'>, "description": "<meter> unit:<unit>", "unit": <unit>,
 *    "counter"|"gauge": {"data_points": [{"attributes": [{"key":
 *    "resource_id", "value": {"string_value": <id>}}, user_id,
 *    project_id], "start_time_unix_nano": <T>, "time_unix_nano": <T>,
 *    "as_double": <volume as the notification had it>, "flags": 0}]}}]}]}]}
 * with "counter" for cumulative samples and "gauge" for the others, and T
 * = int(time.mktime(parse_isotime(timestamp).timetuple())): whole
 * SECONDS, from the timestamp's wall-clock fields read in the local time
 * zone (UTC on a UTC host), as Ceilometer computes it. A sample whose
 * timestamp does not parse is left out (Ceilometer logs and skips it).
 * Snake_case names are accepted by protobuf JSON parsers, but "counter" is
 * no OTLP field and the times are not nanoseconds: an OpenTelemetry
 * Collector ignores such counters. format=otlp sends what the OTLP
 * specification defines instead: camelCase, "sum" (cumulative: monotonic,
 * aggregationTemporality 2; delta: 1) or "gauge", timeUnixNano as a string
 * of nanoseconds since the epoch in UTC, asDouble a number, null ids left
 * out, and a resource with service.name "ceilometer".
 *
 * post=batch puts a whole batch in one POST (one metric per sample in the
 * one scope's "metrics"), instead of Ceilometer's one POST per sample
 * (batch= and raw_only=, HttpPublisher options Ceilometer's subclass
 * ignores, are accepted and ignored likewise).
 * Status and threading as prometheus:// (worker/publishers/prometheus.h).
 * Events: Ceilometer raises NotImplementedError, so no SL_PUB_F_EVENTS. */
#include "worker/publishers/publisher.h"
#include "worker/publishers/otlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "worker/publishers/notifier.h"
#include "worker/publishers/prometheus.h"
#include "worker/publishers/pubjson.h"

static void
s_jstr(sl_buf_t *b, const char *s)
{
    if (!s)
        sl_buf_puts(b, "null");
    else
        sl_notifier_json_str(b, s, strlen(s));
}

/* The volume as json.dumps writes Python's value. */
static void
s_volume(sl_buf_t *b, const sl_sample_t *s, sl_arena_t *a)
{
    yajl_val v = NULL;
    char why[64];
    if (s->volume_json)
        v = sl_json_parse(a, s->volume_json, strlen(s->volume_json), 0, why, sizeof why);
    if (!v)
        v = sl_py_new_float(a, s->volume);
    sl_pubjson_dumps(b, v, a);
}

int
sl_otlp_metric(sl_buf_t *out, const sl_sample_t *s, int otlp, const sl_py_t *py, char *err,
               size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    int rc = -1;
    size_t start = out->n;
    sl_py_dt_t dt;
    if (!s->timestamp || sl_py_parse_isotime(py, s->timestamp, &dt) < 0) {
        sl_errf(err, errlen, "sample %s: timestamp '%.40s' does not parse (left out, as "
                "Ceilometer does)", s->id ? s->id : "?", s->timestamp ? s->timestamp : "None");
        goto out;
    }
    char tbuf[32];
    if (!otlp) {
        /* time.mktime(dt.timetuple()): the wall clock as local time */
        struct tm tm = { .tm_year = dt.year - 1900, .tm_mon = dt.month - 1, .tm_mday = dt.day,
                         .tm_hour = dt.hour, .tm_min = dt.minute, .tm_sec = dt.second,
                         .tm_isdst = -1 };
        time_t t = mktime(&tm);
        if (t == (time_t) -1 && !(dt.year == 1969 || dt.year == 1970)) {
            sl_errf(err, errlen, "sample %s: timestamp '%.40s' is out of range",
                    s->id ? s->id : "?", s->timestamp);
            goto out;
        }
        snprintf(tbuf, sizeof tbuf, "%lld", (long long) t);
    } else {
        int64_t us = sl_py_dt_utc_us(&dt) - INT64_C(62135596800) * 1000000;
        snprintf(tbuf, sizeof tbuf, "\"%lld000\"", (long long) us);
    }
    const char *type = s->type ? s->type : "";
    int cumulative = strcmp(type, "cumulative") == 0, delta = strcmp(type, "delta") == 0;
    sl_buf_puts(out, "{\"name\": ");
    const char *name = s->name ? s->name : "None";
    char *mangled = sl_arena_strdup(&a, name);
    for (char *p = mangled; *p; p++)
        if (*p == '.')
            *p = '_';
    s_jstr(out, mangled);
    sl_buf_puts(out, ", \"description\": ");
    const char *desc = sl_arena_printf(&a, "%s unit:%s", name, s->unit ? s->unit : "None");
    s_jstr(out, desc);
    sl_buf_puts(out, ", \"unit\": ");
    s_jstr(out, s->unit);
    if (!otlp)
        sl_buf_puts(out, cumulative ? ", \"counter\": {\"data_points\": [{\"attributes\": ["
                                    : ", \"gauge\": {\"data_points\": [{\"attributes\": [");
    else
        sl_buf_puts(out, cumulative || delta ? ", \"sum\": {\"dataPoints\": [{\"attributes\": ["
                                             : ", \"gauge\": {\"dataPoints\": [{\"attributes\": [");
    const char *keys[] = { "resource_id", "user_id", "project_id" };
    const char *vals[] = { s->resource_id, s->user_id, s->project_id };
    int nattr = 0;
    for (size_t i = 0; i < 3; i++) {
        if (otlp && !vals[i])
            continue;
        if (nattr++)
            sl_buf_puts(out, ", ");
        sl_buf_printf(out, "{\"key\": \"%s\", \"value\": {\"%s\": ", keys[i],
                      otlp ? "stringValue" : "string_value");
        s_jstr(out, vals[i]);
        sl_buf_puts(out, "}}");
    }
    if (!otlp) {
        sl_buf_printf(out, "], \"start_time_unix_nano\": %s, \"time_unix_nano\": %s, "
                      "\"as_double\": ", tbuf, tbuf);
        s_volume(out, s, &a);
        sl_buf_puts(out, ", \"flags\": 0}]}}");
    } else {
        double d = s->volume;
        if (s->volume_json) {
            char why[64];
            yajl_val v = sl_json_parse(&a, s->volume_json, strlen(s->volume_json), 0, why,
                                       sizeof why);
            if (v && v->type == yajl_t_string && sl_py_float_str(v->u.string, &d) < 0) {
                sl_errf(err, errlen, "sample %s: volume '%.40s' is not a number",
                        s->id ? s->id : "?", v->u.string);
                out->n = start;
                out->p[start] = '\0';
                goto out;
            }
        }
        sl_buf_printf(out, "], \"startTimeUnixNano\": %s, \"timeUnixNano\": %s, \"asDouble\": ",
                      tbuf, tbuf);
        sl_buf_puts(out, sl_py_float_json(&a, d));
        sl_buf_puts(out, "}]");
        if (cumulative)
            sl_buf_puts(out, ", \"aggregationTemporality\": 2, \"isMonotonic\": true");
        else if (delta)
            sl_buf_puts(out, ", \"aggregationTemporality\": 1, \"isMonotonic\": false");
        sl_buf_puts(out, "}}");
    }
    rc = 0;
out:
    sl_arena_destroy(&a);
    return rc;
}

void
sl_otlp_open(sl_buf_t *out, int otlp)
{
    if (!otlp)
        sl_buf_puts(out, "{\"resource_metrics\": [{\"scope_metrics\": [{\"scope\": {\"name\": "
                         "\"ceilometer\", \"version\": \"v1\"}, \"metrics\": [");
    else
        sl_buf_puts(out, "{\"resourceMetrics\": [{\"resource\": {\"attributes\": [{\"key\": "
                         "\"service.name\", \"value\": {\"stringValue\": \"ceilometer\"}}]}, "
                         "\"scopeMetrics\": [{\"scope\": {\"name\": \"ceilometer\", \"version\": "
                         "\"v1\"}, \"metrics\": [");
}

void
sl_otlp_close(sl_buf_t *out)
{
    sl_buf_puts(out, "]}]}]}");
}

/* ---- the plugin ------------------------------------------------------------- */

typedef struct {
    sl_httpbase_opts_t base;   /* first: SL_HTTPBASE_OPTS */
    unsigned           batch;
    unsigned           format;
} s_opts_t;

static const sl_opt_t s_opts[] = {
    SL_HTTPBASE_OPTS,
    { .name = "post", .type = SL_OPT_ENUM, .offset = offsetof(s_opts_t, batch), .def = "sample",
      .choices = "sample|batch",
      .help = "sample: one POST per sample (Ceilometer); batch: one POST per batch, every "
              "sample a metric of the one scope" },
    { .name = "batch", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .type_text = "boolean",
      .help = "accepted as in Ceilometer's URL, without effect (Ceilometer's "
              "opentelemetryhttp ignores it too: see post=)" },
    { .name = "raw_only", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .type_text = "boolean",
      .help = "accepted as in Ceilometer's URL, without effect (events only)" },
    { .name = "format", .type = SL_OPT_ENUM, .offset = offsetof(s_opts_t, format),
      .def = "ceilometer", .choices = "ceilometer|otlp",
      .help = "ceilometer: exactly Ceilometer's JSON (snake_case, \"counter\", times in "
              "seconds); otlp: the OTLP/JSON specification's (camelCase, sum/gauge, "
              "nanoseconds) for an OpenTelemetry Collector" },
    { .name = NULL },
};

typedef struct {
    sl_httpbase_t *http;
    sl_py_t       *py;
    unsigned       batch, otlp;
    sl_buf_t       body;
    sl_ratelimit_t rl;
    /* one POST per sample: where the retry of a batch that failed part
     * way resumes (same array and count, and the last sample posted still
     * has the id it had), so that posted samples are not posted again */
    const sl_sample_t *resume_ptr;
    size_t         resume_n, resume_i;
    char           resume_id[64];
} s_otlp_t;

static void s_destroy(void **ctx_p);

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_otlp_t *t = sl_xcalloc(1, sizeof *t);
    void *ctx = t;
    (void) check_only;   /* nothing is opened before the first publish anyway */
    t->batch = o->batch;
    t->otlp = o->format == 1;
    if (!(t->py = sl_py_new())) {
        sl_errf(err, errlen, "cannot compile the timestamp patterns");
        goto fail;
    }
    if (!(t->http = sl_httpbase_new(url, &o->base, "application/json", err, errlen)))
        goto fail;
    return t;
fail:
    s_destroy(&ctx);
    return NULL;
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_otlp_t *t = ctx;
    if (b->kind != SL_PUB_SAMPLES)
        return sl_errf(err, errlen, "opentelemetryhttp publishes samples only (Ceilometer's "
                       "does not publish events)"), SL_PUB_ERROR;
    sl_arena_t a;
    sl_arena_init(&a, 0);
    sl_pub_status_t st = SL_PUB_OK;
    size_t in_body = 0;
    char why[256];
    sl_buf_reset(&t->body);
    size_t first = 0;
    if (!t->batch && t->resume_ptr == b->samples && t->resume_n == b->n && t->resume_i &&
        t->resume_i < b->n && b->samples[t->resume_i - 1].id &&
        strncmp(b->samples[t->resume_i - 1].id, t->resume_id, sizeof t->resume_id) == 0)
        first = t->resume_i;
    t->resume_ptr = NULL;
    for (size_t i = first; i < b->n && st == SL_PUB_OK; i++) {
        sl_sample_t tmp;
        const sl_sample_t *s = sl_httpbase_forward_view(b->forward, &b->samples[i], &tmp, &a);
        if (!t->batch || !in_body) {
            sl_buf_reset(&t->body);
            sl_otlp_open(&t->body, (int) t->otlp);
        }
        if (in_body)
            sl_buf_puts(&t->body, ", ");
        size_t mark = t->body.n;
        if (sl_otlp_metric(&t->body, s, (int) t->otlp, t->py, why, sizeof why) < 0) {
            t->body.n = in_body ? mark - 2 : mark;
            t->body.p[t->body.n] = '\0';
            sl_log_limited(&t->rl, SL_LOG_WARN, "opentelemetryhttp publisher %s: %s",
                           sl_httpbase_target(t->http), why);
            continue;
        }
        in_body++;
        if (!t->batch) {
            sl_otlp_close(&t->body);
            st = sl_httpbase_post(t->http, NULL, t->body.p, t->body.n, err, errlen);
            in_body = 0;
            if (st == SL_PUB_RETRY && i > 0) {
                t->resume_ptr = b->samples;
                t->resume_n = b->n;
                t->resume_i = i;
                snprintf(t->resume_id, sizeof t->resume_id, "%s",
                         b->samples[i - 1].id ? b->samples[i - 1].id : "");
            }
        }
    }
    if (st == SL_PUB_OK && t->batch && in_body) {
        sl_otlp_close(&t->body);
        st = sl_httpbase_post(t->http, NULL, t->body.p, t->body.n, err, errlen);
    }
    sl_arena_destroy(&a);
    return st;
}

static void
s_destroy(void **ctx_p)
{
    s_otlp_t *t = *ctx_p;
    if (!t)
        return;
    sl_httpbase_free(&t->http);
    sl_py_destroy(&t->py);
    sl_buf_free(&t->body);
    free(t);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_opentelemetryhttp = {
    .name = "opentelemetryhttp",
    .help = "samples as OTLP/HTTP JSON metrics, as Ceilometer 2024.1's opentelemetryhttp:// "
            "(e.g. opentelemetryhttp://127.0.0.1:4318/v1/metrics)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
