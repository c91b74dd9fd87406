/* expr — compile (tokenise, parse into a node array, fold constants) and
 * evaluate (a recursive walk). Semantics in expr.h; the Python rules each
 * operator follows are CPython's (Objects/longobject.c, floatobject.c). */
#include "common/expr.h"

#include "common/log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nesting levels the parser recurses through (parentheses, unary
 * operators, `not`, `**`, conditionals) and levels of the compiled tree
 * that evaluation recurses through: one limit for both. */
#define S_MAX_DEPTH SL_EXPR_MAX_DEPTH
#define S_TOO_DEEP "expression nested too deeply: more than %d levels (the limit): simplify it"

typedef enum {
    N_CONST, N_NAME, N_ATTR, N_INDEX, N_UNARY, N_BIN, N_AND, N_OR, N_NOT, N_COND, N_CMP,
} s_ntype_t;

typedef enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
    OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE,
    OP_NEG, OP_POS,
} s_op_t;

static const char *const s_op_text[] = {
    "+", "-", "*", "/", "//", "%", "** or pow()", "<", "<=", ">", ">=", "==", "!=", "-", "+",
};

typedef struct {
    s_ntype_t type;
    s_op_t    op;
    int       chained;      /* N_CMP whose left operand is a comparison of the same chain */
    int       a, b, c;      /* children (node indexes) */
    int       slot;         /* N_NAME: variable or field, -1 = empty; N_ATTR: field or -1 */
    const char *key;        /* N_ATTR: attribute name */
    size_t    key_n;
    sl_xval_t k;            /* N_CONST */
} s_node_t;

struct sl_expr {
    char       *text;
    s_node_t   *nodes;
    size_t      n_nodes, cap;
    int         root;
    int         vars_mode;
    sl_arena_t  arena;      /* constant strings */
};

/* --- sample fields -------------------------------------------------------- */

enum {
    F_ID, F_NAME, F_TYPE, F_UNIT, F_VOLUME, F_USER_ID, F_PROJECT_ID, F_RESOURCE_ID,
    F_TIMESTAMP, F_RESOURCE_METADATA, F_SOURCE, F_MONOTONIC_TIME, F_COUNT,
};

static const char *const s_fields[F_COUNT] = {
    "id", "name", "type", "unit", "volume", "user_id", "project_id", "resource_id",
    "timestamp", "resource_metadata", "source", "monotonic_time",
};

static int
s_field_id(const char *name, size_t n)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(s_fields[i]) == n && memcmp(s_fields[i], name, n) == 0)
            return i;
    return -1;
}

/* --- JSON text scanning (namespaces are read in place, never parsed whole) */

static const char *
s_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at the opening quote; returns the position after the closing one. */
static const char *
s_skip_string(const char *p, const char *end)
{
    const char *start = ++p;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t) (end - p));
        if (!q)
            return NULL;
        size_t bs = 0;                  /* an even run of backslashes: not escaped */
        while (q - bs > start && q[-1 - (ptrdiff_t) bs] == '\\')
            bs++;
        if (!(bs & 1))
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

static const char *
s_skip_value(const char *p, const char *end, int depth)
{
    p = s_ws(p, end);
    if (p >= end || depth > 512)
        return NULL;
    if (*p == '"')
        return s_skip_string(p, end);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';
        p = s_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = s_ws(p, end);
                if (p >= end || *p != '"' || !(p = s_skip_string(p, end)))
                    return NULL;
                p = s_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p++;
            }
            if (!(p = s_skip_value(p, end, depth + 1)))
                return NULL;
            p = s_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    const char *q = p;
    while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\t' &&
           *q != '\n' && *q != '\r')
        q++;
    return q > p ? q : NULL;
}

static int
s_hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned) (c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned) (c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned) (c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t
s_utf8(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char) (0xc0 | cp >> 6);
        o[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char) (0xe0 | cp >> 12);
        o[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char) (0xf0 | cp >> 18);
    o[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes the JSON string body p[0..n) (between the quotes) into o, which
 * has room for n bytes (decoding never grows). Returns the length. */
static size_t
s_json_unescape(const char *p, size_t n, char *o)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\' || i + 1 >= n) {
            o[j++] = p[i];
            continue;
        }
        char c = p[++i];
        switch (c) {
        case 'n': o[j++] = '\n'; break;
        case 't': o[j++] = '\t'; break;
        case 'r': o[j++] = '\r'; break;
        case 'b': o[j++] = '\b'; break;
        case 'f': o[j++] = '\f'; break;
        case 'u': {
            unsigned cp;
            if (i + 4 >= n + 0 || s_hex4(p + i + 1, &cp) < 0) {
                o[j++] = 'u';
                break;
            }
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < n && p[i + 1] == '\\' &&
                p[i + 2] == 'u') {
                unsigned lo;
                if (s_hex4(p + i + 3, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
            }
            j += s_utf8(cp, o + j);
            break;
        }
        default: o[j++] = c; break;
        }
    }
    return j;
}

/* Compares the raw JSON string body p[0..n) with key after decoding. */
static int
s_key_equal(const char *p, size_t n, const char *key, size_t key_n)
{
    /* Decoding never lengthens, and only escapes shorten: a raw key of the
     * same length matches byte for byte unless it holds an escape. */
    if (n == key_n)
        return memcmp(p, key, n) == 0 && !memchr(p, '\\', n);
    if (n < key_n || !memchr(p, '\\', n))
        return 0;
    char buf[256];
    char *o = n <= sizeof buf ? buf : malloc(n);
    if (!o)
        return 0;
    size_t m = s_json_unescape(p, n, o);
    int eq = m == key_n && memcmp(o, key, m) == 0;
    if (o != buf)
        free(o);
    return eq;
}

int
sl_expr_json_get(const char *obj, size_t n, const char *key, size_t key_n,
                 const char **val, size_t *val_n)
{
    const char *p = obj, *end = obj + n;
    int found = 0;
    p = s_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    p = s_ws(p + 1, end);
    if (p < end && *p == '}')
        return 0;
    for (;;) {
        p = s_ws(p, end);
        if (p >= end || *p != '"')
            return -1;
        const char *ks = p + 1, *ke = s_skip_string(p, end);
        if (!ke)
            return -1;
        p = s_ws(ke, end);
        if (p >= end || *p != ':')
            return -1;
        const char *vs = s_ws(p + 1, end), *ve = s_skip_value(vs, end, 0);
        if (!ve)
            return -1;
        if (s_key_equal(ks, (size_t) (ke - 1 - ks), key, key_n)) {
            *val = vs;
            *val_n = (size_t) (ve - vs);
            found = 1;
        }
        p = s_ws(ve, end);
        if (p >= end)
            return -1;
        if (*p == '}')
            return found;
        if (*p != ',')
            return -1;
        p++;
    }
}

static int
s_is_int_text(const char *p, size_t n)
{
    size_t i = 0;
    if (i < n && p[i] == '-')
        i++;
    if (i == n)
        return 0;
    for (; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return 1;
}

/* A number's JSON text as an int (if integral text that fits) or a float. */
static void
s_number(const char *p, size_t n, sl_xval_t *out)
{
    char buf[64];
    if (n >= sizeof buf) {
        out->kind = SL_XV_FLOAT;
        out->u.f = strtod(p, NULL);     /* ends at the first non-number byte */
        return;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (s_is_int_text(buf, n)) {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno == 0) {
            out->kind = SL_XV_INT;
            out->u.i = v;
            return;
        }
    }
    out->kind = SL_XV_FLOAT;
    out->u.f = strtod(buf, NULL);
}

/* The JSON value text p[0..n) as a value. */
static int
s_from_json(const char *p, size_t n, sl_arena_t *scratch, sl_xval_t *out)
{
    if (!n)
        return -1;
    switch (*p) {
    case '{':
        out->kind = SL_XV_OBJ;
        out->u.s.p = p;
        out->u.s.n = n;
        return 0;
    case '[':
        out->kind = SL_XV_LIST;
        out->u.s.p = p;
        out->u.s.n = n;
        return 0;
    case '"': {
        const char *b = p + 1;
        size_t bn = n >= 2 ? n - 2 : 0;
        out->kind = SL_XV_STR;
        if (!memchr(b, '\\', bn)) {
            out->u.s.p = b;
            out->u.s.n = bn;
        } else {
            char *o = scratch ? sl_arena_alloc(scratch, bn + 1) : NULL;
            if (!o)
                return -1;
            out->u.s.n = s_json_unescape(b, bn, o);
            out->u.s.p = o;
        }
        return 0;
    }
    case 't':
    case 'f':
        out->kind = SL_XV_BOOL;
        out->u.i = *p == 't';
        return 0;
    case 'n':
        out->kind = SL_XV_NONE;
        return 0;
    default:
        s_number(p, n, out);
        return 0;
    }
}

static int
s_json_empty_container(const char *p, size_t n)
{
    const char *q = s_ws(p + 1, p + n);
    return q < p + n && (*q == '}' || *q == ']');
}

/* Element idx of the JSON array text (negative from the end). */
static int
s_list_index(const char *p, size_t n, int64_t idx, const char **vp, size_t *vn)
{
    const char *end = p + n;
    const char *items[1024];
    size_t lens[1024], count = 0;
    const char *q = s_ws(p + 1, end);
    if (q < end && *q == ']')
        return 0;
    for (;;) {
        const char *vs = s_ws(q, end), *ve = s_skip_value(vs, end, 0);
        if (!ve)
            return -1;
        if (count < 1024) {
            items[count] = vs;
            lens[count] = (size_t) (ve - vs);
        }
        count++;
        q = s_ws(ve, end);
        if (q >= end)
            return -1;
        if (*q == ']')
            break;
        if (*q != ',')
            return -1;
        q++;
    }
    if (idx < 0)
        idx += (int64_t) count;
    if (idx < 0 || idx >= (int64_t) count || idx >= 1024)
        return 0;
    *vp = items[idx];
    *vn = lens[idx];
    return 1;
}

/* --- values --------------------------------------------------------------- */

const char *
sl_expr_type_name(const sl_xval_t *v)
{
    switch (v->kind) {
    case SL_XV_NONE: return "NoneType";
    case SL_XV_BOOL: return "bool";
    case SL_XV_INT: return "int";
    case SL_XV_FLOAT: return "float";
    case SL_XV_STR: return "str";
    case SL_XV_LIST: return "list";
    default: return "Namespace";
    }
}

int
sl_expr_truthy(const sl_xval_t *v)
{
    switch (v->kind) {
    case SL_XV_EMPTY:
    case SL_XV_NONE: return 0;
    case SL_XV_BOOL:
    case SL_XV_INT: return v->u.i != 0;
    case SL_XV_FLOAT: return v->u.f != 0.0;     /* NaN is true, as in Python */
    case SL_XV_STR: return v->u.s.n != 0;
    case SL_XV_OBJ:
    case SL_XV_LIST: return !s_json_empty_container(v->u.s.p, v->u.s.n);
    case SL_XV_SAMPLE: return 1;
    }
    return 0;
}

int
sl_expr_number(const sl_xval_t *v, double *out, char *err, size_t errlen)
{
    switch (v->kind) {
    case SL_XV_BOOL:
    case SL_XV_INT: *out = (double) v->u.i; return 0;
    case SL_XV_FLOAT: *out = v->u.f; return 0;
    default:
        return sl_errf(err, errlen, "float() argument must be a string or a number, not '%s'",
                      sl_expr_type_name(v));
    }
}

static void
s_set_int(sl_xval_t *v, int64_t i)
{
    v->kind = SL_XV_INT;
    v->u.i = i;
}

static void
s_set_float(sl_xval_t *v, double f)
{
    v->kind = SL_XV_FLOAT;
    v->u.f = f;
}

static void
s_set_bool(sl_xval_t *v, int b)
{
    v->kind = SL_XV_BOOL;
    v->u.i = b != 0;
}

static void
s_set_str(sl_xval_t *v, const char *s)
{
    if (!s) {
        v->kind = SL_XV_NONE;
        return;
    }
    v->kind = SL_XV_STR;
    v->u.s.p = s;
    v->u.s.n = strlen(s);
}

static int
s_is_num(const sl_xval_t *v)
{
    return v->kind == SL_XV_INT || v->kind == SL_XV_FLOAT || v->kind == SL_XV_BOOL;
}

static int
s_is_intlike(const sl_xval_t *v)
{
    return v->kind == SL_XV_INT || v->kind == SL_XV_BOOL;
}

/* A sample's field as a value. */
static void
s_sample_field(const sl_sample_t *s, int field, sl_xval_t *out)
{
    switch (field) {
    case F_ID: s_set_str(out, s->id); return;
    case F_NAME: s_set_str(out, s->name); return;
    case F_TYPE: s_set_str(out, s->type); return;
    case F_UNIT: s_set_str(out, s->unit); return;
    case F_USER_ID: s_set_str(out, s->user_id); return;
    case F_PROJECT_ID: s_set_str(out, s->project_id); return;
    case F_RESOURCE_ID: s_set_str(out, s->resource_id); return;
    case F_TIMESTAMP: s_set_str(out, s->timestamp); return;
    case F_SOURCE: s_set_str(out, s->source); return;
    case F_RESOURCE_METADATA: {
        const char *m = s->resource_metadata ? s->resource_metadata : "{}";
        out->kind = SL_XV_OBJ;
        out->u.s.p = m;
        out->u.s.n = strlen(m);
        return;
    }
    case F_VOLUME: {
        const char *vj = s->volume_json;
        if (!vj) {
            if (isnan(s->volume))
                out->kind = SL_XV_NONE;
            else
                s_set_float(out, s->volume);
            return;
        }
        size_t n = strlen(vj);
        if (vj[0] == '"' && n >= 2) {
            /* A numeric string volume: Ceilometer would compute on the str
             * (Python-specific, outside the contract); sluice uses its value. */
            s_number(vj + 1, n - 2, out);
            if (out->kind == SL_XV_FLOAT)
                out->u.f = s->volume;
            return;
        }
        if (vj[0] == 't' || vj[0] == 'f') {
            s_set_bool(out, vj[0] == 't');
            return;
        }
        if (vj[0] == 'n') {
            out->kind = SL_XV_NONE;
            return;
        }
        s_number(vj, n, out);
        return;
    }
    case F_MONOTONIC_TIME:
        if (!s->monotonic_time)
            out->kind = SL_XV_NONE;
        else
            s_number(s->monotonic_time, strlen(s->monotonic_time), out);
        return;
    default:
        out->kind = SL_XV_EMPTY;
        return;
    }
}

/* Python's float divmod (floatobject.c float_divmod). */
static void
s_float_divmod(double vx, double wx, double *floordiv, double *mod)
{
    double m = fmod(vx, wx);
    double div = (vx - m) / wx;
    if (m != 0.0) {
        if ((wx < 0) != (m < 0)) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = copysign(0.0, wx);
    }
    double fd;
    if (div != 0.0) {
        fd = floor(div);
        if (div - fd > 0.5)
            fd += 1.0;
    } else {
        fd = copysign(0.0, vx / wx);
    }
    *floordiv = fd;
    *mod = m;
}

static int
s_type_error(char *err, size_t errlen, s_op_t op, const sl_xval_t *a, const sl_xval_t *b)
{
    return sl_errf(err, errlen, "unsupported operand type(s) for %s: '%s' and '%s'",
                  s_op_text[op], sl_expr_type_name(a), sl_expr_type_name(b));
}

static int
s_float_pow(double x, double y, sl_xval_t *out, char *err, size_t errlen)
{
    if (y == 0.0) {
        s_set_float(out, 1.0);
        return 0;
    }
    if (x == 0.0 && y < 0.0)
        return sl_errf(err, errlen, "0.0 cannot be raised to a negative power");
    if (x < 0.0 && isfinite(x) && isfinite(y) && floor(y) != y)
        return sl_errf(err, errlen, "negative number cannot be raised to a fractional power "
                      "(Python gives a complex number)");
    double r = pow(x, y);
    if (isinf(r) && isfinite(x) && isfinite(y))
        return sl_errf(err, errlen, "(34, 'Numerical result out of range')");
    s_set_float(out, r);
    return 0;
}

static int
s_arith(s_op_t op, const sl_xval_t *a, const sl_xval_t *b, sl_arena_t *scratch,
        sl_xval_t *out, char *err, size_t errlen)
{
    if (op == OP_ADD && a->kind == SL_XV_STR && b->kind == SL_XV_STR) {
        char *o = scratch ? sl_arena_alloc(scratch, a->u.s.n + b->u.s.n + 1) : NULL;
        if (!o)
            return sl_errf(err, errlen, "no room for a string");
        memcpy(o, a->u.s.p, a->u.s.n);
        memcpy(o + a->u.s.n, b->u.s.p, b->u.s.n);
        o[a->u.s.n + b->u.s.n] = '\0';
        out->kind = SL_XV_STR;
        out->u.s.p = o;
        out->u.s.n = a->u.s.n + b->u.s.n;
        return 0;
    }
    if (!s_is_num(a) || !s_is_num(b))
        return s_type_error(err, errlen, op, a, b);
    if (s_is_intlike(a) && s_is_intlike(b)) {
        int64_t x = a->u.i, y = b->u.i, r;
        switch (op) {
        case OP_ADD:
            if (__builtin_add_overflow(x, y, &r))
                break;
            s_set_int(out, r);
            return 0;
        case OP_SUB:
            if (__builtin_sub_overflow(x, y, &r))
                break;
            s_set_int(out, r);
            return 0;
        case OP_MUL:
            if (__builtin_mul_overflow(x, y, &r))
                break;
            s_set_int(out, r);
            return 0;
        case OP_DIV:
            if (y == 0)
                return sl_errf(err, errlen, "division by zero");
            s_set_float(out, (double) x / (double) y);
            return 0;
        case OP_FLOORDIV:
        case OP_MOD:
            if (y == 0)
                return sl_errf(err, errlen, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1)
                break;
            {
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    m += y;
                    q -= 1;
                }
                s_set_int(out, op == OP_MOD ? m : q);
            }
            return 0;
        case OP_POW:
            if (y < 0) {
                if (x == 0)
                    return sl_errf(err, errlen, "0.0 cannot be raised to a negative power");
                s_set_float(out, pow((double) x, (double) y));
                return 0;
            }
            {
                int64_t base = x, acc = 1, e = y;
                int over = 0;
                while (e > 0 && !over) {
                    if (e & 1)
                        over |= __builtin_mul_overflow(acc, base, &acc);
                    e >>= 1;
                    if (e)
                        over |= __builtin_mul_overflow(base, base, &base);
                }
                if (!over) {
                    s_set_int(out, acc);
                    return 0;
                }
                double f = pow((double) x, (double) y);
                if (isinf(f))
                    return sl_errf(err, errlen, "int too large to convert to float");
                s_set_float(out, f);
                return 0;
            }
        default:
            break;
        }
        /* 64-bit overflow: Python has a big int here; sluice goes on in
         * floating point (exact to 2**53). */
        double fx = (double) x, fy = (double) y, f;
        switch (op) {
        case OP_ADD: f = fx + fy; break;
        case OP_SUB: f = fx - fy; break;
        case OP_MUL: f = fx * fy; break;
        default: f = -fx; break;       /* INT64_MIN // -1 */
        }
        if (op == OP_MOD)
            f = 0.0;
        s_set_float(out, f);
        return 0;
    }
    double x = a->kind == SL_XV_FLOAT ? a->u.f : (double) a->u.i;
    double y = b->kind == SL_XV_FLOAT ? b->u.f : (double) b->u.i;
    switch (op) {
    case OP_ADD: s_set_float(out, x + y); return 0;
    case OP_SUB: s_set_float(out, x - y); return 0;
    case OP_MUL: s_set_float(out, x * y); return 0;
    case OP_DIV:
        if (y == 0.0)
            return sl_errf(err, errlen, "float division by zero");
        s_set_float(out, x / y);
        return 0;
    case OP_FLOORDIV:
    case OP_MOD: {
        if (y == 0.0)
            return sl_errf(err, errlen, op == OP_MOD ? "float modulo" : "float divmod()");
        double fd, m;
        s_float_divmod(x, y, &fd, &m);
        s_set_float(out, op == OP_MOD ? m : fd);
        return 0;
    }
    case OP_POW:
        return s_float_pow(x, y, out, err, errlen);
    default:
        return s_type_error(err, errlen, op, a, b);
    }
}

static int
s_str_cmp(const sl_xval_t *a, const sl_xval_t *b)
{
    size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
    int c = memcmp(a->u.s.p, b->u.s.p, n);
    if (c)
        return c;
    return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
}

/* -1 / 0 / 1, or 2 for unordered (NaN). */
static int
s_num_cmp(const sl_xval_t *a, const sl_xval_t *b)
{
    if (s_is_intlike(a) && s_is_intlike(b))
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    double x = a->kind == SL_XV_FLOAT ? a->u.f : (double) a->u.i;
    double y = b->kind == SL_XV_FLOAT ? b->u.f : (double) b->u.i;
    if (isnan(x) || isnan(y))
        return 2;
    return x < y ? -1 : x > y;
}

static int
s_equal(const sl_xval_t *a, const sl_xval_t *b)
{
    if (s_is_num(a) && s_is_num(b))
        return s_num_cmp(a, b) == 0;
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case SL_XV_NONE: return 1;
    case SL_XV_STR: return s_str_cmp(a, b) == 0;
    case SL_XV_OBJ: return a->u.s.p == b->u.s.p;        /* identity */
    case SL_XV_LIST:
        return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    case SL_XV_SAMPLE: return a->u.sample == b->u.sample;
    default: return 0;                                  /* EMPTY: a new object each time */
    }
}

static int
s_compare(s_op_t op, const sl_xval_t *a, const sl_xval_t *b, int *res, char *err, size_t errlen)
{
    if (op == OP_EQ || op == OP_NE) {
        *res = s_equal(a, b) == (op == OP_EQ);
        return 0;
    }
    int c;
    if (s_is_num(a) && s_is_num(b))
        c = s_num_cmp(a, b);
    else if (a->kind == SL_XV_STR && b->kind == SL_XV_STR)
        c = s_str_cmp(a, b);
    else
        return sl_errf(err, errlen, "'%s' not supported between instances of '%s' and '%s'",
                      s_op_text[op], sl_expr_type_name(a), sl_expr_type_name(b));
    if (c == 2) {
        *res = 0;
        return 0;
    }
    switch (op) {
    case OP_LT: *res = c < 0; break;
    case OP_LE: *res = c <= 0; break;
    case OP_GT: *res = c > 0; break;
    default: *res = c >= 0; break;
    }
    return 0;
}

/* v.key (or v[key] with a string key). */
static int
s_getattr(const sl_xval_t *v, const char *key, size_t key_n, int field, sl_arena_t *scratch,
          sl_xval_t *out, char *err, size_t errlen, int subscript)
{
    switch (v->kind) {
    case SL_XV_EMPTY:
        out->kind = SL_XV_EMPTY;
        return 0;
    case SL_XV_SAMPLE:
        if (field < 0)
            field = s_field_id(key, key_n);
        if (field < 0) {
            out->kind = SL_XV_EMPTY;
            return 0;
        }
        s_sample_field(v->u.sample, field, out);
        return 0;
    case SL_XV_OBJ: {
        const char *vp;
        size_t vn;
        int r = sl_expr_json_get(v->u.s.p, v->u.s.n, key, key_n, &vp, &vn);
        if (r < 0)
            return sl_errf(err, errlen, "resource_metadata is not a well-formed JSON object");
        if (r == 0) {
            out->kind = SL_XV_EMPTY;
            return 0;
        }
        if (s_from_json(vp, vn, scratch, out) < 0)
            return sl_errf(err, errlen, "cannot read the value of '%.*s'", (int) key_n, key);
        return 0;
    }
    default:
        if (subscript)
            return sl_errf(err, errlen, "'%s' object is not subscriptable by a string",
                          sl_expr_type_name(v));
        return sl_errf(err, errlen, "'%s' object has no attribute '%.*s'", sl_expr_type_name(v),
                      (int) key_n, key);
    }
}

/* --- evaluation ----------------------------------------------------------- */

typedef struct {
    const sl_expr_t *e;
    const sl_expr_env_t *env;
    char *err;
    size_t errlen;
} s_ev_t;

static int s_eval(s_ev_t *ev, int idx, sl_xval_t *out, sl_xval_t *last);

static int
s_eval(s_ev_t *ev, int idx, sl_xval_t *out, sl_xval_t *last)
{
    const s_node_t *n = &ev->e->nodes[idx];
    sl_arena_t *scratch = ev->env ? ev->env->scratch : NULL;
    sl_xval_t a, b;
    switch (n->type) {
    case N_CONST:
        *out = n->k;
        return 0;
    case N_NAME:
        if (n->slot < 0 || !ev->env) {
            if (n->slot >= 0)
                return sl_errf(ev->err, ev->errlen, "not a constant");
            out->kind = SL_XV_EMPTY;
            return 0;
        }
        if (ev->e->vars_mode) {
            const sl_sample_t *s = ev->env->vars ? ev->env->vars[n->slot] : NULL;
            if (s) {
                out->kind = SL_XV_SAMPLE;
                out->u.sample = s;
            } else {
                out->kind = SL_XV_EMPTY;
            }
        } else if (ev->env->sample) {
            s_sample_field(ev->env->sample, n->slot, out);
        } else {
            out->kind = SL_XV_EMPTY;
        }
        return 0;
    case N_ATTR:
        if (s_eval(ev, n->a, &a, NULL) < 0)
            return -1;
        return s_getattr(&a, n->key, n->key_n, n->slot, scratch, out, ev->err, ev->errlen, 0);
    case N_INDEX:
        if (s_eval(ev, n->a, &a, NULL) < 0 || s_eval(ev, n->b, &b, NULL) < 0)
            return -1;
        if (b.kind == SL_XV_STR)
            return s_getattr(&a, b.u.s.p, b.u.s.n, -1, scratch, out, ev->err, ev->errlen, 1);
        if (a.kind == SL_XV_EMPTY || a.kind == SL_XV_OBJ || a.kind == SL_XV_SAMPLE) {
            out->kind = SL_XV_EMPTY;            /* a non-string key of a namespace */
            return 0;
        }
        if (a.kind == SL_XV_LIST && s_is_intlike(&b)) {
            const char *vp;
            size_t vn;
            int r = s_list_index(a.u.s.p, a.u.s.n, b.u.i, &vp, &vn);
            if (r < 0)
                return sl_errf(ev->err, ev->errlen, "malformed JSON array");
            if (r == 0)
                return sl_errf(ev->err, ev->errlen, "list index out of range");
            return s_from_json(vp, vn, scratch, out) < 0
                   ? sl_errf(ev->err, ev->errlen, "cannot read a list item") : 0;
        }
        return sl_errf(ev->err, ev->errlen, "'%s' object is not subscriptable by '%s'",
                      sl_expr_type_name(&a), sl_expr_type_name(&b));
    case N_UNARY:
        if (s_eval(ev, n->a, &a, NULL) < 0)
            return -1;
        if (!s_is_num(&a))
            return sl_errf(ev->err, ev->errlen, "bad operand type for unary %s: '%s'",
                          s_op_text[n->op], sl_expr_type_name(&a));
        if (a.kind == SL_XV_FLOAT)
            s_set_float(out, n->op == OP_NEG ? -a.u.f : a.u.f);
        else if (n->op == OP_POS)
            s_set_int(out, a.u.i);
        else if (a.u.i == INT64_MIN)
            s_set_float(out, -(double) a.u.i);
        else
            s_set_int(out, -a.u.i);
        return 0;
    case N_NOT:
        if (s_eval(ev, n->a, &a, NULL) < 0)
            return -1;
        s_set_bool(out, !sl_expr_truthy(&a));
        return 0;
    case N_AND:
    case N_OR:
        if (s_eval(ev, n->a, &a, NULL) < 0)
            return -1;
        if (sl_expr_truthy(&a) == (n->type == N_OR)) {
            *out = a;
            return 0;
        }
        return s_eval(ev, n->b, out, NULL);
    case N_COND:
        if (s_eval(ev, n->b, &a, NULL) < 0)
            return -1;
        return s_eval(ev, sl_expr_truthy(&a) ? n->a : n->c, out, NULL);
    case N_BIN:
        if (s_eval(ev, n->a, &a, NULL) < 0 || s_eval(ev, n->b, &b, NULL) < 0)
            return -1;
        return s_arith(n->op, &a, &b, scratch, out, ev->err, ev->errlen);
    case N_CMP: {
        if (n->chained) {
            sl_xval_t r;
            if (s_eval(ev, n->a, &r, &a) < 0)
                return -1;
            if (!sl_expr_truthy(&r)) {
                *out = r;
                return 0;
            }
        } else if (s_eval(ev, n->a, &a, NULL) < 0) {
            return -1;
        }
        if (s_eval(ev, n->b, &b, NULL) < 0)
            return -1;
        int res = 0;
        if (s_compare(n->op, &a, &b, &res, ev->err, ev->errlen) < 0)
            return -1;
        s_set_bool(out, res);
        if (last)
            *last = b;
        return 0;
    }
    }
    return sl_errf(ev->err, ev->errlen, "bad expression node");
}

int
sl_expr_eval(const sl_expr_t *e, const sl_expr_env_t *env, sl_xval_t *out, char *err,
             size_t errlen)
{
    if (!e || !env)
        return sl_errf(err, errlen, "no expression");
    s_ev_t ev = { e, env, err, errlen };
    return s_eval(&ev, e->root, out, NULL);
}

const char *
sl_expr_text(const sl_expr_t *e)
{
    return e ? e->text : NULL;
}

/* --- tokeniser and parser ------------------------------------------------- */

typedef enum { T_END, T_NAME, T_NUM, T_STR, T_OP } s_tok_kind_t;

typedef struct {
    sl_expr_t  *e;
    const char *src;
    const char *p;
    s_tok_kind_t kind;
    const char *tok;        /* start of the current token */
    size_t      tok_n;
    sl_xval_t   val;        /* T_NUM, T_STR */
    const char *const *vars;
    size_t      n_vars;
    int         depth;
    char       *err;
    size_t      errlen;
    int         failed;
} s_parser_t;

static int
s_perr(s_parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
s_perr(s_parser_t *ps, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = 1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sl_errf(ps->err, ps->errlen, "syntax error at column %d: %s", (int) (ps->tok - ps->src) + 1,
           msg);
    return -1;
}

static const char *const s_keywords[] = {
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
    "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
    "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
    "try", "while", "with", "yield", NULL,
};

static int
s_is_keyword(const char *p, size_t n)
{
    for (int i = 0; s_keywords[i]; i++)
        if (strlen(s_keywords[i]) == n && memcmp(s_keywords[i], p, n) == 0)
            return 1;
    return 0;
}

static int
s_tok_is(const s_parser_t *ps, s_tok_kind_t kind, const char *text)
{
    return ps->kind == kind && strlen(text) == ps->tok_n && memcmp(ps->tok, text, ps->tok_n) == 0;
}

static int
s_name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static int
s_name_char(unsigned char c)
{
    return s_name_start(c) || (c >= '0' && c <= '9');
}

static int
s_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits with single underscores between them (Python 3.6); appends the
 * digits to buf. Returns the count of digits, or -1 on a misplaced '_'. */
static int
s_scan_digits(const char **pp, char *buf, size_t *bn, size_t cap, int (*ok)(char))
{
    const char *p = *pp;
    int n = 0;
    while (ok(*p) || (*p == '_' && n > 0 && ok(p[1]))) {
        if (*p != '_') {
            if (*bn + 1 < cap)
                buf[(*bn)++] = *p;
            n++;
        }
        p++;
    }
    *pp = p;
    return n;
}

static int
s_hexdigit(char c)
{
    return s_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
s_octdigit(char c)
{
    return c >= '0' && c <= '7';
}

static int
s_bindigit(char c)
{
    return c == '0' || c == '1';
}

static int
s_lex_number(s_parser_t *ps)
{
    const char *p = ps->p;
    char buf[512];
    size_t bn = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X' || p[1] == 'o' || p[1] == 'O' ||
                        p[1] == 'b' || p[1] == 'B')) {
        char k = (char) (p[1] | 0x20);
        int base = k == 'x' ? 16 : k == 'o' ? 8 : 2;
        p += 2;
        if (*p == '_')
            p++;
        int nd = s_scan_digits(&p, buf, &bn, sizeof buf,
                               base == 16 ? s_hexdigit : base == 8 ? s_octdigit : s_bindigit);
        buf[bn] = '\0';
        if (nd <= 0 || s_name_char((unsigned char) *p))
            return s_perr(ps, "invalid number literal");
        errno = 0;
        unsigned long long v = strtoull(buf, NULL, base);
        if (errno || v > INT64_MAX)
            s_set_float(&ps->val, (double) v);
        else
            s_set_int(&ps->val, (int64_t) v);
        ps->p = p;
        return 0;
    }
    int is_float = 0;
    int nd = s_scan_digits(&p, buf, &bn, sizeof buf, s_digit);
    if (*p == '.' && (nd > 0 || s_digit(p[1]))) {
        is_float = 1;
        buf[bn++] = *p++;
        if (s_digit(*p))
            s_scan_digits(&p, buf, &bn, sizeof buf, s_digit);
    }
    if ((*p == 'e' || *p == 'E') &&
        (s_digit(p[1]) || ((p[1] == '+' || p[1] == '-') && s_digit(p[2])))) {
        is_float = 1;
        buf[bn++] = 'e';
        p++;
        if (*p == '+' || *p == '-')
            buf[bn++] = *p++;
        s_scan_digits(&p, buf, &bn, sizeof buf, s_digit);
    }
    buf[bn < sizeof buf ? bn : sizeof buf - 1] = '\0';
    if (*p == 'j' || *p == 'J')
        return s_perr(ps, "complex numbers are not supported");
    if (s_name_char((unsigned char) *p) || *p == '_')
        return s_perr(ps, "invalid number literal");
    if (!is_float) {
        size_t i = 0;
        while (buf[i] == '0')
            i++;
        if (i > 0 && buf[i])
            return s_perr(ps, "leading zeros in decimal integer literals are not permitted");
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno)
            s_set_float(&ps->val, strtod(buf, NULL));
        else
            s_set_int(&ps->val, v);
    } else {
        s_set_float(&ps->val, strtod(buf, NULL));
    }
    ps->p = p;
    return 0;
}

static int
s_lex_string(s_parser_t *ps)
{
    const char *p = ps->p;
    char q = *p++;
    size_t cap = strlen(p) + 1;
    char *o = sl_arena_alloc(&ps->e->arena, cap * 4 + 1);
    size_t n = 0;
    while (*p && *p != q) {
        if (*p == '\n')
            return s_perr(ps, "EOL while scanning string literal");
        if (*p != '\\') {
            o[n++] = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case 'n': o[n++] = '\n'; p++; break;
        case 't': o[n++] = '\t'; p++; break;
        case 'r': o[n++] = '\r'; p++; break;
        case '0': o[n++] = '\0'; p++; break;
        case '\\': case '\'': case '"': o[n++] = *p++; break;
        case 'x': {
            unsigned v = 0;
            for (int i = 1; i <= 2; i++) {
                char c = p[i];
                if (!s_hexdigit(c))
                    return s_perr(ps, "truncated \\xXX escape");
                v = v * 16 + (unsigned) (s_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
            }
            n += s_utf8(v, o + n);
            p += 3;
            break;
        }
        case 'u': {
            unsigned v;
            if (s_hex4(p + 1, &v) < 0)
                return s_perr(ps, "truncated \\uXXXX escape");
            n += s_utf8(v, o + n);
            p += 5;
            break;
        }
        case '\0':
            return s_perr(ps, "EOL while scanning string literal");
        default:
            o[n++] = '\\';
            o[n++] = *p++;
            break;
        }
    }
    if (*p != q)
        return s_perr(ps, "EOL while scanning string literal");
    o[n] = '\0';
    ps->val.kind = SL_XV_STR;
    ps->val.u.s.p = o;
    ps->val.u.s.n = n;
    ps->p = p + 1;
    return 0;
}

static int
s_next(s_parser_t *ps)
{
    const char *p = ps->p;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')
        p++;
    ps->tok = p;
    ps->p = p;
    if (!*p) {
        ps->kind = T_END;
        ps->tok_n = 0;
        return 0;
    }
    unsigned char c = (unsigned char) *p;
    if (s_digit((char) c) || (c == '.' && s_digit(p[1]))) {
        ps->kind = T_NUM;
        if (s_lex_number(ps) < 0)
            return -1;
    } else if (s_name_start(c)) {
        while (s_name_char((unsigned char) *p))
            p++;
        if (*p == '\'' || *p == '"')
            return s_perr(ps, "string prefixes are not supported");
        ps->kind = T_NAME;
        ps->p = p;
    } else if (c == '\'' || c == '"') {
        ps->kind = T_STR;
        if (s_lex_string(ps) < 0)
            return -1;
    } else {
        static const char *const ops[] = {
            "**", "//", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "<", ">", "(", ")",
            ".", "[", "]", NULL,
        };
        ps->kind = T_OP;
        int i;
        for (i = 0; ops[i]; i++)
            if (strncmp(p, ops[i], strlen(ops[i])) == 0)
                break;
        if (!ops[i]) {
            ps->tok_n = 1;
            if (c == ',')
                return s_perr(ps, "tuples are not supported");
            return s_perr(ps, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
        }
        ps->p = p + strlen(ops[i]);
    }
    ps->tok_n = (size_t) (ps->p - ps->tok);
    return 0;
}

static int
s_node(s_parser_t *ps, s_ntype_t type)
{
    sl_expr_t *e = ps->e;
    if (e->n_nodes == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->nodes = sl_xrealloc(e->nodes, e->cap * sizeof *e->nodes);
    }
    s_node_t *n = &e->nodes[e->n_nodes];
    memset(n, 0, sizeof *n);
    n->type = type;
    n->a = n->b = n->c = -1;
    n->slot = -1;
    return (int) e->n_nodes++;
}

/* Folds node idx into a constant if its children are constants. Evaluation
 * errors of constant parts are compile errors (they would fail every time). */
static int
s_fold(s_parser_t *ps, int idx)
{
    s_node_t *n = &ps->e->nodes[idx];
    int kids[3] = { n->a, n->b, n->c };
    if (n->type == N_NAME || n->type == N_CONST)
        return 0;
    for (int i = 0; i < 3; i++)
        if (kids[i] >= 0 && ps->e->nodes[kids[i]].type != N_CONST)
            return 0;
    char msg[200];
    s_ev_t ev = { ps->e, NULL, msg, sizeof msg };
    sl_expr_env_t env = { NULL, NULL, &ps->e->arena };
    ev.env = &env;
    sl_xval_t v;
    if (s_eval(&ev, idx, &v, NULL) < 0) {
        ps->failed = 1;
        return sl_errf(ps->err, ps->errlen, "a constant part always fails: %s", msg);
    }
    n = &ps->e->nodes[idx];
    if (n->type == N_CMP)
        return 0;   /* a chain link must keep its operands */
    n->type = N_CONST;
    n->k = v;
    return 0;
}

static int s_test(s_parser_t *ps);

static int
s_atom(s_parser_t *ps)
{
    int idx;
    if (ps->kind == T_NUM) {
        idx = s_node(ps, N_CONST);
        ps->e->nodes[idx].k = ps->val;
        return s_next(ps) < 0 ? -1 : idx;
    }
    if (ps->kind == T_STR) {
        sl_xval_t v = ps->val;
        if (s_next(ps) < 0)
            return -1;
        while (ps->kind == T_STR) {     /* "a" "b" is "ab" */
            char *o = sl_arena_alloc(&ps->e->arena, v.u.s.n + ps->val.u.s.n + 1);
            memcpy(o, v.u.s.p, v.u.s.n);
            memcpy(o + v.u.s.n, ps->val.u.s.p, ps->val.u.s.n);
            v.u.s.n += ps->val.u.s.n;
            o[v.u.s.n] = '\0';
            v.u.s.p = o;
            if (s_next(ps) < 0)
                return -1;
        }
        idx = s_node(ps, N_CONST);
        ps->e->nodes[idx].k = v;
        return idx;
    }
    if (ps->kind == T_NAME) {
        if (s_tok_is(ps, T_NAME, "True") || s_tok_is(ps, T_NAME, "False") ||
            s_tok_is(ps, T_NAME, "None")) {
            idx = s_node(ps, N_CONST);
            if (ps->tok[0] == 'N')
                ps->e->nodes[idx].k.kind = SL_XV_NONE;
            else
                s_set_bool(&ps->e->nodes[idx].k, ps->tok[0] == 'T');
            return s_next(ps) < 0 ? -1 : idx;
        }
        if (s_is_keyword(ps->tok, ps->tok_n))
            return s_perr(ps, "'%.*s' is not supported here", (int) ps->tok_n, ps->tok);
        if (ps->tok_n >= 2 && ps->tok[0] == '_' && ps->tok[1] == '_')
            return s_perr(ps, "names starting with '__' are not allowed");
        idx = s_node(ps, N_NAME);
        s_node_t *n = &ps->e->nodes[idx];
        if (ps->e->vars_mode) {
            for (size_t i = 0; i < ps->n_vars; i++)
                if (strlen(ps->vars[i]) == ps->tok_n &&
                    memcmp(ps->vars[i], ps->tok, ps->tok_n) == 0) {
                    n->slot = (int) i;
                    break;
                }
        } else {
            n->slot = s_field_id(ps->tok, ps->tok_n);
        }
        return s_next(ps) < 0 ? -1 : idx;
    }
    if (s_tok_is(ps, T_OP, "(")) {
        if (s_next(ps) < 0)
            return -1;
        if (s_tok_is(ps, T_OP, ")"))
            return s_perr(ps, "tuples are not supported");
        int inner = s_test(ps);
        if (inner < 0)
            return -1;
        if (!s_tok_is(ps, T_OP, ")"))
            return s_perr(ps, ps->kind == T_END ? "unexpected end (missing ')')"
                                                : "expected ')'");
        return s_next(ps) < 0 ? -1 : inner;
    }
    if (ps->kind == T_END)
        return s_perr(ps, "unexpected end of expression");
    return s_perr(ps, "unexpected '%.*s'", (int) ps->tok_n, ps->tok);
}

static int
s_primary(s_parser_t *ps)
{
    int idx = s_atom(ps);
    while (idx >= 0) {
        if (s_tok_is(ps, T_OP, ".")) {
            if (s_next(ps) < 0)
                return -1;
            if (ps->kind != T_NAME)
                return s_perr(ps, "expected an attribute name after '.'");
            if (s_is_keyword(ps->tok, ps->tok_n))
                return s_perr(ps, "'%.*s' is a Python keyword and cannot be an attribute",
                              (int) ps->tok_n, ps->tok);
            if (ps->tok_n >= 2 && ps->tok[0] == '_' && ps->tok[1] == '_')
                return s_perr(ps, "names starting with '__' are not allowed");
            int n = s_node(ps, N_ATTR);
            s_node_t *nd = &ps->e->nodes[n];
            nd->a = idx;
            nd->key = sl_arena_strndup(&ps->e->arena, ps->tok, ps->tok_n);
            nd->key_n = ps->tok_n;
            nd->slot = s_field_id(ps->tok, ps->tok_n);
            idx = n;
            if (s_next(ps) < 0)
                return -1;
        } else if (s_tok_is(ps, T_OP, "[")) {
            if (s_next(ps) < 0)
                return -1;
            int sub = s_test(ps);
            if (sub < 0)
                return -1;
            if (!s_tok_is(ps, T_OP, "]"))
                return s_perr(ps, "expected ']'");
            if (s_next(ps) < 0)
                return -1;
            const s_node_t *sn = &ps->e->nodes[sub];
            int n;
            if (sn->type == N_CONST && sn->k.kind == SL_XV_STR) {
                /* s_node() may move the node array: copy the key out first. */
                const char *key = sn->k.u.s.p;
                size_t key_n = sn->k.u.s.n;
                n = s_node(ps, N_ATTR);
                s_node_t *nd = &ps->e->nodes[n];
                nd->key = key;
                nd->key_n = key_n;
                nd->slot = s_field_id(nd->key, nd->key_n);
                nd->a = idx;
            } else {
                n = s_node(ps, N_INDEX);
                ps->e->nodes[n].a = idx;
                ps->e->nodes[n].b = sub;
            }
            idx = n;
        } else if (s_tok_is(ps, T_OP, "(")) {
            return s_perr(ps, "calls are not supported (no function can be called)");
        } else {
            break;
        }
    }
    return idx;
}

static int s_factor(s_parser_t *ps);

static int
s_power(s_parser_t *ps)
{
    int left = s_primary(ps);
    if (left < 0 || !s_tok_is(ps, T_OP, "**"))
        return left;
    if (s_next(ps) < 0)
        return -1;
    if (++ps->depth > S_MAX_DEPTH)
        return s_perr(ps, S_TOO_DEEP, S_MAX_DEPTH);
    int right = s_factor(ps);       /* right-associative; 2 ** -1 is allowed */
    ps->depth--;
    if (right < 0)
        return -1;
    int n = s_node(ps, N_BIN);
    ps->e->nodes[n].op = OP_POW;
    ps->e->nodes[n].a = left;
    ps->e->nodes[n].b = right;
    return s_fold(ps, n) < 0 ? -1 : n;
}

static int
s_factor(s_parser_t *ps)
{
    if (s_tok_is(ps, T_OP, "-") || s_tok_is(ps, T_OP, "+")) {
        s_op_t op = ps->tok[0] == '-' ? OP_NEG : OP_POS;
        if (++ps->depth > S_MAX_DEPTH)
            return s_perr(ps, S_TOO_DEEP, S_MAX_DEPTH);
        if (s_next(ps) < 0)
            return -1;
        int a = s_factor(ps);
        ps->depth--;
        if (a < 0)
            return -1;
        int n = s_node(ps, N_UNARY);
        ps->e->nodes[n].op = op;
        ps->e->nodes[n].a = a;
        return s_fold(ps, n) < 0 ? -1 : n;
    }
    return s_power(ps);
}

static int
s_binary_level(s_parser_t *ps, int level)
{
    /* level 0: + -; level 1: * / // % */
    int left = level == 0 ? s_binary_level(ps, 1) : s_factor(ps);
    while (left >= 0 && ps->kind == T_OP) {
        s_op_t op;
        if (level == 0 && s_tok_is(ps, T_OP, "+"))
            op = OP_ADD;
        else if (level == 0 && s_tok_is(ps, T_OP, "-"))
            op = OP_SUB;
        else if (level == 1 && s_tok_is(ps, T_OP, "*"))
            op = OP_MUL;
        else if (level == 1 && s_tok_is(ps, T_OP, "/"))
            op = OP_DIV;
        else if (level == 1 && s_tok_is(ps, T_OP, "//"))
            op = OP_FLOORDIV;
        else if (level == 1 && s_tok_is(ps, T_OP, "%"))
            op = OP_MOD;
        else
            break;
        if (s_next(ps) < 0)
            return -1;
        int right = level == 0 ? s_binary_level(ps, 1) : s_factor(ps);
        if (right < 0)
            return -1;
        int n = s_node(ps, N_BIN);
        ps->e->nodes[n].op = op;
        ps->e->nodes[n].a = left;
        ps->e->nodes[n].b = right;
        if (s_fold(ps, n) < 0)
            return -1;
        left = n;
    }
    return left;
}

static int
s_comparison(s_parser_t *ps)
{
    int left = s_binary_level(ps, 0);
    int chained = 0;
    while (left >= 0 && ps->kind == T_OP) {
        static const struct {
            const char *t;
            s_op_t op;
        } cmps[] = { { "<", OP_LT }, { "<=", OP_LE }, { ">", OP_GT }, { ">=", OP_GE },
                     { "==", OP_EQ }, { "!=", OP_NE } };
        int i;
        for (i = 0; i < 6; i++)
            if (s_tok_is(ps, T_OP, cmps[i].t))
                break;
        if (i == 6)
            break;
        if (s_next(ps) < 0)
            return -1;
        int right = s_binary_level(ps, 0);
        if (right < 0)
            return -1;
        int n = s_node(ps, N_CMP);
        ps->e->nodes[n].op = cmps[i].op;
        ps->e->nodes[n].a = left;
        ps->e->nodes[n].b = right;
        ps->e->nodes[n].chained = chained;
        if (!chained && s_fold(ps, n) < 0)
            return -1;
        left = n;
        chained = 1;
    }
    if (left >= 0 && (s_tok_is(ps, T_NAME, "in") || s_tok_is(ps, T_NAME, "is")))
        return s_perr(ps, "'%.*s' is not supported", (int) ps->tok_n, ps->tok);
    return left;
}

static int
s_not_test(s_parser_t *ps)
{
    if (s_tok_is(ps, T_NAME, "not")) {
        if (++ps->depth > S_MAX_DEPTH)
            return s_perr(ps, S_TOO_DEEP, S_MAX_DEPTH);
        if (s_next(ps) < 0)
            return -1;
        int a = s_not_test(ps);
        ps->depth--;
        if (a < 0)
            return -1;
        int n = s_node(ps, N_NOT);
        ps->e->nodes[n].a = a;
        return s_fold(ps, n) < 0 ? -1 : n;
    }
    return s_comparison(ps);
}

static int
s_bool_level(s_parser_t *ps, int is_or)
{
    int left = is_or ? s_bool_level(ps, 0) : s_not_test(ps);
    while (left >= 0 && s_tok_is(ps, T_NAME, is_or ? "or" : "and")) {
        if (s_next(ps) < 0)
            return -1;
        int right = is_or ? s_bool_level(ps, 0) : s_not_test(ps);
        if (right < 0)
            return -1;
        int n = s_node(ps, is_or ? N_OR : N_AND);
        ps->e->nodes[n].a = left;
        ps->e->nodes[n].b = right;
        if (s_fold(ps, n) < 0)
            return -1;
        left = n;
    }
    return left;
}

static int
s_test(s_parser_t *ps)
{
    if (++ps->depth > S_MAX_DEPTH)
        return s_perr(ps, S_TOO_DEEP, S_MAX_DEPTH);
    if (s_tok_is(ps, T_NAME, "lambda"))
        return s_perr(ps, "lambda is not supported");
    int body = s_bool_level(ps, 1);
    if (body >= 0 && s_tok_is(ps, T_NAME, "if")) {
        if (s_next(ps) < 0)
            return -1;
        int cond = s_bool_level(ps, 1);
        if (cond < 0)
            return -1;
        if (!s_tok_is(ps, T_NAME, "else"))
            return s_perr(ps, "expected 'else'");
        if (s_next(ps) < 0)
            return -1;
        int alt = s_test(ps);
        if (alt < 0)
            return -1;
        int n = s_node(ps, N_COND);
        ps->e->nodes[n].a = body;
        ps->e->nodes[n].b = cond;
        ps->e->nodes[n].c = alt;
        if (s_fold(ps, n) < 0)
            return -1;
        body = n;
    }
    ps->depth--;
    return body;
}

/* Height of the tree under root: chains the parser builds in a loop
 * (`a + b + ...`, `a.b.c...`, `a < b < ...`) nest without recursing in the
 * parser, but evaluation recurses once per level. Children are created
 * before their parents, so one pass in index order is enough. */
static int
s_height(const sl_expr_t *e)
{
    int *h = sl_xcalloc(e->n_nodes + 1, sizeof *h);
    for (size_t i = 0; i < e->n_nodes; i++) {
        const s_node_t *n = &e->nodes[i];
        int kids[3] = { n->a, n->b, n->c }, m = 0;
        for (int k = 0; k < 3 && n->type != N_CONST; k++)
            if (kids[k] >= 0 && (size_t) kids[k] < i && h[kids[k]] > m)
                m = h[kids[k]];
        h[i] = m + 1;
    }
    int root = e->root >= 0 ? h[e->root] : 0;
    free(h);
    return root;
}

sl_expr_t *
sl_expr_compile(const char *text, const char *const *vars, size_t n_vars, char *err,
                size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!text) {
        sl_errf(err, errlen, "no expression");
        return NULL;
    }
    sl_expr_t *e = sl_xcalloc(1, sizeof *e);
    sl_arena_init(&e->arena, 1024);
    e->text = sl_xstrdup(text);
    e->vars_mode = vars != NULL;
    s_parser_t ps = { .e = e, .src = e->text, .p = e->text, .vars = vars, .n_vars = n_vars,
                      .err = err, .errlen = errlen };
    if (strlen(text) > SL_EXPR_MAX_TEXT) {
        sl_errf(err, errlen, "expression longer than %d KiB (the limit): shorten it",
                SL_EXPR_MAX_TEXT / 1024);
        sl_expr_destroy(&e);
        return NULL;
    }
    if (s_next(&ps) == 0) {
        e->root = s_test(&ps);
        if (e->root >= 0 && ps.kind != T_END)
            s_perr(&ps, "unexpected '%.*s'", (int) ps.tok_n, ps.tok);
    }
    if (ps.failed || e->root < 0) {
        if (err && errlen && !err[0])
            sl_errf(err, errlen, "syntax error");
        sl_expr_destroy(&e);
        return NULL;
    }
    if (s_height(e) > S_MAX_DEPTH) {
        sl_errf(err, errlen, S_TOO_DEEP, S_MAX_DEPTH);
        sl_expr_destroy(&e);
        return NULL;
    }
    return e;
}

void
sl_expr_destroy(sl_expr_t **e_p)
{
    if (!e_p || !*e_p)
        return;
    sl_expr_t *e = *e_p;
    free(e->nodes);
    free(e->text);
    sl_arena_destroy(&e->arena);
    free(e);
    *e_p = NULL;
}

/* --- arithmetic's $(meter) ------------------------------------------------ */

static int
s_meter_char(unsigned char c)
{
    return s_name_char(c) || c == '.' || c == '-';
}

static char *
s_escape_meter(const char *name, size_t n)
{
    char *id = sl_xmalloc(n + 6);
    int has_dot = memchr(name, '.', n) != NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        id[j++] = name[i] == '.' ? '_' : name[i];
    id[j] = '\0';
    int esc_end = j >= 3 && strcmp(id + j - 3, "ESC") == 0;
    if (has_dot || esc_end || s_is_keyword(id, j)) {
        memmove(id + 1, id, j);
        id[0] = '_';
        memcpy(id + j + 1, "_ESC", 5);
    }
    return id;
}

void
sl_expr_meters_prepare(const char *text, sl_expr_meters_t *out)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(text), cap = len * 2 + 64, o = 0;
    char *buf = sl_xmalloc(cap);
    for (size_t i = 0; i < len;) {
        if (text[i] == '$' && text[i + 1] == '(') {
            size_t j = i + 2;
            while (j < len && s_meter_char((unsigned char) text[j]))
                j++;
            if (j > i + 2 && j < len && text[j] == ')') {
                size_t n = j - (i + 2);
                const char *name = text + i + 2;
                size_t k;
                for (k = 0; k < out->n; k++)
                    if (strlen(out->meters[k]) == n && memcmp(out->meters[k], name, n) == 0)
                        break;
                if (k == out->n) {
                    out->meters = sl_xrealloc(out->meters, (out->n + 1) * sizeof *out->meters);
                    out->idents = sl_xrealloc(out->idents, (out->n + 1) * sizeof *out->idents);
                    out->meters[k] = sl_xmalloc(n + 1);
                    memcpy(out->meters[k], name, n);
                    out->meters[k][n] = '\0';
                    out->idents[k] = s_escape_meter(name, n);
                    out->n++;
                }
                const char *id = out->idents[k];
                size_t idn = strlen(id);
                int dotted = j + 1 < len && text[j + 1] == '.';
                if (o + idn + 8 >= cap) {
                    cap = (o + idn + 8) * 2;
                    buf = sl_xrealloc(buf, cap);
                }
                memcpy(buf + o, id, idn);
                o += idn;
                if (!dotted) {
                    memcpy(buf + o, ".volume", 7);
                    o += 7;
                }
                i = j + 1;
                continue;
            }
        }
        if (o + 2 >= cap) {
            cap *= 2;
            buf = sl_xrealloc(buf, cap);
        }
        buf[o++] = text[i++];
    }
    buf[o] = '\0';
    out->expr = buf;
}

void
sl_expr_meters_free(sl_expr_meters_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->meters[i]);
        free(m->idents[i]);
    }
    free(m->meters);
    free(m->idents);
    free(m->expr);
    memset(m, 0, sizeof *m);
}
