#include "common/defn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/json.h"

/* ceilometer/event/trait_plugins.py */
typedef enum { P_SPLIT, P_BITFIELD, P_TIMEDELTA } s_pkind_t;

typedef struct {
    const char *path;
    long long   bit;
    yajl_val    value;          /* NULL: no `value`, any non-None value sets the bit */
} s_flag_t;

struct sl_tplugin {
    s_pkind_t   kind;
    const char *separator;      /* split */
    long long   segment;
    int         has_max_split;
    long long   max_split;
    long long   initial;        /* bitfield */
    size_t      n_flags;
    s_flag_t   *flags;
};

static int
s_err(const sl_ynode_t *node, char *err, size_t errlen, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
s_err(const sl_ynode_t *node, char *err, size_t errlen, const char *what, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sl_yerr(node, err, errlen, "%s: %s", what, msg);
}

/* An int parameter (YAML int, or a string int() accepts, as Python's
 * int(x) would). */
static int
s_param_int(const sl_py_t *py, const sl_ynode_t *n, long long *out)
{
    sl_py_ytype_t t = sl_py_ytype(py, n);
    if (t == SL_PY_Y_INT)
        return sl_py_yint(n->value, out);
    if (t == SL_PY_Y_BOOL) {
        *out = sl_ynode_bool(n) == 1;
        return 0;
    }
    return -1;
}

static int
s_load_plugin(sl_defn_t *d, const sl_py_t *py, const sl_ynode_t *node, const char *what,
              sl_arena_t *mem, sl_ywarn_t *warn, char *err, size_t errlen)
{
    const sl_ynode_t *name = node, *params = NULL;
    if (node->kind == SL_Y_MAP) {
        for (size_t i = 0; i < node->n; i++)
            if (strcmp(node->keys[i], "name") != 0 && strcmp(node->keys[i], "parameters") != 0 &&
                sl_ywarn_at(warn, node->doc ? node->doc->file : NULL, node->key_lines[i], err,
                            errlen, "%s: plugin: ignored key '%s' (Ceilometer reads only name "
                            "and parameters)", what, node->keys[i]) < 0)
                return -1;
        name = sl_ynode_get(node, "name");
        if (!name)
            return s_err(node, err, errlen, what, "plugin specified, but no plugin name "
                         "supplied");
        params = sl_ynode_get(node, "parameters");
        if (params && sl_ynode_is_null(params))
            params = NULL;
        if (params && params->kind != SL_Y_MAP)
            return s_err(params, err, errlen, what, "plugin parameters must be a mapping");
    }
    if (name->kind != SL_Y_SCALAR)
        return s_err(name, err, errlen, what, "the plugin name must be a string");
    sl_tplugin_t *p = sl_arena_alloc(mem, sizeof *p);
    memset(p, 0, sizeof *p);
    if (strcmp(name->value, "split") == 0) {
        p->kind = P_SPLIT;
        p->separator = ".";
    } else if (strcmp(name->value, "bitfield") == 0) {
        p->kind = P_BITFIELD;
    } else if (strcmp(name->value, "timedelta") == 0) {
        p->kind = P_TIMEDELTA;
    } else {
        return s_err(name, err, errlen, what, "no plugin named '%s' (known: split, bitfield, "
                     "timedelta)", name->value);
    }
    for (size_t i = 0; params && i < params->n; i++) {
        const char *k = params->keys[i];
        const sl_ynode_t *v = params->items[i];
        if (p->kind == P_SPLIT && strcmp(k, "separator") == 0) {
            if (sl_py_ytype(py, v) != SL_PY_Y_STR || !v->value[0])
                return s_err(v, err, errlen, what, "split: separator must be a non-empty "
                             "string");
            p->separator = sl_arena_strdup(mem, v->value);
        } else if (p->kind == P_SPLIT && strcmp(k, "segment") == 0) {
            if (s_param_int(py, v, &p->segment) < 0)
                return s_err(v, err, errlen, what, "split: segment must be an integer");
        } else if (p->kind == P_SPLIT && strcmp(k, "max_split") == 0) {
            if (sl_py_ytype(py, v) == SL_PY_Y_NULL)
                continue;
            if (s_param_int(py, v, &p->max_split) < 0)
                return s_err(v, err, errlen, what, "split: max_split must be an integer");
            p->has_max_split = 1;
        } else if (p->kind == P_BITFIELD && strcmp(k, "initial_bitfield") == 0) {
            if (s_param_int(py, v, &p->initial) < 0)
                return s_err(v, err, errlen, what, "bitfield: initial_bitfield must be an "
                             "integer");
        } else if (p->kind == P_BITFIELD && strcmp(k, "flags") == 0) {
            if (sl_ynode_is_null(v))
                continue;
            if (v->kind != SL_Y_SEQ)
                return s_err(v, err, errlen, what, "bitfield: flags must be a list");
            p->flags = sl_arena_alloc(mem, (v->n + 1) * sizeof *p->flags);
            for (size_t f = 0; f < v->n; f++) {
                const sl_ynode_t *fd = v->items[f];
                if (fd->kind != SL_Y_MAP)
                    return s_err(fd, err, errlen, what, "bitfield: a flag must be a mapping "
                                 "with path, bit and optionally value");
                s_flag_t *fl = &p->flags[p->n_flags++];
                memset(fl, 0, sizeof *fl);
                for (size_t j = 0; j < fd->n; j++)
                    if (strcmp(fd->keys[j], "path") && strcmp(fd->keys[j], "bit") &&
                        strcmp(fd->keys[j], "value"))
                        return s_err(fd->items[j], err, errlen, what, "bitfield: unknown "
                                     "flag key '%s' (expected path, bit, value)", fd->keys[j]);
                const sl_ynode_t *path = sl_ynode_get(fd, "path"), *bit = sl_ynode_get(fd, "bit");
                if (!path || sl_py_ytype(py, path) != SL_PY_Y_STR)
                    return s_err(fd, err, errlen, what, "bitfield: a flag needs a string path");
                long long b;
                if (!bit || s_param_int(py, bit, &b) < 0 || b < 0 || b > 62)
                    return s_err(bit ? bit : fd, err, errlen, what, "bitfield: a flag needs a "
                                 "bit between 0 and 62");
                fl->path = sl_arena_strdup(mem, path->value);
                fl->bit = b;
                const sl_ynode_t *val = sl_ynode_get(fd, "value");
                if (val)
                    fl->value = sl_py_yvalue(py, val, mem);
            }
        } else {
            return s_err(v, err, errlen, what, "plugin '%s': unknown parameter '%s'",
                         name->value, k);
        }
    }
    d->plugin = p;
    return 0;
}

int
sl_defn_compile_text(sl_defn_t *d, const char *text, sl_arena_t *mem, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->path = sl_jsonpath_compile(text, err, errlen);
    if (!d->path)
        return -1;
    d->kind = SL_DEFN_PATH;
    d->text = sl_arena_strdup(mem, text);
    return 0;
}

int
sl_defn_compile(sl_defn_t *d, const sl_py_t *py, const sl_ynode_t *node, const char *what,
                sl_arena_t *mem, unsigned flags, sl_defn_rewrite_fn rewrite,
                sl_ywarn_t *warn, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (!node)
        return sl_yerr(NULL, err, errlen, "%s: no value", what);
    const sl_ynode_t *fields = node;
    if (node->kind == SL_Y_MAP) {
        for (size_t i = 0; i < node->n; i++)
            if (strcmp(node->keys[i], "fields") != 0 && strcmp(node->keys[i], "plugin") != 0 &&
                (!(flags & SL_DEFN_TRAIT) || strcmp(node->keys[i], "type") != 0) &&
                sl_ywarn_at(warn, node->doc ? node->doc->file : NULL, node->key_lines[i], err,
                            errlen, "%s: ignored key '%s' (Ceilometer reads only fields, "
                            "plugin%s)", what, node->keys[i],
                            (flags & SL_DEFN_TRAIT) ? ", type" : "") < 0)
                return -1;
        fields = sl_ynode_get(node, "fields");
        if (!fields)
            return s_err(node, err, errlen, what, "the field 'fields' is required");
        const sl_ynode_t *plugin = sl_ynode_get(node, "plugin");
        if (plugin && s_load_plugin(d, py, plugin, what, mem, warn, err, errlen) < 0)
            return -1;
    }
    const char *text = NULL;
    if (fields->kind == SL_Y_SEQ) {
        if (fields->n == 0)
            return s_err(fields, err, errlen, what, "an empty list is not a JSONPath");
        if (fields->n == 1) {
            fields = fields->items[0];
        } else {
            /* '|'.join('(%s)' % path for path in fields) */
            size_t len = 1;
            for (size_t i = 0; i < fields->n; i++) {
                if (fields->items[i]->kind != SL_Y_SCALAR)
                    return s_err(fields->items[i], err, errlen, what, "a list of fields must "
                                 "hold JSONPath strings");
                len += strlen(fields->items[i]->value) + 3;
            }
            char *t = sl_arena_alloc(mem, len), *o = t;
            for (size_t i = 0; i < fields->n; i++)
                o += sprintf(o, "%s(%s)", i ? "|" : "", fields->items[i]->value);
            text = t;
        }
    }
    if (!text) {
        long long iv;
        switch (sl_py_ytype(py, fields)) {
        case SL_PY_Y_INT:
            if (sl_py_yint(fields->value, &iv) < 0)
                return s_err(fields, err, errlen, what, "integer %s out of range",
                             fields->value);
            d->kind = SL_DEFN_CONST;
            d->constant = sl_py_new_int(mem, iv);
            return 0;
        case SL_PY_Y_BOOL:
            d->kind = SL_DEFN_CONST;
            d->constant = sl_py_new_bool(mem, sl_ynode_bool(fields) == 1);
            return 0;
        case SL_PY_Y_STR:
            text = fields->value;
            break;
        default:
            return s_err(fields, err, errlen, what, "'%s' is neither a JSONPath nor an integer",
                         fields->kind == SL_Y_SCALAR ? fields->value : "(not a scalar)");
        }
    }
    if (rewrite) {
        const char *t = rewrite(text, mem);
        if (t)
            text = t;
    }
    char jerr[512];
    d->path = sl_jsonpath_compile(text, jerr, sizeof jerr);
    if (!d->path)
        return s_err(fields, err, errlen, what, "%s", jerr);
    d->kind = SL_DEFN_PATH;
    d->text = sl_arena_strdup(mem, text);
    return 0;
}

void
sl_defn_free(sl_defn_t *d)
{
    if (d)
        sl_jsonpath_destroy(&d->path);
}

/* Python's str.split(sep, maxsplit)[segment] on s; NULL for IndexError. */
static yajl_val
s_split(sl_arena_t *a, const char *s, const sl_tplugin_t *p)
{
    size_t seplen = strlen(p->separator), n = 0, cap = 8;
    const char **starts = sl_arena_alloc(a, cap * sizeof *starts);
    size_t *lens = sl_arena_alloc(a, cap * sizeof *lens);
    const char *q = s;
    for (;;) {
        const char *hit = (!p->has_max_split || p->max_split < 0 ||
                           (long long) n < p->max_split) ? strstr(q, p->separator) : NULL;
        if (n == cap) {
            const char **ns = sl_arena_alloc(a, cap * 2 * sizeof *ns);
            size_t *nl = sl_arena_alloc(a, cap * 2 * sizeof *nl);
            memcpy(ns, starts, n * sizeof *ns);
            memcpy(nl, lens, n * sizeof *nl);
            starts = ns;
            lens = nl;
            cap *= 2;
        }
        starts[n] = q;
        lens[n] = hit ? (size_t) (hit - q) : strlen(q);
        n++;
        if (!hit)
            break;
        q = hit + seplen;
    }
    long long i = p->segment < 0 ? (long long) n + p->segment : p->segment;
    if (i < 0 || i >= (long long) n)
        return NULL;
    return sl_json_new_string(a, starts[i], lens[i]);
}

/* plugin.trait_values(match_list), None values dropped into out. */
static long
s_plugin_values(const sl_tplugin_t *p, const sl_py_t *py, const sl_jsonpath_match_t **m,
                size_t n, sl_arena_t *a, yajl_val *out)
{
    long k = 0;
    switch (p->kind) {
    case P_SPLIT:
        for (size_t i = 0; i < n; i++) {
            yajl_val v = s_split(a, sl_py_str(a, m[i]->value), p);
            if (v)
                out[k++] = v;
        }
        return k;
    case P_BITFIELD: {
        long long bits = p->initial;
        const char **paths = sl_arena_alloc(a, (n + 1) * sizeof *paths);
        for (size_t i = 0; i < n; i++)
            paths[i] = sl_jsonpath_match_path(a, m[i]);
        for (size_t f = 0; f < p->n_flags; f++) {
            /* dict(match_list): the last match of a path wins */
            yajl_val hit = NULL;
            for (size_t i = n; i-- > 0;) {
                if (strcmp(paths[i], p->flags[f].path) == 0) {
                    hit = m[i]->value;
                    break;
                }
            }
            if (hit && (!p->flags[f].value || sl_py_equal(hit, p->flags[f].value)))
                bits |= 1LL << p->flags[f].bit;
        }
        out[k++] = sl_py_new_int(a, bits);
        return k;
    }
    case P_TIMEDELTA: {
        if (n != 2)
            return 0;
        sl_py_dt_t t0, t1;
        if (m[0]->value->type != yajl_t_string || m[1]->value->type != yajl_t_string ||
            sl_py_parse_isotime(py, m[0]->value->u.string, &t0) < 0 ||
            sl_py_parse_isotime(py, m[1]->value->u.string, &t1) < 0)
            return 0;
        int64_t us = sl_py_dt_utc_us(&t1) - sl_py_dt_utc_us(&t0);
        out[k++] = sl_py_new_float(a, fabs((double) us / 1e6));
        return k;
    }
    }
    return 0;
}

long
sl_defn_parse(const sl_defn_t *d, const sl_py_t *py, yajl_val obj, sl_arena_t *a, int all,
              yajl_val **out)
{
    static yajl_val none[1];
    *out = none;
    if (d->kind == SL_DEFN_ABSENT)
        return 0;
    if (d->kind == SL_DEFN_CONST) {
        yajl_val *r = sl_arena_alloc(a, sizeof *r);
        r[0] = d->constant;
        *out = r;
        return 1;
    }
    const sl_jsonpath_match_t **m;
    long n = sl_jsonpath_find(d->path, obj, a, &m);
    if (n < 0)
        return -1;
    /* [match for match in values if return_all_values or match.value is not None] */
    const sl_jsonpath_match_t **kept = sl_arena_alloc(a, ((size_t) n + 1) * sizeof *kept);
    size_t nk = 0;
    for (long i = 0; i < n; i++) {
        if (!m[i])
            return -1;          /* None.value */
        if (all || m[i]->value->type != yajl_t_null)
            kept[nk++] = m[i];
    }
    yajl_val *vals = sl_arena_alloc(a, (nk + 2) * sizeof *vals);
    long nv = 0;
    if (d->plugin) {
        if (all && d->plugin->kind != P_SPLIT)
            return -1;          /* "Plugin ... don't allows to return multiple values" */
        nv = s_plugin_values(d->plugin, py, kept, nk, a, vals);
    } else {
        for (size_t i = 0; i < nk; i++)
            vals[nv++] = kept[i]->value;
    }
    *out = vals;
    if (all)
        return nv;
    return nv ? 1 : 0;
}

int
sl_defn_reads_under(const sl_defn_t *d, const char *top,
                    void (*fn)(const char *key, void *ud), void *ud)
{
    return d && d->kind == SL_DEFN_PATH ? sl_jsonpath_reads_under(d->path, top, fn, ud) : 0;
}
