/* test_transform — the chain API beyond the scenarios: configuration checks
 * with file:line, per-sample errors that keep state, volume validation,
 * independent state per chain instance, sluice's deliberate fixes
 * (TRANSFORMERS.md section 14), drain, retention expiry, output lifetime. */
#include <check.h>

#include "tests/sl_check.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/pipeline.h"
#include "worker/transform.h"

#define FILE_NAME "pipeline.yaml"

/* A pipeline whose one sink has the given transformers block (YAML lines
 * indented by 6 spaces, starting on line 8). */
static sl_pipeline_t *
s_pipeline(const char *transformers, char *err, size_t errlen)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "sources:\n"                       /* 1 */
             "  - name: src\n"                  /* 2 */
             "    meters: [\"*\"]\n"            /* 3 */
             "    sinks: [sink1]\n"             /* 4 */
             "sinks:\n"                         /* 5 */
             "  - name: sink1\n"                /* 6 */
             "    publishers: [\"test://\"]\n"  /* 7 */
             "    transformers:\n%s",           /* 8 */
             transformers);
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, "meters", err, errlen);
    if (p && sl_transform_check(p, err, errlen) < 0)
        sl_pipeline_destroy(&p);
    return p;
}

static sl_pipeline_t *
s_ok(const char *transformers)
{
    char err[1024] = "";
    sl_pipeline_t *p = s_pipeline(transformers, err, sizeof err);
    ck_assert_msg(p != NULL, "expected the transformers to load, got: %s", err);
    return p;
}

static void
s_bad(const char *transformers, int line, const char *what)
{
    char err[1024] = "";
    sl_pipeline_t *p = s_pipeline(transformers, err, sizeof err);
    if (p)
        sl_pipeline_destroy(&p);
    ck_assert_msg(p == NULL, "expected \"%s\" at line %d, but the transformers loaded", what,
                  line);
    char prefix[64];
    snprintf(prefix, sizeof prefix, FILE_NAME ":%d: ", line);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
                  "expected an error starting with \"%s\", got \"%s\"", prefix, err);
    ck_assert_msg(strstr(err, what) != NULL, "expected an error with \"%s\", got \"%s\"", what,
                  err);
}

static sl_sample_t
s_cpu(const char *rid, const char *ts, const char *vol)
{
    return (sl_sample_t) {
        .id = "x", .name = "cpu", .type = "cumulative", .unit = "ns", .volume_json = vol,
        .volume = vol ? strtod(vol, NULL) : NAN, .user_id = "u", .project_id = "p",
        .resource_id = rid, .timestamp = ts, .resource_metadata = "{\"cpu_number\": 2}",
        .source = "openstack", .message_id = "m",
    };
}

static const char *const s_roc =
    "      - name: rate_of_change\n"
    "        parameters:\n"
    "          target:\n"
    "            name: cpu_util\n"
    "            unit: \"%\"\n"
    "            type: gauge\n"
    "            scale: \"100.0 / (10**9 * (resource_metadata.cpu_number or 1))\"\n";

START_TEST(test_config_errors_have_file_and_line)
{
    s_bad("      - name: rate_of_change\n"
          "        parameters:\n"
          "          target:\n"
          "            scael: 2\n", 12, "unknown parameter 'target.scael'");
    s_bad("      - name: aggregator\n"
          "        parameters:\n"
          "          size: [1]\n", 11, "parameter 'size' must be");
    s_bad("      - name: unit_conversion\n"
          "        parameters:\n"
          "          target:\n"
          "            scale: \"volume * (1 +\"\n", 12, "target.scale");
    s_bad("      - name: unit_conversion\n"
          "        parameters:\n"
          "          target:\n"
          "            scale: \"float(volume)\"\n", 12, "calls are not supported");
    s_bad("      - name: rate_of_change\n"
          "        parameters:\n"
          "          source:\n"
          "            map_from: {name: \"disk(\"}\n"
          "          target:\n"
          "            map_to: {name: \"x\"}\n", 12, "bad regular expression");
    s_bad("      - name: rate_of_change\n"
          "        parameters:\n"
          "          source:\n"
          "            map_from: {name: \"disk\\\\.(read)\"}\n"
          "          target:\n"
          "            map_to: {name: \"\\\\2.rate\"}\n", 14, "invalid group reference 2");
    s_bad("      - name: aggregator\n"
          "        parameters: {size: abc}\n", 10, "size must be a whole number");
    s_bad("      - name: unit_conversion\n"
          "        parameters: {target: {type: counter}}\n", 10, "gauge, delta or cumulative");
    s_bad("      - name: arithmetic\n"
          "        parameters:\n"
          "          target:\n"
          "            expr: \"$(memory) * / 2\"\n", 12, "target.expr");
    s_bad("      - name: arithmetic\n"
          "        parameters:\n"
          "          target:\n"
          "            expr: \"$(my-meter) * 2\"\n", 12, "'-'");
    s_bad("      - name: delta\n"
          "        parameters:\n"
          "          target: {unit: B}\n", 11, "unknown parameter 'target.unit'");
    s_bad("      - name: accumulator\n"
          "        parameters: {size: \"3\"}\n", 10, "must be a number");
}
END_TEST

START_TEST(test_valid_configurations_load)
{
    sl_pipeline_t *p = s_ok(s_roc);
    sl_pipeline_destroy(&p);
    /* Ceilometer's stock disk mapping, the aggregator's string size, an
     * unknown policy (a warning, as in Ceilometer), an arithmetic
     * expression without meters (a warning: it never emits). */
    p = s_ok("      - name: rate_of_change\n"
             "        parameters:\n"
             "          source:\n"
             "            map_from:\n"
             "              name: \"(disk\\\\.device|disk)\\\\.(read|write)\\\\.(bytes|requests)\"\n"
             "              unit: \"(B|request)\"\n"
             "          target:\n"
             "            map_to: {name: \"\\\\1.\\\\2.\\\\3.rate\", unit: \"\\\\1/s\"}\n"
             "            type: gauge\n"
             "      - name: aggregator\n"
             "        parameters: {size: \"2\", retention_time: 60, resource_metadata: bogus}\n"
             "      - name: arithmetic\n"
             "        parameters: {target: {expr: \"1 + 1\"}}\n"
             "      - name: accumulator\n"
             "        parameters: null\n");
    sl_pipeline_destroy(&p);
    /* Ceilometer Rocky's stock cpu_sink, cpu_delta_sink and network_sink */
    p = s_ok("      - name: \"rate_of_change\"\n"
             "        parameters:\n"
             "          target:\n"
             "            name: \"cpu_util\"\n"
             "            unit: \"%\"\n"
             "            type: \"gauge\"\n"
             "            max: 100\n"
             "            scale: \"100.0 / (10**9 * (resource_metadata.cpu_number or 1))\"\n"
             "      - name: \"delta\"\n"
             "        parameters:\n"
             "          target:\n"
             "            name: \"cpu.delta\"\n"
             "          growth_only: True\n"
             "      - name: \"rate_of_change\"\n"
             "        parameters:\n"
             "          source:\n"
             "            map_from:\n"
             "              name: \"network\\\\.(incoming|outgoing)\\\\.(bytes|packets)\"\n"
             "              unit: \"(B|packet)\"\n"
             "          target:\n"
             "            map_to:\n"
             "              name: \"network.\\\\1.\\\\2.rate\"\n"
             "              unit: \"\\\\1/s\"\n"
             "            type: \"gauge\"\n");
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_state_is_per_chain_instance)
{
    sl_pipeline_t *p = s_ok(s_roc);
    sl_chain_t *a = sl_chain_new(&p->sinks[0]), *b = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t s1 = s_cpu("inst-1", "2024-05-01T12:00:00", "0");
    sl_sample_t s2 = s_cpu("inst-1", "2024-05-01T12:01:00", "60000000000");
    sl_chain_process(a, &s1, 1, &out);
    sl_chain_flush(a, &out);
    sl_chain_process(a, &s2, 1, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_msg(fabs(out.v[0].volume - 50.0) < 1e-9, "expected 50%%, got %g", out.v[0].volume);
    ck_assert_str_eq(out.v[0].name, "cpu_util");
    out.n = 0;
    sl_chain_process(b, &s2, 1, &out);      /* b has never seen inst-1 */
    ck_assert_uint_eq(out.n, 0);
    ck_assert_uint_eq(sl_chain_stats(b)->absorbed, 1);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&a);
    sl_chain_destroy(&b);
    ck_assert_ptr_null(a);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_error_on_a_sample_keeps_state)
{
    /* The scale fails when the metadata's divisor is 0; that sample is
     * dropped but still becomes the next one's predecessor. */
    sl_pipeline_t *p = s_ok("      - name: rate_of_change\n"
                            "        parameters:\n"
                            "          target: {scale: \"volume / resource_metadata.d\"}\n");
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t s[3] = {
        s_cpu("r", "2024-05-01T12:00:00", "10"),
        s_cpu("r", "2024-05-01T12:00:10", "20"),
        s_cpu("r", "2024-05-01T12:00:20", "40"),
    };
    s[0].resource_metadata = s[2].resource_metadata = "{\"d\": 2}";
    s[1].resource_metadata = "{\"d\": 0}";
    sl_chain_process(c, s, 3, &out);
    ck_assert_uint_eq(sl_chain_stats(c)->errors, 1);
    ck_assert_uint_eq(out.n, 1);
    /* (40 / 2) * (40 - 20) / 10 s: the failed sample was the predecessor */
    ck_assert_msg(fabs(out.v[0].volume - 40.0) < 1e-9, "expected 40, got %g", out.v[0].volume);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_volume_validation)
{
    sl_pipeline_t *p = s_ok("      - name: unit_conversion\n"
                            "        parameters: {target: {scale: 2}}\n");
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t s[4] = {
        s_cpu("r", "t", NULL), s_cpu("r", "t", "\"abc\""), s_cpu("r", "t", "\" 7 \""),
        s_cpu("r", "t", "3"),
    };
    s[2].volume = 7;
    sl_chain_process(c, s, 4, &out);
    ck_assert_uint_eq(out.n, 2);
    ck_assert_msg(out.v[0].volume == 14 && out.v[1].volume == 6, "got %g %g", out.v[0].volume,
                  out.v[1].volume);
    ck_assert_uint_eq(sl_chain_stats(c)->no_volume, 2);
    /* a list volume aborts the whole notification */
    out.n = 0;
    s[0] = s_cpu("r", "t", "5");
    s[1] = s_cpu("r", "t", "[1]");
    sl_chain_process(c, s, 2, &out);
    ck_assert_uint_eq(out.n, 0);
    ck_assert_uint_eq(sl_chain_stats(c)->aborted_batches, 1);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_cache_key_is_the_pair)
{
    /* ("cpu", "1x") and ("cpu1", "x") concatenate to the same string: in
     * Ceilometer they shared a cache entry; in sluice they do not. */
    sl_pipeline_t *p = s_ok("      - name: delta\n        parameters: null\n");
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t a = s_cpu("1x", "2024-05-01T12:00:00", "10");
    sl_sample_t b = s_cpu("x", "2024-05-01T12:00:10", "25");
    b.name = "cpu1";
    sl_chain_process(c, &a, 1, &out);
    sl_chain_process(c, &b, 1, &out);
    ck_assert_uint_eq(out.n, 0);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_failed_arithmetic_hands_nothing_on)
{
    /* Ceilometer handed a None placeholder to the accumulator, which counted
     * it toward its size; sluice hands nothing on. */
    sl_pipeline_t *p = s_ok("      - name: arithmetic\n"
                            "        parameters: {target: {expr: \"$(cpu) / $(cpu).resource_metadata.d\"}}\n"
                            "      - name: accumulator\n"
                            "        parameters: {size: 2}\n");
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t a = s_cpu("r1", "2024-05-01T12:00:00", "10");
    a.resource_metadata = "{\"d\": 0}";
    sl_sample_t b = s_cpu("r2", "2024-05-01T12:00:00", "10");
    b.resource_metadata = "{\"d\": 5}";
    sl_chain_process(c, &a, 1, &out);
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(sl_chain_stats(c)->eval_errors, 1);
    sl_chain_process(c, &b, 1, &out);
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(out.n, 0);            /* one held: size 2 not reached */
    sl_chain_process(c, &b, 1, &out);
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(out.n, 2);
    ck_assert_msg(out.v[0].volume == 2.0 && !strcmp(out.v[0].resource_id, "r2"), "got %g %s",
                  out.v[0].volume, out.v[0].resource_id);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_retention_drain_and_expiry)
{
    sl_pipeline_t *p = s_ok("      - name: aggregator\n"
                            "        parameters: {size: 0, retention_time: 60}\n");
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    ck_assert(isinf(sl_chain_next_expiry(c)));
    sl_sample_t s = s_cpu("r", "2024-05-01T12:00:00Z", "5");
    s.type = "delta";
    sl_chain_process(c, &s, 1, &out);
    double exp = sl_chain_next_expiry(c);
    ck_assert_msg(fabs(exp - (1714564800.0 + 60)) < 0.01, "expiry %f", exp);
    sl_chain_set_now(c, 1714564800.0 + 60);        /* not strictly older yet */
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(out.n, 0);
    sl_chain_set_now(c, 1714564800.0 + 61);
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_msg(out.v[0].volume == 5, "got %g", out.v[0].volume);
    const size_t *ends;
    ck_assert_uint_eq(sl_chain_flush_batches(c, &ends), 1);
    ck_assert_uint_eq(ends[0], 1);
    ck_assert(isinf(sl_chain_next_expiry(c)));
    /* drain releases a group short of its retention */
    out.n = 0;
    sl_chain_set_now(c, 1714564800.0);
    sl_chain_process(c, &s, 1, &out);
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(out.n, 0);
    sl_chain_drain(c, &out);
    ck_assert_uint_eq(out.n, 1);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_outputs_live_until_the_caller_empties_out)
{
    /* Many notifications appended to one vector (a frame): every new sample
     * must still be readable at the end (ASan checks the memory). */
    sl_pipeline_t *p = s_ok("      - name: unit_conversion\n"
                            "        parameters: {target: {name: renamed, scale: \"volume * 2\"}}\n");
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_chain_set_source(c, "mysource");
    sl_sample_vec_t out = { 0 };
    for (int i = 0; i < 5000; i++) {
        char vol[32];
        snprintf(vol, sizeof vol, "%d", i);
        sl_sample_t s = s_cpu("r", "2024-05-01T12:00:00", vol);
        sl_chain_process(c, &s, 1, &out);
        sl_chain_flush(c, &out);
    }
    ck_assert_uint_eq(out.n, 5000);
    for (int i = 0; i < 5000; i++) {
        ck_assert_str_eq(out.v[i].name, "renamed");
        ck_assert_str_eq(out.v[i].source, "mysource");
        ck_assert_uint_eq(strlen(out.v[i].id), 36);
        ck_assert_msg(out.v[i].volume == 2.0 * i, "sample %d: %g", i, out.v[i].volume);
    }
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_no_transformers_passes_the_same_samples)
{
    char err[512];
    const char *yaml = "sources:\n  - name: s\n    meters: [\"*\"]\n    sinks: [k]\n"
                       "sinks:\n  - name: k\n    publishers: [\"test://\"]\n";
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, "meters", err, sizeof err);
    ck_assert_msg(p && sl_transform_check(p, err, sizeof err) == 0, "%s", err);
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t s[2] = { s_cpu("r", "t", "1"), s_cpu("r", "t", NULL) };
    sl_chain_process(c, s, 2, &out);
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_ptr_eq(out.v[0].resource_metadata, s[0].resource_metadata);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_describe_lists_every_transformer)
{
    char buf[8192];
    const char *want[] = { "unit_conversion", "rate_of_change", "delta", "accumulator",
                           "aggregator", "arithmetic" };
    size_t i;
    for (i = 0; sl_transform_describe(i, buf, sizeof buf); i++) {
        ck_assert_uint_lt(i, 6);
        ck_assert_str_eq(sl_transform_describe(i, buf, sizeof buf), want[i]);
        ck_assert_ptr_nonnull(strstr(buf, want[i]));
        /* common/pipeline.c knows it, and only unit_conversion keeps no state
         * (so only it leaves a sink unpartitioned) */
        ck_assert_int_eq(sl_transformer_kind(want[i]), strcmp(want[i], "unit_conversion") != 0);
    }
    ck_assert_uint_eq(i, 6);
}
END_TEST

int
main(void)
{
    sl_log_init('T', SL_LOG_ERROR, NULL);
    Suite *s = suite_create("transform");
    TCase *tc = tcase_create("transform");
    tcase_add_test(tc, test_config_errors_have_file_and_line);
    tcase_add_test(tc, test_valid_configurations_load);
    tcase_add_test(tc, test_state_is_per_chain_instance);
    tcase_add_test(tc, test_error_on_a_sample_keeps_state);
    tcase_add_test(tc, test_volume_validation);
    tcase_add_test(tc, test_cache_key_is_the_pair);
    tcase_add_test(tc, test_failed_arithmetic_hands_nothing_on);
    tcase_add_test(tc, test_retention_drain_and_expiry);
    tcase_add_test(tc, test_outputs_live_until_the_caller_empties_out);
    tcase_add_test(tc, test_no_transformers_passes_the_same_samples);
    tcase_add_test(tc, test_describe_lists_every_transformer);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
