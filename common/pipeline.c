/* pipeline — Ceilometer's pipeline.yaml: validation, meter selection, routing.
 *
 * Validation follows ceilometer/pipeline/base.py and agent.py (Rocky/Zed),
 * with their messages; every error carries file:line. Keys Ceilometer does
 * not read are warnings (errors in strict mode: a typo such as
 * `publisher:` then cannot silently drop a setting).
 *
 * Meter patterns are matched as Python's fnmatch.fnmatch on POSIX (where
 * normcase does nothing): translate() semantics, not fnmatch(3)'s. The two
 * differ: Python has no escaping (a backslash is a literal), `[^a]` is the
 * set {'^', 'a'}, `[[:alpha:]]` is not a character class, reversed ranges
 * such as `[z-a]` are dropped rather than undefined, and `?` and sets match
 * one code point, not one byte, whatever the locale. Patterns are compiled
 * once at load into tokens that each match exactly one code point, or `*`;
 * matching is then the usual linear glob walk with one backtrack point.
 * Everything the pipeline allocates lives in its YAML document's arena. */
#include "common/pipeline.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/hash.h"

/* --- Python fnmatch ------------------------------------------------------ */

enum { S_TOK_LIT, S_TOK_ANY, S_TOK_STAR, S_TOK_SET, S_TOK_NEVER };

typedef struct {
    int       kind;
    int       negated;          /* S_TOK_SET */
    uint32_t  cp;               /* S_TOK_LIT */
    size_t    n_ranges;         /* S_TOK_SET: pairs lo, hi */
    uint32_t *ranges;
} s_tok_t;

struct sl_glob {
    int      exclude;           /* pattern began with `!` */
    int      match_all;         /* only `*` tokens: matches every name */
    size_t   n;
    s_tok_t *toks;
};

/* Next code point of s (length n) at *i. Bytes that are not valid UTF-8
 * decode one at a time to U+DC80..U+DCFF, as Python's surrogateescape does,
 * so pattern and name agree on them. */
static uint32_t
s_utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp;
    size_t len;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        cp = c & 0x1F;
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        cp = c & 0x0F;
        len = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
        cp = c & 0x07;
        len = 4;
    } else {
        (*i)++;
        return 0xDC00u + c;
    }
    if (*i + len > n) {
        (*i)++;
        return 0xDC00u + c;
    }
    for (size_t k = 1; k < len; k++) {
        unsigned char cc = s[*i + k];
        if ((cc & 0xC0) != 0x80) {
            (*i)++;
            return 0xDC00u + c;
        }
        cp = cp << 6 | (cc & 0x3F);
    }
    /* overlong forms, surrogates and values past U+10FFFF are invalid */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        || (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return 0xDC00u + c;
    }
    *i += len;
    return cp;
}

/* Code points of s into a new array (arena a, or heap if a is NULL). */
static uint32_t *
s_decode(sl_arena_t *a, const char *s, size_t *n_out)
{
    size_t n = strlen(s), k = 0;
    uint32_t *cps = a ? sl_arena_alloc(a, (n + 1) * sizeof *cps)
                      : sl_xmalloc((n + 1) * sizeof *cps);
    for (size_t i = 0; i < n;)
        cps[k++] = s_utf8_next((const unsigned char *) s, n, &i);
    *n_out = k;
    return cps;
}

static void *
s_alloc(sl_arena_t *a, size_t n)
{
    return a ? sl_arena_alloc(a, n ? n : 1) : sl_xmalloc(n ? n : 1);
}

/* One bracket expression, pat[i..j) being what lies between `[` and `]`,
 * turned into a set exactly as fnmatch.translate() (3.11) and then the re
 * module read it: the text is cut into chunks at the hyphens that make
 * ranges, chunks whose joining range would be reversed are merged (dropping
 * both ends), and "a-b" across a chunk boundary is a range, everything else
 * a literal. Temporaries are on the heap; the token's ranges come from a. */
static void
s_compile_set(sl_arena_t *a, const uint32_t *pat, size_t i, size_t j, s_tok_t *tok)
{
    size_t len = j - i, n_chunks = 0;
    uint32_t **chunk = sl_xcalloc(len + 1, sizeof *chunk);
    size_t *clen = sl_xcalloc(len + 1, sizeof *clen);
    size_t *from = sl_xcalloc(len + 1, sizeof *from), *to = sl_xcalloc(len + 1, sizeof *to);
    int has_hyphen = 0;
    for (size_t k = i; k < j; k++)
        has_hyphen |= pat[k] == '-';
    if (!has_hyphen) {
        from[0] = i;
        to[0] = j;
        n_chunks = 1;
    } else {
        size_t ii = i, k = pat[i] == '!' ? i + 2 : i + 1;
        for (;;) {
            size_t f = k;
            while (f < j && pat[f] != '-')
                f++;
            if (f >= j)
                break;
            from[n_chunks] = ii;
            to[n_chunks++] = f;
            ii = f + 1;
            k = f + 3;
        }
        if (ii < j) {
            from[n_chunks] = ii;
            to[n_chunks++] = j;
        } else {
            to[n_chunks - 1] = j;       /* empty tail: the last '-' stays in */
        }
    }
    for (size_t c = 0; c < n_chunks; c++) {
        clen[c] = to[c] - from[c];
        chunk[c] = sl_xmalloc((clen[c] + 1) * sizeof **chunk);
        memcpy(chunk[c], pat + from[c], clen[c] * sizeof **chunk);
    }
    /* drop reversed ranges, right to left, as translate() does */
    for (size_t k = n_chunks - 1; k >= 1 && k < n_chunks; k--) {
        if (!clen[k - 1] || !clen[k] || chunk[k - 1][clen[k - 1] - 1] <= chunk[k][0])
            continue;
        size_t l = clen[k - 1] - 1 + clen[k] - 1;
        uint32_t *m = sl_xmalloc((l + 1) * sizeof *m);
        memcpy(m, chunk[k - 1], (clen[k - 1] - 1) * sizeof *m);
        memcpy(m + clen[k - 1] - 1, chunk[k] + 1, (clen[k] - 1) * sizeof *m);
        free(chunk[k - 1]);
        free(chunk[k]);
        chunk[k - 1] = m;
        clen[k - 1] = l;
        memmove(&chunk[k], &chunk[k + 1], (n_chunks - k - 1) * sizeof *chunk);
        memmove(&clen[k], &clen[k + 1], (n_chunks - k - 1) * sizeof *clen);
        n_chunks--;
    }
    /* flatten to code points, marking the '-' that join chunks */
    size_t total = n_chunks - 1;
    for (size_t c = 0; c < n_chunks; c++)
        total += clen[c];
    uint32_t *cp = sl_xmalloc((total + 1) * sizeof *cp);
    int *joiner = sl_xmalloc((total + 1) * sizeof *joiner);
    size_t t = 0;
    for (size_t c = 0; c < n_chunks; c++) {
        if (c) {
            cp[t] = '-';
            joiner[t++] = 1;
        }
        for (size_t k = 0; k < clen[c]; k++) {
            cp[t] = chunk[c][k];
            joiner[t++] = 0;
        }
    }
    if (t == 0) {
        tok->kind = S_TOK_NEVER;        /* translate(): '(?!)' */
    } else if (t == 1 && cp[0] == '!') {
        tok->kind = S_TOK_ANY;          /* translate(): '.' */
    } else {
        size_t at = 0;
        tok->kind = S_TOK_SET;
        tok->negated = cp[0] == '!';
        at = (size_t) tok->negated;
        tok->ranges = s_alloc(a, 2 * t * sizeof *tok->ranges);
        tok->n_ranges = 0;
        while (at < t) {
            uint32_t lo = cp[at], hi = cp[at];
            if (!joiner[at] && at + 2 < t && joiner[at + 1] && !joiner[at + 2]) {
                hi = cp[at + 2];
                at += 3;
            } else {
                at++;                   /* a literal, or a '-' re reads as one */
            }
            tok->ranges[2 * tok->n_ranges] = lo;
            tok->ranges[2 * tok->n_ranges + 1] = hi;
            tok->n_ranges++;
        }
    }
    for (size_t c = 0; c < n_chunks; c++)
        free(chunk[c]);
    free(chunk);
    free(clen);
    free(from);
    free(to);
    free(cp);
    free(joiner);
}

/* Compiles a pattern (without its `!`) into tokens. */
static void
s_compile(sl_arena_t *a, const char *pattern, struct sl_glob *g)
{
    size_t n;
    uint32_t *pat = s_decode(a, pattern, &n);
    g->toks = s_alloc(a, (n + 1) * sizeof *g->toks);
    g->n = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = pat[i++];
        s_tok_t *tok = &g->toks[g->n];
        memset(tok, 0, sizeof *tok);
        if (c == '*') {
            if (g->n == 0 || g->toks[g->n - 1].kind != S_TOK_STAR) {
                tok->kind = S_TOK_STAR;
                g->n++;
            }
            continue;
        }
        if (c == '?') {
            tok->kind = S_TOK_ANY;
            g->n++;
            continue;
        }
        if (c == '[') {
            size_t j = i;
            if (j < n && pat[j] == '!')
                j++;
            if (j < n && pat[j] == ']')
                j++;
            while (j < n && pat[j] != ']')
                j++;
            if (j < n) {
                s_compile_set(a, pat, i, j, tok);
                i = j + 1;
                g->n++;
                continue;
            }
        }
        tok->kind = S_TOK_LIT;
        tok->cp = c;
        g->n++;
    }
    g->match_all = 1;
    for (size_t k = 0; k < g->n; k++)
        g->match_all &= g->toks[k].kind == S_TOK_STAR;
    g->match_all &= g->n > 0;
    if (!a)
        free(pat);
}

static int
s_tok_match(const s_tok_t *t, uint32_t c)
{
    switch (t->kind) {
    case S_TOK_LIT:
        return t->cp == c;
    case S_TOK_ANY:
        return 1;
    case S_TOK_SET: {
        int in = 0;
        for (size_t r = 0; r < t->n_ranges && !in; r++)
            in = c >= t->ranges[2 * r] && c <= t->ranges[2 * r + 1];
        return in != t->negated;
    }
    default:
        return 0;
    }
}

static int
s_glob_match(const struct sl_glob *g, const char *name)
{
    if (g->match_all)
        return 1;
    const unsigned char *s = (const unsigned char *) name;
    size_t n = strlen(name), i = 0, ti = 0, star_ti = 0, star_i = 0;
    int have_star = 0;
    while (i < n) {
        if (ti < g->n && g->toks[ti].kind == S_TOK_STAR) {
            have_star = 1;
            star_ti = ++ti;
            star_i = i;
            continue;
        }
        size_t next = i;
        uint32_t c = s_utf8_next(s, n, &next);
        if (ti < g->n && s_tok_match(&g->toks[ti], c)) {
            ti++;
            i = next;
            continue;
        }
        if (!have_star)
            return 0;
        /* let the last `*` swallow one more code point and retry */
        ti = star_ti;
        s_utf8_next(s, n, &star_i);
        i = star_i;
    }
    while (ti < g->n && g->toks[ti].kind == S_TOK_STAR)
        ti++;
    return ti == g->n;
}

/* A compiled copy of pattern (with or without `!`). a NULL = heap, freed by
 * s_glob_free. */
static void
s_glob_init(sl_arena_t *a, const char *pattern, struct sl_glob *g)
{
    memset(g, 0, sizeof *g);
    g->exclude = pattern[0] == '!';
    s_compile(a, pattern + g->exclude, g);
}

static void
s_glob_free(struct sl_glob *g)
{
    for (size_t k = 0; k < g->n; k++)
        free(g->toks[k].ranges);
    free(g->toks);
}

int
sl_pipeline_fnmatch(const char *name, const char *pattern)
{
    struct sl_glob g;
    memset(&g, 0, sizeof g);
    s_compile(NULL, pattern ? pattern : "", &g);
    int r = s_glob_match(&g, name ? name : "");
    s_glob_free(&g);
    return r;
}

/* ceilometer.agent.Source.is_supported on compiled patterns. */
static int
s_selects(const struct sl_glob *globs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (globs[i].exclude && s_glob_match(&globs[i], name))
            return 0;
    int only_exclusions = 1;
    for (size_t i = 0; i < n; i++) {
        if (globs[i].exclude)
            continue;
        only_exclusions = 0;
        if (s_glob_match(&globs[i], name))
            return 1;
    }
    return only_exclusions;
}

int
sl_pipeline_source_selects(const sl_source_t *src, const char *name)
{
    if (!src)
        return 0;
    if (!name)
        name = "";
    if (src->globs)
        return s_selects(src->globs, src->n_meters, name);
    /* a source built by hand, not by the loader */
    struct sl_glob *globs = sl_xcalloc(src->n_meters + 1, sizeof *globs);
    for (size_t i = 0; i < src->n_meters; i++)
        s_glob_init(NULL, src->meters[i] ? src->meters[i] : "", &globs[i]);
    int r = s_selects(globs, src->n_meters, name);
    for (size_t i = 0; i < src->n_meters; i++)
        s_glob_free(&globs[i]);
    free(globs);
    return r;
}

/* --- transformers and grouping keys -------------------------------------- */

/* A sink without transformers groups by resource_id, as every built-in
 * transformer does (TRANSFORMERS.md §10); so does a transformer whose
 * declaration the loader was not given. */
static const char *const s_default_keys[] = { "resource_id", NULL };

/* sink->stateful and sink->keys (the union of the transformers' grouping
 * keys, in order of appearance) from lookup; without one, every
 * transformer counts as stateful with the default keys. -1 and *bad = the
 * index of a transformer lookup does not know. */
static int
s_sink_traits(sl_sink_t *sink, sl_transformer_lookup_fn lookup, sl_arena_t *a, size_t *bad)
{
    size_t cap = 0;
    const char *const **all = sl_xcalloc(sink->n_transformers + 1, sizeof *all);
    int stateful = 0;
    for (size_t i = 0; i < sink->n_transformers; i++) {
        int st = 1;
        const char *const *keys = NULL;
        if (lookup && lookup(sink->transformers[i].name, &st, &keys) < 0) {
            free(all);
            *bad = i;
            return -1;
        }
        all[i] = keys ? keys : s_default_keys;
        stateful |= st != 0;
        for (const char *const *k = all[i]; *k; k++)
            cap++;
    }
    sink->stateful = stateful;
    if (!sink->n_transformers) {
        sink->keys = (const char **) s_default_keys;
        sink->n_keys = 1;
        free(all);
        return 0;
    }
    const char **keys = sl_arena_alloc(a, (cap + 1) * sizeof *keys);
    size_t n = 0;
    for (size_t i = 0; i < sink->n_transformers; i++)
        for (const char *const *k = all[i]; *k; k++) {
            size_t j = 0;
            while (j < n && strcmp(keys[j], *k) != 0)
                j++;
            if (j == n)
                keys[n++] = *k;
        }
    keys[n] = NULL;
    sink->keys = keys;
    sink->n_keys = n;
    free(all);
    return 0;
}

int
sl_pipeline_resolve(sl_pipeline_t *p, sl_transformer_lookup_fn lookup, char *err, size_t errlen)
{
    for (size_t s = 0; p && s < p->n_sinks; s++) {
        sl_sink_t *sink = &p->sinks[s];
        size_t bad;
        if (s_sink_traits(sink, lookup, &p->doc->arena, &bad) < 0)
            return sl_yerr_at(p->doc->file, sink->transformers[bad].name_line, err, errlen,
                              "unknown transformer '%s' in sink '%s'",
                              sink->transformers[bad].name, sink->name);
    }
    return 0;
}

static const char *
s_sample_field(const sl_sample_t *s, const char *key)
{
    static const struct {
        const char *name;
        size_t      offset;
    } fields[] = {
        { "resource_id", offsetof(sl_sample_t, resource_id) },
        { "user_id", offsetof(sl_sample_t, user_id) },
        { "project_id", offsetof(sl_sample_t, project_id) },
        { "name", offsetof(sl_sample_t, name) },
        { "source", offsetof(sl_sample_t, source) },
        { "type", offsetof(sl_sample_t, type) },
        { "unit", offsetof(sl_sample_t, unit) },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strcmp(key, fields[i].name) == 0)
            return *(const char *const *) ((const char *) s + fields[i].offset);
    return NULL;
}

uint64_t
sl_pipeline_group_hash(const sl_sink_t *sink, const sl_sample_t *s)
{
    uint64_t h = SL_HASH64_INIT;
    for (size_t i = 0; sink && i < sink->n_keys; i++) {
        const char *v = s ? s_sample_field(s, sink->keys[i]) : NULL;
        if (v)
            h = sl_hash64_update(h, v, strlen(v));
    }
    return sl_hash64_final(h);
}

size_t
sl_pipeline_route(const sl_pipeline_t *p, const char *name, uint16_t *out, size_t max)
{
    if (!p || !out)
        return 0;
    unsigned char hit[SL_MAX_SINKS] = { 0 };
    for (size_t i = 0; i < p->n_sources; i++) {
        const sl_source_t *src = &p->sources[i];
        if (!sl_pipeline_source_selects(src, name))
            continue;
        for (size_t k = 0; k < src->n_sinks; k++)
            hit[src->sinks[k]] = 1;
    }
    size_t n = 0;
    for (size_t k = 0; k < p->n_sinks && n < max; k++)
        if (hit[k])
            out[n++] = (uint16_t) k;
    return n;
}

/* --- loading ------------------------------------------------------------- */

typedef struct {
    sl_pipeline_t *p;
    sl_arena_t    *arena;
    const char    *kind;        /* "meters" or "events" */
    sl_ywarn_t    *warn;
    sl_transformer_lookup_fn lookup;    /* NULL: transformer names are not checked */
    char          *err;
    size_t         errlen;
} s_loader_t;

/* Line of key in map, or the map's own line. */
static int
s_key_line(const sl_ynode_t *map, const char *key)
{
    for (size_t i = 0; map && map->kind == SL_Y_MAP && i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->key_lines[i];
    return map ? map->line : 1;
}

static int
s_err_at(s_loader_t *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
s_err_at(s_loader_t *l, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sl_yerr_at(l->p->doc->file, line, l->err, l->errlen, "%s", msg);
}

/* Keys of map not in allowed (NULL-terminated): Ceilometer never reads
 * them, so each is a warning (an error in strict mode). */
static int
s_known_keys(s_loader_t *l, const sl_ynode_t *map, const char *const *allowed,
             const char *what, const char *name)
{
    for (size_t i = 0; i < map->n; i++) {
        int ok = 0;
        for (size_t k = 0; allowed[k] && !ok; k++)
            ok = strcmp(map->keys[i], allowed[k]) == 0;
        if (!ok && sl_ywarn_at(l->warn, l->p->doc->file, map->key_lines[i], l->err, l->errlen,
                               "ignored key '%s' in %s '%s' (Ceilometer does not read it)",
                               map->keys[i], what, name) < 0)
            return -1;
    }
    return 0;
}

/* A required, non-empty scalar; NULL (with err set) otherwise. */
static const char *
s_name(s_loader_t *l, const sl_ynode_t *map)
{
    const sl_ynode_t *n = sl_ynode_get(map, "name");
    if (sl_ynode_is_null(n)) {
        s_err_at(l, s_key_line(map, "name"), "Required field name not specified");
        return NULL;
    }
    if (n->kind != SL_Y_SCALAR || !n->value[0]) {
        s_err_at(l, n->line, "name must be a non-empty string");
        return NULL;
    }
    return n->value;
}

/* A list of non-empty strings, as arena-allocated pointers into the tree. */
static int
s_string_list(s_loader_t *l, const sl_ynode_t *seq, const char *what, const char *owner,
              const char ***out, size_t *n_out)
{
    if (seq->kind != SL_Y_SEQ)
        return s_err_at(l, seq->line, "%s of '%s' must be a list", what, owner);
    const char **v = sl_arena_alloc(l->arena, (seq->n + 1) * sizeof *v);
    for (size_t i = 0; i < seq->n; i++) {
        const sl_ynode_t *it = seq->items[i];
        if (it->kind != SL_Y_SCALAR || sl_ynode_is_null(it) || !it->value[0])
            return s_err_at(l, it->line, "%s of '%s' must be non-empty strings", what, owner);
        v[i] = it->value;
    }
    *out = v;
    *n_out = seq->n;
    return 0;
}

static int
s_load_sink(s_loader_t *l, const sl_ynode_t *node, sl_sink_t *sink)
{
    static const char *const allowed[] = { "name", "transformers", "publishers",
                                           "reorder_window", NULL };
    if (node->kind != SL_Y_MAP)
        return s_err_at(l, node->line, "a sink must be a mapping");
    const char *name = s_name(l, node);
    if (!name)
        return -1;
    if (s_known_keys(l, node, allowed, "sink", name) < 0)
        return -1;
    sink->name = name;
    sink->line = node->line;
    /* sluice extension: hold each partition's samples this many ms and
     * release them in timestamp order (0 = off). */
    const sl_ynode_t *rw = sl_ynode_get(node, "reorder_window");
    sink->reorder_window_ms = 0;
    if (rw) {
        char *end = NULL;
        unsigned long v = rw->kind == SL_Y_SCALAR ? strtoul(rw->value, &end, 10) : 0;
        if (rw->kind != SL_Y_SCALAR || !*rw->value || *end || v > 600000)
            return s_err_at(l, rw->line, "reorder_window of sink '%s' must be a number of "
                            "milliseconds from 0 to 600000", name);
        sink->reorder_window_ms = (unsigned) v;
    }

    const sl_ynode_t *pubs = sl_ynode_get(node, "publishers");
    if (sl_ynode_is_null(pubs) || (pubs->kind == SL_Y_SEQ && pubs->n == 0))
        return s_err_at(l, s_key_line(node, "publishers"), "No publisher specified (sink '%s')",
                        name);
    if (s_string_list(l, pubs, "publishers", name, &sink->publishers, &sink->n_publishers) < 0)
        return -1;

    const sl_ynode_t *tr = sl_ynode_get(node, "transformers");
    sink->transformers = NULL;
    sink->n_transformers = 0;
    if (!sl_ynode_is_null(tr)) {
        if (tr->kind != SL_Y_SEQ)
            return s_err_at(l, tr->line, "transformers of '%s' must be a list", name);
        sink->transformers = sl_arena_alloc(l->arena, (tr->n + 1) * sizeof *sink->transformers);
        for (size_t i = 0; i < tr->n; i++) {
            static const char *const t_allowed[] = { "name", "parameters", NULL };
            const sl_ynode_t *t = tr->items[i];
            sl_transformer_conf_t *tc = &sink->transformers[i];
            if (t->kind != SL_Y_MAP)
                return s_err_at(l, t->line, "a transformer of sink '%s' must be a mapping",
                                name);
            const char *tname = s_name(l, t);
            if (!tname)
                return -1;
            if (s_known_keys(l, t, t_allowed, "transformer", tname) < 0)
                return -1;
            int stateful;
            const char *const *keys;
            if (l->lookup && l->lookup(tname, &stateful, &keys) < 0)
                return s_err_at(l, sl_ynode_get(t, "name")->line,
                                "unknown transformer '%s' in sink '%s'", tname, name);
            const sl_ynode_t *params = sl_ynode_get(t, "parameters");
            if (sl_ynode_is_null(params))
                params = NULL;
            else if (params->kind != SL_Y_MAP)
                return s_err_at(l, params->line, "parameters of transformer '%s' must be a mapping",
                                tname);
            tc->name = tname;
            tc->parameters = params;
            tc->line = t->line;
            tc->name_line = sl_ynode_get(t, "name")->line;
        }
        sink->n_transformers = tr->n;
    }
    size_t bad;
    return s_sink_traits(sink, l->lookup, l->arena, &bad);
}

/* ceilometer.agent.Source.check_source_filtering, on the patterns list. */
static int
s_check_patterns(s_loader_t *l, const sl_ynode_t *src, const sl_source_t *s)
{
    int line = s_key_line(src, l->kind);
    int included = 0, excluded = 0, wildcard = 0;
    for (size_t i = 0; i < s->n_meters; i++) {
        char c = s->meters[i][0];
        included |= c != '!' && c != '*';
        excluded |= c == '!';
        wildcard |= strcmp(s->meters[i], "*") == 0;
    }
    if (included && excluded)
        return s_err_at(l, line, "Both included and excluded %s specified (source '%s')",
                        l->kind, s->name);
    if (wildcard && included)
        return s_err_at(l, line, "Included %s specified with wildcard (source '%s')",
                        l->kind, s->name);
    return 0;
}

static int
s_load_source(s_loader_t *l, const sl_ynode_t *node, sl_source_t *s)
{
    const char *allowed[] = { "name", l->kind, "sinks", NULL };
    if (node->kind != SL_Y_MAP)
        return s_err_at(l, node->line, "a source must be a mapping");
    const char *name = s_name(l, node);
    if (!name)
        return -1;
    if (s_known_keys(l, node, allowed, "source", name) < 0)
        return -1;
    s->name = name;
    s->line = node->line;

    /* Ceilometer's order: name, sinks present, patterns, then sink names. */
    const sl_ynode_t *sinks = sl_ynode_get(node, "sinks");
    if (!sinks)
        return s_err_at(l, node->line, "Required field sinks not specified (source '%s')",
                        name);

    const sl_ynode_t *pats = sl_ynode_get(node, l->kind);
    if (!pats && strcmp(l->kind, "meters") == 0)
        return s_err_at(l, node->line, "Missing meters value (source '%s')", name);
    if (sl_ynode_is_null(pats) || (pats->kind == SL_Y_SEQ && pats->n == 0))
        return s_err_at(l, s_key_line(node, l->kind), "No %s specified (source '%s')",
                        l->kind, name);
    if (s_string_list(l, pats, l->kind, name, &s->meters, &s->n_meters) < 0)
        return -1;
    if (s_check_patterns(l, node, s) < 0)
        return -1;
    struct sl_glob *globs = sl_arena_alloc(l->arena, s->n_meters * sizeof *globs);
    for (size_t i = 0; i < s->n_meters; i++)
        s_glob_init(l->arena, s->meters[i], &globs[i]);
    s->globs = globs;

    if (sl_ynode_is_null(sinks) || (sinks->kind == SL_Y_SEQ && sinks->n == 0))
        return s_err_at(l, s_key_line(node, "sinks"), "No sink defined in source %s", name);
    const char **names;
    size_t n;
    if (s_string_list(l, sinks, "sinks", name, &names, &n) < 0)
        return -1;
    s->sinks = sl_arena_alloc(l->arena, n * sizeof *s->sinks);
    s->n_sinks = n;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < l->p->n_sinks && strcmp(l->p->sinks[k].name, names[i]) != 0)
            k++;
        if (k == l->p->n_sinks)
            return s_err_at(l, sinks->items[i]->line, "Dangling sink %s from source %s",
                            names[i], name);
        s->sinks[i] = (uint16_t) k;
    }
    return 0;
}

/* Ceilometer names a pipeline "source:sink", or just the name when both are
 * the same, and wants those names unique. */
static void
s_pipe_name(char *buf, size_t len, const char *src, const char *sink)
{
    if (strcmp(src, sink) == 0)
        snprintf(buf, len, "%s", src);
    else
        snprintf(buf, len, "%s:%s", src, sink);
}

static int
s_check_pipeline_names(s_loader_t *l, const sl_ynode_t *sources)
{
    sl_pipeline_t *p = l->p;
    char a[512], b[512];
    for (size_t i = 0; i < p->n_sources; i++) {
        const sl_source_t *si = &p->sources[i];
        for (size_t k = 0; k < si->n_sinks; k++) {
            s_pipe_name(a, sizeof a, si->name, p->sinks[si->sinks[k]].name);
            /* against every (source, sink) pair before this one */
            for (size_t j = 0; j <= i; j++) {
                const sl_source_t *sj = &p->sources[j];
                for (size_t kk = 0; kk < (j == i ? k : sj->n_sinks); kk++) {
                    s_pipe_name(b, sizeof b, sj->name, p->sinks[sj->sinks[kk]].name);
                    if (strcmp(a, b) == 0)
                        return s_err_at(l, sources->items[i]->line,
                                        "Duplicate pipeline name: %s. Ensure pipeline names are "
                                        "unique. (name is the source and sink names combined)", a);
                }
            }
        }
    }
    return 0;
}

static int
s_load(s_loader_t *l)
{
    sl_pipeline_t *p = l->p;
    const sl_ynode_t *root = p->doc->root;
    if (root && root->kind != SL_Y_MAP)
        return s_err_at(l, root->line, "a pipeline file must be a mapping");
    const sl_ynode_t *sources = sl_ynode_get(root, "sources");
    const sl_ynode_t *sinks = sl_ynode_get(root, "sinks");
    if (!sources || !sinks)
        return s_err_at(l, root ? root->line : 1, "Both sources & sinks are required");
    static const char *const allowed[] = { "sources", "sinks", NULL };
    if (s_known_keys(l, root, allowed, "pipeline", p->doc->file) < 0)
        return -1;
    if (sources->kind != SL_Y_SEQ)
        return s_err_at(l, sources->line, "sources must be a list");
    if (sinks->kind != SL_Y_SEQ)
        return s_err_at(l, sinks->line, "sinks must be a list");

    /* sinks first: sources refer to them by name */
    if (sinks->n > SL_MAX_SINKS)
        return s_err_at(l, sinks->items[SL_MAX_SINKS]->line, "too many sinks (at most %d)",
                        SL_MAX_SINKS);
    p->sinks = sl_arena_alloc(l->arena, (sinks->n + 1) * sizeof *p->sinks);
    memset(p->sinks, 0, (sinks->n + 1) * sizeof *p->sinks);
    for (size_t i = 0; i < sinks->n; i++) {
        if (s_load_sink(l, sinks->items[i], &p->sinks[i]) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->sinks[k].name, p->sinks[i].name) == 0)
                return s_err_at(l, sl_ynode_get(sinks->items[i], "name")->line,
                                "Duplicated sink names: %s", p->sinks[i].name);
        p->n_sinks = i + 1;
    }
    p->sources = sl_arena_alloc(l->arena, (sources->n + 1) * sizeof *p->sources);
    memset(p->sources, 0, (sources->n + 1) * sizeof *p->sources);
    for (size_t i = 0; i < sources->n; i++) {
        const sl_ynode_t *s = sources->items[i];
        /* duplicates are reported before the source's own errors, as
         * Ceilometer does */
        const sl_ynode_t *nm = s->kind == SL_Y_MAP ? sl_ynode_get(s, "name") : NULL;
        if (nm && nm->kind == SL_Y_SCALAR)
            for (size_t k = 0; k < i; k++)
                if (strcmp(p->sources[k].name, nm->value) == 0)
                    return s_err_at(l, nm->line, "Duplicated source names: %s", nm->value);
        if (s_load_source(l, s, &p->sources[i]) < 0)
            return -1;
        p->n_sources = i + 1;
    }
    return s_check_pipeline_names(l, sources);
}

static sl_pipeline_t *
s_build(sl_ydoc_t *doc, const char *kind, sl_transformer_lookup_fn lookup, sl_ywarn_t *warn,
        char *err, size_t errlen)
{
    if (!doc)
        return NULL;
    sl_pipeline_t *p = sl_xcalloc(1, sizeof *p);
    p->doc = doc;
    s_loader_t l = { .p = p, .arena = &doc->arena, .kind = kind ? kind : "meters",
                     .warn = warn, .lookup = lookup, .err = err, .errlen = errlen };
    if (strcmp(l.kind, "meters") != 0 && strcmp(l.kind, "events") != 0) {
        sl_yerr_at(doc->file, 1, err, errlen, "unknown pipeline kind '%s'", l.kind);
        sl_pipeline_destroy(&p);
        return NULL;
    }
    if (s_load(&l) < 0) {
        sl_pipeline_destroy(&p);
        return NULL;
    }
    return p;
}

sl_pipeline_t *
sl_pipeline_load_with(const char *path, const char *kind, sl_transformer_lookup_fn lookup,
                      sl_ywarn_t *warn, char *err, size_t errlen)
{
    return s_build(sl_ydoc_load(path, err, errlen), kind, lookup, warn, err, errlen);
}

sl_pipeline_t *
sl_pipeline_parse_with(const char *buf, size_t len, const char *name, const char *kind,
                       sl_transformer_lookup_fn lookup, sl_ywarn_t *warn, char *err,
                       size_t errlen)
{
    return s_build(sl_ydoc_parse(buf, len, name, err, errlen), kind, lookup, warn, err, errlen);
}

void
sl_pipeline_destroy(sl_pipeline_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    sl_ydoc_destroy(&(*p_p)->doc);
    free(*p_p);
    *p_p = NULL;
}
