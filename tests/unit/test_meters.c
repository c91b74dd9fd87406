/* test_meters — meters.yaml loading and notification -> sample conversion.
 *
 * The corpus test converts tests/data/corpus.jsonl (the 125 notifications
 * of the shared Ceilometer corpus) with conf/meters.yaml (Ceilometer 19's
 * stock file) and requires the exact samples the real Ceilometer 19 agent
 * published for them (tests/data/expected.samples.jsonl, with the one
 * documented deviation; tools/gen-testdata regenerates both). The
 * differential suite (tests/func/conformance.py) covers random input.
 * The smaller cases pin single behaviours; their expected values were
 * checked with the Ceilometer oracle (shared/ceilometer/oracle.py
 * --meters-dir) on the same definitions and notifications. */
#include <check.h>

#include "tests/sl_check.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/meters.h"

#ifndef SL_SRCDIR
#define SL_SRCDIR "."
#endif

#define MAX_OUT 64

static char *
s_read_file(const char *path, size_t *len)
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
    if (len)
        *len = (size_t) n;
    return buf;
}

/* ---- a tiny harness: one meters text, one notification ---------------- */

static sl_meters_t *s_m;
static sl_arena_t s_a;
static sl_notification_t s_n;
static sl_sample_t s_out[MAX_OUT];
static sl_convert_stats_t s_st;

static void
s_setup(void)
{
    s_m = NULL;
    sl_arena_init(&s_a, 0);
    memset(&s_n, 0, sizeof s_n);
    memset(&s_st, 0, sizeof s_st);
}

static void
s_teardown(void)
{
    sl_meters_destroy(&s_m);
    sl_notification_clear(&s_n);
    sl_arena_destroy(&s_a);
}

static void
s_load(const char *yaml)
{
    char err[512];
    sl_meters_destroy(&s_m);
    s_m = sl_meters_parse(yaml, strlen(yaml), "test.yaml", NULL, err, sizeof err);
    ck_assert_msg(s_m != NULL, "definitions should load: %s", err);
}

/* Converts one notification; returns the number of samples. */
static size_t
s_conv(const char *json)
{
    char err[256];
    sl_notification_clear(&s_n);
    ck_assert_msg(sl_envelope_decode(json, strlen(json), 0, &s_n, err, sizeof err) == SL_ENV_OK,
                  "test notification should decode: %s", err);
    return sl_meters_convert(s_m, &s_n, &s_a, s_out, MAX_OUT, &s_st);
}

static const char *
s_note(const char *extra, const char *payload)
{
    return sl_arena_printf(&s_a, "{\"message_id\":\"m-1\",\"publisher_id\":\"pub.host\","
                           "\"event_type\":\"t.ev\",\"priority\":\"INFO\",\"payload\":%s,"
                           "\"timestamp\":\"2023-03-14 09:26:53.589793\"%s%s}",
                           payload, extra[0] ? "," : "", extra);
}

/* The error text of loading yaml in strict mode, which must fail (what
 * Ceilometer skips is a warning in tolerant mode: see the tests of
 * tolerant loading). */
static const char *
s_load_error(const char *yaml)
{
    static char err[1024];
    err[0] = '\0';
    sl_ywarn_t strict = { .strict = 1 };
    sl_meters_t *m = sl_meters_parse(yaml, strlen(yaml), "test.yaml", &strict, err, sizeof err);
    ck_assert_msg(m == NULL, "definitions should be rejected:\n%s", yaml);
    ck_assert_msg(err[0] != '\0', "rejection without a message");
    return err;
}

static void
s_expect_load_error(const char *yaml, int line, const char *fragment)
{
    const char *err = s_load_error(yaml);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "test.yaml:%d: ", line);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
                  "expected the error at %s, got: %s", prefix, err);
    ck_assert_msg(strstr(err, fragment) != NULL, "error should mention '%s', got: %s",
                  fragment, err);
}

/* ---- the corpus --------------------------------------------------------- */

typedef struct {
    yajl_val v;                 /* the sample as JSON */
    size_t   note;              /* index of the notification */
    int      used;
} s_got_t;

static const char *s_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id", "timestamp",
    "resource_metadata", "source", "message_id",
};
#define N_FIELDS (sizeof s_fields / sizeof s_fields[0])

static int
s_is_int_text(yajl_val v)
{
    return v && v->type == yajl_t_number && v->u.number.r && !strpbrk(v->u.number.r, ".eE");
}

/* Field f of the expected sample e equals the produced one; volumes must
 * agree in value and in JSON type (int vs float vs string vs bool). */
static int
s_field_equal(const char *f, yajl_val e, yajl_val g)
{
    yajl_val ev = sl_json_get(e, f), gv = sl_json_get(g, f);
    if (!ev || !gv)
        return 0;
    if (strcmp(f, "volume") == 0 && ev->type == yajl_t_number &&
        s_is_int_text(ev) != s_is_int_text(gv))
        return 0;
    return sl_json_equal(ev, gv);
}

static int
s_sample_equal(yajl_val e, yajl_val g)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (!s_field_equal(s_fields[i], e, g))
            return 0;
    return 1;
}

static void
s_print_diff(sl_arena_t *a, yajl_val e, yajl_val g)
{
    for (size_t i = 0; i < N_FIELDS; i++) {
        if (s_field_equal(s_fields[i], e, g))
            continue;
        const char *es = sl_json_dump(a, sl_json_get(e, s_fields[i]));
        const char *gs = sl_json_dump(a, sl_json_get(g, s_fields[i]));
        printf("      %-17s expected %.300s\n      %-17s got      %.300s\n", s_fields[i], es, "",
               gs);
    }
}

static int
s_is_uuid4(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char) s[i]) || isupper((unsigned char) s[i])) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

START_TEST(test_corpus_gives_exactly_ceilometers_samples)
{
    char err[512];
    sl_meters_t *m = sl_meters_load(SL_SRCDIR "/conf/meters.yaml", NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "conf/meters.yaml should load: %s", err);
    ck_assert_uint_eq(sl_meters_count(m), 38);      /* the stock file, verbatim */

    sl_arena_t keep;                /* produced and expected samples, as trees */
    sl_arena_init(&keep, 0);
    size_t cap = 1024, n_got = 0;
    s_got_t *got = calloc(cap, sizeof *got);
    yajl_gen g = yajl_gen_alloc(NULL), scratch = NULL;
    sl_buf_t put = { 0 };
    size_t n_put = 0;
    sl_convert_stats_t st = { 0 };

    char *corpus = s_read_file(SL_SRCDIR "/tests/data/corpus.jsonl", NULL);
    size_t n_notes = 0;
    for (char *line = strtok(corpus, "\n"); line; line = strtok(NULL, "\n"), n_notes++) {
        sl_notification_t n;
        sl_arena_t a;
        sl_arena_init(&a, 0);
        ck_assert_msg(sl_envelope_decode(line, strlen(line), 0, &n, err, sizeof err) == SL_ENV_OK,
                      "corpus line %zu should decode: %s", n_notes + 1, err);
        sl_sample_t out[MAX_OUT];
        size_t k = sl_meters_convert(m, &n, &a, out, MAX_OUT, &st);
        for (size_t i = 0; i < k; i++) {
            yajl_gen_clear(g);
            yajl_gen_reset(g, NULL);
            ck_assert_int_eq(sl_sample_gen(g, &out[i]), 0);
            const unsigned char *buf;
            size_t len;
            yajl_gen_get_buf(g, &buf, &len);
            /* the publishers' buffer writer: the same text */
            sl_buf_reset(&put);
            ck_assert_int_eq(sl_sample_put(&put, &scratch, &out[i]), 0);
            ck_assert_msg(put.n == len && memcmp(put.p, buf, len) == 0,
                          "sl_sample_put wrote\n%s\nsl_sample_gen wrote\n%.*s", put.p,
                          (int) len, buf);
            n_put++;
            yajl_val v = sl_json_parse(&keep, (const char *) buf, len, 0, err, sizeof err);
            ck_assert_msg(v != NULL, "sl_sample_gen must write valid JSON: %s\n%.*s", err,
                          (int) len, buf);
            ck_assert_msg(s_is_uuid4(sl_json_str(sl_json_get(v, "id"))), "id should be a uuid4: %s",
                          out[i].id);
            if (n_got == cap)
                got = realloc(got, (cap *= 2) * sizeof *got);
            got[n_got++] = (s_got_t) { v, n_notes, 0 };
        }
        sl_notification_clear(&n);
        sl_arena_destroy(&a);
    }
    ck_assert_uint_eq(n_notes, 125);
    ck_assert_uint_eq(n_put, n_got);
    sl_buf_free(&put);
    if (scratch)
        yajl_gen_free(scratch);

    char *expected = s_read_file(SL_SRCDIR "/tests/data/expected.samples.jsonl", NULL);
    size_t n_exp = 0, matched = 0, shown = 0;
    for (char *line = strtok(expected, "\n"); line; line = strtok(NULL, "\n"), n_exp++) {
        yajl_val e = sl_json_parse(&keep, line, strlen(line), 0, err, sizeof err);
        ck_assert_msg(e != NULL, "expected line %zu: %s", n_exp + 1, err);
        size_t i;
        for (i = 0; i < n_got; i++)
            if (!got[i].used && s_sample_equal(e, got[i].v))
                break;
        if (i < n_got) {
            got[i].used = 1;
            matched++;
            continue;
        }
        if (shown++ >= 5)
            continue;
        const char *name = sl_json_str(sl_json_get(e, "name"));
        const char *mid = sl_json_str(sl_json_get(e, "message_id"));
        printf("  expected %s for message %s was not produced\n", name, mid);
        for (i = 0; i < n_got; i++) {
            yajl_val gv = got[i].v;
            if (!got[i].used && strcmp(sl_json_str(sl_json_get(gv, "name")), name) == 0 &&
                strcmp(sl_json_str(sl_json_get(gv, "message_id")), mid) == 0) {
                printf("    closest produced sample differs in:\n");
                s_print_diff(&keep, e, gv);
                break;
            }
        }
    }
    for (size_t i = 0; i < n_got && shown < 10; i++) {
        if (got[i].used)
            continue;
        shown++;
        printf("  produced but not expected: %.400s\n", sl_json_dump(&keep, got[i].v));
    }
    printf("corpus: %zu notifications, %zu of %zu expected samples matched, %zu produced "
           "(stats: samples %llu, no_definition %llu, skipped %llu, failed %llu, "
           "other_priority %llu)\n", n_notes, matched, n_exp, n_got,
           (unsigned long long) st.samples, (unsigned long long) st.no_definition,
           (unsigned long long) st.skipped, (unsigned long long) st.failed,
           (unsigned long long) st.other_priority);
    ck_assert_msg(matched == n_exp && n_got == n_exp,
                  "%zu of %zu expected samples matched, %zu produced (see the diff above)",
                  matched, n_exp, n_got);
    ck_assert_uint_eq(n_exp, 128);

    /* Within a notification the order is Ceilometer's (reverse file order). */
    free(expected);
    expected = s_read_file(SL_SRCDIR "/tests/data/expected.samples.jsonl", NULL);
    size_t gi = 0;
    for (char *line = strtok(expected, "\n"); line; line = strtok(NULL, "\n"), gi++) {
        yajl_val e = sl_json_parse(&keep, line, strlen(line), 0, err, sizeof err);
        /* expected lines come in corpus order, so the i-th line is the i-th sample */
        ck_assert_msg(strcmp(sl_json_str(sl_json_get(e, "name")),
                             sl_json_str(sl_json_get(got[gi].v, "name"))) == 0 &&
                      strcmp(sl_json_str(sl_json_get(e, "message_id")),
                             sl_json_str(sl_json_get(got[gi].v, "message_id"))) == 0,
                      "sample %zu: expected %s, produced %s", gi + 1,
                      sl_json_str(sl_json_get(e, "name")),
                      sl_json_str(sl_json_get(got[gi].v, "name")));
    }
    /* Ids are fresh for every sample. */
    for (size_t i = 0; i < n_got; i++)
        for (size_t j = i + 1; j < n_got; j++)
            ck_assert_str_ne(sl_json_str(sl_json_get(got[i].v, "id")),
                             sl_json_str(sl_json_get(got[j].v, "id")));
    ck_assert_uint_eq(st.samples, 128);
    ck_assert_uint_eq(st.failed, 0);

    free(corpus);
    free(expected);
    free(got);
    yajl_gen_free(g);
    sl_arena_destroy(&keep);
    sl_meters_destroy(&m);
}
END_TEST

/* ---- loading errors ----------------------------------------------------- */

#define DEF_HEAD "---\nmetric:\n  - name: 'x'\n    event_type: 'x.y'\n    type: gauge\n    unit: B\n"

START_TEST(test_yaml_syntax_error_has_its_line)
{
    s_expect_load_error("---\nmetric:\n  - name: 'x'\n    event_type: [a, b\n    type: gauge\n",
                        5, "invalid YAML");
    s_expect_load_error("---\nmetric:\n  - name: x\n\tbad: tab\n", 4, "invalid YAML");
}
END_TEST

START_TEST(test_missing_required_key_has_the_definition_line)
{
    s_expect_load_error(DEF_HEAD "    resource_id: $.payload.id\n", 3,
                        "required field(s) volume not specified");
    /* Ceilometer's test is truthiness: 0, '' and null are missing too */
    s_expect_load_error(DEF_HEAD "    volume: 0\n    resource_id: ''\n", 3,
                        "volume, resource_id");
    s_expect_load_error("---\nmetric:\n  - event_type: e\n    type: gauge\n    unit: B\n"
                        "    volume: 1\n    resource_id: $.payload.id\n", 3, "name");
}
END_TEST

/* Tolerant by default, as Ceilometer: a definition it cannot build is
 * skipped with a warning and the others are served; a key it does not
 * read is ignored with a warning. (strict: the tests above) */
static void
s_collect(void *arg, const char *text)
{
    char *buf = arg;
    size_t l = strlen(buf);
    snprintf(buf + l, 4096 - l, "%s | ", text);
}

START_TEST(test_tolerant_loading_skips_and_ignores_like_ceilometer)
{
    char err[1024] = "", warnings[4096] = "";
    sl_ywarn_t w = { .emit = s_collect, .arg = warnings };
    const char *yaml =
        "---\nmetric:\n"
        "  - name: good1\n    event_type: t.ev\n    type: gauge\n    unit: B\n"
        "    volume: $.payload.a\n    resource_id: $.payload.id\n    multi: name\n"
        "  - name: bad_type\n    event_type: t.ev\n    type: bad_type\n    unit: B\n"
        "    volume: 1\n    resource_id: $.payload.id\n"
        "  - name: no_volume\n    event_type: t.ev\n    type: gauge\n    unit: B\n"
        "    resource_id: $.payload.id\n"
        "  - name: bad_path\n    event_type: t.ev\n    type: gauge\n    unit: B\n"
        "    volume: $.payload.\n    resource_id: $.payload.id\n"
        "  - name: good2\n    event_type: t.ev\n    type: delta\n    unit: B\n"
        "    volume: 2\n    resource_id: $.payload.id\n"
        "  - name: good1\n    event_type: t.ev\n    type: bad\n    unit: B\n"
        "    volume: {fields: $.payload.a}\n    resource_id: $.payload.id\n    typ: gauge\n"
        "    plugin_x: 1\n";
    sl_meters_t *m = sl_meters_parse(yaml, strlen(yaml), "test.yaml", &w, err, sizeof err);
    ck_assert_msg(m != NULL, "tolerant loading refused: %s", err);
    ck_assert_msg(strstr(warnings, "test.yaml:9: meter 'good1': ignored key 'multi'") &&
                  strstr(warnings, "test.yaml:12: skipped meter definition: meter 'bad_type': "
                         "invalid type bad_type") &&
                  strstr(warnings, "test.yaml:16: skipped meter definition: meter 'no_volume': "
                         "required field(s) volume not specified") &&
                  strstr(warnings, "test.yaml:25: skipped meter definition: meter 'bad_path'"),
                  "warnings: %s", warnings);
    /* the last good1 is invalid (type: bad), so the first good1 loads:
     * Ceilometer's `name in definitions` only counts loaded ones */
    ck_assert_msg(strstr(warnings, "skipped meter definition: meter 'good1'") != NULL,
                  "warnings: %s", warnings);
    ck_assert_uint_eq(w.count, 7);
    sl_arena_t a;
    sl_arena_init(&a, 0);
    const char *json = "{\"message_id\":\"m\",\"event_type\":\"t.ev\",\"priority\":\"info\","
                       "\"payload\":{\"a\":5,\"id\":\"r\"},\"timestamp\":\"2023-01-01 00:00:00\"}";
    sl_notification_t n;
    ck_assert_int_eq(sl_envelope_decode(json, strlen(json), 0, &n, err, sizeof err), SL_ENV_OK);
    sl_sample_t out[8];
    sl_convert_stats_t cs = { 0 };
    size_t ns = sl_meters_convert(m, &n, &a, out, 8, &cs);
    ck_assert_uint_eq(ns, 2);
    int g1 = 0, g2 = 0;
    for (size_t i = 0; i < ns; i++) {
        g1 |= strcmp(out[i].name, "good1") == 0;
        g2 |= strcmp(out[i].name, "good2") == 0;
    }
    ck_assert_msg(g1 && g2, "expected samples good1 and good2");
    sl_notification_clear(&n);
    sl_arena_destroy(&a);
    sl_meters_destroy(&m);
}
END_TEST

START_TEST(test_unknown_or_unsupported_keys_are_refused)
{
    s_expect_load_error(DEF_HEAD "    volume: $.payload.v\n    resource_id: $.payload.id\n"
                        "    lookup: ['name', 'units']\n", 9, "'units' is not a sample attribute");
    s_expect_load_error(DEF_HEAD "    volume: $.payload.v\n    resource_id: $.payload.id\n"
                        "    resource-id: typo\n", 9, "ignored key 'resource-id'");
    s_expect_load_error(DEF_HEAD "    volume:\n      fields: [$.payload.a, $.payload.b]\n"
                        "      plugin: 'timedelta2'\n    resource_id: $.payload.id\n", 9,
                        "no plugin named 'timedelta2'");
    s_expect_load_error(DEF_HEAD "    volume:\n      fields: $.payload.a\n"
                        "      plugin:\n        name: split\n        parameters: {sep: '-'}\n"
                        "    resource_id: $.payload.id\n", 11, "unknown parameter 'sep'");
    s_expect_load_error(DEF_HEAD "    volume:\n      path: $.payload.a\n"
                        "    resource_id: $.payload.id\n", 8, "ignored key 'path'");
    s_expect_load_error("---\nmetric:\n  - name: x\n    event_type: x\n    type: gauge\n"
                        "    unit: B\n    volume: 1\n    resource_id: $.payload.id\n"
                        "metrics: []\n", 9, "ignored top-level key 'metrics'");
    s_expect_load_error("---\nmeters: []\n", 2, "ignored top-level key");
    s_expect_load_error("---\n", 1, "metric");
    s_expect_load_error(DEF_HEAD "    volume: 1\n    resource_id: $.payload.id\n"
                        "    metadata: $.payload.x\n", 9, "metadata must be a mapping");
}
END_TEST

START_TEST(test_bad_regex_has_its_line)
{
    s_expect_load_error("---\nmetric:\n  - name: x\n    event_type:\n      - 'ok.*'\n"
                        "      - 'compute.(instance'\n    type: gauge\n    unit: B\n"
                        "    volume: 1\n    resource_id: $.payload.id\n", 6,
                        "invalid regular expression");
    s_expect_load_error("---\nmetric:\n  - name: x\n    event_type: 12\n    type: gauge\n"
                        "    unit: B\n    volume: 1\n    resource_id: $.payload.id\n", 4,
                        "event_type must be a string");
}
END_TEST

START_TEST(test_bad_or_unsupported_jsonpath_has_its_line)
{
    s_expect_load_error(DEF_HEAD "    volume: $.payload.\n    resource_id: $.payload.id\n", 7,
                        "JSONPath '$.payload.'");
    s_expect_load_error(DEF_HEAD "    volume: 1\n    resource_id: $.payload.id\n    metadata:\n"
                        "      a: $.payload.a\n      provider: $.payload.name_to_id.`split(#, a, 1)`\n",
                        11, "not valid");
    s_expect_load_error(DEF_HEAD "    volume: $.payload.a.`nope`\n    resource_id: $.payload.id\n",
                        7, "unknown named operator");
    s_expect_load_error(DEF_HEAD "    volume: $.payload.a[?(@.x='y']\n    resource_id: $.payload.id\n",
                        7, "syntax error");
    s_expect_load_error(DEF_HEAD "    volume: 1.5\n    resource_id: $.payload.id\n", 7,
                        "neither a JSONPath nor an integer");
    s_expect_load_error(DEF_HEAD "    volume: $.payload.true_size\n    resource_id: $.payload.id\n",
                        7, "boolean");
    s_expect_load_error("---\nmetric:\n  - name: x\n    event_type: x\n    type: gauge\n"
                        "    unit: B/s\n    volume: 1\n    resource_id: $.payload.id\n", 6,
                        "unit");
    s_expect_load_error("---\nmetric:\n  - name: x\n    event_type: x\n    type: gauges\n"
                        "    unit: B\n    volume: 1\n    resource_id: $.payload.id\n", 5,
                        "invalid type gauges");
}
END_TEST


/* A path the evaluator cannot run (it recurses once per level) is refused
 * at load, with the line that holds it, instead of crashing a worker at
 * the first notification. */
START_TEST(test_jsonpath_over_the_limits_is_refused_with_its_line)
{
    size_t n = 100000;
    char *path = malloc(2 * n + 16), *o = path;
    o += sprintf(o, "$.payload.a");
    for (size_t i = 1; i < n; i++)
        o += sprintf(o, "+a");
    size_t cap = strlen(path) + 256;
    char *yaml = malloc(cap);
    snprintf(yaml, cap, DEF_HEAD "    volume: %s\n    resource_id: $.payload.id\n", path);
    char err[1024] = "";
    sl_ywarn_t strict = { .strict = 1 };
    sl_meters_t *m = sl_meters_parse(yaml, strlen(yaml), "test.yaml", &strict, err, sizeof err);
    ck_assert_msg(m == NULL, "a volume of 100,000 chained '+' was accepted");
    ck_assert_msg(strncmp(err, "test.yaml:7: skipped meter definition: meter 'x': volume: "
                          "JSONPath '$.payload.a+a+a", 83) == 0,
                  "expected the error at test.yaml:7, got: %s", err);
    ck_assert_msg(strstr(err, "nested more than 256 levels") != NULL, "got: %s", err);
    free(yaml);
    free(path);
}
END_TEST

/* ---- conversion --------------------------------------------------------- */

START_TEST(test_lookahead_regex_matches_from_the_start_only)
{
    s_load("---\nmetric:\n  - name: 'memory'\n"
           "    event_type: &instance_events compute.instance.(?!create.start|update).*\n"
           "    type: 'gauge'\n    unit: 'MB'\n    volume: 1\n    resource_id: $.payload.id\n");
    static const struct { const char *et; size_t n; } cases[] = {
        { "compute.instance.create.end", 1 }, { "compute.instance.create.error", 1 },
        { "compute.instance.delete.start", 1 }, { "compute.instance.exists", 1 },
        { "compute.instance.create.start", 0 }, { "compute.instance.update", 0 },
        { "compute.instance.updated", 0 }, { "compute.instance.create_start", 0 },
        { "xcompute.instance.exists", 0 }, { "compute.instance", 0 },
        { "computeXinstanceXexists", 1 },     /* `.` is any character */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *note = sl_arena_printf(&s_a, "{\"message_id\":\"m\",\"event_type\":\"%s\","
                                           "\"priority\":\"info\",\"payload\":{\"id\":\"r\"},"
                                           "\"timestamp\":\"2023-03-14T09:26:53Z\"}", cases[i].et);
        ck_assert_msg(s_conv(note) == cases[i].n, "%s: expected %zu sample(s)", cases[i].et,
                      cases[i].n);
    }
}
END_TEST

START_TEST(test_missing_volume_skips_that_definition_and_counts)
{
    s_load("---\nmetric:\n"
           "  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: $.payload.size\n    resource_id: $.payload.id\n"
           "  - name: 'b'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: $.payload.missing\n    resource_id: $.payload.id\n"
           "  - name: 'c'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: $.payload.text\n    resource_id: $.payload.id\n");
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"size\":5,\"text\":\"n/a\"}")), 1);
    ck_assert_str_eq(s_out[0].name, "a");
    ck_assert_uint_eq(s_st.samples, 1);
    ck_assert_uint_eq(s_st.skipped, 2);
    ck_assert_uint_eq(s_st.failed, 0);
    /* not matched at all */
    const char *other = "{\"message_id\":\"m\",\"event_type\":\"other\",\"priority\":\"info\","
                        "\"payload\":{},\"timestamp\":\"2023-03-14T09:26:53Z\"}";
    ck_assert_uint_eq(s_conv(other), 0);
    ck_assert_uint_eq(s_st.no_definition, 1);
}
END_TEST

START_TEST(test_samples_come_in_reverse_order_and_the_last_duplicate_wins)
{
    s_load("---\nmetric:\n"
           "  - name: 'first'\n    event_type: 't.ev'\n    type: gauge\n    unit: a\n"
           "    volume: 1\n    resource_id: $.payload.id\n"
           "  - name: 'dup'\n    event_type: 't.ev'\n    type: gauge\n    unit: early\n"
           "    volume: 2\n    resource_id: $.payload.id\n"
           "  - name: 'last'\n    event_type: 't.ev'\n    type: delta\n    unit: c\n"
           "    volume: 3\n    resource_id: $.payload.id\n"
           "  - name: 'dup'\n    event_type: 't.ev'\n    type: cumulative\n    unit: late\n"
           "    volume: 4\n    resource_id: $.payload.id\n");
    ck_assert_uint_eq(sl_meters_count(s_m), 3);
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\"}")), 3);
    ck_assert_str_eq(s_out[0].name, "dup");
    ck_assert_str_eq(s_out[0].unit, "late");
    ck_assert_str_eq(s_out[0].type, "cumulative");
    ck_assert_str_eq(s_out[0].volume_json, "4");
    ck_assert_str_eq(s_out[1].name, "last");
    ck_assert_str_eq(s_out[2].name, "first");
}
END_TEST

START_TEST(test_only_info_and_sample_priorities_give_samples)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n");
    static const struct { const char *prio; size_t n; } cases[] = {
        { "info", 1 }, { "INFO", 1 }, { "sample", 1 }, { "SAMPLE", 1 }, { "error", 0 },
        { "warn", 0 }, { "audit", 0 }, { "debug", 0 }, { "critical", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *note = sl_arena_printf(&s_a, "{\"message_id\":\"m\",\"event_type\":\"t.ev\","
                                           "\"priority\":\"%s\",\"payload\":{\"id\":\"r\"},"
                                           "\"timestamp\":\"2023-03-14T09:26:53Z\"}", cases[i].prio);
        ck_assert_msg(s_conv(note) == cases[i].n, "priority %s", cases[i].prio);
    }
    ck_assert_uint_eq(s_st.other_priority, 5);
}
END_TEST

START_TEST(test_fields_and_the_context)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: $.payload.v\n    resource_id: $.payload.id\n"
           "    user_id: $.ctxt.user_name\n    project_id: $.payload.project\n"
           "    metadata:\n      mid: $.metadata.message_id\n      ts: $.metadata.timestamp\n"
           "      wire_id: $.message_id\n      prio: $.priority\n      tmo: $.ctxt.client_timeout\n"
           "      pub: $.publisher_id\n      et: event_type\n      zero: $.payload.zero\n");
    ck_assert_uint_eq(s_conv(s_note("\"_context_user_name\":\"alice\",\"_timeout\":30",
                                    "{\"id\":\"r\",\"v\":2,\"project\":7,\"zero\":0}")), 1);
    sl_sample_t *s = &s_out[0];
    ck_assert_str_eq(s->user_id, "alice");
    ck_assert_str_eq(s->project_id, "7");        /* non-strings become their JSON text */
    ck_assert_str_eq(s->resource_id, "r");
    ck_assert_str_eq(s->volume_json, "2");
    ck_assert(s->volume == 2.0);
    ck_assert_str_eq(s->source, "openstack");
    ck_assert_str_eq(s->message_id, "m-1");
    ck_assert_str_eq(s->timestamp, "2023-03-14T09:26:53.589793+00:00");
    /* $.message_id and $.priority do not exist in Ceilometer's view; falsy
     * values (0) are left out */
    ck_assert_str_eq(s->resource_metadata, "{\"mid\":\"m-1\",\"ts\":\"2023-03-14 09:26:53.589793\","
                     "\"tmo\":30,\"pub\":\"pub.host\",\"et\":\"t.ev\"}");
}
END_TEST

START_TEST(test_context_fallbacks_are_the_misparsed_paths)
{
    /* "ctxt.user_id|ctxt.user" is ctxt.(user_id|ctxt).user to jsonpath-rw:
     * a flat context gives null, as in Ceilometer's published samples. */
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n");
    ck_assert_uint_eq(s_conv(s_note("\"_context_user_id\":\"u\",\"_context_user\":\"u\","
                                    "\"_context_project_id\":\"p\",\"_context_tenant_id\":\"p\"",
                                    "{\"id\":\"r\"}")), 1);
    ck_assert_ptr_null(s_out[0].user_id);
    ck_assert_ptr_null(s_out[0].project_id);
    ck_assert_uint_eq(s_conv(s_note("\"_context_user_id\":{\"user\":\"nested\"},"
                                    "\"_context_ctxt\":{\"user\":\"other\",\"tenant_id\":\"t\"}",
                                    "{\"id\":\"r\"}")), 1);
    ck_assert_str_eq(s_out[0].user_id, "nested");
    ck_assert_str_eq(s_out[0].project_id, "t");
}
END_TEST

START_TEST(test_metadata_falls_back_to_the_payload)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n    metadata:\n"
           "      empty: $.payload.blank\n");
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"host\":\"h\",\"blank\":\"\","
                                        "\"event_type\":\"old\",\"z\":[1]}")), 1);
    /* keys the payload has keep their place; publisher_id becomes host */
    ck_assert_str_eq(s_out[0].resource_metadata, "{\"id\":\"r\",\"host\":\"pub.host\",\"blank\":\"\","
                     "\"event_type\":\"t.ev\",\"z\":[1]}");
}
END_TEST

START_TEST(test_non_object_payload_gives_event_type_and_host_only)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n");
    const char *note = "{\"message_id\":\"m\",\"event_type\":\"t.ev\",\"priority\":\"info\","
                       "\"payload\":[1,2],\"timestamp\":\"2023-03-14T09:26:53Z\"}";
    ck_assert_uint_eq(s_conv(note), 1);
    ck_assert_ptr_null(s_out[0].resource_id);
    ck_assert_str_eq(s_out[0].resource_metadata, "{\"event_type\":\"t.ev\",\"host\":null}");
    ck_assert_str_eq(s_out[0].timestamp, "2023-03-14T09:26:53+00:00");
}
END_TEST

START_TEST(test_user_metadata)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n    user_metadata: $.payload.metadata\n"
           "    metadata:\n      host: $.payload.host\n");
    char longv[700];
    for (int i = 0; i < 300; i++)
        memcpy(longv + 2 * i, "\xc3\xa9", 2);       /* 300 x U+00E9 */
    longv[600] = '\0';
    const char *payload = sl_arena_printf(&s_a, "{\"id\":\"r\",\"host\":\"h\",\"metadata\":{"
                                          "\"metering.a.b\":\"v1\",\"other\":1,\"metering.host\":\"x\","
                                          "\"metering.a_b\":\"v2\",\"metering.n\":5,"
                                          "\"metering.long\":\"%s\"}}", longv);
    ck_assert_uint_eq(s_conv(s_note("", payload)), 1);
    char want[1024];
    /* a.b and a_b both become a_b: first place, last value; `host` is taken
     * by the definition's metadata; strings are cut to 256 characters */
    int n = snprintf(want, sizeof want, "{\"host\":\"h\",\"user_metadata\":{\"a_b\":\"v2\",\"n\":5,"
                     "\"long\":\"");
    memcpy(want + n, longv, 512);
    snprintf(want + n + 512, sizeof want - (size_t) n - 512, "\"}}");
    ck_assert_str_eq(s_out[0].resource_metadata, want);
    /* only user metadata: still no payload fallback */
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"metadata\":{\"metering.k\":\"v\"}}")), 1);
    ck_assert_str_eq(s_out[0].resource_metadata, "{\"user_metadata\":{\"k\":\"v\"}}");
    /* a truthy non-object makes Ceilometer raise: the notification is lost */
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"metadata\":[\"metering.k\"]}")), 0);
    ck_assert_uint_eq(s_st.failed, 1);
}
END_TEST

START_TEST(test_volume_validation)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: $.payload.v\n    resource_id: $.payload.id\n"
           "  - name: 'b'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n");
    static const struct { const char *v; const char *json; double val; size_t n; } cases[] = {
        { "12", "12", 12, 2 }, { "2.50", "2.50", 2.5, 2 }, { "\"12\"", "\"12\"", 12, 2 },
        { "\" 1_000 \"", "\" 1_000 \"", 1000, 2 }, { "\"-inf\"", "\"-inf\"", -1.0 / 0.0, 2 },
        { "\"1e3\"", "\"1e3\"", 1000, 2 }, { "\"\\u0661\\u0662\"", "\"\xd9\xa1\xd9\xa2\"", 12, 2 },
        { "true", "true", 1, 2 }, { "false", "false", 0, 2 },
        { "\"abc\"", NULL, 0, 1 }, { "\"\"", NULL, 0, 1 }, { "\"1_\"", NULL, 0, 1 },
        { "\"0x10\"", NULL, 0, 1 }, { "null", NULL, 0, 1 },
        { "{\"a\":1}", NULL, 0, 0 }, { "[1]", NULL, 0, 0 },     /* float(): TypeError */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *payload = sl_arena_printf(&s_a, "{\"id\":\"r\",\"v\":%s}", cases[i].v);
        size_t n = s_conv(s_note("", payload));
        ck_assert_msg(n == cases[i].n, "volume %s: expected %zu samples, got %zu", cases[i].v,
                      cases[i].n, n);
        if (n == 2) {
            ck_assert_str_eq(s_out[1].name, "a");
            ck_assert_msg(strcmp(s_out[1].volume_json, cases[i].json) == 0,
                          "volume %s: volume_json %s", cases[i].v, s_out[1].volume_json);
            ck_assert_msg(s_out[1].volume == cases[i].val, "volume %s: %g", cases[i].v,
                          s_out[1].volume);
        }
    }
}
END_TEST

START_TEST(test_constants)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 0x10\n    resource_id: $.payload.id\n    metadata:\n      one: 1\n"
           "      nothing: 0\n      flag: yes\n"
           "  - name: 'b'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: on\n    resource_id: $.payload.id\n");
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\"}")), 2);
    ck_assert_str_eq(s_out[0].volume_json, "true");
    ck_assert_str_eq(s_out[1].volume_json, "16");
    ck_assert_str_eq(s_out[1].resource_metadata, "{\"one\":1,\"flag\":true}");
}
END_TEST

START_TEST(test_names_and_units_are_paths_with_a_literal_fallback)
{
    s_load("---\nmetric:\n  - name: payload.kind\n    event_type: 't.ev'\n    type: gauge\n"
           "    unit: payload.u\n    volume: 1\n    resource_id: $.payload.id\n");
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"kind\":\"k\",\"u\":3}")), 1);
    ck_assert_str_eq(s_out[0].name, "k");
    ck_assert_str_eq(s_out[0].unit, "3");
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\"}")), 1);
    ck_assert_str_eq(s_out[0].name, "payload.kind");
    ck_assert_str_eq(s_out[0].unit, "payload.u");
    /* a computed name that is not a string fails the pipeline's fnmatch */
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"kind\":5}")), 0);
    ck_assert_uint_eq(s_st.failed, 1);
}
END_TEST

START_TEST(test_timestamps_are_normalised_as_iso8601_does)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n    timestamp: $.payload.when\n");
    static const struct { const char *in, *out; } cases[] = {
        { "2023-03-14 09:26:53.589793", "2023-03-14T09:26:53.589793+00:00" },
        { "2023-03-14T09:26:53Z", "2023-03-14T09:26:53+00:00" },
        { "2023-03-14T09:26:53.000000", "2023-03-14T09:26:53+00:00" },
        { "2023-03-14T09:26:53.5+0130", "2023-03-14T09:26:53.500000+01:30" },
        { "2023-03-14T09:26:53-00:00", "2023-03-14T09:26:53+00:00" },
        { "2023-03-14T09:26:53+05", "2023-03-14T09:26:53+05:00" },
        { "2023-03-14T09:26:53,25", "2023-03-14T09:26:53.250000+00:00" },
        { "2023-03-14T09:26:53.1234567", "2023-03-14T09:26:53.123456+00:00" },
        { "2023-03-14T09:26:53.99999999999999999999999999999", NULL },
        /* 29 significant digits: Decimal rounds to 28 and carries */
        { "2023-03-14T09:26:53.0000099999999999999999999999999999", "2023-03-14T09:26:53.000010+00:00" },
        { "2023-03-14T09:26:53.0000099999999999999999999999999949", "2023-03-14T09:26:53.000009+00:00" },
        { "20230314T092653", "2023-03-14T09:26:53+00:00" },
        { "2023-03-14T0926", "2023-03-14T09:26:00+00:00" },
        { "2023-3-4", "2023-03-04T00:00:00+00:00" },
        { "2023", "2023-01-01T00:00:00+00:00" },
        { "2023-03-14T09:26:53\n", "2023-03-14T09:26:53+00:00" },
        { "2024-02-29 00:00:00", "2024-02-29T00:00:00+00:00" },
        { "2023-02-29 00:00:00", NULL },
        { "2023-03-14T24:00:00", NULL },
        { "2023-03-14T09:26:53+24:00", NULL },
        { "0000-01-01", NULL },
        { "2014-05-3107: 19: 43.463101", NULL },
        { "garbage", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        yajl_gen g = yajl_gen_alloc(NULL);
        yajl_gen_string(g, (const unsigned char *) cases[i].in, strlen(cases[i].in));
        const unsigned char *buf;
        size_t len;
        yajl_gen_get_buf(g, &buf, &len);
        const char *payload = sl_arena_printf(&s_a, "{\"id\":\"r\",\"when\":%.*s}", (int) len, buf);
        yajl_gen_free(g);
        size_t n = s_conv(s_note("", payload));
        if (!cases[i].out) {
            ck_assert_msg(n == 0, "%s should not parse, got %s", cases[i].in,
                          n ? s_out[0].timestamp : "");
            continue;
        }
        ck_assert_msg(n == 1, "%s should parse", cases[i].in);
        ck_assert_msg(strcmp(s_out[0].timestamp, cases[i].out) == 0, "%s: expected %s, got %s",
                      cases[i].in, cases[i].out, s_out[0].timestamp);
    }
    /* falsy values fall back to the notification's timestamp */
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"when\":\"\"}")), 1);
    ck_assert_str_eq(s_out[0].timestamp, "2023-03-14T09:26:53.589793+00:00");
    /* a number is not parsed: Ceilometer raises */
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"when\":1678786013}")), 0);
}
END_TEST

START_TEST(test_a_raise_loses_the_whole_notification)
{
    s_load("---\nmetric:\n  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n"
           "  - name: 'b'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.list[0]\n");
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"list\":[\"x\"]}")), 2);
    ck_assert_str_eq(s_out[0].resource_id, "x");
    /* list[0] on an object: KeyError in jsonpath-rw, nothing is published */
    memset(&s_st, 0, sizeof s_st);
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"r\",\"list\":{\"k\":1}}")), 0);
    ck_assert_uint_eq(s_st.failed, 1);
    ck_assert_uint_eq(s_st.skipped, 2);
    /* a notification timestamp iso8601 cannot parse */
    const char *bad_ts = "{\"message_id\":\"m\",\"event_type\":\"t.ev\",\"priority\":\"info\","
                         "\"payload\":{\"id\":\"r\"},\"timestamp\":\"2014-05-3107: 19: 43.463101\"}";
    ck_assert_uint_eq(s_conv(bad_ts), 0);
    ck_assert_uint_eq(s_st.failed, 2);
}
END_TEST

START_TEST(test_output_beyond_max_is_counted)
{
    s_load("---\nmetric:\n"
           "  - name: 'a'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n"
           "  - name: 'b'\n    event_type: 't.ev'\n    type: gauge\n    unit: B\n"
           "    volume: 1\n    resource_id: $.payload.id\n");
    sl_notification_clear(&s_n);
    const char *note = s_note("", "{\"id\":\"r\"}");
    char err[128];
    ck_assert_int_eq(sl_envelope_decode(note, strlen(note), 0, &s_n, err, sizeof err), SL_ENV_OK);
    ck_assert_uint_eq(sl_meters_convert(s_m, &s_n, &s_a, s_out, 1, &s_st), 1);
    ck_assert_str_eq(s_out[0].name, "b");
    ck_assert_uint_eq(s_st.samples, 1);
    ck_assert_uint_eq(s_st.skipped, 1);
    ck_assert_uint_eq(sl_meters_convert(s_m, &s_n, &s_a, s_out, 0, NULL), 0);
}
END_TEST

/* sl_sample_put writes what sl_sample_gen writes for every shape a sample
 * takes: null fields, strings that need escapes, a volume with and without
 * its text (finite, -0.0, huge, non-finite), no metadata, monotonic_time. */
START_TEST(test_sample_put_writes_what_sample_gen_writes)
{
    static const char *strs[] = { NULL, "", "plain", "q\"uote", "back\\slash", "nl\nx",
                                  "\x01\x1f ctl", "caf\xc3\xa9", "/solidus" };
    static const double vols[] = { 0, -0.0, 0.1, 12, 1e16, 1.5e300, 5e-324, INFINITY, NAN };
    static const char *vjson[] = { NULL, "\"12\"", "true", "1.0" };
    static const char *meta[] = { NULL, "{}", "{\"a\":[1,{\"b\":null}]}" };
    static const char *mono[] = { NULL, "123456789", "null" };
    yajl_gen g = yajl_gen_alloc(NULL), scratch = NULL;
    sl_buf_t put = { 0 };
    size_t n = 0;
    const size_t ns = sizeof strs / sizeof *strs;
    for (size_t i = 0; i < 400; i++) {
        sl_sample_t s = {
            .id = strs[i % ns], .name = strs[(i / 2) % ns], .type = strs[(i / 3) % ns],
            .unit = strs[(i / 5) % ns], .user_id = strs[(i / 7) % ns],
            .project_id = strs[(i * 3) % ns], .resource_id = strs[(i * 5) % ns],
            .timestamp = strs[(i * 7) % ns], .source = strs[(i / 11) % ns],
            .message_id = strs[(i / 13) % ns],
            .volume = vols[i % (sizeof vols / sizeof *vols)],
            .volume_json = vjson[(i / 9) % (sizeof vjson / sizeof *vjson)],
            .resource_metadata = meta[(i / 4) % (sizeof meta / sizeof *meta)],
            .monotonic_time = mono[(i / 6) % (sizeof mono / sizeof *mono)],
        };
        yajl_gen_clear(g);
        yajl_gen_reset(g, NULL);
        int rc = sl_sample_gen(g, &s);
        sl_buf_reset(&put);
        sl_buf_puts(&put, "x\n");       /* appends: a publisher's buffer is not empty */
        ck_assert_int_eq(sl_sample_put(&put, &scratch, &s), rc);
        const unsigned char *buf;
        size_t len;
        yajl_gen_get_buf(g, &buf, &len);
        ck_assert_msg(put.n == len + 2 && memcmp(put.p + 2, buf, len) == 0,
                      "case %zu: sl_sample_put wrote\n%s\nsl_sample_gen wrote\n%.*s", i,
                      put.p + 2, (int) len, buf);
        n++;
    }
    ck_assert_uint_eq(n, 400);
    sl_buf_free(&put);
    yajl_gen_free(g);
    if (scratch)
        yajl_gen_free(scratch);
}
END_TEST

START_TEST(test_sample_gen_writes_ceilometers_fields)
{
    sl_sample_t s = {
        .id = "0f6cd2e5-3b9f-4b1a-9a49-7c1f2a3b4c5d", .name = "n", .type = "gauge", .unit = "B",
        .volume_json = "\"12\"", .volume = 12, .user_id = NULL, .project_id = "p",
        .resource_id = "r", .timestamp = "2023-03-14T09:26:53+00:00",
        .resource_metadata = "{\"a\":[1]}", .source = "openstack", .message_id = "m",
    };
    yajl_gen g = yajl_gen_alloc(NULL);
    ck_assert_int_eq(sl_sample_gen(g, &s), 0);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    ck_assert_str_eq((const char *) buf,
                     "{\"id\":\"0f6cd2e5-3b9f-4b1a-9a49-7c1f2a3b4c5d\",\"name\":\"n\",\"type\":\"gauge\","
                     "\"unit\":\"B\",\"volume\":\"12\",\"user_id\":null,\"project_id\":\"p\","
                     "\"resource_id\":\"r\",\"timestamp\":\"2023-03-14T09:26:53+00:00\","
                     "\"resource_metadata\":{\"a\":[1]},\"source\":\"openstack\",\"message_id\":\"m\"}");
    yajl_gen_free(g);
    char a[37], b[37];
    sl_sample_uuid4(a);
    sl_sample_uuid4(b);
    ck_assert_msg(s_is_uuid4(a) && s_is_uuid4(b), "%s %s", a, b);
    ck_assert_str_ne(a, b);
}
END_TEST

/* Python's uuid.uuid5 gives the expected values (uuid.NAMESPACE_DNS,
 * uuid.NAMESPACE_URL, and the ids the README's formula gives). */
START_TEST(test_stable_ids_are_pythons_uuid5)
{
    static const unsigned char dns[16] = { 0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                           0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8 };
    static const unsigned char url[16] = { 0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                           0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8 };
    char id[37];
    sl_sample_uuid5(id, dns, "python.org", 10);
    ck_assert_str_eq(id, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    sl_sample_uuid5(id, url, "sluice:sample_ids", 17);
    ck_assert_str_eq(id, "1e3f8866-801f-5585-b4a1-be07f688ecd8");
    char want[37];
    const unsigned char *b = sl_sample_id_namespace;
    snprintf(want, sizeof want, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    ck_assert_str_eq(id, want);
    char big[600];
    memset(big, 'x', sizeof big);       /* beyond the stack buffer */
    sl_sample_uuid5(id, sl_sample_id_namespace, big, sizeof big);
    ck_assert_str_eq(id, "4ff4d69b-7e12-554f-a458-7324c7a8b441");

    sl_arena_t a;
    sl_arena_init(&a, 0);
    sl_sample_t s[4] = {
        { .id = "r0", .name = "cpu", .resource_id = "r-1" },
        { .id = "r1", .name = "cpu", .resource_id = "r-1" },      /* the same name and resource */
        { .id = "r2", .name = "memory", .resource_id = "r-1" },
        { .id = "r3", .name = "cpu", .resource_id = NULL },
    };
    ck_assert_uint_eq(sl_sample_stable_ids(s, 4, NULL, &a), 0);
    ck_assert_str_eq(s[0].id, "r0");    /* no message_id: the ids stay */
    ck_assert_uint_eq(sl_sample_stable_ids(s, 4, "m-1", &a), 4);
    ck_assert_str_eq(s[0].id, "9cd94777-bcd4-5e1e-9a42-fe938d86094d");
    ck_assert_str_eq(s[1].id, "467caf15-136a-5a63-bf04-7074299bac05");
    ck_assert_str_eq(s[2].id, "aa1d3269-c9a4-5b4c-9d3d-7b17dc659e15");
    ck_assert_str_eq(s[3].id, "2776b55d-2d57-54fd-a647-abf1b0d4bf7a");
    sl_arena_destroy(&a);
}
END_TEST

/* The same notification converted twice: the same ids with sample_ids:
 * stable, new ones each time without. */
START_TEST(test_stable_ids_repeat_for_the_same_notification)
{
    char err[512];
    sl_meters_t *m = sl_meters_load(SL_SRCDIR "/conf/meters.yaml", NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    const char *text =
        "{\"message_id\": \"5b7c0d4e-1f2a-4b3c-8d9e-0a1b2c3d4e5f\", \"publisher_id\": "
        "\"compute.host-1\", \"event_type\": \"compute.instance.exists\", \"priority\": \"INFO\", "
        "\"timestamp\": \"2026-01-02 03:04:05.123456\", \"payload\": {\"instance_id\": \"i-1\", "
        "\"user_id\": \"u-1\", \"tenant_id\": \"p-1\", \"memory_mb\": 512, \"vcpus\": 2, "
        "\"root_gb\": 1, \"ephemeral_gb\": 0, \"disk_gb\": 1, \"instance_type\": \"m1.tiny\", "
        "\"state\": \"active\"}}";
    sl_sample_t first[64], again[64];
    size_t n1 = 0, n2 = 0;
    sl_arena_t a;
    sl_arena_init(&a, 0);
    for (int round = 0; round < 3; round++) {
        sl_notification_t n;
        ck_assert_int_eq(sl_envelope_decode(text, strlen(text), 0, &n, err, sizeof err), SL_ENV_OK);
        sl_sample_t *out = round == 0 ? first : again;
        size_t k = sl_meters_convert(m, &n, &a, out, 64, NULL);
        if (round < 2)
            sl_sample_stable_ids(out, k, n.message_id, &a);
        if (round == 0)
            n1 = k;
        else
            n2 = k;
        ck_assert_uint_ge(k, 2);
        for (size_t i = 0; i < k; i++) {
            ck_assert_msg(strlen(out[i].id) == 36 && out[i].id[14] == (round < 2 ? '5' : '4'),
                          "round %d: %s", round, out[i].id);
            for (size_t j = 0; j < i; j++)
                ck_assert_str_ne(out[i].id, out[j].id);
            if (round == 1)
                ck_assert_str_eq(out[i].id, first[i].id);
            if (round == 2)
                ck_assert_str_ne(out[i].id, first[i].id);
        }
        sl_notification_clear(&n);
    }
    ck_assert_uint_eq(n1, n2);
    sl_arena_destroy(&a);
    sl_meters_destroy(&m);
}
END_TEST

START_TEST(test_the_stock_file_loads)
{
    char err[512];
    sl_meters_t *m = sl_meters_load(
        "/usr/lib/python3/dist-packages/ceilometer/data/meters.d/meters.yaml", NULL, err, sizeof err);
    if (!m && strstr(err, "cannot open"))
        return;         /* python3-ceilometer not installed here */
    ck_assert_msg(m != NULL, "the stock meters.yaml must load: %s", err);
    ck_assert_uint_eq(sl_meters_count(m), 38);
    sl_meters_destroy(&m);
}
END_TEST

/* ---- features of the full stock file ---------------------------------- */

START_TEST(test_lookup_gives_one_sample_per_element)
{
    s_load("---\nmetric:\n  - name: $.payload.metrics.[*].name\n    event_type: 't.ev'\n"
           "    type: 'gauge'\n    unit: $.payload.metrics.[*].unit\n"
           "    volume: $.payload.metrics.[*].value\n    user_id: $.payload.user_id\n"
           "    resource_id: $.payload.resource_id\n    lookup: ['name', 'unit', 'volume']\n");
    ck_assert_uint_eq(s_conv(s_note("", "{\"resource_id\":\"r\",\"user_id\":\"u\",\"metrics\":["
                                    "{\"name\":\"a\",\"unit\":\"%\",\"value\":1.5},"
                                    "{\"name\":\"b\",\"unit\":\"B\",\"value\":2}]}")), 2);
    ck_assert_str_eq(s_out[0].name, "a");
    ck_assert_str_eq(s_out[0].unit, "%");
    ck_assert_str_eq(s_out[0].volume_json, "1.5");
    ck_assert_str_eq(s_out[1].name, "b");
    ck_assert_str_eq(s_out[1].user_id, "u");
    ck_assert_str_eq(s_out[1].resource_id, "r");
    /* one unit missing: "Only 1 fetched meters contain unit", no sample */
    memset(&s_st, 0, sizeof s_st);
    ck_assert_uint_eq(s_conv(s_note("", "{\"resource_id\":\"r\",\"metrics\":["
                                    "{\"name\":\"a\",\"unit\":\"%\",\"value\":1},"
                                    "{\"name\":\"b\",\"value\":2}]}")), 0);
    ck_assert_uint_eq(s_st.skipped, 1);
    ck_assert_uint_eq(s_st.failed, 0);
    ck_assert_uint_eq(s_conv(s_note("", "{\"resource_id\":\"r\",\"metrics\":[]}")), 0);
}
END_TEST

START_TEST(test_timedelta_filters_and_arithmetic)
{
    s_load("---\nmetric:\n  - name: 'boot'\n    event_type: 't.ev'\n    type: gauge\n"
           "    unit: sec\n    volume:\n      fields: [$.payload.created_at, $.payload.launched_at]\n"
           "      plugin: 'timedelta'\n    resource_id: $.payload.host + \"_\" + $.payload.node\n"
           "  - name: 'pct'\n    event_type: 't.ev'\n    type: gauge\n    unit: 'percent'\n"
           "    volume: $.payload.metrics[?(@.name='cpu.percent')].value * 100\n"
           "    resource_id: $.payload.id.`split(#, 0, 1)`\n");
    ck_assert_uint_eq(s_conv(s_note("", "{\"created_at\":\"2023-03-14 09:26:30+00:00\","
                                    "\"launched_at\":\"2023-03-14T09:26:53.5\",\"host\":\"h\","
                                    "\"node\":\"n\",\"id\":\"a@b#c\",\"metrics\":["
                                    "{\"name\":\"cpu.percent\",\"value\":0.25}]}")), 2);
    ck_assert_str_eq(s_out[0].name, "pct");
    ck_assert_str_eq(s_out[0].volume_json, "25.0");
    ck_assert_str_eq(s_out[0].resource_id, "a@b");
    ck_assert_str_eq(s_out[1].name, "boot");
    ck_assert_str_eq(s_out[1].volume_json, "23.5");
    ck_assert_str_eq(s_out[1].resource_id, "h_n");
    /* a string value is repeated 100 times, as Python does: a number still */
    ck_assert_uint_eq(s_conv(s_note("", "{\"id\":\"x\",\"metrics\":"
                                    "[{\"name\":\"cpu.percent\",\"value\":\"1\"}]}")), 1);
    ck_assert_uint_eq(strlen(s_out[0].volume_json), 102);
}
END_TEST

/* The one deviation: the identity meter's name is evaluated. */
START_TEST(test_identity_name_is_evaluated)
{
    s_load("---\nmetric:\n  - name: $.payload.outcome - $.payload.outcome + "
           "'identity.authenticate.' + $.payload.outcome\n    type: 'delta'\n    unit: 'user'\n"
           "    volume: 1\n    event_type:\n      - 'identity.authenticate'\n"
           "    resource_id: $.payload.initiator.id\n");
    const char *note = "{\"message_id\":\"m\",\"event_type\":\"identity.authenticate\","
                       "\"priority\":\"info\",\"payload\":{\"outcome\":\"success\","
                       "\"initiator\":{\"id\":\"u\"}},\"timestamp\":\"2023-03-14T09:26:53Z\"}";
    ck_assert_uint_eq(s_conv(note), 1);
    ck_assert_str_eq(s_out[0].name, "identity.authenticate.success");
    /* an outcome that is not a string: the expression text, as Ceilometer */
    note = "{\"message_id\":\"m\",\"event_type\":\"identity.authenticate\","
           "\"priority\":\"info\",\"payload\":{\"outcome\":5,"
           "\"initiator\":{\"id\":\"u\"}},\"timestamp\":\"2023-03-14T09:26:53Z\"}";
    ck_assert_uint_eq(s_conv(note), 1);
    ck_assert_str_eq(s_out[0].name, "$.payload.outcome - $.payload.outcome + "
                     "'identity.authenticate.' + $.payload.outcome");
}
END_TEST

/* Ceilometer's other sample endpoints run whatever meters.yaml says. */
START_TEST(test_builtin_endpoints)
{
    s_load("---\nmetric: []\n");
    const char *ipmi =
        "{\"message_id\":\"m\",\"event_type\":\"hardware.ipmi.metrics.update\","
        "\"publisher_id\":\"ironic.c1\",\"priority\":\"INFO\",\"timestamp\":\"2017-07-07 15:54:12\","
        "\"payload\":{\"node_uuid\":\"n1\",\"timestamp\":\"2017-07-07T15:54:12.169510\","
        "\"event_type\":\"hardware.ipmi.metrics\",\"payload\":{\"Fan\":{"
        "\"f1\":{\"Sensor ID\":\"Fan 1A\",\"Sensor Reading\":\"7168 (+/- 0) RPM\"},"
        "\"f2\":{\"Sensor ID\":\"Fan 2\",\"Sensor Reading\":\"Disabled\"}},"
        "\"Current\":{\"c\":{\"Sensor ID\":\"Avg Power\",\"Sensor Reading\":\"130 Watts\"}}}}}";
    ck_assert_uint_eq(s_conv(ipmi), 2);
    ck_assert_str_eq(s_out[0].name, "hardware.ipmi.current");
    ck_assert_str_eq(s_out[0].unit, "W");
    ck_assert_str_eq(s_out[0].volume_json, "130.0");
    ck_assert_str_eq(s_out[1].name, "hardware.ipmi.fan");
    ck_assert_str_eq(s_out[1].resource_id, "n1-fan_1a");
    ck_assert_str_eq(s_out[1].resource_metadata, "{\"Sensor ID\":\"Fan 1A\",\"Sensor Reading\":"
                     "\"7168 (+/- 0) RPM\",\"node\":\"n1\",\"event_type\":\"hardware.ipmi.metrics\","
                     "\"host\":\"ironic.c1\"}");
    ck_assert_str_eq(s_out[1].timestamp, "2017-07-07T15:54:12.169510+00:00");
    const char *poll =
        "{\"message_id\":\"m\",\"event_type\":\"telemetry.polling\",\"priority\":\"SAMPLE\","
        "\"timestamp\":\"2017-07-07 15:54:12\",\"payload\":{\"samples\":[{\"counter_name\":\"cpu\","
        "\"counter_type\":\"cumulative\",\"counter_unit\":\"ns\",\"counter_volume\":5,"
        "\"user_id\":null,\"project_id\":\"p\",\"resource_id\":\"r\",\"timestamp\":\"t0\","
        "\"resource_metadata\":null,\"source\":\"polling\",\"message_id\":\"x\"}]}}";
    ck_assert_uint_eq(s_conv(poll), 1);
    ck_assert_str_eq(s_out[0].source, "polling");
    ck_assert_str_eq(s_out[0].timestamp, "t0");
    ck_assert_str_eq(s_out[0].resource_metadata, "{}");
    const char *http =
        "{\"message_id\":\"m\",\"event_type\":\"http.request\",\"priority\":\"INFO\","
        "\"publisher_id\":\"api\",\"timestamp\":\"2017-07-07 15:54:12\","
        "\"payload\":{\"request\":{\"HTTP_X_USER_ID\":\"u\",\"HTTP_X_SERVICE_NAME\":\"nova\"}}}";
    ck_assert_uint_eq(s_conv(http), 1);
    ck_assert_str_eq(s_out[0].unit, "request");
    ck_assert_str_eq(s_out[0].resource_id, "nova");
    ck_assert_ptr_eq(s_out[0].source, sl_meters_default_source);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("meters");
    TCase *tc = tcase_create("corpus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_corpus_gives_exactly_ceilometers_samples);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_add_test(tc, test_yaml_syntax_error_has_its_line);
    tcase_add_test(tc, test_missing_required_key_has_the_definition_line);
    tcase_add_test(tc, test_unknown_or_unsupported_keys_are_refused);
    tcase_add_test(tc, test_tolerant_loading_skips_and_ignores_like_ceilometer);
    tcase_add_test(tc, test_bad_regex_has_its_line);
    tcase_add_test(tc, test_bad_or_unsupported_jsonpath_has_its_line);
    tcase_add_test(tc, test_jsonpath_over_the_limits_is_refused_with_its_line);
    tcase_add_test(tc, test_the_stock_file_loads);
    suite_add_tcase(s, tc);
    tc = tcase_create("convert");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_lookahead_regex_matches_from_the_start_only);
    tcase_add_test(tc, test_missing_volume_skips_that_definition_and_counts);
    tcase_add_test(tc, test_samples_come_in_reverse_order_and_the_last_duplicate_wins);
    tcase_add_test(tc, test_only_info_and_sample_priorities_give_samples);
    tcase_add_test(tc, test_fields_and_the_context);
    tcase_add_test(tc, test_context_fallbacks_are_the_misparsed_paths);
    tcase_add_test(tc, test_metadata_falls_back_to_the_payload);
    tcase_add_test(tc, test_non_object_payload_gives_event_type_and_host_only);
    tcase_add_test(tc, test_user_metadata);
    tcase_add_test(tc, test_volume_validation);
    tcase_add_test(tc, test_constants);
    tcase_add_test(tc, test_names_and_units_are_paths_with_a_literal_fallback);
    tcase_add_test(tc, test_timestamps_are_normalised_as_iso8601_does);
    tcase_add_test(tc, test_a_raise_loses_the_whole_notification);
    tcase_add_test(tc, test_output_beyond_max_is_counted);
    tcase_add_test(tc, test_sample_gen_writes_ceilometers_fields);
    tcase_add_test(tc, test_sample_put_writes_what_sample_gen_writes);
    tcase_add_test(tc, test_lookup_gives_one_sample_per_element);
    tcase_add_test(tc, test_stable_ids_are_pythons_uuid5);
    tcase_add_test(tc, test_stable_ids_repeat_for_the_same_notification);
    tcase_add_test(tc, test_timedelta_filters_and_arithmetic);
    tcase_add_test(tc, test_identity_name_is_evaluated);
    tcase_add_test(tc, test_builtin_endpoints);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
