/* test_transform_state — a chain's state moves between workers without
 * changing the output: for every multi-step scenario of tests/data/scenarios
 * and every split point k, steps [0,k) on chain A, save, load into a fresh
 * chain B built from a separately parsed configuration, steps [k,n) on B:
 * the publisher calls (and a final drain) equal one chain's. Every sample
 * field held across the move survives bit for bit; a truncated, corrupt or
 * foreign state is rejected with a message and leaves the chain empty. */
#include <check.h>

#include "tests/sl_check.h"
#include "tests/sl_testfiles.h"
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "common/log.h"
#include "common/pipeline.h"
#include "tools/scenario.h"
#include "worker/transform.h"

#define S_DIR SL_SRCDIR "/tests/data/scenarios"

static char **s_names;
static size_t s_n;

static void
s_list(void)
{
    s_n = sl_test_json_files(S_DIR, 1, &s_names);
}

static void
s_free_list(void)
{
    for (size_t i = 0; i < s_n; i++)
        free(s_names[i]);
    free(s_names);
    s_names = NULL;
    s_n = 0;
}

/* The FNV-1a 64 trailer, computed here from the documented format. */
static uint64_t
s_fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* body[0..n) followed by its checksum, in a malloc'd buffer. */
static unsigned char *
s_with_sum(const unsigned char *body, size_t n)
{
    unsigned char *b = malloc(n + 8);
    memcpy(b, body, n);
    uint64_t h = s_fnv(body, n);
    for (int i = 0; i < 8; i++)
        b[n + i] = (unsigned char) (h >> (8 * i));
    return b;
}

static sl_scenario_t *
s_open(const char *path)
{
    char err[1200];
    sl_scenario_t *sc = NULL;
    int rc = sl_scenario_open(path, &sc, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: expected the scenario to load, got %d: %s", path, rc, err);
    return sc;
}

static sl_chain_t *
s_chain(const sl_scenario_t *sc)
{
    sl_chain_t *c = sl_chain_new(sl_scenario_sink(sc));
    ck_assert_msg(c != NULL, "expected a chain");
    sl_chain_set_source(c, "openstack");
    return c;
}

static void
s_steps(sl_scenario_t *sc, sl_chain_t *c, size_t from, size_t to, yajl_gen g)
{
    char err[1200];
    for (size_t st = from; st < to; st++)
        ck_assert_msg(sl_scenario_step(sc, c, st, g, err, sizeof err) == 0, "%s", err);
}

/* Releases everything still held, as one pseudo publisher call. */
static void
s_drain(sl_scenario_t *sc, sl_chain_t *c, yajl_gen g)
{
    sl_sample_vec_t out = { 0 };
    sl_chain_drain(c, &out);
    sl_scenario_gen_call(sc, g, sl_scenario_steps(sc), "drain", out.v, out.n);
    sl_sample_vec_free(&out);
}

static char *
s_text(yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_array_close(g);
    yajl_gen_get_buf(g, &buf, &len);
    char *t = strndup((const char *) buf, len);
    yajl_gen_free(g);
    return t;
}

static yajl_gen
s_gen(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_array_open(g);
    return g;
}

static void
s_save(const sl_chain_t *c, char **buf, size_t *len)
{
    ck_assert_msg(sl_chain_save(c, buf, len) == 0, "expected the state to save");
    ck_assert_msg(*buf != NULL && *len >= 16, "expected at least a header and a checksum");
}

/* c's state equals a fresh chain's. */
static void
s_assert_empty(const sl_chain_t *c, const char *fresh, size_t fresh_len, const char *what)
{
    char *b;
    size_t n;
    s_save(c, &b, &n);
    ck_assert_msg(n == fresh_len && !memcmp(b, fresh, n),
                  "%s: expected the chain to stay empty after a rejected load", what);
    free(b);
}

static char *
s_full_run(const char *path)
{
    sl_scenario_t *sc = s_open(path);
    sl_chain_t *c = s_chain(sc);
    yajl_gen g = s_gen();
    s_steps(sc, c, 0, sl_scenario_steps(sc), g);
    s_drain(sc, c, g);
    sl_chain_destroy(&c);
    sl_scenario_destroy(&sc);
    return s_text(g);
}

/* Runs [0,k) on A, moves the state to B, runs [k,n) on B. The state bytes
 * at the split in *state (malloc'd). */
static char *
s_split_run(const char *path, size_t k, char **state, size_t *state_len)
{
    sl_scenario_t *sa = s_open(path), *sb = s_open(path);
    sl_chain_t *a = s_chain(sa), *b = s_chain(sb);
    yajl_gen g = s_gen();
    s_steps(sa, a, 0, k, g);
    s_save(a, state, state_len);
    sl_chain_destroy(&a);
    char err[512] = "";
    ck_assert_msg(sl_chain_load(b, *state, *state_len, err, sizeof err) == 0,
                  "%s, split at %zu: expected the state to load, got: %s", path, k, err);
    char *again;
    size_t again_len;
    s_save(b, &again, &again_len);
    ck_assert_msg(again_len == *state_len && !memcmp(again, *state, again_len),
                  "%s, split at %zu: expected saving the loaded state to give the same %zu "
                  "bytes, got %zu", path, k, *state_len, again_len);
    free(again);
    s_steps(sb, b, k, sl_scenario_steps(sb), g);
    s_drain(sb, b, g);
    sl_chain_destroy(&b);
    sl_scenario_destroy(&sa);
    sl_scenario_destroy(&sb);
    return s_text(g);
}

/* Every proper prefix is rejected, with and without a valid checksum, and
 * leaves the chain empty. */
static void
s_truncations(const char *path, const char *state, size_t len, int deep)
{
    sl_scenario_t *sc = s_open(path);
    sl_chain_t *c = s_chain(sc);
    char *fresh;
    size_t fresh_len;
    s_save(c, &fresh, &fresh_len);
    char err[512];
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *p = malloc(cut + 1);
        memcpy(p, state, cut);
        err[0] = '\0';
        ck_assert_msg(sl_chain_load(c, p, cut, err, sizeof err) < 0,
                      "%s: expected a state cut to %zu of %zu bytes to be rejected", path, cut,
                      len);
        ck_assert_msg(err[0] != '\0', "%s: expected a reason for the rejection", path);
        free(p);
        if (deep && cut >= 8 && cut < len - 8) {
            /* a prefix of the body with a correct checksum: the structure
             * itself must be found incomplete */
            p = s_with_sum((const unsigned char *) state, cut);
            ck_assert_msg(sl_chain_load(c, p, cut + 8, err, sizeof err) < 0,
                          "%s: expected the body cut to %zu of %zu bytes (checksum fixed) to "
                          "be rejected", path, cut, len - 8);
            free(p);
        }
    }
    s_assert_empty(c, fresh, fresh_len, path);
    free(fresh);
    sl_chain_destroy(&c);
    sl_scenario_destroy(&sc);
}

/* Every byte flipped: with the stored checksum, rejected; with the checksum
 * recomputed, either rejected (chain empty) or accepted, never a crash
 * (ASan) or a leak. */
static void
s_corruptions(const char *path, const char *state, size_t len)
{
    sl_scenario_t *sc = s_open(path);
    sl_chain_t *c = s_chain(sc);
    char *fresh;
    size_t fresh_len;
    s_save(c, &fresh, &fresh_len);
    char err[512];
    unsigned char *p = malloc(len);
    for (size_t i = 0; i < len; i++) {
        static const unsigned char flips[] = { 0xff, 0x01, 0x80 };
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(p, state, len);
            p[i] ^= flips[f];
            ck_assert_msg(sl_chain_load(c, p, len, err, sizeof err) < 0,
                          "%s: expected byte %zu ^ 0x%02x to be rejected", path, i, flips[f]);
            if (i >= len - 8)
                continue;
            unsigned char *q = s_with_sum(p, len - 8);
            sl_chain_t *d = s_chain(sc);
            if (sl_chain_load(d, q, len, err, sizeof err) < 0) {
                ck_assert_msg(err[0] != '\0', "%s: expected a reason", path);
                s_assert_empty(d, fresh, fresh_len, path);
            }
            sl_chain_destroy(&d);
            free(q);
        }
    }
    free(p);
    s_assert_empty(c, fresh, fresh_len, path);
    free(fresh);
    sl_chain_destroy(&c);
    sl_scenario_destroy(&sc);
}

START_TEST(test_every_split_point_gives_one_chains_output)
{
    s_list();
    ck_assert_msg(s_n >= 48, "expected the 48 scenarios in %s, found %zu", S_DIR, s_n);
    size_t multi = 0, splits = 0;
    for (size_t i = 0; i < s_n; i++) {
        sl_scenario_t *sc = s_open(s_names[i]);
        size_t n = sl_scenario_steps(sc);
        sl_scenario_destroy(&sc);
        if (n < 2)
            continue;
        multi++;
        char *full = s_full_run(s_names[i]);
        for (size_t k = 0; k <= n; k++) {
            char *state;
            size_t len;
            char *split = s_split_run(s_names[i], k, &state, &len);
            ck_assert_msg(!strcmp(full, split),
                          "%s, split at step %zu of %zu: expected\n%s\nbut got\n%s",
                          s_names[i], k, n, full, split);
            free(split);
            free(state);
            splits++;
        }
        free(full);
    }
    ck_assert_msg(multi >= 10 && splits > multi * 3,
                  "expected many multi-step scenarios, found %zu (%zu splits)", multi, splits);
    s_free_list();
}
END_TEST

START_TEST(test_truncated_and_corrupt_states_are_rejected)
{
    s_list();
    size_t checked = 0;
    for (size_t i = 0; i < s_n; i++) {
        sl_scenario_t *sc = s_open(s_names[i]);
        size_t n = sl_scenario_steps(sc);
        sl_scenario_destroy(&sc);
        for (size_t k = 0; k <= n; k++) {
            char *state;
            size_t len;
            free(s_split_run(s_names[i], k, &state, &len));
            /* the checksum path for every split; the structural checks
             * for the split with the most state */
            s_truncations(s_names[i], state, len, k == n / 2 + (n > 1));
            if (k == n / 2 + (n > 1) || (n == 1 && k == 1))
                s_corruptions(s_names[i], state, len);
            free(state);
            checked++;
        }
    }
    ck_assert_msg(checked >= 48, "expected every scenario checked, got %zu", checked);
    s_free_list();
}
END_TEST

/* --- hand-built chains -------------------------------------------------- */

static sl_pipeline_t *
s_pipeline(const char *transformers)
{
    char yaml[4096], err[1024] = "";
    snprintf(yaml, sizeof yaml,
             "sources:\n  - name: src\n    meters: [\"*\"]\n    sinks: [sink1]\n"
             "sinks:\n  - name: sink1\n    publishers: [\"test://\"]\n    transformers:\n%s",
             transformers);
    sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), "pipeline.yaml", "meters", NULL, err,
                                         sizeof err);
    if (p && sl_transform_check(p, NULL, err, sizeof err) < 0)
        sl_pipeline_destroy(&p);
    ck_assert_msg(p != NULL, "expected the transformers to load, got: %s", err);
    return p;
}

static void
s_assert_str(const char *what, size_t i, const char *a, const char *b)
{
    ck_assert_msg((!a && !b) || (a && b && !strcmp(a, b)),
                  "sample %zu %s: expected %s, got %s", i, what, a ? a : "NULL", b ? b : "NULL");
}

/* Every field equal, the volume bit for bit; ids too unless the samples
 * were created after the move (fresh random ids on each side). */
static void
s_assert_same_but_ids(const sl_sample_vec_t *x, const sl_sample_vec_t *y, int ids)
{
    ck_assert_msg(x->n == y->n, "expected %zu samples, got %zu", x->n, y->n);
    for (size_t i = 0; i < x->n; i++) {
        const sl_sample_t *a = &x->v[i], *b = &y->v[i];
        if (ids)
            s_assert_str("id", i, a->id, b->id);
        s_assert_str("name", i, a->name, b->name);
        s_assert_str("type", i, a->type, b->type);
        s_assert_str("unit", i, a->unit, b->unit);
        s_assert_str("volume_json", i, a->volume_json, b->volume_json);
        s_assert_str("user_id", i, a->user_id, b->user_id);
        s_assert_str("project_id", i, a->project_id, b->project_id);
        s_assert_str("resource_id", i, a->resource_id, b->resource_id);
        s_assert_str("timestamp", i, a->timestamp, b->timestamp);
        s_assert_str("resource_metadata", i, a->resource_metadata, b->resource_metadata);
        s_assert_str("source", i, a->source, b->source);
        s_assert_str("message_id", i, a->message_id, b->message_id);
        s_assert_str("monotonic_time", i, a->monotonic_time, b->monotonic_time);
        ck_assert_msg(!memcmp(&a->volume, &b->volume, sizeof a->volume),
                      "sample %zu volume: expected %.17g, got %.17g", i, a->volume, b->volume);
    }
}

static void
s_assert_same(const sl_sample_vec_t *x, const sl_sample_vec_t *y)
{
    s_assert_same_but_ids(x, y, 1);
}

static sl_chain_t *
s_moved(const sl_chain_t *a, const sl_sink_t *sink)
{
    char *buf, err[512] = "";
    size_t len;
    s_save(a, &buf, &len);
    sl_chain_t *b = sl_chain_new(sink);
    ck_assert_msg(sl_chain_load(b, buf, len, err, sizeof err) == 0,
                  "expected the state to load, got: %s", err);
    free(buf);
    return b;
}

START_TEST(test_held_samples_keep_every_field)
{
    sl_pipeline_t *p = s_pipeline("      - name: accumulator\n        parameters: {size: 100}\n");
    sl_chain_t *a = sl_chain_new(&p->sinks[0]);
    sl_sample_t in[3] = {
        { .id = "i0", .name = "cpu", .type = "cumulative", .unit = "ns", .volume_json = "\"7\"",
          .volume = 7, .user_id = "u", .project_id = NULL, .resource_id = "r",
          .timestamp = "2024-01-01T00:00:00.123456+02:00", .resource_metadata = "{\"a\": [1]}",
          .source = "src", .message_id = "m0", .monotonic_time = "12.5" },
        { .id = "i1", .name = "ümlaut", .type = "gauge", .unit = NULL, .volume_json = NULL,
          .volume = 0.1 + 0.2, .user_id = NULL, .project_id = "p", .resource_id = NULL,
          .timestamp = "x", .resource_metadata = "{}", .source = NULL, .message_id = NULL,
          .monotonic_time = NULL },
        { .id = "i2", .name = "", .type = "delta", .unit = "", .volume_json = "-0.0",
          .volume = -0.0, .user_id = "", .project_id = "", .resource_id = "",
          .timestamp = "", .resource_metadata = "{}", .source = "", .message_id = "",
          .monotonic_time = "1e300" },
    };
    sl_sample_vec_t out = { 0 };
    sl_chain_process(a, in, 3, &out);
    ck_assert_msg(out.n == 0, "expected the accumulator to hold the samples");
    sl_chain_t *b = s_moved(a, &p->sinks[0]);
    sl_sample_vec_t oa = { 0 }, ob = { 0 };
    sl_chain_drain(a, &oa);
    sl_chain_drain(b, &ob);
    ck_assert_msg(oa.n == 3, "expected the 3 held samples, got %zu", oa.n);
    s_assert_same(&oa, &ob);
    sl_sample_vec_free(&oa);
    sl_sample_vec_free(&ob);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&a);
    sl_chain_destroy(&b);
    sl_pipeline_destroy(&p);
}
END_TEST

/* Many groups (the hash table's order differs from insertion order),
 * rate_of_change doubles from monotonic_time, the retention deadline. */
START_TEST(test_aggregator_order_and_rates_survive)
{
    sl_pipeline_t *p = s_pipeline(
        "      - name: rate_of_change\n"
        "        parameters: {target: {scale: \"volume * 1.1\"}}\n"
        "      - name: aggregator\n"
        "        parameters: {size: 0, retention_time: 1000000, target: {type: gauge}}\n");
    sl_chain_t *a = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    char rid[300][16], mono[300][16], ts[300][40];
    sl_chain_t *b = NULL;
    for (int round = 0; round < 3; round++) {
        if (round == 2)                     /* the cache moves: monotonic_time rates after */
            b = s_moved(a, &p->sinks[0]);
        for (int i = 0; i < 300; i++) {
            snprintf(rid[i], sizeof rid[i], "r%d", (i * 7919) % 1000);
            snprintf(mono[i], sizeof mono[i], "%.3f", 10.0 + round * 3.7 + i * 0.0013);
            snprintf(ts[i], sizeof ts[i], "2024-01-01T00:00:%02d.%06dZ", round * 10, i);
            sl_sample_t s = { .id = "x", .name = "cpu", .type = "cumulative", .unit = "ns",
                              .volume = round * 1e9 / 3 + i, .volume_json = NULL,
                              .resource_id = rid[i], .timestamp = ts[i],
                              .resource_metadata = "{}", .monotonic_time = mono[i] };
            sl_chain_process(a, &s, 1, &out);
            if (b)
                sl_chain_process(b, &s, 1, &out);
        }
    }
    ck_assert_msg(sl_chain_next_expiry(a) == sl_chain_next_expiry(b),
                  "expected the same retention deadline after the move");
    sl_sample_vec_t oa = { 0 }, ob = { 0 };
    sl_chain_drain(a, &oa);
    sl_chain_drain(b, &ob);
    ck_assert_msg(oa.n == 300, "expected 300 aggregates, got %zu", oa.n);
    s_assert_same(&oa, &ob);
    sl_sample_vec_free(&oa);
    sl_sample_vec_free(&ob);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&a);
    sl_chain_destroy(&b);
    sl_pipeline_destroy(&p);
}
END_TEST

/* A group whose first sample failed to convert holds a count but no
 * aggregate; when it gets one later it is emitted after groups created
 * after it. That order and the counts (the gauge average) survive. */
START_TEST(test_aggregator_late_aggregate_keeps_its_place)
{
    sl_pipeline_t *p = s_pipeline(
        "      - name: aggregator\n"
        "        parameters: {size: 100, target: {type: gauge, scale: \"resource_metadata.k\"}}\n");
    sl_chain_t *a = sl_chain_new(&p->sinks[0]);
    sl_sample_vec_t out = { 0 };
    sl_sample_t in[] = {
        { .id = "a", .name = "m", .type = "gauge", .volume = 1, .resource_id = "X",
          .timestamp = "2024-01-01T00:00:00Z", .resource_metadata = "{}" },
        { .id = "b", .name = "m", .type = "gauge", .volume = 1, .resource_id = "Y",
          .timestamp = "2024-01-01T00:00:01Z", .resource_metadata = "{\"k\": 3}" },
        { .id = "c", .name = "m", .type = "gauge", .volume = 1, .resource_id = "X",
          .timestamp = "2024-01-01T00:00:02Z", .resource_metadata = "{\"k\": 5}" },
    };
    sl_chain_process(a, in, 2, &out);
    sl_chain_t *b = s_moved(a, &p->sinks[0]);       /* X: a count, no aggregate */
    sl_chain_process(a, in + 2, 1, &out);
    sl_chain_process(b, in + 2, 1, &out);
    sl_chain_t *b2 = s_moved(a, &p->sinks[0]);      /* X after Y */
    sl_sample_vec_t oa = { 0 }, ob = { 0 }, ob2 = { 0 };
    sl_chain_drain(a, &oa);
    sl_chain_drain(b, &ob);
    sl_chain_drain(b2, &ob2);
    ck_assert_msg(oa.n == 2 && !strcmp(oa.v[0].resource_id, "Y") && oa.v[1].volume == 2.5,
                  "expected Y then X averaged over its 2 samples (2.5), got %zu samples", oa.n);
    s_assert_same_but_ids(&oa, &ob, 0);
    s_assert_same(&oa, &ob2);
    sl_sample_vec_free(&oa);
    sl_sample_vec_free(&ob);
    sl_sample_vec_free(&ob2);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&a);
    sl_chain_destroy(&b);
    sl_chain_destroy(&b2);
    sl_pipeline_destroy(&p);
}
END_TEST

START_TEST(test_foreign_states_are_rejected)
{
    sl_pipeline_t *roc = s_pipeline("      - name: rate_of_change\n");
    sl_pipeline_t *delta = s_pipeline("      - name: delta\n");
    sl_pipeline_t *roc2 = s_pipeline("      - name: rate_of_change\n      - name: delta\n");
    sl_pipeline_t *roc_k = s_pipeline("      - name: rate_of_change\n"
                                      "        parameters: {target: {scale: 2}}\n");
    sl_chain_t *a = sl_chain_new(&roc->sinks[0]);
    sl_sample_t s = { .id = "x", .name = "cpu", .type = "gauge", .volume = 1,
                      .resource_id = "r", .timestamp = "2024-01-01T00:00:00Z",
                      .resource_metadata = "{}" };
    sl_sample_vec_t out = { 0 };
    sl_chain_process(a, &s, 1, &out);
    char *buf, err[512];
    size_t len;
    s_save(a, &buf, &len);
    struct {
        sl_pipeline_t *p;
        const char *want;
    } cases[] = {
        { delta, "is 'rate_of_change', sink 'sink1' has 'delta'" },
        { roc2, "1 transformers, sink 'sink1' has 2" },
        { roc_k, "other parameters" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_chain_t *b = sl_chain_new(&cases[i].p->sinks[0]);
        char *fresh;
        size_t fresh_len;
        s_save(b, &fresh, &fresh_len);
        err[0] = '\0';
        ck_assert_msg(sl_chain_load(b, buf, len, err, sizeof err) < 0,
                      "case %zu: expected a foreign state to be rejected", i);
        ck_assert_msg(strstr(err, cases[i].want) != NULL,
                      "case %zu: expected the reason to say \"%s\", got \"%s\"", i,
                      cases[i].want, err);
        s_assert_empty(b, fresh, fresh_len, cases[i].want);
        free(fresh);
        sl_chain_destroy(&b);
    }
    /* bad magic, other version (checksum fixed), trailing garbage */
    sl_chain_t *b = sl_chain_new(&roc->sinks[0]);
    unsigned char *q = s_with_sum((const unsigned char *) buf, len - 8);
    q[0] = 'X';
    ck_assert_msg(sl_chain_load(b, q, len, err, sizeof err) < 0 && strstr(err, "not a chain"),
                  "expected a bad magic to be rejected, got \"%s\"", err);
    free(q);
    unsigned char *body = malloc(len);
    memcpy(body, buf, len);
    body[4] = 2;
    q = s_with_sum(body, len - 8);
    ck_assert_msg(sl_chain_load(b, q, len, err, sizeof err) < 0 && strstr(err, "version 2"),
                  "expected version 2 to be rejected, got \"%s\"", err);
    free(q);
    body = realloc(body, len + 1);
    memcpy(body, buf, len - 8);
    body[len - 8] = 0;
    q = s_with_sum(body, len - 7);
    ck_assert_msg(sl_chain_load(b, q, len + 1, err, sizeof err) < 0 && strstr(err, "trailing"),
                  "expected a trailing byte to be rejected, got \"%s\"", err);
    free(q);
    free(body);
    ck_assert_msg(sl_chain_load(b, NULL, 0, err, sizeof err) < 0, "expected NULL rejected");
    /* and the chain is still usable: the real state loads */
    ck_assert_msg(sl_chain_load(b, buf, len, err, sizeof err) == 0, "expected a load: %s", err);
    s.timestamp = "2024-01-01T00:00:10Z";
    s.volume = 21;
    out.n = 0;
    sl_chain_process(b, &s, 1, &out);
    ck_assert_msg(out.n == 1 && out.v[0].volume == 2.0,
                  "expected a rate of 2 from the moved predecessor, got %zu samples", out.n);
    sl_chain_destroy(&b);
    free(buf);
    sl_sample_vec_free(&out);
    sl_chain_destroy(&a);
    sl_pipeline_destroy(&roc);
    sl_pipeline_destroy(&delta);
    sl_pipeline_destroy(&roc2);
    sl_pipeline_destroy(&roc_k);
}
END_TEST

int
main(void)
{
    sl_log_init('T', SL_LOG_ERROR, NULL);
    Suite *s = suite_create("transform_state");
    TCase *tc = tcase_create("transform_state");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_every_split_point_gives_one_chains_output);
    tcase_add_test(tc, test_truncated_and_corrupt_states_are_rejected);
    tcase_add_test(tc, test_held_samples_keep_every_field);
    tcase_add_test(tc, test_aggregator_order_and_rates_survive);
    tcase_add_test(tc, test_aggregator_late_aggregate_keeps_its_place);
    tcase_add_test(tc, test_foreign_states_are_rejected);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
