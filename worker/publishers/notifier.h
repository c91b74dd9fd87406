/* publisher_notifier — the notifier:// publisher's message construction:
 * what Ceilometer 19's NotifierPublisher (ceilometer/publisher/messaging.py)
 * and oslo.messaging's Notifier put on the bus for the same samples and
 * events, byte for byte where Python's json.dumps decides the bytes.
 *
 *   payload  a list of meter messages (utils.meter_message_from_counter:
 *            source, counter_name, counter_type, counter_unit,
 *            counter_volume, user_id, project_id, resource_id, timestamp,
 *            resource_metadata, message_id = the sample's id,
 *            monotonic_time, message_signature) or of event messages
 *            (utils.message_from_event: message_id, event_type, generated,
 *            traits [[name, dtype, value]], raw {}, message_signature);
 *   message  oslo's notification: message_id, publisher_id, event_type
 *            ("metering", "metering.<meter>" with per_meter_topic, or
 *            "event"), priority "SAMPLE", payload, timestamp (str() of a
 *            naive UTC datetime), _unique_id; messagingv2 wraps it as
 *            {"oslo.version": "2.0", "oslo.message": "<json>"}.
 *   routing  exchange "ceilometer" (Ceilometer's control_exchange), routing
 *            key "<topic>.sample".
 *
 * message_signature is Ceilometer's compute_signature: HMAC-SHA256 over the
 * message's recursive_keypairs (sorted keys, nested dicts flattened with
 * ':', str() of each value, lists through decode_unicode), keyed with
 * telemetry_secret; an empty secret gives "". Pure functions, any thread;
 * strings are UTF-8 as the sample/event carries them. */
#ifndef SL_PUBLISHER_NOTIFIER_H
#define SL_PUBLISHER_NOTIFIER_H

#include <stddef.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"
#include "common/buf.h"
#include "common/sample.h"
#include "worker/publishers/publisher.h"

extern const sl_pub_plugin_t sl_pub_notifier;

/* Ceilometer's default [publisher] telemetry_secret: sluice signs with it
 * unless the URL names a telemetry_secret_file. */
#define SL_NOTIFIER_DEFAULT_SECRET "change this for valid signing"

/* Ceilometer's compute_signature of msg (a JSON object; its top-level
 * message_signature, if any, is left out): the hex HMAC-SHA256 of its
 * recursive_keypairs keyed with secret, or "" without a secret; allocated
 * in a. Shared with the udp:// and tcp:// publishers. */
const char *sl_notifier_signature(yajl_val msg, const char *secret, size_t secret_len,
                                  sl_arena_t *a);

/* Appends one meter message (a JSON object, json.dumps layout) for s to
 * out. -1 with err if s->resource_metadata or s->volume_json is not JSON. */
int sl_notifier_meter_message(sl_buf_t *out, const sl_sample_t *s, const char *secret,
                              size_t secret_len, char *err, size_t errlen);
/* Appends one event message for an event in sluice's event format (the
 * JSON object the file publisher writes: event_type, generated,
 * message_id, traits). -1 with err if it is not such an object. */
int sl_notifier_event_message(sl_buf_t *out, const char *event_json, const char *secret,
                              size_t secret_len, char *err, size_t errlen);

/* One oslo notification. */
typedef struct {
    const char *message_id;    /* str(uuid4()) */
    const char *publisher_id;  /* "telemetry.publisher.<host>" */
    const char *event_type;
    const char *priority;      /* "SAMPLE" */
    const char *timestamp;     /* sl_notifier_timestamp() */
    const char *unique_id;     /* uuid4().hex, one per topic sent to */
} sl_notifier_msg_t;

/* Appends the AMQP body of m with payload (JSON text, used as it is):
 * v2 = messagingv2's envelope, else messaging's bare message. */
void sl_notifier_body(sl_buf_t *out, const sl_notifier_msg_t *m, const char *payload,
                      size_t payload_len, int v2);
/* str(datetime.utcnow()) for the realtime clock at (sec, nsec):
 * "2026-12-03 07:10:11.123456" ("...:11" when the microseconds are 0). */
void sl_notifier_timestamp(char out[32], long long sec, long nsec);
/* Python's json.dumps of the string s (ensure_ascii): appended to out. */
void sl_notifier_json_str(sl_buf_t *out, const char *s, size_t n);

/* The oslo transport URL a notifier:// URL names, as Ceilometer maps it:
 * notifier://NETLOC/PATH?... -> rabbit://NETLOC/PATH (the query is the
 * publisher's). NULL when the URL has no NETLOC (Ceilometer then uses its
 * default transport: see sl_publisher_notifier_set_transport_url). The
 * result is malloc'd. */
char *sl_notifier_transport_url(const char *url);

/* Process-wide default transport URL for notifier:// URLs without a host
 * (Ceilometer's [oslo_messaging_notifications] / [DEFAULT] transport_url).
 * Set it once, before the workers start; NULL = none (such URLs are then
 * refused). Not thread-safe. */
void sl_publisher_notifier_set_transport_url(const char *url);
/* A malloc'd copy of it, or NULL. */
char *sl_publisher_notifier_transport_url(void);

#endif
