/* test_jsonpath — the supported JSONPath subset, with jsonpath-rw-ext
 * 1.2.2's results (each expectation below was checked against
 * jsonpath_rw_ext.parser.ExtentedJsonPathParser on the same document),
 * including where it raises and what its lexer refuses. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/jsonpath.h"

static const char s_doc_text[] =
    "{\"ctxt\":{\"user\":\"u\"},\"publisher_id\":\"p\",\"event_type\":\"e\","
    "\"payload\":{\"a\":{\"b\":1,\"c\":[1,2]},\"true_x\":3,\"foo-bar\":4,"
    "\"l\":[1,null,3,[5,6],{\"b\":7}],\"s\":\"h\xc3\xa9llo\",\"d\":{},\"n\":null,\"e\":[],"
    "\"f\":2.5,\"i\":7,\"t\":true,\"dot.key\":8,\"where\":9,\"@x\":10,\"x@y\":11},"
    "\"metadata\":{\"message_id\":\"m\",\"timestamp\":\"t\"}}";

static sl_arena_t s_a;
static yajl_val s_doc;

static void
s_setup(void)
{
    char err[256];
    sl_arena_init(&s_a, 0);
    s_doc = sl_json_parse(&s_a, s_doc_text, strlen(s_doc_text), 0, err, sizeof err);
    ck_assert_msg(s_doc != NULL, "%s", err);
}

static void
s_teardown(void)
{
    sl_arena_destroy(&s_a);
}

typedef struct {
    yajl_gen g;
} s_acc_t;

static int
s_acc(yajl_val v, void *ud)
{
    sl_json_gen_val(((s_acc_t *) ud)->g, v);
    return 0;
}

/* All matches as a JSON array, "RAISE" where jsonpath-rw-ext raises, or
 * "ERR: <message>" when the expression does not compile. */
static const char *
s_run(const char *expr)
{
    char err[512];
    sl_jsonpath_t *p = sl_jsonpath_compile(expr, err, sizeof err);
    if (!p)
        return sl_arena_printf(&s_a, "ERR: %s", err);
    s_acc_t acc = { yajl_gen_alloc(NULL) };
    yajl_gen_array_open(acc.g);
    int rc = sl_jsonpath_walk(p, s_doc, &s_a, s_acc, &acc);
    yajl_gen_array_close(acc.g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(acc.g, &buf, &len);
    const char *out = rc < 0 ? "RAISE" : sl_arena_strndup(&s_a, (const char *) buf, len);
    yajl_gen_free(acc.g);
    sl_jsonpath_destroy(&p);
    return out;
}

static void
s_expect(const char *expr, const char *want)
{
    const char *got = s_run(expr);
    ck_assert_msg(strcmp(got, want) == 0, "%s: expected %s, got %s", expr, want, got);
}

static void
s_expect_error(const char *expr, const char *fragment)
{
    const char *got = s_run(expr);
    ck_assert_msg(strncmp(got, "ERR: ", 5) == 0 && strstr(got, fragment),
                  "%s: expected an error mentioning '%s', got %s", expr, fragment, got);
}

START_TEST(test_plain_paths_with_or_without_root)
{
    s_expect("$.payload.a.b", "[1]");
    s_expect("payload.a.b", "[1]");
    s_expect(" $ . payload\n.a. b ", "[1]");
    s_expect("$.payload.missing", "[]");
    s_expect("$.payload.n", "[null]");
    s_expect("$.payload.s.x", "[]");
    s_expect("$.payload.l.b", "[]");
    s_expect("$", s_run("$"));
    s_expect("$.payload.foo-bar", "[4]");
    s_expect("$.payload.@x", "[10]");
    s_expect("$.payload.x@y", "[11]");
}
END_TEST

START_TEST(test_quoted_and_bracketed_names)
{
    s_expect("$.payload.'dot.key'", "[8]");
    s_expect("$.payload.\"a\".b", "[1]");
    s_expect("$['payload']['a']['b']", "[1]");
    s_expect("$.payload[a].b", "[1]");
    s_expect("$.payload.['a'].b", "[1]");
    s_expect("$.payload.'true_x'", "[3]");
    s_expect("$.payload.'where'", "[9]");
    s_expect("$.payload.'it\\'s'", "[]");
    s_expect("$.payload.''", "[]");
}
END_TEST

START_TEST(test_several_names_select_in_the_order_written)
{
    s_expect("$.payload.i,f", "[7,2.5]");
    s_expect("$.payload[i,missing,t]", "[7,true]");
    s_expect("payload,publisher_id", s_run("$['payload','publisher_id']"));
    s_expect("$.payload['*'].b", "[1]");        /* a quoted '*' still means all */
}
END_TEST

START_TEST(test_indexes_follow_python)
{
    s_expect("$.payload.l[0]", "[1]");
    s_expect("$.payload.l[-1]", "[{\"b\":7}]");
    s_expect("$.payload.l[-5]", "[1]");
    s_expect("$.payload.l[5]", "[]");
    s_expect("$.payload.l.[3][1]", "[6]");
    s_expect("$.payload.l[ 00 ]", "[1]");
    s_expect("$.payload.l[99999999999999999999]", "[]");
    s_expect("$.payload.s[1]", "[\"\xc3\xa9\"]");   /* a character, not a byte */
    s_expect("$.payload.s[-1]", "[\"o\"]");
    s_expect("$.payload.d[0]", "[]");               /* len({}) > 0 is false */
    s_expect("$.payload.e[0]", "[]");
}
END_TEST

START_TEST(test_where_python_raises_the_walk_fails)
{
    s_expect("$.payload.l[-6]", "RAISE");           /* IndexError */
    s_expect("$.payload.e[-1]", "RAISE");
    s_expect("$.payload.a[0]", "RAISE");            /* KeyError: dict[0] */
    s_expect("$.payload.n[0]", "RAISE");            /* len(None) */
    s_expect("$.payload.i[0]", "RAISE");
    s_expect("$.payload.t[0]", "RAISE");
    s_expect("$.payload.l[*][0]", "RAISE");         /* 1[0] on the first element */
    s_expect("$.payload.f[*]", "RAISE");            /* len(2.5) */
    s_expect("$.payload.n[*]", "RAISE");
    s_expect("$.payload.l[-99999999999999999999]", "RAISE");
    /* The lenient evaluation skips what raises. */
    sl_jsonpath_t *p = sl_jsonpath_compile("$.payload.*[0]", NULL, 0);
    ck_assert_ptr_nonnull(p);
    yajl_val out[8];
    /* only l[0]: the others raise, and s[0] needs an arena to make "h" */
    ck_assert_uint_eq(sl_jsonpath_eval(p, s_doc, out, 8), 1);
    sl_jsonpath_destroy(&p);
}
END_TEST

START_TEST(test_star_forms_differ_as_in_jsonpath_rw)
{
    s_expect("$.payload.l[*]", "[1,null,3,[5,6],{\"b\":7}]");
    s_expect("$.payload.l.[*]", "[1,null,3,[5,6],{\"b\":7}]");
    s_expect("$.payload.a[*].b", "[1]");            /* [*] wraps a dict in a list */
    s_expect("$.payload.s[*]", "[\"h\xc3\xa9llo\"]");
    s_expect("$.payload.i[*]", "[7]");
    s_expect("$.payload.t[*]", "[true]");
    s_expect("$.payload.a.*", "[1,[1,2]]");         /* .* gives a dict's values */
    s_expect("$.payload.l.*", "[]");
    s_expect("$.payload.s.*", "[]");
    s_expect("$.payload.*.b", "[1]");
    s_expect("$.payload.a.c[*]", "[1,2]");
}
END_TEST

START_TEST(test_unsupported_constructs_say_so)
{
    s_expect_error("$.payload..b", "descendants (`..`) not supported yet");
    s_expect_error("$.payload.metrics[?(@.name='cpu')].value", "filters");
    s_expect_error("$.payload.a | $.payload.b", "unions (`|`) not supported yet");
    s_expect_error("$.payload.a & $.payload.b", "intersections");
    s_expect_error("$.payload.value * 100", "arithmetic (`+ - * /`) not supported yet");
    s_expect_error("$.payload.host + \"_\" + $.payload.nodename", "arithmetic");
    s_expect_error("$.payload.outcome - $.payload.outcome", "arithmetic");
    s_expect_error("$.payload.name_to_id.`split(#, 0, 1)`", "functions");
    s_expect_error("$.payload.l[1:2]", "slices");
    s_expect_error("$.payload.a where b", "`where`");
    s_expect_error("$.payload.l[1.5]", "decimal number");
    s_expect_error("($.payload.a)", "parentheses");
    s_expect_error("B/s", "sorting");
}
END_TEST

START_TEST(test_lexer_quirks_of_jsonpath_rw_ext)
{
    /* t_BOOL precedes t_ID: an unquoted name starting with true/false is a
     * boolean followed by a name, a parse error in Ceilometer too. */
    s_expect_error("$.payload.true_x", "starting with `true` or `false`");
    s_expect_error("falsehood", "starting with `true` or `false`");
    s_expect("$.payload.truthy", "[]");
    s_expect_error("$.payload.where", "`where`");
}
END_TEST

START_TEST(test_syntax_errors)
{
    static const char *bad[] = {
        "", "$payload", "$.payload.", ".payload", "$.payload.1", "$.payload.a b", "%",
        "$.payload['a'", "$.payload['a]", "$.payload.l[+1]", "$.payload[]", "$.payload.l[1,2]",
        "payload\r.a", ("\xc2\xb0" "C"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        sl_jsonpath_t *p = sl_jsonpath_compile(bad[i], err, sizeof err);
        ck_assert_msg(p == NULL, "'%s' must not compile", bad[i]);
        ck_assert_msg(err[0] != '\0', "'%s': no message", bad[i]);
    }
    ck_assert_ptr_null(sl_jsonpath_compile(NULL, NULL, 0));
}
END_TEST

START_TEST(test_eval_counts_beyond_max_and_first)
{
    sl_jsonpath_t *p = sl_jsonpath_compile("$.payload.l[*]", NULL, 0);
    yajl_val out[2];
    ck_assert_uint_eq(sl_jsonpath_eval(p, s_doc, out, 2), 5);
    ck_assert_str_eq(out[0]->u.number.r, "1");
    ck_assert(out[1]->type == yajl_t_null);
    ck_assert_uint_eq(sl_jsonpath_eval(p, s_doc, NULL, 0), 5);
    ck_assert_str_eq(sl_jsonpath_first(p, s_doc)->u.number.r, "1");
    ck_assert_str_eq(sl_jsonpath_text(p), "$.payload.l[*]");
    ck_assert_ptr_null(sl_jsonpath_first(p, NULL));
    sl_jsonpath_destroy(&p);
    ck_assert_ptr_null(p);
    sl_jsonpath_destroy(&p);
}
END_TEST

START_TEST(test_head_rewriting)
{
    sl_jsonpath_t *p = sl_jsonpath_compile("$.ctxt['user'].x", NULL, 0);
    ck_assert_uint_eq(sl_jsonpath_nsteps(p), 3);
    ck_assert_str_eq(sl_jsonpath_step_key(p, 0), "ctxt");
    ck_assert_str_eq(sl_jsonpath_step_key(p, 1), "user");
    ck_assert_int_eq(sl_jsonpath_replace_head(p, 2, "publisher_id"), 0);
    ck_assert_uint_eq(sl_jsonpath_nsteps(p), 2);
    ck_assert_str_eq(sl_jsonpath_step_key(p, 0), "publisher_id");
    ck_assert_int_eq(sl_jsonpath_replace_head(p, 3, "x"), -1);
    sl_jsonpath_destroy(&p);
    p = sl_jsonpath_compile("$.ctxt.user", NULL, 0);
    sl_jsonpath_replace_head(p, 2, "publisher_id");
    ck_assert_str_eq(sl_jsonpath_first(p, s_doc)->u.string, "p");
    sl_jsonpath_destroy(&p);
    p = sl_jsonpath_compile("$.payload.*[0]", NULL, 0);
    ck_assert_ptr_null(sl_jsonpath_step_key(p, 1));
    ck_assert_ptr_null(sl_jsonpath_step_key(p, 2));
    ck_assert_ptr_null(sl_jsonpath_step_key(p, 9));
    sl_jsonpath_destroy(&p);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("jsonpath");
    TCase *tc = tcase_create("jsonpath");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_plain_paths_with_or_without_root);
    tcase_add_test(tc, test_quoted_and_bracketed_names);
    tcase_add_test(tc, test_several_names_select_in_the_order_written);
    tcase_add_test(tc, test_indexes_follow_python);
    tcase_add_test(tc, test_where_python_raises_the_walk_fails);
    tcase_add_test(tc, test_star_forms_differ_as_in_jsonpath_rw);
    tcase_add_test(tc, test_unsupported_constructs_say_so);
    tcase_add_test(tc, test_lexer_quirks_of_jsonpath_rw_ext);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_eval_counts_beyond_max_and_first);
    tcase_add_test(tc, test_head_rewriting);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
