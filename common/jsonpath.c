#include "common/jsonpath.h"

#include "common/log.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/json.h"
#include "common/jsonpath_lalr.h"
#include "common/pycompat.h"

/* Each node is one class of jsonpath-rw / jsonpath-rw-ext, and evaluation
 * mirrors its find(): lists of matches, computed whole, so that a raise
 * anywhere loses everything as in Python. */

typedef enum {
    N_ROOT, N_THIS, N_PARENT, N_FIELDS, N_INDEX, N_SLICE, N_CHILD, N_DESCENDANTS, N_WHERE,
    N_UNION, N_INTERSECT, N_FILTER, N_OPERATION, N_LEN, N_SORTED, N_SPLIT, N_SUB,
} s_kind_t;

typedef struct s_node s_node_t;

/* An Operation operand: a JSONPath, or a Python constant (str, int, float). */
typedef struct {
    s_node_t *path;
    yajl_val  constant;
} s_operand_t;

/* _filter.Expression: target [op value]. */
typedef enum { C_NONE, C_STR, C_INT, C_FLOAT } s_ckind_t;
typedef struct {
    s_node_t   *target;
    char        op[3];          /* "" when there is no comparison */
    s_ckind_t   ckind;          /* C_INT also for true/false (bool is an int) */
    yajl_val    value;
    pcre2_code *re;             /* `~` with a string: re.match(value, x) */
} s_expr_t;

typedef struct {
    s_node_t *field;
    int       reverse;          /* `\field` */
} s_sort_t;

struct s_node {
    s_kind_t    kind;
    int         height;         /* levels of nodes below and including this one */
    s_node_t   *left, *right;
    /* N_FIELDS */
    size_t      n_fields;
    char      **fields;
    int         all_fields;
    /* N_INDEX */
    long long   index;
    /* N_SLICE */
    int         has_start, has_end;
    long long   start, end;
    /* N_FILTER */
    size_t      n_exprs;
    s_expr_t  **exprs;
    /* N_OPERATION */
    char        op;
    s_operand_t a, b;
    /* N_SORTED */
    size_t      n_sorts;
    s_sort_t   *sorts;
    /* N_SPLIT */
    char       *split_char;
    long long   segment, max_split;
    /* N_SUB */
    pcre2_code *re;
    char       *repl;
};

struct sl_jsonpath {
    char       *text;
    s_node_t   *root;
    size_t      n_regex;
    pcre2_code **regex;         /* owned patterns, freed with the path */
    sl_arena_t  mem;            /* nodes and strings */
    /* A plain chain of single names (`$.a.b`, `a.b`): evaluated directly. */
    int         simple, simple_rooted;
    size_t      n_simple;
    const char **simple_names;
};

/* ---- lexer: jsonpath-rw-ext's ExtendedJsonPathLexer, rule for rule ----- */

/* PLY tries, in this order: BOOL `true|false`, SORT_DIRECTION
 * `,?\s*(/|\\)`, ID `@?[a-zA-Z_][a-zA-Z0-9_@\-]*` (`where` is WHERE),
 * FLOAT `-?\d+\.\d+`, NUMBER `-?\d+`, quotes, backquotes, a newline
 * (dropped), FILTER_OP `==?|<=|>=|!=|<|>|~`, DOUBLEDOT, then the literal
 * characters; spaces and tabs are ignored. */

typedef struct {
    int         tok;            /* T_* */
    char       *str;            /* ID, NAMED_OPERATOR, FILTER_OP text */
    long long   i;              /* NUMBER (saturated) */
    const char *num;            /* NUMBER as Python's int() writes it */
    double      d;              /* FLOAT */
    int         b;              /* BOOL */
    char        c;              /* literal, SORT_DIRECTION */
} s_token_t;

typedef struct {
    const char *src, *p;
    const char *shown;          /* src for messages, shortened if long */
    sl_arena_t *mem;
    char       *err;
    size_t      errlen;
} s_lex_t;

static int
s_pyspace(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int
s_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
s_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The contents of a quoted string or backquoted operator starting after
 * the opening quote; escapes `\x` give x (a backslash before a newline or
 * at the end is an error). */
static int
s_lex_quoted(s_lex_t *lx, char quote, char **out)
{
    const char *q = lx->p;
    size_t n = 0;
    char *s = sl_arena_alloc(lx->mem, strlen(q) + 1);
    for (;;) {
        if (!*q)
            return sl_errf(lx->err, lx->errlen, "JSONPath '%s': unexpected end in a quoted "
                          "name or operator", lx->shown);
        if (*q == quote)
            break;
        if (*q == '\\') {
            if (!q[1] || q[1] == '\n')
                return sl_errf(lx->err, lx->errlen, "JSONPath '%s': bad escape at column %d",
                              lx->shown, (int) (q - lx->src) + 1);
            q++;
        }
        s[n++] = *q++;
    }
    s[n] = '\0';
    lx->p = q + 1;
    *out = s;
    return 0;
}

/* 0 with the next token in t, or -1 (a lexer error, message in err). */
static int
s_lex(s_lex_t *lx, s_token_t *t)
{
    memset(t, 0, sizeof *t);
    for (;;) {
        while (*lx->p == ' ' || *lx->p == '\t')
            lx->p++;
        const char *p = lx->p;
        if (!*p) {
            t->tok = T_END;
            return 0;
        }
        if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
            t->tok = T_BOOL;
            t->b = *p == 't';
            lx->p = p + (*p == 't' ? 4 : 5);
            return 0;
        }
        {   /* SORT_DIRECTION */
            const char *q = p + (*p == ',');
            while (s_pyspace((unsigned char) *q))
                q++;
            if (*q == '/' || *q == '\\') {
                t->tok = T_SORT_DIRECTION;
                t->c = *q;
                lx->p = q + 1;
                return 0;
            }
        }
        if (s_alpha(*p) || (*p == '@' && s_alpha(p[1]))) {
            const char *q = p + 1;
            while (s_alpha(*q) || s_digit(*q) || *q == '@' || *q == '-')
                q++;
            lx->p = q;
            if (q - p == 5 && strncmp(p, "where", 5) == 0) {
                t->tok = T_WHERE;
                return 0;
            }
            t->tok = T_ID;
            t->str = sl_arena_strndup(lx->mem, p, (size_t) (q - p));
            return 0;
        }
        if (s_digit(*p) || (*p == '-' && s_digit(p[1]))) {
            const char *q = p + (*p == '-');
            while (s_digit(*q))
                q++;
            if (*q == '.' && s_digit(q[1])) {
                q++;
                while (s_digit(*q))
                    q++;
                char *txt = sl_arena_strndup(lx->mem, p, (size_t) (q - p));
                t->tok = T_FLOAT;
                t->d = strtod(txt, NULL);
                lx->p = q;
                return 0;
            }
            char *txt = sl_arena_strndup(lx->mem, p, (size_t) (q - p));
            errno = 0;
            long long v = strtoll(txt, NULL, 10);
            /* Python ints do not overflow; a saturated index behaves the
             * same (never matches forwards, always raises backwards). */
            if (errno == ERANGE)
                v = *p == '-' ? LLONG_MIN : LLONG_MAX;
            t->tok = T_NUMBER;
            t->i = v;
            t->num = sl_py_int_str(lx->mem, txt);
            lx->p = q;
            return 0;
        }
        if (*p == '\'' || *p == '"' || *p == '`') {
            lx->p = p + 1;
            if (s_lex_quoted(lx, *p, &t->str) < 0)
                return -1;
            t->tok = *p == '`' ? T_NAMED_OPERATOR : T_ID;
            return 0;
        }
        if (*p == '\n') {
            lx->p = p + 1;
            continue;
        }
        if ((p[0] == '=' && p[1] == '=') || (p[0] == '<' && p[1] == '=') ||
            (p[0] == '>' && p[1] == '=') || (p[0] == '!' && p[1] == '=')) {
            t->tok = T_FILTER_OP;
            t->str = sl_arena_strndup(lx->mem, p, 2);
            lx->p = p + 2;
            return 0;
        }
        if (*p == '=' || *p == '<' || *p == '>' || *p == '~') {
            t->tok = T_FILTER_OP;
            t->str = sl_arena_strndup(lx->mem, p, 1);
            lx->p = p + 1;
            return 0;
        }
        if (p[0] == '.' && p[1] == '.') {
            t->tok = T_DOUBLEDOT;
            lx->p = p + 2;
            return 0;
        }
        static const struct { char c; int tok; } lit[] = {
            { '*', T_STAR }, { '.', T_DOT }, { '[', T_LBRACK }, { ']', T_RBRACK },
            { '(', T_LPAREN }, { ')', T_RPAREN }, { '$', T_DOLLAR }, { ',', T_COMMA },
            { ':', T_COLON }, { '|', T_PIPE }, { '&', T_AMP }, { '?', T_QUESTION },
            { '@', T_AT }, { '+', T_PLUS }, { '/', T_SLASH }, { '-', T_MINUS },
        };
        for (size_t i = 0; i < sizeof lit / sizeof lit[0]; i++) {
            if (*p == lit[i].c) {
                t->tok = lit[i].tok;
                t->c = *p;
                lx->p = p + 1;
                return 0;
            }
        }
        return sl_errf(lx->err, lx->errlen, "JSONPath '%s': unexpected character '%c' at "
                      "column %d", lx->shown, *p, (int) (p - lx->src) + 1);
    }
}

/* ---- parser: PLY's LR driver over the generated tables ----------------- */

/* The driver keeps its stack on the heap and never recurses. Tokens
 * waiting on it are bounded by SL_JSONPATH_MAX_DEPTH; this bounds the
 * whole stack as a safety net (no path within the depth needs it). */
#define S_MAX_STACK (4 * SL_JSONPATH_MAX_DEPTH)
#define S_SHOWN_MAX 60

typedef enum { V_NONE, V_TOKEN, V_NODE, V_STRS, V_EXPRS, V_EXPR, V_SORTS, V_CHAR } s_vkind_t;

typedef struct {
    s_vkind_t  kind;
    s_token_t  t;               /* V_TOKEN; t.c for V_CHAR */
    s_node_t  *node;            /* V_NODE */
    size_t     n;               /* V_STRS, V_EXPRS, V_SORTS */
    char     **strs;
    s_expr_t **exprs;
    s_expr_t  *expr;            /* V_EXPR */
    s_sort_t  *sorts;
} s_sv_t;

typedef struct {
    sl_jsonpath_t *jp;
    const char    *shown;       /* jp->text for messages, shortened if long */
    size_t         n_nodes;
    char          *err;
    size_t         errlen;
} s_parse_t;

static s_node_t *
s_new(s_parse_t *ps, s_kind_t kind)
{
    s_node_t *n = sl_arena_alloc(&ps->jp->mem, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->height = 1;
    ps->n_nodes++;
    return n;
}

static int
s_height(const s_node_t *n)
{
    return n ? n->height : 0;
}

/* Sets n->height from its children, which are complete: called once a
 * node's children are attached, so the height is known without walking
 * the tree (it is what evaluation's recursion will need). */
static s_node_t *
s_measure(s_node_t *n)
{
    int h = s_height(n->left);
    h = s_height(n->right) > h ? s_height(n->right) : h;
    h = s_height(n->a.path) > h ? s_height(n->a.path) : h;
    h = s_height(n->b.path) > h ? s_height(n->b.path) : h;
    for (size_t i = 0; i < n->n_exprs; i++)
        h = s_height(n->exprs[i]->target) > h ? s_height(n->exprs[i]->target) : h;
    for (size_t i = 0; i < n->n_sorts; i++)
        h = s_height(n->sorts[i].field) > h ? s_height(n->sorts[i].field) : h;
    n->height = h + 1;
    return n;
}

static s_node_t *
s_new2(s_parse_t *ps, s_kind_t kind, s_node_t *l, s_node_t *r)
{
    s_node_t *n = s_new(ps, kind);
    n->left = l;
    n->right = r;
    return s_measure(n);
}

static s_node_t *
s_fields(s_parse_t *ps, char **names, size_t n)
{
    s_node_t *f = s_new(ps, N_FIELDS);
    f->fields = names;
    f->n_fields = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], "*") == 0)
            f->all_fields = 1;
    return f;
}

static void
s_keep_regex(s_parse_t *ps, pcre2_code *re)
{
    sl_jsonpath_t *jp = ps->jp;
    jp->regex = sl_xrealloc(jp->regex, (jp->n_regex + 1) * sizeof *jp->regex);
    jp->regex[jp->n_regex++] = re;
}

/* `split(c, segment, max_split)`: _string.SPLIT =
 * "split\((.),\s+(\d+),\s+(\d+|-1)\)" with re.match (trailing text is
 * ignored). */
static int
s_named_split(s_parse_t *ps, const char *m, s_node_t *n)
{
    const char *p = m + 6;
    if (!*p || *p == '\n')
        return -1;
    size_t cl = sl_py_prefix(p, 1);
    n->split_char = sl_arena_strndup(&ps->jp->mem, p, cl);
    p += cl;
    for (int field = 0; field < 2; field++) {
        if (*p++ != ',' || !s_pyspace((unsigned char) *p))
            return -1;
        while (s_pyspace((unsigned char) *p))
            p++;
        const char *d = p;
        if (field == 1 && p[0] == '-' && p[1] == '1') {
            n->max_split = -1;
            p += 2;
            continue;
        }
        while (s_digit(*p))
            p++;
        if (p == d)
            return -1;
        errno = 0;
        long long v = strtoll(d, NULL, 10);
        if (errno == ERANGE)
            v = LLONG_MAX;
        if (field == 0)
            n->segment = v;
        else
            n->max_split = v;
    }
    return *p == ')' ? 0 : -1;
}

/* `sub(/regex/, repl)`: _string.SUB = "sub\(/(.*)/,\s+(.*)\)" (greedy,
 * `.` not matching a newline), both parts stripped. */
static int
s_named_sub(s_parse_t *ps, const char *m, s_node_t *n)
{
    if (strchr(m, '\n'))
        return -1;
    const char *open = m + 4;
    if (*open != '/')
        return -1;
    /* the last "/," followed by whitespace, then ")" somewhere after */
    const char *close = strrchr(m, ')');
    const char *sep = NULL;
    for (const char *q = open + 1; close && q < close; q++)
        if (q[0] == '/' && q[1] == ',' && s_pyspace((unsigned char) q[2]))
            sep = q;
    if (!sep || !close)
        return -1;
    const char *r = sep + 2;
    while (s_pyspace((unsigned char) *r) && r < close)
        r++;
    /* (.*) before ")" is greedy: repl runs to the last ')' */
    char *expr = sl_arena_strndup(&ps->jp->mem, open + 1, (size_t) (sep - open - 1));
    char *repl = sl_arena_strndup(&ps->jp->mem, r, (size_t) (close - r));
    /* .strip() */
    while (*expr && s_pyspace((unsigned char) *expr))
        expr++;
    for (size_t l = strlen(expr); l && s_pyspace((unsigned char) expr[l - 1]); l--)
        expr[l - 1] = '\0';
    for (size_t l = strlen(repl); l && s_pyspace((unsigned char) repl[l - 1]); l--)
        repl[l - 1] = '\0';
    char rerr[256];
    n->re = sl_py_re_compile(expr, 0, rerr, sizeof rerr);
    if (!n->re)
        return sl_errf(ps->err, ps->errlen, "JSONPath '%s': `sub`: %s", ps->shown, rerr);
    s_keep_regex(ps, n->re);
    n->repl = repl;
    return 0;
}

static s_node_t *
s_named_operator(s_parse_t *ps, const char *m)
{
    s_node_t *n;
    if (strcmp(m, "len") == 0)
        return s_new(ps, N_LEN);
    if (strcmp(m, "sorted") == 0)
        return s_new(ps, N_SORTED);
    if (strncmp(m, "split(", 6) == 0) {
        n = s_new(ps, N_SPLIT);
        if (s_named_split(ps, m, n) < 0) {
            sl_errf(ps->err, ps->errlen, "JSONPath '%s': `%s` is not valid (expected "
                   "`split(c, segment, max_split)`)", ps->shown, m);
            return NULL;
        }
        return n;
    }
    if (strncmp(m, "sub(", 4) == 0) {
        n = s_new(ps, N_SUB);
        char *e = ps->err;
        if (e && ps->errlen)
            e[0] = '\0';
        if (s_named_sub(ps, m, n) < 0) {
            if (!e || !e[0])
                sl_errf(ps->err, ps->errlen, "JSONPath '%s': `%s` is not valid (expected "
                       "`sub(/regex/, repl)`)", ps->shown, m);
            return NULL;
        }
        return n;
    }
    if (strcmp(m, "this") == 0)
        return s_new(ps, N_THIS);
    if (strcmp(m, "parent") == 0)
        return s_new(ps, N_PARENT);
    sl_errf(ps->err, ps->errlen, "JSONPath '%s': unknown named operator `%s`", ps->shown, m);
    return NULL;
}

/* An Operation operand: p_jsonpath_operator_jsonpath turns a Fields of one
 * name into that name as a string constant. */
static int
s_operand(s_parse_t *ps, const s_sv_t *v, s_operand_t *o)
{
    sl_arena_t *a = &ps->jp->mem;
    memset(o, 0, sizeof *o);
    if (v->kind == V_NODE) {
        if (v->node->kind == N_FIELDS && v->node->n_fields == 1)
            o->constant = sl_json_new_string(a, v->node->fields[0], strlen(v->node->fields[0]));
        else
            o->path = v->node;
        return 0;
    }
    if (v->kind != V_TOKEN)
        return -1;
    if (v->t.tok == T_NUMBER)
        o->constant = sl_py_new_number(a, v->t.num ? v->t.num : "0");
    else if (v->t.tok == T_FLOAT)
        o->constant = sl_py_new_float(a, v->t.d);
    else if (v->t.tok == T_ID)
        o->constant = sl_json_new_string(a, v->t.str, strlen(v->t.str));
    else
        return -1;
    return 0;
}

static char **
s_strs_cat(sl_arena_t *a, char **x, size_t nx, char **y, size_t ny)
{
    char **r = sl_arena_alloc(a, (nx + ny + 1) * sizeof *r);
    memcpy(r, x, nx * sizeof *r);
    memcpy(r + nx, y, ny * sizeof *r);
    return r;
}

/* Runs the semantic action of rule `rule` over its symbols p[1..len] into
 * *out. -1 (message in err) if it raises. */
static int
s_reduce(s_parse_t *ps, int rule, s_sv_t *p, s_sv_t *out)
{
    sl_arena_t *a = &ps->jp->mem;
    memset(out, 0, sizeof *out);
    out->kind = V_NODE;
    switch (s_prods[rule].action) {
    case A_jsonpath_binop: {
        int tok = p[2].t.tok;
        s_kind_t k = tok == T_DOT ? N_CHILD : tok == T_DOUBLEDOT ? N_DESCENDANTS
                   : tok == T_WHERE ? N_WHERE : tok == T_PIPE ? N_UNION : N_INTERSECT;
        out->node = s_new2(ps, k, p[1].node, p[3].node);
        return 0;
    }
    case A_jsonpath_operator_jsonpath: {
        s_node_t *n = s_new(ps, N_OPERATION);
        n->op = p[2].t.c;
        if (s_operand(ps, &p[1], &n->a) < 0 || s_operand(ps, &p[3], &n->b) < 0)
            return sl_errf(ps->err, ps->errlen, "JSONPath '%s': bad operand", ps->shown);
        out->node = s_measure(n);
        return 0;
    }
    case A_jsonpath_fields:
        out->node = s_fields(ps, p[1].strs, p[1].n);
        return 0;
    case A_operator:
        out->kind = V_TOKEN;
        out->t = p[1].t;
        return 0;
    case A_jsonpath_named_operator:
        out->node = s_named_operator(ps, p[1].t.str);
        return out->node ? 0 : -1;
    case A_jsonpath_root:
        out->node = s_new(ps, N_ROOT);
        return 0;
    case A_jsonpath_idx:
    case A_jsonpath_slice:
    case A_expressions_parens:
    case A_jsonpath_parens:
        *out = p[2];
        return 0;
    case A_jsonpath_fieldbrackets:
        out->node = s_fields(ps, p[2].strs, p[2].n);
        return 0;
    case A_expression: {
        s_expr_t *e = sl_arena_alloc(a, sizeof *e);
        memset(e, 0, sizeof *e);
        e->target = p[1].node;
        if (s_prods[rule].len == 3) {
            snprintf(e->op, sizeof e->op, "%s", p[2].t.str);
            const s_token_t *v = &p[3].t;
            if (v->tok == T_ID) {
                e->ckind = C_STR;
                e->value = sl_json_new_string(a, v->str, strlen(v->str));
            } else if (v->tok == T_FLOAT) {
                e->ckind = C_FLOAT;
                e->value = sl_py_new_float(a, v->d);
            } else if (v->tok == T_NUMBER) {
                e->ckind = C_INT;
                e->value = sl_py_new_number(a, v->num ? v->num : "0");
            } else {
                e->ckind = C_INT;
                e->value = sl_py_new_int(a, v->b);
            }
            if (strcmp(e->op, "~") == 0 && e->ckind == C_STR) {
                /* Python compiles it when first used; an invalid pattern
                 * raises then (re is left NULL). */
                e->re = sl_py_re_compile(e->value->u.string, PCRE2_ANCHORED, NULL, 0);
                if (e->re)
                    s_keep_regex(ps, e->re);
            }
        }
        out->kind = V_EXPR;
        out->expr = e;
        return 0;
    }
    case A_jsonpath_child_fieldbrackets:
        out->node = s_new2(ps, N_CHILD, p[1].node, s_fields(ps, p[3].strs, p[3].n));
        return 0;
    case A_jsonpath_child_idxbrackets:
    case A_jsonpath_child_slicebrackets:
    case A_jsonpath_filter:
        out->node = s_new2(ps, N_CHILD, p[1].node, p[3].node);
        return 0;
    case A_expressions_expression:
        out->kind = V_EXPRS;
        out->n = 1;
        out->exprs = sl_arena_alloc(a, sizeof *out->exprs);
        out->exprs[0] = p[1].expr;
        return 0;
    case A_expressions_and:
        out->kind = V_EXPRS;
        out->n = p[1].n + p[3].n;
        out->exprs = sl_arena_alloc(a, (out->n + 1) * sizeof *out->exprs);
        memcpy(out->exprs, p[1].exprs, p[1].n * sizeof *out->exprs);
        memcpy(out->exprs + p[1].n, p[3].exprs, p[3].n * sizeof *out->exprs);
        return 0;
    case A_fields_or_any:
        if (p[1].kind == V_TOKEN) {         /* '*' */
            out->kind = V_STRS;
            out->n = 1;
            out->strs = sl_arena_alloc(a, sizeof *out->strs);
            out->strs[0] = sl_arena_strdup(a, "*");
            return 0;
        }
        *out = p[1];
        return 0;
    case A_filter: {
        s_node_t *f = s_new(ps, N_FILTER);
        f->exprs = p[2].exprs;
        f->n_exprs = p[2].n;
        out->node = s_measure(f);
        return 0;
    }
    case A_fields_id:
        out->kind = V_STRS;
        out->n = 1;
        out->strs = sl_arena_alloc(a, sizeof *out->strs);
        out->strs[0] = p[1].t.str;
        return 0;
    case A_fields_comma:
        out->kind = V_STRS;
        out->strs = s_strs_cat(a, p[1].strs, p[1].n, p[3].strs, p[3].n);
        out->n = p[1].n + p[3].n;
        return 0;
    case A_sort:
        out->kind = V_SORTS;
        out->n = 1;
        out->sorts = sl_arena_alloc(a, sizeof *out->sorts);
        out->sorts[0].field = p[2].node;
        out->sorts[0].reverse = p[1].t.c != '/';
        return 0;
    case A_idx: {
        s_node_t *n = s_new(ps, N_INDEX);
        n->index = p[1].t.i;
        out->node = n;
        return 0;
    }
    case A_sorts_sort:
        *out = p[1];
        return 0;
    case A_sorts_comma:
        out->kind = V_SORTS;
        out->n = p[1].n + p[2].n;
        out->sorts = sl_arena_alloc(a, (out->n + 1) * sizeof *out->sorts);
        memcpy(out->sorts, p[1].sorts, p[1].n * sizeof *out->sorts);
        memcpy(out->sorts + p[1].n, p[2].sorts, p[2].n * sizeof *out->sorts);
        return 0;
    case A_slice_any:
        out->node = s_new(ps, N_SLICE);
        return 0;
    case A_slice: {
        s_node_t *n = s_new(ps, N_SLICE);
        if (p[1].kind == V_TOKEN) {
            n->has_start = 1;
            n->start = p[1].t.i;
        }
        if (p[3].kind == V_TOKEN) {
            n->has_end = 1;
            n->end = p[3].t.i;
        }
        out->node = n;
        return 0;
    }
    case A_jsonpath_sort: {
        s_node_t *s = s_new(ps, N_SORTED);
        s->sorts = p[3].sorts;
        s->n_sorts = p[3].n;
        out->node = s_new2(ps, N_CHILD, p[1].node, s_measure(s));
        return 0;
    }
    case A_maybe_int:
        *out = p[1];
        return 0;
    case A_jsonpath_this:
        out->node = s_new(ps, N_THIS);
        return 0;
    case A_empty:
        out->kind = V_NONE;
        return 0;
    default:
        return sl_errf(ps->err, ps->errlen, "JSONPath '%s': internal parser error", ps->shown);
    }
}

static const char *
s_tok_name(int tok)
{
    static const char *names[T__COUNT] = {
        [T_END] = "the end", [T_DOLLAR] = "'$'", [T_AMP] = "'&'", [T_LPAREN] = "'('",
        [T_RPAREN] = "')'", [T_STAR] = "'*'", [T_PLUS] = "'+'", [T_COMMA] = "','",
        [T_MINUS] = "'-'", [T_DOT] = "'.'", [T_SLASH] = "'/'", [T_COLON] = "':'",
        [T_QUESTION] = "'?'", [T_AT] = "'@'", [T_BOOL] = "a boolean (a name starting "
        "with true/false must be quoted)", [T_DOUBLEDOT] = "'..'", [T_FILTER_OP] =
        "a comparison", [T_FLOAT] = "a decimal number", [T_ID] = "a name",
        [T_NAMED_OPERATOR] = "a `named operator`", [T_NUMBER] = "a number",
        [T_SORT_DIRECTION] = "a sort direction ('/' or '\\')", [T_WHERE] = "'where'",
        [T_LBRACK] = "'['", [T_RBRACK] = "']'", [T_PIPE] = "'|'",
    };
    return tok >= 0 && tok < T__COUNT && names[tok] ? names[tok] : "?";
}

static void
s_too_deep(s_parse_t *ps, const s_lex_t *lx)
{
    sl_errf(ps->err, ps->errlen, "JSONPath '%s': nested more than %d levels deep at column %d, "
            "the limit for one path: simplify the path", ps->shown, SL_JSONPATH_MAX_DEPTH,
            (int) (lx->p - lx->src));
}

static int
s_parse(s_parse_t *ps)
{
    s_lex_t lx = { .src = ps->jp->text, .p = ps->jp->text, .shown = ps->shown, .mem = &ps->jp->mem,
                   .err = ps->err, .errlen = ps->errlen };
    size_t cap = 64, top = 0;
    int *states = sl_xmalloc(cap * sizeof *states);
    s_sv_t *vals = sl_xmalloc(cap * sizeof *vals);
    states[0] = 0;
    memset(&vals[0], 0, sizeof vals[0]);
    s_token_t look;
    int have = 0, rc = -1, pending = 0;
    for (;;) {
        int st = states[top], act;
        if (s_defaulted[st]) {
            act = -s_defaulted[st];
        } else {
            if (!have) {
                if (s_lex(&lx, &look) < 0)
                    goto out;
                have = 1;
            }
            act = s_action[st][look.tok];
        }
        if (act == S_ACCEPT) {
            ps->jp->root = vals[top].node;
            rc = 0;
            goto out;
        }
        if (act == 0) {
            sl_errf(ps->err, ps->errlen, "JSONPath '%s': syntax error at %s (column %d)",
                   ps->shown, s_tok_name(look.tok), (int) (lx.p - lx.src));
            goto out;
        }
        if (act > 0) {
            /* Each token waiting on the stack when another arrives (an
             * operator whose right side is still to come, an open
             * parenthesis or bracket) is a level of nesting: a
             * right-associative chain is all tokens until its last term. */
            if (pending++ > SL_JSONPATH_MAX_DEPTH) {
                s_too_deep(ps, &lx);
                goto out;
            }
            if (top + 1 > S_MAX_STACK) {
                sl_errf(ps->err, ps->errlen, "JSONPath '%s': too complex at column %d (more "
                        "than %d symbols pending): simplify the path", ps->shown,
                        (int) (lx.p - lx.src), S_MAX_STACK);
                goto out;
            }
            if (top + 1 == cap) {
                cap *= 2;
                states = sl_xrealloc(states, cap * sizeof *states);
                vals = sl_xrealloc(vals, cap * sizeof *vals);
            }
            top++;
            states[top] = act - 1;
            memset(&vals[top], 0, sizeof vals[top]);
            vals[top].kind = V_TOKEN;
            vals[top].t = look;
            have = 0;
            continue;
        }
        int rule = -act, len = s_prods[rule].len;
        s_sv_t res;
        /* p[0] unused, p[1..len] the symbols */
        if (s_reduce(ps, rule, &vals[top - (size_t) len], &res) < 0)
            goto out;
        /* Checked as the tree grows, so that the compiler stops at the
         * limit and evaluation never recurses deeper than it. */
        if (res.kind == V_NODE && s_height(res.node) > SL_JSONPATH_MAX_DEPTH) {
            s_too_deep(ps, &lx);
            goto out;
        }
        for (int i = 1; i <= len; i++)
            pending -= vals[top - (size_t) len + (size_t) i].kind == V_TOKEN;
        pending += res.kind == V_TOKEN;
        if (ps->n_nodes > SL_JSONPATH_MAX_NODES) {
            sl_errf(ps->err, ps->errlen, "JSONPath '%s': more than %d terms (names, operators, "
                    "filters, ...) at column %d, the limit for one path: simplify the path",
                    ps->shown, SL_JSONPATH_MAX_NODES, (int) (lx.p - lx.src));
            goto out;
        }
        top -= (size_t) len;
        int g = s_goto[states[top]][s_prods[rule].lhs];
        if (g < 0) {
            sl_errf(ps->err, ps->errlen, "JSONPath '%s': internal parser error", ps->shown);
            goto out;
        }
        if (top + 1 == cap) {
            cap *= 2;
            states = sl_xrealloc(states, cap * sizeof *states);
            vals = sl_xrealloc(vals, cap * sizeof *vals);
        }
        top++;
        states[top] = g;
        vals[top] = res;
    }
out:
    free(states);
    free(vals);
    return rc;
}

/* `$.a.b`, `a.b`, `$`: Child chains of one-name Fields from Root or the
 * document itself. Counts the names into *count and, when
 * jp->simple_names is set, fills it in order. Walks the chain's left spine
 * in a loop (the compiler does not recurse). */
static int
s_single_name(const s_node_t *n)
{
    return n->kind == N_FIELDS && n->n_fields == 1 && !n->all_fields;
}

static int
s_simple(sl_jsonpath_t *jp, const s_node_t *n, size_t *count)
{
    size_t k = 0;
    const s_node_t *c = n;
    for (; c->kind == N_CHILD; c = c->left, k++)
        if (!s_single_name(c->right))
            return 0;
    if (c->kind == N_ROOT)
        jp->simple_rooted = 1;
    else if (s_single_name(c))
        k++;
    else
        return 0;
    if (jp->simple_names) {
        size_t i = k;
        for (c = n; c->kind == N_CHILD; c = c->left)
            jp->simple_names[--i] = c->right->fields[0];
        if (c->kind == N_FIELDS)
            jp->simple_names[--i] = c->fields[0];
    }
    *count += k;
    return 1;
}

sl_jsonpath_t *
sl_jsonpath_compile(const char *expr, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!expr) {
        sl_errf(err, errlen, "JSONPath is missing");
        return NULL;
    }
    sl_jsonpath_t *jp = sl_xcalloc(1, sizeof *jp);
    sl_arena_init(&jp->mem, 1024);
    jp->text = sl_arena_strdup(&jp->mem, expr);
    /* Messages quote the path; a long one by its start only, so that the
     * reason still fits the caller's buffer. */
    const char *shown = jp->text;
    if (strlen(expr) > S_SHOWN_MAX)
        shown = sl_arena_printf(&jp->mem, "%.*s...", S_SHOWN_MAX - 3, expr);
    s_parse_t ps = { .jp = jp, .shown = shown, .err = err, .errlen = errlen };
    if (s_parse(&ps) < 0 || !jp->root) {
        if (err && errlen && !err[0])
            sl_errf(err, errlen, "JSONPath '%s': syntax error", shown);
        sl_jsonpath_destroy(&jp);
        return NULL;
    }
    size_t n = 0;
    if (s_simple(jp, jp->root, &n)) {
        jp->simple_names = sl_arena_alloc(&jp->mem, (n + 1) * sizeof *jp->simple_names);
        jp->simple_rooted = 0;
        n = 0;
        s_simple(jp, jp->root, &n);
        jp->n_simple = n;
        jp->simple = 1;
    }
    return jp;
}

void
sl_jsonpath_destroy(sl_jsonpath_t **path_p)
{
    if (!path_p || !*path_p)
        return;
    sl_jsonpath_t *jp = *path_p;
    for (size_t i = 0; i < jp->n_regex; i++)
        pcre2_code_free(jp->regex[i]);
    free(jp->regex);
    sl_arena_destroy(&jp->mem);
    free(jp);
    *path_p = NULL;
}

const char *
sl_jsonpath_text(const sl_jsonpath_t *path)
{
    return path ? path->text : NULL;
}

/* ---- evaluation -------------------------------------------------------- */

typedef const sl_jsonpath_match_t s_m_t;

typedef struct {
    s_m_t **v;
    size_t  n, cap;
} s_list_t;

typedef struct {
    sl_arena_t *a;
    int         raised;
    yajl_val    none;           /* JSON null, for wrap(None) */
    size_t      made;           /* matches made and list slots filled so far */
    size_t      base;           /* sl_arena_bytes(a) when the evaluation began */
} s_ev_t;

/* Longest string a repetition may build (Python would go on to MemoryError). */
#define S_MAX_REPEAT (16u << 20)

/* Each `..` or `$` after a `..` multiplies the matches by the document's
 * size (`$..$..$..$..$..x` over a notification of 70 values makes 70^5),
 * where jsonpath-rw runs on to MemoryError. Every 4096 matches or list
 * slots made, the arena is measured: past SL_JSONPATH_MAX_BYTES more than
 * when the evaluation began, it stops and raises. */
static void
s_made(s_ev_t *w)
{
    if ((++w->made & 4095) == 0 && sl_arena_bytes(w->a) - w->base > SL_JSONPATH_MAX_BYTES)
        w->raised = 1;
}

static void
s_push(s_ev_t *w, s_list_t *l, s_m_t *m)
{
    s_made(w);
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        s_m_t **v = sl_arena_alloc(w->a, nc * sizeof *v);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = nc;
    }
    l->v[l->n++] = m;
}

static s_m_t *
s_dat(s_ev_t *w, yajl_val v, s_m_t *ctx, const char *path)
{
    s_made(w);
    sl_jsonpath_match_t *m = sl_arena_alloc(w->a, sizeof *m);
    m->value = v;
    m->context = ctx;
    m->path = path;
    return m;
}

static s_list_t
s_raise(s_ev_t *w)
{
    s_list_t l = { 0 };
    w->raised = 1;
    return l;
}

typedef enum { P_NONE, P_INT, P_FLOAT, P_STR, P_LIST, P_DICT, P_BIGINT } s_pytype_t;

static s_pytype_t
s_pytype(yajl_val v, long long *i, double *d)
{
    switch (v->type) {
    case yajl_t_true:
    case yajl_t_false:
        *i = v->type == yajl_t_true;
        return P_INT;
    case yajl_t_number:
        if (sl_py_is_float(v)) {
            *d = v->u.number.r ? strtod(v->u.number.r, NULL) : v->u.number.d;
            return P_FLOAT;
        }
        if (!(v->u.number.flags & YAJL_NUMBER_INT_VALID))
            return P_BIGINT;
        *i = v->u.number.i;
        return P_INT;
    case yajl_t_string:
        return P_STR;
    case yajl_t_array:
        return P_LIST;
    case yajl_t_object:
        return P_DICT;
    default:
        return P_NONE;
    }
}

static size_t
s_len(yajl_val v)
{
    return v->type == yajl_t_array ? v->u.array.len
         : v->type == yajl_t_object ? v->u.object.len : sl_py_strlen(v->u.string);
}

static s_list_t s_find(s_ev_t *w, const s_node_t *n, s_m_t *in, int raw);

/* Index.find: `if len(v) > n: [v[n]]`. */
static s_list_t
s_index(s_ev_t *w, s_m_t *in, long long n)
{
    s_list_t out = { 0 };
    yajl_val v = in->value;
    if (v->type != yajl_t_array && v->type != yajl_t_string && v->type != yajl_t_object)
        return s_raise(w);      /* len() of a number, bool or None */
    size_t len = s_len(v);
    if (n >= 0 && (unsigned long long) n >= len)
        return out;
    if (v->type == yajl_t_object)
        return s_raise(w);      /* dict[int]: KeyError */
    if (n < 0 && (unsigned long long) -(n + 1) >= len)
        return s_raise(w);      /* IndexError */
    size_t idx = n >= 0 ? (size_t) n : len - (size_t) -(n + 1) - 1;
    const char *path = sl_arena_printf(w->a, "[%lld]", n);
    if (v->type == yajl_t_array) {
        s_push(w, &out, s_dat(w, v->u.array.values[idx], in, path));
        return out;
    }
    const char *s = v->u.string;
    size_t off = sl_py_prefix(s, idx), clen = sl_py_prefix(s + off, 1);
    s_push(w, &out, s_dat(w, sl_json_new_string(w->a, s + off, clen), in, path));
    return out;
}

/* Python's slice.indices() for a sequence of length len. */
static void
s_slice_bounds(const s_node_t *n, long long len, long long *lo, long long *hi)
{
    long long s = n->has_start ? n->start : 0, e = n->has_end ? n->end : len;
    if (s < 0)
        s = s + len < 0 ? 0 : s + len;
    else if (s > len)
        s = len;
    if (e < 0)
        e = e + len < 0 ? 0 : e + len;
    else if (e > len)
        e = len;
    *lo = s;
    *hi = e;
}

static s_list_t
s_slice(s_ev_t *w, s_m_t *in, const s_node_t *n)
{
    s_list_t out = { 0 };
    yajl_val v = in->value;
    s_m_t *ctx = in;
    if (v->type == yajl_t_object || v->type == yajl_t_string || v->type == yajl_t_true ||
        v->type == yajl_t_false || (v->type == yajl_t_number && !sl_py_is_float(v))) {
        /* "put it in a single-element list", with the datum's path and
         * context */
        yajl_val l = sl_arena_alloc(w->a, sizeof *l);
        memset(l, 0, sizeof *l);
        l->type = yajl_t_array;
        l->u.array.len = 1;
        l->u.array.values = sl_arena_alloc(w->a, sizeof(yajl_val));
        l->u.array.values[0] = v;
        ctx = s_dat(w, l, in->context, in->path);
        v = l;
    }
    if (v->type != yajl_t_array)
        return s_raise(w);      /* len(float or None) */
    long long lo = 0, hi = (long long) v->u.array.len;
    if (n->has_start || n->has_end)
        s_slice_bounds(n, (long long) v->u.array.len, &lo, &hi);
    for (long long i = lo; i < hi; i++)
        s_push(w, &out, s_dat(w, v->u.array.values[i], ctx, sl_arena_printf(w->a, "[%lld]", i)));
    return out;
}

static s_list_t
s_fields_find(s_ev_t *w, const s_node_t *n, s_m_t *in)
{
    s_list_t out = { 0 };
    yajl_val v = in->value;
    if (v->type != yajl_t_object)
        return out;
    if (n->all_fields) {
        for (size_t k = 0; k < v->u.object.len; k++)
            s_push(w, &out, s_dat(w, v->u.object.values[k], in, v->u.object.keys[k]));
        return out;
    }
    for (size_t k = 0; k < n->n_fields; k++) {
        yajl_val c = sl_json_get(v, n->fields[k]);
        if (c)
            s_push(w, &out, s_dat(w, c, in, n->fields[k]));
    }
    return out;
}

static void
s_descend(s_ev_t *w, const s_node_t *right, s_m_t *d, s_list_t *out)
{
    s_list_t r = s_find(w, right, d, 0);
    if (w->raised)
        return;
    for (size_t i = 0; i < r.n; i++)
        s_push(w, out, r.v[i]);
    yajl_val v = d->value;
    if (v->type == yajl_t_array) {
        for (size_t i = 0; i < v->u.array.len && !w->raised; i++)
            s_descend(w, right, s_dat(w, v->u.array.values[i], d,
                                      sl_arena_printf(w->a, "[%zu]", i)), out);
    } else if (v->type == yajl_t_object) {
        for (size_t i = 0; i < v->u.object.len && !w->raised; i++)
            s_descend(w, right, s_dat(w, v->u.object.values[i], d, v->u.object.keys[i]), out);
    }
}

/* ---- Python operators ---- */

/* op(x, y) for + - * / as Python computes it: 0 with *r set, 1 for a
 * TypeError (the Operation then gives nothing), -1 for anything else
 * Python raises. */
static int
s_binop(s_ev_t *w, char op, yajl_val x, yajl_val y, yajl_val *r)
{
    long long xi = 0, yi = 0;
    double xd = 0, yd = 0;
    s_pytype_t tx = s_pytype(x, &xi, &xd), ty = s_pytype(y, &yi, &yd);
    if (tx == P_BIGINT || ty == P_BIGINT)
        return -1;              /* ints beyond 64 bits: not reproduced */
    int nx = tx == P_INT || tx == P_FLOAT, ny = ty == P_INT || ty == P_FLOAT;
    if (nx && ny) {
        if (tx == P_INT && ty == P_INT && op != '/') {
            long long res;
            int ovf = op == '+' ? __builtin_add_overflow(xi, yi, &res)
                    : op == '-' ? __builtin_sub_overflow(xi, yi, &res)
                    : __builtin_mul_overflow(xi, yi, &res);
            if (ovf)
                return -1;
            *r = sl_py_new_int(w->a, res);
            return 0;
        }
        double a = tx == P_INT ? (double) xi : xd, b = ty == P_INT ? (double) yi : yd;
        double res;
        switch (op) {
        case '+': res = a + b; break;
        case '-': res = a - b; break;
        case '*': res = a * b; break;
        default:
            if (b == 0)
                return -1;      /* ZeroDivisionError */
            res = a / b;
            break;
        }
        *r = sl_py_new_float(w->a, res);
        return 0;
    }
    if (op == '+' && tx == P_STR && ty == P_STR) {
        const char *p = sl_arena_printf(w->a, "%s%s", x->u.string, y->u.string);
        *r = sl_json_new_string(w->a, p, strlen(p));
        return 0;
    }
    if (op == '+' && tx == P_LIST && ty == P_LIST) {
        yajl_val l = sl_arena_alloc(w->a, sizeof *l);
        memset(l, 0, sizeof *l);
        l->type = yajl_t_array;
        size_t n = x->u.array.len + y->u.array.len;
        l->u.array.len = n;
        l->u.array.values = sl_arena_alloc(w->a, (n + 1) * sizeof(yajl_val));
        memcpy(l->u.array.values, x->u.array.values, x->u.array.len * sizeof(yajl_val));
        memcpy(l->u.array.values + x->u.array.len, y->u.array.values,
               y->u.array.len * sizeof(yajl_val));
        *r = l;
        return 0;
    }
    if (op == '*' && ((tx == P_INT && (ty == P_STR || ty == P_LIST)) ||
                      (ty == P_INT && (tx == P_STR || tx == P_LIST)))) {
        yajl_val seq = tx == P_INT ? y : x;
        long long times = tx == P_INT ? xi : yi;
        if (times < 0)
            times = 0;
        size_t len = seq->type == yajl_t_string ? strlen(seq->u.string) : seq->u.array.len;
        if (len == 0)
            times = 0;      /* "" * n and [] * n are empty at once, however large n is */
        if (seq->type == yajl_t_string) {
            if (len && (unsigned long long) times > S_MAX_REPEAT / len)
                return -1;
            char *s = sl_arena_alloc(w->a, len * (size_t) times + 1);
            for (long long i = 0; i < times; i++)
                memcpy(s + (size_t) i * len, seq->u.string, len);
            s[len * (size_t) times] = '\0';
            yajl_val v = sl_arena_alloc(w->a, sizeof *v);
            memset(v, 0, sizeof *v);
            v->type = yajl_t_string;
            v->u.string = s;
            *r = v;
            return 0;
        }
        if (len && (unsigned long long) times > S_MAX_REPEAT / len / sizeof(yajl_val))
            return -1;
        yajl_val l = sl_arena_alloc(w->a, sizeof *l);
        memset(l, 0, sizeof *l);
        l->type = yajl_t_array;
        l->u.array.len = len * (size_t) times;
        l->u.array.values = sl_arena_alloc(w->a, (l->u.array.len + 1) * sizeof(yajl_val));
        for (long long i = 0; i < times; i++)
            memcpy(l->u.array.values + (size_t) i * len, seq->u.array.values,
                   len * sizeof(yajl_val));
        *r = l;
        return 0;
    }
    return 1;
}

static s_list_t
s_operation(s_ev_t *w, const s_node_t *n, s_m_t *in, int raw)
{
    s_list_t out = { 0 }, l = { 0 }, r = { 0 };
    if (n->a.path) {
        l = s_find(w, n->a.path, in, raw);
        if (w->raised)
            return out;
    }
    if (n->b.path) {
        r = s_find(w, n->b.path, in, raw);
        if (w->raised)
            return out;
    }
    size_t count;
    if (n->a.path && n->b.path) {
        if (!l.n || !r.n || l.n != r.n)
            return out;
        count = l.n;
    } else {
        count = n->a.path ? l.n : n->b.path ? r.n : 1;
    }
    for (size_t i = 0; i < count; i++) {
        s_m_t *lm = n->a.path ? l.v[i] : NULL, *rm = n->b.path ? r.v[i] : NULL;
        if ((n->a.path && !lm) || (n->b.path && !rm))
            return s_raise(w);  /* None.value: AttributeError */
        yajl_val x = lm ? lm->value : n->a.constant, y = rm ? rm->value : n->b.constant;
        yajl_val res;
        int rc = s_binop(w, n->op, x, y, &res);
        if (rc < 0)
            return s_raise(w);
        if (rc > 0) {
            s_list_t empty = { 0 };
            return empty;       /* TypeError: no result at all */
        }
        s_push(w, &out, s_dat(w, res, NULL, "`this`"));
    }
    return out;
}

/* ---- filters ---- */

/* Python's x < y for the values json.loads gives: 1 if less, 0 if not, -1
 * if it raises (TypeError between kinds, None, dicts). */
static int
s_py_lt(yajl_val x, yajl_val y)
{
    long long xi = 0, yi = 0;
    double xd = 0, yd = 0;
    s_pytype_t tx = s_pytype(x, &xi, &xd), ty = s_pytype(y, &yi, &yd);
    if (tx == P_BIGINT || ty == P_BIGINT)
        return -1;
    if ((tx == P_INT || tx == P_FLOAT) && (ty == P_INT || ty == P_FLOAT)) {
        if (tx == P_INT && ty == P_INT)
            return xi < yi;
        return (tx == P_INT ? (double) xi : xd) < (ty == P_INT ? (double) yi : yd);
    }
    if (tx == P_STR && ty == P_STR)
        return strcmp(x->u.string, y->u.string) < 0;   /* UTF-8 order is code point order */
    if (tx == P_LIST && ty == P_LIST) {
        size_t n = x->u.array.len < y->u.array.len ? x->u.array.len : y->u.array.len;
        for (size_t i = 0; i < n; i++) {
            if (!sl_py_equal(x->u.array.values[i], y->u.array.values[i]))
                return s_py_lt(x->u.array.values[i], y->u.array.values[i]);
        }
        return x->u.array.len < y->u.array.len;
    }
    return -1;
}

/* OPERATOR_MAP[op](x, y): 1, 0, or -1 if it raises. */
static int
s_compare(const s_expr_t *e, yajl_val x, yajl_val y)
{
    const char *op = e->op;
    if (strcmp(op, "=") == 0 || strcmp(op, "==") == 0)
        return sl_py_equal(x, y);
    if (strcmp(op, "!=") == 0)
        return !sl_py_equal(x, y);
    if (strcmp(op, "<") == 0)
        return s_py_lt(x, y);
    if (strcmp(op, ">") == 0)
        return s_py_lt(y, x);
    if (strcmp(op, "<=") == 0 || strcmp(op, ">=") == 0) {
        yajl_val a = op[0] == '<' ? x : y, b = op[0] == '<' ? y : x;
        if (sl_py_equal(a, b)) {
            /* Python still raises across kinds that happen to be equal?
             * Equal values are always comparable here. */
            return 1;
        }
        return s_py_lt(a, b);
    }
    /* '~': re.match(pattern, string) */
    if (e->ckind != C_STR || !e->re || x->type != yajl_t_string)
        return -1;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return -1;
    int rc = pcre2_match(e->re, (PCRE2_SPTR) x->u.string, strlen(x->u.string), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* int(x) for a filter against an int constant: 0 with *r, 1 for a
 * ValueError (the element is skipped), -1 for what propagates. */
static int
s_to_int(s_ev_t *w, yajl_val x, yajl_val *r)
{
    long long i;
    double d;
    switch (s_pytype(x, &i, &d)) {
    case P_INT:
        *r = sl_py_new_int(w->a, i);
        return 0;
    case P_BIGINT:
        *r = x;
        return 0;
    case P_FLOAT:
        if (isnan(d))
            return 1;
        if (isinf(d))
            return -1;          /* OverflowError */
        *r = sl_py_new_number(w->a, sl_arena_printf(w->a, "%.0f", trunc(d)));
        return 0;
    case P_STR: {
        const char *t = sl_py_int_str(w->a, x->u.string);
        if (!t)
            return 1;
        *r = sl_py_new_number(w->a, t);
        return 0;
    }
    default:
        return -1;              /* int(list or dict): TypeError */
    }
}

/* Expression.find on one list element: 1 if it selects it, 0 if not. */
static int
s_expr_match(s_ev_t *w, const s_expr_t *e, yajl_val elem)
{
    s_list_t t = s_find(w, e->target, s_dat(w, elem, NULL, "`this`"), 0);
    if (w->raised || !t.n)
        return 0;
    if (!e->op[0])
        return 1;
    for (size_t i = 0; i < t.n; i++) {
        if (!t.v[i]) {
            w->raised = 1;
            return 0;
        }
        yajl_val x = t.v[i]->value;
        if (x->type == yajl_t_null)
            continue;
        if (e->ckind == C_INT) {
            int rc = s_to_int(w, x, &x);
            if (rc > 0)
                continue;
            if (rc < 0 || strcmp(e->op, "~") == 0) {
                w->raised = 1;
                return 0;
            }
        }
        int c = s_compare(e, x, e->value);
        if (c < 0) {
            w->raised = 1;
            return 0;
        }
        if (c)
            return 1;
    }
    return 0;
}

static s_list_t
s_filter(s_ev_t *w, const s_node_t *n, s_m_t *in)
{
    s_list_t out = { 0 };
    yajl_val v = in->value;
    if (v->type != yajl_t_array)
        return out;
    for (size_t i = 0; i < v->u.array.len; i++) {
        size_t ok = 0;
        for (size_t k = 0; k < n->n_exprs; k++) {
            ok += (size_t) s_expr_match(w, n->exprs[k], v->u.array.values[i]);
            if (w->raised)
                return out;
        }
        if (ok == n->n_exprs)
            s_push(w, &out, s_dat(w, v->u.array.values[i], in,
                                  sl_arena_printf(w->a, "[%zu]", i)));
    }
    return out;
}

/* ---- sorting ---- */

typedef struct {
    s_ev_t         *w;
    const s_node_t *n;
} s_sortctx_t;

/* SortedThis._compare, or plain `<` without expressions: <0, 0, >0; sets
 * w->raised when Python raises. */
static int
s_sort_cmp(s_sortctx_t *c, yajl_val x, yajl_val y)
{
    s_ev_t *w = c->w;
    if (!c->n->n_sorts) {
        int lt = s_py_lt(x, y);
        if (lt < 0) {
            w->raised = 1;
            return 0;
        }
        if (lt)
            return -1;
        lt = s_py_lt(y, x);
        if (lt < 0) {
            w->raised = 1;
            return 0;
        }
        return lt;
    }
    for (size_t k = 0; k < c->n->n_sorts; k++) {
        const s_sort_t *s = &c->n->sorts[k];
        s_list_t l = s_find(w, s->field, s_dat(w, x, NULL, "`this`"), 0);
        if (w->raised)
            return 0;
        s_list_t r = s_find(w, s->field, s_dat(w, y, NULL, "`this`"), 0);
        if (w->raised)
            return 0;
        if (l.n != 1 || r.n != 1)
            continue;
        if (!l.v[0] || !r.v[0]) {
            w->raised = 1;
            return 0;
        }
        if (sl_py_equal(l.v[0]->value, r.v[0]->value))
            continue;
        int lt = s_py_lt(l.v[0]->value, r.v[0]->value);
        if (lt < 0) {
            w->raised = 1;
            return 0;
        }
        if (lt)
            return s->reverse ? 1 : -1;
        return s->reverse ? -1 : 1;
    }
    return 0;
}

/* Stable merge sort (Python's sort is stable). */
static void
s_msort(s_sortctx_t *c, yajl_val *v, yajl_val *tmp, size_t n)
{
    if (n < 2 || c->w->raised)
        return;
    size_t h = n / 2;
    s_msort(c, v, tmp, h);
    s_msort(c, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (s_sort_cmp(c, v[j], v[i]) < 0)
            tmp[k++] = v[j++];
        else
            tmp[k++] = v[i++];
        if (c->w->raised)
            return;
    }
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static s_list_t
s_sorted(s_ev_t *w, const s_node_t *n, s_m_t *in, int raw)
{
    s_list_t out = { 0 };
    yajl_val v = in->value;
    /* On the raw document (no .value), a dict with sort expressions, or
     * anything but a list or dict, SortedThis.find does not return a list
     * and iterating its result raises. */
    if (raw || (v->type == yajl_t_object && n->n_sorts) ||
        (v->type != yajl_t_object && v->type != yajl_t_array))
        return s_raise(w);
    size_t len = v->type == yajl_t_array ? v->u.array.len : v->u.object.len;
    yajl_val *items = sl_arena_alloc(w->a, (len + 1) * sizeof *items);
    yajl_val *tmp = sl_arena_alloc(w->a, (len + 1) * sizeof *tmp);
    for (size_t i = 0; i < len; i++)
        items[i] = v->type == yajl_t_array ? v->u.array.values[i]
                 : sl_json_new_string(w->a, v->u.object.keys[i], strlen(v->u.object.keys[i]));
    s_sortctx_t c = { w, n };
    s_msort(&c, items, tmp, len);
    if (w->raised)
        return out;
    yajl_val l = sl_arena_alloc(w->a, sizeof *l);
    memset(l, 0, sizeof *l);
    l->type = yajl_t_array;
    l->u.array.len = len;
    l->u.array.values = items;
    s_push(w, &out, s_dat(w, l, NULL, "`this`"));
    return out;
}

/* ---- strings ---- */

static s_list_t
s_split(s_ev_t *w, const s_node_t *n, s_m_t *in)
{
    s_list_t out = { 0 };
    yajl_val v = in->value;
    if (v->type != yajl_t_string)
        return out;             /* AttributeError, caught: [] */
    const char *s = v->u.string, *sep = n->split_char;
    size_t sl = strlen(sep);
    long long seg = 0, splits = 0;
    const char *p = s;
    for (;;) {
        const char *q = (n->max_split < 0 || splits < n->max_split) ? strstr(p, sep) : NULL;
        const char *end = q ? q : p + strlen(p);
        if (seg == n->segment) {
            s_push(w, &out, s_dat(w, sl_json_new_string(w->a, p, (size_t) (end - p)), NULL,
                                  "`this`"));
            return out;
        }
        if (!q)
            return out;         /* IndexError, caught */
        seg++;
        splits++;
        p = q + sl;
    }
}

/* Python's re.sub template: \1..\99, \g<n>, \g<name>, \n \t ... escapes. */
static char *
s_expand(s_ev_t *w, const s_node_t *n, const char *subj, PCRE2_SIZE *ov, uint32_t nov,
         size_t *len)
{
    size_t cap = 64, o = 0;
    char *r = sl_xmalloc(cap);
    for (const char *p = n->repl; *p; p++) {
        const char *piece = p;
        size_t pl = 1;
        char c1;
        long grp = -1;
        if (*p == '\\' && p[1]) {
            p++;
            if (s_digit(*p)) {
                grp = *p - '0';
                if (s_digit(p[1]))
                    grp = grp * 10 + (*++p - '0');
            } else if (*p == 'g' && p[1] == '<') {
                const char *e = strchr(p, '>');
                if (!e)
                    goto bad;
                char name[64];
                size_t nl = (size_t) (e - p - 2);
                if (nl == 0 || nl >= sizeof name)
                    goto bad;
                memcpy(name, p + 2, nl);
                name[nl] = '\0';
                char *end;
                grp = strtol(name, &end, 10);
                if (*end) {
                    int no = pcre2_substring_number_from_name(n->re, (PCRE2_SPTR) name);
                    if (no <= 0)
                        goto bad;
                    grp = no;
                }
                p = e;
            } else {
                static const char esc[] = "n\nt\tr\rf\fv\va\ab\b\\\\";
                const char *m = strchr(esc, *p);
                if (m && (m - esc) % 2 == 0) {
                    c1 = m[1];
                    piece = &c1;
                } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
                    goto bad;   /* re.error: bad escape */
                } else {
                    piece = p - 1;
                    pl = 2;
                }
            }
        }
        if (grp >= 0) {
            if ((uint32_t) grp >= nov)
                goto bad;
            if (ov[2 * grp] == PCRE2_UNSET) {
                pl = 0;
            } else {
                piece = subj + ov[2 * grp];
                pl = ov[2 * grp + 1] - ov[2 * grp];
            }
        }
        while (o + pl + 1 > cap)
            r = sl_xrealloc(r, cap *= 2);
        memcpy(r + o, piece, pl);
        o += pl;
    }
    r[o] = '\0';
    *len = o;
    char *res = sl_arena_strndup(w->a, r, o);
    free(r);
    return res;
bad:
    free(r);
    return NULL;
}

static s_list_t
s_sub(s_ev_t *w, const s_node_t *n, s_m_t *in)
{
    s_list_t out = { 0 };
    yajl_val v = in->value;
    if (v->type != yajl_t_string)
        return s_raise(w);      /* re.sub on a non-string: TypeError */
    const char *s = v->u.string;
    size_t len = strlen(s), pos = 0, last = 0, cap = len + 64, o = 0;
    char *res = sl_xmalloc(cap);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(n->re, NULL);
    while (pos <= len) {
        int rc = pcre2_match(n->re, (PCRE2_SPTR) s, len, pos, 0, md, NULL);
        if (rc < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t el;
        char *rep = s_expand(w, n, s, ov, pcre2_get_ovector_count(md), &el);
        if (!rep) {
            pcre2_match_data_free(md);
            free(res);
            return s_raise(w);
        }
        size_t need = (ov[0] - last) + el;
        while (o + need + 1 > cap)
            res = sl_xrealloc(res, cap *= 2);
        memcpy(res + o, s + last, ov[0] - last);
        o += ov[0] - last;
        memcpy(res + o, rep, el);
        o += el;
        last = ov[1];
        if (ov[0] == ov[1]) {
            /* an empty match: copy one character and move on */
            if (ov[1] >= len)
                break;
            size_t cl = sl_py_prefix(s + ov[1], 1);
            while (o + cl + 1 > cap)
                res = sl_xrealloc(res, cap *= 2);
            memcpy(res + o, s + ov[1], cl);
            o += cl;
            last = ov[1] + cl;
            pos = last;
        } else {
            pos = ov[1];        /* an empty match may follow (Python 3.7+) */
        }
    }
    pcre2_match_data_free(md);
    if (last < len) {
        while (o + (len - last) + 1 > cap)
            res = sl_xrealloc(res, cap *= 2);
        memcpy(res + o, s + last, len - last);
        o += len - last;
    }
    res[o] = '\0';
    if (strcmp(res, s) != 0)
        s_push(w, &out, s_dat(w, sl_json_new_string(w->a, res, o), NULL, "`this`"));
    free(res);
    return out;
}

static s_list_t
s_find(s_ev_t *w, const s_node_t *n, s_m_t *in, int raw)
{
    s_list_t out = { 0 };
    if (w->raised)
        return out;
    if (!in) {
        /* Python's bare None (from `parent` at the top): most nodes wrap
         * it into a datum holding None; a sort reads .value and raises. */
        if (n->kind == N_SORTED || n->kind == N_DESCENDANTS)
            return s_raise(w);
        in = s_dat(w, w->none, NULL, "`this`");
        raw = 0;
    }
    switch (n->kind) {
    case N_ROOT: {
        s_m_t *top = in;
        while (top->context)
            top = top->context;
        s_push(w, &out, s_dat(w, top->value, NULL, "$"));
        return out;
    }
    case N_THIS:
        s_push(w, &out, raw ? s_dat(w, in->value, NULL, "`this`") : in);
        return out;
    case N_PARENT:
        s_push(w, &out, in->context);      /* NULL: Python's bare None */
        return out;
    case N_FIELDS:
        return s_fields_find(w, n, in);
    case N_INDEX:
        return s_index(w, in, n->index);
    case N_SLICE:
        return s_slice(w, in, n);
    case N_CHILD: {
        s_list_t l = s_find(w, n->left, in, raw);
        for (size_t i = 0; i < l.n && !w->raised; i++) {
            s_list_t r = s_find(w, n->right, l.v[i], 0);
            for (size_t k = 0; k < r.n; k++)
                s_push(w, &out, r.v[k]);
        }
        return out;
    }
    case N_DESCENDANTS: {
        s_list_t l = s_find(w, n->left, in, raw);
        for (size_t i = 0; i < l.n && !w->raised; i++) {
            if (!l.v[i])
                return s_raise(w);
            s_descend(w, n->right, l.v[i], &out);
        }
        return out;
    }
    case N_WHERE: {
        s_list_t l = s_find(w, n->left, in, raw);
        for (size_t i = 0; i < l.n && !w->raised; i++) {
            s_list_t r = s_find(w, n->right, l.v[i], 0);
            if (r.n)
                s_push(w, &out, l.v[i]);
        }
        return out;
    }
    case N_UNION: {
        s_list_t l = s_find(w, n->left, in, raw);
        s_list_t r = s_find(w, n->right, in, raw);
        for (size_t i = 0; i < l.n; i++)
            s_push(w, &out, l.v[i]);
        for (size_t i = 0; i < r.n; i++)
            s_push(w, &out, r.v[i]);
        return out;
    }
    case N_INTERSECT:
        return s_raise(w);      /* NotImplementedError */
    case N_FILTER:
        return s_filter(w, n, in);
    case N_OPERATION:
        return s_operation(w, n, in, raw);
    case N_LEN: {
        yajl_val v = in->value;
        if (v->type != yajl_t_array && v->type != yajl_t_object && v->type != yajl_t_string)
            return out;
        s_push(w, &out, s_dat(w, sl_py_new_int(w->a, (long long) s_len(v)), NULL, "`len`"));
        return out;
    }
    case N_SORTED:
        return s_sorted(w, n, in, raw);
    case N_SPLIT:
        return s_split(w, n, in);
    case N_SUB:
        return s_sub(w, n, in);
    }
    return out;
}

static yajl_val
s_null(sl_arena_t *a)
{
    yajl_val v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = yajl_t_null;
    return v;
}

long
sl_jsonpath_find(const sl_jsonpath_t *path, yajl_val root, sl_arena_t *a,
                 const sl_jsonpath_match_t ***out)
{
    static const sl_jsonpath_match_t *none[1];
    *out = none;
    if (!path || !root || !a)
        return 0;
    s_ev_t w = { .a = a };
    if (path->simple) {
        /* The same matches and paths, without lists. */
        s_m_t *m = s_dat(&w, root, NULL, path->simple_rooted ? "$" : "`this`");
        for (size_t i = 0; i < path->n_simple; i++) {
            if (m->value->type != yajl_t_object)
                return 0;
            yajl_val c = sl_json_get(m->value, path->simple_names[i]);
            if (!c)
                return 0;
            m = s_dat(&w, c, m, path->simple_names[i]);
        }
        const sl_jsonpath_match_t **res = sl_arena_alloc(a, sizeof *res);
        res[0] = m;
        *out = res;
        return 1;
    }
    w.none = s_null(a);
    w.base = sl_arena_bytes(a);
    s_list_t l = s_find(&w, path->root, s_dat(&w, root, NULL, "`this`"), 1);
    if (w.raised)
        return -1;
    *out = l.v ? l.v : none;
    return (long) l.n;
}

static void
s_path_of(sl_arena_t *a, const sl_jsonpath_match_t *m, char **buf, size_t *len, size_t *cap)
{
    if (!m->context)
        return;
    s_path_of(a, m->context, buf, len, cap);
    size_t pl = strlen(m->path);
    if (*len + pl + 2 > *cap) {
        size_t nc = (*cap + pl + 2) * 2;
        char *nb = sl_arena_alloc(a, nc);
        memcpy(nb, *buf, *len);
        *buf = nb;
        *cap = nc;
    }
    if (*len)
        (*buf)[(*len)++] = '.';
    memcpy(*buf + *len, m->path, pl);
    *len += pl;
    (*buf)[*len] = '\0';
}

const char *
sl_jsonpath_match_path(sl_arena_t *a, const sl_jsonpath_match_t *m)
{
    size_t len = 0, cap = 64;
    char *buf = sl_arena_alloc(a, cap);
    buf[0] = '\0';
    if (m)
        s_path_of(a, m, &buf, &len, &cap);
    return buf;
}

int
sl_jsonpath_walk(const sl_jsonpath_t *path, yajl_val root, sl_arena_t *a,
                 sl_jsonpath_visit_fn fn, void *ud)
{
    const sl_jsonpath_match_t **m;
    long n = sl_jsonpath_find(path, root, a, &m);
    if (n < 0)
        return -1;
    for (long i = 0; i < n; i++)
        if (!m[i])
            return -1;
    for (long i = 0; i < n; i++)
        if (fn(m[i]->value, ud))
            break;
    return 0;
}

/* ---- what a path reads under one top-level key ------------------------ */

/* Where the values a node is evaluated on (or yields) may be, as a set:
 * the document itself, the value of the top-level key asked about, or
 * anywhere else (other top-level values, anything deeper, computed
 * values). */
enum { P_DOC = 1, P_TOP = 2, P_ELSE = 4 };

typedef struct {
    const char *top;
    int         all;        /* may read anything under top */
    void      (*fn)(const char *key, void *ud);
    void       *ud;
} s_reads_t;

/* A value used whole: if it may be the document or top's value, all of
 * top is read. */
static int
s_used_whole(s_reads_t *r, int pos)
{
    if (pos & (P_DOC | P_TOP))
        r->all = 1;
    return pos ? P_ELSE : 0;
}

static int
s_reads(s_reads_t *r, const s_node_t *n, int pos)
{
    if (!n || !pos)
        return 0;
    switch (n->kind) {
    case N_ROOT:
        return P_DOC;
    case N_THIS:
        return pos;
    case N_PARENT:
        r->all = 1;     /* may climb from a key of top to top itself */
        return P_DOC | P_TOP | P_ELSE;
    case N_FIELDS: {
        int out = 0;
        if ((pos & (P_DOC | P_TOP)) && n->all_fields)
            r->all = 1;
        if (pos & P_DOC)
            for (size_t i = 0; i < n->n_fields; i++)
                out |= strcmp(n->fields[i], r->top) == 0 ? P_TOP : P_ELSE;
        if (pos & P_TOP)
            for (size_t i = 0; i < n->n_fields; i++)
                r->fn(n->fields[i], r->ud);
        if (n->all_fields && (pos & P_DOC))
            out |= P_TOP;
        if (pos & (P_TOP | P_ELSE) || n->all_fields)
            out |= P_ELSE;
        return out;
    }
    case N_CHILD:
        return s_reads(r, n->right, s_reads(r, n->left, pos));
    case N_WHERE: {
        int l = s_reads(r, n->left, pos);
        s_reads(r, n->right, l);
        return l;
    }
    case N_UNION:
        return s_reads(r, n->left, pos) | s_reads(r, n->right, pos);
    case N_INTERSECT:
        return 0;       /* raises before reading anything */
    case N_DESCENDANTS: {
        int l = s_reads(r, n->left, pos);
        s_used_whole(r, l);
        return s_reads(r, n->right, l | P_ELSE) | P_ELSE;
    }
    case N_OPERATION:
        /* operands are evaluated where the operation is and used whole
         * (their filter and sort targets start from each element, with
         * no way back up: they read nothing else) */
        s_used_whole(r, s_reads(r, n->a.path, pos));
        s_used_whole(r, s_reads(r, n->b.path, pos));
        return P_ELSE;
    case N_INDEX: case N_SLICE: case N_FILTER: case N_LEN: case N_SORTED: case N_SPLIT:
    case N_SUB:
        return s_used_whole(r, pos);
    }
    r->all = 1;
    return P_DOC | P_TOP | P_ELSE;
}

int
sl_jsonpath_reads_under(const sl_jsonpath_t *path, const char *top,
                        void (*fn)(const char *key, void *ud), void *ud)
{
    if (!path || !top || !fn)
        return 1;
    s_reads_t r = { .top = top, .fn = fn, .ud = ud };
    s_used_whole(&r, s_reads(&r, path->root, P_DOC));
    return r.all;
}
