/* transform — the registry of transformer plugins and the chain that drives
 * them as Ceilometer's sink did (TRANSFORMERS.md sections 2.2 and 2.3). */
#include "worker/transform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/yconf.h"
#include "worker/transformers/tx.h"

static const sl_tx_plugin_t *const s_plugins[] = {
    &sl_tx_unit_conversion, &sl_tx_rate_of_change, &sl_tx_delta,
    &sl_tx_accumulator, &sl_tx_aggregator, &sl_tx_arithmetic,
};
#define S_N_PLUGINS (sizeof s_plugins / sizeof s_plugins[0])

typedef struct {
    const sl_tx_plugin_t *pl;
    void *ctx;
} s_tx_t;

struct sl_chain {
    const sl_sink_t *sink;
    size_t           n;
    s_tx_t          *tx;
    sl_arena_t       out_arena;     /* new samples handed to the caller */
    sl_arena_t       scratch;       /* expression scratch, per sample */
    char            *source;
    int              frozen;
    int              needs_clock;   /* a transformer reads the wall clock at flush */
    int64_t          now_us;
    sl_sample_vec_t  tmp;           /* a transformer's flush output */
    size_t          *batch_ends;
    size_t           n_batches, cap_batches;
    sl_chain_stats_t stats;
    sl_ratelimit_t   rl_err, rl_warn;
    char             err[512];
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

static const sl_tx_plugin_t *
s_plugin(const char *name)
{
    for (size_t i = 0; name && i < S_N_PLUGINS; i++)
        if (!strcmp(s_plugins[i]->name, name))
            return s_plugins[i];
    return NULL;
}

int
sl_transform_lookup(const char *name, int *stateful, const char *const **keys)
{
    const sl_tx_plugin_t *pl = s_plugin(name);
    if (!pl)
        return -1;
    *stateful = pl->stateful;
    *keys = pl->keys;
    return 0;
}

int
sl_transformer_kind(const char *name)
{
    const sl_tx_plugin_t *pl = s_plugin(name);
    return pl ? pl->stateful != 0 : -1;
}

sl_pipeline_t *
sl_pipeline_load(const char *path, const char *kind, sl_ywarn_t *warn, char *err, size_t errlen)
{
    return sl_pipeline_load_with(path, kind, sl_transform_lookup, warn, err, errlen);
}

sl_pipeline_t *
sl_pipeline_parse(const char *buf, size_t len, const char *name, const char *kind,
                  sl_ywarn_t *warn, char *err, size_t errlen)
{
    return sl_pipeline_parse_with(buf, len, name, kind, sl_transform_lookup, warn, err, errlen);
}

/* Checks and builds transformer i of sink; NULL with file:line in err. */
static void *
s_tx_init(const sl_sink_t *sink, size_t i, const char *file, int quiet, sl_ywarn_t *warn,
          const sl_tx_plugin_t **pl_out, char *err, size_t errlen)
{
    const sl_transformer_conf_t *tc = &sink->transformers[i];
    sl_tx_conf_t conf = {
        .params = tc->parameters, .sink = sink->name, .transformer = tc->name,
        .file = tc->parameters && tc->parameters->doc ? tc->parameters->doc->file : file,
        .line = tc->line, .quiet = quiet, .warn = warn,
    };
    const sl_tx_plugin_t *pl = s_plugin(tc->name);
    if (!pl) {
        sl_tx_err(&conf, NULL, err, errlen, "unknown transformer");
        return NULL;
    }
    if (sl_tx_check_params(&conf, pl->options, err, errlen) < 0)
        return NULL;
    if (conf.params && conf.params->kind != SL_Y_MAP)
        conf.params = NULL;                 /* false: none (the check warned) */
    void *ctx = pl->init(&conf, err, errlen);
    *pl_out = pl;
    return ctx;
}

int
sl_transform_check(sl_pipeline_t *p, sl_ywarn_t *warn, char *err, size_t errlen)
{
    if (sl_pipeline_resolve(p, sl_transform_lookup, err, errlen) < 0)
        return -1;
    const char *file = p->doc ? p->doc->file : NULL;
    for (size_t s = 0; s < p->n_sinks; s++) {
        const sl_sink_t *sink = &p->sinks[s];
        for (size_t i = 0; i < sink->n_transformers; i++) {
            const sl_tx_plugin_t *pl = NULL;
            void *ctx = s_tx_init(sink, i, file, 0, warn, &pl, err, errlen);
            if (!ctx)
                return -1;
            pl->destroy(&ctx);
        }
    }
    return 0;
}

sl_chain_t *
sl_chain_new(const sl_sink_t *sink)
{
    sl_chain_t *c = sl_xcalloc(1, sizeof *c);
    c->sink = sink;
    c->source = sl_xstrdup("openstack");
    sl_arena_init(&c->out_arena, 0);
    sl_arena_init(&c->scratch, 4096);
    c->tx = sl_xcalloc(sink->n_transformers + 1, sizeof *c->tx);
    for (size_t i = 0; i < sink->n_transformers; i++) {
        char err[512];
        c->tx[i].ctx = s_tx_init(sink, i, NULL, 1, NULL, &c->tx[i].pl, err, sizeof err);
        if (!c->tx[i].ctx) {
            sl_error("cannot build the transformers of sink '%s': %s", sink->name, err);
            sl_chain_destroy(&c);
            return NULL;
        }
        c->needs_clock |= c->tx[i].pl->deadline != NULL;
        c->n++;
    }
    return c;
}

void
sl_chain_set_source(sl_chain_t *c, const char *sample_source)
{
    free(c->source);
    c->source = sl_xstrdup(sample_source ? sample_source : "openstack");
}

void
sl_chain_set_now(sl_chain_t *c, double now)
{
    c->frozen = !isnan(now);
    if (c->frozen)
        c->now_us = llround(now * 1e6);
}

void
sl_chain_recycle(sl_chain_t *c)
{
    sl_arena_reset(&c->out_arena);
}

const sl_chain_stats_t *
sl_chain_stats(const sl_chain_t *c)
{
    return &c->stats;
}

static void
s_env(sl_chain_t *c, sl_tx_env_t *env)
{
    *env = (sl_tx_env_t) {
        .out = &c->out_arena, .scratch = &c->scratch, .source = c->source,
        .sink = c->sink->name, .rl_warn = &c->rl_warn, .stats = &c->stats,
        .err = c->err, .errlen = sizeof c->err,
    };
}

/* Runs s through transformers start..n-1; appends what survives to out. */
static void
s_run(sl_chain_t *c, sl_tx_env_t *env, size_t start, const sl_sample_t *s, sl_sample_vec_t *out)
{
    sl_sample_t cur = *s;
    for (size_t i = start; i < c->n; i++) {
        sl_sample_t next;
        c->err[0] = '\0';
        int rc = c->tx[i].pl->process(c->tx[i].ctx, env, &cur, &next);
        sl_arena_reset(&c->scratch);
        if (rc < 0) {
            c->stats.errors++;
            sl_log_limited(&c->rl_err, SL_LOG_ERROR,
                           "Pipeline %s: Exit after error from transformer %s for %s: %s",
                           c->sink->name, c->tx[i].pl->name, sl_tx_describe(&cur), c->err);
            return;
        }
        if (rc == 0) {
            c->stats.absorbed++;
            return;
        }
        cur = next;
    }
    sl_sample_vec_push(out, &cur);
    c->stats.out++;
}

/* 0 = a usable volume, 1 = drop (null or not a number), 2 = abort the batch. */
static int
s_volume_check(const sl_sample_t *s)
{
    const char *vj = s->volume_json;
    if (!vj)
        return isnan(s->volume) ? 1 : 0;
    switch (vj[0]) {
    case 'n': return 1;
    case '[':
    case '{': return 2;         /* float() raises TypeError: not a ValueError */
    case '"': {
        size_t n = strlen(vj);
        if (n < 2 || memchr(vj + 1, '\\', n - 2))
            return 1;
        return sl_tx_py_float(vj + 1, n - 2, NULL) ? 0 : 1;
    }
    default: return 0;
    }
}

void
sl_chain_prefetch(const sl_chain_t *c, const sl_sample_t *in, size_t n)
{
    if (!c->n || !c->tx[0].pl->prefetch)
        return;
    for (size_t i = 0; i < n; i++)
        c->tx[0].pl->prefetch(c->tx[0].ctx, &in[i]);
}

void
sl_chain_process(sl_chain_t *c, const sl_sample_t *in, size_t n, sl_sample_vec_t *out)
{
    if (!out->n)
        sl_arena_reset(&c->out_arena);
    c->stats.in += n;
    for (size_t i = 0; i < n; i++)
        if (s_volume_check(&in[i]) == 2) {
            c->stats.aborted_batches++;
            sl_log_limited(&c->rl_err, SL_LOG_ERROR,
                           "Pipeline %s: Fail to process notification: volume of %s is %s",
                           c->sink->name, sl_tx_describe(&in[i]),
                           in[i].volume_json[0] == '[' ? "a list" : "an object");
            return;
        }
    sl_tx_env_t env;
    s_env(c, &env);
    for (size_t i = 0; i < n; i++) {
        const sl_sample_t *s = &in[i];
        if (s_volume_check(s)) {
            c->stats.no_volume++;
            sl_log_limited(&c->rl_warn, SL_LOG_WARN,
                           "metering data %s for %s @ %s has %s, the sample will be dropped",
                           s->name ? s->name : "None", s->resource_id ? s->resource_id : "None",
                           s->timestamp ? s->timestamp : "None",
                           !s->volume_json || s->volume_json[0] == 'n'
                           ? "no volume (volume: None)" : "volume which is not a number");
            continue;
        }
        if (!c->n) {
            sl_sample_vec_push(out, s);
            c->stats.out++;
            continue;
        }
        s_run(c, &env, 0, s, out);
    }
}

static void
s_flush(sl_chain_t *c, sl_sample_vec_t *out, int force)
{
    if (!out->n)
        sl_arena_reset(&c->out_arena);
    c->n_batches = 0;
    sl_tx_env_t env;
    s_env(c, &env);
    if (c->frozen) {
        env.now_us = c->now_us;
    } else if (c->needs_clock) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        env.now_us = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    }
    env.force = force;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->tx[i].pl->flush)
            continue;
        c->tmp.n = 0;
        c->err[0] = '\0';
        if (c->tx[i].pl->flush(c->tx[i].ctx, &env, &c->tmp) < 0) {
            c->stats.flush_errors++;
            sl_log_limited(&c->rl_err, SL_LOG_ERROR, "Pipeline %s: Error flushing transformer %s: %s",
                           c->sink->name, c->tx[i].pl->name, c->err);
            continue;
        }
        size_t before = out->n;
        for (size_t k = 0; k < c->tmp.n; k++)
            s_run(c, &env, i + 1, &c->tmp.v[k], out);
        if (out->n > before) {
            if (c->n_batches == c->cap_batches) {
                c->cap_batches = c->cap_batches ? c->cap_batches * 2 : 4;
                c->batch_ends = sl_xrealloc(c->batch_ends, c->cap_batches * sizeof *c->batch_ends);
            }
            c->batch_ends[c->n_batches++] = out->n;
        }
    }
}

void
sl_chain_flush(sl_chain_t *c, sl_sample_vec_t *out)
{
    s_flush(c, out, 0);
}

void
sl_chain_drain(sl_chain_t *c, sl_sample_vec_t *out)
{
    s_flush(c, out, 1);
}

size_t
sl_chain_flush_batches(const sl_chain_t *c, const size_t **ends)
{
    if (ends)
        *ends = c->batch_ends;
    return c->n_batches;
}

double
sl_chain_next_expiry(const sl_chain_t *c)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < c->n; i++)
        if (c->tx[i].pl->deadline) {
            int64_t d = c->tx[i].pl->deadline(c->tx[i].ctx);
            if (d < best)
                best = d;
        }
    return best == INT64_MAX ? INFINITY : (double) best / 1e6;
}

void
sl_chain_destroy(sl_chain_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    sl_chain_t *c = *c_p;
    for (size_t i = 0; i < c->n; i++)
        c->tx[i].pl->destroy(&c->tx[i].ctx);
    free(c->tx);
    free(c->source);
    free(c->batch_ends);
    sl_sample_vec_free(&c->tmp);
    sl_arena_destroy(&c->out_arena);
    sl_arena_destroy(&c->scratch);
    free(c);
    *c_p = NULL;
}

/* --- state handoff (format in transform.h) -------------------------------- */

#define S_STATE_MAGIC "SLCS"
#define S_STATE_VERSION 1

static uint64_t
s_fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Stable across processes and builds: kinds, plain flags, keys and values,
 * never line numbers (a comment added above a sink changes nothing). */
static uint64_t
s_fingerprint(uint64_t h, const sl_ynode_t *n)
{
    unsigned char tag = n ? (unsigned char) n->kind : 0xff;
    h = s_fnv(h, &tag, 1);
    if (!n)
        return h;
    if (n->kind == SL_Y_SCALAR) {
        unsigned char plain = n->plain != 0;
        const char *v = n->value ? n->value : "";
        h = s_fnv(h, &plain, 1);
        return s_fnv(h, v, strlen(v) + 1);
    }
    uint64_t cnt = n->n;
    h = s_fnv(h, &cnt, sizeof cnt);
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == SL_Y_MAP)
            h = s_fnv(h, n->keys[i], strlen(n->keys[i]) + 1);
        h = s_fingerprint(h, n->items[i]);
    }
    return h;
}

static uint64_t
s_tx_fingerprint(const sl_sink_t *sink, size_t i)
{
    return s_fingerprint(0xcbf29ce484222325ULL, sink->transformers[i].parameters);
}

uint64_t
sl_chain_fingerprint(const sl_sink_t *sink)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < sink->n_transformers; i++) {
        const char *name = sink->transformers[i].name;
        uint64_t fp = s_tx_fingerprint(sink, i);
        h = s_fnv(h, name, strlen(name) + 1);
        h = s_fnv(h, &fp, sizeof fp);
    }
    return h;
}

int
sl_chain_save(const sl_chain_t *c, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (c->n > UINT16_MAX)
        return -1;
    sl_tx_wbuf_t w = { 0 }, blob = { 0 };
    sl_tx_w_bytes(&w, S_STATE_MAGIC, 4);
    unsigned char v16[4] = { S_STATE_VERSION & 0xff, S_STATE_VERSION >> 8,
                             (unsigned char) (c->n & 0xff), (unsigned char) (c->n >> 8) };
    sl_tx_w_bytes(&w, v16, 4);
    for (size_t i = 0; i < c->n; i++) {
        const sl_tx_plugin_t *pl = c->tx[i].pl;
        size_t nl = strlen(pl->name);
        blob.n = 0;
        if ((pl->save && pl->save(c->tx[i].ctx, &blob) < 0) || blob.n > UINT32_MAX ||
            nl > UINT8_MAX) {
            free(blob.p);
            free(w.p);
            return -1;
        }
        sl_tx_w_u8(&w, (unsigned) nl);
        sl_tx_w_bytes(&w, pl->name, nl);
        sl_tx_w_u64(&w, s_tx_fingerprint(c->sink, i));
        sl_tx_w_u32(&w, (uint32_t) blob.n);
        sl_tx_w_bytes(&w, blob.p, blob.n);
    }
    free(blob.p);
    sl_tx_w_u64(&w, s_fnv(0xcbf29ce484222325ULL, w.p, w.n));
    *buf = w.p;
    *len = w.n;
    return 0;
}

static void
s_destroy_ctxs(s_tx_t *tx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tx[i].ctx)
            tx[i].pl->destroy(&tx[i].ctx);
    free(tx);
}

int
sl_chain_load(sl_chain_t *c, const void *buf, size_t len, char *err, size_t errlen)
{
    const unsigned char *p = buf;
    if (!p || len < 16 || memcmp(p, S_STATE_MAGIC, 4))
        return sl_errf(err, errlen, "chain state: not a chain state (%zu bytes)", len);
    sl_tx_rbuf_t r = { .p = p, .n = len - 8, .off = 4 };
    unsigned version = p[4] | (unsigned) p[5] << 8;
    size_t n = p[6] | (size_t) p[7] << 8;
    r.off = 8;
    if (version != S_STATE_VERSION)
        return sl_errf(err, errlen, "chain state: version %u, this build reads %d",
                               version, S_STATE_VERSION);
    sl_tx_rbuf_t tail = { .p = p, .n = len, .off = len - 8 };
    if (sl_tx_r_u64(&tail) != s_fnv(0xcbf29ce484222325ULL, p, len - 8))
        return sl_errf(err, errlen, "chain state: checksum mismatch (truncated or "
                               "corrupt)");
    if (n != c->n)
        return sl_errf(err, errlen, "chain state: %zu transformers, sink '%s' has %zu",
                               n, c->sink->name, c->n);
    s_tx_t *tx = sl_xcalloc(c->n + 1, sizeof *tx);
    char msg[512];
    for (size_t i = 0; i < n; i++) {
        const sl_tx_plugin_t *want = c->tx[i].pl;
        size_t nl = sl_tx_r_u8(&r);
        const unsigned char *name = r.bad || nl > r.n - r.off ? NULL : r.p + r.off;
        r.off += name ? nl : 0;
        uint64_t fp = sl_tx_r_u64(&r);
        uint32_t bl = sl_tx_r_u32(&r);
        if (!name || r.bad || bl > r.n - r.off) {
            s_destroy_ctxs(tx, c->n);
            return sl_errf(err, errlen, "chain state: transformer %zu: truncated", i);
        }
        if (nl != strlen(want->name) || memcmp(name, want->name, nl)) {
            char shown[64];             /* printable: the bytes may be anything */
            size_t k;
            for (k = 0; k < nl && k + 1 < sizeof shown; k++)
                shown[k] = name[k] >= 0x20 && name[k] < 0x7f ? (char) name[k] : '?';
            shown[k] = '\0';
            s_destroy_ctxs(tx, c->n);
            return sl_errf(err, errlen, "chain state: transformer %zu is '%s', sink "
                                   "'%s' has '%s' there", i, shown, c->sink->name, want->name);
        }
        if (fp != s_tx_fingerprint(c->sink, i)) {
            s_destroy_ctxs(tx, c->n);
            return sl_errf(err, errlen, "chain state: transformer %zu (%s) was saved "
                                   "with other parameters", i, want->name);
        }
        tx[i].ctx = s_tx_init(c->sink, i, NULL, 1, NULL, &tx[i].pl, msg, sizeof msg);
        if (!tx[i].ctx) {
            s_destroy_ctxs(tx, c->n);
            return sl_errf(err, errlen, "chain state: transformer %zu (%s): %s", i,
                                   want->name, msg);
        }
        sl_tx_rbuf_t br = { .p = r.p + r.off, .n = bl };
        r.off += bl;
        msg[0] = '\0';
        int rc = want->load ? want->load(tx[i].ctx, &br, msg, sizeof msg) : 0;
        if (rc == 0 && (br.bad || br.off != br.n)) {
            snprintf(msg, sizeof msg, "%s", br.bad ? "truncated or malformed"
                                                   : "trailing bytes after the state");
            rc = -1;
        }
        if (rc < 0) {
            s_destroy_ctxs(tx, c->n);
            return sl_errf(err, errlen, "chain state: transformer %zu (%s): %s", i,
                                   want->name, msg[0] ? msg : "rejected");
        }
    }
    if (r.off != r.n) {
        s_destroy_ctxs(tx, c->n);
        return sl_errf(err, errlen, "chain state: %zu trailing bytes", r.n - r.off);
    }
    s_destroy_ctxs(c->tx, c->n);
    c->tx = tx;
    return 0;
}

const char *
sl_transform_describe(size_t i, char *buf, size_t len)
{
    if (i >= S_N_PLUGINS)
        return NULL;
    const sl_tx_plugin_t *pl = s_plugins[i];
    size_t o = (size_t) snprintf(buf, len, "- `%s`: %s.\n", pl->name, pl->summary);
    for (const sl_opt_t *opt = pl->options; opt->name && o < len; opt++) {
        if (opt->kinds & SL_TXT_IGNORED)
            o += (size_t) snprintf(buf + o, len - o, "  - `%s`: ignored, with a warning (%s)\n",
                                   opt->name, opt->help);
        else
            o += (size_t) snprintf(buf + o, len - o, "  - `%s` (default %s): %s\n", opt->name,
                                   opt->def, opt->help);
    }
    return pl->name;
}

void
sl_transform_help(FILE *out)
{
    for (size_t i = 0; i < S_N_PLUGINS; i++) {
        const sl_tx_plugin_t *pl = s_plugins[i];
        fprintf(out, "\n### transformer `%s`%s\n\n%s.\n\n", pl->name,
                pl->stateful ? " (stateful)" : "", pl->summary);
        sl_opt_help(out, pl->options, "parameters.");
    }
}
