/* test_ring — balance, determinism and movement of the partition ring.
 *
 * Measured with the default 64 vnodes and 25% slack, keys
 * sl_hash64("meter_sink/<p>"), member sets "pipeline-<i>" and
 * "host<a|b|c>/pipeline-<i>" of 2..16 members, every single join and leave
 * (removing each member of each set in turn):
 *
 *   partitions   moved / ideal,      worst moved / ideal
 *                summed over cases   (moved, ideal, members)
 *        16          1.88            10 / 1.2  (N=13)
 *        17          1.80            11 / 1.2  (N=14)
 *        64          1.48            15 / 4.0  (N=16)
 *       100          1.32            16 / 6.2  (N=16)
 *       256          1.12            43 / 25.6 (N=10)
 *      1000          1.04           141 / 100  (N=10)
 *      1024          1.04           101 / 68   (N=15)
 *
 * ("ideal" = P/N, N the size of the larger set: the joining or leaving
 * member's own keys must move in any scheme.) With strict balance (slack 0)
 * the sums are 1.87 (16), 1.36 (256) and 1.27 (1024).
 *
 * With at least ~60 partitions per member the suggested bound
 * ceil(P/N)*1.5 + 2 held in every case. With few partitions per member it
 * does not: loads are then forced to floor/ceil of the mean, the keys a
 * newcomer captures are rarely taken from the members that have to shrink,
 * and chains of hand-overs follow (plain bounded-load walking and a greedy
 * by distance did no better there: up to 10 and 8 moves of 16). The chains
 * resolve a random mismatch whose size grows like sqrt(P), hence the bound
 * used below: moved <= hi + 2.5 sqrt(P), hi being the most keys the joining
 * member may hold (measured worst: hi + 2.18 sqrt(P), at P = 17). */
#include <check.h>

#include "tests/sl_check.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/ring.h"

#define MAX_KEYS 1024
#define MAX_MEMBERS 16

static const size_t s_partitions[] = { 16, 17, 64, 100, 256, 1000, 1024 };
#define N_PARTITIONS (sizeof s_partitions / sizeof s_partitions[0])

static void
s_keys(uint64_t *keys, size_t n)
{
    char buf[64];
    for (size_t p = 0; p < n; p++) {
        int len = snprintf(buf, sizeof buf, "meter_sink/%zu", p);
        keys[p] = sl_hash64(buf, (size_t) len);
    }
}

static void
s_name(char *buf, size_t len, int style, int i)
{
    if (style == 0)
        snprintf(buf, len, "pipeline-%d", i);
    else
        snprintf(buf, len, "host%c/pipeline-%d", 'a' + i % 3, i);
}

/* A ring of members 0..n-1 of a style, leaving out `skip` (-1 = none). */
static sl_ring_t *
s_ring(int style, int n, int skip, unsigned slack)
{
    sl_ring_t *ring = sl_ring_new(0);
    ck_assert_ptr_nonnull(ring);
    ck_assert_int_eq(sl_ring_set_slack(ring, slack), 0);
    char buf[64];
    for (int i = 0; i < n; i++) {
        if (i == skip)
            continue;
        s_name(buf, sizeof buf, style, i);
        ck_assert_int_eq(sl_ring_add(ring, buf), 0);
    }
    return ring;
}

/* The contract's balance band in integers: within +-slack% of the mean, or
 * floor/ceil of the mean where that band holds no integer. */
static int
s_load_ok(size_t load, size_t p, size_t n, unsigned slack)
{
    if (load == p / n || load == (p + n - 1) / n)
        return 1;
    return load * n * 100 >= p * (100 - slack) && load * n * 100 <= p * (100 + slack);
}

START_TEST(test_membership_is_a_sorted_set)
{
    sl_ring_t *ring = sl_ring_new(8);
    ck_assert_uint_eq(sl_ring_size(ring), 0);
    ck_assert_int_eq(sl_ring_add(ring, "pipeline-2"), 0);
    ck_assert_int_eq(sl_ring_add(ring, "pipeline-0"), 0);
    ck_assert_int_eq(sl_ring_add(ring, "host-b/pipeline-1"), 0);
    ck_assert_msg(sl_ring_add(ring, "pipeline-0") == -1, "adding a member twice must fail");
    ck_assert_uint_eq(sl_ring_size(ring), 3);
    ck_assert_str_eq(sl_ring_member(ring, 0), "host-b/pipeline-1");
    ck_assert_str_eq(sl_ring_member(ring, 1), "pipeline-0");
    ck_assert_str_eq(sl_ring_member(ring, 2), "pipeline-2");
    ck_assert_ptr_null(sl_ring_member(ring, 3));
    ck_assert_int_eq(sl_ring_find(ring, "pipeline-2"), 2);
    ck_assert_int_eq(sl_ring_find(ring, "pipeline-9"), -1);
    ck_assert_int_eq(sl_ring_remove(ring, "pipeline-0"), 0);
    ck_assert_msg(sl_ring_remove(ring, "pipeline-0") == -1, "removing an absent member must fail");
    ck_assert_uint_eq(sl_ring_size(ring), 2);
    ck_assert_int_eq(sl_ring_find(ring, "pipeline-2"), 1);
    sl_ring_destroy(&ring);
    ck_assert_ptr_null(ring);
    sl_ring_destroy(&ring);             /* NULL is fine */
}
END_TEST

START_TEST(test_empty_ring_cannot_assign)
{
    sl_ring_t *ring = sl_ring_new(0);
    uint64_t keys[4];
    int owner[4];
    s_keys(keys, 4);
    ck_assert_msg(sl_ring_assign(ring, keys, 4, owner) == -1,
                  "an empty ring must refuse to assign");
    ck_assert_int_eq(sl_ring_add(ring, "pipeline-0"), 0);
    ck_assert_int_eq(sl_ring_remove(ring, "pipeline-0"), 0);
    ck_assert_msg(sl_ring_assign(ring, keys, 4, owner) == -1,
                  "a ring emptied again must refuse to assign");
    ck_assert_int_eq(sl_ring_add(ring, "pipeline-0"), 0);
    ck_assert_int_eq(sl_ring_assign(ring, keys, 0, owner), 0);
    ck_assert_int_eq(sl_ring_assign(ring, keys, 4, owner), 0);
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(owner[k], 0);
    sl_ring_destroy(&ring);
}
END_TEST

START_TEST(test_slack_is_capped_at_the_contract)
{
    sl_ring_t *ring = sl_ring_new(0);
    ck_assert_int_eq(sl_ring_set_slack(ring, 0), 0);
    ck_assert_int_eq(sl_ring_set_slack(ring, SL_RING_MAX_SLACK), 0);
    ck_assert_msg(sl_ring_set_slack(ring, SL_RING_MAX_SLACK + 1) == -1,
                  "slack above %d%% must be refused", SL_RING_MAX_SLACK);
    sl_ring_destroy(&ring);
}
END_TEST

/* Every partitions count x 1..16 members x both name styles. */
START_TEST(test_loads_stay_within_25_percent_of_the_mean)
{
    size_t p = s_partitions[_i];
    uint64_t keys[MAX_KEYS];
    int owner[MAX_KEYS];
    s_keys(keys, p);
    for (int style = 0; style < 2; style++) {
        for (int n = 1; n <= MAX_MEMBERS; n++) {
            sl_ring_t *ring = s_ring(style, n, -1, 25);
            ck_assert_int_eq(sl_ring_assign(ring, keys, p, owner), 0);
            size_t load[MAX_MEMBERS] = { 0 };
            for (size_t k = 0; k < p; k++) {
                ck_assert_msg(owner[k] >= 0 && owner[k] < n,
                              "P=%zu N=%d: key %zu: owner %d out of range", p, n, k, owner[k]);
                load[owner[k]]++;
            }
            for (int m = 0; m < n; m++)
                ck_assert_msg(s_load_ok(load[m], p, (size_t) n, 25),
                              "P=%zu N=%d style %d: member %s holds %zu, expected within "
                              "25%% of %.2f", p, n, style, sl_ring_member(ring, (size_t) m),
                              load[m], (double) p / n);
            sl_ring_destroy(&ring);
        }
    }
}
END_TEST

START_TEST(test_strict_slack_gives_floor_or_ceil)
{
    size_t p = s_partitions[_i];
    uint64_t keys[MAX_KEYS];
    int owner[MAX_KEYS];
    s_keys(keys, p);
    for (int n = 1; n <= MAX_MEMBERS; n++) {
        sl_ring_t *ring = s_ring(1, n, -1, 0);
        ck_assert_int_eq(sl_ring_assign(ring, keys, p, owner), 0);
        size_t load[MAX_MEMBERS] = { 0 };
        for (size_t k = 0; k < p; k++)
            load[owner[k]]++;
        for (int m = 0; m < n; m++)
            ck_assert_msg(load[m] == p / (size_t) n || load[m] == (p + (size_t) n - 1) / (size_t) n,
                          "P=%zu N=%d strict: member %d holds %zu, expected %zu or %zu",
                          p, n, m, load[m], p / (size_t) n, (p + (size_t) n - 1) / (size_t) n);
        sl_ring_destroy(&ring);
    }
}
END_TEST

START_TEST(test_fewer_keys_than_members_gives_at_most_one_each)
{
    uint64_t keys[5];
    int owner[5];
    s_keys(keys, 5);
    sl_ring_t *ring = s_ring(0, 12, -1, 25);
    ck_assert_int_eq(sl_ring_assign(ring, keys, 5, owner), 0);
    int load[12] = { 0 };
    for (int k = 0; k < 5; k++)
        load[owner[k]]++;
    for (int m = 0; m < 12; m++)
        ck_assert_msg(load[m] <= 1, "member %d holds %d of 5 keys on 12 members", m, load[m]);
    sl_ring_destroy(&ring);
}
END_TEST

START_TEST(test_assignment_ignores_insertion_order)
{
    enum { P = 100, N = 11 };
    uint64_t keys[P];
    int a[P], b[P];
    s_keys(keys, P);
    sl_ring_t *fwd = s_ring(1, N, -1, 25);
    sl_ring_t *rev = sl_ring_new(0);
    char buf[64];
    /* reverse order, with a member added and removed on the way */
    for (int i = N - 1; i >= 0; i--) {
        s_name(buf, sizeof buf, 1, i);
        ck_assert_int_eq(sl_ring_add(rev, buf), 0);
        if (i == 5)
            ck_assert_int_eq(sl_ring_add(rev, "intruder"), 0);
    }
    ck_assert_int_eq(sl_ring_remove(rev, "intruder"), 0);
    ck_assert_int_eq(sl_ring_assign(fwd, keys, P, a), 0);
    ck_assert_int_eq(sl_ring_assign(rev, keys, P, b), 0);
    for (int k = 0; k < P; k++)
        ck_assert_msg(strcmp(sl_ring_member(fwd, (size_t) a[k]), sl_ring_member(rev, (size_t) b[k])) == 0,
                      "key %d: %s in insertion order, %s in reverse order", k,
                      sl_ring_member(fwd, (size_t) a[k]), sl_ring_member(rev, (size_t) b[k]));
    /* and a second computation on the same ring agrees with the first */
    ck_assert_int_eq(sl_ring_assign(fwd, keys, P, b), 0);
    ck_assert_mem_eq(a, b, sizeof a);
    sl_ring_destroy(&fwd);
    sl_ring_destroy(&rev);
}
END_TEST

/* Every process and host must compute the same owners, release after
 * release: pin one small assignment so a change shows up here. */
START_TEST(test_assignment_is_stable_across_builds)
{
    enum { P = 16 };
    uint64_t keys[P];
    int owner[P];
    static const int expected[P] = { 0, 1, 2, 0, 0, 2, 2, 1, 2, 1, 0, 2, 1, 1, 1, 2 };
    s_keys(keys, P);
    sl_ring_t *ring = s_ring(0, 3, -1, 25);
    ck_assert_int_eq(sl_ring_assign(ring, keys, P, owner), 0);
    for (int k = 0; k < P; k++)
        ck_assert_msg(owner[k] == expected[k], "key %d: expected owner %d, got %d",
                      k, expected[k], owner[k]);
    sl_ring_destroy(&ring);
}
END_TEST

/* Every join and leave for one partitions count; see the table above. */
START_TEST(test_join_or_leave_moves_about_one_nth)
{
    size_t p = s_partitions[_i];
    uint64_t keys[MAX_KEYS];
    int big[MAX_KEYS], small[MAX_KEYS];
    s_keys(keys, p);
    double moved_sum = 0, ideal_sum = 0;
    for (int style = 0; style < 2; style++) {
        for (int n = 2; n <= MAX_MEMBERS; n++) {
            sl_ring_t *all = s_ring(style, n, -1, 25);
            ck_assert_int_eq(sl_ring_assign(all, keys, p, big), 0);
            size_t hi = p * 125 / (100 * (size_t) n);
            if (hi < (p + (size_t) n - 1) / (size_t) n)
                hi = (p + (size_t) n - 1) / (size_t) n;
            double bound = (double) hi + 2.5 * sqrt((double) p);
            for (int x = 0; x < n; x++) {
                sl_ring_t *rest = s_ring(style, n, x, 25);
                ck_assert_int_eq(sl_ring_assign(rest, keys, p, small), 0);
                size_t moved = 0;
                for (size_t k = 0; k < p; k++)
                    moved += strcmp(sl_ring_member(all, (size_t) big[k]),
                                    sl_ring_member(rest, (size_t) small[k])) != 0;
                ck_assert_msg((double) moved <= bound,
                              "P=%zu N=%d style %d, member %d joins/leaves: moved %zu, "
                              "expected <= %.1f (ideal %.1f)", p, n, style, x, moved, bound,
                              (double) p / n);
                if (p >= 1000)
                    ck_assert_msg((double) moved <= ceil((double) p / n) * 1.5 + 2,
                                  "P=%zu N=%d: moved %zu, expected <= ceil(P/N)*1.5+2 = %.1f",
                                  p, n, moved, ceil((double) p / n) * 1.5 + 2);
                moved_sum += (double) moved;
                ideal_sum += (double) p / n;
                sl_ring_destroy(&rest);
            }
            sl_ring_destroy(&all);
        }
    }
    /* On average: within 2x of the ideal for few partitions per member, and
     * within 25% once partitions outnumber members well. */
    double limit = p >= 256 ? 1.25 : 2.0;
    ck_assert_msg(moved_sum / ideal_sum <= limit,
                  "P=%zu: moved %.0f over all joins and leaves, expected <= %.2f x ideal %.0f",
                  p, moved_sum, limit, ideal_sum);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("membership");
    tcase_add_test(tc, test_membership_is_a_sorted_set);
    tcase_add_test(tc, test_empty_ring_cannot_assign);
    tcase_add_test(tc, test_slack_is_capped_at_the_contract);
    suite_add_tcase(s, tc);
    tc = tcase_create("assignment");
    tcase_add_loop_test(tc, test_loads_stay_within_25_percent_of_the_mean, 0, (int) N_PARTITIONS);
    tcase_add_loop_test(tc, test_strict_slack_gives_floor_or_ceil, 0, (int) N_PARTITIONS);
    tcase_add_test(tc, test_fewer_keys_than_members_gives_at_most_one_each);
    tcase_add_test(tc, test_assignment_ignores_insertion_order);
    tcase_add_test(tc, test_assignment_is_stable_across_builds);
    suite_add_tcase(s, tc);
    tc = tcase_create("movement");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_join_or_leave_moves_about_one_nth, 0, (int) N_PARTITIONS);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
