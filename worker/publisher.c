#include "worker/publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

static const sl_publisher_ops_t *const s_registry[] = {
    &sl_publisher_file,
};

static const sl_publisher_ops_t *
s_lookup(const char *url, char *err, size_t errlen)
{
    const char *colon = strstr(url, "://");
    if (!colon) {
        snprintf(err, errlen, "publisher '%s' is not a URL (e.g. file:///var/lib/sluice/samples.jsonl)", url);
        return NULL;
    }
    size_t n = (size_t) (colon - url);
    for (size_t i = 0; i < sizeof s_registry / sizeof *s_registry; i++)
        if (strlen(s_registry[i]->scheme) == n && strncmp(s_registry[i]->scheme, url, n) == 0)
            return s_registry[i];
    snprintf(err, errlen, "publisher scheme '%.*s' is not supported yet (supported: file)",
             (int) n, url);
    return NULL;
}

int
sl_publisher_check(const char *url, char *err, size_t errlen)
{
    const sl_publisher_ops_t *ops = s_lookup(url, err, errlen);
    if (!ops)
        return -1;
    void *ctx = ops->init(url, 1, err, errlen);
    if (!ctx)
        return -1;
    ops->destroy(&ctx);
    return 0;
}

sl_publisher_t *
sl_publisher_new(const char *url, char *err, size_t errlen)
{
    const sl_publisher_ops_t *ops = s_lookup(url, err, errlen);
    if (!ops)
        return NULL;
    void *ctx = ops->init(url, 0, err, errlen);
    if (!ctx)
        return NULL;
    sl_publisher_t *p = sl_xcalloc(1, sizeof *p);
    p->ops = ops;
    p->ctx = ctx;
    p->url = sl_xstrdup(url);
    return p;
}

sl_pub_status_t
sl_publisher_publish(sl_publisher_t *p, const sl_sample_t *s, size_t n, char *err, size_t errlen)
{
    return p->ops->publish(p->ctx, s, n, err, errlen);
}

sl_pub_status_t
sl_publisher_publish_events(sl_publisher_t *p, const char *const *json, size_t n, char *err,
                            size_t errlen)
{
    if (!p->ops->publish_events) {
        snprintf(err, errlen, "%s publisher takes no events", p->ops->scheme);
        return SL_PUB_ERROR;
    }
    return p->ops->publish_events(p->ctx, json, n, err, errlen);
}

int
sl_publisher_check_events(const char *url, char *err, size_t errlen)
{
    const sl_publisher_ops_t *ops = s_lookup(url, err, errlen);
    if (!ops)
        return -1;
    if (!ops->publish_events) {
        snprintf(err, errlen, "publisher scheme '%s' cannot publish events", ops->scheme);
        return -1;
    }
    return sl_publisher_check(url, err, errlen);
}

void
sl_publisher_destroy(sl_publisher_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    sl_publisher_t *p = *p_p;
    p->ops->destroy(&p->ctx);
    free(p->url);
    free(p);
    *p_p = NULL;
}
