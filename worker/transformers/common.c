/* transformers/common.c — parameter typing and checking, sample copies, the hash table. */
#include "worker/transformers/tx.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- YAML 1.1 scalars as PyYAML resolves them ----------------------------- */

static int
s_digits_us(const char *p, int (*ok)(int), int *n_digits)
{
    /* [ok_]* with at least one digit; returns the length consumed */
    const char *q = p;
    int nd = 0;
    while (ok((unsigned char) *q) || *q == '_') {
        nd += *q != '_';
        q++;
    }
    *n_digits = nd;
    return (int) (q - p);
}

static int s_dec(int c) { return c >= '0' && c <= '9'; }
static int s_oct(int c) { return c >= '0' && c <= '7'; }
static int s_bin(int c) { return c == '0' || c == '1'; }
static int s_hex(int c) { return s_dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* Copies p without underscores into buf. */
static void
s_strip_us(const char *p, size_t n, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++)
        if (p[i] != '_')
            buf[j++] = p[i];
    buf[j] = '\0';
}

static int
s_resolve_int(const char *s, sl_tx_val_t *v)
{
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int base = 10, nd = 0, len;
    if (p[0] == '0' && p[1] == 'b') {
        base = 2;
        p += 2;
        len = s_digits_us(p, s_bin, &nd);
    } else if (p[0] == '0' && p[1] == 'x') {
        base = 16;
        p += 2;
        len = s_digits_us(p, s_hex, &nd);
    } else if (p[0] == '0' && p[1]) {
        base = 8;
        p += 1;
        len = s_digits_us(p, s_oct, &nd);
    } else if (p[0] == '0') {
        len = 1;
        nd = 1;
    } else if (p[0] >= '1' && p[0] <= '9') {
        len = s_digits_us(p, s_dec, &nd);
    } else {
        return 0;
    }
    if (!nd || p[len])
        return 0;
    char buf[128];
    s_strip_us(p, (size_t) len, buf, sizeof buf);
    errno = 0;
    unsigned long long u = strtoull(buf, NULL, base);
    v->type = SL_TXT_INT;
    if (errno || u > (unsigned long long) INT64_MAX) {
        v->type = SL_TXT_FLOAT;     /* beyond 64 bits: kept as a float */
        v->f = neg ? -(double) u : (double) u;
        v->i = 0;
        return 1;
    }
    v->i = neg ? -(int64_t) u : (int64_t) u;
    v->f = (double) v->i;
    return 1;
}

static int
s_resolve_float(const char *s, sl_tx_val_t *v)
{
    const char *p = s;
    int neg = 0, signed_ = 0;
    if (*p == '+' || *p == '-') {
        neg = *p++ == '-';
        signed_ = 1;
    }
    if (*p == '.' && (!strcmp(p + 1, "inf") || !strcmp(p + 1, "Inf") || !strcmp(p + 1, "INF"))) {
        v->type = SL_TXT_FLOAT;
        v->f = neg ? -INFINITY : INFINITY;
        return 1;
    }
    if (!signed_ && *p == '.' &&
        (!strcmp(p + 1, "nan") || !strcmp(p + 1, "NaN") || !strcmp(p + 1, "NAN"))) {
        v->type = SL_TXT_FLOAT;
        v->f = NAN;
        return 1;
    }
    int nd = 0, len = 0;
    if (s_dec((unsigned char) *p)) {
        len = s_digits_us(p, s_dec, &nd);
    } else if (*p != '.' || signed_) {
        return 0;                       /* `.5` has no sign in PyYAML's pattern */
    }
    const char *q = p + len;
    if (*q != '.')
        return 0;
    q++;
    int nf;
    q += s_digits_us(q, s_dec, &nf);
    if (!nd && !nf)
        return 0;
    if (*q == 'e' || *q == 'E') {
        if ((q[1] != '+' && q[1] != '-') || !s_dec((unsigned char) q[2]))
            return 0;
        q += 2;
        while (s_dec((unsigned char) *q))
            q++;
    }
    if (*q)
        return 0;
    char buf[256];
    s_strip_us(s, strlen(s), buf, sizeof buf);
    v->type = SL_TXT_FLOAT;
    v->f = strtod(buf, NULL);
    return 1;
}

void
sl_tx_value(const sl_ynode_t *node, sl_tx_val_t *v)
{
    memset(v, 0, sizeof *v);
    if (!node) {
        v->type = SL_TXT_NULL;
        return;
    }
    if (node->kind == SL_Y_MAP) {
        v->type = SL_TXT_MAP;
        return;
    }
    if (node->kind == SL_Y_SEQ) {
        v->type = SL_TXT_SEQ;
        return;
    }
    const char *s = node->value ? node->value : "";
    v->s = s;
    v->type = SL_TXT_STR;
    if (!node->plain)
        return;
    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL")) {
        v->type = SL_TXT_NULL;
        return;
    }
    static const char *const yes[] = { "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On",
                                       "ON", NULL };
    static const char *const no[] = { "no", "No", "NO", "false", "False", "FALSE", "off", "Off",
                                      "OFF", NULL };
    for (int i = 0; yes[i]; i++) {
        if (!strcmp(s, yes[i])) {
            v->type = SL_TXT_BOOL;
            v->i = 1;
            v->f = 1;
            return;
        }
        if (!strcmp(s, no[i])) {
            v->type = SL_TXT_BOOL;
            return;
        }
    }
    if (s_resolve_int(s, v) || s_resolve_float(s, v))
        return;
    v->type = SL_TXT_STR;
}

/* Skips Python's str.strip() whitespace (ASCII part) around p[0..*n). */
static const char *
s_py_strip(const char *p, size_t *n)
{
    size_t i = 0, e = *n;
    while (i < e && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    while (e > i && (p[e - 1] == ' ' || (p[e - 1] >= '\t' && p[e - 1] <= '\r')))
        e--;
    *n = e - i;
    return p + i;
}

/* Digits with single underscores between them from p[*i]; the count of
 * digits (0: none or a misplaced underscore). */
static int
s_py_digits(const char *p, size_t n, size_t *i)
{
    int digits = 0;
    while (*i < n) {
        if (p[*i] >= '0' && p[*i] <= '9') {
            digits++;
            (*i)++;
        } else if (p[*i] == '_' && digits && *i + 1 < n && p[*i + 1] >= '0' &&
                   p[*i + 1] <= '9') {
            (*i)++;
        } else {
            break;
        }
    }
    return digits;
}

int
sl_tx_py_float(const char *p, size_t n, double *out)
{
    p = s_py_strip(p, &n);
    size_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    size_t rest = n - i;
    int special = (rest == 3 && !strncasecmp(p + i, "inf", 3)) ||
                  (rest == 8 && !strncasecmp(p + i, "infinity", 8)) ||
                  (rest == 3 && !strncasecmp(p + i, "nan", 3));
    if (!special) {
        int digits = s_py_digits(p, n, &i);
        if (i < n && p[i] == '.') {
            i++;
            if (i < n && p[i] >= '0' && p[i] <= '9')
                digits += s_py_digits(p, n, &i);
        }
        if (!digits)
            return 0;
        if (i < n && (p[i] == 'e' || p[i] == 'E')) {
            i++;
            if (i < n && (p[i] == '+' || p[i] == '-'))
                i++;
            if (!s_py_digits(p, n, &i))
                return 0;
        }
        if (i != n)
            return 0;
    }
    if (out) {
        char buf[512];
        s_strip_us(p, n, buf, sizeof buf);     /* strtod reads the rest as Python does */
        *out = strtod(buf, NULL);
    }
    return 1;
}

int
sl_tx_py_int(const char *p, size_t n, int64_t *out)
{
    p = s_py_strip(p, &n);
    size_t i = 0;
    int neg = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    size_t start = i;
    if (!s_py_digits(p, n, &i) || i != n)
        return 0;
    if (out) {
        uint64_t v = 0;
        int over = 0;
        for (size_t k = start; k < n; k++) {
            if (p[k] == '_')
                continue;
            unsigned d = (unsigned) (p[k] - '0');
            if (v > (UINT64_MAX - d) / 10)
                over = 1;
            else
                v = v * 10 + d;
        }
        if (over || v > (uint64_t) INT64_MAX + neg)
            *out = neg ? INT64_MIN : INT64_MAX;
        else
            *out = neg ? (int64_t) (0 - v) : (int64_t) v;
    }
    return 1;
}

int
sl_tx_truthy(const sl_ynode_t *node)
{
    sl_tx_val_t v;
    sl_tx_value(node, &v);
    switch (v.type) {
    case SL_TXT_NULL: return 0;
    case SL_TXT_BOOL:
    case SL_TXT_INT: return v.i != 0;
    case SL_TXT_FLOAT: return v.f != 0.0;
    case SL_TXT_STR: return v.s[0] != '\0';
    default: return node->n != 0;
    }
}

const sl_ynode_t *
sl_tx_param(const sl_ynode_t *params, const char *path)
{
    const sl_ynode_t *n = params;
    char part[128];
    while (n && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t) (dot - path) : strlen(path);
        if (len >= sizeof part)
            return NULL;
        memcpy(part, path, len);
        part[len] = '\0';
        n = n->kind == SL_Y_MAP ? sl_ynode_get(n, part) : NULL;
        path += len + (dot != NULL);
    }
    return n;
}

int
sl_tx_err(const sl_tx_conf_t *conf, const sl_ynode_t *node, char *err, size_t errlen,
          const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = node && node->doc ? node->doc->file : conf->file;
    return sl_yerr_at(file, node ? node->line : conf->line, err, errlen,
                      "sink '%s': transformer '%s': %s", conf->sink ? conf->sink : "?",
                      conf->transformer, msg);
}

int
sl_tx_warn(const sl_tx_conf_t *conf, const sl_ynode_t *node, char *err, size_t errlen,
           const char *fmt, ...)
{
    if (conf->quiet)
        return 0;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = node && node->doc ? node->doc->file : conf->file;
    return sl_ywarn_at(conf->warn, file, node ? node->line : conf->line, err, errlen,
                       "sink '%s': transformer '%s': %s", conf->sink ? conf->sink : "?",
                       conf->transformer, msg);
}

int
sl_tx_fail(sl_tx_env_t *env, const char *fmt, ...)
{
    if (env->err && env->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(env->err, env->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void
s_types_text(unsigned types, char *buf, size_t len)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = { { SL_TXT_NUM, "a number" }, { SL_TXT_INT, "an integer" },
                  { SL_TXT_FLOAT, "a number" }, { SL_TXT_STR, "a string" },
                  { SL_TXT_BOOL, "a boolean" }, { SL_TXT_MAP, "a mapping" },
                  { SL_TXT_SEQ, "a list" }, { SL_TXT_NULL, "null" } };
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        unsigned b = names[i].bit;
        if ((types & b) != b)
            continue;
        types &= ~b;
        o += (size_t) snprintf(buf + o, len > o ? len - o : 0, "%s%s", o ? " or " : "",
                               names[i].name);
    }
}

static const char *
s_kind_text(const sl_tx_val_t *v)
{
    switch (v->type) {
    case SL_TXT_NULL: return "null";
    case SL_TXT_BOOL: return "a boolean";
    case SL_TXT_INT: return "an integer";
    case SL_TXT_FLOAT: return "a number";
    case SL_TXT_STR: return "a string";
    case SL_TXT_MAP: return "a mapping";
    default: return "a list";
    }
}

/* A falsy value for messages: "0", "0.0", "false", "an empty string". */
static const char *
s_falsy_text(const sl_tx_val_t *v)
{
    switch (v->type) {
    case SL_TXT_STR: return "an empty string";
    case SL_TXT_SEQ: return "an empty list";
    case SL_TXT_MAP: return "an empty mapping";
    case SL_TXT_NULL: return "null";
    case SL_TXT_BOOL: return "false";
    default: return v->s ? v->s : "0";
    }
}

/* Levenshtein distance of a and b, for "did you mean" (short keys only). */
static size_t
s_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

static const char *
s_last_part(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* The option whose path (or last part) is closest to path, if close enough
 * to be a typo or a misplaced key (`expr` for `target.expr`); else NULL. */
static const char *
s_suggest(const sl_opt_t *opts, const char *path)
{
    const char *best = NULL, *key = s_last_part(path);
    size_t best_d = SIZE_MAX, klen = strlen(key);
    for (const sl_opt_t *o = opts; o->name; o++) {
        if (o->kinds & SL_TXT_IGNORED)
            continue;
        size_t d = s_distance(path, o->name), d2 = s_distance(key, s_last_part(o->name));
        if (d2 < d)
            d = d2;
        if (d < best_d) {
            best_d = d;
            best = o->name;
        }
    }
    return best && best_d <= 2 && best_d * 2 < klen ? best : NULL;
}

/* Checks map node (at path prefix) against opts. */
static int
s_check_map(const sl_tx_conf_t *conf, const sl_opt_t *opts, const sl_ynode_t *map,
            const char *prefix, char *err, size_t errlen)
{
    for (size_t k = 0; k < map->n; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", map->keys[k]);
        const sl_ynode_t *val = map->items[k];
        sl_ynode_t keynode = { .kind = SL_Y_SCALAR, .line = map->key_lines[k], .doc = map->doc };
        const sl_opt_t *opt = NULL;
        for (const sl_opt_t *o = opts; o->name; o++)
            if (!strcmp(o->name, path)) {
                opt = o;
                break;
            }
        if (opt && (opt->kinds & SL_TXT_IGNORED)) {
            if (sl_tx_warn(conf, &keynode, err, errlen, "ignored parameter '%s' (%s)", path,
                           opt->help) < 0)
                return -1;
            continue;
        }
        if (!opt) {
            /* Ceilometer passes parameters as keyword arguments and every
             * transformer takes **kwargs: what it does not read, it ignores. */
            const char *hint = s_suggest(opts, path);
            if (hint) {
                if (sl_tx_warn(conf, &keynode, err, errlen, "ignored parameter '%s' (Ceilometer "
                               "does not read it): did you mean '%s'?", path, hint) < 0)
                    return -1;
                continue;
            }
            char known[512];
            size_t o = 0, plen = strlen(prefix);
            known[0] = '\0';
            for (const sl_opt_t *q = opts; q->name; q++) {
                /* direct children of prefix only */
                if (q->kinds & SL_TXT_IGNORED)
                    continue;
                if (plen && (strncmp(q->name, prefix, plen) || q->name[plen] != '.'))
                    continue;
                const char *rest = q->name + (plen ? plen + 1 : 0);
                if (strchr(rest, '.'))
                    continue;
                o += (size_t) snprintf(known + o, o < sizeof known ? sizeof known - o : 0,
                                       "%s%s", o ? ", " : "", rest);
            }
            if (sl_tx_warn(conf, &keynode, err, errlen, "ignored parameter '%s' (Ceilometer does "
                           "not read it%s%s)", path, known[0] ? "; known here: " : "",
                           known) < 0)
                return -1;
            continue;
        }
        sl_tx_val_t v;
        sl_tx_value(val, &v);
        if (!(v.type & opt->kinds)) {
            if ((opt->kinds & SL_TXT_FALSY) && !sl_tx_truthy(val)) {
                if (sl_tx_warn(conf, val, err, errlen, "parameter '%s' is %s%s: treated as "
                               "absent, as Ceilometer does", path, s_falsy_text(&v),
                               v.type == SL_TXT_BOOL ? "" : " (false in Python)") < 0)
                    return -1;
                continue;
            }
            char want[128];
            s_types_text(opt->kinds, want, sizeof want);
            return sl_tx_err(conf, val, err, errlen, "parameter '%s' must be %s, not %s", path,
                             want, s_kind_text(&v));
        }
        if (v.type == SL_TXT_MAP && s_check_map(conf, opts, val, path, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int
sl_tx_check_params(const sl_tx_conf_t *conf, const sl_opt_t *opts, char *err, size_t errlen)
{
    if (!conf->params)
        return 0;
    if (conf->params->kind != SL_Y_MAP) {
        /* Ceilometer: `transformer['parameters'] or {}` */
        if (!sl_tx_truthy(conf->params))
            return sl_tx_warn(conf, conf->params, err, errlen, "parameters are false: none, as "
                              "Ceilometer does");
        return sl_tx_err(conf, conf->params, err, errlen, "parameters must be a mapping");
    }
    return s_check_map(conf, opts, conf->params, "", err, errlen);
}

int
sl_tx_expr_fails_in_python(const char *msg)
{
    if (strstr(msg, "calls are not supported") || strstr(msg, "is not supported here"))
        return 1;               /* a call fails on the empty value; a keyword there is a
                                 * syntax error in Python */
    return !strstr(msg, "(the limit)") && !strstr(msg, "not supported") &&
           !strstr(msg, "not allowed");
}

/* --- samples -------------------------------------------------------------- */

void
sl_tx_sample_copy(sl_arena_t *a, const sl_sample_t *s, sl_sample_t *out)
{
    const char *strs[14] = {
        s->id, s->name, s->type, s->unit, s->volume_json, s->user_id, s->project_id,
        s->resource_id, s->timestamp, s->resource_metadata ? s->resource_metadata : "{}",
        s->source, s->message_id, s->monotonic_time,
    };
    size_t lens[13], total = 0;
    for (int i = 0; i < 13; i++) {
        lens[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
        total += lens[i];
    }
    char *buf = sl_arena_alloc(a, total ? total : 1);
    const char *copies[13];
    for (int i = 0; i < 13; i++) {
        if (!strs[i]) {
            copies[i] = NULL;
            continue;
        }
        memcpy(buf, strs[i], lens[i]);
        copies[i] = buf;
        buf += lens[i];
    }
    *out = (sl_sample_t) {
        .id = copies[0], .name = copies[1], .type = copies[2], .unit = copies[3],
        .volume_json = copies[4], .volume = s->volume, .user_id = copies[5],
        .project_id = copies[6], .resource_id = copies[7], .timestamp = copies[8],
        .resource_metadata = copies[9], .source = copies[10], .message_id = copies[11],
        .monotonic_time = copies[12],
    };
}

void
sl_tx_sample_new(sl_tx_env_t *env, sl_sample_t *out)
{
    char *id = sl_arena_alloc(env->out, 37);
    sl_sample_uuid4(id);
    out->id = id;
    out->source = env->source;
    out->monotonic_time = NULL;
    out->volume_json = NULL;
}

const char *
sl_tx_describe(const sl_sample_t *s)
{
    static __thread char buf[320];
    snprintf(buf, sizeof buf, "%.100s for %.100s @ %.40s", s->name ? s->name : "None",
             s->resource_id ? s->resource_id : "None", s->timestamp ? s->timestamp : "None");
    return buf;
}

int
sl_tx_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* --- hash table ----------------------------------------------------------- */

uint64_t
sl_tx_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    h ^= 0x9e3779b97f4a7c15ULL + len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ w ^ ((uint64_t) len << 56)) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}

void *
sl_tx_map_get(const sl_tx_map_t *m, uint64_t h, sl_tx_eq_fn eq, const void *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const sl_tx_slot_t *s = &m->slots[i];
        if (!s->v)
            return NULL;
        if (s->h == h && eq(s->v, key))
            return s->v;
    }
}

static void
s_grow(sl_tx_map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    sl_tx_slot_t *slots = sl_xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].v)
            continue;
        size_t j = m->slots[i].h & (cap - 1);
        while (slots[j].v)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

void
sl_tx_map_put(sl_tx_map_t *m, uint64_t h, void *entry)
{
    if ((m->n + 1) * 4 > m->cap * 3)        /* load factor <= 0.75 */
        s_grow(m);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].v)
        i = (i + 1) & mask;
    m->slots[i].h = h;
    m->slots[i].v = entry;
    m->n++;
}

void *
sl_tx_map_del(sl_tx_map_t *m, uint64_t h, sl_tx_eq_fn eq, const void *key)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        if (!m->slots[i].v)
            return NULL;
        if (m->slots[i].h == h && eq(m->slots[i].v, key))
            break;
    }
    void *v = m->slots[i].v;
    /* backward-shift: move later entries of the run into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].v; j = (j + 1) & mask) {
        size_t home = m->slots[j].h & mask;
        /* j's entry may move to hole if home is not in (hole, j] cyclically */
        int in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_range) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].v = NULL;
    m->slots[hole].h = 0;
    m->n--;
    return v;
}

void
sl_tx_map_clear(sl_tx_map_t *m, void (*free_fn)(void *))
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].v && free_fn)
            free_fn(m->slots[i].v);
        m->slots[i].v = NULL;
        m->slots[i].h = 0;
    }
    m->n = 0;
}

void
sl_tx_map_free(sl_tx_map_t *m, void (*free_fn)(void *))
{
    sl_tx_map_clear(m, free_fn);
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}

/* --- state blobs ---------------------------------------------------------- */

void
sl_tx_w_bytes(sl_tx_wbuf_t *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->p = sl_xrealloc(w->p, w->cap);
    }
    if (n)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

void
sl_tx_w_u8(sl_tx_wbuf_t *w, unsigned v)
{
    unsigned char b = (unsigned char) v;
    sl_tx_w_bytes(w, &b, 1);
}

void
sl_tx_w_u32(sl_tx_wbuf_t *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char) (v >> (8 * i));
    sl_tx_w_bytes(w, b, 4);
}

void
sl_tx_w_u64(sl_tx_wbuf_t *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char) (v >> (8 * i));
    sl_tx_w_bytes(w, b, 8);
}

void
sl_tx_w_f64(sl_tx_wbuf_t *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    sl_tx_w_u64(w, u);
}

void
sl_tx_w_str(sl_tx_wbuf_t *w, const char *s)
{
    if (!s) {
        sl_tx_w_u32(w, 0);
        return;
    }
    size_t n = strlen(s);
    sl_tx_w_u32(w, (uint32_t) (n + 1));     /* sample strings are far below 4 GiB */
    sl_tx_w_bytes(w, s, n);
}

void
sl_tx_w_sample(sl_tx_wbuf_t *w, const sl_sample_t *s)
{
    const char *strs[13] = {
        s->id, s->name, s->type, s->unit, s->volume_json, s->user_id, s->project_id,
        s->resource_id, s->timestamp, s->resource_metadata, s->source, s->message_id,
        s->monotonic_time,
    };
    for (int i = 0; i < 13; i++)
        sl_tx_w_str(w, strs[i]);
    sl_tx_w_f64(w, s->volume);
}

static const unsigned char *
s_r_take(sl_tx_rbuf_t *r, size_t n)
{
    if (r->bad || n > r->n - r->off) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}

unsigned
sl_tx_r_u8(sl_tx_rbuf_t *r)
{
    const unsigned char *p = s_r_take(r, 1);
    return p ? p[0] : 0;
}

uint32_t
sl_tx_r_u32(sl_tx_rbuf_t *r)
{
    const unsigned char *p = s_r_take(r, 4);
    uint32_t v = 0;
    for (int i = 0; p && i < 4; i++)
        v |= (uint32_t) p[i] << (8 * i);
    return v;
}

uint64_t
sl_tx_r_u64(sl_tx_rbuf_t *r)
{
    const unsigned char *p = s_r_take(r, 8);
    uint64_t v = 0;
    for (int i = 0; p && i < 8; i++)
        v |= (uint64_t) p[i] << (8 * i);
    return v;
}

double
sl_tx_r_f64(sl_tx_rbuf_t *r)
{
    uint64_t u = sl_tx_r_u64(r);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

size_t
sl_tx_r_count(sl_tx_rbuf_t *r, size_t min_item)
{
    uint64_t n = sl_tx_r_u64(r);
    if (r->bad)
        return 0;
    if (min_item == 0)
        min_item = 1;
    if (n > (r->n - r->off) / min_item) {
        r->bad = 1;
        return 0;
    }
    return (size_t) n;
}

char *
sl_tx_r_str(sl_tx_rbuf_t *r, sl_arena_t *a, int *is_null)
{
    uint32_t n1 = sl_tx_r_u32(r);
    if (is_null)
        *is_null = 1;
    if (r->bad || n1 == 0)
        return NULL;
    const unsigned char *p = s_r_take(r, n1 - 1);
    if (!p || memchr(p, '\0', n1 - 1)) {
        r->bad = 1;
        return NULL;
    }
    if (is_null)
        *is_null = 0;
    return sl_arena_strndup(a, (const char *) p, n1 - 1);
}

void
sl_tx_r_sample(sl_tx_rbuf_t *r, sl_arena_t *a, sl_sample_t *s)
{
    char *f[13];
    for (int i = 0; i < 13; i++)
        f[i] = sl_tx_r_str(r, a, NULL);
    double volume = sl_tx_r_f64(r);
    if (!f[9])
        r->bad = 1;
    *s = (sl_sample_t) {
        .id = f[0], .name = f[1], .type = f[2], .unit = f[3], .volume_json = f[4],
        .volume = volume, .user_id = f[5], .project_id = f[6], .resource_id = f[7],
        .timestamp = f[8], .resource_metadata = r->bad ? "{}" : f[9], .source = f[10],
        .message_id = f[11], .monotonic_time = f[12],
    };
}

const char *const sl_tx_resource_keys[] = { "resource_id", NULL };
