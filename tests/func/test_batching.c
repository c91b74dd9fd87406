/* test_batching — how frames are sized and published, on a real sluiced.
 *
 * 1. A pipeline worker publishes what it read in one loop iteration as one
 *    batch per sink: with the worker stopped (SIGSTOP) while an ingest
 *    worker sends 4 copies of the corpus in small frames (batch_max_bytes)
 *    over 4 partitions, and then
 *    resumed, the file publisher is called far fewer times than there are
 *    frames, and the samples are exactly the corpus's.
 * 2. batch_linger_ms: an ingest worker that is busy (a file source read as
 *    fast as it goes) holds frames past batch_timeout_ms (frames_lingered
 *    > 0); one that mostly waits (the same source at 400 notifications/s)
 *    never does. Both deliver everything. The condition is the worker's
 *    own waiting time, not a clock: no assertion on how long anything
 *    takes.
 * 3. A partitioned sink whose partitions together take batch_size samples
 *    within a frame's age holds its frames too, although its worker waits
 *    for input most of the time (8,000 notifications/s, batch_size 8: a
 *    tenth of its frames or more, where the busy rule alone holds none or
 *    a few); test 2's idle run is the same rule not applying (about one
 *    sample per frame age, batch_size 256). */
#include <check.h>

#include "tests/sl_check.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/func/harness.h"

#define S_COPIES 4

static const char *const s_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id",
    "timestamp", "resource_metadata", "source", "message_id", NULL,
};


static int
s_all_sent(sl_h_agent_t *a)
{
    return sl_h_total(a, SL_C_received) == 125 * S_COPIES && sl_h_total(a, SL_C_frames_sent) > 0;
}

/* The one pipeline worker holds (has bound) all 4 partitions: stopped
 * before, the partition it had not taken yet would have no route, and the
 * ingest worker would pause its source at the first frame for it. */
static int
s_all_held(sl_h_agent_t *a)
{
    return sl_h_leases_held(a) == 4;
}

static int
s_all_published(sl_h_agent_t *a)
{
    uint64_t routed = sl_h_total(a, SL_C_samples_routed);
    return routed > 0 && sl_h_total(a, SL_C_samples_published) == routed &&
           sl_h_total(a, SL_C_frames_confirmed) == sl_h_total(a, SL_C_frames_sent);
}

START_TEST(frames_read_in_one_iteration_go_to_the_publisher_in_one_call)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "batching");
    char src[512];
    snprintf(src, sizeof src, "  - {type: zmq, endpoint: 'ipc://%s/notify.sock', mode: connect}\n",
             a.dir);
    /* frames of 4 KiB or a little more (a frame ends with a notification):
     * the corpus's 128 samples in about 12; batch_size stays 256 */
    sl_h_write_corpus(sl_h_path(&a, "input.jsonl"), S_COPIES);
    sl_h_write_basic(&a, src, 1, 1, 4, "batch_max_bytes: 4096\n");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t pip = sl_h_worker(&a, SL_ROLE_PIPELINE);
    ck_assert_int_gt(pip, 0);
    ck_assert_msg(sl_h_wait(&a, s_all_held, 15000) == 0, "the pipeline worker did not take "
                  "all 4 partitions within 15 s (see %s)", a.log);
    kill(pip, SIGSTOP);
    int rc = sl_h_run("%s/tools/sluice-inject --peers 1 --endpoint 'ipc://%s/notify.sock' "
                      "--linger 10 --run-dir %s %s >/dev/null",
                      SL_BUILDDIR, a.dir, a.dir, sl_h_path(&a, "input.jsonl"));
    if (rc != 0)
        kill(pip, SIGCONT);
    ck_assert_msg(rc == 0, "sluice-inject failed: %d", rc);
    int sent = sl_h_wait(&a, s_all_sent, 15000);
    /* the last frames go at batch_timeout_ms; all of them wait in the
     * stopped worker's sockets (sent, not confirmed) */
    sl_h_sleep_ms(300);
    uint64_t frames = sl_h_total(&a, SL_C_frames_sent);
    kill(pip, SIGCONT);
    ck_assert_msg(sent == 0, "the ingest worker did not read the corpus: received %llu",
                  (unsigned long long) sl_h_total(&a, SL_C_received));
    ck_assert_msg(sl_h_wait(&a, s_all_published, 15000) == 0,
                  "not everything published: routed %llu published %llu (log %s)",
                  (unsigned long long) sl_h_total(&a, SL_C_samples_routed),
                  (unsigned long long) sl_h_total(&a, SL_C_samples_published), a.log);
    uint64_t received = sl_h_total(&a, SL_C_frames_received);
    uint64_t calls = sl_h_pub(&a, 0, 0, SL_PC_publishes);
    fprintf(stderr, "batching: %llu frames sent while the pipeline worker was stopped, %llu "
            "received, %llu publisher calls\n", (unsigned long long) frames,
            (unsigned long long) received, (unsigned long long) calls);
    ck_assert_msg(frames >= 10 * S_COPIES, "expected about %d frames of 4 KiB, got %llu",
                  12 * S_COPIES,
                  (unsigned long long) frames);
    /* one call per loop iteration that read frames: a handful, not one per
     * frame (a socket gives up to SL_PW_READ_BUDGET frames per callback) */
    ck_assert_msg(calls >= 1 && calls * 3 <= received,
                  "%llu publisher calls for %llu frames: frames were published one by one",
                  (unsigned long long) calls, (unsigned long long) received);
    ck_assert_uint_eq(sl_h_pub(&a, 0, 0, SL_PC_sent), sl_h_total(&a, SL_C_samples_routed));
    sl_h_stop_ok(&a, 20000, NULL);
    ck_assert_msg(sl_h_samples_are_corpus(&a, S_COPIES, s_fields),
                  "the samples are not the corpus's (see %s)", a.dir);
    sl_h_cleanup(&a);
}
END_TEST

/* A stateful sink over 16 partitions (each frame fills 16 times more
 * slowly than a stateless one), frames due after 1 ms, held up to 1 s. */
static void
s_write_linger(sl_h_agent_t *a, int rate, int batch_size)
{
    char cfg[2048], src[256];
    if (rate)
        snprintf(src, sizeof src, "{type: file, path: input.jsonl, rate: %d}", rate);
    else
        snprintf(src, sizeof src, "{type: file, path: input.jsonl}");
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\nworkers: {ingest: 1, pipeline: 1}\npartitions: 16\n"
             "batch_timeout_ms: 1\nbatch_linger_ms: 1000\nbatch_size: %d\n"
             "shutdown_grace: 20\nsources: [%s]\n"
             "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n",
             a->dir, batch_size, src, SL_SRCDIR);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[1024];
    snprintf(pipe, sizeof pipe,
             "sources: [{name: s, meters: ['*'], sinks: [roc]}]\n"
             "sinks:\n"
             "  - name: roc\n"
             "    transformers:\n"
             "      - {name: rate_of_change, parameters: {target: {name: rate, unit: '/s', "
             "type: gauge}}}\n"
             "    publishers: ['file://%s/roc.jsonl']\n", a->dir);
    sl_h_write(a, "pipeline.yaml", pipe);
}

static int
s_all_done(sl_h_agent_t *a)
{
    uint64_t in = sl_h_total(a, SL_C_samples_received);
    return sl_h_input_done(a) && in > 0 &&
           sl_h_total(a, SL_C_samples_published) + sl_h_total(a, SL_C_transform_absorbed) +
           sl_h_total(a, SL_C_transform_errors) == in &&
           sl_h_total(a, SL_C_frames_confirmed) == sl_h_total(a, SL_C_frames_sent);
}

/* Runs input through s_write_linger's agent; frames_lingered (and
 * frames_sent in *sent if not NULL). */
static uint64_t
s_linger_run(const char *tag, const char *gen, int copies, int rate, int batch_size,
             uint64_t *sent)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, tag);
    if (gen) {
        int rc = sl_h_run("%s/tools/sluice-inject --generate %s --seed 7 --output %s",
                          SL_BUILDDIR, gen, sl_h_path(&a, "input.jsonl"));
        ck_assert_int_eq(rc, 0);
    } else {
        sl_h_write_corpus(sl_h_path(&a, "input.jsonl"), copies);
    }
    s_write_linger(&a, rate, batch_size);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    ck_assert_msg(sl_h_wait(&a, s_all_done, 120000) == 0,
                  "%s: not everything delivered: received %llu published %llu absorbed %llu "
                  "frames sent %llu confirmed %llu (log %s)", tag,
                  (unsigned long long) sl_h_total(&a, SL_C_samples_received),
                  (unsigned long long) sl_h_total(&a, SL_C_samples_published),
                  (unsigned long long) sl_h_total(&a, SL_C_transform_absorbed),
                  (unsigned long long) sl_h_total(&a, SL_C_frames_sent),
                  (unsigned long long) sl_h_total(&a, SL_C_frames_confirmed), a.log);
    ck_assert_uint_eq(sl_h_total(&a, SL_C_transform_errors), 0);
    ck_assert_uint_gt(sl_h_total(&a, SL_C_samples_published), 0);
    uint64_t lingered = sl_h_total(&a, SL_C_frames_lingered);
    fprintf(stderr, "linger %s: %llu frames sent, %llu lingered\n", tag,
            (unsigned long long) sl_h_total(&a, SL_C_frames_sent),
            (unsigned long long) lingered);
    if (sent)
        *sent = sl_h_total(&a, SL_C_frames_sent);
    sl_h_stop_ok(&a, 20000, NULL);
    sl_h_cleanup(&a);
    return lingered;
}

START_TEST(a_busy_ingest_worker_lingers_and_one_that_waits_does_not)
{
    uint64_t busy = s_linger_run("linger-busy", "20000", 0, 0, 256, NULL);
    ck_assert_msg(busy > 0, "a worker reading a file as fast as it goes held no frame past "
                  "batch_timeout_ms");
    uint64_t idle = s_linger_run("linger-idle", NULL, 2, 400, 256, NULL);
    ck_assert_msg(idle == 0, "a worker reading 400 notifications/s held %llu frames past "
                  "batch_timeout_ms", (unsigned long long) idle);
}
END_TEST

START_TEST(a_sink_filling_frames_across_partitions_lingers_while_its_worker_waits)
{
    uint64_t sent = 0;
    uint64_t fills = s_linger_run("linger-fills", "8000", 0, 8000, 8, &sent);
    ck_assert_msg(fills * 10 >= sent, "a sink taking 8 samples (batch_size) within 1 ms across "
                  "its 16 partitions held %llu of %llu frames past batch_timeout_ms (expected a "
                  "tenth or more)", (unsigned long long) fills, (unsigned long long) sent);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("batching");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, frames_read_in_one_iteration_go_to_the_publisher_in_one_call);
    tcase_add_test(tc, a_busy_ingest_worker_lingers_and_one_that_waits_does_not);
    tcase_add_test(tc, a_sink_filling_frames_across_partitions_lingers_while_its_worker_waits);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
