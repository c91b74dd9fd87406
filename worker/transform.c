#include "worker/transform.h"

#include <stdlib.h>

#include "common/arena.h"
#include "common/yconf.h"

struct sl_chain {
    const sl_sink_t *sink;
};

void
sl_sample_vec_push(sl_sample_vec_t *vec, const sl_sample_t *s)
{
    if (vec->n == vec->cap) {
        vec->cap = vec->cap ? vec->cap * 2 : 64;
        vec->v = sl_xrealloc(vec->v, vec->cap * sizeof *vec->v);
    }
    vec->v[vec->n++] = *s;
}

void
sl_sample_vec_free(sl_sample_vec_t *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

int
sl_transform_check(const sl_pipeline_t *p, char *err, size_t errlen)
{
    for (size_t i = 0; i < p->n_sinks; i++) {
        const sl_sink_t *s = &p->sinks[i];
        if (s->n_transformers)
            return sl_yerr_at(p->doc ? p->doc->file : NULL, s->transformers[0].line, err, errlen,
                              "sink '%s': transformer '%s' is not implemented yet in this "
                              "build; remove `transformers:` from the sink to run it "
                              "pass-through", s->name, s->transformers[0].name);
    }
    return 0;
}

sl_chain_t *
sl_chain_new(const sl_sink_t *sink)
{
    sl_chain_t *c = sl_xcalloc(1, sizeof *c);
    c->sink = sink;
    return c;
}

void
sl_chain_process(sl_chain_t *c, const sl_sample_t *in, size_t n, sl_sample_vec_t *out)
{
    (void) c;
    for (size_t i = 0; i < n; i++)
        sl_sample_vec_push(out, &in[i]);
}

void
sl_chain_flush(sl_chain_t *c, sl_sample_vec_t *out)
{
    (void) c;
    (void) out;
}

void
sl_chain_destroy(sl_chain_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    free(*c_p);
    *c_p = NULL;
}
