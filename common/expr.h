/* expr — the small, safe expression language of Ceilometer's transformers
 * (`target.scale` and arithmetic's `expr`), compiled once at configuration
 * load and evaluated per sample or per flush without any allocation beyond
 * the caller's scratch arena.
 *
 * It is the subset of Python 3 that TRANSFORMERS.md section 3.3 specifies:
 * int/float/True/False/None and string literals, `+ - * / // % **`, unary
 * `- + not`, comparisons (chained as in Python), `and`/`or` returning an
 * operand, `X if C else Y`, parentheses, names, attributes `a.b.c` and
 * subscripts `x["k"]` (an integer subscript indexes a JSON array). Python
 * numeric rules: ints stay ints (64-bit; a result that overflows becomes a
 * float, where Python would keep an exact big int), `/` is true division,
 * `//` floors, `%` takes the divisor's sign, division by zero is an error.
 * A missing name or key is the *empty value* (Ceilometer's empty Namespace):
 * falsy, an error in arithmetic or ordering, never equal to anything.
 * Nothing can be called and no `__dunder__` name can be reached: function
 * calls, lambdas and the like are syntax errors here.
 *
 * Names resolve against one of two namespaces, chosen at compile time:
 * the fields of one sample (scale expressions: `volume`, `resource_metadata.x`,
 * ...), or a list of variables each bound to a sample at evaluation
 * (arithmetic: `_memory_usage_ESC.volume`). sl_expr_t is immutable after
 * compile and may be shared; values an evaluation returns point into the
 * sample, the expression or env->scratch. Any process. */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include <stddef.h>
#include <stdint.h>
#include "common/arena.h"
#include "common/sample.h"

typedef enum {
    SL_XV_EMPTY,        /* missing name or key */
    SL_XV_NONE,
    SL_XV_BOOL,         /* u.i is 0 or 1 */
    SL_XV_INT,
    SL_XV_FLOAT,
    SL_XV_STR,          /* u.s: not NUL-terminated */
    SL_XV_OBJ,          /* u.s: the text of a JSON object, a namespace */
    SL_XV_LIST,         /* u.s: the text of a JSON array */
    SL_XV_SAMPLE,       /* u.sample: the namespace of a sample */
} sl_xkind_t;

typedef struct {
    sl_xkind_t kind;
    union {
        int64_t i;
        double  f;
        struct {
            const char *p;
            size_t      n;
        } s;
        const sl_sample_t *sample;
    } u;
} sl_xval_t;

typedef struct sl_expr sl_expr_t;

/* Longest text, and deepest nesting (parentheses and operators, and levels
 * of the compiled tree, which evaluation recurses through) of an
 * expression; more is a compile error. */
#define SL_EXPR_MAX_TEXT  65536
#define SL_EXPR_MAX_DEPTH 256

/* Compiles text. vars NULL: names are sample fields (sl_expr_env_t.sample);
 * else names are the n_vars variables (env.vars[i] binds vars[i]) and any
 * other name is empty. Constant sub-expressions are folded; one that can
 * only fail (`1/0`) is a compile error. NULL with a one-line message
 * ("syntax error at column 7: ...") in err. */
sl_expr_t *sl_expr_compile(const char *text, const char *const *vars, size_t n_vars,
                           char *err, size_t errlen);
void sl_expr_destroy(sl_expr_t **e_p);
/* The text it was compiled from. */
const char *sl_expr_text(const sl_expr_t *e);

typedef struct {
    const sl_sample_t *sample;           /* field namespace */
    const sl_sample_t *const *vars;      /* variable namespaces (NULL entry = empty) */
    sl_arena_t *scratch;                 /* decoded strings; reset by the caller */
} sl_expr_env_t;

/* 0 with the result in *out, or -1 with Python's reason in err (e.g.
 * "float division by zero", "unsupported operand type(s) for *: 'float'
 * and 'Namespace'"). */
int sl_expr_eval(const sl_expr_t *e, const sl_expr_env_t *env, sl_xval_t *out,
                 char *err, size_t errlen);

/* Python's bool(v). */
int sl_expr_truthy(const sl_xval_t *v);
/* float(v) of a number or bool: 0, or -1 with a reason. */
int sl_expr_number(const sl_xval_t *v, double *out, char *err, size_t errlen);
/* Python type name of v ("int", "Namespace", ...), for messages. */
const char *sl_expr_type_name(const sl_xval_t *v);

/* Arithmetic's `$(meter)` references (TRANSFORMERS.md section 9): the
 * expression rewritten with identifiers (`$(a.b)` -> `_a_b_ESC.volume`,
 * `$(m).resource_metadata.x` -> `m.resource_metadata.x`), the meter names
 * in first-appearance order (meters[0] is the reference meter) and each
 * one's identifier. All strings malloc'd; sl_expr_meters_free releases. */
typedef struct {
    char   *expr;
    size_t  n;
    char  **meters;
    char  **idents;
} sl_expr_meters_t;

void sl_expr_meters_prepare(const char *text, sl_expr_meters_t *out);
void sl_expr_meters_free(sl_expr_meters_t *m);

/* Looks key up in the JSON object text obj[0..n): 1 and the value's text
 * span in *val and *val_n (the last one if the key repeats, as Python's json
 * keeps), 0 if absent, -1 if obj is not a well-formed object. */
int sl_expr_json_get(const char *obj, size_t n, const char *key, size_t key_n,
                     const char **val, size_t *val_n);

#endif
