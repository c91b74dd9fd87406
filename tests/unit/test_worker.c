/* worker: the heartbeat stamps the slot and gives the heap's free pages
 * back to the kernel, at most once per SL_WORKER_TRIM_MS; ending the
 * ZeroMQ context never holds a stopping worker longer than its bound. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/stats.h"
#include "tests/sl_check.h"
#include "worker/worker.h"

#define S_BLOCKS 4096
#define S_BLOCK 2048            /* 8 MiB in chunks below any mmap threshold */

/* This process's resident anonymous memory, MiB. */
static double
s_anon_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "RssAnon:", 8) == 0)
            kib = atol(line + 8);
    fclose(f);
    ck_assert_int_ge(kib, 0);
    return (double) kib / 1024.0;
}

/* 8 MiB of heap chunks, written, then freed behind a chunk that stays:
 * free() merges them but cannot shrink the heap past the one in use. */
static void *
s_backlog_freed(void)
{
    static char *b[S_BLOCKS];
    for (int i = 0; i < S_BLOCKS; i++) {
        b[i] = malloc(S_BLOCK);
        ck_assert_ptr_nonnull(b[i]);
        memset(b[i], i & 0xff, S_BLOCK);
    }
    void *pin = malloc(64);
    for (int i = 0; i < S_BLOCKS; i++)
        free(b[i]);
    return pin;
}

START_TEST(the_beat_gives_free_heap_pages_back_at_most_once_a_period)
{
    sl_slot_t slot;
    memset(&slot, 0, sizeof slot);
    sl_worker_ctx_t ctx = { .slot = &slot };

    void *pin = s_backlog_freed();
    double held = s_anon_mib();
    sl_worker_beat(&ctx);
    double trimmed = s_anon_mib();
    ck_assert_uint_gt(atomic_load(&slot.heartbeat_ms), 0);
    ck_assert_uint_eq(ctx.trimmed_ms, atomic_load(&slot.heartbeat_ms));

    /* a second backlog within the period stays until the period is over */
    void *pin2 = s_backlog_freed();
    double again = s_anon_mib();
    sl_worker_beat(&ctx);
    double within = s_anon_mib();
    ctx.trimmed_ms -= SL_WORKER_TRIM_MS;
    sl_worker_beat(&ctx);
    double after = s_anon_mib();
    fprintf(stderr, "RssAnon: %.1f MiB freed but held, %.1f after the beat; %.1f held again, "
            "%.1f after a beat within %d ms, %.1f after one past it\n", held, trimmed, again,
            within, SL_WORKER_TRIM_MS, after);
    free(pin);
    free(pin2);
    if (SL_CHECK_ASAN) {
        fprintf(stderr, "built with AddressSanitizer: its allocator replaces glibc's heap, "
                "whose trimming the normal build's run of this test checks\n");
        return;
    }
    ck_assert_msg(held - trimmed >= 6.0, "the beat gave back %.1f MiB of 8 MiB freed (%.1f -> "
                  "%.1f)", held - trimmed, held, trimmed);
    ck_assert_msg(again - within < 2.0, "a beat within SL_WORKER_TRIM_MS trimmed again "
                  "(%.1f -> %.1f MiB)", again, within);
    ck_assert_msg(within - after >= 6.0, "the beat past SL_WORKER_TRIM_MS gave back %.1f MiB "
                  "(%.1f -> %.1f)", within - after, within, after);
}
END_TEST

START_TEST(ending_the_zmq_context_returns_when_it_ends)
{
    void *zctx = zmq_ctx_new();
    void *sock = zmq_socket(zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(sock, "ipc:///nonexistent/sluice-test"), 0);
    zmq_send(sock, "x", 1, ZMQ_DONTWAIT);
    zmq_close(sock);
    uint64_t t0 = sl_now_ms();
    ck_assert_int_eq(sl_worker_zmq_term(zctx, 5000), 0);
    ck_assert_uint_lt(sl_now_ms() - t0, 2000);
}
END_TEST

/* A context that cannot end (here a socket left open; in libzmq 4.3, now
 * and then, a pipe that never finishes closing) holds it only as long as
 * the bound, then says so. */
START_TEST(ending_the_zmq_context_gives_up_at_its_bound)
{
    void *zctx = zmq_ctx_new();
    void *sock = zmq_socket(zctx, ZMQ_ROUTER);
    ck_assert_ptr_nonnull(sock);
    uint64_t t0 = sl_now_ms();
    ck_assert_int_eq(sl_worker_zmq_term(zctx, 300), -1);
    uint64_t took = sl_now_ms() - t0;
    ck_assert_uint_ge(took, 300);
    ck_assert_uint_lt(took, 3000);
    /* (the context stays with the thread blocked in it, as in a worker
     * that exits: its memory is reachable from that thread) */
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("beat");
    tcase_add_test(tc, the_beat_gives_free_heap_pages_back_at_most_once_a_period);
    suite_add_tcase(s, tc);
    tc = tcase_create("zmq");
    tcase_add_test(tc, ending_the_zmq_context_returns_when_it_ends);
    tcase_add_test(tc, ending_the_zmq_context_gives_up_at_its_bound);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
