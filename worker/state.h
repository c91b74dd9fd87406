/* state — the transformer state a partition's old owner leaves for the next.
 *
 * When a partition changes hands on one host (a rebalance, or a reload that
 * restarts every worker), the old owner writes its chain's state to
 * <run_dir>/state/<sink label>.<p> before it releases the lease, and the new
 * owner loads (and removes) it after taking the lease, so the transformers
 * go on as if nothing had moved.
 *
 * One format: "SLST", u32 version, u64 fingerprint, then sl_chain_save's
 * blob (host byte order: the file never leaves the host). One fingerprint:
 * sl_state_fingerprint, over the partition count, the sink's name and
 * sl_chain_fingerprint (the transformers with their parameters, hashed as
 * the chain's own blob records them); state saved under another
 * configuration is discarded (logged). Pipeline workers only. */
#ifndef SL_STATE_H
#define SL_STATE_H

#include <stdint.h>
#include "common/conf.h"
#include "worker/transform.h"

uint64_t sl_state_fingerprint(const sl_conf_t *conf, unsigned sink);
/* Writes the file (atomically: temporary file + rename). 0 (also when the
 * sink has no transformer: nothing to save), or -1, logged: then the
 * caller drains the chain instead, rather than lose what it holds. */
int sl_state_save(const sl_conf_t *conf, unsigned sink, unsigned p, const sl_chain_t *chain);
/* Loads the file into a fresh chain if there is one for this configuration
 * (and removes it whatever its fate); a missing, foreign or unreadable file
 * leaves the chain empty (logged). */
void sl_state_load(const sl_conf_t *conf, unsigned sink, unsigned p, sl_chain_t *chain);

#endif
