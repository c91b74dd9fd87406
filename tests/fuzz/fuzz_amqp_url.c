/* fuzz_amqp_url — oslo transport URLs (sl_amqp_url_parse), lists of URLs
 * (sl_amqp_url_list_next) and queue-argument lists (sl_amqp_table), the
 * parsers of the amqp source's and the notifier publisher's configuration.
 * Input: text. Checks: a refused URL comes with a message that never holds
 * credentials; an accepted one has hosts with a port in
 * 1..65535, non-empty host names and a vhost; its label formats; list
 * splitting always advances within the text. */
#include "tests/fuzz/fuzz.h"

#include "common/amqp.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *t = malloc(size + 1);
    memcpy(t, data, size);
    t[size] = '\0';
    sl_amqp_url_t u;
    char err[512] = "";
    if (sl_amqp_url_parse(t, &u, err, sizeof err) < 0) {
        if (!err[0])
            abort();
    } else {
        if (u.n_hosts == 0 || !u.vhost)
            abort();
        for (size_t i = 0; i < u.n_hosts; i++) {
            if (!u.hosts[i].host[0] || u.hosts[i].port < 1 || u.hosts[i].port > 65535)
                abort();
            char label[300];
            sl_amqp_url_label(&u, i, label, sizeof label);
            /* a label is for logs: never credentials (user:pass@) */
            if (strchr(label, '@') && !strchr(u.vhost, '@'))
                abort();
        }
        sl_amqp_url_free(&u);
    }
    for (const char *p = t; *p;) {
        size_t k = sl_amqp_url_list_next(p);
        if (k > strlen(p))
            abort();
        p += k + (p[k] == ',');
        if (k == 0 && p[-1] != ',')
            break;
    }
    amqp_pool_t pool;
    amqp_table_t tab;
    init_amqp_pool(&pool, 256);
    if (sl_amqp_table(t, &tab, &pool, err, sizeof err) == 0 && size && (int) tab.num_entries < 1 &&
        t[0])
        abort();
    empty_amqp_pool(&pool);
    free(t);
    return 0;
}
