#include "common/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "common/json_simd.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

yajl_val
sl_json_get(yajl_val obj, const char *key)
{
    if (!obj || obj->type != yajl_t_object || !key)
        return NULL;
    /* Backwards, so that a duplicated key (possible in yajl_tree_parse
     * trees) resolves to its last value, like a Python dict. */
    for (size_t i = obj->u.object.len; i-- > 0;) {
        const char *k = obj->u.object.keys[i];
        /* most keys differ at their first byte: no call for those */
        if (k[0] == key[0] && (key[0] == '\0' || strcmp(k + 1, key + 1) == 0))
            return obj->u.object.values[i];
    }
    return NULL;
}

const char *
sl_json_str(yajl_val v)
{
    return v && v->type == yajl_t_string ? v->u.string : NULL;
}

/* 1 if yajl_gen_string would write s[0..len) with an escape: a '"', a
 * '\\' or a byte below 0x20 (yajl escapes nothing else: sluice never sets
 * yajl_gen_escape_solidus or yajl_gen_validate_utf8). */
static int
s_needs_escape(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *) s;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20 - 0x80), flip = _mm_set1_epi8((char) 0x80);
    for (; i + 16 <= len; i += 16) {
        __m128i w = _mm_loadu_si128((const __m128i *) (u + i));
        /* unsigned w < 0x20 as a signed compare of w ^ 0x80 */
        __m128i ctl = _mm_cmplt_epi8(_mm_xor_si128(w, flip), space);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, bs)),
                                   ctl);
        if (_mm_movemask_epi8(hit))
            return 1;
    }
#endif
    for (; i < len; i++)
        if (u[i] < 0x20 || u[i] == '"' || u[i] == '\\')
            return 1;
    return 0;
}

int
sl_json_gen_strv(yajl_gen g, const char *s, size_t len)
{
    /* yajl_gen_string looks at each byte through a switch; most strings
     * (ids, names, timestamps) need no escape and go in as they are, with
     * their quotes, through the raw insertion (sl_json_gen_raw) */
    char q[256];
    if (len + 2 <= sizeof q && !s_needs_escape(s, len)) {
        q[0] = '"';
        memcpy(q + 1, s, len);
        q[len + 1] = '"';
        return yajl_gen_number(g, q, len + 2) == yajl_gen_status_ok ? 0 : -1;
    }
    return yajl_gen_string(g, (const unsigned char *) s, len) == yajl_gen_status_ok ? 0 : -1;
}

int
sl_json_gen_val(yajl_gen g, yajl_val v)
{
    yajl_gen_status st;
    if (!v)
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    switch (v->type) {
    case yajl_t_string:
        return sl_json_gen_strv(g, v->u.string, strlen(v->u.string));
    case yajl_t_number:
        if (v->u.number.r)
            st = yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
        else if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
            st = yajl_gen_integer(g, v->u.number.i);
        else
            st = yajl_gen_double(g, v->u.number.d);
        break;
    case yajl_t_object:
        if (yajl_gen_map_open(g) != yajl_gen_status_ok)
            return -1;
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            if (yajl_gen_string(g, (const unsigned char *) k, strlen(k)) != yajl_gen_status_ok ||
                sl_json_gen_val(g, v->u.object.values[i]) < 0)
                return -1;
        }
        st = yajl_gen_map_close(g);
        break;
    case yajl_t_array:
        if (yajl_gen_array_open(g) != yajl_gen_status_ok)
            return -1;
        for (size_t i = 0; i < v->u.array.len; i++)
            if (sl_json_gen_val(g, v->u.array.values[i]) < 0)
                return -1;
        st = yajl_gen_array_close(g);
        break;
    case yajl_t_true:
        st = yajl_gen_bool(g, 1);
        break;
    case yajl_t_false:
        st = yajl_gen_bool(g, 0);
        break;
    default:
        st = yajl_gen_null(g);
        break;
    }
    return st == yajl_gen_status_ok ? 0 : -1;
}

void
sl_json_gen_str(yajl_gen g, const char *s)
{
    if (s)
        yajl_gen_string(g, (const unsigned char *) s, strlen(s));
    else
        yajl_gen_null(g);
}

void
sl_json_gen_u64(yajl_gen g, uint64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long) v);
    yajl_gen_number(g, num, (size_t) n);
}

int
sl_json_gen_raw(yajl_gen g, const char *json, size_t len)
{
    return yajl_gen_number(g, json, len) == yajl_gen_status_ok ? 0 : -1;
}

/* ---- JSON text straight into a buffer ---------------------------------- */

/* *scratch, made on first use and emptied, ready for one root value. */
static yajl_gen
s_scratch(yajl_gen *scratch)
{
    if (!*scratch) {
        *scratch = yajl_gen_alloc(NULL);
        if (!*scratch) {        /* out of memory: as sl_xmalloc does */
            fprintf(stderr, "sluice: out of memory allocating a JSON generator\n");
            abort();
        }
    } else {
        yajl_gen_reset(*scratch, NULL);
        yajl_gen_clear(*scratch);
    }
    return *scratch;
}

/* Appends what g holds; -1 if it holds nothing (st failed). */
static int
s_put_gen(sl_buf_t *b, yajl_gen g, yajl_gen_status st)
{
    const unsigned char *out;
    size_t n;
    if (st != yajl_gen_status_ok || yajl_gen_get_buf(g, &out, &n) != yajl_gen_status_ok)
        return -1;
    sl_buf_put(b, out, n);
    return 0;
}

void
sl_json_put_str(sl_buf_t *b, yajl_gen *scratch, const char *s, size_t len)
{
    if (s_needs_escape(s, len)) {
        yajl_gen g = s_scratch(scratch);
        (void) s_put_gen(b, g, yajl_gen_string(g, (const unsigned char *) s, len));
        return;
    }
    sl_buf_putc(b, '"');
    sl_buf_put(b, s, len);
    sl_buf_putc(b, '"');
}

void
sl_json_put_strz(sl_buf_t *b, yajl_gen *scratch, const char *s)
{
    if (s)
        sl_json_put_str(b, scratch, s, strlen(s));
    else
        sl_buf_puts(b, "null");
}

/* yajl_gen's depth limit (YAJL_MAX_DEPTH): a container opened at depth 128
 * fails. */
#define S_GEN_MAX_DEPTH 128

static int
s_put_val(sl_buf_t *b, yajl_gen *scratch, yajl_val v, unsigned depth)
{
    if (!v) {
        sl_buf_puts(b, "null");
        return 0;
    }
    switch (v->type) {
    case yajl_t_string:
        sl_json_put_str(b, scratch, v->u.string, strlen(v->u.string));
        return 0;
    case yajl_t_number:
        if (v->u.number.r) {
            sl_buf_puts(b, v->u.number.r);
        } else if (v->u.number.flags & YAJL_NUMBER_INT_VALID) {
            char num[32];       /* yajl_gen_integer's "%lld" */
            int n = snprintf(num, sizeof num, "%lld", v->u.number.i);
            sl_buf_put(b, num, (size_t) n);
        } else {
            yajl_gen g = s_scratch(scratch);
            return s_put_gen(b, g, yajl_gen_double(g, v->u.number.d));
        }
        return 0;
    case yajl_t_object:
        if (depth + 1 >= S_GEN_MAX_DEPTH)
            return -1;
        sl_buf_putc(b, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            if (i)
                sl_buf_putc(b, ',');
            sl_json_put_str(b, scratch, k, strlen(k));
            sl_buf_putc(b, ':');
            if (s_put_val(b, scratch, v->u.object.values[i], depth + 1) < 0)
                return -1;
        }
        sl_buf_putc(b, '}');
        return 0;
    case yajl_t_array:
        if (depth + 1 >= S_GEN_MAX_DEPTH)
            return -1;
        sl_buf_putc(b, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                sl_buf_putc(b, ',');
            if (s_put_val(b, scratch, v->u.array.values[i], depth + 1) < 0)
                return -1;
        }
        sl_buf_putc(b, ']');
        return 0;
    case yajl_t_true:
        sl_buf_puts(b, "true");
        return 0;
    case yajl_t_false:
        sl_buf_puts(b, "false");
        return 0;
    default:
        sl_buf_puts(b, "null");
        return 0;
    }
}

int
sl_json_put_val(sl_buf_t *b, yajl_gen *scratch, yajl_val v)
{
    return s_put_val(b, scratch, v, 0);
}

char *
sl_json_dump(sl_arena_t *a, yajl_val v)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return NULL;
    char *out = NULL;
    if (sl_json_gen_val(g, v) == 0) {
        const unsigned char *buf;
        size_t len;
        if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
            out = sl_arena_strndup(a, (const char *) buf, len);
    }
    yajl_gen_free(g);
    return out;
}

char *
sl_json_scalar_text(sl_arena_t *a, yajl_val v)
{
    if (!v)
        return NULL;
    switch (v->type) {
    case yajl_t_string:
        return sl_arena_strdup(a, v->u.string);
    case yajl_t_number:
        if (v->u.number.r)
            return sl_arena_strdup(a, v->u.number.r);
        if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
            return sl_arena_printf(a, "%lld", v->u.number.i);
        return sl_arena_printf(a, "%.17g", v->u.number.d);
    case yajl_t_true:
        return sl_arena_strdup(a, "true");
    case yajl_t_false:
        return sl_arena_strdup(a, "false");
    case yajl_t_null:
        return NULL;
    default:
        return sl_json_dump(a, v);
    }
}

yajl_val
sl_json_new_string(sl_arena_t *a, const char *s, size_t len)
{
    yajl_val v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = yajl_t_string;
    v->u.string = sl_arena_strndup(a, s, len);
    return v;
}

static double
s_num_value(yajl_val v)
{
    if (v->u.number.r)
        return strtod(v->u.number.r, NULL);
    if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
        return (double) v->u.number.i;
    return v->u.number.d;
}

int
sl_json_truthy(yajl_val v)
{
    if (!v)
        return 0;
    switch (v->type) {
    case yajl_t_string:
        return v->u.string[0] != '\0';
    case yajl_t_number:
        /* Python's int and float are both false only at zero; strtod gives
         * 0 exactly for every spelling of zero (0, -0, 0.0e5, 1e-400). */
        return s_num_value(v) != 0.0;
    case yajl_t_object:
        return v->u.object.len > 0;
    case yajl_t_array:
        return v->u.array.len > 0;
    case yajl_t_true:
        return 1;
    default:
        return 0;
    }
}

static int
s_is_integer_text(const char *r)
{
    return r && !strpbrk(r, ".eE");
}

int
sl_json_equal(yajl_val a, yajl_val b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_number:
        if (a->u.number.r && b->u.number.r && strcmp(a->u.number.r, b->u.number.r) == 0)
            return 1;
        if (s_is_integer_text(a->u.number.r) && s_is_integer_text(b->u.number.r) &&
            (a->u.number.flags & b->u.number.flags & YAJL_NUMBER_INT_VALID))
            return a->u.number.i == b->u.number.i;
        return s_num_value(a) == s_num_value(b);
    case yajl_t_object:
        if (a->u.object.len != b->u.object.len)
            return 0;
        for (size_t i = 0; i < a->u.object.len; i++) {
            yajl_val bv = sl_json_get(b, a->u.object.keys[i]);
            if (!bv || !sl_json_equal(a->u.object.values[i], bv))
                return 0;
        }
        return 1;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len)
            return 0;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!sl_json_equal(a->u.array.values[i], b->u.array.values[i]))
                return 0;
        return 1;
    default:
        return 1;
    }
}

/* ---- parsing into an arena ------------------------------------------- */

static int s_plain_ascii(const char *buf, size_t len);

typedef struct {
    const char *key;    /* NULL for array elements */
    yajl_val    val;
    size_t      klen;   /* the key's length, for s_dedupe */
} s_item_t;

typedef struct {
    yajl_val node;
    size_t   start;     /* index in items of this container's first child */
} s_open_t;

/* Room on the parser's stack for the items and open containers of a
 * typical notification (a few hundred values, ~10 levels): no malloc. */
#define S_STACK_ITEMS 256
#define S_STACK_OPEN  32

typedef struct {
    sl_arena_t *a;
    size_t      max_depth;
    s_item_t   *items;      /* stack_items until it outgrows them */
    size_t      n_items, cap_items;
    s_open_t   *open;
    size_t      n_open, cap_open;
    uint32_t   *slots;  /* scratch hash table for duplicate keys */
    size_t      cap_slots;
    yajl_val    root;
    int         check_utf8; /* 0: the text is ASCII without \u escapes */
    sl_json_keep_fn keep;   /* NULL: keep every key of the top-level object */
    void       *keep_ud;
    int         skip_next;  /* the next value belongs to a key keep refused */
    size_t      skip;       /* containers open inside such a value */
    yajl_handle h;      /* the yajl parser reading the text, or NULL */
    size_t      root_end;   /* bytes yajl had read when the root was complete */
    sl_json_err_t why;  /* set by a callback that stops the parse */
    size_t      bad_at; /* with SL_JSON_E_UTF8: byte offset in the string */
    s_item_t   *stack_items;    /* the parser's stack room */
    s_open_t   *stack_open;
} s_build_t;

/* Doubles an array that starts in the parser's stack room (stack). */
static void *
s_grow(void *v, void *stack, size_t *cap, size_t size)
{
    void *n = sl_xmalloc(*cap * 2 * size);
    memcpy(n, v, *cap * size);
    if (v != stack)
        free(v);
    *cap *= 2;
    return n;
}

static yajl_val
s_node(s_build_t *b, yajl_type type)
{
    yajl_val v = sl_arena_alloc(b->a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

static void
s_push_item(s_build_t *b, const char *key, size_t klen, yajl_val val)
{
    if (b->n_items == b->cap_items)
        b->items = s_grow(b->items, b->stack_items, &b->cap_items, sizeof *b->items);
    b->items[b->n_items].key = key;
    b->items[b->n_items].val = val;
    b->items[b->n_items].klen = klen;
    b->n_items++;
}

/* Attaches a finished value to the innermost open container (or makes it
 * the root). In an object the key was pushed first with a NULL value. */
static int
s_add(s_build_t *b, yajl_val v)
{
    if (b->n_open == 0) {
        b->root = v;
        /* where the root ends, for the trailing-garbage check (yajl
         * counts its offset from the start of the text here) */
        if (b->h)
            b->root_end = yajl_get_bytes_consumed(b->h);
        return 1;
    }
    yajl_val parent = b->open[b->n_open - 1].node;
    if (parent->type == yajl_t_object)
        b->items[b->n_items - 1].val = v;
    else
        s_push_item(b, NULL, 0, v);
    return 1;
}

/* A scalar inside a value that is not kept: 1 (it is dropped). After a
 * kept key's value, or outside the top-level object, 0. */
static inline int
s_skipped_scalar(s_build_t *b)
{
    if (b->skip)
        return 1;
    if (!b->skip_next)
        return 0;
    b->skip_next = 0;
    return 1;
}

static int
s_on_null(void *ctx)
{
    s_build_t *b = ctx;
    if (s_skipped_scalar(b))
        return 1;
    return s_add(b, s_node(b, yajl_t_null));
}

static int
s_on_bool(void *ctx, int val)
{
    s_build_t *b = ctx;
    if (s_skipped_scalar(b))
        return 1;
    return s_add(b, s_node(b, val ? yajl_t_true : yajl_t_false));
}

static int
s_on_number(void *ctx, const char *s, size_t len)
{
    s_build_t *b = ctx;
    if (len > SL_PY_INT_MAX_STR_DIGITS && !memchr(s, '.', len) && !memchr(s, 'e', len) &&
        !memchr(s, 'E', len) && len - (s[0] == '-') > SL_PY_INT_MAX_STR_DIGITS) {
        b->why = SL_JSON_E_BIGINT;
        return 0;
    }
    if (s_skipped_scalar(b))
        return 1;
    yajl_val v = s_node(b, yajl_t_number);
    char *r = sl_arena_strndup(b->a, s, len);
    v->u.number.r = r;
    /* Nearly every number is a short integer: its value without strtoll
     * and strtod (at most 18 digits cannot overflow; converting the exact
     * integer rounds as strtod would, and "-0" is the double -0.0) */
    size_t neg = r[0] == '-';
    if (len - neg >= 1 && len - neg <= 18) {
        long long i = 0;
        size_t k = neg;
        while (k < len && r[k] >= '0' && r[k] <= '9')
            i = i * 10 + (r[k++] - '0');
        if (k == len) {
            v->u.number.i = neg ? -i : i;
            v->u.number.d = neg ? (i ? -(double) i : -0.0) : (double) i;
            v->u.number.flags |= YAJL_NUMBER_INT_VALID | YAJL_NUMBER_DOUBLE_VALID;
            return s_add(b, v);
        }
    }
    /* strtod/strtoll follow LC_NUMERIC; sluice never calls setlocale(), so
     * that is "C", the JSON syntax. */
    if (!strpbrk(r, ".eE")) {
        errno = 0;
        long long i = strtoll(r, NULL, 10);
        if (errno == 0) {
            v->u.number.i = i;
            v->u.number.flags |= YAJL_NUMBER_INT_VALID;
        }
    }
    errno = 0;
    v->u.number.d = strtod(r, NULL);
    if (errno == 0)
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return s_add(b, v);
}

/* Stops the parse on a string that is not strict UTF-8 (yajl lets
 * overlong forms, surrogates and code points past U+10FFFF through, and
 * does not check keys at all). Also catches an escaped lone surrogate
 * (yajl decodes "\udc00" to the bytes of U+DC00). */
static int
s_utf8_ok(s_build_t *b, const unsigned char *s, size_t len)
{
    if (!b->check_utf8)
        return 1;
    size_t bad = sl_utf8_check((const char *) s, len);
    if (bad == len)
        return 1;
    b->why = SL_JSON_E_UTF8;
    b->bad_at = bad;
    return 0;
}

static int
s_on_string(void *ctx, const unsigned char *s, size_t len)
{
    s_build_t *b = ctx;
    if (!s_utf8_ok(b, s, len))
        return 0;
    if (s_skipped_scalar(b))
        return 1;
    yajl_val v = s_node(b, yajl_t_string);
    v->u.string = sl_arena_strndup(b->a, (const char *) s, len);
    return s_add(b, v);
}

static int
s_open_container(s_build_t *b, yajl_type type)
{
    if (b->n_open + b->skip >= b->max_depth) {
        b->why = SL_JSON_E_DEPTH;
        return 0;
    }
    if (b->skip || b->skip_next) {
        b->skip++;
        b->skip_next = 0;
        return 1;
    }
    if (b->n_open == b->cap_open)
        b->open = s_grow(b->open, b->stack_open, &b->cap_open, sizeof *b->open);
    b->open[b->n_open].node = s_node(b, type);
    b->open[b->n_open].start = b->n_items;
    b->n_open++;
    return 1;
}

static int
s_on_start_map(void *ctx)
{
    return s_open_container(ctx, yajl_t_object);
}

static int
s_on_start_array(void *ctx)
{
    return s_open_container(ctx, yajl_t_array);
}

static int
s_on_key(void *ctx, const unsigned char *s, size_t len)
{
    s_build_t *b = ctx;
    if (!s_utf8_ok(b, s, len))
        return 0;
    if (b->skip)
        return 1;
    if (b->keep && b->n_open == 1 && !b->keep((const char *) s, len, b->keep_ud)) {
        b->skip_next = 1;
        return 1;
    }
    s_push_item(b, sl_arena_strndup(b->a, (const char *) s, len), len, NULL);
    return 1;
}

/* Two keys of an object being closed are the same key. */
static inline int
s_same_key(const s_item_t *x, const s_item_t *y)
{
    return x->klen == y->klen && memcmp(x->key, y->key, x->klen) == 0;
}

/* Python's dict keeps a repeated key at its first position with the last
 * value: fills keys and vals from the object's n items and returns the
 * number of entries left. Repeats are rare, so the cost that matters is
 * proving there are none: small objects compare lengths pairwise, bigger
 * ones go through a scratch hash table keyed on length and three bytes. */
static size_t
s_dedupe(s_build_t *b, s_item_t *it, size_t n, const char **keys, yajl_val *vals)
{
    size_t out = 0;
    if (n <= 8) {
        for (size_t i = 0; i < n; i++) {
            size_t j = 0;
            while (j < out && !s_same_key(&it[j], &it[i]))
                j++;
            if (j < out) {
                vals[j] = it[i].val;
                continue;
            }
            it[out] = it[i];    /* keeps the first it[0..out) the kept keys */
            keys[out] = it[i].key;
            vals[out++] = it[i].val;
        }
        return out;
    }
    size_t cap = 64;
    while (cap < n * 2)
        cap *= 2;
    if (cap > b->cap_slots) {
        free(b->slots);
        b->slots = sl_xmalloc(cap * sizeof *b->slots);
        b->cap_slots = cap;
    }
    memset(b->slots, 0, cap * sizeof *b->slots);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *k = (const unsigned char *) it[i].key;
        size_t kl = it[i].klen;
        size_t h = kl ? kl * 0x9e3779b1u ^ k[0] * 0x85ebca6bu ^ k[kl - 1] * 0xc2b2ae35u ^
                        k[kl / 2] * 0x27d4eb2fu : 0;
        h = (h ^ (h >> 15)) & (cap - 1);
        for (;;) {
            uint32_t s = b->slots[h];
            if (s == 0) {
                b->slots[h] = (uint32_t) out + 1;
                it[out] = it[i];
                keys[out] = it[i].key;
                vals[out++] = it[i].val;
                break;
            }
            if (s_same_key(&it[s - 1], &it[i])) {
                vals[s - 1] = it[i].val;
                break;
            }
            h = (h + 1) & (cap - 1);
        }
    }
    return out;
}

static int
s_close_container(s_build_t *b)
{
    s_open_t *o = &b->open[--b->n_open];
    yajl_val v = o->node;
    size_t n = b->n_items - o->start;
    /* items stays NULL until a first value is read, and NULL + 0 is
     * undefined behaviour: an empty container takes no pointer into it. */
    s_item_t *it = n ? b->items + o->start : NULL;
    if (v->type == yajl_t_object) {
        const char **keys = sl_arena_alloc(b->a, (n ? n : 1) * sizeof *keys);
        yajl_val *vals = sl_arena_alloc(b->a, (n ? n : 1) * sizeof *vals);
        if (n > 1) {
            n = s_dedupe(b, it, n, keys, vals);
        } else if (n == 1) {
            keys[0] = it[0].key;
            vals[0] = it[0].val;
        }
        v->u.object.keys = keys;
        v->u.object.values = vals;
        v->u.object.len = n;
    } else {
        yajl_val *vals = sl_arena_alloc(b->a, (n ? n : 1) * sizeof *vals);
        for (size_t i = 0; i < n; i++)
            vals[i] = it[i].val;
        v->u.array.values = vals;
        v->u.array.len = n;
    }
    b->n_items = o->start;
    return s_add(b, v);
}

static int
s_on_end(void *ctx)
{
    s_build_t *b = ctx;
    if (b->skip) {
        b->skip--;
        return 1;
    }
    return s_close_container(b);
}

static const yajl_callbacks s_callbacks = {
    .yajl_null = s_on_null,
    .yajl_boolean = s_on_bool,
    .yajl_number = s_on_number,
    .yajl_string = s_on_string,
    .yajl_start_map = s_on_start_map,
    .yajl_map_key = s_on_key,
    .yajl_end_map = s_on_end,
    .yajl_start_array = s_on_start_array,
    .yajl_end_array = s_on_end,
};

/* yajl's own allocations (handle, lexer buffers, error text) also go to the
 * arena: each block carries its size so that realloc can copy it. */
static void *
s_ya_malloc(void *ctx, size_t sz)
{
    size_t *p = sl_arena_alloc(ctx, sz + sizeof(size_t));
    *p = sz;
    return p + 1;
}

static void *
s_ya_realloc(void *ctx, void *ptr, size_t sz)
{
    void *q = s_ya_malloc(ctx, sz);
    if (ptr) {
        size_t old = ((size_t *) ptr)[-1];
        memcpy(q, ptr, old < sz ? old : sz);
    }
    return q;
}

static void
s_ya_free(void *ctx, void *ptr)
{
    (void) ctx;
    (void) ptr;
}

static void
s_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* yajl's error text, on one line, into err. A parse that failed in
 * yajl_complete_parse ran out of input: yajl then counts 0 bytes consumed,
 * so the offset is the input's length. */
static void
s_parse_error(yajl_handle h, const char *buf, size_t len, int at_end, char *err,
              size_t errlen)
{
    unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *) buf, len);
    const char *m = msg ? (const char *) msg : "parse error";
    size_t n = strcspn(m, "\n");
    while (n > 0 && (m[n - 1] == ' ' || m[n - 1] == '\r'))
        n--;
    if (at_end)
        s_err(err, errlen, "invalid JSON: input ends inside a value (%.*s) (at byte %zu)",
              (int) n, m, len);
    else
        s_err(err, errlen, "invalid JSON: %.*s (at byte %zu)", (int) n, m,
              yajl_get_bytes_consumed(h));
    if (msg)
        yajl_free_error(h, msg);
}

yajl_val
sl_json_parse(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
              char *err, size_t errlen)
{
    return sl_json_parse_ex(a, buf, len, max_depth, NULL, err, errlen);
}

yajl_val
sl_json_parse_ex(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
                 sl_json_err_t *why, char *err, size_t errlen)
{
    return sl_json_parse_keep(a, buf, len, max_depth, NULL, NULL, why, err, errlen);
}

/* Where yajl accepted a text Python's json.loads refuses, or len: what
 * follows a root object or array ending at byte end must be JSON
 * whitespace (yajl takes an unterminated string after the root, {}"x, for
 * a token still being read), and a vertical tab or form feed, which yajl
 * counts as whitespace, may appear only inside strings. A scalar root is
 * only checked for the latter: it may end in yajl_complete_parse, whose
 * offsets are not the text's. Sets *what to the reason. */
static size_t
s_python_refuses(const char *buf, size_t len, yajl_val root, size_t end, const char **what)
{
    if (root->type == yajl_t_object || root->type == yajl_t_array) {
        for (size_t i = end; i < len; i++) {
            if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t') {
                *what = "garbage after the top-level value";
                return i;
            }
        }
    }
    if (!memchr(buf, '\v', len) && !memchr(buf, '\f', len))
        return len;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (buf[i] == '\\')
                i++;
            else if (buf[i] == '"')
                in_string = 0;
        } else if (buf[i] == '"') {
            in_string = 1;
        } else if (buf[i] == '\v' || buf[i] == '\f') {
            *what = "a vertical tab or form feed outside a string (JSON whitespace is space, "
                    "tab, CR and LF)";
            return i;
        }
    }
    return len;
}

/* Frees what a parse grew beyond its stack room. */
static void
s_build_release(s_build_t *b)
{
    if (b->items != b->stack_items)
        free(b->items);
    if (b->open != b->stack_open)
        free(b->open);
    free(b->slots);
}

static yajl_val
s_parse(sl_arena_t *a, const char *buf, size_t len, size_t max_depth, sl_json_keep_fn keep,
        void *keep_ud, int simd, sl_json_err_t *why, char *err, size_t errlen)
{
    /* outside b, so that initialising b does not zero them */
    s_item_t stack_items[S_STACK_ITEMS];
    s_open_t stack_open[S_STACK_OPEN];
    const s_build_t b0 = { .a = a, .max_depth = max_depth ? max_depth : SL_JSON_MAX_DEPTH,
                           .items = stack_items, .cap_items = S_STACK_ITEMS,
                           .stack_items = stack_items, .open = stack_open,
                           .cap_open = S_STACK_OPEN, .stack_open = stack_open, .keep = keep,
                           .keep_ud = keep_ud,
                           /* Only a byte >= 0x80 or a \u escape can make a string
                            * that is not strict UTF-8: a text with neither (most
                            * notifications) skips the check of each string */
                           .check_utf8 = !buf || !s_plain_ascii(buf, len) };
    s_build_t b = b0;
    /* simdjson reads the text first; yajl, the reference, reads it again
     * whenever that reading does not end in a tree, so that every error
     * (and every text simdjson declines) gets yajl's answer and message */
    if (simd) {
        sl_simd_status_t st = sl_json_simd_walk(buf, len, !b.check_utf8, &s_callbacks, &b);
        if (st == SL_SIMD_DONE && b.root && b.n_open == 0 && b.skip == 0) {
            if (why)
                *why = SL_JSON_OK;
            s_build_release(&b);
            return b.root;
        }
        s_build_release(&b);
        b = b0;
    }
    yajl_alloc_funcs af = { s_ya_malloc, s_ya_realloc, s_ya_free, a };
    if (why)
        *why = SL_JSON_E_SYNTAX;
    yajl_handle h = yajl_alloc(&s_callbacks, &af, &b);
    if (!h) {
        s_err(err, errlen, "cannot allocate a JSON parser");
        return NULL;
    }
    b.h = h;
    /* s_utf8_ok checks every string and key strictly, so that all bad
     * UTF-8 counts as such (yajl's check is lax and skips keys) */
    yajl_config(h, yajl_dont_validate_strings, 1);
    yajl_val root = NULL;
    int at_end = 0;
    yajl_status st = yajl_parse(h, (const unsigned char *) (buf ? buf : ""), len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
        at_end = st != yajl_status_ok;
    }
    /* yajl read one whole value; Python may still refuse the text */
    int whole = st == yajl_status_ok && b.root && b.n_open == 0;
    const char *refused = NULL;
    size_t at = whole ? s_python_refuses(buf, len, b.root, b.root_end, &refused) : len;
    if (whole && at == len) {
        root = b.root;
    } else if (whole) {
        s_err(err, errlen, "invalid JSON: %s (at byte %zu)", refused, at);
    } else if (b.why == SL_JSON_E_DEPTH) {
        s_err(err, errlen, "invalid JSON: nested deeper than %zu levels", b.max_depth);
    } else if (b.why == SL_JSON_E_UTF8) {
        s_err(err, errlen, "invalid UTF-8 in a string or key near byte %zu (byte %zu of "
              "the string); fix the producer's encoding", yajl_get_bytes_consumed(h), b.bad_at);
    } else if (b.why == SL_JSON_E_BIGINT) {
        s_err(err, errlen, "invalid JSON: an integer of more than %d digits near byte %zu "
              "(Python's json.loads refuses it too)", SL_PY_INT_MAX_STR_DIGITS,
              yajl_get_bytes_consumed(h));
    } else if (st == yajl_status_ok) {
        s_err(err, errlen, "invalid JSON: empty input");
    } else {
        s_parse_error(h, buf ? buf : "", len, at_end, err, errlen);
    }
    if (why)
        *why = root ? SL_JSON_OK : b.why ? b.why : SL_JSON_E_SYNTAX;
    yajl_free(h);
    s_build_release(&b);
    return root;
}

yajl_val
sl_json_parse_keep(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
                   sl_json_keep_fn keep, void *keep_ud, sl_json_err_t *why, char *err,
                   size_t errlen)
{
    return s_parse(a, buf, len, max_depth, keep, keep_ud, 1, why, err, errlen);
}

yajl_val
sl_json_parse_keep_yajl(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
                        sl_json_keep_fn keep, void *keep_ud, sl_json_err_t *why, char *err,
                        size_t errlen)
{
    return s_parse(a, buf, len, max_depth, keep, keep_ud, 0, why, err, errlen);
}

/* 1 if buf is all ASCII and holds no "\u". Sixteen bytes at a time where
 * SSE2 exists (every x86-64), else eight: a block with no high bit and no
 * backslash needs no closer look. */
static int
s_plain_ascii(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *) buf;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i bs = _mm_set1_epi8('\\');
    while (i + 16 <= len) {
        __m128i w = _mm_loadu_si128((const __m128i *) (s + i));
        if (_mm_movemask_epi8(w))
            return 0;
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(w, bs)))
            for (size_t k = i; k < i + 16; k++)
                if (s[k] == '\\' && k + 1 < len && s[k + 1] == 'u')
                    return 0;
        i += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (i + 8 <= len) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & highs)
            return 0;
        uint64_t x = w ^ (ones * '\\');
        if (((x - ones) & ~x & highs) != 0)     /* a backslash in this word */
            for (size_t k = i; k < i + 8; k++)
                if (s[k] == '\\' && k + 1 < len && s[k + 1] == 'u')
                    return 0;
        i += 8;
    }
#endif
    for (; i < len; i++) {
        if (s[i] >= 0x80 || (s[i] == '\\' && i + 1 < len && s[i + 1] == 'u'))
            return 0;
    }
    return 1;
}

size_t
sl_utf8_check(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *) buf;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs a word at a time: nearly all of a notification */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;      /* bounds of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0)
                lo = 0xa0;                  /* overlong */
            else if (c == 0xed)
                hi = 0x9f;                  /* UTF-16 surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0)
                lo = 0x90;                  /* overlong */
            else if (c == 0xf4)
                hi = 0x8f;                  /* past U+10FFFF */
        } else {
            return i;                       /* C0, C1, F5..FF, stray continuation */
        }
        if (i + n > len || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        i += n;
    }
    return len;
}
