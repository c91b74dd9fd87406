/* transformers/conversions.c — unit_conversion, rate_of_change, delta and aggregator:
 * the transformers built on Ceilometer's conversion machinery (name/unit
 * mapping with Python regular expressions, scale, type, max; TRANSFORMERS.md
 * sections 3-6 and 8). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "worker/transformers/tx.h"

#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/expr.h"
#include "common/isotime.h"

/* --- re.sub with Python's pattern and replacement rules ------------------- */

typedef struct {
    int    group;               /* -1: literal */
    char  *lit;
    size_t n;
} s_part_t;

typedef struct {
    pcre2_code       *re;       /* NULL: no mapping for this attribute */
    pcre2_match_data *md;
    s_part_t         *parts;
    size_t            n_parts;
} s_map_t;

static void
s_map_free(s_map_t *m)
{
    for (size_t i = 0; i < m->n_parts; i++)
        free(m->parts[i].lit);
    free(m->parts);
    if (m->md)
        pcre2_match_data_free(m->md);
    if (m->re)
        pcre2_code_free(m->re);
    memset(m, 0, sizeof *m);
}

static void
s_add_lit(s_map_t *m, const char *p, size_t n)
{
    if (!n)
        return;
    if (m->n_parts && m->parts[m->n_parts - 1].group < 0) {
        s_part_t *last = &m->parts[m->n_parts - 1];
        last->lit = sl_xrealloc(last->lit, last->n + n + 1);
        memcpy(last->lit + last->n, p, n);
        last->n += n;
        last->lit[last->n] = '\0';
        return;
    }
    m->parts = sl_xrealloc(m->parts, (m->n_parts + 1) * sizeof *m->parts);
    s_part_t *part = &m->parts[m->n_parts++];
    part->group = -1;
    part->lit = sl_xmalloc(n + 1);
    memcpy(part->lit, p, n);
    part->lit[n] = '\0';
    part->n = n;
}

static void
s_add_group(s_map_t *m, int g)
{
    m->parts = sl_xrealloc(m->parts, (m->n_parts + 1) * sizeof *m->parts);
    m->parts[m->n_parts++] = (s_part_t) { .group = g };
}

static size_t
s_utf8_put(unsigned cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char) cp;
        return 1;
    }
    o[0] = (char) (0xc0 | cp >> 6);
    o[1] = (char) (0x80 | (cp & 0x3f));
    return 2;
}

static int
s_is_identifier(const char *s, size_t n)
{
    if (!n || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c >= 0x80))
            return 0;
    }
    return 1;
}

/* sre_parse.parse_template (Python 3.7) against the compiled pattern. */
static int
s_parse_template(s_map_t *m, const char *t, char *msg, size_t msglen)
{
    uint32_t n_groups = 0;
    pcre2_pattern_info(m->re, PCRE2_INFO_CAPTURECOUNT, &n_groups);
    const char *p = t;
    while (*p) {
        if (*p != '\\') {
            const char *q = p;
            while (*q && *q != '\\')
                q++;
            s_add_lit(m, p, (size_t) (q - p));
            p = q;
            continue;
        }
        char c = p[1];
        if (!c) {
            snprintf(msg, msglen, "bad escape (end of pattern)");
            return -1;
        }
        if (c == 'g') {
            if (p[2] != '<') {
                snprintf(msg, msglen, "missing < after \\g");
                return -1;
            }
            const char *name = p + 3, *end = strchr(name, '>');
            if (!end) {
                snprintf(msg, msglen, "missing >, unterminated name");
                return -1;
            }
            size_t nn = (size_t) (end - name);
            if (!nn) {
                snprintf(msg, msglen, "missing group name");
                return -1;
            }
            int idx;
            if (s_is_identifier(name, nn)) {
                char nbuf[128];
                snprintf(nbuf, sizeof nbuf, "%.*s", (int) nn, name);
                idx = pcre2_substring_number_from_name(m->re, (PCRE2_SPTR) nbuf);
                if (idx < 0) {
                    snprintf(msg, msglen, "unknown group name '%s'", nbuf);
                    return -1;
                }
            } else {
                idx = 0;
                for (size_t i = 0; i < nn; i++) {
                    if (name[i] < '0' || name[i] > '9' || idx > 100000) {
                        snprintf(msg, msglen, "bad character in group name '%.*s'", (int) nn,
                                 name);
                        return -1;
                    }
                    idx = idx * 10 + (name[i] - '0');
                }
                if ((uint32_t) idx > n_groups) {
                    snprintf(msg, msglen, "invalid group reference %d", idx);
                    return -1;
                }
            }
            s_add_group(m, idx);
            p = end + 1;
            continue;
        }
        if (c == '0') {
            unsigned v = 0;
            int k = 1;
            while (k < 3 && p[1 + k] >= '0' && p[1 + k] <= '7')
                k++;
            for (int i = 1; i <= k; i++)
                v = v * 8 + (unsigned) (p[i] - '0');
            char o[4];
            s_add_lit(m, o, s_utf8_put(v & 0xff, o));
            p += 1 + k;
            continue;
        }
        if (c >= '1' && c <= '9') {
            const char *q = p + 2;
            if (*q >= '0' && *q <= '9') {
                if (c <= '7' && *q <= '7' && q[1] >= '0' && q[1] <= '7') {
                    unsigned v = (unsigned) ((c - '0') * 64 + (*q - '0') * 8 + (q[1] - '0'));
                    if (v > 0377) {
                        snprintf(msg, msglen, "octal escape value \\%c%c%c outside of range "
                                 "0-0o377", c, q[0], q[1]);
                        return -1;
                    }
                    char o[4];
                    s_add_lit(m, o, s_utf8_put(v, o));
                    p = q + 2;
                    continue;
                }
                int idx = (c - '0') * 10 + (*q - '0');
                if ((uint32_t) idx > n_groups) {
                    snprintf(msg, msglen, "invalid group reference %d", idx);
                    return -1;
                }
                s_add_group(m, idx);
                p = q + 1;
                continue;
            }
            if ((uint32_t) (c - '0') > n_groups) {
                snprintf(msg, msglen, "invalid group reference %d", c - '0');
                return -1;
            }
            s_add_group(m, c - '0');
            p += 2;
            continue;
        }
        static const char esc_in[] = "abfnrtv\\";
        static const char esc_out[] = "\a\b\f\n\r\t\v\\";
        const char *e = strchr(esc_in, c);
        if (e) {
            s_add_lit(m, &esc_out[e - esc_in], 1);
            p += 2;
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            snprintf(msg, msglen, "bad escape \\%c", c);
            return -1;
        }
        s_add_lit(m, p, 2);             /* `\.` stays `\.`, as in Python */
        p += 2;
    }
    return 0;
}

/* --- Python `re` patterns for PCRE2 -------------------------------------- */

typedef struct {
    char  *p;
    size_t n, cap;
} s_str_t;

static void
s_sput(s_str_t *o, const char *p, size_t n)
{
    if (o->n + n + 1 > o->cap) {
        o->cap = (o->n + n + 1) * 2;
        o->p = sl_xrealloc(o->p, o->cap);
    }
    memcpy(o->p + o->n, p, n);
    o->n += n;
    o->p[o->n] = '\0';
}

static int
s_hexn(const char *p, int n, unsigned long *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        int c = (unsigned char) p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        *v = *v * 16 + (unsigned long) d;
    }
    return 1;
}

enum { S_PAT_OK = 0, S_PAT_INVALID = -1, S_PAT_UNSUPPORTED = -2 };

/* `\x..`, `\u....`, `\U........` (Python takes exactly 2, 4, 8 hex digits)
 * at p (after the backslash) as PCRE's `\x{...}`; *len = bytes consumed. */
static int
s_py_hex_escape(const char *p, s_str_t *o, size_t *len, char *msg, size_t msglen)
{
    int n = p[0] == 'x' ? 2 : p[0] == 'u' ? 4 : 8;
    unsigned long v;
    if ((int) strnlen(p + 1, (size_t) n) < n || !s_hexn(p + 1, n, &v)) {
        snprintf(msg, msglen, "incomplete escape \\%c%.*s", p[0], n, p + 1);
        return S_PAT_INVALID;
    }
    if (v > 0x10ffff) {
        snprintf(msg, msglen, "bad escape \\%c%.*s", p[0], n, p + 1);
        return S_PAT_INVALID;
    }
    if (v >= 0xd800 && v <= 0xdfff) {
        snprintf(msg, msglen, "a surrogate code point (\\%c%.*s)", p[0], n, p + 1);
        return S_PAT_UNSUPPORTED;
    }
    char buf[16];
    s_sput(o, buf, (size_t) snprintf(buf, sizeof buf, "\\x{%lx}", v));
    *len = (size_t) n + 1;
    return S_PAT_OK;
}

/* The quantifier `{m}`, `{m,}`, `{,n}`, `{m,n}` at p as Python's sre_parse
 * reads it: its length, or 0 if `{` is a literal there. */
static size_t
s_py_brace(const char *p, int *no_min)
{
    const char *q = p + 1;
    if (*q == '}')
        return 0;
    const char *lo = q;
    while (*q >= '0' && *q <= '9')
        q++;
    *no_min = q == lo;
    if (*q == ',') {
        q++;
        while (*q >= '0' && *q <= '9')
            q++;
    }
    return *q == '}' ? (size_t) (q + 1 - p) : 0;
}

/* A lookbehind's content b[0..n) (translated): 1 if its top-level branches
 * have different fixed lengths, which PCRE2 accepts and Python refuses
 * ("look-behind requires fixed-width pattern"). A branch PCRE2 cannot
 * compile alone (a reference to an outer group) is not judged here. */
static int
s_lookbehind_widths_differ(const char *b, size_t n)
{
    size_t start = 0, depth = 0;
    int in_class = 0, class_first = 0;
    long width = -1;
    for (size_t i = 0; i <= n; i++) {
        if (i < n) {
            char c = b[i];
            if (c == '\\') {
                i++;
                class_first = 0;
                continue;
            }
            if (in_class) {
                if (c == ']' && !class_first)
                    in_class = 0;
                class_first = 0;
                continue;
            }
            if (c == '[') {
                in_class = 1;
                class_first = 1;
                if (i + 1 < n && b[i + 1] == '^')
                    i++;
                continue;
            }
            if (c == '(')
                depth++;
            else if (c == ')' && depth)
                depth--;
            if (c != '|' || depth)
                continue;
        } else if (width < 0) {
            return 0;                   /* a single branch: PCRE2 and Python agree */
        }
        s_str_t one = { 0 };
        s_sput(&one, "(?<=", 4);
        s_sput(&one, b + start, i - start);
        s_sput(&one, ")", 1);
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR) one.p, one.n, PCRE2_UTF, &code, &off, NULL);
        free(one.p);
        uint32_t w = 0;
        if (!re)
            return 0;
        pcre2_pattern_info(re, PCRE2_INFO_MAXLOOKBEHIND, &w);
        pcre2_code_free(re);
        if (width >= 0 && (long) w != width)
            return 1;
        width = (long) w;
        start = i + 1;
    }
    return 0;
}

/* A Python 3.7 `re` pattern (TRANSFORMERS.md section 3.1) as PCRE2 text
 * with the same meaning, into *out (malloc'd). S_PAT_INVALID: Python
 * refuses it too (Ceilometer's re.sub raised and the mapping was ignored),
 * msg says why as Python would; S_PAT_UNSUPPORTED: valid Python whose
 * meaning sluice cannot reproduce. PCRE2 itself reports what this pass
 * lets through and Python also refuses (an unbalanced parenthesis, a
 * quantifier with nothing to repeat, a reference to a missing group). *ucp
 * is cleared by a global `(?a)`. */
static int
s_py_pattern(const char *pat, char **out, int *ucp, char *msg, size_t msglen)
{
    s_str_t o = { 0 }, flags = { 0 };
    int in_class = 0, class_first = 0, groups = 0, depth = 0, rc = S_PAT_OK;
    int open[256];                      /* capturing group number per open parenthesis, or 0 */
    size_t lb[256];                     /* where a lookbehind's content starts in o, or 0 */
    struct {
        const char *p;
        size_t n;
        int group;
    } names[64];                        /* (?P<name>...) defined so far */
    int n_names = 0;
    int last_repeatable = 0, last_quant = 0;
    s_sput(&o, "", 0);
    s_sput(&flags, "", 0);
    *ucp = 1;
    for (const char *p = pat; *p && rc == S_PAT_OK;) {
        char c = *p;
        if (in_class) {
            if (c == ']' && !class_first) {
                in_class = 0;
                s_sput(&o, p++, 1);
                last_repeatable = 1;
                continue;
            }
            class_first = 0;
            if (c == '[') {             /* literal in Python; PCRE reads `[:alpha:]` */
                s_sput(&o, "\\[", 2);
                p++;
                continue;
            }
            if (c != '\\') {
                s_sput(&o, p++, 1);
                continue;
            }
            char d = p[1];
            size_t len;
            if (!d) {
                snprintf(msg, msglen, "bad escape (end of pattern)");
                rc = S_PAT_INVALID;
            } else if (strchr("dDsSwWabfnrt", d)) {
                s_sput(&o, p, 2);
                p += 2;
            } else if (d == 'v') {
                s_sput(&o, "\\x0b", 4);
                p += 2;
            } else if (d == 'x' || d == 'u' || d == 'U') {
                rc = s_py_hex_escape(p + 1, &o, &len, msg, msglen);
                p += 1 + len;
            } else if (d >= '0' && d <= '7') {
                unsigned v = 0;
                int k = 0;
                while (k < 3 && p[1 + k] >= '0' && p[1 + k] <= '7')
                    v = v * 8 + (unsigned) (p[1 + k++] - '0');
                if (v > 0377) {
                    snprintf(msg, msglen, "octal escape value \\%.*s outside of range 0-0o377", k,
                             p + 1);
                    rc = S_PAT_INVALID;
                }
                char buf[16];
                s_sput(&o, buf, (size_t) snprintf(buf, sizeof buf, "\\o{%o}", v));
                p += 1 + k;
            } else if ((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || d == '8' || d == '9') {
                snprintf(msg, msglen, "bad escape \\%c", d);
                rc = S_PAT_INVALID;
            } else {
                s_sput(&o, p, 2);
                p += 2;
            }
            continue;
        }
        if (c == '*' || c == '+' || c == '?' || c == '{') {
            int no_min = 0;
            size_t blen = c == '{' ? s_py_brace(p, &no_min) : 1;
            if (c == '{' && !blen) {
                s_sput(&o, "\\{", 2);
                p++;
                last_repeatable = 1;
                last_quant = 0;
                continue;
            }
            if (last_quant) {
                snprintf(msg, msglen, "multiple repeat");
                rc = S_PAT_INVALID;
                break;
            }
            if (!last_repeatable) {
                snprintf(msg, msglen, "nothing to repeat");
                rc = S_PAT_INVALID;
                break;
            }
            if (c == '{' && no_min) {
                s_sput(&o, "{0", 2);    /* `{,n}` is {0,n} in Python, a literal in PCRE2 */
                s_sput(&o, p + 1, blen - 1);
            } else {
                s_sput(&o, p, blen);
            }
            p += blen;
            if (*p == '?')              /* lazy */
                s_sput(&o, p++, 1);
            last_quant = 1;
            last_repeatable = 0;
            continue;
        }
        last_quant = 0;
        if (c == '[') {
            in_class = 1;
            s_sput(&o, p++, 1);
            if (*p == '^')
                s_sput(&o, p++, 1);
            class_first = 1;
            continue;
        }
        if (c == '(') {
            if (depth >= (int) (sizeof open / sizeof open[0])) {
                snprintf(msg, msglen, "more than %d nested groups", depth);
                rc = S_PAT_UNSUPPORTED;
                break;
            }
            const char *q = p + 2;
            if (p[1] == '?' && *q == '#') {     /* a comment: up to the next ')' */
                const char *e = strchr(q, ')');
                if (!e) {
                    snprintf(msg, msglen, "missing ), unterminated comment");
                    rc = S_PAT_INVALID;
                    break;
                }
                p = e + 1;
                continue;
            }
            last_repeatable = 0;
            if (p[1] == '*') {
                snprintf(msg, msglen, "nothing to repeat");
                rc = S_PAT_INVALID;
                break;
            }
            if (p[1] != '?') {
                lb[depth] = 0;
                open[depth++] = ++groups;
                s_sput(&o, p++, 1);
                continue;
            }
            lb[depth] = 0;
            if (*q == ':' || *q == '=' || *q == '!' || (*q == '<' && (q[1] == '=' || q[1] == '!'))) {
                open[depth++] = 0;
                s_sput(&o, p, (size_t) (q - p) + 1 + (*q == '<'));
                if (*q == '<')
                    lb[depth - 1] = o.n;
                p = q + 1 + (*q == '<');
                continue;
            }
            if (*q == 'P' && q[1] == '<') {
                const char *e = strchr(q, '>');
                if (e && e - (q + 2) > 32) {
                    snprintf(msg, msglen, "a group name longer than 32 characters");
                    rc = S_PAT_UNSUPPORTED;
                    break;
                }
                open[depth++] = ++groups;
                if (e && n_names < (int) (sizeof names / sizeof names[0])) {
                    names[n_names].p = q + 2;
                    names[n_names].n = (size_t) (e - q - 2);
                    names[n_names++].group = groups;
                }
                s_sput(&o, p, 4);
                p += 4;
                continue;
            }
            if ((*q == 'P' && q[1] == '=') || *q == '(') {
                /* (?P=name) and the condition of (?(group)yes|no) */
                const char *e = strchr(q, ')');
                if (!e) {
                    snprintf(msg, msglen, "missing ), unterminated name");
                    rc = S_PAT_INVALID;
                    break;
                }
                /* Python knows a name only once its group was defined */
                const char *nm = q + (*q == 'P' ? 2 : 1);
                size_t nl = (size_t) (e - nm);
                int known = -1, is_name = (*nm < '0' || *nm > '9');
                for (int i = 0; i < n_names; i++)
                    if (names[i].n == nl && !memcmp(names[i].p, nm, nl))
                        known = names[i].group;
                for (int i = 0; i < depth && known > 0 && *q == 'P'; i++)
                    if (open[i] == known) {
                        snprintf(msg, msglen, "cannot refer to an open group");
                        rc = S_PAT_INVALID;
                    }
                if (rc != S_PAT_OK)
                    break;
                if (is_name && known < 0) {
                    snprintf(msg, msglen, "unknown group name '%.*s'", (int) nl, nm);
                    rc = S_PAT_INVALID;
                    break;
                }
                if (*q == '(')
                    open[depth++] = 0;
                s_sput(&o, p, (size_t) (e + 1 - p));
                p = e + 1;
                last_repeatable = *q == 'P';
                continue;
            }
            /* inline flags: global (?aiLmsux), scoped (?aimsux-imsx:...) */
            const char *f = q;
            while (*f && strchr("aiLmsux", *f))
                f++;
            const char *g = f;
            int minus = *g == '-';
            if (minus)
                for (g++; *g && strchr("imsx", *g); g++)
                    ;
            if (f == q && !minus) {
                snprintf(msg, msglen, "unknown extension ?%.1s", *q ? q : ")");
                rc = S_PAT_INVALID;
                break;
            }
            if (memchr(q, 'L', (size_t) (f - q))) {
                snprintf(msg, msglen, "bad inline flags: cannot use 'L' flag with a str pattern");
                rc = S_PAT_INVALID;
                break;
            }
            if (*g == ')' && !minus) {
                /* global: Python 3.7 applies it to the whole pattern */
                for (const char *k = q; k < f && rc == S_PAT_OK; k++) {
                    if (*k == 'a') {
                        *ucp = 0;
                    } else if (*k == 'x') {
                        snprintf(msg, msglen, "the verbose flag (?x)");
                        rc = S_PAT_UNSUPPORTED;
                    } else if (*k != 'u' && !memchr(flags.p, *k, flags.n)) {
                        s_sput(&flags, k, 1);
                    }
                }
                p = g + 1;
                continue;
            }
            if (*g != ':' || (minus && g == f + 1)) {
                snprintf(msg, msglen, *g != ':' ? "missing :" : "missing flag");
                rc = S_PAT_INVALID;
                break;
            }
            if (memchr(q, 'a', (size_t) (f - q))) {
                snprintf(msg, msglen, "a scoped ASCII flag (?a:...)");
                rc = S_PAT_UNSUPPORTED;
                break;
            }
            open[depth++] = 0;
            s_sput(&o, "(?", 2);
            for (const char *k = q; k < g; k++)
                if (*k != 'u')
                    s_sput(&o, k, 1);
            s_sput(&o, ":", 1);
            p = g + 1;
            continue;
        }
        if (c == ')') {
            if (depth > 0 && lb[--depth] &&
                s_lookbehind_widths_differ(o.p + lb[depth], o.n - lb[depth])) {
                snprintf(msg, msglen, "look-behind requires fixed-width pattern");
                rc = S_PAT_INVALID;
                break;
            }
            s_sput(&o, p++, 1);
            last_repeatable = 1;
            continue;
        }
        if (c == '|' || c == '^' || c == '$') {
            s_sput(&o, p++, 1);
            last_repeatable = 0;
            continue;
        }
        if (c != '\\') {
            s_sput(&o, p++, 1);
            last_repeatable = 1;
            continue;
        }
        char d = p[1];
        size_t len;
        last_repeatable = 1;
        if (!d) {
            snprintf(msg, msglen, "bad escape (end of pattern)");
            rc = S_PAT_INVALID;
        } else if (strchr("AbBZ", d)) {         /* anchors: nothing to repeat */
            s_sput(&o, d == 'Z' ? "\\z" : p, 2);
            p += 2;
            last_repeatable = 0;
        } else if (strchr("dDsSwWafnrt", d)) {
            s_sput(&o, p, 2);
            p += 2;
        } else if (d == 'v') {
            s_sput(&o, "\\x0b", 4);
            p += 2;
        } else if (d == 'x' || d == 'u' || d == 'U') {
            rc = s_py_hex_escape(p + 1, &o, &len, msg, msglen);
            p += 1 + len;
        } else if (d == '0') {
            unsigned v = 0;
            int k = 1;
            while (k < 3 && p[1 + k] >= '0' && p[1 + k] <= '7')
                v = v * 8 + (unsigned) (p[1 + k++] - '0');
            char buf[16];
            s_sput(&o, buf, (size_t) snprintf(buf, sizeof buf, "\\o{%o}", v));
            p += 1 + k;
        } else if (d >= '1' && d <= '9') {
            if (d <= '7' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
                unsigned v = (unsigned) ((d - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                if (v > 0377) {
                    snprintf(msg, msglen, "octal escape value \\%.3s outside of range 0-0o377",
                             p + 1);
                    rc = S_PAT_INVALID;
                }
                char buf[16];
                s_sput(&o, buf, (size_t) snprintf(buf, sizeof buf, "\\o{%o}", v));
                p += 4;
                continue;
            }
            int ref = d - '0', k = 2;
            if (p[2] >= '0' && p[2] <= '9') {
                ref = ref * 10 + (p[2] - '0');
                k = 3;
            }
            int is_open = 0;
            for (int i = 0; i < depth; i++)
                is_open |= open[i] == ref;
            if (ref > groups || is_open) {
                snprintf(msg, msglen, is_open ? "cannot refer to an open group"
                         : "invalid group reference %d", ref);
                rc = S_PAT_INVALID;
            }
            char buf[16];                /* PCRE would read \12 as octal without 12 groups */
            s_sput(&o, buf, (size_t) snprintf(buf, sizeof buf, "\\g{%d}", ref));
            p += k;
        } else if ((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z')) {
            snprintf(msg, msglen, "bad escape \\%c", d);
            rc = S_PAT_INVALID;
        } else {
            s_sput(&o, p, 2);
            p += 2;
        }
    }
    if (rc == S_PAT_OK && in_class) {
        snprintf(msg, msglen, "unterminated character set");
        rc = S_PAT_INVALID;
    }
    if (rc == S_PAT_OK && flags.n) {
        s_str_t full = { 0 };
        s_sput(&full, "(?", 2);
        s_sput(&full, flags.p, flags.n);
        s_sput(&full, ")", 1);
        s_sput(&full, o.p, o.n);
        free(o.p);
        o = full;
    }
    free(flags.p);
    if (rc != S_PAT_OK) {
        free(o.p);
        o.p = NULL;
    }
    *out = o.p;
    return rc;
}

/* Section 3.1: a name or unit mapping. 0 with m->re set, or (Ceilometer
 * ignored it: re.sub raised on every sample, silently) 0 with m->re NULL
 * after a warning, or -1 (strict mode, or what sluice cannot run). */
static int
s_map_init(const sl_tx_conf_t *conf, s_map_t *m, const char *attr, int has_target,
           const sl_ynode_t *from, const sl_ynode_t *to, char *err, size_t errlen)
{
    char then[128];
    snprintf(then, sizeof then, "mapping ignored, %s%s %s as Ceilometer does",
             has_target ? "target." : "the input's ", attr, has_target ? "used" : "kept");
    sl_tx_val_t fv, tv;
    sl_tx_value(from, &fv);
    sl_tx_value(to, &tv);
    if (fv.type != SL_TXT_STR || tv.type != SL_TXT_STR) {
        const sl_ynode_t *n = fv.type != SL_TXT_STR ? from : to;
        return sl_tx_warn(conf, n, err, errlen, "%s.%s is not a string: %s",
                          n == from ? "source.map_from" : "target.map_to", attr, then);
    }
    char msg[256], *pat;
    int ucp;
    int rc = s_py_pattern(fv.s, &pat, &ucp, msg, sizeof msg);
    if (rc == S_PAT_UNSUPPORTED)
        return sl_tx_err(conf, from, err, errlen, "pattern '%s' uses %s, which sluice cannot run "
                         "with Python's meaning", fv.s, msg);
    if (rc == S_PAT_INVALID)
        return sl_tx_warn(conf, from, err, errlen, "pattern '%s' is invalid (%s): %s", fv.s, msg,
                          then);
    int code;
    PCRE2_SIZE off;
    m->re = pcre2_compile((PCRE2_SPTR) pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | (ucp ? PCRE2_UCP : 0),
                          &code, &off, NULL);
    free(pat);
    if (!m->re) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(code, buf, sizeof buf);
        return sl_tx_warn(conf, from, err, errlen, "pattern '%s' is invalid (%s): %s", fv.s,
                          (const char *) buf, then);
    }
    pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);   /* the interpreter if JIT is unavailable */
    m->md = pcre2_match_data_create_from_pattern(m->re, NULL);
    if (s_parse_template(m, tv.s, msg, sizeof msg) < 0) {
        s_map_free(m);
        return sl_tx_warn(conf, to, err, errlen, "replacement '%s' is invalid (%s): %s", tv.s,
                          msg, then);
    }
    return 0;
}

static void
s_buf_put(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = sl_xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* re.sub(pattern, repl, subject): every non-overlapping match, empty
 * matches handled as Python 3.7 does. Result in *buf; -1 on a match error. */
static int
s_sub(const s_map_t *m, const char *subj, char **buf, size_t *cap, size_t *out_len)
{
    size_t len = strlen(subj), o = 0, offset = 0, last = 0;
    uint32_t opts = 0;
    if (!*cap) {
        *cap = 256;
        *buf = sl_xmalloc(*cap);
    }
    (*buf)[0] = '\0';
    for (;;) {
        int rc = pcre2_match(m->re, (PCRE2_SPTR) subj, len, offset, opts, m->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (!opts || offset >= len)
                break;
            offset++;                   /* step over one character after an empty match */
            while (offset < len && ((unsigned char) subj[offset] & 0xc0) == 0x80)
                offset++;
            opts = 0;
            continue;
        }
        if (rc < 0)
            return -1;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        uint32_t n_ov = pcre2_get_ovector_count(m->md);
        s_buf_put(buf, &o, cap, subj + last, ov[0] - last);
        for (size_t i = 0; i < m->n_parts; i++) {
            const s_part_t *pt = &m->parts[i];
            if (pt->group < 0) {
                s_buf_put(buf, &o, cap, pt->lit, pt->n);
                continue;
            }
            uint32_t g = (uint32_t) pt->group;
            if (g < n_ov && g < (uint32_t) rc && ov[2 * g] != PCRE2_UNSET)
                s_buf_put(buf, &o, cap, subj + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        }
        last = ov[1];
        offset = ov[1];
        opts = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    }
    s_buf_put(buf, &o, cap, subj + last, len - last);
    *out_len = o;
    return 0;
}

/* --- the shared conversion ------------------------------------------------ */

/* SC_BAD: a scale expression that cannot be evaluated (Python could not
 * either): every sample it converts fails, as in Ceilometer. */
enum { SC_VOLUME, SC_NUM, SC_EXPR, SC_ONE, SC_BAD };
enum { A_NAME, A_UNIT };

typedef struct {
    int         has_src_unit;
    int         src_never;              /* source.unit is not a string: no unit equals it */
    char       *src_unit;               /* may be NULL (null) */
    s_map_t     map[2];
    int         has_tgt[2];
    char       *tgt[2];
    int         has_type;
    char       *type;
    int         scale_kind;
    double      scale_k;
    sl_expr_t  *scale;
    char       *scale_text, *scale_err; /* SC_BAD */
    int         has_max;
    double      max;
    char       *buf;                    /* re.sub output */
    size_t      cap;
} s_conv_t;

static char *
s_dup_scalar(const sl_ynode_t *n)
{
    sl_tx_val_t v;
    sl_tx_value(n, &v);
    return v.type == SL_TXT_NULL ? NULL : sl_xstrdup(v.s);
}

/* A parameter's value for messages. */
static const char *
s_val_text(const sl_tx_val_t *v)
{
    return v->type == SL_TXT_MAP ? "(a mapping)" : v->type == SL_TXT_SEQ ? "(a list)"
         : v->type == SL_TXT_NULL ? "null" : v->s;
}

/* Section 3.1's condition: both map_from and map_to non-empty objects and,
 * per attribute, both entries non-empty strings; anything less is ignored
 * by Ceilometer (a warning here). n_attrs: 1 = the name only (delta). */
static int
s_maps_init(const sl_tx_conf_t *conf, s_conv_t *c, int n_attrs, char *err, size_t errlen)
{
    static const char *const attrs[2] = { "name", "unit" };
    const sl_ynode_t *from = sl_tx_param(conf->params, "source.map_from");
    const sl_ynode_t *to = sl_tx_param(conf->params, "target.map_to");
    int tf = sl_tx_truthy(from), tt = sl_tx_truthy(to);
    if (!tf && !tt)
        return 0;
    if (!tf || !tt)
        return sl_tx_warn(conf, tf ? from : to, err, errlen, "%s without %s: ignored, as "
                          "Ceilometer does (a mapping needs both)",
                          tf ? "source.map_from" : "target.map_to",
                          tf ? "target.map_to" : "source.map_from");
    if (from->kind != SL_Y_MAP || to->kind != SL_Y_MAP) {
        const sl_ynode_t *bad = from->kind != SL_Y_MAP ? from : to;
        return sl_tx_err(conf, bad, err, errlen, "%s must be a mapping (Ceilometer accepted "
                         "it and then failed on every sample)",
                         bad == from ? "source.map_from" : "target.map_to");
    }
    for (int a = 0; a < n_attrs; a++) {
        const sl_ynode_t *f = sl_ynode_get(from, attrs[a]), *t = sl_ynode_get(to, attrs[a]);
        int ff = sl_tx_truthy(f), ft = sl_tx_truthy(t);
        if (!ff && !ft)
            continue;
        if (!ff || !ft) {
            if (sl_tx_warn(conf, ff ? f : t, err, errlen, "source.map_from.%s without "
                           "target.map_to.%s: ignored, as Ceilometer does (a mapping needs "
                           "both)", attrs[a], attrs[a]) < 0)
                return -1;
            continue;
        }
        char path[32];
        snprintf(path, sizeof path, "target.%s", attrs[a]);
        if (s_map_init(conf, &c->map[a], attrs[a], sl_tx_param(conf->params, path) != NULL, f,
                       t, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Reads source/target. what: bit 1 = source.unit, 2 = type/scale/max,
 * 4 = target.unit and the unit mapping (delta reads only the name). */
static int
s_conv_init(const sl_tx_conf_t *conf, s_conv_t *c, int what, int default_scale_one, char *err,
            size_t errlen)
{
    const sl_ynode_t *p = conf->params;
    const sl_ynode_t *n;
    sl_tx_val_t v;
    if ((what & 1) && (n = sl_tx_param(p, "source.unit"))) {
        c->has_src_unit = 1;
        sl_tx_value(n, &v);
        if (v.type == SL_TXT_STR) {
            c->src_unit = sl_xstrdup(v.s);
        } else if (v.type != SL_TXT_NULL) {
            c->src_never = 1;       /* `source.get('unit', s.unit) == s.unit` never holds */
            if (sl_tx_warn(conf, n, err, errlen, "source.unit %s is not a string: no sample's "
                           "unit equals it, so every sample passes unchanged, as in Ceilometer",
                           s_val_text(&v)) < 0)
                return -1;
        }
    }
    static const char *const attrs[2] = { "name", "unit" };
    for (int a = 0; a < ((what & 4) ? 2 : 1); a++) {
        char path[32];
        snprintf(path, sizeof path, "target.%s", attrs[a]);
        if ((n = sl_tx_param(p, path))) {
            c->has_tgt[a] = 1;
            c->tgt[a] = s_dup_scalar(n);
        }
    }
    if (s_maps_init(conf, c, (what & 4) ? 2 : 1, err, errlen) < 0)
        return -1;
    c->scale_kind = default_scale_one ? SC_ONE : SC_VOLUME;
    if (!(what & 2))
        return 0;
    if ((n = sl_tx_param(p, "target.type"))) {
        c->has_type = 1;
        c->type = s_dup_scalar(n);
        if (c->type && strcmp(c->type, "gauge") && strcmp(c->type, "delta") &&
            strcmp(c->type, "cumulative") &&
            sl_tx_warn(conf, n, err, errlen, "target.type '%s' is not gauge, delta or "
                       "cumulative: used as given, as Ceilometer does", c->type) < 0)
            return -1;
    }
    n = sl_tx_param(p, "target.scale");
    if (sl_tx_truthy(n)) {
        sl_tx_value(n, &v);
        if (v.type == SL_TXT_STR) {
            char msg[256];
            c->scale = sl_expr_compile(v.s, NULL, 0, msg, sizeof msg);
            if (c->scale) {
                c->scale_kind = SC_EXPR;
            } else if (!sl_tx_expr_fails_in_python(msg)) {
                return sl_tx_err(conf, n, err, errlen, "target.scale '%.60s%s': %s", v.s,
                                 strlen(v.s) > 60 ? "..." : "", msg);
            } else {
                /* TRANSFORMERS.md 3.3: not checked at configuration time,
                 * fails every evaluation */
                c->scale_kind = SC_BAD;
                c->scale_text = sl_xstrdup(v.s);
                c->scale_err = sl_xstrdup(msg);
                if (sl_tx_warn(conf, n, err, errlen, "target.scale '%.60s%s' cannot be "
                               "evaluated (%s): every sample it converts fails (an error, "
                               "counted), as in Ceilometer", v.s, strlen(v.s) > 60 ? "..." : "",
                               msg) < 0)
                    return -1;
            }
        } else {
            c->scale_kind = SC_NUM;
            c->scale_k = v.type == SL_TXT_FLOAT ? v.f : (double) v.i;
        }
    }
    n = sl_tx_param(p, "target.max");
    if (sl_tx_truthy(n)) {
        sl_tx_value(n, &v);
        c->has_max = 1;
        c->max = v.type == SL_TXT_FLOAT ? v.f : (double) v.i;
    }
    return 0;
}

static void
s_conv_free(s_conv_t *c)
{
    free(c->src_unit);
    for (int a = 0; a < 2; a++) {
        s_map_free(&c->map[a]);
        free(c->tgt[a]);
    }
    free(c->type);
    sl_expr_destroy(&c->scale);
    free(c->scale_text);
    free(c->scale_err);
    free(c->buf);
}

/* Section 3.1: the output name or unit. */
static const char *
s_map_attr(s_conv_t *c, sl_tx_env_t *env, const sl_sample_t *s, int a)
{
    const char *v = a == A_NAME ? s->name : s->unit;
    if (c->map[a].re && v) {
        size_t n;
        if (s_sub(&c->map[a], v, &c->buf, &c->cap, &n) == 0 && n > 0)
            return sl_arena_strndup(env->out, c->buf, n);
    }
    return c->has_tgt[a] ? c->tgt[a] : v;
}

/* Section 3.2: the scaled value of s. */
static int
s_scaled(s_conv_t *c, sl_tx_env_t *env, const sl_sample_t *s, double *out)
{
    switch (c->scale_kind) {
    case SC_VOLUME: *out = s->volume; return 0;
    case SC_NUM: *out = s->volume * c->scale_k; return 0;
    case SC_ONE: *out = 1.0; return 0;
    case SC_BAD: return sl_tx_fail(env, "scale '%s': %s", c->scale_text, c->scale_err);
    default: break;
    }
    sl_expr_env_t xenv = { .sample = s, .scratch = env->scratch };
    sl_xval_t v;
    char msg[256];
    if (sl_expr_eval(c->scale, &xenv, &v, msg, sizeof msg) < 0)
        return sl_tx_fail(env, "scale '%s': %s", sl_expr_text(c->scale), msg);
    if (sl_expr_number(&v, out, msg, sizeof msg) < 0)
        return sl_tx_fail(env, "scale '%s' gave a %s, not a number", sl_expr_text(c->scale),
                          sl_expr_type_name(&v));
    return 0;
}

/* Section 3.4: convert(s, growth) as a new sample in env->out. */
static int
s_convert(s_conv_t *c, sl_tx_env_t *env, const sl_sample_t *s, double growth, sl_sample_t *out)
{
    double scaled;
    if (s_scaled(c, env, s, &scaled) < 0)
        return -1;
    double vol = scaled * growth;
    if (c->has_max && c->max < vol)     /* Python's min(volume, max) */
        vol = c->max;
    *out = *s;
    out->name = s_map_attr(c, env, s, A_NAME);
    out->unit = s_map_attr(c, env, s, A_UNIT);
    out->type = c->has_type ? c->type : s->type;
    out->volume = vol;
    if (!out->resource_metadata)
        out->resource_metadata = "{}";
    sl_tx_sample_new(env, out);
    return 0;
}

/* Ceilometer's `x or {}` for source and target: a false value of another
 * type is {} (a warning); a true one fails (at start-up for target, on
 * every sample for source), so it is refused. map_from/map_to are checked
 * by s_maps_init (ignored unless both are there). */
#define S_SOURCE_OPTS                                                                             \
    SL_TX_OPT("source", SL_TXT_MAP | SL_TXT_NULL | SL_TXT_FALSY, "{}",                            \
      "where the input comes from"),                                                              \
    SL_TX_OPT("source.map_from", SL_TXT_ANY, "-",                                                 \
      "regular expressions (Python `re`) matched against the input name/unit"),                   \
    SL_TX_OPT("source.map_from.name", SL_TXT_ANY, "-", "pattern for the name")

#define S_SOURCE_MAP_UNIT                                                                         \
    SL_TX_OPT("source.map_from.unit", SL_TXT_ANY, "-", "pattern for the unit")

#define S_MAP_TO_OPTS                                                                             \
    SL_TX_OPT("target.map_to", SL_TXT_ANY, "-",                                                   \
      "replacements (`\\1`, `\\g<name>`) for every match of map_from; while a mapping is "        \
      "configured it wins over target.name/unit; an invalid pattern or replacement is "           \
      "ignored (a warning), as in Ceilometer"),                                                   \
    SL_TX_OPT("target.map_to.name", SL_TXT_ANY, "-", "replacement for the name")

#define S_TARGET_OPTS                                                                             \
    SL_TX_OPT("target", SL_TXT_MAP | SL_TXT_NULL | SL_TXT_FALSY, "{}",                            \
      "what the output looks like"),                                                              \
    SL_TX_OPT("target.name", SL_TXT_STR | SL_TXT_NUM | SL_TXT_NULL, "input's", "output name"),    \
    SL_TX_OPT("target.unit", SL_TXT_STR | SL_TXT_NUM | SL_TXT_NULL, "input's", "output unit"),    \
    SL_TX_OPT("target.type", SL_TXT_STR | SL_TXT_NULL, "input's", "output type: gauge, delta or " \
      "cumulative (another string is used as given, with a warning)"),                            \
    SL_TX_OPT("target.scale",                                                                     \
              SL_TXT_NUM | SL_TXT_BOOL | SL_TXT_STR | SL_TXT_NULL | SL_TXT_FALSY, "none",         \
      "a number (multiplies the volume) or an expression over the sample (`volume`, "             \
      "`resource_metadata.x`, ...) whose result is the value; 0/\"\"/null = none"),               \
    SL_TX_OPT("target.max", SL_TXT_NUM | SL_TXT_NULL | SL_TXT_FALSY, "none",                      \
      "cap from above (0 = none)"),                                                               \
    S_MAP_TO_OPTS,                                                                                \
    SL_TX_OPT("target.map_to.unit", SL_TXT_ANY, "-", "replacement for the unit")

/* --- unit_conversion ------------------------------------------------------ */

static const sl_opt_t s_uc_opts[] = {
    S_SOURCE_OPTS,
    S_SOURCE_MAP_UNIT,
    SL_TX_OPT("source.unit", SL_TXT_ANY, "-",
      "convert only samples with this unit; others pass unchanged"),
    S_TARGET_OPTS,
    { .name = NULL },
};

static void *
s_uc_init(const sl_tx_conf_t *conf, char *err, size_t errlen)
{
    s_conv_t *c = sl_xcalloc(1, sizeof *c);
    if (s_conv_init(conf, c, 7, 0, err, errlen) < 0) {
        s_conv_free(c);
        free(c);
        return NULL;
    }
    return c;
}

static int
s_uc_process(void *ctx, sl_tx_env_t *env, const sl_sample_t *in, sl_sample_t *out)
{
    s_conv_t *c = ctx;
    if (c->has_src_unit && (c->src_never || !sl_tx_streq(c->src_unit, in->unit))) {
        *out = *in;
        return 1;
    }
    return s_convert(c, env, in, 1.0, out) < 0 ? -1 : 1;
}

static void
s_conv_destroy(void **ctx_p)
{
    if (!ctx_p || !*ctx_p)
        return;
    s_conv_free(*ctx_p);
    free(*ctx_p);
    *ctx_p = NULL;
}

const sl_tx_plugin_t sl_tx_unit_conversion = {
    .name = "unit_conversion",
    .stateful = 0,
    .keys = sl_tx_resource_keys,
    .summary = "converts name, unit, type and scale of each sample (stateless)",
    .options = s_uc_opts,
    .init = s_uc_init,
    .process = s_uc_process,
    .destroy = s_conv_destroy,
};

/* --- previous-sample cache of rate_of_change and delta -------------------- */

typedef struct {
    double  volume;
    int64_t ts_us;
    int     has_mono;
    double  mono;
    size_t  name_n, rid_n;
    char    key[];              /* name NUL resource_id NUL */
} s_prev_t;

typedef struct {
    const char *name, *rid;
    size_t name_n, rid_n;
} s_prev_key_t;

static int
s_prev_eq(const void *entry, const void *key)
{
    const s_prev_t *e = entry;
    const s_prev_key_t *k = key;
    return e->name_n == k->name_n && e->rid_n == k->rid_n &&
           memcmp(e->key, k->name, k->name_n) == 0 &&
           memcmp(e->key + e->name_n + 1, k->rid, k->rid_n) == 0;
}

/* Keyed by the pair (name, resource_id), not their concatenation
 * (TRANSFORMERS.md section 14, item 2). Fills *k (name and rid non-NULL);
 * returns its hash. */
static uint64_t
s_prev_key(const char *name, const char *rid, s_prev_key_t *k)
{
    *k = (s_prev_key_t) { name, rid, strlen(name), strlen(rid) };
    return sl_tx_hash(sl_tx_hash(0, k->name, k->name_n), k->rid, k->rid_n);
}

typedef struct {
    s_conv_t    conv;
    int         is_delta;
    int         growth_only;
    sl_tx_map_t cache;
} s_rate_t;

static void *
s_rate_new(const sl_tx_conf_t *conf, int is_delta, char *err, size_t errlen)
{
    s_rate_t *r = sl_xcalloc(1, sizeof *r);
    r->is_delta = is_delta;
    if (s_conv_init(conf, &r->conv, is_delta ? 0 : 6, !is_delta, err, errlen) < 0) {
        s_conv_free(&r->conv);
        free(r);
        return NULL;
    }
    r->growth_only = is_delta && sl_tx_truthy(sl_tx_param(conf->params, "growth_only"));
    return r;
}

static void
s_rate_destroy(void **ctx_p)
{
    if (!ctx_p || !*ctx_p)
        return;
    s_rate_t *r = *ctx_p;
    s_conv_free(&r->conv);
    sl_tx_map_free(&r->cache, free);
    free(r);
    *ctx_p = NULL;
}

static void
s_rate_prefetch(const void *ctx, const sl_sample_t *s)
{
    const s_rate_t *r = ctx;
    if (!s->name || !s->resource_id)
        return;
    s_prev_key_t key;
    sl_tx_map_prefetch(&r->cache, s_prev_key(s->name, s->resource_id, &key));
}

/* Sections 5 and 6. */
static int
s_rate_process(void *ctx, sl_tx_env_t *env, const sl_sample_t *s, sl_sample_t *out)
{
    s_rate_t *r = ctx;
    if (!s->name || !s->resource_id)
        return sl_tx_fail(env, "TypeError: the sample's %s is null",
                          s->name ? "resource_id" : "name");
    int64_t ts;
    if (sl_isotime_parse(s->timestamp, &ts) < 0)
        return sl_tx_fail(env, "cannot parse timestamp '%s'",
                          s->timestamp ? s->timestamp : "None");
    s_prev_key_t key;
    uint64_t h = s_prev_key(s->name, s->resource_id, &key);
    s_prev_t *e = sl_tx_map_get(&r->cache, h, s_prev_eq, &key);
    int has_mono = !r->is_delta && s->monotonic_time != NULL;
    double mono = has_mono ? strtod(s->monotonic_time, NULL) : 0.0;
    if (!e) {
        e = sl_xmalloc(sizeof *e + key.name_n + key.rid_n + 2);
        e->name_n = key.name_n;
        e->rid_n = key.rid_n;
        memcpy(e->key, key.name, key.name_n + 1);
        memcpy(e->key + key.name_n + 1, key.rid, key.rid_n + 1);
        e->volume = s->volume;
        e->ts_us = ts;
        e->has_mono = has_mono;
        e->mono = mono;
        sl_tx_map_put(&r->cache, h, e);
        /* (half the samples of a stream of new resources: format only what
         * is printed) */
        if (!sl_log_limited_skip(env->rl_warn, SL_LOG_WARN))
            sl_log_limited(env->rl_warn, SL_LOG_WARN,
                           "sink %s: %s: %s sample with no predecessor: %s",
                           env->sink, r->is_delta ? "delta" : "rate_of_change",
                           r->is_delta ? "Dropping" : "dropping", sl_tx_describe(s));
        return 0;
    }
    s_prev_t prev = *e;
    e->volume = s->volume;
    e->ts_us = ts;
    e->has_mono = has_mono;
    e->mono = mono;
    double dt = prev.has_mono && has_mono ? mono - prev.mono
                                          : (double) (ts - prev.ts_us) / 1e6;
    if (dt < 0) {
        if (!sl_log_limited_skip(env->rl_warn, SL_LOG_WARN))
            sl_log_limited(env->rl_warn, SL_LOG_WARN,
                           "sink %s: %s: %s out of time order sample: %s",
                           env->sink, r->is_delta ? "delta" : "rate_of_change",
                           r->is_delta ? "Dropping" : "dropping", sl_tx_describe(s));
        e->volume = prev.volume;        /* put prev back */
        e->ts_us = prev.ts_us;
        e->has_mono = prev.has_mono;
        e->mono = prev.mono;
        return 0;
    }
    if (r->is_delta) {
        double dv = s->volume - prev.volume;
        if (r->growth_only && dv < 0) {
            sl_log_limited(env->rl_warn, SL_LOG_WARN,
                           "sink %s: delta: Negative delta detected, dropping value (%s)",
                           env->sink, sl_tx_describe(s));
            return 0;
        }
        *out = *s;
        out->name = s_map_attr(&r->conv, env, s, A_NAME);
        out->type = "delta";
        out->volume = dv;
        if (!out->resource_metadata)
            out->resource_metadata = "{}";
        sl_tx_sample_new(env, out);
        return 1;
    }
    int cumulative = s->type && strcmp(s->type, "cumulative") == 0;
    double dv = (prev.volume <= s->volume || !cumulative) ? s->volume - prev.volume : s->volume;
    double rate = dt != 0.0 ? 1.0 * dv / dt : 0.0;
    return s_convert(&r->conv, env, s, rate, out) < 0 ? -1 : 1;
}

static int
s_prev_cmp(const void *x, const void *y)
{
    const s_prev_t *a = *(const s_prev_t *const *) x, *b = *(const s_prev_t *const *) y;
    size_t an = a->name_n + 1 + a->rid_n, bn = b->name_n + 1 + b->rid_n;
    int c = memcmp(a->key, b->key, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* Blob: u64 count, then per cache entry (sorted by name then resource_id,
 * so equal caches give equal bytes): name, resource_id, f64 volume, u64
 * timestamp (epoch us), u8 has_mono, f64 monotonic_time. */
static int
s_rate_save(const void *ctx, sl_tx_wbuf_t *w)
{
    const s_rate_t *r = ctx;
    s_prev_t **v = sl_xmalloc((r->cache.n + 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < r->cache.cap; i++)
        if (r->cache.slots[i].v)
            v[n++] = r->cache.slots[i].v;
    qsort(v, n, sizeof *v, s_prev_cmp);
    sl_tx_w_u64(w, n);
    for (size_t i = 0; i < n; i++) {
        const s_prev_t *e = v[i];
        sl_tx_w_str(w, e->key);
        sl_tx_w_str(w, e->key + e->name_n + 1);
        sl_tx_w_f64(w, e->volume);
        sl_tx_w_u64(w, (uint64_t) e->ts_us);
        sl_tx_w_u8(w, (unsigned) e->has_mono);
        sl_tx_w_f64(w, e->mono);
    }
    free(v);
    return 0;
}

static int
s_rate_load(void *ctx, sl_tx_rbuf_t *r, char *err, size_t errlen)
{
    s_rate_t *rt = ctx;
    sl_arena_t tmp;
    sl_arena_init(&tmp, 0);
    size_t n = sl_tx_r_count(r, 4 + 4 + 8 + 8 + 1 + 8);
    int rc = 0;
    for (size_t i = 0; i < n && !r->bad && !rc; i++) {
        char *name = sl_tx_r_str(r, &tmp, NULL), *rid = sl_tx_r_str(r, &tmp, NULL);
        double volume = sl_tx_r_f64(r);
        int64_t ts = (int64_t) sl_tx_r_u64(r);
        unsigned has_mono = sl_tx_r_u8(r);
        double mono = sl_tx_r_f64(r);
        if (r->bad)
            break;
        if (!name || !rid || has_mono > 1 || (has_mono && rt->is_delta)) {
            rc = sl_errf(err, errlen, "cache entry %zu is malformed", i);
            break;
        }
        s_prev_key_t key;
        uint64_t h = s_prev_key(name, rid, &key);
        if (sl_tx_map_get(&rt->cache, h, s_prev_eq, &key)) {
            rc = sl_errf(err, errlen, "cache entry (%s, %s) appears twice", name, rid);
            break;
        }
        s_prev_t *e = sl_xmalloc(sizeof *e + key.name_n + key.rid_n + 2);
        e->name_n = key.name_n;
        e->rid_n = key.rid_n;
        memcpy(e->key, name, key.name_n + 1);
        memcpy(e->key + key.name_n + 1, rid, key.rid_n + 1);
        e->volume = volume;
        e->ts_us = ts;
        e->has_mono = (int) has_mono;
        e->mono = mono;
        sl_tx_map_put(&rt->cache, h, e);
        sl_arena_reset(&tmp);
    }
    sl_arena_destroy(&tmp);
    if (!rc && r->bad)
        rc = sl_errf(err, errlen, "truncated or malformed cache");
    return rc;
}

static const sl_opt_t s_roc_opts[] = {
    S_SOURCE_OPTS,
    S_SOURCE_MAP_UNIT,
    SL_TX_OPT("source.unit", SL_TXT_IGNORED, "-",
      "rate_of_change converts every sample, as Ceilometer does"),
    S_TARGET_OPTS,
    { .name = NULL },
};

static void *
s_roc_init(const sl_tx_conf_t *conf, char *err, size_t errlen)
{
    return s_rate_new(conf, 0, err, errlen);
}

const sl_tx_plugin_t sl_tx_rate_of_change = {
    .name = "rate_of_change",
    .stateful = 1,
    .keys = sl_tx_resource_keys,
    .summary = "the rate of change per second between consecutive samples of a (name, "
               "resource), converted as unit_conversion does; scale defaults to \"1\"",
    .options = s_roc_opts,
    .init = s_roc_init,
    .process = s_rate_process,
    .prefetch = s_rate_prefetch,
    .destroy = s_rate_destroy,
    .save = s_rate_save,
    .load = s_rate_load,
};

static const sl_opt_t s_delta_opts[] = {
    S_SOURCE_OPTS,
    SL_TX_OPT("target", SL_TXT_MAP | SL_TXT_NULL | SL_TXT_FALSY, "{}",
      "what the output looks like"),
    SL_TX_OPT("target.name", SL_TXT_STR | SL_TXT_NUM | SL_TXT_NULL, "input's", "output name"),
    S_MAP_TO_OPTS,
    SL_TX_OPT("growth_only", SL_TXT_ANY, "false", "drop negative deltas (any true value)"),
    /* TRANSFORMERS.md section 6: read by the other conversions, not by delta */
    SL_TX_OPT("target.unit", SL_TXT_IGNORED, "-",
      "delta keeps the input's unit, as Ceilometer does"),
    SL_TX_OPT("target.type", SL_TXT_IGNORED, "-",
      "delta always emits type delta, as Ceilometer does"),
    SL_TX_OPT("target.scale", SL_TXT_IGNORED, "-", "delta does not scale, as in Ceilometer"),
    SL_TX_OPT("target.max", SL_TXT_IGNORED, "-", "delta does not cap, as in Ceilometer"),
    SL_TX_OPT("source.unit", SL_TXT_IGNORED, "-", "delta takes every sample, as Ceilometer does"),
    SL_TX_OPT("source.map_from.unit", SL_TXT_IGNORED, "-",
      "delta maps only the name, as Ceilometer "
      "does"),
    SL_TX_OPT("target.map_to.unit", SL_TXT_IGNORED, "-", "delta maps only the name, as Ceilometer "
      "does"),
    { .name = NULL },
};

static void *
s_delta_init(const sl_tx_conf_t *conf, char *err, size_t errlen)
{
    return s_rate_new(conf, 1, err, errlen);
}

const sl_tx_plugin_t sl_tx_delta = {
    .name = "delta",
    .stateful = 1,
    .keys = sl_tx_resource_keys,
    .summary = "the difference between consecutive samples of a (name, resource), as a "
               "`delta` sample with the input's unit",
    .options = s_delta_opts,
    .init = s_delta_init,
    .process = s_rate_process,
    .prefetch = s_rate_prefetch,
    .destroy = s_rate_destroy,
    .save = s_rate_save,
    .load = s_rate_load,
};

/* --- aggregator (section 8) ----------------------------------------------- */

enum { POL_KEY, POL_FIRST, POL_LAST, POL_DROP };

typedef struct {
    size_t      count;          /* samples counted under this key */
    size_t      idx;            /* position in s_agg_t.all */
    int         has_agg;
    sl_sample_t agg;            /* strings in the aggregator's arena */
    size_t      key_n;
    char        key[];
} s_group_t;

typedef struct {
    const char *p;
    size_t n;
} s_gkey_t;

static int
s_group_eq(const void *entry, const void *key)
{
    const s_group_t *g = entry;
    const s_gkey_t *k = key;
    return g->key_n == k->n && memcmp(g->key, k->p, k->n) == 0;
}

typedef struct {
    s_conv_t    conv;
    int64_t     size;           /* 0 = no size limit */
    int         has_retention;  /* retention_time was true */
    int64_t     retention_us;   /* timedelta(seconds=retention_time), microseconds */
    int         ts_last;
    int         pol_project, pol_user, pol_meta;
    sl_tx_map_t map;
    s_group_t **order;          /* groups with an aggregate, in insertion order */
    size_t      n_order, cap_order;
    s_group_t **all;            /* every group (to free) */
    size_t      n_all, cap_all;
    sl_arena_t  arena;
    int64_t     handled;
    int         has_first;
    int64_t     first_us;
    char       *kbuf;
    size_t      kcap;
} s_agg_t;

static const sl_opt_t s_agg_opts[] = {
    SL_TX_OPT("size", SL_TXT_NUM | SL_TXT_STR | SL_TXT_BOOL | SL_TXT_NULL | SL_TXT_FALSY, "1",
      "emit when this many samples were handled since the last emission: int(size) as "
      "Python reads it (\"2\" and 2.7 give 2); false (0, \"\", null) = no limit when "
      "retention_time is set, else 1; a negative size emits at every flush"),
    SL_TX_OPT("retention_time", SL_TXT_NUM | SL_TXT_STR | SL_TXT_BOOL | SL_TXT_NULL | SL_TXT_FALSY,
      "none", "emit when a flush finds the first held sample's timestamp older than this many "
      "seconds (float(retention_time)); size keeps its default 1, so set size 0 to aggregate "
      "by time only"),
    SL_TX_OPT("project_id", SL_TXT_ANY, "none (grouped by)",
      "first or last: merge instead of grouping by it (anything else: last, with a warning)"),
    SL_TX_OPT("user_id", SL_TXT_ANY, "none (grouped by)",
      "first or last: merge instead of grouping by it (anything else: last, with a warning)"),
    SL_TX_OPT("resource_metadata", SL_TXT_ANY, "last",
      "first, last or drop (anything else: last, with a warning)"),
    SL_TX_OPT("timestamp", SL_TXT_ANY, "first",
      "first or last (anything else: first, with a warning)"),
    S_SOURCE_OPTS,
    S_SOURCE_MAP_UNIT,
    SL_TX_OPT("source.unit", SL_TXT_IGNORED, "-",
      "the aggregator converts every sample, as Ceilometer does"),
    S_TARGET_OPTS,
    { .name = NULL },
};

/* _init_attribute: the merge policy of attr, or POL_KEY (grouped by). -1
 * in strict mode for a value Ceilometer replaced by `last`. */
static int
s_policy(const sl_tx_conf_t *conf, const char *attr, int droppable, int mandatory, char *err,
         size_t errlen)
{
    const sl_ynode_t *n = sl_tx_param(conf->params, attr);
    if (!mandatory && !sl_tx_truthy(n))
        return POL_KEY;
    if (!n)
        return POL_LAST;            /* resource_metadata defaults to last */
    sl_tx_val_t v;
    sl_tx_value(n, &v);
    if (v.type == SL_TXT_STR && !strcmp(v.s, "first"))
        return POL_FIRST;
    if (v.type == SL_TXT_STR && !strcmp(v.s, "last"))
        return POL_LAST;
    if (droppable && v.type == SL_TXT_STR && !strcmp(v.s, "drop"))
        return POL_DROP;
    if (sl_tx_warn(conf, n, err, errlen, "%s is unknown (%s), using last, as Ceilometer does",
                   attr, v.type == SL_TXT_NULL ? "None" : s_val_text(&v)) < 0)
        return -1;
    return POL_LAST;
}

/* Largest |retention_time| Python's timedelta(seconds=x) takes (999999999
 * days); beyond it, and for inf and nan, every flush of Ceilometer failed. */
#define S_MAX_TIMEDELTA 86399999999999.0

static void *
s_agg_init(const sl_tx_conf_t *conf, char *err, size_t errlen)
{
    s_agg_t *a = sl_xcalloc(1, sizeof *a);
    sl_arena_init(&a->arena, 16 * 1024);
    const sl_ynode_t *p = conf->params, *n;
    if (s_conv_init(conf, &a->conv, 6, 0, err, errlen) < 0)
        goto fail;
    /* size = int(size) if size else None (the default is 1) */
    n = sl_tx_param(p, "size");
    a->size = n ? 0 : 1;
    if (sl_tx_truthy(n)) {
        sl_tx_val_t v;
        sl_tx_value(n, &v);
        if (v.type == SL_TXT_STR) {
            if (!sl_tx_py_int(v.s, strlen(v.s), &a->size)) {
                sl_tx_err(conf, n, err, errlen, "size '%s' is not a whole number (Ceilometer "
                          "fails at start-up: int() raises)", v.s);
                goto fail;
            }
        } else if (v.type == SL_TXT_FLOAT) {
            if (!isfinite(v.f)) {
                sl_tx_err(conf, n, err, errlen, "size %s is not a whole number (Ceilometer "
                          "fails at start-up: int() raises)", v.s);
                goto fail;
            }
            a->size = v.f >= 9.2e18 ? INT64_MAX : v.f <= -9.2e18 ? INT64_MIN : (int64_t) v.f;
        } else {
            a->size = v.i;
        }
        if (a->size < 0 &&
            sl_tx_warn(conf, n, err, errlen, "size %" PRId64 " is negative: every flush that "
                       "finds a sample emits (as with size 1), as in Ceilometer", a->size) < 0)
            goto fail;
    }
    /* retention = float(retention_time) if retention_time else None */
    n = sl_tx_param(p, "retention_time");
    double retention = 0;
    if (sl_tx_truthy(n)) {
        sl_tx_val_t v;
        sl_tx_value(n, &v);
        if (v.type == SL_TXT_STR) {
            if (!sl_tx_py_float(v.s, strlen(v.s), &retention)) {
                sl_tx_err(conf, n, err, errlen, "retention_time '%s' is not a number (Ceilometer "
                          "fails at start-up: float() raises)", v.s);
                goto fail;
            }
        } else {
            retention = v.type == SL_TXT_FLOAT ? v.f : (double) v.i;
        }
        if (!(fabs(retention) <= S_MAX_TIMEDELTA)) {
            sl_tx_err(conf, n, err, errlen, "retention_time %g is not a time span Python can "
                      "hold (Ceilometer accepted it, then every flush failed and the groups "
                      "grew without end)", retention);
            goto fail;
        }
        if (retention < 0 &&
            sl_tx_warn(conf, n, err, errlen, "retention_time %g is negative: the groups expire "
                       "at the first flush (unless their first timestamp is more than %g s "
                       "ahead of the clock), as in Ceilometer", retention, -retention) < 0)
            goto fail;
        a->has_retention = retention != 0;
        /* beyond 2^62 us (146,000 years) nothing can expire: the same */
        a->retention_us = fabs(retention) * 1e6 >= 4.6e18
                        ? (retention < 0 ? -(INT64_C(1) << 62) : INT64_C(1) << 62)
                        : llround(retention * 1e6);
    }
    if (!a->size && !a->has_retention)
        a->size = 1;
    n = sl_tx_param(p, "timestamp");
    if (n) {
        sl_tx_val_t v;
        sl_tx_value(n, &v);
        a->ts_last = v.type == SL_TXT_STR && !strcmp(v.s, "last");
        if (!a->ts_last && !(v.type == SL_TXT_STR && !strcmp(v.s, "first")) &&
            sl_tx_warn(conf, n, err, errlen, "timestamp %s is neither first nor last: first "
                       "used, as Ceilometer does", s_val_text(&v)) < 0)
            goto fail;
    }
    if ((a->pol_project = s_policy(conf, "project_id", 0, 0, err, errlen)) < 0 ||
        (a->pol_user = s_policy(conf, "user_id", 0, 0, err, errlen)) < 0 ||
        (a->pol_meta = s_policy(conf, "resource_metadata", 1, 1, err, errlen)) < 0)
        goto fail;
    return a;
fail:
    s_conv_free(&a->conv);
    sl_arena_destroy(&a->arena);
    free(a);
    return NULL;
}

static void
s_agg_reset(s_agg_t *a)
{
    for (size_t i = 0; i < a->n_all; i++)
        free(a->all[i]);
    a->n_all = a->n_order = 0;
    sl_tx_map_clear(&a->map, NULL);
    sl_arena_reset(&a->arena);
    a->handled = 0;
    a->has_first = 0;
}

static void
s_agg_destroy(void **ctx_p)
{
    if (!ctx_p || !*ctx_p)
        return;
    s_agg_t *a = *ctx_p;
    s_agg_reset(a);
    free(a->all);
    free(a->order);
    sl_tx_map_free(&a->map, NULL);
    sl_arena_destroy(&a->arena);
    s_conv_free(&a->conv);
    free(a->kbuf);
    free(a);
    *ctx_p = NULL;
}

static void
s_kput(s_agg_t *a, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n + 2 > a->kcap) {
        a->kcap = (*o + n + 2) * 2;
        a->kbuf = sl_xrealloc(a->kbuf, a->kcap);
    }
    memcpy(a->kbuf + *o, s, n);
    *o += n;
}

/* "<name>-<resource_id>-<k1>-<k2>": project_id then user_id when grouped by. */
static size_t
s_agg_key(s_agg_t *a, const sl_sample_t *s)
{
    size_t o = 0;
    s_kput(a, &o, s->name ? s->name : "None");
    s_kput(a, &o, "-");
    s_kput(a, &o, s->resource_id ? s->resource_id : "None");
    s_kput(a, &o, "-");
    int first = 1;
    if (a->pol_project == POL_KEY) {
        s_kput(a, &o, s->project_id ? s->project_id : "<undefined>");
        first = 0;
    }
    if (a->pol_user == POL_KEY) {
        if (!first)
            s_kput(a, &o, "-");
        s_kput(a, &o, s->user_id ? s->user_id : "<undefined>");
    }
    return o;
}

static const char *
s_agg_str(s_agg_t *a, const char *cur, const char *s)
{
    if (sl_tx_streq(cur, s))
        return cur;
    return sl_arena_strdup(&a->arena, s);
}

static int
s_agg_process(void *ctx, sl_tx_env_t *env, const sl_sample_t *s, sl_sample_t *out)
{
    (void) out;
    s_agg_t *a = ctx;
    if (!a->has_first) {
        if (sl_isotime_parse(s->timestamp, &a->first_us) < 0)
            return sl_tx_fail(env, "cannot parse timestamp '%s'",
                              s->timestamp ? s->timestamp : "None");
        a->has_first = 1;
    }
    a->handled++;
    s_gkey_t key = { a->kbuf, 0 };
    key.n = s_agg_key(a, s);
    key.p = a->kbuf;
    uint64_t h = sl_tx_hash(0, key.p, key.n);
    s_group_t *g = sl_tx_map_get(&a->map, h, s_group_eq, &key);
    if (!g) {
        g = sl_xcalloc(1, sizeof *g + key.n + 1);
        memcpy(g->key, key.p, key.n);
        g->key_n = key.n;
        g->idx = a->n_all;
        sl_tx_map_put(&a->map, h, g);
        if (a->n_all == a->cap_all) {
            a->cap_all = a->cap_all ? a->cap_all * 2 : 16;
            a->all = sl_xrealloc(a->all, a->cap_all * sizeof *a->all);
        }
        a->all[a->n_all++] = g;
    }
    g->count++;
    if (!g->has_agg) {
        sl_sample_t conv;
        if (s_convert(&a->conv, env, s, 1.0, &conv) < 0)
            return -1;
        sl_tx_sample_copy(&a->arena, &conv, &g->agg);
        if (a->pol_meta == POL_DROP)
            g->agg.resource_metadata = "{}";
        g->has_agg = 1;
        if (a->n_order == a->cap_order) {
            a->cap_order = a->cap_order ? a->cap_order * 2 : 16;
            a->order = sl_xrealloc(a->order, a->cap_order * sizeof *a->order);
        }
        a->order[a->n_order++] = g;
        return 0;
    }
    sl_sample_t *agg = &g->agg;
    if (a->ts_last)
        agg->timestamp = s_agg_str(a, agg->timestamp, s->timestamp);
    double scaled;
    if (s_scaled(&a->conv, env, s, &scaled) < 0)
        return -1;
    if (s->type && !strcmp(s->type, "cumulative"))
        agg->volume = scaled;
    else
        agg->volume += scaled;
    if (a->pol_project == POL_LAST)
        agg->project_id = s_agg_str(a, agg->project_id, s->project_id);
    if (a->pol_user == POL_LAST)
        agg->user_id = s_agg_str(a, agg->user_id, s->user_id);
    if (a->pol_meta == POL_LAST)
        agg->resource_metadata = s_agg_str(a, agg->resource_metadata,
                                           s->resource_metadata ? s->resource_metadata : "{}");
    return 0;
}

static int
s_agg_flush(void *ctx, sl_tx_env_t *env, sl_sample_vec_t *out)
{
    s_agg_t *a = ctx;
    if (!a->has_first)
        return 0;
    int expired = a->has_retention && env->now_us - a->first_us > a->retention_us;
    int full = a->size && a->handled >= a->size;
    if (!full && !expired && !env->force)
        return 0;
    for (size_t i = 0; i < a->n_order; i++) {
        s_group_t *g = a->order[i];
        sl_sample_t s;
        sl_tx_sample_copy(env->out, &g->agg, &s);
        /* A gauge group is averaged over its own count, also when its output
         * is renamed (TRANSFORMERS.md section 14, item 1). */
        if (s.type && !strcmp(s.type, "gauge") && g->count)
            s.volume /= (double) g->count;
        sl_sample_vec_push(out, &s);
    }
    s_agg_reset(a);
    return 0;
}

static int64_t
s_agg_deadline(const void *ctx)
{
    const s_agg_t *a = ctx;
    if (!a->has_first || !a->has_retention)
        return INT64_MAX;
    return a->first_us + a->retention_us + 1;
}

/* Blob: u8 has_first, u64 first timestamp (epoch us), u64 samples handled
 * since the last emission; u64 number of groups, then per group in
 * creation order: key, u64 count, u8 has_aggregate, the aggregate sample
 * if it has one; u64 number of aggregates, then each one's index among the
 * groups, in emission (insertion) order. */
static int
s_agg_save(const void *ctx, sl_tx_wbuf_t *w)
{
    const s_agg_t *a = ctx;
    sl_tx_w_u8(w, (unsigned) a->has_first);
    sl_tx_w_u64(w, a->has_first ? (uint64_t) a->first_us : 0);   /* stale after a reset */
    sl_tx_w_u64(w, (uint64_t) a->handled);
    sl_tx_w_u64(w, a->n_all);
    for (size_t i = 0; i < a->n_all; i++) {
        const s_group_t *g = a->all[i];
        sl_tx_w_u32(w, (uint32_t) g->key_n + 1);
        sl_tx_w_bytes(w, g->key, g->key_n);
        sl_tx_w_u64(w, g->count);
        sl_tx_w_u8(w, (unsigned) g->has_agg);
        if (g->has_agg)
            sl_tx_w_sample(w, &g->agg);
    }
    sl_tx_w_u64(w, a->n_order);
    for (size_t k = 0; k < a->n_order; k++)
        sl_tx_w_u64(w, a->order[k]->idx);
    return 0;
}

static int
s_agg_load(void *ctx, sl_tx_rbuf_t *r, char *err, size_t errlen)
{
    s_agg_t *a = ctx;
    unsigned has_first = sl_tx_r_u8(r);
    int64_t first_us = (int64_t) sl_tx_r_u64(r);
    uint64_t handled = sl_tx_r_u64(r);
    size_t n = sl_tx_r_count(r, 4 + 8 + 1);
    if (r->bad)
        return sl_errf(err, errlen, "truncated header");
    if (has_first > 1 || handled > INT64_MAX || (!has_first && (n || handled || first_us)))
        return sl_errf(err, errlen, "inconsistent header");
    a->has_first = (int) has_first;
    a->first_us = first_us;
    a->handled = (int64_t) handled;
    size_t n_with = 0;
    sl_arena_t tmp;
    sl_arena_init(&tmp, 0);
    for (size_t i = 0; i < n; i++) {
        int is_null;
        char *key = sl_tx_r_str(r, &tmp, &is_null);
        uint64_t count = sl_tx_r_u64(r);
        unsigned has_agg = sl_tx_r_u8(r);
        if (r->bad || is_null || has_agg > 1 || count > SIZE_MAX) {
            sl_arena_destroy(&tmp);
            return sl_errf(err, errlen, "group %zu is truncated or malformed", i);
        }
        s_gkey_t k = { key, strlen(key) };
        uint64_t h = sl_tx_hash(0, k.p, k.n);
        if (sl_tx_map_get(&a->map, h, s_group_eq, &k)) {
            sl_errf(err, errlen, "group '%s' appears twice", key);
            sl_arena_destroy(&tmp);
            return -1;
        }
        s_group_t *g = sl_xcalloc(1, sizeof *g + k.n + 1);
        memcpy(g->key, k.p, k.n);
        g->key_n = k.n;
        g->count = (size_t) count;
        g->idx = a->n_all;
        sl_arena_reset(&tmp);
        sl_tx_map_put(&a->map, h, g);
        if (a->n_all == a->cap_all) {
            a->cap_all = a->cap_all ? a->cap_all * 2 : 16;
            a->all = sl_xrealloc(a->all, a->cap_all * sizeof *a->all);
        }
        a->all[a->n_all++] = g;
        if (has_agg) {
            sl_tx_r_sample(r, &a->arena, &g->agg);
            if (r->bad) {
                sl_arena_destroy(&tmp);
                return sl_errf(err, errlen, "aggregate of group %zu is truncated or "
                                       "malformed", i);
            }
            g->has_agg = 1;
            n_with++;
        }
    }
    sl_arena_destroy(&tmp);
    size_t n_order = sl_tx_r_count(r, 8);
    if (r->bad || n_order != n_with)
        return sl_errf(err, errlen, "aggregate order is truncated or does not list "
                               "every aggregate");
    a->order = sl_xrealloc(a->order, (n_order + 1) * sizeof *a->order);
    a->cap_order = n_order + 1;
    unsigned char *seen = sl_xcalloc(a->n_all + 1, 1);
    int rc = 0;
    for (size_t k = 0; k < n_order && !rc; k++) {
        uint64_t i = sl_tx_r_u64(r);
        if (r->bad || i >= a->n_all || !a->all[i]->has_agg || seen[i]) {
            rc = sl_errf(err, errlen, "aggregate order entry %zu is malformed or "
                                 "repeated", k);
            break;
        }
        seen[i] = 1;
        a->order[a->n_order++] = a->all[i];
    }
    free(seen);
    return rc;
}

const sl_tx_plugin_t sl_tx_aggregator = {
    .name = "aggregator",
    .stateful = 1,
    .keys = sl_tx_resource_keys,
    .summary = "merges the samples of a (name, resource[, project][, user]) group: gauge "
               "averaged, cumulative last value, delta summed; emits at a flush once `size` "
               "samples were handled or `retention_time` expired",
    .options = s_agg_opts,
    .init = s_agg_init,
    .process = s_agg_process,
    .flush = s_agg_flush,
    .deadline = s_agg_deadline,
    .destroy = s_agg_destroy,
    .save = s_agg_save,
    .load = s_agg_load,
};
