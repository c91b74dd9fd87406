#include "worker/reorder.h"

#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

typedef struct {
    uint64_t     arrived;
    uint64_t     seq;            /* last tie-break: arrival order */
    void        *tag;            /* the caller's, handed back on release */
    size_t       n;
    sl_sample_t *samples;        /* strings live in the same allocation */
} s_group_t;

struct sl_reorder {
    unsigned    window_ms;
    uint64_t    seq;
    s_group_t **heap;
    size_t      n, cap;
    s_group_t **retired;        /* released, freed at the next call */
    size_t      n_retired, cap_retired;
};

static void
s_recycle(sl_reorder_t *r)
{
    for (size_t i = 0; i < r->n_retired; i++)
        free(r->retired[i]);
    r->n_retired = 0;
}

static const char *
s_or_empty(const char *s)
{
    return s ? s : "";
}

/* Event-time order: first sample's timestamp, then message_id, then arrival. */
static int
s_before(const s_group_t *a, const s_group_t *b)
{
    const sl_sample_t *x = &a->samples[0], *y = &b->samples[0];
    int c = strcmp(s_or_empty(x->timestamp), s_or_empty(y->timestamp));
    if (!c)
        c = strcmp(s_or_empty(x->message_id), s_or_empty(y->message_id));
    return c ? c < 0 : a->seq < b->seq;
}

static void
s_swap(sl_reorder_t *r, size_t i, size_t j)
{
    s_group_t *t = r->heap[i];
    r->heap[i] = r->heap[j];
    r->heap[j] = t;
}

static void
s_up(sl_reorder_t *r, size_t i)
{
    while (i && s_before(r->heap[i], r->heap[(i - 1) / 2])) {
        s_swap(r, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
s_down(sl_reorder_t *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < r->n && s_before(r->heap[l], r->heap[m]))
            m = l;
        if (l + 1 < r->n && s_before(r->heap[l + 1], r->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        s_swap(r, i, m);
        i = m;
    }
}

sl_reorder_t *
sl_reorder_new(unsigned window_ms)
{
    sl_reorder_t *r = sl_xcalloc(1, sizeof *r);
    r->window_ms = window_ms;
    return r;
}

#define S_FIELDS(X) X(id) X(name) X(type) X(unit) X(volume_json) X(user_id) X(project_id) \
    X(resource_id) X(timestamp) X(resource_metadata) X(source) X(message_id) X(monotonic_time)

void
sl_reorder_add(sl_reorder_t *r, const sl_sample_t *s, size_t n, uint64_t now_ms, void *tag)
{
    s_recycle(r);
    if (!n)
        return;
    size_t bytes = sizeof(s_group_t) + n * sizeof(sl_sample_t);
    for (size_t i = 0; i < n; i++) {
#define X(f) bytes += s[i].f ? strlen(s[i].f) + 1 : 0;
        S_FIELDS(X)
#undef X
    }
    s_group_t *g = sl_xmalloc(bytes);
    g->arrived = now_ms;
    g->seq = r->seq++;
    g->tag = tag;
    g->n = n;
    g->samples = (sl_sample_t *) (g + 1);
    char *p = (char *) (g->samples + n);
    for (size_t i = 0; i < n; i++) {
        g->samples[i] = s[i];
#define X(f) \
        if (s[i].f) { \
            size_t len = strlen(s[i].f) + 1; \
            memcpy(p, s[i].f, len); \
            g->samples[i].f = p; \
            p += len; \
        }
        S_FIELDS(X)
#undef X
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->heap = sl_xrealloc(r->heap, r->cap * sizeof *r->heap);
    }
    r->heap[r->n++] = g;
    s_up(r, r->n - 1);
}

size_t
sl_reorder_release(sl_reorder_t *r, uint64_t now_ms, int force, sl_reorder_cb cb, void *arg)
{
    size_t released = 0;
    s_recycle(r);
    while (r->n && (force || now_ms >= r->heap[0]->arrived + r->window_ms)) {
        s_group_t *g = r->heap[0];
        r->heap[0] = r->heap[--r->n];
        if (r->n)
            s_down(r, 0);
        cb(arg, g->samples, g->n, g->tag);
        /* Kept until the next call: what cb passed on may point into it. */
        if (r->n_retired == r->cap_retired) {
            r->cap_retired = r->cap_retired ? r->cap_retired * 2 : 16;
            r->retired = sl_xrealloc(r->retired, r->cap_retired * sizeof *r->retired);
        }
        r->retired[r->n_retired++] = g;
        released++;
    }
    return released;
}

size_t
sl_reorder_pending(const sl_reorder_t *r)
{
    return r->n;
}

void
sl_reorder_destroy(sl_reorder_t **r_p)
{
    if (!r_p || !*r_p)
        return;
    sl_reorder_t *r = *r_p;
    for (size_t i = 0; i < r->n; i++)
        free(r->heap[i]);
    s_recycle(r);
    free(r->retired);
    free(r->heap);
    free(r);
    *r_p = NULL;
}
