/* pipeline_worker — the parts of a pipeline worker, shared by its files
 * (internal: only worker/pipeline_worker.c, partitions.c and dispatch.c
 * include it).
 *
 *   partitions.c      the held-partition table: take (bind the ROUTER
 *                     socket, new chain, load handed-over state), release
 *                     (finish what the socket holds, confirm it, flush or
 *                     save the chain, close, release the lease) and the
 *                     rebalance over worker/leases.h
 *   dispatch.c        frame in -> chain (or reorder window) -> publish,
 *                     frame completion records and the batched
 *                     confirmations (SLAK, common/wire.h) back to the
 *                     ingest worker that sent the frame
 *   pipeline_worker.c set-up, the event loop and its timers, the drain
 *
 * Frame completion. Each accepted frame gets a reference-counted record:
 * +1 while it is being read, +1 per notification group held in the reorder
 * window, +1 per output batch its samples went into (released when every
 * publisher of the sink is done with the batch). At 0 the frame is
 * complete (every sample published, absorbed or dropped) and its sequence
 * number joins the acks to send back to its sender; a frame that completes
 * after its partition was released is not confirmed (the sender resends it
 * to the next owner: a duplicate, never a loss). */
#ifndef SL_PIPELINE_WORKER_H
#define SL_PIPELINE_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "common/log.h"
#include "common/loop.h"
#include "common/wire.h"
#include "worker/leases.h"
#include "worker/output.h"
#include "worker/reorder.h"
#include "worker/transform.h"
#include "worker/worker.h"

#define SL_PW_READ_BUDGET 64       /* frames per socket per callback */
#define SL_PW_ID_MAX 255           /* ZeroMQ routing ids are 1..255 bytes */
#define SL_PW_ACKS_MAX (16 * SL_WIRE_ACK_MAX)   /* pending per sender and partition */

/* Acks waiting to go to one sender for one (sink, partition). */
typedef struct {
    unsigned char id[SL_PW_ID_MAX];
    uint8_t id_len;
    uint16_t sink;
    uint32_t partition;
    uint32_t *seqs;
    size_t n, cap;
} sl_pw_peer_t;

typedef struct sl_pw sl_pw_t;

/* One (sink, partition) of this worker's table. */
typedef struct {
    sl_pw_t *pw;
    unsigned index;                /* sink * partitions + p */
    int held;
    uint64_t holding;              /* which take of ours this is (completion records check it) */
    void *sock;                    /* ROUTER, bound */
    sl_loop_watch_t *watch;
    sl_chain_t *chain;
    sl_reorder_t *reorder;         /* NULL unless the sink has a reorder_window */
    sl_chain_stats_t counted;      /* chain counters already added to the slot */
    sl_pw_peer_t *peers;           /* pending acks, by sender */
    size_t n_peers;
    int acks_pending;
} sl_pw_part_t;

/* The completion record of one frame. */
typedef struct {
    unsigned refs;
    unsigned part;                 /* index into the table */
    uint64_t holding;
    uint16_t sink;
    uint32_t partition, seq;
    int failed;                    /* a publisher gave up on some of it (may heal) */
    uint64_t read_us;              /* wire header: when its first notification was read */
    /* The message itself while samples in pw->out are views into it (until
     * the batch they are in is submitted; not kept for the reorder window,
     * which copies). */
    zmq_msg_t msg;
    int has_msg;
    uint8_t id_len;
    unsigned char id[SL_PW_ID_MAX];
} sl_pw_frame_t;

/* An output batch: the frames whose samples are in it, and how many
 * publishers still have it. */
typedef struct {
    sl_pw_t *pw;                   /* so that a done callback (void *arg) has it */
    unsigned refs;
    size_t n;
    sl_pw_frame_t *frames[];
} sl_pw_batch_t;

struct sl_pw {
    sl_worker_ctx_t *ctx;
    const sl_conf_t *conf;
    void *zctx;
    sl_loop_t *loop;
    struct sl_zmon *zmon;          /* ZeroMQ socket monitor (common/zmon.h) */
    sl_leases_t *leases;
    unsigned n_sinks, partitions, total;
    sl_pw_part_t *parts;           /* [sink * partitions + p] */
    sl_output_t *output;           /* the sinks' publishers */
    uint64_t holdings;             /* takes so far */
    sl_sample_vec_t in, out;
    size_t *ends;                  /* in: where each notification ends (s_frame) */
    size_t n_ends, cap_ends;
    unsigned out_sink;             /* the sink of what out holds (sl_pw_stage) */
    sl_pw_frame_t **batch;         /* frames whose samples are in out */
    size_t n_batch, cap_batch;
    uint64_t last_frame;           /* when a frame last arrived (drain) */
    sl_ratelimit_t rl_frame, rl_pub, rl_ack;
};

static inline sl_pw_part_t *
sl_pw_part(sl_pw_t *pw, unsigned sink, unsigned p)
{
    return &pw->parts[(size_t) sink * pw->partitions + p];
}

/* partitions.c */
/* Renews the leases, drops the partitions no longer ours, and (unless
 * draining) takes and releases to follow the assignment. */
void sl_pw_rebalance(sl_pw_t *pw, int draining);
/* lost = the lease ran out: close without reading what is queued (the
 * senders resend it to the next owner). */
void sl_pw_release(sl_pw_t *pw, unsigned sink, unsigned p, int lost);
void sl_pw_release_all(sl_pw_t *pw);

/* dispatch.c */
/* Reads at most budget frames from the partition's socket; how many. */
size_t sl_pw_read(sl_pw_t *pw, sl_pw_part_t *pt, size_t budget);
/* Releases what the reorder window lets go (everything if force). */
void sl_pw_reorder_release(sl_pw_t *pw, sl_pw_part_t *pt, int force);
/* Gives the chain an empty flush point if a retention_time expired. */
void sl_pw_retention(sl_pw_t *pw, sl_pw_part_t *pt);
/* Output batching: the frames read in one loop iteration go out as one
 * batch per sink (one publisher call, e.g. one write of the file
 * publisher, instead of one per frame: a partitioned sink's frames are
 * small). Before appending output of sink to pw->out, sl_pw_stage: it
 * publishes what pw->out holds for another sink. sl_pw_publish hands
 * pw->out to the output layer as one batch (frames in pw->batch complete
 * when every publisher is done with it); sl_pw_publish_some does so only
 * once pw->out holds batch_size samples (what bounds a frame: so a queued
 * batch is no larger than before, and max_queue_length bounds the same
 * memory) or SL_PW_BATCH_FRAMES frames, leaving the rest to the loop's
 * before-sleep hook (pipeline_worker.c), which publishes whatever is
 * pending. */
#define SL_PW_BATCH_FRAMES 64
void sl_pw_stage(sl_pw_t *pw, unsigned sink);
void sl_pw_publish(sl_pw_t *pw);
void sl_pw_publish_some(sl_pw_t *pw);
/* Adds what the chain counted since last time to the worker's counters. */
void sl_pw_account(sl_pw_t *pw, sl_pw_part_t *pt);
/* Called by the output layer when one publisher is done with b. */
void sl_pw_batch_done(sl_pw_t *pw, sl_pw_batch_t *b);
/* Sends the pending acks of the partition (one SLAK per sender and
 * partition); what would block stays pending. */
void sl_pw_send_acks(sl_pw_t *pw, sl_pw_part_t *pt);
/* Forgets the partition's pending acks. */
void sl_pw_drop_acks(sl_pw_part_t *pt);

#endif
