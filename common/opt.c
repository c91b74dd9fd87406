#include "common/opt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/arena.h"
#include "common/log.h"

#define S_FIELD(cfg, o, T) ((T *) ((char *) (cfg) + (o)->offset))
#define S_CFIELD(cfg, o, T) ((const T *) ((const char *) (cfg) + (o)->offset))

/* Upper bound of a UINT/SIZE/MS option: max, or what its field holds. */
static uint64_t
s_max(const sl_opt_t *o)
{
    if (o->max)
        return o->max;
    return o->type == SL_OPT_SIZE ? UINT64_MAX : UINT_MAX;
}

/* Decimal digits, then an optional suffix scaled by the table of units;
 * -1 if anything else follows or the result overflows. */
typedef struct {
    const char *suffix;
    uint64_t    mult;
} s_unit_t;

static const s_unit_t s_size_units[] = {
    { "", 1 }, { "k", 1024 }, { "K", 1024 }, { "m", 1024 * 1024 }, { "M", 1024 * 1024 },
    { "g", 1024 * 1024 * 1024 }, { "G", 1024 * 1024 * 1024 },
    /* 1Mi, 1MB, 1kb: the same binary multiples (as before the table type). */
    { "ki", 1024 }, { "Ki", 1024 }, { "mi", 1 << 20 }, { "Mi", 1 << 20 }, { "gi", 1 << 30 },
    { "Gi", 1 << 30 }, { "kb", 1024 }, { "kB", 1024 }, { "KB", 1024 }, { "Kb", 1024 },
    { "mb", 1 << 20 }, { "MB", 1 << 20 }, { "Mb", 1 << 20 }, { "mB", 1 << 20 },
    { "gb", 1 << 30 }, { "GB", 1 << 30 }, { "Gb", 1 << 30 }, { "gB", 1 << 30 },
    { "b", 1 }, { "B", 1 }, { NULL, 0 },
};

static const s_unit_t s_ms_units[] = {
    { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { NULL, 0 },
};

static const s_unit_t s_no_units[] = { { "", 1 }, { NULL, 0 } };

static int
s_parse_scaled(const char *v, const s_unit_t *units, uint64_t *out)
{
    if (!v || !isdigit((unsigned char) *v))
        return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno)
        return -1;
    for (const s_unit_t *u = units; u->suffix; u++)
        if (strcmp(end, u->suffix) == 0) {
            if (x > UINT64_MAX / u->mult)
                return -1;
            *out = (uint64_t) x * u->mult;
            return 0;
        }
    return -1;
}

static int
s_parse_bool(const char *v, unsigned *out)
{
    static const char *yes[] = { "true", "yes", "on", "1" }, *no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]))
            return *out = 1, 0;
        if (!strcasecmp(v, no[i]))
            return *out = 0, 0;
    }
    return -1;
}

/* Index of v among "a|b|c", or -1. */
static int
s_choice(const char *choices, const char *v)
{
    size_t vl = strlen(v);
    int i = 0;
    for (const char *p = choices; p; i++) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t) (bar - p) : strlen(p);
        if (l == vl && strncmp(p, v, l) == 0)
            return i;
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* "a, b or c" from "a|b|c". */
static const char *
s_choices_text(const char *choices, char *buf, size_t len)
{
    size_t o = 0;
    const char *last = strrchr(choices, '|');
    for (const char *p = choices; *p && o + 4 < len; p++) {
        if (*p != '|') {
            buf[o++] = *p;
            continue;
        }
        const char *sep = p == last ? " or " : ", ";
        size_t sl = strlen(sep);
        if (o + sl >= len)
            break;
        memcpy(buf + o, sep, sl);
        o += sl;
    }
    buf[o < len ? o : len - 1] = '\0';
    return buf;
}

const sl_opt_t *
sl_opt_find(const sl_opt_t *tab, const char *name)
{
    for (const sl_opt_t *o = tab; o && o->name; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

size_t
sl_opt_count(const sl_opt_t *tab)
{
    size_t n = 0;
    while (tab && tab[n].name)
        n++;
    return n;
}

static int
s_set_uint(const sl_opt_t *o, void *cfg, const char *text, const s_unit_t *units,
           const char *what, char *err, size_t errlen)
{
    uint64_t x;
    if (s_parse_scaled(text, units, &x) < 0)
        return sl_errf(err, errlen, "%s: '%s' is not a %s", o->name, text, what);
    if (x < o->min || x > s_max(o))
        return sl_errf(err, errlen, "%s: %" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "]",
                       o->name, x, o->min, s_max(o));
    if (o->check && o->check(o, text, err, errlen) < 0)
        return -1;
    if (o->type == SL_OPT_SIZE)
        *S_FIELD(cfg, o, uint64_t) = x;
    else
        *S_FIELD(cfg, o, unsigned) = (unsigned) x;
    return 0;
}

int
sl_opt_set(const sl_opt_t *o, void *cfg, const char *text, char *err, size_t errlen)
{
    if (!text)
        return sl_errf(err, errlen, "%s: no value", o->name);
    char buf[256];
    unsigned b;
    int i;
    switch (o->type) {
    case SL_OPT_STR:
    case SL_OPT_PATH:
        if (o->check && o->check(o, text, err, errlen) < 0)
            return -1;
        free(*S_FIELD(cfg, o, char *));
        *S_FIELD(cfg, o, char *) = sl_xstrdup(text);
        return 0;
    case SL_OPT_UINT:
        return s_set_uint(o, cfg, text, s_no_units, "whole number", err, errlen);
    case SL_OPT_SIZE:
        return s_set_uint(o, cfg, text, s_size_units, "size (e.g. 1048576 or 1M)", err, errlen);
    case SL_OPT_MS:
        return s_set_uint(o, cfg, text, s_ms_units, "duration (e.g. 250ms, 2s or 1m)", err,
                          errlen);
    case SL_OPT_BOOL:
        if (s_parse_bool(text, &b) < 0)
            return sl_errf(err, errlen, "%s: '%s' is not a boolean (use true or false)", o->name,
                           text);
        if (o->check && o->check(o, text, err, errlen) < 0)
            return -1;
        *S_FIELD(cfg, o, unsigned) = b;
        return 0;
    case SL_OPT_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double d = strtod(text, &end);
        if (!*text || isspace((unsigned char) *text) || *end || !isfinite(d))
            return sl_errf(err, errlen, "%s: '%s' is not a number", o->name, text);
        if ((o->dmin != 0 || o->dmax != 0) && (d < o->dmin || d > o->dmax))
            return sl_errf(err, errlen, "%s: %g is out of range [%g, %g]", o->name, d, o->dmin,
                           o->dmax);
        if (o->check && o->check(o, text, err, errlen) < 0)
            return -1;
        *S_FIELD(cfg, o, double) = d;
        return 0;
    }
    case SL_OPT_ENUM:
        if ((i = s_choice(o->choices, text)) < 0)
            return sl_errf(err, errlen, "%s: '%s' is not a valid value (use %s)", o->name, text,
                           s_choices_text(o->choices, buf, sizeof buf));
        if (o->check && o->check(o, text, err, errlen) < 0)
            return -1;
        *S_FIELD(cfg, o, unsigned) = (unsigned) i;
        return 0;
    case SL_OPT_ANY:
        if (o->check && o->check(o, text, err, errlen) < 0)
            return -1;
        return 0;
    }
    return sl_errf(err, errlen, "%s: option of unknown type %d", o->name, (int) o->type);
}

int
sl_opt_defaults(const sl_opt_t *tab, void *cfg, char *err, size_t errlen)
{
    char why[512];
    for (const sl_opt_t *o = tab; o && o->name; o++) {
        if (!o->def || o->type == SL_OPT_ANY)
            continue;
        if (sl_opt_set(o, cfg, o->def, why, sizeof why) < 0)
            return sl_errf(err, errlen, "default of %s does not parse: %s", o->name, why);
    }
    return 0;
}

/* Percent-decodes p[0..n) into a malloc'd string; '+' is a space, as in
 * Python's parse_qs (Ceilometer's publisher URLs). A '%' not followed by
 * two hex digits stays as it is. */
static char *
s_decode(const char *p, size_t n)
{
    char *out = sl_xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '+') {
            *o++ = ' ';
        } else if (p[i] == '%' && i + 2 < n && isxdigit((unsigned char) p[i + 1]) &&
                   isxdigit((unsigned char) p[i + 2]) && (p[i + 1] != '0' || p[i + 2] != '0')) {
            /* %00 stays as written: a NUL would cut the value short. */
            char hex[3] = { p[i + 1], p[i + 2], 0 };
            *o++ = (char) strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = p[i];
        }
    }
    *o = '\0';
    return out;
}

int
sl_opt_query(const sl_opt_t *tab, void *cfg, const char *query, int unknown_ok,
             size_t *n_unknown, char *err, size_t errlen)
{
    if (n_unknown)
        *n_unknown = 0;
    for (const char *p = query ? query : ""; *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t) (amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t) (eq - p) : len;
        /* A key without a value is dropped, as Python's parse_qs does
         * (keep_blank_values=False). */
        if (eq && len > kl + 1) {
            char *key = s_decode(p, kl);
            char *val = s_decode(eq + 1, len - kl - 1);
            const sl_opt_t *o = sl_opt_find(tab, key);
            int rc = 0;
            if (!o && !unknown_ok) {
                char known[512];
                size_t k = 0;
                known[0] = '\0';
                for (const sl_opt_t *t = tab; t && t->name && k + 1 < sizeof known; t++)
                    k += (size_t) snprintf(known + k, sizeof known - k, "%s%s",
                                           t == tab ? "" : ", ", t->name);
                rc = sl_errf(err, errlen, "unknown option '%s' (known: %s)", key,
                             *known ? known : "none");
            } else if (!o) {
                if (n_unknown)
                    (*n_unknown)++;
            } else {
                rc = sl_opt_set(o, cfg, val, err, errlen);
            }
            free(key);
            free(val);
            if (rc < 0)
                return -1;
        }
        p += len + (amp ? 1 : 0);
    }
    return 0;
}

void
sl_opt_free(const sl_opt_t *tab, void *cfg)
{
    for (const sl_opt_t *o = tab; o && o->name; o++)
        if ((o->type == SL_OPT_STR || o->type == SL_OPT_PATH) && o->offset != SL_OPT_NO_OFFSET) {
            free(*S_FIELD(cfg, o, char *));
            *S_FIELD(cfg, o, char *) = NULL;
        }
}

/* The n-th choice of "a|b|c" into buf. */
static const char *
s_choice_name(const char *choices, unsigned n, char *buf, size_t len)
{
    const char *p = choices;
    for (unsigned i = 0; p && i < n; i++) {
        p = strchr(p, '|');
        p = p ? p + 1 : NULL;
    }
    if (!p)
        return snprintf(buf, len, "%u", n), buf;
    const char *bar = strchr(p, '|');
    snprintf(buf, len, "%.*s", (int) (bar ? (size_t) (bar - p) : strlen(p)), p);
    return buf;
}

const char *
sl_opt_format(const sl_opt_t *o, const void *cfg, char *buf, size_t len)
{
    if (!len)
        return buf;
    buf[0] = '\0';
    if (o->offset == SL_OPT_NO_OFFSET)
        return buf;
    switch (o->type) {
    case SL_OPT_STR:
    case SL_OPT_PATH: {
        const char *s = *S_CFIELD(cfg, o, char *);
        snprintf(buf, len, "%s", s ? s : "");
        break;
    }
    case SL_OPT_UINT:
    case SL_OPT_MS:
        snprintf(buf, len, "%u", *S_CFIELD(cfg, o, unsigned));
        break;
    case SL_OPT_SIZE:
        snprintf(buf, len, "%" PRIu64, *S_CFIELD(cfg, o, uint64_t));
        break;
    case SL_OPT_BOOL:
        snprintf(buf, len, "%s", *S_CFIELD(cfg, o, unsigned) ? "true" : "false");
        break;
    case SL_OPT_DOUBLE:
        snprintf(buf, len, "%g", *S_CFIELD(cfg, o, double));
        break;
    case SL_OPT_ENUM:
        s_choice_name(o->choices, *S_CFIELD(cfg, o, unsigned), buf, len);
        break;
    case SL_OPT_ANY:
        break;
    }
    return buf;
}

const char *
sl_opt_type_text(const sl_opt_t *o, char *buf, size_t len)
{
    if (o->type_text) {
        snprintf(buf, len, "%s", o->type_text);
        return buf;
    }
    switch (o->type) {
    case SL_OPT_STR: snprintf(buf, len, "text"); break;
    case SL_OPT_PATH: snprintf(buf, len, "path"); break;
    case SL_OPT_UINT:
        if (o->max)
            snprintf(buf, len, "whole number %" PRIu64 "..%" PRIu64, o->min, o->max);
        else
            snprintf(buf, len, "whole number >= %" PRIu64, o->min);
        break;
    case SL_OPT_SIZE: snprintf(buf, len, "size"); break;
    case SL_OPT_MS: snprintf(buf, len, "duration"); break;
    case SL_OPT_BOOL: snprintf(buf, len, "true/false"); break;
    case SL_OPT_DOUBLE:
        if (o->dmin != 0 || o->dmax != 0)
            snprintf(buf, len, "number %g..%g", o->dmin, o->dmax);
        else
            snprintf(buf, len, "number");
        break;
    case SL_OPT_ENUM: snprintf(buf, len, "%s", o->choices); break;
    case SL_OPT_ANY: snprintf(buf, len, "any"); break;
    default: snprintf(buf, len, "?"); break;
    }
    return buf;
}

void
sl_opt_help(FILE *out, const sl_opt_t *tab, const char *prefix)
{
    fprintf(out, "| option | type | default | help |\n|---|---|---|---|\n");
    for (const sl_opt_t *o = tab; o && o->name; o++) {
        char type[128];
        fprintf(out, "| `%s%s` | ", prefix ? prefix : "", o->name);
        /* a | inside a cell would end it (GitHub Markdown: \|) */
        for (const char *t = sl_opt_type_text(o, type, sizeof type); *t; t++)
            fprintf(out, *t == '|' ? "\\|" : "%c", *t);
        fprintf(out, " | ");
        if (o->def && *o->def)
            fprintf(out, "`%s`", o->def);
        else
            fprintf(out, "%s", o->required ? "(required)" : "(none)");
        fprintf(out, " | %s |\n", o->help ? o->help : "");
    }
}

int
sl_opt_check_auto_uint(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    uint64_t x;
    if (strcmp(text, "auto") == 0)
        return 0;
    if (s_parse_scaled(text, s_no_units, &x) < 0 || x < o->min || x > s_max(o))
        return sl_errf(err, errlen, "%s: '%s' must be auto or a number from %" PRIu64 " to %"
                       PRIu64, o->name, text, o->min, s_max(o));
    return 0;
}

int
sl_opt_check_log_level(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    if (sl_log_level_parse(text) < 0)
        return sl_errf(err, errlen, "%s: '%s' is not a log level (use error, warn, info or "
                       "debug)", o->name, text);
    return 0;
}

char *
sl_url_unquote(const char *s, size_t n, int plus)
{
    char *out = sl_xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (plus && s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char) s[i + 1]) &&
                   isxdigit((unsigned char) s[i + 2])) {
            char hex[3] = { s[i + 1], s[i + 2], 0 };
            *o++ = (char) strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}
