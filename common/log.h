/* log — leveled, rate-limited logging for every sluice process.
 *
 * Lines look like `2026-11-22T06:30:00Z 1234:I warn: message` (pid:role,
 * role S = supervisor, I = ingest, P = pipeline, T = tool). The process sets
 * its role once after fork with sl_log_init(); output goes to stderr or to a
 * file reopened by sl_log_reopen() (SIGUSR1).
 *
 * sl_log_limited() is collectd's c_complain idea: a call site owns an
 * sl_ratelimit_t and logs at most `burst` lines per 10-second window; the
 * number suppressed is reported when the window reopens. Usable in any
 * process; the only global state is the role, level and output fd. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef enum { SL_LOG_ERROR = 0, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG } sl_log_level_t;

typedef struct {
    time_t   window_start;
    unsigned emitted;
    unsigned suppressed;
} sl_ratelimit_t;

#define SL_RATELIMIT_INIT { 0, 0, 0 }
#define SL_RATELIMIT_BURST 5
#define SL_RATELIMIT_WINDOW 10

/* path NULL or "-" = stderr. Returns 0, or -1 if the file cannot be opened
 * (logging then stays on stderr). */
int  sl_log_init(char role, sl_log_level_t level, const char *path);
void sl_log_set_role(char role);
int  sl_log_reopen(void);
int  sl_log_level_parse(const char *name);   /* -1 if unknown */
sl_log_level_t sl_log_get_level(void);

void sl_log(sl_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sl_log_limited(sl_ratelimit_t *rl, sl_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 1 when sl_log_limited(rl, level, ...) would print nothing now (the
 * level is off, or the window's burst is spent: then the line is counted
 * as suppressed, as sl_log_limited would), else 0: for a call site whose
 * arguments cost something to build, on a hot path:
 *     if (!sl_log_limited_skip(rl, lvl)) sl_log_limited(rl, lvl, ...); */
int sl_log_limited_skip(sl_ratelimit_t *rl, sl_log_level_t level);

/* Formats a one-line reason into err[errlen] (if err) and returns -1, so a
 * function can `return sl_errf(err, errlen, "...", ...)`. */
/* url with the password of every "user:pass@" replaced by "***" (a
 * transport URL may list several), and the value of every query key that
 * names a secret (password=, *secret*, *token*, header=; not *_file), into buf;
 * for logs, stats and messages. */
const char *sl_url_redact(const char *url, char *buf, size_t len);
int sl_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sl_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)
#define sl_warn(...)  sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_info(...)  sl_log(SL_LOG_INFO, __VA_ARGS__)
#define sl_debug(...) do { if (sl_log_get_level() >= SL_LOG_DEBUG) sl_log(SL_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
