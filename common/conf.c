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
#include "common/yconf.h"

typedef enum { OPT_STR, OPT_PATH, OPT_UINT, OPT_SIZE, OPT_WORKERS, OPT_LEVEL, OPT_BOOL } s_opt_type_t;

typedef struct {
    const char  *name;      /* dotted path in sluice.yaml */
    s_opt_type_t type;
    size_t       offset;
    const char  *def;
    uint64_t     min, max;
    const char  *help;
} s_option_t;

#define OFF(f) offsetof(sl_conf_t, f)

static const s_option_t s_options[] = {
    { "run_dir", OPT_PATH, OFF(run_dir), "/run/sluice", 0, 0,
      "directory for the pidfile, ipc:// sockets and the shared-memory name" },
    { "pidfile", OPT_PATH, OFF(pidfile), "${run_dir}/sluiced.pid", 0, 0,
      "pidfile written by the supervisor" },
    { "workers.ingest", OPT_WORKERS, OFF(ingest_workers_text), "auto", 1, 64,
      "ingest worker processes, or auto (3/4 of the usable CPUs, at least 1)" },
    { "workers.pipeline", OPT_WORKERS, OFF(pipeline_workers_text), "auto", 1, 64,
      "pipeline worker processes, or auto (1/4 of the usable CPUs, at least 1)" },
    { "partitions", OPT_UINT, OFF(partitions), "16", 1, 4096,
      "partitions per sink; samples of one group always reach one partition" },
    { "max_message_size", OPT_SIZE, OFF(max_message_size), "1048576", 256, 1ULL << 30,
      "larger notifications are counted and dropped (bytes)" },
    { "batch_size", OPT_UINT, OFF(batch_size), "64", 1, 65536,
      "samples per wire frame" },
    { "batch_timeout_ms", OPT_UINT, OFF(batch_timeout_ms), "20", 1, 60000,
      "a partly filled frame is sent after this long" },
    { "shutdown_grace", OPT_UINT, OFF(shutdown_grace), "30", 1, 3600,
      "seconds a graceful stop may take before workers are killed" },
    { "worker_timeout", OPT_UINT, OFF(worker_timeout), "60", 2, 86400,
      "seconds without a heartbeat before the supervisor kills a worker" },
    { "respawn_max_backoff", OPT_UINT, OFF(respawn_max_backoff), "30", 1, 3600,
      "cap of the exponential respawn backoff (seconds)" },
    { "zmq_hwm", OPT_UINT, OFF(zmq_hwm), "1000", 10, 1000000,
      "upper cap of the ZeroMQ high-water marks (messages per socket); queue_memory usually "
      "sets lower ones" },
    { "batch_max_bytes", OPT_SIZE, OFF(batch_max_bytes), "262144", 4096, 64ULL << 20,
      "a wire frame is also sent once it holds this many bytes (bounds every frame)" },
    { "queue_memory", OPT_SIZE, OFF(queue_memory), "64M", 1ULL << 20, 64ULL << 30,
      "bytes of frames one worker may hold queued in ZeroMQ; the high-water marks are derived "
      "from it, and when it is reached the sources pause (back-pressure)" },
    { "strict", OPT_BOOL, OFF(strict), "false", 0, 1,
      "true: what Ceilometer tolerates in its files (keys it ignores, definitions it skips, "
      "transformer parameters it never reads) is an error, not a warning (sluiced --strict)" },
    { "logging.level", OPT_LEVEL, OFF(log_level), "info", 0, 0,
      "error, warn, info or debug" },
    { "logging.file", OPT_PATH, OFF(log_file), "-", 0, 0,
      "log file (- = stderr); reopened on SIGUSR1" },
    { "ceilometer.pipeline", OPT_PATH, OFF(pipeline_path), "pipeline.yaml", 0, 0,
      "Ceilometer pipeline.yaml (sources -> sinks -> publishers)" },
    { "ceilometer.meters", OPT_PATH, OFF(meters_path), "meters.yaml", 0, 0,
      "Ceilometer meters.yaml (notification -> samples)" },
    { "ceilometer.event_definitions", OPT_PATH, OFF(event_definitions_path), "", 0, 0,
      "Ceilometer event_definitions.yaml (notification -> events); events are off when unset" },
    { "ceilometer.event_pipeline", OPT_PATH, OFF(event_pipeline_path), "", 0, 0,
      "Ceilometer event_pipeline.yaml (event sources -> sinks -> publishers); needed with "
      "event_definitions" },
    { "sample_source", OPT_STR, OFF(sample_source), "openstack", 0, 0,
      "the `source` of samples (Ceilometer's [DEFAULT] sample_source)" },
    { "coordination.backend", OPT_STR, OFF(coord_backend), "local", 0, 0,
      "local (shared memory, one host) or memcached://HOST:PORT[,HOST:PORT...] (several hosts)" },
    { "coordination.group", OPT_STR, OFF(coord_group), "sluice", 0, 0,
      "group name: agents with the same group and servers share the partitions" },
    { "coordination.heartbeat", OPT_UINT, OFF(coord_heartbeat_ms), "1000", 50, 60000,
      "ms between membership heartbeats and lease renewals" },
    { "coordination.lease_ttl", OPT_UINT, OFF(coord_lease_ttl_ms), "5000", 200, 600000,
      "ms a lease or member record lives without renewal (keep it >= 3 heartbeats)" },
    { "coordination.secret_file", OPT_PATH, OFF(coord_secret_file), "", 0, 0,
      "file with the group's shared secret (>= 16 bytes) keying the records' HMAC" },
    { "coordination.advertise", OPT_STR, OFF(coord_advertise), "127.0.0.1", 0, 0,
      "address other hosts reach this host's pipeline workers at (tcp endpoints)" },
    { "coordination.same_host_ipc", OPT_UINT, OFF(coord_same_host_ipc), "1", 0, 1,
      "1: agents on one host reach each other over ipc://, 0: always tcp" },
};
#define N_OPTIONS (sizeof s_options / sizeof s_options[0])

/* Sections whose keys are all options (so unknown keys can be reported). */
static const char *s_sections[] = { "workers", "logging", "ceilometer", "coordination" };

static char **
s_field(sl_conf_t *c, const s_option_t *o)
{
    return (char **) ((char *) c + o->offset);
}

static int
s_parse_uint(const char *v, uint64_t *out)
{
    if (!v || !*v || !isdigit((unsigned char) *v))
        return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno)
        return -1;
    uint64_t mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mult = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mult = 1024 * 1024 * 1024, end++;
    if (*end == 'i' || *end == 'b' || *end == 'B')
        end++;
    if (*end)
        return -1;
    *out = (uint64_t) x * mult;
    return 0;
}

/* Sets one option from text; file/line for the message. */
static int
s_set_value(sl_conf_t *c, const s_option_t *o, const char *v, const char *file, int line,
            char *err, size_t errlen)
{
    uint64_t x = 0;
    switch (o->type) {
    case OPT_STR:
    case OPT_PATH:
        free(*s_field(c, o));
        *s_field(c, o) = sl_xstrdup(v);
        return 0;
    case OPT_LEVEL:
        if (sl_log_level_parse(v) < 0)
            return sl_yerr_at(file, line, err, errlen,
                              "%s: '%s' is not a log level (use error, warn, info or debug)",
                              o->name, v);
        free(*s_field(c, o));
        *s_field(c, o) = sl_xstrdup(v);
        return 0;
    case OPT_WORKERS:
        if (strcmp(v, "auto") != 0 &&
            (s_parse_uint(v, &x) < 0 || x < o->min || x > o->max))
            return sl_yerr_at(file, line, err, errlen,
                              "%s: '%s' must be auto or a number from %" PRIu64 " to %" PRIu64,
                              o->name, v, o->min, o->max);
        free(*s_field(c, o));
        *s_field(c, o) = sl_xstrdup(v);
        return 0;
    case OPT_BOOL:
        if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") ||
            !strcmp(v, "1"))
            *(unsigned *) ((char *) c + o->offset) = 1;
        else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") ||
                 !strcmp(v, "0"))
            *(unsigned *) ((char *) c + o->offset) = 0;
        else
            return sl_yerr_at(file, line, err, errlen, "%s: '%s' is not a boolean (use true "
                              "or false)", o->name, v);
        return 0;
    case OPT_UINT:
    case OPT_SIZE:
        if (s_parse_uint(v, &x) < 0 || (o->type == OPT_UINT && strpbrk(v, "kKmMgG")))
            return sl_yerr_at(file, line, err, errlen, "%s: '%s' is not a %s", o->name, v,
                              o->type == OPT_SIZE ? "size (e.g. 1048576 or 1M)" : "whole number");
        if (x < o->min || x > o->max)
            return sl_yerr_at(file, line, err, errlen,
                              "%s: %" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "]",
                              o->name, x, o->min, o->max);
        if (o->type == OPT_SIZE)
            *(uint64_t *) ((char *) c + o->offset) = x;
        else
            *(unsigned *) ((char *) c + o->offset) = (unsigned) x;
        return 0;
    }
    return -1;
}

/* s_set_value, remembering where the value came from (file NULL: a
 * default, which has no place). */
static int
s_set(sl_conf_t *c, const s_option_t *o, const char *v, const char *file, int line,
      char *err, size_t errlen)
{
    if (s_set_value(c, o, v, file, line, err, errlen) < 0)
        return -1;
    sl_conf_origin_t *at = &c->origins[o - s_options];
    free(at->file);
    free(at->text);
    at->file = file ? sl_xstrdup(file) : NULL;
    at->text = file ? sl_xstrdup(v) : NULL;
    at->line = line;
    return 0;
}

static const s_option_t *
s_find(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(s_options[i].name, name) == 0)
            return &s_options[i];
    return NULL;
}

static int
s_parse_sources(sl_conf_t *c, const sl_ynode_t *list, char *err, size_t errlen)
{
    if (list->kind != SL_Y_SEQ)
        return sl_yerr(list, err, errlen, "sources: expected a list of {type: file|zmq, ...}");
    if (list->n > 16)
        return sl_yerr(list, err, errlen, "sources: at most 16 sources");
    c->sources = sl_xcalloc(list->n + 1, sizeof *c->sources);
    for (size_t i = 0; i < list->n; i++) {
        const sl_ynode_t *s = list->items[i];
        sl_source_conf_t *sc = &c->sources[c->n_sources++];
        sc->line = s->line;
        if (s->kind != SL_Y_MAP)
            return sl_yerr(s, err, errlen, "sources: each entry must be a mapping with a type");
        const sl_ynode_t *type = sl_ynode_get(s, "type");
        if (!type || type->kind != SL_Y_SCALAR)
            return sl_yerr(s, err, errlen, "source needs `type: file` or `type: zmq`");
        static const char *file_keys[] = { "type", "path", "rate", NULL };
        static const char *zmq_keys[] = { "type", "endpoint", "mode", NULL };
        const char **keys;
        if (strcmp(type->value, "file") == 0) {
            sc->kind = SL_SOURCE_FILE;
            keys = file_keys;
        } else if (strcmp(type->value, "zmq") == 0) {
            sc->kind = SL_SOURCE_ZMQ;
            keys = zmq_keys;
        } else {
            return sl_yerr(type, err, errlen,
                           "unknown source type '%s' (known: file, zmq)", type->value);
        }
        for (size_t k = 0; k < s->n; k++) {
            int ok = 0;
            for (const char **kk = keys; *kk && !ok; kk++)
                ok = strcmp(*kk, s->keys[k]) == 0;
            if (!ok || s->items[k]->kind != SL_Y_SCALAR)
                return sl_yerr_at(s->doc->file, s->key_lines[k], err, errlen,
                                  "%s source: %s key '%s'", type->value,
                                  ok ? "expected a scalar for" : "unknown", s->keys[k]);
        }
        const sl_ynode_t *path = sl_ynode_get(s, "path");
        const sl_ynode_t *ep = sl_ynode_get(s, "endpoint");
        const sl_ynode_t *mode = sl_ynode_get(s, "mode");
        for (size_t k = 0; k < s->n; k++) {
            if (strcmp(s->keys[k], "path") == 0)
                sc->path_line = s->key_lines[k];
            else if (strcmp(s->keys[k], "endpoint") == 0)
                sc->endpoint_line = s->key_lines[k];
        }
        if (sc->kind == SL_SOURCE_FILE) {
            if (!path)
                return sl_yerr(s, err, errlen, "file source needs `path:`");
            sc->path = sl_xstrdup(path->value);
            const sl_ynode_t *rate = sl_ynode_get(s, "rate");
            if (rate) {
                char *end = NULL;
                sc->rate = strtod(rate->value, &end);
                if (!*rate->value || *end || !(sc->rate > 0) || sc->rate > 1e9)
                    return sl_yerr(rate, err, errlen, "file source rate '%s' must be a number of "
                                   "notifications per second above 0", rate->value);
            }
        } else {
            if (!ep)
                return sl_yerr(s, err, errlen, "zmq source needs `endpoint:` (e.g. tcp://127.0.0.1:5557)");
            if (strncmp(ep->value, "tcp://", 6) && strncmp(ep->value, "ipc://", 6))
                return sl_yerr(ep, err, errlen, "zmq endpoint '%s' must be tcp:// or ipc://", ep->value);
            sc->endpoint = sl_xstrdup(ep->value);
            if (mode && strcmp(mode->value, "bind") == 0)
                sc->bind = 1;
            else if (mode && strcmp(mode->value, "connect") != 0)
                return sl_yerr(mode, err, errlen, "zmq mode '%s' must be connect or bind", mode->value);
        }
    }
    return 0;
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
        const s_option_t *o = s_find(name);
        if (!o)
            return sl_yerr_at(map->doc->file, map->key_lines[i], err, errlen,
                              "unknown setting '%s' (see sluiced --help-config)", name);
        if (v->kind != SL_Y_SCALAR)
            return sl_yerr(v, err, errlen, "%s: expected a single value", name);
        if (s_set(c, o, v->value, map->doc->file, v->line, err, errlen) < 0)
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
sl_conf_cpu_count(void)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = (int) sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32];
        unsigned long long period;
        if (fscanf(f, "%31s %llu", quota, &period) == 2 && strcmp(quota, "max") != 0 && period) {
            unsigned long long q = strtoull(quota, NULL, 10);
            int cap = (int) ((q + period - 1) / period);
            if (cap > 0 && cap < n)
                n = cap;
        }
        fclose(f);
    }
    return n > 0 ? n : 1;
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
    char err[64];
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
    const s_option_t *o = s_find(name);
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

/* A file source that cannot be read would stop every ingest worker at
 * start; say so at load, at its `path:` line. */
static int
s_check_file_source(const sl_conf_t *c, const sl_source_conf_t *sc, char *err, size_t errlen)
{
    struct stat st;
    if (stat(sc->path, &st) < 0) {
        if (errno == ENOENT)
            return sl_yerr_at(c->file, sc->path_line, err, errlen, "file source: %s does not "
                              "exist (correct `path` or create the file)", sc->path);
        return sl_yerr_at(c->file, sc->path_line, err, errlen, "file source: cannot access %s: "
                          "%s (correct `path` or its directory's permissions)", sc->path,
                          strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return sl_yerr_at(c->file, sc->path_line, err, errlen, "file source: %s is a directory "
                          "(`path` must name a JSON Lines file)", sc->path);
    if (access(sc->path, R_OK) < 0)
        return sl_yerr_at(c->file, sc->path_line, err, errlen, "file source: %s is not "
                          "readable: %s (give sluiced read access, or correct `path`)", sc->path,
                          strerror(errno));
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
        if (sc->kind != SL_SOURCE_ZMQ || strncmp(sc->endpoint, "ipc://", 6) != 0)
            continue;
        const char *path = sc->endpoint + 6;
        int k = c->n_ingest - 1;
        size_t need = strlen(path) + (sc->bind ? 1 + s_digits((unsigned) k) : 0);
        if (need <= max)
            continue;
        char suffix[64] = "";
        if (sc->bind)
            snprintf(suffix, sizeof suffix, " (with the .%d of ingest worker %d)", k, k);
        int in_run = run && strncmp(path, c->run_dir, run) == 0;
        return sl_yerr_at(c->file, sc->endpoint_line, err, errlen, "zmq source: %.80s%s needs a "
                          "%zu-byte socket path%s, more than the %zu a Unix socket path can "
                          "hold: use a shorter %s", sc->endpoint,
                          strlen(sc->endpoint) > 80 ? "..." : "", need, suffix, max,
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
        const s_option_t *o = s_find(name);
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
    for (size_t i = 0; i < c->n_sources; i++) {
        s_resolve(c, &c->sources[i].path, base_dir);
        if (c->sources[i].endpoint) {
            char *e = sl_conf_expand(c, c->sources[i].endpoint);
            free(c->sources[i].endpoint);
            c->sources[i].endpoint = e;
        }
        if (c->sources[i].kind == SL_SOURCE_FILE &&
            s_check_file_source(c, &c->sources[i], err, errlen) < 0)
            goto fail;
    }
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
            c->event_pipeline = text ? sl_pipeline_parse(text, len, "<embedded>/event_pipeline.yaml",
                                                         "events", &c->warn, err, errlen) : NULL;
            text = c->event_pipeline ? sl_conf_embedded("event_definitions.yaml", &len) : NULL;
            c->events = text ? sl_events_parse(text, len, "<embedded>/event_definitions.yaml",
                                               &c->warn, err, errlen) : NULL;
            if (!c->events)
                goto fail;
        }
        text = sl_conf_embedded("pipeline.yaml", &len);
        c->pipeline = text ? sl_pipeline_parse(text, len, "<embedded>/pipeline.yaml", "meters",
                                               &c->warn, err, errlen) : NULL;
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
        c->pipeline = text ? sl_pipeline_parse(text, len, c->pipeline_path, "meters", &c->warn, err,
                                             errlen)
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
            c->event_pipeline = text ? sl_pipeline_parse(text, len, c->event_pipeline_path,
                                                         "events", &c->warn, err, errlen) : NULL;
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
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (s_options[i].type != OPT_UINT && s_options[i].type != OPT_SIZE &&
            s_options[i].type != OPT_BOOL)
            free(*s_field(c, &s_options[i]));
    for (size_t i = 0; i < c->n_sources; i++) {
        free(c->sources[i].path);
        free(c->sources[i].endpoint);
    }
    free(c->sources);
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

static void
s_print_value(const sl_conf_t *c, const s_option_t *o, FILE *out)
{
    if (o->type == OPT_UINT)
        fprintf(out, "%u", *(const unsigned *) ((const char *) c + o->offset));
    else if (o->type == OPT_BOOL)
        fprintf(out, "%s", *(const unsigned *) ((const char *) c + o->offset) ? "true" : "false");
    else if (o->type == OPT_SIZE)
        fprintf(out, "%" PRIu64, *(const uint64_t *) ((const char *) c + o->offset));
    else
        fprintf(out, "\"%s\"", *(char *const *) ((const char *) c + o->offset));
}

void
sl_conf_dump(const sl_conf_t *c, FILE *out)
{
    fprintf(out, "# effective configuration of %s\n", c->file);
    const char *section = "";
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const s_option_t *o = &s_options[i];
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
        s_print_value(c, o, out);
        fprintf(out, "    # %s\n", o->help);
    }
    fprintf(out, "# resolved: %d ingest, %d pipeline workers\n", c->n_ingest, c->n_pipeline);
    fprintf(out, "sources:\n");
    for (size_t i = 0; i < c->n_sources; i++) {
        const sl_source_conf_t *s = &c->sources[i];
        if (s->kind == SL_SOURCE_FILE)
            fprintf(out, "  - {type: file, path: \"%s\", rate: %g}\n", s->path, s->rate);
        else
            fprintf(out, "  - {type: zmq, endpoint: \"%s\", mode: %s}\n", s->endpoint,
                    s->bind ? "bind" : "connect");
    }
}

void
sl_conf_help(FILE *out)
{
    fprintf(out, "| setting | default | meaning |\n|---|---|---|\n");
    for (size_t i = 0; i < N_OPTIONS; i++)
        fprintf(out, "| `%s` | `%s` | %s |\n", s_options[i].name,
                *s_options[i].def ? s_options[i].def : "(none)", s_options[i].help);
    fprintf(out, "| `sources` | (required) | list of `{type: file, path: P, rate: R}` (JSON Lines replay, "
                 "at R notifications/s if given; ingest worker k of N reads lines k, k+N, ...) or `{type: zmq, endpoint: E, "
                 "mode: connect|bind}` (PULL; connect: every ingest worker connects to a "
                 "producer that binds E; bind: worker k binds E with port+k or path.k) |\n");
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

unsigned
sl_conf_frame_hwm(const sl_conf_t *conf)
{
    uint64_t sockets = (uint64_t) sl_conf_n_sinks(conf) * conf->partitions;
    return s_hwm(conf->queue_memory, (sockets ? sockets : 1) * conf->batch_max_bytes, 1,
                 conf->zmq_hwm);
}

unsigned
sl_conf_source_hwm(const sl_conf_t *conf)
{
    return s_hwm(conf->queue_memory, conf->max_message_size, 4, conf->zmq_hwm);
}
