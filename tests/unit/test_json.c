/* test_json — the arena JSON parser (Python json.loads semantics where yajl
 * differs), serialisation, raw insertion, truthiness and equality. */
#include <check.h>

#include "tests/sl_check.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/json_simd.h"
#include "tests/sl_json_events.h"

static sl_arena_t s_a;

static void
s_setup(void)
{
    sl_arena_init(&s_a, 0);
}

static void
s_teardown(void)
{
    sl_arena_destroy(&s_a);
}

static yajl_val
s_parse(const char *text)
{
    char err[256];
    yajl_val v = sl_json_parse(&s_a, text, strlen(text), 0, err, sizeof err);
    ck_assert_msg(v != NULL, "expected %s to parse, got: %s", text, err);
    return v;
}

static const char *
s_dump(yajl_val v)
{
    return sl_json_dump(&s_a, v);
}

START_TEST(test_parse_round_trips_every_kind)
{
    const char *text = "{\"s\":\"a\\\"b\\u00e9\\n\",\"i\":-12,\"f\":1.5e3,\"t\":true,\"F\":false,"
                       "\"n\":null,\"a\":[1,[],{}],\"o\":{\"k\":\"v\"}}";
    ck_assert_str_eq(s_dump(s_parse(text)), "{\"s\":\"a\\\"b\xc3\xa9\\n\",\"i\":-12,\"f\":1.5e3,"
                     "\"t\":true,\"F\":false,\"n\":null,\"a\":[1,[],{}],\"o\":{\"k\":\"v\"}}");
}
END_TEST

START_TEST(test_numbers_keep_their_text_and_flags)
{
    yajl_val v = s_parse("[7, 2.50, 1e400, 123456789012345678901234567890]");
    yajl_val *n = v->u.array.values;
    ck_assert_str_eq(n[0]->u.number.r, "7");
    ck_assert(n[0]->u.number.flags & YAJL_NUMBER_INT_VALID);
    ck_assert_int_eq(n[0]->u.number.i, 7);
    ck_assert_str_eq(n[1]->u.number.r, "2.50");
    ck_assert(!(n[1]->u.number.flags & YAJL_NUMBER_INT_VALID));
    ck_assert(n[1]->u.number.d == 2.5);
    ck_assert_msg(!(n[2]->u.number.flags & YAJL_NUMBER_DOUBLE_VALID), "1e400 overflows a double");
    ck_assert_msg(!(n[3]->u.number.flags & YAJL_NUMBER_INT_VALID), "30 digits overflow long long");
    ck_assert_str_eq(s_dump(v), "[7,2.50,1e400,123456789012345678901234567890]");
    /* integers take a short path: the same values and flags strtoll and
     * strtod give, at the edges of that path */
    const char *ints[] = { "0", "-0", "-5", "999999999999999999", "-999999999999999999",
                           "9007199254740993", "1000000000000000000", "-9223372036854775808",
                           "9223372036854775808" };
    for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
        yajl_val x = s_parse(ints[k]);
        errno = 0;
        long long want_i = strtoll(ints[k], NULL, 10);
        int i_ok = errno == 0;
        double want_d = strtod(ints[k], NULL);
        ck_assert_msg(!(x->u.number.flags & YAJL_NUMBER_INT_VALID) == !i_ok, "%s", ints[k]);
        if (i_ok)
            ck_assert_msg(x->u.number.i == want_i, "%s", ints[k]);
        ck_assert_msg(x->u.number.flags & YAJL_NUMBER_DOUBLE_VALID, "%s", ints[k]);
        ck_assert_msg(memcmp(&x->u.number.d, &want_d, sizeof want_d) == 0, "%s: %.17g vs %.17g",
                      ints[k], x->u.number.d, want_d);
    }
}
END_TEST

START_TEST(test_repeated_key_keeps_first_position_and_last_value)
{
    /* Python: json.loads('{"a":1,"b":2,"a":3}') == {'a': 3, 'b': 2} in that order */
    ck_assert_str_eq(s_dump(s_parse("{\"a\":1,\"b\":2,\"a\":3}")), "{\"a\":3,\"b\":2}");
    /* Big objects go through the hash table path. */
    char text[4096], want[4096];
    size_t o = 0, w = 0;
    o += (size_t) sprintf(text + o, "{");
    w += (size_t) sprintf(want + w, "{");
    for (int i = 0; i < 40; i++) {
        o += (size_t) sprintf(text + o, "%s\"k%d\":%d", i ? "," : "", i, i);
        w += (size_t) sprintf(want + w, "%s\"k%d\":%d", i ? "," : "", i, i == 7 ? 107 : i == 39 ? 139 : i);
    }
    sprintf(text + o, ",\"k7\":107,\"k39\":0,\"k39\":139}");
    sprintf(want + w, "}");
    yajl_val v = s_parse(text);
    ck_assert_int_eq(v->u.object.len, 40);
    ck_assert_str_eq(s_dump(v), want);
    /* Keys of one length sharing their first, middle and last bytes land
     * in one hash slot and stay distinct; a key that is another's prefix
     * is not that key (small and big objects). */
    ck_assert_str_eq(s_dump(s_parse("{\"abcd\":1,\"axcd\":2,\"abc\":3,\"abcd\":4}")),
                     "{\"abcd\":4,\"axcd\":2,\"abc\":3}");
    ck_assert_str_eq(s_dump(s_parse("{\"abcd\":1,\"axcd\":2,\"aycd\":3,\"azcd\":4,\"a1cd\":5,"
                                    "\"a2cd\":6,\"a3cd\":7,\"a4cd\":8,\"abc\":9,\"axcd\":10,\"\":11,"
                                    "\"\":12}")),
                     "{\"abcd\":1,\"axcd\":10,\"aycd\":3,\"azcd\":4,\"a1cd\":5,\"a2cd\":6,"
                     "\"a3cd\":7,\"a4cd\":8,\"abc\":9,\"\":12}");
}
END_TEST

START_TEST(test_nesting_is_limited)
{
    char text[1024];
    size_t d = SL_JSON_MAX_DEPTH;
    memset(text, '[', d);
    memset(text + d, ']', d);
    char err[256];
    ck_assert_msg(sl_json_parse(&s_a, text, 2 * d, 0, err, sizeof err) != NULL,
                  "%zu levels must parse: %s", d, err);
    memset(text, '[', d + 1);
    memset(text + d + 1, ']', d + 1);
    ck_assert(sl_json_parse(&s_a, text, 2 * d + 2, 0, err, sizeof err) == NULL);
    ck_assert_msg(strstr(err, "nested deeper than") != NULL, "got: %s", err);
}
END_TEST

START_TEST(test_bad_input_gives_one_line_reasons)
{
    static const char *bad[] = {
        "", "   ", "{", "{\"a\":}", "[1,]", "{} x", "nul", "\"\xff\"", "{'a':1}", "01",
        "{\"a\":1}{\"b\":2}", "NaN",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        ck_assert_msg(sl_json_parse(&s_a, bad[i], strlen(bad[i]), 0, err, sizeof err) == NULL,
                      "'%s' must be rejected", bad[i]);
        ck_assert_msg(err[0] && !strchr(err, '\n'), "'%s': reason '%s' must be one line",
                      bad[i], err);
    }
}
END_TEST

START_TEST(test_parse_needs_no_terminating_nul)
{
    const char text[] = "{\"a\":1}garbage";
    char err[256];
    yajl_val v = sl_json_parse(&s_a, text, 7, 0, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_str_eq(s_dump(v), "{\"a\":1}");
}
END_TEST

START_TEST(test_get_prefers_the_last_duplicate_of_a_yajl_tree)
{
    char err[128];
    yajl_val v = yajl_tree_parse("{\"a\":1,\"a\":2}", err, sizeof err);
    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(sl_json_get(v, "a")->u.number.r, "2");
    ck_assert_ptr_null(sl_json_get(v, "b"));
    ck_assert_ptr_null(sl_json_get(NULL, "a"));
    yajl_tree_free(v);
}
END_TEST

START_TEST(test_raw_values_take_their_place_in_the_generator)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *) "a", 1);
    ck_assert_int_eq(sl_json_gen_raw(g, "{\"x\":[1,2]}", 11), 0);
    yajl_gen_string(g, (const unsigned char *) "b", 1);
    yajl_gen_array_open(g);
    ck_assert_int_eq(sl_json_gen_raw(g, "\"s\"", 3), 0);
    ck_assert_int_eq(sl_json_gen_raw(g, "null", 4), 0);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    ck_assert_str_eq((const char *) buf, "{\"a\":{\"x\":[1,2]},\"b\":[\"s\",null]}");
    yajl_gen_free(g);
}
END_TEST

START_TEST(test_scalar_text)
{
    yajl_val v = s_parse("[\"s\",12.0,true,false,null,{\"a\":[1]}]");
    yajl_val *e = v->u.array.values;
    ck_assert_str_eq(sl_json_scalar_text(&s_a, e[0]), "s");
    ck_assert_str_eq(sl_json_scalar_text(&s_a, e[1]), "12.0");
    ck_assert_str_eq(sl_json_scalar_text(&s_a, e[2]), "true");
    ck_assert_str_eq(sl_json_scalar_text(&s_a, e[3]), "false");
    ck_assert_ptr_null(sl_json_scalar_text(&s_a, e[4]));
    ck_assert_ptr_null(sl_json_scalar_text(&s_a, NULL));
    ck_assert_str_eq(sl_json_scalar_text(&s_a, e[5]), "{\"a\":[1]}");
    ck_assert_str_eq(sl_json_str(e[0]), "s");
    ck_assert_ptr_null(sl_json_str(e[1]));
}
END_TEST

START_TEST(test_truthiness_is_pythons)
{
    static const struct { const char *json; int truthy; } cases[] = {
        { "null", 0 }, { "false", 0 }, { "true", 1 }, { "0", 0 }, { "-0", 0 }, { "0.0", 0 },
        { "0e7", 0 }, { "1e-400", 0 }, { "1e400", 1 }, { "0.1", 1 }, { "\"\"", 0 },
        { "\"0\"", 1 }, { "[]", 0 }, { "[0]", 1 }, { "{}", 0 }, { "{\"a\":null}", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(sl_json_truthy(s_parse(cases[i].json)) == cases[i].truthy,
                      "bool(%s) should be %d", cases[i].json, cases[i].truthy);
    ck_assert(!sl_json_truthy(NULL));
}
END_TEST

START_TEST(test_equality_ignores_key_order_and_number_spelling)
{
    ck_assert(sl_json_equal(s_parse("{\"a\":1,\"b\":[1,2.0]}"), s_parse("{\"b\":[1.0,2],\"a\":1e0}")));
    ck_assert(!sl_json_equal(s_parse("[1,2]"), s_parse("[2,1]")));
    ck_assert(!sl_json_equal(s_parse("true"), s_parse("1")));
    ck_assert(!sl_json_equal(s_parse("{\"a\":1}"), s_parse("{\"a\":1,\"b\":2}")));
    ck_assert(!sl_json_equal(s_parse("\"1\""), s_parse("1")));
    ck_assert(sl_json_equal(NULL, NULL));
    ck_assert(!sl_json_equal(NULL, s_parse("null")));
}
END_TEST

START_TEST(test_new_string_copies)
{
    char buf[] = "hello";
    yajl_val v = sl_json_new_string(&s_a, buf, 4);
    buf[0] = 'X';
    ck_assert_str_eq(sl_json_str(v), "hell");
    ck_assert_str_eq(s_dump(v), "\"hell\"");
}
END_TEST


/* keep: refuses the top-level keys that start with "drop". */
static int
s_keep_no_drop(const char *key, size_t len, void *ud)
{
    (*(int *) ud)++;
    return !(len >= 4 && memcmp(key, "drop", 4) == 0);
}

START_TEST(test_keep_leaves_out_top_level_keys_only)
{
    const char *text = "{\"a\":1,\"drop1\":{\"x\":[1,{\"y\":null}],\"z\":\"s\"},\"b\":{\"drop\":2},"
                       "\"drop2\":[[],{}],\"drop3\":true,\"c\":[{\"drop\":3}],\"a\":4}";
    char err[256];
    int calls = 0;
    yajl_val v = sl_json_parse_keep(&s_a, text, strlen(text), 0, s_keep_no_drop, &calls, NULL,
                                    err, sizeof err);
    ck_assert_msg(v != NULL, "parse failed: %s", err);
    ck_assert_str_eq(sl_json_dump(&s_a, v), "{\"a\":4,\"b\":{\"drop\":2},\"c\":[{\"drop\":3}]}");
    ck_assert_int_eq(calls, 7);    /* once per top-level key, none below */
    /* a top-level array or scalar has no keys to refuse */
    v = sl_json_parse_keep(&s_a, "[{\"drop\":1}]", 12, 0, s_keep_no_drop, &calls, NULL, err,
                           sizeof err);
    ck_assert_str_eq(sl_json_dump(&s_a, v), "[{\"drop\":1}]");
}
END_TEST

/* A value left out is still checked: the text fails exactly as without
 * keep, with the same reason. */
START_TEST(test_keep_checks_what_it_leaves_out)
{
    static const char *bad[] = {
        "{\"drop\":\"\xff\"}",                  /* not UTF-8 */
        "{\"drop\":{\"k\xc0\xaf\":1}}",         /* overlong key */
        "{\"drop\":\"\\udc00\"}",               /* lone surrogate */
        "{\"drop\":[1,]}",                      /* syntax */
        "{\"drop\":{\"a\":1}",                  /* truncated */
        "{\"a\":1,\"drop\":",                   /* truncated before the value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char e1[256], e2[256];
        sl_json_err_t w1, w2;
        int calls = 0;
        yajl_val full = sl_json_parse_ex(&s_a, bad[i], strlen(bad[i]), 0, &w1, e1, sizeof e1);
        yajl_val kept = sl_json_parse_keep(&s_a, bad[i], strlen(bad[i]), 0, s_keep_no_drop,
                                           &calls, &w2, e2, sizeof e2);
        ck_assert_msg(full == NULL && kept == NULL, "case %zu must fail both ways", i);
        ck_assert_msg(w1 == w2 && strcmp(e1, e2) == 0, "case %zu: '%s' (%d) vs '%s' (%d)", i,
                      e1, w1, e2, w2);
    }
    /* depth counts the levels of a value left out */
    char text[400];
    size_t n = 0;
    n += (size_t) sprintf(text, "{\"drop\":");
    for (int d = 0; d < 9; d++)
        text[n++] = '[';
    for (int d = 0; d < 9; d++)
        text[n++] = ']';
    text[n++] = '}';
    char err[256];
    sl_json_err_t why;
    int calls = 0;
    ck_assert(sl_json_parse_keep(&s_a, text, n, 10, s_keep_no_drop, &calls, &why, err,
                                 sizeof err) != NULL);
    ck_assert(sl_json_parse_keep(&s_a, text, n, 9, s_keep_no_drop, &calls, &why, err,
                                 sizeof err) == NULL);
    ck_assert_int_eq(why, SL_JSON_E_DEPTH);
    /* and an integer Python refuses is refused there too */
    static char big[4500];
    strcpy(big, "{\"drop\":");
    memset(big + 8, '7', 4400);
    strcpy(big + 4408, "}");
    ck_assert(sl_json_parse_keep(&s_a, big, strlen(big), 0, s_keep_no_drop, &calls, &why, err,
                                 sizeof err) == NULL);
    ck_assert_int_eq(why, SL_JSON_E_BIGINT);
}
END_TEST

/* More values than the parser's stack room (256 items, 32 levels): the
 * arrays move to the heap and the tree is whole. */
START_TEST(test_large_and_deep_documents_outgrow_the_stack_room)
{
    size_t cap = 64 * 1024, n = 0;
    char *text = malloc(cap);
    text[n++] = '{';
    for (int i = 0; i < 3000; i++)
        n += (size_t) sprintf(text + n, "%s\"k%d\":[%d,%d]", i ? "," : "", i, i, -i);
    n += (size_t) sprintf(text + n, ",\"deep\":");
    for (int d = 0; d < 100; d++)
        text[n++] = '[';
    text[n++] = '7';
    for (int d = 0; d < 100; d++)
        text[n++] = ']';
    text[n++] = '}';
    char err[256];
    yajl_val v = sl_json_parse(&s_a, text, n, 0, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_uint_eq(v->u.object.len, 3001);
    yajl_val k = sl_json_get(v, "k2999");
    ck_assert(k && k->u.array.len == 2 && k->u.array.values[1]->u.number.i == -2999);
    yajl_val d = sl_json_get(v, "deep");
    for (int i = 0; i < 100; i++)
        d = d->u.array.values[0];
    ck_assert_int_eq(d->u.number.i, 7);
    free(text);
}
END_TEST

/* ---- simdjson's reading against yajl's ------------------------------ */

typedef enum {
    S_TAKEN,    /* valid JSON simdjson reads itself */
    S_LEFT,     /* valid for yajl, left to it (not simdjson's to vouch for) */
    S_BAD       /* not JSON: yajl refuses it, simdjson must decline */
} s_expect_t;

typedef struct {
    const char *text;
    size_t      len;
    s_expect_t  expect;
} s_case_t;

#define C(t, e) { t, sizeof t - 1, e }
static const s_case_t s_cases[] = {
    C("{}", S_TAKEN), C("[]", S_TAKEN), C(" \t\r\n{\"a\":1} \n", S_TAKEN),
    C("{\"a\" : [1, 2.5, -0, 0, 1e5, 1E+5, -1.25e-3, 0.0, 10, -7, 0e0]}", S_TAKEN),
    C("[true,false,null,[true],{\"n\":null}]", S_TAKEN),
    C("{\"\":\"\"}", S_TAKEN),
    C("{\"a\":\"\\u00e9\\n\\t\\r\\b\\f\\\"\\\\\\/\\u0041\\u20ac\\uFFFF\"}", S_TAKEN),
    C("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", S_TAKEN),
    C("{\"a\":{\"b\":{\"c\":[[],{},[[]]]}}}", S_TAKEN),
    C("{\"a\":1,\"b\":2,\"a\":3}", S_TAKEN),
    C("{\"k\\u0000x\":\"v\\u0000w\"}", S_TAKEN),
    C("[123456789012345678901234567890, -99999999999999999999.5e-400, 1e999]", S_TAKEN),
    C("[\"\\\\\\\\\",\"x\\\\\"]", S_TAKEN),
    /* yajl accepts; simdjson leaves these to it */
    C("{\"a\":\"\\ud83d\\ude00\"}", S_LEFT),   /* a surrogate pair */
    C("{\"a\":\"\\uDC00\"}", S_LEFT),          /* a lone low surrogate */
    C("{\"a\":\"\\ud800\\u0041\"}", S_LEFT),   /* yajl makes one code point of these */
    C("{\"a\\\"b\":\"\\\\ud800\"}", S_LEFT), /* "\\" then "ud800": the test is coarse */
    C("{}\v", S_LEFT), C("\f[]", S_LEFT),       /* whitespace to yajl, not to JSON */
    C("\"x\"", S_LEFT), C("12", S_LEFT), C("null", S_LEFT),   /* scalar roots */
    C("[\"\xff\"]", S_LEFT),                   /* bad UTF-8: sluice's own check judges */
    /* yajl takes an unterminated string after the root for a token still
     * being read; sl_json_parse refuses these itself */
    C("{\"a\":\"\\ud800\"}\"", S_LEFT), C("{\"a\":1}\"x", S_LEFT), C("[] \"x}", S_LEFT),
    /* not JSON */
    C("", S_BAD), C("   ", S_BAD), C("{", S_BAD), C("[", S_BAD), C("}", S_BAD),
    C("{\"a\":1,}", S_BAD), C("[1,]", S_BAD), C("[,1]", S_BAD), C("{,}", S_BAD),
    C("{\"a\" 1}", S_BAD), C("{\"a\":}", S_BAD), C("{\"a\"}", S_BAD), C("{1:2}", S_BAD),
    C("{\"a\",\"b\"}", S_BAD), C("{\"a\":1,,\"b\":2}", S_BAD), C("{\"a\":1 \"b\":2}", S_BAD),
    C("[01]", S_BAD), C("[-01]", S_BAD), C("[1.]", S_BAD), C("[.5]", S_BAD), C("[-]", S_BAD),
    C("[1e]", S_BAD), C("[1e+]", S_BAD), C("[+1]", S_BAD), C("[--1]", S_BAD),
    C("[0x10]", S_BAD), C("[1.5e3.2]", S_BAD), C("[Infinity]", S_BAD), C("[NaN]", S_BAD),
    C("[-Infinity]", S_BAD), C("[1 2]", S_BAD), C("[1x]", S_BAD),
    C("[tru]", S_BAD), C("[truex]", S_BAD), C("[nul]", S_BAD), C("[nulll]", S_BAD),
    C("[falsey]", S_BAD), C("[true false]", S_BAD), C("[null,]", S_BAD), C("[t]", S_BAD),
    C("[\"a\x01b\"]", S_BAD), C("[\"a\tb\"]", S_BAD), C("[\"a\nb\"]", S_BAD),
    C("[\"a\0b\"]", S_BAD), C("[1,\0]", S_BAD), C("{\"a\":1}\0", S_BAD),
    C("[\"\\x\"]", S_BAD), C("[\"\\u12\"]", S_BAD), C("[\"\\u12zz\"]", S_BAD),
    C("[\"\\\"]", S_BAD), C("[\"abc]", S_BAD), C("{\"a\":'b'}", S_BAD),
    C("[\"a\" \"b\"]", S_BAD), C("[\"a\":1]", S_BAD), C("{\"a\":\"b\"]", S_BAD),
    C("{\"a\":1}x", S_BAD), C("{\"a\":1} {\"b\":2}", S_BAD), C("{\"a\":1}}", S_BAD),
    C("[1]]", S_BAD), C("[]]", S_BAD), C("{}}", S_BAD), C("[[[]]", S_BAD),
    C("{\"a\":[1}", S_BAD), C("{\"a\":1", S_BAD), C("[1", S_BAD), C("{\"a\":[1,2,]}", S_BAD),
    C("[{\"a\":1}{\"b\":2}]", S_BAD), C("[1]/*c*/", S_BAD), C("[1]//c", S_BAD),
    C("\xef\xbb\xbf{}", S_BAD), C("[1] 2", S_BAD),
    C("{\"a\":1}]", S_BAD), C("[\"x\"}", S_BAD), C("{\"a\":{\"b\":1}", S_BAD),
};
#undef C

/* The contract that lets sl_json_parse_keep try simdjson first: for each
 * text simdjson reads to the end, yajl accepts it too and calls back the
 * same events with the same bytes; every other text is declined. The
 * table also proves the reading is used: each valid case marked S_TAKEN
 * must be read by simdjson. */
START_TEST(test_simdjson_reads_what_yajl_reads_or_declines)
{
    sl_jev_t fast = { 0 }, ref = { 0 };
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        fast.len = 0;
        if (fast.buf)
            fast.buf[0] = '\0';
        sl_simd_status_t st = sl_json_simd_walk(c->text, c->len, 0, &sl_jev_callbacks, &fast);
        int yajl_ok = sl_jev_yajl(c->text, c->len, &ref);
        ck_assert_msg(yajl_ok == (c->expect != S_BAD), "case %zu (%.*s): yajl %s it", i,
                      (int) c->len, c->text, yajl_ok ? "accepts" : "refuses");
        ck_assert_msg((st == SL_SIMD_DONE) == (c->expect == S_TAKEN),
                      "case %zu (%.*s): simdjson %s it, expected %s", i, (int) c->len, c->text,
                      st == SL_SIMD_DONE ? "read" : "declined",
                      c->expect == S_TAKEN ? "read" : "declined");
        if (st == SL_SIMD_DONE)
            ck_assert_msg(fast.len == ref.len && memcmp(fast.buf, ref.buf, ref.len) == 0,
                          "case %zu (%.*s): simdjson told\n%s\nyajl\n%s", i, (int) c->len,
                          c->text, fast.buf, ref.buf);
    }
    free(fast.buf);
    free(ref.buf);
}
END_TEST

static int
s_keep_b(const char *key, size_t len, void *ud)
{
    (void) ud;
    return !(len == 1 && key[0] == 'b');
}

/* sl_json_parse_keep (simdjson first) and the reference, yajl alone, give
 * the same tree or the same error, reason and message, on every case,
 * with and without a keep function and at a small depth limit. */
START_TEST(test_fast_parse_equals_the_reference)
{
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const s_case_t *c = &s_cases[i];
        for (int mode = 0; mode < 3; mode++) {
            sl_json_keep_fn keep = mode == 1 ? s_keep_b : NULL;
            size_t depth = mode == 2 ? 2 : 0;
            char e1[256] = "", e2[256] = "";
            sl_json_err_t w1, w2;
            yajl_val v1 = sl_json_parse_keep(&s_a, c->text, c->len, depth, keep, NULL, &w1, e1,
                                             sizeof e1);
            yajl_val v2 = sl_json_parse_keep_yajl(&s_a, c->text, c->len, depth, keep, NULL, &w2,
                                                  e2, sizeof e2);
            ck_assert_msg(!v1 == !v2 && w1 == w2 && strcmp(e1, e2) == 0,
                          "case %zu mode %d (%.*s): fast %s (%d, %s), reference %s (%d, %s)", i,
                          mode, (int) c->len, c->text, v1 ? "ok" : "failed", (int) w1, e1,
                          v2 ? "ok" : "failed", (int) w2, e2);
            if (v1)
                ck_assert_str_eq(s_dump(v1), s_dump(v2));
        }
    }
}
END_TEST

/* What Python's json.loads refuses and yajl lets through is an error:
 * anything but JSON whitespace after the root (yajl takes an unterminated
 * string there for a token still being read), and a vertical tab or form
 * feed outside a string (yajl counts them as whitespace). */
START_TEST(test_what_python_refuses_and_yajl_takes_is_refused)
{
    static const struct {
        const char *text;
        size_t      at;
        const char *what;
    } bad[] = {
        { "{\"a\":1}\"x", 7, "garbage after the top-level value" },
        { "[] \"", 3, "garbage after the top-level value" },
        { "{} \"x}", 3, "garbage after the top-level value" },
        { "{}\v", 2, "garbage after the top-level value" },
        { "[1]\f", 3, "garbage after the top-level value" },
        { "\f{}", 0, "a vertical tab or form feed outside a string" },
        { "{\"a\\\"\\\\\":\v1}", 9, "a vertical tab or form feed outside a string" },
        { "[\"\\\"\",\f2]", 6, "a vertical tab or form feed outside a string" },
        { "\v7", 0, "a vertical tab or form feed outside a string" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256], want[256];
        sl_json_err_t why;
        ck_assert_msg(!sl_json_parse_ex(&s_a, bad[i].text, strlen(bad[i].text), 0, &why, err,
                                        sizeof err), "%s parsed", bad[i].text);
        snprintf(want, sizeof want, "invalid JSON: %s", bad[i].what);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s: %s", bad[i].text, err);
        snprintf(want, sizeof want, "(at byte %zu)", bad[i].at);
        ck_assert_msg(strstr(err, want) != NULL, "%s: %s, expected %s", bad[i].text, err, want);
        ck_assert_int_eq(why, SL_JSON_E_SYNTAX);
    }
    /* inside strings they are bytes like any other (yajl with string
     * validation off takes them raw; escaped, they are ordinary) */
    ck_assert_str_eq(s_dump(s_parse("{\"a\":[1]} \t\r\n")), "{\"a\":[1]}");
    ck_assert_str_eq(s_dump(s_parse("[\"\\f\\u000b\"]")), "[\"\\f\\u000B\"]");
}
END_TEST

/* Deeper than the limit: simdjson's reading stops where the builder
 * refuses, and the error is yajl's, word for word. */
START_TEST(test_fast_parse_reports_depth_like_the_reference)
{
    char text[600];
    size_t n = 0;
    for (int d = 0; d < 250; d++)
        text[n++] = '[';
    for (int d = 0; d < 250; d++)
        text[n++] = ']';
    sl_jev_t r = { 0 };
    ck_assert_int_eq(sl_json_simd_walk(text, n, 0, &sl_jev_callbacks, &r), SL_SIMD_DONE);
    free(r.buf);
    char e1[256], e2[256];
    sl_json_err_t w1, w2;
    ck_assert(!sl_json_parse_keep(&s_a, text, n, 0, NULL, NULL, &w1, e1, sizeof e1));
    ck_assert(!sl_json_parse_keep_yajl(&s_a, text, n, 0, NULL, NULL, &w2, e2, sizeof e2));
    ck_assert_int_eq(w1, SL_JSON_E_DEPTH);
    ck_assert_int_eq(w2, SL_JSON_E_DEPTH);
    ck_assert_str_eq(e1, e2);
}
END_TEST

/* Writes n strings as values (in an array, and as map values), with
 * sl_json_gen_strv (raw) or yajl_gen_string; returns the text. */
static char *
s_gen_strings(char **strs, size_t *lens, size_t n, int raw, int beautify)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, beautify);
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++) {
        if (raw)
            ck_assert_int_eq(sl_json_gen_strv(g, strs[i], lens[i]), 0);
        else
            ck_assert_int_eq(yajl_gen_string(g, (const unsigned char *) strs[i], lens[i]),
                             yajl_gen_status_ok);
    }
    yajl_gen_map_open(g);
    for (size_t i = 0; i < n; i++) {
        yajl_gen_string(g, (const unsigned char *) "k", 1);
        if (raw)
            sl_json_gen_strv(g, strs[i], lens[i]);
        else
            yajl_gen_string(g, (const unsigned char *) strs[i], lens[i]);
    }
    yajl_gen_map_close(g);
    yajl_gen_array_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char *out = strndup((const char *) buf, len);
    yajl_gen_free(g);
    return out;
}

/* sl_json_gen_strv writes every string exactly as yajl_gen_string does:
 * random strings of every length around the fast path's 16-byte blocks
 * and 254-byte limit, each byte drawn mostly from plain ASCII with quotes,
 * backslashes, control bytes, DEL and UTF-8 mixed in; compact and
 * beautified. */
START_TEST(test_string_values_are_written_as_yajl_writes_them)
{
    enum { N = 2000 };
    static char *strs[N];
    static size_t lens[N];
    static const char odd[] = "\"\\\x01\x1f\x7f\t\n/\xc3\xa9\xff";
    uint64_t x = 88172645463325252ULL;
    size_t fast = 0;   /* strings the fast path takes (printable bytes include quotes) */
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        lens[i] = i < 300 ? i : x % 400;
        strs[i] = malloc(lens[i] + 1);
        int plain = (x >> 20) % 2;
        for (size_t k = 0; k < lens[i]; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            strs[i][k] = !plain && x % 97 == 0 ? odd[(x >> 8) % (sizeof odd - 1)]
                                               : (char) (' ' + (x >> 16) % 95);
        }
        strs[i][lens[i]] = '\0';
        fast += lens[i] <= 254 && !strpbrk(strs[i], "\"\\\x01\x1f\t\n");
    }
    for (int beautify = 0; beautify <= 1; beautify++) {
        char *a = s_gen_strings(strs, lens, N, 1, beautify);
        char *b = s_gen_strings(strs, lens, N, 0, beautify);
        ck_assert_msg(strcmp(a, b) == 0, "raw and yajl writes differ (beautify %d)", beautify);
        free(a);
        free(b);
    }
    ck_assert_msg(fast > N / 20 && fast < N / 2, "both paths must be taken: %zu of %d fast", fast, N);
    for (size_t i = 0; i < N; i++)
        free(strs[i]);
}
END_TEST

/* sl_json_gen_val's text for v, or NULL where it fails. */
static char *
s_yajl_text(yajl_val v)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    char *out = NULL;
    if (sl_json_gen_val(g, v) == 0) {
        const unsigned char *buf;
        size_t len;
        yajl_gen_get_buf(g, &buf, &len);
        out = strndup((const char *) buf, len);
    }
    yajl_gen_free(g);
    return out;
}

/* sl_json_put_val and sl_json_gen_val agree on v: the same text, or both
 * fail. The buffer starts non-empty (appending, not overwriting) and the
 * scratch generator is reused from call to call, as callers do. */
static void
s_check_put(yajl_val v, yajl_gen *scratch, const char *what)
{
    sl_buf_t b = { 0 };
    sl_buf_puts(&b, "<<");
    int rc = sl_json_put_val(&b, scratch, v);
    char *want = s_yajl_text(v);
    ck_assert_msg((rc == 0) == (want != NULL), "%s: put %d, yajl %s", what, rc,
                  want ? "wrote it" : "failed");
    if (want) {
        ck_assert_msg(strncmp(b.p, "<<", 2) == 0 && strcmp(b.p + 2, want) == 0,
                      "%s: put wrote\n%s\nyajl wrote\n%s", what, b.p + 2, want);
        ck_assert_uint_eq(b.n, strlen(want) + 2);
    }
    free(want);
    sl_buf_free(&b);
}

static yajl_val
s_node_of(yajl_type t)
{
    yajl_val v = sl_arena_alloc(&s_a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

/* The buffer writer (common/json.h sl_json_put_*) writes what yajl_gen
 * writes: every valid text of the parse table, 2,000 random strings as
 * keys and values (escapes through yajl, the rest copied), numbers without
 * their text (integers, doubles, a non-finite double that both refuse),
 * and nesting on both sides of yajl_gen's 128-level limit. */
START_TEST(test_buffer_writer_writes_what_yajl_writes)
{
    yajl_gen scratch = NULL;
    size_t n_cases = 0;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        if (s_cases[i].expect == S_BAD)
            continue;
        yajl_val v = sl_json_parse(&s_a, s_cases[i].text, s_cases[i].len, 0, NULL, 0);
        if (!v)
            continue;   /* what sluice refuses after yajl took it */
        s_check_put(v, &scratch, s_cases[i].text);
        n_cases++;
    }
    ck_assert_uint_ge(n_cases, 15);

    enum { N = 2000 };
    static const char odd[] = "\"\\\x01\x1f\x7f\t\n\r\b\f/\xc3\xa9";
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    yajl_val obj = s_node_of(yajl_t_object), arr = s_node_of(yajl_t_array);
    obj->u.object.keys = sl_arena_alloc(&s_a, N * sizeof(char *));
    obj->u.object.values = sl_arena_alloc(&s_a, N * sizeof(yajl_val));
    arr->u.array.values = sl_arena_alloc(&s_a, N * sizeof(yajl_val));
    size_t escaped = 0;
    for (size_t i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = i < 300 ? i : x % 500;
        char *str = sl_arena_alloc(&s_a, len + 1);
        int plain = (x >> 20) % 4 != 0;
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            char c = (char) (' ' + (x >> 16) % 95);
            str[k] = !plain && x % 200 == 0 ? odd[(x >> 8) % (sizeof odd - 1)]
                                            : c == '"' || c == '\\' ? 'q' : c;
        }
        str[len] = '\0';
        escaped += strpbrk(str, "\"\\\x01\x1f\t\n\r\b\f") != NULL;
        obj->u.object.keys[i] = str;
        obj->u.object.values[i] = sl_json_new_string(&s_a, str, len);
        arr->u.array.values[i] = obj->u.object.values[i];
    }
    obj->u.object.len = arr->u.array.len = N;
    ck_assert_msg(escaped > N / 10 && escaped < N / 2, "both paths: %zu of %d escaped", escaped, N);
    s_check_put(obj, &scratch, "random keys and values");
    s_check_put(arr, &scratch, "random strings");

    static const long long ints[] = { 0, -1, 42, LLONG_MIN, LLONG_MAX };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        yajl_val v = s_node_of(yajl_t_number);
        v->u.number.i = ints[i];
        v->u.number.flags = YAJL_NUMBER_INT_VALID;
        s_check_put(v, &scratch, "an integer without its text");
    }
    static const double dbls[] = { 0.1, 5.0, -0.0, 1e300, 2.5e-310, 1.0 / 3, INFINITY, NAN };
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
        yajl_val v = s_node_of(yajl_t_number);
        v->u.number.d = dbls[i];
        v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
        s_check_put(v, &scratch, "a double without its text");
    }
    yajl_val inf = s_node_of(yajl_t_number);
    inf->u.number.d = INFINITY;
    sl_buf_t b = { 0 };
    ck_assert_int_eq(sl_json_put_val(&b, &scratch, inf), -1);
    sl_buf_free(&b);

    for (size_t depth = 125; depth <= 130; depth++) {
        yajl_val v = s_node_of(yajl_t_true);
        for (size_t k = 0; k < depth; k++) {
            yajl_val c = s_node_of(k % 2 ? yajl_t_array : yajl_t_object);
            if (c->type == yajl_t_array) {
                c->u.array.values = sl_arena_alloc(&s_a, sizeof(yajl_val));
                c->u.array.values[0] = v;
                c->u.array.len = 1;
            } else {
                c->u.object.keys = sl_arena_alloc(&s_a, sizeof(char *));
                c->u.object.values = sl_arena_alloc(&s_a, sizeof(yajl_val));
                c->u.object.keys[0] = "k";
                c->u.object.values[0] = v;
                c->u.object.len = 1;
            }
            v = c;
        }
        char what[64];
        snprintf(what, sizeof what, "%zu levels", depth);
        s_check_put(v, &scratch, what);
    }
    if (scratch)
        yajl_gen_free(scratch);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_parse_round_trips_every_kind);
    tcase_add_test(tc, test_numbers_keep_their_text_and_flags);
    tcase_add_test(tc, test_repeated_key_keeps_first_position_and_last_value);
    tcase_add_test(tc, test_nesting_is_limited);
    tcase_add_test(tc, test_bad_input_gives_one_line_reasons);
    tcase_add_test(tc, test_parse_needs_no_terminating_nul);
    tcase_add_test(tc, test_keep_leaves_out_top_level_keys_only);
    tcase_add_test(tc, test_keep_checks_what_it_leaves_out);
    tcase_add_test(tc, test_large_and_deep_documents_outgrow_the_stack_room);
    suite_add_tcase(s, tc);
    tc = tcase_create("simdjson");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_simdjson_reads_what_yajl_reads_or_declines);
    tcase_add_test(tc, test_fast_parse_equals_the_reference);
    tcase_add_test(tc, test_fast_parse_reports_depth_like_the_reference);
    tcase_add_test(tc, test_what_python_refuses_and_yajl_takes_is_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("helpers");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_get_prefers_the_last_duplicate_of_a_yajl_tree);
    tcase_add_test(tc, test_raw_values_take_their_place_in_the_generator);
    tcase_add_test(tc, test_scalar_text);
    tcase_add_test(tc, test_truthiness_is_pythons);
    tcase_add_test(tc, test_equality_ignores_key_order_and_number_spelling);
    tcase_add_test(tc, test_new_string_copies);
    tcase_add_test(tc, test_string_values_are_written_as_yajl_writes_them);
    tcase_add_test(tc, test_buffer_writer_writes_what_yajl_writes);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
