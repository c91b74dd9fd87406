/* publisher_websocket — the websocket:// publisher: a WebSocket server
 * (libwebsockets) that streams samples and events to subscribed clients.
 *
 *   websocket://127.0.0.1:8787/stream?profiles=searchlight,ops
 *       [&max_client_queue=1000][&max_clients=64][&anonymous=false]
 *       [&hub=ipc://...][&hub_hwm=10000][&takeover_ms=1000]
 *
 * A client connects to ws://HOST:PORT/PATH, authenticates with a token of
 * one of the URL's forward profiles (`Authorization: Bearer <token>`, or
 * `?token=` in the request path) and narrows its stream with
 * `?meters=cpu,disk.*&event_types=compute.*` or later with a text frame
 * {"meters": [...], "event_types": [...]}. Records go out one per text
 * frame: a sample as a JSON object (sl_sample_gen's fields), an event in
 * sluice's event format, after the client profile's sl_forward_filter.
 *
 * Every pipeline worker has an instance; the first to bind the TCP port
 * becomes the hub (serves clients, binds a ZeroMQ PULL on `hub`), the
 * others PUSH their records to it (non-blocking, bounded; drops counted)
 * and retry the port every takeover_ms, so another worker takes over when
 * the hub's worker dies. publish() never waits for a client: each client
 * has a bounded queue; a client whose queue is full is disconnected
 * (close 1008) and counted.
 *
 * The helpers below are pure (any thread) and exist for the unit tests
 * and the plugin itself. */
#ifndef SL_PUBLISHER_WEBSOCKET_H
#define SL_PUBLISHER_WEBSOCKET_H

#include <stddef.h>
#include "common/buf.h"
#include "common/forward.h"

struct sl_conf;
#include "worker/publishers/publisher.h"

extern const sl_pub_plugin_t sl_pub_websocket;

/* The loaded configuration whose `forward:` profiles (sl_conf_forward)
 * the URLs' profiles= name. Set it once per configuration, before the
 * workers are forked and before validating (sluiced -t): the supervisor
 * calls it in sl_supervisor_validate next to
 * sl_publisher_notifier_set_transport_url (and puts the old one back when
 * a reload is refused). Without it, a URL naming profiles is refused with
 * "no forward profiles are loaded". Not thread-safe. */
void sl_publisher_websocket_set_conf(const struct sl_conf *conf);
/* The configuration set last (NULL if none). */
const struct sl_conf *sl_publisher_websocket_conf(void);

/* websocket://HOST:PORT/PATH: host (brackets removed from an IPv6
 * literal; "" becomes 127.0.0.1), port 1..65535 (required) and path ("/"
 * when absent) into the caller's buffers. 0, or -1 with a reason. */
int sl_ws_url_split(const char *url, char *host, size_t hostlen, unsigned *port, char *path,
                    size_t pathlen, char *err, size_t errlen);

/* A client's choice of records: globs (fnmatch) on meter names and on
 * event types. A kind whose list was never set is selected whole if the
 * other one was not set either, otherwise not at all (?meters=cpu alone
 * means "cpu samples, no events"). */
typedef struct {
    char  **meters;
    size_t  n_meters;
    int     meters_set;
    char  **event_types;
    size_t  n_event_types;
    int     event_types_set;
} sl_ws_select_t;

/* Adds the comma-separated globs of text to the meters (events = 0) or
 * event types (1) and marks that list set. -1 with a reason for an empty
 * or malformed glob (unterminated '[', trailing '\'). */
int sl_ws_select_add(sl_ws_select_t *s, int events, const char *text, char *err, size_t errlen);
/* Replaces s with a subscribe message {"meters": [...], "event_types":
 * [...]} (each a list of globs or one comma-separated string; a key left
 * out = that list unset). -1 with a reason, s unchanged. */
int sl_ws_select_parse(sl_ws_select_t *s, const char *json, size_t len, char *err,
                       size_t errlen);
/* 1 if a record of this kind and name is selected. */
int sl_ws_select_match(const sl_ws_select_t *s, int events, const char *name);
/* {"meters": [...]|null, "event_types": [...]|null} (null = unset) into out. */
void sl_ws_select_json(const sl_ws_select_t *s, sl_buf_t *out);
void sl_ws_select_free(sl_ws_select_t *s);

/* The token of an Authorization header value "Bearer <token>" (scheme
 * case-insensitive, blanks trimmed) copied into out; NULL if it is not
 * one. */
const char *sl_ws_bearer(const char *header, char *out, size_t outlen);

/* The hub's ZeroMQ endpoint for host:port when the URL names none and no
 * configuration is set (sluiced uses ipc://<run_dir>/websocket-<host>-
 * <port>.hub): an abstract ipc socket keyed by uid, host and port. Any
 * local user can reach an abstract socket: for tests only. */
void sl_ws_hub_endpoint(const char *host, unsigned port, char *out, size_t outlen);

/* Counters of one instance (the hub's cover the clients). */
typedef struct {
    unsigned long long clients;        /* connected now */
    unsigned long long connects;       /* accepted since start */
    unsigned long long rejected;       /* handshakes refused (token, path, max_clients) */
    unsigned long long sent;           /* frames of records written to clients */
    unsigned long long cut_off;        /* clients disconnected for a full queue */
    unsigned long long dropped;        /* records a client or the hub did not get */
    unsigned long long forwarded;      /* records pushed to the hub (non-hub instance) */
    int                hub;            /* 1 while this instance serves the port */
} sl_ws_stats_t;

void sl_publisher_websocket_stats(void *ctx, sl_ws_stats_t *out);

#endif
