/* leases: the local backend of the lease interface. Two pipeline members
 * split the partitions between them over the ring, a taken partition's
 * route shows its endpoint and a nonzero owner epoch, every release, re-take
 * and respawn gives a new epoch, a failed bind leaves nothing held, and a
 * member that stays down has its partitions taken over. */
#include <check.h>

#include "tests/sl_check.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lease.h"
#include "common/stats.h"
#include "worker/leases.h"

#define S_PARTITIONS 8

typedef struct {
    sl_conf_t *conf;
    sl_shm_t *shm;
    char name[64];
    sl_worker_ctx_t pipe[2], ingest;
    unsigned n_sinks;
} s_env_t;

static void
s_env(s_env_t *e)
{
    char err[512], rd[64];
    memset(e, 0, sizeof *e);
    snprintf(rd, sizeof rd, "run_dir=/tmp/sl-leases-%d", (int) getpid());
    const char *ov[] = { rd, "workers.ingest=1", "workers.pipeline=2", "partitions=8" };
    e->conf = sl_conf_load(NULL, ov, 4, err, sizeof err);
    ck_assert_msg(e->conf != NULL, "config: %s", err);
    ck_assert_str_eq(e->conf->coord_backend, "local");
    e->n_sinks = (unsigned) sl_conf_n_sinks(e->conf);
    ck_assert_uint_ge(e->n_sinks, 1);
    snprintf(e->name, sizeof e->name, "/sluice-test-leases-%d", (int) getpid());
    e->shm = sl_shm_create(e->name, 3, sl_lease_table_size(e->n_sinks, S_PARTITIONS), err,
                           sizeof err);
    ck_assert_msg(e->shm != NULL, "shm: %s", err);
    ck_assert_ptr_nonnull(sl_lease_table_init((char *) e->shm + e->shm->lease_offset,
                                              e->n_sinks, S_PARTITIONS));
    e->ingest = (sl_worker_ctx_t) { .conf = e->conf, .shm = e->shm, .slot = &e->shm->slots[0],
                                    .slot_index = 0, .index = 0 };
    for (int j = 0; j < 2; j++) {
        e->pipe[j] = (sl_worker_ctx_t) { .conf = e->conf, .shm = e->shm,
                                         .slot = &e->shm->slots[1 + j], .slot_index = 1 + j,
                                         .index = j };
        atomic_store(&e->shm->slots[1 + j].role, SL_ROLE_PIPELINE);
        atomic_store(&e->shm->slots[1 + j].pid, 1000 + j);
        atomic_store(&e->shm->slots[1 + j].state, SL_WS_RUNNING);
    }
}

static void
s_env_free(s_env_t *e)
{
    sl_shm_unmap(e->shm);
    sl_shm_unlink(e->name);
    sl_conf_destroy(&e->conf);
}

/* A bind that binds nothing: records the endpoint, or fails on request. */
static int s_bind_fails;
static char s_bound[SL_LEASE_ENDPOINT_MAX];

static int
s_bind(void *arg, const char *endpoint, char *bound, size_t len)
{
    (void) arg;
    if (s_bind_fails) {
        errno = EADDRINUSE;
        return -1;
    }
    snprintf(bound, len, "%s", endpoint);
    snprintf(s_bound, sizeof s_bound, "%s", endpoint);
    return 0;
}

static sl_leases_t *
s_new(sl_worker_ctx_t *ctx, sl_leases_role_t role)
{
    char err[256];
    sl_leases_t *l = sl_leases_new(ctx, role, err, sizeof err);
    ck_assert_msg(l != NULL, "sl_leases_new: %s", err);
    return l;
}

START_TEST(members_split_the_partitions_over_the_ring)
{
    s_env_t e;
    s_env(&e);
    sl_leases_t *a = s_new(&e.pipe[0], SL_LEASES_MEMBER), *b = s_new(&e.pipe[1], SL_LEASES_MEMBER);
    ck_assert_str_eq(sl_leases_member_id(a), "pipeline-0");
    ck_assert_str_eq(sl_leases_member_id(b), "pipeline-1");
    ck_assert_uint_eq(sl_leases_period_ms(a), 100);
    ck_assert_int_eq(sl_leases_shared(a), 0);
    ck_assert_int_eq(sl_leases_tick(a), 0);
    ck_assert_int_eq(sl_leases_tick(b), 0);
    unsigned na = 0, nb = 0;
    for (unsigned s = 0; s < e.n_sinks; s++) {
        for (unsigned p = 0; p < S_PARTITIONS; p++) {
            int ma = sl_leases_mine(a, s, p), mb = sl_leases_mine(b, s, p);
            ck_assert_msg(ma + mb == 1, "partition %u/%u: member 0 says %d, member 1 says %d",
                          s, p, ma, mb);
            na += (unsigned) ma;
            nb += (unsigned) mb;
        }
    }
    ck_assert_msg(na > 0 && nb > 0, "one member got everything: %u and %u", na, nb);
    ck_assert_int_eq(sl_leases_mine(a, e.n_sinks, 0), 0);   /* out of range */
    sl_leases_destroy(&a);
    sl_leases_destroy(&b);
    ck_assert_ptr_null(a);
    s_env_free(&e);
}
END_TEST

START_TEST(routes_show_the_holder_and_a_new_epoch_for_every_holding)
{
    s_env_t e;
    s_env(&e);
    sl_leases_t *a = s_new(&e.pipe[0], SL_LEASES_MEMBER), *b = s_new(&e.pipe[1], SL_LEASES_MEMBER);
    sl_leases_t *r = s_new(&e.ingest, SL_LEASES_READER);
    char well_known[SL_LEASE_ENDPOINT_MAX];
    sl_worker_partition_endpoint(e.conf, 0, 3, well_known, sizeof well_known);
    sl_leases_route_t rt;

    ck_assert_int_eq(sl_leases_refresh(r), 1);         /* first call */
    sl_leases_route(r, 0, 3, &rt);
    ck_assert_str_eq(rt.endpoint, well_known);
    ck_assert_msg(rt.epoch == 0, "free partition has epoch %llu", (unsigned long long) rt.epoch);
    ck_assert_int_eq(sl_leases_refresh(r), 0);         /* nothing changed */

    s_bind_fails = 0;
    ck_assert_int_eq(sl_leases_take(a, 0, 3, s_bind, NULL), 0);
    ck_assert_str_eq(s_bound, well_known);
    ck_assert_int_eq(sl_leases_valid(a, 0, 3), 1);
    ck_assert_int_eq(sl_leases_take(b, 0, 3, s_bind, NULL), 1);   /* held by a */
    ck_assert_int_eq(sl_leases_valid(b, 0, 3), 0);
    ck_assert_int_eq(sl_leases_refresh(r), 1);
    sl_leases_route(r, 0, 3, &rt);
    ck_assert_str_eq(rt.endpoint, well_known);
    uint64_t e1 = rt.epoch;
    ck_assert_msg(e1 != 0, "held partition has epoch 0");

    sl_leases_release(a, 0, 3);
    ck_assert_int_eq(sl_leases_valid(a, 0, 3), 0);
    ck_assert_int_eq(sl_leases_refresh(r), 1);
    sl_leases_route(r, 0, 3, &rt);
    ck_assert_msg(rt.epoch == 0, "released partition has epoch %llu", (unsigned long long) rt.epoch);

    /* Taken again by the same member: a new holding, a new epoch. */
    ck_assert_int_eq(sl_leases_take(a, 0, 3, s_bind, NULL), 0);
    ck_assert_int_eq(sl_leases_refresh(r), 1);
    sl_leases_route(r, 0, 3, &rt);
    uint64_t e2 = rt.epoch;
    ck_assert_msg(e2 != 0 && e2 != e1, "re-take kept epoch %llu", (unsigned long long) e1);

    /* Member 0 dies and is respawned under the same index: the supervisor
     * frees its leases, the new process takes the partition again. */
    sl_leases_t *dead = a;
    ck_assert_uint_eq(sl_lease_release_all(sl_shm_leases(e.shm), e.pipe[0].slot_index), 1);
    sl_leases_t *respawned = s_new(&e.pipe[0], SL_LEASES_MEMBER);
    ck_assert_int_eq(sl_leases_take(respawned, 0, 3, s_bind, NULL), 0);
    ck_assert_int_eq(sl_leases_refresh(r), 1);
    sl_leases_route(r, 0, 3, &rt);
    ck_assert_msg(rt.epoch != 0 && rt.epoch != e1 && rt.epoch != e2,
                  "respawned holder has an old epoch %llu", (unsigned long long) rt.epoch);

    /* A bind that fails leaves the lease free. */
    s_bind_fails = 1;
    ck_assert_int_eq(sl_leases_take(b, 0, 4, s_bind, NULL), -1);
    s_bind_fails = 0;
    ck_assert_int_eq(sl_leases_valid(b, 0, 4), 0);
    sl_leases_refresh(r);
    sl_leases_route(r, 0, 4, &rt);
    ck_assert_msg(rt.epoch == 0, "a failed take left epoch %llu", (unsigned long long) rt.epoch);
    sl_lease_info_t li;
    ck_assert_int_eq(sl_lease_get(sl_shm_leases(e.shm), 0, 4, &li), 0);
    ck_assert_int_eq(li.owner, -1);

    sl_leases_release(respawned, 0, 3);
    sl_leases_destroy(&respawned);
    /* The dead one's handle: its lease is gone already; destroy releases
     * nothing of anyone else's. */
    sl_leases_destroy(&dead);
    ck_assert_int_eq(sl_leases_take(b, 0, 3, s_bind, NULL), 0);
    sl_leases_destroy(&b);          /* a member's destroy releases what it still holds */
    ck_assert_int_eq(sl_lease_get(sl_shm_leases(e.shm), 0, 3, &li), 0);
    ck_assert_int_eq(li.owner, -1);
    sl_leases_destroy(&r);
    s_env_free(&e);
}
END_TEST

START_TEST(a_member_that_stays_down_is_taken_over)
{
    s_env_t e;
    s_env(&e);
    atomic_store(&e.shm->slots[2].pid, 0);          /* pipeline #1 never comes up */
    atomic_store(&e.shm->slots[2].state, SL_WS_EXITED);
    sl_leases_t *a = s_new(&e.pipe[0], SL_LEASES_MEMBER);
    ck_assert_int_eq(sl_leases_tick(a), 0);
    unsigned before = 0, total = e.n_sinks * S_PARTITIONS;
    for (unsigned i = 0; i < total; i++)
        before += (unsigned) sl_leases_mine(a, i / S_PARTITIONS, i % S_PARTITIONS);
    ck_assert_msg(before < total, "member 0 took everything before the takeover delay");
    struct timespec ts = { SL_LEASES_TAKEOVER_MS / 1000, (SL_LEASES_TAKEOVER_MS % 1000 + 100) * 1000000L };
    nanosleep(&ts, NULL);
    ck_assert_int_eq(sl_leases_tick(a), 0);
    for (unsigned i = 0; i < total; i++)
        ck_assert_msg(sl_leases_mine(a, i / S_PARTITIONS, i % S_PARTITIONS),
                      "partition %u not taken over after %d ms", i, SL_LEASES_TAKEOVER_MS);
    sl_leases_destroy(&a);
    s_env_free(&e);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("leases");
    TCase *tc = tcase_create("local");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, members_split_the_partitions_over_the_ring);
    tcase_add_test(tc, routes_show_the_holder_and_a_new_epoch_for_every_holding);
    tcase_add_test(tc, a_member_that_stays_down_is_taken_over);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
