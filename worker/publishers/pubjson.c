/* pubjson — samples and events as Ceilometer's HTTP publishers serialise
 * them (worker/publishers/pubjson.h). Each record is turned into a small
 * yajl tree in an arena (so that a forward profile can filter it), then
 * written the way Python's json.dumps writes it. */
#include "worker/publishers/pubjson.h"

#include <stdlib.h>
#include <string.h>

#include "common/forward.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pycompat.h"
#include "worker/publishers/notifier.h"

static yajl_val
s_node(sl_arena_t *a, yajl_type t)
{
    yajl_val v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

static yajl_val
s_str(sl_arena_t *a, const char *s)
{
    return s ? sl_json_new_string(a, s, strlen(s)) : s_node(a, yajl_t_null);
}

yajl_val
sl_pubjson_object(sl_arena_t *a, const char *const *keys, yajl_val *vals, size_t n)
{
    yajl_val o = s_node(a, yajl_t_object);
    o->u.object.keys = sl_arena_alloc(a, (n ? n : 1) * sizeof *o->u.object.keys);
    o->u.object.values = sl_arena_alloc(a, (n ? n : 1) * sizeof *o->u.object.values);
    for (size_t i = 0; i < n; i++) {
        o->u.object.keys[i] = keys[i];
        o->u.object.values[i] = vals[i] ? vals[i] : s_node(a, yajl_t_null);
    }
    o->u.object.len = n;
    return o;
}

yajl_val
sl_pubjson_str(sl_arena_t *a, const char *text)
{
    return s_str(a, text);
}

yajl_val
sl_pubjson_node(sl_arena_t *a, yajl_type t)
{
    return s_node(a, t);
}

yajl_val
sl_pubjson_number(sl_arena_t *a, const char *text)
{
    return sl_py_new_number(a, sl_arena_strdup(a, text));
}

/* ---- json.dumps ---------------------------------------------------------- */

static void
s_put_number(sl_buf_t *out, yajl_val v, sl_arena_t *a)
{
    if (sl_py_is_float(v)) {
        double d;
        if (v->u.number.r)
            d = strtod(v->u.number.r, NULL);   /* 1e400 -> inf, as float() */
        else
            d = (v->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ? v->u.number.d
                                                               : (double) v->u.number.i;
        sl_buf_puts(out, sl_py_float_json(a, d));
    } else if (v->u.number.r) {
        sl_buf_puts(out, strcmp(v->u.number.r, "-0") == 0 ? "0" : v->u.number.r);
    } else {
        sl_buf_printf(out, "%lld", v->u.number.i);
    }
}

void
sl_pubjson_dumps(sl_buf_t *out, yajl_val v, sl_arena_t *a)
{
    if (!v) {
        sl_buf_puts(out, "null");
        return;
    }
    switch (v->type) {
    case yajl_t_string:
        sl_notifier_json_str(out, v->u.string, strlen(v->u.string));
        return;
    case yajl_t_number:
        s_put_number(out, v, a);
        return;
    case yajl_t_true:
        sl_buf_puts(out, "true");
        return;
    case yajl_t_false:
        sl_buf_puts(out, "false");
        return;
    case yajl_t_array:
        sl_buf_putc(out, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                sl_buf_puts(out, ", ");
            sl_pubjson_dumps(out, v->u.array.values[i], a);
        }
        sl_buf_putc(out, ']');
        return;
    case yajl_t_object:
        sl_buf_putc(out, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                sl_buf_puts(out, ", ");
            sl_notifier_json_str(out, v->u.object.keys[i], strlen(v->u.object.keys[i]));
            sl_buf_puts(out, ": ");
            sl_pubjson_dumps(out, v->u.object.values[i], a);
        }
        sl_buf_putc(out, '}');
        return;
    default:
        sl_buf_puts(out, "null");
        return;
    }
}

/* ---- records ------------------------------------------------------------- */

yajl_val
sl_pubjson_sample_tree(sl_arena_t *a, const sl_sample_t *s, char *err, size_t errlen)
{
    char why[160];
    const char *id = s->id ? s->id : "?";
    yajl_val volume, meta, mono = NULL;
    if (s->volume_json) {
        volume = sl_json_parse(a, s->volume_json, strlen(s->volume_json), 0, why, sizeof why);
        if (!volume) {
            sl_errf(err, errlen, "sample %s: volume %.40s is not JSON: %s", id, s->volume_json,
                    why);
            return NULL;
        }
    } else {
        volume = sl_py_new_float(a, s->volume);
    }
    const char *mt = s->resource_metadata ? s->resource_metadata : "{}";
    if (!(meta = sl_json_parse(a, mt, strlen(mt), 0, why, sizeof why))) {
        sl_errf(err, errlen, "sample %s: resource_metadata is not JSON: %s", id, why);
        return NULL;
    }
    if (s->monotonic_time &&
        !(mono = sl_json_parse(a, s->monotonic_time, strlen(s->monotonic_time), 0, why,
                               sizeof why))) {
        sl_errf(err, errlen, "sample %s: monotonic_time is not JSON: %s", id, why);
        return NULL;
    }
    /* Sample.__init__'s assignment order, which __dict__ (and so as_dict)
     * keeps; a missing source is Sample.SOURCE_DEFAULT. */
    static const char *const keys[] = {
        "name", "type", "unit", "volume", "user_id", "project_id", "resource_id", "timestamp",
        "resource_metadata", "source", "id", "monotonic_time",
    };
    yajl_val vals[] = {
        s_str(a, s->name), s_str(a, s->type), s_str(a, s->unit), volume, s_str(a, s->user_id),
        s_str(a, s->project_id), s_str(a, s->resource_id), s_str(a, s->timestamp), meta,
        s_str(a, s->source && *s->source ? s->source : "openstack"), s_str(a, s->id), mono,
    };
    return sl_pubjson_object(a, keys, vals, sizeof keys / sizeof *keys);
}

static yajl_val
s_parse_event(sl_arena_t *a, const char *event_json, char *err, size_t errlen)
{
    char why[160];
    yajl_val ev = sl_json_parse(a, event_json, strlen(event_json), 0, why, sizeof why);
    if (!ev || ev->type != yajl_t_object) {
        sl_errf(err, errlen, "event is not a JSON object: %s", ev ? "another type" : why);
        return NULL;
    }
    return ev;
}

yajl_val
sl_pubjson_event_tree(sl_arena_t *a, const char *event_json, char *err, size_t errlen)
{
    yajl_val ev = s_parse_event(a, event_json, err, errlen);
    if (!ev)
        return NULL;
    yajl_val traits = sl_json_get(ev, "traits"), raw = sl_json_get(ev, "raw");
    if (traits && traits->type != yajl_t_array) {
        const char *mid = sl_json_str(sl_json_get(ev, "message_id"));
        sl_errf(err, errlen, "event %.40s: traits is not a list", mid ? mid : "?");
        return NULL;
    }
    static const char *const keys[] = { "message_id", "event_type", "generated", "traits", "raw" };
    yajl_val vals[] = {
        sl_json_get(ev, "message_id"), sl_json_get(ev, "event_type"),
        sl_json_get(ev, "generated"), traits ? traits : s_node(a, yajl_t_array),
        raw ? raw : sl_pubjson_object(a, NULL, NULL, 0),
    };
    return sl_pubjson_object(a, keys, vals, sizeof keys / sizeof *keys);
}

yajl_val
sl_pubjson_raw_tree(sl_arena_t *a, const char *event_json, char *err, size_t errlen)
{
    yajl_val ev = s_parse_event(a, event_json, err, errlen);
    if (!ev)
        return NULL;
    yajl_val raw = sl_json_get(ev, "raw");
    yajl_val payload = raw && raw->type == yajl_t_object ? sl_json_get(raw, "payload") : NULL;
    if (!sl_json_truthy(payload)) {
        if (errlen)
            err[0] = '\0';
        return NULL;
    }
    return payload;
}

/* Filters tree (when fwd is set) and appends it. */
static void
s_emit(sl_buf_t *out, yajl_val tree, const struct sl_forward *fwd, int events, sl_arena_t *a)
{
    if (fwd)
        sl_forward_filter(fwd, events, tree);
    sl_pubjson_dumps(out, tree, a);
}

int
sl_pubjson_sample(sl_buf_t *out, const sl_sample_t *s, const struct sl_forward *fwd, char *err,
                  size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    yajl_val t = sl_pubjson_sample_tree(&a, s, err, errlen);
    if (t)
        s_emit(out, t, fwd, 0, &a);
    sl_arena_destroy(&a);
    return t ? 0 : -1;
}

int
sl_pubjson_event(sl_buf_t *out, const char *event_json, const struct sl_forward *fwd, char *err,
                 size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    yajl_val t = sl_pubjson_event_tree(&a, event_json, err, errlen);
    if (t)
        s_emit(out, t, fwd, 1, &a);
    sl_arena_destroy(&a);
    return t ? 0 : -1;
}

int
sl_pubjson_event_raw(sl_buf_t *out, const char *event_json, const struct sl_forward *fwd,
                     char *err, size_t errlen)
{
    sl_arena_t a;
    sl_arena_init(&a, 0);
    char why[256];
    why[0] = '\0';
    yajl_val t = sl_pubjson_raw_tree(&a, event_json, why, sizeof why);
    int rc = 1;
    if (t) {
        s_emit(out, t, fwd, 1, &a);
    } else if (why[0]) {
        sl_errf(err, errlen, "%s", why);
        rc = -1;
    } else {
        rc = 0;
    }
    sl_arena_destroy(&a);
    return rc;
}
