/* pycompat — the Python behaviours Ceilometer's conversion leans on.
 *
 * Ceilometer's output is whatever CPython, PyYAML, iso8601 and jsonpath-rw
 * make of a value: `str()` of a dict, `float("1_0")`, `int(" 7 ")`,
 * `repr(0.1 * 3)`, a YAML `yes` being True, `2014-05-3107: 19: 43` not
 * being a date. The meters, events and jsonpath modules share these
 * reproductions. Values are yajl trees (a JSON number whose text has `.`,
 * `e` or `E` is a Python float, any other number an int).
 *
 * sl_py_t holds compiled patterns; it is immutable once made and may be
 * shared between threads. Strings and values returned live in the caller's
 * arena. Any process. */
#ifndef SL_PYCOMPAT_H
#define SL_PYCOMPAT_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "common/arena.h"
#include "common/json.h"
#include "common/yconf.h"

typedef struct sl_py sl_py_t;

/* NULL only if PCRE2 cannot compile the built-in patterns. */
sl_py_t *sl_py_new(void);
void sl_py_destroy(sl_py_t **py_p);

/* ---- YAML scalars as PyYAML's SafeLoader types them -------------------- */

typedef enum {
    SL_PY_Y_STR, SL_PY_Y_NULL, SL_PY_Y_BOOL, SL_PY_Y_INT, SL_PY_Y_FLOAT,
    SL_PY_Y_TIMESTAMP, SL_PY_Y_OTHER,       /* OTHER: a list or a mapping */
} sl_py_ytype_t;

/* A missing node is NULL (None). */
sl_py_ytype_t sl_py_ytype(const sl_py_t *py, const sl_ynode_t *n);
/* PyYAML's construct_yaml_int (0b, 0x, 0, sexagesimal, `_`). -1 if it
 * does not fit 64 bits. */
int sl_py_yint(const char *text, long long *out);
/* Python truthiness of the value (`if cfg.get(x):`). */
int sl_py_ytruthy(const sl_py_t *py, const sl_ynode_t *n);
/* The value as JSON (ints, floats, bools, null, strings, lists, maps;
 * timestamps as their text). */
yajl_val sl_py_yvalue(const sl_py_t *py, const sl_ynode_t *n, sl_arena_t *a);

/* ---- dates: oslo timeutils.parse_isotime (iso8601 2.x) ------------------ */

typedef struct {
    int  year, month, day, hour, minute, second;
    long micro;
    int  offset;                /* minutes east of UTC */
} sl_py_dt_t;

/* iso8601.parse_date(s) with UTC as the default zone. -1 where Python
 * raises (no match, a field out of range). */
int sl_py_parse_isotime(const sl_py_t *py, const char *s, sl_py_dt_t *out);
/* datetime.isoformat(): `...T..:..:..[.ffffff]` plus `+HH:MM` if aware. */
const char *sl_py_dt_isoformat(sl_arena_t *a, const sl_py_dt_t *t, int aware);
/* Microseconds since 0001-01-01T00:00:00 UTC. */
int64_t sl_py_dt_utc_us(const sl_py_dt_t *t);
/* timeutils.normalize_time: the same instant in UTC (offset 0). -1 if it
 * falls outside years 1..9999 (OverflowError). */
int sl_py_dt_to_utc(sl_py_dt_t *t);

/* ---- numbers and strings ----------------------------------------------- */

/* 1 if v is a JSON number Python reads as a float. */
int sl_py_is_float(yajl_val v);
/* float(str). -1 on ValueError. */
int sl_py_float_str(const char *s, double *out);
/* int(str), as canonical decimal text (up to SL_PY_INT_MAX_STR_DIGITS, json.h,
 * digits). NULL on ValueError: callers must check. */
const char *sl_py_int_str(sl_arena_t *a, const char *s);
/* repr(float): shortest round-trip digits, Python's layout; inf, nan. */
const char *sl_py_float_repr(sl_arena_t *a, double d);
/* The same into buf (at most 24 characters and the NUL); returns the length. */
int sl_py_float_repr_buf(char buf[32], double d);
/* The JSON text json.dumps writes for a float (Infinity, NaN). */
const char *sl_py_float_json(sl_arena_t *a, double d);
/* str(v) and repr(v) of the Python value json.loads gives for v. */
const char *sl_py_str(sl_arena_t *a, yajl_val v);
const char *sl_py_repr(sl_arena_t *a, yajl_val v);
/* Python ==: numbers by value across int, float and bool (True == 1),
 * lists in order, dicts as maps. */
int sl_py_equal(yajl_val a, yajl_val b);
/* New values in a. The number text is used as given. */
yajl_val sl_py_new_number(sl_arena_t *a, const char *text);
yajl_val sl_py_new_int(sl_arena_t *a, long long v);
yajl_val sl_py_new_float(sl_arena_t *a, double d);
yajl_val sl_py_new_bool(sl_arena_t *a, int v);
/* Number of code points of a UTF-8 string; byte length of its first max. */
size_t sl_py_strlen(const char *s);
size_t sl_py_prefix(const char *s, size_t max);

/* ---- regular expressions ----------------------------------------------- */

/* A Python `re` pattern compiled with PCRE2 (UTF, UCP; `\Z` made `\z`);
 * opts adds PCRE2 options (PCRE2_ANCHORED for re.match). NULL with a
 * message in err. */
pcre2_code *sl_py_re_compile(const char *pattern, uint32_t opts, char *err, size_t errlen);

#endif
