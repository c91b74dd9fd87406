/* stagetime: the latency histogram's buckets and quantiles, and the
 * sampled stage timer's bookkeeping (which units are timed, what is
 * scaled, what is subtracted). Only lower bounds and sums of times are
 * asserted (a spin lasts at least as long as it spins; parts of an interval
 * add up to at most the interval), never how fast anything runs. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdlib.h>
#include <string.h>

#include "common/stagetime.h"

/* Spins until the clock has moved ns. */
static void
s_spin(uint64_t ns)
{
    uint64_t t0 = sl_stagetime_now(CLOCK_MONOTONIC);
    while (sl_stagetime_now(CLOCK_MONOTONIC) - t0 < ns)
        ;
}

static sl_slot_t *
s_slot(void)
{
    sl_slot_t *s = NULL;
    ck_assert_int_eq(posix_memalign((void **) &s, 64, sizeof *s), 0);
    memset((void *) s, 0, sizeof *s);
    return s;
}

START_TEST(every_value_falls_in_its_bucket_and_buckets_are_narrow)
{
    for (uint64_t v = 0; v < 5000000; v = v < 64 ? v + 1 : v + v / 7 + 1) {
        unsigned b = sl_lat_bucket(v);
        ck_assert_msg(sl_lat_bucket_lo(b) <= v && v < sl_lat_bucket_hi(b),
                      "value %llu in bucket %u [%llu, %llu)", (unsigned long long) v, b,
                      (unsigned long long) sl_lat_bucket_lo(b),
                      (unsigned long long) sl_lat_bucket_hi(b));
    }
    for (unsigned b = 0; b + 1 < SL_LAT_BUCKETS; b++) {
        ck_assert_uint_eq(sl_lat_bucket_hi(b), sl_lat_bucket_lo(b + 1));
        if (b >= 4)   /* at most a quarter of its lower bound wide */
            ck_assert_uint_le(sl_lat_bucket_hi(b) - sl_lat_bucket_lo(b), sl_lat_bucket_lo(b) / 4);
    }
    /* powers of two are bucket edges (the Prometheus le bounds) */
    for (unsigned p = 2; p < 32; p++)
        ck_assert_uint_eq(sl_lat_bucket_lo(sl_lat_bucket((uint64_t) 1 << p)), (uint64_t) 1 << p);
    ck_assert_uint_eq(sl_lat_bucket(UINT64_MAX), SL_LAT_BUCKETS - 1);
}
END_TEST

START_TEST(quantiles_interpolate_within_a_bucket)
{
    uint64_t h[SL_LAT_BUCKETS] = { 0 };
    ck_assert(sl_lat_quantile(h, 0.5) == 0.0);
    /* 100 values of 1000 us: bucket [896, 1024); the median is its middle */
    h[sl_lat_bucket(1000)] = 100;
    ck_assert_uint_eq(sl_lat_bucket_lo(sl_lat_bucket(1000)), 896);
    double p50 = sl_lat_quantile(h, 0.5);
    ck_assert_msg(p50 == 960.0, "p50 of one bucket [896,1024): expected 960, got %g", p50);
    ck_assert(sl_lat_quantile(h, 1.0) == 1024.0);
    ck_assert(sl_lat_quantile(h, 0.0) == 896.0);
    /* 1..10000 us uniformly: quantiles within a bucket's width (25%) */
    memset(h, 0, sizeof h);
    for (uint64_t v = 1; v <= 10000; v++)
        h[sl_lat_bucket(v)]++;
    static const double qs[] = { 0.5, 0.9, 0.99 };
    for (int i = 0; i < 3; i++) {
        double got = sl_lat_quantile(h, qs[i]), want = qs[i] * 10000;
        ck_assert_msg(got > want * 0.8 && got < want * 1.25, "q%.2f of 1..10000: expected ~%g, got %g",
                      qs[i], want, got);
    }
}
END_TEST

START_TEST(records_count_sum_and_max)
{
    sl_slot_t *s = s_slot();
    sl_lat_record(s, 1500, 1);
    sl_lat_record(s, 10, 3);
    sl_lat_record(s, 0, 1);
    uint64_t n = 0;
    for (unsigned b = 0; b < SL_LAT_BUCKETS; b++)
        n += atomic_load(&s->lat[b]);
    ck_assert_uint_eq(n, 5);
    ck_assert_uint_eq(atomic_load(&s->lat[sl_lat_bucket(10)]), 3);
    ck_assert_uint_eq(atomic_load(&s->lat_sum_us), 1530);
    ck_assert_uint_eq(atomic_load(&s->lat_max_us), 1500);
    free(s);
}
END_TEST

/* 12 notifications at period 4: units 0, 4, 8 are timed; the reads of 4 and
 * 8 were marked at the end of 3 and 7 (the first had no mark). */
START_TEST(one_unit_in_period_is_timed_and_scaled)
{
    sl_slot_t *s = s_slot();
    sl_stagetime_t st;
    sl_stagetime_init(&st, s, 4, CLOCK_MONOTONIC);
    for (int i = 0; i < 12; i++) {
        sl_stagetime_begin(&st, SL_ST_read, SL_ST_decode);
        if (i == 4)
            s_spin(1000000);          /* 1 ms of decode in a timed unit */
        sl_stagetime_lap(&st, SL_ST_convert);
        sl_stagetime_end(&st, 1);
    }
    ck_assert_uint_eq(st.units, 12);
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_decode]), 3);
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_convert]), 3);
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_read]), 2);
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_publish]), 0);
    /* scaled by the period: at least 4 x 1 ms */
    ck_assert_uint_ge(atomic_load(&s->stage_ns[SL_ST_decode]), 4000000);
    /* period 0: nothing at all, but units still counted (read_us stays per unit) */
    sl_slot_t *off = s_slot();
    sl_stagetime_init(&st, off, 0, CLOCK_MONOTONIC);
    sl_stagetime_begin(&st, SL_ST_read, SL_ST_decode);
    uint64_t r1 = sl_stagetime_read_us(&st);
    ck_assert_uint_eq(sl_stagetime_read_us(&st), r1);
    sl_stagetime_end(&st, 1);
    ck_assert_uint_eq(st.units, 1);
    for (int g = 0; g < SL_ST__COUNT; g++)
        ck_assert_uint_eq(atomic_load(&off->stage_ns[g]) + atomic_load(&off->stage_timed[g]), 0);
    free(off);
    free(s);
}
END_TEST

/* Direct timings and sections inside a timed unit are not counted twice:
 * at period 1 the stages of a unit add up to at most the unit's interval. */
START_TEST(nested_timings_are_subtracted_from_the_unit)
{
    sl_slot_t *s = s_slot();
    sl_stagetime_t st;
    sl_stagetime_init(&st, s, 1, CLOCK_MONOTONIC);
    uint64_t outer0 = sl_stagetime_now(CLOCK_MONOTONIC);
    sl_stagetime_begin(&st, -1, SL_ST_receive);
    uint64_t t = sl_stagetime_sec_begin(&st);
    ck_assert_uint_ne(t, 0);
    uint64_t d = sl_stagetime_direct_begin(&st);     /* a queued publish inside the section */
    s_spin(2000000);
    sl_stagetime_direct_end(&st, SL_ST_publish, d);
    sl_stagetime_sec_end(&st, SL_ST_publish, t);
    t = sl_stagetime_sec_begin(&st);
    s_spin(2000000);
    sl_stagetime_sec_end(&st, SL_ST_transform, t);
    sl_stagetime_end(&st, 0);
    uint64_t outer = sl_stagetime_now(CLOCK_MONOTONIC) - outer0;
    uint64_t sum = 0;
    for (int g = 0; g < SL_ST__COUNT; g++)
        sum += atomic_load(&s->stage_ns[g]);
    ck_assert_msg(sum <= outer, "stages add up to %llu ns, more than the unit's %llu ns: "
                  "something counted twice", (unsigned long long) sum, (unsigned long long) outer);
    ck_assert_uint_ge(atomic_load(&s->stage_ns[SL_ST_publish]), 2000000);
    ck_assert_uint_ge(atomic_load(&s->stage_ns[SL_ST_transform]), 2000000);
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_receive]), 1);
    free(s);
}
END_TEST

/* At period 2 the second unit is not timed: its sections are skipped;
 * a section outside any unit (a timer's) is timed directly. */
START_TEST(sections_of_untimed_units_are_skipped_and_outside_units_timed)
{
    sl_slot_t *s = s_slot();
    sl_stagetime_t st;
    sl_stagetime_init(&st, s, 2, CLOCK_MONOTONIC);
    for (int i = 0; i < 2; i++) {
        sl_stagetime_begin(&st, -1, SL_ST_receive);
        uint64_t t = sl_stagetime_sec_begin(&st);
        ck_assert_msg((t != 0) == (i == 0), "unit %d: section timed %d", i, t != 0);
        sl_stagetime_sec_end(&st, SL_ST_transform, t);
        sl_stagetime_end(&st, 0);
    }
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_transform]), 1);
    sl_stagetime_begin(&st, -1, SL_ST_receive);      /* unit 2 (timed), then nothing came */
    sl_stagetime_idle(&st);
    uint64_t t = sl_stagetime_sec_begin(&st);
    ck_assert_uint_ne(t, 0);
    sl_stagetime_sec_end(&st, SL_ST_transform, t);
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_transform]), 2);
    ck_assert_uint_eq(atomic_load(&s->stage_timed[SL_ST_receive]), 1);
    free(s);
}
END_TEST

START_TEST(stage_names_and_roles_are_the_documented_set)
{
    static const char *const want[] = { "read", "decode", "convert", "serialise", "send",
                                        "receive", "transform", "publish" };
    ck_assert_int_eq(SL_ST__COUNT, 8);
    for (int g = 0; g < SL_ST__COUNT; g++) {
        ck_assert_str_eq(sl_stage_names[g], want[g]);
        ck_assert_int_eq(sl_stage_role[g], g < SL_ST_receive ? SL_ROLE_INGEST : SL_ROLE_PIPELINE);
        ck_assert_msg(strlen(sl_stage_help[g]) > 10, "stage %s has no help", want[g]);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("stagetime");
    TCase *tc = tcase_create("stagetime");
    tcase_add_test(tc, every_value_falls_in_its_bucket_and_buckets_are_narrow);
    tcase_add_test(tc, quantiles_interpolate_within_a_bucket);
    tcase_add_test(tc, records_count_sum_and_max);
    tcase_add_test(tc, one_unit_in_period_is_timed_and_scaled);
    tcase_add_test(tc, nested_timings_are_subtracted_from_the_unit);
    tcase_add_test(tc, sections_of_untimed_units_are_skipped_and_outside_units_timed);
    tcase_add_test(tc, stage_names_and_roles_are_the_documented_set);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
