/* test_events — event_definitions.yaml loading and notification -> event.
 *
 * The corpus test converts tests/data/corpus.jsonl with
 * conf/event_definitions.yaml (a verbatim copy of Ceilometer 19's stock
 * file) and requires exactly the events the real Ceilometer published for
 * it (tests/data/expected.events.jsonl, from the shared corpus; tools/
 * gen-testdata copies it). The smaller cases pin single behaviours; their
 * expected values are what Ceilometer 19's converter gives for the same
 * definitions and notifications. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/events.h"
#include "common/json.h"
#include "common/pycompat.h"

#ifndef SL_SRCDIR
#define SL_SRCDIR "."
#endif

static char *
s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t) n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t) n, f), (size_t) n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* JSON equality with Python's types: an int is not a float. */
static int
s_same(yajl_val a, yajl_val b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case yajl_t_number:
        return sl_py_is_float(a) == sl_py_is_float(b) && sl_py_equal(a, b);
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len)
            return 0;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!s_same(a->u.array.values[i], b->u.array.values[i]))
                return 0;
        return 1;
    case yajl_t_object:
        if (a->u.object.len != b->u.object.len)
            return 0;
        for (size_t i = 0; i < a->u.object.len; i++)
            if (!s_same(a->u.object.values[i], sl_json_get(b, a->u.object.keys[i])))
                return 0;
        return 1;
    default:
        return sl_json_equal(a, b);
    }
}

/* sl_event_put (what the ingest worker writes) gives sl_event_gen's text
 * (want), appended to a buffer that is not empty. */
static void
s_check_put(const sl_event_t *ev, const char *want, sl_buf_t *put, yajl_gen *scratch)
{
    ck_assert_ptr_nonnull(want);
    sl_buf_reset(put);
    sl_buf_puts(put, "[x]");
    ck_assert_int_eq(sl_event_put(put, scratch, ev), 0);
    ck_assert_msg(strcmp(put->p + 3, want) == 0 && strncmp(put->p, "[x]", 3) == 0,
                  "sl_event_put wrote\n%s\nsl_event_gen wrote\n%s", put->p + 3, want);
}

/* Traits of every type, names and values that need escapes, null values,
 * numbers without their text, and a null message_id: sl_event_put writes
 * what sl_event_gen writes. */
START_TEST(test_event_put_writes_what_event_gen_writes)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    static const char raw_text[] = "{\"a\":[1,2.5,\"q\\\"\"],\"b\":{\"c\":null}}";
    yajl_val raw = sl_json_parse(&a, raw_text, sizeof raw_text - 1, 0, NULL, 0);
    ck_assert_ptr_nonnull(raw);
    yajl_val num = sl_arena_alloc(&a, sizeof *num);
    memset(num, 0, sizeof *num);
    num->type = yajl_t_number;
    num->u.number.d = 0.1;
    num->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
    yajl_val big = sl_arena_alloc(&a, sizeof *big);
    memset(big, 0, sizeof *big);
    big->type = yajl_t_number;
    big->u.number.i = -42;
    big->u.number.flags = YAJL_NUMBER_INT_VALID;
    sl_trait_t traits[] = {
        { .name = "plain", .dtype = SL_TRAIT_TEXT, .value = sl_json_new_string(&a, "v", 1) },
        { .name = "quo\"te", .dtype = SL_TRAIT_TEXT,
          .value = sl_json_new_string(&a, "a\\b\n\x01", 6) },
        { .name = "n", .dtype = SL_TRAIT_INT, .value = big },
        { .name = "f", .dtype = SL_TRAIT_FLOAT, .value = num },
        { .name = "d", .dtype = SL_TRAIT_DATETIME,
          .value = sl_json_new_string(&a, "2026-12-04T00:00:00", 19) },
        { .name = "none", .dtype = SL_TRAIT_NONE, .value = NULL },
    };
    sl_buf_t put = { 0 };
    yajl_gen scratch = NULL;
    for (size_t k = 0; k <= sizeof traits / sizeof traits[0]; k++) {
        sl_event_t ev = { .event_type = "compute.\"x\"", .generated = "2026-12-04T00:00:00",
                          .message_id = k % 2 ? NULL : "m", .raw = k % 3 ? raw : NULL,
                          .traits = traits, .n_traits = k };
        s_check_put(&ev, sl_event_json(&a, &ev), &put, &scratch);
    }
    sl_buf_free(&put);
    if (scratch)
        yajl_gen_free(scratch);
    sl_arena_destroy(&a);
}
END_TEST

START_TEST(test_corpus_gives_exactly_ceilometers_events)
{
    char err[512];
    sl_events_t *e = sl_events_load(SL_SRCDIR "/conf/event_definitions.yaml", NULL, err, sizeof err);
    ck_assert_msg(e != NULL, "conf/event_definitions.yaml should load: %s", err);
    sl_arena_t a;
    sl_arena_init(&a, 0);
    char *corpus = s_read_file(SL_SRCDIR "/tests/data/corpus.jsonl");
    char *expected = s_read_file(SL_SRCDIR "/tests/data/expected.events.jsonl");
    char *exp_save = NULL, *cor_save = NULL;
    char *want = strtok_r(expected, "\n", &exp_save);
    sl_event_stats_t st = { 0 };
    sl_buf_t put = { 0 };
    yajl_gen scratch = NULL;
    size_t n_notes = 0, n_events = 0, bad = 0;
    for (char *line = strtok_r(corpus, "\n", &cor_save); line;
         line = strtok_r(NULL, "\n", &cor_save), n_notes++) {
        sl_notification_t n;
        ck_assert_int_eq(sl_envelope_decode(line, strlen(line), 0, &n, err, sizeof err),
                         SL_ENV_OK);
        sl_event_t ev;
        if (sl_events_convert(e, &n, &a, &ev, &st) == 1) {
            n_events++;
            const char *got = sl_event_json(&a, &ev);
            ck_assert_ptr_nonnull(got);
            s_check_put(&ev, got, &put, &scratch);
            /* and with the raw notification (ceilometer.store_raw) */
            sl_event_t with_raw = ev;
            with_raw.raw = n.root;
            s_check_put(&with_raw, sl_event_json(&a, &with_raw), &put, &scratch);
            ck_assert_msg(want != NULL, "event for corpus line %zu not expected: %s",
                          n_notes + 1, got);
            yajl_val gv = sl_json_parse(&a, got, strlen(got), 0, err, sizeof err);
            yajl_val wv = sl_json_parse(&a, want, strlen(want), 0, err, sizeof err);
            ck_assert_ptr_nonnull(gv);
            ck_assert_ptr_nonnull(wv);
            if (!s_same(gv, wv)) {
                printf("corpus line %zu:\n  expected %s\n  got      %s\n", n_notes + 1, want, got);
                bad++;
            }
            want = strtok_r(NULL, "\n", &exp_save);
        }
        sl_notification_clear(&n);
    }
    ck_assert_msg(bad == 0, "%zu events differ from Ceilometer's (printed above)", bad);
    ck_assert_msg(want == NULL, "fewer events than expected: next expected %s", want);
    ck_assert_uint_eq(n_notes, 125);
    ck_assert_uint_eq(n_events, 120);
    ck_assert_uint_eq(st.events, 120);
    ck_assert_uint_eq(st.failed, 5);        /* malformed timestamps drop the event */
    sl_buf_free(&put);
    if (scratch)
        yajl_gen_free(scratch);
    free(corpus);
    free(expected);
    sl_arena_destroy(&a);
    sl_events_destroy(&e);
}
END_TEST

/* ---- loading ------------------------------------------------------------ */

static void
s_expect_load_error(const char *yaml, int line, const char *fragment)
{
    char err[1024] = "", prefix[32];
    sl_ywarn_t strict = { .strict = 1 };   /* what Ceilometer ignores is an error too */
    sl_events_t *e = sl_events_parse(yaml, strlen(yaml), "ev.yaml", &strict, err, sizeof err);
    ck_assert_msg(e == NULL, "definitions should be rejected:\n%s", yaml);
    snprintf(prefix, sizeof prefix, "ev.yaml:%d: ", line);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "expected the error at %s, got: %s",
                  prefix, err);
    ck_assert_msg(strstr(err, fragment) != NULL, "error should mention '%s', got: %s", fragment,
                  err);
}

START_TEST(test_load_errors_have_file_and_line)
{
    s_expect_load_error("- event_type: a\n  traits: {x: [1, 2\n", 3, "invalid YAML");
    s_expect_load_error("- event_type: a\n  traits: {}\n  trait: {}\n", 3, "ignored key 'trait'");
    s_expect_load_error("- event_type: a\n", 1, "traits not specified");
    s_expect_load_error("- traits: {}\n", 1, "event_type not specified");
    s_expect_load_error("- event_type: a\n  traits:\n    x:\n      fields: payload.\n", 4,
                        "JSONPath 'payload.'");
    s_expect_load_error("- event_type: a\n  traits:\n    x:\n      fields: payload.a\n"
                        "      plugin: splitter\n", 5, "no plugin named 'splitter'");
    s_expect_load_error("- event_type: a\n  traits:\n    x:\n      type: integer\n"
                        "      fields: payload.a\n", 4, "invalid trait type 'integer'");
    s_expect_load_error("- event_type: a\n  traits:\n    x:\n      field: payload.a\n", 4,
                        "ignored key 'field'");
    s_expect_load_error("event_type: a\n", 1, "list of event definitions");
    s_expect_load_error("- event_type: [a, 5]\n  traits: {}\n", 1, "event_type must be");
}
END_TEST

/* Keys Ceilometer does not read are warnings in tolerant mode (the
 * default); a definition it cannot build stays an error (it fails). */
START_TEST(test_tolerant_loading_ignores_keys_ceilometer_ignores)
{
    char err[1024] = "";
    sl_ywarn_t w = { 0 };
    const char *y = "- event_type: a\n  traits:\n    x: {fields: payload.a, help: 'x'}\n"
                    "  trait: {}\n";
    sl_events_t *e = sl_events_parse(y, strlen(y), "ev.yaml", &w, err, sizeof err);
    ck_assert_msg(e != NULL, "tolerant loading refused: %s", err);
    ck_assert_uint_eq(w.count, 2);
    sl_events_destroy(&e);
    e = sl_events_parse("- event_type: a\n", 16, "ev.yaml", &w, err, sizeof err);
    ck_assert_msg(e == NULL && strstr(err, "traits not specified"), "%s", err);
}
END_TEST

START_TEST(test_the_stock_file_and_a_catch_all)
{
    char err[512];
    sl_events_t *e = sl_events_load(SL_SRCDIR "/conf/event_definitions.yaml", NULL, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    size_t n = sl_events_count(e);
    sl_events_destroy(&e);
    /* no catch-all in the stock file: one is added */
    const char *y = "- event_type: a.*\n  traits: {}\n";
    e = sl_events_parse(y, strlen(y), "ev.yaml", NULL, err, sizeof err);
    ck_assert_uint_eq(sl_events_count(e), 2);
    sl_events_destroy(&e);
    y = "- event_type: '*'\n  traits: {}\n";
    e = sl_events_parse(y, strlen(y), "ev.yaml", NULL, err, sizeof err);
    ck_assert_uint_eq(sl_events_count(e), 1);
    sl_events_destroy(&e);
    ck_assert_uint_eq(n, 47);     /* 46 definitions and the added catch-all */
}
END_TEST

/* ---- conversion --------------------------------------------------------- */

static sl_events_t *s_e;
static sl_arena_t s_a;
static sl_event_stats_t s_st;

static void
s_setup(void)
{
    s_e = NULL;
    sl_arena_init(&s_a, 0);
    memset(&s_st, 0, sizeof s_st);
}

static void
s_teardown(void)
{
    sl_events_destroy(&s_e);
    sl_arena_destroy(&s_a);
}

static void
s_load(const char *yaml)
{
    char err[512];
    sl_events_destroy(&s_e);
    s_e = sl_events_parse(yaml, strlen(yaml), "ev.yaml", NULL, err, sizeof err);
    ck_assert_msg(s_e != NULL, "definitions should load: %s", err);
}

/* The event JSON for a notification, or "none". */
static const char *
s_conv(const char *event_type, const char *priority, const char *payload, const char *extra)
{
    char err[256];
    const char *json = sl_arena_printf(&s_a, "{\"message_id\":\"m-1\",\"publisher_id\":"
                                       "\"compute.host-1\",\"event_type\":\"%s\",\"priority\":"
                                       "\"%s\",\"payload\":%s,\"timestamp\":"
                                       "\"2023-03-14 09:26:53.589793\"%s}", event_type, priority,
                                       payload, extra);
    sl_notification_t n;
    ck_assert_msg(sl_envelope_decode(json, strlen(json), 0, &n, err, sizeof err) == SL_ENV_OK,
                  "%s", err);
    sl_event_t ev;
    const char *r = "none";
    if (sl_events_convert(s_e, &n, &s_a, &ev, &s_st) == 1)
        r = sl_event_json(&s_a, &ev);
    /* the strings live in the arena or the notification: copy before clearing */
    r = sl_arena_strdup(&s_a, r);
    sl_notification_clear(&n);
    return r;
}

#define HEAD "{\"event_type\":\"%s\",\"generated\":\"2023-03-14T09:26:53.589793\"," \
             "\"message_id\":\"m-1\",\"traits\":[[\"service\",1,\"compute.host-1\"]"

START_TEST(test_the_last_matching_definition_wins_and_exclusions)
{
    s_load("- event_type: ['!image.*']\n  traits: {c: {fields: payload.c}}\n"
           "- event_type: 'compute.*'\n  traits: {a: {fields: payload.a}}\n"
           "- event_type: ['compute.instance.*', '!compute.instance.exists']\n"
           "  traits: {b: {fields: payload.b}}\n");
    const char *p = "{\"a\":1,\"b\":2,\"c\":3}";
    ck_assert_str_eq(s_conv("compute.instance.create.end", "INFO", p, ""),
                     sl_arena_printf(&s_a, HEAD ",[\"b\",1,\"2\"]]}", "compute.instance.create.end"));
    /* excluded from the last: the one before */
    ck_assert_str_eq(s_conv("compute.instance.exists", "info", p, ""),
                     sl_arena_printf(&s_a, HEAD ",[\"a\",1,\"1\"]]}", "compute.instance.exists"));
    /* only exclusions: everything else */
    ck_assert_str_eq(s_conv("volume.x", "info", p, ""),
                     sl_arena_printf(&s_a, HEAD ",[\"c\",1,\"3\"]]}", "volume.x"));
    /* nothing matches image.*: the added catch-all, default traits only */
    ck_assert_str_eq(s_conv("image.upload", "ERROR", p, ""),
                     sl_arena_printf(&s_a, HEAD "]}", "image.upload"));
    ck_assert_str_eq(s_conv("compute.x", "WARN", p, ""), "none");
    ck_assert_str_eq(s_conv("compute.x", "SAMPLE", p, ""), "none");
    ck_assert_uint_eq(s_st.other_priority, 2);
}
END_TEST

START_TEST(test_default_traits_and_their_overrides_keep_their_place)
{
    s_load("- event_type: '*'\n  traits:\n    z: {fields: payload.z}\n"
           "    user_id: {fields: payload.owner}\n");
    ck_assert_str_eq(s_conv("x", "INFO", "{\"tenant_id\":\"t\",\"user_id\":\"u\",\"owner\":\"o\","
                            "\"z\":0}", ",\"_context_request_id\":\"req-1\","
                            "\"_context_project_id\":\"p\""),
                     "{\"event_type\":\"x\",\"generated\":\"2023-03-14T09:26:53.589793\","
                     "\"message_id\":\"m-1\",\"traits\":[[\"service\",1,\"compute.host-1\"],"
                     "[\"request_id\",1,\"req-1\"],[\"project_id\",1,\"t\"],[\"user_id\",1,\"o\"],"
                     "[\"tenant_id\",1,\"t\"],[\"z\",1,\"0\"]]}");
    /* ctxt.project_id when the payload has no tenant_id */
    const char *r = s_conv("x", "INFO", "{}", ",\"_context_project_id\":\"p\"");
    ck_assert_msg(strstr(r, "[\"project_id\",1,\"p\"]") && strstr(r, "[\"tenant_id\",1,\"p\"]"), "%s", r);
}
END_TEST

START_TEST(test_trait_types_convert_as_python)
{
    s_load("- event_type: '*'\n  traits:\n"
           "    i: {type: int, fields: payload.i}\n    f: {type: float, fields: payload.f}\n"
           "    d: {type: datetime, fields: payload.d}\n    t: {type: text, fields: payload.t}\n"
           "    n: {type: Int, fields: payload.n}\n");
    const char *r = s_conv("x", "INFO", "{\"i\":\" 12 \",\"f\":3,\"d\":\"2023-03-14T10:00:00+02:00\","
                           "\"t\":{\"a\":[1,2.50,null,true]},\"n\":3.9}", "");
    ck_assert_msg(strstr(r, "[\"i\",2,12]") && strstr(r, "[\"f\",3,3.0]") &&
                  strstr(r, "[\"d\",4,\"2023-03-14T08:00:00\"]") &&
                  strstr(r, "[\"t\",1,\"{'a': [1, 2.5, None, True]}\"]") &&
                  strstr(r, "[\"n\",2,3]"), "%s", r);
    /* '' is no value for a non-text trait; None is no value for any */
    r = s_conv("x", "INFO", "{\"i\":\"\",\"f\":null,\"t\":\"\"}", "");
    ck_assert_msg(!strstr(r, "[\"i\"") && !strstr(r, "[\"f\"") && strstr(r, "[\"t\",1,\"\"]"),
                  "%s", r);
    /* text is cut to 255 characters */
    char big[400];
    memset(big, 'x', 300);
    big[300] = '\0';
    r = s_conv("x", "INFO", sl_arena_printf(&s_a, "{\"t\":\"%s\"}", big), "");
    ck_assert_msg(strstr(r, sl_arena_printf(&s_a, "\"%.255s\"]", big)) != NULL, "%s", r);
    /* int("x") or a bad date drops the whole event */
    ck_assert_str_eq(s_conv("x", "INFO", "{\"i\":\"x\"}", ""), "none");
    ck_assert_str_eq(s_conv("x", "INFO", "{\"d\":\"2014-05-3107: 19: 43\"}", ""), "none");
    ck_assert_uint_eq(s_st.failed, 2);
}
END_TEST

/* D1: an int trait given thousands of digits once sent strtoll(NULL) and
 * crashed the ingest worker. Python's int() takes up to 4300 digits
 * (sys.int_max_str_digits) and raises beyond; json.loads refuses a longer
 * integer literal outright. */
START_TEST(test_huge_integers_convert_as_python_and_never_crash)
{
    s_load("- event_type: '*'\n  traits:\n"
           "    i: {type: int, fields: payload.i}\n    f: {type: float, fields: payload.f}\n");
    char *nines = malloc(6001);
    memset(nines, '9', 6000);
    nines[6000] = '\0';
#define DIGITS(n) sl_arena_printf(&s_a, "%.*s", (int) (n), nines)
    /* a JSON integer literal of 4097 digits: Python keeps it exactly */
    const char *r = s_conv("x", "INFO", sl_arena_printf(&s_a, "{\"i\":%s}", DIGITS(4097)), "");
    ck_assert_msg(strstr(r, sl_arena_printf(&s_a, "[\"i\",2,%s]", DIGITS(4097))) != NULL,
                  "4097-digit int trait: %.120s", r);
    /* the same as a string, with spaces: int() strips them */
    r = s_conv("x", "INFO", sl_arena_printf(&s_a, "{\"i\":\" %s \"}", DIGITS(4097)), "");
    ck_assert_msg(strstr(r, sl_arena_printf(&s_a, "[\"i\",2,%s]", DIGITS(4097))) != NULL,
                  "4097-digit int string: %.120s", r);
    /* 4301 digits in a string: ValueError, the event is dropped */
    r = s_conv("x", "INFO", sl_arena_printf(&s_a, "{\"i\":\"%s\"}", DIGITS(4301)), "");
    ck_assert_msg(strcmp(r, "none") == 0, "4301-digit int string: %.80s", r);
    ck_assert_uint_eq(s_st.failed, 1);
    /* 4300 digits (the limit) still convert, leading zeros count */
    r = s_conv("x", "INFO", sl_arena_printf(&s_a, "{\"i\":\"%s\"}", DIGITS(4300)), "");
    ck_assert_msg(strstr(r, "[\"i\",2,9999") != NULL, "4300-digit int string: %.80s", r);
    r = s_conv("x", "INFO", sl_arena_printf(&s_a, "{\"i\":\"0%s\"}", DIGITS(4300)), "");
    ck_assert_msg(strcmp(r, "none") == 0, "0 + 4300-digit int string: %.80s", r);
    /* float() has no digit limit: a 6000-digit string is inf */
    r = s_conv("x", "INFO", sl_arena_printf(&s_a, "{\"f\":\"%s\"}", DIGITS(6000)), "");
    ck_assert_msg(strstr(r, "[\"f\",3,") != NULL, "6000-digit float string: %.80s", r);
    /* a JSON literal of 4301 digits never reaches conversion */
    char err[256];
    sl_notification_t n;
    const char *json = sl_arena_printf(&s_a, "{\"message_id\":\"m\",\"event_type\":\"x\","
                                       "\"priority\":\"info\",\"payload\":{\"i\":-%s},"
                                       "\"timestamp\":\"2024-01-01T00:00:00\"}", DIGITS(4301));
    ck_assert_int_eq(sl_envelope_decode(json, strlen(json), 0, &n, err, sizeof err),
                     SL_ENV_ERR_malformed_json);
    ck_assert_msg(strstr(err, "4300 digits") != NULL, "%s", err);
#undef DIGITS
    free(nines);
}
END_TEST

START_TEST(test_plugins)
{
    s_load("- event_type: '*'\n  traits:\n"
           "    host: {fields: publisher_id, plugin: {name: split, parameters: "
           "{segment: 1, max_split: 1}}}\n"
           "    bits:\n      type: int\n      fields: [payload.a, payload.b]\n"
           "      plugin:\n        name: bitfield\n        parameters:\n"
           "          initial_bitfield: 8\n          flags:\n"
           "            - {path: payload.a, bit: 0, value: 1}\n            - {path: payload.b, bit: 1}\n"
           "    dt: {type: float, fields: [payload.s, payload.e], plugin: timedelta}\n");
    const char *r = s_conv("x", "INFO", "{\"a\":1.0,\"b\":\"x\",\"s\":\"2023-01-01T00:00:00\","
                           "\"e\":\"2023-01-01T00:01:30.5Z\"}", "");
    ck_assert_msg(strstr(r, "[\"host\",1,\"host-1\"]") && strstr(r, "[\"bits\",2,11]") &&
                  strstr(r, "[\"dt\",3,90.5]"), "%s", r);
}
END_TEST

START_TEST(test_bad_notification_timestamp_drops_the_event)
{
    s_load("- event_type: '*'\n  traits: {}\n");
    char err[256];
    const char *json = "{\"message_id\":\"m\",\"event_type\":\"x\",\"priority\":\"info\","
                       "\"payload\":{},\"timestamp\":\"2014-05-3107: 19: 43.463101\"}";
    sl_notification_t n;
    ck_assert_int_eq(sl_envelope_decode(json, strlen(json), 0, &n, err, sizeof err), SL_ENV_OK);
    sl_event_t ev;
    ck_assert_int_eq(sl_events_convert(s_e, &n, &s_a, &ev, &s_st), 0);
    ck_assert_uint_eq(s_st.failed, 1);
    sl_notification_clear(&n);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("corpus");
    tcase_add_test(tc, test_corpus_gives_exactly_ceilometers_events);
    tcase_add_test(tc, test_event_put_writes_what_event_gen_writes);
    tcase_add_test(tc, test_load_errors_have_file_and_line);
    tcase_add_test(tc, test_the_stock_file_and_a_catch_all);
    tcase_add_test(tc, test_tolerant_loading_ignores_keys_ceilometer_ignores);
    suite_add_tcase(s, tc);
    tc = tcase_create("convert");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_the_last_matching_definition_wins_and_exclusions);
    tcase_add_test(tc, test_default_traits_and_their_overrides_keep_their_place);
    tcase_add_test(tc, test_trait_types_convert_as_python);
    tcase_add_test(tc, test_huge_integers_convert_as_python_and_never_crash);
    tcase_add_test(tc, test_plugins);
    tcase_add_test(tc, test_bad_notification_timestamp_drops_the_event);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
