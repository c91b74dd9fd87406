#include "common/envelope.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common/events.h"
#include "common/json.h"
#include "common/meters.h"

static const char *s_status_names[] = {
    "ok",
#define X(name, help) #name,
    SL_ENV_ERRORS(X)
#undef X
};

static const char *s_prio_names[] = {
    "audit", "debug", "info", "warn", "error", "critical", "sample"
};

const char *
sl_env_status_name(sl_env_status_t st)
{
    if ((int) st < 0 || st >= SL_ENV_ERR__COUNT)
        return "unknown";
    return s_status_names[st];
}

const char *
sl_priority_name(sl_priority_t p)
{
    if ((int) p < 0 || (size_t) p >= sizeof s_prio_names / sizeof s_prio_names[0])
        return "unknown";
    return s_prio_names[p];
}

void
sl_notification_clear(sl_notification_t *n)
{
    if (!n)
        return;
    sl_arena_destroy(&n->mem);
    memset(n, 0, sizeof *n);
}

static sl_env_status_t
s_fail(sl_notification_t *out, sl_env_status_t st, char *err, size_t errlen,
       const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    sl_notification_clear(out);
    return st;
}

static const char *
s_type_name(yajl_val v)
{
    switch (v->type) {
    case yajl_t_string: return "a string";
    case yajl_t_number: return "a number";
    case yajl_t_object: return "an object";
    case yajl_t_array:  return "an array";
    case yajl_t_true:
    case yajl_t_false:  return "a boolean";
    default:            return "null";
    }
}

/* Python's int() on one part of a version string: surrounding whitespace,
 * an optional sign, digits with single underscores between them. */
static int
s_py_int(const char *s, size_t n, long *out)
{
    while (n && isspace((unsigned char) *s))
        s++, n--;
    while (n && isspace((unsigned char) s[n - 1]))
        n--;
    int neg = 0;
    if (n && (*s == '+' || *s == '-')) {
        neg = *s == '-';
        s++, n--;
    }
    if (!n || !isdigit((unsigned char) *s) || !isdigit((unsigned char) s[n - 1]))
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_' && isdigit((unsigned char) s[i + 1]))
            continue;
        if (!isdigit((unsigned char) s[i]) || v > 100000000L)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* oslo.messaging's version_is_compatible("2.0", version). */
static int
s_version_ok(const char *v)
{
    long part[3] = { 0, 0, 0 };
    size_t np = 0;
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ".");
        if (np < 3 && s_py_int(p, n, &part[np]) < 0)
            return 0;
        np++;
        if (!p[n])
            break;
        p += n + 1;
    }
    if (np < 2)
        return 0;       /* oslo raises IndexError: the message is lost */
    return part[0] == 2 && part[1] <= 0 && (part[1] < 0 || part[2] <= 0);
}

static sl_env_status_t
s_field(sl_notification_t *out, const char *name, const char **dst, char *err, size_t errlen)
{
    yajl_val v = sl_json_get(out->root, name);
    if (!v)
        return s_fail(out, SL_ENV_ERR_missing_field, err, errlen, "no %s", name);
    if (v->type != yajl_t_string)
        return s_fail(out, SL_ENV_ERR_missing_field, err, errlen,
                      "%s is %s, expected a string", name, s_type_name(v));
    *dst = v->u.string;
    return SL_ENV_OK;
}

/* ---- what a decoder keeps ---------------------------------------------- */

typedef struct {
    char  *name;        /* X of a kept _context_X */
    size_t len;
} s_ctx_key_t;

struct sl_env_keep {
    int          all_ctx;
    size_t       n_ctx;
    s_ctx_key_t *ctx;
};

static void
s_keep_ctx(const char *key, void *ud)
{
    sl_env_keep_t *k = ud;
    for (size_t i = 0; i < k->n_ctx; i++)
        if (strcmp(k->ctx[i].name, key) == 0)
            return;
    k->ctx = sl_xrealloc(k->ctx, (k->n_ctx + 1) * sizeof *k->ctx);
    k->ctx[k->n_ctx++] = (s_ctx_key_t) { sl_xstrdup(key), strlen(key) };
}

sl_env_keep_t *
sl_env_keep_new(const struct sl_meters *m, const struct sl_events *e)
{
    sl_env_keep_t *k = sl_xcalloc(1, sizeof *k);
    k->all_ctx = sl_meters_reads_under(m, "ctxt", s_keep_ctx, k) |
                 sl_events_reads_under(e, "ctxt", s_keep_ctx, k);
    return k;
}

void
sl_env_keep_destroy(sl_env_keep_t **k_p)
{
    if (!k_p || !*k_p)
        return;
    for (size_t i = 0; i < (*k_p)->n_ctx; i++)
        free((*k_p)->ctx[i].name);
    free((*k_p)->ctx);
    free(*k_p);
    *k_p = NULL;
}

int
sl_env_keep_all_context(const sl_env_keep_t *k, size_t *n)
{
    if (n)
        *n = k ? k->n_ctx : 0;
    return !k || k->all_ctx;
}

/* key[0..len) is name, as the C string the tree holds (cut at a \\u0000,
 * as every reader sees it). */
static inline int
s_is(const char *key, size_t len, const char *name, size_t nl)
{
    return len >= nl && memcmp(key, name, nl) == 0 && (len == nl || key[nl] == '\0');
}

/* sl_json_keep_fn over a message's top-level keys: dispatched on the first
 * byte, as it runs for every key of every message. */
static int
s_keep(const char *key, size_t len, void *ud)
{
#define S_IS(name) s_is(key, len, name, sizeof name - 1)
    const sl_env_keep_t *k = ud;
    switch (len ? key[0] : 0) {
    case '_':
        if (S_IS("_timeout"))
            return 1;
        if (len < 9 || memcmp(key, "_context_", 9) != 0)
            return 0;
        if (k->all_ctx)
            return 1;
        for (size_t i = 0; i < k->n_ctx; i++) {
            /* the first byte first (most names differ there), but the
             * empty name (`ctxt.''`) is the key `_context_` itself */
            const s_ctx_key_t *c = &k->ctx[i];
            if ((c->len == 0 || (len > 9 && key[9] == c->name[0])) &&
                s_is(key + 9, len - 9, c->name, c->len))
                return 1;
        }
        return 0;
    case 'p':
        return S_IS("payload") || S_IS("priority") || S_IS("publisher_id");
    case 'e':
        return S_IS("event_type");
    case 't':
        return S_IS("timestamp");
    case 'm':
        return S_IS("message_id");
    case 'o':
        return S_IS("oslo.version") || S_IS("oslo.message");
    default:
        return 0;
    }
#undef S_IS
}

sl_env_status_t
sl_envelope_decode(const char *buf, size_t len, size_t max_len,
                   sl_notification_t *out, char *err, size_t errlen)
{
    return sl_envelope_decode_keep(buf, len, max_len, NULL, out, err, errlen);
}

sl_env_status_t
sl_envelope_decode_keep(const char *buf, size_t len, size_t max_len, const sl_env_keep_t *k,
                        sl_notification_t *out, char *err, size_t errlen)
{
    sl_json_keep_fn keep = k ? s_keep : NULL;
    void *keep_ud = (void *) k;
    memset(out, 0, sizeof *out);
    if (err && errlen)
        err[0] = '\0';
    if (max_len > 0 && len > max_len)
        return s_fail(out, SL_ENV_ERR_oversized, err, errlen,
                      "message of %zu bytes exceeds max_message_size (%zu)", len, max_len);
    /* One chunk usually holds the whole tree (about 2-3x the text). */
    sl_arena_init(&out->mem, len < 4096 ? 16384 : len * 3);

    char perr[160];
    sl_json_err_t why;
    yajl_val root = sl_json_parse_keep(&out->mem, buf, len, 0, keep, keep_ud, &why, perr,
                                       sizeof perr);
    if (!root)
        return s_fail(out, why == SL_JSON_E_UTF8 ? SL_ENV_ERR_bad_utf8 : SL_ENV_ERR_malformed_json,
                      err, errlen, "%s", perr);
    if (root->type != yajl_t_object)
        return s_fail(out, SL_ENV_ERR_not_object, err, errlen,
                      "top-level value is %s, expected an object", s_type_name(root));

    /* oslo's deserialize_msg: an envelope is any object with both keys. */
    yajl_val ver = sl_json_get(root, "oslo.version");
    yajl_val msg = sl_json_get(root, "oslo.message");
    if (ver && msg) {
        if (ver->type != yajl_t_string || !s_version_ok(ver->u.string))
            return s_fail(out, SL_ENV_ERR_bad_envelope, err, errlen,
                          "oslo.version is not compatible with 2.0");
        if (msg->type != yajl_t_string)
            return s_fail(out, SL_ENV_ERR_bad_envelope, err, errlen,
                          "oslo.message is %s, expected a string", s_type_name(msg));
        yajl_val inner = sl_json_parse_keep(&out->mem, msg->u.string, strlen(msg->u.string),
                                            0, keep, keep_ud, &why, perr, sizeof perr);
        if (!inner)
            return s_fail(out, why == SL_JSON_E_UTF8 ? SL_ENV_ERR_bad_utf8
                                                     : SL_ENV_ERR_bad_envelope,
                          err, errlen, "oslo.message: %s", perr);
        if (inner->type != yajl_t_object)
            return s_fail(out, SL_ENV_ERR_not_object, err, errlen,
                          "oslo.message holds %s, expected an object", s_type_name(inner));
        out->outer = root;
        root = inner;
    }
    out->root = root;

    const char *prio = NULL;
    sl_env_status_t st;
    if ((st = s_field(out, "event_type", &out->event_type, err, errlen)) != SL_ENV_OK ||
        (st = s_field(out, "priority", &prio, err, errlen)) != SL_ENV_OK)
        return st;
    /* oslo's dispatcher reads payload and message_id with dict.get():
     * absent, they are None, and Ceilometer converts on (a null payload,
     * `message_id: null`) */
    out->payload = sl_json_get(root, "payload");
    if (!out->payload) {
        out->payload = sl_arena_alloc(&out->mem, sizeof *out->payload);
        memset(out->payload, 0, sizeof *out->payload);
        out->payload->type = yajl_t_null;
    }
    if (sl_json_get(root, "message_id") &&
        (st = s_field(out, "message_id", &out->message_id, err, errlen)) != SL_ENV_OK)
        return st;
    if ((st = s_field(out, "timestamp", &out->timestamp, err, errlen)) != SL_ENV_OK)
        return st;
    out->publisher_id = sl_json_str(sl_json_get(root, "publisher_id"));

    /* oslo lowercases the priority (str.lower(); no non-ASCII character
     * lowercases into a letter of these names except KELVIN SIGN -> k,
     * which none contains, so an ASCII comparison is exact). */
    size_t i;
    for (i = 0; i < sizeof s_prio_names / sizeof s_prio_names[0]; i++)
        if (strcasecmp(prio, s_prio_names[i]) == 0)
            break;
    if (i == sizeof s_prio_names / sizeof s_prio_names[0]) {
        if (strcasecmp(prio, "warning") != 0)
            return s_fail(out, SL_ENV_ERR_bad_priority, err, errlen,
                          "unknown priority '%.40s'", prio);
        i = SL_PRIO_WARN;
    }
    out->priority = (sl_priority_t) i;
    return SL_ENV_OK;
}

static yajl_val
s_obj(sl_arena_t *a, size_t cap)
{
    yajl_val v = sl_arena_alloc(a, sizeof *v);
    memset(v, 0, sizeof *v);
    v->type = yajl_t_object;
    v->u.object.keys = sl_arena_alloc(a, (cap + 1) * sizeof(char *));
    v->u.object.values = sl_arena_alloc(a, (cap + 1) * sizeof(yajl_val));
    return v;
}

static void
s_set(yajl_val o, const char *k, yajl_val v)
{
    for (size_t i = 0; i < o->u.object.len; i++) {
        if (strcmp(o->u.object.keys[i], k) == 0) {
            o->u.object.values[i] = v;
            return;
        }
    }
    o->u.object.keys[o->u.object.len] = k;
    o->u.object.values[o->u.object.len++] = v;
}

static void
s_del(yajl_val o, const char *k)
{
    for (size_t i = 0; i < o->u.object.len; i++) {
        if (strcmp(o->u.object.keys[i], k) == 0) {
            o->u.object.len--;
            memmove(&o->u.object.keys[i], &o->u.object.keys[i + 1],
                    (o->u.object.len - i) * sizeof(char *));
            memmove(&o->u.object.values[i], &o->u.object.values[i + 1],
                    (o->u.object.len - i) * sizeof(yajl_val));
            return;
        }
    }
}

static yajl_val
s_strval(sl_arena_t *a, const char *s)
{
    return s ? sl_json_new_string(a, s, strlen(s)) : NULL;
}

/* Every top-level key read here or by sl_envelope_decode_keep must be one
 * s_keep keeps: a decoder leaves the others out. */
yajl_val
sl_notification_view(const sl_notification_t *n, sl_arena_t *a)
{
    yajl_val root = n->root, none = sl_arena_alloc(a, sizeof *none);
    memset(none, 0, sizeof *none);
    none->type = yajl_t_null;
    size_t nctx = 0;
    for (size_t i = 0; i < root->u.object.len; i++)
        nctx += strncmp(root->u.object.keys[i], "_context_", 9) == 0;
    yajl_val ctxt = s_obj(a, nctx + 3);
    /* the message's keys are unique already: append without looking */
    for (size_t i = 0; i < root->u.object.len; i++) {
        if (strncmp(root->u.object.keys[i], "_context_", 9) == 0) {
            ctxt->u.object.keys[ctxt->u.object.len] = root->u.object.keys[i] + 9;
            ctxt->u.object.values[ctxt->u.object.len++] = root->u.object.values[i];
        }
    }
    /* context_dict['msg_id'|'reply_q'|'client_timeout'] = msg.pop(...);
     * RpcContext then pops msg_id and reply_q. */
    yajl_val t = sl_json_get(root, "_timeout");
    s_set(ctxt, "client_timeout", t ? t : none);
    s_del(ctxt, "msg_id");
    s_del(ctxt, "reply_q");
    yajl_val md = s_obj(a, 2);
    yajl_val mid = sl_json_get(root, "message_id"), ts = sl_json_get(root, "timestamp");
    s_set(md, "message_id", mid ? mid : none);
    s_set(md, "timestamp", ts ? ts : none);
    yajl_val v = s_obj(a, 5);
    yajl_val pub = sl_json_get(root, "publisher_id"), et = sl_json_get(root, "event_type");
    s_set(v, "ctxt", ctxt);
    s_set(v, "publisher_id", pub ? pub : none);
    s_set(v, "event_type", et ? et : s_strval(a, n->event_type));
    s_set(v, "payload", n->payload ? n->payload : none);
    s_set(v, "metadata", md);
    return v;
}
