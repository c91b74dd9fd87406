#include "common/source_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/amqp.h"
#include "common/arena.h"
#include "common/log.h"

/* --- file ------------------------------------------------------------------------ */

/* rate: absent is "as fast as possible"; a rate given must be above 0. */
static int
s_check_rate(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    if (!(strtod(text, NULL) > 0))
        return sl_errf(err, errlen, "%s: '%s' must be a number of notifications per second "
                       "above 0", o->name, text);
    return 0;
}

static const sl_opt_t s_file_opts[] = {
    { .name = "path", .type = SL_OPT_PATH, .offset = offsetof(sl_file_source_opts_t, path),
      .required = 1, .help = "JSON Lines file of notifications to replay; relative to "
      "sluice.yaml's directory" },
    { .name = "rate", .type = SL_OPT_DOUBLE, .offset = offsetof(sl_file_source_opts_t, rate),
      .dmin = 0, .dmax = 1e9, .check = s_check_rate, .type_text = "number above 0",
      .help = "notifications per second over all ingest workers (absent: as fast as "
      "possible)" },
    { .name = NULL },
};

/* A file source that cannot be read would stop every ingest worker at
 * start; say so at load, at its `path:` line. */
static int
s_check_file(const void *opts, const char **at, char *err, size_t errlen)
{
    const sl_file_source_opts_t *f = opts;
    struct stat st;
    *at = "path";
    if (stat(f->path, &st) < 0) {
        if (errno == ENOENT)
            return sl_errf(err, errlen, "file source: %s does not exist (correct `path` or "
                           "create the file)", f->path);
        return sl_errf(err, errlen, "file source: cannot access %s: %s (correct `path` or its "
                       "directory's permissions)", f->path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return sl_errf(err, errlen, "file source: %s is a directory (`path` must name a JSON "
                       "Lines file)", f->path);
    if (access(f->path, R_OK) < 0)
        return sl_errf(err, errlen, "file source: %s is not readable: %s (give sluiced read "
                       "access, or correct `path`)", f->path, strerror(errno));
    return 0;
}

const sl_source_type_t sl_source_type_file = {
    .name = "file",
    .help = "JSON Lines replay, at `rate` notifications/s if given; ingest worker k of N reads "
            "lines k, k+N, ...",
    .options = s_file_opts,
    .opts_size = sizeof(sl_file_source_opts_t),
    .check = s_check_file,
};

/* --- zmq ------------------------------------------------------------------------- */

static int
s_check_endpoint(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    if (strncmp(text, "tcp://", 6) && strncmp(text, "ipc://", 6))
        return sl_errf(err, errlen, "%s '%s' must be tcp:// or ipc://", o->name, text);
    return 0;
}

static const sl_opt_t s_zmq_opts[] = {
    { .name = "endpoint", .type = SL_OPT_STR, .offset = offsetof(sl_zmq_source_opts_t, endpoint),
      .required = 1, .check = s_check_endpoint, .type_text = "tcp:// or ipc:// endpoint",
      .help = "e.g. tcp://127.0.0.1:5557 or ipc://${run_dir}/notify.sock" },
    { .name = "mode", .type = SL_OPT_ENUM, .offset = offsetof(sl_zmq_source_opts_t, mode),
      .def = "connect", .choices = "connect|bind",
      .help = "connect: every ingest worker connects to a producer that binds the endpoint; "
      "bind: worker k binds it with port+k or path.k" },
    { .name = NULL },
};

const sl_source_type_t sl_source_type_zmq = {
    .name = "zmq",
    .help = "ZeroMQ PULL socket fed by producers (sluice-inject, a PUSH socket).",
    .options = s_zmq_opts,
    .opts_size = sizeof(sl_zmq_source_opts_t),
    .check = NULL,
};

/* --- amqp ------------------------------------------------------------------------ */

const char *const sl_amqp_priority_names[7] = {
    "audit", "debug", "info", "warn", "error", "critical", "sample",
};

/* Ceilometer 19's [notification] notification_control_exchanges. */
#define S_CEILOMETER_EXCHANGES "nova,glance,neutron,cinder,heat,keystone,sahara,trove,zaqar," \
    "swift,ceilometer,magnum,dns,ironic,aodh"

static const sl_opt_t s_amqp_opts[] = {
    { .name = "url", .type = SL_OPT_STR, .offset = offsetof(sl_amqp_source_opts_t, url),
      .type_text = "transport URL",
      .help = "one broker, as oslo's transport_url: rabbit://user:pass@host:port,user:pass@"
      "host2:port/vhost (several hosts = a fail-over list; amqps:// or ?ssl=1 = TLS)" },
    { .name = "messaging_urls", .type = SL_OPT_STR, .kinds = SL_OPT_LIST | SL_OPT_URLS,
      .offset = offsetof(sl_amqp_source_opts_t, messaging_urls), .type_text = "list of URLs",
      .help = "several independent brokers (Ceilometer's [notification] messaging_urls, e.g. "
      "Nova cells), each consumed by every ingest worker; instead of url" },
    { .name = "exchanges", .type = SL_OPT_STR, .kinds = SL_OPT_LIST,
      .offset = offsetof(sl_amqp_source_opts_t, exchanges), .def = S_CEILOMETER_EXCHANGES,
      .type_text = "list", .help = "control exchanges to listen on (Ceilometer's "
      "notification_control_exchanges; the default is its list)" },
    { .name = "topics", .type = SL_OPT_STR, .kinds = SL_OPT_LIST,
      .offset = offsetof(sl_amqp_source_opts_t, topics), .def = "notifications",
      .type_text = "list", .help = "notification topics (oslo's [oslo_messaging_notifications] "
      "topics)" },
    { .name = "priorities", .type = SL_OPT_STR, .kinds = SL_OPT_LIST,
      .offset = offsetof(sl_amqp_source_opts_t, priorities), .def = "info,sample,error",
      .type_text = "list", .help = "one queue <topic>.<priority> per topic and priority, bound "
      "to every exchange with that routing key; the default is what Ceilometer's endpoints "
      "listen to (audit, debug, info, warn, error, critical, sample)" },
    { .name = "durable", .type = SL_OPT_BOOL, .offset = offsetof(sl_amqp_source_opts_t, durable),
      .def = "false", .help = "durable exchanges and queues (oslo's amqp_durable_queues)" },
    { .name = "auto_delete", .type = SL_OPT_BOOL,
      .offset = offsetof(sl_amqp_source_opts_t, auto_delete), .def = "false",
      .help = "auto-delete exchanges and queues (oslo's amqp_auto_delete)" },
    { .name = "quorum", .type = SL_OPT_BOOL, .offset = offsetof(sl_amqp_source_opts_t, quorum),
      .def = "false", .help = "quorum queues: x-queue-type=quorum, durable (oslo's "
      "rabbit_quorum_queue)" },
    { .name = "ha_queues", .type = SL_OPT_BOOL,
      .offset = offsetof(sl_amqp_source_opts_t, ha_queues), .def = "false",
      .help = "x-ha-policy=all (oslo's rabbit_ha_queues; not with quorum)" },
    { .name = "queue_arguments", .type = SL_OPT_STR, .kinds = SL_OPT_MAP,
      .offset = offsetof(sl_amqp_source_opts_t, queue_arguments), .type_text = "mapping",
      .help = "extra x-* queue arguments, e.g. {x-max-length: 1000000}; whole numbers are "
      "sent as integers" },
    { .name = "passive", .type = SL_OPT_BOOL, .offset = offsetof(sl_amqp_source_opts_t, passive),
      .def = "false", .help = "declare nothing: the queues must exist (managed elsewhere); a "
      "missing queue is an error and retried" },
    { .name = "prefetch", .type = SL_OPT_UINT, .offset = offsetof(sl_amqp_source_opts_t, prefetch),
      .def = "256", .min = 1, .max = 65535, .help = "unacknowledged deliveries the broker may "
      "hand each consumer (basic.qos, per consumer as oslo sets it; one consumer per queue, "
      "ingest worker and broker); bounds memory while a destination is down: the broker "
      "keeps the rest" },
    { .name = "heartbeat", .type = SL_OPT_MS, .offset = offsetof(sl_amqp_source_opts_t, heartbeat),
      .def = "30s", .max = 600000, .help = "AMQP heartbeat asked of the broker (whole seconds; 0 "
      "= none): a connection silent for twice this is dead" },
    { .name = "timeout", .type = SL_OPT_MS, .offset = offsetof(sl_amqp_source_opts_t, timeout),
      .def = "3s", .min = 100, .max = 60000, .help = "TCP connect, TLS handshake and each "
      "declaration (the ingest worker waits this long at most per step)" },
    { .name = "reconnect_initial", .type = SL_OPT_MS,
      .offset = offsetof(sl_amqp_source_opts_t, reconnect_initial), .def = "500ms", .min = 10,
      .max = 600000, .help = "first delay before reconnecting; doubles per failed attempt "
      "(full jitter)" },
    { .name = "reconnect_max", .type = SL_OPT_MS,
      .offset = offsetof(sl_amqp_source_opts_t, reconnect_max), .def = "30s", .min = 10,
      .max = 3600000, .help = "longest delay between reconnection attempts" },
    { .name = "ssl_ca_file", .type = SL_OPT_PATH,
      .offset = offsetof(sl_amqp_source_opts_t, ssl_ca_file),
      .help = "TLS: CA certificates that signed the broker's (absent: the system's)" },
    { .name = "ssl_cert_file", .type = SL_OPT_PATH,
      .offset = offsetof(sl_amqp_source_opts_t, ssl_cert_file),
      .help = "TLS: client certificate (with ssl_key_file)" },
    { .name = "ssl_key_file", .type = SL_OPT_PATH,
      .offset = offsetof(sl_amqp_source_opts_t, ssl_key_file),
      .help = "TLS: client private key (with ssl_cert_file)" },
    { .name = "ssl_verify", .type = SL_OPT_BOOL,
      .offset = offsetof(sl_amqp_source_opts_t, ssl_verify), .def = "true",
      .help = "TLS: verify the broker's certificate chain and host name" },
    { .name = "ack_on_event_error", .type = SL_OPT_BOOL,
      .offset = offsetof(sl_amqp_source_opts_t, ack_on_event_error), .def = "true",
      .help = "Ceilometer's [notification] ack_on_event_error: false = a notification whose "
      "event conversion failed is requeued once (redelivered and failing again, it is acked "
      "and counted)" },
    { .name = NULL },
};

/* Is every comma-separated item of list one of names? */
static const char *
s_bad_item(const char *list, const char *const *names, size_t n, char *buf, size_t len)
{
    const char *p = list;
    while (*p) {
        size_t k = strcspn(p, ","), i;
        for (i = 0; i < n; i++)
            if (strlen(names[i]) == k && !strncmp(names[i], p, k))
                break;
        if (i == n) {
            snprintf(buf, len, "%.*s", (int) k, p);
            return buf;
        }
        p += k + (p[k] == ',');
    }
    return NULL;
}

static int
s_check_file_opt(const char *path, const char *name, char *err, size_t errlen)
{
    if (path && access(path, R_OK) < 0)
        return sl_errf(err, errlen, "amqp source: %s %s is not readable: %s (correct `%s`)",
                       name, path, strerror(errno), name);
    return 0;
}

static int
s_check_amqp(const void *opts, const char **at, char *err, size_t errlen)
{
    const sl_amqp_source_opts_t *a = opts;
    char why[512], item[64];
    if (!!a->url == !!a->messaging_urls) {
        *at = NULL;
        return sl_errf(err, errlen, "amqp source: give either `url` (one broker) or "
                       "`messaging_urls` (a list of brokers), not %s%s",
                       a->url ? "both" : "neither",
                       a->url ? "" : " (or a global transport_url)");
    }
    *at = a->url ? "url" : "messaging_urls";
    const char *list = a->url ? a->url : a->messaging_urls;
    size_t n = 0;
    for (const char *p = list; *p; n++) {
        size_t k = a->url ? strlen(p) : sl_amqp_url_list_next(p);
        char *one = sl_xstrndup(p, k);
        sl_amqp_url_t u;
        int rc = sl_amqp_url_parse(one, &u, why, sizeof why);
        free(one);
        if (rc < 0)
            return sl_errf(err, errlen, "amqp source: %s", why);
        sl_amqp_url_free(&u);
        p += k + (p[k] == ',');
    }
    if (n > SL_AMQP_MAX_BROKERS)
        return sl_errf(err, errlen, "amqp source: at most %d brokers in messaging_urls",
                       SL_AMQP_MAX_BROKERS);
    *at = "priorities";
    if (!*a->priorities)
        return sl_errf(err, errlen, "amqp source: `priorities` is empty (the default is "
                       "info, sample, error)");
    if (s_bad_item(a->priorities, sl_amqp_priority_names, 7, item, sizeof item))
        return sl_errf(err, errlen, "amqp source: '%s' is not a notification priority (use "
                       "audit, debug, info, warn, error, critical or sample)", item);
    *at = !*a->exchanges ? "exchanges" : "topics";
    if (!*a->exchanges || !*a->topics)
        return sl_errf(err, errlen, "amqp source: `%s` is empty", *at);
    *at = "quorum";
    if (a->quorum && a->ha_queues)
        return sl_errf(err, errlen, "amqp source: quorum and ha_queues both set: a queue is "
                       "quorum or HA (mirrored), not both (oslo refuses it too)");
    *at = "reconnect_max";
    if (a->reconnect_max < a->reconnect_initial)
        return sl_errf(err, errlen, "amqp source: reconnect_max is below reconnect_initial");
    *at = "queue_arguments";
    if (a->queue_arguments) {
        amqp_pool_t pool;
        amqp_table_t t;
        init_amqp_pool(&pool, 1024);
        int rc = sl_amqp_table(a->queue_arguments, &t, &pool, why, sizeof why);
        empty_amqp_pool(&pool);
        if (rc < 0)
            return sl_errf(err, errlen, "amqp source: queue_arguments: %s", why);
    }
    *at = "ssl_key_file";
    if (!a->ssl_cert_file != !a->ssl_key_file)
        return sl_errf(err, errlen, "amqp source: ssl_cert_file and ssl_key_file go together");
    *at = "ssl_ca_file";
    if (s_check_file_opt(a->ssl_ca_file, "ssl_ca_file", err, errlen) < 0)
        return -1;
    *at = "ssl_cert_file";
    if (s_check_file_opt(a->ssl_cert_file, "ssl_cert_file", err, errlen) < 0)
        return -1;
    *at = "ssl_key_file";
    return s_check_file_opt(a->ssl_key_file, "ssl_key_file", err, errlen);
}

const sl_source_type_t sl_source_type_amqp = {
    .name = "amqp",
    .help = "RabbitMQ (oslo.messaging notifications): queues <topic>.<priority> on every "
            "control exchange, declared as oslo's notification listener does; each delivery "
            "is acknowledged once everything it produced is delivered",
    .options = s_amqp_opts,
    .opts_size = sizeof(sl_amqp_source_opts_t),
    .check = s_check_amqp,
};

/* --- registry -------------------------------------------------------------------- */

static const sl_source_type_t *const s_types[] = {
    &sl_source_type_file,
    &sl_source_type_zmq,
    &sl_source_type_amqp,
};

const sl_source_type_t *const *
sl_source_types(size_t *n)
{
    *n = sizeof s_types / sizeof *s_types;
    return s_types;
}

const sl_source_type_t *
sl_source_type_find(const char *name)
{
    for (size_t i = 0; i < sizeof s_types / sizeof *s_types; i++)
        if (strcmp(s_types[i]->name, name) == 0)
            return s_types[i];
    return NULL;
}

const char *
sl_source_type_names(const char *sep, const char *last_sep, char *buf, size_t len)
{
    size_t n = sizeof s_types / sizeof *s_types, o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < len; i++)
        o += (size_t) snprintf(buf + o, len - o, "%s%s",
                               i == 0 ? "" : i + 1 == n ? last_sep : sep, s_types[i]->name);
    return buf;
}

void
sl_source_types_help(FILE *out)
{
    for (size_t i = 0; i < sizeof s_types / sizeof *s_types; i++) {
        fprintf(out, "\n### source `type: %s`\n\n%s\n\n", s_types[i]->name, s_types[i]->help);
        sl_opt_help(out, s_types[i]->options, "");
    }
}
