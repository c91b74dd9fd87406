/* json_simd — a fast first reading of a JSON text with simdjson's
 * On-Demand API, told to yajl's callbacks. Any process; one reusable
 * simdjson parser per thread.
 *
 * sl_json_parse_keep (json.c) tries this first and keeps yajl as the
 * reference: whenever this returns anything but SL_SIMD_DONE, the caller
 * parses the text again with yajl, whose answer (tree or error) then
 * stands. The contract that makes that safe: SL_SIMD_DONE only for a text
 * yajl (without comments, trailing garbage or multiple values) accepts,
 * after calling cb with exactly the events yajl would have called, in the
 * same order and with the same bytes. */
#ifndef SL_JSON_SIMD_H
#define SL_JSON_SIMD_H

#include <stddef.h>
#include <yajl/yajl_parse.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SL_SIMD_DONE = 0,   /* the whole text was valid and told to cb */
    SL_SIMD_STOPPED,    /* a callback returned 0 */
    SL_SIMD_DECLINED    /* not JSON, or not a text this reader vouches for
                         * (a root that is not an object or array, a \u
                         * escape of a UTF-16 surrogate, whitespace yajl
                         * accepts and simdjson does not, ...) */
} sl_simd_status_t;

/* Reads buf[0..len) and calls cb (yajl_null, yajl_boolean, yajl_number
 * with the number's text, yajl_string, yajl_start_map, yajl_map_key,
 * yajl_end_map, yajl_start_array, yajl_end_array; all must be set) with
 * ctx. The pointers given to cb are valid only during the call. plain: 1
 * when the caller knows the text holds no "\\u" (it then skips its own
 * search for escaped surrogates), else 0. */
sl_simd_status_t sl_json_simd_walk(const char *buf, size_t len, int plain,
                                   const yajl_callbacks *cb, void *ctx);
/* The simdjson kernel in use ("icelake", "haswell", "westmere",
 * "fallback"), for logs and benchmarks. */
const char *sl_json_simd_kernel(void);

#ifdef __cplusplus
}
#endif

#endif
