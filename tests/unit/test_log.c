/* log: sl_log_limited_skip answers exactly what sl_log_limited would do,
 * and counts what it skips as suppressed, so the count reported when the
 * window reopens is the same whichever way a call site logs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/sl_check.h"

static char *
s_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(skip_answers_what_the_limited_log_would_do_and_counts_suppressed_lines)
{
    char path[] = "/tmp/sl-test-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(sl_log_init('T', SL_LOG_WARN, path), 0);
    sl_ratelimit_t rl = SL_RATELIMIT_INIT;
    /* a level that is off: skipped, not counted */
    ck_assert_int_eq(sl_log_limited_skip(&rl, SL_LOG_INFO), 1);
    ck_assert_uint_eq(rl.suppressed, 0);
    /* the burst is printed ... */
    int printed = 0, skipped = 0;
    for (int i = 0; i < 3 * SL_RATELIMIT_BURST; i++) {
        if (sl_log_limited_skip(&rl, SL_LOG_WARN)) {
            skipped++;
            continue;
        }
        sl_log_limited(&rl, SL_LOG_WARN, "line %d of the window", i);
        printed++;
    }
    ck_assert_int_eq(printed, SL_RATELIMIT_BURST);
    ck_assert_int_eq(skipped, 2 * SL_RATELIMIT_BURST);
    /* ... the rest counted as sl_log_limited counts it */
    ck_assert_uint_eq(rl.suppressed, 2 * SL_RATELIMIT_BURST);
    sl_log_limited(&rl, SL_LOG_WARN, "one more, suppressed by the call itself");
    ck_assert_uint_eq(rl.suppressed, 2 * SL_RATELIMIT_BURST + 1);
    /* the window reopens: printed again, with the count of both kinds */
    rl.window_start -= SL_RATELIMIT_WINDOW;
    ck_assert_int_eq(sl_log_limited_skip(&rl, SL_LOG_WARN), 0);
    sl_log_limited(&rl, SL_LOG_WARN, "after the window");
    char *text = s_slurp(path);
    ck_assert_int_eq(sl_check_count(text, "of the window"), SL_RATELIMIT_BURST);
    char want[64];
    snprintf(want, sizeof want, "after the window (%d similar messages suppressed)",
             2 * SL_RATELIMIT_BURST + 1);
    ck_assert_msg(strstr(text, want), "expected '%s' in:\n%s", want, text);
    ck_assert_int_eq(sl_check_count(text, "suppressed by the call itself"), 0);
    unlink(path);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, skip_answers_what_the_limited_log_would_do_and_counts_suppressed_lines);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
