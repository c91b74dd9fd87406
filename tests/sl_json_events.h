/* sl_json_events — a JSON reader's events written down as one string, so
 * that simdjson's reading (common/json_simd.h) can be compared with
 * yajl's, event by event and byte by byte. For tests and fuzz targets. */
#ifndef SL_JSON_EVENTS_H
#define SL_JSON_EVENTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

typedef struct {
    char  *buf;     /* "{", "}", "[", "]", "K<len>:<bytes>", "S<len>:<bytes>",
                     * "N<text>;", "T", "F", "Z" in order */
    size_t len, cap;
} sl_jev_t;

static inline void
sl_jev_put(sl_jev_t *r, const char *tag, const void *s, size_t n)
{
    char head[32];
    int h = snprintf(head, sizeof head, "%s%zu:", tag, n);
    size_t need = r->len + (size_t) h + n + 1;
    if (need > r->cap) {
        r->cap = need * 2;
        r->buf = realloc(r->buf, r->cap);
        if (!r->buf)
            abort();
    }
    memcpy(r->buf + r->len, head, (size_t) h);
    if (n)
        memcpy(r->buf + r->len + h, s, n);
    r->len += (size_t) h + n;
    r->buf[r->len] = '\0';
}

static inline int sl_jev_null(void *c) { sl_jev_put(c, "Z", "", 0); return 1; }
static inline int sl_jev_bool(void *c, int v) { sl_jev_put(c, v ? "T" : "F", "", 0); return 1; }
static inline int sl_jev_num(void *c, const char *s, size_t n) { sl_jev_put(c, "N", s, n); return 1; }
static inline int
sl_jev_str(void *c, const unsigned char *s, size_t n)
{
    sl_jev_put(c, "S", s, n);
    return 1;
}
static inline int
sl_jev_key(void *c, const unsigned char *s, size_t n)
{
    sl_jev_put(c, "K", s, n);
    return 1;
}
static inline int sl_jev_om(void *c) { sl_jev_put(c, "{", "", 0); return 1; }
static inline int sl_jev_cm(void *c) { sl_jev_put(c, "}", "", 0); return 1; }
static inline int sl_jev_oa(void *c) { sl_jev_put(c, "[", "", 0); return 1; }
static inline int sl_jev_ca(void *c) { sl_jev_put(c, "]", "", 0); return 1; }

static const yajl_callbacks sl_jev_callbacks = {
    .yajl_null = sl_jev_null, .yajl_boolean = sl_jev_bool, .yajl_number = sl_jev_num,
    .yajl_string = sl_jev_str, .yajl_start_map = sl_jev_om, .yajl_map_key = sl_jev_key,
    .yajl_end_map = sl_jev_cm, .yajl_start_array = sl_jev_oa, .yajl_end_array = sl_jev_ca,
};

/* yajl's events for buf[0..len), with the settings sl_json_parse uses
 * (strings not validated: sluice checks UTF-8 itself). 1 if yajl accepts
 * the text, 0 if not (r then holds the events up to the error). */
static inline int
sl_jev_yajl(const char *buf, size_t len, sl_jev_t *r)
{
    r->len = 0;
    yajl_handle h = yajl_alloc(&sl_jev_callbacks, NULL, r);
    yajl_config(h, yajl_dont_validate_strings, 1);
    int ok = yajl_parse(h, (const unsigned char *) buf, len) == yajl_status_ok &&
             yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok;
}

#endif
