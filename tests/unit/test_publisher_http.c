/* Unit tests of the http://, https:// and zaqar:// publishers and of their
 * record serialisation (worker/publishers/pubjson.h): the bytes Ceilometer
 * 19 sends for the same records (the Zaqar recording of
 * tests/data/reference/zaqar_publisher_capture.jsonl), the request line,
 * headers and body each plugin sends to a small server on a thread of this
 * test (127.0.0.1), the status classification, URL validation, and
 * [event] store_raw (the raw notification on events, raw_only payloads). */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/envelope.h"
#include "common/events.h"
#include "common/json.h"
#include "worker/publishers/publisher.h"
#include "worker/publishers/pubjson.h"

/* ---- the records of Ceilometer's reference run --------------------------- */

#define S_META "{\"host\": \"compute-1\", \"display_name\": \"vm-1\", \"flavor_id\": \"1\", " \
               "\"flavor_name\": \"m1.tiny\", \"image_ref\": \"img-1\"}"
#define S_VM "0f0e0d0c-0b0a-4909-8807-060504030201"

static const sl_sample_t s_samples[] = {
    { .id = "id-cpu-" S_VM, .name = "cpu", .type = "cumulative", .unit = "ns",
      .volume = 1.5e9, .user_id = "u-1", .project_id = "p-1", .resource_id = S_VM,
      .timestamp = "2026-01-02T03:04:05.123456+00:00", .resource_metadata = S_META,
      .source = "openstack", .message_id = "not-sent" },
    { .id = "id-memory.usage-" S_VM, .name = "memory.usage", .type = "gauge", .unit = "MB",
      .volume_json = "128", .volume = 128, .user_id = "u-1", .project_id = "p-1",
      .resource_id = S_VM, .timestamp = "2026-01-02T03:04:05.123456+00:00",
      .resource_metadata = S_META, .source = "openstack" },
};

/* What Ceilometer's ZaqarPublisher posted for them (ttl=1200), byte for byte. */
static const char s_zaqar_samples[] =
    "{\"messages\": [{\"body\": {\"name\": \"cpu\", \"type\": \"cumulative\", \"unit\": \"ns\", "
    "\"volume\": 1500000000.0, \"user_id\": \"u-1\", \"project_id\": \"p-1\", \"resource_id\": "
    "\"" S_VM "\", \"timestamp\": \"2026-01-02T03:04:05.123456+00:00\", \"resource_metadata\": "
    S_META ", \"source\": \"openstack\", \"id\": \"id-cpu-" S_VM "\", \"monotonic_time\": null}, "
    "\"ttl\": 1200}, {\"body\": {\"name\": \"memory.usage\", \"type\": \"gauge\", \"unit\": "
    "\"MB\", \"volume\": 128, \"user_id\": \"u-1\", \"project_id\": \"p-1\", \"resource_id\": "
    "\"" S_VM "\", \"timestamp\": \"2026-01-02T03:04:05.123456+00:00\", \"resource_metadata\": "
    S_META ", \"source\": \"openstack\", \"id\": \"id-memory.usage-" S_VM "\", "
    "\"monotonic_time\": null}, \"ttl\": 1200}]}";

static const char s_event[] =
    "{\"event_type\":\"compute.instance.create.end\",\"generated\":"
    "\"2026-01-02T03:04:05.123456+00:00\",\"message_id\":\"msg-1\",\"traits\":"
    "[[\"host\",1,\"h1\"]],\"raw\":{\"k\":\"v\"}}";
static const char s_zaqar_event[] =
    "{\"messages\": [{\"body\": {\"message_id\": \"msg-1\", \"event_type\": "
    "\"compute.instance.create.end\", \"generated\": \"2026-01-02T03:04:05.123456+00:00\", "
    "\"traits\": [[\"host\", 1, \"h1\"]], \"raw\": {\"k\": \"v\"}}, \"ttl\": 1200}]}";

#ifndef SL_SRCDIR
#define SL_SRCDIR "."
#endif

/* Field `field` of line `line` (0-based) of the recording, in a. */
static const char *
s_recorded(sl_arena_t *a, int line, const char *field)
{
    FILE *f = fopen(SL_SRCDIR "/tests/data/reference/zaqar_publisher_capture.jsonl", "r");
    ck_assert_msg(f != NULL, "cannot open the recording");
    static char buf[1 << 16];
    const char *r = NULL;
    for (int i = 0; i <= line && fgets(buf, sizeof buf, f); i++) {
        if (i < line)
            continue;
        char why[128];
        yajl_val v = sl_json_parse(a, buf, strlen(buf), 0, why, sizeof why);
        ck_assert_msg(v != NULL, "recording line %d: %s", line, why);
        yajl_val x = sl_json_get(v, field);
        if (!x)
            x = sl_json_get(sl_json_get(v, "headers"), field);
        r = sl_json_str(x);
    }
    fclose(f);
    ck_assert_msg(r != NULL, "recording line %d has no %s", line, field);
    return r;
}

/* The bodies above are the recording's, byte for byte. */
START_TEST(test_recording_is_the_reference)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    ck_assert_str_eq(s_recorded(&a, 0, "body"), s_zaqar_samples);
    ck_assert_str_eq(s_recorded(&a, 1, "body"), s_zaqar_event);
    ck_assert_str_eq(s_recorded(&a, 0, "path"), "/v2/queues/ceilo_q/messages");
    ck_assert_str_eq(s_recorded(&a, 0, "content-type"), "application/json");
    ck_assert_uint_eq(strlen(s_recorded(&a, 0, "Client-ID")), 32);
    sl_arena_destroy(&a);
}
END_TEST

START_TEST(test_sample_as_dict_bytes)
{
    sl_buf_t b = { 0 };
    char err[256];
    ck_assert_int_eq(sl_pubjson_sample(&b, &s_samples[1], NULL, err, sizeof err), 0);
    const char *want = strstr(s_zaqar_samples, "{\"name\": \"memory.usage\"");
    ck_assert_ptr_nonnull(want);
    ck_assert_int_eq(strncmp(b.p, want, b.n), 0);
    ck_assert_str_eq(want + b.n, ", \"ttl\": 1200}]}");
    /* non-ASCII as \u escapes, floats as repr, a monotonic_time, no source */
    sl_sample_t s = s_samples[1];
    s.resource_metadata = "{\"n\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\", \"f\": 0.1, \"e\": 1e22, "
                          "\"l\": [true, null]}";
    s.volume_json = NULL;
    s.volume = 0.30000000000000004;
    s.monotonic_time = "12.5";
    s.source = NULL;
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_pubjson_sample(&b, &s, NULL, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(b.p, "\"volume\": 0.30000000000000004,"));
    ck_assert_ptr_nonnull(strstr(b.p, "{\"n\": \"caf\\u00e9 \\ud83d\\ude00\", \"f\": 0.1, "
                                      "\"e\": 1e+22, \"l\": [true, null]}"));
    ck_assert_ptr_nonnull(strstr(b.p, "\"source\": \"openstack\","));
    ck_assert_ptr_nonnull(strstr(b.p, "\"monotonic_time\": 12.5}"));
    s.resource_metadata = "{not json";
    size_t before = b.n;
    ck_assert_int_eq(sl_pubjson_sample(&b, &s, NULL, err, sizeof err), -1);
    ck_assert_uint_eq(b.n, before);
    ck_assert_ptr_nonnull(strstr(err, "resource_metadata"));
    sl_buf_free(&b);
}
END_TEST

START_TEST(test_event_serialize_bytes)
{
    sl_buf_t b = { 0 };
    char err[256];
    ck_assert_int_eq(sl_pubjson_event(&b, s_event, NULL, err, sizeof err), 0);
    const char *want = strstr(s_zaqar_event, "{\"message_id\"");
    ck_assert_int_eq(strncmp(b.p, want, b.n), 0);
    ck_assert_str_eq(want + b.n, ", \"ttl\": 1200}]}");
    /* no raw member: {} (store_raw unset); floats and datetimes as given */
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_pubjson_event(&b, "{\"event_type\":\"a\",\"generated\":\"2026-01-02T03:"
                                      "04:05\",\"message_id\":\"m\",\"traits\":[[\"f\",3,2.0],"
                                      "[\"d\",4,\"2026-01-02T03:04:05\"]]}", NULL, err,
                                      sizeof err), 0);
    ck_assert_str_eq(b.p, "{\"message_id\": \"m\", \"event_type\": \"a\", \"generated\": "
                          "\"2026-01-02T03:04:05\", \"traits\": [[\"f\", 3, 2.0], [\"d\", 4, "
                          "\"2026-01-02T03:04:05\"]], \"raw\": {}}");
    ck_assert_int_eq(sl_pubjson_event(&b, "[1]", NULL, err, sizeof err), -1);
    ck_assert_int_eq(sl_pubjson_event(&b, "{\"traits\": 3}", NULL, err, sizeof err), -1);
    sl_buf_free(&b);
}
END_TEST

START_TEST(test_raw_only_payload)
{
    sl_buf_t b = { 0 };
    char err[256];
    ck_assert_int_eq(sl_pubjson_event_raw(&b, s_event, NULL, err, sizeof err), 0);
    ck_assert_uint_eq(b.n, 0);
    ck_assert_int_eq(sl_pubjson_event_raw(&b, "{\"event_type\":\"a\",\"raw\":{\"payload\":{}}}",
                                          NULL, err, sizeof err), 0);
    ck_assert_int_eq(sl_pubjson_event_raw(&b, "{\"event_type\":\"a\",\"raw\":{\"event_type\":"
                                          "\"a\",\"payload\":{\"x\":[1,2.5]}}}", NULL, err,
                                          sizeof err), 1);
    ck_assert_str_eq(b.p, "{\"x\": [1, 2.5]}");
    ck_assert_int_eq(sl_pubjson_event_raw(&b, "nope", NULL, err, sizeof err), -1);
    sl_buf_free(&b);
}
END_TEST

/* [event] store_raw: the event of an info notification carries the
 * notification as Ceilometer's endpoint got it; a warn-free default
 * (no levels) leaves raw out entirely; raw_only then finds its payload. */
START_TEST(test_store_raw)
{
    static const char yaml[] = "- event_type: compute.*\n  traits:\n    host:\n"
                               "      fields: payload.host\n";
    static const char note[] =
        "{\"message_id\": \"m-1\", \"publisher_id\": \"compute.h1\", \"event_type\": "
        "\"compute.instance.update\", \"priority\": \"INFO\", \"timestamp\": "
        "\"2026-01-02 03:04:05.123456\", \"payload\": {\"host\": \"h1\", \"n\": 2}, "
        "\"_context_user\": \"u\"}";
    char err[512];
    sl_events_t *e = sl_events_parse(yaml, strlen(yaml), "ev.yaml", NULL, err, sizeof err);
    ck_assert_msg(e != NULL, "%s", err);
    sl_notification_t n;
    memset(&n, 0, sizeof n);
    ck_assert_int_eq(sl_envelope_decode(note, strlen(note), 0, &n, err, sizeof err), SL_ENV_OK);
    sl_arena_t a;
    sl_arena_init(&a, 0);
    sl_event_t ev;
    ck_assert_int_eq(sl_events_convert(e, &n, &a, &ev, NULL), 1);
    const char *plain = sl_event_json(&a, &ev);
    ck_assert_ptr_null(strstr(plain, "\"raw\""));
    sl_events_set_store_raw(e, 1u << SL_PRIO_ERROR);
    ck_assert_int_eq(sl_events_convert(e, &n, &a, &ev, NULL), 1);
    ck_assert_ptr_null(ev.raw);
    sl_events_set_store_raw(e, 1u << SL_PRIO_INFO);
    ck_assert_int_eq(sl_events_convert(e, &n, &a, &ev, NULL), 1);
    ck_assert_ptr_nonnull(ev.raw);
    const char *withraw = sl_event_json(&a, &ev);
    ck_assert_msg(strstr(withraw, "\"message_id\":\"m-1\",\"raw\":{\"ctxt\":{\"user\":\"u\"") &&
                  strstr(withraw, "\"payload\":{\"host\":\"h1\",\"n\":2},\"metadata\":"
                                  "{\"message_id\":\"m-1\",\"timestamp\":"), "%s", withraw);
    sl_buf_t b = { 0 };
    ck_assert_int_eq(sl_pubjson_event_raw(&b, withraw, NULL, err, sizeof err), 1);
    ck_assert_str_eq(b.p, "{\"host\": \"h1\", \"n\": 2}");
    sl_buf_reset(&b);
    ck_assert_int_eq(sl_pubjson_event(&b, withraw, NULL, err, sizeof err), 0);
    ck_assert_msg(strstr(b.p, "\"raw\": {\"ctxt\": {\"user\": \"u\"") != NULL, "%s", b.p);
    sl_buf_free(&b);
    sl_arena_destroy(&a);
    sl_notification_clear(&n);
    sl_events_destroy(&e);
}
END_TEST

/* ---- a server on a thread ------------------------------------------------ */

/* Answers each request with the next status of `statuses` (0 = close the
 * connection without an answer), until they run out; keeps every request
 * (headers and body) in got. Connections one after the other. */
typedef struct {
    int    lfd, port;
    long   statuses[8];
    int    n_statuses;
    char   got[1 << 18];
    size_t got_n;
    int    requests;
} s_srv_t;

static void
s_srv_listen(s_srv_t *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s->lfd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *) &a, sizeof a), 0);
    ck_assert_int_eq(listen(s->lfd, 4), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *) &a, &al);
    s->port = ntohs(a.sin_port);
}

static size_t
s_request_end(s_srv_t *s, int fd, size_t from)
{
    for (;;) {
        char *h = strstr(s->got + from, "\r\n\r\n");
        if (h) {
            char *cl = strcasestr(s->got + from, "Content-Length:");
            size_t clen = cl && cl < h ? strtoul(cl + 15, NULL, 10) : 0;
            size_t end = (size_t) (h + 4 - s->got) + clen;
            if (s->got_n >= end)
                return end;
        }
        ssize_t r = read(fd, s->got + s->got_n, sizeof s->got - 1 - s->got_n);
        if (r <= 0)
            return 0;
        s->got_n += (size_t) r;
        s->got[s->got_n] = '\0';
    }
}

static void *
s_srv_run(void *arg)
{
    s_srv_t *s = arg;
    size_t at = 0;
    while (s->requests < s->n_statuses) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        while (s->requests < s->n_statuses) {
            size_t end = s_request_end(s, fd, at);
            if (!end)
                break;
            at = end;
            long st = s->statuses[s->requests++];
            if (!st)
                break;
            char reply[256];
            const char *body = st < 300 ? "{\"resources\": []}" : "{\"title\": \"nope\"}";
            snprintf(reply, sizeof reply, "HTTP/1.1 %ld X\r\nContent-Length: %zu\r\n\r\n%s", st,
                     strlen(body), body);
            if (write(fd, reply, strlen(reply)) < 0)
                break;
        }
        close(fd);
    }
    return NULL;
}

typedef struct {
    sl_pub_url_t u;
    void        *ctx;
} s_pub_t;

static void
s_pub_open(s_pub_t *p, const char *url)
{
    char err[512];
    ck_assert_msg(sl_pub_url_parse(&p->u, url, err, sizeof err) == 0, "%s", err);
    p->ctx = sl_pub_url_init(&p->u, 0, err, sizeof err);
    ck_assert_msg(p->ctx != NULL, "%s", err);
}

static void
s_pub_close(s_pub_t *p)
{
    p->u.plugin->destroy(&p->ctx);
    sl_pub_url_free(&p->u);
}

static sl_pub_status_t
s_publish_samples(s_pub_t *p, const sl_sample_t *s, size_t n, char *err, size_t errlen)
{
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = n, .samples = s };
    return p->u.plugin->publish(p->ctx, &b, err, errlen);
}

/* The body of the k-th request in got. */
static const char *
s_body(const s_srv_t *s, int k)
{
    const char *p = s->got;
    for (int i = 0; p && i <= k; i++) {
        p = strstr(p, "\r\n\r\n");
        if (p)
            p += 4;
        if (i < k && p)
            p = strstr(p, "POST ");
    }
    return p;
}

START_TEST(test_http_request)
{
    s_srv_t *s = calloc(1, sizeof *s);
    s->statuses[0] = 200;
    s->n_statuses = 1;
    s_srv_listen(s);
    pthread_t t;
    pthread_create(&t, NULL, s_srv_run, s);
    char url[512], err[512];
    snprintf(url, sizeof url, "http://admin:s%%40cret@127.0.0.1:%d/in/samples?timeout=2&q=a+b&"
             "verify_ssl=False&header=X-Api-Key:%%20k1&policy=drop&x=1&q=c&header=X-Two:2",
             s->port);
    s_pub_t p;
    s_pub_open(&p, url);
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 2, err, sizeof err), SL_PUB_OK);
    pthread_join(t, NULL);
    ck_assert_msg(strncmp(s->got, "POST /in/samples?q=a+b&q=c&x=1 HTTP/1.1\r\n", 41) == 0,
                  "request line: %.80s", s->got);
    ck_assert_ptr_nonnull(strstr(s->got, "\r\nContent-type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(s->got, "\r\nAccept: */*\r\n"));
    ck_assert_ptr_nonnull(strstr(s->got, "\r\nX-Api-Key: k1\r\n"));
    ck_assert_ptr_nonnull(strstr(s->got, "\r\nX-Two: 2\r\n"));
    /* base64("admin:s@cret") */
    ck_assert_ptr_nonnull(strstr(s->got, "\r\nAuthorization: Basic YWRtaW46c0BjcmV0\r\n"));
    /* the body: the list of as_dict()s, as json.dumps writes it */
    const char *body = s_body(s, 0);
    const char *m0 = strstr(s_zaqar_samples, "{\"name\": \"cpu\"");
    const char *m0e = strstr(m0, ", \"ttl\"");
    const char *m1 = strstr(s_zaqar_samples, "{\"name\": \"memory.usage\"");
    const char *m1e = strstr(m1, ", \"ttl\"");
    char want[4096];
    snprintf(want, sizeof want, "[%.*s, %.*s]", (int) (m0e - m0), m0, (int) (m1e - m1), m1);
    ck_assert_str_eq(body, want);
    s_pub_close(&p);
    close(s->lfd);
    free(s);
}
END_TEST

START_TEST(test_http_individual_and_statuses)
{
    s_srv_t *s = calloc(1, sizeof *s);
    long st[] = { 200, 200, 503, 400, 429, 0 };
    memcpy(s->statuses, st, sizeof st);
    s->n_statuses = 6;
    s_srv_listen(s);
    pthread_t t;
    pthread_create(&t, NULL, s_srv_run, s);
    char url[256], err[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/?batch=false&timeout=2", s->port);
    s_pub_t p;
    s_pub_open(&p, url);
    /* batch=false: one POST per record, each the record itself */
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 2, err, sizeof err), SL_PUB_OK);
    ck_assert_int_eq(strncmp(s_body(s, 0), "{\"name\": \"cpu\"", 14), 0);
    ck_assert_int_eq(strncmp(s_body(s, 1), "{\"name\": \"memory.usage\"", 23), 0);
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 1, err, sizeof err), SL_PUB_RETRY);
    ck_assert_msg(strstr(err, "HTTP 503") != NULL, "%s", err);
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 1, err, sizeof err), SL_PUB_ERROR);
    ck_assert_msg(strstr(err, "HTTP 400") != NULL, "%s", err);
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 1, err, sizeof err), SL_PUB_RETRY);
    /* the connection closed without an answer */
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 1, err, sizeof err), SL_PUB_RETRY);
    pthread_join(t, NULL);
    /* refused (nobody listens any more) */
    close(s->lfd);
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 1, err, sizeof err), SL_PUB_RETRY);
    /* an empty batch posts nothing */
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 0, err, sizeof err), SL_PUB_OK);
    s_pub_close(&p);
    free(s);
}
END_TEST

START_TEST(test_zaqar_request)
{
    s_srv_t *s = calloc(1, sizeof *s);
    long st[] = { 201, 201, 201, 201, 201, 201 };
    memcpy(s->statuses, st, sizeof st);
    s->n_statuses = 2;
    s_srv_listen(s);
    pthread_t t;
    pthread_create(&t, NULL, s_srv_run, s);
    char url[256], err[512];
    char tok[] = "/tmp/sluice-zaqar-token.XXXXXX";
    int tfd = mkstemp(tok);
    ck_assert_int_ge(tfd, 0);
    ck_assert_int_eq(write(tfd, "gAAAAtoken\n", 11), 11);
    close(tfd);
    snprintf(url, sizeof url, "zaqar://?queue=ceilo_q&ttl=1200&project_id=p-1&"
             "endpoint=http://127.0.0.1:%d/&auth_token_file=%s", s->port, tok);
    s_pub_t p;
    s_pub_open(&p, url);
    ck_assert_int_eq(s_publish_samples(&p, s_samples, 2, err, sizeof err), SL_PUB_OK);
    sl_pub_batch_t eb = { .kind = SL_PUB_EVENTS, .n = 1,
                          .events = (const char *const[]) { s_event } };
    ck_assert_int_eq(p.u.plugin->publish(p.ctx, &eb, err, sizeof err), SL_PUB_OK);
    pthread_join(t, NULL);
    ck_assert_int_eq(strncmp(s->got, "POST /v2/queues/ceilo_q/messages HTTP/1.1\r\n", 43), 0);
    const char *cid = strstr(s->got, "\r\nClient-ID: ");
    ck_assert_ptr_nonnull(cid);
    ck_assert_uint_eq(strspn(cid + 13, "0123456789abcdef"), 32);
    ck_assert_int_eq(cid[45], '\r');
    ck_assert_ptr_nonnull(strstr(s->got, "\r\ncontent-type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(s->got, "\r\nX-Project-Id: p-1\r\n"));
    ck_assert_ptr_nonnull(strstr(s->got, "\r\nX-Auth-Token: gAAAAtoken\r\n"));
    unlink(tok);
    const char *b0 = s_body(s, 0), *b1 = s_body(s, 1);
    ck_assert_int_eq(strncmp(b0, s_zaqar_samples, strlen(s_zaqar_samples)), 0);
    ck_assert_str_eq(b1, s_zaqar_event);
    s_pub_close(&p);
    close(s->lfd);
    free(s);
}
END_TEST

START_TEST(test_zaqar_split)
{
    s_srv_t *s = calloc(1, sizeof *s);
    for (int i = 0; i < 8; i++)
        s->statuses[i] = 201;
    s->n_statuses = 8;
    s_srv_listen(s);
    pthread_t t;
    pthread_create(&t, NULL, s_srv_run, s);
    char url[256], err[512];
    /* each message is ~560 bytes: 1200 bytes hold two */
    snprintf(url, sizeof url, "zaqar://127.0.0.1:%d/?queue=q&max_body_bytes=1200", s->port);
    s_pub_t p;
    s_pub_open(&p, url);
    sl_sample_t five[5];
    for (int i = 0; i < 5; i++)
        five[i] = s_samples[i % 2];
    ck_assert_int_eq(s_publish_samples(&p, five, 5, err, sizeof err), SL_PUB_OK);
    /* a message bigger than the limit: the others go, the batch is an ERROR */
    sl_sample_t big = s_samples[0];
    char meta[1500];
    memset(meta, 'x', sizeof meta);
    memcpy(meta, "{\"a\": \"", 7);
    strcpy(meta + sizeof meta - 3, "\"}");
    big.resource_metadata = meta;
    sl_sample_t mixed[2] = { big, s_samples[1] };
    ck_assert_int_eq(s_publish_samples(&p, mixed, 2, err, sizeof err), SL_PUB_ERROR);
    ck_assert_msg(strstr(err, "larger than max_body_bytes") != NULL, "%s", err);
    s->n_statuses = s->requests;   /* let the server end */
    s_pub_close(&p);               /* closes the connection */
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(t, NULL);
    ck_assert_int_eq(s->requests, 4);   /* 2 + 2 + 1, then the small one of the mixed batch */
    for (int k = 0; k < 4; k++) {
        const char *b = s_body(s, k);
        const char *e = strstr(b, "]}");
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_le((size_t) (e + 2 - b), 1200);
        ck_assert_int_eq(strncmp(b, "{\"messages\": [{\"body\": ", 23), 0);
    }
    close(s->lfd);
    free(s);
}
END_TEST

START_TEST(test_url_validation)
{
    char err[512];
    static const struct {
        const char *url, *want;
    } bad[] = {
        { "http:///path", "hostname" },
        { "http://h:8x/", "port" },
        { "http://h/?timeout=abc", "timeout" },
        { "http://h/?verify_ssl=maybe", "verify_ssl" },
        { "http://h/?header=NoColon", "header" },
        { "http://h/?clientkey=/etc/hostname", "clientcert" },
        { "zaqar://h:1/?ttl=60", "queue" },
        { "zaqar://h:1/?queue=q&ttl=59", "ttl" },
        { "zaqar://h:1/?queue=q&ttl=1209601", "ttl" },
        { "zaqar://h:1/?queue=bad/name", "queue" },
        { "zaqar://?queue=q", "endpoint" },
        { "zaqar://h:1/?queue=q&client_id=zz", "client_id" },
        { "zaqar://h:1/?queue=q&foo=1", "unknown option 'foo'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        ck_assert_msg(sl_publisher_check(bad[i].url, err, sizeof err) == -1,
                      "%s was accepted", bad[i].url);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "%s: expected a message about %s, got: "
                      "%s", bad[i].url, bad[i].want, err);
    }
    static const char *const good[] = {
        "http://h/", "https://u:p@h:443/x?verify_ssl=false&anything=kept",
        "http://[::1]:8080/p?batch=False&raw_only=true&max_retries=3",
        "zaqar://127.0.0.1:8888/?queue=a_b-1&ttl=60&project_id=x",
        "zaqar://?queue=q&ttl=1209600&endpoint=https://z.example:8888&verify_ssl=false",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(sl_publisher_check(good[i], err, sizeof err) == 0, "%s: %s", good[i], err);
    /* the password is never in a message */
    ck_assert_int_eq(sl_publisher_check("http://u:hunter2@h:99999/", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "hunter2") == NULL, "%s", err);
    ck_assert_int_eq(sl_publisher_check_events("zaqar://h:1/?queue=q", err, sizeof err), 0);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("publisher_http");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_recording_is_the_reference);
    tcase_add_test(tc, test_sample_as_dict_bytes);
    tcase_add_test(tc, test_event_serialize_bytes);
    tcase_add_test(tc, test_raw_only_payload);
    tcase_add_test(tc, test_store_raw);
    tcase_add_test(tc, test_http_request);
    tcase_add_test(tc, test_http_individual_and_statuses);
    tcase_add_test(tc, test_zaqar_request);
    tcase_add_test(tc, test_zaqar_split);
    tcase_add_test(tc, test_url_validation);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
