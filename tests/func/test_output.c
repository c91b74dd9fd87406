/* The output layer end to end, through a running sluiced with the test
 * publisher (test://, built with -Dtest_publisher): a publisher that fails
 * transiently is retried until it recovers and then publishes every sample
 * exactly once; policy=drop drops (and dead-letters, with the reason) what
 * fails and the source is still confirmed; policy=queue keeps at most
 * max_queue_length batches and drops the oldest, confirming its source
 * once a batch is queued (confirm=queued, counted in at_risk; a crash
 * then loses them, counted in lost_in_crash); policy=default takes no
 * more than that and loses nothing; a stalled publisher does not slow
 * another sink; and a stalled publisher does not keep a pipeline
 * worker from renewing its memcached leases. The input is a file source
 * replaying the corpus; each test starts its own agent (and memcached) on
 * a temporary run dir. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "common/coord.h"
#include "tests/func/harness.h"
#include "tests/sl_check.h"

#define S_COPIES 8                 /* corpus copies in the input: 1000 notifications */
#define S_LINES (125 * S_COPIES)
#define S_TTL_MS 1000
#define S_SECRET "0123456789abcdef-output-test-secret"

/* run_dir, input (the corpus S_COPIES times), sluice.yaml with a file
 * source, one ingest and two pipeline workers; pipe is pipeline.yaml.
 * Frames of 64 samples: the queue tests need more batches than their
 * queues hold (S_LINES notifications make only a few frames of the default
 * batch_size). */
static void
s_config(sl_h_agent_t *a, const char *pipe, const char *extra)
{
    sl_h_write_corpus(sl_h_path(a, "input.jsonl"), S_COPIES);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\n"
             "workers: {ingest: 1, pipeline: 2}\n"
             "partitions: 4\n"
             "batch_size: 64\n"
             "shutdown_grace: 10\n"
             "sources: [{type: file, path: input.jsonl}]\n"
             "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n%s",
             a->dir, SL_SRCDIR, extra ? extra : "");
    sl_h_write(a, "sluice.yaml", cfg);
    sl_h_write(a, "pipeline.yaml", pipe);
}

/* The test publisher reads its control file at every call: replace it in
 * one rename, so that it never sees an empty file (which reads as "ok"). */
static void
s_control(sl_h_agent_t *a, const char *name, const char *line)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    sl_h_write(a, tmp, line);
    char from[512];
    snprintf(from, sizeof from, "%s", sl_h_path(a, tmp));
    ck_assert_int_eq(rename(from, sl_h_path(a, name)), 0);
}

static int
s_sink(sl_h_agent_t *a, const char *name)
{
    for (unsigned s = 0; s < atomic_load(&a->shm->n_sinks); s++)
        if (strcmp(a->shm->sink_names[s], name) == 0)
            return (int) s;
    ck_abort_msg("sink %s is not in the shared memory", name);
    return -1;
}

static int
s_n_slots(sl_h_agent_t *a)
{
    return (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
}

/* A per-sink counter over every worker. */
static uint64_t
s_sinkc(sl_h_agent_t *a, int s, int counter)
{
    uint64_t v = 0;
    for (int i = 0; i < s_n_slots(a); i++)
        v += atomic_load(&a->shm->slots[i].sink[s][counter]);
    return v;
}

static uint64_t
s_ingest(sl_h_agent_t *a, int counter)
{
    return sl_shm_sum(a->shm, counter, SL_ROLE_INGEST);
}

static uint64_t
s_pipe(sl_h_agent_t *a, int counter)
{
    return sl_shm_sum(a->shm, counter, SL_ROLE_PIPELINE);
}

#define S_ULL(x) ((unsigned long long) (x))

/* A failed check ends the test's process with exit() (CK_FORK), skipping
 * the cleanup at the end of the test: this atexit guard then kills what
 * the test started (sluiced with its workers, memcached) and removes the
 * shared memory, but keeps the run dir for its log. */
static sl_h_agent_t *s_guard_agent;
static pid_t s_guard_mc;

static void
s_guard_run(void)
{
    if (s_guard_agent && s_guard_agent->pid > 0) {
        fprintf(stderr, "test failed: killing sluiced; its run dir %s stays\n", s_guard_agent->dir);
        sl_h_crash(s_guard_agent);
        char name[64];
        sl_shm_name(s_guard_agent->dir, name, sizeof name);
        sl_shm_unlink(name);
    }
    if (s_guard_mc > 0)
        sl_h_kill(s_guard_mc);
}

static void
s_guard(sl_h_agent_t *a, pid_t mc)
{
    static int registered;
    if (!registered)
        atexit(s_guard_run);
    registered = 1;
    s_guard_agent = a;
    s_guard_mc = mc;
}

/* Polls cond every 20 ms for up to ms; true if it held. */
#define S_WAIT(cond, ms) \
    ({ int ok_ = 0; \
       for (int t_ = 0; t_ <= (ms) && !(ok_ = (cond)); t_ += 20) \
           sl_h_sleep_ms(20); \
       ok_; })

/* Lines of a file (0 if it does not exist), and how many distinct. */
static int
s_cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *) x, *(char *const *) y);
}

static size_t
s_lines(const char *path, size_t *distinct)
{
    char *text = sl_h_slurp(path, NULL);
    size_t n = 0, cap = 1024;
    char **v = malloc(cap * sizeof *v);
    for (char *save = NULL, *l = text ? strtok_r(text, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = l;
    }
    if (distinct) {
        qsort(v, n, sizeof *v, s_cmp_str);
        *distinct = 0;
        for (size_t i = 0; i < n; i++)
            *distinct += i == 0 || strcmp(v[i], v[i - 1]) != 0;
    }
    free(v);
    free(text);
    return n;
}

static int
s_log_has(sl_h_agent_t *a, const char *what)
{
    char *log = sl_h_slurp(a->log, NULL);
    int has = log && strstr(log, what);
    free(log);
    return has;
}

static void
s_stop(sl_h_agent_t *a)
{
    int st = sl_h_stop(a, SIGTERM, 20000);
    ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "SIGTERM: expected exit 0, got status %d (log %s)", st, a->log);
}

/* Every notification read and every sample that reached a sink published
 * or finished (for whichever sink), and every notification confirmed. */
static int
s_settled(sl_h_agent_t *a)
{
    uint64_t routed = s_ingest(a, SL_C_samples_routed);
    return s_ingest(a, SL_C_received) == S_LINES && routed > 0 &&
           s_pipe(a, SL_C_samples_published) + s_pipe(a, SL_C_publish_errors) == routed &&
           s_ingest(a, SL_C_notifications_confirmed) == S_LINES;
}

START_TEST(a_retrying_publisher_publishes_everything_once_after_it_recovers)
{
    static sl_h_agent_t a;   /* static: the exit guard may look at it */
    sl_h_mkdir(&a, "out-retry");
    s_guard(&a, 0);
    char pipe[1024];
    snprintf(pipe, sizeof pipe,
             "sources: [{name: s, meters: ['*'], sinks: [k]}]\n"
             "sinks: [{name: k, publishers: ['test://r?record=%s/rec&control=%s/ctl&calls=%s/calls"
             "&retry_initial_ms=20&retry_max_ms=200']}]\n", a.dir, a.dir, a.dir);
    s_config(&a, pipe, NULL);
    s_control(&a, "ctl", "retry\n");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    int k = s_sink(&a, "k");

    /* Everything read and in the publisher's queue; the publisher keeps
     * failing and the layer keeps retrying, publishing nothing. */
    int ok = S_WAIT(s_ingest(&a, SL_C_received) == S_LINES &&
                    s_pipe(&a, SL_C_samples_received) == s_ingest(&a, SL_C_samples_routed) &&
                    sl_h_pub(&a, k, 0, SL_PC_retried) >= 10, 15000);
    ck_assert_msg(ok, "expected all %d notifications read and >= 10 retries; got %llu read, "
                  "%llu samples routed, %llu received by pipeline workers, %llu retries (log %s)",
                  S_LINES, S_ULL(s_ingest(&a, SL_C_received)),
                  S_ULL(s_ingest(&a, SL_C_samples_routed)),
                  S_ULL(s_pipe(&a, SL_C_samples_received)),
                  S_ULL(sl_h_pub(&a, k, 0, SL_PC_retried)), a.log);
    sl_h_sleep_ms(500);
    uint64_t routed = s_ingest(&a, SL_C_samples_routed);
    ck_assert_msg(routed > 500, "only %llu samples routed from %d notifications",
                  S_ULL(routed), S_LINES);
    ck_assert_msg(s_pipe(&a, SL_C_samples_published) == 0 && sl_h_pub(&a, k, 0, SL_PC_sent) == 0,
                  "samples published while the publisher says retry: %llu (sent %llu)",
                  S_ULL(s_pipe(&a, SL_C_samples_published)), S_ULL(sl_h_pub(&a, k, 0, SL_PC_sent)));
    ck_assert_msg(s_lines(sl_h_path(&a, "rec"), NULL) == 0, "records written while failing");
    ck_assert_msg(sl_h_pub(&a, k, 0, SL_PC_queue_depth) > 0, "nothing waits in the queue");
    ck_assert_msg(s_ingest(&a, SL_C_notifications_confirmed) < S_LINES,
                  "all %d notifications confirmed although nothing was published", S_LINES);
    uint64_t retried = sl_h_pub(&a, k, 0, SL_PC_retried);

    /* Recovery: the queue drains, each sample published once, all confirmed. */
    s_control(&a, "ctl", "ok\n");
    ok = S_WAIT(s_settled(&a), 15000);
    ck_assert_msg(ok, "after recovery: %llu of %llu samples published, %llu failed, "
                  "%llu of %d notifications confirmed",
                  S_ULL(s_pipe(&a, SL_C_samples_published)), S_ULL(routed),
                  S_ULL(s_pipe(&a, SL_C_publish_errors)),
                  S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), S_LINES);
    ck_assert_uint_eq(s_ingest(&a, SL_C_samples_routed), routed);
    ck_assert_uint_eq(s_pipe(&a, SL_C_samples_published), routed);
    ck_assert_uint_eq(s_pipe(&a, SL_C_publish_errors), 0);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_sent), routed);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_dropped), 0);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_queue_depth), 0);
    ck_assert_uint_eq(s_sinkc(&a, k, SL_SC_published), routed);
    ck_assert_msg(sl_h_pub(&a, k, 0, SL_PC_retried) >= retried &&
                  sl_h_pub(&a, k, 0, SL_PC_errors) >= sl_h_pub(&a, k, 0, SL_PC_retried),
                  "retried %llu (was %llu), errors %llu", S_ULL(sl_h_pub(&a, k, 0, SL_PC_retried)),
                  S_ULL(retried), S_ULL(sl_h_pub(&a, k, 0, SL_PC_errors)));
    s_stop(&a);
    size_t distinct, n = s_lines(sl_h_path(&a, "rec"), &distinct);
    ck_assert_msg(n == routed && distinct == routed,
                  "expected %llu samples recorded once each; got %zu lines, %zu distinct ids",
                  S_ULL(routed), n, distinct);
    /* The publisher's own view: calls that failed, then calls that worked. */
    char *calls = sl_h_slurp(sl_h_path(&a, "calls"), NULL);
    ck_assert_msg(calls && strstr(calls, " retry ") && strstr(calls, " ok "),
                  "calls file lacks retry or ok calls");
    ck_assert_msg(strstr(calls, " ok ") > strstr(calls, " retry "), "an ok call before the retries");
    free(calls);
    fprintf(stderr, "retry: %llu samples, %llu retries, all published once after recovery\n",
            S_ULL(routed), S_ULL(sl_h_pub(&a, k, 0, SL_PC_retried)));
    sl_h_cleanup(&a);
    s_guard(NULL, 0);
}
END_TEST

/* Checks every dead letter: the publisher, its reason, one try, and a
 * sample; counts them per publisher and their distinct sample ids. */
static void
s_check_dead_letters(const char *path, const char *const labels[2], const char *const reasons[2],
                     size_t count[2], size_t distinct[2])
{
    char *text = sl_h_slurp(path, NULL);
    ck_assert_msg(text != NULL, "no dead-letter file %s", path);
    char *ids[2][4096];
    count[0] = count[1] = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char err[128];
        yajl_val v = yajl_tree_parse(l, err, sizeof err);
        ck_assert_msg(v != NULL, "dead letter is not JSON (%s): %.200s", err, l);
        const char *pp[] = { "publisher", NULL }, *rp[] = { "reason", NULL },
                   *ap[] = { "attempts", NULL }, *ip[] = { "sample", "id", NULL },
                   *sp[] = { "sink", NULL };
        const char *pub = YAJL_GET_STRING(yajl_tree_get(v, pp, yajl_t_string));
        const char *reason = YAJL_GET_STRING(yajl_tree_get(v, rp, yajl_t_string));
        const char *id = YAJL_GET_STRING(yajl_tree_get(v, ip, yajl_t_string));
        const char *sink = YAJL_GET_STRING(yajl_tree_get(v, sp, yajl_t_string));
        yajl_val att = yajl_tree_get(v, ap, yajl_t_number);
        int w = pub && strcmp(pub, labels[0]) == 0 ? 0 : pub && strcmp(pub, labels[1]) == 0 ? 1 : -1;
        ck_assert_msg(w >= 0, "dead letter of an unknown publisher: %.200s", l);
        ck_assert_msg(sink && strcmp(sink, "k") == 0, "dead letter of sink %s, want k", sink);
        ck_assert_msg(reason && strncmp(reason, reasons[w], strlen(reasons[w])) == 0,
                      "%s: expected a reason starting \"%s\", got \"%s\"", labels[w], reasons[w],
                      reason ? reason : "(none)");
        ck_assert_msg(att && YAJL_GET_INTEGER(att) == 1,
                      "policy=drop: expected 1 attempt per dead letter: %.200s", l);
        ck_assert_msg(id && strlen(id) == 36, "dead letter without a sample id: %.200s", l);
        ck_assert_msg(count[w] < 4096, "too many dead letters");
        ids[w][count[w]++] = strdup(id);
        yajl_tree_free(v);
    }
    for (int w = 0; w < 2; w++) {
        qsort(ids[w], count[w], sizeof ids[w][0], s_cmp_str);
        distinct[w] = 0;
        for (size_t i = 0; i < count[w]; i++)
            distinct[w] += i == 0 || strcmp(ids[w][i], ids[w][i - 1]) != 0;
        for (size_t i = 0; i < count[w]; i++)
            free(ids[w][i]);
    }
    free(text);
}

START_TEST(policy_drop_dead_letters_what_fails_and_the_source_is_still_confirmed)
{
    static sl_h_agent_t a;   /* static: the exit guard may look at it */
    sl_h_mkdir(&a, "out-drop");
    s_guard(&a, 0);
    /* Two publishers on one sink, both policy=drop into one dead-letter
     * directory: one rejects every batch (ERROR), the other fails every
     * batch transiently (RETRY), which policy=drop must not retry. */
    char pipe[2048];
    snprintf(pipe, sizeof pipe,
             "sources: [{name: s, meters: ['*'], sinks: [k]}]\n"
             "sinks: [{name: k, publishers: [\n"
             "  'test://err?record=%s/rec_err&control=%s/ctl_err&policy=drop&dead_letter=%s/dl',\n"
             "  'test://rty?record=%s/rec_rty&control=%s/ctl_rty&policy=drop&dead_letter=%s/dl']}]\n",
             a.dir, a.dir, a.dir, a.dir, a.dir, a.dir);
    s_config(&a, pipe, NULL);
    s_control(&a, "ctl_err", "error\n");
    s_control(&a, "ctl_rty", "retry\n");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    int k = s_sink(&a, "k");
    int ok = S_WAIT(s_settled(&a), 15000);
    uint64_t routed = s_ingest(&a, SL_C_samples_routed);
    ck_assert_msg(ok, "expected every notification read, every sample finished and every "
                  "notification confirmed; got %llu of %d read, %llu of %llu samples "
                  "published + failed, %llu confirmed (log %s)",
                  S_ULL(s_ingest(&a, SL_C_received)), S_LINES,
                  S_ULL(s_pipe(&a, SL_C_samples_published) + s_pipe(&a, SL_C_publish_errors)),
                  S_ULL(routed), S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), a.log);
    ck_assert_msg(routed > 500, "only %llu samples routed", S_ULL(routed));
    ck_assert_uint_eq(s_ingest(&a, SL_C_source_eof), 1);
    ck_assert_uint_eq(s_pipe(&a, SL_C_samples_published), 0);
    ck_assert_uint_eq(s_pipe(&a, SL_C_publish_errors), routed);
    ck_assert_uint_eq(s_sinkc(&a, k, SL_SC_failed), routed);
    for (int p = 0; p < 2; p++) {
        ck_assert_msg(sl_h_pub(&a, k, p, SL_PC_dropped) == routed &&
                      sl_h_pub(&a, k, p, SL_PC_dead_lettered) == routed,
                      "publisher %d: expected %llu dropped and dead-lettered, got %llu and %llu",
                      p, S_ULL(routed), S_ULL(sl_h_pub(&a, k, p, SL_PC_dropped)),
                      S_ULL(sl_h_pub(&a, k, p, SL_PC_dead_lettered)));
        ck_assert_msg(sl_h_pub(&a, k, p, SL_PC_sent) == 0 && sl_h_pub(&a, k, p, SL_PC_retried) == 0,
                      "publisher %d: sent %llu, retried %llu; expected 0 and 0 (policy=drop)", p,
                      S_ULL(sl_h_pub(&a, k, p, SL_PC_sent)),
                      S_ULL(sl_h_pub(&a, k, p, SL_PC_retried)));
        ck_assert_uint_eq(sl_h_pub(&a, k, p, SL_PC_queue_depth), 0);
        ck_assert_uint_eq(sl_h_pub(&a, k, p, SL_PC_errors), sl_h_pub(&a, k, p, SL_PC_publishes));
    }
    ck_assert_msg(s_lines(sl_h_path(&a, "rec_err"), NULL) == 0 &&
                  s_lines(sl_h_path(&a, "rec_rty"), NULL) == 0, "something was recorded");

    const char *labels[2] = { "test://err", "test://rty" };
    const char *reasons[2] = { "rejected: test publisher: told to fail (error)",
                               "policy=drop: test publisher: told to fail (retry)" };
    size_t count[2], distinct[2];
    s_check_dead_letters(sl_h_path(&a, "dl/k.deadletter.jsonl"), labels, reasons, count, distinct);
    for (int p = 0; p < 2; p++)
        ck_assert_msg(count[p] == routed && distinct[p] == routed,
                      "%s: expected %llu dead letters of distinct samples, got %zu (%zu distinct)",
                      labels[p], S_ULL(routed), count[p], distinct[p]);

    /* The agent runs on: no worker died, every one is running. */
    ck_assert_int_eq(kill(a.pid, 0), 0);
    ck_assert_uint_eq(atomic_load(&a.shm->sv[SL_SV_crashes]), 0);
    for (int i = 0; i < s_n_slots(&a); i++)
        ck_assert_msg(atomic_load(&a.shm->slots[i].state) == SL_WS_RUNNING,
                      "worker slot %d is %s", i,
                      sl_worker_state_name(atomic_load(&a.shm->slots[i].state)));
    s_stop(&a);
    fprintf(stderr, "drop: %llu samples dead-lettered by each publisher, %d notifications "
            "confirmed\n", S_ULL(routed), S_LINES);
    sl_h_cleanup(&a);
    s_guard(NULL, 0);
}
END_TEST

START_TEST(a_stalled_publisher_does_not_slow_another_sink)
{
    static sl_h_agent_t a;   /* static: the exit guard may look at it */
    sl_h_mkdir(&a, "out-iso");
    s_guard(&a, 0);
    char pipe[2048];
    snprintf(pipe, sizeof pipe,
             "sources: [{name: s, meters: ['*'], sinks: [stuck, healthy]}]\n"
             "sinks:\n"
             "  - {name: stuck, publishers: ['test://stuck?record=%s/rec&control=%s/ctl"
             "&stall_max_ms=120000']}\n"
             "  - {name: healthy, publishers: ['file://%s/healthy.jsonl']}\n",
             a.dir, a.dir, a.dir);
    s_config(&a, pipe, NULL);
    s_control(&a, "ctl", "stall\n");
    uint64_t t0 = sl_now_ms();
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    int st = s_sink(&a, "stuck"), he = s_sink(&a, "healthy");

    /* The healthy sink's output is complete within a few seconds. */
    int ok = S_WAIT(s_ingest(&a, SL_C_received) == S_LINES && s_sinkc(&a, he, SL_SC_routed) > 0 &&
                    s_sinkc(&a, he, SL_SC_published) == s_sinkc(&a, he, SL_SC_routed), 5000);
    uint64_t took = sl_now_ms() - t0;
    uint64_t routed_he = s_sinkc(&a, he, SL_SC_routed), routed_st = s_sinkc(&a, st, SL_SC_routed);
    ck_assert_msg(ok, "healthy sink: %llu of %llu samples published within 5 s of the start "
                  "(%llu of %d notifications read) while the other sink's publisher stalls",
                  S_ULL(s_sinkc(&a, he, SL_SC_published)), S_ULL(routed_he),
                  S_ULL(s_ingest(&a, SL_C_received)), S_LINES);
    ck_assert_msg(routed_he > 500 && routed_st == routed_he, "routed: healthy %llu, stuck %llu",
                  S_ULL(routed_he), S_ULL(routed_st));
    ck_assert_uint_eq(sl_h_pub(&a, he, 0, SL_PC_sent), routed_he);
    ck_assert_uint_eq(s_lines(sl_h_path(&a, "healthy.jsonl"), NULL), routed_he);
    /* ... while the stalled one has published nothing and has work queued. */
    ck_assert_msg(s_sinkc(&a, st, SL_SC_published) == 0 && sl_h_pub(&a, st, 0, SL_PC_sent) == 0,
                  "the stalled sink published %llu", S_ULL(s_sinkc(&a, st, SL_SC_published)));
    ck_assert_msg(sl_h_pub(&a, st, 0, SL_PC_queue_depth) > 0,
                  "the stalled sink has nothing queued");
    ck_assert_uint_eq(sl_h_pub(&a, st, 0, SL_PC_publishes), 0);   /* no call returned yet */
    ck_assert_msg(s_ingest(&a, SL_C_notifications_confirmed) < S_LINES,
                  "notifications confirmed while one of their sinks has published nothing");
    uint64_t t_stalled = sl_now_ms();
    sl_h_sleep_ms(1000);
    ck_assert_uint_eq(sl_h_pub(&a, st, 0, SL_PC_publishes), 0);   /* still stalled */

    /* The stall ends: the other sink catches up, every notification is confirmed. */
    uint64_t stalled_for = sl_now_ms() - t_stalled;
    s_control(&a, "ctl", "ok\n");
    ok = S_WAIT(s_settled(&a) && s_sinkc(&a, st, SL_SC_published) == routed_st, 15000);
    ck_assert_msg(ok, "after the stall: %llu of %llu published by the stalled sink, %llu of %d "
                  "confirmed", S_ULL(s_sinkc(&a, st, SL_SC_published)), S_ULL(routed_st),
                  S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), S_LINES);
    ck_assert_uint_eq(s_pipe(&a, SL_C_publish_errors), 0);
    /* A call really blocked all along (it had started when the healthy sink was done). */
    ck_assert_msg(sl_h_pub(&a, st, 0, SL_PC_latency_ms_max) >= stalled_for,
                  "longest stalled call %llu ms, expected about %llu ms",
                  S_ULL(sl_h_pub(&a, st, 0, SL_PC_latency_ms_max)), S_ULL(stalled_for));
    s_stop(&a);
    size_t distinct, n = s_lines(sl_h_path(&a, "rec"), &distinct);
    ck_assert_msg(n == routed_st && distinct == routed_st,
                  "stalled sink: expected %llu samples recorded once each, got %zu (%zu distinct)",
                  S_ULL(routed_st), n, distinct);
    ck_assert_uint_eq(s_lines(sl_h_path(&a, "healthy.jsonl"), NULL), routed_he);
    fprintf(stderr, "isolation: healthy sink complete %llu ms after the start while the other "
            "stalled %llu ms\n", S_ULL(took), S_ULL(sl_h_pub(&a, st, 0, SL_PC_latency_ms_max)));
    sl_h_cleanup(&a);
    s_guard(NULL, 0);
}
END_TEST

/* Reads the sample ids of a file of one id per line (the test
 * publisher's record) or of dead letters (ids from "sample"."id"; each
 * letter's reason must start with reason) into a sorted array; count. */
static size_t
s_ids(const char *path, int dead_letters, const char *reason, char ***ids_p)
{
    char *text = sl_h_slurp(path, NULL);
    size_t n = 0, cap = 256;
    char **ids = malloc(cap * sizeof *ids);
    for (char *save = NULL, *l = text ? strtok_r(text, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        const char *id = l;
        yajl_val v = NULL;
        if (dead_letters) {
            char err[128];
            const char *ip[] = { "sample", "id", NULL }, *rp[] = { "reason", NULL };
            v = yajl_tree_parse(l, err, sizeof err);
            ck_assert_msg(v != NULL, "dead letter is not JSON (%s): %.200s", err, l);
            const char *r = YAJL_GET_STRING(yajl_tree_get(v, rp, yajl_t_string));
            ck_assert_msg(r && strncmp(r, reason, strlen(reason)) == 0,
                          "expected a reason starting \"%s\", got \"%s\"", reason, r ? r : "(none)");
            id = YAJL_GET_STRING(yajl_tree_get(v, ip, yajl_t_string));
            ck_assert_msg(id != NULL, "dead letter without a sample id: %.200s", l);
        }
        if (n == cap)
            ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[n++] = strdup(id);
        yajl_tree_free(v);
    }
    free(text);
    qsort(ids, n, sizeof *ids, s_cmp_str);
    *ids_p = ids;
    return n;
}

static void
s_ids_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* The largest queue depth of one pipeline worker's publisher k of sink s. */
static uint64_t
s_depth_max(sl_h_agent_t *a, int s, int k)
{
    uint64_t m = 0;
    for (int i = 0; i < s_n_slots(a); i++) {
        const sl_slot_t *sl = &a->shm->slots[i];
        uint64_t d = atomic_load(&sl->pub[s][k].c[SL_PC_queue_depth]);
        if (atomic_load(&sl->role) == SL_ROLE_PIPELINE && d > m)
            m = d;
    }
    return m;
}

/* Starts an agent whose one sink k has one test publisher "test://NAME"
 * recording to rec and stalled by ctl, with opts added to its URL (and
 * dead letters in dl if asked); returns k's index. */
static int
s_start_stalled(sl_h_agent_t *a, const char *tag, const char *name, const char *opts,
                int dead_letter)
{
    sl_h_mkdir(a, tag);
    s_guard(a, 0);
    char pipe[1024], dl[300] = "";
    if (dead_letter)
        snprintf(dl, sizeof dl, "&dead_letter=%s/dl", a->dir);
    snprintf(pipe, sizeof pipe,
             "sources: [{name: s, meters: ['*'], sinks: [k]}]\n"
             "sinks: [{name: k, publishers: ['test://%s?record=%s/rec&control=%s/ctl"
             "&stall_max_ms=120000%s%s']}]\n", name, a->dir, a->dir, opts, dl);
    s_config(a, pipe, NULL);
    s_control(a, "ctl", "stall\n");
    ck_assert_msg(sl_h_start(a, 10000) == 0, "sluiced did not start; see %s", a->log);
    return s_sink(a, "k");
}

START_TEST(policy_queue_keeps_max_queue_length_batches_and_drops_the_oldest)
{
    static sl_h_agent_t a;   /* static: the exit guard may look at it */
    int k = s_start_stalled(&a, "out-queue", "q", "&policy=queue&max_queue_length=3", 1);

    /* Everything reached the pipeline workers; each queue holds at most 3
     * batches (the stalled one included), the older ones were dropped. */
    int ok = S_WAIT(s_ingest(&a, SL_C_received) == S_LINES &&
                    s_pipe(&a, SL_C_samples_received) == s_ingest(&a, SL_C_samples_routed) &&
                    sl_h_pub(&a, k, 0, SL_PC_dropped) > 0, 10000);
    uint64_t routed = s_ingest(&a, SL_C_samples_routed);
    ck_assert_msg(ok, "expected everything read and some batches dropped; %llu of %d read, %llu "
                  "of %llu samples received by pipeline workers, %llu dropped (log %s)",
                  S_ULL(s_ingest(&a, SL_C_received)), S_LINES,
                  S_ULL(s_pipe(&a, SL_C_samples_received)), S_ULL(routed),
                  S_ULL(sl_h_pub(&a, k, 0, SL_PC_dropped)), a.log);
    sl_h_sleep_ms(300);
    ck_assert_msg(s_depth_max(&a, k, 0) <= 3 && s_depth_max(&a, k, 0) > 0,
                  "a pipeline worker's queue holds %llu batches, max_queue_length is 3",
                  S_ULL(s_depth_max(&a, k, 0)));
    uint64_t dropped = sl_h_pub(&a, k, 0, SL_PC_dropped);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_dead_lettered), dropped);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_sent), 0);
    ck_assert_msg(dropped < routed, "all %llu dropped", S_ULL(routed));
    /* confirm=queued (policy=queue's default): every notification is
     * confirmed although nothing was published; what the queues hold is
     * at risk */
    ok = S_WAIT(s_ingest(&a, SL_C_notifications_confirmed) == S_LINES, 5000);
    ck_assert_msg(ok, "%llu of %d notifications confirmed while the queue's publisher stalls",
                  S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), S_LINES);
    uint64_t at_risk = sl_h_pub(&a, k, 0, SL_PC_at_risk);
    ck_assert_msg(at_risk > 0 && at_risk + dropped == routed, "at_risk %llu + dropped %llu != "
                  "routed %llu", S_ULL(at_risk), S_ULL(dropped), S_ULL(routed));

    /* The stall ends: what stayed queued is published, nothing else dropped. */
    s_control(&a, "ctl", "ok\n");
    ok = S_WAIT(s_settled(&a), 15000);
    ck_assert_msg(ok, "after the stall: %llu published + %llu failed of %llu, %llu of %d "
                  "confirmed", S_ULL(s_pipe(&a, SL_C_samples_published)),
                  S_ULL(s_pipe(&a, SL_C_publish_errors)), S_ULL(routed),
                  S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), S_LINES);
    uint64_t sent = sl_h_pub(&a, k, 0, SL_PC_sent);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_dropped), dropped);
    ck_assert_msg(sent > 0 && sent + dropped == routed, "sent %llu + dropped %llu != routed %llu",
                  S_ULL(sent), S_ULL(dropped), S_ULL(routed));
    ck_assert_uint_eq(s_pipe(&a, SL_C_samples_published), sent);
    ck_assert_uint_eq(s_pipe(&a, SL_C_publish_errors), dropped);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_retried), 0);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_at_risk), 0);
    s_stop(&a);
    ck_assert_uint_eq(atomic_load(&a.shm->sv[SL_SV_lost_in_crash]), 0);

    /* Recorded and dead-lettered: disjoint, together every sample once. */
    char **rec, **dl;
    size_t nr = s_ids(sl_h_path(&a, "rec"), 0, NULL, &rec);
    size_t nd = s_ids(sl_h_path(&a, "dl/k.deadletter.jsonl"), 1,
                      "queue full (max_queue_length=3): the oldest batch is dropped", &dl);
    ck_assert_msg(nr == sent && nd == dropped, "%zu recorded (want %llu), %zu dead letters "
                  "(want %llu)", nr, S_ULL(sent), nd, S_ULL(dropped));
    char **all = malloc((nr + nd + 1) * sizeof *all);
    memcpy(all, rec, nr * sizeof *all);
    memcpy(all + nr, dl, nd * sizeof *all);
    qsort(all, nr + nd, sizeof *all, s_cmp_str);
    size_t repeats = 0;
    for (size_t i = 1; i < nr + nd; i++)
        repeats += strcmp(all[i], all[i - 1]) == 0;
    free(all);
    ck_assert_msg(repeats == 0 && nr + nd == routed,
                  "%zu samples recorded or dead-lettered twice (or both); %zu + %zu of %llu routed",
                  repeats, nr, nd, S_ULL(routed));
    s_ids_free(rec, nr);
    s_ids_free(dl, nd);
    fprintf(stderr, "queue: %llu samples published, %llu dropped as the oldest of a full "
            "queue (dead-lettered)\n", S_ULL(sent), S_ULL(dropped));
    sl_h_cleanup(&a);
    s_guard(NULL, 0);
}
END_TEST

/* What a crash loses with confirm=queued is counted: the pipeline
 * workers, killed while their stalled publishers hold confirmed batches,
 * leave their at_risk records in the supervisor's lost_in_crash. */
START_TEST(a_crash_loses_what_confirm_queued_held_and_counts_it)
{
    static sl_h_agent_t a;   /* static: the exit guard may look at it */
    int k = s_start_stalled(&a, "out-crash", "q", "&policy=drop&max_queue_length=3", 0);
    int ok = S_WAIT(s_ingest(&a, SL_C_notifications_confirmed) == S_LINES &&
                    sl_h_pub(&a, k, 0, SL_PC_at_risk) + sl_h_pub(&a, k, 0, SL_PC_dropped) ==
                    s_ingest(&a, SL_C_samples_routed), 10000);
    uint64_t at_risk = sl_h_pub(&a, k, 0, SL_PC_at_risk);
    ck_assert_msg(ok && at_risk > 0, "%llu of %d confirmed, at_risk %llu + dropped %llu of %llu "
                  "routed (log %s)", S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), S_LINES,
                  S_ULL(at_risk), S_ULL(sl_h_pub(&a, k, 0, SL_PC_dropped)),
                  S_ULL(s_ingest(&a, SL_C_samples_routed)), a.log);
    uint64_t crashes = atomic_load(&a.shm->sv[SL_SV_crashes]);
    int killed = 0;
    for (int i = 0; i < s_n_slots(&a); i++) {
        const sl_slot_t *sl = &a.shm->slots[i];
        pid_t pid = atomic_load(&sl->pid);
        if (atomic_load(&sl->role) == SL_ROLE_PIPELINE && pid > 0) {
            ck_assert_int_eq(kill(pid, SIGKILL), 0);
            killed++;
        }
    }
    ck_assert_int_eq(killed, 2);
    ok = S_WAIT(atomic_load(&a.shm->sv[SL_SV_crashes]) == crashes + 2, 5000);
    ck_assert_msg(ok, "the supervisor saw %llu crashes of 2",
                  S_ULL(atomic_load(&a.shm->sv[SL_SV_crashes]) - crashes));
    ck_assert_uint_eq(atomic_load(&a.shm->sv[SL_SV_lost_in_crash]), at_risk);
    ck_assert_msg(s_log_has(&a, "already confirmed to their source: they are lost"),
                  "no log line says what the crash lost (log %s)", a.log);
    s_control(&a, "ctl", "ok\n");
    s_stop(&a);
    /* nothing was sent again: those notifications were confirmed */
    ck_assert_uint_eq(s_ingest(&a, SL_C_frames_resent), 0);
    ck_assert_uint_eq(s_lines(sl_h_path(&a, "rec"), NULL), 0);
    fprintf(stderr, "crash: %llu samples confirmed and held by confirm=queued publishers lost, "
            "counted\n", S_ULL(at_risk));
    sl_h_cleanup(&a);
    s_guard(NULL, 0);
}
END_TEST

START_TEST(policy_default_takes_no_more_than_max_queue_length_and_loses_nothing)
{
    static sl_h_agent_t a;   /* static: the exit guard may look at it */
    int k = s_start_stalled(&a, "out-bp", "d", "&max_queue_length=2", 0);

    /* Queues fill to 2 batches and the pipeline workers stop taking more:
     * the rest of the samples wait upstream, none is dropped. */
    int ok = S_WAIT(s_ingest(&a, SL_C_received) == S_LINES && s_depth_max(&a, k, 0) == 2, 10000);
    ck_assert_msg(ok, "expected everything read and a queue at max_queue_length 2; %llu of %d "
                  "read, largest queue %llu (log %s)", S_ULL(s_ingest(&a, SL_C_received)),
                  S_LINES, S_ULL(s_depth_max(&a, k, 0)), a.log);
    uint64_t routed = s_ingest(&a, SL_C_samples_routed);
    for (int t = 0; t < 1500; t += 50) {
        ck_assert_msg(s_depth_max(&a, k, 0) <= 2, "a queue holds %llu batches, limit 2",
                      S_ULL(s_depth_max(&a, k, 0)));
        sl_h_sleep_ms(50);
    }
    uint64_t in = s_pipe(&a, SL_C_samples_received);
    ck_assert_msg(in < routed, "the pipeline workers took all %llu samples in although their "
                  "queues are full", S_ULL(routed));
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_queued), sl_h_pub(&a, k, 0, SL_PC_queue_depth));
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_dropped), 0);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_sent), 0);

    s_control(&a, "ctl", "ok\n");
    ok = S_WAIT(s_settled(&a), 15000);
    ck_assert_msg(ok, "after the stall: %llu of %llu published, %llu failed, %llu of %d "
                  "confirmed", S_ULL(s_pipe(&a, SL_C_samples_published)), S_ULL(routed),
                  S_ULL(s_pipe(&a, SL_C_publish_errors)),
                  S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), S_LINES);
    ck_assert_uint_eq(s_pipe(&a, SL_C_samples_published), routed);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_sent), routed);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_dropped), 0);
    s_stop(&a);
    size_t distinct, n = s_lines(sl_h_path(&a, "rec"), &distinct);
    ck_assert_msg(n == routed && distinct == routed,
                  "expected %llu samples recorded once each, got %zu (%zu distinct)",
                  S_ULL(routed), n, distinct);
    fprintf(stderr, "back-pressure: %llu of %llu samples taken in while the queues were full; "
            "all published after\n", S_ULL(in), S_ULL(routed));
    sl_h_cleanup(&a);
    s_guard(NULL, 0);
}
END_TEST

/* The leases of sink 0 as memcached has them (verified records); the
 * number with a live holder, or -1. */
static ssize_t
s_leases(int port, sl_coord_lease_t l[4])
{
    char servers[64], err[256];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    sl_coord_t *c = sl_coord_new(servers, "output-test", S_SECRET, strlen(S_SECRET), S_TTL_MS,
                                 err, sizeof err);
    ck_assert_msg(c != NULL, "coord: %s", err);
    ssize_t n = sl_coord_leases_get_all(c, 1, 4, l);
    sl_coord_destroy(&c);
    return n;
}

START_TEST(leases_are_renewed_while_a_publisher_stalls)
{
    int port = sl_h_free_port();
    pid_t mc = sl_h_memcached_start(port);
    ck_assert_msg(mc > 0, "memcached did not start on 127.0.0.1:%d (apt-get install memcached)",
                  port);
    static sl_h_agent_t a;   /* static: the exit guard may look at it */
    sl_h_mkdir(&a, "out-lease");
    s_guard(&a, mc);
    sl_h_write(&a, "secret", S_SECRET);
    char pipe[1024], coord[512];
    snprintf(pipe, sizeof pipe,
             "sources: [{name: s, meters: ['*'], sinks: [k]}]\n"
             "sinks: [{name: k, publishers: ['test://stuck?record=%s/rec&control=%s/ctl"
             "&stall_max_ms=120000']}]\n", a.dir, a.dir);
    snprintf(coord, sizeof coord,
             "coordination:\n"
             "  backend: memcached://127.0.0.1:%d\n"
             "  group: output-test\n"
             "  heartbeat: 200\n"
             "  lease_ttl: %d\n"
             "  secret_file: secret\n", port, S_TTL_MS);
    s_config(&a, pipe, coord);
    s_control(&a, "ctl", "stall\n");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    int k = s_sink(&a, "k");
    sl_coord_lease_t l0[4], l[4];

    /* Every partition held, and the publisher stalled on its first batch
     * (queued work, no call returned). */
    int ok = S_WAIT(s_leases(port, l0) == 4 && sl_h_pub(&a, k, 0, SL_PC_queue_depth) > 0 &&
                    s_ingest(&a, SL_C_received) == S_LINES, 10000);
    ck_assert_msg(ok, "expected 4 leases held and a stalled publisher with work queued; got "
                  "%zd leases, queue depth %llu, %llu of %d read (log %s)", s_leases(port, l),
                  S_ULL(sl_h_pub(&a, k, 0, SL_PC_queue_depth)), S_ULL(s_ingest(&a, SL_C_received)),
                  S_LINES, a.log);
    sl_h_sleep_ms(S_TTL_MS);     /* past the start-up rebalancing */
    ck_assert_int_eq(s_leases(port, l0), 4);
    uint64_t taken0 = s_pipe(&a, SL_C_leases_taken), released0 = s_pipe(&a, SL_C_leases_released);
    uint64_t resent0 = s_ingest(&a, SL_C_frames_resent);
    ck_assert_uint_eq(sl_h_pub(&a, k, 0, SL_PC_publishes), 0);
    ck_assert_msg(taken0 >= 4, "the workers took %llu leases", S_ULL(taken0));

    /* 3.5 x lease_ttl of stall: at every look memcached has each lease
     * live, held by the same holder under the same take, and the workers
     * neither lost nor took any. */
    uint64_t t0 = sl_now_ms();
    while (sl_now_ms() - t0 < 3500) {
        ssize_t n = s_leases(port, l);
        ck_assert_msg(n == 4, "%zd of 4 leases live in memcached %llu ms into the stall",
                      n, S_ULL(sl_now_ms() - t0));
        for (int p = 0; p < 4; p++)
            ck_assert_msg(strcmp(l[p].owner, l0[p].owner) == 0 && l[p].taken_ms == l0[p].taken_ms,
                          "partition %d: held by %s taken at %lld, was %s taken at %lld", p,
                          l[p].owner, (long long) l[p].taken_ms, l0[p].owner,
                          (long long) l0[p].taken_ms);
        ck_assert_msg(s_pipe(&a, SL_C_leases_released) == released0 &&
                      s_pipe(&a, SL_C_leases_taken) == taken0,
                      "leases moved during the stall: taken %llu -> %llu, released %llu -> %llu",
                      S_ULL(taken0), S_ULL(s_pipe(&a, SL_C_leases_taken)), S_ULL(released0),
                      S_ULL(s_pipe(&a, SL_C_leases_released)));
        sl_h_sleep_ms(100);
    }
    ck_assert_int_eq(s_leases(port, l), 4);
    for (int p = 0; p < 4; p++)
        ck_assert_msg(l[p].expiry_ms >= l0[p].expiry_ms + 3000,
                      "partition %d: expiry moved %lld ms in 3.5 s of stall: not renewed", p,
                      (long long) (l[p].expiry_ms - l0[p].expiry_ms));
    ck_assert_msg(sl_h_pub(&a, k, 0, SL_PC_publishes) == 0 && sl_h_pub(&a, k, 0, SL_PC_sent) == 0,
                  "the publisher did not stall: %llu calls returned",
                  S_ULL(sl_h_pub(&a, k, 0, SL_PC_publishes)));
    ck_assert_msg(!s_log_has(&a, "was lost") && !s_log_has(&a, "ran out"),
                  "a lease was lost during the stall (see %s)", a.log);

    /* Recovery: everything published, nothing resent (no owner changed). */
    s_control(&a, "ctl", "ok\n");
    ok = S_WAIT(s_settled(&a), 15000);
    uint64_t routed = s_ingest(&a, SL_C_samples_routed);
    ck_assert_msg(ok, "after the stall: %llu of %llu published, %llu of %d confirmed",
                  S_ULL(s_pipe(&a, SL_C_samples_published)), S_ULL(routed),
                  S_ULL(s_ingest(&a, SL_C_notifications_confirmed)), S_LINES);
    ck_assert_uint_eq(s_pipe(&a, SL_C_samples_published), routed);
    ck_assert_uint_eq(s_ingest(&a, SL_C_frames_resent), resent0);
    ck_assert_uint_eq(s_pipe(&a, SL_C_leases_released), released0);
    ck_assert_msg(sl_h_pub(&a, k, 0, SL_PC_latency_ms_max) >= 3 * S_TTL_MS,
                  "longest publish call %llu ms, expected a stall of >= %d ms",
                  S_ULL(sl_h_pub(&a, k, 0, SL_PC_latency_ms_max)), 3 * S_TTL_MS);
    s_stop(&a);
    size_t distinct, n = s_lines(sl_h_path(&a, "rec"), &distinct);
    ck_assert_msg(n == routed && distinct == routed,
                  "expected %llu samples recorded once each, got %zu (%zu distinct)",
                  S_ULL(routed), n, distinct);
    fprintf(stderr, "leases: %llu taken, %llu released before the stall, none during %llu ms of "
            "stall; %llu samples published after it\n", S_ULL(taken0), S_ULL(released0),
            S_ULL(sl_h_pub(&a, k, 0, SL_PC_latency_ms_max)), S_ULL(routed));
    sl_h_cleanup(&a);
    sl_h_kill(mc);
    s_guard(NULL, 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("output");
    TCase *tc = tcase_create("output");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_retrying_publisher_publishes_everything_once_after_it_recovers);
    tcase_add_test(tc, policy_drop_dead_letters_what_fails_and_the_source_is_still_confirmed);
    tcase_add_test(tc, a_stalled_publisher_does_not_slow_another_sink);
    tcase_add_test(tc, policy_queue_keeps_max_queue_length_batches_and_drops_the_oldest);
    tcase_add_test(tc, a_crash_loses_what_confirm_queued_held_and_counts_it);
    tcase_add_test(tc, policy_default_takes_no_more_than_max_queue_length_and_loses_nothing);
    tcase_add_test(tc, leases_are_renewed_while_a_publisher_stalls);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
