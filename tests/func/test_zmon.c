/* ZeroMQ socket monitor (common/zmon.h) through a running sluiced: real
 * socket events (a producer connecting to and leaving a zmq source, a
 * peer that is not ZeroMQ failing the handshake, a pipeline worker killed
 * with SIGKILL so that the ingest workers' sockets lose and regain their
 * peer, a partition endpoint occupied so that its bind fails) show up in
 * the workers' shared-memory counters and event rings, and in
 * sluice-monitor --json; sluice-monitor's output to a pipe carries no
 * escape codes and -f keeps only the matching fields. Each test starts its
 * own agent on a temporary run dir and a free loopback port. */
#include <check.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>
#include <zmq.h>

#include "common/zmon.h"
#include "tests/func/harness.h"
#include "tests/sl_check.h"

static int s_port;

/* One ingest and one pipeline worker, two partitions, a zmq source bound
 * on 127.0.0.1:s_port (the ingest worker #0 binds port + 0). */
static void
s_config(sl_h_agent_t *a)
{
    s_port = sl_h_free_port();
    ck_assert_msg(s_port > 0, "no free loopback port");
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\n"
             "workers: {ingest: 1, pipeline: 1}\n"
             "partitions: 2\n"
             "shutdown_grace: 5\n"
             "sources: [{type: zmq, endpoint: 'tcp://127.0.0.1:%d', mode: bind}]\n"
             "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n",
             a->dir, s_port, SL_SRCDIR);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[1024];
    snprintf(pipe, sizeof pipe,
             "sources:\n  - {name: ms, meters: ['*'], sinks: [meter_sink]}\n"
             "sinks:\n  - {name: meter_sink, publishers: ['file://%s/samples.jsonl']}\n",
             a->dir);
    sl_h_write(a, "pipeline.yaml", pipe);
}

static const sl_zmon_stats_t *
s_z(sl_h_agent_t *a, int slot)
{
    return &a->shm->slots[slot].zmon;
}

static uint64_t
s_total(sl_h_agent_t *a, int slot, int c)
{
    return atomic_load(&s_z(a, slot)->total[c]);
}

/* The entry of slot's socket of this kind; -1 if none. */
static int
s_find_sock(sl_h_agent_t *a, int slot, const char *kind, int open_only, sl_zsock_view_t *v)
{
    for (int k = 0; k < SL_MAX_ZSOCKS; k++)
        if (sl_zmon_sock_get(s_z(a, slot), k, v) == 0 && strcmp(v->kind, kind) == 0 &&
            (!open_only || v->state == SL_ZS_OPEN))
            return k;
    return -1;
}

/* Whether slot's ring holds an event of this kind whose text contains sub. */
static int
s_ring_has(sl_h_agent_t *a, int slot, int event, const char *sub, int *err)
{
    sl_zevent_view_t ev[SL_ZRING];
    size_t n = sl_zmon_ring_get(s_z(a, slot), ev, SL_ZRING);
    for (size_t k = 0; k < n; k++)
        if (ev[k].event == event && (!sub || strstr(ev[k].text, sub))) {
            if (err)
                *err = ev[k].err;
            return 1;
        }
    return 0;
}

static int s_want_c, s_want_slot;
static uint64_t s_want_v;
static int
s_reached(sl_h_agent_t *a)
{
    return s_total(a, s_want_slot, s_want_c) >= s_want_v;
}

static void
s_wait_total(sl_h_agent_t *a, int slot, int c, uint64_t v, int ms)
{
    s_want_slot = slot;
    s_want_c = c;
    s_want_v = v;
    ck_assert_msg(sl_h_wait(a, s_reached, ms) == 0,
                  "worker slot %d: expected %s >= %llu within %d ms, got %llu (log %s)", slot,
                  sl_zmon_counter_names[c], (unsigned long long) v, ms,
                  (unsigned long long) s_total(a, slot, c), a->log);
}

static const char *
s_str(yajl_val v)
{
    const char *t = v ? YAJL_GET_STRING(v) : NULL;
    return t ? t : "";
}

/* sluice-monitor's output for args, into a malloc'd string. */
static char *
s_monitor(sl_h_agent_t *a, const char *args)
{
    char *out = sl_h_path(a, "monitor.out");
    int rc = sl_h_run("%s/tools/sluice-monitor --run-dir %s %s > %s", SL_BUILDDIR, a->dir,
                      args, out);
    ck_assert_msg(rc == 0, "sluice-monitor %s exited %d", args, rc);
    char *text = sl_h_slurp(out, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

START_TEST(a_producer_connecting_and_leaving_and_a_bad_handshake_are_counted)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "zmon-src");
    s_config(&a);
    ck_assert_msg(sl_h_start(&a, 15000) == 0, "sluiced did not start; see %s", a.log);
    int ingest = 0;   /* slot 0: ingest #0 */
    s_wait_total(&a, ingest, SL_ZC_binds, 1, 20000);   /* read by its loop once running */
    sl_zsock_view_t v;
    ck_assert_msg(s_find_sock(&a, ingest, "source", 1, &v) >= 0,
                  "the ingest worker has no open 'source' socket entry");
    ck_assert_msg(v.c[SL_ZC_binds] == 1, "source: expected binds 1, got %llu",
                  (unsigned long long) v.c[SL_ZC_binds]);
    char want_ep[64];
    snprintf(want_ep, sizeof want_ep, "tcp://127.0.0.1:%d", s_port);
    ck_assert_msg(strcmp(v.endpoint, want_ep) == 0, "source endpoint: expected %s, got %s",
                  want_ep, v.endpoint);

    /* a real producer connects, sends, and closes */
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    ck_assert_int_eq(zmq_connect(push, want_ep), 0);
    const char *msg = "{\"event_type\": \"compute.instance.exists\", \"priority\": \"INFO\"}";
    ck_assert_int_ge(zmq_send(push, msg, strlen(msg), 0), 0);
    s_wait_total(&a, ingest, SL_ZC_accepted, 1, 20000);
    s_wait_total(&a, ingest, SL_ZC_handshakes, 1, 20000);
    ck_assert_msg(s_find_sock(&a, ingest, "source", 1, &v) >= 0 && v.c[SL_ZC_peers] == 1,
                  "source: expected 1 peer while the producer is connected, got %llu",
                  (unsigned long long) v.c[SL_ZC_peers]);
    int linger = 2000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(push);
    zmq_ctx_term(ctx);
    s_wait_total(&a, ingest, SL_ZC_disconnects, 1, 20000);
    ck_assert_msg(s_find_sock(&a, ingest, "source", 1, &v) >= 0 && v.c[SL_ZC_peers] == 0 &&
                  v.c[SL_ZC_disconnects] == 1 && v.last_event == ZMQ_EVENT_DISCONNECTED,
                  "source after the producer left: expected peers 0, disconnects 1, last "
                  "event disconnected; got %llu, %llu, %s",
                  (unsigned long long) v.c[SL_ZC_peers],
                  (unsigned long long) v.c[SL_ZC_disconnects],
                  sl_zmon_event_name(v.last_event));
    ck_assert_msg(s_ring_has(&a, ingest, ZMQ_EVENT_ACCEPTED, "127.0.0.1", NULL) &&
                  s_ring_has(&a, ingest, ZMQ_EVENT_DISCONNECTED, "127.0.0.1", NULL),
                  "the event ring lacks the accepted and disconnected events");
    ck_assert_uint_eq(atomic_load(&a.shm->slots[ingest].c[SL_C_source_disconnects]), 1);

    /* a peer whose ZMTP 3.0 greeting asks for CURVE, where the source
     * speaks NULL: the handshake fails */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) s_port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_msg(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0, "connect: %s",
                  strerror(errno));
    unsigned char greeting[64] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0 };
    memcpy(greeting + 12, "CURVE", 5);
    ck_assert_int_eq(write(fd, greeting, sizeof greeting), (int) sizeof greeting);
    s_wait_total(&a, ingest, SL_ZC_handshake_failures, 1, 20000);
    close(fd);
    s_wait_total(&a, ingest, SL_ZC_disconnects, 2, 20000);

    /* the same through sluice-monitor --json */
    char *json = s_monitor(&a, "--json");
    char ebuf[256];
    yajl_val root = yajl_tree_parse(json, ebuf, sizeof ebuf);
    ck_assert_msg(root != NULL, "sluice-monitor --json is not JSON: %s", ebuf);
    const char *p_workers[] = { "workers", NULL };
    yajl_val workers = yajl_tree_get(root, p_workers, yajl_t_array);
    ck_assert_msg(workers && workers->u.array.len == 2, "expected 2 workers in the JSON");
    yajl_val w0 = workers->u.array.values[0];
    const char *p_hs[] = { "zmq", "handshake_failures", NULL };
    yajl_val hs = yajl_tree_get(w0, p_hs, yajl_t_number);
    ck_assert_msg(hs && YAJL_GET_INTEGER(hs) >= 1, "workers[0].zmq.handshake_failures: "
                  "expected >= 1");
    const char *p_socks[] = { "sockets", NULL };
    yajl_val socks = yajl_tree_get(w0, p_socks, yajl_t_array);
    int seen = 0;
    for (size_t k = 0; socks && k < socks->u.array.len; k++) {
        const char *p_kind[] = { "kind", NULL }, *p_ep[] = { "endpoint", NULL };
        const char *p_acc[] = { "accepted", NULL };
        yajl_val kind = yajl_tree_get(socks->u.array.values[k], p_kind, yajl_t_string);
        yajl_val ep = yajl_tree_get(socks->u.array.values[k], p_ep, yajl_t_string);
        yajl_val acc = yajl_tree_get(socks->u.array.values[k], p_acc, yajl_t_number);
        if (strcmp(s_str(kind), "source") == 0) {
            seen = 1;
            ck_assert_str_eq(s_str(ep), want_ep);
            ck_assert_msg(acc && YAJL_GET_INTEGER(acc) == 2, "source: expected accepted 2");
        }
    }
    ck_assert_msg(seen, "workers[0].sockets has no 'source' socket");
    const char *p_ev[] = { "socket_events", NULL };
    yajl_val evs = yajl_tree_get(w0, p_ev, yajl_t_array);
    int hs_seen = 0;
    for (size_t k = 0; evs && k < evs->u.array.len; k++) {
        const char *p_name[] = { "event", NULL };
        yajl_val name = yajl_tree_get(evs->u.array.values[k], p_name, yajl_t_string);
        hs_seen |= strncmp(s_str(name), "handshake_failed", 16) == 0;
    }
    ck_assert_msg(hs_seen, "workers[0].socket_events has no handshake_failed event");
    const char *p_tot[] = { "zmq_totals", "accepted", NULL };
    yajl_val tot = yajl_tree_get(root, p_tot, yajl_t_number);
    ck_assert_msg(tot && YAJL_GET_INTEGER(tot) >= 2, "zmq_totals.accepted: expected >= 2");
    yajl_tree_free(root);
    free(json);

    sl_h_stop_ok(&a, 20000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

/* Peers of an ingest worker's to-partition sockets: not its zmq source's,
 * whose tcp port on 127.0.0.1 another test running beside this one may
 * touch (an ASan run once saw 3 peers). */
static uint64_t
s_partition_peers(sl_h_agent_t *a, int slot)
{
    uint64_t n = 0;
    sl_zsock_view_t v;
    for (int k = 0; k < SL_MAX_ZSOCKS; k++)
        if (sl_zmon_sock_get(s_z(a, slot), k, &v) == 0 && strcmp(v.kind, "to-partition") == 0)
            n += v.c[SL_ZC_peers];
    return n;
}

static int
s_ingest_reconnected(sl_h_agent_t *a)
{
    /* every to-partition socket of the ingest worker has its peer again */
    return s_partition_peers(a, 0) == 2 && atomic_load(&a->shm->slots[1].pid) > 0 &&
           atomic_load(&a->shm->slots[1].state) == SL_WS_RUNNING;
}

START_TEST(a_killed_pipeline_worker_is_seen_as_disconnects_retries_and_reconnects)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "zmon-kill");
    s_config(&a);
    ck_assert_msg(sl_h_start(&a, 15000) == 0, "sluiced did not start; see %s", a.log);
    /* the ingest worker connects to both partitions once the pipeline
     * worker holds them */
    ck_assert_msg(sl_h_wait(&a, s_ingest_reconnected, 30000) == 0,
                  "the ingest worker did not connect to both partitions: peers %llu (log %s)",
                  (unsigned long long) s_partition_peers(&a, 0), a.log);
    uint64_t connects = s_total(&a, 0, SL_ZC_connects);
    ck_assert_uint_ge(connects, 2);
    s_wait_total(&a, 1, SL_ZC_binds, 2, 20000);      /* the pipeline worker's loop */
    s_wait_total(&a, 1, SL_ZC_accepted, 2, 20000);   /* may read them a little later */
    sl_zsock_view_t v;
    ck_assert_msg(s_find_sock(&a, 1, "partition", 1, &v) >= 0 && strstr(v.endpoint, "meter_sink."),
                  "the pipeline worker has no open partition socket on meter_sink.<p>: %s",
                  v.endpoint);

    pid_t victim = atomic_load(&a.shm->slots[1].pid);
    ck_assert_int_gt(victim, 0);
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    s_wait_total(&a, 0, SL_ZC_disconnects, 2, 20000);
    ck_assert_msg(sl_h_wait(&a, s_ingest_reconnected, 60000) == 0,
                  "the ingest worker did not reconnect to the respawned pipeline worker: "
                  "peers %llu (log %s)", (unsigned long long) s_partition_peers(&a, 0), a.log);
    ck_assert_msg(atomic_load(&a.shm->slots[1].pid) != victim, "the pipeline worker was not "
                  "replaced");
    ck_assert_msg(s_total(&a, 0, SL_ZC_connects) >= connects + 2,
                  "expected at least 2 more connects after the respawn, got %llu -> %llu",
                  (unsigned long long) connects,
                  (unsigned long long) s_total(&a, 0, SL_ZC_connects));
    ck_assert_msg(s_ring_has(&a, 0, ZMQ_EVENT_DISCONNECTED, "meter_sink.", NULL),
                  "the ingest worker's ring has no disconnect from a partition");
    /* the respawned worker continues the slot's totals: they never go back */
    s_wait_total(&a, 1, SL_ZC_binds, 4, 20000);
    sl_h_stop_ok(&a, 20000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

START_TEST(an_occupied_partition_endpoint_is_a_bind_failure_until_it_is_free)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "zmon-bind");
    s_config(&a);
    /* a directory where partition 0's ipc socket goes: ZeroMQ cannot
     * remove it, bind() says the address is in use */
    char *busy = sl_h_path(&a, "meter_sink.0");
    ck_assert_int_eq(mkdir(busy, 0700), 0);
    ck_assert_msg(sl_h_start(&a, 15000) == 0, "sluiced did not start; see %s", a.log);
    s_wait_total(&a, 1, SL_ZC_bind_failures, 1, 30000);
    int err = 0;
    ck_assert_msg(s_ring_has(&a, 1, ZMQ_EVENT_BIND_FAILED, "meter_sink.0", &err),
                  "the pipeline worker's ring has no bind_failed event for meter_sink.0");
    ck_assert_msg(err == EADDRINUSE, "bind_failed errno: expected EADDRINUSE (%d), got %d (%s)",
                  EADDRINUSE, err, strerror(err));
    char *json = s_monitor(&a, "--json -f bind_failures");
    ck_assert_msg(strstr(json, "\"bind_failures\":") != NULL, "-f bind_failures: the JSON lost "
                  "the field: %.300s", json);
    ck_assert_msg(strstr(json, "\"received\":") == NULL && strstr(json, "\"connects\":") == NULL,
                  "-f bind_failures: the JSON kept other counters: %.300s", json);
    ck_assert_msg(strstr(json, "\"role\":") != NULL, "-f: the JSON lost the workers' identity");
    free(json);
    ck_assert_int_eq(rmdir(busy), 0);
    /* the lease tick binds it now */
    s_wait_total(&a, 1, SL_ZC_binds, 2, 30000);
    sl_h_stop_ok(&a, 20000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

START_TEST(monitor_output_to_a_pipe_is_plain_and_f_filters_the_fields)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "zmon-plain");
    s_config(&a);
    ck_assert_msg(sl_h_start(&a, 15000) == 0, "sluiced did not start; see %s", a.log);
    s_wait_total(&a, 0, SL_ZC_binds, 1, 20000);
    const char *views[] = { "--count 3 --interval 0.2", "--sockets --count 2 --interval 0.2",
                            "-f 'drop_*' -f 'zmq_*' --count 2 --interval 0.2" };
    for (size_t k = 0; k < sizeof views / sizeof *views; k++) {
        char *out = s_monitor(&a, views[k]);
        ck_assert_msg(strchr(out, '\033') == NULL, "sluice-monitor %s wrote an escape code to "
                      "a pipe", views[k]);
        for (const unsigned char *c = (const unsigned char *) out; *c; c++)
            ck_assert_msg(*c < 0x80, "sluice-monitor %s wrote non-ASCII to a pipe (the "
                          "sparkline must be ASCII there)", views[k]);
        ck_assert_msg(strstr(out, "notifications/s") != NULL, "%s: no throughput line",
                      views[k]);
        if (k == 0)
            ck_assert_msg(strstr(out, "zeromq sockets") && strstr(out, "ingest #0"),
                          "the live view lacks the zeromq sockets panel:\n%s", out);
        if (k == 1)
            ck_assert_msg(strstr(out, "tcp://127.0.0.1:") && strstr(out, "recent socket events")
                          && strstr(out, "listening"),
                          "--sockets lacks the source endpoint or the events:\n%s", out);
        if (k == 2) {
            ck_assert_msg(strstr(out, "drop_malformed_json") && strstr(out, "zmq_binds"),
                          "-f lost matching fields:\n%s", out);
            ck_assert_msg(!strstr(out, "samples_published") && !strstr(out, "published"),
                          "-f kept fields that do not match:\n%s", out);
        }
        free(out);
    }
    sl_h_stop_ok(&a, 20000, NULL);
    sl_h_cleanup(&a);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("zmon");
    TCase *tc = tcase_create("zmon");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, a_producer_connecting_and_leaving_and_a_bad_handshake_are_counted);
    tcase_add_test(tc, a_killed_pipeline_worker_is_seen_as_disconnects_retries_and_reconnects);
    tcase_add_test(tc, an_occupied_partition_endpoint_is_a_bind_failure_until_it_is_free);
    tcase_add_test(tc, monitor_output_to_a_pipe_is_plain_and_f_filters_the_fields);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
