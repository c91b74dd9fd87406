#include "common/jsonpath.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/json.h"

/* One step of a path; each maps to a node of jsonpath-rw's tree. New kinds
 * (filters, unions, descendants, functions) slot in here. */
typedef enum {
    S_FIELDS,       /* Fields(a, b, ...): named members of an object */
    S_ALL_FIELDS,   /* Fields('*'): every member value of an object */
    S_INDEX,        /* Index(n) */
    S_SLICE_ALL,    /* Slice() written [*] */
} s_kind_t;

typedef struct {
    s_kind_t  kind;
    size_t    n_keys;
    char    **keys;
    long long index;
} s_step_t;

struct sl_jsonpath {
    char     *text;
    size_t    n_steps, cap_steps;
    s_step_t *steps;
};

/* ---- lexer: jsonpath-rw-ext's ExtendedJsonPathLexer, rule for rule ---- */

typedef enum {
    T_END, T_ID, T_NUMBER, T_DOLLAR, T_DOT, T_LBRACK, T_RBRACK, T_STAR, T_COMMA,
    T_UNSUPPORTED,  /* valid in jsonpath-rw-ext, not implemented here */
    T_ERROR,        /* jsonpath-rw-ext's lexer rejects it too */
} s_tok_t;

typedef struct {
    const char *src, *p;
    s_tok_t     tok;
    const char *start;          /* where the token starts */
    char       *id;             /* T_ID: the name (malloc'd) */
    long long   number;         /* T_NUMBER */
    const char *what;           /* T_UNSUPPORTED / T_ERROR: description */
    char       *err;
    size_t      errlen;
} s_lex_t;

static int
s_is_pyspace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
           (c >= 0x1c && c <= 0x1f);
}

static int
s_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void
s_lex_next(s_lex_t *lx)
{
    free(lx->id);
    lx->id = NULL;
    const char *p = lx->p;
    for (;;) {
        /* t_ignore is space and tab; a newline is a token of its own that
         * is dropped, unless SORT_DIRECTION (`,?\s*[/\\]`, tried first)
         * claims it. */
        while (*p == ' ' || *p == '\t')
            p++;
        if (s_is_pyspace(*p)) {
            const char *q = p;
            while (s_is_pyspace(*q))
                q++;
            if (*q == '/' || *q == '\\') {
                lx->start = p;
                lx->p = q + 1;
                lx->tok = T_UNSUPPORTED;
                lx->what = "sorting (`/`, `\\`)";
                return;
            }
            if (*p == '\n') {
                p++;
                continue;
            }
            lx->start = p;
            lx->p = p + 1;
            lx->tok = T_ERROR;
            lx->what = "unexpected whitespace character";
            return;
        }
        break;
    }
    lx->start = p;
    if (!*p) {
        lx->p = p;
        lx->tok = T_END;
        return;
    }
    /* t_BOOL comes before t_ID: `true_size` lexes as BOOL + ID. */
    if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
        lx->p = p + (*p == 't' ? 4 : 5);
        lx->tok = T_UNSUPPORTED;
        lx->what = "a name starting with `true` or `false` (jsonpath-rw-ext reads a "
                   "boolean there; quote the name)";
        return;
    }
    if (*p == ',' || *p == '/' || *p == '\\') {
        const char *q = p + (*p == ',');
        while (s_is_pyspace(*q))
            q++;
        if (*q == '/' || *q == '\\') {
            lx->p = q + 1;
            lx->tok = T_UNSUPPORTED;
            lx->what = "sorting (`/`, `\\`)";
            return;
        }
    }
    if (s_is_alpha(*p) || (*p == '@' && s_is_alpha(p[1]))) {
        const char *q = p + 1;
        while (s_is_alpha(*q) || s_is_digit(*q) || *q == '@' || *q == '-')
            q++;
        lx->p = q;
        if (q - p == 5 && strncmp(p, "where", 5) == 0) {
            lx->tok = T_UNSUPPORTED;
            lx->what = "`where`";
            return;
        }
        lx->id = strndup(p, (size_t) (q - p));
        if (!lx->id)
            abort();
        lx->tok = T_ID;
        return;
    }
    if (s_is_digit(*p) || (*p == '-' && s_is_digit(p[1]))) {
        const char *q = p + (*p == '-');
        while (s_is_digit(*q))
            q++;
        if (*q == '.' && s_is_digit(q[1])) {
            lx->p = q + 1;
            while (s_is_digit(*lx->p))
                lx->p++;
            lx->tok = T_UNSUPPORTED;
            lx->what = "a decimal number";
            return;
        }
        lx->p = q;
        errno = 0;
        long long v = strtoll(p, NULL, 10);
        /* Python ints do not overflow; a saturated index behaves the same
         * (never matches forwards, always raises backwards). */
        if (errno == ERANGE)
            v = *p == '-' ? LLONG_MIN : LLONG_MAX;
        lx->number = v;
        lx->tok = T_NUMBER;
        return;
    }
    if (*p == '\'' || *p == '"') {
        char quote = *p;
        size_t cap = strlen(p) + 1, n = 0;
        char *s = malloc(cap);
        if (!s)
            abort();
        const char *q = p + 1;
        for (;;) {
            if (!*q) {
                free(s);
                lx->p = q;
                lx->tok = T_ERROR;
                lx->what = "unterminated quoted name";
                return;
            }
            if (*q == quote)
                break;
            if (*q == '\\') {
                if (!q[1] || q[1] == '\n') {
                    free(s);
                    lx->p = q;
                    lx->tok = T_ERROR;
                    lx->what = "bad escape in quoted name";
                    return;
                }
                q++;
            }
            s[n++] = *q++;
        }
        s[n] = '\0';
        lx->p = q + 1;
        lx->id = s;
        lx->tok = T_ID;
        return;
    }
    lx->p = p + 1;
    switch (*p) {
    case '$': lx->tok = T_DOLLAR; return;
    case '[': lx->tok = T_LBRACK; return;
    case ']': lx->tok = T_RBRACK; return;
    case '*': lx->tok = T_STAR; return;
    case ',': lx->tok = T_COMMA; return;
    case '.':
        if (p[1] == '.') {
            lx->p = p + 2;
            lx->tok = T_UNSUPPORTED;
            lx->what = "descendants (`..`)";
            return;
        }
        lx->tok = T_DOT;
        return;
    case '`': lx->tok = T_UNSUPPORTED; lx->what = "functions (`...`)"; return;
    case '|': lx->tok = T_UNSUPPORTED; lx->what = "unions (`|`)"; return;
    case '&': lx->tok = T_UNSUPPORTED; lx->what = "intersections (`&`)"; return;
    case '?': lx->tok = T_UNSUPPORTED; lx->what = "filters (`[?...]`)"; return;
    case ':': lx->tok = T_UNSUPPORTED; lx->what = "slices (`[a:b]`)"; return;
    case '(': case ')': lx->tok = T_UNSUPPORTED; lx->what = "parentheses"; return;
    case '@': lx->tok = T_UNSUPPORTED; lx->what = "`@` (the current node)"; return;
    case '+': case '-': lx->tok = T_UNSUPPORTED; lx->what = "arithmetic (`+ - * /`)"; return;
    case '=': case '<': case '>': case '!': case '~':
        lx->tok = T_UNSUPPORTED;
        lx->what = "comparisons (only valid in filters)";
        return;
    default:
        lx->tok = T_ERROR;
        lx->what = "unexpected character";
        return;
    }
}

/* ---- parser ------------------------------------------------------------ */

static s_step_t *
s_add_step(sl_jsonpath_t *p, s_kind_t kind)
{
    if (p->n_steps == p->cap_steps) {
        p->cap_steps = p->cap_steps ? p->cap_steps * 2 : 8;
        p->steps = sl_xrealloc(p->steps, p->cap_steps * sizeof *p->steps);
    }
    s_step_t *s = &p->steps[p->n_steps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

static int
s_error(s_lex_t *lx, const char *fmt, ...)
{
    if (!lx->err || !lx->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lx->err, lx->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* An error at the current token, worded by what it is. */
static int
s_unexpected(s_lex_t *lx, const char *expected)
{
    int col = (int) (lx->start - lx->src);
    if (lx->tok == T_UNSUPPORTED)
        return s_error(lx, "JSONPath '%s': %s not supported yet (column %d)",
                       lx->src, lx->what, col + 1);
    if (lx->tok == T_ERROR)
        return s_error(lx, "JSONPath '%s': %s at column %d", lx->src, lx->what, col + 1);
    if (lx->tok == T_END)
        return s_error(lx, "JSONPath '%s': unexpected end, expected %s", lx->src, expected);
    if (lx->tok == T_STAR && strcmp(expected, "`.`, `[` or the end") == 0)
        return s_error(lx, "JSONPath '%s': arithmetic (`+ - * /`) not supported yet "
                       "(column %d)", lx->src, col + 1);
    return s_error(lx, "JSONPath '%s': unexpected '%.*s' at column %d, expected %s", lx->src,
                   (int) (lx->p - lx->start > 0 ? lx->p - lx->start : 1), lx->start,
                   col + 1, expected);
}

/* fields : ID (',' ID)* ; a name `*` among them means every member. */
static int
s_parse_fields(s_lex_t *lx, sl_jsonpath_t *p)
{
    s_step_t *s = s_add_step(p, S_FIELDS);
    for (;;) {
        if (lx->tok != T_ID)
            return s_unexpected(lx, "a name");
        s->keys = sl_xrealloc(s->keys, (s->n_keys + 1) * sizeof *s->keys);
        s->keys[s->n_keys++] = lx->id;
        if (strcmp(lx->id, "*") == 0)
            s->kind = S_ALL_FIELDS;
        lx->id = NULL;
        s_lex_next(lx);
        if (lx->tok != T_COMMA)
            return 0;
        s_lex_next(lx);
    }
}

/* '[' (NUMBER | '*' | fields) ']' */
static int
s_parse_bracket(s_lex_t *lx, sl_jsonpath_t *p)
{
    s_lex_next(lx);
    if (lx->tok == T_NUMBER) {
        s_add_step(p, S_INDEX)->index = lx->number;
        s_lex_next(lx);
    } else if (lx->tok == T_STAR) {
        s_add_step(p, S_SLICE_ALL);
        s_lex_next(lx);
    } else if (lx->tok == T_ID) {
        if (s_parse_fields(lx, p) < 0)
            return -1;
    } else {
        return s_unexpected(lx, "an index, `*` or a name");
    }
    if (lx->tok != T_RBRACK)
        return s_unexpected(lx, "`]`");
    s_lex_next(lx);
    return 0;
}

/* After `.`: '*' | fields | bracket */
static int
s_parse_member(s_lex_t *lx, sl_jsonpath_t *p)
{
    if (lx->tok == T_STAR) {
        s_add_step(p, S_ALL_FIELDS);
        s_lex_next(lx);
        return 0;
    }
    if (lx->tok == T_LBRACK)
        return s_parse_bracket(lx, p);
    return s_parse_fields(lx, p);
}

static void
s_free_steps(sl_jsonpath_t *p)
{
    for (size_t i = 0; i < p->n_steps; i++) {
        for (size_t k = 0; k < p->steps[i].n_keys; k++)
            free(p->steps[i].keys[k]);
        free(p->steps[i].keys);
    }
    free(p->steps);
    p->steps = NULL;
    p->n_steps = p->cap_steps = 0;
}

sl_jsonpath_t *
sl_jsonpath_compile(const char *expr, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!expr) {
        if (err && errlen)
            snprintf(err, errlen, "JSONPath is missing");
        return NULL;
    }
    sl_jsonpath_t *p = sl_xcalloc(1, sizeof *p);
    p->text = sl_xstrdup(expr);
    s_lex_t lx = { .src = expr, .p = expr, .err = err, .errlen = errlen };
    s_lex_next(&lx);
    int rc = 0;
    if (lx.tok == T_DOLLAR) {
        /* Root: the document itself; no step. */
        s_lex_next(&lx);
    } else if (lx.tok == T_LBRACK) {
        rc = s_parse_bracket(&lx, p);
    } else if (lx.tok == T_STAR || lx.tok == T_ID) {
        rc = s_parse_member(&lx, p);
    } else {
        rc = s_unexpected(&lx, "`$` or a name");
    }
    while (rc == 0 && lx.tok != T_END) {
        if (lx.tok == T_DOT) {
            s_lex_next(&lx);
            rc = s_parse_member(&lx, p);
        } else if (lx.tok == T_LBRACK) {
            rc = s_parse_bracket(&lx, p);
        } else {
            rc = s_unexpected(&lx, "`.`, `[` or the end");
        }
    }
    free(lx.id);
    if (rc < 0) {
        sl_jsonpath_destroy(&p);
        return NULL;
    }
    return p;
}

void
sl_jsonpath_destroy(sl_jsonpath_t **path_p)
{
    if (!path_p || !*path_p)
        return;
    sl_jsonpath_t *p = *path_p;
    s_free_steps(p);
    free(p->text);
    free(p);
    *path_p = NULL;
}

const char *
sl_jsonpath_text(const sl_jsonpath_t *path)
{
    return path ? path->text : NULL;
}

size_t
sl_jsonpath_nsteps(const sl_jsonpath_t *path)
{
    return path ? path->n_steps : 0;
}

const char *
sl_jsonpath_step_key(const sl_jsonpath_t *path, size_t i)
{
    if (!path || i >= path->n_steps)
        return NULL;
    const s_step_t *s = &path->steps[i];
    return s->kind == S_FIELDS && s->n_keys == 1 ? s->keys[0] : NULL;
}

int
sl_jsonpath_replace_head(sl_jsonpath_t *path, size_t n, const char *key)
{
    if (!path || n == 0 || n > path->n_steps || !key)
        return -1;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < path->steps[i].n_keys; k++)
            free(path->steps[i].keys[k]);
        free(path->steps[i].keys);
    }
    memmove(path->steps + 1, path->steps + n, (path->n_steps - n) * sizeof *path->steps);
    path->n_steps -= n - 1;
    s_step_t *s = &path->steps[0];
    memset(s, 0, sizeof *s);
    s->kind = S_FIELDS;
    s->n_keys = 1;
    s->keys = sl_xmalloc(sizeof *s->keys);
    s->keys[0] = sl_xstrdup(key);
    return 0;
}

/* ---- evaluation -------------------------------------------------------- */

typedef struct {
    const sl_jsonpath_t *p;
    sl_arena_t          *a;
    sl_jsonpath_visit_fn fn;
    void                *ud;
    int                  strict;    /* stop with -1 where Python raises */
} s_walk_t;

static size_t
s_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char) *s & 0xc0) != 0x80;
    return n;
}

/* Byte offset and length of code point i of s (i < its length). */
static const char *
s_utf8_at(const char *s, size_t i, size_t *len)
{
    for (; *s; s++)
        if (((unsigned char) *s & 0xc0) != 0x80 && i-- == 0)
            break;
    const char *e = s + 1;
    while (*e && ((unsigned char) *e & 0xc0) == 0x80)
        e++;
    *len = (size_t) (e - s);
    return s;
}

static int s_walk(s_walk_t *w, size_t i, yajl_val v);

static int
s_raise(s_walk_t *w)
{
    return w->strict ? -1 : 0;
}

/* jsonpath-rw's Index.find: `if len(v) > n: [v[n]]` */
static int
s_walk_index(s_walk_t *w, size_t i, yajl_val v, long long n)
{
    size_t len;
    switch (v->type) {
    case yajl_t_array:
        len = v->u.array.len;
        break;
    case yajl_t_string:
        len = s_utf8_len(v->u.string);
        break;
    case yajl_t_object:
        /* dict[n] with an int n: KeyError, unless len(dict) <= n. */
        if (n >= 0 && (unsigned long long) n >= v->u.object.len)
            return 0;
        return s_raise(w);
    default:
        return s_raise(w);     /* len() of a number, bool or None */
    }
    if (n >= 0 && (unsigned long long) n >= len)
        return 0;
    if (n < 0 && (unsigned long long) -(n + 1) >= len)
        return s_raise(w);      /* IndexError */
    size_t idx = n >= 0 ? (size_t) n : len - (size_t) -(n + 1) - 1;
    if (v->type == yajl_t_array)
        return s_walk(w, i + 1, v->u.array.values[idx]);
    if (!w->a)
        return 0;
    size_t clen;
    const char *c = s_utf8_at(v->u.string, idx, &clen);
    return s_walk(w, i + 1, sl_json_new_string(w->a, c, clen));
}

static int
s_walk(s_walk_t *w, size_t i, yajl_val v)
{
    if (i == w->p->n_steps)
        return w->fn(v, w->ud) ? 1 : 0;
    const s_step_t *s = &w->p->steps[i];
    int rc;
    switch (s->kind) {
    case S_FIELDS:
        if (v->type != yajl_t_object)
            return 0;
        for (size_t k = 0; k < s->n_keys; k++) {
            yajl_val c = sl_json_get(v, s->keys[k]);
            if (c && (rc = s_walk(w, i + 1, c)) != 0)
                return rc;
        }
        return 0;
    case S_ALL_FIELDS:
        if (v->type != yajl_t_object)
            return 0;
        for (size_t k = 0; k < v->u.object.len; k++)
            if ((rc = s_walk(w, i + 1, v->u.object.values[k])) != 0)
                return rc;
        return 0;
    case S_SLICE_ALL:
        if (v->type == yajl_t_array) {
            for (size_t k = 0; k < v->u.array.len; k++)
                if ((rc = s_walk(w, i + 1, v->u.array.values[k])) != 0)
                    return rc;
            return 0;
        }
        /* Slice wraps a dict, an int (bool too) or a str in a list; a
         * float or None reaches len() and raises. */
        if (v->type == yajl_t_null ||
            (v->type == yajl_t_number && v->u.number.r && strpbrk(v->u.number.r, ".eE")))
            return s_raise(w);
        return s_walk(w, i + 1, v);
    case S_INDEX:
        return s_walk_index(w, i, v, s->index);
    }
    return 0;
}

int
sl_jsonpath_walk(const sl_jsonpath_t *path, yajl_val root, sl_arena_t *a,
                 sl_jsonpath_visit_fn fn, void *ud)
{
    if (!path || !root)
        return 0;
    s_walk_t w = { .p = path, .a = a, .fn = fn, .ud = ud, .strict = 1 };
    return s_walk(&w, 0, root) < 0 ? -1 : 0;
}

typedef struct {
    yajl_val *out;
    size_t    max, n;
} s_collect_t;

static int
s_collect(yajl_val v, void *ud)
{
    s_collect_t *c = ud;
    if (c->n < c->max)
        c->out[c->n] = v;
    c->n++;
    return 0;
}

static int
s_take_first(yajl_val v, void *ud)
{
    *(yajl_val *) ud = v;
    return 1;
}

size_t
sl_jsonpath_eval(const sl_jsonpath_t *path, yajl_val root, yajl_val *out, size_t max)
{
    if (!path || !root)
        return 0;
    s_collect_t c = { .out = out, .max = out ? max : 0 };
    s_walk_t w = { .p = path, .fn = s_collect, .ud = &c };
    s_walk(&w, 0, root);
    return c.n;
}

yajl_val
sl_jsonpath_first(const sl_jsonpath_t *path, yajl_val root)
{
    if (!path || !root)
        return NULL;
    yajl_val first = NULL;
    s_walk_t w = { .p = path, .fn = s_take_first, .ud = &first };
    s_walk(&w, 0, root);
    return first;
}
