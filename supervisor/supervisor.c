#include "supervisor/supervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/promtext.h"
#include "common/stats.h"
#include "supervisor/ctl.h"
#include "supervisor/notify.h"
#include "worker/output.h"
#include "worker/publishers/gnocchi.h"
#include "worker/publishers/notifier.h"
#include "worker/publishers/publisher.h"
#include "worker/publishers/websocket.h"
#include "worker/transform.h"
#include "worker/worker.h"
#include "supervisor/metrics.h"

#define S_BACKOFF_START_MS 100
#define S_FAST_CRASH_MS 10000

typedef struct {
    pid_t    pid;
    int      role, index;
    uint64_t started;          /* monotonic ms */
    uint64_t respawn_at;       /* monotonic ms; 0 = not waiting */
    unsigned fast_crashes;
    int      fatal;
} s_child_t;

typedef struct {
    const sl_supervisor_opts_t *opts;
    sl_conf_t *conf;
    sl_shm_t  *shm;
    char       shm_name[64];
    s_child_t  children[SL_MAX_WORKERS];
    int        n_children;
    unsigned   slots_used;     /* slots any generation gave a worker: the others were never
                                * written (and never read here: shared-memory pages untouched
                                * are not allocated, 106 KB per slot x SL_MAX_WORKERS) */
    uint32_t   generation;
    int        exit_code;
    int        deferred_sig;   /* taken while stopping workers; the main loop acts on it */
    int        pidfile_fd;     /* holds the lock that makes this run_dir ours */
    int        sigfd;          /* signalfd of the blocked signals (s_take_signal) */
    char      *pidfile;        /* the path we locked (a reload cannot change it) */
    sl_metrics_t *metrics;     /* /metrics, /healthz and the retired totals */
    sl_ctl_t  *ctl;            /* <run_dir>/control.sock (supervisor/ctl.h) */
    /* Runtime worker counts (TTIN/TTOU, sluice-ctl workers), by role
     * (index SL_ROLE_*): 0 = none. An override holds across reloads while
     * the configuration still says what it said when the override was set
     * (file_count then, in override_base); a reload whose file says another
     * count drops it: the operator's edit wins. A restart drops it too. */
    int        override[3], override_base[3], file_count[3];
    int        ttin;           /* TTIN minus TTOU taken and not acted on yet */
} s_sup_t;

/* Line of publisher k of sink i in the pipeline file (the sink's line if
 * the document does not say), so that an error points at the URL itself. */
static int
s_publisher_line(const sl_pipeline_t *p, size_t i, size_t k)
{
    const sl_ynode_t *sinks = p->doc && p->doc->root ? sl_ynode_get(p->doc->root, "sinks") : NULL;
    for (size_t j = 0; sinks && sinks->kind == SL_Y_SEQ && j < sinks->n; j++) {
        const sl_ynode_t *name = sl_ynode_get(sinks->items[j], "name");
        if (!name || name->kind != SL_Y_SCALAR || strcmp(name->value, p->sinks[i].name) != 0)
            continue;
        const sl_ynode_t *pubs = sl_ynode_get(sinks->items[j], "publishers");
        if (pubs && pubs->kind == SL_Y_SEQ && k < pubs->n)
            return pubs->items[k]->line;
        if (pubs && pubs->kind == SL_Y_SCALAR)
            return pubs->line;
        break;
    }
    return p->sinks[i].line;
}

static int
s_validate_publishers(sl_conf_t *conf, char *err, size_t errlen)
{
    for (int ev = 0; ev < 2; ev++) {
        const sl_pipeline_t *p = ev ? conf->event_pipeline : conf->pipeline;
        for (size_t i = 0; p && i < p->n_sinks; i++) {
            if (ev && p->sinks[i].n_transformers)
                return sl_yerr_at(p->doc->file, p->sinks[i].transformers[0].line, err, errlen,
                                  "event sink '%s': events take no transformers",
                                  p->sinks[i].name);
            for (size_t k = 0; k < p->sinks[i].n_publishers; k++) {
                char perr[400];
                char *url = sl_conf_expand(conf, p->sinks[i].publishers[k]);
                int rc = ev ? sl_publisher_check_events(url, perr, sizeof perr)
                            : sl_publisher_check(url, perr, sizeof perr);
                if (rc == 0)
                    rc = sl_output_check_forward(conf, url, perr, sizeof perr);
                free(url);
                if (rc < 0)
                    return sl_yerr_at(p->doc->file, s_publisher_line(p, i, k), err, errlen,
                                      "sink '%s': %s", p->sinks[i].name, perr);
            }
        }
    }
    return 0;
}

int
sl_supervisor_validate(sl_conf_t *conf, char *err, size_t errlen)
{
    if (sl_transform_check(conf->pipeline, &conf->warn, err, errlen) < 0)
        return -1;
    /* notifier:// without a host publishes to transport_url; the workers
     * forked from here inherit it (a rejected reload puts the old back) */
    char *before = sl_publisher_notifier_transport_url();
    sl_publisher_notifier_set_transport_url(conf->transport_url);
    /* websocket:// finds its profiles= in this conf's forward: section */
    const sl_conf_t *ws_before = sl_publisher_websocket_conf();
    sl_publisher_websocket_set_conf(conf);
    /* gnocchi://'s relative resources_definition_file is in sluice.yaml's
     * directory (the same file on every reload: nothing to put back) */
    sl_publisher_gnocchi_set_conf_file(conf->file);
    int rc = s_validate_publishers(conf, err, errlen);
    if (rc == 0 && sl_conf_n_sinks(conf) * conf->partitions > 65536)
        rc = sl_yerr_at(conf->file, 1, err, errlen,
                        "%zu sinks x %u partitions is more than 65536 partitions in all",
                        sl_conf_n_sinks(conf), conf->partitions);
    if (rc < 0) {
        sl_publisher_notifier_set_transport_url(before);
        sl_publisher_websocket_set_conf(ws_before);
    }
    free(before);
    return rc;
}

sl_conf_t *
sl_supervisor_load(const sl_supervisor_opts_t *o, char *err, size_t errlen)
{
    sl_conf_t *c = sl_conf_load(o->config_path, o->overrides, o->n_overrides, err, errlen);
    if (c && sl_supervisor_validate(c, err, errlen) < 0)
        sl_conf_destroy(&c);
    return c;
}

static size_t
s_lease_capacity(const sl_conf_t *c)
{
    /* Room for reloads that add sinks: as many sinks as allowed at this
     * partition count (a few hundred KiB at the defaults). */
    return sl_lease_table_size(SL_MAX_SINKS, c->partitions);
}

static int
s_mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* A directory of ours must not be group- or world-writable: one created
 * by an older sluiced under umask 000 is tightened. */
static void
s_tighten_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 022) && st.st_uid == geteuid() &&
        chmod(dir, st.st_mode & 0755) < 0)
        sl_warn("cannot remove group/other write permission from %s: %s", dir, strerror(errno));
}

/* <run_dir>/state holds transformer state between a partition's owners;
 * whatever a previous run left there is stale. Only called under the
 * pidfile lock: the state of a running agent is never touched. */
static void
s_clean_state_dir(const char *run_dir)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/state", run_dir);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        sl_warn("cannot create %s: %s; partitions will not keep transformer state when they "
                "move", dir, strerror(errno));
        return;
    }
    s_tighten_dir(dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
}

/* Takes the pidfile's lock and writes our pid into it; the fd, or -1 after
 * logging what to do.
 *
 * The lock, not the pid written in the file, says whether a supervisor
 * runs: the kernel drops it when its holder dies, however it dies, so a
 * pidfile left by a SIGKILLed supervisor is stale whatever pid it names
 * (even a live unrelated one), and two supervisors starting together
 * cannot both get it. It is an fcntl() record lock rather than flock()
 * because record locks are not inherited across fork(): the workers never
 * hold it, so it dies with the supervisor even while workers drain after
 * PR_SET_PDEATHSIG. The price of record locks: closing any fd of this file
 * in the supervisor drops the lock, so nothing else here opens it. */
static int
s_pidfile_lock(const char *path)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0) {
            sl_error("cannot open pidfile %s: %s (%s)", path, strerror(errno),
                     errno == ELOOP ? "it is a symbolic link; remove it"
                                    : "is its directory writable by this user?");
            return -1;
        }
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLK, &fl) < 0) {
            int e = errno;
            struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
            long pid = 0;
            if ((e == EAGAIN || e == EACCES) && fcntl(fd, F_GETLK, &who) == 0 &&
                who.l_type != F_UNLCK)
                pid = (long) who.l_pid;
            close(fd);
            if (e != EAGAIN && e != EACCES) {
                sl_error("cannot lock pidfile %s: %s (a file system without locks? put "
                         "run_dir and pidfile on a local file system such as /run)", path,
                         strerror(e));
                return -1;
            }
            if (pid > 0)
                sl_error("another sluiced (pid %ld) is running with pidfile %s; not starting. "
                         "Stop it first (kill -TERM %ld), or start this one with another "
                         "run_dir (-o run_dir=DIR)", pid, path, pid);
            else
                sl_error("another sluiced holds the lock of pidfile %s; not starting. Stop it "
                         "first, or start this one with another run_dir (-o run_dir=DIR)", path);
            return -1;
        }
        /* A supervisor that was stopping may have unlinked the file between
         * our open and our lock: then we would hold the lock of a file
         * nobody else can see. Start over on whatever the path is now. */
        struct stat mine, now;
        if (fstat(fd, &mine) < 0 || stat(path, &now) < 0 || mine.st_dev != now.st_dev ||
            mine.st_ino != now.st_ino) {
            close(fd);
            continue;
        }
        if ((mine.st_mode & 022) && fchmod(fd, mine.st_mode & 0755) < 0)
            sl_warn("cannot remove group/other write permission from %s: %s", path,
                    strerror(errno));
        /* Overwrite, then cut: a reader sees the old pid or ours, never an
         * empty file. */
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", (int) getpid());
        if (pwrite(fd, buf, (size_t) n, 0) != n || ftruncate(fd, n) < 0) {
            sl_error("cannot write pidfile %s: %s (is the file system full?)", path,
                     strerror(errno));
            unlink(path);
            close(fd);
            return -1;
        }
        return fd;
    }
    sl_error("pidfile %s keeps being replaced while we lock it (is another sluiced starting "
             "and stopping in a loop?); not starting", path);
    return -1;
}

/* Unlinks before closing: until the close drops the lock, a supervisor
 * starting now either fails to lock or finds the path gone and retries. */
static void
s_pidfile_release(s_sup_t *sv)
{
    if (sv->pidfile_fd < 0)
        return;
    unlink(sv->pidfile);
    close(sv->pidfile_fd);
    sv->pidfile_fd = -1;
    free(sv->pidfile);
    sv->pidfile = NULL;
}

/* Removes a region of our name that a supervisor killed without cleaning
 * up left behind; we hold the pidfile lock, so nobody else owns it. */
static void
s_remove_stale_shm(const char *name)
{
    char err[256];
    const sl_shm_t *old = sl_shm_attach(name, err, sizeof err);
    int32_t old_pid = old ? atomic_load(&old->supervisor_pid) : 0;
    sl_shm_unmap(old);
    if (sl_shm_unlink(name) == 0) {
        if (old_pid > 0)
            sl_warn("removed shared memory %s left by supervisor pid %d, which did not stop "
                    "cleanly", name, (int) old_pid);
        else
            sl_warn("removed stale shared memory %s", name);
    } else if (errno != ENOENT) {
        sl_warn("cannot remove stale shared memory %s: %s", name, strerror(errno));
    }
}

static void
s_publish_layout(s_sup_t *sv)
{
    sl_shm_t *shm = sv->shm;
    unsigned n_sinks = (unsigned) sl_conf_n_sinks(sv->conf);
    atomic_store(&shm->generation, sv->generation);
    atomic_store(&shm->n_sinks, (uint32_t) n_sinks);
    atomic_store(&shm->n_ingest, (uint32_t) sv->conf->n_ingest);
    atomic_store(&shm->n_pipeline, (uint32_t) sv->conf->n_pipeline);
    atomic_store(&shm->partitions, sv->conf->partitions);
    memset(shm->sink_names, 0, sizeof shm->sink_names);
    for (unsigned i = 0; i < n_sinks; i++)
        snprintf(shm->sink_names[i], SL_SINK_NAME_MAX, "%s", sl_conf_sink_label(sv->conf, i));
    sl_lease_table_init((char *) shm + shm->lease_offset, n_sinks,
                        sv->conf->partitions);
    /* Slots start from zero for each generation, so that the drain
     * accounting (frames sent vs received) compares like with like; a slot
     * no worker ever had is zero already. */
    for (unsigned i = 0; i < sv->slots_used && i < shm->n_slots; i++) {
        sl_slot_t *s = &shm->slots[i];
        memset((void *) s, 0, sizeof *s);
    }
    int n = 0;
    for (int i = 0; i < sv->conf->n_ingest; i++, n++) {
        sv->children[n] = (s_child_t) { .role = SL_ROLE_INGEST, .index = i, .respawn_at = 1 };
    }
    for (int j = 0; j < sv->conf->n_pipeline; j++, n++) {
        sv->children[n] = (s_child_t) { .role = SL_ROLE_PIPELINE, .index = j, .respawn_at = 1 };
    }
    if ((unsigned) n > sv->slots_used)
        sv->slots_used = (unsigned) n;
    for (int i = 0; i < n; i++) {
        atomic_store(&shm->slots[i].role, sv->children[i].role);
        atomic_store(&shm->slots[i].index, sv->children[i].index);
    }
    sv->n_children = n;
}

static void
s_spawn(s_sup_t *sv, int slot_index)
{
    s_child_t *ch = &sv->children[slot_index];
    sl_slot_t *slot = &sv->shm->slots[slot_index];
    pid_t ppid = getpid();
    /* STARTING before fork: the child moves it to RUNNING, never the reverse. */
    atomic_store(&slot->state, SL_WS_STARTING);
    atomic_store(&slot->heartbeat_ms, sl_now_ms());
    pid_t pid = fork();
    if (pid < 0) {
        sl_error("fork failed: %s; retrying in 1s", strerror(errno));
        ch->respawn_at = sl_now_ms() + 1000;
        return;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != ppid)
            _exit(0);
        close(sv->pidfile_fd);   /* the lock is the supervisor's alone (fcntl locks are not inherited) */
        close(sv->sigfd);
        sl_metrics_close_in_child(sv->metrics);
        sl_ctl_forget(sv->ctl);
        sl_worker_signals();
        int is_ingest = ch->role == SL_ROLE_INGEST;
        sl_log_set_role(is_ingest ? 'I' : 'P');
        sl_worker_title("sluice: %s #%d", is_ingest ? "ingest" : "pipeline", ch->index);
        sl_worker_ctx_t ctx = {
            .conf = sv->conf, .shm = sv->shm, .slot = slot, .slot_index = slot_index,
            .supervisor = ppid,
            .index = ch->index, .generation = sv->generation,
        };
        atomic_store(&slot->pid, (int32_t) getpid());
        atomic_store(&slot->generation, sv->generation);
        atomic_store(&slot->started_ms, sl_wall_ms());
        sl_worker_beat(&ctx);
        int rc = is_ingest ? sl_ingest_run(&ctx) : sl_pipeline_run(&ctx);
        atomic_store(&slot->state, SL_WS_EXITED);
        _exit(rc);
    }
    ch->pid = pid;
    ch->started = sl_now_ms();
    ch->respawn_at = 0;
    atomic_store(&slot->pid, (int32_t) pid);
    atomic_fetch_add(&sv->shm->sv[SL_SV_spawns], 1);
}

static int
s_find_child(s_sup_t *sv, pid_t pid)
{
    for (int i = 0; i < sv->n_children; i++)
        if (sv->children[i].pid == pid)
            return i;
    return -1;
}

/* What a dead worker's confirm=queued publishers held (their at_risk
 * gauges; a stop that drained them leaves 0), cleared so that it is
 * counted once. */
static uint64_t
s_fold_at_risk(sl_slot_t *slot)
{
    uint64_t n = 0;
    for (unsigned s = 0; s < SL_MAX_SINKS; s++)
        for (unsigned k = 0; k < SL_MAX_SINK_PUBLISHERS; k++)
            n += atomic_exchange(&slot->pub[s][k].c[SL_PC_at_risk], 0);
    return n;
}

/* Reaps exited children; schedules respawns unless stopping. Returns how
 * many children are still running. */
static int
s_reap(s_sup_t *sv, int stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        int i = s_find_child(sv, pid);
        if (i < 0)
            continue;
        s_child_t *ch = &sv->children[i];
        sl_slot_t *slot = &sv->shm->slots[i];
        const char *role = sl_role_name(ch->role);
        unsigned freed = sl_lease_release_all(sl_shm_leases(sv->shm), i);
        if (freed)
            atomic_fetch_add(&sv->shm->sv[SL_SV_leases_freed], freed);
        ch->pid = 0;
        atomic_store(&slot->pid, 0);
        atomic_store(&slot->state, SL_WS_EXITED);
        uint64_t lost = s_fold_at_risk(slot);
        if (lost) {
            atomic_fetch_add(&sv->shm->sv[SL_SV_lost_in_crash], lost);
            sl_error("%s worker #%d (pid %d) held %llu records its confirm=queued publishers "
                     "had already confirmed to their source: they are lost (counted in "
                     "lost_in_crash; use confirm=delivered where that matters)", role,
                     ch->index, (int) pid, (unsigned long long) lost);
        }
        /* its publisher counters restart from 0 with the next worker */
        sl_metrics_fold(sv->metrics, (unsigned) i, SL_PROMTEXT_FOLD_PUB);
        int crashed = 0;
        if (WIFSIGNALED(status)) {
            crashed = 1;
            sl_log(stopping ? SL_LOG_INFO : SL_LOG_ERROR, "%s worker #%d (pid %d) killed by signal %d (%s)%s",
                   role, ch->index, (int) pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
                   freed ? "; its leases were freed" : "");
        } else if (WEXITSTATUS(status) == 2) {
            ch->fatal = 1;
            sl_error("%s worker #%d exited with a fatal configuration error (code 2); not "
                     "respawning: fix the configuration and restart", role, ch->index);
        } else if (WEXITSTATUS(status) != 0) {
            crashed = 1;
            sl_error("%s worker #%d (pid %d) exited with code %d", role, ch->index, (int) pid,
                     WEXITSTATUS(status));
        } else if (!stopping) {
            crashed = 1;
            sl_warn("%s worker #%d (pid %d) exited unexpectedly", role, ch->index, (int) pid);
        }
        if (crashed && !stopping)
            atomic_fetch_add(&sv->shm->sv[SL_SV_crashes], 1);
        if (stopping || ch->fatal)
            continue;
        uint64_t now = sl_now_ms();
        if (now - ch->started < S_FAST_CRASH_MS)
            ch->fast_crashes++;
        else
            ch->fast_crashes = 0;
        uint64_t delay = S_BACKOFF_START_MS;
        for (unsigned k = 1; k < ch->fast_crashes && delay < (uint64_t) sv->conf->respawn_max_backoff * 1000; k++)
            delay *= 2;
        if (delay > (uint64_t) sv->conf->respawn_max_backoff * 1000)
            delay = (uint64_t) sv->conf->respawn_max_backoff * 1000;
        if (ch->fast_crashes > 3)
            sl_warn("%s worker #%d is crashing repeatedly (forking too fast): next respawn in %llu ms",
                    role, ch->index, (unsigned long long) delay);
        ch->respawn_at = now + delay;
        atomic_store(&slot->state, SL_WS_BACKOFF);
        atomic_fetch_add(&slot->restarts, 1);
    }
    int running = 0;
    for (int i = 0; i < sv->n_children; i++)
        running += sv->children[i].pid > 0;
    return running;
}

static void
s_signal_role(s_sup_t *sv, int role, int sig)
{
    for (int i = 0; i < sv->n_children; i++)
        if (sv->children[i].pid > 0 && (role == 0 || sv->children[i].role == role))
            kill(sv->children[i].pid, sig);
}

static int
s_running_role(s_sup_t *sv, int role)
{
    int n = 0;
    for (int i = 0; i < sv->n_children; i++)
        n += sv->children[i].pid > 0 && sv->children[i].role == role;
    return n;
}

static int
s_signal_rank(int sig)
{
    switch (sig) {
    case SIGINT: return 4;
    case SIGTERM: case SIGQUIT: return 3;
    case SIGHUP: return 2;
    case SIGUSR1: return 1;
    default: return 0;
    }
}

/* The supervisor's one wait: up to ms for a signal, serving /metrics
 * meanwhile (one poll on the signalfd and libmicrohttpd's epoll
 * descriptor, so that a signal ends the wait at once and a scrape is
 * answered during a long drain or reload too). The signal taken, or 0. */
static int
s_take_signal(s_sup_t *sv, int ms)
{
    struct pollfd p[2] = { { .fd = sv->sigfd, .events = POLLIN },
                           { .fd = sl_metrics_fd(sv->metrics), .events = POLLIN } };
    if (poll(p, p[1].fd >= 0 ? 2 : 1, sl_metrics_timeout_ms(sv->metrics, ms)) < 0 &&
        errno != EINTR) {
        struct timespec ts = { 0, (long) ms * 1000000 };   /* no busy loop on ENOMEM */
        nanosleep(&ts, NULL);
    }
    sl_metrics_run(sv->metrics);
    struct signalfd_siginfo si;
    if (read(sv->sigfd, &si, sizeof si) == (ssize_t) sizeof si)
        return (int) si.ssi_signo;
    return 0;
}

/* A signal taken while the supervisor waits inside a stop or a reload
 * (s_take_signal consumes it) is kept for the main loop, so that a SIGTERM
 * during a reload is not lost. A fast stop outranks a graceful one, which
 * outranks a reload, which outranks a log reopen. */
static void
s_defer_signal(s_sup_t *sv, int sig)
{
    if (sig == SIGTTIN || sig == SIGTTOU) {   /* each one counts: +1 / -1 ingest worker */
        sv->ttin += sig == SIGTTIN ? 1 : -1;
        return;
    }
    int rank = s_signal_rank(sig);
    if (rank > s_signal_rank(sv->deferred_sig))
        sv->deferred_sig = sig;
}

/* Waits (taking signals) until no child of role runs or the deadline. */
static void
s_wait_role(s_sup_t *sv, int role, uint64_t deadline)
{
    while (s_running_role(sv, role) && sl_now_ms() < deadline) {
        int sig = s_take_signal(sv, 20);
        if (sig == SIGINT) {   /* hurry this stop now; and stop for good after a reload */
            s_signal_role(sv, 0, SIGINT);
            deadline = sl_now_ms() + 2000;
        }
        if (sig > 0)
            s_defer_signal(sv, sig);
        s_reap(sv, 1);
        sl_notify_tick(sv->shm);   /* watchdog pings through a long drain */
    }
}

/* Graceful stop of every worker: ingest first (they send what they hold),
 * then pipeline (they process it all, flush, release). fast = SIGINT. */
static void
s_stop_workers(s_sup_t *sv, int fast)
{
    atomic_store(&sv->shm->stopping, 1);
    for (int i = 0; i < sv->n_children; i++)
        sv->children[i].respawn_at = 0;
    uint64_t deadline = sl_now_ms() + (fast ? 2000 : (uint64_t) sv->conf->shutdown_grace * 1000);
    if (fast) {
        s_signal_role(sv, 0, SIGINT);
        s_wait_role(sv, SL_ROLE_INGEST, deadline);
        s_wait_role(sv, SL_ROLE_PIPELINE, deadline);
    } else {
        s_signal_role(sv, SL_ROLE_INGEST, SIGTERM);
        s_wait_role(sv, SL_ROLE_INGEST, deadline);
        s_signal_role(sv, SL_ROLE_PIPELINE, SIGTERM);
        s_wait_role(sv, SL_ROLE_PIPELINE, deadline + 2000);
    }
    if (s_reap(sv, 1)) {
        sl_warn("workers still running after the grace period: killing them");
        s_signal_role(sv, 0, SIGKILL);
        while (s_reap(sv, 1)) {
            struct timespec ts = { 0, 10 * 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    atomic_store(&sv->shm->stopping, 0);
}

static uint64_t s_stale_ms(const sl_conf_t *c);

/* Applies the runtime worker counts to a configuration just loaded (see
 * s_sup_t.override); logs an override the file's new count dropped. */
static void
s_apply_overrides(s_sup_t *sv, sl_conf_t *next)
{
    int *count[3] = { NULL, &next->n_ingest, &next->n_pipeline };
    for (int r = SL_ROLE_INGEST; r <= SL_ROLE_PIPELINE; r++) {
        sv->file_count[r] = *count[r];
        if (!sv->override[r])
            continue;
        if (*count[r] != sv->override_base[r]) {
            sl_info("the configuration now says %d %s workers (it said %d): dropping the runtime "
                    "count %d", *count[r], sl_role_name(r), sv->override_base[r],
                    sv->override[r]);
            sv->override[r] = 0;
            continue;
        }
        *count[r] = sv->override[r];
    }
    if (sv->ctl)
        sl_ctl_set_overrides(sv->ctl, sv->override[SL_ROLE_INGEST],
                             sv->override[SL_ROLE_PIPELINE]);
}

/* 0 when the new configuration runs, or -1 with why it was rejected (the
 * old one keeps running). */
static int
s_reload(s_sup_t *sv, const char *cause, char *why, size_t whylen)
{
    char err[1024];
    sl_info("%s: reloading configuration %s", cause, sv->opts->config_path ? sv->opts->config_path
                                                                            : "<embedded>");
    sl_notify_reloading();   /* systemd: RELOADING=1, READY=1 once the workers run */
    sl_conf_t *next = sl_supervisor_load(sv->opts, err, sizeof err);
    if (next)
        s_apply_overrides(sv, next);
    if (next && sl_lease_table_size((unsigned) sl_conf_n_sinks(next), next->partitions) >
                    sv->shm->lease_capacity) {
        snprintf(err, sizeof err, "partitions grew beyond what the shared region was sized "
                 "for at start; restart sluiced to apply");
        sl_conf_destroy(&next);
    }
    if (next && strcmp(next->run_dir, sv->conf->run_dir) != 0) {
        snprintf(err, sizeof err, "run_dir cannot change on reload; restart sluiced to apply");
        sl_conf_destroy(&next);
    }
    if (next && strcmp(next->pidfile, sv->pidfile) != 0) {
        snprintf(err, sizeof err, "pidfile cannot change on reload (this supervisor holds the "
                 "lock of %s); restart sluiced to apply", sv->pidfile);
        sl_conf_destroy(&next);
    }
    if (!next) {
        atomic_fetch_add(&sv->shm->sv[SL_SV_reload_failures], 1);
        sl_error("reload rejected, still running the previous configuration: %s", err);
        if (why)
            snprintf(why, whylen, "%s", err);
        return -1;
    }
    atomic_store(&sv->shm->handoff, 1);
    s_stop_workers(sv, 0);
    atomic_store(&sv->shm->handoff, 0);
    sl_conf_t *old = sv->conf;
    sv->conf = next;
    sl_conf_destroy(&old);
    sl_log_init('S', (sl_log_level_t) next->log_level_value, next->log_file);
    sv->generation++;
    /* the slots restart from 0: keep their counts in the exported totals */
    for (unsigned i = 0; i < sv->slots_used; i++)
        sl_metrics_fold(sv->metrics, i, SL_PROMTEXT_FOLD_ALL);
    s_publish_layout(sv);
    if (sl_metrics_listen(sv->metrics, next->metrics_listen, err, sizeof err) < 0)
        sl_error("%s; metrics stay where they were", err);
    sl_metrics_set_stale_ms(sv->metrics, s_stale_ms(next));
    atomic_fetch_add(&sv->shm->sv[SL_SV_reloads], 1);
    atomic_store(&sv->shm->sv[SL_SV_config_warnings], next->warn.count);
    sl_info("configuration generation %u: %d ingest, %d pipeline workers, %zu sinks x %u "
            "partitions", sv->generation, next->n_ingest, next->n_pipeline,
            sl_conf_n_sinks(next), next->partitions);
    return 0;
}

/* Sets a role's worker count at run time (relative: n is a change) and
 * rolls the workers onto it through the reload path, which hands
 * partitions and transformer state over. 0, 1 when nothing changed, or -1
 * with why. */
static int
s_set_workers(s_sup_t *sv, int role, int relative, int n, char *why,
              size_t whylen)
{
    int *cur = role == SL_ROLE_INGEST ? &sv->conf->n_ingest : &sv->conf->n_pipeline;
    int other = role == SL_ROLE_INGEST ? sv->conf->n_pipeline : sv->conf->n_ingest;
    int want = relative ? *cur + n : n;
    int max = 64 < SL_MAX_WORKERS - other ? 64 : SL_MAX_WORKERS - other;
    if (want < 1 || want > max) {
        snprintf(why, whylen, "%s workers: %d is out of bounds (1 to %d); now %d, ask for a "
                 "count in between", sl_role_name(role), want, max, *cur);
        return -1;
    }
    if (want == *cur)
        return 1;
    int saved = sv->override[role], saved_base = sv->override_base[role];
    sv->override[role] = want == sv->file_count[role] ? 0 : want;   /* back to the file's */
    sv->override_base[role] = sv->file_count[role];
    sl_info("%s workers: %d -> %d at run time (the configuration says %d)", sl_role_name(role),
            *cur, want, sv->file_count[role]);
    if (s_reload(sv, "new worker count", why, whylen) < 0) {
        sv->override[role] = saved;
        sv->override_base[role] = saved_base;
        sl_ctl_set_overrides(sv->ctl, sv->override[SL_ROLE_INGEST],
                             sv->override[SL_ROLE_PIPELINE]);
        return -1;
    }
    return 0;
}

/* Why this many workers of each role, logged at start. */
static void
s_log_counts(const sl_conf_t *c)
{
    char cpus[256];
    sl_conf_cpu_count_why(cpus, sizeof cpus);
    int ia = strcmp(c->ingest_workers_text, "auto") == 0;
    int pa = strcmp(c->pipeline_workers_text, "auto") == 0;
    sl_info("workers: %d ingest (%s), %d pipeline (%s)%s%s", c->n_ingest,
            ia ? "auto: 3/4 of the usable CPUs, at least 1" : "configured", c->n_pipeline,
            pa ? "auto: 1/4 of the usable CPUs, at least 1" : "configured",
            ia || pa ? "; " : "", ia || pa ? cpus : "");
}

/* /healthz calls a heartbeat stale well before the watchdog kills. */
static uint64_t
s_stale_ms(const sl_conf_t *c)
{
    uint64_t ms = (uint64_t) c->worker_timeout * 1000 / 2;
    return ms > 10000 ? 10000 : ms;
}

static void
s_watchdog(s_sup_t *sv)
{
    uint64_t now = sl_now_ms(), limit = (uint64_t) sv->conf->worker_timeout * 1000;
    for (int i = 0; i < sv->n_children; i++) {
        s_child_t *ch = &sv->children[i];
        if (ch->pid <= 0)
            continue;
        uint64_t hb = atomic_load(&sv->shm->slots[i].heartbeat_ms);
        if (now > hb && now - hb > limit) {
            sl_error("%s worker #%d (pid %d) sent no heartbeat for %llu ms: killing it",
                     sl_role_name(ch->role), ch->index, (int) ch->pid,
                     (unsigned long long) (now - hb));
            kill(ch->pid, SIGKILL);
            atomic_store(&sv->shm->slots[i].heartbeat_ms, now);
        }
    }
}

/* Carries out a control-socket request and answers it; 1 = stop now. */
static int
s_control(s_sup_t *sv, const sl_ctl_req_t *req)
{
    char why[1024], extra[128];
    switch (req->kind) {
    case SL_CTL_RELOAD:
        if (s_reload(sv, "control socket", why, sizeof why) < 0) {
            sl_ctl_answer(sv->ctl, req->client, 0, "error", why, NULL);
        } else {
            snprintf(extra, sizeof extra, ",\"generation\":%u", sv->generation);
            sl_ctl_answer(sv->ctl, req->client, 1, "result", "reloaded", extra);
        }
        return 0;
    case SL_CTL_STOP:
        sl_info("control socket: graceful stop (draining within %u s)", sv->conf->shutdown_grace);
        sl_ctl_answer(sv->ctl, req->client, 1, "result", "stopping", NULL);
        return 1;
    case SL_CTL_WORKERS: {
        int rc = s_set_workers(sv, req->role, req->relative, req->n, why, sizeof why);
        if (rc < 0) {
            sl_ctl_answer(sv->ctl, req->client, 0, "error", why, NULL);
            return 0;
        }
        snprintf(extra, sizeof extra, ",\"ingest\":%d,\"pipeline\":%d,\"generation\":%u",
                 sv->conf->n_ingest, sv->conf->n_pipeline, sv->generation);
        sl_ctl_answer(sv->ctl, req->client, 1, "result", rc ? "unchanged" : "changed", extra);
        return 0;
    }
    }
    return 0;
}

/* Everything the supervisor set up goes (workers are gone): returns rc. */
static int
s_teardown(s_sup_t *sv, int rc)
{
    sl_metrics_destroy(&sv->metrics);
    sl_ctl_destroy(&sv->ctl);
    if (sv->sigfd >= 0)
        close(sv->sigfd);
    sl_shm_unmap(sv->shm);
    sl_shm_unlink(sv->shm_name);
    s_pidfile_release(sv);
    sl_conf_destroy(&sv->conf);
    return rc;
}

int
sl_supervisor_run(const sl_supervisor_opts_t *o, sl_conf_t *conf)
{
    s_sup_t sv;
    memset(&sv, 0, sizeof sv);
    sv.opts = o;
    sv.conf = conf;
    sv.generation = 1;
    sv.pidfile_fd = -1;
    sv.sigfd = -1;
    if (s_mkdir_p(conf->run_dir) < 0) {
        sl_error("cannot create run_dir %s: %s", conf->run_dir, strerror(errno));
        sl_conf_destroy(&sv.conf);
        return 1;
    }
    struct stat rst;
    if (stat(conf->run_dir, &rst) == 0 && (rst.st_mode & 022) && !(rst.st_mode & S_ISVTX))
        sl_warn("run_dir %s is writable by group or others, who could replace sluice's "
                "sockets; make it writable only by this user (chmod go-w)", conf->run_dir);
    /* Everything that touches the run_dir's shared state (state files,
     * shared memory) comes after the lock: a refused start leaves the
     * running agent alone. */
    sv.pidfile_fd = s_pidfile_lock(conf->pidfile);
    if (sv.pidfile_fd < 0) {
        sl_conf_destroy(&sv.conf);
        return 1;
    }
    sv.pidfile = sl_xstrdup(conf->pidfile);
    s_clean_state_dir(conf->run_dir);
    char err[512];
    sl_shm_name(conf->run_dir, sv.shm_name, sizeof sv.shm_name);
    s_remove_stale_shm(sv.shm_name);
    sv.shm = sl_shm_create(sv.shm_name, SL_MAX_WORKERS, s_lease_capacity(conf), err, sizeof err);
    if (!sv.shm) {
        sl_error("%s", err);
        s_pidfile_release(&sv);
        sl_conf_destroy(&sv.conf);
        return 1;
    }
    atomic_store(&sv.shm->sv[SL_SV_config_warnings], conf->warn.count);
    sv.file_count[SL_ROLE_INGEST] = conf->n_ingest;
    sv.file_count[SL_ROLE_PIPELINE] = conf->n_pipeline;
    s_publish_layout(&sv);
    sv.ctl = sl_ctl_new(conf->run_dir, err, sizeof err);
    if (!sv.ctl)
        sl_warn("%s; running without the control socket (sluice-ctl), signals still work", err);

    sigset_t set;
    sigemptyset(&set);
    int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD, SIGTTIN, SIGTTOU };
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sv.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sv.sigfd < 0) {
        sl_error("signalfd: %s; the supervisor cannot take signals", strerror(errno));
        return s_teardown(&sv, 1);
    }
    sl_notify_init();
    sv.metrics = sl_metrics_new(sv.shm);
    sl_metrics_set_stale_ms(sv.metrics, s_stale_ms(conf));
    if (sl_metrics_listen(sv.metrics, conf->metrics_listen, err, sizeof err) < 0) {
        sl_error("%s", err);
        return s_teardown(&sv, 1);
    }

    sl_info("sluiced %s started (pid %d): config %s, %d ingest + %d pipeline workers, %zu sinks "
            "x %u partitions, shared memory %s", "0.1.0", (int) getpid(), conf->file,
            conf->n_ingest, conf->n_pipeline, sl_conf_n_sinks(conf), conf->partitions,
            sv.shm_name);
    s_log_counts(conf);
    int stop = 0, fast = 0;
    uint64_t last_watchdog = 0;
    while (!stop) {
        uint64_t now = sl_now_ms();
        for (int i = 0; i < sv.n_children; i++) {
            s_child_t *ch = &sv.children[i];
            if (ch->pid == 0 && !ch->fatal && ch->respawn_at && now >= ch->respawn_at)
                s_spawn(&sv, i);
        }
        int sig = sv.deferred_sig;
        sv.deferred_sig = 0;
        if (!sig)
            sig = s_take_signal(&sv, 50);
        switch (sig) {
        case SIGTERM:
        case SIGQUIT:
            sl_info("%s: graceful stop (draining within %u s)", strsignal(sig), conf->shutdown_grace);
            stop = 1;
            break;
        case SIGINT:
            sl_info("SIGINT: fast stop");
            stop = fast = 1;
            break;
        case SIGHUP:
            s_reload(&sv, "SIGHUP", NULL, 0);
            conf = sv.conf;
            break;
        case SIGTTIN:
        case SIGTTOU:
            s_defer_signal(&sv, sig);
            break;
        case SIGUSR1:
            sl_log_reopen();
            s_signal_role(&sv, 0, SIGUSR1);
            break;
        default:
            break;
        }
        if (sv.ttin && !stop) {
            char why[1024];
            int delta = sv.ttin;
            sv.ttin = 0;
            sl_info("%s: %+d ingest worker%s", delta > 0 ? "SIGTTIN" : "SIGTTOU", delta,
                    delta == 1 || delta == -1 ? "" : "s");
            if (s_set_workers(&sv, SL_ROLE_INGEST, 1, delta, why, sizeof why) < 0)
                sl_warn("not changing the ingest workers: %s", why);
            conf = sv.conf;
        }
        sl_ctl_req_t req;
        while (!stop && sv.ctl && sl_ctl_poll(sv.ctl, sv.shm, sv.conf, &req))
            stop = s_control(&sv, &req);
        conf = sv.conf;
        s_reap(&sv, 0);
        for (int i = 0; i < sv.n_children; i++) {
            if (sv.children[i].fatal) {
                sv.exit_code = 2;
                stop = 1;
            }
        }
        if (now - last_watchdog >= 1000) {
            last_watchdog = now;
            s_watchdog(&sv);
        }
        sl_notify_tick(sv.shm);
    }
    sl_notify_stopping();
    s_stop_workers(&sv, fast);
    uint64_t published = sl_shm_sum(sv.shm, SL_C_samples_published, SL_ROLE_PIPELINE);
    uint64_t routed = sl_shm_sum(sv.shm, SL_C_samples_routed, SL_ROLE_INGEST);
    sl_info("stopped: %llu samples routed, %llu published in this generation",
            (unsigned long long) routed, (unsigned long long) published);
    return s_teardown(&sv, sv.exit_code);
}
