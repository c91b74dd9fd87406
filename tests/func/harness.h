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
/* Partition leases the agent's pipeline workers hold now (taken minus
 * released): a test that stops a pipeline worker waits until it holds
 * every partition, else the one not yet taken has no route. */
uint64_t sl_h_leases_held(sl_h_agent_t *a);
/* The pid of the first worker of role (SL_ROLE_INGEST / SL_ROLE_PIPELINE)
 * in the agent's slots, -1 if none. */
pid_t sl_h_worker(sl_h_agent_t *a, int role);
/* Counter (SL_PC_*) of publisher k of sink s over the pipeline workers'
 * slots in use, aggregated as sluice-monitor does: summed, or the largest
 * for a max counter. */
uint64_t sl_h_pub(sl_h_agent_t *a, int s, int k, int counter);
/* Waits until cond(a) is true; 0, or -1 on timeout. */
int sl_h_wait(sl_h_agent_t *a, int (*cond)(sl_h_agent_t *), int timeout_ms);
/* Sends sig and waits for exit; returns the exit status (waitpid form) or -1. */
int sl_h_stop(sl_h_agent_t *a, int sig, int timeout_ms);
/* A graceful stop that must succeed: SIGTERM, and sluiced exits 0 within
 * timeout_ms (a test assertion naming what, the status and the log). */
void sl_h_stop_ok(sl_h_agent_t *a, int timeout_ms, const char *what);
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

/* sluice.yaml with these sources (YAML lines under `sources:`), worker
 * counts, partitions and extra lines (or NULL), and a pipeline.yaml whose
 * one sink writes every sample to <dir>/samples.jsonl. */
void sl_h_write_basic(sl_h_agent_t *a, const char *sources, int ingest, int pipeline,
                      int partitions, const char *extra);
/* sluice.yaml reading the file input (rate: notifications/s, 0 = as fast
 * as it goes) over 16 partitions, and a pipeline.yaml with the stateful
 * sinks roc (rate_of_change, then unit_conversion if asked), delta and
 * agg (aggregator size 7), each with a 1.5 s reorder window and writing
 * <dir>/<sink>.jsonl. */
void sl_h_write_stateful(sl_h_agent_t *a, const char *input, int ingest, int pipeline,
                         int rate, int unit_conversion);
/* Every ingest worker read its file source to the end and the pipeline
 * workers received every sample routed (a condition for sl_h_wait). */
int sl_h_input_done(sl_h_agent_t *a);
/* What the stateful sinks of sl_h_write_stateful wrote, each sink's file
 * in canonical form (sl_h_canonical_samples on fields) after a "== sink"
 * line; malloc'd. Fails the test if a sink wrote nothing. */
char *sl_h_stateful_outputs(sl_h_agent_t *a, const char *const *fields, const char *tag);
/* Lines of a file (0 if it cannot be read). */
size_t sl_h_count_lines(const char *path);
/* Writes path: tests/data/corpus.jsonl copies times (fails the test if it cannot). */
void sl_h_write_corpus(const char *path, int copies);
/* The samples copies times the corpus gives (tests/data/expected.samples.jsonl). */
size_t sl_h_corpus_samples(int copies);
/* Whether <dir>/samples.jsonl holds exactly copies times the corpus's
 * expected samples (canonical on fields, in any order). */
int sl_h_samples_are_corpus(sl_h_agent_t *a, int copies, const char *const *fields);

/* A private RabbitMQ node (tools/rabbitmq-node): loopback only, its own
 * epmd, ports, Erlang cookie and mnesia under dir. Tests that need one
 * must fail (ck_abort with r->err) when it does not start: never skip. */
typedef struct {
    char  dir[256];
    char  nodename[128];
    char  url[160];         /* rabbit://guest:guest@127.0.0.1:<amqp_port>/ */
    int   amqp_port;
    int   amqps_port;       /* 0 without TLS */
    int   epmd_port;
    int   dist_port;
    pid_t epmd_pid, rmq_pid, beam_pid;
    char  ca_file[320];     /* with TLS: the CA that signed the server's and */
    char  client_cert[320]; /* the client's certificates, and a CA that */
    char  client_key[320];  /* signed nothing (other_ca_file) */
    char  other_ca_file[320];
    int   made_dir;         /* dir was created by sl_h_rabbit_start */
    char  err[1024];        /* why the last call failed (log tail included) */
} sl_h_rabbit_t;

/* Starts a node with its state in dir (NULL: a new /tmp/sluice-rmq-XXXXXX),
 * TLS listener too if tls; fills r from <dir>/node.env. 0, or -1 with the
 * reason (and the server log tail) in r->err and on stderr. */
int sl_h_rabbit_start(sl_h_rabbit_t *r, const char *dir, int tls);
/* Stops the node and its epmd (rabbitmqctl stop, then by PID). 0 or -1. */
int sl_h_rabbit_stop(sl_h_rabbit_t *r);
/* Stops the node (not epmd) and starts it on the same ports and mnesia:
 * durable queues survive. down_ms: time it stays down. 0 or -1. */
int sl_h_rabbit_restart(sl_h_rabbit_t *r, int down_ms);
/* Messages ready and unacknowledged in queue (NULL: summed over every
 * queue of the vhost), and its consumers, from rabbitmqctl list_queues
 * (about a second per call). 0, or -1 with r->err if rabbitmqctl failed or
 * the queue does not exist. */
int sl_h_rabbit_queue_depth(sl_h_rabbit_t *r, const char *queue, long *ready, long *unacked);
int sl_h_rabbit_queue_consumers(sl_h_rabbit_t *r, const char *queue, long *consumers);
/* Stops the node if it runs and removes a dir sl_h_rabbit_start made
 * (kept when SLUICE_KEEP_TEST_DIRS is set). */
void sl_h_rabbit_cleanup(sl_h_rabbit_t *r);

#endif
