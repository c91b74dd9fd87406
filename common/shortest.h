/* shortest — the shortest decimal digits that read back as a double, the
 * ones Python's repr() and Ceilometer's JSON show (David Gay's mode 0:
 * shortest, then closest to the value). A thin C face on Google's
 * double-conversion library (libdouble-conversion), which computes them
 * directly (Grisu3, with an exact bignum fallback) instead of printf'ing
 * and reading back every precision. Any process; no state. */
#ifndef SL_SHORTEST_H
#define SL_SHORTEST_H

#ifdef __cplusplus
extern "C" {
#endif

/* Digits of |d| (finite) into digits, NUL-terminated (at most 17 and a
 * NUL); returns their count n and sets *point so that |d| =
 * 0.d1d2...dn x 10^point. 0 gives "0", point 1. */
int sl_shortest_digits(double d, char digits[18], int *point);

#ifdef __cplusplus
}
#endif

#endif
