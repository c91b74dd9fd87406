/* yconf: YAML tree with line numbers, anchors, aliases and merge keys. */
#include <check.h>

#include "tests/sl_check.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/yconf.h"

static sl_ydoc_t *
s_parse(const char *text, char *err, size_t errlen)
{
    return sl_ydoc_parse(text, strlen(text), "t.yaml", err, errlen);
}

START_TEST(scalars_maps_and_sequences_remember_their_lines)
{
    char err[256];
    sl_ydoc_t *d = s_parse("a: 1\nb:\n  - x\n  - 'null'\nc: null\n", err, sizeof err);
    ck_assert_msg(d != NULL, "parse failed: %s", err);
    const sl_ynode_t *a = sl_ynode_get(d->root, "a");
    ck_assert_str_eq(a->value, "1");
    ck_assert_int_eq(a->line, 1);
    const sl_ynode_t *b = sl_ynode_get(d->root, "b");
    ck_assert_int_eq(b->kind, SL_Y_SEQ);
    ck_assert_int_eq(b->n, 2);
    ck_assert_int_eq(b->items[1]->line, 4);
    ck_assert_msg(!sl_ynode_is_null(b->items[1]), "a quoted 'null' is a string, not null");
    ck_assert(sl_ynode_is_null(sl_ynode_get(d->root, "c")));
    ck_assert(sl_ynode_is_null(sl_ynode_get(d->root, "missing")));
    sl_ydoc_destroy(&d);
    ck_assert_ptr_null(d);
}
END_TEST

START_TEST(anchors_aliases_and_merge_keys_expand_like_pyyaml)
{
    char err[256];
    const char *text =
        "base: &meta\n  host: h\n  flavor: f\n"
        "types: &ev compute.instance.*\n"
        "one:\n  event_type: *ev\n  metadata:\n    <<: *meta\n    flavor: mine\n";
    sl_ydoc_t *d = s_parse(text, err, sizeof err);
    ck_assert_msg(d != NULL, "parse failed: %s", err);
    const sl_ynode_t *one = sl_ynode_get(d->root, "one");
    ck_assert_str_eq(sl_ynode_get(one, "event_type")->value, "compute.instance.*");
    const sl_ynode_t *md = sl_ynode_get(one, "metadata");
    ck_assert_int_eq(md->n, 2);
    ck_assert_str_eq(sl_ynode_get(md, "host")->value, "h");
    ck_assert_msg(strcmp(sl_ynode_get(md, "flavor")->value, "mine") == 0,
                  "an explicit key must win over a merged one, got %s",
                  sl_ynode_get(md, "flavor")->value);
    ck_assert_ptr_null(sl_ynode_get(md, "<<"));
    sl_ydoc_destroy(&d);
}
END_TEST

START_TEST(syntax_errors_report_file_and_line)
{
    char err[256];
    sl_ydoc_t *d = s_parse("a: 1\nb: [1, 2\nc: 3\n", err, sizeof err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strncmp(err, "t.yaml:", 7) == 0, "no file:line prefix: %s", err);
    d = s_parse("a: 1\na: 2\n", err, sizeof err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, "t.yaml:2: duplicate key 'a'") != NULL, "got: %s", err);
    d = s_parse("? [a]\n: 1\n", err, sizeof err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, "t.yaml:1:") != NULL, "got: %s", err);
}
END_TEST

START_TEST(alias_bombs_and_recursion_are_refused)
{
    char err[256];
    const char *bomb =
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    sl_ydoc_t *d = s_parse(bomb, err, sizeof err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, "alias bomb") != NULL, "got: %s", err);
}
END_TEST

START_TEST(empty_documents_and_missing_files)
{
    char err[256];
    sl_ydoc_t *d = s_parse("", err, sizeof err);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_null(d->root);
    sl_ydoc_destroy(&d);
    d = sl_ydoc_load("/nonexistent/x.yaml", err, sizeof err);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, "/nonexistent/x.yaml:0: cannot open") != NULL, "got: %s", err);
}
END_TEST


static double
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* 100,000 `[` took 38 s when depth was checked only after libyaml had
 * loaded the whole document: the parse must stop at the limit. */
START_TEST(deep_nesting_stops_at_the_limit_while_parsing)
{
    size_t n = 100000;
    char *text = malloc(n + 32);
    ck_assert_ptr_nonnull(text);
    strcpy(text, "a: 1\nb:\n  ");
    size_t head = strlen(text);
    memset(text + head, '[', n);
    text[head + n] = '\0';
    char err[256] = "";
    double t0 = s_now();
    sl_ydoc_t *d = s_parse(text, err, sizeof err);
    double took = s_now() - t0;
    free(text);
    ck_assert_msg(d == NULL, "100,000 nested flow sequences were accepted");
    ck_assert_msg(strstr(err, "t.yaml:3: nesting deeper than 64 levels") != NULL,
                  "expected 't.yaml:3: nesting deeper than 64 levels', got: %s", err);
    ck_assert_msg(took < 2.0, "refusing took %.1f s: depth must be checked while parsing", took);
    /* Block style too: 64 nested mappings hold a value, 65 do not. */
    char block[8192] = "", *o = block;
    for (int i = 0; i < 64; i++)
        o += sprintf(o, "%*sk:\n", 2 * i, "");
    o += sprintf(o, "%*sv\n", 2 * 64, "");
    d = s_parse(block, err, sizeof err);
    ck_assert_msg(d != NULL, "64 levels of nesting should load, got: %s", err);
    sl_ydoc_destroy(&d);
    char deeper[8192] = "";
    o = deeper;
    for (int i = 0; i < 65; i++)
        o += sprintf(o, "%*sk:\n", 2 * i, "");
    o += sprintf(o, "%*sv\n", 2 * 65, "");
    d = s_parse(deeper, err, sizeof err);
    ck_assert_msg(d == NULL, "65 levels of nesting were accepted");
    ck_assert_msg(strstr(err, "t.yaml:65: nesting deeper than 64 levels") != NULL, "got: %s", err);
}
END_TEST

START_TEST(aliases_count_toward_depth_and_cannot_contain_themselves)
{
    char err[256] = "";
    /* An alias to a deep node, used deep, is as deep as the two together. */
    char text[8192] = "deep: &d ", *o = text + strlen(text);
    for (int i = 0; i < 40; i++)
        *o++ = '[';
    for (int i = 0; i < 40; i++)
        *o++ = ']';
    o += sprintf(o, "\nuse: ");
    for (int i = 0; i < 30; i++)
        *o++ = '[';
    o += sprintf(o, "*d");
    for (int i = 0; i < 30; i++)
        *o++ = ']';
    *o++ = '\n';
    *o = '\0';
    sl_ydoc_t *d = s_parse(text, err, sizeof err);
    ck_assert_msg(d == NULL, "an alias nesting 70 levels was accepted");
    ck_assert_msg(strstr(err, "t.yaml:2: nesting deeper than 64 levels") != NULL, "got: %s", err);
    d = s_parse("a: &a [1, *a]\n", err, sizeof err);
    ck_assert_msg(d == NULL, "a recursive alias was accepted");
    ck_assert_msg(strstr(err, "t.yaml:1:") != NULL && strstr(err, "*a") != NULL, "got: %s", err);
    d = s_parse("a: *nope\n", err, sizeof err);
    ck_assert_msg(d == NULL, "an undefined alias was accepted");
    ck_assert_msg(strstr(err, "t.yaml:1:") != NULL && strstr(err, "*nope") != NULL, "got: %s", err);
    /* As PyYAML (and libyaml's loader): an anchor is defined once. */
    d = s_parse("a: &x {k: 1}\nb: *x\nc: &x [2]\n", err, sizeof err);
    ck_assert_msg(d == NULL && strstr(err, "t.yaml:3: duplicate anchor &x (first at line 1)"),
                  "got: %s", err);
    /* Keys must be scalars, also through an alias. */
    d = s_parse("a: &m {x: 1}\n*m : 2\n", err, sizeof err);
    ck_assert_msg(d == NULL && strstr(err, "t.yaml:2: mapping keys must be plain strings"),
                  "got: %s", err);
    d = s_parse("s: &s k\n*s : 2\n", err, sizeof err);
    ck_assert_msg(d != NULL, "an alias to a scalar is a valid key, got: %s", err);
    ck_assert_str_eq(sl_ynode_get(d->root, "k")->value, "2");
    sl_ydoc_destroy(&d);
}
END_TEST

START_TEST(only_one_document_per_file)
{
    char err[256] = "";
    sl_ydoc_t *d = s_parse("a: 1\n---\nb: 2\n", err, sizeof err);
    ck_assert_msg(d == NULL, "a second YAML document was silently ignored");
    ck_assert_msg(strstr(err, "t.yaml:2: only one YAML document per file") != NULL, "got: %s", err);
    d = s_parse("---\na: 1\n---\n", err, sizeof err);
    ck_assert_msg(d == NULL && strstr(err, "t.yaml:3: only one YAML document per file"),
                  "got: %s", err);
    /* One document, with its markers, is fine. */
    d = s_parse("---\na: 1\n...\n", err, sizeof err);
    ck_assert_msg(d != NULL, "got: %s", err);
    ck_assert_str_eq(sl_ynode_get(d->root, "a")->value, "1");
    sl_ydoc_destroy(&d);
}
END_TEST

static char s_tmp[64];

#define S_FILE_LIMIT (16 * 1024 * 1024)     /* the documented 16 MiB */

static void
s_tmp_setup(void)
{
    snprintf(s_tmp, sizeof s_tmp, "/tmp/sluice-yconf-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s_tmp));
}

static void
s_tmp_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_tmp);
    ck_assert_int_eq(system(cmd), 0);
}

/* `meters: /dev/zero` grew to 17.8 GB: what is not a regular file, or is
 * larger than the limit, is refused before it is read. */
START_TEST(devices_fifos_and_huge_files_are_refused)
{
    char err[512] = "";
    size_t len = 0;
    char *buf = sl_ydoc_read("/dev/zero", &len, err, sizeof err);
    ck_assert_msg(buf == NULL, "/dev/zero was read as a configuration file");
    ck_assert_msg(strstr(err, "/dev/zero:0: is a character device, not a regular file") != NULL,
                  "got: %s", err);
    char path[128];
    snprintf(path, sizeof path, "%s/fifo", s_tmp);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    buf = sl_ydoc_read(path, &len, err, sizeof err);  /* must not wait for a writer */
    ck_assert_msg(buf == NULL && strstr(err, "is a FIFO, not a regular file"), "got: %s", err);
    buf = sl_ydoc_read(s_tmp, &len, err, sizeof err);
    ck_assert_msg(buf == NULL && strstr(err, "is a directory, not a regular file"), "got: %s", err);
    snprintf(path, sizeof path, "%s/big.yaml", s_tmp);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, S_FILE_LIMIT + 1), 0);  /* sparse */
    close(fd);
    buf = sl_ydoc_read(path, &len, err, sizeof err);
    ck_assert_msg(buf == NULL, "a file over the limit was read");
    ck_assert_msg(strstr(err, "is larger than 16 MiB, the limit for a configuration file") != NULL,
                  "got: %s", err);
    /* Exactly the limit is fine. */
    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, S_FILE_LIMIT), 0);
    close(fd);
    buf = sl_ydoc_read(path, &len, err, sizeof err);
    ck_assert_msg(buf != NULL, "a file of exactly the limit was refused: %s", err);
    ck_assert_uint_eq(len, S_FILE_LIMIT);
    free(buf);
    /* The same through sl_ydoc_load. */
    sl_ydoc_t *d = sl_ydoc_load("/dev/zero", err, sizeof err);
    ck_assert_msg(d == NULL && strstr(err, "not a regular file"), "got: %s", err);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("yconf");
    TCase *tc = tcase_create("yconf");
    tcase_add_test(tc, scalars_maps_and_sequences_remember_their_lines);
    tcase_add_test(tc, anchors_aliases_and_merge_keys_expand_like_pyyaml);
    tcase_add_test(tc, syntax_errors_report_file_and_line);
    tcase_add_test(tc, alias_bombs_and_recursion_are_refused);
    tcase_add_test(tc, empty_documents_and_missing_files);
    tcase_add_test(tc, deep_nesting_stops_at_the_limit_while_parsing);
    tcase_add_test(tc, aliases_count_toward_depth_and_cannot_contain_themselves);
    tcase_add_test(tc, only_one_document_per_file);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, s_tmp_setup, s_tmp_teardown);
    tcase_add_test(files, devices_fifos_and_huge_files_are_refused);
    suite_add_tcase(s, files);
    return sl_check_run(s);
}
