/* output — the output layer of a pipeline worker: owns delivery.
 *
 * One publisher instance per (sink, URL), each with its own FIFO queue of
 * batches and one batch in flight at a time. The layer, not the plugin,
 * owns: capped exponential backoff with full jitter on RETRY, Ceilometer's
 * policy=default|queue|drop with max_queue_length, max_retries, the
 * dead-letter directory (JSON Lines with the reason) and the per-publisher
 * counters in the worker's shared-memory slot (common/stats.h
 * SL_PUBLISHER_COUNTERS). Options: sl_pub_core_opts in
 * worker/publishers/publisher.h, given in each publisher URL's query.
 *
 * Threads: a plugin with SL_PUB_F_THREAD publishes on a thread of its own
 * per instance; its results come back through an eventfd the loop watches,
 * so a stalled publisher delays nothing else. Other plugins are called on
 * the loop from a 0 ms timer (SL_PUB_F_INLINE ones inside sl_output_submit
 * while their queue is empty). Every
 * function here, and every done callback, runs on the loop's thread.
 *
 * Ownership: sl_output_submit copies the samples (they are views valid only
 * during the call). The caller's done callback is called exactly once per
 * submitted batch, on the loop, when every publisher of the sink that the
 * source waits for has finished with it (published, or dropped by policy /
 * dead-lettered / abandoned at the drain deadline). The source does not
 * wait for publishers with confirm=queued (the default under policy=queue
 * and drop, as Ceilometer acknowledges a notification once it is queued):
 * for them the batch is done once queued, they keep their copy until they
 * are finished with it, and their `at_risk` gauge counts the records so
 * held (what a crash loses: the supervisor folds it into lost_in_crash).
 * The layer also keeps the worker
 * counters samples_published, events_published, publish_errors and the
 * sink's published / failed (a batch counts as published when every
 * publisher published it): the caller must not count them too.
 * Pipeline workers only. */
#ifndef SL_OUTPUT_H
#define SL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include "common/conf.h"
#include "common/loop.h"
#include "common/sample.h"
#include "common/stats.h"

typedef struct sl_output sl_output_t;

/* delivered (over the publishers the source waits for, see above): 1 if
 * every one published the batch; 0 if at least one dropped it for good (policy=drop, rejected as bad, or
 * dead-lettered: counted; the operator's choice); SL_OUTPUT_FAILED if at
 * least one gave up on it for a reason that may heal (max_retries reached,
 * policy=queue's max_queue_length, a stop) and did not dead-letter it: a
 * source that can take it back (a broker) should requeue it. The batch is
 * finished either way. */
#define SL_OUTPUT_FAILED (-1)
typedef void (*sl_output_done_fn)(void *arg, int delivered);

/* Creates the output layer on loop. conf: one instance per publisher URL of
 * every sink (sl_conf_expand'ed), sink indexes as in conf; NULL = no sinks
 * yet (tests add them with sl_output_add_sink). slot: counters go to
 * slot->pub[sink][k] and the worker counters above (NULL = not counted).
 * NULL with err if a URL is refused or a plugin cannot start (exit 2). */
sl_output_t *sl_output_new(const sl_conf_t *conf, sl_loop_t *loop, sl_slot_t *slot,
                           char *err, size_t errlen);
/* Adds a sink (index = number of sinks so far, returned) with its URLs
 * (already expanded); events = an event sink (each sample's
 * resource_metadata is one event's JSON). -1 with err. */
int sl_output_add_sink(sl_output_t *out, const char *name, int events,
                       const char *const *urls, size_t n_urls, char *err, size_t errlen);

/* Forward profiles: a URL's forward=NAME is resolved in the conf given to
 * sl_output_new (an unknown name is an error naming the sink and URL;
 * without a conf every forward= is unknown). Each such publisher gets only
 * the records its profile selects (meter name / event_type globs), with
 * sl_pub_batch_t.forward set; a batch of which it selects nothing is done
 * for it at once (OK, no publish call). Its `sent`, `dropped` and
 * `dead_lettered` counters count the selected records only; the sink's
 * published / failed count whole batches as before.
 * sl_output_check_forward: the same check for one URL, without starting
 * anything (sluiced -t). 0, or -1 with "<scheme> publisher '<url>': ...". */
int sl_output_check_forward(const sl_conf_t *conf, const char *url, char *err, size_t errlen);

/* Hands n samples of sink to every publisher of the sink. Never blocks and
 * never refuses: the caller asks sl_output_ready() first to apply
 * back-pressure. n == 0: done is still called (later, on the loop). When
 * every publisher of the sink is an SL_PUB_F_INLINE plugin with an empty
 * queue (the file publisher, normally), they are called right here on the
 * caller's samples, without a copy; if all succeed, done runs before this
 * returns. Otherwise the batch is copied and queued; done runs before this
 * returns too when only confirm=queued publishers are left to wait for. */
void sl_output_submit(sl_output_t *out, unsigned sink, const sl_sample_t *samples, size_t n,
                      sl_output_done_fn done, void *arg);
/* 0 if a publisher of the sink with policy=default has max_queue_length
 * batches waiting: stop reading what feeds this sink until it says 1. */
int sl_output_ready(const sl_output_t *out, unsigned sink);
/* fn(arg, sink) runs (on the loop) when a sink that answered 0 to
 * sl_output_ready() can take more again: resume what feeds it there. */
void sl_output_on_ready(sl_output_t *out, void (*fn)(void *arg, unsigned sink), void *arg);
/* Batches submitted whose done callback has not run yet. */
size_t sl_output_pending(const sl_output_t *out);

/* At stop: runs the loop (sl_loop_run_once; other watches and timers run
 * too: pause the sources first) until every batch is finished by every
 * publisher (confirm=queued ones too) or
 * deadline_ms (sl_now_ms clock) passed; then drops what is left (counted,
 * dead-lettered, reason "not delivered before the drain deadline"), calls
 * the remaining done callbacks, and flushes the plugins. Not from inside a
 * loop callback. Returns the number of batches abandoned. */
size_t sl_output_drain(sl_output_t *out, uint64_t deadline_ms);
/* Abandons what is left as sl_output_drain does at its deadline, stops the
 * threads and frees everything; *out_p = NULL. */
void sl_output_destroy(sl_output_t **out_p);

/* The delay before retry number `attempt` (1 = the first retry): uniform in
 * [1, min(max_ms, initial_ms * 2^(attempt-1))] (full jitter). rnd: a random
 * 64-bit number. Exposed for tests. */
unsigned sl_output_backoff_ms(unsigned initial_ms, unsigned max_ms, unsigned attempt,
                              uint64_t rnd);

#endif
