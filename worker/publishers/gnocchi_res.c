/* gnocchi_res — gnocchi_resources.yaml compiled (worker/publishers/gnocchi_res.h):
 * Ceilometer 19's GnocchiPublisher._load_definitions and ResourcesDefinition. */
#include "worker/publishers/gnocchi_res.h"
#include "worker/publishers/pubjson.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"

/* conf/gnocchi_resources.yaml, compiled in by worker/meson.build. */
extern const char sl_gnocchi_res_yaml[];
extern const size_t sl_gnocchi_res_yaml_len;

typedef struct {
    const char            *name;
    const sl_gnocchi_rd_t *rd;
    const char            *ap;
} s_metric_t;

struct sl_gnocchi_res {
    sl_arena_t        arena;
    sl_py_t          *py;
    sl_ydoc_t        *doc;
    sl_gnocchi_ap_t  *aps;
    size_t            n_aps;
    sl_gnocchi_rd_t  *rds;
    size_t            n_rds;
    s_metric_t       *index;    /* sorted by name, one entry per name */
    size_t            n_index;
};

const char *
sl_gnocchi_res_default_text(size_t *len)
{
    *len = sl_gnocchi_res_yaml_len;
    return sl_gnocchi_res_yaml;
}

/* A str scalar (PyYAML would make it a str), or NULL. */
static const char *
s_str(const sl_py_t *py, const sl_ynode_t *n)
{
    return n && n->kind == SL_Y_SCALAR && sl_py_ytype(py, n) == SL_PY_Y_STR ? n->value : NULL;
}

/* Compact JSON of a YAML node, as gnocchiclient sends the archive policy. */
static const char *
s_yjson(sl_gnocchi_res_t *r, const sl_ynode_t *n)
{
    yajl_val v = sl_py_yvalue(r->py, n, &r->arena);
    return sl_json_dump(&r->arena, v);
}

/* event_create/... : a string or a list of them (_ensure_list). */
static int
s_globs(sl_gnocchi_res_t *r, const sl_ynode_t *n, const char ***out, size_t *nout,
        const char *what, char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    if (!n || sl_ynode_is_null(n))
        return 0;
    size_t cnt = n->kind == SL_Y_SEQ ? n->n : 1;
    const char **g = sl_arena_alloc(&r->arena, (cnt + 1) * sizeof *g);
    for (size_t i = 0; i < cnt; i++) {
        const sl_ynode_t *it = n->kind == SL_Y_SEQ ? n->items[i] : n;
        if (it->kind != SL_Y_SCALAR)
            return sl_yerr(it, err, errlen, "%s must be an event type glob or a list of them",
                           what);
        g[i] = it->value;
    }
    *out = g;
    *nout = cnt;
    return 0;
}

/* One entry of resources: 0 = compiled into rd, 1 = skipped (warned), -1 = error. */
static int
s_resource(sl_gnocchi_res_t *r, const sl_ynode_t *node, sl_gnocchi_rd_t *rd,
           const char *ap_default, const char *ap_override, sl_ywarn_t *warn, char *err,
           size_t errlen)
{
    char why[512];
    memset(rd, 0, sizeof *rd);
    if (node->kind != SL_Y_MAP)
        return sl_ywarn(warn, node, err, errlen, "resources: an entry that is not a mapping is "
                        "skipped, as Ceilometer does") < 0 ? -1 : 1;
    const sl_ynode_t *rt = sl_ynode_get(node, "resource_type");
    const sl_ynode_t *metrics = sl_ynode_get(node, "metrics");
    const char *skip = NULL;
    if (!rt)
        skip = "Required field resource_type not specified";
    else if (!s_str(r->py, rt))
        skip = "Required field resource_type should be a str";
    else if (!metrics)
        skip = "Required field metrics not specified";
    else if (metrics->kind == SL_Y_SCALAR)
        skip = "Required field metrics should be a dict or a list";
    const sl_ynode_t *evattrs = sl_ynode_get(node, "event_attributes");
    int events = sl_ynode_get(node, "event_create") || sl_ynode_get(node, "event_delete") ||
                 sl_ynode_get(node, "event_update");
    if (!skip && events) {
        const sl_ynode_t *id = evattrs && evattrs->kind == SL_Y_MAP ? sl_ynode_get(evattrs, "id")
                                                                   : NULL;
        if (!id)
            skip = "Required field id not specified (in event_attributes)";
        else if (!s_str(r->py, id))
            skip = "Required field id should be a str (in event_attributes)";
    }
    if (skip)
        return sl_ywarn(warn, node, err, errlen, "resource skipped, as Ceilometer skips it: %s",
                        skip) < 0 ? -1 : 1;
    rd->resource_type = rt->value;
    const sl_ynode_t *res_ap = sl_ynode_get(node, "archive_policy");
    if (res_ap)
        sl_warn("%s:%d: archive_policy for a resource type (%s) is deprecated, set it for each "
                "metric instead", node->doc ? node->doc->file : "?", res_ap->line,
                rd->resource_type);
    rd->n_metrics = metrics->n;
    rd->metrics = sl_arena_alloc(&r->arena, (metrics->n + 1) * sizeof *rd->metrics);
    rd->metric_ap = sl_arena_alloc(&r->arena, (metrics->n + 1) * sizeof *rd->metric_ap);
    for (size_t i = 0; i < metrics->n; i++) {
        const char *ap = NULL;
        if (metrics->kind == SL_Y_SEQ) {
            const sl_ynode_t *m = metrics->items[i];
            if (m->kind != SL_Y_SCALAR)
                return sl_yerr(m, err, errlen, "metrics: a list of metric names is expected");
            rd->metrics[i] = m->value;
        } else {
            rd->metrics[i] = metrics->keys[i];
            const sl_ynode_t *extra = metrics->items[i];
            if (extra->kind == SL_Y_MAP) {
                const sl_ynode_t *apn = sl_ynode_get(extra, "archive_policy_name");
                if (apn && sl_py_ytruthy(r->py, apn))
                    ap = apn->kind == SL_Y_SCALAR ? apn->value : NULL;
            }
        }
        if (!ap)
            ap = ap_default;
        if (ap_override)
            ap = ap_override;
        if (res_ap && res_ap->kind == SL_Y_SCALAR)
            ap = res_ap->value;
        rd->metric_ap[i] = ap;
    }
    const sl_ynode_t *attrs = sl_ynode_get(node, "attributes");
    if (attrs && attrs->kind == SL_Y_MAP) {
        rd->attrs = sl_arena_alloc(&r->arena, (attrs->n + 1) * sizeof *rd->attrs);
        for (size_t i = 0; i < attrs->n; i++) {
            char what[300];
            snprintf(what, sizeof what, "resource %s: attribute '%s'", rd->resource_type,
                     attrs->keys[i]);
            sl_gnocchi_attr_t *a = &rd->attrs[rd->n_attrs];
            memset(a, 0, sizeof *a);
            a->name = attrs->keys[i];
            if (sl_defn_compile(&a->defn, r->py, attrs->items[i], what, &r->arena, 0, NULL, warn,
                                why, sizeof why) < 0)
                return sl_errf(err, errlen, "%s", why);
            rd->n_attrs++;
        }
    }
    if (s_globs(r, sl_ynode_get(node, "event_create"), &rd->ev_create, &rd->n_ev_create,
                "event_create", err, errlen) < 0 ||
        s_globs(r, sl_ynode_get(node, "event_delete"), &rd->ev_delete, &rd->n_ev_delete,
                "event_delete", err, errlen) < 0 ||
        s_globs(r, sl_ynode_get(node, "event_update"), &rd->ev_update, &rd->n_ev_update,
                "event_update", err, errlen) < 0)
        return -1;
    if (evattrs && evattrs->kind == SL_Y_MAP) {
        rd->evattrs = sl_arena_alloc(&r->arena, (evattrs->n + 1) * sizeof *rd->evattrs);
        for (size_t i = 0; i < evattrs->n; i++) {
            if (evattrs->items[i]->kind != SL_Y_SCALAR)
                return sl_yerr(evattrs->items[i], err, errlen, "event_attributes: '%s' must "
                               "name a trait", evattrs->keys[i]);
            rd->evattrs[rd->n_evattrs].attr = evattrs->keys[i];
            rd->evattrs[rd->n_evattrs].trait = evattrs->items[i]->value;
            rd->n_evattrs++;
        }
    }
    const sl_ynode_t *assoc = sl_ynode_get(node, "event_associated_resources");
    if (assoc && assoc->kind == SL_Y_MAP) {
        rd->assoc = sl_arena_alloc(&r->arena, (assoc->n + 1) * sizeof *rd->assoc);
        for (size_t i = 0; i < assoc->n; i++) {
            const char *q = s_str(r->py, assoc->items[i]);
            const char *pct = q ? strchr(q, '%') : NULL;
            if (!q || !pct || pct[1] != 's' || strchr(pct + 2, '%'))
                return sl_yerr(assoc->items[i], err, errlen, "event_associated_resources: '%s' "
                               "must be a JSON search query with one %%s (the resource id)",
                               assoc->keys[i]);
            rd->assoc[rd->n_assoc].type = assoc->keys[i];
            rd->assoc[rd->n_assoc].query = q;
            rd->n_assoc++;
        }
    }
    return 0;
}

static int
s_metric_cmp(const void *a, const void *b)
{
    return strcmp(((const s_metric_t *) a)->name, ((const s_metric_t *) b)->name);
}

sl_gnocchi_res_t *
sl_gnocchi_res_parse(const char *text, size_t len, const char *name,
                     const char *archive_policy_override, sl_ywarn_t *warn, char *err,
                     size_t errlen)
{
    sl_gnocchi_res_t *r = sl_xcalloc(1, sizeof *r);
    sl_arena_init(&r->arena, 0);
    r->py = sl_py_new();
    if (!r->py) {
        sl_errf(err, errlen, "cannot compile the built-in patterns (PCRE2)");
        goto fail;
    }
    r->doc = sl_ydoc_parse(text, len, name, err, errlen);
    if (!r->doc)
        goto fail;
    const sl_ynode_t *root = r->doc->root;
    if (root && root->kind != SL_Y_MAP) {
        sl_yerr(root, err, errlen, "gnocchi_resources.yaml must be a mapping (archive_policies, "
                "resources, ...)");
        goto fail;
    }
    const char *ap_default = "ceilometer-low";
    const sl_ynode_t *apd = root ? sl_ynode_get(root, "archive_policy_default") : NULL;
    if (apd && apd->kind == SL_Y_SCALAR)
        ap_default = apd->value;
    const sl_ynode_t *aps = root ? sl_ynode_get(root, "archive_policies") : NULL;
    if (aps && !sl_ynode_is_null(aps)) {
        if (aps->kind != SL_Y_SEQ) {
            sl_yerr(aps, err, errlen, "archive_policies must be a list of archive policies");
            goto fail;
        }
        r->aps = sl_arena_alloc(&r->arena, (aps->n + 1) * sizeof *r->aps);
        for (size_t i = 0; i < aps->n; i++) {
            const sl_ynode_t *ap = aps->items[i];
            const char *n = ap->kind == SL_Y_MAP ? s_str(r->py, sl_ynode_get(ap, "name")) : NULL;
            if (!n) {
                sl_yerr(ap, err, errlen, "archive_policies: each entry needs a name");
                goto fail;
            }
            r->aps[r->n_aps].name = n;
            r->aps[r->n_aps].body = s_yjson(r, ap);
            r->n_aps++;
        }
    }
    const sl_ynode_t *res = root ? sl_ynode_get(root, "resources") : NULL;
    if (res && !sl_ynode_is_null(res)) {
        if (res->kind != SL_Y_SEQ) {
            sl_yerr(res, err, errlen, "resources must be a list of resource definitions");
            goto fail;
        }
        r->rds = sl_xcalloc(res->n + 1, sizeof *r->rds);
        for (size_t i = 0; i < res->n; i++) {
            int rc = s_resource(r, res->items[i], &r->rds[r->n_rds], ap_default,
                                archive_policy_override, warn, err, errlen);
            if (rc < 0)
                goto fail;
            if (rc == 0)
                r->n_rds++;
        }
    }
    size_t total = 0;
    for (size_t i = 0; i < r->n_rds; i++)
        total += r->rds[i].n_metrics;
    r->index = sl_xcalloc(total + 1, sizeof *r->index);
    /* metric_map = dict((metric, rd) for rd in defs for metric in rd.metrics):
     * a later definition of a name replaces the earlier one */
    for (size_t i = 0; i < r->n_rds; i++)
        for (size_t k = 0; k < r->rds[i].n_metrics; k++) {
            const char *m = r->rds[i].metrics[k];
            size_t j = 0;
            while (j < r->n_index && strcmp(r->index[j].name, m) != 0)
                j++;
            if (j == r->n_index)
                r->n_index++;
            r->index[j].name = m;
            r->index[j].rd = &r->rds[i];
            r->index[j].ap = r->rds[i].metric_ap[k];
        }
    qsort(r->index, r->n_index, sizeof *r->index, s_metric_cmp);
    return r;
fail:
    sl_gnocchi_res_destroy(&r);
    return NULL;
}

sl_gnocchi_res_t *
sl_gnocchi_res_load(const char *path, const char *archive_policy_override, sl_ywarn_t *warn,
                    char *err, size_t errlen)
{
    if (!path) {
        size_t len;
        const char *text = sl_gnocchi_res_default_text(&len);
        return sl_gnocchi_res_parse(text, len, "<embedded>/gnocchi_resources.yaml",
                                    archive_policy_override, warn, err, errlen);
    }
    size_t len;
    char *text = sl_ydoc_read(path, &len, err, errlen);
    if (!text)
        return NULL;
    sl_gnocchi_res_t *r = sl_gnocchi_res_parse(text, len, path, archive_policy_override, warn,
                                               err, errlen);
    free(text);
    return r;
}

void
sl_gnocchi_res_destroy(sl_gnocchi_res_t **res_p)
{
    sl_gnocchi_res_t *r = *res_p;
    if (!r)
        return;
    for (size_t i = 0; r->rds && i < r->n_rds; i++)
        for (size_t k = 0; k < r->rds[i].n_attrs; k++)
            sl_defn_free(&r->rds[i].attrs[k].defn);
    free(r->rds);
    free(r->index);
    sl_ydoc_destroy(&r->doc);
    sl_py_destroy(&r->py);
    sl_arena_destroy(&r->arena);
    free(r);
    *res_p = NULL;
}

size_t
sl_gnocchi_res_n_policies(const sl_gnocchi_res_t *res)
{
    return res->n_aps;
}

const sl_gnocchi_ap_t *
sl_gnocchi_res_policy(const sl_gnocchi_res_t *res, size_t i)
{
    return i < res->n_aps ? &res->aps[i] : NULL;
}

size_t
sl_gnocchi_res_n_resources(const sl_gnocchi_res_t *res)
{
    return res->n_rds;
}

const sl_gnocchi_rd_t *
sl_gnocchi_res_resource(const sl_gnocchi_res_t *res, size_t i)
{
    return i < res->n_rds ? &res->rds[i] : NULL;
}

const sl_gnocchi_rd_t *
sl_gnocchi_res_metric(const sl_gnocchi_res_t *res, const char *name, const char **ap)
{
    if (!name)
        return NULL;
    s_metric_t key = { .name = name };
    const s_metric_t *m = bsearch(&key, res->index, res->n_index, sizeof key, s_metric_cmp);
    if (!m)
        return NULL;
    if (ap)
        *ap = m->ap;
    return m->rd;
}

static int
s_match(const char *const *globs, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], s, 0) == 0)
            return 1;
    return 0;
}

const sl_gnocchi_rd_t *
sl_gnocchi_res_event(const sl_gnocchi_res_t *res, const char *event_type, sl_gnocchi_ev_op_t *op)
{
    *op = SL_GNOCCHI_EV_NONE;
    for (size_t i = 0; event_type && i < res->n_rds; i++) {
        const sl_gnocchi_rd_t *rd = &res->rds[i];
        if (s_match(rd->ev_create, rd->n_ev_create, event_type))
            *op = SL_GNOCCHI_EV_CREATE;
        else if (s_match(rd->ev_delete, rd->n_ev_delete, event_type))
            *op = SL_GNOCCHI_EV_DELETE;
        else if (s_match(rd->ev_update, rd->n_ev_update, event_type))
            *op = SL_GNOCCHI_EV_UPDATE;
        if (*op != SL_GNOCCHI_EV_NONE)
            return rd;
    }
    return NULL;
}

yajl_val
sl_gnocchi_sample_dict(const sl_sample_t *s, sl_arena_t *a)
{
    static const char *const keys[] = {
        "name", "type", "unit", "volume", "user_id", "project_id", "resource_id", "timestamp",
        "resource_metadata", "source", "id", "monotonic_time",
    };
    enum { N = sizeof keys / sizeof *keys };
    yajl_val o = sl_pubjson_node(a, yajl_t_object);
    o->u.object.keys = sl_arena_alloc(a, N * sizeof *o->u.object.keys);
    o->u.object.values = sl_arena_alloc(a, N * sizeof *o->u.object.values);
    char why[128];
    yajl_val vol = s->volume_json ? sl_json_parse(a, s->volume_json, strlen(s->volume_json), 0,
                                                  why, sizeof why) : NULL;
    if (!vol) {
        char buf[32];
        int n = sl_py_float_repr_buf(buf, s->volume);
        vol = sl_json_parse(a, buf, (size_t) n, 0, why, sizeof why);
        if (!vol)
            vol = sl_pubjson_node(a, yajl_t_null);
    }
    const char *mt = s->resource_metadata ? s->resource_metadata : "{}";
    yajl_val meta = sl_json_parse(a, mt, strlen(mt), 0, why, sizeof why);
    if (!meta)
        meta = sl_pubjson_node(a, yajl_t_object);
    yajl_val mono = s->monotonic_time ? sl_json_parse(a, s->monotonic_time,
                                                      strlen(s->monotonic_time), 0, why,
                                                      sizeof why) : NULL;
    yajl_val vals[N] = {
        sl_pubjson_str(a, s->name), sl_pubjson_str(a, s->type), sl_pubjson_str(a, s->unit), vol, sl_pubjson_str(a, s->user_id),
        sl_pubjson_str(a, s->project_id), sl_pubjson_str(a, s->resource_id), sl_pubjson_str(a, s->timestamp), meta,
        sl_pubjson_str(a, s->source), sl_pubjson_str(a, s->id), mono ? mono : sl_pubjson_node(a, yajl_t_null),
    };
    for (size_t i = 0; i < N; i++) {
        o->u.object.keys[i] = keys[i];
        o->u.object.values[i] = vals[i];
    }
    o->u.object.len = N;
    return o;
}

yajl_val
sl_gnocchi_res_sample_attrs(const sl_gnocchi_res_t *res, const sl_gnocchi_rd_t *rd,
                            yajl_val dict, sl_arena_t *a)
{
    yajl_val o = sl_pubjson_node(a, yajl_t_object);
    size_t n = rd->n_attrs;
    o->u.object.keys = sl_arena_alloc(a, (n + 1) * sizeof *o->u.object.keys);
    o->u.object.values = sl_arena_alloc(a, (n + 1) * sizeof *o->u.object.values);
    for (size_t i = 0; i < n; i++) {
        yajl_val *out;
        long k = sl_defn_parse(&rd->attrs[i].defn, res->py, dict, a, 0, &out);
        if (k < 1 || !out[0] || out[0]->type == yajl_t_null)
            continue;
        o->u.object.keys[o->u.object.len] = rd->attrs[i].name;
        o->u.object.values[o->u.object.len] = out[0];
        o->u.object.len++;
    }
    return o;
}
