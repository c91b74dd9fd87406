/* test_pipeline — pipeline.yaml as Ceilometer reads it (shapes, rules and
 * their messages, with file:line), meter selection with Python's fnmatch,
 * routing, and the partition hash of a sample's grouping keys. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/pipeline.h"

#define FILE_NAME "test.yaml"

static sl_pipeline_t *
s_parse(const char *yaml, const char *kind)
{
    char err[512] = "";
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, kind, NULL, err, sizeof err);
    ck_assert_msg(p != NULL, "expected the pipeline to load, got: %s", err);
    return p;
}

/* The error must begin with "test.yaml:<line>:" and contain what. */
static void
s_expect_error(const char *yaml, const char *kind, int line, const char *what)
{
    char err[1024] = "";
    sl_ywarn_t strict = { .strict = 1 };   /* what Ceilometer ignores is an error too */
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, kind, &strict, err,
                                         sizeof err);
    ck_assert_msg(p == NULL, "expected \"%s\" at line %d, but the pipeline loaded", what, line);
    char prefix[64];
    snprintf(prefix, sizeof prefix, FILE_NAME ":%d:", line);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
                  "expected an error starting with \"%s\", got \"%s\"", prefix, err);
    ck_assert_msg(strstr(err, what) != NULL, "expected an error with \"%s\", got \"%s\"", what, err);
}

/* --- the shapes Ceilometer ships ----------------------------------------- */

/* ceilometer/pipeline/data/pipeline.yaml (Zed) */
static const char s_stock[] =
    "---\n"
    "sources:\n"
    "    - name: meter_source\n"
    "      meters:\n"
    "          - \"*\"\n"
    "      sinks:\n"
    "          - meter_sink\n"
    "sinks:\n"
    "    - name: meter_sink\n"
    "      publishers:\n"
    "          - gnocchi://\n";

/* The Rocky default, with transformers. */
static const char s_rocky[] =
    "---\n"                                                     /* 1 */
    "sources:\n"
    "    - name: meter_source\n"
    "      meters:\n"
    "          - \"*\"\n"                                       /* 5 */
    "      sinks:\n"
    "          - meter_sink\n"
    "    - name: cpu_source\n"
    "      meters:\n"
    "          - \"cpu\"\n"                                     /* 10 */
    "      sinks:\n"
    "          - cpu_sink\n"
    "          - cpu_delta_sink\n"
    "    - name: disk_source\n"
    "      meters:\n"                                           /* 15 */
    "          - \"disk.read.bytes\"\n"
    "          - \"disk.read.requests\"\n"
    "          - \"disk.write.bytes\"\n"
    "          - \"disk.write.requests\"\n"
    "          - \"disk.device.read.bytes\"\n"                  /* 20 */
    "          - \"disk.device.read.requests\"\n"
    "          - \"disk.device.write.bytes\"\n"
    "          - \"disk.device.write.requests\"\n"
    "      sinks:\n"
    "          - disk_sink\n"                                   /* 25 */
    "    - name: network_source\n"
    "      meters:\n"
    "          - \"network.incoming.bytes\"\n"
    "          - \"network.incoming.packets\"\n"
    "          - \"network.outgoing.bytes\"\n"                  /* 30 */
    "          - \"network.outgoing.packets\"\n"
    "      sinks:\n"
    "          - network_sink\n"
    "sinks:\n"
    "    - name: meter_sink\n"                                  /* 35 */
    "      publishers:\n"
    "          - gnocchi://\n"
    "    - name: cpu_sink\n"
    "      transformers:\n"
    "          - name: \"rate_of_change\"\n"                    /* 40 */
    "            parameters:\n"
    "                target:\n"
    "                    name: \"cpu_util\"\n"
    "                    unit: \"%\"\n"
    "                    type: \"gauge\"\n"                     /* 45 */
    "                    max: 100\n"
    "                    scale: \"100.0 / (10**9 * (resource_metadata.cpu_number or 1))\"\n"
    "      publishers:\n"
    "          - gnocchi://\n"
    "    - name: cpu_delta_sink\n"                              /* 50 */
    "      transformers:\n"
    "          - name: \"delta\"\n"
    "            parameters:\n"
    "                target:\n"
    "                    name: \"cpu.delta\"\n"                 /* 55 */
    "                growth_only: True\n"
    "      publishers:\n"
    "          - gnocchi://\n"
    "    - name: disk_sink\n"
    "      transformers:\n"                                     /* 60 */
    "          - name: \"rate_of_change\"\n"
    "            parameters:\n"
    "                source:\n"
    "                    map_from:\n"
    "                        name: \"(disk\\\\.device|disk)\\\\.(read|write)\\\\.(bytes|requests)\"\n"
    "                        unit: \"(B|request)\"\n"
    "                target:\n"
    "                    map_to:\n"
    "                        name: \"\\\\1.\\\\2.\\\\3.rate\"\n"
    "                        unit: \"\\\\1/s\"\n"               /* 70 */
    "                    type: \"gauge\"\n"
    "      publishers:\n"
    "          - gnocchi://\n"
    "    - name: network_sink\n"
    "      transformers:\n"                                     /* 75 */
    "          - name: \"rate_of_change\"\n"
    "            parameters:\n"
    "                source:\n"
    "                   map_from:\n"
    "                       name: \"network\\\\.(incoming|outgoing)\\\\.(bytes|packets)\"\n"
    "                       unit: \"(B|packet)\"\n"
    "                target:\n"
    "                    map_to:\n"
    "                        name: \"network.\\\\1.\\\\2.rate\"\n"
    "                        unit: \"\\\\1/s\"\n"               /* 85 */
    "                    type: \"gauge\"\n"
    "      publishers:\n"
    "          - gnocchi://\n"
    "          - file:///var/log/ceilometer/network.log\n";

START_TEST(test_stock_pipeline_loads)
{
    sl_pipeline_t *p = s_parse(s_stock, "meters");
    ck_assert_uint_eq(p->n_sources, 1);
    ck_assert_uint_eq(p->n_sinks, 1);
    ck_assert_str_eq(p->sources[0].name, "meter_source");
    ck_assert_int_eq(p->sources[0].line, 3);
    ck_assert_uint_eq(p->sources[0].n_meters, 1);
    ck_assert_str_eq(p->sources[0].meters[0], "*");
    ck_assert_uint_eq(p->sources[0].n_sinks, 1);
    ck_assert_uint_eq(p->sources[0].sinks[0], 0);
    ck_assert_str_eq(p->sinks[0].name, "meter_sink");
    ck_assert_int_eq(p->sinks[0].line, 9);
    ck_assert_uint_eq(p->sinks[0].n_publishers, 1);
    ck_assert_str_eq(p->sinks[0].publishers[0], "gnocchi://");
    ck_assert_uint_eq(p->sinks[0].n_transformers, 0);
    ck_assert_int_eq(p->sinks[0].stateful, 0);
    ck_assert_uint_eq(p->sinks[0].n_keys, 1);
    ck_assert_str_eq(p->sinks[0].keys[0], "resource_id");
    uint16_t out[SL_MAX_SINKS];
    ck_assert_uint_eq(sl_pipeline_route(p, "cpu", out, SL_MAX_SINKS), 1);
    ck_assert_uint_eq(out[0], 0);
    ck_assert_uint_eq(sl_pipeline_route(p, "anything.at.all", out, SL_MAX_SINKS), 1);
    sl_pipeline_destroy(&p);
    ck_assert_ptr_null(p);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_rocky_pipeline_with_transformers_loads)
{
    sl_pipeline_t *p = s_parse(s_rocky, "meters");
    ck_assert_uint_eq(p->n_sources, 4);
    ck_assert_uint_eq(p->n_sinks, 5);
    const sl_sink_t *cpu = &p->sinks[1];
    ck_assert_str_eq(cpu->name, "cpu_sink");
    ck_assert_uint_eq(cpu->n_transformers, 1);
    ck_assert_str_eq(cpu->transformers[0].name, "rate_of_change");
    ck_assert_int_eq(cpu->transformers[0].line, 40);
    const sl_ynode_t *params = cpu->transformers[0].parameters;
    ck_assert_ptr_nonnull(params);
    const sl_ynode_t *target = sl_ynode_get(params, "target");
    ck_assert_ptr_nonnull(target);
    ck_assert_str_eq(sl_ynode_get(target, "name")->value, "cpu_util");
    ck_assert_int_eq(cpu->stateful, 1);
    ck_assert_uint_eq(cpu->n_keys, 1);
    ck_assert_str_eq(cpu->keys[0], "resource_id");
    ck_assert_int_eq(p->sinks[0].stateful, 0);
    ck_assert_uint_eq(p->sinks[4].n_publishers, 2);
    ck_assert_str_eq(p->sinks[4].publishers[1], "file:///var/log/ceilometer/network.log");
    ck_assert_uint_eq(p->sources[2].n_meters, 8);
    ck_assert_str_eq(p->sources[2].meters[7], "disk.device.write.requests");

    uint16_t out[SL_MAX_SINKS];
    size_t n = sl_pipeline_route(p, "cpu", out, SL_MAX_SINKS);
    ck_assert_msg(n == 3 && out[0] == 0 && out[1] == 1 && out[2] == 2,
                  "cpu: expected sinks 0 1 2, got %zu sinks starting %u", n, n ? out[0] : 99);
    n = sl_pipeline_route(p, "disk.device.read.bytes", out, SL_MAX_SINKS);
    ck_assert_msg(n == 2 && out[0] == 0 && out[1] == 3, "disk: expected sinks 0 3");
    n = sl_pipeline_route(p, "network.outgoing.packets", out, SL_MAX_SINKS);
    ck_assert_msg(n == 2 && out[0] == 0 && out[1] == 4, "network: expected sinks 0 4");
    n = sl_pipeline_route(p, "cpu_util", out, SL_MAX_SINKS);
    ck_assert_msg(n == 1 && out[0] == 0, "cpu_util: expected sink 0 only");
    /* max bounds what is written */
    ck_assert_uint_eq(sl_pipeline_route(p, "cpu", out, 2), 2);
    ck_assert_uint_eq(out[1], 1);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_event_pipeline_uses_events_key)
{
    static const char yaml[] =
        "---\n"
        "sources:\n"
        "    - name: event_source\n"
        "      events:\n"
        "          - \"*\"\n"
        "      sinks:\n"
        "          - event_sink\n"
        "sinks:\n"
        "    - name: event_sink\n"
        "      publishers:\n"
        "          - notifier://\n";
    sl_pipeline_t *p = s_parse(yaml, "events");
    ck_assert_uint_eq(p->sources[0].n_meters, 1);
    ck_assert_int_eq(sl_pipeline_source_selects(&p->sources[0], "compute.instance.create.end"), 1);
    sl_pipeline_destroy(&p);
    /* the same file is not a sample pipeline */
    s_expect_error(yaml, "meters", 4, "ignored key 'events' in source 'event_source'");
    s_expect_error(s_stock, "events", 4, "ignored key 'meters' in source 'meter_source'");
    s_expect_error(s_stock, "polls", 1, "unknown pipeline kind 'polls'");
}
END_TEST

START_TEST(test_load_reads_a_file)
{
    char path[] = "/tmp/test_pipeline_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, s_rocky, sizeof s_rocky - 1), (ssize_t) (sizeof s_rocky - 1));
    close(fd);
    char err[512] = "";
    sl_pipeline_t *p = sl_pipeline_load(path, "meters", NULL, err, sizeof err);
    ck_assert_msg(p != NULL, "load failed: %s", err);
    ck_assert_uint_eq(p->n_sinks, 5);
    sl_pipeline_destroy(&p);
    unlink(path);
    ck_assert_ptr_null(sl_pipeline_load(path, "meters", NULL, err, sizeof err));
    ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error should name the file: %s", err);
}
END_TEST

/* --- selection ----------------------------------------------------------- */

START_TEST(test_exclusion_only_source_allows_the_rest)
{
    static const char yaml[] =
        "sources:\n"
        "  - name: most\n"
        "    meters: ['!cpu', '!disk.*', '!network.incoming.[bp]*']\n"
        "    sinks: [s]\n"
        "  - name: star_but\n"
        "    meters: ['*', '!memory*']\n"
        "    sinks: [s]\n"
        "sinks:\n"
        "  - name: s\n"
        "    publishers: ['file:///dev/null']\n";
    sl_pipeline_t *p = s_parse(yaml, "meters");
    const sl_source_t *most = &p->sources[0], *star = &p->sources[1];
    static const struct { const char *name; int most, star; } cases[] = {
        { "memory", 1, 0 }, { "memory.usage", 1, 0 }, { "cpu", 0, 1 }, { "cpu_util", 1, 1 },
        { "disk.read.bytes", 0, 1 }, { "disk", 1, 1 }, { "network.incoming.bytes", 0, 1 },
        { "network.incoming.packets", 0, 1 }, { "network.incoming.errors", 1, 1 }, { "", 1, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int a = sl_pipeline_source_selects(most, cases[i].name);
        int b = sl_pipeline_source_selects(star, cases[i].name);
        ck_assert_msg(a == cases[i].most, "exclusions only, \"%s\": expected %d, got %d",
                      cases[i].name, cases[i].most, a);
        ck_assert_msg(b == cases[i].star, "'*' and '!memory*', \"%s\": expected %d, got %d",
                      cases[i].name, cases[i].star, b);
    }
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_exclusions_win_over_includes)
{
    /* A hand-built source (no compiled patterns) as a test or tool may make;
     * the loader forbids mixing, is_supported itself does not. */
    const char *meters[] = { "disk.*", "!disk.device.*", "cpu" };
    sl_source_t src = { .name = "x", .n_meters = 3, .meters = meters };
    ck_assert_int_eq(sl_pipeline_source_selects(&src, "disk.read.bytes"), 1);
    ck_assert_int_eq(sl_pipeline_source_selects(&src, "disk.device.read.bytes"), 0);
    ck_assert_int_eq(sl_pipeline_source_selects(&src, "cpu"), 1);
    ck_assert_int_eq(sl_pipeline_source_selects(&src, "memory"), 0);
    ck_assert_int_eq(sl_pipeline_source_selects(&src, NULL), 0);
}
END_TEST

/* Expected values printed by Python 3.11's fnmatch.fnmatch(name, pattern). */
static const struct {
    const char *name, *pattern;
    int match;
} s_fnmatch_cases[] = {
    { "cpu", "*", 1 },
    { "", "*", 1 },
    { "", "", 1 },
    { "a", "", 0 },
    { "cpu", "cpu", 1 },
    { "cpu", "CPU", 0 },
    { "CPU", "cpu", 0 },
    { "cpu_util", "cpu*", 1 },
    { "cpu_util", "*util", 1 },
    { "cpu.util", "cpu.*", 1 },
    { "cpuxutil", "cpu.util", 0 },
    { "disk.read.bytes", "disk.*", 1 },
    { "disk.read.bytes", "disk.*.bytes", 1 },
    { "disk.bytes", "disk.*.bytes", 0 },
    { "a/b", "*", 1 },
    { "a/b", "a\x3f""b", 1 },
    { "a/b", "a*b", 1 },
    { ".hidden", "*", 1 },
    { ".hidden", "\x3f""hidden", 1 },
    { "a\x0a""b", "a*b", 1 },
    { "a\x0a""b", "a\x3f""b", 1 },
    { "abc", "a\x3f""c", 1 },
    { "ac", "a\x3f""c", 0 },
    { "abbc", "a\x3f""c", 0 },
    { "abc", "[abc]bc", 1 },
    { "dbc", "[abc]bc", 0 },
    { "dbc", "[!abc]bc", 1 },
    { "abc", "[!abc]bc", 0 },
    { "b", "[a-c]", 1 },
    { "d", "[a-c]", 0 },
    { "-", "[a-c]", 0 },
    { "b", "[z-a]", 0 },
    { "z", "[z-a]", 0 },
    { "q", "[!z-a]", 1 },
    { "a", "[!z-a]", 1 },
    { "]", "[]]", 1 },
    { "a", "[]]", 0 },
    { "x", "[!]]", 1 },
    { "]", "[!]]", 0 },
    { "[", "[", 1 },
    { "a[", "a[", 1 },
    { "[!]", "[!]", 1 },
    { "x", "[!]", 0 },
    { "-", "[a-]", 1 },
    { "a", "[a-]", 1 },
    { "b", "[a-]", 0 },
    { "-", "[-a]", 1 },
    { "-", "[!-a]", 0 },
    { "b", "[!-a]", 1 },
    { "\x5c""", "\x5c""", 1 },
    { "a\x5c""b", "a\x5c""b", 1 },
    { "*", "\x5c""*", 0 },
    { "x", "\x5c""*", 0 },
    { "\x5c""x", "\x5c""*", 1 },
    { "^", "[^a]", 1 },
    { "a", "[^a]", 1 },
    { "b", "[^a]", 0 },
    { "a", "[[:alpha:]]", 0 },
    { ":]", "[[:alpha:]]", 1 },
    { "a]", "[[:alpha:]]", 1 },
    { "\xc3""\xa9""", "\x3f""", 1 },
    { "\xc3""\xa9""", "\x3f""\x3f""", 0 },
    { "\xc3""\xa9""t\xc3""\xa9""", "\x3f""t\x3f""", 1 },
    { "\xe6""\x97""\xa5""\xe6""\x9c""\xac""", "[\xe6""\x97""\xa5""]*", 1 },
    { "\xc3""\xa9""", "[\xc3""\xa0""-\xc3""\xbf""]", 1 },
    { "e", "[\xc3""\xa0""-\xc3""\xbf""]", 0 },
    { "\xf0""\x9f""\x92""\xa1""", "\x3f""", 1 },
    { "b", "[a-c-e]", 1 },
    { "-", "[a-c-e]", 1 },
    { "d", "[a-c-e]", 0 },
    { "e", "[a-c-e]", 1 },
    { "c", "[z-ab-c]", 1 },
    { "b", "[z-ab-c]", 1 },
    { "a", "[z-ab-c]", 0 },
    { "z", "[z-ab-c]", 0 },
    { "x", "[!z-ab-c]", 1 },
    { "b", "[!z-ab-c]", 0 },
    { "&", "[&&]", 1 },
    { "a", "[a&&b]", 1 },
    { "~", "[~~]", 1 },
    { "|", "[a||b]", 1 },
    { "abcabc", "*abc", 1 },
    { "abcab", "*abc", 0 },
    { "aaa", "a*a*a", 1 },
    { "aa", "a*a*a", 0 },
    { "mississippi", "m*iss*ppi", 1 },
    { "mississippi", "m*iss*ppx", 0 },
    { "ab", "**b", 1 },
    { "b", "a**", 0 },
    { "storage.objects", "storage.*", 1 },
    { "network.incoming.bytes", "network.*", 1 },
    { "image.size", "!image.*", 0 },
    { "x.y", "x[.]y", 1 },
    { "x-y", "x[.-]y", 1 },
    { "-", "[--0]", 1 },
    { "/", "[--0]", 1 },
    { ".", "[--0]", 1 },
    { "0", "[--0]", 1 },
    { "1", "[--0]", 0 },
    { "a", "[!a-]", 0 },
    { "-", "[!a-]", 0 },
    { "b", "[!a-]", 1 },
    { "c", "[a-b-c]", 1 },
    { "-", "[a-b-c]", 1 },
    { "]", "[]-a]", 1 },
    { "^", "[]-a]", 1 },
    { "b", "[]-a]", 0 },
    { "a", "[!]-a]", 0 },
    { "b", "[!]-a]", 1 },
    { "[", "[[]", 1 },
    { "x", "[\x5c""]", 0 },
    { "\x5c""", "[\x5c""]", 1 },
    { "-", "[\x5c""-a]", 0 },
    { "Z", "[\x5c""-a]", 0 },
};

START_TEST(test_fnmatch_is_pythons)
{
    for (size_t i = 0; i < sizeof s_fnmatch_cases / sizeof s_fnmatch_cases[0]; i++) {
        const char *name = s_fnmatch_cases[i].name, *pat = s_fnmatch_cases[i].pattern;
        int got = sl_pipeline_fnmatch(name, pat);
        ck_assert_msg(got == s_fnmatch_cases[i].match,
                      "fnmatch(\"%s\", \"%s\"): Python says %d, got %d", name, pat,
                      s_fnmatch_cases[i].match, got);
        if (pat[0] == '!' || !pat[0])
            continue;
        /* the same through a source, compiled per call */
        sl_source_t src = { .name = "x", .n_meters = 1, .meters = &pat };
        ck_assert_msg(sl_pipeline_source_selects(&src, name) == got,
                      "source [\"%s\"] on \"%s\" disagrees with fnmatch", pat, name);
    }
}
END_TEST

START_TEST(test_loaded_patterns_match_like_fnmatch)
{
    static const char yaml[] =
        "sources:\n"
        "  - name: a\n"
        "    meters: ['disk.*.bytes', 'cpu?', '[!x]y', 'n[a-c-e]', 'z[]]', '\\*', '\xc3\xa9?']\n"
        "    sinks: [s]\n"
        "sinks:\n"
        "  - name: s\n"
        "    publishers: ['file:///dev/null']\n";
    sl_pipeline_t *p = s_parse(yaml, "meters");
    const sl_source_t *src = &p->sources[0];
    ck_assert_uint_eq(src->n_meters, 7);
    static const char *const names[] = {
        "disk.read.bytes", "disk.bytes", "cpu1", "cpu", "ay", "xy", "n-", "nd", "ne", "z]",
        "\\x", "*", "\xc3\xa9t", "\xc3\xa9", "\xc3\xa9\xc3\xa9", "other",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int want = 0;
        for (size_t k = 0; k < src->n_meters; k++)
            want |= sl_pipeline_fnmatch(names[i], src->meters[k]);
        ck_assert_msg(sl_pipeline_source_selects(src, names[i]) == want,
                      "\"%s\": compiled patterns say %d, fnmatch says %d", names[i], !want, want);
    }
    ck_assert_int_eq(sl_pipeline_source_selects(src, "\xc3\xa9t"), 1);
    ck_assert_int_eq(sl_pipeline_source_selects(src, "\\x"), 1);
    ck_assert_int_eq(sl_pipeline_source_selects(src, "nd"), 0);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_route_gives_each_sink_once_in_order)
{
    static const char yaml[] =
        "sources:\n"
        "  - name: one\n"
        "    meters: ['cpu*']\n"
        "    sinks: [third, first]\n"
        "  - name: two\n"
        "    meters: ['cpu', 'mem*']\n"
        "    sinks: [first, second, third]\n"
        "  - name: three\n"
        "    meters: ['!cpu']\n"
        "    sinks: [second]\n"
        "sinks:\n"
        "  - name: first\n"
        "    publishers: ['a://']\n"
        "  - name: second\n"
        "    publishers: ['b://']\n"
        "  - name: third\n"
        "    publishers: ['c://']\n";
    sl_pipeline_t *p = s_parse(yaml, "meters");
    static const struct { const char *name; size_t n; uint16_t sinks[3]; } cases[] = {
        { "cpu", 3, { 0, 1, 2 } },          /* one + two: 0 and 2 twice, once each */
        { "cpu_util", 3, { 0, 1, 2 } },     /* one + three */
        { "memory", 3, { 0, 1, 2 } },       /* two + three */
        { "disk", 1, { 1 } },               /* three */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t out[SL_MAX_SINKS];
        size_t n = sl_pipeline_route(p, cases[i].name, out, SL_MAX_SINKS);
        ck_assert_msg(n == cases[i].n, "\"%s\": expected %zu sinks, got %zu", cases[i].name,
                      cases[i].n, n);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(out[k] == cases[i].sinks[k], "\"%s\": sink #%zu is %u, expected %u",
                          cases[i].name, k, out[k], cases[i].sinks[k]);
    }
    uint16_t out[SL_MAX_SINKS];
    ck_assert_uint_eq(sl_pipeline_route(p, "cpu", out, 0), 0);
    sl_pipeline_destroy(&p);
}
END_TEST

/* --- transformers, grouping, hashing ------------------------------------- */

START_TEST(test_transformer_kinds)
{
    static const struct { const char *name; int kind; } cases[] = {
        { "unit_conversion", 0 }, { "rate_of_change", 1 }, { "delta", 1 },
        { "accumulator", 1 }, { "aggregator", 1 }, { "arithmetic", 1 },
        { "Delta", -1 }, { "", -1 }, { "rate_of_change ", -1 }, { "conversion", -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(sl_transformer_kind(cases[i].name) == cases[i].kind,
                      "transformer \"%s\": expected %d, got %d", cases[i].name, cases[i].kind,
                      sl_transformer_kind(cases[i].name));
    ck_assert_int_eq(sl_transformer_kind(NULL), -1);
}
END_TEST

/* Without the registry (sluice.yaml's loader, common/-only programs) the
 * names are not checked and every transformer counts as stateful, until
 * sl_pipeline_resolve asks a lookup: then unknown names are errors at
 * their `name:` line, and a sink's keys are the union of its
 * transformers' keys. */
static int
s_lookup(const char *name, int *stateful, const char *const **keys)
{
    static const char *const a[] = { "resource_id", NULL };
    static const char *const b[] = { "project_id", "resource_id", NULL };
    if (strcmp(name, "nope") == 0)
        return -1;
    *stateful = strcmp(name, "unit_conversion") != 0;
    *keys = strcmp(name, "by_project") == 0 ? b : a;
    return 0;
}

START_TEST(test_transformer_lookup_is_the_loaders_only_knowledge)
{
    const char *yaml = "sources: [{name: s, meters: ['*'], sinks: [k, u]}]\n"
                       "sinks:\n"
                       "  - name: k\n"
                       "    transformers:\n"
                       "      - name: delta\n"
                       "      - name: by_project\n"
                       "    publishers: [x://]\n"
                       "  - name: u\n"
                       "    transformers: [{name: unit_conversion}]\n"
                       "    publishers: [x://]\n";
    char err[512] = "";
    sl_pipeline_t *p = sl_pipeline_parse_with(yaml, strlen(yaml), FILE_NAME, "meters", NULL, NULL,
                                              err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(p->sinks[1].stateful, 1);
    ck_assert_int_eq(sl_pipeline_resolve(p, s_lookup, err, sizeof err), 0);
    ck_assert_int_eq(p->sinks[0].stateful, 1);
    ck_assert_int_eq(p->sinks[1].stateful, 0);
    ck_assert_uint_eq(p->sinks[0].n_keys, 2);
    ck_assert_str_eq(p->sinks[0].keys[0], "resource_id");
    ck_assert_str_eq(p->sinks[0].keys[1], "project_id");
    sl_pipeline_destroy(&p);
    p = sl_pipeline_parse_with(yaml, strlen(yaml), FILE_NAME, "meters", s_lookup, NULL, err,
                               sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(p->sinks[1].stateful, 0);
    ck_assert_uint_eq(p->sinks[0].n_keys, 2);
    sl_pipeline_destroy(&p);
    char bad[512];
    snprintf(bad, sizeof bad, "%s", yaml);
    memcpy(strstr(bad, "by_project"), "nope      ", 10);
    p = sl_pipeline_parse_with(bad, strlen(bad), FILE_NAME, "meters", NULL, NULL, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(sl_pipeline_resolve(p, s_lookup, err, sizeof err), -1);
    ck_assert_str_eq(err, "test.yaml:6: unknown transformer 'nope' in sink 'k'");
    sl_pipeline_destroy(&p);
    ck_assert_ptr_null(sl_pipeline_parse_with(bad, strlen(bad), FILE_NAME, "meters", s_lookup,
                                              NULL, err, sizeof err));
    ck_assert_str_eq(err, "test.yaml:6: unknown transformer 'nope' in sink 'k'");
}
END_TEST

START_TEST(test_stateless_chain_is_not_stateful)
{
    static const char yaml[] =
        "sources:\n"
        "  - name: a\n"
        "    meters: ['*']\n"
        "    sinks: [conv, mixed]\n"
        "sinks:\n"
        "  - name: conv\n"
        "    transformers:\n"
        "      - name: unit_conversion\n"
        "        parameters: {target: {unit: 'KB', scale: 'volume / 1024'}}\n"
        "    publishers: ['a://']\n"
        "  - name: mixed\n"
        "    transformers:\n"
        "      - name: unit_conversion\n"
        "      - name: accumulator\n"
        "        parameters: {size: 15}\n"
        "      - name: aggregator\n"
        "        parameters: null\n"
        "    publishers: ['a://']\n";
    sl_pipeline_t *p = s_parse(yaml, "meters");
    ck_assert_int_eq(p->sinks[0].stateful, 0);
    ck_assert_uint_eq(p->sinks[0].n_keys, 1);
    ck_assert_int_eq(p->sinks[1].stateful, 1);
    ck_assert_uint_eq(p->sinks[1].n_transformers, 3);
    ck_assert_ptr_null(p->sinks[1].transformers[0].parameters);
    ck_assert_ptr_nonnull(p->sinks[1].transformers[1].parameters);
    ck_assert_ptr_null(p->sinks[1].transformers[2].parameters);
    ck_assert_uint_eq(p->sinks[1].n_keys, 1);
    ck_assert_str_eq(p->sinks[1].keys[0], "resource_id");
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_group_hash_depends_on_grouping_keys_only)
{
    sl_pipeline_t *p = s_parse(s_rocky, "meters");
    const sl_sink_t *sink = &p->sinks[1];
    sl_sample_t a = { .name = "cpu", .resource_id = "instance-0001", .user_id = "u1",
                      .project_id = "p1", .volume = 1 };
    sl_sample_t b = a;
    b.name = "cpu.delta";
    b.user_id = "someone else";
    b.volume = 2;
    ck_assert_msg(sl_pipeline_group_hash(sink, &a) == sl_pipeline_group_hash(sink, &b),
                  "samples of one resource must share a hash");
    b.resource_id = "instance-0002";
    ck_assert_msg(sl_pipeline_group_hash(sink, &a) != sl_pipeline_group_hash(sink, &b),
                  "samples of two resources should not share a hash");
    /* A known value: partition assignment depends on it across releases and
     * hosts, so it must never change silently. */
    ck_assert_msg(sl_pipeline_group_hash(sink, &a) == 0x4ee11a112d5719eaULL,
                  "hash of resource_id \"instance-0001\": expected 0x4ee11a112d5719ea, got 0x%016llx",
                  (unsigned long long) sl_pipeline_group_hash(sink, &a));
    ck_assert_uint_eq(sl_pipeline_group_hash(sink, &a), sl_hash64_str("instance-0001"));
    /* missing counts as "" */
    sl_sample_t none = { .name = "cpu" };
    sl_sample_t empty = { .name = "cpu", .resource_id = "" };
    ck_assert_uint_eq(sl_pipeline_group_hash(sink, &none), sl_pipeline_group_hash(sink, &empty));
    ck_assert_uint_eq(sl_pipeline_group_hash(sink, &none), 0xf52a15e9a9b5e89bULL);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_group_hash_concatenates_several_keys)
{
    const char *keys[] = { "resource_id", "user_id", "project_id", "name", "source", "type", "unit" };
    sl_sink_t sink = { .name = "k", .n_keys = 7, .keys = keys };
    sl_sample_t s = { .resource_id = "r", .user_id = "u", .project_id = "p", .name = "n",
                      .source = "s", .type = "gauge", .unit = "B" };
    ck_assert_uint_eq(sl_pipeline_group_hash(&sink, &s), sl_hash64_str("rupnsgaugeB"));
    s.user_id = NULL;
    ck_assert_uint_eq(sl_pipeline_group_hash(&sink, &s), sl_hash64_str("rpnsgaugeB"));
    sink.n_keys = 2;
    ck_assert_uint_eq(sl_pipeline_group_hash(&sink, &s), sl_hash64_str("r"));
}
END_TEST

/* --- errors, each with its line ------------------------------------------ */

START_TEST(test_source_rules_are_ceilometers)
{
    /* no meters */
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: []\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 3, "No meters specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 2, "Missing meters value");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "events", 2, "No events specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters:\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 3, "No meters specified");
    /* mixing */
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: [s]\n"
                   "    sinks: [s]\n"
                   "  - name: b\n"
                   "    meters:\n"
                   "      - cpu\n"
                   "      - '!disk.*'\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 6, "Both included and excluded meters specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*', cpu]\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 3, "Included meters specified with wildcard");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    events: ['*', 'compute.*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "events", 3, "Included events specified with wildcard");
    /* sinks of a source */
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks:\n"
                   "      - s\n"
                   "      - t\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 6, "Dangling sink t from source a");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: []\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 4, "No sink defined in source a");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 2, "Required field sinks not specified");
    s_expect_error("sources:\n"
                   "  - meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 2, "Required field name not specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 5, "Duplicated source names: a");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s, s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 2, "Duplicate pipeline name: a:s");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters:\n"
                   "      - cpu\n"
                   "      - {name: disk}\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 5, "must be non-empty strings");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['cpu', '']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 3, "must be non-empty strings");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: '*'\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 3, "meters of 'a' must be a list");
}
END_TEST

START_TEST(test_sink_rules_are_ceilometers)
{
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: []\n", "meters", 7, "No publisher specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n", "meters", 6, "No publisher specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - publishers: [x://]\n", "meters", 6, "Required field name not specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n"
                   "  - name: s\n"
                   "    publishers: [y://]\n", "meters", 8, "Duplicated sink names: s");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    transformers:\n"
                   "      - name: unit_conversion\n"
                   "      - name: \"rate_of_chnage\"\n"
                   "        parameters: {}\n"
                   "    publishers: [x://]\n", "meters", 9, "unknown transformer 'rate_of_chnage' in sink 's'");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    transformers:\n"
                   "      - name: delta\n"
                   "        parameters: [growth_only]\n"
                   "    publishers: [x://]\n", "meters", 9, "parameters of transformer 'delta' must be a mapping");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    transformers:\n"
                   "      - parameters: {}\n"
                   "    publishers: [x://]\n", "meters", 8, "Required field name not specified");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    transformers: delta\n"
                   "    publishers: [x://]\n", "meters", 7, "transformers of 's' must be a list");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://, 42, {a: b}]\n", "meters", 7, "publishers of 's' must be non-empty strings");
}
END_TEST

/* Tolerant (the default): Ceilometer never reads these keys, so they are
 * warnings and the pipeline loads; strict: errors with their line (below). */
START_TEST(test_unknown_keys_are_warnings_by_default)
{
    static const char yaml[] = "sources:\n  - name: a\n    meter: ['*']\n    meters: ['*']\n"
                               "    sinks: [s]\nsinks:\n  - name: s\n    publishers: [x://]\n"
                               "    publisher: [y://]\n";
    char err[512] = "";
    sl_ywarn_t w = { 0 };
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), FILE_NAME, "meters", &w, err,
                                         sizeof err);
    ck_assert_msg(p != NULL, "tolerant loading refused: %s", err);
    ck_assert_uint_eq(w.count, 2);
    ck_assert_uint_eq(p->n_sinks, 1);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_unknown_keys_are_caught_with_their_line)
{
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meter: ['*']\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n", "meters", 3, "ignored key 'meter' in source 'a'");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n"
                   "    publisher: [y://]\n", "meters", 8, "ignored key 'publisher' in sink 's'");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    transformers:\n"
                   "      - name: delta\n"
                   "        parameter: {growth_only: true}\n"
                   "    publishers: [x://]\n", "meters", 9, "ignored key 'parameter' in transformer 'delta'");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*']\n"
                   "    sinks: [s]\n"
                   "sinks:\n"
                   "  - name: s\n"
                   "    publishers: [x://]\n"
                   "sink:\n"
                   "  - name: t\n", "meters", 8, "ignored key 'sink'");
}
END_TEST

START_TEST(test_file_level_errors)
{
    s_expect_error("", "meters", 1, "Both sources & sinks are required");
    s_expect_error("sources: []\n", "meters", 1, "Both sources & sinks are required");
    s_expect_error("- a\n- b\n", "meters", 1, "must be a mapping");
    s_expect_error("sources: 1\nsinks: []\n", "meters", 1, "sources must be a list");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "    meters: ['*'\n"
                   "    sinks: [s]\n", "meters", 4, "invalid YAML");
    s_expect_error("sources:\n"
                   "  - name: a\n"
                   "      meters: x\n", "meters", 3, "invalid YAML");
    /* an empty pipeline is valid: nothing is routed */
    sl_pipeline_t *p = s_parse("sources: []\nsinks: []\n", "meters");
    uint16_t out[SL_MAX_SINKS];
    ck_assert_uint_eq(sl_pipeline_route(p, "cpu", out, SL_MAX_SINKS), 0);
    sl_pipeline_destroy(&p);
}
END_TEST

static char *
s_many_sinks(int n)
{
    size_t cap = 256 + (size_t) n * 64, len = 0;
    char *y = malloc(cap);
    len += (size_t) snprintf(y + len, cap - len,
                             "sources:\n  - name: a\n    meters: ['*']\n    sinks: [s0]\nsinks:\n");
    for (int i = 0; i < n; i++)         /* sink i is on line 6 + 2i */
        len += (size_t) snprintf(y + len, cap - len, "  - name: s%d\n    publishers: [x://]\n", i);
    return y;
}

START_TEST(test_sink_count_is_bounded)
{
    char *y = s_many_sinks(SL_MAX_SINKS);
    sl_pipeline_t *p = s_parse(y, "meters");
    ck_assert_uint_eq(p->n_sinks, SL_MAX_SINKS);
    sl_pipeline_destroy(&p);
    free(y);
    y = s_many_sinks(SL_MAX_SINKS + 1);
    s_expect_error(y, "meters", 6 + 2 * SL_MAX_SINKS, "too many sinks");
    free(y);
}
END_TEST

START_TEST(test_reorder_window_is_a_sink_option_in_milliseconds)
{
    sl_pipeline_t *p = s_parse("sources:\n"
                               "  - {name: s, meters: ['*'], sinks: [a, b]}\n"
                               "sinks:\n"
                               "  - {name: a, publishers: ['file:///tmp/a'], reorder_window: 250}\n"
                               "  - {name: b, publishers: ['file:///tmp/b']}\n", "meters");
    ck_assert_uint_eq(p->sinks[0].reorder_window_ms, 250);
    ck_assert_uint_eq(p->sinks[1].reorder_window_ms, 0);
    sl_pipeline_destroy(&p);
    s_expect_error("sources:\n"
                   "  - {name: s, meters: ['*'], sinks: [a]}\n"
                   "sinks:\n"
                   "  - name: a\n"
                   "    publishers: ['file:///tmp/a']\n"
                   "    reorder_window: soon\n", "meters", 6,
                   "reorder_window of sink 'a' must be a number of milliseconds");
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, test_stock_pipeline_loads);
    tcase_add_test(tc, test_rocky_pipeline_with_transformers_loads);
    tcase_add_test(tc, test_event_pipeline_uses_events_key);
    tcase_add_test(tc, test_load_reads_a_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("select");
    tcase_add_test(tc, test_exclusion_only_source_allows_the_rest);
    tcase_add_test(tc, test_exclusions_win_over_includes);
    tcase_add_test(tc, test_fnmatch_is_pythons);
    tcase_add_test(tc, test_loaded_patterns_match_like_fnmatch);
    tcase_add_test(tc, test_route_gives_each_sink_once_in_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("group");
    tcase_add_test(tc, test_transformer_kinds);
    tcase_add_test(tc, test_transformer_lookup_is_the_loaders_only_knowledge);
    tcase_add_test(tc, test_stateless_chain_is_not_stateful);
    tcase_add_test(tc, test_group_hash_depends_on_grouping_keys_only);
    tcase_add_test(tc, test_group_hash_concatenates_several_keys);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_source_rules_are_ceilometers);
    tcase_add_test(tc, test_sink_rules_are_ceilometers);
    tcase_add_test(tc, test_unknown_keys_are_caught_with_their_line);
    tcase_add_test(tc, test_unknown_keys_are_warnings_by_default);
    tcase_add_test(tc, test_file_level_errors);
    tcase_add_test(tc, test_sink_count_is_bounded);
    tcase_add_test(tc, test_reorder_window_is_a_sink_option_in_milliseconds);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
