/* publisher — publisher plugins (Ceilometer's publisher URLs).
 *
 * A publisher is one struct of callbacks, found by URL scheme in a compiled-in
 * registry. publish() gets a batch of samples and returns OK, RETRY (a
 * transient failure: the worker core decides whether and when to retry) or
 * ERROR (the batch is lost; counted). Plugins are created in pipeline workers,
 * one per (sink, URL); sl_publisher_check() validates a URL without side
 * effects (for sluiced -t). */
#ifndef SL_PUBLISHER_H
#define SL_PUBLISHER_H

#include <stddef.h>
#include "common/conf.h"
#include "common/sample.h"

typedef enum { SL_PUB_OK = 0, SL_PUB_RETRY, SL_PUB_ERROR } sl_pub_status_t;

typedef struct {
    const char *scheme;
    const char *help;
    /* Parses url; returns a context or NULL with a message. check_only = do
     * not open anything. */
    void *(*init)(const char *url, int check_only, char *err, size_t errlen);
    sl_pub_status_t (*publish)(void *ctx, const sl_sample_t *samples, size_t n,
                               char *err, size_t errlen);
    /* Events, each already serialised as one JSON object (NULL = the
     * publisher takes no events: a config error at load). */
    sl_pub_status_t (*publish_events)(void *ctx, const char *const *json, size_t n,
                                      char *err, size_t errlen);
    void (*destroy)(void **ctx_p);
} sl_publisher_ops_t;

typedef struct sl_publisher {
    const sl_publisher_ops_t *ops;
    void *ctx;
    char *url;
} sl_publisher_t;

/* url after ${run_dir} expansion. NULL with err on an unknown scheme or a bad URL. */
sl_publisher_t *sl_publisher_new(const char *url, char *err, size_t errlen);
int sl_publisher_check(const char *url, char *err, size_t errlen);
sl_pub_status_t sl_publisher_publish(sl_publisher_t *p, const sl_sample_t *s, size_t n,
                                     char *err, size_t errlen);
sl_pub_status_t sl_publisher_publish_events(sl_publisher_t *p, const char *const *json, size_t n,
                                            char *err, size_t errlen);
/* 0 if the URL's publisher can publish events, else -1 with a message. */
int sl_publisher_check_events(const char *url, char *err, size_t errlen);
void sl_publisher_destroy(sl_publisher_t **p_p);

extern const sl_publisher_ops_t sl_publisher_file;

#endif
