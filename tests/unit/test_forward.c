/* forward: consumer profiles (selection by meter / event_type globs, the
 * field filters in their order, tokens, configuration errors). */
#include <check.h>

#include "tests/sl_check.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/conf.h"
#include "common/forward.h"
#include "common/json.h"
#include "common/loop.h"
#include "common/stats.h"
#include "common/yconf.h"
#include "worker/output.h"
#include "worker/publishers/publisher.h"

/* The profile `p` of a `forward:`-less mapping {p: {...}}; NULL with err. */
static sl_forward_t *
s_profile_err(const char *yaml, char *err, size_t errlen)
{
    sl_ydoc_t *doc = sl_ydoc_parse(yaml, strlen(yaml), "sluice.yaml", err, errlen);
    ck_assert_msg(doc && doc->root && doc->root->kind == SL_Y_MAP, "test YAML: %s", err);
    sl_forward_t *f = sl_forward_parse(doc->root->keys[0], doc->root->items[0], "/nonexistent",
                                       err, errlen);
    sl_ydoc_destroy(&doc);
    return f;
}

static sl_forward_t *
s_profile(const char *yaml)
{
    char err[512] = "";
    sl_forward_t *f = s_profile_err(yaml, err, sizeof err);
    ck_assert_msg(f, "expected the profile to load, got: %s", err);
    return f;
}

/* The error text of a profile that must not load. */
static const char *
s_refused(const char *yaml)
{
    static char err[512];
    err[0] = '\0';
    sl_forward_t *f = s_profile_err(yaml, err, sizeof err);
    ck_assert_msg(!f, "expected the profile to be refused:\n%s", yaml);
    return err;
}

/* Filters json both ways (arena tree and yajl_tree_parse tree, which must
 * agree) and returns the compact result (static buffer). */
static const char *
s_filter(const sl_forward_t *f, int events, const char *json)
{
    static char out[4096];
    sl_arena_t a;
    sl_arena_init(&a, 0);
    char err[256];
    yajl_val v = sl_json_parse(&a, json, strlen(json), 0, err, sizeof err);
    ck_assert_msg(v, "test JSON: %s", err);
    sl_forward_filter(f, events, v);
    snprintf(out, sizeof out, "%s", sl_json_dump(&a, v));
    yajl_val t = yajl_tree_parse(json, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    sl_forward_filter_free(f, events, t);
    const char *owned = sl_json_dump(&a, t);
    ck_assert_msg(strcmp(owned, out) == 0, "arena tree gave %s, yajl tree %s", out, owned);
    yajl_tree_free(t);
    sl_arena_destroy(&a);
    return out;
}

#define EXPECT_FILTER(f, ev, in, want)                                                     \
    do {                                                                                   \
        const char *got_ = s_filter((f), (ev), (in));                                      \
        ck_assert_msg(strcmp(got_, (want)) == 0, "filtering %s\nexpected %s\ngot      %s", \
                      (in), (want), got_);                                                 \
    } while (0)

static const char *SAMPLE =
    "{\"name\":\"disk.read.bytes\",\"user_id\":\"u1\",\"project_id\":\"p1\","
    "\"resource_metadata\":{\"host\":\"h1\",\"image_meta\":{\"base_url\":\"http://x\","
    "\"min_disk\":\"1\"},\"flavor\":{\"name\":\"m1\",\"admin_pass\":\"pw\"},"
    "\"fixed_ips\":[{\"address\":\"10.0.0.1\",\"mac\":\"fa\"},{\"address\":\"10.0.0.2\"}]},"
    "\"volume\":1}";

static const char *EVENT =
    "{\"event_type\":\"compute.instance.create.end\",\"generated\":\"2026-01-01T00:00:00\","
    "\"message_id\":\"m1\",\"traits\":[[\"instance_id\",1,\"i1\"],[\"host\",1,\"h1\"],"
    "[\"admin_password\",1,\"pw\"],[\"state\",1,\"active\"]]}";

START_TEST(null_profile_selects_and_keeps_everything)
{
    ck_assert_int_eq(sl_forward_selects(NULL, 0, "cpu"), 1);
    ck_assert_int_eq(sl_forward_selects(NULL, 1, "x.y"), 1);
    EXPECT_FILTER(NULL, 0, SAMPLE, SAMPLE);
    ck_assert_ptr_null(sl_forward_name(NULL));
    sl_forward_t *f = s_profile("open:\n");
    ck_assert_str_eq(sl_forward_name(f), "open");
    ck_assert_int_eq(sl_forward_selects(f, 0, "anything"), 1);
    EXPECT_FILTER(f, 1, EVENT, EVENT);
    sl_forward_destroy(&f);
    ck_assert_ptr_null(f);
}
END_TEST

START_TEST(selection_globs_match_meter_names_and_event_types)
{
    sl_forward_t *f = s_profile("p:\n  meters: ['instance*', cpu, 'disk.*.bytes']\n"
                                "  event_types: 'compute.instance.*'\n");
    ck_assert_int_eq(sl_forward_selects(f, 0, "instance"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 0, "instance.vcpus"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 0, "cpu"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 0, "cpu_util"), 0);
    ck_assert_int_eq(sl_forward_selects(f, 0, "disk.read.bytes"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 0, "disk.read.requests"), 0);
    ck_assert_int_eq(sl_forward_selects(f, 1, "compute.instance.create.end"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 1, "image.update"), 0);
    ck_assert_int_eq(sl_forward_selects(f, 1, NULL), 0);
    sl_forward_destroy(&f);
    /* Exclusions, as Ceilometer's pipeline `!meter`. */
    f = s_profile("p:\n  meters: ['!disk.*', '!cpu']\n");
    ck_assert_int_eq(sl_forward_selects(f, 0, "disk.read.bytes"), 0);
    ck_assert_int_eq(sl_forward_selects(f, 0, "cpu"), 0);
    ck_assert_int_eq(sl_forward_selects(f, 0, "memory"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 1, "anything"), 1);   /* no event_types: all */
    sl_forward_destroy(&f);
    /* [...] classes and escapes are fnmatch's. */
    f = s_profile("p:\n  event_types: ['volume.[cd]*', 'a\\*b']\n");
    ck_assert_int_eq(sl_forward_selects(f, 1, "volume.create.end"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 1, "volume.delete.end"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 1, "volume.attach.end"), 0);
    ck_assert_int_eq(sl_forward_selects(f, 1, "a*b"), 1);
    ck_assert_int_eq(sl_forward_selects(f, 1, "axb"), 0);
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(drop_fields_takes_dotted_paths_with_globs_through_arrays)
{
    sl_forward_t *f = s_profile("p:\n  drop_fields: [user_id, resource_metadata.image_meta.base_url,"
                                " 'resource_metadata.fl*.admin_*', resource_metadata.fixed_ips.mac]\n");
    EXPECT_FILTER(f, 0, SAMPLE,
                  "{\"name\":\"disk.read.bytes\",\"project_id\":\"p1\","
                  "\"resource_metadata\":{\"host\":\"h1\",\"image_meta\":{\"min_disk\":\"1\"},"
                  "\"flavor\":{\"name\":\"m1\"},\"fixed_ips\":[{\"address\":\"10.0.0.1\"},"
                  "{\"address\":\"10.0.0.2\"}]},\"volume\":1}");
    sl_forward_destroy(&f);
    /* A whole subtree; a key that holds a dot, escaped. */
    f = s_profile("p:\n  drop_fields: ['resource_metadata.image_meta', 'a\\.b']\n");
    EXPECT_FILTER(f, 0, "{\"a.b\":1,\"a\":{\"b\":2},\"resource_metadata\":{\"image_meta\":{}}}",
                  "{\"a\":{\"b\":2},\"resource_metadata\":{}}");
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(drop_fields_of_one_segment_match_trait_names)
{
    sl_forward_t *f = s_profile("p:\n  drop_fields: [host, 'admin_*', message_id]\n");
    EXPECT_FILTER(f, 1, EVENT,
                  "{\"event_type\":\"compute.instance.create.end\","
                  "\"generated\":\"2026-01-01T00:00:00\",\"traits\":[[\"instance_id\",1,\"i1\"],"
                  "[\"state\",1,\"active\"]]}");
    /* Samples have no traits: only keys. */
    EXPECT_FILTER(f, 0, "{\"host\":1,\"traits\":[[\"host\",1,\"x\"]]}",
                  "{\"traits\":[[\"host\",1,\"x\"]]}");
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(admin_only_fields_match_keys_at_any_depth_unless_admin)
{
    const char *yaml = "p:\n  admin_only_fields: ['*pass*', host, 'resource_metadata.fixed_ips']\n";
    sl_forward_t *f = s_profile(yaml);
    EXPECT_FILTER(f, 0, SAMPLE,
                  "{\"name\":\"disk.read.bytes\",\"user_id\":\"u1\",\"project_id\":\"p1\","
                  "\"resource_metadata\":{\"image_meta\":{\"base_url\":\"http://x\","
                  "\"min_disk\":\"1\"},\"flavor\":{\"name\":\"m1\"}},\"volume\":1}");
    EXPECT_FILTER(f, 1, EVENT,
                  "{\"event_type\":\"compute.instance.create.end\","
                  "\"generated\":\"2026-01-01T00:00:00\",\"message_id\":\"m1\","
                  "\"traits\":[[\"instance_id\",1,\"i1\"],[\"state\",1,\"active\"]]}");
    /* A glob without a dot is a key name, not a path: a nested host goes too,
     * inside arrays as well. */
    EXPECT_FILTER(f, 0, "{\"a\":[{\"b\":{\"host\":1,\"c\":2}}]}", "{\"a\":[{\"b\":{\"c\":2}}]}");
    sl_forward_destroy(&f);
    f = s_profile("p:\n  admin_only_fields: ['*pass*', host]\n  admin: true\n");
    EXPECT_FILTER(f, 0, SAMPLE, SAMPLE);
    EXPECT_FILTER(f, 1, EVENT, EVENT);
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(drop_regex_searches_dotted_paths_and_trait_names)
{
    sl_forward_t *f = s_profile("p:\n  drop_regex: '(^|\\.)(host|min_disk)$|^resource_metadata\\.fixed'\n");
    EXPECT_FILTER(f, 0, SAMPLE,
                  "{\"name\":\"disk.read.bytes\",\"user_id\":\"u1\",\"project_id\":\"p1\","
                  "\"resource_metadata\":{\"image_meta\":{\"base_url\":\"http://x\"},"
                  "\"flavor\":{\"name\":\"m1\",\"admin_pass\":\"pw\"}},\"volume\":1}");
    EXPECT_FILTER(f, 1, EVENT,
                  "{\"event_type\":\"compute.instance.create.end\","
                  "\"generated\":\"2026-01-01T00:00:00\",\"message_id\":\"m1\","
                  "\"traits\":[[\"instance_id\",1,\"i1\"],[\"admin_password\",1,\"pw\"],"
                  "[\"state\",1,\"active\"]]}");
    sl_forward_destroy(&f);
    /* Unanchored, as re.search; Unicode-aware. */
    f = s_profile("p:\n  drop_regex: 'pass'\n");
    EXPECT_FILTER(f, 1, EVENT,
                  "{\"event_type\":\"compute.instance.create.end\","
                  "\"generated\":\"2026-01-01T00:00:00\",\"message_id\":\"m1\","
                  "\"traits\":[[\"instance_id\",1,\"i1\"],[\"host\",1,\"h1\"],"
                  "[\"state\",1,\"active\"]]}");
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(keep_regex_keeps_matching_keys_with_their_parents)
{
    sl_forward_t *f = s_profile("p:\n  keep_regex: '^(name|volume|resource_metadata\\.flavor\\.name"
                                "|resource_metadata\\.fixed_ips\\.address|resource_metadata\\.image_meta)$'\n");
    EXPECT_FILTER(f, 0, SAMPLE,
                  "{\"name\":\"disk.read.bytes\",\"resource_metadata\":{\"image_meta\":"
                  "{\"base_url\":\"http://x\",\"min_disk\":\"1\"},\"flavor\":{\"name\":\"m1\"},"
                  "\"fixed_ips\":[{\"address\":\"10.0.0.1\"},{\"address\":\"10.0.0.2\"}]},"
                  "\"volume\":1}");
    /* An object with nothing kept goes; so does an array. */
    EXPECT_FILTER(f, 0, "{\"a\":{\"b\":1},\"c\":[1,2],\"name\":{}}", "{\"name\":{}}");
    sl_forward_destroy(&f);
    f = s_profile("p:\n  keep_regex: '^(event_type|generated|instance_id|state)$'\n");
    EXPECT_FILTER(f, 1, EVENT,
                  "{\"event_type\":\"compute.instance.create.end\","
                  "\"generated\":\"2026-01-01T00:00:00\",\"traits\":[[\"instance_id\",1,\"i1\"],"
                  "[\"state\",1,\"active\"]]}");
    /* traits goes when no trait is kept */
    EXPECT_FILTER(f, 1, "{\"event_type\":\"x\",\"traits\":[[\"a\",1,\"b\"]]}", "{\"event_type\":\"x\"}");
    sl_forward_destroy(&f);
    /* `traits` itself matching keeps every trait. */
    f = s_profile("p:\n  keep_regex: '^traits$'\n");
    EXPECT_FILTER(f, 1, EVENT,
                  "{\"traits\":[[\"instance_id\",1,\"i1\"],[\"host\",1,\"h1\"],"
                  "[\"admin_password\",1,\"pw\"],[\"state\",1,\"active\"]]}");
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(filters_apply_in_their_documented_order)
{
    /* keep_regex would keep host, but admin_only_fields removed it first;
     * drop_fields beats keep_regex as well. */
    sl_forward_t *f = s_profile("p:\n  drop_fields: [user_id]\n  admin_only_fields: [host]\n"
                                "  drop_regex: 'flavor'\n"
                                "  keep_regex: '(^|\\.)(name|host|user_id|flavor)$'\n");
    EXPECT_FILTER(f, 0, SAMPLE, "{\"name\":\"disk.read.bytes\"}");
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(filter_ignores_what_is_not_an_object_and_odd_traits)
{
    sl_forward_t *f = s_profile("p:\n  drop_fields: [x]\n  keep_regex: 'event_type|^y'\n");
    EXPECT_FILTER(f, 1, "[1,2]", "[1,2]");
    EXPECT_FILTER(f, 1, "\"x\"", "\"x\"");
    /* traits that are not [name, ...] are never matched, so they go with
     * keep_regex; a traits key that is not an array is an ordinary key. */
    EXPECT_FILTER(f, 1, "{\"event_type\":\"e\",\"traits\":[[1,2],[\"y\",1,2],[],\"x\"]}",
                  "{\"event_type\":\"e\",\"traits\":[[\"y\",1,2]]}");
    EXPECT_FILTER(f, 1, "{\"event_type\":\"e\",\"traits\":{\"y\":1}}", "{\"event_type\":\"e\"}");
    sl_forward_destroy(&f);
}
END_TEST

START_TEST(tokens_inline_and_from_a_file_compare_exactly)
{
    char path[] = "/tmp/sl-forward-tokens-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "# consumers\n\n  tok-from-file  \r\nsecond\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    char yaml[512];
    snprintf(yaml, sizeof yaml, "p:\n  tokens: [s3cret, other]\n  token_file: %s\n", path);
    sl_forward_t *f = s_profile(yaml);
    ck_assert_int_eq(sl_forward_has_tokens(f), 1);
    ck_assert_int_eq(sl_forward_token_ok(f, "s3cret"), 1);
    ck_assert_int_eq(sl_forward_token_ok(f, "other"), 1);
    ck_assert_int_eq(sl_forward_token_ok(f, "tok-from-file"), 1);
    ck_assert_int_eq(sl_forward_token_ok(f, "second"), 1);
    ck_assert_int_eq(sl_forward_token_ok(f, "s3cre"), 0);
    ck_assert_int_eq(sl_forward_token_ok(f, "s3cret "), 0);
    ck_assert_int_eq(sl_forward_token_ok(f, "# consumers"), 0);
    ck_assert_int_eq(sl_forward_token_ok(f, ""), 0);
    ck_assert_int_eq(sl_forward_token_ok(f, NULL), 0);
    /* --dump-config counts tokens and never shows them. */
    char *dump = NULL;
    size_t dlen = 0;
    FILE *out = open_memstream(&dump, &dlen);
    sl_forward_dump(f, out, "  ");
    fclose(out);
    ck_assert_msg(!strstr(dump, "s3cret") && !strstr(dump, "tok-from-file"),
                  "dump shows a token:\n%s", dump);
    ck_assert_msg(strstr(dump, "4 token(s)"), "dump does not count the tokens:\n%s", dump);
    free(dump);
    sl_forward_destroy(&f);
    /* No tokens: nothing asked. */
    f = s_profile("p:\n  meters: [cpu]\n");
    ck_assert_int_eq(sl_forward_has_tokens(f), 0);
    ck_assert_int_eq(sl_forward_token_ok(f, "anything"), 1);
    ck_assert_int_eq(sl_forward_token_ok(NULL, NULL), 1);
    sl_forward_destroy(&f);
    /* A file of comments only is an error. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_eq(write(fd, "# none\n", 7), 7);
    close(fd);
    const char *err = s_refused(yaml);
    ck_assert_msg(strstr(err, "sluice.yaml:3:") && strstr(err, "holds no token"), "got: %s", err);
    unlink(path);
    err = s_refused(yaml);
    ck_assert_msg(strstr(err, "sluice.yaml:3:") && strstr(err, "No such file"), "got: %s", err);
}
END_TEST

START_TEST(bad_profiles_are_refused_at_their_line)
{
    struct { const char *yaml, *want; } cases[] = {
        { "p:\n  meters: ['cpu[']\n", "sluice.yaml:2: forward profile 'p': meters: glob 'cpu[' has a '[' without its ']'" },
        { "p:\n  meters:\n    - cpu\n    - '!disk*'\n", "sluice.yaml:4: forward profile 'p': meters: '!disk*' mixes inclusions and exclusions" },
        { "p:\n  event_types: ['']\n", "sluice.yaml:2: forward profile 'p': event_types: an empty glob" },
        { "p:\n  meters: []\n", "sluice.yaml:2: forward profile 'p': meters: an empty list would be read as everything" },
        { "p:\n  drop_fields: ['a..b']\n", "sluice.yaml:2: forward profile 'p': drop_fields: field path 'a..b' has an empty segment" },
        { "p:\n  drop_fields: ['a.b\\']\n", "sluice.yaml:2: forward profile 'p': drop_fields: glob 'b\\' ends with a lone backslash" },
        { "p:\n  admin_only_fields: {a: b}\n", "sluice.yaml:2: forward: admin_only_fields: expected a list of strings" },
        { "p:\n  admin_only_fields: [[a]]\n", "sluice.yaml:2: forward: admin_only_fields: expected a string" },
        { "p:\n  admin: maybe\n", "sluice.yaml:2: forward profile 'p': admin: expected true or false" },
        { "p:\n\n  keep_regex: '(unclosed'\n", "sluice.yaml:3: forward profile 'p': keep_regex: invalid regular expression at offset" },
        { "p:\n  drop_regex: [a, b]\n", "sluice.yaml:2: forward profile 'p': drop_regex: expected one regular expression" },
        { "p:\n  tokens: ['']\n", "sluice.yaml:2: forward profile 'p': tokens: an empty token" },
        { "p:\n  meters: [cpu]\n  metres: [cpu]\n", "sluice.yaml:3: forward profile 'p': unknown key 'metres'" },
        { "p: [1]\n", "sluice.yaml:1: forward profile 'p': expected a mapping" },
        { "'a&b':\n  meters: [cpu]\n", "forward: profile name 'a&b' cannot be named in a publisher URL" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *err = s_refused(cases[i].yaml);
        ck_assert_msg(strstr(err, cases[i].want), "case %zu: expected '%s'\ngot '%s'", i,
                      cases[i].want, err);
    }
}
END_TEST

START_TEST(dump_shows_what_was_configured)
{
    sl_forward_t *f = s_profile("p:\n  meters: ['!cpu']\n  drop_fields: [a.b]\n"
                                "  keep_regex: \"it's\"\n");
    char *dump = NULL;
    size_t dlen = 0;
    FILE *out = open_memstream(&dump, &dlen);
    sl_forward_dump(f, out, "  ");
    fclose(out);
    ck_assert_str_eq(dump, "  p:\n    meters: [\"!cpu\"]\n    drop_fields: [\"a.b\"]\n"
                           "    admin: false\n    keep_regex: 'it''s'\n");
    free(dump);
    sl_forward_destroy(&f);
}
END_TEST


/* ---- sluice.yaml and the output layer ------------------------------------- */

static char s_dir[64];

static const char *
s_dpath(const char *name)
{
    static char bufs[8][256];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 256, "%s/%s", s_dir, name);
    return b;
}

static void
s_dwrite(const char *name, const char *text)
{
    FILE *f = fopen(s_dpath(name), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void
s_dsetup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/sluice-forward-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp %s/conf/meters.yaml %s/meters.yaml", SL_SRCDIR, s_dir);
    ck_assert_int_eq(system(cmd), 0);
    s_dwrite("in.jsonl", "");
}

static void
s_dteardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* sluice.yaml = a file source, run_dir = the test dir, then forward_yaml;
 * pipeline.yaml: one sink k with publishers (%s = the test dir). */
static sl_conf_t *
s_conf(const char *forward_yaml, const char *const *pubs, size_t n, char *err, size_t errlen)
{
    char text[4096];
    int len = snprintf(text, sizeof text, "sources:\n  - name: s\n    meters: ['*']\n"
                       "    sinks: [k]\nsinks:\n  - name: k\n    publishers:\n");
    for (size_t i = 0; i < n; i++) {
        len += snprintf(text + len, sizeof text - (size_t) len, "      - '");
        len += snprintf(text + len, sizeof text - (size_t) len, pubs[i], s_dir);
        len += snprintf(text + len, sizeof text - (size_t) len, "'\n");
    }
    s_dwrite("pipeline.yaml", text);
    snprintf(text, sizeof text, "run_dir: %s\nsources: [{type: file, path: in.jsonl}]\n"
             "ceilometer: {pipeline: pipeline.yaml, meters: meters.yaml}\n%s", s_dir,
             forward_yaml);
    s_dwrite("sluice.yaml", text);
    return sl_conf_load(s_dpath("sluice.yaml"), NULL, 0, err, errlen);
}

START_TEST(conf_loads_profiles_and_reports_errors_at_their_line)
{
    char err[1024] = "";
    s_dwrite("tokens", "t1\n");
    sl_conf_t *c = s_conf("forward:\n  a:\n    meters: [cpu]\n    token_file: tokens\n  b:\n",
                          (const char *[]) { "file://%s/x.jsonl" }, 1, err, sizeof err);
    ck_assert_msg(c, "expected the configuration to load: %s", err);
    ck_assert_uint_eq(c->n_forwards, 2);
    const sl_forward_t *a = sl_conf_forward(c, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(sl_forward_name(a), "a");
    ck_assert_int_eq(sl_forward_token_ok(a, "t1"), 1);   /* token_file next to sluice.yaml */
    ck_assert_int_eq(sl_forward_selects(sl_conf_forward(c, "b"), 0, "x"), 1);
    ck_assert_ptr_null(sl_conf_forward(c, "c"));
    ck_assert_ptr_null(sl_conf_forward(c, NULL));
    char *dump = NULL;
    size_t dlen = 0;
    FILE *out = open_memstream(&dump, &dlen);
    sl_conf_dump(c, out);
    fclose(out);
    ck_assert_msg(strstr(dump, "\nforward:\n  a:\n    meters: [\"cpu\"]\n    admin: false\n"
                         "    # 1 token(s) including those of ") && strstr(dump, "  b:\n"),
                  "dump: %s", dump);
    free(dump);
    sl_conf_destroy(&c);

    struct { const char *yaml, *want; } cases[] = {
        { "forward: [a]\n", "sluice.yaml:4: forward: expected a mapping of profile name" },
        { "forward:\n  a:\n    meters: ['[']\n", "sluice.yaml:6: forward profile 'a': meters: glob '[' has a '[' without its ']'" },
        { "forward:\n  a:\n    drop_regex: '*'\n", "sluice.yaml:6: forward profile 'a': drop_regex: invalid regular expression" },
        { "forward:\n  a:\n    token_file: missing\n", "sluice.yaml:6: forward profile 'a': token_file: cannot open" },
        { "forward:\n  a:\n    bogus: 1\n", "sluice.yaml:6: forward profile 'a': unknown key 'bogus'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err[0] = '\0';
        c = s_conf(cases[i].yaml, (const char *[]) { "file://%s/x.jsonl" }, 1, err, sizeof err);
        ck_assert_msg(!c && strstr(err, cases[i].want), "case %zu: expected '%s'\ngot '%s'", i,
                      cases[i].want, err);
    }
}
END_TEST

START_TEST(an_unknown_profile_names_the_sink_and_url)
{
    char err[1024] = "";
    sl_conf_t *c = s_conf("forward:\n  a:\n  b:\n",
                          (const char *[]) { "file://%s/x.jsonl?forward=nope" }, 1, err,
                          sizeof err);
    ck_assert_msg(c, "%s", err);
    char url[300], want[1024];
    snprintf(url, sizeof url, "file://%s/x.jsonl?forward=nope", s_dir);
    snprintf(want, sizeof want, "file publisher '%s': forward profile 'nope' is not defined in "
             "%s/sluice.yaml (defined: a, b): add it under `forward:` or fix the name", url, s_dir);
    ck_assert_int_eq(sl_output_check_forward(c, url, err, sizeof err), -1);
    ck_assert_msg(strcmp(err, want) == 0, "expected %s\ngot      %s", want, err);
    sl_loop_t *loop = sl_loop_new();
    sl_output_t *out = sl_output_new(c, loop, NULL, err, sizeof err);
    ck_assert_ptr_null(out);
    ck_assert_msg(strncmp(err, "sink k: ", 8) == 0 && strcmp(err + 8, want) == 0,
                  "expected sink k: %s\ngot %s", want, err);
    snprintf(url, sizeof url, "file://%s/x.jsonl?forward=a", s_dir);
    ck_assert_int_eq(sl_output_check_forward(c, url, err, sizeof err), 0);
    snprintf(url, sizeof url, "file://%s/x.jsonl", s_dir);
    ck_assert_int_eq(sl_output_check_forward(c, url, err, sizeof err), 0);
    /* Without a conf every profile is unknown. */
    ck_assert_int_eq(sl_output_check_forward(NULL, "file:///x?forward=a", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no forward: profiles"), "got %s", err);
    sl_loop_destroy(&loop);
    sl_conf_destroy(&c);
}
END_TEST

typedef struct {
    int calls, delivered;
} s_done_t;

static void
s_on_done(void *arg, int delivered)
{
    s_done_t *d = arg;
    d->calls++;
    d->delivered = delivered;
}

static void
s_submit(sl_output_t *out, const char *const *names, size_t n, s_done_t *d)
{
    sl_sample_t v[8];
    char ids[8][32];
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "id-%s-%zu", names[i], i);
        v[i] = (sl_sample_t) { .id = ids[i], .name = names[i], .type = "gauge", .unit = "ns",
                               .volume_json = "1", .volume = 1, .user_id = "u",
                               .project_id = "p", .resource_id = "r",
                               .timestamp = "2024-01-01T00:00:00+00:00",
                               .resource_metadata = "{\"host\":\"h\",\"flavor\":{\"name\":\"m1\"}}",
                               .source = "openstack", .message_id = "m" };
    }
    sl_output_submit(out, 0, v, n, s_on_done, d);
}

static char *
s_slurp(const char *name)
{
    FILE *f = fopen(s_dpath(name), "r");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return strdup("");
    }
    return buf;
}

static void
s_run_until(sl_loop_t *loop, const int *flag, unsigned ms)
{
    uint64_t t0 = sl_now_ms();
    while (!*flag && sl_now_ms() - t0 < ms)
        sl_loop_run_once(loop, 5);
}

START_TEST(each_publisher_gets_what_its_profile_selects_filtered)
{
    char err[1024] = "";
    int threaded = sl_publisher_find("test://x", err, sizeof err) != NULL;
    const char *pubs[] = {
        "file://%s/all.jsonl", "file://%s/cpu.jsonl?forward=cpu_only",
        "file://%s/none.jsonl?forward=nothing",
        threaded ? "test://t?record=%s/rec&forward=cpu_only" : "file://%s/rec?forward=cpu_only",
    };
    sl_conf_t *c = s_conf("forward:\n  cpu_only:\n    meters: ['cpu*']\n"
                          "    admin_only_fields: [host]\n  nothing:\n    meters: [none]\n",
                          pubs, 4, err, sizeof err);
    ck_assert_msg(c, "%s", err);
    sl_loop_t *loop = sl_loop_new();
    sl_slot_t *slot = aligned_alloc(64, (sizeof *slot + 63) / 64 * 64);
    memset(slot, 0, sizeof *slot);
    sl_output_t *out = sl_output_new(c, loop, slot, err, sizeof err);
    ck_assert_msg(out, "%s", err);
    s_done_t d = { 0 };
    s_submit(out, (const char *[]) { "cpu", "memory", "cpu_util" }, 3, &d);
    s_run_until(loop, &d.calls, 5000);
    ck_assert_msg(d.calls == 1 && d.delivered == 1, "done: %d calls, delivered %d", d.calls,
                  d.delivered);
    char *all = s_slurp("all.jsonl"), *cpu = s_slurp("cpu.jsonl"), *none = s_slurp("none.jsonl");
    char *rec = s_slurp("rec");
    ck_assert_msg(sl_check_count(all, "\n") == 3 && sl_check_count(all, "\"host\"") == 3,
                  "all: %s", all);
    ck_assert_msg(sl_check_count(cpu, "\n") == 2 && sl_check_count(cpu, "\"name\":\"cpu\"") == 1 &&
                  sl_check_count(cpu, "\"name\":\"cpu_util\"") == 1 && !strstr(cpu, "memory") &&
                  !strstr(cpu, "\"host\"") && strstr(cpu, "\"flavor\":{\"name\":\"m1\"}"),
                  "cpu.jsonl: expected the 2 cpu* samples without host, got:\n%s", cpu);
    ck_assert_msg(!*none, "none.jsonl: expected nothing, got %s", none);
    ck_assert_msg(sl_check_count(rec, "\n") == 2 && strstr(rec, "id-cpu-0") &&
                  strstr(rec, "id-cpu_util-2"),
                  "the %s publisher: expected the two cpu* samples, got:\n%s",
                  threaded ? "threaded test://" : "file://", rec);
    /* Counters: sent counts what each publisher got; the publisher that
     * selected nothing was never called. */
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][0], sent), 3);
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][1], sent), 2);
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][2], sent), 0);
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][2], publishes), 0);
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][3], sent), 2);
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][2], dropped), 0);
    free(all);
    free(cpu);
    free(none);
    free(rec);
    /* A batch nothing selects still completes, delivered. */
    s_done_t d2 = { 0 };
    s_submit(out, (const char *[]) { "disk" }, 1, &d2);
    s_run_until(loop, &d2.calls, 5000);
    ck_assert_msg(d2.calls == 1 && d2.delivered == 1, "done: %d calls, delivered %d", d2.calls,
                  d2.delivered);
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][1], sent), 2);
    ck_assert_uint_eq(SL_PGET(&slot->pub[0][3], sent), 2);
    sl_output_destroy(&out);
    sl_loop_destroy(&loop);
    free(slot);
    sl_conf_destroy(&c);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("forward");
    tcase_add_test(tc, null_profile_selects_and_keeps_everything);
    tcase_add_test(tc, selection_globs_match_meter_names_and_event_types);
    tcase_add_test(tc, drop_fields_takes_dotted_paths_with_globs_through_arrays);
    tcase_add_test(tc, drop_fields_of_one_segment_match_trait_names);
    tcase_add_test(tc, admin_only_fields_match_keys_at_any_depth_unless_admin);
    tcase_add_test(tc, drop_regex_searches_dotted_paths_and_trait_names);
    tcase_add_test(tc, keep_regex_keeps_matching_keys_with_their_parents);
    tcase_add_test(tc, filters_apply_in_their_documented_order);
    tcase_add_test(tc, filter_ignores_what_is_not_an_object_and_odd_traits);
    tcase_add_test(tc, tokens_inline_and_from_a_file_compare_exactly);
    tcase_add_test(tc, bad_profiles_are_refused_at_their_line);
    tcase_add_test(tc, dump_shows_what_was_configured);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("conf+output");
    tcase_add_checked_fixture(tc2, s_dsetup, s_dteardown);
    tcase_add_test(tc2, conf_loads_profiles_and_reports_errors_at_their_line);
    tcase_add_test(tc2, an_unknown_profile_names_the_sink_and_url);
    tcase_add_test(tc2, each_publisher_gets_what_its_profile_selects_filtered);
    suite_add_tcase(s, tc2);
    return sl_check_run(s);
}
