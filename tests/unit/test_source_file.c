/* The file source plugin through its contract (worker/sources/source.h),
 * with a fake core: which lines a worker delivers, with which tokens, and
 * where it starts again after confirmations, a stop without them, a
 * changed worker count and a replaced file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/source_conf.h"
#include "tests/sl_check.h"
#include "worker/sources/source.h"

#define S_MAX 4096

typedef struct {
    uint64_t tokens[S_MAX];
    char lines[S_MAX][32];
    size_t n;
    int pause_after;        /* pause the source after this many (0 = never) */
} s_core_t;

static void
s_deliver(void *core, sl_source_inst_t *src, uint64_t token, const char *buf, size_t len)
{
    s_core_t *c = core;
    ck_assert_uint_lt(c->n, S_MAX);
    c->tokens[c->n] = token;
    snprintf(c->lines[c->n], sizeof c->lines[0], "%.*s", (int) len, buf);
    c->n++;
    if (c->pause_after && c->n >= (size_t) c->pause_after)
        sl_source_set_paused(src, 1);
}

typedef struct {
    char dir[64];
    char path[128];
    sl_conf_t conf;
    sl_source_conf_t sc;
    sl_file_source_opts_t opts;
    sl_slot_t slot;
    sl_ratelimit_t rl;
} s_fix_t;

static void
s_fixture(s_fix_t *fx, int lines)
{
    memset(fx, 0, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sl-srcfile.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/in.jsonl", fx->dir);
    FILE *f = fopen(fx->path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < lines; i++)
        fprintf(f, "line-%d\n", i);
    fclose(f);
    fx->conf.run_dir = fx->dir;
    fx->conf.max_message_size = 1024;
    fx->opts.path = fx->path;
    fx->sc.type = &sl_source_type_file;
    fx->sc.opts = &fx->opts;
}

/* Runs worker k of n until the source is done or paused; the source
 * instance stays open in *src for acks. */
static void
s_open(s_fix_t *fx, sl_loop_t *loop, s_core_t *core, sl_source_inst_t *src, int k, int n)
{
    memset(src, 0, sizeof *src);
    src->plugin = &sl_source_file;
    src->env = (sl_source_env_t) {
        .conf = &fx->conf, .sc = &fx->sc, .index = 0, .worker = k, .n_workers = n,
        .loop = loop, .slot = &fx->slot, .rl = &fx->rl, .deliver = s_deliver, .core = core,
    };
    char err[256];
    ck_assert_msg(src->plugin->init(src, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 200 && !src->done && !src->paused; i++)
        sl_loop_run_once(loop, 1);
}

static void
s_ack_first(sl_source_inst_t *src, s_core_t *core, size_t n)
{
    for (size_t i = 0; i < n; i++)
        src->plugin->ack(src, core->tokens[i]);
}

static void
s_rm(s_fix_t *fx)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(a_worker_delivers_its_share_with_line_numbers_as_tokens)
{
    s_fix_t fx;
    s_fixture(&fx, 10);
    sl_loop_t *loop = sl_loop_new();
    s_core_t core = { .n = 0 };
    sl_source_inst_t src;
    s_open(&fx, loop, &core, &src, 1, 3);
    ck_assert_int_eq(src.done, 1);
    ck_assert_uint_eq(core.n, 3);   /* lines 1, 4, 7 */
    ck_assert_uint_eq(core.tokens[0], 1);
    ck_assert_uint_eq(core.tokens[2], 7);
    ck_assert_str_eq(core.lines[1], "line-4");
    s_ack_first(&src, &core, core.n);
    sl_source_close(&src);
    sl_loop_destroy(&loop);
    s_rm(&fx);
}
END_TEST

START_TEST(a_restart_continues_after_the_last_confirmed_line_and_rereads_the_rest)
{
    s_fix_t fx;
    s_fixture(&fx, 100);
    sl_loop_t *loop = sl_loop_new();
    s_core_t core = { .n = 0, .pause_after = 30 };
    sl_source_inst_t src;
    s_open(&fx, loop, &core, &src, 0, 1);
    ck_assert_uint_eq(core.n, 30);
    s_ack_first(&src, &core, 20);      /* 10 delivered, not confirmed */
    sl_source_close(&src);              /* a stop: the position is written */
    s_core_t again = { .n = 0 };
    s_open(&fx, loop, &again, &src, 0, 1);
    ck_assert_uint_eq(again.n, 80);
    ck_assert_uint_eq(again.tokens[0], 20);
    ck_assert_str_eq(again.lines[0], "line-20");
    s_ack_first(&src, &again, again.n);
    sl_source_close(&src);
    s_core_t none = { .n = 0 };
    s_open(&fx, loop, &none, &src, 0, 1);
    ck_assert_uint_eq(none.n, 0);      /* everything was confirmed */
    sl_source_close(&src);
    sl_loop_destroy(&loop);
    s_rm(&fx);
}
END_TEST

START_TEST(the_position_is_saved_while_running_so_a_kill_loses_nothing)
{
    s_fix_t fx;
    s_fixture(&fx, 50);
    sl_loop_t *loop = sl_loop_new();
    s_core_t core = { .n = 0, .pause_after = 40 };
    sl_source_inst_t src;
    s_open(&fx, loop, &core, &src, 0, 1);
    s_ack_first(&src, &core, 25);
    /* the periodic save runs on the loop; then the process "dies": the
     * instance is never closed (only its memory is freed by the test's
     * end, via a second fixture reading the file) */
    for (int i = 0; i < 30; i++)
        sl_loop_run_once(loop, 10);
    s_core_t again = { .n = 0 };
    sl_source_inst_t src2;
    sl_loop_t *loop2 = sl_loop_new();
    s_open(&fx, loop2, &again, &src2, 0, 1);
    ck_assert_uint_eq(again.n, 25);
    ck_assert_uint_eq(again.tokens[0], 25);
    s_ack_first(&src2, &again, again.n);
    sl_source_close(&src2);
    sl_source_close(&src);
    sl_loop_destroy(&loop2);
    sl_loop_destroy(&loop);
    s_rm(&fx);
}
END_TEST

START_TEST(a_changed_worker_count_rereads_nothing_that_was_confirmed)
{
    s_fix_t fx;
    s_fixture(&fx, 60);
    sl_loop_t *loop = sl_loop_new();
    /* two workers, confirmed up to different lines */
    s_core_t w0 = { .n = 0, .pause_after = 10 }, w1 = { .n = 0, .pause_after = 4 };
    sl_source_inst_t s0, s1;
    s_open(&fx, loop, &w0, &s0, 0, 2);
    s_open(&fx, loop, &w1, &s1, 1, 2);
    s_ack_first(&s0, &w0, 10);          /* lines 0..18 even */
    s_ack_first(&s1, &w1, 4);           /* lines 1..7 odd */
    sl_source_close(&s0);
    sl_source_close(&s1);
    /* three workers now: together they must deliver exactly the lines not
     * confirmed before */
    int seen[60] = { 0 };
    for (int k = 0; k < 3; k++) {
        s_core_t c = { .n = 0 };
        sl_source_inst_t s;
        s_open(&fx, loop, &c, &s, k, 3);
        for (size_t i = 0; i < c.n; i++)
            seen[c.tokens[i]]++;
        s_ack_first(&s, &c, c.n);
        sl_source_close(&s);
    }
    for (int ln = 0; ln < 60; ln++) {
        int before = (ln % 2 == 0 && ln < 20) || (ln % 2 == 1 && ln < 8);
        ck_assert_msg(seen[ln] == !before, "line %d delivered %d times", ln, seen[ln]);
    }
    sl_loop_destroy(&loop);
    s_rm(&fx);
}
END_TEST

START_TEST(another_file_at_the_same_path_is_read_from_its_start)
{
    s_fix_t fx;
    s_fixture(&fx, 20);
    sl_loop_t *loop = sl_loop_new();
    s_core_t core = { .n = 0 };
    sl_source_inst_t src;
    s_open(&fx, loop, &core, &src, 0, 1);
    s_ack_first(&src, &core, core.n);
    sl_source_close(&src);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.new", fx.path);
    FILE *f = fopen(tmp, "w");
    fprintf(f, "fresh-0\nfresh-1\n");
    fclose(f);
    ck_assert_int_eq(rename(tmp, fx.path), 0);   /* a new inode */
    s_core_t again = { .n = 0 };
    s_open(&fx, loop, &again, &src, 0, 1);
    ck_assert_uint_eq(again.n, 2);
    ck_assert_str_eq(again.lines[0], "fresh-0");
    s_ack_first(&src, &again, again.n);
    sl_source_close(&src);
    sl_loop_destroy(&loop);
    s_rm(&fx);
}
END_TEST

START_TEST(a_stop_ends_every_worker_at_one_common_line)
{
    s_fix_t fx;
    s_fixture(&fx, 100);
    sl_loop_t *loop = sl_loop_new();
    s_core_t w0 = { .n = 0, .pause_after = 10 }, w1 = { .n = 0, .pause_after = 3 };
    sl_source_inst_t s0, s1;
    s_open(&fx, loop, &w0, &s0, 0, 2);   /* read lines 0..18 */
    s_open(&fx, loop, &w1, &s1, 1, 2);   /* read lines 1..5 */
    s0.env.stop_id = s1.env.stop_id = 42;
    sl_source_set_paused(&s0, 0);
    sl_source_set_paused(&s1, 0);
    w0.pause_after = w1.pause_after = 0;
    int busy0 = 1, busy1 = 1;
    for (int i = 0; i < 1000 && (busy0 || busy1); i++) {
        if (busy0)
            busy0 = s0.plugin->drain(&s0);
        if (busy1)
            busy1 = s1.plugin->drain(&s1);
    }
    ck_assert_int_eq(busy0 + busy1, 0);
    /* worker 1 caught up to the line worker 0 had reached (19), no further */
    ck_assert_uint_eq(w1.n, 9);
    ck_assert_uint_eq(w1.tokens[w1.n - 1], 17);
    ck_assert_uint_eq(w0.n, 10);
    s_ack_first(&s0, &w0, w0.n);
    s_ack_first(&s1, &w1, w1.n);
    sl_source_close(&s0);
    sl_source_close(&s1);
    /* the next generation, with one worker, starts at line 19 exactly */
    s_core_t next = { .n = 0 };
    sl_source_inst_t s;
    s_open(&fx, loop, &next, &s, 0, 1);
    ck_assert_uint_eq(next.n, 81);
    ck_assert_uint_eq(next.tokens[0], 19);
    s_ack_first(&s, &next, next.n);
    sl_source_close(&s);
    sl_loop_destroy(&loop);
    s_rm(&fx);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("source_file");
    TCase *tc = tcase_create("contract");
    tcase_add_test(tc, a_worker_delivers_its_share_with_line_numbers_as_tokens);
    tcase_add_test(tc, a_restart_continues_after_the_last_confirmed_line_and_rereads_the_rest);
    tcase_add_test(tc, the_position_is_saved_while_running_so_a_kill_loses_nothing);
    tcase_add_test(tc, a_changed_worker_count_rereads_nothing_that_was_confirmed);
    tcase_add_test(tc, another_file_at_the_same_path_is_read_from_its_start);
    tcase_add_test(tc, a_stop_ends_every_worker_at_one_common_line);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
