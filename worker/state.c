/* state — the transformer-state file of a partition (contract in state.h). */
#include "worker/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/log.h"

#define S_STATE_MAGIC 0x54534c53u   /* "SLST" */
#define S_STATE_VERSION 1u

static sl_ratelimit_t s_rl;

uint64_t
sl_state_fingerprint(const sl_conf_t *conf, unsigned sink)
{
    const sl_sink_t *sk = sl_conf_sink(conf, sink);
    unsigned partitions = conf->partitions;
    uint64_t chain = sl_chain_fingerprint(sk);
    uint64_t h = sl_hash64_update(SL_HASH64_INIT, &partitions, sizeof partitions);
    h = sl_hash64_update(h, sk->name, strlen(sk->name) + 1);
    h = sl_hash64_update(h, &chain, sizeof chain);
    return sl_hash64_final(h);
}

static void
s_path(const sl_conf_t *conf, unsigned sink, unsigned p, char *buf, size_t len)
{
    snprintf(buf, len, "%s/state/%s.%u", conf->run_dir, sl_conf_sink_label(conf, sink), p);
}

int
sl_state_save(const sl_conf_t *conf, unsigned sink, unsigned p, const sl_chain_t *chain)
{
    char path[4096], tmp[4200];
    char *blob = NULL;
    size_t len = 0;
    if (!sl_conf_sink(conf, sink)->n_transformers)
        return 0;
    if (sl_chain_save(chain, &blob, &len) < 0) {
        sl_log_limited(&s_rl, SL_LOG_ERROR, "sink %s partition %u: cannot save transformer "
                       "state for the next owner; draining it instead",
                       sl_conf_sink(conf, sink)->name, p);
        return -1;
    }
    s_path(conf, sink, p, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int) getpid());
    uint32_t hdr[2] = { S_STATE_MAGIC, S_STATE_VERSION };
    uint64_t fp = sl_state_fingerprint(conf, sink);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(hdr, sizeof hdr, 1, f) == 1 && fwrite(&fp, sizeof fp, 1, f) == 1 &&
             (len == 0 || fwrite(blob, len, 1, f) == 1);
    if (f && fclose(f) != 0)
        ok = 0;
    free(blob);
    if (!ok || rename(tmp, path) < 0) {
        sl_log_limited(&s_rl, SL_LOG_ERROR, "cannot write transformer state %s: %s; "
                       "draining it instead (is run_dir writable?)", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void
sl_state_load(const sl_conf_t *conf, unsigned sink, unsigned p, sl_chain_t *chain)
{
    char path[4096], err[256];
    s_path(conf, sink, p, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    uint32_t hdr[2];
    uint64_t fp;
    char *blob = NULL;
    size_t len = 0, cap = 0, n;
    int ok = fread(hdr, sizeof hdr, 1, f) == 1 && fread(&fp, sizeof fp, 1, f) == 1 &&
             hdr[0] == S_STATE_MAGIC && hdr[1] == S_STATE_VERSION;
    while (ok) {
        if (len == cap)
            blob = sl_xrealloc(blob, cap = cap ? cap * 2 : 65536);
        if ((n = fread(blob + len, 1, cap - len, f)) == 0)
            break;
        len += n;
    }
    fclose(f);
    unlink(path);
    if (!ok)
        sl_warn("%s is not a sluice state file: ignored", path);
    else if (fp != sl_state_fingerprint(conf, sink))
        sl_info("%s was saved under another transformer configuration or partition count: the "
                "partition starts with fresh state", path);
    else if (sl_chain_load(chain, blob, len, err, sizeof err) < 0)
        sl_error("cannot load transformer state %s: %s; the partition starts with fresh state",
                 path, err);
    free(blob);
}
