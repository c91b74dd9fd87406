/* publisher_notifier: what the notifier:// publisher puts on the bus,
 * against what Ceilometer 19 and oslo.messaging produce for the same input
 * (the expected texts below were made by ceilometer.publisher.utils
 * meter_message_from_counter / message_from_event and json.dumps under
 * Debian's python3-ceilometer), the URL mapping to a transport URL and the
 * URL options' checks. The publishing itself, against a real broker, is
 * tests/func/test_notifier.py. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/sample.h"
#include "worker/publishers/notifier.h"
#include "worker/publishers/publisher.h"

#define SECRET SL_NOTIFIER_DEFAULT_SECRET

/* resource_metadata with everything compute_signature treats specially:
 * nested dicts (flattened with ':'), lists of strings (bytes reprs, with
 * both kinds of quotes), a list of dicts (sorted, bytes keys), floats
 * (repr, inf), -0, non-ASCII and control characters. */
static const char *META =
    "{\"host\": \"compute-1\", \"flavor\": {\"vcpus\": 2, \"name\": \"m1.tiny\", \"extra\": {}}, "
    "\"tags\": [\"a\", \"b'c\", \"\\u00e9\", \"q\\\"'\"], \"ratio\": 0.1, \"big\": 1e400, \"ok\": "
    "true, \"none\": null, \"list_of_dicts\": [{\"z\": 1, \"a\": \"x\\ny\", \"t\": [1.0, -0, "
    "2e16]}], \"unicode\": \"na\\u00efve \\u2603 \\ud83d\\ude00\", \"ctrl\": "
    "\"a\\u0001b\\u007f\\t/\"}";

static const char *S1 =
    "{\"source\": \"openstack\", \"counter_name\": \"cpu\", \"counter_type\": \"cumulative\", "
    "\"counter_unit\": \"ns\", \"counter_volume\": 1234567, \"user_id\": \"u-1\", \"project_id\": "
    "null, \"resource_id\": \"r-1\", \"timestamp\": \"2023-03-14T09:26:53.589793+00:00\", "
    "\"resource_metadata\": {\"host\": \"compute-1\", \"flavor\": {\"vcpus\": 2, \"name\": "
    "\"m1.tiny\", \"extra\": {}}, \"tags\": [\"a\", \"b'c\", \"\\u00e9\", \"q\\\"'\"], \"ratio\": "
    "0.1, \"big\": Infinity, \"ok\": true, \"none\": null, \"list_of_dicts\": [{\"z\": 1, \"a\": "
    "\"x\\ny\", \"t\": [1.0, 0, 2e+16]}], \"unicode\": \"na\\u00efve \\u2603 \\ud83d\\ude00\", "
    "\"ctrl\": \"a\\u0001b\\u007f\\t/\"}, \"message_id\": "
    "\"5e2c3d1a-0000-4000-8000-000000000001\", \"monotonic_time\": null, \"message_signature\": "
    "\"fc0890297e8d513e97522b8f276129ae97685d8372328d1397547eee7f84f5b7\"}";

/* The same sample with volume "42" (a numeric string, passed through) and
 * the secret "k". */
static const char *S1_STR_VOLUME_SIG = "0a88e02a16a5c275f64f200e2a65aa2a8a5939b3b76341152128f8faafd23a75";

static const char *S2 =
    "{\"source\": \"openstack\", \"counter_name\": \"disk.usage\", \"counter_type\": \"gauge\", "
    "\"counter_unit\": \"B\", \"counter_volume\": 0.5, \"user_id\": null, \"project_id\": \"p\", "
    "\"resource_id\": \"r-2\", \"timestamp\": \"2023-03-14T09:26:53+00:00\", "
    "\"resource_metadata\": {}, \"message_id\": \"id-2\", \"monotonic_time\": null, "
    "\"message_signature\": \"%s\"}";

static const char *EV =
    "{\"event_type\": \"compute.instance.create.end\", \"generated\": "
    "\"2012-05-08T20:23:48.028195\", \"message_id\": \"msg-1\", \"traits\": [[\"service\", 1, "
    "\"compute\"], [\"memory_mb\", 2, 512], [\"ratio\", 3, 0.25], [\"launched_at\", 4, "
    "\"2012-05-08T20:23:47.985999\"], [\"name\", 1, \"it's \\u00e9\"]]}";

static const char *EV_OUT =
    "{\"message_id\": \"msg-1\", \"event_type\": \"compute.instance.create.end\", \"generated\": "
    "\"2012-05-08T20:23:48.028195\", \"traits\": [[\"service\", 1, \"compute\"], [\"memory_mb\", "
    "2, 512], [\"ratio\", 3, 0.25], [\"launched_at\", 4, \"2012-05-08T20:23:47.985999\"], "
    "[\"name\", 1, \"it's \\u00e9\"]], \"raw\": {}, \"message_signature\": "
    "\"824ade4bfa4ac1578715e4b536a67da1d77dbfafed44fb0c9dda071d909f0cc6\"}";

static sl_sample_t
s_sample1(void)
{
    sl_sample_t s = {
        .id = "5e2c3d1a-0000-4000-8000-000000000001", .name = "cpu", .type = "cumulative",
        .unit = "ns", .volume_json = "1234567", .volume = 1234567, .user_id = "u-1",
        .project_id = NULL, .resource_id = "r-1",
        .timestamp = "2023-03-14T09:26:53.589793+00:00", .resource_metadata = META,
        .source = "openstack", .message_id = "notification-1",
    };
    return s;
}

static void
s_expect(const sl_buf_t *got, const char *want, const char *what)
{
    ck_assert_msg(got->p && strcmp(got->p, want) == 0, "%s:\nexpected %s\n     got %s", what,
                  want, got->p ? got->p : "(nothing)");
}

START_TEST(a_meter_message_is_ceilometers_byte_for_byte_with_its_signature)
{
    sl_buf_t b = { 0 };
    char err[256];
    sl_sample_t s = s_sample1();
    ck_assert_int_eq(sl_notifier_meter_message(&b, &s, SECRET, strlen(SECRET), err, sizeof err), 0);
    s_expect(&b, S1, "meter message of a sample with every special case in its metadata");

    /* a numeric string volume stays a string (and is signed as one) */
    sl_buf_reset(&b);
    s.volume_json = "\"42\"";
    ck_assert_int_eq(sl_notifier_meter_message(&b, &s, "k", 1, err, sizeof err), 0);
    ck_assert_msg(strstr(b.p, "\"counter_volume\": \"42\"") && strstr(b.p, S1_STR_VOLUME_SIG),
                  "string volume: expected \"42\" signed %s, got %s", S1_STR_VOLUME_SIG, b.p);

    /* a float volume, None user_id, empty metadata; and without a secret */
    sl_sample_t s2 = {
        .id = "id-2", .name = "disk.usage", .type = "gauge", .unit = "B", .volume_json = "0.5",
        .volume = 0.5, .project_id = "p", .resource_id = "r-2",
        .timestamp = "2023-03-14T09:26:53+00:00", .resource_metadata = "{}",
        .source = "openstack",
    };
    char want[1024];
    snprintf(want, sizeof want, S2,
             "86abe2ba2ae168575ac950d38b77f4ccc552e0729c69eff621a8bbc29d3d061c");
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_notifier_meter_message(&b, &s2, SECRET, strlen(SECRET), err, sizeof err), 0);
    s_expect(&b, want, "meter message of a plain sample");
    snprintf(want, sizeof want, S2, "");
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_notifier_meter_message(&b, &s2, "", 0, err, sizeof err), 0);
    s_expect(&b, want, "meter message with an empty telemetry_secret (unsigned)");

    /* a volume without its JSON text is a float, as the transformers make it */
    s2.volume_json = NULL;
    s2.volume = 3.0;
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_notifier_meter_message(&b, &s2, "", 0, err, sizeof err), 0);
    ck_assert_msg(strstr(b.p, "\"counter_volume\": 3.0,"), "expected counter_volume 3.0 in %s", b.p);

    /* metadata that is not JSON: an error naming the sample */
    s2.resource_metadata = "{";
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_notifier_meter_message(&b, &s2, "", 0, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "id-2") && strstr(err, "resource_metadata"), "got: %s", err);
    sl_buf_free(&b);
}
END_TEST

START_TEST(an_event_message_is_ceilometers_byte_for_byte_with_raw_and_signature)
{
    sl_buf_t b = { 0 };
    char err[256];
    ck_assert_int_eq(sl_notifier_event_message(&b, EV, SECRET, strlen(SECRET), err, sizeof err), 0);
    s_expect(&b, EV_OUT, "event message");
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_notifier_event_message(&b, "[1]", SECRET, strlen(SECRET), err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "not a JSON object"), "got: %s", err);
    sl_buf_free(&b);
}
END_TEST

START_TEST(the_body_is_osloss_envelope_v2_or_the_bare_message_v1)
{
    sl_notifier_msg_t m = {
        .message_id = "m-1", .publisher_id = "telemetry.publisher.h", .event_type = "metering",
        .priority = "SAMPLE", .timestamp = "2026-12-03 07:10:11.123456", .unique_id = "abc",
    };
    const char *payload = "[{\"a\": \"\\u00e9\\\"\"}]";
    sl_buf_t b = { 0 };
    sl_notifier_body(&b, &m, payload, strlen(payload), 1);
    s_expect(&b,
             "{\"oslo.version\": \"2.0\", \"oslo.message\": \"{\\\"message_id\\\": \\\"m-1\\\", "
             "\\\"publisher_id\\\": \\\"telemetry.publisher.h\\\", \\\"event_type\\\": "
             "\\\"metering\\\", \\\"priority\\\": \\\"SAMPLE\\\", \\\"payload\\\": [{\\\"a\\\": "
             "\\\"\\\\u00e9\\\\\\\"\\\"}], \\\"timestamp\\\": \\\"2026-12-03 07:10:11.123456\\\", "
             "\\\"_unique_id\\\": \\\"abc\\\"}\"}",
             "messagingv2 body (json.dumps of the envelope)");
    sl_buf_reset(&b);
    sl_notifier_body(&b, &m, payload, strlen(payload), 0);
    s_expect(&b,
             "{\"message_id\": \"m-1\", \"publisher_id\": \"telemetry.publisher.h\", "
             "\"event_type\": \"metering\", \"priority\": \"SAMPLE\", \"payload\": [{\"a\": "
             "\"\\u00e9\\\"\"}], \"timestamp\": \"2026-12-03 07:10:11.123456\", \"_unique_id\": "
             "\"abc\"}",
             "messaging (1.0) body");
    sl_buf_free(&b);
}
END_TEST

START_TEST(timestamps_are_str_of_a_naive_utc_datetime)
{
    char t[32];
    sl_notifier_timestamp(t, 1, 123456789);
    ck_assert_str_eq(t, "1970-01-01 00:00:01.123456");
    sl_notifier_timestamp(t, 0, 999);   /* under a microsecond: no fraction, as str() */
    ck_assert_str_eq(t, "1970-01-01 00:00:00");
    sl_notifier_timestamp(t, 1764745811LL, 500000000);
    ck_assert_str_eq(t, "2025-12-03 07:10:11.500000");
}
END_TEST

START_TEST(json_strings_escape_like_pythons_ensure_ascii)
{
    sl_buf_t b = { 0 };
    const char s[] = "a\"\\\x01\x7f\xc3\xa9\xf0\x9f\x98\x80\xff/";
    sl_notifier_json_str(&b, s, sizeof s - 1);
    s_expect(&b, "\"a\\\"\\\\\\u0001\\u007f\\u00e9\\ud83d\\ude00\\ufffd/\"",
             "json.dumps of a string with quotes, controls, non-ASCII and a bad byte");
    sl_buf_free(&b);
}
END_TEST

START_TEST(the_urls_host_part_is_the_transport_url_as_ceilometer_builds_it)
{
    struct { const char *in, *out; } cases[] = {
        { "notifier://guest:guest@127.0.0.1:5672/?topic=metering", "rabbit://guest:guest@127.0.0.1:5672/" },
        { "notifier://a:b@h1:5672,c:d@h2:5673/vh?topic=x&driver=rabbit", "rabbit://a:b@h1:5672,c:d@h2:5673/vh" },
        { "notifier://h:1", "rabbit://h:1" },
        { "notifier://?topic=event", NULL },
        { "notifier://", NULL },
        { "notifier:///?topic=x", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *got = sl_notifier_transport_url(cases[i].in);
        ck_assert_msg((!got && !cases[i].out) ||
                      (got && cases[i].out && strcmp(got, cases[i].out) == 0),
                      "%s: expected %s, got %s", cases[i].in, cases[i].out ? cases[i].out : "NULL",
                      got ? got : "NULL");
        free(got);
    }
}
END_TEST

START_TEST(options_are_checked_with_a_reason)
{
    char err[1024];
    struct { const char *url, *want; } bad[] = {
        { "notifier://?topic=event", "needs the broker in the URL" },
        { "notifier://127.0.0.1:5672/?driver=kafka", "AMQP 0-9-1 only" },
        { "notifier://127.0.0.1:5672/?driver=messagingv2", "telemetry_driver=messagingv2" },
        { "notifier://127.0.0.1:5672/?telemetry_driver=log", "telemetry_driver" },
        { "notifier://127.0.0.1:5672/?policy=sometimes", "policy" },
        { "notifier://127.0.0.1:5672/?ssl_cert_file=/c.pem", "go together" },
        { "notifier://127.0.0.1:5672/?nosuch=1", "nosuch" },
        { "notifier://127.0.0.1:5672/?telemetry_secret_file=/nonexistent/secret", "/nonexistent/secret" },
        { "notifier://127.0.0.1:notaport/", "notaport" },
        { NULL, "too long" },   /* a second topic= of 240 bytes */
    };
    char long_topic[400];
    snprintf(long_topic, sizeof long_topic, "notifier://127.0.0.1/?topic=a&topic=%0240d&topic=b", 0);
    bad[sizeof bad / sizeof *bad - 1].url = long_topic;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        ck_assert_msg(sl_publisher_check(bad[i].url, err, sizeof err) == -1,
                      "%s: expected a refusal", bad[i].url);
        ck_assert_msg(strstr(err, bad[i].want), "%s: expected the reason to say '%s', got: %s",
                      bad[i].url, bad[i].want, err);
    }
    const char *good[] = {
        "notifier://guest:guest@127.0.0.1:5672/?topic=a&topic=b&per_meter_topic=1",
        "notifier://127.0.0.1/?topic=event&policy=queue&max_queue_length=10&max_retry=100",
        "notifier://127.0.0.1/?telemetry_driver=messaging&driver=rabbit&amqp_durable_queues=true",
        "notifier://127.0.0.1/?telemetry_driver=noop&ssl=1&timeout=2s",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        ck_assert_msg(sl_publisher_check(good[i], err, sizeof err) == 0, "%s: refused: %s",
                      good[i], err);
        ck_assert_msg(sl_publisher_check_events(good[i], err, sizeof err) == 0,
                      "%s: refused for events: %s", good[i], err);
    }
    /* a default transport URL makes notifier:// (Ceilometer's stock event
     * pipeline) valid */
    sl_publisher_notifier_set_transport_url("rabbit://guest:guest@127.0.0.1:5672/");
    ck_assert_msg(sl_publisher_check("notifier://", err, sizeof err) == 0, "refused: %s", err);
    sl_publisher_notifier_set_transport_url(NULL);
}
END_TEST

/* Nothing listens on the port: publish says RETRY with the reason (the
 * output layer retries), and noop publishes nothing and succeeds. */
START_TEST(an_unreachable_broker_is_a_retry_and_noop_sends_nothing)
{
    char err[1024];
    sl_pub_url_t u;
    const char *url = "notifier://guest:guest@127.0.0.1:1,guest:guest@127.0.0.1:2/?timeout=1s";
    ck_assert_int_eq(sl_pub_url_parse(&u, url, err, sizeof err), 0);
    void *ctx = sl_pub_url_init(&u, 0, err, sizeof err);
    ck_assert_msg(ctx != NULL, "init: %s", err);
    sl_sample_t s = s_sample1();
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = 1, .samples = &s };
    err[0] = '\0';
    ck_assert_int_eq(u.plugin->publish(ctx, &b, err, sizeof err), SL_PUB_RETRY);
    ck_assert_msg(strstr(err, "127.0.0.1:1") &&
                  strstr(err, "127.0.0.1:2") && !strstr(err, "guest:guest"),
                  "expected both hosts (without credentials) in: %s", err);
    u.plugin->destroy(&ctx);
    sl_pub_url_free(&u);

    ck_assert_int_eq(sl_pub_url_parse(&u, "notifier://127.0.0.1:1/?telemetry_driver=noop", err,
                                      sizeof err), 0);
    ctx = sl_pub_url_init(&u, 0, err, sizeof err);
    ck_assert_int_eq(u.plugin->publish(ctx, &b, err, sizeof err), SL_PUB_OK);
    u.plugin->destroy(&ctx);
    sl_pub_url_free(&u);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("publisher_notifier");
    TCase *tc = tcase_create("publisher_notifier");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_meter_message_is_ceilometers_byte_for_byte_with_its_signature);
    tcase_add_test(tc, an_event_message_is_ceilometers_byte_for_byte_with_raw_and_signature);
    tcase_add_test(tc, the_body_is_osloss_envelope_v2_or_the_bare_message_v1);
    tcase_add_test(tc, timestamps_are_str_of_a_naive_utc_datetime);
    tcase_add_test(tc, json_strings_escape_like_pythons_ensure_ascii);
    tcase_add_test(tc, the_urls_host_part_is_the_transport_url_as_ceilometer_builds_it);
    tcase_add_test(tc, options_are_checked_with_a_reason);
    tcase_add_test(tc, an_unreachable_broker_is_a_retry_and_noop_sends_nothing);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
