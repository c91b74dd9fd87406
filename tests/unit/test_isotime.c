/* test_isotime — timestamps parse as the iso8601 library did for
 * Ceilometer: the shapes it accepts, UTC by default, offsets applied,
 * fractions truncated to the microsecond, impossible dates refused. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdint.h>

#include "common/isotime.h"

static void
s_expect(const char *s, int64_t want_us)
{
    int64_t us = -1;
    ck_assert_msg(sl_isotime_parse(s, &us) == 0, "'%s' should parse", s);
    ck_assert_msg(us == want_us, "'%s': expected %lld us, got %lld", s, (long long) want_us,
                  (long long) us);
}

static void
s_refuse(const char *s)
{
    int64_t us;
    ck_assert_msg(sl_isotime_parse(s, &us) < 0, "'%s' should be refused", s ? s : "NULL");
}

#define T0 INT64_C(1714564800000000)    /* 2024-05-01T12:00:00Z */

START_TEST(test_shapes)
{
    s_expect("2024-05-01T12:00:00", T0);
    s_expect("2024-05-01T12:00:00Z", T0);
    s_expect("2024-05-01T12:00:00+00:00", T0);
    s_expect("2024-05-01 12:00:00", T0);
    s_expect("2024-05-01T14:00:00+02:00", T0);
    s_expect("2024-05-01T14:00:00+0200", T0);
    s_expect("2024-05-01T14:00:00+02", T0);
    s_expect("2024-05-01T11:30:00-00:30", T0);
    s_expect("2024-05-01T12:00", T0);
    s_expect("2024-05-01T1200", T0);
    s_expect("20240501T120000", T0);
    s_expect("2024-5-1T12:00:00", T0);
    s_expect("2024-05-01T12:00:00.5", T0 + 500000);
    s_expect("2024-05-01T12:00:00,25Z", T0 + 250000);
    s_expect("2024-05-01T12:00:00.1234567", T0 + 123456);      /* truncated */
    s_expect("2024-05-01", T0 - 12 * INT64_C(3600000000));
    s_expect("1970-01-01T00:00:00Z", 0);
    s_expect("2024-02-29T00:00:00", INT64_C(1709164800000000));
}
END_TEST

START_TEST(test_refusals)
{
    s_refuse(NULL);
    s_refuse("");
    s_refuse("yesterday");
    s_refuse("2024-13-01T00:00:00");
    s_refuse("2023-02-29T00:00:00");
    s_refuse("2024-05-01T24:00:00");
    s_refuse("2024-05-01T12:00:00+25:00");
    s_refuse("2024-05-01T12:00:00 junk");
    s_refuse("202405");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("isotime");
    TCase *tc = tcase_create("isotime");
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
