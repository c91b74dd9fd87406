/* fuzz_convert — one notification, as a source delivers it, through what
 * an ingest worker does with it: sl_envelope_decode, sl_meters_convert
 * and sl_events_convert with the stock conf/meters.yaml and
 * conf/event_definitions.yaml (the copies compiled into libslcommon,
 * loaded once), routing by conf/pipeline.yaml, and writing each sample
 * and event as JSON. */
#include "tests/fuzz/fuzz.h"

#include <yajl/yajl_gen.h>

#include "common/conf.h"
#include "common/events.h"
#include "common/meters.h"
#include "common/pipeline.h"

#define MAX_SAMPLES 256

static sl_meters_t *s_meters;
static sl_events_t *s_events;
static sl_pipeline_t *s_pipeline;

static void
s_load(void)
{
    sl_ywarn_t warn = sl_fuzz_warn();
    char err[1024];
    size_t len;
    const char *text = sl_conf_embedded("meters.yaml", &len);
    s_meters = sl_meters_parse(text, len, "meters.yaml", &warn, err, sizeof err);
    SL_FUZZ_CHECK(s_meters != NULL);
    text = sl_conf_embedded("event_definitions.yaml", &len);
    s_events = sl_events_parse(text, len, "event_definitions.yaml", &warn, err, sizeof err);
    SL_FUZZ_CHECK(s_events != NULL);
    text = sl_conf_embedded("pipeline.yaml", &len);
    s_pipeline = sl_pipeline_parse_with(text, len, "pipeline.yaml", "meters", NULL, &warn, err,
                                        sizeof err);
    SL_FUZZ_CHECK(s_pipeline != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_meters)
        s_load();
    sl_notification_t n;
    char err[256];
    if (sl_envelope_decode((const char *) data, size, 1 << 20, &n, err, sizeof err) != SL_ENV_OK)
        return 0;
    static sl_sample_t out[MAX_SAMPLES];
    sl_arena_t a;
    sl_arena_init(&a, 0);
    sl_convert_stats_t st = { 0 };
    size_t count = sl_meters_convert(s_meters, &n, &a, out, MAX_SAMPLES, &st);
    SL_FUZZ_CHECK(count == st.samples);
    yajl_gen g = yajl_gen_alloc(NULL);
    uint16_t sinks[SL_MAX_SINKS];
    for (size_t i = 0; i < count; i++) {
        SL_FUZZ_CHECK(out[i].name && out[i].resource_metadata);
        (void) sl_pipeline_route(s_pipeline, out[i].name, sinks, SL_MAX_SINKS);
        SL_FUZZ_CHECK(sl_sample_gen(g, &out[i]) == 0);
        yajl_gen_clear(g);
        yajl_gen_reset(g, NULL);
    }
    yajl_gen_free(g);
    sl_event_stats_t est = { 0 };
    sl_event_t ev;
    if (sl_events_convert(s_events, &n, &a, &ev, &est) == 1)
        SL_FUZZ_CHECK(sl_event_json(&a, &ev) != NULL);
    sl_arena_destroy(&a);
    sl_notification_clear(&n);
    return 0;
}
