/* Hardening of the real sluiced: the pidfile lock (a refused start touches
 * nothing of the running agent; a stale pidfile never blocks; a killed
 * supervisor's lock and shared memory do not outlive it), the permissions
 * of what it creates under any umask, and publisher option bounds at -t. */
#include <check.h>

#include "tests/sl_check.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/func/harness.h"

static void
s_write_config(sl_h_agent_t *a, int ingest, int pipeline, const char *sink)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\n"
             "workers: {ingest: %d, pipeline: %d}\n"
             "partitions: 4\n"
             "shutdown_grace: 5\n"
             "sources:\n"
             "  - {type: zmq, endpoint: 'ipc://%s/notify.sock', mode: connect}\n"
             "ceilometer:\n"
             "  pipeline: pipeline.yaml\n"
             "  meters: %s/conf/meters.yaml\n",
             a->dir, ingest, pipeline, a->dir, SL_SRCDIR);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[1024];
    snprintf(pipe, sizeof pipe,
             "sources:\n"
             "  - {name: s, meters: ['*'], sinks: [%s]}\n"
             "sinks:\n"
             "  - name: %s\n"
             "    transformers: [{name: aggregator, parameters: {size: 5}}]\n"
             "    publishers: ['file://%s/samples.jsonl']\n", sink, sink, a->dir);
    sl_h_write(a, "pipeline.yaml", pipe);
}

/* Waits up to timeout_ms for pid (our child) to exit; its status or -1. */
static int
s_wait_exit(pid_t pid, int timeout_ms)
{
    for (int t = 0; t <= timeout_ms; t += 20) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        sl_h_sleep_ms(20);
    }
    return -1;
}

/* The region of a's run_dir if it is pid's and all its workers run. */
static int
s_runs(sl_h_agent_t *a, pid_t pid)
{
    char name[64], err[256];
    sl_shm_name(a->dir, name, sizeof name);
    if (a->shm && atomic_load(&a->shm->supervisor_pid) != pid) {
        sl_shm_unmap(a->shm);
        a->shm = NULL;
    }
    if (!a->shm)
        a->shm = sl_shm_attach(name, err, sizeof err);
    if (!a->shm || atomic_load(&a->shm->supervisor_pid) != pid)
        return 0;
    int n = (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
    int running = 0;
    for (int i = 0; i < n; i++)
        running += atomic_load(&a->shm->slots[i].state) == SL_WS_RUNNING;
    return n > 0 && running == n;
}

/* Starts sluiced as a's agent and waits until its own region (not a stale
 * one) shows every worker running. 0 or -1. */
static int
s_start(sl_h_agent_t *a, int timeout_ms)
{
    a->pid = sl_h_spawn(a, a->log);
    ck_assert(a->pid > 0);
    for (int t = 0; t < timeout_ms; t += 20) {
        if (s_runs(a, a->pid))
            return 0;
        int st;
        if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
            a->pid = 0;
            return -1;
        }
        sl_h_sleep_ms(20);
    }
    return -1;
}

static long
s_pidfile_pid(sl_h_agent_t *a)
{
    char *txt = sl_h_slurp(sl_h_path(a, "sluiced.pid"), NULL);
    long pid = txt ? strtol(txt, NULL, 10) : -1;
    free(txt);
    return pid;
}

/* Gone, or a zombie nobody reaped yet (orphans go to PID 1). */
static int
s_gone(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

static int
s_log_has(const char *log, const char *needle)
{
    char *txt = sl_h_slurp(log, NULL);
    int found = txt && strstr(txt, needle);
    free(txt);
    return found;
}

START_TEST(a_refused_second_start_leaves_the_running_agent_alone)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "second");
    s_write_config(&a, 1, 1, "k");
    ck_assert_msg(s_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    /* a file of the running agent's state/ that none of its workers reads
     * (a partition's file, k.0, is consumed by the worker that takes the
     * partition, which may happen just after the workers report running) */
    sl_h_write(&a, "state/canary", "state of the running agent");
    char *log2 = sl_h_path(&a, "second.log");
    pid_t b = sl_h_spawn(&a, log2);
    ck_assert(b > 0);
    int st = s_wait_exit(b, 10000);
    if (st < 0)
        sl_h_kill(b);
    ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1,
                  "second sluiced: expected exit 1, got status %d (log %s)", st, log2);
    ck_assert_msg(access(sl_h_path(&a, "state/canary"), F_OK) == 0,
                  "the refused start wiped the running agent's state/");
    char want[128];
    snprintf(want, sizeof want, "another sluiced (pid %d) is running", (int) a.pid);
    ck_assert_msg(s_log_has(log2, want) && s_log_has(log2, "kill -TERM") &&
                  s_log_has(log2, "-o run_dir="),
                  "the refusal should name the running pid and say what to do; see %s", log2);
    ck_assert_msg(kill(a.pid, 0) == 0 && s_pidfile_pid(&a) == a.pid,
                  "the running agent or its pidfile was disturbed (pidfile says %ld)",
                  s_pidfile_pid(&a));
    ck_assert_msg(s_runs(&a, a.pid), "the running agent's shared memory was replaced");
    sl_h_stop_ok(&a, 15000, NULL);
    ck_assert_msg(access(sl_h_path(&a, "sluiced.pid"), F_OK) < 0, "pidfile left after a stop");
    sl_h_cleanup(&a);
}
END_TEST

START_TEST(a_stale_pidfile_naming_a_live_process_does_not_block_start_up)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "stalepid");
    s_write_config(&a, 1, 1, "k");
    /* The pid of a live process that is not sluiced: this test. */
    char txt[32];
    snprintf(txt, sizeof txt, "%d\n", (int) getpid());
    sl_h_write(&a, "sluiced.pid", txt);
    ck_assert_msg(s_start(&a, 10000) == 0,
                  "a pidfile nobody holds the lock of blocked start-up; see %s", a.log);
    ck_assert_int_eq(s_pidfile_pid(&a), a.pid);
    sl_h_stop_ok(&a, 15000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

START_TEST(of_two_simultaneous_starts_exactly_one_runs)
{
    for (int round = 0; round < 4; round++) {
        sl_h_agent_t a;
        sl_h_mkdir(&a, "race");
        s_write_config(&a, 1, 1, "k");
        pid_t p[2] = { sl_h_spawn(&a, a.log), sl_h_spawn(&a, a.log) };
        ck_assert(p[0] > 0 && p[1] > 0);
        int loser = -1, st = -1;
        for (int t = 0; t < 10000 && loser < 0; t += 20) {
            for (int i = 0; i < 2 && loser < 0; i++)
                if (waitpid(p[i], &st, WNOHANG) == p[i])
                    loser = i;
            sl_h_sleep_ms(20);
        }
        if (loser < 0) {
            sl_h_kill(p[0]);
            sl_h_kill(p[1]);
        }
        ck_assert_msg(loser >= 0, "round %d: both supervisors kept running on one run_dir", round);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1,
                      "round %d: the refused one should exit 1, got status %d", round, st);
        a.pid = p[1 - loser];
        for (int t = 0; t < 10000 && !s_runs(&a, a.pid); t += 20)
            sl_h_sleep_ms(20);
        ck_assert_msg(s_runs(&a, a.pid), "round %d: the winner does not run; see %s", round,
                      a.log);
        ck_assert_int_eq(s_pidfile_pid(&a), a.pid);
        sl_h_stop_ok(&a, 15000, NULL);
        sl_h_cleanup(&a);
    }
}
END_TEST

START_TEST(a_killed_supervisors_lock_and_shared_memory_do_not_outlive_it)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "sigkill");
    s_write_config(&a, 2, 2, "k");
    ck_assert_msg(s_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t old = a.pid, workers[4] = { 0 };
    int n = (int) (atomic_load(&a.shm->n_ingest) + atomic_load(&a.shm->n_pipeline));
    ck_assert_int_eq(n, 4);
    for (int i = 0; i < n; i++)
        workers[i] = atomic_load(&a.shm->slots[i].pid);
    /* Ingest worker #0 is stopped, so it outlives the supervisor: the lock
     * must not live on in it. */
    ck_assert_int_eq(atomic_load(&a.shm->slots[0].role), SL_ROLE_INGEST);
    kill(workers[0], SIGSTOP);
    sl_h_kill(old);
    a.pid = 0;
    for (int t = 0; t < 10000; t += 20) {
        int left = 0;
        for (int i = 1; i < n; i++)
            left += !s_gone(workers[i]);
        if (!left)
            break;
        sl_h_sleep_ms(20);
    }
    for (int i = 1; i < n; i++)
        ck_assert_msg(s_gone(workers[i]), "worker pid %d outlived its supervisor by 10 s",
                      (int) workers[i]);
    ck_assert_msg(!s_gone(workers[0]), "the stopped worker should still be there");
    char name[64], shm_path[128];
    sl_shm_name(a.dir, name, sizeof name);
    snprintf(shm_path, sizeof shm_path, "/dev/shm%s", name);
    ck_assert_msg(access(shm_path, F_OK) == 0, "expected the killed supervisor's region %s",
                  shm_path);

    int rc = s_start(&a, 10000);
    kill(workers[0], SIGKILL);   /* a child of the killed supervisor: ours to end */
    ck_assert_msg(rc == 0, "start after a SIGKILL failed; see %s", a.log);
    ck_assert_int_eq(s_pidfile_pid(&a), a.pid);
    ck_assert_msg(atomic_load(&a.shm->supervisor_pid) == a.pid,
                  "the region is still the killed supervisor's");
    ck_assert_msg(s_log_has(a.log, "did not stop cleanly"), "no word on the stale region in %s",
                  a.log);
    sl_h_stop_ok(&a, 15000, NULL);
    ck_assert_msg(access(shm_path, F_OK) < 0, "%s left after a clean stop", shm_path);
    sl_h_cleanup(&a);
}
END_TEST

static int
s_count_sockets(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        n += lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
    }
    if (d)
        closedir(d);
    return n;
}

/* Every entry of dir that sluiced made; the test's own files are skipped. */
static void
s_check_not_writable(const char *dir, int *checked)
{
    static const char *const ours[] = { "sluice.yaml", "pipeline.yaml", "sluiced.log",
                                        "samples.jsonl", ".", "..", NULL };
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        int skip = 0;
        for (int i = 0; ours[i]; i++)
            skip |= strcmp(e->d_name, ours[i]) == 0;
        if (skip)
            continue;
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert_msg((st.st_mode & 022) == 0, "%s is %o: group/world-writable", path,
                      st.st_mode & 0777);
        (*checked)++;
        if (S_ISDIR(st.st_mode))
            s_check_not_writable(path, checked);
    }
    closedir(d);
}

START_TEST(what_sluiced_creates_is_not_group_or_world_writable_under_umask_000)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "umask");
    s_write_config(&a, 1, 2, "k");
    mode_t old = umask(0);
    int rc = s_start(&a, 10000);
    umask(old);
    ck_assert_msg(rc == 0, "sluiced did not start; see %s", a.log);
    for (int t = 0; t < 10000 && s_count_sockets(a.dir) < 4; t += 20)
        sl_h_sleep_ms(20);
    ck_assert_msg(s_count_sockets(a.dir) >= 4, "expected the 4 partition sockets in %s", a.dir);
    int checked = 0;
    s_check_not_writable(a.dir, &checked);   /* sockets, pidfile, state/ */
    ck_assert_msg(checked >= 4 + 1 + 1, "only %d entries checked", checked);
    /* A reload onto a renamed sink leaves the old sink's transformer state
     * in state/ (nobody loads it), so there are state files to look at. */
    s_write_config(&a, 1, 2, "k2");
    kill(a.pid, SIGHUP);
    char state0[300];
    snprintf(state0, sizeof state0, "%s/state/k.0", a.dir);
    for (int t = 0; t < 15000 && access(state0, F_OK) < 0; t += 20)
        sl_h_sleep_ms(20);
    ck_assert_msg(access(state0, F_OK) == 0, "no transformer state was saved on reload");
    checked = 0;
    s_check_not_writable(a.dir, &checked);   /* and the state files */
    ck_assert_msg(checked >= 1 + 1 + 4, "only %d entries checked", checked);
    char name[64], shm_path[128];
    sl_shm_name(a.dir, name, sizeof name);
    snprintf(shm_path, sizeof shm_path, "/dev/shm%s", name);
    struct stat st;
    ck_assert_int_eq(stat(shm_path, &st), 0);
    ck_assert_msg((st.st_mode & 0777) == 0640, "shared memory %s is %o, expected 0640",
                  shm_path, st.st_mode & 0777);
    /* The publisher's output keeps the operator's umask (000 here) but is
     * never world-writable. */
    ck_assert_int_eq(stat(sl_h_path(&a, "samples.jsonl"), &st), 0);
    ck_assert_msg((st.st_mode & 0777) == 0644, "samples.jsonl is %o, expected 0644",
                  st.st_mode & 0777);
    sl_h_stop_ok(&a, 15000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

/* The supervisor waits for the old workers inside a reload; a SIGTERM that
 * arrives then must still stop it (it used to be consumed and dropped). */
START_TEST(a_stop_signal_during_a_reload_is_not_lost)
{
    static const int delays_ms[] = { 20, 60, 120 };
    for (int i = 0; i < 3; i++) {
        sl_h_agent_t a;
        sl_h_mkdir(&a, "hupterm");
        s_write_config(&a, 1, 2, "k");
        ck_assert_msg(s_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
        kill(a.pid, SIGHUP);
        sl_h_sleep_ms(delays_ms[i]);
        sl_h_stop_ok(&a, 20000, NULL);
        sl_h_cleanup(&a);
    }
}
END_TEST

static void
s_check_t_refuses(const char *url_query, int url_line, const char *want1, const char *want2)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "bounds");
    s_write_config(&a, 1, 1, "k");
    char pipe[1024];
    snprintf(pipe, sizeof pipe,
             "sources:\n"
             "  - {name: s, meters: ['*'], sinks: [k]}\n"
             "sinks:\n"
             "  - name: k\n"
             "    publishers:\n"
             "      - file://%s/ok.jsonl\n"
             "      - file://%s/samples.jsonl?%s\n", a.dir, a.dir, url_query);
    sl_h_write(&a, "pipeline.yaml", pipe);
    int st = sl_h_run("%s/supervisor/sluiced -t -c %s >%s 2>&1", SL_BUILDDIR,
                      sl_h_path(&a, "sluice.yaml"), sl_h_path(&a, "t.out"));
    char *out = sl_h_slurp(sl_h_path(&a, "t.out"), NULL);
    char where[300];
    snprintf(where, sizeof where, "pipeline.yaml:%d: sink 'k': ", url_line);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2, "sluiced -t with %s: expected exit 2, "
                  "got status %d: %s", url_query, st, out);
    ck_assert_msg(out && strstr(out, where) && strstr(out, want1) && strstr(out, want2),
                  "sluiced -t with %s should say '%s', '%s' and '%s', said: %s", url_query, where,
                  want1, want2, out);
    free(out);
    sl_h_cleanup(&a);
}

START_TEST(sluiced_t_refuses_publisher_options_out_of_range_naming_file_and_line)
{
    s_check_t_refuses("max_bytes=-1&backup_count=5", 7,
                      "max_bytes=-1 is not allowed: max_bytes must be a whole number from 0 to "
                      "1125899906842624", "write e.g. max_bytes=104857600");
    s_check_t_refuses("max_bytes=1000&backup_count=4294967295", 7,
                      "backup_count=4294967295 is not allowed: backup_count must be a whole "
                      "number from 0 to 1000", "write e.g. backup_count=5");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("hardening");
    TCase *tc = tcase_create("hardening");
    tcase_add_test(tc, a_refused_second_start_leaves_the_running_agent_alone);
    tcase_add_test(tc, a_stale_pidfile_naming_a_live_process_does_not_block_start_up);
    tcase_add_test(tc, of_two_simultaneous_starts_exactly_one_runs);
    tcase_add_test(tc, a_killed_supervisors_lock_and_shared_memory_do_not_outlive_it);
    tcase_add_test(tc, what_sluiced_creates_is_not_group_or_world_writable_under_umask_000);
    tcase_add_test(tc, a_stop_signal_during_a_reload_is_not_lost);
    tcase_add_test(tc, sluiced_t_refuses_publisher_options_out_of_range_naming_file_and_line);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
