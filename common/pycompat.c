#include "common/pycompat.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/buf.h"
#include "common/json.h"
#include "common/shortest.h"

/* Named groups of iso8601's ISO8601_REGEX that parse_date reads. */
enum { G_YEAR, G_MONTHDASH, G_MONTH, G_DAYDASH, G_DAY, G_HOUR, G_MINUTE, G_SECOND,
       G_FRACTION, G_TIMEZONE, G_TZ_SIGN, G_TZ_HOUR, G_TZ_MINUTE, G__COUNT };

struct sl_py {
    pcre2_code *re_bool, *re_float, *re_int, *re_null, *re_timestamp;
    pcre2_code *iso;            /* iso8601.ISO8601_REGEX */
    uint32_t    iso_group[G__COUNT];
};

/* iso8601 2.x's ISO8601_REGEX (re.VERBOSE) with the whitespace and
 * comments removed. parse_date() uses re.match(), hence the anchoring. */
static const char s_iso_regex[] =
    "(?P<year>[0-9]{4})(((-(?P<monthdash>[0-9]{1,2}))|(?P<month>[0-9]{2})(?!$))"
    "(((-(?P<daydash>[0-9]{1,2}))|(?P<day>[0-9]{2}))(((?P<separator>[ T])"
    "(?P<hour>[0-9]{2})(:{0,1}(?P<minute>[0-9]{2})){0,1}(:{0,1}(?P<second>[0-9]{1,2})"
    "([.,](?P<second_fraction>[0-9]+)){0,1}){0,1}(?P<timezone>Z|((?P<tz_sign>[-+])"
    "(?P<tz_hour>[0-9]{2}):{0,1}(?P<tz_minute>[0-9]{2}){0,1})){0,1}){0,1})){0,1}){0,1}$";

static const char *s_iso_names[G__COUNT] = {
    "year", "monthdash", "month", "daydash", "day", "hour", "minute", "second",
    "second_fraction", "timezone", "tz_sign", "tz_hour", "tz_minute"
};

/* yaml/resolver.py's implicit resolvers (YAML 1.1), in registration order. */
static const char s_y_bool[] =
    "^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$";
static const char s_y_float[] =
    "^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?|\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$";
static const char s_y_int[] =
    "^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
    "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$";
static const char s_y_null[] = "^(?:~|null|Null|NULL|)$";
static const char s_y_timestamp[] =
    "^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
    "(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?"
    "(?:[ \\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$";

static pcre2_code *
s_re(const char *pattern, uint32_t opts)
{
    int ec;
    PCRE2_SIZE off;
    /* Not JIT-compiled: these run at load time or on rare slow paths, and
     * JIT code reads whole words past a string's end (valgrind noise). */
    return pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, opts, &ec, &off, NULL);
}

/* Matches with a private match block: patterns here run at load time or
 * on rare slow paths, and the table is shared between threads. */
static int
s_re_match(const pcre2_code *re, const char *s)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        return 0;
    int rc = pcre2_match(re, (PCRE2_SPTR) s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

void
sl_py_destroy(sl_py_t **py_p)
{
    if (!py_p || !*py_p)
        return;
    sl_py_t *py = *py_p;
    pcre2_code_free(py->re_bool);
    pcre2_code_free(py->re_float);
    pcre2_code_free(py->re_int);
    pcre2_code_free(py->re_null);
    pcre2_code_free(py->re_timestamp);
    pcre2_code_free(py->iso);
    free(py);
    *py_p = NULL;
}

sl_py_t *
sl_py_new(void)
{
    sl_py_t *py = sl_xcalloc(1, sizeof *py);
    py->re_bool = s_re(s_y_bool, 0);
    py->re_float = s_re(s_y_float, 0);
    py->re_int = s_re(s_y_int, 0);
    py->re_null = s_re(s_y_null, 0);
    py->re_timestamp = s_re(s_y_timestamp, 0);
    py->iso = s_re(s_iso_regex, PCRE2_ANCHORED);        /* re.match() */
    if (!py->re_bool || !py->re_float || !py->re_int || !py->re_null || !py->re_timestamp ||
        !py->iso) {
        sl_py_destroy(&py);
        return NULL;
    }
    for (int g = 0; g < G__COUNT; g++) {
        int no = pcre2_substring_number_from_name(py->iso, (PCRE2_SPTR) s_iso_names[g]);
        if (no <= 0) {
            sl_py_destroy(&py);
            return NULL;
        }
        py->iso_group[g] = (uint32_t) no;
    }
    return py;
}

/* ---- YAML ---------------------------------------------------------------- */

sl_py_ytype_t
sl_py_ytype(const sl_py_t *py, const sl_ynode_t *n)
{
    if (!n)
        return SL_PY_Y_NULL;
    if (n->kind != SL_Y_SCALAR)
        return SL_PY_Y_OTHER;
    if (!n->plain)
        return SL_PY_Y_STR;
    if (s_re_match(py->re_bool, n->value))
        return SL_PY_Y_BOOL;
    if (s_re_match(py->re_float, n->value))
        return SL_PY_Y_FLOAT;
    if (s_re_match(py->re_int, n->value))
        return SL_PY_Y_INT;
    if (s_re_match(py->re_null, n->value))
        return SL_PY_Y_NULL;
    if (s_re_match(py->re_timestamp, n->value))
        return SL_PY_Y_TIMESTAMP;
    return SL_PY_Y_STR;
}

int
sl_py_yint(const char *text, long long *out)
{
    char buf[128];
    size_t n = 0;
    if (strlen(text) >= sizeof buf)
        return -1;              /* far beyond 64 bits whatever the base */
    for (const char *p = text; *p; p++)
        if (*p != '_')
            buf[n++] = *p;
    buf[n] = '\0';
    const char *v = buf;
    int neg = 0;
    if (*v == '-' || *v == '+')
        neg = *v++ == '-';
    long long r = 0;
    errno = 0;
    char *end = NULL;
    if (strcmp(v, "0") == 0) {
        r = 0;
    } else if (strncmp(v, "0b", 2) == 0) {
        r = strtoll(v + 2, &end, 2);
    } else if (strncmp(v, "0x", 2) == 0) {
        r = strtoll(v + 2, &end, 16);
    } else if (v[0] == '0') {
        r = strtoll(v, &end, 8);
    } else if (strchr(v, ':')) {
        /* sexagesimal: 1:30 = 90 */
        for (const char *p = v; *p;) {
            long long part = strtoll(p, &end, 10);
            if (end == p || r > LLONG_MAX / 60 - part)
                return -1;
            r = r * 60 + part;
            p = *end == ':' ? end + 1 : end;
            if (!*end)
                break;
        }
        end = NULL;
    } else {
        r = strtoll(v, &end, 10);
    }
    if (errno == ERANGE || (end && (*end || end == v)))
        return -1;
    *out = neg ? -r : r;
    return 0;
}

/* PyYAML's construct_yaml_float. */
static double
s_yaml_float(const char *text)
{
    char *buf = sl_xstrdup(text);
    size_t k = 0;
    for (const char *p = text; *p; p++)
        if (*p != '_')
            buf[k++] = *p;
    buf[k] = '\0';
    double sign = 1.0, r;
    char *v = buf;
    if (*v == '-' || *v == '+')
        sign = *v++ == '-' ? -1.0 : 1.0;
    if (strcasecmp(v, ".inf") == 0) {
        r = sign * INFINITY;
    } else if (strcasecmp(v, ".nan") == 0) {
        r = NAN;
    } else if (strchr(v, ':')) {
        double base = 1, acc = 0;
        char *parts[64];
        size_t np = 0;
        for (char *t = strtok(v, ":"); t && np < 64; t = strtok(NULL, ":"))
            parts[np++] = t;
        for (size_t i = np; i-- > 0;) {
            acc += strtod(parts[i], NULL) * base;
            base *= 60;
        }
        r = sign * acc;
    } else {
        r = sign * strtod(v, NULL);
    }
    free(buf);
    return r;
}

int
sl_py_ytruthy(const sl_py_t *py, const sl_ynode_t *n)
{
    long long i;
    switch (sl_py_ytype(py, n)) {
    case SL_PY_Y_NULL:
        return 0;
    case SL_PY_Y_STR:
        return n->value[0] != '\0';
    case SL_PY_Y_BOOL:
        return sl_ynode_bool(n) == 1;
    case SL_PY_Y_INT:
        return sl_py_yint(n->value, &i) < 0 || i != 0;
    case SL_PY_Y_FLOAT:
        return s_yaml_float(n->value) != 0.0;     /* NaN is true */
    case SL_PY_Y_TIMESTAMP:
        return 1;
    default:
        return n->n > 0;
    }
}

yajl_val
sl_py_yvalue(const sl_py_t *py, const sl_ynode_t *n, sl_arena_t *a)
{
    yajl_val v;
    long long i;
    switch (sl_py_ytype(py, n)) {
    case SL_PY_Y_NULL:
        v = sl_arena_alloc(a, sizeof *v);
        memset(v, 0, sizeof *v);
        v->type = yajl_t_null;
        return v;
    case SL_PY_Y_BOOL:
        return sl_py_new_bool(a, sl_ynode_bool(n) == 1);
    case SL_PY_Y_INT:
        if (sl_py_yint(n->value, &i) == 0)
            return sl_py_new_int(a, i);
        return sl_json_new_string(a, n->value, strlen(n->value));
    case SL_PY_Y_FLOAT:
        return sl_py_new_float(a, s_yaml_float(n->value));
    case SL_PY_Y_STR:
    case SL_PY_Y_TIMESTAMP:
        return sl_json_new_string(a, n->value, strlen(n->value));
    default:
        break;
    }
    v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    if (n->kind == SL_Y_SEQ) {
        v->type = yajl_t_array;
        v->u.array.len = n->n;
        v->u.array.values = sl_arena_alloc(a, (n->n + 1) * sizeof(yajl_val));
        for (size_t k = 0; k < n->n; k++)
            v->u.array.values[k] = sl_py_yvalue(py, n->items[k], a);
    } else {
        v->type = yajl_t_object;
        v->u.object.len = n->n;
        v->u.object.keys = sl_arena_alloc(a, (n->n + 1) * sizeof(char *));
        v->u.object.values = sl_arena_alloc(a, (n->n + 1) * sizeof(yajl_val));
        for (size_t k = 0; k < n->n; k++) {
            v->u.object.keys[k] = sl_arena_strdup(a, n->keys[k]);
            v->u.object.values[k] = sl_py_yvalue(py, n->items[k], a);
        }
    }
    return v;
}

/* ---- dates --------------------------------------------------------------- */

static int
s_days_in_month(int y, int mo)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[mo - 1];
}

static int
s_num(const char *s, size_t len)
{
    int v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* int(Decimal("0." + digits) * Decimal("1000000.0")) under Python's default
 * decimal context (28 significant digits, ROUND_HALF_EVEN), or -1 when the
 * rounding carries into a whole second. */
static long
s_microseconds(const char *f, size_t len)
{
    char d[7] = "000000";
    size_t z = 0;
    while (z < len && f[z] == '0')
        z++;
    if (len - z <= 28) {        /* exact: the product needs no rounding */
        for (size_t i = 0; i < 6 && i < len; i++)
            d[i] = f[i];
        return strtol(d, NULL, 10);
    }
    size_t keep = z + 28;       /* digits [0, keep) survive the rounding */
    int up;
    if (f[keep] != '5') {
        up = f[keep] > '5';
    } else {
        up = 0;
        for (size_t i = keep + 1; i < len && !up; i++)
            up = f[i] != '0';
        if (!up)
            up = (f[keep - 1] - '0') % 2 == 1;
    }
    long micro = s_num(f, 6);
    if (up) {
        size_t i = keep;
        while (i > 6 && f[i - 1] == '9')
            i--;
        if (i == 6)
            micro++;            /* the carry reaches the microseconds */
    }
    return micro >= 1000000 ? -1 : micro;
}

/* n decimal digits of v (0 <= v < 10^n), zero-padded. */
static char *
s_put_digits(char *p, long v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char) ('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

const char *
sl_py_dt_isoformat(sl_arena_t *a, const sl_py_dt_t *t, int aware)
{
    /* %04d-%02d-%02dT%02d:%02d:%02d[.%06ld][+HH:MM], by hand: this runs
     * for every sample, and printf was a tenth of the conversion */
    if (t->year < 0 || t->year > 9999 || t->month < 0 || t->month > 99 || t->day < 0 ||
        t->day > 99 || t->hour < 0 || t->hour > 99 || t->minute < 0 || t->minute > 99 ||
        t->second < 0 || t->second > 99 || t->micro < 0 || t->micro > 999999 ||
        t->offset <= -6000 || t->offset >= 6000) {
        char frac[24] = "", tz[24] = "";    /* not a datetime's fields: as printf has it */
        if (t->micro)
            snprintf(frac, sizeof frac, ".%06ld", t->micro);
        if (aware) {
            int off = t->offset < 0 ? -t->offset : t->offset;
            snprintf(tz, sizeof tz, "%c%02d:%02d", t->offset < 0 ? '-' : '+', off / 60,
                     off % 60);
        }
        return sl_arena_printf(a, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", t->year, t->month,
                               t->day, t->hour, t->minute, t->second, frac, tz);
    }
    char *o = sl_arena_alloc(a, 40), *p = o;
    p = s_put_digits(p, t->year, 4);
    *p++ = '-';
    p = s_put_digits(p, t->month, 2);
    *p++ = '-';
    p = s_put_digits(p, t->day, 2);
    *p++ = 'T';
    p = s_put_digits(p, t->hour, 2);
    *p++ = ':';
    p = s_put_digits(p, t->minute, 2);
    *p++ = ':';
    p = s_put_digits(p, t->second, 2);
    if (t->micro) {
        *p++ = '.';
        p = s_put_digits(p, t->micro, 6);
    }
    if (aware) {
        int off = t->offset < 0 ? -t->offset : t->offset;
        *p++ = t->offset < 0 ? '-' : '+';
        p = s_put_digits(p, off / 60, 2);
        *p++ = ':';
        p = s_put_digits(p, off % 60, 2);
    }
    *p = '\0';
    return o;
}

/* datetime(...)'s range checks. */
static int
s_dt_valid(const sl_py_dt_t *t)
{
    return t->year >= 1 && t->month >= 1 && t->month <= 12 && t->day >= 1 &&
           t->day <= s_days_in_month(t->year, t->month) && t->hour <= 23 &&
           t->minute <= 59 && t->second <= 59 && t->micro >= 0 &&
           t->offset > -1440 && t->offset < 1440;
}

static int
s_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int
sl_py_parse_isotime(const sl_py_t *py, const char *s, sl_py_dt_t *out)
{
    sl_py_dt_t t = { 0, 1, 1, 0, 0, 0, 0, 0 };
    size_t len = strlen(s);
    /* The common shape, YYYY-MM-DD[T ]HH:MM:SS[.f{1,28}][Z|+HH:MM|-HH:MM],
     * directly; anything else through the very pattern iso8601 uses. */
    if (len >= 19 && s_digits(s, 4) && s[4] == '-' && s_digits(s + 5, 2) && s[7] == '-' &&
        s_digits(s + 8, 2) && (s[10] == 'T' || s[10] == ' ') && s_digits(s + 11, 2) &&
        s[13] == ':' && s_digits(s + 14, 2) && s[16] == ':' && s_digits(s + 17, 2)) {
        size_t p = 19, fl = 0;
        if (s[p] == '.') {
            while (s[p + 1 + fl] >= '0' && s[p + 1 + fl] <= '9')
                fl++;
            p += 1 + fl;
        }
        int tz_ok = 0;
        if (!s[p])
            tz_ok = 1;
        else if (s[p] == 'Z' && !s[p + 1])
            tz_ok = 1;
        else if ((s[p] == '+' || s[p] == '-') && s_digits(s + p + 1, 2) && s[p + 3] == ':' &&
                 s_digits(s + p + 4, 2) && !s[p + 6])
            tz_ok = 2;
        if (tz_ok && (s[19] != '.' || (fl >= 1 && fl <= 28))) {
            t.year = s_num(s, 4);
            t.month = s_num(s + 5, 2);
            t.day = s_num(s + 8, 2);
            t.hour = s_num(s + 11, 2);
            t.minute = s_num(s + 14, 2);
            t.second = s_num(s + 17, 2);
            t.micro = fl ? s_microseconds(s + 20, fl) : 0;
            if (tz_ok == 2) {
                t.offset = s_num(s + p + 1, 2) * 60 + s_num(s + p + 4, 2);
                if (s[p] == '-')
                    t.offset = -t.offset;
            }
            if (!s_dt_valid(&t))
                return -1;
            *out = t;
            return 0;
        }
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(py->iso, NULL);
    if (!md)
        return -1;
    if (pcre2_match(py->iso, (PCRE2_SPTR) s, len, 0, 0, md, NULL) < 0) {
        pcre2_match_data_free(md);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t ovn = pcre2_get_ovector_count(md);
    const char *gs[G__COUNT];
    size_t gl[G__COUNT];
    for (int g = 0; g < G__COUNT; g++) {
        uint32_t no = py->iso_group[g];
        gs[g] = NULL;
        gl[g] = 0;
        if (no < ovn && ov[2 * no] != PCRE2_UNSET) {
            gs[g] = s + ov[2 * no];
            gl[g] = ov[2 * no + 1] - ov[2 * no];
        }
    }
    pcre2_match_data_free(md);
    t.year = s_num(gs[G_YEAR], gl[G_YEAR]);
    if (gs[G_MONTH])
        t.month = s_num(gs[G_MONTH], gl[G_MONTH]);
    else if (gs[G_MONTHDASH])
        t.month = s_num(gs[G_MONTHDASH], gl[G_MONTHDASH]);
    if (gs[G_DAY])
        t.day = s_num(gs[G_DAY], gl[G_DAY]);
    else if (gs[G_DAYDASH])
        t.day = s_num(gs[G_DAYDASH], gl[G_DAYDASH]);
    if (gs[G_HOUR])
        t.hour = s_num(gs[G_HOUR], gl[G_HOUR]);
    if (gs[G_MINUTE])
        t.minute = s_num(gs[G_MINUTE], gl[G_MINUTE]);
    if (gs[G_SECOND])
        t.second = s_num(gs[G_SECOND], gl[G_SECOND]);
    if (gs[G_FRACTION])
        t.micro = s_microseconds(gs[G_FRACTION], gl[G_FRACTION]);
    if (gs[G_TIMEZONE] && gs[G_TZ_SIGN]) {
        t.offset = s_num(gs[G_TZ_HOUR], gl[G_TZ_HOUR]) * 60 +
                   (gs[G_TZ_MINUTE] ? s_num(gs[G_TZ_MINUTE], gl[G_TZ_MINUTE]) : 0);
        if (*gs[G_TZ_SIGN] == '-')
            t.offset = -t.offset;
    }
    if (!s_dt_valid(&t))
        return -1;
    *out = t;
    return 0;
}

/* Days from 0001-01-01 to y-m-d (proleptic Gregorian), as datetime.toordinal() - 1. */
static int64_t
s_days(int y, int m, int d)
{
    int64_t yy = y - 1;
    int64_t days = yy * 365 + yy / 4 - yy / 100 + yy / 400;
    for (int i = 1; i < m; i++)
        days += s_days_in_month(y, i);
    return days + d - 1;
}

int64_t
sl_py_dt_utc_us(const sl_py_dt_t *t)
{
    int64_t secs = s_days(t->year, t->month, t->day) * 86400 + t->hour * 3600 +
                   t->minute * 60 + t->second - (int64_t) t->offset * 60;
    return secs * 1000000 + t->micro;
}

int
sl_py_dt_to_utc(sl_py_dt_t *t)
{
    if (!t->offset)
        return 0;
    int64_t us = sl_py_dt_utc_us(t);
    if (us < 0)
        return -1;
    int64_t secs = us / 1000000, days = secs / 86400, rem = secs % 86400;
    /* civil from days (0001-01-01 = 0) */
    int y = 1 + (int) (days / 146097) * 400;       /* 400-year cycles */
    days %= 146097;
    for (;;) {
        int64_t ylen = ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 366 : 365;
        if (days < ylen)
            break;
        days -= ylen;
        y++;
    }
    if (y > 9999)
        return -1;
    int m = 1;
    while (days >= s_days_in_month(y, m)) {
        days -= s_days_in_month(y, m);
        m++;
    }
    t->year = y;
    t->month = m;
    t->day = (int) days + 1;
    t->hour = (int) (rem / 3600);
    t->minute = (int) (rem % 3600 / 60);
    t->second = (int) (rem % 60);
    t->micro = (long) (us % 1000000);
    t->offset = 0;
    return 0;
}

/* ---- numbers ------------------------------------------------------------- */

int
sl_py_is_float(yajl_val v)
{
    if (!v || v->type != yajl_t_number)
        return 0;
    return v->u.number.r ? strpbrk(v->u.number.r, ".eE") != NULL
                         : !(v->u.number.flags & YAJL_NUMBER_INT_VALID);
}

/* CPython's float() and int() first map every Unicode whitespace character
 * to ' ' and every Unicode decimal digit to its ASCII digit
 * (_PyUnicode_TransformDecimalAndSpaceToASCII). First code point of each
 * block of ten Unicode decimal digits (Nd), from Python 3.11's unicodedata
 * (Unicode 14.0). */
static const uint32_t s_nd_zeros[] = {
    0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80,
    0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50,
    0xabf0, 0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450,
    0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0,
    0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140,
    0x1e2f0, 0x1e950, 0x1fbf0,
};

static int
s_py_isspace(uint32_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
           c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
           c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Decodes one UTF-8 sequence (input already validated by the parser). */
static uint32_t
s_utf8_next(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t c = *p++;
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (more)
        c &= 0x3f >> more;
    while (more-- && (*p & 0xc0) == 0x80)
        c = (c << 6) | (*p++ & 0x3f);
    *pp = p;
    return c;
}

/* The ASCII-transformed, stripped text of s (malloc'd; never NULL). Any
 * length: strings are bounded by max_message_size upstream. */
static char *
s_ascii_stripped(const char *s)
{
    size_t len = strlen(s);
    char *ascii = sl_xmalloc(len + 1);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *) s; *p;) {
        uint32_t c = s_utf8_next(&p);
        char a = '\x01';                /* matches nothing later */
        if (s_py_isspace(c)) {
            a = ' ';
        } else if (c < 0x80) {
            a = (char) c;
        } else {
            for (size_t i = 0; i < sizeof s_nd_zeros / sizeof s_nd_zeros[0]; i++)
                if (c >= s_nd_zeros[i] && c < s_nd_zeros[i] + 10)
                    a = (char) ('0' + (c - s_nd_zeros[i]));
        }
        ascii[n++] = a;
    }
    ascii[n] = '\0';
    char *b = ascii, *end = ascii + n;
    while (b < end && (*b == ' ' || (*b >= '\t' && *b <= '\r')))
        b++;
    while (end > b && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
        end--;
    *end = '\0';
    memmove(ascii, b, (size_t) (end - b) + 1);
    return ascii;
}

/* digits with single `_` between them, copied without the `_`. */
static const char *
s_digitpart(const char *p, char **o)
{
    if (*p < '0' || *p > '9')
        return NULL;
    for (;;) {
        *(*o)++ = *p++;
        if (*p == '_' && p[1] >= '0' && p[1] <= '9')
            p++;
        else if (*p < '0' || *p > '9')
            return p;
    }
}

int
sl_py_float_str(const char *s, double *out)
{
    char *b = s_ascii_stripped(s);
    size_t len = strlen(b);
    char *clean = sl_xmalloc(len + 2), *o = clean;
    const char *p = b, *end = b + len;
    if (*p == '+' || *p == '-')
        *o++ = *p++;
    size_t rest = (size_t) (end - p);
    int ok;
    if ((rest == 3 && (strncasecmp(p, "inf", 3) == 0 || strncasecmp(p, "nan", 3) == 0)) ||
        (rest == 8 && strncasecmp(p, "infinity", 8) == 0)) {
        memcpy(o, p, rest);
        o += rest;
        ok = 1;
    } else {
        const char *q = s_digitpart(p, &o);
        int have = q != NULL;
        if (!q)
            q = p;
        if (*q == '.') {
            *o++ = *q++;
            const char *r = s_digitpart(q, &o);
            if (r) {
                q = r;
                have = 1;
            }
        }
        if (have && (*q == 'e' || *q == 'E')) {
            *o++ = *q++;
            if (*q == '+' || *q == '-')
                *o++ = *q++;
            q = s_digitpart(q, &o);
            if (!q)
                have = 0;
        }
        ok = have && q == end;
    }
    *o = '\0';
    if (ok)
        *out = strtod(clean, NULL);
    free(b);
    free(clean);
    return ok ? 0 : -1;
}

const char *
sl_py_int_str(sl_arena_t *a, const char *s)
{
    char *b = s_ascii_stripped(s);
    size_t len = strlen(b);
    char *clean = sl_xmalloc(len + 2), *o = clean;
    const char *p = b;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    const char *q = s_digitpart(p, &o);
    const char *res = NULL;
    /* Python 3.11's int() refuses more than sys.int_max_str_digits (4300)
     * digits, leading zeros included, with a ValueError. */
    if (q && !*q && (size_t) (o - clean) <= SL_PY_INT_MAX_STR_DIGITS) {
        *o = '\0';
        const char *d = clean;
        while (d[0] == '0' && d[1])
            d++;
        res = sl_arena_printf(a, "%s%s", neg && strcmp(d, "0") != 0 ? "-" : "", d);
    }
    free(b);
    free(clean);
    return res;
}

/* Copies a short constant into buf; returns its length. */
static size_t
s_copy_const(char *buf, const char *s)
{
    size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    return n;
}

int
sl_py_float_repr_buf(char buf[32], double d)
{
    if (isnan(d))
        return (int) s_copy_const(buf, "nan");
    if (isinf(d))
        return (int) s_copy_const(buf, d < 0 ? "-inf" : "inf");
    if (d == trunc(d) && fabs(d) < 1e15) {
        /* an integral value (most volumes): its digits and ".0" */
        char tmp[24], *p = tmp + sizeof tmp;
        unsigned long long u = (unsigned long long) fabs(d);
        *--p = '0';
        *--p = '.';
        do {
            *--p = (char) ('0' + u % 10);
            u /= 10;
        } while (u);
        if (signbit(d))
            *--p = '-';
        size_t n = (size_t) (tmp + sizeof tmp - p);
        memcpy(buf, p, n);
        buf[n] = '\0';
        return (int) n;
    }
    /* The shortest digits that read back as d, closest to it (Python's
     * repr; double-conversion computes them in one pass) */
    char digits[18];
    int decpt;      /* value = 0.digits * 10^decpt */
    int nd = sl_shortest_digits(d, digits, &decpt);
    int neg = signbit(d) != 0;
    char *o = buf;
    if (neg)
        *o++ = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -decpt; i++)
                *o++ = '0';
            memcpy(o, digits, (size_t) nd);
            o += nd;
        } else if (decpt >= nd) {
            memcpy(o, digits, (size_t) nd);
            o += nd;
            for (int i = nd; i < decpt; i++)
                *o++ = '0';
            *o++ = '.';
            *o++ = '0';
        } else {
            memcpy(o, digits, (size_t) decpt);
            o += decpt;
            *o++ = '.';
            memcpy(o, digits + decpt, (size_t) (nd - decpt));
            o += nd - decpt;
        }
        *o = '\0';
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t) nd - 1);
            o += nd - 1;
        }
        int e = decpt - 1;
        o += snprintf(o, 8, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    return (int) (o - buf);
}

const char *
sl_py_float_repr(sl_arena_t *a, double d)
{
    char buf[32];
    int n = sl_py_float_repr_buf(buf, d);
    return sl_arena_strndup(a, buf, (size_t) n);
}

const char *
sl_py_float_json(sl_arena_t *a, double d)
{
    if (isnan(d))
        return "NaN";
    if (isinf(d))
        return d < 0 ? "-Infinity" : "Infinity";
    return sl_py_float_repr(a, d);
}

/* The double Python holds for a JSON number (its float(), for an int). */
static double
s_num_double(yajl_val v)
{
    if (v->u.number.r)
        return strtod(v->u.number.r, NULL);
    if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
        return (double) v->u.number.i;
    return v->u.number.d;
}

yajl_val
sl_py_new_number(sl_arena_t *a, const char *text)
{
    yajl_val v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = yajl_t_number;
    v->u.number.r = (char *) text;
    errno = 0;
    char *end;
    long long i = strtoll(text, &end, 10);
    if (!*end && errno != ERANGE) {
        v->u.number.i = i;
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    }
    v->u.number.d = strtod(text, NULL);
    v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return v;
}

yajl_val
sl_py_new_int(sl_arena_t *a, long long i)
{
    return sl_py_new_number(a, sl_arena_printf(a, "%lld", i));
}

yajl_val
sl_py_new_float(sl_arena_t *a, double d)
{
    yajl_val v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = yajl_t_number;
    /* The JSON spelling; ".0" keeps it a float when read back. */
    v->u.number.r = (char *) sl_py_float_json(a, d);
    v->u.number.d = d;
    v->u.number.flags = YAJL_NUMBER_DOUBLE_VALID;
    return v;
}

yajl_val
sl_py_new_bool(sl_arena_t *a, int b)
{
    yajl_val v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = b ? yajl_t_true : yajl_t_false;
    return v;
}

size_t
sl_py_strlen(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char) *s & 0xc0) != 0x80;
    return n;
}

size_t
sl_py_prefix(const char *s, size_t max)
{
    size_t cps = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            if (cps == max)
                break;
            cps++;
        }
    }
    return i;
}

/* ---- str() and repr() ---------------------------------------------------- */

/* str.isprintable() for one code point: false for the categories Cc, Cf,
 * Zl, Zp, Zs (but space), Co and Cs. Unassigned code points (Cn), which
 * need the Unicode database, are taken as printable. */
static int
s_printable(uint32_t c)
{
    if (c < 0x20 || (c >= 0x7f && c <= 0xa0) || c == 0xad)
        return 0;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
        (c >= 0x205f && c <= 0x2064) || (c >= 0x2066 && c <= 0x206f) || c == 0x3000 ||
        c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb) || (c >= 0xd800 && c <= 0xf8ff) ||
        c == 0x61c || (c >= 0x600 && c <= 0x605) || c == 0x6dd || c == 0x70f ||
        c == 0x180e || c == 0x110bd || (c >= 0xe0000 && c <= 0xe007f) ||
        (c >= 0xf0000 && c <= 0x10ffff))
        return 0;
    return 1;
}

static void
s_repr_str(sl_buf_t *b, const char *s)
{
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    sl_buf_put(b, &q, 1);
    for (const unsigned char *p = (const unsigned char *) s; *p;) {
        const unsigned char *start = p;
        uint32_t c = s_utf8_next(&p);
        char esc[16];
        if (c == (uint32_t) q || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            sl_buf_put(b, esc, 2);
        } else if (c == '\n') {
            sl_buf_puts(b, "\\n");
        } else if (c == '\r') {
            sl_buf_puts(b, "\\r");
        } else if (c == '\t') {
            sl_buf_puts(b, "\\t");
        } else if (s_printable(c)) {
            sl_buf_put(b, (const char *) start, (size_t) (p - start));
        } else if (c < 0x100) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            sl_buf_puts(b, esc);
        } else if (c < 0x10000) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sl_buf_puts(b, esc);
        } else {
            snprintf(esc, sizeof esc, "\\U%08x", c);
            sl_buf_puts(b, esc);
        }
    }
    sl_buf_put(b, &q, 1);
}

static void
s_repr(sl_buf_t *b, yajl_val v, sl_arena_t *a, int depth)
{
    if (!v) {
        sl_buf_puts(b, "None");
        return;
    }
    switch (v->type) {
    case yajl_t_string:
        s_repr_str(b, v->u.string);
        return;
    case yajl_t_number:
        if (sl_py_is_float(v)) {
            sl_buf_puts(b, sl_py_float_repr(a, s_num_double(v)));
        } else if (v->u.number.r) {
            const char *r = v->u.number.r;
            sl_buf_puts(b, strcmp(r, "-0") == 0 ? "0" : r);
        } else {
            char t[32];
            snprintf(t, sizeof t, "%lld", v->u.number.i);
            sl_buf_puts(b, t);
        }
        return;
    case yajl_t_true:
        sl_buf_puts(b, "True");
        return;
    case yajl_t_false:
        sl_buf_puts(b, "False");
        return;
    case yajl_t_null:
        sl_buf_puts(b, "None");
        return;
    case yajl_t_array:
        sl_buf_puts(b, "[");
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                sl_buf_puts(b, ", ");
            s_repr(b, v->u.array.values[i], a, depth + 1);
        }
        sl_buf_puts(b, "]");
        return;
    case yajl_t_object:
        sl_buf_puts(b, "{");
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                sl_buf_puts(b, ", ");
            s_repr_str(b, v->u.object.keys[i]);
            sl_buf_puts(b, ": ");
            s_repr(b, v->u.object.values[i], a, depth + 1);
        }
        sl_buf_puts(b, "}");
        return;
    default:
        sl_buf_puts(b, "None");
        return;
    }
}

const char *
sl_py_repr(sl_arena_t *a, yajl_val v)
{
    sl_buf_t b = { 0 };
    s_repr(&b, v, a, 0);
    const char *r = sl_arena_strndup(a, b.p ? b.p : "", b.n);
    sl_buf_free(&b);
    return r;
}

const char *
sl_py_str(sl_arena_t *a, yajl_val v)
{
    if (v && v->type == yajl_t_string)
        return v->u.string;
    return sl_py_repr(a, v);
}

/* ---- equality ------------------------------------------------------------ */

/* 1 if v is a Python int (bool included), with its value in *i when it
 * fits 64 bits (*big set otherwise). */
static int
s_as_int(yajl_val v, long long *i, int *big)
{
    *big = 0;
    if (v->type == yajl_t_true || v->type == yajl_t_false) {
        *i = v->type == yajl_t_true;
        return 1;
    }
    if (v->type != yajl_t_number || sl_py_is_float(v))
        return 0;
    if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
        *i = v->u.number.i;
    else
        *big = 1;
    return 1;
}

int
sl_py_equal(yajl_val a, yajl_val b)
{
    if (!a || !b)
        return a == b;
    long long ia = 0, ib = 0;
    int ba = 0, bb = 0;
    int na = a->type == yajl_t_number || a->type == yajl_t_true || a->type == yajl_t_false;
    int nb = b->type == yajl_t_number || b->type == yajl_t_true || b->type == yajl_t_false;
    if (na && nb) {
        int inta = s_as_int(a, &ia, &ba), intb = s_as_int(b, &ib, &bb);
        if (inta && intb) {
            if (ba || bb)
                return ba && bb && strcmp(a->u.number.r, b->u.number.r) == 0;
            return ia == ib;
        }
        double da = inta ? (ba ? strtod(a->u.number.r, NULL) : (double) ia) : s_num_double(a);
        double db = intb ? (bb ? strtod(b->u.number.r, NULL) : (double) ib) : s_num_double(b);
        return da == db;
    }
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_null:
        return 1;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len)
            return 0;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!sl_py_equal(a->u.array.values[i], b->u.array.values[i]))
                return 0;
        return 1;
    case yajl_t_object:
        if (a->u.object.len != b->u.object.len)
            return 0;
        for (size_t i = 0; i < a->u.object.len; i++) {
            yajl_val bv = sl_json_get(b, a->u.object.keys[i]);
            if (!bv || !sl_py_equal(a->u.object.values[i], bv))
                return 0;
        }
        return 1;
    default:
        return 0;
    }
}

/* ---- regular expressions -------------------------------------------------- */

pcre2_code *
sl_py_re_compile(const char *src, uint32_t opts, char *err, size_t errlen)
{
    /* Python `re` syntax differs from PCRE2 in one common escape: `\Z` is
     * the very end in Python, PCRE2's `\z`. */
    size_t n = strlen(src);
    char *pat = sl_xmalloc(n + 1);
    size_t o = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '\\' && i + 1 < n) {
            pat[o++] = c;
            pat[o++] = (!in_class && src[i + 1] == 'Z') ? 'z' : src[i + 1];
            i++;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            pat[o++] = c;
            if (src[i + 1] == '^')
                pat[o++] = src[++i];
            if (src[i + 1] == ']')
                pat[o++] = src[++i];
            continue;
        }
        if (c == ']' && in_class)
            in_class = 0;
        pat[o++] = c;
    }
    pat[o] = '\0';
    int ec;
    PCRE2_SIZE off;
    /* Python 3 str patterns are Unicode-aware (\w, \d, \s, case folding). */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | opts, &ec, &off, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        if (err && errlen)
            snprintf(err, errlen, "invalid regular expression at offset %zu: %s",
                     (size_t) off, (const char *) msg);
        return NULL;
    }
    /* No JIT: the patterns are short and a literal-prefix check usually
     * answers first; JIT code also reads whole words past a subject's end,
     * which valgrind reports in the workers. */
    return re;
}
