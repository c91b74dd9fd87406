/* test_jsonpath — JSONPath as jsonpath-rw-ext 1.2.2 reads and evaluates it.
 *
 * The table below was produced by running jsonpath_rw_ext's
 * ExtentedJsonPathParser (Debian's python3-jsonpath-rw-ext, what Ceilometer
 * 19 runs) on each expression and the document s_doc_text: the values it
 * finds, "RAISE" where find() raises, "ERR" where parsing fails. sluice
 * must give the same for every line. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/jsonpath.h"

static const char s_doc_text[] = "{\"ctxt\":{\"user\":\"u\",\"user_id\":null,\"tenant_id\":\"t\"},\"publisher_id\":\"compute.host-1.x\",\"event_type\":\"e\",\"payload\":{\"a\":{\"b\":1,\"c\":[1,2]},\"true_x\":3,\"foo-bar\":4,\"l\":[1,null,3,[5,6],{\"b\":7}],\"s\":\"h\xc3\xa9llo\",\"d\":{},\"n\":null,\"e\":[],\"f\":2.5,\"i\":7,\"t\":true,\"dot.key\":8,\"where\":9,\"@x\":10,\"x@y\":11,\"m\":[{\"name\":\"cpu.a\",\"value\":0.25,\"ts\":\"x\"},{\"name\":\"cpu.b\",\"value\":\"7\"},{\"name\":\"mem\",\"value\":1}],\"gm\":[{\"key\":\"image_id\",\"value\":\"img\"},{\"key\":\"k\",\"value\":1}],\"host\":\"h1\",\"node\":\"n1\",\"outcome\":\"success\",\"id\":\"pool@host#be\",\"ls\":[\"b\",\"a\",\"c\"]},\"metadata\":{\"message_id\":\"m\",\"timestamp\":\"t\"}}";

static const struct {
    const char *expr, *want;
} s_cases[] = {
    { "$.payload.a.b", "[1]" },
    { "payload.a.b", "[1]" },
    { " $ . payload\n.a. b ", "[1]" },
    { "$.payload.missing", "[]" },
    { "$.payload.n", "[null]" },
    { "$.payload.s.x", "[]" },
    { "$.payload.l.b", "[]" },
    { "$.payload.foo-bar", "[4]" },
    { "$.payload.@x", "[10]" },
    { "$.payload.x@y", "[11]" },
    { "$.payload.'dot.key'", "[8]" },
    { "$.payload.\"a\".b", "[1]" },
    { "$['payload']['a']['b']", "[1]" },
    { "$.payload[a].b", "[1]" },
    { "$.payload.['a'].b", "[1]" },
    { "$.payload.'true_x'", "[3]" },
    { "$.payload.'where'", "[9]" },
    { "$.payload.i,f", "[7,2.5]" },
    { "$.payload[i,missing,t]", "[7,true]" },
    { "$.payload['*'].b", "[1]" },
    { "$.payload.l[0]", "[1]" },
    { "$.payload.l[-1]", "[{\"b\":7}]" },
    { "$.payload.l[-5]", "[1]" },
    { "$.payload.l[5]", "[]" },
    { "$.payload.l.[3][1]", "[6]" },
    { "$.payload.l[ 00 ]", "[1]" },
    { "$.payload.l[99999999999999999999]", "[]" },
    { "$.payload.s[1]", "[\"\xc3\xa9\"]" },
    { "$.payload.s[-1]", "[\"o\"]" },
    { "$.payload.d[0]", "[]" },
    { "$.payload.e[0]", "[]" },
    { "$.payload.l[-6]", "RAISE" },
    { "$.payload.e[-1]", "RAISE" },
    { "$.payload.a[0]", "RAISE" },
    { "$.payload.n[0]", "RAISE" },
    { "$.payload.i[0]", "RAISE" },
    { "$.payload.t[0]", "RAISE" },
    { "$.payload.l[*][0]", "RAISE" },
    { "$.payload.f[*]", "RAISE" },
    { "$.payload.n[*]", "RAISE" },
    { "$.payload.l[-99999999999999999999]", "RAISE" },
    { "$.payload.l[*]", "[1,null,3,[5,6],{\"b\":7}]" },
    { "$.payload.l.[*]", "[1,null,3,[5,6],{\"b\":7}]" },
    { "$.payload.a[*].b", "[1]" },
    { "$.payload.s[*]", "[\"h\xc3\xa9llo\"]" },
    { "$.payload.i[*]", "[7]" },
    { "$.payload.a.*", "[1,[1,2]]" },
    { "$.payload.l.*", "[]" },
    { "$.payload.*.b", "[1]" },
    { "$.payload.a.c[*]", "[1,2]" },
    { "$.payload.l[1:3]", "[null,3]" },
    { "$.payload.l[-2:]", "[[5,6],{\"b\":7}]" },
    { "$.payload..b", "[1,7]" },
    { "$.payload.m[?(@.name='cpu.a')].value", "[0.25]" },
    { "$.payload.m[?(@.name='cpu.b')].value", "[\"7\"]" },
    { "$.payload.gm[?key=image_id].value", "[\"img\"]" },
    { "$.payload.m[?value>2].name", "[\"cpu.b\"]" },
    { "$.payload.m[?value>2 & name~'cpu'].name", "[\"cpu.b\"]" },
    { "$.payload.m[?value<2.0].name", "RAISE" },
    { "$.payload.m[?(@.ts)].name", "[\"cpu.a\"]" },
    { "$.payload.m[?name<'z'].name", "[\"cpu.a\",\"cpu.b\",\"mem\"]" },
    { "$.payload.a.b|$.payload.i", "[7]" },
    { "$.payload.n|$.payload.i", "[7]" },
    { "ctxt.user_id|ctxt.user", "[]" },
    { "ctxt.project_id|ctxt.tenant_id", "[]" },
    { "$.payload.a & $.payload.b", "RAISE" },
    { "$.payload.m[?(@.name='cpu.a')].value * 100", "[25.0]" },
    { "$.payload.m[?(@.name='cpu.b')].value * 100", "[\"7777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777777\"]" },
    { "$.payload.f * 2", "[5.0]" },
    { "$.payload.i * $.payload.f", "[17.5]" },
    { "$.payload.s * 2", "[\"h\xc3\xa9lloh\xc3\xa9llo\"]" },
    { "$.payload.host + \"_\" + $.payload.node", "[\"h1_n1\"]" },
    { "$.payload.outcome - $.payload.outcome + 'identity.authenticate.' + $.payload.outcome", "[]" },
    { "'identity.authenticate.' + $.payload.outcome", "[\"identity.authenticate.success\"]" },
    { "$.payload.i - 10", "[-3]" },
    { "$.payload.l + $.payload.e", "[[1,null,3,[5,6],{\"b\":7}]]" },
    { "$.payload.d + 1", "[]" },
    { "$.payload.id.`split(#, 0, 1)`", "[\"pool@host\"]" },
    { "$.payload.id.`split(#, 1, 1)`", "[\"be\"]" },
    { "$.payload.id.`split(#, 2, 1)`", "[]" },
    { "$.publisher_id.`split(., 1, 1)`", "[\"host-1.x\"]" },
    { "$.publisher_id.`split(., 0, -1)`", "[\"compute\"]" },
    { "$.payload.s.`len`", "[5]" },
    { "$.payload.l.`len`", "[5]" },
    { "$.payload.ls.`sorted`", "[[\"a\",\"b\",\"c\"]]" },
    { "$.payload.m[/name].name", "[]" },
    { "$.payload.m[\name].name", "[]" },
    { "$.payload.l.`sorted`", "RAISE" },
    { "$.payload.s.`sub(/l+/, L)`", "[\"h\xc3\xa9Lo\"]" },
    { "$.payload.a.b.`parent`", "[{\"b\":1,\"c\":[1,2]}]" },
    { "$.payload.a.`this`.b", "[1]" },
    { "$.payload.a where b", "[{\"b\":1,\"c\":[1,2]}]" },
    { "$.payload.true_x", "ERR" },
    { "falsehood", "ERR" },
    { "$.payload.truthy", "[]" },
    { "$.payload.where", "ERR" },
    { "$.payload.l[1.5]", "ERR" },
    { "B/s", "ERR" },
    { "($.payload.a).b", "[1]" },
    { "$payload", "ERR" },
    { "$.payload.", "ERR" },
    { ".payload", "ERR" },
    { "$.payload.1", "ERR" },
    { "$.payload.a b", "ERR" },
    { "%", "ERR" },
    { "$.payload['a'", "ERR" },
    { "$.payload['a]", "ERR" },
    { "$.payload[]", "ERR" },
    { "payload\r.a", "ERR" },
    { "\xc2\xb0" "C", "ERR" },
    { "$.payload.`foo`", "ERR" },
    { "$.payload.`split(x)`", "ERR" },
};

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

static int
s_acc(yajl_val v, void *ud)
{
    sl_json_gen_val(ud, v);
    return 0;
}

/* All matches as a JSON array, "RAISE" where jsonpath-rw-ext raises, or
 * "ERR" when the expression does not compile. */
static const char *
s_run(const char *expr)
{
    char err[512];
    sl_jsonpath_t *p = sl_jsonpath_compile(expr, err, sizeof err);
    if (!p)
        return "ERR";
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_array_open(g);
    int rc = sl_jsonpath_walk(p, s_doc, &s_a, s_acc, g);
    yajl_gen_array_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    const char *out = rc < 0 ? "RAISE" : sl_arena_strndup(&s_a, (const char *) buf, len);
    yajl_gen_free(g);
    sl_jsonpath_destroy(&p);
    return out;
}

START_TEST(test_every_case_gives_what_jsonpath_rw_ext_gives)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const char *got = s_run(s_cases[i].expr);
        if (strcmp(got, s_cases[i].want) != 0) {
            fprintf(stderr, "JSONPath '%s': expected %s, got %s\n", s_cases[i].expr,
                    s_cases[i].want, got);
            bad++;
        }
    }
    ck_assert_msg(bad == 0, "%d expressions differ from jsonpath-rw-ext (listed above)", bad);
}
END_TEST

START_TEST(test_errors_say_where)
{
    char err[512] = "";
    ck_assert_ptr_null(sl_jsonpath_compile("$.payload.true_x", err, sizeof err));
    ck_assert_msg(strstr(err, "boolean") != NULL, "unexpected message: %s", err);
    ck_assert_ptr_null(sl_jsonpath_compile("$.payload.`nope`", err, sizeof err));
    ck_assert_msg(strstr(err, "unknown named operator") != NULL, "unexpected message: %s", err);
    ck_assert_ptr_null(sl_jsonpath_compile("$.x.`split(#, a, 1)`", err, sizeof err));
    ck_assert_msg(strstr(err, "not valid") != NULL, "unexpected message: %s", err);
    ck_assert_ptr_null(sl_jsonpath_compile("$.x.`sub(/(/, a)`", err, sizeof err));
    ck_assert_msg(strstr(err, "sub") != NULL, "unexpected message: %s", err);
    ck_assert_ptr_null(sl_jsonpath_compile("%", err, sizeof err));
    ck_assert_msg(strstr(err, "column 1") != NULL, "unexpected message: %s", err);
    ck_assert_ptr_null(sl_jsonpath_compile(NULL, err, sizeof err));
    ck_assert_ptr_null(sl_jsonpath_compile("", NULL, 0));
}
END_TEST

/* What trait plugins see as a match's path: '.'.join(_get_path(m)). */
START_TEST(test_match_paths_are_ceilometers)
{
    static const struct { const char *expr, *paths; } cases[] = {
        { "$.payload.a.b", "payload.a.b" },
        { "payload.a.b", "payload.a.b" },
        { "$.payload.l[1:3]", "payload.l.[1],payload.l.[2]" },
        { "$.payload.i[*]", "payload.i.[0]" },
        { "$.payload.m[?name~'cpu'].name", "payload.m.[0].name,payload.m.[1].name" },
        { "$.payload.a.*", "payload.a.b,payload.a.c" },
        { "$.payload.f * 2", "" },
        { "(payload.i)|(ctxt.user)", "payload.i,ctxt.user" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_jsonpath_t *p = sl_jsonpath_compile(cases[i].expr, NULL, 0);
        ck_assert_ptr_nonnull(p);
        const sl_jsonpath_match_t **m;
        long n = sl_jsonpath_find(p, s_doc, &s_a, &m);
        const char *got = "";
        for (long k = 0; k < n; k++)
            got = sl_arena_printf(&s_a, "%s%s%s", got, k ? "," : "",
                                  sl_jsonpath_match_path(&s_a, m[k]));
        ck_assert_msg(strcmp(got, cases[i].paths) == 0, "%s: expected paths %s, got %s",
                      cases[i].expr, cases[i].paths, got);
        sl_jsonpath_destroy(&p);
    }
}
END_TEST

START_TEST(test_walk_stops_and_destroy_is_idempotent)
{
    sl_jsonpath_t *p = sl_jsonpath_compile("$.payload.l[*]", NULL, 0);
    ck_assert_str_eq(sl_jsonpath_text(p), "$.payload.l[*]");
    const sl_jsonpath_match_t **m;
    ck_assert_int_eq(sl_jsonpath_find(p, s_doc, &s_a, &m), 5);
    ck_assert_int_eq(sl_jsonpath_find(p, NULL, &s_a, &m), 0);
    sl_jsonpath_destroy(&p);
    ck_assert_ptr_null(p);
    sl_jsonpath_destroy(&p);
    /* `parent` above the top is Python's bare None: reading it raises */
    p = sl_jsonpath_compile("`parent`", NULL, 0);
    ck_assert_int_eq(sl_jsonpath_find(p, s_doc, &s_a, &m), 1);
    ck_assert_ptr_null(m[0]);
    ck_assert_int_eq(sl_jsonpath_walk(p, s_doc, &s_a, s_acc, NULL), -1);
    sl_jsonpath_destroy(&p);
}
END_TEST



/* A balanced tree of (x)+(x) d levels deep: 2^(d+1) - 1 nodes. */
static char *
s_balanced(int d)
{
    if (d == 0)
        return strdup("a");
    char *x = s_balanced(d - 1);
    size_t n = 2 * strlen(x) + 8;
    char *t = malloc(n);
    snprintf(t, n, "(%s)+(%s)", x, x);
    free(x);
    return t;
}

/* `sluiced -t` accepted 100,000 chained `+` that then overflowed the stack
 * at the first notification (evaluation recurses once per level). */
START_TEST(test_paths_deeper_or_longer_than_the_limits_are_refused)
{
    char err[512] = "";
    char *t = sl_check_chain("a", "+", 100000);
    sl_jsonpath_t *p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p == NULL, "a JSONPath of 100,000 chained '+' compiled");
    ck_assert_msg(strstr(err, "nested more than 256 levels") != NULL, "got: %s", err);
    ck_assert_msg(strstr(err, "a+a+a") != NULL && strlen(err) < 300,
                  "the message should quote the start of the path, not all of it: %s", err);
    /* Left-deep chains too (`$.a.a.a...`). */
    t = sl_check_chain("a", ".", 100000);
    p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p == NULL && strstr(err, "nested more than 256 levels"), "got: %s", err);
    t = sl_check_chain("a", "|", 300);
    p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p == NULL && strstr(err, "nested more than 256 levels"), "got: %s", err);
    /* Parentheses nest too (they hold the parser's stack, not the tree). */
    t = malloc(200002);
    memset(t, '(', 100000);
    t[100000] = 'a';
    memset(t + 100001, ')', 100000);
    t[200001] = '\0';
    p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p == NULL && strstr(err, "nested more than 256 levels deep at column 258"),
                  "got: %s", err);
    /* Many nodes, shallow. */
    t = s_balanced(10);
    p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p == NULL && strstr(err, "more than 1000 terms"), "got: %s", err);
    /* At the limits: compiles and evaluates. `a+a` is one Operation of two
     * constants (a lone name is its text), so n terms nest n - 1 levels. */
    t = sl_check_chain("a", "+", 257);
    p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p != NULL, "256 levels should compile: %s", err);
    const sl_jsonpath_match_t **m;
    ck_assert_int_eq(sl_jsonpath_find(p, s_doc, &s_a, &m), 1);
    ck_assert_int_eq(m[0]->value->type, yajl_t_string);
    ck_assert_uint_eq(strlen(m[0]->value->u.string), 257);
    sl_jsonpath_destroy(&p);
    t = sl_check_chain("a", "+", 258);
    p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p == NULL && strstr(err, "nested more than 256 levels"), "got: %s", err);
    t = s_balanced(8);      /* 511 nodes */
    p = sl_jsonpath_compile(t, err, sizeof err);
    free(t);
    ck_assert_msg(p != NULL, "511 nodes should compile: %s", err);
    ck_assert_int_eq(sl_jsonpath_find(p, s_doc, &s_a, &m), 1);
    ck_assert_uint_eq(strlen(m[0]->value->u.string), 256);     /* 'a' + 'a' + ... */
    sl_jsonpath_destroy(&p);
}
END_TEST


/* What a decoder may leave out of a notification rests on this: for each
 * path, the keys it reads under the view's `ctxt`, or "all" whenever it may
 * see ctxt whole or cannot be bounded. */
static void
s_collect(const char *key, void *ud)
{
    char *out = ud, *save, copy[256];
    snprintf(copy, sizeof copy, "%s", out);
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, key) == 0)
            return;     /* a name may come twice */
    strcat(out, out[0] ? "," : "");
    strcat(out, key);
}

/* find(expr) over [0,0,...] of n zeros in an arena of its own; the arena
 * bytes find() took in *arena_bytes. */
static long
s_zeros(size_t n, const char *expr, size_t *arena_bytes)
{
    char *text = sl_xmalloc(2 * n + 2), err[256];
    text[0] = '[';
    for (size_t i = 0; i < n; i++) {
        text[1 + 2 * i] = '0';
        text[2 + 2 * i] = i + 1 < n ? ',' : ']';
    }
    sl_arena_t a;
    sl_arena_init(&a, 0);
    yajl_val doc = sl_json_parse(&a, text, 2 * n + 1, 0, err, sizeof err);
    ck_assert_msg(doc != NULL, "%s", err);
    sl_jsonpath_t *p = sl_jsonpath_compile(expr, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    size_t before = sl_arena_bytes(&a);
    const sl_jsonpath_match_t **m;
    long got = sl_jsonpath_find(p, doc, &a, &m);
    *arena_bytes = sl_arena_bytes(&a) - before;
    sl_jsonpath_destroy(&p);
    sl_arena_destroy(&a);
    free(text);
    return got;
}

/* Each `..` (and `$` after one) multiplies the matches by the document's
 * size: `$..$..$..$..$..d`, 16 bytes the fuzzer found, made this document's
 * ~70 values into 70^5 matches and ran out of memory (jsonpath-rw would
 * too). find() now raises once its matches and lists take
 * SL_JSONPATH_MAX_BYTES of the arena. */
START_TEST(test_matches_beyond_the_limit_raise_instead_of_exhausting_memory)
{
    char err[256];
    sl_jsonpath_t *p = sl_jsonpath_compile("$..$..$..$..$..d", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    const sl_jsonpath_match_t **m;
    size_t before = sl_arena_bytes(&s_a);
    ck_assert_int_eq(sl_jsonpath_find(p, s_doc, &s_a, &m), -1);
    /* the limit, and at most the last check's 4096 matches beyond it */
    ck_assert_uint_le(sl_arena_bytes(&s_a) - before, SL_JSONPATH_MAX_BYTES + (1u << 20));
    sl_jsonpath_destroy(&p);
    /* two descents stay within it here */
    p = sl_jsonpath_compile("$..$..b", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_gt(sl_jsonpath_find(p, s_doc, &s_a, &m), 0);
    sl_jsonpath_destroy(&p);

    /* `$..[*]` gives each element of [0,0,...] twice (the array's, then
     * each number's as a one-element list's), as jsonpath-rw-ext does:
     * 131,071 values (256 KiB) are within the limit, 524,287 (1 MiB, the
     * default max_message_size) are beyond it, as README says */
    size_t used;
    ck_assert_int_eq(s_zeros(131071, "$..[*]", &used), 2 * 131071);
    ck_assert_uint_le(used, SL_JSONPATH_MAX_BYTES);
    ck_assert_int_eq(s_zeros(524287, "$..[*]", &used), -1);
    ck_assert_uint_le(used, SL_JSONPATH_MAX_BYTES + (1u << 20));
}
END_TEST

START_TEST(test_reads_under_names_what_a_path_can_touch)
{
    static const struct {
        const char *path, *want;        /* want: "all", or the names read */
    } cases[] = {
        { "$.payload.user_id", "" },
        { "payload.user_id", "" },
        { "publisher_id", "" },
        { "$.ctxt.user_id", "user_id" },
        /* `|` binds tighter than `.`: ctxt.(user_id|ctxt).user */
        { "ctxt.user_id|ctxt.user", "user_id,ctxt" },
        { "(ctxt.user_id)|(ctxt.user)", "user_id,user" },
        { "ctxt.a|ctxt.a", "a,ctxt" },
        { "(payload.tenant_id)|(ctxt.project_id)", "project_id" },
        { "$.ctxt.roles[0]", "roles" },
        { "$.ctxt.auth.token", "auth" },
        { "$.ctxt.'quoted key'", "quoted key" },
        { "$.payload.items[?key=ctxt].value", "" },
        { "$.payload.a + $.ctxt.b", "b" },
        { "$.payload.a.`parent`.b", "all" },
        { "$.ctxt", "all" },
        { "ctxt", "all" },
        { "$", "all" },
        { "`this`", "all" },
        { "$.*", "all" },
        { "$.ctxt.*", "all" },
        { "$..user_id", "all" },
        { "$.ctxt..x", "all" },
        { "$.ctxt.`len`", "all" },
        { "$.payload.x.$.ctxt.y", "y" },
        { "$.payload.x.$.ctxt", "all" },
        { "$.payload[*].ctxt", "" },
        /* `where` binds tightest: $.payload.(a where $).ctxt.b */
        { "$.payload.a where $.ctxt.b", "" },
        { "($.payload.a) where ($.ctxt.b)", "b" },
        { "($.ctxt.a) where (b)", "a" },
        { "$.payload.tags.`sorted`", "" },
        { "$[0]", "all" },
        { "$.ctxt.name.`sub(/a/, b)`", "name" },
        { "$.payload.a & $.ctxt.b", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256], got[256] = "";
        sl_jsonpath_t *p = sl_jsonpath_compile(cases[i].path, err, sizeof err);
        ck_assert_msg(p != NULL, "%s: %s", cases[i].path, err);
        if (sl_jsonpath_reads_under(p, "ctxt", s_collect, got))
            strcpy(got, "all");
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s reads under ctxt: expected '%s', got '%s'",
                      cases[i].path, cases[i].want, got);
        sl_jsonpath_destroy(&p);
    }
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("jsonpath");
    TCase *tc = tcase_create("jsonpath");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_every_case_gives_what_jsonpath_rw_ext_gives);
    tcase_add_test(tc, test_errors_say_where);
    tcase_add_test(tc, test_match_paths_are_ceilometers);
    tcase_add_test(tc, test_walk_stops_and_destroy_is_idempotent);
    tcase_add_test(tc, test_paths_deeper_or_longer_than_the_limits_are_refused);
    tcase_add_test(tc, test_reads_under_names_what_a_path_can_touch);
    tcase_add_test(tc, test_matches_beyond_the_limit_raise_instead_of_exhausting_memory);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
