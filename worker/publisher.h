/* publisher — one publisher instance called directly, without the output
 * layer: a thin compatibility layer over the plugin interface
 * (worker/publishers/publisher.h) for callers that publish synchronously
 * (today's pipeline worker until it hands batches to worker/output.h, and
 * the file publisher's unit test). Nothing here queues or retries: the
 * caller gets the plugin's OK / RETRY / ERROR. A plugin with
 * SL_PUB_F_THREAD may block in these calls. Pipeline workers and tests. */
#ifndef SL_PUBLISHER_H
#define SL_PUBLISHER_H

#include <stddef.h>
#include "common/conf.h"
#include "common/sample.h"
#include "worker/publishers/publisher.h"

typedef struct sl_publisher {
    sl_pub_url_t url_parsed;
    void *ctx;
    const char *url;     /* = url_parsed.url */
} sl_publisher_t;

/* url after ${run_dir} expansion. NULL with err on an unknown scheme or a bad URL. */
sl_publisher_t *sl_publisher_new(const char *url, char *err, size_t errlen);
sl_pub_status_t sl_publisher_publish(sl_publisher_t *p, const sl_sample_t *s, size_t n,
                                     char *err, size_t errlen);
sl_pub_status_t sl_publisher_publish_events(sl_publisher_t *p, const char *const *json, size_t n,
                                            char *err, size_t errlen);
void sl_publisher_destroy(sl_publisher_t **p_p);

#endif
