/* httpc — the blocking HTTP client of the HTTP-speaking publishers
 * (gnocchi, http, zaqar, prometheus, opentelemetryhttp), on libcurl.
 *
 * One client per publisher instance, used only from that instance's
 * publish thread (SL_PUB_F_THREAD): a libcurl easy handle that keeps its
 * connection alive between requests. Request bodies are sent with a
 * Content-Length (never chunked: uwsgi and Zaqar's wsgiref refuse chunked
 * bodies). libcurl adds no "Expect: 100-continue" and no Accept header of
 * its own; the caller passes every header that matters.
 *
 * A request either gets a response (any status: 0 is returned, the status
 * and body are the caller's to judge, sl_httpc_classify() says what the
 * output layer should do) or fails in transport (refused, reset, DNS,
 * TLS, timeout: -1 with the reason, which is always worth a retry).
 * Error texts never contain the password of a URL or of basic auth. */
#ifndef SL_PUBLISHERS_HTTPC_H
#define SL_PUBLISHERS_HTTPC_H

#include <stddef.h>
#include "common/opt.h"
#include "worker/publishers/publisher.h"

typedef struct sl_httpc sl_httpc_t;

typedef struct {
    unsigned    timeout_ms;          /* whole request; 0 = no limit */
    unsigned    connect_timeout_ms;  /* 0 = min(timeout_ms, 10 s) */
    int         verify_ssl;          /* verify the peer certificate and host name */
    const char *ca_file;             /* PEM bundle; NULL = the system's */
    const char *client_cert;         /* PEM; NULL = none */
    const char *client_key;          /* PEM; NULL = in client_cert */
    const char *user, *password;     /* HTTP basic auth; NULL user = none */
    const char *user_agent;          /* NULL = "sluice/<version>" */
} sl_httpc_opts_t;

/* A client with these settings (strings are copied). NULL with err. */
sl_httpc_t *sl_httpc_new(const sl_httpc_opts_t *o, char *err, size_t errlen);
void sl_httpc_free(sl_httpc_t **h_p);

/* One request: method ("GET", "POST", "PUT", "PATCH", "DELETE"), the full
 * URL, headers (NULL-terminated list of "Name: value", or NULL), a body of
 * body_len bytes (NULL = none; sent with Content-Length even when 0 for
 * POST/PUT/PATCH). 0 with *status set when a response arrived (the body is
 * then in sl_httpc_body until the next request), or -1 with the transport
 * error in err ("connection refused by 127.0.0.1:8041", "timed out after
 * 5000 ms", ...). */
int sl_httpc_request(sl_httpc_t *h, const char *method, const char *url,
                     const char *const *headers, const char *body, size_t body_len,
                     long *status, char *err, size_t errlen);
/* The last response's body (NUL-terminated; *len without the NUL; "" if none). */
const char *sl_httpc_body(const sl_httpc_t *h, size_t *len);
/* The value of the last response's header name (case-insensitive; the
 * last one if repeated; leading and trailing blanks removed), or NULL.
 * Valid until the next request. Keystone v3 returns its token only in
 * X-Subject-Token. */
const char *sl_httpc_header(const sl_httpc_t *h, const char *name);
/* What the output layer should do with a status: 2xx OK; 408, 425, 429
 * and 5xx RETRY; anything else (4xx: the request itself is wrong) ERROR. */
sl_pub_status_t sl_httpc_classify(long status);
/* One request as a publisher sees it: a transport error is RETRY, a
 * status is judged by sl_httpc_classify with sl_httpc_status_error's
 * message; for publishers that need no more than that of the answer. */
sl_pub_status_t sl_httpc_send(sl_httpc_t *h, const char *method, const char *url,
                              const char *const *headers, const char *body, size_t body_len,
                              char *err, size_t errlen);
/* err = "<method> <url without password>: HTTP <status>: <first 200 bytes
 * of the body, one line>"; returns sl_httpc_classify(status). */
sl_pub_status_t sl_httpc_status_error(const sl_httpc_t *h, const char *method, const char *url,
                                      long status, char *err, size_t errlen);

#endif
