/* sluice-inject — replay a JSON Lines notification file to a ZeroMQ endpoint.
 *
 * Binds (default) or connects a PUSH socket and sends one notification per
 * line, as fast as possible or at --rate per second, optionally --loop times,
 * then reports how many were sent and the rate. With a zmq source in
 * `mode: connect`, sluice's ingest workers connect to the endpoint this
 * binds, and ZeroMQ spreads the lines over them.
 *
 * Delivery: ZeroMQ has no acknowledgement, and libzmq's linger does not
 * guarantee that queued messages reach a peer that reads slower than we
 * send (libzmq issues #1264, #4660: the tail of a peer's share can vanish
 * when the sender exits). With --run-dir, sluice-inject keeps its socket
 * open after the last send until the agent's own `received` counter (its
 * shared-memory stats) has grown by the number sent, so nothing is left in
 * flight when it closes; if that does not happen within --linger seconds it
 * says how many are unaccounted for and exits 1. Never silent.
 *
 * --rate R paces the sends against the clock from the first one (send i is
 * due at t0 + i/R): it sleeps only when at least --rate-slack (default
 * 0.5 ms) ahead, so at 100k/s it sends bursts of ~50 and the sleeps'
 * own overshoot is caught up rather than accumulated. --duration S stops
 * after S seconds, replaying the file as often as needed (tools/bench
 * --latency and --overload).
 *
 * --generate N makes N realistic notifications instead of reading a file
 * (tools/generate.h); with --output FILE they are written there instead of
 * being sent (tools/bench generates first, so generation is not timed). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/stats.h"
#include "tools/generate.h"

#ifndef SL_DEFAULT_TEMPLATES
#define SL_DEFAULT_TEMPLATES "/usr/share/sluice/corpus.jsonl"
#endif
/* Where meson install puts the corpus: used when SL_DEFAULT_TEMPLATES (the
 * source tree of the build) is gone, as on a host the binary was installed on. */
#ifndef SL_INSTALLED_TEMPLATES
#define SL_INSTALLED_TEMPLATES SL_DEFAULT_TEMPLATES
#endif

static volatile sig_atomic_t s_interrupted;

static void
s_on_int(int sig)
{
    (void) sig;
    s_interrupted = 1;
}

static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double
s_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
s_usage(FILE *out)
{
    fprintf(out,
        "usage: sluice-inject --endpoint EP [options] FILE\n"
        "       sluice-inject --generate N [--seed S] [--wire] [--templates F] (--endpoint EP | --output FILE)\n"
        "  --endpoint EP   ZeroMQ endpoint (tcp://127.0.0.1:5557, ipc:///run/sluice/notify.sock)\n"
        "  --connect       connect instead of bind (for a zmq source in mode: bind)\n"
        "  --rate N        notifications per second (default: as fast as possible)\n"
        "  --loop N        send the file N times (default 1)\n"
        "  --duration S    stop after S seconds, replaying the file as often as needed\n"
        "  --rate-slack S  --rate: sleep only when at least S seconds ahead (default 0.0005)\n"
        "  --linger S      seconds to wait at the end for the queue to drain (default 30)\n"
        "  --run-dir DIR   sluiced's run_dir: after the last send, keep the socket open until\n"
        "                  sluiced has counted every notification as received (exit 1 if not\n"
        "                  within --linger); without it the last ones can be lost (see README).\n"
        "                  Repeat it for several agents sharing the endpoint (their sum counts)\n"
        "  --peers N       (bind mode) wait until N peers have connected before sending,\n"
        "                  so that ZeroMQ spreads the file over all of them (default 1)\n"
        "  --wait S        give up waiting for peers after S seconds (default 30)\n"
        "  --generate N    send N generated notifications (realistic OpenStack mix)\n"
        "  --seed S        generator seed (default 1); same seed, same bytes\n"
        "  --wire          generate the oslo v2 envelope form\n"
        "  --resources N   resource id pool of the generator (default 50000)\n"
        "  --templates F   template notifications (default " SL_DEFAULT_TEMPLATES ")\n"
        "  --output FILE   write the generated lines to FILE instead of sending\n"
        "  --json          print the report as JSON (with first/last send times)\n");
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "endpoint", required_argument, NULL, 'e' },
        { "connect", no_argument, NULL, 'c' },
        { "rate", required_argument, NULL, 'r' },
        { "loop", required_argument, NULL, 'l' },
        { "linger", required_argument, NULL, 'L' },
        { "peers", required_argument, NULL, 'p' },
        { "generate", required_argument, NULL, 'g' },
        { "seed", required_argument, NULL, 's' },
        { "wire", no_argument, NULL, 'W' },
        { "resources", required_argument, NULL, 'R' },
        { "templates", required_argument, NULL, 'T' },
        { "output", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'j' },
        { "wait", required_argument, NULL, 'w' },
        { "run-dir", required_argument, NULL, 'D' },
        { "duration", required_argument, NULL, 'd' },
        { "rate-slack", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *endpoint = NULL;
    int connect = 0, opt;
    double rate = 0, duration = 0, slack = 0.0005;
    int loops_given = 0;
    long loops = 1, linger_s = 30, peers = 1, wait_s = 30, generate = 0;
    unsigned long long seed = 1;
    int wire = 0, json = 0;
    unsigned resources = 50000;
    const char *templates = SL_DEFAULT_TEMPLATES, *output = NULL, *run_dir = NULL;
    const char *run_dirs[16];
    size_t n_run_dirs = 0;
    while ((opt = getopt_long(argc, argv, "e:cr:l:L:p:w:g:s:WR:T:o:jD:d:S:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e': endpoint = optarg; break;
        case 'c': connect = 1; break;
        case 'r': rate = atof(optarg); break;
        case 'l': loops = atol(optarg); loops_given = 1; break;
        case 'd': duration = atof(optarg); break;
        case 'S': slack = atof(optarg); break;
        case 'L': linger_s = atol(optarg); break;
        case 'p': peers = atol(optarg); break;
        case 'w': wait_s = atol(optarg); break;
        case 'g': generate = atol(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'W': wire = 1; break;
        case 'R': resources = (unsigned) strtoul(optarg, NULL, 10); break;
        case 'T': templates = optarg; break;
        case 'o': output = optarg; break;
        case 'j': json = 1; break;
        case 'D':
            if (n_run_dirs == sizeof run_dirs / sizeof *run_dirs) {
                fprintf(stderr, "sluice-inject: at most 16 --run-dir\n");
                return 2;
            }
            run_dir = run_dirs[n_run_dirs++] = optarg;
            break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if ((!endpoint && !output) || loops < 1 || (generate ? optind != argc : optind != argc - 1)) {
        s_usage(stderr);
        return 2;
    }
    if (duration > 0 && !loops_given)
        loops = __LONG_MAX__;
    FILE *f = NULL;
    sl_gen_t *gen = NULL;
    char gerr[512];
    if (generate) {
        if (strcmp(templates, SL_DEFAULT_TEMPLATES) == 0 && access(templates, R_OK) < 0)
            templates = SL_INSTALLED_TEMPLATES;
        gen = sl_gen_new(templates, seed, wire, gerr, sizeof gerr);
        if (!gen) {
            fprintf(stderr, "sluice-inject: %s\n", gerr);
            return 1;
        }
        sl_gen_set_resources(gen, resources);
    } else if (!(f = fopen(argv[optind], "r"))) {
        fprintf(stderr, "sluice-inject: cannot open %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    if (output) {
        FILE *out = fopen(output, "w");
        if (!out || !gen) {
            fprintf(stderr, "sluice-inject: --output needs --generate and a writable file\n");
            return 2;
        }
        for (long i = 0; i < generate; i++) {
            size_t n;
            const char *line = sl_gen_next(gen, &n);
            fwrite(line, 1, n, out);
            fputc('\n', out);
        }
        int rc = fclose(out) == 0 ? 0 : 1;
        sl_gen_destroy(&gen);
        return rc;
    }
    /* The agent's stats, for the final handshake: what it has received
     * before we send is the baseline. */
    const sl_shm_t *shm[16];
    uint64_t baseline = 0;
    for (size_t i = 0; i < n_run_dirs; i++) {
        char name[256], serr[512];
        sl_shm_name(run_dirs[i], name, sizeof name);
        shm[i] = sl_shm_attach(name, serr, sizeof serr);
        if (!shm[i]) {
            fprintf(stderr, "sluice-inject: --run-dir %s: %s\n", run_dirs[i], serr);
            sl_gen_destroy(&gen);
            return 1;
        }
        baseline += sl_shm_sum(shm[i], SL_C_received, SL_ROLE_INGEST);
    }
    signal(SIGINT, s_on_int);
    signal(SIGTERM, s_on_int);
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_PUSH);
    int hwm = 100000;
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    /* A socket monitor tells when peers have connected and finished the ZMTP handshake (before that, PUSH would not send to them). */
    void *mon = NULL;
    if (!connect && peers > 0) {
        zmq_socket_monitor(sock, "inproc://sluice-inject-monitor", ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
        mon = zmq_socket(ctx, ZMQ_PAIR);
        zmq_connect(mon, "inproc://sluice-inject-monitor");
    }
    int rc = connect ? zmq_connect(sock, endpoint) : zmq_bind(sock, endpoint);
    if (rc < 0) {
        fprintf(stderr, "sluice-inject: cannot %s %s: %s\n", connect ? "connect to" : "bind",
                endpoint, zmq_strerror(errno));
        sl_gen_destroy(&gen);
        return 1;
    }
    if (mon) {
        long accepted = 0;
        double deadline = s_now() + (double) wait_s;
        int tmo = 100;
        zmq_setsockopt(mon, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
        while (accepted < peers && !s_interrupted && s_now() < deadline) {
            zmq_msg_t ev;
            zmq_msg_init(&ev);
            if (zmq_msg_recv(&ev, mon, 0) >= 0) {
                if (zmq_msg_more(&ev)) {   /* frame 1: event id + value; frame 2: address */
                    zmq_msg_t addr;
                    zmq_msg_init(&addr);
                    zmq_msg_recv(&addr, mon, 0);
                    zmq_msg_close(&addr);
                }
                accepted++;
            }
            zmq_msg_close(&ev);
        }
        zmq_socket_monitor(sock, NULL, 0);
        int zero = 0;
        zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(mon);
        if (accepted < peers) {
            fprintf(stderr, "sluice-inject: only %ld of %ld peers connected to %s within %ld s "
                    "(is sluiced running with a zmq source in mode: connect?)\n", accepted, peers,
                    endpoint, wait_s);
            zmq_close(sock);
            zmq_ctx_term(ctx);
            sl_gen_destroy(&gen);
            return 1;
        }
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned long sent = 0, bytes = 0;
    double t0 = s_now(), first_send = 0, last_send = 0;
    int timed_out = 0;
    for (long l = 0; l < loops && !s_interrupted && !timed_out; l++) {
        unsigned long sent_before = sent;
        if (f) {
            rewind(f);
            clearerr(f);
        }
        for (long k = 0; !s_interrupted; k++) {
            const char *msg;
            size_t n;
            if (gen) {
                if (k >= generate)
                    break;
                msg = sl_gen_next(gen, &n);
            } else {
                ssize_t r = getline(&line, &cap, f);
                if (r <= 0)
                    break;
                while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
                    r--;
                if (r == 0)
                    continue;
                msg = line;
                n = (size_t) r;
            }
            if (duration > 0 && s_now() - t0 >= duration) {   /* ~20 ns: every send */
                timed_out = 1;
                break;
            }
            if (rate > 0) {
                double due = t0 + (double) sent / rate;
                double now = s_now();
                if (due - now >= slack) {
                    struct timespec ts = { (time_t) (due - now),
                                           (long) (((due - now) - (double) (time_t) (due - now)) * 1e9) };
                    nanosleep(&ts, NULL);
                }
            }
            /* Blocking send: waits for a peer and for queue room (back-pressure). */
            while (zmq_send(sock, msg, n, 0) < 0) {
                if (errno != EINTR || s_interrupted)
                    break;
            }
            if (!sent)
                first_send = s_wall();
            sent++;
            bytes += (unsigned long) n;
        }
        if (sent == sent_before)
            break;   /* a pass that sent nothing (empty file, read error): replaying would spin */
    }
    last_send = s_wall();
    double dt = s_now() - t0;
    /* Final handshake: the socket stays open (libzmq keeps delivering)
     * until the agent has counted everything we sent. */
    uint64_t confirmed = 0;
    int unconfirmed = 0;
    if (n_run_dirs) {
        double deadline = s_now() + (double) linger_s;
        for (;;) {
            uint64_t now_recv = 0;
            for (size_t i = 0; i < n_run_dirs; i++)
                now_recv += sl_shm_sum(shm[i], SL_C_received, SL_ROLE_INGEST);
            confirmed = now_recv > baseline ? now_recv - baseline : 0;
            if (confirmed >= sent || s_interrupted || s_now() >= deadline)
                break;
            struct timespec ts = { 0, 5000000 };
            nanosleep(&ts, NULL);
        }
        if (confirmed < sent) {
            fprintf(stderr, "sluice-inject: sluiced (run_dir %s%s) counted %llu of the %lu "
                    "notifications sent within %ld s; %llu are unaccounted for (is it stopped, "
                    "overloaded, or did a worker restart? see sluice-monitor)\n", run_dir,
                    n_run_dirs > 1 ? " and the others" : "",
                    (unsigned long long) confirmed, sent, linger_s,
                    (unsigned long long) (sent - confirmed));
            unconfirmed = 1;
        }
        for (size_t i = 0; i < n_run_dirs; i++)
            sl_shm_unmap(shm[i]);
    }
    int linger = (int) linger_s * 1000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    double total = s_now() - t0;
    if (json)
        printf("{\"sent\": %lu, \"bytes\": %lu, \"seconds\": %.6f, \"notif_per_s\": %.1f, "
               "\"first_send\": %.6f, \"last_send\": %.6f, \"seconds_with_drain\": %.6f, "
               "\"confirmed\": %lld, \"rate_offered\": %.1f}\n", sent, bytes, dt,
               dt > 0 ? (double) sent / dt : 0.0, first_send, last_send, total,
               run_dir ? (long long) confirmed : -1LL, rate);
    else
        printf("sluice-inject: sent %lu notifications (%lu bytes) in %.3f s: %.0f notif/s "
               "(%.3f s including the final drain)\n", sent, bytes, dt,
               dt > 0 ? (double) sent / dt : 0.0, total);
    free(line);
    if (f)
        fclose(f);
    sl_gen_destroy(&gen);
    return s_interrupted || unconfirmed ? 1 : 0;
}
