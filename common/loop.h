/* loop — the one event loop of a worker process.
 *
 * ZeroMQ sockets and plain file descriptors (an AMQP connection, an HTTP
 * client, a pipe, an eventfd, a regular file) are watched in one poll()
 * (a socket through its ZMQ_FD, then ZMQ_EVENTS: see loop.c); timers run "every N ms" (heartbeat, lease renewal, retention
 * flush, stats) or once after N ms; a before-sleep hook runs before the loop
 * would wait, and may say there is more work (then the loop polls without
 * waiting).
 *
 * Order of one iteration (sl_loop_run_once): due timers; before-sleep
 * hooks; poll (timeout = time to the next timer, 0 if a hook asked, at most
 * max_wait_ms); one callback per ready watch, with due timers checked again
 * after every callback, so a timer is late by at most one callback's
 * duration whatever the watches do. A callback is expected to do a bounded
 * amount of work (a read budget) and return. Periodic timers keep their
 * schedule: the next run is planned from the previous plan, not from when
 * the callback finished; runs missed while the loop was busy are skipped,
 * not queued (counted in sl_loop_stats()->timer_skips).
 *
 * Callbacks may add and remove watches and timers, including their own
 * (what is removed is freed when the iteration ends; a removed watch or
 * cancelled timer is not called again, even if it was ready). A timer
 * added by a timer callback runs at the earliest at the next check; each
 * timer runs at most once per check, so a check always ends.
 * Time is CLOCK_MONOTONIC in ms (sl_now_ms), read at each timer check
 * (sl_loop_now). The loop owns its watches and timers (the handles);
 * sockets and descriptors stay the caller's. Any worker process; one loop
 * per thread; not thread-safe; do not destroy it from inside a callback. */
#ifndef SL_LOOP_H
#define SL_LOOP_H

#include <signal.h>
#include <stdint.h>

#define SL_LOOP_IN  1
#define SL_LOOP_OUT 2
#define SL_LOOP_ERR 4

typedef struct sl_loop sl_loop_t;
typedef struct sl_loop_watch sl_loop_watch_t;
typedef struct sl_loop_timer sl_loop_timer_t;

/* revents: SL_LOOP_IN/OUT that are ready and asked for; SL_LOOP_ERR
 * (descriptor error or hang-up) is reported to any watch that is not paused,
 * asked for or not. */
typedef void (*sl_loop_io_fn)(sl_loop_t *loop, void *arg, int revents);
typedef void (*sl_loop_timer_fn)(sl_loop_t *loop, void *arg);
/* Returns 1 if there is work left that does not depend on a watch (poll
 * without waiting), else 0. */
typedef int (*sl_loop_hook_fn)(sl_loop_t *loop, void *arg);

typedef struct {
    uint64_t iterations;
    uint64_t callbacks;        /* watch callbacks run */
    uint64_t timer_runs;
    uint64_t timer_skips;      /* periodic runs skipped because the loop was late */
    uint64_t max_timer_late_ms; /* worst lateness of a timer run */
    uint64_t socket_checks;    /* ZMQ_EVENTS asked of a socket (loop.c: hot sockets only) */
    uint64_t wait_us;          /* time spent waiting in poll() (an idle loop's) */
} sl_loop_stats_t;

sl_loop_t *sl_loop_new(void);
void sl_loop_destroy(sl_loop_t **loop_p);

/* Watches a ZeroMQ socket (sock) or a descriptor (fd) for events
 * (SL_LOOP_IN|SL_LOOP_OUT; 0 = registered but not polled, as when paused).
 * The handle stays valid until removed. */
sl_loop_watch_t *sl_loop_watch_zmq(sl_loop_t *loop, void *sock, int events, sl_loop_io_fn fn,
                                   void *arg);
sl_loop_watch_t *sl_loop_watch_fd(sl_loop_t *loop, int fd, int events, sl_loop_io_fn fn,
                                  void *arg);
void sl_loop_watch_set(sl_loop_watch_t *w, int events);
int sl_loop_watch_events(const sl_loop_watch_t *w);
/* After a send or receive on a watched socket outside the watch's own
 * callback (libzmq may then consume the signal that would have woken the
 * loop for it): the loop asks the socket for its events next iteration. A
 * missed touch delays the socket's callback by up to 10 ms (when the loop
 * is idle, until its next wakeup). */
void sl_loop_watch_touch(sl_loop_watch_t *w);
/* Removes and frees the watch; *w_p = NULL. Safe inside its own callback. */
void sl_loop_unwatch(sl_loop_t *loop, sl_loop_watch_t **w_p);

/* Runs fn every interval_ms (first run interval_ms from now; first_now = 1
 * runs it at the next iteration). */
sl_loop_timer_t *sl_loop_every(sl_loop_t *loop, unsigned interval_ms, int first_now,
                               sl_loop_timer_fn fn, void *arg);
/* Runs fn once, delay_ms from now; the timer is freed after it ran (do not
 * cancel it then, except from inside its own callback, where it is safe). */
sl_loop_timer_t *sl_loop_after(sl_loop_t *loop, unsigned delay_ms, sl_loop_timer_fn fn,
                               void *arg);
/* Changes a periodic timer's interval; its next run is re-planned as the
 * previous plan (or the time it was added) + interval_ms. No-op on a
 * one-shot timer. interval 0 is taken as 1 (also in sl_loop_every). */
void sl_loop_timer_interval(sl_loop_timer_t *t, unsigned interval_ms);
/* Cancels and frees; *t_p = NULL. Safe inside its own callback. */
void sl_loop_cancel(sl_loop_t *loop, sl_loop_timer_t **t_p);

/* Adds a before-sleep hook (called in the order added). */
void sl_loop_before_sleep(sl_loop_t *loop, sl_loop_hook_fn fn, void *arg);
/* Removes the hook added with fn and arg (none: nothing happens). */
void sl_loop_before_sleep_remove(sl_loop_t *loop, sl_loop_hook_fn fn, void *arg);

/* One iteration, waiting at most max_wait_ms (< 0: only until the next
 * timer, or forever). Returns the number of callbacks (watches and timers)
 * run, or -1 if zmq_poll failed other than by EINTR (errno set). */
int sl_loop_run_once(sl_loop_t *loop, int max_wait_ms);
/* Iterates until sl_loop_break() or until stop_flag (may be NULL) is set;
 * max_wait_ms bounds each wait so signal flags are seen. Returns 0, or -1
 * if an iteration failed (errno set). sl_loop_break() called from inside
 * also makes the current iteration poll without waiting. */
int sl_loop_run(sl_loop_t *loop, volatile sig_atomic_t *stop_flag, int max_wait_ms);
void sl_loop_break(sl_loop_t *loop);

uint64_t sl_loop_now(const sl_loop_t *loop);
const sl_loop_stats_t *sl_loop_stats(const sl_loop_t *loop);

#endif
