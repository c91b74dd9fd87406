/* metrics — /metrics and /healthz over HTTP (libmicrohttpd driven by the
 * supervisor's loop through its epoll descriptor: no thread of its own),
 * rendered from shared memory plus the retired totals. */
#include "supervisor/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/promtext.h"

#define S_DEFAULT_STALE_MS 10000

struct sl_metrics {
    sl_shm_t              *shm;
    sl_promtext_retired_t *retired;
    uint64_t               stale_ms;
    struct MHD_Daemon     *daemon;
    int                    fd;         /* our listening socket (MHD does not close it) */
    char                  *listen;     /* what it serves on; NULL = off */
};

sl_metrics_t *
sl_metrics_new(sl_shm_t *shm)
{
    sl_metrics_t *m = sl_xcalloc(1, sizeof *m);
    m->shm = shm;
    m->retired = sl_promtext_retired_new();
    m->stale_ms = S_DEFAULT_STALE_MS;
    m->fd = -1;
    return m;
}

static void
s_stop(sl_metrics_t *m)
{
    /* MHD_stop_daemon closes the listening socket unless the daemon was
     * quiesced first, which hands it back: close it exactly once. */
    if (m->daemon) {
        MHD_socket q = MHD_quiesce_daemon(m->daemon);
        MHD_stop_daemon(m->daemon);
        if (q != MHD_INVALID_SOCKET)
            close(q);
    } else if (m->fd >= 0) {
        close(m->fd);
    }
    m->daemon = NULL;
    m->fd = -1;
    free(m->listen);
    m->listen = NULL;
}

void
sl_metrics_destroy(sl_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sl_metrics_t *m = *self_p;
    s_stop(m);
    sl_promtext_retired_destroy(&m->retired);
    free(m);
    *self_p = NULL;
}

void
sl_metrics_set_stale_ms(sl_metrics_t *m, uint64_t ms)
{
    m->stale_ms = ms;
}

void
sl_metrics_fold(sl_metrics_t *m, unsigned i, unsigned what)
{
    sl_promtext_fold(m->retired, m->shm, i, what);
}

void
sl_metrics_close_in_child(sl_metrics_t *m)
{
    /* Only descriptors are left in the child. The epoll descriptor (shared
     * with the supervisor) is never waited on here; the listening socket
     * would keep the port bound after the supervisor is gone. */
    if (m && m->fd >= 0)
        close(m->fd);
}

int
sl_metrics_health(const sl_shm_t *shm, uint64_t stale_ms, char *why, size_t len)
{
    if (atomic_load(&shm->stopping)) {
        snprintf(why, len, "%s", atomic_load(&shm->handoff) ? "reloading: workers are being "
                 "replaced" : "stopping");
        return 503;
    }
    int n = (int) (atomic_load(&shm->n_ingest) + atomic_load(&shm->n_pipeline));
    if (n > (int) shm->n_slots)
        n = (int) shm->n_slots;
    uint64_t now = sl_now_ms();
    size_t off = 0;
    int bad = 0;
    why[0] = '\0';
    for (int i = 0; i < n; i++) {
        const sl_slot_t *s = &shm->slots[i];
        int st = atomic_load(&s->state);
        uint64_t hb = atomic_load(&s->heartbeat_ms);
        char one[128];
        if (atomic_load(&s->pid) <= 0 || st != SL_WS_RUNNING)
            snprintf(one, sizeof one, "%s worker #%d is %s", sl_role_name(atomic_load(&s->role)),
                     (int) atomic_load(&s->index), sl_worker_state_name(st));
        else if (now > hb && now - hb > stale_ms)
            snprintf(one, sizeof one, "%s worker #%d sent no heartbeat for %llu ms",
                     sl_role_name(atomic_load(&s->role)), (int) atomic_load(&s->index),
                     (unsigned long long) (now - hb));
        else
            continue;
        if (off < len)
            off += (size_t) snprintf(why + off, len - off, "%s%s", bad ? "; " : "", one);
        bad++;
    }
    return bad ? 503 : 200;
}

static enum MHD_Result
s_reply(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result
s_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
         const char *version, const char *upload, size_t *upload_size, void **req)
{
    (void) version;
    (void) upload;
    sl_metrics_t *m = cls;
    if (!*req) {                 /* first call: headers only */
        *req = m;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;        /* no body is expected: ignore it */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return s_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                       sl_xstrdup("only GET and HEAD\n"), 18);
    if (strcmp(url, "/metrics") == 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            return MHD_NO;
        sl_promtext_write(f, m->shm, m->retired);
        fclose(f);
        return s_reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len);
    }
    if (strcmp(url, "/healthz") == 0) {
        char why[1024];
        int status = sl_metrics_health(m->shm, m->stale_ms, why, sizeof why);
        char *body = NULL;
        if (asprintf(&body, "%s\n", status == 200 ? "ok" : why) < 0)
            return MHD_NO;
        return s_reply(c, (unsigned) status, "text/plain; charset=utf-8", body, strlen(body));
    }
    return s_reply(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                   sl_xstrdup("not found: try /metrics or /healthz\n"), 36);
}

/* A listening socket on listen; -1 with the reason (naming the setting). */
static int
s_bind(const char *listen_text, char *err, size_t errlen)
{
    char host[256], port[16];
    unsigned p;
    if (sl_promtext_listen_parse(listen_text, host, sizeof host, &p, err, errlen) != 0)
        return -1;
    snprintf(port, sizeof port, "%u", p);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0)
        return sl_errf(err, errlen, "metrics.listen %s: cannot resolve '%s': %s; set an address "
                       "of this host, or off", listen_text, host, gai_strerror(rc));
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return sl_errf(err, errlen, "metrics.listen %s: cannot listen: %s%s", listen_text,
                       strerror(saved), saved == EADDRINUSE ? " (another process serves this "
                       "port: choose another port in metrics.listen, or off)" :
                       "; choose another address in metrics.listen, or off");
    return fd;
}

int
sl_metrics_listen(sl_metrics_t *m, const char *listen_text, char *err, size_t errlen)
{
    char host[256];
    unsigned port;
    int off = sl_promtext_listen_parse(listen_text, host, sizeof host, &port, err, errlen);
    if (off < 0)
        return -1;
    if (off) {
        if (m->listen)
            sl_info("metrics: no longer serving on %s (metrics.listen is off)", m->listen);
        s_stop(m);
        return 0;
    }
    if (m->listen && strcmp(m->listen, listen_text) == 0)
        return 0;
    int fd = s_bind(listen_text, err, errlen);
    if (fd < 0 && m->listen) {
        /* The old server may hold the port the new address wants. */
        char *old = sl_xstrdup(m->listen);
        s_stop(m);
        fd = s_bind(listen_text, err, errlen);
        if (fd < 0) {
            char ignored[256];
            sl_metrics_listen(m, old, ignored, sizeof ignored);
        }
        free(old);
    }
    if (fd < 0)
        return -1;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL, 0, NULL, NULL, s_handle, m,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 32u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!d) {
        close(fd);
        return sl_errf(err, errlen, "metrics.listen %s: libmicrohttpd would not start its "
                       "server; set metrics.listen to off to run without /metrics", listen_text);
    }
    s_stop(m);
    m->daemon = d;
    m->fd = fd;
    m->listen = sl_xstrdup(listen_text);
    sl_info("metrics: serving /metrics and /healthz on http://%s", listen_text);
    return 0;
}

int
sl_metrics_fd(const sl_metrics_t *m)
{
    if (!m || !m->daemon)
        return -1;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

int
sl_metrics_timeout_ms(const sl_metrics_t *m, int max_ms)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (m && m->daemon && MHD_get_timeout(m->daemon, &t) == MHD_YES && t < (unsigned) max_ms)
        return (int) t;
    return max_ms;
}

void
sl_metrics_run(sl_metrics_t *m)
{
    if (m && m->daemon)
        MHD_run(m->daemon);
}
