/* source_conf — what each source type of sluice.yaml's `sources:` accepts:
 * a compiled-in registry of source types, each with its option table
 * (common/opt.h), the size of its config struct and a check of what the
 * table alone cannot say (a file that must exist). common/conf.c fills one
 * struct per configured source from its mapping (sl_source_conf_t.opts);
 * the source plugins (worker/sources/) read it.
 *
 * Adding a source type: one config struct and one option table here, one
 * line in the registry (source_conf.c s_types). Pure; any process. */
#ifndef SL_SOURCE_CONF_H
#define SL_SOURCE_CONF_H

#include <stddef.h>
#include <stdio.h>
#include "common/opt.h"

typedef struct sl_source_type {
    const char     *name;          /* `type:` in sluice.yaml */
    const char     *help;          /* one line for --help-config / --help-plugins */
    const sl_opt_t *options;       /* ended by { NULL }; "type" is not in it */
    size_t          opts_size;     /* sizeof the config struct the table fills */
    /* Checks across options, or against the file system, once paths are
     * resolved (absolute) and ${run_dir} expanded: 0, or -1 with the whole
     * message ("file source: ... (correct `path` ...)") in err and, in *at,
     * the option whose line it belongs to (NULL: the source's line). NULL
     * = nothing to check. */
    int (*check)(const void *opts, const char **at, char *err, size_t errlen);
} sl_source_type_t;

/* type: file — a JSON Lines file replayed (ingest worker k of N reads lines
 * k, k+N, ...). */
typedef struct {
    char  *path;
    double rate;        /* notifications/s over all ingest workers; 0 = as fast as possible */
} sl_file_source_opts_t;

/* type: zmq — a PULL socket. */
enum { SL_ZMQ_CONNECT = 0, SL_ZMQ_BIND = 1 };
typedef struct {
    char    *endpoint;  /* tcp:// or ipc:// */
    unsigned mode;      /* SL_ZMQ_CONNECT: every worker connects; SL_ZMQ_BIND: worker k
                         * binds port+k / path.k */
} sl_zmq_source_opts_t;

/* type: amqp — RabbitMQ, topology as oslo.messaging's notification
 * listener declares it (worker/sources/amqp.c). Lists are kept joined by
 * ','; queue_arguments as "k=v,k2=v2". */
#define SL_AMQP_MAX_BROKERS 8
typedef struct {
    char    *url;               /* one broker: an oslo transport URL (hosts = fail-over) */
    char    *messaging_urls;    /* several independent brokers, instead of url */
    char    *exchanges;
    char    *topics;
    char    *priorities;
    unsigned durable, auto_delete, quorum, ha_queues, passive;
    char    *queue_arguments;
    unsigned prefetch;
    unsigned heartbeat;         /* ms (whole seconds are asked of the broker) */
    unsigned timeout;           /* ms: connect, TLS handshake, each RPC */
    unsigned reconnect_initial, reconnect_max;   /* ms */
    char    *ssl_ca_file, *ssl_cert_file, *ssl_key_file;
    unsigned ssl_verify;
    unsigned ack_on_event_error;
} sl_amqp_source_opts_t;

/* The priorities AMQP notifications may carry, in oslo's order. */
extern const char *const sl_amqp_priority_names[7];

extern const sl_source_type_t sl_source_type_file;
extern const sl_source_type_t sl_source_type_zmq;
extern const sl_source_type_t sl_source_type_amqp;

/* The registry, in the order the documentation lists it. */
const sl_source_type_t *const *sl_source_types(size_t *n);
/* The type named name, or NULL. */
const sl_source_type_t *sl_source_type_find(const char *name);
/* Every source type's option table (sl_opt_help) under a heading, for
 * `sluiced --help-plugins`. */
void sl_source_types_help(FILE *out);
/* "file, zmq" into buf (for messages). */
const char *sl_source_type_names(const char *sep, const char *last_sep, char *buf, size_t len);

#endif
