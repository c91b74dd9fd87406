/* conf: sluice.yaml settings, overrides, the embedded default, errors. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/conf.h"

static char s_dir[64];

static void
s_write(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *
s_path(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    return path;
}

static void
s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/sluice-conf-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    s_write("pipeline.yaml", "sources:\n  - name: s\n    meters: ['*']\n    sinks: [k]\n"
            "sinks:\n  - name: k\n    publishers: ['file://${run_dir}/out.jsonl']\n");
    char meters[512];
    snprintf(meters, sizeof meters, "%s/conf/meters.yaml", SL_SRCDIR);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp %s %s/meters.yaml", meters, s_dir);
    ck_assert_int_eq(system(cmd), 0);
    /* File sources must exist when the configuration loads. */
    s_write("x", "");
    s_write("in.jsonl", "");
}

static void
s_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A source's settings through its type's option table. */
static const sl_file_source_opts_t *
s_file(const sl_conf_t *c, size_t i)
{
    ck_assert_ptr_eq(c->sources[i].type, &sl_source_type_file);
    return c->sources[i].opts;
}

static const sl_zmq_source_opts_t *
s_zmq(const sl_conf_t *c, size_t i)
{
    ck_assert_ptr_eq(c->sources[i].type, &sl_source_type_zmq);
    return c->sources[i].opts;
}

static int
s_line_of(const sl_conf_t *c, size_t i, const char *option)
{
    const sl_source_conf_t *sc = &c->sources[i];
    return sc->lines[sl_opt_find(sc->type->options, option) - sc->type->options];
}

START_TEST(embedded_default_loads_and_expands_run_dir)
{
    char err[512];
    const char *ov[] = { "run_dir=/tmp/sl-x", "workers.ingest=3" };
    sl_conf_t *c = sl_conf_load(NULL, ov, 2, err, sizeof err);
    ck_assert_msg(c != NULL, "embedded default failed: %s", err);
    ck_assert_str_eq(c->run_dir, "/tmp/sl-x");
    ck_assert_str_eq(c->pidfile, "/tmp/sl-x/sluiced.pid");
    ck_assert_int_eq(c->n_ingest, 3);
    ck_assert_int_ge(c->n_pipeline, 1);
    ck_assert_int_eq(c->n_sources, 1);
    ck_assert_str_eq(s_zmq(c, 0)->endpoint, "ipc:///tmp/sl-x/notify.sock");
    ck_assert_uint_eq(c->partitions, 16);
    ck_assert_uint_eq(c->max_message_size, 1048576);
    ck_assert_uint_gt(sl_meters_count(c->meters), 10);
    char *url = sl_conf_expand(c, c->pipeline->sinks[0].publishers[0]);
    ck_assert_msg(strncmp(url, "file:///tmp/sl-x/samples.jsonl", 30) == 0, "got %s", url);
    free(url);
    sl_conf_destroy(&c);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(queue_memory_is_one_budget_for_the_whole_agent)
{
    char err[512];
    /* the default: 4 MiB for the agent; 2 ingest workers keep 1 MiB each */
    const char *ov[] = { "run_dir=/tmp/sl-x", "workers.ingest=2", NULL, NULL };
    sl_conf_t *c = sl_conf_load(NULL, ov, 2, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(c->queue_memory, 4u << 20);
    ck_assert_uint_eq(sl_conf_kept_limit(c), 1u << 20);
    /* partition sockets: the bytes are bounded by what is kept, not by
     * a mark derived from batch_max_bytes */
    ck_assert_uint_eq(sl_conf_frame_hwm(c), c->zmq_hwm);
    /* 1 MiB / 1 MiB notifications, but at least 64: fewer (4) cost 40%
     * of the rate from a zmq producer (the worker drains the socket and
     * waits) */
    ck_assert_uint_eq(sl_conf_source_hwm(c), 64);
    sl_conf_destroy(&c);
    /* one share per ingest worker, whatever their number */
    ov[1] = "workers.ingest=5";
    ov[2] = "queue_memory=1G";
    ov[3] = "max_message_size=64K";
    c = sl_conf_load(NULL, ov, 4, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(sl_conf_kept_limit(c), (1ull << 30) / 10);
    /* 107 MB / 64 KiB = 1638, capped by zmq_hwm */
    ck_assert_uint_eq(sl_conf_source_hwm(c), c->zmq_hwm);
    sl_conf_destroy(&c);
    ov[3] = "max_message_size=1M";
    c = sl_conf_load(NULL, ov, 4, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(sl_conf_source_hwm(c), 102);
    sl_conf_destroy(&c);
    /* a share below 4 frames is raised to 4 frames */
    ov[2] = "queue_memory=2M";
    ov[3] = "batch_max_bytes=64K";
    c = sl_conf_load(NULL, ov, 4, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(sl_conf_kept_limit(c), 256u << 10);
    sl_conf_destroy(&c);
}
END_TEST

START_TEST(sample_ids_are_random_unless_stable_is_asked_for)
{
    char err[512];
    const char *ov[] = { "run_dir=/tmp/sl-x", NULL };
    sl_conf_t *c = sl_conf_load(NULL, ov, 1, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(c->sample_ids, 0);        /* random, as Ceilometer */
    sl_conf_destroy(&c);
    ov[1] = "sample_ids=stable";
    c = sl_conf_load(NULL, ov, 2, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(c->sample_ids, 1);
    sl_conf_destroy(&c);
    ov[1] = "sample_ids=uuid5";
    c = sl_conf_load(NULL, ov, 2, err, sizeof err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "sample_ids") && strstr(err, "random") && strstr(err, "stable"),
                  "%s", err);
}
END_TEST

START_TEST(file_settings_relative_paths_and_sizes)
{
    char err[512];
    s_write("sluice.yaml", "run_dir: run\nworkers: {ingest: 2, pipeline: 1}\nmax_message_size: 2M\n"
            "sources:\n  - {type: file, path: in.jsonl}\n  - {type: zmq, endpoint: 'tcp://127.0.0.1:7000', mode: bind}\n"
            "ceilometer: {pipeline: pipeline.yaml, meters: meters.yaml}\n");
    sl_conf_t *c = sl_conf_load(s_path("sluice.yaml"), NULL, 0, err, sizeof err);
    ck_assert_msg(c != NULL, "load failed: %s", err);
    char want[256];
    snprintf(want, sizeof want, "%s/run", s_dir);
    ck_assert_str_eq(c->run_dir, want);
    snprintf(want, sizeof want, "%s/in.jsonl", s_dir);
    ck_assert_str_eq(s_file(c, 0)->path, want);
    ck_assert_int_eq(s_zmq(c, 1)->mode == SL_ZMQ_BIND, 1);
    ck_assert_uint_eq(c->max_message_size, 2 * 1024 * 1024);
    ck_assert_int_eq(c->n_ingest, 2);
    sl_conf_destroy(&c);
}
END_TEST

static void
s_expect_error(const char *yaml, const char *const *ov, size_t n_ov, const char *needle)
{
    char err[512] = "";
    s_write("sluice.yaml", yaml);
    sl_conf_t *c = sl_conf_load(s_path("sluice.yaml"), ov, n_ov, err, sizeof err);
    ck_assert_msg(c == NULL, "accepted a bad config: %s", yaml);
    ck_assert_msg(strstr(err, needle) != NULL, "expected '%s' in '%s'", needle, err);
}

START_TEST(errors_name_the_file_and_line_and_what_to_do)
{
    const char *src = "sources: [{type: file, path: x}]\n";
    char y[512];
    snprintf(y, sizeof y, "%sworkers:\n  ingest: many\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:3: workers.ingest: 'many' must be auto or a number");
    snprintf(y, sizeof y, "%spipeline_nice: 20\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: pipeline_nice: '20' must be auto or a number "
                   "from 0 to 19");
    snprintf(y, sizeof y, "%spartitions: 99999\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: partitions: 99999 is out of range");
    snprintf(y, sizeof y, "%slogging:\n  level: chatty\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:3: logging.level: 'chatty' is not a log level");
    snprintf(y, sizeof y, "%sworkers:\n  ingst: 1\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:3: unknown setting 'workers.ingst'");
    s_expect_error("run_dir: /tmp\n", NULL, 0, "no `sources:` configured");
    s_expect_error("sources: [{type: zmq}]\n", NULL, 0, "sluice.yaml:1: zmq source needs `endpoint:`");
    s_expect_error("sources: [{type: zmq, endpoint: 'udp://x:1'}]\n", NULL, 0, "must be tcp:// or ipc://");
    s_expect_error("sources: [{type: file, path: x, follow: yes}]\n", NULL, 0,
                   "sluice.yaml:1: file source: unknown key 'follow'");
    s_expect_error("- a\n- b\n", NULL, 0, "sluice.yaml:1: sluice.yaml must be a mapping");
    const char *bad_ov[] = { "partitions=abc" };
    s_expect_error(src, bad_ov, 1, "command line:1: partitions: 'abc' is not a whole number");
    const char *unk_ov[] = { "nope=1" };
    s_expect_error(src, unk_ov, 1, "unknown setting 'nope'");
    snprintf(y, sizeof y, "%scoordination: {backend: 'redis://x'}\n", src);
    s_expect_error(y, NULL, 0, "coordination.backend 'redis://x' must be local or memcached://");
    snprintf(y, sizeof y, "%scoordination: {backend: 'memcached://127.0.0.1:1'}\n", src);
    s_expect_error(y, NULL, 0, "coordination.secret_file is required with memcached");
    s_write("short.secret", "tooshort\n");
    snprintf(y, sizeof y, "%scoordination: {backend: 'memcached://127.0.0.1:1', secret_file: short.secret}\n", src);
    s_expect_error(y, NULL, 0, "short.secret:1: the coordination secret needs at least 16 bytes");
    snprintf(y, sizeof y, "%scoordination: {backend: 'memcached://127.0.0.1:1', heartbeat: 1000, "
             "lease_ttl: 2000, secret_file: short.secret}\n", src);
    s_expect_error(y, NULL, 0, "must be at least 3 heartbeats");
    /* Errors in the Ceilometer files keep their own file:line. */
    s_write("pipeline.yaml", "sources:\n  - name: s\n    meters: ['*']\n    sinks: [missing]\nsinks:\n"
            "  - name: k\n    publishers: ['file:///tmp/x']\n");
    s_expect_error(src, NULL, 0, "pipeline.yaml:");
}
END_TEST


/* A file that sluice.yaml names but that cannot be read is reported at the
 * line that names it (it was "nope.yaml:0: cannot open"). */
START_TEST(named_files_that_cannot_be_read_are_reported_where_they_are_named)
{
    const char *src = "sources: [{type: zmq, endpoint: 'tcp://127.0.0.1:7000'}]\n";
    char y[1024], want[512];
    snprintf(y, sizeof y, "%sceilometer:\n  meters: nope.yaml\n", src);
    snprintf(want, sizeof want, "sluice.yaml:3: ceilometer.meters: cannot open nope.yaml: No such "
             "file or directory (looked for %s/nope.yaml: correct ceilometer.meters or create the "
             "file)", s_dir);
    s_expect_error(y, NULL, 0, want);
    snprintf(y, sizeof y, "%sceilometer: {pipeline: gone/pipeline.yaml}\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: ceilometer.pipeline: cannot open gone/pipeline.yaml: "
                   "No such file or directory");
    s_write("event_pipeline.yaml", "sources: [{name: es, events: ['*'], sinks: [ek]}]\n"
            "sinks: [{name: ek, publishers: ['file:///tmp/x']}]\n");
    snprintf(y, sizeof y, "%sceilometer: {event_definitions: ev.yaml, event_pipeline: "
             "event_pipeline.yaml}\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: ceilometer.event_definitions: cannot open ev.yaml");
    const char *ov[] = { "ceilometer.meters=other.yaml" };
    s_expect_error(src, ov, 1, "command line:1: ceilometer.meters: cannot open other.yaml");
    snprintf(y, sizeof y, "%scoordination:\n  backend: 'memcached://127.0.0.1:1'\n  secret_file: "
             "no.secret\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:4: coordination.secret_file: cannot open no.secret");
    /* The defaults are named by nothing: the file itself is the place. */
    char path[300];
    snprintf(path, sizeof path, "%s/meters.yaml", s_dir);
    ck_assert_int_eq(unlink(path), 0);
    s_expect_error(src, NULL, 0, "sluice.yaml:1: ceilometer.meters: cannot open meters.yaml (the "
                   "default): No such file or directory");
}
END_TEST

/* `meters: /dev/zero` read until memory ran out (17.8 GB). */
START_TEST(devices_and_oversized_files_are_refused)
{
    const char *src = "sources: [{type: zmq, endpoint: 'tcp://127.0.0.1:7000'}]\n";
    char y[1024];
    snprintf(y, sizeof y, "%sceilometer: {meters: /dev/zero}\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: ceilometer.meters: /dev/zero is a character device, "
                   "not a regular file (ceilometer.meters must name a regular file)");
    char path[300];
    snprintf(path, sizeof path, "%s/fifo.yaml", s_dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    snprintf(y, sizeof y, "%sceilometer: {pipeline: fifo.yaml}\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: ceilometer.pipeline: fifo.yaml is a FIFO, not a "
                   "regular file");
    snprintf(path, sizeof path, "%s/big.yaml", s_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), 16 * 1024 * 1024 + 1), 0);
    fclose(f);
    snprintf(y, sizeof y, "%sceilometer: {meters: big.yaml}\n", src);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: ceilometer.meters: big.yaml is larger than 16 MiB, "
                   "the limit for a configuration file");
    /* sluice.yaml itself. */
    char err[512] = "";
    sl_conf_t *c = sl_conf_load("/dev/zero", NULL, 0, err, sizeof err);
    ck_assert_msg(c == NULL && strstr(err, "/dev/zero:0: is a character device, not a regular file"),
                  "got: %s", err);
    s_expect_error("run_dir: /tmp\n---\nsources: [{type: file, path: x}]\n", NULL, 0,
                   "sluice.yaml:2: only one YAML document per file");
}
END_TEST

/* A file source that cannot be read failed only when the ingest workers
 * started; `sluiced -t` said the configuration was valid. */
START_TEST(file_sources_must_exist_and_be_readable)
{
    char want[512];
    snprintf(want, sizeof want, "sluice.yaml:4: file source: %s/missing.jsonl does not exist "
             "(correct `path` or create the file)", s_dir);
    s_expect_error("run_dir: /tmp\nsources:\n  - type: file\n    path: missing.jsonl\n", NULL, 0,
                   want);
    s_expect_error("sources: [{type: file, path: /nonexistent/in.jsonl}]\n", NULL, 0,
                   "sluice.yaml:1: file source: /nonexistent/in.jsonl does not exist");
    snprintf(want, sizeof want, "sluice.yaml:1: file source: %s/. is a directory", s_dir);
    s_expect_error("sources: [{type: file, path: .}]\n", NULL, 0, want);
    if (geteuid() != 0) {       /* root reads anything */
        s_write("secret.jsonl", "{}\n");
        char path[300];
        snprintf(path, sizeof path, "%s/secret.jsonl", s_dir);
        ck_assert_int_eq(chmod(path, 0), 0);
        s_expect_error("sources: [{type: file, path: secret.jsonl}]\n", NULL, 0,
                       "is not readable: Permission denied");
    }
}
END_TEST

/* ipc:// endpoints are Unix socket paths (sun_path: 107 bytes and a NUL);
 * a long run_dir made every partition bind fail at run time. */
START_TEST(run_dir_too_long_for_ipc_sockets_is_refused)
{
    char dir[160], y[1024], err[512];
    /* ipc://<run_dir>/k.15: run_dir + 5 bytes; a 102-byte run_dir fits exactly. */
    snprintf(dir, sizeof dir, "/tmp/%0101d", 0);
    dir[103] = '\0';
    snprintf(y, sizeof y, "sources: [{type: zmq, endpoint: 'tcp://127.0.0.1:7000'}]\nrun_dir: %s\n", dir);
    s_expect_error(y, NULL, 0, "sluice.yaml:2: run_dir: ipc://<run_dir>/k.15 needs a 108-byte "
                   "socket path (run_dir is 103 bytes), more than the 107 a Unix socket path can "
                   "hold: use a shorter run_dir");
    dir[102] = '\0';
    snprintf(y, sizeof y, "sources: [{type: zmq, endpoint: 'tcp://127.0.0.1:7000'}]\nrun_dir: %s\n", dir);
    s_write("sluice.yaml", y);
    sl_conf_t *c = sl_conf_load(s_path("sluice.yaml"), NULL, 0, err, sizeof err);
    ck_assert_msg(c != NULL, "a run_dir that fits (107 bytes) was refused: %s", err);
    sl_conf_destroy(&c);
    /* From the command line, with the embedded default (its notify socket too). */
    char ov_run[200];
    snprintf(ov_run, sizeof ov_run, "run_dir=%s", dir);
    const char *ov[] = { "workers.ingest=1", ov_run };
    c = sl_conf_load(NULL, ov, 2, err, sizeof err);
    ck_assert_msg(c == NULL && strstr(err, "command line:2: run_dir: ipc://<run_dir>/") &&
                  strstr(err, "use a shorter run_dir"), "got: %s", err);
    /* A source's own ipc endpoint, with the .K suffix of bind mode. */
    memset(dir, 'd', 101);
    dir[101] = '\0';
    snprintf(y, sizeof y, "sources:\n  - type: zmq\n    endpoint: 'ipc:///tmp/%s'\n    mode: bind\n",
             dir);
    s_expect_error(y, NULL, 0, "sluice.yaml:3: zmq source: ipc:///tmp/ddd");
    const char *twelve[] = { "workers.ingest=12" };
    s_expect_error(y, twelve, 1, "needs a 109-byte socket path (with the .11 of ingest worker 11), "
                   "more than the 107 a Unix socket path can hold: use a shorter path");
}
END_TEST

START_TEST(help_lists_every_setting)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sl_conf_help(f);
    fclose(f);
    const char *names[] = { "run_dir", "workers.ingest", "workers.pipeline", "partitions",
                            "max_message_size", "batch_size", "batch_timeout_ms",
                            "batch_linger_ms",
                            "shutdown_grace", "worker_timeout", "logging.level",
                            "ceilometer.pipeline", "ceilometer.meters", "sources" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "| `%s` |", names[i]);
        ck_assert_msg(strstr(buf, needle) != NULL, "help lacks %s", names[i]);
    }
    free(buf);
}
END_TEST

START_TEST(auto_worker_count_is_at_least_one_each)
{
    int cpus = sl_conf_cpu_count();
    ck_assert_int_ge(cpus, 1);
    char err[512];
    s_write("sluice.yaml", "sources: [{type: file, path: x}]\n");
    sl_conf_t *c = sl_conf_load(s_path("sluice.yaml"), NULL, 0, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_ge(c->n_ingest, 1);
    ck_assert_int_ge(c->n_pipeline, 1);
    ck_assert_int_le(c->n_ingest, cpus < 1 ? 1 : cpus);
    sl_conf_destroy(&c);
}
END_TEST

START_TEST(cpu_count_says_why)
{
    char why[256] = "";
    int n = sl_conf_cpu_count_why(why, sizeof why);
    ck_assert_int_eq(n, sl_conf_cpu_count());
    char want[64];
    snprintf(want, sizeof want, "%d usable CPU", n);
    ck_assert_msg(strncmp(why, want, strlen(want)) == 0, "expected '%s...', got '%s'", want, why);
    ck_assert_msg(strstr(why, "affinity") || strstr(why, "online"), "no CPU source in '%s'", why);
    ck_assert_msg(strstr(why, "cgroup v2"), "no cgroup quota words in '%s'", why);
}
END_TEST

/* Each source's mapping fills its type's config struct through the
 * type's option table (common/source_conf.h); the older fields follow. */
START_TEST(sources_fill_their_type_option_struct)
{
    char err[512];
    s_write("sluice.yaml", "run_dir: /tmp/sl-src\nsources:\n  - {type: file, path: in.jsonl, rate: 250}\n"
            "  - type: zmq\n    endpoint: 'ipc://${run_dir}/n.sock'\n    mode: bind\n"
            "ceilometer: {pipeline: pipeline.yaml, meters: meters.yaml}\n");
    sl_conf_t *c = sl_conf_load(s_path("sluice.yaml"), NULL, 0, err, sizeof err);
    ck_assert_msg(c != NULL, "load failed: %s", err);
    ck_assert_ptr_eq(c->sources[0].type, &sl_source_type_file);
    const sl_file_source_opts_t *f = c->sources[0].opts;
    char want[256];
    snprintf(want, sizeof want, "%s/in.jsonl", s_dir);
    ck_assert_str_eq(f->path, want);
    ck_assert_str_eq(s_file(c, 0)->path, want);
    ck_assert_double_eq(f->rate, 250);
    ck_assert_int_eq(s_line_of(c, 0, "path"), 3);
    ck_assert_ptr_eq(c->sources[1].type, &sl_source_type_zmq);
    const sl_zmq_source_opts_t *z = c->sources[1].opts;
    ck_assert_str_eq(z->endpoint, "ipc:///tmp/sl-src/n.sock");
    ck_assert_uint_eq(z->mode, SL_ZMQ_BIND);
    ck_assert_int_eq(s_zmq(c, 1)->mode == SL_ZMQ_BIND, 1);
    ck_assert_int_eq(s_line_of(c, 1, "endpoint"), 5);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    sl_conf_dump(c, out);
    fclose(out);
    snprintf(want, sizeof want, "  - {type: file, path: \"%s/in.jsonl\", rate: 250}\n"
             "  - {type: zmq, endpoint: \"ipc:///tmp/sl-src/n.sock\", mode: bind}\n", s_dir);
    ck_assert_msg(strstr(buf, want) != NULL, "dump lacks %s in %s", want, buf);
    free(buf);
    sl_conf_destroy(&c);
    s_expect_error("sources: [{type: file, path: x, rate: 0}]\n", NULL, 0,
                   "sluice.yaml:1: file source: rate: '0' must be a number of notifications per "
                   "second above 0");
    s_expect_error("sources: [{type: zmq, endpoint: 'tcp://x:1', mode: both}]\n", NULL, 0,
                   "sluice.yaml:1: zmq source: mode: 'both' is not a valid value (use connect "
                   "or bind)");
    s_expect_error("sources: [{type: kafka}]\n", NULL, 0,
                   "sluice.yaml:1: unknown source type 'kafka' (known: file, zmq, amqp)");
    s_expect_error("sources: [{path: x}]\n", NULL, 0,
                   "sluice.yaml:1: source needs `type: file`, `type: zmq` or `type: amqp`");
}
END_TEST

/* amqp: lists and mappings in YAML, oslo's defaults, and every check with
 * the line it belongs to. */
START_TEST(amqp_sources_take_lists_and_check_what_oslo_would_refuse)
{
    char err[512];
    s_write("ca.pem", "x");
    s_write("sluice.yaml", "sources:\n  - type: amqp\n"
            "    messaging_urls: ['rabbit://u:p@h1:5672,h2:5673/cell1', 'amqps://h3/']\n"
            "    exchanges: [nova, glance]\n"
            "    queue_arguments: {x-max-length: 1000, x-overflow: reject-publish}\n"
            "    ssl_ca_file: ca.pem\n"
            "ceilometer: {pipeline: pipeline.yaml, meters: meters.yaml}\n");
    sl_conf_t *c = sl_conf_load(s_path("sluice.yaml"), NULL, 0, err, sizeof err);
    ck_assert_msg(c != NULL, "load failed: %s", err);
    ck_assert_ptr_eq(c->sources[0].type, &sl_source_type_amqp);
    const sl_amqp_source_opts_t *a = c->sources[0].opts;
    ck_assert_str_eq(a->messaging_urls, "rabbit://u:p@h1:5672,h2:5673/cell1,amqps://h3/");
    ck_assert_ptr_null(a->url);
    ck_assert_str_eq(a->exchanges, "nova,glance");
    ck_assert_str_eq(a->topics, "notifications");
    ck_assert_str_eq(a->priorities, "info,sample,error");
    ck_assert_str_eq(a->queue_arguments, "x-max-length=1000,x-overflow=reject-publish");
    ck_assert_uint_eq(a->prefetch, 256);
    ck_assert_uint_eq(a->ssl_verify, 1);
    ck_assert_uint_eq(a->ack_on_event_error, 1);
    ck_assert_uint_eq(a->durable, 0);
    sl_conf_destroy(&c);
    /* the default exchanges are Ceilometer 19's fifteen */
    s_write("sluice.yaml", "sources: [{type: amqp, url: 'rabbit://h/'}]\n"
            "ceilometer: {pipeline: pipeline.yaml, meters: meters.yaml}\n");
    c = sl_conf_load(s_path("sluice.yaml"), NULL, 0, err, sizeof err);
    ck_assert_msg(c != NULL, "load failed: %s", err);
    ck_assert_str_eq(((const sl_amqp_source_opts_t *) c->sources[0].opts)->exchanges,
                     "nova,glance,neutron,cinder,heat,keystone,sahara,trove,zaqar,swift,"
                     "ceilometer,magnum,dns,ironic,aodh");
    sl_conf_destroy(&c);
    s_expect_error("sources: [{type: amqp}]\n", NULL, 0, "sluice.yaml:1: amqp source: give "
                   "either `url` (one broker) or `messaging_urls` (a list of brokers), not neither");
    s_expect_error("sources:\n  - type: amqp\n    url: 'kafka://h'\n", NULL, 0,
                   "sluice.yaml:3: amqp source: transport URL 'kafka://h': the scheme must be "
                   "rabbit, amqp or amqps");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://u:secret@h:99999/'\n", NULL, 0,
                   "sluice.yaml:3: amqp source: transport URL 'rabbit://...@h:99999/': a port is "
                   "not a number from 1 to 65535");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://h/'\n    priorities: [info, "
                   "notice]\n", NULL, 0, "sluice.yaml:4: amqp source: 'notice' is not a "
                   "notification priority");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://h/'\n    quorum: true\n"
                   "    ha_queues: true\n", NULL, 0, "sluice.yaml:4: amqp source: quorum and "
                   "ha_queues both set");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://h/'\n    queue_arguments: "
                   "[x-max-length]\n", NULL, 0, "sluice.yaml:4: amqp source: expected a mapping "
                   "of scalars for 'queue_arguments'");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://h/'\n    ssl_ca_file: nope.pem\n",
                   NULL, 0, "sluice.yaml:4: amqp source: ssl_ca_file ");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://h/'\n    ssl_cert_file: ca.pem\n",
                   NULL, 0, "amqp source: ssl_cert_file and ssl_key_file go together");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://h/'\n    exchanges: nova\n"
                   "    prefetch: 0\n", NULL, 0, "sluice.yaml:5: amqp source: prefetch");
    s_expect_error("sources:\n  - type: amqp\n    url: 'rabbit://h/'\n    topics: [{a: b}]\n",
                   NULL, 0, "sluice.yaml:4: amqp source: expected a scalar or a list of scalars "
                   "for 'topics'");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("conf");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, embedded_default_loads_and_expands_run_dir);
    tcase_add_test(tc, queue_memory_is_one_budget_for_the_whole_agent);
    tcase_add_test(tc, sample_ids_are_random_unless_stable_is_asked_for);
    tcase_add_test(tc, file_settings_relative_paths_and_sizes);
    tcase_add_test(tc, errors_name_the_file_and_line_and_what_to_do);
    tcase_add_test(tc, help_lists_every_setting);
    tcase_add_test(tc, auto_worker_count_is_at_least_one_each);
    tcase_add_test(tc, cpu_count_says_why);
    tcase_add_test(tc, named_files_that_cannot_be_read_are_reported_where_they_are_named);
    tcase_add_test(tc, devices_and_oversized_files_are_refused);
    tcase_add_test(tc, file_sources_must_exist_and_be_readable);
    tcase_add_test(tc, run_dir_too_long_for_ipc_sockets_is_refused);
    tcase_add_test(tc, sources_fill_their_type_option_struct);
    tcase_add_test(tc, amqp_sources_take_lists_and_check_what_oslo_would_refuse);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
