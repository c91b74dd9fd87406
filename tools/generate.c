#include "tools/generate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/arena.h"

enum { F_COMPUTE, F_PORT, F_CINDER, F_NEUTRON, F_IDENTITY, F_IMAGE, F_CAPACITY, F_OTHER, F_N };
static const unsigned s_weights[F_N] = { 40, 25, 10, 6, 5, 4, 3, 7 };

typedef struct {
    char  *text;
    size_t len;
} s_tpl_t;

typedef struct {
    char orig[40];
    char repl[40];
} s_map_t;

struct sl_gen {
    s_tpl_t *tpl[F_N];
    size_t   n_tpl[F_N];
    unsigned total_weight;
    uint64_t rng[2];
    int      wire;
    unsigned resources;
    double   clock;          /* simulated epoch seconds */
    char    *out, *wrapped;
    size_t   len, cap;
    s_map_t  map[64];
    size_t   n_map;
    yajl_gen gen;
};

static uint64_t
s_rand(sl_gen_t *g)
{
    /* xorshift128+ */
    uint64_t s1 = g->rng[0];
    const uint64_t s0 = g->rng[1];
    g->rng[0] = s0;
    s1 ^= s1 << 23;
    g->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return g->rng[1] + s0;
}

static int
s_family(const char *et)
{
    if (!strncmp(et, "compute.instance.", 17))
        return F_COMPUTE;
    if (!strncmp(et, "port.", 5))
        return F_PORT;
    if (!strncmp(et, "volume.", 7) || !strncmp(et, "snapshot.", 9) || !strncmp(et, "backup.", 7))
        return F_CINDER;
    if (!strncmp(et, "network.", 8) || !strncmp(et, "subnet.", 7) || !strncmp(et, "router.", 7) ||
        !strncmp(et, "floatingip.", 11))
        return F_NEUTRON;
    if (!strncmp(et, "identity.", 9))
        return F_IDENTITY;
    if (!strncmp(et, "image.", 6))
        return F_IMAGE;
    if (!strncmp(et, "capacity.", 9) || !strcmp(et, "compute.metrics.update"))
        return F_CAPACITY;
    return F_OTHER;
}

static void
s_put(sl_gen_t *g, const char *s, size_t n)
{
    if (g->len + n + 1 > g->cap) {
        g->cap = (g->len + n + 1) * 2;
        g->out = sl_xrealloc(g->out, g->cap);
    }
    memcpy(g->out + g->len, s, n);
    g->len += n;
    g->out[g->len] = '\0';
}

static int
s_is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char) s[i]))
            return 0;
    return 1;
}

static int
s_is_uuid(const char *s, size_t n)
{
    return n == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' &&
           s_is_hex(s, 8) && s_is_hex(s + 9, 4) && s_is_hex(s + 14, 4) && s_is_hex(s + 19, 4) &&
           s_is_hex(s + 24, 12);
}

static void
s_id(uint64_t v, int dashed, char *out)
{
    uint64_t a = v * 0x9e3779b97f4a7c15ULL, b = (v + 1) * 0xc2b2ae3d27d4eb4fULL;
    if (dashed)
        sprintf(out, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned) (a >> 32), (unsigned) (a >> 16) & 0xffff,
                (unsigned) a & 0xfff, (unsigned) (b >> 52) & 0xfff,
                (unsigned long long) (b & 0xffffffffffffULL));
    else
        sprintf(out, "%016llx%016llx", (unsigned long long) a, (unsigned long long) b);
}

/* The replacement of an id seen under `key`, consistent within a notification. */
static const char *
s_remap(sl_gen_t *g, const char *key, const char *s, size_t n, int dashed)
{
    for (size_t i = 0; i < g->n_map; i++)
        if (strlen(g->map[i].orig) == n && !memcmp(g->map[i].orig, s, n))
            return g->map[i].repl;
    static char fresh[40];
    uint64_t pool = g->resources, base = 0;
    int random_id = strstr(key, "message_id") || strstr(key, "unique_id") || strstr(key, "request_id");
    if (strstr(key, "project") || strstr(key, "tenant") || strstr(key, "owner"))
        pool = 500, base = 1u << 20;
    else if (strstr(key, "user"))
        pool = 2000, base = 2u << 20;
    uint64_t v = random_id ? s_rand(g) : base + s_rand(g) % pool;
    if (g->n_map == 64) {
        s_id(v, dashed, fresh);
        return fresh;
    }
    s_map_t *m = &g->map[g->n_map++];
    memcpy(m->orig, s, n);
    m->orig[n] = '\0';
    s_id(v, dashed, m->repl);
    return m->repl;
}

static int
s_is_size_key(const char *key)
{
    static const char *keys[] = { "size", "memory_mb", "vcpus", "root_gb", "ephemeral_gb",
                                  "disk_gb", "volume_size", "bytes", "bytes_sent", "total",
                                  "free", "allocated", "provisioned", "virtual_free", "value", NULL };
    for (int i = 0; keys[i]; i++)
        if (!strcmp(key, keys[i]))
            return 1;
    return 0;
}

/* Copies template text, rewriting ids, timestamps and sizes as it goes. A
 * small tokenizer tracks whether a string is a key or a value. */
static void
s_rewrite(sl_gen_t *g, const s_tpl_t *t)
{
    char key[128] = "";
    int stack[64], depth = 0, expect_key = 0;
    const char *p = t->text, *end = t->text + t->len;
    g->len = 0;
    g->n_map = 0;
    while (p < end) {
        char c = *p;
        if (c == '{' || c == '[') {
            if (depth < 64)
                stack[depth++] = c;
            expect_key = c == '{';
            s_put(g, p++, 1);
        } else if (c == '}' || c == ']') {
            if (depth)
                depth--;
            expect_key = 0;
            s_put(g, p++, 1);
        } else if (c == ',') {
            expect_key = depth && stack[depth - 1] == '{';
            s_put(g, p++, 1);
        } else if (c == '"') {
            const char *q = p + 1;
            while (q < end && *q != '"')
                q += *q == '\\' ? 2 : 1;
            size_t n = (size_t) (q - p - 1);
            if (expect_key) {
                snprintf(key, sizeof key, "%.*s", (int) (n < 127 ? n : 127), p + 1);
                s_put(g, p, n + 2);
                expect_key = 0;
            } else if (s_is_uuid(p + 1, n) || (n == 32 && s_is_hex(p + 1, 32))) {
                s_put(g, "\"", 1);
                const char *r = s_remap(g, key, p + 1, n, n == 36);
                s_put(g, r, strlen(r));
                s_put(g, "\"", 1);
            } else if (!strcmp(key, "timestamp") && n >= 19) {
                /* The notification's and nested ones (compute.metrics
                 * samples carry their own) follow the simulated clock, in
                 * the template's date/time separator. */
                char ts[64];
                time_t sec = (time_t) g->clock;
                struct tm tm;
                gmtime_r(&sec, &tm);
                int us = (int) ((g->clock - (double) sec) * 1e6);
                snprintf(ts, sizeof ts, "\"%04d-%02d-%02d%c%02d:%02d:%02d.%06d\"", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, p[11] == 'T' ? 'T' : ' ', tm.tm_hour, tm.tm_min,
                         tm.tm_sec, us);
                s_put(g, ts, strlen(ts));
            } else {
                s_put(g, p, n + 2);
            }
            p = q + 1;
        } else if ((c == '-' || isdigit((unsigned char) c)) && s_is_size_key(key)) {
            const char *q = p + 1;
            int is_float = 0;
            while (q < end && (isdigit((unsigned char) *q) || *q == '.' || *q == 'e' || *q == 'E' ||
                               *q == '+' || *q == '-'))
                is_float |= *q == '.' || *q == 'e' || *q == 'E', q++;
            double orig = strtod(p, NULL);
            char num[48];
            uint64_t r = s_rand(g);
            if (is_float)
                snprintf(num, sizeof num, "%.2f", (double) (r % 100000) / 100.0 * (orig > 1 ? orig / 500 : 1));
            else
                snprintf(num, sizeof num, "%llu", (unsigned long long) (1 + r % (uint64_t) (2 * (orig > 0 ? orig : 1) + 1)));
            s_put(g, num, strlen(num));
            p = q;
        } else {
            s_put(g, p++, 1);
        }
    }
}

sl_gen_t *
sl_gen_new(const char *path, uint64_t seed, int wire, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open templates %s (use --templates FILE)", path);
        return NULL;
    }
    sl_gen_t *g = sl_xcalloc(1, sizeof *g);
    g->rng[0] = seed * 0x9e3779b97f4a7c15ULL + 1;
    g->rng[1] = (seed ^ 0xdeadbeefcafef00dULL) * 0xbf58476d1ce4e5b9ULL + 3;
    g->wire = wire;
    g->resources = 50000;
    g->clock = 1767225600.0;   /* 2026-01-01T00:00:00Z */
    g->gen = yajl_gen_alloc(NULL);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        yajl_val v = yajl_tree_parse(line, NULL, 0);
        const char *kp[] = { "event_type", NULL };
        yajl_val et = v ? yajl_tree_get(v, kp, yajl_t_string) : NULL;
        if (et) {
            int fam = s_family(YAJL_GET_STRING(et));
            g->tpl[fam] = sl_xrealloc(g->tpl[fam], (g->n_tpl[fam] + 1) * sizeof *g->tpl[fam]);
            g->tpl[fam][g->n_tpl[fam]++] = (s_tpl_t) { sl_xstrdup(line), (size_t) n };
        }
        yajl_tree_free(v);
    }
    free(line);
    fclose(f);
    for (int i = 0; i < F_N; i++)
        if (g->n_tpl[i])
            g->total_weight += s_weights[i];
    if (!g->total_weight) {
        snprintf(err, errlen, "%s holds no notification with an event_type", path);
        sl_gen_destroy(&g);
        return NULL;
    }
    return g;
}

void
sl_gen_set_resources(sl_gen_t *g, unsigned n)
{
    g->resources = n ? n : 1;
}

const char *
sl_gen_next(sl_gen_t *g, size_t *len)
{
    unsigned w = (unsigned) (s_rand(g) % g->total_weight);
    int fam = 0;
    for (; fam < F_N; fam++) {
        if (!g->n_tpl[fam])
            continue;
        if (w < s_weights[fam])
            break;
        w -= s_weights[fam];
    }
    const s_tpl_t *t = &g->tpl[fam][s_rand(g) % g->n_tpl[fam]];
    /* Poisson spacing at 1000 notifications per simulated second. */
    double u = (double) (s_rand(g) >> 11) / 9007199254740992.0;
    g->clock += -0.001 * log1p(-u);
    s_rewrite(g, t);
    if (!g->wire) {
        *len = g->len;
        return g->out;
    }
    yajl_gen_clear(g->gen);
    yajl_gen_reset(g->gen, NULL);
    yajl_gen_map_open(g->gen);
    yajl_gen_string(g->gen, (const unsigned char *) "oslo.version", 12);
    yajl_gen_string(g->gen, (const unsigned char *) "2.0", 3);
    yajl_gen_string(g->gen, (const unsigned char *) "oslo.message", 12);
    yajl_gen_string(g->gen, (const unsigned char *) g->out, g->len);
    yajl_gen_map_close(g->gen);
    const unsigned char *buf;
    yajl_gen_get_buf(g->gen, &buf, len);
    return (const char *) buf;
}

void
sl_gen_destroy(sl_gen_t **g_p)
{
    if (!g_p || !*g_p)
        return;
    sl_gen_t *g = *g_p;
    for (int i = 0; i < F_N; i++) {
        for (size_t k = 0; k < g->n_tpl[i]; k++)
            free(g->tpl[i][k].text);
        free(g->tpl[i]);
    }
    free(g->out);
    yajl_gen_free(g->gen);
    free(g);
    *g_p = NULL;
}
