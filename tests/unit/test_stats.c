/* stats: the counter set is part of the interface (monitor, Prometheus,
 * README); this test pins it so that a rename is a deliberate change. */
#include <check.h>

#include "tests/sl_check.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/stats.h"

START_TEST(exported_counter_names_are_exactly_the_documented_set)
{
    static const char *const want[] = {
        "received", "decoded", "drop_malformed_json", "drop_not_object", "drop_bad_envelope",
        "drop_missing_field", "drop_bad_priority", "drop_oversized", "drop_bad_utf8", "drop_multipart", "no_sample_priority",
        "no_definition", "convert_skipped", "convert_failed", "samples_converted", "samples_unrouted",
        "samples_routed", "events_converted", "events_dropped", "events_unrouted", "events_routed", "frames_sent", "frame_bytes", "frames_lingered", "send_blocked", "frames_received", "frames_rejected", "frames_acked",
        "samples_received", "transform_absorbed", "transform_errors", "samples_published", "events_published", "publish_errors", "leases_taken",
        "leases_released", "source_eof", "source_disconnects", "frames_confirmed", "frames_resent",
        "acks_unknown", "notifications_confirmed", "notifications_requeued", "frames_failed",
        "notifications_unconfirmed", "source_pauses", "pauses_blocked", "pauses_unconfirmed",
        "pauses_budget",
    };
    ck_assert_int_eq(SL_C__COUNT, sizeof want / sizeof *want);
    for (int i = 0; i < SL_C__COUNT; i++) {
        ck_assert_str_eq(sl_worker_counter_names[i], want[i]);
        ck_assert_msg(strlen(sl_worker_counter_help[i]) > 10, "counter %s has no help", want[i]);
    }
    ck_assert_str_eq(sl_sink_counter_names[SL_SC_routed], "routed");
    ck_assert_str_eq(sl_sink_counter_names[SL_SC_published], "published");
    ck_assert_str_eq(sl_sink_counter_names[SL_SC_failed], "failed");
    static const char *const want_pub[] = {
        "queued", "sent", "retried", "errors", "dropped", "dead_lettered", "queue_depth",
        "publishes", "latency_ms_sum", "latency_ms_max", "peers", "lost", "at_risk",
    };
    ck_assert_int_eq(SL_PC__COUNT, sizeof want_pub / sizeof *want_pub);
    for (int i = 0; i < SL_PC__COUNT; i++) {
        ck_assert_str_eq(sl_publisher_counter_names[i], want_pub[i]);
        ck_assert_msg(strlen(sl_publisher_counter_help[i]) > 10, "counter %s has no help",
                      want_pub[i]);
    }
    ck_assert_int_eq(sl_publisher_counter_kind[SL_PC_queue_depth], SL_PK_gauge);
    ck_assert_int_eq(sl_publisher_counter_kind[SL_PC_latency_ms_max], SL_PK_max);
    static const char *const want_broker[] = {
        "state", "connects", "disconnects", "reconnect_attempts", "failovers", "deliveries",
        "redeliveries", "acks", "ack_frames", "nacks", "unacked", "stale_acks",
    };
    ck_assert_int_eq(SL_BC__COUNT, sizeof want_broker / sizeof *want_broker);
    for (int i = 0; i < SL_BC__COUNT; i++) {
        ck_assert_str_eq(sl_broker_counter_names[i], want_broker[i]);
        ck_assert_msg(strlen(sl_broker_counter_help[i]) > 10, "counter %s has no help",
                      want_broker[i]);
    }
    ck_assert_int_eq(sl_broker_counter_kind[SL_BC_unacked], SL_PK_gauge);
    static const char *const want_zmon[] = {
        "connects", "connect_delays", "connect_retries", "binds", "bind_failures", "accepted",
        "accept_failures", "disconnects", "closed", "close_failures", "handshakes",
        "handshake_failures", "peers",
    };
    ck_assert_int_eq(SL_ZC__COUNT, sizeof want_zmon / sizeof *want_zmon);
    for (int i = 0; i < SL_ZC__COUNT; i++) {
        ck_assert_str_eq(sl_zmon_counter_names[i], want_zmon[i]);
        ck_assert_msg(strlen(sl_zmon_counter_help[i]) > 10, "counter %s has no help",
                      want_zmon[i]);
        ck_assert_int_eq(sl_zmon_counter_kind[i], i == SL_ZC_peers ? SL_PK_gauge : SL_PK_counter);
    }
    ck_assert_int_eq(SL_SV__COUNT, 7);
    ck_assert_str_eq(sl_supervisor_counter_names[SL_SV_config_warnings], "config_warnings");
    ck_assert_str_eq(sl_supervisor_counter_names[SL_SV_lost_in_crash], "lost_in_crash");
    ck_assert_str_eq(sl_supervisor_counter_names[SL_SV_crashes], "crashes");
}
END_TEST

/* A deadline ms from now, on the clock asked for, with its nanoseconds
 * carried into seconds. */
START_TEST(deadlines_add_milliseconds_and_carry_the_nanoseconds)
{
    const unsigned ms[] = { 0, 1, 999, 1000, 1999, 86400000 };
    const clockid_t clocks[] = { CLOCK_MONOTONIC, CLOCK_REALTIME };
    for (size_t c = 0; c < 2; c++)
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
            struct timespec before, after;
            clock_gettime(clocks[c], &before);
            struct timespec d = sl_deadline(clocks[c], ms[i]);
            clock_gettime(clocks[c], &after);
            ck_assert(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
            int64_t dn = (int64_t) d.tv_sec * 1000000000LL + d.tv_nsec;
            int64_t lo = (int64_t) before.tv_sec * 1000000000LL + before.tv_nsec,
                    hi = (int64_t) after.tv_sec * 1000000000LL + after.tv_nsec;
            ck_assert_int_ge(dn, lo + (int64_t) ms[i] * 1000000LL);
            ck_assert_int_le(dn, hi + (int64_t) ms[i] * 1000000LL);
        }
}
END_TEST

START_TEST(slots_are_cache_line_aligned_and_do_not_share_lines)
{
    ck_assert_int_eq(sizeof(sl_slot_t) % 64, 0);
    ck_assert_int_eq(offsetof(sl_shm_t, slots) % 64, 0);
}
END_TEST

START_TEST(region_is_created_attached_read_only_and_summed)
{
    char name[64], err[256];
    snprintf(name, sizeof name, "/sluice-test-%d", (int) getpid());
    sl_shm_t *shm = sl_shm_create(name, 4, sl_lease_table_size(2, 8), err, sizeof err);
    ck_assert_msg(shm != NULL, "create: %s", err);
    ck_assert_ptr_nonnull(sl_lease_table_init((char *) shm + shm->lease_offset, 2, 8));
    atomic_store(&shm->slots[0].role, SL_ROLE_INGEST);
    atomic_store(&shm->slots[1].role, SL_ROLE_PIPELINE);
    atomic_store(&shm->slots[2].role, SL_ROLE_INGEST);
    SL_INC(&shm->slots[0], frames_sent, 3);
    SL_INC(&shm->slots[2], frames_sent, 4);
    SL_INC(&shm->slots[1], frames_sent, 100);
    const sl_shm_t *ro = sl_shm_attach(name, err, sizeof err);
    ck_assert_msg(ro != NULL, "attach: %s", err);
    ck_assert_uint_eq(sl_shm_sum(ro, SL_C_frames_sent, SL_ROLE_INGEST), 7);
    ck_assert_uint_eq(sl_shm_sum(ro, SL_C_frames_sent, 0), 107);
    /* a publisher's label and last error, read back consistently */
    sl_stats_text_set_label(&shm->slots[1].pub[2][1].t, "file:///var/lib/sluice/x.jsonl");
    sl_stats_text_set_error(&shm->slots[1].pub[2][1].t, "disk full\nreally");
    SL_PINC(&shm->slots[1].pub[2][1], sent, 5);
    char label[SL_PUB_LABEL_MAX], error[SL_PUB_ERROR_MAX];
    sl_stats_text_get(&ro->slots[1].pub[2][1].t, label, sizeof label, error, sizeof error);
    ck_assert_str_eq(label, "file:///var/lib/sluice/x.jsonl");
    ck_assert_str_eq(error, "disk full really");
    ck_assert_uint_eq(atomic_load(&ro->slots[1].pub[2][1].t.used), 1);
    ck_assert_uint_eq(atomic_load(&ro->slots[1].pub[2][1].c[SL_PC_sent]), 5);
    ck_assert_uint_ne(atomic_load(&ro->slots[1].pub[2][1].t.error_ms), 0);
    ck_assert_ptr_nonnull(sl_shm_leases_ro(ro));
    ck_assert_uint_eq(sl_lease_table_partitions(sl_shm_leases_ro(ro)), 8);
    sl_shm_unmap(ro);
    sl_shm_unmap(shm);
    ck_assert_int_eq(sl_shm_unlink(name), 0);
    ck_assert_ptr_null(sl_shm_attach(name, err, sizeof err));
    ck_assert_msg(strstr(err, "is sluiced running") != NULL, "unhelpful error: %s", err);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");
    tcase_add_test(tc, exported_counter_names_are_exactly_the_documented_set);
    tcase_add_test(tc, deadlines_add_milliseconds_and_carry_the_nanoseconds);
    tcase_add_test(tc, slots_are_cache_line_aligned_and_do_not_share_lines);
    tcase_add_test(tc, region_is_created_attached_read_only_and_summed);
    suite_add_tcase(s, tc);
    return sl_check_run(s);
}
