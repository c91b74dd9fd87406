/* sl_check — the one runner every Check test program ends with. */
#ifndef SL_CHECK_H
#define SL_CHECK_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* 1 in a build with AddressSanitizer (gcc defines __SANITIZE_ADDRESS__,
 * clang answers __has_feature): its allocator and shadow memory replace
 * glibc's heap, which tests of memory use must allow for. */
#if defined(__SANITIZE_ADDRESS__)
#define SL_CHECK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SL_CHECK_ASAN 1
#endif
#endif
#ifndef SL_CHECK_ASAN
#define SL_CHECK_ASAN 0
#endif

/* n copies of term joined by op (malloc'd): long chains for the tests of
 * nesting and length limits. */
static inline char *
sl_check_chain(const char *term, const char *op, size_t n)
{
    size_t tl = strlen(term), ol = strlen(op);
    char *t = malloc(n * (tl + ol) + 1), *o = t;
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            memcpy(o, op, ol);
            o += ol;
        }
        memcpy(o, term, tl);
        o += tl;
    }
    *o = '\0';
    return t;
}

/* How many times what occurs in text (non-overlapping). */
static inline int
sl_check_count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

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
