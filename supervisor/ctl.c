/* ctl — the supervisor's control socket: accept, read one request line,
 * answer or hand the request to the supervisor loop, stream watches.
 * Protocol and threading: supervisor/ctl.h. */
#include "supervisor/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/log.h"

#define S_MAX_CLIENTS 16
#define S_LINE_MAX 256
#define S_READ_TIMEOUT_MS 5000     /* a client that sends no full line by then is cut off */
#define S_MAX_SAMPLES 4096   /* watch sockets: up to 128 workers x 18 values */

enum { S_FREE = 0, S_READING, S_WAITING, S_WATCH };
enum { S_W_DROPS = 1, S_W_RETRIES, S_W_LEASES, S_W_SOCKETS };

/* One value a watch follows: a number (a counter, or a gauge such as
 * connected peers), or a text (worker state). */
typedef struct {
    char        key[96];
    uint64_t    v;
    const char *s;
    int         gauge;
} s_sample_t;

typedef struct {
    int         fd, state, watch, id;
    char        line[S_LINE_MAX];
    size_t      len;
    uint64_t    since;        /* connected (monotonic ms) */
    uint64_t    next_tick;
    s_sample_t *prev;
    size_t      n_prev;
    int         have_prev;
} s_client_t;

struct sl_ctl {
    int        fd;
    char       path[sizeof ((struct sockaddr_un *) 0)->sun_path];
    s_client_t clients[S_MAX_CLIENTS];
    int        next_id;
    int        ingest_override, pipeline_override;
};

sl_ctl_t *
sl_ctl_new(const char *run_dir, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control.sock", run_dir);
    if (n < 0 || (size_t) n >= sizeof sa.sun_path) {
        snprintf(err, errlen, "control socket %s/control.sock: path longer than a Unix socket "
                 "path can hold; use a shorter run_dir", run_dir);
        return NULL;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        return NULL;
    }
    unlink(sa.sun_path);   /* a stale one: we hold the pidfile lock */
    /* Created 0600 from the start: nobody else may connect in between. */
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *) &sa, sizeof sa);
    umask(old);
    if (rc < 0 || chmod(sa.sun_path, 0600) < 0 || listen(fd, S_MAX_CLIENTS) < 0) {
        snprintf(err, errlen, "control socket %s: %s (is run_dir writable by this user?)",
                 sa.sun_path, strerror(errno));
        close(fd);
        return NULL;
    }
    sl_ctl_t *self = sl_xcalloc(1, sizeof *self);
    self->fd = fd;
    snprintf(self->path, sizeof self->path, "%s", sa.sun_path);
    return self;
}

static void
s_drop(s_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->prev);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

void
sl_ctl_forget(sl_ctl_t *self)
{
    if (!self)
        return;
    close(self->fd);
    for (int i = 0; i < S_MAX_CLIENTS; i++)
        if (self->clients[i].state != S_FREE)
            close(self->clients[i].fd);
}

void
sl_ctl_destroy(sl_ctl_t **self_p)
{
    sl_ctl_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < S_MAX_CLIENTS; i++)
        if (self->clients[i].state != S_FREE)
            s_drop(&self->clients[i]);
    close(self->fd);
    unlink(self->path);
    free(self);
    *self_p = NULL;
}

void
sl_ctl_set_overrides(sl_ctl_t *self, int ingest, int pipeline)
{
    self->ingest_override = ingest;
    self->pipeline_override = pipeline;
}

/* Writes all of buf, waiting at most 2 s for a client that does not read. */
static void
s_write_all(int fd, const char *buf, size_t len)
{
    uint64_t deadline = sl_now_ms() + 2000;
    while (len) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            buf += w;
            len -= (size_t) w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR) && sl_now_ms() < deadline) {
            struct timespec ts = { 0, 5 * 1000000 };
            nanosleep(&ts, NULL);
        } else {
            return;
        }
    }
}

static s_client_t *
s_find(sl_ctl_t *self, int id)
{
    for (int i = 0; i < S_MAX_CLIENTS; i++)
        if (self->clients[i].state != S_FREE && self->clients[i].id == id)
            return &self->clients[i];
    return NULL;
}

/* ---- JSON through yajl_gen ---- */

static void
s_kv_str(yajl_gen g, const char *k, const char *v)
{
    sl_json_gen_str(g, k);
    sl_json_gen_str(g, v);
}

static void
s_kv_u64(yajl_gen g, const char *k, uint64_t v)
{
    sl_json_gen_str(g, k);
    sl_json_gen_u64(g, v);
}

static void
s_kv_int(yajl_gen g, const char *k, long long v)
{
    sl_json_gen_str(g, k);
    yajl_gen_integer(g, v);
}

/* The generated document plus '\n' (malloc'd); *len its length. */
static char *
s_gen_line(yajl_gen g, size_t *len)
{
    const unsigned char *buf;
    yajl_gen_get_buf(g, &buf, len);
    char *line = sl_xmalloc(*len + 2);
    memcpy(line, buf, *len);
    line[(*len)++] = '\n';
    return line;
}

/* Sends the generated document plus '\n'. */
static void
s_send_gen(int fd, yajl_gen g)
{
    size_t len;
    char *line = s_gen_line(g, &len);
    s_write_all(fd, line, len);
    free(line);
}

void
sl_ctl_answer(sl_ctl_t *self, int client, int ok, const char *key, const char *text,
              const char *extra)
{
    s_client_t *c = s_find(self, client);
    if (!c)
        return;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    sl_json_gen_str(g, "ok");
    yajl_gen_bool(g, ok);
    if (key && text)
        s_kv_str(g, key, text);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    /* extra members go in before the closing brace */
    size_t elen = extra ? strlen(extra) : 0;
    char *line = sl_xmalloc(len + elen + 2);
    memcpy(line, buf, len - 1);
    memcpy(line + len - 1, extra ? extra : "", elen);
    line[len - 1 + elen] = '}';
    line[len + elen] = '\n';
    s_write_all(c->fd, line, len + elen + 1);
    free(line);
    yajl_gen_free(g);
    s_drop(c);
}

static void
s_error(s_client_t *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    sl_json_gen_str(g, "ok");
    yajl_gen_bool(g, 0);
    s_kv_str(g, "error", msg);
    yajl_gen_map_close(g);
    s_send_gen(c->fd, g);
    yajl_gen_free(g);
    s_drop(c);
}

/* ---- status, config ---- */

static void
s_status(sl_ctl_t *self, s_client_t *c, const sl_shm_t *shm, const sl_conf_t *conf)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    sl_json_gen_str(g, "ok");
    yajl_gen_bool(g, 1);
    s_kv_int(g, "pid", atomic_load(&shm->supervisor_pid));
    s_kv_u64(g, "generation", atomic_load(&shm->generation));
    s_kv_str(g, "config", conf->file ? conf->file : "<embedded>");
    s_kv_u64(g, "started_ms", shm->started_ms);
    unsigned n_ingest = atomic_load(&shm->n_ingest), n_pipeline = atomic_load(&shm->n_pipeline);
    s_kv_u64(g, "ingest", n_ingest);
    s_kv_u64(g, "pipeline", n_pipeline);
    sl_json_gen_str(g, "runtime_override");
    yajl_gen_map_open(g);
    if (self->ingest_override)
        s_kv_int(g, "ingest", self->ingest_override);
    if (self->pipeline_override)
        s_kv_int(g, "pipeline", self->pipeline_override);
    yajl_gen_map_close(g);
    s_kv_u64(g, "partitions", atomic_load(&shm->partitions));
    s_kv_int(g, "stopping", atomic_load(&shm->stopping));
    unsigned n_sinks = atomic_load(&shm->n_sinks);
    sl_json_gen_str(g, "sinks");
    yajl_gen_array_open(g);
    for (unsigned i = 0; i < n_sinks && i < SL_MAX_SINKS; i++)
        sl_json_gen_str(g, shm->sink_names[i]);
    yajl_gen_array_close(g);
    sl_json_gen_str(g, "workers");
    yajl_gen_array_open(g);
    uint64_t now = sl_now_ms();
    for (unsigned i = 0; i < n_ingest + n_pipeline && i < shm->n_slots; i++) {
        const sl_slot_t *s = &shm->slots[i];
        yajl_gen_map_open(g);
        s_kv_int(g, "slot", i);
        s_kv_str(g, "role", sl_role_name(i < n_ingest ? SL_ROLE_INGEST : SL_ROLE_PIPELINE));
        s_kv_int(g, "index", i < n_ingest ? (int) i : (int) (i - n_ingest));
        s_kv_int(g, "pid", atomic_load(&s->pid));
        s_kv_str(g, "state", sl_worker_state_name(atomic_load(&s->state)));
        s_kv_u64(g, "restarts", atomic_load(&s->restarts));
        s_kv_u64(g, "generation", atomic_load(&s->generation));
        uint64_t hb = atomic_load(&s->heartbeat_ms);
        s_kv_u64(g, "heartbeat_age_ms", hb && now > hb ? now - hb : 0);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    sl_json_gen_str(g, "totals");
    yajl_gen_map_open(g);
    for (int k = 0; k < SL_C__COUNT; k++)
        s_kv_u64(g, sl_worker_counter_names[k], sl_shm_sum(shm, k, 0));
    yajl_gen_map_close(g);
    sl_json_gen_str(g, "supervisor");
    yajl_gen_map_open(g);
    for (int k = 0; k < SL_SV__COUNT; k++)
        s_kv_u64(g, sl_supervisor_counter_names[k], atomic_load(&shm->sv[k]));
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    s_send_gen(c->fd, g);
    yajl_gen_free(g);
    s_drop(c);
}

static void
s_config(s_client_t *c, const sl_conf_t *conf)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        s_error(c, "cannot render the configuration: %s; try sluiced --dump-config",
                strerror(errno));
        return;
    }
    sl_conf_dump(conf, f);
    fclose(f);
    s_write_all(c->fd, text, len);
    free(text);
    s_drop(c);
}

/* ---- watch ---- */

typedef struct {
    s_sample_t *v;
    size_t      n;
} s_samples_t;

/* The sample added, or NULL when the watch holds S_MAX_SAMPLES already. */
static s_sample_t *
s_add(s_samples_t *out, uint64_t v, const char *s, const char *fmt, ...)
{
    if (out->n >= S_MAX_SAMPLES)
        return NULL;
    s_sample_t *x = &out->v[out->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->key, sizeof x->key, fmt, ap);
    va_end(ap);
    x->v = v;
    x->s = s;
    x->gauge = 0;
    return x;
}

/* Worker w's ZeroMQ socket-monitor totals (every socket it had in this
 * generation), as <w>.zmq.<counter>; peers is a gauge. */
static void
s_add_zmon(s_samples_t *out, const sl_slot_t *sl, const char *w)
{
    for (int k = 0; k < SL_ZC__COUNT; k++) {
        s_sample_t *x = s_add(out, atomic_load(&sl->zmon.total[k]), NULL, "%s.zmq.%s", w,
                              sl_zmon_counter_names[k]);
        if (x && sl_zmon_counter_kind[k] == SL_PK_gauge)
            x->gauge = 1;
    }
}

static const char *
s_worker_name(const sl_shm_t *shm, unsigned slot, char *buf, size_t len)
{
    unsigned n_ingest = atomic_load(&shm->n_ingest);
    snprintf(buf, len, "%s#%u", slot < n_ingest ? "ingest" : "pipeline",
             slot < n_ingest ? slot : slot - n_ingest);
    return buf;
}

/* Sum of publisher counter k of publisher p of sink s over the slots,
 * and its label (the first worker's that set one). */
static uint64_t
s_pub_sum(const sl_shm_t *shm, unsigned s, unsigned p, int k, char *label, size_t llen)
{
    uint64_t n = 0;
    unsigned slots = atomic_load(&shm->n_ingest) + atomic_load(&shm->n_pipeline);
    if (label)
        label[0] = '\0';
    for (unsigned i = 0; i < slots && i < shm->n_slots; i++) {
        const sl_pub_stats_t *ps = &shm->slots[i].pub[s][p];
        n += atomic_load(&ps->c[k]);
        if (label && !label[0] && atomic_load(&ps->t.used))
            sl_stats_text_get(&ps->t, label, llen, NULL, 0);
    }
    return n;
}

static int
s_pub_used(const sl_shm_t *shm, unsigned s, unsigned p)
{
    unsigned slots = atomic_load(&shm->n_ingest) + atomic_load(&shm->n_pipeline);
    for (unsigned i = 0; i < slots && i < shm->n_slots; i++)
        if (atomic_load(&shm->slots[i].pub[s][p].t.used))
            return 1;
    return 0;
}

static void
s_collect(int watch, const sl_shm_t *shm, s_samples_t *out)
{
    unsigned n_sinks = atomic_load(&shm->n_sinks);
    unsigned slots = atomic_load(&shm->n_ingest) + atomic_load(&shm->n_pipeline);
    if (slots > shm->n_slots)
        slots = shm->n_slots;
    char w[32];
    switch (watch) {
    case S_W_DROPS:
        for (int k = 0; k < SL_C__COUNT; k++)
            if (strncmp(sl_worker_counter_names[k], "drop_", 5) == 0)
                s_add(out, sl_shm_sum(shm, k, 0), NULL, "%s", sl_worker_counter_names[k]);
        for (unsigned s = 0; s < n_sinks && s < SL_MAX_SINKS; s++)
            for (unsigned p = 0; p < SL_MAX_SINK_PUBLISHERS; p++)
                if (s_pub_used(shm, s, p))
                    s_add(out, s_pub_sum(shm, s, p, SL_PC_dropped, NULL, 0), NULL,
                          "%s/%u.dropped", shm->sink_names[s], p);
        break;
    case S_W_RETRIES:
        for (unsigned s = 0; s < n_sinks && s < SL_MAX_SINKS; s++)
            for (unsigned p = 0; p < SL_MAX_SINK_PUBLISHERS; p++) {
                if (!s_pub_used(shm, s, p))
                    continue;
                s_add(out, s_pub_sum(shm, s, p, SL_PC_retried, NULL, 0), NULL,
                      "%s/%u.retried", shm->sink_names[s], p);
                s_add(out, s_pub_sum(shm, s, p, SL_PC_errors, NULL, 0), NULL,
                      "%s/%u.errors", shm->sink_names[s], p);
            }
        break;
    case S_W_LEASES: {
        uint64_t held[SL_MAX_WORKERS] = { 0 };
        uint64_t free_ = 0;
        const sl_lease_table_t *t = sl_shm_leases_ro(shm);
        unsigned ts = sl_lease_table_sinks(t), tp = sl_lease_table_partitions(t);
        for (unsigned s = 0; s < ts; s++)
            for (unsigned p = 0; p < tp; p++) {
                sl_lease_info_t li;
                if (sl_lease_get(t, s, p, &li) < 0 || li.owner < 0 ||
                    li.owner >= SL_MAX_WORKERS)
                    free_++;
                else
                    held[li.owner]++;
            }
        s_add(out, free_, NULL, "unheld");
        for (unsigned i = 0; i < slots; i++) {
            const sl_slot_t *sl = &shm->slots[i];
            s_worker_name(shm, i, w, sizeof w);
            if (i >= atomic_load(&shm->n_ingest)) {
                s_add(out, SL_GET(sl, leases_taken), NULL, "%s.taken", w);
                s_add(out, SL_GET(sl, leases_released), NULL, "%s.released", w);
            }
            if (held[i] || i >= atomic_load(&shm->n_ingest))
                s_add(out, held[i], NULL, "%s.holds", w);
        }
        s_add(out, atomic_load(&shm->sv[SL_SV_leases_freed]), NULL, "supervisor.leases_freed");
        break;
    }
    case S_W_SOCKETS:
        for (unsigned i = 0; i < slots; i++) {
            const sl_slot_t *sl = &shm->slots[i];
            s_worker_name(shm, i, w, sizeof w);
            s_add(out, 0, sl_worker_state_name(atomic_load(&sl->state)), "%s.state", w);
            if (i < atomic_load(&shm->n_ingest)) {
                s_add(out, SL_GET(sl, frames_sent), NULL, "%s.frames_sent", w);
                s_add(out, SL_GET(sl, frames_resent), NULL, "%s.frames_resent", w);
                s_add(out, SL_GET(sl, send_blocked), NULL, "%s.send_blocked", w);
                s_add(out, SL_GET(sl, frames_confirmed), NULL, "%s.frames_confirmed", w);
            } else {
                s_add(out, SL_GET(sl, frames_received), NULL, "%s.frames_received", w);
                s_add(out, SL_GET(sl, frames_rejected), NULL, "%s.frames_rejected", w);
            }
            s_add_zmon(out, sl, w);
        }
        break;
    }
}

static const s_sample_t *
s_lookup(const s_client_t *c, const char *key)
{
    for (size_t i = 0; i < c->n_prev; i++)
        if (strcmp(c->prev[i].key, key) == 0)
            return &c->prev[i];
    return NULL;
}

static const char *const s_watch_names[] = { "", "drops", "retries", "leases", "sockets" };

/* One line: the whole picture the first time ("snapshot"), then what
 * changed since the last line ("changed": {key: {"delta": d, "total": t}},
 * {key: {"value": v}} for a gauge, or {key: "state"}); counters are of the current configuration
 * generation, so a total that went down (a reload) counts from 0. */
static int
s_watch_tick(s_client_t *c, const sl_shm_t *shm)
{
    s_samples_t now = { sl_xcalloc(S_MAX_SAMPLES, sizeof (s_sample_t)), 0 };
    s_collect(c->watch, shm, &now);
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    s_kv_str(g, "watch", s_watch_names[c->watch]);
    s_kv_u64(g, "time_ms", sl_wall_ms());
    s_kv_u64(g, "generation", atomic_load(&shm->generation));
    sl_json_gen_str(g, c->have_prev ? "changed" : "snapshot");
    yajl_gen_map_open(g);
    for (size_t i = 0; i < now.n; i++) {
        const s_sample_t *x = &now.v[i];
        const s_sample_t *p = c->have_prev ? s_lookup(c, x->key) : NULL;
        if (x->s) {
            if (c->have_prev && p && p->s && strcmp(p->s, x->s) == 0)
                continue;
            s_kv_str(g, x->key, x->s);
            continue;
        }
        uint64_t before = p ? p->v : 0;
        if (c->have_prev && p && before == x->v)
            continue;
        if (c->have_prev && !p && x->v == 0)
            continue;
        sl_json_gen_str(g, x->key);
        yajl_gen_map_open(g);
        if (x->gauge) {            /* a level, not a count: no delta */
            s_kv_u64(g, "value", x->v);
            yajl_gen_map_close(g);
            continue;
        }
        s_kv_u64(g, "delta", c->have_prev ? (x->v >= before ? x->v - before : x->v) : 0);
        s_kv_u64(g, "total", x->v);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    size_t len;
    char *line = s_gen_line(g, &len);
    ssize_t w = send(c->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    free(line);
    yajl_gen_free(g);
    free(c->prev);
    c->prev = now.v;
    c->n_prev = now.n;
    c->have_prev = 1;
    /* a reader that stopped reading (full buffer) or went away is cut off */
    return w == (ssize_t) len ? 0 : -1;
}

/* ---- requests ---- */

static int
s_parse_count(const char *t, int *relative, int *n)
{
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (errno || end == t || *end || v < -64 || v > 64)
        return -1;
    *relative = t[0] == '+' || t[0] == '-';
    *n = (int) v;
    return *relative || v > 0 ? 0 : -1;
}

/* 1 with req filled when the supervisor must act; 0 when answered here. */
static int
s_request(sl_ctl_t *self, s_client_t *c, const sl_shm_t *shm, const sl_conf_t *conf,
          sl_ctl_req_t *req)
{
    char *words[4] = { 0 };
    int n = 0;
    for (char *save = NULL, *w = strtok_r(c->line, " \t\r", &save); w && n < 4;
         w = strtok_r(NULL, " \t\r", &save))
        words[n++] = w;
    if (n == 0) {
        s_error(c, "empty request; send one of: status, config, reload, stop, workers "
                "ingest|pipeline +N|-N|N, watch drops|retries|leases|sockets");
        return 0;
    }
    const char *cmd = words[0];
    memset(req, 0, sizeof *req);
    req->client = c->id;
    if (strcmp(cmd, "status") == 0 && n == 1) {
        s_status(self, c, shm, conf);
    } else if (strcmp(cmd, "config") == 0 && n == 1) {
        s_config(c, conf);
    } else if (strcmp(cmd, "reload") == 0 && n == 1) {
        req->kind = SL_CTL_RELOAD;
    } else if (strcmp(cmd, "stop") == 0 && n == 1) {
        req->kind = SL_CTL_STOP;
    } else if (strcmp(cmd, "workers") == 0) {
        int role = n >= 2 && strcmp(words[1], "ingest") == 0 ? SL_ROLE_INGEST
                 : n >= 2 && strcmp(words[1], "pipeline") == 0 ? SL_ROLE_PIPELINE : 0;
        if (n != 3 || !role || s_parse_count(words[2], &req->relative, &req->n) < 0) {
            s_error(c, "usage: workers ingest|pipeline +N|-N|N (N a count from 1 to 64)");
            return 0;
        }
        req->kind = SL_CTL_WORKERS;
        req->role = role;
    } else if (strcmp(cmd, "watch") == 0) {
        int wk = 0;
        for (int k = 1; n == 2 && k <= S_W_SOCKETS; k++)
            if (strcmp(words[1], s_watch_names[k]) == 0)
                wk = k;
        if (!wk) {
            s_error(c, "usage: watch drops|retries|leases|sockets");
            return 0;
        }
        c->state = S_WATCH;
        c->watch = wk;
        c->next_tick = 0;
        return 0;
    } else {
        s_error(c, "unknown request '%.64s'; send one of: status, config, reload, stop, "
                "workers ingest|pipeline +N|-N|N, watch drops|retries|leases|sockets", cmd);
        return 0;
    }
    if (req->kind) {
        c->state = S_WAITING;
        return 1;
    }
    return 0;
}

/* Reads what a client sent; 1 once it holds a whole line. */
static int
s_read(s_client_t *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, c->line + c->len, sizeof c->line - 1 - c->len, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            s_drop(c);
            return 0;
        }
        if (r < 0)
            return 0;
        c->len += (size_t) r;
        c->line[c->len] = '\0';
        char *nl = strchr(c->line, '\n');
        if (nl) {
            *nl = '\0';
            return 1;
        }
        if (c->len == sizeof c->line - 1) {
            s_error(c, "request longer than %d bytes; send one short line", S_LINE_MAX - 1);
            return 0;
        }
    }
}

int
sl_ctl_poll(sl_ctl_t *self, const sl_shm_t *shm, const sl_conf_t *conf, sl_ctl_req_t *req)
{
    for (;;) {
        int fd = accept4(self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        s_client_t *c = NULL;
        for (int i = 0; i < S_MAX_CLIENTS && !c; i++)
            if (self->clients[i].state == S_FREE)
                c = &self->clients[i];
        if (!c) {
            static const char busy[] = "{\"ok\":false,\"error\":\"too many control connections "
                                       "(16); close a watch and try again\"}\n";
            s_write_all(fd, busy, sizeof busy - 1);
            close(fd);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->state = S_READING;
        c->id = ++self->next_id;
        c->since = sl_now_ms();
    }
    uint64_t now = sl_now_ms();
    for (int i = 0; i < S_MAX_CLIENTS; i++) {
        s_client_t *c = &self->clients[i];
        if (c->state == S_READING) {
            if (s_read(c)) {
                if (s_request(self, c, shm, conf, req))
                    return 1;
            } else if (c->state == S_READING && now - c->since > S_READ_TIMEOUT_MS) {
                s_error(c, "no request line within %d s; send one line ending in a newline",
                        S_READ_TIMEOUT_MS / 1000);
            }
        }
        if (c->state == S_WATCH) {
            char junk[64];
            ssize_t r = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                s_drop(c);   /* the watcher went away */
                continue;
            }
            if (now >= c->next_tick) {
                c->next_tick = now + 1000;
                if (s_watch_tick(c, shm) < 0)
                    s_drop(c);
            }
        }
    }
    return 0;
}
