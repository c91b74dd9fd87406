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
#include <openssl/evp.h>
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

static void
s_uuid_text(char out[37], const unsigned char b[16])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

void
sl_sample_uuid4(char out[37])
{
    unsigned char b[16];
    uint64_t hi = s_next(), lo = s_next();
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char) (hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char) (lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);     /* version 4 */
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);     /* RFC 4122 variant */
    s_uuid_text(out, b);
}

const unsigned char sl_sample_id_namespace[16] = {
    0x1e, 0x3f, 0x88, 0x66, 0x80, 0x1f, 0x55, 0x85,
    0xb4, 0xa1, 0xbe, 0x07, 0xf6, 0x88, 0xec, 0xd8,
};

/* OpenSSL 3's one-shot SHA1() fetches the algorithm and allocates a
 * context on every call: 319 ns a digest of a sample's name here, against
 * 128 ns with a context and algorithm fetched once per thread. */
static __thread EVP_MD_CTX *s_sha1_ctx;
static __thread EVP_MD *s_sha1;

/* uuid5 of ns and the concatenation of the n parts. */
static void
s_uuid5(char out[37], const unsigned char ns[16], const void *const *part, const size_t *len,
        size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!s_sha1_ctx) {
        s_sha1_ctx = EVP_MD_CTX_new();
        s_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    }
    int ok = s_sha1_ctx && s_sha1 && EVP_DigestInit_ex(s_sha1_ctx, s_sha1, NULL) == 1 &&
             EVP_DigestUpdate(s_sha1_ctx, ns, 16) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(s_sha1_ctx, part[i], len[i]) == 1;
    if (!ok || EVP_DigestFinal_ex(s_sha1_ctx, md, &mdlen) != 1 || mdlen < 16) {
        /* a libcrypto without SHA-1: no id can be made as documented */
        fprintf(stderr, "sluice: SHA-1 from libcrypto failed: cannot make a stable sample id\n");
        abort();
    }
    md[6] = (unsigned char) ((md[6] & 0x0f) | 0x50);   /* version 5 */
    md[8] = (unsigned char) ((md[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    s_uuid_text(out, md);
}

void
sl_sample_uuid5(char out[37], const unsigned char ns[16], const void *name, size_t len)
{
    s_uuid5(out, ns, &name, &len, 1);
}

static const char *
s_or_empty(const char *s)
{
    return s ? s : "";
}

size_t
sl_sample_stable_ids(sl_sample_t *s, size_t n, const char *message_id, sl_arena_t *a)
{
    if (!message_id)
        return 0;
    size_t mid_n = strlen(message_id);
    for (size_t i = 0; i < n; i++) {
        const char *nm = s_or_empty(s[i].name), *rid = s_or_empty(s[i].resource_id);
        size_t k = 0;
        for (size_t j = 0; j < i; j++)
            k += strcmp(s_or_empty(s[j].name), nm) == 0 &&
                 strcmp(s_or_empty(s[j].resource_id), rid) == 0;
        char rank[24];
        int rank_n = snprintf(rank, sizeof rank, "%zu", k);
        /* "<message_id>\n<name>\n<resource_id>\n<k>" */
        const void *part[] = { message_id, "\n", nm, "\n", rid, "\n", rank };
        const size_t len[] = { mid_n, 1, strlen(nm), 1, strlen(rid), 1, (size_t) rank_n };
        char *id = sl_arena_alloc(a, 37);
        s_uuid5(id, sl_sample_id_namespace, part, len, sizeof len / sizeof *len);
        s[i].id = id;
    }
    return n;
}
