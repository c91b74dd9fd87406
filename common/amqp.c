#include "common/amqp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/arena.h"
#include "common/log.h"

/* --- URLs ---------------------------------------------------------------- */

static int
s_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL if an escape is bad. */
static char *
s_decode(const char *s, size_t n)
{
    char *out = sl_xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? s_hex((unsigned char) s[i + 1]) : -1;
            int lo = i + 2 < n ? s_hex((unsigned char) s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            *o++ = (char) (hi * 16 + lo);
            i += 2;
            continue;
        }
        *o++ = s[i];
    }
    *o = '\0';
    return out;
}

static int
s_bad(sl_amqp_url_t *u, char *err, size_t errlen, const char *url, const char *why)
{
    sl_amqp_url_free(u);
    /* never echo credentials: cut the URL before its '@' if it has one */
    const char *at = strrchr(url, '@');
    const char *scheme_end = strstr(url, "://");
    if (at && scheme_end)
        return sl_errf(err, errlen, "transport URL '%.*s://...%s': %s (the form is "
                       "rabbit://user:pass@host:port,user:pass@host2:port/vhost)",
                       (int) (scheme_end - url), url, at, why);
    return sl_errf(err, errlen, "transport URL '%s': %s (the form is "
                   "rabbit://user:pass@host:port,user:pass@host2:port/vhost)", url, why);
}

/* One "user:pass@host:port" of a host list into h; prev gives credentials
 * when this one has none. */
static const char *
s_host(sl_amqp_host_t *h, const sl_amqp_host_t *prev, const char *s, size_t n, int def_port)
{
    const char *at = memrchr(s, '@', n), *hp = s;
    size_t hn = n;
    if (at) {
        const char *colon = memchr(s, ':', (size_t) (at - s));
        size_t un = colon ? (size_t) (colon - s) : (size_t) (at - s);
        h->user = s_decode(s, un);
        h->pass = colon ? s_decode(colon + 1, (size_t) (at - colon - 1)) : sl_xstrdup("");
        if (!h->user || !h->pass)
            return "a bad %-escape in the credentials";
        hp = at + 1;
        hn = n - (size_t) (hp - s);
    } else {
        h->user = sl_xstrdup(prev ? prev->user : "guest");
        h->pass = sl_xstrdup(prev ? prev->pass : "guest");
    }
    const char *port = NULL;
    if (hn && hp[0] == '[') {
        const char *close = memchr(hp, ']', hn);
        if (!close)
            return "an IPv6 address without its closing ']'";
        h->host = sl_xstrndup(hp + 1, (size_t) (close - hp - 1));
        if ((size_t) (close - hp + 1) < hn) {
            if (close[1] != ':')
                return "junk after an IPv6 address";
            port = close + 2;
        }
    } else {
        const char *colon = memrchr(hp, ':', hn);
        h->host = sl_xstrndup(hp, colon ? (size_t) (colon - hp) : hn);
        if (colon)
            port = colon + 1;
    }
    if (!h->host[0])
        return "a host is empty";
    h->port = def_port;
    if (port) {
        size_t pn = hn - (size_t) (port - hp);
        char buf[8];
        if (pn == 0 || pn >= sizeof buf)
            return "a port is not a number from 1 to 65535";
        memcpy(buf, port, pn);
        buf[pn] = '\0';
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end || v < 1 || v > 65535)
            return "a port is not a number from 1 to 65535";
        h->port = (int) v;
    }
    return NULL;
}

int
sl_amqp_url_parse(const char *url, sl_amqp_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *p = strstr(url, "://");
    if (!p)
        return s_bad(u, err, errlen, url, "no scheme (rabbit://, amqp:// or amqps://)");
    size_t sn = (size_t) (p - url);
    if ((sn == 6 && !strncmp(url, "rabbit", 6)) || (sn == 4 && !strncmp(url, "amqp", 4)))
        u->tls = 0;
    else if ((sn == 5 && !strncmp(url, "amqps", 5)) || (sn == 7 && !strncmp(url, "rabbits", 7)))
        u->tls = 1;
    else
        return s_bad(u, err, errlen, url, "the scheme must be rabbit, amqp or amqps (a "
                     "RabbitMQ broker)");
    p += 3;
    const char *q = strchr(p, '?');
    if (q) {
        /* ssl=1|true|yes turns TLS on (oslo's [oslo_messaging_rabbit] ssl) */
        const char *k = q + 1;
        while (*k) {
            size_t kn = strcspn(k, "&");
            if (!strncmp(k, "ssl=", 4)) {
                const char *v = k + 4;
                size_t vn = kn - 4;
                if ((vn == 1 && *v == '1') || (vn == 4 && !strncasecmp(v, "true", 4)) ||
                    (vn == 3 && !strncasecmp(v, "yes", 3)))
                    u->tls = 1;
            }
            k += kn + (k[kn] == '&');
        }
    }
    const char *end = q ? q : p + strlen(p);
    /* the vhost starts at the first '/' after the last '@' (a password may
     * hold a '/' only %-escaped, as in any URL) */
    const char *slash = memchr(p, '/', (size_t) (end - p));
    const char *hosts_end = slash ? slash : end;
    if (slash) {
        u->vhost = s_decode(slash + 1, (size_t) (end - slash - 1));
        if (!u->vhost)
            return s_bad(u, err, errlen, url, "a bad %-escape in the vhost");
    }
    if (!u->vhost || !u->vhost[0]) {
        free(u->vhost);
        u->vhost = sl_xstrdup("/");
    }
    if (hosts_end == p)
        return s_bad(u, err, errlen, url, "no host");
    size_t cap = 1;
    for (const char *c = p; c < hosts_end; c++)
        cap += *c == ',';
    u->hosts = sl_xcalloc(cap, sizeof *u->hosts);
    const char *h = p;
    while (h <= hosts_end && u->n_hosts < cap) {
        const char *comma = memchr(h, ',', (size_t) (hosts_end - h));
        size_t n = comma ? (size_t) (comma - h) : (size_t) (hosts_end - h);
        sl_amqp_host_t *host = &u->hosts[u->n_hosts++];
        const char *why = s_host(host, u->n_hosts > 1 ? &u->hosts[u->n_hosts - 2] : NULL, h, n,
                                 u->tls ? 5671 : 5672);
        if (why)
            return s_bad(u, err, errlen, url, why);
        if (!comma)
            break;
        h = comma + 1;
    }
    return 0;
}

void
sl_amqp_url_free(sl_amqp_url_t *u)
{
    for (size_t i = 0; i < u->n_hosts; i++) {
        free(u->hosts[i].host);
        free(u->hosts[i].user);
        free(u->hosts[i].pass);
    }
    free(u->hosts);
    free(u->vhost);
    memset(u, 0, sizeof *u);
}

size_t
sl_amqp_url_list_next(const char *list)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        if (!comma)
            return strlen(list);
        size_t word = strspn(comma + 1, "abcdefghijklmnopqrstuvwxyz");
        if (word && !strncmp(comma + 1 + word, "://", 3))
            return (size_t) (comma - list);
        p = comma + 1;
    }
}

const char *
sl_amqp_url_label(const sl_amqp_url_t *u, size_t i, char *buf, size_t len)
{
    const sl_amqp_host_t *h = &u->hosts[i];
    int v6 = strchr(h->host, ':') != NULL;
    snprintf(buf, len, "%s%s%s%s:%d%s%s", u->tls ? "amqps://" : "", v6 ? "[" : "", h->host,
             v6 ? "]" : "", h->port, strcmp(u->vhost, "/") ? "/" : "",
             strcmp(u->vhost, "/") ? u->vhost : "");
    return buf;
}

/* --- connections --------------------------------------------------------- */

int
sl_amqp_ok(amqp_rpc_reply_t r)
{
    return r.reply_type == AMQP_RESPONSE_NORMAL;
}

const char *
sl_amqp_reply_text(amqp_rpc_reply_t r, char *buf, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buf, len, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(buf, len, "no reply from the broker");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, len, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, len, "the broker closed the connection: %u %.*s", m->reply_code,
                     (int) m->reply_text.len, (const char *) m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, len, "the broker closed the channel: %u %.*s", m->reply_code,
                     (int) m->reply_text.len, (const char *) m->reply_text.bytes);
        } else {
            snprintf(buf, len, "the broker replied with method 0x%08x", r.reply.id);
        }
        break;
    }
    return buf;
}

amqp_connection_state_t
sl_amqp_open(const sl_amqp_url_t *u, size_t i, const sl_amqp_open_opts_t *o, char *err,
             size_t errlen)
{
    const sl_amqp_host_t *h = &u->hosts[i];
    char label[300], why[300];
    sl_amqp_url_label(u, i, label, sizeof label);
    amqp_connection_state_t c = amqp_new_connection();
    if (!c) {
        sl_errf(err, errlen, "%s: out of memory", label);
        return NULL;
    }
    amqp_socket_t *sock;
    if (u->tls) {
        sock = amqp_ssl_socket_new(c);
        if (!sock) {
            sl_errf(err, errlen, "%s: cannot create a TLS socket", label);
            goto fail;
        }
        amqp_ssl_socket_set_verify_peer(sock, o->verify ? 1 : 0);
        /* rabbitmq-c 0.11 matches host names against the certificate's DNS
         * names only: for an IP address OpenSSL checks the IP SANs during
         * the handshake instead (the context's verify parameters) */
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, h->host, ip) == 1 || inet_pton(AF_INET6, h->host, ip) == 1;
        amqp_ssl_socket_set_verify_hostname(sock, o->verify && !is_ip ? 1 : 0);
        if (o->verify && is_ip) {
            SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
            if (!ctx || !X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), h->host)) {
                sl_errf(err, errlen, "%s: cannot set up the TLS check of the address %s", label,
                        h->host);
                goto fail;
            }
        }
        int st = AMQP_STATUS_OK;
        if (o->ca_file)
            st = amqp_ssl_socket_set_cacert(sock, o->ca_file);
        if (st != AMQP_STATUS_OK) {
            sl_errf(err, errlen, "%s: cannot read the CA file %s: %s (correct ssl_ca_file)",
                    label, o->ca_file, amqp_error_string2(st));
            goto fail;
        }
        if (o->cert_file && o->key_file &&
            (st = amqp_ssl_socket_set_key(sock, o->cert_file, o->key_file)) != AMQP_STATUS_OK) {
            sl_errf(err, errlen, "%s: cannot use the client certificate %s and key %s: %s "
                    "(correct ssl_cert_file / ssl_key_file)", label, o->cert_file, o->key_file,
                    amqp_error_string2(st));
            goto fail;
        }
    } else {
        sock = amqp_tcp_socket_new(c);
        if (!sock) {
            sl_errf(err, errlen, "%s: cannot create a socket", label);
            goto fail;
        }
    }
    struct timeval tv = { .tv_sec = o->timeout_ms / 1000,
                          .tv_usec = (o->timeout_ms % 1000) * 1000 };
    amqp_set_handshake_timeout(c, &tv);
    amqp_set_rpc_timeout(c, &tv);
    int st = amqp_socket_open_noblock(sock, h->host, h->port, &tv);
    if (st != AMQP_STATUS_OK) {
        sl_errf(err, errlen, "%s: cannot connect: %s%s", label, amqp_error_string2(st),
                u->tls && (st == AMQP_STATUS_SSL_ERROR || st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
                           st == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || st == AMQP_STATUS_SSL_CONNECTION_FAILED)
                ? " (TLS: check ssl_ca_file names the CA that signed the broker's certificate "
                  "and that the host name matches it)" : " (is the broker running and "
                  "listening there?)");
        goto fail;
    }
    amqp_table_entry_t props[2];
    props[0].key = amqp_cstring_bytes("connection_name");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes(o->name ? o->name : "sluice");
    props[1].key = amqp_cstring_bytes("product");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes("sluice");
    amqp_table_t table = { .num_entries = 2, .entries = props };
    amqp_rpc_reply_t r = amqp_login_with_properties(c, u->vhost, 0, 131072, (int) o->heartbeat_s,
                                                    &table, AMQP_SASL_METHOD_PLAIN, h->user,
                                                    h->pass);
    if (!sl_amqp_ok(r)) {
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            sl_errf(err, errlen, "%s: the broker did not answer the login within %u ms (is it "
                    "overloaded, paused or stopping? raise `timeout` if it is just slow)", label,
                    o->timeout_ms);
        else
            sl_errf(err, errlen, "%s: login as '%s' failed: %s (check the user, password and "
                    "vhost in the URL, and the user's permissions on the vhost)", label, h->user,
                    sl_amqp_reply_text(r, why, sizeof why));
        goto fail;
    }
    amqp_channel_open(c, 1);
    r = amqp_get_rpc_reply(c);
    if (!sl_amqp_ok(r)) {
        sl_errf(err, errlen, "%s: cannot open a channel: %s", label,
                sl_amqp_reply_text(r, why, sizeof why));
        goto fail;
    }
    return c;
fail:
    amqp_destroy_connection(c);
    return NULL;
}

void
sl_amqp_close(amqp_connection_state_t c)
{
    if (!c)
        return;
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

void
sl_amqp_abandon(amqp_connection_state_t c)
{
    if (c)
        amqp_destroy_connection(c);
}

/* --- tables -------------------------------------------------------------- */

int
sl_amqp_table(const char *list, amqp_table_t *t, amqp_pool_t *pool, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (!list || !*list)
        return 0;
    size_t cap = 1;
    for (const char *c = list; *c; c++)
        cap += *c == ',';
    t->entries = amqp_pool_alloc(pool, cap * sizeof *t->entries);
    if (!t->entries)
        return sl_errf(err, errlen, "out of memory");
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (!eq || eq == p)
            return sl_errf(err, errlen, "'%.*s' is not key=value", (int) n, p);
        amqp_table_entry_t *e = &t->entries[t->num_entries++];
        size_t kn = (size_t) (eq - p), vn = n - kn - 1;
        char *k = amqp_pool_alloc(pool, kn + 1), *v = amqp_pool_alloc(pool, vn + 1);
        if (!k || !v)
            return sl_errf(err, errlen, "out of memory");
        memcpy(k, p, kn);
        k[kn] = '\0';
        memcpy(v, eq + 1, vn);
        v[vn] = '\0';
        e->key = amqp_cstring_bytes(k);
        char *end;
        errno = 0;
        long long iv = strtoll(v, &end, 10);
        if (*v && !*end && !errno) {
            e->value.kind = AMQP_FIELD_KIND_I64;
            e->value.value.i64 = iv;
        } else if (!strcmp(v, "true") || !strcmp(v, "false")) {
            e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
            e->value.value.boolean = v[0] == 't';
        } else {
            e->value.kind = AMQP_FIELD_KIND_UTF8;
            e->value.value.bytes = amqp_cstring_bytes(v);
        }
        p += n + (p[n] == ',');
    }
    return 0;
}
