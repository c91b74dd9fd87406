#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"

void
sl_buf_reserve(sl_buf_t *b, size_t n)
{
    if (b->n + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->n + n + 1)
        cap *= 2;
    b->p = sl_xrealloc(b->p, cap);
    b->cap = cap;
}

void
sl_buf_printf(sl_buf_t *b, const char *fmt, ...)
{
    /* Formatted straight into the room there is, and again after growing
     * when it did not fit. (A first vsnprintf(NULL, 0, ...) pass was
     * flagged by gcc 12's -Wformat-truncation in the sanitizer build as a
     * "null format string" once the appends became inline in buf.h.) */
    sl_buf_reserve(b, 0);
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    size_t room = b->cap - b->n;
    int n = vsnprintf(b->p + b->n, room, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t) n >= room) {
        sl_buf_reserve(b, (size_t) n);
        vsnprintf(b->p + b->n, (size_t) n + 1, fmt, again);
    }
    va_end(again);
    if (n > 0)
        b->n += (size_t) n;
    b->p[b->n] = '\0';
}

void
sl_buf_json_str(sl_buf_t *b, const char *s)
{
    if (!s) {
        sl_buf_puts(b, "null");
        return;
    }
    sl_buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *) s, *run = p;
    for (; *p; p++) {
        const char *esc = NULL;
        char hex[8];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (*p < 0x20) {
                snprintf(hex, sizeof hex, "\\u%04x", *p);
                esc = hex;
            }
        }
        if (!esc)
            continue;
        sl_buf_put(b, run, (size_t) (p - run));
        sl_buf_puts(b, esc);
        run = p + 1;
    }
    sl_buf_put(b, run, (size_t) (p - run));
    sl_buf_putc(b, '"');
}

void
sl_buf_reset(sl_buf_t *b)
{
    b->n = 0;
    if (b->p)
        b->p[0] = '\0';
}

void
sl_buf_free(sl_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
