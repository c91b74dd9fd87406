/* hash — the stable hashes sluice uses wherever processes or hosts must agree
 * (partition of a sample, position on the hash ring, frame checksums).
 * FNV-1a, 64-bit, then a 64-bit finaliser (splitmix) so that short, similar
 * keys spread well. Never change these: partition assignment depends on them. */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t sl_hash64(const void *data, size_t len);
uint64_t sl_hash64_str(const char *s);          /* NULL hashes as "" */
/* Continue a hash over more data (start with SL_HASH64_INIT, finish with sl_hash64_final). */
#define SL_HASH64_INIT 0xcbf29ce484222325ULL
uint64_t sl_hash64_update(uint64_t h, const void *data, size_t len);
uint64_t sl_hash64_final(uint64_t h);
/* Frame checksum: XXH3-64 (Debian's libxxhash) folded to 32 bits. Frames
 * carry it (common/wire.h, version 3); it is never stored. */
uint32_t sl_checksum32(const void *data, size_t len);

#endif
