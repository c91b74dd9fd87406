/* harness — start the real sluiced on a temporary run dir and observe it
 * through its shared memory, for the functional tests. Every process a test
 * starts is stopped by PID. */
#ifndef SL_TEST_HARNESS_H
#define SL_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/stats.h"

typedef struct {
    char  dir[256];         /* temporary run dir */
    pid_t pid;              /* sluiced */
    const sl_shm_t *shm;
    char  log[300];
} sl_h_agent_t;

/* Creates a temporary directory, writes `files` (name, content pairs,
 * NULL-terminated) into it. */
void sl_h_mkdir(sl_h_agent_t *a, const char *tag);
void sl_h_write(sl_h_agent_t *a, const char *name, const char *content);
char *sl_h_path(sl_h_agent_t *a, const char *name);    /* static buffer rotation */
/* Starts build/supervisor/sluiced -c <dir>/sluice.yaml (log to <dir>/sluiced.log),
 * waits until its shared memory is there and every worker runs. 0 or -1. */
int sl_h_start(sl_h_agent_t *a, int timeout_ms);
/* Only forks build/supervisor/sluiced -c <dir>/sluice.yaml with its output
 * appended to log; its pid (-1 if fork failed). */
pid_t sl_h_spawn(sl_h_agent_t *a, const char *log);
/* Sum of a worker counter over all workers (0 if not attached). */
uint64_t sl_h_total(sl_h_agent_t *a, int counter);
/* Waits until cond(a) is true; 0, or -1 on timeout. */
int sl_h_wait(sl_h_agent_t *a, int (*cond)(sl_h_agent_t *), int timeout_ms);
/* Sends sig and waits for exit; returns the exit status (waitpid form) or -1. */
int sl_h_stop(sl_h_agent_t *a, int sig, int timeout_ms);
/* Kills sluiced if still running and removes the directory. */
void sl_h_cleanup(sl_h_agent_t *a);
/* Runs a command, returns its exit status (system()). */
int sl_h_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads a whole file (malloc'd, NUL-terminated) or NULL. */
char *sl_h_slurp(const char *path, size_t *len);
/* Canonical form of a JSON Lines sample file restricted to `fields` (sorted
 * keys, numbers normalised), one line per sample, lines sorted. malloc'd. */
char *sl_h_canonical_samples(const char *jsonl, const char *const *fields);
void sl_h_sleep_ms(int ms);
/* A free TCP port on 127.0.0.1 (bound then released). */
int sl_h_free_port(void);
/* Starts /usr/bin/memcached on 127.0.0.1:port; its pid, or -1 if it does not
 * answer within 5 s (the caller must then fail: never skip). */
pid_t sl_h_memcached_start(int port);
/* SIGKILL and reap a process the test started. */
void sl_h_kill(pid_t pid);
/* SIGKILL sluiced and every worker in its shared memory: a host crash. */
void sl_h_crash(sl_h_agent_t *a);

#endif
