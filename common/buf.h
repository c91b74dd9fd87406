/* buf — a growable byte buffer, and JSON string escaping into it.
 *
 * The one copy of "append bytes, grow by doubling, keep a NUL after the
 * end" that the file publisher, Python's repr() (common/pycompat.c), the
 * scenario tool and the output layer's dead-letter records share. A buffer
 * starts zeroed (`sl_buf_t b = { 0 };`); b.p is NULL until the first append,
 * then always NUL-terminated (b.p[b.n] == '\0'). The caller owns b.p
 * (sl_buf_free). Allocation failure aborts, as everywhere in sluice. Any
 * process, any thread (a buffer is not shared). */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
    char  *p;
    size_t n, cap;
} sl_buf_t;

/* Room for n more bytes and the NUL (the rare case, out of line). */
void sl_buf_reserve(sl_buf_t *b, size_t n);

/* Appending is inline: a buffer reused from record to record nearly always
 * has room, and the JSON writers (common/json.h sl_json_put_*) append a
 * few bytes at a time on the publishers' hot path. */
static inline void
sl_buf_put(sl_buf_t *b, const void *s, size_t n)
{
    if (b->n + n + 1 > b->cap)
        sl_buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* (a literal's strlen is folded at compile time) */
static inline void
sl_buf_puts(sl_buf_t *b, const char *s)
{
    sl_buf_put(b, s, strlen(s));
}

static inline void
sl_buf_putc(sl_buf_t *b, char c)
{
    sl_buf_put(b, &c, 1);
}
void sl_buf_printf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s (UTF-8, NUL-terminated; NULL = JSON null) as a JSON string with its
 * quotes: '"', '\\' and control characters escaped (\n, \r, \t, \b, \f,
 * else \u00XX); other bytes are copied as they are. */
void sl_buf_json_str(sl_buf_t *b, const char *s);
/* Empties the buffer, keeping its memory. */
void sl_buf_reset(sl_buf_t *b);
void sl_buf_free(sl_buf_t *b);

#endif
