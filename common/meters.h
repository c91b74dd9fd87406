/* meters — Ceilometer's meters.yaml: load once, convert notifications to samples.
 *
 * The whole of Ceilometer 19's meter endpoint (ceilometer/meter/
 * notifications.py) is reproduced, quirks included, so that the stock
 * meters.yaml loads unmodified and gives what Ceilometer gives: `event_type`
 * patterns are Python regular expressions anchored at the start (re.match,
 * PCRE2); every field is a declarative Definition (common/defn.h: JSONPath,
 * constant, list, `{fields, plugin}`) evaluated on Ceilometer's view of the
 * message (sl_notification_view); name, type and unit are JSONPaths whose
 * text is also the default; `lookup` definitions give one sample per
 * element; only `info` and `sample` priorities yield samples; samples come
 * out in reverse definition order; `metadata:` keeps truthy values and
 * otherwise falls back to a copy of the payload plus event_type and host;
 * `user_metadata` adds `metering.*` keys; user/project fall back to
 * Ceilometer's (mis-parsed) context paths; timestamps are normalised to
 * `...+00:00`; samples whose volume is None or not a number are dropped
 * and counted; where Ceilometer raises, the notification's samples are all
 * lost (counted). Of two definitions with one name, the later wins.
 *
 * The other sample endpoints Ceilometer 19 loads (`ceilometer.sample.
 * endpoint`) run too, before the meters, in its order: telemetry.polling
 * (samples the polling agent sends as notifications), the four
 * hardware.ipmi.* sensor endpoints (Current, Fan, Temperature, Voltage) and
 * http.request / http.response. Each endpoint loses only its own samples
 * where Ceilometer raises.
 *
 * One deliberate deviation: a JSONPath of the form `A - A + REST` (the
 * stock identity.authenticate name, a "hack because jsonpath-rw-ext can't
 * concat starting with string" that jsonpath-rw-ext 1.2.2 never evaluates,
 * so Ceilometer publishes the expression text as the name) is evaluated as
 * REST: `identity.authenticate.<outcome>`.
 *
 * Unlike Ceilometer, which logs and skips a broken definition, loading
 * fails on any error with "file:line: message": unknown keys, bad
 * JSONPath, bad plugin name or parameters, bad regular expression.
 *
 * The loaded table is immutable and owned by the caller
 * (sl_meters_destroy); it may be shared between threads. Conversion output
 * lives in the caller's arena. Any process. */
#ifndef SL_METERS_H
#define SL_METERS_H

#include <stddef.h>
#include <stdint.h>
#include "common/arena.h"
#include "common/envelope.h"
#include "common/sample.h"
#include "common/yconf.h"
#include <yajl/yajl_tree.h>

typedef struct sl_meters sl_meters_t;

typedef struct {
    uint64_t no_definition;    /* notifications no definition matched */
    uint64_t skipped;          /* a matching definition yielded no sample (missing field, bad volume) */
    uint64_t samples;          /* samples produced */
    uint64_t failed;           /* notifications lost whole where Ceilometer raises (see below);
                                * their matching definitions also count in skipped */
    uint64_t other_priority;   /* notifications whose priority yields no samples */
} sl_convert_stats_t;

/* NULL on error with "file:line: message" in err. As in Ceilometer, a
 * definition that cannot be built (a required field missing, an invalid
 * type, a bad JSONPath or plugin) is skipped and the others are served,
 * and keys Ceilometer does not read are ignored: each is a warning
 * through warn (yconf.h; an error in strict mode). An event_type that is
 * not a valid regular expression stays an error (Ceilometer fails). */
sl_meters_t *sl_meters_load(const char *path, sl_ywarn_t *warn, char *err, size_t errlen);
sl_meters_t *sl_meters_parse(const char *buf, size_t len, const char *name, sl_ywarn_t *warn,
                             char *err, size_t errlen);
void sl_meters_destroy(sl_meters_t **m_p);
/* What the definitions may read under the view's top-level key top (see
 * sl_jsonpath_reads_under): 1 for anything, else 0 after fn for each key
 * read by name. */
int sl_meters_reads_under(const sl_meters_t *m, const char *top,
                          void (*fn)(const char *key, void *ud), void *ud);
size_t sl_meters_count(const sl_meters_t *m);

/* A sample as Ceilometer builds it, before it becomes an sl_sample_t:
 * each field is the Python value (as JSON; NULL for None), so that a
 * converter can print exactly what Ceilometer publishes (a unit that is an
 * int in the payload stays an int). */
typedef struct {
    yajl_val    name;           /* always a string */
    yajl_val    type, unit, volume, user_id, project_id, resource_id;
    yajl_val    timestamp;      /* a string: isoformat(), e.g. 2023-03-14T09:26:53.589793+00:00
                                 * (telemetry.polling samples: as sent) */
    yajl_val    source;         /* NULL: sample_source applies (default "openstack") */
    const char *resource_metadata;  /* JSON text (an object, but for telemetry.polling) */
} sl_meters_sample_t;

/* The source sl_meters_convert gives samples that take Ceilometer's
 * sample_source option ("openstack"); a caller applying its configured
 * sample_source replaces exactly this pointer (telemetry.polling samples
 * carry their own). */
extern const char sl_meters_default_source[];

/* Writes the samples n yields to out[0..max) in Ceilometer's order and
 * returns how many (samples beyond max are counted as skipped). Every
 * value lives in a or in n. Thread-safe on a shared table. */
size_t sl_meters_convert_values(const sl_meters_t *m, const sl_notification_t *n,
                                sl_arena_t *a, sl_meters_sample_t *out, size_t max,
                                sl_convert_stats_t *stats);

/* The same as sl_sample_t (what the ingest worker routes): every string is
 * allocated in a (source is sl_meters_default_source or the sample's own),
 * so samples outlive n and m; `id` is a fresh random UUID per sample;
 * non-string type, unit, user_id, project_id, resource_id and timestamp
 * become their JSON text. */
size_t sl_meters_convert(const sl_meters_t *m, const sl_notification_t *n,
                         sl_arena_t *a, sl_sample_t *out, size_t max,
                         sl_convert_stats_t *stats);

#endif
