/* stagetime — the latency histogram's bounds, recording and quantiles
 * (sampled stage timing is inline in stagetime.h). */
#include "common/stagetime.h"

void
sl_stagetime_init(sl_stagetime_t *st, sl_slot_t *slot, unsigned period, clockid_t clock)
{
    *st = (sl_stagetime_t) { .slot = slot, .period = slot ? period : 0, .clock = clock };
}

uint64_t
sl_lat_bucket_lo(unsigned i)
{
    if (i < 4)
        return i;
    unsigned msb = i / 4 + 1;
    return (uint64_t) (4 + i % 4) << (msb - 2);
}

uint64_t
sl_lat_bucket_hi(unsigned i)
{
    if (i >= SL_LAT_BUCKETS - 1)
        return UINT64_MAX;
    return sl_lat_bucket_lo(i + 1);
}

void
sl_lat_record(sl_slot_t *slot, uint64_t us, uint64_t weight)
{
    unsigned b = sl_lat_bucket(us);
    atomic_store_explicit(&slot->lat[b], atomic_load_explicit(&slot->lat[b], memory_order_relaxed)
                          + weight, memory_order_relaxed);
    atomic_store_explicit(&slot->lat_sum_us, atomic_load_explicit(&slot->lat_sum_us,
                          memory_order_relaxed) + us * weight, memory_order_relaxed);
    if (us > atomic_load_explicit(&slot->lat_max_us, memory_order_relaxed))
        atomic_store_explicit(&slot->lat_max_us, us, memory_order_relaxed);
}

double
sl_lat_quantile(const uint64_t *h, double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < SL_LAT_BUCKETS; i++)
        total += h[i];
    if (!total)
        return 0.0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    double rank = q * (double) total, cum = 0;
    unsigned last = 0;
    for (unsigned i = 0; i < SL_LAT_BUCKETS; i++) {
        if (!h[i])
            continue;
        last = i;
        if (cum + (double) h[i] >= rank) {
            double lo = (double) sl_lat_bucket_lo(i);
            /* the open last bucket: report its lower bound */
            double hi = i == SL_LAT_BUCKETS - 1 ? lo : (double) sl_lat_bucket_hi(i);
            return lo + (hi - lo) * ((rank - cum) / (double) h[i]);
        }
        cum += (double) h[i];
    }
    return (double) sl_lat_bucket_lo(last);
}
