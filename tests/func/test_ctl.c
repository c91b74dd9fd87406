/* The control socket and sluice-ctl against a real sluiced: every command
 * through the real binary and the socket itself, and worker counts changed
 * at run time (SIGTTIN / SIGTTOU, sluice-ctl workers) mid-stream without
 * losing, repeating or changing a sample. */
#include <check.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "common/json.h"
#include "tests/func/harness.h"
#include "tests/sl_check.h"

#define S_CTL SL_BUILDDIR "/tools/sluice-ctl"

static const char *const s_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id",
    "timestamp", "resource_metadata", "source", "message_id", NULL,
};

/* Runs sluice-ctl --run-dir <dir> ARGS; its exit status (-1 if it did not
 * exit normally) and its stdout (malloc'd) in *out. */
static int
s_ctl(sl_h_agent_t *a, char **out, const char *args)
{
    char *path = sl_h_path(a, "ctl.out");
    int st = sl_h_run("%s --run-dir %s %s > %s 2>&1", S_CTL, a->dir, args, path);
    *out = sl_h_slurp(path, NULL);
    if (!*out)
        *out = strdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Connects to <dir>/control.sock; the fd (the test fails otherwise). */
static int
s_connect(sl_h_agent_t *a)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%.*s/control.sock",
                     (int) (sizeof sa.sun_path - 14), a->dir);
    ck_assert_msg(n > 0 && (size_t) n < sizeof sa.sun_path, "run dir too long: %s", a->dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_msg(fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0,
                  "cannot connect to %s: %s", sa.sun_path, strerror(errno));
    struct timeval tv = { 30, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends one raw request over the socket, returns the first answer line. */
static char *
s_raw(sl_h_agent_t *a, const char *request)
{
    int fd = s_connect(a);
    ck_assert_int_eq(write(fd, request, strlen(request)), (ssize_t) strlen(request));
    static char line[65536];
    size_t len = 0;
    while (len < sizeof line - 1) {
        ssize_t r = read(fd, line + len, 1);
        if (r <= 0 || line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    close(fd);
    return line;
}

static yajl_val
s_parse(const char *text)
{
    char err[256];
    yajl_val v = yajl_tree_parse(text, err, sizeof err);
    ck_assert_msg(v != NULL, "answer is not JSON (%s): %s", err, text);
    return v;
}

static int
s_is_true(yajl_val v, const char *key)
{
    yajl_val x = sl_json_get(v, key);
    return x && YAJL_IS_TRUE(x);
}

static int s_want_gen, s_want_ingest, s_want_pipeline;

static int
s_layout(sl_h_agent_t *a)
{
    int n = (int) (atomic_load(&a->shm->n_ingest) + atomic_load(&a->shm->n_pipeline));
    int running = 0;
    for (int i = 0; i < n; i++)
        running += atomic_load(&a->shm->slots[i].state) == SL_WS_RUNNING;
    return (int) atomic_load(&a->shm->generation) == s_want_gen &&
           (int) atomic_load(&a->shm->n_ingest) == s_want_ingest &&
           (int) atomic_load(&a->shm->n_pipeline) == s_want_pipeline && running == n;
}

static void
s_expect_layout(sl_h_agent_t *a, int gen, int ingest, int pipeline, const char *after)
{
    s_want_gen = gen;
    s_want_ingest = ingest;
    s_want_pipeline = pipeline;
    ck_assert_msg(sl_h_wait(a, s_layout, 30000) == 0,
                  "after %s: expected generation %d with %d ingest + %d pipeline workers "
                  "running, got generation %u with %u + %u", after, gen, ingest, pipeline,
                  atomic_load(&a->shm->generation), atomic_load(&a->shm->n_ingest),
                  atomic_load(&a->shm->n_pipeline));
}

/* Starts `sluice-ctl watch what` with its stdout in <dir>/watch.out. */
static pid_t
s_watch_start(sl_h_agent_t *a, const char *what)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(sl_h_path(a, "watch.out"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        execl(S_CTL, "sluice-ctl", "--run-dir", a->dir, "watch", what, (char *) NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until watch.out holds needle; 0 or -1. */
static int
s_watch_saw(sl_h_agent_t *a, const char *needle, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 100) {
        char *text = sl_h_slurp(sl_h_path(a, "watch.out"), NULL);
        int found = text && strstr(text, needle);
        free(text);
        if (found)
            return 0;
        sl_h_sleep_ms(100);
    }
    return -1;
}

START_TEST(every_control_command_answers_through_sluice_ctl_and_the_socket)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "ctl");
    char src[512];
    snprintf(src, sizeof src, "  - {type: zmq, endpoint: 'ipc://%s/notify.sock', mode: connect}\n",
             a.dir);
    sl_h_write_basic(&a, src, 1, 1, 4, NULL);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);

    /* the socket: there, a socket, mode 0600 */
    struct stat st;
    ck_assert_msg(stat(sl_h_path(&a, "control.sock"), &st) == 0, "no control.sock in run_dir");
    ck_assert_msg(S_ISSOCK(st.st_mode), "control.sock is not a socket");
    ck_assert_msg((st.st_mode & 0777) == 0600, "control.sock has mode %o, expected 600",
                  st.st_mode & 0777);

    /* status, through sluice-ctl */
    char *out;
    ck_assert_int_eq(s_ctl(&a, &out, "status"), 0);
    yajl_val v = s_parse(out);
    ck_assert_msg(s_is_true(v, "ok"), "status not ok: %s", out);
    ck_assert_int_eq(YAJL_GET_INTEGER(sl_json_get(v, "generation")), 1);
    yajl_val workers = sl_json_get(v, "workers");
    ck_assert_msg(YAJL_IS_ARRAY(workers) && workers->u.array.len == 2, "expected 2 workers: %s",
                  out);
    const char *roles[] = { "ingest", "pipeline" };
    for (int i = 0; i < 2; i++) {
        yajl_val w = workers->u.array.values[i];
        ck_assert_str_eq(YAJL_GET_STRING(sl_json_get(w, "role")), roles[i]);
        ck_assert_str_eq(YAJL_GET_STRING(sl_json_get(w, "state")), "running");
        ck_assert_int_eq(YAJL_GET_INTEGER(sl_json_get(w, "pid")),
                         atomic_load(&a.shm->slots[i].pid));
        ck_assert_msg(sl_json_get(w, "restarts") != NULL, "no restarts in %s", out);
    }
    ck_assert_msg(sl_json_get(sl_json_get(v, "totals"), "received") != NULL, "no totals: %s", out);
    yajl_tree_free(v);
    free(out);

    /* config: what sluiced --dump-config prints */
    ck_assert_int_eq(s_ctl(&a, &out, "config"), 0);
    int rc = sl_h_run("%s/supervisor/sluiced -c %s --dump-config > %s", SL_BUILDDIR,
                      sl_h_path(&a, "sluice.yaml"), sl_h_path(&a, "dump.out"));
    ck_assert_int_eq(rc, 0);
    char *dump = sl_h_slurp(sl_h_path(&a, "dump.out"), NULL);
    ck_assert_msg(dump && strcmp(out, dump) == 0, "config differs from --dump-config:\n%s\n"
                  "---\n%s", out, dump ? dump : "");
    free(dump);
    free(out);

    /* the socket itself: a status, an unknown command, a bad count */
    v = s_parse(s_raw(&a, "status\n"));
    ck_assert_msg(s_is_true(v, "ok"), "raw status not ok");
    yajl_tree_free(v);
    char *line = s_raw(&a, "frobnicate now\n");
    ck_assert_msg(strstr(line, "\"ok\":false") && strstr(line, "unknown request 'frobnicate'"),
                  "unknown command answered: %s", line);
    ck_assert_int_eq(s_ctl(&a, &out, "frobnicate"), 1);
    ck_assert_msg(strstr(out, "unknown request"), "sluice-ctl frobnicate printed: %s", out);
    free(out);
    line = s_raw(&a, "workers ingest 0\n");
    ck_assert_msg(strstr(line, "\"ok\":false"), "workers ingest 0 accepted: %s", line);

    /* watch drops sees a malformed notification counted */
    pid_t watch = s_watch_start(&a, "drops");
    ck_assert_msg(s_watch_saw(&a, "\"snapshot\"", 10000) == 0, "watch drops gave no first line");
    sl_h_write(&a, "bad.jsonl", "{not json\n");
    rc = sl_h_run("%s/tools/sluice-inject --endpoint 'ipc://%s/notify.sock' --linger 10 "
                  "--run-dir %s %s >/dev/null", SL_BUILDDIR, a.dir, a.dir,
                  sl_h_path(&a, "bad.jsonl"));
    ck_assert_msg(rc == 0, "sluice-inject failed: %d", rc);
    ck_assert_msg(s_watch_saw(&a, "\"drop_malformed_json\":{\"delta\":1,\"total\":1}", 10000) == 0,
                  "watch drops did not report the malformed notification");
    kill(watch, SIGTERM);
    waitpid(watch, NULL, 0);

    /* every other watch gives its first line */
    static const char *const kinds[] = { "retries", "leases", "sockets" };
    for (int i = 0; i < 3; i++) {
        char req[64];
        snprintf(req, sizeof req, "watch %s\n", kinds[i]);
        line = s_raw(&a, req);
        ck_assert_msg(strstr(line, "\"snapshot\""), "watch %s: %s", kinds[i], line);
        if (i == 1)
            ck_assert_msg(strstr(line, "\"pipeline#0.holds\":{\"delta\":0,\"total\":4}"),
                          "watch leases: pipeline #0 should hold the 4 partitions: %s", line);
        if (i == 2) {
            ck_assert_msg(strstr(line, "\"ingest#0.state\":\"running\"") &&
                          strstr(line, "ingest#0.frames_sent"), "watch sockets: %s", line);
            /* ZeroMQ's monitor: ingest #0 connected to its partition's
             * holder, which counts it as a peer (a gauge: value, no delta) */
            yajl_val wv = s_parse(line);
            const char *hs[] = { "snapshot", "ingest#0.zmq.handshakes", "total", NULL };
            const char *pp[] = { "snapshot", "pipeline#0.zmq.peers", "value", NULL };
            yajl_val t = yajl_tree_get(wv, hs, yajl_t_number);
            ck_assert_msg(t && YAJL_GET_INTEGER(t) >= 1,
                          "watch sockets: no ZeroMQ handshake counted for ingest #0: %s", line);
            t = yajl_tree_get(wv, pp, yajl_t_number);
            ck_assert_msg(t && YAJL_GET_INTEGER(t) >= 1,
                          "watch sockets: pipeline #0 has no ZeroMQ peer: %s", line);
            yajl_tree_free(wv);
        }
    }

    /* reload with a broken pipeline: refused with the reason, old config kept */
    char *good = sl_h_slurp(sl_h_path(&a, "pipeline.yaml"), NULL);
    sl_h_write(&a, "pipeline.yaml", "sources:\n  - name: s\n    meters: ['*']\n    sinks: [nope]\n"
               "sinks: []\n");
    ck_assert_int_eq(s_ctl(&a, &out, "reload"), 1);
    ck_assert_msg(strstr(out, "\"ok\":false") && strstr(out, "pipeline.yaml:"),
                  "a rejected reload should say why with file:line: %s", out);
    free(out);
    ck_assert_uint_eq(atomic_load(&a.shm->generation), 1);
    ck_assert_uint_eq(atomic_load(&a.shm->sv[SL_SV_reload_failures]), 1);
    sl_h_write(&a, "pipeline.yaml", good);
    free(good);
    ck_assert_int_eq(s_ctl(&a, &out, "reload"), 0);
    ck_assert_msg(strstr(out, "\"ok\":true") && strstr(out, "\"generation\":2"), "reload: %s", out);
    free(out);
    s_expect_layout(&a, 2, 1, 1, "reload");

    /* worker counts, both kinds, relative and absolute */
    ck_assert_int_eq(s_ctl(&a, &out, "workers ingest +1"), 0);
    free(out);
    s_expect_layout(&a, 3, 2, 1, "workers ingest +1");
    ck_assert_int_eq(s_ctl(&a, &out, "workers pipeline 3"), 0);
    free(out);
    s_expect_layout(&a, 4, 2, 3, "workers pipeline 3");
    ck_assert_int_eq(s_ctl(&a, &out, "workers pipeline -1"), 0);
    free(out);
    s_expect_layout(&a, 5, 2, 2, "workers pipeline -1");
    ck_assert_int_eq(s_ctl(&a, &out, "workers ingest -2"), 1);
    ck_assert_msg(strstr(out, "out of bounds"), "workers ingest -2 (to 0): %s", out);
    free(out);
    /* the runtime counts survive a reload of an unchanged file */
    ck_assert_int_eq(s_ctl(&a, &out, "reload"), 0);
    free(out);
    s_expect_layout(&a, 6, 2, 2, "a reload after runtime counts");
    /* SIGTTIN / SIGTTOU */
    kill(a.pid, SIGTTIN);
    s_expect_layout(&a, 7, 3, 2, "SIGTTIN");
    kill(a.pid, SIGTTOU);
    s_expect_layout(&a, 8, 2, 2, "SIGTTOU");
    /* a file that now says another pipeline count wins over the runtime
     * one; the ingest count the file still says 1 for keeps its runtime 2 */
    sl_h_write_basic(&a, src, 1, 4, 4, NULL);
    ck_assert_int_eq(s_ctl(&a, &out, "reload"), 0);
    free(out);
    s_expect_layout(&a, 9, 2, 4, "a reload of a file with a new pipeline count");
    ck_assert_int_eq(s_ctl(&a, &out, "status"), 0);
    ck_assert_msg(strstr(out, "\"runtime_override\":{\"ingest\":2}"), "status: %s", out);
    free(out);

    /* stop: answered, then a graceful exit 0 and the socket removed */
    ck_assert_int_eq(s_ctl(&a, &out, "stop"), 0);
    ck_assert_msg(strstr(out, "\"ok\":true"), "stop: %s", out);
    free(out);
    int status = -1;
    for (int t = 0; t < 30000; t += 20) {
        if (waitpid(a.pid, &status, WNOHANG) == a.pid) {
            a.pid = 0;
            break;
        }
        sl_h_sleep_ms(20);
    }
    ck_assert_msg(a.pid == 0, "sluiced did not stop after 'stop'");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    ck_assert_msg(access(sl_h_path(&a, "control.sock"), F_OK) != 0,
                  "control.sock left behind after a stop");
    ck_assert_int_eq(s_ctl(&a, &out, "status"), 3);
    free(out);
    char *log = sl_h_slurp(a.log, NULL);
    ck_assert_msg(log && strstr(log, "workers: 1 ingest (configured), 1 pipeline (configured)"),
                  "the start log does not say the worker counts and why");
    free(log);
    sl_h_cleanup(&a);
}
END_TEST

#define S_COPIES 400

static int
s_all_written(sl_h_agent_t *a)
{
    return sl_h_count_lines(sl_h_path(a, "samples.jsonl")) >= sl_h_corpus_samples(S_COPIES);
}

START_TEST(ttin_and_ttou_mid_stream_neither_lose_nor_repeat_a_notification)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, "ttin");
    sl_h_write_corpus(sl_h_path(&a, "input.jsonl"), S_COPIES);
    sl_h_write_basic(&a, "  - {type: file, path: input.jsonl, rate: 15000}\n", 2, 2, 8, NULL);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "sluiced did not start; see %s", a.log);
    sl_h_sleep_ms(700);
    ck_assert_msg(sl_h_total(&a, SL_C_received) < 125 * S_COPIES,
                  "SIGTTIN should land mid-stream (received %llu)",
                  (unsigned long long) sl_h_total(&a, SL_C_received));
    kill(a.pid, SIGTTIN);
    s_expect_layout(&a, 2, 3, 2, "SIGTTIN");
    ck_assert_msg(sl_h_total(&a, SL_C_received) < 125 * S_COPIES / 2 + 125 * S_COPIES,
                  "sanity");
    kill(a.pid, SIGTTOU);
    s_expect_layout(&a, 3, 2, 2, "SIGTTOU");
    kill(a.pid, SIGTTOU);
    s_expect_layout(&a, 4, 1, 2, "a second SIGTTOU");
    kill(a.pid, SIGTTOU);   /* not below 1: refused, logged, nothing rolls */
    ck_assert_msg(sl_h_wait(&a, s_all_written, 60000) == 0, "only %zu of %zu samples written",
                  sl_h_count_lines(sl_h_path(&a, "samples.jsonl")), sl_h_corpus_samples(S_COPIES));
    sl_h_sleep_ms(300);   /* anything extra (a repeat) would show up now */
    ck_assert_uint_eq(atomic_load(&a.shm->generation), 4);
    sl_h_stop_ok(&a, 30000, NULL);
    ck_assert_msg(sl_h_samples_are_corpus(&a, S_COPIES, s_fields), "samples across TTIN/TTOU "
                  "differ from %d x the "
                  "corpus's (%zu lines written)", S_COPIES,
                  sl_h_count_lines(sl_h_path(&a, "samples.jsonl")));
    char *log = sl_h_slurp(a.log, NULL);
    ck_assert_msg(log && strstr(log, "not changing the ingest workers") &&
                  strstr(log, "out of bounds"), "the refused SIGTTOU (below 1) is not logged");
    free(log);
    sl_h_cleanup(&a);
}
END_TEST

/* ---- stateful transformers across `workers pipeline +1` ---- */

#define S_N 6000
static const char *const s_state_fields[] = {
    "name", "type", "unit", "volume", "user_id", "project_id", "resource_id",
    "timestamp", "resource_metadata", "source", NULL,
};

/* The canonical output of the three stateful sinks; grow: sluice-ctl
 * workers pipeline +1 mid-stream. */
static char *
s_state_run(const char *tag, int ingest, int pipeline, int grow)
{
    sl_h_agent_t a;
    sl_h_mkdir(&a, tag);
    ck_assert_int_eq(sl_h_run("%s/tools/sluice-inject --generate %d --seed 7 --resources 200 "
                              "--output %s", SL_BUILDDIR, S_N, sl_h_path(&a, "input.jsonl")), 0);
    sl_h_write_stateful(&a, "input.jsonl", ingest, pipeline, grow ? 4000 : 0, 0);
    ck_assert_msg(sl_h_start(&a, 10000) == 0, "%s: sluiced did not start; see %s", tag, a.log);
    if (grow) {
        sl_h_sleep_ms(600);
        ck_assert_msg(sl_h_total(&a, SL_C_received) < S_N, "%s: the change must land mid-stream",
                      tag);
        char *out;
        ck_assert_int_eq(s_ctl(&a, &out, "workers pipeline +1"), 0);
        ck_assert_msg(strstr(out, "\"pipeline\":3"), "%s: %s", tag, out);
        free(out);
        s_expect_layout(&a, 2, ingest, pipeline + 1, "workers pipeline +1");
    }
    ck_assert_msg(sl_h_wait(&a, sl_h_input_done, 60000) == 0, "%s: input not consumed", tag);
    sl_h_stop_ok(&a, 30000, tag);
    char *all = sl_h_stateful_outputs(&a, s_state_fields, tag);
    sl_h_cleanup(&a);
    return all;
}

START_TEST(workers_pipeline_plus_one_keeps_stateful_transformers_exact)
{
    char *one = s_state_run("ctl-state-1x1", 1, 1, 0);
    ck_assert_msg(strstr(one, "\"name\":\"rate\"") && strstr(one, "\"name\":\"change\""),
                  "the stateful sinks produced no transformed samples");
    char *grown = s_state_run("ctl-state-grow", 2, 2, 1);
    if (strcmp(one, grown) != 0) {
        FILE *f = fopen("/tmp/sluice-ctl-state.want", "w");
        fputs(one, f);
        fclose(f);
        f = fopen("/tmp/sluice-ctl-state.got", "w");
        fputs(grown, f);
        fclose(f);
        sl_h_run("diff /tmp/sluice-ctl-state.want /tmp/sluice-ctl-state.got | head -20 >&2");
        ck_abort_msg("2 ingest + 2 -> 3 pipeline (sluice-ctl workers pipeline +1) differs "
                     "from 1 + 1 (diff above, files in /tmp/sluice-ctl-state.*)");
    }
    free(one);
    free(grown);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("ctl");
    TCase *tc = tcase_create("ctl");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_control_command_answers_through_sluice_ctl_and_the_socket);
    tcase_add_test(tc, ttin_and_ttou_mid_stream_neither_lose_nor_repeat_a_notification);
    tcase_add_test(tc, workers_pipeline_plus_one_keeps_stateful_transformers_exact);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
