/* json — small helpers over yajl trees and generators. Any process.
 *
 * Trees (yajl_val) are owned by whoever parsed them; these helpers only
 * read them. */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"

/* Value of key in object obj (exact match), or NULL. */
yajl_val sl_json_get(yajl_val obj, const char *key);
/* The string of a JSON string value, or NULL if v is not a string. */
const char *sl_json_str(yajl_val v);
/* Writes v (any JSON value) into g. Returns 0 or -1. */
int sl_json_gen_val(yajl_gen g, yajl_val v);
/* Inserts already-serialised JSON text as one value. yajl has no raw-value
 * call; yajl_gen_number writes its argument verbatim and updates the
 * generator's separators correctly, so it serves for any complete value. */
int sl_json_gen_raw(yajl_gen g, const char *json, size_t len);
/* Serialises v as compact JSON text allocated in a. NULL v gives "null". */
char *sl_json_dump(sl_arena_t *a, yajl_val v);
/* Text of a scalar as Ceilometer would turn it into a string field
 * (strings as is, numbers as written, true/false, NULL for null/absent);
 * objects and arrays are serialised as JSON. Allocated in a. */
char *sl_json_scalar_text(sl_arena_t *a, yajl_val v);

#endif
