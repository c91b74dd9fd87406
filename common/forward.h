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
 *       admin_only_fields: ["*password*", "*_key", host]
 *       admin: false
 *       drop_regex: '(^|\.)os-extended-volumes'
 *       keep_regex: '^(event_type|generated|message_id|instance_id|state)$'
 *       tokens: [s3cret, ...]               # WebSocket subscribers authenticate with one
 *       token_file: /etc/sluice/ws-tokens   # or one token per line (both may be given)
 *
 * Precisely:
 * - Globs are fnmatch(3) patterns without flags: `*` and `?` also match
 *   dots and slashes, `[...]` classes, `\x` a literal x. A glob with an
 *   unterminated `[`, a trailing `\` or empty is a configuration error.
 * - meters / event_types: a record is selected when a glob matches its
 *   meter name / event_type. As in Ceilometer's pipeline, a list is either
 *   all inclusions or all exclusions (`!glob`: everything but those);
 *   mixing is an error. Absent = everything.
 * - A field path is dotted: `resource_metadata.image_meta.base_url`; each
 *   segment is a glob on one key (`\.` for a key that holds a dot).
 *   Arrays on the way are transparent: the next segment applies to every
 *   object inside the array. Events: their traits count as top-level
 *   fields named by the trait name (`[name, type, value]`), so a path of
 *   one segment matches top-level keys and trait names.
 * - drop_fields: the fields at those paths are removed.
 * - admin_only_fields: unless `admin: true`, removed as well; a glob
 *   without a dot matches a key's own name at any depth (and trait
 *   names), a dotted one is a path from the top as in drop_fields.
 * - drop_regex / keep_regex: a Python-syntax regular expression (PCRE2,
 *   UTF; re.search semantics: unanchored, use ^ and $) matched against
 *   the dotted path of every key, e.g. `resource_metadata.flavor.name`;
 *   a trait's path is its name. drop_regex removes what matches (with
 *   everything under it). keep_regex keeps what matches (whole, with
 *   everything under it) plus the objects and arrays that lead to a kept
 *   key (holding only what is kept); every other key is removed, so an
 *   object left with nothing kept goes too. If `traits` itself matches,
 *   every trait is kept.
 * - Order: select, then drop_fields, admin_only_fields, drop_regex,
 *   keep_regex.
 * - tokens / token_file: compared in constant time (SHA-256 of each, all
 *   compared); never logged, not shown by --dump-config. token_file is
 *   read once at load (relative to sluice.yaml's directory); blank lines
 *   and lines starting with # are skipped, blanks around a token trimmed.
 *
 * Memory: sl_forward_filter() only unlinks what it removes, never frees:
 * use it on trees from sl_json_parse (the removed nodes go with the
 * arena). For a tree from yajl_tree_parse, call sl_forward_filter_free(),
 * which frees each removed key and value (yajl_tree_free); the caller
 * then frees the tree with yajl_tree_free as usual.
 *
 * Profiles live in the sl_conf_t they were loaded with (common/conf.h);
 * every function here is pure and thread-safe on a loaded profile. */
#ifndef SL_FORWARD_H
#define SL_FORWARD_H

#include <stddef.h>
#include <stdio.h>
#include <yajl/yajl_tree.h>
#include "common/yconf.h"

typedef struct sl_forward sl_forward_t;

/* The profile's name (as in sluice.yaml). */
const char *sl_forward_name(const sl_forward_t *f);
/* 1 if a record of this kind (events = 1: event_type; 0: meter name) is
 * selected by the profile's globs; f == NULL selects everything. */
int sl_forward_selects(const sl_forward_t *f, int events, const char *name);
/* 1 if the profile selects records of this kind by name (meters /
 * event_types given), 0 if it takes them all (f == NULL too). */
int sl_forward_has_selection(const sl_forward_t *f, int events);
/* Removes, in place, the fields the consumer may not see from obj (a
 * sample as Ceilometer's as_dict, or an event with traits
 * [[name, type, value], ...]). f == NULL does nothing. Unlinks only (see
 * Memory above): for arena trees (sl_json_parse). */
void sl_forward_filter(const sl_forward_t *f, int events, yajl_val obj);
/* The same for a tree from yajl_tree_parse: removed nodes are freed. */
void sl_forward_filter_free(const sl_forward_t *f, int events, yajl_val obj);
/* 1 if token is one of the profile's tokens (constant-time compare).
 * A profile without tokens (or f == NULL) asks for none: 1 for any
 * token; with tokens, NULL or "" is 0. */
int sl_forward_token_ok(const sl_forward_t *f, const char *token);
/* 1 if the profile has tokens (tokens or token_file). */
int sl_forward_has_tokens(const sl_forward_t *f);

/* One profile from the mapping under its name in `forward:` (node may be
 * a null scalar: everything, unfiltered). base_dir resolves a relative
 * token_file (NULL: as is). NULL with "file:line: forward profile 'x':
 * ..." in err. conf.c calls this; tests may too. */
sl_forward_t *sl_forward_parse(const char *name, const sl_ynode_t *node, const char *base_dir,
                               char *err, size_t errlen);
void sl_forward_destroy(sl_forward_t **f_p);
/* The profile as YAML for --dump-config, each line prefixed by indent
 * (tokens counted, never shown). */
void sl_forward_dump(const sl_forward_t *f, FILE *out, const char *indent);

#endif
