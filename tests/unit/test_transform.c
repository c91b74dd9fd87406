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
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, "meters", NULL, err, errlen);
    if (p && sl_transform_check(p, NULL, err, errlen) < 0)
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

/* What Ceilometer refuses at start-up (a true non-mapping target, int() or
 * float() of a bad string, re.sub over a null expression), and what it
 * accepted but could only fail on at every sample where TRANSFORMERS.md
 * says nothing (a true non-mapping map_from, a list scale, a retention no
 * time span holds), and what sluice cannot run with Python's meaning: a
 * file:line error, tolerant or not. */
START_TEST(test_config_errors_have_file_and_line)
{
    s_bad("      - name: aggregator\n"
          "        parameters:\n"
          "          size: [1]\n", 11, "parameter 'size' must be");
    s_bad("      - name: aggregator\n"
          "        parameters: {size: abc}\n", 10, "size 'abc' is not a whole number");
    s_bad("      - name: aggregator\n"
          "        parameters: {size: .inf}\n", 10, "size .inf is not a whole number");
    s_bad("      - name: aggregator\n"
          "        parameters: {retention_time: \"0x10\"}\n", 10,
          "retention_time '0x10' is not a number");
    s_bad("      - name: aggregator\n"
          "        parameters: {size: \"1__0\"}\n", 10, "size '1__0' is not a whole number");
    s_bad("      - name: aggregator\n"
          "        parameters:\n"
          "          retention_time: .inf\n", 11, "retention_time inf is not a time span");
    s_bad("      - name: accumulator\n"
          "        parameters: {size: \"3\"}\n", 10, "must be a number");
    s_bad("      - name: unit_conversion\n"
          "        parameters:\n"
          "          target: cpu_util\n", 11, "parameter 'target' must be a mapping");
    s_bad("      - name: unit_conversion\n"
          "        parameters:\n"
          "          target:\n"
          "            scale: [2]\n", 12, "parameter 'target.scale' must be");
    s_bad("      - name: unit_conversion\n"
          "        parameters:\n"
          "          source:\n"
          "            map_from: disk\n"
          "          target:\n"
          "            map_to: {name: \"x\"}\n", 12, "source.map_from must be a mapping");
    s_bad("      - name: rate_of_change\n"
          "        parameters:\n"
          "          source:\n"
          "            map_from: {name: \"(?x) disk \\\\. read\"}\n"
          "          target:\n"
          "            map_to: {name: \"x\"}\n", 12, "uses the verbose flag (?x), which sluice "
          "cannot run with Python's meaning");
    s_bad("      - name: arithmetic\n"
          "        parameters:\n"
          "          target:\n"
          "            expr: null\n", 12, "parameter 'target.expr' must be a string, not null");
    s_bad("      - name: unit_conversion\n"
          "        parameters:\n"
          "          target:\n"
          "            scale: \"volume if 'x' in resource_metadata else 0\"\n", 12,
          "'in' is not supported");
}
END_TEST

/* Collects what an sl_ywarn_t emits. */
typedef struct {
    char text[8][1024];
    int  n;
} s_warnings_t;

static void
s_emit(void *arg, const char *text)
{
    s_warnings_t *w = arg;
    if (w->n < 8)
        snprintf(w->text[w->n], sizeof w->text[0], "%s", text);
    w->n++;
}

/* Tolerant: the transformers load with exactly one warning, at
 * pipeline.yaml:line, containing what; strict: the same text is the error.
 * Returns the (tolerant) pipeline, for running the chain. */
static sl_pipeline_t *
s_warned(const char *transformers, int line, const char *what)
{
    char yaml[4096], err[1024] = "";
    snprintf(yaml, sizeof yaml,
             "sources:\n  - name: src\n    meters: [\"*\"]\n    sinks: [sink1]\n"
             "sinks:\n  - name: sink1\n    publishers: [\"test://\"]\n    transformers:\n%s",
             transformers);
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, "meters", NULL, err,
                                         sizeof err);
    ck_assert_msg(p != NULL, "the pipeline does not parse: %s", err);
    s_warnings_t got = { .n = 0 };
    sl_ywarn_t w = { .strict = 0, .emit = s_emit, .arg = &got };
    int rc = sl_transform_check(p, &w, err, sizeof err);
    ck_assert_msg(rc == 0, "expected a warning \"%s\", got the error \"%s\"", what, err);
    ck_assert_msg(got.n == 1 && w.count == 1, "expected one warning \"%s\", got %d (%u "
                  "counted): \"%s\" \"%s\"", what, got.n, w.count, got.n ? got.text[0] : "",
                  got.n > 1 ? got.text[1] : "");
    char prefix[64];
    snprintf(prefix, sizeof prefix, FILE_NAME ":%d: sink 'sink1': transformer '", line);
    ck_assert_msg(strncmp(got.text[0], prefix, strlen(prefix)) == 0,
                  "expected a warning starting with \"%s\", got \"%s\"", prefix, got.text[0]);
    ck_assert_msg(strstr(got.text[0], what) != NULL, "expected a warning with \"%s\", got \"%s\"",
                  what, got.text[0]);
    sl_ywarn_t strict = { .strict = 1 };
    err[0] = '\0';
    ck_assert_msg(sl_transform_check(p, &strict, err, sizeof err) < 0,
                  "strict mode: expected the error \"%s\", but the transformers loaded", what);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0 && strstr(err, what) &&
                  strstr(err, "--strict"), "strict mode: expected \"%s...%s... (an error "
                  "because of --strict...)\", got \"%s\"", prefix, what, err);
    ck_assert_uint_eq(strict.count, 0);
    return p;
}

/* Runs samples through a fresh chain of sink 0, one notification each,
 * flushing after each; the outputs in *out (caller frees). */
static sl_chain_t *
s_run(sl_pipeline_t *p, sl_sample_t *in, size_t n, sl_sample_vec_t *out)
{
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    ck_assert_ptr_nonnull(c);
    for (size_t i = 0; i < n; i++) {
        sl_chain_process(c, &in[i], 1, out);
        sl_chain_flush(c, out);
    }
    return c;
}

/* TRANSFORMERS.md 3.1: an invalid map_from pattern is ignored by
 * Ceilometer at run time (re.sub raises, the exception is swallowed):
 * target.name applies. */
START_TEST(test_invalid_map_pattern_is_a_warning_and_target_name_applies)
{
    sl_pipeline_t *p = s_warned("      - name: rate_of_change\n"
                                "        parameters:\n"
                                "          source:\n"
                                "            map_from: {name: \"(unclosed\"}\n"
                                "          target:\n"
                                "            map_to: {name: \"x\"}\n"
                                "            name: cpu_util\n", 12,
                                "transformer 'rate_of_change': pattern '(unclosed' is invalid "
                                "(missing closing parenthesis): mapping ignored, target.name "
                                "used as Ceilometer does");
    sl_sample_vec_t out = { 0 };
    sl_sample_t s[2] = { s_cpu("r", "2024-05-01T12:00:00", "0"),
                         s_cpu("r", "2024-05-01T12:00:10", "20") };
    sl_chain_t *c = s_run(p, s, 2, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_str_eq(out.v[0].name, "cpu_util");
    ck_assert_msg(out.v[0].volume == 2.0, "expected rate 2, got %g", out.v[0].volume);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
    /* a replacement Python refuses, and a pattern only PCRE accepts: the
     * input's unit is kept when there is no target.unit */
    p = s_warned("      - name: unit_conversion\n"
                 "        parameters:\n"
                 "          source:\n"
                 "            map_from: {unit: \"\\\\p{Lu}+\"}\n"
                 "          target:\n"
                 "            map_to: {unit: \"x\"}\n", 12,
                 "pattern '\\p{Lu}+' is invalid (bad escape \\p): mapping ignored, the input's "
                 "unit kept as Ceilometer does");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: unit_conversion\n"
                 "        parameters:\n"
                 "          source:\n"
                 "            map_from: {name: \"disk\\\\.(read)\"}\n"
                 "          target:\n"
                 "            map_to: {name: \"\\\\2.rate\"}\n", 14,
                 "replacement '\\2.rate' is invalid (invalid group reference 2): mapping "
                 "ignored, the input's name kept");
    sl_pipeline_destroy(&p);
}
END_TEST

/* The name a unit_conversion maps name to with pattern and replacement. */
static void
s_maps(const char *pattern, const char *repl, const char *name, const char *want)
{
    char block[512];
    snprintf(block, sizeof block, "      - name: unit_conversion\n"
             "        parameters:\n"
             "          source: {map_from: {name: \"%s\"}}\n"
             "          target: {map_to: {name: \"%s\"}}\n", pattern, repl);
    sl_pipeline_t *p = s_ok(block);
    sl_sample_vec_t out = { 0 };
    sl_sample_t s = s_cpu("r", "2024-05-01T12:00:00", "1");
    s.name = name;
    sl_chain_t *c = s_run(p, &s, 1, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_msg(!strcmp(out.v[0].name, want), "re.sub('%s', '%s', '%s'): expected '%s', got "
                  "'%s'", pattern, repl, name, want, out.v[0].name);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}

/* Patterns mean what they mean to Python 3.7's re, not to PCRE. */
START_TEST(test_map_patterns_have_python_meaning)
{
    s_maps("a(?i)b", "X", "AB", "X");               /* a global flag anywhere: whole pattern */
    s_maps("(?a)\\\\w+", "X", "\xc3\xa9t\xc3\xa9", "\xc3\xa9X\xc3\xa9");  /* ASCII \w */
    s_maps("\\\\w+", "X", "\xc3\xa9t\xc3\xa9", "X");   /* Unicode \w by default */
    s_maps("x{,2}y", "Z", "xxxy", "xZ");            /* {,n} is a quantifier */
    s_maps("a{}", "Z", "a{}", "Z");                 /* a{} is literal */
    s_maps("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\\\10", "Z", "abcdefghijj", "Z");
    s_maps("\\\\0101", "Z", "A", "A");               /* \010 is a backspace, then '1' */
    s_maps("(?#comment)b+", "Z", "abb", "aZ");
    s_maps("(a)?(?(1)b|c)", "Z", "ab c", "Z Z");
}
END_TEST

/* TRANSFORMERS.md 6: delta reads neither target.unit nor target.type. */
START_TEST(test_delta_ignores_target_unit_and_type_with_a_warning)
{
    sl_pipeline_t *p = s_warned("      - name: delta\n"
                                "        parameters:\n"
                                "          target:\n"
                                "            unit: B\n", 12,
                                "transformer 'delta': ignored parameter 'target.unit' (delta "
                                "keeps the input's unit, as Ceilometer does)");
    sl_sample_vec_t out = { 0 };
    sl_sample_t s[2] = { s_cpu("r", "2024-05-01T12:00:00", "5"),
                         s_cpu("r", "2024-05-01T12:00:10", "12") };
    sl_chain_t *c = s_run(p, s, 2, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_str_eq(out.v[0].unit, "ns");
    ck_assert_str_eq(out.v[0].type, "delta");
    ck_assert_msg(out.v[0].volume == 7.0, "expected 7, got %g", out.v[0].volume);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: delta\n"
                 "        parameters: {target: {type: gauge}}\n", 10,
                 "ignored parameter 'target.type' (delta always emits type delta, as "
                 "Ceilometer does)");
    sl_pipeline_destroy(&p);
}
END_TEST

/* TRANSFORMERS.md 2.1: every transformer takes **kwargs, so Ceilometer
 * ignores what it does not read. */
START_TEST(test_unknown_parameters_are_warnings_with_a_hint)
{
    sl_pipeline_t *p = s_warned("      - name: unit_conversion\n"
                                "        parameters:\n"
                                "          target:\n"
                                "            name: renamed\n"
                                "            scael: 2\n", 13,
                                "ignored parameter 'target.scael' (Ceilometer does not read "
                                "it): did you mean 'target.scale'?");
    sl_sample_vec_t out = { 0 };
    sl_sample_t s = s_cpu("r", "2024-05-01T12:00:00", "5");
    sl_chain_t *c = s_run(p, &s, 1, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_str_eq(out.v[0].name, "renamed");
    ck_assert_msg(out.v[0].volume == 5.0, "expected the volume unscaled, got %g", out.v[0].volume);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: arithmetic\n"
                 "        parameters:\n"
                 "          expr: \"$(cpu) * 2\"\n"
                 "          target: {expr: \"$(cpu)\"}\n", 11,
                 "ignored parameter 'expr' (Ceilometer does not read it): did you mean "
                 "'target.expr'?");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: accumulator\n"
                 "        parameters: {size: 2, flush_every: 10}\n", 10,
                 "ignored parameter 'flush_every' (Ceilometer does not read it; known here: "
                 "size)");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: aggregator\n"
                 "        parameters: {source: {unit: B}}\n", 10,
                 "ignored parameter 'source.unit' (the aggregator converts every sample, as "
                 "Ceilometer does)");
    sl_pipeline_destroy(&p);
}
END_TEST

/* TRANSFORMERS.md 8: size keeps its default 1 when only retention_time is
 * given; size 0 (or "0") aggregates by time only. */
START_TEST(test_aggregator_retention_time_alone_keeps_size_one)
{
    sl_pipeline_t *p = s_ok("      - name: aggregator\n"
                            "        parameters: {retention_time: 3600}\n"
                            "      - name: aggregator\n"
                            "        parameters: {size: \"0\", retention_time: 3600}\n");
    sl_chain_t *first = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t s = s_cpu("r", "2024-05-01T12:00:00Z", "5");
    s.type = "delta";
    sl_chain_set_now(first, 1714564800.0 + 10);
    sl_chain_process(first, &s, 1, &out);
    sl_chain_flush(first, &out);
    /* the first aggregator emitted at once (size 1), the second holds */
    ck_assert_uint_eq(out.n, 0);
    sl_chain_drain(first, &out);
    ck_assert_uint_eq(out.n, 1);
    sl_chain_destroy(&first);
    sl_pipeline_destroy(&p);
    p = s_ok("      - name: aggregator\n"
             "        parameters: {retention_time: 3600}\n");
    sl_chain_t *c = sl_chain_new(&p->sinks[0]);
    sl_chain_set_now(c, 1714564800.0 + 10);
    out.n = 0;
    for (int i = 0; i < 3; i++) {
        sl_chain_process(c, &s, 1, &out);
        sl_chain_flush(c, &out);
        ck_assert_msg(out.n == (size_t) i + 1, "flush %d: expected %d samples, got %zu", i,
                      i + 1, out.n);
    }
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

/* The other setup problems Ceilometer tolerates: each a warning with
 * file:line, the chain then behaves as Ceilometer's did. */
START_TEST(test_tolerated_setup_problems_warn)
{
    sl_pipeline_t *p = s_warned("      - name: aggregator\n"
                                "        parameters: {resource_metadata: bogus}\n", 10,
                                "resource_metadata is unknown (bogus), using last, as "
                                "Ceilometer does");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: aggregator\n"
                 "        parameters:\n"
                 "          timestamp: latest\n", 11,
                 "timestamp latest is neither first nor last: first used");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: aggregator\n"
                 "        parameters:\n"
                 "          size: -2\n", 11, "size -2 is negative: every flush that finds a "
                 "sample emits");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: arithmetic\n"
                 "        parameters: {target: {expr: \"1 + 1\"}}\n", 10,
                 "Arithmetic transformer must use at least one meter in expression '1 + 1'");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: accumulator\n"
                 "        parameters:\n"
                 "          size: 0\n", 11, "size 0 < 1: samples pass through unchanged");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: unit_conversion\n"
                 "        parameters:\n"
                 "          target: {type: counter}\n", 11,
                 "target.type 'counter' is not gauge, delta or cumulative: used as given");
    sl_sample_vec_t out = { 0 };
    sl_sample_t s = s_cpu("r", "2024-05-01T12:00:00", "5");
    sl_chain_t *c = s_run(p, &s, 1, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_str_eq(out.v[0].type, "counter");
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: unit_conversion\n"
                 "        parameters:\n"
                 "          source: {unit: 5}\n"
                 "          target: {scale: 2}\n", 11,
                 "source.unit 5 is not a string: no sample's unit equals it, so every sample "
                 "passes unchanged");
    out.n = 0;
    c = s_run(p, &s, 1, &out);
    ck_assert_uint_eq(out.n, 1);
    ck_assert_msg(out.v[0].volume == 5.0 && out.v[0].id == s.id, "expected the same sample");
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: unit_conversion\n"
                 "        parameters:\n"
                 "          source: \"\"\n", 11,
                 "parameter 'source' is an empty string (false in Python): treated as absent");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: unit_conversion\n"
                 "        parameters:\n"
                 "          source: {map_from: {name: cpu}}\n", 11,
                 "source.map_from without target.map_to: ignored, as Ceilometer does");
    sl_sample_vec_free(&out);
    sl_pipeline_destroy(&p);
}
END_TEST

/* TRANSFORMERS.md 3.3: expressions are not checked at setup and one that
 * cannot be evaluated fails every evaluation: a scale raises for each
 * sample (an error, counted), arithmetic logs and emits nothing. */
START_TEST(test_unevaluable_expressions_warn_and_fail_each_evaluation)
{
    sl_pipeline_t *p = s_warned("      - name: unit_conversion\n"
                                "        parameters:\n"
                                "          target:\n"
                                "            scale: \"volume * (1 +\"\n", 12,
                                "target.scale 'volume * (1 +' cannot be evaluated (syntax "
                                "error at column 14: unexpected end of expression): every "
                                "sample it converts fails");
    sl_sample_vec_t out = { 0 };
    sl_sample_t s[2] = { s_cpu("r", "2024-05-01T12:00:00", "5"),
                         s_cpu("r", "2024-05-01T12:00:10", "6") };
    sl_chain_t *c = s_run(p, s, 2, &out);
    ck_assert_uint_eq(out.n, 0);
    ck_assert_uint_eq(sl_chain_stats(c)->errors, 2);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: unit_conversion\n"
                 "        parameters: {target: {scale: \"float(volume)\"}}\n", 10,
                 "calls are not supported");
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: arithmetic\n"
                 "        parameters:\n"
                 "          target:\n"
                 "            expr: \"$(cpu) * / 2\"\n", 12,
                 "target.expr '$(cpu) * / 2' cannot be evaluated");
    c = s_run(p, s, 2, &out);
    ck_assert_uint_eq(out.n, 0);
    ck_assert_uint_eq(sl_chain_stats(c)->eval_errors, 2);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
    p = s_warned("      - name: arithmetic\n"
                 "        parameters:\n"
                 "          target:\n"
                 "            expr: \"$(cpu) + $(my-meter)\"\n", 12,
                 "$(my-meter): Ceilometer does not escape '-'");
    sl_sample_t m[2] = { s_cpu("r", "2024-05-01T12:00:00", "5"),
                         s_cpu("r", "2024-05-01T12:00:00", "6") };
    m[1].name = "my-meter";
    c = sl_chain_new(&p->sinks[0]);
    sl_chain_process(c, m, 2, &out);
    sl_chain_flush(c, &out);
    ck_assert_uint_eq(out.n, 0);
    ck_assert_uint_eq(sl_chain_stats(c)->eval_errors, 1);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&c);
    sl_pipeline_destroy(&p);
}
END_TEST

/* An expression over the limit is named by its start, so that the reason
 * (and the limit) fits the message. */
START_TEST(test_expressions_over_the_limit_are_refused_with_the_reason)
{
    char block[3500], *o = block;
    o += sprintf(o, "      - name: unit_conversion\n        parameters:\n          target:\n"
                 "            scale: \"volume");
    for (int i = 1; i < 300; i++)
        o += sprintf(o, " + volume");
    sprintf(o, "\"\n");
    s_bad(block, 12, "target.scale 'volume + volume + volume + volume + volume + volume + "
          "volume...': expression nested too deeply: more than 256 levels (the limit)");
    o = block;
    o += sprintf(o, "      - name: arithmetic\n        parameters:\n          target:\n"
                 "            expr: \"$(cpu)");
    for (int i = 1; i < 300; i++)
        o += sprintf(o, " + $(cpu)");
    sprintf(o, "\"\n");
    s_bad(block, 12, "': expression nested too deeply: more than 256 levels (the limit)");
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
    /* int() and float() of strings as Python reads them */
    p = s_ok("      - name: aggregator\n"
             "        parameters: {size: \" +1_0 \", retention_time: \"\\t1_0.5e1 \"}\n"
             "      - name: aggregator\n"
             "        parameters: {size: 2.9, retention_time: \"-5\"}\n");
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
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, "meters", NULL, err, sizeof err);
    ck_assert_msg(p && sl_transform_check(p, NULL, err, sizeof err) == 0, "%s", err);
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
    tcase_add_test(tc, test_invalid_map_pattern_is_a_warning_and_target_name_applies);
    tcase_add_test(tc, test_map_patterns_have_python_meaning);
    tcase_add_test(tc, test_delta_ignores_target_unit_and_type_with_a_warning);
    tcase_add_test(tc, test_unknown_parameters_are_warnings_with_a_hint);
    tcase_add_test(tc, test_aggregator_retention_time_alone_keeps_size_one);
    tcase_add_test(tc, test_tolerated_setup_problems_warn);
    tcase_add_test(tc, test_unevaluable_expressions_warn_and_fail_each_evaluation);
    tcase_add_test(tc, test_expressions_over_the_limit_are_refused_with_the_reason);
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
