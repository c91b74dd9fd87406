/* zmon: the socket-event counters and the ring in a worker's slot (what
 * sl_zmon_record writes and the readers copy), and the socket monitor on a
 * real pair of ZeroMQ sockets over ipc driven through the event loop. */
#include <check.h>

#include "tests/sl_check.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/loop.h"
#include "common/zmon.h"

static sl_zmon_stats_t *
s_stats(void)
{
    sl_zmon_stats_t *st = calloc(1, sizeof *st);
    ck_assert_ptr_nonnull(st);
    return st;
}

START_TEST(events_count_per_socket_and_in_the_totals_and_peers_never_go_negative)
{
    sl_zmon_stats_t *st = s_stats();
    atomic_store(&st->sock[0].state, SL_ZS_OPEN);
    sl_zmon_record(st, 0, ZMQ_EVENT_CONNECTED, 7, "ipc:///x.0", 1000);
    sl_zmon_record(st, 0, ZMQ_EVENT_DISCONNECTED, 7, "ipc:///x.0", 1001);
    sl_zmon_record(st, 0, ZMQ_EVENT_DISCONNECTED, 7, "ipc:///x.0", 1002);   /* one too many */
    sl_zmon_record(st, 0, ZMQ_EVENT_CONNECT_RETRIED, 100, "ipc:///x.0", 1003);
    sl_zmon_record(st, -1, ZMQ_EVENT_ACCEPTED, 9, "tcp://127.0.0.1:1", 1004);
    sl_zmon_record(st, 0, ZMQ_EVENT_BIND_FAILED, EADDRINUSE, "tcp://127.0.0.1:2", 1005);
    sl_zmon_record(st, 0, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, 0x10000011, "tcp://a", 1006);
    sl_zmon_record(st, 0, ZMQ_EVENT_MONITOR_STOPPED, 0, "", 1007);            /* not an event */
    sl_zsock_view_t v;
    ck_assert_int_eq(sl_zmon_sock_get(st, 0, &v), 0);
    ck_assert_uint_eq(v.c[SL_ZC_connects], 1);
    ck_assert_uint_eq(v.c[SL_ZC_disconnects], 2);
    ck_assert_uint_eq(v.c[SL_ZC_peers], 0);
    ck_assert_uint_eq(v.c[SL_ZC_connect_retries], 1);
    ck_assert_uint_eq(v.c[SL_ZC_bind_failures], 1);
    ck_assert_uint_eq(v.c[SL_ZC_handshake_failures], 1);
    ck_assert_uint_eq(v.c[SL_ZC_accepted], 0);
    ck_assert_int_eq(v.last_event, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
    ck_assert_int_eq(v.last_errno, 0x10000011);
    ck_assert_uint_eq(v.last_ms, 1006);
    /* the totals hold the socket without an entry too */
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_accepted]), 1);
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_peers]), 1);
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_disconnects]), 2);
    ck_assert_uint_eq(atomic_load(&st->head), 7);
    char why[160];
    ck_assert_str_eq(sl_zmon_failure_text(ZMQ_EVENT_BIND_FAILED, EADDRINUSE, why, sizeof why),
                     strerror(EADDRINUSE));
    ck_assert_str_eq(sl_zmon_failure_text(ZMQ_EVENT_CONNECTED, 5, why, sizeof why), "");
    ck_assert_ptr_nonnull(strstr(sl_zmon_failure_text(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL,
                                                      0x10000011, why, sizeof why), "0x10000011"));
    ck_assert_str_eq(sl_zmon_event_name(ZMQ_EVENT_BIND_FAILED), "bind_failed");
    ck_assert_str_eq(sl_zmon_event_name(12345), "?");
    /* a free entry reads as none */
    ck_assert_int_eq(sl_zmon_sock_get(st, 1, &v), -1);
    ck_assert_int_eq(sl_zmon_sock_get(st, SL_MAX_ZSOCKS, &v), -1);
    free(st);
}
END_TEST

START_TEST(the_ring_keeps_the_last_events_oldest_first_with_their_numbers)
{
    sl_zmon_stats_t *st = s_stats();
    sl_zevent_view_t ev[SL_ZRING];
    ck_assert_uint_eq(sl_zmon_ring_get(st, ev, SL_ZRING), 0);
    for (int i = 0; i < 3; i++)
        sl_zmon_record(st, 0, ZMQ_EVENT_CONNECTED, 0, "a", (uint64_t) i);
    ck_assert_uint_eq(sl_zmon_ring_get(st, ev, SL_ZRING), 3);
    ck_assert_uint_eq(ev[0].n, 1);
    ck_assert_uint_eq(ev[2].n, 3);
    int total = SL_ZRING * 2 + 5;
    for (int i = 3; i < total; i++) {
        char text[32];
        snprintf(text, sizeof text, "ep-%d", i);
        sl_zmon_record(st, i % 2 ? -1 : 0, ZMQ_EVENT_CONNECT_RETRIED, 0, text, (uint64_t) i);
    }
    size_t n = sl_zmon_ring_get(st, ev, SL_ZRING);
    ck_assert_uint_eq(n, SL_ZRING);
    for (size_t k = 0; k < n; k++) {
        uint64_t want = (uint64_t) total - SL_ZRING + k + 1;
        ck_assert_uint_eq(ev[k].n, want);
        char text[32];
        snprintf(text, sizeof text, "ep-%d", (int) want - 1);
        ck_assert_str_eq(ev[k].text, text);
        ck_assert_int_eq(ev[k].sock, (int) (want - 1) % 2 ? -1 : 0);
        ck_assert_uint_eq(ev[k].ms, want - 1);
    }
    /* fewer asked: the newest */
    ck_assert_uint_eq(sl_zmon_ring_get(st, ev, 2), 2);
    ck_assert_uint_eq(ev[1].n, (uint64_t) total);
    /* a long endpoint is cut, still terminated */
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sl_zmon_record(st, 0, ZMQ_EVENT_CONNECTED, 0, big, 1);
    ck_assert_uint_eq(sl_zmon_ring_get(st, ev, 1), 1);
    ck_assert_uint_eq(strlen(ev[0].text), SL_ZEVENT_TEXT_MAX - 1);
    free(st);
}
END_TEST

static int s_cb_events, s_cb_disconnects;

static void
s_cb(void *arg, int event, int value, const char *endpoint)
{
    (void) value;
    ck_assert_ptr_eq(arg, &s_cb_events);
    ck_assert_ptr_nonnull(endpoint);
    s_cb_events++;
    s_cb_disconnects += event == ZMQ_EVENT_DISCONNECTED;
}

START_TEST(a_real_socket_pair_is_counted_through_the_loop_and_entries_are_reused)
{
    sl_zmon_stats_t *st = s_stats();
    void *ctx = zmq_ctx_new();
    sl_loop_t *loop = sl_loop_new();
    sl_zmon_t *zm = sl_zmon_new(ctx, loop, st);
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/sl-test-zmon-%d.sock", (int) getpid());
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    ck_assert_int_eq(sl_zmon_attach(zm, pull, "source", NULL, s_cb, &s_cb_events), 0);
    ck_assert_int_eq(sl_zmon_attach(zm, pull, "source", NULL, NULL, NULL), -1);   /* twice */
    ck_assert_int_eq(zmq_bind(pull, ep), 0);
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    ck_assert_int_eq(sl_zmon_attach(zm, push, "producer", ep, NULL, NULL), 0);
    ck_assert_int_eq(zmq_connect(push, ep), 0);
    for (int i = 0; i < 200 && atomic_load(&st->total[SL_ZC_handshakes]) < 2; i++)
        sl_loop_run_once(loop, 20);
    sl_zsock_view_t v;
    ck_assert_int_eq(sl_zmon_sock_get(st, 0, &v), 0);
    ck_assert_str_eq(v.kind, "source");
    ck_assert_str_eq(v.endpoint, ep);            /* taken from the listening event */
    ck_assert_uint_eq(v.c[SL_ZC_binds], 1);
    ck_assert_uint_eq(v.c[SL_ZC_accepted], 1);
    ck_assert_uint_eq(v.c[SL_ZC_peers], 1);
    ck_assert_int_eq(sl_zmon_sock_get(st, 1, &v), 0);
    ck_assert_str_eq(v.kind, "producer");
    ck_assert_uint_eq(v.c[SL_ZC_connects], 1);
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_peers]), 2);
    /* the producer goes: the source sees it leave */
    sl_zmon_detach(zm, push);
    zmq_close(push);
    ck_assert_int_eq(sl_zmon_sock_get(st, 1, &v), 0);
    ck_assert_int_eq(v.state, SL_ZS_CLOSED);
    ck_assert_uint_eq(v.c[SL_ZC_peers], 0);
    for (int i = 0; i < 200 && !s_cb_disconnects; i++)
        sl_loop_run_once(loop, 20);
    ck_assert_int_eq(s_cb_disconnects, 1);
    ck_assert_int_ge(s_cb_events, 4);            /* listening, accepted, handshake, disconnect */
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_peers]), 0);
    /* a new socket takes a free entry while there is one: the closed one
     * stays visible */
    void *again = zmq_socket(ctx, ZMQ_PUSH);
    ck_assert_int_eq(sl_zmon_attach(zm, again, "producer-2", ep, NULL, NULL), 0);
    ck_assert_int_eq(sl_zmon_sock_get(st, 2, &v), 0);
    ck_assert_str_eq(v.kind, "producer-2");
    ck_assert_int_eq(v.state, SL_ZS_OPEN);
    ck_assert_int_eq(sl_zmon_sock_get(st, 1, &v), 0);
    ck_assert_str_eq(v.kind, "producer");
    ck_assert_uint_eq(atomic_load(&st->n_socks), 3);
    sl_zmon_detach(zm, again);
    zmq_close(again);
    sl_zmon_detach(zm, pull);
    zmq_close(pull);
    sl_zmon_destroy(&zm);
    ck_assert_ptr_null(zm);
    /* a respawned worker marks what the previous one left open as closed */
    atomic_store(&st->sock[5].state, SL_ZS_OPEN);
    atomic_store(&st->sock[5].c[SL_ZC_peers], 3);
    atomic_store(&st->total[SL_ZC_peers], 3);
    zm = sl_zmon_new(ctx, loop, st);
    ck_assert_int_eq(atomic_load(&st->sock[5].state), SL_ZS_CLOSED);
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_peers]), 0);
    sl_zmon_destroy(&zm);
    sl_loop_destroy(&loop);
    zmq_ctx_term(ctx);
    unlink(ep + 6);
    free(st);
}
END_TEST

START_TEST(more_sockets_than_entries_are_counted_in_the_totals)
{
    sl_zmon_stats_t *st = s_stats();
    void *ctx = zmq_ctx_new();
    sl_zmon_t *zm = sl_zmon_new(ctx, NULL, st);
    void *socks[SL_MAX_ZSOCKS + 3];
    for (int i = 0; i < SL_MAX_ZSOCKS + 3; i++) {
        socks[i] = zmq_socket(ctx, ZMQ_DEALER);
        ck_assert_int_eq(sl_zmon_attach(zm, socks[i], "to-partition", "ipc:///nowhere", NULL,
                                        NULL), 0);
    }
    ck_assert_uint_eq(atomic_load(&st->unlisted), 3);
    ck_assert_uint_eq(atomic_load(&st->n_socks), SL_MAX_ZSOCKS);
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/sl-test-zmon-b-%d.sock", (int) getpid());
    ck_assert_int_eq(zmq_bind(socks[SL_MAX_ZSOCKS + 1], ep), 0);   /* an unlisted one */
    ck_assert_int_ge(sl_zmon_poll(zm), 1);
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_binds]), 1);
    /* every entry in use: a closed socket's entry goes to the next one,
     * its counters from zero; the totals keep the old socket's */
    ck_assert_int_eq(zmq_bind(socks[4], "ipc:///tmp/sl-test-zmon-c.sock"), 0);
    sl_zmon_detach(zm, socks[4]);
    zmq_close(socks[4]);
    unlink("/tmp/sl-test-zmon-c.sock");
    socks[4] = zmq_socket(ctx, ZMQ_DEALER);
    ck_assert_int_eq(sl_zmon_attach(zm, socks[4], "newcomer", NULL, NULL, NULL), 0);
    sl_zsock_view_t v;
    ck_assert_int_eq(sl_zmon_sock_get(st, 4, &v), 0);
    ck_assert_str_eq(v.kind, "newcomer");
    ck_assert_str_eq(v.endpoint, "");
    ck_assert_uint_eq(v.c[SL_ZC_binds], 0);
    ck_assert_uint_eq(atomic_load(&st->total[SL_ZC_binds]), 2);
    ck_assert_uint_eq(atomic_load(&st->unlisted), 3);
    for (int i = 0; i < SL_MAX_ZSOCKS + 3; i++) {
        sl_zmon_detach(zm, socks[i]);
        zmq_close(socks[i]);
    }
    ck_assert_uint_eq(atomic_load(&st->unlisted), 0);
    sl_zmon_destroy(&zm);
    zmq_ctx_term(ctx);
    unlink(ep + 6);
    free(st);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("zmon");
    TCase *tc = tcase_create("zmon");
    tcase_add_test(tc, events_count_per_socket_and_in_the_totals_and_peers_never_go_negative);
    tcase_add_test(tc, the_ring_keeps_the_last_events_oldest_first_with_their_numbers);
    tcase_add_test(tc, a_real_socket_pair_is_counted_through_the_loop_and_entries_are_reused);
    tcase_add_test(tc, more_sockets_than_entries_are_counted_in_the_totals);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
