#include "common/yconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define SL_YAML_MAX_DEPTH 64
#define SL_YAML_MAX_NODES 1000000   /* guards against alias bombs */

typedef struct {
    sl_ydoc_t     *doc;
    yaml_document_t *ydoc;
    size_t         produced;
    char          *err;
    size_t         errlen;
} s_builder_t;

int
sl_yerr_at(const char *file, int line, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return -1;
    int n = snprintf(err, errlen, "%s:%d: ", file ? file : "<config>", line);
    if (n < 0 || (size_t) n >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
    return -1;
}

int
sl_yerr(const sl_ynode_t *node, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return -1;
    const char *file = node && node->doc ? node->doc->file : "<config>";
    int n = snprintf(err, errlen, "%s:%d: ", file, node ? node->line : 1);
    if (n < 0 || (size_t) n >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
    va_end(ap);
    return -1;
}

static sl_ynode_t *s_build(s_builder_t *b, yaml_node_t *yn, int depth);

/* Sets key to value in dst as a Python dict would: an existing key keeps
 * its position and takes the new value. */
static void
s_dict_set(sl_ynode_t *dst, const char *key, int line, sl_ynode_t *val)
{
    for (size_t k = 0; k < dst->n; k++) {
        if (strcmp(dst->keys[k], key) == 0) {
            dst->items[k] = val;
            dst->key_lines[k] = line;
            return;
        }
    }
    dst->keys[dst->n] = key;
    dst->key_lines[dst->n] = line;
    dst->items[dst->n++] = val;
}

static sl_ynode_t *
s_build_map(s_builder_t *b, yaml_node_t *yn, sl_ynode_t *node, int depth)
{
    size_t total = (size_t) (yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
    const sl_ynode_t *merges[64];
    size_t n_merges = 0, n_merged_pairs = 0;
    const char **ekeys = sl_arena_alloc(&b->doc->arena, (total + 1) * sizeof *ekeys);
    int *elines = sl_arena_alloc(&b->doc->arena, (total + 1) * sizeof *elines);
    sl_ynode_t **evals = sl_arena_alloc(&b->doc->arena, (total + 1) * sizeof *evals);
    size_t n_explicit = 0;

    for (yaml_node_pair_t *p = yn->data.mapping.pairs.start;
         p < yn->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(b->ydoc, p->key);
        yaml_node_t *v = yaml_document_get_node(b->ydoc, p->value);
        if (!k || !v)
            return NULL;
        int kline = (int) k->start_mark.line + 1;
        if (k->type != YAML_SCALAR_NODE) {
            sl_yerr_at(b->doc->file, kline, b->err, b->errlen,
                       "mapping keys must be plain strings");
            return NULL;
        }
        const char *key = (const char *) k->data.scalar.value;
        sl_ynode_t *val = s_build(b, v, depth + 1);
        if (!val)
            return NULL;
        if (strcmp(key, "<<") == 0 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            /* PyYAML's flatten_mapping: a list merges its mappings last
             * first, so that earlier ones win. */
            const sl_ynode_t *srcs[64];
            size_t ns = 0;
            if (val->kind == SL_Y_SEQ) {
                for (size_t i = val->n; i-- > 0 && ns < 64;)
                    srcs[ns++] = val->items[i];
            } else {
                srcs[ns++] = val;
            }
            for (size_t i = 0; i < ns && n_merges < 64; i++) {
                if (srcs[i]->kind != SL_Y_MAP) {
                    sl_yerr(srcs[i], b->err, b->errlen,
                            "`<<` merge value must be a mapping or a list of mappings");
                    return NULL;
                }
                merges[n_merges++] = srcs[i];
                n_merged_pairs += srcs[i]->n;
            }
            continue;
        }
        for (size_t i = 0; i < n_explicit; i++) {
            if (strcmp(ekeys[i], key) == 0) {
                sl_yerr_at(b->doc->file, kline, b->err, b->errlen,
                           "duplicate key '%s' (first at line %d)", key, elines[i]);
                return NULL;
            }
        }
        ekeys[n_explicit] = sl_arena_strdup(&b->doc->arena, key);
        elines[n_explicit] = kline;
        evals[n_explicit++] = val;
    }
    /* node.value = merge + node.value, then built as a dict: merged keys
     * come first, an explicit key takes the place of a merged one of the
     * same name and wins over it. */
    size_t cap = n_merged_pairs + n_explicit + 1;
    node->items = sl_arena_alloc(&b->doc->arena, cap * sizeof *node->items);
    node->keys = sl_arena_alloc(&b->doc->arena, cap * sizeof *node->keys);
    node->key_lines = sl_arena_alloc(&b->doc->arena, cap * sizeof *node->key_lines);
    node->n = 0;
    for (size_t m = 0; m < n_merges; m++)
        for (size_t i = 0; i < merges[m]->n; i++)
            s_dict_set(node, merges[m]->keys[i], merges[m]->key_lines[i], merges[m]->items[i]);
    for (size_t i = 0; i < n_explicit; i++)
        s_dict_set(node, ekeys[i], elines[i], evals[i]);
    return node;
}

static sl_ynode_t *
s_build(s_builder_t *b, yaml_node_t *yn, int depth)
{
    if (depth > SL_YAML_MAX_DEPTH) {
        sl_yerr_at(b->doc->file, (int) yn->start_mark.line + 1, b->err, b->errlen,
                   "nesting deeper than %d levels (recursive alias?)", SL_YAML_MAX_DEPTH);
        return NULL;
    }
    if (++b->produced > SL_YAML_MAX_NODES) {
        sl_yerr_at(b->doc->file, (int) yn->start_mark.line + 1, b->err, b->errlen,
                   "document expands to more than %d nodes (alias bomb?)", SL_YAML_MAX_NODES);
        return NULL;
    }
    sl_ynode_t *node = sl_arena_alloc(&b->doc->arena, sizeof *node);
    memset(node, 0, sizeof *node);
    node->doc = b->doc;
    node->line = (int) yn->start_mark.line + 1;
    switch (yn->type) {
    case YAML_SCALAR_NODE:
        node->kind = SL_Y_SCALAR;
        node->value = sl_arena_strndup(&b->doc->arena, (const char *) yn->data.scalar.value,
                                       yn->data.scalar.length);
        node->plain = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return node;
    case YAML_SEQUENCE_NODE: {
        node->kind = SL_Y_SEQ;
        size_t n = (size_t) (yn->data.sequence.items.top - yn->data.sequence.items.start);
        node->items = sl_arena_alloc(&b->doc->arena, (n + 1) * sizeof *node->items);
        for (size_t i = 0; i < n; i++) {
            yaml_node_t *c = yaml_document_get_node(b->ydoc, yn->data.sequence.items.start[i]);
            if (!c || !(node->items[i] = s_build(b, c, depth + 1)))
                return NULL;
        }
        node->n = n;
        return node;
    }
    case YAML_MAPPING_NODE:
        node->kind = SL_Y_MAP;
        return s_build_map(b, yn, node, depth);
    default:
        sl_yerr_at(b->doc->file, node->line, b->err, b->errlen, "unsupported YAML node");
        return NULL;
    }
}

sl_ydoc_t *
sl_ydoc_parse(const char *buf, size_t len, const char *name, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t ydoc;
    sl_ydoc_t *doc = sl_xcalloc(1, sizeof *doc);
    doc->file = sl_xstrdup(name ? name : "<config>");
    sl_arena_init(&doc->arena, 16 * 1024);

    if (!yaml_parser_initialize(&parser)) {
        sl_yerr_at(doc->file, 1, err, errlen, "cannot initialise the YAML parser");
        sl_ydoc_destroy(&doc);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *) buf, len);
    if (!yaml_parser_load(&parser, &ydoc)) {
        size_t line = parser.problem_mark.line + 1;
        if (parser.error == YAML_COMPOSER_ERROR || parser.error == YAML_PARSER_ERROR ||
            parser.error == YAML_SCANNER_ERROR)
            line = parser.problem_mark.line + 1;
        sl_yerr_at(doc->file, (int) line, err, errlen, "invalid YAML: %s%s%s",
                   parser.problem ? parser.problem : "syntax error",
                   parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        sl_ydoc_destroy(&doc);
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&ydoc);
    if (root) {
        s_builder_t b = { .doc = doc, .ydoc = &ydoc, .err = err, .errlen = errlen };
        doc->root = s_build(&b, root, 0);
        if (!doc->root) {
            yaml_document_delete(&ydoc);
            yaml_parser_delete(&parser);
            sl_ydoc_destroy(&doc);
            return NULL;
        }
        if (doc->root->kind == SL_Y_SCALAR && sl_ynode_is_null(doc->root))
            doc->root = NULL;
    }
    yaml_document_delete(&ydoc);
    yaml_parser_delete(&parser);
    return doc;
}

char *
sl_ydoc_read(const char *path, size_t *len_out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_yerr_at(path, 0, err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 8192, len = 0, n;
    char *buf = sl_xmalloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len == cap - 1)
            buf = sl_xrealloc(buf, cap *= 2);
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        sl_yerr_at(path, 0, err, errlen, "read error");
        return NULL;
    }
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

sl_ydoc_t *
sl_ydoc_load(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = sl_ydoc_read(path, &len, err, errlen);
    if (!buf)
        return NULL;
    sl_ydoc_t *doc = sl_ydoc_parse(buf, len, path, err, errlen);
    free(buf);
    return doc;
}

void
sl_ydoc_destroy(sl_ydoc_t **doc_p)
{
    if (!doc_p || !*doc_p)
        return;
    sl_ydoc_t *doc = *doc_p;
    sl_arena_destroy(&doc->arena);
    free(doc->file);
    free(doc);
    *doc_p = NULL;
}

const sl_ynode_t *
sl_ynode_get(const sl_ynode_t *map, const char *key)
{
    if (!map || map->kind != SL_Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

int
sl_ynode_is_null(const sl_ynode_t *node)
{
    if (!node)
        return 1;
    if (node->kind != SL_Y_SCALAR || !node->plain)
        return 0;
    const char *v = node->value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

int
sl_ynode_bool(const sl_ynode_t *node)
{
    if (!node || node->kind != SL_Y_SCALAR || !node->plain)
        return -1;
    static const char *yes[] = { "true", "yes", "on", "y" };
    static const char *no[] = { "false", "no", "off", "n" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(node->value, yes[i]) == 0)
            return 1;
        if (strcasecmp(node->value, no[i]) == 0)
            return 0;
    }
    return -1;
}
