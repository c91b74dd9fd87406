/* output: the output layer with the test publisher on a real sl_loop —
 * retry with capped exponential backoff, policy=default|queue|drop with
 * max_queue_length, max_retries, dead-letter files with their reasons,
 * isolation of a stalled threaded publisher, done callbacks exactly once,
 * the drain deadline, and the counters in the worker's slot. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/stats.h"
#include "worker/output.h"
#include "worker/publishers/publisher.h"

static char s_dir[64];
static sl_loop_t *s_loop;
static sl_slot_t *s_slot;

static void
s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/sluice-output-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    s_loop = sl_loop_new();
    s_slot = aligned_alloc(64, (sizeof *s_slot + 63) / 64 * 64);
    memset(s_slot, 0, sizeof *s_slot);
}

static void
s_teardown(void)
{
    sl_loop_destroy(&s_loop);
    free(s_slot);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (!getenv("SLUICE_KEEP_TEST_DIRS") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_dir);
}

static const char *
s_path(const char *name)
{
    static char bufs[8][256];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 256, "%s/%s", s_dir, name);
    return b;
}

static void
s_write(const char *name, const char *text)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", s_path(name));
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, s_path(name)), 0);
}

/* Lines of a file (0 if it does not exist); *text gets its content if asked. */
static int
s_lines(const char *name, char **text)
{
    FILE *f = fopen(s_path(name), "r");
    if (text)
        *text = NULL;
    if (!f)
        return 0;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) {
        if (len + 2 > cap)
            buf = realloc(buf, cap = cap * 2 + 256);
        buf[len++] = (char) c;
        n += c == '\n';
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    if (text)
        *text = buf;
    else
        free(buf);
    return n;
}

/* A sink whose one publisher is url (with %s replaced by the test dir). */
static sl_output_t *
s_output(const char *const *urls, size_t n)
{
    char err[512];
    sl_output_t *out = sl_output_new(NULL, s_loop, s_slot, err, sizeof err);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < n; i++) {
        char url[1024];
        snprintf(url, sizeof url, urls[i], s_dir, s_dir, s_dir, s_dir);
        int rc = sl_output_add_sink(out, i == 0 ? "a" : "b", 0, (const char *[]) { url }, 1, err,
                                    sizeof err);
        ck_assert_msg(rc == (int) i, "sink %zu (%s): %s", i, url, err);
    }
    return out;
}

typedef struct {
    int calls;
    int delivered;
    uint64_t at;
} s_done_t;

static void
s_on_done(void *arg, int delivered)
{
    s_done_t *d = arg;
    d->calls++;
    d->delivered = delivered;
    d->at = sl_now_ms();
}

/* Submits n samples with ids "<tag>-<i>". */
static void
s_submit(sl_output_t *out, unsigned sink, const char *tag, size_t n, s_done_t *d)
{
    sl_sample_t v[8];
    char ids[8][32];
    ck_assert(n <= 8);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%s-%zu", tag, i);
        v[i] = (sl_sample_t) { .id = ids[i], .name = "cpu", .type = "gauge", .unit = "ns",
                               .volume_json = "1", .volume = 1, .user_id = "u",
                               .project_id = "p", .resource_id = "r",
                               .timestamp = "2024-01-01T00:00:00+00:00",
                               .resource_metadata = "{}", .source = "openstack",
                               .message_id = "m" };
    }
    sl_output_submit(out, sink, v, n, s_on_done, d);
    memset(ids, 'x', sizeof ids);   /* the layer kept copies, not views */
}

/* Runs the loop until *flag != 0 or ms pass; returns the ms it took. */
static uint64_t
s_run_until(const int *flag, unsigned ms)
{
    uint64_t t0 = sl_now_ms();
    while ((!flag || !*flag) && sl_now_ms() - t0 < ms)
        sl_loop_run_once(s_loop, 5);
    return sl_now_ms() - t0;
}

static uint64_t
s_pc(unsigned sink, int c)
{
    return atomic_load(&s_slot->pub[sink][0].c[c]);
}

START_TEST(backoff_is_capped_exponential_with_full_jitter)
{
    for (unsigned attempt = 1; attempt < 40; attempt++) {
        unsigned cap = 100;
        for (unsigned i = 1; i < attempt && cap < 5000; i++)
            cap *= 2;
        if (cap > 5000)
            cap = 5000;
        unsigned lo = ~0u, hi = 0;
        for (uint64_t r = 0; r < 20000; r += 7) {
            unsigned d = sl_output_backoff_ms(100, 5000, attempt, r * 0x9e3779b97f4a7c15ULL);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        ck_assert_msg(lo >= 1 && hi <= cap && hi > cap * 9 / 10 && lo < cap / 10 + 2,
                      "attempt %u: delays %u..%u, expected spread over 1..%u", attempt, lo, hi,
                      cap);
    }
}
END_TEST

START_TEST(a_transient_failure_is_retried_with_backoff_until_it_is_delivered)
{
    s_write("ctl", "retry 3\n");
    sl_output_t *out = s_output((const char *[]) {
        "testloop://a?control=%s/ctl&record=%s/rec&calls=%s/calls&retry_initial_ms=20"
        "&retry_max_ms=40" }, 1);
    s_done_t d = { 0 };
    uint64_t t0 = sl_now_ms();
    s_submit(out, 0, "b0", 3, &d);
    ck_assert_msg(d.calls == 0 && s_lines("calls", NULL) == 0,
                  "submit published or finished the batch inside the call");
    s_run_until(&d.calls, 2000);
    ck_assert_msg(d.calls == 1 && d.delivered == 1, "done: %d calls, delivered %d", d.calls,
                  d.delivered);
    char *calls;
    ck_assert_int_eq(s_lines("calls", &calls), 4);
    unsigned long long t[4];
    char st[4][8];
    const char *p = calls;
    for (int i = 0; i < 4; i++) {
        int used = 0;
        ck_assert(sscanf(p, "%llu %7s %*u\n%n", &t[i], st[i], &used) == 2);
        p += used;
    }
    ck_assert_str_eq(st[0], "retry");
    ck_assert_str_eq(st[3], "ok");
    /* caps 20, 40, 40 ms (+ the loop's granularity) */
    unsigned caps[3] = { 20, 40, 40 };
    for (int i = 0; i < 3; i++)
        ck_assert_msg(t[i + 1] - t[i] <= caps[i] + 30, "retry %d came after %llu ms, cap %u", i + 1,
                      t[i + 1] - t[i], caps[i]);
    ck_assert_msg(d.at - t0 <= 100 + 100, "delivered after %llu ms",
                  (unsigned long long) (d.at - t0));
    free(calls);
    ck_assert_int_eq(s_lines("rec", NULL), 3);
    ck_assert_uint_eq(s_pc(0, SL_PC_retried), 3);
    ck_assert_uint_eq(s_pc(0, SL_PC_errors), 3);
    ck_assert_uint_eq(s_pc(0, SL_PC_sent), 3);
    ck_assert_uint_eq(s_pc(0, SL_PC_queued), 1);
    ck_assert_uint_eq(s_pc(0, SL_PC_publishes), 4);
    ck_assert_uint_eq(s_pc(0, SL_PC_queue_depth), 0);
    ck_assert_uint_eq(SL_GET(s_slot, samples_published), 3);
    ck_assert_uint_eq(atomic_load(&s_slot->sink[0][SL_SC_published]), 3);
    char label[64], error[128];
    sl_stats_text_get(&s_slot->pub[0][0].t, label, sizeof label, error, sizeof error);
    ck_assert_msg(strncmp(label, "testloop://a", 12) == 0 && !strchr(label, '?'),
                  "label: %s", label);
    ck_assert_msg(strstr(error, "told to fail (retry 3)"), "last error: %s", error);
    sl_output_destroy(&out);
    ck_assert_int_eq(d.calls, 1);
}
END_TEST

START_TEST(policy_drop_drops_a_failed_batch_at_once_into_the_dead_letter_file)
{
    s_write("ctl", "retry\n");
    sl_output_t *out = s_output((const char *[]) {
        "test://a?control=%s/ctl&record=%s/rec&calls=%s/calls&policy=drop&dead_letter=%s/dl"
        "&confirm=delivered" }, 1);
    s_done_t d = { 0 };
    s_submit(out, 0, "b0", 2, &d);
    s_run_until(&d.calls, 2000);
    ck_assert_msg(d.calls == 1 && d.delivered == 0, "done: %d calls, delivered %d", d.calls,
                  d.delivered);
    ck_assert_int_eq(s_lines("calls", NULL), 1);
    ck_assert_int_eq(s_lines("rec", NULL), 0);
    char *dl;
    ck_assert_int_eq(s_lines("dl/a.deadletter.jsonl", &dl), 2);
    ck_assert_msg(strstr(dl, "\"reason\":\"policy=drop: test publisher: told to fail (retry)\"") &&
                  strstr(dl, "\"sink\":\"a\"") && strstr(dl, "\"publisher\":\"test://a\"") &&
                  strstr(dl, "\"attempts\":1,") && strstr(dl, "\"sample\":{\"id\":\"b0-0\"") &&
                  strstr(dl, "\"id\":\"b0-1\""), "dead letters: %s", dl);
    free(dl);
    ck_assert_uint_eq(s_pc(0, SL_PC_dropped), 2);
    ck_assert_uint_eq(s_pc(0, SL_PC_dead_lettered), 2);
    ck_assert_uint_eq(s_pc(0, SL_PC_retried), 0);
    ck_assert_uint_eq(SL_GET(s_slot, publish_errors), 2);
    ck_assert_uint_eq(atomic_load(&s_slot->sink[0][SL_SC_failed]), 2);
    sl_output_destroy(&out);
}
END_TEST

START_TEST(an_error_is_never_retried_and_max_retries_gives_up)
{
    s_write("ctl", "error\n");
    s_write("ctl2", "retry\n");
    sl_output_t *out = s_output((const char *[]) {
        "testloop://a?control=%s/ctl&dead_letter=%s/dl",
        "testloop://b?control=%s/ctl2&dead_letter=%s/dl&max_retries=2&retry_initial_ms=1"
        "&retry_max_ms=2" }, 2);
    s_done_t d1 = { 0 }, d2 = { 0 };
    s_submit(out, 0, "e", 1, &d1);
    s_submit(out, 1, "r", 1, &d2);
    s_run_until(&d2.calls, 2000);
    s_run_until(&d1.calls, 2000);
    ck_assert(d1.calls == 1 && !d1.delivered && d2.calls == 1 && !d2.delivered);
    char *dl;
    ck_assert_int_eq(s_lines("dl/a.deadletter.jsonl", &dl), 1);
    ck_assert_msg(strstr(dl, "\"reason\":\"rejected: test publisher: told to fail (error)\""),
                  "%s", dl);
    free(dl);
    ck_assert_int_eq(s_lines("dl/b.deadletter.jsonl", &dl), 1);
    ck_assert_msg(strstr(dl, "\"reason\":\"gave up after 2 retries: ") &&
                  strstr(dl, "\"attempts\":3,"), "%s", dl);
    free(dl);
    ck_assert_uint_eq(s_pc(0, SL_PC_retried), 0);
    ck_assert_uint_eq(s_pc(1, SL_PC_retried), 2);
    sl_output_destroy(&out);
}
END_TEST

/* What done says: a batch given up for a reason that may heal and not
 * dead-lettered is SL_OUTPUT_FAILED (a broker source requeues it); dead-
 * lettered, rejected as bad or dropped by policy=drop it is finished (0). */
START_TEST(a_failure_that_may_heal_without_dead_letter_is_reported_as_failed)
{
    s_write("ctl", "retry\n");
    s_write("ctl2", "error\n");
    sl_output_t *out = s_output((const char *[]) {
        "testloop://a?control=%s/ctl&max_retries=1&retry_initial_ms=1&retry_max_ms=2",
        "testloop://b?control=%s/ctl&max_retries=1&retry_initial_ms=1&retry_max_ms=2"
        "&dead_letter=%s/dl",
        "testloop://c?control=%s/ctl2",
        "testloop://d?control=%s/ctl&policy=drop&confirm=delivered" }, 4);
    s_done_t d[4] = { { 0 } };
    for (unsigned k = 0; k < 4; k++)
        s_submit(out, k, "h", 1, &d[k]);
    for (unsigned k = 0; k < 4; k++)
        s_run_until(&d[k].calls, 2000);
    ck_assert_msg(d[0].calls == 1 && d[0].delivered == SL_OUTPUT_FAILED, "gave up: %d",
                  d[0].delivered);
    ck_assert_msg(d[1].calls == 1 && d[1].delivered == 0, "dead-lettered: %d", d[1].delivered);
    ck_assert_msg(d[2].calls == 1 && d[2].delivered == 0, "rejected: %d", d[2].delivered);
    ck_assert_msg(d[3].calls == 1 && d[3].delivered == 0, "policy=drop: %d", d[3].delivered);
    sl_output_destroy(&out);
}
END_TEST

START_TEST(policy_queue_keeps_max_queue_length_batches_and_drops_the_oldest)
{
    s_write("ctl", "stall\n");
    sl_output_t *out = s_output((const char *[]) {
        "test://a?control=%s/ctl&record=%s/rec&policy=queue&max_queue_length=2"
        "&dead_letter=%s/dl&confirm=delivered" }, 1);
    s_done_t d[5] = { { 0 } };
    s_submit(out, 0, "b0", 1, &d[0]);
    s_run_until(NULL, 30);            /* the thread has b0 and stalls */
    char tag[8];
    for (int i = 1; i < 5; i++) {
        snprintf(tag, sizeof tag, "b%d", i);
        s_submit(out, 0, tag, 1, &d[i]);
        ck_assert(sl_output_ready(out, 0));   /* queue never pushes back */
    }
    ck_assert_uint_eq(s_pc(0, SL_PC_queue_depth), 2);
    s_run_until(NULL, 20);
    for (int i = 1; i < 4; i++)
        ck_assert_msg(d[i].calls == 1 && !d[i].delivered, "b%d: %d calls, delivered %d", i,
                      d[i].calls, d[i].delivered);
    ck_assert_int_eq(d[0].calls + d[4].calls, 0);
    s_write("ctl", "ok\n");
    s_run_until(&d[4].calls, 2000);
    ck_assert(d[0].calls == 1 && d[0].delivered && d[4].calls == 1 && d[4].delivered);
    char *rec;
    ck_assert_int_eq(s_lines("rec", &rec), 2);
    ck_assert_str_eq(rec, "b0-0\nb4-0\n");
    free(rec);
    ck_assert_int_eq(s_lines("dl/a.deadletter.jsonl", &rec), 3);
    ck_assert_msg(strstr(rec, "queue full (max_queue_length=2)") && strstr(rec, "\"b1-0\"") &&
                  strstr(rec, "\"attempts\":0,"), "%s", rec);
    free(rec);
    ck_assert_uint_eq(s_pc(0, SL_PC_dropped), 3);
    ck_assert_uint_eq(s_pc(0, SL_PC_sent), 2);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(d[i].calls, 1);
    sl_output_destroy(&out);
}
END_TEST

/* A destination that stalls on every attempt: the head batch fails
 * (stall_max_ms, then RETRY) and is retried; once it has failed, an
 * overflowing queue drops it too, in flight, so that it cannot hold its
 * source's confirmations for ever. */
START_TEST(policy_queue_drops_a_head_that_failed_before_even_in_flight)
{
    s_write("ctl", "stall\n");
    sl_output_t *out = s_output((const char *[]) {
        "test://a?control=%s/ctl&record=%s/rec&policy=queue&max_queue_length=2"
        "&stall_max_ms=60&retry_initial_ms=1&retry_max_ms=5&dead_letter=%s/dl"
        "&confirm=delivered" }, 1);
    s_done_t d[6] = { { 0 } };
    s_submit(out, 0, "b0", 1, &d[0]);
    s_run_until(NULL, 150);           /* b0 stalled, failed, and is being retried */
    ck_assert_uint_ge(s_pc(0, SL_PC_retried), 1);
    char tag[8];
    for (int i = 1; i < 4; i++) {
        snprintf(tag, sizeof tag, "b%d", i);
        s_submit(out, 0, tag, 1, &d[i]);
    }
    /* b2 overflowed the queue of 2: the oldest, b0, went, in flight; b3
     * then took b1, which waited behind the thread still stalled on b0 */
    for (int i = 0; i < 2; i++)
        ck_assert_msg(d[i].calls == 1 && d[i].delivered == 0,   /* dead-lettered */
                      "b%d: %d calls, delivered %d", i, d[i].calls, d[i].delivered);
    ck_assert_int_eq(d[2].calls + d[3].calls, 0);
    /* b2 flies once the thread is back, stalls, fails and is retried:
     * b4 overflowing the queue drops it in flight */
    s_run_until(NULL, 150);
    s_submit(out, 0, "b4", 1, &d[4]);
    ck_assert_msg(d[2].calls == 1 && d[2].delivered == 0, "b2: %d calls", d[2].calls);
    s_write("ctl", "ok\n");
    s_run_until(&d[4].calls, 3000);
    for (int i = 3; i < 5; i++)
        ck_assert_msg(d[i].calls == 1 && d[i].delivered == 1, "b%d: %d calls, delivered %d", i,
                      d[i].calls, d[i].delivered);
    /* b2's stalled call may still have gone through when the destination
     * healed: dropped (counted, dead-lettered) and delivered, once */
    char *rec;
    int n = s_lines("rec", &rec);
    ck_assert_msg((n == 2 && strcmp(rec, "b3-0\nb4-0\n") == 0) ||
                  (n == 3 && strcmp(rec, "b2-0\nb3-0\nb4-0\n") == 0), "%s", rec);
    free(rec);
    ck_assert_int_eq(s_lines("dl/a.deadletter.jsonl", &rec), 3);
    ck_assert_msg(strstr(rec, "\"b0-0\"") && strstr(rec, "\"b1-0\"") && strstr(rec, "\"b2-0\""),
                  "%s", rec);
    free(rec);
    ck_assert_uint_eq(s_pc(0, SL_PC_dropped), 3);
    sl_output_destroy(&out);
}
END_TEST

static int s_ready_calls;

static void
s_on_ready(void *arg, unsigned sink)
{
    sl_output_t *out = arg;
    ck_assert_uint_eq(sink, 0);
    ck_assert(sl_output_ready(out, sink));
    s_ready_calls++;
}

START_TEST(policy_default_keeps_everything_and_pushes_back_when_the_queue_is_full)
{
    s_write("ctl", "stall\n");
    sl_output_t *out = s_output((const char *[]) {
        "test://a?control=%s/ctl&record=%s/rec&max_queue_length=2" }, 1);
    sl_output_on_ready(out, s_on_ready, out);
    s_ready_calls = 0;
    s_done_t d[3] = { { 0 } };
    ck_assert(sl_output_ready(out, 0));
    s_submit(out, 0, "b0", 1, &d[0]);
    ck_assert(sl_output_ready(out, 0));
    s_submit(out, 0, "b1", 1, &d[1]);
    ck_assert_msg(!sl_output_ready(out, 0), "2 batches waiting of max_queue_length=2: ready");
    s_run_until(NULL, 30);
    ck_assert(!sl_output_ready(out, 0));
    ck_assert_uint_eq(sl_output_pending(out), 2);
    s_write("ctl", "ok\n");
    s_run_until(&d[1].calls, 2000);
    ck_assert(sl_output_ready(out, 0));
    ck_assert_msg(s_ready_calls == 1, "the ready callback ran %d times, expected once",
                  s_ready_calls);
    s_submit(out, 0, "b2", 1, &d[2]);
    s_run_until(&d[2].calls, 2000);
    char *rec;
    ck_assert_int_eq(s_lines("rec", &rec), 3);
    ck_assert_str_eq(rec, "b0-0\nb1-0\nb2-0\n");
    free(rec);
    ck_assert_uint_eq(s_pc(0, SL_PC_dropped), 0);
    sl_output_destroy(&out);
}
END_TEST

static int s_ticks, s_max_late;
static uint64_t s_last_tick;

static void
s_tick(sl_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    uint64_t now = sl_now_ms();
    if (s_last_tick && (int) (now - s_last_tick) - 10 > s_max_late)
        s_max_late = (int) (now - s_last_tick) - 10;
    s_last_tick = now;
    s_ticks++;
}

START_TEST(a_stalled_publisher_delays_neither_another_sinks_publisher_nor_the_loop)
{
    s_write("ctl", "stall\n");
    sl_output_t *out = s_output((const char *[]) {
        "test://a?control=%s/ctl&record=%s/rec_a",
        "test://b?record=%s/rec_b" }, 2);
    sl_loop_timer_t *t = sl_loop_every(s_loop, 10, 0, s_tick, NULL);
    s_done_t da = { 0 };
    s_submit(out, 0, "a0", 1, &da);
    uint64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        s_done_t db = { 0 };
        char tag[8];
        snprintf(tag, sizeof tag, "b%d", i);
        uint64_t t0 = sl_now_ms();
        s_submit(out, 1, tag, 2, &db);
        s_run_until(&db.calls, 2000);
        ck_assert_msg(db.calls == 1 && db.delivered, "sink b batch %d not delivered", i);
        worst = db.at - t0 > worst ? db.at - t0 : worst;
    }
    /* a stalls until told otherwise: had it blocked the loop, b would
     * wait for that (never, here). The bounds leave a loaded machine's
     * scheduling out of it. */
    ck_assert_msg(worst < 1000, "sink b took up to %llu ms per batch while a stalled",
                  (unsigned long long) worst);
    s_run_until(NULL, 100);     /* a still stalls: the loop's timer keeps its schedule */
    ck_assert_msg(da.calls == 0, "the stalled batch finished");
    ck_assert_int_eq(s_lines("rec_b", NULL), 40);
    ck_assert_msg(s_ticks >= 3 && s_max_late < 500, "loop timer: %d ticks, late up to %d ms",
                  s_ticks, s_max_late);
    s_write("ctl", "ok\n");
    s_run_until(&da.calls, 2000);
    ck_assert(da.calls == 1 && da.delivered);
    sl_loop_cancel(s_loop, &t);
    sl_output_destroy(&out);
}
END_TEST

START_TEST(done_runs_once_when_every_publisher_of_the_sink_is_finished)
{
    s_write("ctl", "sleep 30\n");
    s_write("ctl2", "error\n");
    char err[512], u1[300], u2[300], u3[300];
    snprintf(u1, sizeof u1, "test://slow?control=%s/ctl&record=%s/r1", s_dir, s_dir);
    snprintf(u2, sizeof u2, "testloop://bad?control=%s/ctl2", s_dir);
    snprintf(u3, sizeof u3, "file://%s/out.jsonl", s_dir);
    sl_output_t *out = sl_output_new(NULL, s_loop, s_slot, err, sizeof err);
    ck_assert_int_eq(sl_output_add_sink(out, "k", 0, (const char *[]) { u1, u2, u3 }, 3, err,
                                        sizeof err), 0);
    s_done_t d = { 0 };
    s_submit(out, 0, "x", 2, &d);
    s_run_until(NULL, 10);
    ck_assert_msg(d.calls == 0, "done before the slow publisher finished");
    s_run_until(&d.calls, 2000);
    s_run_until(NULL, 50);
    ck_assert_msg(d.calls == 1 && d.delivered == 0, "done: %d calls, delivered %d", d.calls,
                  d.delivered);
    ck_assert_int_eq(s_lines("r1", NULL), 2);
    ck_assert_int_eq(s_lines("out.jsonl", NULL), 2);
    ck_assert_uint_eq(atomic_load(&s_slot->pub[0][1].c[SL_PC_dropped]), 2);
    ck_assert_uint_eq(atomic_load(&s_slot->pub[0][2].c[SL_PC_sent]), 2);
    ck_assert_uint_eq(sl_output_pending(out), 0);
    /* an empty batch still completes, later */
    s_done_t e = { 0 };
    sl_output_submit(out, 0, NULL, 0, s_on_done, &e);
    ck_assert_int_eq(e.calls, 0);
    s_run_until(&e.calls, 100);
    ck_assert_int_eq(e.calls, 1);
    sl_output_destroy(&out);
}
END_TEST

START_TEST(drain_delivers_until_the_deadline_then_abandons_what_is_left)
{
    s_write("ctl", "stall\n");
    sl_output_t *out = s_output((const char *[]) {
        "test://a?control=%s/ctl&dead_letter=%s/dl",
        "testloop://b?record=%s/rec_b" }, 2);
    s_done_t d[3] = { { 0 } }, db = { 0 };
    s_submit(out, 0, "a0", 1, &d[0]);
    s_submit(out, 0, "a1", 1, &d[1]);
    s_submit(out, 0, "a2", 1, &d[2]);
    s_submit(out, 1, "b0", 1, &db);
    uint64_t t0 = sl_now_ms();
    size_t n = sl_output_drain(out, t0 + 150);
    uint64_t took = sl_now_ms() - t0;
    ck_assert_msg(took >= 140 && took < 400, "drain took %llu ms for a 150 ms deadline",
                  (unsigned long long) took);
    ck_assert_uint_eq(n, 3);
    ck_assert_msg(db.calls == 1 && db.delivered, "the healthy sink was not delivered");
    for (int i = 0; i < 3; i++)
        ck_assert_msg(d[i].calls == 1 && !d[i].delivered, "a%d: %d calls", i, d[i].calls);
    char *dl;
    ck_assert_int_eq(s_lines("dl/a.deadletter.jsonl", &dl), 3);
    ck_assert_msg(strstr(dl, "not delivered before the drain deadline"), "%s", dl);
    free(dl);
    ck_assert_uint_eq(s_pc(0, SL_PC_dropped), 3);
    ck_assert_uint_eq(s_pc(0, SL_PC_queue_depth), 0);
    s_write("ctl", "ok\n");     /* let the thread return, so that destroy can join it */
    sl_output_destroy(&out);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(d[i].calls, 1);
}
END_TEST

/* confirm=queued (the default under policy=queue and drop, Ceilometer's
 * semantics): the source's done runs once the batch is queued, whatever
 * the destination does; the publisher keeps its copy (at_risk counts its
 * records) and still delivers it; the other publishers of the sink that
 * confirm on delivery still gate done. */
START_TEST(confirm_queued_is_done_once_queued_and_counts_what_it_holds)
{
    s_write("ctl", "stall\n");
    sl_output_t *out = s_output((const char *[]) {
        "test://a?control=%s/ctl&record=%s/rec&policy=queue&max_queue_length=3"
        "&dead_letter=%s/dl" }, 1);
    s_done_t d[5] = { { 0 } };
    char tag[8];
    for (int i = 0; i < 5; i++) {
        snprintf(tag, sizeof tag, "b%d", i);
        s_submit(out, 0, tag, 2, &d[i]);
        ck_assert_msg(d[i].calls == 1 && d[i].delivered == 1,
                      "b%d: done %d times (delivered %d) right after submit", i, d[i].calls,
                      d[i].delivered);
        if (i == 0)
            s_run_until(NULL, 30);    /* the thread has b0 and stalls */
    }
    ck_assert_uint_eq(sl_output_pending(out), 0);
    s_run_until(NULL, 30);
    /* b0 flies (first attempt, spared); b3 then b4 overflowed the queue
     * of 3 and took b1 and b2: b0, b3, b4 held */
    ck_assert_uint_eq(s_pc(0, SL_PC_queue_depth), 3);
    ck_assert_uint_eq(s_pc(0, SL_PC_dropped), 4);
    ck_assert_uint_eq(s_pc(0, SL_PC_at_risk), 6);
    s_write("ctl", "ok\n");
    for (int k = 0; k < 400 && s_pc(0, SL_PC_sent) < 6; k++)
        s_run_until(NULL, 5);
    ck_assert_uint_eq(s_pc(0, SL_PC_sent), 6);
    ck_assert_uint_eq(s_pc(0, SL_PC_at_risk), 0);
    ck_assert_uint_eq(s_pc(0, SL_PC_queue_depth), 0);
    char *rec;
    ck_assert_int_eq(s_lines("rec", &rec), 6);
    ck_assert_str_eq(rec, "b0-0\nb0-1\nb3-0\nb3-1\nb4-0\nb4-1\n");
    free(rec);
    ck_assert_int_eq(s_lines("dl/a.deadletter.jsonl", NULL), 4);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(d[i].calls, 1);
    /* the sink's counters still follow what happened to the records */
    ck_assert_uint_eq(atomic_load(&s_slot->sink[0][SL_SC_published]), 6);
    ck_assert_uint_eq(atomic_load(&s_slot->sink[0][SL_SC_failed]), 4);
    sl_output_destroy(&out);
}
END_TEST

START_TEST(confirm_queued_publishers_do_not_gate_the_others_of_their_sink)
{
    s_write("ctl", "stall\n");
    s_write("ctl2", "sleep 40\n");
    char err[512], u1[300], u2[300], u3[300];
    snprintf(u1, sizeof u1, "test://stalled?control=%s/ctl&policy=drop&record=%s/r1", s_dir,
             s_dir);
    snprintf(u2, sizeof u2, "test://slow?control=%s/ctl2&record=%s/r2", s_dir, s_dir);
    snprintf(u3, sizeof u3, "test://kept?control=%s/ctl&policy=drop&confirm=delivered", s_dir);
    sl_output_t *out = sl_output_new(NULL, s_loop, s_slot, err, sizeof err);
    ck_assert_int_eq(sl_output_add_sink(out, "k", 0, (const char *[]) { u1, u2 }, 2, err,
                                        sizeof err), 0);
    ck_assert_int_eq(sl_output_add_sink(out, "m", 0, (const char *[]) { u3 }, 1, err,
                                        sizeof err), 1);
    s_done_t d = { 0 }, m = { 0 };
    s_submit(out, 0, "x", 1, &d);
    s_submit(out, 1, "y", 1, &m);
    ck_assert_msg(d.calls == 0, "done before the publisher confirming on delivery finished");
    s_run_until(&d.calls, 2000);
    ck_assert_msg(d.calls == 1 && d.delivered == 1, "done: %d calls, delivered %d", d.calls,
                  d.delivered);
    ck_assert_int_eq(s_lines("r2", NULL), 1);
    ck_assert_int_eq(s_lines("r1", NULL), 0);       /* still stalled */
    ck_assert_uint_eq(atomic_load(&s_slot->pub[0][0].c[SL_PC_at_risk]), 1);
    ck_assert_uint_eq(atomic_load(&s_slot->pub[0][1].c[SL_PC_at_risk]), 0);
    ck_assert_msg(m.calls == 0, "confirm=delivered under policy=drop: done before it finished");
    /* the drain waits for what confirm=queued publishers hold, then
     * abandons it (counted, at_risk back to 0) */
    uint64_t t0 = sl_now_ms();
    size_t n = sl_output_drain(out, t0 + 100);
    ck_assert_msg(sl_now_ms() - t0 >= 90, "the drain did not wait for the stalled publisher");
    ck_assert_uint_eq(n, 2);
    ck_assert_msg(m.calls == 1 && m.delivered == SL_OUTPUT_FAILED, "m: %d calls, delivered %d",
                  m.calls, m.delivered);
    ck_assert_uint_eq(atomic_load(&s_slot->pub[0][0].c[SL_PC_dropped]), 1);
    ck_assert_uint_eq(atomic_load(&s_slot->pub[0][0].c[SL_PC_at_risk]), 0);
    s_write("ctl", "ok\n");     /* let the threads return, so that destroy can join them */
    sl_output_destroy(&out);
    ck_assert_int_eq(d.calls, 1);
}
END_TEST

START_TEST(core_options_are_checked_with_every_publisher_url)
{
    char err[512];
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?policy=queue&max_queue_length=10"
                                        "&retry_initial_ms=1s&retry_max_ms=1m"
                                        "&dead_letter=/tmp/dl&max_retries=3",
                                        err, sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?policy=sometimes", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "file publisher 'file:///tmp/x?policy=sometimes'") &&
                  strstr(err, "default, queue or drop"), "%s", err);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?max_queue_length=0", err, sizeof err), -1);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?dead_letter=rel", err, sizeof err), -1);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?confirm=queued", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "confirm=queued needs policy=queue or policy=drop"), "%s", err);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?confirm=queued&policy=drop", err,
                                        sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?confirm=delivered&policy=queue", err,
                                        sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?confirm=later", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "auto, queued or delivered"), "%s", err);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?dead_letter=rel", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "absolute"), "%s", err);
    ck_assert_int_eq(sl_publisher_check("file:///tmp/x?retry_initial_ms=5s&retry_max_ms=1s", err,
                                        sizeof err), -1);
    ck_assert_int_eq(sl_publisher_check("test://x?colour=red", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unknown option 'colour'") && strstr(err, "policy"), "%s", err);
    ck_assert_int_eq(sl_publisher_check_events("test://x", err, sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check("kafka://x", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "publisher scheme 'kafka' is not supported yet (supported: file, "
                         "notifier, ") && strstr(err, " gnocchi,") && strstr(err, " test"),
                  "%s", err);
    size_t n;
    const sl_pub_plugin_t *const *reg = sl_publisher_registry(&n);
    ck_assert_uint_ge(n, 1);
    ck_assert_str_eq(reg[0]->name, "file");
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(reg[i]->help && reg[i]->init && reg[i]->publish && reg[i]->destroy,
                      "plugin %s is incomplete", reg[i]->name);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("output");
    TCase *tc = tcase_create("output");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, backoff_is_capped_exponential_with_full_jitter);
    tcase_add_test(tc, a_transient_failure_is_retried_with_backoff_until_it_is_delivered);
    tcase_add_test(tc, policy_drop_drops_a_failed_batch_at_once_into_the_dead_letter_file);
    tcase_add_test(tc, an_error_is_never_retried_and_max_retries_gives_up);
    tcase_add_test(tc, a_failure_that_may_heal_without_dead_letter_is_reported_as_failed);
    tcase_add_test(tc, policy_queue_keeps_max_queue_length_batches_and_drops_the_oldest);
    tcase_add_test(tc, policy_queue_drops_a_head_that_failed_before_even_in_flight);
    tcase_add_test(tc, policy_default_keeps_everything_and_pushes_back_when_the_queue_is_full);
    tcase_add_test(tc, a_stalled_publisher_delays_neither_another_sinks_publisher_nor_the_loop);
    tcase_add_test(tc, done_runs_once_when_every_publisher_of_the_sink_is_finished);
    tcase_add_test(tc, drain_delivers_until_the_deadline_then_abandons_what_is_left);
    tcase_add_test(tc, confirm_queued_is_done_once_queued_and_counts_what_it_holds);
    tcase_add_test(tc, confirm_queued_publishers_do_not_gate_the_others_of_their_sink);
    tcase_add_test(tc, core_options_are_checked_with_every_publisher_url);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
