#include "common/meters.h"

#include "common/hash.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include "common/defn.h"
#include "common/json.h"
#include "common/jsonpath.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "common/yconf.h"

/* How Ceilometer 19 reads a definition (ceilometer/meter/notifications.py,
 * ceilometer/declarative.py) and turns a notification into samples
 * (ceilometer/sample.py, ceilometer/pipeline/sample.py) is reproduced here
 * step by step; the comments name the Python each part mirrors. */

/* ---- compiled definitions ---------------------------------------------- */

/* SAMPLE_ATTRIBUTES, in Ceilometer's order of evaluation. */
enum { A_NAME, A_TYPE, A_VOLUME, A_UNIT, A_TIMESTAMP, A_USER_ID, A_PROJECT_ID,
       A_RESOURCE_ID, A__COUNT };
static const char *s_attr_names[A__COUNT] = {
    "name", "type", "volume", "unit", "timestamp", "user_id", "project_id", "resource_id"
};

typedef struct {
    yajl_val    cfg[A__COUNT];  /* the configured value (name, type, unit), else NULL */
    sl_defn_t   attr[A__COUNT]; /* SL_DEFN_ABSENT when the config value is falsy */
    size_t      n_meta;
    const char **meta_keys;
    sl_defn_t  *meta;
    sl_defn_t   user_meta;
    int         in_lookup[A__COUNT + 2];    /* lookup names: attributes, message, metadata */
    int         lookup;         /* a lookup list was given (non-empty) */
    size_t      n_regex;
    size_t     *regex;          /* indexes into sl_meters_t.regex */
    size_t      meta_group;     /* same metadata config => same group */
    int         line;
} s_def_t;

/* The other `ceilometer.sample.endpoint` entry points, in their order:
 * _sample, hardware.ipmi.{current,fan,temperature,voltage}, http.request,
 * http.response (the meter endpoint comes last). */
enum { B_TELEMETRY, B_IPMI, B_HTTP_REQUEST, B_HTTP_RESPONSE, B__COUNT };
static const char *s_builtin_types[B__COUNT] = {
    "telemetry.polling", "hardware.ipmi.*", "http.request", "http.response"
};

typedef struct {
    pcre2_code *re;
    char       *text;
    size_t      prefix_len;     /* a literal prefix the event type must have ('.' = any) */
    const char *prefix;
} s_regex_t;

struct sl_meters {
    uint64_t     id;            /* unique per load: keys the event_type cache */
    char        *file;
    size_t       n_defs;
    s_def_t     *defs;          /* evaluation order: reverse of the file */
    size_t       n_regex;
    s_regex_t   *regex;         /* distinct event_type patterns */
    size_t       n_meta_groups;
    size_t       builtin_re[B__COUNT];  /* the other endpoints' event_types */
    sl_defn_t    fb_user, fb_project;   /* MeterDefinition's fallbacks */
    sl_py_t     *py;
    sl_arena_t   arena;         /* strings and constants of the definitions */
};

const char sl_meters_default_source[] = "openstack";

static void s_et_forget(const sl_meters_t *m);

/* Backtracking limit for event_type patterns: Python has none and would
 * hang; a worker must not. A pattern hitting it counts as not matching. */
#define SL_METERS_MATCH_LIMIT 1000000

static const char *s_allowed_keys[] = {
    "name", "event_type", "type", "unit", "volume", "resource_id", "user_id",
    "project_id", "timestamp", "metadata", "user_metadata", "lookup", NULL
};

/* ---- loading ------------------------------------------------------------ */

typedef struct {
    sl_meters_t *m;
    sl_ywarn_t  *warn;
    char        *err;
    size_t       errlen;
    const char  *meter;         /* name of the definition being compiled */
    int          fatal;         /* the error is one Ceilometer fails on, not skips */
} s_load_t;

static int
s_lerr(s_load_t *ld, const sl_ynode_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_lerr(s_load_t *ld, const sl_ynode_t *node, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ld->meter)
        return sl_yerr(node, ld->err, ld->errlen, "meter '%s': %s", ld->meter, msg);
    return sl_yerr(node, ld->err, ld->errlen, "%s", msg);
}

/* The stock identity.authenticate name, `$.payload.outcome -
 * $.payload.outcome + 'identity.authenticate.' + $.payload.outcome`, was
 * meant as (A - A) + REST with A - A the empty string; jsonpath-rw-ext
 * parses it right-associatively and str - str fails, so Ceilometer never
 * evaluates it. sluice evaluates REST (see meters.h). */
static const char *
s_concat_hack(const char *text, sl_arena_t *mem)
{
    const char *minus = strstr(text, " - ");
    if (!minus)
        return NULL;
    size_t al = (size_t) (minus - text);
    while (al && (text[al - 1] == ' ' || text[al - 1] == '\t'))
        al--;
    const char *rest = minus + 3;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (al == 0 || strncmp(rest, text, al) != 0)
        return NULL;
    rest += al;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest != '+')
        return NULL;
    rest++;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    return *rest ? sl_arena_strdup(mem, rest) : NULL;
}

/* The literal start of a Python pattern: letters, digits, `_`, `-` and `.`
 * (any character) before the first other construct; nothing if the
 * pattern has an alternation anywhere. A cheap filter in front of PCRE2. */
static void
s_regex_prefix(s_regex_t *r)
{
    const char *t = r->text;
    r->prefix = t;
    r->prefix_len = 0;
    if (strchr(t, '|'))
        return;
    size_t n = 0;
    while ((t[n] >= 'a' && t[n] <= 'z') || (t[n] >= 'A' && t[n] <= 'Z') ||
           (t[n] >= '0' && t[n] <= '9') || t[n] == '_' || t[n] == '-' || t[n] == '.')
        n++;
    if (n && (t[n] == '*' || t[n] == '+' || t[n] == '?' || t[n] == '{'))
        n--;
    r->prefix_len = n;
}

/* Index of pattern `text` in the table (compiled once). */
static int
s_add_regex_text(s_load_t *ld, const sl_ynode_t *node, const char *text, size_t *idx)
{
    sl_meters_t *m = ld->m;
    for (size_t i = 0; i < m->n_regex; i++) {
        if (strcmp(m->regex[i].text, text) == 0) {
            *idx = i;
            return 0;
        }
    }
    char rerr[300];
    /* re.match(): anchored at the start only. */
    pcre2_code *re = sl_py_re_compile(text, PCRE2_ANCHORED, rerr, sizeof rerr);
    if (!re)
        return s_lerr(ld, node, "event_type '%s': %s", text, rerr);
    m->regex = sl_xrealloc(m->regex, (m->n_regex + 1) * sizeof *m->regex);
    s_regex_t *r = &m->regex[m->n_regex];
    r->re = re;
    r->text = sl_xstrdup(text);
    s_regex_prefix(r);
    *idx = m->n_regex++;
    return 0;
}

static int
s_add_regex(s_load_t *ld, const sl_ynode_t *node, size_t *idx)
{
    return s_add_regex_text(ld, node, node->value, idx);
}

static int
s_compile_event_types(s_load_t *ld, const sl_ynode_t *node, s_def_t *d)
{
    const sl_ynode_t *const *items = (const sl_ynode_t *const *) &node;
    size_t n = 1;
    if (node->kind == SL_Y_SEQ) {
        items = (const sl_ynode_t *const *) node->items;
        n = node->n;
    } else if (node->kind != SL_Y_SCALAR) {
        return s_lerr(ld, node, "event_type must be a string or a list of strings");
    }
    d->regex = sl_arena_alloc(&ld->m->arena, (n ? n : 1) * sizeof *d->regex);
    d->n_regex = 0;
    for (size_t i = 0; i < n; i++) {
        if (sl_py_ytype(ld->m->py, items[i]) != SL_PY_Y_STR)
            return s_lerr(ld, items[i], "event_type must be a string or a list of strings");
        if (s_add_regex(ld, items[i], &d->regex[d->n_regex]) < 0)
            return -1;
        d->n_regex++;
    }
    return 0;
}

static int
s_field(s_load_t *ld, const sl_ynode_t *node, const char *what, sl_defn_t *f)
{
    char full[400];
    snprintf(full, sizeof full, "meter '%s': %s", ld->meter ? ld->meter : "?", what);
    return sl_defn_compile(f, ld->m->py, node, full, &ld->m->arena, 0, s_concat_hack,
                           ld->warn, ld->err, ld->errlen);
}

static void
s_def_free(s_def_t *d)
{
    for (int i = 0; i < A__COUNT; i++)
        sl_defn_free(&d->attr[i]);
    for (size_t i = 0; i < d->n_meta; i++)
        sl_defn_free(&d->meta[i]);
    free(d->meta);
    sl_defn_free(&d->user_meta);
}

/* A definition Ceilometer would skip: the error in ld->err becomes the
 * warning "skipped meter definition"; 0, or -1 in strict mode. */
static int
s_skip_def(s_load_t *ld, const sl_ynode_t *cfg)
{
    /* the reason without its "file:line: " prefix, whose line we keep */
    const char *why = ld->err;
    int line = cfg->line;
    size_t fl = strlen(ld->m->file);
    if (strncmp(why, ld->m->file, fl) == 0 && why[fl] == ':') {
        char *end;
        long l = strtol(why + fl + 1, &end, 10);
        if (end[0] == ':' && end[1] == ' ') {
            line = (int) l;
            why = end + 2;
        }
    }
    char reason[768];
    snprintf(reason, sizeof reason, "%s", why);
    return sl_ywarn_at(ld->warn, ld->m->file, line, ld->err, ld->errlen, "skipped meter "
                       "definition: %s (Ceilometer logs this and serves the other definitions)",
                       reason);
}

/* MeterDefinition.__init__ */
static int
s_compile_def(s_load_t *ld, const sl_ynode_t *cfg, s_def_t *d)
{
    sl_meters_t *m = ld->m;
    memset(d, 0, sizeof *d);
    d->line = cfg->line;
    for (size_t i = 0; i < cfg->n; i++) {
        int ok = 0;
        for (const char **k = s_allowed_keys; *k && !ok; k++)
            ok = strcmp(*k, cfg->keys[i]) == 0;
        if (!ok && sl_ywarn_at(ld->warn, m->file, cfg->key_lines[i], ld->err, ld->errlen,
                               "meter '%s': ignored key '%s' (Ceilometer does not read it)",
                               ld->meter, cfg->keys[i]) < 0) {
            ld->fatal = 1;
            return -1;
        }
    }
    static const char *required[] = { "name", "type", "event_type", "unit", "volume",
                                      "resource_id" };
    char missing[128] = "";
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!sl_py_ytruthy(m->py, sl_ynode_get(cfg, required[i])))
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                     missing[0] ? ", " : "", required[i]);
    }
    if (missing[0])
        return s_lerr(ld, cfg, "required field(s) %s not specified", missing);
    /* re.compile() raises re.error, which Ceilometer does not catch: it
     * fails to start, and so does sluice */
    if (s_compile_event_types(ld, sl_ynode_get(cfg, "event_type"), d) < 0) {
        ld->fatal = 1;
        return -1;
    }

    /* lookup: a name or a list of names */
    const sl_ynode_t *lk = sl_ynode_get(cfg, "lookup");
    if (lk && !sl_ynode_is_null(lk)) {
        const sl_ynode_t *const *items = (const sl_ynode_t *const *) &lk;
        size_t n = 1;
        if (lk->kind == SL_Y_SEQ) {
            items = (const sl_ynode_t *const *) lk->items;
            n = lk->n;
        }
        for (size_t i = 0; i < n; i++) {
            if (items[i]->kind != SL_Y_SCALAR)
                return s_lerr(ld, items[i], "lookup must be a name or a list of names");
            int found = 0;
            for (int a = 0; a < A__COUNT; a++)
                if (strcmp(items[i]->value, s_attr_names[a]) == 0)
                    found = d->in_lookup[a] = 1;
            if (strcmp(items[i]->value, "message") == 0)
                found = d->in_lookup[A__COUNT] = 1;
            if (strcmp(items[i]->value, "metadata") == 0)
                found = d->in_lookup[A__COUNT + 1] = 1;
            if (!found)
                return s_lerr(ld, items[i], "lookup: '%s' is not a sample attribute",
                              items[i]->value);
        }
        d->lookup = n > 0;
    }

    const sl_ynode_t *type = sl_ynode_get(cfg, "type");
    if (!d->in_lookup[A_TYPE] &&
        (sl_py_ytype(m->py, type) != SL_PY_Y_STR ||
         (strcmp(type->value, "gauge") != 0 && strcmp(type->value, "delta") != 0 &&
          strcmp(type->value, "cumulative") != 0)))
        return s_lerr(ld, type, "invalid type %s (expected gauge, delta or cumulative)",
                      type->kind == SL_Y_SCALAR ? type->value : "(not a scalar)");

    for (int a = 0; a < A__COUNT; a++) {
        const sl_ynode_t *v = sl_ynode_get(cfg, s_attr_names[a]);
        if (a == A_NAME || a == A_TYPE || a == A_UNIT)
            d->cfg[a] = sl_py_yvalue(m->py, v, &m->arena);
        /* `if attr_cfg:` -- a falsy value means no attribute at all */
        if (sl_py_ytruthy(m->py, v) && s_field(ld, v, s_attr_names[a], &d->attr[a]) < 0)
            return -1;
    }
    const sl_ynode_t *md = sl_ynode_get(cfg, "metadata");
    if (md && !sl_ynode_is_null(md)) {
        if (md->kind != SL_Y_MAP)
            return s_lerr(ld, md, "metadata must be a mapping of names to JSONPaths");
        d->n_meta = md->n;
        d->meta_keys = sl_arena_alloc(&m->arena, (md->n ? md->n : 1) * sizeof *d->meta_keys);
        d->meta = sl_xcalloc(md->n ? md->n : 1, sizeof *d->meta);
        for (size_t i = 0; i < md->n; i++) {
            d->meta_keys[i] = sl_arena_strdup(&m->arena, md->keys[i]);
            char what[300];
            snprintf(what, sizeof what, "metadata.%s", md->keys[i]);
            if (s_field(ld, md->items[i], what, &d->meta[i]) < 0)
                return -1;
        }
    }
    const sl_ynode_t *um = sl_ynode_get(cfg, "user_metadata");
    if (sl_py_ytruthy(m->py, um) && s_field(ld, um, "user_metadata", &d->user_meta) < 0)
        return -1;
    return 0;
}

/* A canonical text of a field's configuration, to share metadata work. */
static const char *
s_defn_sig(sl_arena_t *a, const sl_defn_t *f)
{
    if (f->kind == SL_DEFN_CONST)
        return sl_arena_printf(a, "C%s", sl_json_scalar_text(a, f->constant));
    if (f->kind == SL_DEFN_PATH)
        return sl_arena_printf(a, "P%p%s", (void *) f->plugin, f->text);
    return "";
}

/* Definitions with the same metadata and user_metadata configuration (the
 * stock file merges one block into several) share one evaluation per
 * notification. */
static void
s_assign_meta_groups(sl_meters_t *m)
{
    sl_arena_t tmp;
    sl_arena_init(&tmp, 0);
    const char **sigs = sl_arena_alloc(&tmp, (m->n_defs + 1) * sizeof *sigs);
    for (size_t i = 0; i < m->n_defs; i++) {
        s_def_t *d = &m->defs[i];
        const char *s = "";
        for (size_t k = 0; k < d->n_meta; k++)
            s = sl_arena_printf(&tmp, "%s%s\x01%s\x02", s, d->meta_keys[k],
                                s_defn_sig(&tmp, &d->meta[k]));
        s = sl_arena_printf(&tmp, "%s\x03%s", s, s_defn_sig(&tmp, &d->user_meta));
        sigs[i] = s;
        d->meta_group = m->n_meta_groups;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sigs[j], s) == 0) {
                d->meta_group = m->defs[j].meta_group;
                break;
            }
        }
        if (d->meta_group == m->n_meta_groups)
            m->n_meta_groups++;
    }
    sl_arena_destroy(&tmp);
}

sl_meters_t *
sl_meters_parse(const char *buf, size_t len, const char *name, sl_ywarn_t *warn, char *err,
                size_t errlen)
{
    sl_ydoc_t *doc = sl_ydoc_parse(buf, len, name, err, errlen);
    if (!doc)
        return NULL;
    sl_meters_t *m = sl_xcalloc(1, sizeof *m);
    static _Atomic uint64_t s_next_id = 1;
    m->id = atomic_fetch_add(&s_next_id, 1);
    m->file = sl_xstrdup(doc->file);
    sl_arena_init(&m->arena, 16 * 1024);
    s_load_t ld = { .m = m, .warn = warn, .err = err, .errlen = errlen };
    int rc = -1;
    char **names = NULL;
    s_def_t *tmp = NULL;
    size_t n_tmp = 0;
    m->py = sl_py_new();
    if (!m->py) {
        sl_yerr_at(m->file, 0, err, errlen, "cannot compile the built-in patterns");
        goto out;
    }
    /* MeterDefinition's _fallback_user_id / _fallback_project_id */
    if (sl_defn_compile_text(&m->fb_user, "ctxt.user_id|ctxt.user", &m->arena, err,
                             errlen) < 0 ||
        sl_defn_compile_text(&m->fb_project, "ctxt.project_id|ctxt.tenant_id", &m->arena,
                             err, errlen) < 0)
        goto out;
    for (int b = 0; b < B__COUNT; b++)
        if (s_add_regex_text(&ld, NULL, s_builtin_types[b], &m->builtin_re[b]) < 0)
            goto out;
    const sl_ynode_t *root = doc->root;
    if (!root || root->kind != SL_Y_MAP) {
        sl_yerr_at(m->file, root ? root->line : 1, err, errlen,
                   "expected a mapping with a `metric:` list");
        goto out;
    }
    for (size_t i = 0; i < root->n; i++)
        if (strcmp(root->keys[i], "metric") != 0 &&
            sl_ywarn_at(warn, m->file, root->key_lines[i], err, errlen, "ignored top-level key "
                        "'%s' (Ceilometer reads only metric)", root->keys[i]) < 0)
            goto out;
    const sl_ynode_t *metric = sl_ynode_get(root, "metric");
    if (!metric || metric->kind != SL_Y_SEQ) {
        sl_yerr(metric ? metric : root, err, errlen,
                "`metric:` must be a list of meter definitions");
        goto out;
    }
    /* ProcessMeterNotifications._load_definitions walks the list backwards
     * and skips a name it has already loaded: the last definition of a name
     * wins, and samples come out in reverse file order. */
    size_t n = metric->n;
    names = sl_xcalloc(n ? n : 1, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        const sl_ynode_t *cfg = metric->items[i];
        if (cfg->kind != SL_Y_MAP) {
            sl_yerr(cfg, err, errlen, "a meter definition must be a mapping");
            goto out;
        }
        const sl_ynode_t *nm = sl_ynode_get(cfg, "name");
        names[i] = nm && nm->kind == SL_Y_SCALAR ? (char *) nm->value : NULL;
    }
    tmp = sl_xcalloc(n ? n : 1, sizeof *tmp);
    char **loaded = sl_xcalloc(n ? n : 1, sizeof *loaded);
    size_t n_loaded = 0;
    for (size_t i = n; i-- > 0;) {
        const sl_ynode_t *cfg = metric->items[i];
        /* `if meter_cfg.get('name') in definitions`: only a later
         * definition that loaded shadows this one */
        int shadowed = 0;
        for (size_t j = 0; j < n_loaded && !shadowed; j++)
            shadowed = names[i] && strcmp(names[i], loaded[j]) == 0;
        if (shadowed) {
            sl_warn("%s:%d: skipping duplicate meter definition '%s' (a later one wins, "
                    "as in Ceilometer)", m->file, cfg->line, names[i]);
            continue;
        }
        ld.meter = names[i] ? names[i] : "?";
        ld.fatal = 0;
        if (s_compile_def(&ld, cfg, &tmp[n_tmp]) == 0) {
            if (names[i])
                loaded[n_loaded++] = names[i];
            n_tmp++;
            continue;
        }
        /* Ceilometer logs a DefinitionException and loads the others */
        s_def_free(&tmp[n_tmp]);
        memset(&tmp[n_tmp], 0, sizeof tmp[n_tmp]);
        if (ld.fatal || s_skip_def(&ld, cfg) < 0) {
            free(loaded);
            goto out;
        }
    }
    free(loaded);
    m->defs = tmp;
    m->n_defs = n_tmp;
    tmp = NULL;
    s_assign_meta_groups(m);
    rc = 0;
out:
    if (tmp) {
        for (size_t k = 0; k < n_tmp; k++)
            s_def_free(&tmp[k]);
        free(tmp);
    }
    free(names);
    sl_ydoc_destroy(&doc);
    if (rc < 0)
        sl_meters_destroy(&m);
    return m;
}

sl_meters_t *
sl_meters_load(const char *path, sl_ywarn_t *warn, char *err, size_t errlen)
{
    size_t len;
    char *buf = sl_ydoc_read(path, &len, err, errlen);
    if (!buf)
        return NULL;
    sl_meters_t *m = sl_meters_parse(buf, len, path, warn, err, errlen);
    free(buf);
    return m;
}

int
sl_meters_reads_under(const sl_meters_t *m, const char *top,
                      void (*fn)(const char *key, void *ud), void *ud)
{
    if (!m)
        return 0;
    int all = sl_defn_reads_under(&m->fb_user, top, fn, ud) |
              sl_defn_reads_under(&m->fb_project, top, fn, ud);
    for (size_t i = 0; i < m->n_defs; i++) {
        const s_def_t *d = &m->defs[i];
        for (int k = 0; k < A__COUNT; k++)
            all |= sl_defn_reads_under(&d->attr[k], top, fn, ud);
        for (size_t k = 0; k < d->n_meta; k++)
            all |= sl_defn_reads_under(&d->meta[k], top, fn, ud);
        all |= sl_defn_reads_under(&d->user_meta, top, fn, ud);
    }
    return all;
}

void
sl_meters_destroy(sl_meters_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    sl_meters_t *m = *m_p;
    s_et_forget(m);
    for (size_t i = 0; i < m->n_defs; i++)
        s_def_free(&m->defs[i]);
    free(m->defs);
    for (size_t i = 0; i < m->n_regex; i++) {
        pcre2_code_free(m->regex[i].re);
        free(m->regex[i].text);
    }
    free(m->regex);
    sl_defn_free(&m->fb_user);
    sl_defn_free(&m->fb_project);
    sl_py_destroy(&m->py);
    sl_arena_destroy(&m->arena);
    free(m->file);
    free(m);
    *m_p = NULL;
}

size_t
sl_meters_count(const sl_meters_t *m)
{
    return m ? m->n_defs : 0;
}

/* ---- conversion --------------------------------------------------------- */

/* Per-definition-group metadata, evaluated at most once per notification. */
typedef struct {
    int         state;          /* 0 not yet, 1 done, -1 raised */
    const char *json;           /* NULL: empty, the payload fallback applies */
} s_meta_memo_t;

typedef struct {
    const sl_meters_t       *m;
    const sl_notification_t *n;
    sl_arena_t              *a;
    yajl_val                 view;      /* Ceilometer's message */
    pcre2_general_context   *gctx;
    pcre2_match_context     *mctx;
    pcre2_match_data        *md;
    signed char             *re_memo;   /* per pattern: -1 unknown, 0, 1 */
    s_meta_memo_t           *meta_memo;
    const char              *fallback;  /* payload-copy metadata, once built */
    yajl_val                 msg_ts;    /* normalised notification timestamp */
    int                      msg_ts_state;
    yajl_val                 fb_user, fb_project;
    int                      fb_state;
} s_conv_t;

static void *
s_pcre_malloc(PCRE2_SIZE size, void *data)
{
    return sl_arena_alloc(data, size);
}

static void
s_pcre_free(void *p, void *data)
{
    (void) p;
    (void) data;
}

static int
s_prefix_ok(const s_regex_t *r, const char *et)
{
    for (size_t i = 0; i < r->prefix_len; i++) {
        if (!et[i] || (unsigned char) et[i] >= 0x80)
            return et[i] != '\0';       /* non-ASCII: let PCRE2 decide */
        if (r->prefix[i] != '.' ? et[i] != r->prefix[i] : et[i] == '\n')
            return 0;
    }
    return 1;
}

static int s_re_matches(s_conv_t *c, size_t r);

static int
s_matches(s_conv_t *c, const s_def_t *d)
{
    for (size_t i = 0; i < d->n_regex; i++)
        if (s_re_matches(c, d->regex[i]))
            return 1;
    return 0;
}

/* Definition.parse(message): the first non-None value, or NULL. -1 where
 * Ceilometer raises. */
static int
s_first(s_conv_t *c, const sl_defn_t *f, yajl_val *out)
{
    yajl_val *v;
    long n = sl_defn_parse(f, c->m->py, c->view, c->a, 0, &v);
    if (n < 0)
        return -1;
    *out = n ? v[0] : NULL;
    return 0;
}

/* The metadata text being written (common/json.h sl_json_put_*), and the
 * generator yajl escapes strings with: per thread, kept from notification
 * to notification (a generator and a buffer allocated per notification
 * were 2% of an ingest worker); freed with a table (s_et_forget). */
static __thread sl_buf_t s_jb;
static __thread yajl_gen s_jg;

static void
s_gen_begin(s_conv_t *c)
{
    (void) c;
    sl_buf_reset(&s_jb);
}

static const char *
s_gen_take(s_conv_t *c)
{
    return sl_arena_strndup(c->a, s_jb.n ? s_jb.p : "", s_jb.n);
}

/* A member's key: ',' before all but the first (*n counts them). */
static void
s_gen_key(int *n, const char *k)
{
    if ((*n)++)
        sl_buf_putc(&s_jb, ',');
    sl_json_put_str(&s_jb, &s_jg, k, strlen(k));
    sl_buf_putc(&s_jb, ':');
}

static void
s_gen_val(yajl_val v)
{
    (void) sl_json_put_val(&s_jb, &s_jg, v);
}

/* Ceilometer's reserved_metadata_length default. */
#define SL_USER_METADATA_MAX 256

/* to_samples()'s metadata plus add_reserved_user_metadata(), as JSON text
 * (NULL when empty, so that from_notification falls back to the payload).
 * -1 where Ceilometer raises. */
static int
s_metadata(s_conv_t *c, const s_def_t *d, const char **json)
{
    s_meta_memo_t *memo = &c->meta_memo[d->meta_group];
    if (memo->state) {
        *json = memo->json;
        return memo->state < 0 ? -1 : 0;
    }
    memo->state = -1;
    yajl_val *vals = sl_arena_alloc(c->a, (d->n_meta ? d->n_meta : 1) * sizeof *vals);
    size_t n_truthy = 0;
    for (size_t i = 0; i < d->n_meta; i++) {
        if (s_first(c, &d->meta[i], &vals[i]) < 0)
            return -1;
        if (!sl_json_truthy(vals[i]))
            vals[i] = NULL;
        else
            n_truthy++;
    }
    /* metadata[name] = value: a later key of the same name (not possible
     * in one YAML mapping) would replace; nothing to do. */
    yajl_val um = NULL;
    if (d->user_meta.kind != SL_DEFN_ABSENT) {
        if (s_first(c, &d->user_meta, &um) < 0)
            return -1;
        if (!sl_json_truthy(um))
            um = NULL;
        else if (um->type != yajl_t_object)
            return -1;          /* src_metadata.items(): AttributeError */
    }
    /* user_metadata: `metering.` keys, prefix cut and dots made `_`, unless
     * that name is already a metadata key; strings cut to 256 characters.
     * A later key mapping to the same name keeps the first position and
     * takes the later value (dict.update). */
    size_t n_user = 0;
    const char **ukeys = NULL;
    yajl_val *uvals = NULL;
    if (um) {
        ukeys = sl_arena_alloc(c->a, (um->u.object.len + 1) * sizeof *ukeys);
        uvals = sl_arena_alloc(c->a, (um->u.object.len + 1) * sizeof *uvals);
        for (size_t i = 0; i < um->u.object.len; i++) {
            const char *k = um->u.object.keys[i];
            if (strncmp(k, "metering.", 9) != 0)
                continue;
            char *nk = sl_arena_strdup(c->a, k + 9);
            for (char *p = nk; *p; p++)
                if (*p == '.')
                    *p = '_';
            int taken = 0;
            for (size_t j = 0; j < d->n_meta && !taken; j++)
                taken = vals[j] && strcmp(d->meta_keys[j], nk) == 0;
            if (taken)
                continue;
            yajl_val v = um->u.object.values[i];
            if (v->type == yajl_t_string) {
                size_t bl = sl_py_prefix(v->u.string, SL_USER_METADATA_MAX);
                if (v->u.string[bl])
                    v = sl_json_new_string(c->a, v->u.string, bl);
            }
            size_t j = 0;
            while (j < n_user && strcmp(ukeys[j], nk) != 0)
                j++;
            ukeys[j] = nk;
            uvals[j] = v;
            if (j == n_user)
                n_user++;
        }
    }
    memo->state = 1;
    memo->json = NULL;
    if (n_truthy == 0 && n_user == 0) {
        *json = NULL;
        return 0;
    }
    s_gen_begin(c);
    int nk = 0;
    sl_buf_putc(&s_jb, '{');
    for (size_t i = 0; i < d->n_meta; i++) {
        if (!vals[i])
            continue;
        s_gen_key(&nk, d->meta_keys[i]);
        s_gen_val(vals[i]);
    }
    if (n_user) {
        s_gen_key(&nk, "user_metadata");
        int nu = 0;
        sl_buf_putc(&s_jb, '{');
        for (size_t i = 0; i < n_user; i++) {
            s_gen_key(&nu, ukeys[i]);
            s_gen_val(uvals[i]);
        }
        sl_buf_putc(&s_jb, '}');
    }
    sl_buf_putc(&s_jb, '}');
    memo->json = s_gen_take(c);
    if (!memo->json) {
        memo->state = -1;
        return -1;
    }
    *json = memo->json;
    return 0;
}

/* from_notification()'s fallback: a copy of the payload (if an object)
 * with event_type and host (the publisher_id) set; a key the payload
 * already has keeps its position. */
static const char *
s_fallback_metadata(s_conv_t *c)
{
    if (c->fallback)
        return c->fallback;
    const sl_notification_t *n = c->n;
    yajl_val host = sl_json_get(n->root, "publisher_id");
    int seen_et = 0, seen_host = 0;
    s_gen_begin(c);
    int nk = 0;
    sl_buf_putc(&s_jb, '{');
    if (n->payload && n->payload->type == yajl_t_object) {
        for (size_t i = 0; i < n->payload->u.object.len; i++) {
            const char *k = n->payload->u.object.keys[i];
            s_gen_key(&nk, k);
            if (strcmp(k, "event_type") == 0) {
                seen_et = 1;
                sl_json_put_strz(&s_jb, &s_jg, n->event_type);
            } else if (strcmp(k, "host") == 0) {
                seen_host = 1;
                s_gen_val(host);
            } else {
                s_gen_val(n->payload->u.object.values[i]);
            }
        }
    }
    if (!seen_et) {
        s_gen_key(&nk, "event_type");
        sl_json_put_strz(&s_jb, &s_jg, n->event_type);
    }
    if (!seen_host) {
        s_gen_key(&nk, "host");
        s_gen_val(host);
    }
    sl_buf_putc(&s_jb, '}');
    c->fallback = s_gen_take(c);
    return c->fallback;
}

/* timeutils.parse_isotime(ts).isoformat(), NULL where it raises. */
static const char *
s_normalise_ts(s_conv_t *c, const char *s)
{
    sl_py_dt_t t;
    if (sl_py_parse_isotime(c->m->py, s, &t) < 0)
        return NULL;
    return sl_py_dt_isoformat(c->a, &t, 1);
}

/* The pipeline's support_meter + _validate_volume: 1 to publish, 0 if
 * the sample is dropped (volume None or not a number), -1 where it raises
 * (fnmatch of a name that is not a string, float() of a list or dict). */
static int
s_publishable(const sl_meters_sample_t *s)
{
    if (!s->name || s->name->type != yajl_t_string)
        return -1;
    yajl_val v = s->volume;
    if (!v || v->type == yajl_t_null)
        return 0;
    double d;
    switch (v->type) {
    case yajl_t_number:
    case yajl_t_true:
    case yajl_t_false:          /* bool is an int in Python */
        return 1;
    case yajl_t_string:
        return sl_py_float_str(v->u.string, &d) < 0 ? 0 : 1;   /* ValueError: dropped */
    default:
        return -1;              /* float(dict or list): TypeError */
    }
}

/* The notification's own timestamp through parse_isotime().isoformat(),
 * once per notification; NULL where it raises. */
static yajl_val
s_msg_ts(s_conv_t *c)
{
    if (!c->msg_ts_state) {
        const char *t = s_normalise_ts(c, c->n->timestamp);
        c->msg_ts = t ? sl_json_new_string(c->a, t, strlen(t)) : NULL;
        c->msg_ts_state = c->msg_ts ? 1 : -1;
    }
    return c->msg_ts;
}

/* Sample.from_notification and the pipeline's checks for one sample's
 * values. 1 with *s filled, 0 if the sample is dropped, -1 where
 * Ceilometer raises (the endpoint's samples are then lost). */
static int
s_finish(s_conv_t *c, yajl_val *vals, const char *metadata, sl_meters_sample_t *s)
{
    memset(s, 0, sizeof *s);
    s->name = vals[A_NAME];
    s->type = vals[A_TYPE];
    s->unit = vals[A_UNIT];
    s->volume = vals[A_VOLUME];
    s->user_id = vals[A_USER_ID];
    s->project_id = vals[A_PROJECT_ID];
    s->resource_id = vals[A_RESOURCE_ID];
    s->resource_metadata = metadata ? metadata : s_fallback_metadata(c);
    if (!s->resource_metadata)
        return -1;
    /* ts = timestamp if timestamp else message['metadata']['timestamp'] */
    yajl_val ts = vals[A_TIMESTAMP];
    if (sl_json_truthy(ts)) {
        const char *t = ts->type == yajl_t_string ? s_normalise_ts(c, ts->u.string) : NULL;
        if (!t)
            return -1;
        s->timestamp = sl_json_new_string(c->a, t, strlen(t));
    } else if (!(s->timestamp = s_msg_ts(c))) {
        return -1;
    }
    return s_publishable(s);
}

/* ---- the other sample endpoints ---------------------------------------- */

typedef struct {
    sl_meters_sample_t *out;
    size_t              max, n_out, produced, dropped;
} s_acc_t;

static void
s_emit(s_acc_t *o, const sl_meters_sample_t *s)
{
    o->produced++;
    if (o->n_out < o->max)
        o->out[o->n_out++] = *s;
}

/* 1 publish, 0 dropped, -1 raise; counts drops. */
static int
s_check(s_acc_t *o, const sl_meters_sample_t *s)
{
    int rc = s_publishable(s);
    if (rc == 0)
        o->dropped++;
    return rc;
}

static yajl_val
s_str_val(sl_arena_t *a, const char *t)
{
    return sl_json_new_string(a, t, strlen(t));
}

/* ceilometer/telemetry/notifications.py TelemetryIpc: the polling agent's
 * samples, taken as they are. */
static int
s_ep_telemetry(s_conv_t *c, s_acc_t *o)
{
    static const char *keys[] = { "counter_name", "counter_type", "counter_unit",
                                  "counter_volume", "user_id", "project_id", "resource_id",
                                  "timestamp", "resource_metadata", "source", "message_id" };
    yajl_val p = c->n->payload;
    if (!p || p->type != yajl_t_object)
        return -1;              /* payload['samples'] on a non-dict */
    yajl_val samples = sl_json_get(p, "samples");
    if (!samples)
        return -1;              /* KeyError */
    size_t n;
    if (samples->type == yajl_t_array)
        n = samples->u.array.len;
    else if ((samples->type == yajl_t_object && samples->u.object.len == 0) ||
             (samples->type == yajl_t_string && !samples->u.string[0]))
        n = 0;
    else
        return -1;              /* iterating a dict gives keys, a str characters */
    for (size_t i = 0; i < n; i++) {
        yajl_val d = samples->u.array.values[i];
        if (d->type != yajl_t_object)
            return -1;
        yajl_val v[11];
        for (int k = 0; k < 11; k++)
            if (!(v[k] = sl_json_get(d, keys[k])))
                return -1;      /* KeyError */
        sl_meters_sample_t s = {
            .name = v[0], .type = v[1], .unit = v[2], .volume = v[3], .user_id = v[4],
            .project_id = v[5], .resource_id = v[6], .timestamp = v[7],
        };
        /* resource_metadata or {}, source or SOURCE_DEFAULT */
        s.resource_metadata = sl_json_truthy(v[8]) ? sl_json_dump(c->a, v[8]) : "{}";
        s.source = sl_json_truthy(v[9]) ? v[9] : NULL;
        int rc = s_check(o, &s);
        if (rc < 0)
            return -1;
        if (rc > 0)
            s_emit(o, &s);
    }
    return 0;
}

/* ceilometer/ipmi/notifications/ironic.py SensorNotification for one
 * metric: one sample per sensor of payload.payload.<metric> whose
 * 'Sensor Reading' parses ("130 (+/- 0) Watts" -> 130.0 W). */
static int
s_ep_ipmi(s_conv_t *c, const char *metric, s_acc_t *o)
{
    yajl_val p = c->n->payload;
    if (!p || p->type != yajl_t_object)
        return -1;              /* message['payload']['payload']: TypeError */
    yajl_val inner = sl_json_get(p, "payload");
    if (!inner)
        return 0;               /* KeyError: [] */
    if (inner->type != yajl_t_object)
        return -1;
    yajl_val sensors = sl_json_get(inner, metric);
    if (!sensors)
        return 0;
    if (sensors->type != yajl_t_object)
        return -1;              /* .items() */
    char lower[32];
    size_t ml = strlen(metric);
    for (size_t i = 0; i <= ml && i < sizeof lower; i++)
        lower[i] = (char) (metric[i] >= 'A' && metric[i] <= 'Z' ? metric[i] + 32 : metric[i]);
    yajl_val name = s_str_val(c->a, sl_arena_printf(c->a, "hardware.ipmi.%s", lower));
    yajl_val node = sl_json_get(p, "node_uuid");
    for (size_t k = 0; k < sensors->u.object.len; k++) {
        yajl_val sensor = sensors->u.object.values[k];
        if (!node)
            continue;           /* KeyError: InvalidSensorData */
        if (sensor->type != yajl_t_object)
            return -1;          /* payload['Sensor ID'] on a non-dict */
        yajl_val sid = sl_json_get(sensor, "Sensor ID");
        if (!sid)
            continue;
        if (sid->type != yajl_t_string)
            return -1;          /* .lower() */
        char *tid = sl_arena_strdup(c->a, sid->u.string);
        for (char *q = tid; *q; q++)
            *q = *q == ' ' ? '_' : (*q >= 'A' && *q <= 'Z') ? (char) (*q + 32) : *q;
        const char *rid = sl_arena_printf(c->a, "%s-%s", sl_py_str(c->a, node), tid);
        /* _package_payload: payload['node'] = node_uuid; timestamp and
         * event_type are required */
        yajl_val ts = sl_json_get(p, "timestamp"), et = sl_json_get(p, "event_type");
        if (!ts || !et)
            return -1;
        yajl_val reading = sl_json_get(sensor, "Sensor Reading");
        if (!reading)
            continue;
        if (reading->type == yajl_t_string && strcmp(reading->u.string, "Disabled") == 0)
            continue;
        if (reading->type != yajl_t_string)
            return -1;          /* .split() */
        const char *sp = strchr(reading->u.string, ' ');
        if (!sp)
            continue;           /* ValueError: InvalidSensorData */
        char *vol = sl_arena_strndup(c->a, reading->u.string,
                                     (size_t) (sp - reading->u.string));
        const char *unit = strrchr(sp + 1, ' ');
        unit = unit ? unit + 1 : sp + 1;
        double d;
        if (sl_py_float_str(vol, &d) < 0)
            continue;
        if (strcmp(unit, "Watts") == 0)
            unit = "W";
        else if (strcmp(unit, "Volts") == 0)
            unit = "V";
        /* from_notification(message=info): metadata is a copy of the
         * sensor dict (with node) plus event_type and host */
        yajl_val host = sl_json_get(c->n->root, "publisher_id");
        s_gen_begin(c);
        int nk = 0;
        sl_buf_putc(&s_jb, '{');
        int seen_node = 0, seen_et = 0, seen_host = 0;
        for (size_t j = 0; j < sensor->u.object.len; j++) {
            const char *key = sensor->u.object.keys[j];
            yajl_val v = sensor->u.object.values[j];
            if (strcmp(key, "node") == 0) {
                seen_node = 1;
                v = node;
            } else if (strcmp(key, "event_type") == 0) {
                seen_et = 1;
                v = et;
            } else if (strcmp(key, "host") == 0) {
                seen_host = 1;
                v = host;
            }
            s_gen_key(&nk, key);
            s_gen_val(v);
        }
        if (!seen_node) {
            s_gen_key(&nk, "node");
            s_gen_val(node);
        }
        if (!seen_et) {
            s_gen_key(&nk, "event_type");
            s_gen_val(et);
        }
        if (!seen_host) {
            s_gen_key(&nk, "host");
            s_gen_val(host);
        }
        sl_buf_putc(&s_jb, '}');
        sl_meters_sample_t s = {
            .name = name, .type = s_str_val(c->a, "gauge"), .unit = s_str_val(c->a, unit),
            .volume = sl_py_new_float(c->a, d), .user_id = sl_json_get(p, "user_id"),
            .project_id = sl_json_get(p, "project_id"), .resource_id = s_str_val(c->a, rid),
        };
        s.resource_metadata = s_gen_take(c);
        /* ts = timestamp if timestamp else message['metadata'] (KeyError) */
        const char *t = sl_json_truthy(ts) && ts->type == yajl_t_string
                        ? s_normalise_ts(c, ts->u.string) : NULL;
        if (!t || !s.resource_metadata)
            return -1;
        s.timestamp = s_str_val(c->a, t);
        int rc = s_check(o, &s);
        if (rc < 0)
            return -1;
        if (rc > 0)
            s_emit(o, &s);
    }
    return 0;
}

/* ceilometer/middleware.py HTTPRequest / HTTPResponse. */
static int
s_ep_http(s_conv_t *c, s_acc_t *o)
{
    const char *et = c->n->event_type, *dot = strchr(et, '.');
    if (!dot)
        return -1;              /* split('.')[1]: IndexError */
    const char *end = strchr(dot + 1, '.');
    const char *unit = end ? sl_arena_strndup(c->a, dot + 1, (size_t) (end - dot - 1))
                           : dot + 1;
    yajl_val p = c->n->payload;
    if (!p || p->type != yajl_t_object)
        return -1;
    yajl_val req = sl_json_get(p, "request");
    if (!req || req->type != yajl_t_object)
        return -1;              /* KeyError, or .get on a non-dict */
    sl_meters_sample_t s = {
        .name = s_str_val(c->a, et), .type = s_str_val(c->a, "delta"),
        .unit = s_str_val(c->a, unit), .volume = sl_py_new_int(c->a, 1),
        .user_id = sl_json_get(req, "HTTP_X_USER_ID"),
        .project_id = sl_json_get(req, "HTTP_X_PROJECT_ID"),
        .resource_id = sl_json_get(req, "HTTP_X_SERVICE_NAME"),
    };
    s.resource_metadata = s_fallback_metadata(c);
    if (!s.resource_metadata || !(s.timestamp = s_msg_ts(c)))
        return -1;
    int rc = s_check(o, &s);
    if (rc < 0)
        return -1;
    if (rc > 0)
        s_emit(o, &s);
    return 0;
}

/* MeterDefinition.to_samples + from_notification for one definition,
 * into o. 0, or -1 where Ceilometer raises. */
static int
s_build(s_conv_t *c, const s_def_t *d, s_acc_t *o)
{
    const sl_meters_t *m = c->m;
    if (!c->fb_state) {
        if (s_first(c, &m->fb_user, &c->fb_user) < 0 ||
            s_first(c, &m->fb_project, &c->fb_project) < 0) {
            c->fb_state = -1;
            return -1;
        }
        c->fb_state = 1;
    }
    if (c->fb_state < 0)
        return -1;
    const char *metadata;
    if (s_metadata(c, d, &metadata) < 0)
        return -1;
    yajl_val base[A__COUNT] = { 0 };
    base[A_NAME] = d->cfg[A_NAME];
    base[A_TYPE] = d->cfg[A_TYPE];
    base[A_UNIT] = d->cfg[A_UNIT];
    base[A_USER_ID] = c->fb_user;
    base[A_PROJECT_ID] = c->fb_project;
    sl_meters_sample_t s;
    if (!d->lookup) {
        for (int a = 0; a < A__COUNT; a++) {
            yajl_val v;
            if (d->attr[a].kind == SL_DEFN_ABSENT)
                continue;
            if (s_first(c, &d->attr[a], &v) < 0)
                return -1;
            if (v)
                base[a] = v;
        }
        int rc = s_finish(c, base, metadata, &s);
        if (rc < 0)
            return -1;
        if (rc == 0)
            o->dropped++;
        else
            s_emit(o, &s);
        return 0;
    }
    /* lookup: every attribute becomes a list; those in lookup (and name)
     * take every value, None included; the others keep their default
     * unless the path finds something. A constant replaces the list by a
     * bare int, and len() of it raises when it is reached. */
    yajl_val *lists[A__COUNT];
    long lens[A__COUNT];
    for (int a = 0; a < A__COUNT; a++) {
        lists[a] = &base[a];
        lens[a] = 1;
        if (d->attr[a].kind == SL_DEFN_ABSENT)
            continue;
        yajl_val *v;
        long n = sl_defn_parse(&d->attr[a], m->py, c->view, c->a, 1, &v);
        if (n < 0)
            return -1;
        if (d->attr[a].kind == SL_DEFN_CONST) {
            if (d->in_lookup[a] || a == A_NAME || sl_json_truthy(v[0]))
                lens[a] = -1;
            continue;
        }
        if (d->in_lookup[a] || a == A_NAME || n > 0) {
            lists[a] = v;
            lens[a] = n;
        }
    }
    long nb = lens[A_NAME];
    if (nb < 0)
        return -1;
    if (nb == 0)
        return 0;               /* skip if no meters in payload */
    for (int a = 0; a < A__COUNT + 2; a++) {
        long nv = a < A__COUNT ? lens[a] : 1;
        if (nv < 0)
            return -1;
        if (nv == nb)
            continue;
        if (nv == 1 && !d->in_lookup[a])
            continue;
        o->dropped++;           /* "Only N fetched meters contain ..." */
        return 0;
    }
    for (long i = 0; i < nb; i++) {
        yajl_val vals[A__COUNT];
        for (int a = 0; a < A__COUNT; a++) {
            vals[a] = lists[a][lens[a] == nb ? i : 0];
            if (vals[a] && vals[a]->type == yajl_t_null)
                vals[a] = NULL;
        }
        int rc = s_finish(c, vals, metadata, &s);
        if (rc < 0)
            return -1;
        if (rc == 0)
            o->dropped++;
        else
            s_emit(o, &s);
    }
    return 0;
}

/* Runs one endpoint; where it raises, what it produced is taken back. */
static void
s_endpoint(s_conv_t *c, int which, const char *metric, s_acc_t *o, int *raised)
{
    s_acc_t keep = *o;
    int rc;
    if (which == B_TELEMETRY)
        rc = s_ep_telemetry(c, o);
    else if (which == B_IPMI)
        rc = s_ep_ipmi(c, metric, o);
    else
        rc = s_ep_http(c, o);
    if (rc < 0) {
        *o = keep;
        (*raised)++;
    }
}

/* event_type -> which event_type patterns match, learned on first sight
 * of each event type, per thread (a worker is one thread): OpenStack emits
 * a few hundred event types, so once warm no pattern runs again. Keyed by
 * the table's id, never its address, so a reloaded table cannot hit stale
 * entries. */
#define S_ET_CACHE 1024
typedef struct {
    uint64_t     meters_id;
    uint64_t     hash;
    char        *event_type;
    signed char *memo;          /* n_regex entries: -1 unknown, 0, 1 */
} s_et_entry_t;
static __thread s_et_entry_t s_et_cache[S_ET_CACHE];

static s_et_entry_t *
s_et_lookup(const sl_meters_t *m, const char *et, uint64_t h, int create)
{
    for (size_t k = 0; k < 8; k++) {
        s_et_entry_t *e = &s_et_cache[(h + k) % S_ET_CACHE];
        if (e->meters_id == m->id && e->hash == h && strcmp(e->event_type, et) == 0)
            return e;
        if (create && e->meters_id != m->id) {   /* free or another table's */
            free(e->event_type);
            free(e->memo);
            e->meters_id = m->id;
            e->hash = h;
            e->event_type = sl_xstrdup(et);
            e->memo = sl_xmalloc(m->n_regex + 1);
            memset(e->memo, -1, m->n_regex + 1);
            return e;
        }
    }
    return NULL;   /* a full neighbourhood: this event type is not cached */
}

static void
s_et_forget(const sl_meters_t *m)
{
    for (size_t i = 0; i < S_ET_CACHE; i++) {
        s_et_entry_t *e = &s_et_cache[i];
        if (e->meters_id == m->id) {
            free(e->event_type);
            free(e->memo);
            memset(e, 0, sizeof *e);
        }
    }
    sl_buf_free(&s_jb);
    memset(&s_jb, 0, sizeof s_jb);
    if (s_jg) {
        yajl_gen_free(s_jg);
        s_jg = NULL;
    }
}

static int
s_re_matches(s_conv_t *c, size_t r)
{
    if (c->re_memo[r] < 0) {
        const char *et = c->n->event_type;
        const s_regex_t *re = &c->m->regex[r];
        c->re_memo[r] = s_prefix_ok(re, et) &&
                        pcre2_match(re->re, (PCRE2_SPTR) et, strlen(et), 0, 0, c->md,
                                    c->mctx) >= 0;
    }
    return c->re_memo[r];
}

size_t
sl_meters_convert_values(const sl_meters_t *m, const sl_notification_t *n,
                         sl_arena_t *a, sl_meters_sample_t *out, size_t max,
                         sl_convert_stats_t *stats)
{
    sl_convert_stats_t dummy;
    if (!stats)
        stats = &dummy;
    if (!m || !n || !n->root || !n->event_type || !n->timestamp || !a)
        return 0;
    /* SampleEndpoint has only info() and sample(). */
    if (n->priority != SL_PRIO_INFO && n->priority != SL_PRIO_SAMPLE) {
        stats->other_priority++;
        return 0;
    }
    s_conv_t c = { .m = m, .n = n, .a = a };
    c.gctx = pcre2_general_context_create(s_pcre_malloc, s_pcre_free, a);
    c.mctx = pcre2_match_context_create(c.gctx);
    c.md = pcre2_match_data_create(1, c.gctx);
    if (!c.gctx || !c.mctx || !c.md)
        return 0;
    pcre2_set_match_limit(c.mctx, SL_METERS_MATCH_LIMIT);
    uint64_t et_hash = sl_hash64_str(n->event_type);
    s_et_entry_t *cached = s_et_lookup(m, n->event_type, et_hash, 1);
    c.re_memo = sl_arena_alloc(a, m->n_regex + 1);
    if (cached)
        memcpy(c.re_memo, cached->memo, m->n_regex + 1);
    else
        memset(c.re_memo, -1, m->n_regex + 1);
    c.meta_memo = sl_arena_alloc(a, (m->n_meta_groups + 1) * sizeof *c.meta_memo);
    memset(c.meta_memo, 0, (m->n_meta_groups + 1) * sizeof *c.meta_memo);

    s_acc_t o = { .out = out, .max = max };
    size_t matched = 0;
    int raised = 0;
    /* The other endpoints, in entry-point order, each on its own. */
    static const char *metrics[] = { "Current", "Fan", "Temperature", "Voltage" };
    if (s_re_matches(&c, m->builtin_re[B_TELEMETRY])) {
        matched++;
        s_endpoint(&c, B_TELEMETRY, NULL, &o, &raised);
    }
    if (s_re_matches(&c, m->builtin_re[B_IPMI])) {
        matched++;
        for (size_t i = 0; i < 4; i++)
            s_endpoint(&c, B_IPMI, metrics[i], &o, &raised);
    }
    if (s_re_matches(&c, m->builtin_re[B_HTTP_REQUEST])) {
        matched++;
        s_endpoint(&c, B_HTTP_REQUEST, NULL, &o, &raised);
    }
    if (s_re_matches(&c, m->builtin_re[B_HTTP_RESPONSE])) {
        matched++;
        s_endpoint(&c, B_HTTP_RESPONSE, NULL, &o, &raised);
    }
    /* The meter endpoint: one list for all definitions; one exception
     * loses all of it. */
    s_acc_t keep = o;
    size_t meter_defs = 0;
    int meter_raised = 0;
    for (size_t i = 0; i < m->n_defs; i++) {
        const s_def_t *d = &m->defs[i];
        if (!s_matches(&c, d))
            continue;
        meter_defs++;
        if (meter_raised)
            continue;           /* only counting the lost definitions */
        if (!c.view)
            c.view = sl_notification_view(n, a);
        if (s_build(&c, d, &o) < 0)
            meter_raised = 1;
    }
    if (meter_raised) {
        o = keep;
        raised++;
        stats->skipped += meter_defs;
    }
    if (cached)
        memcpy(cached->memo, c.re_memo, m->n_regex + 1);
    if (matched + meter_defs == 0) {
        stats->no_definition++;
        return 0;
    }
    if (raised)
        stats->failed++;
    stats->skipped += o.dropped + (o.produced - o.n_out);
    stats->samples += o.n_out;
    return o.n_out;
}

static const char *
s_text(sl_arena_t *a, yajl_val v)
{
    return v && v->type != yajl_t_null ? sl_json_scalar_text(a, v) : NULL;
}

size_t
sl_meters_convert(const sl_meters_t *m, const sl_notification_t *n,
                  sl_arena_t *a, sl_sample_t *out, size_t max,
                  sl_convert_stats_t *stats)
{
    sl_meters_sample_t *vals = sl_arena_alloc(a, (max ? max : 1) * sizeof *vals);
    size_t k = sl_meters_convert_values(m, n, a, vals, max, stats);
    const char *mid = k ? sl_arena_strdup(a, n->message_id) : NULL;
    for (size_t i = 0; i < k; i++) {
        const sl_meters_sample_t *v = &vals[i];
        sl_sample_t *s = &out[i];
        memset(s, 0, sizeof *s);
        /* Every string is copied into the caller's arena: samples may
         * outlive the notification and even this table. */
        s->name = sl_arena_strdup(a, v->name->u.string);
        s->type = s_text(a, v->type);
        s->unit = s_text(a, v->unit);
        s->user_id = s_text(a, v->user_id);
        s->project_id = s_text(a, v->project_id);
        s->resource_id = s_text(a, v->resource_id);
        s->timestamp = s_text(a, v->timestamp);
        s->resource_metadata = sl_arena_strdup(a, v->resource_metadata);
        s->source = v->source ? s_text(a, v->source) : sl_meters_default_source;
        s->message_id = mid;
        yajl_val vol = v->volume;
        switch (vol->type) {
        case yajl_t_number:
            s->volume_json = sl_json_scalar_text(a, vol);
            s->volume = vol->u.number.r ? strtod(vol->u.number.r, NULL) : vol->u.number.d;
            if (sl_py_is_float(vol) && vol->u.number.r && (vol->u.number.r[0] == 'I' ||
                vol->u.number.r[0] == 'N' || vol->u.number.r[1] == 'I'))
                s->volume = vol->u.number.d;    /* Infinity / NaN spellings */
            break;
        case yajl_t_true:
        case yajl_t_false:
            s->volume_json = vol->type == yajl_t_true ? "true" : "false";
            s->volume = vol->type == yajl_t_true;
            break;
        default:                /* a numeric string: passed through */
            sl_py_float_str(vol->u.string, &s->volume);
            s->volume_json = sl_json_dump(a, vol);
            break;
        }
        char *id = sl_arena_alloc(a, 37);
        sl_sample_uuid4(id);
        s->id = id;
    }
    return k;
}
