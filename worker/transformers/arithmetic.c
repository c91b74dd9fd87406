/* transformers/arithmetic.c — an expression over the latest samples of several meters of
 * one resource, evaluated at flush (TRANSFORMERS.md section 9). */
#include "worker/transformers/tx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/expr.h"

typedef struct {
    size_t      cap;            /* bytes of data */
    sl_sample_t s;
    char        data[];
} s_held_t;

typedef struct {
    int        rid_null;
    size_t     rid_n;
    char      *rid;
    size_t     n_have;
    s_held_t **held;            /* one per meter */
} s_res_t;

typedef struct {
    int rid_null;
    const char *rid;
    size_t rid_n;
} s_rkey_t;

typedef struct {
    sl_expr_meters_t meters;
    sl_expr_t       *expr;
    char            *text;      /* as configured, for messages */
    int              misconfigured;
    char            *compile_err;   /* the expression cannot be evaluated: every evaluation
                                     * fails with this (logged), as in Ceilometer */
    int              has_tgt[3];
    char            *tgt[3];    /* name, unit, type */
    sl_tx_map_t      map;
    s_res_t        **order;     /* by first insertion */
    size_t           n_order, cap_order;
    char            *latest_ts; /* NULL: None */
    size_t           latest_cap;
    int              has_latest;
    const sl_sample_t **vars;
} s_arith_t;

/* target.expr null or a number: Ceilometer's re.sub over it fails at
 * start-up, so only strings are accepted. */
static const sl_opt_t s_arith_opts[] = {
    SL_TX_OPT("target", SL_TXT_MAP | SL_TXT_NULL | SL_TXT_FALSY, "{}", "the output"),
    SL_TX_OPT("target.expr", SL_TXT_STR, "\"\"",
      "expression over `$(meter)` (its volume) and `$(meter).resource_metadata.x`; without "
      "any `$(meter)` nothing is ever emitted (a warning)"),
    SL_TX_OPT("target.name", SL_TXT_STR | SL_TXT_NUM | SL_TXT_NULL, "first meter's", "output name"),
    SL_TX_OPT("target.unit", SL_TXT_STR | SL_TXT_NUM | SL_TXT_NULL, "first meter's", "output unit"),
    SL_TX_OPT("target.type", SL_TXT_STR | SL_TXT_NULL, "first meter's", "output type"),
    { .name = NULL },
};

static int
s_rkey_eq(const void *entry, const void *key)
{
    const s_res_t *r = entry;
    const s_rkey_t *k = key;
    return r->rid_null == k->rid_null && r->rid_n == k->rid_n &&
           memcmp(r->rid, k->rid, k->rid_n) == 0;
}

static uint64_t
s_rkey_hash(const s_rkey_t *k)
{
    return k->rid_null ? 0x9e3779b97f4a7c15ULL : sl_tx_hash(0, k->rid, k->rid_n);
}

static void
s_res_free(s_arith_t *a, s_res_t *r)
{
    for (size_t i = 0; i < a->meters.n; i++)
        free(r->held[i]);
    free(r->held);
    free(r->rid);
    free(r);
}

static void s_arith_destroy(void **ctx_p);

static void *
s_arith_init(const sl_tx_conf_t *conf, char *err, size_t errlen)
{
    s_arith_t *a = sl_xcalloc(1, sizeof *a);
    static const char *const names[3] = { "target.name", "target.unit", "target.type" };
    for (int i = 0; i < 3; i++) {
        const sl_ynode_t *n = sl_tx_param(conf->params, names[i]);
        if (n) {
            sl_tx_val_t v;
            sl_tx_value(n, &v);
            a->has_tgt[i] = 1;
            a->tgt[i] = v.type == SL_TXT_NULL ? NULL : sl_xstrdup(v.s);
        }
    }
    const sl_ynode_t *en = sl_tx_param(conf->params, "target.expr");
    sl_tx_val_t ev;
    sl_tx_value(en, &ev);
    a->text = sl_xstrdup(en ? ev.s : "");
    sl_expr_meters_prepare(a->text, &a->meters);
    if (!a->meters.n) {
        a->misconfigured = 1;
        if (sl_tx_warn(conf, en, err, errlen, "Arithmetic transformer must use at least one "
                       "meter in expression '%s': samples are swallowed and nothing is ever "
                       "emitted, as in Ceilometer", a->text) < 0)
            goto fail;
        return a;
    }
    /* Section 9: `$(my-meter)` reads as `my - meter.volume`, names that
     * are missing (empty values), so its evaluation fails as in Python. */
    for (size_t i = 0; i < a->meters.n; i++)
        if (strchr(a->meters.meters[i], '-') &&
            sl_tx_warn(conf, en, err, errlen, "$(%s): Ceilometer does not escape '-' and "
                       "evaluates a subtraction of missing names there, which fails: the "
                       "evaluations fail (logged, nothing emitted), as in Ceilometer",
                       a->meters.meters[i]) < 0)
            goto fail;
    char msg[256];
    a->expr = sl_expr_compile(a->meters.expr, (const char *const *) a->meters.idents,
                              a->meters.n, msg, sizeof msg);
    if (!a->expr) {
        if (!sl_tx_expr_fails_in_python(msg)) {
            sl_tx_err(conf, en, err, errlen, "target.expr '%.60s%s': %s", a->text,
                      strlen(a->text) > 60 ? "..." : "", msg);
            goto fail;
        }
        /* TRANSFORMERS.md 3.3 and 9: not checked at setup; every evaluation
         * fails and is logged */
        a->compile_err = sl_xstrdup(msg);
        if (sl_tx_warn(conf, en, err, errlen, "target.expr '%.60s%s' cannot be evaluated (%s): "
                       "every evaluation fails (logged, nothing emitted), as in Ceilometer",
                       a->text, strlen(a->text) > 60 ? "..." : "", msg) < 0)
            goto fail;
    }
    a->vars = sl_xcalloc(a->meters.n, sizeof *a->vars);
    return a;
fail: {
        void *p = a;
        s_arith_destroy(&p);
        return NULL;
    }
}

static s_held_t *
s_hold(s_held_t *old, const sl_sample_t *in)
{
    const char *strs[13] = {
        in->id, in->name, in->type, in->unit, in->volume_json, in->user_id, in->project_id,
        in->resource_id, in->timestamp, in->resource_metadata ? in->resource_metadata : "{}",
        in->source, in->message_id, in->monotonic_time,
    };
    size_t lens[13], total = 0;
    for (int i = 0; i < 13; i++) {
        lens[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
        total += lens[i];
    }
    s_held_t *h = old;
    if (!h || h->cap < total) {
        free(old);
        h = sl_xmalloc(sizeof *h + total);
        h->cap = total;
    }
    const char *c[13];
    char *p = h->data;
    for (int i = 0; i < 13; i++) {
        c[i] = strs[i] ? memcpy(p, strs[i], lens[i]) : NULL;
        p += lens[i];
    }
    h->s = (sl_sample_t) {
        .id = c[0], .name = c[1], .type = c[2], .unit = c[3], .volume_json = c[4],
        .volume = in->volume, .user_id = c[5], .project_id = c[6], .resource_id = c[7],
        .timestamp = c[8], .resource_metadata = c[9], .source = c[10], .message_id = c[11],
        .monotonic_time = c[12],
    };
    return h;
}

static void
s_set_latest(s_arith_t *a, const char *ts)
{
    a->has_latest = ts != NULL;
    if (!ts)
        return;
    size_t n = strlen(ts) + 1;
    if (n > a->latest_cap) {
        a->latest_cap = n * 2;
        a->latest_ts = sl_xrealloc(a->latest_ts, a->latest_cap);
    }
    memcpy(a->latest_ts, ts, n);
}

static int
s_arith_process(void *ctx, sl_tx_env_t *env, const sl_sample_t *s, sl_sample_t *out)
{
    (void) env;
    (void) out;
    s_arith_t *a = ctx;
    if (!a->misconfigured && s->name) {
        size_t k;
        for (k = 0; k < a->meters.n; k++)
            if (!strcmp(a->meters.meters[k], s->name))
                break;
        if (k < a->meters.n) {
            s_rkey_t key = { s->resource_id == NULL, s->resource_id ? s->resource_id : "",
                             s->resource_id ? strlen(s->resource_id) : 0 };
            uint64_t h = s_rkey_hash(&key);
            s_res_t *r = sl_tx_map_get(&a->map, h, s_rkey_eq, &key);
            if (!r) {
                r = sl_xcalloc(1, sizeof *r);
                r->rid_null = key.rid_null;
                r->rid_n = key.rid_n;
                r->rid = sl_xmalloc(key.rid_n + 1);
                memcpy(r->rid, key.rid, key.rid_n + 1);
                r->held = sl_xcalloc(a->meters.n, sizeof *r->held);
                sl_tx_map_put(&a->map, h, r);
                if (a->n_order == a->cap_order) {
                    a->cap_order = a->cap_order ? a->cap_order * 2 : 16;
                    a->order = sl_xrealloc(a->order, a->cap_order * sizeof *a->order);
                }
                a->order[a->n_order++] = r;
            }
            if (!r->held[k])
                r->n_have++;
            r->held[k] = s_hold(r->held[k], s);
        }
    }
    s_set_latest(a, s->timestamp);
    return 0;
}

static int
s_arith_flush(void *ctx, sl_tx_env_t *env, sl_sample_vec_t *out)
{
    s_arith_t *a = ctx;
    if (a->misconfigured)
        return 0;
    size_t keep = 0;
    for (size_t i = 0; i < a->n_order; i++) {
        s_res_t *r = a->order[i];
        if (r->n_have < a->meters.n) {
            a->order[keep++] = r;
            continue;
        }
        for (size_t k = 0; k < a->meters.n; k++)
            a->vars[k] = &r->held[k]->s;
        sl_expr_env_t xenv = { .vars = a->vars, .scratch = env->scratch };
        sl_xval_t v;
        char msg[256];
        double vol = 0;
        int ok = 0;
        if (!a->expr)
            snprintf(msg, sizeof msg, "%s", a->compile_err);
        else
            ok = sl_expr_eval(a->expr, &xenv, &v, msg, sizeof msg) == 0 &&
                 sl_expr_number(&v, &vol, msg, sizeof msg) == 0;
        if (ok && isnan(vol)) {
            ok = 0;
            snprintf(msg, sizeof msg, "Expression evaluated to a NaN value!");
        }
        if (ok) {
            const sl_sample_t *ref = &r->held[0]->s;
            sl_sample_t s = {
                .name = sl_arena_strdup(env->out, a->has_tgt[0] ? a->tgt[0] : ref->name),
                .unit = sl_arena_strdup(env->out, a->has_tgt[1] ? a->tgt[1] : ref->unit),
                .type = sl_arena_strdup(env->out, a->has_tgt[2] ? a->tgt[2] : ref->type),
                .volume = vol,
                .user_id = sl_arena_strdup(env->out, ref->user_id),
                .project_id = sl_arena_strdup(env->out, ref->project_id),
                .resource_id = sl_arena_strdup(env->out, ref->resource_id),
                .timestamp = a->has_latest ? sl_arena_strdup(env->out, a->latest_ts) : NULL,
                .resource_metadata = sl_arena_strdup(env->out, ref->resource_metadata),
                .message_id = sl_arena_strdup(env->out, ref->message_id),
            };
            sl_tx_sample_new(env, &s);
            sl_sample_vec_push(out, &s);
        } else {
            /* Nothing is handed on (Ceilometer passed a None placeholder to
             * the next transformer: TRANSFORMERS.md section 14, item 3). */
            if (env->stats)
                env->stats->eval_errors++;
            sl_log_limited(env->rl_warn, SL_LOG_WARN,
                           "sink %s: arithmetic: Unable to evaluate expression %s: %s "
                           "(resource %s)", env->sink, a->text, msg,
                           r->rid_null ? "None" : r->rid);
        }
        s_rkey_t key = { r->rid_null, r->rid, r->rid_n };
        sl_tx_map_del(&a->map, s_rkey_hash(&key), s_rkey_eq, &key);
        s_res_free(a, r);
    }
    a->n_order = keep;
    return 0;
}

/* Blob: u64 number of meters and their names (the load checks they are the
 * configured ones); u8 has latest_timestamp, the string if it has; u64
 * number of cached resources, then per resource in cache order: u8
 * resource_id is null, resource_id, and per meter u8 present plus the
 * latest sample of that meter if present. */
static int
s_arith_save(const void *ctx, sl_tx_wbuf_t *w)
{
    const s_arith_t *a = ctx;
    sl_tx_w_u64(w, a->meters.n);
    for (size_t k = 0; k < a->meters.n; k++)
        sl_tx_w_str(w, a->meters.meters[k]);
    sl_tx_w_u8(w, (unsigned) a->has_latest);
    if (a->has_latest)
        sl_tx_w_str(w, a->latest_ts);
    sl_tx_w_u64(w, a->n_order);
    for (size_t i = 0; i < a->n_order; i++) {
        const s_res_t *r = a->order[i];
        sl_tx_w_u8(w, (unsigned) r->rid_null);
        sl_tx_w_u32(w, (uint32_t) r->rid_n + 1);
        sl_tx_w_bytes(w, r->rid, r->rid_n);
        for (size_t k = 0; k < a->meters.n; k++) {
            sl_tx_w_u8(w, r->held[k] != NULL);
            if (r->held[k])
                sl_tx_w_sample(w, &r->held[k]->s);
        }
    }
    return 0;
}

static int
s_arith_load(void *ctx, sl_tx_rbuf_t *r, char *err, size_t errlen)
{
    s_arith_t *a = ctx;
    sl_arena_t tmp;
    sl_arena_init(&tmp, 0);
    int rc = -1;
    size_t n_meters = sl_tx_r_count(r, 4);
    if (r->bad || n_meters != a->meters.n) {
        sl_errf(err, errlen, "saved with %zu meters, configured with %zu", n_meters,
                        a->meters.n);
        goto out;
    }
    for (size_t k = 0; k < n_meters; k++) {
        char *m = sl_tx_r_str(r, &tmp, NULL);
        if (!m || strcmp(m, a->meters.meters[k])) {
            sl_errf(err, errlen, "meter %zu is not '%s'", k, a->meters.meters[k]);
            goto out;
        }
    }
    unsigned has_latest = sl_tx_r_u8(r);
    if (has_latest) {
        char *ts = sl_tx_r_str(r, &tmp, NULL);
        if (has_latest > 1 || !ts) {
            sl_errf(err, errlen, "malformed latest timestamp");
            goto out;
        }
        s_set_latest(a, ts);
    }
    size_t n_res = sl_tx_r_count(r, 1 + 4 + n_meters);
    if (r->bad || (n_res && a->misconfigured)) {
        sl_errf(err, errlen, "truncated or malformed resource cache");
        goto out;
    }
    for (size_t i = 0; i < n_res; i++) {
        unsigned rid_null = sl_tx_r_u8(r);
        char *rid = sl_tx_r_str(r, &tmp, NULL);
        if (r->bad || rid_null > 1 || !rid || (rid_null && *rid)) {
            sl_errf(err, errlen, "resource %zu is truncated or malformed", i);
            goto out;
        }
        s_rkey_t key = { (int) rid_null, rid, strlen(rid) };
        uint64_t h = s_rkey_hash(&key);
        if (sl_tx_map_get(&a->map, h, s_rkey_eq, &key)) {
            sl_errf(err, errlen, "resource '%s' appears twice", rid);
            goto out;
        }
        s_res_t *res = sl_xcalloc(1, sizeof *res);
        res->rid_null = key.rid_null;
        res->rid_n = key.rid_n;
        res->rid = sl_xstrdup(rid);
        res->held = sl_xcalloc(a->meters.n, sizeof *res->held);
        sl_tx_map_put(&a->map, h, res);
        if (a->n_order == a->cap_order) {
            a->cap_order = a->cap_order ? a->cap_order * 2 : 16;
            a->order = sl_xrealloc(a->order, a->cap_order * sizeof *a->order);
        }
        a->order[a->n_order++] = res;
        for (size_t k = 0; k < a->meters.n; k++) {
            unsigned present = sl_tx_r_u8(r);
            if (present > 1)
                r->bad = 1;
            if (!present || r->bad)
                continue;
            sl_sample_t sm;
            sl_tx_r_sample(r, &tmp, &sm);
            if (r->bad)
                break;
            res->held[k] = s_hold(NULL, &sm);
            res->n_have++;
        }
        if (r->bad || !res->n_have) {
            sl_errf(err, errlen, "resource %zu is truncated or holds no sample", i);
            goto out;
        }
        sl_arena_reset(&tmp);
    }
    rc = 0;
out:
    sl_arena_destroy(&tmp);
    return rc;
}

static void
s_arith_destroy(void **ctx_p)
{
    if (!ctx_p || !*ctx_p)
        return;
    s_arith_t *a = *ctx_p;
    for (size_t i = 0; i < a->n_order; i++)
        s_res_free(a, a->order[i]);
    free(a->order);
    sl_tx_map_free(&a->map, NULL);
    sl_expr_destroy(&a->expr);
    sl_expr_meters_free(&a->meters);
    for (int i = 0; i < 3; i++)
        free(a->tgt[i]);
    free(a->text);
    free(a->compile_err);
    free(a->latest_ts);
    free(a->vars);
    free(a);
    *ctx_p = NULL;
}

const sl_tx_plugin_t sl_tx_arithmetic = {
    .name = "arithmetic",
    .stateful = 1,
    .keys = sl_tx_resource_keys,
    .summary = "at each flush, evaluates an expression over the latest sample of each "
               "`$(meter)` of a resource, once the resource has them all",
    .options = s_arith_opts,
    .init = s_arith_init,
    .process = s_arith_process,
    .flush = s_arith_flush,
    .destroy = s_arith_destroy,
    .save = s_arith_save,
    .load = s_arith_load,
};
