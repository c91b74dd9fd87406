/* source — source plugins of the ingest worker (zmq, file; amqp next).
 *
 * A plugin is one struct of callbacks. The ingest worker (the core) creates
 * one instance per configured source, calls init(), then polls what the
 * instance asked to be watched (sl_source_watch_*) on its event loop and
 * calls read() with a budget when a watch is ready. read() hands each
 * notification to sl_source_deliver() with a delivery token of the
 * plugin's choosing (a line number, a broker delivery tag). The core
 * decodes, converts and routes the notification and later calls ack(token)
 * once every sample and event it produced has been delivered (published,
 * absorbed by a transformer, or deliberately dropped and counted), or
 * nack(token) when it will not be (a stop before confirmation). For a
 * plugin with SL_SOURCE_F_ORDERED, acks come in the order of delivery
 * (a file position, AMQP's `multiple` acks); every token is acked or
 * nacked exactly once before destroy(), except after a fast stop.
 *
 * Back-pressure: while the core cannot take more (frames waiting for a
 * full socket, or max_unconfirmed notifications unconfirmed), it stops
 * polling the source's watches and src->paused is set: read() must return
 * as soon as it sees src->paused (sl_source_deliver sets it). pause() and
 * resume() (optional) tell the plugin, e.g. to stop a broker's flow.
 *
 * drain(): the worker is stopping: stop taking new input from outside and
 * deliver what is already buffered locally (read() is still called while
 * drain returns 1). Ingest workers only. */
#ifndef SL_SOURCE_H
#define SL_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include "common/conf.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/stats.h"

#define SL_SOURCE_F_ACKS    1   /* the plugin acts on ack/nack (at-least-once) */
#define SL_SOURCE_F_ORDERED 2   /* acks must come in delivery order */
#define SL_SOURCE_F_REQUEUE 4   /* nack(token) while running gives the notification back to
                                 * its origin to deliver again (a broker's requeue): used
                                 * when a publisher gave up on it for a reason that may heal */

#define SL_SOURCE_MAX_WATCHES 8

typedef struct sl_source sl_source_inst_t;

typedef struct {
    const char *name;                   /* `type:` in sluice.yaml */
    unsigned    flags;
    /* Opens what the source reads and asks for its watches; -1 with a
     * message that says what to do. */
    int    (*init)(sl_source_inst_t *src, char *err, size_t errlen);
    /* Delivers up to budget notifications (fewer if src->paused becomes
     * set); returns how many it took from its input. */
    size_t (*read)(sl_source_inst_t *src, size_t budget);
    void   (*pause)(sl_source_inst_t *src);
    void   (*resume)(sl_source_inst_t *src);
    void   (*ack)(sl_source_inst_t *src, uint64_t token);
    void   (*nack)(sl_source_inst_t *src, uint64_t token);
    /* Stopping: 1 while something buffered remains to be read, else 0. */
    int    (*drain)(sl_source_inst_t *src);
    /* The stop is over: what to keep for the next start (file position). */
    void   (*destroy)(sl_source_inst_t *src);
} sl_source_plugin_t;

/* What the core gives a source instance. */
typedef struct {
    const sl_conf_t        *conf;
    const sl_source_conf_t *sc;
    size_t      index;            /* position in sluice.yaml's sources */
    int         worker;           /* this ingest worker's index ... */
    int         n_workers;        /* ... of this many */
    sl_loop_t  *loop;
    sl_slot_t  *slot;             /* counters */
    void       *zctx;             /* the worker's ZeroMQ context */
    struct sl_zmon *zmon;         /* its socket monitor (common/zmon.h); may be NULL */
    sl_ratelimit_t *rl;           /* for warnings */
    uint64_t    stop_id;          /* the same in every worker of this generation of this
                                   * agent, different in any other (a stop barrier's name) */
    /* The core's entry point, called through sl_source_deliver(). */
    void      (*deliver)(void *core, sl_source_inst_t *src, uint64_t token, const char *buf, size_t len);
    void      (*idle)(void *core);
    void       *core;
} sl_source_env_t;

struct sl_source {
    const sl_source_plugin_t *plugin;
    sl_source_env_t env;
    void   *ctx;                  /* the plugin's */
    int     paused;               /* the core takes no more for now */
    int     done;                 /* nothing more will come (end of a file) */
    sl_loop_watch_t *watch[SL_SOURCE_MAX_WATCHES];
    int     watch_events[SL_SOURCE_MAX_WATCHES];  /* what the plugin wants */
    size_t  n_watch;
    sl_loop_timer_t *wake;        /* sl_source_wait */
    sl_loop_timer_t *more;        /* sl_source_more */
    int     more_wanted;
    /* Set by the plugin: */
    int     redelivered;          /* the notification being delivered came before (a broker's
                                   * redelivered flag) */
    int     requeue_event_errors; /* nack (requeue) a notification whose event conversion failed,
                                   * unless redelivered (Ceilometer's ack_on_event_error=false) */
};

/* For plugins. */
void sl_source_deliver(sl_source_inst_t *src, uint64_t token, const char *buf, size_t len);
/* Asks the core to poll sock/fd for events (SL_LOOP_IN) and call read(). */
int sl_source_watch_zmq(sl_source_inst_t *src, void *sock, int events);
int sl_source_watch_fd(sl_source_inst_t *src, int fd, int events);
/* Not ready for ms milliseconds (a rate limit); SL_SOURCE_FOREVER = done:
 * nothing more will come (src->done) until sl_source_wake. */
#define SL_SOURCE_FOREVER 0xffffffffu
void sl_source_wait(sl_source_inst_t *src, unsigned ms);
void sl_source_wake(sl_source_inst_t *src);
/* The plugin has nothing more right now and what it delivered waits for
 * confirmation before more comes (a broker's prefetch window): the core
 * sends its partly filled frames now instead of after batch_timeout_ms. */
void sl_source_idle(sl_source_inst_t *src);
/* read() left input buffered where no watch sees it (in a library):
 * call read() again at the next loop iteration, or once unpaused. */
void sl_source_more(sl_source_inst_t *src);
/* Stops polling the plugin's watches for good (a closed socket). */
void sl_source_unwatch_all(sl_source_inst_t *src);

/* For the core. */
void sl_source_set_paused(sl_source_inst_t *src, int paused);
/* Unwatches and destroys the instance. */
void sl_source_close(sl_source_inst_t *src);

/* The registry. */
const sl_source_plugin_t *sl_source_plugin(const char *name);
extern const sl_source_plugin_t sl_source_zmq;
extern const sl_source_plugin_t sl_source_file;
extern const sl_source_plugin_t sl_source_amqp;

#endif
