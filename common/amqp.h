/* amqp — what the amqp source and the notifier publisher share: oslo's
 * transport URLs and opening a logged-in channel with rabbitmq-c.
 *
 * A transport URL is oslo.messaging's form:
 *   rabbit://user:pass@host:port,user2:pass2@host2:port2/vhost?ssl=1
 * Schemes: rabbit and amqp (plain; TLS with ?ssl=1 or ssl=true), amqps
 * and rabbits (TLS). Several hosts are one broker's fail-over list, tried
 * in order. A host without credentials takes the previous host's (oslo:
 * guest/guest when none are given); user, password and vhost are
 * percent-decoded; an empty or missing vhost is "/"; IPv6 hosts are
 * bracketed. The default port is 5672, 5671 with TLS. Unknown query keys
 * are ignored (oslo has many that mean nothing here).
 *
 * Opening is blocking, bounded by timeout_ms for the TCP connect, the TLS
 * handshake and each RPC (login, channel.open): callers on an event loop
 * keep the timeout short. Thread-safety: one connection per thread. */
#ifndef SL_AMQP_H
#define SL_AMQP_H

#include <stddef.h>
#include <amqp.h>

typedef struct {
    char *host;
    int   port;
    char *user, *pass;
} sl_amqp_host_t;

typedef struct {
    sl_amqp_host_t *hosts;
    size_t          n_hosts;
    char           *vhost;
    int             tls;
} sl_amqp_url_t;

typedef struct {
    const char *ca_file;       /* TLS: CA bundle (NULL: the system's default paths) */
    const char *cert_file;     /* TLS client certificate and key (both or neither) */
    const char *key_file;
    int         verify;        /* TLS: verify the peer's chain and host name */
    unsigned    heartbeat_s;   /* asked of the broker; 0 = none */
    unsigned    timeout_ms;    /* connect, handshake, each RPC */
    const char *name;          /* connection_name client property (shown by rabbitmqctl) */
} sl_amqp_open_opts_t;

/* Parses url into u (zeroed first); -1 with "... (correct the URL: ...)". */
int sl_amqp_url_parse(const char *url, sl_amqp_url_t *u, char *err, size_t errlen);
void sl_amqp_url_free(sl_amqp_url_t *u);
/* The length of the first URL of a comma-joined list of transport URLs
 * (messaging_urls): a URL's host list has commas too, so a URL ends at a
 * comma followed by "scheme://". */
size_t sl_amqp_url_list_next(const char *list);
/* "host:port/vhost" of host i, without credentials (for logs and stats). */
const char *sl_amqp_url_label(const sl_amqp_url_t *u, size_t i, char *buf, size_t len);

/* Connects to host i of u, logs in and opens channel 1. The connection, or
 * NULL with why in err (and the state destroyed). */
amqp_connection_state_t sl_amqp_open(const sl_amqp_url_t *u, size_t i,
                                     const sl_amqp_open_opts_t *o, char *err, size_t errlen);
/* Closes channel 1 and the connection politely (bounded by the RPC
 * timeout), then destroys the state. NULL is fine. */
void sl_amqp_close(amqp_connection_state_t c);
/* Destroys the state without talking to the broker (a dead connection). */
void sl_amqp_abandon(amqp_connection_state_t c);
/* Why an RPC failed, in words, into buf: a library error, or the broker's
 * connection.close / channel.close reply code and text. */
const char *sl_amqp_reply_text(amqp_rpc_reply_t r, char *buf, size_t len);
/* 1 if r is OK. */
int sl_amqp_ok(amqp_rpc_reply_t r);

/* The AMQP field table of a list "k=v,k2=v2" (queue arguments: x-*).
 * Values that are whole numbers become signed 64-bit integers, true/false
 * booleans, the rest strings. The table's memory is in *pool (free with
 * empty_amqp_pool). -1 with a message if an entry is not k=v. */
int sl_amqp_table(const char *list, amqp_table_t *t, amqp_pool_t *pool, char *err,
                  size_t errlen);

#endif
