/* loop: timers keep their schedule under slow watch callbacks; ZeroMQ sockets
 * and descriptors in one poll; pause/resume; removal and cancel from inside
 * callbacks; before-sleep hooks; run/break/stop flag. Timing bounds leave
 * room for valgrind. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/loop.h"
#include "common/stats.h"
#include "tests/sl_check.h"

static void
s_busy(unsigned ms)
{
    uint64_t end = sl_now_ms() + ms;
    while (sl_now_ms() < end)
        ;
}

static void
s_pipe(int p[2], int ready)
{
    ck_assert_int_eq(pipe(p), 0);
    if (ready)
        ck_assert_int_eq(write(p[1], "x", 1), 1);
}

static void
s_close(int p[2])
{
    close(p[0]);
    close(p[1]);
}

typedef struct {
    int       runs;
    unsigned  work_ms;     /* busy-wait per call */
    int       revents;
} s_count_t;

static void
s_count_timer(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_count_t *c = arg;
    c->runs++;
    if (c->work_ms)
        s_busy(c->work_ms);
}

static void
s_count_io(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    s_count_t *c = arg;
    c->runs++;
    c->revents = revents;
    if (c->work_ms)
        s_busy(c->work_ms);
}

static void
s_run_for(sl_loop_t *loop, unsigned ms)
{
    uint64_t end = sl_now_ms() + ms;
    while (sl_now_ms() < end)
        ck_assert_int_ge(sl_loop_run_once(loop, (int) (end - sl_now_ms())), 0);
}

START_TEST(periodic_timer_runs_at_its_interval_planned_from_the_previous_plan)
{
    /* 20 ms interval, 5 ms of work per run, 300 ms: planned from the plan
     * that is 14-15 slots, run or (on a loaded machine) skipped; planned
     * from the end of the callback it would be 12 (a 25 ms period). */
    sl_loop_t *loop = sl_loop_new();
    s_count_t c = { .work_ms = 5 };
    uint64_t t0 = sl_now_ms();
    sl_loop_timer_t *t = sl_loop_every(loop, 20, 0, s_count_timer, &c);
    ck_assert_ptr_nonnull(t);
    while (sl_now_ms() - t0 < 300)
        sl_loop_run_once(loop, 100);
    /* Slots that fell due while this process was not scheduled are seen by
     * one more check; compare with the time that really went by. */
    uint64_t before = sl_now_ms() - t0;
    sl_loop_run_once(loop, 0);
    uint64_t after = sl_now_ms() - t0;
    const sl_loop_stats_t *st = sl_loop_stats(loop);
    uint64_t slots = st->timer_runs + st->timer_skips;
    ck_assert_msg(slots >= (before - 1) / 20 && slots <= after / 20,
                  "expected %llu-%llu slots (runs + skips) of a 20 ms timer in %llu ms, got %d + %llu",
                  (unsigned long long) ((before - 1) / 20), (unsigned long long) (after / 20),
                  (unsigned long long) after, c.runs, (unsigned long long) st->timer_skips);
    ck_assert_msg(c.runs >= 7, "expected most slots to run, got %d runs", c.runs);
    ck_assert_uint_eq(st->timer_runs, (uint64_t) c.runs);
    sl_loop_cancel(loop, &t);
    ck_assert_ptr_null(t);
    sl_loop_destroy(&loop);
    ck_assert_ptr_null(loop);
}
END_TEST

/* Watch callback of the slow-callback test: busy 40 ms, and notes whether
 * the timer ran since the previous watch callback. */
static s_count_t s_slow_timer;
static int s_slow_last_timer_runs = -1;
static int s_slow_back_to_back;

static void
s_slow_io(sl_loop_t *loop, void *arg, int revents)
{
    if (s_slow_last_timer_runs >= 0 && s_slow_timer.runs == s_slow_last_timer_runs)
        s_slow_back_to_back++;
    s_count_io(loop, arg, revents);
    s_slow_last_timer_runs = s_slow_timer.runs;
}

START_TEST(timer_stays_on_time_while_watch_callbacks_are_slow)
{
    /* Six always-ready descriptors whose callbacks each take 40 ms: one
     * iteration is ~240 ms of callbacks. A 10 ms timer checked only once per
     * iteration would be ~230 ms late; checked after every callback, it is
     * late by at most one callback (40 ms) plus what the scheduler adds on a
     * loaded machine. A callback outlasts the interval, so the timer must
     * run between any two watch callbacks, however the process is scheduled:
     * that is what is asserted, not a lateness in ms. */
    sl_loop_t *loop = sl_loop_new();
    int p[6][2];
    s_count_t io[6];
    memset(io, 0, sizeof io);
    memset(&s_slow_timer, 0, sizeof s_slow_timer);
    s_slow_last_timer_runs = -1;
    s_slow_back_to_back = 0;
    for (int i = 0; i < 6; i++) {
        s_pipe(p[i], 1);
        io[i].work_ms = 40;
        ck_assert_ptr_nonnull(sl_loop_watch_fd(loop, p[i][0], SL_LOOP_IN, s_slow_io, &io[i]));
    }
    sl_loop_every(loop, 10, 0, s_count_timer, &s_slow_timer);
    s_run_for(loop, 600);
    const sl_loop_stats_t *st = sl_loop_stats(loop);
    int ncb = 0;
    for (int i = 0; i < 6; i++)
        ncb += io[i].runs;
    ck_assert_msg(s_slow_back_to_back == 0,
                  "expected the timer to run between every two slow callbacks, "
                  "%d of %d callbacks followed another without it",
                  s_slow_back_to_back, ncb);
    /* lateness itself is the scheduler's on a loaded machine (324 ms was
     * seen under ASan beside benchmarks): only that it is measured, and is
     * at least what a 40 ms callback past a 10 ms interval must make */
    ck_assert_msg(st->max_timer_late_ms >= 30,
                  "expected the timer's lateness measured (>= 30 ms), got %llu ms",
                  (unsigned long long) st->max_timer_late_ms);
    ck_assert_msg(st->timer_skips >= (uint64_t) s_slow_timer.runs,
                  "expected skipped runs counted (~3 per run), got %llu skips for %d runs",
                  (unsigned long long) st->timer_skips, s_slow_timer.runs);
    ck_assert_uint_eq(st->callbacks, (uint64_t) ncb);
    ck_assert_int_ge(io[5].runs, 2);
    sl_loop_destroy(&loop);   /* frees the watches still registered */
    for (int i = 0; i < 6; i++)
        s_close(p[i]);
}
END_TEST

static void
s_zmq_recv(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    void **ctx = arg;   /* [0] = socket, [1] = s_count_t */
    s_count_t *c = ctx[1];
    char buf[16];
    c->runs++;
    c->revents = revents;
    ck_assert_int_eq(zmq_recv(ctx[0], buf, sizeof buf, ZMQ_DONTWAIT), 2);
}

START_TEST(zmq_socket_watch_runs_when_a_message_arrives)
{
    void *zctx = zmq_ctx_new();
    void *a = zmq_socket(zctx, ZMQ_PAIR), *b = zmq_socket(zctx, ZMQ_PAIR);
    ck_assert_int_eq(zmq_bind(b, "inproc://loop-test"), 0);
    ck_assert_int_eq(zmq_connect(a, "inproc://loop-test"), 0);
    sl_loop_t *loop = sl_loop_new();
    s_count_t c = { 0 };
    void *arg[2] = { b, &c };
    sl_loop_watch_t *w = sl_loop_watch_zmq(loop, b, SL_LOOP_IN, s_zmq_recv, arg);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(sl_loop_run_once(loop, 20), 0);
    ck_assert_int_eq(c.runs, 0);
    ck_assert_int_eq(zmq_send(a, "hi", 2, 0), 2);
    uint64_t t0 = sl_now_ms();
    ck_assert_int_eq(sl_loop_run_once(loop, 1000), 1);
    ck_assert_msg(sl_now_ms() - t0 < 500, "expected the message to wake the poll at once");
    ck_assert_int_eq(c.runs, 1);
    ck_assert_int_eq(c.revents, SL_LOOP_IN);
    sl_loop_unwatch(loop, &w);
    ck_assert_ptr_null(w);
    sl_loop_destroy(&loop);
    zmq_close(a);
    zmq_close(b);
    zmq_ctx_term(zctx);
}
END_TEST

enum { S_NPAIRS = 32 };

/* Reads one message per call: what is left must bring the callback back
 * without a new signal. */
static void
s_zmq_recv_one(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    (void) revents;
    void **ctx = arg;   /* [0] = socket, [1] = s_count_t */
    s_count_t *c = ctx[1];
    char buf[16];
    c->runs++;
    ck_assert_int_eq(zmq_recv(ctx[0], buf, sizeof buf, ZMQ_DONTWAIT), 2);
}

/* The loop asks a socket for ZMQ_EVENTS only when it may have something:
 * with 32 watched sockets and messages for one, three iterations cost a
 * handful of checks, not 32 each as zmq_poll's would. A message left
 * unread brings the callback back at once, one that arrives while the
 * watch is paused is delivered as soon as it is resumed, and a touch makes
 * the next iteration ask the socket. */
START_TEST(only_sockets_that_may_have_input_are_asked)
{
    void *zctx = zmq_ctx_new();
    void *tx[S_NPAIRS], *rx[S_NPAIRS];
    sl_loop_watch_t *w[S_NPAIRS];
    s_count_t c[S_NPAIRS];
    void *args[S_NPAIRS][2];
    sl_loop_t *loop = sl_loop_new();
    memset(c, 0, sizeof c);
    for (int i = 0; i < S_NPAIRS; i++) {
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://loop-checks-%d", i);
        tx[i] = zmq_socket(zctx, ZMQ_PAIR);
        rx[i] = zmq_socket(zctx, ZMQ_PAIR);
        ck_assert_int_eq(zmq_bind(rx[i], ep), 0);
        ck_assert_int_eq(zmq_connect(tx[i], ep), 0);
        args[i][0] = rx[i];
        args[i][1] = &c[i];
        w[i] = sl_loop_watch_zmq(loop, rx[i], SL_LOOP_IN, s_zmq_recv_one, args[i]);
        ck_assert_ptr_nonnull(w[i]);
    }
    /* new watches are asked once; nothing is there */
    ck_assert_int_eq(sl_loop_run_once(loop, 0), 0);
    const sl_loop_stats_t *st = sl_loop_stats(loop);
    ck_assert_uint_eq(st->socket_checks, S_NPAIRS);

    uint64_t before = st->socket_checks, t0 = sl_now_ms();
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(zmq_send(tx[5], "hi", 2, 0), 2);
    int iterations = 0;
    while (c[5].runs < 3 && iterations < 10) {
        ck_assert_int_ge(sl_loop_run_once(loop, 1000), 0);
        iterations++;
    }
    ck_assert_int_eq(c[5].runs, 3);
    ck_assert_msg(sl_now_ms() - t0 < 500, "unread messages must not wait for a timeout");
    /* one full pass may fall inside (every 10 ms), not one per iteration */
    uint64_t checks = st->socket_checks - before;
    ck_assert_msg(checks <= (uint64_t) iterations + S_NPAIRS,
                  "%llu checks in %d iterations of %d sockets", (unsigned long long) checks,
                  iterations, S_NPAIRS);
    for (int i = 0; i < S_NPAIRS; i++)
        if (i != 5)
            ck_assert_int_eq(c[i].runs, 0);

    /* paused: a message waits; resumed: it is delivered at once */
    sl_loop_watch_set(w[7], 0);
    ck_assert_int_eq(zmq_send(tx[7], "hi", 2, 0), 2);
    ck_assert_int_ge(sl_loop_run_once(loop, 50), 0);
    ck_assert_int_eq(c[7].runs, 0);
    sl_loop_watch_set(w[7], SL_LOOP_IN);
    t0 = sl_now_ms();
    for (int k = 0; k < 5 && c[7].runs == 0; k++)
        ck_assert_int_ge(sl_loop_run_once(loop, 1000), 0);
    ck_assert_int_eq(c[7].runs, 1);
    ck_assert_msg(sl_now_ms() - t0 < 500, "a resumed watch must be asked at once");

    /* a touch: the next iteration asks that socket */
    ck_assert_int_ge(sl_loop_run_once(loop, 0), 0);     /* everything cold again */
    before = st->socket_checks;
    sl_loop_watch_touch(w[9]);
    ck_assert_int_eq(sl_loop_run_once(loop, 0), 0);
    ck_assert_uint_ge(st->socket_checks - before, 1);

    sl_loop_destroy(&loop);
    for (int i = 0; i < S_NPAIRS; i++) {
        zmq_close(tx[i]);
        zmq_close(rx[i]);
    }
    zmq_ctx_term(zctx);
}
END_TEST

static void
s_pipe_read(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    void **ctx = arg;   /* [0] = &fd, [1] = s_count_t */
    s_count_t *c = ctx[1];
    char buf[16];
    c->runs++;
    c->revents = revents;
    ck_assert_int_ge(read(*(int *) ctx[0], buf, sizeof buf), 1);
}

START_TEST(fd_watch_runs_on_input_and_pausing_stops_it_until_resumed)
{
    sl_loop_t *loop = sl_loop_new();
    int p[2];
    s_pipe(p, 0);
    s_count_t c = { 0 };
    void *arg[2] = { &p[0], &c };
    sl_loop_watch_t *w = sl_loop_watch_fd(loop, p[0], SL_LOOP_IN, s_pipe_read, arg);
    ck_assert_int_eq(sl_loop_watch_events(w), SL_LOOP_IN);
    ck_assert_int_eq(sl_loop_run_once(loop, 10), 0);
    ck_assert_int_eq(write(p[1], "a", 1), 1);
    ck_assert_int_eq(sl_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(c.runs, 1);
    ck_assert_int_eq(c.revents, SL_LOOP_IN);

    sl_loop_watch_set(w, 0);
    ck_assert_int_eq(sl_loop_watch_events(w), 0);
    ck_assert_int_eq(write(p[1], "b", 1), 1);
    uint64_t t0 = sl_now_ms();
    ck_assert_int_eq(sl_loop_run_once(loop, 40), 0);
    ck_assert_msg(sl_now_ms() - t0 >= 35, "expected a paused watch not to wake the poll");
    ck_assert_int_eq(c.runs, 1);

    sl_loop_watch_set(w, SL_LOOP_IN);
    ck_assert_int_eq(sl_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(c.runs, 2);
    /* A change between two non-zero masks (IN -> IN|OUT -> IN) keeps the
     * watch polled. */
    ck_assert_int_eq(write(p[1], "c", 1), 1);
    sl_loop_watch_set(w, SL_LOOP_IN | SL_LOOP_OUT);
    sl_loop_watch_set(w, SL_LOOP_IN);
    ck_assert_int_eq(sl_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(c.runs, 3);
    sl_loop_destroy(&loop);
    s_close(p);
}
END_TEST

/* Removal and cancel from callbacks. */
typedef struct {
    sl_loop_watch_t *self, *other;
    sl_loop_timer_t *tself, *tother;
    sl_loop_timer_t **spawn;    /* if set: a timer callback adds after(0) here */
    void            *spawn_arg;
    int              runs;
} s_rm_t;

static void
s_unwatch_both(sl_loop_t *loop, void *arg, int revents)
{
    (void) revents;
    s_rm_t **rs = arg;   /* [0] = me, [1] = the other */
    rs[0]->runs++;
    sl_loop_unwatch(loop, &rs[1]->self);
    sl_loop_unwatch(loop, &rs[0]->self);
    ck_assert_ptr_null(rs[0]->self);
    ck_assert_ptr_null(rs[1]->self);
}

static void
s_other_io(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    (void) revents;
    s_rm_t **rs = arg;
    rs[0]->runs++;
}

static void s_never(sl_loop_t *loop, void *arg);

static void
s_cancel_timers(sl_loop_t *loop, void *arg)
{
    s_rm_t *r = arg;
    r->runs++;
    if (r->spawn)
        *r->spawn = sl_loop_after(loop, 0, s_never, r->spawn_arg);
    sl_loop_cancel(loop, &r->tother);
    sl_loop_cancel(loop, &r->tself);
}

static void
s_never(sl_loop_t *loop, void *arg)
{
    (void) loop;
    s_rm_t *r = arg;
    r->runs++;
}

static void
s_cancel_from_watch(sl_loop_t *loop, void *arg, int revents)
{
    (void) revents;
    s_rm_t *r = arg;
    r->runs++;
    ck_assert_ptr_nonnull(r->tother);
    sl_loop_cancel(loop, &r->tother);
    sl_loop_unwatch(loop, &r->self);
}

START_TEST(removal_and_cancel_from_inside_callbacks_are_safe)
{
    sl_loop_t *loop = sl_loop_new();
    int p[3][2];
    for (int i = 0; i < 3; i++)
        s_pipe(p[i], 1);

    /* Watch C (first in order) cancels T3, a timer due at the check that
     * follows C (T1 adds it with delay 0 during the first check, and a timer
     * added by a timer waits for the next check), and removes itself. */
    s_rm_t c = { 0 }, t3 = { 0 };
    c.self = sl_loop_watch_fd(loop, p[2][0], SL_LOOP_IN, s_cancel_from_watch, &c);

    /* Watch A removes B (ready in the same iteration, later in the order)
     * and then itself: B must not run. */
    s_rm_t a = { 0 }, b = { 0 };
    s_rm_t *ab[2] = { &a, &b }, *ba[2] = { &b, &a };
    a.self = sl_loop_watch_fd(loop, p[0][0], SL_LOOP_IN, s_unwatch_both, ab);
    b.self = sl_loop_watch_fd(loop, p[1][0], SL_LOOP_IN, s_other_io, ba);

    /* Timer T1 cancels T2 (due in the same check) and itself. */
    s_rm_t t1 = { 0 }, t2 = { 0 };
    t1.tself = sl_loop_every(loop, 1, 1, s_cancel_timers, &t1);
    t2.tself = sl_loop_every(loop, 1, 1, s_never, &t2);
    t1.tother = t2.tself;
    t1.spawn = &c.tother;
    t1.spawn_arg = &t3;

    usleep(2000);
    int ran = sl_loop_run_once(loop, 100);
    ck_assert_int_eq(a.runs, 1);
    ck_assert_msg(b.runs == 0, "expected a watch removed by another callback not to run");
    ck_assert_int_eq(t1.runs, 1);
    ck_assert_msg(t2.runs == 0, "expected a timer cancelled by another timer not to run");
    ck_assert_int_eq(c.runs, 1);
    ck_assert_msg(t3.runs == 0, "expected a due timer cancelled by a watch callback not to run");
    ck_assert_int_eq(ran, 3);   /* T1, C, A */
    ck_assert_ptr_null(c.self);

    /* Nothing left: the loop waits the whole time. */
    uint64_t t0 = sl_now_ms();
    ck_assert_int_eq(sl_loop_run_once(loop, 30), 0);
    ck_assert_uint_ge(sl_now_ms() - t0, 25);
    sl_loop_destroy(&loop);
    for (int i = 0; i < 3; i++)
        s_close(p[i]);
}
END_TEST

static void
s_one_shot_cancels_itself(sl_loop_t *loop, void *arg)
{
    s_rm_t *r = arg;
    r->runs++;
    sl_loop_cancel(loop, &r->tself);
}

START_TEST(one_shot_timer_runs_once)
{
    sl_loop_t *loop = sl_loop_new();
    s_count_t c = { 0 };
    uint64_t t0 = sl_now_ms();
    ck_assert_ptr_nonnull(sl_loop_after(loop, 20, s_count_timer, &c));
    s_rm_t r = { 0 };
    r.tself = sl_loop_after(loop, 5, s_one_shot_cancels_itself, &r);
    while (c.runs == 0 && sl_now_ms() - t0 < 1000)
        sl_loop_run_once(loop, 100);
    ck_assert_uint_ge(sl_now_ms() - t0, 20);
    s_run_for(loop, 60);
    ck_assert_int_eq(c.runs, 1);
    ck_assert_int_eq(r.runs, 1);
    ck_assert_ptr_null(r.tself);
    /* With no timer left, an iteration waits its whole max_wait. */
    t0 = sl_now_ms();
    sl_loop_run_once(loop, 30);
    ck_assert_uint_ge(sl_now_ms() - t0, 25);
    sl_loop_destroy(&loop);
}
END_TEST

static int
s_hook(sl_loop_t *loop, void *arg)
{
    (void) loop;
    int *more = arg;   /* [0] = return value, [1] = calls */
    more[1]++;
    return more[0];
}

START_TEST(before_sleep_hook_asking_for_more_makes_the_poll_not_wait)
{
    sl_loop_t *loop = sl_loop_new();
    int p[2];
    s_pipe(p, 0);
    s_count_t c = { 0 };
    sl_loop_watch_fd(loop, p[0], SL_LOOP_IN, s_count_io, &c);
    int more[2] = { 1, 0 };
    sl_loop_before_sleep(loop, s_hook, more);
    uint64_t t0 = sl_now_ms();
    ck_assert_int_eq(sl_loop_run_once(loop, 500), 0);
    uint64_t took = sl_now_ms() - t0;
    ck_assert_msg(took < 100, "expected run_once(500) not to wait when a hook asks, took %llu ms",
                  (unsigned long long) took);
    ck_assert_int_eq(more[1], 1);
    more[0] = 0;
    t0 = sl_now_ms();
    ck_assert_int_eq(sl_loop_run_once(loop, 60), 0);
    took = sl_now_ms() - t0;
    ck_assert_msg(took >= 55, "expected run_once(60) to wait when no hook asks, took %llu ms",
                  (unsigned long long) took);
    ck_assert_int_eq(more[1], 2);
    sl_loop_destroy(&loop);
    s_close(p);
}
END_TEST

static volatile sig_atomic_t s_stop;

static void
s_set_stop(sl_loop_t *loop, void *arg)
{
    (void) loop;
    (void) arg;
    s_stop = 1;
}

static void
s_break(sl_loop_t *loop, void *arg)
{
    (void) arg;
    sl_loop_break(loop);
}

/* wait_us counts the time spent waiting in poll(), not the time spent in
 * callbacks: a busy iteration adds nothing, a 30 ms wait about 30 ms. */
START_TEST(wait_time_counts_only_the_waiting)
{
    sl_loop_t *loop = sl_loop_new();
    int p[2];
    s_pipe(p, 1);
    s_count_t c = { .work_ms = 40 };
    sl_loop_watch_t *w = sl_loop_watch_fd(loop, p[0], SL_LOOP_IN, s_count_io, &c);
    const sl_loop_stats_t *st = sl_loop_stats(loop);
    /* ready at once: the callback busies 40 ms, the poll did not wait */
    ck_assert_int_ge(sl_loop_run_once(loop, 1000), 1);
    ck_assert_int_eq(c.runs, 1);
    ck_assert_msg(st->wait_us < 20000, "a busy iteration counted %llu us of waiting",
                  (unsigned long long) st->wait_us);
    uint64_t before = st->wait_us;
    sl_loop_unwatch(loop, &w);
    /* nothing ready: the whole 30 ms are waiting */
    ck_assert_int_eq(sl_loop_run_once(loop, 30), 0);
    ck_assert_msg(st->wait_us - before >= 25000, "a 30 ms wait counted %llu us",
                  (unsigned long long) (st->wait_us - before));
    /* a poll that is not allowed to wait adds nothing measurable */
    before = st->wait_us;
    for (int i = 0; i < 100; i++)
        sl_loop_run_once(loop, 0);
    ck_assert_uint_eq(st->wait_us, before);
    s_close(p);
    sl_loop_destroy(&loop);
}
END_TEST

START_TEST(run_stops_on_the_flag_and_on_break)
{
    sl_loop_t *loop = sl_loop_new();
    s_stop = 0;
    s_count_t tick = { 0 };
    sl_loop_every(loop, 5, 0, s_count_timer, &tick);
    sl_loop_after(loop, 50, s_set_stop, NULL);
    uint64_t t0 = sl_now_ms();
    ck_assert_int_eq(sl_loop_run(loop, &s_stop, 1000), 0);
    uint64_t took = sl_now_ms() - t0;
    ck_assert_msg(took >= 48 && took < 300, "expected run to stop at ~50 ms on the flag, took %llu",
                  (unsigned long long) took);
    ck_assert_int_ge(tick.runs, 5);

    /* break, with a long max_wait and no other timer due soon */
    sl_loop_t *loop2 = sl_loop_new();
    sl_loop_after(loop2, 30, s_break, NULL);
    sl_loop_every(loop2, 10000, 0, s_count_timer, &tick);
    t0 = sl_now_ms();
    ck_assert_int_eq(sl_loop_run(loop2, NULL, 5000), 0);
    took = sl_now_ms() - t0;
    ck_assert_msg(took >= 28 && took < 300, "expected run to stop at ~30 ms on break, took %llu",
                  (unsigned long long) took);
    sl_loop_destroy(&loop);
    sl_loop_destroy(&loop2);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    tcase_add_test(tc, periodic_timer_runs_at_its_interval_planned_from_the_previous_plan);
    tcase_add_test(tc, timer_stays_on_time_while_watch_callbacks_are_slow);
    tcase_add_test(tc, zmq_socket_watch_runs_when_a_message_arrives);
    tcase_add_test(tc, only_sockets_that_may_have_input_are_asked);
    tcase_add_test(tc, fd_watch_runs_on_input_and_pausing_stops_it_until_resumed);
    tcase_add_test(tc, removal_and_cancel_from_inside_callbacks_are_safe);
    tcase_add_test(tc, one_shot_timer_runs_once);
    tcase_add_test(tc, before_sleep_hook_asking_for_more_makes_the_poll_not_wait);
    tcase_add_test(tc, run_stops_on_the_flag_and_on_break);
    tcase_add_test(tc, wait_time_counts_only_the_waiting);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
