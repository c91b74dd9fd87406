/* sample — the Ceilometer sample as it travels through sluice.
 *
 * A sample is a view: every string is borrowed from whoever built it (the
 * converter's per-notification arena, or a received wire frame) and stays
 * valid only as long as that owner does. NULL means JSON null.
 * `volume_json` is the volume exactly as the notification carried it (a JSON
 * number, or a JSON string holding a number: Ceilometer passes numeric
 * strings through unchanged); `volume` is its value as a double.
 * `resource_metadata` is the text of a JSON object. `monotonic_time` is the
 * text of a JSON number (seconds of a monotonic clock, set by pollsters;
 * rate_of_change prefers it to timestamps) or NULL for null, which is what
 * every sample built from a notification has. Any process. */
#ifndef SL_SAMPLE_H
#define SL_SAMPLE_H

#include <stddef.h>
#include <yajl/yajl_gen.h>
#include "common/arena.h"
#include "common/buf.h"

typedef struct {
    const char *id;                 /* sample id (uuid) */
    const char *name;
    const char *type;               /* gauge | delta | cumulative */
    const char *unit;
    const char *volume_json;
    double      volume;
    const char *user_id;
    const char *project_id;
    const char *resource_id;
    const char *timestamp;          /* ISO 8601, e.g. 2023-03-14T09:26:53.589793+00:00 */
    const char *resource_metadata;  /* JSON object text, never NULL once built */
    const char *source;             /* "openstack" by default */
    const char *message_id;         /* id of the notification it came from */
    const char *monotonic_time;     /* JSON number text, or NULL (null) */
} sl_sample_t;

/* Writes one sample as a JSON object with Ceilometer's field names (id,
 * name, type, unit, volume, user_id, project_id, resource_id, timestamp,
 * resource_metadata, source, message_id, then monotonic_time only when it
 * is not null) into g. A volume without volume_json is written as Python's
 * repr of the float would read. Returns 0 or -1. */
int sl_sample_gen(yajl_gen g, const sl_sample_t *s);
/* The same text sl_sample_gen writes, appended to b without a yajl_gen
 * state machine (common/json.h sl_json_put_str; *scratch as there). About
 * 4x faster; what the file and WebSocket publishers write. */
int sl_sample_put(sl_buf_t *b, yajl_gen *scratch, const sl_sample_t *s);


/* Writes a random (version 4) UUID, 36 characters and a NUL, into out.
 * The generator is a per-thread xoshiro256** seeded from getrandom(2) and
 * reseeded in a child after fork(), so workers never share a sequence. Not
 * for secrets: sample ids only need to be unique. */
void sl_sample_uuid4(char out[37]);

/* Writes the name-based (version 5, SHA-1) UUID of name[0..len) in the
 * namespace ns (16 bytes, RFC 4122 byte order) into out: what Python's
 * uuid.uuid5(ns, name) gives. */
void sl_sample_uuid5(char out[37], const unsigned char ns[16], const void *name, size_t len);

/* The namespace of stable sample ids: uuid5(NAMESPACE_URL,
 * "sluice:sample_ids") = 1e3f8866-801f-5585-b4a1-be07f688ecd8. */
extern const unsigned char sl_sample_id_namespace[16];

/* sample_ids: stable. Gives each of the n samples one notification yielded
 * the id uuid5(sl_sample_id_namespace, "<message_id>\n<name>\n<resource_id>
 * \n<k>"), k counting the earlier samples of the same notification with the
 * same name and resource_id (usually 0; a null name or resource_id is the
 * empty string), allocated in a: the same notification always gives the
 * same ids, so a consumer can drop the duplicates a crash replays. Returns
 * n, or 0 (ids untouched) when message_id is NULL. */
size_t sl_sample_stable_ids(sl_sample_t *s, size_t n, const char *message_id,
                            sl_arena_t *a);

#endif
