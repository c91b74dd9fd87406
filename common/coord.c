/* coord — memcached-backed membership and leases (contract in coord.h).
 *
 * Keys (group g):  sl:g:members         ids separated by single spaces (an index only:
 *                                       membership is proven by each member's record)
 *                  sl:g:m:<id>          member record
 *                  sl:g:l:<sink>:<p>    lease record
 *                  sl:g:epoch           stamp of the store's current life
 * Record value:    "SL1 <owner> <endpoint> <stamp_ms> <expiry_ms> <hmac>", hmac =
 *                  hex HMAC-SHA256(secret, "<key>\n" + everything before " <hmac>").
 * The key is inside the MAC so that a record cannot be replayed under another
 * key (another partition, member or group). A released lease is a signed
 * record of owner "-" (ids start with an alphanumeric, so none is "-").
 * stamp_ms: a member record's last heartbeat; a lease record's take (kept
 * by renewals, so that readers can tell one holding from the next). */
#include "common/coord.h"

#include <errno.h>
#include <inttypes.h>
#include <libmemcached/memcached.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/log.h"

#define S_KEY_MAX   250               /* memcached's key limit */
#define S_REC_MAX   512
#define S_FREE_ID   "-"
#define S_RETRIES   64                /* cas rounds before giving up on the member list */

typedef struct {
    unsigned sink, p;
    int64_t  deadline;                /* monotonic ms: ours until then */
    int64_t  taken;                   /* wall ms of our take: the record's stamp */
    char     endpoint[SL_COORD_ENDPOINT_MAX];
    /* scratch for heartbeat */
    int      seen, ours, sent;
    uint64_t cas, sent_hash;
} s_held_t;

typedef struct {
    char    owner[SL_COORD_ID_MAX];
    char    endpoint[SL_COORD_ENDPOINT_MAX];
    int64_t stamp, expiry;
} s_rec_t;

struct sl_coord {
    memcached_st    *mc;
    char             group[SL_COORD_ID_MAX];
    unsigned char   *secret;
    size_t           secret_len;
    int64_t          ttl_ms;
    time_t           mc_exptime;
    int              joined;
    char             id[SL_COORD_ID_MAX];
    char             endpoint[SL_COORD_ENDPOINT_MAX];
    int64_t          epoch_ms;
    s_held_t        *held;
    size_t           n_held, cap_held;
    sl_coord_stats_t st;
    sl_ratelimit_t   rl_mc, rl_bad;
};

static int64_t
s_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_wall(void) { return s_clock_ms(CLOCK_REALTIME); }
static int64_t s_mono(void) { return s_clock_ms(CLOCK_MONOTONIC); }

static int
s_valid_id(const char *s)
{
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return 0;
    size_t n = strlen(s);
    if (n >= SL_COORD_ID_MAX)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@/-") == n;
}

static int
s_valid_endpoint(const char *s)
{
    if (!s || !*s || strlen(s) >= SL_COORD_ENDPOINT_MAX)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return 0;
    return 1;
}

static int
s_mc_fail(sl_coord_t *c, memcached_return_t rc, const char *what, const char *key)
{
    c->st.mc_errors++;
    sl_log_limited(&c->rl_mc, SL_LOG_WARN, "coord: %s %s: %s", what, key,
                   memcached_strerror(c->mc, rc));
    return -1;
}

static void
s_bad(sl_coord_t *c, const char *key, const char *why)
{
    c->st.bad_records++;
    sl_log_limited(&c->rl_bad, SL_LOG_WARN, "coord: ignoring record %s: %s", key, why);
}

/* ---- records ------------------------------------------------------------- */

static void
s_mac_hex(const sl_coord_t *c, const char *key, const char *body, size_t body_len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char buf[S_KEY_MAX + 1 + S_REC_MAX];
    size_t klen = strlen(key);
    memcpy(buf, key, klen);
    buf[klen] = '\n';
    memcpy(buf + klen + 1, body, body_len);
    HMAC(EVP_sha256(), c->secret, (int) c->secret_len, (const unsigned char *) buf,
         klen + 1 + body_len, md, &md_len);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Writes the signed record into out (S_REC_MAX); returns its length. */
static size_t
s_encode(const sl_coord_t *c, const char *key, const char *owner, const char *endpoint,
         int64_t stamp, int64_t expiry, char *out)
{
    int n = snprintf(out, S_REC_MAX, "SL1 %s %s %" PRId64 " %" PRId64, owner, endpoint,
                     stamp, expiry);
    char hex[65];
    s_mac_hex(c, key, out, (size_t) n, hex);
    n += snprintf(out + n, S_REC_MAX - (size_t) n, " %s", hex);
    return (size_t) n;
}

/* 0 if val is a well-formed record whose MAC verifies under key; else -1,
 * counted as a bad record. */
static int
s_decode(sl_coord_t *c, const char *key, const char *val, size_t len, s_rec_t *r)
{
    char buf[S_REC_MAX], check[S_REC_MAX];
    if (len < 70 || len >= S_REC_MAX) {
        s_bad(c, key, "malformed");
        return -1;
    }
    memcpy(buf, val, len);
    buf[len] = '\0';
    char *mac = buf + len - 64;
    if (mac[-1] != ' ') {
        s_bad(c, key, "malformed");
        return -1;
    }
    mac[-1] = '\0';
    long long stamp, expiry;
    char tail;
    if (sscanf(buf, "SL1 %63s %159s %lld %lld%c", r->owner, r->endpoint, &stamp, &expiry,
               &tail) != 4) {
        s_bad(c, key, "malformed");
        return -1;
    }
    r->stamp = stamp;
    r->expiry = expiry;
    /* Canonical form only: the MAC is checked over exactly what we would write. */
    int n = snprintf(check, sizeof check, "SL1 %s %s %" PRId64 " %" PRId64, r->owner,
                     r->endpoint, r->stamp, r->expiry);
    if ((size_t) n != (size_t) (mac - 1 - buf) || memcmp(check, buf, (size_t) n) != 0) {
        s_bad(c, key, "not canonical");
        return -1;
    }
    char hex[65];
    s_mac_hex(c, key, buf, (size_t) n, hex);
    if (CRYPTO_memcmp(hex, mac, 64) != 0) {
        s_bad(c, key, "bad HMAC");
        return -1;
    }
    return 0;
}

static int
s_live(const s_rec_t *r, int64_t wall)
{
    return strcmp(r->owner, S_FREE_ID) != 0 && wall <= r->expiry + SL_COORD_SKEW_MS;
}

static void s_key_lease(const sl_coord_t *c, unsigned sink, unsigned p, char *k)
{ snprintf(k, S_KEY_MAX, "sl:%s:l:%u:%u", c->group, sink, p); }
static void s_key_member(const sl_coord_t *c, const char *id, char *k)
{ snprintf(k, S_KEY_MAX, "sl:%s:m:%s", c->group, id); }
static void s_key_list(const sl_coord_t *c, char *k)
{ snprintf(k, S_KEY_MAX, "sl:%s:members", c->group); }
static void s_key_epoch(const sl_coord_t *c, char *k)
{ snprintf(k, S_KEY_MAX, "sl:%s:epoch", c->group); }

/* ---- memcached primitives ----------------------------------------------- */

/* 0 found (*val malloc'd, NUL-terminated, caller frees), 1 missing, -1 error. */
static int
s_gets(sl_coord_t *c, const char *key, char **val, size_t *len, uint64_t *cas)
{
    const char *keys[1] = { key };
    size_t klen[1] = { strlen(key) };
    memcached_return_t rc = memcached_mget(c->mc, keys, klen, 1);
    if (rc != MEMCACHED_SUCCESS)
        return s_mc_fail(c, rc, "gets", key);
    int found = 1;
    memcached_result_st *res;
    while ((res = memcached_fetch_result(c->mc, NULL, &rc)) != NULL) {
        if (found == 1) {
            *len = memcached_result_length(res);
            *val = malloc(*len + 1);
            if (*val) {
                memcpy(*val, memcached_result_value(res), *len);
                (*val)[*len] = '\0';
                *cas = memcached_result_cas(res);
                found = 0;
            }
        }
        memcached_result_free(res);
    }
    if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
        if (found == 0)
            free(*val);
        return s_mc_fail(c, rc, "gets", key);
    }
    return found;
}

/* Store outcomes: 0 stored, 1 refused (exists / cas mismatch / gone), -1 error. */
static int
s_store_rc(sl_coord_t *c, memcached_return_t rc, const char *what, const char *key)
{
    if (rc == MEMCACHED_SUCCESS || rc == MEMCACHED_STORED)
        return 0;
    if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS || rc == MEMCACHED_NOTFOUND)
        return 1;
    return s_mc_fail(c, rc, what, key);
}

static int
s_add(sl_coord_t *c, const char *key, const char *val, size_t len, time_t exp)
{
    return s_store_rc(c, memcached_add(c->mc, key, strlen(key), val, len, exp, 0), "add", key);
}

static int
s_cas(sl_coord_t *c, const char *key, const char *val, size_t len, time_t exp, uint64_t cas)
{
    return s_store_rc(c, memcached_cas(c->mc, key, strlen(key), val, len, exp, 0, cas), "cas", key);
}

/* ---- epoch --------------------------------------------------------------- */

/* Learns (or starts) the store's epoch: 0 or -1. */
static int
s_epoch_refresh(sl_coord_t *c)
{
    char key[S_KEY_MAX], rec[S_REC_MAX];
    s_key_epoch(c, key);
    for (int i = 0; i < 4; i++) {
        char *val;
        size_t len;
        uint64_t cas;
        int g = s_gets(c, key, &val, &len, &cas);
        if (g < 0)
            return -1;
        int64_t wall = s_wall();
        size_t n = s_encode(c, key, "epoch", "-", wall, 0, rec);
        int st;
        if (g == 1) {
            st = s_add(c, key, rec, n, 0);
        } else {
            s_rec_t r;
            int ok = s_decode(c, key, val, len, &r);
            free(val);
            if (ok == 0) {
                c->epoch_ms = r.stamp;
                return 0;
            }
            st = s_cas(c, key, rec, n, 0, cas);
        }
        if (st < 0)
            return -1;
        if (st == 0) {
            sl_info("coord: group %s: new store epoch; taking leases paused for %" PRId64 " ms",
                        c->group, c->ttl_ms + SL_COORD_SKEW_MS);
            c->epoch_ms = wall;
            return 0;
        }
    }
    c->st.mc_errors++;
    return -1;
}

static int
s_quarantined(const sl_coord_t *c, int64_t wall)
{
    return wall < c->epoch_ms + c->ttl_ms + SL_COORD_SKEW_MS;
}

/* ---- lifecycle ----------------------------------------------------------- */

sl_coord_t *
sl_coord_new(const char *servers, const char *group, const void *secret, size_t secret_len,
             unsigned lease_ttl_ms, char *err, size_t errlen)
{
    char dummy[1];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!servers || !*servers) {
        snprintf(err, errlen, "coord: no memcached servers given");
        return NULL;
    }
    if (!s_valid_id(group)) {
        snprintf(err, errlen, "coord: group must be 1..%d of [A-Za-z0-9._:@/-], alphanumeric first",
                 SL_COORD_ID_MAX - 1);
        return NULL;
    }
    if (!secret || secret_len < SL_COORD_SECRET_MIN) {
        snprintf(err, errlen, "coord: secret must be at least %d bytes", SL_COORD_SECRET_MIN);
        return NULL;
    }
    if (lease_ttl_ms < 100) {
        snprintf(err, errlen, "coord: lease_ttl %u ms is below 100 ms", lease_ttl_ms);
        return NULL;
    }
    memcached_server_st *list = memcached_servers_parse(servers);
    if (!list || memcached_server_list_count(list) == 0) {
        if (list)
            memcached_server_list_free(list);
        snprintf(err, errlen, "coord: cannot parse memcached servers \"%s\"", servers);
        return NULL;
    }
    sl_coord_t *c = calloc(1, sizeof *c);
    if (c)
        c->secret = malloc(secret_len);
    if (c)
        c->mc = memcached_create(NULL);
    if (!c || !c->secret || !c->mc) {
        memcached_server_list_free(list);
        snprintf(err, errlen, "coord: out of memory");
        sl_coord_destroy(&c);
        return NULL;
    }
    memcached_return_t rc = memcached_server_push(c->mc, list);
    memcached_server_list_free(list);
    if (rc != MEMCACHED_SUCCESS) {
        snprintf(err, errlen, "coord: memcached servers \"%s\": %s", servers,
                 memcached_strerror(c->mc, rc));
        sl_coord_destroy(&c);
        return NULL;
    }
    /* Short timeouts so that a dead store costs a worker ~200 ms, never a
     * stall; a failed server is retried after 1 s and never ejected (ejecting
     * would remap its keys differently on different hosts). */
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1);
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 200);
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 200);
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, 200000);
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, 200000);
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1);
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_DISTRIBUTION, MEMCACHED_DISTRIBUTION_CONSISTENT);
    snprintf(c->group, sizeof c->group, "%s", group);
    memcpy(c->secret, secret, secret_len);
    c->secret_len = secret_len;
    c->ttl_ms = lease_ttl_ms;
    c->mc_exptime = (time_t) ((lease_ttl_ms + 999) / 1000 + 1);
    c->epoch_ms = INT64_MAX / 2;      /* unknown: pauses takes until learnt */
    c->rl_mc = (sl_ratelimit_t) SL_RATELIMIT_INIT;
    c->rl_bad = (sl_ratelimit_t) SL_RATELIMIT_INIT;
    return c;
}

void
sl_coord_destroy(sl_coord_t **cp)
{
    if (!cp || !*cp)
        return;
    sl_coord_t *c = *cp;
    if (c->mc)
        memcached_free(c->mc);
    if (c->secret) {
        OPENSSL_cleanse(c->secret, c->secret_len);
        free(c->secret);
    }
    free(c->held);
    free(c);
    *cp = NULL;
}

void
sl_coord_stats(const sl_coord_t *c, sl_coord_stats_t *out)
{
    *out = c->st;
}

/* ---- member list --------------------------------------------------------- */

static int
s_list_has(const char *list, const char *id)
{
    size_t n = strlen(id);
    for (const char *s = list; (s = strstr(s, id)) != NULL; s += n)
        if ((s == list || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\0'))
            return 1;
    return 0;
}

/* Adds (add != 0) or removes id in the member list, with gets/cas so that a
 * concurrent edit is never lost. 0 or -1. */
static int
s_list_edit(sl_coord_t *c, const char *id, int add)
{
    char key[S_KEY_MAX];
    s_key_list(c, key);
    for (int round = 0; round < S_RETRIES; round++) {
        char *val = NULL;
        size_t len = 0;
        uint64_t cas = 0;
        int g = s_gets(c, key, &val, &len, &cas);
        if (g < 0)
            return -1;
        int st;
        if (g == 1) {
            if (!add)
                return 0;
            st = s_add(c, key, id, strlen(id), 0);
        } else {
            if (s_list_has(val, id) == !!add) {
                free(val);
                return 0;
            }
            char *next = malloc(len + strlen(id) + 2);
            if (!next) {
                free(val);
                return -1;
            }
            size_t n = 0;
            for (char *save = NULL, *t = strtok_r(val, " ", &save); t; t = strtok_r(NULL, " ", &save))
                if (strcmp(t, id) != 0)
                    n += (size_t) sprintf(next + n, "%s%s", n ? " " : "", t);
            if (add)
                n += (size_t) sprintf(next + n, "%s%s", n ? " " : "", id);
            st = s_cas(c, key, next, n, 0, cas);
            free(next);
        }
        free(val);
        if (st <= 0)
            return st;
        c->st.cas_retries++;
        if (round > 4)
            usleep((useconds_t) (100 + rand() % 900));
        else
            sched_yield();
    }
    c->st.mc_errors++;
    sl_log_limited(&c->rl_mc, SL_LOG_WARN, "coord: member list %s: gave up after %d cas rounds",
                   key, S_RETRIES);
    return -1;
}

static int
s_put_member(sl_coord_t *c)
{
    char key[S_KEY_MAX], rec[S_REC_MAX];
    s_key_member(c, c->id, key);
    int64_t wall = s_wall();
    size_t n = s_encode(c, key, c->id, c->endpoint, wall, wall + c->ttl_ms, rec);
    memcached_return_t rc = memcached_set(c->mc, key, strlen(key), rec, n, c->mc_exptime, 0);
    return rc == MEMCACHED_SUCCESS ? 0 : s_mc_fail(c, rc, "set", key);
}

int
sl_coord_join(sl_coord_t *c, const char *member_id, const char *endpoint)
{
    if (!c || !s_valid_id(member_id) || !s_valid_endpoint(endpoint))
        return -1;
    if (c->joined && strcmp(c->id, member_id) != 0)
        return -1;
    snprintf(c->id, sizeof c->id, "%s", member_id);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    if (s_epoch_refresh(c) < 0 || s_put_member(c) < 0 || s_list_edit(c, c->id, 1) < 0)
        return -1;
    c->joined = 1;
    return 0;
}

static int
s_member_cmp(const void *a, const void *b)
{
    return strcmp(((const sl_coord_member_t *) a)->id, ((const sl_coord_member_t *) b)->id);
}

ssize_t
sl_coord_members(sl_coord_t *c, sl_coord_member_t *out, size_t max)
{
    char lkey[S_KEY_MAX];
    s_key_list(c, lkey);
    char *list = NULL;
    size_t len = 0;
    uint64_t cas = 0;
    int g = s_gets(c, lkey, &list, &len, &cas);
    if (g < 0)
        return -1;
    if (g == 1)
        return 0;
    size_t n_ids = 0;
    char **ids = malloc((len / 2 + 1) * sizeof *ids);
    char (*keys)[S_KEY_MAX] = malloc((len / 2 + 1) * sizeof *keys);
    const char **kp = malloc((len / 2 + 1) * sizeof *kp);
    size_t *kl = malloc((len / 2 + 1) * sizeof *kl);
    sl_coord_member_t *found = calloc(len / 2 + 1, sizeof *found);
    char *valid = calloc(len / 2 + 1, 1);
    ssize_t ret = -1;
    if (!ids || !keys || !kp || !kl || !found || !valid)
        goto out;
    for (char *save = NULL, *t = strtok_r(list, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        ids[n_ids] = t;
        s_key_member(c, t, keys[n_ids]);
        kp[n_ids] = keys[n_ids];
        kl[n_ids] = strlen(keys[n_ids]);
        n_ids++;
    }
    memcached_return_t rc = n_ids ? memcached_mget(c->mc, kp, kl, n_ids) : MEMCACHED_SUCCESS;
    if (rc != MEMCACHED_SUCCESS) {
        s_mc_fail(c, rc, "mget", lkey);
        goto out;
    }
    int64_t wall = s_wall();
    memcached_result_st *res;
    while (n_ids && (res = memcached_fetch_result(c->mc, NULL, &rc)) != NULL) {
        const char *k = memcached_result_key_value(res);
        size_t klen = memcached_result_key_length(res);
        for (size_t i = 0; i < n_ids; i++) {
            if (valid[i] || kl[i] != klen || memcmp(kp[i], k, klen) != 0)
                continue;
            s_rec_t r;
            if (s_decode(c, kp[i], memcached_result_value(res), memcached_result_length(res), &r) == 0
                && strcmp(r.owner, ids[i]) == 0) {
                valid[i] = s_live(&r, wall) ? 1 : 2;   /* 2: verified, expired, not yet gone */
                snprintf(found[i].id, sizeof found[i].id, "%s", r.owner);
                snprintf(found[i].endpoint, sizeof found[i].endpoint, "%s", r.endpoint);
                found[i].stamp_ms = r.stamp;
                found[i].expiry_ms = r.expiry;
            }
            break;
        }
        memcached_result_free(res);
    }
    if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
        s_mc_fail(c, rc, "mget", lkey);
        goto out;
    }
    size_t n_live = 0, n_keep = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (valid[i] == 1)
            found[n_live++] = found[i];
        if (valid[i])
            n_keep++;
    }
    qsort(found, n_live, sizeof *found, s_member_cmp);
    size_t n_out = 0;
    for (size_t i = 0; i < n_live; i++)       /* a list edited by hand may repeat an id */
        if (n_out == 0 || strcmp(found[n_out - 1].id, found[i].id) != 0)
            found[n_out++] = found[i];
    memcpy(out, found, (n_out < max ? n_out : max) * sizeof *out);
    ret = (ssize_t) n_out;
    if (n_keep < n_ids) {
        /* Prune ids whose record is gone or forged; one cas attempt; a member
         * that was pruned wrongly re-adds itself at its next heartbeat. */
        char *next = malloc(len + 1);
        if (next) {
            size_t n = 0;
            for (size_t i = 0; i < n_ids; i++)
                if (valid[i])
                    n += (size_t) sprintf(next + n, "%s%s", n ? " " : "", ids[i]);
            if (s_cas(c, lkey, next, n, 0, cas) == 1)
                c->st.cas_retries++;
            free(next);
        }
    }
out:
    free(ids);
    free(keys);
    free(kp);
    free(kl);
    free(found);
    free(valid);
    free(list);
    return ret;
}

/* ---- leases -------------------------------------------------------------- */

static s_held_t *
s_held_find(const sl_coord_t *c, unsigned sink, unsigned p)
{
    for (size_t i = 0; i < c->n_held; i++)
        if (c->held[i].sink == sink && c->held[i].p == p)
            return &c->held[i];
    return NULL;
}

static void
s_held_drop(sl_coord_t *c, s_held_t *h)
{
    *h = c->held[--c->n_held];
}

static int
s_held_put(sl_coord_t *c, unsigned sink, unsigned p, const char *endpoint, int64_t deadline,
           int64_t taken)
{
    s_held_t *h = s_held_find(c, sink, p);
    if (!h) {
        if (c->n_held == c->cap_held) {
            size_t cap = c->cap_held ? c->cap_held * 2 : 64;
            s_held_t *nh = realloc(c->held, cap * sizeof *nh);
            if (!nh)
                return -1;
            c->held = nh;
            c->cap_held = cap;
        }
        h = &c->held[c->n_held++];
        memset(h, 0, sizeof *h);
        h->sink = sink;
        h->p = p;
    }
    snprintf(h->endpoint, sizeof h->endpoint, "%s", endpoint);
    h->deadline = deadline;
    h->taken = taken;
    return 0;
}

int
sl_coord_lease_held(const sl_coord_t *c, unsigned sink, unsigned p)
{
    const s_held_t *h = s_held_find(c, sink, p);
    return h && s_mono() < h->deadline;
}

int
sl_coord_lease_take(sl_coord_t *c, unsigned sink, unsigned p, const char *endpoint)
{
    if (!c || !c->joined || !s_valid_endpoint(endpoint))
        return -1;
    int64_t mono = s_mono();
    if (!sl_coord_lease_held(c, sink, p)) {
        if (s_epoch_refresh(c) < 0)
            return -1;
        if (s_quarantined(c, s_wall()))
            return 1;
    }
    char key[S_KEY_MAX], rec[S_REC_MAX];
    s_key_lease(c, sink, p, key);
    for (int round = 0; round < 3; round++) {
        /* The stamp of a lease record is the wall time of its take, kept
         * by renewals: readers tell one holding from the next by it. */
        int64_t wall = s_wall();
        size_t n = s_encode(c, key, c->id, endpoint, wall, wall + c->ttl_ms, rec);
        int st = s_add(c, key, rec, n, c->mc_exptime);
        if (st == 1) {
            char *val;
            size_t len;
            uint64_t cas;
            int g = s_gets(c, key, &val, &len, &cas);
            if (g < 0)
                return -1;
            if (g == 1)
                continue;                   /* vanished meanwhile: add again */
            s_rec_t r;
            int ok = s_decode(c, key, val, len, &r);
            free(val);
            if (ok == 0 && s_live(&r, wall) && strcmp(r.owner, c->id) != 0)
                return 1;
            /* ours, free, expired or forged: replace it, unless it changed since */
            st = s_cas(c, key, rec, n, c->mc_exptime, cas);
        }
        if (st < 0)
            return -1;
        if (st == 0) {
            if (s_held_put(c, sink, p, endpoint, mono + c->ttl_ms, wall) < 0)
                return -1;
            c->st.leases_taken++;
            return 0;
        }
    }
    return 1;
}

int
sl_coord_lease_release(sl_coord_t *c, unsigned sink, unsigned p)
{
    if (!c || !c->joined)
        return -1;
    s_held_t *h = s_held_find(c, sink, p);
    if (h)
        s_held_drop(c, h);
    char key[S_KEY_MAX], rec[S_REC_MAX];
    s_key_lease(c, sink, p, key);
    char *val;
    size_t len;
    uint64_t cas;
    int g = s_gets(c, key, &val, &len, &cas);
    if (g != 0)
        return g;
    s_rec_t r;
    int ok = s_decode(c, key, val, len, &r);
    free(val);
    if (ok != 0 || strcmp(r.owner, c->id) != 0)
        return 1;
    int64_t wall = s_wall();
    size_t n = s_encode(c, key, S_FREE_ID, "-", wall, wall, rec);
    return s_cas(c, key, rec, n, 2, cas);
}

int
sl_coord_lease_get(sl_coord_t *c, unsigned sink, unsigned p, sl_coord_lease_t *out)
{
    char key[S_KEY_MAX];
    s_key_lease(c, sink, p, key);
    char *val;
    size_t len;
    uint64_t cas;
    int g = s_gets(c, key, &val, &len, &cas);
    if (g != 0)
        return g;
    s_rec_t r;
    int ok = s_decode(c, key, val, len, &r);
    free(val);
    if (ok != 0 || !s_live(&r, s_wall()))
        return 1;
    snprintf(out->owner, sizeof out->owner, "%s", r.owner);
    snprintf(out->endpoint, sizeof out->endpoint, "%s", r.endpoint);
    out->expiry_ms = r.expiry;
    out->taken_ms = r.stamp;
    return 0;
}

/* Parses "sl:<group>:l:<sink>:<p>" back into (sink, p). */
static int
s_lease_key_parse(const sl_coord_t *c, const char *k, size_t klen, unsigned *sink, unsigned *p)
{
    char buf[S_KEY_MAX + 1], prefix[S_KEY_MAX];
    if (klen >= sizeof buf)
        return -1;
    memcpy(buf, k, klen);
    buf[klen] = '\0';
    int n = snprintf(prefix, sizeof prefix, "sl:%s:l:", c->group);
    if (strncmp(buf, prefix, (size_t) n) != 0 || sscanf(buf + n, "%u:%u", sink, p) != 2)
        return -1;
    return 0;
}

ssize_t
sl_coord_leases_get_all(sl_coord_t *c, unsigned n_sinks, unsigned partitions,
                        sl_coord_lease_t *out)
{
    size_t n = (size_t) n_sinks * partitions;
    if (!c || !out || n == 0 || n / n_sinks != partitions)
        return -1;
    char (*keys)[96] = malloc(n * sizeof *keys);     /* group < 64: keys < 96 */
    const char **kp = malloc(n * sizeof *kp);
    size_t *kl = malloc(n * sizeof *kl);
    sl_coord_lease_t *tmp = calloc(n, sizeof *tmp);
    ssize_t ret = -1;
    if (!keys || !kp || !kl || !tmp)
        goto out;
    for (unsigned s = 0; s < n_sinks; s++)
        for (unsigned p = 0; p < partitions; p++) {
            size_t i = (size_t) s * partitions + p;
            snprintf(keys[i], sizeof keys[i], "sl:%s:l:%u:%u", c->group, s, p);
            kp[i] = keys[i];
            kl[i] = strlen(keys[i]);
        }
    memcached_return_t rc = memcached_mget(c->mc, kp, kl, n);
    if (rc != MEMCACHED_SUCCESS) {
        s_mc_fail(c, rc, "mget", "leases");
        goto out;
    }
    int64_t wall = s_wall();
    ssize_t held = 0;
    memcached_result_st *res;
    while ((res = memcached_fetch_result(c->mc, NULL, &rc)) != NULL) {
        unsigned s, p;
        s_rec_t r;
        if (s_lease_key_parse(c, memcached_result_key_value(res), memcached_result_key_length(res),
                              &s, &p) == 0 && s < n_sinks && p < partitions) {
            size_t i = (size_t) s * partitions + p;
            if (s_decode(c, kp[i], memcached_result_value(res), memcached_result_length(res), &r) == 0
                && s_live(&r, wall) && !tmp[i].owner[0]) {
                snprintf(tmp[i].owner, sizeof tmp[i].owner, "%s", r.owner);
                snprintf(tmp[i].endpoint, sizeof tmp[i].endpoint, "%s", r.endpoint);
                tmp[i].expiry_ms = r.expiry;
                tmp[i].taken_ms = r.stamp;
                held++;
            }
        }
        memcached_result_free(res);
    }
    if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
        s_mc_fail(c, rc, "mget", "leases");
        goto out;
    }
    memcpy(out, tmp, n * sizeof *out);
    ret = held;
out:
    free(keys);
    free(kp);
    free(kl);
    free(tmp);
    return ret;
}

/* ---- heartbeat and leave ------------------------------------------------- */

/* Renews every held lease: one multi-get, then one cas (or add) per lease. */
static int
s_renew(sl_coord_t *c)
{
    int64_t mono = s_mono();
    int rc_all = 0;
    for (size_t i = 0; i < c->n_held;) {
        if (mono >= c->held[i].deadline) {
            sl_log_limited(&c->rl_mc, SL_LOG_WARN, "coord: lease %u/%u expired before renewal",
                           c->held[i].sink, c->held[i].p);
            c->st.leases_lost++;
            s_held_drop(c, &c->held[i]);
        } else {
            c->held[i].seen = c->held[i].ours = 0;
            i++;
        }
    }
    if (c->n_held == 0)
        return 0;
    size_t n = c->n_held;
    char (*keys)[S_KEY_MAX] = malloc(n * sizeof *keys);
    const char **kp = malloc(n * sizeof *kp);
    size_t *kl = malloc(n * sizeof *kl);
    if (!keys || !kp || !kl) {
        rc_all = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        s_key_lease(c, c->held[i].sink, c->held[i].p, keys[i]);
        kp[i] = keys[i];
        kl[i] = strlen(keys[i]);
    }
    memcached_return_t rc = memcached_mget(c->mc, kp, kl, n);
    if (rc != MEMCACHED_SUCCESS) {
        rc_all = s_mc_fail(c, rc, "mget", "held leases");
        goto out;
    }
    memcached_result_st *res;
    while ((res = memcached_fetch_result(c->mc, NULL, &rc)) != NULL) {
        unsigned s, p;
        s_held_t *h;
        s_rec_t r;
        if (s_lease_key_parse(c, memcached_result_key_value(res), memcached_result_key_length(res),
                              &s, &p) == 0 && (h = s_held_find(c, s, p)) != NULL) {
            h->seen = 1;
            size_t i = (size_t) (h - c->held);
            h->ours = s_decode(c, kp[i], memcached_result_value(res),
                               memcached_result_length(res), &r) == 0
                      && strcmp(r.owner, c->id) == 0;
            h->cas = memcached_result_cas(res);
        }
        memcached_result_free(res);
    }
    if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
        rc_all = s_mc_fail(c, rc, "mget", "held leases");
        goto out;
    }
    /* Pipelined: every cas goes out without waiting for its reply
     * (noreply), then one multi-get on the same connection (so after them)
     * shows which ones took: a renewal counts only if the store now holds
     * exactly the record we sent. (libmemcached 1.1's BUFFER_REQUESTS would
     * also batch the sends, but lost renewals when tried here.) */
    char rec[S_REC_MAX];
    size_t n_sent = 0;
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
    for (size_t i = 0; i < c->n_held; i++) {
        s_held_t *h = &c->held[i];
        h->sent = 0;
        if (!h->seen || !h->ours)
            continue;
        int64_t wall = s_wall();
        size_t len = s_encode(c, kp[i], c->id, h->endpoint, h->taken, wall + c->ttl_ms, rec);
        rc = memcached_cas(c->mc, kp[i], kl[i], rec, len, c->mc_exptime, 0, h->cas);
        if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_BUFFERED) {
            rc_all = s_mc_fail(c, rc, "cas", kp[i]);
            break;
        }
        h->sent = 1;
        h->sent_hash = sl_hash64(rec, len);
        kp[n_sent] = kp[i];             /* compacts the key list for the check */
        kl[n_sent++] = kl[i];
    }
    memcached_behavior_set(c->mc, MEMCACHED_BEHAVIOR_NOREPLY, 0);
    if (n_sent > 0 && rc_all == 0) {
        rc = memcached_mget(c->mc, kp, kl, n_sent);
        if (rc != MEMCACHED_SUCCESS) {
            rc_all = s_mc_fail(c, rc, "mget", "renewed leases");
            goto out;
        }
        while ((res = memcached_fetch_result(c->mc, NULL, &rc)) != NULL) {
            unsigned s, p;
            s_held_t *h;
            if (s_lease_key_parse(c, memcached_result_key_value(res),
                                  memcached_result_key_length(res), &s, &p) == 0
                && (h = s_held_find(c, s, p)) != NULL && h->sent
                && sl_hash64(memcached_result_value(res), memcached_result_length(res)) == h->sent_hash) {
                h->deadline = mono + c->ttl_ms;
                h->sent = 2;
                c->st.leases_renewed++;
            }
            memcached_result_free(res);
        }
        if (rc != MEMCACHED_END && rc != MEMCACHED_NOTFOUND && rc != MEMCACHED_SUCCESS) {
            rc_all = s_mc_fail(c, rc, "mget", "renewed leases");
            goto out;
        }
    }
    for (size_t i = 0; i < c->n_held;) {
        s_held_t *h = &c->held[i];
        int st = 0;
        if (!h->seen) {     /* the store lost it (restart, eviction): still ours until deadline */
            char key[S_KEY_MAX];
            s_key_lease(c, h->sink, h->p, key);
            int64_t wall = s_wall();
            size_t len = s_encode(c, key, c->id, h->endpoint, h->taken, wall + c->ttl_ms, rec);
            st = s_add(c, key, rec, len, c->mc_exptime);
            if (st == 0) {
                h->deadline = mono + c->ttl_ms;
                c->st.leases_renewed++;
            }
        } else if (!h->ours || (h->sent == 1 && rc_all == 0)) {
            st = 1;         /* someone else's record, or our cas did not take */
        }
        if (st == 1) {
            sl_log_limited(&c->rl_mc, SL_LOG_WARN, "coord: lease %u/%u lost", h->sink, h->p);
            c->st.leases_lost++;
            s_held_drop(c, h);
            continue;
        }
        if (st < 0)
            rc_all = -1;
        i++;
    }
out:
    free(keys);
    free(kp);
    free(kl);
    return rc_all;
}

int
sl_coord_heartbeat(sl_coord_t *c)
{
    if (!c || !c->joined)
        return -1;
    int rc = s_renew(c);
    if (s_epoch_refresh(c) < 0 || s_put_member(c) < 0 || s_list_edit(c, c->id, 1) < 0)
        rc = -1;
    return rc;
}

int
sl_coord_leave(sl_coord_t *c)
{
    if (!c || !c->joined)
        return -1;
    int rc = 0;
    while (c->n_held > 0)
        if (sl_coord_lease_release(c, c->held[c->n_held - 1].sink, c->held[c->n_held - 1].p) < 0)
            rc = -1;
    if (s_list_edit(c, c->id, 0) < 0)
        rc = -1;
    char key[S_KEY_MAX];
    s_key_member(c, c->id, key);
    memcached_return_t mrc = memcached_delete(c->mc, key, strlen(key), 0);
    if (mrc != MEMCACHED_SUCCESS && mrc != MEMCACHED_NOTFOUND)
        rc = s_mc_fail(c, mrc, "delete", key);
    c->joined = 0;
    return rc;
}
