/* json — small helpers over yajl trees and generators. Any process.
 *
 * Trees (yajl_val) are owned by whoever parsed them; these helpers only
 * read them. sl_json_parse() builds trees in an arena instead of yajl's one
 * malloc per node: such trees are freed with the arena, never with
 * yajl_tree_free(). Both kinds have the same shape, so every reader here
 * works on either. */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"
#include "common/buf.h"

/* Deepest nesting sl_json_parse accepts by default. yajl_gen refuses to
 * write more than 128 levels, and a payload is re-serialised one level
 * deeper than it was read (inside resource_metadata), so anything deeper
 * could be read but never published. Python's json accepts ~1000 levels;
 * real notifications use fewer than 20. */
#define SL_JSON_MAX_DEPTH 120

/* Python's default sys.int_max_str_digits: int() of a longer decimal
 * string, and json.loads() of a longer integer literal, raise ValueError. */
#define SL_PY_INT_MAX_STR_DIGITS 4300

/* Value of key in object obj (exact match), or NULL. If a tree from
 * yajl_tree_parse holds the key twice, the last one wins, as in Python. */
yajl_val sl_json_get(yajl_val obj, const char *key);
/* The string of a JSON string value, or NULL if v is not a string. */
const char *sl_json_str(yajl_val v);
/* Writes v (any JSON value) into g. Returns 0 or -1. */
int sl_json_gen_val(yajl_gen g, yajl_val v);
/* Inserts already-serialised JSON text as one value. yajl has no raw-value
 * call; yajl_gen_number writes its argument verbatim and updates the
 * generator's separators correctly, so it serves for any complete value. */
int sl_json_gen_raw(yajl_gen g, const char *json, size_t len);
/* A string value (not a key: yajl takes only yajl_gen_string there),
 * written exactly as yajl_gen_string writes it, faster when it needs no
 * escape. Returns 0 or -1. */
int sl_json_gen_strv(yajl_gen g, const char *s, size_t len);
/* A string value (a key, in a map's key position); NULL gives null. */
void sl_json_gen_str(yajl_gen g, const char *s);
/* An unsigned 64-bit number, exactly (yajl_gen_integer takes long long). */
void sl_json_gen_u64(yajl_gen g, uint64_t v);
/* ---- JSON text straight into a buffer ----------------------------------
 * The same text an unbeautified yajl_gen writes for the same calls (',' and
 * ':' with no spaces), appended to an sl_buf_t without yajl's state machine
 * and its one call per token, which were a quarter of a pipeline worker's
 * CPU writing samples. yajl still writes what needs care: a string with a
 * character to escape goes through yajl_gen_string and a double without its
 * source text through yajl_gen_double, both in *scratch (made on first use,
 * reset for each value; the caller frees it with yajl_gen_free). */
/* A string value or key, with its quotes. Punctuation and text that is
 * already JSON (resource_metadata, volume_json) go in with sl_buf_put. */
void sl_json_put_str(sl_buf_t *b, yajl_gen *scratch, const char *s, size_t len);
/* A NUL-terminated string value; NULL gives null. */
void sl_json_put_strz(sl_buf_t *b, yajl_gen *scratch, const char *s);
/* Any value, as sl_json_gen_val writes it; NULL gives null. -1 where
 * yajl_gen fails (a non-finite double, nesting past 127 levels): b then
 * holds part of the value. */
int sl_json_put_val(sl_buf_t *b, yajl_gen *scratch, yajl_val v);

/* Serialises v as compact JSON text allocated in a. NULL v gives "null". */
char *sl_json_dump(sl_arena_t *a, yajl_val v);
/* Text of a scalar as Ceilometer would turn it into a string field
 * (strings as is, numbers as written, true/false, NULL for null/absent);
 * objects and arrays are serialised as JSON. Allocated in a. */
char *sl_json_scalar_text(sl_arena_t *a, yajl_val v);

/* Parses buf[0..len) (no terminating NUL needed) into a tree allocated in
 * a, with the semantics of Python's json.loads where yajl differs: an
 * object holding a key twice keeps one entry, at the first position, with
 * the last value. Nesting deeper than max_depth (0 = SL_JSON_MAX_DEPTH) is
 * an error. Returns NULL with a one-line reason in err. Strings holding
 * \u0000 are cut there (yajl trees hold C strings). */
yajl_val sl_json_parse(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
                       char *err, size_t errlen);
/* Why sl_json_parse_ex failed. */
typedef enum {
    SL_JSON_OK = 0,
    SL_JSON_E_SYNTAX,   /* not JSON, truncated or empty */
    SL_JSON_E_DEPTH,    /* nested deeper than max_depth */
    SL_JSON_E_UTF8,     /* a string or key is not strict UTF-8 (RFC 3629) */
    SL_JSON_E_BIGINT    /* an integer literal of more than 4300 digits, which
                         * Python's json.loads refuses (int_max_str_digits) */
} sl_json_err_t;

/* sl_json_parse, telling why it failed through why (may be NULL). Every
 * string and key of a returned tree is strict UTF-8. */
yajl_val sl_json_parse_ex(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
                          sl_json_err_t *why, char *err, size_t errlen);
/* Decides, for each key of the top-level object, whether its value goes
 * in the tree: 0 leaves the key out as if it were absent. */
typedef int (*sl_json_keep_fn)(const char *key, size_t len, void *ud);
/* sl_json_parse_ex keeping only the top-level keys keep accepts (keep
 * NULL: all). A value left out is still read in full and checked like any
 * other (syntax, depth, UTF-8, integer size): a text fails here exactly
 * when it fails sl_json_parse_ex, and for the same reason. */
yajl_val sl_json_parse_keep(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
                            sl_json_keep_fn keep, void *keep_ud, sl_json_err_t *why,
                            char *err, size_t errlen);
/* sl_json_parse_keep reads a text with simdjson first (common/json_simd.h)
 * and falls back to yajl whenever that does not end in a tree; this is
 * the same parse with yajl alone, the reference the fast path must equal
 * (tests and benchmarks compare the two). */
yajl_val sl_json_parse_keep_yajl(sl_arena_t *a, const char *buf, size_t len, size_t max_depth,
                                 sl_json_keep_fn keep, void *keep_ud, sl_json_err_t *why,
                                 char *err, size_t errlen);
/* Length of the longest prefix of buf[0..len) that is strict UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF);
 * len when all of it is. */
size_t sl_utf8_check(const char *buf, size_t len);

/* Python truthiness of the value json.loads would give: null, false, 0,
 * 0.0, "", [] and {} are false; NULL (absent) is false. */
int sl_json_truthy(yajl_val v);
/* Deep equality of two JSON values: objects as unordered maps, arrays in
 * order, numbers by value (1 == 1.0, as Python's ==), every other kind
 * only equal to the same kind (unlike Python, true != 1). NULL == NULL. */
int sl_json_equal(yajl_val a, yajl_val b);
/* A string value made in a (for values a JSONPath or a converter creates). */
yajl_val sl_json_new_string(sl_arena_t *a, const char *s, size_t len);

#endif
