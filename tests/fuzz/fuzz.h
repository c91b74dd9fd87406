/* fuzz — what the libFuzzer targets in tests/fuzz/ share.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput over one public API
 * of common/. With -Dfuzz=true (clang) it is linked with libFuzzer and run
 * by tools/fuzz; in the normal build replay.c gives it a main() that runs
 * every file of corpus/<target>/ once, as a test of suite `fuzz`. A target
 * frees everything an input allocates (leak detection is on); what it sets
 * up once stays reachable from a static and is not a leak. A broken
 * invariant aborts through SL_FUZZ_CHECK so the fuzzer records the input. */
#ifndef SL_FUZZ_H
#define SL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/log.h"
#include "common/yconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SL_FUZZ_CHECK(cond) do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

static inline void
sl_fuzz_discard(void *arg, const char *text)
{
    (void) arg;
    (void) text;
}

/* Tolerant loading whose warnings go nowhere: a fuzzer would print
 * millions of them. Also logs errors only, for what loaders log directly. */
static inline sl_ywarn_t
sl_fuzz_warn(void)
{
    static int quiet;
    if (!quiet) {
        sl_log_init('T', SL_LOG_ERROR, NULL);
        quiet = 1;
    }
    return (sl_ywarn_t) { .emit = sl_fuzz_discard };
}

/* data[0..size) as a malloc'd C string (cut at a NUL byte, if any). */
static inline char *
sl_fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Splits data at its first newline: the head as a malloc'd C string, the
 * rest (after the newline; size 0 if there is none) in *rest, *rest_n. */
static inline char *
sl_fuzz_split(const uint8_t *data, size_t size, const uint8_t **rest, size_t *rest_n)
{
    const uint8_t *nl = size ? memchr(data, '\n', size) : NULL;
    size_t head = nl ? (size_t) (nl - data) : size;
    *rest = nl ? nl + 1 : data + size;
    *rest_n = nl ? size - head - 1 : 0;
    return sl_fuzz_cstr(data, head);
}

/* Notifications the definition targets convert (from tests/data/corpus.jsonl,
 * Ceilometer's own test notifications), so that definitions are evaluated
 * and not only compiled. */
static inline const char *const *
sl_fuzz_notes(size_t *n)
{
    static const char *const notes[] = {
        "{\"_context_auth_token\":\"3d8b13de1b7d499587dfc69b77dc09c2\","
        "\"_context_is_admin\":true,"
        "\"_context_project_id\":\"7c150a59fe714e6f9263774af9688f0e\","
        "\"_context_quota_class\":null,\"_context_read_deleted\":\"no\","
        "\"_context_remote_address\":\"10.0.2.15\","
        "\"_context_request_id\":\"req-d68b36e0-9233-467f-9afb-d81435d64d66\","
        "\"_context_roles\":[\"admin\"],"
        "\"_context_timestamp\":\"2012-05-08T20:23:41.425105\","
        "\"_context_user_id\":\"1e3ce043029547f1a61c1996d1a531a2\","
        "\"event_type\":\"compute.instance.create.end\","
        "\"message_id\":\"dae6f69c-00e0-41c0-b371-41ec3b7f4451\","
        "\"payload\":{\"architecture\":\"x86\","
        "\"availability_zone\":\"1e3ce043029547f1a61c1996d1a531a4\","
        "\"created_at\":\"2012-05-08 20:23:41\",\"deleted_at\":\"\",\"disk_gb\":0,"
        "\"display_name\":\"testme\",\"ephemeral_gb\":0,"
        "\"fixed_ips\":[{\"address\":\"10.0.0.2\",\"floating_ips\":[],\"meta\":{},"
        "\"type\":\"fixed\",\"version\":4}],\"host\":\"compute-host-name\","
        "\"image_ref\":\"UUID\",\"image_ref_url\":\"http://10.0.2.15:9292/images/UUID\","
        "\"instance_id\":\"9f9d01b9-4a58-4271-9e27-398b21ab20d1\","
        "\"instance_type\":\"m1.tiny\",\"instance_type_id\":2,"
        "\"kernel_id\":\"1e3ce043029547f1a61c1996d1a531a5\","
        "\"launched_at\":\"2012-05-08 20:23:47.985999\",\"memory_mb\":512,"
        "\"os_type\":\"linux?\",\"ramdisk_id\":\"1e3ce043029547f1a61c1996d1a531a6\","
        "\"reservation_id\":\"1e3ce043029547f1a61c1996d1a531a3\",\"root_gb\":0,"
        "\"state\":\"active\",\"state_description\":\"\","
        "\"tenant_id\":\"7c150a59fe714e6f9263774af9688f0e\","
        "\"user_id\":\"1e3ce043029547f1a61c1996d1a531a2\",\"vcpus\":1},"
        "\"priority\":\"INFO\",\"publisher_id\":\"compute.vagrant-precise\","
        "\"timestamp\":\"2012-05-08 20:23:48.028195\"}",
        "{\"event_type\":\"image.upload\","
        "\"message_id\":\"f4300d49-8b1b-5f58-a236-584c881a801b\","
        "\"payload\":{\"checksum\":\"d990432ef91afef3ad9dbf4a975d3365\","
        "\"container_format\":\"ovf\",\"created_at\":\"2012-09-18T10:13:44.571370\","
        "\"deleted\":false,\"deleted_at\":null,\"disk_format\":\"vhd\","
        "\"id\":\"cccccccc-cccc-cccc-cccccccccccc\",\"is_public\":false,"
        "\"location\":null,\"min_disk\":0,\"min_ram\":0,\"name\":\"fake image #3\","
        "\"owner\":\"fake\",\"properties\":{\"key1\":\"value1\",\"key2\":\"value2\"},"
        "\"protected\":false,\"size\":19,\"status\":\"saving\","
        "\"updated_at\":\"2012-09-18T10:13:44.623120\"},\"priority\":\"info\","
        "\"publisher_id\":\"images.example.com\","
        "\"timestamp\":\"2023-03-14T09:26:53.589793\"}",
        "{\"event_type\":\"volume.create.end\","
        "\"message_id\":\"492af67c-9cff-52b5-93c7-e52579737d5d\","
        "\"payload\":{\"availability_zone\":\"nova\","
        "\"created_at\":\"2014-10-28 09:31:20\",\"display_name\":\"2\","
        "\"host\":\"volumes.example.com\",\"instance_uuid\":null,"
        "\"replication_extended_status\":null,\"replication_status\":\"disabled\","
        "\"size\":1,\"snapshot_id\":null,\"status\":\"exists\","
        "\"tenant_id\":\"7ffe17a15c724e2aa79fc839540aec15\","
        "\"user_id\":\"bcb7746c7a41472d88a1ffac89ba6a9b\","
        "\"volume_id\":\"cccccccc-cccc-cccc-cccccccccccc\","
        "\"volume_type\":\"3a9a398b-7e3b-40da-b09e-2115ad8cd68b\"},\"priority\":\"info\","
        "\"publisher_id\":\"volumes.example.com\","
        "\"timestamp\":\"2023-03-14T09:26:53.589793\"}",
    };
    *n = sizeof notes / sizeof notes[0];
    return notes;
}

/* sl_fuzz_notes decoded once (they stay decoded until the process ends). */
static inline const sl_notification_t *
sl_fuzz_decoded_notes(size_t *n)
{
    static sl_notification_t decoded[8];
    static size_t count;
    if (!count) {
        const char *const *notes = sl_fuzz_notes(&count);
        SL_FUZZ_CHECK(count <= sizeof decoded / sizeof decoded[0]);
        for (size_t i = 0; i < count; i++) {
            char err[256];
            SL_FUZZ_CHECK(sl_envelope_decode(notes[i], strlen(notes[i]), 0, &decoded[i], err,
                                             sizeof err) == SL_ENV_OK);
        }
    }
    *n = count;
    return decoded;
}

#endif
