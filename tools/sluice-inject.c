/* sluice-inject — replay a JSON Lines notification file to a ZeroMQ endpoint.
 *
 * Binds (default) or connects a PUSH socket and sends one notification per
 * line, as fast as possible or at --rate per second, optionally --loop times,
 * then reports how many were sent and the rate. With a zmq source in
 * `mode: connect`, sluice's ingest workers connect to the endpoint this
 * binds, and ZeroMQ spreads the lines over them. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

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

static void
s_usage(FILE *out)
{
    fprintf(out,
        "usage: sluice-inject --endpoint EP [--connect] [--rate N] [--loop N] [--wait-peer S] FILE\n"
        "  --endpoint EP   ZeroMQ endpoint (tcp://127.0.0.1:5557, ipc:///run/sluice/notify.sock)\n"
        "  --connect       connect instead of bind (for a zmq source in mode: bind)\n"
        "  --rate N        notifications per second (default: as fast as possible)\n"
        "  --loop N        send the file N times (default 1)\n"
        "  --linger S      seconds to wait at the end for the queue to drain (default 30)\n"
        "  --peers N       (bind mode) wait until N peers have connected before sending,\n"
        "                  so that ZeroMQ spreads the file over all of them (default 1)\n"
        "  --wait S        give up waiting for peers after S seconds (default 30)\n");
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
        { "wait", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *endpoint = NULL;
    int connect = 0, opt;
    double rate = 0;
    long loops = 1, linger_s = 30, peers = 1, wait_s = 30;
    while ((opt = getopt_long(argc, argv, "e:cr:l:L:p:w:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'e': endpoint = optarg; break;
        case 'c': connect = 1; break;
        case 'r': rate = atof(optarg); break;
        case 'l': loops = atol(optarg); break;
        case 'L': linger_s = atol(optarg); break;
        case 'p': peers = atol(optarg); break;
        case 'w': wait_s = atol(optarg); break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (!endpoint || optind != argc - 1 || loops < 1) {
        s_usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sluice-inject: cannot open %s: %s\n", path, strerror(errno));
        return 1;
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
            return 1;
        }
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned long sent = 0, bytes = 0;
    double t0 = s_now();
    for (long l = 0; l < loops && !s_interrupted; l++) {
        rewind(f);
        ssize_t n;
        while (!s_interrupted && (n = getline(&line, &cap, f)) > 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                n--;
            if (n == 0)
                continue;
            if (rate > 0) {
                double due = t0 + (double) sent / rate;
                double now = s_now();
                if (due > now) {
                    struct timespec ts = { (time_t) (due - now),
                                           (long) (((due - now) - (double) (time_t) (due - now)) * 1e9) };
                    nanosleep(&ts, NULL);
                }
            }
            /* Blocking send: waits for a peer and for queue room (back-pressure). */
            while (zmq_send(sock, line, (size_t) n, 0) < 0) {
                if (errno != EINTR || s_interrupted)
                    break;
            }
            sent++;
            bytes += (unsigned long) n;
        }
    }
    double dt = s_now() - t0;
    int linger = (int) linger_s * 1000;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    double total = s_now() - t0;
    printf("sluice-inject: sent %lu notifications (%lu bytes) in %.3f s: %.0f notif/s "
           "(%.3f s including the final drain)\n", sent, bytes, dt, dt > 0 ? (double) sent / dt : 0.0,
           total);
    free(line);
    fclose(f);
    return s_interrupted ? 1 : 0;
}
