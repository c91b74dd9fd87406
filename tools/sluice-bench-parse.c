/* sluice-bench-parse — the ceilings tools/bench compares sluiced against,
 * measured on the same input in the same run, on one core:
 *   parse:   yajl_parse with no callbacks over every line: the JSON
 *            tokenizer alone, a ceiling no decoder built on yajl can pass
 *   convert: envelope decode + meters.yaml conversion, in process
 *   events:  envelope decode + event_definitions.yaml conversion (with -e)
 * Decoding keeps what the definitions read, as an ingest worker's does
 * (sl_env_keep_new); -f decodes every key (the tree in full).
 * -s gives the samples stable ids (sample_ids: stable, common/sample.h), as
 * an ingest worker does with that setting.
 * usage: sluice-bench-parse [-f] [-s] -m METERS [-e EVENT_DEFINITIONS] INPUT.jsonl
 * Prints one JSON object per mode with notifications/s and samples/s (or
 * events/s). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_parse.h>

#include "common/arena.h"
#include "common/envelope.h"
#include "common/events.h"
#include "common/meters.h"

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
    const char *meters_path = NULL, *events_path = NULL;
    int opt, full = 0, stable = 0;
    while ((opt = getopt(argc, argv, "m:e:fs")) != -1) {
        if (opt == 'f')
            full = 1;
        else if (opt == 's')
            stable = 1;
        else if (opt == 'm')
            meters_path = optarg;
        else if (opt == 'e')
            events_path = optarg;
        else
            return 2;
    }
    if (!meters_path || optind != argc - 1) {
        fprintf(stderr, "usage: sluice-bench-parse [-f] [-s] -m meters.yaml "
                "[-e event_definitions.yaml] INPUT.jsonl\n");
        return 2;
    }
    FILE *f = fopen(argv[optind], "r");
    if (!f) {
        perror(argv[optind]);
        return 1;
    }
    /* Load every line first so that I/O is not measured. */
    size_t n = 0, cap = 1024;
    char **lines = sl_xmalloc(cap * sizeof *lines);
    size_t *lens = sl_xmalloc(cap * sizeof *lens);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (n == cap) {
            cap *= 2;
            lines = sl_xrealloc(lines, cap * sizeof *lines);
            lens = sl_xrealloc(lens, cap * sizeof *lens);
        }
        lines[n] = sl_xstrdup(line);
        lens[n++] = (size_t) len;
    }
    free(line);
    fclose(f);
    char err[512];
    sl_meters_t *m = sl_meters_load(meters_path, NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    sl_events_t *ev = NULL;
    if (events_path && !(ev = sl_events_load(events_path, NULL, err, sizeof err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    sl_env_keep_t *keep = full ? NULL : sl_env_keep_new(m, ev);
    double t0 = s_now();
    size_t parse_errors = 0;
    for (size_t i = 0; i < n; i++) {
        yajl_handle h = yajl_alloc(NULL, NULL, NULL);
        if (yajl_parse(h, (const unsigned char *) lines[i], lens[i]) != yajl_status_ok ||
            yajl_complete_parse(h) != yajl_status_ok)
            parse_errors++;
        yajl_free(h);
    }
    double parse_s = s_now() - t0;

    sl_arena_t a;
    sl_arena_init(&a, 0);
    sl_sample_t out[512];
    sl_convert_stats_t cs;
    memset(&cs, 0, sizeof cs);
    size_t samples = 0;
    t0 = s_now();
    for (size_t i = 0; i < n; i++) {
        sl_notification_t note;
        if (sl_envelope_decode_keep(lines[i], lens[i], 0, keep, &note, err, sizeof err) !=
            SL_ENV_OK)
            continue;
        if (note.priority == SL_PRIO_INFO || note.priority == SL_PRIO_SAMPLE) {
            sl_arena_reset(&a);
            size_t k = sl_meters_convert(m, &note, &a, out, 512, &cs);
            if (stable)
                sl_sample_stable_ids(out, k, note.message_id, &a);
            samples += k;
        }
        sl_notification_clear(&note);
    }
    double conv_s = s_now() - t0;

    size_t events = 0;
    double ev_s = 0;
    if (ev) {
        sl_event_stats_t es;
        memset(&es, 0, sizeof es);
        t0 = s_now();
        for (size_t i = 0; i < n; i++) {
            sl_notification_t note;
            if (sl_envelope_decode_keep(lines[i], lens[i], 0, keep, &note, err, sizeof err) !=
                SL_ENV_OK)
                continue;
            sl_arena_reset(&a);
            sl_event_t e;
            events += (size_t) sl_events_convert(ev, &note, &a, &e, &es);
            sl_notification_clear(&note);
        }
        ev_s = s_now() - t0;
    }
    printf("{\"mode\": \"parse\", \"notifications\": %zu, \"invalid\": %zu, \"seconds\": %.3f, "
           "\"notif_per_s\": %.0f}\n", n, parse_errors, parse_s, (double) n / parse_s);
    printf("{\"mode\": \"convert\", \"notifications\": %zu, \"samples\": %zu, \"seconds\": %.3f, "
           "\"notif_per_s\": %.0f, \"samples_per_s\": %.0f}\n", n, samples, conv_s,
           (double) n / conv_s, (double) samples / conv_s);
    if (ev)
        printf("{\"mode\": \"events\", \"notifications\": %zu, \"events\": %zu, \"seconds\": "
               "%.3f, \"notif_per_s\": %.0f, \"events_per_s\": %.0f}\n", n, events, ev_s,
               (double) n / ev_s, (double) events / ev_s);
    sl_env_keep_destroy(&keep);
    sl_events_destroy(&ev);
    sl_arena_destroy(&a);
    sl_meters_destroy(&m);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(lens);
    return 0;
}
