/* test_lease — ownership rules of the shared lease table, and that they hold
 * across processes: no partition ever has two holders, and readers never
 * see a torn (owner, generation, endpoint) triple. */
#include <check.h>

#include "tests/sl_check.h"
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/lease.h"

/* Anonymous mapping: page-aligned, like the supervisor's region. */
static void *
s_map(size_t bytes)
{
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_msg(mem != MAP_FAILED, "mmap of %zu bytes failed", bytes);
    return mem;
}

static sl_lease_table_t *
s_table(unsigned sinks, unsigned partitions, void **mem_p, size_t *bytes_p)
{
    size_t bytes = sl_lease_table_size(sinks, partitions);
    ck_assert_uint_gt(bytes, 0);
    void *mem = s_map(bytes);
    sl_lease_table_t *t = sl_lease_table_init(mem, sinks, partitions);
    ck_assert_ptr_nonnull(t);
    *mem_p = mem;
    *bytes_p = bytes;
    return t;
}

static void
s_expect(const sl_lease_table_t *t, unsigned sink, unsigned p, int32_t owner,
         uint64_t generation, const char *endpoint)
{
    sl_lease_info_t info;
    ck_assert_int_eq(sl_lease_get(t, sink, p, &info), 0);
    ck_assert_msg(info.owner == owner, "lease %u/%u: expected owner %d, got %d",
                  sink, p, owner, info.owner);
    ck_assert_msg(info.generation == generation,
                  "lease %u/%u: expected generation %llu, got %llu", sink, p,
                  (unsigned long long) generation, (unsigned long long) info.generation);
    ck_assert_msg(strcmp(info.endpoint, endpoint) == 0,
                  "lease %u/%u: expected endpoint \"%s\", got \"%s\"", sink, p,
                  endpoint, info.endpoint);
}

START_TEST(test_size_grows_with_slots_and_refuses_overflow)
{
    size_t one = sl_lease_table_size(1, 1), many = sl_lease_table_size(3, 16);
    ck_assert_uint_gt(one, 0);
    ck_assert_msg(many > one, "48 slots need more than 1 slot: %zu vs %zu", many, one);
    ck_assert_msg(sl_lease_table_size(UINT_MAX, UINT_MAX) == 0,
                  "an overflowing size must be reported as 0");
}
END_TEST

START_TEST(test_attach_validates_the_header)
{
    size_t bytes = sl_lease_table_size(2, 8);
    unsigned char *mem = s_map(bytes + 64);
    ck_assert_msg(sl_lease_table_attach(mem) == NULL, "zeroed memory is not a table");
    ck_assert_msg(sl_lease_table_init(mem + 8, 2, 8) == NULL, "misaligned memory must be refused");
    ck_assert_ptr_null(sl_lease_table_init(NULL, 2, 8));
    sl_lease_table_t *t = sl_lease_table_init(mem, 2, 8);
    ck_assert_ptr_eq(t, (void *) mem);
    sl_lease_table_t *a = sl_lease_table_attach(mem);
    ck_assert_ptr_eq(a, t);
    ck_assert_uint_eq(sl_lease_table_sinks(a), 2);
    ck_assert_uint_eq(sl_lease_table_partitions(a), 8);
    for (unsigned s = 0; s < 2; s++)
        for (unsigned p = 0; p < 8; p++)
            s_expect(a, s, p, -1, 0, "");
    ck_assert_uint_eq(sl_lease_version(a), 0);
    /* lease.c's header: u32 magic, u32 layout, u32 sinks, u32 partitions */
    mem[0] ^= 0xff;                     /* magic */
    ck_assert_msg(sl_lease_table_attach(mem) == NULL, "a bad magic must be refused");
    mem[0] ^= 0xff;
    mem[4] ^= 0x01;                     /* layout version */
    ck_assert_msg(sl_lease_table_attach(mem) == NULL, "another layout version must be refused");
    mem[4] ^= 0x01;
    mem[12] ^= 0x01;                    /* partitions no longer match the size */
    ck_assert_msg(sl_lease_table_attach(mem) == NULL, "inconsistent counts must be refused");
    mem[12] ^= 0x01;
    ck_assert_ptr_eq(sl_lease_table_attach(mem), t);
    munmap(mem, bytes + 64);
}
END_TEST

START_TEST(test_only_the_holder_releases)
{
    void *mem;
    size_t bytes;
    sl_lease_table_t *t = s_table(2, 4, &mem, &bytes);
    ck_assert_int_eq(sl_lease_take(t, 1, 2, 3, "ipc:///run/sluice/meter_sink.2"), 0);
    s_expect(t, 1, 2, 3, 1, "ipc:///run/sluice/meter_sink.2");
    ck_assert_msg(sl_lease_take(t, 1, 2, 4, "ipc:///elsewhere") == -1,
                  "a held lease must not be taken by another owner");
    s_expect(t, 1, 2, 3, 1, "ipc:///run/sluice/meter_sink.2");
    ck_assert_msg(sl_lease_release(t, 1, 2, 4) == -1, "only the holder may release");
    s_expect(t, 1, 2, 3, 1, "ipc:///run/sluice/meter_sink.2");
    ck_assert_int_eq(sl_lease_release(t, 1, 2, 3), 0);
    s_expect(t, 1, 2, -1, 2, "");
    ck_assert_msg(sl_lease_release(t, 1, 2, 3) == -1, "a free lease cannot be released");
    ck_assert_int_eq(sl_lease_take(t, 1, 2, 4, "tcp://10.0.0.2:7000"), 0);
    s_expect(t, 1, 2, 4, 3, "tcp://10.0.0.2:7000");
    /* the holder may re-publish a new endpoint */
    ck_assert_int_eq(sl_lease_take(t, 1, 2, 4, "tcp://10.0.0.2:7001"), 0);
    s_expect(t, 1, 2, 4, 4, "tcp://10.0.0.2:7001");
    /* neighbours untouched */
    s_expect(t, 1, 1, -1, 0, "");
    s_expect(t, 0, 2, -1, 0, "");
    munmap(mem, bytes);
}
END_TEST

START_TEST(test_out_of_range_and_bad_arguments_are_refused)
{
    void *mem;
    size_t bytes;
    sl_lease_table_t *t = s_table(2, 4, &mem, &bytes);
    sl_lease_info_t info;
    char longest[SL_LEASE_ENDPOINT_MAX + 1];
    memset(longest, 'e', sizeof longest);
    longest[SL_LEASE_ENDPOINT_MAX] = '\0';
    ck_assert_int_eq(sl_lease_take(t, 2, 0, 1, "x"), -1);
    ck_assert_int_eq(sl_lease_take(t, 0, 4, 1, "x"), -1);
    ck_assert_int_eq(sl_lease_take(t, 0, 0, -1, "x"), -1);
    ck_assert_int_eq(sl_lease_take(NULL, 0, 0, 1, "x"), -1);
    ck_assert_int_eq(sl_lease_release(t, 2, 0, 1), -1);
    ck_assert_int_eq(sl_lease_release(t, 0, 4, 1), -1);
    ck_assert_int_eq(sl_lease_get(t, 2, 0, &info), -1);
    ck_assert_int_eq(sl_lease_get(t, 0, 4, &info), -1);
    ck_assert_int_eq(sl_lease_get(t, 0, 0, NULL), -1);
    ck_assert_msg(sl_lease_take(t, 0, 0, 1, longest) == -1,
                  "an endpoint of %d bytes must be refused, not truncated",
                  SL_LEASE_ENDPOINT_MAX);
    longest[SL_LEASE_ENDPOINT_MAX - 1] = '\0';     /* the longest that fits */
    ck_assert_int_eq(sl_lease_take(t, 0, 0, 1, longest), 0);
    s_expect(t, 0, 0, 1, 1, longest);
    ck_assert_int_eq(sl_lease_take(t, 0, 1, 1, NULL), 0);
    s_expect(t, 0, 1, 1, 1, "");
    ck_assert_uint_eq(sl_lease_release_all(t, -1), 0);
    ck_assert_uint_eq(sl_lease_release_all(NULL, 1), 0);
    munmap(mem, bytes);
}
END_TEST

START_TEST(test_release_all_frees_only_the_dead_owner)
{
    void *mem;
    size_t bytes;
    sl_lease_table_t *t = s_table(3, 5, &mem, &bytes);
    ck_assert_int_eq(sl_lease_take(t, 0, 0, 7, "a"), 0);
    ck_assert_int_eq(sl_lease_take(t, 1, 4, 7, "b"), 0);
    ck_assert_int_eq(sl_lease_take(t, 2, 2, 7, "c"), 0);
    ck_assert_int_eq(sl_lease_take(t, 2, 3, 8, "d"), 0);
    unsigned n = sl_lease_release_all(t, 7);
    ck_assert_msg(n == 3, "expected 3 leases of owner 7 released, got %u", n);
    s_expect(t, 0, 0, -1, 2, "");
    s_expect(t, 1, 4, -1, 2, "");
    s_expect(t, 2, 2, -1, 2, "");
    s_expect(t, 2, 3, 8, 1, "d");
    ck_assert_uint_eq(sl_lease_release_all(t, 7), 0);
    ck_assert_int_eq(sl_lease_take(t, 1, 4, 9, "e"), 0);
    munmap(mem, bytes);
}
END_TEST

START_TEST(test_version_moves_on_every_change_only)
{
    void *mem;
    size_t bytes;
    sl_lease_table_t *t = s_table(1, 4, &mem, &bytes);
    uint64_t v0 = sl_lease_version(t);
    ck_assert_int_eq(sl_lease_take(t, 0, 1, 1, "x"), 0);
    uint64_t v1 = sl_lease_version(t);
    ck_assert_msg(v1 > v0, "take must change the version (%llu -> %llu)",
                  (unsigned long long) v0, (unsigned long long) v1);
    ck_assert_int_eq(sl_lease_take(t, 0, 1, 2, "y"), -1);
    ck_assert_int_eq(sl_lease_release(t, 0, 1, 2), -1);
    ck_assert_msg(sl_lease_version(t) == v1, "failed operations must not change the version");
    ck_assert_int_eq(sl_lease_release(t, 0, 1, 1), 0);
    uint64_t v2 = sl_lease_version(t);
    ck_assert_msg(v2 > v1, "release must change the version");
    ck_assert_int_eq(sl_lease_take(t, 0, 2, 1, "x"), 0);
    ck_assert_int_eq(sl_lease_take(t, 0, 3, 1, "x"), 0);
    ck_assert_uint_eq(sl_lease_release_all(t, 1), 2);
    ck_assert_msg(sl_lease_version(t) >= v2 + 4, "every take and release must count");
    munmap(mem, bytes);
}
END_TEST

/* --- several processes --------------------------------------------------- */

enum { HAMMER_WORKERS = 4, HAMMER_PARTITIONS = 3, HAMMER_SECONDS = 1 };

/* Lives in the shared mapping next to the table. */
typedef struct {
    _Atomic int      holders[HAMMER_PARTITIONS];
    _Atomic int      stop;
    _Atomic long     double_holds;
    _Atomic long     torn;
    _Atomic long     takes;
    _Atomic long     reads;
    _Atomic long     release_failures;
} s_shared_t;

/* Each owner's endpoint has its own length and fill, so a mix of two
 * writes can never look like a whole one. */
static void
s_endpoint(char *buf, size_t len, int32_t owner)
{
    int n = snprintf(buf, len, "ep-%d-", owner);
    size_t fill = 25 * (size_t) (owner + 1);
    for (size_t i = 0; i < fill && (size_t) n + i + 1 < len; i++)
        buf[(size_t) n + i] = (char) ('a' + owner);
    buf[(size_t) n + fill < len ? (size_t) n + fill : len - 1] = '\0';
}

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
s_hammer(sl_lease_table_t *t, s_shared_t *sh, int32_t owner)
{
    char ep[SL_LEASE_ENDPOINT_MAX];
    s_endpoint(ep, sizeof ep, owner);
    unsigned seed = (unsigned) owner * 2654435761u;
    while (!atomic_load(&sh->stop)) {
        unsigned p = (unsigned) rand_r(&seed) % HAMMER_PARTITIONS;
        if (sl_lease_take(t, 0, p, owner, ep) != 0)
            continue;
        atomic_fetch_add(&sh->takes, 1);
        if (atomic_fetch_add(&sh->holders[p], 1) != 0)
            atomic_fetch_add(&sh->double_holds, 1);
        if (rand_r(&seed) % 4 == 0)
            sched_yield();
        atomic_fetch_sub(&sh->holders[p], 1);
        if (sl_lease_release(t, 0, p, owner) != 0)
            atomic_fetch_add(&sh->release_failures, 1);
    }
}

static void
s_read(const sl_lease_table_t *t, s_shared_t *sh)
{
    uint64_t last_gen[HAMMER_PARTITIONS] = { 0 };
    char want[SL_LEASE_ENDPOINT_MAX];
    while (!atomic_load(&sh->stop)) {
        for (unsigned p = 0; p < HAMMER_PARTITIONS; p++) {
            sl_lease_info_t info;
            if (sl_lease_get(t, 0, p, &info) != 0) {
                atomic_fetch_add(&sh->torn, 1);
                continue;
            }
            atomic_fetch_add(&sh->reads, 1);
            int ok;
            if (info.owner < 0) {
                /* free: endpoint cleared, and an even number of changes */
                ok = info.endpoint[0] == '\0' && info.generation % 2 == 0;
            } else {
                s_endpoint(want, sizeof want, info.owner);
                ok = strcmp(info.endpoint, want) == 0 && info.generation % 2 == 1;
            }
            ok = ok && info.generation >= last_gen[p];
            last_gen[p] = info.generation;
            if (!ok)
                atomic_fetch_add(&sh->torn, 1);
        }
    }
}

START_TEST(test_processes_never_share_a_lease_nor_see_torn_slots)
{
    size_t tbytes = sl_lease_table_size(1, HAMMER_PARTITIONS);
    size_t off = (tbytes + 63) / 64 * 64;
    size_t bytes = off + sizeof(s_shared_t);
    unsigned char *mem = s_map(bytes);
    sl_lease_table_t *t = sl_lease_table_init(mem, 1, HAMMER_PARTITIONS);
    ck_assert_ptr_nonnull(t);
    s_shared_t *sh = (s_shared_t *) (mem + off);

    pid_t pids[HAMMER_WORKERS + 1];
    for (int i = 0; i <= HAMMER_WORKERS; i++) {
        pid_t pid = fork();
        ck_assert_msg(pid >= 0, "fork failed");
        if (pid == 0) {
            /* each child maps nothing new: it uses the inherited mapping
             * through attach, as a worker would */
            sl_lease_table_t *mine = sl_lease_table_attach(mem);
            if (!mine)
                _exit(3);
            if (i < HAMMER_WORKERS)
                s_hammer(mine, sh, i);
            else
                s_read(mine, sh);
            _exit(0);
        }
        pids[i] = pid;
    }
    double end = s_now() + HAMMER_SECONDS;
    while (s_now() < end)
        usleep(10000);
    atomic_store(&sh->stop, 1);
    for (int i = 0; i <= HAMMER_WORKERS; i++) {
        int status;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d ended with status 0x%x", i, status);
    }
    long takes = atomic_load(&sh->takes), reads = atomic_load(&sh->reads);
    ck_assert_msg(atomic_load(&sh->double_holds) == 0,
                  "expected no partition with two holders, got %ld in %ld takes",
                  atomic_load(&sh->double_holds), takes);
    ck_assert_msg(atomic_load(&sh->release_failures) == 0,
                  "expected every holder's release to succeed, %ld failed",
                  atomic_load(&sh->release_failures));
    ck_assert_msg(atomic_load(&sh->torn) == 0,
                  "expected no torn snapshot, got %ld in %ld reads",
                  atomic_load(&sh->torn), reads);
    ck_assert_msg(takes > 1000 && reads > 1000,
                  "the hammer did too little to prove anything: %ld takes, %ld reads",
                  takes, reads);
    /* every lease ends free and the table still validates */
    for (unsigned p = 0; p < HAMMER_PARTITIONS; p++) {
        sl_lease_info_t info;
        ck_assert_int_eq(sl_lease_get(t, 0, p, &info), 0);
        ck_assert_int_eq(info.owner, -1);
    }
    munmap(mem, bytes);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, test_size_grows_with_slots_and_refuses_overflow);
    tcase_add_test(tc, test_attach_validates_the_header);
    tcase_add_test(tc, test_only_the_holder_releases);
    tcase_add_test(tc, test_out_of_range_and_bad_arguments_are_refused);
    tcase_add_test(tc, test_release_all_frees_only_the_dead_owner);
    tcase_add_test(tc, test_version_moves_on_every_change_only);
    suite_add_tcase(s, tc);
    tc = tcase_create("processes");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_processes_never_share_a_lease_nor_see_torn_slots);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
