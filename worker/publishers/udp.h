/* udp — the msgpack meter messages of the udp:// and tcp:// publishers
 * (worker/publishers/udp.c), exposed for tests and for other publishers
 * that need Ceilometer's meter message as typed values.
 *
 *   udp://  Ceilometer 19's UDPPublisher: one datagram per sample holding
 *           msgpack.dumps(meter_message_from_counter(sample, secret),
 *           use_bin_type=True): source, counter_name, counter_type,
 *           counter_unit, counter_volume, user_id, project_id, resource_id,
 *           timestamp, resource_metadata, message_id, monotonic_time,
 *           message_signature, in that order.
 *   tcp://  Ceilometer 20's TCPPublisher: the same packing of Ceilometer
 *           20's meter message (user_name after user_id, project_name after
 *           project_id, both None for samples from notifications, and
 *           publisher_id = the host name before message_signature), each
 *           framed by its length as 8 bytes little-endian.
 *
 * Values keep their JSON types as Python's msgpack packs them: None = nil,
 * bools, ints in the smallest (u)int form, floats as float 64, str as str,
 * resource_metadata as nested maps and arrays in the notification's order.
 * message_signature is Ceilometer's compute_signature (HMAC-SHA256 over
 * the sorted, flattened keypairs; "" without a secret). Pure functions,
 * any thread. */
#ifndef SL_PUBLISHERS_UDP_H
#define SL_PUBLISHERS_UDP_H

#include <stddef.h>
#include "common/buf.h"
#include "common/sample.h"

/* Appends the msgpack meter message of s to out. publisher_id NULL =
 * Ceilometer 19's message (udp://); non-NULL = Ceilometer 20's with that
 * publisher_id (tcp://). -1 with err (out unchanged) when s cannot be
 * packed as Python would: a field that is not JSON, an integer outside
 * -2^63..2^64-1 (msgpack raises OverflowError). */
int sl_udp_meter_pack(sl_buf_t *out, const sl_sample_t *s, const char *secret,
                      size_t secret_len, const char *publisher_id, char *err, size_t errlen);

/* Ceilometer's default UDP and TCP port (the collector's old udp_port). */
#define SL_UDP_DEFAULT_PORT 4952

/* oslo netutils.parse_host_port(netloc, default_port): "[v6]:port",
 * "[v6]", "host:port", "host", and a bare IPv6 address (two or more ':')
 * without a port. host gets the host without brackets. -1 with err if the
 * port is not a number 0..65535. */
int sl_udp_parse_host_port(const char *netloc, unsigned default_port, char *host,
                           size_t hostlen, unsigned *port, char *err, size_t errlen);

#endif
