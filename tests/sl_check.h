/* sl_check — the one runner every Check test program ends with. */
#ifndef SL_CHECK_H
#define SL_CHECK_H

#include <check.h>

/* Runs every test of s (which it frees); returns the exit code: 0 if all passed. */
static inline int
sl_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}

#endif
