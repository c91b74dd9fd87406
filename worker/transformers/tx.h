/* tx — what the transformer plugins share with the chain (worker/transform.c).
 * Internal to worker/transform.c and the files of worker/transformers/; pipeline workers only.
 *
 * A plugin is one struct: name, whether it is stateful and its grouping
 * keys, option table (every parameter Ceilometer's transformer reads, with the YAML types it works with, and those it
 * ignores: the chain checks parameters against it before init; a key
 * Ceilometer never reads is a file:line warning, a type it cannot work with
 * a file:line error), init(conf) -> ctx, process(sample) -> 0 or 1 sample,
 * flush -> samples, destroy(&ctx). What Ceilometer ignores or swallows,
 * init reports with sl_tx_warn() and then behaves as Ceilometer did.
 *
 * Memory contract. A sample handed to process() (and its strings) is only
 * valid during the call. A plugin that keeps anything across calls copies
 * it into memory it owns. Every sample a plugin emits (process result or
 * flush output) must stay valid until the chain recycles env->out: a new
 * sample is built in env->out; a sample the plugin stored is copied there
 * before its own copy is released; process() may also return its input
 * (the same sample passed on), which lives as long as the caller's input. */
#ifndef SL_TX_H
#define SL_TX_H

#include <stddef.h>
#include <stdint.h>
#include "common/arena.h"
#include "common/log.h"
#include "common/opt.h"
#include "common/sample.h"
#include "common/yconf.h"
#include "worker/transform.h"

typedef struct {
    sl_arena_t     *out;        /* emitted samples' memory */
    sl_arena_t     *scratch;    /* expression scratch; reset by the chain after each sample */
    const char     *source;     /* `source` of new samples ([DEFAULT] sample_source) */
    const char     *sink;       /* for messages */
    int64_t         now_us;     /* flush: wall clock, microseconds since the epoch (UTC) */
    int             force;      /* flush: emit whatever is held (drain) */
    sl_ratelimit_t *rl_warn;
    sl_chain_stats_t *stats;
    char           *err;        /* a callback returning -1 writes its reason here */
    size_t          errlen;
} sl_tx_env_t;

/* YAML value kinds a parameter accepts (bit mask). */
enum {
    SL_TXT_NULL = 1, SL_TXT_BOOL = 2, SL_TXT_INT = 4, SL_TXT_FLOAT = 8, SL_TXT_STR = 16,
    SL_TXT_MAP = 32, SL_TXT_SEQ = 64,
    SL_TXT_NUM = SL_TXT_INT | SL_TXT_FLOAT,
    SL_TXT_ANY = 127,
    /* Flags. FALSY: a falsy value of another kind (0, "", false, []) is
     * what Ceilometer's `x or {}` / `if x` makes of it: absent, with a
     * warning. IGNORED: Ceilometer never reads it: a warning whose reason
     * is `help`, and the value is not checked. */
    SL_TXT_FALSY = 128, SL_TXT_IGNORED = 256,
};

/* A parameter in a plugin's option table (common/opt.h): the plugin reads
 * the YAML node itself (SL_OPT_ANY, no offset); `kinds` holds the SL_TXT_*
 * kinds and flags above; the default is as the documentation shows it;
 * for IGNORED, help says why (in the warning). */
#define SL_TX_OPT(path, kinds_, dflt, help_)                                                     \
    { .name = (path), .type = SL_OPT_ANY, .offset = SL_OPT_NO_OFFSET, .def = (dflt),             \
      .help = (help_), .kinds = (kinds_) }

/* The grouping keys of every built-in transformer (TRANSFORMERS.md 10). */
extern const char *const sl_tx_resource_keys[];

/* What init gets: the parameters (NULL if none) and where they come from. */
typedef struct {
    const sl_ynode_t *params;
    const char       *sink;
    const char       *transformer;
    const char       *file;
    int               line;     /* the transformer's line */
    int               quiet;    /* in a worker: the check already warned */
    sl_ywarn_t       *warn;     /* tolerated problems (sl_tx_warn); may be NULL */
} sl_tx_conf_t;

/* State blobs: little-endian integers, doubles as their IEEE-754 bit
 * pattern, strings as u32 (length + 1, 0 = NULL) then the bytes without
 * the NUL. The reader never reads past its end: a short or malformed read
 * sets `bad` (sticky) and returns zeros/NULL; check it once at the end. */
typedef struct {
    char  *p;
    size_t n, cap;
} sl_tx_wbuf_t;

typedef struct {
    const unsigned char *p;
    size_t n, off;
    int    bad;
} sl_tx_rbuf_t;

void sl_tx_w_u8(sl_tx_wbuf_t *w, unsigned v);
void sl_tx_w_u32(sl_tx_wbuf_t *w, uint32_t v);
void sl_tx_w_u64(sl_tx_wbuf_t *w, uint64_t v);
void sl_tx_w_f64(sl_tx_wbuf_t *w, double v);
void sl_tx_w_bytes(sl_tx_wbuf_t *w, const void *p, size_t n);
void sl_tx_w_str(sl_tx_wbuf_t *w, const char *s);
/* Every field of s, in sl_sample_t order. */
void sl_tx_w_sample(sl_tx_wbuf_t *w, const sl_sample_t *s);

unsigned sl_tx_r_u8(sl_tx_rbuf_t *r);
uint32_t sl_tx_r_u32(sl_tx_rbuf_t *r);
uint64_t sl_tx_r_u64(sl_tx_rbuf_t *r);
double   sl_tx_r_f64(sl_tx_rbuf_t *r);
/* A count of items of at least min_item bytes each: bad if the rest of
 * the blob cannot hold them (so a corrupt count never drives a huge
 * allocation). */
size_t   sl_tx_r_count(sl_tx_rbuf_t *r, size_t min_item);
/* A string copied into a (NUL-terminated); NULL for NULL or when bad (an
 * embedded NUL is bad). *is_null tells the two apart (may be NULL). */
char    *sl_tx_r_str(sl_tx_rbuf_t *r, sl_arena_t *a, int *is_null);
/* A sample whose strings are copied into a; resource_metadata must not be
 * NULL. */
void     sl_tx_r_sample(sl_tx_rbuf_t *r, sl_arena_t *a, sl_sample_t *s);

typedef struct sl_tx_plugin {
    const char        *name;
    const char        *summary;
    const sl_opt_t    *options; /* SL_TX_OPT entries, ended by { .name = NULL } */
    /* Keeps state across samples (a sink with one is partitioned by the
     * grouping keys, so a group always meets the same state), and the
     * sample fields that make a group (NULL-terminated). */
    int                stateful;
    const char *const *keys;
    void *(*init)(const sl_tx_conf_t *conf, char *err, size_t errlen);
    /* 1: *out holds the sample to pass on; 0: nothing passes; -1: error
     * (env->err), the sample is dropped, state changed so far is kept. */
    int   (*process)(void *ctx, sl_tx_env_t *env, const sl_sample_t *in, sl_sample_t *out);
    /* Optional, first transformer of a chain only: starts loading (a CPU
     * prefetch, nothing else) the state process() will read for in, so that
     * the cache misses of a frame's samples overlap (sl_chain_prefetch). */
    void  (*prefetch)(const void *ctx, const sl_sample_t *in);
    /* Appends the released samples to out; -1 = error (env->err), the
     * chain drops what was appended. NULL = never emits. */
    int   (*flush)(void *ctx, sl_tx_env_t *env, sl_sample_vec_t *out);
    /* Epoch microseconds after which a flush would emit without new input
     * (aggregator retention), INT64_MAX if none. NULL = never. */
    int64_t (*deadline)(const void *ctx);
    void  (*destroy)(void **ctx_p);
    /* State handoff (sl_chain_save/sl_chain_load). save appends everything
     * that can influence later output to w (doubles bit-exact, insertion
     * orders kept); -1 if it cannot. load reads that blob into a ctx fresh
     * from init with the same parameters: it must consume all of r (the
     * chain checks that), reject anything inconsistent with -1 and a reason
     * in err, and never crash on any input; the chain destroys a ctx whose
     * load failed. Both NULL = stateless (the blob is empty). */
    int   (*save)(const void *ctx, sl_tx_wbuf_t *w);
    int   (*load)(void *ctx, sl_tx_rbuf_t *r, char *err, size_t errlen);
} sl_tx_plugin_t;

extern const sl_tx_plugin_t sl_tx_unit_conversion;
extern const sl_tx_plugin_t sl_tx_rate_of_change;
extern const sl_tx_plugin_t sl_tx_delta;
extern const sl_tx_plugin_t sl_tx_aggregator;
extern const sl_tx_plugin_t sl_tx_accumulator;
extern const sl_tx_plugin_t sl_tx_arithmetic;

/* --- helpers (transformers/common.c) ------------------------------------------------ */

/* A YAML scalar resolved the way PyYAML's safe_load resolves it (YAML 1.1:
 * `yes` is true, `1e9` is a string, `1.0e+9` a float, `0x10` an int). */
typedef struct {
    unsigned    type;           /* one SL_TXT_* bit */
    int64_t     i;              /* INT, BOOL */
    double      f;              /* FLOAT (and INT as a double) */
    const char *s;              /* STR; the scalar text for every scalar */
} sl_tx_val_t;

void sl_tx_value(const sl_ynode_t *node, sl_tx_val_t *v);
/* Python truthiness of the parameter (NULL node = absent = false). */
int sl_tx_truthy(const sl_ynode_t *node);
/* Python's float(str) and int(str) (base 10) on p[0..n): surrounding
 * whitespace, a sign, single underscores between digits; float also takes
 * a fraction, an exponent, inf, infinity and nan in any case. 1 if Python
 * accepts the text (the value in *out when out is not NULL), else 0. An
 * int beyond 64 bits gives 1 and *out saturated at INT64_MIN/MAX. */
int sl_tx_py_float(const char *p, size_t n, double *out);
int sl_tx_py_int(const char *p, size_t n, int64_t *out);
/* The node at a dotted path under params, or NULL. */
const sl_ynode_t *sl_tx_param(const sl_ynode_t *params, const char *path);
/* Checks params against the option table: keys Ceilometer does not read
 * and falsy values of another type are warnings (sl_tx_warn), a type
 * Ceilometer cannot work with is an error. 0, or -1 with file:line. */
int sl_tx_check_params(const sl_tx_conf_t *conf, const sl_opt_t *opts, char *err, size_t errlen);
/* What Ceilometer ignores or swallows in a transformer's parameters: a
 * warning "file:line: sink 's': transformer 't': message" at node (or the
 * transformer's line if node is NULL) and 0 (nothing when quiet), or in
 * strict mode that text in err and -1 (yconf.h). Callers go on as
 * Ceilometer did when it returns 0, and fail when it returns -1. */
int sl_tx_warn(const sl_tx_conf_t *conf, const sl_ynode_t *node, char *err, size_t errlen,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* What Ceilometer refuses at start-up: "file:line: sink 'x': transformer
 * 'y': <message>" in err; returns -1. */
int sl_tx_err(const sl_tx_conf_t *conf, const sl_ynode_t *node, char *err, size_t errlen,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int sl_tx_fail(sl_tx_env_t *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An expression sl_expr_compile() refused with msg: 1 if Python cannot
 * evaluate it either (a syntax error, a call, a constant part that always
 * fails), so Ceilometer failed each evaluation (TRANSFORMERS.md 3.3: not
 * checked at setup) and sluice does the same after a warning; 0 if Python
 * runs it and sluice cannot (a limit of common/expr.c, a construct it
 * leaves out), which stays a configuration error. Reads expr.c's texts. */
int sl_tx_expr_fails_in_python(const char *msg);

/* A deep copy of s with every string in a (resource_metadata NULL -> "{}"). */
void sl_tx_sample_copy(sl_arena_t *a, const sl_sample_t *s, sl_sample_t *out);
/* A new sample's fixed parts: a fresh id in env->out, env->source, no
 * monotonic_time, volume_json NULL. */
void sl_tx_sample_new(sl_tx_env_t *env, sl_sample_t *out);
/* "name for resource_id @ timestamp" for log lines (static buffer). */
const char *sl_tx_describe(const sl_sample_t *s);
/* NULL-aware string equality. */
int sl_tx_streq(const char *a, const char *b);

/* Open-addressing hash table (linear probing, backward-shift deletion) of
 * caller-owned entries. The caller hashes and compares. */
typedef struct {
    uint64_t h;
    void    *v;                 /* NULL = free slot */
} sl_tx_slot_t;

typedef struct {
    sl_tx_slot_t *slots;
    size_t        cap, n;       /* cap is a power of two */
} sl_tx_map_t;

typedef int (*sl_tx_eq_fn)(const void *entry, const void *key);
/* A fast in-memory hash (8 bytes per step; not stable across versions:
 * never for partitioning). Chain h through several calls; start with 0. */
uint64_t sl_tx_hash(uint64_t h, const void *data, size_t len);
void *sl_tx_map_get(const sl_tx_map_t *m, uint64_t h, sl_tx_eq_fn eq, const void *key);
/* Prefetches the slot sl_tx_map_get(m, h, ...) looks at first. */
static inline void
sl_tx_map_prefetch(const sl_tx_map_t *m, uint64_t h)
{
    if (m->cap)
        __builtin_prefetch(&m->slots[h & (m->cap - 1)]);
}
void  sl_tx_map_put(sl_tx_map_t *m, uint64_t h, void *entry);     /* key must be absent */
void *sl_tx_map_del(sl_tx_map_t *m, uint64_t h, sl_tx_eq_fn eq, const void *key);
void  sl_tx_map_clear(sl_tx_map_t *m, void (*free_fn)(void *));   /* keeps capacity */
void  sl_tx_map_free(sl_tx_map_t *m, void (*free_fn)(void *));

#endif
