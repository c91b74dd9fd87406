/* defn — Ceilometer's declarative.Definition: one field of a meter or an
 * event trait, compiled once.
 *
 * A field is written as a JSONPath string, an integer (or boolean)
 * constant, a list of JSONPaths (joined as `(a)|(b)`, as Ceilometer does),
 * or a mapping `{fields: ..., plugin: NAME | {name: NAME, parameters:
 * {...}}}`. The plugins are Ceilometer's trait plugins (the
 * `ceilometer.event.trait_plugin` entry points): `split` (separator,
 * segment, max_split), `bitfield` (initial_bitfield, flags: [{path, bit,
 * value}]) and `timedelta` (two timestamps -> seconds between them).
 * Compile errors read "file:line: <what>: message". Evaluation follows
 * Definition.parse(): the first non-None match, or with `all` every match.
 *
 * The caller owns the sl_defn_t (sl_defn_free releases the compiled path);
 * strings and constants live in the arena given to sl_defn_compile.
 * Evaluation results live in the caller's arena. Any process. */
#ifndef SL_DEFN_H
#define SL_DEFN_H

#include <stddef.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"
#include "common/jsonpath.h"
#include "common/pycompat.h"
#include "common/yconf.h"

typedef enum { SL_DEFN_ABSENT = 0, SL_DEFN_CONST, SL_DEFN_PATH } sl_defn_kind_t;

typedef struct sl_tplugin sl_tplugin_t;

typedef struct {
    sl_defn_kind_t kind;
    yajl_val       constant;    /* SL_DEFN_CONST */
    sl_jsonpath_t *path;        /* SL_DEFN_PATH */
    sl_tplugin_t  *plugin;      /* NULL: none */
    const char    *text;        /* the JSONPath text as compiled */
} sl_defn_t;

/* Compiles node (what names the field in messages: "volume",
 * "metadata.host", "trait 'memory_mb'"). 0, or -1 with "file:line: ..." in
 * err. `rewrite`, if not NULL, may replace the JSONPath text before it is
 * compiled (returns NULL to keep it); the result is allocated in mem. */
typedef const char *(*sl_defn_rewrite_fn)(const char *text, sl_arena_t *mem);
/* flags: SL_DEFN_TRAIT lets the mapping form also carry `type` (a trait's
 * data type, read by the caller). */
#define SL_DEFN_TRAIT 1u
/* Keys Ceilometer does not read (in the mapping form or its plugin) are
 * warnings through warn (yconf.h). */
int sl_defn_compile(sl_defn_t *d, const sl_py_t *py, const sl_ynode_t *node, const char *what,
                    sl_arena_t *mem, unsigned flags, sl_defn_rewrite_fn rewrite,
                    sl_ywarn_t *warn, char *err, size_t errlen);
/* A JSONPath given as text (Ceilometer's built-in fields). */
int sl_defn_compile_text(sl_defn_t *d, const char *text, sl_arena_t *mem, char *err,
                         size_t errlen);
void sl_defn_free(sl_defn_t *d);
/* sl_jsonpath_reads_under of the field's path (0 for a constant). */
int sl_defn_reads_under(const sl_defn_t *d, const char *top,
                        void (*fn)(const char *key, void *ud), void *ud);

/* Definition.parse(obj, all): with all == 0, *out[0] is the first non-None
 * value and 1 is returned (0 when there is none); with all == 1, every
 * value (None ones too) and their count. A constant gives itself (count
 * 1) either way. -1 where Ceilometer raises (the JSONPath raises, a plugin
 * that cannot return several values is asked to). */
long sl_defn_parse(const sl_defn_t *d, const sl_py_t *py, yajl_val obj, sl_arena_t *a, int all,
                   yajl_val **out);

#endif
