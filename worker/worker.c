#include "worker/worker.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/log.h"

volatile sig_atomic_t sl_worker_drain;
volatile sig_atomic_t sl_worker_stop;
volatile sig_atomic_t sl_worker_reopen;

static char *s_title_base;
static size_t s_title_len;

static void
s_on_signal(int sig)
{
    if (sig == SIGINT)
        sl_worker_stop = 1;
    else if (sig == SIGUSR1)
        sl_worker_reopen = 1;
    else
        sl_worker_drain = 1;
}

void
sl_worker_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
}

void
sl_worker_title_init(int argc, char **argv)
{
    /* The argv strings are contiguous; the title may use all of them. */
    if (argc < 1 || !argv[0])
        return;
    s_title_base = argv[0];
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    s_title_len = (size_t) (end - argv[0]);
}

void
sl_worker_title(const char *fmt, ...)
{
    char title[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(title, sizeof title, fmt, ap);
    va_end(ap);
    char comm[16];
    snprintf(comm, sizeof comm, "%s", title + (strncmp(title, "sluice: ", 8) ? 0 : 8));
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    if (s_title_base && s_title_len > 1) {
        memset(s_title_base, 0, s_title_len);
        snprintf(s_title_base, s_title_len, "%s", title);
    }
}

int
sl_worker_orphaned(const sl_worker_ctx_t *ctx)
{
    /* not getppid() == 1: under a subreaper an orphan's parent is another process */
    return ctx->supervisor > 0 && getppid() != ctx->supervisor;
}

void
sl_worker_beat(sl_worker_ctx_t *ctx)
{
    if (sl_worker_reopen) {
        sl_worker_reopen = 0;
        sl_log_reopen();
    }
    uint64_t now = sl_now_ms();
    atomic_store_explicit(&ctx->slot->heartbeat_ms, now, memory_order_relaxed);
    if (now - ctx->trimmed_ms >= SL_WORKER_TRIM_MS) {
        ctx->trimmed_ms = now;
        malloc_trim(0);
    }
}

static void *
s_zterm_main(void *zctx)
{
    zmq_ctx_term(zctx);
    return NULL;
}

int
sl_worker_zmq_term(void *zctx, unsigned ms)
{
    pthread_t th;
    if (!zctx)
        return 0;
    if (pthread_create(&th, NULL, s_zterm_main, zctx) != 0)
        return zmq_ctx_term(zctx) < 0 ? -1 : 0;   /* no thread to spare: unbounded */
    struct timespec until = sl_deadline(CLOCK_MONOTONIC, ms);
    if (pthread_clockjoin_np(th, NULL, CLOCK_MONOTONIC, &until) == 0)
        return 0;
    pthread_detach(th);   /* it stays blocked; the process exits without it */
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    sl_warn("ZeroMQ had not finished closing this worker's sockets %u ms after they were "
            "closed (a libzmq %d.%d.%d shutdown race): exiting without it; what was delivered "
            "and confirmed is unchanged (if this recurs, report it with the libzmq version)",
            ms, major, minor, patch);
    return -1;
}

void
sl_worker_set_state(sl_worker_ctx_t *ctx, int state)
{
    atomic_store(&ctx->slot->state, state);
}

void
sl_worker_partition_endpoint(const sl_conf_t *conf, unsigned sink, unsigned p,
                             char *buf, size_t len)
{
    snprintf(buf, len, "ipc://%s/%s.%u", conf->run_dir, sl_conf_sink_label(conf, sink), p);
}

void
sl_worker_host_id(char *buf, size_t len)
{
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    host[24] = '\0';
    for (char *c = host; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
            *c = '-';
    snprintf(buf, len, "%s", host[0] ? host : "host");
}

/* A pipeline worker's nice value: the supervisor's plus pipeline_nice
 * (conf.h sl_conf_pipeline_nice), set before any thread starts so that
 * its ZeroMQ and publisher threads have it too. Raising it needs no
 * privilege; a worker forked again starts from the supervisor's. */
static void
s_pipeline_nice(const sl_worker_ctx_t *ctx)
{
    int add = sl_conf_pipeline_nice(ctx->conf);
    if (add <= 0)
        return;
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    if (base == -1 && errno) {
        sl_warn("pipeline_nice: cannot read this worker's nice value (%s); it runs at the "
                "supervisor's", strerror(errno));
        return;
    }
    int want = base + add > 19 ? 19 : base + add;
    if (setpriority(PRIO_PROCESS, 0, want) < 0)
        sl_warn("pipeline_nice: cannot set pipeline worker #%d's nice value to %d (%s); it "
                "runs at %d", ctx->index, want, strerror(errno), base);
    else
        sl_info("pipeline_nice: pipeline worker #%d runs at nice %d (%d + %d%s)", ctx->index,
                want, base, add, strcmp(ctx->conf->pipeline_nice_text, "auto") == 0
                ? ": auto, the workers outnumber the usable CPUs" : "");
}

void
sl_worker_place(const sl_worker_ctx_t *ctx, int is_ingest)
{
    if (!is_ingest)
        s_pipeline_nice(ctx);
    if (!ctx->conf->cpu_affinity)
        return;
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) < 0) {
        sl_warn("cpu_affinity: cannot read the CPU affinity mask (%s); this worker runs "
                "unpinned: set cpu_affinity: off to silence this", strerror(errno));
        return;
    }
    int n = CPU_COUNT(&allowed);
    if (n < 2)
        return;
    int want = (is_ingest ? ctx->index : ctx->conf->n_ingest + ctx->index) % n;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed) || seen++ != want)
            continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) < 0)
            sl_warn("cpu_affinity: cannot pin %s worker #%d to CPU %d (%s); it runs unpinned",
                    is_ingest ? "ingest" : "pipeline", ctx->index, cpu, strerror(errno));
        else
            sl_info("cpu_affinity: %s worker #%d runs on CPU %d", is_ingest ? "ingest" :
                    "pipeline", ctx->index, cpu);
        return;
    }
}
