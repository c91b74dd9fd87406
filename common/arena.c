#include "common/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_oom(size_t n)
{
    fprintf(stderr, "sluice: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
sl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        s_oom(n);
    return p;
}

void *
sl_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        s_oom(n * size);
    return p;
}

void *
sl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        s_oom(n);
    return q;
}

char *
sl_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = sl_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

char *
sl_xstrndup(const char *s, size_t n)
{
    char *d = sl_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void *
sl_xring_grow(void *v, size_t size, size_t *head, size_t len, size_t *cap, size_t first_cap)
{
    size_t ncap = *cap ? *cap * 2 : first_cap;
    char *nv = sl_xcalloc(ncap, size);
    const char *old = v;
    for (size_t i = 0; i < len; i++)
        memcpy(nv + i * size, old + ((*head + i) % *cap) * size, size);
    free(v);
    *cap = ncap;
    *head = 0;
    return nv;
}

void
sl_arena_init(sl_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
}

void *
sl_arena_alloc_chunk(sl_arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t) 7;
    size_t cap = n > a->chunk_size ? n : a->chunk_size;
    sl_arena_chunk_t *c = sl_xmalloc(sizeof *c + cap);
    c->used = n;
    c->cap = cap;
    c->next = a->head;
    a->head = c;
    return c->data;
}

char *
sl_arena_strndup(sl_arena_t *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = sl_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *
sl_arena_strdup(sl_arena_t *a, const char *s)
{
    return s ? sl_arena_strndup(a, s, strlen(s)) : NULL;
}

char *
sl_arena_printf(sl_arena_t *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    char probe[256];
    int n = vsnprintf(probe, sizeof probe, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return sl_arena_strdup(a, "");
    }
    char *d = sl_arena_alloc(a, (size_t) n + 1);
    if ((size_t) n < sizeof probe)
        memcpy(d, probe, (size_t) n + 1);
    else
        vsnprintf(d, (size_t) n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}

void
sl_arena_reset(sl_arena_t *a)
{
    if (!a->head)
        return;
    /* Keep the oldest chunk (the tail) only if it is a standard-size one. */
    sl_arena_chunk_t *c = a->head, *keep = NULL;
    while (c) {
        sl_arena_chunk_t *next = c->next;
        if (!next && c->cap == a->chunk_size)
            keep = c;
        else
            free(c);
        c = next;
    }
    a->head = keep;
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
}

size_t
sl_arena_bytes(const sl_arena_t *a)
{
    size_t n = 0;
    for (const sl_arena_chunk_t *c = a->head; c; c = c->next)
        n += c->cap;
    return n;
}

void
sl_arena_destroy(sl_arena_t *a)
{
    sl_arena_chunk_t *c = a->head;
    while (c) {
        sl_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}
