/* prometheus — the prometheus:// publisher's Pushgateway text, and the
 * HTTP base it shares with opentelemetryhttp:// (both are subclasses of
 * Ceilometer's HttpPublisher: same URL handling and options).
 *
 * Text (Ceilometer 19's PrometheusPublisher, ceilometer/publisher/
 * prometheus.py): for each sample, in batch order,
 *     # TYPE <name> counter|gauge        (cumulative|gauge; once per name
 *                                          and body; none for delta)
 *     <name>{resource_id="<rid>", project_id="<pid>"} <str(volume)>
 * where <name> is the meter name with '.' made '_' (sluice also makes any
 * other character a metric name cannot hold '_'), a missing id is "None"
 * and the volume is Python's str() of the notification's value. Label
 * values are escaped as the text format requires (\\, \", \n), which
 * Ceilometer does not do. When a batch holds the same series (name and
 * labels) twice, only the last sample of it is written (the Pushgateway
 * refuses a body with a series twice; Ceilometer loses such a batch).
 *
 * HTTP base: the URL's scheme becomes http (https with ssl=true), its
 * userinfo basic auth, its path the target's ("/" if none); options
 * timeout (seconds), verify_ssl, clientcert, clientkey, ssl. One client
 * (worker/publishers/httpc.h) per instance, on the publish thread.
 * Functions here are pure except the client's, which are for one
 * thread at a time. */
#ifndef SL_PUBLISHERS_PROMETHEUS_H
#define SL_PUBLISHERS_PROMETHEUS_H

#include <stddef.h>
#include "common/arena.h"
#include "common/buf.h"
#include "common/opt.h"
#include "common/sample.h"
#include "worker/publishers/publisher.h"

struct sl_forward;

/* Appends the Pushgateway body for n samples (fwd: forward profile, NULL =
 * none; a field it removes reads as None). Returns the number of samples
 * written (duplicates of a series left out). */
size_t sl_prometheus_text(sl_buf_t *out, const sl_sample_t *s, size_t n,
                          const struct sl_forward *fwd);

/* Python's str() of the sample's volume ("5", "5.0", "1e+16", a numeric
 * string as it is), in a. */
const char *sl_prometheus_volume_str(sl_arena_t *a, const sl_sample_t *s);

/* The sample as fwd lets a consumer see it: s itself when fwd is NULL;
 * else a view in tmp whose strings live in a, with a field the profile
 * removed as NULL (None) and resource_metadata "{}" when removed. */
const sl_sample_t *sl_httpbase_forward_view(const struct sl_forward *fwd, const sl_sample_t *s,
                                            sl_sample_t *tmp, sl_arena_t *a);

/* ---- the HTTP base ------------------------------------------------------- */

/* Options every HttpPublisher subclass takes. */
typedef struct {
    double   timeout;        /* seconds */
    char    *verify_ssl;     /* a boolean word or a CA bundle path */
    char    *clientcert, *clientkey;
    unsigned ssl;
} sl_httpbase_opts_t;

int sl_httpbase_check_verify(const sl_opt_t *o, const char *text, char *err, size_t errlen);
/* verify_ssl (NULL = true), clientcert and clientkey as the HTTP client
 * takes them: *verify 0 or 1, *ca the CA bundle (NULL: the system's CAs).
 * -1 with err naming the option when a file cannot be read or a key has
 * no certificate. */
int sl_httpbase_tls(const char *verify_ssl, const char *clientcert, const char *clientkey,
                    int *verify, const char **ca, char *err, size_t errlen);

/* The table entries of sl_httpbase_opts_t (which must be the first member
 * of the plugin's option struct). */
#define SL_HTTPBASE_OPTS \
    { .name = "timeout", .type = SL_OPT_DOUBLE, .offset = offsetof(sl_httpbase_opts_t, timeout), \
      .def = "5", .dmin = 0.001, .dmax = 3600, \
      .help = "seconds a POST may take, connection included (Ceilometer's timeout=); then " \
              "RETRY" }, \
    { .name = "verify_ssl", .type = SL_OPT_STR, \
      .offset = offsetof(sl_httpbase_opts_t, verify_ssl), .def = "true", \
      .check = sl_httpbase_check_verify, .type_text = "true, false or a CA path", \
      .help = "with ssl=true: verify the server's certificate and host name against the " \
              "system's CAs (true), not at all (false), or against the CA bundle at this " \
              "path" }, \
    { .name = "clientcert", .type = SL_OPT_PATH, \
      .offset = offsetof(sl_httpbase_opts_t, clientcert), \
      .help = "PEM client certificate for https (with its key unless clientkey is set)" }, \
    { .name = "clientkey", .type = SL_OPT_PATH, \
      .offset = offsetof(sl_httpbase_opts_t, clientkey), .help = "PEM key of clientcert" }, \
    { .name = "ssl", .type = SL_OPT_BOOL, .offset = offsetof(sl_httpbase_opts_t, ssl), \
      .def = "false", .help = "true: https to the URL's host (Ceilometer's ssl=)" }

typedef struct sl_httpbase sl_httpbase_t;

/* Parses url (any scheme) into the target and credentials, checks the
 * files the options name. content_type: the Content-type header's value.
 * NULL with err. */
sl_httpbase_t *sl_httpbase_new(const char *url, const sl_httpbase_opts_t *o,
                               const char *content_type, char *err, size_t errlen);
/* The target URL (no credentials). */
const char *sl_httpbase_target(const sl_httpbase_t *h);
/* POSTs body to the target with sub_path appended (NULL = none): OK on
 * 2xx; RETRY on a transport error, 408, 425, 429, 5xx; ERROR otherwise,
 * with the reason in err. */
sl_pub_status_t sl_httpbase_post(sl_httpbase_t *h, const char *sub_path, const char *body,
                                 size_t len, char *err, size_t errlen);
void sl_httpbase_free(sl_httpbase_t **h_p);

#endif
