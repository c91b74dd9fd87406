/* wire — the binary frame that carries a batch of samples from an ingest
 * worker to a pipeline worker (one ZeroMQ message per frame).
 *
 * Frame layout, version 3, all integers little-endian:
 *
 *   offset size field
 *   0      4    magic "SLW1"
 *   4      1    version (3)
 *   5      1    kind (1 = samples)
 *   6      2    sink index (into the pipeline's sinks, config generation below)
 *   8      4    partition
 *   12     4    config generation (frames of another generation are dropped)
 *   16     4    origin (ingest worker slot index)
 *   20     4    batch sequence number (per origin)
 *   24     4    record count
 *   28     4    body length in bytes
 *   32     4    checksum of the body (sl_checksum32, common/hash.c: XXH3-64
 *               folded to 32 bits; version 2 had a multiply-shift hash
 *               there and is refused as another version)
 *   36     8    read time: CLOCK_REALTIME microseconds when the ingest worker
 *               opened the frame for its first notification (decoded and
 *               converted: tens of µs after its read; 0 = unknown). The
 *               pipeline worker's latency histogram measures from it;
 *               REALTIME because agents sharing partitions through
 *               memcached may run on other hosts (NTP-synchronised clocks
 *               compare, monotonic ones do not). Not covered by the
 *               checksum. (Version 2: version 1 had no such field.)
 *   44     ...  body: `count` records
 *
 *   record: u8 flags (bit 0: last sample of its notification, a flush point)
 *           f64 volume (IEEE 754, little-endian)
 *           13 strings in this order: id, name, type, unit, volume_json,
 *             user_id, project_id, resource_id, timestamp,
 *             resource_metadata, source, message_id, monotonic_time
 *             (monotonic_time was added after the first layout, without a
 *             version bump: the frame format is not released yet)
 *           each string: u32 length (0xFFFFFFFF = null), bytes, one NUL byte
 *
 * Events (sinks of event_pipeline.yaml, numbered after the sample sinks)
 * travel in the same record layout: name = event_type, message_id,
 * timestamp = generated, resource_metadata = the event as one JSON object
 * (common/events.h sl_event_json), every other string null.
 *
 * The reader validates the header, body length and checksum before any
 * record is read, and bounds-checks every record, so a truncated or corrupt
 * frame is rejected whole; samples it yields point into the frame buffer
 * (strings are NUL-terminated in place). Any process. */
#ifndef SL_WIRE_H
#define SL_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "common/sample.h"

#define SL_WIRE_HEADER_SIZE 44
#define SL_WIRE_VERSION 3
#define SL_WIRE_FLAG_END_OF_NOTIFICATION 0x01

typedef struct {
    uint16_t sink;
    uint32_t partition;
    uint32_t generation;
    uint32_t origin;
    uint32_t seq;
    uint32_t count;
    uint64_t read_us;           /* CLOCK_REALTIME µs: the frame opened (its first notification); 0 = unknown */
} sl_wire_header_t;

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    sl_wire_header_t hdr;
    size_t last;                /* offset of the last record (mark_end), 0 = none */
} sl_wire_writer_t;

void sl_wire_writer_init(sl_wire_writer_t *w);
/* Starts a new frame (discarding any records not finished). */
void sl_wire_writer_begin(sl_wire_writer_t *w, const sl_wire_header_t *hdr);
void sl_wire_writer_add(sl_wire_writer_t *w, const sl_sample_t *s, unsigned flags);
/* Marks the last record added as the end of a notification (no-op if empty). */
void sl_wire_writer_mark_end(sl_wire_writer_t *w);
/* Fills in count, length and checksum; returns the frame and its length. */
const void *sl_wire_writer_finish(sl_wire_writer_t *w, size_t *len);
size_t sl_wire_writer_bytes(const sl_wire_writer_t *w);
void sl_wire_writer_free(sl_wire_writer_t *w);

typedef struct {
    unsigned char *p, *end;
    sl_wire_header_t hdr;
    uint32_t left;
} sl_wire_reader_t;

/* Validates the frame in buf (which the reader will modify in place: it
 * needs a writable buffer). 0, or -1 with a reason in err. r is zeroed and
 * err emptied first, so both are defined whatever the outcome. */
int sl_wire_reader_open(sl_wire_reader_t *r, void *buf, size_t len, char *err, size_t errlen);
/* 1 = a record in *s and *flags, 0 = no more records, -1 = corrupt record. */
int sl_wire_reader_next(sl_wire_reader_t *r, sl_sample_t *s, unsigned *flags);

/* Confirmation (pipeline worker -> ingest worker, back on the socket the
 * frames came in on): "SLAK", u16 sink, u32 partition, u32 count, then
 * count u32 sequence numbers of frames that are fully delivered (every
 * sample published, absorbed by a transformer or deliberately dropped) or
 * that were rejected (corrupt: resending would not help). At most
 * SL_WIRE_ACK_MAX per message. */
#define SL_WIRE_ACK_MAX 4096
/* A sequence number with this bit set in an ack: the frame is finished but
 * some of it was not delivered for a reason that may heal (a publisher
 * gave up: output.h SL_OUTPUT_FAILED): a source that can take its
 * notifications back requeues them. Frame sequence numbers use the other
 * 31 bits (SL_WIRE_SEQ_MASK). */
#define SL_WIRE_ACK_FAILED 0x80000000u
#define SL_WIRE_SEQ_MASK   0x7fffffffu
#define SL_WIRE_ACK_SIZE(n) (14 + 4 * (size_t) (n))
/* Writes the message into buf (SL_WIRE_ACK_SIZE(n) bytes); returns its
 * length, or 0 if n is 0 or above SL_WIRE_ACK_MAX. */
size_t sl_wire_ack_encode(void *buf, uint16_t sink, uint32_t partition, const uint32_t *seqs,
                          size_t n);
/* Validates an ack; 0 with *n and the header fields, then
 * sl_wire_ack_seq(buf, i) for i < *n; -1 if buf is not a valid ack. */
int sl_wire_ack_decode(const void *buf, size_t len, uint16_t *sink, uint32_t *partition,
                       size_t *n);
uint32_t sl_wire_ack_seq(const void *buf, size_t i);

#endif
