/* sluice-convert — notifications in, Ceilometer samples or events out.
 *
 *   sluice-convert --meters FILE --event-definitions FILE [--events] [--stats]
 *       < notifications.jsonl
 *
 * Reads one notification per line (the oslo wire message, or its v2
 * envelope {"oslo.version", "oslo.message"}), decodes it as the ingest
 * worker does (common/envelope) and converts it with the same code
 * (common/meters, common/events). Prints JSON Lines in the format of the
 * Ceilometer oracle (keys sorted): samples {message_id, name, project_id,
 * resource_id, resource_metadata, source, timestamp, type, unit, user_id,
 * volume} or, with --events, events {event_type, generated, message_id,
 * traits: [[name, dtype, value]]}. A line that cannot be decoded is
 * reported on stderr with its number and skipped. Exit status: 0, 1 if a
 * line was bad, 2 if a definitions file does not load. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "common/envelope.h"
#include "common/events.h"
#include "common/json.h"
#include "common/meters.h"

#define S_MAX_SAMPLES 4096

static void
s_usage(FILE *f)
{
    fprintf(f, "usage: sluice-convert --meters FILE --event-definitions FILE [--events] "
               "[--stats] [--line] < notifications.jsonl\n"
               "  --line   add \"line\": N (the input line) to every output, as the oracle does\n");
}

static void
s_strval(yajl_gen g, const char *k, const char *v)
{
    sl_json_gen_str(g, k);
    sl_json_gen_str(g, v);
}

static void
s_val(yajl_gen g, const char *k, yajl_val v)
{
    sl_json_gen_str(g, k);
    sl_json_gen_val(g, v && v->type != yajl_t_null ? v : NULL);
}

/* One sample with the oracle's keys, sorted. */
static void
s_gen_sample(yajl_gen g, const sl_meters_sample_t *s, const char *message_id)
{
    yajl_gen_map_open(g);
    s_strval(g, "message_id", message_id);
    s_val(g, "name", s->name);
    s_val(g, "project_id", s->project_id);
    s_val(g, "resource_id", s->resource_id);
    sl_json_gen_str(g, "resource_metadata");
    sl_json_gen_raw(g, s->resource_metadata, strlen(s->resource_metadata));
    if (s->source)
        s_val(g, "source", s->source);
    else
        s_strval(g, "source", sl_meters_default_source);
    s_val(g, "timestamp", s->timestamp);
    s_val(g, "type", s->type);
    s_val(g, "unit", s->unit);
    s_val(g, "user_id", s->user_id);
    s_val(g, "volume", s->volume);
    yajl_gen_map_close(g);
}

/* Writes the object g holds as one line; line > 0 adds "line": N first
 * (the input line, as the oracle does, to pair outputs that have no
 * message_id with their notification). */
static void
s_flush(yajl_gen g, size_t line)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    if (line && len > 2) {
        printf("{\"line\":%zu,", line);
        buf++;
        len--;
    }
    fwrite(buf, 1, len, stdout);
    fputc('\n', stdout);
    yajl_gen_clear(g);
    yajl_gen_reset(g, NULL);
}

int
main(int argc, char **argv)
{
    const char *meters_path = NULL, *events_path = NULL;
    int events = 0, stats = 0, with_line = 0;
    static const struct option opts[] = {
        { "meters", required_argument, NULL, 'm' },
        { "event-definitions", required_argument, NULL, 'e' },
        { "events", no_argument, NULL, 'E' },
        { "stats", no_argument, NULL, 's' },
        { "line", no_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "m:e:Eslh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': meters_path = optarg; break;
        case 'e': events_path = optarg; break;
        case 'E': events = 1; break;
        case 's': stats = 1; break;
        case 'l': with_line = 1; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (optind != argc || (events ? !events_path : !meters_path)) {
        s_usage(stderr);
        return 2;
    }
    char err[1024];
    sl_meters_t *m = NULL;
    sl_events_t *ev = NULL;
    if (meters_path && !(m = sl_meters_load(meters_path, NULL, err, sizeof err))) {
        fprintf(stderr, "sluice-convert: %s\n", err);
        return 2;
    }
    if (events_path && !(ev = sl_events_load(events_path, NULL, err, sizeof err))) {
        fprintf(stderr, "sluice-convert: %s\n", err);
        sl_meters_destroy(&m);
        return 2;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    sl_arena_t arena;
    sl_arena_init(&arena, 0);
    sl_meters_sample_t *out = calloc(S_MAX_SAMPLES, sizeof *out);
    sl_convert_stats_t cs = { 0 };
    sl_event_stats_t es = { 0 };
    char *line = NULL;
    size_t cap = 0, lineno = 0, bad = 0, total = 0, emitted = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t k = 0;
        while (k < (size_t) len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == (size_t) len)
            continue;           /* blank */
        total++;
        sl_notification_t n;
        sl_env_status_t st = sl_envelope_decode(line, (size_t) len, 0, &n, err, sizeof err);
        if (st != SL_ENV_OK) {
            fprintf(stderr, "sluice-convert: line %zu: %s: %s\n", lineno,
                    sl_env_status_name(st), err);
            bad++;
            continue;
        }
        sl_arena_reset(&arena);
        if (events) {
            sl_event_t e;
            if (sl_events_convert(ev, &n, &arena, &e, &es) == 1) {
                sl_event_gen(g, &e);
                s_flush(g, with_line ? lineno : 0);
                emitted++;
            }
        } else {
            size_t ns = sl_meters_convert_values(m, &n, &arena, out, S_MAX_SAMPLES, &cs);
            for (size_t i = 0; i < ns; i++) {
                s_gen_sample(g, &out[i], n.message_id);
                s_flush(g, with_line ? lineno : 0);
            }
            emitted += ns;
        }
        sl_notification_clear(&n);
    }
    if (stats) {
        if (events)
            fprintf(stderr, "sluice-convert: %zu notifications (%zu bad) -> %zu events; "
                    "failed %llu, other priority %llu, no definition %llu\n", total, bad,
                    emitted, (unsigned long long) es.failed,
                    (unsigned long long) es.other_priority,
                    (unsigned long long) es.no_definition);
        else
            fprintf(stderr, "sluice-convert: %zu notifications (%zu bad) -> %zu samples; "
                    "skipped %llu, failed %llu, other priority %llu, no definition %llu\n",
                    total, bad, emitted, (unsigned long long) cs.skipped,
                    (unsigned long long) cs.failed, (unsigned long long) cs.other_priority,
                    (unsigned long long) cs.no_definition);
    }
    free(line);
    free(out);
    sl_arena_destroy(&arena);
    yajl_gen_free(g);
    sl_meters_destroy(&m);
    sl_events_destroy(&ev);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "sluice-convert: write error: %s\n", strerror(errno));
        return 1;
    }
    return bad ? 1 : 0;
}
