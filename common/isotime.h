/* isotime — ISO 8601 timestamps as Ceilometer's transformers parse them
 * (oslo.utils parse_isotime, i.e. the `iso8601` library).
 *
 * Accepted: YYYY-MM-DD or YYYYMMDD (month and day may have one digit
 * with dashes), then optionally `T` or a space and HH[[:]MM[[:]SS[(.|,)f+]]],
 * then optionally `Z`, `±HH`, `±HHMM` or `±HH:MM`; a year alone or YYYY-MM
 * is the first day. No offset means UTC. Fractions are truncated to the
 * microsecond. Pure functions; any process. */
#ifndef SL_ISOTIME_H
#define SL_ISOTIME_H

#include <stdint.h>

/* Microseconds since the Unix epoch (UTC) of s, in *us. 0, or -1 if s is
 * NULL or not a valid timestamp (bad shape, month 13, February 30, ...). */
int sl_isotime_parse(const char *s, int64_t *us);

#endif
