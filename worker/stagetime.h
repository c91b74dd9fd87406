/* stagetime (worker side) — the worker process's stage timer and the
 * hooks the ingest and pipeline code call at stage boundaries.
 *
 * One sl_stagetime_t per worker process (sl_stage), owned by its loop
 * thread, started by sl_stage_start with the period from the environment
 * (SLUICE_STAGE_SAMPLING: time 1 unit in N; 0 = off; default
 * SL_STAGETIME_PERIOD; SLUICE_STAGE_CLOCK=wall: busy wall time instead of
 * the thread's CPU time). Built with -Dstage_timing=false the hooks are empty
 * (the baseline that measures their cost). Worker processes only. */
#ifndef SL_WORKER_STAGETIME_H
#define SL_WORKER_STAGETIME_H

#include "common/stagetime.h"

extern sl_stagetime_t sl_stage;

/* Starts timing into slot (period from SLUICE_STAGE_SAMPLING). */
void sl_stage_start(sl_slot_t *slot);

#ifdef SL_STAGE_TIMING
#define SL_ST_ON 1
#define SL_ST_MARK() sl_stagetime_mark(&sl_stage)
#define SL_ST_BEGIN(read, first) sl_stagetime_begin(&sl_stage, SL_ST_##read, SL_ST_##first)
#define SL_ST_BEGIN_UNIT(first) sl_stagetime_begin(&sl_stage, -1, SL_ST_##first)
#define SL_ST_LAP(next) sl_stagetime_lap(&sl_stage, SL_ST_##next)
#define SL_ST_END(mark_next) sl_stagetime_end(&sl_stage, mark_next)
#define SL_ST_IDLE() sl_stagetime_idle(&sl_stage)
#define SL_ST_SEC_BEGIN() sl_stagetime_sec_begin(&sl_stage)
#define SL_ST_SEC_END(stage, t0) sl_stagetime_sec_end(&sl_stage, SL_ST_##stage, t0)
#define SL_ST_DIRECT_BEGIN() sl_stagetime_direct_begin(&sl_stage)
#define SL_ST_DIRECT_END(stage, t0) sl_stagetime_direct_end(&sl_stage, SL_ST_##stage, t0)
#define SL_ST_READ_US() sl_stagetime_read_us(&sl_stage)
/* from another thread (a publisher's): adds to slot directly */
#define SL_ST_THREAD_BEGIN() (sl_stage.period ? sl_stagetime_now(sl_stage.clock) : 0)
#define SL_ST_THREAD_END(slot, stage, t0) \
    do { if ((t0) && (slot)) sl_stagetime_add(slot, SL_ST_##stage, sl_stagetime_now(sl_stage.clock) - (t0), 1); } while (0)
#else
#define SL_ST_ON 0
#define SL_ST_MARK() ((void) 0)
#define SL_ST_BEGIN(read, first) ((void) 0)
#define SL_ST_BEGIN_UNIT(first) ((void) 0)
#define SL_ST_LAP(next) ((void) 0)
#define SL_ST_END(mark_next) ((void) 0)
#define SL_ST_IDLE() ((void) 0)
#define SL_ST_SEC_BEGIN() ((uint64_t) 0)
#define SL_ST_SEC_END(stage, t0) ((void) (t0))
#define SL_ST_DIRECT_BEGIN() ((uint64_t) 0)
#define SL_ST_DIRECT_END(stage, t0) ((void) (t0))
#define SL_ST_READ_US() ((uint64_t) 0)
#define SL_ST_THREAD_BEGIN() ((uint64_t) 0)
#define SL_ST_THREAD_END(slot, stage, t0) ((void) (slot), (void) (t0))
#endif

#endif
