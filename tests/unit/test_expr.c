/* test_expr — the transformer expression language follows Python 3 where
 * TRANSFORMERS.md says so (precedence, int/float rules, division by zero,
 * and/or operands, chained comparisons, the empty value of a missing key),
 * reads samples and resource_metadata in place, rejects what cannot be
 * evaluated safely at compile time, and rewrites arithmetic's $(meter). */
#include <check.h>

#include "tests/sl_check.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/expr.h"

static const sl_sample_t s_sample = {
    .id = "id-1", .name = "cpu", .type = "cumulative", .unit = "ns",
    .volume_json = "120000000000", .volume = 120000000000.0, .user_id = "u1",
    .project_id = NULL, .resource_id = "inst-1", .timestamp = "2024-05-01T12:00:00",
    .resource_metadata = "{\"cpu_number\": 4, \"state\": \"running\", \"zero\": 0, "
                         "\"user_metadata\": {}, \"flavor\": {\"vcpus\": 2, \"name\": \"m1\"}, "
                         "\"items\": [10, 20, {\"a\": 1}], \"esc\\\"key\": \"v\\u00e9\", "
                         "\"dup\": 1, \"dup\": 2, \"nothing\": null}",
    .source = "openstack", .monotonic_time = "5000.5",
};

static sl_arena_t s_scratch;
static sl_expr_t *s_kept[256];      /* results may point into their expression */
static size_t s_n_kept;

static void
s_setup(void)
{
    sl_arena_init(&s_scratch, 0);
}

static void
s_teardown(void)
{
    sl_arena_destroy(&s_scratch);
    for (size_t i = 0; i < s_n_kept; i++)
        sl_expr_destroy(&s_kept[i]);
    s_n_kept = 0;
}

/* Evaluates text against s_sample; fails the test on any error. */
static sl_xval_t
s_eval(const char *text)
{
    char err[256] = "";
    sl_expr_t *e = sl_expr_compile(text, NULL, 0, err, sizeof err);
    ck_assert_msg(e != NULL, "'%s' should compile, got: %s", text, err);
    sl_expr_env_t env = { .sample = &s_sample, .scratch = &s_scratch };
    sl_xval_t v;
    int rc = sl_expr_eval(e, &env, &v, err, sizeof err);
    ck_assert_msg(rc == 0, "'%s' should evaluate, got: %s", text, err);
    if (s_n_kept < sizeof s_kept / sizeof s_kept[0])
        s_kept[s_n_kept++] = e;
    else
        sl_expr_destroy(&e);
    return v;
}

static void
s_expect_int(const char *text, int64_t want)
{
    sl_xval_t v = s_eval(text);
    ck_assert_msg(v.kind == SL_XV_INT && v.u.i == want, "'%s': expected int %lld, got %s %lld/%g",
                  text, (long long) want, sl_expr_type_name(&v), (long long) v.u.i, v.u.f);
}

static void
s_expect_float(const char *text, double want)
{
    sl_xval_t v = s_eval(text);
    ck_assert_msg(v.kind == SL_XV_FLOAT, "'%s': expected a float, got %s", text,
                  sl_expr_type_name(&v));
    ck_assert_msg(v.u.f == want || fabs(v.u.f - want) <= 1e-12 * fabs(want),
                  "'%s': expected %.17g, got %.17g", text, want, v.u.f);
}

static void
s_expect_bool(const char *text, int want)
{
    sl_xval_t v = s_eval(text);
    ck_assert_msg(v.kind == SL_XV_BOOL && v.u.i == want, "'%s': expected %s, got %s", text,
                  want ? "True" : "False", sl_expr_type_name(&v));
}

static void
s_expect_str(const char *text, const char *want)
{
    sl_xval_t v = s_eval(text);
    ck_assert_msg(v.kind == SL_XV_STR && v.u.s.n == strlen(want) &&
                  memcmp(v.u.s.p, want, v.u.s.n) == 0, "'%s': expected '%s', got %s '%.*s'",
                  text, want, sl_expr_type_name(&v), v.kind == SL_XV_STR ? (int) v.u.s.n : 0,
                  v.kind == SL_XV_STR ? v.u.s.p : "");
}

/* Must compile, and fail at evaluation with a message containing what. */
static void
s_expect_eval_error(const char *text, const char *what)
{
    char err[256] = "";
    sl_expr_t *e = sl_expr_compile(text, NULL, 0, err, sizeof err);
    ck_assert_msg(e != NULL, "'%s' should compile, got: %s", text, err);
    sl_expr_env_t env = { .sample = &s_sample, .scratch = &s_scratch };
    sl_xval_t v;
    int rc = sl_expr_eval(e, &env, &v, err, sizeof err);
    sl_expr_destroy(&e);
    ck_assert_msg(rc < 0, "'%s' should fail with \"%s\", but gave a %s", text, what,
                  sl_expr_type_name(&v));
    ck_assert_msg(strstr(err, what) != NULL, "'%s': expected an error with \"%s\", got \"%s\"",
                  text, what, err);
}

static void
s_expect_compile_error(const char *text, const char *what)
{
    char err[256] = "";
    sl_expr_t *e = sl_expr_compile(text, NULL, 0, err, sizeof err);
    if (e)
        sl_expr_destroy(&e);
    ck_assert_msg(e == NULL, "'%s' should not compile", text);
    ck_assert_msg(strstr(err, what) != NULL, "'%s': expected a compile error with \"%s\", got \"%s\"",
                  text, what, err);
}

START_TEST(test_python_precedence_and_numbers)
{
    s_expect_int("2 + 3 * 4", 14);
    s_expect_int("(2 + 3) * 4", 20);
    s_expect_int("2 ** 3 ** 2", 512);           /* right-associative */
    s_expect_int("-2 ** 2", -4);                /* ** binds tighter than unary minus */
    s_expect_float("2 ** -1", 0.5);
    s_expect_int("10**9", 1000000000);
    s_expect_float("1 / 2", 0.5);               /* true division */
    s_expect_float("4 / 2", 2.0);
    s_expect_int("7 // 2", 3);
    s_expect_int("-7 // 2", -4);                /* floors toward -inf */
    s_expect_int("-7 % 3", 2);                  /* sign of the divisor */
    s_expect_int("7 % -3", -2);
    s_expect_float("7.5 // 2", 3.0);
    s_expect_float("-7.5 % 2", 0.5);
    s_expect_float("1.8 * 10 + 32", 50.0);
    s_expect_float("1e3 + .5", 1000.5);
    s_expect_int("1_000 + 0x10 + 0o10 + 0b11", 1000 + 16 + 8 + 3);
    s_expect_int("True + True", 2);             /* bool counts as int */
    s_expect_int("- - 3", 3);
    s_expect_float("9223372036854775807 + 1", 9223372036854775808.0);   /* 64-bit overflow */
    s_expect_float("1e308 * 10", INFINITY);     /* float overflow in * is silent */
}
END_TEST

START_TEST(test_errors_are_pythons)
{
    s_expect_eval_error("volume / 0", "division by zero");
    s_expect_eval_error("volume // 0", "integer division or modulo by zero");
    s_expect_eval_error("volume % 0", "integer division or modulo by zero");
    s_expect_eval_error("monotonic_time / 0", "float division by zero");
    s_expect_eval_error("monotonic_time % 0.0", "float modulo");
    s_expect_eval_error("monotonic_time ** 1000", "Numerical result out of range");
    s_expect_eval_error("resource_metadata.missing + 1", "unsupported operand type(s) for +: "
                        "'Namespace' and 'int'");
    s_expect_eval_error("resource_metadata.missing < 1", "not supported between instances");
    s_expect_eval_error("project_id * 2", "'NoneType' and 'int'");
    s_expect_eval_error("name - 1", "'str' and 'int'");
    s_expect_eval_error("-name", "bad operand type for unary -: 'str'");
    s_expect_eval_error("resource_metadata.cpu_number.x", "'int' object has no attribute 'x'");
    s_expect_eval_error("resource_metadata.items[7]", "list index out of range");
    /* a constant part that always fails is a compile error */
    s_expect_compile_error("volume * (1 / 0)", "division by zero");
    s_expect_compile_error("0.0 ** -1", "negative power");
}
END_TEST

START_TEST(test_boolean_operators_return_operands)
{
    s_expect_int("0 or 5", 5);
    s_expect_int("3 and 0", 0);
    s_expect_int("3 and 7", 7);
    s_expect_str("None or 'x'", "x");
    s_expect_bool("not 0", 1);
    s_expect_bool("not resource_metadata", 0);
    s_expect_bool("1 < 2 < 3", 1);
    s_expect_bool("1 < 3 < 2", 0);
    s_expect_bool("3 > 2 > 1 >= 1", 1);
    s_expect_bool("1 == 1.0", 1);
    s_expect_bool("1 != 1.0", 0);
    s_expect_int("1 if volume > 5 else 2", 1);
    s_expect_int("1 if volume < 5 else 2 if True else 3", 2);
    s_expect_bool("None == None", 1);
    s_expect_bool("'a' < 'b'", 1);
    s_expect_str("'a' 'b' + \"c\"", "abc");
    /* the empty value never equals anything, not even itself */
    s_expect_bool("resource_metadata.missing == resource_metadata.missing", 0);
    s_expect_bool("resource_metadata.missing != 1", 1);
    /* short-circuit: the right side is never evaluated */
    s_expect_int("0 and volume / 0", 0);
    s_expect_int("1 or volume / 0", 1);
}
END_TEST

START_TEST(test_sample_namespace)
{
    s_expect_int("volume", 120000000000LL);
    s_expect_float("monotonic_time", 5000.5);
    s_expect_str("name + '/' + resource_id", "cpu/inst-1");
    s_expect_int("resource_metadata.cpu_number", 4);
    s_expect_int("resource_metadata['cpu_number']", 4);
    s_expect_int("resource_metadata.flavor.vcpus", 2);
    s_expect_str("resource_metadata.flavor['name']", "m1");
    s_expect_int("resource_metadata.items[1]", 20);
    s_expect_int("resource_metadata.items[-3]", 10);
    s_expect_str("resource_metadata['esc\"key']", "v\xc3\xa9");
    s_expect_int("resource_metadata.dup", 2);               /* last one, as json.loads */
    s_expect_bool("resource_metadata.state == 'running'", 1);
    /* missing keys, nulls, zeros and empty objects are falsy */
    s_expect_int("resource_metadata.missing or 1", 1);
    s_expect_int("resource_metadata.non.existent or 7", 7);
    s_expect_int("resource_metadata.nothing or 3", 3);
    s_expect_int("resource_metadata.zero or 9", 9);
    s_expect_int("resource_metadata.user_metadata or 8", 8);
    s_expect_float("100.0 / (10**9 * (resource_metadata.cpu_number or 1))", 2.5e-8);
    sl_xval_t v = s_eval("project_id");
    ck_assert_int_eq(v.kind, SL_XV_NONE);
    v = s_eval("no_such_field");
    ck_assert_int_eq(v.kind, SL_XV_EMPTY);
    ck_assert(!sl_expr_truthy(&v));
    v = s_eval("resource_metadata");
    ck_assert_int_eq(v.kind, SL_XV_OBJ);
}
END_TEST

START_TEST(test_unsafe_or_unsupported_syntax_is_rejected)
{
    s_expect_compile_error("", "unexpected end");
    s_expect_compile_error("1 +", "unexpected end");
    s_expect_compile_error("float('nan')", "calls are not supported");
    s_expect_compile_error("min(1, 2)", "calls are not supported");
    s_expect_compile_error("lambda: 1", "lambda");
    s_expect_compile_error("resource_metadata.__class__", "'__'");
    s_expect_compile_error("__import__", "'__'");
    s_expect_compile_error("resource_metadata.class", "keyword");
    s_expect_compile_error("(1, 2)", "tuples");
    s_expect_compile_error("1 in resource_metadata", "'in' is not supported");
    s_expect_compile_error("'abc", "EOL");
    s_expect_compile_error("01", "leading zeros");
    s_expect_compile_error("1 2", "unexpected '2'");
    s_expect_compile_error("3j", "complex");
    s_expect_compile_error("a ; b", "unexpected character ';'");
    char deep[512];
    memset(deep, '(', 300);
    deep[300] = '1';
    memset(deep + 301, ')', 200);
    deep[501] = '\0';
    s_expect_compile_error(deep, "nested too deeply");
}
END_TEST



/* Evaluation recurses once per level of the tree: chains that parse
 * without nesting (`a + a + ...`, `a.b.c...`, `a ** a ** ...`) must be
 * bounded at compile time like parentheses are. */
START_TEST(test_expressions_deeper_than_the_limit_are_refused)
{
    static const struct { const char *term, *op; } chains[] = {
        { "volume", " + " }, { "volume", " * " }, { "volume", " and " }, { "volume", " < " },
        { "volume", " ** " }, { "resource_metadata", "." }, { "volume", " if volume else " },
    };
    for (size_t i = 0; i < sizeof chains / sizeof *chains; i++) {
        char *t = sl_check_chain(chains[i].term, chains[i].op, 257);
        char err[256] = "";
        sl_expr_t *e = sl_expr_compile(t, NULL, 0, err, sizeof err);
        ck_assert_msg(e == NULL, "257 levels of '%s' compiled", chains[i].op);
        ck_assert_msg(strstr(err, "nested too deeply: more than 256 levels") != NULL,
                      "257 levels of '%s': got \"%s\"", chains[i].op, err);
        free(t);
        t = sl_check_chain(chains[i].term, chains[i].op, 256);
        e = sl_expr_compile(t, NULL, 0, err, sizeof err);
        ck_assert_msg(e != NULL, "256 levels of '%s' should compile, got: %s", chains[i].op, err);
        sl_expr_env_t env = { .sample = &s_sample, .scratch = &s_scratch };
        sl_xval_t v;
        sl_expr_eval(e, &env, &v, err, sizeof err);     /* any result, no crash */
        sl_expr_destroy(&e);
        free(t);
    }
    /* The parser recurses through parentheses: as deep as the limit is fine. */
    char parens[600];
    memset(parens, '(', 255);
    parens[255] = '1';
    memset(parens + 256, ')', 255);
    parens[511] = '\0';
    s_expect_int(parens, 1);
    /* `**` recursed in the parser itself, without a bound. */
    char *t = sl_check_chain("volume", "**", 5000), err[256] = "";
    sl_expr_t *e = sl_expr_compile(t, NULL, 0, err, sizeof err);
    free(t);
    ck_assert_msg(e == NULL && strstr(err, "nested too deeply: more than 256 levels"),
                  "5,000 '**': got \"%s\"", err);
}
END_TEST

START_TEST(test_arithmetic_meters)
{
    sl_expr_meters_t m;
    sl_expr_meters_prepare("100.0 * $(memory.usage) / $(memory)", &m);
    ck_assert_str_eq(m.expr, "100.0 * _memory_usage_ESC.volume / memory.volume");
    ck_assert_uint_eq(m.n, 2);
    ck_assert_str_eq(m.meters[0], "memory.usage");      /* the reference meter */
    ck_assert_str_eq(m.idents[0], "_memory_usage_ESC");
    ck_assert_str_eq(m.meters[1], "memory");
    ck_assert_str_eq(m.idents[1], "memory");
    sl_expr_meters_free(&m);

    sl_expr_meters_prepare("$(cpu_util) * $(cpu_util).resource_metadata.vcpus / 100", &m);
    ck_assert_str_eq(m.expr, "cpu_util.volume * cpu_util.resource_metadata.vcpus / 100");
    ck_assert_uint_eq(m.n, 1);
    sl_expr_meters_free(&m);

    sl_expr_meters_prepare("$(class) + $(xESC) + $(a-b) + $() + 512", &m);
    ck_assert_str_eq(m.expr, "_class_ESC.volume + _xESC_ESC.volume + a-b.volume + $() + 512");
    ck_assert_uint_eq(m.n, 3);
    sl_expr_meters_free(&m);

    sl_expr_meters_prepare("512.0 * 3", &m);
    ck_assert_uint_eq(m.n, 0);
    sl_expr_meters_free(&m);

    /* evaluation over variables bound to samples */
    sl_expr_meters_prepare("100.0 * $(memory.usage) / $(memory) + $(memory).resource_metadata.k",
                           &m);
    char err[256];
    sl_expr_t *e = sl_expr_compile(m.expr, (const char *const *) m.idents, m.n, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    sl_sample_t usage = { .name = "memory.usage", .volume_json = "512", .volume = 512,
                          .resource_metadata = "{}" };
    sl_sample_t total = { .name = "memory", .volume_json = "2048.0", .volume = 2048,
                          .resource_metadata = "{\"k\": 1}" };
    const sl_sample_t *vars[2] = { &usage, &total };
    sl_expr_env_t env = { .vars = vars, .scratch = &s_scratch };
    sl_xval_t v;
    ck_assert_msg(sl_expr_eval(e, &env, &v, err, sizeof err) == 0, "%s", err);
    double d;
    ck_assert_int_eq(sl_expr_number(&v, &d, err, sizeof err), 0);
    ck_assert_msg(d == 26.0, "expected 26.0, got %g", d);
    total.volume_json = "0";
    total.volume = 0;
    ck_assert_int_eq(sl_expr_eval(e, &env, &v, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "float division by zero"), "got %s", err);
    sl_expr_destroy(&e);
    sl_expr_meters_free(&m);
}
END_TEST

START_TEST(test_json_get)
{
    const char *vp;
    size_t vn;
    const char *obj = " { \"a\" : [1, {\"b\": \"}\"}], \"c\\u0041\": true } ";
    ck_assert_int_eq(sl_expr_json_get(obj, strlen(obj), "a", 1, &vp, &vn), 1);
    ck_assert_int_eq(strncmp(vp, "[1, {\"b\": \"}\"}]", vn), 0);
    ck_assert_int_eq(sl_expr_json_get(obj, strlen(obj), "cA", 2, &vp, &vn), 1);
    ck_assert_int_eq(strncmp(vp, "true", vn), 0);
    ck_assert_int_eq(sl_expr_json_get(obj, strlen(obj), "b", 1, &vp, &vn), 0);
    ck_assert_int_eq(sl_expr_json_get("{\"a\": ", 6, "a", 1, &vp, &vn), -1);
    ck_assert_int_eq(sl_expr_json_get("[]", 2, "a", 1, &vp, &vn), -1);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("expr");
    TCase *tc = tcase_create("expr");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_python_precedence_and_numbers);
    tcase_add_test(tc, test_errors_are_pythons);
    tcase_add_test(tc, test_boolean_operators_return_operands);
    tcase_add_test(tc, test_sample_namespace);
    tcase_add_test(tc, test_unsafe_or_unsupported_syntax_is_rejected);
    tcase_add_test(tc, test_arithmetic_meters);
    tcase_add_test(tc, test_json_get);
    tcase_add_test(tc, test_expressions_deeper_than_the_limit_are_refused);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
