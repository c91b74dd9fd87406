#include "common/source_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* --- file ------------------------------------------------------------------------ */

/* rate: absent is "as fast as possible"; a rate given must be above 0. */
static int
s_check_rate(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    if (!(strtod(text, NULL) > 0))
        return sl_errf(err, errlen, "%s: '%s' must be a number of notifications per second "
                       "above 0", o->name, text);
    return 0;
}

static const sl_opt_t s_file_opts[] = {
    { .name = "path", .type = SL_OPT_PATH, .offset = offsetof(sl_file_source_opts_t, path),
      .required = 1, .help = "JSON Lines file of notifications to replay; relative to "
      "sluice.yaml's directory" },
    { .name = "rate", .type = SL_OPT_DOUBLE, .offset = offsetof(sl_file_source_opts_t, rate),
      .dmin = 0, .dmax = 1e9, .check = s_check_rate, .type_text = "number above 0",
      .help = "notifications per second over all ingest workers (absent: as fast as "
      "possible)" },
    { .name = NULL },
};

/* A file source that cannot be read would stop every ingest worker at
 * start; say so at load, at its `path:` line. */
static int
s_check_file(const void *opts, const char **at, char *err, size_t errlen)
{
    const sl_file_source_opts_t *f = opts;
    struct stat st;
    *at = "path";
    if (stat(f->path, &st) < 0) {
        if (errno == ENOENT)
            return sl_errf(err, errlen, "file source: %s does not exist (correct `path` or "
                           "create the file)", f->path);
        return sl_errf(err, errlen, "file source: cannot access %s: %s (correct `path` or its "
                       "directory's permissions)", f->path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return sl_errf(err, errlen, "file source: %s is a directory (`path` must name a JSON "
                       "Lines file)", f->path);
    if (access(f->path, R_OK) < 0)
        return sl_errf(err, errlen, "file source: %s is not readable: %s (give sluiced read "
                       "access, or correct `path`)", f->path, strerror(errno));
    return 0;
}

const sl_source_type_t sl_source_type_file = {
    .name = "file",
    .help = "JSON Lines replay, at `rate` notifications/s if given; ingest worker k of N reads "
            "lines k, k+N, ...",
    .options = s_file_opts,
    .opts_size = sizeof(sl_file_source_opts_t),
    .check = s_check_file,
};

/* --- zmq ------------------------------------------------------------------------- */

static int
s_check_endpoint(const sl_opt_t *o, const char *text, char *err, size_t errlen)
{
    if (strncmp(text, "tcp://", 6) && strncmp(text, "ipc://", 6))
        return sl_errf(err, errlen, "%s '%s' must be tcp:// or ipc://", o->name, text);
    return 0;
}

static const sl_opt_t s_zmq_opts[] = {
    { .name = "endpoint", .type = SL_OPT_STR, .offset = offsetof(sl_zmq_source_opts_t, endpoint),
      .required = 1, .check = s_check_endpoint, .type_text = "tcp:// or ipc:// endpoint",
      .help = "e.g. tcp://127.0.0.1:5557 or ipc://${run_dir}/notify.sock" },
    { .name = "mode", .type = SL_OPT_ENUM, .offset = offsetof(sl_zmq_source_opts_t, mode),
      .def = "connect", .choices = "connect|bind",
      .help = "connect: every ingest worker connects to a producer that binds the endpoint; "
      "bind: worker k binds it with port+k or path.k" },
    { .name = NULL },
};

const sl_source_type_t sl_source_type_zmq = {
    .name = "zmq",
    .help = "ZeroMQ PULL socket fed by producers (sluice-inject, a PUSH socket).",
    .options = s_zmq_opts,
    .opts_size = sizeof(sl_zmq_source_opts_t),
    .check = NULL,
};

/* --- registry -------------------------------------------------------------------- */

static const sl_source_type_t *const s_types[] = {
    &sl_source_type_file,
    &sl_source_type_zmq,
};

const sl_source_type_t *const *
sl_source_types(size_t *n)
{
    *n = sizeof s_types / sizeof *s_types;
    return s_types;
}

const sl_source_type_t *
sl_source_type_find(const char *name)
{
    for (size_t i = 0; i < sizeof s_types / sizeof *s_types; i++)
        if (strcmp(s_types[i]->name, name) == 0)
            return s_types[i];
    return NULL;
}

const char *
sl_source_type_names(const char *sep, const char *last_sep, char *buf, size_t len)
{
    size_t n = sizeof s_types / sizeof *s_types, o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < len; i++)
        o += (size_t) snprintf(buf + o, len - o, "%s%s",
                               i == 0 ? "" : i + 1 == n ? last_sep : sep, s_types[i]->name);
    return buf;
}

void
sl_source_types_help(FILE *out)
{
    for (size_t i = 0; i < sizeof s_types / sizeof *s_types; i++) {
        fprintf(out, "\n### source `type: %s`\n\n%s\n\n", s_types[i]->name, s_types[i]->help);
        sl_opt_help(out, s_types[i]->options, "");
    }
}
