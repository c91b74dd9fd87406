/* reorder: a partition's notification groups come out in event-time order. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/sl_check.h"
#include "worker/reorder.h"

static char s_out[64][64];
static size_t s_n_out;

static void
s_collect(void *arg, const sl_sample_t *s, size_t n, void *tag)
{
    (void) arg;
    (void) tag;
    for (size_t i = 0; i < n && s_n_out < 64; i++)
        snprintf(s_out[s_n_out++], 64, "%s/%s", s[i].timestamp, s[i].name);
}

static void
s_add(sl_reorder_t *r, const char *ts, const char *name, const char *msg, uint64_t now)
{
    char tsbuf[64], namebuf[64];
    snprintf(tsbuf, sizeof tsbuf, "%s", ts);
    snprintf(namebuf, sizeof namebuf, "%s", name);
    sl_sample_t s;
    memset(&s, 0, sizeof s);
    s.timestamp = tsbuf;
    s.name = namebuf;
    s.message_id = msg;
    s.resource_metadata = "{}";
    sl_reorder_add(r, &s, 1, now, NULL);
    /* The reorder buffer must have copied: scribble over the caller's strings. */
    memset(tsbuf, 'x', sizeof tsbuf - 1);
    memset(namebuf, 'y', sizeof namebuf - 1);
}

START_TEST(groups_are_held_for_the_window_then_released_in_timestamp_order)
{
    sl_reorder_t *r = sl_reorder_new(100);
    s_n_out = 0;
    s_add(r, "2026-01-01T00:00:03+00:00", "c", "m3", 1000);
    s_add(r, "2026-01-01T00:00:01+00:00", "a", "m1", 1010);
    s_add(r, "2026-01-01T00:00:02+00:00", "b", "m2", 1050);
    ck_assert_uint_eq(sl_reorder_release(r, 1099, 0, s_collect, NULL), 0);
    /* At 1110 only "a" (arrived 1010) is due; "b" is ahead of "c" but recent. */
    ck_assert_uint_eq(sl_reorder_release(r, 1110, 0, s_collect, NULL), 1);
    ck_assert_str_eq(s_out[0], "2026-01-01T00:00:01+00:00/a");
    ck_assert_uint_eq(sl_reorder_release(r, 1150, 0, s_collect, NULL), 2);
    ck_assert_str_eq(s_out[1], "2026-01-01T00:00:02+00:00/b");
    ck_assert_str_eq(s_out[2], "2026-01-01T00:00:03+00:00/c");
    ck_assert_uint_eq(sl_reorder_pending(r), 0);
    sl_reorder_destroy(&r);
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(equal_timestamps_order_by_message_id_not_arrival)
{
    sl_reorder_t *r = sl_reorder_new(10);
    s_n_out = 0;
    s_add(r, "2026-01-01T00:00:01+00:00", "second", "m2", 0);
    s_add(r, "2026-01-01T00:00:01+00:00", "first", "m1", 0);
    ck_assert_uint_eq(sl_reorder_release(r, 0, 1, s_collect, NULL), 2);
    ck_assert_str_eq(s_out[0], "2026-01-01T00:00:01+00:00/first");
    ck_assert_str_eq(s_out[1], "2026-01-01T00:00:01+00:00/second");
    sl_reorder_destroy(&r);
}
END_TEST

START_TEST(force_releases_everything_and_destroy_frees_what_is_held)
{
    sl_reorder_t *r = sl_reorder_new(60000);
    s_n_out = 0;
    for (int i = 9; i >= 0; i--) {
        char ts[64];
        snprintf(ts, sizeof ts, "2026-01-01T00:00:0%d+00:00", i);
        s_add(r, ts, "m", "x", 5);
    }
    ck_assert_uint_eq(sl_reorder_release(r, 6, 0, s_collect, NULL), 0);
    ck_assert_uint_eq(sl_reorder_release(r, 6, 1, s_collect, NULL), 10);
    for (int i = 0; i < 10; i++) {
        char want[64];
        snprintf(want, sizeof want, "2026-01-01T00:00:0%d+00:00/m", i);
        ck_assert_str_eq(s_out[i], want);
    }
    s_add(r, "2026-01-01T00:00:00+00:00", "left", "x", 0);
    sl_reorder_destroy(&r);   /* ASan/valgrind: nothing leaks */
}
END_TEST

/* Each group's tag comes back with that group, in release order: what the
 * pipeline worker uses to complete a frame only once its samples are out. */
static void *s_tags[16];
static size_t s_n_tags;

static void
s_tagged(void *arg, const sl_sample_t *s, size_t n, void *tag)
{
    int *done = arg;
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_nonnull(s[0].name);
    if (s_n_tags < 16)
        s_tags[s_n_tags++] = tag;
    (*(int *) tag)--;
    (*done)++;
}

START_TEST(each_group_hands_back_its_tag_when_released)
{
    sl_reorder_t *r = sl_reorder_new(50);
    int refs[2] = { 0, 0 };     /* two "frames": the first with two groups */
    sl_sample_t s;
    memset(&s, 0, sizeof s);
    s.name = "m";
    s.timestamp = "2026-01-01T00:00:02+00:00";
    s.message_id = "b";
    sl_reorder_add(r, &s, 1, 0, &refs[0]);
    refs[0]++;
    s.timestamp = "2026-01-01T00:00:01+00:00";
    s.message_id = "a";
    sl_reorder_add(r, &s, 1, 0, &refs[1]);
    refs[1]++;
    s.timestamp = "2026-01-01T00:00:03+00:00";
    s.message_id = "c";
    sl_reorder_add(r, &s, 1, 30, &refs[0]);
    refs[0]++;
    sl_reorder_add(r, &s, 0, 30, &refs[1]);   /* empty: held nothing, no callback */
    int done = 0;
    s_n_tags = 0;
    ck_assert_uint_eq(sl_reorder_release(r, 60, 0, s_tagged, &done), 2);
    ck_assert_msg(s_tags[0] == &refs[1] && s_tags[1] == &refs[0],
                  "tags came back out of event-time order");
    ck_assert_int_eq(refs[1], 0);
    ck_assert_int_eq(refs[0], 1);    /* its second group is still held */
    ck_assert_uint_eq(sl_reorder_release(r, 70, 0, s_tagged, &done), 0);
    ck_assert_uint_eq(sl_reorder_release(r, 80, 0, s_tagged, &done), 1);
    ck_assert_int_eq(refs[0], 0);
    ck_assert_int_eq(done, 3);
    sl_reorder_destroy(&r);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("reorder");
    TCase *tc = tcase_create("reorder");
    tcase_add_test(tc, groups_are_held_for_the_window_then_released_in_timestamp_order);
    tcase_add_test(tc, equal_timestamps_order_by_message_id_not_arrival);
    tcase_add_test(tc, force_releases_everything_and_destroy_frees_what_is_held);
    tcase_add_test(tc, each_group_hands_back_its_tag_when_released);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
