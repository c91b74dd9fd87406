/* scenario — transformer scenarios run through the chain (see scenario.h).
 * Factored out of tools/sluice-transform.c, whose output it defines. */
#include "tools/scenario.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/isotime.h"
#include "common/json.h"
#include "common/pycompat.h"
#include "common/log.h"

typedef struct {
    sl_sample_t *in;
    size_t       n;
    yajl_val     v;             /* the step object (flush, now) */
} s_step_t;

struct sl_scenario {
    sl_arena_t     a;
    sl_pipeline_t *p;
    const char    *path;
    const char    *top_now;
    s_step_t      *steps;
    size_t         n_steps;
    const char   **ids;         /* every input sample's id */
    size_t         n_ids;
    sl_sample_vec_t out;
};

static void
s_yaml_string(sl_buf_t *b, const char *s)
{
    sl_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char) *p;
            sl_buf_put(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            sl_buf_puts(b, esc);
        } else {
            sl_buf_put(b, (const char *) p, 1);
        }
    }
    sl_buf_puts(b, "\"");
}

/* A JSON number as a YAML 1.1 scalar of the same type (PyYAML reads `1e9`
 * as a string; `1.0e+9` is its float). */
static void
s_yaml_number(sl_buf_t *b, const char *r)
{
    const char *e = strpbrk(r, "eE");
    if (!e) {
        sl_buf_puts(b, r);
        return;
    }
    sl_buf_put(b, r, (size_t) (e - r));
    if (!memchr(r, '.', (size_t) (e - r)))
        sl_buf_puts(b, ".0");
    sl_buf_puts(b, "e");
    const char *x = e + 1;
    if (*x != '+' && *x != '-')
        sl_buf_puts(b, "+");
    sl_buf_puts(b, x);
}

static void
s_yaml(sl_buf_t *b, yajl_val v)
{
    if (!v || YAJL_IS_NULL(v)) {
        sl_buf_puts(b, "null");
    } else if (YAJL_IS_TRUE(v)) {
        sl_buf_puts(b, "true");
    } else if (YAJL_IS_FALSE(v)) {
        sl_buf_puts(b, "false");
    } else if (YAJL_IS_STRING(v)) {
        s_yaml_string(b, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        char tmp[64];
        if (!v->u.number.r)
            snprintf(tmp, sizeof tmp, "%.17g", v->u.number.d);
        s_yaml_number(b, v->u.number.r ? v->u.number.r : tmp);
    } else if (YAJL_IS_ARRAY(v)) {
        sl_buf_puts(b, "[");
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                sl_buf_puts(b, ", ");
            s_yaml(b, v->u.array.values[i]);
        }
        sl_buf_puts(b, "]");
    } else {
        sl_buf_puts(b, "{");
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                sl_buf_puts(b, ", ");
            s_yaml_string(b, v->u.object.keys[i]);
            sl_buf_puts(b, ": ");
            s_yaml(b, v->u.object.values[i]);
        }
        sl_buf_puts(b, "}");
    }
}

static char *
s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sl_buf_t b = { 0 };
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sl_buf_put(&b, chunk, n);
    fclose(f);
    if (!b.p)
        sl_buf_put(&b, "", 0);
    *len = b.n;
    return b.p;
}

static const char *
s_str_field(sl_arena_t *a, yajl_val obj, const char *key)
{
    yajl_val v = sl_json_get(obj, key);
    return v ? sl_json_scalar_text(a, v) : NULL;
}

/* One input sample from its JSON object. */
static void
s_sample(sl_arena_t *a, yajl_val o, size_t step, size_t idx, sl_sample_t *s)
{
    memset(s, 0, sizeof *s);
    s->name = s_str_field(a, o, "name");
    s->type = s_str_field(a, o, "type");
    s->unit = s_str_field(a, o, "unit");
    s->user_id = s_str_field(a, o, "user_id");
    s->project_id = s_str_field(a, o, "project_id");
    s->resource_id = s_str_field(a, o, "resource_id");
    s->timestamp = s_str_field(a, o, "timestamp");
    s->source = s_str_field(a, o, "source");
    s->message_id = "scenario";
    yajl_val id = sl_json_get(o, "id");
    s->id = id && !YAJL_IS_NULL(id) ? sl_json_scalar_text(a, id)
                                    : sl_arena_printf(a, "s%zu.%zu", step, idx);
    yajl_val md = sl_json_get(o, "resource_metadata");
    s->resource_metadata = md && !YAJL_IS_NULL(md) ? sl_json_dump(a, md) : "{}";
    yajl_val mt = sl_json_get(o, "monotonic_time");
    s->monotonic_time = mt && YAJL_IS_NUMBER(mt) ? sl_json_dump(a, mt) : NULL;
    yajl_val vol = sl_json_get(o, "volume");
    s->volume = NAN;
    if (!vol || YAJL_IS_NULL(vol)) {
        s->volume_json = NULL;
    } else if (YAJL_IS_NUMBER(vol)) {
        s->volume_json = sl_json_dump(a, vol);
        s->volume = strtod(s->volume_json, NULL);
    } else if (YAJL_IS_TRUE(vol) || YAJL_IS_FALSE(vol)) {
        s->volume_json = YAJL_IS_TRUE(vol) ? "true" : "false";
        s->volume = YAJL_IS_TRUE(vol);
    } else {
        s->volume_json = sl_json_dump(a, vol);
        if (YAJL_IS_STRING(vol)) {
            char *end;
            double d = strtod(vol->u.string, &end);
            if (end != vol->u.string)
                s->volume = d;
        }
    }
}

static void
s_gstr(yajl_gen g, const char *s)
{
    if (s)
        yajl_gen_string(g, (const unsigned char *) s, strlen(s));
    else
        yajl_gen_null(g);
}

static void
s_gen_sample(const sl_scenario_t *sc, yajl_gen g, const sl_sample_t *s)
{
    yajl_gen_map_open(g);
    s_gstr(g, "name");
    s_gstr(g, s->name);
    s_gstr(g, "type");
    s_gstr(g, s->type);
    s_gstr(g, "unit");
    s_gstr(g, s->unit);
    s_gstr(g, "volume");
    if (s->volume_json) {
        sl_json_gen_raw(g, s->volume_json, strlen(s->volume_json));
    } else if (isfinite(s->volume)) {
        char num[32];
        int n = sl_py_float_repr_buf(num, s->volume);
        yajl_gen_number(g, num, (size_t) n);
    } else {
        yajl_gen_null(g);
    }
    s_gstr(g, "user_id");
    s_gstr(g, s->user_id);
    s_gstr(g, "project_id");
    s_gstr(g, s->project_id);
    s_gstr(g, "resource_id");
    s_gstr(g, s->resource_id);
    s_gstr(g, "timestamp");
    s_gstr(g, s->timestamp);
    s_gstr(g, "resource_metadata");
    const char *md = s->resource_metadata ? s->resource_metadata : "{}";
    sl_json_gen_raw(g, md, strlen(md));
    s_gstr(g, "source");
    s_gstr(g, s->source);
    s_gstr(g, "monotonic_time");
    if (s->monotonic_time)
        sl_json_gen_raw(g, s->monotonic_time, strlen(s->monotonic_time));
    else
        yajl_gen_null(g);
    /* The input's id when the very sample was passed on; a new sample has a
     * fresh uuid, which is never one of the scenario's ids: null. */
    const char *id = NULL;
    for (size_t i = 0; s->id && i < sc->n_ids; i++)
        if (!strcmp(sc->ids[i], s->id)) {
            id = s->id;
            break;
        }
    s_gstr(g, "id");
    s_gstr(g, id);
    yajl_gen_map_close(g);
}

void
sl_scenario_gen_call(const sl_scenario_t *sc, yajl_gen g, size_t step, const char *phase,
                     const sl_sample_t *v, size_t n)
{
    yajl_gen_map_open(g);
    s_gstr(g, "step");
    yajl_gen_integer(g, (long long) step);
    s_gstr(g, "phase");
    s_gstr(g, phase);
    s_gstr(g, "samples");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
        s_gen_sample(sc, g, &v[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

int
sl_scenario_open(const char *path, sl_scenario_t **out, char *err, size_t errlen)
{
    *out = NULL;
    size_t len;
    char *text = s_slurp(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return 1;
    }
    sl_scenario_t *sc = sl_xcalloc(1, sizeof *sc);
    sl_arena_init(&sc->a, 0);
    sc->path = sl_arena_strdup(&sc->a, path);
    char msg[1024];
    yajl_val root = sl_json_parse(&sc->a, text, len, 0, msg, sizeof msg);
    free(text);
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "%s: not a scenario: %s", path, root ? "not an object" : msg);
        sl_scenario_destroy(&sc);
        return 1;
    }
    sl_buf_t y = { 0 };
    sl_buf_puts(&y, "sources:\n  - name: scenario\n    meters: [\"*\"]\n    sinks: [scenario]\n"
               "sinks:\n  - name: scenario\n    publishers: [\"test://\"]\n    transformers: ");
    yajl_val tr = sl_json_get(root, "transformers");
    if (tr && YAJL_IS_ARRAY(tr) && tr->u.array.len)
        s_yaml(&y, tr);
    else
        sl_buf_puts(&y, "[]");
    sl_buf_puts(&y, "\n");
    char yname[1100];
    snprintf(yname, sizeof yname, "%s (as pipeline.yaml)", path);
    sc->p = sl_pipeline_parse(y.p, y.n, yname, "meters", NULL, err, errlen);
    free(y.p);
    if (!sc->p || sl_transform_check(sc->p, NULL, err, errlen) < 0) {
        sl_scenario_destroy(&sc);
        return 2;
    }
    /* Steps: `steps`, or one step from top-level samples/flush. */
    yajl_val steps = sl_json_get(root, "steps");
    sc->n_steps = steps && YAJL_IS_ARRAY(steps) ? steps->u.array.len : 1;
    sc->top_now = sl_json_str(sl_json_get(root, "now"));
    sc->steps = sl_arena_alloc(&sc->a, sc->n_steps * sizeof *sc->steps);
    size_t cap_ids = 0;
    for (size_t st = 0; st < sc->n_steps; st++) {
        s_step_t *s = &sc->steps[st];
        s->v = steps && YAJL_IS_ARRAY(steps) ? steps->u.array.values[st] : root;
        yajl_val samples = sl_json_get(s->v, "samples");
        s->n = samples && YAJL_IS_ARRAY(samples) ? samples->u.array.len : 0;
        s->in = sl_arena_alloc(&sc->a, (s->n + 1) * sizeof *s->in);
        for (size_t i = 0; i < s->n; i++) {
            s_sample(&sc->a, samples->u.array.values[i], st, i, &s->in[i]);
            if (sc->n_ids == cap_ids) {
                cap_ids = cap_ids ? cap_ids * 2 : 64;
                sc->ids = sl_xrealloc(sc->ids, cap_ids * sizeof *sc->ids);
            }
            sc->ids[sc->n_ids++] = s->in[i].id;
        }
    }
    *out = sc;
    return 0;
}

size_t
sl_scenario_steps(const sl_scenario_t *sc)
{
    return sc->n_steps;
}

const sl_sink_t *
sl_scenario_sink(const sl_scenario_t *sc)
{
    return &sc->p->sinks[0];
}

int
sl_scenario_step(sl_scenario_t *sc, sl_chain_t *c, size_t st, yajl_gen g, char *err,
                 size_t errlen)
{
    const s_step_t *s = &sc->steps[st];
    sl_sample_vec_t *out = &sc->out;
    out->n = 0;
    sl_chain_process(c, s->in, s->n, out);
    if (out->n)
        sl_scenario_gen_call(sc, g, st, "publish", out->v, out->n);
    yajl_val fl = sl_json_get(s->v, "flush");
    if (fl && YAJL_IS_FALSE(fl))
        return 0;
    const char *now = sl_json_str(sl_json_get(s->v, "now"));
    if (!now)
        now = sc->top_now ? sc->top_now : "1970-01-01T00:00:00Z";
    int64_t now_us;
    if (sl_isotime_parse(now, &now_us) < 0) {
        snprintf(err, errlen, "%s: step %zu: bad now '%s'", sc->path, st, now);
        return -1;
    }
    sl_chain_set_now(c, (double) now_us / 1e6);
    out->n = 0;
    sl_chain_flush(c, out);
    const size_t *ends;
    size_t nb = sl_chain_flush_batches(c, &ends), from = 0;
    for (size_t b = 0; b < nb; b++) {
        sl_scenario_gen_call(sc, g, st, "flush", out->v + from, ends[b] - from);
        from = ends[b];
    }
    return 0;
}

void
sl_scenario_destroy(sl_scenario_t **sc_p)
{
    if (!sc_p || !*sc_p)
        return;
    sl_scenario_t *sc = *sc_p;
    sl_pipeline_destroy(&sc->p);
    free(sc->ids);
    sl_sample_vec_free(&sc->out);
    sl_arena_destroy(&sc->a);
    free(sc);
    *sc_p = NULL;
}
