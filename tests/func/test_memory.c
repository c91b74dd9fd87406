/* test_memory — what a worker holds is bounded by configuration, in bytes
 * (probe D5): frames queued towards a stopped pipeline worker stay within
 * queue_memory and the sources pause (back-pressure) instead of reading on;
 * one huge line or message costs no more than max_message_size; frame
 * buffers grow per stateless sink, not per partition; the supervisor is
 * resident only in the stats slots in use; sluiced binds library symbols
 * before it forks, not each worker on its own. Memory is read
 * from /proc/<pid>/status (VmRSS, VmHWM) and smaps of the real processes. */
#include <check.h>

#include "tests/sl_check.h"
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/func/harness.h"

#define MIB (1024.0 * 1024.0)

/* The value in KiB of the line "key:" of /proc/<pid>/<file>; with
 * mapping, only in the entry of the mapping whose header line names it
 * (smaps). -1 if not found. */
static long
s_proc_kib(pid_t pid, const char *file, const char *mapping, const char *key)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/%s", (int) pid, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    size_t kl = strlen(key);
    int in = mapping == NULL;
    while (fgets(line, sizeof line, f)) {
        if (mapping && (isdigit((unsigned char) line[0]) ||
                        (line[0] >= 'a' && line[0] <= 'f')))   /* "7f..-7f.. rw-s ..." */
            in = strstr(line, mapping) != NULL;
        else if (in && strncmp(line, key, kl) == 0 && line[kl] == ':')
            kib = atol(line + kl + 1);
    }
    fclose(f);
    return kib;
}

/* VmRSS or VmHWM of pid in MiB, -1 if unreadable. */
static double
s_vm(pid_t pid, const char *field)
{
    long kib = s_proc_kib(pid, "status", NULL, field);
    return kib < 0 ? -1 : (double) kib / 1024.0;
}

/* a worker's VmRSS when it started: limits are on growth, so that they
 * hold with the sanitizers' own memory too */
static double s_base;


/* 8 sinks that take every sample, 16 partitions each: 128 partition
 * sockets per worker, as in the probe that found 1.1 GiB. */
static void
s_write_config_with(sl_h_agent_t *a, int ingest, const char *source, const char *extra)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\nworkers: {ingest: %d, pipeline: 1}\npartitions: 16\n"
             "shutdown_grace: 20\nsources:\n  - %s\n"
             "ceilometer:\n  pipeline: pipeline.yaml\n  meters: %s/conf/meters.yaml\n%s",
             a->dir, ingest, source, SL_SRCDIR, extra);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[4096];
    size_t o = (size_t) snprintf(pipe, sizeof pipe, "sources:\n  - {name: s, meters: ['*'], "
                                 "sinks: [k0, k1, k2, k3, k4, k5, k6, k7]}\nsinks:\n");
    for (int i = 0; i < 8; i++)
        o += (size_t) snprintf(pipe + o, sizeof pipe - o,
                               "  - {name: k%d, publishers: ['file:///dev/null']}\n", i);
    sl_h_write(a, "pipeline.yaml", pipe);
}

static void
s_write_config(sl_h_agent_t *a, const char *extra)
{
    s_write_config_with(a, 1, "{type: file, path: input.jsonl}", extra);
}

/* An agent directory with input.jsonl: 20,000 generated notifications. */
static void
s_agent_with_input(sl_h_agent_t *a, const char *tag)
{
    sl_h_mkdir(a, tag);
    int rc = sl_h_run("%s/tools/sluice-inject --generate 20000 --seed 7 --output %s",
                      SL_BUILDDIR, sl_h_path(a, "input.jsonl"));
    ck_assert_int_eq(rc, 0);
}

static int
s_all_published(sl_h_agent_t *a)
{
    return sl_h_total(a, SL_C_source_eof) == 1 &&
           sl_h_total(a, SL_C_samples_published) == sl_h_total(a, SL_C_samples_routed);
}

START_TEST(queued_frames_stay_within_queue_memory_and_sources_pause)
{
    sl_h_agent_t a;
    s_agent_with_input(&a, "memory");
    s_write_config(&a, "queue_memory: 16M\n");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t ing = sl_h_worker(&a, SL_ROLE_INGEST), pip = sl_h_worker(&a, SL_ROLE_PIPELINE);
    ck_assert(ing > 0 && pip > 0);
    double base = s_vm(ing, "VmRSS"), pip_base = s_vm(pip, "VmRSS");
    kill(pip, SIGSTOP);
    /* the ingest worker fills the budget, then must stop reading */
    uint64_t last = 0;
    int still = 0;
    for (int i = 0; i < 300 && still < 10 && !sl_h_total(&a, SL_C_source_eof); i++) {
        sl_h_sleep_ms(100);
        uint64_t r = sl_h_total(&a, SL_C_received);
        still = r == last ? still + 1 : 0;
        last = r;
    }
    double rss = s_vm(ing, "VmRSS");
    /* back-pressure: a send that would block, or (since confirmations)
     * queue_memory of unconfirmed frames kept, pauses the sources */
    uint64_t eof = sl_h_total(&a, SL_C_source_eof),
             blocked = sl_h_total(&a, SL_C_send_blocked) + sl_h_total(&a, SL_C_source_pauses);
    kill(pip, SIGCONT);
    if (getenv("SL_TEST_VERBOSE"))
        fprintf(stderr, "stopped pipeline: received %llu eof %llu blocked %llu ingest rss %.1f -> "
                "%.1f MiB\n", (unsigned long long) last, (unsigned long long) eof,
                (unsigned long long) blocked, base, rss);
    ck_assert_msg(eof == 0 && blocked > 0,
                  "with the pipeline worker stopped the source read on to its end (eof %llu, "
                  "send_blocked + source_pauses %llu, received %llu of 20000): no back-pressure",
                  (unsigned long long) eof, (unsigned long long) blocked,
                  (unsigned long long) last);
    /* 16 MiB of frames, plus one frame over the cap per socket and the
     * worker's own buffers: far below the 500+ MiB an unbounded queue
     * reaches on this input */
    ck_assert_msg(rss - base < 48, "ingest worker grew by %.0f MiB (from %.0f to %.0f) with "
                  "queue_memory 16M", rss - base, base, rss);
    ck_assert_msg(sl_h_wait(&a, s_all_published, 120000) == 0,
                  "after SIGCONT not everything was published: routed %llu published %llu",
                  (unsigned long long) sl_h_total(&a, SL_C_samples_routed),
                  (unsigned long long) sl_h_total(&a, SL_C_samples_published));
    ck_assert_uint_eq(sl_h_total(&a, SL_C_received), 20000);
    double hwm = s_vm(pip, "VmHWM");
    if (getenv("SL_TEST_VERBOSE"))
        fprintf(stderr, "pipeline worker peak %.1f MiB\n", hwm);
    ck_assert_msg(hwm > 0 && hwm - pip_base < 80, "pipeline worker peaked at %.0f MiB (%.0f at "
                  "start) with queue_memory 16M", hwm, pip_base);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

static int
s_all_read_published(sl_h_agent_t *a)
{
    return sl_h_total(a, SL_C_received) == 20000 &&
           sl_h_total(a, SL_C_samples_published) == sl_h_total(a, SL_C_samples_routed);
}

/* The pipeline worker holds all 8 x 16 partitions. */
static int
s_all_held(sl_h_agent_t *a)
{
    return sl_h_leases_held(a) == 8 * 16;
}

typedef struct {
    uint64_t kept;              /* frame_bytes: nothing was confirmed */
    uint64_t received, pauses, budget, unconfirmed, blocked, confirmed;
} s_stall_t;

/* Two ingest workers (zmq source, connect mode) and one pipeline worker
 * that holds all partitions and is then stopped with SIGSTOP while 20,000
 * notifications come: what the ingest workers read and keep before their
 * sources pause, and why they paused. After SIGCONT everything must be
 * read and published. */
static s_stall_t
s_stall(const char *tag, const char *extra)
{
    sl_h_agent_t a;
    s_agent_with_input(&a, tag);
    char src[512];
    snprintf(src, sizeof src, "{type: zmq, endpoint: 'ipc://%s/notify.sock', mode: connect}",
             a.dir);
    s_write_config_with(&a, 2, src, extra);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t pip = sl_h_worker(&a, SL_ROLE_PIPELINE);
    ck_assert(pip > 0);
    ck_assert_msg(sl_h_wait(&a, s_all_held, 20000) == 0, "the pipeline worker did not take "
                  "all 128 partitions within 20 s (see %s)", a.log);
    kill(pip, SIGSTOP);
    /* the producer blocks once the ingest workers pause; it finishes
     * after SIGCONT */
    int rc = sl_h_run("%s/tools/sluice-inject --peers 2 --endpoint 'ipc://%s/notify.sock' "
                      "--linger 120 --run-dir %s %s >%s 2>&1 &", SL_BUILDDIR, a.dir, a.dir,
                      sl_h_path(&a, "input.jsonl"), sl_h_path(&a, "inject.log"));
    ck_assert_int_eq(rc, 0);
    s_stall_t st = { 0 };
    int still = 0;
    for (int i = 0; i < 300 && still < 10; i++) {
        sl_h_sleep_ms(100);
        uint64_t r = sl_h_total(&a, SL_C_frame_bytes);
        still = r && r == st.kept ? still + 1 : 0;
        st.kept = r;
    }
    st.received = sl_h_total(&a, SL_C_received);
    st.pauses = sl_h_total(&a, SL_C_source_pauses);
    st.budget = sl_h_total(&a, SL_C_pauses_budget);
    st.unconfirmed = sl_h_total(&a, SL_C_pauses_unconfirmed);
    st.blocked = sl_h_total(&a, SL_C_pauses_blocked);
    st.confirmed = sl_h_total(&a, SL_C_frames_confirmed);
    kill(pip, SIGCONT);
    fprintf(stderr, "%s: %llu bytes of frames kept by 2 ingest workers (%llu notifications "
            "read; pauses %llu: budget %llu, unconfirmed %llu, blocked %llu)\n", tag,
            (unsigned long long) st.kept, (unsigned long long) st.received,
            (unsigned long long) st.pauses, (unsigned long long) st.budget,
            (unsigned long long) st.unconfirmed, (unsigned long long) st.blocked);
    ck_assert_msg(sl_h_wait(&a, s_all_read_published, 120000) == 0,
                  "after SIGCONT not everything was read and published: received %llu, routed "
                  "%llu, published %llu", (unsigned long long) sl_h_total(&a, SL_C_received),
                  (unsigned long long) sl_h_total(&a, SL_C_samples_routed),
                  (unsigned long long) sl_h_total(&a, SL_C_samples_published));
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
    ck_assert_uint_eq(st.confirmed, 0);
    ck_assert_msg(st.pauses > 0 && st.received < 20000, "no back-pressure: %llu pauses, %llu "
                  "of 20000 read", (unsigned long long) st.pauses,
                  (unsigned long long) st.received);
    /* every pause has its reason */
    ck_assert_uint_eq(st.budget + st.unconfirmed + st.blocked, st.pauses);
    return st;
}

/* The sources paused for one reason only: the budget, or max_unconfirmed. */
static void
s_paused_for(const s_stall_t *st, int budget)
{
    uint64_t want = budget ? st->budget : st->unconfirmed,
             other = budget ? st->unconfirmed : st->budget;
    ck_assert_msg(want > 0 && other == 0, "pauses for %s: %llu, for %s: %llu",
                  budget ? "the budget" : "max_unconfirmed", (unsigned long long) want,
                  budget ? "max_unconfirmed" : "the budget", (unsigned long long) other);
}

/* queue_memory is one budget for the agent: each of its two ingest workers
 * keeps at most a quarter of it (half of it shared between them) while
 * the pipeline worker confirms nothing, then the sources pause. The
 * frames are small (batch_max_bytes 16K) so that the overshoot (the frame
 * that crosses the share, and the 8 frames being filled, sent when the
 * sources go idle) is small against the share; before the budget was per
 * agent each worker kept queue_memory, four times as much. */
START_TEST(the_frames_in_flight_of_the_whole_agent_stay_within_queue_memory)
{
    s_stall_t st = s_stall("agent-budget", "queue_memory: 2M\nbatch_max_bytes: 16K\n");
    /* at least one worker reached its 512 KiB share, and the two together
     * stayed within half of queue_memory plus the overshoot (9 frames of
     * 16 KiB and a notification's records each) */
    ck_assert_msg(st.kept >= 512 * 1024, "only %llu bytes of frames kept: did the sources "
                  "pause for another reason?", (unsigned long long) st.kept);
    ck_assert_msg(st.kept <= 1024 * 1024 + 2 * 200 * 1024, "the ingest workers kept %llu bytes "
                  "of frames with queue_memory 2M: more than their shares (2 x 512 KiB)",
                  (unsigned long long) st.kept);
    s_paused_for(&st, 1);
}
END_TEST

/* The other bound, with a budget too large to matter: the sources pause
 * at max_unconfirmed notifications, and the counter says so. */
START_TEST(pauses_at_max_unconfirmed_are_counted_as_such)
{
    s_stall_t st = s_stall("unconfirmed", "queue_memory: 1G\nmax_unconfirmed: 100\n");
    /* 2 workers x 100, and what each had read when it paused */
    ck_assert_msg(st.received >= 100 && st.received <= 2 * 100 + 2 * 64,
                  "%llu notifications read with max_unconfirmed 100 per worker",
                  (unsigned long long) st.received);
    s_paused_for(&st, 0);
}
END_TEST

/* A valid notification around a 64 MiB line and a 64 MiB zmq message. */
static const char s_valid[] =
    "{\"message_id\": \"m1\", \"event_type\": \"image.upload\", \"priority\": \"info\", "
    "\"payload\": {\"id\": \"i\", \"size\": 5}, \"timestamp\": \"2023-01-01 00:00:00\"}\n";

static void
s_write_huge(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(s_valid, f);
    fputs("{\"pad\": \"", f);
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 1024; i++)
        fwrite(chunk, 1, sizeof chunk, f);
    fputs("\"}\n", f);
    fputs(s_valid, f);
    fclose(f);
}

static int
s_three_read(sl_h_agent_t *a)
{
    return sl_h_total(a, SL_C_source_eof) == 1 && sl_h_total(a, SL_C_received) == 3;
}

START_TEST(a_huge_line_costs_no_more_than_max_message_size)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "hugeline");
    s_write_huge(sl_h_path(&a, "input.jsonl"));
    s_write_config(&a, "");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t ing = sl_h_worker(&a, SL_ROLE_INGEST);
    s_base = s_vm(ing, "VmRSS");
    ck_assert_msg(sl_h_wait(&a, s_three_read, 20000) == 0, "received %llu of 3 lines",
                  (unsigned long long) sl_h_total(&a, SL_C_received));
    ck_assert_uint_eq(sl_h_total(&a, SL_C_drop_oversized), 1);
    ck_assert_uint_eq(sl_h_total(&a, SL_C_decoded), 2);
    double hwm = s_vm(ing, "VmHWM");
    ck_assert_msg(hwm > 0 && hwm - s_base < 24, "ingest worker peaked at %.0f MiB (%.0f at start) "
                  "reading a 64 MiB line with max_message_size 1 MiB", hwm, s_base);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

/* 8 stateless sinks x 16 partitions: an ingest worker has one frame open
 * per stateless sink at a time, so one writer buffer per sink grows to a
 * full frame (about 150 KiB of 256 samples here), not one per partition
 * (128 of them: the worker grew by 29-30 MiB when each partition kept its
 * own; 3-7 MiB since). */
#if SL_CHECK_ASAN
/* AddressSanitizer's own memory (shadow, redzones, its allocator's size
 * classes, the 4 MiB quarantine): 15-23 MiB of growth, 39-41 MiB with a
 * buffer per partition */
#define S_WRITERS_MAX_MIB 30
#else
#define S_WRITERS_MAX_MIB 15
#endif

START_TEST(frame_buffers_grow_per_stateless_sink_not_per_partition)
{
    sl_h_agent_t a;
    /* meson sets MALLOC_PERTURB_, which fills every allocation and so
     * makes a buffer's whole capacity resident: this measures use */
    unsetenv("MALLOC_PERTURB_");
    s_agent_with_input(&a, "writers");
    /* frames kept until confirmed, bounded small, so that what is left to
     * grow is mostly the buffers of the frames being filled */
    s_write_config(&a, "queue_memory: 4M\n");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t ing = sl_h_worker(&a, SL_ROLE_INGEST);
    ck_assert(ing > 0);
    double base = s_vm(ing, "VmRSS");
    ck_assert_msg(sl_h_wait(&a, s_all_published, 120000) == 0,
                  "not everything was published: routed %llu published %llu",
                  (unsigned long long) sl_h_total(&a, SL_C_samples_routed),
                  (unsigned long long) sl_h_total(&a, SL_C_samples_published));
    /* every partition of every sink had frames */
    ck_assert_uint_ge(sl_h_total(&a, SL_C_frames_sent), 8 * 16);
    double rss = s_vm(ing, "VmRSS");
    fprintf(stderr, "writers: ingest worker %.1f -> %.1f MiB after %llu frames\n", base, rss,
            (unsigned long long) sl_h_total(&a, SL_C_frames_sent));
    ck_assert_msg(rss - base < S_WRITERS_MAX_MIB, "ingest worker grew by %.1f MiB (from %.1f) with 8 stateless "
                  "sinks x 16 partitions: frame buffers kept per partition?", rss - base, base);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

static int
s_one_after(sl_h_agent_t *a)
{
    return sl_h_total(a, SL_C_decoded) >= 1 && sl_h_total(a, SL_C_source_disconnects) >= 1;
}

START_TEST(a_huge_zmq_message_is_refused_before_it_is_buffered_and_counted)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "hugemsg");
    s_write_huge(sl_h_path(&a, "huge.jsonl"));
    sl_h_write(&a, "input.jsonl", "");
    s_write_config(&a, "");
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "run_dir: %s\nworkers: {ingest: 1, pipeline: 1}\n"
             "sources:\n  - {type: zmq, endpoint: 'ipc://%s/notify.sock'}\n"
             "ceilometer:\n  pipeline: pipeline.yaml\n  meters: %s/conf/meters.yaml\n",
             a.dir, a.dir, SL_SRCDIR);
    sl_h_write(&a, "sluice.yaml", cfg);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t ing = sl_h_worker(&a, SL_ROLE_INGEST);
    s_base = s_vm(ing, "VmRSS");
    /* the first valid line arrives; the huge one gets the connection cut,
     * with what the producer had queued behind it (the third line) */
    /* the producer's own libzmq sometimes stalls on a connection cut in
     * the middle of its 64 MiB message: only what the agent does counts */
    int rc = sl_h_run("timeout 20 %s/tools/sluice-inject --endpoint 'ipc://%s/notify.sock' "
                      "--linger 5 %s >/dev/null", SL_BUILDDIR, a.dir, sl_h_path(&a, "huge.jsonl"));
    (void) rc;
    ck_assert_msg(sl_h_wait(&a, s_one_after, 20000) == 0, "decoded %llu, disconnects %llu",
                  (unsigned long long) sl_h_total(&a, SL_C_decoded),
                  (unsigned long long) sl_h_total(&a, SL_C_source_disconnects));
    double hwm = s_vm(ing, "VmHWM");
    ck_assert_msg(hwm > 0 && hwm - s_base < 24, "ingest worker peaked at %.0f MiB (%.0f at "
                  "start) receiving a 64 MiB message with max_message_size 1 MiB", hwm, s_base);
    /* libzmq never reconnects a connection it cut for a protocol error:
     * the worker must, or this producer could never reach it again */
    sl_h_write(&a, "one.jsonl", s_valid);
    rc = sl_h_run("timeout 60 %s/tools/sluice-inject --endpoint 'ipc://%s/notify.sock' --run-dir %s "
                  "--linger 20 %s >/dev/null", SL_BUILDDIR, a.dir, a.dir, sl_h_path(&a, "one.jsonl"));
    ck_assert_msg(rc == 0, "a producer could not deliver after the cut (exit %d)", rc);
    ck_assert_uint_ge(sl_h_total(&a, SL_C_decoded), 2);
    char *log = sl_h_slurp(a.log, NULL);
    ck_assert_msg(log && strstr(log, "over max_message_size"), "no log line for the cut-off");
    free(log);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}
END_TEST


static int
s_generation_2(sl_h_agent_t *a)
{
    return atomic_load(&a->shm->generation) == 2 && atomic_load(&a->shm->slots[0].state) ==
           SL_WS_RUNNING && atomic_load(&a->shm->slots[1].state) == SL_WS_RUNNING;
}

/* The region has a slot (106 KB) for each of SL_MAX_WORKERS workers; the
 * supervisor must not touch the pages of slots no worker had, neither at
 * start nor when a reload clears and folds the slots (it cleared them all,
 * 13 MB of resident memory in the supervisor and in the region). */
START_TEST(the_supervisor_touches_only_the_slots_in_use)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "memory-shm");
    sl_h_write(&a, "input.jsonl", "");
    s_write_config(&a, "");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    char name[256];
    sl_shm_name(a.dir, name, sizeof name);
    long at_start = s_proc_kib(a.pid, "smaps", name + 1, "Rss");
    kill(a.pid, SIGHUP);
    ck_assert_msg(sl_h_wait(&a, s_generation_2, 30000) == 0, "no reload; see %s", a.log);
    long after_reload = s_proc_kib(a.pid, "smaps", name + 1, "Rss");
    size_t all = sizeof(sl_shm_t) + (size_t) a.shm->n_slots * sizeof(sl_slot_t);
    fprintf(stderr, "supervisor's resident pages of %s: %ld KiB at start, %ld KiB after a "
            "reload (slots of all workers: %zu KiB)\n", name, at_start, after_reload, all / 1024);
    ck_assert_msg(at_start >= 0 && after_reload >= 0, "no mapping of %s in the supervisor", name);
    /* 2 slots in use, the header and the lease table: well under 2 MiB */
    ck_assert_msg(at_start < 2048 && after_reload < 2048,
                  "the supervisor holds %ld / %ld KiB of the stats region (slots never used "
                  "touched?)", at_start, after_reload);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}
END_TEST
/* "NAME=value" in /proc/<pid>/environ: 1 if there, 0 if not, -1 unreadable */
static int
s_environ_has(pid_t pid, const char *entry)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int) pid);
    size_t len = 0;
    char *env = sl_h_slurp(path, &len);
    if (!env)
        return -1;
    int found = 0;
    for (size_t o = 0; o < len && !found; o += strlen(env + o) + 1)
        found = strcmp(env + o, entry) == 0;
    free(env);
    return found;
}

/* sluiced binds every library symbol before it forks (it runs itself again
 * with LD_BIND_NOW=1, keeping its PID): lazily bound, each worker walked
 * the ~60 libraries' symbol tables on its first call of each function,
 * 0.7 MiB more VmRSS per worker. */
START_TEST(sluiced_binds_symbols_once_before_it_forks)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "memory-bind");
    sl_h_write(&a, "input.jsonl", "");
    s_write_config(&a, "");
    unsetenv("LD_BIND_NOW");
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    pid_t w = sl_h_worker(&a, SL_ROLE_PIPELINE);
    ck_assert_msg(s_environ_has(a.pid, "LD_BIND_NOW=1") == 1,
                  "the supervisor (pid %d, the one started) runs without LD_BIND_NOW=1",
                  (int) a.pid);
    ck_assert_msg(w > 0 && s_environ_has(w, "LD_BIND_NOW=1") == 1,
                  "the pipeline worker (pid %d) runs without LD_BIND_NOW=1", (int) w);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

int
main(void)
{
    /* AddressSanitizer keeps freed memory in quarantine (256 MiB by
     * default), which would count as the workers' growth: keep it small
     * for the agents these tests start */
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan) {
        char opts[1024];
        snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4", asan, *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("budgets");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, queued_frames_stay_within_queue_memory_and_sources_pause);
    tcase_add_test(tc, the_frames_in_flight_of_the_whole_agent_stay_within_queue_memory);
    tcase_add_test(tc, pauses_at_max_unconfirmed_are_counted_as_such);
    tcase_add_test(tc, a_huge_line_costs_no_more_than_max_message_size);
    tcase_add_test(tc, frame_buffers_grow_per_stateless_sink_not_per_partition);
    tcase_add_test(tc, a_huge_zmq_message_is_refused_before_it_is_buffered_and_counted);
    tcase_add_test(tc, the_supervisor_touches_only_the_slots_in_use);
    tcase_add_test(tc, sluiced_binds_symbols_once_before_it_forks);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
