/* sluiced — command line of the sluice supervisor. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/source_conf.h"
#include "supervisor/supervisor.h"
#include "worker/publishers/publisher.h"
#include "worker/transform.h"
#include "worker/publishers/file.h"
#include "worker/worker.h"

#define S_DEFAULT_CONFIG "/etc/sluice/sluice.yaml"

static void
s_usage(FILE *out)
{
    fprintf(out,
        "usage: sluiced [-c FILE] [-o key=value]... [-t] [--strict] [--dump-config] [--help-config]\n"
        "               [--help-plugins]\n"
        "  -c FILE         sluice.yaml (default " S_DEFAULT_CONFIG ", else the embedded default)\n"
        "  -o key=value    override one setting (e.g. -o run_dir=/tmp/sluice -o workers.ingest=2)\n"
        "  -t              validate the configuration (and the Ceilometer files it names), print\n"
        "                  every warning (what Ceilometer tolerates: ignored keys, skipped\n"
        "                  definitions) and exit\n"
        "  --strict        those warnings are errors (the same as strict: true in sluice.yaml)\n"
        "  --dump-config   print the effective settings and exit\n"
        "  --help-config   print the configuration reference and exit\n"
        "  --help-plugins  print the options of every source type, transformer and publisher\n"
        "environment (init scripts, /etc/default/sluice; -o on the command line wins):\n"
        "  SLUICE_INGEST_WORKERS=N|auto    overrides workers.ingest\n"
        "  SLUICE_PIPELINE_WORKERS=N|auto  overrides workers.pipeline\n"
        "  SLUICE_METRICS_LISTEN=HOST:PORT|off  overrides metrics.listen\n"
        "  LD_BIND_NOW=1   sluiced sets it and runs itself again (same PID) unless it is\n"
        "                  set: library symbols are bound once, before the workers fork\n"
        "  NOTIFY_SOCKET, WATCHDOG_USEC    set by systemd (Type=notify): READY=1 once every\n"
        "                  worker runs, STATUS= summaries, RELOADING/STOPPING, watchdog pings\n"
        "signals: TERM/QUIT graceful stop, INT fast stop, HUP reload, USR1 reopen logs,\n"
        "         TTIN/TTOU one ingest worker more/less\n"
        "control: <run_dir>/control.sock (sluice-ctl --help)\n"
        "exit codes: 0 stopped, 1 cannot start (run_dir, pidfile lock, shared memory),\n"
        "  2 configuration error (systemd: RestartPreventExitStatus=2)\n");
}

/* Environment variables that override one setting each; they go before
 * the -o overrides, which are applied in order, so -o wins. */
static const struct {
    const char *var, *key;
    int         count;   /* a worker count: checked here */
} s_env_overrides[] = {
    { "SLUICE_INGEST_WORKERS", "workers.ingest", 1 },
    { "SLUICE_PIPELINE_WORKERS", "workers.pipeline", 1 },
    { "SLUICE_METRICS_LISTEN", "metrics.listen", 0 },
};
#define S_N_ENV (sizeof s_env_overrides / sizeof *s_env_overrides)

/* Puts "key=value" for each variable set (and not empty) in front of the
 * n overrides (the array has room for S_N_ENV more); 0, or -1 after saying
 * which variable is wrong. A worker count is checked here (auto or 1..64,
 * the range of workers.*) so that the error names the variable rather than
 * a command-line position; other values are the configuration's to check. */
static int
s_env_apply(const char **overrides, size_t *n)
{
    static char *owned[S_N_ENV];   /* static: lives as long as the overrides */
    const char *env[S_N_ENV];
    size_t k = 0;
    for (size_t i = 0; i < S_N_ENV; i++) {
        const char *v = getenv(s_env_overrides[i].var);
        if (!v || !*v)
            continue;
        char *end = NULL;
        errno = 0;
        unsigned long x = strtoul(v, &end, 10);
        if (s_env_overrides[i].count && strcmp(v, "auto") != 0 &&
            (v[0] < '0' || v[0] > '9' || errno || *end || x < 1 || x > 64)) {
            fprintf(stderr, "sluiced: environment variable %s='%s' must be auto or a number "
                    "from 1 to 64 (it overrides %s); fix it where it is set (e.g. "
                    "/etc/default/sluice) or unset it\n", s_env_overrides[i].var, v,
                    s_env_overrides[i].key);
            return -1;
        }
        size_t len = strlen(s_env_overrides[i].key) + strlen(v) + 2;
        owned[i] = sl_xcalloc(1, len);
        snprintf(owned[i], len, "%s=%s", s_env_overrides[i].key, v);
        env[k++] = owned[i];
    }
    memmove(overrides + k, overrides, *n * sizeof *overrides);
    memcpy(overrides, env, k * sizeof *overrides);
    *n += k;
    return 0;
}

/* Each plugin kind's option tables (common/opt.h), Markdown. */
static void
s_help_plugins(FILE *out)
{
    fprintf(out, "## Sources (sluice.yaml `sources:`, one mapping each)\n");
    sl_source_types_help(out);
    fprintf(out, "\n## Transformers (pipeline.yaml, a sink's `transformers:`)\n");
    sl_transform_help(out);
    fprintf(out, "\n## Publishers (pipeline.yaml, a sink's `publishers:` URLs; options are the "
            "URL's query)\n\nEvery publisher URL takes these:\n\n");
    sl_opt_help(out, sl_pub_core_opts, "");
    size_t n;
    const sl_pub_plugin_t *const *pubs = sl_publisher_registry(&n);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "\n### publisher `%s://`\n\n%s.\n\n", pubs[i]->name, pubs[i]->help);
        if (pubs[i]->opts && pubs[i]->opts->name)
            sl_opt_help(out, pubs[i]->opts, "");
        else
            fprintf(out, "No options of its own.\n");
    }
}

/* Runs sluiced again with LD_BIND_NOW=1 unless it is set: the dynamic
 * linker then binds every symbol of every library (~60 of them) once, here,
 * before the workers are forked. Lazily bound, each worker resolves each
 * library function on its first call itself, walking the libraries' symbol
 * tables and mapping those pages (64 KiB of fault-around per touch): 0.7 MiB
 * more VmRSS per worker, 2.8 MiB summed for 2+2 workers at idle. Nothing
 * else changes (same PID, arguments, descriptors); if the exec fails sluiced
 * goes on as it is. */
static void
s_bind_now(char **argv)
{
    const char *v = getenv("LD_BIND_NOW");
    if (v && *v)
        return;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t) n >= sizeof self - 1)
        return;
    self[n] = '\0';
    if (setenv("LD_BIND_NOW", "1", 1) < 0)
        return;
    execv(self, argv);
    unsetenv("LD_BIND_NOW");
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "test", no_argument, NULL, 't' },
        { "strict", no_argument, NULL, 'S' },
        { "dump-config", no_argument, NULL, 'D' },
        { "help-config", no_argument, NULL, 'H' },
        { "help-plugins", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    s_bind_now(argv);
    const char *config = NULL;
    const char **overrides = sl_xcalloc((size_t) argc + 1 + S_N_ENV, sizeof *overrides);
    size_t n_overrides = 0;
    int test = 0, dump = 0, opt;
    while ((opt = getopt_long(argc, argv, "c:o:thV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 'o': overrides[n_overrides++] = optarg; break;
        case 't': test = 1; break;
        case 'S': overrides[n_overrides++] = "strict=true"; break;
        case 'D': dump = 1; break;
        case 'H': sl_conf_help(stdout); free(overrides); return 0;
        case 'P': s_help_plugins(stdout); free(overrides); return 0;
        case 'h': s_usage(stdout); free(overrides); return 0;
        case 'V': printf("sluiced 0.1.0\n"); free(overrides); return 0;
        default: s_usage(stderr); free(overrides); return 2;
        }
    }
    if (optind < argc) {
        s_usage(stderr);
        free(overrides);
        return 2;
    }
    if (s_env_apply(overrides, &n_overrides) < 0) {
        free(overrides);
        return 2;
    }
    if (!config && access(S_DEFAULT_CONFIG, F_OK) == 0)
        config = S_DEFAULT_CONFIG;
    sl_log_init('S', SL_LOG_INFO, NULL);
    sl_supervisor_opts_t o = {
        .config_path = config, .overrides = overrides, .n_overrides = n_overrides,
        .argc = argc, .argv = argv,
    };
    char err[1024];
    sl_conf_t *conf = sl_supervisor_load(&o, err, sizeof err);
    if (!conf) {
        fprintf(stderr, "sluiced: configuration error: %s\n", err);
        if (test)
            fprintf(stderr, "sluiced: configuration %s test failed\n", config ? config : "<embedded>");
        free(overrides);
        return 2;
    }
    if (test || dump) {
        if (dump)
            sl_conf_dump(conf, stdout);
        if (test)
            fprintf(stderr, "sluiced: configuration %s is valid (%zu sinks, %zu meter "
                    "definitions, %d ingest + %d pipeline workers; %u warning%s%s)\n",
                    conf->file, sl_conf_n_sinks(conf), sl_meters_count(conf->meters),
                    conf->n_ingest, conf->n_pipeline, conf->warn.count,
                    conf->warn.count == 1 ? "" : "s",
                    conf->warn.count ? ", above: what Ceilometer tolerates; --strict refuses "
                    "it" : "");
        sl_conf_destroy(&conf);
        free(overrides);
        return 0;
    }
    /* What sluiced creates from here on (log file, pidfile, ipc:// sockets,
     * transformer state, shared memory) is never group- or world-writable,
     * whatever umask it was started with. 027, not 077: the operator's group
     * may still read the pidfile and the shared memory (sluice-monitor).
     * The file publisher's output files keep the operator's umask. */
    mode_t operator_umask = umask(0);
    umask(operator_umask | 027);
    sl_publisher_file_set_umask(operator_umask);
    if (sl_log_init('S', (sl_log_level_t) conf->log_level_value, conf->log_file) < 0)
        sl_warn("continuing with logging on stderr");
    sl_worker_title_init(argc, argv);
    int rc = sl_supervisor_run(&o, conf);
    free(overrides);
    return rc;
}
