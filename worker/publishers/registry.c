/* The compiled-in publisher registry, the core options every publisher URL
 * accepts, and URL parsing (worker/publishers/publisher.h). */
#include "worker/publishers/publisher.h"
#include "worker/publishers/notifier.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/log.h"

static const sl_pub_plugin_t *const s_registry[] = {
    &sl_pub_file,
    &sl_pub_notifier,
    &sl_pub_http,
    &sl_pub_https,
    &sl_pub_zaqar,
    &sl_pub_udp,
    &sl_pub_tcp,
    &sl_pub_prometheus,
    &sl_pub_opentelemetryhttp,
    &sl_pub_websocket,
    &sl_pub_gnocchi,
#ifdef SL_TEST_PUBLISHER
    &sl_pub_test,
    &sl_pub_testloop,
#endif
};

#define S_N_PLUGINS (sizeof s_registry / sizeof *s_registry)

const sl_pub_plugin_t *const *
sl_publisher_registry(size_t *n)
{
    if (n)
        *n = S_N_PLUGINS;
    return s_registry;
}

static int
s_check_absolute(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    if (text[0] != '/')
        return sl_errf(err, errlen, "%s: '%s' must be an absolute directory path", o->name, text);
    return 0;
}

#define S_CORE(f) offsetof(sl_pub_core_opts_t, f)

const sl_opt_t sl_pub_core_opts[] = {
    { .name = "policy", .type = SL_OPT_ENUM, .offset = S_CORE(policy), .def = "default",
      .choices = "default|queue|drop",
      .help = "when publishing fails: default = retry with backoff until it works, and once "
              "max_queue_length batches wait, take no more (back-pressure on the sources); "
              "queue = retry, keeping at most max_queue_length batches (the oldest are "
              "dropped); drop = drop a batch that failed" },
    { .name = "max_queue_length", .type = SL_OPT_UINT, .offset = S_CORE(max_queue_length),
      .def = "1024", .min = 1, .max = 1000000,
      .help = "batches a publisher keeps waiting (one batch = what one frame produced)" },
    { .name = "confirm", .type = SL_OPT_ENUM, .offset = S_CORE(confirm), .def = "auto",
      .choices = "auto|queued|delivered",
      .help = "when a batch counts as done for its source (the notification is confirmed, "
              "acknowledged to RabbitMQ): queued = once it is in this publisher's queue, as "
              "Ceilometer does (a stalled destination never holds the source or the other "
              "sinks; what the queue holds when the worker crashes is lost, counted in "
              "lost_in_crash); delivered = once this publisher is done with it (a stalled "
              "destination slows the source down to its pace; what it gives up on for a reason "
              "that may heal is given back to a broker); auto = queued under policy=queue|drop, "
              "delivered under policy=default (queued needs policy=queue or drop)" },
    { .name = "retry_initial_ms", .type = SL_OPT_MS, .offset = S_CORE(retry_initial_ms),
      .def = "100", .min = 1, .max = 3600000,
      .help = "first retry delay cap; the cap doubles per failed attempt up to retry_max_ms "
              "and each delay is drawn uniformly below it (full jitter)" },
    { .name = "retry_max_ms", .type = SL_OPT_MS, .offset = S_CORE(retry_max_ms),
      .def = "30000", .min = 1, .max = 3600000,
      .help = "largest retry delay" },
    { .name = "max_retries", .type = SL_OPT_UINT, .offset = S_CORE(max_retries), .def = "0",
      .max = 1000000,
      .help = "retries of one batch before it is dropped (0 = no limit; policy=drop never "
              "retries)" },
    { .name = "dead_letter", .type = SL_OPT_PATH, .offset = S_CORE(dead_letter),
      .check = s_check_absolute,
      .help = "directory where records finally dropped or rejected are appended as JSON "
              "Lines, one per record with the reason: DIR/<sink>.deadletter.jsonl" },
    { .name = "forward", .type = SL_OPT_STR, .offset = S_CORE(forward),
      .type_text = "profile name",
      .help = "consumer profile from sluice.yaml's forward: section: only the samples / events "
              "it selects reach this publisher, with its field filters applied before they are "
              "written (common/forward.h)" },
    { .name = NULL },
};

const sl_pub_plugin_t *
sl_publisher_find(const char *url, char *err, size_t errlen)
{
    const char *colon = strstr(url, "://");
    if (!colon) {
        sl_errf(err, errlen, "publisher '%s' is not a URL (e.g. file:///var/lib/sluice/"
                "samples.jsonl)", url);
        return NULL;
    }
    size_t n = (size_t) (colon - url);
    char known[256];
    size_t k = 0;
    known[0] = '\0';
    for (size_t i = 0; i < S_N_PLUGINS; i++) {
        if (strlen(s_registry[i]->name) == n && strncmp(s_registry[i]->name, url, n) == 0)
            return s_registry[i];
        if (k < sizeof known)
            k += (size_t) snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "",
                                   s_registry[i]->name);
    }
    sl_errf(err, errlen, "publisher scheme '%.*s' is not supported yet (supported: %s)",
            (int) n, url, known);
    return NULL;
}

void
sl_pub_url_free(sl_pub_url_t *u)
{
    if (!u)
        return;
    sl_opt_free(sl_pub_core_opts, &u->core);
    if (u->plugin && u->opts)
        sl_opt_free(u->plugin->opts, u->opts);
    free(u->opts);
    free(u->url);
    free(u->label);
    memset(u, 0, sizeof *u);
}

/* Where the plugin's options start in the block both tables fill. */
#define S_PLUGIN_OFF \
    ((sizeof(sl_pub_core_opts_t) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

/* sl_opt_query drops "key=" as Python's parse_qs does; a known option
 * written with an empty value is refused instead (max_bytes= is a mistake,
 * not a default), with the option's own message. */
static int
s_blank_values(const sl_opt_t *tab, void *cfg, const char *query, char *err, size_t errlen)
{
    for (const char *p = query; *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        if (eq && eq == p + len - 1) {
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int) (eq - p), p);
            const sl_opt_t *o = sl_opt_find(tab, key);
            if (o && o->type != SL_OPT_ANY && sl_opt_set(o, cfg, "", err, errlen) < 0)
                return -1;
        }
        p += len + (p[len] == '&');
    }
    return 0;
}

int
sl_pub_url_parse(sl_pub_url_t *u, const char *url, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    char why[512];
    const sl_pub_plugin_t *pl = sl_publisher_find(url, err, errlen);
    if (!pl)
        return -1;
    u->plugin = pl;
    u->url = sl_xstrdup(url);
    const char *q = strchr(url, '?');
    char red[1024];
    /* the label is for logs and stats: no query, no password */
    u->label = sl_xstrdup(sl_url_redact(url, red, sizeof red));
    char *lq = strchr(u->label, '?');
    if (lq)
        *lq = '\0';
    /* One table over one block: the core's options, then the plugin's (its
     * offsets moved past the core's struct), so that one query parse finds
     * unknown keys against both and names them all. */
    size_t nc = sl_opt_count(sl_pub_core_opts), np = sl_opt_count(pl->opts);
    sl_opt_t *tab = sl_xcalloc(nc + np + 1, sizeof *tab);
    memcpy(tab, pl->opts ? pl->opts : sl_pub_core_opts, np * sizeof *tab);
    for (size_t i = 0; i < np; i++)
        if (tab[i].offset != SL_OPT_NO_OFFSET)
            tab[i].offset += S_PLUGIN_OFF;
    memcpy(tab + np, sl_pub_core_opts, nc * sizeof *tab);
    char *block = sl_xcalloc(1, S_PLUGIN_OFF + pl->opts_size + 1);
    int rc = sl_opt_defaults(tab, block, why, sizeof why);
    if (rc == 0)
        rc = s_blank_values(tab, block, q ? q + 1 : "", why, sizeof why);
    if (rc == 0)
        /* a plugin whose table names "*" takes any other key itself (http:
         * the rest of the query goes to the target) */
        rc = sl_opt_query(tab, block, q ? q + 1 : "", sl_opt_find(tab, "*") != NULL, NULL, why,
                          sizeof why);
    memcpy(&u->core, block, sizeof u->core);
    if (pl->opts_size) {
        u->opts = sl_xmalloc(pl->opts_size);
        memcpy(u->opts, block + S_PLUGIN_OFF, pl->opts_size);
    }
    free(block);    /* its strings now belong to u */
    free(tab);
    if (rc == 0 && u->core.confirm == SL_PUB_CONFIRM_QUEUED &&
        u->core.policy == SL_PUB_POLICY_DEFAULT)
        rc = sl_errf(why, sizeof why, "confirm=queued needs policy=queue or policy=drop "
                     "(policy=default keeps every batch until it is delivered)");
    if (rc == 0 && u->core.retry_max_ms < u->core.retry_initial_ms)
        rc = sl_errf(why, sizeof why, "retry_max_ms (%u) is below retry_initial_ms (%u)",
                     u->core.retry_max_ms, u->core.retry_initial_ms);
    if (rc < 0) {
        sl_errf(err, errlen, "%s publisher '%s': %s", pl->name, sl_url_redact(url, red, sizeof red),
                why);
        sl_pub_url_free(u);
        return -1;
    }
    return 0;
}

void *
sl_pub_url_init(const sl_pub_url_t *u, int check_only, char *err, size_t errlen)
{
    char why[512], red[1024];
    why[0] = '\0';
    void *ctx = u->plugin->init(u->url, u->opts, check_only, why, sizeof why);
    if (!ctx)
        sl_errf(err, errlen, "%s publisher '%s': %s", u->plugin->name,
                sl_url_redact(u->url, red, sizeof red),
                why[0] ? why : "cannot be set up");
    return ctx;
}

int
sl_publisher_check(const char *url, char *err, size_t errlen)
{
    sl_pub_url_t u;
    if (sl_pub_url_parse(&u, url, err, errlen) < 0)
        return -1;
    void *ctx = sl_pub_url_init(&u, 1, err, errlen);
    int rc = ctx ? 0 : -1;
    if (ctx)
        u.plugin->destroy(&ctx);
    sl_pub_url_free(&u);
    return rc;
}

int
sl_publisher_check_events(const char *url, char *err, size_t errlen)
{
    const sl_pub_plugin_t *pl = sl_publisher_find(url, err, errlen);
    if (!pl)
        return -1;
    if (!(pl->flags & SL_PUB_F_EVENTS))
        return sl_errf(err, errlen, "publisher scheme '%s' cannot publish events", pl->name);
    return sl_publisher_check(url, err, errlen);
}
