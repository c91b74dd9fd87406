/* Several agents ("hosts": own run dirs, own tcp ports) share one pipeline
 * through a real memcached: exactly one owner per partition at any time,
 * takeover after a crash, little movement when one joins, recovery after a
 * memcached restart, no say for an agent without the group's secret. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/coord.h"
#include "tests/func/harness.h"
#include "tests/sl_check.h"

#define S_SINKS 1
#define S_PARTS 16
#define S_TTL_MS 1000
#define S_SECRET "0123456789abcdef-cluster-test-secret"

static int s_port;
static pid_t s_mc;
static int s_port2;            /* a second server, for the invariance test */
static pid_t s_mc2;

/* The memcached server list of the invariance tests. */
static const char *
s_inv_servers(void)
{
    static char buf[64];
    if (s_port2)
        snprintf(buf, sizeof buf, "127.0.0.1:%d,127.0.0.1:%d", s_port, s_port2);
    else
        snprintf(buf, sizeof buf, "127.0.0.1:%d", s_port);
    return buf;
}

static void
s_config(sl_h_agent_t *a, const char *secret)
{
    char cfg[2048];
    sl_h_write(a, "secret", secret);
    sl_h_write_corpus(sl_h_path(a, "input.jsonl"), 60);
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\n"
             "workers: {ingest: 1, pipeline: 2}\n"
             "partitions: %d\n"
             "shutdown_grace: 10\n"
             "sources: [{type: file, path: input.jsonl, rate: 250}]\n"
             "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n"
             "coordination:\n"
             "  backend: memcached://127.0.0.1:%d\n"
             "  group: cluster-test\n"
             "  heartbeat: 200\n"
             "  lease_ttl: %d\n"
             "  same_host_ipc: 0\n"     /* these agents stand for separate hosts: tcp */
             "  secret_file: secret\n",
             a->dir, S_PARTS, SL_SRCDIR, s_port, S_TTL_MS);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[512];
    snprintf(pipe, sizeof pipe, "sources: [{name: s, meters: ['*'], sinks: [k]}]\n"
             "sinks: [{name: k, publishers: ['file://%s/samples.jsonl']}]\n", a->dir);
    sl_h_write(a, "pipeline.yaml", pipe);
}

/* Owners of every partition as memcached says (verified records). */
static int
s_owners(char owners[S_PARTS][SL_COORD_ID_MAX])
{
    char err[256], servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", s_port);
    sl_coord_t *c = sl_coord_new(servers, "cluster-test", S_SECRET, strlen(S_SECRET), S_TTL_MS,
                                 err, sizeof err);
    ck_assert_msg(c != NULL, "coord: %s", err);
    sl_coord_lease_t l[S_PARTS];
    ssize_t n = sl_coord_leases_get_all(c, S_SINKS, S_PARTS, l);
    for (int p = 0; p < S_PARTS; p++) {
        memcpy(owners[p], n >= 0 ? l[p].owner : "", n >= 0 ? SL_COORD_ID_MAX : 1);
        owners[p][SL_COORD_ID_MAX - 1] = '\0';
    }
    sl_coord_destroy(&c);
    return (int) n;
}

/* The invariant, from the agents' side: no partition is bound by two live
 * agents at once (each agent mirrors what it holds in its shared memory). */
static void
s_check_one_owner(sl_h_agent_t *agents, int n)
{
    for (int p = 0; p < S_PARTS; p++) {
        int holders = 0;
        for (int k = 0; k < n; k++) {
            if (agents[k].pid <= 0 || !agents[k].shm)
                continue;
            sl_lease_info_t li;
            if (sl_lease_get(sl_shm_leases_ro(agents[k].shm), 0, (unsigned) p, &li) == 0 && li.owner >= 0)
                holders++;
        }
        ck_assert_msg(holders <= 1, "partition %d bound by %d agents at once", p, holders);
    }
}

static int
s_all_owned(void)
{
    char o[S_PARTS][SL_COORD_ID_MAX];
    if (s_owners(o) < 0)
        return 0;
    for (int p = 0; p < S_PARTS; p++)
        if (!o[p][0])
            return 0;
    return 1;
}

/* Polls for up to ms, checking the invariant all along; 0 once cond holds. */
static int
s_watch(sl_h_agent_t *agents, int n, int (*cond)(sl_h_agent_t *, int), int ms)
{
    for (int t = 0; t < ms; t += 50) {
        s_check_one_owner(agents, n);
        if (cond(agents, n))
            return 0;
        sl_h_sleep_ms(50);
    }
    return -1;
}

static int
s_cond_all_owned(sl_h_agent_t *agents, int n)
{
    (void) agents;
    (void) n;
    return s_all_owned();
}

static uint64_t s_published_mark[8];

static int
s_cond_progress(sl_h_agent_t *agents, int n)
{
    for (int k = 0; k < n; k++)
        if (agents[k].pid > 0 && sl_h_total(&agents[k], SL_C_samples_published) <= s_published_mark[k])
            return 0;
    return 1;
}

static void
s_mark(sl_h_agent_t *agents, int n)
{
    for (int k = 0; k < n; k++)
        s_published_mark[k] = sl_h_total(&agents[k], SL_C_samples_published);
}

static int
s_instance_of(const char *owner, char ids[][16], int n)
{
    for (int k = 0; k < n; k++)
        if (strstr(owner, ids[k]))
            return k;
    return -1;
}

START_TEST(agents_share_partitions_through_memcached)
{
    s_port = sl_h_free_port();
    s_mc = sl_h_memcached_start(s_port);
    ck_assert_msg(s_mc > 0, "memcached did not start on 127.0.0.1:%d (apt-get install memcached)", s_port);

    sl_h_agent_t ag[5];
    char ids[5][16];
    for (int k = 0; k < 3; k++) {
        char tag[16];
        snprintf(tag, sizeof tag, "host%d", k);
        sl_h_mkdir(&ag[k], tag);
        s_config(&ag[k], S_SECRET);
        ck_assert_msg(sl_h_start(&ag[k], 10000) == 0, "agent %d did not start; see %s", k, ag[k].log);
        char name[64];
        sl_shm_name(ag[k].dir, name, sizeof name);
        snprintf(ids[k], sizeof ids[k], ":%.8s/", name + strlen("/sluice."));
    }
    /* Every partition owned by one of the three, and all of them work. */
    ck_assert_msg(s_watch(ag, 3, s_cond_all_owned, 10 * S_TTL_MS) == 0, "partitions not all owned");
    s_mark(ag, 3);
    ck_assert_msg(s_watch(ag, 3, s_cond_progress, 10000) == 0, "not every agent publishes");
    char before[S_PARTS][SL_COORD_ID_MAX];
    s_owners(before);
    int per[3] = { 0, 0, 0 };
    for (int p = 0; p < S_PARTS; p++) {
        int k = s_instance_of(before[p], ids, 3);
        ck_assert_msg(k >= 0, "partition %d owned by a stranger: %s", p, before[p]);
        per[k]++;
    }
    ck_assert_msg(per[0] && per[1] && per[2], "load not shared: %d/%d/%d", per[0], per[1], per[2]);

    /* A host crashes: its partitions are owned again within 2 x lease_ttl. */
    sl_h_crash(&ag[2]);
    s_check_one_owner(ag, 2);
    int taken = 0;
    for (int t = 0; t < 2 * S_TTL_MS + 600 && !taken; t += 50) {   /* + one heartbeat of slack */
        char o[S_PARTS][SL_COORD_ID_MAX];
        s_check_one_owner(ag, 2);
        if (s_owners(o) >= 0) {
            taken = 1;
            for (int p = 0; p < S_PARTS; p++) {
                int k = s_instance_of(o[p], ids, 3);
                taken &= k == 0 || k == 1;
            }
        }
        if (!taken)
            sl_h_sleep_ms(50);
    }
    ck_assert_msg(taken, "the crashed agent's partitions were not taken over within 2 x lease_ttl");
    s_mark(ag, 2);
    ck_assert_msg(s_watch(ag, 2, s_cond_progress, 10000) == 0, "processing did not continue");

    /* A fourth agent joins: about 1/3 of the partitions move to it, no more. */
    char mid[S_PARTS][SL_COORD_ID_MAX];
    s_owners(mid);
    sl_h_mkdir(&ag[3], "host3");
    s_config(&ag[3], S_SECRET);
    ck_assert_msg(sl_h_start(&ag[3], 10000) == 0, "agent 3 did not start");
    char name[64];
    sl_shm_name(ag[3].dir, name, sizeof name);
    snprintf(ids[3], sizeof ids[3], ":%.8s/", name + strlen("/sluice."));
    sl_h_agent_t live[3] = { ag[0], ag[1], ag[3] };
    sl_h_sleep_ms(3 * S_TTL_MS);
    ck_assert_msg(s_watch(live, 3, s_cond_all_owned, 10 * S_TTL_MS) == 0, "not all owned after the join");
    char after[S_PARTS][SL_COORD_ID_MAX];
    s_owners(after);
    int moved = 0, to_new = 0;
    for (int p = 0; p < S_PARTS; p++) {
        moved += strcmp(mid[p], after[p]) != 0;
        to_new += s_instance_of(after[p], ids, 4) == 3;
    }
    /* 4 -> 6 ring members: ideally 16 * 2/6 = 5.3 partitions move. */
    ck_assert_msg(to_new > 0, "the new agent got nothing");
    ck_assert_msg(moved <= 9, "%d of %d partitions moved when one agent joined", moved, S_PARTS);
    fprintf(stderr, "join: %d of %d partitions moved (%d to the new agent)\n", moved, S_PARTS, to_new);

    /* memcached restarts (its data is gone): full recovery. */
    sl_h_kill(s_mc);
    sl_h_sleep_ms(2 * S_TTL_MS);
    s_check_one_owner(live, 3);
    s_mc = sl_h_memcached_start(s_port);
    ck_assert_msg(s_mc > 0, "memcached did not restart");
    ck_assert_msg(s_watch(live, 3, s_cond_all_owned, 15 * S_TTL_MS) == 0,
                  "partitions not all owned again after the memcached restart");
    s_mark(live, 3);
    ck_assert_msg(s_watch(live, 3, s_cond_progress, 10000) == 0, "processing did not resume");

    /* An agent without the secret cannot join or take anything. */
    sl_h_mkdir(&ag[4], "phantom");
    s_config(&ag[4], "not-the-group-secret-at-all-0000");
    ck_assert_msg(sl_h_start(&ag[4], 10000) == 0, "phantom agent did not start");
    sl_shm_name(ag[4].dir, name, sizeof name);
    snprintf(ids[4], sizeof ids[4], ":%.8s/", name + strlen("/sluice."));
    for (int t = 0; t < 4 * S_TTL_MS; t += 100) {
        char o[S_PARTS][SL_COORD_ID_MAX];
        s_owners(o);
        for (int p = 0; p < S_PARTS; p++)
            ck_assert_msg(s_instance_of(o[p], ids, 5) != 4, "the phantom owns partition %d", p);
        ck_assert_uint_eq(sl_h_total(&ag[4], SL_C_leases_taken), 0);
        sl_h_sleep_ms(100);
    }

    for (int k = 0; k < 5; k++) {
        if (k == 2)
            continue;
        char what[32];
        snprintf(what, sizeof what, "agent %d", k);
        sl_h_stop_ok(&ag[k], 20000, what);
    }
    for (int k = 0; k < 5; k++)
        sl_h_cleanup(&ag[k]);
    sl_h_kill(s_mc);
}
END_TEST


/* The invariance test of the transformers, across agents: the same stream
 * through three agents sharing 16 partitions gives the output one agent
 * gives. (Ownership is settled before the stream starts: transformer state
 * does not move between hosts yet.) */
#define S_INV_N 4000

static void
s_inv_config(sl_h_agent_t *a, const char *ep, int coordinated)
{
    char cfg[2048], coord[512] = "";
    sl_h_write(a, "secret", S_SECRET);
    if (coordinated)
        snprintf(coord, sizeof coord, "coordination: {backend: 'memcached://%s', "
                 "group: inv, heartbeat: 200, lease_ttl: %d, secret_file: secret}\n", s_inv_servers(),
                 S_TTL_MS);
    snprintf(cfg, sizeof cfg,
             "run_dir: %s\nworkers: {ingest: 1, pipeline: 2}\npartitions: 16\nshutdown_grace: 20\n"
             "sources: [{type: zmq, endpoint: '%s', mode: connect}]\n"
             "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n%s",
             a->dir, ep, SL_SRCDIR, coord);
    sl_h_write(a, "sluice.yaml", cfg);
    char pipe[2048];
    snprintf(pipe, sizeof pipe,
             "sources: [{name: all, meters: ['*'], sinks: [roc, agg]}]\n"
             "sinks:\n"
             "  - name: roc\n"
             "    reorder_window: 1500\n"
             "    transformers:\n"
             "      - {name: rate_of_change, parameters: {target: {name: rate, unit: '/s', type: gauge}}}\n"
             "    publishers: ['file://%s/roc.jsonl']\n"
             "  - name: agg\n"
             "    reorder_window: 1500\n"
             "    transformers: [{name: aggregator, parameters: {size: 5}}]\n"
             "    publishers: ['file://%s/agg.jsonl']\n", a->dir, a->dir);
    sl_h_write(a, "pipeline.yaml", pipe);
}

static const char *const s_inv_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id", "timestamp",
    "resource_metadata", "source", NULL,
};

static char *
s_inv_output(sl_h_agent_t *agents, int n)
{
    size_t cap = 1 << 22, len = 0;
    char *all = malloc(cap);
    all[0] = '\0';
    const char *files[] = { "roc.jsonl", "agg.jsonl" };
    for (int f = 0; f < 2; f++) {
        size_t rawcap = 1 << 20, rawlen = 0;
        char *raw = malloc(rawcap);
        raw[0] = '\0';
        for (int k = 0; k < n; k++) {
            char *one = sl_h_slurp(sl_h_path(&agents[k], files[f]), NULL);
            size_t l = one ? strlen(one) : 0;
            if (rawlen + l + 1 > rawcap)
                raw = realloc(raw, rawcap = (rawlen + l + 1) * 2);
            if (l)
                memcpy(raw + rawlen, one, l + 1);
            rawlen += l;
            free(one);
        }
        char *canon = sl_h_canonical_samples(raw, s_inv_fields);
        size_t need = len + strlen(canon) + 32;
        if (need > cap)
            all = realloc(all, cap = need * 2);
        len += (size_t) sprintf(all + len, "== %s\n%s", files[f], canon);
        free(canon);
        free(raw);
    }
    return all;
}

static int
s_inv_done(sl_h_agent_t *agents, int n)
{
    uint64_t recv = 0, routed = 0, in = 0, out = 0;
    for (int k = 0; k < n; k++) {
        recv += sl_h_total(&agents[k], SL_C_received);
        routed += sl_h_total(&agents[k], SL_C_samples_routed);
        in += sl_h_total(&agents[k], SL_C_samples_received);
    }
    (void) out;
    return recv == S_INV_N && routed == in;
}

static int
s_inv_settled(sl_h_agent_t *agents, int n)
{
    (void) agents;
    (void) n;
    char err[256];
    sl_coord_t *c = sl_coord_new(s_inv_servers(), "inv", S_SECRET, strlen(S_SECRET), S_TTL_MS, err, sizeof err);
    sl_coord_member_t m[16];
    ssize_t nm = c ? sl_coord_members(c, m, 16) : -1;
    sl_coord_lease_t l[32];
    ssize_t owned = c ? sl_coord_leases_get_all(c, 2, 16, l) : -1;
    sl_coord_destroy(&c);
    return nm == 6 && owned == 32;
}

static int
s_inv_settled_one(sl_h_agent_t *agents, int n)
{
    (void) agents;
    (void) n;
    char servers[64], err[256];
    snprintf(servers, sizeof servers, "127.0.0.1:%d", s_port);
    sl_coord_t *c = sl_coord_new(servers, "inv", S_SECRET, strlen(S_SECRET), S_TTL_MS, err, sizeof err);
    sl_coord_member_t m[16];
    ssize_t nm = c ? sl_coord_members(c, m, 16) : -1;
    sl_coord_lease_t l[16];
    ssize_t owned = c ? sl_coord_leases_get_all(c, 1, 16, l) : -1;
    sl_coord_destroy(&c);
    return nm == 6 && owned == 16;
}

static void
s_inv_run(sl_h_agent_t *agents, int n, const char *ep, const char *input)
{
    /* --run-dir for each agent: close only once they have everything
     * (libzmq's linger alone can lose the tail, see README) */
    char cmd[4096];
    size_t o = (size_t) snprintf(cmd, sizeof cmd, "%s/tools/sluice-inject --peers %d --endpoint "
                                 "'%s' --linger 60", SL_BUILDDIR, n, ep);
    for (int k = 0; k < n; k++)
        o += (size_t) snprintf(cmd + o, sizeof cmd - o, " --run-dir %s", agents[k].dir);
    snprintf(cmd + o, sizeof cmd - o, " %s >/dev/null", input);
    ck_assert_int_eq(system(cmd), 0);
    for (int t = 0; t < 60000 && !s_inv_done(agents, n); t += 50)
        sl_h_sleep_ms(50);
    uint64_t recv = 0, routed = 0, in = 0;
    for (int k = 0; k < n; k++) {
        recv += sl_h_total(&agents[k], SL_C_received);
        routed += sl_h_total(&agents[k], SL_C_samples_routed);
        in += sl_h_total(&agents[k], SL_C_samples_received);
    }
    ck_assert_msg(s_inv_done(agents, n), "the stream was not consumed: received %llu of %d, "
                  "samples routed %llu, received by pipeline workers %llu",
                  (unsigned long long) recv, S_INV_N, (unsigned long long) routed,
                  (unsigned long long) in);
    for (int k = 0; k < n; k++) {
        char what[32];
        snprintf(what, sizeof what, "agent %d", k);
        sl_h_stop_ok(&agents[k], 30000, what);
    }
}

START_TEST(three_agents_give_the_output_of_one)
{
    /* Two memcached servers: keys spread over both by consistent hashing. */
    s_port = sl_h_free_port();
    s_mc = sl_h_memcached_start(s_port);
    ck_assert_msg(s_mc > 0, "memcached did not start on 127.0.0.1:%d (apt-get install memcached)", s_port);
    s_port2 = sl_h_free_port();
    s_mc2 = sl_h_memcached_start(s_port2);
    ck_assert_msg(s_mc2 > 0, "second memcached did not start on 127.0.0.1:%d", s_port2);
    sl_h_agent_t one, ag[3];
    sl_h_mkdir(&one, "inv-one");
    char input[512], ep[512];
    snprintf(input, sizeof input, "%s", sl_h_path(&one, "input.jsonl"));
    ck_assert_int_eq(sl_h_run("%s/tools/sluice-inject --generate %d --seed 11 --resources 150 "
                              "--output %s", SL_BUILDDIR, S_INV_N, input), 0);
    snprintf(ep, sizeof ep, "ipc://%s/notify.sock", one.dir);
    s_inv_config(&one, ep, 0);
    ck_assert_msg(sl_h_start(&one, 10000) == 0, "baseline agent did not start");
    s_inv_run(&one, 1, ep, input);
    char *want = s_inv_output(&one, 1);
    ck_assert_msg(strstr(want, "\"name\":\"rate\""), "no rates in the baseline");

    snprintf(ep, sizeof ep, "ipc://%s/notify3.sock", one.dir);
    for (int k = 0; k < 3; k++) {
        char tag[16];
        snprintf(tag, sizeof tag, "inv-host%d", k);
        sl_h_mkdir(&ag[k], tag);
        s_inv_config(&ag[k], ep, 1);
        ck_assert_msg(sl_h_start(&ag[k], 10000) == 0, "agent %d did not start", k);
    }
    ck_assert_msg(s_watch(ag, 3, s_inv_settled, 20 * S_TTL_MS) == 0, "ownership did not settle");
    sl_h_sleep_ms(4 * S_TTL_MS);   /* a joiner's takeover pause is over */
    ck_assert(s_inv_settled(ag, 3));
    {   /* agents on one host name an ipc endpoint beside the tcp one */
        char err[256];
        sl_coord_t *c = sl_coord_new(s_inv_servers(), "inv", S_SECRET, strlen(S_SECRET), S_TTL_MS, err, sizeof err);
        sl_coord_lease_t l[32];
        ck_assert_int_eq(sl_coord_leases_get_all(c, 2, 16, l), 32);
        for (int i = 0; i < 32; i++)
            ck_assert_msg(strstr(l[i].endpoint, "tcp://") == l[i].endpoint && strstr(l[i].endpoint, "|ipc://"),
                          "lease %d endpoint %s lacks tcp|ipc", i, l[i].endpoint);
        sl_coord_destroy(&c);
    }
    s_inv_run(ag, 3, ep, input);
    char *got = s_inv_output(ag, 3);
    if (strcmp(want, got) != 0) {
        FILE *f = fopen("/tmp/sluice-cluster-inv.want", "w");
        fputs(want, f);
        fclose(f);
        f = fopen("/tmp/sluice-cluster-inv.got", "w");
        fputs(got, f);
        fclose(f);
        sl_h_run("diff /tmp/sluice-cluster-inv.want /tmp/sluice-cluster-inv.got | head -10 >&2");
    }
    ck_assert_msg(strcmp(want, got) == 0, "three agents' output differs from one agent's (diff above)");
    free(want);
    free(got);
    for (int k = 0; k < 3; k++)
        sl_h_cleanup(&ag[k]);
    sl_h_cleanup(&one);
    sl_h_kill(s_mc);
    sl_h_kill(s_mc2);
    s_port2 = 0;
}
END_TEST


/* A graceful leave under load: the leaving agent processes and confirms
 * what reached it, and frames that reach its partitions after it closed
 * them are sent again by the ingest workers to the new owners, so every
 * sample any agent routed is published exactly once. */
START_TEST(a_graceful_leave_under_load_loses_no_sample)
{
    s_port = sl_h_free_port();
    s_mc = sl_h_memcached_start(s_port);
    ck_assert_msg(s_mc > 0, "memcached did not start on 127.0.0.1:%d (apt-get install memcached)", s_port);
    sl_h_agent_t ag[3];
    char ep[512], input[512];
    for (int k = 0; k < 3; k++) {
        char tag[16];
        snprintf(tag, sizeof tag, "leave%d", k);
        sl_h_mkdir(&ag[k], tag);
    }
    snprintf(ep, sizeof ep, "ipc://%s/notify.sock", ag[0].dir);
    snprintf(input, sizeof input, "%s", sl_h_path(&ag[0], "input.jsonl"));
    sl_h_write_corpus(input, 40);
    for (int k = 0; k < 3; k++) {
        char cfg[4096];
        sl_h_write(&ag[k], "secret", S_SECRET);
        snprintf(cfg, sizeof cfg,
                 "run_dir: %s\nworkers: {ingest: 1, pipeline: 2}\npartitions: 16\nshutdown_grace: 20\n"
                 "sources: [{type: zmq, endpoint: '%s', mode: connect}]\n"
                 "ceilometer: {pipeline: pipeline.yaml, meters: %s/conf/meters.yaml}\n"
                 "coordination: {backend: 'memcached://127.0.0.1:%d', group: inv, heartbeat: 200, "
                 "lease_ttl: %d, secret_file: secret}\n", ag[k].dir, ep, SL_SRCDIR, s_port, S_TTL_MS);
        sl_h_write(&ag[k], "sluice.yaml", cfg);
        char pipe[2048];
        snprintf(pipe, sizeof pipe, "sources: [{name: s, meters: ['*'], sinks: [k]}]\n"
                 "sinks: [{name: k, publishers: ['file://%s/samples.jsonl']}]\n", ag[k].dir);
        sl_h_write(&ag[k], "pipeline.yaml", pipe);
        ck_assert_msg(sl_h_start(&ag[k], 10000) == 0, "agent %d did not start", k);
    }
    ck_assert_msg(s_watch(ag, 3, s_inv_settled_one, 20 * S_TTL_MS) == 0, "ownership did not settle");
    sl_h_sleep_ms(4 * S_TTL_MS);
    pid_t inj = fork();
    if (inj == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execl(SL_BUILDDIR "/tools/sluice-inject", "sluice-inject", "--peers", "3", "--rate", "1000",
              "--endpoint", ep, input, (char *) NULL);
        _exit(127);
    }
    sl_h_sleep_ms(1500);
    sl_h_stop_ok(&ag[2], 30000, "leaving agent");   /* agent 2 leaves gracefully */
    int st;
    ck_assert_int_eq(waitpid(inj, &st, 0), inj);
    uint64_t routed = 0, published = 0, forwarded = 0;
    for (int t = 0; t < 20000; t += 100) {
        routed = published = forwarded = 0;
        for (int k = 0; k < 3; k++) {
            routed += sl_h_total(&ag[k], SL_C_samples_routed);
            published += sl_h_total(&ag[k], SL_C_samples_published);
            forwarded += sl_h_total(&ag[k], SL_C_frames_resent);
        }
        if (routed == published)
            break;
        sl_h_sleep_ms(100);
    }
    fprintf(stderr, "graceful leave: %llu samples routed, %llu published, %llu frames resent\n",
            (unsigned long long) routed, (unsigned long long) published, (unsigned long long) forwarded);
    ck_assert_msg(routed > 1000 && routed == published,
                  "%llu samples routed but %llu published across the agents",
                  (unsigned long long) routed, (unsigned long long) published);
    for (int k = 0; k < 2; k++) {
        char what[32];
        snprintf(what, sizeof what, "agent %d", k);
        sl_h_stop_ok(&ag[k], 30000, what);
    }
    for (int k = 0; k < 3; k++)
        sl_h_cleanup(&ag[k]);
    sl_h_kill(s_mc);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("cluster");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, agents_share_partitions_through_memcached);
    tcase_add_test(tc, three_agents_give_the_output_of_one);
    tcase_add_test(tc, a_graceful_leave_under_load_loses_no_sample);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
