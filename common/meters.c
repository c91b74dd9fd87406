#include "common/meters.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/json.h"
#include "common/jsonpath.h"
#include "common/log.h"
#include "common/yconf.h"

/* How Ceilometer 19 reads a definition (ceilometer/meter/notifications.py,
 * ceilometer/declarative.py) and turns a notification into samples
 * (ceilometer/sample.py, ceilometer/pipeline/sample.py) is reproduced here
 * step by step; the comments name the Python each part mirrors. */

/* ---- compiled definitions ---------------------------------------------- */

typedef enum {
    F_ABSENT,       /* no such key: the default applies */
    F_NEVER,        /* a JSONPath that can never match Ceilometer's message */
    F_CONST,        /* an integer (or boolean) constant: Definition.getter = int */
    F_PATH,         /* a JSONPath, rewritten onto the oslo wire layout */
} s_fkind_t;

typedef struct {
    s_fkind_t      kind;
    sl_jsonpath_t *path;
    yajl_val       constant;    /* F_CONST, allocated in the table's arena */
    const char    *sig;         /* canonical text, to spot identical configs */
} s_field_t;

typedef struct {
    const char *name;           /* the configured name (also the literal fallback) */
    const char *type;
    const char *unit;
    /* SAMPLE_ATTRIBUTES, in Ceilometer's order of evaluation */
    s_field_t   f_name, f_type, f_volume, f_unit, f_timestamp, f_user_id,
                f_project_id, f_resource_id;
    size_t      n_meta;
    const char **meta_keys;
    s_field_t  *meta;
    s_field_t   user_meta;
    size_t      n_regex;
    size_t     *regex;          /* indexes into sl_meters_t.regex */
    size_t      meta_group;     /* same metadata config => same group */
    int         line;
} s_def_t;

/* Named groups of iso8601's ISO8601_REGEX that parse_date reads. */
enum { G_YEAR, G_MONTHDASH, G_MONTH, G_DAYDASH, G_DAY, G_HOUR, G_MINUTE, G_SECOND,
       G_FRACTION, G_TIMEZONE, G_TZ_SIGN, G_TZ_HOUR, G_TZ_MINUTE, G__COUNT };

struct sl_meters {
    char        *file;
    size_t       n_defs;
    s_def_t     *defs;          /* evaluation order: reverse of the file */
    size_t       n_regex;
    pcre2_code **regex;         /* distinct event_type patterns */
    char       **regex_text;
    size_t       n_meta_groups;
    pcre2_code  *iso;           /* iso8601.ISO8601_REGEX */
    uint32_t     iso_group[G__COUNT];
    sl_arena_t   arena;         /* strings and constants of the definitions */
};

/* iso8601 2.x's ISO8601_REGEX (re.VERBOSE) with the whitespace and
 * comments removed. parse_date() uses re.match(), hence the anchoring. */
static const char s_iso_regex[] =
    "(?P<year>[0-9]{4})(((-(?P<monthdash>[0-9]{1,2}))|(?P<month>[0-9]{2})(?!$))"
    "(((-(?P<daydash>[0-9]{1,2}))|(?P<day>[0-9]{2}))(((?P<separator>[ T])"
    "(?P<hour>[0-9]{2})(:{0,1}(?P<minute>[0-9]{2})){0,1}(:{0,1}(?P<second>[0-9]{1,2})"
    "([.,](?P<second_fraction>[0-9]+)){0,1}){0,1}(?P<timezone>Z|((?P<tz_sign>[-+])"
    "(?P<tz_hour>[0-9]{2}):{0,1}(?P<tz_minute>[0-9]{2}){0,1})){0,1}){0,1})){0,1}){0,1}$";

static const char *s_iso_names[G__COUNT] = {
    "year", "monthdash", "month", "daydash", "day", "hour", "minute", "second",
    "second_fraction", "timezone", "tz_sign", "tz_hour", "tz_minute"
};

/* Backtracking limit for event_type patterns: Python has none and would
 * hang; a worker must not. A pattern hitting it counts as not matching. */
#define SL_METERS_MATCH_LIMIT 1000000

static const char *s_allowed_keys[] = {
    "name", "event_type", "type", "unit", "volume", "resource_id", "user_id",
    "project_id", "timestamp", "metadata", "user_metadata", NULL
};

/* ---- YAML scalars as PyYAML's SafeLoader types them ------------------- */

typedef enum { Y_STR, Y_NULL, Y_BOOL, Y_INT, Y_FLOAT, Y_TIMESTAMP, Y_OTHER } s_ytype_t;

typedef struct {
    pcre2_code *re_bool, *re_float, *re_int, *re_null, *re_timestamp;
    pcre2_match_data *md;
} s_yres_t;

/* yaml/resolver.py's implicit resolvers (YAML 1.1), in registration order. */
static const char s_y_bool[] =
    "^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$";
static const char s_y_float[] =
    "^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?|\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$";
static const char s_y_int[] =
    "^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
    "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$";
static const char s_y_null[] = "^(?:~|null|Null|NULL|)$";
static const char s_y_timestamp[] =
    "^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
    "(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?"
    "(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$";

static pcre2_code *
s_re_compile(const char *pattern, uint32_t opts)
{
    int ec;
    PCRE2_SIZE off;
    return pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
}

static int
s_re_match(pcre2_code *re, pcre2_match_data *md, const char *s)
{
    return re && pcre2_match(re, (PCRE2_SPTR) s, strlen(s), 0, 0, md, NULL) >= 0;
}

static void
s_yres_free(s_yres_t *r)
{
    pcre2_code_free(r->re_bool);
    pcre2_code_free(r->re_float);
    pcre2_code_free(r->re_int);
    pcre2_code_free(r->re_null);
    pcre2_code_free(r->re_timestamp);
    pcre2_match_data_free(r->md);
}

static int
s_yres_init(s_yres_t *r)
{
    memset(r, 0, sizeof *r);
    r->re_bool = s_re_compile(s_y_bool, 0);
    r->re_float = s_re_compile(s_y_float, 0);
    r->re_int = s_re_compile(s_y_int, 0);
    r->re_null = s_re_compile(s_y_null, 0);
    r->re_timestamp = s_re_compile(s_y_timestamp, 0);
    r->md = pcre2_match_data_create(4, NULL);
    if (!r->re_bool || !r->re_float || !r->re_int || !r->re_null || !r->re_timestamp || !r->md) {
        s_yres_free(r);
        return -1;
    }
    return 0;
}

static s_ytype_t
s_ytype(s_yres_t *r, const sl_ynode_t *n)
{
    if (!n)
        return Y_NULL;
    if (n->kind != SL_Y_SCALAR)
        return Y_OTHER;
    if (!n->plain)
        return Y_STR;
    if (s_re_match(r->re_bool, r->md, n->value))
        return Y_BOOL;
    if (s_re_match(r->re_float, r->md, n->value))
        return Y_FLOAT;
    if (s_re_match(r->re_int, r->md, n->value))
        return Y_INT;
    if (s_re_match(r->re_null, r->md, n->value))
        return Y_NULL;
    if (s_re_match(r->re_timestamp, r->md, n->value))
        return Y_TIMESTAMP;
    return Y_STR;
}

/* PyYAML's construct_yaml_int. 0, or -1 if the value does not fit. */
static int
s_yaml_int(const char *text, long long *out)
{
    char buf[128];
    size_t n = 0;
    if (strlen(text) >= sizeof buf)
        return -1;              /* far beyond 64 bits whatever the base */
    for (const char *p = text; *p; p++)
        if (*p != '_')
            buf[n++] = *p;
    buf[n] = '\0';
    const char *v = buf;
    int neg = 0;
    if (*v == '-' || *v == '+')
        neg = *v++ == '-';
    long long r = 0;
    errno = 0;
    char *end = NULL;
    if (strcmp(v, "0") == 0) {
        r = 0;
    } else if (strncmp(v, "0b", 2) == 0) {
        r = strtoll(v + 2, &end, 2);
    } else if (strncmp(v, "0x", 2) == 0) {
        r = strtoll(v + 2, &end, 16);
    } else if (v[0] == '0') {
        r = strtoll(v, &end, 8);
    } else if (strchr(v, ':')) {
        /* sexagesimal: 1:30 = 90 */
        for (const char *p = v; *p;) {
            long long part = strtoll(p, &end, 10);
            if (end == p || r > LLONG_MAX / 60 - part)
                return -1;
            r = r * 60 + part;
            p = *end == ':' ? end + 1 : end;
            if (!*end)
                break;
        }
        end = NULL;
    } else {
        r = strtoll(v, &end, 10);
    }
    if (errno == ERANGE || (end && (*end || end == v)))
        return -1;
    *out = neg ? -r : r;
    return 0;
}

/* Python truthiness of the YAML value (REQUIRED_FIELDS: `not cfg.get(f)`). */
static int
s_ytruthy(s_yres_t *r, const sl_ynode_t *n)
{
    long long i;
    switch (s_ytype(r, n)) {
    case Y_NULL:
        return 0;
    case Y_STR:
        return n->value[0] != '\0';
    case Y_BOOL:
        return sl_ynode_bool(n) == 1;
    case Y_INT:
        return s_yaml_int(n->value, &i) < 0 || i != 0;
    case Y_FLOAT: {
        char *buf = sl_xstrdup(n->value);
        size_t k = 0;
        for (const char *p = n->value; *p; p++)
            if (*p != '_')
                buf[k++] = *p;
        buf[k] = '\0';
        /* .inf and .nan are true; 1:30.5 (sexagesimal) is never zero */
        int t = strpbrk(buf, "nNiI:") || strtod(buf, NULL) != 0.0;
        free(buf);
        return t;
    }
    case Y_TIMESTAMP:
        return 1;
    default:
        return n->n > 0;
    }
}

/* ---- loading ------------------------------------------------------------ */

typedef struct {
    sl_meters_t *m;
    s_yres_t     yres;
    char        *err;
    size_t       errlen;
    const char  *meter;         /* name of the definition being compiled */
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

static yajl_val
s_const_int(sl_arena_t *a, long long v)
{
    yajl_val c = sl_arena_alloc(a, sizeof *c);
    memset(c, 0, sizeof *c);
    c->type = yajl_t_number;
    c->u.number.r = sl_arena_printf(a, "%lld", v);
    c->u.number.i = v;
    c->u.number.d = (double) v;
    c->u.number.flags = YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
    return c;
}

static yajl_val
s_const_bool(sl_arena_t *a, int v)
{
    yajl_val c = sl_arena_alloc(a, sizeof *c);
    memset(c, 0, sizeof *c);
    c->type = v ? yajl_t_true : yajl_t_false;
    return c;
}

/* Maps a path written against Ceilometer's view of a notification
 * ({ctxt, publisher_id, event_type, payload, metadata{message_id,
 * timestamp}}, built by oslo's dispatcher) onto the oslo wire message that
 * sluice keeps: the request context is not a `ctxt` object there but
 * top-level `_context_X` keys (oslo's pack_context flattens it, and
 * unpack_context rebuilds it), and message_id/timestamp are top-level keys.
 * Rewriting once at load avoids building Ceilometer's view for every
 * notification. Returns the field kind, or -1 (message in err) for a head
 * that has no equivalent yet. */
static int
s_rewrite(s_load_t *ld, const sl_ynode_t *node, sl_jsonpath_t *p)
{
    const char *k0 = sl_jsonpath_step_key(p, 0);
    if (sl_jsonpath_nsteps(p) == 0)
        return s_lerr(ld, node, "JSONPath '%s': the whole message is not supported yet",
                      sl_jsonpath_text(p));
    if (!k0)
        return s_lerr(ld, node, "JSONPath '%s': a wildcard, index or list of names at the "
                      "top level is not supported yet", sl_jsonpath_text(p));
    if (strcmp(k0, "payload") == 0 || strcmp(k0, "publisher_id") == 0 ||
        strcmp(k0, "event_type") == 0)
        return F_PATH;
    if (strcmp(k0, "ctxt") != 0 && strcmp(k0, "metadata") != 0)
        return F_NEVER;         /* Ceilometer's message has no other key */
    const char *k1 = sl_jsonpath_step_key(p, 1);
    if (!k1)
        return s_lerr(ld, node, "JSONPath '%s': '%s' as a whole (or with a wildcard or "
                      "index) is not supported yet", sl_jsonpath_text(p), k0);
    const char *key;
    if (strcmp(k0, "metadata") == 0) {
        if (strcmp(k1, "message_id") != 0 && strcmp(k1, "timestamp") != 0)
            return F_NEVER;
        key = k1;
    } else if (strcmp(k1, "msg_id") == 0 || strcmp(k1, "reply_q") == 0) {
        return F_NEVER;         /* RpcContext keeps these out of to_dict() */
    } else if (strcmp(k1, "client_timeout") == 0) {
        key = "_timeout";       /* unpack_context's mapping */
    } else {
        key = sl_arena_printf(&ld->m->arena, "_context_%s", k1);
    }
    sl_jsonpath_replace_head(p, 2, sl_arena_strdup(&ld->m->arena, key));
    return F_PATH;
}

/* declarative.Definition(name, cfg): a `{fields, plugin}` map, a list
 * (one path; several would be a union), an int constant, or a JSONPath. */
static int
s_compile_field(s_load_t *ld, const sl_ynode_t *node, const char *what, s_field_t *f)
{
    memset(f, 0, sizeof *f);
    if (!node)
        return s_lerr(ld, NULL, "%s: no value", what);
    if (node->kind == SL_Y_MAP) {
        for (size_t i = 0; i < node->n; i++) {
            if (strcmp(node->keys[i], "plugin") == 0)
                return s_lerr(ld, node->items[i], "%s: plugins are not supported yet", what);
            if (strcmp(node->keys[i], "fields") != 0)
                return s_lerr(ld, node->items[i], "%s: unknown key '%s' (expected fields)",
                              what, node->keys[i]);
        }
        const sl_ynode_t *fields = sl_ynode_get(node, "fields");
        if (!fields)
            return s_lerr(ld, node, "%s: the field 'fields' is required", what);
        node = fields;
    }
    if (node->kind == SL_Y_SEQ) {
        if (node->n != 1)
            return s_lerr(ld, node, "%s: %s", what, node->n ? "several paths (a union) are "
                          "not supported yet" : "an empty list is not a JSONPath");
        node = node->items[0];
    }
    long long iv;
    switch (s_ytype(&ld->yres, node)) {
    case Y_INT:
        if (s_yaml_int(node->value, &iv) < 0)
            return s_lerr(ld, node, "%s: integer %s out of range", what, node->value);
        f->kind = F_CONST;
        f->constant = s_const_int(&ld->m->arena, iv);
        f->sig = sl_arena_printf(&ld->m->arena, "I%lld", iv);
        return 0;
    case Y_BOOL:
        f->kind = F_CONST;
        f->constant = s_const_bool(&ld->m->arena, sl_ynode_bool(node) == 1);
        f->sig = sl_ynode_bool(node) == 1 ? "Btrue" : "Bfalse";
        return 0;
    case Y_STR:
        break;
    default:
        return s_lerr(ld, node, "%s: '%s' is neither a JSONPath nor an integer",
                      what, node->kind == SL_Y_SCALAR ? node->value : "(not a scalar)");
    }
    char jerr[512];
    sl_jsonpath_t *p = sl_jsonpath_compile(node->value, jerr, sizeof jerr);
    if (!p)
        return s_lerr(ld, node, "%s: %s", what, jerr);
    int kind = s_rewrite(ld, node, p);
    if (kind < 0) {
        sl_jsonpath_destroy(&p);
        return -1;
    }
    f->sig = sl_arena_printf(&ld->m->arena, "P%s", node->value);
    if (kind == F_NEVER) {
        sl_jsonpath_destroy(&p);
        f->kind = F_NEVER;
        return 0;
    }
    f->kind = F_PATH;
    f->path = p;
    return 0;
}

/* Python `re` syntax differs from PCRE2 in one common escape: `\Z` is the
 * very end in Python, PCRE2's `\z`. */
static char *
s_py_regex(const char *src)
{
    size_t n = strlen(src);
    char *out = sl_xmalloc(n + 1);
    size_t o = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '\\' && i + 1 < n) {
            out[o++] = c;
            out[o++] = (!in_class && src[i + 1] == 'Z') ? 'z' : src[i + 1];
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            out[o++] = c;
            if (src[i + 1] == '^')
                out[o++] = src[++i];
            if (src[i + 1] == ']')
                out[o++] = src[++i];
            continue;
        }
        if (c == ']' && in_class)
            in_class = 0;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

static int
s_add_regex(s_load_t *ld, const sl_ynode_t *node, size_t *idx)
{
    sl_meters_t *m = ld->m;
    for (size_t i = 0; i < m->n_regex; i++) {
        if (strcmp(m->regex_text[i], node->value) == 0) {
            *idx = i;
            return 0;
        }
    }
    char *pat = s_py_regex(node->value);
    int ec;
    PCRE2_SIZE off;
    /* re.match(): anchored at the start only. Python 3 str patterns are
     * Unicode-aware (\w, \d, \s, case folding): UTF + UCP. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &ec, &off, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return s_lerr(ld, node, "event_type '%s': invalid regular expression at offset %zu: %s",
                      node->value, (size_t) off, (const char *) msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);     /* falls back to the interpreter */
    m->regex = sl_xrealloc(m->regex, (m->n_regex + 1) * sizeof *m->regex);
    m->regex_text = sl_xrealloc(m->regex_text, (m->n_regex + 1) * sizeof *m->regex_text);
    m->regex[m->n_regex] = re;
    m->regex_text[m->n_regex] = sl_xstrdup(node->value);
    *idx = m->n_regex++;
    return 0;
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
        if (s_ytype(&ld->yres, items[i]) != Y_STR)
            return s_lerr(ld, items[i], "event_type must be a string or a list of strings");
        if (s_add_regex(ld, items[i], &d->regex[d->n_regex]) < 0)
            return -1;
        d->n_regex++;
    }
    return 0;
}

/* name, type and unit are JSONPaths too (SAMPLE_ATTRIBUTES), whose text is
 * also the default: `unit: B` evaluates `$.B`, finds nothing and keeps
 * 'B'. Almost always the path cannot match (F_NEVER) and the text is used
 * as is. */
static int
s_compile_literal(s_load_t *ld, const sl_ynode_t *node, const char *what,
                  const char **text, s_field_t *f)
{
    if (s_ytype(&ld->yres, node) != Y_STR)
        return s_lerr(ld, node, "%s must be a string", what);
    *text = sl_arena_strdup(&ld->m->arena, node->value);
    return s_compile_field(ld, node, what, f);
}

static void
s_field_free(s_field_t *f)
{
    sl_jsonpath_destroy(&f->path);
}

static void
s_def_free(s_def_t *d)
{
    s_field_free(&d->f_name);
    s_field_free(&d->f_type);
    s_field_free(&d->f_volume);
    s_field_free(&d->f_unit);
    s_field_free(&d->f_timestamp);
    s_field_free(&d->f_user_id);
    s_field_free(&d->f_project_id);
    s_field_free(&d->f_resource_id);
    for (size_t i = 0; i < d->n_meta; i++)
        s_field_free(&d->meta[i]);
    s_field_free(&d->user_meta);
}

/* MeterDefinition.__init__ */
static int
s_compile_def(s_load_t *ld, const sl_ynode_t *cfg, s_def_t *d)
{
    memset(d, 0, sizeof *d);
    d->line = cfg->line;
    for (size_t i = 0; i < cfg->n; i++) {
        int ok = 0;
        for (const char **k = s_allowed_keys; *k && !ok; k++)
            ok = strcmp(*k, cfg->keys[i]) == 0;
        if (ok)
            continue;
        if (strcmp(cfg->keys[i], "lookup") == 0)
            return s_lerr(ld, cfg->items[i], "key 'lookup' (several samples per notification) "
                          "is not supported yet");
        return s_lerr(ld, cfg->items[i], "unknown key '%s' (Ceilometer would ignore it; "
                      "sluice refuses it so that a typo is not silently dropped)", cfg->keys[i]);
    }
    static const char *required[] = { "name", "type", "event_type", "unit", "volume",
                                      "resource_id" };
    char missing[128] = "";
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!s_ytruthy(&ld->yres, sl_ynode_get(cfg, required[i])))
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                     missing[0] ? ", " : "", required[i]);
    }
    if (missing[0])
        return s_lerr(ld, cfg, "required field(s) %s not specified", missing);

    if (s_compile_event_types(ld, sl_ynode_get(cfg, "event_type"), d) < 0)
        return -1;
    const sl_ynode_t *type = sl_ynode_get(cfg, "type");
    if (s_ytype(&ld->yres, type) != Y_STR ||
        (strcmp(type->value, "gauge") != 0 && strcmp(type->value, "delta") != 0 &&
         strcmp(type->value, "cumulative") != 0))
        return s_lerr(ld, type, "invalid type %s (expected gauge, delta or cumulative)",
                      type->kind == SL_Y_SCALAR ? type->value : "(not a scalar)");

    if (s_compile_literal(ld, sl_ynode_get(cfg, "name"), "name", &d->name, &d->f_name) < 0 ||
        s_compile_literal(ld, type, "type", &d->type, &d->f_type) < 0 ||
        s_compile_literal(ld, sl_ynode_get(cfg, "unit"), "unit", &d->unit, &d->f_unit) < 0)
        return -1;
    struct { const char *key; s_field_t *f; } attrs[] = {
        { "volume", &d->f_volume }, { "timestamp", &d->f_timestamp },
        { "user_id", &d->f_user_id }, { "project_id", &d->f_project_id },
        { "resource_id", &d->f_resource_id },
    };
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
        const sl_ynode_t *v = sl_ynode_get(cfg, attrs[i].key);
        /* `if attr_cfg:` -- a falsy value means no attribute at all */
        if (s_ytruthy(&ld->yres, v) && s_compile_field(ld, v, attrs[i].key, attrs[i].f) < 0)
            return -1;
    }
    const sl_ynode_t *md = sl_ynode_get(cfg, "metadata");
    if (md) {
        if (md->kind != SL_Y_MAP)
            return s_lerr(ld, md, "metadata must be a mapping of names to JSONPaths");
        d->n_meta = md->n;
        d->meta_keys = sl_arena_alloc(&ld->m->arena, (md->n ? md->n : 1) * sizeof *d->meta_keys);
        d->meta = sl_xcalloc(md->n ? md->n : 1, sizeof *d->meta);
        for (size_t i = 0; i < md->n; i++) {
            d->meta_keys[i] = sl_arena_strdup(&ld->m->arena, md->keys[i]);
            char what[300];
            snprintf(what, sizeof what, "metadata.%s", md->keys[i]);
            if (s_compile_field(ld, md->items[i], what, &d->meta[i]) < 0)
                return -1;
        }
    }
    const sl_ynode_t *um = sl_ynode_get(cfg, "user_metadata");
    if (s_ytruthy(&ld->yres, um) && s_compile_field(ld, um, "user_metadata", &d->user_meta) < 0)
        return -1;
    return 0;
}

/* Definitions with the same metadata and user_metadata configuration (the
 * stock file merges one block into several) share one evaluation per
 * notification. */
static void
s_assign_meta_groups(sl_meters_t *m)
{
    char **sigs = sl_xcalloc(m->n_defs ? m->n_defs : 1, sizeof *sigs);
    for (size_t i = 0; i < m->n_defs; i++) {
        s_def_t *d = &m->defs[i];
        size_t len = 8;
        for (size_t k = 0; k < d->n_meta; k++)
            len += strlen(d->meta_keys[k]) + strlen(d->meta[k].sig ? d->meta[k].sig : "") + 2;
        len += d->user_meta.sig ? strlen(d->user_meta.sig) : 0;
        char *s = sl_xmalloc(len);
        size_t o = 0;
        for (size_t k = 0; k < d->n_meta; k++)
            o += (size_t) sprintf(s + o, "%s%c%s%c", d->meta_keys[k], 1,
                                  d->meta[k].sig ? d->meta[k].sig : "", 2);
        sprintf(s + o, "%c%s", 3, d->user_meta.sig ? d->user_meta.sig : "");
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
    for (size_t i = 0; i < m->n_defs; i++)
        free(sigs[i]);
    free(sigs);
}

static int
s_init_iso(sl_meters_t *m, char *err, size_t errlen)
{
    m->iso = s_re_compile(s_iso_regex, PCRE2_ANCHORED);     /* re.match() */
    if (!m->iso)
        return sl_yerr_at(m->file, 0, err, errlen, "cannot compile the ISO 8601 pattern");
    pcre2_jit_compile(m->iso, PCRE2_JIT_COMPLETE);
    for (int g = 0; g < G__COUNT; g++) {
        int no = pcre2_substring_number_from_name(m->iso, (PCRE2_SPTR) s_iso_names[g]);
        if (no <= 0)
            return sl_yerr_at(m->file, 0, err, errlen, "ISO 8601 pattern lacks a group");
        m->iso_group[g] = (uint32_t) no;
    }
    return 0;
}

sl_meters_t *
sl_meters_parse(const char *buf, size_t len, const char *name, char *err, size_t errlen)
{
    sl_ydoc_t *doc = sl_ydoc_parse(buf, len, name, err, errlen);
    if (!doc)
        return NULL;
    sl_meters_t *m = sl_xcalloc(1, sizeof *m);
    m->file = sl_xstrdup(doc->file);
    sl_arena_init(&m->arena, 16 * 1024);
    s_load_t ld = { .m = m, .err = err, .errlen = errlen };
    int rc = -1;
    char **names = NULL;
    if (s_yres_init(&ld.yres) < 0) {
        sl_yerr_at(m->file, 0, err, errlen, "cannot compile the YAML type patterns");
        goto out;
    }
    if (s_init_iso(m, err, errlen) < 0)
        goto out_yres;
    const sl_ynode_t *root = doc->root;
    if (!root || root->kind != SL_Y_MAP) {
        sl_yerr_at(m->file, root ? root->line : 1, err, errlen,
                   "expected a mapping with a `metric:` list");
        goto out_yres;
    }
    for (size_t i = 0; i < root->n; i++) {
        if (strcmp(root->keys[i], "metric") != 0) {
            sl_yerr_at(m->file, root->key_lines[i], err, errlen,
                       "unknown top-level key '%s' (expected metric)", root->keys[i]);
            goto out_yres;
        }
    }
    const sl_ynode_t *metric = sl_ynode_get(root, "metric");
    if (!metric || metric->kind != SL_Y_SEQ) {
        sl_yerr(metric ? metric : root, err, errlen,
                "`metric:` must be a list of meter definitions");
        goto out_yres;
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
            goto out_yres;
        }
        const sl_ynode_t *nm = sl_ynode_get(cfg, "name");
        names[i] = nm && nm->kind == SL_Y_SCALAR ? (char *) nm->value : NULL;
    }
    m->defs = sl_xcalloc(n ? n : 1, sizeof *m->defs);
    s_def_t *tmp = sl_xcalloc(n ? n : 1, sizeof *tmp);
    size_t n_tmp = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_ynode_t *cfg = metric->items[i];
        int shadowed = 0;
        for (size_t j = i + 1; j < n && !shadowed; j++)
            shadowed = names[i] && names[j] && strcmp(names[i], names[j]) == 0;
        if (shadowed) {
            sl_warn("%s:%d: skipping duplicate meter definition '%s' (a later one wins, "
                    "as in Ceilometer)", m->file, cfg->line, names[i]);
            continue;
        }
        ld.meter = names[i] ? names[i] : "?";
        if (s_compile_def(&ld, cfg, &tmp[n_tmp]) < 0) {
            s_def_free(&tmp[n_tmp]);
            free(tmp[n_tmp].meta);
            for (size_t k = 0; k < n_tmp; k++) {
                s_def_free(&tmp[k]);
                free(tmp[k].meta);
            }
            free(tmp);
            goto out_yres;
        }
        n_tmp++;
    }
    for (size_t i = 0; i < n_tmp; i++)
        m->defs[i] = tmp[n_tmp - 1 - i];
    m->n_defs = n_tmp;
    free(tmp);
    s_assign_meta_groups(m);
    rc = 0;
out_yres:
    s_yres_free(&ld.yres);
out:
    free(names);
    sl_ydoc_destroy(&doc);
    if (rc < 0)
        sl_meters_destroy(&m);
    return m;
}

sl_meters_t *
sl_meters_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_yerr_at(path, 0, err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 8192, len = 0, n;
    char *buf = sl_xmalloc(cap);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap)
            buf = sl_xrealloc(buf, cap *= 2);
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        sl_yerr_at(path, 0, err, errlen, "read error");
        return NULL;
    }
    sl_meters_t *m = sl_meters_parse(buf, len, path, err, errlen);
    free(buf);
    return m;
}

void
sl_meters_destroy(sl_meters_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    sl_meters_t *m = *m_p;
    for (size_t i = 0; i < m->n_defs; i++) {
        s_def_free(&m->defs[i]);
        free(m->defs[i].meta);
    }
    free(m->defs);
    for (size_t i = 0; i < m->n_regex; i++) {
        pcre2_code_free(m->regex[i]);
        free(m->regex_text[i]);
    }
    free(m->regex);
    free(m->regex_text);
    pcre2_code_free(m->iso);
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
    pcre2_general_context   *gctx;
    pcre2_match_context     *mctx;
    pcre2_match_data        *md;
    pcre2_match_data        *iso_md;
    yajl_gen                 g;
    signed char             *re_memo;   /* per pattern: -1 unknown, 0, 1 */
    s_meta_memo_t           *meta_memo;
    const char              *fallback;  /* payload-copy metadata, once built */
    const char              *msg_ts;    /* normalised notification timestamp */
    const char              *message_id;    /* copied into the arena once */
    int                      msg_ts_state;
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
s_matches(s_conv_t *c, const s_def_t *d)
{
    for (size_t i = 0; i < d->n_regex; i++) {
        size_t r = d->regex[i];
        if (c->re_memo[r] < 0) {
            int rc = pcre2_match(c->m->regex[r], (PCRE2_SPTR) c->n->event_type,
                                 strlen(c->n->event_type), 0, 0, c->md, c->mctx);
            c->re_memo[r] = rc >= 0;
        }
        if (c->re_memo[r])
            return 1;
    }
    return 0;
}

typedef struct {
    yajl_val first;     /* first non-null match */
} s_first_t;

static int
s_first_nonnull(yajl_val v, void *ud)
{
    s_first_t *f = ud;
    if (!f->first && v->type != yajl_t_null)
        f->first = v;
    return 0;       /* keep walking: a later branch may still raise */
}

/* Definition.parse(): the first non-None match, or the constant. *out is
 * NULL for None. -1 where jsonpath-rw-ext raises. */
static int
s_eval(s_conv_t *c, const s_field_t *f, yajl_val *out)
{
    *out = NULL;
    switch (f->kind) {
    case F_CONST:
        *out = f->constant;
        return 0;
    case F_PATH: {
        s_first_t st = { NULL };
        if (sl_jsonpath_walk(f->path, c->n->root, c->a, s_first_nonnull, &st) < 0)
            return -1;
        *out = st.first;
        return 0;
    }
    default:
        return 0;
    }
}

/* The fallbacks MeterDefinition sets for user_id and project_id,
 * "ctxt.user_id|ctxt.user" and "ctxt.project_id|ctxt.tenant_id", do not mean
 * what they seem: jsonpath-rw gives `|` a higher precedence than `.`, so
 * they parse as ctxt.(user_id|ctxt).user and ctxt.(project_id|ctxt).tenant_id.
 * With a flat request context both find nothing, which is why Ceilometer's
 * samples carry user_id/project_id null unless the definition names them.
 * Reproduced as parsed: the first non-None of ctxt.<k1>.<leaf> and
 * ctxt.ctxt.<leaf>, i.e. the wire keys _context_<k1> and _context_ctxt. */
static yajl_val
s_ctx_fallback(const sl_notification_t *n, const char *k1, const char *leaf)
{
    yajl_val v = sl_json_get(sl_json_get(n->root, k1), leaf);
    if (v && v->type != yajl_t_null)
        return v;
    v = sl_json_get(sl_json_get(n->root, "_context_ctxt"), leaf);
    return v && v->type != yajl_t_null ? v : NULL;
}

static void
s_gen_begin(s_conv_t *c)
{
    if (!c->g) {
        c->g = yajl_gen_alloc(NULL);
        if (!c->g) {            /* out of memory: as sl_xmalloc does */
            fprintf(stderr, "sluice: out of memory allocating a JSON generator\n");
            abort();
        }
    } else {
        yajl_gen_clear(c->g);
        yajl_gen_reset(c->g, NULL);
    }
}

static const char *
s_gen_take(s_conv_t *c)
{
    const unsigned char *buf;
    size_t len;
    if (yajl_gen_get_buf(c->g, &buf, &len) != yajl_gen_status_ok)
        return NULL;
    return sl_arena_strndup(c->a, (const char *) buf, len);
}

static void
s_gen_key(yajl_gen g, const char *k)
{
    yajl_gen_string(g, (const unsigned char *) k, strlen(k));
}

/* Byte length of the first max code points of s (str[:max]). */
static size_t
s_utf8_prefix(const char *s, size_t max)
{
    size_t cps = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            if (cps == max)
                break;
            cps++;
        }
    }
    return i;
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
        if (s_eval(c, &d->meta[i], &vals[i]) < 0)
            return -1;
        if (!sl_json_truthy(vals[i]))
            vals[i] = NULL;
        else
            n_truthy++;
    }
    yajl_val um = NULL;
    if (d->user_meta.kind != F_ABSENT) {
        if (s_eval(c, &d->user_meta, &um) < 0)
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
                size_t bl = s_utf8_prefix(v->u.string, SL_USER_METADATA_MAX);
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
    yajl_gen_map_open(c->g);
    for (size_t i = 0; i < d->n_meta; i++) {
        if (!vals[i])
            continue;
        s_gen_key(c->g, d->meta_keys[i]);
        sl_json_gen_val(c->g, vals[i]);
    }
    if (n_user) {
        s_gen_key(c->g, "user_metadata");
        yajl_gen_map_open(c->g);
        for (size_t i = 0; i < n_user; i++) {
            s_gen_key(c->g, ukeys[i]);
            sl_json_gen_val(c->g, uvals[i]);
        }
        yajl_gen_map_close(c->g);
    }
    yajl_gen_map_close(c->g);
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
    yajl_gen_map_open(c->g);
    if (n->payload && n->payload->type == yajl_t_object) {
        for (size_t i = 0; i < n->payload->u.object.len; i++) {
            const char *k = n->payload->u.object.keys[i];
            s_gen_key(c->g, k);
            if (strcmp(k, "event_type") == 0) {
                seen_et = 1;
                s_gen_key(c->g, n->event_type);
            } else if (strcmp(k, "host") == 0) {
                seen_host = 1;
                sl_json_gen_val(c->g, host);
            } else {
                sl_json_gen_val(c->g, n->payload->u.object.values[i]);
            }
        }
    }
    if (!seen_et) {
        s_gen_key(c->g, "event_type");
        s_gen_key(c->g, n->event_type);
    }
    if (!seen_host) {
        s_gen_key(c->g, "host");
        sl_json_gen_val(c->g, host);
    }
    yajl_gen_map_close(c->g);
    c->fallback = s_gen_take(c);
    return c->fallback;
}

static int
s_days_in_month(int y, int mo)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[mo - 1];
}

static int
s_num(const char *s, size_t len)
{
    int v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* int(Decimal("0." + digits) * Decimal("1000000.0")) under Python's default
 * decimal context (28 significant digits, ROUND_HALF_EVEN), or -1 when the
 * rounding carries into a whole second. */
static long
s_microseconds(const char *f, size_t len)
{
    char d[7] = "000000";
    size_t z = 0;
    while (z < len && f[z] == '0')
        z++;
    if (len - z <= 28) {        /* exact: the product needs no rounding */
        for (size_t i = 0; i < 6 && i < len; i++)
            d[i] = f[i];
        return strtol(d, NULL, 10);
    }
    size_t keep = z + 28;       /* digits [0, keep) survive the rounding */
    int up;
    if (f[keep] != '5') {
        up = f[keep] > '5';
    } else {
        up = 0;
        for (size_t i = keep + 1; i < len && !up; i++)
            up = f[i] != '0';
        if (!up)
            up = (f[keep - 1] - '0') % 2 == 1;
    }
    long micro = s_num(f, 6);
    if (up) {
        size_t i = keep;
        while (i > 6 && f[i - 1] == '9')
            i--;
        if (i == 6)
            micro++;            /* the carry reaches the microseconds */
    }
    return micro >= 1000000 ? -1 : micro;
}

typedef struct {
    int  year, month, day, hour, minute, second;
    long micro;
    int  offset;                /* minutes east of UTC */
} s_dt_t;

static const char *
s_format_ts(sl_arena_t *a, const s_dt_t *t)
{
    int off = t->offset < 0 ? -t->offset : t->offset;
    char frac[16] = "";
    if (t->micro)
        snprintf(frac, sizeof frac, ".%06ld", t->micro);
    return sl_arena_printf(a, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", t->year, t->month,
                           t->day, t->hour, t->minute, t->second, frac,
                           t->offset < 0 ? '-' : '+', off / 60, off % 60);
}

/* datetime(...)'s range checks. */
static int
s_dt_valid(const s_dt_t *t)
{
    return t->year >= 1 && t->month >= 1 && t->month <= 12 && t->day >= 1 &&
           t->day <= s_days_in_month(t->year, t->month) && t->hour <= 23 &&
           t->minute <= 59 && t->second <= 59 && t->micro >= 0 &&
           t->offset > -1440 && t->offset < 1440;
}

static int
s_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* timeutils.parse_isotime(ts).isoformat(): iso8601.parse_date with UTC as
 * the default zone. The common shapes are parsed directly; anything else
 * goes through the very regular expression iso8601 uses. NULL if Python
 * would raise. */
static const char *
s_normalise_ts(s_conv_t *c, const char *s)
{
    s_dt_t t = { 0, 1, 1, 0, 0, 0, 0, 0 };
    size_t len = strlen(s);
    /* YYYY-MM-DD[T ]HH:MM:SS[.f{1,28}][Z|+HH:MM|-HH:MM] */
    if (len >= 19 && s_digits(s, 4) && s[4] == '-' && s_digits(s + 5, 2) && s[7] == '-' &&
        s_digits(s + 8, 2) && (s[10] == 'T' || s[10] == ' ') && s_digits(s + 11, 2) &&
        s[13] == ':' && s_digits(s + 14, 2) && s[16] == ':' && s_digits(s + 17, 2)) {
        size_t p = 19, fl = 0;
        if (s[p] == '.') {
            while (s[p + 1 + fl] >= '0' && s[p + 1 + fl] <= '9')
                fl++;
            p += 1 + fl;
        }
        int tz_ok = 0;
        if (!s[p])
            tz_ok = 1;
        else if (s[p] == 'Z' && !s[p + 1])
            tz_ok = 1;
        else if ((s[p] == '+' || s[p] == '-') && s_digits(s + p + 1, 2) && s[p + 3] == ':' &&
                 s_digits(s + p + 4, 2) && !s[p + 6])
            tz_ok = 2;
        if (tz_ok && (s[19] != '.' || (fl >= 1 && fl <= 28))) {
            t.year = s_num(s, 4);
            t.month = s_num(s + 5, 2);
            t.day = s_num(s + 8, 2);
            t.hour = s_num(s + 11, 2);
            t.minute = s_num(s + 14, 2);
            t.second = s_num(s + 17, 2);
            t.micro = fl ? s_microseconds(s + 20, fl) : 0;
            if (tz_ok == 2) {
                t.offset = s_num(s + p + 1, 2) * 60 + s_num(s + p + 4, 2);
                if (s[p] == '-')
                    t.offset = -t.offset;
            }
            return s_dt_valid(&t) ? s_format_ts(c->a, &t) : NULL;
        }
    }
    if (!c->iso_md)
        c->iso_md = pcre2_match_data_create_from_pattern(c->m->iso, c->gctx);
    if (pcre2_match(c->m->iso, (PCRE2_SPTR) s, len, 0, 0, c->iso_md, c->mctx) < 0)
        return NULL;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->iso_md);
    uint32_t ovn = pcre2_get_ovector_count(c->iso_md);
    const char *gs[G__COUNT];
    size_t gl[G__COUNT];
    for (int g = 0; g < G__COUNT; g++) {
        uint32_t no = c->m->iso_group[g];
        gs[g] = NULL;
        gl[g] = 0;
        if (no < ovn && ov[2 * no] != PCRE2_UNSET) {
            gs[g] = s + ov[2 * no];
            gl[g] = ov[2 * no + 1] - ov[2 * no];
        }
    }
    t.year = s_num(gs[G_YEAR], gl[G_YEAR]);
    if (gs[G_MONTH])
        t.month = s_num(gs[G_MONTH], gl[G_MONTH]);
    else if (gs[G_MONTHDASH])
        t.month = s_num(gs[G_MONTHDASH], gl[G_MONTHDASH]);
    if (gs[G_DAY])
        t.day = s_num(gs[G_DAY], gl[G_DAY]);
    else if (gs[G_DAYDASH])
        t.day = s_num(gs[G_DAYDASH], gl[G_DAYDASH]);
    if (gs[G_HOUR])
        t.hour = s_num(gs[G_HOUR], gl[G_HOUR]);
    if (gs[G_MINUTE])
        t.minute = s_num(gs[G_MINUTE], gl[G_MINUTE]);
    if (gs[G_SECOND])
        t.second = s_num(gs[G_SECOND], gl[G_SECOND]);
    if (gs[G_FRACTION])
        t.micro = s_microseconds(gs[G_FRACTION], gl[G_FRACTION]);
    if (gs[G_TIMEZONE] && gs[G_TZ_SIGN]) {
        t.offset = s_num(gs[G_TZ_HOUR], gl[G_TZ_HOUR]) * 60 +
                   (gs[G_TZ_MINUTE] ? s_num(gs[G_TZ_MINUTE], gl[G_TZ_MINUTE]) : 0);
        if (*gs[G_TZ_SIGN] == '-')
            t.offset = -t.offset;
    }
    return s_dt_valid(&t) ? s_format_ts(c->a, &t) : NULL;
}

/* Python's float(str). CPython first maps every Unicode whitespace
 * character to ' ' and every Unicode decimal digit to its ASCII digit
 * (_PyUnicode_TransformDecimalAndSpaceToASCII), then strips spaces and
 * accepts: an optional sign, then digits with single `_` between them, an
 * optional fraction and exponent; or inf, infinity, nan in any case. */

/* First code point of each block of ten Unicode decimal digits (Nd), from
 * Python 3.11's unicodedata (Unicode 14.0). */
static const uint32_t s_nd_zeros[] = {
    0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80,
    0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50,
    0xabf0, 0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450,
    0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0,
    0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140,
    0x1e2f0, 0x1e950, 0x1fbf0,
};

static int
s_py_isspace(uint32_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
           c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Decodes one UTF-8 sequence (input already validated by the parser). */
static uint32_t
s_utf8_next(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t c = *p++;
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (more)
        c &= 0x3f >> more;
    while (more-- && (*p & 0xc0) == 0x80)
        c = (c << 6) | (*p++ & 0x3f);
    *pp = p;
    return c;
}

static const char *
s_digitpart(const char *p, char **o)
{
    if (*p < '0' || *p > '9')
        return NULL;
    for (;;) {
        *(*o)++ = *p++;
        if (*p == '_' && p[1] >= '0' && p[1] <= '9')
            p++;
        else if (*p < '0' || *p > '9')
            return p;
    }
}

static int
s_py_float(const char *s, double *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > 4096)
        return -1;
    char *ascii = sl_xmalloc(len + 1), *clean = sl_xmalloc(len + 2);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *) s; *p;) {
        uint32_t c = s_utf8_next(&p);
        char a = '\x01';                /* matches nothing below */
        if (s_py_isspace(c)) {
            a = ' ';
        } else if (c < 0x80) {
            a = (char) c;
        } else {
            for (size_t i = 0; i < sizeof s_nd_zeros / sizeof s_nd_zeros[0]; i++)
                if (c >= s_nd_zeros[i] && c < s_nd_zeros[i] + 10)
                    a = (char) ('0' + (c - s_nd_zeros[i]));
        }
        ascii[n++] = a;
    }
    ascii[n] = '\0';
    char *b = ascii, *end = ascii + n;
    while (b < end && (*b == ' ' || (*b >= '\t' && *b <= '\r')))
        b++;
    while (end > b && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
        end--;
    *end = '\0';
    char *o = clean;
    const char *p = b;
    if (*p == '+' || *p == '-')
        *o++ = *p++;
    size_t rest = (size_t) (end - p);
    int ok;
    if ((rest == 3 && (strncasecmp(p, "inf", 3) == 0 || strncasecmp(p, "nan", 3) == 0)) ||
        (rest == 8 && strncasecmp(p, "infinity", 8) == 0)) {
        memcpy(o, p, rest);
        o += rest;
        ok = 1;
    } else {
        const char *q = s_digitpart(p, &o);
        int have = q != NULL;
        if (!q)
            q = p;
        if (*q == '.') {
            *o++ = *q++;
            const char *r = s_digitpart(q, &o);
            if (r) {
                q = r;
                have = 1;
            }
        }
        if (have && (*q == 'e' || *q == 'E')) {
            *o++ = *q++;
            if (*q == '+' || *q == '-')
                *o++ = *q++;
            q = s_digitpart(q, &o);
            if (!q)
                have = 0;
        }
        ok = have && q == end;
    }
    *o = '\0';
    if (ok)
        *out = strtod(clean, NULL);
    free(ascii);
    free(clean);
    return ok ? 0 : -1;
}

/* One definition applied to the notification: MeterDefinition.to_samples,
 * Sample.from_notification and the pipeline's _validate_volume. Returns 1
 * with *s filled, 0 if the sample is dropped (volume None or not a
 * number), -1 where Ceilometer raises (the notification is then lost). */
static int
s_build(s_conv_t *c, const s_def_t *d, sl_sample_t *s)
{
    const sl_notification_t *n = c->n;
    yajl_val user = s_ctx_fallback(n, "_context_user_id", "user");
    yajl_val project = s_ctx_fallback(n, "_context_project_id", "tenant_id");
    const char *metadata;
    if (s_metadata(c, d, &metadata) < 0)
        return -1;

    yajl_val v_name, v_type, v_volume, v_unit, v_ts, v_user, v_project, v_res;
    if (s_eval(c, &d->f_name, &v_name) < 0 || s_eval(c, &d->f_type, &v_type) < 0 ||
        s_eval(c, &d->f_volume, &v_volume) < 0 || s_eval(c, &d->f_unit, &v_unit) < 0 ||
        s_eval(c, &d->f_timestamp, &v_ts) < 0 || s_eval(c, &d->f_user_id, &v_user) < 0 ||
        s_eval(c, &d->f_project_id, &v_project) < 0 ||
        s_eval(c, &d->f_resource_id, &v_res) < 0)
        return -1;
    if (v_user)
        user = v_user;
    if (v_project)
        project = v_project;

    /* Every string is copied into the caller's arena: samples may outlive
     * the notification and even this table (a reload while they queue). */
    memset(s, 0, sizeof *s);
    s->name = sl_arena_strdup(c->a, d->name);
    if (v_name) {
        /* The pipeline fnmatch()es the name against its sources: a
         * non-string raises there. */
        if (v_name->type != yajl_t_string)
            return -1;
        s->name = sl_arena_strdup(c->a, v_name->u.string);
    }
    s->type = v_type ? sl_json_scalar_text(c->a, v_type) : sl_arena_strdup(c->a, d->type);
    s->unit = v_unit ? sl_json_scalar_text(c->a, v_unit) : sl_arena_strdup(c->a, d->unit);
    s->user_id = sl_json_scalar_text(c->a, user);
    s->project_id = sl_json_scalar_text(c->a, project);
    s->resource_id = sl_json_scalar_text(c->a, v_res);
    s->resource_metadata = metadata ? metadata : s_fallback_metadata(c);
    if (!s->resource_metadata)
        return -1;
    s->source = "openstack";           /* sample_source's default */
    if (!c->message_id)
        c->message_id = sl_arena_strdup(c->a, n->message_id);
    s->message_id = c->message_id;

    /* ts = timestamp if timestamp else message['metadata']['timestamp'] */
    if (sl_json_truthy(v_ts)) {
        if (v_ts->type != yajl_t_string || !(s->timestamp = s_normalise_ts(c, v_ts->u.string)))
            return -1;
    } else {
        if (!c->msg_ts_state) {
            c->msg_ts = s_normalise_ts(c, n->timestamp);
            c->msg_ts_state = c->msg_ts ? 1 : -1;
        }
        if (c->msg_ts_state < 0)
            return -1;
        s->timestamp = c->msg_ts;
    }

    /* SamplePipeline._validate_volume */
    if (!v_volume)
        return 0;
    switch (v_volume->type) {
    case yajl_t_number:
        s->volume_json = sl_json_scalar_text(c->a, v_volume);
        s->volume = v_volume->u.number.d;
        if (v_volume->u.number.r)
            s->volume = strtod(v_volume->u.number.r, NULL);
        break;
    case yajl_t_true:
    case yajl_t_false:          /* bool is an int in Python */
        s->volume_json = v_volume->type == yajl_t_true ? "true" : "false";
        s->volume = v_volume->type == yajl_t_true;
        break;
    case yajl_t_string:
        if (s_py_float(v_volume->u.string, &s->volume) < 0)
            return 0;           /* float(): ValueError, sample dropped */
        s->volume_json = sl_json_dump(c->a, v_volume);
        break;
    default:
        return -1;              /* float(dict or list): TypeError */
    }
    char *id = sl_arena_alloc(c->a, 37);
    sl_sample_uuid4(id);
    s->id = id;
    return 1;
}

size_t
sl_meters_convert(const sl_meters_t *m, const sl_notification_t *n,
                  sl_arena_t *a, sl_sample_t *out, size_t max,
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
    c.re_memo = sl_arena_alloc(a, m->n_regex + 1);
    memset(c.re_memo, -1, m->n_regex + 1);
    c.meta_memo = sl_arena_alloc(a, (m->n_meta_groups + 1) * sizeof *c.meta_memo);
    memset(c.meta_memo, 0, (m->n_meta_groups + 1) * sizeof *c.meta_memo);

    size_t n_out = 0, matched = 0, produced = 0, dropped = 0;
    int raised = 0;
    for (size_t i = 0; i < m->n_defs; i++) {
        const s_def_t *d = &m->defs[i];
        if (!s_matches(&c, d))
            continue;
        matched++;
        if (raised)
            continue;           /* only counting the lost definitions */
        sl_sample_t s;
        int rc = s_build(&c, d, &s);
        if (rc < 0) {
            raised = 1;
        } else if (rc == 0) {
            dropped++;
        } else {
            produced++;
            if (n_out < max)
                out[n_out++] = s;
        }
    }
    if (c.g)
        yajl_gen_free(c.g);
    if (matched == 0) {
        stats->no_definition++;
        return 0;
    }
    if (raised) {
        /* Ceilometer builds the whole list before publishing any of it:
         * one exception loses every sample of the notification. */
        stats->failed++;
        stats->skipped += matched;
        return 0;
    }
    stats->skipped += dropped + (produced - n_out);
    stats->samples += n_out;
    return n_out;
}
