/* fuzz_json — the JSON parser's two readings on any bytes. simdjson's
 * (common/json_simd.h) must, whenever it reads a text to the end, tell
 * exactly yajl's events for it; and sl_json_parse_keep (simdjson first,
 * yajl when it declines) must give what yajl alone gives: the same tree,
 * or the same error with the same reason and message. Checked without a
 * keep function, with one, and at a small depth limit. */
#include "tests/fuzz/fuzz.h"

#include "common/json.h"
#include "common/json_simd.h"
#include "tests/sl_json_events.h"

static int
s_keep_b(const char *key, size_t len, void *ud)
{
    (void) ud;
    return !(len == 1 && key[0] == 'b');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    static sl_jev_t fast, ref;
    fast.len = 0;
    sl_simd_status_t st = sl_json_simd_walk(text, size, 0, &sl_jev_callbacks, &fast);
    SL_FUZZ_CHECK(st != SL_SIMD_STOPPED);   /* the recorder never stops it */
    if (st == SL_SIMD_DONE) {
        SL_FUZZ_CHECK(sl_jev_yajl(text, size, &ref));
        SL_FUZZ_CHECK(ref.len == fast.len && memcmp(ref.buf, fast.buf, ref.len) == 0);
    }
    for (int mode = 0; mode < 3; mode++) {
        sl_arena_t a;
        sl_arena_init(&a, 0);
        char e1[256] = "", e2[256] = "";
        sl_json_err_t w1, w2;
        sl_json_keep_fn keep = mode == 1 ? s_keep_b : NULL;
        size_t depth = mode == 2 ? 3 : 0;
        yajl_val v1 = sl_json_parse_keep(&a, text, size, depth, keep, NULL, &w1, e1, sizeof e1);
        yajl_val v2 = sl_json_parse_keep_yajl(&a, text, size, depth, keep, NULL, &w2, e2,
                                              sizeof e2);
        SL_FUZZ_CHECK(!v1 == !v2 && w1 == w2 && strcmp(e1, e2) == 0);
        if (v1)
            SL_FUZZ_CHECK(strcmp(sl_json_dump(&a, v1), sl_json_dump(&a, v2)) == 0);
        sl_arena_destroy(&a);
    }
    return 0;
}
