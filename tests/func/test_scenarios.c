/* test_scenarios — every transformer scenario of tests/data/scenarios (the
 * outputs Ceilometer rocky-eol produced, TRANSFORMERS.md section 13) run
 * through the built sluice-transform binary, which drives the pipeline
 * worker's chain code, must give the expected publisher calls: numbers by
 * value (relative tolerance 1e-9, ints equal to floats of the same value),
 * everything else exactly. Where sluice deliberately fixes an upstream
 * defect (section 14), tests/data/scenarios/corrected/<same name> holds
 * the corrected `expected` and a `comment` saying why; it replaces the
 * original's. One test case per scenario file, named after it. */
#include <check.h>

#include "tests/sl_check.h"
#include "tests/sl_testfiles.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/arena.h"
#include "common/json.h"

#define S_DIR SL_SRCDIR "/tests/data/scenarios"
#define S_TOOL SL_BUILDDIR "/tools/sluice-transform"
#define S_N_SCENARIOS 80

static char **s_names;          /* file names, sorted */
static size_t s_n;

static void
s_list(void)
{
    s_n = sl_test_json_files(S_DIR, 0, &s_names);
}

static char *
s_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0, k;
    char *buf = malloc(cap);
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 4096)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Runs the tool on path; its stdout (malloc'd) and exit status. */
static char *
s_run_tool(const char *path, int *status)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -q '%s'", S_TOOL, path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 65536, n = 0, k;
    char *buf = malloc(cap);
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 4096)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    *status = pclose(p);
    return buf;
}

static const char *
s_kind(yajl_val v)
{
    if (!v || YAJL_IS_NULL(v))
        return "null";
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
        return "boolean";
    if (YAJL_IS_NUMBER(v))
        return "number";
    if (YAJL_IS_STRING(v))
        return "string";
    if (YAJL_IS_ARRAY(v))
        return "array";
    return "object";
}

static double
s_num(yajl_val v)
{
    return v->u.number.r ? strtod(v->u.number.r, NULL) : v->u.number.d;
}

/* 1 if equal under the scenario rules; else 0 with where and why in msg. */
static int
s_same(sl_arena_t *a, yajl_val e, yajl_val g, const char *path, char *msg, size_t len)
{
    const char *ke = s_kind(e), *kg = s_kind(g);
    if (strcmp(ke, kg) != 0) {
        snprintf(msg, len, "at %s: expected %s %s, got %s %s", path[0] ? path : "top", ke,
                 sl_json_dump(a, e), kg, sl_json_dump(a, g));
        return 0;
    }
    if (YAJL_IS_NUMBER(e)) {
        double x = s_num(e), y = s_num(g);
        if (x == y || fabs(x - y) <= 1e-9 * fmax(fabs(x), fabs(y)))
            return 1;
        snprintf(msg, len, "at %s: expected %.17g, got %.17g", path, x, y);
        return 0;
    }
    if (YAJL_IS_STRING(e)) {
        if (strcmp(e->u.string, g->u.string) == 0)
            return 1;
        snprintf(msg, len, "at %s: expected \"%s\", got \"%s\"", path, e->u.string, g->u.string);
        return 0;
    }
    if (YAJL_IS_TRUE(e) != YAJL_IS_TRUE(g)) {
        snprintf(msg, len, "at %s: expected %s, got %s", path, sl_json_dump(a, e),
                 sl_json_dump(a, g));
        return 0;
    }
    if (YAJL_IS_ARRAY(e)) {
        if (e->u.array.len != g->u.array.len) {
            snprintf(msg, len, "at %s: expected %zu items, got %zu", path[0] ? path : "top",
                     e->u.array.len, g->u.array.len);
            return 0;
        }
        for (size_t i = 0; i < e->u.array.len; i++) {
            char *sub = sl_arena_printf(a, "%s[%zu]", path, i);
            if (!s_same(a, e->u.array.values[i], g->u.array.values[i], sub, msg, len))
                return 0;
        }
        return 1;
    }
    if (YAJL_IS_OBJECT(e)) {
        for (size_t i = 0; i < e->u.object.len; i++) {
            const char *k = e->u.object.keys[i];
            char *sub = sl_arena_printf(a, "%s.%s", path, k);
            yajl_val gv = sl_json_get(g, k);
            if (!gv) {
                snprintf(msg, len, "at %s: missing (expected %s)", sub,
                         sl_json_dump(a, e->u.object.values[i]));
                return 0;
            }
            if (!s_same(a, e->u.object.values[i], gv, sub, msg, len))
                return 0;
        }
        for (size_t i = 0; i < g->u.object.len; i++)
            if (!sl_json_get(e, g->u.object.keys[i])) {
                snprintf(msg, len, "at %s.%s: not expected (got %s)", path, g->u.object.keys[i],
                         sl_json_dump(a, g->u.object.values[i]));
                return 0;
            }
    }
    return 1;
}

/* The calls, one line each, for the failure report. */
static void
s_print_calls(sl_arena_t *a, const char *title, yajl_val calls)
{
    printf("  %s:\n", title);
    if (!calls || !YAJL_IS_ARRAY(calls) || !calls->u.array.len) {
        printf("    (no publisher call)\n");
        return;
    }
    for (size_t i = 0; i < calls->u.array.len; i++) {
        yajl_val c = calls->u.array.values[i];
        yajl_val samples = sl_json_get(c, "samples");
        printf("    step %s %s:\n", sl_json_dump(a, sl_json_get(c, "step")),
               sl_json_dump(a, sl_json_get(c, "phase")));
        for (size_t k = 0; samples && YAJL_IS_ARRAY(samples) && k < samples->u.array.len; k++)
            printf("      %s\n", sl_json_dump(a, samples->u.array.values[k]));
    }
}

START_TEST(test_scenario)
{
    const char *name = s_names[_i];
    sl_arena_t a;
    sl_arena_init(&a, 0);
    char path[1024], cpath[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", S_DIR, name);
    snprintf(cpath, sizeof cpath, "%s/corrected/%s", S_DIR, name);
    size_t len;
    char *text = s_read(path, &len);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    yajl_val sc = sl_json_parse(&a, text, len, 0, err, sizeof err);
    ck_assert_msg(sc != NULL, "%s: %s", name, err);
    yajl_val expected = sl_json_get(sc, "expected");
    const char *source = "Ceilometer's output";
    char *ctext = s_read(cpath, &len);
    if (ctext) {
        yajl_val corr = sl_json_parse(&a, ctext, len, 0, err, sizeof err);
        ck_assert_msg(corr != NULL, "corrected/%s: %s", name, err);
        const char *why = sl_json_str(sl_json_get(corr, "comment"));
        ck_assert_msg(why && strlen(why) > 20, "corrected/%s must say why in `comment`", name);
        expected = sl_json_get(corr, "expected");
        source = "sluice's corrected expectation (corrected/)";
    }
    ck_assert_msg(expected && YAJL_IS_ARRAY(expected), "%s: no `expected` list", name);
    int status;
    char *out = s_run_tool(path, &status);
    ck_assert_msg(out != NULL, "cannot run %s", S_TOOL);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s: sluice-transform exited with status %d (stderr above)", name, status);
    yajl_val got = sl_json_parse(&a, out, strlen(out), 0, err, sizeof err);
    ck_assert_msg(got != NULL, "%s: sluice-transform printed invalid JSON: %s", name, err);
    char msg[2048];
    int ok = s_same(&a, expected, got, "", msg, sizeof msg);
    if (!ok) {
        printf("scenario %s differs from %s: %s\n", name, source, msg);
        s_print_calls(&a, "expected", expected);
        s_print_calls(&a, "got", got);
    }
    free(out);
    free(text);
    free(ctext);
    sl_arena_destroy(&a);
    ck_assert_msg(ok, "%s: %s (expected %s; full calls printed above)", name, msg, source);
}
END_TEST

START_TEST(test_every_scenario_is_there)
{
    ck_assert_msg(s_n == S_N_SCENARIOS, "expected %d scenario files in %s, found %zu",
                  S_N_SCENARIOS, S_DIR, s_n);
}
END_TEST

int
main(void)
{
    s_list();
    Suite *s = suite_create("scenarios");
    TCase *tc = tcase_create("inventory");
    tcase_add_test(tc, test_every_scenario_is_there);
    suite_add_tcase(s, tc);
    char **tc_names = calloc(s_n + 1, sizeof *tc_names);
    for (size_t i = 0; i < s_n; i++) {
        tc_names[i] = strdup(s_names[i]);
        char *dot = strrchr(tc_names[i], '.');
        if (dot)
            *dot = '\0';
        tc = tcase_create(tc_names[i]);
        tcase_add_loop_test(tc, test_scenario, (int) i, (int) i + 1);
        suite_add_tcase(s, tc);
    }
    int rc = sl_check_run(s);
    for (size_t i = 0; i < s_n; i++) {
        free(tc_names[i]);
        free(s_names[i]);
    }
    free(tc_names);
    free(s_names);
    return rc;
}
