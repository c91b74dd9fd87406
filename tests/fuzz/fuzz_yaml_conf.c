/* fuzz_yaml_conf — YAML configuration text: sl_ydoc_parse (the line-aware
 * tree every loader reads, anchors and merge keys included), then the same
 * text as sluice.yaml through sl_conf_load. The agent's settings come
 * from a file, so the input is written to sluice.yaml in a private
 * temporary directory that also holds small Ceilometer files for the
 * relative names of the default configuration (pipeline.yaml,
 * meters.yaml, event_*.yaml), a file source (notifications.jsonl) and a
 * coordination secret (secret.key). */
#include "tests/fuzz/fuzz.h"

#include <unistd.h>

#include "common/conf.h"

static const char *const s_files[][2] = {
    { "pipeline.yaml", "sources:\n  - name: s\n    meters: ['*']\n    sinks: [k]\n"
      "sinks:\n  - name: k\n    publishers: ['file://${run_dir}/samples.jsonl']\n" },
    { "event_pipeline.yaml", "sources:\n  - name: s\n    events: ['*']\n    sinks: [k]\n"
      "sinks:\n  - name: k\n    publishers: ['file://${run_dir}/events.jsonl']\n" },
    { "meters.yaml", "metric:\n  - name: image.size\n    event_type: image.upload\n"
      "    type: gauge\n    unit: B\n    volume: $.payload.size\n"
      "    resource_id: $.payload.id\n" },
    { "event_definitions.yaml", "- event_type: 'compute.instance.*'\n  traits:\n"
      "    memory_mb:\n      type: int\n      fields: payload.memory_mb\n" },
    { "notifications.jsonl", "" },
    { "secret.key", "0123456789abcdef0123456789abcdef\n" },
    { "sluice.yaml", "" },
};
#define N_FILES (sizeof s_files / sizeof s_files[0])

static char s_dir[256];

static void
s_cleanup(void)
{
    char path[512];
    for (size_t i = 0; i < N_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", s_dir, s_files[i][0]);
        unlink(path);
    }
    rmdir(s_dir);
}

static void
s_write(const char *name, const void *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "wb");
    SL_FUZZ_CHECK(f != NULL);
    SL_FUZZ_CHECK(fwrite(data, 1, size, f) == size || size == 0);
    SL_FUZZ_CHECK(fclose(f) == 0);
}

static void
s_walk(const sl_ynode_t *node, int depth)
{
    SL_FUZZ_CHECK(depth <= SL_YCONF_MAX_DEPTH + 1);
    if (node->kind == SL_Y_SCALAR) {
        SL_FUZZ_CHECK(node->value != NULL);
        (void) sl_ynode_bool(node);
        (void) sl_ynode_is_null(node);
        return;
    }
    for (size_t i = 0; i < node->n; i++) {
        if (node->kind == SL_Y_MAP)
            SL_FUZZ_CHECK(sl_ynode_get(node, node->keys[i]) != NULL);
        s_walk(node->items[i], depth + 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    char err[1024] = "";
    sl_ydoc_t *doc = sl_ydoc_parse((const char *) data, size, "fuzz.yaml", err, sizeof err);
    if (doc) {
        if (doc->root)
            s_walk(doc->root, 0);
        sl_ydoc_destroy(&doc);
    } else {
        SL_FUZZ_CHECK(err[0] != '\0');
    }
    if (!s_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(s_dir, sizeof s_dir, "%s/sl-fuzz-conf.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        SL_FUZZ_CHECK(mkdtemp(s_dir) != NULL);
        atexit(s_cleanup);
        for (size_t i = 0; i < N_FILES; i++)
            s_write(s_files[i][0], s_files[i][1], strlen(s_files[i][1]));
        devnull = fopen("/dev/null", "w");
        (void) sl_fuzz_warn();
    }
    s_write("sluice.yaml", data, size);
    char path[512];
    snprintf(path, sizeof path, "%s/sluice.yaml", s_dir);
    sl_conf_t *conf = sl_conf_load(path, NULL, 0, err, sizeof err);
    if (conf) {
        SL_FUZZ_CHECK(conf->pipeline && conf->meters && conf->n_sources > 0);
        for (unsigned i = 0; i < sl_conf_n_sinks(conf); i++)
            SL_FUZZ_CHECK(sl_conf_sink(conf, i) && sl_conf_sink_label(conf, i));
        SL_FUZZ_CHECK(sl_conf_frame_hwm(conf) >= 1 && sl_conf_source_hwm(conf) >= 1);
        if (devnull)
            sl_conf_dump(conf, devnull);
        sl_conf_destroy(&conf);
    } else {
        SL_FUZZ_CHECK(err[0] != '\0');
    }
    return 0;
}
