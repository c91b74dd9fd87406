/* wire — batch frames between ingest and pipeline workers (layout in wire.h).
 *
 * Integers are written byte by byte, little-endian, so frames are the same
 * on any host; nothing in a frame is aligned, so the reader assembles values
 * from bytes too. */
#include "common/wire.h"

#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/hash.h"

#define SL_WIRE_KIND_SAMPLES 1
#define SL_WIRE_NULL_STRING 0xFFFFFFFFu
#define SL_WIRE_N_STRINGS 13
#define SL_WIRE_RECORD_FIXED (1 + 8)      /* flags, volume */
static const unsigned char s_magic[4] = { 'S', 'L', 'W', '1' };

/* --- writer -------------------------------------------------------------- */

static void
s_reserve(sl_wire_writer_t *w, size_t more)
{
    if (w->cap - w->len >= more)
        return;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap - w->len < more)
        cap *= 2;
    w->buf = sl_xrealloc(w->buf, cap);
    w->cap = cap;
}

static void
s_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
}

static void
s_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static void
s_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static void
s_put_string(sl_wire_writer_t *w, const char *s)
{
    if (!s) {
        s_reserve(w, 4);
        s_put_u32(w->buf + w->len, SL_WIRE_NULL_STRING);
        w->len += 4;
        return;
    }
    size_t n = strlen(s);
    /* 0xFFFFFFFF marks null; a longer string cannot come out of the
     * decoder (messages are far smaller), so clipping is only a guard. */
    if (n >= SL_WIRE_NULL_STRING)
        n = SL_WIRE_NULL_STRING - 1;
    s_reserve(w, 4 + n + 1);
    s_put_u32(w->buf + w->len, (uint32_t) n);
    memcpy(w->buf + w->len + 4, s, n);
    w->buf[w->len + 4 + n] = '\0';
    w->len += 4 + n + 1;
}

void
sl_wire_writer_init(sl_wire_writer_t *w)
{
    memset(w, 0, sizeof *w);
}

void
sl_wire_writer_begin(sl_wire_writer_t *w, const sl_wire_header_t *hdr)
{
    if (hdr)
        w->hdr = *hdr;
    else
        memset(&w->hdr, 0, sizeof w->hdr);
    w->hdr.count = 0;
    w->len = 0;
    w->last = 0;
    s_reserve(w, SL_WIRE_HEADER_SIZE);
    memset(w->buf, 0, SL_WIRE_HEADER_SIZE);     /* filled in by finish */
    w->len = SL_WIRE_HEADER_SIZE;
}

void
sl_wire_writer_add(sl_wire_writer_t *w, const sl_sample_t *s, unsigned flags)
{
    if (w->len < SL_WIRE_HEADER_SIZE)           /* add without begin */
        sl_wire_writer_begin(w, NULL);
    s_reserve(w, SL_WIRE_RECORD_FIXED);
    w->last = w->len;
    w->buf[w->len] = (unsigned char) flags;
    uint64_t bits;
    memcpy(&bits, &s->volume, sizeof bits);
    s_put_u64(w->buf + w->len + 1, bits);
    w->len += SL_WIRE_RECORD_FIXED;
    const char *fields[SL_WIRE_N_STRINGS] = {
        s->id, s->name, s->type, s->unit, s->volume_json, s->user_id,
        s->project_id, s->resource_id, s->timestamp, s->resource_metadata,
        s->source, s->message_id, s->monotonic_time,
    };
    for (int i = 0; i < SL_WIRE_N_STRINGS; i++)
        s_put_string(w, fields[i]);
    w->hdr.count++;
}

void
sl_wire_writer_mark_end(sl_wire_writer_t *w)
{
    if (w->hdr.count && w->last >= SL_WIRE_HEADER_SIZE)
        w->buf[w->last] |= SL_WIRE_FLAG_END_OF_NOTIFICATION;
}

const void *
sl_wire_writer_finish(sl_wire_writer_t *w, size_t *len)
{
    if (w->len < SL_WIRE_HEADER_SIZE)
        sl_wire_writer_begin(w, NULL);
    unsigned char *h = w->buf;
    size_t body = w->len - SL_WIRE_HEADER_SIZE;
    memcpy(h, s_magic, 4);
    h[4] = SL_WIRE_VERSION;
    h[5] = SL_WIRE_KIND_SAMPLES;
    s_put_u16(h + 6, w->hdr.sink);
    s_put_u32(h + 8, w->hdr.partition);
    s_put_u32(h + 12, w->hdr.generation);
    s_put_u32(h + 16, w->hdr.origin);
    s_put_u32(h + 20, w->hdr.seq);
    s_put_u32(h + 24, w->hdr.count);
    s_put_u32(h + 28, (uint32_t) body);
    s_put_u32(h + 32, sl_checksum32(h + SL_WIRE_HEADER_SIZE, body));
    s_put_u64(h + 36, w->hdr.read_us);
    if (len)
        *len = w->len;
    return w->buf;
}

size_t
sl_wire_writer_bytes(const sl_wire_writer_t *w)
{
    return w->len;
}

void
sl_wire_writer_free(sl_wire_writer_t *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

/* --- reader -------------------------------------------------------------- */

static uint16_t
s_get_u16(const unsigned char *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t
s_get_u32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16
           | (uint32_t) p[3] << 24;
}

static uint64_t
s_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Reads one string at *pp (bounds: end); NULL for a null string. Sets *bad
 * if it runs past end or lacks its NUL. */
static const char *
s_get_string(unsigned char **pp, const unsigned char *end, int *bad)
{
    unsigned char *p = *pp;
    if (end - p < 4) {
        *bad = 1;
        return NULL;
    }
    uint32_t n = s_get_u32(p);
    p += 4;
    if (n == SL_WIRE_NULL_STRING) {
        *pp = p;
        return NULL;
    }
    if ((size_t) (end - p) < (size_t) n + 1 || p[n] != '\0') {
        *bad = 1;
        return NULL;
    }
    *pp = p + n + 1;
    return (const char *) p;
}

/* Decodes the record at *pp into s (may be NULL to only check bounds).
 * 0, or -1 if it does not fit before end. */
static int
s_record(unsigned char **pp, const unsigned char *end, sl_sample_t *s, unsigned *flags)
{
    unsigned char *p = *pp;
    if (end - p < SL_WIRE_RECORD_FIXED)
        return -1;
    unsigned fl = p[0];
    uint64_t bits = s_get_u64(p + 1);
    p += SL_WIRE_RECORD_FIXED;
    const char *str[SL_WIRE_N_STRINGS];
    int bad = 0;
    for (int i = 0; i < SL_WIRE_N_STRINGS && !bad; i++)
        str[i] = s_get_string(&p, end, &bad);
    if (bad)
        return -1;
    if (s) {
        memset(s, 0, sizeof *s);
        memcpy(&s->volume, &bits, sizeof s->volume);
        s->id = str[0];
        s->name = str[1];
        s->type = str[2];
        s->unit = str[3];
        s->volume_json = str[4];
        s->user_id = str[5];
        s->project_id = str[6];
        s->resource_id = str[7];
        s->timestamp = str[8];
        s->resource_metadata = str[9];
        s->source = str[10];
        s->message_id = str[11];
        s->monotonic_time = str[12];
    }
    if (flags)
        *flags = fl;
    *pp = p;
    return 0;
}

int
sl_wire_reader_open(sl_wire_reader_t *r, void *buf, size_t len, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (err && errlen)
        err[0] = '\0';
    unsigned char *b = buf;
    if (!b || len < SL_WIRE_HEADER_SIZE)
        return sl_errf(err, errlen, "frame of %zu bytes is shorter than its %d-byte header",
                      len, SL_WIRE_HEADER_SIZE);
    if (memcmp(b, s_magic, 4) != 0)
        return sl_errf(err, errlen, "bad magic (not a sluice frame)");
    if (b[4] != SL_WIRE_VERSION)
        return sl_errf(err, errlen, "unsupported frame version %u (expected %u)",
                      b[4], SL_WIRE_VERSION);
    if (b[5] != SL_WIRE_KIND_SAMPLES)
        return sl_errf(err, errlen, "unknown frame kind %u", b[5]);
    uint32_t count = s_get_u32(b + 24), body = s_get_u32(b + 28);
    if ((size_t) body != len - SL_WIRE_HEADER_SIZE)
        return sl_errf(err, errlen, "body length %u does not match the %zu bytes received",
                      body, len - SL_WIRE_HEADER_SIZE);
    uint32_t sum = sl_checksum32(b + SL_WIRE_HEADER_SIZE, body);
    if (sum != s_get_u32(b + 32))
        return sl_errf(err, errlen, "checksum mismatch (0x%08x, header says 0x%08x)",
                      sum, s_get_u32(b + 32));
    /* Walk every record once so a bad one rejects the frame before the
     * caller consumes any sample. */
    unsigned char *p = b + SL_WIRE_HEADER_SIZE, *end = b + len;
    for (uint32_t i = 0; i < count; i++)
        if (s_record(&p, end, NULL, NULL) < 0)
            return sl_errf(err, errlen, "record %u of %u runs past the end of the frame",
                          i, count);
    if (p != end)
        return sl_errf(err, errlen, "%zu bytes left over after %u records",
                      (size_t) (end - p), count);
    r->hdr.sink = s_get_u16(b + 6);
    r->hdr.partition = s_get_u32(b + 8);
    r->hdr.generation = s_get_u32(b + 12);
    r->hdr.origin = s_get_u32(b + 16);
    r->hdr.seq = s_get_u32(b + 20);
    r->hdr.count = count;
    r->hdr.read_us = s_get_u64(b + 36);
    r->p = b + SL_WIRE_HEADER_SIZE;
    r->end = end;
    r->left = count;
    return 0;
}

int
sl_wire_reader_next(sl_wire_reader_t *r, sl_sample_t *s, unsigned *flags)
{
    if (!r->left)
        return 0;
    /* Open already checked the records; this guards a buffer changed since. */
    if (!r->p || s_record(&r->p, r->end, s, flags) < 0) {
        r->left = 0;
        return -1;
    }
    r->left--;
    return 1;
}

static const unsigned char s_ack_magic[4] = { 'S', 'L', 'A', 'K' };

size_t
sl_wire_ack_encode(void *buf, uint16_t sink, uint32_t partition, const uint32_t *seqs, size_t n)
{
    unsigned char *p = buf;
    if (n == 0 || n > SL_WIRE_ACK_MAX)
        return 0;
    memcpy(p, s_ack_magic, 4);
    s_put_u16(p + 4, sink);
    s_put_u32(p + 6, partition);
    s_put_u32(p + 10, (uint32_t) n);
    for (size_t i = 0; i < n; i++)
        s_put_u32(p + 14 + 4 * i, seqs[i]);
    return SL_WIRE_ACK_SIZE(n);
}

int
sl_wire_ack_decode(const void *buf, size_t len, uint16_t *sink, uint32_t *partition, size_t *n)
{
    const unsigned char *p = buf;
    if (len < SL_WIRE_ACK_SIZE(1) || memcmp(p, s_ack_magic, 4) != 0)
        return -1;
    uint32_t count = s_get_u32(p + 10);
    if (count == 0 || count > SL_WIRE_ACK_MAX || len != SL_WIRE_ACK_SIZE(count))
        return -1;
    *sink = s_get_u16(p + 4);
    *partition = s_get_u32(p + 6);
    *n = count;
    return 0;
}

uint32_t
sl_wire_ack_seq(const void *buf, size_t i)
{
    return s_get_u32((const unsigned char *) buf + 14 + 4 * i);
}
