/* pipeline — Ceilometer's pipeline.yaml (sources -> sinks) and routing.
 *
 * sources: [{name, meters: [globs, or only `!` exclusions], sinks: [names]}]
 * sinks:   [{name, transformers: [{name, parameters}], publishers: [urls],
 *            reorder_window: ms (sluice extension)}]
 * Ceilometer's rules: meters must not be empty, must not mix included and
 * excluded patterns, and `*` may not be combined with other includes;
 * exclusions are checked first; a list of only exclusions allows the rest.
 * Globs are matched as Python's fnmatch (sl_pipeline_fnmatch). Every sink a
 * source names must exist; sink and source names are unique; a sink needs
 * at least one publisher. Unlike Ceilometer, unknown keys are errors (so a
 * typo is not silently ignored); every error reads "file:line: message".
 *
 * Transformers are recorded (name, parameters node, grouping keys) but run
 * elsewhere (worker/transform). A sink is *stateful* if any of its
 * transformers keeps state; its samples are then partitioned by the union of
 * the grouping keys (resource_id for every built-in transformer). What a
 * transformer is, the loader learns from a lookup callback over the one
 * transformer registry (worker/transform.c sl_transform_lookup): common/
 * does not know the transformers. Loaded without one (sluice.yaml's
 * loader, programs built on common/ alone), names are not checked and
 * every transformer counts as stateful by resource_id, until
 * sl_pipeline_resolve (sl_transform_check calls it).
 *
 * The pipeline keeps the YAML document alive (transformer parameters point
 * into it). Immutable after load; sl_pipeline_destroy frees it. Any process. */
#ifndef SL_PIPELINE_H
#define SL_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include "common/sample.h"
#include "common/yconf.h"

#define SL_MAX_SINKS 64

typedef struct {
    const char       *name;
    const sl_ynode_t *parameters;   /* NULL if none */
    int               line;
    int               name_line;    /* of its `name:` */
} sl_transformer_conf_t;

typedef struct {
    const char *name;
    int         line;
    size_t      n_transformers;
    sl_transformer_conf_t *transformers;
    size_t      n_publishers;
    const char **publishers;
    int         stateful;
    unsigned    reorder_window_ms;  /* sluice extension; 0 = off */
    size_t      n_keys;             /* grouping keys (sample field names) */
    const char **keys;
} sl_sink_t;

struct sl_glob;

typedef struct {
    const char *name;
    int         line;
    size_t      n_meters;
    const char **meters;            /* patterns as written, `!` kept */
    size_t      n_sinks;
    uint16_t   *sinks;              /* indexes into sl_pipeline_t.sinks */
    const struct sl_glob *globs;    /* meters compiled (pipeline.c's own); NULL
                                     * in a hand-built source: then compiled per call */
} sl_source_t;

typedef struct sl_pipeline {
    sl_ydoc_t   *doc;
    size_t       n_sources;
    sl_source_t *sources;
    size_t       n_sinks;
    sl_sink_t   *sinks;
} sl_pipeline_t;

/* What the loader needs to know of a transformer: -1 for a name the
 * registry does not have, else 0 with *stateful (1: it keeps state across
 * samples, so the sink's samples are partitioned by group) and *keys (its
 * grouping keys, sample field names, NULL-terminated; static). */
typedef int (*sl_transformer_lookup_fn)(const char *name, int *stateful,
                                        const char *const **keys);

/* kind: "meters" for pipeline.yaml, "events" for event_pipeline.yaml (the
 * key holding the patterns). NULL on error with "file:line: message". Keys
 * Ceilometer does not read are warnings through warn (yconf.h; errors in
 * strict mode). lookup may be NULL (see above). */
sl_pipeline_t *sl_pipeline_load_with(const char *path, const char *kind,
                                     sl_transformer_lookup_fn lookup, sl_ywarn_t *warn,
                                     char *err, size_t errlen);
sl_pipeline_t *sl_pipeline_parse_with(const char *buf, size_t len, const char *name,
                                      const char *kind, sl_transformer_lookup_fn lookup,
                                      sl_ywarn_t *warn, char *err, size_t errlen);
/* Checks every transformer name against lookup ("file:line: unknown
 * transformer 'x' in sink 's'") and sets each sink's stateful and keys.
 * 0 or -1. */
int sl_pipeline_resolve(sl_pipeline_t *p, sl_transformer_lookup_fn lookup, char *err,
                        size_t errlen);

/* The same loaders with this program's transformer registry: defined in
 * worker/transform.c, so only programs linking the worker library have
 * them. */
sl_pipeline_t *sl_pipeline_load(const char *path, const char *kind, sl_ywarn_t *warn,
                                char *err, size_t errlen);
sl_pipeline_t *sl_pipeline_parse(const char *buf, size_t len, const char *name,
                                 const char *kind, sl_ywarn_t *warn, char *err, size_t errlen);
void sl_pipeline_destroy(sl_pipeline_t **p_p);

/* Python's fnmatch.fnmatch(name, pattern) on POSIX: `*`, `?`, `[seq]`,
 * `[!seq]`, no escapes, case-sensitive, `?` and sets match one code point
 * (UTF-8). The meter patterns of a source use it (after their `!`). */
int sl_pipeline_fnmatch(const char *name, const char *pattern);

/* Ceilometer's Source.is_supported(patterns, name). */
int sl_pipeline_source_selects(const sl_source_t *src, const char *name);

/* Indexes of the sinks that receive a sample named `name` (each sink once,
 * in sink order) written to out; returns how many. */
size_t sl_pipeline_route(const sl_pipeline_t *p, const char *name, uint16_t *out, size_t max);

/* Stable hash of the sink's grouping-key values of s (values concatenated,
 * missing as ""), as TRANSFORMERS.md section 10 describes. */
uint64_t sl_pipeline_group_hash(const sl_sink_t *sink, const sl_sample_t *s);

/* Whether a transformer name is one sluice knows, and whether it keeps state.
 * Returns -1 for an unknown name, else 0 (stateless) or 1 (stateful).
 * Defined in worker/transform.c (the registry). */
int sl_transformer_kind(const char *name);

#endif
