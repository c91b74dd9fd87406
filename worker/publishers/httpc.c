/* httpc — the blocking libcurl client of the HTTP publishers
 * (worker/publishers/httpc.h). One easy handle per client, reused between
 * requests so that libcurl keeps the connection alive; the response body
 * goes to a growing buffer the client owns. curl_global_init runs once per
 * process (pthread_once) before the first handle is made. */
#include "worker/publishers/httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"

#define S_BODY_ERR_MAX 200     /* bytes of a response body quoted in an error */
#define S_CONNECT_MAX_MS 10000u
#ifndef SL_HTTPC_VERSION
#define SL_HTTPC_VERSION "0"
#endif

struct sl_httpc {
    CURL    *curl;
    sl_buf_t body;
    sl_buf_t headers;          /* the last response's headers: "Name:value\0"... */
    char     errbuf[CURL_ERROR_SIZE];
    char    *user_agent;
    char    *userpwd;          /* "user:password", or NULL */
    char    *ca_file, *cert, *key;
};

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static CURLcode       s_global_rc;

static void
s_global_init(void)
{
    s_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
s_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    sl_httpc_t *h = arg;
    size_t n = size * nmemb;
    sl_buf_put(&h->body, data, n);
    return n;
}

/* Keeps the header lines of the final response only (a status line
 * starts a new set: 100 Continue, redirects), each as "Name:value" without
 * the blanks around the value, NUL-terminated one after the other. */
static size_t
s_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    sl_httpc_t *h = arg;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        sl_buf_reset(&h->headers);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;   /* the blank line that ends the headers */
    size_t end = n;
    while (end > 0 && strchr("\r\n \t", data[end - 1]))
        end--;
    const char *v = colon + 1;
    while (v < data + end && (*v == ' ' || *v == '\t'))
        v++;
    sl_buf_put(&h->headers, data, (size_t) (colon - data) + 1);
    sl_buf_put(&h->headers, v, (size_t) (data + end - v));
    sl_buf_putc(&h->headers, '\0');
    return n;
}

static char *
s_dup_or_null(const char *s)
{
    return s ? sl_xstrdup(s) : NULL;
}

sl_httpc_t *
sl_httpc_new(const sl_httpc_opts_t *o, char *err, size_t errlen)
{
    pthread_once(&s_once, s_global_init);
    if (s_global_rc != CURLE_OK) {
        sl_errf(err, errlen, "libcurl cannot initialise: %s", curl_easy_strerror(s_global_rc));
        return NULL;
    }
    sl_httpc_t *h = calloc(1, sizeof *h);
    if (!h || !(h->curl = curl_easy_init())) {
        free(h);
        sl_errf(err, errlen, "libcurl cannot create a handle (out of memory?)");
        return NULL;
    }
    char ua[64];
    snprintf(ua, sizeof ua, "sluice/%s", SL_HTTPC_VERSION);
    h->user_agent = sl_xstrdup(o->user_agent ? o->user_agent : ua);
    if (o->user) {
        size_t n = strlen(o->user) + (o->password ? strlen(o->password) : 0) + 2;
        h->userpwd = sl_xmalloc(n);
        snprintf(h->userpwd, n, "%s:%s", o->user, o->password ? o->password : "");
    }
    h->ca_file = s_dup_or_null(o->ca_file);
    h->cert = s_dup_or_null(o->client_cert);
    h->key = s_dup_or_null(o->client_key);

    CURL *c = h->curl;
    unsigned connect_ms = o->connect_timeout_ms;
    if (!connect_ms)
        connect_ms = o->timeout_ms && o->timeout_ms < S_CONNECT_MAX_MS ? o->timeout_ms
                                                                       : S_CONNECT_MAX_MS;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);   /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) connect_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->verify_ssl ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->verify_ssl ? 2L : 0L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (h->cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, h->cert);
    if (h->key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, h->key);
    if (h->userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, h->userpwd);
    }
    return h;
}

void
sl_httpc_free(sl_httpc_t **h_p)
{
    sl_httpc_t *h = *h_p;
    if (!h)
        return;
    curl_easy_cleanup(h->curl);
    sl_buf_free(&h->body);
    sl_buf_free(&h->headers);
    free(h->user_agent);
    if (h->userpwd) {
        memset(h->userpwd, 0, strlen(h->userpwd));
        free(h->userpwd);
    }
    free(h->ca_file);
    free(h->cert);
    free(h->key);
    free(h);
    *h_p = NULL;
}

/* The URL for messages: scheme://host[:port]/path without userinfo or
 * query (a query may carry tokens). */
static void
s_url_text(const char *url, char *buf, size_t len)
{
    char red[1024];
    const char *u = sl_url_redact(url, red, sizeof red);
    size_t n = strcspn(u, "?");
    snprintf(buf, len, "%.*s", (int) n, u);
}

int
sl_httpc_request(sl_httpc_t *h, const char *method, const char *url,
                 const char *const *headers, const char *body, size_t body_len,
                 long *status, char *err, size_t errlen)
{
    CURL *c = h->curl;
    struct curl_slist *hl = NULL;
    int has_body = body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                   strcmp(method, "PATCH") == 0;
    /* libcurl's own defaults that the destinations must not see: an
     * "Expect: 100-continue" on large bodies and its "Accept: * / *". */
    hl = curl_slist_append(hl, "Expect:");
    int has_accept = 0;
    for (size_t i = 0; headers && headers[i]; i++) {
        if (strncasecmp(headers[i], "Accept:", 7) == 0)
            has_accept = 1;
        hl = curl_slist_append(hl, headers[i]);
    }
    if (!has_accept)
        hl = curl_slist_append(hl, "Accept:");
    if (!hl) {
        sl_errf(err, errlen, "%s: out of memory for the request headers", method);
        return -1;
    }

    sl_buf_reset(&h->body);
    sl_buf_reset(&h->headers);
    h->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    } else if (has_body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (body ? body_len : 0));
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK) {
        char u[512];
        s_url_text(url, u, sizeof u);
        sl_errf(err, errlen, "%s %s: %s%s%s", method, u, curl_easy_strerror(rc),
                h->errbuf[0] ? ": " : "", h->errbuf);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return 0;
}

const char *
sl_httpc_body(const sl_httpc_t *h, size_t *len)
{
    if (len)
        *len = h->body.n;
    return h->body.p ? h->body.p : "";
}

const char *
sl_httpc_header(const sl_httpc_t *h, const char *name)
{
    size_t nl = strlen(name);
    const char *found = NULL;
    for (size_t at = 0; at < h->headers.n;) {
        const char *line = h->headers.p + at;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':')
            found = line + nl + 1;
        at += strlen(line) + 1;
    }
    return found;
}

sl_pub_status_t
sl_httpc_classify(long status)
{
    if (status >= 200 && status < 300)
        return SL_PUB_OK;
    if (status == 408 || status == 425 || status == 429 || status >= 500)
        return SL_PUB_RETRY;
    return SL_PUB_ERROR;
}

sl_pub_status_t
sl_httpc_status_error(const sl_httpc_t *h, const char *method, const char *url, long status,
                      char *err, size_t errlen)
{
    char u[512], quote[S_BODY_ERR_MAX + 1];
    s_url_text(url, u, sizeof u);
    size_t n = h->body.n < S_BODY_ERR_MAX ? h->body.n : S_BODY_ERR_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) h->body.p[i];
        quote[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char) ch;
    }
    quote[n] = '\0';
    sl_errf(err, errlen, "%s %s: HTTP %ld%s%s", method, u, status, n ? ": " : "", quote);
    return sl_httpc_classify(status);
}

sl_pub_status_t
sl_httpc_send(sl_httpc_t *h, const char *method, const char *url, const char *const *headers,
              const char *body, size_t body_len, char *err, size_t errlen)
{
    long status = 0;
    if (sl_httpc_request(h, method, url, headers, body, body_len, &status, err, errlen) < 0)
        return SL_PUB_RETRY;
    if (sl_httpc_classify(status) == SL_PUB_OK)
        return SL_PUB_OK;
    return sl_httpc_status_error(h, method, url, status, err, errlen);
}
