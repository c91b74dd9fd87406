/* The amqp source against real RabbitMQ brokers (tools/rabbitmq-node:
 * private nodes on 127.0.0.1, started by the tests), fed by oslo.messaging's
 * own Notifier (tests/func/oslo_notify.py), as nova, glance and neutron
 * would feed Ceilometer:
 *   a. several control exchanges and all seven priorities give exactly the
 *      samples and events the same wire messages give through the file
 *      source;
 *   b. a broker restart mid-stream (durable queues): sluiced reconnects and
 *      publishes every notification sent at least once;
 *   c. a failing publisher: nothing is acknowledged, the broker keeps the
 *      backlog (messages_unacknowledged > 0), everything arrives after
 *      recovery;
 *   d. kill -9 of an ingest and of a pipeline worker under load: nothing
 *      lost (duplicates counted and printed);
 *   e. two brokers at once (messaging_urls);
 *   f. TLS with a self-signed CA (and a client certificate), a wrong CA
 *      refused, and an IP address matched against the certificate's IP
 *      subjectAltName.
 * Notifications are identified by the message_id oslo put on the wire
 * (oslo_notify.py --sent writes the wire messages); what each must give is
 * sluice-convert's output (samples and events) for those wire messages;
 * the few that give neither are covered by the queue being empty at the
 * end. One TLS broker is shared by the test case "broker" (each test uses
 * its own topic, so its own queues); the restart test has a broker of its
 * own. A broker that does not start fails the tests: never skipped.
 * SL_TEST_ONLY=substring runs only the tests whose name contains it. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "tests/func/harness.h"
#include "tests/sl_check.h"

#define S_PY "/usr/bin/python3"    /* Debian's: it has oslo.messaging */
#define S_CORPUS SL_SRCDIR "/tests/data/corpus.jsonl"
#define S_ULL(x) ((unsigned long long) (x))

/* Polls cond every 50 ms for up to ms; true if it held. */
#define S_WAIT(cond, ms) \
    ({ int ok_ = 0; \
       for (int t_ = 0; t_ <= (ms) && !(ok_ = (cond)); t_ += 50) \
           sl_h_sleep_ms(50); \
       ok_; })

/* ---- what a failed check leaves behind ---------------------------------
 * A failed check ends the test's process with exit() (CK_FORK): this
 * guard then kills the agents the test started (their run dirs stay, for
 * the logs), the producers, and stops the brokers the test started. */
#define S_GUARD_MAX 4
static sl_h_agent_t *s_g_agents[S_GUARD_MAX];
static sl_h_rabbit_t *s_g_rabbits[S_GUARD_MAX];
static pid_t s_g_pids[S_GUARD_MAX];

static void
s_guard_run(void)
{
    for (int i = 0; i < S_GUARD_MAX; i++) {
        sl_h_agent_t *a = s_g_agents[i];
        if (a && a->pid > 0) {
            fprintf(stderr, "test_amqp: killing sluiced %d; its run dir %s stays\n", (int) a->pid,
                    a->dir);
            sl_h_crash(a);
            char name[64];
            sl_shm_name(a->dir, name, sizeof name);
            sl_shm_unlink(name);
        }
        if (s_g_pids[i] > 0)
            sl_h_kill(s_g_pids[i]);
        if (s_g_rabbits[i] && s_g_rabbits[i]->dir[0])
            sl_h_rabbit_cleanup(s_g_rabbits[i]);
    }
}

static void
s_guard_init(void)
{
    static int registered;
    if (!registered)
        atexit(s_guard_run);
    registered = 1;
}

static void
s_guard_agent(sl_h_agent_t *a)
{
    s_guard_init();
    for (int i = 0; i < S_GUARD_MAX; i++)
        if (!s_g_agents[i] || s_g_agents[i] == a) {
            s_g_agents[i] = a;
            return;
        }
}

static void
s_guard_rabbit(sl_h_rabbit_t *r)
{
    s_guard_init();
    for (int i = 0; i < S_GUARD_MAX; i++)
        if (!s_g_rabbits[i] || s_g_rabbits[i] == r) {
            s_g_rabbits[i] = r;
            return;
        }
}

static void
s_guard_pid(pid_t pid, int on)
{
    s_guard_init();
    for (int i = 0; i < S_GUARD_MAX; i++)
        if (on ? s_g_pids[i] <= 0 : s_g_pids[i] == pid) {
            s_g_pids[i] = on ? pid : 0;
            return;
        }
}

/* ---- the shared broker (unchecked fixture: one per test case, started
 * in the runner's process before the tests fork) ---- */
static sl_h_rabbit_t s_rmq;
static int s_rmq_ok;

static void
s_broker_setup(void)
{
    s_rmq_ok = sl_h_rabbit_start(&s_rmq, NULL, 1) == 0;
}

static void
s_broker_teardown(void)
{
    sl_h_rabbit_cleanup(&s_rmq);
}

/* In a test: the shared broker runs, or the test fails with the reason. */
static sl_h_rabbit_t *
s_broker(void)
{
    ck_assert_msg(s_rmq_ok, "the test broker did not start: %s", s_rmq.err);
    return &s_rmq;
}

/* ---- sluiced configuration ---- */

/* sluice.yaml with the given sources (YAML list items) and workers; a
 * pipeline.yaml with one sink publishing to file://<dir>/samples.jsonl and
 * the extra publishers (YAML flow items, may be NULL), and an
 * event_pipeline.yaml with one sink publishing every event to
 * file://<dir>/events.jsonl and extra_ev. With events a notification that
 * gives no sample is still seen downstream (of the 125 corpus
 * notifications 50 give samples, 121 samples or events). */
static void
s_config(sl_h_agent_t *a, const char *sources, int ingest, int pipeline, const char *extra_pub,
         const char *extra_ev)
{
    char cfg[32768];
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\n"
             "workers: {ingest: %d, pipeline: %d}\n"
             "partitions: 4\n"
             "shutdown_grace: 10\n"
             "sources:\n%s"
             "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml,\n"
             "  event_definitions: %s/conf/event_definitions.yaml,\n"
             "  event_pipeline: event_pipeline.yaml}\n"
             "logging: {level: info}\n",
             a->dir, ingest, pipeline, sources, SL_SRCDIR, SL_SRCDIR);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[8192];
    snprintf(pipe, sizeof pipe,
             "sources: [{name: s, meters: ['*'], sinks: [k]}]\n"
             "sinks: [{name: k, publishers: ['file://%s/samples.jsonl'%s%s]}]\n", a->dir,
             extra_pub ? ", " : "", extra_pub ? extra_pub : "");
    sl_h_write(a, "pipeline.yaml", pipe);
    snprintf(pipe, sizeof pipe,
             "sources: [{name: es, events: ['*'], sinks: [ek]}]\n"
             "sinks: [{name: ek, publishers: ['file://%s/events.jsonl'%s%s]}]\n", a->dir,
             extra_ev ? ", " : "", extra_ev ? extra_ev : "");
    sl_h_write(a, "event_pipeline.yaml", pipe);
}

/* An amqp source item for sluice.yaml. url_yaml: "url: ..." or
 * "messaging_urls: [...]"; extra: more "key: value, " pairs or "". */
static const char *
s_amqp_source(const char *url_yaml, const char *exchanges, const char *topic,
              const char *priorities, const char *extra)
{
    static char buf[16384];
    snprintf(buf, sizeof buf,
             "  - {type: amqp, %s, exchanges: [%s], topics: [%s], priorities: [%s], "
             "prefetch: 64, heartbeat: 10s, reconnect_initial: 200ms, reconnect_max: 2s%s%s}\n",
             url_yaml, exchanges, topic, priorities, extra && *extra ? ", " : "",
             extra ? extra : "");
    return buf;
}

static void
s_start(sl_h_agent_t *a)
{
    s_guard_agent(a);
    if (sl_h_start(a, 20000) != 0) {
        sl_h_run("tail -30 '%s' >&2", a->log);
        ck_abort_msg("sluiced did not start (log %s, tail above)", a->log);
    }
}

static int
s_log_has(sl_h_agent_t *a, const char *what)
{
    char *log = sl_h_slurp(a->log, NULL);
    int has = log && strcasestr(log, what);
    free(log);
    return has;
}

/* ---- counters ---- */

static int
s_n_slots(sl_h_agent_t *a)
{
    return (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
}

/* Broker counter c of broker k (-1: all) over every ingest worker. */
static uint64_t
s_bc(sl_h_agent_t *a, int k, int c)
{
    uint64_t v = 0;
    for (int i = 0; i < s_n_slots(a); i++) {
        const sl_slot_t *sl = &a->shm->slots[i];
        if (atomic_load(&sl->role) != SL_ROLE_INGEST)
            continue;
        for (int b = 0; b < SL_MAX_BROKERS; b++)
            if (k < 0 || b == k)
                v += atomic_load(&sl->broker[b].c[c]);
    }
    return v;
}

/* Every ingest worker consumes from n brokers (state 2). */
static int
s_consuming(sl_h_agent_t *a, int n)
{
    int workers = 0;
    for (int i = 0; i < s_n_slots(a); i++) {
        const sl_slot_t *sl = &a->shm->slots[i];
        if (atomic_load(&sl->role) != SL_ROLE_INGEST)
            continue;
        workers++;
        for (int b = 0; b < n; b++)
            if (atomic_load(&sl->broker[b].c[SL_BC_state]) != 2)
                return 0;
    }
    return workers > 0;
}

static uint64_t
s_ingest(sl_h_agent_t *a, int c)
{
    return sl_shm_sum(a->shm, c, SL_ROLE_INGEST);
}

static uint64_t
s_pipe(sl_h_agent_t *a, int c)
{
    return sl_shm_sum(a->shm, c, SL_ROLE_PIPELINE);
}

static pid_t
s_worker_pid(sl_h_agent_t *a, int role, int index)
{
    for (int i = 0; i < s_n_slots(a); i++) {
        const sl_slot_t *sl = &a->shm->slots[i];
        if (atomic_load(&sl->role) == role && atomic_load(&sl->index) == index)
            return (pid_t) atomic_load(&sl->pid);
    }
    return -1;
}

/* ---- producers ---- */

static char s_input[512] = S_CORPUS;   /* what oslo_notify.py reads */

/* The oslo_notify.py command line: sends `count` notifications of the
 * corpus to url, wire messages into <dir>/<tag>.sent, ids into
 * <dir>/<tag>.ids, its output into <dir>/<tag>.out. */
static void
s_notify_cmd(char *cmd, size_t len, sl_h_agent_t *a, const char *url, const char *tag,
             const char *args)
{
    snprintf(cmd, len,
             S_PY " '%s/tests/func/oslo_notify.py' --url '%s' --input '%s' --ids '%s/%s.ids' "
             "--sent '%s/%s.sent' %s > '%s/%s.out' 2>&1",
             SL_SRCDIR, url, s_input, a->dir, tag, a->dir, tag, args, a->dir, tag);
}

static void
s_notify(sl_h_agent_t *a, const char *url, const char *tag, const char *args)
{
    char cmd[4096];
    s_notify_cmd(cmd, sizeof cmd, a, url, tag, args);
    int rc = sl_h_run("%s", cmd);
    if (rc != 0)
        sl_h_run("tail -20 '%s/%s.out' >&2", a->dir, tag);
    ck_assert_msg(rc == 0, "oslo_notify.py (%s) failed with status %d (output above)", tag, rc);
}

/* The same in the background: its pid. */
static pid_t
s_notify_spawn(sl_h_agent_t *a, const char *url, const char *tag, const char *args)
{
    static char cmd[4096];
    s_notify_cmd(cmd, sizeof cmd, a, url, tag, args);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
        _exit(127);
    }
    s_guard_pid(pid, 1);
    return pid;
}

static void
s_notify_wait(sl_h_agent_t *a, pid_t pid, const char *tag, int timeout_ms)
{
    int st = -1, done = 0;
    for (int t = 0; t <= timeout_ms && !done; t += 50) {
        done = waitpid(pid, &st, WNOHANG) == pid;
        if (!done)
            sl_h_sleep_ms(50);
    }
    if (!done) {
        sl_h_kill(pid);
        s_guard_pid(pid, 0);
        ck_abort_msg("oslo_notify.py (%s) still running after %d ms (see %s/%s.out)", tag,
                     timeout_ms, a->dir, tag);
    }
    s_guard_pid(pid, 0);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        sl_h_run("tail -20 '%s/%s.out' >&2", a->dir, tag);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "oslo_notify.py (%s) failed: status %d (output above)", tag, st);
}

static size_t
s_count_lines(const char *path)
{
    char *t = sl_h_slurp(path, NULL);
    size_t n = 0;
    for (char *p = t; p && *p; p++)
        n += *p == '\n';
    free(t);
    return n;
}

/* ---- what should come out, by message id ----------------------------
 * A sample is identified by "S <message_id> <name> <resource_id>", an
 * event by "E <message_id> <event_type>": oslo's message_id says which
 * notification it came from. */

typedef struct {
    char **v;
    size_t n, cap;
} s_keys_t;

static int
s_cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *) x, *(char *const *) y);
}

static const char *
s_str(yajl_val v, const char *key)
{
    const char *path[] = { key, NULL };
    yajl_val x = yajl_tree_get(v, path, yajl_t_string);
    return x ? YAJL_GET_STRING(x) : "";
}

/* Adds the keys of a JSON Lines file of samples or events (a missing file
 * has none). */
static void
s_keys_add(s_keys_t *k, const char *path, int events)
{
    char *text = sl_h_slurp(path, NULL);
    for (char *save = NULL, *l = text ? strtok_r(text, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        char err[128];
        yajl_val v = yajl_tree_parse(l, err, sizeof err);
        if (!v)
            continue;
        char key[512];
        if (events)
            snprintf(key, sizeof key, "E %s %s", s_str(v, "message_id"), s_str(v, "event_type"));
        else
            snprintf(key, sizeof key, "S %s %s %s", s_str(v, "message_id"), s_str(v, "name"),
                     s_str(v, "resource_id"));
        yajl_tree_free(v);
        if (k->n == k->cap)
            k->v = realloc(k->v, (k->cap = k->cap ? k->cap * 2 : 1024) * sizeof *k->v);
        k->v[k->n++] = strdup(key);
    }
    free(text);
}

static void
s_keys_sort(s_keys_t *k)
{
    if (k->n)
        qsort(k->v, k->n, sizeof *k->v, s_cmp_str);
}

/* What an agent published: its samples.jsonl and events.jsonl. */
static s_keys_t
s_got(sl_h_agent_t *a)
{
    s_keys_t k = { NULL, 0, 0 };
    s_keys_add(&k, sl_h_path(a, "samples.jsonl"), 0);
    s_keys_add(&k, sl_h_path(a, "events.jsonl"), 1);
    s_keys_sort(&k);
    return k;
}

static void
s_keys_free(s_keys_t *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
    memset(k, 0, sizeof *k);
}

/* Multiset comparison: how many of want's keys got lacks (missing), how
 * many got has beyond want (duplicates: a key more often than wanted), how
 * many got has that want does not (unexpected). Prints the first missing. */
static void
s_compare(const s_keys_t *want, const s_keys_t *got, size_t *missing, size_t *dups,
          size_t *unexpected, int print)
{
    size_t i = 0, j = 0, shown = 0;
    *missing = *dups = *unexpected = 0;
    while (i < want->n || j < got->n) {
        int c = i == want->n ? 1 : j == got->n ? -1 : strcmp(want->v[i], got->v[j]);
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            if (print && shown++ < 5)
                fprintf(stderr, "test_amqp: missing %s\n", want->v[i]);
            (*missing)++;
            i++;
        } else {
            if (j > 0 && strcmp(got->v[j], got->v[j - 1]) == 0)
                (*dups)++;
            else
                (*unexpected)++;
            j++;
        }
    }
}

/* What sluice-convert makes of the wire messages oslo sent (<tag>.sent):
 * the samples and events each notification must give (into <tag>.want
 * and <tag>.want-events; the tests that use it send priority info only,
 * which yields both). */
static s_keys_t
s_want(sl_h_agent_t *a, const char *tag)
{
    s_keys_t k = { NULL, 0, 0 };
    for (int ev = 0; ev <= 1; ev++) {
        int rc = sl_h_run("%s/tools/sluice-convert %s --meters %s/conf/meters.yaml "
                          "--event-definitions %s/conf/event_definitions.yaml "
                          "< '%s/%s.sent' > '%s/%s.want%s'", SL_BUILDDIR, ev ? "--events" : "",
                          SL_SRCDIR, SL_SRCDIR, a->dir, tag, a->dir, tag, ev ? "-events" : "");
        ck_assert_msg(rc == 0, "sluice-convert of %s/%s.sent failed: %d", a->dir, tag, rc);
        char path[512];
        snprintf(path, sizeof path, "%s/%s.want%s", a->dir, tag, ev ? "-events" : "");
        s_keys_add(&k, path, ev);
    }
    s_keys_sort(&k);
    ck_assert_msg(k.n > 0, "%s/%s.sent gives neither sample nor event", a->dir, tag);
    return k;
}

/* Waits until every wanted sample and event was published (timeout_ms);
 * returns how many are missing, fills dups and unexp. */
static size_t
s_wait_all(sl_h_agent_t *a, const s_keys_t *want, int timeout_ms, size_t *dups, size_t *unexp)
{
    size_t missing = want->n;
    for (int t = 0; t <= timeout_ms; t += 500) {
        s_keys_t got = s_got(a);
        s_compare(want, &got, &missing, dups, unexp, 0);
        s_keys_free(&got);
        if (missing == 0)
            break;
        sl_h_sleep_ms(500);
    }
    if (missing) {
        s_keys_t got = s_got(a);
        s_compare(want, &got, &missing, dups, unexp, 1);
        s_keys_free(&got);
    }
    return missing;
}

/* The queue is empty: nothing left in the broker, nothing unacknowledged
 * (covers the notifications that give neither sample nor event). */
static void
s_drained(sl_h_rabbit_t *r, const char *queue)
{
    long ready = -1, unacked = -1;
    for (int i = 0; i < 10; i++) {
        ck_assert_msg(sl_h_rabbit_queue_depth(r, queue, &ready, &unacked) == 0, "%s", r->err);
        if (ready == 0 && unacked == 0)
            return;
        sl_h_sleep_ms(500);
    }
    ck_abort_msg("queue %s keeps %ld ready and %ld unacknowledged messages", queue, ready,
                 unacked);
}

/* ---- a. exchanges and priorities, converted as the file source does ---- */

/* Fields compared: every field of the file:// output but `id`, which is a
 * fresh uuid per sample in Ceilometer and in sluice. message_id and
 * timestamp are compared: both runs read the same wire messages (oslo's
 * message_id and timestamp, which oslo regenerates at each send, come from
 * <tag>.sent, the messages exactly as they went to the broker), so nothing
 * needs excluding for oslo's sake. */
static const char *const s_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id", "timestamp",
    "resource_metadata", "source", "message_id", NULL,
};

#define S_A_COUNT (125 * 7)        /* gcd(125, 7) = 1: every line with every priority */

static int
s_settled(sl_h_agent_t *a, uint64_t n)
{
    return s_ingest(a, SL_C_received) >= n && s_ingest(a, SL_C_notifications_confirmed) >= n &&
           s_pipe(a, SL_C_samples_published) == s_ingest(a, SL_C_samples_routed) &&
           s_pipe(a, SL_C_events_published) == s_ingest(a, SL_C_events_routed);
}

START_TEST(exchanges_and_priorities_convert_as_the_file_source_does)
{
    sl_h_rabbit_t *r = s_broker();
    static sl_h_agent_t a, f;
    sl_h_mkdir(&a, "amqp-a");
    char url[4096];
    snprintf(url, sizeof url, "url: '%s'", r->url);
    s_config(&a, s_amqp_source(url, "nova, glance, neutron", "t_a",
                               "audit, debug, info, warn, error, critical, sample", ""), 2, 2, NULL, NULL);
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 1), 20000),
                  "the ingest workers do not consume after 20 s (connects %llu, attempts %llu; "
                  "log %s)", S_ULL(s_bc(&a, -1, SL_BC_connects)),
                  S_ULL(s_bc(&a, -1, SL_BC_reconnect_attempts)), a.log);
    char args[256];
    snprintf(args, sizeof args, "--exchanges nova,glance,neutron --topics t_a --count %d "
             "--priorities info,sample,error,warn,audit,critical,debug", S_A_COUNT);
    s_notify(&a, r->url, "a", args);
    ck_assert_msg(S_WAIT(s_settled(&a, S_A_COUNT), 60000),
                  "amqp: expected %d notifications received and confirmed and every sample "
                  "published; got %llu received, %llu confirmed, %llu routed, %llu published "
                  "(deliveries %llu, acks %llu; log %s)", S_A_COUNT,
                  S_ULL(s_ingest(&a, SL_C_received)),
                  S_ULL(s_ingest(&a, SL_C_notifications_confirmed)),
                  S_ULL(s_ingest(&a, SL_C_samples_routed)),
                  S_ULL(s_pipe(&a, SL_C_samples_published)),
                  S_ULL(s_bc(&a, -1, SL_BC_deliveries)), S_ULL(s_bc(&a, -1, SL_BC_acks)), a.log);
    uint64_t a_nsp = s_ingest(&a, SL_C_no_sample_priority);
    sl_h_stop_ok(&a, 30000, NULL);
    ck_assert_msg(s_bc(&a, -1, SL_BC_deliveries) == S_A_COUNT &&
                  s_bc(&a, -1, SL_BC_acks) == S_A_COUNT,
                  "expected %d deliveries, all acknowledged; got %llu deliveries, %llu acks, "
                  "%llu redeliveries, %llu nacks", S_A_COUNT,
                  S_ULL(s_bc(&a, -1, SL_BC_deliveries)), S_ULL(s_bc(&a, -1, SL_BC_acks)),
                  S_ULL(s_bc(&a, -1, SL_BC_redeliveries)), S_ULL(s_bc(&a, -1, SL_BC_nacks)));
    /* 5 of 7 priorities give no sample, in Ceilometer as in sluice. */
    ck_assert_msg(a_nsp == S_A_COUNT / 7 * 5, "expected %d notifications counted as "
                  "no_sample_priority, got %llu", S_A_COUNT / 7 * 5, S_ULL(a_nsp));

    /* The same wire messages through the file source. */
    sl_h_mkdir(&f, "amqp-a-file");
    ck_assert_int_eq(sl_h_run("cp '%s/a.sent' '%s/input.jsonl'", a.dir, f.dir), 0);
    s_config(&f, "  - {type: file, path: input.jsonl}\n", 2, 2, NULL, NULL);
    s_start(&f);
    ck_assert_msg(S_WAIT(s_settled(&f, S_A_COUNT), 60000),
                  "file source: expected %d notifications confirmed; got %llu (log %s)",
                  S_A_COUNT, S_ULL(s_ingest(&f, SL_C_notifications_confirmed)), f.log);
    uint64_t f_nsp = s_ingest(&f, SL_C_no_sample_priority);
    sl_h_stop_ok(&f, 30000, NULL);
    ck_assert_msg(a_nsp == f_nsp, "no_sample_priority: amqp %llu, file %llu", S_ULL(a_nsp),
                  S_ULL(f_nsp));

    char *ga = sl_h_slurp(sl_h_path(&a, "samples.jsonl"), NULL);
    char *gf = sl_h_slurp(sl_h_path(&f, "samples.jsonl"), NULL);
    ck_assert_msg(ga && gf, "a samples.jsonl is missing (%s, %s)", a.dir, f.dir);
    char *ca = sl_h_canonical_samples(ga, s_fields);
    char *cf = sl_h_canonical_samples(gf, s_fields);
    size_t na = s_count_lines(sl_h_path(&a, "samples.jsonl"));
    if (strcmp(ca, cf) != 0) {
        FILE *o = fopen(sl_h_path(&a, "amqp.canon"), "w");
        fputs(ca, o);
        fclose(o);
        o = fopen(sl_h_path(&a, "file.canon"), "w");
        fputs(cf, o);
        fclose(o);
        sl_h_run("diff '%s' '%s' | head -20 >&2", sl_h_path(&a, "file.canon"),
                 sl_h_path(&a, "amqp.canon"));
    }
    ck_assert_msg(na > 0, "the amqp source gave no sample");
    ck_assert_msg(strcmp(ca, cf) == 0, "the amqp source's %zu samples differ from the file "
                  "source's %zu (diff above: file < > amqp)", na,
                  s_count_lines(sl_h_path(&f, "samples.jsonl")));
    free(ca);
    free(cf);
    free(ga);
    free(gf);

    /* Events: every field (message_id and generated included, for the
     * same reason). */
    static const char *const ev_fields[] = { "event_type", "message_id", "generated", "traits",
                                             NULL };
    ga = sl_h_slurp(sl_h_path(&a, "events.jsonl"), NULL);
    gf = sl_h_slurp(sl_h_path(&f, "events.jsonl"), NULL);
    ck_assert_msg(ga && gf, "an events.jsonl is missing (%s, %s)", a.dir, f.dir);
    ca = sl_h_canonical_samples(ga, ev_fields);
    cf = sl_h_canonical_samples(gf, ev_fields);
    if (strcmp(ca, cf) != 0) {
        sl_h_write(&a, "amqp.ev.canon", ca);
        sl_h_write(&a, "file.ev.canon", cf);
        sl_h_run("diff '%s' '%s' | head -20 >&2", sl_h_path(&a, "file.ev.canon"),
                 sl_h_path(&a, "amqp.ev.canon"));
    }
    ck_assert_msg(s_count_lines(sl_h_path(&a, "events.jsonl")) > 0, "the amqp source gave no "
                  "event");
    ck_assert_msg(strcmp(ca, cf) == 0, "the amqp source's %zu events differ from the file "
                  "source's %zu (diff above: file < > amqp)",
                  s_count_lines(sl_h_path(&a, "events.jsonl")),
                  s_count_lines(sl_h_path(&f, "events.jsonl")));
    printf("test_amqp: %d notifications over 3 exchanges and 7 priorities: %zu samples and "
           "%zu events, as through the file source\n", S_A_COUNT, na,
           s_count_lines(sl_h_path(&a, "events.jsonl")));
    free(ca);
    free(cf);
    free(ga);
    free(gf);
    sl_h_cleanup(&f);
    sl_h_cleanup(&a);
}
END_TEST

/* ---- c. a failing publisher: the broker keeps what is not delivered ---- */

static void
s_control(sl_h_agent_t *a, const char *line)
{
    sl_h_write(a, "ctl.tmp", line);
    char from[512];
    snprintf(from, sizeof from, "%s", sl_h_path(a, "ctl.tmp"));
    ck_assert_int_eq(rename(from, sl_h_path(a, "ctl")), 0);
}

START_TEST(a_failing_publisher_leaves_the_backlog_unacknowledged_in_the_broker)
{
    sl_h_rabbit_t *r = s_broker();
    static sl_h_agent_t a;
    sl_h_mkdir(&a, "amqp-c");
    char url[4096], pub[4096], pubev[4096];
    snprintf(url, sizeof url, "url: '%s'", r->url);
    /* One control file fails both the samples' and the events' sink. */
    snprintf(pub, sizeof pub, "'test://t?record=%s/rec&control=%s/ctl&retry_initial_ms=20"
             "&retry_max_ms=200'", a.dir, a.dir);
    snprintf(pubev, sizeof pubev, "'test://e?record=%s/rec-events&control=%s/ctl"
             "&retry_initial_ms=20&retry_max_ms=200'", a.dir, a.dir);
    /* Only the corpus notifications that give samples: each delivery then
     * waits for the failing publisher (one that gives nothing would be
     * confirmed at once). */
    ck_assert_int_eq(sl_h_run("%s/tools/sluice-convert --meters %s/conf/meters.yaml "
                              "--event-definitions %s/conf/event_definitions.yaml < %s > "
                              "'%s/corpus.samples'", SL_BUILDDIR, SL_SRCDIR, SL_SRCDIR,
                              S_CORPUS, a.dir), 0);
    ck_assert_int_eq(sl_h_run(S_PY " -c 'import json, sys\n"
                              "ids = set(json.loads(l)[\"message_id\"] for l in open(sys.argv[1]))\n"
                              "for l in open(sys.argv[2]):\n"
                              "    d = json.loads(l)\n"
                              "    d = json.loads(d[\"oslo.message\"]) if \"oslo.message\" in d else d\n"
                              "    if d.get(\"message_id\") in ids: sys.stdout.write(l)\n' "
                              "'%s/corpus.samples' %s > '%s/input.jsonl'", a.dir, S_CORPUS,
                              a.dir), 0);
    snprintf(s_input, sizeof s_input, "%s/input.jsonl", a.dir);
    s_config(&a, s_amqp_source(url, "nova", "t_c", "info", ""), 1, 1, pub, pubev);
    s_control(&a, "retry\n");
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 1), 20000), "not consuming after 20 s (log %s)", a.log);
    s_notify(&a, r->url, "c", "--exchanges nova --topics t_c --priorities info --count 500");
    s_keys_t want = s_want(&a, "c");

    /* The publisher fails: deliveries up to the prefetch, none acked, the
     * broker holds them unacknowledged and the rest ready. */
    ck_assert_msg(S_WAIT(s_bc(&a, -1, SL_BC_deliveries) >= 64, 20000),
                  "expected >= 64 deliveries (the prefetch), got %llu",
                  S_ULL(s_bc(&a, -1, SL_BC_deliveries)));
    sl_h_sleep_ms(1500);
    long ready = -1, unacked = -1;
    ck_assert_msg(sl_h_rabbit_queue_depth(r, "t_c.info", &ready, &unacked) == 0, "%s", r->err);
    ck_assert_msg(unacked > 0 && ready > 0 && ready + unacked == 500,
                  "while the publisher fails the broker should hold all 500: some "
                  "unacknowledged, the rest ready; it has %ld ready, %ld unacknowledged",
                  ready, unacked);
    ck_assert_msg(s_bc(&a, -1, SL_BC_acks) == 0, "%llu deliveries acknowledged while the "
                  "publisher fails", S_ULL(s_bc(&a, -1, SL_BC_acks)));
    ck_assert_msg(s_count_lines(sl_h_path(&a, "rec")) == 0 &&
                  s_count_lines(sl_h_path(&a, "rec-events")) == 0,
                  "the test publisher recorded samples or events while failing");

    /* Recovery: everything arrives, the queue empties. */
    s_control(&a, "ok\n");
    size_t dups = 0, unexp = 0;
    size_t missing = s_wait_all(&a, &want, 60000, &dups, &unexp);
    ck_assert_msg(missing == 0, "%zu of %zu samples and events missing after the publisher "
                  "recovered (log %s)", missing, want.n, a.log);
    ck_assert_msg(S_WAIT(s_bc(&a, -1, SL_BC_acks) >= 500, 20000), "expected 500 acks, got %llu",
                  S_ULL(s_bc(&a, -1, SL_BC_acks)));
    s_drained(r, "t_c.info");
    sl_h_stop_ok(&a, 30000, NULL);
    /* the test publishers record one line per sample or event */
    size_t recorded = s_count_lines(sl_h_path(&a, "rec")) +
                      s_count_lines(sl_h_path(&a, "rec-events"));
    ck_assert_msg(recorded >= want.n, "the test publishers recorded %zu samples and events, %zu "
                  "wanted", recorded, want.n);
    printf("test_amqp: failing publisher: %zu samples and events, %zu duplicates\n", want.n,
           dups);
    s_keys_free(&want);
    sl_h_cleanup(&a);
}
END_TEST

/* ---- c2. a publisher that gives up: the deliveries go back to the queue ---- */

START_TEST(a_publisher_that_gives_up_requeues_and_the_deliveries_come_again)
{
    sl_h_rabbit_t *r = s_broker();
    static sl_h_agent_t a;
    sl_h_mkdir(&a, "amqp-c2");
    char url[4096], pub[4096];
    snprintf(url, sizeof url, "url: '%s'", r->url);
    /* gives up after one retry, no dead letter: a failure that may heal */
    snprintf(pub, sizeof pub, "'test://t?record=%s/rec&control=%s/ctl&max_retries=1"
             "&retry_initial_ms=20&retry_max_ms=40'", a.dir, a.dir);
    s_config(&a, s_amqp_source(url, "nova", "t_c2", "info", ""), 1, 1, pub, NULL);
    s_control(&a, "retry\n");
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 1), 20000), "not consuming after 20 s (log %s)", a.log);
    snprintf(s_input, sizeof s_input, "%s", S_CORPUS);
    s_notify(&a, r->url, "c2", "--exchanges nova --topics t_c2 --priorities info");
    s_keys_t want = s_want(&a, "c2");
    /* requeued and delivered again, flagged redelivered, while it fails */
    ck_assert_msg(S_WAIT(s_bc(&a, -1, SL_BC_nacks) >= 20 && s_bc(&a, -1, SL_BC_redeliveries) >= 20,
                         30000), "expected requeues: nacks %llu, redeliveries %llu (log %s)",
                  S_ULL(s_bc(&a, -1, SL_BC_nacks)), S_ULL(s_bc(&a, -1, SL_BC_redeliveries)),
                  a.log);
    ck_assert_uint_ge(s_ingest(&a, SL_C_notifications_requeued), 20);
    ck_assert_uint_ge(s_ingest(&a, SL_C_frames_failed), 1);
    ck_assert_msg(s_count_lines(sl_h_path(&a, "rec")) == 0, "recorded while failing");
    /* recovery: everything arrives (the file:// publisher of the same sink
     * wrote each requeued sample again: duplicates, counted) */
    s_control(&a, "ok\n");
    size_t dups = 0, unexp = 0;
    size_t missing = s_wait_all(&a, &want, 60000, &dups, &unexp);
    ck_assert_msg(missing == 0, "%zu of %zu missing after the publisher recovered (log %s)",
                  missing, want.n, a.log);
    ck_assert_msg(S_WAIT(s_count_lines(sl_h_path(&a, "rec")) >= 128, 30000),
                  "the test publisher recorded %zu samples, 128 wanted",
                  s_count_lines(sl_h_path(&a, "rec")));
    s_drained(r, "t_c2.info");
    sl_h_stop_ok(&a, 30000, NULL);
    printf("test_amqp: give up and requeue: %llu nacks, %llu redeliveries, %zu duplicates at "
           "the file publisher\n", S_ULL(s_bc(&a, -1, SL_BC_nacks)),
           S_ULL(s_bc(&a, -1, SL_BC_redeliveries)), dups);
    s_keys_free(&want);
    sl_h_cleanup(&a);
}
END_TEST

/* ---- c3. ack_on_event_error ---- */

/* One compute.instance.create.end whose memory_mb (an int trait) is not a
 * number: its event conversion fails, as Ceilometer's does. With
 * ack_on_event_error false it is requeued once, then acknowledged. */
static void
s_event_error_case(int ack_on_error)
{
    sl_h_rabbit_t *r = s_broker();
    static sl_h_agent_t a;
    sl_h_mkdir(&a, ack_on_error ? "amqp-ev1" : "amqp-ev0");
    char url[4096], topic[32], extra[64];
    snprintf(url, sizeof url, "url: '%s'", r->url);
    snprintf(topic, sizeof topic, "t_ev%d", ack_on_error);
    snprintf(extra, sizeof extra, "ack_on_event_error: %s", ack_on_error ? "true" : "false");
    ck_assert_int_eq(sl_h_run(S_PY " -c 'import json, sys\n"
                              "for l in open(sys.argv[1]):\n"
                              "    d = json.loads(l)\n"
                              "    m = json.loads(d[\"oslo.message\"]) if \"oslo.message\" in d else d\n"
                              "    if m.get(\"event_type\") == \"compute.instance.create.end\":\n"
                              "        m[\"payload\"][\"memory_mb\"] = \"lots\"\n"
                              "        print(json.dumps(m)); break\n' %s > '%s/bad.jsonl'",
                              S_CORPUS, a.dir), 0);
    snprintf(s_input, sizeof s_input, "%s/bad.jsonl", a.dir);
    s_config(&a, s_amqp_source(url, "nova", topic, "info", extra), 1, 1, NULL, NULL);
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 1), 20000), "not consuming after 20 s (log %s)", a.log);
    char args[128];
    snprintf(args, sizeof args, "--exchanges nova --topics %s --priorities info", topic);
    s_notify(&a, r->url, topic, args);
    ck_assert_msg(S_WAIT(s_bc(&a, -1, SL_BC_acks) >= 1, 20000), "never acknowledged (log %s)",
                  a.log);
    sl_h_sleep_ms(500);
    uint64_t deliveries = s_bc(&a, -1, SL_BC_deliveries), nacks = s_bc(&a, -1, SL_BC_nacks);
    uint64_t redel = s_bc(&a, -1, SL_BC_redeliveries), dropped = s_ingest(&a, SL_C_events_dropped);
    if (ack_on_error)
        ck_assert_msg(deliveries == 1 && nacks == 0 && redel == 0 && dropped == 1,
                      "ack_on_event_error true: deliveries %llu nacks %llu redeliveries %llu "
                      "events_dropped %llu", S_ULL(deliveries), S_ULL(nacks), S_ULL(redel),
                      S_ULL(dropped));
    else
        ck_assert_msg(deliveries == 2 && nacks == 1 && redel == 1 && dropped == 2,
                      "ack_on_event_error false: deliveries %llu nacks %llu redeliveries %llu "
                      "events_dropped %llu (requeued once, then acked)", S_ULL(deliveries),
                      S_ULL(nacks), S_ULL(redel), S_ULL(dropped));
    char q[64];
    snprintf(q, sizeof q, "%s.info", topic);
    s_drained(r, q);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}

START_TEST(ack_on_event_error_false_requeues_a_failed_event_once)
{
    s_event_error_case(0);
}
END_TEST

START_TEST(ack_on_event_error_true_acks_a_failed_event)
{
    s_event_error_case(1);
}
END_TEST

/* ---- d. kill -9 of workers under load ---- */

START_TEST(killed_workers_lose_nothing)
{
    sl_h_rabbit_t *r = s_broker();
    static sl_h_agent_t a;
    sl_h_mkdir(&a, "amqp-d");
    char url[4096];
    snprintf(url, sizeof url, "url: '%s'", r->url);
    s_config(&a, s_amqp_source(url, "nova, neutron", "t_d", "info", ""), 2, 2, NULL, NULL);
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 1), 20000), "not consuming after 20 s (log %s)", a.log);
    pid_t prod = s_notify_spawn(&a, r->url, "d", "--exchanges nova,neutron --topics t_d "
                                "--priorities info --count 3000 --rate 500");
    ck_assert_msg(S_WAIT(s_bc(&a, -1, SL_BC_deliveries) >= 400, 20000),
                  "only %llu deliveries after 20 s", S_ULL(s_bc(&a, -1, SL_BC_deliveries)));
    pid_t ing = s_worker_pid(&a, SL_ROLE_INGEST, 0);
    ck_assert_msg(ing > 0, "no ingest worker #0");
    kill(ing, SIGKILL);
    ck_assert_msg(S_WAIT(s_bc(&a, -1, SL_BC_deliveries) >= 1500, 20000),
                  "only %llu deliveries after the ingest worker's kill",
                  S_ULL(s_bc(&a, -1, SL_BC_deliveries)));
    pid_t pip = s_worker_pid(&a, SL_ROLE_PIPELINE, 1);
    ck_assert_msg(pip > 0, "no pipeline worker #1");
    kill(pip, SIGKILL);
    s_notify_wait(&a, prod, "d", 60000);
    s_keys_t want = s_want(&a, "d");
    size_t dups = 0, unexp = 0;
    size_t missing = s_wait_all(&a, &want, 60000, &dups, &unexp);
    ck_assert_msg(missing == 0, "%zu of %zu samples and events missing after kill -9 of ingest "
                  "worker %d and pipeline worker %d (log %s)", missing, want.n, (int) ing,
                  (int) pip, a.log);
    ck_assert_msg(unexp == 0, "%zu samples or events that no notification sent gives", unexp);
    s_drained(r, "t_d.info");
    uint64_t crashes = atomic_load(&a.shm->sv[SL_SV_crashes]);
    sl_h_stop_ok(&a, 30000, NULL);
    printf("test_amqp: kill -9 of an ingest and a pipeline worker: %zu samples and events, all "
           "published; %zu duplicates; crashes %llu, redeliveries %llu\n", want.n, dups,
           S_ULL(crashes), S_ULL(s_bc(&a, -1, SL_BC_redeliveries)));
    ck_assert_msg(crashes >= 2, "the supervisor saw %llu crashes, 2 expected", S_ULL(crashes));
    s_keys_free(&want);
    sl_h_cleanup(&a);
}
END_TEST

/* ---- e. two brokers (messaging_urls) ---- */

START_TEST(two_brokers_at_once_each_deliver_their_notifications)
{
    sl_h_rabbit_t *r1 = s_broker();
    static sl_h_rabbit_t r2;
    static sl_h_agent_t a;
    sl_h_mkdir(&a, "amqp-e");
    s_guard_rabbit(&r2);
    ck_assert_msg(sl_h_rabbit_start(&r2, NULL, 0) == 0, "second broker: %s", r2.err);
    char urls[8192];
    snprintf(urls, sizeof urls, "messaging_urls: ['%s', '%s']", r1->url, r2.url);
    s_config(&a, s_amqp_source(urls, "nova, glance", "t_e", "info", ""), 2, 1, NULL, NULL);
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 2), 20000), "not consuming from both brokers after "
                  "20 s (log %s)", a.log);
    s_notify(&a, r1->url, "e1", "--exchanges nova --topics t_e --priorities info --count 250");
    s_notify(&a, r2.url, "e2", "--exchanges glance --topics t_e --priorities info --count 250");
    s_keys_t w1 = s_want(&a, "e1"), w2 = s_want(&a, "e2");
    size_t dups = 0, unexp = 0;
    size_t m1 = s_wait_all(&a, &w1, 30000, &dups, &unexp);
    size_t m2 = s_wait_all(&a, &w2, 30000, &dups, &unexp);
    ck_assert_msg(m1 == 0 && m2 == 0, "missing samples and events: %zu of %zu from broker 1, "
                  "%zu of %zu from broker 2 (log %s)", m1, w1.n, m2, w2.n, a.log);
    s_drained(r1, "t_e.info");
    s_drained(&r2, "t_e.info");
    ck_assert_msg(s_bc(&a, 0, SL_BC_deliveries) == 250 && s_bc(&a, 1, SL_BC_deliveries) == 250,
                  "deliveries per broker: %llu and %llu, 250 each expected",
                  S_ULL(s_bc(&a, 0, SL_BC_deliveries)), S_ULL(s_bc(&a, 1, SL_BC_deliveries)));
    sl_h_stop_ok(&a, 30000, NULL);
    s_keys_free(&w1);
    s_keys_free(&w2);
    sl_h_cleanup(&a);
    ck_assert_msg(sl_h_rabbit_stop(&r2) == 0, "stopping the second broker: %s", r2.err);
    sl_h_rabbit_cleanup(&r2);
}
END_TEST

/* ---- f. TLS ---- */

START_TEST(tls_with_the_right_ca_delivers_and_a_wrong_ca_is_refused)
{
    sl_h_rabbit_t *r = s_broker();
    ck_assert_msg(r->amqps_port > 0 && r->ca_file[0], "the broker has no TLS listener");
    static sl_h_agent_t a, w;
    char url[8192];

    /* The right CA, and a client certificate (the broker verifies it).
     * Host name localhost: the server certificate has it as a DNS name
     * (127.0.0.1 as an IP address: the next test). */
    sl_h_mkdir(&a, "amqp-f");
    snprintf(url, sizeof url, "url: 'amqps://guest:guest@localhost:%d/', ssl_ca_file: '%s', "
             "ssl_cert_file: '%s', ssl_key_file: '%s'", r->amqps_port, r->ca_file,
             r->client_cert, r->client_key);
    s_config(&a, s_amqp_source(url, "nova", "t_f", "info", ""), 1, 1, NULL, NULL);
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 1), 20000), "not consuming over TLS after 20 s "
                  "(attempts %llu; log %s)", S_ULL(s_bc(&a, -1, SL_BC_reconnect_attempts)),
                  a.log);
    s_notify(&a, r->url, "f", "--exchanges nova --topics t_f --priorities info --count 125");
    s_keys_t want = s_want(&a, "f");
    size_t dups = 0, unexp = 0;
    size_t missing = s_wait_all(&a, &want, 30000, &dups, &unexp);
    ck_assert_msg(missing == 0, "%zu of %zu samples and events missing over TLS (log %s)",
                  missing, want.n, a.log);
    s_drained(r, "t_f.info");
    /* The broker says the connection is TLS. */
    ck_assert_int_eq(sl_h_run("'%s/tools/rabbitmq-node' ctl '%s' -q --no-table-headers "
                              "list_connections ssl peer_cert_subject > '%s/conns' 2>&1",
                              SL_SRCDIR, r->dir, a.dir), 0);
    char *conns = sl_h_slurp(sl_h_path(&a, "conns"), NULL);
    ck_assert_msg(conns && strstr(conns, "true") && strstr(conns, "sluice-test-client"),
                  "no TLS connection with the client certificate in list_connections: %s",
                  conns ? conns : "(none)");
    free(conns);
    sl_h_stop_ok(&a, 30000, NULL);
    s_keys_free(&want);

    /* A CA that did not sign the broker's certificate: refused, logged,
     * nothing consumed, the notifications stay in the broker. */
    sl_h_mkdir(&w, "amqp-f-wrong");
    snprintf(url, sizeof url, "url: 'amqps://guest:guest@localhost:%d/', ssl_ca_file: '%s'",
             r->amqps_port, r->other_ca_file);
    s_config(&w, s_amqp_source(url, "nova", "t_f2", "info", ""), 1, 1, NULL, NULL);
    s_start(&w);
    ck_assert_msg(S_WAIT(s_bc(&w, -1, SL_BC_reconnect_attempts) >= 2, 20000),
                  "expected failed TLS connection attempts, got %llu attempts and %llu "
                  "connects (log %s)", S_ULL(s_bc(&w, -1, SL_BC_reconnect_attempts)),
                  S_ULL(s_bc(&w, -1, SL_BC_connects)), w.log);
    s_notify(&w, r->url, "f2", "--exchanges nova --topics t_f2 --priorities info --count 50");
    sl_h_sleep_ms(2000);
    ck_assert_msg(s_bc(&w, -1, SL_BC_connects) == 0 && s_bc(&w, -1, SL_BC_deliveries) == 0,
                  "a wrong CA was accepted: %llu connects, %llu deliveries",
                  S_ULL(s_bc(&w, -1, SL_BC_connects)), S_ULL(s_bc(&w, -1, SL_BC_deliveries)));
    /* rabbitmq-c's words for X509 chain verification failing */
    ck_assert_msg(s_log_has(&w, "cert verification failed") ||
                  s_log_has(&w, "certificate verify failed"),
                  "the log does not name the failed certificate verification (%s)", w.log);
    ck_assert_msg(s_count_lines(sl_h_path(&w, "samples.jsonl")) == 0 &&
                  s_count_lines(sl_h_path(&w, "events.jsonl")) == 0,
                  "published although the broker's certificate was refused");
    long ready = -1, unacked = -1, consumers = -1;
    ck_assert_msg(sl_h_rabbit_queue_depth(r, "t_f2.info", &ready, &unacked) == 0, "%s", r->err);
    ck_assert_msg(sl_h_rabbit_queue_consumers(r, "t_f2.info", &consumers) == 0, "%s", r->err);
    ck_assert_msg(ready == 50 && unacked == 0 && consumers == 0,
                  "t_f2.info: expected 50 ready, 0 unacknowledged, no consumer; got %ld, %ld, "
                  "%ld", ready, unacked, consumers);
    sl_h_stop_ok(&w, 30000, NULL);
    sl_h_cleanup(&w);
    sl_h_cleanup(&a);
}
END_TEST

/* An amqps:// URL naming the broker by IP address: the server certificate
 * carries it as an iPAddress subjectAltName (what openssl, Python's ssl
 * and so oslo.messaging match). rabbitmq-c's own host name check
 * (amqp_openssl_hostname_validation.c) matches DNS names only, so the
 * source must check IP addresses itself. */
START_TEST(tls_to_an_ip_address_matches_the_certificates_ip_san)
{
    sl_h_rabbit_t *r = s_broker();
    static sl_h_agent_t a;
    char url[8192];
    sl_h_mkdir(&a, "amqp-f-ip");
    snprintf(url, sizeof url, "url: 'amqps://guest:guest@127.0.0.1:%d/', ssl_ca_file: '%s'",
             r->amqps_port, r->ca_file);
    s_config(&a, s_amqp_source(url, "nova", "t_fip", "info", ""), 1, 1, NULL, NULL);
    s_start(&a);
    int ok = S_WAIT(s_consuming(&a, 1), 10000);
    if (!ok)
        sl_h_run("grep -m1 'amqp source' '%s' >&2", a.log);
    ck_assert_msg(ok, "no TLS connection to 127.0.0.1 with a certificate for IP 127.0.0.1 "
                  "after 10 s: %llu failed attempts (first error above; log %s)",
                  S_ULL(s_bc(&a, -1, SL_BC_reconnect_attempts)), a.log);
    sl_h_stop_ok(&a, 30000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

/* ---- b. broker restart mid-stream ---- */

START_TEST(a_broker_restart_mid_stream_loses_nothing)
{
    static sl_h_rabbit_t r;
    static sl_h_agent_t a;
    s_guard_rabbit(&r);
    ck_assert_msg(sl_h_rabbit_start(&r, NULL, 0) == 0, "broker: %s", r.err);
    sl_h_mkdir(&a, "amqp-b");
    char url[4096];
    snprintf(url, sizeof url, "url: '%s'", r.url);
    s_config(&a, s_amqp_source(url, "nova, glance", "t_b", "info", "durable: true"), 2, 1,
             NULL, NULL);
    s_start(&a);
    ck_assert_msg(S_WAIT(s_consuming(&a, 1), 20000), "not consuming after 20 s (log %s)", a.log);
    pid_t prod = s_notify_spawn(&a, r.url, "b", "--exchanges nova,glance --topics t_b "
                                "--priorities info --durable --count 2000 --rate 250");
    ck_assert_msg(S_WAIT(s_bc(&a, -1, SL_BC_deliveries) >= 300, 20000),
                  "only %llu deliveries after 20 s", S_ULL(s_bc(&a, -1, SL_BC_deliveries)));
    uint64_t before = s_bc(&a, -1, SL_BC_deliveries);
    ck_assert_msg(sl_h_rabbit_restart(&r, 1000) == 0, "restart: %s", r.err);
    s_notify_wait(&a, prod, "b", 120000);
    s_keys_t want = s_want(&a, "b");
    size_t dups = 0, unexp = 0;
    size_t missing = s_wait_all(&a, &want, 60000, &dups, &unexp);
    ck_assert_msg(missing == 0, "%zu of %zu samples and events missing after the broker "
                  "restart (%llu deliveries before it; log %s)", missing, want.n, S_ULL(before),
                  a.log);
    s_drained(&r, "t_b.info");
    ck_assert_msg(s_bc(&a, -1, SL_BC_disconnects) >= 2 && s_bc(&a, -1, SL_BC_connects) >= 4,
                  "expected each of the 2 ingest workers to lose and reopen its connection; "
                  "disconnects %llu, connects %llu", S_ULL(s_bc(&a, -1, SL_BC_disconnects)),
                  S_ULL(s_bc(&a, -1, SL_BC_connects)));
    ck_assert_msg(s_log_has(&a, "connection lost"), "no 'connection lost' in %s", a.log);
    sl_h_stop_ok(&a, 30000, NULL);
    printf("test_amqp: broker restart: %zu samples and events, all published; %zu duplicates; "
           "disconnects %llu, connects %llu, reconnect attempts %llu, redeliveries %llu\n",
           want.n, dups, S_ULL(s_bc(&a, -1, SL_BC_disconnects)),
           S_ULL(s_bc(&a, -1, SL_BC_connects)), S_ULL(s_bc(&a, -1, SL_BC_reconnect_attempts)),
           S_ULL(s_bc(&a, -1, SL_BC_redeliveries)));
    s_keys_free(&want);
    sl_h_cleanup(&a);
    ck_assert_msg(sl_h_rabbit_stop(&r) == 0, "stopping the broker: %s", r.err);
    sl_h_rabbit_cleanup(&r);
}
END_TEST

/* SL_TEST_ONLY=substring runs only the tests whose name contains it. */
static void
s_add(TCase *tc, const TTest *t)
{
    const char *only = getenv("SL_TEST_ONLY");
    if (!only || strstr(t->name, only))
        tcase_add_test(tc, t);
}

static Suite *
s_suite(void)
{
    Suite *s = suite_create("amqp");
    TCase *tc = tcase_create("broker");
    tcase_add_unchecked_fixture(tc, s_broker_setup, s_broker_teardown);
    tcase_set_timeout(tc, 180);
    s_add(tc, exchanges_and_priorities_convert_as_the_file_source_does);
    s_add(tc, a_failing_publisher_leaves_the_backlog_unacknowledged_in_the_broker);
    s_add(tc, a_publisher_that_gives_up_requeues_and_the_deliveries_come_again);
    s_add(tc, ack_on_event_error_false_requeues_a_failed_event_once);
    s_add(tc, ack_on_event_error_true_acks_a_failed_event);
    s_add(tc, killed_workers_lose_nothing);
    s_add(tc, two_brokers_at_once_each_deliver_their_notifications);
    s_add(tc, tls_with_the_right_ca_delivers_and_a_wrong_ca_is_refused);
    s_add(tc, tls_to_an_ip_address_matches_the_certificates_ip_san);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("restart");
    tcase_set_timeout(tr, 240);
    s_add(tr, a_broker_restart_mid_stream_loses_nothing);
    suite_add_tcase(s, tr);
    return s;
}

/* meson's timeout or ^C: stop what this process started (in the runner,
 * the shared broker; in a test's process, what its guard knows), so that
 * no broker outlives the run. Not async-signal-safe, on purpose: the
 * process ends right after. */
static pid_t s_runner;

static void
s_on_signal(int sig)
{
    if (getpid() == s_runner)
        sl_h_rabbit_cleanup(&s_rmq);
    else
        s_guard_run();
    signal(sig, SIG_DFL);
    raise(sig);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    s_runner = getpid();
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    signal(SIGHUP, s_on_signal);
    return sl_check_run(s_suite());
}
