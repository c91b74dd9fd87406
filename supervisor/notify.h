/* notify — tells systemd how sluiced is doing (sd_notify, Type=notify).
 *
 * READY=1 once every worker of the running configuration generation is
 * RUNNING in the shared-memory region (again after a reload), STATUS= a
 * one-line summary every few seconds, RELOADING=1 when a SIGHUP is taken,
 * STOPPING=1 at a stop, WATCHDOG=1 at half of WATCHDOG_USEC when systemd
 * asks for it. Without $NOTIFY_SOCKET (not started by systemd), and in a
 * build without libsystemd, every call does nothing. Keeps its state in
 * file-local variables: supervisor process only, one loop thread. */
#ifndef SL_NOTIFY_H
#define SL_NOTIFY_H

#include "common/stats.h"

/* Reads $NOTIFY_SOCKET and the watchdog settings; logs what it will do. */
void sl_notify_init(void);
/* Runs from the supervisor's loops (every few tens of ms): READY, STATUS
 * and watchdog pings as they come due. shm may be NULL (nothing but pings). */
void sl_notify_tick(const sl_shm_t *shm);
/* A reload starts: RELOADING=1; READY=1 follows from sl_notify_tick once
 * the workers of the new (or, if rejected, the old) configuration run. */
void sl_notify_reloading(void);
/* A stop starts: STOPPING=1; no READY=1 after this. */
void sl_notify_stopping(void);

#endif
