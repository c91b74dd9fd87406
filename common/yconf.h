/* yconf — YAML files as a small tree that remembers line numbers.
 *
 * Every configuration file sluice reads (sluice.yaml, pipeline.yaml,
 * meters.yaml, event_definitions.yaml, ...) is loaded with libyaml into this
 * tree so that each loader can report `file:line: message`. Anchors and
 * aliases are expanded, and `<<` merge keys are applied as PyYAML does:
 * merged keys come first (of a list of mappings, earlier ones win), an
 * explicit key wins over a merged one and takes its place. Map keys must be scalars. The document
 * owns every node and string; sl_ydoc_destroy() frees them all. Any process.
 *
 * Limits, each refused with file:line as soon as it is crossed: one YAML
 * document per file (as PyYAML's safe_load), SL_YCONF_MAX_DEPTH levels of
 * nesting (aliases count as deep as what they refer to), SL_YCONF_MAX_NODES
 * nodes after alias expansion, and files of at most SL_YCONF_MAX_FILE bytes
 * that are regular files (not devices, FIFOs or directories). */
#ifndef SL_YCONF_H
#define SL_YCONF_H

#include <stddef.h>
#include <stdarg.h>
#include "common/arena.h"

#define SL_YCONF_MAX_DEPTH 64             /* nesting levels below the root */
#define SL_YCONF_MAX_NODES 1000000        /* nodes with aliases expanded */
#define SL_YCONF_MAX_FILE  (16u << 20)    /* bytes per file: 16 MiB */

typedef enum { SL_Y_SCALAR, SL_Y_SEQ, SL_Y_MAP } sl_ykind_t;

typedef struct sl_ydoc sl_ydoc_t;

typedef struct sl_ynode {
    sl_ykind_t   kind;
    int          line;          /* 1-based line where the node starts */
    const char  *value;         /* SL_Y_SCALAR: the text */
    int          plain;         /* SL_Y_SCALAR: unquoted (so `null`, `1` resolve) */
    size_t       n;             /* SEQ/MAP: number of items */
    struct sl_ynode **items;    /* SEQ: items; MAP: values */
    const char **keys;          /* MAP: keys */
    int         *key_lines;     /* MAP: line of each key */
    const sl_ydoc_t *doc;
} sl_ynode_t;

struct sl_ydoc {
    char       *file;
    sl_ynode_t *root;           /* NULL for an empty document */
    sl_arena_t  arena;
};

/* Load a file / parse a buffer. On error returns NULL and writes
 * "file:line: message" into err. An empty document gives root == NULL. */
sl_ydoc_t *sl_ydoc_load(const char *path, char *err, size_t errlen);
sl_ydoc_t *sl_ydoc_parse(const char *buf, size_t len, const char *name,
                         char *err, size_t errlen);
void sl_ydoc_destroy(sl_ydoc_t **doc_p);
/* Reads a whole configuration file (malloc'd, NUL-terminated, the caller
 * frees); NULL with "file:0: ..." in err. For loaders that parse the
 * text themselves (sl_meters_load, sl_events_load). Refuses what is not a
 * regular file and files over SL_YCONF_MAX_FILE, without blocking on a
 * FIFO or reading a device. */
char *sl_ydoc_read(const char *path, size_t *len, char *err, size_t errlen);
/* The same, for a caller that reports where the path was named: err gets
 * the reason alone, naming the file as `shown` ("cannot open nope.yaml:
 * No such file or directory", "/dev/zero is a character device, not a
 * regular file", "x.yaml is larger than 16 MiB, the limit for a
 * configuration file"), and errno says why: open(2)'s error, EINVAL (not
 * a regular file), EFBIG (too large) or EIO. */
char *sl_ydoc_read_file(const char *path, const char *shown, size_t *len, char *err,
                        size_t errlen);

/* Map lookup; NULL if node is not a map or has no such key. */
const sl_ynode_t *sl_ynode_get(const sl_ynode_t *map, const char *key);
/* True for a missing node, or a plain scalar `null`, `~` or empty. */
int sl_ynode_is_null(const sl_ynode_t *node);
/* Plain-scalar booleans as YAML 1.1 (true/false/yes/no/on/off); -1 if not one. */
int sl_ynode_bool(const sl_ynode_t *node);

/* Format "file:line: message" for node (or for the document if node is NULL)
 * into err; returns -1 so loaders can `return sl_yerr(...)`. */
int sl_yerr(const sl_ynode_t *node, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int sl_yerr_at(const char *file, int line, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Tolerated problems. What Ceilometer itself ignores, skips or swallows in
 * its own files (a key it does not know, a definition it cannot build, a
 * transformer parameter it never reads) is a warning with file:line and
 * the load goes on, as in Ceilometer; in strict mode the same text is an
 * error, for operators who want typos caught. The loaders take an
 * sl_ywarn_t * (NULL = tolerant, warnings to the log, uncounted). */
typedef struct sl_ywarn {
    int      strict;
    unsigned count;             /* warnings emitted */
    /* where a warning goes ("file:line: message"); NULL = sl_warn() */
    void   (*emit)(void *arg, const char *text);
    void    *arg;
} sl_ywarn_t;

/* Tolerant: emits "file:line: message" (w->count++) and returns 0. Strict:
 * formats it into err (with " (an error because of --strict / strict:
 * true)") and returns -1, so callers write
 *   if (sl_ywarn_at(w, file, line, err, errlen, "ignored key '%s'", k) < 0)
 *       return -1; */
int sl_ywarn_at(sl_ywarn_t *w, const char *file, int line, char *err, size_t errlen,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int sl_ywarn(sl_ywarn_t *w, const sl_ynode_t *node, char *err, size_t errlen,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
