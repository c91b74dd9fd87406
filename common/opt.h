/* opt — the one option-table type: global settings (sluice.yaml), source
 * options (a source's mapping in sluice.yaml), transformer parameters
 * (pipeline.yaml) and publisher options (a publisher URL's query string).
 *
 * A table is an array of sl_opt_t ended by an entry whose name is NULL.
 * Each entry says what the option is called, what it holds, its default
 * (text, parsed like a configured value; NULL = no default), its bounds,
 * where its parsed value goes in the owner's config struct (offset) and a
 * one-line help text. The same table fills the struct (sl_opt_defaults,
 * sl_opt_set, sl_opt_query), frees it (sl_opt_free) and documents it
 * (sl_opt_help: `sluiced --help-config`, `--help-plugins`,
 * `sluice-transform --help-params`).
 *
 * Where a value goes, by type:
 *   SL_OPT_STR, SL_OPT_PATH  char *  (malloc'd; PATH: relative paths are the
 *                                     caller's to resolve)
 *   SL_OPT_UINT              unsigned (decimal, min..max)
 *   SL_OPT_SIZE              uint64_t (decimal with an optional k/M/G suffix)
 *   SL_OPT_MS                unsigned milliseconds ("250", "250ms", "2s", "1m")
 *   SL_OPT_BOOL              unsigned 0/1 (true/false/yes/no/on/off/1/0)
 *   SL_OPT_DOUBLE            double (finite, min..max as given in dmin/dmax)
 *   SL_OPT_ENUM              unsigned: index of the value in `choices`
 *                            ("default|queue|drop")
 *   SL_OPT_ANY               nothing is stored (offset SL_OPT_NO_OFFSET): the
 *                            plugin reads the value itself (a transformer
 *                            parameter that is a mapping, a list or an
 *                            expression); the table still names and
 *                            documents it, and unknown keys are found
 *                            against it.
 * Thread-safety: functions only touch the struct they are given. */
#ifndef SL_OPT_H
#define SL_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    SL_OPT_STR = 1, SL_OPT_PATH, SL_OPT_UINT, SL_OPT_SIZE, SL_OPT_MS, SL_OPT_BOOL,
    SL_OPT_DOUBLE, SL_OPT_ENUM, SL_OPT_ANY,
} sl_opt_type_t;

#define SL_OPT_NO_OFFSET ((size_t) -1)

typedef struct sl_opt sl_opt_t;

/* Extra validation of the text before it is stored (after the type's own
 * parsing for numbers; instead of nothing for STR/PATH): 0, or -1 with
 * "NAME: ..." in err. For "auto or a number" and log levels below. */
typedef int (*sl_opt_check_fn)(const sl_opt_t *o, const char *text, char *err, size_t errlen);

struct sl_opt {
    const char   *name;
    sl_opt_type_t type;
    size_t        offset;      /* into the owner's struct; SL_OPT_NO_OFFSET for ANY */
    const char   *def;         /* default as text; NULL = none (required if `required`) */
    uint64_t      min, max;    /* UINT, SIZE, MS: bounds (max 0 = no upper bound) */
    double        dmin, dmax;  /* DOUBLE: bounds (both 0 = any finite value) */
    const char   *choices;     /* ENUM: "a|b|c" */
    int           required;
    const char   *help;
    /* Additive fields (zero = unused). */
    sl_opt_check_fn check;     /* see sl_opt_check_fn */
    const char   *type_text;   /* shown instead of sl_opt_type_text ("auto or 1..64") */
    unsigned      kinds;       /* ANY: YAML kinds the reader accepts, and its flags
                                * (transformers: worker/transformers/tx.h SL_TXT_*);
                                * STR in sluice.yaml: SL_OPT_LIST, SL_OPT_MAP */
};

/* STR options of sluice.yaml that also take a YAML list of scalars (kept
 * joined by ',') or a mapping of scalars (kept as "k=v,k2=v2"). */
#define SL_OPT_LIST 0x1000
#define SL_OPT_MAP  0x2000
#define SL_OPT_URLS 0x4000   /* with SL_OPT_LIST: items may hold ',' (URLs: split at ",scheme://") */

/* Checks for STR options: "auto" or a whole number min..max
 * ("NAME: 'x' must be auto or a number from MIN to MAX"), and a log level
 * ("NAME: 'x' is not a log level (use error, warn, info or debug)"). */
int sl_opt_check_auto_uint(const sl_opt_t *o, const char *text, char *err, size_t errlen);
int sl_opt_check_log_level(const sl_opt_t *o, const char *text, char *err, size_t errlen);
/* Entries of a table (up to its NULL name). */
size_t sl_opt_count(const sl_opt_t *tab);

/* The entry named name, or NULL. */
const sl_opt_t *sl_opt_find(const sl_opt_t *tab, const char *name);
/* Sets every option that has a default. -1 with a message if a default
 * does not parse (a programming error the unit tests catch). */
int sl_opt_defaults(const sl_opt_t *tab, void *cfg, char *err, size_t errlen);
/* Parses text into the option's field. -1 with "NAME: 'text' is not ...
 * (use ...)" in err (no file:line: the caller prefixes it). */
int sl_opt_set(const sl_opt_t *o, void *cfg, const char *text, char *err, size_t errlen);
/* A URL query string "a=1&b=x%20y" (Ceilometer's publisher syntax, read
 * as Python's parse_qs: '+' is a space, a key without a value is dropped,
 * the last of repeated keys wins): percent-decodes, sets each known key; an unknown key is an error unless
 * unknown_ok (then it is left for the caller; *n_unknown counts them). */
int sl_opt_query(const sl_opt_t *tab, void *cfg, const char *query, int unknown_ok,
                 size_t *n_unknown, char *err, size_t errlen);
/* The first n bytes of s percent-decoded into a new string (a '%' not
 * followed by two hex digits stays as it is; plus: '+' is a space, as in a
 * query), for URL parts the publishers read themselves (userinfo, query
 * values passed on). */
char *sl_url_unquote(const char *s, size_t n, int plus);
/* Frees the strings the table's STR/PATH fields hold, and zeroes them. */
void sl_opt_free(const sl_opt_t *tab, void *cfg);
/* The option's current value as text (for --dump-config) into buf. */
const char *sl_opt_format(const sl_opt_t *o, const void *cfg, char *buf, size_t len);
/* Markdown table: | option | type | default | help |, names prefixed by
 * prefix ("" for none). */
void sl_opt_help(FILE *out, const sl_opt_t *tab, const char *prefix);
/* "whole number 1..4096", "size", "duration", "true/false", "default|queue|drop" */
const char *sl_opt_type_text(const sl_opt_t *o, char *buf, size_t len);

#endif
