/* publisher_file: Ceilometer's rotation (RotatingFileHandler semantics),
 * several writers on one file (each pipeline worker has its own publisher
 * instance), option bounds, and the mode of the files it creates. */
#include <check.h>

#include "tests/sl_check.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/arena.h"
#include "worker/publishers/publisher.h"

/* A publisher called directly (no output layer): the plugin alone. */
typedef struct {
    sl_pub_url_t url_parsed;
    void *ctx;
    const char *url;
} sl_publisher_t;

static sl_publisher_t *
sl_publisher_new(const char *url, char *err, size_t errlen)
{
    sl_publisher_t *p = sl_xcalloc(1, sizeof *p);
    if (sl_pub_url_parse(&p->url_parsed, url, err, errlen) < 0 ||
        !(p->ctx = sl_pub_url_init(&p->url_parsed, 0, err, errlen))) {
        sl_pub_url_free(&p->url_parsed);
        free(p);
        return NULL;
    }
    p->url = p->url_parsed.url;
    return p;
}

static sl_pub_status_t
sl_publisher_publish_events(sl_publisher_t *p, const char *const *json, size_t n, char *err,
                            size_t errlen)
{
    if (!(p->url_parsed.plugin->flags & SL_PUB_F_EVENTS)) {
        snprintf(err, errlen, "%s publisher takes no events", p->url_parsed.plugin->name);
        return SL_PUB_ERROR;
    }
    sl_pub_batch_t b = { .kind = SL_PUB_EVENTS, .n = n, .events = json };
    return p->url_parsed.plugin->publish(p->ctx, &b, err, errlen);
}

static void
sl_publisher_destroy(sl_publisher_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    sl_publisher_t *p = *p_p;
    p->url_parsed.plugin->destroy(&p->ctx);
    sl_pub_url_free(&p->url_parsed);
    free(p);
    *p_p = NULL;
}
#include "worker/publishers/file.h"

static char s_dir[64];

static void
s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/sluice-pubfile-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
}

static void
s_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (!getenv("SLUICE_KEEP_TEST_DIRS") && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_dir);
}

static const char *
s_path(const char *suffix)
{
    static char bufs[4][256];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 256, "%s/out.jsonl%s", s_dir, suffix);
    return b;
}

static sl_publisher_t *
s_new(const char *query)
{
    char url[512], err[512];
    snprintf(url, sizeof url, "file://%s?%s", s_path(""), query);
    sl_publisher_t *p = sl_publisher_new(url, err, sizeof err);
    ck_assert_msg(p != NULL, "publisher %s: %s", url, err);
    return p;
}

/* Publishes lines (NULL-terminated) as one batch. */
static void
s_publish(sl_publisher_t *p, const char *const *lines)
{
    size_t n = 0;
    while (lines[n])
        n++;
    char err[256];
    sl_pub_status_t st = sl_publisher_publish_events(p, lines, n, err, sizeof err);
    ck_assert_msg(st == SL_PUB_OK, "publish failed (%d): %s", (int) st, err);
}

static long
s_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long) st.st_size : -1;
}

static int
s_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

START_TEST(rotation_follows_rotating_file_handler)
{
    /* 100 bytes, 2 backups: a batch that would make the file reach
     * max_bytes rotates it first; the oldest backup falls off. */
    sl_publisher_t *p = s_new("max_bytes=100&backup_count=2");
    char a[60], b[40], c[60], d[60];
    memset(a, 'a', sizeof a - 1), a[sizeof a - 1] = '\0';   /* 60 bytes with its newline */
    memset(b, 'b', sizeof b - 2), b[sizeof b - 2] = '\0';   /* 39 bytes: 60 + 39 < 100 */
    memset(c, 'c', sizeof c - 1), c[sizeof c - 1] = '\0';
    memset(d, 'd', sizeof d - 1), d[sizeof d - 1] = '\0';
    s_publish(p, (const char *[]) { a, NULL });
    s_publish(p, (const char *[]) { b, NULL });
    ck_assert_msg(s_size(s_path("")) == 99 && s_size(s_path(".1")) == -1,
                  "expected 99 bytes and no backup, got %ld and .1 of %ld",
                  s_size(s_path("")), s_size(s_path(".1")));
    s_publish(p, (const char *[]) { c, NULL });     /* 99 + 60 >= 100: rotate first */
    ck_assert_int_eq(s_size(s_path(".1")), 99);
    ck_assert_int_eq(s_size(s_path("")), 60);
    s_publish(p, (const char *[]) { d, NULL });
    s_publish(p, (const char *[]) { a, NULL });
    ck_assert_msg(s_contains(s_path(".2"), "ccc") && s_contains(s_path(".1"), "ddd") &&
                  s_contains(s_path(""), "aaa") && s_size(s_path(".3")) == -1,
                  "expected .2 = c, .1 = d, current = a and no .3");
    sl_publisher_destroy(&p);
    /* max_bytes without backup_count never rotates (Python's handler neither). */
    p = s_new("max_bytes=10&backup_count=0");
    s_publish(p, (const char *[]) { a, NULL });
    s_publish(p, (const char *[]) { a, NULL });
    ck_assert_int_eq(s_size(s_path("")), 3 * 60);   /* a, then a and a */
    sl_publisher_destroy(&p);
}
END_TEST

START_TEST(a_writer_follows_a_rotation_done_by_another)
{
    /* Two pipeline workers, one file: A writes large batches and rotates;
     * B's small batch after that must go to the new file, not to .1. */
    sl_publisher_t *a = s_new("max_bytes=1000&backup_count=3");
    sl_publisher_t *b = s_new("max_bytes=1000&backup_count=3");
    s_publish(b, (const char *[]) { "{\"w\":\"b\",\"n\":0}", NULL });
    char big[200];
    memset(big, 'x', sizeof big - 1), big[sizeof big - 1] = '\0';
    for (int i = 0; i < 10 && s_size(s_path(".1")) < 0; i++)
        s_publish(a, (const char *[]) { big, big, NULL });
    ck_assert_msg(s_size(s_path(".1")) > 0, "A never rotated");
    long backup = s_size(s_path(".1"));
    s_publish(b, (const char *[]) { "{\"w\":\"b\",\"n\":1}", NULL });
    ck_assert_msg(s_size(s_path(".1")) == backup && !s_contains(s_path(".1"), "\"n\":1"),
                  "B appended to out.jsonl.1 after A rotated (size %ld -> %ld)", backup,
                  s_size(s_path(".1")));
    ck_assert_msg(s_contains(s_path(""), "\"n\":1"), "B's line is not in the current file");
    sl_publisher_destroy(&a);
    sl_publisher_destroy(&b);
}
END_TEST

START_TEST(a_removed_output_file_is_created_again)
{
    sl_publisher_t *p = s_new("json");
    s_publish(p, (const char *[]) { "{\"n\":1}", NULL });
    ck_assert_int_eq(unlink(s_path("")), 0);
    s_publish(p, (const char *[]) { "{\"n\":2}", NULL });
    ck_assert_msg(s_contains(s_path(""), "\"n\":2"),
                  "after the file was removed, the next batch went to the removed file");
    sl_publisher_destroy(&p);
}
END_TEST

static void
s_check_refused(const char *query, const char *want1, const char *want2)
{
    char url[256], err[512];
    snprintf(url, sizeof url, "file:///tmp/x.jsonl?%s", query);
    err[0] = '\0';
    ck_assert_msg(sl_publisher_check(url, err, sizeof err) < 0, "%s was accepted", query);
    ck_assert_msg(strstr(err, want1) && strstr(err, want2),
                  "error for %s should contain '%s' and '%s', got: %s", query, want1, want2, err);
}

static void
s_check_accepted(const char *query)
{
    char url[256], err[512];
    snprintf(url, sizeof url, "file:///tmp/x.jsonl?%s", query);
    ck_assert_msg(sl_publisher_check(url, err, sizeof err) == 0, "%s refused: %s", query, err);
}

START_TEST(options_out_of_range_are_refused_with_the_range_and_what_to_write)
{
    s_check_refused("max_bytes=-1", "max_bytes", "from 0 to 1125899906842624");
    s_check_refused("max_bytes=-1", "max_bytes=104857600", "2^50");
    s_check_refused("max_bytes=1125899906842625", "max_bytes", "1125899906842624");
    s_check_refused("max_bytes=99999999999999999999999", "max_bytes", "1125899906842624");
    s_check_refused("max_bytes=+5", "max_bytes", "whole number");
    s_check_refused("max_bytes= 5", "max_bytes", "whole number");
    s_check_refused("max_bytes=1e3", "max_bytes", "whole number");
    s_check_refused("max_bytes=", "max_bytes", "whole number");
    s_check_refused("backup_count=4294967295", "backup_count", "from 0 to 1000");
    s_check_refused("backup_count=4294967296", "backup_count", "backup_count=5");
    s_check_refused("backup_count=1001", "backup_count", "from 0 to 1000");
    s_check_refused("backup_count=-1", "backup_count", "from 0 to 1000");
    s_check_refused("max_bytes=100&backup_count=2&colour=red", "colour", "known:");
    s_check_accepted("max_bytes=0&backup_count=0");
    s_check_accepted("max_bytes=1125899906842624&backup_count=1000");
    s_check_accepted("max_bytes=104857600&backup_count=5&json");
}
END_TEST

/* Two processes append to one file with rotation, in batches of random
 * sizes. Every batch takes a number from a shared counter before it is
 * published. Checked: no line lost or torn; each writer's lines in order
 * across the files; every backup was rotated at its threshold (never twice
 * for one threshold); and no batch was written into a file after another
 * writer had written into a newer one: if batch t sits in an older file
 * than batch s and s < t, then t was taken before s's writer took its next
 * number (the two batches were in flight together). A writer that kept
 * appending to .1 after a rotation breaks that. */
#define S_BATCHES 1500
#define S_MAX_BYTES 4096
#define S_BACKUPS 1000

typedef struct {
    int  writer;
    long batch, next;
    int  line;
} s_rec_t;

static void
s_writer(int w, _Atomic long *counter, long *nexts)
{
    sl_publisher_t *p = s_new("max_bytes=4096&backup_count=1000");
    unsigned seed = 12345u + (unsigned) w;
    char lines[8][128];
    const char *batch[9];
    long prev = -1;
    for (int b = 0; b < S_BATCHES; b++) {
        long seq = atomic_fetch_add(counter, 1);
        if (prev >= 0)
            nexts[prev] = seq;     /* the writer's next number after batch prev */
        int n = 1 + (int) (rand_r(&seed) % 8);
        for (int i = 0; i < n; i++) {
            snprintf(lines[i], sizeof lines[i], "{\"w\":%d,\"b\":%ld,\"i\":%d,\"pad\":\"%.*s\"}", w,
                     seq, i, (int) (rand_r(&seed) % 40), "........................................");
            batch[i] = lines[i];
        }
        batch[n] = NULL;
        s_publish(p, batch);
        prev = seq;
    }
    nexts[prev] = -1;
    sl_publisher_destroy(&p);
}

START_TEST(two_processes_rotating_under_load_lose_nothing_and_keep_order)
{
    size_t total = 2 * S_BATCHES;
    size_t shsize = sizeof(_Atomic long) + total * sizeof(long);
    void *sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(sh != MAP_FAILED);
    _Atomic long *counter = sh;
    long *nexts = (long *) ((char *) sh + sizeof(_Atomic long));
    atomic_store(counter, 0);
    pid_t pids[2];
    for (int w = 0; w < 2; w++) {
        pids[w] = fork();
        ck_assert(pids[w] >= 0);
        if (pids[w] == 0) {
            s_writer(w, counter, nexts);
            _exit(0);
        }
    }
    for (int w = 0; w < 2; w++) {
        int st;
        ck_assert_int_eq(waitpid(pids[w], &st, 0), pids[w]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed (status %d)", w, st);
    }
    /* Read the files oldest first: out.jsonl.K ... out.jsonl.1, out.jsonl. */
    int nfiles = 0;
    while (s_size(s_path("")) >= 0 && nfiles < S_BACKUPS) {
        char sfx[16];
        snprintf(sfx, sizeof sfx, ".%d", nfiles + 1);
        if (s_size(s_path(sfx)) < 0)
            break;
        nfiles++;
    }
    ck_assert_msg(nfiles > 20 && nfiles < S_BACKUPS, "expected many rotations, got %d", nfiles);
    size_t cap = total * 8 + 16, n = 0;
    s_rec_t *recs = calloc(cap, sizeof *recs);
    int *file_of = calloc(total, sizeof *file_of);
    long last_line[2] = { -1, -1 };
    for (int k = nfiles; k >= 0; k--) {
        char sfx[16] = "";
        if (k)
            snprintf(sfx, sizeof sfx, ".%d", k);
        const char *path = s_path(sfx);
        long size = s_size(path);
        if (k)   /* rotated because its size plus the next batch reached max_bytes */
            ck_assert_msg(size < S_MAX_BYTES && size >= S_MAX_BYTES - 8 * 128,
                          "%s has %ld bytes: not rotated at its threshold (%d)", path, size,
                          S_MAX_BYTES);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        char line[512];
        while (fgets(line, sizeof line, f)) {
            s_rec_t r = { 0 };
            ck_assert_msg(sscanf(line, "{\"w\":%d,\"b\":%ld,\"i\":%d,", &r.writer, &r.batch,
                                 &r.line) == 3 && strchr(line, '\n') && strstr(line, "\"}\n"),
                          "torn or foreign line in %s: %s", path, line);
            ck_assert(n < cap && r.batch >= 0 && (size_t) r.batch < total);
            long key = r.batch * 8 + r.line;
            ck_assert_msg(key > last_line[r.writer],
                          "writer %d's line %ld.%d comes after %ld.%ld (lost order or duplicate)",
                          r.writer, r.batch, r.line, last_line[r.writer] / 8,
                          last_line[r.writer] % 8);
            last_line[r.writer] = key;
            file_of[r.batch] = k;
            recs[n++] = r;
        }
        fclose(f);
    }
    /* Nothing lost: every batch number appears, and each with all its lines
     * (per-writer order above + the line index restarting at 0). */
    size_t batches = 0;
    for (size_t i = 0; i < n; i++)
        batches += recs[i].line == 0;
    ck_assert_msg(batches == total, "expected %zu batches, found %zu", total, batches);
    /* No batch written into an older file after a newer one got a batch
     * that was not in flight with it. file_of: higher = older. */
    for (size_t s = 0; s < total; s++) {
        if (nexts[s] < 0)
            continue;
        for (size_t t = s + 1; t < total; t++) {
            if (file_of[t] > file_of[s])
                ck_assert_msg((long) t < nexts[s],
                              "batch %zu is in out.jsonl.%d but batch %zu (whose writer had "
                              "moved on to %ld) is already in the newer file %d: a writer "
                              "appended to a rotated file", t, file_of[t], s, nexts[s],
                              file_of[s]);
        }
    }
    free(recs);
    free(file_of);
    munmap(sh, shsize);
}
END_TEST

START_TEST(output_files_follow_the_operators_umask_but_are_never_world_writable)
{
    /* sluiced runs with umask(operator | 027); the publisher's files keep
     * the operator's umask instead. */
    mode_t old = umask(027);
    sl_publisher_file_set_umask(0);
    sl_publisher_t *p = s_new("max_bytes=10&backup_count=1");
    struct stat st;
    ck_assert_int_eq(stat(s_path(""), &st), 0);
    ck_assert_msg((st.st_mode & 0777) == 0644, "umask 000: expected 0644, got %o",
                  st.st_mode & 0777);
    s_publish(p, (const char *[]) { "{\"n\":1}", NULL });
    s_publish(p, (const char *[]) { "{\"n\":2}", NULL });     /* rotates: a new file */
    ck_assert_int_eq(stat(s_path(""), &st), 0);
    ck_assert_msg((st.st_mode & 0777) == 0644, "after rotation: expected 0644, got %o",
                  st.st_mode & 0777);
    sl_publisher_destroy(&p);
    unlink(s_path(""));
    unlink(s_path(".1"));
    sl_publisher_file_set_umask(077);
    p = s_new("json");
    ck_assert_int_eq(stat(s_path(""), &st), 0);
    ck_assert_msg((st.st_mode & 0777) == 0600, "umask 077: expected 0600, got %o",
                  st.st_mode & 0777);
    sl_publisher_destroy(&p);
    umask(old);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("publisher_file");
    TCase *tc = tcase_create("publisher_file");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rotation_follows_rotating_file_handler);
    tcase_add_test(tc, a_writer_follows_a_rotation_done_by_another);
    tcase_add_test(tc, a_removed_output_file_is_created_again);
    tcase_add_test(tc, options_out_of_range_are_refused_with_the_range_and_what_to_write);
    tcase_add_test(tc, two_processes_rotating_under_load_lose_nothing_and_keep_order);
    tcase_add_test(tc, output_files_follow_the_operators_umask_but_are_never_world_writable);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
