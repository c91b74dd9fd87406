/* sluice-ctl — sends one request to a running sluiced's control socket
 * (<run_dir>/control.sock, supervisor/ctl.h) and prints the answer; a
 * watch streams until interrupted. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/conf.h"

#define S_DEFAULT_CONFIG "/etc/sluice/sluice.yaml"

static void
s_usage(FILE *out)
{
    fprintf(out,
        "usage: sluice-ctl [--run-dir DIR | -c sluice.yaml | --socket PATH] COMMAND...\n"
        "  --run-dir DIR   the agent's run_dir (its control.sock)\n"
        "  -c FILE         read run_dir from this sluice.yaml (default " S_DEFAULT_CONFIG
        ",\n"
        "                  else the embedded default)\n"
        "  --socket PATH   the control socket itself\n"
        "commands:\n"
        "  status                         generation, workers (role, pid, state, restarts), totals (JSON)\n"
        "  config                         the effective configuration (as sluiced --dump-config)\n"
        "  reload                         as SIGHUP; says whether the new configuration was accepted\n"
        "  stop                           graceful stop (as SIGTERM)\n"
        "  workers ingest|pipeline +N|-N|N  change a worker count at run time (state handed over)\n"
        "  watch drops|retries|leases|sockets  one JSON line a second with what changed; Ctrl-C ends\n"
        "exit status: 0 answered ok, 1 the agent refused (the reason is printed), 2 usage,\n"
        "3 no agent answers on the socket\n");
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "run-dir", required_argument, NULL, 'r' },
        { "config", required_argument, NULL, 'c' },
        { "socket", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *run_dir = NULL, *config = NULL, *sock = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "+r:c:s:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r': run_dir = optarg; break;
        case 'c': config = optarg; break;
        case 's': sock = optarg; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        s_usage(stderr);
        return 2;
    }
    char request[256];
    size_t len = 0;
    for (int i = optind; i < argc; i++) {
        int n = snprintf(request + len, sizeof request - len, "%s%s", i > optind ? " " : "",
                         argv[i]);
        if (n < 0 || (size_t) n >= sizeof request - len - 1) {
            fprintf(stderr, "sluice-ctl: request too long; see sluice-ctl --help\n");
            return 2;
        }
        len += (size_t) n;
    }
    request[len++] = '\n';
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    sl_conf_t *conf = NULL;
    if (!sock && !run_dir) {
        if (!config && access(S_DEFAULT_CONFIG, F_OK) == 0)
            config = S_DEFAULT_CONFIG;
        char err[1024];
        conf = sl_conf_load(config, NULL, 0, err, sizeof err);
        if (!conf) {
            fprintf(stderr, "sluice-ctl: cannot read %s to find run_dir: %s; give --run-dir "
                    "DIR\n", config ? config : "the embedded default", err);
            return 2;
        }
        run_dir = conf->run_dir;
    }
    int n = sock ? snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock)
                 : snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control.sock", run_dir);
    sl_conf_destroy(&conf);
    if (n < 0 || (size_t) n >= sizeof sa.sun_path) {
        fprintf(stderr, "sluice-ctl: socket path too long for a Unix socket\n");
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        fprintf(stderr, "sluice-ctl: cannot connect to %s: %s (is sluiced running with this "
                "run_dir, and are you its user or root?)\n", sa.sun_path, strerror(errno));
        return 3;
    }
    signal(SIGPIPE, SIG_IGN);
    if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t) len) {
        fprintf(stderr, "sluice-ctl: cannot send to %s: %s\n", sa.sun_path, strerror(errno));
        return 3;
    }
    /* Print the answer as it comes; a JSON answer saying "ok":false
     * makes the exit status 1. */
    char buf[65536];
    int refused = 0, first = 1, got = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR)) {
        if (r < 0)
            continue;
        if (first && strncmp(buf, "{\"ok\":false", (size_t) r < 11 ? (size_t) r : 11) == 0)
            refused = 1;
        first = 0;
        got = 1;
        fwrite(buf, 1, (size_t) r, stdout);
        fflush(stdout);
    }
    close(fd);
    if (!got) {
        fprintf(stderr, "sluice-ctl: %s closed without an answer (is sluiced stopping?)\n",
                sa.sun_path);
        return 3;
    }
    return refused ? 1 : 0;
}
