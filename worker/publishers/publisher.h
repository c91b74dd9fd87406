/* publisher — the publisher plugin interface (Ceilometer's publisher URLs).
 *
 * A publisher is one const struct of callbacks (designated initialisers),
 * found by URL scheme in a compiled-in registry. Its options come from the
 * URL's query string through its option table (common/opt.h) into a struct
 * of opts_size bytes that the core allocates, fills, hands to init() and
 * frees. Besides the plugin's own options, every URL accepts the core's
 * (sl_pub_core_opts: policy, max_queue_length, retry_initial_ms,
 * retry_max_ms, max_retries, dead_letter), which the output layer
 * (worker/output.h) applies: the plugin never sees or retries anything.
 *
 * publish() gets one batch (samples, or events when the plugin has
 * SL_PUB_F_EVENTS) and returns OK, RETRY (transient: the core retries the
 * same batch later with backoff, or drops it by policy) or ERROR (this
 * batch can never be published: the core drops it, dead-letters it,
 * counts it). A plugin with SL_PUB_F_THREAD may block in publish/flush:
 * the output layer calls them on a thread of their own per instance (init
 * and destroy stay on the worker's loop thread). Without it, every
 * callback runs on the loop and must return quickly (local files only).
 * The batch and its strings are valid only during the call.
 *
 * Pipeline workers create the instances (one per sink and URL);
 * sl_publisher_check*() validate a URL without side effects (sluiced -t). */
#ifndef SL_PUBLISHERS_PUBLISHER_H
#define SL_PUBLISHERS_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>
#include "common/opt.h"
#include "common/sample.h"

typedef enum { SL_PUB_OK = 0, SL_PUB_RETRY, SL_PUB_ERROR } sl_pub_status_t;
typedef enum { SL_PUB_SAMPLES = 0, SL_PUB_EVENTS } sl_pub_kind_t;

struct sl_forward;

typedef struct {
    sl_pub_kind_t      kind;
    size_t             n;
    const sl_sample_t *samples;   /* SAMPLES: n samples */
    const char *const *events;    /* EVENTS: n events, each one JSON object (the
                                   * oracle's event format) */
    /* The consumer profile of the URL's forward= option (common/forward.h),
     * or NULL. The records are already selected by it; a plugin that
     * serialises records applies sl_forward_filter() to each. */
    const struct sl_forward *forward;
} sl_pub_batch_t;

#define SL_PUB_F_THREAD 0x1u   /* blocking I/O: publish/flush run on a thread per instance */
#define SL_PUB_F_EVENTS 0x2u   /* takes event batches (event_pipeline.yaml sinks) */
#define SL_PUB_F_INLINE 0x4u   /* cheap and non-blocking (local appends): called inside
                                * sl_output_submit while its queue is empty, on the
                                * caller's samples, without a copy */

typedef struct {
    const char     *name;      /* URL scheme: "file" for file:///path */
    const char     *help;      /* one line for --help-plugins */
    const sl_opt_t *opts;      /* query options (NULL-name terminated); NULL = none */
    size_t          opts_size; /* size of the struct opts fills; 0 = none */
    unsigned        flags;     /* SL_PUB_F_* */
    /* url as configured (after ${run_dir} expansion, query included: the
     * plugin reads its path/host from it), opts already filled and
     * validated. check_only = validate, open nothing. A context, or NULL
     * with a reason in err (the core prefixes "<scheme> publisher '<url>': "). */
    void *(*init)(const char *url, const void *opts, int check_only, char *err,
                  size_t errlen);
    sl_pub_status_t (*publish)(void *ctx, const sl_pub_batch_t *batch, char *err,
                               size_t errlen);
    /* Writes out what the plugin buffers (NULL = it buffers nothing); called
     * when the output layer drains. */
    sl_pub_status_t (*flush)(void *ctx, char *err, size_t errlen);
    void (*destroy)(void **ctx_p);
    /* Optional: the plugin's own counters, for a plugin that keeps serving
     * after publish() returned (websocket): *peers = consumers served now,
     * *lost = records it took and lost since init (a total). Called on the
     * loop thread about once a second while the instance lives: must be
     * thread-safe against the plugin's own threads and must not block. */
    void (*counters)(void *ctx, uint64_t *peers, uint64_t *lost);
} sl_pub_plugin_t;

/* Core options of every publisher URL (Ceilometer's policy and
 * max_queue_length, with its defaults). */
typedef enum { SL_PUB_POLICY_DEFAULT = 0, SL_PUB_POLICY_QUEUE, SL_PUB_POLICY_DROP } sl_pub_policy_t;
/* When a batch counts as done for its source (worker/output.h): auto =
 * queued under policy=queue|drop, delivered under policy=default. */
typedef enum { SL_PUB_CONFIRM_AUTO = 0, SL_PUB_CONFIRM_QUEUED, SL_PUB_CONFIRM_DELIVERED } sl_pub_confirm_t;

typedef struct {
    unsigned policy;            /* sl_pub_policy_t */
    unsigned max_queue_length;  /* batches */
    unsigned confirm;           /* sl_pub_confirm_t */
    unsigned retry_initial_ms, retry_max_ms;
    unsigned max_retries;       /* 0 = no limit */
    char    *dead_letter;       /* directory, or NULL */
    char    *forward;           /* consumer profile name (sluice.yaml forward:), or NULL */
} sl_pub_core_opts_t;

extern const sl_opt_t sl_pub_core_opts[];

/* The compiled-in plugins (file; test and testloop with -Dtest_publisher). */
const sl_pub_plugin_t *const *sl_publisher_registry(size_t *n);
/* The plugin of url's scheme, or NULL with "publisher scheme 'x' is not
 * supported yet (supported: ...)". */
const sl_pub_plugin_t *sl_publisher_find(const char *url, char *err, size_t errlen);

/* A parsed publisher URL. */
typedef struct {
    const sl_pub_plugin_t *plugin;
    char                  *url;     /* as given */
    char                  *label;   /* scheme://path without the query (logs, counters) */
    sl_pub_core_opts_t     core;
    void                  *opts;    /* plugin->opts_size bytes (NULL if 0) */
} sl_pub_url_t;

/* Finds the plugin and fills core and plugin options from the query
 * (unknown keys are errors naming the known ones). 0, or -1 with
 * "<scheme> publisher '<url>': ..." in err; sl_pub_url_free either way. */
int sl_pub_url_parse(sl_pub_url_t *u, const char *url, char *err, size_t errlen);
/* plugin->init with the parsed options; NULL with the prefixed reason. */
void *sl_pub_url_init(const sl_pub_url_t *u, int check_only, char *err, size_t errlen);
void sl_pub_url_free(sl_pub_url_t *u);

/* sluiced -t: the URL parses and its plugin's init(check_only) accepts it;
 * _events also requires SL_PUB_F_EVENTS. 0, or -1 with a message. */
int sl_publisher_check(const char *url, char *err, size_t errlen);
int sl_publisher_check_events(const char *url, char *err, size_t errlen);

extern const sl_pub_plugin_t sl_pub_file;
extern const sl_pub_plugin_t sl_pub_http, sl_pub_https, sl_pub_zaqar;
extern const sl_pub_plugin_t sl_pub_udp, sl_pub_tcp, sl_pub_prometheus,
    sl_pub_opentelemetryhttp;
extern const sl_pub_plugin_t sl_pub_websocket;
extern const sl_pub_plugin_t sl_pub_gnocchi;
#ifdef SL_TEST_PUBLISHER
extern const sl_pub_plugin_t sl_pub_test, sl_pub_testloop;
#endif

#endif
