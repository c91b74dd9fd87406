/* publisher_file — process-wide settings of the file:// publisher.
 *
 * sluiced runs with umask(operator's umask | 027) so that its own files
 * (pidfile, sockets, state) are never group- or world-writable. The
 * publisher's output files belong to the operator instead: they are created
 * 0644 minus the operator's umask (never world-writable, since 0644 has no
 * write bit for others). The supervisor calls sl_publisher_file_set_umask()
 * before it forks; until then (tools, tests) files are created 0644 minus
 * the process umask. Any process; not thread-safe (set it once, early). */
#ifndef SL_PUBLISHER_FILE_H
#define SL_PUBLISHER_FILE_H

#include <sys/types.h>

/* Allowed ranges of the URL options, checked at configuration load. */
#define SL_PUBLISHER_FILE_MAX_BYTES_MAX (1ULL << 50)   /* 1 PiB */
#define SL_PUBLISHER_FILE_BACKUP_COUNT_MAX 1000

void sl_publisher_file_set_umask(mode_t operator_umask);

#endif
