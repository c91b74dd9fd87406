/* events — Ceilometer's event_definitions.yaml: load once, convert
 * notifications to events.
 *
 * Ceilometer 19's event converter (ceilometer/event/converter.py) is
 * reproduced: `event_type` lists are fnmatch globs with `!` exclusions (only
 * exclusions: everything else); the LAST definition of the file that
 * matches wins, and a catch-all `*` with no traits is added when none
 * exists (drop_unmatched_notifications = False); every event gets the
 * default traits service, request_id, project_id, user_id and tenant_id
 * first (a definition may redefine them in place), then its own in file
 * order (YAML `<<` merges as PyYAML orders them); traits are text
 * (str()[:255]), int (int()), float (float()) or datetime
 * (normalize_time(parse_isotime())); a trait with no value, or an empty
 * string for a non-text type, is left out; a value the conversion cannot
 * take (int("x"), a bad date) drops the whole event, as does a malformed
 * notification timestamp (`generated`). Only the `info` and `error`
 * priorities yield events. Trait values are found with common/defn.h
 * (JSONPath, lists, plugins split / bitfield / timedelta) on Ceilometer's
 * view of the message.
 *
 * Loading fails with "file:line: message" on a YAML error, an unknown key,
 * a missing event_type or traits, a bad JSONPath, a bad plugin name or
 * parameter, or an unknown trait type (Ceilometer would log and skip
 * some of these).
 *
 * The loaded table is immutable, owned by the caller (sl_events_destroy),
 * and may be shared between threads. Events live in the caller's arena.
 * Any process. */
#ifndef SL_EVENTS_H
#define SL_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"
#include "common/buf.h"
#include "common/envelope.h"
#include "common/yconf.h"

typedef struct sl_events sl_events_t;

/* models.Trait type codes, as the oracle prints them. */
typedef enum {
    SL_TRAIT_NONE = 0, SL_TRAIT_TEXT = 1, SL_TRAIT_INT = 2, SL_TRAIT_FLOAT = 3,
    SL_TRAIT_DATETIME = 4,
} sl_trait_type_t;

typedef struct {
    const char     *name;
    sl_trait_type_t dtype;
    /* TEXT and DATETIME: a string (datetime as isoformat(), naive UTC);
     * INT: an integer number (any size); FLOAT: a number (Infinity and
     * NaN spelled as Python's json writes them). */
    yajl_val        value;
} sl_trait_t;

typedef struct {
    const char *event_type;
    const char *message_id;
    const char *generated;      /* isoformat() of the UTC timestamp, no offset */
    size_t      n_traits;
    sl_trait_t *traits;
    /* [event] store_raw: the notification as Ceilometer's endpoint got it
     * (sl_notification_view) when store_raw names its priority; NULL = {}
     * (Ceilometer's default), and then it is not written at all. */
    yajl_val    raw;
} sl_event_t;

typedef struct {
    uint64_t events;            /* events produced */
    uint64_t no_definition;     /* no definition matched (only with no catch-all) */
    uint64_t failed;            /* dropped: a trait or the timestamp could not be converted */
    uint64_t other_priority;    /* priority is neither info nor error */
} sl_event_stats_t;

/* NULL on error with "file:line: message" in err. Ceilometer refuses to
 * start on a definition it cannot build, so sluice does too; keys it does
 * not read are warnings through warn (yconf.h; errors in strict mode). */
sl_events_t *sl_events_load(const char *path, sl_ywarn_t *warn, char *err, size_t errlen);
sl_events_t *sl_events_parse(const char *buf, size_t len, const char *name, sl_ywarn_t *warn,
                             char *err, size_t errlen);
void sl_events_destroy(sl_events_t **e_p);
/* Ceilometer's [event] store_raw: events converted from notifications of
 * these priorities (a mask of 1 << sl_priority_t; only info and error make
 * events) carry the raw notification. 0 = none (the default). Call before
 * the table is shared. */
void sl_events_set_store_raw(sl_events_t *e, unsigned levels);
/* What the traits may read under the view's top-level key top (see
 * sl_jsonpath_reads_under); 1 when store_raw keeps the whole view. */
int sl_events_reads_under(const sl_events_t *e, const char *top,
                          void (*fn)(const char *key, void *ud), void *ud);
/* Number of definitions, the added catch-all included. */
size_t sl_events_count(const sl_events_t *e);

/* Converts n into *out: 1 if it yields an event, 0 if not (priority,
 * no definition, or dropped; see stats). Strings and values live in a or
 * in n. Thread-safe on a shared table. */
int sl_events_convert(const sl_events_t *e, const sl_notification_t *n, sl_arena_t *a,
                      sl_event_t *out, sl_event_stats_t *stats);

/* Writes ev as one JSON object in the oracle's event format, keys sorted:
 * {"event_type", "generated", "message_id", ["raw",] "traits": [[name,
 * dtype, value], ...]} (raw only when ev->raw is set). Returns 0 or -1. */
int sl_event_gen(yajl_gen g, const sl_event_t *ev);
/* The same as compact text allocated in a. */
const char *sl_event_json(sl_arena_t *a, const sl_event_t *ev);
/* The same text appended to b, without yajl's per-token calls (common/json.h
 * sl_json_put_val; *scratch as there): what the ingest worker writes. */
int sl_event_put(sl_buf_t *b, yajl_gen *scratch, const sl_event_t *ev);

#endif
