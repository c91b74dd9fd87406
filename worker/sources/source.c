/* The core side of source plugins: watches, waits, delivery. */
#include "worker/sources/source.h"

#include <string.h>

#include "worker/stagetime.h"

#define S_READ_BUDGET 256

static const sl_source_plugin_t *const s_registry[] = {
    &sl_source_zmq,
    &sl_source_file,
    &sl_source_amqp,
};

const sl_source_plugin_t *
sl_source_plugin(const char *name)
{
    for (size_t i = 0; i < sizeof s_registry / sizeof *s_registry; i++)
        if (strcmp(s_registry[i]->name, name) == 0)
            return s_registry[i];
    return NULL;
}

void
sl_source_deliver(sl_source_inst_t *src, uint64_t token, const char *buf, size_t len)
{
    src->env.deliver(src->env.core, src, token, buf, len);
}

static void
s_ready(sl_loop_t *loop, void *arg, int revents)
{
    (void) loop;
    (void) revents;
    sl_source_inst_t *src = arg;
    SL_ST_MARK();
    if (!src->paused && !src->wake)
        src->plugin->read(src, S_READ_BUDGET);
}

static void
s_more_fire(sl_loop_t *loop, void *arg)
{
    (void) loop;
    sl_source_inst_t *src = arg;
    src->more = NULL;          /* a one-shot timer frees itself */
    if (!src->paused && !src->wake && !src->done && src->more_wanted) {
        src->more_wanted = 0;
        SL_ST_MARK();
        src->plugin->read(src, S_READ_BUDGET);
    }
}

/* Polls the watches for what the plugin wants unless paused or waiting. */
static void
s_apply(sl_source_inst_t *src)
{
    int on = !src->paused && !src->wake && !src->done;
    for (size_t i = 0; i < src->n_watch; i++)
        if (src->watch[i])
            sl_loop_watch_set(src->watch[i], on ? src->watch_events[i] : 0);
    if (on && src->more_wanted && !src->more)
        src->more = sl_loop_after(src->env.loop, 0, s_more_fire, src);
}

void
sl_source_idle(sl_source_inst_t *src)
{
    if (src->env.idle)
        src->env.idle(src->env.core);
}

void
sl_source_more(sl_source_inst_t *src)
{
    src->more_wanted = 1;
    s_apply(src);
}

static int
s_add(sl_source_inst_t *src, sl_loop_watch_t *w, int events)
{
    if (!w)
        return -1;
    src->watch[src->n_watch] = w;
    src->watch_events[src->n_watch] = events;
    src->n_watch++;
    s_apply(src);
    return 0;
}

int
sl_source_watch_zmq(sl_source_inst_t *src, void *sock, int events)
{
    if (src->n_watch == SL_SOURCE_MAX_WATCHES)
        return -1;
    return s_add(src, sl_loop_watch_zmq(src->env.loop, sock, events, s_ready, src), events);
}

int
sl_source_watch_fd(sl_source_inst_t *src, int fd, int events)
{
    if (src->n_watch == SL_SOURCE_MAX_WATCHES)
        return -1;
    return s_add(src, sl_loop_watch_fd(src->env.loop, fd, events, s_ready, src), events);
}

void
sl_source_unwatch_all(sl_source_inst_t *src)
{
    for (size_t i = 0; i < src->n_watch; i++)
        sl_loop_unwatch(src->env.loop, &src->watch[i]);
    src->n_watch = 0;
}

static void
s_woken(sl_loop_t *loop, void *arg)
{
    (void) loop;
    sl_source_inst_t *src = arg;
    src->wake = NULL;          /* a one-shot timer frees itself */
    s_apply(src);
}

void
sl_source_wait(sl_source_inst_t *src, unsigned ms)
{
    if (src->wake)
        sl_loop_cancel(src->env.loop, &src->wake);
    if (ms == SL_SOURCE_FOREVER) {
        src->done = 1;
    } else {
        src->wake = sl_loop_after(src->env.loop, ms ? ms : 1, s_woken, src);
    }
    s_apply(src);
}

void
sl_source_wake(sl_source_inst_t *src)
{
    if (src->wake)
        sl_loop_cancel(src->env.loop, &src->wake);
    src->done = 0;
    s_apply(src);
}

void
sl_source_set_paused(sl_source_inst_t *src, int paused)
{
    if (src->paused == paused)
        return;
    src->paused = paused;
    s_apply(src);
    if (paused && src->plugin->pause)
        src->plugin->pause(src);
    else if (!paused && src->plugin->resume)
        src->plugin->resume(src);
}

void
sl_source_close(sl_source_inst_t *src)
{
    if (src->wake)
        sl_loop_cancel(src->env.loop, &src->wake);
    if (src->more)
        sl_loop_cancel(src->env.loop, &src->more);
    src->more_wanted = 0;
    sl_source_unwatch_all(src);
    if (src->plugin && src->plugin->destroy)
        src->plugin->destroy(src);
    src->plugin = NULL;
}
