#include "common/sample.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "common/json.h"
#include "common/pycompat.h"

static int
s_gen_str(yajl_gen g, const char *key, const char *val)
{
    if (yajl_gen_string(g, (const unsigned char *) key, strlen(key)) != yajl_gen_status_ok)
        return -1;
    if (!val)
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    return sl_json_gen_strv(g, val, strlen(val));
}

static int
s_gen_raw(yajl_gen g, const char *key, const char *json)
{
    if (yajl_gen_string(g, (const unsigned char *) key, strlen(key)) != yajl_gen_status_ok)
        return -1;
    return sl_json_gen_raw(g, json, strlen(json));
}

int
sl_sample_gen(yajl_gen g, const sl_sample_t *s)
{
    if (!g || !s || yajl_gen_map_open(g) != yajl_gen_status_ok)
        return -1;
    if (s_gen_str(g, "id", s->id) < 0 || s_gen_str(g, "name", s->name) < 0 ||
        s_gen_str(g, "type", s->type) < 0 || s_gen_str(g, "unit", s->unit) < 0)
        return -1;
    if (s->volume_json) {
        if (s_gen_raw(g, "volume", s->volume_json) < 0)
            return -1;
    } else {
        if (yajl_gen_string(g, (const unsigned char *) "volume", 6) != yajl_gen_status_ok)
            return -1;
        char num[32];
        int n = sl_py_float_repr_buf(num, s->volume);
        yajl_gen_status st = isfinite(s->volume) ? yajl_gen_number(g, num, (size_t) n)
                                                 : yajl_gen_null(g);
        if (st != yajl_gen_status_ok)
            return -1;
    }
    if (s_gen_str(g, "user_id", s->user_id) < 0 ||
        s_gen_str(g, "project_id", s->project_id) < 0 ||
        s_gen_str(g, "resource_id", s->resource_id) < 0 ||
        s_gen_str(g, "timestamp", s->timestamp) < 0 ||
        s_gen_raw(g, "resource_metadata", s->resource_metadata ? s->resource_metadata : "{}") < 0 ||
        s_gen_str(g, "source", s->source) < 0 ||
        s_gen_str(g, "message_id", s->message_id) < 0)
        return -1;
    if (s->monotonic_time && s_gen_raw(g, "monotonic_time", s->monotonic_time) < 0)
        return -1;
    return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}

/* ',"key":' (a literal) and the value, or null */
#define S_FIELD(b, scratch, sep_key, val) \
    (sl_buf_puts(b, sep_key), sl_json_put_strz(b, scratch, val))

int
sl_sample_put(sl_buf_t *b, yajl_gen *scratch, const sl_sample_t *s)
{
    if (!b || !s)
        return -1;
    S_FIELD(b, scratch, "{\"id\":", s->id);
    S_FIELD(b, scratch, ",\"name\":", s->name);
    S_FIELD(b, scratch, ",\"type\":", s->type);
    S_FIELD(b, scratch, ",\"unit\":", s->unit);
    sl_buf_puts(b, ",\"volume\":");
    if (s->volume_json) {
        sl_buf_puts(b, s->volume_json);
    } else if (isfinite(s->volume)) {
        char num[32];
        int n = sl_py_float_repr_buf(num, s->volume);
        sl_buf_put(b, num, (size_t) n);
    } else {
        sl_buf_puts(b, "null");
    }
    S_FIELD(b, scratch, ",\"user_id\":", s->user_id);
    S_FIELD(b, scratch, ",\"project_id\":", s->project_id);
    S_FIELD(b, scratch, ",\"resource_id\":", s->resource_id);
    S_FIELD(b, scratch, ",\"timestamp\":", s->timestamp);
    sl_buf_puts(b, ",\"resource_metadata\":");
    if (s->resource_metadata)
        sl_buf_puts(b, s->resource_metadata);
    else
        sl_buf_puts(b, "{}");
    S_FIELD(b, scratch, ",\"source\":", s->source);
    S_FIELD(b, scratch, ",\"message_id\":", s->message_id);
    if (s->monotonic_time) {
        sl_buf_puts(b, ",\"monotonic_time\":");
        sl_buf_puts(b, s->monotonic_time);
    }
    sl_buf_puts(b, "}");
    return 0;
}

/* ---- sample ids ---------------------------------------------------------
 * The only mutable global state in common/: a per-thread PRNG, and a
 * process-wide fork generation that a pthread_atfork child handler bumps so
 * that a forked worker reseeds instead of repeating its parent's ids. */

static pthread_once_t s_atfork_once = PTHREAD_ONCE_INIT;
static atomic_uint s_fork_gen;
static __thread uint64_t s_rng[4];
static __thread unsigned s_rng_gen;
static __thread int s_rng_seeded;

static void
s_after_fork_child(void)
{
    atomic_fetch_add_explicit(&s_fork_gen, 1, memory_order_relaxed);
}

static void
s_register_atfork(void)
{
    pthread_atfork(NULL, NULL, s_after_fork_child);
}

static uint64_t
s_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void
s_seed(void)
{
    pthread_once(&s_atfork_once, s_register_atfork);
    uint64_t seed[4] = { 0, 0, 0, 0 };
    size_t got = 0;
    while (got < sizeof seed) {
        ssize_t n = getrandom((char *) seed + got, sizeof seed - got, 0);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    /* Without getrandom (never on Linux >= 3.17) fall back to clocks and
     * ids, run through splitmix: unique enough for sample ids. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = seed[0] ^ ((uint64_t) ts.tv_nsec << 32) ^ (uint64_t) ts.tv_sec ^
                 ((uint64_t) getpid() << 16) ^ (uint64_t) (uintptr_t) &ts;
    for (int i = 0; i < 4; i++)
        s_rng[i] = seed[i] ^ s_splitmix(&x);
    s_rng_gen = atomic_load_explicit(&s_fork_gen, memory_order_relaxed);
    s_rng_seeded = 1;
}

static inline uint64_t
s_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman & Vigna). */
static uint64_t
s_next(void)
{
    if (!s_rng_seeded || s_rng_gen != atomic_load_explicit(&s_fork_gen, memory_order_relaxed))
        s_seed();
    uint64_t *s = s_rng;
    uint64_t result = s_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s_rotl(s[3], 45);
    return result;
}

void
sl_sample_uuid4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uint64_t hi = s_next(), lo = s_next();
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char) (hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char) (lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);     /* version 4 */
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);     /* RFC 4122 variant */
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}
