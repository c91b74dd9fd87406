/* generate — seeded generator of realistic OpenStack notifications for
 * sluice-inject --generate and tools/bench.
 *
 * Shapes come from template notifications (tests/data/corpus.jsonl, the
 * real-shaped corpus); each generated line is a template drawn with the
 * realistic mix of ../shared/ceilometer/gen.py (about 40% compute.instance.*,
 * 25% port.*, 10% volume/snapshot/backup, 6% other neutron, 5% identity, 4%
 * image, 3% capacity + compute.metrics, 7% the rest), with every id remapped
 * into pools (500 projects, 2000 users, 50000 resources; consistent within a
 * notification), fresh message ids, increasing timestamps and randomised
 * sizes. Same templates + seed + count = same bytes. Tool code (one process). */
#ifndef SL_GENERATE_H
#define SL_GENERATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_gen sl_gen_t;

/* NULL with a message in err if the template file cannot be used. */
sl_gen_t *sl_gen_new(const char *templates_path, uint64_t seed, int wire,
                     char *err, size_t errlen);
/* Size of the resource id pool (default 50000): fewer resources means more
 * samples per resource, which stateful transformers need. */
void sl_gen_set_resources(sl_gen_t *g, unsigned n);
/* The next notification as one JSON line (no newline); valid until the next call. */
const char *sl_gen_next(sl_gen_t *g, size_t *len);
void sl_gen_destroy(sl_gen_t **g_p);

#endif
