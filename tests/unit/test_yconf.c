/* yconf: YAML tree with line numbers, anchors, aliases and merge keys. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdlib.h>
#include <string.h>

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
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
