/* gnocchi:// publisher — samples and events into Gnocchi the way Ceilometer
 * 19's GnocchiPublisher sends them (ceilometer/publisher/gnocchi.py through
 * gnocchiclient), over the shared HTTP client (worker/publishers/httpc.h):
 *
 *   gnocchi://?endpoint=http://127.0.0.1:8041&auth=basic&user=admin
 *       [&archive_policy=NAME][&filter_project=service&filter_domain=Default]
 *       [&resources_definition_file=gnocchi_resources.yaml][&timeout=6.05] ...
 *   gnocchi://127.0.0.1:8041?... is the same as endpoint=http://127.0.0.1:8041.
 *
 * Samples (one batch = one publish_samples call):
 *   1. once per instance, at the first publish: POST /v1/archive_policy/
 *      for each archive_policies entry of the YAML (201; 409 = exists);
 *   2. samples of Gnocchi's own project (filter_project / filter_project_id)
 *      are left out; meters the YAML does not handle are dropped with one
 *      warning per name; the rest are grouped by resource_id ('/' -> '_');
 *   3. POST /v1/batch/resources/metrics/measures?create_metrics=True with
 *      {id: {meter: {measures: [{timestamp, value}], archive_policy_name,
 *      unit}}} (202);
 *   4. on 400 "Unknown resources": POST /v1/resource/<type> for each listed
 *      resource, {id, user_id, project_id, attributes...} (201; 409 =
 *      exists), then the batch once more;
 *   5. PATCH /v1/resource/<type>/<id> with the attributes of each resource
 *      of the batch whose attribute hash differs from the one cached (a
 *      bounded per-instance cache, attribute_cache_size entries: what
 *      Ceilometer does with oslo.cache configured; 0 = PATCH every time, as
 *      Ceilometer without a cache).
 * Events: create (POST /v1/resource/<type> with event_attributes; 409 =
 * exists), delete (POST /v1/search/resource/<assoc type> per
 * event_associated_resources, then PATCH {"ended_at": utcnow} on the
 * resource and each match), update (PATCH with the event attributes).
 *
 * Outcomes (publish returns OK, RETRY or ERROR to the output layer, which
 * owns retries, queues and dead letters):
 *   - transport errors, 408/425/429 and 5xx on any request that must
 *     succeed for the batch (archive policies, the batch POST, resource
 *     creation, event requests): RETRY; everything is idempotent (409s are
 *     success, measures of the same timestamp replace each other in Gnocchi);
 *   - 401: with keystone the token is renewed and the request sent once
 *     more; a second 401 is RETRY (Keystone or its catalog may be in flux);
 *     with basic/noauth a 401/403 is ERROR (configuration);
 *   - a resource that cannot be created (4xx other than 409: e.g. an
 *     unknown resource type, an attribute Gnocchi refuses): its measures
 *     are dropped, counted and logged at a rate limit, the rest of the
 *     batch is published (as Ceilometer does);
 *   - any other 4xx of the batch POST: ERROR (the batch can never succeed:
 *     dropped, dead-lettered, counted);
 *   - attribute PATCHes after the measures are stored never fail the batch
 *     (logged; the cache is not updated, so the next batch tries again);
 *   - archive policy creation refused with 4xx (not 409) is logged once and
 *     not retried (Ceilometer would fail every publish; the measures then
 *     fail on their own if the policy really is missing).
 * Keystone (auth=keystone): password authentication, POST
 * <auth_url>/v3/auth/tokens scoped to project_name; the token is cached and
 * renewed 60 s before it expires or after a 401; the Gnocchi endpoint comes
 * from the catalog (service type metric, `interface`, optional
 * region_name) unless endpoint= is given. filter_project is resolved once
 * with Ceilometer's own request, GET <auth_url>/v3/projects?name=...&domain=...
 * (keystoneclient's projects.find: Keystone does not filter on `domain`, so
 * it is a lookup by name). No match: the filter is disabled, as Ceilometer
 * does. Several projects of that name: the one whose domain_id is
 * filter_domain (case aside: the default domain is id `default`, name
 * `Default`); Ceilometer fails every publish then (NoUniqueMatch).
 *
 * Runs on its own thread (SL_PUB_F_THREAD): every request blocks at most
 * `timeout` seconds. */
#include "worker/publishers/gnocchi.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/buf.h"
#include "common/forward.h"
#include "common/hash.h"
#include "common/isotime.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "worker/publishers/httpc.h"
#include "worker/publishers/pubjson.h"

/* ---- the batch model (pure) ---------------------------------------------- */

typedef struct s_metric {
    const char      *name, *ap, *unit;
    size_t           first, last;   /* sample indexes, chained through b->next */
    struct s_metric *next;
} s_metric_t;

typedef struct {
    sl_gnocchi_group_t pub;
    s_metric_t        *mfirst, *mlast;
} s_group_t;

struct sl_gnocchi_batch {
    const sl_sample_t *samples;
    size_t            *next;
    s_group_t         *groups;
    size_t             n_groups;
    size_t            *table;      /* open addressing over group index + 1 */
    size_t             table_size;
};

static char *
s_replace_slash(sl_arena_t *a, const char *id)
{
    char *r = sl_arena_strdup(a, id ? id : "None");
    for (char *p = r; *p; p++)
        if (*p == '/')
            *p = '_';
    return r;
}

static int
s_by_resource(const void *x, const void *y, void *arg)
{
    const sl_sample_t *s = arg;
    size_t i = *(const size_t *) x, j = *(const size_t *) y;
    const char *a = s[i].resource_id ? s[i].resource_id : "";
    const char *b = s[j].resource_id ? s[j].resource_id : "";
    int c = strcmp(a, b);
    return c ? c : (i > j) - (i < j);
}

/* dict.update(): into (an object in a, grown by copy) the keys of from. */
static yajl_val
s_update(sl_arena_t *a, yajl_val into, yajl_val from)
{
    if (!from || !from->u.object.len)
        return into;
    size_t n = into->u.object.len, cap = n + from->u.object.len;
    yajl_val o = sl_pubjson_node(a, yajl_t_object);
    o->u.object.keys = sl_arena_alloc(a, cap * sizeof *o->u.object.keys);
    o->u.object.values = sl_arena_alloc(a, cap * sizeof *o->u.object.values);
    if (n) {   /* an empty object may have no arrays at all */
        memcpy(o->u.object.keys, into->u.object.keys, n * sizeof *o->u.object.keys);
        memcpy(o->u.object.values, into->u.object.values, n * sizeof *o->u.object.values);
    }
    for (size_t i = 0; i < from->u.object.len; i++) {
        size_t k = 0;
        while (k < n && strcmp(o->u.object.keys[k], from->u.object.keys[i]) != 0)
            k++;
        if (k == n)
            o->u.object.keys[n++] = from->u.object.keys[i];
        o->u.object.values[k] = from->u.object.values[i];
    }
    o->u.object.len = n;
    return o;
}

sl_gnocchi_batch_t *
sl_gnocchi_batch_build(const sl_gnocchi_res_t *res, const sl_sample_t *samples, size_t n,
                       const unsigned char *skip, const struct sl_forward *fwd, sl_arena_t *a,
                       void (*cb)(void *ud, const char *name), void *ud, size_t *unknown)
{
    sl_gnocchi_batch_t *b = sl_arena_alloc(a, sizeof *b);
    memset(b, 0, sizeof *b);
    b->samples = samples;
    b->next = sl_arena_alloc(a, (n + 1) * sizeof *b->next);
    b->groups = sl_arena_alloc(a, (n + 1) * sizeof *b->groups);
    b->table_size = 2 * n + 2;
    b->table = sl_arena_alloc(a, b->table_size * sizeof *b->table);
    memset(b->table, 0, b->table_size * sizeof *b->table);
    size_t *idx = sl_arena_alloc(a, (n + 1) * sizeof *idx), k = 0;
    for (size_t i = 0; i < n; i++)
        if (!skip || !skip[i])
            idx[k++] = i;
    qsort_r(idx, k, sizeof *idx, s_by_resource, (void *) samples);
    if (unknown)
        *unknown = 0;
    for (size_t t = 0; t < k; t++) {
        const sl_sample_t *s = &samples[idx[t]];
        const char *ap = NULL;
        const sl_gnocchi_rd_t *rd = sl_gnocchi_res_metric(res, s->name, &ap);
        if (!rd) {
            if (unknown)
                (*unknown)++;
            if (cb)
                cb(ud, s->name ? s->name : "None");
            continue;
        }
        const char *id = s_replace_slash(a, s->resource_id);
        sl_gnocchi_group_t *pg = sl_gnocchi_batch_find(b, id);
        s_group_t *g = (s_group_t *) pg;
        if (!g) {
            g = &b->groups[b->n_groups];
            memset(g, 0, sizeof *g);
            g->pub.id = id;
            g->pub.rd = rd;
            g->pub.user_id = s->user_id;
            g->pub.project_id = s->project_id;
            g->pub.extra = sl_pubjson_node(a, yajl_t_object);
            size_t h = (size_t) sl_hash64_str(id) % b->table_size;
            while (b->table[h])
                h = (h + 1) % b->table_size;
            b->table[h] = ++b->n_groups;
        }
        if (rd->n_attrs) {
            yajl_val dict = sl_gnocchi_sample_dict(s, a);
            if (fwd)
                sl_forward_filter(fwd, 0, dict);   /* an arena tree: nothing is freed */
            g->pub.extra = s_update(a, g->pub.extra, sl_gnocchi_res_sample_attrs(res, rd, dict, a));
        }
        s_metric_t *m = g->mfirst;
        while (m && strcmp(m->name, s->name) != 0)
            m = m->next;
        if (!m) {
            m = sl_arena_alloc(a, sizeof *m);
            memset(m, 0, sizeof *m);
            m->name = s->name;
            m->ap = ap;
            m->unit = s->unit;
            m->first = idx[t];
            if (g->mlast)
                g->mlast->next = m;
            else
                g->mfirst = m;
            g->mlast = m;
        } else {
            b->next[m->last] = idx[t];
        }
        m->last = idx[t];
        b->next[idx[t]] = (size_t) -1;
        g->pub.n_measures++;
    }
    return b;
}

size_t
sl_gnocchi_batch_n_groups(const sl_gnocchi_batch_t *b)
{
    return b->n_groups;
}

sl_gnocchi_group_t *
sl_gnocchi_batch_group(sl_gnocchi_batch_t *b, size_t i)
{
    return i < b->n_groups ? &b->groups[i].pub : NULL;
}

sl_gnocchi_group_t *
sl_gnocchi_batch_find(sl_gnocchi_batch_t *b, const char *id)
{
    size_t h = (size_t) sl_hash64_str(id) % b->table_size;
    while (b->table[h]) {
        s_group_t *g = &b->groups[b->table[h] - 1];
        if (strcmp(g->pub.id, id) == 0)
            return &g->pub;
        h = (h + 1) % b->table_size;
    }
    return NULL;
}

static void
s_gen_volume(yajl_gen g, const sl_sample_t *s)
{
    if (s->volume_json && s->volume_json[0]) {
        sl_json_gen_raw(g, s->volume_json, strlen(s->volume_json));
        return;
    }
    char buf[32];
    int n = sl_py_float_repr_buf(buf, s->volume);
    if (strcmp(buf, "nan") == 0 || strcmp(buf, "inf") == 0 || strcmp(buf, "-inf") == 0)
        yajl_gen_null(g);
    else
        yajl_gen_number(g, buf, (size_t) n);
}

static void
s_take(yajl_gen g, sl_buf_t *out)
{
    const unsigned char *p;
    size_t len;
    yajl_gen_get_buf(g, &p, &len);
    sl_buf_reset(out);
    sl_buf_put(out, p, len);
    yajl_gen_free(g);
}

size_t
sl_gnocchi_batch_body(const sl_gnocchi_batch_t *b, sl_buf_t *out)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    size_t count = 0;
    yajl_gen_map_open(g);
    for (size_t i = 0; i < b->n_groups; i++) {
        const s_group_t *gr = &b->groups[i];
        if (gr->pub.dropped)
            continue;
        sl_json_gen_str(g, gr->pub.id);
        yajl_gen_map_open(g);
        for (const s_metric_t *m = gr->mfirst; m; m = m->next) {
            sl_json_gen_str(g, m->name);
            yajl_gen_map_open(g);
            sl_json_gen_str(g, "measures");
            yajl_gen_array_open(g);
            for (size_t k = m->first; k != (size_t) -1; k = b->next[k]) {
                const sl_sample_t *s = &b->samples[k];
                yajl_gen_map_open(g);
                sl_json_gen_str(g, "timestamp");
                sl_json_gen_str(g, s->timestamp);
                sl_json_gen_str(g, "value");
                s_gen_volume(g, s);
                yajl_gen_map_close(g);
                count++;
            }
            yajl_gen_array_close(g);
            sl_json_gen_str(g, "archive_policy_name");
            sl_json_gen_str(g, m->ap);
            sl_json_gen_str(g, "unit");
            sl_json_gen_str(g, m->unit);
            yajl_gen_map_close(g);
        }
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    s_take(g, out);
    return count;
}

void
sl_gnocchi_resource_body(const sl_gnocchi_group_t *gr, sl_buf_t *out)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const char *base_k[3] = { "id", "user_id", "project_id" };
    const char *base_v[3] = { gr->id, gr->user_id, gr->project_id };
    yajl_val extra = gr->extra;
    size_t n = extra ? extra->u.object.len : 0;
    yajl_gen_map_open(g);
    for (int i = 0; i < 3; i++) {
        sl_json_gen_str(g, base_k[i]);
        yajl_val over = NULL;
        for (size_t k = 0; k < n; k++)
            if (strcmp(extra->u.object.keys[k], base_k[i]) == 0)
                over = extra->u.object.values[k];
        if (over)
            sl_json_gen_val(g, over);
        else
            sl_json_gen_str(g, base_v[i]);
    }
    for (size_t k = 0; k < n; k++) {
        const char *key = extra->u.object.keys[k];
        if (strcmp(key, "id") == 0 || strcmp(key, "user_id") == 0 ||
            strcmp(key, "project_id") == 0)
            continue;
        sl_json_gen_str(g, key);
        sl_json_gen_val(g, extra->u.object.values[k]);
    }
    yajl_gen_map_close(g);
    s_take(g, out);
}

static void
s_gen_object(yajl_val o, sl_buf_t *out)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    sl_json_gen_val(g, o);
    s_take(g, out);
}

uint64_t
sl_gnocchi_attrs_hash(yajl_val attrs)
{
    sl_buf_t b = { 0 };
    s_gen_object(attrs, &b);
    uint64_t h = sl_hash64(b.p ? b.p : "", b.n);
    sl_buf_free(&b);
    return h ? h : 1;   /* 0 marks an empty cache slot */
}

yajl_val
sl_gnocchi_event_attrs(const sl_gnocchi_rd_t *rd, yajl_val ev, sl_arena_t *a)
{
    yajl_val traits = sl_json_get(ev, "traits");
    yajl_val o = sl_pubjson_node(a, yajl_t_object);
    o->u.object.keys = sl_arena_alloc(a, (rd->n_evattrs + 1) * sizeof *o->u.object.keys);
    o->u.object.values = sl_arena_alloc(a, (rd->n_evattrs + 1) * sizeof *o->u.object.values);
    for (size_t i = 0; i < rd->n_evattrs; i++) {
        yajl_val val = NULL;
        /* dict([(t.name, t.value) for t in traits]): the last one wins */
        for (size_t t = 0; traits && YAJL_IS_ARRAY(traits) && t < traits->u.array.len; t++) {
            yajl_val tr = traits->u.array.values[t];
            if (!YAJL_IS_ARRAY(tr) || tr->u.array.len < 3)
                continue;
            const char *name = sl_json_str(tr->u.array.values[0]);
            if (name && strcmp(name, rd->evattrs[i].trait) == 0)
                val = tr->u.array.values[2];
        }
        if (!val || val->type == yajl_t_null)
            continue;
        o->u.object.keys[o->u.object.len] = rd->evattrs[i].attr;
        o->u.object.values[o->u.object.len] = val;
        o->u.object.len++;
    }
    return o;
}

long
sl_gnocchi_unknown_resources(const char *body, size_t len, sl_arena_t *a, const char ***ids)
{
    char why[128];
    yajl_val v = body && len ? sl_json_parse(a, body, len, 0, why, sizeof why) : NULL;
    yajl_val d = v ? sl_json_get(v, "description") : NULL;
    const char *cause = d ? sl_json_str(sl_json_get(d, "cause")) : NULL;
    yajl_val detail = d ? sl_json_get(d, "detail") : NULL;
    if (!cause || strcmp(cause, "Unknown resources") != 0 || !detail || !YAJL_IS_ARRAY(detail))
        return -1;
    const char **out = sl_arena_alloc(a, (detail->u.array.len + 1) * sizeof *out);
    long n = 0;
    for (size_t i = 0; i < detail->u.array.len; i++) {
        const char *id = sl_json_str(sl_json_get(detail->u.array.values[i],
                                                 "original_resource_id"));
        int dup = 0;
        for (long k = 0; id && k < n && !dup; k++)
            dup = strcmp(out[k], id) == 0;
        if (id && !dup)
            out[n++] = id;
    }
    *ids = out;
    return n;
}

sl_pub_status_t
sl_gnocchi_classify(sl_gnocchi_req_t kind, long status, int keystone)
{
    if (status >= 200 && status < 300)
        return SL_PUB_OK;
    if (status == 409 && kind == SL_GNOCCHI_REQ_CREATE)
        return SL_PUB_OK;
    if (status == 401 && keystone)
        return SL_PUB_RETRY;
    return sl_httpc_classify(status);
}

void
sl_gnocchi_utc_isoformat(char out[40], long long sec, long nsec)
{
    time_t t = (time_t) sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    long us = nsec / 1000;
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (us)
        snprintf(out + n, 40 - n, ".%06ld", us);
}

/* ---- the plugin ------------------------------------------------------------ */

enum { S_AUTH_BASIC = 0, S_AUTH_NOAUTH, S_AUTH_KEYSTONE };

typedef struct {
    char    *endpoint;
    unsigned auth;
    char    *user, *password, *password_file;
    char    *project_id, *roles;
    char    *auth_url, *project_name, *user_domain_name, *project_domain_name;
    char    *interface, *region_name;
    char    *archive_policy;
    char    *filter_project, *filter_domain, *filter_project_id;
    char    *resources_definition_file;
    double   timeout;
    unsigned attribute_cache_size;
    unsigned verify_ssl;
    char    *ca_file;
} s_opts_t;

#define S_OFF(f) offsetof(s_opts_t, f)

static int
s_check_http_url(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    if (strncmp(text, "http://", 7) != 0 && strncmp(text, "https://", 8) != 0)
        return sl_errf(err, errlen, "%s: '%s' must be an http:// or https:// URL", o->name, text);
    return 0;
}

static const sl_opt_t s_opts[] = {
    { .name = "endpoint", .type = SL_OPT_STR, .offset = S_OFF(endpoint),
      .check = s_check_http_url,
      .help = "Gnocchi's URL, e.g. http://127.0.0.1:8041 (or give gnocchi://HOST:PORT); with "
              "auth=keystone the default is the catalog's `metric` endpoint" },
    { .name = "auth", .type = SL_OPT_ENUM, .offset = S_OFF(auth), .def = "basic",
      .choices = "basic|noauth|keystone",
      .help = "basic = Gnocchi's auth_mode basic (Authorization: Basic base64(user:)); noauth = "
              "the X-User-Id, X-Project-Id, X-Roles headers of Gnocchi 3's noauth mode (or of a "
              "proxy that authenticates by them); keystone = a Keystone v3 password token "
              "(X-Auth-Token)" },
    { .name = "user", .type = SL_OPT_STR, .offset = S_OFF(user), .def = "admin",
      .help = "basic: the user name (admin gets Gnocchi's admin role, needed to create archive "
              "policies); noauth: X-User-Id; keystone: the user name" },
    { .name = "password", .type = SL_OPT_STR, .offset = S_OFF(password),
      .help = "keystone password (prefer password_file: a URL is easily logged; sluice never "
              "logs it)" },
    { .name = "password_file", .type = SL_OPT_PATH, .offset = S_OFF(password_file),
      .help = "file holding the keystone password (first line; trailing newline ignored)" },
    { .name = "project_id", .type = SL_OPT_STR, .offset = S_OFF(project_id),
      .help = "noauth: X-Project-Id (default: the user)" },
    { .name = "roles", .type = SL_OPT_STR, .offset = S_OFF(roles), .def = "admin",
      .help = "noauth: X-Roles" },
    { .name = "auth_url", .type = SL_OPT_STR, .offset = S_OFF(auth_url),
      .check = s_check_http_url,
      .help = "keystone: the identity URL, e.g. http://keystone:5000/v3 (/v3 is added if "
              "missing)" },
    { .name = "project_name", .type = SL_OPT_STR, .offset = S_OFF(project_name),
      .def = "service", .help = "keystone: project the token is scoped to" },
    { .name = "user_domain_name", .type = SL_OPT_STR, .offset = S_OFF(user_domain_name),
      .def = "Default", .help = "keystone: the user's domain" },
    { .name = "project_domain_name", .type = SL_OPT_STR, .offset = S_OFF(project_domain_name),
      .def = "Default", .help = "keystone: the project's domain" },
    { .name = "interface", .type = SL_OPT_STR, .offset = S_OFF(interface), .def = "public",
      .help = "keystone: catalog interface of the metric endpoint (public, internal, admin; "
              "Ceilometer's [service_credentials] interface)" },
    { .name = "region_name", .type = SL_OPT_STR, .offset = S_OFF(region_name),
      .help = "keystone: catalog region of the metric endpoint (default: the first)" },
    { .name = "archive_policy", .type = SL_OPT_STR, .offset = S_OFF(archive_policy),
      .help = "archive policy of every metric, overriding the YAML (Ceilometer's option)" },
    { .name = "filter_project", .type = SL_OPT_STR, .offset = S_OFF(filter_project),
      .def = "service",
      .help = "samples of this Keystone project (Gnocchi's own) are dropped to avoid a feedback "
              "loop; resolved to an id once through Keystone (auth=keystone only; not found = "
              "no filter, as Ceilometer)" },
    { .name = "filter_domain", .type = SL_OPT_STR, .offset = S_OFF(filter_domain),
      .def = "Default", .help = "domain of filter_project: picks among projects of that name by "
              "their domain_id (case aside)" },
    { .name = "filter_project_id", .type = SL_OPT_STR, .offset = S_OFF(filter_project_id),
      .help = "the filtered project's id given directly (any auth; no Keystone lookup)" },
    { .name = "resources_definition_file", .type = SL_OPT_PATH,
      .offset = S_OFF(resources_definition_file), .def = "gnocchi_resources.yaml",
      .help = "Ceilometer's gnocchi_resources.yaml; relative = in the directory of sluice.yaml; "
              "the default name, when no such file exists there, is Ceilometer 19's own file "
              "(compiled in)" },
    { .name = "timeout", .type = SL_OPT_DOUBLE, .offset = S_OFF(timeout), .def = "6.05",
      .dmin = 0.01, .dmax = 3600, .type_text = "seconds",
      .help = "bound on each HTTP request, in seconds (Ceilometer's default 6.05)" },
    { .name = "attribute_cache_size", .type = SL_OPT_UINT, .offset = S_OFF(attribute_cache_size),
      .def = "65536", .max = 16777216,
      .help = "resources whose attribute hash is remembered, so that a PATCH is sent only when "
              "the attributes change (Ceilometer with oslo.cache); 0 = PATCH every resource of "
              "every batch (Ceilometer without a cache)" },
    { .name = "verify_ssl", .type = SL_OPT_BOOL, .offset = S_OFF(verify_ssl), .def = "true",
      .help = "https: verify the server's certificate and host name" },
    { .name = "ca_file", .type = SL_OPT_PATH, .offset = S_OFF(ca_file),
      .help = "https: CA bundle (default: the system's)" },
    { .name = NULL },
};

static char *s_conf_dir;

void
sl_publisher_gnocchi_set_conf_file(const char *sluice_yaml)
{
    free(s_conf_dir);
    s_conf_dir = NULL;
    if (!sluice_yaml || strncmp(sluice_yaml, "<embedded>", 10) == 0)
        return;
    char *real = realpath(sluice_yaml, NULL);
    char *d = sl_xstrdup(real ? real : sluice_yaml);
    free(real);
    char *slash = strrchr(d, '/');
    if (slash == d)
        d[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(d, ".");
    s_conf_dir = d;
}

typedef struct {
    uint64_t key, val;
} s_slot_t;

typedef struct {
    unsigned          auth;
    char             *endpoint;         /* no trailing '/'; NULL until the catalog gives it */
    int               endpoint_given;
    char             *user, *password, *project_id, *roles;
    char             *auth_url;         /* ending in /v3 */
    char             *project_name, *user_domain, *project_domain, *interface, *region;
    char             *filter_project, *filter_domain, *filter_id;
    int               filter_state;     /* 0 = to resolve, 1 = filter_id, 2 = none */
    sl_gnocchi_res_t *res;
    sl_httpc_opts_t   hopts;
    sl_httpc_t       *http;
    char             *ca_file;
    char             *basic_header;
    char             *token;            /* keystone */
    time_t            token_renew_at;
    int               policies_done;
    s_slot_t         *cache;
    size_t            cache_size;
    uint64_t         *warned;           /* hashes of meter names warned about */
    size_t            n_warned, cap_warned;
    sl_arena_t        arena;
    sl_buf_t          body, path;
    sl_ratelimit_t    rl_drop, rl_patch, rl_event;
    unsigned long long dropped_measures;
} s_gn_t;

static void s_destroy(void **ctx_p);

static char *
s_read_first_line(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        sl_errf(err, errlen, "password_file %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[4096];
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    char *r = sl_xstrdup(buf);
    memset(buf, 0, sizeof buf);
    return r;
}

static void
s_base64(const char *in, char *out, size_t outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
        unsigned v = (unsigned char) in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char) in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char) in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

static char *
s_strip_slash(const char *u)
{
    char *r = sl_xstrdup(u);
    size_t n = strlen(r);
    while (n && r[n - 1] == '/')
        r[--n] = '\0';
    return r;
}

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    const s_opts_t *o = opts;
    s_gn_t *g = sl_xcalloc(1, sizeof *g);
    void *ctx = g;
    sl_arena_init(&g->arena, 0);
    g->auth = o->auth;
    /* gnocchi://HOST:PORT/PATH -> http://HOST:PORT/PATH */
    const char *rest = url + strlen("gnocchi://");
    size_t nl = strcspn(rest, "?#");
    if (o->endpoint) {
        g->endpoint = s_strip_slash(o->endpoint);
    } else if (nl && rest[0] != '/') {
        char *e = sl_xmalloc(nl + 8);
        snprintf(e, nl + 8, "http://%.*s", (int) nl, rest);
        g->endpoint = s_strip_slash(e);
        free(e);
    }
    g->endpoint_given = g->endpoint != NULL;
    if (!g->endpoint && g->auth != S_AUTH_KEYSTONE) {
        sl_errf(err, errlen, "needs Gnocchi's URL: gnocchi://?endpoint=http://HOST:8041 or "
                "gnocchi://HOST:8041 (only auth=keystone finds it in the catalog)");
        goto fail;
    }
    g->user = sl_xstrdup(o->user ? o->user : "admin");
    if (o->password_file) {
        if (!(g->password = s_read_first_line(o->password_file, err, errlen)))
            goto fail;
    } else if (o->password) {
        g->password = sl_xstrdup(o->password);
    }
    g->project_id = sl_xstrdup(o->project_id ? o->project_id : g->user);
    g->roles = sl_xstrdup(o->roles ? o->roles : "admin");
    if (g->auth == S_AUTH_KEYSTONE) {
        if (!o->auth_url) {
            sl_errf(err, errlen, "auth=keystone needs auth_url (e.g. http://keystone:5000/v3)");
            goto fail;
        }
        if (!g->password) {
            sl_errf(err, errlen, "auth=keystone needs password_file (or password)");
            goto fail;
        }
        char *u = s_strip_slash(o->auth_url);
        size_t n = strlen(u);
        if (n >= 3 && strcmp(u + n - 3, "/v3") == 0) {
            g->auth_url = u;
        } else {
            g->auth_url = sl_xmalloc(n + 4);
            snprintf(g->auth_url, n + 4, "%s/v3", u);
            free(u);
        }
        g->project_name = sl_xstrdup(o->project_name ? o->project_name : "service");
        g->user_domain = sl_xstrdup(o->user_domain_name ? o->user_domain_name : "Default");
        g->project_domain = sl_xstrdup(o->project_domain_name ? o->project_domain_name
                                                              : "Default");
        g->interface = sl_xstrdup(o->interface ? o->interface : "public");
        g->region = o->region_name ? sl_xstrdup(o->region_name) : NULL;
    } else {
        char up[512], b64[700];
        snprintf(up, sizeof up, "%s:", g->user);
        s_base64(up, b64, sizeof b64);
        size_t n = strlen(b64) + 32;
        g->basic_header = sl_xmalloc(n);
        snprintf(g->basic_header, n, "Authorization: Basic %s", b64);
    }
    if (o->filter_project_id) {
        g->filter_id = sl_xstrdup(o->filter_project_id);
        g->filter_state = 1;
    } else if (g->auth == S_AUTH_KEYSTONE && o->filter_project && *o->filter_project) {
        g->filter_project = sl_xstrdup(o->filter_project);
        g->filter_domain = sl_xstrdup(o->filter_domain ? o->filter_domain : "Default");
    } else {
        /* Ceilometer without Keystone (gnocchi-basic): the lookup finds
         * nothing and the filter is off */
        g->filter_state = 2;
    }
    /* resources_definition_file: Ceilometer's find_file in the config
     * dirs, else its packaged default */
    const char *rdf = o->resources_definition_file ? o->resources_definition_file
                                                   : "gnocchi_resources.yaml";
    char *path = NULL;
    if (rdf[0] == '/') {
        path = sl_xstrdup(rdf);
    } else {
        size_t n = strlen(rdf) + (s_conf_dir ? strlen(s_conf_dir) : 1) + 2;
        path = sl_xmalloc(n);
        snprintf(path, n, "%s/%s", s_conf_dir ? s_conf_dir : ".", rdf);
    }
    int use_default = strcmp(rdf, "gnocchi_resources.yaml") == 0 && access(path, F_OK) != 0;
    char why[512];
    g->res = sl_gnocchi_res_load(use_default ? NULL : path, o->archive_policy, NULL, why,
                                 sizeof why);
    free(path);
    if (!g->res) {
        sl_errf(err, errlen, "resources_definition_file: %s", why);
        goto fail;
    }
    g->cache_size = o->attribute_cache_size;
    if (g->cache_size)
        g->cache = sl_xcalloc(g->cache_size, sizeof *g->cache);
    g->ca_file = o->ca_file ? sl_xstrdup(o->ca_file) : NULL;
    g->hopts = (sl_httpc_opts_t) {
        .timeout_ms = (unsigned) (o->timeout * 1000.0 + 0.5),
        .verify_ssl = (int) o->verify_ssl,
        .ca_file = g->ca_file,
    };
    (void) check_only;   /* nothing is opened before the first publish */
    return g;
fail:
    s_destroy(&ctx);
    return NULL;
}

static void
s_destroy(void **ctx_p)
{
    s_gn_t *g = *ctx_p;
    if (!g)
        return;
    sl_httpc_free(&g->http);
    sl_gnocchi_res_destroy(&g->res);
    if (g->password) {
        memset(g->password, 0, strlen(g->password));
        free(g->password);
    }
    if (g->token) {
        memset(g->token, 0, strlen(g->token));
        free(g->token);
    }
    free(g->endpoint);
    free(g->user);
    free(g->project_id);
    free(g->roles);
    free(g->auth_url);
    free(g->project_name);
    free(g->user_domain);
    free(g->project_domain);
    free(g->interface);
    free(g->region);
    free(g->filter_project);
    free(g->filter_domain);
    free(g->filter_id);
    free(g->basic_header);
    free(g->ca_file);
    free(g->cache);
    free(g->warned);
    sl_buf_free(&g->body);
    sl_buf_free(&g->path);
    sl_arena_destroy(&g->arena);
    free(g);
    *ctx_p = NULL;
}

/* ---- requests -------------------------------------------------------------- */

static int
s_client(s_gn_t *g, char *err, size_t errlen)
{
    if (g->http)
        return 0;
    g->http = sl_httpc_new(&g->hopts, err, errlen);
    return g->http ? 0 : -1;
}

/* The catalog's metric endpoint for the configured interface/region. */
static char *
s_catalog_endpoint(s_gn_t *g, yajl_val token)
{
    yajl_val cat = sl_json_get(token, "catalog");
    for (size_t i = 0; cat && YAJL_IS_ARRAY(cat) && i < cat->u.array.len; i++) {
        yajl_val svc = cat->u.array.values[i];
        const char *type = sl_json_str(sl_json_get(svc, "type"));
        yajl_val eps = sl_json_get(svc, "endpoints");
        if (!type || strcmp(type, "metric") != 0 || !eps || !YAJL_IS_ARRAY(eps))
            continue;
        for (size_t k = 0; k < eps->u.array.len; k++) {
            yajl_val ep = eps->u.array.values[k];
            const char *itf = sl_json_str(sl_json_get(ep, "interface"));
            const char *reg = sl_json_str(sl_json_get(ep, "region_id"));
            if (!reg)
                reg = sl_json_str(sl_json_get(ep, "region"));
            const char *u = sl_json_str(sl_json_get(ep, "url"));
            if (!u || !itf || strcmp(itf, g->interface) != 0)
                continue;
            if (g->region && (!reg || strcmp(reg, g->region) != 0))
                continue;
            return s_strip_slash(u);
        }
    }
    return NULL;
}

/* A keystone token (and the endpoint from the catalog): 0, or -1 with err
 * (always worth a retry: Keystone may come back). */
static int
s_keystone_auth(s_gn_t *g, char *err, size_t errlen)
{
    if (g->token && time(NULL) < g->token_renew_at)
        return 0;
    if (s_client(g, err, errlen) < 0)
        return -1;
    yajl_gen gen = yajl_gen_alloc(NULL);
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "auth");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "identity");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "methods");
    yajl_gen_array_open(gen);
    sl_json_gen_str(gen, "password");
    yajl_gen_array_close(gen);
    sl_json_gen_str(gen, "password");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "user");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "name");
    sl_json_gen_str(gen, g->user);
    sl_json_gen_str(gen, "domain");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "name");
    sl_json_gen_str(gen, g->user_domain);
    yajl_gen_map_close(gen);
    sl_json_gen_str(gen, "password");
    sl_json_gen_str(gen, g->password);
    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);
    sl_json_gen_str(gen, "scope");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "project");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "name");
    sl_json_gen_str(gen, g->project_name);
    sl_json_gen_str(gen, "domain");
    yajl_gen_map_open(gen);
    sl_json_gen_str(gen, "name");
    sl_json_gen_str(gen, g->project_domain);
    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);
    sl_buf_t body = { 0 };
    s_take(gen, &body);
    char url[1200];
    snprintf(url, sizeof url, "%s/auth/tokens", g->auth_url);
    const char *hdr[] = { "Accept: application/json", "Content-Type: application/json", NULL };
    long status = 0;
    int rc = sl_httpc_request(g->http, "POST", url, hdr, body.p, body.n, &status, err, errlen);
    memset(body.p, 0, body.n);   /* it holds the password */
    sl_buf_free(&body);
    if (rc < 0)
        return -1;
    if (status != 201 && status != 200) {
        sl_httpc_status_error(g->http, "POST", url, status, err, errlen);
        return -1;
    }
    size_t len;
    const char *resp = sl_httpc_body(g->http, &len);
    sl_arena_t a;
    sl_arena_init(&a, 0);
    char why[128];
    yajl_val v = sl_json_parse(&a, resp, len, 0, why, sizeof why);
    yajl_val tok = v ? sl_json_get(v, "token") : NULL;
    /* Keystone v3 gives the token only in this header */
    const char *id = sl_httpc_header(g->http, "X-Subject-Token");
    const char *exp = tok ? sl_json_str(sl_json_get(tok, "expires_at")) : NULL;
    if (!tok || !id || !*id) {
        sl_arena_destroy(&a);
        return sl_errf(err, errlen, "POST %s: no token in Keystone's answer (X-Subject-Token "
                       "header and token body expected): is auth_url a Keystone v3 URL?", url);
    }
    if (g->token) {
        memset(g->token, 0, strlen(g->token));
        free(g->token);
    }
    g->token = sl_xstrdup(id);
    int64_t us = 0;
    time_t now = time(NULL);
    /* renewed 60 s before it expires (a quarter of its lifetime before, for
     * tokens of less than 4 minutes; at most an hour after now) */
    g->token_renew_at = now + 3600;
    if (exp && sl_isotime_parse(exp, &us) == 0) {
        time_t life = (time_t) (us / 1000000) - now;
        time_t t = now + life - (life < 240 ? life / 4 : 60);
        g->token_renew_at = t > now + 3600 ? now + 3600 : t;
    }
    if (!g->endpoint_given) {
        char *e = s_catalog_endpoint(g, tok);
        if (!e) {
            sl_arena_destroy(&a);
            free(g->token);
            g->token = NULL;
            return sl_errf(err, errlen, "Keystone's catalog has no metric endpoint for "
                           "interface %s%s%s (give endpoint=)", g->interface,
                           g->region ? " in region " : "", g->region ? g->region : "");
        }
        free(g->endpoint);
        g->endpoint = e;
    }
    sl_arena_destroy(&a);
    return 0;
}

/* One request to Gnocchi (path starting with /v1) or, with abs, to a full
 * URL. 0 with *status, or -1 (transport or authentication failure: RETRY)
 * with err. A 401 under keystone renews the token and sends once more. */
static int
s_request(s_gn_t *g, const char *method, const char *path, int abs, const char *body,
          size_t len, long *status, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s_client(g, err, errlen) < 0)
            return -1;
        if (g->auth == S_AUTH_KEYSTONE && s_keystone_auth(g, err, errlen) < 0)
            return -1;
        char tok[4200], uid[300], pid[300], roles[300];
        const char *hdr[8];
        size_t h = 0;
        hdr[h++] = "Accept: application/json";
        if (body)
            hdr[h++] = "Content-Type: application/json";
        if (g->auth == S_AUTH_KEYSTONE) {
            snprintf(tok, sizeof tok, "X-Auth-Token: %s", g->token);
            hdr[h++] = tok;
        } else if (g->auth == S_AUTH_NOAUTH) {
            snprintf(uid, sizeof uid, "X-User-Id: %s", g->user);
            snprintf(pid, sizeof pid, "X-Project-Id: %s", g->project_id);
            snprintf(roles, sizeof roles, "X-Roles: %s", g->roles);
            hdr[h++] = uid;
            hdr[h++] = pid;
            hdr[h++] = roles;
        } else {
            hdr[h++] = g->basic_header;
        }
        hdr[h] = NULL;
        sl_buf_reset(&g->path);
        if (!abs)
            sl_buf_puts(&g->path, g->endpoint);
        sl_buf_puts(&g->path, path);
        int rc = sl_httpc_request(g->http, method, g->path.p, hdr, body, len, status, err,
                                  errlen);
        memset(tok, 0, sizeof tok);
        if (rc < 0)
            return -1;
        if (*status == 401 && g->auth == S_AUTH_KEYSTONE && attempt == 0) {
            free(g->token);
            g->token = NULL;
            continue;
        }
        break;
    }
    return 0;
}

/* err = "<method> <path>: HTTP <status>: <body start>" */
static void
s_status_err(s_gn_t *g, const char *method, long status, char *err, size_t errlen)
{
    sl_httpc_status_error(g->http, method, g->path.p, status, err, errlen);
}

/* Appends id to the path, percent-encoding what a path segment cannot hold. */
static void
s_put_id(sl_buf_t *b, const char *id)
{
    for (const unsigned char *p = (const unsigned char *) (id ? id : "None"); *p; p++) {
        if (isalnum(*p) || strchr("-._~!$&'()*+,;=:@", *p))
            sl_buf_putc(b, (char) *p);
        else
            sl_buf_printf(b, "%%%02X", *p);
    }
}

static char *
s_resource_path(sl_arena_t *a, const char *prefix, const char *type, const char *id)
{
    sl_buf_t b = { 0 };
    sl_buf_puts(&b, prefix);
    s_put_id(&b, type);
    if (id) {
        sl_buf_putc(&b, '/');
        s_put_id(&b, id);
    }
    char *r = sl_arena_strdup(a, b.p);
    sl_buf_free(&b);
    return r;
}

static sl_pub_status_t
s_ensure_policies(s_gn_t *g, char *err, size_t errlen)
{
    if (g->policies_done)
        return SL_PUB_OK;
    for (size_t i = 0; i < sl_gnocchi_res_n_policies(g->res); i++) {
        const sl_gnocchi_ap_t *ap = sl_gnocchi_res_policy(g->res, i);
        long st;
        if (s_request(g, "POST", "/v1/archive_policy/", 0, ap->body, strlen(ap->body), &st, err,
                      errlen) < 0)
            return SL_PUB_RETRY;
        sl_pub_status_t r = sl_gnocchi_classify(SL_GNOCCHI_REQ_CREATE, st,
                                                g->auth == S_AUTH_KEYSTONE);
        if (r == SL_PUB_RETRY) {
            s_status_err(g, "POST", st, err, errlen);
            return SL_PUB_RETRY;
        }
        if (r == SL_PUB_ERROR) {
            char why[400];
            s_status_err(g, "POST", st, why, sizeof why);
            sl_warn("gnocchi: archive policy %s not created (%s); metrics that use it will be "
                    "refused if it does not exist", ap->name, why);
        }
    }
    g->policies_done = 1;
    return SL_PUB_OK;
}

/* filter_project -> its id, once (keystone only). */
static sl_pub_status_t
s_resolve_filter(s_gn_t *g, char *err, size_t errlen)
{
    if (g->filter_state)
        return SL_PUB_OK;
    if (s_keystone_auth(g, err, errlen) < 0)
        return SL_PUB_RETRY;
    sl_buf_t u = { 0 };
    sl_buf_printf(&u, "%s/projects?name=", g->auth_url);
    s_put_id(&u, g->filter_project);
    sl_buf_puts(&u, "&domain=");
    s_put_id(&u, g->filter_domain);
    long st;
    int rc = s_request(g, "GET", u.p, 1, NULL, 0, &st, err, errlen);
    sl_buf_free(&u);
    if (rc < 0)
        return SL_PUB_RETRY;
    if (st >= 500 || st == 429 || st == 408 || st == 401) {
        s_status_err(g, "GET", st, err, errlen);
        return SL_PUB_RETRY;
    }
    size_t len;
    const char *b = sl_httpc_body(g->http, &len);
    char why[128];
    yajl_val v = st == 200 ? sl_json_parse(&g->arena, b, len, 0, why, sizeof why) : NULL;
    yajl_val ps = v ? sl_json_get(v, "projects") : NULL;
    size_t n = ps && YAJL_IS_ARRAY(ps) ? ps->u.array.len : 0, in_domain = 0;
    const char *id = n == 1 ? sl_json_str(sl_json_get(ps->u.array.values[0], "id")) : NULL;
    for (size_t i = 0; n > 1 && i < n; i++) {
        const char *dom = sl_json_str(sl_json_get(ps->u.array.values[i], "domain_id"));
        if (dom && strcasecmp(dom, g->filter_domain) == 0 && in_domain++ == 0)
            id = sl_json_str(sl_json_get(ps->u.array.values[i], "id"));
    }
    if (in_domain > 1)
        id = NULL;
    if (n > 1 && !id) {
        sl_warn("gnocchi: %zu projects are named %s in Keystone and not exactly one of them is "
                "in domain %s: ignoring the filter_project option (set filter_domain to the "
                "project's domain id, or filter_project_id to the project's id)", n,
                g->filter_project, g->filter_domain);
        g->filter_state = 2;
        return SL_PUB_OK;
    }
    if (id) {
        g->filter_id = sl_xstrdup(id);
        g->filter_state = 1;
        sl_debug("gnocchi: filtered project %s is %s", g->filter_project, id);
    } else {
        sl_warn("gnocchi: filtered project %s (domain %s) not found in Keystone (HTTP %ld), "
                "ignoring the filter_project option", g->filter_project, g->filter_domain, st);
        g->filter_state = 2;
    }
    return SL_PUB_OK;
}

static void
s_warn_unknown(void *ud, const char *name)
{
    s_gn_t *g = ud;
    uint64_t h = sl_hash64_str(name);
    for (size_t i = 0; i < g->n_warned; i++)
        if (g->warned[i] == h)
            return;
    if (g->n_warned < 4096) {
        if (g->n_warned == g->cap_warned) {
            g->cap_warned = g->cap_warned ? 2 * g->cap_warned : 16;
            g->warned = sl_xrealloc(g->warned, g->cap_warned * sizeof *g->warned);
        }
        g->warned[g->n_warned++] = h;
        sl_warn("gnocchi: metric %s is not handled by Gnocchi (not in the resources definition); "
                "its samples are dropped", name);
    }
}

/* 1 if the cache says the attributes of id are already hash h. */
static int
s_cached(s_gn_t *g, const char *id, uint64_t h)
{
    if (!g->cache_size)
        return 0;
    uint64_t k = sl_hash64_str(id);
    s_slot_t *s = &g->cache[k % g->cache_size];
    return s->key == k && s->val == h;
}

static void
s_cache_set(s_gn_t *g, const char *id, uint64_t h)
{
    if (!g->cache_size)
        return;
    uint64_t k = sl_hash64_str(id);
    s_slot_t *s = &g->cache[k % g->cache_size];
    s->key = k;
    s->val = h;
}

/* PATCH the attributes unless cached (_if_not_cached). Never fails the
 * batch: 0 done or nothing to do, -1 logged. */
static int
s_patch_attrs(s_gn_t *g, const char *type, const char *id, yajl_val attrs)
{
    uint64_t h = sl_gnocchi_attrs_hash(attrs);
    if (s_cached(g, id, h))
        return 0;
    s_gen_object(attrs, &g->body);
    const char *p = s_resource_path(&g->arena, "/v1/resource/", type, id);
    long st;
    char why[600];
    if (s_request(g, "PATCH", p, 0, g->body.p, g->body.n, &st, why, sizeof why) < 0) {
        sl_log_limited(&g->rl_patch, SL_LOG_WARN, "gnocchi: updating the attributes of %s %s: %s",
                       type, id, why);
        return -1;
    }
    if (st < 200 || st >= 300) {
        s_status_err(g, "PATCH", st, why, sizeof why);
        sl_log_limited(&g->rl_patch, st == 404 ? SL_LOG_DEBUG : SL_LOG_WARN,
                       "gnocchi: updating the attributes of %s %s: %s", type, id, why);
        return -1;
    }
    s_cache_set(g, id, h);
    return 0;
}

static sl_pub_status_t
s_publish_samples(s_gn_t *g, const sl_pub_batch_t *batch, char *err, size_t errlen)
{
    sl_pub_status_t r = s_ensure_policies(g, err, errlen);
    if (r != SL_PUB_OK)
        return r;
    if ((r = s_resolve_filter(g, err, errlen)) != SL_PUB_OK)
        return r;
    unsigned char *skip = NULL;
    if (g->filter_state == 1) {
        skip = sl_arena_alloc(&g->arena, batch->n + 1);
        for (size_t i = 0; i < batch->n; i++) {
            const sl_sample_t *s = &batch->samples[i];
            const sl_gnocchi_rd_t *rd = sl_gnocchi_res_metric(g->res, s->name, NULL);
            skip[i] = (s->project_id && strcmp(s->project_id, g->filter_id) == 0) ||
                      (s->resource_id && strcmp(s->resource_id, g->filter_id) == 0 && rd &&
                       strcmp(rd->resource_type, "swift_account") == 0);
        }
    }
    size_t unknown = 0;
    sl_gnocchi_batch_t *b = sl_gnocchi_batch_build(g->res, batch->samples, batch->n, skip,
                                                   batch->forward, &g->arena, s_warn_unknown, g,
                                                   &unknown);
    size_t ng = sl_gnocchi_batch_n_groups(b);
    if (!ng)
        return SL_PUB_OK;
    sl_pub_status_t result = SL_PUB_OK;
    int ks = g->auth == S_AUTH_KEYSTONE;
    for (int round = 0;; round++) {
        size_t count = sl_gnocchi_batch_body(b, &g->body);
        if (!count)
            break;
        long st;
        if (s_request(g, "POST", "/v1/batch/resources/metrics/measures?create_metrics=True", 0,
                      g->body.p, g->body.n, &st, err, errlen) < 0)
            return SL_PUB_RETRY;
        if (st >= 200 && st < 300)
            break;
        size_t blen;
        const char *rb = sl_httpc_body(g->http, &blen);
        const char **ids = NULL;
        long nu = st == 400 ? sl_gnocchi_unknown_resources(rb, blen, &g->arena, &ids) : -1;
        if (nu < 0 || round >= 2) {
            r = sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, st, ks);
            s_status_err(g, "POST", st, err, errlen);
            if (r == SL_PUB_RETRY)
                return r;
            result = SL_PUB_ERROR;   /* attributes are still refreshed, as Ceilometer */
            break;
        }
        for (long i = 0; i < nu; i++) {
            sl_gnocchi_group_t *gr = sl_gnocchi_batch_find(b, ids[i]);
            if (!gr || gr->dropped)
                continue;
            sl_gnocchi_resource_body(gr, &g->body);
            const char *p = s_resource_path(&g->arena, "/v1/resource/", gr->rd->resource_type,
                                            NULL);
            if (s_request(g, "POST", p, 0, g->body.p, g->body.n, &st, err, errlen) < 0)
                return SL_PUB_RETRY;
            r = sl_gnocchi_classify(SL_GNOCCHI_REQ_CREATE, st, ks);
            if (r == SL_PUB_RETRY) {
                s_status_err(g, "POST", st, err, errlen);
                return r;
            }
            if (r == SL_PUB_ERROR) {
                char why[600];
                s_status_err(g, "POST", st, why, sizeof why);
                gr->dropped = 1;
                g->dropped_measures += gr->n_measures;
                sl_log_limited(&g->rl_drop, SL_LOG_ERROR, "gnocchi: error creating resource %s: "
                               "%s; its %zu measures are dropped (%llu so far)", gr->id, why,
                               gr->n_measures, g->dropped_measures);
            } else if (gr->extra->u.object.len) {
                s_cache_set(g, gr->id, sl_gnocchi_attrs_hash(gr->extra));
            }
        }
    }
    for (size_t i = 0; i < ng; i++) {
        sl_gnocchi_group_t *gr = sl_gnocchi_batch_group(b, i);
        if (!gr->dropped && gr->extra->u.object.len)
            s_patch_attrs(g, gr->rd->resource_type, gr->id, gr->extra);
    }
    return result;
}

/* One event. RETRY stops the batch; other failures are logged. */
static sl_pub_status_t
s_publish_event(s_gn_t *g, const char *text, const struct sl_forward *fwd, char *err,
                size_t errlen)
{
    char why[600];
    yajl_val ev = text ? sl_json_parse(&g->arena, text, strlen(text), 0, why, sizeof why) : NULL;
    if (ev && fwd)
        sl_forward_filter(fwd, 1, ev);   /* traits the consumer may not see */
    const char *et = ev ? sl_json_str(sl_json_get(ev, "event_type")) : NULL;
    if (!et)
        return SL_PUB_OK;
    sl_gnocchi_ev_op_t op;
    const sl_gnocchi_rd_t *rd = sl_gnocchi_res_event(g->res, et, &op);
    if (!rd)
        return SL_PUB_OK;
    yajl_val attrs = sl_gnocchi_event_attrs(rd, ev, &g->arena);
    yajl_val idv = sl_json_get(attrs, "id");
    const char *id = idv ? sl_json_scalar_text(&g->arena, idv) : NULL;
    if (!id) {
        sl_log_limited(&g->rl_event, SL_LOG_WARN, "gnocchi: %s event %s has no trait for the "
                       "resource id; ignored", et,
                       sl_json_str(sl_json_get(ev, "message_id")) ?: "?");
        return SL_PUB_OK;
    }
    int ks = g->auth == S_AUTH_KEYSTONE;
    long st;
    if (op == SL_GNOCCHI_EV_CREATE) {
        s_gen_object(attrs, &g->body);
        const char *p = s_resource_path(&g->arena, "/v1/resource/", rd->resource_type, NULL);
        if (s_request(g, "POST", p, 0, g->body.p, g->body.n, &st, err, errlen) < 0)
            return SL_PUB_RETRY;
        sl_pub_status_t r = sl_gnocchi_classify(SL_GNOCCHI_REQ_CREATE, st, ks);
        if (r == SL_PUB_RETRY) {
            s_status_err(g, "POST", st, err, errlen);
            return r;
        }
        if (r == SL_PUB_ERROR) {
            s_status_err(g, "POST", st, why, sizeof why);
            sl_log_limited(&g->rl_event, SL_LOG_ERROR, "gnocchi: failed to create resource %s "
                           "from %s: %s", id, et, why);
        }
        return SL_PUB_OK;
    }
    /* delete / update: the resource and the associated resources found */
    size_t cap = 1, n = 0;
    const char **types = sl_arena_alloc(&g->arena, sizeof *types);
    const char **ids = sl_arena_alloc(&g->arena, sizeof *ids);
    types[n] = rd->resource_type;
    ids[n++] = id;
    for (size_t i = 0; i < rd->n_assoc; i++) {
        sl_buf_t q = { 0 };
        const char *pct = strstr(rd->assoc[i].query, "%s");
        sl_buf_put(&q, rd->assoc[i].query, (size_t) (pct - rd->assoc[i].query));
        sl_buf_puts(&q, id);
        sl_buf_puts(&q, pct + 2);
        yajl_val qv = sl_json_parse(&g->arena, q.p, q.n, 0, why, sizeof why);
        sl_buf_free(&q);
        if (!qv) {
            sl_log_limited(&g->rl_event, SL_LOG_ERROR, "gnocchi: search query for %s is not "
                           "JSON with id %s: %s", rd->assoc[i].type, id, why);
            continue;
        }
        s_gen_object(qv, &g->body);
        const char *p = s_resource_path(&g->arena, "/v1/search/resource/", rd->assoc[i].type,
                                        NULL);
        if (s_request(g, "POST", p, 0, g->body.p, g->body.n, &st, err, errlen) < 0)
            return SL_PUB_RETRY;
        if (st < 200 || st >= 300) {
            if (sl_gnocchi_classify(SL_GNOCCHI_REQ_OTHER, st, ks) == SL_PUB_RETRY) {
                s_status_err(g, "POST", st, err, errlen);
                return SL_PUB_RETRY;
            }
            s_status_err(g, "POST", st, why, sizeof why);
            sl_log_limited(&g->rl_event, SL_LOG_ERROR, "gnocchi: fail to search resource type "
                           "%s: %s", rd->assoc[i].type, why);
            continue;
        }
        size_t blen;
        const char *rb = sl_httpc_body(g->http, &blen);
        yajl_val found = sl_json_parse(&g->arena, rb, blen, 0, why, sizeof why);
        for (size_t k = 0; found && YAJL_IS_ARRAY(found) && k < found->u.array.len; k++) {
            yajl_val fr = found->u.array.values[k];
            const char *ft = sl_json_str(sl_json_get(fr, "type"));
            const char *fi = sl_json_str(sl_json_get(fr, "id"));
            if (!ft || !fi)
                continue;
            if (n == cap) {
                const char **nt = sl_arena_alloc(&g->arena, 2 * cap * sizeof *nt);
                const char **ni = sl_arena_alloc(&g->arena, 2 * cap * sizeof *ni);
                memcpy(nt, types, n * sizeof *nt);
                memcpy(ni, ids, n * sizeof *ni);
                types = nt;
                ids = ni;
                cap *= 2;
            }
            types[n] = ft;
            ids[n++] = fi;
        }
    }
    char ended[40];
    if (op == SL_GNOCCHI_EV_DELETE) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        sl_gnocchi_utc_isoformat(ended, (long long) now.tv_sec, now.tv_nsec);
    }
    for (size_t i = 0; i < n; i++) {
        if (op == SL_GNOCCHI_EV_UPDATE) {
            /* resource minus id and type (Ceilometer pops both) */
            yajl_val rest = sl_pubjson_node(&g->arena, yajl_t_object);
            rest->u.object.keys = sl_arena_alloc(&g->arena, (attrs->u.object.len + 1) *
                                                 sizeof *rest->u.object.keys);
            rest->u.object.values = sl_arena_alloc(&g->arena, (attrs->u.object.len + 1) *
                                                   sizeof *rest->u.object.values);
            for (size_t k = 0; k < attrs->u.object.len; k++)
                if (strcmp(attrs->u.object.keys[k], "id") != 0) {
                    rest->u.object.keys[rest->u.object.len] = attrs->u.object.keys[k];
                    rest->u.object.values[rest->u.object.len++] = attrs->u.object.values[k];
                }
            s_patch_attrs(g, types[i], ids[i], rest);
            continue;
        }
        sl_buf_reset(&g->body);
        sl_buf_puts(&g->body, "{\"ended_at\":\"");
        sl_buf_puts(&g->body, ended);
        sl_buf_puts(&g->body, "\"}");
        const char *p = s_resource_path(&g->arena, "/v1/resource/", types[i], ids[i]);
        if (s_request(g, "PATCH", p, 0, g->body.p, g->body.n, &st, err, errlen) < 0)
            return SL_PUB_RETRY;
        if (st < 200 || st >= 300) {
            if (sl_gnocchi_classify(SL_GNOCCHI_REQ_OTHER, st, ks) == SL_PUB_RETRY) {
                s_status_err(g, "PATCH", st, err, errlen);
                return SL_PUB_RETRY;
            }
            s_status_err(g, "PATCH", st, why, sizeof why);
            sl_log_limited(&g->rl_event, st == 404 ? SL_LOG_DEBUG : SL_LOG_ERROR,
                           "gnocchi: setting ended_at of %s %s: %s", types[i], ids[i], why);
        }
    }
    return SL_PUB_OK;
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *batch, char *err, size_t errlen)
{
    s_gn_t *g = ctx;
    if (!batch->n)
        return SL_PUB_OK;
    sl_arena_reset(&g->arena);
    if (g->auth == S_AUTH_KEYSTONE && s_keystone_auth(g, err, errlen) < 0)
        return SL_PUB_RETRY;
    sl_pub_status_t r = SL_PUB_OK;
    if (batch->kind == SL_PUB_EVENTS) {
        for (size_t i = 0; i < batch->n && r == SL_PUB_OK; i++) {
            r = s_publish_event(g, batch->events[i], batch->forward, err, errlen);
            sl_arena_reset(&g->arena);
        }
    } else {
        r = s_publish_samples(g, batch, err, errlen);
    }
    sl_arena_reset(&g->arena);
    return r;
}

const sl_pub_plugin_t sl_pub_gnocchi = {
    .name = "gnocchi",
    .help = "Gnocchi measures and resources, as Ceilometer's gnocchi:// (batch measures API, "
            "resources from gnocchi_resources.yaml; basic, noauth or keystone auth)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD | SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
