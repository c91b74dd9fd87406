/* sluice-bench-transform — transformer chain throughput on one core.
 *
 * Builds samples in memory (R resources, Nova-like resource_metadata of
 * ~700 bytes, cumulative cpu counters 60 s apart) and runs them through a
 * chain one notification at a time (process + flush per sample, as the
 * pipeline worker does), publishing nothing. Chains:
 *   cpu:  rate_of_change (stock cpu_util scale expression reading
 *         resource_metadata.cpu_number) + unit_conversion (scale expression)
 *   disk: rate_of_change with the stock regex name/unit mapping
 *   agg:  aggregator (size 100, user_id/project_id last)
 * usage: sluice-bench-transform [-n SAMPLES] [-r RESOURCES]
 * Prints one JSON object per chain with samples/s. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/pipeline.h"
#include "worker/transform.h"

static const char *const s_chains[][2] = {
    { "cpu",
      "      - name: rate_of_change\n"
      "        parameters:\n"
      "          target:\n"
      "            name: cpu_util\n"
      "            unit: \"%\"\n"
      "            type: gauge\n"
      "            scale: \"100.0 / (10**9 * (resource_metadata.cpu_number or 1))\"\n"
      "      - name: unit_conversion\n"
      "        parameters:\n"
      "          target: {name: cpu_util_ratio, unit: \"1\", scale: \"volume / 100.0\"}\n" },
    { "disk",
      "      - name: rate_of_change\n"
      "        parameters:\n"
      "          source:\n"
      "            map_from:\n"
      "              name: \"(disk\\\\.device|disk)\\\\.(read|write)\\\\.(bytes|requests)\"\n"
      "              unit: \"(B|request)\"\n"
      "          target:\n"
      "            map_to:\n"
      "              name: \"\\\\1.\\\\2.\\\\3.rate\"\n"
      "              unit: \"\\\\1/s\"\n"
      "            type: gauge\n" },
    { "agg",
      "      - name: aggregator\n"
      "        parameters: {size: 100, user_id: last, project_id: last}\n" },
};

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    size_t n = 2000000, r = 10000;
    int opt;
    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'r')
            r = strtoull(optarg, NULL, 10);
        else
            return 2;
    }
    if (!r || !n)
        return 2;
    sl_log_init('T', SL_LOG_ERROR, NULL);
    sl_arena_t a;
    sl_arena_init(&a, 0);
    /* r resources, each with its metadata, ids and an advancing counter. */
    char **rids = sl_xmalloc(r * sizeof *rids), **mds = sl_xmalloc(r * sizeof *mds);
    for (size_t i = 0; i < r; i++) {
        rids[i] = sl_arena_printf(&a, "%08zx-1f2a-4b3c-8d4e-5f6a7b8c9da5", i);
        mds[i] = sl_arena_printf(&a,
            "{\"display_name\":\"vm-%zu\",\"name\":\"instance-%08zx\",\"host\":\"compute-%zu\","
            "\"instance_id\":\"%s\",\"instance_type\":\"m1.small\",\"status\":\"active\","
            "\"state\":\"running\",\"image\":{\"id\":\"a1b2c3d4\",\"name\":\"cirros\"},"
            "\"flavor\":{\"id\":\"2\",\"name\":\"m1.small\",\"vcpus\":1,\"ram\":2048,"
            "\"disk\":20,\"ephemeral\":0,\"swap\":0},\"os_type\":\"hvm\","
            "\"architecture\":\"x86_64\",\"memory_mb\":2048,\"disk_gb\":20,"
            "\"root_gb\":20,\"ephemeral_gb\":0,\"vcpus\":1,\"image_ref\":\"a1b2c3d4\","
            "\"user_metadata\":{\"server_group\":\"web\"},\"cpu_number\":%zu}",
            i, i, i % 64, rids[i], 1 + i % 8);
    }
    /* Timestamps (one per round) and volumes prepared up front: the loop
     * measures the chain, not snprintf. */
    size_t rounds = n / r + 1;
    char **tss = sl_xmalloc(rounds * sizeof *tss);
    for (size_t k = 0; k < rounds; k++) {
        long sec = (long) (k * 60);
        tss[k] = sl_arena_printf(&a, "2024-05-01T%02ld:%02ld:%02ld.000000+00:00",
                                 (sec / 3600) % 24, (sec / 60) % 60, sec % 60);
    }
    char **vols = sl_xmalloc(rounds * 8 * sizeof *vols);
    for (size_t k = 0; k < rounds * 8; k++)
        vols[k] = sl_arena_printf(&a, "%.0f", (double) (k / 8) * 6e10 * (double) (1 + k % 8));
    for (size_t ci = 0; ci < sizeof s_chains / sizeof s_chains[0]; ci++) {
        char yaml[4096], err[1024];
        snprintf(yaml, sizeof yaml,
                 "sources:\n  - name: s\n    meters: [\"*\"]\n    sinks: [k]\n"
                 "sinks:\n  - name: k\n    publishers: [\"test://\"]\n    transformers:\n%s",
                 s_chains[ci][1]);
        sl_pipeline_t *p = sl_pipeline_parse(yaml, strlen(yaml), "bench", "meters", NULL, err,
                                             sizeof err);
        if (!p || sl_transform_check(p, NULL, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        sl_chain_t *c = sl_chain_new(&p->sinks[0]);
        sl_sample_vec_t out = { 0 };
        int disk = !strcmp(s_chains[ci][0], "disk");
        size_t emitted = 0;
        double t0 = s_now();
        for (size_t k = 0; k < n; k++) {
            size_t res = k % r, round = k / r;
            const char *vol = vols[round * 8 + res % 8];
            double v = (double) round * 6e10 * (double) (1 + res % 8);
            sl_sample_t s = {
                .id = "0c1d6d3e-3f7a-4f7e-9a5e-2b9bb0b8d1a1",
                .name = disk ? (k & 1 ? "disk.device.read.bytes" : "disk.write.requests") : "cpu",
                .type = "cumulative", .unit = disk ? (k & 1 ? "B" : "request") : "ns",
                .volume_json = vol, .volume = v, .user_id = "9b8c7d6e5f40413a92b1c0d9e8f7a6b5",
                .project_id = "f3a1c0b2d4e54f6a8b9c0d1e2f3a4b5c", .resource_id = rids[res],
                .timestamp = tss[round], .resource_metadata = mds[res], .source = "openstack",
                .message_id = "8c9d0e1f-2a3b-4c4d-9e5f-6a7b8c9d0eb6",
            };
            sl_chain_process(c, &s, 1, &out);
            sl_chain_flush(c, &out);
            if (out.n >= 256) {         /* "publish" */
                emitted += out.n;
                out.n = 0;
            }
        }
        emitted += out.n;
        double dt = s_now() - t0;
        printf("{\"chain\": \"%s\", \"samples\": %zu, \"resources\": %zu, \"emitted\": %zu, "
               "\"seconds\": %.3f, \"samples_per_s\": %.0f}\n", s_chains[ci][0], n, r, emitted,
               dt, (double) n / dt);
        sl_sample_vec_free(&out);
        sl_chain_destroy(&c);
        sl_pipeline_destroy(&p);
    }
    free(rids);
    free(mds);
    free(tss);
    free(vols);
    sl_arena_destroy(&a);
    return 0;
}
