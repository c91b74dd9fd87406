/* Worker-count invariance, the point of partitioning: for a fixed
 * `partitions`, stateful transformers give the same output whether 1 or 7
 * workers share the work, and across a reload that changes the pipeline
 * worker count mid-stream. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/func/harness.h"
#include "tests/sl_check.h"

#define S_N 6000            /* notifications: about 8,700 samples over 200 resources */

static const char *const s_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id",
    "timestamp", "resource_metadata", "source", NULL,
};

static int
s_gen2_running(sl_h_agent_t *a)
{
    int n = (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
    int running = 0;
    for (int i = 0; i < n; i++)
        running += atomic_load(&a->shm->slots[i].state) == SL_WS_RUNNING;
    return atomic_load(&a->shm->generation) == 2 && running == n;
}

/* Runs the stream; returns the canonical output of each sink, concatenated
 * with headers. reload_to > 0: SIGHUP to that many pipeline workers mid-stream. */
static char *
s_run(const char *tag, int ingest, int pipeline, int reload_to)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, tag);
    ck_assert_int_eq(sl_h_run("%s/tools/sluice-inject --generate %d --seed 7 --resources 200 "
                              "--output %s", SL_BUILDDIR, S_N, sl_h_path(&a, "input.jsonl")), 0);
    sl_h_write_stateful(&a, sl_h_path(&a, "input.jsonl"), ingest, pipeline, reload_to ? 4000 : 0, 1);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "%s: sluiced did not start; see %s", tag, a.log);
    if (reload_to) {
        sl_h_sleep_ms(600);
        ck_assert_msg(sl_h_total(&a, SL_C_received) < S_N, "%s: the reload must land mid-stream", tag);
        sl_h_write_stateful(&a, sl_h_path(&a, "input.jsonl"), ingest, reload_to, 4000, 1);
        kill(a.pid, SIGHUP);
        ck_assert_msg(sl_h_wait(&a, s_gen2_running, 20000) == 0, "%s: reload not applied", tag);
    }
    ck_assert_msg(sl_h_wait(&a, sl_h_input_done, 60000) == 0, "%s: input not consumed", tag);
    sl_h_stop_ok(&a, 30000, tag);   /* drains the reorder windows, flushes */
    char *all = sl_h_stateful_outputs(&a, s_fields, tag);
    sl_h_cleanup(&a);
    return all;
}

static void
s_compare(const char *what, const char *want, const char *got)
{
    if (strcmp(want, got) == 0)
        return;
    FILE *f = fopen("/tmp/sluice-invariance.want", "w");
    fputs(want, f);
    fclose(f);
    f = fopen("/tmp/sluice-invariance.got", "w");
    fputs(got, f);
    fclose(f);
    sl_h_run("diff /tmp/sluice-invariance.want /tmp/sluice-invariance.got | head -20 >&2");
    ck_abort_msg("%s: output differs from 1 ingest + 1 pipeline worker (diff above)", what);
}

START_TEST(output_does_not_depend_on_worker_counts_or_a_reload)
{
    char *one = s_run("inv-1x1", 1, 1, 0);
    ck_assert_msg(strstr(one, "\"name\":\"rate.per_min\"") && strstr(one, "\"name\":\"change\""),
                  "the stateful sinks produced no transformed samples");
    char *many = s_run("inv-3x4", 3, 4, 0);
    s_compare("3 ingest + 4 pipeline", one, many);
    char *reload = s_run("inv-reload", 3, 2, 4);
    s_compare("3 ingest + 2 -> 4 pipeline across SIGHUP", one, reload);
    free(one);
    free(many);
    free(reload);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("invariance");
    TCase *tc = tcase_create("invariance");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, output_does_not_depend_on_worker_counts_or_a_reload);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
