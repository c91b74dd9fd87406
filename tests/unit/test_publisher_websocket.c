/* publisher_websocket: URL and option checks, stream selection, bearer
 * tokens, and the plugin serving real connections on a loopback port (a
 * minimal RFC 6455 client over a plain socket): 401 for a bad token,
 * per-profile filtering and per-client selection, a subscribe message,
 * and a client that stops reading cut off while another keeps getting
 * every record. */
#include <check.h>

#include "tests/sl_check.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/conf.h"
#include "common/forward.h"
#include "common/yconf.h"
#include "worker/publishers/publisher.h"
#include "worker/publishers/websocket.h"

/* ---- helpers -------------------------------------------------------------- */

static sl_forward_t *
s_profile(const char *yaml)
{
    char err[512] = "";
    sl_ydoc_t *doc = sl_ydoc_parse(yaml, strlen(yaml), "sluice.yaml", err, sizeof err);
    ck_assert_msg(doc && doc->root && doc->root->kind == SL_Y_MAP, "test YAML: %s", err);
    sl_forward_t *f = sl_forward_parse(doc->root->keys[0], doc->root->items[0], NULL, err,
                                       sizeof err);
    sl_ydoc_destroy(&doc);
    ck_assert_msg(f, "expected the profile to load, got: %s", err);
    return f;
}

/* A configuration holding only forward profiles: what the plugin reads. */
static sl_conf_t s_conf;
static sl_forward_t *s_prof[3];

static void
s_setup(void)
{
    s_prof[0] = s_profile("search: {tokens: [tok-search], meters: ['cpu', 'disk.*'], "
                          "drop_fields: [user_id, resource_metadata.secret]}");
    s_prof[1] = s_profile("ops: {tokens: [tok-ops]}");
    s_prof[2] = s_profile("notoken: {meters: [cpu]}");
    memset(&s_conf, 0, sizeof s_conf);
    s_conf.forwards = s_prof;
    s_conf.n_forwards = 3;
    sl_publisher_websocket_set_conf(&s_conf);
}

static void
s_teardown(void)
{
    sl_publisher_websocket_set_conf(NULL);
    for (int i = 0; i < 3; i++)
        sl_forward_destroy(&s_prof[i]);
}

static unsigned
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_int_eq(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *) &a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

typedef struct {
    sl_pub_url_t u;
    void *ctx;
} s_pub_t;

static void
s_pub_open(s_pub_t *p, const char *url)
{
    char err[512] = "";
    ck_assert_msg(sl_pub_url_parse(&p->u, url, err, sizeof err) == 0, "%s: %s", url, err);
    p->ctx = sl_pub_url_init(&p->u, 0, err, sizeof err);
    ck_assert_msg(p->ctx, "%s: %s", url, err);
    /* the service thread binds the port at once */
    for (int i = 0; i < 200; i++) {
        sl_ws_stats_t st;
        sl_publisher_websocket_stats(p->ctx, &st);
        if (st.hub)
            return;
        usleep(10000);
    }
    ck_abort_msg("%s: the instance did not become the hub within 2 s", url);
}

static void
s_pub_close(s_pub_t *p)
{
    p->u.plugin->destroy(&p->ctx);
    sl_pub_url_free(&p->u);
}

static sl_pub_status_t
s_publish_samples(s_pub_t *p, const char *const *names, size_t n, const char *meta)
{
    sl_sample_t *s = calloc(n, sizeof *s);
    for (size_t i = 0; i < n; i++)
        s[i] = (sl_sample_t) { .id = "00000000-0000-4000-8000-000000000001", .name = names[i],
                               .type = "gauge", .unit = "%", .volume_json = "1.5",
                               .volume = 1.5, .user_id = "u1", .project_id = "p1",
                               .resource_id = "r1",
                               .timestamp = "2026-12-03T10:00:00+00:00",
                               .resource_metadata = meta ? meta : "{}",
                               .source = "openstack", .message_id = "m1" };
    sl_pub_batch_t b = { .kind = SL_PUB_SAMPLES, .n = n, .samples = s };
    char err[256];
    sl_pub_status_t st = p->u.plugin->publish(p->ctx, &b, err, sizeof err);
    free(s);
    return st;
}

/* A client connection: the HTTP status of its handshake. */
typedef struct {
    int fd;
    int status;
    char buf[1 << 16];
    size_t n;
} s_cli_t;

static void
s_cli_open(s_cli_t *c, unsigned port, const char *target, const char *auth, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ck_assert_msg(connect(c->fd, (struct sockaddr *) &a, sizeof a) == 0, "connect: %s",
                  strerror(errno));
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n", target, port,
                     auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
    ck_assert_int_eq(write(c->fd, req, (size_t) n), n);
    /* the response head */
    char *end = NULL;
    while (!end) {
        struct pollfd pf = { .fd = c->fd, .events = POLLIN };
        ck_assert_msg(poll(&pf, 1, 5000) == 1, "no handshake answer for %s", target);
        ssize_t r = read(c->fd, c->buf + c->n, sizeof c->buf - 1 - c->n);
        ck_assert_msg(r > 0, "connection closed during the handshake for %s", target);
        c->n += (size_t) r;
        c->buf[c->n] = '\0';
        end = strstr(c->buf, "\r\n\r\n");
    }
    ck_assert_msg(sscanf(c->buf, "HTTP/1.1 %d", &c->status) == 1,
                  "%s: expected an HTTP status line, got: %s", target, c->buf);
    size_t head = (size_t) (end + 4 - c->buf);
    memmove(c->buf, c->buf + head, c->n - head);
    c->n -= head;
}

/* The next text frame (malloc'd, NUL-terminated), or NULL on close or
 * after timeout_ms; *opcode gets the frame's opcode. */
static char *
s_cli_frame(s_cli_t *c, int timeout_ms, int *opcode)
{
    for (;;) {
        if (c->n >= 2) {
            size_t len = c->buf[1] & 0x7f, hl = 2;
            if (len == 126 && c->n >= 4) {
                len = (size_t) ((unsigned char) c->buf[2] << 8 | (unsigned char) c->buf[3]);
                hl = 4;
            } else if (len == 127 && c->n >= 10) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = len << 8 | (unsigned char) c->buf[2 + i];
                hl = 10;
            } else if (len >= 126) {
                hl = 0;
            }
            ck_assert_msg(len < sizeof c->buf - 16, "frame too large for the test client");
            if (hl && c->n >= hl + len) {
                *opcode = c->buf[0] & 0x0f;
                char *f = strndup(c->buf + hl, len);
                memmove(c->buf, c->buf + hl + len, c->n - hl - len);
                c->n -= hl + len;
                return f;
            }
        }
        struct pollfd pf = { .fd = c->fd, .events = POLLIN };
        if (poll(&pf, 1, timeout_ms) != 1)
            return NULL;
        ssize_t r = read(c->fd, c->buf + c->n, sizeof c->buf - c->n);
        if (r <= 0)
            return NULL;
        c->n += (size_t) r;
    }
}

static char *
s_cli_text(s_cli_t *c, int timeout_ms)
{
    int op = 0;
    char *f = s_cli_frame(c, timeout_ms, &op);
    if (f && op != 1) {
        free(f);
        return NULL;
    }
    return f;
}

/* Sends a masked text frame (mask 0: the payload goes as is). */
static void
s_cli_send(s_cli_t *c, const char *text)
{
    size_t n = strlen(text);
    ck_assert(n < 126);
    unsigned char h[6] = { 0x81, (unsigned char) (0x80 | n), 0, 0, 0, 0 };
    ck_assert_int_eq(write(c->fd, h, 6), 6);
    ck_assert_int_eq(write(c->fd, text, n), (ssize_t) n);
}

/* ---- pure helpers --------------------------------------------------------- */

START_TEST(the_url_gives_host_port_and_path_with_loopback_by_default)
{
    char host[64], path[64], err[256];
    unsigned port = 0;
    ck_assert_int_eq(sl_ws_url_split("websocket://127.0.0.1:8787/stream?x=1", host, sizeof host,
                                     &port, path, sizeof path, err, sizeof err), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_uint_eq(port, 8787);
    ck_assert_str_eq(path, "/stream");
    ck_assert_int_eq(sl_ws_url_split("websocket://:9000", host, sizeof host, &port, path,
                                     sizeof path, err, sizeof err), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_str_eq(path, "/");
    ck_assert_int_eq(sl_ws_url_split("websocket://[::1]:9000/s", host, sizeof host, &port, path,
                                     sizeof path, err, sizeof err), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(sl_ws_url_split("websocket://127.0.0.1/s", host, sizeof host, &port, path,
                                     sizeof path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "needs a port"), "expected 'needs a port', got: %s", err);
    ck_assert_int_eq(sl_ws_url_split("websocket://127.0.0.1:70000/s", host, sizeof host, &port,
                                     path, sizeof path, err, sizeof err), -1);
    ck_assert_int_eq(sl_ws_url_split("websocket://u:p@127.0.0.1:1/s", host, sizeof host, &port,
                                     path, sizeof path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "tokens"), "expected a pointer to tokens, got: %s", err);
}
END_TEST

START_TEST(a_client_narrows_its_stream_with_globs_per_kind)
{
    sl_ws_select_t s = { 0 };
    char err[256];
    ck_assert(sl_ws_select_match(&s, 0, "cpu") && sl_ws_select_match(&s, 1, "compute.x"));
    ck_assert_int_eq(sl_ws_select_add(&s, 0, "cpu, disk.*", err, sizeof err), 0);
    ck_assert(sl_ws_select_match(&s, 0, "cpu"));
    ck_assert(sl_ws_select_match(&s, 0, "disk.root.size"));
    ck_assert(!sl_ws_select_match(&s, 0, "memory"));
    ck_assert_msg(!sl_ws_select_match(&s, 1, "compute.instance.create.end"),
                  "meters= alone must select no events");
    ck_assert_int_eq(sl_ws_select_add(&s, 1, "compute.*", err, sizeof err), 0);
    ck_assert(sl_ws_select_match(&s, 1, "compute.instance.create.end"));
    sl_buf_t b = { 0 };
    sl_ws_select_json(&s, &b);
    sl_buf_putc(&b, '\0');
    ck_assert_str_eq(b.p, "{\"meters\":[\"cpu\",\"disk.*\"],\"event_types\":[\"compute.*\"]}");
    sl_buf_free(&b);
    ck_assert_int_eq(sl_ws_select_add(&s, 0, "a,[x", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unterminated"), "got: %s", err);
    ck_assert_uint_eq(s.n_meters, 2);   /* a refused list adds nothing */
    ck_assert_int_eq(sl_ws_select_add(&s, 0, "a,,b", err, sizeof err), -1);

    const char *m = "{\"meters\": [\"memory*\"], \"event_types\": []}";
    ck_assert_int_eq(sl_ws_select_parse(&s, m, strlen(m), err, sizeof err), 0);
    ck_assert(sl_ws_select_match(&s, 0, "memory.usage") && !sl_ws_select_match(&s, 0, "cpu"));
    ck_assert_msg(!sl_ws_select_match(&s, 1, "compute.x"), "an empty list selects nothing");
    m = "{\"event_types\": \"image.*,volume.*\"}";
    ck_assert_int_eq(sl_ws_select_parse(&s, m, strlen(m), err, sizeof err), 0);
    ck_assert(sl_ws_select_match(&s, 1, "volume.create.end") && !sl_ws_select_match(&s, 0, "x"));
    m = "{\"metres\": []}";
    ck_assert_int_eq(sl_ws_select_parse(&s, m, strlen(m), err, sizeof err), -1);
    ck_assert_msg(strstr(err, "unknown key \"metres\""), "got: %s", err);
    ck_assert(sl_ws_select_match(&s, 1, "volume.create.end"));   /* unchanged */
    ck_assert_int_eq(sl_ws_select_parse(&s, "[1]", 3, err, sizeof err), -1);
    sl_ws_select_free(&s);
}
END_TEST

START_TEST(bearer_tokens_are_read_from_the_authorization_header)
{
    char t[64];
    ck_assert_str_eq(sl_ws_bearer("Bearer abc", t, sizeof t), "abc");
    ck_assert_str_eq(sl_ws_bearer("  bearer   abc  ", t, sizeof t), "abc");
    ck_assert_ptr_null(sl_ws_bearer("Basic abc", t, sizeof t));
    ck_assert_ptr_null(sl_ws_bearer("Bearer", t, sizeof t));
    ck_assert_ptr_null(sl_ws_bearer("Bearerabc", t, sizeof t));
    char ep[256];
    sl_ws_hub_endpoint("127.0.0.1", 8787, ep, sizeof ep);
    ck_assert_msg(strncmp(ep, "ipc://@sluice-websocket-", 24) == 0 && strstr(ep, "127.0.0.1-8787"),
                  "got %s", ep);
}
END_TEST

START_TEST(urls_that_nobody_could_use_are_refused_with_a_reason)
{
    char err[512];
    ck_assert_int_eq(sl_publisher_check("websocket://127.0.0.1:1/s", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "profiles=") && strstr(err, "anonymous=true"), "got: %s", err);
    ck_assert_int_eq(sl_publisher_check("websocket://127.0.0.1:1/s?profiles=nope", err,
                                        sizeof err), -1);
    ck_assert_msg(strstr(err, "no forward profile 'nope'"), "got: %s", err);
    ck_assert_int_eq(sl_publisher_check("websocket://127.0.0.1:1/s?profiles=notoken", err,
                                        sizeof err), -1);
    ck_assert_msg(strstr(err, "has no tokens"), "got: %s", err);
    ck_assert_int_eq(sl_publisher_check("websocket://127.0.0.1:1/s?profiles=search,ops", err,
                                        sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check_events("websocket://127.0.0.1:1/s?anonymous=true", err,
                                               sizeof err), 0);
    ck_assert_int_eq(sl_publisher_check("websocket://127.0.0.1:1/s?anonymous=true&"
                                        "max_client_queue=0", err, sizeof err), -1);
    sl_publisher_websocket_set_conf(NULL);
    ck_assert_int_eq(sl_publisher_check("websocket://127.0.0.1:1/s?profiles=search", err,
                                        sizeof err), -1);
    ck_assert_msg(strstr(err, "no forward profiles are loaded"), "got: %s", err);
}
END_TEST

/* ---- live ----------------------------------------------------------------- */

START_TEST(tokens_choose_the_profile_and_a_bad_one_is_401)
{
    unsigned port = s_free_port();
    char url[256];
    snprintf(url, sizeof url, "websocket://127.0.0.1:%u/stream?profiles=search,ops", port);
    s_pub_t p;
    s_pub_open(&p, url);
    s_cli_t bad, none, path, search, ops, narrow;
    s_cli_open(&bad, port, "/stream", "Bearer wrong", 0);
    ck_assert_msg(bad.status == 401, "a wrong token: expected 401, got %d", bad.status);
    s_cli_open(&none, port, "/stream", NULL, 0);
    ck_assert_msg(none.status == 401, "no token: expected 401, got %d", none.status);
    s_cli_open(&path, port, "/other?token=tok-ops", NULL, 0);
    ck_assert_msg(path.status == 404, "another path: expected 404, got %d", path.status);
    s_cli_open(&search, port, "/stream", "Bearer tok-search", 0);
    ck_assert_int_eq(search.status, 101);
    s_cli_open(&ops, port, "/stream?token=tok-ops", NULL, 0);
    ck_assert_int_eq(ops.status, 101);
    s_cli_open(&narrow, port, "/stream?token=tok-ops&meters=memory*", NULL, 0);
    ck_assert_int_eq(narrow.status, 101);
    char *f = s_cli_text(&search, 5000);
    ck_assert_msg(f && strstr(f, "\"subscribed\"") && strstr(f, "\"profile\":\"search\""),
                  "expected the subscribed frame of profile search, got %s", f);
    free(f);
    f = s_cli_text(&ops, 5000);
    ck_assert_msg(f && strstr(f, "\"profile\":\"ops\""), "got %s", f);
    free(f);
    f = s_cli_text(&narrow, 5000);
    ck_assert_msg(f && strstr(f, "\"meters\":[\"memory*\"]"), "got %s", f);
    free(f);

    const char *names[] = { "cpu", "memory.usage", "disk.root.size" };
    ck_assert_int_eq(s_publish_samples(&p, names, 3, "{\"secret\": 1, \"flavor\": \"m1\"}"),
                     SL_PUB_OK);
    /* search: cpu and disk.* (its profile's meters), without user_id and
     * resource_metadata.secret */
    for (int i = 0; i < 2; i++) {
        f = s_cli_text(&search, 5000);
        ck_assert_msg(f, "profile search: record %d missing", i);
        ck_assert_msg(strstr(f, i ? "\"disk.root.size\"" : "\"cpu\""), "got %s", f);
        ck_assert_msg(!strstr(f, "user_id") && !strstr(f, "secret") && strstr(f, "flavor"),
                      "profile search must drop user_id and resource_metadata.secret: %s", f);
        free(f);
    }
    /* ops: everything, unfiltered */
    for (int i = 0; i < 3; i++) {
        f = s_cli_text(&ops, 5000);
        ck_assert_msg(f && strstr(f, names[i]) && strstr(f, "\"user_id\":\"u1\"") &&
                      strstr(f, "secret"), "profile ops, record %d: got %s", i, f);
        free(f);
    }
    f = s_cli_text(&narrow, 5000);
    ck_assert_msg(f && strstr(f, "memory.usage"), "meters=memory*: got %s", f);
    free(f);
    /* a subscribe message changes the stream */
    s_cli_send(&narrow, "{\"meters\": [\"cpu\"]}");
    f = s_cli_text(&narrow, 5000);
    ck_assert_msg(f && strstr(f, "\"meters\":[\"cpu\"]"), "expected the new selection, got %s", f);
    free(f);
    ck_assert_int_eq(s_publish_samples(&p, names, 3, NULL), SL_PUB_OK);
    f = s_cli_text(&narrow, 5000);
    ck_assert_msg(f && strstr(f, "\"name\":\"cpu\""), "after subscribing to cpu: got %s", f);
    free(f);
    f = s_cli_text(&narrow, 300);
    ck_assert_msg(!f, "only cpu was asked for, got %s", f);
    s_cli_send(&narrow, "{\"nope\": 1}");
    f = s_cli_text(&narrow, 5000);
    ck_assert_msg(f && strstr(f, "\"error\""), "a bad subscribe message gets an error: %s", f);
    free(f);

    sl_ws_stats_t st;
    sl_publisher_websocket_stats(p.ctx, &st);
    ck_assert_uint_eq(st.clients, 3);
    ck_assert_uint_eq(st.rejected, 3);
    close(bad.fd);
    close(none.fd);
    close(path.fd);
    close(search.fd);
    close(ops.fd);
    close(narrow.fd);
    s_pub_close(&p);
}
END_TEST

START_TEST(a_client_that_stops_reading_is_cut_off_and_the_others_get_everything)
{
    unsigned port = s_free_port();
    char url[256];
    snprintf(url, sizeof url, "websocket://127.0.0.1:%u/s?anonymous=true&max_client_queue=100",
             port);
    s_pub_t p;
    s_pub_open(&p, url);
    s_cli_t slow, fast;
    s_cli_open(&slow, port, "/s", NULL, 2048);
    s_cli_open(&fast, port, "/s", NULL, 0);
    ck_assert_int_eq(slow.status, 101);
    ck_assert_int_eq(fast.status, 101);
    free(s_cli_text(&fast, 5000));
    /* ~2 KiB records: the slow client's socket buffers fill after a few
     * MB, then its queue of 100; the fast one reads each batch of 20
     * before the next comes */
    char meta[2100];
    memset(meta, 'x', sizeof meta);
    memcpy(meta, "{\"pad\": \"", 9);
    memcpy(meta + sizeof meta - 3, "\"}", 3);
    const char *names[20];
    for (int i = 0; i < 20; i++)
        names[i] = "cpu";
    size_t got = 0, want = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sl_ws_stats_t st = { 0 };
    for (int round = 0; round < 2000; round++) {
        ck_assert_int_eq(s_publish_samples(&p, names, 20, meta), SL_PUB_OK);
        want += 20;
        char *f;
        while (got < want && (f = s_cli_text(&fast, 2000))) {
            got++;
            free(f);
        }
        sl_publisher_websocket_stats(p.ctx, &st);
        if (st.cut_off && round > 100)
            break;
    }
    char *f;
    while (got < want && (f = s_cli_text(&fast, 2000))) {
        got++;
        free(f);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(st.cut_off == 1, "expected the slow client cut off once, got %llu",
                  st.cut_off);
    ck_assert_msg(got == want, "the fast client must get every record: %zu of %zu", got, want);
    ck_assert_msg(st.dropped >= 101, "the slow client's queue (100 + 1) counts as dropped, got %llu",
                  st.dropped);
    /* the slow client's connection is closed within a few seconds */
    for (int i = 0; i < 50; i++) {
        sl_publisher_websocket_stats(p.ctx, &st);
        if (st.clients == 1)
            break;
        usleep(100000);
    }
    ck_assert_msg(st.clients == 1, "expected the slow client gone, %llu clients", st.clients);
    double s = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "publisher_websocket: %zu 2 KiB records to the fast client in %.2f s "
            "(%.0f/s) while the slow one was cut off\n", got, s, (double) got / s);
    close(slow.fd);
    close(fast.fd);
    s_pub_close(&p);
}
END_TEST

START_TEST(a_second_instance_pushes_to_the_hub_and_takes_over_when_it_goes)
{
    unsigned port = s_free_port();
    char url[256];
    snprintf(url, sizeof url, "websocket://127.0.0.1:%u/s?anonymous=true&takeover_ms=100",
             port);
    s_pub_t hub, other;
    s_pub_open(&hub, url);
    char err[256];
    ck_assert_int_eq(sl_pub_url_parse(&other.u, url, err, sizeof err), 0);
    other.ctx = sl_pub_url_init(&other.u, 0, err, sizeof err);
    ck_assert_ptr_nonnull(other.ctx);
    s_cli_t c;
    s_cli_open(&c, port, "/s?event_types=compute.*", NULL, 0);
    ck_assert_int_eq(c.status, 101);
    free(s_cli_text(&c, 5000));
    const char *ev[] = {
        "{\"event_type\": \"compute.instance.create.end\", \"generated\": \"2026-12-03T10:00:00\", "
        "\"message_id\": \"e1\", \"traits\": [[\"host\", 1, \"h1\"]]}",
        "{\"event_type\": \"image.update\", \"generated\": \"2026-12-03T10:00:00\", "
        "\"message_id\": \"e2\", \"traits\": []}",
    };
    sl_pub_batch_t b = { .kind = SL_PUB_EVENTS, .n = 2, .events = ev };
    ck_assert_int_eq(other.u.plugin->publish(other.ctx, &b, err, sizeof err), SL_PUB_OK);
    char *f = s_cli_text(&c, 5000);
    ck_assert_msg(f && strstr(f, "compute.instance.create.end") && strstr(f, "\"e1\""),
                  "an event pushed by the second instance must reach the hub's client: %s", f);
    free(f);
    sl_ws_stats_t st;
    sl_publisher_websocket_stats(other.ctx, &st);
    ck_assert_msg(!st.hub && st.forwarded == 2, "hub %d forwarded %llu", st.hub, st.forwarded);
    close(c.fd);
    s_pub_close(&hub);
    for (int i = 0; i < 100; i++) {
        sl_publisher_websocket_stats(other.ctx, &st);
        if (st.hub)
            break;
        usleep(20000);
    }
    ck_assert_msg(st.hub, "the second instance must take the port over within 2 s");
    s_cli_open(&c, port, "/s", NULL, 0);
    ck_assert_int_eq(c.status, 101);
    free(s_cli_text(&c, 5000));
    ck_assert_int_eq(other.u.plugin->publish(other.ctx, &b, err, sizeof err), SL_PUB_OK);
    f = s_cli_text(&c, 5000);
    ck_assert_msg(f && strstr(f, "\"e1\""), "after the takeover: %s", f);
    free(f);
    close(c.fd);
    s_pub_close(&other);
}
END_TEST


/* A reader thread: counts record frames until it has want of them. */
typedef struct {
    s_cli_t cli;
    size_t  want, got;
    struct timespec done;
    pthread_t th;
} s_reader_t;

static void *
s_reader_main(void *arg)
{
    s_reader_t *r = arg;
    char *f;
    while (r->got < r->want && (f = s_cli_text(&r->cli, 10000))) {
        r->got++;
        free(f);
    }
    clock_gettime(CLOCK_MONOTONIC, &r->done);
    return NULL;
}

/* Records/s from publish() to the last client, for 1 and 10 clients. */
START_TEST(every_client_of_ten_gets_every_record_measured)
{
    static const size_t n_rec = 20000, batch = 100;
    const char *meta = "{\"display_name\": \"vm-0001\", \"flavor\": {\"name\": \"m1.small\", "
                       "\"vcpus\": 1, \"ram\": 2048}, \"host\": \"compute-01\", \"image_ref\": "
                       "\"3c1e2f6a-0b4d-4e8f-9a7b-6c5d4e3f2a1b\", \"state\": \"active\"}";
    const char *names[100];
    for (size_t i = 0; i < batch; i++)
        names[i] = i % 2 ? "cpu" : "memory.usage";
    for (int n_cli = 1; n_cli <= 10; n_cli += 9) {
        unsigned port = s_free_port();
        char url[256];
        snprintf(url, sizeof url, "websocket://127.0.0.1:%u/s?anonymous=true&"
                 "max_client_queue=100000", port);
        s_pub_t p;
        s_pub_open(&p, url);
        s_reader_t *r = calloc((size_t) n_cli, sizeof *r);
        for (int i = 0; i < n_cli; i++) {
            s_cli_open(&r[i].cli, port, "/s", NULL, 0);
            ck_assert_int_eq(r[i].cli.status, 101);
            free(s_cli_text(&r[i].cli, 5000));
            r[i].want = n_rec;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < n_cli; i++)
            pthread_create(&r[i].th, NULL, s_reader_main, &r[i]);
        for (size_t k = 0; k < n_rec / batch; k++)
            ck_assert_int_eq(s_publish_samples(&p, names, batch, meta), SL_PUB_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double pub_s = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        double last = 0;
        for (int i = 0; i < n_cli; i++) {
            pthread_join(r[i].th, NULL);
            double d = (double) (r[i].done.tv_sec - t0.tv_sec) +
                       (double) (r[i].done.tv_nsec - t0.tv_nsec) / 1e9;
            last = d > last ? d : last;
            ck_assert_msg(r[i].got == n_rec, "client %d of %d: %zu of %zu records", i, n_cli,
                          r[i].got, n_rec);
            close(r[i].cli.fd);
        }
        sl_ws_stats_t st;
        sl_publisher_websocket_stats(p.ctx, &st);
        ck_assert_uint_eq(st.cut_off, 0);
        fprintf(stderr, "publisher_websocket: %zu records (%zu-sample batches) to %d client(s): "
                "publish() took %.3f s (%.0f records/s), the last client had them all after "
                "%.3f s: %.0f records/s per client, %.0f frames/s in all\n", n_rec, batch, n_cli,
                pub_s, (double) n_rec / pub_s, last, (double) n_rec / last,
                (double) n_rec * n_cli / last);
        free(r);
        s_pub_close(&p);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("publisher_websocket");
    TCase *tc = tcase_create("publisher_websocket");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, the_url_gives_host_port_and_path_with_loopback_by_default);
    tcase_add_test(tc, a_client_narrows_its_stream_with_globs_per_kind);
    tcase_add_test(tc, bearer_tokens_are_read_from_the_authorization_header);
    tcase_add_test(tc, urls_that_nobody_could_use_are_refused_with_a_reason);
    tcase_add_test(tc, tokens_choose_the_profile_and_a_bad_one_is_401);
    tcase_add_test(tc, a_client_that_stops_reading_is_cut_off_and_the_others_get_everything);
    tcase_add_test(tc, a_second_instance_pushes_to_the_hub_and_takes_over_when_it_goes);
    tcase_add_test(tc, every_client_of_ten_gets_every_record_measured);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
