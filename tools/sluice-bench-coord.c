/* sluice-bench-coord — CPU cost of coordination traffic on one host.
 *
 * Runs `members` coordination handles in this process (one host's pipeline
 * workers), lets them take an even share of sinks x partitions / hosts
 * leases, then heartbeats every member once per `interval` ms (each
 * heartbeat renews every lease the member holds) for `seconds`, and
 * optionally one ingest-side get_all per interval. Prints the process CPU
 * time per second of wall time = the fraction of one core. With --mc-pid,
 * also the memcached server's CPU over the same window.
 *
 *   sluice-bench-coord -s 127.0.0.1:11211 [-m 4] [-p 256] [-k 3] [-H 1]
 *                      [-t 10] [-i 1000] [-r] [--mc-pid PID] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/coord.h"

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
s_cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec
           + ru.ru_stime.tv_usec / 1e6;
}

static double
s_cpu_pid(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    unsigned long ut = 0, st = 0;
    int ok = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2;
    fclose(f);
    return ok ? (double) (ut + st) / (double) sysconf(_SC_CLK_TCK) : -1;
}

static void
s_sleep_until(double t)
{
    double d = t - s_now();
    if (d > 0) {
        struct timespec ts = { (time_t) d, (long) ((d - (double) (time_t) d) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

int
main(int argc, char **argv)
{
    const char *servers = "127.0.0.1:11211";
    unsigned members = 4, partitions = 256, sinks = 3, hosts = 1, seconds = 10, interval = 1000;
    int reader = 0;
    long mc_pid = 0;
    static const struct option longopts[] = { { "mc-pid", required_argument, NULL, 'P' },
                                              { NULL, 0, NULL, 0 } };
    int opt;
    while ((opt = getopt_long(argc, argv, "s:m:p:k:H:t:i:r", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': servers = optarg; break;
        case 'm': members = (unsigned) atoi(optarg); break;
        case 'p': partitions = (unsigned) atoi(optarg); break;
        case 'k': sinks = (unsigned) atoi(optarg); break;
        case 'H': hosts = (unsigned) atoi(optarg); break;
        case 't': seconds = (unsigned) atoi(optarg); break;
        case 'i': interval = (unsigned) atoi(optarg); break;
        case 'r': reader = 1; break;
        case 'P': mc_pid = atol(optarg); break;
        default:
            fprintf(stderr, "usage: %s -s HOST:PORT [-m members] [-p partitions] [-k sinks] "
                    "[-H hosts] [-t seconds] [-i interval_ms] [-r] [--mc-pid PID]\n", argv[0]);
            return 2;
        }
    }
    if (members == 0 || hosts == 0 || partitions == 0 || sinks == 0 || interval == 0) {
        fprintf(stderr, "sluice-bench-coord: counts must be positive\n");
        return 2;
    }
    const char secret[] = "bench-secret-0123456789abcdef0123";
    char group[64], err[256];
    snprintf(group, sizeof group, "bench-%d", (int) getpid());
    unsigned ttl = interval * 3;
    sl_coord_t **c = calloc(members + 1, sizeof *c);
    sl_coord_lease_t *all = calloc((size_t) sinks * partitions, sizeof *all);
    if (!c || !all)
        return 1;
    for (unsigned m = 0; m <= members; m++) {
        c[m] = sl_coord_new(servers, group, secret, strlen(secret), ttl, err, sizeof err);
        if (!c[m]) {
            fprintf(stderr, "sluice-bench-coord: %s\n", err);
            return 1;
        }
    }
    for (unsigned m = 0; m < members; m++) {
        char id[32], ep[64];
        snprintf(id, sizeof id, "bench-host/p%u", m);
        snprintf(ep, sizeof ep, "tcp://10.0.0.1:%u", 7000 + m);
        if (sl_coord_join(c[m], id, ep) != 0) {
            fprintf(stderr, "sluice-bench-coord: join failed (is memcached at %s?)\n", servers);
            return 1;
        }
    }
    /* wait out the pause after a new store epoch, then take this host's share */
    struct timespec pause = { (ttl + SL_COORD_SKEW_MS + 100) / 1000,
                              ((ttl + SL_COORD_SKEW_MS + 100) % 1000) * 1000000L };
    nanosleep(&pause, NULL);
    unsigned total = sinks * partitions, mine = total / hosts, taken = 0;
    for (unsigned i = 0; i < mine; i++) {
        unsigned m = i % members;
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://10.0.0.1:%u", 7000 + m);
        taken += sl_coord_lease_take(c[m], i / partitions, i % partitions, ep) == 0;
    }
    if (taken != mine) {
        fprintf(stderr, "sluice-bench-coord: took %u of %u leases\n", taken, mine);
        return 1;
    }
    double cpu0 = s_cpu_self(), mc0 = mc_pid ? s_cpu_pid(mc_pid) : 0, t0 = s_now();
    unsigned errors = 0;
    for (unsigned tick = 0; tick < seconds * 1000 / interval; tick++) {
        s_sleep_until(t0 + tick * interval / 1000.0);
        for (unsigned m = 0; m < members; m++)
            errors += sl_coord_heartbeat(c[m]) != 0;
        if (reader)
            errors += sl_coord_leases_get_all(c[members], sinks, partitions, all) < 0;
    }
    s_sleep_until(t0 + seconds);
    double wall = s_now() - t0, cpu = s_cpu_self() - cpu0;
    double mc = mc_pid ? s_cpu_pid(mc_pid) - mc0 : 0;
    sl_coord_stats_t st = { 0 };
    uint64_t renewed = 0;
    for (unsigned m = 0; m < members; m++) {
        sl_coord_stats(c[m], &st);
        renewed += st.leases_renewed;
    }
    printf("members=%u leases_on_host=%u (sinks=%u partitions=%u hosts=%u) interval=%ums "
           "reader=%s\n", members, mine, sinks, partitions, hosts, interval, reader ? "yes" : "no");
    printf("wall=%.2fs renewals=%llu errors=%u\n", wall, (unsigned long long) renewed, errors);
    printf("client cpu: %.1f ms/s = %.3f%% of one core\n", cpu / wall * 1000, cpu / wall * 100);
    if (mc_pid)
        printf("memcached cpu: %.1f ms/s = %.3f%% of one core\n", mc / wall * 1000, mc / wall * 100);
    for (unsigned m = 0; m < members; m++)
        sl_coord_leave(c[m]);
    for (unsigned m = 0; m <= members; m++)
        sl_coord_destroy(&c[m]);
    free(c);
    free(all);
    return errors ? 1 : 0;
}
