/* forward — consumer profiles: record selection by meter / event_type
 * globs and field filters on JSON trees (common/forward.h has the
 * contract and the configuration syntax). */
#include "common/forward.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/pycompat.h"

/* A dotted path split into segments, each an fnmatch glob. A glob
 * without wildcards, classes or escapes is compared with strcmp (most
 * are field names: several times faster than fnmatch). */
typedef struct {
    char  **seg;
    char   *magic;     /* per segment: 1 if fnmatch is needed */
    size_t  n;
    char   *text;      /* as configured */
} s_path_t;

/* Globs on a record name; Ceilometer's pipeline rule: all inclusions, or
 * all exclusions (`!glob`). */
typedef struct {
    char  **glob;
    char   *magic;
    size_t  n;
    int     exclude;
} s_select_t;

struct sl_forward {
    char       *name;
    s_select_t  meters, event_types;
    s_path_t   *drop;
    size_t      n_drop;
    s_path_t   *admin;        /* n == 1: a key name at any depth */
    size_t      n_admin;
    int         is_admin;     /* admin: true = admin_only_fields are kept */
    pcre2_code *drop_re, *keep_re;
    char       *drop_re_text, *keep_re_text;
    unsigned char (*token_hash)[SHA256_DIGEST_LENGTH];
    size_t      n_tokens;
    char       *token_file;
    int         line;
};

/* ---- configuration ------------------------------------------------------ */

static char
s_magic(const char *g)
{
    return strpbrk(g, "*?[\\") != NULL;
}

static int
s_glob_match(const char *g, char magic, const char *s)
{
    return magic ? fnmatch(g, s, 0) == 0 : strcmp(g, s) == 0;
}

/* 0 if g is a glob fnmatch reads as written: not empty, no unterminated
 * bracket expression, no trailing backslash. */
static int
s_glob_check(const char *g, char *why, size_t whylen)
{
    if (!*g)
        return sl_errf(why, whylen, "an empty glob matches nothing");
    for (const char *p = g; *p; p++) {
        if (*p == '\\') {
            if (!p[1])
                return sl_errf(why, whylen, "glob '%s' ends with a lone backslash", g);
            p++;
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']')
                q++;
            if (!*q)
                return sl_errf(why, whylen, "glob '%s' has a '[' without its ']'", g);
            p = q;
        }
    }
    return 0;
}

/* Splits text on dots not escaped by a backslash; segments keep their
 * escapes (fnmatch reads `\.` as a dot). */
static int
s_path_parse(s_path_t *p, const char *text, char *why, size_t whylen)
{
    p->text = sl_xstrdup(text);
    size_t cap = 1;
    for (const char *c = text; *c; c++)
        cap += *c == '.';
    p->seg = sl_xcalloc(cap, sizeof *p->seg);
    p->magic = sl_xcalloc(cap, 1);
    const char *start = text;
    for (const char *c = text;; c++) {
        if (*c == '\\' && c[1]) {
            c++;
            continue;
        }
        if (*c && *c != '.')
            continue;
        if (c == start)
            return sl_errf(why, whylen, "field path '%s' has an empty segment (use a\\.b for "
                           "a key holding a dot)", text);
        p->seg[p->n] = sl_xstrndup(start, (size_t) (c - start));
        p->magic[p->n] = s_magic(p->seg[p->n]);
        if (s_glob_check(p->seg[p->n++], why, whylen) < 0)
            return -1;
        if (!*c)
            break;
        start = c + 1;
    }
    return 0;
}

static void
s_path_free(s_path_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->seg[i]);
    free(p->seg);
    free(p->magic);
    free(p->text);
}

/* A scalar or a list of scalars; the items (borrowed) go to *items. */
static int
s_scalars(const sl_ynode_t *v, const char *key, const sl_ynode_t ***items, size_t *n,
          const sl_ynode_t **one, char *err, size_t errlen)
{
    if (v->kind == SL_Y_SCALAR) {
        *one = v;
        *items = one;
        *n = 1;
        return 0;
    }
    if (v->kind != SL_Y_SEQ)
        return sl_yerr(v, err, errlen, "forward: %s: expected a list of strings", key);
    for (size_t i = 0; i < v->n; i++)
        if (v->items[i]->kind != SL_Y_SCALAR)
            return sl_yerr(v->items[i], err, errlen, "forward: %s: expected a string", key);
    *items = (const sl_ynode_t **) v->items;
    *n = v->n;
    return 0;
}

static int
s_parse_select(s_select_t *s, const char *pname, const char *key, const sl_ynode_t *v,
               char *err, size_t errlen)
{
    const sl_ynode_t **items, *one;
    size_t n;
    char why[256];
    if (s_scalars(v, key, &items, &n, &one, err, errlen) < 0)
        return -1;
    if (n == 0)
        return sl_yerr(v, err, errlen, "forward profile '%s': %s: an empty list would be read "
                       "as everything; leave %s out to select everything", pname, key, key);
    s->glob = sl_xcalloc(n + 1, sizeof *s->glob);
    s->magic = sl_xcalloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        const char *g = items[i]->value;
        int ex = *g == '!';
        if (i > 0 && ex != s->exclude)
            return sl_yerr(items[i], err, errlen, "forward profile '%s': %s: '%s' mixes "
                           "inclusions and exclusions (!glob); use one kind, as Ceilometer's "
                           "pipeline does", pname, key, g);
        s->exclude = ex;
        if (s_glob_check(g + ex, why, sizeof why) < 0)
            return sl_yerr(items[i], err, errlen, "forward profile '%s': %s: %s", pname, key,
                           why);
        s->magic[s->n] = s_magic(g + ex);
        s->glob[s->n++] = sl_xstrdup(g + ex);
    }
    return 0;
}

static int
s_parse_paths(s_path_t **out, size_t *n_out, const char *pname, const char *key,
              const sl_ynode_t *v, char *err, size_t errlen)
{
    const sl_ynode_t **items, *one;
    size_t n;
    char why[256];
    if (s_scalars(v, key, &items, &n, &one, err, errlen) < 0)
        return -1;
    *out = sl_xcalloc(n + 1, sizeof **out);
    for (size_t i = 0; i < n; i++) {
        int rc = s_path_parse(&(*out)[i], items[i]->value, why, sizeof why);
        (*n_out)++;
        if (rc < 0)
            return sl_yerr(items[i], err, errlen, "forward profile '%s': %s: %s", pname, key,
                           why);
    }
    return 0;
}

static int
s_parse_regex(pcre2_code **re, char **text, const char *pname, const char *key,
              const sl_ynode_t *v, char *err, size_t errlen)
{
    char why[256];
    if (v->kind != SL_Y_SCALAR)
        return sl_yerr(v, err, errlen, "forward profile '%s': %s: expected one regular "
                       "expression (join alternatives with |)", pname, key);
    *re = sl_py_re_compile(v->value, 0, why, sizeof why);
    if (!*re)
        return sl_yerr(v, err, errlen, "forward profile '%s': %s: %s", pname, key, why);
    /* JIT when the library has it (matched once per key of every record);
     * pcre2_match uses it by itself, and interprets without it. */
    (void) pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE);
    *text = sl_xstrdup(v->value);
    return 0;
}

static void
s_add_token(sl_forward_t *f, const char *tok, size_t len)
{
    f->token_hash = sl_xrealloc(f->token_hash, (f->n_tokens + 1) * sizeof *f->token_hash);
    SHA256((const unsigned char *) tok, len, f->token_hash[f->n_tokens++]);
}

static int
s_parse_tokens(sl_forward_t *f, const sl_ynode_t *v, char *err, size_t errlen)
{
    const sl_ynode_t **items, *one;
    size_t n;
    if (s_scalars(v, "tokens", &items, &n, &one, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!*items[i]->value)
            return sl_yerr(items[i], err, errlen, "forward profile '%s': tokens: an empty "
                           "token would let anyone in", f->name);
        s_add_token(f, items[i]->value, strlen(items[i]->value));
    }
    return 0;
}

/* One token per line; blank lines and lines starting with # are skipped,
 * surrounding blanks trimmed. */
static int
s_read_token_file(sl_forward_t *f, const sl_ynode_t *v, const char *base_dir, char *err,
                  size_t errlen)
{
    if (v->kind != SL_Y_SCALAR || !*v->value)
        return sl_yerr(v, err, errlen, "forward profile '%s': token_file: expected a path",
                       f->name);
    if (v->value[0] == '/' || !base_dir) {
        f->token_file = sl_xstrdup(v->value);
    } else {
        f->token_file = sl_xmalloc(strlen(base_dir) + strlen(v->value) + 2);
        sprintf(f->token_file, "%s/%s", base_dir, v->value);
    }
    char why[512];
    size_t len;
    char *text = sl_ydoc_read_file(f->token_file, f->token_file, &len, why, sizeof why);
    if (!text)
        return sl_yerr(v, err, errlen, "forward profile '%s': token_file: %s", f->name, why);
    size_t before = f->n_tokens;
    for (char *line = text, *next; line < text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t) (text + len - line));
        next = nl ? nl + 1 : text + len;
        char *e = nl ? nl : text + len;
        while (line < e && (*line == ' ' || *line == '\t'))
            line++;
        while (e > line && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (e > line && *line != '#')
            s_add_token(f, line, (size_t) (e - line));
    }
    OPENSSL_cleanse(text, len);
    free(text);
    if (f->n_tokens == before)
        return sl_yerr(v, err, errlen, "forward profile '%s': token_file %s holds no token "
                       "(one per line; # starts a comment)", f->name, f->token_file);
    return 0;
}

sl_forward_t *
sl_forward_parse(const char *name, const sl_ynode_t *node, const char *base_dir, char *err,
                 size_t errlen)
{
    sl_forward_t *f = sl_xcalloc(1, sizeof *f);
    f->name = sl_xstrdup(name);
    f->line = node->line;
    int rc = 0;
    if (!*name) {
        rc = sl_yerr(node, err, errlen, "forward: a profile needs a non-empty name");
    } else if (strpbrk(name, "&=?# ")) {
        rc = sl_yerr(node, err, errlen, "forward: profile name '%s' cannot be named in a "
                     "publisher URL (no &, =, ?, # or spaces)", name);
    } else if (sl_ynode_is_null(node)) {
        /* `name:` alone: everything, unfiltered (still a valid target). */
    } else if (node->kind != SL_Y_MAP) {
        rc = sl_yerr(node, err, errlen, "forward profile '%s': expected a mapping of meters, "
                     "event_types, drop_fields, admin_only_fields, admin, drop_regex, "
                     "keep_regex, tokens, token_file", name);
    }
    for (size_t i = 0; rc == 0 && node->kind == SL_Y_MAP && i < node->n; i++) {
        const char *k = node->keys[i];
        const sl_ynode_t *v = node->items[i];
        if (strcmp(k, "meters") == 0) {
            rc = s_parse_select(&f->meters, name, k, v, err, errlen);
        } else if (strcmp(k, "event_types") == 0) {
            rc = s_parse_select(&f->event_types, name, k, v, err, errlen);
        } else if (strcmp(k, "drop_fields") == 0) {
            rc = s_parse_paths(&f->drop, &f->n_drop, name, k, v, err, errlen);
        } else if (strcmp(k, "admin_only_fields") == 0) {
            rc = s_parse_paths(&f->admin, &f->n_admin, name, k, v, err, errlen);
        } else if (strcmp(k, "admin") == 0) {
            f->is_admin = sl_ynode_bool(v);
            if (f->is_admin < 0)
                rc = sl_yerr(v, err, errlen, "forward profile '%s': admin: expected true or "
                             "false", name);
        } else if (strcmp(k, "drop_regex") == 0) {
            rc = s_parse_regex(&f->drop_re, &f->drop_re_text, name, k, v, err, errlen);
        } else if (strcmp(k, "keep_regex") == 0) {
            rc = s_parse_regex(&f->keep_re, &f->keep_re_text, name, k, v, err, errlen);
        } else if (strcmp(k, "tokens") == 0) {
            rc = s_parse_tokens(f, v, err, errlen);
        } else if (strcmp(k, "token_file") == 0) {
            rc = s_read_token_file(f, v, base_dir, err, errlen);
        } else {
            rc = sl_yerr_at(node->doc->file, node->key_lines[i], err, errlen,
                            "forward profile '%s': unknown key '%s' (known: meters, "
                            "event_types, drop_fields, admin_only_fields, admin, drop_regex, "
                            "keep_regex, tokens, token_file)", name, k);
        }
    }
    if (rc < 0)
        sl_forward_destroy(&f);
    return f;
}

void
sl_forward_destroy(sl_forward_t **f_p)
{
    if (!f_p || !*f_p)
        return;
    sl_forward_t *f = *f_p;
    for (size_t i = 0; i < f->meters.n; i++)
        free(f->meters.glob[i]);
    free(f->meters.glob);
    free(f->meters.magic);
    for (size_t i = 0; i < f->event_types.n; i++)
        free(f->event_types.glob[i]);
    free(f->event_types.glob);
    free(f->event_types.magic);
    for (size_t i = 0; i < f->n_drop; i++)
        s_path_free(&f->drop[i]);
    free(f->drop);
    for (size_t i = 0; i < f->n_admin; i++)
        s_path_free(&f->admin[i]);
    free(f->admin);
    pcre2_code_free(f->drop_re);
    pcre2_code_free(f->keep_re);
    free(f->drop_re_text);
    free(f->keep_re_text);
    if (f->token_hash)
        OPENSSL_cleanse(f->token_hash, f->n_tokens * sizeof *f->token_hash);
    free(f->token_hash);
    free(f->token_file);
    free(f->name);
    free(f);
    *f_p = NULL;
}

static void
s_dump_list(FILE *out, const char *key, const char *bang, char *const *items, size_t n,
            const char *indent)
{
    if (!n)
        return;
    fprintf(out, "%s  %s: [", indent, key);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s\"%s", i ? ", " : "", bang);
        for (const char *c = items[i]; *c; c++)
            fprintf(out, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        fputc('"', out);
    }
    fprintf(out, "]\n");
}

static void
s_dump_re(FILE *out, const char *key, const char *re, const char *indent)
{
    if (!re)
        return;
    fprintf(out, "%s  %s: '", indent, key);
    for (const char *c = re; *c; c++)
        fprintf(out, *c == '\'' ? "''" : "%c", *c);
    fprintf(out, "'\n");
}

void
sl_forward_dump(const sl_forward_t *f, FILE *out, const char *indent)
{
    fprintf(out, "%s%s:\n", indent, f->name);
    s_dump_list(out, "meters", f->meters.exclude ? "!" : "", f->meters.glob, f->meters.n,
                indent);
    s_dump_list(out, "event_types", f->event_types.exclude ? "!" : "", f->event_types.glob,
                f->event_types.n, indent);
    char *texts[f->n_drop + f->n_admin + 1];
    for (size_t i = 0; i < f->n_drop; i++)
        texts[i] = f->drop[i].text;
    s_dump_list(out, "drop_fields", "", texts, f->n_drop, indent);
    for (size_t i = 0; i < f->n_admin; i++)
        texts[i] = f->admin[i].text;
    s_dump_list(out, "admin_only_fields", "", texts, f->n_admin, indent);
    fprintf(out, "%s  admin: %s\n", indent, f->is_admin ? "true" : "false");
    s_dump_re(out, "drop_regex", f->drop_re_text, indent);
    s_dump_re(out, "keep_regex", f->keep_re_text, indent);
    if (f->n_tokens)
        fprintf(out, "%s  # %zu token(s)%s%s, not shown\n", indent, f->n_tokens,
                f->token_file ? " including those of " : "", f->token_file ? f->token_file : "");
}

/* ---- selection and tokens ----------------------------------------------- */

const char *
sl_forward_name(const sl_forward_t *f)
{
    return f ? f->name : NULL;
}

int
sl_forward_selects(const sl_forward_t *f, int events, const char *name)
{
    if (!f)
        return 1;
    const s_select_t *s = events ? &f->event_types : &f->meters;
    if (!s->n)
        return 1;
    if (!name)
        return s->exclude;
    for (size_t i = 0; i < s->n; i++)
        if (s_glob_match(s->glob[i], s->magic[i], name))
            return !s->exclude;
    return s->exclude;
}

int
sl_forward_has_selection(const sl_forward_t *f, int events)
{
    return f && (events ? f->event_types.n : f->meters.n) > 0;
}

int
sl_forward_has_tokens(const sl_forward_t *f)
{
    return f && f->n_tokens > 0;
}

int
sl_forward_token_ok(const sl_forward_t *f, const char *token)
{
    if (!f || !f->n_tokens)
        return 1;
    if (!token || !*token)
        return 0;
    /* Hashes compared, every one of them: time depends on neither the
     * token's length nor on which token (if any) matched. */
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *) token, strlen(token), h);
    int ok = 0;
    for (size_t i = 0; i < f->n_tokens; i++)
        ok |= CRYPTO_memcmp(h, f->token_hash[i], sizeof h) == 0;
    OPENSSL_cleanse(h, sizeof h);
    return ok;
}

/* ---- filtering ----------------------------------------------------------- */

typedef struct {
    int                owned;   /* free removed nodes (yajl_tree_parse trees) */
    pcre2_match_data  *md;
    char              *path;    /* dotted path of the key being looked at */
    size_t             len, cap;
    char              *subj;    /* a trait name being matched */
    size_t             subj_cap;
} s_walk_t;

/* Every regex subject is in a buffer of ours with S_PAD initialised bytes
 * past its end: PCRE2's JIT reads subjects 16 bytes at a time, past their
 * end (within the page: harmless, but valgrind, which the test suite
 * runs, reports every such read of a malloc'd block). */
#define S_PAD 32

static void
s_reserve(char **buf, size_t *cap, size_t need)
{
    if (need + S_PAD <= *cap)
        return;
    size_t ncap = (need + S_PAD) * 2;
    *buf = sl_xrealloc(*buf, ncap);
    memset(*buf + *cap, 0, ncap - *cap);
    *cap = ncap;
}

static size_t
s_path_push(s_walk_t *w, const char *key)
{
    size_t old = w->len, kl = strlen(key);
    s_reserve(&w->path, &w->cap, w->len + kl + 2);
    if (w->len)
        w->path[w->len++] = '.';
    memcpy(w->path + w->len, key, kl + 1);
    w->len += kl;
    return old;
}

static void
s_path_pop(s_walk_t *w, size_t old)
{
    w->len = old;
    if (w->path)
        w->path[old] = '\0';
}

/* UTF-8 is checked at every match (no PCRE2_NO_UTF_CHECK): a caller may
 * build a tree by hand with any bytes, and a match on invalid UTF-8
 * without the check is undefined behaviour. A key that is not UTF-8 then
 * simply does not match. */
static int
s_re_hit(s_walk_t *w, const pcre2_code *re, const char *s)
{
    if (s != w->path) {
        size_t n = strlen(s);
        s_reserve(&w->subj, &w->subj_cap, n + 1);
        memcpy(w->subj, s, n + 1);
        s = w->subj;
    }
    return pcre2_match(re, (PCRE2_SPTR) s, PCRE2_ZERO_TERMINATED, 0, 0, w->md, NULL) >= 0;
}

/* Removes member i of object o, or element i of array a. */
static void
s_obj_remove(s_walk_t *w, yajl_val o, size_t i)
{
    if (w->owned) {
        free((char *) o->u.object.keys[i]);
        yajl_tree_free(o->u.object.values[i]);
    }
    size_t rest = o->u.object.len - i - 1;
    memmove(&o->u.object.keys[i], &o->u.object.keys[i + 1], rest * sizeof *o->u.object.keys);
    memmove(&o->u.object.values[i], &o->u.object.values[i + 1],
            rest * sizeof *o->u.object.values);
    o->u.object.len--;
}

static void
s_arr_remove(s_walk_t *w, yajl_val a, size_t i)
{
    if (w->owned)
        yajl_tree_free(a->u.array.values[i]);
    size_t rest = a->u.array.len - i - 1;
    memmove(&a->u.array.values[i], &a->u.array.values[i + 1], rest * sizeof *a->u.array.values);
    a->u.array.len--;
}

/* The name of a trait [name, type, value], or NULL if t is not one. */
static const char *
s_trait_name(yajl_val t)
{
    if (!YAJL_IS_ARRAY(t) || t->u.array.len < 1 || !YAJL_IS_STRING(t->u.array.values[0]))
        return NULL;
    return t->u.array.values[0]->u.string;
}

/* The traits array of an event, or NULL. */
static yajl_val
s_traits(yajl_val ev)
{
    for (size_t i = 0; i < ev->u.object.len; i++)
        if (strcmp(ev->u.object.keys[i], "traits") == 0 && YAJL_IS_ARRAY(ev->u.object.values[i]))
            return ev->u.object.values[i];
    return NULL;
}

/* Removes the members of v (an object, or every object inside an array)
 * matched by segments seg[0..n). */
static void
s_drop_path(s_walk_t *w, yajl_val v, char *const *seg, const char *magic, size_t n)
{
    if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            s_drop_path(w, v->u.array.values[i], seg, magic, n);
        return;
    }
    if (!YAJL_IS_OBJECT(v))
        return;
    for (size_t i = 0; i < v->u.object.len;) {
        if (!s_glob_match(seg[0], magic[0], v->u.object.keys[i])) {
            i++;
        } else if (n == 1) {
            s_obj_remove(w, v, i);
        } else {
            s_drop_path(w, v->u.object.values[i], seg + 1, magic + 1, n - 1);
            i++;
        }
    }
}

/* Removes the traits whose name matches glob (or, with re, the regex);
 * keep: those that do not match. */
static void
s_drop_traits(s_walk_t *w, yajl_val ev, const char *glob, char magic, const pcre2_code *re,
              int keep)
{
    yajl_val tr = s_traits(ev);
    for (size_t i = 0; tr && i < tr->u.array.len;) {
        const char *name = s_trait_name(tr->u.array.values[i]);
        int hit = name && (glob ? s_glob_match(glob, magic, name) : s_re_hit(w, re, name));
        if (hit != keep)
            s_arr_remove(w, tr, i);
        else
            i++;
    }
}

/* Removes members at any depth whose key matches glob, or whose dotted
 * path matches re (search). top: v is the record (traits are its
 * members, by name). */
static void
s_drop_any(s_walk_t *w, yajl_val v, const char *glob, char magic, const pcre2_code *re,
           int events, int top)
{
    if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            s_drop_any(w, v->u.array.values[i], glob, magic, re, 0, 0);
        return;
    }
    if (!YAJL_IS_OBJECT(v))
        return;
    for (size_t i = 0; i < v->u.object.len;) {
        const char *k = v->u.object.keys[i];
        size_t old = re ? s_path_push(w, k) : 0;   /* globs match the key alone */
        int hit = glob ? s_glob_match(glob, magic, k) : s_re_hit(w, re, w->path);
        if (hit) {
            s_obj_remove(w, v, i);
        } else {
            if (!(events && top && strcmp(k, "traits") == 0))
                s_drop_any(w, v->u.object.values[i], glob, magic, re, 0, 0);
            i++;
        }
        if (re)
            s_path_pop(w, old);
    }
    if (events && top)
        s_drop_traits(w, v, glob, magic, re, 0);
}

/* keep_regex: keeps members whose dotted path matches (whole), and the
 * objects and arrays on the way to one; the rest goes. Returns 1 if
 * anything in v was kept. */
static int
s_keep(s_walk_t *w, yajl_val v, const pcre2_code *re, int events, int top)
{
    if (YAJL_IS_ARRAY(v)) {
        int any = 0;
        for (size_t i = 0; i < v->u.array.len;) {
            yajl_val e = v->u.array.values[i];
            if ((YAJL_IS_OBJECT(e) || YAJL_IS_ARRAY(e)) && s_keep(w, e, re, 0, 0)) {
                any = 1;
                i++;
            } else {
                s_arr_remove(w, v, i);
            }
        }
        return any;
    }
    if (!YAJL_IS_OBJECT(v))
        return 0;
    int any = 0;
    for (size_t i = 0; i < v->u.object.len;) {
        const char *k = v->u.object.keys[i];
        yajl_val val = v->u.object.values[i];
        size_t old = s_path_push(w, k);
        int kept;
        if (s_re_hit(w, re, w->path)) {
            kept = 1;
        } else if (events && top && strcmp(k, "traits") == 0 && YAJL_IS_ARRAY(val)) {
            s_drop_traits(w, v, NULL, 0, re, 1);
            kept = val->u.array.len > 0;
        } else {
            kept = (YAJL_IS_OBJECT(val) || YAJL_IS_ARRAY(val)) && s_keep(w, val, re, 0, 0);
        }
        s_path_pop(w, old);
        if (kept) {
            any = 1;
            i++;
        } else {
            s_obj_remove(w, v, i);
        }
    }
    return any;
}

static void
s_filter(const sl_forward_t *f, int events, yajl_val obj, int owned)
{
    if (!f || !YAJL_IS_OBJECT(obj))
        return;
    s_walk_t w = { .owned = owned };
    for (size_t i = 0; i < f->n_drop; i++) {
        const s_path_t *p = &f->drop[i];
        s_drop_path(&w, obj, p->seg, p->magic, p->n);
        if (events && p->n == 1)
            s_drop_traits(&w, obj, p->seg[0], p->magic[0], NULL, 0);
    }
    for (size_t i = 0; !f->is_admin && i < f->n_admin; i++) {
        const s_path_t *p = &f->admin[i];
        if (p->n == 1)
            s_drop_any(&w, obj, p->seg[0], p->magic[0], NULL, events, 1);
        else
            s_drop_path(&w, obj, p->seg, p->magic, p->n);
    }
    if (f->drop_re) {
        w.md = pcre2_match_data_create_from_pattern(f->drop_re, NULL);
        if (!w.md)
            abort();   /* no memory: sluice does not run on without it (arena.h) */
        s_drop_any(&w, obj, NULL, 0, f->drop_re, events, 1);
        pcre2_match_data_free(w.md);
        w.md = NULL;
    }
    if (f->keep_re) {
        w.md = pcre2_match_data_create_from_pattern(f->keep_re, NULL);
        if (!w.md)
            abort();
        s_keep(&w, obj, f->keep_re, events, 1);
        pcre2_match_data_free(w.md);
    }
    free(w.path);
    free(w.subj);
}

void
sl_forward_filter(const sl_forward_t *f, int events, yajl_val obj)
{
    s_filter(f, events, obj, 0);
}

void
sl_forward_filter_free(const sl_forward_t *f, int events, yajl_val obj)
{
    s_filter(f, events, obj, 1);
}
