/* jsonpath — compiled JSONPath expressions evaluated over yajl trees.
 *
 * Supported now: `$.a.b.c`, `a.b` and `payload.x` (the `$.` is optional, as
 * in Ceilometer's definitions), quoted keys (`$.a.'b.c'`, `$['a']`), array
 * indexes `[0]` / `[-1]`, wildcards `[*]` / `.[*]` / `.*`. The compiled form
 * is a list of steps so that filters, unions and functions (the full
 * jsonpath-rw-ext dialect) can be added as new step kinds. The compiled path
 * owns its memory; results borrow from the tree. Any process.
 *
 * Semantics are jsonpath-rw-ext 1.2.2's (what Ceilometer 19 runs), including
 * its lexer's quirks: a name starting with `true`/`false` or equal to
 * `where` must be quoted; `-` and `@` may appear inside names; `a,b` selects
 * several members; `.*` gives an object's values but `[*]` gives a list's
 * elements and any other value (object, string, int, bool) as itself; an
 * index on a string gives one character. Constructs of the full dialect
 * (`..`, filters, `|`, arithmetic, `` `functions` ``, slices, `where`) are
 * rejected with "... not supported yet". */
#ifndef SL_JSONPATH_H
#define SL_JSONPATH_H

#include <stddef.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"

typedef struct sl_jsonpath sl_jsonpath_t;

/* NULL on a syntax error, with a message (no file:line; the caller adds it). */
sl_jsonpath_t *sl_jsonpath_compile(const char *expr, char *err, size_t errlen);
void sl_jsonpath_destroy(sl_jsonpath_t **path_p);
const char *sl_jsonpath_text(const sl_jsonpath_t *path);

/* Fills up to max matches in document order; returns the number of matches
 * found (may exceed max: only max are stored). A step that would raise in
 * jsonpath-rw-ext matches nothing here, and an index on a string matches
 * nothing (no arena to make the character in); see sl_jsonpath_walk. */
size_t sl_jsonpath_eval(const sl_jsonpath_t *path, yajl_val root, yajl_val *out, size_t max);
/* First match or NULL. */
yajl_val sl_jsonpath_first(const sl_jsonpath_t *path, yajl_val root);

/* Called for each match in document order; nonzero stops the walk. */
typedef int (*sl_jsonpath_visit_fn)(yajl_val match, void *ud);
/* Visits every match. Values the path makes (a character of a string) are
 * allocated in a. Returns 0 when done or stopped by fn, and -1 as soon as
 * jsonpath-rw-ext would raise: an index on an object, a number, a boolean
 * or null, a negative index beyond the start of a list or string, `[*]` on
 * a float or null. Ceilometer then loses the whole notification. */
int sl_jsonpath_walk(const sl_jsonpath_t *path, yajl_val root, sl_arena_t *a,
                     sl_jsonpath_visit_fn fn, void *ud);

/* Step inspection and rewriting, for callers that map a path written for
 * one document layout onto another (meters.c: Ceilometer's
 * `$.ctxt.X` onto oslo's wire key `_context_X`). */
size_t sl_jsonpath_nsteps(const sl_jsonpath_t *path);
/* The member name if step i selects exactly one named member, else NULL. */
const char *sl_jsonpath_step_key(const sl_jsonpath_t *path, size_t i);
/* Replaces steps [0, n) with one step selecting member key. 0 or -1. */
int sl_jsonpath_replace_head(sl_jsonpath_t *path, size_t n, const char *key);

#endif
