/* gnocchi_res — Ceilometer 19's gnocchi_resources.yaml, compiled once: the
 * archive policies to create, and per Gnocchi resource type its metrics
 * (each with its archive policy), its attributes (Ceilometer's
 * declarative.Definition over Sample.as_dict(), common/defn.h), and for
 * events its event_create / event_delete / event_update globs,
 * event_attributes (attribute <- trait name) and
 * event_associated_resources (type -> search query with one %s).
 *
 * Loading follows GnocchiPublisher._load_definitions and
 * ResourcesDefinition: archive_policy_default (default ceilometer-low),
 * a metric without archive_policy_name gets it, the URL's archive_policy
 * overrides every metric, a resource-level archive_policy (deprecated)
 * overrides even that; a resource without resource_type or metrics, or
 * with events but no event_attributes.id, is skipped with a warning (an
 * error in strict mode), as Ceilometer logs and skips it. When two
 * resources name the same metric, the later one wins (Ceilometer's
 * metric_map dict).
 *
 * The compiled model is immutable and owned by the caller
 * (sl_gnocchi_res_destroy); lookups and attribute evaluation may run on
 * any thread at once (results live in the caller's arena). */
#ifndef SL_PUBLISHERS_GNOCCHI_RES_H
#define SL_PUBLISHERS_GNOCCHI_RES_H

#include <stddef.h>
#include <yajl/yajl_tree.h>
#include "common/arena.h"
#include "common/defn.h"
#include "common/sample.h"
#include "common/yconf.h"

typedef enum {
    SL_GNOCCHI_EV_NONE = 0, SL_GNOCCHI_EV_CREATE, SL_GNOCCHI_EV_UPDATE, SL_GNOCCHI_EV_DELETE
} sl_gnocchi_ev_op_t;

typedef struct {
    const char *name;
    const char *body;    /* compact JSON of the YAML entry: POST /v1/archive_policy/ */
} sl_gnocchi_ap_t;

typedef struct {
    const char *name;
    sl_defn_t   defn;
} sl_gnocchi_attr_t;

typedef struct {
    const char *attr;    /* Gnocchi attribute */
    const char *trait;   /* event trait it is read from */
} sl_gnocchi_evattr_t;

typedef struct {
    const char *type;    /* resource type searched */
    const char *query;   /* JSON text with one %s: the resource's id */
} sl_gnocchi_assoc_t;

typedef struct {
    const char          *resource_type;
    size_t               n_metrics;
    const char         **metrics;           /* names, YAML order */
    const char         **metric_ap;         /* their archive policy names */
    size_t               n_attrs;
    sl_gnocchi_attr_t   *attrs;
    const char         **ev_create, **ev_delete, **ev_update;   /* fnmatch globs */
    size_t               n_ev_create, n_ev_delete, n_ev_update;
    size_t               n_evattrs;
    sl_gnocchi_evattr_t *evattrs;
    size_t               n_assoc;
    sl_gnocchi_assoc_t  *assoc;
} sl_gnocchi_rd_t;

typedef struct sl_gnocchi_res sl_gnocchi_res_t;

/* The YAML text (name for messages) compiled. archive_policy_override =
 * the URL's archive_policy (NULL = none). NULL with "file:line: ..." in
 * err. warn as in yconf.h (NULL = tolerant, warnings to the log). */
sl_gnocchi_res_t *sl_gnocchi_res_parse(const char *text, size_t len, const char *name,
                                       const char *archive_policy_override, sl_ywarn_t *warn,
                                       char *err, size_t errlen);
/* The file at path (NULL = the compiled-in copy of Ceilometer 19's
 * ceilometer/publisher/data/gnocchi_resources.yaml). */
sl_gnocchi_res_t *sl_gnocchi_res_load(const char *path, const char *archive_policy_override,
                                      sl_ywarn_t *warn, char *err, size_t errlen);
void sl_gnocchi_res_destroy(sl_gnocchi_res_t **res_p);

/* The compiled-in default file's text (conf/gnocchi_resources.yaml). */
const char *sl_gnocchi_res_default_text(size_t *len);

size_t sl_gnocchi_res_n_policies(const sl_gnocchi_res_t *res);
const sl_gnocchi_ap_t *sl_gnocchi_res_policy(const sl_gnocchi_res_t *res, size_t i);
size_t sl_gnocchi_res_n_resources(const sl_gnocchi_res_t *res);
const sl_gnocchi_rd_t *sl_gnocchi_res_resource(const sl_gnocchi_res_t *res, size_t i);

/* The resource definition handling metric name (NULL = not handled), and
 * the metric's archive policy in *ap. */
const sl_gnocchi_rd_t *sl_gnocchi_res_metric(const sl_gnocchi_res_t *res, const char *name,
                                             const char **ap);
/* The first definition (YAML order) whose event globs match event_type:
 * create globs first, then delete, then update (ResourcesDefinition.
 * event_match); NULL and SL_GNOCCHI_EV_NONE when none does. */
const sl_gnocchi_rd_t *sl_gnocchi_res_event(const sl_gnocchi_res_t *res, const char *event_type,
                                            sl_gnocchi_ev_op_t *op);

/* Sample.as_dict() of s as a tree in a (resource_metadata parsed; a
 * metadata text that is not JSON becomes {}). */
yajl_val sl_gnocchi_sample_dict(const sl_sample_t *s, sl_arena_t *a);
/* rd.sample_attributes(): an object (in a) of the attributes whose
 * Definition gives a non-None value, in YAML order, evaluated over dict
 * (sl_gnocchi_sample_dict). An attribute whose JSONPath raises is left
 * out. */
yajl_val sl_gnocchi_res_sample_attrs(const sl_gnocchi_res_t *res, const sl_gnocchi_rd_t *rd,
                                     yajl_val dict, sl_arena_t *a);

#endif
