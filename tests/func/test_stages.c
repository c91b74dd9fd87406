/* stages: the per-stage timing and the latency histogram of a real sluiced.
 *
 * The corpus (40 copies) goes through a file source into 1 ingest and 1
 * pipeline worker with a file publisher; once every sample is published and
 * every frame confirmed, `sluice-monitor --stages DIR` must print one JSON
 * line in the contract's shape with every stage > 0, the ingest workers'
 * notifications and samples, and one latency observation per frame the
 * pipeline worker received; --prometheus must export the same. With
 * SLUICE_STAGE_SAMPLING=0 every stage is 0 and the latency is still
 * recorded. Built with -Dstage_timing=false, everything is 0. No assertion
 * on how long anything takes. */
#include <check.h>

#include "tests/sl_check.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <yajl/yajl_tree.h>

#include "tests/func/harness.h"

#define S_COPIES 40

static int
s_all_done(sl_h_agent_t *a)
{
    return sl_h_input_done(a) && sl_h_total(a, SL_C_samples_routed) > 0 &&
           sl_h_total(a, SL_C_samples_published) == sl_h_total(a, SL_C_samples_routed) &&
           sl_h_total(a, SL_C_frames_confirmed) == sl_h_total(a, SL_C_frames_sent);
}

static char *
s_monitor(sl_h_agent_t *a, const char *args)
{
    char *out = sl_h_path(a, "monitor.out");
    int rc = sl_h_run("%s/tools/sluice-monitor %s %s > %s", SL_BUILDDIR, args, a->dir, out);
    ck_assert_msg(rc == 0, "sluice-monitor %s %s exited %d", args, a->dir, rc);
    char *text = sl_h_slurp(out, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

static double
s_num(yajl_val root, const char *a, const char *b)
{
    const char *path[] = { a, b, NULL };
    yajl_val v = yajl_tree_get(root, path, yajl_t_number);
    ck_assert_msg(v != NULL, "--stages has no number at %s%s%s", a, b ? "." : "", b ? b : "");
    return YAJL_GET_DOUBLE(v);
}

/* One latency observation per frame delivered (every frame: a file
 * publisher, no transformer), sampling or not; none in a build without
 * stage timing (frames carry no read time). */
static void
s_expect_latency_count(yajl_val root, uint64_t frames)
{
#ifdef SL_STAGE_TIMING
    ck_assert_msg(s_num(root, "latency_ms", "count") == (double) frames,
                  "latency count: expected %llu frames, got %g", (unsigned long long) frames,
                  s_num(root, "latency_ms", "count"));
#else
    ck_assert_msg(s_num(root, "latency_ms", "count") == 0 && frames > 0,
                  "latency count without stage timing: expected 0, got %g (%llu frames)",
                  s_num(root, "latency_ms", "count"), (unsigned long long) frames);
#endif
}

/* Runs the corpus with SLUICE_STAGE_SAMPLING=sampling; the --stages JSON. */
static yajl_val
s_run(sl_h_agent_t *a, const char *tag, const char *sampling, char **prom)
{
    sl_h_mkdir(a, tag);
    sl_h_write_corpus(sl_h_path(a, "input.jsonl"), S_COPIES);
    sl_h_write_basic(a, "  - {type: file, path: input.jsonl}\n", 1, 1, 2, NULL);
    setenv("SLUICE_STAGE_SAMPLING", sampling, 1);
    ck_assert_msg(sl_h_start(a, 10000) == 0, "sluiced did not start; see %s", a->log);
    unsetenv("SLUICE_STAGE_SAMPLING");
    ck_assert_msg(sl_h_wait(a, s_all_done, 60000) == 0,
                  "the corpus was not all published and confirmed: received %llu routed %llu "
                  "published %llu frames sent %llu confirmed %llu (log %s)",
                  (unsigned long long) sl_h_total(a, SL_C_received),
                  (unsigned long long) sl_h_total(a, SL_C_samples_routed),
                  (unsigned long long) sl_h_total(a, SL_C_samples_published),
                  (unsigned long long) sl_h_total(a, SL_C_frames_sent),
                  (unsigned long long) sl_h_total(a, SL_C_frames_confirmed), a->log);
    char *text = s_monitor(a, "--stages");
    char *nl = strchr(text, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "--stages: expected one line, got:\n%s", text);
    char err[256];
    yajl_val root = yajl_tree_parse(text, err, sizeof err);
    ck_assert_msg(root != NULL, "--stages is not JSON (%s):\n%s", err, text);
    free(text);
    *prom = s_monitor(a, "--prometheus --run-dir");
    return root;
}

START_TEST(every_stage_is_timed_and_every_frame_has_a_latency)
{
    sl_h_agent_t a;
    char *prom;
    yajl_val root = s_run(&a, "stages", "4", &prom);
    uint64_t received = sl_h_total(&a, SL_C_received);
    uint64_t frames = sl_h_total(&a, SL_C_frames_received) - sl_h_total(&a, SL_C_frames_rejected);
    ck_assert_uint_eq(received, 125 * S_COPIES);
    ck_assert_msg(s_num(root, "notifications", NULL) == (double) received,
                  "notifications: expected %llu, got %g", (unsigned long long) received,
                  s_num(root, "notifications", NULL));
    ck_assert_msg(s_num(root, "samples", NULL) == (double) sl_h_total(&a, SL_C_samples_converted),
                  "samples: expected %llu, got %g",
                  (unsigned long long) sl_h_total(&a, SL_C_samples_converted),
                  s_num(root, "samples", NULL));
    static const char *const stages[] = { "read", "decode", "convert", "serialise", "send",
                                          "receive", "transform", "publish", NULL };
    double sum = 0;
    for (int i = 0; stages[i]; i++) {
        double v = s_num(root, "cpu_us_per_notification", stages[i]);
#ifdef SL_STAGE_TIMING
        ck_assert_msg(v > 0, "stage %s: expected > 0 us per notification, got %g", stages[i], v);
#else
        ck_assert_msg(v == 0, "stage %s: built without stage timing, got %g", stages[i], v);
#endif
        sum += v;
    }
    double total = s_num(root, "cpu_us_per_notification", "total");
    ck_assert_msg(total > sum - 0.01 && total < sum + 0.01, "total %g is not the sum %g", total, sum);
    s_expect_latency_count(root, frames);
#ifdef SL_STAGE_TIMING
    double p50 = s_num(root, "latency_ms", "p50"), p99 = s_num(root, "latency_ms", "p99");
    double mx = s_num(root, "latency_ms", "max");
    ck_assert_msg(p50 > 0 && p50 <= p99 && p99 <= mx * 1.25 + 0.001,
                  "latency percentiles out of order: p50 %g p99 %g max %g", p50, p99, mx);
    char want[128];
    snprintf(want, sizeof want, "\nsluice_publish_latency_seconds_count %llu\n",
             (unsigned long long) frames);
    ck_assert_msg(strstr(prom, want) != NULL, "--prometheus lacks%s", want);
    ck_assert_msg(strstr(prom, "\nsluice_stage_cpu_seconds_total{worker=\"ingest-0\",stage=\"decode\"} ")
                  != NULL, "--prometheus lacks the ingest worker's decode stage");
    ck_assert_msg(strstr(prom, "\nsluice_stage_cpu_seconds_total{worker=\"pipeline-0\",stage=\"publish\"} ")
                  != NULL, "--prometheus lacks the pipeline worker's publish stage");
#endif
    free(prom);
    yajl_tree_free(root);
    sl_h_stop_ok(&a, 20000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

START_TEST(sampling_off_times_nothing_and_still_measures_latency)
{
    sl_h_agent_t a;
    char *prom;
    yajl_val root = s_run(&a, "stages-off", "0", &prom);
    uint64_t frames = sl_h_total(&a, SL_C_frames_received) - sl_h_total(&a, SL_C_frames_rejected);
    ck_assert_msg(s_num(root, "cpu_us_per_notification", "total") == 0,
                  "SLUICE_STAGE_SAMPLING=0: expected no stage time, got %g us per notification",
                  s_num(root, "cpu_us_per_notification", "total"));
    s_expect_latency_count(root, frames);
    free(prom);
    yajl_tree_free(root);
    sl_h_stop_ok(&a, 20000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("stages");
    TCase *tc = tcase_create("stages");
    tcase_add_test(tc, every_stage_is_timed_and_every_frame_has_a_latency);
    tcase_add_test(tc, sampling_off_times_nothing_and_still_measures_latency);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
