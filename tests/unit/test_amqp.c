/* common/amqp: oslo transport URLs (fail-over lists, TLS, credentials,
 * vhosts), lists of URLs, and queue-argument tables. */
#include <check.h>

#include "tests/sl_check.h"
#include <string.h>

#include "common/amqp.h"
#include "common/log.h"

START_TEST(transport_urls_parse_as_oslo_writes_them)
{
    sl_amqp_url_t u;
    char err[512];
    ck_assert_int_eq(sl_amqp_url_parse("rabbit://nova:s%40cret@10.0.0.1:5673,ctl2:5674/"
                                       "openstack%2Fcell1", &u, err, sizeof err), 0);
    ck_assert_uint_eq(u.n_hosts, 2);
    ck_assert_str_eq(u.hosts[0].host, "10.0.0.1");
    ck_assert_int_eq(u.hosts[0].port, 5673);
    ck_assert_str_eq(u.hosts[0].user, "nova");
    ck_assert_str_eq(u.hosts[0].pass, "s@cret");
    /* a host without credentials takes the previous one's */
    ck_assert_str_eq(u.hosts[1].host, "ctl2");
    ck_assert_int_eq(u.hosts[1].port, 5674);
    ck_assert_str_eq(u.hosts[1].user, "nova");
    ck_assert_str_eq(u.hosts[1].pass, "s@cret");
    ck_assert_str_eq(u.vhost, "openstack/cell1");
    ck_assert_int_eq(u.tls, 0);
    char label[128];
    ck_assert_str_eq(sl_amqp_url_label(&u, 1, label, sizeof label), "ctl2:5674/openstack/cell1");
    sl_amqp_url_free(&u);

    /* defaults: guest, port 5672 (5671 with TLS), vhost "/" */
    ck_assert_int_eq(sl_amqp_url_parse("rabbit://broker", &u, err, sizeof err), 0);
    ck_assert_str_eq(u.hosts[0].user, "guest");
    ck_assert_int_eq(u.hosts[0].port, 5672);
    ck_assert_str_eq(u.vhost, "/");
    sl_amqp_url_free(&u);
    ck_assert_int_eq(sl_amqp_url_parse("amqps://u:p@[::1]/", &u, err, sizeof err), 0);
    ck_assert_int_eq(u.tls, 1);
    ck_assert_str_eq(u.hosts[0].host, "::1");
    ck_assert_int_eq(u.hosts[0].port, 5671);
    ck_assert_str_eq(sl_amqp_url_label(&u, 0, label, sizeof label), "amqps://[::1]:5671");
    sl_amqp_url_free(&u);
    ck_assert_int_eq(sl_amqp_url_parse("rabbit://h:1/?ssl=true&heartbeat=3", &u, err, sizeof err), 0);
    ck_assert_int_eq(u.tls, 1);
    ck_assert_int_eq(u.hosts[0].port, 1);
    sl_amqp_url_free(&u);
}
END_TEST

START_TEST(bad_urls_say_why_without_the_password)
{
    sl_amqp_url_t u;
    char err[512];
    ck_assert_int_eq(sl_amqp_url_parse("kafka://h", &u, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "the scheme must be rabbit, amqp or amqps"), "%s", err);
    ck_assert_int_eq(sl_amqp_url_parse("rabbit://u:topsecret@h:0/", &u, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "a port is not a number") && !strstr(err, "topsecret"), "%s", err);
    ck_assert_int_eq(sl_amqp_url_parse("rabbit://u:p%zz@h/", &u, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "%-escape"), "%s", err);
    ck_assert_int_eq(sl_amqp_url_parse("rabbit:///vhost", &u, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "no host"), "%s", err);
    ck_assert_int_eq(sl_amqp_url_parse("rabbit://[::1/", &u, err, sizeof err), -1);
    ck_assert_int_eq(sl_amqp_url_parse("broker:5672", &u, err, sizeof err), -1);
    ck_assert_int_eq(sl_amqp_url_parse("rabbit://h1,,h2/", &u, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "a host is empty"), "%s", err);
}
END_TEST

START_TEST(url_lists_split_between_urls_not_between_hosts)
{
    const char *l = "rabbit://a:1,b:2/x,amqps://c/,rabbit://d";
    size_t k = sl_amqp_url_list_next(l);
    ck_assert_uint_eq(k, strlen("rabbit://a:1,b:2/x"));
    l += k + 1;
    k = sl_amqp_url_list_next(l);
    ck_assert_uint_eq(k, strlen("amqps://c/"));
    l += k + 1;
    ck_assert_uint_eq(sl_amqp_url_list_next(l), strlen("rabbit://d"));
}
END_TEST

START_TEST(queue_arguments_become_typed_tables)
{
    amqp_pool_t pool;
    amqp_table_t t;
    char err[256];
    init_amqp_pool(&pool, 512);
    ck_assert_int_eq(sl_amqp_table("x-queue-type=quorum,x-max-length=100000,x-single=true",
                                   &t, &pool, err, sizeof err), 0);
    ck_assert_int_eq(t.num_entries, 3);
    ck_assert_int_eq(t.entries[0].value.kind, AMQP_FIELD_KIND_UTF8);
    ck_assert_int_eq((int) t.entries[0].value.value.bytes.len, 6);
    ck_assert_int_eq(t.entries[1].value.kind, AMQP_FIELD_KIND_I64);
    ck_assert_int_eq(t.entries[1].value.value.i64, 100000);
    ck_assert_int_eq(t.entries[2].value.kind, AMQP_FIELD_KIND_BOOLEAN);
    ck_assert_int_eq(sl_amqp_table("x-max-length", &t, &pool, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "is not key=value"), "%s", err);
    ck_assert_int_eq(sl_amqp_table("", &t, &pool, err, sizeof err), 0);
    ck_assert_int_eq(t.num_entries, 0);
    empty_amqp_pool(&pool);
}
END_TEST

/* Logs, stats and messages never show a password. */
START_TEST(urls_are_redacted_for_logs)
{
    char b[256];
    ck_assert_str_eq(sl_url_redact("rabbit://nova:s3cret@h1:5672,ceilo:pw@h2/vh?ssl=1", b, sizeof b),
                     "rabbit://nova:***@h1:5672,ceilo:***@h2/vh?ssl=1");
    ck_assert_str_eq(sl_url_redact("notifier://u:p@h/?topic=event", b, sizeof b),
                     "notifier://u:***@h/?topic=event");
    ck_assert_str_eq(sl_url_redact("file:///var/x.jsonl?a=b@c", b, sizeof b),
                     "file:///var/x.jsonl?a=b@c");
    ck_assert_str_eq(sl_url_redact("rabbit://onlyuser@h", b, sizeof b), "rabbit://onlyuser@h");
    ck_assert_str_eq(sl_url_redact("not a url", b, sizeof b), "not a url");
    /* secrets in the query: password=, *secret*, *token*, header=; not *_file */
    ck_assert_str_eq(sl_url_redact("gnocchi://?auth=keystone&password=pw&user=u&password_file=/p",
                                   b, sizeof b),
                     "gnocchi://?auth=keystone&password=***&user=u&password_file=/p");
    ck_assert_str_eq(sl_url_redact("websocket://:8787/s?Token=t&x=1#frag&token=z", b, sizeof b),
                     "websocket://:8787/s?Token=***&x=1#frag&token=z");
    ck_assert_str_eq(sl_url_redact("https://u:p@h/x?header=X-Key:s3&client_secret=c&q", b,
                                   sizeof b),
                     "https://u:***@h/x?header=***&client_secret=***&q");
    char tiny[12];
    sl_url_redact("rabbit://u:secret@host/", tiny, sizeof tiny);
    ck_assert_ptr_null(strstr(tiny, "secret"));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("amqp");
    TCase *tc = tcase_create("amqp");
    tcase_add_test(tc, transport_urls_parse_as_oslo_writes_them);
    tcase_add_test(tc, bad_urls_say_why_without_the_password);
    tcase_add_test(tc, url_lists_split_between_urls_not_between_hosts);
    tcase_add_test(tc, queue_arguments_become_typed_tables);
    tcase_add_test(tc, urls_are_redacted_for_logs);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
