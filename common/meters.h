/* meters — Ceilometer's meters.yaml: load once, convert notifications to samples.
 *
 * Loading compiles every definition: `event_type` patterns are Python
 * regular expressions anchored at the start (re.match) compiled with PCRE2;
 * field expressions are compiled JSONPath. Conversion follows Ceilometer 19's
 * meter endpoint: only `info` and `sample` priorities yield samples; samples
 * come out in reverse definition order; `metadata:` keeps truthy values and
 * otherwise falls back to a copy of the payload plus event_type and host;
 * `user_metadata` adds `metering.*` keys; user/project fall back to the
 * request context; timestamps are normalised to `...+00:00`; samples whose
 * volume is missing or not a number are skipped and counted.
 * Supported definition keys now: name, event_type, type, unit, volume,
 * resource_id, user_id, project_id, timestamp, metadata, user_metadata
 * (constants or JSONPath). Anything else is rejected at load with file:line.
 * Paths are written against Ceilometer's view of a notification (`$.ctxt.X`,
 * `$.metadata.message_id`) and evaluated on the oslo wire message: `ctxt.X`
 * is the wire key `_context_X`. Of two definitions with one name, the later
 * wins (a warning is logged). Non-string user_id / project_id /
 * resource_id / type / unit values become their JSON text.
 *
 * The loaded table is immutable and owned by the caller
 * (sl_meters_destroy). Conversion output lives in the caller's arena.
 * Any process. */
#ifndef SL_METERS_H
#define SL_METERS_H

#include <stddef.h>
#include <stdint.h>
#include "common/arena.h"
#include "common/envelope.h"
#include "common/sample.h"

typedef struct sl_meters sl_meters_t;

typedef struct {
    uint64_t no_definition;    /* notifications no definition matched */
    uint64_t skipped;          /* a matching definition yielded no sample (missing field, bad volume) */
    uint64_t samples;          /* samples produced */
    uint64_t failed;           /* notifications lost whole where Ceilometer raises (see below);
                                * their matching definitions also count in skipped */
    uint64_t other_priority;   /* notifications whose priority yields no samples */
} sl_convert_stats_t;

/* NULL on error with "file:line: message" in err. */
sl_meters_t *sl_meters_load(const char *path, char *err, size_t errlen);
sl_meters_t *sl_meters_parse(const char *buf, size_t len, const char *name,
                             char *err, size_t errlen);
void sl_meters_destroy(sl_meters_t **m_p);
size_t sl_meters_count(const sl_meters_t *m);

/* Writes the samples n yields to out[0..max) in Ceilometer's order and
 * returns how many (samples beyond max are counted as skipped). Every
 * string is allocated in a (source is a static "openstack"), so samples
 * outlive n and m; `id` is a fresh random UUID per sample. Where
 * Ceilometer 19 raises while building a notification's samples (a
 * timestamp iso8601 cannot parse, a JSONPath index on a non-list, a
 * non-object user_metadata, a volume that is an object or a list, a
 * computed name that is not a string), it publishes none of them: so
 * does this (returns 0, counts failed). Thread-safe on a shared table. */
size_t sl_meters_convert(const sl_meters_t *m, const sl_notification_t *n,
                         sl_arena_t *a, sl_sample_t *out, size_t max,
                         sl_convert_stats_t *stats);

#endif
