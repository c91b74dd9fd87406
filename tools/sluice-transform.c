/* sluice-transform — runs one transformer scenario (TRANSFORMERS.md section
 * 13) through the chain code the pipeline worker uses, and prints the
 * publisher calls in the scenario's `expected` format:
 *   [{"step": i, "phase": "publish"|"flush", "samples": [...]}, ...]
 * The scenario's transformers become a one-sink pipeline.yaml (JSON is
 * written as YAML flow text, so the parameters go through the same YAML
 * loading and checks as a real configuration). One chain instance; each
 * step is process(step samples) then, if flush (default true),
 * flush() with the clock frozen at the step's `now` (tools/scenario.c).
 *
 * usage: sluice-transform [-q] SCENARIO.json
 *        sluice-transform --help-params    (the parameter reference, Markdown)
 * Exit: 0, 1 (cannot read the scenario), 2 (the transformers do not load). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "common/log.h"
#include "tools/scenario.h"
#include "worker/transform.h"

static int
s_help_params(void)
{
    char buf[8192];
    for (size_t i = 0; sl_transform_describe(i, buf, sizeof buf); i++)
        fputs(buf, stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    int quiet = 0, argi = 1;
    if (argc == 2 && !strcmp(argv[1], "--help-params"))
        return s_help_params();
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: sluice-transform [-q] SCENARIO.json | --help-params\n"
               "  Runs one transformer scenario (a JSON file: transformers, steps of samples,\n"
               "  expected publisher calls) through the pipeline worker's transformer chain and\n"
               "  prints the publisher calls as JSON.\n"
               "  -q             only errors on stderr\n"
               "  --help-params  print every transformer's parameters (Markdown) and exit\n"
               "exit: 0, 1 cannot read the scenario, 2 the transformers do not load\n");
        return 0;
    }
    if (argi < argc && !strcmp(argv[argi], "-q")) {
        quiet = 1;
        argi++;
    }
    if (argi != argc - 1) {
        fprintf(stderr, "usage: sluice-transform [-q] SCENARIO.json | --help-params\n");
        return 1;
    }
    sl_log_init('T', quiet ? SL_LOG_ERROR : SL_LOG_WARN, NULL);
    char err[1200];
    sl_scenario_t *sc;
    int rc = sl_scenario_open(argv[argi], &sc, err, sizeof err);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return rc;
    }
    sl_chain_t *c = sl_chain_new(sl_scenario_sink(sc));
    if (!c) {
        sl_scenario_destroy(&sc);
        return 2;
    }
    sl_chain_set_source(c, "openstack");
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_array_open(g);
    for (size_t st = 0; st < sl_scenario_steps(sc) && !rc; st++)
        if (sl_scenario_step(sc, c, st, g, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            rc = 1;
        }
    yajl_gen_array_close(g);
    if (!rc) {
        const unsigned char *buf;
        size_t blen;
        yajl_gen_get_buf(g, &buf, &blen);
        fwrite(buf, 1, blen, stdout);
        fputc('\n', stdout);
    }
    yajl_gen_free(g);
    sl_chain_destroy(&c);
    sl_scenario_destroy(&sc);
    return rc;
}
