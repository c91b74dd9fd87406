#include "common/conf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/promtext.h"
#include "common/source_conf.h"
#include "common/yconf.h"

#define OFF(f) offsetof(sl_conf_t, f)

/* Names are dotted paths in sluice.yaml. */
/* store_raw's levels as a mask of 1 << sl_priority_t; -1 with the bad one
 * in err. Ceilometer lowercases them; only info and error make events. */
static int
s_store_raw_mask(const char *text, unsigned *mask, char *err, size_t errlen)
{
    *mask = 0;
    for (const char *p = text; p && *p;) {
        size_t n = strcspn(p, ",");
        char w[16];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof w; i++)
            if (p[i] != ' ')
                w[k++] = (char) tolower((unsigned char) p[i]);
        w[k] = '\0';
        if (strcmp(w, "info") == 0)
            *mask |= 1u << SL_PRIO_INFO;
        else if (strcmp(w, "error") == 0)
            *mask |= 1u << SL_PRIO_ERROR;
        else if (k)
            return sl_errf(err, errlen, "ceilometer.store_raw: '%.*s' is not a priority that "
                           "makes events (info, error)", (int) n, p);
        p += n + (p[n] == ',');
    }
    return 0;
}

static int
s_check_store_raw(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    unsigned mask;
    return s_store_raw_mask(text, &mask, err, errlen);
}

static int
s_check_listen(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    (void) o;
    char host[256], why[256];
    unsigned port;
    if (sl_promtext_listen_parse(text, host, sizeof host, &port, why, sizeof why) < 0)
        return sl_errf(err, errlen, "metrics.listen: %s", why);
    return 0;
}

static const sl_opt_t s_options[] = {
    { .name = "run_dir", .type = SL_OPT_PATH, .offset = OFF(run_dir), .def = "/run/sluice",
      .help = "directory for the pidfile, ipc:// sockets and the shared-memory name" },
    { .name = "pidfile", .type = SL_OPT_PATH, .offset = OFF(pidfile),
      .def = "${run_dir}/sluiced.pid",
      .help = "pidfile written by the supervisor" },
    { .name = "workers.ingest", .type = SL_OPT_STR, .offset = OFF(ingest_workers_text),
      .def = "auto", .min = 1, .max = 64, .check = sl_opt_check_auto_uint,
      .type_text = "auto or 1..64",
      .help = "ingest worker processes, or auto (3/4 of the usable CPUs, at least 1)" },
    { .name = "workers.pipeline", .type = SL_OPT_STR, .offset = OFF(pipeline_workers_text),
      .def = "auto", .min = 1, .max = 64, .check = sl_opt_check_auto_uint,
      .type_text = "auto or 1..64",
      .help = "pipeline worker processes, or auto (1/4 of the usable CPUs, at least 1)" },
    { .name = "metrics.listen", .type = SL_OPT_STR, .offset = OFF(metrics_listen),
      .def = "127.0.0.1:9465", .check = s_check_listen, .type_text = "HOST:PORT or off",
      .help = "where the supervisor serves Prometheus /metrics and /healthz over HTTP "
      "([::1]:PORT for IPv6, :PORT for every address, off to serve nothing); also the "
      "SLUICE_METRICS_LISTEN environment variable" },
    { .name = "partitions", .type = SL_OPT_UINT, .offset = OFF(partitions), .def = "16", .min = 1,
      .max = 4096,
      .help = "partitions per sink; samples of one group always reach one partition" },
    { .name = "max_message_size", .type = SL_OPT_SIZE, .offset = OFF(max_message_size),
      .def = "1048576", .min = 256, .max = 1ULL << 30,
      .help = "larger notifications are counted and dropped (bytes)" },
    { .name = "batch_size", .type = SL_OPT_UINT, .offset = OFF(batch_size), .def = "256", .min = 1,
      .max = 65536,
      .help = "samples per wire frame" },
    { .name = "batch_timeout_ms", .type = SL_OPT_UINT, .offset = OFF(batch_timeout_ms), .def = "2",
      .min = 1, .max = 60000,
      .help = "a partly filled frame is sent this long after its first sample at the latest" },
    { .name = "batch_linger_ms", .type = SL_OPT_UINT, .offset = OFF(batch_linger_ms), .def = "10",
      .min = 0, .max = 60000,
      .help = "while the ingest worker is busy (it waited less than a quarter of the time "
              "since the frame opened) or the frame's sink took batch_size samples since "
              "then, a partly filled frame may wait this long instead of batch_timeout_ms "
              "(0 or not above it: never)" },
    { .name = "shutdown_grace", .type = SL_OPT_UINT, .offset = OFF(shutdown_grace), .def = "30",
      .min = 1, .max = 3600,
      .help = "seconds a graceful stop may take before workers are killed" },
    { .name = "worker_timeout", .type = SL_OPT_UINT, .offset = OFF(worker_timeout), .def = "60",
      .min = 2, .max = 86400,
      .help = "seconds without a heartbeat before the supervisor kills a worker" },
    { .name = "respawn_max_backoff", .type = SL_OPT_UINT, .offset = OFF(respawn_max_backoff),
      .def = "30", .min = 1, .max = 3600,
      .help = "cap of the exponential respawn backoff (seconds)" },
    { .name = "zmq_hwm", .type = SL_OPT_UINT, .offset = OFF(zmq_hwm), .def = "1000", .min = 10,
      .max = 1000000,
      .help = "high-water mark of the sockets between the workers (messages per socket); the " 
      "bytes they hold are bounded by queue_memory whatever it is" },
    { .name = "batch_max_bytes", .type = SL_OPT_SIZE, .offset = OFF(batch_max_bytes),
      .def = "262144", .min = 4096, .max = 64ULL << 20,
      .help = "a wire frame is also sent once it holds this many bytes (bounds every frame)" },
    { .name = "queue_memory", .type = SL_OPT_SIZE, .offset = OFF(queue_memory), .def = "4M",
      .min = 1ULL << 20, .max = 64ULL << 30,
      .help = "bytes of frames in flight between the agent's ingest and pipeline workers, all " 
      "together: its ingest workers share half of it for the frames they keep until confirmed " 
      "(each at least 4 x batch_max_bytes; at their share the sources pause: back-pressure) " 
      "and the pipeline workers hold at most one copy of each of those; frames of a sink with a " 
      "reorder_window wait that long by design and are bounded by max_unconfirmed instead" },
    { .name = "max_unconfirmed", .type = SL_OPT_UINT, .offset = OFF(max_unconfirmed), .def = "16384",
      .min = 1, .max = 16777216,
      .help = "notifications an ingest worker may have read and not yet seen fully delivered; at this " 
      "many its sources pause (bounds memory and the duplicates after a crash)" },
    { .name = "cpu_affinity", .type = SL_OPT_ENUM, .offset = OFF(cpu_affinity), .def = "off",
      .choices = "off|spread",
      .help = "spread: pin each worker (with its ZeroMQ I/O thread) to one CPU of the agent's "
      "affinity mask, ingest workers first, then pipeline workers, round robin; off: the kernel "
      "places them. On a 2-core host spread measured 1.2-2x while other jobs kept the CPUs busy "
      "and 0.9-1.0x on a quiet one: measure before turning it on" },
    { .name = "pipeline_nice", .type = SL_OPT_STR, .offset = OFF(pipeline_nice_text),
      .def = "0", .min = 0, .max = 19, .check = sl_opt_check_auto_uint,
      .type_text = "auto or 0..19",
      .help = "added to the nice value of the pipeline workers (and their threads); auto: 5 "
      "when the workers outnumber the usable CPUs, else 0. Competing for too few CPUs, the "
      "ingest workers then keep reading and the pipeline workers take larger batches (2 CPUs, "
      "2+2 workers: 3-14% more notifications/s); under overload the queues between them " 
      "fill to queue_memory. Off by default: a lower priority also loses to every other " 
      "process of a shared host. 0: the kernel shares the CPUs alike" },
    { .name = "strict", .type = SL_OPT_BOOL, .offset = OFF(strict), .def = "false",
      .help = "true: what Ceilometer tolerates in its files (keys it ignores, definitions it skips, " 
      "transformer parameters it never reads) is an error, not a warning (sluiced --strict)" },
    { .name = "logging.level", .type = SL_OPT_STR, .offset = OFF(log_level), .def = "info",
      .check = sl_opt_check_log_level, .type_text = "error|warn|info|debug",
      .help = "error, warn, info or debug" },
    { .name = "logging.file", .type = SL_OPT_PATH, .offset = OFF(log_file), .def = "-",
      .help = "log file (- = stderr); reopened on SIGUSR1" },
    { .name = "ceilometer.pipeline", .type = SL_OPT_PATH, .offset = OFF(pipeline_path),
      .def = "pipeline.yaml",
      .help = "Ceilometer pipeline.yaml (sources -> sinks -> publishers)" },
    { .name = "ceilometer.meters", .type = SL_OPT_PATH, .offset = OFF(meters_path),
      .def = "meters.yaml",
      .help = "Ceilometer meters.yaml (notification -> samples)" },
    { .name = "ceilometer.event_definitions", .type = SL_OPT_PATH, .offset = OFF(event_definitions_path),
      .def = "",
      .help = "Ceilometer event_definitions.yaml (notification -> events); events are off when unset" },
    { .name = "ceilometer.event_pipeline", .type = SL_OPT_PATH, .offset = OFF(event_pipeline_path),
      .def = "",
      .help = "Ceilometer event_pipeline.yaml (event sources -> sinks -> publishers); needed with " 
      "event_definitions" },
    { .name = "transport_url", .type = SL_OPT_STR, .offset = OFF(transport_url), .def = "",
      .type_text = "transport URL",
      .help = "the default broker, as oslo's [DEFAULT] transport_url (rabbit://user:pass@host:5672/): "
      "for amqp sources without url or messaging_urls and notifier:// publishers without a host" },
    { .name = "sample_source", .type = SL_OPT_STR, .offset = OFF(sample_source), .def = "openstack",
      .help = "the `source` of samples (Ceilometer's [DEFAULT] sample_source)" },
    { .name = "sample_ids", .type = SL_OPT_ENUM, .offset = OFF(sample_ids), .def = "random",
      .choices = "random|stable",
      .help = "random: each sample converted from a notification gets a new random id, as in " 
      "Ceilometer; stable: uuid5 of the notification's message_id, the sample's name and " 
      "resource_id (and its rank among the notification's samples with both the same), so a " 
      "notification read again after a crash gives the same ids and consumers can drop the " 
      "duplicates; samples of a notification without message_id, and the new samples " 
      "transformers make, keep random ids" },
    { .name = "ceilometer.store_raw", .type = SL_OPT_STR, .kinds = SL_OPT_LIST,
      .offset = OFF(store_raw), .def = "", .check = s_check_store_raw,
      .type_text = "list of info|error",
      .help = "Ceilometer's [event] store_raw: events from notifications of these priorities "
      "carry the whole notification as `raw` (http:// raw_only posts its payload); default "
      "none: raw is {}" },
    { .name = "coordination.backend", .type = SL_OPT_STR, .offset = OFF(coord_backend),
      .def = "local",
      .help = "local (shared memory, one host) or memcached://HOST:PORT[,HOST:PORT...] (several hosts)" },
    { .name = "coordination.group", .type = SL_OPT_STR, .offset = OFF(coord_group), .def = "sluice",
      .help = "group name: agents with the same group and servers share the partitions" },
    { .name = "coordination.heartbeat", .type = SL_OPT_MS, .offset = OFF(coord_heartbeat_ms),
      .def = "1000", .min = 50, .max = 60000,
      .help = "ms between membership heartbeats and lease renewals" },
    { .name = "coordination.lease_ttl", .type = SL_OPT_MS, .offset = OFF(coord_lease_ttl_ms),
      .def = "5000", .min = 200, .max = 600000,
      .help = "ms a lease or member record lives without renewal (keep it >= 3 heartbeats)" },
    { .name = "coordination.secret_file", .type = SL_OPT_PATH, .offset = OFF(coord_secret_file),
      .def = "",
      .help = "file with the group's shared secret (>= 16 bytes) keying the records' HMAC" },
    { .name = "coordination.advertise", .type = SL_OPT_STR, .offset = OFF(coord_advertise),
      .def = "127.0.0.1",
      .help = "address other hosts reach this host's pipeline workers at (tcp endpoints)" },
    { .name = "coordination.same_host_ipc", .type = SL_OPT_UINT, .offset = OFF(coord_same_host_ipc),
      .def = "1", .min = 0, .max = 1,
      .help = "1: agents on one host reach each other over ipc://, 0: always tcp" },
    { .name = NULL },
};
#define N_OPTIONS (sizeof s_options / sizeof s_options[0] - 1)

/* Sections whose keys are all options (so unknown keys can be reported). */
static const char *s_sections[] = { "workers", "logging", "ceilometer", "coordination", "metrics" };

/* sl_opt_set, remembering where the value came from (file NULL: a
 * default, which has no place); errors get file:line. */
static int
s_set(sl_conf_t *c, const sl_opt_t *o, const char *v, const char *file, int line,
      char *err, size_t errlen)
{
    char why[768];
    if (sl_opt_set(o, c, v, why, sizeof why) < 0)
        return sl_yerr_at(file, line, err, errlen, "%s", why);
    sl_conf_origin_t *at = &c->origins[o - s_options];
    free(at->file);
    free(at->text);
    at->file = file ? sl_xstrdup(file) : NULL;
    at->text = file ? sl_xstrdup(v) : NULL;
    at->line = line;
    return 0;
}

static const sl_opt_t *
s_find(const char *name)
{
    return sl_opt_find(s_options, name);
}

/* A YAML list of scalars as "a,b" (SL_OPT_LIST) or a mapping of scalars as
 * "k=v,k2=v2" (SL_OPT_MAP), malloc'd; NULL if v is not what o takes or
 * an item holds the separator. */
static char *
s_join(const sl_opt_t *o, const sl_ynode_t *v)
{
    int list = v->kind == SL_Y_SEQ && (o->kinds & SL_OPT_LIST);
    int map = v->kind == SL_Y_MAP && (o->kinds & SL_OPT_MAP);
    if (!list && !map)
        return NULL;
    size_t len = 1;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->kind != SL_Y_SCALAR ||
            (strchr(v->items[i]->value, ',') && !(o->kinds & SL_OPT_URLS)) ||
            (map && (strchr(v->keys[i], ',') || strchr(v->keys[i], '='))))
            return NULL;
        len += strlen(v->items[i]->value) + 2 + (map ? strlen(v->keys[i]) : 0);
    }
    char *out = sl_xmalloc(len), *p = out;
    *p = '\0';
    for (size_t i = 0; i < v->n; i++)
        p += sprintf(p, "%s%s%s%s", i ? "," : "", map ? v->keys[i] : "", map ? "=" : "",
                     v->items[i]->value);
    return out;
}

/* One entry of `sources:`: its type's option table fills sc->opts. */
static int
s_parse_source(sl_source_conf_t *sc, const sl_ynode_t *s, char *err, size_t errlen)
{
    char names[128], why[768];
    sl_source_type_names("`, `type: ", "` or `type: ", names, sizeof names);
    const sl_ynode_t *type = sl_ynode_get(s, "type");
    if (!type || type->kind != SL_Y_SCALAR)
        return sl_yerr(s, err, errlen, "source needs `type: %s`", names);
    sc->type = sl_source_type_find(type->value);
    if (!sc->type)
        return sl_yerr(type, err, errlen, "unknown source type '%s' (known: %s)", type->value,
                       sl_source_type_names(", ", ", ", names, sizeof names));
    const sl_opt_t *tab = sc->type->options;
    sc->opts = sl_xcalloc(1, sc->type->opts_size);
    sc->lines = sl_xcalloc(sl_opt_count(tab) + 1, sizeof *sc->lines);
    if (sl_opt_defaults(tab, sc->opts, why, sizeof why) < 0)
        return sl_yerr(type, err, errlen, "%s source: %s", sc->type->name, why);
    for (size_t k = 0; k < s->n; k++) {
        if (strcmp(s->keys[k], "type") == 0)
            continue;
        const sl_opt_t *o = sl_opt_find(tab, s->keys[k]);
        const sl_ynode_t *v = s->items[k];
        if (!o)
            return sl_yerr_at(s->doc->file, s->key_lines[k], err, errlen,
                              "%s source: unknown key '%s'", sc->type->name, s->keys[k]);
        char *joined = NULL;
        if (v->kind != SL_Y_SCALAR) {
            joined = s_join(o, v);
            if (!joined)
                return sl_yerr_at(s->doc->file, s->key_lines[k], err, errlen,
                                  "%s source: expected %s for '%s'", sc->type->name,
                                  o->kinds & SL_OPT_LIST ? "a scalar or a list of scalars" :
                                  o->kinds & SL_OPT_MAP ? "a mapping of scalars" : "a scalar",
                                  s->keys[k]);
        }
        int rc = sl_opt_set(o, sc->opts, joined ? joined : v->value, why, sizeof why);
        free(joined);
        if (rc < 0)
            return sl_yerr(v, err, errlen, "%s source: %s", sc->type->name, why);
        sc->lines[o - tab] = s->key_lines[k];
    }
    for (const sl_opt_t *o = tab; o->name; o++)
        if (o->required && !sc->lines[o - tab])
            return sl_yerr(s, err, errlen, "%s source needs `%s:` (%s)", sc->type->name,
                           o->name, o->help);
    return 0;
}

static int
s_parse_sources(sl_conf_t *c, const sl_ynode_t *list, char *err, size_t errlen)
{
    char names[128];
    sl_source_type_names("|", "|", names, sizeof names);
    if (list->kind != SL_Y_SEQ)
        return sl_yerr(list, err, errlen, "sources: expected a list of {type: %s, ...}", names);
    if (list->n > 16)
        return sl_yerr(list, err, errlen, "sources: at most 16 sources");
    c->sources = sl_xcalloc(list->n + 1, sizeof *c->sources);
    for (size_t i = 0; i < list->n; i++) {
        const sl_ynode_t *s = list->items[i];
        sl_source_conf_t *sc = &c->sources[c->n_sources++];
        sc->line = s->line;
        if (s->kind != SL_Y_MAP)
            return sl_yerr(s, err, errlen, "sources: each entry must be a mapping with a type");
        if (s_parse_source(sc, s, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* `forward:`: a mapping of consumer profile name to its settings. */
static int
s_parse_forward(sl_conf_t *c, const sl_ynode_t *map, const char *base_dir, char *err,
                size_t errlen)
{
    if (sl_ynode_is_null(map))
        return 0;
    if (map->kind != SL_Y_MAP)
        return sl_yerr(map, err, errlen, "forward: expected a mapping of profile name to "
                       "{meters, event_types, drop_fields, admin_only_fields, admin, "
                       "drop_regex, keep_regex, tokens, token_file}");
    c->forwards = sl_xcalloc(map->n + 1, sizeof *c->forwards);
    for (size_t i = 0; i < map->n; i++) {
        if (sl_conf_forward(c, map->keys[i]))
            return sl_yerr_at(map->doc->file, map->key_lines[i], err, errlen,
                              "forward: profile '%s' is defined twice", map->keys[i]);
        sl_forward_t *f = sl_forward_parse(map->keys[i], map->items[i], base_dir, err, errlen);
        if (!f)
            return -1;
        c->forwards[c->n_forwards++] = f;
    }
    return 0;
}

const sl_forward_t *
sl_conf_forward(const sl_conf_t *conf, const char *name)
{
    for (size_t i = 0; name && i < conf->n_forwards; i++)
        if (strcmp(sl_forward_name(conf->forwards[i]), name) == 0)
            return conf->forwards[i];
    return NULL;
}

/* Walks a mapping, setting options named prefix.key; reports unknown keys. */
static int
s_apply_map(sl_conf_t *c, const sl_ynode_t *map, const char *prefix, char *err, size_t errlen)
{
    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->keys[i];
        const sl_ynode_t *v = map->items[i];
        char name[128];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (!*prefix && strcmp(key, "forward") == 0)
            continue;   /* s_parse_forward, once base_dir is known */
        if (!*prefix && strcmp(key, "sources") == 0) {
            if (s_parse_sources(c, v, err, errlen) < 0)
                return -1;
            continue;
        }
        int is_section = 0;
        for (size_t k = 0; k < sizeof s_sections / sizeof *s_sections; k++)
            is_section |= !*prefix && strcmp(key, s_sections[k]) == 0;
        if (is_section) {
            if (v->kind != SL_Y_MAP)
                return sl_yerr(v, err, errlen, "%s: expected a mapping", key);
            if (s_apply_map(c, v, key, err, errlen) < 0)
                return -1;
            continue;
        }
        const sl_opt_t *o = s_find(name);
        if (!o)
            return sl_yerr_at(map->doc->file, map->key_lines[i], err, errlen,
                              "unknown setting '%s' (see sluiced --help-config)", name);
        char *joined = v->kind != SL_Y_SCALAR ? s_join(o, v) : NULL;   /* SL_OPT_LIST */
        if (v->kind != SL_Y_SCALAR && !joined)
            return sl_yerr(v, err, errlen, "%s: expected a single value", name);
        int rc = s_set(c, o, joined ? joined : v->value, map->doc->file, v->line, err, errlen);
        free(joined);
        if (rc < 0)
            return -1;
    }
    return 0;
}

char *
sl_conf_expand(const sl_conf_t *conf, const char *s)
{
    const char *tok = "${run_dir}";
    size_t tl = strlen(tok), rl = strlen(conf->run_dir ? conf->run_dir : "");
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, tok)); p += tl)
        n++;
    char *out = sl_xmalloc(strlen(s) + n * rl + 1), *o = out;
    for (const char *p = s; *p;) {
        if (strncmp(p, tok, tl) == 0) {
            memcpy(o, conf->run_dir, rl);
            o += rl;
            p += tl;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

/* Makes a path option absolute against the config file's directory. */
static void
s_resolve(sl_conf_t *c, char **field, const char *base_dir)
{
    if (!*field || !**field || strcmp(*field, "-") == 0)
        return;
    char *expanded = sl_conf_expand(c, *field);
    free(*field);
    *field = expanded;
    if (base_dir && (*field)[0] != '/') {
        size_t n = strlen(base_dir) + strlen(*field) + 2;
        char *abs = sl_xmalloc(n);
        snprintf(abs, n, "%s/%s", base_dir, *field);
        free(*field);
        *field = abs;
    }
}

int
sl_conf_cpu_count_why(char *why, size_t len)
{
    cpu_set_t set;
    int n = 0;
    char from[64] = "";
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        n = CPU_COUNT(&set);
        snprintf(from, sizeof from, "%d in the CPU affinity mask", n);
    }
    if (n <= 0) {
        n = (int) sysconf(_SC_NPROCESSORS_ONLN);
        snprintf(from, sizeof from, "%d online (no affinity mask)", n);
    }
    char quota_text[96] = "no cgroup v2 CPU quota";
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32];
        unsigned long long period;
        if (fscanf(f, "%31s %llu", quota, &period) == 2 && strcmp(quota, "max") != 0 && period) {
            unsigned long long q = strtoull(quota, NULL, 10);
            int cap = (int) ((q + period - 1) / period);
            snprintf(quota_text, sizeof quota_text, "cgroup v2 cpu.max %llu/%llu = %d CPU%s%s",
                     q, period, cap, cap == 1 ? "" : "s", cap > 0 && cap < n ? ", the cap" : "");
            if (cap > 0 && cap < n)
                n = cap;
        } else {
            snprintf(quota_text, sizeof quota_text, "cgroup v2 cpu.max: no quota");
        }
        fclose(f);
    }
    if (n <= 0)
        n = 1;
    if (why && len)
        snprintf(why, len, "%d usable CPU%s: %s, %s", n, n == 1 ? "" : "s", from, quota_text);
    return n;
}

int
sl_conf_pipeline_nice(const sl_conf_t *c)
{
    if (!c->pipeline_nice_text)
        return 0;                   /* the default */
    if (strcmp(c->pipeline_nice_text, "auto") == 0)
        return c->n_ingest + c->n_pipeline > sl_conf_cpu_count() ? SL_CONF_AUTO_NICE : 0;
    return (int) strtoul(c->pipeline_nice_text, NULL, 10);
}

int
sl_conf_cpu_count(void)
{
    return sl_conf_cpu_count_why(NULL, 0);
}

static int
s_resolve_workers(const char *text, int is_ingest)
{
    if (strcmp(text, "auto") != 0)
        return atoi(text);
    int cpus = sl_conf_cpu_count();
    int n = is_ingest ? (cpus * 3 + 3) / 4 : cpus / 4;
    return n < 1 ? 1 : n;
}

static void
s_defaults(sl_conf_t *c)
{
    char err[256];
    c->origins = sl_xcalloc(N_OPTIONS, sizeof *c->origins);
    for (size_t i = 0; i < N_OPTIONS; i++)
        s_set(c, &s_options[i], s_options[i].def, NULL, 0, err, sizeof err);
}

/* Reads the file a path setting names. A failure is reported where the
 * setting was made (sluice.yaml:LINE, or command line:N for -o; the top of
 * sluice.yaml for a default), naming the file as it was written and, if it
 * does not exist, where it was looked for. */
static char *
s_read_named(const sl_conf_t *c, const char *name, const char *path, size_t *len, char *err,
             size_t errlen)
{
    const sl_opt_t *o = s_find(name);
    const sl_conf_origin_t *at = &c->origins[o - s_options];
    char shown[512], why[1024], hint[768];
    if (at->file)
        snprintf(shown, sizeof shown, "%s", at->text);
    else
        snprintf(shown, sizeof shown, "%s (the default)", o->def);
    char *buf = sl_ydoc_read_file(path, shown, len, why, sizeof why);
    if (buf)
        return buf;
    int e = errno;
    if (e == ENOENT)
        snprintf(hint, sizeof hint, "looked for %s: correct %s or create the file", path, name);
    else if (e == EINVAL)
        snprintf(hint, sizeof hint, "%s must name a regular file", name);
    else if (e == EFBIG)
        snprintf(hint, sizeof hint, "check that %s names the right file", name);
    else
        snprintf(hint, sizeof hint, "check %s and the file's permissions", name);
    sl_yerr_at(at->file ? at->file : c->file, at->file ? at->line : 1, err, errlen,
               "%s: %s (%s)", name, why, hint);
    return NULL;
}

/* Once run_dir is known: a source's paths made absolute, ${run_dir}
 * expanded in its text options, then its type's own check (a file source
 * must be readable), reported at the line of the option it names. */
static int
s_finish_source(sl_conf_t *c, sl_source_conf_t *sc, const char *base_dir, char *err,
                size_t errlen)
{
    const sl_opt_t *tab = sc->type->options;
    /* an amqp source without a broker reads the default transport, as
     * Ceilometer's agent does without messaging_urls */
    if (sc->type == &sl_source_type_amqp && c->transport_url && *c->transport_url) {
        sl_amqp_source_opts_t *a = sc->opts;
        if (!a->url && !a->messaging_urls)
            a->url = sl_xstrdup(c->transport_url);
    }
    for (const sl_opt_t *o = tab; o->name; o++) {
        char **field = (char **) ((char *) sc->opts + o->offset);
        if (o->type == SL_OPT_PATH) {
            s_resolve(c, field, base_dir);
        } else if (o->type == SL_OPT_STR && *field) {
            char *e = sl_conf_expand(c, *field);
            free(*field);
            *field = e;
        }
    }
    const char *at = NULL;
    char why[1024];
    if (sc->type->check && sc->type->check(sc->opts, &at, why, sizeof why) < 0) {
        const sl_opt_t *o = at ? sl_opt_find(tab, at) : NULL;
        int line = o && sc->lines[o - tab] ? sc->lines[o - tab] : sc->line;
        return sl_yerr_at(c->file, line, err, errlen, "%s", why);
    }
    return 0;
}

static size_t
s_digits(unsigned v)
{
    size_t n = 1;
    while (v >= 10)
        v /= 10, n++;
    return n;
}

/* Every ipc:// endpoint is a Unix socket path, which holds at most
 * sizeof sun_path - 1 bytes: the partitions' ipc://<run_dir>/<sink>.<p>
 * (local coordination binds nothing else) and the ipc sources, with the
 * .<k> suffix ingest worker k binds in bind mode. zmq would refuse them
 * only when a worker binds or connects. */
static int
s_check_ipc_paths(const sl_conf_t *c, char *err, size_t errlen)
{
    const size_t max = sizeof ((struct sockaddr_un *) 0)->sun_path - 1;
    size_t run = strlen(c->run_dir);
    if (strcmp(c->coord_backend, "local") == 0) {
        size_t longest = 0;
        unsigned which = 0;
        for (unsigned i = 0; i < sl_conf_n_sinks(c); i++) {
            size_t l = strlen(sl_conf_sink_label(c, i));
            if (l > longest)
                longest = l, which = i;
        }
        size_t need = run + 1 + longest + 1 + s_digits(c->partitions - 1);
        if (need > max) {
            const sl_conf_origin_t *at = &c->origins[s_find("run_dir") - s_options];
            return sl_yerr_at(at->file ? at->file : c->file, at->file ? at->line : 1, err, errlen,
                              "run_dir: ipc://<run_dir>/%s.%u needs a %zu-byte socket path "
                              "(run_dir is %zu bytes), more than the %zu a Unix socket path can "
                              "hold: use a shorter run_dir%s", sl_conf_sink_label(c, which),
                              c->partitions - 1, need, run, max,
                              longest > max / 2 ? " or sink name" : "");
        }
    }
    for (size_t i = 0; i < c->n_sources; i++) {
        const sl_source_conf_t *sc = &c->sources[i];
        if (sc->type != &sl_source_type_zmq)
            continue;
        const sl_zmq_source_opts_t *z = sc->opts;
        if (strncmp(z->endpoint, "ipc://", 6) != 0)
            continue;
        const char *path = z->endpoint + 6;
        int k = c->n_ingest - 1, bind = z->mode == SL_ZMQ_BIND;
        size_t need = strlen(path) + (bind ? 1 + s_digits((unsigned) k) : 0);
        if (need <= max)
            continue;
        int endpoint_line = sc->lines[sl_opt_find(sc->type->options, "endpoint") - sc->type->options];
        char suffix[64] = "";
        if (bind)
            snprintf(suffix, sizeof suffix, " (with the .%d of ingest worker %d)", k, k);
        int in_run = run && strncmp(path, c->run_dir, run) == 0;
        return sl_yerr_at(c->file, endpoint_line, err, errlen, "zmq source: %.80s%s needs a "
                          "%zu-byte socket path%s, more than the %zu a Unix socket path can "
                          "hold: use a shorter %s", z->endpoint,
                          strlen(z->endpoint) > 80 ? "..." : "", need, suffix, max,
                          in_run ? "run_dir" : "path");
    }
    return 0;
}

sl_conf_t *
sl_conf_load(const char *path, const char *const *overrides, size_t n_overrides,
             char *err, size_t errlen)
{
    sl_conf_t *c = sl_xcalloc(1, sizeof *c);
    s_defaults(c);
    sl_ydoc_t *doc = NULL;
    char *base_dir = NULL;
    int embedded = path == NULL;
    if (embedded) {
        size_t len;
        const char *text = sl_conf_embedded("sluice.yaml", &len);
        c->file = sl_xstrdup("<embedded>/sluice.yaml");
        doc = text ? sl_ydoc_parse(text, len, c->file, err, errlen) : NULL;
        if (!text)
            sl_yerr_at(c->file, 0, err, errlen, "no embedded default configuration in this build");
    } else {
        c->file = sl_xstrdup(path);
        doc = sl_ydoc_load(path, err, errlen);
        /* Relative paths inside are relative to the file's real directory,
         * whatever the supervisor's working directory is. */
        char *real = realpath(path, NULL);
        const char *abs = real ? real : c->file;
        char *slash = strrchr(abs, '/');
        if (slash) {
            base_dir = sl_xstrdup(abs);
            base_dir[slash - abs] = '\0';
            if (!*base_dir) {
                free(base_dir);
                base_dir = sl_xstrdup("/");
            }
        } else {
            base_dir = sl_xstrdup(".");
        }
        free(real);
    }
    if (!doc)
        goto fail;
    if (doc->root && doc->root->kind != SL_Y_MAP) {
        sl_yerr(doc->root, err, errlen, "sluice.yaml must be a mapping of settings");
        goto fail;
    }
    if (doc->root && s_apply_map(c, doc->root, "", err, errlen) < 0)
        goto fail;
    if (doc->root && s_parse_forward(c, sl_ynode_get(doc->root, "forward"), base_dir, err,
                                     errlen) < 0)
        goto fail;
    for (size_t i = 0; i < n_overrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        char name[128];
        if (!eq || (size_t) (eq - overrides[i]) >= sizeof name) {
            sl_yerr_at("command line", (int) i + 1, err, errlen,
                       "override '%s' must be key=value", overrides[i]);
            goto fail;
        }
        memcpy(name, overrides[i], (size_t) (eq - overrides[i]));
        name[eq - overrides[i]] = '\0';
        const sl_opt_t *o = s_find(name);
        if (!o) {
            sl_yerr_at("command line", (int) i + 1, err, errlen,
                       "unknown setting '%s' (see sluiced --help-config)", name);
            goto fail;
        }
        if (s_set(c, o, eq + 1, "command line", (int) i + 1, err, errlen) < 0)
            goto fail;
    }
    if (c->n_sources == 0) {
        sl_yerr_at(c->file, 1, err, errlen, "no `sources:` configured: sluice would read nothing");
        goto fail;
    }
    /* run_dir first: other paths may refer to it. */
    s_resolve(c, &c->run_dir, base_dir);
    s_resolve(c, &c->pidfile, base_dir);
    s_resolve(c, &c->log_file, base_dir);
    for (size_t i = 0; i < c->n_sources; i++)
        if (s_finish_source(c, &c->sources[i], base_dir, err, errlen) < 0)
            goto fail;
    s_resolve(c, &c->coord_secret_file, base_dir);
    if (strcmp(c->coord_backend, "local") != 0) {
        if (strncmp(c->coord_backend, "memcached://", 12) != 0 || !c->coord_backend[12]) {
            sl_yerr_at(c->file, 1, err, errlen, "coordination.backend '%s' must be local or "
                       "memcached://HOST:PORT[,HOST:PORT...]", c->coord_backend);
            goto fail;
        }
        if (c->coord_lease_ttl_ms < 3 * c->coord_heartbeat_ms) {
            sl_yerr_at(c->file, 1, err, errlen, "coordination.lease_ttl (%u ms) must be at "
                       "least 3 heartbeats (%u ms)", c->coord_lease_ttl_ms, c->coord_heartbeat_ms);
            goto fail;
        }
        size_t slen = 0;
        char *secret = *c->coord_secret_file
                       ? s_read_named(c, "coordination.secret_file", c->coord_secret_file, &slen,
                                      err, errlen)
                       : NULL;
        if (!secret) {
            if (!*c->coord_secret_file)
                sl_yerr_at(c->file, 1, err, errlen, "coordination.secret_file is required with "
                           "memcached (a file of at least 16 random bytes shared by the group)");
            goto fail;
        }
        while (slen && (secret[slen - 1] == '\n' || secret[slen - 1] == '\r'))
            slen--;
        if (slen < 16) {
            free(secret);
            sl_yerr_at(c->coord_secret_file, 1, err, errlen, "the coordination secret needs at "
                       "least 16 bytes (e.g. head -c 32 /dev/urandom | base64 > FILE)");
            goto fail;
        }
        c->coord_secret = secret;
        c->coord_secret_len = slen;
    }
    c->n_ingest = s_resolve_workers(c->ingest_workers_text, 1);
    c->n_pipeline = s_resolve_workers(c->pipeline_workers_text, 0);
    c->log_level_value = sl_log_level_parse(c->log_level);
    if (c->n_ingest + c->n_pipeline > 128) {
        sl_yerr_at(c->file, 1, err, errlen, "at most 128 workers in all");
        goto fail;
    }
    c->warn.strict = c->strict;
    if (embedded) {
        size_t len;
        const char *text;
        if (*c->event_definitions_path && *c->event_pipeline_path) {
            text = sl_conf_embedded("event_pipeline.yaml", &len);
            c->event_pipeline = text ? sl_pipeline_parse_with(text, len,
                                                              "<embedded>/event_pipeline.yaml",
                                                              "events", NULL, &c->warn, err,
                                                              errlen) : NULL;
            text = c->event_pipeline ? sl_conf_embedded("event_definitions.yaml", &len) : NULL;
            c->events = text ? sl_events_parse(text, len, "<embedded>/event_definitions.yaml",
                                               &c->warn, err, errlen) : NULL;
            if (!c->events)
                goto fail;
        }
        text = sl_conf_embedded("pipeline.yaml", &len);
        c->pipeline = text ? sl_pipeline_parse_with(text, len, "<embedded>/pipeline.yaml",
                                                    "meters", NULL, &c->warn, err, errlen)
                           : NULL;
        if (c->pipeline) {
            text = sl_conf_embedded("meters.yaml", &len);
            c->meters = text ? sl_meters_parse(text, len, "<embedded>/meters.yaml", &c->warn, err,
                                               errlen)
                             : NULL;
        }
        free(c->pipeline_path);
        c->pipeline_path = sl_xstrdup("<embedded>/pipeline.yaml");
        free(c->meters_path);
        c->meters_path = sl_xstrdup("<embedded>/meters.yaml");
    } else {
        s_resolve(c, &c->pipeline_path, base_dir);
        s_resolve(c, &c->meters_path, base_dir);
        s_resolve(c, &c->event_definitions_path, base_dir);
        s_resolve(c, &c->event_pipeline_path, base_dir);
        size_t len;
        char *text = s_read_named(c, "ceilometer.pipeline", c->pipeline_path, &len, err, errlen);
        c->pipeline = text ? sl_pipeline_parse_with(text, len, c->pipeline_path, "meters", NULL,
                                                    &c->warn, err, errlen)
                           : NULL;
        free(text);
        text = c->pipeline ? s_read_named(c, "ceilometer.meters", c->meters_path, &len, err,
                                          errlen) : NULL;
        c->meters = text ? sl_meters_parse(text, len, c->meters_path, &c->warn, err, errlen) : NULL;
        free(text);
        if (c->meters && (*c->event_definitions_path || *c->event_pipeline_path)) {
            if (!*c->event_definitions_path || !*c->event_pipeline_path) {
                sl_yerr_at(c->file, 1, err, errlen, "ceilometer.event_definitions and "
                           "ceilometer.event_pipeline go together: set both, or neither to "
                           "turn events off");
                goto fail;
            }
            text = s_read_named(c, "ceilometer.event_pipeline", c->event_pipeline_path, &len,
                                err, errlen);
            c->event_pipeline = text ? sl_pipeline_parse_with(text, len, c->event_pipeline_path,
                                                              "events", NULL, &c->warn, err,
                                                              errlen) : NULL;
            free(text);
            text = c->event_pipeline ? s_read_named(c, "ceilometer.event_definitions",
                                                    c->event_definitions_path, &len, err, errlen)
                                     : NULL;
            c->events = text ? sl_events_parse(text, len, c->event_definitions_path, &c->warn, err,
                                             errlen)
                             : NULL;
            free(text);
            if (!c->events)
                goto fail;
        }
    }
    if (!c->pipeline || !c->meters)
        goto fail;
    unsigned raw_levels = 0;
    if (s_store_raw_mask(c->store_raw, &raw_levels, err, errlen) < 0)
        goto fail;
    sl_events_set_store_raw(c->events, raw_levels);
    if (sl_conf_n_sinks(c) > SL_MAX_SINKS) {
        sl_yerr_at(c->file, 1, err, errlen, "more than %d sinks in pipeline.yaml and "
                   "event_pipeline.yaml together", SL_MAX_SINKS);
        goto fail;
    }
    c->sink_labels = sl_xcalloc(sl_conf_n_sinks(c) + 1, sizeof *c->sink_labels);
    for (unsigned i = 0; i < sl_conf_n_sinks(c); i++) {
        const char *name = sl_conf_sink(c, i)->name;
        if (sl_conf_sink_is_event(c, i)) {
            c->sink_labels[i] = sl_xmalloc(strlen(name) + 8);
            sprintf(c->sink_labels[i], "events-%s", name);
        } else {
            c->sink_labels[i] = sl_xstrdup(name);
        }
    }
    if (s_check_ipc_paths(c, err, errlen) < 0)
        goto fail;
    sl_ydoc_destroy(&doc);
    free(base_dir);
    return c;
fail:
    sl_ydoc_destroy(&doc);
    free(base_dir);
    sl_conf_destroy(&c);
    return NULL;
}

void
sl_conf_destroy(sl_conf_t **conf_p)
{
    if (!conf_p || !*conf_p)
        return;
    sl_conf_t *c = *conf_p;
    sl_opt_free(s_options, c);
    for (size_t i = 0; i < c->n_sources; i++) {
        sl_source_conf_t *sc = &c->sources[i];
        if (sc->opts)
            sl_opt_free(sc->type->options, sc->opts);
        free(sc->opts);
        free(sc->lines);
    }
    free(c->sources);
    for (size_t i = 0; i < c->n_forwards; i++)
        sl_forward_destroy(&c->forwards[i]);
    free(c->forwards);
    free(c->coord_secret);
    for (size_t i = 0; c->sink_labels && c->sink_labels[i]; i++)
        free(c->sink_labels[i]);
    free(c->sink_labels);
    for (size_t i = 0; c->origins && i < N_OPTIONS; i++) {
        free(c->origins[i].file);
        free(c->origins[i].text);
    }
    free(c->origins);
    sl_pipeline_destroy(&c->pipeline);
    sl_meters_destroy(&c->meters);
    sl_pipeline_destroy(&c->event_pipeline);
    sl_events_destroy(&c->events);
    free(c->file);
    free(c);
    *conf_p = NULL;
}

/* A value as --dump-config writes it: text quoted, the rest as is. */
static void
s_print_value(const sl_opt_t *o, const void *cfg, FILE *out)
{
    char buf[4096];
    sl_opt_format(o, cfg, buf, sizeof buf);
    if (o->type == SL_OPT_STR || o->type == SL_OPT_PATH)
        fprintf(out, "\"%s\"", buf);
    else
        fputs(buf, out);
}

void
sl_conf_dump(const sl_conf_t *c, FILE *out)
{
    fprintf(out, "# effective configuration of %s\n", c->file);
    const char *section = "";
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const sl_opt_t *o = &s_options[i];
        const char *dot = strchr(o->name, '.');
        if (dot) {
            size_t sl = (size_t) (dot - o->name);
            if (strlen(section) != sl || strncmp(section, o->name, sl) != 0) {
                fprintf(out, "%.*s:\n", (int) sl, o->name);
                section = o->name;
            }
            fprintf(out, "  %s: ", dot + 1);
        } else {
            section = "";
            fprintf(out, "%s: ", o->name);
        }
        s_print_value(o, c, out);
        fprintf(out, "    # %s\n", o->help);
    }
    fprintf(out, "# resolved: %d ingest, %d pipeline workers, pipeline_nice %d\n", c->n_ingest,
            c->n_pipeline, sl_conf_pipeline_nice(c));
    fprintf(out, "sources:\n");
    for (size_t i = 0; i < c->n_sources; i++) {
        const sl_source_conf_t *s = &c->sources[i];
        fprintf(out, "  - {type: %s", s->type->name);
        for (const sl_opt_t *o = s->type->options; o->name; o++) {
            if (o->type == SL_OPT_ANY)
                continue;
            fprintf(out, ", %s: ", o->name);
            s_print_value(o, s->opts, out);
        }
        fprintf(out, "}\n");
    }
    if (c->n_forwards)
        fprintf(out, "forward:\n");
    for (size_t i = 0; i < c->n_forwards; i++)
        sl_forward_dump(c->forwards[i], out, "  ");
}

void
sl_conf_help(FILE *out)
{
    fprintf(out, "| setting | default | meaning |\n|---|---|---|\n");
    for (size_t i = 0; i < N_OPTIONS; i++)
        fprintf(out, "| `%s` | `%s` | %s |\n", s_options[i].name,
                *s_options[i].def ? s_options[i].def : "(none)", s_options[i].help);
    fprintf(out, "| `sources` | (required) | list of `{type: amqp, url: rabbit://...}` (RabbitMQ, "
                 "oslo's notification queues; see `sluiced --help-plugins`), `{type: file, path: P, "
                 "rate: R}` (JSON Lines replay, at R notifications/s if given; ingest worker k of N "
                 "reads lines k, k+N, ...) or `{type: zmq, endpoint: E, mode: connect|bind}` (PULL; "
                 "connect: every ingest worker connects to a producer that binds E; bind: worker k "
                 "binds E with port+k or path.k) |\n");
    fprintf(out, "| `forward` | (none) | consumer profiles named by a publisher URL's `forward=NAME`: "
                 "`NAME: {meters: [globs], event_types: [globs], drop_fields: [dotted.paths], "
                 "admin_only_fields: [globs], admin: false, drop_regex: RE, keep_regex: RE, "
                 "tokens: [..], token_file: PATH}` (common/forward.h) |\n");
}

size_t
sl_conf_n_sinks(const sl_conf_t *conf)
{
    return conf->pipeline->n_sinks + (conf->event_pipeline ? conf->event_pipeline->n_sinks : 0);
}

int
sl_conf_sink_is_event(const sl_conf_t *conf, unsigned i)
{
    return i >= conf->pipeline->n_sinks;
}

const sl_sink_t *
sl_conf_sink(const sl_conf_t *conf, unsigned i)
{
    if (i < conf->pipeline->n_sinks)
        return &conf->pipeline->sinks[i];
    return &conf->event_pipeline->sinks[i - conf->pipeline->n_sinks];
}

const char *
sl_conf_sink_label(const sl_conf_t *conf, unsigned i)
{
    return conf->sink_labels[i];
}

static unsigned
s_hwm(uint64_t budget, uint64_t per_message, unsigned floor, unsigned cap)
{
    uint64_t n = per_message ? budget / per_message : cap;
    if (n < floor)
        n = floor;
    return n > cap ? cap : (unsigned) n;
}

uint64_t
sl_conf_kept_limit(const sl_conf_t *conf)
{
    uint64_t share = conf->queue_memory / 2 / (uint64_t) (conf->n_ingest > 0 ? conf->n_ingest : 1);
    uint64_t floor = 4 * conf->batch_max_bytes;
    return share > floor ? share : floor;
}

unsigned
sl_conf_frame_hwm(const sl_conf_t *conf)
{
    return conf->zmq_hwm;
}

unsigned
sl_conf_source_hwm(const sl_conf_t *conf)
{
    return s_hwm(sl_conf_kept_limit(conf), conf->max_message_size, 64, conf->zmq_hwm);
}
