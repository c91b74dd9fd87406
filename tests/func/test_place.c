/* cpu_affinity through the real sluiced: with spread, every thread of every
 * worker (its ZeroMQ I/O and reaper threads included) runs on the one CPU
 * the placement rule gives it (worker.h sl_worker_place), and the samples
 * are still exactly the corpus's; with off, the workers keep the whole
 * mask they inherited. Needs at least two CPUs in the test's mask. And
 * pipeline_nice: every thread of a pipeline worker runs at the raised nice
 * value. */
#include <check.h>

#include "tests/sl_check.h"
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tests/func/harness.h"

#define S_COPIES 20

static const char *const s_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id",
    "timestamp", "resource_metadata", "source", "message_id", NULL,
};

/* The k-th CPU of the test's own mask (the agent inherits it). */
static int
s_nth_cpu(int k)
{
    cpu_set_t set;
    ck_assert_int_eq(sched_getaffinity(0, sizeof set, &set), 0);
    ck_assert_msg(CPU_COUNT(&set) >= 2, "this test needs at least 2 CPUs in its affinity mask; "
                  "it has %d (run it on a host or cpuset with 2 or more)", CPU_COUNT(&set));
    k %= CPU_COUNT(&set);
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &set) && seen++ == k)
            return cpu;
    return -1;
}

/* Calls check(tid, arg) for every thread of pid; check returns 0 for a
 * thread that just ended. Returns the threads checked. */
static int
s_each_thread(pid_t pid, const char *who, int (*check)(pid_t tid, void *arg), void *arg)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int) pid);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s (pid %d) is gone", who, (int) pid);
    int threads = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            threads += check((pid_t) atoi(e->d_name), arg);
    closedir(d);
    return threads;
}

typedef struct {
    int cpu;
    const char *who;
    cpu_set_t mine;
} s_mask_want_t;

static int
s_check_mask(pid_t tid, void *arg)
{
    s_mask_want_t *w = arg;
    cpu_set_t set;
    if (sched_getaffinity(tid, sizeof set, &set) < 0)
        return 0;
    if (w->cpu >= 0)
        ck_assert_msg(CPU_COUNT(&set) == 1 && CPU_ISSET(w->cpu, &set), "%s thread %d: expected "
                      "only CPU %d, allowed on %d CPUs", w->who, (int) tid, w->cpu,
                      CPU_COUNT(&set));
    else
        ck_assert_msg(CPU_EQUAL(&set, &w->mine), "%s thread %d: cpu_affinity off, but its mask "
                      "(%d CPUs) is not the agent's (%d)", w->who, (int) tid, CPU_COUNT(&set),
                      CPU_COUNT(&w->mine));
    return 1;
}

/* Checks every thread of pid: pinned to cpu, or (cpu < 0) allowed on as
 * many CPUs as the test is. Returns the threads seen. */
static int
s_check_threads(pid_t pid, int cpu, const char *who)
{
    s_mask_want_t w = { .cpu = cpu, .who = who };
    ck_assert_int_eq(sched_getaffinity(0, sizeof w.mine, &w.mine), 0);
    return s_each_thread(pid, who, s_check_mask, &w);
}

typedef struct {
    pid_t pid;
    int nice;
    const char *who;
} s_nice_want_t;

/* A thread's nice value is field 19 of /proc/<pid>/task/<tid>/stat. */
static int
s_check_nice_of(pid_t tid, void *arg)
{
    s_nice_want_t *w = arg;
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int) w->pid, (int) tid);
    char *stat = sl_h_slurp(path, NULL);
    if (!stat)
        return 0;
    char *p = strrchr(stat, ')');   /* the fields after the command name */
    ck_assert_ptr_nonnull(p);
    int field = 2, nice = 0;
    for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " "))
        if (++field == 19) {
            nice = atoi(t);
            break;
        }
    free(stat);
    ck_assert_int_eq(field, 19);
    ck_assert_msg(nice == w->nice, "%s thread %d runs at nice %d, expected %d", w->who,
                  (int) tid, nice, w->nice);
    return 1;
}

/* Checks that every thread of pid runs at nice value want. Returns the
 * threads seen. */
static int
s_check_nice(pid_t pid, int want, const char *who)
{
    s_nice_want_t w = { .pid = pid, .nice = want, .who = who };
    return s_each_thread(pid, who, s_check_nice_of, &w);
}

/* Runs the corpus through 2 + 2 workers with cpu_affinity = mode and
 * checks every worker's threads against the rule. */
static void
s_run(const char *mode)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, mode);
    sl_h_write_corpus(sl_h_path(&a, "input.jsonl"), S_COPIES);
    char extra[64];
    snprintf(extra, sizeof extra, "cpu_affinity: %s\n", mode);
    sl_h_write_basic(&a, "  - {type: file, path: input.jsonl}\n", 2, 2, 4, extra);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    ck_assert_msg(sl_h_wait(&a, sl_h_input_done, 60000) == 0, "the input was not all read and "
                  "received within 60 s; see %s", a.log);
    int spread = strcmp(mode, "spread") == 0;
    int n_ingest = (int) atomic_load(&a.shm->n_ingest);
    int n = n_ingest + (int) atomic_load(&a.shm->n_pipeline);
    ck_assert_int_eq(n, 4);
    for (int i = 0; i < n; i++) {
        pid_t pid = atomic_load(&a.shm->slots[i].pid);
        int is_ingest = atomic_load(&a.shm->slots[i].role) == SL_ROLE_INGEST;
        int index = is_ingest ? i : i - n_ingest;
        char who[64];
        snprintf(who, sizeof who, "%s worker #%d", is_ingest ? "ingest" : "pipeline", index);
        int cpu = spread ? s_nth_cpu(is_ingest ? index : n_ingest + index) : -1;
        ck_assert_msg(s_check_threads(pid, cpu, who) >= 2, "%s: expected its ZeroMQ threads "
                      "too", who);
    }
    sl_h_stop_ok(&a, 30000, NULL);
    ck_assert_msg(sl_h_samples_are_corpus(&a, S_COPIES, s_fields), "cpu_affinity %s: the "
                  "samples are not the corpus's (see %s)", mode, a.log);
    sl_h_cleanup(&a);
}

/* pipeline_nice: 7 through the real sluiced: every thread of every
 * pipeline worker runs 7 nice levels below the supervisor, every ingest
 * worker's thread at its level, and the samples are the corpus's. */
START_TEST(pipeline_nice_lowers_every_thread_of_the_pipeline_workers)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "nice");
    sl_h_write_corpus(sl_h_path(&a, "input.jsonl"), S_COPIES);
    sl_h_write_basic(&a, "  - {type: file, path: input.jsonl}\n", 2, 2, 4, "pipeline_nice: 7\n");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    ck_assert_msg(sl_h_wait(&a, sl_h_input_done, 60000) == 0, "the input was not all read and "
                  "received within 60 s; see %s", a.log);
    errno = 0;
    int base = getpriority(PRIO_PROCESS, (id_t) a.pid);
    ck_assert(!(base == -1 && errno));
    int want = base + 7 > 19 ? 19 : base + 7;
    int n = (int) atomic_load(&a.shm->n_ingest) + (int) atomic_load(&a.shm->n_pipeline);
    ck_assert_int_eq(n, 4);
    for (int i = 0; i < n; i++) {
        pid_t pid = atomic_load(&a.shm->slots[i].pid);
        int is_ingest = atomic_load(&a.shm->slots[i].role) == SL_ROLE_INGEST;
        char who[64];
        snprintf(who, sizeof who, "%s worker (pid %d)", is_ingest ? "ingest" : "pipeline",
                 (int) pid);
        ck_assert_msg(s_check_nice(pid, is_ingest ? base : want, who) >= 2, "%s: expected "
                      "its ZeroMQ threads too", who);
    }
    sl_h_stop_ok(&a, 30000, NULL);
    ck_assert_msg(sl_h_samples_are_corpus(&a, S_COPIES, s_fields), "pipeline_nice 7: the "
                  "samples are not the corpus's (see %s)", a.log);
    sl_h_cleanup(&a);
}
END_TEST

START_TEST(spread_pins_every_thread_of_every_worker_and_changes_no_sample)
{
    s_run("spread");
}
END_TEST

START_TEST(off_leaves_the_workers_on_the_agents_whole_mask)
{
    s_run("off");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("place");
    TCase *tc = tcase_create("place");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, spread_pins_every_thread_of_every_worker_and_changes_no_sample);
    tcase_add_test(tc, off_leaves_the_workers_on_the_agents_whole_mask);
    tcase_add_test(tc, pipeline_nice_lowers_every_thread_of_the_pipeline_workers);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
