/* place: cpu_affinity (worker.h sl_worker_place). With spread, each worker
 * pins itself to one CPU of the mask it inherited, ingest workers first,
 * then pipeline workers, round robin; with off, or a mask of one CPU, the
 * mask is left alone. Each test restores the test process's mask. And
 * pipeline_nice: what a pipeline worker adds to its nice value. */
#include <check.h>

#include "tests/sl_check.h"
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>

#include "worker/worker.h"

static cpu_set_t s_saved;
static int s_cpu[2];        /* the first two CPUs of the test's mask */

static void
s_setup(void)
{
    ck_assert_int_eq(sched_getaffinity(0, sizeof s_saved, &s_saved), 0);
    ck_assert_msg(CPU_COUNT(&s_saved) >= 2, "these tests need at least 2 CPUs in the affinity "
                  "mask; this process has %d (run them on a host or cpuset with 2 or more)",
                  CPU_COUNT(&s_saved));
    for (int cpu = 0, k = 0; cpu < CPU_SETSIZE && k < 2; cpu++)
        if (CPU_ISSET(cpu, &s_saved))
            s_cpu[k++] = cpu;
}

static void
s_teardown(void)
{
    sched_setaffinity(0, sizeof s_saved, &s_saved);
}

/* The two CPUs as this process's mask (what a worker would inherit). */
static void
s_mask_two(void)
{
    cpu_set_t two;
    CPU_ZERO(&two);
    CPU_SET(s_cpu[0], &two);
    CPU_SET(s_cpu[1], &two);
    ck_assert_int_eq(sched_setaffinity(0, sizeof two, &two), 0);
}

/* The one CPU this process runs on after place(), or -1 if several. */
static int
s_place(unsigned mode, int n_ingest, int is_ingest, int index)
{
    sl_conf_t conf;
    memset(&conf, 0, sizeof conf);
    conf.cpu_affinity = mode;
    conf.n_ingest = n_ingest;
    sl_worker_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.conf = &conf;
    ctx.index = index;
    sl_worker_place(&ctx, is_ingest);
    cpu_set_t now;
    ck_assert_int_eq(sched_getaffinity(0, sizeof now, &now), 0);
    if (CPU_COUNT(&now) != 1)
        return -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &now))
            return cpu;
    return -1;
}

START_TEST(spread_pins_ingest_workers_first_then_pipeline_workers_round_robin)
{
    /* 2 ingest + 2 pipeline workers over 2 CPUs: i0 c0, i1 c1, p0 c0, p1 c1 */
    const struct { int is_ingest, index, cpu; } want[] = {
        { 1, 0, 0 }, { 1, 1, 1 }, { 0, 0, 0 }, { 0, 1, 1 }, { 1, 2, 0 }, { 0, 3, 1 },
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        s_mask_two();
        int got = s_place(1, 2, want[i].is_ingest, want[i].index);
        ck_assert_msg(got == s_cpu[want[i].cpu], "%s worker #%d: expected CPU %d, runs on %d "
                      "(-1 = several)", want[i].is_ingest ? "ingest" : "pipeline",
                      want[i].index, s_cpu[want[i].cpu], got);
    }
    /* 1 + 1: the pipeline worker gets the other CPU */
    s_mask_two();
    ck_assert_int_eq(s_place(1, 1, 0, 0), s_cpu[1]);
}
END_TEST

START_TEST(off_or_a_single_cpu_leaves_the_mask_alone)
{
    s_mask_two();
    ck_assert_msg(s_place(0, 1, 1, 0) == -1, "cpu_affinity off pinned the worker");
    cpu_set_t now;
    ck_assert_int_eq(sched_getaffinity(0, sizeof now, &now), 0);
    ck_assert_int_eq(CPU_COUNT(&now), 2);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(s_cpu[1], &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    ck_assert_int_eq(s_place(1, 1, 1, 1), s_cpu[1]);   /* spread, one CPU: stays there */
}
END_TEST

/* How much a worker's place() raises this process's nice value. */
static int
s_nice_added(const char *pipeline_nice, int n_ingest, int n_pipeline, int is_ingest)
{
    sl_conf_t conf;
    memset(&conf, 0, sizeof conf);
    conf.pipeline_nice_text = (char *) pipeline_nice;
    conf.n_ingest = n_ingest;
    conf.n_pipeline = n_pipeline;
    sl_worker_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.conf = &conf;
    errno = 0;
    int before = getpriority(PRIO_PROCESS, 0);
    ck_assert(!(before == -1 && errno));
    sl_worker_place(&ctx, is_ingest);
    return getpriority(PRIO_PROCESS, 0) - before;
}

/* pipeline_nice: added to a pipeline worker's nice value, never to an
 * ingest worker's; auto adds SL_CONF_AUTO_NICE only when the workers
 * outnumber the usable CPUs. (Check runs each test in its own process:
 * the raised values go with it.) */
START_TEST(pipeline_nice_lowers_pipeline_workers_only)
{
    s_mask_two();
    ck_assert_int_eq(s_nice_added("3", 1, 1, 1), 0);
    ck_assert_int_eq(s_nice_added("3", 1, 1, 0), 3);
    ck_assert_int_eq(s_nice_added("0", 1, 1, 0), 0);
    /* two CPUs (unless a cgroup quota says fewer): 1 + 1 workers do not
     * outnumber them, 2 + 2 do */
    int cpus = sl_conf_cpu_count();
    ck_assert_int_eq(s_nice_added("auto", 1, 1, 0), 2 > cpus ? SL_CONF_AUTO_NICE : 0);
    ck_assert_int_eq(s_nice_added("auto", cpus, 1, 0), SL_CONF_AUTO_NICE);
    ck_assert_int_eq(s_nice_added("auto", cpus, 1, 1), 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(s_cpu[0], &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    ck_assert_int_eq(s_nice_added("auto", 1, 1, 0), SL_CONF_AUTO_NICE);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("place");
    TCase *tc = tcase_create("place");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, spread_pins_ingest_workers_first_then_pipeline_workers_round_robin);
    tcase_add_test(tc, off_or_a_single_cpu_leaves_the_mask_alone);
    tcase_add_test(tc, pipeline_nice_lowers_pipeline_workers_only);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
