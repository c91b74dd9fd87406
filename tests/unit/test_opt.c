/* opt: the one option-table type (parsing, bounds, defaults, URL queries,
 * formatting, help). */
#include <check.h>

#include "tests/sl_check.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opt.h"

typedef struct {
    char    *name;
    char    *dir;
    unsigned count;
    uint64_t bytes;
    unsigned wait_ms;
    unsigned on;
    double   ratio;
    unsigned policy;
    char    *workers;
    char    *level;
} s_cfg_t;

#define OFF(f) offsetof(s_cfg_t, f)

static const sl_opt_t s_tab[] = {
    { .name = "name", .type = SL_OPT_STR, .offset = OFF(name), .def = "sluice",
      .help = "a name" },
    { .name = "dir", .type = SL_OPT_PATH, .offset = OFF(dir), .help = "a directory" },
    { .name = "count", .type = SL_OPT_UINT, .offset = OFF(count), .def = "16", .min = 1,
      .max = 4096, .help = "how many" },
    { .name = "bytes", .type = SL_OPT_SIZE, .offset = OFF(bytes), .def = "64M",
      .min = 1024, .max = 1ULL << 40, .help = "how much" },
    { .name = "wait", .type = SL_OPT_MS, .offset = OFF(wait_ms), .def = "2s", .min = 10,
      .max = 600000, .help = "how long" },
    { .name = "on", .type = SL_OPT_BOOL, .offset = OFF(on), .def = "false", .help = "whether" },
    { .name = "ratio", .type = SL_OPT_DOUBLE, .offset = OFF(ratio), .def = "0.5", .dmin = 0,
      .dmax = 1, .help = "a fraction" },
    { .name = "policy", .type = SL_OPT_ENUM, .offset = OFF(policy), .def = "default",
      .choices = "default|queue|drop", .help = "what to do when full" },
    { .name = "workers", .type = SL_OPT_STR, .offset = OFF(workers), .def = "auto", .min = 1,
      .max = 64, .check = sl_opt_check_auto_uint, .type_text = "auto or 1..64",
      .help = "processes" },
    { .name = "level", .type = SL_OPT_STR, .offset = OFF(level), .def = "info",
      .check = sl_opt_check_log_level, .help = "log level" },
    { .name = "expr", .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .required = 1,
      .help = "read by the plugin" },
    { .name = NULL },
};

static void
s_expect_set_error(const char *name, const char *text, const char *want)
{
    s_cfg_t c = { 0 };
    char err[256] = "";
    const sl_opt_t *o = sl_opt_find(s_tab, name);
    ck_assert_ptr_nonnull(o);
    ck_assert_msg(sl_opt_set(o, &c, text, err, sizeof err) == -1, "%s: accepted '%s'", name,
                  text);
    ck_assert_msg(strcmp(err, want) == 0, "%s='%s': expected \"%s\", got \"%s\"", name, text,
                  want, err);
    sl_opt_free(s_tab, &c);
}

START_TEST(defaults_fill_every_option_that_has_one)
{
    s_cfg_t c = { 0 };
    char err[256];
    ck_assert_int_eq(sl_opt_defaults(s_tab, &c, err, sizeof err), 0);
    ck_assert_str_eq(c.name, "sluice");
    ck_assert_ptr_null(c.dir);
    ck_assert_uint_eq(c.count, 16);
    ck_assert_uint_eq(c.bytes, 64ULL << 20);
    ck_assert_uint_eq(c.wait_ms, 2000);
    ck_assert_uint_eq(c.on, 0);
    ck_assert_double_eq(c.ratio, 0.5);
    ck_assert_uint_eq(c.policy, 0);
    ck_assert_str_eq(c.workers, "auto");
    ck_assert_str_eq(c.level, "info");
    sl_opt_free(s_tab, &c);
    ck_assert_ptr_null(c.name);
    ck_assert_ptr_null(c.workers);
}
END_TEST

/* Every table the tree compiles in must have defaults that parse. */
START_TEST(a_default_that_does_not_parse_is_reported)
{
    static const sl_opt_t bad[] = {
        { .name = "n", .type = SL_OPT_UINT, .offset = 0, .def = "0", .min = 1, .max = 2 },
        { .name = NULL },
    };
    unsigned n = 0;
    char err[256];
    ck_assert_int_eq(sl_opt_defaults(bad, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "default of n does not parse: n: 0 is out of range [1, 2]");
}
END_TEST

START_TEST(each_type_parses_what_it_documents)
{
    s_cfg_t c = { 0 };
    char err[256];
    struct { const char *name, *text; } ok[] = {
        { "name", "x y" }, { "dir", "/tmp" }, { "count", "4096" }, { "bytes", "2k" },
        { "wait", "250ms" }, { "on", "YES" }, { "ratio", "1" }, { "policy", "drop" },
        { "workers", "12" }, { "level", "debug" }, { "expr", "a + b" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        ck_assert_msg(sl_opt_set(sl_opt_find(s_tab, ok[i].name), &c, ok[i].text, err,
                                 sizeof err) == 0, "%s='%s' refused: %s", ok[i].name,
                      ok[i].text, err);
    ck_assert_str_eq(c.name, "x y");
    ck_assert_str_eq(c.dir, "/tmp");
    ck_assert_uint_eq(c.count, 4096);
    ck_assert_uint_eq(c.bytes, 2048);
    ck_assert_uint_eq(c.wait_ms, 250);
    ck_assert_uint_eq(c.on, 1);
    ck_assert_double_eq(c.ratio, 1.0);
    ck_assert_uint_eq(c.policy, 2);
    ck_assert_str_eq(c.workers, "12");
    ck_assert_str_eq(c.level, "debug");
    /* Sizes and durations with their units. */
    const sl_opt_t *b = sl_opt_find(s_tab, "bytes"), *w = sl_opt_find(s_tab, "wait");
    ck_assert_int_eq(sl_opt_set(b, &c, "3M", err, sizeof err), 0);
    ck_assert_uint_eq(c.bytes, 3ULL << 20);
    ck_assert_int_eq(sl_opt_set(b, &c, "1G", err, sizeof err), 0);
    ck_assert_uint_eq(c.bytes, 1ULL << 30);
    ck_assert_int_eq(sl_opt_set(b, &c, "4096", err, sizeof err), 0);
    ck_assert_uint_eq(c.bytes, 4096);
    ck_assert_int_eq(sl_opt_set(w, &c, "30", err, sizeof err), 0);
    ck_assert_uint_eq(c.wait_ms, 30);
    ck_assert_int_eq(sl_opt_set(w, &c, "2s", err, sizeof err), 0);
    ck_assert_uint_eq(c.wait_ms, 2000);
    ck_assert_int_eq(sl_opt_set(w, &c, "1m", err, sizeof err), 0);
    ck_assert_uint_eq(c.wait_ms, 60000);
    const sl_opt_t *on = sl_opt_find(s_tab, "on");
    const char *truths[] = { "true", "on", "1", "yes" }, *lies[] = { "false", "off", "0", "NO" };
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(sl_opt_set(on, &c, lies[i], err, sizeof err), 0);
        ck_assert_uint_eq(c.on, 0);
        ck_assert_int_eq(sl_opt_set(on, &c, truths[i], err, sizeof err), 0);
        ck_assert_uint_eq(c.on, 1);
    }
    ck_assert_int_eq(sl_opt_set(sl_opt_find(s_tab, "workers"), &c, "auto", err, sizeof err), 0);
    ck_assert_str_eq(c.workers, "auto");
    sl_opt_free(s_tab, &c);
}
END_TEST

START_TEST(bad_values_and_bounds_say_what_is_wrong)
{
    s_expect_set_error("count", "abc", "count: 'abc' is not a whole number");
    s_expect_set_error("count", "1k", "count: '1k' is not a whole number");
    s_expect_set_error("count", "-1", "count: '-1' is not a whole number");
    s_expect_set_error("count", "", "count: '' is not a whole number");
    s_expect_set_error("count", "0", "count: 0 is out of range [1, 4096]");
    s_expect_set_error("count", "4097", "count: 4097 is out of range [1, 4096]");
    s_expect_set_error("count", "99999999999999999999999", "count: '99999999999999999999999' "
                       "is not a whole number");
    s_expect_set_error("bytes", "1T", "bytes: '1T' is not a size (e.g. 1048576 or 1M)");
    s_expect_set_error("bytes", "12", "bytes: 12 is out of range [1024, 1099511627776]");
    s_expect_set_error("bytes", "20000000000G", "bytes: '20000000000G' is not a size (e.g. "
                       "1048576 or 1M)");
    s_expect_set_error("wait", "2 s", "wait: '2 s' is not a duration (e.g. 250ms, 2s or 1m)");
    s_expect_set_error("wait", "5ms", "wait: 5 is out of range [10, 600000]");
    s_expect_set_error("wait", "11m", "wait: 660000 is out of range [10, 600000]");
    s_expect_set_error("on", "maybe", "on: 'maybe' is not a boolean (use true or false)");
    s_expect_set_error("ratio", "half", "ratio: 'half' is not a number");
    s_expect_set_error("ratio", "nan", "ratio: 'nan' is not a number");
    s_expect_set_error("ratio", "inf", "ratio: 'inf' is not a number");
    s_expect_set_error("ratio", "", "ratio: '' is not a number");
    s_expect_set_error("ratio", "1.5", "ratio: 1.5 is out of range [0, 1]");
    s_expect_set_error("policy", "retry", "policy: 'retry' is not a valid value (use default, "
                       "queue or drop)");
    s_expect_set_error("workers", "0", "workers: '0' must be auto or a number from 1 to 64");
    s_expect_set_error("workers", "many", "workers: 'many' must be auto or a number from 1 to 64");
    s_expect_set_error("level", "chatty", "level: 'chatty' is not a log level (use error, warn, "
                       "info or debug)");
}
END_TEST

/* A refused value leaves the field as it was. */
START_TEST(a_refused_value_changes_nothing)
{
    s_cfg_t c = { 0 };
    char err[256];
    ck_assert_int_eq(sl_opt_defaults(s_tab, &c, err, sizeof err), 0);
    ck_assert_int_eq(sl_opt_set(sl_opt_find(s_tab, "count"), &c, "0", err, sizeof err), -1);
    ck_assert_uint_eq(c.count, 16);
    ck_assert_int_eq(sl_opt_set(sl_opt_find(s_tab, "workers"), &c, "x", err, sizeof err), -1);
    ck_assert_str_eq(c.workers, "auto");
    sl_opt_free(s_tab, &c);
}
END_TEST

START_TEST(query_percent_decodes_and_sets_known_keys)
{
    s_cfg_t c = { 0 };
    char err[256];
    ck_assert_int_eq(sl_opt_defaults(s_tab, &c, err, sizeof err), 0);
    size_t unknown = 99;
    ck_assert_msg(sl_opt_query(s_tab, &c, "name=a%20b%2Fc+d&count=7&&policy=queue&on", 0,
                               &unknown, err, sizeof err) == 0, "refused: %s", err);
    ck_assert_str_eq(c.name, "a b/c d");
    ck_assert_uint_eq(c.count, 7);
    ck_assert_uint_eq(c.policy, 1);
    ck_assert_uint_eq(c.on, 0);     /* no value: dropped, as parse_qs does */
    ck_assert_uint_eq(unknown, 0);
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "bogus=&on=", 0, NULL, err, sizeof err), 0);
    /* The last of repeated keys wins; a lone or broken % stays as written. */
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "name=x&name=%zz%2&count=%33", 0, NULL, err,
                                  sizeof err), 0);
    ck_assert_str_eq(c.name, "%zz%2");
    ck_assert_uint_eq(c.count, 3);
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "name=a%00b", 0, NULL, err, sizeof err), 0);
    ck_assert_str_eq(c.name, "a%00b");
    /* Keys are decoded too. */
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "na%6De=k", 0, NULL, err, sizeof err), 0);
    ck_assert_str_eq(c.name, "k");
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "", 0, NULL, err, sizeof err), 0);
    ck_assert_int_eq(sl_opt_query(s_tab, &c, NULL, 0, NULL, err, sizeof err), 0);
    sl_opt_free(s_tab, &c);
}
END_TEST

START_TEST(query_unknown_keys_are_errors_unless_the_caller_takes_them)
{
    s_cfg_t c = { 0 };
    char err[512];
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "count=2&bogus=1", 0, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unknown option 'bogus' (known: name, dir, count, bytes, wait, on,")
                  == err, "got %s", err);
    size_t unknown = 0;
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "bogus=1&count=5&other=x%20y", 1, &unknown, err,
                                  sizeof err), 0);
    ck_assert_uint_eq(unknown, 2);
    ck_assert_uint_eq(c.count, 5);
    /* A bad value of a known key is an error either way. */
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "count=many", 1, &unknown, err, sizeof err), -1);
    ck_assert_str_eq(err, "count: 'many' is not a whole number");
    sl_opt_free(s_tab, &c);
}
END_TEST

START_TEST(format_gives_back_text_that_parses_to_the_same_value)
{
    s_cfg_t c = { 0 }, d = { 0 };
    char err[256], buf[128];
    ck_assert_int_eq(sl_opt_defaults(s_tab, &c, err, sizeof err), 0);
    ck_assert_int_eq(sl_opt_query(s_tab, &c, "dir=/x&policy=drop&ratio=0.25&on=yes", 0, NULL,
                                  err, sizeof err), 0);
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "name"), &c, buf, sizeof buf), "sluice");
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "bytes"), &c, buf, sizeof buf), "67108864");
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "wait"), &c, buf, sizeof buf), "2000");
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "on"), &c, buf, sizeof buf), "true");
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "ratio"), &c, buf, sizeof buf), "0.25");
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "policy"), &c, buf, sizeof buf), "drop");
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "expr"), &c, buf, sizeof buf), "");
    for (const sl_opt_t *o = s_tab; o->name; o++) {
        sl_opt_format(o, &c, buf, sizeof buf);
        if (o->type != SL_OPT_ANY)
            ck_assert_msg(sl_opt_set(o, &d, buf, err, sizeof err) == 0, "%s: '%s' does not "
                          "parse back: %s", o->name, buf, err);
    }
    ck_assert_str_eq(d.dir, "/x");
    ck_assert_uint_eq(d.policy, 2);
    ck_assert_uint_eq(d.wait_ms, c.wait_ms);
    ck_assert_double_eq(d.ratio, c.ratio);
    sl_opt_free(s_tab, &c);
    sl_opt_free(s_tab, &d);
    s_cfg_t e = { 0 };
    ck_assert_str_eq(sl_opt_format(sl_opt_find(s_tab, "dir"), &e, buf, sizeof buf), "");
}
END_TEST

START_TEST(help_is_a_markdown_table_of_every_option)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sl_opt_help(f, s_tab, "x.");
    fclose(f);
    ck_assert_msg(strncmp(buf, "| option | type | default | help |\n|---|---|---|---|\n", 52) == 0,
                  "got %s", buf);
    const char *rows[] = {
        "| `x.name` | text | `sluice` | a name |\n",
        "| `x.dir` | path | (none) | a directory |\n",
        "| `x.count` | whole number 1..4096 | `16` | how many |\n",
        "| `x.bytes` | size | `64M` | how much |\n",
        "| `x.wait` | duration | `2s` | how long |\n",
        "| `x.on` | true/false | `false` | whether |\n",
        "| `x.ratio` | number 0..1 | `0.5` | a fraction |\n",
        "| `x.policy` | default\\|queue\\|drop | `default` | what to do when full |\n",
        "| `x.workers` | auto or 1..64 | `auto` | processes |\n",
        "| `x.expr` | any | (required) | read by the plugin |\n",
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        ck_assert_msg(strstr(buf, rows[i]) != NULL, "help lacks \"%s\" in:\n%s", rows[i], buf);
    free(buf);
    char t[64];
    ck_assert_str_eq(sl_opt_type_text(sl_opt_find(s_tab, "count"), t, sizeof t),
                     "whole number 1..4096");
}
END_TEST

START_TEST(find_and_count)
{
    ck_assert_uint_eq(sl_opt_count(s_tab), 11);
    ck_assert_uint_eq(sl_opt_count(NULL), 0);
    ck_assert_ptr_eq(sl_opt_find(s_tab, "wait"), &s_tab[4]);
    ck_assert_ptr_null(sl_opt_find(s_tab, "wai"));
    ck_assert_ptr_null(sl_opt_find(NULL, "wait"));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("opt");
    TCase *tc = tcase_create("opt");
    tcase_add_test(tc, defaults_fill_every_option_that_has_one);
    tcase_add_test(tc, a_default_that_does_not_parse_is_reported);
    tcase_add_test(tc, each_type_parses_what_it_documents);
    tcase_add_test(tc, bad_values_and_bounds_say_what_is_wrong);
    tcase_add_test(tc, a_refused_value_changes_nothing);
    tcase_add_test(tc, query_percent_decodes_and_sets_known_keys);
    tcase_add_test(tc, query_unknown_keys_are_errors_unless_the_caller_takes_them);
    tcase_add_test(tc, format_gives_back_text_that_parses_to_the_same_value);
    tcase_add_test(tc, help_is_a_markdown_table_of_every_option);
    tcase_add_test(tc, find_and_count);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
