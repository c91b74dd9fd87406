/* pubjson — samples and events as Ceilometer 19's HTTP-speaking publishers
 * serialise them (http, zaqar; usable by any publisher that sends JSON
 * records: websocket, webhooks, ...), byte for byte where Python's
 * json.dumps decides the bytes (", " and ": " separators, ensure_ascii,
 * floats as repr(), insertion order of keys).
 *
 *   sample  Sample.as_dict() (ceilometer/sample.py: a copy of __dict__):
 *           {"name", "type", "unit", "volume", "user_id", "project_id",
 *            "resource_id", "timestamp", "resource_metadata", "source",
 *            "id", "monotonic_time"} in that order; volume as the
 *           notification carried it (volume_json; else Python's float);
 *           monotonic_time null unless set. sluice's own message_id (the
 *           notification's) is not part of it, as in Ceilometer.
 *   event   Event.serialize() (ceilometer/event/models.py):
 *           {"message_id", "event_type", "generated", "traits":
 *            [[name, dtype, value], ...], "raw"} — raw is the event's "raw"
 *           member when the event carries one ([event] store_raw), else {}
 *           (Ceilometer's default store_raw = none).
 *   raw     HttpPublisher's raw_only: the event's raw["payload"] when it is
 *           truthy (a non-empty object, list or string, a non-zero number,
 *           true); other events give nothing.
 *
 * Input: an sl_sample_t (common/sample.h) or an event in sluice's event
 * format (the JSON object text the file publisher writes: event_type,
 * generated, message_id, traits, and optionally raw).
 *
 * Forward profiles: with fwd != NULL each record's tree is passed to
 * sl_forward_filter(fwd, events, tree) (common/forward.h) just before it is
 * written; the tree is built with sl_json_parse and nodes of the same
 * arena layout (yajl_val nodes allocated in an sl_arena_t), so the filter
 * must not free the nodes it removes. fwd == NULL writes every field.
 *
 * Pure functions; any thread. Strings are UTF-8 as the record carries
 * them (bytes that are not UTF-8 become U+FFFD, as Python's decoding with
 * errors='replace' would). */
#ifndef SL_PUBLISHERS_PUBJSON_H
#define SL_PUBLISHERS_PUBJSON_H

#include <stddef.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"
#include "common/buf.h"
#include "common/sample.h"

struct sl_forward;

/* Appends json.dumps(Sample.as_dict()) for s to out. -1 with err (out
 * unchanged) if s->resource_metadata, s->volume_json or s->monotonic_time
 * is not JSON. */
int sl_pubjson_sample(sl_buf_t *out, const sl_sample_t *s, const struct sl_forward *fwd,
                      char *err, size_t errlen);

/* Appends json.dumps(Event.serialize()) for an event in sluice's format.
 * -1 with err (out unchanged) if it is not a JSON object or its traits
 * are not a list. */
int sl_pubjson_event(sl_buf_t *out, const char *event_json, const struct sl_forward *fwd,
                     char *err, size_t errlen);

/* raw_only: appends json.dumps(raw["payload"]) and returns 1 when that
 * payload is truthy; returns 0 (nothing appended) when the event has no
 * raw, no payload or an empty one; -1 with err if it is not JSON. */
int sl_pubjson_event_raw(sl_buf_t *out, const char *event_json, const struct sl_forward *fwd,
                         char *err, size_t errlen);

/* The trees the three functions above write, in a (NULL with err): for
 * callers that put a record inside a larger document (zaqar's
 * {"body": ..., "ttl": ...}). raw: NULL with err = "" when the event has
 * no truthy payload. Forward filtering is the caller's. */
yajl_val sl_pubjson_sample_tree(sl_arena_t *a, const sl_sample_t *s, char *err, size_t errlen);
yajl_val sl_pubjson_event_tree(sl_arena_t *a, const char *event_json, char *err, size_t errlen);
yajl_val sl_pubjson_raw_tree(sl_arena_t *a, const char *event_json, char *err, size_t errlen);

/* Appends json.dumps(v) (default separators, ensure_ascii; ints as
 * written, floats as repr, Infinity/NaN as Python writes them). */
void sl_pubjson_dumps(sl_buf_t *out, yajl_val v, sl_arena_t *a);

/* A new object node in a with n fields (keys are borrowed, values may be
 * NULL = null), and a number node from its text ("3600"). */
yajl_val sl_pubjson_object(sl_arena_t *a, const char *const *keys, yajl_val *vals, size_t n);
yajl_val sl_pubjson_number(sl_arena_t *a, const char *text);
/* A string node holding s (borrowed), or a null node when s is NULL; an
 * empty node of type t (yajl_t_null, yajl_t_array, ...). */
yajl_val sl_pubjson_str(sl_arena_t *a, const char *s);
yajl_val sl_pubjson_node(sl_arena_t *a, yajl_type t);

#endif
