/* test_pycompat — the Python text forms sluice reproduces by hand:
 * datetime.isoformat() and repr(float), against the values Python 3.11
 * prints for them (and, for isoformat, against printf's fields). */
#include <check.h>

#include "tests/sl_check.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/pycompat.h"

static sl_arena_t s_a;

static void
s_setup(void)
{
    sl_arena_init(&s_a, 0);
}

static void
s_teardown(void)
{
    sl_arena_destroy(&s_a);
}

START_TEST(test_isoformat_matches_python)
{
    sl_py_dt_t t = { 2015, 7, 10, 20, 5, 9, 0, 0 };
    ck_assert_str_eq(sl_py_dt_isoformat(&s_a, &t, 0), "2015-07-10T20:05:09");
    ck_assert_str_eq(sl_py_dt_isoformat(&s_a, &t, 1), "2015-07-10T20:05:09+00:00");
    t.micro = 1234;
    t.offset = -330;
    ck_assert_str_eq(sl_py_dt_isoformat(&s_a, &t, 1), "2015-07-10T20:05:09.001234-05:30");
    t = (sl_py_dt_t) { 1, 1, 1, 0, 0, 0, 999999, 1439 };
    ck_assert_str_eq(sl_py_dt_isoformat(&s_a, &t, 1), "0001-01-01T00:00:00.999999+23:59");
    ck_assert_str_eq(sl_py_dt_isoformat(&s_a, &t, 0), "0001-01-01T00:00:00.999999");
    /* every field at every width, against printf */
    for (int i = 0; i < 2000; i++) {
        sl_py_dt_t u = { 1 + i * 5 % 9999, 1 + i % 12, 1 + i % 28, i % 24, i * 7 % 60,
                         i * 13 % 60, i % 3 ? (long) i * 4999 % 1000000 : 0, i % 2879 - 1439 };
        char want[64], frac[16] = "", tz[16];
        if (u.micro)
            snprintf(frac, sizeof frac, ".%06ld", u.micro);
        int off = u.offset < 0 ? -u.offset : u.offset;
        snprintf(tz, sizeof tz, "%c%02d:%02d", u.offset < 0 ? '-' : '+', off / 60, off % 60);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", u.year, u.month, u.day,
                 u.hour, u.minute, u.second, frac, tz);
        ck_assert_str_eq(sl_py_dt_isoformat(&s_a, &u, 1), want);
    }
}
END_TEST

START_TEST(test_float_repr_matches_python)
{
    /* repr() in Python 3.11 */
    static const struct { double d; const char *repr; } cases[] = {
        { 512.0, "512.0" }, { -3.0, "-3.0" }, { 1.0, "1.0" }, { 0.0, "0.0" }, { -0.0, "-0.0" },
        { 1e14, "100000000000000.0" }, { 999999999999999.0, "999999999999999.0" },
        { 1e15, "1000000000000000.0" }, { 1e16, "1e+16" }, { 123456789.0, "123456789.0" },
        { 0.5, "0.5" }, { 0.1, "0.1" }, { 1.5e-5, "1.5e-05" }, { 2.5e-4, "0.00025" },
        { 4294967296.0, "4294967296.0" }, { -1234567.0, "-1234567.0" }, { 1e22, "1e+22" },
        { 3.141592653589793, "3.141592653589793" },
        /* extremes, subnormals and powers of two (whose rounding interval
         * is lopsided), checked against Python 3.11 over 2 million doubles
         * when double-conversion replaced the printf search */
        { 5e-324, "5e-324" }, { 1.5e-323, "1.5e-323" },
        { 2.2250738585072014e-308, "2.2250738585072014e-308" },
        { 2.225073858507201e-308, "2.225073858507201e-308" },
        { 1.7976931348623157e+308, "1.7976931348623157e+308" },
        { 8.98846567431158e+307, "8.98846567431158e+307" },
        { 1.152921504606847e+18, "1.152921504606847e+18" },
        { 9.223372036854776e+18, "9.223372036854776e+18" },
        { 9.5367431640625e-07, "9.5367431640625e-07" },
        { 9007199254740993.0, "9007199254740992.0" },
        { 0.30000000000000004, "0.30000000000000004" }, { 1.0 / 3, "0.3333333333333333" },
        { 2.0 / 3, "0.6666666666666666" }, { 1e23, "1e+23" }, { 5e-7, "5e-07" },
        { 8.41e21, "8.41e+21" }, { 4.35e-5, "4.35e-05" }, { 0.0001, "0.0001" },
        { 1.2345678901234568e-300, "1.2345678901234568e-300" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_str_eq(sl_py_float_repr(&s_a, cases[i].d), cases[i].repr);
    /* the shortest digits found by binary search are those of a scan of
     * every precision, for doubles of every magnitude: random bit patterns
     * and nearby decimal fractions */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        if (i % 2) {
            memcpy(&d, &x, sizeof d);
        } else {
            d = (double) (x % 100000000) / 1e6 * ((i % 3) ? 1 : -1e-5);
        }
        if (isnan(d) || isinf(d))
            continue;
        char want[40], sci[40], got[32];
        int prec;
        for (prec = 0; prec < 17; prec++) {
            snprintf(sci, sizeof sci, "%.*e", prec, d);
            if (strtod(sci, NULL) == d)
                break;
        }
        snprintf(want, sizeof want, "%.*e", prec, d);
        int n = sl_py_float_repr_buf(got, d);
        ck_assert_int_eq(n, (int) strlen(got));
        ck_assert_msg(strtod(got, NULL) == d, "%s does not read back as %.17g", got, d);
        /* same significant digits as the scan's (leading zeros of the
         * fixed layout and trailing zeros aside) */
        char a[24] = "";
        size_t na = 0;
        for (const char *p = want; *p && *p != 'e' && na < 23; p++)
            if (*p >= '0' && *p <= '9')
                a[na++] = *p;
        while (na > 1 && a[na - 1] == '0')
            a[--na] = '\0';
        char g2[24];
        size_t ng = 0;
        int started = 0;
        for (const char *p = got; *p && *p != 'e' && ng < 23; p++) {
            if (*p < '0' || *p > '9')
                continue;
            if (*p != '0')
                started = 1;
            if (started)
                g2[ng++] = *p;
        }
        while (ng > 1 && g2[ng - 1] == '0')
            ng--;
        g2[ng] = '\0';
        if (!started)
            strcpy(g2, "0");
        ck_assert_msg(strcmp(a, g2) == 0, "%.17g: digits %s, expected %s (%s)", d, g2, a, got);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("pycompat");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_isoformat_matches_python);
    tcase_add_test(tc, test_float_repr_matches_python);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
