/* Unit tests of the HTTP client of the publishers (worker/publishers/httpc.h)
 * against a one-connection HTTP server on a thread of this test, on
 * 127.0.0.1: the exact request bytes (Content-Length, no Expect, no Accept
 * of libcurl's own, basic auth), status and body, keep-alive, transport
 * errors (refused, timeout) and the status classification. */
#include <check.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/publishers/httpc.h"

/* The server: accepts one connection, answers `n_answers` requests on it
 * with `reply` each (or stays silent if reply is NULL), keeps what it
 * read. */
typedef struct {
    int         lfd;
    int         port;
    const char *reply;
    int         n_answers;
    char        got[8192];
    size_t      got_n;
    int         connections;
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

/* Reads until a full request (headers + Content-Length bytes) is in got
 * past `from`; returns the end offset, or 0 on EOF. */
static size_t
s_read_request(s_srv_t *s, int fd, size_t from)
{
    for (;;) {
        char *hdr_end = strstr(s->got + from, "\r\n\r\n");
        if (hdr_end) {
            size_t clen = 0;
            char *cl = strcasestr(s->got + from, "Content-Length:");
            if (cl && cl < hdr_end)
                clen = strtoul(cl + 15, NULL, 10);
            size_t end = (size_t) (hdr_end + 4 - s->got) + clen;
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
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    s->connections++;
    size_t at = 0;
    for (int i = 0; i < s->n_answers; i++) {
        size_t end = s_read_request(s, fd, at);
        if (!end)
            break;
        at = end;
        if (!s->reply) {
            sleep(2);   /* a server that never answers in time */
            break;
        }
        if (write(fd, s->reply, strlen(s->reply)) < 0)
            break;
    }
    close(fd);
    return NULL;
}

static sl_httpc_t *
s_client(unsigned timeout_ms, const char *user)
{
    sl_httpc_opts_t o = { .timeout_ms = timeout_ms, .verify_ssl = 1, .user = user,
                          .password = user ? "s3cret" : NULL };
    char err[256];
    sl_httpc_t *h = sl_httpc_new(&o, err, sizeof err);
    ck_assert_msg(h != NULL, "%s", err);
    return h;
}

START_TEST(test_post_request_bytes)
{
    s_srv_t s = { .reply = "HTTP/1.1 201 Created\r\nX-Subject-Token:  gAAAAB-tok \r\n"
                           "Content-Length: 7\r\n\r\ncreated",
                  .n_answers = 2 };
    s_srv_listen(&s);
    pthread_t t;
    pthread_create(&t, NULL, s_srv_run, &s);
    sl_httpc_t *h = s_client(5000, "admin");
    char url[128], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/thing?x=1", s.port);
    const char *hdrs[] = { "Content-Type: application/json", "X-Custom: yes", NULL };
    long status = 0;
    ck_assert_int_eq(sl_httpc_request(h, "POST", url, hdrs, "{\"a\":1}", 7, &status, err,
                                      sizeof err), 0);
    ck_assert_int_eq(status, 201);
    size_t n;
    ck_assert_str_eq(sl_httpc_body(h, &n), "created");
    ck_assert_uint_eq(n, 7);
    ck_assert_str_eq(sl_httpc_header(h, "x-subject-token"), "gAAAAB-tok");
    ck_assert_str_eq(sl_httpc_header(h, "Content-Length"), "7");
    ck_assert_ptr_null(sl_httpc_header(h, "X-Subject"));
    /* A PATCH on the same connection (keep-alive). */
    ck_assert_int_eq(sl_httpc_request(h, "PATCH", url, hdrs, "{}", 2, &status, err,
                                      sizeof err), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(s.connections, 1);
    ck_assert_ptr_nonnull(strstr(s.got, "POST /v1/thing?x=1 HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(s.got, "PATCH /v1/thing?x=1 HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(s.got, "\r\nContent-Length: 7\r\n"));
    ck_assert_ptr_nonnull(strstr(s.got, "\r\nContent-Length: 2\r\n"));
    ck_assert_ptr_nonnull(strstr(s.got, "\r\nX-Custom: yes\r\n"));
    /* base64("admin:s3cret") */
    ck_assert_ptr_nonnull(strstr(s.got, "\r\nAuthorization: Basic YWRtaW46czNjcmV0\r\n"));
    ck_assert_ptr_null(strcasestr(s.got, "Expect:"));
    ck_assert_ptr_null(strcasestr(s.got, "Accept:"));
    ck_assert_ptr_null(strcasestr(s.got, "Transfer-Encoding"));
    ck_assert_ptr_nonnull(strstr(s.got, "\r\nUser-Agent: sluice/"));
    ck_assert_ptr_nonnull(strstr(s.got, "\r\n\r\n{\"a\":1}"));
    sl_httpc_free(&h);
    ck_assert_ptr_null(h);
    close(s.lfd);
}
END_TEST

START_TEST(test_status_error_text)
{
    s_srv_t s = { .reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\n\r\nbusy\nnow ok?",
                  .n_answers = 1 };
    s_srv_listen(&s);
    pthread_t t;
    pthread_create(&t, NULL, s_srv_run, &s);
    sl_httpc_t *h = s_client(5000, NULL);
    char url[160], err[256];
    snprintf(url, sizeof url, "http://bob:pw@127.0.0.1:%d/p?token=abc", s.port);
    const char *accept[] = { "Accept: application/json", NULL };
    long status = 0;
    ck_assert_int_eq(sl_httpc_request(h, "GET", url, accept, NULL, 0, &status, err, sizeof err),
                     0);
    pthread_join(t, NULL);
    ck_assert_int_eq(status, 503);
    ck_assert_ptr_nonnull(strstr(s.got, "\r\nAccept: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(s.got, "GET /p?token=abc HTTP/1.1"));
    ck_assert_int_eq(sl_httpc_status_error(h, "GET", url, status, err, sizeof err), SL_PUB_RETRY);
    ck_assert_msg(strstr(err, "HTTP 503: busy now ok?") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "pw") == NULL && strstr(err, "token") == NULL, "%s", err);
    sl_httpc_free(&h);
    close(s.lfd);
}
END_TEST

START_TEST(test_transport_errors)
{
    /* Refused: a port that was just closed. */
    s_srv_t s = { 0 };
    s_srv_listen(&s);
    int port = s.port;
    close(s.lfd);
    sl_httpc_t *h = s_client(2000, NULL);
    char url[128], err[256];
    long status = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    ck_assert_int_eq(sl_httpc_request(h, "POST", url, NULL, "x", 1, &status, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "POST http://127.0.0.1:") != NULL, "%s", err);
    ck_assert_int_eq(sl_httpc_send(h, "POST", url, NULL, "x", 1, err, sizeof err), SL_PUB_RETRY);

    /* Timeout: the server reads the request and stays silent. */
    s_srv_t q = { .reply = NULL, .n_answers = 1 };
    s_srv_listen(&q);
    pthread_t t;
    pthread_create(&t, NULL, s_srv_run, &q);
    sl_httpc_t *h2 = s_client(300, NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", q.port);
    ck_assert_int_eq(sl_httpc_request(h2, "POST", url, NULL, "x", 1, &status, err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "imeout") != NULL || strstr(err, "timed out") != NULL, "%s", err);
    pthread_join(t, NULL);
    close(q.lfd);
    sl_httpc_free(&h);
    sl_httpc_free(&h2);
}
END_TEST

START_TEST(test_classify)
{
    ck_assert_int_eq(sl_httpc_classify(200), SL_PUB_OK);
    ck_assert_int_eq(sl_httpc_classify(202), SL_PUB_OK);
    ck_assert_int_eq(sl_httpc_classify(204), SL_PUB_OK);
    ck_assert_int_eq(sl_httpc_classify(408), SL_PUB_RETRY);
    ck_assert_int_eq(sl_httpc_classify(429), SL_PUB_RETRY);
    ck_assert_int_eq(sl_httpc_classify(500), SL_PUB_RETRY);
    ck_assert_int_eq(sl_httpc_classify(503), SL_PUB_RETRY);
    ck_assert_int_eq(sl_httpc_classify(400), SL_PUB_ERROR);
    ck_assert_int_eq(sl_httpc_classify(401), SL_PUB_ERROR);
    ck_assert_int_eq(sl_httpc_classify(404), SL_PUB_ERROR);
    ck_assert_int_eq(sl_httpc_classify(301), SL_PUB_ERROR);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("httpc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_post_request_bytes);
    tcase_add_test(tc, test_status_error_text);
    tcase_add_test(tc, test_transport_errors);
    tcase_add_test(tc, test_classify);
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
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
