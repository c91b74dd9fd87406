/* envelope — decoding one oslo.messaging notification.
 *
 * Accepts the plain message (`message_id, publisher_id, event_type, priority,
 * payload, timestamp`, `_context_*` keys) and the v2 wire envelope
 * (`{"oslo.version": "2.0", "oslo.message": "<json text>"}`). Validates the
 * priority (audit, debug, info, warn, warning, error, critical, sample;
 * case-insensitive) and the required fields. Any process.
 *
 * `payload` and `message_id` may be absent, as oslo's dispatcher reads them
 * with dict.get(): the payload is then a null value and message_id NULL
 * (Ceilometer publishes `message_id: null`).
 *
 * The decoded notification owns its yajl trees (built in its own arena,
 * `mem`: never yajl_tree_free() them); sl_notification_clear() frees them.
 * All `const char *` fields borrow from those trees. Objects follow Python's
 * json.loads: a repeated key keeps its first position and its last value.
 *
 * Error mapping: not JSON (or nested deeper than SL_JSON_MAX_DEPTH) ->
 * malformed_json; the top-level value, or the v2 inner message, is not an
 * object -> not_object; an object with both `oslo.version` and
 * `oslo.message` whose version is not compatible with 2.0 (oslo's
 * version_is_compatible) or whose message is not a string holding valid
 * JSON -> bad_envelope; a string or key that is not strict UTF-8 (raw
 * bytes, or an escaped lone surrogate, which yajl decodes to bytes no
 * output may carry) -> bad_utf8, wherever it is. `warning` is accepted
 * as WARN (oslo's notifier sends `WARN`; Ceilometer would drop `warning`
 * as unknown, and neither yields samples or events). */
#ifndef SL_ENVELOPE_H
#define SL_ENVELOPE_H

#include <stddef.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"

/* Drop reasons; X(name, help). The order is the wire/stats order. */
#define SL_ENV_ERRORS(X) \
    X(malformed_json,   "input is not valid JSON") \
    X(not_object,       "JSON is not an object") \
    X(bad_envelope,     "oslo v2 envelope without a valid oslo.message string") \
    X(missing_field,    "a required field (event_type, priority, timestamp) is missing, or a field has the wrong type") \
    X(bad_priority,     "priority is not one oslo.messaging knows") \
    X(oversized,        "message larger than the configured max_message_size") \
    X(bad_utf8,         "a string or key is not valid UTF-8 (Ceilometer cannot decode it either)")

typedef enum {
    SL_ENV_OK = 0,
#define X(name, help) SL_ENV_ERR_##name,
    SL_ENV_ERRORS(X)
#undef X
    SL_ENV_ERR__COUNT
} sl_env_status_t;

typedef enum {
    SL_PRIO_AUDIT, SL_PRIO_DEBUG, SL_PRIO_INFO, SL_PRIO_WARN, SL_PRIO_ERROR,
    SL_PRIO_CRITICAL, SL_PRIO_SAMPLE
} sl_priority_t;

typedef struct {
    yajl_val      root;         /* the message object (inner one for v2) */
    yajl_val      outer;        /* v2 envelope tree, else NULL */
    const char   *message_id;   /* NULL if absent */
    const char   *event_type;
    const char   *publisher_id; /* NULL if absent */
    const char   *timestamp;
    sl_priority_t priority;
    yajl_val      payload;
    sl_arena_t    mem;          /* owns root, outer and every string above */
} sl_notification_t;

/* Decodes buf[0..len) (no terminating NUL needed) into out, which is
 * overwritten: clear it first if it held a notification. len > max_len (if
 * max_len > 0) gives SL_ENV_ERR_oversized without parsing. On any error the
 * notification is left cleared and err holds a one-line reason. */
sl_env_status_t sl_envelope_decode(const char *buf, size_t len, size_t max_len,
                                   sl_notification_t *out, char *err, size_t errlen);
void sl_notification_clear(sl_notification_t *n);

/* What oslo's dispatcher hands Ceilometer's endpoints, the document every
 * meter and trait JSONPath is evaluated on: {ctxt, publisher_id,
 * event_type, payload, metadata: {message_id, timestamp}}. `ctxt` is
 * unpack_context(msg).to_dict(): the `_context_X` keys as X, in order,
 * without msg_id and reply_q, then client_timeout (the `_timeout` key or
 * null). Built in a; values are borrowed from n. */
yajl_val sl_notification_view(const sl_notification_t *n, sl_arena_t *a);

/* What a decoder keeps of a message: the keys the envelope and the view
 * read (event_type, priority, timestamp, message_id, publisher_id,
 * payload, _timeout, oslo.version, oslo.message) and those `_context_X`
 * whose X the definitions may read as ctxt.X (all of them when one may
 * read ctxt whole, or store_raw is on). Every other key, which nothing
 * reads, is left out of the tree: the decode costs less and its results
 * are the same (tests/unit/test_envelope.c proves it over the corpus and
 * the generator). Immutable once made; any process. */
typedef struct sl_env_keep sl_env_keep_t;
struct sl_meters;
struct sl_events;
/* For these definitions (either may be NULL). Never NULL. */
sl_env_keep_t *sl_env_keep_new(const struct sl_meters *m, const struct sl_events *e);
void sl_env_keep_destroy(sl_env_keep_t **k_p);
/* 1 if every `_context_*` key is kept; else how many are, in *n. */
int sl_env_keep_all_context(const sl_env_keep_t *k, size_t *n);
/* sl_envelope_decode keeping only what k says (k NULL: everything). */
sl_env_status_t sl_envelope_decode_keep(const char *buf, size_t len, size_t max_len,
                                        const sl_env_keep_t *k, sl_notification_t *out,
                                        char *err, size_t errlen);

const char *sl_env_status_name(sl_env_status_t st);
const char *sl_priority_name(sl_priority_t p);

#endif
