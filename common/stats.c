#include "common/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"

const char *const sl_worker_counter_names[SL_C__COUNT] = {
#define X(n, h) #n,
    SL_WORKER_COUNTERS(X)
#undef X
};
const char *const sl_worker_counter_help[SL_C__COUNT] = {
#define X(n, h) h,
    SL_WORKER_COUNTERS(X)
#undef X
};
const char *const sl_sink_counter_names[SL_SC__COUNT] = {
#define X(n, h) #n,
    SL_SINK_COUNTERS(X)
#undef X
};
const char *const sl_sink_counter_help[SL_SC__COUNT] = {
#define X(n, h) h,
    SL_SINK_COUNTERS(X)
#undef X
};
const char *const sl_publisher_counter_names[SL_PC__COUNT] = {
#define X(n, k, h) #n,
    SL_PUBLISHER_COUNTERS(X)
#undef X
};
const char *const sl_publisher_counter_help[SL_PC__COUNT] = {
#define X(n, k, h) h,
    SL_PUBLISHER_COUNTERS(X)
#undef X
};
const int sl_publisher_counter_kind[SL_PC__COUNT] = {
#define X(n, k, h) SL_PK_##k,
    SL_PUBLISHER_COUNTERS(X)
#undef X
};
const char *const sl_broker_counter_names[SL_BC__COUNT] = {
#define X(n, k, h) #n,
    SL_BROKER_COUNTERS(X)
#undef X
};
const char *const sl_broker_counter_help[SL_BC__COUNT] = {
#define X(n, k, h) h,
    SL_BROKER_COUNTERS(X)
#undef X
};
const int sl_broker_counter_kind[SL_BC__COUNT] = {
#define X(n, k, h) SL_PK_##k,
    SL_BROKER_COUNTERS(X)
#undef X
};
const char *const sl_zmon_counter_names[SL_ZC__COUNT] = {
#define X(n, k, h) #n,
    SL_ZMON_COUNTERS(X)
#undef X
};
const char *const sl_zmon_counter_help[SL_ZC__COUNT] = {
#define X(n, k, h) h,
    SL_ZMON_COUNTERS(X)
#undef X
};
const int sl_zmon_counter_kind[SL_ZC__COUNT] = {
#define X(n, k, h) SL_PK_##k,
    SL_ZMON_COUNTERS(X)
#undef X
};
const char *const sl_stage_names[SL_ST__COUNT] = {
#define X(n, r, h) #n,
    SL_STAGES(X)
#undef X
};
const char *const sl_stage_help[SL_ST__COUNT] = {
#define X(n, r, h) h,
    SL_STAGES(X)
#undef X
};
const int sl_stage_role[SL_ST__COUNT] = {
#define X(n, r, h) SL_ROLE_##r,
#define SL_ROLE_ingest SL_ROLE_INGEST
#define SL_ROLE_pipeline SL_ROLE_PIPELINE
    SL_STAGES(X)
#undef SL_ROLE_ingest
#undef SL_ROLE_pipeline
#undef X
};
const char *const sl_supervisor_counter_names[SL_SV__COUNT] = {
#define X(n, h) #n,
    SL_SUPERVISOR_COUNTERS(X)
#undef X
};
const char *const sl_supervisor_counter_help[SL_SV__COUNT] = {
#define X(n, h) h,
    SL_SUPERVISOR_COUNTERS(X)
#undef X
};

const char *
sl_worker_state_name(int state)
{
    static const char *names[] = { "empty", "starting", "running", "draining", "exited", "backoff" };
    return state >= 0 && state <= SL_WS_BACKOFF ? names[state] : "?";
}

const char *
sl_role_name(int role)
{
    return role == SL_ROLE_INGEST ? "ingest" : role == SL_ROLE_PIPELINE ? "pipeline" : "-";
}

uint64_t
sl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

uint64_t
sl_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t
sl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

uint64_t
sl_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

struct timespec
sl_deadline(clockid_t clock, unsigned ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void
sl_shm_name(const char *run_dir, char *buf, size_t len)
{
    char real[4096];
    const char *key = realpath(run_dir, real) ? real : run_dir;
    snprintf(buf, len, "/sluice.%016llx", (unsigned long long) sl_hash64_str(key));
}

static size_t
s_header_size(unsigned n_slots)
{
    return sizeof(sl_shm_t) + (size_t) n_slots * sizeof(sl_slot_t);
}

sl_shm_t *
sl_shm_create(const char *name, unsigned n_slots, size_t lease_capacity,
              char *err, size_t errlen)
{
    size_t lease_off = (s_header_size(n_slots) + 4095) & ~(size_t) 4095;
    size_t size = lease_off + ((lease_capacity + 4095) & ~(size_t) 4095);
    /* 0640 (minus the umask): sluice-monitor only reads, so the owner and
     * the group can watch; nobody else sees pids, counters or sink names,
     * and only the owner can write (the lease table is in here). */
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0640);
    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errlen, "shm_open(%s): it exists already (a region nobody removed: "
                     "the caller must remove a stale one first)", name);
        else
            snprintf(err, errlen, "shm_open(%s): %s (is /dev/shm mounted and writable?)",
                     name, strerror(errno));
        return NULL;
    }
    if (ftruncate(fd, (off_t) size) < 0) {
        snprintf(err, errlen, "ftruncate(%s, %zu): %s", name, size, strerror(errno));
        close(fd);
        shm_unlink(name);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "mmap(%s): %s", name, strerror(errno));
        shm_unlink(name);
        return NULL;
    }
    /* A new object (O_EXCL) extended by ftruncate reads as zeros: no memset,
     * so that the pages of slots and publisher stats nobody uses are never
     * touched. */
    sl_shm_t *shm = p;
    shm->version = SL_STATS_VERSION;
    shm->n_slots = n_slots;
    shm->region_size = size;
    shm->lease_offset = lease_off;
    shm->lease_capacity = size - lease_off;
    shm->started_ms = sl_wall_ms();
    atomic_store(&shm->supervisor_pid, (int32_t) getpid());
    atomic_thread_fence(memory_order_release);
    shm->magic = SL_STATS_MAGIC;
    return shm;
}

const sl_shm_t *
sl_shm_attach(const char *name, char *err, size_t errlen)
{
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0) {
        snprintf(err, errlen, "shm_open(%s): %s (is sluiced running with this run_dir?)",
                 name, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t) st.st_size < sizeof(sl_shm_t)) {
        snprintf(err, errlen, "%s: region too small or unreadable", name);
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "mmap(%s): %s", name, strerror(errno));
        return NULL;
    }
    const sl_shm_t *shm = p;
    if (shm->magic != SL_STATS_MAGIC || shm->version != SL_STATS_VERSION ||
        shm->region_size != (uint64_t) st.st_size) {
        snprintf(err, errlen, "%s: not a sluice region of version %d (monitor and daemon "
                 "from different builds?)", name, SL_STATS_VERSION);
        munmap(p, (size_t) st.st_size);
        return NULL;
    }
    return shm;
}

void
sl_shm_unmap(const void *shm)
{
    if (shm)
        munmap((void *) shm, ((const sl_shm_t *) shm)->region_size);
}

int
sl_shm_unlink(const char *name)
{
    return shm_unlink(name);
}

sl_lease_table_t *
sl_shm_leases(sl_shm_t *shm)
{
    return sl_lease_table_attach((char *) shm + shm->lease_offset);
}

const sl_lease_table_t *
sl_shm_leases_ro(const sl_shm_t *shm)
{
    return sl_lease_table_attach((char *) shm + shm->lease_offset);
}

uint64_t
sl_shm_sum(const sl_shm_t *shm, int counter, int role)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < shm->n_slots; i++) {
        const sl_slot_t *s = &shm->slots[i];
        if (role && atomic_load_explicit(&s->role, memory_order_relaxed) != role)
            continue;
        sum += atomic_load_explicit(&s->c[counter], memory_order_relaxed);
    }
    return sum;
}

/* Writes text into dst (len bytes, NUL-terminated) between two increments
 * of ps->seq (odd while writing): a reader retries until it sees the same
 * even value before and after copying. One writer per slot. */
static void
s_text(sl_stats_text_t *ps, char *dst, size_t len, const char *text)
{
    uint32_t seq = atomic_load_explicit(&ps->seq, memory_order_relaxed);
    atomic_store_explicit(&ps->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    size_t n = strlen(text ? text : "");
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++)   /* one line, whatever the error said */
        dst[i] = text[i] == '\n' || text[i] == '\r' ? ' ' : text[i];
    dst[n] = '\0';
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&ps->seq, seq + 2, memory_order_relaxed);
}

void
sl_stats_text_set_label(sl_stats_text_t *ps, const char *label)
{
    s_text(ps, ps->label, sizeof ps->label, label);
    atomic_store_explicit(&ps->used, 1, memory_order_release);
}

void
sl_stats_text_set_error(sl_stats_text_t *ps, const char *error)
{
    s_text(ps, ps->error, sizeof ps->error, error);
    atomic_store_explicit(&ps->error_ms, sl_wall_ms(), memory_order_relaxed);
}

void
sl_stats_text_get(const sl_stats_text_t *ps, char *label, size_t llen, char *error, size_t elen)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        uint32_t before = atomic_load_explicit(&ps->seq, memory_order_acquire);
        if (before & 1)
            continue;
        if (label && llen)
            snprintf(label, llen, "%.*s", (int) sizeof ps->label - 1, ps->label);
        if (error && elen)
            snprintf(error, elen, "%.*s", (int) sizeof ps->error - 1, ps->error);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&ps->seq, memory_order_relaxed) == before)
            return;
    }
}
