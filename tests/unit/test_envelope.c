/* test_envelope — decoding oslo.messaging notifications in both wire forms,
 * and one drop reason (with a one-line message) for every way a message
 * can be unusable. Nothing may crash, leak or read out of bounds. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/events.h"
#include "common/json.h"
#include "common/meters.h"
#include "tools/generate.h"
#include "common/json_simd.h"
#include "tests/sl_json_events.h"

#define GOOD "{\"message_id\":\"m-1\",\"publisher_id\":\"compute.host1\"," \
             "\"event_type\":\"compute.instance.exists\",\"priority\":\"INFO\"," \
             "\"payload\":{\"a\":1},\"timestamp\":\"2023-03-14 09:26:53.589793\"," \
             "\"_context_user\":\"u\",\"_unique_id\":\"x\"}"

/* Decodes text; asserts the status and that a failed decode leaves the
 * notification cleared with a one-line reason. */
static sl_env_status_t
s_decode(const char *text, size_t len, size_t max, sl_notification_t *n, char *err, size_t errlen)
{
    sl_env_status_t st = sl_envelope_decode(text, len, max, n, err, errlen);
    if (st != SL_ENV_OK) {
        ck_assert_msg(n->root == NULL && n->outer == NULL && n->event_type == NULL &&
                      n->payload == NULL, "a failed decode must leave the notification cleared");
        ck_assert_msg(err[0] != '\0' && strchr(err, '\n') == NULL,
                      "reason must be one non-empty line, got '%s'", err);
    }
    return st;
}

static void
s_expect(const char *text, sl_env_status_t want, const char *fragment)
{
    sl_notification_t n;
    char err[256] = "";
    sl_env_status_t st = s_decode(text, strlen(text), 0, &n, err, sizeof err);
    ck_assert_msg(st == want, "%.80s: expected %s, got %s (%s)", text, sl_env_status_name(want),
                  sl_env_status_name(st), err);
    if (fragment)
        ck_assert_msg(strstr(err, fragment) != NULL, "%.80s: reason '%s' should mention '%s'",
                      text, err, fragment);
    sl_notification_clear(&n);
}

START_TEST(test_plain_message_decodes)
{
    sl_notification_t n;
    char err[256] = "";
    ck_assert_int_eq(s_decode(GOOD, strlen(GOOD), 0, &n, err, sizeof err), SL_ENV_OK);
    ck_assert_str_eq(n.message_id, "m-1");
    ck_assert_str_eq(n.publisher_id, "compute.host1");
    ck_assert_str_eq(n.event_type, "compute.instance.exists");
    ck_assert_str_eq(n.timestamp, "2023-03-14 09:26:53.589793");
    ck_assert_int_eq(n.priority, SL_PRIO_INFO);
    ck_assert_ptr_null(n.outer);
    ck_assert_str_eq(sl_json_dump(&n.mem, n.payload), "{\"a\":1}");
    ck_assert_str_eq(sl_json_str(sl_json_get(n.root, "_context_user")), "u");
    sl_notification_clear(&n);
    ck_assert_ptr_null(n.root);
    sl_notification_clear(&n);          /* clearing twice is harmless */
}
END_TEST

START_TEST(test_v2_envelope_decodes_the_inner_message)
{
    char text[2048];
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *) "oslo.version", 12);
    yajl_gen_string(g, (const unsigned char *) "2.0", 3);
    yajl_gen_string(g, (const unsigned char *) "oslo.message", 12);
    yajl_gen_string(g, (const unsigned char *) GOOD, strlen(GOOD));
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    snprintf(text, sizeof text, "%s", (const char *) buf);
    yajl_gen_free(g);

    sl_notification_t n;
    char err[256] = "";
    ck_assert_int_eq(s_decode(text, strlen(text), 0, &n, err, sizeof err), SL_ENV_OK);
    ck_assert_ptr_nonnull(n.outer);
    ck_assert_str_eq(n.event_type, "compute.instance.exists");
    ck_assert_str_eq(n.message_id, "m-1");
    ck_assert_ptr_null(sl_json_get(n.root, "oslo.message"));
    sl_notification_clear(&n);
}
END_TEST

START_TEST(test_input_needs_no_nul_and_trailing_bytes_are_ignored_by_length)
{
    char buf[sizeof GOOD + 8];
    memcpy(buf, GOOD, strlen(GOOD));
    memcpy(buf + strlen(GOOD), "XXXXXXXX", 8);      /* no NUL after the message */
    sl_notification_t n;
    char err[256] = "";
    ck_assert_int_eq(s_decode(buf, strlen(GOOD), 0, &n, err, sizeof err), SL_ENV_OK);
    sl_notification_clear(&n);
    ck_assert_int_eq(s_decode(buf, strlen(GOOD) + 8, 0, &n, err, sizeof err),
                     SL_ENV_ERR_malformed_json);
}
END_TEST

START_TEST(test_priority_is_case_insensitive)
{
    static const struct { const char *p; sl_priority_t want; } cases[] = {
        { "info", SL_PRIO_INFO }, { "INFO", SL_PRIO_INFO }, { "Info", SL_PRIO_INFO },
        { "SAMPLE", SL_PRIO_SAMPLE }, { "audit", SL_PRIO_AUDIT }, { "DEBUG", SL_PRIO_DEBUG },
        { "warn", SL_PRIO_WARN }, { "WARNING", SL_PRIO_WARN }, { "error", SL_PRIO_ERROR },
        { "CRITICAL", SL_PRIO_CRITICAL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":\"%s\","
                 "\"payload\":{},\"timestamp\":\"t\"}", cases[i].p);
        sl_notification_t n;
        char err[256] = "";
        ck_assert_msg(s_decode(text, strlen(text), 0, &n, err, sizeof err) == SL_ENV_OK,
                      "%s: %s", cases[i].p, err);
        ck_assert_msg(n.priority == cases[i].want, "%s: got %s", cases[i].p,
                      sl_priority_name(n.priority));
        ck_assert_ptr_null(n.publisher_id);
        sl_notification_clear(&n);
    }
    s_expect("{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":\"notice\",\"payload\":{},"
             "\"timestamp\":\"t\"}", SL_ENV_ERR_bad_priority, "notice");
    s_expect("{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":\"\",\"payload\":{},"
             "\"timestamp\":\"t\"}", SL_ENV_ERR_bad_priority, NULL);
    s_expect("{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":\"info \",\"payload\":{},"
             "\"timestamp\":\"t\"}", SL_ENV_ERR_bad_priority, NULL);
}
END_TEST

START_TEST(test_not_json)
{
    s_expect("", SL_ENV_ERR_malformed_json, NULL);
    s_expect("   ", SL_ENV_ERR_malformed_json, NULL);
    s_expect("{\"message_id\":\"m\",", SL_ENV_ERR_malformed_json, NULL);
    s_expect("{\"a\":1} {\"b\":2}", SL_ENV_ERR_malformed_json, NULL);
    s_expect("\xff\xfe", SL_ENV_ERR_malformed_json, NULL);
}
END_TEST

/* D8: truncated input was reported at byte 0 (yajl counts nothing consumed
 * by yajl_complete_parse): the offset is where the input ends. */
START_TEST(test_truncated_json_is_reported_where_it_ends)
{
    s_expect("{\"message_id\":\"m\",", SL_ENV_ERR_malformed_json, "at byte 18");
    s_expect("{\"message_id\":\"m", SL_ENV_ERR_malformed_json, "at byte 16");
    s_expect("{\"a\":1}}", SL_ENV_ERR_malformed_json, "at byte 8");
}
END_TEST

/* D2: yajl let overlong forms, surrogates and code points past U+10FFFF
 * through (and never checked keys); they reached the output files. Each
 * must be dropped as bad_utf8, wherever it is, also inside a v2 envelope,
 * and valid multi-byte text must pass. */
START_TEST(test_invalid_utf8_anywhere_is_its_own_drop_reason)
{
    static const char *const bad[] = {
        "\xc0\xaf",             /* overlong '/' */
        "\xe0\x80\xaf",         /* overlong, 3 bytes */
        "\xf0\x80\x80\xaf",     /* overlong, 4 bytes */
        "\xed\xa0\x80",         /* U+D800, a surrogate */
        "\xed\xbf\xbf",         /* U+DFFF */
        "\xf4\x90\x80\x80",     /* U+110000 */
        "\xf5\x80\x80\x80",     /* F5: never valid */
        "\xff",                 /* never valid */
        "\x80",                 /* stray continuation */
        "\xc3",                 /* truncated sequence */
        "\xe2\x82",             /* truncated sequence */
        "\xc3\x28",             /* bad continuation */
        "\\udc00",              /* escaped lone low surrogate (yajl emits ED B0 80) */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[512];
        /* in a payload value */
        snprintf(text, sizeof text, "{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":"
                 "\"info\",\"payload\":{\"v\":\"ab%scd\"},\"timestamp\":\"t\"}", bad[i]);
        s_expect(text, SL_ENV_ERR_bad_utf8, "UTF-8");
        /* in a key */
        snprintf(text, sizeof text, "{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":"
                 "\"info\",\"payload\":{\"k%s\":1},\"timestamp\":\"t\"}", bad[i]);
        s_expect(text, SL_ENV_ERR_bad_utf8, "UTF-8");
        /* in a required field */
        snprintf(text, sizeof text, "{\"message_id\":\"m%s\",\"event_type\":\"e\",\"priority\":"
                 "\"info\",\"payload\":{},\"timestamp\":\"t\"}", bad[i]);
        s_expect(text, SL_ENV_ERR_bad_utf8, "UTF-8");
    }
    /* an all-ASCII text skips the check of each string unless it holds a
     * \u escape: the escape is found wherever it falls against the 8-byte
     * words of that scan, also inside a v2 envelope's message */
    for (int pad = 0; pad < 17; pad++) {
        char text[512];
        snprintf(text, sizeof text, "{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":"
                 "\"info\",\"payload\":{\"v\":\"%.*s\\udc00\"},\"timestamp\":\"t\"}", pad,
                 "abcdefghijklmnopq");
        s_expect(text, SL_ENV_ERR_bad_utf8, "UTF-8");
        snprintf(text, sizeof text, "{\"oslo.version\":\"2.0\",\"oslo.message\":\"{\\\"event_"
                 "type\\\":\\\"%.*s\\\\udc00\\\"}\"}", pad, "abcdefghijklmnopq");
        s_expect(text, SL_ENV_ERR_bad_utf8, "UTF-8");
    }
    /* inside a v2 envelope's message (the bytes are raw in the outer string) */
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":\"{\\\"event_type\\\":\\\"e\xed\xa0\x80\\\"}\"}",
             SL_ENV_ERR_bad_utf8, "UTF-8");
    /* valid 2, 3 and 4-byte forms, boundaries and an escaped pair pass */
    s_expect("{\"message_id\":\"m\",\"event_type\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
             "\"priority\":\"info\",\"payload\":{\"\xc2\x80\xdf\xbf\":\"\xe0\xa0\x80\xed\x9f\xbf"
             "\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\\ud83d\\ude00\"},\"timestamp\":\"t\"}",
             SL_ENV_OK, NULL);
    ck_assert_uint_eq(sl_utf8_check("abc\xc3\xa9\xff", 6), 5);
    ck_assert_uint_eq(sl_utf8_check("abcdefghij\xc3\xa9", 12), 12);
    ck_assert_uint_eq(sl_utf8_check("abcdefghijklmnop\xed\xa0\x80", 19), 16);
}
END_TEST

START_TEST(test_deep_nesting_is_refused_not_recursed)
{
    size_t depth = 200000;
    char *text = malloc(2 * depth + 1);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\0';
    s_expect(text, SL_ENV_ERR_malformed_json, "nested");
    strcpy(text, "{\"payload\":");
    memset(text + 11, '[', depth - 11);
    text[depth] = '\0';
    s_expect(text, SL_ENV_ERR_malformed_json, NULL);     /* truncated and deep */
    free(text);
}
END_TEST

START_TEST(test_not_an_object)
{
    s_expect("null", SL_ENV_ERR_not_object, "null");
    s_expect("[1,2]", SL_ENV_ERR_not_object, "array");
    s_expect("\"text\"", SL_ENV_ERR_not_object, "string");
    s_expect("42", SL_ENV_ERR_not_object, "number");
    s_expect("true", SL_ENV_ERR_not_object, NULL);
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":\"[1]\"}", SL_ENV_ERR_not_object, NULL);
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":\"null\"}", SL_ENV_ERR_not_object, NULL);
}
END_TEST

START_TEST(test_bad_v2_envelopes)
{
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":{\"event_type\":\"e\"}}",
             SL_ENV_ERR_bad_envelope, "oslo.message");
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":null}", SL_ENV_ERR_bad_envelope, NULL);
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":42}", SL_ENV_ERR_bad_envelope, NULL);
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":\"{not json\"}", SL_ENV_ERR_bad_envelope,
             "invalid JSON");
    s_expect("{\"oslo.version\":\"2.0\",\"oslo.message\":\"\"}", SL_ENV_ERR_bad_envelope, NULL);
    s_expect("{\"oslo.version\":\"3.0\",\"oslo.message\":\"{}\"}", SL_ENV_ERR_bad_envelope,
             "version");
    s_expect("{\"oslo.version\":\"2.1\",\"oslo.message\":\"{}\"}", SL_ENV_ERR_bad_envelope, NULL);
    s_expect("{\"oslo.version\":\"2\",\"oslo.message\":\"{}\"}", SL_ENV_ERR_bad_envelope, NULL);
    s_expect("{\"oslo.version\":2.0,\"oslo.message\":\"{}\"}", SL_ENV_ERR_bad_envelope, NULL);
    /* A compatible older minor/revision is accepted (version_is_compatible). */
    s_expect("{\"oslo.version\":\"2.0.0\",\"oslo.message\":\"{}\"}", SL_ENV_ERR_missing_field,
             NULL);
    /* One key alone is no envelope: a plain message lacking fields. */
    s_expect("{\"oslo.message\":\"{}\"}", SL_ENV_ERR_missing_field, NULL);
}
END_TEST

START_TEST(test_every_missing_or_mistyped_field)
{
    static const char *fields[] = { "event_type", "priority", "payload", "message_id", "timestamp" };
    for (size_t f = 0; f < 5; f++) {
        for (int variant = 0; variant < 2; variant++) {
            char text[512];
            size_t o = (size_t) snprintf(text, sizeof text, "{");
            for (size_t k = 0; k < 5; k++) {
                const char *val = strcmp(fields[k], "payload") == 0 ? "{}"
                                  : strcmp(fields[k], "priority") == 0 ? "\"info\"" : "\"x\"";
                if (k == f && variant == 0)
                    continue;                       /* missing */
                if (k == f)
                    val = strcmp(fields[k], "payload") == 0 ? NULL : "12";   /* wrong type */
                if (!val)
                    continue;
                o += (size_t) snprintf(text + o, sizeof text - o, "%s\"%s\":%s",
                                       o > 1 ? "," : "", fields[k], val);
            }
            snprintf(text + o, sizeof text - o, "}");
            /* oslo's dispatcher takes payload and message_id with
             * dict.get(): absent, they are None and Ceilometer converts on */
            int optional = variant == 0 && (strcmp(fields[f], "payload") == 0 ||
                                            strcmp(fields[f], "message_id") == 0);
            if (optional || (variant == 1 && strcmp(fields[f], "payload") == 0))
                s_expect(text, SL_ENV_OK, NULL);
            else
                s_expect(text, SL_ENV_ERR_missing_field, fields[f]);
        }
    }
    sl_notification_t n;
    char err[256];
    const char *bare = "{\"event_type\":\"e\",\"priority\":\"info\",\"timestamp\":\"t\"}";
    ck_assert_int_eq(s_decode(bare, strlen(bare), 0, &n, err, sizeof err), SL_ENV_OK);
    ck_assert_ptr_null(n.message_id);
    ck_assert_msg(n.payload && n.payload->type == yajl_t_null, "absent payload must be null");
    ck_assert_str_eq(sl_json_dump(&n.mem, sl_notification_view(&n, &n.mem)),
                     "{\"ctxt\":{\"client_timeout\":null},\"publisher_id\":null,\"event_type\":\"e\","
                     "\"payload\":null,\"metadata\":{\"message_id\":null,\"timestamp\":\"t\"}}");
    sl_notification_clear(&n);
    /* payload may be any JSON value, null included; publisher_id is optional */
    s_expect("{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":\"info\",\"payload\":null,"
             "\"timestamp\":\"t\",\"publisher_id\":5}", SL_ENV_OK, NULL);
    s_expect("{\"message_id\":\"m\",\"event_type\":\"e\",\"priority\":[\"info\"],\"payload\":1,"
             "\"timestamp\":\"t\"}", SL_ENV_ERR_missing_field, "priority is an array");
}
END_TEST

START_TEST(test_oversize_is_checked_before_parsing)
{
    sl_notification_t n;
    char err[256] = "";
    ck_assert_int_eq(s_decode("{not even json", 14, 10, &n, err, sizeof err), SL_ENV_ERR_oversized);
    ck_assert_msg(strstr(err, "14") != NULL, "reason should give the size: %s", err);
    ck_assert_int_eq(s_decode(GOOD, strlen(GOOD), strlen(GOOD), &n, err, sizeof err), SL_ENV_OK);
    sl_notification_clear(&n);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(sl_env_status_name(SL_ENV_OK), "ok");
    ck_assert_str_eq(sl_env_status_name(SL_ENV_ERR_bad_priority), "bad_priority");
    ck_assert_str_eq(sl_env_status_name(SL_ENV_ERR_oversized), "oversized");
    ck_assert_str_eq(sl_env_status_name(SL_ENV_ERR__COUNT), "unknown");
    ck_assert_str_eq(sl_priority_name(SL_PRIO_SAMPLE), "sample");
    ck_assert_str_eq(sl_priority_name((sl_priority_t) 99), "unknown");
}
END_TEST

START_TEST(test_garbage_never_crashes)
{
    /* Every prefix of a v2 envelope, and byte flips of a plain message. */
    const char *env = "{\"oslo.version\":\"2.0\",\"oslo.message\":\"{\\\"message_id\\\":\\\"m\\\","
                      "\\\"event_type\\\":\\\"e\\\",\\\"priority\\\":\\\"info\\\",\\\"payload\\\":{},"
                      "\\\"timestamp\\\":\\\"t\\\"}\"}";
    size_t len = strlen(env);
    for (size_t i = 0; i <= len; i++) {
        sl_notification_t n;
        char err[256] = "";
        sl_env_status_t st = s_decode(env, i, 0, &n, err, sizeof err);
        ck_assert_msg(i == len ? st == SL_ENV_OK : st != SL_ENV_OK, "prefix %zu: %s", i,
                      sl_env_status_name(st));
        sl_notification_clear(&n);
    }
    char buf[sizeof GOOD];
    unsigned seed = 1;
    for (int round = 0; round < 3000; round++) {
        memcpy(buf, GOOD, sizeof GOOD);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % (sizeof GOOD - 1)] = (char) (seed >> 20);
        }
        sl_notification_t n;
        char err[256] = "";
        sl_env_status_t st = sl_envelope_decode(buf, sizeof GOOD - 1, 0, &n, err, sizeof err);
        ck_assert(st >= SL_ENV_OK && st < SL_ENV_ERR__COUNT);
        sl_notification_clear(&n);
    }
}
END_TEST


/* ---- decoding only what the definitions read ---------------------------- */

typedef struct {
    sl_meters_t   *m;
    sl_events_t   *e;
    sl_env_keep_t *keep;
    size_t         notes, same_status, samples, events, pruned;
    size_t         simd_read;   /* texts simdjson read itself, events equal to yajl's */
    sl_jev_t       fast, ref;
} s_diff_t;

/* Everything the conversions make of one decoded notification, as text
 * (sample ids, which are random, left out). */
static char *
s_outputs(s_diff_t *d, const sl_notification_t *n, sl_arena_t *a, size_t *ns, size_t *ne)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_array_open(g);
    sl_sample_t samples[256];
    sl_convert_stats_t cs;
    memset(&cs, 0, sizeof cs);
    size_t k = n->priority == SL_PRIO_INFO || n->priority == SL_PRIO_SAMPLE
               ? sl_meters_convert(d->m, n, a, samples, 256, &cs) : 0;
    for (size_t i = 0; i < k; i++) {
        samples[i].id = "-";
        sl_sample_gen(g, &samples[i]);
    }
    *ns = k;
    sl_event_t ev;
    sl_event_stats_t es;
    memset(&es, 0, sizeof es);
    *ne = 0;
    if (sl_events_convert(d->e, n, a, &ev, &es) == 1) {
        sl_event_gen(g, &ev);
        *ne = 1;
    }
    char counts[128];
    snprintf(counts, sizeof counts, "%llu %llu %llu %llu %llu %llu",
             (unsigned long long) cs.no_definition, (unsigned long long) cs.skipped,
             (unsigned long long) cs.failed, (unsigned long long) es.failed,
             (unsigned long long) es.no_definition, (unsigned long long) es.other_priority);
    sl_json_gen_str(g, counts);
    yajl_gen_array_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char *out = strndup((const char *) buf, len);
    yajl_gen_free(g);
    return out;
}

static void
s_diff_one(s_diff_t *d, const char *text, size_t len, const char *what, size_t line)
{
    sl_notification_t full, kept;
    char e1[256], e2[256];
    sl_env_status_t s1 = sl_envelope_decode(text, len, 0, &full, e1, sizeof e1);
    sl_env_status_t s2 = sl_envelope_decode_keep(text, len, 0, d->keep, &kept, e2, sizeof e2);
    d->notes++;
    /* the decodes above read the text with simdjson first: where it read
     * it, yajl (the reference) gives the same events */
    d->fast.len = 0;
    if (sl_json_simd_walk(text, len, 0, &sl_jev_callbacks, &d->fast) == SL_SIMD_DONE) {
        ck_assert_msg(sl_jev_yajl(text, len, &d->ref) && d->ref.len == d->fast.len &&
                      memcmp(d->ref.buf, d->fast.buf, d->ref.len) == 0,
                      "%s %zu: simdjson and yajl read it differently", what, line);
        d->simd_read++;
    }
    sl_arena_t ta;
    sl_arena_init(&ta, 0);
    char te1[256] = "", te2[256] = "";
    yajl_val t1 = sl_json_parse_keep(&ta, text, len, 0, NULL, NULL, NULL, te1, sizeof te1);
    yajl_val t2 = sl_json_parse_keep_yajl(&ta, text, len, 0, NULL, NULL, NULL, te2, sizeof te2);
    ck_assert_msg(!t1 == !t2 && strcmp(te1, te2) == 0 &&
                  (!t1 || strcmp(sl_json_dump(&ta, t1), sl_json_dump(&ta, t2)) == 0),
                  "%s %zu: the tree read with simdjson first differs from yajl's (%s / %s)", what,
                  line, te1, te2);
    sl_arena_destroy(&ta);
    ck_assert_msg(s1 == s2 && (s1 == SL_ENV_OK || strcmp(e1, e2) == 0),
                  "%s %zu: full decode %s (%s), pruned %s (%s)", what, line,
                  sl_env_status_name(s1), e1, sl_env_status_name(s2), e2);
    d->same_status++;
    if (s1 == SL_ENV_OK) {
        d->pruned += kept.root->u.object.len < full.root->u.object.len;
        sl_arena_t a1, a2;
        sl_arena_init(&a1, 0);
        sl_arena_init(&a2, 0);
        size_t ns1, ne1, ns2, ne2;
        char *o1 = s_outputs(d, &full, &a1, &ns1, &ne1);
        char *o2 = s_outputs(d, &kept, &a2, &ns2, &ne2);
        ck_assert_msg(strcmp(o1, o2) == 0, "%s %zu: the full tree gives\n%s\nthe pruned one\n%s",
                      what, line, o1, o2);
        d->samples += ns1;
        d->events += ne1;
        free(o1);
        free(o2);
        sl_arena_destroy(&a1);
        sl_arena_destroy(&a2);
    }
    sl_notification_clear(&full);
    sl_notification_clear(&kept);
}

static void
s_diff_run(s_diff_t *d)
{
    char *corpus = NULL;
    size_t cap = 0;
    FILE *f = fopen(SL_SRCDIR "/tests/data/corpus.jsonl", "r");
    ck_assert_msg(f != NULL, "tests/data/corpus.jsonl is missing");
    ssize_t len;
    size_t line = 0;
    while ((len = getline(&corpus, &cap, f)) > 0) {
        line++;
        s_diff_one(d, corpus, (size_t) len, "corpus line", line);
    }
    free(corpus);
    fclose(f);
    /* the generator's mix, both wire forms, several seeds */
    for (int wire = 0; wire <= 1; wire++) {
        char err[256];
        sl_gen_t *g = sl_gen_new(SL_SRCDIR "/tests/data/corpus.jsonl", 7 + (uint64_t) wire, wire,
                                 err, sizeof err);
        ck_assert_msg(g != NULL, "generator: %s", err);
        for (size_t i = 0; i < 6000; i++) {
            size_t n;
            const char *t = sl_gen_next(g, &n);
            s_diff_one(d, t, n, wire ? "generated (wire) #" : "generated #", i);
        }
        sl_gen_destroy(&g);
    }
}

static void
s_diff_load(s_diff_t *d, unsigned store_raw)
{
    char err[512];
    memset(d, 0, sizeof *d);
    d->m = sl_meters_load(SL_SRCDIR "/conf/meters.yaml", NULL, err, sizeof err);
    ck_assert_msg(d->m != NULL, "%s", err);
    d->e = sl_events_load(SL_SRCDIR "/conf/event_definitions.yaml", NULL, err, sizeof err);
    ck_assert_msg(d->e != NULL, "%s", err);
    sl_events_set_store_raw(d->e, store_raw);
    d->keep = sl_env_keep_new(d->m, d->e);
}

static void
s_diff_free(s_diff_t *d)
{
    free(d->fast.buf);
    free(d->ref.buf);
    sl_env_keep_destroy(&d->keep);
    sl_meters_destroy(&d->m);
    sl_events_destroy(&d->e);
}

/* The stock definitions read 7 of the ~30 _context_ keys a notification
 * carries: decoding the rest away changes no sample, no event, no counter
 * and no error, over the corpus and 12,000 generated notifications. */
START_TEST(test_decoding_only_what_definitions_read_converts_the_same)
{
    s_diff_t d;
    s_diff_load(&d, 0);
    size_t n_ctx;
    ck_assert_msg(!sl_env_keep_all_context(d.keep, &n_ctx) && n_ctx == 7,
                  "the stock definitions read 7 _context_ keys by name, got %zu", n_ctx);
    s_diff_run(&d);
    printf("pruned decode: %zu notifications (%zu smaller, %zu read by simdjson), %zu samples, "
           "%zu events, all equal\n", d.notes, d.pruned, d.simd_read, d.samples, d.events);
    ck_assert_msg(d.samples > 10000 && d.events > 8000 && d.pruned > d.notes / 2,
                  "the comparison must cover samples, events and pruned trees: %zu samples, "
                  "%zu events, %zu of %zu pruned", d.samples, d.events, d.pruned, d.notes);
    ck_assert_msg(d.simd_read >= d.notes * 99 / 100,
                  "simdjson must read nearly every notification itself: %zu of %zu",
                  d.simd_read, d.notes);
    s_diff_free(&d);
}
END_TEST

/* store_raw puts the whole context in events: every _context_ key stays
 * (and the raw events come out the same). */
START_TEST(test_store_raw_keeps_the_whole_context)
{
    s_diff_t d;
    s_diff_load(&d, 1u << SL_PRIO_INFO);
    ck_assert(sl_env_keep_all_context(d.keep, NULL));
    s_diff_run(&d);
    s_diff_free(&d);
}
END_TEST

/* Decodes text keeping what k says and asserts the tree, as compact JSON. */
static void
s_expect_kept(const sl_env_keep_t *k, const char *text, const char *want)
{
    sl_notification_t note;
    char err[256];
    ck_assert_msg(sl_envelope_decode_keep(text, strlen(text), 0, k, &note, err, sizeof err) ==
                  SL_ENV_OK, "decode failed: %s", err);
    sl_arena_t a;
    sl_arena_init(&a, 0);
    ck_assert_str_eq(sl_json_dump(&a, note.root), want);
    sl_arena_destroy(&a);
    sl_notification_clear(&note);
}

/* The keys nothing reads go; those the envelope and the view read stay,
 * whatever the definitions. */
START_TEST(test_keep_set_without_definitions)
{
    sl_env_keep_t *k = sl_env_keep_new(NULL, NULL);
    size_t n;
    ck_assert(!sl_env_keep_all_context(k, &n) && n == 0);
    const char *text = "{\"_context_user\":\"u\",\"_unique_id\":\"x\",\"_timeout\":3,"
                       "\"message_id\":\"m\",\"publisher_id\":\"p\",\"event_type\":\"e\","
                       "\"priority\":\"info\",\"payload\":{\"_context_x\":1},"
                       "\"timestamp\":\"t\",\"payload\\u0000x\":2}";
    /* keys compare as the C strings every reader sees: "payload\u0000x"
     * is "payload" to them, so it stays (and, last, wins as in the full tree) */
    s_expect_kept(k, text,
                  "{\"_timeout\":3,\"message_id\":\"m\",\"publisher_id\":\"p\",\"event_type\":"
                  "\"e\",\"priority\":\"info\",\"payload\":{\"_context_x\":1},\"timestamp\":"
                  "\"t\",\"payload\":2}");
    sl_env_keep_destroy(&k);
    sl_env_keep_destroy(&k);
}
END_TEST

/* A definition reading ctxt.'' (the empty name) reads the key `_context_`
 * itself: it stays, next to the named ones, and the others go. */
START_TEST(test_keep_set_keeps_the_context_keys_definitions_name)
{
    static const char yaml[] =
        "metric:\n"
        "  - name: m\n    event_type: e\n    type: gauge\n    unit: u\n    volume: 1\n"
        "    resource_id: $.ctxt.''\n    project_id: $.ctxt.tenant\n    user_id: $.payload.u\n";
    char err[512];
    sl_meters_t *m = sl_meters_parse(yaml, strlen(yaml), "t.yaml", NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    sl_env_keep_t *k = sl_env_keep_new(m, NULL);
    size_t n;
    /* '' and tenant, and user_id, project_id and ctxt from MeterDefinition's
     * fallbacks ctxt.(user_id|ctxt).user and ctxt.(project_id|ctxt).tenant_id */
    ck_assert_msg(!sl_env_keep_all_context(k, &n) && n == 5, "%zu names kept", n);
    const char *text = "{\"_context_\":\"r\",\"_context_tenant\":\"t\",\"_context_tenan\":1,"
                       "\"_context_x\":2,\"event_type\":\"e\",\"priority\":\"info\","
                       "\"timestamp\":\"t\",\"payload\":{\"u\":\"user\"}}";
    s_expect_kept(k, text,
                  "{\"_context_\":\"r\",\"_context_tenant\":\"t\",\"event_type\":\"e\","
                  "\"priority\":\"info\",\"timestamp\":\"t\",\"payload\":{\"u\":\"user\"}}");
    sl_env_keep_destroy(&k);
    sl_meters_destroy(&m);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, test_plain_message_decodes);
    tcase_add_test(tc, test_v2_envelope_decodes_the_inner_message);
    tcase_add_test(tc, test_input_needs_no_nul_and_trailing_bytes_are_ignored_by_length);
    tcase_add_test(tc, test_priority_is_case_insensitive);
    suite_add_tcase(s, tc);
    tc = tcase_create("drops");
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_truncated_json_is_reported_where_it_ends);
    tcase_add_test(tc, test_invalid_utf8_anywhere_is_its_own_drop_reason);
    tcase_add_test(tc, test_deep_nesting_is_refused_not_recursed);
    tcase_add_test(tc, test_not_an_object);
    tcase_add_test(tc, test_bad_v2_envelopes);
    tcase_add_test(tc, test_every_missing_or_mistyped_field);
    tcase_add_test(tc, test_oversize_is_checked_before_parsing);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_garbage_never_crashes);
    suite_add_tcase(s, tc);
    tc = tcase_create("keep");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_decoding_only_what_definitions_read_converts_the_same);
    tcase_add_test(tc, test_store_raw_keeps_the_whole_context);
    tcase_add_test(tc, test_keep_set_without_definitions);
    tcase_add_test(tc, test_keep_set_keeps_the_context_keys_definitions_name);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
