/* fuzz_pipeline — pipeline.yaml / event_pipeline.yaml text through
 * sl_pipeline_parse_with, as either kind (`meters` and `events` patterns),
 * with a stand-in transformer lookup (the registry is in worker/, which
 * fuzz targets do not link), then routing a few names and hashing a sample
 * by each sink's grouping keys, as the ingest worker does with a loaded
 * pipeline. */
#include "tests/fuzz/fuzz.h"

#include <string.h>

#include "common/pipeline.h"

static const char *const s_names[] = {
    "cpu", "memory.usage", "compute.instance.create.end", "disk.device.read.bytes", "",
    "\xc3\xa9t\xc3\xa9", "[x]",
};

/* Knows every name but one, so both the unknown-name error and the
 * union of grouping keys are reached. */
static int
s_lookup(const char *name, int *stateful, const char *const **keys)
{
    static const char *const k1[] = { "resource_id", NULL };
    static const char *const k2[] = { "project_id", "resource_id", NULL };
    if (strcmp(name, "unknown") == 0)
        return -1;
    *stateful = strcmp(name, "unit_conversion") != 0;
    *keys = strlen(name) % 2 ? k1 : k2;
    return 0;
}

static void
s_parse(const uint8_t *data, size_t size, const char *kind)
{
    sl_ywarn_t warn = sl_fuzz_warn();
    char err[1024] = "";
    sl_pipeline_t *p = sl_pipeline_parse_with((const char *) data, size, "pipeline.yaml", kind,
                                              s_lookup, &warn, err, sizeof err);
    if (!p) {
        SL_FUZZ_CHECK(err[0] != '\0');
        return;
    }
    SL_FUZZ_CHECK(p->n_sinks <= SL_MAX_SINKS);
    uint16_t out[SL_MAX_SINKS];
    for (size_t i = 0; i < sizeof s_names / sizeof s_names[0]; i++) {
        size_t n = sl_pipeline_route(p, s_names[i], out, SL_MAX_SINKS);
        for (size_t j = 0; j < n; j++)
            SL_FUZZ_CHECK(out[j] < p->n_sinks);
        for (size_t j = 0; j < p->n_sources; j++)
            (void) sl_pipeline_source_selects(&p->sources[j], s_names[i]);
    }
    sl_sample_t s = {
        .name = "cpu", .type = "cumulative", .unit = "ns", .volume_json = "1", .volume = 1,
        .user_id = "u", .resource_id = "r", .timestamp = "2024-05-01T12:00:00+00:00",
        .resource_metadata = "{\"a\": 1}", .source = "openstack",
    };
    for (size_t i = 0; i < p->n_sinks; i++) {
        (void) sl_pipeline_group_hash(&p->sinks[i], &s);
        SL_FUZZ_CHECK(p->sinks[i].n_keys >= 1 && p->sinks[i].n_keys <= 2);
    }
    sl_pipeline_destroy(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_parse(data, size, "meters");
    s_parse(data, size, "events");
    return 0;
}
