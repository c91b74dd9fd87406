/* jsonpath — compiled JSONPath expressions evaluated over yajl trees.
 *
 * Supported now: `$.a.b.c`, `a.b` and `payload.x` (the `$.` is optional, as
 * in Ceilometer's definitions), quoted keys (`$.a.'b.c'`, `$['a']`), array
 * indexes `[0]` / `[-1]`, wildcards `[*]` / `.[*]` / `.*`. The compiled form
 * is a list of steps so that filters, unions and functions (the full
 * jsonpath-rw-ext dialect) can be added as new step kinds. The compiled path
 * owns its memory; results borrow from the tree. Any process. */
#ifndef SL_JSONPATH_H
#define SL_JSONPATH_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

typedef struct sl_jsonpath sl_jsonpath_t;

/* NULL on a syntax error, with a message (no file:line; the caller adds it). */
sl_jsonpath_t *sl_jsonpath_compile(const char *expr, char *err, size_t errlen);
void sl_jsonpath_destroy(sl_jsonpath_t **path_p);
const char *sl_jsonpath_text(const sl_jsonpath_t *path);

/* Fills up to max matches in document order; returns the number of matches
 * found (may exceed max: only max are stored). */
size_t sl_jsonpath_eval(const sl_jsonpath_t *path, yajl_val root, yajl_val *out, size_t max);
/* First match or NULL. */
yajl_val sl_jsonpath_first(const sl_jsonpath_t *path, yajl_val root);

#endif
