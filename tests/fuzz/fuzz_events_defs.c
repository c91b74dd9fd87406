/* fuzz_events_defs — event_definitions.yaml text through sl_events_parse
 * (tolerant, as sluiced loads it); definitions that load are then applied
 * to three real notifications with sl_events_convert, and each event
 * written as sl_event_json does for the pipeline. */
#include "tests/fuzz/fuzz.h"

#include "common/events.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_ywarn_t warn = sl_fuzz_warn();
    size_t n_notes;
    const sl_notification_t *notes = sl_fuzz_decoded_notes(&n_notes);
    char err[1024] = "";
    sl_events_t *e = sl_events_parse((const char *) data, size, "event_definitions.yaml", &warn,
                                     err, sizeof err);
    if (!e) {
        SL_FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    SL_FUZZ_CHECK(sl_events_count(e) >= 1);
    sl_arena_t a;
    sl_arena_init(&a, 0);
    for (size_t i = 0; i < n_notes; i++) {
        sl_event_stats_t st = { 0 };
        sl_event_t ev;
        if (sl_events_convert(e, &notes[i], &a, &ev, &st) == 1) {
            SL_FUZZ_CHECK(ev.event_type != NULL && st.events == 1);
            SL_FUZZ_CHECK(sl_event_json(&a, &ev) != NULL);
        }
        sl_arena_reset(&a);
    }
    sl_arena_destroy(&a);
    sl_events_destroy(&e);
    return 0;
}
