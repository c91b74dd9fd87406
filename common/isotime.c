#include "common/isotime.h"

#include <stddef.h>
#include <string.h>

/* Reads exactly n digits at *p. */
static int
s_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int
s_isdigit(char c)
{
    return c >= '0' && c <= '9';
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's). */
static int64_t
s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
s_days_in_month(int y, int m)
{
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int
sl_isotime_parse(const char *s, int64_t *us)
{
    if (!s)
        return -1;
    const char *p = s;
    int year, month = 1, day = 1, hour = 0, minute = 0, second = 0;
    int64_t frac = 0;
    int offset_min = 0;
    if (s_digits(&p, 4, &year) < 0)
        return -1;
    if (*p == '-') {
        p++;
        int n = s_isdigit(p[0]) ? (s_isdigit(p[1]) ? 2 : 1) : 0;
        if (!n || s_digits(&p, n, &month) < 0)
            return -1;
        if (*p == '-') {
            p++;
            n = s_isdigit(p[0]) ? (s_isdigit(p[1]) ? 2 : 1) : 0;
            if (!n || s_digits(&p, n, &day) < 0)
                return -1;
        } else if (*p) {
            return -1;
        }
    } else if (*p) {
        /* YYYYMMDD (YYYYMM alone is refused, as the library does) */
        if (s_digits(&p, 2, &month) < 0 || s_digits(&p, 2, &day) < 0)
            return -1;
    }
    if (*p == 'T' || *p == ' ') {
        p++;
        if (s_digits(&p, 2, &hour) < 0)
            return -1;
        const char *q = p + (*p == ':');
        if (s_isdigit(q[0]) && s_isdigit(q[1])) {
            p = q;
            s_digits(&p, 2, &minute);
            q = p + (*p == ':');
            if (s_isdigit(q[0])) {
                p = q;
                int n = s_isdigit(p[1]) ? 2 : 1;
                s_digits(&p, n, &second);
                if ((*p == '.' || *p == ',') && s_isdigit(p[1])) {
                    p++;
                    int n_frac = 0;
                    while (s_isdigit(*p)) {
                        if (n_frac < 6) {
                            frac = frac * 10 + (*p - '0');
                            n_frac++;
                        }
                        p++;
                    }
                    while (n_frac++ < 6)
                        frac *= 10;
                }
            }
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (s_digits(&p, 2, &oh) < 0)
                return -1;
            if (*p == ':')
                p++;
            if (s_isdigit(*p) && s_digits(&p, 2, &om) < 0)
                return -1;
            if (oh > 23 || om > 59)
                return -1;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*p)
        return -1;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > s_days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        return -1;
    int64_t secs = s_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                   second - (int64_t) offset_min * 60;
    *us = secs * 1000000 + frac;
    return 0;
}
