/* notifier:// publisher — samples and events back onto the bus as oslo
 * notifications, the way Ceilometer 19's NotifierPublisher sends them
 * (ceilometer/publisher/messaging.py over oslo.messaging's rabbit driver):
 *
 *   notifier://[user:pass@host:port[,user:pass@host2:port2]/vhost]?topic=T
 *       [&topic=T2][&per_meter_topic=1][&driver=rabbit]
 *       [&telemetry_driver=messagingv2|messaging|noop] ...
 *
 * The URL's host part becomes the transport URL rabbit://NETLOC/PATH (as
 * Ceilometer builds it); without one, the process-wide default
 * (sl_publisher_notifier_set_transport_url) or an error. Each batch becomes
 * one notification per topic (Ceilometer's publish_samples/publish_events:
 * the whole batch is one payload list), plus with per_meter_topic one per
 * meter name (event_type metering.<name>, the same routing key), routed
 * with key <topic>.sample on the topic exchange `exchange` (ceilometer).
 * Message construction: worker/publishers/notifier.h.
 *
 * Delivery: runs on its own thread (SL_PUB_F_THREAD). One connection per
 * instance, opened on the first publish and after any failure (hosts of
 * the fail-over list in turn, starting after the one that failed), with
 * publisher confirms: a batch is OK only when the broker acked every
 * message of it. A nack, a basic.return (published mandatory: unroutable),
 * a channel or connection error or no confirmation within `timeout` is
 * RETRY with the reason; the output layer retries the whole batch, so a
 * consumer may see a notification twice (at least once, as oslo). Like
 * oslo's notify_send, the exchange and a queue named after the routing key
 * bound to it are declared once per connection, so that notifications
 * wait for a listener that does not exist yet. */
#include "worker/publishers/publisher.h"
#include "worker/publishers/notifier.h"
#include "worker/publishers/pubjson.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <amqp.h>
#include <amqp_framing.h>

#include "common/amqp.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "common/stats.h"

/* ---- JSON the way Python's json.dumps writes it -------------------------- */

/* The code point of the UTF-8 sequence at *p (advanced), or -1 for a byte
 * that does not start a valid sequence (then *p moves one byte). */
static long
s_utf8_next(const unsigned char **p, const unsigned char *end)
{
    const unsigned char *s = *p;
    unsigned c = s[0];
    int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (n == 0) {
        *p = s + 1;
        return c;
    }
    if (n < 0 || end - s <= n) {
        *p = s + 1;
        return -1;
    }
    long cp = c & (0x3f >> n);
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *p = s + 1;
            return -1;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    static const long min[] = { 0, 0x80, 0x800, 0x10000 };
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        *p = s + 1;
        return -1;
    }
    *p = s + n + 1;
    return cp;
}

void
sl_notifier_json_str(sl_buf_t *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s, *end = p + n;
    char esc[16];
    sl_buf_putc(out, '"');
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            sl_buf_put(out, run, (size_t) (p - run));
        if (p >= end)
            break;
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            sl_buf_put(out, esc, 2);
            p++;
            continue;
        }
        const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (named) {
            sl_buf_puts(out, named);
            p++;
            continue;
        }
        long cp = s_utf8_next(&p, end);
        if (cp < 0)
            cp = 0xfffd;   /* not UTF-8: what Python's decode(errors='replace') would hold */
        if (cp >= 0x10000) {
            cp -= 0x10000;
            snprintf(esc, sizeof esc, "\\u%04lx\\u%04lx", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else {
            snprintf(esc, sizeof esc, "\\u%04lx", cp);
        }
        sl_buf_puts(out, esc);
    }
    sl_buf_putc(out, '"');
}

static double
s_num_double(yajl_val v)
{
    if (v->u.number.r)
        return strtod(v->u.number.r, NULL);   /* 1e400 -> inf, as float() */
    return (v->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ? v->u.number.d
                                                          : (double) v->u.number.i;
}

/* str() of a number as Python prints it: an int's canonical digits, a
 * float's repr (json.dumps is sl_pubjson_dumps). */
static void
s_put_number(sl_buf_t *out, yajl_val v, sl_arena_t *a)
{
    if (sl_py_is_float(v)) {
        double d = s_num_double(v);
        sl_buf_puts(out, sl_py_float_repr(a, d));
    } else if (v->u.number.r) {
        sl_buf_puts(out, strcmp(v->u.number.r, "-0") == 0 ? "0" : v->u.number.r);
    } else {
        sl_buf_printf(out, "%lld", v->u.number.i);
    }
}

/* ---- Ceilometer's compute_signature -------------------------------------- */

/* repr() of a bytes object holding s (decode_unicode turns the strings of
 * a list into bytes before str() of the list is taken). */
static void
s_put_bytes_repr(sl_buf_t *out, const char *s)
{
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    sl_buf_putc(out, 'b');
    sl_buf_putc(out, q);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        unsigned c = *p;
        if (c == (unsigned char) q || c == '\\') {
            sl_buf_putc(out, '\\');
            sl_buf_putc(out, (char) c);
        } else if (c == '\t') {
            sl_buf_puts(out, "\\t");
        } else if (c == '\n') {
            sl_buf_puts(out, "\\n");
        } else if (c == '\r') {
            sl_buf_puts(out, "\\r");
        } else if (c < 0x20 || c >= 0x7f) {
            sl_buf_printf(out, "\\x%02x", c);
        } else {
            sl_buf_putc(out, (char) c);
        }
    }
    sl_buf_putc(out, q);
}

static int
s_key_cmp(const void *a, const void *b, void *obj)
{
    const char **keys = ((yajl_val) obj)->u.object.keys;
    return strcmp(keys[*(const size_t *) a], keys[*(const size_t *) b]);
}

/* The indexes of obj's keys in sorted order (Python's sorted(d.items());
 * keys are unique: sl_json_parse keeps one of duplicates), in a. */
static size_t *
s_sorted(yajl_val obj, sl_arena_t *a)
{
    size_t n = obj->u.object.len;
    size_t *idx = sl_arena_alloc(a, (n + 1) * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, n, sizeof *idx, s_key_cmp, obj);
    return idx;
}

/* str(decode_unicode(v)): strings become bytes, dicts get sorted keys. */
static void
s_put_decoded_repr(sl_buf_t *out, yajl_val v, sl_arena_t *a)
{
    if (!v) {
        sl_buf_puts(out, "None");
        return;
    }
    switch (v->type) {
    case yajl_t_string:
        s_put_bytes_repr(out, v->u.string);
        return;
    case yajl_t_number:
        s_put_number(out, v, a);
        return;
    case yajl_t_true:
        sl_buf_puts(out, "True");
        return;
    case yajl_t_false:
        sl_buf_puts(out, "False");
        return;
    case yajl_t_array:
        sl_buf_putc(out, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                sl_buf_puts(out, ", ");
            s_put_decoded_repr(out, v->u.array.values[i], a);
        }
        sl_buf_putc(out, ']');
        return;
    case yajl_t_object: {
        size_t *idx = s_sorted(v, a);
        sl_buf_putc(out, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                sl_buf_puts(out, ", ");
            s_put_bytes_repr(out, v->u.object.keys[idx[i]]);
            sl_buf_puts(out, ": ");
            s_put_decoded_repr(out, v->u.object.values[idx[i]], a);
        }
        sl_buf_putc(out, '}');
        return;
    }
    default:
        sl_buf_puts(out, "None");
        return;
    }
}

/* recursive_keypairs(obj) written as name, str(value), name, str(value)...
 * (what compute_signature feeds the HMAC), message_signature left out at
 * the top. */
static void
s_keypairs(sl_buf_t *out, const char *prefix, yajl_val obj, sl_arena_t *a)
{
    size_t *idx = s_sorted(obj, a);
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[idx[i]];
        yajl_val v = obj->u.object.values[idx[i]];
        if (!*prefix && strcmp(key, "message_signature") == 0)
            continue;
        if (v && v->type == yajl_t_object) {
            const char *sub = sl_arena_printf(a, "%s%s:", prefix, key);
            s_keypairs(out, sub, v, a);
            continue;
        }
        sl_buf_puts(out, prefix);
        sl_buf_puts(out, key);
        if (v && v->type == yajl_t_array)
            s_put_decoded_repr(out, v, a);
        else if (v && v->type == yajl_t_string)
            sl_buf_puts(out, v->u.string);
        else
            s_put_decoded_repr(out, v, a);   /* numbers, True, None: their str() */
    }
}

const char *
sl_notifier_signature(yajl_val obj, const char *secret, size_t secret_len, sl_arena_t *a)
{
    if (!secret || !secret_len)
        return "";
    sl_buf_t b = { 0 };
    s_keypairs(&b, "", obj, a);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    HMAC(EVP_sha256(), secret, (int) secret_len, (const unsigned char *) (b.p ? b.p : ""), b.n,
         md, &mdlen);
    sl_buf_free(&b);
    char *hex = sl_arena_alloc(a, 2 * mdlen + 1);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * mdlen] = '\0';
    return hex;
}

/* ---- messages ------------------------------------------------------------ */

/* Signs msg (its last field is message_signature, a placeholder) and
 * appends it as JSON. */
static void
s_sign_and_put(sl_buf_t *out, yajl_val msg, const char *secret, size_t secret_len,
               sl_arena_t *a)
{
    size_t last = msg->u.object.len - 1;
    msg->u.object.values[last] = sl_pubjson_str(a, sl_notifier_signature(msg, secret, secret_len, a));
    sl_pubjson_dumps(out, msg, a);
}

int
sl_notifier_meter_message(sl_buf_t *out, const sl_sample_t *s, const char *secret,
                          size_t secret_len, char *err, size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    int rc = -1;
    char why[160];
    yajl_val volume, meta, mono = NULL;
    if (s->volume_json) {
        volume = sl_json_parse(&a, s->volume_json, strlen(s->volume_json), 0, why, sizeof why);
        if (!volume) {
            sl_errf(err, errlen, "sample %s: volume %.40s is not JSON: %s", s->id ? s->id : "?",
                    s->volume_json, why);
            goto out;
        }
    } else {
        volume = sl_py_new_float(&a, s->volume);
    }
    const char *mt = s->resource_metadata ? s->resource_metadata : "{}";
    meta = sl_json_parse(&a, mt, strlen(mt), 0, why, sizeof why);
    if (!meta) {
        sl_errf(err, errlen, "sample %s: resource_metadata is not JSON: %s", s->id ? s->id : "?",
                why);
        goto out;
    }
    if (s->monotonic_time &&
        !(mono = sl_json_parse(&a, s->monotonic_time, strlen(s->monotonic_time), 0, why,
                               sizeof why))) {
        sl_errf(err, errlen, "sample %s: monotonic_time is not JSON: %s", s->id ? s->id : "?", why);
        goto out;
    }
    static const char *const keys[] = {
        "source", "counter_name", "counter_type", "counter_unit", "counter_volume", "user_id",
        "project_id", "resource_id", "timestamp", "resource_metadata", "message_id",
        "monotonic_time", "message_signature",
    };
    yajl_val vals[] = {
        sl_pubjson_str(&a, s->source), sl_pubjson_str(&a, s->name), sl_pubjson_str(&a, s->type), sl_pubjson_str(&a, s->unit), volume,
        sl_pubjson_str(&a, s->user_id), sl_pubjson_str(&a, s->project_id), sl_pubjson_str(&a, s->resource_id),
        sl_pubjson_str(&a, s->timestamp), meta, sl_pubjson_str(&a, s->id), mono, NULL,
    };
    s_sign_and_put(out, sl_pubjson_object(&a, keys, vals, sizeof keys / sizeof *keys), secret, secret_len,
                   &a);
    rc = 0;
out:
    sl_arena_destroy(&a);
    return rc;
}

int
sl_notifier_event_message(sl_buf_t *out, const char *event_json, const char *secret,
                          size_t secret_len, char *err, size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    char why[160];
    int rc = -1;
    yajl_val ev = sl_json_parse(&a, event_json, strlen(event_json), 0, why, sizeof why);
    if (!ev || ev->type != yajl_t_object) {
        sl_errf(err, errlen, "event is not a JSON object: %s", ev ? "another type" : why);
        goto out;
    }
    yajl_val traits = sl_json_get(ev, "traits"), raw = sl_json_get(ev, "raw");
    if (traits && traits->type != yajl_t_array) {
        sl_errf(err, errlen, "event %.40s: traits is not a list",
                sl_json_str(sl_json_get(ev, "message_id")) ? sl_json_str(sl_json_get(ev, "message_id")) : "?");
        goto out;
    }
    static const char *const keys[] = {
        "message_id", "event_type", "generated", "traits", "raw", "message_signature",
    };
    yajl_val vals[] = {
        sl_json_get(ev, "message_id"), sl_json_get(ev, "event_type"), sl_json_get(ev, "generated"),
        traits ? traits : sl_pubjson_node(&a, yajl_t_array),
        raw ? raw : sl_pubjson_object(&a, NULL, NULL, 0), NULL,
    };
    s_sign_and_put(out, sl_pubjson_object(&a, keys, vals, sizeof keys / sizeof *keys), secret, secret_len,
                   &a);
    rc = 0;
out:
    sl_arena_destroy(&a);
    return rc;
}

void
sl_notifier_body(sl_buf_t *out, const sl_notifier_msg_t *m, const char *payload,
                 size_t payload_len, int v2)
{
    sl_buf_t msg = { 0 };
    sl_buf_t *b = v2 ? &msg : out;
    static const char *const keys[] = { "message_id", "publisher_id", "event_type", "priority" };
    const char *vals[] = { m->message_id, m->publisher_id, m->event_type, m->priority };
    sl_buf_putc(b, '{');
    for (size_t i = 0; i < 4; i++) {
        sl_buf_printf(b, "\"%s\": ", keys[i]);
        sl_notifier_json_str(b, vals[i], strlen(vals[i]));
        sl_buf_puts(b, ", ");
    }
    sl_buf_puts(b, "\"payload\": ");
    sl_buf_put(b, payload, payload_len);
    sl_buf_puts(b, ", \"timestamp\": ");
    sl_notifier_json_str(b, m->timestamp, strlen(m->timestamp));
    sl_buf_puts(b, ", \"_unique_id\": ");
    sl_notifier_json_str(b, m->unique_id, strlen(m->unique_id));
    sl_buf_putc(b, '}');
    if (v2) {
        sl_buf_puts(out, "{\"oslo.version\": \"2.0\", \"oslo.message\": ");
        sl_notifier_json_str(out, msg.p, msg.n);
        sl_buf_putc(out, '}');
        sl_buf_free(&msg);
    }
}

void
sl_notifier_timestamp(char out[32], long long sec, long nsec)
{
    time_t t = (time_t) sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    long us = nsec / 1000;
    int n = (int) strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
    if (us)
        snprintf(out + n, (size_t) (32 - n), ".%06ld", us);
}

static char *s_default_transport_url;

void
sl_publisher_notifier_set_transport_url(const char *url)
{
    free(s_default_transport_url);
    s_default_transport_url = url && *url ? sl_xstrdup(url) : NULL;
}

char *
sl_publisher_notifier_transport_url(void)
{
    return s_default_transport_url ? sl_xstrdup(s_default_transport_url) : NULL;
}

char *
sl_notifier_transport_url(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t end = strcspn(p, "?#");
    size_t netloc = strcspn(p, "/?#");
    if (netloc == 0)
        return NULL;
    size_t n = strlen("rabbit://") + end + 1;
    char *t = sl_xmalloc(n);
    snprintf(t, n, "rabbit://%.*s", (int) end, p);
    return t;
}

/* ---- the plugin ---------------------------------------------------------- */

enum { S_DRV_V2 = 0, S_DRV_V1, S_DRV_NOOP };

typedef struct {
    char    *topic;
    char    *driver;
    unsigned telemetry_driver;
    unsigned per_meter_topic;
    unsigned ssl;
    char    *ssl_ca_file, *ssl_cert_file, *ssl_key_file;
    unsigned amqp_durable_queues, amqp_auto_delete;
    char    *exchange;
    char    *telemetry_secret_file;
    unsigned timeout_ms;
} s_opts_t;

static int
s_check_driver(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    if (strcmp(text, "rabbit") == 0 || strcmp(text, "kombu") == 0)
        return 0;
    if (strcmp(text, "messagingv2") == 0 || strcmp(text, "messaging") == 0 ||
        strcmp(text, "noop") == 0)
        return sl_errf(err, errlen, "driver=%s: in Ceilometer's notifier:// URL, driver is the "
                       "transport (the scheme of the transport URL, rabbit); the notification "
                       "format is telemetry_driver=%s", text, text);
    return sl_errf(err, errlen, "driver=%s is not supported: sluice speaks RabbitMQ's AMQP "
                   "0-9-1 only (driver=rabbit, the default)", text);
}

static int
s_check_topic(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    if (strlen(text) > 200)
        return sl_errf(err, errlen, "topic '%.40s...' is too long (AMQP routing keys are at most "
                       "255 bytes with '.sample')", text);
    return 0;
}

#define S_OFF(f) offsetof(s_opts_t, f)

static const sl_opt_t s_opts[] = {
    { .name = "topic", .type = SL_OPT_STR, .offset = S_OFF(topic), .check = s_check_topic,
      .type_text = "string (repeatable)",
      .help = "notification topic: messages go to routing key <topic>.sample; several topic= "
              "send to each (default: metering for samples, event for events)" },
    { .name = "per_meter_topic", .type = SL_OPT_UINT, .offset = S_OFF(per_meter_topic),
      .def = "0", .type_text = "0 or 1",
      .help = "non-zero: besides the batch, one notification per meter name with event_type "
              "metering.<name> (as Ceilometer)" },
    { .name = "driver", .type = SL_OPT_STR, .offset = S_OFF(driver), .def = "rabbit",
      .check = s_check_driver, .type_text = "rabbit",
      .help = "transport of the URL's host part (Ceilometer: the transport URL's scheme); "
              "only rabbit (kombu) is supported" },
    { .name = "telemetry_driver", .type = SL_OPT_ENUM, .offset = S_OFF(telemetry_driver),
      .def = "messagingv2", .choices = "messagingv2|messaging|noop",
      .help = "Ceilometer's [publisher_notifier] telemetry_driver: messagingv2 = oslo's 2.0 "
              "envelope, messaging = the bare message (1.0), noop = publish nothing" },
    { .name = "exchange", .type = SL_OPT_STR, .offset = S_OFF(exchange), .def = "ceilometer",
      .help = "topic exchange (Ceilometer's control_exchange)" },
    { .name = "amqp_durable_queues", .type = SL_OPT_BOOL, .offset = S_OFF(amqp_durable_queues),
      .def = "false",
      .help = "declare the exchange and the queue durable (oslo's option of that name; it "
              "must match how they already exist on the broker)" },
    { .name = "amqp_auto_delete", .type = SL_OPT_BOOL, .offset = S_OFF(amqp_auto_delete),
      .def = "false", .help = "declare the exchange and the queue auto-delete (oslo's option)" },
    { .name = "ssl", .type = SL_OPT_BOOL, .offset = S_OFF(ssl), .def = "false",
      .help = "TLS to the URL's hosts (oslo's ssl; default port 5671)" },
    { .name = "ssl_ca_file", .type = SL_OPT_PATH, .offset = S_OFF(ssl_ca_file),
      .help = "CA bundle that signed the broker's certificate; when set, the certificate and "
              "host name are verified (as oslo)" },
    { .name = "ssl_cert_file", .type = SL_OPT_PATH, .offset = S_OFF(ssl_cert_file),
      .help = "TLS client certificate (with ssl_key_file)" },
    { .name = "ssl_key_file", .type = SL_OPT_PATH, .offset = S_OFF(ssl_key_file),
      .help = "TLS client key (with ssl_cert_file)" },
    { .name = "telemetry_secret_file", .type = SL_OPT_PATH,
      .offset = S_OFF(telemetry_secret_file),
      .help = "file holding Ceilometer's telemetry_secret that signs each message "
              "(message_signature; an empty file = unsigned); default: Ceilometer's default "
              "secret 'change this for valid signing'" },
    { .name = "timeout", .type = SL_OPT_MS, .offset = S_OFF(timeout_ms), .def = "10s",
      .min = 100, .max = 600000,
      .help = "bound on connecting, each declaration and waiting for the broker's "
              "confirmations of a batch (then RETRY, and a new connection)" },
    { .name = "max_retry", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .type_text = "number",
      .help = "accepted as in Ceilometer's URL; retries are the core's (max_retries)" },
    { .name = NULL },
};

typedef struct {
    sl_amqp_url_t url;
    char        **topics;     /* n_topics; none: by batch kind */
    size_t        n_topics;
    unsigned      format;     /* S_DRV_* */
    unsigned      per_meter;
    unsigned      durable, auto_delete;
    char         *exchange;
    char         *secret;
    size_t        secret_len;
    char         *ca_file, *cert_file, *key_file;
    unsigned      timeout_ms;
    char          publisher_id[300];
    char          conn_name[64];
    /* the connection: publish thread only */
    amqp_connection_state_t conn;
    size_t        host;          /* tried first at the next connect */
    int           exchange_declared;
    char        **declared;      /* routing keys whose queue is declared and bound */
    size_t        n_declared;
    uint64_t      next_tag;      /* delivery tag of the next publish */
    /* scratch */
    sl_buf_t      records, payload, body;
    size_t       *offs;          /* per record: start in records, then end */
    size_t        offs_cap;
    unsigned char *acked;
    size_t        acked_cap;
} s_notifier_t;

static void s_destroy(void **ctx_p);

/* Every topic= of the query, in order (Ceilometer: options.pop('topic')
 * is parse_qs's list; blank values are dropped as parse_qs does). */
static void
s_collect_topics(s_notifier_t *n, const char *url)
{
    const char *q = strchr(url, '?');
    if (!q)
        return;
    for (const char *p = q + 1; *p;) {
        size_t len = strcspn(p, "&#");
        const char *eq = memchr(p, '=', len);
        if (eq && eq < p + len - 1) {
            char *key = sl_url_unquote(p, (size_t) (eq - p), 1);
            if (strcmp(key, "topic") == 0) {
                n->topics = sl_xrealloc(n->topics, (n->n_topics + 1) * sizeof *n->topics);
                n->topics[n->n_topics++] = sl_url_unquote(eq + 1, (size_t) (p + len - eq - 1), 1);
            }
            free(key);
        }
        if (p[len] != '&')
            break;
        p += len + 1;
    }
}

static char *
s_read_secret(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        sl_errf(err, errlen, "telemetry_secret_file %s: %s", path, strerror(errno));
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

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_notifier_t *n = sl_xcalloc(1, sizeof *n);
    void *ctx = n;
    char *turl = sl_notifier_transport_url(url);
    if (!turl && !s_default_transport_url) {
        sl_errf(err, errlen, "needs the broker in the URL, e.g. notifier://guest:guest@127.0.0.1"
                ":5672/?topic=event or set transport_url in sluice.yaml (Ceilometer's "
                "default transport_url)");
        goto fail;
    }
    if (turl && o->ssl) {
        size_t len = strlen(turl) + 8;
        turl = sl_xrealloc(turl, len);
        strcat(turl, strchr(turl + 9, '?') ? "&ssl=1" : "?ssl=1");
    }
    if (sl_amqp_url_parse(turl ? turl : s_default_transport_url, &n->url, err, errlen) < 0) {
        free(turl);
        goto fail;
    }
    free(turl);
    if (!!o->ssl_cert_file != !!o->ssl_key_file) {
        sl_errf(err, errlen, "ssl_cert_file and ssl_key_file go together (a client certificate "
                "and its key)");
        goto fail;
    }
    s_collect_topics(n, url);
    for (size_t i = 0; i < n->n_topics; i++)
        if (s_check_topic(NULL, n->topics[i], err, errlen) < 0)
            goto fail;
    if (o->exchange && strlen(o->exchange) > 255) {
        sl_errf(err, errlen, "exchange '%.40s...' is too long (AMQP names are at most 255 bytes)",
                o->exchange);
        goto fail;
    }
    n->format = o->telemetry_driver;
    n->per_meter = o->per_meter_topic != 0;
    n->durable = o->amqp_durable_queues;
    n->auto_delete = o->amqp_auto_delete;
    n->exchange = sl_xstrdup(o->exchange ? o->exchange : "ceilometer");
    n->timeout_ms = o->timeout_ms ? o->timeout_ms : 10000;
    n->ca_file = o->ssl_ca_file ? sl_xstrdup(o->ssl_ca_file) : NULL;
    n->cert_file = o->ssl_cert_file ? sl_xstrdup(o->ssl_cert_file) : NULL;
    n->key_file = o->ssl_key_file ? sl_xstrdup(o->ssl_key_file) : NULL;
    if (o->telemetry_secret_file) {
        if (!(n->secret = s_read_secret(o->telemetry_secret_file, &n->secret_len, err, errlen)))
            goto fail;
    } else {
        n->secret = sl_xstrdup(SL_NOTIFIER_DEFAULT_SECRET);
        n->secret_len = strlen(n->secret);
    }
    char host[256];
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(n->publisher_id, sizeof n->publisher_id, "telemetry.publisher.%s", host);
    snprintf(n->conn_name, sizeof n->conn_name, "sluice notifier publisher (pid %ld)",
             (long) getpid());
    (void) check_only;   /* nothing is opened before the first publish anyway */
    return n;
fail:
    s_destroy(&ctx);
    return NULL;
}

/* Drops the connection: politely (close handshake, bounded by the RPC
 * timeout) when the channel or connection is still sane, else at once. */
static void
s_disconnect(s_notifier_t *n, int polite)
{
    if (!n->conn)
        return;
    if (polite)
        sl_amqp_close(n->conn);
    else
        sl_amqp_abandon(n->conn);
    n->conn = NULL;
    for (size_t i = 0; i < n->n_declared; i++)
        free(n->declared[i]);
    n->n_declared = 0;
    n->exchange_declared = 0;
}

/* After a failure on host n->host: the next connect starts with the next
 * host of the list (oslo's round-robin fail-over). */
static void
s_fail(s_notifier_t *n, int polite)
{
    s_disconnect(n, polite);
    n->host = (n->host + 1) % n->url.n_hosts;
}

/* The broker closed channel 1 (a declaration it refused): acknowledge,
 * close the connection. */
static void
s_channel_closed(s_notifier_t *n)
{
    amqp_channel_close_ok_t ok = { 0 };
    amqp_send_method(n->conn, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    amqp_connection_close(n->conn, AMQP_REPLY_SUCCESS);   /* bounded by the RPC timeout */
    s_fail(n, 0);
}

static int
s_connect(s_notifier_t *n, char *err, size_t errlen)
{
    if (n->conn)
        return 0;
    sl_amqp_open_opts_t oo = {
        .ca_file = n->ca_file, .cert_file = n->cert_file, .key_file = n->key_file,
        .verify = n->ca_file != NULL, .heartbeat_s = 0, .timeout_ms = n->timeout_ms,
        .name = n->conn_name,
    };
    sl_buf_t why = { 0 };
    for (size_t k = 0; k < n->url.n_hosts; k++) {
        size_t i = (n->host + k) % n->url.n_hosts;
        char e[512];
        amqp_connection_state_t c = sl_amqp_open(&n->url, i, &oo, e, sizeof e);
        if (c) {
            amqp_confirm_select(c, 1);
            amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
            if (sl_amqp_ok(r)) {
                n->conn = c;
                n->host = i;
                n->next_tag = 1;
                sl_buf_free(&why);
                return 0;
            }
            char label[300], rt[300];
            snprintf(e, sizeof e, "%s: confirm.select refused: %s",
                     sl_amqp_url_label(&n->url, i, label, sizeof label),
                     sl_amqp_reply_text(r, rt, sizeof rt));
            sl_amqp_abandon(c);
        }
        sl_buf_printf(&why, "%s%s", why.n ? "; " : "", e);
    }
    sl_errf(err, errlen, "%s", why.p ? why.p : "?");
    sl_buf_free(&why);
    return -1;
}

/* Declares the exchange and the queue <rk> bound to it with key rk, once
 * per connection (oslo's _publish_and_creates_default_queue). */
static int
s_declare(s_notifier_t *n, const char *rk, char *err, size_t errlen)
{
    for (size_t i = 0; i < n->n_declared; i++)
        if (strcmp(n->declared[i], rk) == 0)
            return 0;
    amqp_rpc_reply_t r;
    char why[300], label[300];
    const char *what;
    if (!n->exchange_declared) {
        amqp_exchange_declare(n->conn, 1, amqp_cstring_bytes(n->exchange),
                              amqp_cstring_bytes("topic"), 0, n->durable, n->auto_delete, 0,
                              amqp_empty_table);
        r = amqp_get_rpc_reply(n->conn);
        what = "exchange";
        if (!sl_amqp_ok(r))
            goto fail;
        n->exchange_declared = 1;
    }
    amqp_queue_declare(n->conn, 1, amqp_cstring_bytes(rk), 0, n->durable, 0, n->auto_delete,
                       amqp_empty_table);
    r = amqp_get_rpc_reply(n->conn);
    what = "queue";
    if (!sl_amqp_ok(r))
        goto fail;
    amqp_queue_bind(n->conn, 1, amqp_cstring_bytes(rk), amqp_cstring_bytes(n->exchange),
                    amqp_cstring_bytes(rk), amqp_empty_table);
    r = amqp_get_rpc_reply(n->conn);
    what = "binding of queue";
    if (!sl_amqp_ok(r))
        goto fail;
    n->declared = sl_xrealloc(n->declared, (n->n_declared + 1) * sizeof *n->declared);
    n->declared[n->n_declared++] = sl_xstrdup(rk);
    return 0;
fail:
    sl_errf(err, errlen, "%s: declaring the %s %s failed: %s%s",
            sl_amqp_url_label(&n->url, n->host, label, sizeof label), what,
            strcmp(what, "exchange") == 0 ? n->exchange : rk, sl_amqp_reply_text(r, why, sizeof why),
            r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
            ((amqp_channel_close_t *) r.reply.decoded)->reply_code == 406
                ? " (it exists with other properties: amqp_durable_queues / amqp_auto_delete "
                  "must match them)" : "");
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
        s_channel_closed(n);
    else
        s_fail(n, 0);   /* the connection is gone (closed by the broker, or an I/O error) */
    return -1;
}

static int
s_publish_one(s_notifier_t *n, const char *rk, const sl_buf_t *body, char *err, size_t errlen)
{
    if (s_declare(n, rk, err, errlen) < 0)
        return -1;
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    /* what kombu's Producer.publish sets for oslo */
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
                   AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_PRIORITY_FLAG;
    props.headers = amqp_empty_table;
    props.content_type = amqp_cstring_bytes("application/json");
    props.content_encoding = amqp_cstring_bytes("utf-8");
    props.delivery_mode = 2;   /* kombu's default: persistent */
    props.priority = 0;
    amqp_bytes_t b = { .len = body->n, .bytes = body->p };
    int st = amqp_basic_publish(n->conn, 1, amqp_cstring_bytes(n->exchange),
                                amqp_cstring_bytes(rk), 1, 0, &props, b);
    if (st != AMQP_STATUS_OK) {
        char label[300];
        sl_errf(err, errlen, "%s: publish to %s failed: %s",
                sl_amqp_url_label(&n->url, n->host, label, sizeof label), rk,
                amqp_error_string2(st));
        s_fail(n, 0);
        return -1;
    }
    n->next_tag++;
    return 0;
}

/* Waits until the broker confirmed the deliveries first..next_tag-1. 0 if
 * every one was acked and none returned; -1 with err otherwise (the
 * connection is dropped unless only returns happened). */
static int
s_wait_confirms(s_notifier_t *n, uint64_t first, char *err, size_t errlen)
{
    size_t count = (size_t) (n->next_tag - first);
    if (!count)
        return 0;
    if (n->acked_cap < count) {
        n->acked = sl_xrealloc(n->acked, count);
        n->acked_cap = count;
    }
    memset(n->acked, 0, count);
    size_t done = 0, nacked = 0, returned = 0;
    char ret_text[256] = "", blocked[256] = "", label[300], why[300];
    sl_amqp_url_label(&n->url, n->host, label, sizeof label);
    uint64_t deadline = sl_now_ms() + n->timeout_ms;
    while (done < count) {
        uint64_t now = sl_now_ms();
        if (now >= deadline) {
            sl_errf(err, errlen, "%s: the broker confirmed %zu of %zu "
                    "messages within %u ms%s%s", label, done, count, n->timeout_ms,
                    blocked[0] ? "; it blocked publishing: " : "", blocked);
            s_fail(n, 0);
            return -1;
        }
        uint64_t left = deadline - now;
        struct timeval tv = { .tv_sec = (time_t) (left / 1000),
                              .tv_usec = (suseconds_t) (left % 1000) * 1000 };
        amqp_frame_t f;
        amqp_maybe_release_buffers(n->conn);
        int st = amqp_simple_wait_frame_noblock(n->conn, &f, &tv);
        if (st == AMQP_STATUS_TIMEOUT)
            continue;
        if (st != AMQP_STATUS_OK) {
            sl_errf(err, errlen, "%s: connection lost while waiting for "
                    "confirmations (%zu of %zu confirmed): %s", label, done, count,
                    amqp_error_string2(st));
            s_fail(n, 0);
            return -1;
        }
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        amqp_method_t *m = &f.payload.method;
        if (m->id == AMQP_BASIC_ACK_METHOD || m->id == AMQP_BASIC_NACK_METHOD) {
            uint64_t tag;
            int multiple;
            if (m->id == AMQP_BASIC_ACK_METHOD) {
                const amqp_basic_ack_t *a = m->decoded;
                tag = a->delivery_tag;
                multiple = a->multiple;
            } else {
                const amqp_basic_nack_t *a = m->decoded;
                tag = a->delivery_tag;
                multiple = a->multiple;
            }
            uint64_t lo = multiple ? first : tag;
            for (uint64_t t = lo; t <= tag; t++) {
                if (t < first || t - first >= count || n->acked[t - first])
                    continue;
                n->acked[t - first] = 1;
                done++;
                if (m->id == AMQP_BASIC_NACK_METHOD)
                    nacked++;
            }
        } else if (m->id == AMQP_BASIC_RETURN_METHOD) {
            const amqp_basic_return_t *r = m->decoded;
            returned++;
            snprintf(ret_text, sizeof ret_text, "%u %.*s (routing key %.*s)", r->reply_code,
                     (int) r->reply_text.len, (const char *) r->reply_text.bytes,
                     (int) r->routing_key.len, (const char *) r->routing_key.bytes);
            amqp_message_t msg;
            amqp_rpc_reply_t rr = amqp_read_message(n->conn, f.channel, &msg, 0);
            if (!sl_amqp_ok(rr)) {
                sl_errf(err, errlen, "%s: reading a returned message: %s",
                        label, sl_amqp_reply_text(rr, why, sizeof why));
                s_fail(n, 0);
                return -1;
            }
            amqp_destroy_message(&msg);
        } else if (m->id == AMQP_CONNECTION_BLOCKED_METHOD) {
            const amqp_connection_blocked_t *b = m->decoded;
            snprintf(blocked, sizeof blocked, "%.*s", (int) b->reason.len,
                     (const char *) b->reason.bytes);
        } else if (m->id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
            blocked[0] = '\0';
        } else if (m->id == AMQP_CHANNEL_CLOSE_METHOD || m->id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_rpc_reply_t r = { .reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = *m };
            sl_errf(err, errlen, "%s: %s (%zu of %zu messages confirmed)",
                    label, sl_amqp_reply_text(r, why, sizeof why), done, count);
            if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
                s_channel_closed(n);
            } else {
                amqp_connection_close_ok_t ok = { 0 };
                amqp_send_method(n->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
                s_fail(n, 0);
            }
            return -1;
        }
    }
    if (nacked) {
        sl_errf(err, errlen, "%s: the broker refused %zu of %zu messages "
                "(basic.nack)", label, nacked, count);
        return -1;
    }
    if (returned) {
        sl_errf(err, errlen, "%s: the broker could not route %zu of %zu "
                "messages: %s; the queues are declared again before the retry", label,
                returned, count, ret_text);
        for (size_t i = 0; i < n->n_declared; i++)
            free(n->declared[i]);
        n->n_declared = 0;
        n->exchange_declared = 0;
        return -1;
    }
    return 0;
}

/* The stable order of sample indexes by meter name (Python's sorted by
 * counter_name, then itertools.groupby); qsort_r's argument: the samples. */
static int
s_by_name(const void *a, const void *b, void *arg)
{
    const sl_sample_t *s = arg;
    size_t i = *(const size_t *) a, j = *(const size_t *) b;
    const char *x = s[i].name ? s[i].name : "";
    const char *y = s[j].name ? s[j].name : "";
    int c = strcmp(x, y);
    return c ? c : (i > j) - (i < j);
}

/* Sends one notification (event_type, payload) to every topic. */
static int
s_notify(s_notifier_t *n, const char *event_type, const sl_buf_t *payload,
         const char *const *topics, size_t n_topics, char *err, size_t errlen)
{
    char mid[37], uid[37], hex[33], ts[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    sl_notifier_timestamp(ts, (long long) now.tv_sec, now.tv_nsec);
    sl_sample_uuid4(mid);
    for (size_t t = 0; t < n_topics; t++) {
        sl_sample_uuid4(uid);
        size_t k = 0;
        for (const char *p = uid; *p; p++)
            if (*p != '-')
                hex[k++] = *p;
        hex[k] = '\0';
        sl_notifier_msg_t m = {
            .message_id = mid, .publisher_id = n->publisher_id, .event_type = event_type,
            .priority = "SAMPLE", .timestamp = ts, .unique_id = hex,
        };
        sl_buf_reset(&n->body);
        sl_notifier_body(&n->body, &m, payload->p, payload->n, n->format == S_DRV_V2);
        char rk[300];
        snprintf(rk, sizeof rk, "%s.sample", topics[t]);
        if (s_publish_one(n, rk, &n->body, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* payload = "[" records idx[0..k) joined by ", " "]". */
static void
s_payload(s_notifier_t *n, const size_t *idx, size_t k)
{
    sl_buf_reset(&n->payload);
    sl_buf_putc(&n->payload, '[');
    for (size_t i = 0; i < k; i++) {
        size_t r = idx ? idx[i] : i;
        if (i)
            sl_buf_puts(&n->payload, ", ");
        sl_buf_put(&n->payload, n->records.p + n->offs[2 * r],
                   n->offs[2 * r + 1] - n->offs[2 * r]);
    }
    sl_buf_putc(&n->payload, ']');
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_notifier_t *n = ctx;
    if (n->format == S_DRV_NOOP || b->n == 0)
        return SL_PUB_OK;
    int events = b->kind == SL_PUB_EVENTS;
    /* Every record's message, once: they are shared by the topics and the
     * per-meter notifications. */
    sl_buf_reset(&n->records);
    if (n->offs_cap < 2 * b->n) {
        n->offs = sl_xrealloc(n->offs, 2 * b->n * sizeof *n->offs);
        n->offs_cap = 2 * b->n;
    }
    size_t nrec = 0;
    for (size_t i = 0; i < b->n; i++) {
        int rc;
        size_t start = n->records.n;
        if (events) {
            if (!b->events[i])
                continue;
            rc = sl_notifier_event_message(&n->records, b->events[i], n->secret, n->secret_len,
                                           err, errlen);
        } else {
            rc = sl_notifier_meter_message(&n->records, &b->samples[i], n->secret,
                                           n->secret_len, err, errlen);
        }
        if (rc < 0)
            return SL_PUB_ERROR;
        n->offs[2 * nrec] = start;
        n->offs[2 * nrec + 1] = n->records.n;
        nrec++;
    }
    if (!nrec)
        return SL_PUB_OK;
    const char *deftopic = events ? "event" : "metering";
    const char *const *topics = n->n_topics ? (const char *const *) n->topics : &deftopic;
    size_t n_topics = n->n_topics ? n->n_topics : 1;
    if (s_connect(n, err, errlen) < 0)
        return SL_PUB_RETRY;
    uint64_t first = n->next_tag;
    s_payload(n, NULL, nrec);
    /* Ceilometer's event types: its metering_topic and event_topic options
     * (defaults), whatever the URL's topic. */
    if (s_notify(n, events ? "event" : "metering", &n->payload, topics, n_topics, err,
                 errlen) < 0)
        return SL_PUB_RETRY;
    if (n->per_meter && !events) {
        size_t *idx = sl_xmalloc(nrec * sizeof *idx);
        for (size_t i = 0; i < nrec; i++)
            idx[i] = i;
        qsort_r(idx, nrec, sizeof *idx, s_by_name, (void *) b->samples);
        for (size_t i = 0; i < nrec;) {
            const char *name = b->samples[idx[i]].name ? b->samples[idx[i]].name : "";
            size_t j = i;
            while (j < nrec && strcmp(b->samples[idx[j]].name ? b->samples[idx[j]].name : "",
                                      name) == 0)
                j++;
            s_payload(n, idx + i, j - i);
            char *et = sl_xmalloc(strlen(name) + 10);
            sprintf(et, "metering.%s", name);
            int rc = s_notify(n, et, &n->payload, topics, n_topics, err, errlen);
            free(et);
            if (rc < 0) {
                free(idx);
                return SL_PUB_RETRY;
            }
            i = j;
        }
        free(idx);
    }
    if (s_wait_confirms(n, first, err, errlen) < 0)
        return SL_PUB_RETRY;
    return SL_PUB_OK;
}

static void
s_destroy(void **ctx_p)
{
    s_notifier_t *n = *ctx_p;
    if (!n)
        return;
    s_disconnect(n, 1);
    sl_amqp_url_free(&n->url);
    for (size_t i = 0; i < n->n_topics; i++)
        free(n->topics[i]);
    free(n->topics);
    free(n->declared);
    free(n->exchange);
    if (n->secret)
        memset(n->secret, 0, n->secret_len);
    free(n->secret);
    free(n->ca_file);
    free(n->cert_file);
    free(n->key_file);
    sl_buf_free(&n->records);
    sl_buf_free(&n->payload);
    sl_buf_free(&n->body);
    free(n->offs);
    free(n->acked);
    free(n);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_notifier = {
    .name = "notifier",
    .help = "oslo notifications on RabbitMQ, as Ceilometer's notifier:// (messagingv2 "
            "envelope, routing key <topic>.sample, publisher confirms)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD | SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
