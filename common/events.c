#include "common/events.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/defn.h"
#include "common/json.h"
#include "common/pipeline.h"
#include "common/pycompat.h"
#include "common/yconf.h"

/* ceilometer/event/converter.py: TraitDefinition, EventDefinition,
 * NotificationEventsConverter; ceilometer/event/models.py: Trait. */

typedef struct {
    const char     *name;
    sl_trait_type_t type;
    sl_defn_t       defn;
} s_trait_def_t;

typedef struct {
    const char *pattern;
    size_t      prefix;         /* literal characters before the first wildcard */
} s_glob_t;

typedef struct {
    size_t         n_incl, n_excl;
    s_glob_t      *incl, *excl;
    size_t         n_traits;
    s_trait_def_t *traits;      /* defaults first, then the definition's */
    int            line;
} s_def_t;

struct sl_events {
    char       *file;
    size_t      n_defs;
    s_def_t    *defs;           /* match order: reverse of the file, catch-all last */
    sl_py_t    *py;
    sl_arena_t  arena;
    unsigned    raw_levels;     /* store_raw: 1 << sl_priority_t of each level */
};

/* Text traits are cut to the TraitText column size. */
#define S_TEXT_MAX 255

/* EventDefinition.DEFAULT_TRAITS, in its order. */
static const struct {
    const char *name, *fields;
} s_defaults[] = {
    { "service", "publisher_id" },
    { "request_id", "ctxt.request_id" },
    { "project_id", "(payload.tenant_id)|(ctxt.project_id)" },
    { "user_id", "(payload.user_id)|(ctxt.user_id)" },
    { "tenant_id", "(payload.tenant_id)|(ctxt.project_id)" },
};
#define S_N_DEFAULTS (sizeof s_defaults / sizeof s_defaults[0])

/* ---- loading ------------------------------------------------------------ */

typedef struct {
    sl_events_t *e;
    sl_ywarn_t  *warn;
    char        *err;
    size_t       errlen;
} s_load_t;

static void
s_def_free(s_def_t *d)
{
    for (size_t i = 0; i < d->n_traits; i++)
        sl_defn_free(&d->traits[i].defn);
    free(d->traits);
    d->traits = NULL;
    d->n_traits = 0;
}

static void
s_glob(s_glob_t *g, const char *pattern)
{
    g->pattern = pattern;
    g->prefix = strcspn(pattern, "*?[");
}

static int
s_event_types(s_load_t *ld, const sl_ynode_t *node, s_def_t *d)
{
    sl_arena_t *a = &ld->e->arena;
    const sl_ynode_t *const *items = (const sl_ynode_t *const *) &node;
    size_t n = 1;
    if (node->kind == SL_Y_SEQ) {
        items = (const sl_ynode_t *const *) node->items;
        n = node->n;
    } else if (node->kind != SL_Y_SCALAR) {
        return sl_yerr(node, ld->err, ld->errlen, "event_type must be a string or a list of "
                       "strings");
    }
    d->incl = sl_arena_alloc(a, (n + 1) * sizeof *d->incl);
    d->excl = sl_arena_alloc(a, (n + 1) * sizeof *d->excl);
    for (size_t i = 0; i < n; i++) {
        if (sl_py_ytype(ld->e->py, items[i]) != SL_PY_Y_STR)
            return sl_yerr(items[i], ld->err, ld->errlen, "event_type must be a string or a "
                           "list of strings");
        const char *t = sl_arena_strdup(a, items[i]->value);
        if (t[0] == '!')
            s_glob(&d->excl[d->n_excl++], t + 1);
        else
            s_glob(&d->incl[d->n_incl++], t);
    }
    if (d->n_excl && !d->n_incl)
        s_glob(&d->incl[d->n_incl++], "*");
    return 0;
}

/* Sets (or replaces in place, as dict assignment does) a trait. */
static s_trait_def_t *
s_trait_slot(s_def_t *d, const char *name, size_t cap)
{
    for (size_t i = 0; i < d->n_traits; i++) {
        if (strcmp(d->traits[i].name, name) == 0) {
            sl_defn_free(&d->traits[i].defn);
            return &d->traits[i];
        }
    }
    if (d->n_traits == cap)
        return NULL;
    s_trait_def_t *t = &d->traits[d->n_traits++];
    memset(t, 0, sizeof *t);
    t->name = name;
    return t;
}

/* Trait.get_type_by_name: getattr(Trait, type.upper() + '_TYPE'). */
static int
s_trait_type(const char *name, sl_trait_type_t *out)
{
    static const struct { const char *n; sl_trait_type_t t; } types[] = {
        { "text", SL_TRAIT_TEXT }, { "int", SL_TRAIT_INT }, { "float", SL_TRAIT_FLOAT },
        { "datetime", SL_TRAIT_DATETIME }, { "none", SL_TRAIT_NONE },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcasecmp(name, types[i].n) == 0) {
            *out = types[i].t;
            return 0;
        }
    }
    return -1;
}

/* EventDefinition.__init__ */
static int
s_compile_def(s_load_t *ld, const sl_ynode_t *cfg, s_def_t *d)
{
    sl_events_t *e = ld->e;
    memset(d, 0, sizeof *d);
    d->line = cfg->line;
    if (cfg->kind != SL_Y_MAP)
        return sl_yerr(cfg, ld->err, ld->errlen, "an event definition must be a mapping with "
                       "event_type and traits");
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->keys[i], "event_type") != 0 && strcmp(cfg->keys[i], "traits") != 0 &&
            sl_ywarn_at(ld->warn, e->file, cfg->key_lines[i], ld->err, ld->errlen,
                        "event definition: ignored key '%s' (Ceilometer reads only event_type "
                        "and traits)", cfg->keys[i]) < 0)
            return -1;
    const sl_ynode_t *et = sl_ynode_get(cfg, "event_type"), *traits = sl_ynode_get(cfg, "traits");
    if (!et)
        return sl_yerr(cfg, ld->err, ld->errlen, "required field event_type not specified");
    if (!traits)
        return sl_yerr(cfg, ld->err, ld->errlen, "required field traits not specified");
    if (s_event_types(ld, et, d) < 0)
        return -1;
    if (traits->kind != SL_Y_MAP)
        return sl_yerr(traits, ld->err, ld->errlen, "traits must be a mapping of trait names "
                       "to definitions");
    size_t cap = S_N_DEFAULTS + traits->n;
    d->traits = sl_xcalloc(cap, sizeof *d->traits);
    char err[1024];
    for (size_t i = 0; i < S_N_DEFAULTS; i++) {
        s_trait_def_t *t = s_trait_slot(d, s_defaults[i].name, cap);
        t->type = SL_TRAIT_TEXT;
        if (sl_defn_compile_text(&t->defn, s_defaults[i].fields, &e->arena, err, sizeof err) < 0)
            return sl_yerr(cfg, ld->err, ld->errlen, "default trait %s: %s", t->name, err);
    }
    for (size_t i = 0; i < traits->n; i++) {
        const char *name = sl_arena_strdup(&e->arena, traits->keys[i]);
        const sl_ynode_t *tc = traits->items[i];
        char what[300];
        snprintf(what, sizeof what, "trait '%s'", name);
        sl_trait_type_t type = SL_TRAIT_TEXT;
        if (tc->kind == SL_Y_MAP) {
            const sl_ynode_t *tn = sl_ynode_get(tc, "type");
            if (tn && (tn->kind != SL_Y_SCALAR || s_trait_type(tn->value, &type) < 0))
                return sl_yerr(tn, ld->err, ld->errlen, "%s: invalid trait type '%s' "
                               "(expected text, int, float or datetime)", what,
                               tn->kind == SL_Y_SCALAR ? tn->value : "(not a scalar)");
        }
        s_trait_def_t *t = s_trait_slot(d, name, cap);
        t->type = type;
        if (sl_defn_compile(&t->defn, e->py, tc, what, &e->arena, SL_DEFN_TRAIT, NULL,
                            ld->warn, ld->err, ld->errlen) < 0)
            return -1;
    }
    return 0;
}

sl_events_t *
sl_events_parse(const char *buf, size_t len, const char *name, sl_ywarn_t *warn, char *err,
                size_t errlen)
{
    sl_ydoc_t *doc = sl_ydoc_parse(buf, len, name, err, errlen);
    if (!doc)
        return NULL;
    sl_events_t *e = sl_xcalloc(1, sizeof *e);
    e->file = sl_xstrdup(doc->file);
    sl_arena_init(&e->arena, 16 * 1024);
    s_load_t ld = { .e = e, .warn = warn, .err = err, .errlen = errlen };
    int rc = -1;
    e->py = sl_py_new();
    if (!e->py) {
        sl_yerr_at(e->file, 0, err, errlen, "cannot compile the built-in patterns");
        goto out;
    }
    const sl_ynode_t *root = doc->root;
    if (!root || root->kind != SL_Y_SEQ) {
        sl_yerr_at(e->file, root ? root->line : 1, err, errlen,
                   "expected a list of event definitions");
        goto out;
    }
    size_t n = root->n;
    e->defs = sl_xcalloc(n + 1, sizeof *e->defs);
    /* self.definitions = [EventDefinition(d) for d in reversed(cfg)] */
    int catchall = 0;
    for (size_t i = n; i-- > 0;) {
        s_def_t *d = &e->defs[e->n_defs++];
        if (s_compile_def(&ld, root->items[i], d) < 0)
            goto out;
        for (size_t k = 0; k < d->n_incl && !d->n_excl; k++)
            catchall |= strcmp(d->incl[k].pattern, "*") == 0;
    }
    if (!catchall) {
        /* drop_unmatched_notifications = False: a catch-all with only the
         * default traits */
        s_def_t *d = &e->defs[e->n_defs++];
        memset(d, 0, sizeof *d);
        d->incl = sl_arena_alloc(&e->arena, sizeof *d->incl);
        s_glob(&d->incl[0], "*");
        d->n_incl = 1;
        d->traits = sl_xcalloc(S_N_DEFAULTS, sizeof *d->traits);
        for (size_t i = 0; i < S_N_DEFAULTS; i++) {
            s_trait_def_t *t = s_trait_slot(d, s_defaults[i].name, S_N_DEFAULTS);
            t->type = SL_TRAIT_TEXT;
            if (sl_defn_compile_text(&t->defn, s_defaults[i].fields, &e->arena, err,
                                     errlen) < 0)
                goto out;
        }
    }
    rc = 0;
out:
    sl_ydoc_destroy(&doc);
    if (rc < 0)
        sl_events_destroy(&e);
    return e;
}

sl_events_t *
sl_events_load(const char *path, sl_ywarn_t *warn, char *err, size_t errlen)
{
    size_t len;
    char *buf = sl_ydoc_read(path, &len, err, errlen);
    if (!buf)
        return NULL;
    sl_events_t *e = sl_events_parse(buf, len, path, warn, err, errlen);
    free(buf);
    return e;
}

int
sl_events_reads_under(const sl_events_t *e, const char *top,
                      void (*fn)(const char *key, void *ud), void *ud)
{
    if (!e)
        return 0;
    int all = e->raw_levels != 0;
    for (size_t i = 0; i < e->n_defs; i++)
        for (size_t k = 0; k < e->defs[i].n_traits; k++)
            all |= sl_defn_reads_under(&e->defs[i].traits[k].defn, top, fn, ud);
    return all;
}

void
sl_events_destroy(sl_events_t **e_p)
{
    if (!e_p || !*e_p)
        return;
    sl_events_t *e = *e_p;
    for (size_t i = 0; i < e->n_defs; i++)
        s_def_free(&e->defs[i]);
    free(e->defs);
    sl_py_destroy(&e->py);
    sl_arena_destroy(&e->arena);
    free(e->file);
    free(e);
    *e_p = NULL;
}

size_t
sl_events_count(const sl_events_t *e)
{
    return e ? e->n_defs : 0;
}

/* ---- conversion --------------------------------------------------------- */

static int
s_glob_match(const s_glob_t *g, const char *s)
{
    if (g->prefix && strncmp(s, g->pattern, g->prefix) != 0)
        return 0;
    return sl_pipeline_fnmatch(s, g->pattern);
}

/* EventDefinition.match_type */
static int
s_match(const s_def_t *d, const char *et)
{
    int in = 0;
    for (size_t i = 0; i < d->n_incl && !in; i++)
        in = s_glob_match(&d->incl[i], et);
    if (!in)
        return 0;
    for (size_t i = 0; i < d->n_excl; i++)
        if (s_glob_match(&d->excl[i], et))
            return 0;
    return 1;
}

/* Trait.convert_value(type, value): 0 with *out, -1 where Python raises
 * (the event is then dropped). */
static int
s_convert(const sl_events_t *e, sl_trait_type_t type, yajl_val v, sl_arena_t *a, yajl_val *out)
{
    switch (type) {
    case SL_TRAIT_INT:
        switch (v->type) {
        case yajl_t_true:
        case yajl_t_false:
            *out = sl_py_new_int(a, v->type == yajl_t_true);
            return 0;
        case yajl_t_string: {
            const char *t = sl_py_int_str(a, v->u.string);
            if (!t)
                return -1;
            *out = sl_py_new_number(a, t);
            return 0;
        }
        case yajl_t_number:
            if (!sl_py_is_float(v)) {
                if (!v->u.number.r) {
                    *out = sl_py_new_int(a, v->u.number.i);
                    return 0;
                }
                /* NULL only past Python's digit limit, which sl_json_parse
                 * refuses already: defensive, never strtoll(NULL). */
                const char *t = sl_py_int_str(a, v->u.number.r);
                if (!t)
                    return -1;
                *out = sl_py_new_number(a, t);
                return 0;
            } else {
                double d = v->u.number.r ? strtod(v->u.number.r, NULL) : v->u.number.d;
                if (!isfinite(d))
                    return -1;  /* OverflowError / ValueError */
                *out = sl_py_new_number(a, sl_arena_printf(a, "%.0f", trunc(d) == 0 ? 0.0
                                                                     : trunc(d)));
                return 0;
            }
        default:
            return -1;
        }
    case SL_TRAIT_FLOAT: {
        double d;
        switch (v->type) {
        case yajl_t_true:
        case yajl_t_false:
            d = v->type == yajl_t_true;
            break;
        case yajl_t_string:
            if (sl_py_float_str(v->u.string, &d) < 0)
                return -1;
            break;
        case yajl_t_number:
            d = v->u.number.r ? strtod(v->u.number.r, NULL) : v->u.number.d;
            if (!sl_py_is_float(v) && isinf(d))
                return -1;      /* int too large to convert to float */
            break;
        default:
            return -1;
        }
        *out = sl_py_new_float(a, d);
        return 0;
    }
    case SL_TRAIT_DATETIME: {
        sl_py_dt_t t;
        if (v->type != yajl_t_string || sl_py_parse_isotime(e->py, v->u.string, &t) < 0 ||
            sl_py_dt_to_utc(&t) < 0)
            return -1;
        const char *s = sl_py_dt_isoformat(a, &t, 0);
        *out = sl_json_new_string(a, s, strlen(s));
        return 0;
    }
    default: {
        const char *s = sl_py_str(a, v);
        size_t bl = sl_py_prefix(s, S_TEXT_MAX);
        *out = sl_json_new_string(a, s, bl);
        return 0;
    }
    }
}

void
sl_events_set_store_raw(sl_events_t *e, unsigned levels)
{
    if (e)
        e->raw_levels = levels;
}

int
sl_events_convert(const sl_events_t *e, const sl_notification_t *n, sl_arena_t *a,
                  sl_event_t *out, sl_event_stats_t *stats)
{
    sl_event_stats_t dummy;
    if (!stats)
        stats = &dummy;
    memset(out, 0, sizeof *out);
    if (!e || !n || !n->root || !n->event_type || !a)
        return 0;
    /* EventEndpoint has only info() and error(). */
    if (n->priority != SL_PRIO_INFO && n->priority != SL_PRIO_ERROR) {
        stats->other_priority++;
        return 0;
    }
    const s_def_t *d = NULL;
    for (size_t i = 0; i < e->n_defs && !d; i++)
        if (s_match(&e->defs[i], n->event_type))
            d = &e->defs[i];
    if (!d) {
        stats->no_definition++;
        return 0;
    }
    /* when = normalize_time(parse_isotime(metadata.timestamp)) */
    sl_py_dt_t when;
    if (!n->timestamp || sl_py_parse_isotime(e->py, n->timestamp, &when) < 0 ||
        sl_py_dt_to_utc(&when) < 0) {
        stats->failed++;
        return 0;
    }
    yajl_val view = sl_notification_view(n, a);
    sl_trait_t *traits = sl_arena_alloc(a, (d->n_traits + 1) * sizeof *traits);
    size_t nt = 0;
    for (size_t i = 0; i < d->n_traits; i++) {
        const s_trait_def_t *td = &d->traits[i];
        yajl_val *vals;
        long k = sl_defn_parse(&td->defn, e->py, view, a, 0, &vals);
        if (k < 0) {
            stats->failed++;
            return 0;
        }
        if (k == 0 || !vals[0] || vals[0]->type == yajl_t_null)
            continue;
        yajl_val v = vals[0];
        /* some projects emit '' for null fields (dates) */
        if (td->type != SL_TRAIT_TEXT && v->type == yajl_t_string && !v->u.string[0])
            continue;
        yajl_val cv;
        if (s_convert(e, td->type, v, a, &cv) < 0) {
            stats->failed++;
            return 0;
        }
        traits[nt].name = td->name;
        traits[nt].dtype = td->type;
        traits[nt].value = cv;
        nt++;
    }
    out->event_type = n->event_type;
    out->message_id = n->message_id;
    /* EventDefinition.to_event: raw = notification_body if priority in
     * raw_levels else {} (the view is what the endpoint got) */
    out->raw = (e->raw_levels >> n->priority) & 1u ? view : NULL;
    out->generated = sl_py_dt_isoformat(a, &when, 0);
    out->traits = traits;
    out->n_traits = nt;
    stats->events++;
    return 1;
}

static int
s_str(yajl_gen g, const char *s)
{
    if (!s)
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    return yajl_gen_string(g, (const unsigned char *) s, strlen(s)) == yajl_gen_status_ok ? 0 : -1;
}

int
sl_event_gen(yajl_gen g, const sl_event_t *ev)
{
    if (yajl_gen_map_open(g) != yajl_gen_status_ok)
        return -1;
    if (s_str(g, "event_type") < 0 || s_str(g, ev->event_type) < 0 ||
        s_str(g, "generated") < 0 || s_str(g, ev->generated) < 0 ||
        s_str(g, "message_id") < 0 || s_str(g, ev->message_id) < 0)
        return -1;
    if (ev->raw && (s_str(g, "raw") < 0 || sl_json_gen_val(g, ev->raw) < 0))
        return -1;
    if (s_str(g, "traits") < 0 || yajl_gen_array_open(g) != yajl_gen_status_ok)
        return -1;
    for (size_t i = 0; i < ev->n_traits; i++) {
        const sl_trait_t *t = &ev->traits[i];
        if (yajl_gen_array_open(g) != yajl_gen_status_ok || s_str(g, t->name) < 0 ||
            yajl_gen_integer(g, t->dtype) != yajl_gen_status_ok ||
            sl_json_gen_val(g, t->value) < 0 || yajl_gen_array_close(g) != yajl_gen_status_ok)
            return -1;
    }
    if (yajl_gen_array_close(g) != yajl_gen_status_ok)
        return -1;
    return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}

int
sl_event_put(sl_buf_t *b, yajl_gen *scratch, const sl_event_t *ev)
{
    sl_buf_puts(b, "{\"event_type\":");
    sl_json_put_strz(b, scratch, ev->event_type);
    sl_buf_puts(b, ",\"generated\":");
    sl_json_put_strz(b, scratch, ev->generated);
    sl_buf_puts(b, ",\"message_id\":");
    sl_json_put_strz(b, scratch, ev->message_id);
    if (ev->raw) {
        sl_buf_puts(b, ",\"raw\":");
        if (sl_json_put_val(b, scratch, ev->raw) < 0)
            return -1;
    }
    sl_buf_puts(b, ",\"traits\":[");
    for (size_t i = 0; i < ev->n_traits; i++) {
        const sl_trait_t *t = &ev->traits[i];
        char num[16];
        int n = snprintf(num, sizeof num, ",%d,", (int) t->dtype);
        if (i)
            sl_buf_puts(b, ",");
        sl_buf_puts(b, "[");
        sl_json_put_strz(b, scratch, t->name);
        sl_buf_put(b, num, (size_t) n);
        if (sl_json_put_val(b, scratch, t->value) < 0)
            return -1;
        sl_buf_puts(b, "]");
    }
    sl_buf_puts(b, "]}");
    return 0;
}

const char *
sl_event_json(sl_arena_t *a, const sl_event_t *ev)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    const char *r = NULL;
    if (sl_event_gen(g, ev) == 0) {
        const unsigned char *buf;
        size_t len;
        if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
            r = sl_arena_strndup(a, (const char *) buf, len);
    }
    yajl_gen_free(g);
    return r;
}
