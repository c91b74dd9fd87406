/* test_coord — membership and leases through a real memcached: concurrent
 * joins are never lost, no partition ever has two holders, an idle member's
 * leases expire and can be taken over, only the holder releases, forged and
 * replayed records are ignored and counted, a memcached restart fails calls
 * fast and is recovered from, and one mget resolves every owner.
 * The test starts its own memcached (127.0.0.1, free port) and fails if it
 * cannot; it stops it by PID at the end. */
#include <check.h>

#include "tests/sl_check.h"
#include <arpa/inet.h>
#include <errno.h>
#include <libmemcached/memcached.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/coord.h"

#define MEMCACHED_BIN "/usr/bin/memcached"
static const char SECRET[] = "0123456789abcdef0123456789abcdef";
static const char WRONG[]  = "fedcba9876543210fedcba9876543210";

static int  g_port;
static char g_servers[64];
static char g_pidfile[64];
static pid_t g_mc_pid;

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_sleep_ms(int64_t ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) != 0
        || getsockname(fd, (struct sockaddr *) &a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int
s_port_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) g_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts memcached on g_port; its pid, or -1 if it did not answer in 5 s.
 * die_with_parent: the server goes when the calling process does. */
static pid_t
s_memcached_start(int die_with_parent)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (die_with_parent)
            prctl(PR_SET_PDEATHSIG, SIGKILL);
        char port[16];
        snprintf(port, sizeof port, "%d", g_port);
        struct passwd *pw = getpwuid(getuid());
        if (getuid() == 0)      /* memcached refuses root without -u */
            execl(MEMCACHED_BIN, "memcached", "-l", "127.0.0.1", "-p", port, "-U", "0",
                  "-P", g_pidfile, "-u", pw ? pw->pw_name : "root", (char *) NULL);
        else
            execl(MEMCACHED_BIN, "memcached", "-l", "127.0.0.1", "-p", port, "-U", "0",
                  "-P", g_pidfile, (char *) NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (s_port_open())
            return pid;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        s_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static pid_t
s_pidfile_pid(void)
{
    FILE *f = fopen(g_pidfile, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return (pid_t) pid;
}

static sl_coord_t *
s_coord(const char *group, const char *secret, unsigned ttl_ms)
{
    char err[256] = "";
    sl_coord_t *c = sl_coord_new(g_servers, group, secret, strlen(secret), ttl_ms, err, sizeof err);
    ck_assert_msg(c != NULL, "sl_coord_new failed: %s", err);
    return c;
}

static void
s_group(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "t-%s-%d", name, (int) getpid());
}

/* Waits out the pause on takes that follows a new store epoch, while
 * member `beat` (if any) keeps heartbeating at ttl/4. */
static void
s_wait_epoch_beating(unsigned ttl_ms, sl_coord_t *beat)
{
    int64_t end = s_now_ms() + ttl_ms + SL_COORD_SKEW_MS + 100;
    while (s_now_ms() < end) {
        int64_t left = end - s_now_ms();
        s_sleep_ms(left < ttl_ms / 4 ? left : ttl_ms / 4);
        if (beat)
            ck_assert_int_eq(sl_coord_heartbeat(beat), 0);
    }
}

static void
s_wait_epoch(unsigned ttl_ms)
{
    s_wait_epoch_beating(ttl_ms, NULL);
}

static sl_coord_stats_t
s_stats(const sl_coord_t *c)
{
    sl_coord_stats_t st;
    sl_coord_stats(c, &st);
    return st;
}

static memcached_st *
s_raw(void)
{
    memcached_st *mc = memcached_create(NULL);
    ck_assert_ptr_nonnull(mc);
    ck_assert_int_eq(memcached_server_add(mc, "127.0.0.1", (in_port_t) g_port), MEMCACHED_SUCCESS);
    return mc;
}

START_TEST(test_join_lists_members_sorted_and_leave_removes)
{
    char g[64];
    s_group(g, sizeof g, "join");
    sl_coord_t *b = s_coord(g, SECRET, 5000), *a = s_coord(g, SECRET, 5000);
    ck_assert_int_eq(sl_coord_join(b, "host-b/p0", "tcp://10.0.0.2:7000"), 0);
    ck_assert_int_eq(sl_coord_join(a, "host-a/p0", "tcp://10.0.0.1:7000"), 0);
    ck_assert_int_eq(sl_coord_join(a, "other", "tcp://x:1"), -1);   /* one identity per handle */
    ck_assert_int_eq(sl_coord_join(a, " bad id", "tcp://x:1"), -1);
    sl_coord_member_t m[4];
    ssize_t n = sl_coord_members(a, m, 4);
    ck_assert_msg(n == 2, "expected 2 members after two joins, got %zd", n);
    ck_assert_str_eq(m[0].id, "host-a/p0");
    ck_assert_str_eq(m[0].endpoint, "tcp://10.0.0.1:7000");
    ck_assert_str_eq(m[1].id, "host-b/p0");
    ck_assert_int_eq(sl_coord_heartbeat(a), 0);
    ck_assert_int_eq(sl_coord_members(b, m, 1), 2);       /* count beyond max */
    ck_assert_int_eq(sl_coord_leave(a), 0);
    n = sl_coord_members(b, m, 4);
    ck_assert_msg(n == 1 && strcmp(m[0].id, "host-b/p0") == 0,
                  "expected only host-b/p0 after host-a left, got %zd members", n);
    ck_assert_int_eq(sl_coord_heartbeat(a), -1);          /* not joined any more */
    ck_assert_uint_eq(s_stats(b).bad_records, 0);
    sl_coord_destroy(&a);
    sl_coord_destroy(&b);
    ck_assert_ptr_null(a);
}
END_TEST

START_TEST(test_concurrent_joins_never_lose_a_member)
{
    char g[64];
    s_group(g, sizeof g, "concurrent");
    enum { N = 8 };
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            char err[256], id[16];
            sl_coord_t *c = sl_coord_new(g_servers, g, SECRET, strlen(SECRET), 10000, err, sizeof err);
            snprintf(id, sizeof id, "m%d", i);
            int rc = c && sl_coord_join(c, id, "tcp://127.0.0.1:9") == 0 ? 0 : 1;
            sl_coord_destroy(&c);
            exit(rc);
        }
    }
    for (int i = 0; i < N; i++) {
        int status;
        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "joiner %d failed", i);
    }
    sl_coord_t *c = s_coord(g, SECRET, 10000);
    sl_coord_member_t m[N + 1];
    ssize_t n = sl_coord_members(c, m, N + 1);
    ck_assert_msg(n == N, "expected all %d concurrent joiners listed, got %zd", N, n);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "m%d", i);
        ck_assert_str_eq(m[i].id, id);
    }
    sl_coord_destroy(&c);
}
END_TEST

/* Shared with the hammering processes: who believes it holds partition p. */
typedef struct {
    atomic_int  claim[4];
    atomic_int  violations;
    atomic_long takes;
    atomic_int  stop;
} s_arena_t;

START_TEST(test_leases_are_exclusive_under_concurrency)
{
    char g[64];
    s_group(g, sizeof g, "exclusive");
    const unsigned ttl = 1000;
    sl_coord_t *checker = s_coord(g, SECRET, ttl);
    ck_assert_int_eq(sl_coord_join(checker, "checker", "tcp://127.0.0.1:1"), 0);
    s_wait_epoch(ttl);
    s_arena_t *a = mmap(NULL, sizeof *a, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(a, MAP_FAILED);
    memset(a, 0, sizeof *a);
    enum { N = 6 };
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            char err[256], id[16], ep[32];
            snprintf(id, sizeof id, "w%d", i);
            snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", 7000 + i);
            sl_coord_t *c = sl_coord_new(g_servers, g, SECRET, strlen(SECRET), ttl, err, sizeof err);
            if (!c || sl_coord_join(c, id, ep) != 0)
                exit(1);
            unsigned seed = (unsigned) getpid();
            while (!atomic_load(&a->stop)) {
                unsigned p = (unsigned) rand_r(&seed) % 4;
                if (sl_coord_lease_take(c, 0, p, ep) != 0)
                    continue;
                int expect = 0;
                if (!atomic_compare_exchange_strong(&a->claim[p], &expect, i + 1))
                    atomic_fetch_add(&a->violations, 1);
                atomic_fetch_add(&a->takes, 1);
                s_sleep_ms(rand_r(&seed) % 3);
                if (rand_r(&seed) % 4 == 0)
                    sl_coord_heartbeat(c);
                expect = i + 1;
                atomic_compare_exchange_strong(&a->claim[p], &expect, 0);
                sl_coord_lease_release(c, 0, p);
            }
            sl_coord_leave(c);
            sl_coord_destroy(&c);
            exit(0);
        }
    }
    /* The checker: memcached never shows a record the claims contradict
     * for long, and every record it reads verifies. */
    int64_t end = s_now_ms() + 2500;
    long polls = 0;
    while (s_now_ms() < end) {
        sl_coord_lease_t out[4];
        ck_assert_int_ge(sl_coord_leases_get_all(checker, 1, 4, out), 0);
        ck_assert_msg(atomic_load(&a->violations) == 0,
                      "two processes held one partition at once (%d times)",
                      atomic_load(&a->violations));
        polls++;
    }
    atomic_store(&a->stop, 1);
    for (int i = 0; i < N; i++) {
        int status;
        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "hammer %d failed", i);
    }
    ck_assert_msg(atomic_load(&a->violations) == 0, "expected no double holders, saw %d",
                  atomic_load(&a->violations));
    ck_assert_msg(atomic_load(&a->takes) > 50, "expected real contention, only %ld takes",
                  atomic_load(&a->takes));
    ck_assert_uint_eq(s_stats(checker).bad_records, 0);
    ck_assert_int_gt(polls, 10);
    munmap(a, sizeof *a);
    sl_coord_leave(checker);
    sl_coord_destroy(&checker);
}
END_TEST

START_TEST(test_idle_member_loses_leases_after_ttl)
{
    char g[64];
    s_group(g, sizeof g, "expiry");
    const unsigned ttl = 1000;
    sl_coord_t *a = s_coord(g, SECRET, ttl), *b = s_coord(g, SECRET, ttl);
    ck_assert_int_eq(sl_coord_join(a, "a", "tcp://10.0.0.1:1"), 0);
    ck_assert_int_eq(sl_coord_join(b, "b", "tcp://10.0.0.2:1"), 0);
    ck_assert_int_eq(sl_coord_lease_take(a, 1, 7, "tcp://10.0.0.1:1"), 1);  /* fresh epoch: paused */
    s_wait_epoch(ttl);
    ck_assert_int_eq(sl_coord_lease_take(a, 1, 7, "tcp://10.0.0.1:1"), 0);
    ck_assert_int_eq(sl_coord_lease_take(a, 1, 7, "tcp://10.0.0.1:2"), 0);  /* re-take = renew */
    ck_assert_int_eq(sl_coord_lease_take(b, 1, 7, "tcp://10.0.0.2:1"), 1);
    ck_assert_int_eq(sl_coord_lease_held(a, 1, 7), 1);
    /* a heartbeats keep it alive past the TTL */
    for (int i = 0; i < 4; i++) {
        s_sleep_ms(ttl / 3);
        ck_assert_int_eq(sl_coord_heartbeat(a), 0);
        ck_assert_int_eq(sl_coord_heartbeat(b), 0);
    }
    ck_assert_int_eq(sl_coord_lease_take(b, 1, 7, "tcp://10.0.0.2:1"), 1);
    ck_assert_uint_ge(s_stats(a).leases_renewed, 4);
    /* a stops; b keeps heartbeating */
    int64_t stop = s_now_ms();
    int took = 0;
    while (s_now_ms() - stop < 3 * (int64_t) ttl && !took) {
        s_sleep_ms(100);
        ck_assert_int_eq(sl_coord_heartbeat(b), 0);
        int rc = sl_coord_lease_take(b, 1, 7, "tcp://10.0.0.2:1");
        ck_assert_int_ge(rc, 0);
        took = rc == 0;
        if (took)
            ck_assert_msg(sl_coord_lease_held(a, 1, 7) == 0,
                          "b took the lease while a still counted it as held");
    }
    int64_t after = s_now_ms() - stop;
    ck_assert_msg(took, "b could not take the idle member's lease within 3 x ttl");
    ck_assert_msg(after >= ttl, "b took the lease after %lld ms, before the %u ms ttl",
                  (long long) after, ttl);
    sl_coord_lease_t l;
    ck_assert_int_eq(sl_coord_lease_get(a, 1, 7, &l), 0);
    ck_assert_str_eq(l.owner, "b");
    ck_assert_str_eq(l.endpoint, "tcp://10.0.0.2:1");
    /* a's member record expired too */
    sl_coord_member_t m[4];
    ck_assert_int_eq(sl_coord_members(b, m, 4), 1);
    ck_assert_str_eq(m[0].id, "b");
    /* a wakes up: its heartbeat finds the lease gone */
    ck_assert_int_eq(sl_coord_heartbeat(a), 0);
    ck_assert_int_eq(sl_coord_lease_held(a, 1, 7), 0);
    ck_assert_uint_ge(s_stats(a).leases_lost, 1);
    ck_assert_int_eq(sl_coord_members(b, m, 4), 2);        /* and it re-joined the list */
    sl_coord_destroy(&a);
    sl_coord_destroy(&b);
}
END_TEST

START_TEST(test_only_the_holder_releases)
{
    char g[64];
    s_group(g, sizeof g, "release");
    const unsigned ttl = 1000;
    sl_coord_t *a = s_coord(g, SECRET, ttl), *b = s_coord(g, SECRET, ttl);
    ck_assert_int_eq(sl_coord_join(a, "a", "tcp://a:1"), 0);
    ck_assert_int_eq(sl_coord_join(b, "b", "tcp://b:1"), 0);
    s_wait_epoch(ttl);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 3, "tcp://a:1"), 0);
    ck_assert_int_eq(sl_coord_lease_release(b, 0, 3), 1);
    sl_coord_lease_t l;
    ck_assert_int_eq(sl_coord_lease_get(b, 0, 3, &l), 0);
    ck_assert_str_eq(l.owner, "a");
    ck_assert_int_eq(sl_coord_lease_release(a, 0, 3), 0);
    ck_assert_int_eq(sl_coord_lease_held(a, 0, 3), 0);
    ck_assert_int_eq(sl_coord_lease_get(b, 0, 3, &l), 1);
    ck_assert_int_eq(sl_coord_lease_release(a, 0, 3), 1);  /* twice: no longer ours */
    ck_assert_int_eq(sl_coord_lease_take(b, 0, 3, "tcp://b:1"), 0);
    ck_assert_int_eq(sl_coord_lease_get(a, 0, 3, &l), 0);
    ck_assert_str_eq(l.owner, "b");
    ck_assert_int_eq(sl_coord_leave(b), 0);                 /* leave releases */
    ck_assert_int_eq(sl_coord_lease_get(a, 0, 3, &l), 1);
    sl_coord_destroy(&a);
    sl_coord_destroy(&b);
}
END_TEST

START_TEST(test_forged_and_replayed_records_are_ignored_and_counted)
{
    char g[64];
    s_group(g, sizeof g, "forged");
    const unsigned ttl = 1000;
    sl_coord_t *a = s_coord(g, SECRET, ttl);
    ck_assert_int_eq(sl_coord_join(a, "a", "tcp://a:1"), 0);
    s_wait_epoch_beating(ttl, a);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 1, "tcp://a:1"), 0);

    /* A phantom with the wrong secret joins: it reaches the list, not the members. */
    sl_coord_t *ph = s_coord(g, WRONG, ttl);
    ck_assert_int_eq(sl_coord_join(ph, "phantom", "tcp://evil:1"), 0);
    uint64_t bad0 = s_stats(a).bad_records;
    sl_coord_member_t m[4];
    ssize_t n = sl_coord_members(a, m, 4);
    ck_assert_msg(n == 1 && strcmp(m[0].id, "a") == 0,
                  "expected only member a (phantom ignored), got %zd members", n);
    ck_assert_uint_gt(s_stats(a).bad_records, bad0);

    /* A forged lease (wrong HMAC) on a free partition, and a's genuine record
     * for 0/1 replayed under 0/2. */
    memcached_st *mc = s_raw();
    char key[128], val[256];
    snprintf(key, sizeof key, "sl:%s:l:0:5", g);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(val, sizeof val, "SL1 phantom tcp://evil:1 %lld %lld %064d", now, now + 60000, 0);
    ck_assert_int_eq(memcached_set(mc, key, strlen(key), val, strlen(val), 60, 0), MEMCACHED_SUCCESS);
    char key1[128], key2[128];
    snprintf(key1, sizeof key1, "sl:%s:l:0:1", g);
    snprintf(key2, sizeof key2, "sl:%s:l:0:2", g);
    size_t vlen;
    uint32_t flags;
    memcached_return_t rc;
    char *genuine = memcached_get(mc, key1, strlen(key1), &vlen, &flags, &rc);
    ck_assert_ptr_nonnull(genuine);
    ck_assert_int_eq(memcached_set(mc, key2, strlen(key2), genuine, vlen, 60, 0), MEMCACHED_SUCCESS);
    free(genuine);

    bad0 = s_stats(a).bad_records;
    sl_coord_lease_t l;
    ck_assert_int_eq(sl_coord_lease_get(a, 0, 5, &l), 1);
    ck_assert_int_eq(sl_coord_lease_get(a, 0, 2, &l), 1);
    ck_assert_int_eq(sl_coord_lease_get(a, 0, 1, &l), 0);
    ck_assert_uint_eq(s_stats(a).bad_records, bad0 + 2);
    sl_coord_lease_t all[8];
    ck_assert_int_eq(sl_coord_leases_get_all(a, 1, 8, all), 1);
    ck_assert_str_eq(all[1].owner, "a");
    ck_assert_str_eq(all[5].owner, "");
    ck_assert_uint_eq(s_stats(a).bad_records, bad0 + 4);
    /* the phantom cannot block a partition: a takes over the forged lease,
     * once the pause is over that the phantom's (forged) epoch caused: a
     * writer without the secret can delay takes, never create a holder */
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 5, "tcp://a:1"), 1);
    s_wait_epoch_beating(ttl, a);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 5, "tcp://a:1"), 0);
    ck_assert_int_eq(sl_coord_lease_get(a, 0, 5, &l), 0);
    ck_assert_str_eq(l.owner, "a");
    /* nor steal a's lease (its own take sees a's record as forged, and its
     * epoch view is paused anyway) */
    ck_assert_int_ne(sl_coord_lease_take(ph, 0, 1, "tcp://evil:1"), 0);
    ck_assert_int_eq(sl_coord_lease_get(a, 0, 1, &l), 0);
    ck_assert_str_eq(l.owner, "a");
    memcached_free(mc);
    sl_coord_destroy(&ph);
    sl_coord_destroy(&a);
}
END_TEST

START_TEST(test_get_all_resolves_every_owner_in_one_call)
{
    char g[64];
    s_group(g, sizeof g, "mget");
    const unsigned ttl = 2000;
    sl_coord_t *a = s_coord(g, SECRET, ttl), *b = s_coord(g, SECRET, ttl), *r = s_coord(g, SECRET, ttl);
    ck_assert_int_eq(sl_coord_join(a, "a", "tcp://a:1"), 0);
    ck_assert_int_eq(sl_coord_join(b, "b", "tcp://b:1"), 0);
    s_wait_epoch(ttl);
    for (unsigned p = 0; p < 4; p++)
        ck_assert_int_eq(sl_coord_lease_take(a, 0, p, "tcp://a:1"), 0);
    ck_assert_int_eq(sl_coord_lease_take(b, 1, 0, "tcp://b:1"), 0);
    ck_assert_int_eq(sl_coord_lease_take(b, 1, 2, "ipc:///run/sluice/b.2"), 0);
    sl_coord_lease_t out[2 * 4];
    ck_assert_int_eq(sl_coord_leases_get_all(r, 2, 4, out), 6);
    for (unsigned p = 0; p < 4; p++) {
        ck_assert_str_eq(out[p].owner, "a");
        ck_assert_str_eq(out[p].endpoint, "tcp://a:1");
    }
    ck_assert_str_eq(out[4].owner, "b");
    ck_assert_str_eq(out[5].owner, "");
    ck_assert_str_eq(out[6].endpoint, "ipc:///run/sluice/b.2");
    ck_assert_str_eq(out[7].owner, "");
    ck_assert_int_eq(sl_coord_leases_get_all(r, 0, 4, out), -1);
    ck_assert_uint_eq(s_stats(r).bad_records, 0);
    sl_coord_destroy(&a);
    sl_coord_destroy(&b);
    sl_coord_destroy(&r);
}
END_TEST

/* The take stamp names one holding: renewals keep it, a re-take (even by the
 * same member, as a respawned worker does) and a takeover change it. */
START_TEST(test_take_stamp_survives_renewal_and_changes_on_retake)
{
    char g[64];
    s_group(g, sizeof g, "stamp");
    const unsigned ttl = 2000;
    sl_coord_t *a = s_coord(g, SECRET, ttl), *r = s_coord(g, SECRET, ttl);
    ck_assert_int_eq(sl_coord_join(a, "a", "tcp://a:1"), 0);
    s_wait_epoch(ttl);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 0, "tcp://a:1"), 0);
    sl_coord_lease_t l1, l2, l3;
    ck_assert_int_eq(sl_coord_lease_get(r, 0, 0, &l1), 0);
    ck_assert_msg(l1.taken_ms > 0, "take stamp %lld", (long long) l1.taken_ms);
    s_sleep_ms(20);
    ck_assert_int_eq(sl_coord_heartbeat(a), 0);
    ck_assert_int_eq(sl_coord_lease_get(r, 0, 0, &l2), 0);
    ck_assert_msg(l2.expiry_ms > l1.expiry_ms, "renewal did not move the expiry");
    ck_assert_msg(l2.taken_ms == l1.taken_ms, "renewal changed the take stamp: %lld then %lld",
                  (long long) l1.taken_ms, (long long) l2.taken_ms);
    s_sleep_ms(5);
    ck_assert_int_eq(sl_coord_lease_release(a, 0, 0), 0);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 0, "tcp://a:1"), 0);
    sl_coord_lease_t all[1];
    ck_assert_int_eq(sl_coord_leases_get_all(r, 1, 1, all), 1);
    ck_assert_int_eq(sl_coord_lease_get(r, 0, 0, &l3), 0);
    ck_assert_msg(l3.taken_ms > l2.taken_ms, "re-take kept the stamp %lld (was %lld)",
                  (long long) l3.taken_ms, (long long) l2.taken_ms);
    ck_assert_msg(all[0].taken_ms == l3.taken_ms, "get_all stamp %lld, get %lld",
                  (long long) all[0].taken_ms, (long long) l3.taken_ms);
    sl_coord_destroy(&a);
    sl_coord_destroy(&r);
}
END_TEST

START_TEST(test_new_refuses_bad_arguments)
{
    char err[256];
    ck_assert_ptr_null(sl_coord_new("", "g", SECRET, strlen(SECRET), 1000, err, sizeof err));
    ck_assert_ptr_null(sl_coord_new(g_servers, "bad group", SECRET, strlen(SECRET), 1000, err, sizeof err));
    ck_assert_ptr_null(sl_coord_new(g_servers, "g", "short", 5, 1000, err, sizeof err));
    ck_assert_msg(strstr(err, "secret") != NULL, "expected a reason about the secret, got \"%s\"", err);
    ck_assert_ptr_null(sl_coord_new(g_servers, "g", SECRET, strlen(SECRET), 10, err, sizeof err));
    sl_coord_t *c = s_coord("g", SECRET, 1000);
    ck_assert_int_eq(sl_coord_lease_take(c, 0, 0, "tcp://x:1"), -1);   /* not joined */
    ck_assert_int_eq(sl_coord_join(c, "ok", "tcp://has space"), -1);
    sl_coord_destroy(&c);
    sl_coord_destroy(&c);
}
END_TEST

/* Runs last: it replaces the server (main stops the new one by pidfile). */
START_TEST(test_memcached_restart_fails_fast_then_recovers)
{
    char g[64];
    s_group(g, sizeof g, "restart");
    const unsigned ttl = 4000;
    sl_coord_t *a = s_coord(g, SECRET, ttl), *b = s_coord(g, SECRET, ttl);
    ck_assert_int_eq(sl_coord_join(a, "a", "tcp://a:1"), 0);
    s_wait_epoch(ttl);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 0, "tcp://a:1"), 0);
    sl_coord_lease_t last[4];
    ck_assert_int_eq(sl_coord_leases_get_all(b, 1, 4, last), 1);

    pid_t old = s_pidfile_pid();
    ck_assert_int_gt(old, 0);
    ck_assert_int_eq(kill(old, SIGKILL), 0);
    for (int i = 0; i < 200 && s_port_open(); i++)
        s_sleep_ms(10);
    ck_assert_msg(!s_port_open(), "memcached (pid %d) still answers after SIGKILL", (int) old);

    int64_t t0 = s_now_ms();
    ck_assert_int_eq(sl_coord_heartbeat(a), -1);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 1, "tcp://a:1"), -1);
    ck_assert_int_eq(sl_coord_join(b, "b", "tcp://b:1"), -1);
    sl_coord_member_t m[4];
    ck_assert_int_eq(sl_coord_members(b, m, 4), -1);
    sl_coord_lease_t l, keep[4];
    memcpy(keep, last, sizeof keep);
    ck_assert_int_eq(sl_coord_lease_get(b, 0, 0, &l), -1);
    ck_assert_int_eq(sl_coord_leases_get_all(b, 1, 4, last), -1);
    ck_assert_msg(memcmp(keep, last, sizeof keep) == 0, "a failed get_all changed its output");
    int64_t took = s_now_ms() - t0;
    ck_assert_msg(took < 3000, "6 calls against a dead memcached took %lld ms", (long long) took);
    ck_assert_uint_gt(s_stats(a).mc_errors, 0);
    ck_assert_uint_gt(s_stats(b).mc_errors, 0);
    ck_assert_int_eq(sl_coord_lease_held(a, 0, 0), 1);     /* last known assignment stands */

    pid_t fresh = s_memcached_start(0);
    ck_assert_msg(fresh > 0, "could not restart memcached on port %d", g_port);
    /* a's heartbeat re-adds its lease (still within its deadline) */
    int rc = -1;
    for (int64_t t = s_now_ms(); rc != 0 && s_now_ms() - t < 2500; s_sleep_ms(100))
        rc = sl_coord_heartbeat(a);
    ck_assert_msg(rc == 0, "heartbeat did not recover within 2.5 s of the restart");
    ck_assert_int_eq(sl_coord_lease_held(a, 0, 0), 1);
    ck_assert_int_eq(sl_coord_join(b, "b", "tcp://b:1"), 0);
    ck_assert_int_eq(sl_coord_lease_get(b, 0, 0, &l), 0);
    ck_assert_str_eq(l.owner, "a");
    ck_assert_int_eq(sl_coord_lease_take(b, 0, 1, "tcp://b:1"), 1);   /* store lost data: paused */
    ck_assert_int_eq(sl_coord_members(b, m, 4), 2);
    s_wait_epoch_beating(ttl, a);
    ck_assert_int_eq(sl_coord_lease_take(b, 0, 1, "tcp://b:1"), 0);
    ck_assert_int_eq(sl_coord_lease_take(b, 0, 0, "tcp://b:1"), 1);
    ck_assert_int_eq(sl_coord_lease_take(a, 0, 2, "tcp://a:1"), 0);
    sl_coord_destroy(&a);
    sl_coord_destroy(&b);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("coord");
    TCase *tc = tcase_create("memcached");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_new_refuses_bad_arguments);
    tcase_add_test(tc, test_join_lists_members_sorted_and_leave_removes);
    tcase_add_test(tc, test_concurrent_joins_never_lose_a_member);
    tcase_add_test(tc, test_leases_are_exclusive_under_concurrency);
    tcase_add_test(tc, test_idle_member_loses_leases_after_ttl);
    tcase_add_test(tc, test_only_the_holder_releases);
    tcase_add_test(tc, test_forged_and_replayed_records_are_ignored_and_counted);
    tcase_add_test(tc, test_get_all_resolves_every_owner_in_one_call);
    tcase_add_test(tc, test_take_stamp_survives_renewal_and_changes_on_retake);
    tcase_add_test(tc, test_memcached_restart_fails_fast_then_recovers);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (access(MEMCACHED_BIN, X_OK) != 0) {
        fprintf(stderr, "test_coord: FAIL: %s not found (tools/install-deps installs memcached)\n",
                MEMCACHED_BIN);
        return 1;
    }
    g_port = s_free_port();
    snprintf(g_servers, sizeof g_servers, "127.0.0.1:%d", g_port);
    snprintf(g_pidfile, sizeof g_pidfile, "/tmp/sluice-test-coord.%d.pid", (int) getpid());
    g_mc_pid = g_port > 0 ? s_memcached_start(1) : -1;
    if (g_mc_pid <= 0) {
        fprintf(stderr, "test_coord: FAIL: could not start %s on 127.0.0.1:%d\n", MEMCACHED_BIN, g_port);
        return 1;
    }
    for (int i = 0; i < 100 && s_pidfile_pid() <= 0; i++)
        s_sleep_ms(10);
    int rc = sl_check_run(s_suite());
    pid_t last = s_pidfile_pid();
    if (last > 0 && last != g_mc_pid)
        kill(last, SIGTERM);          /* the server the restart test started */
    kill(g_mc_pid, SIGTERM);
    waitpid(g_mc_pid, NULL, 0);
    unlink(g_pidfile);
    return rc;
}
