/* ctl — the supervisor's control socket, <run_dir>/control.sock (mode 0600).
 *
 * Line protocol: a client connects, sends one request line (at most 255
 * bytes, ending in '\n') and reads the answer until the supervisor closes
 * the connection:
 *   status                      one JSON line: generation, workers, totals
 *   config                      the effective configuration as YAML
 *                               (what sluiced --dump-config prints)
 *   reload                      one JSON line once done: accepted or why not
 *   stop                        one JSON line, then a graceful stop
 *   workers ingest|pipeline +N|-N|N   one JSON line once the workers rolled
 *   watch drops|retries|leases|sockets  JSON lines, one a second, until the
 *                               client closes
 * A JSON answer carries "ok": true, or "ok": false and "error". Unknown or
 * malformed requests get {"ok":false,"error":...}.
 *
 * Supervisor process only, polled from its main loop (no thread): every
 * socket is non-blocking, so a slow or silent client never holds the loop;
 * what needs the supervisor (reload, stop, workers) comes back from
 * sl_ctl_poll as a request that the loop carries out and answers with
 * sl_ctl_answer. Workers close the inherited descriptors (sl_ctl_forget). */
#ifndef SL_CTL_H
#define SL_CTL_H

#include <stddef.h>
#include "common/conf.h"
#include "common/stats.h"

typedef struct sl_ctl sl_ctl_t;

typedef enum { SL_CTL_RELOAD = 1, SL_CTL_STOP, SL_CTL_WORKERS } sl_ctl_kind_t;

typedef struct {
    sl_ctl_kind_t kind;
    int client;          /* whom to answer (sl_ctl_answer) */
    int role;            /* SL_CTL_WORKERS: SL_ROLE_INGEST or SL_ROLE_PIPELINE */
    int relative;        /* 1: n is a change (+1, -2); 0: n is the count */
    int n;
} sl_ctl_req_t;

/* Binds <run_dir>/control.sock (replacing a stale one: the caller holds
 * the pidfile lock); NULL with the reason in err. */
sl_ctl_t *sl_ctl_new(const char *run_dir, char *err, size_t errlen);
/* Closes every connection and removes the socket file. */
void sl_ctl_destroy(sl_ctl_t **self_p);
/* In a freshly forked worker: closes the descriptors, touches no file. */
void sl_ctl_forget(sl_ctl_t *self);
/* Accepts and reads clients, answers status/config/errors itself, streams
 * watches (one line a second). 1 with the next request in req, else 0. */
int sl_ctl_poll(sl_ctl_t *self, const sl_shm_t *shm, const sl_conf_t *conf, sl_ctl_req_t *req);
/* What status reports as runtime worker-count overrides (0 = none). */
void sl_ctl_set_overrides(sl_ctl_t *self, int ingest, int pipeline);
/* Answers a request's client with one JSON line and closes it:
 * {"ok":true|false, <key>: <text>, ...extra}; extra is raw JSON members
 * (",\"generation\":3") or NULL. */
void sl_ctl_answer(sl_ctl_t *self, int client, int ok, const char *key, const char *text,
                   const char *extra);

#endif
