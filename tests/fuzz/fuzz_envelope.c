/* fuzz_envelope — sl_envelope_decode on any bytes (one notification as it
 * arrives from a source), then Ceilometer's view of what decoded. Checks
 * the header's contract: success gives the required fields in strict
 * UTF-8, failure leaves the notification cleared with a reason, the
 * size limit is applied before parsing, and a decode that keeps only some
 * keys (sl_envelope_decode_keep) fails exactly when the full one does. */
#include "tests/fuzz/fuzz.h"

#include "common/envelope.h"
#include "common/json.h"

static void
s_check_text(const char *s)
{
    if (s)
        SL_FUZZ_CHECK(sl_utf8_check(s, strlen(s)) == strlen(s));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_notification_t n;
    char err[256] = "";
    sl_env_status_t st = sl_envelope_decode((const char *) data, size, 0, &n, err, sizeof err);
    SL_FUZZ_CHECK(sl_env_status_name(st) != NULL);
    if (st == SL_ENV_OK) {
        SL_FUZZ_CHECK(n.root && n.event_type && n.timestamp);
        s_check_text(n.event_type);
        s_check_text(n.timestamp);
        s_check_text(n.message_id);
        s_check_text(n.publisher_id);
        SL_FUZZ_CHECK(sl_priority_name(n.priority) != NULL);
        sl_arena_t a;
        sl_arena_init(&a, 0);
        yajl_val view = sl_notification_view(&n, &a);
        SL_FUZZ_CHECK(view != NULL && sl_json_dump(&a, view) != NULL);
        sl_arena_destroy(&a);
    } else {
        SL_FUZZ_CHECK(n.root == NULL && err[0] != '\0');
    }
    sl_notification_clear(&n);
    /* decoding only what definitions read (here: none of the context)
     * fails exactly when the full decode does, for the same reason */
    static sl_env_keep_t *keep;
    if (!keep)
        keep = sl_env_keep_new(NULL, NULL);
    char err2[256] = "";
    sl_env_status_t st2 = sl_envelope_decode_keep((const char *) data, size, 0, keep, &n, err2,
                                                  sizeof err2);
    SL_FUZZ_CHECK(st2 == st && (st == SL_ENV_OK || strcmp(err, err2) == 0));
    sl_notification_clear(&n);
    if (size > 1) {     /* max_len 0 means no limit */
        st = sl_envelope_decode((const char *) data, size, size - 1, &n, err, sizeof err);
        SL_FUZZ_CHECK(st == SL_ENV_ERR_oversized);
        sl_notification_clear(&n);
    }
    return 0;
}
