/* fuzz_expr — the transformer expression language: sl_expr_compile and
 * sl_expr_eval in both namespaces (a sample's fields, as `target.scale`;
 * arithmetic's `$(meter)` variables after sl_expr_meters_prepare). Input:
 * the expression on the first line; the rest, if any, is the samples'
 * resource_metadata text (else a fixed object), which sl_expr_json_get
 * must survive even when it is not JSON. */
#include "tests/fuzz/fuzz.h"

#include "common/expr.h"

static const char s_meta[] =
    "{\"cpu_number\": 4, \"flavor\": {\"vcpus\": 2, \"name\": \"m1\"}, \"items\": [10, 2.5, "
    "{\"a\": null}], \"s\": \"x\\u00e9\", \"dup\": 1, \"dup\": 2, \"t\": true}";

static void
s_eval(const sl_expr_t *e, const sl_expr_env_t *env)
{
    char err[256] = "";
    sl_xval_t v;
    if (sl_expr_eval(e, env, &v, err, sizeof err) == 0) {
        double d;
        (void) sl_expr_truthy(&v);
        (void) sl_expr_number(&v, &d, err, sizeof err);
        SL_FUZZ_CHECK(sl_expr_type_name(&v) != NULL);
    } else {
        SL_FUZZ_CHECK(err[0] != '\0');
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rest;
    size_t rest_n;
    char *text = sl_fuzz_split(data, size, &rest, &rest_n);
    char *meta = rest_n ? sl_fuzz_cstr(rest, rest_n) : NULL;
    sl_sample_t s = {
        .id = "id-1", .name = "cpu", .type = "cumulative", .unit = "ns",
        .volume_json = "120000000000", .volume = 120000000000.0, .user_id = "u1",
        .resource_id = "inst-1", .timestamp = "2024-05-01T12:00:00+00:00",
        .resource_metadata = meta ? meta : s_meta, .source = "openstack",
        .monotonic_time = "5000.5",
    };
    sl_sample_t s2 = s;
    s2.volume_json = "-0.5", s2.volume = -0.5, s2.monotonic_time = NULL;
    sl_arena_t scratch;
    sl_arena_init(&scratch, 0);
    char err[256] = "";
    const char *val;
    size_t val_n;
    const char *rm = s.resource_metadata;
    (void) sl_expr_json_get(rm, strlen(rm), "flavor", 6, &val, &val_n);

    sl_expr_t *e = sl_expr_compile(text, NULL, 0, err, sizeof err);
    if (e) {
        sl_expr_env_t env = { .sample = &s, .scratch = &scratch };
        s_eval(e, &env);
        sl_expr_destroy(&e);
    }
    sl_expr_meters_t m;
    sl_expr_meters_prepare(text, &m);
    e = sl_expr_compile(m.expr, (const char *const *) m.idents, m.n, err, sizeof err);
    if (e) {
        const sl_sample_t **vars = calloc(m.n + 1, sizeof *vars);
        for (size_t i = 0; i < m.n; i++)
            vars[i] = i % 3 == 0 ? &s : i % 3 == 1 ? &s2 : NULL;
        sl_expr_env_t env = { .vars = vars, .scratch = &scratch };
        s_eval(e, &env);
        free(vars);
        sl_expr_destroy(&e);
    }
    sl_expr_meters_free(&m);
    sl_arena_destroy(&scratch);
    free(meta);
    free(text);
    return 0;
}
