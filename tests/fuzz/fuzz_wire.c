/* fuzz_wire — sl_wire_reader_open/next on any frame. Input: one flags
 * byte, then the frame. Flag bit 0 writes the right body length and
 * checksum into the header first, so mutations reach the record parser
 * instead of stopping at the checksum. Checks the header's contract: a
 * frame that opens yields exactly `count` records, none corrupt, and the
 * samples it yields, written again with sl_wire_writer, make a frame that
 * opens with the same count. The same bytes also go to the confirmation
 * decoder: an ack that decodes encodes back to the same bytes. */
#include "tests/fuzz/fuzz.h"

#include <yajl/yajl_gen.h>

#include "common/hash.h"
#include "common/wire.h"

static void
s_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v, p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16), p[3] = (unsigned char) (v >> 24);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    unsigned char *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    if ((data[0] & 1) && len >= SL_WIRE_HEADER_SIZE) {
        s_put_u32(buf + 28, (uint32_t) (len - SL_WIRE_HEADER_SIZE));
        s_put_u32(buf + 32, sl_checksum32(buf + SL_WIRE_HEADER_SIZE, len - SL_WIRE_HEADER_SIZE));
    }
    sl_wire_reader_t r;
    char err[256];
    if (sl_wire_reader_open(&r, buf, len, err, sizeof err) == 0) {
        sl_wire_writer_t w;
        sl_wire_writer_init(&w);
        sl_wire_writer_begin(&w, &r.hdr);
        yajl_gen g = yajl_gen_alloc(NULL);
        sl_sample_t s;
        unsigned flags;
        int rc;
        uint32_t got = 0;
        while ((rc = sl_wire_reader_next(&r, &s, &flags)) == 1) {
            got++;
            SL_FUZZ_CHECK(sl_sample_gen(g, &s) == 0);
            yajl_gen_clear(g);
            yajl_gen_reset(g, NULL);
            sl_wire_writer_add(&w, &s, flags);
        }
        SL_FUZZ_CHECK(rc == 0 && got == r.hdr.count);
        size_t out_len;
        const void *out = sl_wire_writer_finish(&w, &out_len);
        void *copy = malloc(out_len);
        memcpy(copy, out, out_len);
        sl_wire_reader_t r2;
        SL_FUZZ_CHECK(sl_wire_reader_open(&r2, copy, out_len, err, sizeof err) == 0);
        SL_FUZZ_CHECK(r2.hdr.count == got);
        free(copy);
        yajl_gen_free(g);
        sl_wire_writer_free(&w);
    } else {
        SL_FUZZ_CHECK(err[0] != '\0');
    }
    uint16_t sink;
    uint32_t part;
    size_t n;
    if (sl_wire_ack_decode(buf, len, &sink, &part, &n) == 0) {
        uint32_t *seqs = malloc(n * sizeof *seqs);
        for (size_t i = 0; i < n; i++)
            seqs[i] = sl_wire_ack_seq(buf, i);
        unsigned char *again = malloc(SL_WIRE_ACK_SIZE(n));
        SL_FUZZ_CHECK(sl_wire_ack_encode(again, sink, part, seqs, n) == len);
        SL_FUZZ_CHECK(memcmp(again, buf, len) == 0);
        free(again);
        free(seqs);
    }
    free(buf);
    return 0;
}
