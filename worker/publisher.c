#include "worker/publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

sl_publisher_t *
sl_publisher_new(const char *url, char *err, size_t errlen)
{
    sl_publisher_t *p = sl_xcalloc(1, sizeof *p);
    if (sl_pub_url_parse(&p->url_parsed, url, err, errlen) < 0 ||
        !(p->ctx = sl_pub_url_init(&p->url_parsed, 0, err, errlen))) {
        sl_pub_url_free(&p->url_parsed);
        free(p);
        return NULL;
    }
    p->url = p->url_parsed.url;
    return p;
}

sl_pub_status_t
sl_publisher_publish(sl_publisher_t *p, const sl_sample_t *s, size_t n, char *err, size_t errlen)
{
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = n, .samples = s };
    return p->url_parsed.plugin->publish(p->ctx, &b, err, errlen);
}

sl_pub_status_t
sl_publisher_publish_events(sl_publisher_t *p, const char *const *json, size_t n, char *err,
                            size_t errlen)
{
    if (!(p->url_parsed.plugin->flags & SL_PUB_F_EVENTS)) {
        snprintf(err, errlen, "%s publisher takes no events", p->url_parsed.plugin->name);
        return SL_PUB_ERROR;
    }
    sl_pub_batch_t b = { .kind = SL_PUB_EVENTS, .n = n, .events = json };
    return p->url_parsed.plugin->publish(p->ctx, &b, err, errlen);
}

void
sl_publisher_destroy(sl_publisher_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    sl_publisher_t *p = *p_p;
    p->url_parsed.plugin->destroy(&p->ctx);
    sl_pub_url_free(&p->url_parsed);
    free(p);
    *p_p = NULL;
}
