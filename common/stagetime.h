/* stagetime — sampled per-stage timing and the latency histogram's maths.
 *
 * A worker handles units (an ingest worker: notifications; a pipeline
 * worker: frames). One unit in `period` is timed whole with
 * CLOCK_MONOTONIC (vDSO, ~20 ns a reading): its stages' busy wall times,
 * multiplied by the period, are added to the worker's slot (stage_ns), so
 * the totals estimate every unit's time without timing each. Inside a
 * timed unit, sections (transform, publish) are timed separately and
 * subtracted from the unit's current stage. Work that does not happen per
 * unit (ZeroMQ sends of whole frames, a publisher's queued calls: "direct"
 * timings) is timed inside a timed unit and subtracted from it, so nothing
 * is counted twice, and sampled elsewhere; a publisher thread's calls are
 * timed each.
 *
 * The latency histogram: bucket i < 4 holds the value i; above, four
 * buckets per power of two, so a bucket is at most a quarter of its lower
 * bound wide; percentiles interpolate linearly within a bucket.
 *
 * The timer state is owned by one thread of one worker (the loop's); the
 * slot it adds to is written with atomic adds (a publisher thread adds
 * direct timings with sl_stagetime_add). Pure: no global state here (the
 * worker's instance is in worker/stagetime.h). Any process.
 *
 * The clock: CLOCK_THREAD_CPUTIME_ID by default, the worker thread's CPU
 * time (a system call of ~0.8 µs on the project's VM: hence 1 unit in 32);
 * ZeroMQ's I/O thread is in no stage. CLOCK_MONOTONIC (busy wall, ~0.1 µs
 * through the vDSO) also counts what the scheduler takes away: on a loaded
 * host its stages add up to more than the CPU used. */
#ifndef SL_STAGETIME_H
#define SL_STAGETIME_H

#include <stdint.h>
#include <time.h>
#include "common/stats.h"

#define SL_STAGETIME_PERIOD 32     /* default: time 1 unit in 32 */
#define SL_STAGETIME_DIRECT 8      /* direct timings outside a timed unit: 1 in 8 */

typedef struct {
    sl_slot_t *slot;         /* NULL = off */
    unsigned period;         /* 0 = off */
    clockid_t clock;         /* CLOCK_MONOTONIC (busy wall) or CLOCK_THREAD_CPUTIME_ID */
    uint64_t units;          /* units finished so far */
    unsigned phase;          /* units % period, kept without a division */
    int in_unit;             /* between begin and end (timed or not) */
    int active;              /* the current unit is timed */
    int cur;                 /* its current stage */
    uint64_t t_prev;         /* when its current stage started */
    uint64_t mark;           /* when the next unit's read started (0 = unknown) */
    uint64_t excl;           /* ns of sections timed inside the unit's current stage */
    uint64_t direct;         /* ns of every direct timing so far */
    uint64_t direct_snap;    /* direct when the unit's current stage started */
    uint64_t sec_t0, sec_direct;
    uint64_t read_us, read_unit; /* sl_stagetime_read_us's cache: wall time, units + 1 */
    unsigned dcount;         /* direct timings asked for outside a timed unit */
} sl_stagetime_t;

/* Starts timing into slot with period (0 = off) on clock. */
void sl_stagetime_init(sl_stagetime_t *st, sl_slot_t *slot, unsigned period, clockid_t clock);

static inline uint64_t
sl_stagetime_now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Adds ns (already scaled) to stage of slot, and `timed` timings. */
static inline void
sl_stagetime_add(sl_slot_t *slot, int stage, uint64_t ns, uint64_t timed)
{
    atomic_fetch_add_explicit(&slot->stage_ns[stage], ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot->stage_timed[stage], timed, memory_order_relaxed);
}

/* Whether the next unit is timed. */
static inline int
sl_stagetime_next_timed(const sl_stagetime_t *st)
{
    return st->period && st->phase == 0;
}

/* Before reading the next unit (a source read starts): remember when, if
 * it will be timed. */
static inline void
sl_stagetime_mark(sl_stagetime_t *st)
{
    if (sl_stagetime_next_timed(st))
        st->mark = sl_stagetime_now(st->clock);
}

/* A unit begins, in stage `first`; if `read` >= 0 and the read was marked,
 * the time since the mark goes to stage `read` (a mark older than 50 ms is
 * idle time, not reading: dropped). */
static inline void
sl_stagetime_begin(sl_stagetime_t *st, int read, int first)
{
    st->in_unit = 1;
    if (!sl_stagetime_next_timed(st))
        return;
    uint64_t t = sl_stagetime_now(st->clock);
    if (read >= 0 && st->mark && t - st->mark < 50000000u)
        sl_stagetime_add(st->slot, read, (t - st->mark) * st->period, 1);
    st->mark = 0;
    st->active = 1;
    st->cur = first;
    st->t_prev = t;
    st->excl = 0;
    st->direct_snap = st->direct;
}

static inline void
s_stagetime_close(sl_stagetime_t *st, uint64_t t)
{
    uint64_t busy = t - st->t_prev, minus = st->excl + (st->direct - st->direct_snap);
    sl_stagetime_add(st->slot, st->cur, (busy > minus ? busy - minus : 0) * st->period, 1);
    st->t_prev = t;
    st->excl = 0;
    st->direct_snap = st->direct;
}

/* The timed unit's current stage ends; `next` begins. */
static inline void
sl_stagetime_lap(sl_stagetime_t *st, int next)
{
    if (!st->active)
        return;
    s_stagetime_close(st, sl_stagetime_now(st->clock));
    st->cur = next;
}

/* The unit ends. mark_next: what follows is the next unit's read (a source
 * that delivers in a loop), marked if that unit will be timed. */
static inline void
sl_stagetime_end(sl_stagetime_t *st, int mark_next)
{
    st->in_unit = 0;
    st->units++;
    if (!st->period)
        return;
    if (++st->phase == st->period)
        st->phase = 0;
    uint64_t t = 0;
    if (st->active) {
        t = sl_stagetime_now(st->clock);
        s_stagetime_close(st, t);
        st->active = 0;
    }
    if (mark_next && sl_stagetime_next_timed(st))
        st->mark = t ? t : sl_stagetime_now(st->clock);
}

/* CLOCK_REALTIME microseconds, read once per unit (the first call in it):
 * when the unit's first frame opened, a few µs after its read. */
static inline uint64_t
sl_stagetime_read_us(sl_stagetime_t *st)
{
    if (st->read_unit != st->units + 1) {
        st->read_unit = st->units + 1;
        st->read_us = sl_wall_us();
    }
    return st->read_us;
}

/* Between units (nothing more to read now): a unit begun and not ended is
 * forgotten, untimed. */
static inline void
sl_stagetime_idle(sl_stagetime_t *st)
{
    st->in_unit = 0;
    st->active = 0;
}

/* A section (a stage inside a unit): timed if the unit is, or timed
 * directly when it runs outside any unit (a timer's work); skipped inside
 * a unit that is not timed. Returns the start for sl_stagetime_sec_end
 * (0 = not timed). */
static inline uint64_t
sl_stagetime_sec_begin(sl_stagetime_t *st)
{
    if (!st->period || (st->in_unit && !st->active))
        return 0;
    st->sec_direct = st->direct;
    return st->sec_t0 = sl_stagetime_now(st->clock);
}

static inline void
sl_stagetime_sec_end(sl_stagetime_t *st, int stage, uint64_t t0)
{
    if (!t0)
        return;
    uint64_t d = sl_stagetime_now(st->clock) - t0, inner = st->direct - st->sec_direct;
    d = d > inner ? d - inner : 0;
    if (st->active) {
        sl_stagetime_add(st->slot, stage, d * st->period, 1);
        st->excl += d;
    } else {
        sl_stagetime_add(st->slot, stage, d, 1);
        st->direct += d;
    }
}

/* Direct timing of work that is not per unit (a frame's send, a queued
 * publish): inside a timed unit always, unscaled, and subtracted from the
 * unit; elsewhere 1 in SL_STAGETIME_DIRECT, scaled by it. Both estimate the
 * total without bias: a timed unit's own work is counted once, with
 * weight 1, and everything else is sampled. */
static inline uint64_t
sl_stagetime_direct_begin(sl_stagetime_t *st)
{
    if (!st->period || (!st->active && st->dcount++ % SL_STAGETIME_DIRECT != 0))
        return 0;
    return sl_stagetime_now(st->clock);
}

static inline void
sl_stagetime_direct_end(sl_stagetime_t *st, int stage, uint64_t t0)
{
    if (!t0)
        return;
    uint64_t d = sl_stagetime_now(st->clock) - t0;
    if (st->active) {
        sl_stagetime_add(st->slot, stage, d, 1);
        st->direct += d;
    } else {
        sl_stagetime_add(st->slot, stage, d * SL_STAGETIME_DIRECT, 1);
    }
}

/* --- latency histogram ---------------------------------------------------- */

/* The bucket of value v (microseconds). */
static inline unsigned
sl_lat_bucket(uint64_t v)
{
    if (v < 4)
        return (unsigned) v;
    unsigned msb = 63u - (unsigned) __builtin_clzll(v);
    unsigned i = 4 * (msb - 1) + (unsigned) ((v >> (msb - 2)) & 3);
    return i < SL_LAT_BUCKETS ? i : SL_LAT_BUCKETS - 1;
}

/* Bounds of bucket i: [lo, hi). */
uint64_t sl_lat_bucket_lo(unsigned i);
uint64_t sl_lat_bucket_hi(unsigned i);

/* Records one value (microseconds; a negative difference is 0) into slot.
 * One writer per slot (the pipeline worker's loop). */
void sl_lat_record(sl_slot_t *slot, uint64_t us, uint64_t weight);

/* The q-quantile (0..1) of the histogram h, interpolated linearly within
 * its bucket; 0 if empty. */
double sl_lat_quantile(const uint64_t *h, double q);

#endif
