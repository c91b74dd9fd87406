/* arena — bump allocator for per-notification and per-batch scratch data.
 *
 * Everything allocated from an arena lives until sl_arena_reset() or
 * sl_arena_destroy(); nothing is freed one by one. Allocation failure aborts
 * the process (like the rest of sluice, we do not run on without memory; the
 * supervisor respawns the worker). Any process. */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>

typedef struct sl_arena_chunk sl_arena_chunk_t;

/* Visible only for sl_arena_alloc's inline fast path. */
struct sl_arena_chunk {
    sl_arena_chunk_t *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

typedef struct {
    sl_arena_chunk_t *head;
    size_t chunk_size;
} sl_arena_t;

void  sl_arena_init(sl_arena_t *a, size_t chunk_size);   /* 0 = 64 KiB */
void *sl_arena_alloc_chunk(sl_arena_t *a, size_t n);     /* the slow path: a new chunk */

/* 8-byte aligned. Inline: a parsed notification makes hundreds of these. */
static inline void *
sl_arena_alloc(sl_arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t) 7;
    sl_arena_chunk_t *c = a->head;
    if (c && c->cap - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    return sl_arena_alloc_chunk(a, n);
}
char *sl_arena_strdup(sl_arena_t *a, const char *s);     /* NULL stays NULL */
char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n);
char *sl_arena_printf(sl_arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void  sl_arena_reset(sl_arena_t *a);    /* keeps the first chunk */
size_t sl_arena_bytes(const sl_arena_t *a); /* what its chunks hold, used or not */
void  sl_arena_destroy(sl_arena_t *a);

/* malloc/calloc/realloc/strdup that abort with a message on failure. */
void *sl_xmalloc(size_t n);
void *sl_xcalloc(size_t n, size_t size);
void *sl_xrealloc(void *p, size_t n);
char *sl_xstrdup(const char *s);
char *sl_xstrndup(const char *s, size_t n);   /* the first n bytes, NUL-terminated */
/* Grows a FIFO ring of *cap items of size bytes each (v[(*head + i) %
 * *cap] for i < len, items moved bytewise) to twice its capacity (first:
 * first_cap), in order from index 0: returns the new array (v is freed),
 * *head becomes 0. */
void *sl_xring_grow(void *v, size_t size, size_t *head, size_t len, size_t *cap,
                    size_t first_cap);

#endif
