/* loop — see loop.h for the contract.
 *
 * Memory: watches and timers are separate allocations whose addresses are
 * the handles. While an iteration runs (depth > 0), removed watches and
 * cancelled or finished timers are not freed but moved to a graveyard that
 * is emptied when the iteration ends: the pollitem array, the dispatch loop
 * and the timer pass may still hold their addresses, and a dead mark tells
 * them to skip. Outside an iteration they are freed at once.
 *
 * Hot path: the pollfd array is rebuilt only when the watch set changes
 * or a watch is paused/resumed (a change between two non-zero event masks
 * is written in place); arrays grow by doubling and are never shrunk, so
 * a steady-state iteration allocates nothing. Timers are a sorted array
 * (there are few); a pass scans it from the front.
 *
 * ZeroMQ sockets are not polled with zmq_poll: it asks every socket for
 * ZMQ_EVENTS on every call, and for a socket with nothing pending that is
 * a getpid() and a poll() system call inside libzmq. A pipeline worker
 * holding 16 partitions paid 34 such pairs per iteration, about half its
 * CPU (strace: 107,681 poll and 113,496 getpid calls for 200,000
 * notifications). Instead the loop polls each socket's ZMQ_FD, which
 * becomes readable when the socket's command mailbox receives something
 * (a peer's first message into an empty pipe, room in a full one), and
 * asks ZMQ_EVENTS only of a "hot" socket: its descriptor fired, its
 * callback ran in the previous iteration (it may not have read all), its
 * events were just changed, or sl_loop_watch_touch() says a send or
 * receive outside its callback may have taken the descriptor's signal
 * (libzmq's documented rule for ZMQ_FD). A socket goes cold when
 * ZMQ_EVENTS shows nothing it asked for. As a safety net every socket is
 * asked at least every S_FULL_CHECK_MS while the loop is busy, and on the
 * first iteration after a sleep that long. */
#include "common/loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/stats.h"

/* Longest a busy loop goes without asking every socket for ZMQ_EVENTS. */
#define S_FULL_CHECK_MS 10

struct sl_loop_watch {
    sl_loop_t       *loop;
    void            *sock;     /* ZeroMQ socket, or NULL for a descriptor */
    int              fd;
    int              events;   /* SL_LOOP_IN|SL_LOOP_OUT, 0 = paused */
    int              item;     /* index in loop->pfds, -1 if not polled */
    int              hot;      /* ZeroMQ: ask ZMQ_EVENTS this iteration */
    int              dead;
    sl_loop_io_fn    fn;
    void            *arg;
    sl_loop_watch_t *next_dead;
};

struct sl_loop_timer {
    sl_loop_t        *loop;
    uint64_t          due;      /* planned time of the next run */
    uint64_t          prev;     /* planned time of the previous run (or creation) */
    unsigned          interval; /* 0 = one-shot */
    uint64_t          pass;     /* last timer pass it ran in (or was created in) */
    int               linked;   /* in loop->timers */
    int               dead;
    sl_loop_timer_fn  fn;
    void             *arg;
    sl_loop_timer_t  *next_dead;
};

typedef struct {
    sl_loop_hook_fn fn;
    void           *arg;
} s_hook_t;

struct sl_loop {
    sl_loop_watch_t **watches;  /* in the order added */
    size_t            n_watches, cap_watches;
    struct pollfd    *pfds;     /* the active watches, rebuilt when dirty */
    sl_loop_watch_t **item_w;   /* pfds[i] belongs to item_w[i] */
    size_t            n_items, cap_items, cap_item_w;
    uint64_t          full_check;   /* when every socket was last asked */
    int               dirty;
    sl_loop_timer_t **timers;   /* sorted by due, ties in order of planning */
    size_t            n_timers, cap_timers;
    s_hook_t         *hooks;
    size_t            n_hooks, cap_hooks;
    sl_loop_watch_t  *dead_watches;
    sl_loop_timer_t  *dead_timers;
    int               depth;    /* > 0 while an iteration runs */
    int               running;  /* inside sl_loop_run */
    int               broken;
    uint64_t          pass;
    uint64_t          now;
    sl_loop_stats_t   stats;
};

/* Grows *arr (of elem-sized entries) to hold at least need; 0 or -1. */
static int
s_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

sl_loop_t *
sl_loop_new(void)
{
    sl_loop_t *loop = calloc(1, sizeof *loop);
    if (loop)
        loop->now = sl_now_ms();
    return loop;
}

static void
s_bury_flush(sl_loop_t *loop)
{
    while (loop->dead_watches) {
        sl_loop_watch_t *w = loop->dead_watches;
        loop->dead_watches = w->next_dead;
        free(w);
    }
    while (loop->dead_timers) {
        sl_loop_timer_t *t = loop->dead_timers;
        loop->dead_timers = t->next_dead;
        free(t);
    }
}

void
sl_loop_destroy(sl_loop_t **loop_p)
{
    if (!loop_p || !*loop_p)
        return;
    sl_loop_t *loop = *loop_p;
    s_bury_flush(loop);
    for (size_t i = 0; i < loop->n_watches; i++)
        free(loop->watches[i]);
    for (size_t i = 0; i < loop->n_timers; i++)
        free(loop->timers[i]);
    free(loop->watches);
    free(loop->pfds);
    free(loop->item_w);
    free(loop->timers);
    free(loop->hooks);
    free(loop);
    *loop_p = NULL;
}

/* What pfds[] asks for a watch: a socket's ZMQ_FD is only ever readable. */
static short
s_poll_events(const sl_loop_watch_t *w)
{
    if (w->sock)
        return POLLIN;
    return (short) ((w->events & SL_LOOP_IN ? POLLIN : 0) | (w->events & SL_LOOP_OUT ? POLLOUT : 0));
}

static sl_loop_watch_t *
s_watch_add(sl_loop_t *loop, void *sock, int fd, int events, sl_loop_io_fn fn, void *arg)
{
    if (!loop || !fn)
        return NULL;
    if (s_grow((void **) &loop->watches, &loop->cap_watches, loop->n_watches + 1,
               sizeof *loop->watches) < 0)
        return NULL;
    sl_loop_watch_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->loop = loop;
    w->sock = sock;
    w->fd = fd;
    w->events = events & (SL_LOOP_IN | SL_LOOP_OUT);
    w->item = -1;
    w->hot = 1;
    w->fn = fn;
    w->arg = arg;
    loop->watches[loop->n_watches++] = w;
    loop->dirty = 1;
    return w;
}

sl_loop_watch_t *
sl_loop_watch_zmq(sl_loop_t *loop, void *sock, int events, sl_loop_io_fn fn, void *arg)
{
    if (!sock)
        return NULL;
    int fd = -1;
    size_t len = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) < 0 || fd < 0)
        return NULL;
    return s_watch_add(loop, sock, fd, events, fn, arg);
}

sl_loop_watch_t *
sl_loop_watch_fd(sl_loop_t *loop, int fd, int events, sl_loop_io_fn fn, void *arg)
{
    if (fd < 0)
        return NULL;
    return s_watch_add(loop, NULL, fd, events, fn, arg);
}

void
sl_loop_watch_set(sl_loop_watch_t *w, int events)
{
    if (!w || w->dead)
        return;
    events &= SL_LOOP_IN | SL_LOOP_OUT;
    if (events == w->events)
        return;
    /* Between two non-zero masks the polled entry is updated in place. A
     * paused watch is left out of the poll altogether: poll reports
     * POLLHUP/POLLERR on a descriptor even with no events asked, which would
     * wake the loop for a watch that must not be called. A socket is asked
     * again: what it holds raised no signal while it was not asked for. */
    int in_place = events && w->events && w->item >= 0 && !w->loop->dirty;
    w->events = events;
    w->hot = 1;
    if (in_place)
        w->loop->pfds[w->item].events = s_poll_events(w);
    else
        w->loop->dirty = 1;
}

void
sl_loop_watch_touch(sl_loop_watch_t *w)
{
    if (w && !w->dead)
        w->hot = 1;
}

int
sl_loop_watch_events(const sl_loop_watch_t *w)
{
    return w && !w->dead ? w->events : 0;
}

void
sl_loop_unwatch(sl_loop_t *loop, sl_loop_watch_t **w_p)
{
    if (!loop || !w_p || !*w_p)
        return;
    sl_loop_watch_t *w = *w_p;
    *w_p = NULL;
    if (w->dead)
        return;
    for (size_t i = 0; i < loop->n_watches; i++) {
        if (loop->watches[i] == w) {
            memmove(&loop->watches[i], &loop->watches[i + 1],
                    (loop->n_watches - i - 1) * sizeof *loop->watches);
            loop->n_watches--;
            break;
        }
    }
    w->dead = 1;
    loop->dirty = 1;
    if (loop->depth > 0) {
        w->next_dead = loop->dead_watches;
        loop->dead_watches = w;
    } else {
        free(w);
    }
}

/* Inserts t by its due time, after timers due at the same time. */
static void
s_timer_link(sl_loop_t *loop, sl_loop_timer_t *t)
{
    size_t i = loop->n_timers;
    while (i > 0 && loop->timers[i - 1]->due > t->due) {
        loop->timers[i] = loop->timers[i - 1];
        i--;
    }
    loop->timers[i] = t;
    loop->n_timers++;
    t->linked = 1;
}

static void
s_timer_unlink(sl_loop_t *loop, sl_loop_timer_t *t)
{
    for (size_t i = 0; i < loop->n_timers; i++) {
        if (loop->timers[i] == t) {
            memmove(&loop->timers[i], &loop->timers[i + 1],
                    (loop->n_timers - i - 1) * sizeof *loop->timers);
            loop->n_timers--;
            break;
        }
    }
    t->linked = 0;
}

static void
s_timer_bury(sl_loop_t *loop, sl_loop_timer_t *t)
{
    t->dead = 1;
    if (loop->depth > 0) {
        t->next_dead = loop->dead_timers;
        loop->dead_timers = t;
    } else {
        free(t);
    }
}

static sl_loop_timer_t *
s_timer_add(sl_loop_t *loop, unsigned interval, uint64_t delay, sl_loop_timer_fn fn, void *arg)
{
    if (!loop || !fn)
        return NULL;
    if (s_grow((void **) &loop->timers, &loop->cap_timers, loop->n_timers + 1,
               sizeof *loop->timers) < 0)
        return NULL;
    sl_loop_timer_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    uint64_t now = sl_now_ms();
    t->loop = loop;
    t->interval = interval;
    t->prev = now;
    t->due = now + delay;
    t->pass = loop->pass;   /* not run by the pass that is creating it */
    t->fn = fn;
    t->arg = arg;
    s_timer_link(loop, t);
    return t;
}

sl_loop_timer_t *
sl_loop_every(sl_loop_t *loop, unsigned interval_ms, int first_now, sl_loop_timer_fn fn,
              void *arg)
{
    if (interval_ms == 0)
        interval_ms = 1;
    sl_loop_timer_t *t = s_timer_add(loop, interval_ms, first_now ? 0 : interval_ms, fn, arg);
    if (t && first_now)
        t->prev = t->due - interval_ms;
    return t;
}

sl_loop_timer_t *
sl_loop_after(sl_loop_t *loop, unsigned delay_ms, sl_loop_timer_fn fn, void *arg)
{
    return s_timer_add(loop, 0, delay_ms, fn, arg);
}

void
sl_loop_timer_interval(sl_loop_timer_t *t, unsigned interval_ms)
{
    if (!t || t->dead || t->interval == 0)
        return;
    if (interval_ms == 0)
        interval_ms = 1;
    t->interval = interval_ms;
    if (t->linked) {
        sl_loop_t *loop = t->loop;
        s_timer_unlink(loop, t);
        t->due = t->prev + interval_ms;
        s_timer_link(loop, t);
    }
}

void
sl_loop_cancel(sl_loop_t *loop, sl_loop_timer_t **t_p)
{
    if (!loop || !t_p || !*t_p)
        return;
    sl_loop_timer_t *t = *t_p;
    *t_p = NULL;
    if (t->dead)
        return;
    if (t->linked)
        s_timer_unlink(loop, t);
    s_timer_bury(loop, t);
}

void
sl_loop_before_sleep(sl_loop_t *loop, sl_loop_hook_fn fn, void *arg)
{
    if (!loop || !fn)
        return;
    if (s_grow((void **) &loop->hooks, &loop->cap_hooks, loop->n_hooks + 1,
               sizeof *loop->hooks) < 0)
        return;
    loop->hooks[loop->n_hooks].fn = fn;
    loop->hooks[loop->n_hooks].arg = arg;
    loop->n_hooks++;
}

void
sl_loop_before_sleep_remove(sl_loop_t *loop, sl_loop_hook_fn fn, void *arg)
{
    for (size_t i = 0; loop && i < loop->n_hooks; i++)
        if (loop->hooks[i].fn == fn && loop->hooks[i].arg == arg) {
            memmove(&loop->hooks[i], &loop->hooks[i + 1],
                    (loop->n_hooks - i - 1) * sizeof *loop->hooks);
            loop->n_hooks--;
            return;
        }
}

/* Runs every due timer once. A timer runs at most once per pass and timers
 * created during the pass wait for the next one, so a pass ends even when
 * timer callbacks take longer than their intervals. Returns the runs. */
static int
s_run_timers(sl_loop_t *loop)
{
    int ran = 0;
    uint64_t pass = ++loop->pass;
    loop->now = sl_now_ms();
    size_t i = 0;
    while (i < loop->n_timers && loop->timers[i]->due <= loop->now) {
        sl_loop_timer_t *t = loop->timers[i];
        if (t->pass == pass) {
            i++;
            continue;
        }
        t->pass = pass;
        s_timer_unlink(loop, t);
        uint64_t late = loop->now - t->due;
        if (late > loop->stats.max_timer_late_ms)
            loop->stats.max_timer_late_ms = late;
        if (t->interval) {
            /* Plan from the plan: runs whose time has also passed are
             * skipped (this run stands for them), not queued. */
            uint64_t missed = late / t->interval;
            loop->stats.timer_skips += missed;
            t->prev = t->due + missed * t->interval;
            t->due = t->prev + t->interval;
            s_timer_link(loop, t);
        }
        loop->stats.timer_runs++;
        ran++;
        t->fn(loop, t->arg);
        if (!t->interval && !t->dead)
            s_timer_bury(loop, t);
        loop->now = sl_now_ms();
        i = 0;
    }
    return ran;
}

/* Makes pfds[] hold the watches that are not paused; allocates only when
 * more watches are active than ever before. */
static int
s_rebuild(sl_loop_t *loop)
{
    if (s_grow((void **) &loop->pfds, &loop->cap_items, loop->n_watches,
               sizeof *loop->pfds) < 0)
        return -1;
    if (s_grow((void **) &loop->item_w, &loop->cap_item_w, loop->n_watches,
               sizeof *loop->item_w) < 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < loop->n_watches; i++) {
        sl_loop_watch_t *w = loop->watches[i];
        w->item = -1;
        if (!w->events)
            continue;
        struct pollfd *it = &loop->pfds[n];
        it->fd = w->fd;
        it->events = s_poll_events(w);
        it->revents = 0;
        loop->item_w[n] = w;
        w->item = (int) n;
        n++;
    }
    loop->n_items = n;
    loop->dirty = 0;
    return 0;
}

int
sl_loop_run_once(sl_loop_t *loop, int max_wait_ms)
{
    int ran = 0, rc = 0;
    loop->depth++;
    loop->stats.iterations++;
    ran += s_run_timers(loop);

    int more = 0;
    for (size_t i = 0; i < loop->n_hooks; i++)
        if (loop->hooks[i].fn(loop, loop->hooks[i].arg))
            more = 1;

    if (loop->dirty && s_rebuild(loop) < 0) {
        errno = ENOMEM;
        rc = -1;
        goto out;
    }

    /* Sockets to ask this iteration: the hot ones, or all of them when
     * the last full check is S_FULL_CHECK_MS old (busy all that time, or
     * the first iteration after sleeping that long) */
    loop->now = sl_now_ms();
    int hot = 0;
    if (loop->now - loop->full_check >= S_FULL_CHECK_MS) {
        for (size_t i = 0; i < loop->n_items; i++)
            if (loop->item_w[i]->sock)
                loop->item_w[i]->hot = 1;
        loop->full_check = loop->now;
    }
    for (size_t i = 0; i < loop->n_items && !hot; i++)
        hot = loop->item_w[i]->sock && loop->item_w[i]->hot;

    long timeout = max_wait_ms;
    if (more || hot || (loop->running && loop->broken)) {
        timeout = 0;
    } else if (loop->n_timers > 0) {
        uint64_t due = loop->timers[0]->due;
        long until = due > loop->now ? (long) (due - loop->now) : 0;
        if (timeout < 0 || until < timeout)
            timeout = until;
    }
    uint64_t t0 = timeout ? sl_now_us() : 0;
    int n = poll(loop->pfds, (nfds_t) loop->n_items, (int) timeout);
    if (timeout)
        loop->stats.wait_us += sl_now_us() - t0;
    if (n < 0) {
        if (errno != EINTR)
            rc = -1;
        goto out;
    }
    for (size_t i = 0; i < loop->n_items; i++) {
        short re = loop->pfds[i].revents;
        sl_loop_watch_t *w = loop->item_w[i];
        /* Removed or paused by an earlier callback of this iteration, or
         * switched to events that are not the ones ready. */
        if (w->dead || !w->events)
            continue;
        int rev;
        if (w->sock) {
            if (re & POLLIN)
                w->hot = 1;
            if (!w->hot)
                continue;
            int zev = 0;
            size_t zlen = sizeof zev;
            if (zmq_getsockopt(w->sock, ZMQ_EVENTS, &zev, &zlen) < 0)
                zev = 0;
            loop->stats.socket_checks++;
            rev = ((zev & ZMQ_POLLIN ? SL_LOOP_IN : 0) | (zev & ZMQ_POLLOUT ? SL_LOOP_OUT : 0))
                  & w->events;
            if (!rev) {
                w->hot = 0;     /* its descriptor signals what comes next */
                continue;
            }
            /* stays hot: the callback may leave messages for the next
             * iteration (a read budget) */
        } else {
            if (!re)
                continue;
            rev = ((re & POLLIN ? SL_LOOP_IN : 0) | (re & POLLOUT ? SL_LOOP_OUT : 0)) & w->events;
            if (re & ~(POLLIN | POLLOUT | POLLPRI))
                rev |= SL_LOOP_ERR;
            if (!rev)
                continue;
        }
        w->fn(loop, w->arg, rev);
        loop->stats.callbacks++;
        ran++;
        ran += s_run_timers(loop);
    }
out:
    loop->depth--;
    if (loop->depth == 0)
        s_bury_flush(loop);
    return rc < 0 ? -1 : ran;
}

int
sl_loop_run(sl_loop_t *loop, volatile sig_atomic_t *stop_flag, int max_wait_ms)
{
    int rc = 0;
    loop->broken = 0;
    loop->running = 1;
    while (!loop->broken && !(stop_flag && *stop_flag)) {
        if (sl_loop_run_once(loop, max_wait_ms) < 0) {
            rc = -1;
            break;
        }
    }
    loop->running = 0;
    loop->broken = 0;
    return rc;
}

void
sl_loop_break(sl_loop_t *loop)
{
    loop->broken = 1;
}

uint64_t
sl_loop_now(const sl_loop_t *loop)
{
    return loop->now;
}

const sl_loop_stats_t *
sl_loop_stats(const sl_loop_t *loop)
{
    return &loop->stats;
}
