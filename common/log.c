#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char s_role = 'S';
static sl_log_level_t s_level = SL_LOG_INFO;
static int s_fd = 2;
static char s_path[1024];

static const char *s_names[] = { "error", "warn", "info", "debug" };

int
sl_log_init(char role, sl_log_level_t level, const char *path)
{
    s_role = role;
    s_level = level;
    s_path[0] = '\0';
    if (path && *path && strcmp(path, "-") != 0) {
        snprintf(s_path, sizeof s_path, "%s", path);
        return sl_log_reopen();
    }
    if (s_fd != 2)
        close(s_fd);
    s_fd = 2;
    return 0;
}

void
sl_log_set_role(char role)
{
    s_role = role;
}

sl_log_level_t
sl_log_get_level(void)
{
    return s_level;
}

int
sl_log_reopen(void)
{
    if (!s_path[0])
        return 0;
    int fd = open(s_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        sl_log(SL_LOG_ERROR, "cannot open log file %s: %s; logging to stderr "
               "(check the directory exists and is writable)", s_path, strerror(e));
        return -1;
    }
    if (s_fd != 2)
        close(s_fd);
    s_fd = fd;
    return 0;
}

int
sl_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(name, s_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return SL_LOG_WARN;
    return -1;
}

static void
s_vlog(sl_log_level_t level, const char *suffix, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %d:%c %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, (int) getpid(),
                     s_role, s_names[level]);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t) n, fmt, ap);
    size_t len = (size_t) n + (m < 0 ? 0 : (size_t) m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    if (suffix) {
        int k = snprintf(line + len, sizeof line - 1 - len, "%s", suffix);
        if (k > 0)
            len += (size_t) k;
        if (len > sizeof line - 2)
            len = sizeof line - 2;
    }
    line[len++] = '\n';
    /* One write() per line so that lines of several processes sharing the
     * file never interleave mid-line (O_APPEND). */
    ssize_t w = write(s_fd, line, len);
    (void) w;
}

void
sl_log(sl_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, NULL, fmt, ap);
    va_end(ap);
}

int
sl_log_limited_skip(sl_ratelimit_t *rl, sl_log_level_t level)
{
    if (level > s_level)
        return 1;
    if (time(NULL) - rl->window_start >= SL_RATELIMIT_WINDOW || rl->emitted < SL_RATELIMIT_BURST)
        return 0;
    rl->suppressed++;
    return 1;
}

void
sl_log_limited(sl_ratelimit_t *rl, sl_log_level_t level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    time_t now = time(NULL);
    char suffix[96] = "";
    if (now - rl->window_start >= SL_RATELIMIT_WINDOW) {
        if (rl->suppressed)
            snprintf(suffix, sizeof suffix, " (%u similar messages suppressed)",
                     rl->suppressed);
        rl->window_start = now;
        rl->emitted = 0;
        rl->suppressed = 0;
    }
    if (rl->emitted >= SL_RATELIMIT_BURST) {
        rl->suppressed++;
        return;
    }
    rl->emitted++;
    va_list ap;
    va_start(ap, fmt);
    s_vlog(level, suffix[0] ? suffix : NULL, fmt, ap);
    va_end(ap);
}

int
sl_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A query key whose value is a secret: password, passwd, secret, token
 * anywhere in it (case-insensitive; _file keys name files, not secrets). */
static int
s_secret_key(const char *k, size_t n)
{
    char key[64];
    if (n >= sizeof key)
        n = sizeof key - 1;
    for (size_t i = 0; i < n; i++)
        key[i] = (char) tolower((unsigned char) k[i]);
    key[n] = '\0';
    if (n > 5 && strcmp(key + n - 5, "_file") == 0)
        return 0;
    return strstr(key, "pass") || strstr(key, "secret") || strstr(key, "token") ||
           strcmp(key, "header") == 0;   /* header=X-Api-Key:value */
}

const char *
sl_url_redact(const char *url, char *buf, size_t len)
{
    const char *p = strstr(url, "://");
    size_t o = 0;
    if (!len)
        return buf;
    buf[0] = '\0';
    if (!p) {
        snprintf(buf, len, "%s", url);
        return buf;
    }
    p += 3;
    o = (size_t) snprintf(buf, len, "%.*s", (int) (p - url), url);
    /* the authority ends at the first '/', '?' or '#'; hosts at ',' */
    size_t auth = strcspn(p, "/?#");
    const char *end = p + auth;
    while (p < end && o < len) {
        size_t hn = strcspn(p, ",");
        if (p + hn > end)
            hn = (size_t) (end - p);
        const char *at = memrchr(p, '@', hn);
        const char *colon = at ? memchr(p, ':', (size_t) (at - p)) : NULL;
        if (colon)
            o += (size_t) snprintf(buf + o, len - o, "%.*s:***%.*s", (int) (colon - p), p,
                                   (int) (p + hn - at), at);
        else
            o += (size_t) snprintf(buf + o, len - o, "%.*s", (int) hn, p);
        p += hn;
        if (p < end && *p == ',' && o < len) {
            o += (size_t) snprintf(buf + o, len - o, ",");
            p++;
        }
    }
    /* the path as it is; in the query, the values of keys that name a
     * secret (password=, *secret*, *token*) */
    size_t path = strcspn(end, "?#");
    if (o < len)
        o += (size_t) snprintf(buf + o, len - o, "%.*s", (int) path, end);
    for (const char *q = end + path; *q && o < len;) {
        size_t n = strcspn(q + 1, "&#") + 1;   /* '?' or '&' and one key=value */
        const char *eq = memchr(q + 1, '=', n - 1);
        if (eq && *q != '#' && s_secret_key(q + 1, (size_t) (eq - q - 1)))
            o += (size_t) snprintf(buf + o, len - o, "%.*s=***", (int) (eq - q), q);
        else
            o += (size_t) snprintf(buf + o, len - o, "%.*s", *q == '#' ? (int) strlen(q) : (int) n, q);
        q += *q == '#' ? strlen(q) : n;
    }
    return buf;
}
