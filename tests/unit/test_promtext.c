/* promtext: the Prometheus text exposition (escaping, families, labels),
 * the retired totals that keep counters monotonic, the listen parser. */
#include <check.h>

#include "tests/sl_check.h"
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/promtext.h"

static char *
s_render(void (*fn)(FILE *, const char *), const char *in)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f, in);
    fclose(f);
    return buf;
}

START_TEST(label_values_escape_backslash_quote_and_newline)
{
    char *out = s_render(sl_promtext_label_value, "a\\b\"c\nd");
    ck_assert_msg(strcmp(out, "a\\\\b\\\"c\\nd") == 0, "expected a\\\\b\\\"c\\nd, got %s", out);
    free(out);
}
END_TEST

START_TEST(help_text_escapes_backslash_and_newline_not_quotes)
{
    char *out = s_render(sl_promtext_help, "x\\y\nz \"q\"");
    ck_assert_msg(strcmp(out, "x\\\\y\\nz \"q\"") == 0, "expected x\\\\y\\nz \"q\", got %s", out);
    free(out);
}
END_TEST

/* A zeroed region with n slots, laid out as the supervisor does. */
static sl_shm_t *
s_shm(unsigned n_ingest, unsigned n_pipeline)
{
    unsigned n = n_ingest + n_pipeline;
    size_t size = sizeof(sl_shm_t) + n * sizeof(sl_slot_t);
    size = (size + 63) / 64 * 64;
    sl_shm_t *shm = aligned_alloc(64, size);
    memset(shm, 0, size);
    shm->n_slots = n;
    atomic_store(&shm->n_ingest, n_ingest);
    atomic_store(&shm->n_pipeline, n_pipeline);
    atomic_store(&shm->n_sinks, 1);
    atomic_store(&shm->generation, 1);
    snprintf(shm->sink_names[0], SL_SINK_NAME_MAX, "meter_sink");
    for (unsigned i = 0; i < n; i++) {
        atomic_store(&shm->slots[i].role, i < n_ingest ? SL_ROLE_INGEST : SL_ROLE_PIPELINE);
        atomic_store(&shm->slots[i].index, (int32_t) (i < n_ingest ? i : i - n_ingest));
        atomic_store(&shm->slots[i].pid, 100 + (int32_t) i);
        atomic_store(&shm->slots[i].state, SL_WS_RUNNING);
    }
    return shm;
}

static char *
s_write(const sl_shm_t *shm, const sl_promtext_retired_t *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sl_promtext_write(f, shm, r);
    fclose(f);
    return buf;
}

static void
s_has(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    ck_assert_msg(strstr(text, want) != NULL, "expected the line\n  %s\nin:\n%.3000s", line, text);
}

START_TEST(every_family_has_help_and_type_and_valid_names)
{
    sl_shm_t *shm = s_shm(1, 1);
    char *text = s_write(shm, NULL);
    regex_t name;
    ck_assert_int_eq(regcomp(&name, "^sluice_[a-z0-9_]+$", REG_EXTENDED | REG_NOSUB), 0);
    int families = 0;
    char *save = NULL, *copy = strdup(text);
    char last_help[128] = "";
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char n[128], kind[16];
        if (sscanf(l, "# HELP %127s", n) == 1) {
            snprintf(last_help, sizeof last_help, "%s", n);
            continue;
        }
        if (sscanf(l, "# TYPE %127s %15s", n, kind) == 2) {
            families++;
            ck_assert_msg(strcmp(n, last_help) == 0, "TYPE %s not right after its HELP (%s)", n,
                          last_help);
            ck_assert_msg(regexec(&name, n, 0, NULL, 0) == 0, "bad metric name %s", n);
            size_t k = strlen(n);
            int total = k > 6 && strcmp(n + k - 6, "_total") == 0;
            ck_assert_msg(strcmp(kind, "counter") == 0 ? total : !total && (strcmp(kind, "gauge") == 0 ||
                          strcmp(kind, "histogram") == 0),
                          "%s is a %s: counters and only counters end in _total", n, kind);
        }
    }
    ck_assert_int_gt(families, SL_C__COUNT + SL_SC__COUNT + SL_PC__COUNT);
    regfree(&name);
    free(copy);
    free(text);
    free(shm);
}
END_TEST

START_TEST(labels_of_publishers_are_escaped_and_duplicates_merged)
{
    sl_shm_t *shm = s_shm(1, 2);
    for (int i = 1; i <= 2; i++) {
        sl_pub_stats_t *ps = &shm->slots[i].pub[0][0];
        sl_stats_text_set_label(&ps->t, "file:///tmp/a\"b\\c");
        SL_PINC(ps, sent, 10 * i);
        SL_PSET(ps, latency_ms_max, 5 * i);
    }
    char *text = s_write(shm, NULL);
    s_has(text, "sluice_publisher_sent_total{sink=\"meter_sink\",publisher=\"file:///tmp/a\\\"b\\\\c\"} 30");
    s_has(text, "sluice_publisher_latency_ms_max{sink=\"meter_sink\",publisher=\"file:///tmp/a\\\"b\\\\c\"} 10");
    free(text);
    free(shm);
}
END_TEST

START_TEST(folded_counters_never_go_backwards_and_gauges_are_not_folded)
{
    sl_shm_t *shm = s_shm(1, 1);
    sl_promtext_retired_t *r = sl_promtext_retired_new();
    SL_INC(&shm->slots[0], received, 5);
    SL_SINC(&shm->slots[0], 0, routed, 4);
    sl_pub_stats_t *ps = &shm->slots[1].pub[0][0];
    sl_stats_text_set_label(&ps->t, "file:///out");
    SL_PINC(ps, sent, 7);
    SL_PSET(ps, queue_depth, 3);
    /* a pipeline worker dies: its publisher counters move, gauges drop */
    sl_promtext_fold(r, shm, 1, SL_PROMTEXT_FOLD_PUB);
    ck_assert_int_eq(SL_PGET(ps, sent), 0);
    ck_assert_int_eq(SL_PGET(ps, queue_depth), 0);
    SL_PINC(ps, sent, 2);              /* its successor publishes */
    char *text = s_write(shm, r);
    s_has(text, "sluice_publisher_sent_total{sink=\"meter_sink\",publisher=\"file:///out\"} 9");
    s_has(text, "sluice_publisher_queue_depth{sink=\"meter_sink\",publisher=\"file:///out\"} 0");
    free(text);
    /* a reload: every slot moves, then the slots start from 0 */
    for (unsigned i = 0; i < shm->n_slots; i++)
        sl_promtext_fold(r, shm, i, SL_PROMTEXT_FOLD_ALL);
    ck_assert_int_eq(SL_GET(&shm->slots[0], received), 0);
    SL_INC(&shm->slots[0], received, 1);
    text = s_write(shm, r);
    s_has(text, "sluice_worker_received_total{worker=\"ingest-0\"} 6");
    s_has(text, "sluice_sink_routed_total{sink=\"meter_sink\"} 4");
    s_has(text, "sluice_publisher_sent_total{sink=\"meter_sink\",publisher=\"file:///out\"} 9");
    free(text);
    /* the next generation has one ingest worker fewer than a retired one:
     * the retired series stays (a counter), without gauges */
    sl_shm_t *small = s_shm(1, 0);
    SL_INC(&small->slots[0], received, 1);
    text = s_write(small, r);
    s_has(text, "sluice_worker_received_total{worker=\"pipeline-0\"} 0");
    ck_assert_msg(!strstr(text, "sluice_worker_up{worker=\"pipeline-0\"}"),
                  "a retired worker has no up gauge:\n%.2000s", text);
    free(text);
    sl_promtext_retired_destroy(&r);
    ck_assert_ptr_null(r);
    free(small);
    free(shm);
}
END_TEST

START_TEST(listen_setting_parses_addresses_and_off)
{
    char host[64], err[256];
    unsigned port = 0;
    ck_assert_int_eq(sl_promtext_listen_parse("127.0.0.1:9465", host, sizeof host, &port, err,
                                              sizeof err), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 9465);
    ck_assert_int_eq(sl_promtext_listen_parse("[::1]:80", host, sizeof host, &port, err, sizeof err), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(sl_promtext_listen_parse(":9000", host, sizeof host, &port, err, sizeof err), 0);
    ck_assert_str_eq(host, "");
    ck_assert_int_eq(sl_promtext_listen_parse("off", host, sizeof host, &port, err, sizeof err), 1);
    ck_assert_int_eq(sl_promtext_listen_parse("", host, sizeof host, &port, err, sizeof err), 1);
    const char *bad[] = { "9465", "localhost:", "localhost:0", "h:65536", "::1:80", "h:12x" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        ck_assert_msg(sl_promtext_listen_parse(bad[i], host, sizeof host, &port, err, sizeof err) < 0,
                      "'%s' should be refused", bad[i]);
        ck_assert_msg(strstr(err, bad[i]) != NULL, "the reason names '%s': %s", bad[i], err);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("promtext");
    TCase *tc = tcase_create("promtext");
    tcase_add_test(tc, label_values_escape_backslash_quote_and_newline);
    tcase_add_test(tc, help_text_escapes_backslash_and_newline_not_quotes);
    tcase_add_test(tc, every_family_has_help_and_type_and_valid_names);
    tcase_add_test(tc, labels_of_publishers_are_escaped_and_duplicates_merged);
    tcase_add_test(tc, folded_counters_never_go_backwards_and_gauges_are_not_folded);
    tcase_add_test(tc, listen_setting_parses_addresses_and_off);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
