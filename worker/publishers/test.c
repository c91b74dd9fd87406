/* test:// and testloop:// publishers — for tests only (built with
 * -Dtest_publisher=true, the default; a production build leaves it out and
 * the schemes are unknown).
 *
 *   test://NAME?record=/path/out&control=/path/ctl&calls=/path/calls
 *
 * record: one line per published record (a sample's id, or an event's JSON)
 * appended after each successful publish. control: a file re-read at every
 * publish call, whose first line says what the call does:
 *   ok (or no file)   publish
 *   retry [N] / error [N]   return RETRY / ERROR (for the first N calls
 *                      after the line last changed, then publish; no N =
 *                      every call)
 *   sleep N           block N ms, then publish
 *   stall             block until the control file says something else
 *                      (then do that), or stall_max_ms passed (RETRY)
 * calls: one line per call, "<monotonic ms> <ok|retry|error> <records>".
 * test:// has SL_PUB_F_THREAD (it may block: the output layer runs it on a
 * thread); testloop:// runs on the loop (do not make it stall). */
#include "worker/publishers/publisher.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/stats.h"

typedef struct {
    char    *record;
    char    *control;
    char    *calls;
    unsigned stall_max_ms;
} s_opts_t;

static const sl_opt_t s_opts[] = {
    { .name = "record", .type = SL_OPT_PATH, .offset = offsetof(s_opts_t, record),
      .help = "file that gets one line per published record (sample id or event JSON)" },
    { .name = "control", .type = SL_OPT_PATH, .offset = offsetof(s_opts_t, control),
      .help = "file re-read at each call: ok, retry [N], error [N], sleep MS or stall" },
    { .name = "calls", .type = SL_OPT_PATH, .offset = offsetof(s_opts_t, calls),
      .help = "file that gets one line per publish call: monotonic ms, result, records" },
    { .name = "stall_max_ms", .type = SL_OPT_MS, .offset = offsetof(s_opts_t, stall_max_ms),
      .def = "10000", .min = 1,
      .help = "longest stall (then the call returns RETRY)" },
    { .name = NULL },
};

typedef struct {
    s_opts_t o;
    char     last[128];    /* control line the counter belongs to */
    unsigned count;        /* calls since it changed */
    sl_buf_t buf;
} s_test_t;

static void *
s_init(const char *url, const void *opts, int check_only, char *err, size_t errlen)
{
    (void) url;
    (void) check_only;
    (void) err;
    (void) errlen;
    const s_opts_t *o = opts;
    s_test_t *t = sl_xcalloc(1, sizeof *t);
    t->o.record = o->record ? sl_xstrdup(o->record) : NULL;
    t->o.control = o->control ? sl_xstrdup(o->control) : NULL;
    t->o.calls = o->calls ? sl_xstrdup(o->calls) : NULL;
    t->o.stall_max_ms = o->stall_max_ms;
    return t;
}

static void
s_read_control(const s_test_t *t, char *line, size_t len)
{
    snprintf(line, len, "ok");
    FILE *f = t->o.control ? fopen(t->o.control, "r") : NULL;
    if (!f)
        return;
    if (!fgets(line, (int) len, f))
        snprintf(line, len, "ok");
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
}

static void
s_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void
s_append(const char *path, const char *text, size_t n)
{
    if (!path || !n)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, text + off, n - off);
        if (w <= 0)
            break;
        off += (size_t) w;
    }
    close(fd);
}

/* What the control file says this call does. */
static sl_pub_status_t
s_decide(s_test_t *t, char *err, size_t errlen)
{
    uint64_t start = sl_now_ms();
    for (;;) {
        char line[128];
        s_read_control(t, line, sizeof line);
        if (strcmp(line, t->last) != 0) {
            snprintf(t->last, sizeof t->last, "%s", line);
            t->count = 0;
        }
        unsigned n = 0;
        if (strcmp(line, "stall") == 0) {
            if (sl_now_ms() - start >= t->o.stall_max_ms) {
                snprintf(err, errlen, "test publisher: stalled for %u ms", t->o.stall_max_ms);
                return SL_PUB_RETRY;
            }
            s_sleep_ms(2);
            continue;
        }
        unsigned call = t->count++;
        if (sscanf(line, "sleep %u", &n) == 1) {
            s_sleep_ms(n);
            return SL_PUB_OK;
        }
        int retry = strncmp(line, "retry", 5) == 0, error = strncmp(line, "error", 5) == 0;
        if (retry || error) {
            if (sscanf(line + 5, "%u", &n) == 1 && call >= n)
                return SL_PUB_OK;
            snprintf(err, errlen, "test publisher: told to fail (%s)", line);
            return retry ? SL_PUB_RETRY : SL_PUB_ERROR;
        }
        return SL_PUB_OK;
    }
}

static sl_pub_status_t
s_publish(void *ctx, const sl_pub_batch_t *b, char *err, size_t errlen)
{
    s_test_t *t = ctx;
    sl_pub_status_t st = s_decide(t, err, errlen);
    if (st == SL_PUB_OK && t->o.record) {
        sl_buf_reset(&t->buf);
        for (size_t i = 0; i < b->n; i++) {
            const char *s = b->kind == SL_PUB_EVENTS ? b->events[i] : b->samples[i].id;
            sl_buf_puts(&t->buf, s ? s : "null");
            sl_buf_putc(&t->buf, '\n');
        }
        s_append(t->o.record, t->buf.p, t->buf.n);
    }
    if (t->o.calls) {
        char line[96];
        int n = snprintf(line, sizeof line, "%llu %s %zu\n", (unsigned long long) sl_now_ms(),
                         st == SL_PUB_OK ? "ok" : st == SL_PUB_RETRY ? "retry" : "error", b->n);
        s_append(t->o.calls, line, (size_t) n);
    }
    return st;
}

static void
s_destroy(void **ctx_p)
{
    s_test_t *t = *ctx_p;
    if (!t)
        return;
    free(t->o.record);
    free(t->o.control);
    free(t->o.calls);
    sl_buf_free(&t->buf);
    free(t);
    *ctx_p = NULL;
}

const sl_pub_plugin_t sl_pub_test = {
    .name = "test",
    .help = "test only: records what it publishes, fails, stalls and recovers on command "
            "(runs on a thread)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_THREAD | SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};

const sl_pub_plugin_t sl_pub_testloop = {
    .name = "testloop",
    .help = "test only: test:// called on the worker's loop (must not stall)",
    .opts = s_opts,
    .opts_size = sizeof(s_opts_t),
    .flags = SL_PUB_F_EVENTS,
    .init = s_init,
    .publish = s_publish,
    .destroy = s_destroy,
};
