/* fuzz_meters_defs — meters.yaml text through sl_meters_parse (tolerant, as
 * sluiced loads it); definitions that load are then evaluated on three
 * real notifications with sl_meters_convert, and their samples written. */
#include "tests/fuzz/fuzz.h"

#include <yajl/yajl_gen.h>

#include "common/meters.h"

#define MAX_SAMPLES 256

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_ywarn_t warn = sl_fuzz_warn();
    size_t n_notes;
    const sl_notification_t *notes = sl_fuzz_decoded_notes(&n_notes);
    char err[1024] = "";
    sl_meters_t *m = sl_meters_parse((const char *) data, size, "meters.yaml", &warn, err,
                                     sizeof err);
    if (!m) {
        SL_FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    (void) sl_meters_count(m);
    static sl_sample_t out[MAX_SAMPLES];
    sl_arena_t a;
    sl_arena_init(&a, 0);
    yajl_gen g = yajl_gen_alloc(NULL);
    for (size_t i = 0; i < n_notes; i++) {
        sl_convert_stats_t st = { 0 };
        size_t n = sl_meters_convert(m, &notes[i], &a, out, MAX_SAMPLES, &st);
        SL_FUZZ_CHECK(n <= MAX_SAMPLES && n == st.samples);
        for (size_t j = 0; j < n; j++) {
            SL_FUZZ_CHECK(out[j].name != NULL);
            SL_FUZZ_CHECK(sl_sample_gen(g, &out[j]) == 0);
            yajl_gen_clear(g);
            yajl_gen_reset(g, NULL);
        }
        sl_arena_reset(&a);
    }
    yajl_gen_free(g);
    sl_arena_destroy(&a);
    sl_meters_destroy(&m);
    return 0;
}
