/* publisher_gnocchi: the gnocchi_resources.yaml model (Ceilometer 19's
 * ResourcesDefinition), the grouping and request bodies of
 * GnocchiPublisher.publish_samples (the expected texts are what Ceilometer
 * sent in tests/data/reference/gnocchi_publisher_capture.jsonl), event
 * attributes, Gnocchi's "Unknown resources" answer, the outcome mapping and
 * the URL options. No server: the requests themselves, against a real
 * Gnocchi and next to Ceilometer's, are tests/func/test_gnocchi.py. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/sample.h"
#include "worker/publishers/gnocchi.h"
#include "worker/publishers/gnocchi_res.h"
#include "worker/publishers/publisher.h"

static sl_gnocchi_res_t *
s_default(void)
{
    char err[512];
    sl_gnocchi_res_t *r = sl_gnocchi_res_load(NULL, NULL, NULL, err, sizeof err);
    ck_assert_msg(r != NULL, "the compiled-in gnocchi_resources.yaml loads: %s", err);
    return r;
}

START_TEST(the_default_model_is_ceilometers_file)
{
    sl_gnocchi_res_t *r = s_default();
    ck_assert_uint_eq(sl_gnocchi_res_n_policies(r), 4);
    /* byte for byte what gnocchiclient posted (the recording) */
    ck_assert_str_eq(sl_gnocchi_res_policy(r, 1)->body,
                     "{\"name\":\"ceilometer-low-rate\",\"aggregation_methods\":[\"mean\","
                     "\"rate:mean\"],\"back_window\":0,\"definition\":[{\"granularity\":"
                     "\"5 minutes\",\"timespan\":\"30 days\"}]}");
    ck_assert_uint_eq(sl_gnocchi_res_n_resources(r), 20);
    const char *ap = NULL;
    const sl_gnocchi_rd_t *rd = sl_gnocchi_res_metric(r, "cpu", &ap);
    ck_assert_ptr_nonnull(rd);
    ck_assert_str_eq(rd->resource_type, "instance");
    ck_assert_str_eq(ap, "ceilometer-low-rate");
    rd = sl_gnocchi_res_metric(r, "memory.usage", &ap);
    ck_assert_str_eq(rd->resource_type, "instance");
    ck_assert_str_eq(ap, "ceilometer-low");
    rd = sl_gnocchi_res_metric(r, "hardware.ipmi.temperature", &ap);   /* list form */
    ck_assert_str_eq(rd->resource_type, "ipmi_sensor");
    ck_assert_str_eq(ap, "ceilometer-low");
    ck_assert_str_eq(sl_gnocchi_res_metric(r, "network.incoming.bytes", &ap)->resource_type,
                     "instance_network_interface");
    ck_assert_str_eq(ap, "ceilometer-low-rate");
    ck_assert_ptr_null(sl_gnocchi_res_metric(r, "cpu_util", &ap));
    ck_assert_ptr_null(sl_gnocchi_res_metric(r, "not.a.known.meter", &ap));
    sl_gnocchi_res_destroy(&r);
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(archive_policies_default_override_and_the_deprecated_resource_level)
{
    const char *y =
        "archive_policy_default: low\n"
        "resources:\n"
        "  - resource_type: a\n"
        "    metrics: {m1: , m2: {archive_policy_name: high}}\n"
        "  - resource_type: b\n"
        "    archive_policy: legacy\n"
        "    metrics: [m3]\n"
        "  - metrics: [nope]\n"             /* no resource_type: skipped */
        "  - resource_type: c\n"
        "    metrics: [m1]\n";              /* a later definition wins */
    char err[512];
    sl_ywarn_t w = { 0 };
    sl_gnocchi_res_t *r = sl_gnocchi_res_parse(y, strlen(y), "t.yaml", NULL, &w, err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    ck_assert_uint_eq(w.count, 1);
    ck_assert_uint_eq(sl_gnocchi_res_n_resources(r), 3);
    const char *ap;
    ck_assert_str_eq(sl_gnocchi_res_metric(r, "m1", &ap)->resource_type, "c");
    ck_assert_str_eq(ap, "low");
    ck_assert_str_eq(sl_gnocchi_res_metric(r, "m2", &ap)->resource_type, "a");
    ck_assert_str_eq(ap, "high");
    ck_assert_str_eq(sl_gnocchi_res_metric(r, "m3", &ap)->resource_type, "b");
    ck_assert_str_eq(ap, "legacy");
    ck_assert_ptr_null(sl_gnocchi_res_metric(r, "nope", &ap));
    sl_gnocchi_res_destroy(&r);

    /* the URL's archive_policy overrides every metric, but not the
     * resource-level one (Ceilometer applies that after the override) */
    r = sl_gnocchi_res_parse(y, strlen(y), "t.yaml", "forced", NULL, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    sl_gnocchi_res_metric(r, "m2", &ap);
    ck_assert_str_eq(ap, "forced");
    sl_gnocchi_res_metric(r, "m3", &ap);
    ck_assert_str_eq(ap, "legacy");
    sl_gnocchi_res_destroy(&r);

    /* strict: the skipped resource is an error naming file and line */
    sl_ywarn_t strict = { .strict = 1 };
    r = sl_gnocchi_res_parse(y, strlen(y), "t.yaml", NULL, &strict, err, sizeof err);
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err, "t.yaml:8") && strstr(err, "resource_type"), "%s", err);
    /* events without event_attributes.id are skipped too */
    const char *y2 = "resources:\n  - resource_type: x\n    metrics: [a]\n"
                     "    event_create: x.create\n    event_attributes: {name: n}\n";
    w.count = 0;
    r = sl_gnocchi_res_parse(y2, strlen(y2), "t2.yaml", NULL, &w, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(w.count, 1);
    ck_assert_uint_eq(sl_gnocchi_res_n_resources(r), 0);
    sl_gnocchi_res_destroy(&r);
    /* a file that is not YAML, or not a mapping */
    ck_assert_ptr_null(sl_gnocchi_res_parse("[1]", 3, "l.yaml", NULL, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "l.yaml:1") != NULL, "%s", err);
    ck_assert_ptr_null(sl_gnocchi_res_load("/nonexistent/g.yaml", NULL, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/g.yaml") != NULL, "%s", err);
}
END_TEST

START_TEST(events_match_create_then_delete_then_update_globs)
{
    sl_gnocchi_res_t *r = s_default();
    sl_gnocchi_ev_op_t op;
    const sl_gnocchi_rd_t *rd = sl_gnocchi_res_event(r, "compute.instance.create.end", &op);
    ck_assert_str_eq(rd->resource_type, "instance");
    ck_assert_int_eq(op, SL_GNOCCHI_EV_CREATE);
    ck_assert_uint_eq(rd->n_assoc, 2);
    ck_assert_str_eq(rd->assoc[0].type, "instance_network_interface");
    rd = sl_gnocchi_res_event(r, "compute.instance.delete.start", &op);
    ck_assert_int_eq(op, SL_GNOCCHI_EV_DELETE);
    rd = sl_gnocchi_res_event(r, "snapshot.transfer.accept.end", &op);
    ck_assert_str_eq(rd->resource_type, "volume");
    ck_assert_int_eq(op, SL_GNOCCHI_EV_UPDATE);
    rd = sl_gnocchi_res_event(r, "floatingip.delete.end", &op);
    ck_assert_str_eq(rd->resource_type, "network");
    ck_assert_ptr_null(sl_gnocchi_res_event(r, "compute.instance.exists", &op));
    ck_assert_int_eq(op, SL_GNOCCHI_EV_NONE);

    /* event_attributes: trait values, absent traits left out, YAML order */
    sl_arena_t a;
    sl_arena_init(&a, 0);
    const char *ev = "{\"event_type\": \"compute.instance.create.end\", \"generated\": \"x\", "
                     "\"message_id\": \"m\", \"traits\": [[\"instance_id\", 1, \"vm-2\"], "
                     "[\"host\", 1, \"compute-2\"], [\"display_name\", 1, \"vm\"], "
                     "[\"instance_type_id\", 1, \"2\"], [\"user_id\", 1, null], "
                     "[\"host\", 1, \"compute-3\"]]}";
    char why[128];
    yajl_val v = sl_json_parse(&a, ev, strlen(ev), 0, why, sizeof why);
    rd = sl_gnocchi_res_event(r, "compute.instance.create.end", &op);
    yajl_val at = sl_gnocchi_event_attrs(rd, v, &a);
    ck_assert_str_eq(sl_json_dump(&a, at), "{\"id\":\"vm-2\",\"display_name\":\"vm\","
                     "\"host\":\"compute-3\",\"flavor_id\":\"2\"}");
    sl_arena_destroy(&a);
    sl_gnocchi_res_destroy(&r);
}
END_TEST

static const char *META = "{\"host\": \"compute-1\", \"display_name\": \"vm-1\", \"flavor_id\": "
                          "\"1\", \"flavor_name\": \"m1.tiny\", \"image_ref\": \"img-1\"}";
#define VM "0f0e0d0c-0b0a-4909-8807-060504030201"

static sl_sample_t
s_sample(const char *name, const char *unit, const char *vol, const char *rid, const char *ts)
{
    sl_sample_t s = {
        .id = "id-1", .name = name, .type = "gauge", .unit = unit, .volume_json = vol,
        .volume = atof(vol), .user_id = "u-1", .project_id = "p-1", .resource_id = rid,
        .timestamp = ts, .resource_metadata = META, .source = "openstack",
    };
    return s;
}

static void
s_unknown(void *ud, const char *name)
{
    sl_buf_t *b = ud;
    sl_buf_printf(b, "%s;", name);
}

START_TEST(samples_are_grouped_and_posted_as_ceilometer_posts_them)
{
    sl_gnocchi_res_t *r = s_default();
    sl_sample_t s[6] = {
        s_sample("cpu", "ns", "1500000000.0", VM, "2026-01-02T03:04:05.123456+00:00"),
        s_sample("memory.usage", "MB", "128", VM, "2026-01-02T03:04:05.123456+00:00"),
        s_sample("memory.usage", "MB", "130", VM, "2026-01-02T03:09:05.123456+00:00"),
        s_sample("not.a.known.meter", "B", "1", VM, "2026-01-02T03:04:05.123456+00:00"),
        s_sample("image.size", "B", "7", "a/b", "2026-01-02T03:04:05+00:00"),
        s_sample("volume.size", "GB", "\"3\"", "0-first", "2026-01-02T03:04:05+00:00"),
    };
    sl_arena_t a;
    sl_arena_init(&a, 0);
    sl_buf_t unk = { 0 }, body = { 0 };
    size_t unknown = 0;
    unsigned char skip[6] = { 0, 0, 0, 0, 0, 0 };
    sl_gnocchi_batch_t *b = sl_gnocchi_batch_build(r, s, 6, skip, NULL, &a, s_unknown, &unk, &unknown);
    ck_assert_uint_eq(unknown, 1);
    ck_assert_str_eq(unk.p, "not.a.known.meter;");
    ck_assert_uint_eq(sl_gnocchi_batch_n_groups(b), 3);
    /* sorted by resource_id, '/' replaced by '_' */
    ck_assert_str_eq(sl_gnocchi_batch_group(b, 0)->id, "0-f" "irst");
    ck_assert_str_eq(sl_gnocchi_batch_group(b, 1)->id, VM);
    ck_assert_str_eq(sl_gnocchi_batch_group(b, 2)->id, "a_b");
    ck_assert_ptr_nonnull(sl_gnocchi_batch_find(b, "a_b"));
    ck_assert_ptr_null(sl_gnocchi_batch_find(b, "a/b"));
    ck_assert_uint_eq(sl_gnocchi_batch_body(b, &body), 5);
    ck_assert_str_eq(body.p,
        "{\"0-first\":{\"volume.size\":{\"measures\":[{\"timestamp\":\"2026-01-02T03:04:05+00:00\","
        "\"value\":\"3\"}],\"archive_policy_name\":\"ceilometer-low\",\"unit\":\"GB\"}},"
        "\"" VM "\":{\"cpu\":{\"measures\":[{\"timestamp\":\"2026-01-02T03:04:05.123456+00:00\","
        "\"value\":1500000000.0}],\"archive_policy_name\":\"ceilometer-low-rate\",\"unit\":\"ns\"},"
        "\"memory.usage\":{\"measures\":[{\"timestamp\":\"2026-01-02T03:04:05.123456+00:00\","
        "\"value\":128},{\"timestamp\":\"2026-01-02T03:09:05.123456+00:00\",\"value\":130}],"
        "\"archive_policy_name\":\"ceilometer-low\",\"unit\":\"MB\"}},"
        "\"a_b\":{\"image.size\":{\"measures\":[{\"timestamp\":\"2026-01-02T03:04:05+00:00\","
        "\"value\":7}],\"archive_policy_name\":\"ceilometer-low\",\"unit\":\"B\"}}}");
    /* the resource as Ceilometer creates it (the recording's body) */
    sl_gnocchi_group_t *vm = sl_gnocchi_batch_find(b, VM);
    ck_assert_str_eq(vm->rd->resource_type, "instance");
    sl_gnocchi_resource_body(vm, &body);
    ck_assert_str_eq(body.p, "{\"id\":\"" VM "\",\"user_id\":\"u-1\",\"project_id\":\"p-1\","
                     "\"host\":\"compute-1\",\"image_ref\":\"img-1\",\"display_name\":\"vm-1\","
                     "\"flavor_id\":\"1\",\"flavor_name\":\"m1.tiny\"}");
    /* a resource that cannot be created leaves the batch */
    vm->dropped = 1;
    ck_assert_uint_eq(sl_gnocchi_batch_body(b, &body), 2);
    ck_assert_ptr_null(strstr(body.p, VM));
    /* skipped samples (Gnocchi's own project) are not grouped at all */
    skip[4] = 1;
    b = sl_gnocchi_batch_build(r, s, 6, skip, NULL, &a, NULL, NULL, NULL);
    ck_assert_uint_eq(sl_gnocchi_batch_n_groups(b), 2);
    ck_assert_ptr_null(sl_gnocchi_batch_find(b, "a_b"));
    sl_buf_free(&unk);
    sl_buf_free(&body);
    sl_arena_destroy(&a);
    sl_gnocchi_res_destroy(&r);
}
END_TEST

START_TEST(sample_attributes_follow_the_jsonpaths_and_merge_per_resource)
{
    sl_gnocchi_res_t *r = s_default();
    sl_arena_t a;
    sl_arena_init(&a, 0);
    /* instance_host wins over host; flavor.name through the (a|(b.c)|d) path */
    sl_sample_t s[2] = {
        s_sample("memory", "MB", "1", "vm", "2026-01-02T03:04:05+00:00"),
        s_sample("vcpus", "vcpu", "1", "vm", "2026-01-02T03:04:06+00:00"),
    };
    s[0].resource_metadata = "{\"instance_host\": \"h-i\", \"host\": \"h\", \"flavor\": "
                             "{\"name\": \"m1.big\", \"id\": 7}, \"user_metadata\": "
                             "{\"server_group\": \"g\"}, \"display_name\": null}";
    s[1].resource_metadata = "{\"host\": \"h2\", \"display_name\": \"vm-2\"}";
    sl_gnocchi_batch_t *b = sl_gnocchi_batch_build(r, s, 2, NULL, NULL, &a, NULL, NULL, NULL);
    sl_gnocchi_group_t *g = sl_gnocchi_batch_find(b, "vm");
    ck_assert_str_eq(sl_json_dump(&a, g->extra), "{\"host\":\"h2\",\"flavor_id\":7,"
                     "\"flavor_name\":\"m1.big\",\"server_group\":\"g\",\"display_name\":"
                     "\"vm-2\"}");
    /* the cache key is stable and follows the values */
    yajl_val e1 = g->extra;
    uint64_t h1 = sl_gnocchi_attrs_hash(e1);
    ck_assert_uint_eq(h1, sl_gnocchi_attrs_hash(e1));
    s[1].resource_metadata = "{\"host\": \"h3\", \"display_name\": \"vm-2\"}";
    b = sl_gnocchi_batch_build(r, s, 2, NULL, NULL, &a, NULL, NULL, NULL);
    ck_assert_uint_ne(h1, sl_gnocchi_attrs_hash(sl_gnocchi_batch_find(b, "vm")->extra));
    sl_arena_destroy(&a);
    sl_gnocchi_res_destroy(&r);
}
END_TEST

START_TEST(unknown_resources_are_read_from_gnocchis_400)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    const char *body = "{\"code\": 400, \"title\": \"Bad Request\", \"description\": {\"cause\": "
                       "\"Unknown resources\", \"detail\": [{\"resource_id\": \"9a0b\", "
                       "\"original_resource_id\": \"x/y\"}, {\"resource_id\": \"1\", "
                       "\"original_resource_id\": \"z\"}, {\"resource_id\": \"9a0b\", "
                       "\"original_resource_id\": \"x/y\"}]}}";
    const char **ids;
    ck_assert_int_eq(sl_gnocchi_unknown_resources(body, strlen(body), &a, &ids), 2);
    ck_assert_str_eq(ids[0], "x/y");
    ck_assert_str_eq(ids[1], "z");
    const char *other = "{\"code\": 400, \"description\": {\"cause\": \"Invalid input\"}}";
    ck_assert_int_eq(sl_gnocchi_unknown_resources(other, strlen(other), &a, &ids), -1);
    ck_assert_int_eq(sl_gnocchi_unknown_resources("<html>", 6, &a, &ids), -1);
    sl_arena_destroy(&a);
}
END_TEST

START_TEST(outcomes_map_to_ok_retry_and_error)
{
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 202, 0), SL_PUB_OK);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_CREATE, 201, 0), SL_PUB_OK);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_CREATE, 409, 0), SL_PUB_OK);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 409, 0), SL_PUB_ERROR);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 400, 0), SL_PUB_ERROR);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_CREATE, 400, 0), SL_PUB_ERROR);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 401, 0), SL_PUB_ERROR);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 401, 1), SL_PUB_RETRY);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 403, 1), SL_PUB_ERROR);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 500, 0), SL_PUB_RETRY);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_OTHER, 503, 0), SL_PUB_RETRY);
    ck_assert_int_eq(sl_gnocchi_classify(SL_GNOCCHI_REQ_BATCH, 429, 0), SL_PUB_RETRY);
    char t[40];
    sl_gnocchi_utc_isoformat(t, 1795000000LL, 123456789L);
    ck_assert_str_eq(t, "2026-11-18T11:06:40.123456");
    sl_gnocchi_utc_isoformat(t, 1795000000LL, 0);
    ck_assert_str_eq(t, "2026-11-18T11:06:40");
}
END_TEST

START_TEST(options_are_checked_with_a_reason)
{
    char err[512];
    ck_assert_int_eq(sl_publisher_check_events("gnocchi://?endpoint=http://127.0.0.1:8041"
                                               "&archive_policy=low&timeout=2.5", err,
                                               sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check("gnocchi://127.0.0.1:8041", err, sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check("gnocchi://", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "endpoint=") != NULL, "%s", err);
    ck_assert_int_eq(sl_publisher_check("gnocchi://?endpoint=ftp://x", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "http://") != NULL, "%s", err);
    ck_assert_int_eq(sl_publisher_check("gnocchi://?auth=keystone&password=x", err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "auth_url") != NULL, "%s", err);
    ck_assert_int_eq(sl_publisher_check("gnocchi://?auth=keystone&auth_url=http://k:5000",
                                        err, sizeof err), -1);
    ck_assert_msg(strstr(err, "password_file") != NULL, "%s", err);
    ck_assert_int_eq(sl_publisher_check("gnocchi://?auth=keystone&auth_url=http://k:5000"
                                        "&password_file=/nonexistent/pw", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "/nonexistent/pw") != NULL, "%s", err);
    ck_assert_int_eq(sl_publisher_check("gnocchi://?endpoint=http://g&auth=ldap", err,
                                        sizeof err), -1);
    ck_assert_int_eq(sl_publisher_check("gnocchi://?endpoint=http://g&timeout=0", err,
                                        sizeof err), -1);
    ck_assert_int_eq(sl_publisher_check("gnocchi://?endpoint=http://g"
                                        "&resources_definition_file=/nonexistent/r.yaml", err,
                                        sizeof err), -1);
    ck_assert_msg(strstr(err, "/nonexistent/r.yaml") != NULL, "%s", err);
    /* the plugin's own reason never quotes the password (the core prefixes
     * the URL as configured: hence password_file) */
    ck_assert_int_eq(sl_publisher_check("gnocchi://?auth=keystone&password=hunter2", err,
                                        sizeof err), -1);
    const char *why = strstr(err, "': ");
    ck_assert_msg(why && strstr(why, "hunter2") == NULL, "%s", err);
}
END_TEST

START_TEST(an_unreachable_gnocchi_is_a_retry)
{
    sl_pub_url_t u;
    char err[512];
    ck_assert_int_eq(sl_pub_url_parse(&u, "gnocchi://?endpoint=http://127.0.0.1:1&timeout=2",
                                      err, sizeof err), 0);
    void *ctx = sl_pub_url_init(&u, 0, err, sizeof err);
    ck_assert_msg(ctx != NULL, "%s", err);
    sl_sample_t s = s_sample("cpu", "ns", "1", VM, "2026-01-02T03:04:05+00:00");
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = 1, .samples = &s };
    ck_assert_int_eq(u.plugin->publish(ctx, &b, err, sizeof err), SL_PUB_RETRY);
    ck_assert_msg(strstr(err, "127.0.0.1") != NULL, "%s", err);
    const char *ev = "{\"event_type\": \"image.delete\", \"generated\": \"x\", \"message_id\": "
                     "\"m\", \"traits\": [[\"resource_id\", 1, \"i-1\"]]}";
    sl_pub_batch_t e = { .kind = SL_PUB_EVENTS, .n = 1, .events = &ev };
    ck_assert_int_eq(u.plugin->publish(ctx, &e, err, sizeof err), SL_PUB_RETRY);
    /* events no resource type wants are OK without a request */
    const char *other = "{\"event_type\": \"x.y\", \"traits\": []}";
    e.events = &other;
    ck_assert_int_eq(u.plugin->publish(ctx, &e, err, sizeof err), SL_PUB_OK);
    u.plugin->destroy(&ctx);
    sl_pub_url_free(&u);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("publisher_gnocchi");
    TCase *tc = tcase_create("publisher_gnocchi");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_default_model_is_ceilometers_file);
    tcase_add_test(tc, archive_policies_default_override_and_the_deprecated_resource_level);
    tcase_add_test(tc, events_match_create_then_delete_then_update_globs);
    tcase_add_test(tc, samples_are_grouped_and_posted_as_ceilometer_posts_them);
    tcase_add_test(tc, sample_attributes_follow_the_jsonpaths_and_merge_per_resource);
    tcase_add_test(tc, unknown_resources_are_read_from_gnocchis_400);
    tcase_add_test(tc, outcomes_map_to_ok_retry_and_error);
    tcase_add_test(tc, options_are_checked_with_a_reason);
    tcase_add_test(tc, an_unreachable_gnocchi_is_a_retry);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
