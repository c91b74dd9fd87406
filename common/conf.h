/* conf — sluice.yaml: the agent's own settings, and loading of the
 * Ceilometer files it names (pipeline.yaml, meters.yaml).
 *
 * Scalar settings are declared once in an option table (name, type, default,
 * bounds, help, offset) that drives parsing, defaults, validation,
 * `sluiced --dump-config` and the README's configuration reference
 * (`sluiced --help-config`). Unknown keys are errors. Relative paths are
 * resolved against the directory of sluice.yaml; `${run_dir}` in a string
 * setting or a publisher URL is replaced by the run directory.
 * When sluiced runs without -c and /etc/sluice/sluice.yaml does not exist,
 * it uses the defaults compiled in from conf/ (sl_conf_load(NULL, ...)).
 *
 * The loaded configuration is immutable and owned by the caller. It is
 * loaded in the supervisor and inherited by the workers through fork. */
#ifndef SL_CONF_H
#define SL_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "common/events.h"
#include "common/forward.h"
#include "common/meters.h"
#include "common/pipeline.h"
#include "common/source_conf.h"

/* One entry of `sources:`. type and opts are what its source type's option
 * table (common/source_conf.h) made of the mapping: opts points to that
 * type's config struct (sl_file_source_opts_t, sl_zmq_source_opts_t, ...),
 * paths absolute and ${run_dir} expanded; lines[i] is the line of the
 * table's i-th option in sluice.yaml (0: not set); line is the entry's. */
typedef struct {
    const sl_source_type_t *type;
    void *opts;
    int  *lines;
    int   line;
} sl_source_conf_t;

/* Where a setting of the option table was made, for messages: file
 * ("command line" for -o) and line, and the value as written; file NULL
 * for a default. */
typedef struct {
    char *file;
    int   line;
    char *text;
} sl_conf_origin_t;

typedef struct sl_conf {
    char    *file;                  /* "<embedded>" for the built-in default */
    /* Option-table settings (see conf.c s_options). */
    char    *run_dir;
    char    *pidfile;
    char    *ingest_workers_text;   /* "auto" or a number */
    char    *pipeline_workers_text;
    unsigned partitions;
    uint64_t max_message_size;
    unsigned batch_size;
    unsigned batch_timeout_ms;
    unsigned batch_linger_ms;
    unsigned shutdown_grace;        /* seconds */
    unsigned worker_timeout;        /* seconds */
    unsigned respawn_max_backoff;   /* seconds */
    unsigned zmq_hwm;
    uint64_t batch_max_bytes;
    unsigned strict;                /* tolerated problems are errors */
    uint64_t queue_memory;
    unsigned max_unconfirmed;       /* per ingest worker, notifications */
    unsigned cpu_affinity;          /* 0 off, 1 spread (worker.h sl_worker_place) */
    unsigned sample_ids;            /* 0 random, 1 stable (sample.h sl_sample_stable_ids) */
    char    *pipeline_nice_text;    /* "auto" or 0..19 (sl_conf_pipeline_nice) */
    char    *log_level;
    char    *log_file;
    char    *pipeline_path;
    char    *meters_path;
    char    *event_definitions_path;
    char    *event_pipeline_path;
    char    *sample_source;
    char    *store_raw;         /* [event] store_raw: "info,error" (priorities), "" = none */
    char    *transport_url;     /* oslo's [DEFAULT] transport_url: amqp sources and notifier:// without a broker */
    char    *metrics_listen;    /* /metrics and /healthz: HOST:PORT, or off (supervisor/metrics.h) */
    char    *coord_backend;         /* "local" or "memcached://..." */
    char    *coord_group;
    unsigned coord_heartbeat_ms;
    unsigned coord_lease_ttl_ms;
    char    *coord_secret_file;
    char    *coord_advertise;
    unsigned coord_same_host_ipc;
    /* Derived. */
    char    *coord_secret;          /* contents of coord_secret_file (memcached only) */
    size_t   coord_secret_len;
    int      n_ingest, n_pipeline;
    int      log_level_value;
    size_t   n_sources;
    sl_source_conf_t *sources;
    sl_forward_t **forwards;        /* `forward:` profiles (common/forward.h), in file order */
    size_t         n_forwards;
    sl_pipeline_t *pipeline;
    sl_meters_t   *meters;
    sl_pipeline_t *event_pipeline;  /* NULL when events are not configured */
    sl_events_t   *events;
    char         **sink_labels;     /* per unified sink: name, or "events-<name>" */
    sl_conf_origin_t *origins;      /* per option-table entry */
    /* Tolerated problems met while loading (yconf.h): count = warnings
     * given; strict mirrors `strict`. */
    sl_ywarn_t     warn;
} sl_conf_t;

/* Sample sinks and event sinks share one index space (frames, partitions,
 * leases, stats): sample sinks first, then event sinks. */
size_t sl_conf_n_sinks(const sl_conf_t *conf);
const sl_sink_t *sl_conf_sink(const sl_conf_t *conf, unsigned i);
int sl_conf_sink_is_event(const sl_conf_t *conf, unsigned i);
/* Unique label of a sink for endpoints, state files and ring keys. */
const char *sl_conf_sink_label(const sl_conf_t *conf, unsigned i);
/* The `forward:` profile called name (a publisher URL's forward=), or
 * NULL if there is none. */
const sl_forward_t *sl_conf_forward(const sl_conf_t *conf, const char *name);

/* The memory between the workers, bounded in bytes by queue_memory for
 * the whole agent. Every frame in flight is kept by its ingest worker until
 * confirmed, and each ingest worker keeps at most sl_conf_kept_limit bytes
 * (half of queue_memory shared evenly among the ingest workers, but at
 * least 4 x batch_max_bytes, so that many workers still have frames in
 * flight) before its sources pause; what ZeroMQ queues on the sending
 * side shares those bytes (zmq_msg_copy), and a pipeline worker holds at
 * most one copy of each kept frame (in its socket's queue, or decoded and
 * waiting for its publishers). So the partition sockets need no
 * byte-derived high-water mark: sl_conf_frame_hwm is zmq_hwm. A zmq
 * source socket may hold sl_conf_kept_limit / max_message_size
 * notifications (at least 64, at most zmq_hwm). Frames of a sink with a
 * reorder window are outside the share (worker/ingest.c). */
uint64_t sl_conf_kept_limit(const sl_conf_t *conf);
unsigned sl_conf_frame_hwm(const sl_conf_t *conf);
unsigned sl_conf_source_hwm(const sl_conf_t *conf);

/* path NULL = the embedded default. overrides: "key=value" strings (dotted
 * keys, e.g. "workers.ingest=2", "run_dir=/tmp/x"), applied after the file.
 * Returns NULL with "file:line: message" in err. Besides each setting's
 * own checks it refuses, at the line that names them: Ceilometer files
 * that cannot be read (or are not regular files, or exceed
 * SL_YCONF_MAX_FILE), file sources that do not exist or cannot be read,
 * and a run_dir or ipc:// source too long for a Unix socket path. */
sl_conf_t *sl_conf_load(const char *path, const char *const *overrides, size_t n_overrides,
                        char *err, size_t errlen);
void sl_conf_destroy(sl_conf_t **conf_p);

/* Effective settings as YAML (every option, with defaults filled in). */
void sl_conf_dump(const sl_conf_t *conf, FILE *out);
/* The configuration reference (Markdown table) generated from the table. */
void sl_conf_help(FILE *out);
/* CPUs usable by this process: affinity mask capped by the cgroup v2 quota. */
int sl_conf_cpu_count(void);
/* What the pipeline workers add to the nice value sluiced runs at:
 * pipeline_nice (0 when unset), or for auto SL_CONF_AUTO_NICE when the
 * configured workers outnumber the usable CPUs (n_ingest + n_pipeline >
 * sl_conf_cpu_count()), else 0. */
#define SL_CONF_AUTO_NICE 5
int sl_conf_pipeline_nice(const sl_conf_t *c);
/* The same, and why in words into why (affinity mask, cgroup quota). */
int sl_conf_cpu_count_why(char *why, size_t len);
/* Replaces ${run_dir} in s; returns a malloc'd string. */
char *sl_conf_expand(const sl_conf_t *conf, const char *s);

/* Embedded copies of conf/ (generated at build time). */
const char *sl_conf_embedded(const char *name, size_t *len);

#endif
