/* publisher_gnocchi — the gnocchi:// publisher: samples as Gnocchi measures
 * and events as Gnocchi resource changes, the requests Ceilometer 19's
 * GnocchiPublisher (ceilometer/publisher/gnocchi.py over gnocchiclient)
 * sends, on the shared HTTP client (worker/publishers/httpc.h). The YAML
 * model is worker/publishers/gnocchi_res.h; the behaviour, options and
 * outcome mapping are described at the top of gnocchi.c.
 *
 * The functions below are the pure parts, exposed for the unit tests and
 * usable from any thread. */
#ifndef SL_PUBLISHER_GNOCCHI_H
#define SL_PUBLISHER_GNOCCHI_H

#include <stddef.h>
#include <stdint.h>
#include "common/buf.h"
#include "common/sample.h"
#include "worker/publishers/gnocchi_res.h"
#include "worker/publishers/publisher.h"

extern const sl_pub_plugin_t sl_pub_gnocchi;

/* A relative resources_definition_file is resolved against the directory
 * of sluice.yaml, as conf.c resolves meters.yaml: the supervisor passes
 * conf->file here (its real directory is kept; NULL or "<embedded>/..." =
 * the working directory). Set once, before the workers start; not
 * thread-safe. */
void sl_publisher_gnocchi_set_conf_file(const char *sluice_yaml);

/* One resource of a sample batch, as GnocchiPublisher.publish_samples
 * groups them. */
typedef struct {
    const char            *id;          /* resource_id with '/' -> '_' */
    const sl_gnocchi_rd_t *rd;          /* of its first handled sample */
    const char            *user_id, *project_id;
    yajl_val               extra;       /* merged sample attributes (object) */
    size_t                 n_measures;
    int                    dropped;     /* its resource could not be created */
} sl_gnocchi_group_t;

typedef struct sl_gnocchi_batch sl_gnocchi_batch_t;

/* Groups samples[0..n) (those whose meter the model handles; the others
 * are counted in *unknown and their names reported through cb, if not
 * NULL, in order) into resources sorted by resource_id. skip (may be
 * NULL) marks samples left out beforehand (Gnocchi's own project). fwd
 * (the URL's forward= profile, may be NULL) filters each sample's dict
 * before the attributes are read from it, so that a field the consumer
 * may not see never becomes a Gnocchi attribute. All memory is in a;
 * samples must outlive the batch. */
sl_gnocchi_batch_t *sl_gnocchi_batch_build(const sl_gnocchi_res_t *res, const sl_sample_t *samples,
                                           size_t n, const unsigned char *skip,
                                           const struct sl_forward *fwd, sl_arena_t *a,
                                           void (*cb)(void *ud, const char *name), void *ud,
                                           size_t *unknown);
size_t sl_gnocchi_batch_n_groups(const sl_gnocchi_batch_t *b);
sl_gnocchi_group_t *sl_gnocchi_batch_group(sl_gnocchi_batch_t *b, size_t i);
/* The group of id (after '/' -> '_'), or NULL. */
sl_gnocchi_group_t *sl_gnocchi_batch_find(sl_gnocchi_batch_t *b, const char *id);
/* The body of POST /v1/batch/resources/metrics/measures (groups not
 * dropped), compact JSON, into out (reset first). Returns the measure count. */
size_t sl_gnocchi_batch_body(const sl_gnocchi_batch_t *b, sl_buf_t *out);
/* The body of POST /v1/resource/<type>: {"id", "user_id", "project_id",
 * attributes...} (an attribute named like one of the three replaces it). */
void sl_gnocchi_resource_body(const sl_gnocchi_group_t *g, sl_buf_t *out);
/* A stable hash of an attribute object (the resource cache's value). */
uint64_t sl_gnocchi_attrs_hash(yajl_val attrs);

/* Ceilometer's rd.event_attributes(event) for an event in sluice's format:
 * an object {attr: trait value} in event_attributes order (traits that are
 * absent or null left out), in a; NULL if the event is not JSON. */
yajl_val sl_gnocchi_event_attrs(const sl_gnocchi_rd_t *rd, yajl_val event, sl_arena_t *a);

/* The cause and the original_resource_id list of a 400 answer to the
 * batch: the count of ids (in a), or -1 if the body is not Gnocchi's
 * "Unknown resources" error. */
long sl_gnocchi_unknown_resources(const char *body, size_t len, sl_arena_t *a,
                                  const char ***ids);

/* What a status of one kind of request means (the outcome mapping of
 * gnocchi.c): 2xx OK; 409 on a creation OK (it exists); 408/425/429/5xx
 * RETRY; 401 RETRY with keystone (the token is renewed first) else ERROR;
 * other 4xx ERROR. */
typedef enum { SL_GNOCCHI_REQ_BATCH = 0, SL_GNOCCHI_REQ_CREATE, SL_GNOCCHI_REQ_OTHER } sl_gnocchi_req_t;
sl_pub_status_t sl_gnocchi_classify(sl_gnocchi_req_t kind, long status, int keystone);

/* str(datetime.utcnow().isoformat()) for the realtime clock at (sec, nsec):
 * "2026-12-03T07:10:11.123456" (no zone; ".ffffff" left out at 0 us). */
void sl_gnocchi_utc_isoformat(char out[40], long long sec, long nsec);

#endif
