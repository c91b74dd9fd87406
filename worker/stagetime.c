/* stagetime (worker side) — the process's stage timer (stagetime.h). */
#include "worker/stagetime.h"

#include <stdlib.h>
#include <string.h>

sl_stagetime_t sl_stage;

void
sl_stage_start(sl_slot_t *slot)
{
    unsigned period = SL_STAGETIME_PERIOD;
    const char *env = getenv("SLUICE_STAGE_SAMPLING");
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (!*end && v <= 1u << 20)
            period = (unsigned) v;
    }
    /* SLUICE_STAGE_CLOCK=wall: busy wall time instead of the thread's CPU */
    const char *clk = getenv("SLUICE_STAGE_CLOCK");
    clockid_t clock = clk && strcmp(clk, "wall") == 0 ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
    sl_stagetime_init(&sl_stage, SL_ST_ON ? slot : NULL, period, clock);
}
