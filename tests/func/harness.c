#include "tests/func/harness.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

void
sl_h_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

void
sl_h_mkdir(sl_h_agent_t *a, const char *tag)
{
    memset(a, 0, sizeof *a);
    snprintf(a->dir, sizeof a->dir, "/tmp/sluice-test-%s-XXXXXX", tag);
    if (!mkdtemp(a->dir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        abort();
    }
    snprintf(a->log, sizeof a->log, "%s/sluiced.log", a->dir);
}

char *
sl_h_path(sl_h_agent_t *a, const char *name)
{
    static char bufs[8][512];
    static int k;
    char *b = bufs[k++ % 8];
    snprintf(b, 512, "%s/%s", a->dir, name);
    return b;
}

void
sl_h_write(sl_h_agent_t *a, const char *name, const char *content)
{
    FILE *f = fopen(sl_h_path(a, name), "w");
    if (!f)
        abort();
    fputs(content, f);
    fclose(f);
}

pid_t
sl_h_spawn(sl_h_agent_t *a, const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* several agents at once: no /metrics unless a test asks (-o, or its env) */
        setenv("SLUICE_METRICS_LISTEN", "off", 0);
        execl(SL_BUILDDIR "/supervisor/sluiced", "sluiced", "-c", sl_h_path(a, "sluice.yaml"),
              (char *) NULL);
        _exit(127);
    }
    return pid;
}

int
sl_h_start(sl_h_agent_t *a, int timeout_ms)
{
    pid_t pid = sl_h_spawn(a, a->log);
    if (pid < 0)
        return -1;
    a->pid = pid;
    char name[64], err[256];
    sl_shm_name(a->dir, name, sizeof name);
    for (int t = 0; t < timeout_ms; t += 20) {
        if (!a->shm)
            a->shm = sl_shm_attach(name, err, sizeof err);
        if (a->shm) {
            int n = (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
            int running = 0;
            for (int i = 0; i < n; i++)
                running += atomic_load(&a->shm->slots[i].state) == SL_WS_RUNNING;
            if (n > 0 && running == n)
                return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            a->pid = 0;
            return -1;
        }
        sl_h_sleep_ms(20);
    }
    return -1;
}

uint64_t
sl_h_total(sl_h_agent_t *a, int counter)
{
    return a->shm ? sl_shm_sum(a->shm, counter, 0) : 0;
}

uint64_t
sl_h_leases_held(sl_h_agent_t *a)
{
    return sl_h_total(a, SL_C_leases_taken) - sl_h_total(a, SL_C_leases_released);
}

pid_t
sl_h_worker(sl_h_agent_t *a, int role)
{
    for (unsigned i = 0; a->shm && i < a->shm->n_slots; i++)
        if (atomic_load(&a->shm->slots[i].role) == role)
            return atomic_load(&a->shm->slots[i].pid);
    return -1;
}

uint64_t
sl_h_pub(sl_h_agent_t *a, int s, int k, int counter)
{
    uint64_t v = 0;
    int n = (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
    for (int i = 0; i < n; i++) {
        const sl_slot_t *sl = &a->shm->slots[i];
        if (atomic_load(&sl->role) != SL_ROLE_PIPELINE)
            continue;
        uint64_t x = atomic_load(&sl->pub[s][k].c[counter]);
        if (sl_publisher_counter_kind[counter] == SL_PK_max)
            v = x > v ? x : v;
        else
            v += x;
    }
    return v;
}

int
sl_h_wait(sl_h_agent_t *a, int (*cond)(sl_h_agent_t *), int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 20) {
        if (cond(a))
            return 0;
        sl_h_sleep_ms(20);
    }
    return cond(a) ? 0 : -1;
}

int
sl_h_stop(sl_h_agent_t *a, int sig, int timeout_ms)
{
    if (a->pid <= 0)
        return -1;
    kill(a->pid, sig);
    for (int t = 0; t < timeout_ms; t += 20) {
        int st;
        if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
            a->pid = 0;
            return st;
        }
        sl_h_sleep_ms(20);
    }
    return -1;
}

void
sl_h_stop_ok(sl_h_agent_t *a, int timeout_ms, const char *what)
{
    int st = sl_h_stop(a, SIGTERM, timeout_ms);
    ck_assert_msg(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "%s%sSIGTERM: expected exit 0 within %d ms, got status %d (log %s)",
                  what ? what : "", what ? ": " : "", timeout_ms, st, a->log);
}

void
sl_h_cleanup(sl_h_agent_t *a)
{
    if (a->pid > 0) {
        kill(a->pid, SIGKILL);
        waitpid(a->pid, NULL, 0);
        a->pid = 0;
    }
    if (a->shm) {
        sl_shm_unmap(a->shm);
        a->shm = NULL;
    }
    if (!getenv("SLUICE_KEEP_TEST_DIRS")) {
        /* A SIGKILLed supervisor leaves its region; the run dir is unique
         * to this test, so the region of its name is ours to remove. */
        char name[64];
        sl_shm_name(a->dir, name, sizeof name);
        sl_shm_unlink(name);
        sl_h_run("rm -rf '%s'", a->dir);
    }
}

int
sl_h_run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

char *
sl_h_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Canonical JSON: objects with sorted keys, numbers as %.17g of their value. */
typedef struct {
    char *s;
    size_t n, cap;
} s_buf_t;

static void
s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void
s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

static void
s_str(s_buf_t *b, const char *s)
{
    s_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            char e[3] = { '\\', *s, 0 };
            s_puts(b, e);
        } else if ((unsigned char) *s < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", *s);
            s_puts(b, e);
        } else {
            s_put(b, s, 1);
        }
    }
    s_puts(b, "\"");
}

static int
s_cmp_keys(const void *x, const void *y)
{
    return strcmp(**(const char *const *const *) x, **(const char *const *const *) y);
}

static void
s_canon(s_buf_t *b, yajl_val v)
{
    if (!v || YAJL_IS_NULL(v)) {
        s_puts(b, "null");
    } else if (YAJL_IS_TRUE(v)) {
        s_puts(b, "true");
    } else if (YAJL_IS_FALSE(v)) {
        s_puts(b, "false");
    } else if (YAJL_IS_STRING(v)) {
        s_str(b, YAJL_GET_STRING(v));
    } else if (YAJL_IS_NUMBER(v)) {
        char num[64];
        snprintf(num, sizeof num, "%.17g", strtod(YAJL_GET_NUMBER(v), NULL));
        s_puts(b, num);
    } else if (YAJL_IS_ARRAY(v)) {
        s_puts(b, "[");
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                s_puts(b, ",");
            s_canon(b, v->u.array.values[i]);
        }
        s_puts(b, "]");
    } else if (YAJL_IS_OBJECT(v)) {
        size_t n = v->u.object.len;
        const char **keys[n ? n : 1];
        for (size_t i = 0; i < n; i++)
            keys[i] = &v->u.object.keys[i];
        qsort(keys, n, sizeof keys[0], s_cmp_keys);
        s_puts(b, "{");
        for (size_t i = 0; i < n; i++) {
            size_t idx = (size_t) (keys[i] - v->u.object.keys);
            if (i)
                s_puts(b, ",");
            s_str(b, v->u.object.keys[idx]);
            s_puts(b, ":");
            s_canon(b, v->u.object.values[idx]);
        }
        s_puts(b, "}");
    }
}

static int
s_cmp_lines(const void *x, const void *y)
{
    return strcmp(*(char *const *) x, *(char *const *) y);
}

char *
sl_h_canonical_samples(const char *jsonl, const char *const *fields)
{
    size_t cap = 1024, n = 0;
    char **lines = malloc(cap * sizeof *lines);
    const char *p = jsonl;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen(p);
        if (len) {
            char *line = strndup(p, len);
            char err[128];
            yajl_val v = yajl_tree_parse(line, err, sizeof err);
            s_buf_t b = { 0 };
            s_puts(&b, "{");
            for (size_t i = 0; fields[i]; i++) {
                const char *path[] = { fields[i], NULL };
                if (i)
                    s_puts(&b, ",");
                s_str(&b, fields[i]);
                s_puts(&b, ":");
                s_canon(&b, v ? yajl_tree_get(v, path, yajl_t_any) : NULL);
            }
            s_puts(&b, "}");
            if (!v)
                s_puts(&b, " (unparseable line)");
            yajl_tree_free(v);
            free(line);
            if (n == cap)
                lines = realloc(lines, (cap *= 2) * sizeof *lines);
            lines[n++] = b.s;
        }
        p += len + (nl ? 1 : 0);
    }
    qsort(lines, n, sizeof *lines, s_cmp_lines);
    s_buf_t out = { 0 };
    s_puts(&out, "");
    for (size_t i = 0; i < n; i++) {
        s_puts(&out, lines[i]);
        s_puts(&out, "\n");
        free(lines[i]);
    }
    free(lines);
    return out.s;
}

int
sl_h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *) &sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int
s_port_answers(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

pid_t
sl_h_memcached_start(int port)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        struct passwd *pw = getpwuid(getuid());
        execl("/usr/bin/memcached", "memcached", "-l", "127.0.0.1", "-p", p, "-U", "0",
              "-u", pw ? pw->pw_name : "root", (char *) NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (s_port_answers(port))
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        sl_h_sleep_ms(10);
    }
    sl_h_kill(pid);
    return -1;
}

void
sl_h_kill(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

void
sl_h_crash(sl_h_agent_t *a)
{
    if (a->shm) {
        int n = (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
        for (int i = 0; i < n; i++) {
            int32_t pid = atomic_load(&a->shm->slots[i].pid);
            if (pid > 0)
                kill(pid, SIGKILL);
        }
    }
    sl_h_kill(a->pid);
    a->pid = 0;
}

/* ---- private RabbitMQ nodes (tools/rabbitmq-node) ---- */

static void
s_rabbit_copy(char *dst, size_t len, const char *v)
{
    snprintf(dst, len, "%s", v);
}

/* Fills r from <dir>/node.env (KEY=VALUE lines). 0, or -1. */
static int
s_rabbit_read_env(sl_h_rabbit_t *r)
{
    char path[400];
    snprintf(path, sizeof path, "%s/node.env", r->dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(r->err, sizeof r->err, "no %s", path);
        return -1;
    }
    r->amqps_port = 0;
    r->ca_file[0] = r->client_cert[0] = r->client_key[0] = r->other_ca_file[0] = '\0';
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        if (strcmp(k, "AMQP_PORT") == 0)
            r->amqp_port = atoi(v);
        else if (strcmp(k, "AMQPS_PORT") == 0)
            r->amqps_port = atoi(v);
        else if (strcmp(k, "EPMD_PORT") == 0)
            r->epmd_port = atoi(v);
        else if (strcmp(k, "DIST_PORT") == 0)
            r->dist_port = atoi(v);
        else if (strcmp(k, "EPMD_PID") == 0)
            r->epmd_pid = (pid_t) atoi(v);
        else if (strcmp(k, "RMQ_PID") == 0)
            r->rmq_pid = (pid_t) atoi(v);
        else if (strcmp(k, "BEAM_PID") == 0)
            r->beam_pid = (pid_t) atoi(v);
        else if (strcmp(k, "NODENAME") == 0)
            s_rabbit_copy(r->nodename, sizeof r->nodename, v);
        else if (strcmp(k, "URL") == 0)
            s_rabbit_copy(r->url, sizeof r->url, v);
        else if (strcmp(k, "CA_FILE") == 0)
            s_rabbit_copy(r->ca_file, sizeof r->ca_file, v);
        else if (strcmp(k, "CLIENT_CERT") == 0)
            s_rabbit_copy(r->client_cert, sizeof r->client_cert, v);
        else if (strcmp(k, "CLIENT_KEY") == 0)
            s_rabbit_copy(r->client_key, sizeof r->client_key, v);
        else if (strcmp(k, "OTHER_CA_FILE") == 0)
            s_rabbit_copy(r->other_ca_file, sizeof r->other_ca_file, v);
    }
    fclose(f);
    if (r->amqp_port <= 0 || r->beam_pid <= 0) {
        snprintf(r->err, sizeof r->err, "%s has no AMQP_PORT or BEAM_PID", path);
        return -1;
    }
    return 0;
}

/* Runs tools/rabbitmq-node <cmd> <dir> <args>, its output in
 * <dir>/rabbitmq-node.out; on failure the output's end goes to r->err and
 * stderr. 0 or -1. */
static int
s_rabbit_tool(sl_h_rabbit_t *r, const char *cmd, const char *args)
{
    int st = sl_h_run("'%s/tools/rabbitmq-node' %s '%s' %s > '%s/rabbitmq-node.out' 2>&1",
                      SL_SRCDIR, cmd, r->dir, args ? args : "", r->dir);
    if (st == 0)
        return 0;
    char path[400];
    snprintf(path, sizeof path, "%s/rabbitmq-node.out", r->dir);
    size_t len = 0;
    char *out = sl_h_slurp(path, &len);
    const char *tail = out ? out : "(no output)";
    if (out && len > 800)
        tail = out + len - 800;
    snprintf(r->err, sizeof r->err, "tools/rabbitmq-node %s %s failed (status %d): %s", cmd,
             r->dir, st, tail);
    fprintf(stderr, "%s\n", r->err);
    free(out);
    return -1;
}

int
sl_h_rabbit_start(sl_h_rabbit_t *r, const char *dir, int tls)
{
    memset(r, 0, sizeof *r);
    if (dir) {
        snprintf(r->dir, sizeof r->dir, "%s", dir);
        if (sl_h_run("mkdir -p '%s'", r->dir) != 0) {
            snprintf(r->err, sizeof r->err, "cannot create %s", r->dir);
            return -1;
        }
    } else {
        snprintf(r->dir, sizeof r->dir, "/tmp/sluice-rmq-XXXXXX");
        if (!mkdtemp(r->dir)) {
            snprintf(r->err, sizeof r->err, "mkdtemp: %s", strerror(errno));
            return -1;
        }
        r->made_dir = 1;
    }
    if (s_rabbit_tool(r, "start", tls ? "--tls" : "") != 0)
        return -1;
    return s_rabbit_read_env(r);
}

int
sl_h_rabbit_stop(sl_h_rabbit_t *r)
{
    if (!r->dir[0])
        return -1;
    int rc = s_rabbit_tool(r, "stop", NULL);
    r->beam_pid = r->rmq_pid = r->epmd_pid = 0;
    return rc;
}

int
sl_h_rabbit_restart(sl_h_rabbit_t *r, int down_ms)
{
    char args[64];
    snprintf(args, sizeof args, "--down %.3f", down_ms / 1000.0);
    if (s_rabbit_tool(r, "restart", args) != 0)
        return -1;
    return s_rabbit_read_env(r);
}

/* Sums (or finds) queue rows of list_queues: column col of 3 (ready,
 * unacked, consumers). */
static int
s_rabbit_list_queues(sl_h_rabbit_t *r, const char *queue, long v[3])
{
    char path[400];
    snprintf(path, sizeof path, "%s/list_queues.out", r->dir);
    v[0] = v[1] = v[2] = 0;
    int st = sl_h_run("'%s/tools/rabbitmq-node' ctl '%s' -q --no-table-headers list_queues "
                      "name messages_ready messages_unacknowledged consumers > '%s' 2>&1",
                      SL_SRCDIR, r->dir, path);
    char *out = sl_h_slurp(path, NULL);
    if (st != 0 || !out) {
        snprintf(r->err, sizeof r->err, "rabbitmqctl list_queues failed (status %d): %.600s", st,
                 out ? out : "(no output)");
        free(out);
        return -1;
    }
    int found = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char name[256];
        long a, b, c;
        if (sscanf(l, "%255s %ld %ld %ld", name, &a, &b, &c) != 4)
            continue;
        if (queue && strcmp(name, queue) != 0)
            continue;
        v[0] += a;
        v[1] += b;
        v[2] += c;
        found = 1;
    }
    free(out);
    if (queue && !found) {
        snprintf(r->err, sizeof r->err, "no queue %s on %s", queue, r->nodename);
        return -1;
    }
    return 0;
}

int
sl_h_rabbit_queue_depth(sl_h_rabbit_t *r, const char *queue, long *ready, long *unacked)
{
    long v[3];
    int rc = s_rabbit_list_queues(r, queue, v);
    if (ready)
        *ready = v[0];
    if (unacked)
        *unacked = v[1];
    return rc;
}

int
sl_h_rabbit_queue_consumers(sl_h_rabbit_t *r, const char *queue, long *consumers)
{
    long v[3];
    int rc = s_rabbit_list_queues(r, queue, v);
    if (consumers)
        *consumers = v[2];
    return rc;
}

void
sl_h_rabbit_cleanup(sl_h_rabbit_t *r)
{
    if (!r->dir[0])
        return;
    /* also after a start that failed half-way: stop is idempotent and
     * works from whatever node.env says was started */
    char env[400];
    snprintf(env, sizeof env, "%s/node.env", r->dir);
    if (r->beam_pid > 0 || r->rmq_pid > 0 || r->epmd_pid > 0 || access(env, F_OK) == 0)
        sl_h_rabbit_stop(r);
    if (r->made_dir && !getenv("SLUICE_KEEP_TEST_DIRS"))
        sl_h_run("rm -rf '%s'", r->dir);
    r->dir[0] = '\0';
}

void
sl_h_write_basic(sl_h_agent_t *a, const char *sources, int ingest, int pipeline,
                 int partitions, const char *extra)
{
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\n"
             "workers: {ingest: %d, pipeline: %d}\n"
             "partitions: %d\n"
             "shutdown_grace: 10\n"
             "sources:\n%s"
             "ceilometer:\n"
             "  pipeline: pipeline.yaml\n"
             "  meters: %s/conf/meters.yaml\n"
             "%s",
             a->dir, ingest, pipeline, partitions, sources, SL_SRCDIR, extra ? extra : "");
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[1024];
    snprintf(pipe, sizeof pipe,
             "sources:\n"
             "  - name: meter_source\n"
             "    meters: ['*']\n"
             "    sinks: [meter_sink]\n"
             "sinks:\n"
             "  - name: meter_sink\n"
             "    publishers: ['file://%s/samples.jsonl']\n", a->dir);
    sl_h_write(a, "pipeline.yaml", pipe);
}

void
sl_h_write_stateful(sl_h_agent_t *a, const char *input, int ingest, int pipeline, int rate,
                    int unit_conversion)
{
    char cfg[2048], src[512];
    if (rate)
        snprintf(src, sizeof src, "{type: file, path: %s, rate: %d}", input, rate);
    else
        snprintf(src, sizeof src, "{type: file, path: %s}", input);
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\n"
             "workers: {ingest: %d, pipeline: %d}\n"
             "partitions: 16\n"
             "shutdown_grace: 20\n"
             "sources: [%s]\n"
             "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n",
             a->dir, ingest, pipeline, src, SL_SRCDIR);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[4096];
    snprintf(pipe, sizeof pipe,
             "sources:\n"
             "  - {name: all, meters: ['*'], sinks: [roc, delta, agg]}\n"
             "sinks:\n"
             "  - name: roc\n"
             "    reorder_window: 3000\n"
             "    transformers:\n"
             "      - name: rate_of_change\n"
             "        parameters:\n"
             "          target: {name: rate, unit: '/s', type: gauge}\n"
             "%s"
             "    publishers: ['file://%s/roc.jsonl']\n"
             "  - name: delta\n"
             "    reorder_window: 3000\n"
             "    transformers:\n"
             "      - {name: delta, parameters: {target: {name: change}}}\n"
             "    publishers: ['file://%s/delta.jsonl']\n"
             "  - name: agg\n"
             "    reorder_window: 3000\n"
             "    transformers:\n"
             "      - {name: aggregator, parameters: {size: 7}}\n"
             "    publishers: ['file://%s/agg.jsonl']\n",
             unit_conversion ? "      - name: unit_conversion\n"
                               "        parameters:\n"
                               "          target: {name: rate.per_min, unit: '/min', "
                               "scale: 'volume * 60'}\n" : "",
             a->dir, a->dir, a->dir);
    sl_h_write(a, "pipeline.yaml", pipe);
}

int
sl_h_input_done(sl_h_agent_t *a)
{
    int n = (int) atomic_load(&a->shm->n_ingest);
    return sl_h_total(a, SL_C_source_eof) == (uint64_t) n &&
           sl_h_total(a, SL_C_samples_received) == sl_h_total(a, SL_C_samples_routed);
}

char *
sl_h_stateful_outputs(sl_h_agent_t *a, const char *const *fields, const char *tag)
{
    static const char *const sinks[] = { "roc", "delta", "agg", NULL };
    size_t cap = 1 << 20, len = 0;
    char *all = malloc(cap);
    all[0] = '\0';
    for (int k = 0; sinks[k]; k++) {
        char file[64];
        snprintf(file, sizeof file, "%s.jsonl", sinks[k]);
        char *raw = sl_h_slurp(sl_h_path(a, file), NULL);
        ck_assert_msg(raw && *raw, "%s: sink %s published nothing", tag, sinks[k]);
        char *canon = sl_h_canonical_samples(raw, fields);
        size_t need = len + strlen(canon) + 64;
        if (need > cap)
            all = realloc(all, cap = need * 2);
        len += (size_t) sprintf(all + len, "== %s\n%s", sinks[k], canon);
        free(canon);
        free(raw);
    }
    return all;
}

size_t
sl_h_count_lines(const char *path)
{
    char *buf = sl_h_slurp(path, NULL);
    size_t n = 0;
    for (char *p = buf; p && *p; p++)
        n += *p == '\n';
    free(buf);
    return n;
}

void
sl_h_write_corpus(const char *path, int copies)
{
    ck_assert_int_eq(sl_h_run("for i in $(seq %d); do cat %s/tests/data/corpus.jsonl; done > %s",
                              copies, SL_SRCDIR, path), 0);
}

size_t
sl_h_corpus_samples(int copies)
{
    return (size_t) copies * sl_h_count_lines(SL_SRCDIR "/tests/data/expected.samples.jsonl");
}

int
sl_h_samples_are_corpus(sl_h_agent_t *a, int copies, const char *const *fields)
{
    char *got_raw = sl_h_slurp(sl_h_path(a, "samples.jsonl"), NULL);
    char *one = sl_h_slurp(SL_SRCDIR "/tests/data/expected.samples.jsonl", NULL);
    ck_assert_ptr_nonnull(one);
    size_t one_len = strlen(one);
    char *want_raw = malloc(one_len * (size_t) copies + 1);
    for (int i = 0; i < copies; i++)
        memcpy(want_raw + (size_t) i * one_len, one, one_len);
    want_raw[one_len * (size_t) copies] = '\0';
    char *got = sl_h_canonical_samples(got_raw ? got_raw : "", fields);
    char *want = sl_h_canonical_samples(want_raw, fields);
    int same = strcmp(got, want) == 0;
    free(got);
    free(want);
    free(got_raw);
    free(want_raw);
    free(one);
    return same;
}
