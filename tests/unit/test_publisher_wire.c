/* publisher_wire: what the udp://, tcp://, prometheus:// and
 * opentelemetryhttp:// publishers send, against what Ceilometer sends for
 * the same samples. The expected bytes below were made under Debian's
 * /usr/bin/python3 with python3-ceilometer 19 and python3-msgpack:
 * msgpack.dumps(utils.meter_message_from_counter(s, secret),
 * use_bin_type=True) for udp; the same packing of Ceilometer 20's message
 * (user_name, project_name None, publisher_id "host-x", signed with
 * compute_signature) for tcp; PrometheusPublisher.publish_samples' body;
 * and upstream's OpentelemetryHttpPublisher (ceilometer/publisher/
 * opentelemetry_http.py at master, run on Debian's Ceilometer 19 with TZ=UTC)
 * for opentelemetryhttp. The samples are the ones of
 * test_publisher_notifier.c (S1: every special case of compute_signature)
 * and five samples covering cumulative/gauge/delta, None ids, int, float,
 * numeric-string and 1e16 volumes and timestamp offsets. Sending to real
 * receivers (and to a real Pushgateway) is tests/func/test_wire_publishers.py. */
#include <check.h>

#include "tests/sl_check.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/pycompat.h"
#include "common/sample.h"
#include "worker/publishers/otlp.h"
#include "worker/publishers/prometheus.h"
#include "worker/publishers/publisher.h"
#include "worker/publishers/udp.h"

#define SECRET "change this for valid signing"

static const char *META =
    "{\"host\": \"compute-1\", \"flavor\": {\"vcpus\": 2, \"name\": \"m1.tiny\", \"extra\": {}}, "
    "\"tags\": [\"a\", \"b'c\", \"\\u00e9\", \"q\\\"'\"], \"ratio\": 0.1, \"big\": 1e400, \"ok\": "
    "true, \"none\": null, \"list_of_dicts\": [{\"z\": 1, \"a\": \"x\\ny\", \"t\": [1.0, -0, "
    "2e16]}], \"unicode\": \"na\\u00efve \\u2603 \\ud83d\\ude00\", \"ctrl\": "
    "\"a\\u0001b\\u007f\\t/\"}";

static const char *PROM_TEXT =
    "# TYPE cpu counter\ncpu{resource_id=\"r-1\", project_id=\"None\"} 1234567\n# TYPE disk"
    "_root_size gauge\ndisk_root_size{resource_id=\"r-1\", project_id=\"p-1\"} 1.5\nnetwork"
    "_incoming_bytes_delta{resource_id=\"r-2\", project_id=\"p\"} 42\ndisk_root_size{resour"
    "ce_id=\"r-2\", project_id=\"p-1\"} 20\n# TYPE memory gauge\nmemory{resource_id=\"r-3\""
    ", project_id=\"p\"} 1e+16\n";
static const char *const OTLP[] = {
    "{\"resource_metrics\": [{\"scope_metrics\": [{\"scope\": {\"name\": \"ceilometer\", \""
    "version\": \"v1\"}, \"metrics\": [{\"name\": \"cpu\", \"description\": \"cpu unit:ns\""
    ", \"unit\": \"ns\", \"counter\": {\"data_points\": [{\"attributes\": [{\"key\": \"reso"
    "urce_id\", \"value\": {\"string_value\": \"r-1\"}}, {\"key\": \"user_id\", \"value\": "
    "{\"string_value\": \"u-1\"}}, {\"key\": \"project_id\", \"value\": {\"string_value\": "
    "null}}], \"start_time_unix_nano\": 1678786013, \"time_unix_nano\": 1678786013, \"as_do"
    "uble\": 1234567, \"flags\": 0}]}}]}]}]}",
    "{\"resource_metrics\": [{\"scope_metrics\": [{\"scope\": {\"name\": \"ceilometer\", \""
    "version\": \"v1\"}, \"metrics\": [{\"name\": \"disk_root_size\", \"description\": \"di"
    "sk.root.size unit:GB\", \"unit\": \"GB\", \"gauge\": {\"data_points\": [{\"attributes\""
    ": [{\"key\": \"resource_id\", \"value\": {\"string_value\": \"r-1\"}}, {\"key\": \"use"
    "r_id\", \"value\": {\"string_value\": null}}, {\"key\": \"project_id\", \"value\": {\""
    "string_value\": \"p-1\"}}], \"start_time_unix_nano\": 1678786013, \"time_unix_nano\": "
    "1678786013, \"as_double\": 1.5, \"flags\": 0}]}}]}]}]}",
    "{\"resource_metrics\": [{\"scope_metrics\": [{\"scope\": {\"name\": \"ceilometer\", \""
    "version\": \"v1\"}, \"metrics\": [{\"name\": \"network_incoming_bytes_delta\", \"descr"
    "iption\": \"network.incoming.bytes.delta unit:B\", \"unit\": \"B\", \"gauge\": {\"data"
    "_points\": [{\"attributes\": [{\"key\": \"resource_id\", \"value\": {\"string_value\":"
    " \"r-2\"}}, {\"key\": \"user_id\", \"value\": {\"string_value\": \"u\"}}, {\"key\": \""
    "project_id\", \"value\": {\"string_value\": \"p\"}}], \"start_time_unix_nano\": 167878"
    "6013, \"time_unix_nano\": 1678786013, \"as_double\": \"42\", \"flags\": 0}]}}]}]}]}",
    "{\"resource_metrics\": [{\"scope_metrics\": [{\"scope\": {\"name\": \"ceilometer\", \""
    "version\": \"v1\"}, \"metrics\": [{\"name\": \"disk_root_size\", \"description\": \"di"
    "sk.root.size unit:GB\", \"unit\": \"GB\", \"gauge\": {\"data_points\": [{\"attributes\""
    ": [{\"key\": \"resource_id\", \"value\": {\"string_value\": \"r-2\"}}, {\"key\": \"use"
    "r_id\", \"value\": {\"string_value\": null}}, {\"key\": \"project_id\", \"value\": {\""
    "string_value\": \"p-1\"}}], \"start_time_unix_nano\": 1678786013, \"time_unix_nano\": "
    "1678786013, \"as_double\": 20, \"flags\": 0}]}}]}]}]}",
    "{\"resource_metrics\": [{\"scope_metrics\": [{\"scope\": {\"name\": \"ceilometer\", \""
    "version\": \"v1\"}, \"metrics\": [{\"name\": \"memory\", \"description\": \"memory uni"
    "t:MB\", \"unit\": \"MB\", \"gauge\": {\"data_points\": [{\"attributes\": [{\"key\": \""
    "resource_id\", \"value\": {\"string_value\": \"r-3\"}}, {\"key\": \"user_id\", \"value"
    "\": {\"string_value\": \"u\"}}, {\"key\": \"project_id\", \"value\": {\"string_value\""
    ": \"p\"}}], \"start_time_unix_nano\": 1678789613, \"time_unix_nano\": 1678789613, \"as"
    "_double\": 1e+16, \"flags\": 0}]}}]}]}]}",
};
static const char *UDP_HEX =
    "8da6736f75726365a96f70656e737461636bac636f756e7465725f6e616d65a3637075ac636f756e7465725f"
    "74797065aa63756d756c6174697665ac636f756e7465725f756e6974a26e73ae636f756e7465725f766f6c75"
    "6d65ce0012d687a7757365725f6964a3752d31aa70726f6a6563745f6964c0ab7265736f757263655f6964a3"
    "722d31a974696d657374616d70d920323032332d30332d31345430393a32363a35332e3538393739332b3030"
    "3a3030b17265736f757263655f6d657461646174618aa4686f7374a9636f6d707574652d31a6666c61766f72"
    "83a5766370757302a46e616d65a76d312e74696e79a5657874726180a47461677394a161a3622763a2c3a9a3"
    "712227a5726174696fcb3fb999999999999aa3626967cb7ff0000000000000a26f6bc3a46e6f6e65c0ad6c69"
    "73745f6f665f64696374739183a17a01a161a3780a79a17493cb3ff000000000000000cb4351c37937e08000"
    "a7756e69636f6465af6e61c3af766520e2988320f09f9880a46374726ca66101627f092faa6d657373616765"
    "5f6964d92435653263336431612d303030302d343030302d383030302d303030303030303030303031ae6d6f"
    "6e6f746f6e69635f74696d65c0b16d6573736167655f7369676e6174757265d9406663303839303239376538"
    "6435313365393735323262386632373631323961653937363835643833373233323864313339373534376565"
    "653766383466356237"
    ;
static const char *TCP_HEX =
    "de0010a6736f75726365a96f70656e737461636bac636f756e7465725f6e616d65a3637075ac636f756e7465"
    "725f74797065aa63756d756c6174697665ac636f756e7465725f756e6974a26e73ae636f756e7465725f766f"
    "6c756d65ce0012d687a7757365725f6964a3752d31a9757365725f6e616d65c0aa70726f6a6563745f6964c0"
    "ac70726f6a6563745f6e616d65c0ab7265736f757263655f6964a3722d31a974696d657374616d70d9203230"
    "32332d30332d31345430393a32363a35332e3538393739332b30303a3030b17265736f757263655f6d657461"
    "646174618aa4686f7374a9636f6d707574652d31a6666c61766f7283a5766370757302a46e616d65a76d312e"
    "74696e79a5657874726180a47461677394a161a3622763a2c3a9a3712227a5726174696fcb3fb99999999999"
    "9aa3626967cb7ff0000000000000a26f6bc3a46e6f6e65c0ad6c6973745f6f665f64696374739183a17a01a1"
    "61a3780a79a17493cb3ff000000000000000cb4351c37937e08000a7756e69636f6465af6e61c3af766520e2"
    "988320f09f9880a46374726ca66101627f092faa6d6573736167655f6964d92435653263336431612d303030"
    "302d343030302d383030302d303030303030303030303031ae6d6f6e6f746f6e69635f74696d65c0ac707562"
    "6c69736865725f6964a6686f73742d78b16d6573736167655f7369676e6174757265d9403566383734373833"
    "6139636239313931663936346438376664643261373430353164646637353031346135643033383230306339"
    "363262656262376534306238"
    ;

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

/* The five samples of PROM_TEXT and OTLP[]. */
static const sl_sample_t FIVE[] = {
    { .id = "a", .name = "cpu", .type = "cumulative", .unit = "ns", .volume_json = "1234567",
      .volume = 1234567, .user_id = "u-1", .project_id = NULL, .resource_id = "r-1",
      .timestamp = "2023-03-14T09:26:53.589793+00:00", .resource_metadata = "{}",
      .source = "openstack" },
    { .id = "b", .name = "disk.root.size", .type = "gauge", .unit = "GB", .volume_json = "1.5",
      .volume = 1.5, .user_id = NULL, .project_id = "p-1", .resource_id = "r-1",
      .timestamp = "2023-03-14T09:26:53+00:00", .resource_metadata = "{}", .source = "openstack" },
    { .id = "c", .name = "network.incoming.bytes.delta", .type = "delta", .unit = "B",
      .volume_json = "\"42\"", .volume = 42, .user_id = "u", .project_id = "p",
      .resource_id = "r-2", .timestamp = "2023-03-14T09:26:53Z", .resource_metadata = "{}",
      .source = "openstack" },
    { .id = "d", .name = "disk.root.size", .type = "gauge", .unit = "GB", .volume_json = "20",
      .volume = 20, .user_id = NULL, .project_id = "p-1", .resource_id = "r-2",
      .timestamp = "2023-03-14T09:26:53", .resource_metadata = "{}", .source = "openstack" },
    { .id = "e", .name = "memory", .type = "gauge", .unit = "MB", .volume_json = "1e16",
      .volume = 1e16, .user_id = "u", .project_id = "p", .resource_id = "r-3",
      .timestamp = "2023-03-14T10:26:53.5+01:00", .resource_metadata = "{}",
      .source = "openstack" },
};

static char *
s_hex(const char *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        snprintf(h + 2 * i, 3, "%02x", (unsigned char) p[i]);
    h[2 * n] = '\0';
    return h;
}

START_TEST(udp_messages_are_ceilometer_19s_msgpack_byte_for_byte)
{
    sl_sample_t s = s_sample1();
    sl_buf_t b = { 0 };
    char err[256];
    ck_assert_msg(sl_udp_meter_pack(&b, &s, SECRET, strlen(SECRET), NULL, err, sizeof err) == 0,
                  "packing failed: %s", err);
    char *h = s_hex(b.p, b.n);
    ck_assert_msg(strcmp(h, UDP_HEX) == 0, "expected\n%s\ngot\n%s", UDP_HEX, h);
    free(h);
    sl_buf_free(&b);
}
END_TEST

START_TEST(tcp_messages_are_ceilometer_20s_msgpack_byte_for_byte)
{
    sl_sample_t s = s_sample1();
    sl_buf_t b = { 0 };
    char err[256];
    ck_assert(sl_udp_meter_pack(&b, &s, SECRET, strlen(SECRET), "host-x", err, sizeof err) == 0);
    char *h = s_hex(b.p, b.n);
    ck_assert_msg(strcmp(h, TCP_HEX) == 0, "expected\n%s\ngot\n%s", TCP_HEX, h);
    free(h);
    sl_buf_free(&b);
}
END_TEST

START_TEST(unpackable_samples_are_refused_with_a_reason)
{
    sl_sample_t s = s_sample1();
    sl_buf_t b = { 0 };
    char err[256];
    s.volume_json = "123456789012345678901234567890";
    ck_assert(sl_udp_meter_pack(&b, &s, SECRET, strlen(SECRET), NULL, err, sizeof err) < 0);
    ck_assert_msg(strstr(err, "OverflowError"), "reason: %s", err);
    ck_assert_uint_eq(b.n, 0);
    s.volume_json = "18446744073709551615";   /* 2^64-1: msgpack's uint 64 */
    ck_assert(sl_udp_meter_pack(&b, &s, SECRET, strlen(SECRET), NULL, err, sizeof err) == 0);
    s.resource_metadata = "{not json";
    sl_buf_reset(&b);
    ck_assert(sl_udp_meter_pack(&b, &s, SECRET, strlen(SECRET), NULL, err, sizeof err) < 0);
    ck_assert_msg(strstr(err, "resource_metadata"), "reason: %s", err);
    sl_buf_free(&b);
}
END_TEST

START_TEST(host_and_port_are_read_as_oslo_netutils_does)
{
    char host[64], err[128];
    unsigned port;
    ck_assert(sl_udp_parse_host_port("10.0.0.1:5000", 4952, host, sizeof host, &port, err,
                                     sizeof err) == 0);
    ck_assert_str_eq(host, "10.0.0.1");
    ck_assert_uint_eq(port, 5000);
    ck_assert(sl_udp_parse_host_port("collector", 4952, host, sizeof host, &port, err,
                                     sizeof err) == 0);
    ck_assert_str_eq(host, "collector");
    ck_assert_uint_eq(port, 4952);
    ck_assert(sl_udp_parse_host_port("[::1]:4953", 4952, host, sizeof host, &port, err,
                                     sizeof err) == 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 4953);
    ck_assert(sl_udp_parse_host_port("[fe80::1]", 4952, host, sizeof host, &port, err,
                                     sizeof err) == 0);
    ck_assert_str_eq(host, "fe80::1");
    ck_assert_uint_eq(port, 4952);
    ck_assert(sl_udp_parse_host_port("::1", 4952, host, sizeof host, &port, err, sizeof err) == 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_uint_eq(port, 4952);
    ck_assert(sl_udp_parse_host_port("h:x", 4952, host, sizeof host, &port, err, sizeof err) < 0);
    ck_assert(sl_udp_parse_host_port("h:70000", 4952, host, sizeof host, &port, err,
                                     sizeof err) < 0);
    ck_assert(sl_udp_parse_host_port("", 4952, host, sizeof host, &port, err, sizeof err) < 0);
}
END_TEST

START_TEST(the_pushgateway_text_is_ceilometer_19s)
{
    sl_buf_t b = { 0 };
    ck_assert_uint_eq(sl_prometheus_text(&b, FIVE, 5, NULL), 5);
    ck_assert_msg(strcmp(b.p, PROM_TEXT) == 0, "expected\n%s\ngot\n%s", PROM_TEXT, b.p);
    sl_buf_free(&b);
}
END_TEST

START_TEST(the_pushgateway_text_escapes_labels_mangles_names_and_keeps_a_series_once)
{
    sl_sample_t s[3] = { FIVE[1], FIVE[1], FIVE[0] };
    s[0].volume_json = "1";
    s[1].volume_json = "2";   /* the same series: only this one is written */
    s[2].name = "hardware.ipmi-fan/1";
    s[2].resource_id = "a\"b\\c\nd";
    sl_buf_t b = { 0 };
    ck_assert_uint_eq(sl_prometheus_text(&b, s, 3, NULL), 2);
    const char *want =
        "# TYPE disk_root_size gauge\n"
        "disk_root_size{resource_id=\"r-1\", project_id=\"p-1\"} 2\n"
        "# TYPE hardware_ipmi_fan_1 counter\n"
        "hardware_ipmi_fan_1{resource_id=\"a\\\"b\\\\c\\nd\", project_id=\"None\"} 1234567\n";
    ck_assert_msg(strcmp(b.p, want) == 0, "expected\n%s\ngot\n%s", want, b.p);
    sl_buf_free(&b);
}
END_TEST

START_TEST(otlp_json_is_upstream_ceilometers_one_document_per_sample)
{
    setenv("TZ", "UTC", 1);
    tzset();
    sl_py_t *py = sl_py_new();
    char err[256];
    for (size_t i = 0; i < 5; i++) {
        sl_buf_t b = { 0 };
        sl_otlp_open(&b, 0);
        ck_assert_msg(sl_otlp_metric(&b, &FIVE[i], 0, py, err, sizeof err) == 0, "%s", err);
        sl_otlp_close(&b);
        ck_assert_msg(strcmp(b.p, OTLP[i]) == 0, "sample %zu: expected\n%s\ngot\n%s", i, OTLP[i],
                      b.p);
        sl_buf_free(&b);
    }
    sl_sample_t bad = FIVE[0];
    bad.timestamp = "yesterday";
    sl_buf_t b = { 0 };
    ck_assert(sl_otlp_metric(&b, &bad, 0, py, err, sizeof err) < 0);
    ck_assert_uint_eq(b.n, 0);
    sl_buf_free(&b);
    sl_py_destroy(&py);
}
END_TEST

START_TEST(otlp_format_follows_the_specification)
{
    sl_py_t *py = sl_py_new();
    char err[256];
    sl_buf_t b = { 0 };
    ck_assert(sl_otlp_metric(&b, &FIVE[0], 1, py, err, sizeof err) == 0);
    const char *want =
        "{\"name\": \"cpu\", \"description\": \"cpu unit:ns\", \"unit\": \"ns\", \"sum\": "
        "{\"dataPoints\": [{\"attributes\": [{\"key\": \"resource_id\", \"value\": "
        "{\"stringValue\": \"r-1\"}}, {\"key\": \"user_id\", \"value\": {\"stringValue\": "
        "\"u-1\"}}], \"startTimeUnixNano\": \"1678786013589793000\", \"timeUnixNano\": "
        "\"1678786013589793000\", \"asDouble\": 1234567.0}], \"aggregationTemporality\": 2, "
        "\"isMonotonic\": true}}";
    ck_assert_msg(strcmp(b.p, want) == 0, "expected\n%s\ngot\n%s", want, b.p);
    sl_buf_reset(&b);
    /* +01:00 is honoured here: 10:26:53.5+01:00 = 09:26:53.5Z */
    ck_assert(sl_otlp_metric(&b, &FIVE[4], 1, py, err, sizeof err) == 0);
    ck_assert_msg(strstr(b.p, "\"timeUnixNano\": \"1678786013500000000\""), "got %s", b.p);
    ck_assert_msg(strstr(b.p, "\"gauge\": {\"dataPoints\""), "got %s", b.p);
    sl_buf_reset(&b);
    ck_assert(sl_otlp_metric(&b, &FIVE[2], 1, py, err, sizeof err) == 0);
    ck_assert_msg(strstr(b.p, "\"asDouble\": 42.0}], \"aggregationTemporality\": 1, "
                              "\"isMonotonic\": false"), "got %s", b.p);
    sl_buf_free(&b);
    sl_py_destroy(&py);
}
END_TEST

/* ---- publishing to local sockets ----------------------------------------- */

static int
s_bound(int type, unsigned *port)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert(bind(fd, (struct sockaddr *) &a, sizeof a) == 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *) &a, &l);
    *port = ntohs(a.sin_port);
    if (type == SOCK_STREAM)
        listen(fd, 4);
    return fd;
}

static void *
s_open(sl_pub_url_t *u, const char *url)
{
    char err[512];
    ck_assert_msg(sl_pub_url_parse(u, url, err, sizeof err) == 0, "%s: %s", url, err);
    void *ctx = sl_pub_url_init(u, 0, err, sizeof err);
    ck_assert_msg(ctx, "%s: %s", url, err);
    return ctx;
}

START_TEST(udp_sends_one_datagram_per_sample_and_counts_oversized_ones)
{
    unsigned port;
    int rx = s_bound(SOCK_DGRAM, &port);
    char url[128], err[512];
    snprintf(url, sizeof url, "udp://127.0.0.1:%u", port);
    sl_pub_url_t u;
    void *ctx = s_open(&u, url);
    sl_sample_t s[3] = { s_sample1(), s_sample1(), s_sample1() };
    /* a message over 65,507 bytes cannot be one IPv4 datagram */
    size_t big = 70000;
    char *meta = malloc(big + 16);
    snprintf(meta, big + 16, "{\"x\": \"%0*d\"}", (int) big, 0);
    s[1].resource_metadata = meta;
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = 3, .samples = s };
    sl_pub_status_t st = u.plugin->publish(ctx, &b, err, sizeof err);
    ck_assert_msg(st == SL_PUB_ERROR, "an oversized sample makes the batch ERROR, got %d", st);
    ck_assert_msg(strstr(err, "1 of 3 samples not sent") && strstr(err, "65507"), "%s", err);
    char buf[70000];
    for (int i = 0; i < 2; i++) {
        ssize_t r = recv(rx, buf, sizeof buf, MSG_DONTWAIT);
        ck_assert_msg(r == (ssize_t) (strlen(UDP_HEX) / 2), "datagram %d: %zd bytes", i, r);
    }
    ck_assert(recv(rx, buf, sizeof buf, MSG_DONTWAIT) < 0);
    b.n = 1;
    ck_assert(u.plugin->publish(ctx, &b, err, sizeof err) == SL_PUB_OK);
    u.plugin->destroy(&ctx);
    sl_pub_url_free(&u);
    free(meta);
    close(rx);
}
END_TEST

START_TEST(udp_sends_to_ipv6_addresses)
{
    int rx = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    if (rx < 0 || bind(rx, (struct sockaddr *) &a, sizeof a) < 0) {
        /* no IPv6 on this host: the URL must still parse */
        char err[256];
        ck_assert(sl_publisher_check("udp://[::1]:4952", err, sizeof err) == 0);
        if (rx >= 0)
            close(rx);
        return;
    }
    socklen_t l = sizeof a;
    getsockname(rx, (struct sockaddr *) &a, &l);
    char url[128], err[512], buf[4096];
    snprintf(url, sizeof url, "udp://[::1]:%u", ntohs(a.sin6_port));
    sl_pub_url_t u;
    void *ctx = s_open(&u, url);
    sl_sample_t s = s_sample1();
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = 1, .samples = &s };
    ck_assert_msg(u.plugin->publish(ctx, &b, err, sizeof err) == SL_PUB_OK, "%s", err);
    struct pollfd p = { .fd = rx, .events = POLLIN };
    ck_assert(poll(&p, 1, 2000) == 1);
    ck_assert_int_eq(recv(rx, buf, sizeof buf, 0), (ssize_t) (strlen(UDP_HEX) / 2));
    u.plugin->destroy(&ctx);
    sl_pub_url_free(&u);
    close(rx);
}
END_TEST

/* Reads one frame (8-byte little-endian length, then the message). */
static ssize_t
s_frame(int fd, char *buf, size_t cap)
{
    unsigned char len[8];
    size_t got = 0;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (got < 8) {
        if (poll(&p, 1, 2000) <= 0)
            return -1;
        ssize_t r = recv(fd, len + got, 8 - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t) r;
    }
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = (n << 8) | len[k];
    if (n > cap)
        return -1;
    got = 0;
    while (got < n) {
        if (poll(&p, 1, 2000) <= 0)
            return -1;
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t) r;
    }
    return (ssize_t) n;
}

START_TEST(tcp_frames_samples_and_reconnects_after_the_peer_closes)
{
    unsigned port;
    int lfd = s_bound(SOCK_STREAM, &port);
    char url[128], err[512], buf[4096];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u?timeout=2s", port);
    sl_pub_url_t u;
    void *ctx = s_open(&u, url);
    sl_sample_t s[2] = { s_sample1(), s_sample1() };
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = 2, .samples = s };
    ck_assert(u.plugin->publish(ctx, &b, err, sizeof err) == SL_PUB_OK);
    int c = accept(lfd, NULL, NULL);
    ck_assert(c >= 0);
    for (int i = 0; i < 2; i++) {
        ssize_t n = s_frame(c, buf, sizeof buf);
        ck_assert_msg(n > 0 && memmem(buf, (size_t) n, "publisher_id", 12), "frame %d: %zd", i, n);
    }
    close(c);      /* the receiver goes away: the next batch goes on a new connection */
    usleep(50000);
    ck_assert_msg(u.plugin->publish(ctx, &b, err, sizeof err) == SL_PUB_OK, "%s", err);
    c = accept(lfd, NULL, NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(s_frame(c, buf, sizeof buf) > 0, "frame %d after reconnecting", i);
    close(c);
    close(lfd);    /* nobody listens: RETRY with the reason */
    usleep(50000);
    sl_pub_status_t st = u.plugin->publish(ctx, &b, err, sizeof err);
    ck_assert_msg(st == SL_PUB_RETRY && strstr(err, "refused"), "got %d: %s", st, err);
    u.plugin->destroy(&ctx);
    sl_pub_url_free(&u);
}
END_TEST

START_TEST(urls_and_options_are_checked_and_events_refused)
{
    char err[512];
    ck_assert(sl_publisher_check("udp://[::1]:4952", err, sizeof err) == 0);
    ck_assert(sl_publisher_check("udp://collector", err, sizeof err) == 0);
    ck_assert(sl_publisher_check("udp://", err, sizeof err) < 0);
    ck_assert_msg(strstr(err, "needs a host"), "%s", err);
    ck_assert(sl_publisher_check("tcp://h:99999", err, sizeof err) < 0);
    ck_assert(sl_publisher_check("udp://h?telemetry_secret_file=/nonexistent", err,
                                 sizeof err) < 0);
    ck_assert(sl_publisher_check("prometheus://127.0.0.1:9091/metrics/job/os?timeout=2",
                                 err, sizeof err) == 0);
    ck_assert(sl_publisher_check("prometheus:///metrics/job/os", err, sizeof err) < 0);
    ck_assert_msg(strstr(err, "hostname"), "%s", err);
    ck_assert(sl_publisher_check("opentelemetryhttp://h:4318/v1/metrics?format=otlp&post=batch"
                                 "&batch=false", err, sizeof err) == 0);
    ck_assert(sl_publisher_check("opentelemetryhttp://h:4318/v1/metrics?format=json", err,
                                 sizeof err) < 0);
    const char *ev[] = { "udp://h", "tcp://h", "prometheus://h/metrics/job/x",
                         "opentelemetryhttp://h/v1/metrics" };
    for (size_t i = 0; i < 4; i++) {
        ck_assert(sl_publisher_check_events(ev[i], err, sizeof err) < 0);
        ck_assert_msg(strstr(err, "cannot publish events"), "%s: %s", ev[i], err);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("publisher_wire");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, udp_messages_are_ceilometer_19s_msgpack_byte_for_byte);
    tcase_add_test(tc, tcp_messages_are_ceilometer_20s_msgpack_byte_for_byte);
    tcase_add_test(tc, unpackable_samples_are_refused_with_a_reason);
    tcase_add_test(tc, host_and_port_are_read_as_oslo_netutils_does);
    tcase_add_test(tc, the_pushgateway_text_is_ceilometer_19s);
    tcase_add_test(tc, the_pushgateway_text_escapes_labels_mangles_names_and_keeps_a_series_once);
    tcase_add_test(tc, otlp_json_is_upstream_ceilometers_one_document_per_sample);
    tcase_add_test(tc, otlp_format_follows_the_specification);
    tcase_add_test(tc, udp_sends_one_datagram_per_sample_and_counts_oversized_ones);
    tcase_add_test(tc, udp_sends_to_ipv6_addresses);
    tcase_add_test(tc, tcp_frames_samples_and_reconnects_after_the_peer_closes);
    tcase_add_test(tc, urls_and_options_are_checked_and_events_refused);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
