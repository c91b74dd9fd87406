/* notify — sd_notify for sluiced under systemd (see notify.h). */
#include "supervisor/notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#ifdef SL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

#define S_STATUS_EVERY_MS 5000

static int      s_enabled;          /* $NOTIFY_SOCKET was set */
static int      s_ready;            /* READY=1 sent for the current phase */
static int      s_stopping;
static uint64_t s_watchdog_ms;      /* ping interval; 0 = off */
static uint64_t s_last_ping, s_last_status;
static uint64_t s_last_total, s_last_total_ms;
static double   s_rate;
static int      s_warned;

static void
s_send(const char *text)
{
    int rc = sd_notify(0, text);
    if (rc < 0 && !s_warned++)
        sl_warn("sd_notify(%s) failed: %s; systemd may not see sluiced's state (check that "
                "$NOTIFY_SOCKET is reachable and the unit has NotifyAccess=main); not "
                "repeated", text, strerror(-rc));
}

void
sl_notify_init(void)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    s_enabled = sock && *sock;
    if (!s_enabled)
        return;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        s_watchdog_ms = usec / 2000;
        if (s_watchdog_ms == 0)
            s_watchdog_ms = 1;
    }
    sl_info("systemd notification socket %s: READY once every worker runs%s", sock,
            s_watchdog_ms ? ", watchdog pings every half WatchdogSec" : "");
}

/* Workers of the current generation in state RUNNING, out of *expected. */
static unsigned
s_running(const sl_shm_t *shm, unsigned *expected)
{
    unsigned n = atomic_load(&shm->n_ingest) + atomic_load(&shm->n_pipeline), run = 0;
    uint32_t gen = atomic_load(&shm->generation);
    if (n > shm->n_slots)
        n = shm->n_slots;
    for (unsigned i = 0; i < n; i++) {
        const sl_slot_t *s = &shm->slots[i];
        run += atomic_load(&s->state) == SL_WS_RUNNING && atomic_load(&s->generation) == gen;
    }
    *expected = n;
    return run;
}

/* 12345 -> "12.3k" (rates and totals in one short line). */
static void
s_human(char *buf, size_t len, double v)
{
    if (v >= 1e9)
        snprintf(buf, len, "%.1fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%.1fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
}

/* Sends STATUS= (after READY=1 in the same datagram if ready). */
static void
s_status(const sl_shm_t *shm, unsigned run, unsigned expected, uint64_t now, int ready)
{
    /* Slots start from zero at each generation: a total that went down is
     * a reload, not negative traffic. */
    uint64_t total = sl_shm_sum(shm, SL_C_received, SL_ROLE_INGEST);
    if (s_last_total_ms && total >= s_last_total && now > s_last_total_ms)
        s_rate = (double) (total - s_last_total) * 1000.0 / (double) (now - s_last_total_ms);
    else
        s_rate = 0;
    s_last_total = total;
    s_last_total_ms = now;
    uint64_t dropped = 0;
    for (int c = SL_C_drop_malformed_json; c <= SL_C_drop_multipart; c++)
        dropped += sl_shm_sum(shm, c, SL_ROLE_INGEST);
    uint64_t errors = sl_shm_sum(shm, SL_C_publish_errors, SL_ROLE_PIPELINE) +
                      sl_shm_sum(shm, SL_C_transform_errors, SL_ROLE_PIPELINE);
    uint64_t crashes = atomic_load(&shm->sv[SL_SV_crashes]);
    char t[32], r[32], line[300];
    s_human(t, sizeof t, (double) total);
    s_human(r, sizeof r, s_rate);
    snprintf(line, sizeof line, "%sSTATUS=%s%u/%u workers running (%u ingest, %u pipeline), "
             "%s notifications, %s/s, %" PRIu64 " dropped, %" PRIu64 " errors, %" PRIu64
             " worker crashes, generation %u", ready ? "READY=1\n" : "", s_stopping ? "stopping: " : "", run, expected,
             atomic_load(&shm->n_ingest), atomic_load(&shm->n_pipeline), t, r, dropped,
             errors, crashes, atomic_load(&shm->generation));
    s_send(line);
}

void
sl_notify_tick(const sl_shm_t *shm)
{
    if (!s_enabled)
        return;
    uint64_t now = sl_now_ms();
    if (s_watchdog_ms && now - s_last_ping >= s_watchdog_ms) {
        s_last_ping = now;
        s_send("WATCHDOG=1");
    }
    if (!shm)
        return;
    unsigned expected, run = s_running(shm, &expected);
    /* shm->stopping: workers are being stopped (a reload's first half);
     * RUNNING slots then are the old generation's, on their way out. */
    if (!s_ready && !s_stopping && !atomic_load(&shm->stopping) && expected &&
        run == expected) {
        s_ready = 1;
        s_status(shm, run, expected, now, 1);
        s_last_status = now;
        return;
    }
    if (now - s_last_status >= S_STATUS_EVERY_MS) {
        s_last_status = now;
        s_status(shm, run, expected, now, 0);
    }
}

void
sl_notify_reloading(void)
{
    if (!s_enabled || s_stopping)
        return;
    s_ready = 0;
    s_send("RELOADING=1\nSTATUS=reloading the configuration");
}

void
sl_notify_stopping(void)
{
    if (!s_enabled || s_stopping)
        return;
    s_stopping = 1;
    s_send("STOPPING=1\nSTATUS=stopping: draining the workers");
}

#else  /* built without libsystemd: sluiced never notifies */

void
sl_notify_init(void)
{
    if (getenv("NOTIFY_SOCKET"))
        sl_warn("$NOTIFY_SOCKET is set but this sluiced was built without libsystemd: it "
                "never reports READY=1; use Type=simple in the unit, or rebuild with "
                "libsystemd-dev installed");
}

void sl_notify_tick(const sl_shm_t *shm) { (void) shm; }
void sl_notify_reloading(void) {}
void sl_notify_stopping(void) {}

#endif
