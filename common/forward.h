/* forward — consumer profiles for forwarding records to external consumers
 * (the Searchlight notification-forwarding design): which samples and
 * events a consumer gets, and which of their fields it may see.
 *
 * Profiles are defined in sluice.yaml under `forward:` (a mapping of
 * profile name to its settings, below) and named by a publisher URL's core
 * option `forward=<profile>` (every publisher accepts it). The output layer
 * applies the selection (meters / event_types) to every batch before the
 * plugin sees it, and hands the profile to the plugin in
 * sl_pub_batch_t.forward; a plugin that serialises records (http, zaqar,
 * websocket, file, ...) calls sl_forward_filter() on each record's JSON
 * tree just before writing it. NULL profile = everything, unfiltered.
 *
 *   forward:
 *     searchlight:
 *       meters: ["instance*", "cpu"]        # globs on the meter name (default: all)
 *       event_types: ["compute.instance.*"] # globs on event_type (default: all)
 *       drop_fields: [user_id, resource_metadata.image_meta.*]
 *                                 # dotted paths, fnmatch globs per segment;
 *                                 # for events, a path of one segment also
 *                                 # matches trait names
 *       admin_only_fields: ["*password*", "*_key", host]
 *                                 # globs matched on keys at any depth (and
 *                                 # on trait names)
 *       admin: false              # true = this consumer sees admin-only fields
 *       keep_regex: "..."         # if set: keys (at any depth) or trait names
 *                                 # that do not match are dropped (objects that
 *                                 # hold a kept key stay)
 *       drop_regex: "..."         # keys or trait names matching are dropped
 *       tokens: [s3cret, ...]     # WebSocket subscribers authenticate with one
 *       token_file: /etc/sluice/ws-tokens   # or one token per line
 *
 * Profiles live in the sl_conf_t they were loaded with (common/conf.h);
 * every function here is pure and thread-safe on a loaded profile. */
#ifndef SL_FORWARD_H
#define SL_FORWARD_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

typedef struct sl_forward sl_forward_t;

/* The profile's name (as in sluice.yaml). */
const char *sl_forward_name(const sl_forward_t *f);
/* 1 if a record of this kind (events = 1: event_type; 0: meter name) is
 * selected by the profile's globs; f == NULL selects everything. */
int sl_forward_selects(const sl_forward_t *f, int events, const char *name);
/* Removes, in place, the fields the consumer may not see from obj (a
 * sample as Ceilometer's as_dict, or an event with traits
 * [[name, type, value], ...]). f == NULL does nothing. The tree must
 * have been built by yajl_tree_parse or sl_json_parse (keys/values
 * removed are freed or left to the arena, as the function's
 * implementation documents). */
void sl_forward_filter(const sl_forward_t *f, int events, yajl_val obj);
/* 1 if token is one of the profile's tokens (constant-time compare). */
int sl_forward_token_ok(const sl_forward_t *f, const char *token);

#endif
