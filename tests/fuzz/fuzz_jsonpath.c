/* fuzz_jsonpath — sl_jsonpath_compile, then find/walk/match_path over a
 * document. Input: the JSONPath on the first line; the rest, if any, is
 * the JSON document (else a notification-shaped one). */
#include "tests/fuzz/fuzz.h"

#include "common/json.h"
#include "common/jsonpath.h"

static const char s_doc[] =
    "{\"ctxt\": {\"user\": \"u1\", \"roles\": [\"admin\", \"member\"]}, \"publisher_id\": "
    "\"compute.host1\", \"event_type\": \"compute.instance.create.end\", \"payload\": "
    "{\"instance_id\": \"i-1\", \"memory_mb\": 512, \"vcpus\": 2, \"disk_gb\": 1.5, "
    "\"state\": \"active\", \"metadata\": {\"a\": null, \"b\": true}, \"fixed_ips\": "
    "[{\"address\": \"10.0.0.2\", \"version\": 4}, {\"address\": \"fe80::1\", \"version\": 6}], "
    "\"tags\": [3, 1, 2], \"launched_at\": \"2023-03-14 09:26:53.589793\"}, "
    "\"metadata\": {\"message_id\": \"m-1\", \"timestamp\": \"2023-03-14 09:26:54\"}}";

static int
s_visit(yajl_val match, void *ud)
{
    (void) match;
    return ++*(long *) ud > 10000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rest;
    size_t rest_n;
    char *text = sl_fuzz_split(data, size, &rest, &rest_n);
    char err[256] = "";
    sl_jsonpath_t *path = sl_jsonpath_compile(text, err, sizeof err);
    if (path) {
        SL_FUZZ_CHECK(sl_jsonpath_text(path) != NULL);
        sl_arena_t a;
        sl_arena_init(&a, 0);
        yajl_val root = rest_n ? sl_json_parse(&a, (const char *) rest, rest_n, 0, err, sizeof err)
                               : sl_json_parse(&a, s_doc, sizeof s_doc - 1, 0, err, sizeof err);
        if (root) {
            const sl_jsonpath_match_t **m;
            long n = sl_jsonpath_find(path, root, &a, &m);
            for (long i = 0; i < n; i++)
                if (m[i])
                    SL_FUZZ_CHECK(sl_jsonpath_match_path(&a, m[i]) != NULL);
            long visited = 0;
            int rc = sl_jsonpath_walk(path, root, &a, s_visit, &visited);
            SL_FUZZ_CHECK(rc == 0 || rc == -1);
            if (n < 0)
                SL_FUZZ_CHECK(rc == -1);
        }
        sl_arena_destroy(&a);
        sl_jsonpath_destroy(&path);
        SL_FUZZ_CHECK(path == NULL);
    } else {
        SL_FUZZ_CHECK(err[0] != '\0');
    }
    free(text);
    return 0;
}
