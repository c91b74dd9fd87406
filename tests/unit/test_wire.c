/* test_wire — frames round-trip every sample field exactly, and a truncated
 * or corrupt frame is rejected whole before any record is read. */
#include <check.h>

#include "tests/sl_check.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/wire.h"

#define N_STRINGS 13

static const char *
s_field(const sl_sample_t *s, int i)
{
    const char *f[N_STRINGS] = {
        s->id, s->name, s->type, s->unit, s->volume_json, s->user_id, s->project_id,
        s->resource_id, s->timestamp, s->resource_metadata, s->source, s->message_id,
        s->monotonic_time,
    };
    return f[i];
}

static const char *const s_field_names[N_STRINGS] = {
    "id", "name", "type", "unit", "volume_json", "user_id", "project_id",
    "resource_id", "timestamp", "resource_metadata", "source", "message_id",
    "monotonic_time",
};

static void
s_expect_sample(const sl_sample_t *want, const sl_sample_t *got, int rec)
{
    ck_assert_msg(memcmp(&want->volume, &got->volume, sizeof want->volume) == 0,
                  "record %d: volume %.17g came back as %.17g", rec, want->volume, got->volume);
    for (int i = 0; i < N_STRINGS; i++) {
        const char *w = s_field(want, i), *g = s_field(got, i);
        if (!w)
            ck_assert_msg(g == NULL, "record %d: %s: expected null, got \"%s\"", rec,
                          s_field_names[i], g);
        else
            ck_assert_msg(g && strcmp(w, g) == 0, "record %d: %s: expected \"%.40s\", got %s%.40s%s",
                          rec, s_field_names[i], w, g ? "\"" : "", g ? g : "null", g ? "\"" : "");
    }
}

static char *s_big_metadata;

static sl_sample_t s_samples[4];
static const unsigned s_flags[4] = { 0, SL_WIRE_FLAG_END_OF_NOTIFICATION, 0, 0 };

static void
s_setup(void)
{
    size_t n = 200000;
    s_big_metadata = malloc(n + 64);
    size_t len = (size_t) sprintf(s_big_metadata, "{\"blob\": \"");
    for (size_t i = 0; i < n; i++)
        s_big_metadata[len++] = (char) ('a' + i % 26);
    strcpy(s_big_metadata + len, "\"}");
    s_samples[0] = (sl_sample_t) {
        .id = "0c1d6d3e-3f7a-4f7e-9a5e-2b9bb0b8d1a1", .name = "cpu", .type = "cumulative",
        .unit = "ns", .volume_json = "1234567890", .volume = 1234567890.0,
        .user_id = "u-1", .project_id = "p-1", .resource_id = "r-1",
        .timestamp = "2023-03-14T09:26:53.589793+00:00",
        .resource_metadata = "{\"host\": \"compute-1\"}", .source = "openstack",
        .message_id = "m-1", .monotonic_time = "5000.25",
    };
    /* nulls where JSON may carry null */
    s_samples[1] = (sl_sample_t) {
        .id = "id-2", .name = "disk.root.size", .type = "gauge", .unit = "GB",
        .volume_json = NULL, .volume = NAN, .user_id = NULL, .project_id = NULL,
        .resource_id = "r-2", .timestamp = NULL, .resource_metadata = "{}",
        .source = NULL, .message_id = NULL,
    };
    /* empty strings are not nulls; UTF-8 passes byte for byte */
    s_samples[2] = (sl_sample_t) {
        .id = "", .name = "n\xc3\xa4me.\xe6\x97\xa5\xe6\x9c\xac", .type = "", .unit = "\xe2\x82\xac",
        .volume_json = "\"-0.5\"", .volume = -0.5, .user_id = "", .project_id = "",
        .resource_id = "\xf0\x9f\x92\xa1", .timestamp = "", .resource_metadata = "{\"k\": \"\xc3\xa9\"}",
        .source = "", .message_id = "", .monotonic_time = "0",
    };
    s_samples[3] = (sl_sample_t) {
        .id = "id-4", .name = "big", .type = "delta", .unit = "B", .volume_json = "-1e300",
        .volume = -1e300, .user_id = "u", .project_id = "p", .resource_id = "r",
        .timestamp = "t", .resource_metadata = s_big_metadata, .source = "s", .message_id = "m",
    };
}

static void
s_teardown(void)
{
    free(s_big_metadata);
    s_big_metadata = NULL;
}

static const sl_wire_header_t s_hdr = {
    .sink = 513, .partition = 70000, .generation = 0xdeadbeef, .origin = 3, .seq = 0x01020304,
    .read_us = 0x0006123456789abcULL,
};

/* A frame of the first n samples in a malloc'd buffer of exactly its size. */
static unsigned char *
s_frame_n(int n, size_t *len)
{
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    for (int i = 0; i < n; i++)
        sl_wire_writer_add(&w, &s_samples[i], s_flags[i]);
    const void *frame = sl_wire_writer_finish(&w, len);
    ck_assert_uint_eq(sl_wire_writer_bytes(&w), *len);
    unsigned char *copy = malloc(*len);
    memcpy(copy, frame, *len);
    sl_wire_writer_free(&w);
    return copy;
}

static unsigned char *
s_frame(size_t *len)
{
    return s_frame_n(4, len);
}

static void
s_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char) (v >> (8 * i));
}

static uint32_t
s_get_u32(const unsigned char *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* After editing a body, make the checksum right again so that what is
 * tested is the record walk, not the checksum. */
static void
s_reseal(unsigned char *f, size_t len)
{
    s_put_u32(f + 28, (uint32_t) (len - SL_WIRE_HEADER_SIZE));
    s_put_u32(f + 32, sl_checksum32(f + SL_WIRE_HEADER_SIZE, len - SL_WIRE_HEADER_SIZE));
}

static void
s_expect_rejected(unsigned char *f, size_t len, const char *why, const char *reason)
{
    sl_wire_reader_t r;
    char err[256];
    ck_assert_msg(sl_wire_reader_open(&r, f, len, err, sizeof err) == -1,
                  "%s: expected the frame to be rejected, it was accepted", why);
    ck_assert_msg(err[0] != '\0', "%s: rejected without a reason", why);
    if (reason)
        ck_assert_msg(strstr(err, reason) != NULL, "%s: expected a reason with \"%s\", got \"%s\"",
                      why, reason, err);
    sl_sample_t s;
    unsigned flags;
    ck_assert_msg(sl_wire_reader_next(&r, &s, &flags) == 0,
                  "%s: a rejected reader must yield no record", why);
}

START_TEST(test_round_trip_keeps_every_field)
{
    size_t len;
    unsigned char *f = s_frame(&len);
    sl_wire_reader_t r;
    char err[256];
    ck_assert_msg(sl_wire_reader_open(&r, f, len, err, sizeof err) == 0, "open failed: %s", err);
    ck_assert_uint_eq(r.hdr.sink, s_hdr.sink);
    ck_assert_uint_eq(r.hdr.partition, s_hdr.partition);
    ck_assert_uint_eq(r.hdr.generation, s_hdr.generation);
    ck_assert_uint_eq(r.hdr.origin, s_hdr.origin);
    ck_assert_uint_eq(r.hdr.seq, s_hdr.seq);
    ck_assert_msg(r.hdr.read_us == s_hdr.read_us, "read_us: expected %llx, got %llx",
                  (unsigned long long) s_hdr.read_us, (unsigned long long) r.hdr.read_us);
    ck_assert_uint_eq(r.hdr.count, 4);
    sl_sample_t s;
    unsigned flags;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sl_wire_reader_next(&r, &s, &flags), 1);
        s_expect_sample(&s_samples[i], &s, i);
        ck_assert_msg(flags == s_flags[i], "record %d: flags 0x%x, expected 0x%x", i, flags, s_flags[i]);
        /* a view into the frame, no copy */
        ck_assert_msg((unsigned char *) s.name > f && (unsigned char *) s.name < f + len,
                      "record %d: name does not point into the frame", i);
    }
    ck_assert_int_eq(sl_wire_reader_next(&r, &s, &flags), 0);
    ck_assert_int_eq(sl_wire_reader_next(&r, &s, &flags), 0);
    free(f);
}
END_TEST

START_TEST(test_header_layout_is_the_documented_one)
{
    size_t len;
    unsigned char *f = s_frame(&len);
    ck_assert_mem_eq(f, "SLW1", 4);
    ck_assert_uint_eq(f[4], SL_WIRE_VERSION);
    ck_assert_uint_eq(f[5], 1);
    ck_assert_uint_eq(f[6] | f[7] << 8, 513);
    ck_assert_uint_eq(s_get_u32(f + 8), 70000);
    ck_assert_uint_eq(s_get_u32(f + 12), 0xdeadbeef);
    ck_assert_uint_eq(s_get_u32(f + 16), 3);
    ck_assert_uint_eq(s_get_u32(f + 20), 0x01020304);
    ck_assert_uint_eq(s_get_u32(f + 24), 4);
    ck_assert_uint_eq(s_get_u32(f + 28), len - SL_WIRE_HEADER_SIZE);
    ck_assert_uint_eq(s_get_u32(f + 32), sl_checksum32(f + 44, len - 44));
    ck_assert_uint_eq(s_get_u32(f + 36), 0x56789abc);    /* read_us, u64 LE */
    ck_assert_uint_eq(s_get_u32(f + 40), 0x00061234);
    /* first record: flags, f64 LE volume, then "id" as u32 length + bytes + NUL */
    unsigned char *rec = f + SL_WIRE_HEADER_SIZE;
    ck_assert_uint_eq(rec[0], 0);
    double v;
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--)
        bits = bits << 8 | rec[1 + i];
    memcpy(&v, &bits, sizeof v);
    ck_assert_msg(v == 1234567890.0, "volume bytes decode to %.17g", v);
    ck_assert_uint_eq(s_get_u32(rec + 9), 36);
    ck_assert_mem_eq(rec + 13, s_samples[0].id, 36);
    ck_assert_uint_eq(rec[13 + 36], 0);
    free(f);
}
END_TEST

START_TEST(test_null_string_is_all_ones_length)
{
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    sl_sample_t s = { .volume = 1 };         /* every string null */
    sl_wire_writer_add(&w, &s, 0);
    size_t len;
    const unsigned char *f = sl_wire_writer_finish(&w, &len);
    ck_assert_uint_eq(len, SL_WIRE_HEADER_SIZE + 9 + N_STRINGS * 4);
    for (int i = 0; i < N_STRINGS; i++)
        ck_assert_uint_eq(s_get_u32(f + SL_WIRE_HEADER_SIZE + 9 + 4 * i), 0xFFFFFFFFu);
    sl_wire_writer_free(&w);
}
END_TEST

START_TEST(test_mark_end_flags_the_last_record)
{
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    sl_wire_writer_mark_end(&w);              /* empty frame: no-op */
    sl_wire_writer_add(&w, &s_samples[0], 0);
    sl_wire_writer_add(&w, &s_samples[3], 0);
    sl_wire_writer_mark_end(&w);
    sl_wire_writer_add(&w, &s_samples[2], 0);
    sl_wire_writer_add(&w, &s_samples[1], 0);
    sl_wire_writer_mark_end(&w);
    sl_wire_writer_mark_end(&w);              /* idempotent */
    size_t len;
    const void *frame = sl_wire_writer_finish(&w, &len);
    unsigned char *f = malloc(len);
    memcpy(f, frame, len);
    sl_wire_reader_t r;
    char err[256];
    ck_assert_msg(sl_wire_reader_open(&r, f, len, err, sizeof err) == 0, "open failed: %s", err);
    static const unsigned want[4] = { 0, SL_WIRE_FLAG_END_OF_NOTIFICATION, 0,
                                      SL_WIRE_FLAG_END_OF_NOTIFICATION };
    sl_sample_t s;
    unsigned flags;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(sl_wire_reader_next(&r, &s, &flags), 1);
        ck_assert_msg(flags == want[i], "record %d: flags 0x%x, expected 0x%x", i, flags, want[i]);
    }
    free(f);
    sl_wire_writer_free(&w);
}
END_TEST

START_TEST(test_begin_discards_an_unfinished_frame)
{
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    sl_wire_writer_add(&w, &s_samples[3], 0);
    sl_wire_writer_begin(&w, &s_hdr);
    sl_wire_writer_mark_end(&w);              /* must not touch the old record */
    sl_wire_writer_add(&w, &s_samples[0], SL_WIRE_FLAG_END_OF_NOTIFICATION);
    ck_assert_uint_eq(w.hdr.count, 1);
    size_t len;
    const void *frame = sl_wire_writer_finish(&w, &len);
    unsigned char *f = malloc(len);
    memcpy(f, frame, len);
    sl_wire_reader_t r;
    char err[256];
    ck_assert_msg(sl_wire_reader_open(&r, f, len, err, sizeof err) == 0, "open failed: %s", err);
    ck_assert_uint_eq(r.hdr.count, 1);
    sl_sample_t s;
    unsigned flags;
    ck_assert_int_eq(sl_wire_reader_next(&r, &s, &flags), 1);
    s_expect_sample(&s_samples[0], &s, 0);
    ck_assert_int_eq(sl_wire_reader_next(&r, &s, &flags), 0);
    free(f);
    sl_wire_writer_free(&w);
}
END_TEST

START_TEST(test_empty_frame_is_valid)
{
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    size_t len;
    const void *frame = sl_wire_writer_finish(&w, &len);
    ck_assert_uint_eq(len, SL_WIRE_HEADER_SIZE);
    unsigned char f[SL_WIRE_HEADER_SIZE];
    memcpy(f, frame, len);
    sl_wire_reader_t r;
    char err[256];
    ck_assert_msg(sl_wire_reader_open(&r, f, len, err, sizeof err) == 0, "open failed: %s", err);
    ck_assert_msg(err[0] == '\0', "a successful open leaves err empty, got \"%s\"", err);
    sl_sample_t s;
    unsigned flags;
    ck_assert_int_eq(sl_wire_reader_next(&r, &s, &flags), 0);
    sl_wire_writer_free(&w);
}
END_TEST

START_TEST(test_writer_grows_for_many_records)
{
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    for (int i = 0; i < 5000; i++)
        sl_wire_writer_add(&w, &s_samples[i % 3], (unsigned) (i % 2));
    size_t len;
    const void *frame = sl_wire_writer_finish(&w, &len);
    unsigned char *f = malloc(len);
    memcpy(f, frame, len);
    sl_wire_reader_t r;
    char err[256];
    ck_assert_msg(sl_wire_reader_open(&r, f, len, err, sizeof err) == 0, "open failed: %s", err);
    sl_sample_t s;
    unsigned flags;
    int n = 0;
    while (sl_wire_reader_next(&r, &s, &flags) == 1) {
        s_expect_sample(&s_samples[n % 3], &s, n);
        ck_assert_uint_eq(flags, (unsigned) (n % 2));
        n++;
    }
    ck_assert_int_eq(n, 5000);
    free(f);
    sl_wire_writer_free(&w);
}
END_TEST

/* Each truncation is copied into a buffer of exactly that size, so that
 * AddressSanitizer would catch a read past it. */
START_TEST(test_every_truncation_is_rejected)
{
    /* Every length of a frame of the three small samples; then, for the
     * ~200 kB frame that adds the big one, the lengths around each record
     * boundary and a stride through the big record. */
    for (int n = 3; n <= 4; n++) {
        size_t len;
        unsigned char *f = s_frame_n(n, &len);
        for (size_t cut = 0; cut < len; cut++) {
            if (n == 4 && cut > 2048 && cut < len - 2048 && cut % 997 != 0)
                continue;
            unsigned char *t = malloc(cut ? cut : 1);
            memcpy(t, f, cut);
            char why[64];
            snprintf(why, sizeof why, "frame cut to %zu of %zu bytes", cut, len);
            s_expect_rejected(t, cut, why, NULL);
            /* the same cut with length and checksum made consistent: now
             * only the record walk can notice */
            if (cut >= SL_WIRE_HEADER_SIZE) {
                s_reseal(t, cut);
                snprintf(why, sizeof why, "frame cut and resealed to %zu of %zu bytes", cut, len);
                s_expect_rejected(t, cut, why, "runs past");
            }
            free(t);
        }
        free(f);
    }
}
END_TEST

START_TEST(test_every_flipped_byte_is_rejected)
{
    /* a small frame so that every byte can be tried */
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    sl_wire_writer_add(&w, &s_samples[0], 0);
    sl_wire_writer_add(&w, &s_samples[1], 1);
    sl_wire_writer_add(&w, &s_samples[2], 0);
    size_t len;
    const void *frame = sl_wire_writer_finish(&w, &len);
    unsigned char *f = malloc(len);
    for (size_t at = 0; at < len; at++) {
        /* sink, partition, generation, origin and seq (bytes 6..23) are not
         * covered by the checksum: the receiver checks them against its own
         * configuration instead (range, generation). */
        if (at >= 6 && at < 24)
            continue;
        /* the read time (36..43) is not covered either: a flipped bit only
         * skews one latency observation */
        if (at >= 36 && at < 44)
            continue;
        for (int bit = 0; bit < 8; bit++) {
            memcpy(f, frame, len);
            f[at] ^= (unsigned char) (1u << bit);
            char why[64];
            snprintf(why, sizeof why, "bit %d of byte %zu flipped", bit, at);
            s_expect_rejected(f, len, why, NULL);
        }
    }
    free(f);
    sl_wire_writer_free(&w);
}
END_TEST

START_TEST(test_wrong_magic_version_or_kind_is_named)
{
    size_t len;
    unsigned char *f = s_frame(&len);
    f[0] = 'X';
    s_expect_rejected(f, len, "magic", "magic");
    f[0] = 'S';
    f[4] = 2;       /* the previous version (another checksum) */
    s_expect_rejected(f, len, "version 2", "version 2");
    f[4] = 4;
    s_expect_rejected(f, len, "version 4", "version 4");
    f[4] = SL_WIRE_VERSION;
    f[5] = 9;
    s_expect_rejected(f, len, "kind 9", "kind 9");
    f[5] = 1;
    sl_wire_reader_t r;
    ck_assert_int_eq(sl_wire_reader_open(&r, f, len, NULL, 0), 0);
    free(f);
}
END_TEST

START_TEST(test_count_larger_than_records_is_rejected)
{
    size_t len;
    unsigned char *f = s_frame(&len);
    s_put_u32(f + 24, 5);                     /* count is outside the checksum */
    s_expect_rejected(f, len, "count 5 for 4 records", "record 4 of 5");
    s_put_u32(f + 24, 3);
    s_expect_rejected(f, len, "count 3 for 4 records", "left over");
    s_put_u32(f + 24, 0xFFFFFFFFu);
    s_expect_rejected(f, len, "count 2^32-1", "runs past");
    free(f);
}
END_TEST

START_TEST(test_string_running_past_the_end_is_rejected)
{
    sl_wire_writer_t w;
    sl_wire_writer_init(&w);
    sl_wire_writer_begin(&w, &s_hdr);
    sl_wire_writer_add(&w, &s_samples[0], 0);
    size_t len;
    const void *frame = sl_wire_writer_finish(&w, &len);
    unsigned char *f = malloc(len + 8);
    size_t id_len_at = SL_WIRE_HEADER_SIZE + 9;          /* first string of record 0 */
    size_t last_len_at = len - (strlen(s_samples[0].monotonic_time) + 1) - 4;

    memcpy(f, frame, len);
    s_put_u32(f + last_len_at, 1000);
    s_reseal(f, len);
    s_expect_rejected(f, len, "last string 1000 bytes long", "runs past");

    memcpy(f, frame, len);
    s_put_u32(f + last_len_at, 0xFFFFFFFEu);
    s_reseal(f, len);
    s_expect_rejected(f, len, "last string 2^32-2 bytes long", "runs past");

    memcpy(f, frame, len);
    s_put_u32(f + last_len_at, (uint32_t) strlen(s_samples[0].monotonic_time) + 1);
    s_reseal(f, len);
    s_expect_rejected(f, len, "last string one byte too long", "runs past");

    /* a string whose terminator is not NUL */
    memcpy(f, frame, len);
    f[id_len_at + 4 + 36] = 'x';
    s_reseal(f, len);
    s_expect_rejected(f, len, "id without its NUL", "runs past");

    /* bytes after the last record */
    memcpy(f, frame, len);
    memset(f + len, 0, 8);
    s_reseal(f, len + 8);
    s_expect_rejected(f, len + 8, "8 trailing bytes", "left over");

    /* the untouched frame still opens */
    memcpy(f, frame, len);
    sl_wire_reader_t r;
    char err[256];
    ck_assert_msg(sl_wire_reader_open(&r, f, len, err, sizeof err) == 0, "open failed: %s", err);
    free(f);
    sl_wire_writer_free(&w);
}
END_TEST

START_TEST(test_body_length_must_match_the_message)
{
    size_t len;
    unsigned char *f = s_frame(&len);
    s_put_u32(f + 28, (uint32_t) (len - SL_WIRE_HEADER_SIZE - 1));
    s_expect_rejected(f, len, "length one short", "body length");
    s_put_u32(f + 28, (uint32_t) (len - SL_WIRE_HEADER_SIZE + 1));
    s_expect_rejected(f, len, "length one long", "body length");
    s_put_u32(f + 28, (uint32_t) (len - SL_WIRE_HEADER_SIZE));
    f[len - 1] ^= 0x20;
    s_expect_rejected(f, len, "last byte changed", "checksum");
    free(f);
}
END_TEST


START_TEST(test_ack_round_trip_and_rejects)
{
    uint32_t seqs[3] = { 7, 0xfffffffeu, 9 };
    unsigned char buf[SL_WIRE_ACK_SIZE(3)];
    size_t len = sl_wire_ack_encode(buf, 5, 77, seqs, 3);
    ck_assert_uint_eq(len, sizeof buf);
    uint16_t sink;
    uint32_t p;
    size_t n;
    ck_assert_int_eq(sl_wire_ack_decode(buf, len, &sink, &p, &n), 0);
    ck_assert_uint_eq(sink, 5);
    ck_assert_uint_eq(p, 77);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_uint_eq(sl_wire_ack_seq(buf, i), seqs[i]);
    /* truncated, padded, bad magic, empty */
    ck_assert_int_eq(sl_wire_ack_decode(buf, len - 1, &sink, &p, &n), -1);
    ck_assert_int_eq(sl_wire_ack_decode(buf, len + 0, &sink, &p, &n), 0);
    unsigned char big[sizeof buf + 4];
    memcpy(big, buf, sizeof buf);
    ck_assert_int_eq(sl_wire_ack_decode(big, sizeof big, &sink, &p, &n), -1);
    buf[0] = 'X';
    ck_assert_int_eq(sl_wire_ack_decode(buf, len, &sink, &p, &n), -1);
    ck_assert_uint_eq(sl_wire_ack_encode(buf, 0, 0, seqs, 0), 0);
    ck_assert_uint_eq(sl_wire_ack_encode(buf, 0, 0, seqs, SL_WIRE_ACK_MAX + 1), 0);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("round trip");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_round_trip_keeps_every_field);
    tcase_add_test(tc, test_header_layout_is_the_documented_one);
    tcase_add_test(tc, test_null_string_is_all_ones_length);
    tcase_add_test(tc, test_mark_end_flags_the_last_record);
    tcase_add_test(tc, test_begin_discards_an_unfinished_frame);
    tcase_add_test(tc, test_empty_frame_is_valid);
    tcase_add_test(tc, test_writer_grows_for_many_records);
    suite_add_tcase(s, tc);
    tc = tcase_create("corruption");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_truncation_is_rejected);
    tcase_add_test(tc, test_every_flipped_byte_is_rejected);
    tcase_add_test(tc, test_wrong_magic_version_or_kind_is_named);
    tcase_add_test(tc, test_count_larger_than_records_is_rejected);
    tcase_add_test(tc, test_string_running_past_the_end_is_rejected);
    tcase_add_test(tc, test_body_length_must_match_the_message);
    tcase_add_test(tc, test_ack_round_trip_and_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return sl_check_run(s_suite());
}
