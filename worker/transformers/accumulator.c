/* transformers/accumulator.c — holds samples until a flush finds `size` of them, then
 * releases them all, unchanged (TRANSFORMERS.md section 7). */
#include "worker/transformers/tx.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    double          size;
    int             pass;       /* size < 1: pass-through */
    sl_arena_t      arena;      /* held copies */
    sl_sample_vec_t held;
} s_acc_t;

static void s_acc_destroy(void **ctx_p);

static const sl_opt_t s_acc_opts[] = {
    SL_TX_OPT("size", SL_TXT_NUM | SL_TXT_BOOL, "1",
      "release everything held once a flush finds at least this many samples; < 1 passes "
      "samples through"),
    { .name = NULL },
};

static void *
s_acc_init(const sl_tx_conf_t *conf, char *err, size_t errlen)
{
    s_acc_t *a = sl_xcalloc(1, sizeof *a);
    sl_arena_init(&a->arena, 16 * 1024);
    a->size = 1;
    const sl_ynode_t *n = sl_tx_param(conf->params, "size");
    if (n) {
        sl_tx_val_t v;
        sl_tx_value(n, &v);
        a->size = v.type == SL_TXT_FLOAT ? v.f : (double) v.i;
    }
    /* Ceilometer passes samples through and then fails every flush (no
     * store exists); sluice passes them through and says so once. */
    a->pass = !(a->size >= 1);
    if (a->pass && sl_tx_warn(conf, n, err, errlen, "size %g < 1: samples pass through "
                              "unchanged, as in Ceilometer (whose every flush then also "
                              "failed)", a->size) < 0) {
        void *p = a;
        s_acc_destroy(&p);
        return NULL;
    }
    return a;
}

static int
s_acc_process(void *ctx, sl_tx_env_t *env, const sl_sample_t *in, sl_sample_t *out)
{
    (void) env;
    s_acc_t *a = ctx;
    if (a->pass) {
        *out = *in;
        return 1;
    }
    sl_sample_t copy;
    sl_tx_sample_copy(&a->arena, in, &copy);
    sl_sample_vec_push(&a->held, &copy);
    return 0;
}

static int
s_acc_flush(void *ctx, sl_tx_env_t *env, sl_sample_vec_t *out)
{
    s_acc_t *a = ctx;
    if (a->pass || !a->held.n || ((double) a->held.n < a->size && !env->force))
        return 0;
    for (size_t i = 0; i < a->held.n; i++) {
        sl_sample_t s;
        sl_tx_sample_copy(env->out, &a->held.v[i], &s);     /* the same sample: same id */
        sl_sample_vec_push(out, &s);
    }
    a->held.n = 0;
    sl_arena_reset(&a->arena);
    return 0;
}

/* Blob: u64 count, then the held samples in arrival order. */
static int
s_acc_save(const void *ctx, sl_tx_wbuf_t *w)
{
    const s_acc_t *a = ctx;
    sl_tx_w_u64(w, a->held.n);
    for (size_t i = 0; i < a->held.n; i++)
        sl_tx_w_sample(w, &a->held.v[i]);
    return 0;
}

static int
s_acc_load(void *ctx, sl_tx_rbuf_t *r, char *err, size_t errlen)
{
    s_acc_t *a = ctx;
    size_t n = sl_tx_r_count(r, 13 * 4 + 8);
    if (n && a->pass)
        return sl_errf(err, errlen, "%zu held samples, but size %g passes samples "
                               "through", n, a->size);
    for (size_t i = 0; i < n && !r->bad; i++) {
        sl_sample_t s;
        sl_tx_r_sample(r, &a->arena, &s);
        if (!r->bad)
            sl_sample_vec_push(&a->held, &s);
    }
    return r->bad ? sl_errf(err, errlen, "truncated or malformed held samples") : 0;
}

static void
s_acc_destroy(void **ctx_p)
{
    if (!ctx_p || !*ctx_p)
        return;
    s_acc_t *a = *ctx_p;
    sl_sample_vec_free(&a->held);
    sl_arena_destroy(&a->arena);
    free(a);
    *ctx_p = NULL;
}

const sl_tx_plugin_t sl_tx_accumulator = {
    .name = "accumulator",
    .stateful = 1,
    .keys = sl_tx_resource_keys,
    .summary = "holds samples and releases them unchanged, all at once, at the first flush "
               "that finds `size` of them",
    .options = s_acc_opts,
    .init = s_acc_init,
    .process = s_acc_process,
    .flush = s_acc_flush,
    .destroy = s_acc_destroy,
    .save = s_acc_save,
    .load = s_acc_load,
};
