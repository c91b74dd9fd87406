/* fuzz_opt — sl_opt_query and sl_opt_set (common/opt.h), the parsers of
 * publisher URL queries and of every typed setting. Input: one flags byte
 * (bit 0: unknown keys allowed), then a query string. Checks: a refused
 * query or value comes with a message; a value set formats back to text
 * that sets the same value again (sl_opt_format round trip). */
#include "tests/fuzz/fuzz.h"

#include "common/opt.h"

typedef struct {
    char *s, *path;
    unsigned u, ms, b, e;
    uint64_t size;
    double d;
} s_cfg_t;

#define OFF(f) offsetof(s_cfg_t, f)
static const sl_opt_t s_tab[] = {
    { .name = "s", .type = SL_OPT_STR, .offset = OFF(s), .help = "h" },
    { .name = "path", .type = SL_OPT_PATH, .offset = OFF(path), .help = "h" },
    { .name = "u", .type = SL_OPT_UINT, .offset = OFF(u), .min = 1, .max = 1000, .help = "h" },
    { .name = "ms", .type = SL_OPT_MS, .offset = OFF(ms), .min = 0, .max = 3600000, .help = "h" },
    { .name = "b", .type = SL_OPT_BOOL, .offset = OFF(b), .help = "h" },
    { .name = "e", .type = SL_OPT_ENUM, .offset = OFF(e), .choices = "default|queue|drop",
      .help = "h" },
    { .name = "size", .type = SL_OPT_SIZE, .offset = OFF(size), .min = 0, .max = 1ULL << 40,
      .help = "h" },
    { .name = "d", .type = SL_OPT_DOUBLE, .offset = OFF(d), .dmin = 0, .dmax = 1e9, .help = "h" },
    { .name = NULL },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *q = malloc(size);
    memcpy(q, data + 1, size - 1);
    q[size - 1] = '\0';
    s_cfg_t c;
    memset(&c, 0, sizeof c);
    char err[512];
    size_t unknown = 0;
    err[0] = '\0';
    if (sl_opt_query(s_tab, &c, q, data[0] & 1, &unknown, err, sizeof err) < 0)
        SL_FUZZ_CHECK(err[0] != '\0');
    sl_opt_free(s_tab, &c);
    for (const sl_opt_t *o = s_tab; o->name; o++) {
        memset(&c, 0, sizeof c);
        err[0] = '\0';
        if (sl_opt_set(o, &c, q, err, sizeof err) < 0) {
            SL_FUZZ_CHECK(err[0] != '\0');
            continue;
        }
        char text[256];
        const char *t = sl_opt_format(o, &c, text, sizeof text);
        if (t && o->type != SL_OPT_DOUBLE && o->type != SL_OPT_STR && o->type != SL_OPT_PATH) {
            s_cfg_t again;
            memset(&again, 0, sizeof again);
            SL_FUZZ_CHECK(sl_opt_set(o, &again, t, err, sizeof err) == 0);
            SL_FUZZ_CHECK(memcmp((char *) &again + o->offset, (char *) &c + o->offset,
                                 o->type == SL_OPT_SIZE ? sizeof(uint64_t)
                                                        : sizeof(unsigned)) == 0);
        }
        sl_opt_free(s_tab, &c);
    }
    free(q);
    return 0;
}
